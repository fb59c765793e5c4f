//! The case state machine.
//!
//! ```text
//!   open ──claim──▶ in_review ──decide──▶ decided ──report──▶ reported ──close──▶ closed
//!     ▲               │   ▲                 │  │                                    ▲
//!     └───release─────┘   └────re-review────┘  └───────────────close─────────────────┘
//! ```
//!
//! A case is *active* (new matches of its account join it) while `open` or `in_review`. Once
//! decided it no longer grows: a later match opens a new case, so a decision always covers
//! exactly the items the moderator saw. Only the transitions in [`TRANSITIONS`] are allowed.

use safeguard_store::action::CaseHistory;

use crate::Error;

/// States of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaseState {
    /// Waiting in its queue.
    Open,
    /// A moderator has it.
    InReview,
    /// A moderator decided it.
    Decided,
    /// Reported to a hotline or authority.
    Reported,
    /// Nothing more to do.
    Closed,
}

impl CaseState {
    /// Every state.
    pub const ALL: [CaseState; 5] = [
        CaseState::Open,
        CaseState::InReview,
        CaseState::Decided,
        CaseState::Reported,
        CaseState::Closed,
    ];

    /// Stable name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Open => "open",
            CaseState::InReview => "in_review",
            CaseState::Decided => "decided",
            CaseState::Reported => "reported",
            CaseState::Closed => "closed",
        }
    }

    /// Parses [`CaseState::as_str`].
    pub fn parse(s: &str) -> Option<CaseState> {
        CaseState::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The states this one may move to.
    pub fn next(self) -> Vec<CaseState> {
        TRANSITIONS
            .iter()
            .filter(|(from, _)| *from == self)
            .map(|(_, to)| *to)
            .collect()
    }
}

/// Every allowed transition, as (from, to).
pub const TRANSITIONS: [(CaseState, CaseState); 7] = [
    (CaseState::Open, CaseState::InReview),
    (CaseState::InReview, CaseState::Open),
    (CaseState::InReview, CaseState::Decided),
    (CaseState::Decided, CaseState::InReview),
    (CaseState::Decided, CaseState::Reported),
    (CaseState::Decided, CaseState::Closed),
    (CaseState::Reported, CaseState::Closed),
];

/// Refuses a transition not in [`TRANSITIONS`], naming the allowed ones.
pub fn check_transition(from: CaseState, to: CaseState) -> Result<(), Error> {
    if TRANSITIONS.contains(&(from, to)) {
        return Ok(());
    }
    let allowed: Vec<&str> = from.next().into_iter().map(CaseState::as_str).collect();
    Err(Error::InvalidTransition(format!(
        "a case cannot go from {} to {}; from {} it can go to: {}",
        from.as_str(),
        to.as_str(),
        from.as_str(),
        if allowed.is_empty() {
            "nowhere (final)".to_string()
        } else {
            allowed.join(", ")
        }
    )))
}

/// What a decision means for reporting and for the figures. Decisions are free text (at most
/// a note's length); the first word, up to a `:` or a space, says what kind it is:
/// `confirmed` (apparent CSAM, a report candidate), `not_csam` or `false_positive` (a false
/// positive), anything else (escalated, needs a second opinion, not actionable, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecisionKind {
    /// Confirmed: the two-person rule applies before it is reported.
    Confirmed,
    /// Not what the match said: a false positive for the match's source.
    FalsePositive,
    /// Any other decision.
    Other,
}

impl DecisionKind {
    /// Classifies a decision's text.
    pub fn of(decision: &str) -> DecisionKind {
        // The store reads the same word to keep a confirmed case's evidence for its report.
        let word = safeguard_store::action::decision_word(decision).to_ascii_lowercase();
        match word.as_str() {
            "confirmed" => DecisionKind::Confirmed,
            "not_csam" | "false_positive" => DecisionKind::FalsePositive,
            _ => DecisionKind::Other,
        }
    }
}

/// The history line that made the case's current decision: the last move into `decided`.
pub fn decision_line(history: &[CaseHistory]) -> Option<&CaseHistory> {
    history
        .iter()
        .rev()
        .find(|h| h.action == "state" && h.to_state.as_deref() == Some("decided"))
}

/// The approval of the case's current decision, if any: an `approved` line after
/// [`decision_line`]. A case decided again needs a new approval.
pub fn current_approval(history: &[CaseHistory]) -> Option<&CaseHistory> {
    let start = history
        .iter()
        .rposition(|h| h.action == "state" && h.to_state.as_deref() == Some("decided"))?;
    history[start..].iter().find(|h| h.action == "approved")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(action: &str, to: Option<&str>, actor: &str) -> CaseHistory {
        CaseHistory {
            at: 0,
            actor: actor.into(),
            action: action.into(),
            from_state: None,
            to_state: to.map(str::to_owned),
            note: None,
            decision: None,
        }
    }

    #[test]
    fn decisions_are_classified_by_their_first_word() {
        for (text, kind) in [
            ("confirmed", DecisionKind::Confirmed),
            ("Confirmed: A1", DecisionKind::Confirmed),
            ("confirmed A2 two files", DecisionKind::Confirmed),
            ("not_csam", DecisionKind::FalsePositive),
            ("false_positive: meme", DecisionKind::FalsePositive),
            ("escalate", DecisionKind::Other),
            ("confirmedly", DecisionKind::Other),
            ("", DecisionKind::Other),
        ] {
            assert_eq!(DecisionKind::of(text), kind, "{text:?}");
        }
    }

    #[test]
    fn an_approval_counts_only_for_the_current_decision() {
        let mut h = vec![
            line("opened", Some("open"), "system"),
            line("state", Some("in_review"), "r1"),
            line("state", Some("decided"), "r1"),
        ];
        assert_eq!(decision_line(&h).unwrap().actor, "r1");
        assert!(current_approval(&h).is_none());
        h.push(line("approved", None, "s1"));
        assert_eq!(current_approval(&h).unwrap().actor, "s1");
        h.push(line("state", Some("in_review"), "r2"));
        h.push(line("state", Some("decided"), "r2"));
        assert_eq!(decision_line(&h).unwrap().actor, "r2");
        assert!(
            current_approval(&h).is_none(),
            "an old approval carried over"
        );
    }

    #[test]
    fn only_listed_transitions_pass() {
        for from in CaseState::ALL {
            for to in CaseState::ALL {
                let ok = check_transition(from, to).is_ok();
                assert_eq!(ok, TRANSITIONS.contains(&(from, to)), "{from:?} -> {to:?}");
            }
        }
        let e = check_transition(CaseState::Open, CaseState::Reported).unwrap_err();
        assert!(e.to_string().contains("in_review"), "{e}");
        assert_eq!(e.code(), "invalid_transition");
        assert!(check_transition(CaseState::Closed, CaseState::Open)
            .unwrap_err()
            .to_string()
            .contains("final"));
        for s in CaseState::ALL {
            assert_eq!(CaseState::parse(s.as_str()), Some(s));
        }
    }
}
