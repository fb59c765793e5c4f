//! Media for the item view, and the record of every reveal.
//!
//! The browser only ever gets media from here, never the platform's URL: each address is
//! signed for one object, one session and a few minutes. A copied address is refused in any
//! other session and after it expires. Every byte served is logged to the evidence access log
//! and the audit log before it leaves; every reveal (the click that unblurs) is recorded with
//! how long it was visible, which is also what sets CyberTipline's `fileViewedByEsp`.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use safeguard_engine::audit::Action;
use safeguard_media::reduce::ReduceOptions;
use serde::Deserialize;
use serde_json::json;

use super::{now_ms, policies, session, ConsoleResult, Fail};
use crate::action::sealed_object;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::state::{blocking, cpu, AppState};

#[derive(Debug, Deserialize)]
pub(crate) struct MediaQuery {
    #[serde(default)]
    exp: i64,
    #[serde(default)]
    sig: String,
    /// `reduced`: the reduced-detail rendering of an image instead of the original.
    view: Option<String>,
}

/// `GET /console/media/{object}?exp=…&sig=…`.
pub(crate) async fn media(
    State(state): State<AppState>,
    Path(object): Path<String>,
    ApiQuery(q): ApiQuery<MediaQuery>,
    headers: HeaderMap,
) -> ConsoleResult<Response> {
    let s = session(&state, &headers).await.map_err(Fail::json)?;
    if !s.roles.sees_media() {
        return Err(Fail::Json(ApiError::new(
            StatusCode::FORBIDDEN,
            "media_not_allowed",
            "your role does not see media",
        )));
    }
    let st = state.clone();
    // The first call loads the master key (blocking).
    let signer = blocking(move || st.0.console.signer(&st).cloned())
        .await
        .map_err(Fail::Json)?;
    signer
        .verify(&object, &s.session.id_hash, q.exp, &q.sig, now_ms())
        .map_err(|e| {
            Fail::Json(ApiError::new(
                StatusCode::FORBIDDEN,
                "media_url_invalid",
                format!("this media address is not valid for this session ({e}); reload the page"),
            ))
        })?;
    // `view` only tells the browser's cache the two apart; what is served follows the
    // settings in force, so an address from before a change, or one edited by hand, cannot
    // bring the original back while reduced detail is on (nor make a reveal's record wrong).
    if !matches!(q.view.as_deref(), None | Some("reduced")) {
        return Err(Fail::Json(ApiError::bad_request(
            "invalid_request",
            "view must be \"reduced\" or absent",
        )));
    }
    let st = state.clone();
    let actor = s.actor();
    let oid = object.clone();
    let uid = s.user.id;
    let (ev, reduced) = blocking(move || {
        let store = &st.0.store;
        let Some(ev) = store.evidence(&oid)? else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "evidence_not_found",
                "no such media",
            ));
        };
        if ev.wrapped_key.is_none() {
            return Err(ApiError::new(
                StatusCode::GONE,
                "evidence_destroyed",
                "this media was destroyed by its retention period",
            ));
        }
        let reduced = reduced_for(store.as_ref(), &ev, uid)?;
        // Logged before the bytes leave: a failure to log refuses the read.
        st.0.store
            .log_access(&actor, "console_view", &oid, now_ms())?;
        st.audit(
            &actor,
            Action::VaultRead,
            &oid,
            // Recorded before the decryption, so it says what the read was for, not that
            // the reduced copy was drawn (a file that does not decode gets none).
            if reduced {
                "read to show a reduced-detail copy in the review console"
            } else {
                "shown blurred in the review console"
            },
        )?;
        Ok((ev, reduced))
    })
    .await
    .map_err(Fail::Json)?;
    let vault = state.vault().await.map_err(Fail::Json)?;
    let obj = sealed_object(&ev, ev.wrapped_key.clone().unwrap_or_default());
    let bytes = vault
        .get(&obj)
        .await
        .map_err(|e| Fail::Json(crate::action::vault_read_error(&e, &object)))?;
    let (bytes, content_type) = if reduced {
        let limits = state.0.config.media_limits();
        let decoder = state.0.decoder.clone();
        let png = cpu(&state, move || {
            decoder
                .reduced_png(&bytes, &limits, &ReduceOptions::default())
                .map_err(crate::media::decode_error)
        })
        .await
        .map_err(Fail::Json)?;
        (png, "image/png")
    } else {
        let t = sniff(&bytes, &ev.media_kind);
        (bytes, t)
    };
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    Ok(resp)
}

/// The content type from the first bytes, for the kinds the vault keeps; anything else is
/// served as bytes the browser will not render.
fn sniff(b: &[u8], kind: &str) -> &'static str {
    match crate::reports::extension(b, kind) {
        "jpg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        _ => "application/octet-stream",
    }
}

/// Whether media of `media_kind` is shown as the reduced-detail copy under `settings`: images
/// only (videos have no reduced view). The one rule behind the address a case page gives, what
/// the media route serves, and what a reveal records.
pub(crate) fn is_reduced(
    settings: &safeguard_console::settings::ViewSettings,
    media_kind: &str,
) -> bool {
    settings.reduced_detail && media_kind != "video"
}

/// [`is_reduced`] for `user` and `ev` under the settings in force for its case, decided on the
/// server whatever the address asked for.
fn reduced_for(
    store: &dyn safeguard_store::Store,
    ev: &safeguard_store::action::Evidence,
    user: safeguard_store::console::UserId,
) -> Result<bool, ApiError> {
    Ok(match store.case(ev.case_id)? {
        Some(case) => is_reduced(
            &super::review::view_settings(store, &case, user)?,
            &ev.media_kind,
        ),
        None => false,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevealReq {
    case_id: i64,
    object_id: String,
}

fn csrf_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-csrf-token").and_then(|v| v.to_str().ok())
}

/// `POST /console/reveals` (JSON, `X-CSRF-Token`): a person unblurs one item. Refused past
/// today's reveal cap. Answers the reveal's id and how long it may stay on screen.
pub(crate) async fn reveal_start(
    State(state): State<AppState>,
    headers: HeaderMap,
    crate::extract::JsonBody(req): crate::extract::JsonBody<RevealReq>,
) -> ConsoleResult<Json<serde_json::Value>> {
    let s = session(&state, &headers).await.map_err(Fail::json)?;
    s.check_csrf(csrf_header(&headers)).map_err(Fail::json)?;
    if !s.roles.sees_media() {
        return Err(Fail::Json(ApiError::new(
            StatusCode::FORBIDDEN,
            "media_not_allowed",
            "your role does not see media",
        )));
    }
    let st = state.clone();
    let s2 = s.clone();
    let pol = policies(&state.0.config.console).exposure;
    let max_ms = pol.reveal_max_ms;
    let r = blocking(move || {
        let store = &st.0.store;
        let ev = store.evidence(&req.object_id)?;
        if ev.as_ref().map(|e| e.case_id) != Some(req.case_id) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "evidence_not_found",
                "no such item in this case",
            ));
        }
        let now = now_ms();
        if let Some(what) = super::review::cap_reached(&st, &s2)? {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "exposure_cap_reached",
                format!(
                    "you have reached today's limit on {}",
                    super::review::cap_text(what)
                ),
            ));
        }
        // Under reduced detail an image is shown only as the server's stylised copy, so its
        // reveal is not the platform viewing the file (CyberTipline's `fileViewedByEsp`); the
        // access line says which it was.
        let reduced = match &ev {
            Some(e) => reduced_for(store.as_ref(), e, s2.user.id)?,
            None => false,
        };
        let r = store.start_reveal(s2.user.id, req.case_id, &req.object_id, now)?;
        let kind = if reduced { "reveal_reduced" } else { "reveal" };
        store.log_access(&s2.actor(), kind, &req.object_id, now)?;
        st.audit(
            &s2.actor(),
            Action::MediaRevealed,
            &req.object_id,
            &if reduced {
                format!("case {}, reduced detail", req.case_id)
            } else {
                format!("case {}", req.case_id)
            },
        )?;
        Ok(r)
    })
    .await
    .map_err(Fail::Json)?;
    Ok(Json(json!({"reveal_id": r.id, "max_ms": max_ms})))
}

/// `POST /console/reveals/{id}/end`: the item was blurred again (clicked, scrolled away,
/// timed out, or the page closed). Idempotent.
pub(crate) async fn reveal_end(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
) -> ConsoleResult<Json<serde_json::Value>> {
    let s = session(&state, &headers).await.map_err(Fail::json)?;
    s.check_csrf(csrf_header(&headers)).map_err(Fail::json)?;
    let st = state.clone();
    let uid = s.user.id;
    let r = blocking(move || {
        let now = now_ms();
        let r = st.0.store.end_reveal(id, uid, now).map_err(|e| match e {
            safeguard_store::Error::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "reveal_not_found", "no such reveal")
            }
            safeguard_store::Error::Conflict(_) => ApiError::new(
                StatusCode::FORBIDDEN,
                "reveal_not_yours",
                "this reveal is someone else's",
            ),
            other => other.into(),
        })?;
        Ok(r)
    })
    .await
    .map_err(Fail::Json)?;
    Ok(Json(json!({
        "reveal_id": r.id,
        "visible_ms": r.ended_at.map(|e| e - r.started_at),
    })))
}
