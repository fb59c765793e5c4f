//! Work limits that must hold under cancellation and load: the CPU permits (a cancelled
//! request's decode keeps its permit), the byte budget of buffered bodies, the request slots
//! and their bounded queue, form text fields
//! capped as they are read, and the metrics' `method` label.

use std::time::{Duration, Instant};

use crate::common::*;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use safeguard_server::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BOUNDARY: &str = "sglimitsboundary42";

fn video(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/video")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A multipart body with one file field.
fn multipart_file(field: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; \
         filename=\"upload.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn upload_head(uri: &str, len: usize) -> String {
    format!(
        "POST {uri} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len}\r\n\
         Connection: close\r\n\r\n"
    )
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Many video uploads, each cancelled by its client shortly after the body is sent: however
/// the cancellations fall, no more decodes run at once than there are CPU permits, because a
/// cancelled request's decode keeps its permit until it really ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_video_uploads_never_exceed_the_cpu_permits() {
    const PERMITS: usize = 2;
    let mut config = Config::default();
    config.limits.max_cpu_jobs = PERMITS;
    let s = server_with(config).await;
    assert_eq!(s.state.0.cpu_permits, PERMITS);
    let (addr, _stop) = listen(&s).await;
    let body = multipart_file("video", &video("testsrc2-96x64-faststart.mp4"));
    let head = upload_head("/v1/hash", body.len());
    let mut clients = Vec::new();
    for i in 0..48u64 {
        let (head, body) = (head.clone(), body.clone());
        clients.push(tokio::spawn(async move {
            let mut sock = TcpStream::connect(addr).await.unwrap();
            sock.write_all(head.as_bytes()).await.unwrap();
            sock.write_all(&body).await.unwrap();
            sock.flush().await.unwrap();
            // Cancel at spread-out moments: before, during and after the decode starts.
            tokio::time::sleep(Duration::from_millis(i % 8 * 3)).await;
            drop(sock);
        }));
        if i % 8 == 7 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for c in clients {
        c.await.unwrap();
    }
    let jobs = &s.state.0.cpu_jobs;
    wait_until("every decode ended", Duration::from_secs(60), || {
        jobs.running() == 0 && s.state.0.cpu.available_permits() == PERMITS
    })
    .await;
    let peak = jobs.peak();
    println!("peak CPU jobs: {peak} (permits {PERMITS})");
    assert!(peak >= 1, "no decode ever started: the test proved nothing");
    assert!(
        peak <= PERMITS,
        "{peak} decodes ran at once with {PERMITS} permits"
    );
    // A request after the flood still gets decoded (no permit leaked).
    let r = s
        .upload(
            "/v1/hash",
            "video",
            &video("testsrc2-96x64-faststart.mp4"),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let metrics = s.admin("GET", "/metrics", None).await.text();
    assert!(metrics.contains("safeguard_cpu_jobs 0"), "{metrics}");
}

/// Buffered request bodies share one byte budget: while one upload holds most of it, another
/// is answered 503 `overloaded` with `Retry-After`; once the first is gone, the budget is whole
/// again and the same request goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_byte_budget_of_buffered_bodies_holds() {
    const MIB: usize = 1024 * 1024;
    let mut config = Config::default();
    config.limits.max_body_bytes = MIB;
    config.video.max_bytes = MIB;
    config.limits.max_buffered_bytes = 3 * MIB / 2;
    config.validate().unwrap();
    let s = server_with(config).await;
    let (addr, _stop) = listen(&s).await;
    let budget = &s.state.0.buffered;
    assert_eq!(budget.available_permits(), 3 * MIB / 2);

    // A slow upload: 900 KiB of a 1 MiB body, then it waits.
    let held = 900 * 1024;
    let big = multipart_file("file", &vec![7u8; MIB - 1024]);
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(upload_head("/v1/hash", big.len()).as_bytes())
        .await
        .unwrap();
    slow.write_all(&big[..held]).await.unwrap();
    slow.flush().await.unwrap();
    wait_until(
        "the slow upload is charged",
        Duration::from_secs(10),
        || budget.available_permits() <= 3 * MIB / 2 - held,
    )
    .await;

    // 800 KiB more do not fit.
    let other = vec![9u8; 800 * 1024];
    let r = s.upload("/v1/hash", "file", &other, &[]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.code(), "overloaded");
    assert_eq!(
        r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let metrics = s.admin("GET", "/metrics", None).await.text();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("safeguard_buffered_bytes "))
        .unwrap_or_else(|| panic!("no buffered bytes gauge: {metrics}"));
    let gauge: usize = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(gauge >= held, "{line}");

    // The slow client goes away: its bytes are released, and the budget is whole again.
    drop(slow);
    wait_until("the budget is whole again", Duration::from_secs(10), || {
        budget.available_permits() == 3 * MIB / 2
    })
    .await;
    let r = s.upload("/v1/hash", "file", &other, &[]).await;
    assert_ne!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.code(), "unsupported_format", "{}", r.text());
    assert_eq!(budget.available_permits(), 3 * MIB / 2);
}

/// With every request slot taken, a request waits `limits.max_queue_ms` for one and is then
/// answered 503 `overloaded` with `Retry-After: 1`, well before its timeout; a slot freed
/// within the wait is taken; with a wait of 0 the answer is immediate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_answers_overloaded_after_the_queue_wait() {
    let mut config = Config::default();
    config.limits.max_concurrency = 2;
    config.limits.max_queue_ms = 300;
    config.limits.request_timeout_secs = 10;
    let s = server_with(config).await;
    let _held = s.state.0.requests.acquire_many(2).await.unwrap();

    let started = Instant::now();
    let r = s.admin("GET", "/c/banks", None).await;
    let waited = started.elapsed();
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.code(), "overloaded");
    assert_eq!(
        r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // The liveness probe takes no slot: a full server is alive. Readiness says overloaded.
    let live = s.call("GET", "/status/live", None, None).await;
    assert_eq!(live.status, StatusCode::OK, "{}", live.text());
    let ready = s.call("GET", "/status", None, None).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text()
    );

    // A slot freed while it waits is taken (a longer wait here, so that a slow machine
    // cannot turn the 100 ms before the release into a timeout of the wait).
    let mut config = Config::default();
    config.limits.max_concurrency = 2;
    config.limits.max_queue_ms = 3_000;
    config.limits.request_timeout_secs = 10;
    let s = std::sync::Arc::new(server_with(config).await);
    let held = s.state.0.requests.acquire_many(2).await.unwrap();
    let waiting = {
        let s = s.clone();
        tokio::spawn(async move { s.admin("GET", "/c/banks", None).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(held);
    assert_eq!(waiting.await.unwrap().status, StatusCode::OK);

    // No waiting at all.
    let mut config = Config::default();
    config.limits.max_concurrency = 1;
    config.limits.max_queue_ms = 0;
    let s = server_with(config).await;
    let _held = s.state.0.requests.acquire().await.unwrap();
    let started = Instant::now();
    let r = s.admin("GET", "/c/banks", None).await;
    assert_eq!(r.code(), "overloaded", "{}", r.text());
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// A text field over the cap is refused as soon as the cap is passed, before the rest of the
/// field arrives: the server answers while the client is still sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_fields_are_capped_while_they_are_read() {
    let s = server().await;
    let (addr, _stop) = listen(&s).await;
    let cap = 512 * 1024;
    let mut body = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n")
        .into_bytes();
    let start = body.len();
    body.resize(start + 8 * cap, b'a');
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(upload_head("/v1/hash", body.len()).as_bytes())
        .await
        .unwrap();
    // Just over the cap, then nothing more: a server that buffered the whole field first
    // would wait for the rest and never answer.
    sock.write_all(&body[..start + cap + 64 * 1024])
        .await
        .unwrap();
    sock.flush().await.unwrap();
    let mut head = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut head))
        .await
        .expect("the server answered before the field ended")
        .unwrap();
    let resp = String::from_utf8_lossy(&head[..n]);
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
}

/// Route labels are the routes' templates, so two banks' paths are one series; a path no
/// route takes is `unmatched` (and answers a JSON 404 `not_found`); a match counts in
/// `safeguard_matches_total` under its bank (docs/operations.md).
#[tokio::test]
async fn metrics_label_routes_by_template_and_count_matches_by_bank() {
    let s = server().await;
    for name in ["LABEL_A", "LABEL_B"] {
        let r = s
            .admin("POST", "/c/banks", Some(serde_json::json!({"name": name})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let r = s.admin("GET", &format!("/c/bank/{name}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let r = s
        .admin(
            "POST",
            "/c/bank/LABEL_A/signal",
            Some(serde_json::json!({"pdq": BRIDGE_PDQ})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = s
        .admin(
            "GET",
            &format!("/m/lookup?signal_type=pdq&signal={BRIDGE_PDQ}"),
            None,
        )
        .await;
    assert_eq!(
        r.json()["LABEL_A"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text()
    );
    let r = s.admin("GET", "/no/such/route/x17", None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "not_found"),
        "{}",
        r.text()
    );
    assert_eq!(r.headers["content-type"], "application/json");

    let metrics = s.admin("GET", "/metrics", None).await.text();
    let requests = |route: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("safeguard_http_requests_total{")
                    && l.contains(&format!("route=\"{route}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(requests("/c/bank/{name}"), 2, "{metrics}");
    assert_eq!(requests("unmatched"), 1, "{metrics}");
    for raw in ["LABEL_A\"", "LABEL_B\"", "x17"] {
        assert!(
            !metrics
                .lines()
                .any(|l| l.starts_with("safeguard_http_") && l.contains(raw)),
            "{raw}: {metrics}"
        );
    }
    assert!(
        metrics
            .lines()
            .any(|l| l == "safeguard_matches_total{bank=\"LABEL_A\"} 1"),
        "{metrics}"
    );
}

/// `/status` is plain text (HMA's is HTML).
#[tokio::test]
async fn status_answers_plain_text() {
    let s = server().await;
    let r = s.call("GET", "/status", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "{:?}",
        r.headers
    );
}

/// The `method` label takes the standard methods and `OTHER`: a client's invented method
/// does not create a series.
#[tokio::test]
async fn unknown_methods_are_labelled_other() {
    let s = server().await;
    let req = Request::builder()
        .method(Method::from_bytes(b"FOOBAR").unwrap())
        .uri("/status")
        .body(Body::empty())
        .unwrap();
    s.send(req).await;
    let metrics = s.admin("GET", "/metrics", None).await.text();
    assert!(!metrics.contains("FOOBAR"), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("safeguard_http_requests_total{")
                && l.contains("method=\"OTHER\"")
                && l.contains("route=\"/status\"")),
        "{metrics}"
    );
}
