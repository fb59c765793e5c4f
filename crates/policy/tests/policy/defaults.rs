//! The built-in default policy and items without matches.

use safeguard_policy::{
    builtin_rules, Policy, Priority, Rule, RuleRef, RuleSet, Verdict, BUILTIN_CSAM_ID,
    BUILTIN_MATCH_ID,
};

use crate::common::*;

#[test]
fn zero_rules_csam_bank_blocks() {
    let p = Policy::default();
    let d = eval(&p, &item(), &[M::default().kind("csam")]);
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(
        d.rule,
        Some(RuleRef {
            id: BUILTIN_CSAM_ID.into(),
            version: 1
        })
    );
    assert_eq!(d.queue.as_deref(), Some("csam"));
    assert_eq!(d.priority, Priority::High);
    assert!(d.report_candidate);
    assert_eq!(d.matched, [0]);
}

#[test]
fn zero_rules_standard_bank_reviews() {
    let p = Policy::compile(Vec::new()).unwrap();
    let d = eval(&p, &item(), &[M::default()]);
    assert_eq!(d.verdict, Verdict::Review);
    assert_eq!(
        d.rule,
        Some(RuleRef {
            id: BUILTIN_MATCH_ID.into(),
            version: 1
        })
    );
    assert_eq!(d.queue.as_deref(), Some("default"));
    assert_eq!(d.priority, Priority::Normal);
    assert!(!d.report_candidate);
}

#[test]
fn csam_wins_over_other_matches() {
    let p = Policy::default();
    let d = eval(
        &p,
        &item(),
        &[M::default(), M::default().kind("csam"), M::default()],
    );
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(d.matched, [1], "only the CSAM match is the evidence");
}

#[test]
fn no_match_is_allow_by_no_rule() {
    for p in [
        Policy::default(),
        // Even a catch-all rule acts only on matches.
        policy("[[rule]]\nid = \"all\"\n[rule.when]\n[rule.then]\nverdict = \"block\"\n"),
    ] {
        let d = eval(&p, &item(), &[]);
        assert_eq!(d.verdict, Verdict::Allow);
        assert_eq!(d.rule, None);
        assert_eq!(d.queue, None);
        assert!(!d.report_candidate);
        assert!(d.matched.is_empty() && d.shadow.is_empty());
    }
}

#[test]
fn operator_rules_come_before_builtins() {
    let p = policy(
        r#"
        [[rule]]
        id = "own-bank-hold"
        [rule.when]
        banks = ["OWN"]
        [rule.then]
        verdict = "hold"
        "#,
    );
    assert_eq!(
        decider(&eval(&p, &item(), &[M::default().bank("OWN")])),
        "own-bank-hold"
    );
    // Rules that do not fire leave the built-ins in force.
    assert_eq!(
        decider(&eval(&p, &item(), &[M::default().kind("csam")])),
        "builtin.csam"
    );
    assert_eq!(
        decider(&eval(&p, &item(), &[M::default()])),
        "builtin.match"
    );
}

#[test]
fn catch_all_overrides_builtins() {
    let p = policy("[[rule]]\nid = \"all\"\n[rule.when]\n[rule.then]\nverdict = \"review\"\n");
    let d = eval(&p, &item(), &[M::default().kind("csam")]);
    assert_eq!(decider(&d), "all");
    assert_eq!(d.verdict, Verdict::Review);
    assert!(!d.report_candidate);
}

#[test]
fn builtins_are_listed_after_operator_rules() {
    let ids: Vec<String> = Policy::default()
        .rules()
        .map(|r| r.id().to_string())
        .collect();
    assert_eq!(ids, [BUILTIN_CSAM_ID, BUILTIN_MATCH_ID]);
    let p = policy("[[rule]]\nid = \"a\"\n[rule.when]\n[rule.then]\nverdict = \"hold\"\n");
    let ids: Vec<&str> = p.rules().map(Rule::id).collect();
    assert_eq!(ids, ["a", BUILTIN_CSAM_ID, BUILTIN_MATCH_ID]);
    let builtins = builtin_rules();
    assert_eq!(builtins[0].spec.then.verdict, Verdict::Block);
    assert_eq!(
        builtins[0].spec.when.bank_kinds.as_deref(),
        Some(&["csam".to_string()][..])
    );
    assert!(builtins[1].spec.when.is_empty());
    // Listing them as a rules file is valid TOML that shows what they do (but an operator
    // cannot load it: the builtin. prefix is reserved).
    let shown = RuleSet {
        rules: builtins.into_iter().map(|r| r.spec).collect(),
    }
    .to_toml();
    assert!(shown.contains("bank_kinds = [\"csam\"]"), "{shown}");
    assert!(RuleSet::parse_toml(&shown)
        .unwrap_err()
        .to_string()
        .contains("reserved"));
}

#[test]
fn policy_is_shareable_between_threads() {
    // The server compiles once and evaluates from every request handler.
    fn shareable<T: Send + Sync>() {}
    shareable::<Policy>();
}
