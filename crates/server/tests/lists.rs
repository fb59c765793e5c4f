//! Hash-list import, export and provenance over HTTP, through the router.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use serde_json::json;

fn md5(i: u32) -> String {
    format!("{i:032x}")
}

async fn post_list(s: &TestServer, uri: &str, key: &str, body: String) -> Resp {
    // A streamed body in small chunks, as a client uploading a file sends it.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body
        .into_bytes()
        .chunks(7)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    s.send(req).await
}

async fn bank(s: &TestServer, name: &str) {
    let r = s
        .admin("POST", "/v1/banks", Some(json!({"name": name})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

async fn raw_matches(s: &TestServer, t: &str, v: &str) -> usize {
    let r = s
        .admin(
            "GET",
            &format!("/m/raw_lookup?signal_type={t}&signal={v}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["matches"].as_array().map(Vec::len).unwrap_or(0)
}

#[tokio::test]
async fn import_then_match_export_and_provenance() {
    let s = server().await;
    bank(&s, "LIST").await;
    let curate = s.key(&[safeguard_server::auth::Scope::Curate]);
    let list: String = (0..50).map(|i| format!("{}\n", md5(i))).collect();
    let r = post_list(
        &s,
        "/v1/banks/LIST/import?format=plain&source=file:daily.txt",
        &curate,
        format!("# test list\n{list}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let j = r.json();
    assert_eq!(
        (j["added"].as_u64(), j["records"].as_u64()),
        (Some(50), Some(50))
    );
    assert_eq!(raw_matches(&s, "md5", &md5(7)).await, 1);

    // Re-import: nothing added.
    let r = post_list(
        &s,
        "/v1/banks/LIST/import?format=plain&source=file:daily.txt",
        &curate,
        list.clone(),
    )
    .await;
    assert_eq!(r.json()["refreshed"].as_u64(), Some(50));

    let r = s
        .call(
            "GET",
            &format!("/v1/banks/LIST/provenance?signal_type=md5&value={}", md5(7)),
            Some(&curate),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let rec = &r.json()["records"][0];
    assert_eq!(rec["source"], "file:daily.txt");
    assert_eq!(rec["active"], true);

    let r = s
        .call(
            "GET",
            "/v1/banks/LIST/export?format=ncmec",
            Some(&curate),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/xml");
    let xml = r.text();
    assert_eq!(xml.matches("<image>").count(), 50);
    bank(&s, "COPY").await;
    let r = post_list(&s, "/v1/banks/COPY/import?format=ncmec", &curate, xml).await;
    assert_eq!(r.json()["added"].as_u64(), Some(50), "{}", r.text());

    let r = s
        .call(
            "GET",
            "/v1/banks/LIST/export?format=plain&only=md5",
            Some(&curate),
            None,
        )
        .await;
    let mut lines: Vec<String> = r.text().lines().map(str::to_string).collect();
    lines.sort();
    let mut want: Vec<String> = (0..50).map(md5).collect();
    want.sort();
    assert_eq!(lines, want);
}

#[tokio::test]
async fn bad_lists_name_the_line_and_import_nothing() {
    let s = server().await;
    bank(&s, "LIST").await;
    let body = format!("{}\n{}\nnot-a-hash\n{}\n", md5(1), md5(2), md5(3));
    let r = post_list(
        &s,
        "/v1/banks/LIST/import?format=plain&type=md5",
        ADMIN_KEY,
        body,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "invalid_request");
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.starts_with("line 3: invalid md5 value"), "{msg}");
    assert_eq!(raw_matches(&s, "md5", &md5(1)).await, 0);
    let r = s
        .admin("GET", "/v1/banks/LIST/export?format=plain", None)
        .await;
    assert_eq!(r.text(), "");

    let r = post_list(&s, "/v1/banks/LIST/import", ADMIN_KEY, md5(1)).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "missing_parameter")
    );
    let r = post_list(&s, "/v1/banks/LIST/import?format=xls", ADMIN_KEY, md5(1)).await;
    assert_eq!(r.code(), "invalid_parameter");
    let r = post_list(&s, "/v1/banks/NOPE/import?format=plain", ADMIN_KEY, md5(1)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = post_list(
        &s,
        "/v1/banks/LIST/import?format=plain&source=nonsense",
        ADMIN_KEY,
        md5(1),
    )
    .await;
    assert_eq!(r.code(), "invalid_request");
    let hash_only = s.key(&[safeguard_server::auth::Scope::Hash]);
    let r = post_list(&s, "/v1/banks/LIST/import?format=plain", &hash_only, md5(1)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn stopncii_page_with_withdrawal() {
    let s = server().await;
    bank(&s, "NCII").await;
    let pdq = BRIDGE_PDQ;
    let page = |status: &str| {
        format!(
            r#"{{"count": 1, "hashRecords": [{{"signalType": "ImagePDQ", "hashValue": "{pdq}",
               "hashStatus": "{status}", "lastModtimestamp": 1}}]}}"#
        )
    };
    let uri = "/v1/banks/NCII/import?format=stopncii&source=exchange:STOPNCII";
    let r = post_list(&s, uri, ADMIN_KEY, page("Active")).await;
    assert_eq!(r.json()["added"].as_u64(), Some(1), "{}", r.text());
    assert_eq!(raw_matches(&s, "pdq", pdq).await, 1);
    let r = post_list(&s, uri, ADMIN_KEY, page("Withdrawn")).await;
    assert_eq!(r.json()["removed"].as_u64(), Some(1), "{}", r.text());
    assert_eq!(raw_matches(&s, "pdq", pdq).await, 0);
    let r = s
        .admin(
            "GET",
            &format!("/v1/banks/NCII/provenance?signal_type=pdq&value={pdq}"),
            None,
        )
        .await;
    let rec = &r.json()["records"][0];
    assert_eq!(rec["active"], false, "{}", r.text());
    assert!(rec["withdrawn_at"].is_i64());
}
