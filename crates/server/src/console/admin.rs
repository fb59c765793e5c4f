//! People and settings, for admins. Admins see no media (unless they are also reviewers):
//! these pages show names, roles and defaults only.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use safeguard_console::role::Roles;
use safeguard_console::{settings, token, views};
use safeguard_engine::audit::Action;
use safeguard_store::console::NewUser;
use serde::Deserialize;

use super::{html, now_ms, session, ConsoleId, ConsoleResult, Fail, Session};
use crate::error::ApiError;
use crate::state::{blocking, AppState};

/// How long a setup link works.
pub const SETUP_LINK_TTL_MS: i64 = 72 * 3600 * 1000;
/// Longest person name, bytes.
pub const MAX_NAME: usize = 64;

fn admin_only(s: &Session) -> ConsoleResult<()> {
    if s.roles.can_admin() {
        Ok(())
    } else {
        Err(Fail::forbidden("only admins manage people and settings"))
    }
}

/// Checks a person's name: 1 to 64 letters, digits, `.`, `_`, `-`, `@`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > MAX_NAME
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(format!(
            "a name is 1 to {MAX_NAME} letters, digits, '.', '_', '-' or '@'"
        ));
    }
    Ok(())
}

/// Creates a person with a one-time setup link (blocking); returns the raw setup token.
/// Shared by the admin page and `safeguard users create`.
pub fn create_user(
    store: &dyn safeguard_store::Store,
    name: &str,
    roles: &str,
    now: i64,
) -> Result<(safeguard_store::console::User, String), ApiError> {
    check_name(name).map_err(|m| ApiError::bad_request("invalid_request", m))?;
    let roles =
        Roles::parse(roles).map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?;
    let raw = token::new_token();
    let u = store
        .create_user(&NewUser {
            name: name.to_string(),
            roles: roles.to_string(),
            setup_token_hash: token::hash(&raw),
            setup_expires_at: now + SETUP_LINK_TTL_MS,
            at: now,
        })
        .map_err(|e| match e {
            safeguard_store::Error::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                "user_exists",
                format!("a person named {name:?} exists already"),
            ),
            other => other.into(),
        })?;
    Ok((u, raw))
}

/// Gives a person a new setup link: their password, authenticator and sessions are gone.
pub fn reset_user(
    store: &dyn safeguard_store::Store,
    id: i64,
    now: i64,
) -> Result<(safeguard_store::console::User, String), ApiError> {
    let raw = token::new_token();
    let u = store.reset_user(id, &token::hash(&raw), now + SETUP_LINK_TTL_MS, now)?;
    Ok((u, raw))
}

async fn users_page(
    state: &AppState,
    s: &Session,
    created: Option<views::CreatedUser>,
    status: StatusCode,
) -> ConsoleResult<Response> {
    let st = state.clone();
    let users = blocking(move || Ok(st.0.store.users()?)).await?;
    let now = now_ms();
    let rows = users
        .iter()
        .map(|u| views::UserRow {
            id: u.id,
            name: u.name.clone(),
            roles: u.roles.clone(),
            setup_pending: u.password_hash.is_none() || u.totp_secret.is_none(),
            locked_until: u.locked_until,
            disabled: u.disabled,
            created_at: u.created_at,
        })
        .collect::<Vec<_>>();
    Ok((
        status,
        html(views::users_page(&s.viewer(), &rows, created.as_ref(), now)),
    )
        .into_response())
}

/// `GET /console/users`.
pub(crate) async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ConsoleResult<Response> {
    let s = session(&state, &headers).await?;
    admin_only(&s)?;
    users_page(&state, &s, None, StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    roles: String,
}

/// `POST /console/users`: the setup link is shown once, on the answer page.
/// The full setup link, on the address the admin is using.
fn setup_url(state: &AppState, host: Option<&str>, raw: &str) -> String {
    let scheme = if state.0.config.dev { "http" } else { "https" };
    match host {
        Some(h) => format!("{scheme}://{h}/console/setup?token={raw}"),
        None => format!("/console/setup?token={raw}"),
    }
}

fn host(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.len() <= 255 && !h.contains(['/', ' ', '"', '<', '>']))
}

pub(crate) async fn create_user_form(
    state: &AppState,
    s: &Session,
    f: CreateForm,
    host: Option<&str>,
) -> ConsoleResult<Response> {
    let st = state.clone();
    let actor = s.actor();
    let (u, raw) = blocking(move || {
        let (u, raw) = create_user(st.0.store.as_ref(), f.name.trim(), &f.roles, now_ms())?;
        st.audit_after(
            &actor,
            Action::ConfigChanged,
            &format!("user:{}", u.id),
            &format!("console account created with roles {}", u.roles),
        );
        Ok((u, raw))
    })
    .await?;
    let created = views::CreatedUser {
        name: u.name.clone(),
        setup_url: setup_url(state, host, &raw),
    };
    users_page(state, s, Some(created), StatusCode::CREATED).await
}

pub(crate) async fn create_user_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<CreateForm>,
) -> ConsoleResult<Response> {
    let s = session(&state, &headers).await?;
    s.check_csrf(Some(&f.csrf))?;
    admin_only(&s)?;
    create_user_form(&state, &s, f, host(&headers)).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/users/{id}/reset`: a new setup link (lost phone, forgotten password).
pub(crate) async fn reset_user_route(
    state: &AppState,
    s: &Session,
    id: i64,
    host: Option<&str>,
) -> ConsoleResult<Response> {
    let st = state.clone();
    let actor = s.actor();
    let (u, raw) = blocking(move || {
        let (u, raw) = reset_user(st.0.store.as_ref(), id, now_ms())?;
        st.audit_after(
            &actor,
            Action::ConfigChanged,
            &format!("user:{id}"),
            "console account reset (new setup link)",
        );
        Ok((u, raw))
    })
    .await?;
    let created = views::CreatedUser {
        name: u.name.clone(),
        setup_url: setup_url(state, host, &raw),
    };
    users_page(state, s, Some(created), StatusCode::OK).await
}

pub(crate) async fn reset_user_handler(
    State(state): State<AppState>,
    ConsoleId(id): ConsoleId,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> ConsoleResult<Response> {
    let s = session(&state, &headers).await?;
    s.check_csrf(Some(&f.csrf))?;
    admin_only(&s)?;
    reset_user_route(&state, &s, id, host(&headers)).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct DisableForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    disabled: String,
}

/// `POST /console/users/{id}/disable` (`disabled=true|false`): a disabled person can no
/// longer sign in and their sessions end.
pub(crate) async fn disable_user(
    State(state): State<AppState>,
    ConsoleId(id): ConsoleId,
    headers: HeaderMap,
    Form(f): Form<DisableForm>,
) -> ConsoleResult<Response> {
    let s = session(&state, &headers).await?;
    s.check_csrf(Some(&f.csrf))?;
    admin_only(&s)?;
    // Exactly the form's two values: a missing or mistyped field must not disable a person.
    let disable = match f.disabled.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            return Err(Fail::page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "disabled is true or false",
            ))
        }
    };
    if id == s.user.id && disable {
        return Err(Fail::page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "you cannot disable your own account",
        ));
    }
    let st = state.clone();
    let actor = s.actor();
    blocking(move || {
        st.0.store.set_user_disabled(id, disable, now_ms())?;
        st.audit_after(
            &actor,
            Action::ConfigChanged,
            &format!("user:{id}"),
            if disable {
                "console account disabled"
            } else {
                "console account enabled"
            },
        );
        Ok(())
    })
    .await?;
    Ok(Redirect::to("/console/users").into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct RolesForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    roles: String,
}

/// `POST /console/users/{id}/roles`.
pub(crate) async fn set_roles(
    State(state): State<AppState>,
    ConsoleId(id): ConsoleId,
    headers: HeaderMap,
    Form(f): Form<RolesForm>,
) -> ConsoleResult<Response> {
    let s = session(&state, &headers).await?;
    s.check_csrf(Some(&f.csrf))?;
    admin_only(&s)?;
    let roles = Roles::parse(&f.roles)
        .map_err(|e| Fail::page(StatusCode::BAD_REQUEST, "invalid_request", e.to_string()))?;
    if id == s.user.id && !roles.can_admin() {
        return Err(Fail::page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "you cannot remove your own admin role",
        ));
    }
    let st = state.clone();
    let actor = s.actor();
    blocking(move || {
        st.0.store
            .set_user_roles(id, &roles.to_string(), now_ms())?;
        st.audit_after(
            &actor,
            Action::ConfigChanged,
            &format!("user:{id}"),
            &format!("console roles set to {roles}"),
        );
        Ok(())
    })
    .await?;
    Ok(Redirect::to("/console/users").into_response())
}

/// Reads a stored settings layer; one that no longer parses counts as absent.
fn stored_layer(
    state: &AppState,
    scope: &str,
) -> Result<Option<settings::ViewOverrides>, ApiError> {
    Ok(state
        .0
        .store
        .setting(scope)?
        .and_then(|j| settings::ViewOverrides::from_json(&j).ok()))
}

/// The scopes an admin may set: the organisation, each queue that has cases, and the harm
/// type being shown.
async fn scopes(state: &AppState, scope: Option<&str>) -> ConsoleResult<Vec<(String, String)>> {
    let mut out = vec![("org".to_string(), "The organisation (defaults)".to_string())];
    for q in state.0.console.queue_stats(state).await? {
        out.push((format!("queue:{}", q.queue), format!("Queue {}", q.queue)));
    }
    if let Some(s) = scope.filter(|s| s.starts_with("harm:")) {
        out.push((s.to_string(), format!("Harm type {}", &s["harm:".len()..])));
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
pub(crate) struct ScopeQuery {
    #[serde(default)]
    scope: Option<String>,
}

/// Checks a settings scope an admin names: `org`, `queue:NAME` or `harm:LABEL`.
fn check_scope(scope: &str) -> ConsoleResult<()> {
    let named = |prefix: &str| {
        scope
            .strip_prefix(prefix)
            .is_some_and(|q| !q.is_empty() && q.len() <= 64)
    };
    let ok = scope == "org" || named("queue:") || named("harm:");
    if ok {
        Ok(())
    } else {
        Err(Fail::page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "settings apply to the organisation (org), one queue (queue:NAME) or one harm type (harm:LABEL)",
        ))
    }
}

/// `GET /console/settings?scope=org|queue:NAME`: media display defaults.
pub(crate) async fn settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<ScopeQuery>,
) -> ConsoleResult<Response> {
    let s = session(&state, &headers).await?;
    admin_only(&s)?;
    let scope = q.scope.unwrap_or_else(|| "org".into());
    check_scope(&scope)?;
    let st = state.clone();
    let sc = scope.clone();
    let (org, layer) = blocking(move || {
        let org = stored_layer(&st, "org")?;
        let layer = if sc == "org" {
            None
        } else {
            stored_layer(&st, &sc)?
        };
        Ok((org, layer))
    })
    .await?;
    // What that scope's cases look like with no person's own view on top.
    let (queue, harm) = if scope.starts_with("harm:") {
        (None, layer.as_ref())
    } else {
        (layer.as_ref(), None)
    };
    let resolved = settings::resolve(org.as_ref(), queue, harm, None);
    let scopes = scopes(&state, Some(&scope)).await?;
    Ok(html(views::settings_page(
        &s.viewer(),
        &scope,
        &scopes,
        &resolved,
        None,
    ))
    .into_response())
}

/// `POST /console/settings` (`scope` = `org` or `queue:NAME`).
pub(crate) async fn save_settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> ConsoleResult<Response> {
    let s = session(&state, &headers).await?;
    let field = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    s.check_csrf(field("csrf"))?;
    admin_only(&s)?;
    let scope = field("scope").unwrap_or("org").to_string();
    check_scope(&scope)?;
    let o = match settings::ViewOverrides::from_form(&pairs) {
        Ok(o) => o,
        Err(e) => {
            let resolved = settings::resolve(None, None, None, None);
            let scopes = scopes(&state, Some(&scope)).await?;
            return Ok((
                StatusCode::BAD_REQUEST,
                html(views::settings_page(
                    &s.viewer(),
                    &scope,
                    &scopes,
                    &resolved,
                    Some(&e.to_string()),
                )),
            )
                .into_response());
        }
    };
    let json = o.to_json();
    let st = state.clone();
    let actor = s.actor();
    let sc = scope.clone();
    blocking(move || {
        st.0.store.put_setting(&sc, &json, now_ms())?;
        st.audit_after(
            &actor,
            Action::ConfigChanged,
            &format!("console:settings:{sc}"),
            "review view defaults changed",
        );
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&format!("/console/settings?scope={}", url_encode(&scope))).into_response())
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET /console/me`: the person's own view of media (people who see media only).
pub(crate) async fn my_view(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ConsoleResult<Response> {
    let s = session(&state, &headers).await?;
    if !s.roles.sees_media() {
        return Err(Fail::forbidden("your roles do not see media"));
    }
    let st = state.clone();
    let scope = format!("user:{}", s.user.id);
    let (org, mine) =
        blocking(move || Ok((stored_layer(&st, "org")?, stored_layer(&st, &scope)?))).await?;
    let resolved = settings::resolve(org.as_ref(), None, None, mine.as_ref());
    Ok(html(views::my_settings_page(&s.viewer(), &resolved, None)).into_response())
}

/// `POST /console/me`.
pub(crate) async fn save_my_view(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> ConsoleResult<Response> {
    let s = session(&state, &headers).await?;
    let csrf = pairs
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    s.check_csrf(csrf)?;
    if !s.roles.sees_media() {
        return Err(Fail::forbidden("your roles do not see media"));
    }
    let o = match settings::ViewOverrides::from_form(&pairs) {
        Ok(o) => o,
        Err(e) => {
            let resolved = settings::resolve(None, None, None, None);
            return Ok((
                StatusCode::BAD_REQUEST,
                html(views::my_settings_page(
                    &s.viewer(),
                    &resolved,
                    Some(&e.to_string()),
                )),
            )
                .into_response());
        }
    };
    let json = o.to_json();
    let st = state.clone();
    let scope = format!("user:{}", s.user.id);
    blocking(move || Ok(st.0.store.put_setting(&scope, &json, now_ms())?)).await?;
    Ok(Redirect::to("/console/me").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name is 1 to 64 of `[A-Za-z0-9._@-]`; a new person's setup link runs 72 hours, and
    /// so does the one a reset gives.
    #[test]
    fn names_are_checked_and_setup_links_run_72_hours() {
        use safeguard_store::console::ConsoleStore;
        let store = safeguard_store::SqliteStore::open_in_memory().unwrap();
        let now = 1_000_000;
        for bad in ["", &"a".repeat(MAX_NAME + 1), "a b", "ü", "a/b", "a:b"] {
            let e = create_user(&store, bad, "reviewer", now).unwrap_err();
            assert_eq!(
                (e.status, e.code),
                (StatusCode::BAD_REQUEST, "invalid_request"),
                "{bad:?}"
            );
        }
        for good in [&"a".repeat(MAX_NAME), "ada.lovelace_1-x@example", "Z"] {
            let (u, raw) = create_user(&store, good, "reviewer", now).unwrap();
            assert_eq!(u.setup_expires_at, Some(now + 72 * 3600 * 1000), "{good}");
            assert!(!raw.is_empty());
        }
        let e = create_user(&store, "Z", "reviewer", now).unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::CONFLICT, "user_exists"));
        let id = store.user_by_name("Z").unwrap().unwrap().id;
        let (u, _) = reset_user(&store, id, now + 5).unwrap();
        assert_eq!(u.setup_expires_at, Some(now + 5 + 72 * 3600 * 1000));
    }
}
