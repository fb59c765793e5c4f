//! Backfill scans over HTTP (`/v1/scans`): progress, results by page, pause, resume and
//! cancel, and stable codes for what cannot be done. The scan is planned through the store,
//! as `safeguard scan` does; the CLI's tests run real workers.

use axum::http::StatusCode;
use serde_json::Value;

use crate::common::*;
use safeguard_server::auth::Scope;
use safeguard_store::scan::{Claim, ItemResult, NewScan};

fn result(key: &str, matched: bool) -> ItemResult {
    ItemResult {
        key: key.into(),
        error: None,
        pdq: Some("a".repeat(64)),
        quality: Some(90),
        md5: Some("b".repeat(32)),
        sha256: Some("c".repeat(64)),
        size: Some(10),
        matched,
        verdict: matched.then(|| "review".to_string()),
        submission: matched.then(|| format!("scan:1:{key}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_results_and_steering() {
    let s = server().await;
    let key = s.key(&[Scope::Admin]);
    let scan = s
        .store
        .create_scan(&NewScan {
            source: "dir:/srv/media".into(),
            target: r#"{"banks":["known"]}"#.into(),
            created_by: "host:1:ab".into(),
            created_at: safeguard_engine::now_ms() - 2_000,
            job_size: 2,
        })
        .unwrap();
    let jobs = vec![
        vec!["a.jpg".to_string(), "b.jpg".into()],
        vec!["c.jpg".to_string(), "d.jpg".into()],
    ];
    s.store.add_scan_jobs(scan.id, 0, &jobs).unwrap();
    s.store
        .finish_listing(scan.id, safeguard_engine::now_ms())
        .unwrap();
    let Claim::Job(j) = s.store.claim_scan_job(scan.id, "w", 600_000).unwrap() else {
        panic!("a job")
    };
    s.store
        .finish_scan_job(
            j.id,
            "w",
            &[result("a.jpg", false), result("b.jpg", true)],
            safeguard_engine::now_ms(),
        )
        .unwrap();

    let uri = format!("/v1/scans/{}", scan.id);
    let r = s.call("GET", &uri, Some(&key), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["state"], "running");
    assert_eq!(v["target"]["banks"][0], "known");
    assert_eq!(
        (v["items"].as_i64(), v["items_done"].as_i64()),
        (Some(4), Some(2))
    );
    assert_eq!(v["items_matched"], 1);
    assert_eq!(v["percent"], 50.0);
    assert!(v["items_per_second"].as_f64().unwrap() > 0.0);
    assert!(v["eta_seconds"].as_f64().unwrap() >= 1.0, "{v}");

    // Results by key, a page at a time.
    let r = s
        .call("GET", &format!("{uri}/results?limit=1"), Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let page = r.json();
    assert_eq!(page["results"][0]["key"], "a.jpg");
    assert_eq!(page["next_after"], "a.jpg");
    let r = s
        .call(
            "GET",
            &format!("{uri}/results?limit=10&after=a.jpg"),
            Some(&key),
            None,
        )
        .await;
    let page = r.json();
    assert_eq!(page["results"].as_array().unwrap().len(), 1);
    assert_eq!(page["results"][0]["verdict"], "review");
    assert_eq!(page["results"][0]["worker"], "w");
    assert!(page["next_after"].is_null());

    // Pause, resume, cancel; then nothing more.
    for (action, state) in [
        ("pause", "paused"),
        ("resume", "running"),
        ("cancel", "cancelled"),
    ] {
        let r = s
            .call("POST", &format!("{uri}/{action}"), Some(&key), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{action}: {}", r.text());
        assert_eq!(r.json()["state"], state);
    }
    assert!(matches!(
        s.store.claim_scan_job(scan.id, "w", 600_000).unwrap(),
        Claim::Ended(_)
    ));
    let r = s
        .call("POST", &format!("{uri}/resume"), Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        r.json()["error"]["code"],
        "scan_state_conflict",
        "{}",
        r.text()
    );

    // Each change of state is in the audit log, with who made it.
    let auditor = s.key(&[Scope::Audit]);
    let r = s
        .call("GET", "/v1/audit/entries", Some(&auditor), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let entries = r.json()["entries"].as_array().unwrap().clone();
    let steered: Vec<&str> = entries
        .iter()
        .filter(|e| e["object"] == format!("scan:{}", scan.id))
        .map(|e| {
            assert_eq!(e["action"], "config_changed");
            assert!(e["actor"].as_str().unwrap().starts_with("key:"), "{e}");
            e["detail"].as_str().unwrap()
        })
        .collect();
    assert_eq!(steered, ["paused", "running", "cancelled"], "{entries:?}");

    let list = s.call("GET", "/v1/scans", Some(&key), None).await.json();
    assert_eq!(list["scans"][0]["id"], scan.id);
    assert!(list["scans"][0]["eta_seconds"].is_null(), "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_scans_bad_pages_and_scopes() {
    let s = server().await;
    let admin = s.key(&[Scope::Admin]);
    for (method, uri) in [
        ("GET", "/v1/scans/77"),
        ("GET", "/v1/scans/77/results"),
        ("POST", "/v1/scans/77/pause"),
        ("POST", "/v1/scans/77/cancel"),
    ] {
        let r = s.call(method, uri, Some(&admin), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {uri}");
        let v: Value = r.json();
        assert_eq!(v["error"]["code"], "scan_not_found", "{method} {uri}: {v}");
    }
    for (bad, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=1001", "invalid_limit"),
        ("limit=x", "invalid_request"),
        ("bogus=1", "invalid_request"),
    ] {
        let r = s
            .call("GET", &format!("/v1/scans?{bad}"), Some(&admin), None)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        let v: Value = r.json();
        assert_eq!(v["error"]["code"], code, "{bad}: {v}");
    }
    let r = s.call("GET", "/v1/scans/abc", Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let v: Value = r.json();
    assert_eq!(v["error"]["code"], "invalid_request", "{v}");
    let submit = s.key(&[Scope::Submit]);
    let r = s.call("GET", "/v1/scans", Some(&submit), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = s.call("GET", "/v1/scans", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
