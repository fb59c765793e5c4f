//! Reading rules from TOML and JSON: round trips, unknown fields, the documented example.

use safeguard_policy::{
    AccountAge, Classification, Error, Kind, Mode, Priority, RuleSet, RuleSpec, Surface, Verdict,
};

/// The example from docs/policy.md and the brief, every field in use.
pub const FULL: &str = r#"
[[rule]]
id = "csam-block"
description = "Hotline CSAM in public is blocked and reported."
mode = "enforce"
[rule.when]
banks = ["NCMEC_CSAM"]
bank_kinds = ["csam"]
bank_tags = ["hotline"]
classifications = ["A1", "a2"]
signal_types = ["pdq", "md5"]
max_distance = 31
sources = ["ncmec", "file:*"]
surfaces = ["public", "user_report"]
account_ages = ["child"]
kinds = ["image"]
[rule.then]
verdict = "block"
queue = "csam"
priority = "high"
report_candidate = true
labels = ["x"]

[[rule]]
id = "video-trial"
mode = "shadow"
[rule.when]
vpdq_min_query_share = 80.0
vpdq_min_compared_share = 75.5
[rule.then]
verdict = "hold"

[[rule]]
id = "catch-all"
[rule.when]
[rule.then]
verdict = "review"
"#;

#[test]
fn full_example_parses_to_the_expected_values() {
    let set = RuleSet::parse_toml(FULL).unwrap();
    assert_eq!(set.rules.len(), 3);
    let r = &set.rules[0];
    assert_eq!(r.id, "csam-block");
    assert_eq!(r.mode, Mode::Enforce);
    let w = &r.when;
    assert_eq!(
        w.classifications.as_deref(),
        Some(&[Classification::A1, Classification::A2][..])
    );
    assert_eq!(w.max_distance, Some(31));
    assert_eq!(
        w.surfaces.as_deref(),
        Some(&[Surface::Public, Surface::UserReport][..])
    );
    assert_eq!(w.account_ages.as_deref(), Some(&[AccountAge::Child][..]));
    assert_eq!(w.kinds.as_deref(), Some(&[Kind::Image][..]));
    assert_eq!(r.then.verdict, Verdict::Block);
    assert_eq!(r.then.priority, Some(Priority::High));
    assert_eq!(set.rules[1].mode, Mode::Shadow);
    assert_eq!(set.rules[1].when.vpdq_min_compared_share, Some(75.5));
    assert_eq!(set.rules[2].mode, Mode::Enforce, "enforce is the default");
    assert!(set.rules[2].when.is_empty());
}

#[test]
fn toml_round_trip() {
    let set = RuleSet::parse_toml(FULL).unwrap();
    let text = set.to_toml();
    assert_eq!(RuleSet::parse_toml(&text).unwrap(), set, "{text}");
    assert!(text.contains("[[rule]]"), "{text}");
    assert!(
        text.contains("\"A2\""),
        "classifications are written upper case: {text}"
    );
}

#[test]
fn json_round_trip() {
    let set = RuleSet::parse_toml(FULL).unwrap();
    let json = set.to_json();
    assert!(json.starts_with("{\"rule\":["), "{json}");
    assert_eq!(RuleSet::parse_json(&json).unwrap(), set);
    // A single rule is a JSON object of the same shape as one element.
    let one = serde_json::to_string(&set.rules[0]).unwrap();
    assert_eq!(RuleSpec::parse_json(&one).unwrap(), set.rules[0]);
}

#[test]
fn empty_file_is_an_empty_set() {
    assert_eq!(RuleSet::parse_toml("").unwrap().rules.len(), 0);
    assert_eq!(RuleSet::parse_json("{}").unwrap().rules.len(), 0);
}

/// Asserts a parse error that names `field`.
fn refused_naming(r: Result<impl std::fmt::Debug, Error>, field: &str) {
    let e = r.unwrap_err();
    assert!(matches!(e, Error::Parse { .. }), "{e:?}");
    assert_eq!(e.code(), "invalid_rule");
    assert!(e.to_string().contains(field), "`{field}` not named in: {e}");
}

#[test]
fn unknown_fields_are_refused_by_name() {
    let base = "[[rule]]\nid = \"r\"\n[rule.when]\n[rule.then]\nverdict = \"hold\"\n";
    refused_naming(
        RuleSet::parse_toml(&format!("rules_typo = 1\n{base}")),
        "rules_typo",
    );
    refused_naming(
        RuleSet::parse_toml(&base.replace("id = \"r\"", "id = \"r\"\npriority = \"high\"")),
        "priority",
    );
    refused_naming(
        RuleSet::parse_toml(&base.replace("[rule.when]", "[rule.when]\nbank = [\"A\"]")),
        "bank",
    );
    refused_naming(
        RuleSet::parse_toml(
            &base.replace("verdict = \"hold\"", "verdict = \"hold\"\nqueu = \"q\""),
        ),
        "queu",
    );
    refused_naming(
        RuleSpec::parse_json(r#"{"id":"r","when":{"max_distanse":3},"then":{"verdict":"hold"}}"#),
        "max_distanse",
    );
    refused_naming(RuleSet::parse_json(r#"{"rule":[],"extra":true}"#), "extra");
}

#[test]
fn unknown_values_and_missing_tables_are_refused() {
    refused_naming(
        RuleSpec::parse_json(r#"{"id":"r","when":{},"then":{"verdict":"delete"}}"#),
        "delete",
    );
    refused_naming(
        RuleSpec::parse_json(r#"{"id":"r","when":{"surfaces":["dm"]},"then":{"verdict":"hold"}}"#),
        "dm",
    );
    refused_naming(
        RuleSpec::parse_json(
            r#"{"id":"r","when":{"classifications":["C9"]},"then":{"verdict":"hold"}}"#,
        ),
        "C9",
    );
    // A forgotten `when` is an error, not a catch-all.
    refused_naming(
        RuleSpec::parse_json(r#"{"id":"r","then":{"verdict":"hold"}}"#),
        "when",
    );
    refused_naming(RuleSpec::parse_json(r#"{"id":"r","when":{}}"#), "then");
    refused_naming(
        RuleSpec::parse_json(r#"{"id":"r","when":{"max_distance":-1},"then":{"verdict":"hold"}}"#),
        "-1",
    );
    assert!(matches!(
        RuleSet::parse_toml("[[rule]\n"),
        Err(Error::Parse { .. })
    ));
}

#[test]
fn parse_validates() {
    // Parsing runs validation: a well-formed but invalid rule is refused with its own error.
    let e =
        RuleSpec::parse_json(r#"{"id":"Bad","when":{},"then":{"verdict":"hold"}}"#).unwrap_err();
    assert!(matches!(e, Error::InvalidRule { .. }), "{e:?}");
    let e = RuleSet::parse_toml(
        "[[rule]]\nid = \"r\"\n[rule.when]\nbanks = []\n[rule.then]\nverdict = \"hold\"\n",
    )
    .unwrap_err();
    assert!(matches!(e, Error::InvalidRule { .. }), "{e:?}");
}

#[test]
fn a_versioned_rule_serialises_flat() {
    // The API lists rules as the spec's fields plus the store's version.
    let spec = RuleSet::parse_toml(FULL).unwrap().rules.remove(2);
    let v = serde_json::to_value(safeguard_policy::Rule::new(spec, 7)).unwrap();
    assert_eq!(v["id"], "catch-all");
    assert_eq!(v["version"], 7);
    assert_eq!(v["then"]["verdict"], "review");
}
