//! Over a real socket: the server binds, answers, and shuts down gracefully with a request
//! in flight: a write whose body is still arriving when the shutdown signal comes is read to
//! its end, answered and committed, while new connections are already refused.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::*;

fn http(addr: std::net::SocketAddr, req: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_over_tcp_and_shuts_down_gracefully() {
    let s = server().await;
    let (addr, stop_tx, server) = listen_with_drain(&s, Duration::from_secs(10)).await;
    let status = tokio::task::spawn_blocking(move || {
        http(
            addr,
            "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    })
    .await
    .unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(status.ends_with("I-AM-ALIVE"), "{status}");
    let body = r#"{"name":"SOCK"}"#;
    let req = format!(
        "POST /c/banks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let created = tokio::task::spawn_blocking(move || http(addr, &req))
        .await
        .unwrap();
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let unauth = tokio::task::spawn_blocking(move || {
        http(
            addr,
            "GET /c/banks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    })
    .await
    .unwrap();
    assert!(unauth.starts_with("HTTP/1.1 401"), "{unauth}");

    // A request in flight: headers and half the body sent, the rest held back until the
    // shutdown has begun.
    let body = format!(
        r#"{{"signals":{{"md5":"{}"}},"note":"in flight"}}"#,
        "ab".repeat(16)
    );
    let (head, tail) = body.split_at(body.len() / 2);
    let head = format!(
        "POST /v1/banks/SOCK/contents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{head}",
        body.len()
    );
    let tail = tail.to_string();
    let (sent_tx, sent_rx) = tokio::sync::oneshot::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let in_flight = tokio::task::spawn_blocking(move || {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        conn.write_all(head.as_bytes()).unwrap();
        conn.flush().unwrap();
        sent_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        conn.write_all(tail.as_bytes()).unwrap();
        let mut out = String::new();
        conn.read_to_string(&mut out).unwrap();
        out
    });
    sent_rx.await.unwrap();
    // Let the server read the headers and enter the handler, which now waits for the body. (Had
    // it not got that far, the shutdown would close the idle connection and the test would
    // fail, not pass.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_tx.send(()).unwrap();
    // The shutdown has begun: new connections are refused, but the server has not finished.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "still accepting connections 5 s after the shutdown signal"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !server.is_finished(),
        "the server stopped with a request still receiving its body"
    );
    go_tx.send(()).unwrap();
    let answer = in_flight.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let id = answer
        .split("\"id\":")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<i64>().ok())
        .unwrap_or_else(|| panic!("no id in {answer}"));
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("server stopped")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after shutdown"
    );
    // The write answered during the shutdown is committed.
    let r = s
        .admin("GET", &format!("/v1/banks/SOCK/contents/{id}"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["signals"]["md5"], "ab".repeat(16));
    assert_eq!(r.json()["note"], "in flight");
}

/// A request still in flight when the drain period ends does not hold the shutdown: `serve`
/// returns once the drain time is up (docs/operations.md: in-flight requests get the drain
/// period, 30 s for `safeguard serve`, then the process stops anyway).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_waiting_at_the_end_of_the_drain_period() {
    let s = server().await;
    let (addr, stop_tx, server) = listen_with_drain(&s, Duration::from_millis(300)).await;
    // Headers and half a body, then nothing: the request stays in flight (its timeout is
    // 30 s).
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /c/banks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":"
    );
    tokio::io::AsyncWriteExt::write_all(&mut conn, head.as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopped_at = std::time::Instant::now();
    stop_tx.send(()).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returned")
        .unwrap();
    assert!(ended.is_ok(), "{ended:?}");
    let took = stopped_at.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    drop(conn);
}
