//! What every request goes through: request id, concurrency limit, timeout, panic catching,
//! access log and metrics; and the scope check of protected routes.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;

use crate::auth::{Cached, Scope};
use crate::error::{ApiError, REQUEST_ID};
use crate::metrics::{RequestLabels, RouteLabels, SignalLabels};
use crate::state::AppState;

fn new_request_id(req: &Request) -> String {
    // A caller's id is kept when it is short and plain, so logs correlate across services.
    if let Some(v) = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
    {
        if !v.is_empty()
            && v.len() <= 64
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return v.to_string();
        }
    }
    format!("{:016x}", rand::random::<u64>())
}

/// The outermost middleware.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = new_request_id(&req);
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let path = req.uri().path().to_string();
    let start = Instant::now();
    let timeout = Duration::from_secs(state.0.config.limits.request_timeout_secs);
    let inner = async {
        // Waiting for a slot counts against the timeout: under overload, callers get a fast,
        // clear 503 rather than an ever-growing queue.
        let permit = tokio::time::timeout(timeout, state.0.requests.acquire()).await;
        let Ok(Ok(_permit)) = permit else {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "too many requests in flight; retry later",
            )
            .into_response();
        };
        let remaining = timeout.saturating_sub(start.elapsed());
        match tokio::time::timeout(
            remaining,
            std::panic::AssertUnwindSafe(next.run(req)).catch_unwind(),
        )
        .await
        {
            Ok(Ok(resp)) => resp,
            Ok(Err(_panic)) => ApiError::internal("handler panicked").into_response(),
            Err(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!("the request took longer than {} s", timeout.as_secs()),
            )
            .into_response(),
        }
    };
    let mut resp = REQUEST_ID.scope(id.clone(), inner).await;
    let status = resp.status().as_u16();
    let elapsed = start.elapsed();
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let m = &state.0.metrics;
    m.requests
        .get_or_create(&RequestLabels {
            method: method.clone(),
            route: route.clone(),
            status,
        })
        .inc();
    m.latency
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        request_id = %id,
        method = %method,
        route = %route,
        path = %path,
        status,
        duration_ms = elapsed.as_secs_f64() * 1e3,
        "request"
    );
    resp
}

/// Checks the API key of a protected route. A key the cache knows is checked inline, without
/// a blocking task; only a real cache miss reads the store, on the blocking pool, and a miss on
/// a key id never seen first waits for one of the few permits for such reads.
pub async fn require_scope(
    State((state, scope)): State<(AppState, Scope)>,
    req: Request,
    next: Next,
) -> Response {
    let auth = &state.0.auth;
    if auth.enabled() {
        // The header is copied only on a miss; the borrow of `req` ends before any await.
        let (cached, header) = {
            let header = req
                .headers()
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            match auth.check_cached(header, scope) {
                c @ Cached::Decided(_) => (c, None),
                c @ Cached::Miss { .. } => (c, header.map(str::to_string)),
            }
        };
        let verdict = match cached {
            Cached::Decided(v) => v,
            Cached::Miss { unknown } => {
                let permit = match unknown {
                    true => Some(auth.unknown_key_permit().await),
                    false => None,
                };
                let st = state.clone();
                // The permit moves into the closure: a request cancelled while its read runs
                // still counts against the bound until the read ends.
                let read = tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    st.0.auth.check(header.as_deref(), scope)
                });
                match read.await {
                    Ok(v) => v,
                    Err(e) => return ApiError::from(e).into_response(),
                }
            }
        };
        if let Err(denied) = verdict {
            return ApiError::from(denied).into_response();
        }
    }
    next.run(req).await
}

/// 404 for unknown routes, in the API's error shape.
pub async fn fallback(req: Request<Body>) -> Response {
    ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
    .into_response()
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    if let Some(engine) = state.0.engine.get() {
        let st = engine.index_status();
        for (t, n) in st.entries {
            state
                .0
                .metrics
                .index_entries
                .get_or_create(&SignalLabels {
                    signal_type: t.name().to_string(),
                })
                .set(n as i64);
        }
        state.0.metrics.index_bytes.set(st.bytes as i64);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.0.metrics.render(),
    )
        .into_response()
}
