//! Reading evidence back out of the vault: what a read of an altered or vanished blob
//! answers (only a fault that may pass is a 503), and that an NCA report's read of each
//! object is on that object's access log before it is decrypted, as NCMEC's is.

use axum::http::StatusCode;
use serde_json::json;

use crate::common::*;
use safeguard_nca::age::x25519::Identity;
use safeguard_server::config::Config;

const SQUARE: &str = "photos/images/pdq/data/bridge-mods/square-512x512.jpg";

/// A server over a fresh data directory, and one confirmed, approved case holding the sample
/// photo as evidence. Returns the case and the object id.
async fn case_with_evidence() -> (TestServer, tempfile::TempDir, i64, String) {
    let dir = tempfile::tempdir().unwrap();
    let s = server_with(Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    })
    .await;
    let img = sample_image(SQUARE);
    let r = s
        .admin(
            "POST",
            "/v1/banks",
            Some(json!({"name": "HOTLINE", "kind": "csam", "classification": "A1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let h = s.upload("/h/hash", "photo", &img, &[]).await.json();
    let r = s
        .admin(
            "POST",
            "/c/bank/HOTLINE/signal",
            Some(json!({"pdq": h["pdq"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let meta = r#"{"id":"v1","kind":"image","account":"uploader-1","account_age":"child","created_at":1764000000,"ip":"192.0.2.1"}"#;
    let r = s
        .upload("/v1/content", "media", &img, &[("json", meta)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let case = r.json()["case_id"].as_i64().unwrap();
    let ev = s.store.case_evidence(case).unwrap();
    assert_eq!(ev.len(), 1);
    (s, dir, case, ev[0].object_id.clone())
}

/// The one blob file under the data directory's vault folder.
fn blob_file(dir: &std::path::Path) -> std::path::PathBuf {
    fn walk(d: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&dir.join("vault"), &mut files);
    assert_eq!(files.len(), 1, "{files:?}");
    files.remove(0)
}

fn flip_last_byte(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    *bytes.last_mut().unwrap() ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

/// A blob altered on disk fails its authentication every time: 500 `vault_error`, not a 503
/// a client would retry forever. A blob gone while its record still has the key (retention
/// destroyed it after the record was read) is 410 `evidence_destroyed`, as destroyed
/// evidence is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_blob_is_500_and_a_vanished_one_410() {
    let (s, dir, _case, object) = case_with_evidence().await;
    let uri = format!("/v1/evidence/{object}");
    let r = s.admin("GET", &uri, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let blob = blob_file(dir.path());
    flip_last_byte(&blob);
    let r = s.admin("GET", &uri, None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "vault_error"),
        "{}",
        r.text()
    );

    std::fs::remove_file(&blob).unwrap();
    let r = s.admin("GET", &uri, None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::GONE, "evidence_destroyed"),
        "{}",
        r.text()
    );
}

/// An NCA bundle decrypts each object only after logging it on the object's access log
/// (`system:nca`, `export`), as a NCMEC report does; an altered object fails the bundle
/// with 500 `vault_error`, its read still logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nca_bundle_logs_each_objects_read() {
    let (s, dir, case, object) = case_with_evidence().await;
    s.confirm_case(case).await;
    s.approve_case(case).await;
    let r = s
        .admin(
            "POST",
            &format!("/v1/cases/{case}/referral"),
            Some(json!({"to": "nca", "reason": "UK-only service"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(s.store.access_log(&object).unwrap().is_empty());
    let body = json!({
        "recipient": Identity::generate().to_public().to_string(),
        "authorised_person": {"name": "Test Reporter", "email": "reporter@example.com"},
        "declared_by": "Test Reporter",
        "platform": "Example Platform",
    });
    let uri = format!("/v1/cases/{case}/reports/nca/bundle");
    let r = s.admin("POST", &uri, Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let log = s.store.access_log(&object).unwrap();
    let entries: Vec<(&str, &str)> = log
        .iter()
        .map(|(_, actor, action)| (actor.as_str(), action.as_str()))
        .collect();
    assert_eq!(entries, vec![("system:nca", "export")]);

    flip_last_byte(&blob_file(dir.path()));
    let r = s.admin("POST", &uri, Some(body)).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "vault_error"),
        "{}",
        r.text()
    );
    assert_eq!(s.store.access_log(&object).unwrap().len(), 2);
}
