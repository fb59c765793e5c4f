//! HMA's hashing routes (`/h/hash`) and the upload and URL helpers the other groups share.

use std::collections::BTreeMap;

use axum::extract::{DefaultBodyLimit, Multipart, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;

use super::{hma_missing, HmaResult};
use crate::error::ApiError;
use crate::extract::UploadForm;
use crate::media::{
    check_photo_upload, fetch, hash_signals, is_video_upload, read_upload, split_list, ContentType,
};
use crate::state::{cpu, AppState};

/// HMA's name of a video file's MD5.
const VIDEO_MD5: &str = "video_md5";

/// The signals of uploaded or fetched media as HMA gives them. Photos and decodable videos
/// as [`hash_signals`]; a video that cannot be decoded still gets its `video_md5` (HMA hashes
/// the bytes and never decodes), and only its vPDQ is left out (see [`undecodable`]). A
/// selection without `video_md5` (`types=vpdq`) keeps the decode error: the caller asked for
/// nothing else.
pub(super) async fn hma_hash_signals(
    state: &AppState,
    ct: ContentType,
    bytes: Bytes,
    types: Option<&[String]>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let names = |keep: &dyn Fn(&str) -> bool| {
        types.is_none_or(|t| t.iter().map(|x| x.trim()).any(|x| !x.is_empty() && keep(x)))
    };
    if ct != ContentType::Video || !names(&|t| t == VIDEO_MD5) || !names(&|t| t != VIDEO_MD5) {
        // Photos, an MD5-only selection (nothing is decoded) and one without the MD5.
        return hash_signals(state, ct, bytes, types).await;
    }
    // The MD5 is taken first, so that the bytes can move into the decode and still give an
    // answer when it fails; the decode takes its own MD5 on success (a second pass over
    // bytes already in memory, far cheaper than the decode itself).
    let (md5, bytes) = cpu(state, move || {
        use md5::Digest;
        Ok((hex::encode(md5::Md5::digest(&bytes)), bytes))
    })
    .await?;
    match hash_signals(state, ct, bytes, types).await {
        Ok(signals) => Ok(signals),
        Err(e) if undecodable(&e) => {
            tracing::debug!(code = %e.code, "video not decodable; giving its MD5 only");
            Ok(BTreeMap::from([(VIDEO_MD5.to_string(), md5)]))
        }
        Err(e) => Err(e),
    }
}

/// Whether a video hashing error says the bytes are not a decodable video (unsupported,
/// corrupt, truncated, empty, or not decoded within the time budget): 415 and 422. Over a
/// limit (413: too large, too long, too many frames) stays an error, as on every route.
fn undecodable(e: &ApiError) -> bool {
    use axum::http::StatusCode;
    matches!(
        e.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::UNPROCESSABLE_ENTITY
    )
}

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
    hma_hash_signals(state, ct, bytes.into(), types.as_deref()).await
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
        hma_hash_signals(&state, ct, bytes, types.as_deref()).await?,
    ))
}

/// The one file of an HMA upload. Its field name is the content type (`photo`, `video`); a
/// field named `file` takes the `content_type` parameter, or else what its bytes are.
pub(super) async fn upload_file(
    state: &AppState,
    mp: Result<Multipart, axum::extract::multipart::MultipartRejection>,
    content_type: Option<&str>,
) -> Result<(ContentType, Bytes), ApiError> {
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
