//! What a client is told when a URL fetch fails: a stable code and a fixed message, never what
//! the resolver or the network library said.

use crate::common::*;
use axum::http::StatusCode;

/// Words of resolver and OS errors (glibc, musl, macOS, hyper, reqwest).
const DETAIL: &[&str] = &[
    "dns",
    "lookup",
    "resolution",
    "os error",
    "name or service",
    "nodename",
    "refused",
    "tcp connect",
    "error sending request",
    "hyper",
];

fn assert_no_detail(body: &str) {
    let lower = body.to_ascii_lowercase();
    for w in DETAIL {
        assert!(!lower.contains(w), "the answer carries {w:?}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresolvable_host_answers_fetch_failed_without_resolver_detail() {
    let s = server().await;
    // `.invalid` never resolves (RFC 6761).
    for uri in [
        "/h/hash?url=http://no-such-host.invalid/x.jpg",
        "/m/lookup?url=http://no-such-host.invalid/x.jpg",
    ] {
        let r = s.admin("GET", uri, None).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::BAD_GATEWAY, "fetch_failed"),
            "{uri}: {}",
            r.text()
        );
        assert_eq!(
            r.json()["error"]["message"],
            "fetch failed: could not resolve the host",
            "{uri}"
        );
        assert_no_detail(&r.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_an_internal_address_is_forbidden_url() {
    let files = axum::Router::new().route(
        "/redirect",
        axum::routing::get(|| async {
            axum::response::Redirect::temporary("http://169.254.169.254/latest/meta-data")
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, files).await });
    let mut config = safeguard_server::config::Config::default();
    config.fetch.allow_internal_hosts = vec!["127.0.0.1".into()];
    let s = server_with(config).await;
    let r = s
        .admin(
            "GET",
            &format!("/h/hash?url=http://127.0.0.1:{port}/redirect"),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::FORBIDDEN, "forbidden_url"),
        "{}",
        r.text()
    );
    assert_no_detail(&r.text());
}
