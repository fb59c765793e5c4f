//! The authorization matrix: every route × no key / malformed key / wrong secret / revoked key
//! / each scope. Public routes answer anyone; every other route answers 401 without a valid
//! key, 403 with a key lacking its scope, and is served with the right scope or `admin`.

use std::time::Duration;

use crate::common::*;
use crate::shared_db::{shared_db, within};
use axum::http::StatusCode;
use safeguard_server::auth::{create_key, Scope, MAX_UNKNOWN_KEY_READS};
use safeguard_server::{Access, ROUTES};

fn concrete(path: &str) -> String {
    path.replace("{name}", "TEST_BANK")
        .replace("{id}", "1")
        .replace("{key_id}", "0000000000000000")
}

#[tokio::test]
async fn every_route_every_scope() {
    let s = server().await;
    let keys: Vec<(Scope, String)> = [Scope::Hash, Scope::Match, Scope::Curate, Scope::Admin]
        .into_iter()
        .map(|sc| (sc, s.key(&[sc])))
        .collect();
    let revoked = {
        let k =
            safeguard_server::auth::create_key(s.store.as_ref(), "old", &[Scope::Admin]).unwrap();
        s.store.revoke_api_key(&k.key_id).unwrap();
        k.key
    };
    let valid_hash = keys[0].1.clone();
    // Same key id, wrong secret.
    let wrong_secret = format!("{}{}", &valid_hash[..20], "0".repeat(valid_hash.len() - 20));
    let mut checked = 0;
    for (method, path, access, _) in ROUTES {
        let uri = concrete(path);
        match access {
            Access::Public => {
                let r = s.call(method, &uri, None, None).await;
                assert!(
                    r.status.is_success(),
                    "{method} {path} is public: {}",
                    r.status
                );
            }
            Access::Scope(need) => {
                for (label, key) in [
                    ("no key", None),
                    ("malformed key", Some("not-a-key")),
                    ("wrong secret", Some(wrong_secret.as_str())),
                    ("revoked key", Some(revoked.as_str())),
                ] {
                    let r = s.call(method, &uri, key, None).await;
                    assert_eq!(
                        r.status,
                        StatusCode::UNAUTHORIZED,
                        "{method} {path} with {label}"
                    );
                    let want = if key.is_none() {
                        "missing_api_key"
                    } else {
                        "invalid_api_key"
                    };
                    assert_eq!(r.code(), want, "{method} {path} with {label}");
                }
                for (scope, key) in &keys {
                    let r = s.call(method, &uri, Some(key), None).await;
                    let allowed = *need == Scope::Any || scope == need || *scope == Scope::Admin;
                    if allowed {
                        assert!(
                            r.status != StatusCode::UNAUTHORIZED
                                && r.status != StatusCode::FORBIDDEN,
                            "{method} {path} with scope {} was refused: {} {}",
                            scope.name(),
                            r.status,
                            r.text()
                        );
                    } else {
                        assert_eq!(
                            (r.status, r.code()),
                            (StatusCode::FORBIDDEN, "insufficient_scope".to_string()),
                            "{method} {path} with scope {}",
                            scope.name()
                        );
                    }
                    checked += 1;
                }
                // The bootstrap admin key works everywhere.
                let r = s.call(method, &uri, Some(ADMIN_KEY), None).await;
                assert!(r.status != StatusCode::UNAUTHORIZED && r.status != StatusCode::FORBIDDEN);
            }
        }
    }
    assert!(checked >= 4 * 40, "only {checked} checks");
}

#[tokio::test]
async fn keys_api_creates_lists_and_revokes() {
    let s = server().await;
    let r = s
        .admin(
            "POST",
            "/v1/keys",
            Some(serde_json::json!({"name": "uploader", "scopes": ["match", "hash"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let key = r.json()["key"].as_str().unwrap().to_string();
    let key_id = r.json()["key_id"].as_str().unwrap().to_string();
    let r = s.admin("GET", "/v1/keys", None).await;
    let listed = r.json();
    let entry = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == serde_json::json!(key_id))
        .unwrap()
        .clone();
    // Never the secret or its hash.
    assert!(!listed.to_string().contains(&key[20..]));
    assert!(entry.get("secret_sha256").is_none());
    let lookup = format!("/m/lookup?signal_type=pdq&signal={BRIDGE_PDQ}");
    assert_eq!(
        s.call("GET", &lookup, Some(&key), None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.call("GET", "/c/banks", Some(&key), None).await.status,
        StatusCode::FORBIDDEN
    );
    let r = s.admin("DELETE", &format!("/v1/keys/{key_id}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Revocation through the API takes effect at once.
    assert_eq!(
        s.call("GET", &lookup, Some(&key), None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn dev_mode_needs_no_key() {
    let config = safeguard_server::config::Config {
        dev: true,
        ..Default::default()
    };
    let s = server_with(config).await;
    let r = s.call("GET", "/c/banks", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// `safeguard keys revoke` writes the same database from another process; the server must
/// refuse the key within a second without being told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_by_another_process_stops_working_within_a_second() {
    let sh = shared_db("revoke").await;
    // Created by the other handle too, as `safeguard keys create` would.
    let k = create_key(sh.other.as_ref(), "cli", &[Scope::Match]).unwrap();
    let uri = format!("/m/lookup?signal_type=pdq&signal={BRIDGE_PDQ}");
    let (s, uri, key) = (&sh.server, uri.as_str(), k.key.as_str());
    // Used just before the revocation, so the server holds it in its cache.
    for _ in 0..3 {
        let r = s.call("GET", uri, Some(key), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    sh.other.revoke_api_key(&k.key_id).unwrap();
    let took = within(Duration::from_secs(1), move || async move {
        s.call("GET", uri, Some(key), None).await.status == StatusCode::UNAUTHORIZED
    })
    .await;
    println!("revocation by another process took effect after {took:?}");
    assert!(took.is_some(), "the revoked key still worked after 1 s");
    // And it stays refused.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let r = s.call("GET", uri, Some(key), None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_api_key")
    );
}

/// An invented key costs one store read, then none; a flood of distinct invented keys reads
/// the store at most `MAX_UNKNOWN_KEY_READS` at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogus_keys_are_cached_and_their_reads_bounded() {
    let s = server().await;
    let auth = &s.state.0.auth;
    let uri = format!("/m/lookup?signal_type=pdq&signal={BRIDGE_PDQ}");
    let before = auth.stats();
    let bogus = format!("sg_{}_{}", "1234567890abcdef", "cd".repeat(32));
    for _ in 0..50 {
        let r = s.call("GET", &uri, Some(&bogus), None).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_api_key")
        );
    }
    assert_eq!(auth.stats().store_reads - before.store_reads, 1);
    assert_eq!(auth.stats().unknown_cached, 1);

    let n = 300u64;
    let (s_ref, uri_ref) = (&s, uri.as_str());
    let statuses = futures_util::future::join_all((0..n).map(|i| async move {
        let key = format!("sg_{:016x}_{}", (i + 1) << 20, "ef".repeat(32));
        s_ref.call("GET", uri_ref, Some(&key), None).await.status
    }))
    .await;
    assert!(statuses.iter().all(|st| *st == StatusCode::UNAUTHORIZED));
    let after = auth.stats();
    println!("{after:?}");
    assert_eq!(after.store_reads - before.store_reads, 1 + n);
    assert_eq!(after.unknown_cached, 1 + n as usize);
    assert!(
        after.peak_concurrent_reads <= MAX_UNKNOWN_KEY_READS,
        "{} reads at once",
        after.peak_concurrent_reads
    );
    // A real key still works, and is not slowed by the remembered bogus ones.
    let k = s.key(&[Scope::Match]);
    assert_eq!(
        s.call("GET", &uri, Some(&k), None).await.status,
        StatusCode::OK
    );
}
