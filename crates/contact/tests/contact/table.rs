//! Every action × relationship × target age band, for an adult actor and a child actor, under
//! the default policy: the expected outcome, the measure it rests on and the prompt, written
//! out cell by cell. Nothing here is computed by the code under test.

use safeguard_contact::{Action, AgeBand, AgeClass, Measure, Outcome, Relationship};

use crate::common::*;

/// An expected answer: allow, deny, or allow with the named prompt; each with its measure.
#[derive(Debug, Clone, Copy, PartialEq)]
enum E {
    A(Measure),
    D(Measure),
    P(Measure, &'static str),
}
use E::{A, D, P};

/// Who acts: an assured adult, or a 13-to-15-year-old.
#[derive(Debug, Clone, Copy, PartialEq)]
enum By {
    Adult,
    Child,
}

// The measures, short enough for a table. Their ids, codes and wording are checked in
// `measures_are_worded_as_documented`.
const NONE: Measure = Measure::NoneApplies;
const DM: Measure = Measure::F1NoDirectMessages; // ICU F1
const NOT_SUGGESTED: Measure = Measure::F1NotInNetworkExpansion; // ICU F1
const NO_SUGGESTIONS: Measure = Measure::F1NoNetworkExpansionForChild; // ICU F1
const LISTS: Measure = Measure::F1ConnectionListsHidden; // ICU F1
const LOCATION: Measure = Measure::F1LocationHidden; // ICU F1
const REQUEST: Measure = Measure::F2ConnectionRequest; // ICU F2
const BLOCK_REPORT: Measure = Measure::F2BlockOrReport; // ICU F2
const PROFILE: Measure = Measure::ChildProfilePrivate; // Safeguard
const BLOCKED: Measure = Measure::Blocked; // Safeguard

const REQ: E = P(REQUEST, "connection_request");
const SUPPORT: E = P(BLOCK_REPORT, "after_block_or_report");

/// The target bands, in the order of each row's cells.
const TARGETS: [AgeBand; 5] = [
    AgeBand::Under13,
    AgeBand::From13To15,
    AgeBand::From16To17,
    AgeBand::Adult,
    AgeBand::Unknown,
];

use Action::{
    Block, ConnectionRequest, Message, Report, Suggest, ViewConnections, ViewLocation, ViewProfile,
};
use Relationship::{Blocked, Connected, Mutual, Unrelated};

#[rustfmt::skip]
const TABLE: &[(Action, Relationship, By, [E; 5])] = &[
    // action              relationship  actor      under_13          13_15             16_17             adult             unknown
    (Message,              Connected,    By::Adult, [A(DM),           A(DM),            A(DM),            A(NONE),          A(DM)]),
    (Message,              Mutual,       By::Adult, [D(DM),           D(DM),            D(DM),            A(NONE),          D(DM)]),
    (Message,              Unrelated,    By::Adult, [D(DM),           D(DM),            D(DM),            A(NONE),          D(DM)]),
    (Message,              Blocked,      By::Adult, [D(BLOCKED),      D(BLOCKED),       D(BLOCKED),       D(BLOCKED),       D(BLOCKED)]),
    (Message,              Connected,    By::Child, [A(DM),           A(DM),            A(DM),            A(DM),            A(DM)]),
    (Message,              Mutual,       By::Child, [D(DM),           D(DM),            D(DM),            D(DM),            D(DM)]),
    (Message,              Unrelated,    By::Child, [D(DM),           D(DM),            D(DM),            D(DM),            D(DM)]),
    (Message,              Blocked,      By::Child, [D(BLOCKED),      D(BLOCKED),       D(BLOCKED),       D(BLOCKED),       D(BLOCKED)]),

    (ConnectionRequest,    Connected,    By::Adult, [A(REQUEST),      A(REQUEST),       A(REQUEST),       A(NONE),          A(REQUEST)]),
    (ConnectionRequest,    Mutual,       By::Adult, [REQ,             REQ,              REQ,              A(NONE),          REQ]),
    (ConnectionRequest,    Unrelated,    By::Adult, [REQ,             REQ,              REQ,              A(NONE),          REQ]),
    (ConnectionRequest,    Blocked,      By::Adult, [D(BLOCKED),      D(BLOCKED),       D(BLOCKED),       D(BLOCKED),       D(BLOCKED)]),
    (ConnectionRequest,    Connected,    By::Child, [A(REQUEST),      A(REQUEST),       A(REQUEST),       A(REQUEST),       A(REQUEST)]),
    (ConnectionRequest,    Mutual,       By::Child, [REQ,             REQ,              REQ,              REQ,              REQ]),
    (ConnectionRequest,    Unrelated,    By::Child, [REQ,             REQ,              REQ,              REQ,              REQ]),
    (ConnectionRequest,    Blocked,      By::Child, [D(BLOCKED),      D(BLOCKED),       D(BLOCKED),       D(BLOCKED),       D(BLOCKED)]),

    (Suggest,              Connected,    By::Adult, [A(NOT_SUGGESTED), A(NOT_SUGGESTED), A(NOT_SUGGESTED), A(NONE),         A(NOT_SUGGESTED)]),
    (Suggest,              Mutual,       By::Adult, [D(NOT_SUGGESTED), D(NOT_SUGGESTED), D(NOT_SUGGESTED), A(NONE),         D(NOT_SUGGESTED)]),
    (Suggest,              Unrelated,    By::Adult, [D(NOT_SUGGESTED), D(NOT_SUGGESTED), D(NOT_SUGGESTED), A(NONE),         D(NOT_SUGGESTED)]),
    (Suggest,              Blocked,      By::Adult, [D(BLOCKED),      D(BLOCKED),       D(BLOCKED),       D(BLOCKED),       D(BLOCKED)]),
    (Suggest,              Connected,    By::Child, [A(NOT_SUGGESTED), A(NOT_SUGGESTED), A(NOT_SUGGESTED), A(NO_SUGGESTIONS), A(NOT_SUGGESTED)]),
    (Suggest,              Mutual,       By::Child, [D(NOT_SUGGESTED), D(NOT_SUGGESTED), D(NOT_SUGGESTED), D(NO_SUGGESTIONS), D(NOT_SUGGESTED)]),
    (Suggest,              Unrelated,    By::Child, [D(NOT_SUGGESTED), D(NOT_SUGGESTED), D(NOT_SUGGESTED), D(NO_SUGGESTIONS), D(NOT_SUGGESTED)]),
    (Suggest,              Blocked,      By::Child, [D(BLOCKED),      D(BLOCKED),       D(BLOCKED),       D(BLOCKED),       D(BLOCKED)]),

    (ViewConnections,      Connected,    By::Adult, [D(LISTS),        D(LISTS),         D(LISTS),         A(NONE),          D(LISTS)]),
    (ViewConnections,      Mutual,       By::Adult, [D(LISTS),        D(LISTS),         D(LISTS),         A(NONE),          D(LISTS)]),
    (ViewConnections,      Unrelated,    By::Adult, [D(LISTS),        D(LISTS),         D(LISTS),         A(NONE),          D(LISTS)]),
    (ViewConnections,      Blocked,      By::Adult, [D(BLOCKED),      D(BLOCKED),       D(BLOCKED),       D(BLOCKED),       D(BLOCKED)]),
    (ViewConnections,      Connected,    By::Child, [D(LISTS),        D(LISTS),         D(LISTS),         A(NONE),          D(LISTS)]),
    (ViewConnections,      Mutual,       By::Child, [D(LISTS),        D(LISTS),         D(LISTS),         A(NONE),          D(LISTS)]),
    (ViewConnections,      Unrelated,    By::Child, [D(LISTS),        D(LISTS),         D(LISTS),         A(NONE),          D(LISTS)]),
    (ViewConnections,      Blocked,      By::Child, [D(BLOCKED),      D(BLOCKED),       D(BLOCKED),       D(BLOCKED),       D(BLOCKED)]),

    (ViewLocation,         Connected,    By::Adult, [D(LOCATION),     D(LOCATION),      D(LOCATION),      A(NONE),          D(LOCATION)]),
    (ViewLocation,         Mutual,       By::Adult, [D(LOCATION),     D(LOCATION),      D(LOCATION),      A(NONE),          D(LOCATION)]),
    (ViewLocation,         Unrelated,    By::Adult, [D(LOCATION),     D(LOCATION),      D(LOCATION),      A(NONE),          D(LOCATION)]),
    (ViewLocation,         Blocked,      By::Adult, [D(BLOCKED),      D(BLOCKED),       D(BLOCKED),       D(BLOCKED),       D(BLOCKED)]),
    (ViewLocation,         Connected,    By::Child, [D(LOCATION),     D(LOCATION),      D(LOCATION),      A(NONE),          D(LOCATION)]),
    (ViewLocation,         Mutual,       By::Child, [D(LOCATION),     D(LOCATION),      D(LOCATION),      A(NONE),          D(LOCATION)]),
    (ViewLocation,         Unrelated,    By::Child, [D(LOCATION),     D(LOCATION),      D(LOCATION),      A(NONE),          D(LOCATION)]),
    (ViewLocation,         Blocked,      By::Child, [D(BLOCKED),      D(BLOCKED),       D(BLOCKED),       D(BLOCKED),       D(BLOCKED)]),

    (ViewProfile,          Connected,    By::Adult, [A(PROFILE),      A(PROFILE),       A(PROFILE),       A(NONE),          A(PROFILE)]),
    (ViewProfile,          Mutual,       By::Adult, [D(PROFILE),      D(PROFILE),       D(PROFILE),       A(NONE),          D(PROFILE)]),
    (ViewProfile,          Unrelated,    By::Adult, [D(PROFILE),      D(PROFILE),       D(PROFILE),       A(NONE),          D(PROFILE)]),
    (ViewProfile,          Blocked,      By::Adult, [D(BLOCKED),      D(BLOCKED),       D(BLOCKED),       D(BLOCKED),       D(BLOCKED)]),
    (ViewProfile,          Connected,    By::Child, [A(PROFILE),      A(PROFILE),       A(PROFILE),       A(NONE),          A(PROFILE)]),
    (ViewProfile,          Mutual,       By::Child, [D(PROFILE),      D(PROFILE),       D(PROFILE),       A(NONE),          D(PROFILE)]),
    (ViewProfile,          Unrelated,    By::Child, [D(PROFILE),      D(PROFILE),       D(PROFILE),       A(NONE),          D(PROFILE)]),
    (ViewProfile,          Blocked,      By::Child, [D(BLOCKED),      D(BLOCKED),       D(BLOCKED),       D(BLOCKED),       D(BLOCKED)]),

    (Block,                Connected,    By::Adult, [A(NONE),         A(NONE),          A(NONE),          A(NONE),          A(NONE)]),
    (Block,                Mutual,       By::Adult, [A(NONE),         A(NONE),          A(NONE),          A(NONE),          A(NONE)]),
    (Block,                Unrelated,    By::Adult, [A(NONE),         A(NONE),          A(NONE),          A(NONE),          A(NONE)]),
    (Block,                Blocked,      By::Adult, [A(NONE),         A(NONE),          A(NONE),          A(NONE),          A(NONE)]),
    (Block,                Connected,    By::Child, [SUPPORT,         SUPPORT,          SUPPORT,          SUPPORT,          SUPPORT]),
    (Block,                Mutual,       By::Child, [SUPPORT,         SUPPORT,          SUPPORT,          SUPPORT,          SUPPORT]),
    (Block,                Unrelated,    By::Child, [SUPPORT,         SUPPORT,          SUPPORT,          SUPPORT,          SUPPORT]),
    (Block,                Blocked,      By::Child, [SUPPORT,         SUPPORT,          SUPPORT,          SUPPORT,          SUPPORT]),

    (Report,               Connected,    By::Adult, [A(NONE),         A(NONE),          A(NONE),          A(NONE),          A(NONE)]),
    (Report,               Mutual,       By::Adult, [A(NONE),         A(NONE),          A(NONE),          A(NONE),          A(NONE)]),
    (Report,               Unrelated,    By::Adult, [A(NONE),         A(NONE),          A(NONE),          A(NONE),          A(NONE)]),
    (Report,               Blocked,      By::Adult, [A(NONE),         A(NONE),          A(NONE),          A(NONE),          A(NONE)]),
    (Report,               Connected,    By::Child, [SUPPORT,         SUPPORT,          SUPPORT,          SUPPORT,          SUPPORT]),
    (Report,               Mutual,       By::Child, [SUPPORT,         SUPPORT,          SUPPORT,          SUPPORT,          SUPPORT]),
    (Report,               Unrelated,    By::Child, [SUPPORT,         SUPPORT,          SUPPORT,          SUPPORT,          SUPPORT]),
    (Report,               Blocked,      By::Child, [SUPPORT,         SUPPORT,          SUPPORT,          SUPPORT,          SUPPORT]),
];

/// The expected answer, in the decision's own terms.
fn expected(e: E) -> (Outcome, Measure, Option<&'static str>) {
    match e {
        A(m) => (Outcome::Allow, m, None),
        D(m) => (Outcome::Deny, m, None),
        P(m, key) => (Outcome::AllowWithPrompt, m, Some(key)),
    }
}

/// Checks one row for an actor in `actor_band`; returns the mismatches, described.
fn check_row(
    action: Action,
    relationship: Relationship,
    actor_band: AgeBand,
    cells: &[E; 5],
) -> Vec<String> {
    let mut failures = Vec::new();
    for (band, cell) in TARGETS.iter().zip(cells) {
        let d = run_default(
            of_band("actor", actor_band),
            of_band("target", *band),
            relationship,
            action,
        );
        let (outcome, measure, prompt) = expected(*cell);
        let got = (d.outcome, d.measure, d.prompt.as_ref().map(|p| p.as_str()));
        if got != (outcome, measure, prompt) || d.overridden {
            failures.push(format!(
                "{action} / {relationship} / actor {actor_band} / target {band}: expected \
                 {outcome} by {measure} with prompt {prompt:?}, got {} by {} with prompt \
                 {:?} (overridden {}): {}",
                d.outcome,
                d.measure,
                d.prompt.as_ref().map(|p| p.as_str()),
                d.overridden,
                d.reason
            ));
        }
    }
    failures
}

#[test]
fn every_action_relationship_and_age_band() {
    let mut failures = Vec::new();
    for (action, relationship, by, cells) in TABLE {
        let actor = match by {
            By::Adult => AgeBand::Adult,
            By::Child => AgeBand::From13To15,
        };
        failures.extend(check_row(*action, *relationship, actor, cells));
    }
    assert!(
        failures.is_empty(),
        "{} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_table_covers_every_combination_once() {
    for action in Action::ALL {
        for relationship in Relationship::ALL {
            for by in [By::Adult, By::Child] {
                let rows = TABLE
                    .iter()
                    .filter(|(a, r, b, _)| a == action && r == relationship && *b == by)
                    .count();
                assert_eq!(rows, 1, "{action} / {relationship} / {by:?}");
            }
        }
    }
    assert_eq!(TABLE.len(), Action::ALL.len() * Relationship::ALL.len() * 2);
    assert_eq!(TARGETS.len(), AgeBand::ALL.len());
}

/// Every child band acts alike, and so does an unknown age treated as a child: the codes
/// protect child users, not some of them.
#[test]
fn any_child_actor_answers_like_the_table() {
    let mut failures = Vec::new();
    for (action, relationship, by, cells) in TABLE {
        if *by == By::Child {
            for actor in [AgeBand::Under13, AgeBand::From16To17, AgeBand::Unknown] {
                failures.extend(check_row(*action, *relationship, actor, cells));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn treated_as_follows_the_bands() {
    let expected = [
        (AgeBand::Under13, AgeClass::Child),
        (AgeBand::From13To15, AgeClass::Child),
        (AgeBand::From16To17, AgeClass::Child),
        (AgeBand::Adult, AgeClass::Adult),
        (AgeBand::Unknown, AgeClass::Child),
    ];
    for (band, class) in expected {
        let d = run_default(
            adult("actor"),
            of_band("target", band),
            Relationship::Unrelated,
            Action::ViewProfile,
        );
        assert_eq!(d.target_treated_as, class, "{band}");
        assert_eq!(d.actor_treated_as, AgeClass::Adult);
    }
}

#[test]
fn measures_are_worded_as_documented() {
    let expected = [
        (
            Measure::NoneApplies,
            "none",
            "none",
            "No child-safety measure restricts this action between these accounts.",
        ),
        (
            Measure::F1NoNetworkExpansionForChild,
            "icu_f1_no_network_expansion_prompts_to_child",
            "ICU F1",
            "Child users are not presented with network expansion prompts (suggestions of \
             users to connect with).",
        ),
        (
            Measure::F1NotInNetworkExpansion,
            "icu_f1_not_in_network_expansion_prompts",
            "ICU F1",
            "Child users are not included in network expansion prompts presented to other \
             users.",
        ),
        (
            Measure::F1ConnectionListsHidden,
            "icu_f1_connection_lists_hidden",
            "ICU F1",
            "Child users are not visible in other users' connection lists, and their own \
             connection lists are not visible to other users.",
        ),
        (
            Measure::F1NoDirectMessages,
            "icu_f1_no_direct_messages_from_non_connected",
            "ICU F1",
            "Users who are not connected with a child user cannot send it direct messages.",
        ),
        (
            Measure::F1LocationHidden,
            "icu_f1_location_hidden",
            "ICU F1",
            "A child user's location information is not visible to other users.",
        ),
        (
            Measure::F2ConnectionRequest,
            "icu_f2_connection_request",
            "ICU F2",
            "Child users are given supportive information when they receive a connection \
             request from, or send one to, a user they are not connected with.",
        ),
        (
            Measure::F2BlockOrReport,
            "icu_f2_block_or_report",
            "ICU F2",
            "Child users are given supportive information when they block or report another \
             user.",
        ),
        (
            Measure::ChildProfilePrivate,
            "safeguard_child_profile_private",
            "Safeguard",
            "A child user's profile is visible only to the users it is connected with.",
        ),
        (
            Measure::Blocked,
            "safeguard_block_both_ways",
            "Safeguard",
            "A block stops all contact between the two accounts, in both directions.",
        ),
        (
            Measure::UnknownAgeNoContact,
            "safeguard_unknown_age_no_contact",
            "Safeguard",
            "An account whose age is unknown has no contact with other accounts until its age \
             is established.",
        ),
    ];
    assert_eq!(
        expected.len(),
        Measure::ALL.len(),
        "every measure is listed"
    );
    for (measure, id, code, text) in expected {
        assert_eq!(measure.as_str(), id);
        assert_eq!(measure.code(), code, "{id}");
        assert_eq!(measure.text(), text, "{id}");
    }
}
