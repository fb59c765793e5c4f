//! Acting on matches through the API: content submissions, the default policy and operator
//! rules (shadow mode included), idempotent re-submission, case grouping and refused
//! transitions, evidence in the vault, signed webhooks to a real receiver, and bad input.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::common;
use crate::common::*;
use safeguard_server::auth::Scope;
use safeguard_server::config::Config;

const SQUARE: &str = "photos/images/pdq/data/bridge-mods/square-512x512.jpg";
/// A PDQ hash at distance 2 from BRIDGE_PDQ (two low bits flipped).
const NEAR_BRIDGE: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b21";
/// A PDQ hash far from everything in the tests.
const FAR: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A server whose data directory (vault, master key) is a fresh temporary directory.
async fn actions_server() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    c.webhooks.allow_internal_hosts = vec!["127.0.0.1".into()];
    c.webhooks.retry_base_secs = 1;
    (server_with(c).await, dir)
}

async fn bank(s: &TestServer, name: &str, kind: &str, pdq: &str) {
    let r = s
        .admin(
            "POST",
            "/v1/banks",
            Some(json!({"name": name, "kind": kind, "classification": "A1", "tags": ["hotline"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = s
        .admin(
            "POST",
            &format!("/c/bank/{name}/signal"),
            Some(json!({"pdq": pdq})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

async fn submit(s: &TestServer, body: Value) -> common::Resp {
    s.admin("POST", "/v1/content", Some(body)).await
}

fn item(id: &str, account: &str, pdq: &str) -> Value {
    json!({
        "id": id, "kind": "image", "account": account, "account_age": "adult",
        "surface": "public", "signals": {"pdq": pdq},
    })
}

async fn events(s: &TestServer) -> Vec<Value> {
    s.store
        .events_since(0, 10_000)
        .unwrap()
        .into_iter()
        .map(|e| serde_json::from_str(&e.body).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_policy_blocks_csam_and_reviews_other_matches() {
    let (s, _dir) = actions_server().await;
    bank(&s, "HOTLINE", "csam", BRIDGE_PDQ).await;
    bank(&s, "SPAM", "standard", FAR).await;

    let r = submit(&s, item("c1", "u1", NEAR_BRIDGE)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let b = r.json();
    assert_eq!(b["verdict"], "block");
    assert_eq!(b["rule"], json!({"id": "builtin.csam", "version": 1}));
    assert_eq!(b["queue"], "csam");
    assert_eq!(b["priority"], "high");
    assert_eq!(b["report_candidate"], true);
    let m = &b["matches"][0];
    assert_eq!(m["bank"], "HOTLINE");
    assert_eq!(m["signal_type"], "pdq");
    assert_eq!(m["distance"], 2);
    assert_eq!(m["classification"], "A1");
    assert_eq!(m["source"], "api");
    assert!(b["case_id"].is_i64());
    assert_eq!(b["event_ids"].as_array().unwrap().len(), 2);

    let r = submit(&s, item("c2", "u2", FAR)).await;
    let b = r.json();
    assert_eq!(b["verdict"], "review", "{b}");
    assert_eq!(b["rule"]["id"], "builtin.match");
    assert_eq!(b["queue"], "default");

    let r = submit(
        &s,
        item(
            "c3",
            "u3",
            "ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000",
        ),
    )
    .await;
    let b = r.json();
    assert_eq!(b["verdict"], "allow");
    assert_eq!(b["rule"], Value::Null);
    assert_eq!(b["case_id"], Value::Null);
    assert_eq!(b["event_ids"], json!([]));

    let evs = events(&s).await;
    let types: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        vec![
            "content.verdict",
            "case.opened",
            "content.verdict",
            "case.opened"
        ]
    );
    assert_eq!(evs[0]["data"]["id"], "c1");
    assert_eq!(evs[0]["data"]["verdict"], "block");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubmission_is_idempotent_and_a_changed_item_is_refused() {
    let (s, _dir) = actions_server().await;
    bank(&s, "HOTLINE", "csam", BRIDGE_PDQ).await;
    let first = submit(&s, item("same", "u1", BRIDGE_PDQ)).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.headers.get("safeguard-replayed").is_none());
    let before = events(&s).await.len();
    let again = submit(&s, item("same", "u1", BRIDGE_PDQ)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.headers["safeguard-replayed"], "true");
    assert_eq!(again.json(), first.json());
    assert_eq!(events(&s).await.len(), before, "a replay repeated actions");
    let case = first.json()["case_id"].as_i64().unwrap();
    assert_eq!(s.store.case(case).unwrap().unwrap().items, 1);

    let clash = submit(&s, item("same", "u1", FAR)).await;
    assert_eq!(clash.status, StatusCode::CONFLICT);
    assert_eq!(clash.code(), "content_id_conflict");
    let got = s.admin("GET", "/v1/content/same", None).await;
    assert_eq!(got.json(), first.json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_of_one_account_share_a_case_and_transitions_follow_the_state_machine() {
    let (s, _dir) = actions_server().await;
    bank(&s, "HOTLINE", "csam", BRIDGE_PDQ).await;
    let a = submit(&s, item("g1", "acct", BRIDGE_PDQ)).await.json();
    let b = submit(&s, item("g2", "acct", NEAR_BRIDGE)).await.json();
    let other = submit(&s, item("g3", "someone-else", BRIDGE_PDQ))
        .await
        .json();
    assert_eq!(a["case_id"], b["case_id"]);
    assert_ne!(a["case_id"], other["case_id"]);
    // The second item joined: case.updated, not case.opened.
    let types: Vec<String> = events(&s)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types[3], "case.updated");

    let id = a["case_id"].as_i64().unwrap();
    let c = s.admin("GET", &format!("/v1/cases/{id}"), None).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text());
    let c = c.json();
    assert_eq!(c["items"], 2);
    assert_eq!(c["state"], "open");
    assert_eq!(c["account"], "acct");
    assert_eq!(c["items_detail"].as_array().unwrap().len(), 2);
    assert_eq!(c["items_detail"][1]["id"], "g2");
    assert_eq!(c["next_states"], json!(["in_review"]));
    assert_eq!(c["history"][0]["action"], "opened");

    let list = s
        .admin("GET", "/v1/cases?account=acct&state=open", None)
        .await
        .json();
    assert_eq!(list["cases"].as_array().unwrap().len(), 1);
    let bad = s.admin("GET", "/v1/cases?state=nope", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let t = |to: &str| json!({"to": to, "note": "checked"});
    let uri = format!("/v1/cases/{id}/transition");
    let r = s.admin("POST", &uri, Some(t("reported"))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(r.code(), "invalid_transition");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("in_review"));
    assert_eq!(s.store.case(id).unwrap().unwrap().state, "open");
    for to in ["in_review", "decided"] {
        let r = s.admin("POST", &uri, Some(t(to))).await;
        assert_eq!(r.status, StatusCode::OK, "{to}: {}", r.text());
        assert_eq!(r.json()["state"], to);
    }
    // A decision that is not a confirmation cannot become a report: closing it is the way on.
    let r = s.admin("POST", &uri, Some(t("reported"))).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "approval_required")
    );
    let r = s.admin("POST", &uri, Some(t("closed"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["state"], "closed");
    let r = s.admin("POST", &uri, Some(t("open"))).await;
    assert_eq!(r.code(), "invalid_transition");
    let r = s
        .admin("POST", "/v1/cases/999999/transition", Some(t("in_review")))
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "case_not_found")
    );
    let hist = s.store.case_history(id).unwrap();
    assert_eq!(hist.last().unwrap().actor, "admin");
    // A decided case does not grow: the account's next match opens a new case.
    let next = submit(&s, item("g4", "acct", BRIDGE_PDQ)).await.json();
    assert_ne!(next["case_id"], a["case_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_rules_decide_in_order_and_shadow_rules_only_record() {
    let (s, _dir) = actions_server().await;
    bank(&s, "HOTLINE", "csam", BRIDGE_PDQ).await;
    let rules = r#"
[[rule]]
id = "child-private-hold"
[rule.when]
account_ages = ["child"]
surfaces = ["private"]
[rule.then]
verdict = "hold"
queue = "child-safety"
priority = "urgent"
labels = ["minor"]

[[rule]]
id = "watch-close"
mode = "shadow"
[rule.when]
max_distance = 4
[rule.then]
verdict = "block"
"#;
    let r = s
        .send(
            axum::http::Request::builder()
                .method("PUT")
                .uri("/v1/rules")
                .header("authorization", format!("Bearer {ADMIN_KEY}"))
                .header("content-type", "application/toml")
                .body(axum::body::Body::from(rules))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["created"], 2);

    let mut child = item("r1", "kid", BRIDGE_PDQ);
    child["account_age"] = json!("child");
    child["surface"] = json!("private");
    let b = submit(&s, child).await.json();
    assert_eq!(b["verdict"], "hold");
    assert_eq!(b["rule"], json!({"id": "child-private-hold", "version": 1}));
    assert_eq!(b["queue"], "child-safety");
    assert_eq!(b["priority"], "urgent");
    assert_eq!(b["labels"], json!(["minor"]));
    assert_eq!(b["shadow"][0]["rule"]["id"], "watch-close");
    assert_eq!(b["shadow"][0]["verdict"], "block");

    // The adult item falls through to the built-in; the shadow rule still only records.
    let b = submit(&s, item("r2", "grown", BRIDGE_PDQ)).await.json();
    assert_eq!(b["rule"]["id"], "builtin.csam");
    assert_eq!(b["shadow"][0]["rule"]["id"], "watch-close");

    // Changing a rule bumps its version; the next verdict names it.
    let mut spec = json!({
        "id": "child-private-hold",
        "when": {"account_ages": ["child"]},
        "then": {"verdict": "review"}
    });
    let r = s
        .admin("PUT", "/v1/rules/child-private-hold", Some(spec.clone()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["version"], 2);
    let mut child = item("r3", "kid2", BRIDGE_PDQ);
    child["account_age"] = json!("child");
    let b = submit(&s, child).await.json();
    assert_eq!(b["rule"], json!({"id": "child-private-hold", "version": 2}));
    assert_eq!(b["verdict"], "review");
    let r = s
        .admin("GET", "/v1/rules/child-private-hold", None)
        .await
        .json();
    assert_eq!(r["history"].as_array().unwrap().len(), 2);

    // An unknown field is refused and changes nothing.
    spec["when"]["colour"] = json!("red");
    let r = s
        .admin("PUT", "/v1/rules/child-private-hold", Some(spec))
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_rule")
    );
    assert!(r.text().contains("colour"), "{}", r.text());
    let listed = s.admin("GET", "/v1/rules", None).await.json();
    assert_eq!(listed["rules"][0]["version"], 2);
    assert_eq!(listed["builtin"].as_array().unwrap().len(), 2);
    let r = s.admin("DELETE", "/v1/rules/nope", None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "rule_not_found")
    );
}

/// A query string or a path id the route cannot read gets the JSON error shape with a stable
/// code, like every other refusal of the native API, not the framework's plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_query_strings_and_path_ids_get_json_errors() {
    let (s, _dir) = actions_server().await;
    for (method, uri, named) in [
        ("GET", "/v1/cases?limit=-1", "limit"),
        ("GET", "/v1/cases?bogus=1", "bogus"),
        ("GET", "/v1/cases/abc", "abc"),
        ("GET", "/v1/cases/abc/reports/nca/priority", "abc"),
        ("POST", "/v1/rules?position=-1", "position"),
        ("GET", "/v1/webhooks/abc", "abc"),
        ("GET", "/v1/banks/B/contents/abc", "abc"),
    ] {
        let r = s.admin(method, uri, None).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{method} {uri}: {}",
            r.text()
        );
        let ct = r.headers[axum::http::header::CONTENT_TYPE]
            .to_str()
            .unwrap();
        assert!(ct.starts_with("application/json"), "{method} {uri}: {ct}");
        assert_eq!(r.code(), "invalid_request", "{method} {uri}: {}", r.text());
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains(named), "{method} {uri}: {message}");
    }
}

/// A full rule set refuses one more rule through either single-rule route and stores nothing:
/// a stored set over the limit would not compile, and every submission would then fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_rule_set_refuses_one_more_and_keeps_deciding() {
    let (s, _dir) = actions_server().await;
    bank(&s, "HOTLINE", "csam", BRIDGE_PDQ).await;
    let rule = |id: &str| json!({"id": id, "when": {"account_ages": ["child"]}, "then": {"verdict": "review"}});
    let max = safeguard_policy::MAX_RULES;
    let all: Vec<Value> = (0..max).map(|i| rule(&format!("r{i}"))).collect();
    let r = s
        .admin("PUT", "/v1/rules", Some(json!({ "rule": all })))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["created"], max);

    let r = s.admin("POST", "/v1/rules", Some(rule("one-more"))).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "too_many_rules"),
        "{}",
        r.text()
    );
    let r = s
        .admin("PUT", "/v1/rules/one-more", Some(rule("one-more")))
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "too_many_rules"),
        "{}",
        r.text()
    );
    let listed = s.admin("GET", "/v1/rules", None).await.json();
    assert_eq!(listed["rules"].as_array().unwrap().len(), max);
    assert!(s.store.rule_history("one-more").unwrap().is_empty());

    // Changing a rule already in the set still works at the limit, and items are decided.
    let mut changed = rule("r0");
    changed["then"]["verdict"] = json!("hold");
    let r = s.admin("PUT", "/v1/rules/r0", Some(changed)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mut child = item("full-1", "kid", BRIDGE_PDQ);
    child["account_age"] = json!("child");
    let b = submit(&s, child).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text());
    assert_eq!(b.json()["rule"], json!({"id": "r0", "version": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_submissions_get_stable_codes_and_change_nothing() {
    let (s, _dir) = actions_server().await;
    bank(&s, "HOTLINE", "csam", BRIDGE_PDQ).await;
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"id": "b1", "kind": "sculpture", "signals": {"pdq": BRIDGE_PDQ}}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({"id": "b2", "kind": "image", "signals": {"pdq": BRIDGE_PDQ},
                   "metadata": {"x": "y".repeat(20_000)}}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"id": "b3", "kind": "image", "signals": {"pdq": BRIDGE_PDQ},
                   "url": "https://example.org/a.jpg"}),
            StatusCode::BAD_REQUEST,
            "conflicting_media",
        ),
        (
            json!({"id": "b4", "kind": "image", "signals": {"pdq": "xyz"}}),
            StatusCode::BAD_REQUEST,
            "invalid_signals",
        ),
        (
            json!({"id": "b5", "kind": "image", "signals": {"pdq": BRIDGE_PDQ}, "colour": 1}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({"id": "b6", "kind": "image"}),
            StatusCode::BAD_REQUEST,
            "no_media",
        ),
        (
            json!({"id": "", "kind": "image", "signals": {"pdq": BRIDGE_PDQ}}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"id": "b8", "kind": "image", "signals": {"pdq": BRIDGE_PDQ},
                   "account_age": "teen"}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        // The documented field limits (docs/actions.md): id and account 1-256 bytes, ip at
        // most 64 bytes, metadata a JSON object.
        (
            json!({"id": "i".repeat(257), "kind": "image", "signals": {"pdq": BRIDGE_PDQ}}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"id": "b10", "kind": "image", "signals": {"pdq": BRIDGE_PDQ},
                   "account": "a".repeat(257)}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"id": "b11", "kind": "image", "signals": {"pdq": BRIDGE_PDQ},
                   "account": ""}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        // Printable and not blank: reports carry both as given.
        (
            json!({"id": "b\u{1b}[2J", "kind": "image", "signals": {"pdq": BRIDGE_PDQ}}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"id": "   ", "kind": "image", "signals": {"pdq": BRIDGE_PDQ}}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"id": "b14", "kind": "image", "signals": {"pdq": BRIDGE_PDQ},
                   "account": "  "}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"id": "b15", "kind": "image", "signals": {"pdq": BRIDGE_PDQ},
                   "account": "user\n2"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"id": "b12", "kind": "image", "signals": {"pdq": BRIDGE_PDQ},
                   "ip": "1".repeat(65)}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"id": "b13", "kind": "image", "signals": {"pdq": BRIDGE_PDQ},
                   "metadata": ["not", "an", "object"]}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    let refused: Vec<String> = cases
        .iter()
        .filter_map(|(b, _, _)| b["id"].as_str().map(str::to_string))
        .collect();
    for (body, status, code) in cases {
        let r = submit(&s, body.clone()).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{body}: {}",
            r.text()
        );
    }
    // Media and a url together, as multipart.
    let img = sample_image(SQUARE);
    let r = s
        .upload(
            "/v1/content",
            "media",
            &img,
            &[(
                "json",
                r#"{"id":"b9","kind":"image","url":"https://example.org/x.jpg"}"#,
            )],
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "conflicting_media")
    );
    assert!(s.store.events_since(0, 10).unwrap().is_empty());
    for id in &refused {
        assert!(s.store.submission(id).unwrap().is_none(), "{id} was stored");
    }
    assert_eq!(s.store.outbox_counts().unwrap().events, 0);
    // The limits' edges are accepted: a 256-byte id and account, a 64-byte ip.
    let mut edge = item(&"e".repeat(256), &"a".repeat(256), BRIDGE_PDQ);
    // Only the length is checked at submission; a report leaves out an `ip` that is not an
    // address (`upload_ip` in crates/server/src/reports.rs).
    edge["ip"] = json!(format!("2001:db8::1{}", "0".repeat(64 - 11)));
    let r = submit(&s, edge).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // A key without the submit scope is refused.
    let k = s.key(&[Scope::Match]);
    let r = s
        .call(
            "POST",
            "/v1/content",
            Some(&k),
            Some(item("x", "u", BRIDGE_PDQ)),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let k = s.key(&[Scope::Submit]);
    let r = s
        .call(
            "POST",
            "/v1/content",
            Some(&k),
            Some(item("x", "u", BRIDGE_PDQ)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Cases are not the submitter's to read.
    let r = s.call("GET", "/v1/cases", Some(&k), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

/// Uploads the benign sample photo as item `m1` after putting its own hash in a `csam` bank:
/// a blocked match whose media is kept. Returns the photo and the answer.
async fn matched_upload(s: &TestServer) -> (Vec<u8>, common::Resp) {
    let img = sample_image(SQUARE);
    let h = s.upload("/h/hash", "photo", &img, &[]).await.json();
    bank(s, "HOTLINE", "csam", h["pdq"].as_str().unwrap()).await;
    let r = s
        .upload(
            "/v1/content",
            "media",
            &img,
            &[("json", r#"{"id":"m1","kind":"image","account":"u"}"#)],
        )
        .await;
    (img, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_media_of_a_match_is_kept_encrypted_and_reads_are_logged() {
    let (s, dir) = actions_server().await;
    let (img, r) = matched_upload(&s).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let b = r.json();
    assert_eq!(b["verdict"], "block");
    let case = b["case_id"].as_i64().unwrap();
    let ev = s.store.case_evidence(case).unwrap();
    assert_eq!(ev.len(), 1);
    let sha = safeguard_media::digest::digests(&img).sha256_hex();
    assert_eq!(ev[0].sha256, sha);
    // What is on disk is not the image.
    let mut found = 0;
    for f in walk(&dir.path().join("vault")) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!holds_image(&bytes, &img));
        found += 1;
    }
    assert_eq!(found, 1);
    let r = s
        .admin("GET", &format!("/v1/evidence/{}", ev[0].object_id), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.body, img);
    // Never kept by a cache on the way (docs/actions.md).
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.headers["content-type"], "application/octet-stream");
    let log = s.store.access_log(&ev[0].object_id).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].1.as_str(), log[0].2.as_str()), ("admin", "read"));

    // Unmatched media is never stored.
    let other = sample_image("photos/images/pdq/data/reg-test-input/labelme-subset/q0122.jpg");
    let r = s
        .upload(
            "/v1/content",
            "media",
            &other,
            &[("json", r#"{"id":"m2","kind":"image","account":"u"}"#)],
        )
        .await;
    assert_eq!(r.json()["verdict"], "allow", "{}", r.text());
    assert_eq!(walk(&dir.path().join("vault")).len(), 1);

    // Retention: a sweep far in the future destroys it (not reported: the unreported
    // period), and the record says so; a legal hold would have stopped it.
    let hold = s
        .admin(
            "POST",
            &format!("/v1/cases/{case}/legal_hold"),
            Some(json!({"hold": true})),
        )
        .await;
    assert_eq!(hold.status, StatusCode::OK);
    let far = i64::MAX / 4;
    assert_eq!(
        safeguard_server::retention::sweep(&s.state, far)
            .await
            .unwrap(),
        0
    );
    s.admin(
        "POST",
        &format!("/v1/cases/{case}/legal_hold"),
        Some(json!({"hold": false})),
    )
    .await;
    // The blob cannot be deleted this time (a directory stands in its place: removing it as
    // a file fails, even as root). Destroying the key is the deletion, so the item is still
    // destroyed; the blob is left, listed, and deleted by a later sweep.
    let blob = walk(&dir.path().join("vault")).remove(0);
    let ciphertext = std::fs::read(&blob).unwrap();
    std::fs::remove_file(&blob).unwrap();
    std::fs::create_dir(&blob).unwrap();
    assert_eq!(
        safeguard_server::retention::sweep(&s.state, far)
            .await
            .unwrap(),
        1
    );
    let left = s.store.evidence_blobs_left(10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].object_id, ev[0].object_id);
    std::fs::remove_dir(&blob).unwrap();
    std::fs::write(&blob, &ciphertext).unwrap();
    assert_eq!(
        safeguard_server::retention::sweep(&s.state, far)
            .await
            .unwrap(),
        0
    );
    assert!(s.store.evidence_blobs_left(10).unwrap().is_empty());
    assert!(!blob.exists());
    // Setting and lifting the hold are in the audit log, by the key that did it.
    let holds: Vec<String> = s
        .store
        .audit_entries(0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|r| r.entry.action == "legal_hold" && r.entry.object == format!("case:{case}"))
        .map(|r| r.entry.detail)
        .collect();
    assert_eq!(holds, vec!["placed", "lifted"]);
    let gone = s.store.evidence(&ev[0].object_id).unwrap().unwrap();
    assert!(gone.wrapped_key.is_none());
    assert_eq!(gone.deletion_reason.as_deref(), Some("retention_expired"));
    assert_eq!(walk(&dir.path().join("vault")).len(), 0);
    let r = s
        .admin("GET", &format!("/v1/evidence/{}", ev[0].object_id), None)
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::GONE, "evidence_destroyed")
    );
}

/// Whether `bytes` hold the image's first 64 bytes anywhere (plaintext evidence).
fn holds_image(bytes: &[u8], img: &[u8]) -> bool {
    bytes.windows(64).any(|w| img.windows(64).next() == Some(w))
}

fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(d) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// What a receiver got: (signature header, body) per request.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A receiver on a real socket that keeps every request's signature header and body.
async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: bytes::Bytes| {
            let g = g.clone();
            async move {
                let sig = headers["safeguard-signature"].to_str().unwrap().to_string();
                g.lock().unwrap().push((sig, body.to_vec()));
                StatusCode::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://127.0.0.1:{}/hook", addr.port()), got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_receive_signed_events_for_verdicts_and_cases() {
    let (s, _dir) = actions_server().await;
    bank(&s, "HOTLINE", "csam", BRIDGE_PDQ).await;
    let (url, got) = receiver().await;
    let r = s
        .admin(
            "POST",
            "/v1/webhooks",
            Some(json!({"url": url, "event_types": ["content.verdict", "case.opened"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    // The secret is shown once.
    let id = r.json()["id"].as_i64().unwrap();
    let shown = s
        .admin("GET", &format!("/v1/webhooks/{id}"), None)
        .await
        .json();
    assert!(shown.get("secret").is_none());

    let b = submit(&s, item("w1", "u1", BRIDGE_PDQ)).await.json();
    let want: Vec<String> = b["event_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let got = received(&got, want.len()).await;
    let mut ids = Vec::new();
    for (sig, body) in &got {
        assert!(verifies(&secret, sig, body));
        let mut tampered = body.clone();
        tampered[0] ^= 1;
        assert!(!verifies(&secret, sig, &tampered));
        let v: Value = serde_json::from_slice(body).unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids, want, "in order, each once");
    let c = s.store.outbox_counts().unwrap();
    assert_eq!((c.pending, c.delivered), (0, 2));

    // Registration goes through the SSRF guard.
    let r = s
        .admin(
            "POST",
            "/v1/webhooks",
            Some(json!({"url": "http://10.0.0.1/hook", "event_types": ["*"]})),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "forbidden_url")
    );
    let r = s
        .admin(
            "POST",
            "/v1/webhooks",
            Some(json!({"url": url, "event_types": ["nope"]})),
        )
        .await;
    assert_eq!(r.code(), "invalid_event_types");
    // A type named twice: each event written reads every endpoint's list.
    let before = s.admin("GET", "/v1/webhooks", None).await.json();
    let r = s
        .admin(
            "POST",
            "/v1/webhooks",
            Some(json!({"url": url, "event_types": ["*", "case.opened", "*"]})),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_event_types"),
        "{}",
        r.text()
    );
    assert_eq!(s.admin("GET", "/v1/webhooks", None).await.json(), before);
}

/// Waits until the receiver holds `n` requests (at most 20 s).
async fn received(got: &Received, n: usize) -> Vec<(String, Vec<u8>)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while got.lock().unwrap().len() < n {
        assert!(std::time::Instant::now() < deadline, "events not delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    got.lock().unwrap().clone()
}

fn verifies(secret: &str, sig: &str, body: &[u8]) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    safeguard_webhook::signature::verify(
        secret,
        sig,
        body,
        now,
        safeguard_webhook::signature::DEFAULT_TOLERANCE,
    )
    .is_ok()
}

/// Rotating an endpoint's secret: deliveries then carry a signature by the new secret and
/// one by the one it replaced, until the overlap is ended; then only the new one verifies.
/// Both steps are audited; a weak chosen secret and an unknown endpoint are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends() {
    let (s, _dir) = actions_server().await;
    bank(&s, "HOTLINE", "csam", BRIDGE_PDQ).await;
    let (url, got) = receiver().await;
    let r = s
        .admin(
            "POST",
            "/v1/webhooks",
            Some(json!({"url": url, "event_types": ["content.verdict"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let old = r.json()["secret"].as_str().unwrap().to_string();
    let id = r.json()["id"].as_i64().unwrap();

    // No body: a generated secret, shown once.
    let r = s
        .admin("POST", &format!("/v1/webhooks/{id}/secret"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let new = r.json()["secret"].as_str().unwrap().to_string();
    assert!(new.starts_with("whsec_") && new != old);
    assert_eq!(r.json()["signing_secrets"], 2);
    let shown = s
        .admin("GET", &format!("/v1/webhooks/{id}"), None)
        .await
        .json();
    assert!(shown.get("secret").is_none());

    submit(&s, item("rot1", "u1", BRIDGE_PDQ)).await;
    let (sig, body) = received(&got, 1).await[0].clone();
    assert_eq!(sig.matches("v1=").count(), 2, "{sig}");
    assert!(verifies(&new, &sig, &body));
    assert!(verifies(&old, &sig, &body));
    assert!(!verifies("whsec_someone_elses_secret_0000", &sig, &body));

    // The overlap ends: the old secret no longer verifies.
    let r = s
        .admin(
            "DELETE",
            &format!("/v1/webhooks/{id}/secret/previous"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["signing_secrets"], 1);
    assert!(r.json().get("secret").is_none());
    submit(&s, item("rot2", "u2", BRIDGE_PDQ)).await;
    let (sig, body) = received(&got, 2).await[1].clone();
    assert_eq!(sig.matches("v1=").count(), 1, "{sig}");
    assert!(verifies(&new, &sig, &body));
    assert!(!verifies(&old, &sig, &body));
    // Ending it again changes nothing and records nothing.
    let r = s
        .admin(
            "DELETE",
            &format!("/v1/webhooks/{id}/secret/previous"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // A chosen secret is checked like one given at registration, and replaces nothing
    // when refused.
    let r = s
        .admin(
            "POST",
            &format!("/v1/webhooks/{id}/secret"),
            Some(json!({"secret": "short"})),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "weak_secret")
    );
    let r = s
        .admin(
            "POST",
            &format!("/v1/webhooks/{id}/secret"),
            Some(json!({"colour": "red"})),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_body")
    );
    // A body that is not JSON, or not sent as JSON, gets the codes every JSON route gives.
    let raw = |body: &'static str, content_type: &'static str| {
        axum::http::Request::builder()
            .method("POST")
            .uri(format!("/v1/webhooks/{id}/secret"))
            .header("authorization", format!("Bearer {}", common::ADMIN_KEY))
            .header("content-type", content_type)
            .body(axum::body::Body::from(body))
            .unwrap()
    };
    let r = s.send(raw("{\"secret\":", "application/json")).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    let r = s.send(raw("{}", "text/plain")).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    let chosen = "chosen-secret-of-thirty-two-chars";
    let r = s
        .admin(
            "POST",
            &format!("/v1/webhooks/{id}/secret"),
            Some(json!({"secret": chosen})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(
        r.json().get("secret").is_none(),
        "a chosen secret is not echoed"
    );
    assert_eq!(r.json()["signing_secrets"], 2);
    submit(&s, item("rot3", "u3", BRIDGE_PDQ)).await;
    let (sig, body) = received(&got, 3).await[2].clone();
    assert!(verifies(chosen, &sig, &body));
    assert!(verifies(&new, &sig, &body));
    assert!(!verifies(&old, &sig, &body));
    // The current secret again is no rotation.
    let r = s
        .admin(
            "POST",
            &format!("/v1/webhooks/{id}/secret"),
            Some(json!({"secret": chosen})),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "secret_unchanged")
    );
    // A second rotation before the overlap ended drops the oldest: two sign, never three.
    let r = s
        .admin(
            "POST",
            &format!("/v1/webhooks/{id}/secret"),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let newest = r.json()["secret"].as_str().unwrap().to_string();
    assert_eq!(r.json()["signing_secrets"], 2);
    submit(&s, item("rot4", "u4", BRIDGE_PDQ)).await;
    let (sig, body) = received(&got, 4).await[3].clone();
    assert_eq!(sig.matches("v1=").count(), 2, "{sig}");
    assert!(verifies(&newest, &sig, &body));
    assert!(verifies(chosen, &sig, &body));
    assert!(!verifies(&new, &sig, &body));

    // A stored secret the master key cannot open (altered in the store): ending an overlap
    // needs to read it and says so; a rotation replaces it with the new secret alone.
    let sealed = s.store.webhook(id).unwrap().unwrap().sealed_secret;
    s.store
        .set_webhook_secret(id, &sealed, b"not a sealed value")
        .unwrap();
    let r = s
        .admin(
            "DELETE",
            &format!("/v1/webhooks/{id}/secret/previous"),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "webhook_secret_unreadable"
        )
    );
    let r = s
        .admin("POST", &format!("/v1/webhooks/{id}/secret"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["signing_secrets"], 1);
    let recovered = r.json()["secret"].as_str().unwrap().to_string();
    submit(&s, item("rot5", "u5", BRIDGE_PDQ)).await;
    let (sig, body) = received(&got, 5).await[4].clone();
    assert_eq!(sig.matches("v1=").count(), 1, "{sig}");
    assert!(verifies(&recovered, &sig, &body));

    let r = s.admin("POST", "/v1/webhooks/9999/secret", None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "webhook_not_found")
    );
    let r = s
        .admin("DELETE", "/v1/webhooks/9999/secret/previous", None)
        .await;
    assert_eq!(r.code(), "webhook_not_found");

    let details: Vec<String> = s
        .store
        .audit_entries(0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|r| r.entry.object == format!("webhook:{id}"))
        .map(|r| r.entry.detail)
        .collect();
    assert_eq!(
        details,
        vec![
            "webhook created",
            "webhook secret rotated (the previous secret still signs)",
            "webhook previous secret retired",
            "webhook secret rotated (the previous secret still signs)",
            "webhook secret rotated (the previous secret still signs)",
            "webhook secret replaced (the stored secret could not be opened)",
        ]
    );
}

/// A receiver on a real socket answering the status in `status` (changed while the test runs),
/// keeping the event id of every request it answered 2xx.
async fn switchable_receiver() -> (
    String,
    Arc<std::sync::atomic::AtomicU16>,
    Arc<Mutex<Vec<String>>>,
) {
    use std::sync::atomic::{AtomicU16, Ordering};
    let status = Arc::new(AtomicU16::new(500));
    let delivered: Arc<Mutex<Vec<String>>> = Arc::default();
    let (st, d) = (status.clone(), delivered.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: bytes::Bytes| {
            let (st, d) = (st.clone(), d.clone());
            async move {
                let code = StatusCode::from_u16(st.load(Ordering::SeqCst)).unwrap();
                if code.is_success() {
                    let v: Value = serde_json::from_slice(&body).unwrap();
                    d.lock()
                        .unwrap()
                        .push(v["id"].as_str().unwrap().to_string());
                }
                code
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (
        format!("http://127.0.0.1:{}/hook", addr.port()),
        status,
        delivered,
    )
}

/// Polls `GET uri` until `done` holds for its body (20 s at most).
async fn until(s: &TestServer, uri: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let b = s.admin("GET", uri, None).await.json();
        if done(&b) {
            return b;
        }
        assert!(std::time::Instant::now() < deadline, "{uri}: still {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the unlabelled sample `safeguard_{name}` in a `/metrics` text.
fn metric(metrics: &str, name: &str) -> i64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("safeguard_{name} ")))
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
        .parse()
        .unwrap()
}

/// Webhook faults through the whole server: a receiver failing with 500 is retried, one
/// answering 410 Gone disables its endpoint and dead-letters what was pending; the dead-letter
/// list, re-enabling with `PATCH` and redriving all go through the API, are audited, and every
/// event then arrives once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_faults_dead_letters_and_redrive_through_the_api() {
    use std::sync::atomic::Ordering;
    let (s, _dir) = actions_server().await;
    bank(&s, "HOTLINE", "csam", BRIDGE_PDQ).await;
    let (url, status, delivered) = switchable_receiver().await;
    let r = s
        .admin(
            "POST",
            "/v1/webhooks",
            Some(json!({"url": url, "event_types": ["*"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let hook = format!("/v1/webhooks/{id}");

    let b = submit(&s, item("wf1", "u1", BRIDGE_PDQ)).await.json();
    let want: Vec<String> = b["event_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(want.len(), 2, "{b}");

    // 500: retried, the endpoint marked failing, nothing dead yet.
    let h = until(&s, &hook, |h| h["failing_since"].is_i64()).await;
    assert_eq!(
        (h["enabled"].clone(), h["dead_letters"].clone()),
        (json!(true), json!(0))
    );
    // 410 Gone: disabled at once, both pending events dead-lettered.
    status.store(410, Ordering::SeqCst);
    let h = until(&s, &hook, |h| h["enabled"] == json!(false)).await;
    assert!(
        h["disabled_reason"].as_str().unwrap().contains("410"),
        "{h}"
    );
    assert_eq!(h["dead_letters"], 2);
    // The store's gauges in /metrics say the same.
    let gauges = |metrics: &str| {
        (
            metric(metrics, "webhook_backlog"),
            metric(metrics, "webhook_dead_letters"),
            metric(metrics, "webhooks_disabled"),
        )
    };
    let m = s.admin("GET", "/metrics", None).await.text();
    assert_eq!(gauges(&m), (0, 2, 1), "{m}");
    let dead = s.admin("GET", &format!("{hook}/dead"), None).await;
    assert_eq!(dead.status, StatusCode::OK);
    let dead = dead.json()["dead_letters"].as_array().unwrap().clone();
    let ids: Vec<&str> = dead
        .iter()
        .map(|d| d["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, want.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(dead[0]["event_type"], "content.verdict");
    assert_eq!(dead[0]["last_status"], 410);
    assert!(dead[0]["attempts"].as_i64().unwrap() >= 2, "{}", dead[0]);
    assert!(dead[0]["dead_at"].is_i64());
    assert!(delivered.lock().unwrap().is_empty());

    // Bad input and unknown endpoints: clear errors, nothing changed.
    for (method, uri, body, want_status, want_code) in [
        (
            "GET",
            "/v1/webhooks/999/dead".to_string(),
            None,
            StatusCode::NOT_FOUND,
            "webhook_not_found",
        ),
        (
            "POST",
            "/v1/webhooks/999/dead/redrive".to_string(),
            None,
            StatusCode::NOT_FOUND,
            "webhook_not_found",
        ),
        (
            "PATCH",
            "/v1/webhooks/999".to_string(),
            Some(json!({"enabled": true})),
            StatusCode::NOT_FOUND,
            "webhook_not_found",
        ),
        (
            "PATCH",
            hook.clone(),
            Some(json!({"enabled": true, "url": "http://x/"})),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "POST",
            format!("{hook}/dead/redrive"),
            Some(json!("all")),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "POST",
            format!("{hook}/dead/redrive"),
            Some(json!({"delivery_ids": (0..1001).collect::<Vec<i64>>()})),
            StatusCode::BAD_REQUEST,
            "too_many_delivery_ids",
        ),
    ] {
        let r = s.admin(method, &uri, body).await;
        assert_eq!(
            (r.status, r.code()),
            (want_status, want_code.to_string()),
            "{method} {uri}: {}",
            r.text()
        );
    }
    // Malformed JSON is `invalid_json`, as on every other route with an optional body.
    let malformed = axum::http::Request::builder()
        .method("POST")
        .uri(format!("{hook}/dead/redrive"))
        .header("authorization", format!("Bearer {}", common::ADMIN_KEY))
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{"))
        .unwrap();
    let r = s.send(malformed).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_json".to_string()),
        "{}",
        r.text()
    );
    assert_eq!(s.admin("GET", &hook, None).await.json()["dead_letters"], 2);

    // The receiver is back: re-enable, then redrive the first dead letter, then the rest.
    status.store(200, Ordering::SeqCst);
    let r = s
        .admin("PATCH", &hook, Some(json!({"enabled": true})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let h = r.json();
    assert_eq!(
        (
            h["enabled"].clone(),
            h["disabled_reason"].clone(),
            h["failing_since"].clone()
        ),
        (json!(true), Value::Null, Value::Null)
    );
    let first = dead[0]["delivery_id"].as_i64().unwrap();
    let r = s
        .admin(
            "POST",
            &format!("{hook}/dead/redrive"),
            Some(json!({"delivery_ids": [first]})),
        )
        .await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({"redriven": 1}))
    );
    until(&s, &format!("{hook}/dead"), |d| {
        d["dead_letters"].as_array().unwrap().len() == 1
    })
    .await;
    let r = s.admin("POST", &format!("{hook}/dead/redrive"), None).await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({"redriven": 1}))
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while delivered.lock().unwrap().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "redriven events not delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(*delivered.lock().unwrap(), want, "each once, in order");
    assert_eq!(s.admin("GET", &hook, None).await.json()["dead_letters"], 0);
    // The receiver keeps an event before it answers; the dispatcher records the attempt
    // after the answer, so wait for that.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let c = s.store.outbox_counts().unwrap();
        if (c.pending, c.delivered) == (0, 2) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "outbox {} pending, {} delivered",
            c.pending,
            c.delivered
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The dispatcher's counts are in /metrics (counted just after the outbox write).
    let count = |metrics: &str, name: &str| metric(metrics, &format!("{name}_total"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let m = s.admin("GET", "/metrics", None).await.text();
        if count(&m, "webhook_delivered") == 2 {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "{m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The store's gauges: nothing waiting, dead or disabled any more.
    assert_eq!(gauges(&metrics), (0, 0, 0), "{metrics}");
    let count = |name: &str| count(&metrics, name);
    assert_eq!(count("webhook_delivered"), 2);
    assert_eq!(count("webhook_dead_lettered"), 2);
    assert_eq!(count("webhook_endpoints_disabled"), 1);
    assert!(count("webhook_retried") >= 1);
    assert!(count("webhook_attempts") >= count("webhook_retried") + 3);
    // The group commit's counters: the test's one submission, in one transaction.
    assert_eq!(count("submission_commit_items"), 1);
    assert_eq!(count("submission_commits"), 1);

    // Disabling through the API says so.
    let h = s
        .admin("PATCH", &hook, Some(json!({"enabled": false})))
        .await
        .json();
    assert_eq!(
        (h["enabled"].clone(), h["disabled_reason"].clone()),
        (json!(false), json!("disabled through the API"))
    );
    // Disabling it again, and a redrive with nothing dead, change nothing: not recorded.
    let r = s
        .admin("PATCH", &hook, Some(json!({"enabled": false})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = s.admin("POST", &format!("{hook}/dead/redrive"), None).await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({"redriven": 0}))
    );

    // Every change an operator made is in the audit log, by the key that made it.
    let changes: Vec<(String, String)> = s
        .store
        .audit_entries(0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|r| r.entry.object == format!("webhook:{id}"))
        .map(|r| (r.entry.actor, r.entry.detail))
        .collect();
    let details: Vec<&str> = changes.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(
        details,
        vec![
            "webhook created",
            "webhook enabled",
            "1 dead letters redriven",
            "1 dead letters redriven",
            "webhook disabled"
        ]
    );
    assert!(changes
        .iter()
        .all(|(a, _)| a == &changes[0].0 && !a.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_answer_per_item() {
    let (s, _dir) = actions_server().await;
    bank(&s, "HOTLINE", "csam", BRIDGE_PDQ).await;
    let items: Vec<Value> = (0..20)
        .map(|i| {
            let pdq = if i % 2 == 0 { BRIDGE_PDQ } else { FAR };
            item(&format!("bt{i}"), &format!("u{i}"), pdq)
        })
        .chain([json!({"id": "bad", "kind": "image", "signals": {"md5": "zz"}})])
        .collect();
    let r = s
        .admin("POST", "/v1/content/batch", Some(json!({"items": items})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let res = r.json()["results"].as_array().unwrap().clone();
    assert_eq!(res.len(), 21);
    for (i, r) in res.iter().take(20).enumerate() {
        let want = if i % 2 == 0 { "block" } else { "allow" };
        assert_eq!(r["result"]["verdict"], want, "{r}");
    }
    assert_eq!(res[20]["status"], 400);
    // A batch body is capped at 8 MiB before it is parsed (docs/actions.md); nothing of it
    // is recorded.
    let big = json!({"items": [{"id": "huge", "kind": "image", "signals": {"pdq": BRIDGE_PDQ},
        "metadata": {"pad": "x".repeat(8 << 20)}}]});
    let r = s.admin("POST", "/v1/content/batch", Some(big)).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        "{}",
        r.text()
    );
    assert_eq!(
        s.admin("GET", "/v1/content/huge", None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(res[20]["error"]["code"], "invalid_signals");
    let too_many: Vec<Value> = (0..1001)
        .map(|i| item(&format!("t{i}"), "u", FAR))
        .collect();
    let r = s
        .admin(
            "POST",
            "/v1/content/batch",
            Some(json!({"items": too_many})),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_many_items")
    );
}

/// The two-person rule through the API: the key that confirmed a case cannot approve it, an
/// `approve` key can (once), and only then may the case become `reported`; a case decided
/// again needs a new approval. Then the figures of the whole history, every number checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_key_approves_before_a_report_and_the_figures_count_everything() {
    let (s, _dir) = actions_server().await;
    bank(&s, "HOTLINE", "csam", BRIDGE_PDQ).await;
    let reviewer = s.key(&[Scope::Admin]);
    let senior = s.key(&[Scope::Approve]);
    let submitter = s.key(&[Scope::Submit]);
    let auditor = s.key(&[Scope::Audit]);
    let mut uploaded = json!(null);
    for (id, account, pdq) in [
        ("f1", "acct-a", BRIDGE_PDQ),
        ("f2", "acct-a", NEAR_BRIDGE),
        ("f3", "acct-b", BRIDGE_PDQ),
        ("f4", "acct-c", FAR),
    ] {
        let mut body = item(id, account, pdq);
        body["created_at"] = json!(1_000);
        let r = s
            .call("POST", "/v1/content", Some(&submitter), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        if id == "f1" {
            uploaded = r.json();
        }
    }
    let case_a = uploaded["case_id"].as_i64().unwrap();
    let case_b = s.store.submission("f3").unwrap().unwrap().case_id.unwrap();
    let move_to = |id: i64, to: &str, decision: Option<&str>| {
        let body = json!({"to": to, "decision": decision});
        let key = reviewer.clone();
        let s = &s;
        async move {
            s.call(
                "POST",
                &format!("/v1/cases/{id}/transition"),
                Some(&key),
                Some(body),
            )
            .await
        }
    };
    let approve = |id: i64, key: String| {
        let s = &s;
        async move {
            s.call("POST", &format!("/v1/cases/{id}/approve"), Some(&key), None)
                .await
        }
    };
    assert_eq!(
        move_to(case_a, "in_review", None).await.status,
        StatusCode::OK
    );
    // Not decided yet: nothing to approve.
    let r = approve(case_a, senior.clone()).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "invalid_transition")
    );
    let r = move_to(case_a, "decided", Some("confirmed: A1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = move_to(case_a, "reported", None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "approval_required")
    );
    // The reviewer cannot approve their own confirmation, even with an admin key.
    let r = approve(case_a, reviewer.clone()).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::FORBIDDEN, "same_person"),
        "{}",
        r.text()
    );
    // A key without the approve scope is refused before the rule is looked at.
    let r = approve(case_a, submitter.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = approve(case_a, senior.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = approve(case_a, senior.clone()).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "already_approved")
    );
    let c = s
        .admin("GET", &format!("/v1/cases/{case_a}"), None)
        .await
        .json();
    let senior_id = c["approved_by"].as_str().unwrap().to_string();
    assert!(senior_id.starts_with("key:"), "{c}");
    assert_ne!(c["approved_by"], c["decided_by"]);
    let approved_event = events(&s)
        .await
        .into_iter()
        .find(|e| e["data"]["change"] == "approved")
        .expect("a case.updated event for the approval");
    assert_eq!(approved_event["type"], "case.updated");
    assert_eq!(approved_event["data"]["approved_by"], json!(senior_id));
    // Re-deciding drops the approval.
    assert_eq!(
        move_to(case_a, "in_review", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        move_to(case_a, "decided", Some("confirmed: A1"))
            .await
            .status,
        StatusCode::OK
    );
    let r = move_to(case_a, "reported", None).await;
    assert_eq!(r.code(), "approval_required");
    assert_eq!(approve(case_a, senior.clone()).await.status, StatusCode::OK);
    let r = move_to(case_a, "reported", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Case b: a false positive. Not approvable.
    assert_eq!(
        move_to(case_b, "in_review", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        move_to(case_b, "decided", Some("not_csam")).await.status,
        StatusCode::OK
    );
    let r = approve(case_b, senior.clone()).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "invalid_transition")
    );

    // Figures of everything so far.
    let r = s
        .call(
            "GET",
            "/v1/figures?from=0&to=9999999999999",
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let f = r.json();
    assert_eq!(f["scanned"], json!({"total": 4, "by_kind": {"image": 4}}));
    assert_eq!(f["verdicts"], json!({"allow": 1, "block": 3}));
    assert_eq!(f["matched"]["items"], 3);
    assert_eq!(f["matched"]["matches"], 3);
    assert_eq!(f["matched"]["by_bank"], json!({"HOTLINE": 3}));
    assert_eq!(f["matched"]["by_source"], json!({"api": 3}));
    assert_eq!(f["matched"]["by_classification"], json!({"A1": 3}));
    assert_eq!(f["matched"]["by_signal_type"], json!({"pdq": 3}));
    assert_eq!(f["cases"]["opened"], 2);
    assert_eq!(f["cases"]["items_added"], 1);
    assert_eq!(f["cases"]["approvals"], 2);
    assert_eq!(
        f["cases"]["entered"],
        json!({"in_review": 3, "decided": 3, "reported": 1})
    );
    assert_eq!(f["review"]["decided"], 3);
    assert_eq!(f["review"]["confirmed"], 2);
    assert_eq!(f["review"]["false_positive"], 1);
    assert_eq!(
        f["review"]["by_source"]["api"],
        json!({"decided": 3, "confirmed": 2, "false_positive": 1, "false_positive_rate": 1.0 / 3.0})
    );
    assert_eq!(f["reports"]["reported_cases"], 1);
    assert_eq!(f["times"]["match_to_report"]["count"], 1);
    // Every verdict other than allow had an upload time (1,000 s after the epoch).
    assert_eq!(f["times"]["upload_to_action"]["count"], 3);
    assert_eq!(
        f["contact_safety"],
        json!({"risk_reviews": 0, "url_matches": 0})
    );
    // An empty period before anything happened.
    let r = s
        .call("GET", "/v1/figures?from=0&to=1000", Some(&auditor), None)
        .await;
    assert_eq!(r.json()["scanned"]["total"], 0);
    let r = s
        .call(
            "GET",
            "/v1/figures?from=0&to=9999999999999&format=csv",
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "text/csv; charset=utf-8");
    assert!(r.text().contains("\nreview,confirmed,2\n"), "{}", r.text());
    for bad in [
        "/v1/figures",
        "/v1/figures?from=5&to=5",
        "/v1/figures?from=0&to=1&format=xml",
        "/v1/figures?from=x&to=1",
    ] {
        let r = s.call("GET", bad, Some(&auditor), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
        assert_eq!(r.code(), "invalid_request");
    }
    // The audit scope reads figures and the audit log, not cases.
    let r = s.call("GET", "/v1/cases", Some(&auditor), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

/// The caps docs/api.md states on webhook registration (64 endpoints, URLs of 2,048 bytes)
/// and on a case's note and decision (4,096 bytes): at the cap accepted, one over refused
/// with its code, and nothing changed by a refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_count_url_length_and_case_note_caps() {
    // The documented figures, not the constants: a change of either shows here.
    const MAX_URL_LEN: usize = 2048;
    const MAX_WEBHOOKS: usize = 64;
    let (s, _dir) = actions_server().await;
    // Nothing is ever sent to these: no event is written in this test.
    let url_of_len = |n: usize| {
        let head = "http://127.0.0.1:9/";
        format!("{head}{}", "a".repeat(n - head.len()))
    };
    let register = |url: String| {
        let s = &s;
        async move {
            s.admin(
                "POST",
                "/v1/webhooks",
                Some(json!({"url": url, "event_types": ["*"]})),
            )
            .await
        }
    };
    let r = register(url_of_len(MAX_URL_LEN + 1)).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_url"),
        "{}",
        r.text()
    );
    assert!(s.store.webhooks().unwrap().is_empty());
    let r = register(url_of_len(MAX_URL_LEN)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    for i in 1..MAX_WEBHOOKS {
        let r = register(format!("http://127.0.0.1:9/hook-{i}")).await;
        assert_eq!(r.status, StatusCode::CREATED, "endpoint {i}: {}", r.text());
    }
    let r = register("http://127.0.0.1:9/one-too-many".into()).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "too_many_webhooks"),
        "{}",
        r.text()
    );
    assert_eq!(s.store.webhooks().unwrap().len(), MAX_WEBHOOKS);

    // A case to write notes on.
    bank(&s, "HOTLINE", "csam", BRIDGE_PDQ).await;
    let r = submit(&s, item("n1", "acct", BRIDGE_PDQ)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let id = r.json()["case_id"].as_i64().unwrap();
    let uri = format!("/v1/cases/{id}/transition");
    let history = s.store.case_history(id).unwrap().len();
    for body in [
        json!({"to": "in_review", "note": "n".repeat(4097)}),
        json!({"to": "in_review", "decision": "d".repeat(4097)}),
    ] {
        let r = s.admin("POST", &uri, Some(body)).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{}",
            r.text()
        );
        assert!(r.text().contains("4096 bytes"), "{}", r.text());
    }
    assert_eq!(s.store.case(id).unwrap().unwrap().state, "open");
    assert_eq!(s.store.case_history(id).unwrap().len(), history);
    let r = s
        .admin(
            "POST",
            &uri,
            Some(json!({"to": "in_review", "note": "n".repeat(4096)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let last = s.store.case_history(id).unwrap().pop().unwrap();
    assert_eq!(last.note.as_deref().map(str::len), Some(4096));
}

/// The case list's page (docs/actions.md): 50 cases unless `limit` says otherwise, 500 at
/// most, 1 at least; `next_before` pages through every case once, newest first, and is null
/// on the page that is not full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_case_list_pages_by_50_and_at_most_500() {
    let (s, _dir) = actions_server().await;
    bank(&s, "HOTLINE", "csam", BRIDGE_PDQ).await;
    // 501 matching items of 501 accounts: 501 cases.
    let items: Vec<Value> = (0..501)
        .map(|i| item(&format!("p{i}"), &format!("acct{i}"), BRIDGE_PDQ))
        .collect();
    let r = s
        .admin("POST", "/v1/content/batch", Some(json!({"items": items})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let page = |q: String| {
        let s = &s;
        async move {
            let r = s.admin("GET", &format!("/v1/cases{q}"), None).await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text());
            let cases = r.json()["cases"].as_array().unwrap().clone();
            let ids: Vec<(i64, String)> = cases
                .iter()
                .map(|c| (c["id"].as_i64().unwrap(), c["account"].to_string()))
                .collect();
            (ids, r.json()["next_before"].as_i64())
        }
    };
    let (ids, next) = page(String::new()).await;
    assert_eq!(ids.len(), 50, "the default page");
    assert_eq!(next, Some(ids[49].0));
    let (ids, next) = page("?limit=0".into()).await;
    assert_eq!(ids.len(), 1, "limit 0 is served as 1");
    assert_eq!(next, Some(ids[0].0));

    let (first, next) = page("?limit=100000".into()).await;
    assert_eq!(first.len(), 500, "at most 500 a page");
    assert_eq!(next, Some(first[499].0), "a full page names the next");
    let (rest, next) = page(format!("?limit=500&before={}", first[499].0)).await;
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(next, None, "the last page is not full");
    let all: Vec<(i64, String)> = first.into_iter().chain(rest).collect();
    assert!(all.windows(2).all(|w| w[0].0 > w[1].0), "newest first");
    let accounts: std::collections::HashSet<&String> = all.iter().map(|(_, a)| a).collect();
    assert_eq!(accounts.len(), 501, "every case once");
}

/// No log, no read (docs/audit.md): an evidence read whose audit entry cannot be appended is
/// refused, and the bytes never leave. The store is a SQLite file here, so a second
/// connection can make every audit append fail (the table renamed away) while the server
/// runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evidence_read_that_cannot_be_audited_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("safeguard.db");
    let store: Arc<dyn safeguard_store::Store> = Arc::new(
        safeguard_store::SqliteStore::open(&safeguard_store::SqliteOptions::new(&db)).unwrap(),
    );
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let s = server_on(store, config).await;
    let (img, r) = matched_upload(&s).await;
    let case = r.json()["case_id"].as_i64().expect("a case");
    let object = s.store.case_evidence(case).unwrap()[0].object_id.clone();
    let uri = format!("/v1/evidence/{object}");
    let read = || s.admin("GET", &uri, None);
    assert_eq!(read().await.body, img, "readable while the log works");
    let entries = s.store.audit_entries(0, 10_000).unwrap().len();

    // The log's table is moved away, so the append fails as a failed write does.
    let sql = |q: &str| {
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(q)
            .unwrap()
    };
    sql("ALTER TABLE audit_log RENAME TO audit_log_away");
    let r = read().await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        "{}",
        r.text()
    );
    assert!(
        !holds_image(&r.body, &img),
        "evidence bytes in a refused read"
    );
    sql("ALTER TABLE audit_log_away RENAME TO audit_log");
    assert_eq!(s.store.audit_entries(0, 10_000).unwrap().len(), entries);
    assert_eq!(read().await.body, img, "readable again once the log works");
}
