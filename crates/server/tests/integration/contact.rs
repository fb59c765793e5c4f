//! `POST /v1/contact/decide` over HTTP: the default child-safe answers with their measures,
//! the `submit` scope, the configured policy, and bad input with stable codes.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

use crate::common::*;
use safeguard_server::auth::Scope;
use safeguard_server::config::Config;

fn request(target_band: &str, relationship: &str, action: &str) -> Value {
    json!({
        "actor": {"id": "u1", "age_band": "adult",
                  "assurance": {"method": "estimation", "confidence": 0.93}},
        "target": {"id": "u2", "age_band": target_band,
                   "assurance": {"method": "self_declared", "confidence": 1.0}},
        "relationship": relationship,
        "action": action,
    })
}

async fn decide(s: &TestServer, key: &str, body: Value) -> Resp {
    s.call("POST", "/v1/contact/decide", Some(key), Some(body))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_safe_defaults_answer_with_their_measure() {
    let s = server().await;
    let key = s.key(&[Scope::Submit]);
    // ICU F1: no direct messages from users a child is not connected with.
    let r = decide(&s, &key, request("13_15", "none", "message")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let d = r.json();
    assert_eq!(d["outcome"], "deny");
    assert_eq!(d["measure"]["code"], "ICU F1");
    assert_eq!(
        d["measure"]["id"],
        "icu_f1_no_direct_messages_from_non_connected"
    );
    assert_eq!(d["target_treated_as"], "child");
    // ICU F2: a connection request to a child goes ahead with supportive information.
    let d = decide(&s, &key, request("13_15", "none", "connection_request"))
        .await
        .json();
    assert_eq!(d["outcome"], "allow_with_prompt");
    assert_eq!(d["prompt"], "connection_request");
    assert_eq!(d["measure"]["code"], "ICU F2");
    // Between connected accounts a message is allowed; between adults the defaults are silent.
    let d = decide(&s, &key, request("13_15", "connected", "message"))
        .await
        .json();
    assert_eq!(d["outcome"], "allow");
    let d = decide(&s, &key, request("adult", "none", "message"))
        .await
        .json();
    assert_eq!(d["outcome"], "allow");
    // A child's location is never shown to someone it is not connected with.
    let d = decide(&s, &key, request("under_13", "mutual", "view_location"))
        .await
        .json();
    assert_eq!(d["outcome"], "deny");
    assert_eq!(d["measure"]["id"], "icu_f1_location_hidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_submit_scope_is_needed() {
    let s = server().await;
    let match_only = s.key(&[Scope::Match]);
    let r = decide(&s, &match_only, request("13_15", "none", "message")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = s
        .call(
            "POST",
            "/v1/contact/decide",
            None,
            Some(request("13_15", "none", "message")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_policy_decides_unknown_ages() {
    // Default: an unknown age is treated as a child's.
    let s = server().await;
    let key = s.key(&[Scope::Submit]);
    let d = decide(&s, &key, request("unknown", "none", "message"))
        .await
        .json();
    assert_eq!(
        (d["outcome"].as_str(), d["target_treated_as"].as_str()),
        (Some("deny"), Some("child"))
    );
    // `[contact] unknown_age = "treat_as_adult"`.
    let c = Config {
        contact: toml::from_str("unknown_age = \"treat_as_adult\"").unwrap(),
        ..Config::default()
    };
    let s = server_with(c).await;
    let key = s.key(&[Scope::Submit]);
    let d = decide(&s, &key, request("unknown", "none", "message"))
        .await
        .json();
    assert_eq!(
        (d["outcome"].as_str(), d["target_treated_as"].as_str()),
        (Some("allow"), Some("adult"))
    );
}

#[test]
fn an_invalid_contact_policy_is_refused_at_load() {
    let c = Config {
        contact: toml::from_str("min_adult_confidence = 2.0").unwrap(),
        ..Config::default()
    };
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("contact"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_stable_codes() {
    let s = server().await;
    let key = s.key(&[Scope::Submit]);
    let cases = [
        (request("twelve", "none", "message"), "unknown_age_band"),
        (
            request("13_15", "friends", "message"),
            "unknown_relationship",
        ),
        (request("13_15", "none", "poke"), "unknown_action"),
        (
            {
                let mut r = request("13_15", "none", "message");
                r["target"]["id"] = json!("u1");
                r
            },
            "invalid_account",
        ),
        (
            {
                let mut r = request("13_15", "none", "message");
                r["target"]["assurance"]["confidence"] = json!(1.5);
                r
            },
            "invalid_confidence",
        ),
        (json!({"actor": {"id": "u1"}}), "malformed_request"),
    ];
    for (body, code) in cases {
        let r = decide(&s, &key, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
        assert_eq!(r.code(), code, "{body}: {}", r.text());
    }
    let raw = |body: Vec<u8>| {
        Request::builder()
            .method("POST")
            .uri("/v1/contact/decide")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let r = s.send(raw(b"{not json".to_vec())).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "malformed_request")
    );
    let r = s.send(raw(vec![0xff, 0xfe])).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "malformed_request")
    );
    let r = s.send(raw(vec![b' '; 20_000])).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );
}
