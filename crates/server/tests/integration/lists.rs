//! Hash-list import, export and provenance over HTTP, through the router; and imports cut off
//! mid-body over a real socket, which must leave the bank unchanged.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server whose data directory (where imports are spooled) is a fresh temporary one.
async fn list_server() -> (TestServer, tempfile::TempDir) {
    list_server_with(safeguard_server::config::Config::default()).await
}

async fn list_server_with(
    mut config: safeguard_server::config::Config,
) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    config.data_dir = dir.path().into();
    (server_with(config).await, dir)
}

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
    let (s, _dir) = list_server().await;
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
    let (s, _dir) = list_server().await;
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
    let (s, _dir) = list_server().await;
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

// ------------------------------------------------------------ cut-off uploads, real socket

fn head(uri: &str, chunked: bool, len: usize) -> String {
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {len}")
    };
    format!(
        "POST {uri} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_KEY}\r\n{framing}\r\n\
         Connection: close\r\n\r\n"
    )
}

fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// Sends the whole list over a raw socket and returns the response: the control that shows
/// the request a cut-off test sends is otherwise well-formed and would be imported.
async fn send_whole(addr: SocketAddr, uri: &str, chunked: bool, list: &[u8]) -> String {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(head(uri, chunked, list.len()).as_bytes())
        .await
        .unwrap();
    if chunked {
        sock.write_all(&chunk(list)).await.unwrap();
        sock.write_all(b"0\r\n\r\n").await.unwrap();
    } else {
        sock.write_all(list).await.unwrap();
    }
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), sock.read_to_string(&mut out))
        .await
        .expect("response in time")
        .unwrap();
    out
}

/// Sends the head and the first `part` bytes of the list (whole lines: a valid list on its
/// own), lets the server read them, then closes the socket; or, with `stall`, keeps the
/// socket open past the request timeout and returns the server's answer.
async fn send_cut_off(
    addr: SocketAddr,
    uri: &str,
    chunked: bool,
    list: &[u8],
    part: usize,
    stall: bool,
) -> String {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(head(uri, chunked, list.len()).as_bytes())
        .await
        .unwrap();
    if chunked {
        sock.write_all(&chunk(&list[..part])).await.unwrap();
    } else {
        sock.write_all(&list[..part]).await.unwrap();
    }
    sock.flush().await.unwrap();
    let mut out = String::new();
    if stall {
        // The request timeout (1 s) cuts the upload off on the server's side.
        tokio::time::timeout(Duration::from_secs(10), sock.read_to_string(&mut out))
            .await
            .expect("the server timed the request out")
            .unwrap();
    } else {
        // The server must have the partial body in hand when the connection goes.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(sock);
    out
}

async fn exported(s: &TestServer, bank: &str) -> Vec<String> {
    let r = s
        .admin(
            "GET",
            &format!("/v1/banks/{bank}/export?format=plain&only=md5"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mut lines: Vec<String> = r
        .text()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(',').next().unwrap_or(l).to_string())
        .collect();
    lines.sort();
    lines
}

/// A list upload cut off mid-body (the client goes, or the request timeout fires while the
/// body is still arriving), with `Content-Length` or chunked, with and without
/// `complete=true`, commits nothing: the seeded hashes stay, none of the partial list lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_imports_leave_the_bank_unchanged() {
    let mut config = safeguard_server::config::Config::default();
    config.limits.request_timeout_secs = 1;
    let (s, _dir) = list_server_with(config).await;
    bank(&s, "CUT").await;
    // Seeded from the same source as the cut uploads: a `complete=true` import of that source
    // withdraws every seeded hash its list lacks, so a partial one committed would show.
    let seed: String = (0..20).map(|i| format!("{}\n", md5(i))).collect();
    let r = post_list(
        &s,
        "/v1/banks/CUT/import?format=plain&type=md5&source=file:cut",
        ADMIN_KEY,
        seed,
    )
    .await;
    assert_eq!(r.json()["added"].as_u64(), Some(20), "{}", r.text());
    let before = exported(&s, "CUT").await;
    assert_eq!(before.len(), 20, "{before:?}");

    let (addr, _stop) = listen(&s).await;
    let list: String = (1000..1200).map(|i| format!("{}\n", md5(i))).collect();
    let list = list.into_bytes();
    // The first 100 lines: on their own, a valid list.
    let part = 100 * 33;
    for (complete, chunked, stall) in (0..8).map(|i| (i & 1 == 1, i & 2 == 2, i & 4 == 4)) {
        {
            let uri = format!(
                "/v1/banks/CUT/import?format=plain&type=md5&source=file:cut&complete={complete}"
            );
            let resp = send_cut_off(addr, &uri, chunked, &list, part, stall).await;
            if stall {
                assert!(resp.starts_with("HTTP/1.1 503"), "{resp}");
                assert!(resp.contains("\"timeout\""), "{resp}");
            }
            // Time for a wrongly committed import to land before the bank is checked.
            tokio::time::sleep(Duration::from_millis(700)).await;
            assert_eq!(
                exported(&s, "CUT").await,
                before,
                "a cut-off upload (complete={complete}, chunked={chunked}, stall={stall}) \
                 changed the bank"
            );
            assert_eq!(raw_matches(&s, "md5", &md5(1000)).await, 0);
            assert_eq!(raw_matches(&s, "md5", &md5(0)).await, 1);
        }
    }

    // The same requests, sent whole, do import: the cut is what made the difference.
    let uri = "/v1/banks/CUT/import?format=plain&type=md5&source=file:cut&complete=true";
    let resp = send_whole(addr, uri, true, &list).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"added\":200"), "{resp}");
    let resp = send_whole(addr, uri, false, &list).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"refreshed\":200"), "{resp}");
    // complete=true withdrew the seed, now that a whole list said so.
    assert_eq!(raw_matches(&s, "md5", &md5(0)).await, 0);
    assert_eq!(raw_matches(&s, "md5", &md5(1000)).await, 1);
}

/// A body that ends in an error reaching the handler (here: a stream that fails midway) is
/// 400 `incomplete_body`, and nothing is imported.
#[tokio::test]
async fn a_failed_body_is_incomplete_body() {
    let (s, _dir) = list_server().await;
    bank(&s, "ERR").await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(format!("{}\n{}\n", md5(1), md5(2)).into_bytes()),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset",
        )),
    ];
    let req = Request::builder()
        .method("POST")
        .uri("/v1/banks/ERR/import?format=plain&type=md5&complete=true")
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    let r = s.send(req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.code(), "incomplete_body");
    assert_eq!(raw_matches(&s, "md5", &md5(1)).await, 0);
}

/// A page of a bank's contents holds at most 1,000 items whatever `limit` asks (docs/api.md);
/// a limit of 0 gives one item; the two pages together list every item.
#[tokio::test]
async fn content_pages_are_clamped_to_1000_items() {
    let (s, _dir) = list_server().await;
    bank(&s, "PAGES").await;
    let body: String = (1..=1001).map(|i| md5(i) + "\n").collect();
    let r = post_list(
        &s,
        "/v1/banks/PAGES/import?format=plain&type=md5",
        ADMIN_KEY,
        body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let page = |q: String| {
        let s = &s;
        async move {
            let r = s
                .admin("GET", &format!("/v1/banks/PAGES/contents?{q}"), None)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text());
            r.json()
        }
    };
    let first = page("limit=5000".into()).await;
    assert_eq!(first["contents"].as_array().unwrap().len(), 1000);
    let after = first["next_after"].as_i64().expect("a next page");
    let rest = page(format!("limit=5000&after={after}")).await;
    assert_eq!(rest["contents"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next_after"], json!(null));
    let one = page("limit=0".into()).await;
    assert_eq!(one["contents"].as_array().unwrap().len(), 1);
}
