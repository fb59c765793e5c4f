//! Requests from JSON: every bad value refused with its own stable code.

use safeguard_contact::{
    Account, Action, AgeBand, AssuranceMethod, ContactRequest, Error, Relationship,
};

use crate::common::*;

const VALID: &str = r#"{
    "actor":  {"id": "u1", "age_band": "adult",
               "assurance": {"method": "estimation", "confidence": 0.93}},
    "target": {"id": "u2", "age_band": "13_15",
               "assurance": {"method": "self_declared", "confidence": 1.0}},
    "relationship": "none",
    "action": "message"
}"#;

/// The valid request with one substring replaced.
fn with(from: &str, to: &str) -> String {
    assert!(VALID.contains(from), "{from}");
    VALID.replacen(from, to, 1)
}

#[test]
fn a_valid_request_parses_to_its_values() {
    let r = ContactRequest::from_json(VALID).unwrap();
    assert_eq!(
        r,
        ContactRequest {
            actor: Account::new(
                "u1",
                AgeBand::Adult,
                AssuranceMethod::Estimation,
                conf(0.93)
            ),
            target: Account::new(
                "u2",
                AgeBand::From13To15,
                AssuranceMethod::SelfDeclared,
                conf(1.0)
            ),
            relationship: Relationship::Unrelated,
            action: Action::Message,
        }
    );
}

#[test]
fn assurance_may_be_left_out() {
    let text = r#"{"actor": {"id": "a", "age_band": "unknown"},
                   "target": {"id": "b", "age_band": "under_13"},
                   "relationship": "mutual", "action": "suggest"}"#;
    let r = ContactRequest::from_json(text).unwrap();
    assert_eq!(r.actor.assurance.method, AssuranceMethod::Unchecked);
    assert_eq!(r.actor.assurance.confidence.get(), 0.0);
}

#[test]
fn every_kind_of_bad_value_has_its_own_code() {
    let cases = [
        (
            with(r#""age_band": "adult""#, r#""age_band": "teen""#),
            "unknown_age_band",
            "`actor.age_band`: unknown age band `teen`; expected one of under_13, 13_15, \
             16_17, adult, unknown",
        ),
        (
            with(r#""age_band": "13_15""#, r#""age_band": "13-15""#),
            "unknown_age_band",
            "`target.age_band`: unknown age band `13-15`",
        ),
        (
            with(r#""self_declared""#, r#""passport""#),
            "unknown_assurance_method",
            "`target.assurance.method`: unknown assurance method `passport`; expected one of \
             none, self_declared, inferred, estimation, verification, id_document",
        ),
        (
            with(r#""relationship": "none""#, r#""relationship": "friend""#),
            "unknown_relationship",
            "`relationship`: unknown relationship `friend`; expected one of connected, \
             mutual, none, blocked",
        ),
        (
            with(r#""action": "message""#, r#""action": "Message""#),
            "unknown_action",
            "`action`: unknown action `Message`: names are lower case",
        ),
        (
            with("0.93", "1.2"),
            "invalid_confidence",
            "`actor.assurance.confidence`: confidence 1.2 is outside 0 to 1",
        ),
        (
            with(r#""id": "u1""#, r#""id": """#),
            "invalid_account",
            "`actor.id`: is empty",
        ),
        (
            with(r#""id": "u2""#, r#""id": "u1""#),
            "invalid_account",
            "actor and target are the same account `u1`",
        ),
        (
            with(r#""action": "message""#, r#""verb": "message""#),
            "malformed_request",
            "unknown field `verb`",
        ),
        (
            with(r#""relationship": "none","#, ""),
            "malformed_request",
            "missing field `relationship`",
        ),
        (
            with("0.93", r#""high""#),
            "malformed_request",
            "invalid type",
        ),
        (
            "not json".to_string(),
            "malformed_request",
            "malformed request",
        ),
    ];
    for (text, code, message) in cases {
        let err = ContactRequest::from_json(&text).unwrap_err();
        assert_eq!(err.code(), code, "{err}\n{text}");
        assert!(
            err.to_string().contains(message),
            "`{err}` lacks `{message}`"
        );
    }
}

#[test]
fn serde_refuses_the_same_values() {
    let text = with(r#""action": "message""#, r#""action": "poke""#);
    let err = serde_json::from_str::<ContactRequest>(&text).unwrap_err();
    assert!(err.to_string().contains("unknown action `poke`"), "{err}");
    let err = serde_json::from_str::<Account>(r#"{"id": "a", "age_band": "old"}"#).unwrap_err();
    assert!(
        err.to_string()
            .contains("`age_band`: unknown age band `old`"),
        "{err}"
    );
}

#[test]
fn an_unknown_variant_is_a_typed_error() {
    let text = with(r#""relationship": "none""#, r#""relationship": "friend""#);
    assert_eq!(
        ContactRequest::from_json(&text),
        Err(Error::UnknownRelationship {
            value: "friend".into()
        })
    );
}

#[test]
fn a_request_round_trips_through_json() {
    let r = ContactRequest::from_json(VALID).unwrap();
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(ContactRequest::from_json(&json).unwrap(), r);
    assert!(json.contains(r#""relationship":"none""#), "{json}");
    assert!(json.contains(r#""age_band":"13_15""#), "{json}");
}
