//! Every outcome field, defaults included, and the order of rules.

use safeguard_policy::{Priority, RuleRef, Verdict};

use crate::common::*;

fn then(body: &str) -> safeguard_policy::Decision {
    let p = policy(&format!(
        "[[rule]]\nid = \"r\"\n[rule.when]\n[rule.then]\n{body}\n"
    ));
    eval(&p, &item(), &[M::default()])
}

#[test]
fn each_verdict() {
    for v in Verdict::ALL {
        let d = then(&format!("verdict = \"{v}\""));
        assert_eq!(d.verdict, *v);
        assert_eq!(
            d.rule,
            Some(RuleRef {
                id: "r".into(),
                version: version_of(0)
            }),
            "the rule and its version are recorded"
        );
    }
}

#[test]
fn defaults_of_a_rule() {
    for v in ["review", "hold", "block"] {
        let d = then(&format!("verdict = \"{v}\""));
        assert_eq!(d.queue.as_deref(), Some("default"), "{v} queues by default");
        assert_eq!(d.priority, Priority::Normal);
        assert!(!d.report_candidate);
        assert!(d.labels.is_empty());
    }
    let d = then("verdict = \"allow\"");
    assert_eq!(d.queue, None, "allow queues nothing");
    assert_eq!(d.priority, Priority::Normal);
    assert!(!d.report_candidate);
}

#[test]
fn every_field_given() {
    let d = then(
        r#"
        verdict = "hold"
        queue = "terror-queue_2"
        priority = "urgent"
        report_candidate = true
        labels = ["x", "needs second look"]
        "#,
    );
    assert_eq!(d.verdict, Verdict::Hold);
    assert_eq!(d.queue.as_deref(), Some("terror-queue_2"));
    assert_eq!(d.priority, Priority::Urgent);
    assert!(d.report_candidate);
    assert_eq!(d.labels, ["x", "needs second look"]);
    assert_eq!(d.matched, [0]);
    assert!(d.shadow.is_empty());
}

#[test]
fn each_priority() {
    for p in Priority::ALL {
        let d = then(&format!("verdict = \"review\"\npriority = \"{p}\""));
        assert_eq!(d.priority, *p);
    }
}

#[test]
fn allow_with_labels() {
    let d = then("verdict = \"allow\"\nlabels = [\"benign-meme\"]\nreport_candidate = false");
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.labels, ["benign-meme"]);
    assert_eq!(decider(&d), "r", "an allow by a rule names the rule");
}

const TWO: &str = r#"
[[rule]]
id = "first"
[rule.when]
banks = ["A"]
[rule.then]
verdict = "review"
[[rule]]
id = "second"
[rule.when]
signal_types = ["pdq"]
[rule.then]
verdict = "block"
"#;

#[test]
fn first_firing_rule_wins() {
    let p = policy(TWO);
    let d = eval(&p, &item(), &[M::default().bank("A")]);
    assert_eq!(decider(&d), "first", "both fire; the first decides");
    assert_eq!(
        d.verdict,
        Verdict::Review,
        "even though the second is more severe"
    );
    assert_eq!(
        d.rule.unwrap().version,
        version_of(0),
        "version of the rule at position 0"
    );
    let d = eval(&p, &item(), &[M::default().bank("B")]);
    assert_eq!(
        decider(&d),
        "second",
        "the first does not fire: the next one decides"
    );
    assert_eq!(d.rule.unwrap().version, version_of(1));
}

#[test]
fn order_is_the_order_of_the_set() {
    // The same two rules swapped: now the other decides.
    let mut set = safeguard_policy::RuleSet::parse_toml(TWO).unwrap();
    set.rules.reverse();
    let p = policy(&set.to_toml());
    let d = eval(&p, &item(), &[M::default().bank("A")]);
    assert_eq!(decider(&d), "second");
    assert_eq!(d.verdict, Verdict::Block);
}

#[test]
fn deciding_rule_may_fire_on_a_later_match() {
    // Rule order beats match order: the first rule decides even if its match comes last.
    let p = policy(TWO);
    let d = eval(
        &p,
        &item(),
        &[M::default().bank("B"), M::default().bank("A").signal("md5")],
    );
    assert_eq!(decider(&d), "first");
    assert_eq!(d.matched, [1]);
}
