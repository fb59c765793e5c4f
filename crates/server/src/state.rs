//! Shared state of the handlers.

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
    /// Permits for CPU-heavy work (decoding and hashing), one per core: more would only
    /// queue on the blocking pool and hold memory for decoded images.
    pub cpu: Semaphore,
    /// Permits for requests in flight (`limits.max_concurrency`).
    pub requests: Semaphore,
    /// The configured hash-sharing exchanges and their schedulers.
    pub exchanges: crate::exchanges::Exchanges,
    /// The operator's licensed PhotoDNA hasher, if configured.
    pub photodna: Option<crate::photodna::PhotoDnaHasher>,
    /// Where uploads are decoded and hashed: confined worker processes, or in-process when
    /// `decode.sandbox = false`.
    pub decoder: safeguard_sandbox::Decoder,
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
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Ok(AppState(Arc::new(Inner {
            engine: OnceLock::new(),
            auth: Authenticator::new(store.clone(), admin_key, config.dev),
            store,
            fetcher,
            metrics: Metrics::default(),
            cpu: Semaphore::new(cores),
            requests: Semaphore::new(config.limits.max_concurrency),
            exchanges: crate::exchanges::Exchanges::new(&config.exchanges),
            photodna,
            decoder: config.decoder(),
            config,
        })))
    }

    /// Attaches the engine once its indexes are built.
    pub fn set_engine(&self, engine: Arc<Engine>) {
        // A second call would be a programming error; the first engine stays.
        let _ = self.0.engine.set(engine);
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

/// Runs blocking work (store calls, lookups) off the async reactor.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await?
}

/// Runs CPU-heavy work (decode + hash) off the reactor, at most one job per core at a time.
pub async fn cpu<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let _permit = state
        .0
        .cpu
        .acquire()
        .await
        .map_err(|e| ApiError::internal(format!("cpu semaphore closed: {e}")))?;
    tokio::task::spawn_blocking(f).await?
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
