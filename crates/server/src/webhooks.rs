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
}

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
        }
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

    /// [`StoreOutbox::open_secrets`] for the dispatcher.
    fn secrets(&self, sealed: &[u8]) -> safeguard_webhook::Result<Vec<Secret>> {
        self.open_secrets(sealed).map_err(|e| match e {
            OpenError::Key(e) => safeguard_webhook::Error::Store(Box::new(e)),
            OpenError::Unreadable(e) => safeguard_webhook::Error::Store(e),
        })
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
        let mut opened: Vec<(i64, Vec<Secret>)> = Vec::new();
        let mut out = Vec::with_capacity(due.len());
        for d in due {
            let secrets = match opened.iter().find(|(id, _)| *id == d.webhook_id) {
                Some((_, s)) => s.clone(),
                None => {
                    let s = self.secrets(&d.sealed_secret)?;
                    opened.push((d.webhook_id, s.clone()));
                    s
                }
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
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let req: RedriveReq = if body.is_empty() {
        RedriveReq::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?
    };
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
