//! Exchanges through the server: a Safeguard instance fills a bank from another, real,
//! Safeguard instance (its `/v1/banks/{name}/contents` API on a loopback socket), with status,
//! manual runs, feedback errors, and credentials that never show.

mod common;

use axum::http::StatusCode;
use common::*;
use safeguard_server::auth::Scope;
use safeguard_server::config::{Config, ExchangeConfig, ExchangeKind};
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
async fn hma_exchange_routes_show_configured_exchanges_and_refuse_edits() {
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
    let t0 = safeguard_exchange::now_secs();
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

    // Exchanges are configured in the file: HMA's write routes are refused, stably.
    for (method, path, body) in [
        (
            "POST",
            "/c/exchanges",
            Some(json!({"bank": "X", "api": "ncmec"})),
        ),
        ("PUT", "/c/exchange/PARTNER", Some(json!({"enabled": true}))),
        ("DELETE", "/c/exchange/PARTNER", None),
        (
            "POST",
            "/c/exchanges/api/ncmec",
            Some(json!({"credential_json": {"user": "u", "password": "p"}})),
        ),
    ] {
        let r = s.call(method, path, Some(&curate), body).await;
        assert_eq!(
            (r.status, r.code()),
            (
                StatusCode::NOT_IMPLEMENTED,
                "exchange_config_in_file".into()
            ),
            "{method} {path}"
        );
    }
    // Still there, still disabled.
    assert_eq!(get("/c/exchange/PARTNER").await.json()["enabled"], false);
    // And the routes need the curate scope.
    let r = s.call("GET", "/c/exchanges", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
