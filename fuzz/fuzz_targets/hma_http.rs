//! HMA-compatible query, JSON and form parsing, through the public router exactly as a client
//! reaches it (`safeguard_server::app`, driven with `tower::ServiceExt::oneshot`; no socket).
//!
//! Input: one byte picks a route template, then the query string (or path tail) up to the
//! first NUL byte, then the body. Bodies go out as JSON or as `multipart/form-data` with a
//! fixed boundary, so the fuzzer can build form fields. The server runs over a throwaway
//! SQLite store with one bank, `FUZZ`, and fetching by URL disabled (no network).
//!
//! Checked on every input: the server answers (no panic: the catch-panic layer would turn one
//! into a 500, so a 500 fails the run), bad input gets a 4xx with a body, never a 5xx, and
//! nothing hangs (libFuzzer's -timeout).
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use safeguard_server::config::Config;
use safeguard_server::{app, AppState};
use safeguard_store::{SqliteStore, Store};
use tower::ServiceExt;

const KEY: &str = "fuzz-admin-key-0123456789abcdef0123456789abcdef";
const BOUNDARY: &str = "fuzzboundary";

enum Kind {
    None,
    Json,
    Form,
}

/// (method, path; `{}` is replaced by the query or path tail, body kind).
const ROUTES: [(Method, &str, Kind); 14] = [
    (Method::GET, "/m/lookup?{}", Kind::None),
    (Method::GET, "/m/raw_lookup?{}", Kind::None),
    (Method::POST, "/m/lookup?{}", Kind::Form),
    (Method::POST, "/h/hash?{}", Kind::Form),
    (Method::POST, "/m/compare?{}", Kind::Json),
    (Method::POST, "/c/banks?{}", Kind::Json),
    (Method::PUT, "/c/bank/FUZZ?{}", Kind::Json),
    (Method::POST, "/c/bank/FUZZ/content?{}", Kind::Form),
    (Method::POST, "/c/bank/FUZZ/signal?{}", Kind::Json),
    (Method::GET, "/c/bank/FUZZ/content/{}", Kind::None),
    (Method::PUT, "/c/bank/FUZZ/content/{}", Kind::Json),
    (Method::GET, "/m/index/status?{}", Kind::None),
    (Method::PUT, "/c/signal_type/{}", Kind::Json),
    // Any path, read-only (so the fuzzer cannot delete the bank the others use).
    (Method::GET, "/{}", Kind::None),
];

struct Harness {
    runtime: tokio::runtime::Runtime,
    state: AppState,
    // Keeps the store (and its temporary directory) alive for the whole run.
    _store: Arc<dyn Store>,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().expect("store"));
        let mut config = Config::default();
        config.fetch.enabled = false;
        // Decode in-process: decode workers forked from this AddressSanitizer build do not
        // come up (every upload was 503 decoder_unavailable, failing the run at once), and a
        // decoder fault should stop the fuzzer, not become a worker's 422. The job code is the
        // same in both modes (safeguard_sandbox::job).
        config.decode.sandbox = false;
        let state = AppState::new(store.clone(), config, Some(KEY)).expect("state");
        runtime.block_on(async {
            safeguard_server::load_engine(state.clone(), None)
                .await
                .expect("engine");
            let created = call(&state, Method::POST, "/c/banks", Kind::Json, br#"{"name":"FUZZ"}"#).await;
            assert!(created.is_success(), "creating the bank: {created}");
        });
        Harness { runtime, state, _store: store }
    })
}

async fn call(state: &AppState, method: Method, uri: &str, kind: Kind, body: &[u8]) -> StatusCode {
    let builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {KEY}"));
    let builder = match kind {
        Kind::None => builder,
        Kind::Json => builder.header("content-type", "application/json"),
        Kind::Form => builder.header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        ),
    };
    let Ok(request) = builder.body(Body::from(body.to_vec())) else {
        // Not a valid URI: hyper would refuse it before the router.
        return StatusCode::BAD_REQUEST;
    };
    let response = app(state.clone()).oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    assert!(
        !status.is_server_error() || status == StatusCode::NOT_IMPLEMENTED,
        "{uri}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    if status.is_client_error() && status != StatusCode::METHOD_NOT_ALLOWED {
        assert!(!bytes.is_empty(), "{uri}: {status} with an empty body");
    }
    status
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let (tail, body) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(tail) = std::str::from_utf8(tail) else { return };
    let (method, template, kind) = &ROUTES[usize::from(pick) % ROUTES.len()];
    let uri = template.replacen("{}", tail, 1);
    let kind = match kind {
        Kind::None => Kind::None,
        Kind::Json => Kind::Json,
        Kind::Form => Kind::Form,
    };
    let h = harness();
    h.runtime.block_on(call(&h.state, method.clone(), &uri, kind, body));
});
