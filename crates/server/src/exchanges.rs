//! Hash-sharing exchanges in the server: one scheduler task per configured exchange (an
//! interval with jitter, never two runs of one exchange at once), and the `/v1/exchanges`
//! routes for status, manual runs and feedback. The clients and the run loop live in
//! `safeguard_exchange`; this module only wires them to the engine and the HTTP API.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::Rng;
use safeguard_engine::{CreateBank, Engine};
use safeguard_exchange::ncmec::{FeedbackType, NcmecClient, NcmecConfig, Vote};
use safeguard_exchange::peer::{PeerClient, PeerConfig};
use safeguard_exchange::stopncii::{FeedbackValue, StopNciiClient, StopNciiConfig};
use safeguard_exchange::{EngineSink, ExchangeSink, RunOptions, RunReport};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::{ExchangeConfig, ExchangeKind};
use crate::error::{ApiError, ApiResult, HmaError};
use crate::state::{blocking, AppState};
use crate::v1::JsonBody;

/// Shortest scheduling interval accepted, seconds: the exchanges ask for polite polling, and
/// a run holds one HTTP connection and the store's writer for each page.
pub const MIN_INTERVAL_SECS: u64 = 60;

/// Longest wait before the first scheduled run after start-up, seconds (a random share of it,
/// so that restarting many instances does not make them all call the exchange at once).
const FIRST_RUN_SPREAD_SECS: u64 = 60;

/// One configured exchange.
#[derive(Debug)]
struct Slot {
    cfg: ExchangeConfig,
    /// Held while a run is in progress: a second run waits for nothing, it is refused.
    running: Arc<tokio::sync::Mutex<()>>,
    /// The last finished run of this process.
    last: Mutex<Option<RunReport>>,
    /// When the run in progress started, Unix seconds; 0 when none is.
    running_since: AtomicI64,
}

impl Slot {
    /// Runs the exchange once, recording when the run started and its report. The caller
    /// holds `running`.
    async fn run(&self, engine: Arc<Engine>) -> RunReport {
        self.running_since
            .store(safeguard_exchange::now_secs(), Ordering::Relaxed);
        let report = run_once(&self.cfg, engine).await;
        self.running_since.store(0, Ordering::Relaxed);
        self.record(report)
    }

    /// Keeps `report` as the last run's.
    fn record(&self, report: RunReport) -> RunReport {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(report.clone());
        report
    }

    fn last_report(&self) -> Option<RunReport> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Every configured exchange.
#[derive(Debug, Default)]
pub struct Exchanges {
    slots: BTreeMap<String, Arc<Slot>>,
}

/// What a client is built into.
enum Client {
    Ncmec(NcmecClient),
    StopNcii(StopNciiClient),
    Peer(PeerClient),
}

fn secret(
    v: &Option<safeguard_exchange::Secret>,
    what: &str,
) -> Result<safeguard_exchange::Secret, safeguard_exchange::Error> {
    v.clone()
        .ok_or_else(|| safeguard_exchange::Error::Config(format!("{what} is not configured")))
}

fn build(cfg: &ExchangeConfig) -> Result<Client, safeguard_exchange::Error> {
    let bad_url = |e: url::ParseError| safeguard_exchange::Error::Config(format!("base_url: {e}"));
    let base = url::Url::parse(&cfg.base_url).map_err(bad_url)?;
    Ok(match cfg.kind {
        ExchangeKind::Ncmec => {
            let mut c = NcmecConfig::new(
                base,
                cfg.username.clone().unwrap_or_default(),
                secret(&cfg.password, "password")?,
            );
            if let Some(s) = cfg.start_from {
                c.start_from = s;
            }
            Client::Ncmec(NcmecClient::new(c)?)
        }
        ExchangeKind::StopNcii => {
            let mut c = StopNciiConfig::new(
                base,
                secret(&cfg.subscription_key, "subscription_key")?,
                secret(&cfg.fetch_function_key, "fetch_function_key")?,
            );
            c.feedback_function_key = cfg.feedback_function_key.clone();
            if let Some(p) = cfg.page_size {
                c.page_size = p;
            }
            Client::StopNcii(StopNciiClient::new(c)?)
        }
        ExchangeKind::Safeguard => {
            let mut c = PeerConfig::new(
                base,
                cfg.remote_bank.clone().unwrap_or_default(),
                secret(&cfg.api_key, "api_key")?,
            );
            if let Some(p) = cfg.page_size {
                c.page_size = p;
            }
            Client::Peer(PeerClient::new(c)?)
        }
    })
}

/// Checks that an exchange configuration builds a client (credentials present, URL valid),
/// without contacting anything.
pub fn check(cfg: &ExchangeConfig) -> Result<(), String> {
    build(cfg)
        .map(|_| ())
        .map_err(|e| format!("exchange {}: {e}", cfg.name))
}

/// Runs one exchange once into its bank (which must exist), in this task.
pub async fn run_once(cfg: &ExchangeConfig, engine: Arc<Engine>) -> RunReport {
    let sink: Arc<dyn ExchangeSink> = Arc::new(EngineSink::new(engine, cfg.bank_name()));
    let opts = RunOptions {
        max_pages: cfg
            .max_pages_per_run
            .unwrap_or(RunOptions::default().max_pages),
    };
    match build(cfg) {
        Ok(Client::Ncmec(mut c)) => safeguard_exchange::run(&cfg.name, &mut c, sink, &opts).await,
        Ok(Client::StopNcii(mut c)) => {
            safeguard_exchange::run(&cfg.name, &mut c, sink, &opts).await
        }
        Ok(Client::Peer(mut c)) => safeguard_exchange::run(&cfg.name, &mut c, sink, &opts).await,
        Err(e) => {
            let now = safeguard_exchange::now_secs();
            let msg = e.to_string();
            let (name, s) = (cfg.name.clone(), sink.clone());
            let m = msg.clone();
            let _ = tokio::task::spawn_blocking(move || {
                s.record_error(&name, &m, safeguard_exchange::now_millis())
            })
            .await;
            RunReport {
                exchange: cfg.name.clone(),
                started_at: now,
                finished_at: now,
                error_code: Some(e.code().to_string()),
                error: Some(msg),
                ..RunReport::default()
            }
        }
    }
}

/// Creates the bank of every configured exchange that lacks one.
pub fn ensure_banks(
    engine: &Engine,
    cfgs: &[ExchangeConfig],
) -> Result<(), safeguard_engine::Error> {
    for c in cfgs {
        match engine.bank(&c.bank_name()) {
            Ok(_) => {}
            Err(safeguard_engine::Error::BankNotFound(_)) => {
                match engine.create_bank(&CreateBank {
                    name: c.bank_name(),
                    ..CreateBank::default()
                }) {
                    // Start-up and a manual run may both get here first: either one wins.
                    Ok(_) | Err(safeguard_engine::Error::BankExists(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Exchanges {
    /// The registry for these configurations.
    pub fn new(cfgs: &[ExchangeConfig]) -> Exchanges {
        Exchanges {
            slots: cfgs
                .iter()
                .map(|c| {
                    (
                        c.name.clone(),
                        Arc::new(Slot {
                            cfg: c.clone(),
                            running: Arc::new(tokio::sync::Mutex::new(())),
                            last: Mutex::new(None),
                            running_since: AtomicI64::new(0),
                        }),
                    )
                })
                .collect(),
        }
    }

    /// Creates missing banks and starts one scheduler task per enabled exchange. Called once
    /// the engine is loaded. A run stopped by shutdown loses nothing: its applied pages are
    /// committed with their checkpoint.
    pub fn start(&self, engine: Arc<Engine>) {
        if self.slots.is_empty() {
            return;
        }
        let cfgs: Vec<ExchangeConfig> = self.slots.values().map(|s| s.cfg.clone()).collect();
        let slots: Vec<Arc<Slot>> = self.slots.values().cloned().collect();
        tokio::spawn(async move {
            let e = engine.clone();
            match tokio::task::spawn_blocking(move || ensure_banks(&e, &cfgs)).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::error!(error = %err, "cannot create the exchange banks; exchanges not scheduled");
                    return;
                }
                Err(err) => {
                    tracing::error!(error = %err, "exchange bank set-up failed");
                    return;
                }
            }
            for slot in slots.into_iter().filter(|s| s.cfg.enabled) {
                let engine = engine.clone();
                let running = slot.running.clone();
                tokio::spawn(schedule(slot.cfg.interval_secs, running, move || {
                    let (slot, engine) = (slot.clone(), engine.clone());
                    async move {
                        slot.run(engine).await;
                    }
                }));
            }
        });
    }

    fn slot(&self, name: &str) -> ApiResult<Arc<Slot>> {
        self.slots.get(name).cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "exchange_not_found",
                format!("exchange {name:?} is not configured"),
            )
        })
    }
}

/// Runs `run` on an exchange's schedule, forever: first after a random share of
/// [`FIRST_RUN_SPREAD_SECS`] (no more than the interval), then every `interval_secs` (at least
/// [`MIN_INTERVAL_SECS`]) plus up to 10% jitter, counted from the end of the previous run so
/// runs never overlap. While another run of the same exchange holds `running` (a manual run),
/// the scheduled one is skipped, not queued.
async fn schedule<F, Fut>(interval_secs: u64, running: Arc<tokio::sync::Mutex<()>>, mut run: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let interval = interval_secs.max(MIN_INTERVAL_SECS);
    let first = rand::rng().random_range(0..=FIRST_RUN_SPREAD_SECS.min(interval));
    tokio::time::sleep(Duration::from_secs(first)).await;
    loop {
        if let Ok(guard) = running.try_lock() {
            run().await;
            drop(guard);
        }
        // Up to 10% jitter so that exchanges started together drift apart.
        let jitter = rand::rng().random_range(0..=interval / 10);
        tokio::time::sleep(Duration::from_secs(interval + jitter)).await;
    }
}

/// Routes for the `curate` scope.
pub fn curate_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/exchanges", get(list))
        .route("/v1/exchanges/{name}", get(status))
        .route("/v1/exchanges/{name}/feedback", post(feedback))
}

/// HMA's curation routes for exchanges (`/c/exchanges...`, `/c/exchange/...`), for clients
/// written against HMA. Exchanges are read here as HMA shows them; they are configured in
/// Safeguard's configuration file (credentials in the environment), never over the API, so
/// HMA's create, update, delete and credential routes answer 501 `exchange_config_in_file`
/// (HMA's own answer to deleting an exchange is 501; a 403 here would read as a missing scope).
pub fn hma_curate_routes() -> Router<AppState> {
    Router::new()
        .route("/c/exchanges/apis", get(hma_apis))
        .route(
            "/c/exchanges/api/{name}",
            get(hma_api).post(hma_config_in_file),
        )
        .route("/c/exchanges", get(hma_list).post(hma_config_in_file))
        .route(
            "/c/exchange/{name}",
            get(hma_show)
                .put(hma_config_in_file)
                .delete(hma_config_in_file),
        )
        .route("/c/exchange/{name}/status", get(hma_status))
}

/// HMA's name for an exchange kind (python-threatexchange's `SignalExchangeAPI` names; the
/// Safeguard peer has no HMA counterpart and keeps its own).
fn hma_api_name(kind: ExchangeKind) -> &'static str {
    match kind {
        ExchangeKind::Ncmec => "ncmec",
        ExchangeKind::StopNcii => "stop_ncii",
        ExchangeKind::Safeguard => "safeguard",
    }
}

const EXCHANGE_KINDS: [ExchangeKind; 3] = [
    ExchangeKind::Ncmec,
    ExchangeKind::StopNcii,
    ExchangeKind::Safeguard,
];

/// Whether the credentials a kind needs are all configured.
fn has_credentials(cfg: &ExchangeConfig) -> bool {
    match cfg.kind {
        ExchangeKind::Ncmec => cfg.password.is_some(),
        ExchangeKind::StopNcii => {
            cfg.subscription_key.is_some() && cfg.fetch_function_key.is_some()
        }
        ExchangeKind::Safeguard => cfg.api_key.is_some(),
    }
}

fn hma_slot(state: &AppState, name: &str) -> Result<Arc<Slot>, HmaError> {
    state.0.exchanges.slots.get(name).cloned().ok_or_else(|| {
        HmaError(ApiError::new(
            StatusCode::NOT_FOUND,
            "exchange_not_found",
            format!("Exchange '{}' not found", crate::media::short(name)),
        ))
    })
}

async fn hma_apis() -> Json<Value> {
    Json(json!(EXCHANGE_KINDS.map(hma_api_name)))
}

async fn hma_api(
    State(state): State<AppState>,
    Path(api): Path<String>,
) -> Result<Json<Value>, HmaError> {
    let kind = EXCHANGE_KINDS
        .into_iter()
        .find(|k| hma_api_name(*k) == api)
        .ok_or_else(|| {
            HmaError(ApiError::bad_request(
                "unknown_exchange_api",
                format!("no such Exchange API '{}'", crate::media::short(&api)),
            ))
        })?;
    // HMA keeps one credential per API; here each configured exchange has its own, so the
    // API counts as set when every configured exchange of that kind has what it needs.
    let configured: Vec<_> = state
        .0
        .exchanges
        .slots
        .values()
        .filter(|s| s.cfg.kind == kind)
        .collect();
    Ok(Json(json!({
        "supports_authentification": true,
        "has_set_authentification":
            !configured.is_empty() && configured.iter().all(|s| has_credentials(&s.cfg)),
    })))
}

async fn hma_config_in_file() -> HmaError {
    HmaError(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "exchange_config_in_file",
        "exchanges and their credentials are set in Safeguard's configuration file \
         ([[exchanges]], credentials as SAFEGUARD_EXCHANGE_<NAME>_<FIELD>), not over the API",
    ))
}

async fn hma_list(State(state): State<AppState>) -> Json<Value> {
    Json(json!(state.0.exchanges.slots.keys().collect::<Vec<_>>()))
}

async fn hma_show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, HmaError> {
    let slot = hma_slot(&state, &name)?;
    let c = &slot.cfg;
    Ok(Json(json!({
        "name": c.name,
        "api": hma_api_name(c.kind),
        "enabled": c.enabled,
        "bank": c.bank_name(),
        "base_url": c.base_url,
        "interval_secs": c.interval_secs.max(MIN_INTERVAL_SECS),
    })))
}

/// HMA's `FetchStatus`. `checkpoint_ts` is when the last checkpoint was committed (HMA gives
/// the exchange's own progress time, which Safeguard's checkpoints do not all carry);
/// `fetched_items` is the hashes the exchange lists in its bank now.
async fn hma_status(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, HmaError> {
    let slot = hma_slot(&state, &name)?;
    let stored = stored_state(&state, name).await?;
    let secs = |ms: Option<i64>| ms.map(|v| v.div_euclid(1000));
    let success = stored.as_ref().and_then(|s| s.last_success_at);
    let error = stored.as_ref().and_then(|s| s.last_error_at);
    let last_complete = success.max(error);
    let succeeded = last_complete.map(|_| success >= error);
    let since = slot.running_since.load(Ordering::Relaxed);
    Ok(Json(json!({
        "checkpoint_ts": secs(success.filter(|_| stored.as_ref().is_some_and(|s| s.checkpoint.is_some()))),
        "running_fetch_start_ts": (since > 0).then_some(since),
        "last_fetch_complete_ts": secs(last_complete),
        "last_fetch_succeeded": succeeded,
        "up_to_date": slot.last_report().is_some_and(|r| r.caught_up && r.error.is_none()),
        "fetched_items": stored.as_ref().map(|s| s.entries).unwrap_or(0),
    })))
}

/// Routes for the `admin` scope.
pub fn admin_routes() -> Router<AppState> {
    Router::new().route("/v1/exchanges/{name}/run", post(run_now))
}

/// What the store keeps of an exchange (checkpoint, last success and error, entries); `None`
/// before its first run.
async fn stored_state(
    state: &AppState,
    name: String,
) -> ApiResult<Option<safeguard_store::ExchangeState>> {
    let engine = state.engine()?;
    blocking(move || {
        Ok(engine
            .store()
            .exchange_state(&name)
            .map_err(safeguard_engine::Error::from)?)
    })
    .await
}

async fn status_json(state: &AppState, slot: &Slot) -> ApiResult<Value> {
    let stored = stored_state(state, slot.cfg.name.clone()).await?;
    let last = slot.last_report();
    Ok(json!({
        "name": slot.cfg.name,
        "kind": slot.cfg.kind.name(),
        "bank": slot.cfg.bank_name(),
        "enabled": slot.cfg.enabled,
        "interval_secs": slot.cfg.interval_secs.max(MIN_INTERVAL_SECS),
        "running": slot.running.try_lock().is_err(),
        "checkpoint": stored.as_ref().and_then(|s| s.checkpoint.clone()),
        "entries": stored.as_ref().map(|s| s.entries).unwrap_or(0),
        "last_success_at": stored.as_ref().and_then(|s| s.last_success_at),
        "last_error": stored.as_ref().and_then(|s| s.last_error.clone()),
        "last_error_at": stored.as_ref().and_then(|s| s.last_error_at),
        "last_run": last,
    }))
}

async fn list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let mut out = Vec::new();
    for slot in state.0.exchanges.slots.values() {
        out.push(status_json(&state, slot).await?);
    }
    Ok(Json(json!({ "exchanges": out })))
}

async fn status(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let slot = state.0.exchanges.slot(&name)?;
    Ok(Json(status_json(&state, &slot).await?))
}

#[derive(Debug, Deserialize)]
struct RunQuery {
    /// Answer with the run's report once it finishes (else 202 at once).
    #[serde(default)]
    wait: bool,
}

async fn run_now(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<RunQuery>,
) -> ApiResult<Response> {
    let slot = state.0.exchanges.slot(&name)?;
    let engine = state.engine()?;
    let guard = slot.running.clone().try_lock_owned().map_err(|_| {
        ApiError::new(
            StatusCode::CONFLICT,
            "exchange_busy",
            format!("exchange {name:?} is already running"),
        )
    })?;
    let s = slot.clone();
    // The run goes on in its own task even if this request is dropped (a timeout, a client
    // that hangs up): its pages are committed one by one and it ends by itself.
    let task = tokio::spawn(async move {
        let cfgs = [s.cfg.clone()];
        let e = engine.clone();
        let failed = |code: String, error: String| RunReport {
            exchange: s.cfg.name.clone(),
            error_code: Some(code),
            error: Some(error),
            ..RunReport::default()
        };
        let report = match tokio::task::spawn_blocking(move || ensure_banks(&e, &cfgs)).await {
            Ok(Ok(())) => s.run(engine).await,
            Ok(Err(err)) => s.record(failed(err.code().to_string(), err.to_string())),
            Err(err) => s.record(failed("internal_error".into(), err.to_string())),
        };
        drop(guard);
        report
    });
    if q.wait {
        let report = task.await?;
        return Ok(Json(json!({ "started": true, "report": report })).into_response());
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "started": true }))).into_response())
}

/// A feedback request; which fields apply depends on the exchange's kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackReq {
    /// NCMEC: the entry id (without the member prefix).
    entry_id: Option<String>,
    /// NCMEC: the fingerprint type (`md5`, `sha1`, `pdq`, `pdna`, ...).
    fingerprint: Option<String>,
    /// NCMEC: `affirmative` or `negative`.
    vote: Option<String>,
    /// NCMEC: the reason GUID of a negative vote.
    reason: Option<String>,
    /// StopNCII: the hash value.
    hash_value: Option<String>,
    /// StopNCII: `Blocked`, `NotBlocked`, `PendingReview`, `QualityUnknown` or `None`.
    feedback: Option<String>,
    /// StopNCII: free tags.
    #[serde(default)]
    tags: Vec<String>,
}

fn missing(field: &str) -> ApiError {
    ApiError::bad_request("invalid_request", format!("{field} is required"))
}

fn exchange_error(e: safeguard_exchange::Error) -> ApiError {
    use safeguard_exchange::Error as E;
    let status = match &e {
        E::Invalid(_) | E::Config(_) => StatusCode::BAD_REQUEST,
        E::Sink(_) => return ApiError::internal(e),
        _ => StatusCode::BAD_GATEWAY,
    };
    ApiError::new(status, e.code(), e.to_string())
}

async fn feedback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<FeedbackReq>,
) -> ApiResult<Json<Value>> {
    let slot = state.0.exchanges.slot(&name)?;
    match build(&slot.cfg).map_err(exchange_error)? {
        Client::Ncmec(c) => {
            let entry = req.entry_id.ok_or_else(|| missing("entry_id"))?;
            let fp = req.fingerprint.ok_or_else(|| missing("fingerprint"))?;
            let t = FeedbackType::parse(&fp).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_request",
                    format!("unknown fingerprint type {fp:?}"),
                )
            })?;
            let vote = match req.vote.as_deref() {
                Some("affirmative") => Vote::Affirmative,
                Some("negative") => Vote::Negative {
                    reason: req.reason.ok_or_else(|| missing("reason"))?,
                },
                _ => {
                    return Err(ApiError::bad_request(
                        "invalid_request",
                        "vote must be \"affirmative\" or \"negative\"",
                    ))
                }
            };
            c.submit_feedback(&entry, t, &vote)
                .await
                .map_err(exchange_error)?;
        }
        Client::StopNcii(c) => {
            let hash = req.hash_value.ok_or_else(|| missing("hash_value"))?;
            let fb = req.feedback.ok_or_else(|| missing("feedback"))?;
            let value = FeedbackValue::parse(&fb).ok_or_else(|| {
                ApiError::bad_request("invalid_request", format!("unknown feedback value {fb:?}"))
            })?;
            c.submit_feedback(&hash, value, &req.tags)
                .await
                .map_err(exchange_error)?;
        }
        Client::Peer(_) => {
            return Err(ApiError::bad_request(
                "unsupported_feature",
                "a Safeguard peer exchange takes no feedback",
            ))
        }
    }
    Ok(Json(json!({ "sent": true })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    /// Spawns the scheduler with a run that records when it started and takes `run_secs`.
    fn spawn_recording(
        interval_secs: u64,
        running: Arc<tokio::sync::Mutex<()>>,
        run_secs: u64,
    ) -> (tokio::task::JoinHandle<()>, Arc<Mutex<Vec<Instant>>>) {
        let starts = Arc::new(Mutex::new(Vec::new()));
        let recorded = starts.clone();
        let task = tokio::spawn(schedule(interval_secs, running, move || {
            let recorded = recorded.clone();
            async move {
                recorded.lock().unwrap().push(Instant::now());
                tokio::time::sleep(Duration::from_secs(run_secs)).await;
            }
        }));
        (task, starts)
    }

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    // The clock is tokio's paused test clock: sleeps complete instantly, in order, and
    // `Instant::now()` reads the virtual time.
    #[tokio::test(start_paused = true)]
    async fn runs_follow_the_interval_with_jitter_and_never_overlap() {
        let t0 = Instant::now();
        let running = Arc::new(tokio::sync::Mutex::new(()));
        let (task, starts) = spawn_recording(100, running, 7);
        tokio::time::sleep(Duration::from_secs(60 + 20 * 117 + 1)).await;
        let starts = starts.lock().unwrap().clone();
        task.abort();
        assert!(starts.len() >= 20, "{} runs", starts.len());
        // First run within the start-up spread.
        assert!(
            secs(starts[0] - t0) <= 60.0,
            "first run at {:?}",
            starts[0] - t0
        );
        // Then: the 7 s run, then 100 s plus up to 10 s of jitter.
        let gaps: Vec<f64> = starts.windows(2).map(|w| secs(w[1] - w[0])).collect();
        for g in &gaps {
            assert!((107.0..=117.0).contains(g), "gap {g} s");
        }
        // The jitter is not constant (20 draws from 0..=10 all equal has odds of 11^-19).
        assert!(gaps.iter().any(|g| *g != gaps[0]), "no jitter: {gaps:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn short_intervals_are_raised_to_the_minimum() {
        let running = Arc::new(tokio::sync::Mutex::new(()));
        let (task, starts) = spawn_recording(1, running, 0);
        tokio::time::sleep(Duration::from_secs(60 + 10 * 66 + 1)).await;
        let starts = starts.lock().unwrap().clone();
        task.abort();
        assert!(starts.len() >= 10, "{} runs", starts.len());
        for w in starts.windows(2) {
            let g = secs(w[1] - w[0]);
            assert!(
                (MIN_INTERVAL_SECS as f64..=66.0).contains(&g),
                "gap {g} s under a 1 s interval"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_in_progress_makes_the_scheduled_one_skip_not_queue() {
        let running = Arc::new(tokio::sync::Mutex::new(()));
        let (task, starts) = spawn_recording(100, running.clone(), 0);
        // Let the first scheduled run happen.
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(starts.lock().unwrap().len(), 1);
        // A manual run holds the lock across three scheduled slots.
        let guard = running.lock().await;
        tokio::time::sleep(Duration::from_secs(3 * 110 + 1)).await;
        assert_eq!(
            starts.lock().unwrap().len(),
            1,
            "ran while another run held the lock"
        );
        let released = Instant::now();
        drop(guard);
        // Runs resume at the next slot, and the skipped ones are not made up: no burst of
        // catch-up runs, the interval holds.
        tokio::time::sleep(Duration::from_secs(250)).await;
        let after: Vec<Instant> = starts.lock().unwrap()[1..].to_vec();
        assert!(!after.is_empty(), "runs did not resume");
        assert!(after[0] > released && secs(after[0] - released) <= 110.0);
        for w in after.windows(2) {
            assert!(secs(w[1] - w[0]) >= 100.0, "catch-up run");
        }
        task.abort();
    }
}
