//! Safeguard's HTTP layer, thin over [`safeguard_engine`]: HMA-compatible routes (`/h`, `/m`,
//! `/c`, `/status`), the native API under `/v1`, API keys with scopes, request limits,
//! metrics and structured logs.
//!
//! [`app`] builds the router (tests drive it with `oneshot`, no socket); [`serve`] runs it.

#![forbid(unsafe_code)]

mod accounts;
mod action;
mod audit;
pub mod auth;
pub mod claims;
mod coinflip;
pub mod config;
pub mod console;
mod contact;
mod error;
pub mod exchanges;
mod extract;
pub mod feed;
pub mod fetch;
mod figures;
mod hma;
mod lists;
mod media;
mod metrics;
mod middleware;
mod nca;
pub mod nca_api;
pub mod openapi;
pub mod photodna;
mod referral;
pub mod reports;
pub mod retention;
mod risk;
pub mod scans;
pub mod source_feedback;
mod state;
mod urls;
mod v1;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;

pub use error::{ApiError, ApiResult};
pub use openapi::{openapi_document, Access, ERROR_CODES, ROUTES};
pub use state::AppState;

use auth::Scope;

/// The router with every route and layer.
pub fn app(state: AppState) -> Router {
    let limits = &state.0.config.limits;
    let role = state.0.config.role;
    let scoped = |scope: Scope, r: Router<AppState>| {
        // A wrong method gets the API's JSON 405, set here, before the layers below, so that
        // they wrap it: authentication, scope and role are still checked first (set on the
        // merged router it would replace the wrapped fallbacks and answer without a key).
        let r = r.method_not_allowed_fallback(middleware::method_not_allowed);
        // A route of another role answers 404 `not_served_by_role` (after authentication,
        // which stays outermost): the client learns where to send it instead.
        let r = match role_serving(scope) {
            Some(serving) if role != config::Role::All && role != serving => {
                let msg = format!(
                    "this process serves role `{}`; this route is served by role `{}` (or `all`)",
                    role.as_str(),
                    serving.as_str()
                );
                r.route_layer(axum::middleware::from_fn(
                    move |_req: axum::extract::Request, _next: axum::middleware::Next| {
                        let msg = msg.clone();
                        async move {
                            axum::response::IntoResponse::into_response(ApiError::new(
                                axum::http::StatusCode::NOT_FOUND,
                                "not_served_by_role",
                                msg,
                            ))
                        }
                    },
                ))
            }
            _ => r,
        };
        r.route_layer(axum::middleware::from_fn_with_state(
            (state.clone(), scope),
            middleware::require_scope,
        ))
    };
    let protected = Router::new()
        .merge(scoped(
            Scope::Hash,
            hma::hash_routes().merge(v1::hash_routes()),
        ))
        .merge(scoped(
            Scope::Match,
            hma::match_routes().merge(v1::match_routes()),
        ))
        .merge(scoped(
            Scope::Curate,
            hma::curate_routes()
                .merge(v1::curate_routes())
                .merge(exchanges::curate_routes())
                .merge(exchanges::hma_curate_routes())
                .merge(lists::curate_routes()),
        ))
        .merge(scoped(
            Scope::Submit,
            action::submit_routes()
                .merge(contact::submit_routes())
                .merge(accounts::submit_routes())
                .merge(urls::submit_routes())
                .merge(risk::submit_routes()),
        ))
        .merge(scoped(
            Scope::Admin,
            v1::admin_routes()
                .merge(exchanges::admin_routes())
                .merge(action::admin_routes())
                .merge(nca::admin_routes())
                .merge(nca_api::admin_routes())
                .merge(referral::admin_routes())
                .merge(webhooks::admin_routes())
                .merge(reports::admin_routes())
                .merge(scans::admin_routes()),
        ))
        .merge(scoped(Scope::Approve, action::approve_routes()))
        .merge(scoped(
            Scope::Audit,
            figures::audit_routes().merge(audit::audit_routes()),
        ))
        .merge(scoped(
            Scope::Any,
            Router::new()
                .route("/openapi.json", get(openapi::serve_openapi))
                .route("/openapi/openapi.json", get(openapi::serve_openapi))
                .route("/metrics", get(middleware::metrics)),
        ));
    let console = if state.0.config.console.enabled {
        console::routes()
    } else {
        Router::new()
    };
    Router::new()
        .route("/status", get(hma::status))
        .route(middleware::LIVENESS_PATH, get(hma::status_live))
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .merge(console)
        .merge(protected)
        .fallback(middleware::fallback)
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::guard,
        ))
        .with_state(state)
}

/// The role whose processes serve the routes of `scope`; `None` for routes every role serves.
fn role_serving(scope: Scope) -> Option<config::Role> {
    use config::Role;
    match scope {
        Scope::Hash => Some(Role::Hasher),
        Scope::Match | Scope::Submit => Some(Role::Matcher),
        Scope::Curate | Scope::Admin | Scope::Approve | Scope::Audit => Some(Role::Curator),
        Scope::Any => None,
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then finishes in-flight requests
/// (for at most `drain`) before returning.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    let app = app(state);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        let _ = tx.send(());
    });
    let server = tokio::spawn(async move { server.await });
    // After the shutdown signal, in-flight requests get `drain` to finish.
    let _ = rx.await;
    match tokio::time::timeout(drain, server).await {
        Ok(joined) => joined.map_err(std::io::Error::other)?,
        Err(_) => {
            tracing::warn!("requests still running after the drain period; stopping anyway");
            Ok(())
        }
    }
}

/// File name of the index snapshot in the data directory.
pub const SNAPSHOT_FILE: &str = "index.snap";

/// Loads the engine on a blocking thread and attaches it to `state`; the server answers
/// `/status/live` meanwhile and lookups 503. With `snapshot_dir`, the indexes come from its
/// snapshot when one is there and usable (then the change feed since it is replayed), else
/// from a full scan of the store, after which a fresh snapshot is written in the background.
pub async fn load_engine(
    state: AppState,
    snapshot_dir: Option<std::path::PathBuf>,
) -> Result<Arc<safeguard_engine::Engine>, String> {
    let store = state.0.store.clone();
    let dir = snapshot_dir.clone();
    let loading = state.clone();
    let (engine, rebuilt) = tokio::task::spawn_blocking(move || {
        // Registered before loading, so the pruner keeps what this load will read.
        let snapshot = dir.as_ref().map(|d| d.join(SNAPSHOT_FILE));
        if let Err(e) = feed::register_loading(&loading, snapshot.as_deref()) {
            tracing::warn!(error = %e, "cannot record this process's feed position");
        }
        if let Some(dir) = &dir {
            let path = dir.join(SNAPSHOT_FILE);
            match std::fs::File::open(&path) {
                Ok(f) => {
                    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
                    match safeguard_engine::Engine::open_with_snapshot(store.clone(), &mut r) {
                        Ok(e) => return Ok((e, false)),
                        Err(e) => tracing::warn!(
                            error = %e,
                            path = %path.display(),
                            "index snapshot unusable; rebuilding from the store"
                        ),
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(error = %e, "cannot open the index snapshot"),
            }
        }
        // A scan reads one snapshot and then follows the feed from it: if the feed was
        // pruned in between (only by changes older than feed.keep_secs), scan again.
        let mut tries = 0;
        loop {
            match safeguard_engine::Engine::open(store.clone()) {
                Err(e) if e.is_feed_pruned() && tries < 3 => {
                    tries += 1;
                    tracing::warn!(error = %e, "the change feed was pruned during the index build; building again");
                }
                other => return other.map(|e| (e, true)),
            }
        }
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    engine
        .set_photodna_threshold(state.0.config.photodna.threshold)
        .map_err(|e| e.to_string())?;
    if let Some(seq) = engine.snapshot_seq() {
        state.0.snapshot_seq.set(seq);
    }
    let engine = Arc::new(engine);
    state.set_engine(engine.clone());
    follow_feed(&state, &engine);
    feed::start(&state, &engine, snapshot_dir.clone());
    match webhooks::start(&state) {
        Ok(running) => {
            let _ = state.0.webhooks.set(running);
        }
        // Events stay in the outbox; a restart with a working key delivers them.
        Err(e) => tracing::error!(error = %e, "webhook delivery not started"),
    }
    // A curator's scheduled work runs once, on the curator (or an `all` process), not on
    // every matcher sharing the database.
    if state.0.config.role.runs_schedules() {
        retention::start(&state);
        audit::start(&state);
        if state.0.config.console.enabled {
            console::start(&state);
        }
        reports::resume(&state);
        nca_api::resume(&state);
        // Weak: the hook lives inside the state it audits into.
        let weak = Arc::downgrade(&state.0);
        state.0.exchanges.set_run_hook(Arc::new(move |cfg, report| {
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let state = AppState(inner);
            // A run stopped midway reports as its task is dropped, perhaps by a runtime
            // shutting down, where a blocking task might never run: written here and now.
            if report.error_code.as_deref() == Some(exchanges::RUN_STOPPED) {
                exchanges::audit_run(&state, cfg, report);
                return;
            }
            let (cfg, report) = (cfg.clone(), report.clone());
            tokio::task::spawn_blocking(move || exchanges::audit_run(&state, &cfg, &report));
        }));
        state.0.exchanges.start(engine.clone());
        source_feedback::start(&state);
    }
    if let (true, Some(dir)) = (rebuilt, snapshot_dir) {
        let e = engine.clone();
        let st = state.clone();
        tokio::task::spawn_blocking(move || match save_snapshot(&e, &dir) {
            Ok(seq) => st.0.snapshot_seq.set(seq),
            Err(err) => tracing::warn!(error = %err, "cannot write the index snapshot"),
        });
    }
    Ok(engine)
}

/// How often a running server looks at the change feed for writes made by other processes
/// (`safeguard bank import`, a withdrawal, a delete from the CLI, another `serve` on the same
/// database) when nothing wakes it earlier. Each look is one read of the feed position; only
/// when the store is ahead does the engine catch up, so such a write reaches lookups within
/// this interval plus the time to apply it, well inside a second for ordinary writes. A store
/// that can announce its writes (PostgreSQL's NOTIFY, see `Store::wait_for_changes`) wakes the
/// follower at once; the interval then only bounds the delay after a lost notification.
pub const FEED_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Follows the change feed until the engine is dropped (or the runtime stops): waits for the
/// store to move past the position last seen (at most [`FEED_POLL_INTERVAL`]), then catches
/// up. A failed look is logged and retried after the interval. A feed pruned past this
/// process (it was silent for longer than `feed.follower_ttl_secs`) cannot be followed any
/// more: the process is asked to stop ([`feed::Fatal`]), and rebuilds from the store when
/// restarted, rather than serve indexes that miss every change from then on.
fn follow_feed(state: &AppState, engine: &Arc<safeguard_engine::Engine>) {
    let engine = Arc::downgrade(engine);
    // Weak: the state owns the engine (and the webhook dispatcher it stops when dropped).
    let state = Arc::downgrade(&state.0);
    tokio::spawn(async move {
        let mut seen: Option<i64> = None;
        loop {
            let Some(engine) = engine.upgrade() else {
                return;
            };
            let look = tokio::task::spawn_blocking(move || -> Result<i64, String> {
                let store = engine.store();
                if let Some(after) = seen {
                    store
                        .wait_for_changes(after, FEED_POLL_INTERVAL)
                        .map_err(|e| e.to_string())?;
                }
                let last = store.last_seq().map_err(|e| e.to_string())?;
                engine.poll_feed().map_err(|e| {
                    if e.is_feed_pruned() {
                        format!("{PRUNED_PAST}: {e}")
                    } else {
                        e.to_string()
                    }
                })?;
                Ok(last)
            })
            .await;
            match look {
                Ok(Ok(last)) => seen = Some(last),
                Ok(Err(e)) if e.starts_with(PRUNED_PAST) => {
                    tracing::error!(
                        error = %e,
                        "the change feed was pruned past this process; stopping (a restart \
                         rebuilds the indexes from the store)"
                    );
                    if let Some(inner) = state.upgrade() {
                        inner.fatal.raise(e);
                    }
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "following the change feed failed");
                    tokio::time::sleep(FEED_POLL_INTERVAL).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "the change-feed task failed");
                    tokio::time::sleep(FEED_POLL_INTERVAL).await;
                }
            }
        }
    });
}

/// The start of the follower's error when the feed was pruned past it.
const PRUNED_PAST: &str = "feed pruned past this process";

/// Writes the engine's snapshot into `dir` atomically (temporary file, fsync, rename), and
/// returns the change-feed position it reflects.
pub fn save_snapshot(
    engine: &safeguard_engine::Engine,
    dir: &std::path::Path,
) -> Result<i64, String> {
    // One writer at a time: the background snapshot after a rebuild and the one at shutdown
    // must not interleave in the same temporary file.
    static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = WRITING.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
    let f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let seq = engine.write_snapshot(&mut w).map_err(|e| e.to_string())?;
    let f = w.into_inner().map_err(|e| e.to_string())?;
    f.sync_all().map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, dir.join(SNAPSHOT_FILE)).map_err(|e| e.to_string())?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(seq)
}
