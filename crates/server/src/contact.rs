//! `POST /v1/contact/decide`: may this account message, request, suggest or see that one,
//! when either may be a child (Ofcom ICU F1/F2)? The decision is `safeguard_contact`'s; this
//! module parses, applies the configured policy (`[contact]`) and answers.
//!
//! Accounts and their relationship come inline with each request: the platform already holds
//! its social graph and age signals, and the decision is a pure function of them.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

use safeguard_contact::{decide, ContactPolicy, ContactRequest};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Largest request body, bytes: two account ids (256 bytes each at most) and a few names fit
/// many times over; anything larger is not a contact request.
pub const MAX_CONTACT_REQUEST_BYTES: usize = 16 * 1024;

/// Routes needing the `submit` scope (the platform's backend, deciding before it acts).
pub fn submit_routes() -> Router<AppState> {
    Router::new().route("/v1/contact/decide", post(decide_route))
}

fn contact_error(e: safeguard_contact::Error) -> ApiError {
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
    let request = ContactRequest::from_json(text).map_err(contact_error)?;
    request.validate().map_err(contact_error)?;
    // Validated when the configuration was loaded; compiling it is a few checks.
    let policy = ContactPolicy::new(state.0.config.contact.clone()).map_err(ApiError::internal)?;
    let decision = decide(&request, &policy);
    Ok(Json(
        serde_json::to_value(&decision).map_err(ApiError::internal)?,
    ))
}
