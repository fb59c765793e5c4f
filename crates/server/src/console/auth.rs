//! Signing in and out, and first-time setup (password and TOTP enrolment).
//!
//! A login needs the name, the password and a current TOTP code together: one form, one
//! answer, so a failure never says which part was wrong. Failures count towards the account's
//! lockout and the client address's throttle. A successful login always starts a brand-new
//! session (never one the browser brought), which is what defeats session fixation.

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use base64::Engine as _;
use safeguard_console::{password, token, totp, views};
use safeguard_engine::audit::Action;
use safeguard_store::console::ConsoleSession;
use serde::Deserialize;

use super::{
    actor_label, client_ip, cookie, cookie_names, html, now_ms, policies, set_cookie,
    ConsoleResult, Fail,
};
use crate::error::ApiError;
use crate::state::{blocking, AppState};

/// What a failed login is told, whatever failed: no hint of which part was wrong or whether
/// the account exists.
const LOGIN_FAILED: &str = "Sign-in failed. Check your name, password and the current code \
from your authenticator app. After repeated failures the account is locked for a while.";
/// Longest name, password or code read from the form (argon2 of a huge password is a cheap
/// way to burn CPU).
const MAX_FIELD: usize = 1024;

/// The seal context of a person's TOTP secret: bound to the account, so a sealed secret
/// copied onto another account's row does not open.
pub(crate) fn totp_context(user_id: i64) -> Vec<u8> {
    format!("console-totp-v1:{user_id}").into_bytes()
}

/// `GET /console/login`: the form, with a fresh pre-login CSRF cookie.
pub(crate) async fn login_form(State(state): State<AppState>) -> Response {
    login_page(&state, None, StatusCode::OK)
}

fn login_page(state: &AppState, error: Option<&str>, status: StatusCode) -> Response {
    let (_, login_cookie) = cookie_names(state);
    let csrf = token::new_token();
    let mut r = (status, html(views::login_page(&csrf, error))).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, login_cookie, &csrf, None),
    );
    r
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    totp: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /console/login`.
pub(crate) async fn login(
    State(state): State<AppState>,
    connect: Option<axum::Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let (session_cookie, login_cookie) = cookie_names(&state);
    // Double-submit CSRF: the form's token must equal the cookie set with the form.
    let cookie_token = cookie(&headers, login_cookie).unwrap_or("");
    if cookie_token.is_empty() || !token::ct_eq(cookie_token, &f.csrf) {
        return login_page(
            &state,
            Some("This sign-in form has expired. Please try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let ip = client_ip(connect.as_ref());
    let now = now_ms();
    let cfg = &state.0.config.console;
    if !state
        .0
        .console
        .login_allowed(ip, cfg.login_failures_per_ip, now)
    {
        return login_page(
            &state,
            Some("Too many failed sign-ins from this address. Wait a few minutes."),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    if f.username.len() > MAX_FIELD || f.password.len() > MAX_FIELD || f.totp.len() > 16 {
        state.0.console.login_failed(ip, now);
        return login_page(&state, Some(LOGIN_FAILED), StatusCode::UNAUTHORIZED);
    }
    let st = state.clone();
    let pol = policies(cfg);
    let outcome = blocking(move || check_login(&st, &f, &pol)).await;
    match outcome {
        Ok(Some(new_session)) => {
            // Whatever session cookie the browser brought is ended, never promoted.
            if let Some(old) = cookie(&headers, session_cookie) {
                let store = state.0.store.clone();
                let old_hash = token::hash(old);
                let _ = blocking(move || Ok(store.delete_session(&old_hash)?)).await;
            }
            let mut r = Redirect::to("/console").into_response();
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, session_cookie, &new_session, None),
            );
            h.append(
                header::SET_COOKIE,
                set_cookie(&state, login_cookie, "", Some(0)),
            );
            r
        }
        Ok(None) => {
            state.0.console.login_failed(ip, now);
            login_page(&state, Some(LOGIN_FAILED), StatusCode::UNAUTHORIZED)
        }
        Err(e) => Fail::from(e).into_response(),
    }
}

/// Checks a login (blocking: argon2 and the store). `Some(session token)` on success.
fn check_login(
    state: &AppState,
    f: &LoginForm,
    pol: &super::Policies,
) -> Result<Option<String>, ApiError> {
    let store = &state.0.store;
    let now = now_ms();
    let user = store.user_by_name(f.username.trim())?;
    let Some(user) = user else {
        // Same work as for a real account, so timing does not tell which names exist.
        password::verify_dummy(&f.password);
        return Ok(None);
    };
    let fail =
        |user: &safeguard_store::console::User, why: &str| -> Result<Option<String>, ApiError> {
            let failures = user.failed_logins + 1;
            let lock = pol.lockout.lock_until(failures, now);
            store.record_login_failure(user.id, lock, now)?;
            state.audit_after(
                &actor_label(&user.name),
                Action::LoginFailed,
                &format!("user:{}", user.id),
                why,
            );
            tracing::warn!(user = %user.name, reason = why, "console sign-in failed");
            Ok(None)
        };
    if user.disabled {
        password::verify_dummy(&f.password);
        return fail(&user, "account disabled");
    }
    if user.locked_until.is_some_and(|t| t > now) {
        // Locked: the password is not checked, so guessing during a lock learns nothing. The
        // dummy hash still costs what a check costs, so timing does not tell a locked
        // account from an unknown name.
        password::verify_dummy(&f.password);
        return Ok(None).inspect(|_| {
            state.audit_after(
                &actor_label(&user.name),
                Action::LoginFailed,
                &format!("user:{}", user.id),
                "account locked",
            )
        });
    }
    let (Some(hash), Some(sealed)) = (&user.password_hash, &user.totp_secret) else {
        password::verify_dummy(&f.password);
        return fail(&user, "setup not completed");
    };
    if !password::verify(&f.password, hash) {
        return fail(&user, "wrong password");
    }
    let key = state.0.exchanges.master_key().map_err(ApiError::internal)?;
    let secret = key.open(sealed, &totp_context(user.id)).map_err(|e| {
        ApiError::internal(format!("cannot open user {}'s TOTP secret: {e}", user.id))
    })?;
    let unix_secs = now / 1000;
    let Some(step) = totp::verify(&secret, f.totp.trim(), unix_secs, user.last_totp_step) else {
        return fail(&user, "wrong or reused code");
    };
    match store.record_login_success(user.id, step, now) {
        Ok(_) => {}
        // Another login used this code a moment ago: a replay.
        Err(safeguard_store::Error::Conflict(_)) => return fail(&user, "reused code"),
        Err(e) => return Err(e.into()),
    }
    let raw = token::new_token();
    let s = ConsoleSession {
        id_hash: token::hash(&raw),
        user_id: user.id,
        csrf: token::new_token(),
        created_at: now,
        last_seen_at: now,
        expires_at: now.saturating_add(pol.session.absolute_ms),
    };
    store.create_session(&s)?;
    state.audit(
        &actor_label(&user.name),
        Action::Login,
        &format!("user:{}", user.id),
        "signed in to the console",
    )?;
    tracing::info!(user = %user.name, "console sign-in");
    Ok(Some(raw))
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/logout`: ends the session (CSRF-checked, so a third-party page cannot sign
/// a moderator out mid-review).
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LogoutForm>,
) -> ConsoleResult<Response> {
    let s = super::session(&state, &headers).await?;
    s.check_csrf(Some(&f.csrf))?;
    let store = state.0.store.clone();
    let id = s.session.id_hash.clone();
    blocking(move || Ok(store.delete_session(&id)?)).await?;
    let (session_cookie, _) = cookie_names(&state);
    let mut r = Redirect::to("/console/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, session_cookie, "", Some(0)),
    );
    Ok(r)
}

#[derive(Debug, Deserialize)]
pub(crate) struct SetupQuery {
    #[serde(default)]
    token: String,
}

/// The account a setup token belongs to, if the token is current.
fn setup_user(
    state: &AppState,
    raw: &str,
) -> Result<Option<safeguard_store::console::User>, ApiError> {
    if raw.is_empty() || raw.len() > 128 {
        return Ok(None);
    }
    let user = state.0.store.user_by_setup_token(&token::hash(raw))?;
    Ok(user.filter(|u| !u.disabled && u.setup_expires_at.is_some_and(|t| t > now_ms())))
}

/// The seal context of the TOTP secret carried in the setup form between the page and its
/// submission: bound to the account and the setup token.
fn setup_context(user_id: i64, raw_token: &str) -> Vec<u8> {
    format!("console-setup-v1:{user_id}:{}", token::hash(raw_token)).into_bytes()
}

/// `GET /console/setup?token=…`: choose a password and enrol an authenticator app.
pub(crate) async fn setup_form(
    State(state): State<AppState>,
    Query(q): Query<SetupQuery>,
) -> ConsoleResult<Response> {
    let st = state.clone();
    let page = blocking(move || {
        let Some(user) = setup_user(&st, &q.token)? else {
            return Ok(None);
        };
        let secret = totp::new_secret();
        let key = st.0.exchanges.master_key().map_err(ApiError::internal)?;
        let sealed = key
            .seal(&secret, &setup_context(user.id, &q.token))
            .map_err(ApiError::internal)?;
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed);
        Ok(Some(views::setup_page(
            "",
            &views::SetupView {
                name: user.name.clone(),
                token: q.token.clone(),
                sealed_secret: sealed,
                secret_base32: totp::secret_base32(&secret),
                otpauth_uri: totp::otpauth_uri("Safeguard", &user.name, &secret),
                error: None,
            },
        )))
    })
    .await?;
    match page {
        Some(p) => Ok(html(p).into_response()),
        None => Err(Fail::page(
            StatusCode::NOT_FOUND,
            "setup_link_invalid",
            "this setup link is not valid: it was used already, has expired, or was replaced; ask an administrator for a new one",
        )),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
    #[serde(default)]
    totp: String,
}

/// `POST /console/setup`: sets the password and the TOTP secret once the code from the
/// app proves the enrolment worked; the link is then spent.
pub(crate) async fn setup(
    State(state): State<AppState>,
    Form(f): Form<SetupForm>,
) -> ConsoleResult<Response> {
    if f.password.len() > MAX_FIELD || f.secret.len() > 512 || f.totp.len() > 16 {
        return Err(Fail::page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "a field is too long",
        ));
    }
    let st = state.clone();
    let result = blocking(move || {
        let Some(user) = setup_user(&st, &f.token)? else {
            return Ok(Err(None));
        };
        let key = st.0.exchanges.master_key().map_err(ApiError::internal)?;
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(f.secret.as_bytes())
            .ok()
            .and_then(|b| key.open(&b, &setup_context(user.id, &f.token)).ok());
        let Some(secret) = sealed else {
            return Ok(Err(None));
        };
        let again = |error: &str| {
            Ok(Err(Some(views::setup_page("", &views::SetupView {
                name: user.name.clone(),
                token: f.token.clone(),
                sealed_secret: f.secret.clone(),
                secret_base32: totp::secret_base32(&secret),
                otpauth_uri: totp::otpauth_uri("Safeguard", &user.name, &secret),
                error: Some(error.to_string()),
            }))))
        };
        if f.password != f.password2 {
            return again("The two passwords are not the same.");
        }
        if let Err(e) = password::check_new(&f.password) {
            return again(&e.to_string());
        }
        let unix_secs = now_ms() / 1000;
        if totp::verify(&secret, f.totp.trim(), unix_secs, None).is_none() {
            return again("That code is not right. Check the clock of the device with the app, and enter the current code.");
        }
        let hash = password::hash(&f.password).map_err(ApiError::internal)?;
        let stored = key
            .seal(&secret, &totp_context(user.id))
            .map_err(ApiError::internal)?;
        st.0.store
            .complete_setup(user.id, &hash, &stored, now_ms())?;
        st.audit_after(
            &actor_label(&user.name),
            Action::ConfigChanged,
            &format!("user:{}", user.id),
            "console account set up (password and authenticator)",
        );
        Ok(Ok(()))
    })
    .await?;
    match result {
        Ok(()) => Ok(Redirect::to("/console/login").into_response()),
        Err(Some(page)) => Ok((StatusCode::BAD_REQUEST, html(page)).into_response()),
        Err(None) => Err(Fail::page(
            StatusCode::NOT_FOUND,
            "setup_link_invalid",
            "this setup link is not valid: it was used already, has expired, or was replaced; ask an administrator for a new one",
        )),
    }
}
