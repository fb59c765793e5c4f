//! Shared state of the handlers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use axum::http::StatusCode;
use safeguard_engine::Engine;
use safeguard_store::Store;
use tokio::sync::Semaphore;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::fetch::Fetcher;
use crate::metrics::Metrics;

/// Everything a handler may use. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(pub Arc<Inner>);

/// The shared state.
#[derive(Debug)]
pub struct Inner {
    /// Set once the indexes are built; until then lookups answer 503.
    pub engine: OnceLock<Arc<Engine>>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// API key checks.
    pub auth: Authenticator,
    /// URL fetching.
    pub fetcher: Fetcher,
    /// The configuration.
    pub config: Config,
    /// Metrics.
    pub metrics: Metrics,
    /// Permits for CPU-heavy work (decoding and hashing), one per core unless
    /// `limits.max_cpu_jobs` says otherwise: more would only queue on the blocking pool and
    /// hold memory for decoded images. Owned permits, so a job keeps its permit until it
    /// really ends, even when the request that started it was cancelled.
    pub cpu: Arc<Semaphore>,
    /// How many CPU permits there are.
    pub cpu_permits: usize,
    /// CPU jobs running now, and the most that ever ran at once.
    pub cpu_jobs: CpuJobs,
    /// The byte budget of buffered request bodies (`limits.max_buffered_bytes`): one permit
    /// per byte held, taken as the bytes arrive.
    pub buffered: Arc<Semaphore>,
    /// Permits for requests in flight (`limits.max_concurrency`).
    pub requests: Semaphore,
    /// The configured hash-sharing exchanges and their schedulers.
    pub exchanges: crate::exchanges::Exchanges,
    /// The operator's licensed PhotoDNA hasher, if configured.
    pub photodna: Option<crate::photodna::PhotoDnaHasher>,
    /// Where uploads are decoded and hashed: confined worker processes, or in-process when
    /// `decode.sandbox = false`.
    pub decoder: safeguard_sandbox::Decoder,
    /// Acts on matches; set with the engine.
    pub actioner: OnceLock<Arc<safeguard_engine::action::Actioner>>,
    /// The UK NCA priority rules (`[reporting.nca] priority_rules`, else the defaults), read
    /// once: every submission that opens or joins a case is assessed against them.
    pub nca_rules: Arc<safeguard_nca::PriorityConfig>,
    /// The evidence vault, opened on first use (its key may come from a slow KMS command).
    pub vault: tokio::sync::OnceCell<Arc<safeguard_vault::Vault>>,
    /// The webhook dispatcher (stopped when this state is dropped).
    pub webhooks: OnceLock<crate::webhooks::Running>,
    /// The contact-risk scorer (`[risk]`), `None` when disabled. Behind a plain mutex,
    /// taken on the blocking pool for one batch at a time (see `crate::risk`).
    pub risk: Option<Arc<std::sync::Mutex<safeguard_risk::Scorer>>>,
    /// The optional semantic model and its embedded example sets (`[risk.semantic]`),
    /// loaded at start-up; `None` when no model is configured or risk scoring is off.
    pub semantic: Option<Arc<safeguard_semantic::Contrast>>,
    /// The audit log, opened on first use (it needs the master key, for its signing key).
    pub auditor: OnceLock<Arc<safeguard_engine::audit::Auditor>>,
    /// Report filings this process is driving (`crate::reports`).
    pub reports: Arc<crate::reports::Reports>,
    /// Cases this process is sending through the NCA's API (`crate::nca_api`).
    pub nca_sending: Arc<crate::claims::Claims<i64>>,
    /// True once the start's pass over unfinished NCA sends is over (`crate::nca_api::resume`).
    pub nca_resume_done: tokio::sync::watch::Sender<bool>,
    /// The review console's in-process state (`crate::console`).
    pub console: crate::console::Console,
    /// The position of the index snapshot in the data directory (`crate::feed`).
    pub snapshot_seq: crate::feed::SnapshotSeq,
    /// Set when this process must stop (`crate::feed::Fatal`).
    pub fatal: crate::feed::Fatal,
}

impl AppState {
    /// State over a store; the engine is attached later with [`AppState::set_engine`].
    pub fn new(
        store: Arc<dyn Store>,
        config: Config,
        admin_key: Option<&str>,
    ) -> Result<AppState, String> {
        let fetcher = Fetcher::new(&config.fetch)?;
        let photodna = config
            .photodna
            .hasher
            .as_ref()
            .map(crate::photodna::PhotoDnaHasher::new)
            .transpose()?;
        let cpu_permits = match config.limits.max_cpu_jobs {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            n => n,
        };
        // `validate` refuses a budget the semaphore cannot hold; clamp anyway rather than
        // panic for a configuration that skipped it.
        let budget = config.limits.max_buffered_bytes.min(Semaphore::MAX_PERMITS);
        let risk = crate::risk::scorer_from_config(&config.risk)?
            .map(|s| Arc::new(std::sync::Mutex::new(s)));
        let semantic = crate::risk::semantic_from_config(&config.risk)?.map(Arc::new);
        Ok(AppState(Arc::new(Inner {
            engine: OnceLock::new(),
            auth: Authenticator::new(store.clone(), admin_key, config.dev),
            store,
            fetcher,
            metrics: Metrics::default(),
            cpu: Arc::new(Semaphore::new(cpu_permits)),
            cpu_permits,
            cpu_jobs: CpuJobs::default(),
            buffered: Arc::new(Semaphore::new(budget)),
            requests: Semaphore::new(config.limits.max_concurrency),
            exchanges: crate::exchanges::Exchanges::from_config(&config),
            photodna,
            decoder: config.decoder(),
            actioner: OnceLock::new(),
            nca_rules: Arc::new(config.reporting.nca.priority()?),
            vault: tokio::sync::OnceCell::new(),
            webhooks: OnceLock::new(),
            risk,
            semantic,
            auditor: OnceLock::new(),
            reports: Arc::new(crate::reports::Reports::new(
                crate::reports::Reports::owner_for(config.listen),
            )),
            nca_sending: Arc::default(),
            nca_resume_done: tokio::sync::watch::Sender::new(false),
            console: crate::console::Console::default(),
            snapshot_seq: Default::default(),
            fatal: Default::default(),
            config,
        })))
    }

    /// Attaches the engine once its indexes are built.
    pub fn set_engine(&self, engine: Arc<Engine>) {
        // A second call would be a programming error; the first engine stays.
        let _ = self
            .0
            .actioner
            .set(Arc::new(safeguard_engine::action::Actioner::new(
                engine.clone(),
            )));
        let _ = self.0.engine.set(engine);
    }

    /// The actioner, or 503 while the indexes are still loading.
    pub fn actioner(&self) -> ApiResult<Arc<safeguard_engine::action::Actioner>> {
        self.engine()?;
        self.0.actioner.get().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "index_not_ready",
                "index not yet ready",
            )
        })
    }

    /// The evidence vault, opened on first use; 503 when it cannot be (its key or storage
    /// is unavailable), with the detail in the log.
    pub async fn vault(&self) -> ApiResult<Arc<safeguard_vault::Vault>> {
        let config = self.0.config.vault.clone();
        let data_dir = self.0.config.data_dir.clone();
        self.0
            .vault
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || config.open(&data_dir))
                    .await
                    .map_err(|e| e.to_string())?
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .await
            .cloned()
            .map_err(|e: String| {
                tracing::error!(error = %e, "cannot open the evidence vault");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "vault_unavailable",
                    "the evidence vault cannot be opened; see the server log",
                )
            })
    }

    /// The audit log. Blocking (call it on the blocking pool): the first call loads the
    /// master key and reads the log's leaf hashes. 503 `audit_unavailable` when the key
    /// cannot be loaded, with the detail in the log.
    pub fn auditor(&self) -> ApiResult<Arc<safeguard_engine::audit::Auditor>> {
        if let Some(a) = self.0.auditor.get() {
            return Ok(a.clone());
        }
        let unavailable = |e: String| {
            tracing::error!(error = %e, "cannot open the audit log");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                "the audit log cannot be opened; see the server log",
            )
        };
        let key = self
            .0
            .exchanges
            .master_key()
            .map_err(|e| unavailable(e.to_string()))?;
        let a = safeguard_engine::audit::Auditor::new(
            self.0.store.clone(),
            safeguard_engine::audit::signing_key(&key),
        )
        .map_err(|e| unavailable(e.to_string()))?;
        // Two first calls racing both build one; the first stored wins and both are equal.
        let _ = self.0.auditor.set(Arc::new(a));
        Ok(self.0.auditor.get().cloned().expect("set just above"))
    }

    /// Appends an audit entry (blocking; call it on the blocking pool). A failure is an
    /// error for the caller: an action that must be audited is refused when it cannot be.
    pub fn audit(
        &self,
        actor: &str,
        action: safeguard_engine::audit::Action,
        object: &str,
        detail: &str,
    ) -> ApiResult<u64> {
        let a = self.auditor()?;
        a.record(actor, action, object, detail).map_err(|e| {
            tracing::error!(error = %e, action = action.as_str(), object, "audit append failed");
            ApiError::from(e)
        })
    }

    /// Appends an audit entry for an action already done (blocking): a failure is logged,
    /// not returned, since the action cannot be undone by refusing the response.
    pub fn audit_after(
        &self,
        actor: &str,
        action: safeguard_engine::audit::Action,
        object: &str,
        detail: &str,
    ) {
        let _ = self.audit(actor, action, object, detail);
    }

    /// Wakes the webhook dispatcher (after a write that produced events).
    pub fn notify_webhooks(&self) {
        if let Some(w) = self.0.webhooks.get() {
            w.notify.notify_one();
        }
    }

    /// The engine, or 503 while the indexes are still loading.
    pub fn engine(&self) -> ApiResult<Arc<Engine>> {
        self.0.engine.get().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "index_not_ready",
                "index not yet ready",
            )
        })
    }
}

/// Counts the CPU jobs running: the gauge `safeguard_cpu_jobs`, and a high-water mark that
/// shows whether the limit ever failed to hold.
#[derive(Debug, Default)]
pub struct CpuJobs {
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl CpuJobs {
    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// The most jobs that ran at once since the start.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// Marks one CPU job as running until dropped (also on a panic).
struct CpuJob<'a> {
    state: &'a AppState,
}

impl<'a> CpuJob<'a> {
    fn start(state: &'a AppState) -> CpuJob<'a> {
        let jobs = &state.0.cpu_jobs;
        let now = jobs.running.fetch_add(1, Ordering::SeqCst) + 1;
        jobs.peak.fetch_max(now, Ordering::SeqCst);
        state.0.metrics.cpu_jobs.inc();
        CpuJob { state }
    }
}

impl Drop for CpuJob<'_> {
    fn drop(&mut self) {
        self.state.0.cpu_jobs.running.fetch_sub(1, Ordering::SeqCst);
        self.state.0.metrics.cpu_jobs.dec();
    }
}

/// Wraps a closure bound for the blocking pool so it runs in the caller's request: inside its
/// tracing span (so every log line carries the request id) and with its request id and body
/// budget lease, which the pool's threads would otherwise not see.
pub(crate) fn in_request<R>(f: impl FnOnce() -> R + Send) -> impl FnOnce() -> R + Send {
    let span = tracing::Span::current();
    let id = crate::error::REQUEST_ID.try_with(Clone::clone).ok();
    move || {
        let _entered = span.enter();
        match id {
            Some(id) => crate::error::REQUEST_ID.sync_scope(id, f),
            None => f(),
        }
    }
}

/// Runs blocking work (store calls, lookups) off the async reactor.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(in_request(f)).await?
}

/// Runs CPU-heavy work (decode + hash) off the reactor, at most one job per permit at a time.
///
/// The permit, and the request's lease on the body budget, move into the blocking closure: a
/// request cancelled mid-decode (client gone, timeout) drops this future, but the decode runs
/// on, so it must keep holding both until it really ends.
pub async fn cpu<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let permit = state
        .0
        .cpu
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| ApiError::internal(format!("cpu semaphore closed: {e}")))?;
    let lease = crate::middleware::current_lease();
    let st = state.clone();
    tokio::task::spawn_blocking(in_request(move || {
        let job = CpuJob::start(&st);
        let out = f();
        drop(job);
        drop(permit);
        drop(lease);
        out
    }))
    .await?
}

/// Runs a lookup off the reactor and counts its matches per bank in the metrics.
pub async fn lookup(
    state: &AppState,
    value: safeguard_engine::SignalValue,
    opts: safeguard_engine::LookupOptions,
) -> ApiResult<safeguard_engine::LookupResult> {
    let engine = state.engine()?;
    let res = blocking(move || Ok(engine.lookup(&value, &opts)?)).await?;
    for m in &res.matches {
        state
            .0
            .metrics
            .matches
            .get_or_create(&crate::metrics::BankLabels {
                bank: m.bank.clone(),
            })
            .inc();
    }
    Ok(res)
}
