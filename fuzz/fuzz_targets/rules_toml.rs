//! Policy rule files as `safeguard rules apply` and `PUT /v1/rules` read them: TOML (and the
//! same bytes as JSON), then validation and compilation into the evaluator, then one
//! evaluation against a fixed match.
//!
//! Checked: no panic and no hang on any file; a file that parses either validates and
//! compiles, or is refused with an `Error`; an accepted set written back as TOML (and as JSON)
//! reads back equal, as `RuleSet::to_toml` promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use safeguard_policy::{AccountAge, ItemFacts, Kind, MatchFacts, Policy, Rule, RuleSet};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for parsed in [RuleSet::parse_toml(text), RuleSet::parse_json(text)] {
        // The parsers validate: what they accept is a valid set.
        let Ok(set) = parsed else { continue };
        assert_eq!(RuleSet::parse_toml(&set.to_toml()).as_ref(), Ok(&set));
        assert_eq!(RuleSet::parse_json(&set.to_json()).as_ref(), Ok(&set));
        let rules: Vec<Rule> = set.rules.iter().cloned().map(|s| Rule::new(s, 1)).collect();
        let Ok(policy) = Policy::compile(rules) else {
            continue;
        };
        let tags = vec!["hotline".to_string()];
        let sources = vec!["ncmec".to_string()];
        let facts = [MatchFacts {
            bank: "B",
            bank_kind: "csam",
            bank_tags: &tags,
            classification: None,
            signal_type: "pdq",
            distance: Some(3.0),
            vpdq: None,
            sources: &sources,
        }];
        let item = ItemFacts {
            kind: Kind::Image,
            surface: None,
            account_age: AccountAge::Adult,
        };
        let _ = policy.evaluate(&item, &facts);
    }
});
