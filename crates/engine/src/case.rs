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

#[cfg(test)]
mod tests {
    use super::*;

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
