//! Acting on matches over HTTP: content submissions (`/v1/content`), policy rules
//! (`/v1/rules`), cases (`/v1/cases`) and evidence reads. Thin: the engine's
//! [`Actioner`](safeguard_engine::action::Actioner) decides and records; this module parses,
//! hashes, seals evidence into the vault and answers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use safeguard_engine::action::{
    case_json, Actioner, MediaDigest, Submission, SubmitResult, MAX_SUBMISSION_SIGNALS,
};
use safeguard_engine::case::CaseState;
use safeguard_engine::{now_ms, SignalType, SignalValue};
use safeguard_policy::{AccountAge, Kind, RuleSet, RuleSpec, Surface};
use safeguard_store::action::{CaseFilter, NewEvidence, StoredRule};

use crate::error::{ApiError, ApiResult};
use crate::extract::{short, ApiPath, ApiQuery, JsonBody, UploadForm};
use crate::media::{check_photo_upload, hash_photo, hash_video, read_upload};
use crate::state::{blocking, AppState};

/// Most items in one `POST /v1/content/batch`.
pub const MAX_BATCH_ITEMS: usize = 1000;
/// Largest batch body, bytes: 1,000 items of signals and context.
pub const MAX_BATCH_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Largest rules body, bytes (1,000 rules of a few hundred bytes).
pub const MAX_RULES_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Largest page of cases.
pub const MAX_CASE_PAGE: usize = 500;

/// Routes needing the `submit` scope.
pub fn submit_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/content",
            post(submit).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/v1/content/batch",
            post(submit_batch).layer(DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES)),
        )
        .route("/v1/content/{id}", get(submission_get))
}

/// Routes needing the `admin` scope: the policy, cases and evidence.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/rules",
            get(rules_list)
                .put(rules_replace)
                .post(rule_create)
                .layer(DefaultBodyLimit::max(MAX_RULES_BODY_BYTES)),
        )
        .route(
            "/v1/rules/{id}",
            get(rule_get).put(rule_put).delete(rule_delete),
        )
        .route("/v1/cases", get(cases_list))
        .route("/v1/cases/{id}", get(case_get))
        .route("/v1/cases/{id}/transition", post(case_transition))
        .route("/v1/cases/{id}/legal_hold", post(case_legal_hold))
        .route("/v1/evidence/{object_id}", get(evidence_get))
}

/// Routes needing the `approve` scope: the second person of the two-person rule.
pub fn approve_routes() -> Router<AppState> {
    Router::new().route("/v1/cases/{id}/approve", post(case_approve))
}

// ------------------------------------------------------------ submissions

/// The JSON of a submission (the body, or the `json` part of a multipart form).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContentReq {
    id: String,
    kind: Kind,
    url: Option<String>,
    signals: Option<BTreeMap<String, String>>,
    account: Option<String>,
    #[serde(default = "unknown_age")]
    account_age: AccountAge,
    surface: Option<Surface>,
    created_at: Option<i64>,
    ip: Option<String>,
    metadata: Option<Value>,
}

fn unknown_age() -> AccountAge {
    AccountAge::Unknown
}

fn parse_signals(map: &BTreeMap<String, String>) -> ApiResult<Vec<SignalValue>> {
    if map.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_signals",
            "signals is empty; give at least one of pdq, md5, sha1, sha256, vpdq",
        ));
    }
    if map.len() > MAX_SUBMISSION_SIGNALS {
        return Err(ApiError::bad_request(
            "invalid_signals",
            format!("at most {MAX_SUBMISSION_SIGNALS} signals"),
        ));
    }
    map.iter()
        .map(|(name, value)| {
            let t = SignalType::parse(name)
                .map_err(|e| ApiError::bad_request("invalid_signals", e.to_string()))?;
            SignalValue::parse(t, value)
                .map_err(|e| ApiError::bad_request("invalid_signals", e.to_string()))
        })
        .collect()
}

fn digest_of(bytes: &[u8]) -> MediaDigest {
    let d = safeguard_media::digest::digests(bytes);
    MediaDigest {
        sha256: d.sha256_hex(),
        md5: d.md5_hex(),
        size: bytes.len() as u64,
    }
}

/// Hashes media by its declared kind: images get PDQ and digests, videos vPDQ and digests
/// (and, for animated images, the first frame's PDQ), anything else its digests only.
async fn media_signals(state: &AppState, kind: Kind, bytes: Bytes) -> ApiResult<Vec<SignalValue>> {
    Ok(match kind {
        Kind::Image => {
            check_photo_upload(state, &bytes)?;
            let (h, _) = hash_photo(state, bytes, false).await?;
            h.signals()
        }
        Kind::Video => {
            let h = hash_video(state, bytes).await?;
            let mut out = vec![
                SignalValue::Vpdq(h.vpdq.frames.into()),
                SignalValue::Md5(h.md5),
                SignalValue::Sha256(h.sha256),
            ];
            if let Some(f) = h.first_frame {
                out.push(SignalValue::Pdq(f.pdq));
            }
            out
        }
        Kind::Other => {
            let d = safeguard_media::digest::digests(&bytes);
            vec![
                SignalValue::Md5(d.md5),
                SignalValue::Sha1(d.sha1),
                SignalValue::Sha256(d.sha256),
            ]
        }
    })
}

/// Builds a submission from its JSON and, when given, its uploaded media.
async fn build(
    state: &AppState,
    req: ContentReq,
    media: Option<Bytes>,
) -> ApiResult<(Submission, Option<Bytes>)> {
    let sources = [media.is_some(), req.url.is_some(), req.signals.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if sources > 1 {
        return Err(ApiError::bad_request(
            "conflicting_media",
            "give exactly one of: a media file, url, or signals",
        ));
    }
    if sources == 0 {
        return Err(ApiError::bad_request(
            "no_media",
            "give a media file, a url, or precomputed signals",
        ));
    }
    let mut s = Submission {
        id: req.id,
        kind: req.kind,
        signals: Vec::new(),
        account: req.account,
        account_age: req.account_age,
        surface: req.surface,
        created_at: req.created_at,
        ip: req.ip,
        metadata: req.metadata,
        media: None,
        url: req.url,
    };
    // The item's own fields first: a submission refused for them costs no download or decode.
    s.validate_context().map_err(ApiError::from)?;
    let bytes = match (&s.url, media) {
        (Some(url), _) => Some(Bytes::from(crate::media::fetch(state, url).await?)),
        (None, m) => m,
    };
    let (signals, digest) = match (&req.signals, &bytes) {
        (Some(map), _) => (parse_signals(map)?, None),
        (None, Some(b)) => (
            media_signals(state, s.kind, b.clone()).await?,
            Some(digest_of(b)),
        ),
        (None, None) => unreachable!("one source was checked to be present"),
    };
    s.signals = signals;
    s.media = digest;
    s.validate().map_err(ApiError::from)?;
    Ok((s, bytes))
}

fn json_part(text: &str) -> ApiResult<ContentReq> {
    serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            ApiError::bad_request("invalid_body", e.to_string())
        } else {
            ApiError::bad_request("invalid_json", e.to_string())
        }
    })
}

/// Evaluates, seals the evidence when the verdict keeps it, and records.
pub(crate) async fn process(
    state: &AppState,
    s: Submission,
    media: Option<Bytes>,
) -> ApiResult<SubmitResult> {
    let actioner = state.actioner()?;
    let recorded = match media {
        // Nothing to seal between the steps: one hop to the blocking pool, and no separate
        // replay check (the record itself answers a replay with the stored result, and
        // evaluating a rare replay again costs less than a read for every submission).
        None => {
            let a = actioner.clone();
            let st = state.clone();
            blocking(move || {
                let mut eval = a.evaluate(&s)?;
                eval.surfaced = crate::nca::surfaced(&st, &s, &eval)?;
                Ok(a.record(&s, &eval, None)?)
            })
            .await?
        }
        Some(bytes) => process_media(state, &actioner, s, bytes).await?,
    };
    if !recorded.replayed {
        state.notify_webhooks();
        state
            .0
            .metrics
            .record_verdict(recorded.body["verdict"].as_str().unwrap_or("unknown"));
    }
    Ok(recorded)
}

/// [`process`] for a submission with media: the evidence is sealed into the vault between
/// the evaluation and the record (outside any transaction), and removed again when the record
/// fails or a racing twin was recorded first.
async fn process_media(
    state: &AppState,
    actioner: &Arc<Actioner>,
    s: Submission,
    media: Bytes,
) -> ApiResult<SubmitResult> {
    let a = actioner.clone();
    let probe = s.clone();
    if let Some(r) = blocking(move || Ok(a.replay(&probe)?)).await? {
        return Ok(r);
    }
    let a = actioner.clone();
    let probe = s.clone();
    let st = state.clone();
    let eval = blocking(move || {
        let mut eval = a.evaluate(&probe)?;
        eval.surfaced = crate::nca::surfaced(&st, &probe, &eval)?;
        Ok(eval)
    })
    .await?;
    let mut sealed = None;
    if eval.keeps_evidence() {
        let vault = state.vault().await?;
        let object_id = format!("ev_{}", &safeguard_engine::action::new_event_id()[4..]);
        let obj = vault
            .put(&object_id, &media)
            .await
            .map_err(vault_put_error)?;
        sealed = Some(obj);
    }
    let evidence = sealed.as_ref().map(|o| NewEvidence {
        object_id: o.object_id.clone(),
        blob_key: o.blob_key.clone(),
        wrapped_key: o.wrapped_key.clone(),
        key_fingerprint: o.key_fingerprint.clone(),
        sha256: o.sha256.clone(),
        md5: o.md5.clone(),
        size: i64::try_from(o.size).unwrap_or(i64::MAX),
        media_kind: s.kind.as_str().into(),
    });
    let a = actioner.clone();
    let recorded = blocking(move || Ok(a.record(&s, &eval, evidence)?)).await;
    let Some(obj) = &sealed else {
        return recorded;
    };
    // Not recorded, or a racing twin was recorded first: this blob may have no record. An
    // error does not prove that, though: a PostgreSQL COMMIT whose reply was lost fails here
    // with the record saved. So the store is asked before the blob goes.
    if matches!(&recorded, Err(_) | Ok(SubmitResult { replayed: true, .. })) {
        let store = state.0.store.clone();
        let oid = obj.object_id.clone();
        let lookup = blocking(move || Ok(store.evidence(&oid)?)).await;
        if orphaned(obj, &lookup) {
            if let Ok(vault) = state.vault().await {
                if let Err(e) = vault.destroy(obj).await {
                    tracing::warn!(error = %e, object = %obj.object_id, "orphan evidence blob left");
                }
            }
        } else if recorded.is_err() {
            tracing::warn!(
                object = %obj.object_id,
                "recording failed but a record may hold this evidence; its blob is kept"
            );
        }
    }
    recorded
}

/// Whether the blob of `obj` is safe to delete after its record failed or lost a race:
/// only when the store answers that no record holds it. A record that holds it (a commit
/// whose reply was lost), or no answer at all, keeps it: an orphaned blob is noise without
/// its wrapped key, while a deleted one is evidence lost for good.
fn orphaned(
    obj: &safeguard_vault::SealedObject,
    lookup: &ApiResult<Option<safeguard_store::action::Evidence>>,
) -> bool {
    match lookup {
        Ok(None) => true,
        Ok(Some(ev)) => ev.blob_key != obj.blob_key,
        Err(_) => false,
    }
}

/// The answer to a vault `put` that failed. An object over the vault's size limit is the
/// request's fault and fails the same way every time, so it must not say "try again".
fn vault_put_error(e: safeguard_vault::Error) -> ApiError {
    tracing::error!(error = %e, "storing evidence failed");
    match e {
        safeguard_vault::Error::TooLarge { size, limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the media is {size} bytes; evidence is kept up to {limit} bytes, so nothing \
                 was recorded"
            ),
        ),
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "vault_unavailable",
            "the evidence could not be stored; nothing was recorded, try again",
        ),
    }
}

/// The answer to a vault read (`get`) of `object_id` that failed, for every path that reads
/// evidence. A client retries a 503, so only a fault that may pass (the file system, object
/// storage, a worker) is one; an object that fails its checks stays failed, and a blob gone
/// since the record was read was destroyed (retention runs beside reads).
pub(crate) fn vault_read_error(e: &safeguard_vault::Error, object_id: &str) -> ApiError {
    use safeguard_vault::Error as E;
    tracing::error!(error = %e, object = %object_id, "evidence read failed");
    match e {
        E::NotFound { .. } => ApiError::new(
            StatusCode::GONE,
            "evidence_destroyed",
            format!(
                "evidence {} is no longer in the vault (destroyed since its record was read)",
                short(object_id)
            ),
        ),
        E::Tampered { .. }
        | E::Corrupt { .. }
        | E::InvalidBlobKey { .. }
        | E::InvalidObjectId { .. }
        | E::TooLarge { .. } => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "vault_error",
            format!(
                "evidence {} fails the vault's integrity checks (altered or corrupt); \
                 retrying will not help, see the server log",
                short(object_id)
            ),
        ),
        E::WrongMasterKey { .. } => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "master_key_mismatch",
            "the evidence was sealed under another master key than this server's; \
             see the server log",
        ),
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "vault_unavailable",
            "the evidence could not be read now; try again (see the server log)",
        ),
    }
}

fn answer(r: SubmitResult) -> Response {
    let mut resp = Json(r.body).into_response();
    if r.replayed {
        resp.headers_mut()
            .insert("safeguard-replayed", HeaderValue::from_static("true"));
    }
    resp
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"))
}

async fn submit(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let (s, media) = if is_multipart(req.headers()) {
        let UploadForm(form) =
            <UploadForm as axum::extract::FromRequest<AppState>>::from_request(req, &state)
                .await
                .unwrap_or_else(|never| match never {});
        let form = form.map_err(|e| ApiError::bad_request("invalid_multipart", e.body_text()))?;
        let up = read_upload(form).await?;
        let Some(text) = up.fields.get("json") else {
            return Err(ApiError::bad_request(
                "invalid_multipart",
                "the form needs a `json` part with the submission",
            ));
        };
        let cr = json_part(text)?;
        let media = up.file.map(|(_, b)| b);
        build(&state, cr, media).await?
    } else {
        // The route takes video-sized uploads; a JSON body gets the ordinary limit.
        let limit = state.0.config.limits.max_body_bytes;
        let body = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("a JSON submission is at most {limit} bytes (limits.max_body_bytes)"),
                )
            })?;
        let text = std::str::from_utf8(&body)
            .map_err(|_| ApiError::bad_request("invalid_json", "the body is not UTF-8"))?;
        build(&state, json_part(text)?, None).await?
    };
    let r = process(&state, s, media).await?;
    Ok(answer(r))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchReq {
    items: Vec<Value>,
}

async fn submit_batch(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<BatchReq>,
) -> ApiResult<Json<Value>> {
    if req.items.len() > MAX_BATCH_ITEMS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_items",
            format!("a batch holds at most {MAX_BATCH_ITEMS} items"),
        ));
    }
    let mut results = Vec::with_capacity(req.items.len());
    for item in req.items {
        let one = async {
            let cr: ContentReq = serde_json::from_value(item)
                .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
            if cr.signals.is_none() {
                return Err(ApiError::bad_request(
                    "signals_required",
                    "batch items carry precomputed signals; send media to /v1/content",
                ));
            }
            let (s, _) = build(&state, cr, None).await?;
            process(&state, s, None).await
        }
        .await;
        results.push(match one {
            Ok(r) => json!({"status": 200, "replayed": r.replayed, "result": r.body}),
            Err(e) => json!({
                "status": e.status.as_u16(),
                "error": {"code": e.code, "message": e.message},
            }),
        });
    }
    Ok(Json(json!({ "results": results })))
}

async fn submission_get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let store = state.0.store.clone();
    let key = id.clone();
    let st = blocking(move || Ok(store.submission(&key)?)).await?;
    let st = st.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "content_not_found",
            format!("no submission with id {}", short(&id)),
        )
    })?;
    Ok(Json(safeguard_engine::action::stored_body(&st)?))
}

// ------------------------------------------------------------------ rules

fn rule_json(r: &StoredRule) -> ApiResult<Value> {
    let mut v: Value = serde_json::from_str(&r.spec).map_err(ApiError::internal)?;
    v["version"] = json!(r.version);
    v["position"] = json!(r.position);
    v["updated_at"] = json!(r.created_at);
    Ok(v)
}

fn rules_body(rules: &[StoredRule]) -> ApiResult<Value> {
    let list: ApiResult<Vec<Value>> = rules.iter().map(rule_json).collect();
    let builtins: Vec<Value> = safeguard_policy::builtin_rules()
        .iter()
        .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
        .collect();
    Ok(json!({"rules": list?, "builtin": builtins}))
}

async fn rules_list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let a = state.actioner()?;
    let rules = blocking(move || Ok(a.rules()?)).await?;
    Ok(Json(rules_body(&rules)?))
}

fn outcome_json(o: &safeguard_store::action::RuleSetOutcome) -> ApiResult<Value> {
    let mut body = rules_body(&o.rules)?;
    body["created"] = json!(o.created);
    body["changed"] = json!(o.changed);
    body["moved"] = json!(o.moved);
    body["unchanged"] = json!(o.unchanged);
    body["removed"] = json!(o.removed);
    Ok(body)
}

fn rule_text(body: &Bytes) -> ApiResult<&str> {
    std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("invalid_rule", "the body is not UTF-8"))
}

/// `PUT /v1/rules`: replaces the whole set, from JSON (`{"rule": [...]}`) or, with
/// `Content-Type: application/toml`, a rules file.
async fn rules_replace(
    State(state): State<AppState>,
    Extension(actor): Extension<crate::auth::KeyId>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let text = rule_text(&body)?;
    let toml = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/toml"));
    let set = if toml {
        RuleSet::parse_toml(text)
    } else {
        RuleSet::parse_json(text)
    }
    .map_err(safeguard_engine::Error::from)?;
    let a = state.actioner()?;
    let st = state.clone();
    let out = blocking(move || {
        let out = a.apply_rules(&set)?;
        st.audit_after(
            &actor.0,
            safeguard_engine::audit::Action::RuleChanged,
            "rules",
            &out.audit_detail(),
        );
        Ok(out)
    })
    .await?;
    Ok(Json(outcome_json(&out)?))
}

#[derive(Debug, Deserialize)]
struct PositionQuery {
    position: Option<u32>,
}

async fn rule_create(
    State(state): State<AppState>,
    Extension(actor): Extension<crate::auth::KeyId>,
    ApiQuery(q): ApiQuery<PositionQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    let text = rule_text(&body)?;
    let spec = RuleSpec::parse_json(text).map_err(safeguard_engine::Error::from)?;
    let a = state.actioner()?;
    let id = spec.id.clone();
    let st = state.clone();
    let out = blocking(move || {
        if a.rules()?.iter().any(|r| r.id == spec.id) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "duplicate_rule",
                format!("rule {:?} exists; PUT /v1/rules/{{id}} changes it", spec.id),
            ));
        }
        let out = a.put_rule(&spec, q.position)?;
        st.audit_after(
            &actor.0,
            safeguard_engine::audit::Action::RuleChanged,
            &format!("rule:{}", spec.id),
            "created",
        );
        Ok(out)
    })
    .await?;
    let rule = out
        .rules
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ApiError::internal("the created rule is not in the set"))?;
    Ok((StatusCode::CREATED, Json(rule_json(rule)?)).into_response())
}

fn rule_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "rule_not_found",
        format!("rule {} not found", short(id)),
    )
}

async fn rule_get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let store = state.0.store.clone();
    let key = id.clone();
    let (rules, history) =
        blocking(move || Ok((store.rules()?, store.rule_history(&key)?))).await?;
    let current = rules
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| rule_not_found(&id))?;
    let mut body = rule_json(current)?;
    let versions: ApiResult<Vec<Value>> = history.iter().map(rule_json).collect();
    body["history"] = json!(versions?);
    Ok(Json(body))
}

async fn rule_put(
    State(state): State<AppState>,
    Extension(actor): Extension<crate::auth::KeyId>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PositionQuery>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let text = rule_text(&body)?;
    let spec = RuleSpec::parse_json(text).map_err(safeguard_engine::Error::from)?;
    if spec.id != id {
        return Err(ApiError::bad_request(
            "invalid_rule",
            format!(
                "the body's id {:?} is not the path's {:?}",
                spec.id,
                short(&id)
            ),
        ));
    }
    let a = state.actioner()?;
    let st = state.clone();
    let out = blocking(move || {
        let out = a.put_rule(&spec, q.position)?;
        st.audit_after(
            &actor.0,
            safeguard_engine::audit::Action::RuleChanged,
            &format!("rule:{}", spec.id),
            "changed",
        );
        Ok(out)
    })
    .await?;
    let rule = out
        .rules
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ApiError::internal("the rule is not in the set"))?;
    Ok(Json(rule_json(rule)?))
}

async fn rule_delete(
    State(state): State<AppState>,
    Extension(actor): Extension<crate::auth::KeyId>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let a = state.actioner()?;
    let st = state.clone();
    blocking(move || {
        a.delete_rule(&id)?;
        st.audit_after(
            &actor.0,
            safeguard_engine::audit::Action::RuleChanged,
            &format!("rule:{id}"),
            "deleted",
        );
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------ cases

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesQuery {
    state: Option<String>,
    queue: Option<String>,
    account: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    before: Option<i64>,
    limit: Option<usize>,
}

async fn cases_list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<CasesQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_CASE_PAGE);
    let filter = CaseFilter {
        state: q.state,
        queue: q.queue,
        account: q.account,
        since: q.since,
        until: q.until,
        before: q.before,
        with_history: None,
        limit,
    };
    let a = state.actioner()?;
    let cases = blocking(move || Ok(a.cases(&filter)?)).await?;
    let next = (cases.len() == limit)
        .then(|| cases.last().map(|c| c.id))
        .flatten();
    Ok(Json(json!({
        "cases": cases.iter().map(case_json).collect::<Vec<_>>(),
        "next_before": next,
    })))
}

pub(crate) fn case_not_found(id: i64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "case_not_found",
        format!("case {id} not found"),
    )
}

async fn case_get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let store = state.0.store.clone();
    let (case, subs, history, evidence) = blocking(move || {
        let Some(c) = store.case(id)? else {
            return Err(case_not_found(id));
        };
        Ok((
            c,
            store.case_submissions(id)?,
            store.case_history(id)?,
            store.case_evidence(id)?,
        ))
    })
    .await?;
    let items: ApiResult<Vec<Value>> = subs
        .iter()
        .map(|s| {
            let mut v = safeguard_engine::action::stored_body(s)?;
            v["context"] = serde_json::from_str(&s.context).unwrap_or(Value::Null);
            v["evidence"] = json!(evidence
                .iter()
                .filter(|e| e.submission_id == s.id)
                .map(|e| json!({
                    "object_id": e.object_id,
                    "sha256": e.sha256,
                    "md5": e.md5,
                    "size": e.size,
                    "media_kind": e.media_kind,
                    "stored_at": e.created_at,
                    "deleted_at": e.deleted_at,
                    "deletion_reason": e.deletion_reason,
                }))
                .collect::<Vec<_>>());
            Ok(v)
        })
        .collect();
    let mut body = case_json(&case);
    body["next_states"] = json!(CaseState::parse(&case.state)
        .map(|s| s
            .next()
            .into_iter()
            .map(CaseState::as_str)
            .collect::<Vec<_>>())
        .unwrap_or_default());
    body["items_detail"] = json!(items?);
    body["history"] = json!(history
        .iter()
        .map(|h| json!({
            "at": h.at, "actor": h.actor, "action": h.action,
            "from": h.from_state, "to": h.to_state, "note": h.note, "decision": h.decision,
        }))
        .collect::<Vec<_>>());
    // The two-person rule's state, so a client can tell what the case waits for.
    body["decided_by"] = json!(safeguard_engine::case::decision_line(&history).map(|h| &h.actor));
    body["approved_by"] =
        json!(safeguard_engine::case::current_approval(&history).map(|h| &h.actor));
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransitionReq {
    to: String,
    note: Option<String>,
    decision: Option<String>,
}

/// Longest note or decision on a case, bytes.
pub const MAX_CASE_NOTE_BYTES: usize = 4096;

async fn case_transition(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    Extension(key): Extension<crate::auth::KeyId>,
    JsonBody(req): JsonBody<TransitionReq>,
) -> ApiResult<Json<Value>> {
    let to = CaseState::parse(&req.to).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_request",
            format!(
                "to must be one of open, in_review, decided, reported, closed; got {}",
                short(&req.to)
            ),
        )
    })?;
    for t in [&req.note, &req.decision].into_iter().flatten() {
        if t.len() > MAX_CASE_NOTE_BYTES {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("notes and decisions are at most {MAX_CASE_NOTE_BYTES} bytes"),
            ));
        }
    }
    let a = state.actioner()?;
    let st = state.clone();
    let c = blocking(move || {
        let kind = req
            .decision
            .as_deref()
            .map(safeguard_engine::case::DecisionKind::of);
        let c = a.transition(id, to, &key.0, req.note, req.decision)?;
        if to == CaseState::Decided {
            // The kind, not the text: a decision's free text may quote what it is about.
            let kind = match kind {
                Some(safeguard_engine::case::DecisionKind::Confirmed) => "confirmed",
                Some(safeguard_engine::case::DecisionKind::FalsePositive) => "false_positive",
                _ => "other",
            };
            st.audit_after(
                &key.0,
                safeguard_engine::audit::Action::Decision,
                &format!("case:{id}"),
                kind,
            );
        }
        Ok(c)
    })
    .await?;
    state.notify_webhooks();
    Ok(Json(case_json(&c)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveReq {
    note: Option<String>,
}

/// `POST /v1/cases/{id}/approve`: a second key approves the confirmed decision of a decided
/// case. The key that decided it is refused (403 `same_person`); so is a second approval of
/// the same decision (409 `already_approved`). Only an approved case can become `reported`.
async fn case_approve(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    Extension(key): Extension<crate::auth::KeyId>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    // The body is optional: an approval needs nothing but the key that makes it.
    let req: ApproveReq = if body.iter().all(u8::is_ascii_whitespace) {
        ApproveReq::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request("invalid_json", format!("invalid approval body: {e}"))
        })?
    };
    if req
        .note
        .as_ref()
        .is_some_and(|n| n.len() > MAX_CASE_NOTE_BYTES)
    {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("notes are at most {MAX_CASE_NOTE_BYTES} bytes"),
        ));
    }
    let a = state.actioner()?;
    let st = state.clone();
    let c = blocking(move || {
        let c = a.approve(id, &key.0, req.note)?;
        st.audit_after(
            &key.0,
            safeguard_engine::audit::Action::Approval,
            &format!("case:{id}"),
            "",
        );
        Ok(c)
    })
    .await?;
    state.notify_webhooks();
    Ok(Json(case_json(&c)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldReq {
    hold: bool,
}

async fn case_legal_hold(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    Extension(key): Extension<crate::auth::KeyId>,
    JsonBody(req): JsonBody<HoldReq>,
) -> ApiResult<Json<Value>> {
    let st = state.clone();
    let c = blocking(move || {
        let c = match st.0.store.set_legal_hold(id, req.hold, &key.0, now_ms()) {
            Err(safeguard_store::Error::NotFound(_)) => return Err(case_not_found(id)),
            other => other?,
        };
        st.audit_after(
            &key.0,
            safeguard_engine::audit::Action::LegalHold,
            &format!("case:{id}"),
            if req.hold { "placed" } else { "lifted" },
        );
        Ok(c)
    })
    .await?;
    Ok(Json(case_json(&c)))
}

/// The vault's handle of a stored evidence record whose data key is `wrapped_key` (the
/// record's own, which a destroyed record no longer has).
pub(crate) fn sealed_object(
    ev: &safeguard_store::action::Evidence,
    wrapped_key: Vec<u8>,
) -> safeguard_vault::SealedObject {
    safeguard_vault::SealedObject {
        object_id: ev.object_id.clone(),
        blob_key: ev.blob_key.clone(),
        wrapped_key,
        key_fingerprint: ev.key_fingerprint.clone(),
        sha256: ev.sha256.clone(),
        md5: ev.md5.clone(),
        size: u64::try_from(ev.size).unwrap_or(0),
    }
}

/// `GET /v1/evidence/{object_id}`: the decrypted media, one object per request, logged with
/// the key that read it. There is no bulk export.
async fn evidence_get(
    State(state): State<AppState>,
    ApiPath(object_id): ApiPath<String>,
    Extension(key): Extension<crate::auth::KeyId>,
) -> ApiResult<Response> {
    let store = state.0.store.clone();
    let oid = object_id.clone();
    let ev = blocking(move || Ok(store.evidence(&oid)?))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "evidence_not_found",
                format!("no evidence {}", short(&object_id)),
            )
        })?;
    let Some(wrapped_key) = ev.wrapped_key.clone() else {
        return Err(ApiError::new(
            StatusCode::GONE,
            "evidence_destroyed",
            format!(
                "evidence {} was destroyed ({})",
                short(&object_id),
                ev.deletion_reason
                    .as_deref()
                    .unwrap_or("no reason recorded")
            ),
        ));
    };
    // The read is logged before the bytes leave: a failure to log refuses the read.
    let store = state.0.store.clone();
    let (actor, oid) = (key.0.clone(), object_id.clone());
    let st = state.clone();
    blocking(move || {
        store.log_access(&actor, "read", &oid, now_ms())?;
        st.audit(
            &actor,
            safeguard_engine::audit::Action::VaultRead,
            &oid,
            "evidence read",
        )?;
        Ok(())
    })
    .await?;
    tracing::info!(object = %object_id, key = %key.0, "evidence read");
    let vault = state.vault().await?;
    let obj = sealed_object(&ev, wrapped_key);
    let bytes = vault
        .get(&obj)
        .await
        .map_err(|e| vault_read_error(&e, &object_id))?;
    let mut resp = bytes.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use safeguard_vault::Error as VaultError;

    fn sealed(blob_key: &str) -> safeguard_vault::SealedObject {
        safeguard_vault::SealedObject {
            object_id: "ev_1".into(),
            blob_key: blob_key.into(),
            wrapped_key: vec![1; 8],
            key_fingerprint: "00".repeat(16),
            sha256: "00".repeat(32),
            md5: "00".repeat(16),
            size: 3,
        }
    }

    fn record(blob_key: &str) -> safeguard_store::action::Evidence {
        safeguard_store::action::Evidence {
            object_id: "ev_1".into(),
            submission_id: 1,
            case_id: 1,
            blob_key: blob_key.into(),
            wrapped_key: Some(vec![1; 8]),
            key_fingerprint: "00".repeat(16),
            sha256: "00".repeat(32),
            md5: "00".repeat(16),
            size: 3,
            media_kind: "image".into(),
            created_at: 0,
            deleted_at: None,
            deletion_reason: None,
        }
    }

    /// A record that failed with an error (a PostgreSQL COMMIT whose reply was lost) may
    /// still have been saved: its blob is deleted only when the store says no record holds
    /// it, never when the store holds it or cannot answer.
    #[test]
    fn a_blob_is_deleted_only_when_the_store_says_no_record_holds_it() {
        let obj = sealed("ab/cd");
        assert!(orphaned(&obj, &Ok(None)));
        assert!(
            !orphaned(&obj, &Ok(Some(record("ab/cd")))),
            "saved despite the error"
        );
        assert!(
            !orphaned(&obj, &Err(ApiError::internal("database down"))),
            "no answer keeps it"
        );
        // A record of the same id holding another blob does not hold this one.
        assert!(orphaned(&obj, &Ok(Some(record("ef/gh")))));
    }

    /// The vault's size limit fails every retry the same way: 413, never 503 "try again".
    #[test]
    fn an_object_too_large_for_the_vault_is_413_other_put_failures_503() {
        let e = vault_put_error(VaultError::TooLarge {
            size: 600 << 20,
            limit: safeguard_vault::MAX_OBJECT_SIZE,
        });
        assert_eq!(
            (e.status, e.code),
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
        );
        assert!(!e.message.contains("try again"), "{}", e.message);
        let e = vault_put_error(VaultError::Backend {
            op: "put",
            key: "ab/cd".into(),
            message: "connection reset".into(),
        });
        assert_eq!(
            (e.status, e.code),
            (StatusCode::SERVICE_UNAVAILABLE, "vault_unavailable")
        );
    }

    /// Only a fault that may pass is a 503: an altered or corrupt object is a 500, a blob
    /// gone since its record was read is 410 like any destroyed evidence.
    #[test]
    fn vault_read_failures_say_whether_a_retry_can_help() {
        let status = |e: VaultError| {
            let a = vault_read_error(&e, "ev_1");
            (a.status, a.code)
        };
        assert_eq!(
            status(VaultError::NotFound {
                key: "ab/cd".into()
            }),
            (StatusCode::GONE, "evidence_destroyed")
        );
        assert_eq!(
            status(VaultError::Tampered {
                object_id: "ev_1".into(),
                what: "ciphertext"
            }),
            (StatusCode::INTERNAL_SERVER_ERROR, "vault_error")
        );
        assert_eq!(
            status(VaultError::Corrupt {
                object_id: "ev_1".into(),
                reason: "bad magic".into()
            }),
            (StatusCode::INTERNAL_SERVER_ERROR, "vault_error")
        );
        assert_eq!(
            status(VaultError::WrongMasterKey {
                object_id: "ev_1".into(),
                sealed_with: "00".into(),
                current: "11".into()
            }),
            (StatusCode::INTERNAL_SERVER_ERROR, "master_key_mismatch")
        );
        assert_eq!(
            status(VaultError::Io {
                path: "/x".into(),
                source: std::io::Error::other("EIO")
            }),
            (StatusCode::SERVICE_UNAVAILABLE, "vault_unavailable")
        );
    }
}
