//! HMA-compatible routes: the same paths, parameters and JSON shapes as Meta's HMA
//! (`docs/hma-api.md`), so platforms integrated with HMA can point their code here unchanged.
//!
//! Differences, all deliberate: every route needs an API key (except `/status*`); error
//! bodies carry HMA's `message` plus Safeguard's `error` object with a stable code; photos
//! also get `md5`, `sha1` and `sha256`; `video_md5` is matched as an MD5 of the file bytes;
//! videos also get `vpdq` (which HMA leaves out of its service), in python-threatexchange's
//! JSON form, and a vPDQ match's `distance` is python-threatexchange's
//! `"<query %>%[<compared %>%]"` with both percentages also given as numbers.
//!
//! One module per HMA route group: [`hashing`] (`/h`), [`matching`] (`/m`), [`curation`]
//! (`/c`); the HMA exchange routes (`/c/exchanges...`) live beside the scheduler in
//! `crate::exchanges`.

mod curation;
mod hashing;
mod matching;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, HmaError};
use crate::state::AppState;

pub use curation::curate_routes;
pub use hashing::hash_routes;
pub use matching::match_routes;

type HmaResult<T> = Result<T, HmaError>;

fn hma_bad(message: impl Into<String>) -> HmaError {
    HmaError(ApiError::bad_request("invalid_request", message))
}

/// HMA validates some routes with pydantic, which answers 422 for a missing field.
fn hma_missing(field: &str) -> HmaError {
    HmaError(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing_parameter",
        format!("{field} is required"),
    ))
}

// ---------------------------------------------------------------- status

/// `GET /status`: 200 `I-AM-ALIVE` once the indexes are loaded, 503 `INDEX-NOT-LOADED` before.
pub async fn status(State(state): State<AppState>) -> Response {
    if state.0.engine.get().is_some() {
        (StatusCode::OK, "I-AM-ALIVE").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "INDEX-NOT-LOADED").into_response()
    }
}

/// `GET /status/live`: 200 whenever the process answers.
pub async fn status_live() -> Response {
    (StatusCode::OK, "I-AM-ALIVE").into_response()
}
