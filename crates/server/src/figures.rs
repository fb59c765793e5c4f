//! `GET /v1/figures`: the transparency figures of a period, as JSON or CSV, computed from the
//! store (see `safeguard_engine::figures`).

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::state::{blocking, AppState};

/// Routes needing the `audit` scope (or `admin`).
pub fn audit_routes() -> Router<AppState> {
    Router::new().route("/v1/figures", get(figures))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FiguresQuery {
    /// Period start, Unix milliseconds, inclusive.
    from: i64,
    /// Period end, Unix milliseconds, exclusive.
    to: i64,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

async fn figures(
    State(state): State<AppState>,
    q: Result<Query<FiguresQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q.map_err(|e| {
        ApiError::bad_request(
            "invalid_request",
            format!("give the period as from and to, Unix milliseconds ({e})"),
        )
    })?;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!(
                    "format must be json or csv; got {}",
                    crate::extract::short(other)
                ),
            ))
        }
    };
    let store = state.0.store.clone();
    let (from, to) = (q.from, q.to);
    let f = blocking(move || {
        Ok(safeguard_engine::figures::compute(
            store.as_ref(),
            from,
            to,
        )?)
    })
    .await?;
    if csv {
        let mut r = f.to_csv().into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        r.headers_mut().insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"safeguard-figures.csv\""),
        );
        Ok(r)
    } else {
        Ok(Json(f).into_response())
    }
}
