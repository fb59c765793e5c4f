//! Accounts kept in Safeguard (`/v1/accounts`) and contact decisions that read them: an
//! account given by id alone and a left-out relationship are filled from the store, inline
//! values still win, erasure removes the account and its relationships, and bad input gets
//! stable codes.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::common::*;
use safeguard_server::auth::Scope;

async fn put(s: &TestServer, key: &str, uri: &str, body: Value) -> Resp {
    s.call("PUT", uri, Some(key), Some(body)).await
}

async fn decide(s: &TestServer, key: &str, body: Value) -> Resp {
    s.call("POST", "/v1/contact/decide", Some(key), Some(body))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_accounts_and_relationships_feed_decisions() {
    let s = server().await;
    let key = s.key(&[Scope::Submit]);
    let r = put(
        &s,
        &key,
        "/v1/accounts/adult-1",
        json!({"age_band": "adult", "assurance": {"method": "verification", "confidence": 0.99}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["age_band"], "adult");
    let r = put(
        &s,
        &key,
        "/v1/accounts/teen-1",
        json!({"age_band": "13_15", "assurance": {"method": "self_declared", "confidence": 1.0}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = s.call("GET", "/v1/accounts/teen-1", Some(&key), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let got = r.json();
    assert_eq!(got["age_band"], "13_15");
    assert_eq!(got["assurance"]["method"], "self_declared");

    // Ids only, no relationship stored: `none`, so ICU F1 refuses the message.
    let ids_only =
        json!({"actor": {"id": "adult-1"}, "target": {"id": "teen-1"}, "action": "message"});
    let r = decide(&s, &key, ids_only.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let d = r.json();
    assert_eq!(d["outcome"], "deny");
    assert_eq!(d["measure"]["code"], "ICU F1");
    assert_eq!(d["target_treated_as"], "child");
    assert_eq!(d["from_store"], json!(["actor", "target", "relationship"]));

    // Once they are connected (stored from either side), the message goes ahead.
    let r = put(
        &s,
        &key,
        "/v1/accounts/teen-1/relationships/adult-1",
        json!({"relationship": "connected"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = s
        .call(
            "GET",
            "/v1/accounts/adult-1/relationships/teen-1",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.json()["relationship"], "connected");
    let d = decide(&s, &key, ids_only.clone()).await.json();
    assert_eq!(d["outcome"], "allow", "{d}");

    // Inline values win over stored ones: the caller's relationship is used as given.
    let mut inline_rel = ids_only.clone();
    inline_rel["relationship"] = json!("none");
    let d = decide(&s, &key, inline_rel).await.json();
    assert_eq!(d["outcome"], "deny");
    assert_eq!(d["from_store"], json!(["actor", "target"]));
    // And an inline account is not read from the store.
    let mut inline_target = ids_only.clone();
    inline_target["target"] = json!({"id": "teen-1", "age_band": "adult",
        "assurance": {"method": "verification", "confidence": 0.99}});
    inline_target["relationship"] = json!("none");
    let d = decide(&s, &key, inline_target).await.json();
    assert_eq!(d["outcome"], "allow", "{d}");
    assert_eq!(d["from_store"], json!(["actor"]));

    // A block recorded later is what the next decision sees.
    put(
        &s,
        &key,
        "/v1/accounts/adult-1/relationships/teen-1",
        json!({"relationship": "blocked"}),
    )
    .await;
    let d = decide(&s, &key, ids_only.clone()).await.json();
    assert_eq!(d["outcome"], "deny");

    // Erasure: the account and its relationships go; a decision by id now says so.
    let r = s
        .call("DELETE", "/v1/accounts/teen-1", Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["deleted"], true);
    let r = s
        .call(
            "GET",
            "/v1/accounts/adult-1/relationships/teen-1",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.json()["relationship"], "none");
    let r = decide(&s, &key, ids_only).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "account_not_found");
    let r = s
        .call("DELETE", "/v1/accounts/teen-1", Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["code"], "account_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_scope() {
    let s = server().await;
    let key = s.key(&[Scope::Submit]);
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "/v1/accounts/u1",
            json!({"age_band": "teen"}),
            StatusCode::BAD_REQUEST,
            "unknown_age_band",
        ),
        (
            "/v1/accounts/u1",
            json!({"age_band": "adult", "assurance": {"method": "palm_reading", "confidence": 1}}),
            StatusCode::BAD_REQUEST,
            "unknown_assurance_method",
        ),
        (
            "/v1/accounts/u1",
            json!({"age_band": "adult", "assurance": {"method": "estimation", "confidence": 1.5}}),
            StatusCode::BAD_REQUEST,
            "invalid_confidence",
        ),
        (
            "/v1/accounts/u1",
            json!({"id": "u2", "age_band": "adult"}),
            StatusCode::BAD_REQUEST,
            "invalid_account",
        ),
        (
            "/v1/accounts/u1",
            json!({"age_band": "adult", "colour": "blue"}),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            "/v1/accounts/u1",
            json!(["adult"]),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            "/v1/accounts/u1/relationships/u2",
            json!({"relationship": "frenemies"}),
            StatusCode::BAD_REQUEST,
            "unknown_relationship",
        ),
        (
            "/v1/accounts/u1/relationships/u1",
            json!({"relationship": "connected"}),
            StatusCode::BAD_REQUEST,
            "invalid_account",
        ),
    ];
    for (uri, body, status, code) in cases {
        let r = put(&s, &key, uri, body.clone()).await;
        assert_eq!(r.status, status, "{uri} {body}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], code, "{uri} {body}");
    }
    // An id over 256 bytes.
    let long = "x".repeat(257);
    let r = put(
        &s,
        &key,
        &format!("/v1/accounts/{long}"),
        json!({"age_band": "adult"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["code"], "invalid_account");
    // An oversized body.
    let r = put(
        &s,
        &key,
        "/v1/accounts/u1",
        json!({"age_band": "adult", "pad": "y".repeat(5000)}),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json()["error"]["code"], "body_too_large");
    // Nothing was stored by any of those.
    let r = s.call("GET", "/v1/accounts/u1", Some(&key), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // `assurance` without `age_band` in a decision is ambiguous: refused, not guessed.
    let r = decide(
        &s,
        &key,
        json!({"actor": {"id": "a", "assurance": {"method": "none"}},
               "target": {"id": "b", "age_band": "adult"}, "relationship": "none",
               "action": "message"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["code"], "malformed_request");
    // The routes need the submit scope.
    let read_only = s.key(&[Scope::Match]);
    let r = put(
        &s,
        &read_only,
        "/v1/accounts/u1",
        json!({"age_band": "adult"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_keep_the_stored_graph_current() {
    let s = server().await;
    let key = s.key(&[Scope::Submit]);
    for (id, band, method) in [
        ("kid", "13_15", "self_declared"),
        ("coach", "adult", "verification"),
    ] {
        let r = put(
            &s,
            &key,
            &format!("/v1/accounts/{id}"),
            json!({"age_band": band, "assurance": {"method": method, "confidence": 0.99}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let ask = json!({"actor": {"id": "coach"}, "target": {"id": "kid"}, "action": "message"});
    assert_eq!(
        decide(&s, &key, ask.clone()).await.json()["outcome"],
        "deny"
    );
    // The same account on both sides is one error, whether or not it is stored.
    for id in ["kid", "ghost"] {
        let r = decide(
            &s,
            &key,
            json!({"actor": {"id": id}, "target": {"id": id}, "action": "message"}),
        )
        .await;
        assert_eq!(
            (r.status, r.json()["error"]["code"].clone()),
            (StatusCode::BAD_REQUEST, json!("invalid_account")),
            "{id}: {}",
            r.text()
        );
    }

    // The child accepts the coach's connection request: the pair is now connected.
    let event = |kind: &str, actor: &str, target: &str, at: u64| json!({"kind": kind, "actor": actor, "target": target, "timestamp": at});
    let accepted = json!({"events": [
        event("connection_request", "coach", "kid", 1_767_268_800),
        event("connection_accept", "kid", "coach", 1_767_268_860),
    ]});
    let r = s
        .call("POST", "/v1/events", Some(&key), Some(accepted.clone()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["relationships_updated"], 1);
    let r = s
        .call(
            "GET",
            "/v1/accounts/coach/relationships/kid",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.json()["relationship"], "connected");
    assert_eq!(
        decide(&s, &key, ask.clone()).await.json()["outcome"],
        "allow"
    );

    // Then blocks: the block is what the next decision sees.
    let r = s
        .call(
            "POST",
            "/v1/events",
            Some(&key),
            Some(json!({"events": [event("block", "kid", "coach", 1_767_269_000)]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["relationships_updated"], 1);
    let d = decide(&s, &key, ask.clone()).await.json();
    assert_eq!(d["outcome"], "deny", "{d}");

    // The platform retries the first batch (its answer was lost): the old accept does not
    // lift the block.
    let r = s
        .call("POST", "/v1/events", Some(&key), Some(accepted))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let d = decide(&s, &key, ask).await.json();
    assert_eq!(d["outcome"], "deny", "{d}");

    // A refused batch changes no edge of the graph.
    let r = s
        .call(
            "POST",
            "/v1/events",
            Some(&key),
            Some(json!({"events": [
                event("connection_accept", "kid", "coach", 1_767_269_100),
                event("teleport", "kid", "coach", 1_767_269_200),
            ]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = s
        .call(
            "GET",
            "/v1/accounts/kid/relationships/coach",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.json()["relationship"], "blocked");
}
