//! Hash-sharing exchanges in the server: one scheduler task per configured exchange (an
//! interval with jitter, never two runs of one exchange at once), and the `/v1/exchanges`
//! routes for status, manual runs and feedback, and HMA's `/c/exchange...` routes, which also
//! create, edit and delete exchanges kept in the store (credentials sealed with the master
//! key, `safeguard_seal`). The clients and the run loop live in `safeguard_exchange`; this
//! module only wires them to the engine, the store and the HTTP API.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use rand::Rng;
use safeguard_engine::{CreateBank, Engine};
use safeguard_exchange::ncmec::{FeedbackType, Vote};
use safeguard_exchange::stopncii::FeedbackValue;
use safeguard_exchange::{
    Batch, Client, EngineSink, ExchangeConfig, ExchangeKind, ExchangeSink, Held, Outcome,
    RunOptions, RunReport,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult, HmaError};
use crate::extract::{short, ApiPath, ApiQuery, JsonBody};
use crate::state::{blocking, AppState};

/// Shortest scheduling interval accepted, seconds: the exchanges ask for polite polling, and
/// a run holds one HTTP connection and the store's writer for each page.
pub const MIN_INTERVAL_SECS: u64 = 60;

/// Longest wait before the first scheduled run after start-up, seconds (a random share of it,
/// so that restarting many instances does not make them all call the exchange at once).
const FIRST_RUN_SPREAD_SECS: u64 = 60;

/// Where an exchange's configuration lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// An `[[exchanges]]` table: read-only through the API.
    File,
    /// Created through the API (`POST /c/exchanges`) and kept in the store, credentials sealed.
    Api,
}

impl Origin {
    fn name(self) -> &'static str {
        match self {
            Origin::File => "config_file",
            Origin::Api => "api",
        }
    }
}

/// One exchange.
#[derive(Debug)]
struct Slot {
    cfg: ExchangeConfig,
    origin: Origin,
    /// Held while a run is in progress: a second run waits for nothing, it is refused. Shared
    /// with the slot that replaces this one when the exchange is edited.
    running: Arc<tokio::sync::Mutex<()>>,
    /// The last finished run of this process.
    last: Mutex<Option<RunReport>>,
    /// When the run in progress started, Unix seconds; 0 when none is.
    running_since: AtomicI64,
    /// The scheduler task, while one runs for this exchange.
    scheduled: Mutex<Option<tokio::task::AbortHandle>>,
    /// Why the stored credentials could not be opened (the master key changed), if so: every
    /// run then fails with this, code `master_key_mismatch`, and nothing is fetched.
    sealed_error: Option<String>,
}

impl Slot {
    fn new(cfg: ExchangeConfig, origin: Origin) -> Slot {
        Slot {
            cfg,
            origin,
            running: Arc::new(tokio::sync::Mutex::new(())),
            last: Mutex::new(None),
            running_since: AtomicI64::new(0),
            scheduled: Mutex::new(None),
            sealed_error: None,
        }
    }

    /// Runs the exchange once, recording when the run started and its report, then calls
    /// `hook` with it. The caller holds `running`.
    async fn run(&self, engine: Arc<Engine>, hook: Option<RunHook>) -> RunReport {
        let report = if let Some(e) = &self.sealed_error {
            failed_run(&self.cfg, engine, MASTER_KEY_MISMATCH, e.clone()).await
        } else {
            let started_at = safeguard_engine::now_secs();
            self.running_since.store(started_at, Ordering::Relaxed);
            // Until the run ends, a guard holds what its pages changed: a run stopped midway
            // (the server shutting down, its exchange deleted) still reports those changes,
            // which are committed, to the hook as it is dropped.
            let tally = Arc::new(Tally::default());
            let mut stopped = StoppedRun {
                cfg: &self.cfg,
                tally: tally.clone(),
                hook: hook.clone(),
                started_at,
            };
            let report = run_once_tallied(&self.cfg, engine, Some(tally)).await;
            stopped.hook = None;
            self.running_since.store(0, Ordering::Relaxed);
            report
        };
        let report = self.record(report);
        if let Some(h) = hook {
            h(&self.cfg, &report);
        }
        report
    }

    /// Keeps `report` as the last run's.
    fn record(&self, report: RunReport) -> RunReport {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(report.clone());
        report
    }

    fn last_report(&self) -> Option<RunReport> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn is_scheduled(&self) -> bool {
        self.scheduled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Stops the scheduler task, if one runs. A run in progress stops at its next await; every
    /// page it applied is committed with its checkpoint, as at shutdown.
    fn unschedule(&self) {
        if let Some(h) = self
            .scheduled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            h.abort();
        }
    }
}

/// Stable code of a run refused because stored credentials do not open with the master key.
pub const MASTER_KEY_MISMATCH: &str = "master_key_mismatch";

/// Every exchange: those of the configuration file and those created through the API.
#[derive(Default)]
pub struct Exchanges {
    slots: RwLock<BTreeMap<String, Arc<Slot>>>,
    /// Where the master key comes from (for the credentials of API-created exchanges).
    secrets: crate::config::SecretsConfig,
    /// The data directory, home of the default key file.
    data_dir: std::path::PathBuf,
    /// The master key, once loaded.
    key: Mutex<Option<safeguard_seal::MasterKey>>,
    /// Called after every run, scheduled or manual (the server audits the bank changes).
    run_hook: std::sync::OnceLock<RunHook>,
}

/// What [`Exchanges::set_run_hook`] takes: the exchange's configuration and its run's report.
pub type RunHook = Arc<dyn Fn(&ExchangeConfig, &RunReport) + Send + Sync>;

/// Stable code of a run stopped before it ended (the server shutting down, or its exchange
/// deleted or changed): the pages it applied are committed with their checkpoint, and
/// reported to the run hook (so audited) as it stops.
pub const RUN_STOPPED: &str = "run_stopped";

/// What a run's pages changed so far, page by page.
#[derive(Debug, Default)]
struct Tally {
    pages: AtomicU64,
    added: AtomicU64,
    refreshed: AtomicU64,
    removed: AtomicU64,
    unchanged: AtomicU64,
}

/// A sink that counts what the pages it applies change.
#[derive(Debug)]
struct TallySink {
    inner: Arc<dyn ExchangeSink>,
    tally: Arc<Tally>,
}

impl ExchangeSink for TallySink {
    fn checkpoint(&self, exchange: &str) -> safeguard_exchange::Result<Option<String>> {
        self.inner.checkpoint(exchange)
    }

    fn held(&self, exchange: &str) -> safeguard_exchange::Result<Vec<Held>> {
        self.inner.held(exchange)
    }

    fn apply(&self, exchange: &str, batch: &Batch<'_>) -> safeguard_exchange::Result<Outcome> {
        let o = self.inner.apply(exchange, batch)?;
        let t = &self.tally;
        t.pages.fetch_add(1, Ordering::Relaxed);
        t.added.fetch_add(o.added, Ordering::Relaxed);
        t.refreshed.fetch_add(o.refreshed, Ordering::Relaxed);
        t.removed.fetch_add(o.removed, Ordering::Relaxed);
        t.unchanged.fetch_add(o.unchanged, Ordering::Relaxed);
        Ok(o)
    }

    fn record_error(
        &self,
        exchange: &str,
        message: &str,
        at: i64,
    ) -> safeguard_exchange::Result<()> {
        self.inner.record_error(exchange, message, at)
    }
}

/// Held by a run in progress; dropped with a hook still in it, the run was stopped midway,
/// and the hook gets a [`RUN_STOPPED`] report of what its pages changed.
struct StoppedRun<'a> {
    cfg: &'a ExchangeConfig,
    tally: Arc<Tally>,
    hook: Option<RunHook>,
    started_at: i64,
}

impl Drop for StoppedRun<'_> {
    fn drop(&mut self) {
        let Some(hook) = self.hook.take() else {
            return;
        };
        let t = &self.tally;
        let pages = t.pages.load(Ordering::Relaxed);
        if pages == 0 {
            return;
        }
        let report = RunReport {
            exchange: self.cfg.name.clone(),
            started_at: self.started_at,
            finished_at: safeguard_engine::now_secs(),
            pages,
            outcome: Outcome {
                added: t.added.load(Ordering::Relaxed),
                refreshed: t.refreshed.load(Ordering::Relaxed),
                removed: t.removed.load(Ordering::Relaxed),
                unchanged: t.unchanged.load(Ordering::Relaxed),
            },
            error_code: Some(RUN_STOPPED.into()),
            error: Some("the run was stopped before it ended; its applied pages are kept".into()),
            ..RunReport::default()
        };
        hook(self.cfg, &report);
    }
}

/// Runs one exchange once into its bank (which must exist), in this task.
pub async fn run_once(cfg: &ExchangeConfig, engine: Arc<Engine>) -> RunReport {
    run_once_tallied(cfg, engine, None).await
}

/// [`run_once`], counting what each applied page changes into `tally`.
async fn run_once_tallied(
    cfg: &ExchangeConfig,
    engine: Arc<Engine>,
    tally: Option<Arc<Tally>>,
) -> RunReport {
    let mut sink: Arc<dyn ExchangeSink> =
        Arc::new(EngineSink::new(engine.clone(), cfg.bank_name()));
    if let Some(tally) = tally {
        sink = Arc::new(TallySink { inner: sink, tally });
    }
    let opts = RunOptions {
        max_pages: cfg
            .max_pages_per_run
            .unwrap_or(RunOptions::default().max_pages),
    };
    match cfg.client() {
        Ok(Client::Ncmec(mut c)) => safeguard_exchange::run(&cfg.name, &mut c, sink, &opts).await,
        Ok(Client::StopNcii(mut c)) => {
            safeguard_exchange::run(&cfg.name, &mut c, sink, &opts).await
        }
        Ok(Client::Peer(mut c)) => safeguard_exchange::run(&cfg.name, &mut c, sink, &opts).await,
        Err(e) => failed_run(cfg, engine, e.code(), e.to_string()).await,
    }
}

/// A run that failed before it started: the error is recorded in the store and reported.
async fn failed_run(
    cfg: &ExchangeConfig,
    engine: Arc<Engine>,
    code: &str,
    msg: String,
) -> RunReport {
    let now = safeguard_engine::now_secs();
    let sink: Arc<dyn ExchangeSink> = Arc::new(EngineSink::new(engine, cfg.bank_name()));
    let (name, m) = (cfg.name.clone(), msg.clone());
    let _ = tokio::task::spawn_blocking(move || {
        sink.record_error(&name, &m, safeguard_engine::now_ms())
    })
    .await;
    RunReport {
        exchange: cfg.name.clone(),
        started_at: now,
        finished_at: now,
        error_code: Some(code.to_string()),
        error: Some(msg),
        ..RunReport::default()
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

impl std::fmt::Debug for Exchanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchanges")
            .field("names", &self.names())
            .finish_non_exhaustive()
    }
}

impl Exchanges {
    /// Sets what runs after every exchange run (once; later calls are ignored).
    pub fn set_run_hook(&self, hook: RunHook) {
        let _ = self.run_hook.set(hook);
    }

    fn run_hook(&self) -> Option<RunHook> {
        self.run_hook.get().cloned()
    }

    /// The registry for these configurations (no API-created exchanges; the master key, if
    /// one is ever needed, from `<data_dir>` defaults).
    pub fn new(cfgs: &[ExchangeConfig]) -> Exchanges {
        Exchanges {
            slots: RwLock::new(
                cfgs.iter()
                    .map(|c| (c.name.clone(), Arc::new(Slot::new(c.clone(), Origin::File))))
                    .collect(),
            ),
            ..Exchanges::default()
        }
    }

    /// The registry of a configuration: its `[[exchanges]]`, and the master key settings for
    /// those created through the API (loaded from the store by [`Exchanges::start`]).
    pub fn from_config(config: &crate::config::Config) -> Exchanges {
        Exchanges {
            secrets: config.secrets.clone(),
            data_dir: config.data_dir.clone(),
            ..Exchanges::new(&config.exchanges)
        }
    }

    /// The master key, loaded (or its file created) on first use. Blocking file I/O.
    /// The instance master key (loaded once).
    pub(crate) fn master_key(&self) -> Result<safeguard_seal::MasterKey, safeguard_seal::Error> {
        let mut held = self.key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = &*held {
            return Ok(k.clone());
        }
        let k = match (&self.secrets.master_key, &self.secrets.master_key_file) {
            (Some(v), _) => {
                safeguard_seal::MasterKey::from_hex(v.expose(), safeguard_seal::ENV_VAR)?
            }
            (None, Some(path)) => safeguard_seal::MasterKey::load_or_create(path)?,
            (None, None) => safeguard_seal::MasterKey::resolve(None, &self.data_dir)?,
        };
        *held = Some(k.clone());
        Ok(k)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Slot>>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Slot>>> {
        self.slots.write().unwrap_or_else(|p| p.into_inner())
    }

    fn all(&self) -> Vec<Arc<Slot>> {
        self.read().values().cloned().collect()
    }

    fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    fn get(&self, name: &str) -> Option<Arc<Slot>> {
        self.read().get(name).cloned()
    }

    /// Registers the exchanges created through the API (read from the store, their
    /// credentials opened with the master key), creates missing banks and starts one scheduler
    /// task per enabled exchange. Called once the engine is loaded. A run stopped by shutdown
    /// loses nothing: its applied pages are committed with their checkpoint.
    pub fn start(&self, engine: Arc<Engine>) {
        // One small read at start-up, before any request can create an exchange.
        match engine.store().list_stored_exchanges() {
            Ok(stored) => {
                let mut slots = self.write();
                for x in stored {
                    if slots.contains_key(&x.name) {
                        tracing::error!(
                            exchange = %x.name,
                            "an exchange created through the API has the name of one in the \
                             configuration file; the file's is used"
                        );
                        continue;
                    }
                    let slot = self.unseal(&x);
                    slots.insert(x.name.clone(), Arc::new(slot));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the exchanges created through the API")
            }
        }
        let slots = self.all();
        if slots.is_empty() {
            return;
        }
        let cfgs: Vec<ExchangeConfig> = slots.iter().map(|s| s.cfg.clone()).collect();
        let hook = self.run_hook();
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
            for slot in slots {
                schedule_slot(&slot, engine.clone(), hook.clone());
            }
        });
    }

    /// The slot of a stored exchange. Credentials that do not open leave the slot without
    /// them and with `sealed_error` set, so the exchange is listed and its runs fail clearly.
    fn unseal(&self, x: &safeguard_store::StoredExchange) -> Slot {
        let opened = match &x.sealed_credentials {
            None => Ok(Map::new()),
            Some(sealed) => self
                .master_key()
                .and_then(|k| k.open(sealed, &seal_context(&x.name)))
                .map_err(|e| e.to_string())
                .and_then(|plain| {
                    serde_json::from_slice::<Map<String, Value>>(&plain)
                        .map_err(|_| "the stored credentials are not a JSON object".to_string())
                }),
        };
        let settings = serde_json::from_str::<Map<String, Value>>(&x.settings)
            .map_err(|e| format!("stored settings: {e}"));
        let (creds, sealed_error) = match opened {
            Ok(c) => (c, None),
            Err(e) => {
                tracing::error!(exchange = %x.name, code = MASTER_KEY_MISMATCH, error = %e, "cannot open the stored credentials of an exchange");
                (Map::new(), Some(e))
            }
        };
        let kind = hma_kind(&x.kind);
        let cfg = settings.and_then(|s| {
            let kind = kind.ok_or_else(|| format!("unknown kind {:?}", x.kind))?;
            exchange_config(&x.name, kind, s, creds)
        });
        match cfg {
            Ok(cfg) => Slot {
                sealed_error,
                ..Slot::new(cfg, Origin::Api)
            },
            Err(e) => {
                tracing::error!(exchange = %x.name, error = %e, "stored exchange unusable");
                // Listed, never scheduled, and every run says why.
                let cfg = ExchangeConfig {
                    name: x.name.clone(),
                    kind: kind.unwrap_or(ExchangeKind::Safeguard),
                    bank: None,
                    base_url: String::new(),
                    enabled: false,
                    interval_secs: safeguard_exchange::DEFAULT_EXCHANGE_INTERVAL_SECS,
                    username: None,
                    password: None,
                    subscription_key: None,
                    fetch_function_key: None,
                    feedback_function_key: None,
                    api_key: None,
                    remote_bank: None,
                    page_size: None,
                    start_from: None,
                    max_pages_per_run: None,
                    false_positive_feedback: None,
                };
                Slot {
                    sealed_error: Some(sealed_error.unwrap_or(e)),
                    ..Slot::new(cfg, Origin::Api)
                }
            }
        }
    }

    /// The configuration of every exchange that sends false-positive feedback by itself
    /// (`false_positive_feedback` set, credentials open).
    pub(crate) fn feedback_senders(&self) -> Vec<ExchangeConfig> {
        self.all()
            .into_iter()
            .filter(|s| s.sealed_error.is_none() && s.cfg.false_positive_feedback.is_some())
            .map(|s| s.cfg.clone())
            .collect()
    }

    /// Whether an exchange of this name exists (`exchange_not_found` if not).
    pub(crate) fn require(&self, name: &str) -> ApiResult<()> {
        self.slot(name).map(|_| ())
    }

    fn slot(&self, name: &str) -> ApiResult<Arc<Slot>> {
        self.get(name).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "exchange_not_found",
                format!("exchange {name:?} is not configured"),
            )
        })
    }
}

/// Starts the scheduler task of an enabled exchange (a disabled one can still be run by hand).
fn schedule_slot(slot: &Arc<Slot>, engine: Arc<Engine>, hook: Option<RunHook>) {
    if !slot.cfg.enabled || slot.sealed_error.is_some() {
        return;
    }
    let running = slot.running.clone();
    let s = slot.clone();
    let task = tokio::spawn(schedule(slot.cfg.interval_secs, running, move || {
        let (slot, engine, hook) = (s.clone(), engine.clone(), hook.clone());
        async move {
            slot.run(engine, hook).await;
        }
    }));
    *slot.scheduled.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.abort_handle());
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

/// The audit entries of an exchange run: the hashes it brought into its bank (`bank_import`)
/// and took out (`bank_withdrawal`), by `exchange:NAME`. Details refreshed on hashes already
/// held change nothing that matches, and most runs refresh some, so a run that only refreshed
/// writes nothing (an hourly schedule would otherwise fill the log); an import's entry names
/// the refreshes of its own run. A failed run's applied pages count like any others (they are
/// committed).
pub fn audit_run(state: &AppState, cfg: &ExchangeConfig, report: &RunReport) {
    let actor = format!("exchange:{}", cfg.name);
    let object = format!("bank:{}", cfg.bank_name());
    for (action, detail) in run_audit_entries(report) {
        state.audit_after(&actor, action, &object, &detail);
    }
}

/// The audit entries of a run: what it added (`bank_import`) and what it took out
/// (`bank_withdrawal`); none for a run that changed nothing that matches. Shared by the
/// server's runs and `safeguard exchange run`.
pub fn run_audit_entries(report: &RunReport) -> Vec<(safeguard_engine::audit::Action, String)> {
    let o = report.outcome;
    let run = if report.error_code.as_deref() == Some(RUN_STOPPED) {
        "exchange run stopped"
    } else {
        "exchange run"
    };
    let mut entries = Vec::new();
    if o.added > 0 {
        entries.push((
            safeguard_engine::audit::Action::BankImport,
            format!(
                "{run}: {} added, {} refreshed, {} pages",
                o.added, o.refreshed, report.pages
            ),
        ));
    }
    if o.removed > 0 {
        entries.push((
            safeguard_engine::audit::Action::BankWithdrawal,
            format!("{run}: {} removed", o.removed),
        ));
    }
    entries
}

/// Routes for the `curate` scope.
pub fn curate_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/exchanges", get(list))
        .route("/v1/exchanges/{name}", get(status))
        .route(
            "/v1/exchanges/{name}/feedback",
            get(crate::source_feedback::list).post(feedback),
        )
        .route(
            "/v1/exchanges/{name}/feedback/retry",
            post(crate::source_feedback::retry),
        )
}

/// HMA's curation routes for exchanges (`/c/exchanges...`, `/c/exchange/...`), for clients
/// written against HMA. Exchanges created here are kept in the store with their credentials
/// sealed by the master key, and scheduled like those of the configuration file; the file's
/// stay read-only here (409 `exchange_config_in_file`). HMA's per-API credential route
/// answers 501: Safeguard keeps credentials per exchange, given in `api_json`.
pub fn hma_curate_routes() -> Router<AppState> {
    Router::new()
        .route("/c/exchanges/apis", get(hma_apis))
        .route(
            "/c/exchanges/api/{name}",
            get(hma_api).post(hma_api_credentials),
        )
        .route("/c/exchanges", get(hma_list).post(hma_create))
        .route(
            "/c/exchange/{name}",
            get(hma_show).put(hma_update).delete(hma_delete),
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

/// The kind of an HMA API name, or of a configuration kind name.
fn hma_kind(name: &str) -> Option<ExchangeKind> {
    EXCHANGE_KINDS
        .into_iter()
        .find(|k| hma_api_name(*k) == name || k.name() == name)
}

const EXCHANGE_KINDS: [ExchangeKind; 3] = [
    ExchangeKind::Ncmec,
    ExchangeKind::StopNcii,
    ExchangeKind::Safeguard,
];

/// The fields of an exchange's settings that are credentials: sealed at rest, never shown.
/// (`username` is not secret, as in the configuration file.)
const CREDENTIAL_FIELDS: [&str; 5] = [
    "password",
    "subscription_key",
    "fetch_function_key",
    "feedback_function_key",
    "api_key",
];

/// Associated data of an exchange's sealed credentials: they open only for that name.
fn seal_context(name: &str) -> Vec<u8> {
    format!("safeguard/exchange-credentials/v1/{name}").into_bytes()
}

/// An exchange configuration from stored or requested settings and credentials, checked as
/// the configuration file's are (names, URL, every credential the kind needs).
fn exchange_config(
    name: &str,
    kind: ExchangeKind,
    settings: Map<String, Value>,
    credentials: Map<String, Value>,
) -> Result<ExchangeConfig, String> {
    let mut all = settings;
    all.extend(credentials);
    all.insert("name".into(), json!(name));
    all.insert("kind".into(), json!(kind.name()));
    let cfg: ExchangeConfig =
        serde_json::from_value(Value::Object(all)).map_err(|e| e.to_string())?;
    safeguard_engine::validate_bank_name(&cfg.name)
        .and_then(|_| safeguard_engine::validate_bank_name(&cfg.bank_name()))
        .map_err(|e| e.to_string())?;
    cfg.check().map_err(|e| e.to_string())?;
    Ok(cfg)
}

/// An exchange's settings and its credentials, as JSON objects.
type SettingsAndCredentials = (Map<String, Value>, Map<String, Value>);

/// Splits an `api_json` object into settings and credentials; a credential must be a string
/// (and is never echoed in an error).
fn split_api_json(api_json: Map<String, Value>) -> Result<SettingsAndCredentials, HmaError> {
    let mut settings = Map::new();
    let mut creds = Map::new();
    for (k, v) in api_json {
        if CREDENTIAL_FIELDS.contains(&k.as_str()) {
            if !v.is_string() {
                return Err(hma_error(
                    StatusCode::BAD_REQUEST,
                    "exchange_config",
                    format!("Failed to parse `api_json` - {k} must be a string"),
                ));
            }
            creds.insert(k, v);
        } else if matches!(k.as_str(), "name" | "api" | "kind") {
            // HMA's create overwrites these from the request; so does Safeguard.
        } else {
            settings.insert(k, v);
        }
    }
    Ok((settings, creds))
}

fn hma_error(status: StatusCode, code: &'static str, message: impl Into<String>) -> HmaError {
    HmaError(ApiError::new(status, code, message))
}

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
    state.0.exchanges.get(name).ok_or_else(|| {
        hma_error(
            StatusCode::NOT_FOUND,
            "exchange_not_found",
            format!("Exchange '{}' not found", short(name)),
        )
    })
}

fn in_file(name: &str) -> HmaError {
    hma_error(
        StatusCode::CONFLICT,
        "exchange_config_in_file",
        format!(
            "exchange '{}' is set in Safeguard's configuration file ([[exchanges]]); edit it \
             there, or create exchanges through POST /c/exchanges to manage them here",
            short(name)
        ),
    )
}

async fn hma_apis() -> Json<Value> {
    Json(json!(EXCHANGE_KINDS.map(hma_api_name)))
}

async fn hma_api(
    State(state): State<AppState>,
    ApiPath(api): ApiPath<String>,
) -> Result<Json<Value>, HmaError> {
    let kind = EXCHANGE_KINDS
        .into_iter()
        .find(|k| hma_api_name(*k) == api)
        .ok_or_else(|| {
            HmaError(ApiError::bad_request(
                "unknown_exchange_api",
                format!("no such Exchange API '{}'", short(&api)),
            ))
        })?;
    // HMA keeps one credential per API; here each exchange has its own, so the API counts as
    // set when every exchange of that kind has what it needs.
    let of_kind: Vec<_> = state
        .0
        .exchanges
        .all()
        .into_iter()
        .filter(|s| s.cfg.kind == kind)
        .collect();
    Ok(Json(json!({
        "supports_authentification": true,
        "has_set_authentification":
            !of_kind.is_empty() && of_kind.iter().all(|s| has_credentials(&s.cfg)),
    })))
}

async fn hma_api_credentials() -> HmaError {
    hma_error(
        StatusCode::NOT_IMPLEMENTED,
        "exchange_config_in_file",
        "Safeguard keeps credentials per exchange, not per API: give them in `api_json` when \
         creating (POST /c/exchanges) or editing (PUT /c/exchange/<name>) an exchange, or in \
         the configuration file's [[exchanges]] (SAFEGUARD_EXCHANGE_<NAME>_<FIELD>)",
    )
}

async fn hma_list(State(state): State<AppState>) -> Json<Value> {
    Json(json!(state.0.exchanges.names()))
}

/// An exchange as HMA shows it (`name`, `api`, `enabled`, then its settings), never with
/// credentials.
fn hma_show_json(slot: &Slot) -> Value {
    let c = &slot.cfg;
    json!({
        "name": c.name,
        "api": hma_api_name(c.kind),
        "enabled": c.enabled,
        "bank": c.bank_name(),
        "base_url": c.base_url,
        "interval_secs": c.interval_secs.max(MIN_INTERVAL_SECS),
        "source": slot.origin.name(),
    })
}

async fn hma_show(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, HmaError> {
    let slot = hma_slot(&state, &name)?;
    Ok(Json(hma_show_json(&slot)))
}

/// Errors of the master key and the store while saving an exchange.
fn save_error(e: SaveError) -> HmaError {
    match e {
        SaveError::Key(e) => {
            tracing::error!(error = %e, "master key unavailable");
            hma_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "master_key_unavailable",
                format!("the master key that seals credentials is unavailable: {e}"),
            )
        }
        SaveError::Store(safeguard_store::Error::Conflict(_)) => exists(),
        SaveError::Store(safeguard_store::Error::NotFound(m)) => {
            hma_error(StatusCode::NOT_FOUND, "exchange_not_found", m)
        }
        SaveError::Store(e) => HmaError(ApiError::from(safeguard_engine::Error::from(e))),
        SaveError::Engine(e) => HmaError(ApiError::from(e)),
    }
}

fn exists() -> HmaError {
    hma_error(
        StatusCode::CONFLICT,
        "exchange_exists",
        "an exchange with this name exists",
    )
}

enum SaveError {
    Key(safeguard_seal::Error),
    Store(safeguard_store::Error),
    Engine(safeguard_engine::Error),
}

/// Seals the credentials and writes the exchange (creating or replacing it), then creates
/// its bank if missing. Blocking.
fn save(
    state: &AppState,
    engine: &Engine,
    cfg: &ExchangeConfig,
    settings: &Map<String, Value>,
    creds: &Map<String, Value>,
    create: bool,
) -> Result<(), SaveError> {
    let sealed = if creds.is_empty() {
        None
    } else {
        let key = state.0.exchanges.master_key().map_err(SaveError::Key)?;
        // Serialising a map of strings cannot fail.
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(creds).unwrap_or_default());
        Some(
            key.seal(&plain, &seal_context(&cfg.name))
                .map_err(SaveError::Key)?,
        )
    };
    let x = safeguard_store::StoredExchange {
        name: cfg.name.clone(),
        kind: cfg.kind.name().to_string(),
        settings: Value::Object(settings.clone()).to_string(),
        sealed_credentials: sealed,
        created_at: 0,
        updated_at: 0,
    };
    let store = engine.store();
    if create {
        store.create_stored_exchange(&x).map_err(SaveError::Store)?;
    } else {
        store.update_stored_exchange(&x).map_err(SaveError::Store)?;
    }
    ensure_banks(engine, std::slice::from_ref(cfg)).map_err(SaveError::Engine)
}

/// Puts a slot in place of the exchange's old one (if any) and schedules it.
fn install(state: &AppState, engine: Arc<Engine>, slot: Slot) {
    let slot = Arc::new(slot);
    let old = state
        .0
        .exchanges
        .write()
        .insert(slot.cfg.name.clone(), slot.clone());
    if let Some(old) = old {
        old.unschedule();
    }
    schedule_slot(&slot, engine, state.0.exchanges.run_hook());
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, HmaError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(hma_error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "the body must be a JSON object",
        )),
    }
}

/// `POST /c/exchanges` `{"bank": NAME, "api": API, "api_json": {...}}`: HMA's create. The
/// settings and credentials in `api_json` are the `[[exchanges]]` fields of the
/// configuration file.
async fn hma_create(State(state): State<AppState>, body: Bytes) -> Result<Response, HmaError> {
    let mut body = json_object(&body)?;
    let name = match body.remove("bank") {
        Some(Value::String(s)) => s,
        _ => {
            return Err(hma_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Field `bank` is required",
            ))
        }
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(hma_error(
            StatusCode::BAD_REQUEST,
            "invalid_bank_name",
            "Field `bank` must match /^[A-Z0-9_]+$/",
        ));
    }
    let api_json = match body.remove("api_json") {
        None => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(hma_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Field `api_json` must be object",
            ))
        }
    };
    let kind = match body.get("api") {
        None | Some(Value::Null) => {
            return Err(hma_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Field `api_type` is required",
            ))
        }
        Some(v) => v.as_str().and_then(hma_kind).ok_or_else(|| {
            hma_error(
                StatusCode::BAD_REQUEST,
                "unknown_exchange_api",
                format!(
                    "No such exchange type '{}'",
                    short(v.as_str().unwrap_or_default())
                ),
            )
        })?,
    };
    let (settings, creds) = split_api_json(api_json)?;
    let cfg = exchange_config(&name, kind, settings.clone(), creds.clone()).map_err(|e| {
        hma_error(
            StatusCode::BAD_REQUEST,
            "exchange_config",
            format!("Failed to parse `api_json` - {e}"),
        )
    })?;
    if let Some(s) = state.0.exchanges.get(&name) {
        return Err(if s.origin == Origin::File {
            in_file(&name)
        } else {
            exists()
        });
    }
    let engine = state.engine()?;
    let (st, e, c) = (state.clone(), engine.clone(), cfg.clone());
    tokio::task::spawn_blocking(move || save(&st, &e, &c, &settings, &creds, true))
        .await
        .map_err(|e| HmaError(ApiError::internal(e)))?
        .map_err(save_error)?;
    tracing::info!(exchange = %name, kind = kind.name(), "exchange created through the API");
    install(&state, engine, Slot::new(cfg, Origin::Api));
    Ok((
        StatusCode::CREATED,
        Json(json!({"message": "Created successfully"})),
    )
        .into_response())
}

/// `PUT /c/exchange/<name>` `{"enabled": bool}` (HMA's edit), and, a Safeguard extension,
/// `"api_json"` with settings or credentials to change (the checkpoint is kept).
async fn hma_update(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    body: Bytes,
) -> Result<Json<Value>, HmaError> {
    let old = hma_slot(&state, &name)?;
    if old.origin == Origin::File {
        return Err(in_file(&name));
    }
    let mut body = json_object(&body)?;
    let enabled = match body.remove("enabled") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(b),
        Some(_) => {
            return Err(hma_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_parameter",
                "enabled must be a boolean",
            ))
        }
    };
    let (more_settings, more_creds) = match body.remove("api_json") {
        None | Some(Value::Null) => (Map::new(), Map::new()),
        Some(Value::Object(m)) => split_api_json(m)?,
        Some(_) => {
            return Err(hma_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Field `api_json` must be object",
            ))
        }
    };
    let engine = state.engine()?;
    let (st, e, n) = (state.clone(), engine.clone(), name.clone());
    let cfg = tokio::task::spawn_blocking(move || -> Result<ExchangeConfig, HmaError> {
        let stored = e
            .store()
            .stored_exchange(&n)
            .map_err(|e| save_error(SaveError::Store(e)))?
            .ok_or_else(|| hma_error(StatusCode::NOT_FOUND, "exchange_not_found", "not found"))?;
        let mut settings: Map<String, Value> =
            serde_json::from_str(&stored.settings).unwrap_or_default();
        // Credentials that no longer open (the key changed) can be replaced: start from none.
        let mut creds: Map<String, Value> = match &stored.sealed_credentials {
            Some(sealed) => {
                st.0.exchanges
                    .master_key()
                    .and_then(|k| k.open(sealed, &seal_context(&n)))
                    .ok()
                    .and_then(|p| serde_json::from_slice(&p).ok())
                    .unwrap_or_default()
            }
            None => Map::new(),
        };
        settings.extend(more_settings);
        creds.extend(more_creds);
        if let Some(b) = enabled {
            settings.insert("enabled".into(), json!(b));
        }
        let kind = hma_kind(&stored.kind).unwrap_or(ExchangeKind::Safeguard);
        let cfg = exchange_config(&n, kind, settings.clone(), creds.clone()).map_err(|e| {
            hma_error(
                StatusCode::BAD_REQUEST,
                "exchange_config",
                format!("Failed to parse `api_json` - {e}"),
            )
        })?;
        save(&st, &e, &cfg, &settings, &creds, false).map_err(save_error)?;
        Ok(cfg)
    })
    .await
    .map_err(|e| HmaError(ApiError::internal(e)))??;
    let slot = Slot {
        running: old.running.clone(),
        last: Mutex::new(old.last_report()),
        ..Slot::new(cfg, Origin::Api)
    };
    let shown = hma_show_json(&slot);
    install(&state, engine, slot);
    Ok(Json(shown))
}

/// `DELETE /c/exchange/<name>`: as HMA, `{"message": "Exchange deleted"}` whether or not it
/// existed. The bank it filled, and its content, stay.
async fn hma_delete(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, HmaError> {
    if let Some(slot) = state.0.exchanges.get(&name) {
        if slot.origin == Origin::File {
            return Err(in_file(&name));
        }
        let engine = state.engine()?;
        let n = name.clone();
        tokio::task::spawn_blocking(move || match engine.store().delete_stored_exchange(&n) {
            Ok(_) | Err(safeguard_store::Error::NotFound(_)) => Ok(()),
            Err(e) => Err(save_error(SaveError::Store(e))),
        })
        .await
        .map_err(|e| HmaError(ApiError::internal(e)))??;
        if let Some(old) = state.0.exchanges.write().remove(&name) {
            old.unschedule();
        }
        tracing::info!(exchange = %name, "exchange deleted through the API");
    }
    Ok(Json(json!({"message": "Exchange deleted"})))
}

/// HMA's `FetchStatus`. `checkpoint_ts` is when the last checkpoint was committed (HMA gives
/// the exchange's own progress time, which Safeguard's checkpoints do not all carry);
/// `fetched_items` is the hashes the exchange lists in its bank now.
async fn hma_status(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
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
        "source": slot.origin.name(),
        "scheduled": slot.is_scheduled(),
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
    for slot in state.0.exchanges.all() {
        out.push(status_json(&state, &slot).await?);
    }
    Ok(Json(json!({ "exchanges": out })))
}

async fn status(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Value>> {
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
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<RunQuery>,
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
    let hook = state.0.exchanges.run_hook();
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
            Ok(Ok(())) => s.run(engine, hook).await,
            // Nothing ran, so nothing changed in the bank: no hook.
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
    ApiPath(name): ApiPath<String>,
    JsonBody(req): JsonBody<FeedbackReq>,
) -> ApiResult<Json<Value>> {
    let slot = state.0.exchanges.slot(&name)?;
    match slot.cfg.client().map_err(exchange_error)? {
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
