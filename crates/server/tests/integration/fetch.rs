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

/// The fetch limits of docs/api.md, each at its edge, against a local server: the size cap
/// whether the length is declared or the body streams, the redirect count (five followed, a
/// sixth refused), the time limit, and a status that is not 2xx. Each is a stable code and a
/// fixed message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_limits_hold_at_their_edges() {
    use axum::extract::Path;
    use axum::response::{IntoResponse, Redirect};
    const CAP: usize = 1024;
    let files = axum::Router::new()
        .route(
            "/declared/{n}",
            axum::routing::get(|Path(n): Path<usize>| async move { vec![7u8; n] }),
        )
        .route(
            "/streamed/{n}",
            axum::routing::get(|Path(n): Path<usize>| async move {
                // Chunks with no Content-Length: the cap is applied as the bytes arrive.
                let chunks = (0..n / 256).map(|_| Ok::<_, std::io::Error>(vec![7u8; 256]));
                axum::body::Body::from_stream(futures_util::stream::iter(chunks))
            }),
        )
        .route(
            "/hop/{n}",
            axum::routing::get(|Path(n): Path<usize>| async move {
                if n == 0 {
                    b"not an image".to_vec().into_response()
                } else {
                    Redirect::temporary(&format!("/hop/{}", n - 1)).into_response()
                }
            }),
        )
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/missing",
            axum::routing::get(|| async { StatusCode::NOT_FOUND }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, files).await });
    let mut config = safeguard_server::config::Config::default();
    config.fetch.allow_internal_hosts = vec!["127.0.0.1".into()];
    config.fetch.max_bytes = CAP as u64;
    config.fetch.timeout_secs = 1;
    assert_eq!(config.fetch.max_redirects, 5);
    let s = server_with(config).await;
    let get = |path: String| {
        let s = &s;
        async move {
            s.admin(
                "GET",
                &format!("/h/hash?url=http://127.0.0.1:{port}{path}"),
                None,
            )
            .await
        }
    };
    // Within the limits the fetch succeeds (what is fetched is not media: HMA's hash route
    // answers with what it could compute, the file's MD5).
    for ok in [
        format!("/declared/{CAP}"),
        format!("/streamed/{CAP}"),
        "/hop/5".into(),
    ] {
        let r = get(ok.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{ok}: {}", r.text());
    }
    for (path, status, code, message) in [
        (
            format!("/declared/{}", CAP + 1),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the fetched file is over {CAP} bytes"),
        ),
        (
            format!("/streamed/{}", CAP + 256),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the fetched file is over {CAP} bytes"),
        ),
        (
            "/hop/6".into(),
            StatusCode::BAD_GATEWAY,
            "fetch_failed",
            "fetch failed: more than 5 redirects".into(),
        ),
        (
            "/slow".into(),
            StatusCode::BAD_GATEWAY,
            "fetch_failed",
            "fetch failed: timed out".into(),
        ),
        (
            "/missing".into(),
            StatusCode::BAD_GATEWAY,
            "fetch_failed",
            "fetch failed: HTTP status 404 Not Found".into(),
        ),
    ] {
        let started = std::time::Instant::now();
        let r = get(path.clone()).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{path}: {}",
            r.text()
        );
        assert_eq!(r.json()["error"]["message"], message, "{path}");
        assert_no_detail(&r.text());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(4),
            "{path}"
        );
    }
}

/// A submission refused for its own fields (an empty id, an account over the limit) is refused
/// before its `url` is fetched: the local server is never asked for the file. The same item
/// with good fields fetches it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_refused_for_its_fields_fetches_nothing() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let files = axum::Router::new().route(
        "/photo.bin",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { b"not an image, hashed as other content".to_vec() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, files).await });
    let dir = tempfile::tempdir().unwrap();
    let mut config = safeguard_server::config::Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    config.fetch.allow_internal_hosts = vec!["127.0.0.1".into()];
    let s = server_with(config).await;
    let url = format!("http://127.0.0.1:{port}/photo.bin");
    for bad in [
        serde_json::json!({"id": "", "kind": "other", "url": url}),
        serde_json::json!({"id": "f1", "kind": "other", "url": url, "account": "a".repeat(257)}),
    ] {
        let r = s.admin("POST", "/v1/content", Some(bad.clone())).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{bad}: {}",
            r.text()
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a refused item fetched its url"
    );
    let r = s
        .admin(
            "POST",
            "/v1/content",
            Some(serde_json::json!({"id": "f2", "kind": "other", "url": url})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
