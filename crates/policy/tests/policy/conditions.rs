//! Every condition, firing and not firing, and the one-match rule for match conditions.

use safeguard_policy::{AccountAge, Classification, Kind, Surface};

use crate::common::*;

#[test]
fn banks() {
    let w = r#"banks = ["NCMEC_CSAM", "OTHER"]"#;
    assert!(fires(w, &item(), &M::default().bank("NCMEC_CSAM")));
    assert!(fires(w, &item(), &M::default().bank("OTHER")));
    assert!(
        !fires(w, &item(), &M::default().bank("ncmec_csam")),
        "exact, case-sensitive"
    );
    assert!(!fires(w, &item(), &M::default().bank("NCMEC")));
}

#[test]
fn bank_kinds() {
    let w = r#"bank_kinds = ["csam"]"#;
    assert!(fires(w, &item(), &M::default().kind("csam")));
    assert!(!fires(w, &item(), &M::default().kind("standard")));
}

#[test]
fn bank_tags() {
    let w = r#"bank_tags = ["hotline", "terror"]"#;
    let mut m = M::default();
    assert!(!fires(w, &item(), &m), "a bank without tags fails");
    m.tags = vec!["x".into(), "terror".into()];
    assert!(fires(w, &item(), &m), "any tag of the bank in the list");
    m.tags = vec!["x".into(), "y".into()];
    assert!(!fires(w, &item(), &m));
}

#[test]
fn classifications() {
    let w = r#"classifications = ["a1", "A2"]"#;
    let mut m = M::default();
    assert!(!fires(w, &item(), &m), "no classification fails");
    m.classification = Some(Classification::A1);
    assert!(fires(w, &item(), &m), "the rule's lower-case a1 is A1");
    m.classification = Some(Classification::A2);
    assert!(fires(w, &item(), &m));
    m.classification = Some(Classification::B1);
    assert!(!fires(w, &item(), &m));
}

#[test]
fn signal_types() {
    let w = r#"signal_types = ["pdq", "md5"]"#;
    assert!(fires(w, &item(), &M::default().signal("md5")));
    assert!(fires(w, &item(), &M::default()));
    assert!(!fires(w, &item(), &M::default().signal("sha256")));
}

#[test]
fn max_distance() {
    let w = "max_distance = 31";
    let m = M::default();
    assert!(
        fires(w, &item(), &m.clone().distance(31.0)),
        "the bound itself is within"
    );
    assert!(fires(w, &item(), &m.clone().distance(0.0)));
    assert!(!fires(w, &item(), &m.clone().distance(32.0)));
    assert!(
        !fires(w, &item(), &m.distance(f64::NAN)),
        "NaN satisfies no bound"
    );
    assert!(
        !fires(w, &item(), &M::default().vpdq(100.0, 100.0)),
        "vPDQ has no distance"
    );
    let md5 = M::default().signal("md5").distance(0.0);
    assert!(fires("max_distance = 0", &item(), &md5));
}

#[test]
fn max_distance_with_several_bounds() {
    // Several bounds in one policy exercise the sorted, accumulated threshold table.
    let p = policy(
        r#"
        [[rule]]
        id = "tight"
        [rule.when]
        max_distance = 5
        [rule.then]
        verdict = "block"
        [[rule]]
        id = "loose"
        [rule.when]
        max_distance = 40
        [rule.then]
        verdict = "hold"
        [[rule]]
        id = "mid"
        [rule.when]
        max_distance = 20
        [rule.then]
        verdict = "review"
        "#,
    );
    for (d, want) in [
        (0.0, "tight"),
        (5.0, "tight"),
        (6.0, "loose"),
        (40.0, "loose"),
    ] {
        let m = M::default().distance(d);
        assert_eq!(decider(&eval(&p, &item(), &[m])), want, "distance {d}");
    }
    let m = M::default().distance(41.0);
    assert_eq!(decider(&eval(&p, &item(), &[m])), "builtin.match");
}

#[test]
fn vpdq_min_query_share() {
    let w = "vpdq_min_query_share = 80.0";
    assert!(
        fires(w, &item(), &M::default().vpdq(80.0, 0.0)),
        "the bound itself holds"
    );
    assert!(fires(w, &item(), &M::default().vpdq(100.0, 0.0)));
    assert!(!fires(w, &item(), &M::default().vpdq(79.9, 100.0)));
    assert!(!fires(w, &item(), &M::default().vpdq(f64::NAN, 100.0)));
    assert!(
        !fires(w, &item(), &M::default()),
        "only vPDQ matches have shares"
    );
}

#[test]
fn vpdq_min_compared_share() {
    let w = "vpdq_min_compared_share = 50";
    assert!(fires(w, &item(), &M::default().vpdq(0.0, 50.0)));
    assert!(!fires(w, &item(), &M::default().vpdq(100.0, 49.0)));
    assert!(!fires(w, &item(), &M::default()));
}

#[test]
fn vpdq_shares_several_bounds() {
    let p = policy(
        r#"
        [[rule]]
        id = "high"
        [rule.when]
        vpdq_min_query_share = 90
        [rule.then]
        verdict = "block"
        [[rule]]
        id = "low"
        [rule.when]
        vpdq_min_query_share = 30
        [rule.then]
        verdict = "review"
        [[rule]]
        id = "mid"
        [rule.when]
        vpdq_min_query_share = 60
        [rule.then]
        verdict = "hold"
        "#,
    );
    for (q, want) in [
        (95.0, "high"),
        (90.0, "high"),
        (89.0, "low"),
        (30.0, "low"),
        (29.0, "builtin.match"),
    ] {
        let d = eval(&p, &item(), &[M::default().vpdq(q, 0.0)]);
        assert_eq!(decider(&d), want, "share {q}");
    }
}

#[test]
fn sources() {
    let w = r#"sources = ["ncmec", "file:*"]"#;
    let with = |s: &[&str]| M::default().sources(s);
    assert!(fires(w, &item(), &with(&["ncmec"])));
    assert!(!fires(w, &item(), &with(&["ncmec2"])), "no '*': exact");
    assert!(fires(w, &item(), &with(&["file:list.csv"])));
    assert!(fires(w, &item(), &with(&["file:"])), "the prefix itself");
    assert!(!fires(w, &item(), &with(&["files"])));
    assert!(
        fires(w, &item(), &with(&["own", "file:a"])),
        "any source of the hash"
    );
    assert!(!fires(w, &item(), &with(&["own", "iwf"])));
    assert!(
        !fires(w, &item(), &with(&[])),
        "a hash without sources fails"
    );
    assert!(fires(r#"sources = ["*"]"#, &item(), &with(&["anything"])));
    assert!(!fires(r#"sources = ["*"]"#, &item(), &with(&[])));
}

#[test]
fn surfaces() {
    let w = r#"surfaces = ["public", "user_report"]"#;
    let mut it = item();
    assert!(fires(w, &it, &M::default()));
    it.surface = Some(Surface::UserReport);
    assert!(fires(w, &it, &M::default()));
    it.surface = Some(Surface::Private);
    assert!(!fires(w, &it, &M::default()));
    it.surface = None;
    assert!(
        !fires(w, &it, &M::default()),
        "an item without a surface fails"
    );
}

#[test]
fn account_ages() {
    let w = r#"account_ages = ["child"]"#;
    let mut it = item();
    assert!(!fires(w, &it, &M::default()));
    it.account_age = AccountAge::Child;
    assert!(fires(w, &it, &M::default()));
    it.account_age = AccountAge::Unknown;
    assert!(!fires(w, &it, &M::default()));
}

#[test]
fn kinds() {
    let w = r#"kinds = ["video", "other"]"#;
    let mut it = item();
    assert!(!fires(w, &it, &M::default()));
    it.kind = Kind::Video;
    assert!(fires(w, &it, &M::default()));
    it.kind = Kind::Other;
    assert!(fires(w, &it, &M::default()));
}

#[test]
fn empty_when_fires_for_any_match() {
    assert!(fires("", &item(), &M::default()));
    let mut it = item();
    it.surface = None;
    assert!(fires("", &it, &M::default().vpdq(1.0, 1.0)));
}

#[test]
fn conditions_are_anded() {
    let w = r#"
        banks = ["A"]
        signal_types = ["md5"]
        surfaces = ["public"]
    "#;
    let m = M::default().bank("A").signal("md5");
    assert!(fires(w, &item(), &m));
    assert!(!fires(w, &item(), &m.clone().bank("B")));
    assert!(!fires(w, &item(), &m.clone().signal("pdq")));
    let mut private = item();
    private.surface = Some(Surface::Private);
    assert!(
        !fires(w, &private, &m),
        "item condition fails, match conditions hold"
    );
}

#[test]
fn match_conditions_hold_for_one_and_the_same_match() {
    let p = one_rule(
        r#"
        banks = ["A"]
        signal_types = ["md5"]
        "#,
    );
    // Bank A matched by PDQ, and some other bank matched by MD5: each condition holds for
    // some match, but no one match satisfies both.
    let split = [M::default().bank("A"), M::default().bank("B").signal("md5")];
    let d = eval(&p, &item(), &split);
    assert_eq!(decider(&d), "builtin.match");
    assert_eq!(d.matched, [0, 1]);
    // Add a match that satisfies both: it fires, and only that match is the evidence.
    let mut all = split.to_vec();
    all.push(M::default().bank("A").signal("md5"));
    let d = eval(&p, &item(), &all);
    assert_eq!(decider(&d), "r");
    assert_eq!(d.matched, [2]);
}

#[test]
fn matched_lists_every_satisfying_match_in_order() {
    let p = one_rule(r#"bank_kinds = ["csam"]"#);
    let ms = [
        M::default().kind("csam"),
        M::default(),
        M::default().kind("csam").signal("md5"),
    ];
    assert_eq!(eval(&p, &item(), &ms).matched, [0, 2]);
}

#[test]
fn many_matches_beyond_the_kept_masks() {
    // Evaluation keeps the first few matches' masks and recomputes later ones; evidence from
    // both must be found.
    let p = one_rule(r#"banks = ["A"]"#);
    let mut ms = vec![M::default(); 12];
    ms[1] = M::default().bank("A");
    ms[10] = M::default().bank("A");
    let d = eval(&p, &item(), &ms);
    assert_eq!(decider(&d), "r");
    assert_eq!(d.matched, [1, 10]);
    ms[1] = M::default();
    assert_eq!(eval(&p, &item(), &ms).matched, [10]);
}
