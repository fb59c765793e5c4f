//! The one error type of the HTTP layer, and the one place errors become responses.
//!
//! Every error body has the shape `{"error": {"code", "message", "request_id"}}`. Codes are
//! stable snake_case strings (see `docs/api.md`); 4xx messages say what to fix; 5xx messages
//! say only "internal error" and the detail goes to the log under the same request id.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::auth::Denied;

tokio::task_local! {
    /// The id of the request being handled (set by the request-id middleware).
    pub static REQUEST_ID: String;
}

/// The current request id, or "-" outside a request.
pub fn request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".into())
}

/// An error answered to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// What to fix (4xx) or "internal error" (5xx).
    pub message: String,
}

impl ApiError {
    /// A 4xx (or other) error with a message for the client.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 503 `overloaded`: a shared limit (requests in flight, the byte budget of buffered
    /// bodies) is used up. Answered with `Retry-After`, as the condition is transient.
    pub fn overloaded(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message)
    }

    /// 404 for an unknown route or resource.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500: logs the detail, tells the client nothing but the request id.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(request_id = %request_id(), error = %detail, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "request_id": request_id(),
            }
        });
        with_retry_after(self.code, (self.status, Json(body)).into_response())
    }
}

/// Seconds a client is asked to wait after a 503 `overloaded`.
pub const RETRY_AFTER_SECS: u32 = 1;

fn with_retry_after(code: &str, mut resp: Response) -> Response {
    if code == "overloaded" {
        resp.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(RETRY_AFTER_SECS),
        );
    }
    resp
}

impl From<safeguard_store::Error> for ApiError {
    /// Through the engine's mapping, so a store error answers the same whichever layer
    /// surfaced it.
    fn from(e: safeguard_store::Error) -> ApiError {
        ApiError::from(safeguard_engine::Error::from(e))
    }
}

impl From<safeguard_engine::Error> for ApiError {
    fn from(e: safeguard_engine::Error) -> ApiError {
        use safeguard_engine::Error as E;
        if !e.is_client_error() {
            return ApiError::internal(e);
        }
        let status = match &e {
            E::BankNotFound(_)
            | E::ContentNotFound(_)
            | E::CaseNotFound(_)
            | E::RuleNotFound(_) => StatusCode::NOT_FOUND,
            E::BankExists(_) | E::Conflict(_) | E::SubmissionConflict(_) => StatusCode::CONFLICT,
            // The request is well formed; the case's state does not allow it.
            E::InvalidTransition(_) | E::ApprovalRequired(_) | E::AlreadyApproved(_) => {
                StatusCode::CONFLICT
            }
            // Authenticated, but this person may not do this to this case.
            E::SamePerson(_) => StatusCode::FORBIDDEN,
            // Over a named size, duration or frame-count limit: the content is too large.
            E::Media(m)
                if matches!(
                    m.code(),
                    "too_large" | "video_too_large" | "video_too_long" | "too_many_frames"
                ) =>
            {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            E::Media(m) if matches!(m.code(), "unsupported_format" | "unsupported_video") => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            E::Media(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> ApiError {
        match d {
            Denied::Missing => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_api_key",
                "send an API key: Authorization: Bearer <key>",
            ),
            Denied::Invalid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "the API key is not valid",
            ),
            Denied::Forbidden => ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "the API key lacks the scope this route needs",
            ),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::internal(format!("worker task failed: {e}"))
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// An error on an HMA-compatible route: HMA's `{"message": ...}` body, plus Safeguard's
/// `error` object so clients can also use the stable code.
#[derive(Debug, Clone)]
pub struct HmaError(pub ApiError);

impl From<ApiError> for HmaError {
    fn from(e: ApiError) -> HmaError {
        HmaError(e)
    }
}

impl From<safeguard_engine::Error> for HmaError {
    fn from(e: safeguard_engine::Error) -> HmaError {
        HmaError(e.into())
    }
}

impl IntoResponse for HmaError {
    fn into_response(self) -> Response {
        let e = self.0;
        let body = serde_json::json!({
            "message": e.message,
            "error": {
                "code": e.code,
                "message": e.message,
                "request_id": request_id(),
            }
        });
        with_retry_after(e.code, (e.status, Json(body)).into_response())
    }
}
