//! HMA-compatible routes: the same paths, parameters and JSON shapes as Meta's HMA
//! (`docs/hma-api.md`), so platforms integrated with HMA can point their code here unchanged.
//!
//! Differences, all deliberate: every route needs an API key (except `/status*`); error
//! bodies carry HMA's `message` plus Safeguard's `error` object with a stable code; photos
//! also get `md5`, `sha1` and `sha256`; `video_md5` is matched as an MD5 of the file bytes;
//! videos also get `vpdq` (which HMA leaves out of its service), in python-threatexchange's
//! JSON form, and a vPDQ match's `distance` is python-threatexchange's
//! `"<query %>%[<compared %>%]"` with both percentages also given as numbers.

use std::collections::BTreeMap;

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use safeguard_engine::{AddContent, CreateBank, LookupOptions, SignalType, SignalValue};
use safeguard_store::{BankUpdate, Content, ContentUpdate};

use crate::coinflip;
use crate::error::{ApiError, HmaError};
use crate::media::{
    check_photo_upload, fetch, hash_signals, is_video_upload, read_upload, short, split_list,
    vpdq_thresholds, ContentType, UploadForm,
};
use crate::state::{blocking, AppState};

type HmaResult<T> = Result<T, HmaError>;

/// HMA's "disabled for good" value of `disable_until_ts`.
const HMA_DISABLED: i64 = 0;
/// HMA's "enabled" value.
const HMA_ENABLED: i64 = 1;
/// Latest `disable_until_ts` HMA accepts: five years ahead.
const MAX_DISABLE_AHEAD_SECS: i64 = 5 * 365 * 24 * 3600;
/// HMA's note length limit, in characters.
const HMA_MAX_NOTE_CHARS: usize = 255;

/// Safeguard stores 0 for "enabled" and a Unix time for "disabled until"; HMA uses 1 for
/// enabled and 0 for disabled for good.
fn to_hma_disable(internal: i64) -> i64 {
    match internal {
        0 => HMA_ENABLED,
        i64::MAX => HMA_DISABLED,
        t => t,
    }
}

fn from_hma_disable(v: i64) -> i64 {
    match v {
        HMA_ENABLED => 0,
        HMA_DISABLED => i64::MAX,
        t => t,
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

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

// ---------------------------------------------------------------- hashing

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

async fn hash_url(
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
async fn upload_file(
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
fn upload_content_type(
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

// ---------------------------------------------------------------- matching

/// Routes needing the `match` scope.
pub fn match_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/m/lookup",
            get(lookup_get)
                .post(lookup_post)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/m/raw_lookup", get(raw_lookup))
        .route("/m/compare", post(compare))
        .route("/m/index/status", get(index_status))
}

fn parse_signal(signal_type: &str, signal: &str) -> Result<SignalValue, ApiError> {
    let t = SignalType::parse(signal_type).map_err(|_| {
        ApiError::bad_request(
            "unknown_signal_type",
            format!("No such SignalType '{}'", short(signal_type)),
        )
    })?;
    SignalValue::parse(t, signal)
        .map_err(|e| ApiError::bad_request("invalid_signal", format!("invalid signal: {e}")))
}

/// HMA's string distance of a match: the number for PDQ (and PhotoDNA's Euclidean distance,
/// rounded), `"-"` for exact types, and for vPDQ python-threatexchange's
/// `VPDQSimilarityInfo.pretty_str()`, `"<q>%[<c>%]"`.
fn hma_distance(m: &safeguard_engine::LookupMatch) -> String {
    match m.vpdq {
        Some(p) => p.pretty(),
        None if m.signal_type.is_fuzzy() || m.signal_type == SignalType::PhotoDna => {
            m.distance.to_string()
        }
        None => "-".to_string(),
    }
}

/// One match as HMA shows it, plus the two vPDQ percentages as numbers for vPDQ matches.
fn hma_match(m: &safeguard_engine::LookupMatch) -> Value {
    let mut v = json!({"bank_content_id": m.content_id, "distance": hma_distance(m)});
    if let (Some(p), Value::Object(o)) = (m.vpdq, &mut v) {
        o.insert("query_match_percent".into(), json!(p.query_match_percent));
        o.insert(
            "compared_match_percent".into(),
            json!(p.compared_match_percent),
        );
    }
    v
}

/// `{BANK: [{bank_content_id, distance}]}` with HMA's string distances.
fn bank_map(matches: &[safeguard_engine::LookupMatch]) -> Value {
    let mut out = Map::new();
    for m in matches {
        let entry = out
            .entry(m.bank.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = entry {
            a.push(hma_match(m));
        }
    }
    Value::Object(out)
}

async fn lookup_one(
    state: &AppState,
    value: SignalValue,
    opts: LookupOptions,
) -> Result<Value, ApiError> {
    let res = crate::state::lookup(state, value, opts).await?;
    Ok(bank_map(&res.matches))
}

#[derive(Debug, Deserialize)]
struct LookupQuery {
    url: Option<String>,
    content_type: Option<String>,
    types: Option<String>,
    signal: Option<String>,
    signal_type: Option<String>,
    banks: Option<String>,
    seed: Option<String>,
    bypass_coinflip: Option<String>,
    #[serde(flatten)]
    vpdq: VpdqQuery,
}

/// Per-lookup vPDQ thresholds (a Safeguard extension; unset ones take the configured values).
#[derive(Debug, Default, Deserialize)]
struct VpdqQuery {
    vpdq_frame_distance: Option<String>,
    vpdq_frame_quality: Option<String>,
    vpdq_query_match_percent: Option<String>,
    vpdq_compared_match_percent: Option<String>,
}

impl VpdqQuery {
    fn thresholds(&self, state: &AppState) -> Result<safeguard_engine::VpdqMatchConfig, ApiError> {
        fn num<T: std::str::FromStr>(
            name: &str,
            v: &Option<String>,
        ) -> Result<Option<T>, ApiError> {
            v.as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.trim().parse::<T>().map_err(|_| {
                        ApiError::bad_request(
                            "invalid_vpdq_threshold",
                            format!("{name} is not a valid number: {}", short(s)),
                        )
                    })
                })
                .transpose()
        }
        vpdq_thresholds(
            state,
            num("vpdq_frame_distance", &self.vpdq_frame_distance)?,
            num("vpdq_frame_quality", &self.vpdq_frame_quality)?,
            num("vpdq_query_match_percent", &self.vpdq_query_match_percent)?,
            num(
                "vpdq_compared_match_percent",
                &self.vpdq_compared_match_percent,
            )?,
        )
    }
}

impl LookupQuery {
    fn options(&self, state: &AppState, allow_bypass: bool) -> Result<LookupOptions, ApiError> {
        let coinflip = if allow_bypass && self.bypass_coinflip.as_deref() == Some("true") {
            Some(0.0)
        } else {
            self.seed.as_deref().map(coinflip::seeded)
        };
        Ok(LookupOptions {
            banks: split_list(self.banks.as_deref()),
            coinflip,
            vpdq: Some(self.vpdq.thresholds(state)?),
            ..LookupOptions::default()
        })
    }
}

/// Looks up every hashed signal; a low-quality PDQ (`""`) is an invalid signal, as in HMA.
async fn lookup_signals(
    state: &AppState,
    signals: BTreeMap<String, String>,
    q: &LookupQuery,
    allow_bypass: bool,
) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    let opts = q.options(state, allow_bypass)?;
    for (name, value) in signals {
        // A video without a single hashable frame has an empty vPDQ: it matches nothing.
        if name == "vpdq" && value == "[]" {
            out.insert(name, json!({}));
            continue;
        }
        let v = parse_signal(&name, &value)?;
        out.insert(name, lookup_one(state, v, opts.clone()).await?);
    }
    Ok(out)
}

async fn lookup_get(
    State(state): State<AppState>,
    Query(q): Query<LookupQuery>,
) -> HmaResult<Json<Value>> {
    if let Some(url) = q.url.as_deref().filter(|u| !u.is_empty()) {
        let signals = hash_url(&state, url, q.content_type.as_deref(), q.types.as_deref()).await?;
        let mut by_type = lookup_signals(&state, signals, &q, false).await?;
        if let Some(t) = q.signal_type.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Json(by_type.remove(t).unwrap_or_else(|| json!({}))));
        }
        return Ok(Json(Value::Object(by_type)));
    }
    let (Some(signal), Some(signal_type)) = (
        q.signal.as_deref().filter(|s| !s.is_empty()),
        q.signal_type.as_deref().filter(|s| !s.is_empty()),
    ) else {
        return Err(hma_bad(
            "Either url or both signal and signal_type are required",
        ));
    };
    let v = parse_signal(signal_type, signal)?;
    Ok(Json(
        lookup_one(&state, v, q.options(&state, false)?).await?,
    ))
}

async fn lookup_post(
    State(state): State<AppState>,
    Query(q): Query<LookupQuery>,
    UploadForm(mp): UploadForm,
) -> HmaResult<Json<Value>> {
    let (ct, bytes) = upload_file(&state, mp, q.content_type.as_deref()).await?;
    let types = split_list(q.types.as_deref());
    let signals = hash_signals(&state, ct, bytes, types.as_deref()).await?;
    Ok(Json(Value::Object(
        lookup_signals(&state, signals, &q, true).await?,
    )))
}

#[derive(Debug, Deserialize)]
struct RawLookupQuery {
    signal: Option<String>,
    signal_type: Option<String>,
    banks: Option<String>,
    include_distance: Option<String>,
    #[serde(flatten)]
    vpdq: VpdqQuery,
}

fn py_bool(s: Option<&str>) -> Result<bool, ApiError> {
    match s.map(|s| s.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) => match v.as_str() {
            "true" | "1" | "yes" | "on" | "t" | "y" => Ok(true),
            "false" | "0" | "no" | "off" | "f" | "n" => Ok(false),
            _ => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_parameter",
                format!("not a boolean: {}", short(&v)),
            )),
        },
    }
}

async fn raw_lookup(
    State(state): State<AppState>,
    Query(q): Query<RawLookupQuery>,
) -> HmaResult<Json<Value>> {
    let signal = q.signal.ok_or_else(|| hma_missing("signal"))?;
    let signal_type = q.signal_type.ok_or_else(|| hma_missing("signal_type"))?;
    let with_distance = py_bool(q.include_distance.as_deref())?;
    let v = parse_signal(&signal_type, &signal)?;
    let banks = split_list(q.banks.as_deref());
    let thresholds = q.vpdq.thresholds(&state)?;
    let engine = state.engine()?;
    let matches =
        blocking(move || Ok(engine.raw_lookup_with(&v, banks.as_deref(), Some(&thresholds))?))
            .await?;
    let list: Vec<Value> = matches
        .iter()
        .map(|m| {
            if with_distance {
                hma_match(m)
            } else {
                json!(m.content_id)
            }
        })
        .collect();
    Ok(Json(json!({ "matches": list })))
}

async fn compare(State(state): State<AppState>, body: Bytes) -> HmaResult<Json<Value>> {
    let v: Value = serde_json::from_slice(&body).map_err(|_| {
        hma_bad("The browser (or proxy) sent a request that this server could not understand.")
    })?;
    let Value::Object(obj) = v else {
        return Err(hma_bad("Request input was not a dict"));
    };
    let mut out = Map::new();
    for (st, pair) in obj {
        let Value::Array(items) = pair else {
            return Err(hma_bad(format!(
                "Comparison hashes for {} was not a list",
                short(&st)
            )));
        };
        if items.len() != 2 {
            return Err(hma_bad("Comparison hash list length must be exactly 2"));
        }
        let t = SignalType::parse(&st).map_err(|_| {
            HmaError(ApiError::bad_request(
                "unknown_signal_type",
                format!("No such SignalType '{}'", short(&st)),
            ))
        })?;
        let mut vals = Vec::with_capacity(2);
        for item in &items {
            let s = item.as_str().unwrap_or_default();
            vals.push(SignalValue::parse(t, s).map_err(|e| {
                HmaError(ApiError::bad_request(
                    "invalid_signal",
                    format!("Invalid {st} hash: {e}"),
                ))
            })?);
        }
        let result = match (&vals[0], &vals[1]) {
            (SignalValue::Pdq(a), SignalValue::Pdq(b)) => {
                let d = a.distance(b);
                json!([d <= safeguard_pdq::DEFAULT_MATCH_DISTANCE, {"distance": d}])
            }
            // python-threatexchange's VPDQSignal.compare_hash: the first value is the query.
            (SignalValue::Vpdq(a), SignalValue::Vpdq(b)) => {
                let cfg = state.0.config.vpdq_match();
                let m = safeguard_vpdq::compare(a, b, &cfg);
                json!([m.is_match(&cfg), {
                    "query_match_percent": m.query_match_percent,
                    "compared_match_percent": m.compared_match_percent,
                }])
            }
            (a, b) => json!([a == b, {}]),
        };
        out.insert(st, result);
    }
    Ok(Json(Value::Object(out)))
}

#[derive(Debug, Deserialize)]
struct IndexStatusQuery {
    signal_type: Option<String>,
}

async fn index_status(
    State(state): State<AppState>,
    Query(q): Query<IndexStatusQuery>,
) -> HmaResult<Json<Value>> {
    let engine = state.engine()?;
    let st = engine.index_status();
    let wanted = match q.signal_type.as_deref() {
        Some(t) => Some(SignalType::parse(t).map_err(|_| {
            HmaError(ApiError::bad_request(
                "unknown_signal_type",
                format!("No such signal type '{}'", short(t)),
            ))
        })?),
        None => None,
    };
    let mut out = Map::new();
    for (t, n) in st.entries {
        if wanted.is_some_and(|w| w != t) {
            continue;
        }
        out.insert(
            t.name().to_string(),
            json!({"built_to": st.updated_at, "present": true, "size": n}),
        );
    }
    Ok(Json(Value::Object(out)))
}

// ---------------------------------------------------------------- curation

/// Routes needing the `curate` scope.
pub fn curate_routes() -> Router<AppState> {
    Router::new()
        .route("/c/banks", get(banks_list).post(bank_create))
        .route(
            "/c/bank/{name}",
            get(bank_get).put(bank_update).delete(bank_delete),
        )
        .route(
            "/c/bank/{name}/content",
            post(content_add).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/c/bank/{name}/content/{id}",
            get(content_get).put(content_update).delete(content_delete),
        )
        .route("/c/bank/{name}/signal", post(signal_add))
        .route("/c/signal_type", get(signal_types))
        .route("/c/signal_type/{name}", put(signal_type_update))
        .route("/c/content_type", get(content_types))
}

fn bank_json(b: &safeguard_store::Bank) -> Value {
    json!({"matching_enabled_ratio": b.enabled_ratio, "name": b.name})
}

async fn banks_list(State(state): State<AppState>) -> HmaResult<Json<Value>> {
    let engine = state.engine()?;
    let banks = blocking(move || Ok(engine.banks()?)).await?;
    Ok(Json(Value::Array(banks.iter().map(bank_json).collect())))
}

async fn bank_get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> HmaResult<Json<Value>> {
    let engine = state.engine()?;
    let b = blocking(move || Ok(engine.bank(&name)?)).await?;
    Ok(Json(bank_json(&b)))
}

fn json_body(body: &Bytes) -> Result<Map<String, Value>, HmaError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(HmaError(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "the body must be a JSON object",
        ))),
        Err(e) => Err(HmaError(ApiError::bad_request(
            "invalid_json",
            format!("the body is not valid JSON: {e}"),
        ))),
    }
}

/// HMA's ratio rule: `enabled_ratio` if given (even over `enabled`), else 1.0/0.0 from
/// `enabled`, else 1.0.
fn ratio_of(body: &Map<String, Value>) -> Result<Option<f64>, HmaError> {
    match body.get("enabled_ratio") {
        Some(Value::Null) => {}
        Some(v) => {
            return v
                .as_f64()
                .map(Some)
                .ok_or_else(|| hma_bad("enabled_ratio must be a number"))
        }
        None => return Ok(None),
    }
    Ok(body
        .get("enabled")
        .and_then(Value::as_bool)
        .map(|e| if e { 1.0 } else { 0.0 }))
}

fn bank_exists_is_403(e: ApiError) -> HmaError {
    if e.code == "bank_exists" {
        HmaError(ApiError::new(
            StatusCode::FORBIDDEN,
            "bank_exists",
            e.message,
        ))
    } else {
        HmaError(e)
    }
}

async fn bank_create(State(state): State<AppState>, body: Bytes) -> HmaResult<Response> {
    let body = json_body(&body)?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| hma_missing("name"))?
        .to_string();
    let ratio = match body.get("enabled_ratio") {
        None => Some(1.0),
        Some(_) => ratio_of(&body)?,
    };
    let engine = state.engine()?;
    let b = blocking(move || {
        Ok(engine.create_bank(&CreateBank {
            name,
            enabled_ratio: ratio,
            ..CreateBank::default()
        })?)
    })
    .await
    .map_err(bank_exists_is_403)?;
    Ok((StatusCode::CREATED, Json(bank_json(&b))).into_response())
}

async fn bank_update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> HmaResult<Json<Value>> {
    let body = json_body(&body)?;
    let update = BankUpdate {
        name: match body.get("name") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_str()
                    .ok_or_else(|| hma_bad("name must be a string"))?
                    .to_string(),
            ),
        },
        enabled_ratio: ratio_of(&body)?,
        ..BankUpdate::default()
    };
    let engine = state.engine()?;
    let b = blocking(move || Ok(engine.update_bank(&name, &update)?))
        .await
        .map_err(bank_exists_is_403)?;
    Ok(Json(bank_json(&b)))
}

async fn bank_delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> HmaResult<Json<Value>> {
    let engine = state.engine()?;
    // HMA answers "Done" whether or not the bank existed.
    blocking(move || match engine.delete_bank(&name) {
        Ok(_) | Err(safeguard_engine::Error::BankNotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    })
    .await?;
    Ok(Json(json!({"message": "Done"})))
}

/// Checks HMA's metadata rules: an object with only `content_id`, `content_uri` (strings) and
/// `json` (object); `collab` is dropped; `{}` is stored as nothing.
fn hma_metadata(v: Value) -> Result<Option<Value>, HmaError> {
    let Value::Object(mut m) = v else {
        return Err(hma_bad("metadata should be a json object"));
    };
    m.remove("collab");
    for (k, v) in &m {
        let ok = match k.as_str() {
            "content_id" | "content_uri" => v.is_string() || v.is_null(),
            "json" => v.is_object() || v.is_null(),
            _ => false,
        };
        if !ok {
            return Err(hma_bad(format!("Invalid metadata: field {}", short(k))));
        }
    }
    m.retain(|_, v| !v.is_null());
    Ok((!m.is_empty()).then_some(Value::Object(m)))
}

fn hma_note(v: Option<&Value>) -> Result<Option<String>, HmaError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => {
            if s.chars().count() > HMA_MAX_NOTE_CHARS {
                Err(hma_bad("note must be at most 255 characters"))
            } else {
                Ok(Some(s.clone()))
            }
        }
        Some(_) => Err(hma_bad("note should be a string")),
    }
}

fn added_json(c: &Content) -> Value {
    let signals: Map<String, Value> = c
        .signals
        .iter()
        .map(|s| (s.signal_type.clone(), Value::String(s.value.clone())))
        .collect();
    json!({"id": c.id, "signals": signals})
}

/// Stores signals given as `{type: value}` (HMA's `_bank_add_signals`).
async fn add_signals(
    state: &AppState,
    bank: String,
    signals: BTreeMap<String, String>,
    metadata: Option<Value>,
    note: Option<String>,
) -> Result<Json<Value>, HmaError> {
    if signals.is_empty() {
        return Err(hma_bad("No signals given"));
    }
    let mut parsed = Vec::new();
    for (t, v) in &signals {
        let st = SignalType::parse(t).map_err(|_| {
            HmaError(ApiError::bad_request(
                "unknown_signal_type",
                format!("No such signal type {}", short(t)),
            ))
        })?;
        SignalValue::parse(st, v).map_err(|e| {
            HmaError(ApiError::bad_request(
                "invalid_signal",
                format!("Invalid {t} signal: {e}"),
            ))
        })?;
        parsed.push((st, v.clone()));
    }
    let engine = state.engine()?;
    let c = blocking(move || {
        // The bank is checked first so an unknown bank is a 404 whatever the signals.
        engine.bank(&bank)?;
        Ok(engine.add_content(
            &bank,
            &AddContent {
                signals: parsed,
                metadata,
                note,
                ..AddContent::default()
            },
        )?)
    })
    .await?;
    Ok(Json(added_json(&c)))
}

#[derive(Debug, Deserialize)]
struct ContentAddQuery {
    url: Option<String>,
    content_type: Option<String>,
    types: Option<String>,
}

async fn content_add(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<ContentAddQuery>,
    req: axum::extract::Request,
) -> HmaResult<Json<Value>> {
    {
        let engine = state.engine()?;
        let n = name.clone();
        blocking(move || Ok(engine.bank(&n)?)).await?;
    }
    let is_json = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (metadata, note, upload) = if is_json {
        let limit = state.0.config.limits.max_body_bytes;
        let body = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| {
                HmaError(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is over the size limit",
                ))
            })?;
        let m = json_body(&body)?;
        let md = m
            .get("metadata")
            .cloned()
            .map(hma_metadata)
            .transpose()?
            .flatten();
        (md, hma_note(m.get("note"))?, None)
    } else if q.url.as_deref().is_some_and(|u| !u.is_empty()) {
        (None, None, None)
    } else {
        let UploadForm(mp) = match UploadForm::from_request(req, &state).await {
            Ok(f) => f,
            Err(never) => match never {},
        };
        let mp = mp.map_err(|_| hma_bad("Neither `url` nor multipart file upload was received"))?;
        let up = read_upload(mp).await?;
        let md = match up.fields.get("metadata") {
            Some(s) => {
                let v: Value = serde_json::from_str(s)
                    .map_err(|_| hma_bad("metadata form field must be valid JSON"))?;
                hma_metadata(v)?
            }
            None => None,
        };
        let note = hma_note(
            up.fields
                .get("note")
                .map(|s| Value::String(s.clone()))
                .as_ref(),
        )?;
        (md, note, up.file)
    };
    let types = split_list(q.types.as_deref());
    let signals = if let Some(url) = q.url.as_deref().filter(|u| !u.is_empty()) {
        hash_url(&state, url, q.content_type.as_deref(), q.types.as_deref()).await?
    } else if let Some((field, bytes)) = upload {
        let ct = upload_content_type(&field, &bytes, q.content_type.as_deref())?;
        if ct == ContentType::Photo {
            check_photo_upload(&state, &bytes)?;
        }
        hash_signals(&state, ct, bytes, types.as_deref()).await?
    } else {
        return Err(hma_bad(
            "Neither `url` nor multipart file upload was received",
        ));
    };
    if signals.get("pdq").is_some_and(String::is_empty) {
        return Err(hma_bad("Invalid pdq signal: invalid PDQ hash"));
    }
    add_signals(&state, name, signals, metadata, note).await
}

async fn signal_add(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> HmaResult<Json<Value>> {
    {
        let engine = state.engine()?;
        let n = name.clone();
        blocking(move || Ok(engine.bank(&n)?)).await?;
    }
    let mut m = json_body(&body)?;
    let note = hma_note(m.remove("note").as_ref())?;
    let mut signals = BTreeMap::new();
    for (k, v) in m {
        let s = v
            .as_str()
            .ok_or_else(|| hma_bad(format!("Invalid {} signal: not a string", short(&k))))?;
        signals.insert(k, s.to_string());
    }
    add_signals(&state, name, signals, None, note).await
}

#[derive(Debug, Deserialize)]
struct ContentGetQuery {
    include_signals: Option<String>,
    include_metadata: Option<String>,
}

fn content_json(c: &Content, bank: &safeguard_store::Bank, signals: bool, metadata: bool) -> Value {
    let mut out = Map::new();
    out.insert("bank".into(), bank_json(bank));
    out.insert(
        "disable_until_ts".into(),
        json!(to_hma_disable(c.disable_until_ts)),
    );
    out.insert("id".into(), json!(c.id));
    out.insert("original_media_uri".into(), json!(c.original_media_uri));
    if let Some(n) = &c.note {
        out.insert("note".into(), json!(n));
    }
    if metadata {
        if let Some(md) = c
            .metadata
            .as_deref()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
        {
            let hma_shaped = md.as_object().is_some_and(|o| {
                o.keys()
                    .all(|k| matches!(k.as_str(), "content_id" | "content_uri" | "json"))
            });
            let (cid, curi, js) = if hma_shaped {
                (
                    md.get("content_id").cloned(),
                    md.get("content_uri").cloned(),
                    md.get("json").cloned(),
                )
            } else {
                (None, None, Some(md))
            };
            out.insert(
                "metadata".into(),
                json!({
                    "collab": null,
                    "content_id": cid.unwrap_or(Value::Null),
                    "content_uri": curi.unwrap_or(Value::Null),
                    "json": js.unwrap_or(Value::Null),
                }),
            );
        }
    }
    if signals && !c.signals.is_empty() {
        let s: Map<String, Value> = c
            .signals
            .iter()
            .map(|s| (s.signal_type.clone(), json!(s.value)))
            .collect();
        out.insert("signals".into(), Value::Object(s));
    }
    Value::Object(out)
}

fn content_not_found(id: i64) -> HmaError {
    HmaError(ApiError::new(
        StatusCode::NOT_FOUND,
        "content_not_found",
        format!("content '{id}' not found"),
    ))
}

async fn content_get(
    State(state): State<AppState>,
    Path((name, id)): Path<(String, i64)>,
    Query(q): Query<ContentGetQuery>,
) -> HmaResult<Json<Value>> {
    let engine = state.engine()?;
    let signals = q
        .include_signals
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let metadata = q
        .include_metadata
        .as_deref()
        .is_none_or(|v| v.eq_ignore_ascii_case("true"));
    let got = blocking(move || {
        engine.bank(&name)?;
        Ok(engine
            .store()
            .content(id)
            .map_err(safeguard_engine::Error::from)?
            .and_then(|c| Some((engine.store().bank(c.bank_id).ok()??, c))))
    })
    .await?;
    let (bank, c) = got.ok_or_else(|| content_not_found(id))?;
    Ok(Json(content_json(&c, &bank, signals, metadata)))
}

async fn content_update(
    State(state): State<AppState>,
    Path((name, id)): Path<(String, i64)>,
    body: Bytes,
) -> HmaResult<Json<Value>> {
    let m = json_body(&body)?;
    let mut update = ContentUpdate::default();
    if let Some(v) = m.get("disable_until_ts") {
        let t = v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .ok_or_else(|| hma_bad(format!("Invalid int: '{v}'")))?;
        if t < 0 {
            return Err(hma_bad("disable_until_ts must be a non-negative integer"));
        }
        if t > now_secs() + MAX_DISABLE_AHEAD_SECS {
            return Err(hma_bad(
                "disable_until_ts must be less than 5 years in the future",
            ));
        }
        update.disable_until_ts = Some(from_hma_disable(t));
    }
    if m.contains_key("note") {
        update.note = Some(hma_note(m.get("note"))?);
    }
    let engine = state.engine()?;
    let (bank, c) = blocking(move || {
        // As in HMA: the bank in the path must exist, the item is found by id alone.
        engine.bank(&name)?;
        let store_err = safeguard_engine::Error::from;
        let bank = engine
            .store()
            .content(id)
            .map_err(store_err)?
            .map(|c| engine.store().bank(c.bank_id))
            .transpose()
            .map_err(store_err)?
            .flatten()
            .ok_or(safeguard_engine::Error::ContentNotFound(id))?;
        let c = engine.update_content(&bank.name, id, &update)?;
        Ok((bank, c))
    })
    .await
    .map_err(|e| {
        if e.code == "content_not_found" {
            content_not_found(id)
        } else {
            HmaError(e)
        }
    })?;
    let md = c
        .metadata
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok());
    Ok(Json(json!({
        "bank": bank_json(&bank),
        "collab_metadata": {},
        "disable_until_ts": to_hma_disable(c.disable_until_ts),
        "id": c.id,
        "note": c.note,
        "original_media_uri": c.original_media_uri,
        "user_metadata": md,
    })))
}

async fn content_delete(
    State(state): State<AppState>,
    Path((name, id)): Path<(String, i64)>,
) -> HmaResult<Json<Value>> {
    let engine = state.engine()?;
    let deleted = blocking(move || {
        engine.bank(&name)?;
        // HMA deletes by id alone, whatever bank the item is in.
        let Some(c) = engine
            .store()
            .content(id)
            .map_err(safeguard_engine::Error::from)?
        else {
            return Ok(0);
        };
        let bank = engine
            .store()
            .bank(c.bank_id)
            .map_err(safeguard_engine::Error::from)?;
        match bank {
            Some(b) => match engine.delete_content(&b.name, id) {
                Ok(_) => Ok(1),
                Err(safeguard_engine::Error::ContentNotFound(_)) => Ok(0),
                Err(e) => Err(e.into()),
            },
            None => Ok(0),
        }
    })
    .await?;
    Ok(Json(json!({ "deleted": deleted })))
}

async fn signal_types() -> Json<Value> {
    let mut list: Vec<Value> = SignalType::ALL
        .iter()
        .map(|t| json!({"enabled_ratio": 1.0, "name": t.name()}))
        .collect();
    list.push(json!({"enabled_ratio": 1.0, "name": "video_md5"}));
    Json(Value::Array(list))
}

async fn signal_type_update(Path(name): Path<String>, body: Bytes) -> HmaResult<Response> {
    let m = json_body(&body)?;
    let r = m
        .get("enabled_ratio")
        .ok_or_else(|| hma_bad("enabled_ratio is required"))?;
    let r = r
        .as_f64()
        .ok_or_else(|| hma_bad(format!("Invalid float: '{r}'")))?;
    SignalType::parse(&name).map_err(|_| {
        HmaError(ApiError::bad_request(
            "unknown_signal_type",
            format!("No such signal type '{}'", short(&name)),
        ))
    })?;
    if !(0.0..=1.0).contains(&r) {
        return Err(hma_bad("enabled_ratio must be between 0 and 1"));
    }
    // As in HMA, a signal type's ratio does not affect matching; Safeguard keeps every type on.
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn content_types() -> Json<Value> {
    Json(json!([{"enabled": true, "name": "photo"}, {"enabled": true, "name": "video"}]))
}
