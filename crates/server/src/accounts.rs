//! Accounts kept in Safeguard for contact decisions: `PUT/GET/DELETE /v1/accounts/{id}` and
//! `PUT/GET /v1/accounts/{id}/relationships/{other}`.
//!
//! A platform can pass both accounts and their relationship inline with every
//! `/v1/contact/decide` (the default, and the cheapest), or keep them here and pass only the
//! ids: `decide` fills what a request leaves out (an account's `age_band` and `assurance`, the
//! `relationship`) from what is stored. Every value is validated with the contact crate's
//! parsers before it is written, so a stored row always parses; the store keeps the names.
//!
//! Age bands are personal data: `DELETE /v1/accounts/{id}` erases the account and every
//! relationship it is part of.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::put;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use safeguard_contact::{
    validate_account_id, Account, AgeBand, Assurance, AssuranceMethod, Confidence, RawAccount,
    Relationship,
};
use safeguard_store::account::{NewAccount, StoredAccount};

use crate::contact::contact_error;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::state::{blocking, AppState};

/// Largest body of an account or relationship write, bytes.
pub const MAX_ACCOUNT_BODY_BYTES: usize = 4 * 1024;

/// Routes needing the `submit` scope: the platform's backend keeping Safeguard's copy of the
/// age signals and the social graph current.
pub fn submit_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/accounts/{id}",
            put(put_account).get(get_account).delete(delete_account),
        )
        .route(
            "/v1/accounts/{id}/relationships/{other}",
            put(put_relationship).get(get_relationship),
        )
}

fn body_json(body: &Bytes) -> ApiResult<Value> {
    if body.len() > MAX_ACCOUNT_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "an account write is at most {MAX_ACCOUNT_BODY_BYTES} bytes, got {}",
                body.len()
            ),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("malformed_request", format!("not JSON: {e}")))
}

/// Parses an account (`age_band`, `assurance`) for the id in the path, with the contact
/// crate's codes for each bad value.
fn parse_account(id: &str, mut body: Value) -> ApiResult<Account> {
    let obj = body.as_object_mut().ok_or_else(|| {
        ApiError::bad_request("malformed_request", "the body must be a JSON object")
    })?;
    match obj.get("id") {
        None => {
            obj.insert("id".into(), Value::String(id.to_string()));
        }
        Some(Value::String(given)) if given == id => {}
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_account",
                "id: the body's id differs from the path's; leave it out",
            ))
        }
    }
    let raw: RawAccount = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request("malformed_request", e.to_string()))?;
    Account::try_from(raw).map_err(contact_error)
}

/// The stored account as the contact crate's type. A row that does not parse was not written
/// by this server: corrupt, so a 500, never a guess.
pub(crate) fn stored_to_account(s: &StoredAccount) -> ApiResult<Account> {
    let corrupt = |what: &str| {
        ApiError::internal(format!(
            "stored account {:?} has an unreadable {what}",
            s.id
        ))
    };
    let age_band = AgeBand::parse(&s.age_band).ok_or_else(|| corrupt("age_band"))?;
    let method =
        AssuranceMethod::parse(&s.assurance_method).ok_or_else(|| corrupt("assurance method"))?;
    let confidence =
        Confidence::new(s.assurance_confidence).ok_or_else(|| corrupt("assurance confidence"))?;
    Ok(Account {
        id: s.id.clone(),
        age_band,
        assurance: Assurance { method, confidence },
    })
}

fn account_json(s: &StoredAccount) -> Value {
    json!({
        "id": s.id,
        "age_band": s.age_band,
        "assurance": {"method": s.assurance_method, "confidence": s.assurance_confidence},
        "updated_at_ms": s.updated_at,
    })
}

/// Checks an id from the path with the contact crate's rules (length, control characters).
fn check_id(field: &str, id: &str) -> ApiResult<()> {
    validate_account_id(field, id).map_err(contact_error)
}

async fn put_account(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let account = parse_account(&id, body_json(&body)?)?;
    let store = state.0.store.clone();
    let stored = blocking(move || {
        Ok(store.put_account(&NewAccount {
            id: account.id,
            age_band: account.age_band.as_str().to_string(),
            assurance_method: account.assurance.method.as_str().to_string(),
            assurance_confidence: account.assurance.confidence.get(),
        })?)
    })
    .await?;
    Ok(Json(account_json(&stored)))
}

async fn get_account(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    check_id("id", &id)?;
    let store = state.0.store.clone();
    let found = blocking(move || Ok(store.account(&id)?)).await?;
    match found {
        Some(s) => Ok(Json(account_json(&s))),
        None => Err(account_not_found("id")),
    }
}

async fn delete_account(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    check_id("id", &id)?;
    let store = state.0.store.clone();
    let gone = blocking(move || match store.delete_account(&id) {
        Ok(s) => Ok(Some(s)),
        Err(safeguard_store::Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    })
    .await?;
    match gone {
        Some(s) => Ok(Json(json!({"deleted": true, "account": account_json(&s)}))),
        None => Err(account_not_found("id")),
    }
}

pub(crate) fn account_not_found(field: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "account_not_found",
        format!("{field}: no account with this id is stored; PUT /v1/accounts/{{id}} first or pass it inline"),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RelationshipBody {
    relationship: String,
}

fn relationship_json(id: &str, other: &str, rel: &str, updated_at: Option<i64>) -> Value {
    json!({
        "account": id,
        "other": other,
        "relationship": rel,
        "updated_at_ms": updated_at,
    })
}

fn check_pair(id: &str, other: &str) -> ApiResult<()> {
    check_id("id", id)?;
    check_id("other", other)?;
    if id == other {
        return Err(ApiError::bad_request(
            "invalid_account",
            "other: an account has no relationship with itself",
        ));
    }
    Ok(())
}

async fn put_relationship(
    State(state): State<AppState>,
    ApiPath((id, other)): ApiPath<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    check_pair(&id, &other)?;
    let req: RelationshipBody = serde_json::from_value(body_json(&body)?)
        .map_err(|e| ApiError::bad_request("malformed_request", e.to_string()))?;
    let rel = Relationship::parse(&req.relationship).ok_or_else(|| {
        contact_error(safeguard_contact::Error::UnknownRelationship {
            value: req.relationship.clone(),
        })
    })?;
    let store = state.0.store.clone();
    let (a, b) = (id.clone(), other.clone());
    let stored = blocking(move || {
        store.put_relationship(&a, &b, rel.as_str())?;
        Ok(store.relationship(&a, &b)?)
    })
    .await?;
    Ok(Json(relationship_json(
        &id,
        &other,
        rel.as_str(),
        stored.map(|s| s.updated_at),
    )))
}

async fn get_relationship(
    State(state): State<AppState>,
    ApiPath((id, other)): ApiPath<(String, String)>,
) -> ApiResult<Json<Value>> {
    check_pair(&id, &other)?;
    let store = state.0.store.clone();
    let (a, b) = (id.clone(), other.clone());
    let stored = blocking(move || Ok(store.relationship(&a, &b)?)).await?;
    Ok(Json(match stored {
        Some(s) => relationship_json(&id, &other, &s.relationship, Some(s.updated_at)),
        None => relationship_json(&id, &other, Relationship::Unrelated.as_str(), None),
    }))
}
