//! Getting media into the engine: multipart uploads, URL fetches, and hashing them into
//! signals off the reactor.

use std::collections::BTreeMap;

use axum::extract::multipart::{Multipart, MultipartError};
use axum::http::StatusCode;
use bytes::{Bytes, BytesMut};
use safeguard_engine::video::HashedVideo;
use safeguard_engine::{HashedMedia, SignalType, VpdqMatchConfig};

use crate::error::{ApiError, ApiResult};
use crate::extract::short;
use crate::fetch::FetchError;
use crate::state::{cpu, AppState};

/// What kind of media an upload or URL holds (HMA's content types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// An image.
    Photo,
    /// A video: vPDQ of its frames, and MD5 of its bytes.
    Video,
}

impl ContentType {
    /// Parses HMA's content type names.
    pub fn parse(s: &str) -> ApiResult<ContentType> {
        match s {
            "photo" => Ok(ContentType::Photo),
            "video" => Ok(ContentType::Video),
            other => Err(ApiError::bad_request(
                "unknown_content_type",
                format!("no such content_type: '{}'", short(other)),
            )),
        }
    }

    /// Signal types computed for this content type, with the names HMA uses for them.
    pub fn signal_types(self) -> &'static [(&'static str, SignalType)] {
        match self {
            ContentType::Photo => &[
                ("pdq", SignalType::Pdq),
                ("md5", SignalType::Md5),
                ("sha1", SignalType::Sha1),
                ("sha256", SignalType::Sha256),
            ],
            ContentType::Video => &[("video_md5", SignalType::Md5), ("vpdq", SignalType::Vpdq)],
        }
    }
}

pub(crate) fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is over the size limit",
        )
    } else {
        ApiError::bad_request("invalid_multipart", format!("invalid multipart body: {e}"))
    }
}

/// An uploaded file and the form's text fields.
#[derive(Debug, Default)]
pub struct Upload {
    /// (field name, bytes) of the one file: the bytes as received, not copied.
    pub file: Option<(String, Bytes)>,
    /// Text fields by name.
    pub fields: BTreeMap<String, String>,
}

/// Largest text field of a multipart form, in bytes (metadata JSON, a note).
pub const MAX_FORM_FIELD_BYTES: usize = 512 * 1024;

/// Reads a multipart form: at most one file (a part with a filename, or named like a content
/// type), plus text fields.
pub async fn read_upload(mut mp: Multipart) -> ApiResult<Upload> {
    let mut up = Upload::default();
    while let Some(mut field) = mp.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_string();
        let is_file = field.file_name().is_some()
            || matches!(name.as_str(), "photo" | "video" | "file" | "media");
        if is_file {
            if up.file.is_some() {
                return Err(ApiError::bad_request(
                    "too_many_files",
                    "Only one file allowed per request",
                ));
            }
            let data = field.bytes().await.map_err(multipart_error)?;
            up.file = Some((name, data));
        } else {
            // Capped as it is read: a huge text field is refused at the cap, not buffered first.
            let mut data = BytesMut::new();
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                if data.len() + chunk.len() > MAX_FORM_FIELD_BYTES {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        format!(
                            "form field {} is over {MAX_FORM_FIELD_BYTES} bytes",
                            short(&name)
                        ),
                    ));
                }
                data.extend_from_slice(&chunk);
            }
            let text = String::from_utf8(data.into()).map_err(|_| {
                ApiError::bad_request(
                    "invalid_multipart",
                    format!("form field {} is not UTF-8", short(&name)),
                )
            })?;
            up.fields.insert(name, text);
        }
    }
    Ok(up)
}

/// Fetches a URL with the SSRF guard. The body is charged to the byte budget of buffered
/// bodies once fetched (it is bounded by `fetch.max_bytes` while it arrives).
pub async fn fetch(state: &AppState, url: &str) -> ApiResult<Vec<u8>> {
    let body = state.0.fetcher.fetch(url).await.map_err(|e| {
        let status = match &e {
            FetchError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            FetchError::Forbidden(_) | FetchError::Disabled => StatusCode::FORBIDDEN,
            FetchError::Failed(_) => StatusCode::BAD_GATEWAY,
            FetchError::InvalidUrl(_) => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.code(), e.to_string())
    })?;
    crate::middleware::charge_budget(body.len())?;
    Ok(body)
}

/// Decodes a video and hashes its frames (vPDQ) and bytes, on the CPU pool, within the video
/// limits and the decode-time budget of the configuration.
pub async fn hash_video(state: &AppState, bytes: impl Into<Bytes>) -> ApiResult<HashedVideo> {
    let bytes: Bytes = bytes.into();
    let opts = state.0.config.video_options();
    let decoder = state.0.decoder.clone();
    cpu(state, move || {
        decoder.hash_video(bytes, &opts).map_err(decode_error)
    })
    .await
}

/// A decode's failure as the client sees it. The input's own errors keep the engine's
/// statuses and codes. A worker that died on this input (a decoder crash, a resource limit)
/// is 422 `decoder_crashed`: the same file would crash it again, so the client should not
/// retry it, while every other request carries on (the worker is replaced). No worker at all
/// is 503 `decoder_unavailable`, with the detail in the log only.
pub(crate) fn decode_error(e: safeguard_sandbox::Error) -> ApiError {
    match e {
        safeguard_sandbox::Error::Decode(e) => ApiError::from(e),
        safeguard_sandbox::Error::Crashed(detail) => {
            tracing::warn!(
                request_id = %crate::error::request_id(),
                detail = %detail,
                "decode worker lost"
            );
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "decoder_crashed",
                "the decoder stopped while decoding this file; it cannot be hashed",
            )
        }
        other => {
            tracing::error!(
                request_id = %crate::error::request_id(),
                error = %other,
                "no decode worker"
            );
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                other.code(),
                "decoding is unavailable; try again later",
            )
        }
    }
}

/// Holds an uploaded image to the request body limit (`limits.max_body_bytes`): the upload
/// routes accept bodies up to the video limit, which is no reason to take bigger images.
pub fn check_photo_upload(state: &AppState, bytes: &[u8]) -> ApiResult<()> {
    let max = state.0.config.limits.max_body_bytes;
    if bytes.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the image is {} bytes, over the limit of {max} (limits.max_body_bytes)",
                bytes.len()
            ),
        ));
    }
    Ok(())
}

/// Whether uploaded bytes are hashed as a video: a field named `video`, or video content.
pub fn is_video_upload(field: &str, bytes: &[u8]) -> bool {
    field == "video" || safeguard_engine::video::is_video(bytes)
}

/// vPDQ thresholds of one lookup: the configured ones, with any the request sets.
pub fn vpdq_thresholds(
    state: &AppState,
    frame_distance: Option<u32>,
    frame_quality: Option<u8>,
    query_match_percent: Option<f64>,
    compared_match_percent: Option<f64>,
) -> ApiResult<VpdqMatchConfig> {
    let d = state.0.config.vpdq_match();
    let c = VpdqMatchConfig {
        frame_distance: frame_distance.unwrap_or(d.frame_distance),
        frame_quality: frame_quality.unwrap_or(d.frame_quality),
        query_match_percent: query_match_percent.unwrap_or(d.query_match_percent),
        compared_match_percent: compared_match_percent.unwrap_or(d.compared_match_percent),
    };
    c.validate()
        .map_err(|e| ApiError::bad_request("invalid_vpdq_threshold", e.to_string()))?;
    Ok(c)
}

/// Hashes image bytes (decode + PDQ + digests) with the server's decode limits and, when
/// `photodna` is asked and a licensed hasher is configured, its PhotoDNA value (canonical hex).
/// The plug-in sees only files Safeguard's own decoder accepted; the bytes are shared with it,
/// not copied.
pub async fn hash_photo(
    state: &AppState,
    bytes: impl Into<Bytes>,
    photodna: bool,
) -> ApiResult<(HashedMedia, Option<String>)> {
    let limits = state.0.config.media_limits();
    let bytes: Bytes = bytes.into();
    let shared = bytes.clone();
    let decoder = state.0.decoder.clone();
    let h = cpu(state, move || {
        decoder.hash_media(&shared, &limits).map_err(decode_error)
    })
    .await?;
    let photodna = match (photodna, &state.0.photodna) {
        (true, Some(hasher)) => Some(safeguard_engine::photodna::format_photodna(
            &hasher.hash_for_api(bytes).await?,
        )),
        _ => None,
    };
    Ok((h, photodna))
}

/// The signals of a piece of media, by HMA signal type name. A PDQ hash whose quality is
/// under 50 is given as `""` (HMA's behaviour: such hashes are not matched).
pub async fn hash_signals(
    state: &AppState,
    content_type: ContentType,
    bytes: impl Into<Bytes>,
    types: Option<&[String]>,
) -> ApiResult<BTreeMap<String, String>> {
    let bytes: Bytes = bytes.into();
    // `photodna` is a photo signal only when the operator has plugged a licensed hasher in.
    let (types, want_photodna) = split_photodna(state, content_type, types)?;
    let wanted = match &types {
        Some(t) if t.is_empty() && want_photodna => Vec::new(),
        _ => select_types(content_type, types.as_deref())?,
    };
    let mut out = BTreeMap::new();
    match content_type {
        ContentType::Photo => {
            let (h, photodna) = hash_photo(state, bytes, want_photodna).await?;
            if let Some(v) = photodna {
                out.insert("photodna".to_string(), v);
            }
            for (name, t) in wanted {
                let v = if t == SignalType::Pdq && h.quality < safeguard_pdq::DEFAULT_MIN_QUALITY {
                    String::new()
                } else {
                    h.text(t)
                };
                out.insert(name.to_string(), v);
            }
        }
        ContentType::Video if wanted.iter().all(|(_, t)| *t == SignalType::Md5) => {
            // Only the file's MD5 is asked for: no need to decode anything.
            let md5 = cpu(state, move || {
                Ok(safeguard_media::digest::digests(&bytes).md5)
            })
            .await?;
            for (name, _) in wanted {
                out.insert(name.to_string(), hex::encode(md5));
            }
        }
        ContentType::Video => {
            let h = hash_video(state, bytes).await?;
            for (name, t) in wanted {
                let v = match t {
                    SignalType::Vpdq => safeguard_vpdq::format::to_json(&h.vpdq.frames),
                    _ => hex::encode(h.md5),
                };
                out.insert(name.to_string(), v);
            }
        }
    }
    Ok(out)
}

/// Takes `photodna` out of a type selection: whether to call the plug-in, and the rest. With
/// no selection, the plug-in is called whenever one is configured (photos only).
fn split_photodna(
    state: &AppState,
    ct: ContentType,
    types: Option<&[String]>,
) -> ApiResult<(Option<Vec<String>>, bool)> {
    let available = ct == ContentType::Photo && state.0.photodna.is_some();
    let Some(types) = types else {
        return Ok((None, available));
    };
    let asked = types.iter().any(|t| t.trim() == "photodna");
    if asked && !available {
        return Err(ApiError::bad_request(
            "unknown_signal_type",
            "signal type 'photodna' doesn't exist or is disabled (no PhotoDNA hasher is configured)",
        ));
    }
    let rest: Vec<String> = types
        .iter()
        .filter(|t| t.trim() != "photodna")
        .cloned()
        .collect();
    if asked && rest.iter().all(|t| t.trim().is_empty()) {
        // Only PhotoDNA was asked for: an empty selection (the image is still decoded, and so
        // checked, before the plug-in sees it).
        return Ok((Some(Vec::new()), true));
    }
    Ok((Some(rest), asked))
}

fn select_types(
    ct: ContentType,
    types: Option<&[String]>,
) -> ApiResult<Vec<(&'static str, SignalType)>> {
    let all = ct.signal_types();
    let Some(types) = types else {
        return Ok(all.to_vec());
    };
    let mut out = Vec::new();
    for t in types.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        let found = all.iter().find(|(n, _)| *n == t).ok_or_else(|| {
            ApiError::bad_request(
                "unknown_signal_type",
                format!("signal type '{}' doesn't exist or is disabled", short(t)),
            )
        })?;
        if !out.contains(found) {
            out.push(*found);
        }
    }
    if out.is_empty() {
        return Err(ApiError::bad_request(
            "unknown_signal_type",
            "empty signal type selection",
        ));
    }
    Ok(out)
}

/// Splits a comma-separated query parameter.
pub fn split_list(s: Option<&str>) -> Option<Vec<String>> {
    s.filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_failures_map_to_stable_statuses() {
        let crashed = decode_error(safeguard_sandbox::Error::Crashed("signal 11".into()));
        assert_eq!(
            (crashed.status, crashed.code),
            (StatusCode::UNPROCESSABLE_ENTITY, "decoder_crashed")
        );
        // The worker's detail stays in the log.
        assert!(!crashed.message.contains("signal"));
        let gone = decode_error(safeguard_sandbox::Error::Unavailable("no seccomp".into()));
        assert_eq!(
            (gone.status, gone.code),
            (StatusCode::SERVICE_UNAVAILABLE, "decoder_unavailable")
        );
        assert!(!gone.message.contains("seccomp"));
        // The input's own errors keep the in-process answer.
        let timeout = decode_error(safeguard_sandbox::Error::Decode(
            safeguard_media::Error::DecodeTimeout {
                limit: std::time::Duration::from_secs(1),
            }
            .into(),
        ));
        assert_eq!(
            (timeout.status, timeout.code),
            (StatusCode::UNPROCESSABLE_ENTITY, "decode_timeout")
        );
        for code in ["decoder_crashed", "decoder_unavailable"] {
            assert!(crate::openapi::ERROR_CODES.contains(&code), "{code}");
        }
    }
}
