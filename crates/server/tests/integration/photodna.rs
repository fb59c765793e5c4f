//! PhotoDNA through the service: a licensed-hasher plug-in adds a `photodna` signal to every
//! uploaded image; values from lists can be stored and looked up; a failing plug-in is a 502,
//! never a crash. The plug-in here is a stand-in that prints bytes derived from SHA-256 of its
//! input: it exercises the protocol and is NOT PhotoDNA.

use crate::common::*;
use axum::http::StatusCode;
use bytes::Bytes;
use safeguard_server::config::{Config, PhotoDnaConfig, PluginConfig};
use safeguard_server::photodna::{PhotoDnaHasher, PluginError, MAX_PLUGIN_OUTPUT};
use serde_json::json;

const SQUARE: &str = "photos/images/pdq/data/bridge-mods/square-512x512.jpg";

/// 288 hex digits: SHA-256 of the input, repeated and cut.
const STAND_IN: &str =
    r#"h=$(sha256sum | cut -c1-64); printf %s "$h$h$h$h$h" | cut -c1-288 | tr -d '\n'"#;

fn config(script: &str, threshold: f64) -> Config {
    Config {
        photodna: PhotoDnaConfig {
            threshold,
            hasher: Some(PluginConfig {
                command: Some(vec!["/bin/sh".into(), "-c".into(), script.into()]),
                url: None,
                timeout_ms: 10_000,
                max_concurrency: 2,
            }),
        },
        ..Config::default()
    }
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[tokio::test]
async fn plugin_hashes_uploads_and_they_match() {
    let s = server_with(config(STAND_IN, 0.0)).await;
    let img = sample_image(SQUARE);
    let h = sha256_hex(&img);
    let expected: String = h.repeat(5).chars().take(288).collect();

    // HMA's /h/hash gives the plug-in's value next to Safeguard's own hashes.
    let r = s.upload("/h/hash", "photo", &img, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["photodna"], json!(expected));
    assert!(r.json()["pdq"].is_string());
    // Asked for alone.
    let r = s.upload("/h/hash?types=photodna", "photo", &img, &[]).await;
    assert_eq!(r.json(), json!({"photodna": expected}));

    // Stored with the upload, and matched by a later upload and by value.
    s.admin("POST", "/c/banks", Some(json!({"name": "PDNA_BANK"})))
        .await;
    let r = s
        .upload("/c/bank/PDNA_BANK/content", "photo", &img, &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    assert_eq!(r.json()["signals"]["photodna"], json!(expected));
    let r = s.upload("/m/lookup", "photo", &img, &[]).await;
    assert_eq!(
        r.json()["photodna"],
        json!({"PDNA_BANK": [{"bank_content_id": id, "distance": "0"}]}),
        "{}",
        r.text()
    );
    let r = s
        .admin(
            "GET",
            &format!("/m/lookup?signal_type=photodna&signal={expected}"),
            None,
        )
        .await;
    assert_eq!(
        r.json(),
        json!({"PDNA_BANK": [{"bank_content_id": id, "distance": "0"}]})
    );
    // The native API too.
    let r = s.upload("/v1/hash", "file", &img, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["photodna"], json!(expected));
    let r = s.upload("/v1/lookup/upload", "file", &img, &[]).await;
    let matches = r.json()["matches"].as_array().unwrap().clone();
    assert!(
        matches
            .iter()
            .any(|m| m["signal_type"] == json!("photodna") && m["content_id"] == json!(id)),
        "{matches:?}"
    );
}

#[tokio::test]
async fn values_from_lists_match_within_the_configured_threshold() {
    let s = server_with(config(STAND_IN, 15.0)).await;
    s.admin("POST", "/c/banks", Some(json!({"name": "LIST"})))
        .await;
    let stored: Vec<String> = (0..144).map(|i| ((i * 7) % 200).to_string()).collect();
    // The comma form, as some lists carry it.
    let r = s
        .admin(
            "POST",
            "/c/bank/LIST/signal",
            Some(json!({"photodna": stored.join(",")})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    // Two bytes moved by 6 and 8: distance 10, within 15.
    let mut near: Vec<u8> = stored.iter().map(|x| x.parse().unwrap()).collect();
    near[0] += 6;
    near[1] += 8;
    let r = s
        .admin(
            "GET",
            &format!(
                "/m/lookup?signal_type=photodna&signal={}",
                hex::encode(&near)
            ),
            None,
        )
        .await;
    assert_eq!(
        r.json(),
        json!({"LIST": [{"bank_content_id": id, "distance": "10"}]})
    );
    // Malformed values are a 400 with a stable code, not a crash.
    let r = s
        .admin("GET", "/m/lookup?signal_type=photodna&signal=abc", None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
}

#[tokio::test]
async fn failing_plugin_is_a_502_and_not_configured_is_a_400() {
    let s = server_with(config("echo secret-detail >&2; exit 9", 0.0)).await;
    let img = sample_image(SQUARE);
    let r = s.upload("/h/hash", "photo", &img, &[]).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text());
    assert_eq!(r.code(), "photodna_hasher_failed");
    assert!(!r.text().contains("secret-detail"));
    // Bad images never reach the plug-in: Safeguard's decoder refuses them first.
    let r = s.upload("/h/hash", "photo", b"not an image", &[]).await;
    assert!(r.status.is_client_error(), "{}", r.text());

    let plain = server().await;
    let r = plain
        .upload("/h/hash?types=photodna", "photo", &img, &[])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = plain.upload("/h/hash", "photo", &img, &[]).await;
    assert!(r.json().get("photodna").is_none());
}

#[test]
fn config_is_validated() {
    let mut c = Config::default();
    c.photodna.threshold = -3.0;
    assert!(c.validate().is_err());
    let c: Config = toml::from_str(
        "[photodna]\nthreshold = 1000.0\n[photodna.hasher]\nurl = \"http://127.0.0.1:7000/hash\"\n",
    )
    .unwrap();
    assert!(c.validate().is_ok());
}

#[tokio::test]
async fn http_plugin_plain_and_json_answers() {
    use axum::routing::post;
    let value = "ab".repeat(144);
    let v2 = value.clone();
    let app = axum::Router::new()
        .route("/plain", post(move |_b: Bytes| async move { v2 }))
        .route(
            "/json",
            post(|b: Bytes| async move {
                axum::Json(serde_json::json!({"photodna": "cd".repeat(144), "len": b.len()}))
            }),
        )
        .route(
            "/error",
            post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        // An answer of exactly MAX_PLUGIN_OUTPUT bytes (a value padded with whitespace),
        // and one a byte longer.
        .route("/edge", post(|| async { padded(MAX_PLUGIN_OUTPUT) }))
        .route("/flood", post(|| async { padded(MAX_PLUGIN_OUTPUT + 1) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = |path: &str| {
        PhotoDnaHasher::new(&PluginConfig {
            command: None,
            url: Some(format!("http://{addr}{path}")),
            timeout_ms: 5_000,
            max_concurrency: 2,
        })
        .unwrap()
    };
    let got = http("/plain").hash(Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(got, [0xab; 144]);
    let got = http("/json").hash(Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(got, [0xcd; 144]);
    assert!(matches!(
        http("/error").hash(Bytes::from_static(b"x")).await,
        Err(PluginError::Failed(_))
    ));
    // At most 64 KiB of answer is read (docs/api.md, limits).
    let got = http("/edge").hash(Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(got, [0xef; 144]);
    match http("/flood").hash(Bytes::from_static(b"x")).await {
        Err(PluginError::BadOutput(m)) => assert!(m.contains("longer than 65536"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// `{"photodna": "efef..."}` padded with spaces to `len` bytes.
fn padded(len: usize) -> String {
    let mut s = serde_json::json!({"photodna": "ef".repeat(144)}).to_string();
    s.push_str(&" ".repeat(len - s.len()));
    s
}
