//! `POST /v1/contact/decide`: may this account message, request, suggest or see that one,
//! when either may be a child (Ofcom ICU F1/F2)? The decision is `safeguard_contact`'s; this
//! module parses, applies the configured policy (`[contact]`) and answers.
//!
//! Accounts and their relationship come inline with each request (the platform already holds
//! its social graph and age signals, and the decision is a pure function of them), or are
//! filled from what the platform keeps in Safeguard (`/v1/accounts`, `crate::accounts`): an
//! account given as `{"id": ...}` alone is read from the store, and so is a left-out
//! `relationship`. The answer's `from_store` names what was read.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use safeguard_contact::{decide, ContactPolicy, ContactRequest, RawRequest, Relationship};

use crate::accounts::{account_not_found, stored_to_account};
use crate::error::{ApiError, ApiResult};
use crate::state::{blocking, AppState};

/// Largest request body, bytes: two account ids (256 bytes each at most) and a few names fit
/// many times over; anything larger is not a contact request.
pub const MAX_CONTACT_REQUEST_BYTES: usize = 16 * 1024;

/// Routes needing the `submit` scope (the platform's backend, deciding before it acts).
pub fn submit_routes() -> Router<AppState> {
    Router::new().route("/v1/contact/decide", post(decide_route))
}

pub(crate) fn contact_error(e: safeguard_contact::Error) -> ApiError {
    ApiError::bad_request(e.code(), e.to_string())
}

async fn decide_route(State(state): State<AppState>, body: Bytes) -> ApiResult<Json<Value>> {
    if body.len() > MAX_CONTACT_REQUEST_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "a contact request is at most {MAX_CONTACT_REQUEST_BYTES} bytes, got {}",
                body.len()
            ),
        ));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("malformed_request", "the body is not UTF-8 JSON"))?;
    let mut value: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request("malformed_request", e.to_string()))?;
    let from_store = fill_from_store(&state, &mut value).await?;
    let request = ContactRequest::try_from(
        serde_json::from_value::<RawRequest>(value)
            .map_err(|e| ApiError::bad_request("malformed_request", e.to_string()))?,
    )
    .map_err(contact_error)?;
    // Validated when the configuration was loaded; compiling it is a few checks.
    let policy = ContactPolicy::new(state.0.config.contact.clone()).map_err(ApiError::internal)?;
    let decision = decide(&request, &policy);
    let mut answer = serde_json::to_value(&decision).map_err(ApiError::internal)?;
    if let Some(obj) = answer.as_object_mut() {
        obj.insert("from_store".into(), json!(from_store));
    }
    Ok(Json(answer))
}

/// Fills what the request leaves out from the stored accounts and relationships: an account
/// object without `age_band` (and `assurance`) is read by its id, and a missing
/// `relationship` is the stored one (`none` when none is stored). Returns the names of what
/// was read (`actor`, `target`, `relationship`). Nothing is read for a request that is
/// complete, so inline callers never touch the store.
async fn fill_from_store(state: &AppState, value: &mut Value) -> ApiResult<Vec<&'static str>> {
    let Some(obj) = value.as_object_mut() else {
        return Ok(Vec::new());
    };
    // A request missing its shape is malformed whatever is stored: the parser says so.
    let shaped = obj.get("actor").is_some_and(Value::is_object)
        && obj.get("target").is_some_and(Value::is_object)
        && obj.contains_key("action");
    if !shaped {
        return Ok(Vec::new());
    }
    let mut wanted: Vec<(&'static str, String)> = Vec::new();
    for side in ["actor", "target"] {
        if let Some(Value::Object(acc)) = obj.get(side) {
            if !acc.contains_key("age_band") {
                if acc.contains_key("assurance") {
                    return Err(ApiError::bad_request(
                        "malformed_request",
                        format!(
                            "{side}: give age_band with assurance, or the id alone to use the stored account"
                        ),
                    ));
                }
                if let Some(Value::String(id)) = acc.get("id") {
                    wanted.push((side, id.clone()));
                }
            }
        }
    }
    let ids = |side: &str| -> Option<String> {
        match obj.get(side) {
            Some(Value::Object(acc)) => match acc.get("id") {
                Some(Value::String(id)) => Some(id.clone()),
                _ => None,
            },
            _ => None,
        }
    };
    // The same account on both sides is refused as the request's own check refuses it, before
    // anything is read: otherwise the answer depended on what the store holds (a missing
    // account, or a relationship that was never looked up).
    if let (Some(a), Some(b)) = (ids("actor"), ids("target")) {
        if a == b {
            return Err(ApiError::bad_request(
                "invalid_account",
                format!(
                    "target.id: actor and target are the same account `{}`; a contact decision \
                     is between two accounts",
                    crate::extract::short(&a)
                ),
            ));
        }
    }
    let pair = if obj.contains_key("relationship") {
        None
    } else {
        ids("actor").zip(ids("target"))
    };
    if wanted.is_empty() && pair.is_none() {
        return Ok(Vec::new());
    }
    for (side, id) in &wanted {
        safeguard_contact::validate_account_id(&format!("{side}.id"), id).map_err(contact_error)?;
    }
    let store = state.0.store.clone();
    let lookups = wanted.clone();
    let lookup_pair = pair.clone();
    let (accounts, relationship) = blocking(move || {
        let mut found = Vec::with_capacity(lookups.len());
        for (side, id) in &lookups {
            found.push((*side, store.account(id)?));
        }
        let rel = match &lookup_pair {
            Some((a, b)) if a != b => Some(store.relationship(a, b)?),
            _ => None,
        };
        Ok((found, rel))
    })
    .await?;
    let mut from_store = Vec::new();
    for (side, stored) in accounts {
        let stored = stored.ok_or_else(|| account_not_found(&format!("{side}.id")))?;
        let account = stored_to_account(&stored)?;
        obj.insert(
            side.to_string(),
            json!({
                "id": account.id,
                "age_band": account.age_band.as_str(),
                "assurance": {
                    "method": account.assurance.method.as_str(),
                    "confidence": account.assurance.confidence.get(),
                },
            }),
        );
        from_store.push(side);
    }
    if let Some(rel) = relationship {
        let name = rel
            .map(|r| r.relationship)
            .unwrap_or_else(|| Relationship::Unrelated.as_str().to_string());
        obj.insert("relationship".into(), Value::String(name));
        from_store.push("relationship");
    }
    Ok(from_store)
}
