//! A block stops all contact, both ways, under any policy; the user's own protections stay.

use safeguard_contact::{Action, AgeBand, Measure, Outcome, Relationship};

use crate::common::*;

/// Every pairing of an adult and children, in both directions.
fn pairs() -> Vec<(safeguard_contact::Account, safeguard_contact::Account)> {
    let c = || child("c", AgeBand::From13To15);
    let c2 = || child("c2", AgeBand::Under13);
    let a = || adult("a");
    let a2 = || adult("a2");
    vec![(a(), c()), (c(), a()), (c(), c2()), (a(), a2())]
}

#[test]
fn blocked_denies_every_contact_action_both_ways() {
    for (actor, target) in pairs() {
        for action in CONTACT_ACTIONS {
            let d = run_default(actor.clone(), target.clone(), Relationship::Blocked, action);
            assert_eq!(
                d.outcome,
                Outcome::Deny,
                "{action} {} -> {}",
                actor.id,
                target.id
            );
            assert_eq!(d.measure, Measure::Blocked);
            assert_eq!(d.prompt, None);
        }
    }
}

#[test]
fn no_override_lifts_a_block() {
    // Overrides that would allow every contact action between anyone. Validation refuses
    // `blocked` in an override's relationships, so these match "every relationship"; the
    // block must still win.
    let mut toml = String::new();
    for action in CONTACT_ACTIONS {
        toml.push_str(&format!(
            "[[override]]\naction = \"{action}\"\noutcome = \"allow\"\n"
        ));
    }
    let p = policy(&toml);
    for (actor, target) in pairs() {
        for action in CONTACT_ACTIONS {
            let d = run(
                &p,
                actor.clone(),
                target.clone(),
                Relationship::Blocked,
                action,
            );
            assert_eq!(d.outcome, Outcome::Deny, "{action}");
            assert_eq!(d.measure, Measure::Blocked);
            assert!(!d.overridden);
        }
    }
}

#[test]
fn a_block_outranks_the_unknown_age_rule() {
    let p = policy("unknown_age = \"deny_contact\"");
    let d = run(
        &p,
        unknown("u"),
        adult("a"),
        Relationship::Blocked,
        Action::Message,
    );
    assert_eq!(d.measure, Measure::Blocked);
}

#[test]
fn blocking_and_reporting_stay_possible_between_blocked_accounts() {
    for (actor, target) in pairs() {
        for action in [Action::Block, Action::Report] {
            let d = run_default(actor.clone(), target.clone(), Relationship::Blocked, action);
            assert_ne!(
                d.outcome,
                Outcome::Deny,
                "{action} {} -> {}",
                actor.id,
                target.id
            );
        }
    }
}
