//! Each validation rule, refused and (at its limit) accepted.

use safeguard_policy::{
    Error, Mode, Policy, Priority, Rule, RuleSet, RuleSpec, Then, Verdict, When, MAX_RULES,
};

fn base(id: &str) -> RuleSpec {
    RuleSpec {
        id: id.into(),
        description: None,
        mode: Mode::Enforce,
        when: When::default(),
        then: Then {
            verdict: Verdict::Hold,
            queue: None,
            priority: None,
            report_candidate: None,
            labels: Vec::new(),
        },
    }
}

/// Asserts an `InvalidRule` error for `field`, with `needle` in its message.
fn invalid(spec: &RuleSpec, field: &str, needle: &str) {
    let e = spec.validate().unwrap_err();
    match &e {
        Error::InvalidRule { rule, field: f, .. } => {
            assert_eq!(rule.as_deref(), Some(spec.id.as_str()));
            assert_eq!(f.as_deref(), Some(field), "{e}");
        }
        other => panic!("expected InvalidRule, got {other:?}"),
    }
    assert_eq!(e.code(), "invalid_rule");
    assert!(e.to_string().contains(needle), "`{needle}` not in: {e}");
    // Compile refuses what validate refuses.
    assert_eq!(
        Policy::compile(vec![Rule::new(spec.clone(), 1)]).unwrap_err(),
        e
    );
}

#[test]
fn ids() {
    for ok in ["a", "0", "csam-block", "a.b_c-d", &"x".repeat(64)] {
        base(ok).validate().unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "",
        "A",
        "-a",
        ".a",
        "_a",
        "a b",
        "a/b",
        "é",
        &"x".repeat(65),
    ] {
        invalid(&base(bad), "id", "characters of a-z");
    }
    invalid(&base("builtin.csam"), "id", "reserved");
    invalid(&base("builtin.mine"), "id", "reserved");
    base("builtinx").validate().unwrap();
}

#[test]
fn description_length() {
    let mut s = base("r");
    s.description = Some("é".repeat(1024));
    s.validate().unwrap();
    s.description = Some("é".repeat(1025));
    invalid(&s, "description", "1024");
}

#[test]
fn empty_lists_say_omit_the_field() {
    type Set = fn(&mut When);
    let cases: [(&str, Set); 10] = [
        ("when.banks", |w| w.banks = Some(vec![])),
        ("when.bank_kinds", |w| w.bank_kinds = Some(vec![])),
        ("when.bank_tags", |w| w.bank_tags = Some(vec![])),
        ("when.classifications", |w| w.classifications = Some(vec![])),
        ("when.signal_types", |w| w.signal_types = Some(vec![])),
        ("when.sources", |w| w.sources = Some(vec![])),
        ("when.surfaces", |w| w.surfaces = Some(vec![])),
        ("when.account_ages", |w| w.account_ages = Some(vec![])),
        ("when.kinds", |w| w.kinds = Some(vec![])),
        ("when.banks", |w| w.banks = Some(vec![String::new()])),
    ];
    for (i, (field, set)) in cases.into_iter().enumerate() {
        let mut s = base("r");
        set(&mut s.when);
        let needle = if i == 9 {
            "1 to 256 bytes"
        } else {
            "omit the field instead"
        };
        invalid(&s, field, needle);
    }
}

#[test]
fn list_lengths() {
    let mut s = base("r");
    s.when.banks = Some(vec!["b".into(); 1000]);
    s.validate().unwrap();
    s.when.banks = Some(vec!["b".into(); 1001]);
    invalid(&s, "when.banks", "at most 1000");
    s.when.banks = Some(vec!["b".repeat(256)]);
    s.validate().unwrap();
    s.when.banks = Some(vec!["b".repeat(257)]);
    invalid(&s, "when.banks", "256");
}

#[test]
fn source_wildcard_only_at_the_end() {
    let mut s = base("r");
    s.when.sources = Some(vec!["file:*".into(), "*".into(), "ncmec".into()]);
    s.validate().unwrap();
    s.when.sources = Some(vec!["*:x".into()]);
    invalid(&s, "when.sources", "only end");
    s.when.sources = Some(vec!["fi*le*".into()]);
    invalid(&s, "when.sources", "only end");
}

#[test]
fn shares_are_percentages() {
    for (field, set) in [
        (
            "when.vpdq_min_query_share",
            (|w, v| w.vpdq_min_query_share = v) as fn(&mut When, Option<f64>),
        ),
        ("when.vpdq_min_compared_share", |w, v| {
            w.vpdq_min_compared_share = v
        }),
    ] {
        for ok in [0.0, 50.5, 100.0] {
            let mut s = base("r");
            set(&mut s.when, Some(ok));
            s.validate().unwrap();
        }
        for bad in [-0.1, 100.01, f64::NAN, f64::INFINITY] {
            let mut s = base("r");
            set(&mut s.when, Some(bad));
            invalid(&s, field, "percentage");
        }
    }
    // NaN reaches validation from TOML, which has a literal for it.
    let e = RuleSet::parse_toml(
        "[[rule]]\nid = \"r\"\n[rule.when]\nvpdq_min_query_share = nan\n[rule.then]\nverdict = \"hold\"\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("percentage"), "{e}");
}

#[test]
fn max_distance_bound() {
    let mut s = base("r");
    s.when.max_distance = Some(256);
    s.validate().unwrap();
    s.when.max_distance = Some(257);
    invalid(&s, "when.max_distance", "256");
}

#[test]
fn distance_and_shares_cannot_combine() {
    let mut s = base("r");
    s.when.max_distance = Some(10);
    s.when.vpdq_min_compared_share = Some(50.0);
    invalid(&s, "when.max_distance", "write two rules");
}

#[test]
fn queue_names() {
    for ok in ["csam", "a", "q_1-x", &"q".repeat(64)] {
        let mut s = base("r");
        s.then.queue = Some(ok.into());
        s.validate().unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in ["", "Q", "a.b", "a b", &"q".repeat(65)] {
        let mut s = base("r");
        s.then.queue = Some(bad.into());
        invalid(&s, "then.queue", "characters of a-z");
    }
}

#[test]
fn labels() {
    let mut s = base("r");
    s.then.labels = vec!["é".repeat(64); 16];
    s.validate().unwrap();
    s.then.labels = vec!["l".into(); 17];
    invalid(&s, "then.labels", "at most 16");
    s.then.labels = vec!["é".repeat(65)];
    invalid(&s, "then.labels", "1 to 64");
    s.then.labels = vec![String::new()];
    invalid(&s, "then.labels", "1 to 64");
    s.then.labels = vec!["a\nb".into()];
    invalid(&s, "then.labels", "control");
}

#[test]
fn allow_carries_no_queue_priority_or_report() {
    let mut s = base("r");
    s.then.verdict = Verdict::Allow;
    s.validate().unwrap();
    s.then.report_candidate = Some(false);
    s.validate().unwrap();
    let mut q = s.clone();
    q.then.queue = Some("x".into());
    invalid(&q, "then.queue", "allow");
    let mut r = s.clone();
    r.then.report_candidate = Some(true);
    invalid(&r, "then.report_candidate", "allow");
    let mut p = s.clone();
    p.then.priority = Some(Priority::High);
    invalid(&p, "then.priority", "allow");
    // The same fields are fine on every other verdict.
    for v in [Verdict::Review, Verdict::Hold, Verdict::Block] {
        let mut s = base("r");
        s.then.verdict = v;
        s.then.queue = Some("x".into());
        s.then.priority = Some(Priority::Low);
        s.then.report_candidate = Some(true);
        s.validate().unwrap();
    }
}

#[test]
fn duplicate_ids() {
    let set = RuleSet {
        rules: vec![base("a"), base("b"), base("a")],
    };
    let e = set.validate().unwrap_err();
    assert_eq!(e, Error::Duplicate("a".into()));
    assert_eq!(e.code(), "duplicate_rule");
    assert!(e.to_string().contains("`a`"));
    let rules = set.rules.into_iter().map(|s| Rule::new(s, 1)).collect();
    assert_eq!(Policy::compile(rules).unwrap_err(), e);
}

#[test]
fn too_many_rules() {
    let specs: Vec<RuleSpec> = (0..MAX_RULES).map(|i| base(&format!("r{i}"))).collect();
    RuleSet {
        rules: specs.clone(),
    }
    .validate()
    .unwrap();
    let full = Policy::compile(specs.iter().cloned().map(|s| Rule::new(s, 1)).collect()).unwrap();
    assert_eq!(full.rules().len(), MAX_RULES + 2, "the built-ins fit too");
    let mut more = specs;
    more.push(base("one-more"));
    let e = RuleSet {
        rules: more.clone(),
    }
    .validate()
    .unwrap_err();
    assert_eq!(
        e,
        Error::TooMany {
            count: MAX_RULES + 1,
            max: MAX_RULES
        }
    );
    assert_eq!(e.code(), "too_many_rules");
    let rules = more.into_iter().map(|s| Rule::new(s, 1)).collect();
    assert_eq!(Policy::compile(rules).unwrap_err(), e);
}

#[test]
fn the_last_of_a_full_set_still_decides() {
    // Rule 999 sits in the last bitset word in use; it must be found like rule 0.
    let mut specs: Vec<RuleSpec> = (0..MAX_RULES)
        .map(|i| {
            let mut s = base(&format!("r{i}"));
            s.when.banks = Some(vec![format!("B{i}")]);
            s
        })
        .collect();
    specs[MAX_RULES - 1].then.verdict = Verdict::Block;
    let p = Policy::compile(specs.into_iter().map(|s| Rule::new(s, 3)).collect()).unwrap();
    let m = crate::common::M::default().bank(&format!("B{}", MAX_RULES - 1));
    let d = crate::common::eval(&p, &crate::common::item(), &[m]);
    assert_eq!(crate::common::decider(&d), format!("r{}", MAX_RULES - 1));
    assert_eq!(d.verdict, Verdict::Block);
}
