//! Webhooks: endpoints registered through `/v1/webhooks`, and the dispatcher that delivers the
//! store's outbox to them (`safeguard_webhook`). The store writes each event in the same
//! transaction as the change it describes; [`StoreOutbox`] is the dispatcher's view of those
//! rows, with the endpoints' secrets unsealed by the master key as they are sent.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use safeguard_store::action::{DeliveryAttempt, DeliveryNext, NewWebhook, Webhook};
use safeguard_store::Store;
use safeguard_webhook::attempt::{AttemptRecord, Outcome};
use safeguard_webhook::outbox::{
    DeadLetter, DeliveryId, EndpointId, Next, Outbox, Pending, Redrive,
};
use safeguard_webhook::signature::Secret;

use safeguard_engine::now_ms;

use crate::error::{ApiError, ApiResult};
use crate::extract::{optional_json, ApiPath, JsonBody};
use crate::state::{blocking, AppState};

/// Associated data binding a sealed webhook secret to its use (a secret sealed for something
/// else does not open here).
const SECRET_CONTEXT: &[u8] = b"safeguard webhook secret v1";

/// Most endpoints an instance keeps: each costs a delivery row per event.
pub const MAX_WEBHOOKS: usize = 64;
/// Longest endpoint URL, bytes.
pub const MAX_URL_LEN: usize = 2048;
/// Shortest secret a client may choose, bytes (the generated ones are 32 random bytes).
pub const MIN_SECRET_LEN: usize = 24;

/// A store error as the dispatcher sees it. `NotFound` carries which id was missing, which
/// only the caller knows.
fn store_err_for(
    what: &'static str,
    id: i64,
) -> impl Fn(safeguard_store::Error) -> safeguard_webhook::Error {
    move |e| match e {
        safeguard_store::Error::NotFound(_) => safeguard_webhook::Error::NotFound { what, id },
        other => safeguard_webhook::Error::Store(Box::new(other)),
    }
}

fn store_err(e: safeguard_store::Error) -> safeguard_webhook::Error {
    safeguard_webhook::Error::Store(Box::new(e))
}

/// Loads the master key when first needed.
pub type KeyLoader =
    Arc<dyn Fn() -> Result<safeguard_seal::MasterKey, safeguard_seal::Error> + Send + Sync>;

/// The dispatcher's view of the store.
pub struct StoreOutbox {
    store: Arc<dyn Store>,
    /// Loaded on the first delivery: an instance without webhooks never needs the key.
    key: std::sync::OnceLock<safeguard_seal::MasterKey>,
    load: KeyLoader,
    /// When each endpoint whose secret cannot be opened was last logged: once a minute each,
    /// not once a pass.
    unreadable_logged: std::sync::Mutex<Vec<(i64, std::time::Instant)>>,
    /// Set for a server: one process of those sharing a store dispatches at a time.
    lease: Option<DispatchLease>,
}

/// The store lease that lets one process dispatch: two dispatchers over one outbox would send
/// an endpoint's events twice and out of order (each reads the same oldest delivery, and
/// records a run only when it ends).
struct DispatchLease {
    /// This process's name on leases.
    owner: String,
    /// How long a grant lasts. Renewed when less than half is left; runs are cut at
    /// [`safeguard_webhook::dispatcher::RUN_TIME_LIMIT`], which with one attempt's timeout
    /// fits in that half ([`dispatch_lease_ttl`]), so a run never outlasts its lease.
    ttl_ms: i64,
    /// Unix ms this process holds the lease until, as last granted; 0 when it does not.
    held_until: std::sync::atomic::AtomicI64,
    /// Unix ms before which a process refused the lease does not ask again (a store write
    /// per pass would cost the process that does dispatch).
    retry_at: std::sync::atomic::AtomicI64,
}

/// The lease's name in the store.
const DISPATCH_LEASE: &str = "webhook-dispatch";
/// Default [`DispatchLease::ttl_ms`]: a dead dispatcher's endpoints wait at most this long
/// (plus a retry interval) for another process to take over.
pub const DISPATCH_LEASE_TTL: Duration = Duration::from_secs(120);

/// How often an endpoint held back by an unreadable secret is logged again.
const UNREADABLE_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl std::fmt::Debug for StoreOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOutbox").finish_non_exhaustive()
    }
}

impl StoreOutbox {
    /// An outbox over `store`, opening secrets with the key `load` gives.
    pub fn new(store: Arc<dyn Store>, load: KeyLoader) -> StoreOutbox {
        StoreOutbox {
            store,
            key: std::sync::OnceLock::new(),
            load,
            unreadable_logged: std::sync::Mutex::new(Vec::new()),
            lease: None,
        }
    }

    /// Dispatches only while `owner` holds the store's dispatch lease (granted for `ttl`).
    pub fn with_lease(mut self, owner: String, ttl: Duration) -> StoreOutbox {
        self.lease = Some(DispatchLease {
            owner,
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(2),
            held_until: std::sync::atomic::AtomicI64::new(0),
            retry_at: std::sync::atomic::AtomicI64::new(0),
        });
        self
    }

    /// Whether this process may send now: it holds the dispatch lease (taken or renewed
    /// here when less than half of it is left), or it runs without one.
    fn dispatching(&self, now: i64) -> safeguard_webhook::Result<bool> {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(l) = &self.lease else {
            return Ok(true);
        };
        // The dispatcher passes its pass's start time to every call of the pass; a long pass
        // would then never see the lease running out. The clock now, if later.
        let now = now.max(now_ms());
        let held = l.held_until.load(Relaxed);
        if now < held.saturating_sub(l.ttl_ms / 2) {
            return Ok(true);
        }
        if held <= now && now < l.retry_at.load(Relaxed) {
            return Ok(false);
        }
        let until = now.saturating_add(l.ttl_ms);
        // Taking renews a lease this process holds; one it lost is granted only if free.
        let granted = self
            .store
            .take_lease(DISPATCH_LEASE, &l.owner, until, now)
            .map_err(store_err)?;
        if granted {
            l.held_until.store(until, Relaxed);
        } else {
            l.held_until.store(0, Relaxed);
            l.retry_at
                .store(now.saturating_add((l.ttl_ms / 24).max(1)), Relaxed);
        }
        Ok(granted)
    }

    /// Logs (at most once a minute per endpoint) that an endpoint's deliveries wait because
    /// its secret cannot be opened.
    fn log_unreadable(&self, webhook_id: i64, e: &dyn std::error::Error) {
        let now = std::time::Instant::now();
        let mut logged = self
            .unreadable_logged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match logged.iter_mut().find(|(id, _)| *id == webhook_id) {
            Some((_, at)) if now.duration_since(*at) < UNREADABLE_LOG_EVERY => return,
            Some((_, at)) => *at = now,
            None => logged.push((webhook_id, now)),
        }
        tracing::error!(
            webhook_id,
            error = %e,
            "webhook deliveries held back: the endpoint's stored secret cannot be opened \
             (another instance's master key, or altered bytes); rotate it with \
             POST /v1/webhooks/{{id}}/secret"
        );
    }

    fn key(&self) -> Result<&safeguard_seal::MasterKey, safeguard_seal::Error> {
        if let Some(k) = self.key.get() {
            return Ok(k);
        }
        let k = (self.load)()?;
        Ok(self.key.get_or_init(|| k))
    }

    /// The endpoint's live secrets, current first. Sealed together as one value (joined by
    /// newlines; a secret has none) so a rotation can keep the old one beside the new.
    fn open_secrets(&self, sealed: &[u8]) -> Result<Vec<Secret>, OpenError> {
        let plain = self
            .key()
            .map_err(OpenError::Key)?
            .open(sealed, SECRET_CONTEXT)
            .map_err(|e| OpenError::Unreadable(Box::new(e)))?;
        let text = std::str::from_utf8(&plain).map_err(|e| OpenError::Unreadable(Box::new(e)))?;
        Ok(split_secrets(text))
    }
}

/// Why an endpoint's sealed secrets could not be opened.
enum OpenError {
    /// The master key cannot be loaded.
    Key(safeguard_seal::Error),
    /// The key does not open the value (another key, altered bytes), or it is not text.
    Unreadable(Box<dyn std::error::Error + Send + Sync>),
}

/// The secrets of a sealed value's plaintext, current first. Empty lines are skipped: an empty
/// key would sign nothing worth checking (none can be stored through the API, which refuses
/// a secret with whitespace or under [`MIN_SECRET_LEN`]).
fn split_secrets(text: &str) -> Vec<Secret> {
    text.split('\n')
        .filter(|s| !s.is_empty())
        .map(Secret::new)
        .collect()
}

fn outcome_of(status: Option<u16>) -> Outcome {
    match status {
        Some(s) if (200..300).contains(&s) => Outcome::Delivered,
        Some(410) => Outcome::Gone,
        _ => Outcome::Retry,
    }
}

impl StoreOutbox {
    /// The dispatcher's view of due rows, opening each endpoint's secrets once.
    fn pending(
        &self,
        due: Vec<safeguard_store::action::DueDelivery>,
    ) -> safeguard_webhook::Result<Vec<Pending>> {
        // `None`: the endpoint's secret cannot be opened. Its deliveries stay pending (a
        // rotation makes them go) and hold back no other endpoint; a master key that cannot
        // be loaded at all fails the pass, as it holds back every endpoint alike.
        let mut opened: Vec<(i64, Option<Vec<Secret>>)> = Vec::new();
        let mut out = Vec::with_capacity(due.len());
        for d in due {
            let secrets = match opened.iter().find(|(id, _)| *id == d.webhook_id) {
                Some((_, s)) => s.clone(),
                None => {
                    let s = match self.open_secrets(&d.sealed_secret) {
                        Ok(s) => Some(s),
                        Err(OpenError::Unreadable(e)) => {
                            self.log_unreadable(d.webhook_id, &*e);
                            None
                        }
                        Err(OpenError::Key(e)) => {
                            return Err(safeguard_webhook::Error::Store(Box::new(e)))
                        }
                    };
                    opened.push((d.webhook_id, s.clone()));
                    s
                }
            };
            let Some(secrets) = secrets else {
                continue;
            };
            out.push(Pending {
                delivery_id: DeliveryId(d.delivery_id),
                endpoint_id: EndpointId(d.webhook_id),
                url: d.url,
                secrets,
                event_id: d.event_id,
                event_type: d.event_type,
                body: d.body.into_bytes(),
                first_attempt_at_ms: d.first_attempt_at,
                attempts: d.attempts,
            });
        }
        Ok(out)
    }
}

fn delivery_next(next: Next) -> DeliveryNext {
    match next {
        Next::Delivered => DeliveryNext::Delivered,
        Next::RetryAt(t) => DeliveryNext::RetryAt(t),
        Next::Dead => DeliveryNext::Dead,
    }
}

fn delivery_attempt(a: &AttemptRecord) -> DeliveryAttempt {
    DeliveryAttempt {
        at: a.at_ms,
        status: a.status,
        latency_ms: i64::try_from(a.latency_ms).unwrap_or(i64::MAX),
        response_excerpt: a.response_excerpt.clone(),
        error: a.error.clone(),
    }
}

impl Outbox for StoreOutbox {
    fn due(&self, now_ms: i64, limit: usize) -> safeguard_webhook::Result<Vec<Pending>> {
        if !self.dispatching(now_ms)? {
            return Ok(Vec::new());
        }
        let due = self
            .store
            .due_deliveries(now_ms, limit)
            .map_err(store_err)?;
        let mut out = self.pending(due)?;
        // The trait orders by delivery id; the store by due time.
        out.sort_by_key(|p| p.delivery_id);
        Ok(out)
    }

    fn queued(
        &self,
        endpoint_id: EndpointId,
        after: DeliveryId,
        now_ms: i64,
        limit: usize,
    ) -> safeguard_webhook::Result<Vec<Pending>> {
        if !self.dispatching(now_ms)? {
            return Ok(Vec::new());
        }
        let queued = self
            .store
            .queued_deliveries(endpoint_id.0, after.0, now_ms, limit)
            .map_err(store_err_for("endpoint", endpoint_id.0))?;
        self.pending(queued)
    }

    fn record_attempt(
        &self,
        delivery_id: DeliveryId,
        a: &AttemptRecord,
        next: Next,
    ) -> safeguard_webhook::Result<()> {
        self.store
            .record_delivery_attempt(delivery_id.0, &delivery_attempt(a), delivery_next(next))
            .map_err(store_err_for("delivery", delivery_id.0))
    }

    fn record_attempts(
        &self,
        batch: &[(DeliveryId, AttemptRecord, Next)],
    ) -> safeguard_webhook::Result<()> {
        let rows: Vec<(i64, DeliveryAttempt, DeliveryNext)> = batch
            .iter()
            .map(|(id, a, next)| (id.0, delivery_attempt(a), delivery_next(*next)))
            .collect();
        self.store
            .record_delivery_attempts(&rows)
            .map_err(|e| match e {
                // The store names the delivery it did not find ("delivery N").
                safeguard_store::Error::NotFound(m) => {
                    match m.strip_prefix("delivery ").and_then(|id| id.parse().ok()) {
                        Some(id) => safeguard_webhook::Error::NotFound {
                            what: "delivery",
                            id,
                        },
                        None => store_err(safeguard_store::Error::NotFound(m)),
                    }
                }
                other => store_err(other),
            })
    }

    fn attempts(&self, delivery_id: DeliveryId) -> safeguard_webhook::Result<Vec<AttemptRecord>> {
        Ok(self
            .store
            .delivery_attempts(delivery_id.0)
            .map_err(store_err_for("delivery", delivery_id.0))?
            .into_iter()
            .map(|a| AttemptRecord {
                at_ms: a.at,
                status: a.status,
                latency_ms: u64::try_from(a.latency_ms).unwrap_or(0),
                response_excerpt: a.response_excerpt,
                error: a.error.clone(),
                outcome: if a.error.is_some() {
                    Outcome::Retry
                } else {
                    outcome_of(a.status)
                },
            })
            .collect())
    }

    fn endpoint_failing_since(&self, id: EndpointId) -> safeguard_webhook::Result<Option<i64>> {
        Ok(self.hook(id)?.failing_since)
    }

    fn disable_endpoint(
        &self,
        id: EndpointId,
        reason: &str,
        now_ms: i64,
    ) -> safeguard_webhook::Result<usize> {
        let n = self
            .store
            .disable_webhook(id.0, reason, now_ms)
            .map_err(store_err_for("endpoint", id.0))?;
        tracing::warn!(
            webhook = id.0,
            reason,
            dead_lettered = n,
            "webhook endpoint disabled"
        );
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn enable_endpoint(&self, id: EndpointId) -> safeguard_webhook::Result<()> {
        self.store
            .set_webhook_enabled(id.0, true, None)
            .map_err(store_err_for("endpoint", id.0))?;
        Ok(())
    }

    fn endpoint_status(&self, id: EndpointId) -> safeguard_webhook::Result<(bool, Option<String>)> {
        let w = self.hook(id)?;
        Ok((w.enabled, w.disabled_reason))
    }

    fn disabled_endpoints(&self) -> safeguard_webhook::Result<u64> {
        Ok(self
            .store
            .outbox_counts()
            .map_err(store_err)?
            .disabled_webhooks)
    }

    fn dead_letters(&self, id: EndpointId) -> safeguard_webhook::Result<Vec<DeadLetter>> {
        self.hook(id)?;
        Ok(self
            .store
            .dead_letters(id.0)
            .map_err(store_err)?
            .into_iter()
            .map(|d| DeadLetter {
                delivery_id: DeliveryId(d.delivery_id),
                event_id: d.event_id,
                event_type: d.event_type,
                attempts: d.attempts,
                first_attempt_at_ms: d.first_attempt_at,
            })
            .collect())
    }

    fn redrive(
        &self,
        id: EndpointId,
        which: &Redrive,
        now_ms: i64,
    ) -> safeguard_webhook::Result<usize> {
        let ids: Option<Vec<i64>> = match which {
            Redrive::All => None,
            Redrive::Only(v) => Some(v.iter().map(|d| d.0).collect()),
        };
        let n = self
            .store
            .redrive(id.0, ids.as_deref(), now_ms)
            .map_err(store_err_for("endpoint", id.0))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

impl StoreOutbox {
    fn hook(&self, id: EndpointId) -> safeguard_webhook::Result<Webhook> {
        self.store
            .webhook(id.0)
            .map_err(store_err)?
            .ok_or(safeguard_webhook::Error::NotFound {
                what: "endpoint",
                id: id.0,
            })
    }

    /// Seals an endpoint's secrets (current first) for storage.
    pub fn seal(&self, secrets: &[Secret]) -> Result<Vec<u8>, safeguard_seal::Error> {
        let joined: Vec<&str> = secrets.iter().map(Secret::expose).collect();
        self.key()?
            .seal(joined.join("\n").as_bytes(), SECRET_CONTEXT)
    }
}

/// The dispatcher's settings from the configuration.
pub fn dispatcher_config(
    c: &crate::config::WebhooksConfig,
) -> safeguard_webhook::dispatcher::Config {
    let d = safeguard_webhook::dispatcher::Config::default();
    safeguard_webhook::dispatcher::Config {
        timeout: Duration::from_secs(c.timeout_secs),
        schedule: safeguard_webhook::schedule::Schedule {
            base: Duration::from_secs(c.retry_base_secs),
            horizon: Duration::from_secs(c.retry_horizon_hours * 3600),
            ..d.schedule
        },
        disable_after: Duration::from_secs(c.disable_after_hours * 3600),
        ..d
    }
}

/// The running dispatcher: the notifier that wakes it early (after a write that produced
/// events), and its stop signal, which fires when this handle is dropped with the server's
/// state.
#[derive(Debug)]
pub struct Running {
    /// Wakes the dispatcher.
    pub notify: Arc<tokio::sync::Notify>,
    /// The dispatcher's counters since this process started (exported by `/metrics`).
    pub counters: Arc<safeguard_webhook::dispatcher::Metrics>,
    _stop: tokio::sync::watch::Sender<()>,
}

/// Starts delivering the outbox on a thread of its own with its own single-threaded runtime:
/// sending is strictly in order per endpoint, so its throughput is one round trip per event,
/// and on the API's runtime a loaded server kept it queued behind request handlers (the
/// backlog grew under load). Runs until the returned handle is dropped; an attempt cut off
/// then is retried after the restart (at-least-once).
pub fn start(state: &AppState) -> Result<Running, String> {
    let outbox = Arc::new(outbox_of(state));
    let c = &state.0.config.webhooks;
    let client =
        crate::fetch::webhook_client(&c.allow_internal_hosts, Duration::from_secs(c.timeout_secs))?;
    let dispatcher =
        safeguard_webhook::dispatcher::Dispatcher::new(outbox, client, dispatcher_config(c))
            .map_err(|e| e.to_string())?;
    let notify = dispatcher.notifier();
    let counters = dispatcher.metrics_handle();
    let (stop, mut stopped) = tokio::sync::watch::channel(());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("webhook runtime: {e}"))?;
    std::thread::Builder::new()
        .name("webhooks".into())
        .spawn(move || {
            runtime.block_on(dispatcher.run(async move {
                // Err: the sender (the handle) is gone, which is the signal.
                while stopped.changed().await.is_ok() {}
            }));
        })
        .map_err(|e| format!("webhook thread: {e}"))?;
    Ok(Running {
        notify,
        counters,
        _stop: stop,
    })
}

// ------------------------------------------------------------------ routes

/// Routes needing the `admin` scope.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/webhooks", get(list).post(create))
        .route("/v1/webhooks/{id}", get(show).patch(update).delete(remove))
        .route("/v1/webhooks/{id}/secret", post(rotate_secret))
        .route("/v1/webhooks/{id}/secret/previous", delete(retire_previous))
        .route("/v1/webhooks/{id}/dead", get(dead))
        .route("/v1/webhooks/{id}/dead/redrive", post(redrive))
}

fn hook_json(w: &Webhook) -> Value {
    json!({
        "id": w.id,
        "url": w.url,
        "event_types": w.event_types,
        "enabled": w.enabled,
        "disabled_reason": w.disabled_reason,
        "failing_since": w.failing_since,
        "created_at": w.created_at,
        "updated_at": w.updated_at,
    })
}

/// The outbox of a server: its store, and its instance master key.
pub fn outbox_of(state: &AppState) -> StoreOutbox {
    let st = state.clone();
    StoreOutbox::new(
        state.0.store.clone(),
        Arc::new(move || st.0.exchanges.master_key()),
    )
    .with_lease(
        state.0.reports.owner().to_string(),
        dispatch_lease_ttl(Duration::from_secs(state.0.config.webhooks.timeout_secs)),
    )
}

/// The dispatch lease's lifetime: [`DISPATCH_LEASE_TTL`], or longer when an attempt may take
/// so long that a run (cut at [`safeguard_webhook::dispatcher::RUN_TIME_LIMIT`], plus the one
/// attempt under way) would not fit in the half left at a renewal.
fn dispatch_lease_ttl(attempt_timeout: Duration) -> Duration {
    let run = safeguard_webhook::dispatcher::RUN_TIME_LIMIT.saturating_add(attempt_timeout);
    DISPATCH_LEASE_TTL.max(
        run.saturating_mul(2)
            .saturating_add(Duration::from_secs(10)),
    )
}

// No `Debug`: it may hold a plaintext secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateReq {
    url: String,
    event_types: Vec<String>,
    secret: Option<String>,
}

fn check_types(types: &[String]) -> ApiResult<()> {
    if types.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_event_types",
            "event_types must name at least one event type, or \"*\"",
        ));
    }
    for (i, t) in types.iter().enumerate() {
        if t != "*" && !safeguard_engine::action::EVENT_TYPES.contains(&t.as_str()) {
            return Err(ApiError::bad_request(
                "invalid_event_types",
                format!(
                    "unknown event type {:?}; known: {}, or \"*\"",
                    crate::extract::short(t),
                    safeguard_engine::action::EVENT_TYPES.join(", ")
                ),
            ));
        }
        // Known and unique, so a list is at most every type plus "*": every event written
        // reads each endpoint's list, inside the transaction that writes it.
        if types[..i].contains(t) {
            return Err(ApiError::bad_request(
                "invalid_event_types",
                format!("event type {t:?} is named twice"),
            ));
        }
    }
    Ok(())
}

fn check_url(state: &AppState, url: &str) -> ApiResult<()> {
    if url.len() > MAX_URL_LEN {
        return Err(ApiError::bad_request(
            "invalid_url",
            format!("the URL is over {MAX_URL_LEN} bytes"),
        ));
    }
    crate::fetch::check_target(url, &state.0.config.webhooks.allow_internal_hosts).map_err(|e| {
        let code = e.code();
        ApiError::bad_request(code, e.to_string())
    })
}

/// A secret the caller chose (checked), or a generated one; `true` when generated, so the
/// answer shows it (once).
fn given_or_generated(given: Option<String>) -> ApiResult<(Secret, bool)> {
    match given {
        Some(s)
            if s.len() < MIN_SECRET_LEN
                || s.len() > 256
                || s.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Err(ApiError::bad_request(
                "weak_secret",
                format!(
                    "a webhook secret is {MIN_SECRET_LEN} to 256 bytes with no whitespace or \
                     control character; omit it to get a generated one"
                ),
            ))
        }
        Some(s) => Ok((Secret::new(s), false)),
        None => Ok((safeguard_webhook::signature::generate_secret(), true)),
    }
}

fn key_unavailable(e: safeguard_seal::Error) -> ApiError {
    tracing::error!(error = %e, "cannot seal or open a webhook secret");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "master_key_unavailable",
        "the master key that seals webhook secrets cannot be loaded",
    )
}

async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<crate::auth::KeyId>,
    JsonBody(req): JsonBody<CreateReq>,
) -> ApiResult<Response> {
    check_url(&state, &req.url)?;
    check_types(&req.event_types)?;
    let (secret, shown) = given_or_generated(req.secret)?;
    let sealed = outbox_of(&state)
        .seal(std::slice::from_ref(&secret))
        .map_err(key_unavailable)?;
    let store = state.0.store.clone();
    let url = req.url.clone();
    let types = req.event_types.clone();
    let st = state.clone();
    let w = blocking(move || {
        if store.webhooks()?.len() >= MAX_WEBHOOKS {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "too_many_webhooks",
                format!("at most {MAX_WEBHOOKS} webhook endpoints"),
            ));
        }
        let w = store.create_webhook(&NewWebhook {
            url,
            event_types: types,
            sealed_secret: sealed,
        })?;
        audit_change(&st, &actor.0, w.id, "webhook created");
        Ok(w)
    })
    .await?;
    let mut body = hook_json(&w);
    if shown {
        // Shown once: it is stored sealed and never returned again.
        body["secret"] = json!(secret.expose());
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let store = state.0.store.clone();
    let hooks = blocking(move || Ok(store.webhooks()?)).await?;
    Ok(Json(
        json!({"webhooks": hooks.iter().map(hook_json).collect::<Vec<_>>()}),
    ))
}

/// The endpoint, or 404 `webhook_not_found`.
fn hook_or_404(store: &dyn Store, id: i64) -> ApiResult<Webhook> {
    store.webhook(id)?.ok_or_else(|| not_found(id))
}

/// Records an operator's change to endpoint `id`, named by its id, never its URL (which can
/// carry a token).
fn audit_change(state: &AppState, actor: &str, id: i64, detail: &str) {
    state.audit_after(
        actor,
        safeguard_engine::audit::Action::ConfigChanged,
        &format!("webhook:{id}"),
        detail,
    );
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "webhook_not_found",
        format!("webhook {id} not found"),
    )
}

async fn show(State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> ApiResult<Json<Value>> {
    let store = state.0.store.clone();
    let (w, dead) = blocking(move || {
        let w = hook_or_404(store.as_ref(), id)?;
        Ok((w, store.dead_letters(id)?.len()))
    })
    .await?;
    let mut body = hook_json(&w);
    body["dead_letters"] = json!(dead);
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateReq {
    enabled: Option<bool>,
}

async fn update(
    State(state): State<AppState>,
    Extension(actor): Extension<crate::auth::KeyId>,
    ApiPath(id): ApiPath<i64>,
    JsonBody(req): JsonBody<UpdateReq>,
) -> ApiResult<Json<Value>> {
    let store = state.0.store.clone();
    let st = state.clone();
    let w = blocking(move || {
        let w = hook_or_404(store.as_ref(), id)?;
        Ok(match req.enabled {
            // Written even when the flag is already so (enabling an enabled endpoint restarts
            // its failure clock), but recorded only when the flag changed, as the store saw
            // it just before the write (the dispatcher may have disabled it since the read
            // above).
            Some(e) => {
                let (w, before) =
                    store.set_webhook_enabled(id, e, Some("disabled through the API"))?;
                if w.enabled != before {
                    audit_change(
                        &st,
                        &actor.0,
                        id,
                        if e {
                            "webhook enabled"
                        } else {
                            "webhook disabled"
                        },
                    );
                }
                w
            }
            None => w,
        })
    })
    .await?;
    if req.enabled == Some(true) {
        // Its pending deliveries are due again.
        state.notify_webhooks();
    }
    Ok(Json(hook_json(&w)))
}

// No `Debug`: it holds a plaintext secret.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateReq {
    secret: Option<String>,
}

/// Largest body of `POST /v1/webhooks/{id}/secret` (a secret is at most 256 characters).
const MAX_ROTATE_BODY_BYTES: usize = 4096;

/// The body of a rotation: none, or JSON `{}` / `{"secret": ...}` ([`optional_json`]), at
/// most [`MAX_ROTATE_BODY_BYTES`].
async fn rotate_req(headers: &HeaderMap, body: Bytes) -> ApiResult<RotateReq> {
    if body.len() > MAX_ROTATE_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("a rotation body is at most {MAX_ROTATE_BODY_BYTES} bytes"),
        ));
    }
    optional_json(headers, body).await
}

/// Opens an endpoint's secrets, current first. A master key that cannot be loaded is 503
/// `master_key_unavailable`; a sealed value the key cannot open (another key, altered
/// bytes) is 500 `webhook_secret_unreadable`; a rotation replaces such a secret.
fn open_secrets(outbox: &StoreOutbox, w: &Webhook) -> ApiResult<Vec<Secret>> {
    outbox.open_secrets(&w.sealed_secret).map_err(|e| match e {
        OpenError::Key(e) => key_unavailable(e),
        OpenError::Unreadable(_) => {
            tracing::error!(webhook = w.id, "a webhook's sealed secret cannot be opened");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "webhook_secret_unreadable",
                format!(
                    "webhook {}'s stored secret cannot be opened with this instance's master \
                     key; rotate its secret (POST /v1/webhooks/{{id}}/secret) to replace it",
                    w.id
                ),
            )
        }
    })
}

/// Replaces an endpoint's secrets with `secrets`, if its sealed value is still `seen` (what
/// the caller opened): two changes at once cannot silently lose one. 409 `webhook_changed`.
fn replace_secrets(
    store: &dyn Store,
    outbox: &StoreOutbox,
    w: &Webhook,
    secrets: &[Secret],
) -> ApiResult<Webhook> {
    let sealed = outbox.seal(secrets).map_err(key_unavailable)?;
    match store.set_webhook_secret(w.id, &w.sealed_secret, &sealed) {
        Err(safeguard_store::Error::NotFound(_)) => Err(not_found(w.id)),
        Err(safeguard_store::Error::Conflict(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "webhook_changed",
            "the endpoint's secrets changed while this request ran; read them again and retry",
        )),
        other => Ok(other?),
    }
}

/// Rotates an endpoint's signing secret: the new secret (generated unless given, shown once)
/// becomes the current one, and the secret it replaces stays as the previous one, so every
/// delivery carries a `v1=` for each until `DELETE .../secret/previous` ends the overlap.
/// An older previous secret is dropped: at most two sign at once.
async fn rotate_secret(
    State(state): State<AppState>,
    Extension(actor): Extension<crate::auth::KeyId>,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let req = rotate_req(&headers, body).await?;
    let (secret, shown) = given_or_generated(req.secret)?;
    let store = state.0.store.clone();
    let st = state.clone();
    let keep = secret.clone();
    let (w, count) = blocking(move || {
        let w = hook_or_404(store.as_ref(), id)?;
        let outbox = outbox_of(&st);
        // A stored secret this key cannot open is replaced by the new one alone: rotating is
        // how such an endpoint recovers without losing its id and dead letters.
        let (old, detail) = match open_secrets(&outbox, &w) {
            Ok(old) => (
                old,
                "webhook secret rotated (the previous secret still signs)",
            ),
            Err(e) if e.code == "webhook_secret_unreadable" => (
                Vec::new(),
                "webhook secret replaced (the stored secret could not be opened)",
            ),
            Err(e) => return Err(e),
        };
        if old.first().is_some_and(|c| c.expose() == keep.expose()) {
            return Err(ApiError::bad_request(
                "secret_unchanged",
                "that is the endpoint's current secret; give another, or none to get one",
            ));
        }
        let mut secrets = vec![keep];
        secrets.extend(old.into_iter().take(1));
        let w = replace_secrets(store.as_ref(), &outbox, &w, &secrets)?;
        audit_change(&st, &actor.0, id, detail);
        Ok((w, secrets.len()))
    })
    .await?;
    let mut body = hook_json(&w);
    body["signing_secrets"] = json!(count);
    if shown {
        body["secret"] = json!(secret.expose());
    }
    Ok(Json(body))
}

/// Ends a rotation's overlap: only the current secret signs from the next delivery on.
/// Answers 200 either way; only a change is audited.
async fn retire_previous(
    State(state): State<AppState>,
    Extension(actor): Extension<crate::auth::KeyId>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let store = state.0.store.clone();
    let st = state.clone();
    let w = blocking(move || {
        let w = hook_or_404(store.as_ref(), id)?;
        let outbox = outbox_of(&st);
        let mut secrets = open_secrets(&outbox, &w)?;
        if secrets.len() < 2 {
            return Ok(w);
        }
        secrets.truncate(1);
        let w = replace_secrets(store.as_ref(), &outbox, &w, &secrets)?;
        audit_change(&st, &actor.0, id, "webhook previous secret retired");
        Ok(w)
    })
    .await?;
    let mut body = hook_json(&w);
    body["signing_secrets"] = json!(1);
    Ok(Json(body))
}

async fn remove(
    State(state): State<AppState>,
    Extension(actor): Extension<crate::auth::KeyId>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let store = state.0.store.clone();
    let st = state.clone();
    blocking(move || match store.delete_webhook(id) {
        Err(safeguard_store::Error::NotFound(_)) => Err(not_found(id)),
        other => {
            other?;
            audit_change(&st, &actor.0, id, "webhook deleted");
            Ok(())
        }
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn dead(State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> ApiResult<Json<Value>> {
    let store = state.0.store.clone();
    let list = blocking(move || {
        hook_or_404(store.as_ref(), id)?;
        Ok(store.dead_letters(id)?)
    })
    .await?;
    Ok(Json(json!({"dead_letters": list.iter().map(|d| json!({
        "delivery_id": d.delivery_id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "attempts": d.attempts,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "first_attempt_at": d.first_attempt_at,
        "dead_at": d.dead_at,
    })).collect::<Vec<_>>()})))
}

/// Most delivery ids one redrive names (each is one update in the redrive's transaction).
const MAX_REDRIVE_IDS: usize = 1000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedriveReq {
    delivery_ids: Option<Vec<i64>>,
}

async fn redrive(
    State(state): State<AppState>,
    Extension(actor): Extension<crate::auth::KeyId>,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    // As every optional JSON body: none (or whitespace) is "all", malformed JSON is
    // `invalid_json`, a body of the wrong shape `invalid_body`.
    let req: RedriveReq = optional_json(&headers, body).await?;
    if req
        .delivery_ids
        .as_ref()
        .is_some_and(|ids| ids.len() > MAX_REDRIVE_IDS)
    {
        return Err(ApiError::bad_request(
            "too_many_delivery_ids",
            format!("at most {MAX_REDRIVE_IDS} delivery ids per redrive; omit them to redrive all"),
        ));
    }
    let store = state.0.store.clone();
    let now = now_ms();
    let st = state.clone();
    let n = blocking(
        move || match store.redrive(id, req.delivery_ids.as_deref(), now) {
            Err(safeguard_store::Error::NotFound(_)) => Err(not_found(id)),
            other => {
                let n = other?;
                // Redriving sends events again to the endpoint: an operator's decision. A
                // redrive that found nothing sent nothing, and is not recorded.
                if n > 0 {
                    audit_change(&st, &actor.0, id, &format!("{n} dead letters redriven"));
                }
                Ok(n)
            }
        },
    )
    .await?;
    state.notify_webhooks();
    Ok(Json(json!({"redriven": n})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use safeguard_store::action::NewEvent;
    use safeguard_store::SqliteStore;
    use safeguard_webhook::conformance::Seed;
    use safeguard_webhook::event::Event;

    impl Seed for StoreOutbox {
        fn add_endpoint(&self, url: &str, secrets: Vec<Secret>) -> EndpointId {
            let sealed = self.seal(&secrets).unwrap();
            let w = self
                .store
                .create_webhook(&NewWebhook {
                    url: url.into(),
                    event_types: vec!["*".into()],
                    sealed_secret: sealed,
                })
                .unwrap();
            EndpointId(w.id)
        }

        fn enqueue(&self, endpoint: EndpointId, event: &Event, now_ms: i64) -> DeliveryId {
            let body = String::from_utf8(event.to_body().unwrap()).unwrap();
            let id = self
                .store
                .enqueue_delivery(
                    endpoint.0,
                    &NewEvent {
                        id: event.id.clone(),
                        event_type: event.r#type.clone(),
                        created_at: event.created_at,
                        body,
                    },
                    now_ms,
                )
                .unwrap();
            DeliveryId(id)
        }
    }

    /// The SQLite outbox passes the dispatcher's contract, the same suite the in-memory
    /// model passes.
    #[test]
    fn sqlite_outbox_conforms() {
        let key = safeguard_seal::MasterKey::generate().unwrap();
        safeguard_webhook::conformance::run_all(&|| {
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
            let k = key.clone();
            Box::new(StoreOutbox::new(store, Arc::new(move || Ok(k.clone()))))
        });
    }

    /// Of the processes sharing a store, one dispatches: the others' passes find nothing due
    /// (nor queued) until the holder's lease runs out unrenewed; the holder renews it.
    #[test]
    fn one_process_dispatches_at_a_time() {
        let key = safeguard_seal::MasterKey::generate().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let outbox = |owner: &str| {
            let k = key.clone();
            StoreOutbox::new(store.clone(), Arc::new(move || Ok(k.clone())))
                .with_lease(owner.into(), Duration::from_millis(2_400))
        };
        let (a, b) = (outbox("a"), outbox("b"));
        let endpoint = a.add_endpoint("http://127.0.0.1:9/a", vec![Secret::new("s".repeat(32))]);
        let event = Event {
            id: "evt_1".into(),
            r#type: "case.opened".into(),
            created_at: 1,
            data: serde_json::json!({}),
        };
        a.enqueue(endpoint, &event, 1);
        let now = now_ms();
        assert_eq!(a.due(now, 10).unwrap().len(), 1);
        assert!(b.due(now, 10).unwrap().is_empty(), "a holds the lease");
        assert!(b
            .queued(endpoint, DeliveryId(0), now, 10)
            .unwrap()
            .is_empty());
        // Less than half left: a renews, to now + 3,900.
        assert_eq!(a.due(now + 1_500, 10).unwrap().len(), 1);
        assert!(b.due(now + 3_000, 10).unwrap().is_empty(), "renewed");
        // a stops renewing (a dead process): b takes over, and a, back, does not send.
        assert_eq!(b.due(now + 4_000, 10).unwrap().len(), 1);
        assert!(a.due(now + 4_000, 10).unwrap().is_empty());
        assert!(a
            .queued(endpoint, DeliveryId(0), now + 4_000, 10)
            .unwrap()
            .is_empty());
        // The lease outlasts a whole run at any attempt timeout.
        let run = safeguard_webhook::dispatcher::RUN_TIME_LIMIT;
        for timeout in [
            Duration::from_secs(1),
            Duration::from_secs(10),
            Duration::from_secs(600),
        ] {
            assert!(dispatch_lease_ttl(timeout) / 2 > run + timeout);
        }
    }

    /// An endpoint whose stored secret the key cannot open holds back its own deliveries
    /// only: the other endpoints' due deliveries still come out, and its own come back once
    /// its secret is replaced.
    #[test]
    fn an_unreadable_secret_holds_back_its_endpoint_only() {
        let key = safeguard_seal::MasterKey::generate().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let outbox = StoreOutbox::new(store.clone(), Arc::new(move || Ok(key.clone())));
        let secret = || vec![Secret::new("s".repeat(32))];
        let broken = outbox.add_endpoint("http://127.0.0.1:9/a", secret());
        let fine = outbox.add_endpoint("http://127.0.0.1:9/b", secret());
        for (i, endpoint) in [broken, fine, broken, fine].into_iter().enumerate() {
            let event = Event {
                id: format!("evt_{i}"),
                r#type: "case.opened".into(),
                created_at: 1,
                data: serde_json::json!({}),
            };
            outbox.enqueue(endpoint, &event, 1);
        }
        let sealed = store.webhook(broken.0).unwrap().unwrap().sealed_secret;
        store
            .set_webhook_secret(broken.0, &sealed, b"not a sealed value")
            .unwrap();
        let due = outbox.due(10, 100).unwrap();
        assert_eq!(
            due.iter().map(|p| p.event_id.as_str()).collect::<Vec<_>>(),
            vec!["evt_1"],
            "the other endpoint's oldest"
        );
        assert!(outbox
            .queued(broken, DeliveryId(0), 10, 100)
            .unwrap()
            .is_empty());
        assert_eq!(
            outbox.queued(fine, DeliveryId(0), 10, 100).unwrap().len(),
            2
        );
        let resealed = outbox.seal(&secret()).unwrap();
        store
            .set_webhook_secret(broken.0, b"not a sealed value", &resealed)
            .unwrap();
        assert_eq!(outbox.due(10, 100).unwrap().len(), 2);
    }

    /// A chosen secret is 24 to 256 bytes with no whitespace or control character; none
    /// given is generated (and said to be).
    #[test]
    fn chosen_secrets_are_checked_at_their_bounds() {
        let code = |s: &str| {
            given_or_generated(Some(s.to_string()))
                .err()
                .map(|e| e.code.to_string())
        };
        assert_eq!(
            code(&"a".repeat(MIN_SECRET_LEN - 1)).as_deref(),
            Some("weak_secret")
        );
        assert_eq!(code(&"a".repeat(MIN_SECRET_LEN)), None);
        assert_eq!(code(&"a".repeat(256)), None);
        assert_eq!(code(&"a".repeat(257)).as_deref(), Some("weak_secret"));
        for bad in [" ", "\t", "\n", "\u{7f}", "\u{a0}"] {
            let s = format!("{}{bad}{}", "a".repeat(12), "a".repeat(12));
            assert_eq!(code(&s).as_deref(), Some("weak_secret"), "{bad:?}");
        }
        // Bytes, not characters: 12 two-byte letters are 24 bytes.
        assert_eq!(code(&"é".repeat(12)), None);
        assert_eq!(code(&"é".repeat(11)).as_deref(), Some("weak_secret"));
        let (_, generated) = given_or_generated(None).unwrap();
        assert!(generated);
        let (_, generated) = given_or_generated(Some("b".repeat(32))).unwrap();
        assert!(!generated);
    }
}
