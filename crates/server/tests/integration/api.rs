//! The HTTP API through the router (no socket): HMA response shapes (snapshots), the native
//! API, bad input, and the OpenAPI document's coverage.

use crate::common::*;
use axum::http::StatusCode;
use serde_json::json;

const SQUARE: &str = "photos/images/pdq/data/bridge-mods/square-512x512.jpg";
const SQUARE_PDQ: &str = "d8f8f0cec0f4a84f0637022a278f67f0b36e2ed596621e1d33e6339c4e9c9b22";

async fn bank_with_bridge(s: &TestServer) {
    let r = s
        .admin("POST", "/c/banks", Some(json!({"name": "TEST_BANK"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = s
        .admin(
            "POST",
            "/c/bank/TEST_BANK/signal",
            Some(json!({"pdq": BRIDGE_PDQ})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn status_routes_are_public_and_hma_shaped() {
    let s = server().await;
    let r = s.call("GET", "/status", None, None).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (StatusCode::OK, "I-AM-ALIVE")
    );
    let r = s.call("GET", "/status/live", None, None).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (StatusCode::OK, "I-AM-ALIVE")
    );
    assert!(r.headers.get("x-request-id").is_some());
}

#[tokio::test]
async fn hma_bank_routes_snapshot() {
    let s = server().await;
    let r = s.admin("GET", "/c/banks", None).await;
    assert_eq!(r.json(), json!([]));
    let r = s
        .admin("POST", "/c/banks", Some(json!({"name": "MY_BANK"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        r.json(),
        json!({"matching_enabled_ratio": 1.0, "name": "MY_BANK"})
    );
    // HMA answers a duplicate with 403.
    let r = s
        .admin("POST", "/c/banks", Some(json!({"name": "MY_BANK"})))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "bank_exists");
    assert!(r.json()["message"].is_string());
    let r = s
        .admin("POST", "/c/banks", Some(json!({"name": "lower"})))
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_bank_name")
    );
    let r = s.admin("POST", "/c/banks", Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = s
        .admin(
            "PUT",
            "/c/bank/MY_BANK",
            Some(json!({"name": "RENAMED", "enabled_ratio": 0.5})),
        )
        .await;
    assert_eq!(
        r.json(),
        json!({"matching_enabled_ratio": 0.5, "name": "RENAMED"})
    );
    let r = s.admin("GET", "/c/bank/RENAMED", None).await;
    assert_eq!(
        r.json(),
        json!({"matching_enabled_ratio": 0.5, "name": "RENAMED"})
    );
    let r = s.admin("GET", "/c/bank/MY_BANK", None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "bank_not_found")
    );
    let r = s.admin("GET", "/c/banks", None).await;
    assert_eq!(
        r.json(),
        json!([{"matching_enabled_ratio": 0.5, "name": "RENAMED"}])
    );
    let r = s.admin("DELETE", "/c/bank/RENAMED", None).await;
    assert_eq!(r.json(), json!({"message": "Done"}));
    // HMA: "Done" even when the bank does not exist.
    let r = s.admin("DELETE", "/c/bank/RENAMED", None).await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({"message": "Done"}))
    );
}

#[tokio::test]
async fn hma_content_and_lookup_snapshot() {
    let s = server().await;
    bank_with_bridge(&s).await;
    let r = s
        .admin(
            "GET",
            "/c/bank/TEST_BANK/content/1?include_signals=true",
            None,
        )
        .await;
    assert_eq!(
        r.json(),
        json!({
            "bank": {"matching_enabled_ratio": 1.0, "name": "TEST_BANK"},
            "disable_until_ts": 1,
            "id": 1,
            "original_media_uri": null,
            "signals": {"pdq": BRIDGE_PDQ}
        })
    );
    let r = s
        .admin(
            "GET",
            &format!("/m/lookup?signal_type=pdq&signal={BRIDGE_PDQ}"),
            None,
        )
        .await;
    assert_eq!(
        r.json(),
        json!({"TEST_BANK": [{"bank_content_id": 1, "distance": "0"}]})
    );
    // A near hash (3 bits off) matches at distance 3; a far one does not.
    let near = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b25";
    let r = s
        .admin(
            "GET",
            &format!("/m/lookup?signal_type=pdq&signal={near}"),
            None,
        )
        .await;
    assert_eq!(
        r.json(),
        json!({"TEST_BANK": [{"bank_content_id": 1, "distance": "3"}]})
    );
    let far = "07070f311f0b57b0f9c8f5ddfc709c0f4c91d12a699de1e2cc194c63b16364dd";
    let r = s
        .admin(
            "GET",
            &format!("/m/lookup?signal_type=pdq&signal={far}"),
            None,
        )
        .await;
    assert_eq!(r.json(), json!({}));
    let r = s
        .admin(
            "GET",
            &format!("/m/raw_lookup?signal_type=pdq&signal={near}&include_distance=true"),
            None,
        )
        .await;
    assert_eq!(
        r.json(),
        json!({"matches": [{"bank_content_id": 1, "distance": "3"}]})
    );
    let r = s
        .admin(
            "GET",
            &format!("/m/raw_lookup?signal_type=pdq&signal={near}"),
            None,
        )
        .await;
    assert_eq!(r.json(), json!({"matches": [1]}));
    let r = s
        .admin(
            "POST",
            "/m/compare",
            Some(json!({"pdq": [BRIDGE_PDQ, near]})),
        )
        .await;
    assert_eq!(r.json(), json!({"pdq": [true, {"distance": 3}]}));

    // Disabled content stops matching; raw lookup still sees it.
    let put = |ts: i64| {
        let s = &s;
        async move {
            s.admin(
                "PUT",
                "/c/bank/TEST_BANK/content/1",
                Some(json!({ "disable_until_ts": ts })),
            )
            .await
        }
    };
    let lookup = || {
        let s = &s;
        async move {
            s.admin(
                "GET",
                &format!("/m/lookup?signal_type=pdq&signal={BRIDGE_PDQ}"),
                None,
            )
            .await
            .json()
        }
    };
    let r = put(0).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["disable_until_ts"], json!(0));
    assert_eq!(lookup().await, json!({}));
    let r = s
        .admin(
            "GET",
            &format!("/m/raw_lookup?signal_type=pdq&signal={BRIDGE_PDQ}"),
            None,
        )
        .await;
    assert_eq!(r.json(), json!({"matches": [1]}));
    assert_eq!(put(1).await.json()["disable_until_ts"], json!(1));
    assert_eq!(
        lookup().await,
        json!({"TEST_BANK": [{"bank_content_id": 1, "distance": "0"}]})
    );

    // `disable_until_ts` is at most five years ahead, as in HMA (docs/api.md): four years
    // ahead disables the item until then; a day past five years, or a negative value, is
    // refused and leaves the item as it was.
    let now = safeguard_engine::now_ms() / 1000;
    let year = 365 * 24 * 3600;
    let r = put(now + 4 * year).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["disable_until_ts"], json!(now + 4 * year));
    assert_eq!(lookup().await, json!({}), "disabled for four years");
    for ts in [now + 5 * year + 24 * 3600, -1] {
        let r = put(ts).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{ts}: {}",
            r.text()
        );
    }
    let r = s.admin("GET", "/c/bank/TEST_BANK/content/1", None).await;
    assert_eq!(r.json()["disable_until_ts"], json!(now + 4 * year));
    assert_eq!(put(1).await.status, StatusCode::OK);
    assert_eq!(
        lookup().await,
        json!({"TEST_BANK": [{"bank_content_id": 1, "distance": "0"}]})
    );

    let r = s
        .admin("GET", "/m/index/status?signal_type=pdq", None)
        .await;
    assert_eq!(r.json()["pdq"]["size"], json!(1));
    assert_eq!(r.json()["pdq"]["present"], json!(true));
    let r = s.admin("DELETE", "/c/bank/TEST_BANK/content/1", None).await;
    assert_eq!(r.json(), json!({"deleted": 1}));
    let r = s.admin("DELETE", "/c/bank/TEST_BANK/content/1", None).await;
    assert_eq!(r.json(), json!({"deleted": 0}));
    assert_eq!(lookup().await, json!({}));
    // An id that is not an integer matches no route, as HMA's `<int:id>`: the JSON 404.
    for (method, id) in [
        ("GET", "abc"),
        ("PUT", "abc"),
        ("DELETE", "abc"),
        ("GET", "+1"),
    ] {
        let r = s
            .admin(
                method,
                &format!("/c/bank/TEST_BANK/content/{id}"),
                Some(json!({})),
            )
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{method}: {}",
            r.text()
        );
    }
}

#[tokio::test]
async fn uploads_hash_and_match() {
    let s = server().await;
    s.admin("POST", "/c/banks", Some(json!({"name": "UPLOADS"})))
        .await;
    let img = sample_image(SQUARE);
    let r = s.upload("/h/hash", "photo", &img, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["pdq"], json!(SQUARE_PDQ));
    let r = s
        .upload(
            "/c/bank/UPLOADS/content",
            "photo",
            &img,
            &[("metadata", r#"{"content_id":"abc"}"#)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    assert_eq!(r.json()["signals"]["pdq"], json!(SQUARE_PDQ));
    let r = s.upload("/m/lookup", "photo", &img, &[]).await;
    assert_eq!(
        r.json()["pdq"],
        json!({"UPLOADS": [{"bank_content_id": id, "distance": "0"}]})
    );
    assert_eq!(
        r.json()["sha256"],
        json!({"UPLOADS": [{"bank_content_id": id, "distance": "-"}]})
    );
    let r = s
        .admin("GET", &format!("/c/bank/UPLOADS/content/{id}"), None)
        .await;
    assert_eq!(
        r.json()["metadata"],
        json!({"collab": null, "content_id": "abc", "content_uri": null, "json": null})
    );
    // The native API sees the same content.
    let r = s.upload("/v1/lookup/upload", "file", &img, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["hashes"]["pdq"], json!(SQUARE_PDQ));
    assert!(v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["content_id"] == json!(id) && m["signal_type"] == json!("pdq")));
}

#[tokio::test]
async fn native_api_banks_contents_and_lookup() {
    let s = server().await;
    let r = s
        .admin(
            "POST",
            "/v1/banks",
            Some(json!({"name": "NCMEC_TEST", "pdq_threshold": 10})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["pdq_threshold"], json!(10));
    assert_eq!(r.json()["kind"], json!("standard"));
    let r = s
        .admin(
            "POST",
            "/v1/banks",
            Some(json!({"name": "BENIGN", "kind": "allow_list"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let near = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b25";
    let r = s
        .admin(
            "POST",
            "/v1/banks/NCMEC_TEST/contents",
            Some(json!({"signals": {"pdq": BRIDGE_PDQ, "md5": "d41d8cd98f00b204e9800998ecf8427e"}, "metadata": {"case": 7}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    assert_eq!(r.json()["metadata"], json!({"case": 7}));
    let r = s
        .admin(
            "POST",
            "/v1/lookup",
            Some(json!({"signal_type": "pdq", "signal": near})),
        )
        .await;
    assert_eq!(
        r.json(),
        json!({"matches": [{"bank": "NCMEC_TEST", "content_id": id, "signal_type": "pdq", "distance": 3, "allow_list": false}], "suppressed_by_allow_list": 0})
    );
    // The per-bank threshold is 10: 12 bits away does not match.
    let twelve = "0707f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    let r = s
        .admin(
            "POST",
            "/v1/lookup",
            Some(json!({"signal_type": "pdq", "signal": twelve})),
        )
        .await;
    assert_eq!(r.json()["matches"], json!([]));
    // An allow-list match suppresses the standard bank's match.
    let r = s
        .admin(
            "POST",
            "/v1/banks/BENIGN/contents",
            Some(json!({"signals": {"pdq": BRIDGE_PDQ}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = s
        .admin(
            "POST",
            "/v1/lookup",
            Some(json!({"signal_type": "pdq", "signal": BRIDGE_PDQ})),
        )
        .await;
    let v = r.json();
    assert_eq!(v["suppressed_by_allow_list"], json!(1));
    assert_eq!(v["matches"].as_array().unwrap().len(), 1);
    assert_eq!(v["matches"][0]["bank"], json!("BENIGN"));
    // Paging.
    for i in 0..5 {
        let h = format!("{:064x}", i + 1);
        s.admin(
            "POST",
            "/v1/banks/NCMEC_TEST/contents",
            Some(json!({"signals": {"sha256": h}})),
        )
        .await;
    }
    let r = s
        .admin("GET", "/v1/banks/NCMEC_TEST/contents?limit=4", None)
        .await;
    let page = r.json();
    assert_eq!(page["contents"].as_array().unwrap().len(), 4);
    let after = page["next_after"].as_i64().unwrap();
    let r = s
        .admin(
            "GET",
            &format!("/v1/banks/NCMEC_TEST/contents?limit=4&after={after}"),
            None,
        )
        .await;
    assert_eq!(r.json()["contents"].as_array().unwrap().len(), 2);
    assert_eq!(r.json()["next_after"], json!(null));
    let r = s
        .admin(
            "PATCH",
            &format!("/v1/banks/NCMEC_TEST/contents/{id}"),
            Some(json!({"note": "reviewed"})),
        )
        .await;
    assert_eq!(r.json()["note"], json!("reviewed"));
    let r = s
        .admin(
            "DELETE",
            &format!("/v1/banks/NCMEC_TEST/contents/{id}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = s
        .admin("GET", &format!("/v1/banks/NCMEC_TEST/contents/{id}"), None)
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "content_not_found")
    );
}

#[tokio::test]
async fn bad_input_gets_4xx_with_stable_codes_and_changes_nothing() {
    let s = server().await;
    bank_with_bridge(&s).await;
    let before = s.store.counts().unwrap();
    let cases: Vec<(&str, String, Option<serde_json::Value>, StatusCode, &str)> = vec![
        (
            "GET",
            "/m/lookup?signal_type=pdq&signal=zz".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_signal",
        ),
        (
            "GET",
            "/m/lookup?signal_type=nope&signal=aa".into(),
            None,
            StatusCode::BAD_REQUEST,
            "unknown_signal_type",
        ),
        (
            "GET",
            "/m/lookup".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "POST",
            "/c/bank/NO_SUCH_BANK/signal".into(),
            Some(json!({"pdq": BRIDGE_PDQ})),
            StatusCode::NOT_FOUND,
            "bank_not_found",
        ),
        (
            "POST",
            "/c/bank/TEST_BANK/signal".into(),
            Some(json!({"pdq": "abc"})),
            StatusCode::BAD_REQUEST,
            "invalid_signal",
        ),
        (
            "POST",
            "/c/bank/TEST_BANK/signal".into(),
            Some(json!({})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "POST",
            "/c/bank/TEST_BANK/signal".into(),
            Some(json!({"tmk_pdqf": "x"})),
            StatusCode::BAD_REQUEST,
            "unknown_signal_type",
        ),
        (
            "POST",
            "/v1/banks/TEST_BANK/contents".into(),
            Some(json!({"signals": {"md5": "xyz"}})),
            StatusCode::BAD_REQUEST,
            "invalid_signal",
        ),
        (
            "POST",
            "/v1/banks/TEST_BANK/contents".into(),
            Some(json!({"signals": {}})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/banks/TEST_BANK/contents".into(),
            Some(json!({"bogus": 1})),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        // HMA answers these with 500 or takes them; here they are 400 (docs/api.md).
        (
            "PUT",
            "/c/signal_type/nope".into(),
            Some(json!({"enabled_ratio": 0.5})),
            StatusCode::BAD_REQUEST,
            "unknown_signal_type",
        ),
        (
            "PUT",
            "/c/signal_type/pdq".into(),
            Some(json!({"enabled_ratio": 1.5})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "POST",
            "/c/banks".into(),
            Some(json!({"name": "HMA_RATIO", "enabled_ratio": 1.5})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "PUT",
            "/c/bank/TEST_BANK".into(),
            Some(json!({"enabled_ratio": -0.1})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/banks".into(),
            Some(json!({"name": "X", "enabled_ratio": 2.0})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/banks".into(),
            Some(json!({"name": "X", "pdq_threshold": 300})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/banks".into(),
            Some(json!({"name": "X", "kind": "weird"})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "PATCH",
            "/v1/banks/NOPE".into(),
            Some(json!({"enabled": false})),
            StatusCode::NOT_FOUND,
            "bank_not_found",
        ),
        (
            "POST",
            "/v1/lookup".into(),
            Some(json!({"signal_type": "sha256", "signal": "00"})),
            StatusCode::BAD_REQUEST,
            "invalid_signal",
        ),
        (
            "POST",
            "/v1/keys".into(),
            Some(json!({"name": "k", "scopes": ["root"]})),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "GET",
            "/c/bank/TEST_BANK/content/999".into(),
            None,
            StatusCode::NOT_FOUND,
            "content_not_found",
        ),
    ];
    for (method, uri, body, status, code) in cases {
        let r = s.admin(method, &uri, body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (status, code.to_string()),
            "{method} {uri} {body:?}: {}",
            r.text()
        );
    }
    // Malformed JSON and a wrong content type.
    let r = s
        .send(
            axum::http::Request::builder()
                .method("POST")
                .uri("/v1/banks")
                .header("authorization", format!("Bearer {ADMIN_KEY}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    let r = s
        .send(
            axum::http::Request::builder()
                .method("POST")
                .uri("/v1/banks")
                .header("authorization", format!("Bearer {ADMIN_KEY}"))
                .header("content-type", "text/plain")
                .body(axum::body::Body::from("name=X"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Corrupt and non-image uploads.
    let r = s
        .upload("/v1/hash", "file", b"\x89PNG\r\n\x1a\ngarbage", &[])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(
        ["corrupt_image", "truncated"].contains(&r.code().as_str()),
        "{}",
        r.text()
    );
    let r = s.upload("/v1/hash", "file", b"hello world", &[]).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_format")
    );
    let r = s
        .upload("/v1/banks/TEST_BANK/contents/upload", "file", b"", &[])
        .await;
    assert_eq!(r.code(), "empty_input");
    let r = s
        .upload("/c/bank/TEST_BANK/content", "photo", b"GIF89a\x01", &[])
        .await;
    assert!(r.status.is_client_error(), "{}", r.text());
    let r = s.upload("/h/hash", "document", b"x", &[]).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "unknown_content_type")
    );
    assert_eq!(
        s.store.counts().unwrap(),
        before,
        "bad input changed the store"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let mut config = safeguard_server::config::Config::default();
    config.limits.max_body_bytes = 64 * 1024;
    let s = server_with(config).await;
    s.admin("POST", "/c/banks", Some(json!({"name": "B"})))
        .await;
    let big = vec![0u8; 200 * 1024];
    let r = s.upload("/v1/hash", "file", &big, &[]).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let r = s.upload("/h/hash", "photo", &big, &[]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    let note = "x".repeat(100 * 1024);
    let r = s
        .admin(
            "POST",
            "/v1/banks/B/contents",
            Some(json!({"signals": {"pdq": BRIDGE_PDQ}, "note": note})),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert_eq!(s.store.counts().unwrap().contents, 0);
}

#[tokio::test]
async fn url_fetch_refuses_internal_addresses() {
    let s = server().await;
    for url in [
        "http://127.0.0.1:1/x.jpg",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://localhost/x",
        "http://10.0.0.1/x",
    ] {
        let r = s
            .admin("GET", &format!("/h/hash?url={}", urlencode(url)), None)
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::FORBIDDEN, "forbidden_url"),
            "{url}"
        );
    }
    let r = s.admin("GET", "/h/hash?url=file:///etc/passwd", None).await;
    assert_eq!(r.code(), "invalid_url");
    let r = s.admin("GET", "/h/hash", None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn seeded_coinflip_is_deterministic_like_hma() {
    let s = server().await;
    bank_with_bridge(&s).await;
    // Python: random.Random("abc").random() == 0.772...; a bank at ratio 0.7 loses, at 0.8 wins.
    s.admin(
        "PUT",
        "/c/bank/TEST_BANK",
        Some(json!({"enabled_ratio": 0.7})),
    )
    .await;
    let uri = format!("/m/lookup?signal_type=pdq&signal={BRIDGE_PDQ}&seed=abc");
    assert_eq!(s.admin("GET", &uri, None).await.json(), json!({}));
    s.admin(
        "PUT",
        "/c/bank/TEST_BANK",
        Some(json!({"enabled_ratio": 0.8})),
    )
    .await;
    assert_eq!(
        s.admin("GET", &uri, None).await.json(),
        json!({"TEST_BANK": [{"bank_content_id": 1, "distance": "0"}]})
    );
}

#[tokio::test]
async fn openapi_covers_every_route() {
    let s = server().await;
    let doc = s.admin("GET", "/openapi.json", None).await.json();
    let paths = doc["paths"].as_object().unwrap();
    // Every route the source registers is in the route table, and so in the document.
    let src_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut registered = Vec::new();
    // The source tree, route-group folders (`src/hma/`) included.
    let mut files = Vec::new();
    let mut dirs = vec![src_dir];
    while let Some(d) = dirs.pop() {
        for f in std::fs::read_dir(&d).unwrap() {
            let p = f.unwrap().path();
            // The review console's pages are a web UI for people, not API routes: they are
            // documented in docs/console.md and tested in tests/console*.rs.
            if p.is_dir() && p.file_name().is_some_and(|n| n == "console") {
                continue;
            }
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        // Unit tests may build routers of their own (a fake server in `fetch.rs`).
        let text = text.split("#[cfg(test)]").next().unwrap();
        for part in text.split(".route(").skip(1) {
            let Some(rest) = part.trim_start().strip_prefix('"') else {
                continue;
            };
            registered.push(rest.split('"').next().unwrap().to_string());
        }
    }
    assert!(registered.len() >= 25, "{registered:?}");
    for p in &registered {
        assert!(
            paths.contains_key(p),
            "route {p} missing from the OpenAPI document"
        );
    }
    for (method, path, _, _) in safeguard_server::ROUTES {
        assert!(
            paths[*path].get(method.to_ascii_lowercase()).is_some(),
            "{method} {path} missing"
        );
        // And the router really serves it (not the 404 fallback, not 405).
        let uri = path
            .replace("{name}", "TEST_BANK")
            .replace("{id}", "1")
            .replace("{key_id}", "0000000000000000")
            .replace("{object_id}", "ev_none");
        let r = s.admin(method, &uri, None).await;
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if r.status == StatusCode::NOT_FOUND {
            assert_ne!(r.code(), "not_found", "{method} {path} hit the fallback");
        }
    }
    // A known path with a method it does not have: 405 in the API's error shape, with the
    // methods it has in `Allow`.
    for (method, uri, allowed) in [
        ("DELETE", "/m/lookup", "GET"),
        ("PUT", "/v1/webhooks", "POST"),
        ("POST", "/status", "GET"),
    ] {
        let r = s.admin(method, uri, None).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            "{method} {uri}: {}",
            r.text()
        );
        let allow = r.headers.get("allow").unwrap().to_str().unwrap();
        assert!(allow.contains(allowed), "{method} {uri}: Allow {allow}");
    }
    // Authentication and scope still come first: a wrong method tells nothing to a caller
    // without a key, or with a key of another scope.
    let r = s.call("DELETE", "/m/lookup", None, None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNAUTHORIZED, "missing_api_key")
    );
    let matcher = s.key(&[safeguard_server::auth::Scope::Match]);
    let r = s.call("PUT", "/v1/webhooks", Some(&matcher), None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_fetching_and_remaining_hma_shapes() {
    // A local file server, allow-listed explicitly (internal addresses are refused otherwise).
    let img = sample_image(SQUARE);
    let served = img.clone();
    let files = axum::Router::new()
        .route(
            "/img.jpg",
            axum::routing::get(move || {
                let b = served.clone();
                async move { b }
            }),
        )
        .route(
            "/redirect",
            axum::routing::get(|| async {
                axum::response::Redirect::temporary("http://169.254.169.254/latest/meta-data")
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, files).await });
    let mut config = safeguard_server::config::Config::default();
    config.fetch.allow_internal_hosts = vec!["127.0.0.1".into()];
    let s = server_with(config).await;
    let url = format!("http://127.0.0.1:{}/img.jpg", addr.port());

    let r = s
        .admin("GET", &format!("/h/hash?url={url}&types=pdq"), None)
        .await;
    assert_eq!(r.json(), json!({"pdq": SQUARE_PDQ}), "{}", r.text());
    s.admin("POST", "/c/banks", Some(json!({"name": "FETCHED"})))
        .await;
    let r = s
        .admin("POST", &format!("/c/bank/FETCHED/content?url={url}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let r = s
        .admin("GET", &format!("/m/lookup?url={url}&types=pdq"), None)
        .await;
    assert_eq!(
        r.json(),
        json!({"pdq": {"FETCHED": [{"bank_content_id": id, "distance": "0"}]}})
    );
    let r = s
        .admin("GET", &format!("/m/lookup?url={url}&signal_type=pdq"), None)
        .await;
    assert_eq!(
        r.json(),
        json!({"FETCHED": [{"bank_content_id": id, "distance": "0"}]})
    );
    // A redirect to the metadata address is refused even though the first host is allowed.
    let r = s
        .admin(
            "GET",
            &format!("/h/hash?url=http://127.0.0.1:{}/redirect", addr.port()),
            None,
        )
        .await;
    assert!(
        r.status.is_client_error() || r.status == StatusCode::BAD_GATEWAY,
        "{}",
        r.text()
    );
    assert_ne!(r.status, StatusCode::OK);

    let r = s.admin("GET", "/c/signal_type", None).await;
    assert_eq!(
        r.json(),
        json!([
            {"enabled_ratio": 1.0, "name": "pdq"},
            {"enabled_ratio": 1.0, "name": "md5"},
            {"enabled_ratio": 1.0, "name": "sha1"},
            {"enabled_ratio": 1.0, "name": "sha256"},
            {"enabled_ratio": 1.0, "name": "vpdq"},
            {"enabled_ratio": 1.0, "name": "photodna"},
            {"enabled_ratio": 1.0, "name": "url"},
            {"enabled_ratio": 1.0, "name": "video_md5"}
        ])
    );
    let r = s
        .admin(
            "PUT",
            "/c/signal_type/pdq",
            Some(json!({"enabled_ratio": 0.5})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = s.admin("GET", "/c/content_type", None).await;
    assert_eq!(
        r.json(),
        json!([{"enabled": true, "name": "photo"}, {"enabled": true, "name": "video"}])
    );
    // A video upload is matched by the MD5 of its bytes, under HMA's name. Asking for
    // video_md5 alone needs no decoding, so any bytes do; a full video hash would refuse them
    // (`unsupported_video`, tested in integration/video.rs).
    let video = b"not really a video, but bytes all the same".to_vec();
    let r = s
        .upload("/h/hash?types=video_md5", "video", &video, &[])
        .await;
    let md5 = r.json()["video_md5"].as_str().unwrap().to_string();
    s.admin(
        "POST",
        "/c/bank/FETCHED/signal",
        Some(json!({"video_md5": md5})),
    )
    .await;
    let r = s
        .admin(
            "GET",
            &format!("/m/lookup?signal_type=video_md5&signal={md5}"),
            None,
        )
        .await;
    assert_eq!(r.json()["FETCHED"][0]["distance"], json!("-"));
    let r = s.admin("GET", "/m/index/status", None).await;
    let v = r.json();
    for t in ["pdq", "md5", "video_md5", "sha1", "sha256"] {
        assert_eq!(v[t]["present"], json!(true), "{t}");
        assert!(v[t]["built_to"].as_i64().unwrap() > 1_700_000_000);
    }
    // HMA's name for the MD5 index, as HMA's clients ask for it.
    let r = s
        .admin("GET", "/m/index/status?signal_type=video_md5", None)
        .await;
    let only = r.json();
    assert_eq!(only["video_md5"]["present"], json!(true), "{only}");
    assert_eq!(only.as_object().unwrap().len(), 1, "{only}");
    assert_eq!(v["pdq"]["size"], json!(1));
    assert_eq!(v["md5"]["size"], json!(2));
    let r = s.admin("GET", "/metrics", None).await;
    assert!(
        r.text().contains("safeguard_http_requests_total"),
        "{}",
        r.text()
    );
    assert!(r
        .text()
        .contains("safeguard_index_entries{signal_type=\"pdq\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_requests_time_out_and_the_concurrency_limit_queues() {
    // A local server that answers after 3 s.
    let slow = axum::Router::new().route(
        "/slow.jpg",
        axum::routing::get(|| async {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            "late"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, slow).await });
    let mut config = safeguard_server::config::Config::default();
    config.fetch.allow_internal_hosts = vec!["127.0.0.1".into()];
    config.limits.request_timeout_secs = 1;
    config.limits.max_concurrency = 1;
    let s = std::sync::Arc::new(server_with(config).await);
    let uri = format!("/h/hash?url=http://127.0.0.1:{}/slow.jpg", addr.port());

    let started = std::time::Instant::now();
    let first = {
        let s = s.clone();
        let uri = uri.clone();
        tokio::spawn(async move { s.admin("GET", &uri, None).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // The only slot is taken: this one waits for it (its wait counts against its own 1 s),
    // and is answered once the slow request has been cut off.
    let queued_at = std::time::Instant::now();
    let second = s.admin("GET", "/c/banks", None).await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(queued_at.elapsed() >= std::time::Duration::from_millis(600));
    let first = first.await.unwrap();
    assert_eq!(
        (first.status, first.code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "timeout")
    );
    assert!(started.elapsed() < std::time::Duration::from_millis(2500));
    // Once the slow request is gone, the server answers again.
    assert_eq!(
        s.admin("GET", "/c/banks", None).await.status,
        StatusCode::OK
    );
}

/// HMA's `PUT /c/bank/<name>` `{"enabled": false}` stops the bank matching on `/m/lookup`
/// (and `{"enabled": true}` restores it); `enabled_ratio` wins over `enabled` when both are
/// given. `/m/raw_lookup` ignores the bank's ratio, as HMA's does ("enable/disable status is
/// NOT checked").
#[tokio::test]
async fn hma_bank_enabled_false_stops_matching_and_true_restores_it() {
    let s = server().await;
    bank_with_bridge(&s).await;
    let lookup = format!("/m/lookup?signal_type=pdq&signal={BRIDGE_PDQ}");
    let raw = format!("/m/raw_lookup?signal_type=pdq&signal={BRIDGE_PDQ}");
    let matches = |r: &Resp| r.json()["TEST_BANK"].as_array().map_or(0, Vec::len);
    assert_eq!(matches(&s.admin("GET", &lookup, None).await), 1);

    let r = s
        .admin("PUT", "/c/bank/TEST_BANK", Some(json!({"enabled": false})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"matching_enabled_ratio": 0.0, "name": "TEST_BANK"})
    );
    // Every coin flip is over 0, so a disabled bank never matches (many seeds tried).
    for seed in 0..20 {
        let r = s.admin("GET", &format!("{lookup}&seed={seed}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json(), json!({}), "seed {seed}");
    }
    let r = s.admin("GET", &raw, None).await;
    assert_eq!(r.json()["matches"].as_array().unwrap().len(), 1);

    let r = s
        .admin("PUT", "/c/bank/TEST_BANK", Some(json!({"enabled": true})))
        .await;
    assert_eq!(r.json()["matching_enabled_ratio"], 1.0);
    assert_eq!(matches(&s.admin("GET", &lookup, None).await), 1);

    // Both given: the ratio wins (HMA applies `enabled` first, then `enabled_ratio`).
    let r = s
        .admin(
            "PUT",
            "/c/bank/TEST_BANK",
            Some(json!({"enabled": false, "enabled_ratio": 1.0})),
        )
        .await;
    assert_eq!(r.json()["matching_enabled_ratio"], 1.0);
    // pydantic's lax booleans: "false" and 0 disable too; anything else is a 422.
    for off in [json!("false"), json!(0)] {
        let r = s
            .admin("PUT", "/c/bank/TEST_BANK", Some(json!({ "enabled": off })))
            .await;
        assert_eq!(r.json()["matching_enabled_ratio"], 0.0, "{off}");
        s.admin("PUT", "/c/bank/TEST_BANK", Some(json!({"enabled": true})))
            .await;
    }
    let r = s
        .admin(
            "PUT",
            "/c/bank/TEST_BANK",
            Some(json!({"enabled": "maybe"})),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code().as_str()),
        (422, "invalid_parameter")
    );
    assert_eq!(matches(&s.admin("GET", &lookup, None).await), 1);

    // Creating a bank: `enabled` counts only beside an explicit `"enabled_ratio": null`, as
    // in HMA, where the default ratio of 1.0 wins over it.
    for (body, ratio) in [
        (json!({"name": "MADE_ON", "enabled": false}), 1.0),
        (
            json!({"name": "MADE_OFF", "enabled": false, "enabled_ratio": null}),
            0.0,
        ),
    ] {
        let r = s.admin("POST", "/c/banks", Some(body.clone())).await;
        assert_eq!(r.status, StatusCode::CREATED, "{body}: {}", r.text());
        assert_eq!(r.json()["matching_enabled_ratio"], ratio, "{body}");
    }
}

/// `GET /v1/signal_types` names each type with how it matches and its hex length
/// (docs/api.md).
#[tokio::test]
async fn signal_types_say_how_each_type_matches() {
    let s = server().await;
    let r = s.admin("GET", "/v1/signal_types", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    let by_name = |name: &str| {
        v["signal_types"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {v}"))
            .clone()
    };
    for (name, how, digits) in [
        ("pdq", "distance", json!(64)),
        ("md5", "exact", json!(32)),
        ("sha1", "exact", json!(40)),
        ("sha256", "exact", json!(64)),
        ("vpdq", "video", json!(64)),
        ("url", "url_expressions", serde_json::Value::Null),
    ] {
        let t = by_name(name);
        assert_eq!(
            (t["match"].clone(), t["hex_digits"].clone()),
            (json!(how), digits),
            "{t}"
        );
    }
    assert_eq!(by_name("photodna")["match"], "euclidean");
}

/// `POST /c/bank/<name>/content` answers exactly as HMA: `{"id", "signals": {"pdq"}}`; the
/// other digests are stored all the same and the native API shows them.
#[tokio::test]
async fn hma_content_add_answers_in_hma_shape_and_stores_every_digest() {
    let s = server().await;
    s.admin("POST", "/c/banks", Some(json!({"name": "SHAPE"})))
        .await;
    let img = sample_image(SQUARE);
    let r = s.upload("/c/bank/SHAPE/content", "photo", &img, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    assert_eq!(r.json(), json!({"id": id, "signals": {"pdq": SQUARE_PDQ}}));

    let digests = safeguard_media::digest::digests(&img);
    let r = s
        .admin("GET", &format!("/v1/banks/SHAPE/contents/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let signals = &r.json()["signals"];
    assert_eq!(signals["pdq"], SQUARE_PDQ);
    assert_eq!(signals["md5"], digests.md5_hex());
    assert_eq!(signals["sha1"], digests.sha1_hex());
    assert_eq!(signals["sha256"], digests.sha256_hex());
    // And they match: an exact-hash lookup finds the item.
    let r = s
        .admin(
            "GET",
            &format!("/m/lookup?signal_type=md5&signal={}", digests.md5_hex()),
            None,
        )
        .await;
    assert_eq!(r.json()["SHAPE"][0]["bank_content_id"], id);

    // A chosen `types` list answers every type it asked for.
    s.admin("POST", "/c/banks", Some(json!({"name": "SHAPE_TYPES"})))
        .await;
    let r = s
        .upload(
            "/c/bank/SHAPE_TYPES/content?types=pdq,md5",
            "photo",
            &img,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    assert_eq!(
        r.json(),
        json!({"id": id, "signals": {"pdq": SQUARE_PDQ, "md5": digests.md5_hex()}})
    );
}

/// HMA takes the MD5 of whatever bytes come in the `video` field; Safeguard does too on the
/// HMA routes, and adds vPDQ only when the bytes decode as a video.
#[tokio::test]
async fn hma_video_field_takes_the_md5_of_undecodable_bytes() {
    let s = server().await;
    s.admin("POST", "/c/banks", Some(json!({"name": "CLIPS"})))
        .await;
    let junk = b"benign junk bytes: plain text, not a video at all".to_vec();
    let md5 = safeguard_media::digest::digests(&junk).md5_hex();

    let r = s.upload("/h/hash", "video", &junk, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), json!({ "video_md5": md5 }));
    let r = s.upload("/c/bank/CLIPS/content", "video", &junk, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    assert_eq!(r.json(), json!({"id": id, "signals": {"video_md5": md5}}));
    let r = s.upload("/m/lookup", "video", &junk, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"video_md5": {"CLIPS": [{"bank_content_id": id, "distance": "-"}]}})
    );
    // Asked for vPDQ alone, there is nothing to give: the decode error stands.
    let r = s.upload("/h/hash?types=vpdq", "video", &junk, &[]).await;
    assert_eq!(
        (r.status.as_u16(), r.code().as_str()),
        (415, "unsupported_video"),
        "{}",
        r.text()
    );
    // The native API still refuses what it cannot decode.
    let r = s.upload("/v1/hash", "video", &junk, &[]).await;
    assert_eq!(r.status.as_u16(), 415, "{}", r.text());

    // A real (synthetic test pattern) video decodes: MD5 and vPDQ. The HMA add answers with
    // `video_md5` only; the vPDQ is stored and the native API shows it.
    let video = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/video/testsrc2-96x64-faststart.mp4"),
    )
    .unwrap();
    let video_md5 = safeguard_media::digest::digests(&video).md5_hex();
    let r = s.upload("/h/hash", "video", &video, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["video_md5"], video_md5);
    let vpdq = v["vpdq"].as_str().expect("vpdq of a decodable video");
    assert!(!safeguard_vpdq::format::parse_json(vpdq).unwrap().is_empty());
    let r = s
        .upload("/c/bank/CLIPS/content", "video", &video, &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    assert_eq!(
        r.json(),
        json!({"id": id, "signals": {"video_md5": video_md5}})
    );
    let r = s
        .admin("GET", &format!("/v1/banks/CLIPS/contents/{id}"), None)
        .await;
    assert_eq!(r.json()["signals"]["vpdq"], vpdq);
}

/// HMA serves its OpenAPI document at `/openapi/openapi.json`; so does Safeguard, under the
/// same rule as `/openapi.json` (any valid key).
#[tokio::test]
async fn openapi_is_also_served_at_hma_s_path() {
    let s = server().await;
    let a = s.admin("GET", "/openapi.json", None).await;
    let b = s.admin("GET", "/openapi/openapi.json", None).await;
    assert_eq!(b.status, StatusCode::OK);
    assert_eq!(a.json(), b.json());
    assert!(b.json()["paths"]["/openapi/openapi.json"]["get"].is_object());
    let r = s.call("GET", "/openapi/openapi.json", None, None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNAUTHORIZED, "missing_api_key")
    );
    let hash_only = s.key(&[safeguard_server::auth::Scope::Hash]);
    let r = s
        .call("GET", "/openapi/openapi.json", Some(&hash_only), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

/// A vPDQ hash of `count` frames in python-threatexchange's JSON form, all of one PDQ hash.
fn vpdq_of(count: usize) -> String {
    let frames: Vec<safeguard_engine::VpdqFrame> = (0..count)
        .map(|i| safeguard_engine::VpdqFrame {
            frame_number: i as u64,
            quality: 100,
            hash: safeguard_pdq::PdqHash::from_hex(BRIDGE_PDQ).unwrap(),
            timestamp: i as f64,
        })
        .collect();
    safeguard_vpdq::format::to_json(&frames)
}

/// `/m/compare` refuses vPDQ hashes over `MAX_COMPARE_FRAMES` frames with 413
/// `too_many_frames` (the comparison costs the product of the two frame counts), and still
/// compares up to the limit.
#[tokio::test]
async fn compare_caps_vpdq_frames() {
    let s = server().await;
    let max = 10_000;
    let small = vpdq_of(3);
    let r = s
        .admin("POST", "/m/compare", Some(json!({"vpdq": [small, small]})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["vpdq"][0], true);
    let at_limit = vpdq_of(max);
    let r = s
        .admin(
            "POST",
            "/m/compare",
            Some(json!({"vpdq": [small, at_limit]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let over = vpdq_of(max + 1);
    for pair in [json!([small, over]), json!([over, small])] {
        let r = s
            .admin("POST", "/m/compare", Some(json!({ "vpdq": pair })))
            .await;
        assert_eq!(
            (r.status.as_u16(), r.code().as_str()),
            (413, "too_many_frames"),
            "{}",
            r.text()
        );
        assert!(r.text().contains("10000"), "{}", r.text());
    }
    // PDQ comparisons are unaffected.
    let r = s
        .admin(
            "POST",
            "/m/compare",
            Some(json!({"pdq": [BRIDGE_PDQ, BRIDGE_PDQ]})),
        )
        .await;
    assert_eq!(r.json(), json!({"pdq": [true, {"distance": 0}]}));
}

/// Per-request vPDQ thresholds outside their valid range are refused with 400
/// `invalid_vpdq_threshold` on `/m/lookup` and `/m/raw_lookup` (a frame distance over the
/// index's exact radius would scan everything), and in-range ones are taken.
#[tokio::test]
async fn per_request_vpdq_thresholds_are_capped() {
    let s = server().await;
    let q = vpdq_of(2);
    let enc = urlencode(&q);
    for route in ["/m/lookup", "/m/raw_lookup"] {
        for bad in [
            "vpdq_frame_distance=65",
            "vpdq_frame_distance=4294967295",
            "vpdq_frame_distance=-1",
            "vpdq_frame_quality=101",
            "vpdq_query_match_percent=100.5",
            "vpdq_query_match_percent=NaN",
            "vpdq_compared_match_percent=-0.5",
            "vpdq_compared_match_percent=inf",
        ] {
            let r = s
                .admin(
                    "GET",
                    &format!("{route}?signal_type=vpdq&signal={enc}&{bad}"),
                    None,
                )
                .await;
            assert_eq!(
                (r.status.as_u16(), r.code().as_str()),
                (400, "invalid_vpdq_threshold"),
                "{route} {bad}: {}",
                r.text()
            );
        }
        let r = s
            .admin(
                "GET",
                &format!(
                    "{route}?signal_type=vpdq&signal={enc}&vpdq_frame_distance=64\
                     &vpdq_frame_quality=100&vpdq_query_match_percent=100\
                     &vpdq_compared_match_percent=0"
                ),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{route}: {}", r.text());
    }
}

/// `role`: a process serves only its role's routes; others answer 404 `not_served_by_role`
/// naming the role that serves them, after authentication; status and metrics are served by
/// every role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_serves_only_its_routes() {
    use safeguard_server::config::{Config, Role};
    for (role, served, refused) in [
        (
            Role::Matcher,
            vec![(
                "GET",
                "/m/lookup?signal_type=md5&signal=0123456789abcdef0123456789abcdef",
            )],
            vec![
                ("GET", "/v1/banks", "curator"),
                ("GET", "/h/hash?url=http://x/", "hasher"),
            ],
        ),
        (
            Role::Curator,
            vec![("GET", "/v1/banks")],
            vec![(
                "GET",
                "/m/lookup?signal_type=md5&signal=0123456789abcdef0123456789abcdef",
                "matcher",
            )],
        ),
        (
            Role::Hasher,
            vec![],
            vec![
                ("GET", "/v1/banks", "curator"),
                ("POST", "/v1/lookup", "matcher"),
            ],
        ),
    ] {
        let config = Config {
            role,
            ..Config::default()
        };
        let s = server_with(config).await;
        for (method, uri) in served {
            let r = s.admin(method, uri, None).await;
            assert_eq!(r.status, StatusCode::OK, "{role:?} {uri}: {}", r.text());
        }
        for (method, uri, serving) in refused {
            let r = s.admin(method, uri, None).await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{role:?} {uri}: {}",
                r.text()
            );
            assert_eq!(r.code(), "not_served_by_role", "{role:?} {uri}");
            assert!(r.text().contains(serving), "{role:?} {uri}: {}", r.text());
            // Authentication still comes first: no key, no hint about the deployment.
            let r = s.call(method, uri, None, None).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{role:?} {uri}");
        }
        let r = s.call("GET", "/status", None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{role:?}");
    }
    // From the environment, and a bad value is a clear error.
    let c = Config::load(None, |k| {
        (k == "SAFEGUARD_ROLE").then(|| "curator".to_string())
    })
    .unwrap();
    assert_eq!(c.role, Role::Curator);
    let e = Config::load(None, |k| {
        (k == "SAFEGUARD_ROLE").then(|| "boss".to_string())
    })
    .unwrap_err();
    assert!(e.to_string().contains("SAFEGUARD_ROLE"), "{e}");
}

/// Before its indexes are built the server is alive but not ready: `/status/live` 200,
/// `/status` 503 `INDEX-NOT-LOADED` (HMA's answer), a match 503 `index_not_ready`; once
/// built, `/status` is 200 `I-AM-ALIVE` and matching works (docs/operations.md, "Start-up").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_the_indexes_are_built_the_server_says_so() {
    let data = tempfile::tempdir().unwrap();
    let config = safeguard_server::config::Config {
        data_dir: data.path().to_path_buf(),
        ..safeguard_server::config::Config::default()
    };
    let store: std::sync::Arc<dyn safeguard_store::Store> =
        std::sync::Arc::new(safeguard_store::SqliteStore::open_in_memory().unwrap());
    let state = safeguard_server::AppState::new(store.clone(), config, Some(ADMIN_KEY)).unwrap();
    let s = TestServer {
        state: state.clone(),
        store,
        _data: None,
    };
    let r = s.admin("GET", "/status/live", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = s.admin("GET", "/status", None).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "INDEX-NOT-LOADED")
    );
    let lookup = format!("/m/raw_lookup?signal_type=pdq&signal={BRIDGE_PDQ}");
    let r = s.admin("GET", &lookup, None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "index_not_ready"),
        "{}",
        r.text()
    );
    safeguard_server::load_engine(state, None).await.unwrap();
    let r = s.admin("GET", "/status", None).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (StatusCode::OK, "I-AM-ALIVE")
    );
    let r = s.admin("GET", &lookup, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}
