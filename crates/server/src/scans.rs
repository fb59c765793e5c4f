//! Backfill scans over HTTP: progress (`GET /v1/scans/{id}`), results, and pause, resume and
//! cancel. Scans are started and worked by `safeguard scan` processes sharing the store; this
//! only reads and steers them (workers see a new state at their next claim).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use safeguard_engine::now_ms;
use safeguard_store::scan::{state, ItemResult, Scan};

use safeguard_engine::audit::Action;

use crate::auth::KeyId;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::{blocking, AppState};

/// Largest page of scans or results.
pub const MAX_SCAN_PAGE: usize = 1000;

/// Routes needing the `admin` scope.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/scans", get(list))
        .route("/v1/scans/{id}", get(one))
        .route("/v1/scans/{id}/results", get(results))
        .route("/v1/scans/{id}/pause", post(pause))
        .route("/v1/scans/{id}/resume", post(resume))
        .route("/v1/scans/{id}/cancel", post(cancel))
}

/// A scan as the API and the CLI show it: its counters and, once something is done, the
/// rate since it started (pauses included) and an estimate of the time left.
pub fn scan_json(s: &Scan) -> Value {
    let target: Value = serde_json::from_str(&s.target).unwrap_or(Value::Null);
    // A running scan's rate is to now, so a stalled one shows falling; a final one's is to
    // its end.
    let end = s
        .finished_at
        .unwrap_or_else(|| if s.is_final() { s.updated_at } else { now_ms() });
    let secs = (end - s.created_at).max(1) as f64 / 1000.0;
    let rate = s.items_done as f64 / secs;
    let left = (s.items - s.items_done).max(0);
    let eta = (s.listed && !s.is_final() && rate > 0.0).then(|| (left as f64 / rate).ceil());
    json!({
        "id": s.id,
        "source": s.source,
        "target": target,
        "state": s.state,
        "listed": s.listed,
        "job_size": s.job_size,
        "jobs": s.jobs,
        "jobs_done": s.jobs_done,
        "items": s.items,
        "items_done": s.items_done,
        "items_failed": s.items_failed,
        "items_matched": s.items_matched,
        "percent": if s.items > 0 { (s.items_done as f64 * 100.0 / s.items as f64 * 10.0).floor() / 10.0 } else { 0.0 },
        "items_per_second": (rate * 10.0).round() / 10.0,
        "eta_seconds": eta,
        "created_by": s.created_by,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "finished_at": s.finished_at,
    })
}

/// One item's result.
pub fn result_json(r: &ItemResult) -> Value {
    json!({
        "key": r.key,
        "pdq": r.pdq,
        "quality": r.quality,
        "md5": r.md5,
        "sha256": r.sha256,
        "size": r.size,
        "error": r.error,
        "matched": r.matched,
        "verdict": r.verdict,
        "submission": r.submission,
    })
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "scan_not_found",
        format!("no scan {id}"),
    )
}

/// Store errors of this module with their own codes.
fn mapped(id: i64, e: safeguard_store::Error) -> ApiError {
    match e {
        safeguard_store::Error::NotFound(_) => not_found(id),
        safeguard_store::Error::Conflict(m) => {
            ApiError::new(StatusCode::CONFLICT, "scan_state_conflict", m)
        }
        other => other.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<usize>,
}

fn page_limit(limit: Option<usize>) -> ApiResult<usize> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=MAX_SCAN_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit is 1 to {MAX_SCAN_PAGE}, not {n}"),
        )),
    }
}

async fn list(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let limit = page_limit(q.limit)?;
    let store = st.0.store.clone();
    let scans = blocking(move || Ok(store.scans(limit)?)).await?;
    Ok(Json(
        json!({ "scans": scans.iter().map(scan_json).collect::<Vec<_>>() }),
    ))
}

async fn one(State(st): State<AppState>, ApiPath(id): ApiPath<i64>) -> ApiResult<Json<Value>> {
    let store = st.0.store.clone();
    let s = blocking(move || store.scan(id)?.ok_or_else(|| not_found(id))).await?;
    Ok(Json(scan_json(&s)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultsQuery {
    after: Option<String>,
    limit: Option<usize>,
}

async fn results(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ResultsQuery>,
) -> ApiResult<Json<Value>> {
    let limit = page_limit(q.limit)?;
    let store = st.0.store.clone();
    let rows = blocking(move || {
        store
            .scan_results(id, q.after.as_deref(), limit)
            .map_err(|e| mapped(id, e))
    })
    .await?;
    let next = (rows.len() == limit).then(|| rows.last().map(|r| r.result.key.clone()));
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut v = result_json(&r.result);
            v["worker"] = json!(r.worker);
            v["recorded_at"] = json!(r.recorded_at);
            v
        })
        .collect();
    Ok(Json(
        json!({ "results": items, "next_after": next.flatten() }),
    ))
}

/// Sets a scan's state and records who did it in the audit log (pausing or cancelling a
/// scan for abuse material is an operator decision a regulator may ask about).
async fn steer(st: AppState, actor: KeyId, id: i64, to: &'static str) -> ApiResult<Json<Value>> {
    let store = st.0.store.clone();
    let audit = st.clone();
    let s = blocking(move || {
        let s = store
            .set_scan_state(id, to, now_ms())
            .map_err(|e| mapped(id, e))?;
        audit.audit_after(&actor.0, Action::ConfigChanged, &format!("scan:{id}"), to);
        Ok(s)
    })
    .await?;
    Ok(Json(scan_json(&s)))
}

async fn pause(
    State(st): State<AppState>,
    Extension(actor): Extension<KeyId>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    steer(st, actor, id, state::PAUSED).await
}

async fn resume(
    State(st): State<AppState>,
    Extension(actor): Extension<KeyId>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    steer(st, actor, id, state::RUNNING).await
}

async fn cancel(
    State(st): State<AppState>,
    Extension(actor): Extension<KeyId>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    steer(st, actor, id, state::CANCELLED).await
}
