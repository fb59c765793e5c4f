//! Request extractors shared by the HMA and native routes, and the bounding of request text
//! echoed back in errors. They live apart from any route group so that every group, and the
//! exchange and webhook routes, can use them without importing each other.

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body whose rejections use the API's error shape.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(e) => Err(match e {
                JsonRejection::MissingJsonContentType(_) => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send Content-Type: application/json",
                ),
                JsonRejection::JsonDataError(e) => {
                    ApiError::bad_request("invalid_body", e.body_text())
                }
                JsonRejection::JsonSyntaxError(e) => {
                    ApiError::bad_request("invalid_json", e.body_text())
                }
                other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is over the size limit",
                ),
                other => ApiError::bad_request("invalid_body", other.body_text()),
            }),
        }
    }
}

/// A path parameter whose rejections (`/v1/cases/abc` where an id is a number) use the API's
/// error shape instead of axum's plain text.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(ApiPath(v)),
            // A route and its handler disagreeing on the parameters is ours, not the caller's.
            Err(e) if e.status().is_server_error() => Err(ApiError::internal(e.body_text())),
            Err(e) => Err(ApiError::bad_request("invalid_request", e.body_text())),
        }
    }
}

/// A query string whose rejections (`?limit=-1`, an unknown parameter) use the API's error
/// shape instead of axum's plain text.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))
    }
}

/// A JSON body that may be left out: none (or only whitespace) is `T::default()`; any other
/// body is read by [`JsonBody`], with its content-type rule and its codes.
pub async fn optional_json<T: DeserializeOwned + Default>(
    headers: &axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let mut req = Request::new(axum::body::Body::from(body));
    if let Some(ct) = headers.get(axum::http::header::CONTENT_TYPE) {
        req.headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, ct.clone());
    }
    let JsonBody(v) = JsonBody::from_request(req, &()).await?;
    Ok(v)
}

/// A multipart upload that may carry a video. The upload routes lift the global body limit
/// (`limits.max_body_bytes`, sized for images and JSON) with `DefaultBodyLimit::disable()`,
/// and this extractor applies the video limit (`video.max_bytes`) instead; an image in such
/// an upload is still held to the image limits when it is decoded.
#[derive(Debug)]
pub struct UploadForm(pub Result<Multipart, MultipartRejection>);

impl FromRequest<AppState> for UploadForm {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let c = &state.0.config;
        let limit = c.video.max_bytes.max(c.limits.max_body_bytes);
        let (parts, body) = req.into_parts();
        let body = axum::body::Body::new(http_body_util::Limited::new(body, limit));
        Ok(UploadForm(
            Multipart::from_request(Request::from_parts(parts, body), state).await,
        ))
    }
}

/// At most 64 characters of `s`: request text echoed in an error message stays bounded
/// however long the client sent it.
pub(crate) fn short(s: &str) -> String {
    s.chars().take(64).collect()
}
