//! The built-in default policy: what happens with zero configuration, and after every
//! operator rule when none of them fired.
//!
//! 1. `builtin.csam`: a match in a bank of kind `csam` is blocked, queued in `csam` at high
//!    priority, and is a report candidate. Known CSAM must never be published, and US
//!    providers must report it (18 U.S.C. 2258A).
//! 2. `builtin.match`: any other match goes to review in the default queue. A match in an
//!    ordinary bank is a signal, not a judgement; a person decides.
//!
//! They are ordinary rules, evaluated after the operator's, so an operator's catch-all rule
//! (an empty `when`) replaces them, and they can be listed like any other.

use crate::outcome::{Priority, Verdict};
use crate::rule::{Mode, Rule, RuleSpec, Then, When, DEFAULT_QUEUE};

/// Id of the built-in rule for CSAM banks.
pub const BUILTIN_CSAM_ID: &str = "builtin.csam";
/// Id of the built-in rule for every other match.
pub const BUILTIN_MATCH_ID: &str = "builtin.match";
/// Version of both built-in rules; bumped if their meaning ever changes, so old verdicts keep
/// naming the rule that produced them.
pub const BUILTIN_VERSION: u32 = 1;
/// The bank kind `builtin.csam` blocks.
pub const CSAM_BANK_KIND: &str = "csam";
/// The queue `builtin.csam` sends to.
pub const CSAM_QUEUE: &str = "csam";
/// How many built-in rules there are.
pub(crate) const BUILTIN_COUNT: usize = 2;

/// The built-in rules, in evaluation order. See the module documentation.
pub fn builtin_rules() -> Vec<Rule> {
    let csam = RuleSpec {
        id: BUILTIN_CSAM_ID.to_string(),
        description: Some(
            "A match in a CSAM bank is blocked, queued for review at high priority, \
             and is a candidate for a report."
                .to_string(),
        ),
        mode: Mode::Enforce,
        when: When {
            bank_kinds: Some(vec![CSAM_BANK_KIND.to_string()]),
            ..When::default()
        },
        then: Then {
            verdict: Verdict::Block,
            queue: Some(CSAM_QUEUE.to_string()),
            priority: Some(Priority::High),
            report_candidate: Some(true),
            labels: Vec::new(),
        },
    };
    let any = RuleSpec {
        id: BUILTIN_MATCH_ID.to_string(),
        description: Some("Any other match goes to review.".to_string()),
        mode: Mode::Enforce,
        when: When::default(),
        then: Then {
            verdict: Verdict::Review,
            queue: Some(DEFAULT_QUEUE.to_string()),
            priority: Some(Priority::Normal),
            report_candidate: Some(false),
            labels: Vec::new(),
        },
    };
    let rules = vec![
        Rule::new(csam, BUILTIN_VERSION),
        Rule::new(any, BUILTIN_VERSION),
    ];
    debug_assert_eq!(rules.len(), BUILTIN_COUNT);
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_valid_and_reserved() {
        let rules = builtin_rules();
        assert_eq!(rules.len(), BUILTIN_COUNT);
        for r in &rules {
            r.spec.validate_as(true).unwrap();
            // The same spec from an operator is refused: the prefix is reserved.
            let err = r.spec.validate().unwrap_err();
            assert!(err.to_string().contains("reserved"), "{err}");
        }
        assert!(rules[1].spec.when.is_empty());
    }
}
