//! The policy file: the documented example, round trips, and every validation error.

use safeguard_contact::{
    ActorScope, AgeBand, AssuranceMethod, ContactPolicy, Outcome, OverrideSpec, PolicySpec,
    PromptKey, Relationship, UnknownAgeRule, MAX_OVERRIDES,
};

/// The TOML example under "Configuration" in `docs/child-safety.md`, so the documented
/// example can never drift from what parses.
fn documented_example() -> String {
    let doc = include_str!("../../../../docs/child-safety.md");
    let section = doc
        .split("### Configuration")
        .nth(1)
        .expect("docs/child-safety.md has a Configuration section");
    let block = section
        .split("```toml\n")
        .nth(1)
        .expect("the Configuration section has a TOML example");
    block
        .split("```")
        .next()
        .expect("the TOML example is closed")
        .to_string()
}

#[test]
fn the_documented_example_parses_to_its_values() {
    let p = ContactPolicy::from_toml(&documented_example()).unwrap();
    let spec = p.spec();
    assert_eq!(
        spec.child_bands,
        [AgeBand::Under13, AgeBand::From13To15, AgeBand::From16To17]
    );
    assert_eq!(spec.unknown_age, UnknownAgeRule::TreatAsChild);
    assert_eq!(spec.min_adult_confidence, 0.5);
    assert_eq!(
        spec.adult_methods,
        [
            AssuranceMethod::Estimation,
            AssuranceMethod::Verification,
            AssuranceMethod::IdDocument
        ]
    );
    assert_eq!(
        spec.overrides,
        [
            OverrideSpec {
                action: safeguard_contact::Action::ViewProfile,
                outcome: Outcome::AllowWithPrompt,
                actor: ActorScope::Any,
                target: ActorScope::Any,
                relationships: Some(vec![Relationship::Mutual]),
                prompt: Some(PromptKey::Custom("profile_view_by_non_connected".into())),
            },
            OverrideSpec {
                action: safeguard_contact::Action::Message,
                outcome: Outcome::AllowWithPrompt,
                actor: ActorScope::Child,
                target: ActorScope::Child,
                relationships: None,
                prompt: None,
            },
        ]
    );
}

#[test]
fn policies_round_trip_through_toml_and_json() {
    for p in [
        ContactPolicy::default(),
        ContactPolicy::from_toml(&documented_example()).unwrap(),
    ] {
        let toml = p.to_toml();
        assert_eq!(ContactPolicy::from_toml(&toml).unwrap(), p, "{toml}");
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(ContactPolicy::from_json(&json).unwrap(), p, "{json}");
    }
}

#[test]
fn a_policy_inside_a_larger_config_is_validated_when_read() {
    #[derive(Debug, serde::Deserialize)]
    struct ServerConfig {
        #[allow(dead_code)]
        contact: ContactPolicy,
    }
    let ok: Result<ServerConfig, _> = toml::from_str("[contact]\nunknown_age = \"deny_contact\"");
    assert!(ok.is_ok(), "{ok:?}");
    let err = toml::from_str::<ServerConfig>("[contact]\nchild_bands = []").unwrap_err();
    assert!(err.to_string().contains("`child_bands`: is empty"), "{err}");
}

#[test]
fn every_invalid_setting_is_refused_with_its_field() {
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("child_bands = []", Some("child_bands"), "is empty"),
        (
            r#"child_bands = ["under_13", "adult"]"#,
            Some("child_bands"),
            "`adult`, which is never a child band",
        ),
        (
            r#"child_bands = ["under_13", "unknown"]"#,
            Some("child_bands"),
            "set `unknown_age` instead",
        ),
        (
            r#"child_bands = ["under_13", "under_13"]"#,
            Some("child_bands"),
            "lists `under_13` more than once",
        ),
        (
            r#"child_bands = ["13_15"]"#,
            Some("child_bands"),
            "lists `13_15` but not `under_13`",
        ),
        (
            r#"child_bands = ["under_13", "16_17"]"#,
            Some("child_bands"),
            "lists `16_17` but not `13_15`",
        ),
        (
            "min_adult_confidence = 1.5",
            Some("min_adult_confidence"),
            "1.5 is outside 0 to 1",
        ),
        (
            "min_adult_confidence = -0.1",
            Some("min_adult_confidence"),
            "outside 0 to 1",
        ),
        ("adult_methods = []", Some("adult_methods"), "is empty"),
        (
            r#"adult_methods = ["estimation", "estimation"]"#,
            Some("adult_methods"),
            "lists `estimation` more than once",
        ),
        (
            "[[override]]\naction = \"block\"\noutcome = \"deny\"",
            Some("override[0].outcome"),
            "can never be refused",
        ),
        (
            "[[override]]\naction = \"report\"\noutcome = \"deny\"",
            Some("override[0].outcome"),
            "can never be refused",
        ),
        (
            "[[override]]\naction = \"view_profile\"\noutcome = \"allow_with_prompt\"",
            Some("override[0].prompt"),
            "ICU F2 names no moment for `view_profile`",
        ),
        (
            "[[override]]\naction = \"message\"\noutcome = \"allow\"\nprompt = \"x\"",
            Some("override[0].prompt"),
            "only with outcome `allow_with_prompt`, not `allow`",
        ),
        (
            "[[override]]\naction = \"message\"\noutcome = \"allow\"\nrelationships = []",
            Some("override[0].relationships"),
            "is empty",
        ),
        (
            "[[override]]\naction = \"message\"\noutcome = \"allow\"\nrelationships = [\"blocked\"]",
            Some("override[0].relationships"),
            "cannot be overridden",
        ),
        (
            "[[override]]\naction = \"message\"\noutcome = \"allow\"\n\
             relationships = [\"mutual\", \"mutual\"]",
            Some("override[0].relationships"),
            "lists `mutual` more than once",
        ),
        (
            "[[override]]\naction = \"message\"\noutcome = \"allow\"\n\
             [[override]]\naction = \"view_location\"\noutcome = \"allow_with_prompt\"",
            Some("override[1].prompt"),
            "is required",
        ),
        // Parse errors: no field, and the message names what is wrong.
        ("unknown_age = \"ignore\"", None, "unknown unknown-age rule `ignore`"),
        ("child_bands = [\"teen\"]", None, "unknown age band `teen`"),
        ("min_adult_confidence = \"high\"", None, "invalid type"),
        ("strict = true", None, "unknown field `strict`"),
        (
            "[[override]]\naction = \"poke\"\noutcome = \"allow\"",
            None,
            "unknown action `poke`",
        ),
        (
            "[[override]]\naction = \"message\"\noutcome = \"maybe\"",
            None,
            "unknown outcome `maybe`",
        ),
        (
            "[[override]]\naction = \"message\"\noutcome = \"allow\"\nactor = \"teen\"",
            None,
            "unknown actor scope `teen`",
        ),
        (
            "[[override]]\naction = \"view_profile\"\noutcome = \"allow_with_prompt\"\n\
             prompt = \"Bad Key\"",
            None,
            "prompt key `Bad Key` is not of the form",
        ),
    ];
    for (toml, field, message) in cases {
        let err = ContactPolicy::from_toml(toml).unwrap_err();
        assert_eq!(err.code(), "invalid_policy", "{toml}");
        match &err {
            safeguard_contact::Error::InvalidPolicy {
                field: f,
                message: m,
            } => {
                assert_eq!(f.as_deref(), *field, "{toml}: {err}");
                assert!(m.contains(message), "{toml}: `{m}` lacks `{message}`");
            }
            other => panic!("{toml}: {other:?}"),
        }
    }
}

#[test]
fn a_confidence_that_is_not_a_number_is_refused() {
    let spec = PolicySpec {
        min_adult_confidence: f64::NAN,
        ..PolicySpec::default()
    };
    let err = ContactPolicy::new(spec).unwrap_err();
    assert!(err.to_string().contains("`min_adult_confidence`"), "{err}");
}

#[test]
fn the_number_of_overrides_is_bounded() {
    let one = OverrideSpec {
        action: safeguard_contact::Action::Suggest,
        outcome: Outcome::Allow,
        actor: ActorScope::Any,
        target: ActorScope::Any,
        relationships: None,
        prompt: None,
    };
    let at_limit = PolicySpec {
        overrides: vec![one.clone(); MAX_OVERRIDES],
        ..PolicySpec::default()
    };
    assert!(ContactPolicy::new(at_limit).is_ok());
    let over = PolicySpec {
        overrides: vec![one; MAX_OVERRIDES + 1],
        ..PolicySpec::default()
    };
    let err = ContactPolicy::new(over).unwrap_err();
    assert!(
        err.to_string()
            .contains("65 overrides given; a policy holds at most 64"),
        "{err}"
    );
}
