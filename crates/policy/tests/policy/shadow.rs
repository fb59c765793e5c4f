//! Shadow mode: recorded, never deciding.

use safeguard_policy::{Priority, Verdict};

use crate::common::*;

const SET: &str = r#"
[[rule]]
id = "try-block-pdq"
mode = "shadow"
[rule.when]
signal_types = ["pdq"]
[rule.then]
verdict = "block"
queue = "trial"
priority = "urgent"
report_candidate = true
labels = ["trial"]

[[rule]]
id = "enforced-a"
[rule.when]
banks = ["A"]
[rule.then]
verdict = "review"

[[rule]]
id = "try-md5"
mode = "shadow"
[rule.when]
signal_types = ["md5"]
[rule.then]
verdict = "hold"

[[rule]]
id = "try-after"
mode = "shadow"
[rule.when]
[rule.then]
verdict = "allow"
"#;

#[test]
fn shadow_rules_record_and_do_not_decide() {
    let p = policy(SET);
    let d = eval(&p, &item(), &[M::default().bank("A")]);
    assert_eq!(
        decider(&d),
        "enforced-a",
        "the shadow rule before it does not decide"
    );
    assert_eq!(d.verdict, Verdict::Review);
    let ids: Vec<&str> = d.shadow.iter().map(|s| s.rule.id.as_str()).collect();
    assert_eq!(
        ids,
        ["try-block-pdq", "try-after"],
        "every shadow rule that would fire, even after the decider; not the md5 one"
    );
    let s = &d.shadow[0];
    assert_eq!(s.rule.version, version_of(0));
    assert_eq!(s.verdict, Verdict::Block);
    assert_eq!(s.queue.as_deref(), Some("trial"));
    assert_eq!(s.priority, Priority::Urgent);
    assert!(s.report_candidate);
    assert_eq!(s.labels, ["trial"]);
    let after = &d.shadow[1];
    assert_eq!(after.verdict, Verdict::Allow);
    assert_eq!(after.queue, None);
    assert!(!after.report_candidate);
}

#[test]
fn shadow_rules_change_nothing() {
    // Removing the shadow rules leaves every decision equal, apart from the shadow list.
    let with = policy(SET);
    let mut set = safeguard_policy::RuleSet::parse_toml(SET).unwrap();
    set.rules
        .retain(|r| r.mode == safeguard_policy::Mode::Enforce);
    // Keep the enforced rule's version the same as in `with` (it was at position 1).
    let without = safeguard_policy::Policy::compile(
        set.rules
            .into_iter()
            .map(|s| safeguard_policy::Rule::new(s, version_of(1)))
            .collect(),
    )
    .unwrap();
    let cases: [&[M]; 5] = [
        &[M::default().bank("A")],
        &[M::default()],
        &[M::default().signal("md5")],
        &[M::default().kind("csam")],
        &[
            M::default().kind("csam"),
            M::default().bank("A").signal("md5"),
        ],
    ];
    for ms in cases {
        let mut a = eval(&with, &item(), ms);
        let b = eval(&without, &item(), ms);
        assert!(
            !a.shadow.is_empty(),
            "the catch-all shadow rule fires on every match"
        );
        assert!(b.shadow.is_empty());
        a.shadow.clear();
        assert_eq!(a, b, "{ms:?}");
    }
}

#[test]
fn shadow_catch_all_does_not_replace_builtins() {
    let p = policy(
        "[[rule]]\nid = \"s\"\nmode = \"shadow\"\n[rule.when]\n[rule.then]\nverdict = \"allow\"\n",
    );
    let d = eval(&p, &item(), &[M::default().kind("csam")]);
    assert_eq!(decider(&d), "builtin.csam");
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(d.shadow.len(), 1);
    assert_eq!(d.shadow[0].verdict, Verdict::Allow);
}

#[test]
fn no_match_records_no_shadow() {
    let d = eval(&policy(SET), &item(), &[]);
    assert!(d.shadow.is_empty());
}
