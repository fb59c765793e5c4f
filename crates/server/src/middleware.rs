//! What every request goes through: request id (and a tracing span carrying it), concurrency
//! limit, the byte budget of buffered bodies, timeout, panic catching, access log and metrics;
//! and the scope check of protected routes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::{FutureExt, StreamExt};
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

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

/// The `method` label of the request metrics: the standard methods by name, anything else
/// `OTHER`. The method is the client's to choose, and every distinct label value is a new
/// series held forever.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

tokio::task_local! {
    /// The lease on the byte budget of the request being handled.
    static LEASE: Arc<Lease>;
}

/// A request's hold on the global byte budget of buffered bodies
/// (`limits.max_buffered_bytes`). Body bytes are charged as they arrive, and released when
/// the last holder lets go: the request (its middleware), the body while it is read, and any
/// CPU job working on the bytes, which outlives a cancelled request.
#[derive(Debug)]
pub struct Lease {
    budget: Arc<Semaphore>,
    held: Mutex<Option<OwnedSemaphorePermit>>,
    held_bytes: AtomicUsize,
    gauge: Gauge,
    /// The handler streams the body somewhere other than memory (a list import's spool).
    exempt: AtomicBool,
    /// A charge failed: the request is answered 503 `overloaded`, whatever its handler said.
    exceeded: AtomicBool,
}

impl Lease {
    fn new(state: &AppState) -> Lease {
        Lease {
            budget: state.0.buffered.clone(),
            held: Mutex::new(None),
            held_bytes: AtomicUsize::new(0),
            gauge: state.0.metrics.buffered_bytes.clone(),
            exempt: AtomicBool::new(false),
            exceeded: AtomicBool::new(false),
        }
    }

    /// Takes `n` more bytes from the budget; false (and the request marked over budget) when
    /// they are not there. Never waits: a full budget means overload, answered at once.
    fn charge(&self, n: usize) -> bool {
        if n == 0 || self.exempt.load(Ordering::Relaxed) {
            return true;
        }
        let permit = u32::try_from(n)
            .ok()
            .and_then(|n| self.budget.clone().try_acquire_many_owned(n).ok());
        let Some(permit) = permit else {
            self.exceeded.store(true, Ordering::Relaxed);
            return false;
        };
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        match held.as_mut() {
            Some(h) => h.merge(permit),
            None => *held = Some(permit),
        }
        self.held_bytes.fetch_add(n, Ordering::Relaxed);
        self.gauge.inc_by(n as i64);
        true
    }

    fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.gauge
            .dec_by(self.held_bytes.load(Ordering::Relaxed) as i64);
    }
}

/// The current request's lease on the byte budget, for work that outlives the request.
pub(crate) fn current_lease() -> Option<Arc<Lease>> {
    LEASE.try_with(Clone::clone).ok()
}

/// The current request's body is not held in memory (it is spooled to disk as it arrives),
/// so it is not charged to the byte budget. Call before reading the body.
pub(crate) fn exempt_body_from_budget() {
    if let Some(l) = current_lease() {
        l.exempt.store(true, Ordering::Relaxed);
    }
}

/// Charges `n` bytes buffered outside the request body (a fetched URL) to the current
/// request's lease; 503 `overloaded` when the budget is used up.
pub(crate) fn charge_budget(n: usize) -> Result<(), ApiError> {
    match current_lease() {
        Some(l) if !l.charge(n) => Err(over_budget()),
        _ => Ok(()),
    }
}

fn over_budget() -> ApiError {
    ApiError::overloaded(
        "too many request bytes buffered at once (limits.max_buffered_bytes); retry later",
    )
}

/// Makes the request body charge its bytes to `lease` as they arrive.
fn budgeted(req: Request, lease: &Arc<Lease>) -> Request {
    if req.body().size_hint().exact() == Some(0) {
        return req;
    }
    let lease = lease.clone();
    req.map(move |body| {
        Body::from_stream(body.into_data_stream().map(move |chunk| {
            let chunk = chunk?;
            if lease.charge(chunk.len()) {
                Ok(chunk)
            } else {
                Err(axum::Error::new(over_budget().message))
            }
        }))
    })
}

/// The liveness probe's path (see [`guard`]).
pub const LIVENESS_PATH: &str = "/status/live";

/// The outermost middleware.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = new_request_id(&req);
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let path = req.uri().path().to_string();
    let start = Instant::now();
    let timeout = Duration::from_secs(state.0.config.limits.request_timeout_secs);
    let lease = Arc::new(Lease::new(&state));
    let req = budgeted(req, &lease);
    let inner = async {
        // Waiting for a slot is bounded (`limits.max_queue_ms`) and counts against the
        // timeout: under overload, callers get a fast, clear 503 rather than a queue that
        // hands them a slot with no time left.
        // The liveness probe takes no slot: a saturated server is busy, not dead, and a
        // probe refused under load would have it restarted at the worst moment. It does no
        // work (a constant answer), so it cannot add to the load.
        let _permit = if path == LIVENESS_PATH {
            None
        } else {
            let wait = timeout.min(Duration::from_millis(state.0.config.limits.max_queue_ms));
            let permit = match state.0.requests.try_acquire() {
                Ok(p) => Ok(Ok(p)),
                Err(_) => tokio::time::timeout(wait, state.0.requests.acquire()).await,
            };
            let Ok(Ok(permit)) = permit else {
                return ApiError::overloaded("too many requests in flight; retry later")
                    .into_response();
            };
            Some(permit)
        };
        let remaining = timeout.saturating_sub(start.elapsed());
        let resp = match tokio::time::timeout(
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
        };
        // Whatever the handler made of its failed body read, the cause was the budget.
        if lease.exceeded() {
            return over_budget().into_response();
        }
        resp
    };
    let span = tracing::info_span!("request", request_id = %id);
    let inner = LEASE.scope(lease.clone(), inner);
    let mut resp = REQUEST_ID.scope(id.clone(), inner).instrument(span).await;
    drop(lease);
    let status = resp.status().as_u16();
    let elapsed = start.elapsed();
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let m = &state.0.metrics;
    m.requests
        .get_or_create(&RequestLabels {
            method: method.to_string(),
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
    let who = crate::auth::KeyId::from_header(
        req.headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        !auth.enabled(),
    );
    let mut req = req;
    req.extensions_mut().insert(who);
    next.run(req).await
}

/// 404 for unknown routes, in the API's error shape.
pub async fn fallback(req: Request<Body>) -> Response {
    no_route(req.method(), req.uri().path()).into_response()
}

/// The 404 of a path no route serves.
pub(crate) fn no_route(method: &axum::http::Method, path: &str) -> ApiError {
    ApiError::not_found(format!("no route for {method} {path}"))
}

/// 405 for a route that exists with other methods, in the API's error shape (the router adds
/// the `Allow` header naming the methods it has).
pub async fn method_not_allowed(req: Request<Body>) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
    .into_response()
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let store = state.0.store.clone();
    if let Ok(Ok(c)) = tokio::task::spawn_blocking(move || store.outbox_counts()).await {
        let m = &state.0.metrics;
        m.webhooks_disabled
            .set(i64::try_from(c.disabled_webhooks).unwrap_or(i64::MAX));
        m.webhook_backlog
            .set(i64::try_from(c.pending).unwrap_or(i64::MAX));
        m.webhook_dead
            .set(i64::try_from(c.dead).unwrap_or(i64::MAX));
    }
    if let Some(w) = state.0.webhooks.get() {
        let c = w.counters.snapshot();
        let m = &state.0.metrics;
        use crate::metrics::advance;
        advance(&m.webhook_attempts, c.attempts);
        advance(&m.webhook_delivered, c.delivered);
        advance(&m.webhook_retried, c.retried);
        advance(&m.webhook_dead_lettered, c.dead_lettered);
        advance(&m.webhook_endpoints_disabled, c.endpoints_disabled);
    }
    if let Some(actioner) = state.0.actioner.get() {
        let g = actioner.group_commit_stats();
        let m = &state.0.metrics;
        crate::metrics::advance(&m.submission_commits, g.batches);
        crate::metrics::advance(&m.submission_commit_items, g.jobs);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id_for(header: Option<&str>) -> String {
        let mut b = Request::builder().uri("/");
        if let Some(h) = header {
            b = b.header("x-request-id", h);
        }
        new_request_id(&b.body(axum::body::Body::empty()).unwrap())
    }

    /// A caller's id of 1 to 64 letters, digits, `-` and `_` is kept; anything else is
    /// replaced by 16 hex digits of our own.
    #[test]
    fn a_callers_request_id_is_kept_only_when_short_and_plain() {
        for kept in ["abc-123_X", &"a".repeat(64), "0"] {
            assert_eq!(id_for(Some(kept)), kept);
        }
        let ours = |id: &str| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
        for replaced in [None, Some(""), Some("a.b"), Some("a b")] {
            assert!(ours(&id_for(replaced)), "{replaced:?}");
        }
        let long = "a".repeat(65);
        assert!(ours(&id_for(Some(&long))));
    }
}
