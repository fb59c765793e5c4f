//! Over a real socket: the server binds, answers, and shuts down gracefully with a request
//! in flight.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let state = s.state.clone();
    let server = tokio::spawn(safeguard_server::serve(
        listener,
        state,
        async {
            let _ = stop_rx.await;
        },
        Duration::from_secs(10),
    ));
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
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("server stopped")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after shutdown"
    );
}
