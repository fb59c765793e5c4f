//! HMA's curation routes: banks, bank content, signal and content types (`/c/...`).

use std::collections::BTreeMap;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use safeguard_engine::{now_secs, AddContent, CreateBank, SignalType, SignalValue};
use safeguard_store::{BankUpdate, Content, ContentUpdate};

use super::hashing::{hash_url, hma_hash_signals, upload_content_type};
use super::{hma_bad, hma_missing, HmaResult};
use crate::error::{ApiError, HmaError};
use crate::extract::{short, UploadForm};
use crate::media::{check_photo_upload, read_upload, split_list, ContentType};
use crate::state::{blocking, AppState};

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

/// HMA's ratio rule (`bank_update`, and `bank_create` when `enabled_ratio` is given as
/// `null`): `enabled` sets 1.0 or 0.0, then `enabled_ratio`, when given, overrides it. `None`
/// when neither is given.
fn ratio_of(body: &Map<String, Value>) -> Result<Option<f64>, HmaError> {
    let from_enabled = match body.get("enabled") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            if pydantic_bool(v).ok_or_else(|| {
                HmaError(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_parameter",
                    "enabled must be a boolean",
                ))
            })? {
                1.0
            } else {
                0.0
            },
        ),
    };
    match body.get("enabled_ratio") {
        None | Some(Value::Null) => Ok(from_enabled),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| hma_bad("enabled_ratio must be a number")),
    }
}

/// A JSON value as pydantic's lax `bool` reads it: `true`/`false`, 0 or 1, and the strings
/// `true`/`false`/`yes`/`no`/`on`/`off`/`1`/`0`/`t`/`f`/`y`/`n` in any case.
fn pydantic_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(1.0) => Some(true),
            Some(0.0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" | "t" | "y" => Some(true),
            "false" | "no" | "off" | "0" | "f" | "n" => Some(false),
            _ => None,
        },
        _ => None,
    }
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

/// The signal types HMA's default deployment computes for uploaded or fetched media: `pdq`
/// for photos, `video_md5` for videos (and `photodna` when the operator has plugged a
/// licensed hasher in, which is such a configured type). Safeguard also computes `md5`,
/// `sha1`, `sha256` and `vpdq`, stores them, and shows them on the native API; the HMA answer
/// to an add names only these, unless the request chose its `types`, because HMA clients
/// compare that answer exactly.
const HMA_DEFAULT_SIGNAL_TYPES: &[&str] = &["pdq", "video_md5", "photodna"];

/// HMA's answer to an add: `{"id", "signals"}`, the signals limited to `shown` when given.
fn added_json(c: &Content, given: &[(String, SignalType)], shown: Option<&[&str]>) -> Value {
    // Named as the request named them (`video_md5` is stored as `md5`), valued as stored.
    let signals: Map<String, Value> = given
        .iter()
        .filter(|(name, _)| shown.is_none_or(|names| names.contains(&name.as_str())))
        .filter_map(|(name, t)| {
            let stored = c.signals.iter().find(|s| s.signal_type == t.name())?;
            Some((name.clone(), Value::String(stored.value.clone())))
        })
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
    shown: Option<&[&str]>,
) -> Result<Json<Value>, HmaError> {
    if signals.is_empty() {
        return Err(hma_bad("No signals given"));
    }
    let mut parsed = Vec::new();
    let mut given = Vec::new();
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
        given.push((t.clone(), st));
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
    Ok(Json(added_json(&c, &given, shown)))
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
        hma_hash_signals(&state, ct, bytes, types.as_deref()).await?
    } else {
        return Err(hma_bad(
            "Neither `url` nor multipart file upload was received",
        ));
    };
    if signals.get("pdq").is_some_and(String::is_empty) {
        return Err(hma_bad("Invalid pdq signal: invalid PDQ hash"));
    }
    // Hashed media answers in HMA's shape; a chosen `types` list answers all it asked for.
    let shown = types.is_none().then_some(HMA_DEFAULT_SIGNAL_TYPES);
    add_signals(&state, name, signals, metadata, note, shown).await
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
    add_signals(&state, name, signals, None, note, None).await
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

/// A bank name and a content id, as HMA's `<int:id>` routes take them: digits only. Any other
/// id matches no route in HMA (Flask answers 404), so here it gets the router's 404 for a path
/// it does not serve, not axum's plain-text 400.
struct ContentPath(String, i64);

impl<S: Send + Sync> FromRequestParts<S> for ContentPath {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let no_route = |parts: &Parts| {
            crate::middleware::no_route(&parts.method, parts.uri.path()).into_response()
        };
        let Ok(Path((name, id))) = Path::<(String, String)>::from_request_parts(parts, state).await
        else {
            return Err(no_route(parts));
        };
        if !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(no_route(parts));
        }
        match id.parse() {
            Ok(n) => Ok(ContentPath(name, n)),
            Err(_) => Err(no_route(parts)),
        }
    }
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
    ContentPath(name, id): ContentPath,
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
    ContentPath(name, id): ContentPath,
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
    ContentPath(name, id): ContentPath,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// HMA's note: at most 255 characters (not bytes), empty or null meaning none.
    #[test]
    fn a_note_is_at_most_255_characters() {
        let note = |s: String| hma_note(Some(&Value::String(s)));
        assert_eq!(note("é".repeat(255)).unwrap().unwrap().chars().count(), 255);
        assert!(note("é".repeat(256)).is_err());
        assert!(note("a".repeat(256)).is_err());
        assert_eq!(note(String::new()).unwrap(), None);
        assert_eq!(hma_note(Some(&Value::Null)).unwrap(), None);
        assert!(hma_note(Some(&serde_json::json!(5))).is_err());
    }
}
