//! The native API under `/v1`: consistent resources, cursor pagination, one error shape
//! (`{"error": {"code", "message", "request_id"}}`), JSON in and out.

use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use safeguard_engine::{now_secs, AddContent, CreateBank, LookupOptions, SignalType, SignalValue};
use safeguard_store::{Bank, BankKind, BankUpdate, Content, ContentUpdate};

use crate::auth::{create_key, Scope};
use crate::error::{ApiError, ApiResult};
use crate::extract::{short, ApiPath, ApiQuery, JsonBody, UploadForm};
use crate::media::{hash_photo, hash_video, is_video_upload, read_upload, vpdq_thresholds};
use crate::state::{blocking, AppState};

/// Routes needing the `hash` scope.
pub fn hash_routes() -> Router<AppState> {
    // Uploads may be videos: the upload extractor applies the video body limit instead.
    Router::new().route("/v1/hash", post(hash).layer(DefaultBodyLimit::disable()))
}

/// Routes needing the `match` scope.
pub fn match_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/lookup", post(lookup))
        .route(
            "/v1/lookup/upload",
            post(lookup_upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/index/status", get(index_status))
}

/// Routes needing the `curate` scope.
pub fn curate_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/banks", get(banks).post(bank_create))
        .route(
            "/v1/banks/{name}",
            get(bank_get).patch(bank_update).delete(bank_delete),
        )
        .route("/v1/banks/{name}/contents", get(contents).post(content_add))
        .route(
            "/v1/banks/{name}/contents/upload",
            post(content_upload).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/v1/banks/{name}/contents/{id}",
            get(content_get)
                .patch(content_update)
                .delete(content_delete),
        )
        .route("/v1/signal_types", get(signal_types))
}

/// Routes needing the `admin` scope.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/keys", get(keys).post(key_create))
        .route("/v1/keys/{key_id}", axum::routing::delete(key_revoke))
}

fn bank_json(b: &Bank) -> Value {
    json!({
        "id": b.id,
        "name": b.name,
        "enabled": b.enabled,
        "enabled_ratio": b.enabled_ratio,
        "pdq_threshold": b.pdq_threshold,
        "kind": b.kind.as_str(),
        "tags": b.tags,
        "classification": b.classification,
        "created_at": b.created_at,
        "updated_at": b.updated_at,
    })
}

fn content_json(c: &Content, bank: &str) -> Value {
    let signals: serde_json::Map<String, Value> = c
        .signals
        .iter()
        .map(|s| (s.signal_type.clone(), json!(s.value)))
        .collect();
    json!({
        "id": c.id,
        "bank": bank,
        "signals": signals,
        "metadata": c.metadata.as_deref().and_then(|m| serde_json::from_str::<Value>(m).ok()),
        "note": c.note,
        "disable_until_ts": c.disable_until_ts,
        "enabled": c.disable_until_ts <= now_secs(),
        "original_media_uri": c.original_media_uri,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}

pub(crate) fn match_json(m: &safeguard_engine::LookupMatch) -> Value {
    let mut v = json!({
        "bank": m.bank,
        "content_id": m.content_id,
        "signal_type": m.signal_type.name(),
        "distance": m.distance,
        "allow_list": m.allow_list,
    });
    // vPDQ closeness is two percentages, not a distance.
    if let (Some(p), Value::Object(o)) = (m.vpdq, &mut v) {
        o.insert("distance".into(), Value::Null);
        o.insert("query_match_percent".into(), json!(p.query_match_percent));
        o.insert(
            "compared_match_percent".into(),
            json!(p.compared_match_percent),
        );
    }
    v
}

// ---------------------------------------------------------------- hashing

/// The hashes of an uploaded image or video. An image also has a PhotoDNA value (canonical
/// hex) when the operator has configured a licensed hasher plug-in.
enum Hashed {
    Photo(safeguard_engine::HashedMedia, Option<String>),
    Video(safeguard_engine::video::HashedVideo),
}

impl Hashed {
    /// The signals to look up or store. A PDQ hash of quality under 50 is left out: it is not
    /// matched anyway. A video with no hashable frame has no vPDQ.
    fn signals(&self) -> Vec<(SignalType, String)> {
        match self {
            Hashed::Photo(h, photodna) => {
                let mut v = vec![
                    (SignalType::Md5, hex::encode(h.md5)),
                    (SignalType::Sha1, hex::encode(h.sha1)),
                    (SignalType::Sha256, hex::encode(h.sha256)),
                ];
                if h.quality >= safeguard_pdq::DEFAULT_MIN_QUALITY {
                    v.insert(0, (SignalType::Pdq, h.pdq.to_hex()));
                }
                if let Some(p) = photodna {
                    v.push((SignalType::PhotoDna, p.clone()));
                }
                v
            }
            Hashed::Video(h) => {
                let mut v = vec![
                    (SignalType::Md5, hex::encode(h.md5)),
                    (SignalType::Sha1, hex::encode(h.sha1)),
                    (SignalType::Sha256, hex::encode(h.sha256)),
                ];
                if !h.vpdq.frames.is_empty() {
                    v.push((
                        SignalType::Vpdq,
                        safeguard_vpdq::format::to_json(&h.vpdq.frames),
                    ));
                }
                // An animated GIF or WebP also matches image banks by its first frame's PDQ.
                if let Some(ff) = h
                    .first_frame
                    .as_ref()
                    .filter(|ff| ff.quality >= safeguard_pdq::DEFAULT_MIN_QUALITY)
                {
                    v.insert(0, (SignalType::Pdq, ff.pdq.to_hex()));
                }
                v
            }
        }
    }

    fn json(&self) -> Value {
        match self {
            Hashed::Photo(h, photodna) => {
                let mut v = json!({
                    "content_type": "photo",
                    "pdq": h.pdq.to_hex(),
                    "quality": h.quality,
                    "md5": hex::encode(h.md5),
                    "sha1": hex::encode(h.sha1),
                    "sha256": hex::encode(h.sha256),
                    "width": h.width,
                    "height": h.height,
                });
                if let (Some(p), Value::Object(o)) = (photodna, &mut v) {
                    o.insert("photodna".into(), json!(p));
                }
                v
            }
            Hashed::Video(h) => {
                let mut v = json!({
                    "content_type": "video",
                    "vpdq": safeguard_vpdq::format::to_json(&h.vpdq.frames),
                    "frames_hashed": h.vpdq.frames.len(),
                    "md5": hex::encode(h.md5),
                    "sha1": hex::encode(h.sha1),
                    "sha256": hex::encode(h.sha256),
                    "width": h.vpdq.width,
                    "height": h.vpdq.height,
                    "fps": h.vpdq.fps,
                    "frame_count": h.vpdq.frame_count,
                    "duration_s": h.vpdq.duration_s,
                });
                if let (Some(ff), Value::Object(o)) = (&h.first_frame, &mut v) {
                    o.insert(
                        "first_frame".into(),
                        json!({"pdq": ff.pdq.to_hex(), "quality": ff.quality}),
                    );
                }
                v
            }
        }
    }
}

/// Hashes the one file of an upload: a video when the field is named `video` or the bytes
/// are a video container (or an animated GIF), an image otherwise.
async fn hash_file(state: &AppState, field: &str, bytes: bytes::Bytes) -> ApiResult<Hashed> {
    if is_video_upload(field, &bytes) {
        Ok(Hashed::Video(hash_video(state, bytes).await?))
    } else {
        crate::media::check_photo_upload(state, &bytes)?;
        let (h, photodna) = hash_photo(state, bytes, true).await?;
        Ok(Hashed::Photo(h, photodna))
    }
}

async fn hash_upload(state: &AppState, mp: Multipart) -> ApiResult<(Hashed, Value)> {
    let up = read_upload(mp).await?;
    let (field, bytes) = up.file.ok_or_else(|| {
        ApiError::bad_request(
            "missing_file",
            "send the image or video as a multipart field named file",
        )
    })?;
    let h = hash_file(state, &field, bytes).await?;
    let v = h.json();
    Ok((h, v))
}

fn multipart(
    mp: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<Multipart> {
    mp.map_err(|e| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("send multipart/form-data: {}", e.body_text()),
        )
    })
}

async fn hash(State(state): State<AppState>, UploadForm(mp): UploadForm) -> ApiResult<Json<Value>> {
    Ok(Json(hash_upload(&state, multipart(mp)?).await?.1))
}

// ---------------------------------------------------------------- matching

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupReq {
    signal_type: String,
    signal: String,
    #[serde(default)]
    banks: Option<Vec<String>>,
    #[serde(default)]
    bypass_enabled_ratio: bool,
    #[serde(default)]
    vpdq: VpdqReq,
}

/// Per-lookup vPDQ thresholds; unset ones take the configured values.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct VpdqReq {
    frame_distance: Option<u32>,
    frame_quality: Option<u8>,
    query_match_percent: Option<f64>,
    compared_match_percent: Option<f64>,
}

impl VpdqReq {
    fn thresholds(&self, state: &AppState) -> ApiResult<safeguard_engine::VpdqMatchConfig> {
        vpdq_thresholds(
            state,
            self.frame_distance,
            self.frame_quality,
            self.query_match_percent,
            self.compared_match_percent,
        )
    }
}

async fn lookup(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<LookupReq>,
) -> ApiResult<Json<Value>> {
    let t = SignalType::parse(&req.signal_type)?;
    let v = SignalValue::parse(t, &req.signal)?;
    let opts = LookupOptions {
        banks: req.banks,
        coinflip: req.bypass_enabled_ratio.then_some(0.0),
        vpdq: Some(req.vpdq.thresholds(&state)?),
        ..LookupOptions::default()
    };
    let res = crate::state::lookup(&state, v, opts).await?;
    Ok(Json(json!({
        "matches": res.matches.iter().map(match_json).collect::<Vec<_>>(),
        "suppressed_by_allow_list": res.suppressed,
    })))
}

#[derive(Debug, Deserialize)]
struct UploadLookupQuery {
    banks: Option<String>,
    vpdq_frame_distance: Option<u32>,
    vpdq_frame_quality: Option<u8>,
    vpdq_query_match_percent: Option<f64>,
    vpdq_compared_match_percent: Option<f64>,
}

async fn lookup_upload(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<UploadLookupQuery>,
    UploadForm(mp): UploadForm,
) -> ApiResult<Json<Value>> {
    let (h, hashes) = hash_upload(&state, multipart(mp)?).await?;
    let banks = crate::media::split_list(q.banks.as_deref());
    let opts = LookupOptions {
        banks,
        coinflip: None,
        vpdq: Some(vpdq_thresholds(
            &state,
            q.vpdq_frame_distance,
            q.vpdq_frame_quality,
            q.vpdq_query_match_percent,
            q.vpdq_compared_match_percent,
        )?),
        ..LookupOptions::default()
    };
    let mut matches = Vec::new();
    let mut suppressed = 0;
    let signals = h.signals();
    let pdq_matched = signals.iter().any(|(t, _)| *t == SignalType::Pdq);
    for (t, text) in signals {
        let v = SignalValue::parse(t, &text)?;
        let res = crate::state::lookup(&state, v, opts.clone()).await?;
        suppressed += res.suppressed;
        matches.extend(res.matches);
    }
    let mut out = json!({
        "hashes": hashes,
        "matches": matches.iter().map(match_json).collect::<Vec<_>>(),
        "suppressed_by_allow_list": suppressed,
    });
    if let (Hashed::Photo(..), Value::Object(o)) = (&h, &mut out) {
        o.insert("pdq_matched".into(), json!(pdq_matched));
    }
    Ok(Json(out))
}

async fn index_status(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let st = state.engine()?.index_status();
    let entries: serde_json::Map<String, Value> = st
        .entries
        .iter()
        .map(|(t, n)| (t.name().to_string(), json!(n)))
        .collect();
    Ok(Json(json!({
        "entries": entries,
        "memory_bytes": st.bytes,
        "applied_seq": st.applied_seq,
        "updated_at": st.updated_at,
        "build_seconds": st.build_seconds,
    })))
}

// ---------------------------------------------------------------- banks

async fn banks(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let engine = state.engine()?;
    let banks = blocking(move || Ok(engine.banks()?)).await?;
    Ok(Json(
        json!({"banks": banks.iter().map(bank_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BankReq {
    name: String,
    enabled: Option<bool>,
    enabled_ratio: Option<f64>,
    pdq_threshold: Option<u32>,
    kind: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    classification: Option<String>,
}

fn parse_kind(k: Option<&str>) -> ApiResult<Option<BankKind>> {
    k.map(|k| {
        BankKind::parse(k).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_request",
                format!(
                    "kind must be \"standard\", \"allow_list\" or \"csam\", got {:?}",
                    short(k)
                ),
            )
        })
    })
    .transpose()
}

async fn bank_create(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<BankReq>,
) -> ApiResult<Response> {
    let kind = parse_kind(req.kind.as_deref())?;
    let engine = state.engine()?;
    let b = blocking(move || {
        Ok(engine.create_bank(&CreateBank {
            name: req.name,
            enabled: req.enabled,
            enabled_ratio: req.enabled_ratio,
            pdq_threshold: req.pdq_threshold,
            kind,
            tags: req.tags,
            classification: req.classification,
        })?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(bank_json(&b))).into_response())
}

async fn bank_get(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let engine = state.engine()?;
    let b = blocking(move || Ok(engine.bank(&name)?)).await?;
    Ok(Json(bank_json(&b)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BankPatch {
    name: Option<String>,
    enabled: Option<bool>,
    enabled_ratio: Option<f64>,
    pdq_threshold: Option<u32>,
    tags: Option<Vec<String>>,
    /// `null` clears the default classification; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    classification: Option<Option<String>>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`, by `default`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

async fn bank_update(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(p): JsonBody<BankPatch>,
) -> ApiResult<Json<Value>> {
    let engine = state.engine()?;
    let b = blocking(move || {
        Ok(engine.update_bank(
            &name,
            &BankUpdate {
                name: p.name,
                enabled: p.enabled,
                enabled_ratio: p.enabled_ratio,
                pdq_threshold: p.pdq_threshold,
                tags: p.tags,
                classification: p.classification,
            },
        )?)
    })
    .await?;
    Ok(Json(bank_json(&b)))
}

async fn bank_delete(
    State(state): State<AppState>,
    Extension(actor): Extension<crate::auth::KeyId>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let engine = state.engine()?;
    let st = state.clone();
    blocking(move || {
        engine.delete_bank(&name)?;
        st.audit_after(
            &actor.0,
            safeguard_engine::audit::Action::BankWithdrawal,
            &format!("bank:{name}"),
            "bank deleted",
        );
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- contents

#[derive(Debug, Deserialize)]
struct PageQuery {
    after: Option<i64>,
    limit: Option<usize>,
}

/// Default page size of content listings.
const DEFAULT_PAGE: usize = 100;

async fn contents(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    let engine = state.engine()?;
    let limit = q
        .limit
        .unwrap_or(DEFAULT_PAGE)
        .clamp(1, safeguard_engine::MAX_PAGE);
    let bank = name.clone();
    let items = blocking(move || Ok(engine.list_content(&name, q.after, limit)?)).await?;
    let next = (items.len() == limit)
        .then(|| items.last().map(|c| c.id))
        .flatten();
    Ok(Json(json!({
        "contents": items.iter().map(|c| content_json(c, &bank)).collect::<Vec<_>>(),
        "next_after": next,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContentReq {
    signals: std::collections::BTreeMap<String, String>,
    metadata: Option<Value>,
    note: Option<String>,
    #[serde(default)]
    disable_until_ts: i64,
    original_media_uri: Option<String>,
}

fn add_req(r: ContentReq) -> ApiResult<AddContent> {
    if r.disable_until_ts < 0 {
        return Err(ApiError::bad_request(
            "invalid_request",
            "disable_until_ts must be 0 (enabled) or a Unix time",
        ));
    }
    let mut signals = Vec::new();
    for (t, v) in r.signals {
        signals.push((SignalType::parse(&t)?, v));
    }
    Ok(AddContent {
        signals,
        metadata: r.metadata,
        note: r.note,
        disable_until_ts: r.disable_until_ts,
        original_media_uri: r.original_media_uri,
    })
}

async fn content_add(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    JsonBody(req): JsonBody<ContentReq>,
) -> ApiResult<Response> {
    let add = add_req(req)?;
    let engine = state.engine()?;
    let bank = name.clone();
    let c = blocking(move || Ok(engine.add_content(&name, &add)?)).await?;
    Ok((StatusCode::CREATED, Json(content_json(&c, &bank))).into_response())
}

async fn content_upload(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    UploadForm(mp): UploadForm,
) -> ApiResult<Response> {
    let up = read_upload(multipart(mp)?).await?;
    let (field, bytes) = up.file.ok_or_else(|| {
        ApiError::bad_request(
            "missing_file",
            "send the image or video as a multipart field named file",
        )
    })?;
    let metadata = up
        .fields
        .get("metadata")
        .map(|m| {
            serde_json::from_str::<Value>(m)
                .map_err(|e| ApiError::bad_request("invalid_json", format!("metadata: {e}")))
        })
        .transpose()?;
    // Low-quality PDQ hashes are not matched anyway; storing one would only add noise.
    let signals = hash_file(&state, &field, bytes).await?.signals();
    let add = AddContent {
        signals,
        metadata,
        note: up.fields.get("note").cloned(),
        disable_until_ts: 0,
        original_media_uri: None,
    };
    let engine = state.engine()?;
    let bank = name.clone();
    let c = blocking(move || Ok(engine.add_content(&name, &add)?)).await?;
    Ok((StatusCode::CREATED, Json(content_json(&c, &bank))).into_response())
}

async fn content_get(
    State(state): State<AppState>,
    ApiPath((name, id)): ApiPath<(String, i64)>,
) -> ApiResult<Json<Value>> {
    let engine = state.engine()?;
    let bank = name.clone();
    let c = blocking(move || Ok(engine.content(&name, id)?)).await?;
    Ok(Json(content_json(&c, &bank)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContentPatch {
    #[serde(default, with = "double_option")]
    metadata: Option<Option<Value>>,
    #[serde(default, with = "double_option")]
    note: Option<Option<String>>,
    disable_until_ts: Option<i64>,
}

/// Distinguishes an absent field (leave it) from `null` (clear it).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

async fn content_update(
    State(state): State<AppState>,
    ApiPath((name, id)): ApiPath<(String, i64)>,
    JsonBody(p): JsonBody<ContentPatch>,
) -> ApiResult<Json<Value>> {
    if p.disable_until_ts.is_some_and(|t| t < 0) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "disable_until_ts must be 0 (enabled) or a Unix time",
        ));
    }
    let update = ContentUpdate {
        metadata: p.metadata.map(|m| m.map(|v| v.to_string())),
        note: p.note,
        disable_until_ts: p.disable_until_ts,
    };
    let engine = state.engine()?;
    let bank = name.clone();
    let c = blocking(move || Ok(engine.update_content(&name, id, &update)?)).await?;
    Ok(Json(content_json(&c, &bank)))
}

async fn content_delete(
    State(state): State<AppState>,
    Extension(actor): Extension<crate::auth::KeyId>,
    ApiPath((name, id)): ApiPath<(String, i64)>,
) -> ApiResult<StatusCode> {
    let engine = state.engine()?;
    let st = state.clone();
    blocking(move || {
        engine.delete_content(&name, id)?;
        st.audit_after(
            &actor.0,
            safeguard_engine::audit::Action::BankWithdrawal,
            &format!("bank:{name}"),
            &format!("content {id} removed"),
        );
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn signal_types() -> Json<Value> {
    Json(json!({
        "signal_types": SignalType::ALL.iter().map(|t| json!({
            "name": t.name(),
            "match": if t.is_video() {
                "video"
            } else if *t == SignalType::PhotoDna {
                "euclidean"
            } else if *t == SignalType::Url {
                "url_expressions"
            } else if t.is_fuzzy() {
                "distance"
            } else {
                "exact"
            },
            // A vPDQ value is a list of frames; 64 is the hex digits of each frame's hash. A
            // URL is text, not hex.
            "hex_digits": (t.hex_len() > 0).then_some(t.hex_len()),
        })).collect::<Vec<_>>()
    }))
}

// ---------------------------------------------------------------- keys

fn key_json(k: &safeguard_store::ApiKey) -> Value {
    json!({
        "key_id": k.key_id,
        "name": k.name,
        "scopes": k.scopes,
        "created_at": k.created_at,
        "revoked_at": k.revoked_at,
    })
}

async fn keys(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let store = state.0.store.clone();
    let keys = blocking(move || {
        store
            .list_api_keys()
            .map_err(|e| safeguard_engine::Error::from(e).into())
    })
    .await?;
    Ok(Json(
        json!({"keys": keys.iter().map(key_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyReq {
    name: String,
    scopes: Vec<String>,
}

async fn key_create(
    State(state): State<AppState>,
    Extension(actor): Extension<crate::auth::KeyId>,
    JsonBody(req): JsonBody<KeyReq>,
) -> ApiResult<Response> {
    let mut scopes = Vec::new();
    for s in &req.scopes {
        match Scope::parse(s) {
            Some(sc) if sc != Scope::Any => scopes.push(sc),
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_scope",
                    format!(
                    "unknown scope {:?}: use hash, match, curate, submit, admin, approve or audit",
                    short(s)
                ),
                ))
            }
        }
    }
    if scopes.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_scope",
            "give at least one scope",
        ));
    }
    let store = state.0.store.clone();
    let st = state.clone();
    let k = blocking(move || {
        let k = create_key(store.as_ref(), &req.name, &scopes)
            .map_err(|e| ApiError::from(safeguard_engine::Error::from(e)))?;
        let names: Vec<&str> = k.scopes.iter().map(|s| s.name()).collect();
        st.audit_after(
            &actor.0,
            safeguard_engine::audit::Action::KeyCreated,
            &format!("key:{}", k.key_id),
            &format!("scopes {}", names.join(",")),
        );
        Ok(k)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "key": k.key,
            "key_id": k.key_id,
            "scopes": k.scopes.iter().map(|s| s.name()).collect::<Vec<_>>(),
        })),
    )
        .into_response())
}

async fn key_revoke(
    State(state): State<AppState>,
    Extension(actor): Extension<crate::auth::KeyId>,
    ApiPath(key_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let store = state.0.store.clone();
    let st = state.clone();
    blocking(move || {
        store.revoke_api_key(&key_id).map_err(|e| match e {
            safeguard_store::Error::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "key_not_found", "no such API key")
            }
            other => safeguard_engine::Error::from(other).into(),
        })?;
        st.audit_after(
            &actor.0,
            safeguard_engine::audit::Action::KeyRevoked,
            &format!("key:{}", key_id.to_ascii_lowercase()),
            "",
        );
        Ok(())
    })
    .await?;
    state.0.auth.invalidate();
    Ok(StatusCode::NO_CONTENT)
}
