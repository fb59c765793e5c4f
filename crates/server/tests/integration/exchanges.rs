//! Exchanges through the server: a Safeguard instance fills a bank from another, real,
//! Safeguard instance (its `/v1/banks/{name}/contents` API on a loopback socket), with status,
//! manual runs, feedback errors, and credentials that never show.

use crate::common::*;
use axum::http::StatusCode;
use safeguard_exchange::{ExchangeConfig, ExchangeKind};
use safeguard_server::auth::Scope;
use safeguard_server::config::Config;
use serde_json::json;

const PDQ_A: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
const MD5_B: &str = "0123456789abcdef0123456789abcdef";

async fn peer() -> (TestServer, String, std::net::SocketAddr) {
    let p = server().await;
    let key = p.key(&[Scope::Curate]);
    assert_eq!(
        p.admin("POST", "/v1/banks", Some(json!({"name": "SHARED"})))
            .await
            .status,
        StatusCode::CREATED
    );
    for signals in [json!({"pdq": PDQ_A}), json!({"md5": MD5_B})] {
        let r = p
            .admin(
                "POST",
                "/v1/banks/SHARED/contents",
                Some(json!({ "signals": signals })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = safeguard_server::app(p.state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (p, key, addr)
}

fn exchange(addr: std::net::SocketAddr, key: &str) -> ExchangeConfig {
    let text = format!(
        "[[exchanges]]\nname = \"PARTNER\"\nkind = \"safeguard\"\nbase_url = \"http://{addr}\"\n\
         remote_bank = \"SHARED\"\nenabled = false\napi_key = \"{key}\"\n"
    );
    let c: Config = toml::from_str(&text).unwrap();
    c.exchanges[0].clone()
}

#[tokio::test]
async fn fills_a_bank_from_another_safeguard_and_reports_status() {
    let (peer, peer_key, addr) = peer().await;
    let config = Config {
        exchanges: vec![exchange(addr, &peer_key)],
        ..Config::default()
    };
    config.validate().unwrap();
    assert!(!format!("{config:?}").contains(&peer_key));
    let s = server_with(config).await;

    let r = s
        .admin("POST", "/v1/exchanges/PARTNER/run?wait=true", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let report = &r.json()["report"];
    assert_eq!(report["error"], serde_json::Value::Null, "{report}");
    assert_eq!(report["caught_up"], true);
    assert_eq!(report["outcome"]["added"], 2);

    // The bank exists (created for the exchange) and matches.
    let r = s
        .admin(
            "POST",
            "/v1/lookup",
            Some(json!({"signal_type": "md5", "signal": MD5_B, "banks": ["PARTNER"]})),
        )
        .await;
    assert_eq!(
        r.json()["matches"].as_array().unwrap().len(),
        1,
        "{}",
        r.text()
    );

    let curate = s.key(&[Scope::Curate]);
    let st = s
        .call("GET", "/v1/exchanges/PARTNER", Some(&curate), None)
        .await;
    assert_eq!(st.status, StatusCode::OK);
    let st = st.json();
    assert_eq!(st["kind"], "safeguard");
    assert_eq!(st["bank"], "PARTNER");
    assert_eq!(st["entries"], 2);
    assert!(st["last_success_at"].as_i64().unwrap() > 0);
    assert!(st["checkpoint"].as_str().unwrap().contains("passes"));
    let all = s.call("GET", "/v1/exchanges", Some(&curate), None).await;
    assert_eq!(all.json()["exchanges"].as_array().unwrap().len(), 1);

    // Deleted at the peer: gone here after the next run, and no longer matching.
    let listing = peer
        .admin("GET", "/v1/banks/SHARED/contents", None)
        .await
        .json();
    let md5_item = listing["contents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["signals"]["md5"] == MD5_B)
        .unwrap()["id"]
        .clone();
    let r = peer
        .admin(
            "DELETE",
            &format!("/v1/banks/SHARED/contents/{md5_item}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = s
        .admin("POST", "/v1/exchanges/PARTNER/run?wait=true", None)
        .await;
    assert_eq!(r.json()["report"]["outcome"]["removed"], 1, "{}", r.text());
    let r = s
        .admin(
            "POST",
            "/v1/lookup",
            Some(json!({"signal_type": "md5", "signal": MD5_B, "banks": ["PARTNER"]})),
        )
        .await;
    assert!(r.json()["matches"].as_array().unwrap().is_empty());

    // Both runs changed what the bank holds, so both are in the audit log, by the exchange
    // (written just after the run's answer); a run that only refreshes details writes nothing.
    let runs = |s: &TestServer| -> Vec<(String, String)> {
        s.store
            .audit_entries(0, 10_000)
            .unwrap()
            .into_iter()
            .filter(|r| r.entry.actor == "exchange:PARTNER" && r.entry.object == "bank:PARTNER")
            .map(|r| (r.entry.action, r.entry.detail))
            .collect()
    };
    let expected = vec![
        (
            "bank_import".to_string(),
            "exchange run: 2 added, 0 refreshed, 1 pages".to_string(),
        ),
        (
            "bank_withdrawal".to_string(),
            "exchange run: 1 removed".to_string(),
        ),
    ];
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = runs(&s);
        if seen.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(seen, expected);
    let r = s
        .admin("POST", "/v1/exchanges/PARTNER/run?wait=true", None)
        .await;
    let o = &r.json()["report"]["outcome"];
    assert_eq!(
        (
            o["added"].clone(),
            o["refreshed"].clone(),
            o["removed"].clone()
        ),
        (json!(0), json!(1), json!(0)),
        "a run that only refreshes: {}",
        r.text()
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        runs(&s),
        expected,
        "a run that adds and removes nothing writes nothing"
    );

    // Feedback is not a peer feature; unknown exchanges are 404.
    let r = s
        .call(
            "POST",
            "/v1/exchanges/PARTNER/feedback",
            Some(&curate),
            Some(json!({"hash_value": MD5_B, "feedback": "Blocked"})),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "unsupported_feature".into())
    );
    let r = s
        .call("GET", "/v1/exchanges/NOPE", Some(&curate), None)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "exchange_not_found".into())
    );
    drop(peer);
}

/// A run stopped midway by the server shutting down (its runtime dropped with the run's task
/// in it, as when `safeguard serve` exits) still puts what its applied pages changed in the
/// audit log: those pages are committed.
#[test]
fn a_run_stopped_by_shutdown_is_audited() {
    use axum::extract::Query;
    use std::collections::HashMap;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(async {
        // A peer that serves one page, then never answers the next.
        let app = axum::Router::new().route(
            "/v1/banks/SHARED/contents",
            axum::routing::get(|q: Query<HashMap<String, String>>| async move {
                if q.contains_key("after") {
                    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                }
                axum::Json(json!({
                    "contents": [{"id": 1, "signals": {"md5": MD5_B}, "disable_until_ts": 0}],
                    "next_after": 1,
                }))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let s = server_with(Config {
            exchanges: vec![exchange(addr, "peer-key-0123456789")],
            ..Config::default()
        })
        .await;
        let r = s.admin("POST", "/v1/exchanges/PARTNER/run", None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        // The first page is in the bank; the run now waits for the second.
        for i in 0.. {
            let r = s
                .admin(
                    "POST",
                    "/v1/lookup",
                    Some(json!({"signal_type": "md5", "signal": MD5_B, "banks": ["PARTNER"]})),
                )
                .await;
            if r.json()["matches"].as_array().is_some_and(|m| m.len() == 1) {
                break;
            }
            assert!(i < 500, "the first page was not applied");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        s
    });
    let runs = |s: &TestServer| -> Vec<(String, String)> {
        s.store
            .audit_entries(0, 10_000)
            .unwrap()
            .into_iter()
            .filter(|r| r.entry.actor == "exchange:PARTNER")
            .map(|r| (r.entry.action, r.entry.detail))
            .collect()
    };
    assert!(
        runs(&s).is_empty(),
        "nothing is audited while the run goes on"
    );
    // Shutdown: the runtime goes, and the run's task with it.
    drop(rt);
    assert_eq!(
        runs(&s),
        [(
            "bank_import".to_string(),
            "exchange run stopped: 1 added, 0 refreshed, 1 pages".to_string()
        )]
    );
}

#[tokio::test]
async fn a_wrong_key_is_reported_without_the_key() {
    let (_peer, _key, addr) = peer().await;
    let secret =
        "sg_00000000000000aa_00000000000000000000000000000000000000000000000000000000000000bb";
    let config = Config {
        exchanges: vec![exchange(addr, secret)],
        ..Config::default()
    };
    let s = server_with(config).await;
    let r = s
        .admin("POST", "/v1/exchanges/PARTNER/run?wait=true", None)
        .await;
    let text = r.text();
    assert!(text.contains("401"), "{text}");
    assert!(!text.contains(secret));
    let st = s.admin("GET", "/v1/exchanges/PARTNER", None).await;
    assert_eq!(
        st.json()["last_error"].as_str().map(|e| e.contains("401")),
        Some(true)
    );
    assert!(!st.text().contains(secret));
}

#[test]
fn credentials_come_from_the_environment_and_never_print() {
    let dir = tempfile_dir();
    let path = dir.join("c.toml");
    std::fs::write(
        &path,
        "[[exchanges]]\nname = \"NCMEC\"\nkind = \"ncmec\"\nbase_url = \"https://exttest.cybertip.org/hashsharing\"\nusername = \"esp\"\n",
    )
    .unwrap();
    let env =
        |k: &str| (k == "SAFEGUARD_EXCHANGE_NCMEC_PASSWORD").then(|| "env-pass-123456".to_string());
    let c = Config::load(Some(&path), env).unwrap();
    c.validate().unwrap();
    assert_eq!(c.exchanges[0].kind, ExchangeKind::Ncmec);
    assert_eq!(
        c.exchanges[0].password.as_ref().unwrap().expose(),
        "env-pass-123456"
    );
    assert!(!format!("{c:?}").contains("env-pass-123456"));
    // Without the password the configuration is refused before start-up.
    let c = Config::load(Some(&path), |_| None).unwrap();
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("NCMEC"), "{err}");
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sg-exchange-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A StopNCII stand-in whose FetchHashes is slow, to hold a run open.
async fn slow_stopncii() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
) {
    use axum::routing::{get, post};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let app = axum::Router::new()
        .route(
            "/v1/FetchHashes",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_millis(700)).await;
                axum::Json(
                    json!({"count": 0, "nextPageToken": null, "nextSetTimestamp": 11,
                    "hasMoreRecords": false, "hashRecords": []}),
                )
            }),
        )
        .route(
            "/v1/SubmitFeedback",
            post(move |h: axum::http::HeaderMap, body: String| {
                let s2 = s2.clone();
                async move {
                    let key = h
                        .get("x-functions-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    s2.lock().unwrap().push((key, body));
                    axum::Json(json!({}))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

#[tokio::test]
async fn one_run_at_a_time_and_feedback_through_the_api() {
    let (addr, seen) = slow_stopncii().await;
    let text = format!(
        "[[exchanges]]\nname = \"STOPNCII\"\nkind = \"stopncii\"\nbase_url = \"http://{addr}/v1\"\n\
         enabled = false\nsubscription_key = \"sub-key-1\"\nfetch_function_key = \"fetch-key-2\"\n\
         feedback_function_key = \"feedback-key-3\"\n"
    );
    let config: Config = toml::from_str(&text).unwrap();
    let s = server_with(config).await;
    let r = s.admin("POST", "/v1/exchanges/STOPNCII/run", None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let r = s.admin("POST", "/v1/exchanges/STOPNCII/run", None).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "exchange_busy".into())
    );
    assert_eq!(
        s.admin("GET", "/v1/exchanges/STOPNCII", None).await.json()["running"],
        true
    );
    // The first run finishes by itself; then a run may start again.
    let mut done = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let st = s.admin("GET", "/v1/exchanges/STOPNCII", None).await.json();
        if st["running"] == false {
            assert_eq!(st["last_run"]["caught_up"], true, "{st}");
            assert_eq!(
                st["checkpoint"],
                "{\"start\":11,\"token\":null,\"resume_from\":11}"
            );
            done = true;
            break;
        }
    }
    assert!(done, "the run never finished");

    let curate = s.key(&[Scope::Curate]);
    let pdq = "f".repeat(64);
    let r = s
        .call(
            "POST",
            "/v1/exchanges/STOPNCII/feedback",
            Some(&curate),
            Some(json!({"hash_value": pdq, "feedback": "NotBlocked", "tags": ["reviewed"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "feedback-key-3");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&got[0].1).unwrap(),
        json!({"count": 1, "hashFeedbacks": [{"hashValue": pdq, "feedbackValue": "NotBlocked", "tags": ["reviewed"]}]})
    );
    let r = s
        .call(
            "POST",
            "/v1/exchanges/STOPNCII/feedback",
            Some(&curate),
            Some(json!({"hash_value": pdq, "feedback": "Maybe"})),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    let all = s.admin("GET", "/v1/exchanges", None).await.text();
    for secret in ["sub-key-1", "fetch-key-2", "feedback-key-3"] {
        assert!(!all.contains(secret));
    }
}

#[tokio::test]
async fn hma_exchange_routes_show_configured_exchanges_read_only() {
    let (_peer, peer_key, addr) = peer().await;
    let config = Config {
        exchanges: vec![exchange(addr, &peer_key)],
        ..Config::default()
    };
    let s = server_with(config).await;
    let curate = s.key(&[Scope::Curate]);
    let get = |path: &'static str| {
        let (s, curate) = (&s, &curate);
        async move { s.call("GET", path, Some(curate), None).await }
    };

    // HMA's exchange API names, and whether their credentials are set.
    let r = get("/c/exchanges/apis").await;
    assert_eq!(r.json(), json!(["ncmec", "stop_ncii", "safeguard"]));
    let r = get("/c/exchanges/api/safeguard").await;
    assert_eq!(
        r.json(),
        json!({"supports_authentification": true, "has_set_authentification": true})
    );
    let r = get("/c/exchanges/api/ncmec").await;
    assert_eq!(r.json()["has_set_authentification"], false);
    let r = get("/c/exchanges/api/fb_threatexchange").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "unknown_exchange_api".into())
    );

    // The configured exchange, without its credentials.
    assert_eq!(get("/c/exchanges").await.json(), json!(["PARTNER"]));
    let r = get("/c/exchange/PARTNER").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.text().contains(&peer_key));
    let cfg = r.json();
    assert_eq!(
        (&cfg["name"], &cfg["api"], &cfg["enabled"], &cfg["bank"]),
        (
            &json!("PARTNER"),
            &json!("safeguard"),
            &json!(false),
            &json!("PARTNER")
        )
    );
    let r = get("/c/exchange/NOPE").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "exchange_not_found".into())
    );

    // HMA's fetch status, before and after a run.
    let before = get("/c/exchange/PARTNER/status").await.json();
    assert_eq!(
        before,
        json!({
            "checkpoint_ts": null,
            "running_fetch_start_ts": null,
            "last_fetch_complete_ts": null,
            "last_fetch_succeeded": null,
            "up_to_date": false,
            "fetched_items": 0,
        })
    );
    let t0 = safeguard_engine::now_secs();
    let r = s
        .admin("POST", "/v1/exchanges/PARTNER/run?wait=true", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let after = get("/c/exchange/PARTNER/status").await.json();
    assert_eq!(after["last_fetch_succeeded"], true, "{after}");
    assert_eq!(after["up_to_date"], true);
    assert_eq!(after["fetched_items"], 2);
    assert_eq!(after["running_fetch_start_ts"], serde_json::Value::Null);
    for field in ["checkpoint_ts", "last_fetch_complete_ts"] {
        let t = after[field].as_i64().unwrap();
        assert!(t >= t0 - 1 && t <= t0 + 60, "{field} {t} vs {t0}");
    }

    // An exchange of the configuration file is read-only here (409, stable code), and its
    // name cannot be taken by an API-created one; HMA's per-API credentials route is 501
    // (Safeguard keeps credentials per exchange).
    let clash = json!({"bank": "PARTNER", "api": "safeguard", "api_json": {
        "base_url": format!("http://{addr}"), "remote_bank": "SHARED", "api_key": "k"}});
    for (method, path, body, status) in [
        ("POST", "/c/exchanges", Some(clash), StatusCode::CONFLICT),
        (
            "PUT",
            "/c/exchange/PARTNER",
            Some(json!({"enabled": true})),
            StatusCode::CONFLICT,
        ),
        ("DELETE", "/c/exchange/PARTNER", None, StatusCode::CONFLICT),
        (
            "POST",
            "/c/exchanges/api/ncmec",
            Some(json!({"credential_json": {"user": "u", "password": "p"}})),
            StatusCode::NOT_IMPLEMENTED,
        ),
    ] {
        let r = s.call(method, path, Some(&curate), body).await;
        assert_eq!(
            (r.status, r.code()),
            (status, "exchange_config_in_file".into()),
            "{method} {path}"
        );
    }
    // Still there, still disabled.
    assert_eq!(get("/c/exchange/PARTNER").await.json()["enabled"], false);
    // And the routes need the curate scope.
    let r = s.call("GET", "/c/exchanges", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// A server over an SQLite file in `dir` (so the test can read the database's bytes), with
/// `dir` as its data directory and, when given, `key` as `SAFEGUARD_MASTER_KEY`.
async fn server_on_disk(dir: &std::path::Path, key: Option<&str>, config: Config) -> TestServer {
    let mut config = config;
    config.data_dir = dir.to_path_buf();
    config.secrets.master_key = key.map(safeguard_exchange::Secret::new);
    let store: std::sync::Arc<dyn safeguard_store::Store> = std::sync::Arc::new(
        safeguard_store::SqliteStore::open(&safeguard_store::SqliteOptions::new(
            dir.join("safeguard.db"),
        ))
        .unwrap(),
    );
    server_on(store, config).await
}

/// Every byte of the database files (main file, WAL, shared memory) under `dir`.
fn database_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for f in std::fs::read_dir(dir).unwrap() {
        let p = f.unwrap().path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("safeguard.db"))
        {
            all.extend(std::fs::read(&p).unwrap());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

const KEY_A: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const KEY_B: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";

/// HMA's create, show, configure and delete of an exchange, in HMA's request and response
/// shapes; the exchange is scheduled like a configured one and runs with its credentials,
/// which no response shows and the database holds only sealed.
#[tokio::test]
async fn api_created_exchange_round_trip_in_hma_shapes() {
    let (_peer, peer_key, addr) = peer().await;
    let dir = tempfile::tempdir().unwrap();
    let s = server_on_disk(dir.path(), Some(KEY_A), Config::default()).await;
    let curate = s.key(&[Scope::Curate]);
    // Every response body, to check that none shows the credential.
    let seen = std::cell::RefCell::new(String::new());
    let call = |method: &'static str, path: &'static str, body: Option<serde_json::Value>| {
        let (s, curate, seen) = (&s, &curate, &seen);
        async move {
            let r = s.call(method, path, Some(curate), body).await;
            seen.borrow_mut().push_str(&r.text());
            r
        }
    };

    // Created disabled, so that no scheduled run races the manual runs below.
    let create = json!({"bank": "PARTNER", "api": "safeguard", "api_json": {
        "base_url": format!("http://{addr}"),
        "remote_bank": "SHARED",
        "api_key": peer_key,
        "enabled": false,
    }});
    let r = call("POST", "/c/exchanges", Some(create.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json(), json!({"message": "Created successfully"}));
    assert_eq!(
        call("GET", "/c/exchanges", None).await.json(),
        json!(["PARTNER"])
    );
    let r = call("GET", "/c/exchange/PARTNER", None).await;
    assert_eq!(
        r.json(),
        json!({
            "name": "PARTNER", "api": "safeguard", "enabled": false, "bank": "PARTNER",
            "base_url": format!("http://{addr}"), "interval_secs": 3600, "source": "api",
        })
    );
    // Listed with the configured ones, and its bank exists.
    let st = call("GET", "/v1/exchanges/PARTNER", None).await.json();
    assert_eq!(
        (&st["scheduled"], &st["source"]),
        (&json!(false), &json!("api"))
    );
    assert_eq!(
        s.admin("GET", "/c/bank/PARTNER", None).await.status,
        StatusCode::OK
    );
    // Its credentials open: a run fetches the peer's bank.
    let r = s
        .admin("POST", "/v1/exchanges/PARTNER/run?wait=true", None)
        .await;
    seen.borrow_mut().push_str(&r.text());
    assert_eq!(
        r.json()["report"]["error"],
        serde_json::Value::Null,
        "{}",
        r.text()
    );
    assert_eq!(r.json()["report"]["outcome"]["added"], 2);

    // A second exchange of that name is refused.
    let r = call("POST", "/c/exchanges", Some(create)).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "exchange_exists".into())
    );

    // HMA's edit: enable (scheduled like a configured exchange), then disable (the scheduler
    // stops).
    let r = call("PUT", "/c/exchange/PARTNER", Some(json!({"enabled": true}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        (&r.json()["name"], &r.json()["enabled"]),
        (&json!("PARTNER"), &json!(true))
    );
    let st = call("GET", "/v1/exchanges/PARTNER", None).await.json();
    assert_eq!(
        (&st["enabled"], &st["scheduled"]),
        (&json!(true), &json!(true))
    );
    let r = call(
        "PUT",
        "/c/exchange/PARTNER",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(r.json()["enabled"], false);
    let st = call("GET", "/v1/exchanges/PARTNER", None).await.json();
    assert_eq!(
        (&st["enabled"], &st["scheduled"]),
        (&json!(false), &json!(false))
    );
    // The checkpoint survived the edits: the next run has nothing new. The run the schedule
    // started while the exchange was enabled may still be going; that one answers busy.
    let mut tries = 0;
    let r = loop {
        let r = s
            .admin("POST", "/v1/exchanges/PARTNER/run?wait=true", None)
            .await;
        tries += 1;
        if r.code() != "exchange_busy" || tries == 200 {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(r.json()["report"]["outcome"]["added"], 0, "{}", r.text());

    // The database holds the credential sealed, never in clear.
    let stored = s.store.stored_exchange("PARTNER").unwrap().unwrap();
    let sealed = stored.sealed_credentials.clone().unwrap();
    assert!(!contains(&sealed, &peer_key));
    assert!(!stored.settings.contains(&peer_key));
    assert!(!contains(&database_bytes(dir.path()), &peer_key));
    assert!(!format!("{stored:?}").contains(&peer_key));

    // Delete: gone from every listing, its bank stays; deleting again is HMA's same answer.
    let r = call("DELETE", "/c/exchange/PARTNER", None).await;
    assert_eq!(r.json(), json!({"message": "Exchange deleted"}));
    assert_eq!(call("GET", "/c/exchanges", None).await.json(), json!([]));
    let r = call("GET", "/c/exchange/PARTNER", None).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "exchange_not_found".into())
    );
    assert_eq!(s.store.stored_exchange("PARTNER").unwrap(), None);
    assert_eq!(
        s.admin("GET", "/c/bank/PARTNER", None).await.status,
        StatusCode::OK
    );
    let r = call("DELETE", "/c/exchange/PARTNER", None).await;
    assert_eq!(r.json(), json!({"message": "Exchange deleted"}));

    // No response showed the credential.
    assert!(
        !seen.borrow().contains(&peer_key),
        "a response showed the credential"
    );
}

/// API-created exchanges come back after a restart with the same master key; with another
/// key they are listed but every run fails with `master_key_mismatch`, saying what to check.
#[tokio::test]
async fn api_exchanges_survive_restart_and_a_wrong_master_key_is_a_clear_error() {
    let (_peer, peer_key, addr) = peer().await;
    let dir = tempfile::tempdir().unwrap();
    let create = json!({"bank": "PARTNER", "api": "safeguard", "api_json": {
        "base_url": format!("http://{addr}"), "remote_bank": "SHARED", "api_key": peer_key,
        "enabled": false,
    }});
    {
        // No SAFEGUARD_MASTER_KEY: the key file is created in the data directory, 0600.
        let s = server_on_disk(dir.path(), None, Config::default()).await;
        let r = s.admin("POST", "/c/exchanges", Some(create)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let key_file = dir.path().join(safeguard_seal::KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
    let file_key = std::fs::read_to_string(dir.path().join(safeguard_seal::KEY_FILE)).unwrap();

    // Same key (from the file, then the same one given in the environment): it runs.
    for key in [None, Some(file_key.trim())] {
        let s = server_on_disk(dir.path(), key, Config::default()).await;
        let r = s.admin("GET", "/c/exchange/PARTNER", None).await;
        assert_eq!(r.json()["enabled"], false, "{}", r.text());
        let r = s
            .admin("POST", "/v1/exchanges/PARTNER/run?wait=true", None)
            .await;
        assert_eq!(
            r.json()["report"]["error"],
            serde_json::Value::Null,
            "{}",
            r.text()
        );
    }

    // Another key: listed, never run, and the error names the cause.
    let s = server_on_disk(dir.path(), Some(KEY_B), Config::default()).await;
    assert_eq!(
        s.admin("GET", "/c/exchanges", None).await.json(),
        json!(["PARTNER"])
    );
    let r = s
        .admin("POST", "/v1/exchanges/PARTNER/run?wait=true", None)
        .await;
    let report = &r.json()["report"];
    assert_eq!(report["error_code"], "master_key_mismatch", "{report}");
    let msg = report["error"].as_str().unwrap();
    assert!(
        msg.contains("master key") && msg.contains("SAFEGUARD_MASTER_KEY"),
        "{msg}"
    );
    assert!(!r.text().contains(&peer_key));
    let st = s.admin("GET", "/v1/exchanges/PARTNER", None).await.json();
    assert!(
        st["last_error"].as_str().unwrap().contains("master key"),
        "{st}"
    );
    // A malformed key is refused when it is first needed, clearly.
    let dir2 = tempfile::tempdir().unwrap();
    let s = server_on_disk(dir2.path(), Some("not-a-key"), Config::default()).await;
    let r = s
        .admin(
            "POST",
            "/c/exchanges",
            Some(json!({"bank": "OTHER", "api": "safeguard", "api_json": {
                "base_url": "http://127.0.0.1:9", "remote_bank": "SHARED", "api_key": "k"}})),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "master_key_unavailable".into()
        )
    );
    assert!(r.text().contains("SAFEGUARD_MASTER_KEY"), "{}", r.text());
    assert_eq!(s.admin("GET", "/c/exchanges", None).await.json(), json!([]));
}

/// Bad create requests are refused with HMA's messages and stable codes, without echoing a
/// credential, and store nothing.
#[tokio::test]
async fn bad_exchange_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = server_on_disk(dir.path(), Some(KEY_A), Config::default()).await;
    let secret = "s3cr3t-never-echoed";
    for (body, status, code) in [
        (json!({"api": "safeguard"}), 400, "invalid_request"),
        (
            json!({"bank": "lower", "api": "safeguard"}),
            400,
            "invalid_bank_name",
        ),
        (json!({"bank": "X"}), 400, "invalid_request"),
        (
            json!({"bank": "X", "api": "fb_threatexchange"}),
            400,
            "unknown_exchange_api",
        ),
        (
            json!({"bank": "X", "api": "safeguard", "api_json": []}),
            400,
            "invalid_request",
        ),
        // No base URL; no credential; an unknown field; a credential that is not a string.
        (
            json!({"bank": "X", "api": "safeguard", "api_json": {"api_key": secret}}),
            400,
            "exchange_config",
        ),
        (
            json!({"bank": "X", "api": "ncmec", "api_json": {"base_url": "https://ncmec.invalid"}}),
            400,
            "exchange_config",
        ),
        (
            json!({"bank": "X", "api": "stop_ncii", "api_json": {"base_url": "https://s.invalid",
            "subscription_key": secret, "fetch_function_key": secret, "colour": "red"}}),
            400,
            "exchange_config",
        ),
        (
            json!({"bank": "X", "api": "safeguard", "api_json": {"base_url": "http://p.invalid",
            "api_key": [secret]}}),
            400,
            "exchange_config",
        ),
    ] {
        let r = s.admin("POST", "/c/exchanges", Some(body.clone())).await;
        assert_eq!(
            (r.status.as_u16(), r.code().as_str()),
            (status, code),
            "{body}: {}",
            r.text()
        );
        assert!(!r.text().contains(secret), "{body}: {}", r.text());
    }
    assert!(s.store.list_stored_exchanges().unwrap().is_empty());
    // Editing an unknown exchange is a 404; a non-boolean `enabled` a 422.
    let r = s
        .admin("PUT", "/c/exchange/NOPE", Some(json!({"enabled": false})))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code().as_str()),
        (404, "exchange_not_found")
    );
    let ok = json!({"bank": "X", "api": "stop_ncii", "api_json": {"base_url": "https://s.invalid",
        "subscription_key": secret, "fetch_function_key": secret, "enabled": false}});
    assert_eq!(
        s.admin("POST", "/c/exchanges", Some(ok)).await.status,
        StatusCode::CREATED
    );
    let r = s
        .admin(
            "PUT",
            "/c/exchange/X",
            Some(json!({"enabled": "yes please"})),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code().as_str()),
        (422, "invalid_parameter")
    );
    let r = s.admin("GET", "/c/exchange/X", None).await;
    assert_eq!(r.json()["api"], "stop_ncii");
    assert!(!r.text().contains(secret));
}

/// An exchange that carries URLs: the peer's bank holds `url` entries, and after a run they
/// match here through `/v1/urls/check` with their page/folder semantics.
#[tokio::test]
async fn an_exchange_carries_url_entries() {
    let p = server().await;
    let peer_key = p.key(&[Scope::Curate]);
    let r = p
        .admin("POST", "/v1/banks", Some(json!({"name": "SHARED"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    for entry in ["listed.example/folder/", "pages.example/one.html"] {
        let r = p
            .admin(
                "POST",
                "/v1/banks/SHARED/contents",
                Some(json!({"signals": {"url": entry}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = safeguard_server::app(p.state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let s = server_with(Config {
        exchanges: vec![exchange(addr, &peer_key)],
        ..Config::default()
    })
    .await;
    let r = s
        .admin("POST", "/v1/exchanges/PARTNER/run?wait=true", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["report"]["outcome"]["added"], 2, "{}", r.text());

    let submit = s.key(&[Scope::Submit]);
    let r = s
        .call(
            "POST",
            "/v1/urls/check",
            Some(&submit),
            Some(json!({"urls": [
                "http://LISTED.example/folder/deeper/page.html",
                "https://pages.example/one.html#frag",
                "https://pages.example/two.html",
            ]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let matched: Vec<bool> = r.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["matched"].as_bool().unwrap())
        .collect();
    assert_eq!(matched, [true, true, false]);
}
