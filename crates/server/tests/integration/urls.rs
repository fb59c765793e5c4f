//! CSAM URL lists through the API: `url` bank entries added like any signal, `POST
//! /v1/urls/check` and `POST /v1/text/check` with Safe Browsing canonicalisation and IWF
//! semantics (page, folder, whole domain), disguised links in text, the policy acting on a
//! URL match when a submission is given, and bad input with stable codes. Every URL is under
//! reserved example domains.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::common::*;
use safeguard_server::auth::Scope;
use safeguard_server::config::Config;

async fn url_bank(s: &TestServer, name: &str, kind: &str, entries: &[&str]) {
    let r = s
        .admin(
            "POST",
            "/v1/banks",
            Some(json!({"name": name, "kind": kind})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    for e in entries {
        let r = s
            .admin(
                "POST",
                &format!("/v1/banks/{name}/contents"),
                Some(json!({"signals": {"url": e}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{e}: {}", r.text());
    }
}

async fn check(s: &TestServer, key: &str, urls: &[&str]) -> Resp {
    s.call(
        "POST",
        "/v1/urls/check",
        Some(key),
        Some(json!({"urls": urls})),
    )
    .await
}

fn matched(v: &Value) -> Vec<bool> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["matched"].as_bool().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_folders_and_whole_domains_match_as_listed() {
    let s = server().await;
    url_bank(
        &s,
        "URLS",
        "csam",
        &[
            "http://pages.example.com/gallery/item.html",
            "folders.example.org/shared/",
            "whole.example.net",
        ],
    )
    .await;
    let key = s.key(&[Scope::Submit]);
    let r = check(
        &s,
        &key,
        &[
            // The page itself, written differently.
            "HTTPS://Pages.Example.COM/gallery/./x/../item.html#top",
            // A sibling page, and the domain of a page entry: not listed.
            "http://pages.example.com/gallery/other.html",
            "http://pages.example.com/",
            // Under a listed folder.
            "http://folders.example.org/shared/deeper/photo.jpg",
            "http://folders.example.org/private/",
            // A listed whole domain, its subdomains, and a percent-encoded, dotted host.
            "http://whole.example.net/anything?x=1",
            "http://cdn.whole.example.net/a/b",
            "http://%77hole.example.net./x",
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let b = r.json();
    assert_eq!(
        matched(&b),
        [true, false, false, true, false, true, true, true]
    );
    assert_eq!(b["matched"], true);
    let first = &b["results"][0];
    assert_eq!(
        first["canonical"],
        "https://pages.example.com/gallery/item.html"
    );
    assert_eq!(first["matches"][0]["bank"], "URLS");
    assert_eq!(first["matches"][0]["signal_type"], "url");
    // Submissions of URLs need no media, and nothing was recorded without a submission.
    assert_eq!(s.store.counts().unwrap().contents, 3);

    // Removing the entry takes it out of matching at once.
    let list = s.admin("GET", "/v1/banks/URLS/contents", None).await.json();
    let whole = list["contents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["signals"]["url"] == "whole.example.net/")
        .unwrap_or_else(|| panic!("stored form: {list}"))["id"]
        .as_i64()
        .unwrap();
    let r = s
        .admin("DELETE", &format!("/v1/banks/URLS/contents/{whole}"), None)
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let b = check(&s, &key, &["http://cdn.whole.example.net/a/b"])
        .await
        .json();
    assert_eq!(matched(&b), [false]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disguised_links_in_text_are_found_and_checked() {
    let s = server().await;
    url_bank(&s, "URLS", "csam", &["listed.example.com/share/"]).await;
    let key = s.key(&[Scope::Submit]);
    for text in [
        "see hxxp://listed[.]example[.]com/share/abc now",
        "go to listed dot example dot com/share/abc",
        "listed . example . com/share/abc",
        "ｌｉｓｔｅｄ．ｅｘａｍｐｌｅ．ｃｏｍ/share/abc",
    ] {
        let r = s
            .call(
                "POST",
                "/v1/text/check",
                Some(&key),
                Some(json!({"text": text})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{text}: {}", r.text());
        let b = r.json();
        assert_eq!(b["matched"], true, "{text}: {b}");
        assert_eq!(
            b["urls"][0]["canonical"], "http://listed.example.com/share/abc",
            "{text}"
        );
    }
    let b = s
        .call(
            "POST",
            "/v1/text/check",
            Some(&key),
            Some(json!({"text": "nothing here, and other.example.org/share/abc is not listed"})),
        )
        .await
        .json();
    assert_eq!(b["matched"], false, "{b}");
    assert_eq!(b["urls"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_match_goes_through_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let s = server_with(Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    })
    .await;
    url_bank(&s, "HOTLINE_URLS", "csam", &["blocked.example.com/"]).await;
    let key = s.key(&[Scope::Submit]);
    let body = json!({
        "text": "hello hxxps://blocked[.]example[.]com/x and https://fine.example.org/",
        "submission": {"id": "msg-1", "account": "u1", "account_age": "adult",
                       "surface": "private"},
    });
    let r = s
        .call("POST", "/v1/text/check", Some(&key), Some(body.clone()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let b = r.json();
    let sub = &b["submission"];
    assert_eq!(sub["verdict"], "block", "{b}");
    assert_eq!(sub["rule"]["id"], "builtin.csam");
    assert_eq!(sub["matches"][0]["signal_type"], "url");
    assert_eq!(sub["matches"][0]["bank"], "HOTLINE_URLS");
    assert!(sub["case_id"].is_i64(), "{sub}");
    assert_eq!(b["replayed"], false);
    // The same message again is a replay of the recorded result, not a second record.
    let again = s
        .call("POST", "/v1/text/check", Some(&key), Some(body))
        .await
        .json();
    assert_eq!(again["replayed"], true);
    assert_eq!(again["submission"]["case_id"], sub["case_id"]);
    // A message with no listed link records nothing.
    let r = s
        .call(
            "POST",
            "/v1/text/check",
            Some(&key),
            Some(json!({"text": "https://fine.example.org/", "submission": {"id": "msg-2"}})),
        )
        .await
        .json();
    assert_eq!(r["matched"], false);
    assert!(r.get("submission").is_none(), "{r}");
    let got = s.call("GET", "/v1/content/msg-2", Some(&key), None).await;
    assert_eq!(got.status, StatusCode::NOT_FOUND, "{}", got.text());

    // A message with more listed links than a submission holds signals (10 > 8) is still
    // acted on, through its first 8 (docs/urls.md), never refused.
    let links: Vec<String> = (0..10)
        .map(|i| format!("https://blocked.example.com/p{i}"))
        .collect();
    let body = json!({"text": links.join(" "), "submission": {"id": "msg-many", "account": "u3"}});
    let r = s
        .call("POST", "/v1/text/check", Some(&key), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let b = r.json();
    let urls = b["urls"].as_array().unwrap();
    assert_eq!(urls.len(), 10);
    assert!(urls.iter().all(|u| u["matched"] == true), "{b}");
    let sub = &b["submission"];
    assert_eq!(sub["verdict"], "block", "{b}");
    assert!(sub["case_id"].is_i64(), "{sub}");
    assert_eq!(sub["matches"].as_array().unwrap().len(), 8, "{sub}");
    let got = s
        .call("GET", "/v1/content/msg-many", Some(&key), None)
        .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text());
    assert_eq!(got.json()["matches"].as_array().unwrap().len(), 8);

    // A bad submission is refused before the lookup, whether or not a link is listed.
    let long_ip = "1".repeat(65);
    for text in ["https://fine.example.org/", "https://blocked.example.com/q"] {
        for bad in [json!({"id": ""}), json!({"id": "msg-bad", "ip": long_ip})] {
            let r = s
                .call(
                    "POST",
                    "/v1/text/check",
                    Some(&key),
                    Some(json!({"text": text, "submission": bad})),
                )
                .await;
            assert_eq!(
                (r.status, r.code().as_str()),
                (StatusCode::BAD_REQUEST, "invalid_request"),
                "{text} {bad}: {}",
                r.text()
            );
        }
    }
    let got = s.call("GET", "/v1/content/msg-bad", Some(&key), None).await;
    assert_eq!(got.status, StatusCode::NOT_FOUND, "{}", got.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_stable_codes() {
    let s = server().await;
    let key = s.key(&[Scope::Submit]);
    // The body is capped at 4 MiB before it is parsed (docs/urls.md).
    let huge = format!("http://big.example.com/{}", "a".repeat(4 << 20));
    let r = check(&s, &key, &[&huge]).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        "{}",
        r.text()
    );
    let r = check(
        &s,
        &key,
        &["http://ok.example.com/", "mailto:x@example.com"],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "invalid_url");
    assert!(r.text().contains("urls[1]"), "{}", r.text());
    let r = check(&s, &key, &[]).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let many: Vec<String> = (0..1001)
        .map(|i| format!("http://h{i}.example.com/"))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let r = check(&s, &key, &many).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "too_many_urls")
    );
    let r = s
        .call(
            "POST",
            "/v1/text/check",
            Some(&key),
            Some(json!({"text": "a".repeat(64 * 1024 + 1)})),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "text_too_long")
    );
    let r = s
        .call(
            "POST",
            "/v1/text/check",
            Some(&key),
            Some(json!({"txt": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    // A bank entry that is not a URL is refused like any invalid signal.
    let r = s
        .admin("POST", "/v1/banks", Some(json!({"name": "U2"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = s
        .admin(
            "POST",
            "/v1/banks/U2/contents",
            Some(json!({"signals": {"url": "javascript:alert(1)"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.code(), "invalid_signal");
    // Checking needs the submit scope.
    let match_only = s.key(&[Scope::Match]);
    let r = check(&s, &match_only, &["http://ok.example.com/"]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
