//! `POST /v1/events` over HTTP: scores with their explanations, a crossing reported once
//! with its events, the `submit` scope, the `[risk]` settings, and bad input with stable
//! codes. One test goes over a real socket.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

use crate::common::*;
use safeguard_server::auth::Scope;
use safeguard_server::config::Config;

const T0: u64 = 1_767_268_800; // 2026-01-01T12:00:00Z

fn message(id: &str, target: &str, at: u64, text: Option<&str>) -> Value {
    let mut e = json!({
        "id": id, "kind": "message", "actor": "stranger", "target": target,
        "timestamp": at, "actor_age": "adult", "target_age": "13_15",
        "connected": false, "channel": "private",
    });
    if let Some(t) = text {
        e["text"] = json!(t);
    }
    e
}

async fn post(s: &TestServer, key: &str, body: Value) -> Resp {
    s.call("POST", "/v1/events", Some(key), Some(body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_are_explained_and_a_crossing_is_reported_once() {
    let s = server().await;
    let key = s.key(&[Scope::Submit]);
    let batch = json!({"events": [
        message("e1", "m1", T0, Some("hi, nice game")),
        message("e2", "m1", T0 + 60, Some("how old are you")),
        message("e3", "m1", T0 + 120, Some("this is our secret, dont tell your parents")),
        message("e4", "m1", T0 + 180, Some("l3ts m0ve t0 ａｎｏｔｈｅｒ app")),
    ]});
    let r = post(&s, &key, batch).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let a = r.json();
    assert_eq!(a["scored"], 4);
    let acct = &a["accounts"][0];
    assert_eq!(acct["account"], "stranger");
    let features: Vec<&str> = acct["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["feature"].as_str().unwrap())
        .collect();
    for f in [
        "secrecy",
        "age_question",
        "off_platform",
        "fan_out_1h",
        "quick_private",
    ] {
        assert!(features.contains(&f), "{f} missing from {features:?}");
    }
    let sum: f64 = acct["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contribution"].as_f64().unwrap())
        .sum();
    assert!((sum - acct["score"].as_f64().unwrap()).abs() < 1e-9);
    let crossings = a["crossings"].as_array().unwrap();
    assert_eq!(crossings.len(), 1, "{a:#}");
    assert_eq!(crossings[0]["account"], "stranger");
    assert_eq!(crossings[0]["level"], "review");
    let ids: Vec<&str> = crossings[0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    // The events up to the one that crossed, not those after it.
    assert!(ids.contains(&"e2") && ids.contains(&"e3"), "{ids:?}");
    assert!(!ids.contains(&"e4"), "{ids:?}");
    // More of the same in the next batch: the level holds, no second review crossing.
    let r = post(
        &s,
        &key,
        json!({"events": [message("e5", "m1", T0 + 240, Some("keep this between us"))]}),
    )
    .await;
    let a = r.json();
    assert!(a["crossings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["level"] != "review"));
    assert_ne!(a["accounts"][0]["level"], "none");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_only_events_and_reports_by_minors_are_scored() {
    let s = server().await;
    let key = s.key(&[Scope::Submit]);
    let mut events = Vec::new();
    for i in 0..6 {
        events.push(message(
            &format!("c{i}"),
            &format!("m{i}"),
            T0 + i * 60,
            None,
        ));
    }
    events.push(
        json!({"kind": "report", "actor": "m0", "target": "stranger",
                       "timestamp": T0 + 600, "actor_age": "13_15"}),
    );
    let a = post(&s, &key, json!({"events": events})).await.json();
    let acct = &a["accounts"][0];
    assert_eq!(acct["account"], "stranger");
    let features: Vec<&str> = acct["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["feature"].as_str().unwrap())
        .collect();
    assert!(features.contains(&"fan_out_1h"), "{features:?}");
    assert!(features.contains(&"minor_reports"), "{features:?}");
    // The report is about the stranger too: one subject account in the batch.
    assert_eq!(a["accounts"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_submit_scope_is_needed() {
    let s = server().await;
    let match_only = s.key(&[Scope::Match]);
    let body = json!({"events": [message("e1", "m1", T0, None)]});
    let r = post(&s, &match_only, body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = s.call("POST", "/v1/events", None, Some(body)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_batches_get_stable_codes_and_score_nothing() {
    let s = server().await;
    let key = s.key(&[Scope::Submit]);
    let good = message("ok", "m1", T0, Some("how old are you"));
    let with = |field: &str, v: Value| {
        let mut e = message("bad", "m2", T0, None);
        e[field] = v;
        json!({"events": [good.clone(), e]})
    };
    let cases = [
        (
            with("target_age", json!("teen")),
            StatusCode::BAD_REQUEST,
            "unknown_age_band",
            "events[1].target_age",
        ),
        (
            with("kind", json!("poke")),
            StatusCode::BAD_REQUEST,
            "invalid_event",
            "events[1].kind",
        ),
        (
            with("actor", json!("")),
            StatusCode::BAD_REQUEST,
            "invalid_event",
            "events[1].actor",
        ),
        (
            with("target", json!("stranger")),
            StatusCode::BAD_REQUEST,
            "invalid_event",
            "events[1].target",
        ),
        (
            with("channel", json!("dm")),
            StatusCode::BAD_REQUEST,
            "invalid_event",
            "events[1].channel",
        ),
        (
            // Far after this server's clock: it would push the account's windows past
            // every real event.
            with("timestamp", json!(253_402_300_799u64)),
            StatusCode::BAD_REQUEST,
            "invalid_event",
            "events[1].timestamp",
        ),
        (
            with("timestamp", json!("noon")),
            StatusCode::BAD_REQUEST,
            "invalid_event",
            "events[1]",
        ),
        (
            with("text", json!("x".repeat(9000))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "text_too_long",
            "events[1].text",
        ),
        (
            json!({"events": "none"}),
            StatusCode::BAD_REQUEST,
            "invalid_event",
            "events",
        ),
        (
            json!({"evnts": []}),
            StatusCode::BAD_REQUEST,
            "invalid_event",
            "unknown field",
        ),
        (
            json!([good.clone()]),
            StatusCode::BAD_REQUEST,
            "invalid_event",
            "send an object",
        ),
    ];
    for (body, status, code, mention) in cases {
        let r = post(&s, &key, body.clone()).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{}",
            r.text()
        );
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(mention), "{msg}");
    }
    // Nothing of the refused batches was counted.
    let a = post(&s, &key, json!({"events": []})).await.json();
    assert_eq!(a["scored"], 0);
    let one = json!({"events": [message("n", "m9", T0 + 1, None)]});
    let a = post(&s, &key, one).await.json();
    let fan = a["accounts"][0]["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["feature"] == "fan_out_1h")
        .cloned()
        .unwrap();
    assert_eq!(fan["count"], 1, "only the one accepted event counts");

    let many: Vec<Value> = (0..1001)
        .map(|i| message(&format!("e{i}"), "m1", T0, None))
        .collect();
    let r = post(&s, &key, json!({"events": many})).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_many_events")
    );
    let raw = |body: Vec<u8>| {
        Request::builder()
            .method("POST")
            .uri("/v1/events")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let r = s.send(raw(b"{not json".to_vec())).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    let r = s.send(raw(vec![b' '; 3 * 1024 * 1024])).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_risk_settings_apply_and_it_can_be_turned_off() {
    // A low review threshold: one secrecy request crosses it.
    let c = Config {
        risk: toml::from_str("review = 0.2\nalert = 5\n").unwrap(),
        ..Config::default()
    };
    let s = server_with(c).await;
    let key = s.key(&[Scope::Submit]);
    let a = post(
        &s,
        &key,
        json!({"events": [message("e1", "m1", T0, Some("our secret"))]}),
    )
    .await
    .json();
    assert_eq!(a["crossings"][0]["level"], "review", "{a:#}");

    // A pattern file of the operator's own.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("patterns.toml");
    std::fs::write(&path, "meeting = [\"see you at the lighthouse\"]\n").unwrap();
    let c = Config {
        risk: toml::from_str(&format!("patterns = {:?}", path.display().to_string())).unwrap(),
        ..Config::default()
    };
    let s = server_with(c).await;
    let key = s.key(&[Scope::Submit]);
    let a = post(
        &s,
        &key,
        json!({"events": [message("e1", "m1", T0, Some("see you at the l1ghthouse")),
                          message("e2", "m1", T0 + 1, Some("our secret"))]}),
    )
    .await
    .json();
    let features: Vec<&str> = a["accounts"][0]["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["feature"].as_str().unwrap())
        .collect();
    assert!(features.contains(&"meeting"), "{features:?}");
    assert!(
        !features.contains(&"secrecy"),
        "the file replaces the shipped lists"
    );

    // Off: 404 with its own code.
    let c = Config {
        risk: toml::from_str("enabled = false").unwrap(),
        ..Config::default()
    };
    let s = server_with(c).await;
    let key = s.key(&[Scope::Submit]);
    let r = post(&s, &key, json!({"events": []})).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "risk_disabled")
    );
}

/// Why the server's state cannot be made with `c` (it must not be).
fn refused_at_start(c: Config) -> String {
    let store: std::sync::Arc<dyn safeguard_store::Store> =
        std::sync::Arc::new(safeguard_store::SqliteStore::open_in_memory().unwrap());
    safeguard_server::AppState::new(store, c, Some(ADMIN_KEY)).unwrap_err()
}

#[test]
fn bad_risk_settings_are_refused_at_load() {
    let c = Config {
        risk: toml::from_str("review = 3\nalert = 1").unwrap(),
        ..Config::default()
    };
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("alert"), "{e}");
    let c = Config {
        risk: toml::from_str("patterns = \"/nonexistent/patterns.toml\"").unwrap(),
        ..Config::default()
    };
    let e = refused_at_start(c);
    assert!(e.contains("risk.patterns"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_real_socket() {
    let s = server().await;
    let key = s.key(&[Scope::Submit]);
    let (addr, stop_tx, server) = listen_with_drain(&s, Duration::from_secs(5)).await;
    let client = reqwest::Client::new();
    let r = client
        .post(format!("http://{addr}/v1/events"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(json!({"events": [message("e1", "m1", T0, Some("send me a selfie"))]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let a: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(a["accounts"][0]["account"], "stranger");
    let r = client
        .post(format!("http://{addr}/v1/events"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(json!({"events": [{"kind": "message"}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
    let a: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(a["error"]["code"], "invalid_event");
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossings_are_routed_to_review_and_webhooks() {
    // A fresh data directory: webhook secrets are sealed with the instance's master key,
    // which lives there.
    let dir = tempfile::tempdir().unwrap();
    let s = server_with(Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    })
    .await;
    let key = s.key(&[Scope::Submit]);
    // A webhook may subscribe to the new event type.
    let r = s
        .admin(
            "POST",
            "/v1/webhooks",
            Some(json!({"url": "https://hooks.example/risk", "event_types": ["account.risk"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let batch = grooming_batch();
    let r = post(&s, &key, batch).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let a = r.json();
    let routed = a["routed"].as_array().unwrap();
    assert_eq!(routed.len(), 1, "{a:#}");
    assert_eq!(routed[0]["account"], "stranger");
    assert_eq!(routed[0]["queue"], "contact_risk");
    assert_eq!(routed[0]["recorded"], true);
    let case_id = routed[0]["case_id"].as_i64().expect("a case");

    // The case is in the review queue, for the account, with the crossing as its item.
    let r = s.admin("GET", "/v1/cases?queue=contact_risk", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let cases = r.json();
    let list = cases["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{cases:#}"));
    assert_eq!(list.len(), 1, "{cases:#}");
    assert_eq!(list[0]["id"], case_id);
    assert_eq!(list[0]["account"], "stranger");
    assert_eq!(list[0]["queue"], "contact_risk");
    let subs = s.store.case_submissions(case_id).unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].verdict, "review");
    let result: Value = serde_json::from_str(&subs[0].result).unwrap();
    let events: Vec<&str> = result["account_risk"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert!(
        events.contains(&"e3"),
        "the events that raised it are attached: {result:#}"
    );

    // An `account.risk` event went to the outbox with the crossing, beside case.opened.
    let outbox = s.store.events_since(0, 100).unwrap();
    let types: Vec<&str> = outbox.iter().map(|e| e.event_type.as_str()).collect();
    assert!(types.contains(&"account.risk"), "{types:?}");
    assert!(types.contains(&"case.opened"), "{types:?}");
    let risk = outbox
        .iter()
        .find(|e| e.event_type == "account.risk")
        .unwrap();
    let body: Value = serde_json::from_str(&risk.body).unwrap();
    assert_eq!(body["data"]["account"], "stranger");
    assert_eq!(body["data"]["case_id"], case_id);
    assert_eq!(body["data"]["level"], "review");
}

/// Three messages from one account to another that cross the `review` level.
fn grooming_batch() -> Value {
    json!({"events": [
        message("e1", "m1", T0, Some("hi, nice game")),
        message("e2", "m1", T0 + 60, Some("how old are you")),
        message("e3", "m1", T0 + 120, Some("this is our secret, dont tell your parents")),
    ]})
}

/// A crossing whose level the organisation's NCA rules put at level 1 is surfaced as it is
/// recorded, as content is: urgent, labelled, and one `case.nca_level_1` event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crossing_at_nca_level_1_is_surfaced_once() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("priority.toml");
    std::fs::write(
        &rules,
        "[[rules]]\nname = \"grooming signs\"\nlevel = 1\nany_signals = [\"risk_review\"]\n",
    )
    .unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.reporting.nca.priority_rules = Some(rules);
    let s = server_with(config).await;
    let key = s.key(&[Scope::Submit]);
    let batch = grooming_batch();
    let r = post(&s, &key, batch).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let routed = r.json()["routed"].as_array().unwrap().clone();
    assert_eq!(routed.len(), 1, "{routed:?}");
    let case_id = routed[0]["case_id"].as_i64().expect("a case");
    let case = s.store.case(case_id).unwrap().unwrap();
    assert_eq!(
        safeguard_engine::action::priority_name(case.priority),
        "urgent"
    );
    assert!(
        case.labels.iter().any(|l| l == "nca_level_1"),
        "{:?}",
        case.labels
    );
    let level_1: Vec<Value> = s
        .store
        .events_since(0, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "case.nca_level_1")
        .map(|e| serde_json::from_str::<Value>(&e.body).unwrap()["data"].clone())
        .collect();
    assert_eq!(level_1.len(), 1, "{level_1:?}");
    assert_eq!(level_1[0]["case_id"], case_id);
    assert_eq!(level_1[0]["assessment"]["rule"], "grooming signs");
    let p = s
        .admin(
            "GET",
            &format!("/v1/cases/{case_id}/reports/nca/priority"),
            None,
        )
        .await
        .json();
    assert_eq!(p["level"], 1, "the level asked later agrees: {p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_can_be_turned_off_and_a_bad_queue_is_refused() {
    let mut config = Config::default();
    config.risk.route_crossings = false;
    let s = server_with(config).await;
    let key = s.key(&[Scope::Submit]);
    let batch = json!({"events": [
        message("e1", "m1", T0, Some("how old are you")),
        message("e2", "m1", T0 + 60, Some("this is our secret, dont tell your parents")),
        message("e3", "m1", T0 + 120, Some("lets move to another app")),
    ]});
    let a = post(&s, &key, batch).await.json();
    assert!(!a["crossings"].as_array().unwrap().is_empty(), "{a:#}");
    assert_eq!(a["routed"], json!([]));
    assert!(s.store.events_since(0, 100).unwrap().is_empty());

    let bad = safeguard_risk::RiskSpec {
        review_queue: "no spaces please".into(),
        ..Default::default()
    };
    assert!(bad.validate().is_err());
}

/// The sentence-embedding model `scripts/setup` unpacks (or `SAFEGUARD_SEMANTIC_MODEL`);
/// `None` with `SKIPPED: ...` when absent, a failure under `CI=true`.
fn semantic_model() -> Option<std::path::PathBuf> {
    let dir = safeguard_semantic::setup_model_dir();
    if dir.join("model.safetensors").exists() {
        return Some(dir);
    }
    let msg = format!("no sentence-embedding model at {}", dir.display());
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and the semantic feature cannot be tested: {msg} (run scripts/setup)");
    }
    eprintln!("SKIPPED: the semantic feature: {msg} (run scripts/setup)");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_semantic_model_flags_what_the_patterns_miss_and_says_why() {
    let Some(model) = semantic_model() else {
        return;
    };
    let risk = |extra: &str| -> safeguard_risk::RiskSpec {
        toml::from_str(&format!(
            "review = 50\nalert = 100\n[semantic]\nmodel_dir = {:?}\n{extra}",
            model.display().to_string()
        ))
        .unwrap()
    };
    let s = server_with(Config {
        risk: risk(""),
        ..Config::default()
    })
    .await;
    let key = s.key(&[Scope::Submit]);
    let mut public = message(
        "e5",
        "m1",
        T0 + 4,
        Some("promise you won't mention our chats"),
    );
    public["channel"] = json!("public");
    let mut connected = message(
        "e6",
        "m2",
        T0 + 5,
        Some("promise you won't mention our chats"),
    );
    connected["connected"] = json!(true);
    let a = post(
        &s,
        &key,
        json!({"events": [
            message("e1", "m1", T0, Some("see you at football practice on monday")),
            message("e2", "m1", T0 + 1, Some("promise you won't mention our chats to your mom")),
            message("e3", "m1", T0 + 2, Some("how old are you")),
            message("e4", "m1", T0 + 3, None),
            public,
            connected,
        ]}),
    )
    .await
    .json();
    let sem = &a["semantic"];
    // e1 and e2 only: e3 matched a pattern, e4 has no text, e5 is public, e6 connected.
    assert_eq!(sem["candidates"], 2, "{a:#}");
    assert_eq!(sem["embedded"], 2);
    assert_eq!(
        (sem["skipped"].clone(), sem["failed"].clone()),
        (json!(0), json!(false))
    );
    let flagged = sem["flagged"].as_array().unwrap();
    assert_eq!(flagged.len(), 1, "{a:#}");
    assert_eq!(
        (flagged[0]["event"].clone(), flagged[0]["id"].clone()),
        (json!(1), json!("e2"))
    );
    assert_eq!(flagged[0]["label"], "secrecy");
    assert!(flagged[0]["contrast"].as_f64().unwrap() >= 0.1);
    assert!(flagged[0]["example"].as_str().unwrap().len() > 5);
    let contributions = a["accounts"][0]["contributions"].as_array().unwrap();
    let semantic = contributions
        .iter()
        .find(|c| c["feature"] == "semantic")
        .unwrap_or_else(|| panic!("no semantic contribution: {a:#}"));
    assert_eq!(semantic["count"], 1);
    assert_eq!(semantic["contribution"].as_f64().unwrap(), 0.25);

    // A cap of one message per batch: the second candidate is scored without the model.
    let s = server_with(Config {
        risk: risk("max_per_batch = 1"),
        ..Config::default()
    })
    .await;
    let key = s.key(&[Scope::Submit]);
    let a = post(
        &s,
        &key,
        json!({"events": [
            message("e1", "m1", T0, Some("see you at football practice on monday")),
            message("e2", "m1", T0 + 1, Some("promise you won't mention our chats to your mom")),
        ]}),
    )
    .await
    .json();
    assert_eq!(
        (
            a["semantic"]["candidates"].clone(),
            a["semantic"]["embedded"].clone(),
            a["semantic"]["skipped"].clone()
        ),
        (json!(2), json!(1), json!(1)),
        "{a:#}"
    );
    assert!(a["semantic"]["flagged"].as_array().unwrap().is_empty());

    // Without a model the answer has no `semantic` object.
    let s = server().await;
    let key = s.key(&[Scope::Submit]);
    let a = post(
        &s,
        &key,
        json!({"events": [message("e1", "m1", T0, Some("hi"))]}),
    )
    .await
    .json();
    assert!(a.get("semantic").is_none(), "{a:#}");
}

#[test]
fn an_unusable_semantic_model_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let c = Config {
        risk: toml::from_str(&format!(
            "[semantic]\nmodel_dir = {:?}",
            dir.path().display().to_string()
        ))
        .unwrap(),
        ..Config::default()
    };
    let e = refused_at_start(c);
    assert!(e.contains("risk.semantic.model_dir"), "{e}");
    assert!(e.contains("config.json"), "{e}");
    // Bad settings are refused by validation, before anything is loaded.
    let c = Config {
        risk: toml::from_str("[semantic]\ntop_k = 0").unwrap(),
        ..Config::default()
    };
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("semantic.top_k"), "{e}");
}
