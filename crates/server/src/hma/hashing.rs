//! HMA's hashing routes (`/h/hash`) and the upload and URL helpers the other groups share.

use std::collections::BTreeMap;

use axum::extract::{DefaultBodyLimit, Multipart, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::{hma_missing, HmaResult};
use crate::error::ApiError;
use crate::media::{
    check_photo_upload, fetch, hash_signals, is_video_upload, read_upload, split_list, ContentType,
    UploadForm,
};
use crate::state::AppState;

/// Routes needing the `hash` scope.
pub fn hash_routes() -> Router<AppState> {
    // Uploads may be videos: the upload extractor applies the video body limit instead.
    Router::new().route(
        "/h/hash",
        get(hash_get)
            .post(hash_post)
            .layer(DefaultBodyLimit::disable()),
    )
}

#[derive(Debug, Deserialize)]
struct HashQuery {
    url: Option<String>,
    content_type: Option<String>,
    types: Option<String>,
}

pub(super) async fn hash_url(
    state: &AppState,
    url: &str,
    content_type: Option<&str>,
    types: Option<&str>,
) -> Result<BTreeMap<String, String>, ApiError> {
    // Without an explicit content_type, HMA trusts the server's Content-Type header; the
    // bytes are a better witness, so images are recognised by content and anything else is
    // hashed as a video file.
    let ct = content_type.map(ContentType::parse).transpose()?;
    let bytes = fetch(state, url).await?;
    let ct = ct.unwrap_or_else(|| {
        if safeguard_media::sniff(&bytes).is_some() {
            ContentType::Photo
        } else {
            ContentType::Video
        }
    });
    let types = split_list(types);
    hash_signals(state, ct, bytes, types.as_deref()).await
}

async fn hash_get(
    State(state): State<AppState>,
    Query(q): Query<HashQuery>,
) -> HmaResult<Json<BTreeMap<String, String>>> {
    let url = q
        .url
        .filter(|u| !u.is_empty())
        .ok_or_else(|| hma_missing("url"))?;
    Ok(Json(
        hash_url(&state, &url, q.content_type.as_deref(), q.types.as_deref()).await?,
    ))
}

async fn hash_post(
    State(state): State<AppState>,
    Query(q): Query<HashQuery>,
    UploadForm(mp): UploadForm,
) -> HmaResult<Json<BTreeMap<String, String>>> {
    let (ct, bytes) = upload_file(&state, mp, q.content_type.as_deref()).await?;
    let types = split_list(q.types.as_deref());
    Ok(Json(
        hash_signals(&state, ct, bytes, types.as_deref()).await?,
    ))
}

/// The one file of an HMA upload. Its field name is the content type (`photo`, `video`); a
/// field named `file` takes the `content_type` parameter, or else what its bytes are.
pub(super) async fn upload_file(
    state: &AppState,
    mp: Result<Multipart, axum::extract::multipart::MultipartRejection>,
    content_type: Option<&str>,
) -> Result<(ContentType, Vec<u8>), ApiError> {
    let mp = mp.map_err(|_| {
        ApiError::bad_request(
            "invalid_multipart",
            "Missing multipart/form-data file upload",
        )
    })?;
    let up = read_upload(mp).await?;
    let (field, bytes) = up.file.ok_or_else(|| {
        ApiError::bad_request("missing_file", "Missing multipart/form-data file upload")
    })?;
    let ct = upload_content_type(&field, &bytes, content_type)?;
    if ct == ContentType::Photo {
        check_photo_upload(state, &bytes)?;
    }
    Ok((ct, bytes))
}

/// The content type of an uploaded file: its field name (`photo`, `video`), or for a field
/// named `file` the `content_type` parameter, else what the bytes are.
pub(super) fn upload_content_type(
    field: &str,
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<ContentType, ApiError> {
    match (field, content_type.filter(|c| !c.is_empty())) {
        ("file", Some(ct)) => ContentType::parse(ct),
        ("file", None) if is_video_upload(field, bytes) => Ok(ContentType::Video),
        ("file", None) => Ok(ContentType::Photo),
        _ => ContentType::parse(field),
    }
}
