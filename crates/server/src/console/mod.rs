//! The moderators' review console at `/console` (docs/console.md): server-rendered pages from
//! `safeguard-console`'s views, people and sessions separate from API keys, queues with
//! leases, media only through signed session-bound routes, exposure accounting, decisions and
//! the two-person rule.
//!
//! This module is the HTTP glue: it reads the session, checks roles, calls the store and the
//! engine, and renders. The rules themselves (passwords, TOTP, lockout, signing, exposure,
//! settings) live in `safeguard-console`; the records in the store's `ConsoleStore`.

mod admin;
mod auth;
mod figures;
mod media;
mod review;

pub use admin::{check_name, create_user, reset_user, SETUP_LINK_TTL_MS};

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use safeguard_console::role::Roles;
use safeguard_console::{lockout, signing, token};
use safeguard_store::console::{ConsoleSession, QueueStats, User};

use crate::config::ConsoleConfig;
use crate::error::ApiError;
use crate::state::{blocking, AppState};

/// The session cookie. With `Secure` the `__Host-` prefix pins it to this host and path `/`;
/// browsers refuse that prefix without `Secure`, so `--dev` (plain HTTP on loopback) uses
/// the bare name.
const SESSION_COOKIE_SECURE: &str = "__Host-sg_session";
const SESSION_COOKIE_DEV: &str = "sg_session";
/// The pre-login CSRF cookie (double-submit: the login form carries the same value).
const LOGIN_COOKIE_SECURE: &str = "__Host-sg_login";
const LOGIN_COOKIE_DEV: &str = "sg_login";
/// Signed media URLs live this long: long enough to load a page, short enough that a copied
/// URL is useless soon after (and it only works with the session it was made for).
pub const MEDIA_URL_TTL_MS: i64 = 5 * 60 * 1000;
/// A session's `last_seen_at` is written at most this often (the idle timeout is exact to
/// within this much), so page views do not each take the store's write lock.
const TOUCH_EVERY_MS: i64 = 30_000;
/// Queue depths are computed at most this often and shared by every page in between.
const STATS_TTL: Duration = Duration::from_secs(2);
/// Client addresses tracked by the login throttle; the oldest window is evicted beyond it.
const MAX_THROTTLED_ADDRESSES: usize = 10_000;
/// The login throttle's window.
const THROTTLE_WINDOW_MS: i64 = 10 * 60 * 1000;

/// The console's in-process state.
#[derive(Debug, Default)]
pub struct Console {
    /// Signs media URLs; derived from the master key on first use, so every process of a
    /// deployment signs and checks alike.
    signer: OnceLock<signing::MediaSigner>,
    /// Failed logins per client address: (count, window start).
    throttle: Mutex<HashMap<IpAddr, (u32, i64)>>,
    /// The last queue statistics and when they were read.
    stats: Mutex<Option<(Instant, Vec<QueueStats>)>>,
    /// Claims made at the same moment share one transaction (one durable commit).
    pub(crate) claims: safeguard_engine::group::ClaimGroup,
}

/// The console's routes, under `/console`. They take no API key: a console session is their
/// only credential.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(review::home))
        .route("/console/", get(review::home))
        .route("/console/assets/{name}", get(asset))
        .route("/console/login", get(auth::login_form).post(auth::login))
        .route("/console/logout", post(auth::logout))
        .route("/console/setup", get(auth::setup_form).post(auth::setup))
        .route("/console/queues/{queue}/claim", post(review::claim))
        .route("/console/cases/{id}", get(review::case_page))
        .route("/console/cases/{id}/renew", post(review::renew))
        .route("/console/cases/{id}/skip", post(review::skip))
        .route("/console/cases/{id}/decide", post(review::decide))
        .route("/console/cases/{id}/approve", post(review::approve))
        .route("/console/approvals", get(review::approvals))
        .route("/console/team", get(review::team))
        .route("/console/figures", get(figures::page))
        .route("/console/figures.csv", get(figures::csv))
        .route("/console/media/{object}", get(media::media))
        .route("/console/reveals", post(media::reveal_start))
        .route("/console/reveals/{id}/end", post(media::reveal_end))
        .route(
            "/console/users",
            get(admin::users).post(admin::create_user_handler),
        )
        .route("/console/users/{id}/reset", post(admin::reset_user_handler))
        .route("/console/users/{id}/disable", post(admin::disable_user))
        .route("/console/users/{id}/roles", post(admin::set_roles))
        .route(
            "/console/settings",
            get(admin::settings).post(admin::save_settings),
        )
        .route("/console/me", get(admin::my_view).post(admin::save_my_view))
        .route_layer(axum::middleware::from_fn(security_headers))
}

/// The Content-Security-Policy of every console response: scripts and styles only from the
/// console's own files (no inline script, no inline style attribute), media only from the
/// console's own routes, no framing, no plugins, forms only back to the console.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self'; media-src 'self'; connect-src 'self'; form-action 'self'; \
frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every console response. Pages and media are never cached
/// (they show a person's queue and evidence); only the versioned assets are.
async fn security_headers(req: Request, next: Next) -> Response {
    let is_asset = req.uri().path().starts_with("/console/assets/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !is_asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// `GET /console/assets/{name}`: the embedded stylesheet and script, under names that carry
/// their content hash, so they can be cached for a year and still never be stale.
async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match safeguard_console::assets::by_name(&name) {
        Some(a) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(a.content_type),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            a.body,
        )
            .into_response(),
        None => page_error(StatusCode::NOT_FOUND, "no such file"),
    }
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    safeguard_engine::now_ms()
}

/// The console's policies from the configuration.
pub(crate) struct Policies {
    pub session: lockout::SessionPolicy,
    pub lockout: lockout::LockoutPolicy,
    pub exposure: safeguard_console::exposure::ExposurePolicy,
    pub lease_ms: i64,
}

pub(crate) fn policies(c: &ConsoleConfig) -> Policies {
    let secs = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
    Policies {
        session: lockout::SessionPolicy {
            idle_ms: secs(c.session_idle_secs),
            absolute_ms: secs(c.session_absolute_secs),
        },
        lockout: lockout::LockoutPolicy {
            max_failures: c.lockout_failures.max(1),
            lock_ms: secs(c.lockout_secs),
            max_lock_ms: secs(c.lockout_secs).saturating_mul(16),
        },
        exposure: safeguard_console::exposure::ExposurePolicy {
            daily_reveal_cap: u64::from(c.daily_reveal_cap),
            daily_review_ms_cap: secs(c.daily_review_secs_cap),
            break_after_ms: secs(c.break_after_secs),
            reveal_max_ms: secs(c.reveal_max_secs),
        },
        lease_ms: secs(c.lease_secs),
    }
}

/// A signed-in person on this request.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub user: User,
    pub roles: Roles,
    pub session: ConsoleSession,
}

impl Session {
    /// The actor name in case histories, events and the audit log. Console people are
    /// `console:<name>`, never to be mistaken for an API key id.
    pub fn actor(&self) -> String {
        actor_label(&self.user.name)
    }

    /// The view's idea of who is looking.
    pub fn viewer(&self) -> safeguard_console::views::Viewer {
        safeguard_console::views::Viewer {
            name: self.user.name.clone(),
            roles: self.roles,
            csrf: self.session.csrf.clone(),
            flash: None,
            break_due: false,
        }
    }

    /// Checks a form's CSRF token against the session's.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), Fail> {
        match sent {
            Some(t) if token::ct_eq(t, &self.session.csrf) => Ok(()),
            _ => Err(Fail::page(
                StatusCode::FORBIDDEN,
                "csrf_failed",
                "this form is out of date or did not come from the console; reload the page and try again",
            )),
        }
    }
}

pub(crate) fn actor_label(name: &str) -> String {
    format!("console:{name}")
}

/// Why a console request did not go through, as the browser should see it.
#[derive(Debug)]
pub(crate) enum Fail {
    /// Not signed in (or the session ended): to the login page.
    Login,
    /// An error page.
    Page {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// A JSON error (for the script's calls).
    Json(ApiError),
}

impl Fail {
    pub fn page(status: StatusCode, code: &'static str, message: impl Into<String>) -> Fail {
        Fail::Page {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Fail {
        Fail::page(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// The same failure as a JSON answer.
    pub fn json(self) -> Fail {
        match self {
            Fail::Login => Fail::Json(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "session_required",
                "sign in to the console first",
            )),
            Fail::Page {
                status,
                code,
                message,
            } => Fail::Json(ApiError::new(status, code, message)),
            j => j,
        }
    }
}

/// A case's or person's id in a console page's path. One that is not a number names no page:
/// the console's 404 page, not axum's plain text.
pub(crate) struct ConsoleId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for ConsoleId {
    type Rejection = Fail;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Fail> {
        let no_page = || Fail::page(StatusCode::NOT_FOUND, "not_found", "there is no such page");
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| no_page())?;
        raw.parse().map(ConsoleId).map_err(|_| no_page())
    }
}

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Fail {
        Fail::Page {
            status: e.status,
            code: e.code,
            message: e.message,
        }
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        match self {
            Fail::Login => Redirect::to("/console/login").into_response(),
            Fail::Page {
                status,
                code,
                message,
            } => {
                let mut r = page_error(status, &message);
                if let Ok(v) = HeaderValue::from_str(code) {
                    r.headers_mut().insert("x-error-code", v);
                }
                r
            }
            Fail::Json(e) => e.into_response(),
        }
    }
}

/// An HTML error page.
pub(crate) fn page_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        html(safeguard_console::views::error_page(
            None,
            status.as_u16(),
            message,
        )),
    )
        .into_response()
}

/// An HTML body.
pub(crate) fn html(body: String) -> axum::response::Html<String> {
    axum::response::Html(body)
}

/// Result of a console handler.
pub(crate) type ConsoleResult<T> = Result<T, Fail>;

/// The cookie names in force (Secure cookies unless `--dev`).
pub(crate) fn cookie_names(state: &AppState) -> (&'static str, &'static str) {
    if state.0.config.dev {
        (SESSION_COOKIE_DEV, LOGIN_COOKIE_DEV)
    } else {
        (SESSION_COOKIE_SECURE, LOGIN_COOKIE_SECURE)
    }
}

/// A cookie's value from the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, path `/`, Secure unless `--dev`;
/// `max_age` None for a cookie that ends with the browser session, Some(0) to delete.
pub(crate) fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    max_age: Option<i64>,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if !state.0.config.dev {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("sg_invalid=; Max-Age=0"))
}

/// The signed-in person, or [`Fail::Login`]. Ends sessions past their idle or absolute
/// timeout, and of disabled people; refreshes `last_seen_at` at most every 30 s.
pub(crate) async fn session(state: &AppState, headers: &HeaderMap) -> ConsoleResult<Session> {
    let id_hash = session_cookie(state, headers)?;
    let st = state.clone();
    blocking(move || Ok(load_session(&st, &id_hash)))
        .await
        .map_err(Fail::from)?
}

/// The hash of the request's session cookie; `Fail::Login` without a plausible one.
pub(crate) fn session_cookie(state: &AppState, headers: &HeaderMap) -> ConsoleResult<String> {
    let (name, _) = cookie_names(state);
    let Some(raw) = cookie(headers, name) else {
        return Err(Fail::Login);
    };
    if raw.is_empty() || raw.len() > 128 {
        return Err(Fail::Login);
    }
    Ok(token::hash(raw))
}

/// [`session`]'s store work, blocking: for a handler that does its own store work in the
/// same blocking call (a claim), so the request takes one trip to the blocking pool, not two.
pub(crate) fn load_session(state: &AppState, id_hash: &str) -> ConsoleResult<Session> {
    let store = &state.0.store;
    let pol = policies(&state.0.config.console);
    let found = (|| {
        let Some(s) = store.session(id_hash)? else {
            return Ok(None);
        };
        let now = now_ms();
        if !pol.session.is_live(s.created_at, s.last_seen_at, now) {
            store.delete_session(id_hash)?;
            return Ok(None);
        }
        let Some(user) = store.user(s.user_id)? else {
            store.delete_session(id_hash)?;
            return Ok(None);
        };
        if user.disabled {
            store.delete_session(id_hash)?;
            return Ok(None);
        }
        if now - s.last_seen_at >= TOUCH_EVERY_MS {
            store.touch_session(id_hash, now)?;
        }
        Ok::<_, ApiError>(Some((s, user)))
    })()?;
    let Some((session, user)) = found else {
        return Err(Fail::Login);
    };
    let roles = Roles::parse(&user.roles)
        .map_err(|e| ApiError::internal(format!("user {} has unreadable roles: {e}", user.id)))?;
    Ok(Session {
        user,
        roles,
        session,
    })
}

impl Console {
    /// Transactions and claims through the claim group commit since start.
    pub fn claim_stats(&self) -> safeguard_engine::group::Stats {
        self.claims.stats()
    }

    /// The media URL signer (blocking on first use: it loads the master key).
    pub(crate) fn signer(&self, state: &AppState) -> Result<&signing::MediaSigner, ApiError> {
        if let Some(s) = self.signer.get() {
            return Ok(s);
        }
        let key = state.0.exchanges.master_key().map_err(|e| {
            tracing::error!(error = %e, "cannot load the master key for console media URLs");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "master_key_unavailable",
                "the console cannot sign media addresses; see the server log",
            )
        })?;
        let derived = key.derive(b"console-media-url-v1");
        let _ = self.signer.set(signing::MediaSigner::new(*derived));
        Ok(self.signer.get().expect("set just above"))
    }

    /// Whether `ip` may try another login now.
    pub(crate) fn login_allowed(&self, ip: IpAddr, limit: u32, now: i64) -> bool {
        let t = self.throttle.lock().unwrap_or_else(|p| p.into_inner());
        match t.get(&ip) {
            Some((n, start)) if now - start < THROTTLE_WINDOW_MS => *n < limit,
            _ => true,
        }
    }

    /// Counts a failed login from `ip`.
    pub(crate) fn login_failed(&self, ip: IpAddr, now: i64) {
        let mut t = self.throttle.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() >= MAX_THROTTLED_ADDRESSES && !t.contains_key(&ip) {
            t.retain(|_, (_, start)| now - *start < THROTTLE_WINDOW_MS);
            if t.len() >= MAX_THROTTLED_ADDRESSES {
                if let Some(oldest) = t.iter().min_by_key(|(_, (_, s))| *s).map(|(k, _)| *k) {
                    t.remove(&oldest);
                }
            }
        }
        let e = t.entry(ip).or_insert((0, now));
        if now - e.1 >= THROTTLE_WINDOW_MS {
            *e = (0, now);
        }
        e.0 += 1;
    }

    /// Queue statistics, at most [`STATS_TTL`] old.
    pub(crate) async fn queue_stats(&self, state: &AppState) -> ConsoleResult<Vec<QueueStats>> {
        if let Some((at, s)) = &*self.stats.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < STATS_TTL {
                return Ok(s.clone());
            }
        }
        let store = state.0.store.clone();
        let s = blocking(move || Ok(store.queue_stats()?)).await?;
        *self.stats.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), s.clone()));
        Ok(s)
    }
}

/// Whether `s` may claim from `queue` (`[console] queue_access`; unnamed queues are open to
/// every reviewer and senior).
pub(crate) fn may_claim(cfg: &ConsoleConfig, s: &Session, queue: &str) -> bool {
    if !s.roles.can_decide() {
        return false;
    }
    match cfg.queue_access.get(queue) {
        None => true,
        Some(allowed) => allowed.iter().any(|a| match a.strip_prefix("user:") {
            Some(name) => name == s.user.name,
            None => safeguard_console::role::Roles::parse(a)
                .map(|r| r.iter().any(|role| s.roles.has(role)))
                .unwrap_or(false),
        }),
    }
}

/// The client's address for the login throttle: the socket peer.
pub(crate) fn client_ip(
    connect: Option<&axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
) -> IpAddr {
    connect
        .map(|c| c.0 .0.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// How often ended sessions are deleted from the store.
const SESSION_SWEEP: Duration = Duration::from_secs(600);

/// How often cases whose lease lapsed long ago go back to their queue.
const LAPSED_SWEEP: Duration = Duration::from_secs(60);

/// Most cases one transaction of the lapsed-lease sweep returns, so it never holds the writer
/// for long (on PostgreSQL each is about seven round trips under the write lock).
const LAPSED_BATCH: usize = 100;

/// Returns to their queue (state `open`, the lease deleted, a history line and a
/// `case.updated` event with change `lease_lapsed`) every case whose lease lapsed at least one
/// lease length before `now`. The holder keeps that long to come back and renew a lapsed
/// lease; after it the case is anyone's again, as an open case. Claims look through the
/// lapsed leases of each queue one by one, so without this sweep every lease a reviewer
/// walks away from would slow every later claim. Returns how many cases went back.
pub async fn reopen_lapsed_leases(state: &AppState, now: i64) -> Result<usize, ApiError> {
    let lease_ms = policies(&state.0.config.console).lease_ms;
    let before = now.saturating_sub(lease_ms);
    let mut total = 0;
    loop {
        let st = state.clone();
        let cases = tokio::task::spawn_blocking(move || {
            st.0.store.reopen_lapsed(
                before,
                LAPSED_BATCH,
                "system",
                now,
                &mut review::case_event("lease_lapsed", "system".into()),
            )
        })
        .await
        .map_err(ApiError::internal)??;
        total += cases.len();
        if cases.len() < LAPSED_BATCH {
            break;
        }
    }
    if total > 0 {
        state.notify_webhooks();
    }
    Ok(total)
}

/// Deletes ended sessions every ten minutes, and returns long-lapsed leases' cases to their
/// queue every minute (curator or `all` only). An ended session is refused when it is used
/// whether or not it was swept; sweeping only keeps the table small.
pub fn start(state: &AppState) {
    let lapsed = state.clone();
    tokio::spawn(async move {
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + LAPSED_SWEEP, LAPSED_SWEEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match reopen_lapsed_leases(&lapsed, now_ms()).await {
                Ok(n) if n > 0 => tracing::info!(cases = n, "cases with lapsed leases reopened"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e.message, "lapsed-lease sweep failed"),
            }
        }
    });
    let state = state.clone();
    tokio::spawn(async move {
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + SESSION_SWEEP, SESSION_SWEEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let st = state.clone();
            let idle = policies(&st.0.config.console).session.idle_ms;
            let out = tokio::task::spawn_blocking(move || {
                st.0.store.delete_expired_sessions(now_ms(), idle)
            })
            .await;
            match out {
                Ok(Ok(n)) if n > 0 => tracing::info!(sessions = n, "ended console sessions swept"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "console session sweep failed"),
                Err(e) => tracing::warn!(error = %e, "console session sweep task failed"),
            }
        }
    });
}

/// Start of the UTC day containing `at` (exposure caps are per day).
pub(crate) fn day_start(at: i64) -> i64 {
    at - at.rem_euclid(86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The login throttle (docs/console.md): an address that failed `limit` times within 10
    /// minutes is refused until its window ends, then counts afresh; other addresses are
    /// unaffected; at most 10,000 addresses are tracked, the oldest window evicted first.
    #[test]
    fn the_login_throttle_counts_failures_per_address_per_ten_minutes() {
        assert_eq!(THROTTLE_WINDOW_MS, 600_000);
        assert_eq!(MAX_THROTTLED_ADDRESSES, 10_000);
        let c = Console::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t = 1_000_000;
        for i in 0..3 {
            assert!(c.login_allowed(ip, 3, t + i));
            c.login_failed(ip, t + i);
        }
        assert!(!c.login_allowed(ip, 3, t + 3));
        assert!(!c.login_allowed(ip, 3, t + THROTTLE_WINDOW_MS - 1));
        assert!(c.login_allowed(other, 3, t + 3));
        assert!(c.login_allowed(ip, 3, t + THROTTLE_WINDOW_MS));
        // A new window counts from zero: allowed after two failures in it, refused after
        // the third.
        let w = t + THROTTLE_WINDOW_MS;
        c.login_failed(ip, w);
        c.login_failed(ip, w + 1);
        assert!(
            c.login_allowed(ip, 3, w + 2),
            "a new window counts from zero"
        );
        c.login_failed(ip, w + 2);
        assert!(
            !c.login_allowed(ip, 3, w + 3),
            "the new window is counted too"
        );

        let c = Console::default();
        let addr = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        c.login_failed(addr(0), t);
        for i in 1..MAX_THROTTLED_ADDRESSES as u32 {
            c.login_failed(addr(i), t + 1);
        }
        assert!(!c.login_allowed(addr(0), 1, t + 2));
        c.login_failed(other, t + 2);
        assert!(
            c.login_allowed(addr(0), 1, t + 2),
            "the oldest window was not evicted"
        );
        assert!(!c.login_allowed(addr(1), 1, t + 2));
        assert!(!c.login_allowed(other, 1, t + 2));
    }

    /// The account lockout as the server configures it (docs/console.md): locked at every
    /// `lockout_failures` failures for `lockout_secs`, doubling with each further lock, up to
    /// 16 times that.
    #[test]
    fn the_lockout_doubles_up_to_sixteen_times_the_configured_lock() {
        let c = ConsoleConfig::default();
        let p = policies(&c).lockout;
        let lock = 15 * 60 * 1000;
        assert_eq!((c.lockout_failures, c.lockout_secs), (5, 15 * 60));
        assert_eq!(p.lock_until(4, 0), None);
        let locks: Vec<Option<i64>> = [5, 10, 15, 20, 25, 30, 100]
            .iter()
            .map(|&n| p.lock_until(n, 0))
            .collect();
        assert_eq!(
            locks,
            [1, 2, 4, 8, 16, 16, 16].map(|k| Some(k * lock)).to_vec()
        );
    }
}
