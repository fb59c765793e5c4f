//! UK NCA reports of a case (Online Safety Act 2023 s.66, SI 2026/268), over the API: the
//! priority assessment with its deadline clock, the signed and encrypted export bundle for
//! the NCA's portal, and recording the reference the NCA gives back.
//!
//! The NCA's API specification is not public, so the route here is the portal path: an
//! authorised person downloads the bundle (encrypted to their age key), uploads its report
//! by hand, and records the NCA's reference, which moves the case to `reported`. The
//! transport in `safeguard_nca::transport` is ready for the API when it is published.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use safeguard_engine::case::{current_approval, CaseState, DecisionKind};
use safeguard_nca::report::{
    Account, AuthorisedPerson, ContentHash, ContentItem, Declaration, DetectionMethod, HashKind,
    User, UserRole, EARLIEST_MS, LATEST_MS,
};
use safeguard_nca::{ContentFile, NcaReference, PriorityConfig, PriorityFacts, Report};
use safeguard_store::action::{Case, StoredSubmission};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, JsonBody};
use crate::state::{blocking, AppState};

/// The purpose the bundle signing key is derived under (from the master key).
pub const BUNDLE_KEY_PURPOSE: &[u8] = b"nca-bundle-signing-v1";

/// Who the evidence access log names for a read into an NCA report (a bundle or an API
/// send). Like NCMEC's `system:ncmec`, a `system:` actor, so the read does not count as a
/// person having viewed the file; the person who asked for the bundle is in the audit log.
pub const EXPORT_ACTOR: &str = "system:nca";

/// Routes needing the `admin` scope.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/cases/{id}/reports/nca/priority", get(priority))
        .route("/v1/cases/{id}/reports/nca/bundle", post(bundle))
        .route("/v1/cases/{id}/reports/nca/reference", post(reference))
        .route("/v1/reports/nca/signing_key", get(signing_key_route))
}

/// The organisation's bundle signing key: derived from the master key, so every process
/// signs alike and nothing more is stored.
fn signing_key(state: &AppState) -> ApiResult<safeguard_nca::ed25519_dalek::SigningKey> {
    let key = state.0.exchanges.master_key().map_err(|e| {
        tracing::error!(error = %e, "cannot load the master key for the NCA signing key");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "master_key_unavailable",
            "the master key cannot be loaded; see the server log",
        )
    })?;
    Ok(safeguard_nca::ed25519_dalek::SigningKey::from_bytes(
        &key.derive(BUNDLE_KEY_PURPOSE),
    ))
}

async fn signing_key_route(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let st = state.clone();
    let key = blocking(move || signing_key(&st)).await?;
    Ok(Json(json!({
        "public_key": hex::encode(key.verifying_key().to_bytes()),
        "algorithm": "ed25519",
    })))
}

/// The priority rules in force (`[reporting.nca] priority_rules`, else the defaults), read
/// when the server starts (a file that does not parse stops the start) and kept: a change
/// takes a restart, as every other setting does.
fn rules(state: &AppState) -> std::sync::Arc<PriorityConfig> {
    state.0.nca_rules.clone()
}

/// The signal an item from a child's account adds for the priority rules.
const CHILD_ACCOUNT: &str = "child_account_involved";

/// Whether a submission about to be recorded puts its case at priority level 1, and if so the
/// assessment to record with it (see `Evaluation::surfaced`): the case then goes to the top
/// of its queue and the `case.nca_level_1` webhook fires, in the submission's own
/// transaction, before anyone has looked at it. The facts are the ones [`facts`] reads back
/// from the stored case, for this one item: the labels its rule gives the case, a child's
/// account, the classification of its first classified match. A case that reached level 1
/// earlier was surfaced then.
pub(crate) fn surfaced(
    state: &AppState,
    s: &safeguard_engine::action::Submission,
    eval: &safeguard_engine::action::Evaluation,
) -> ApiResult<Option<Value>> {
    if !eval.keeps_evidence() {
        return Ok(None);
    }
    let mut signals: BTreeSet<String> = eval.decision.labels.iter().cloned().collect();
    if s.account_age == safeguard_policy::AccountAge::Child {
        signals.insert(CHILD_ACCOUNT.into());
    }
    let facts = PriorityFacts {
        signals,
        classification: eval
            .matches
            .iter()
            .find_map(|m| m.classification.map(|c| c.as_str().to_string())),
        risk_score: None,
    };
    Ok(level_1(state, &facts))
}

/// The assessment of `facts`, as JSON, if they reach level 1. The rules were read at start:
/// assessing reads no file, so it cannot stop intake.
fn level_1(state: &AppState, facts: &PriorityFacts) -> Option<Value> {
    let a = rules(state).assess(facts);
    if a.level.number() != 1 {
        return None;
    }
    Some(json!({
        "level": 1,
        "requirement": a.level.requirement(),
        "rule": a.rule,
        "fired": a.fired,
        "explanation": a.explanation(),
        "deadline_ms": i64::try_from(a.deadline.as_millis()).unwrap_or(i64::MAX),
    }))
}

/// [`surfaced`] for a contact-risk crossing about to be recorded: the signals [`facts`] reads
/// back from such an item (the labels `contact_risk` and the level, and `risk_<level>`).
pub(crate) fn surfaced_risk(state: &AppState, level: &str) -> Option<Value> {
    let signals: BTreeSet<String> = [
        "contact_risk".to_string(),
        level.to_string(),
        format!("risk_{level}"),
    ]
    .into_iter()
    .collect();
    level_1(
        state,
        &PriorityFacts {
            signals,
            classification: None,
            risk_score: None,
        },
    )
}

/// What a case's records say for the priority rules.
fn facts(case: &Case, subs: &[StoredSubmission]) -> PriorityFacts {
    let mut signals: BTreeSet<String> = case.labels.iter().cloned().collect();
    let mut classification = case
        .decision
        .as_deref()
        .filter(|d| DecisionKind::of(d) == DecisionKind::Confirmed)
        .and_then(decided_class);
    for s in subs {
        let ctx: Value = serde_json::from_str(&s.context).unwrap_or(Value::Null);
        if ctx["account_age"] == "child" {
            signals.insert(CHILD_ACCOUNT.into());
        }
        // A contact-risk crossing in the case: its level as a signal (`risk_review`,
        // `risk_alert`) for rules to name. The scorer's scale is its own, not the 0-to-1
        // score the priority rules compare, so no score is passed.
        if ctx["kind"] == "account_risk" {
            if let Some(level) = ctx["level"].as_str() {
                signals.insert(format!("risk_{level}"));
            }
        }
        let result: Value = serde_json::from_str(&s.result).unwrap_or(Value::Null);
        if classification.is_none() {
            classification = result["matches"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|m| m["classification"].as_str().map(str::to_owned));
        }
    }
    PriorityFacts {
        signals,
        classification,
        risk_score: None,
    }
}

/// The classification a confirmed decision names (`confirmed: A1` gives `A1`).
fn decided_class(decision: &str) -> Option<String> {
    decision
        .split([':', ' '])
        .skip(1)
        .map(str::trim)
        .find(|w| matches!(*w, "A1" | "A2" | "B1" | "B2"))
        .map(str::to_owned)
}

fn load(state: &AppState, id: i64) -> ApiResult<(Case, Vec<StoredSubmission>)> {
    let store = &state.0.store;
    let case = store
        .case(id)?
        .ok_or_else(|| crate::action::case_not_found(id))?;
    Ok((case, store.case_submissions(id)?))
}

/// `GET /v1/cases/{id}/reports/nca/priority`: the level (1–3) the rules give the case, why,
/// and its deadline clock from when the case was opened.
async fn priority(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let st = state.clone();
    let (case, subs) = blocking(move || load(&st, id)).await?;
    let facts = facts(&case, &subs);
    let a = rules(&state).assess(&facts);
    let clock = a.clock(case.opened_at);
    let now = safeguard_engine::now_ms();
    let remaining = match clock.state(now) {
        safeguard_nca::priority::ClockState::Remaining(d) => {
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
        }
        safeguard_nca::priority::ClockState::Overdue(d) => {
            -i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
        }
    };
    Ok(Json(json!({
        "case_id": id,
        "level": a.level.number(),
        "requirement": a.level.requirement(),
        "rule": a.rule,
        "fired": a.fired,
        "explanation": a.explanation(),
        "detected_at_ms": case.opened_at,
        "due_at_ms": clock.due_at_ms(),
        "overdue": clock.is_overdue(now),
        "remaining_ms": remaining,
        "facts": {
            "signals": facts.signals,
            "classification": facts.classification,
            "risk_score": facts.risk_score,
        },
    })))
}

/// Refuses unless the case's confirmed decision has a second person's approval.
fn require_approval(state: &AppState, case: &Case) -> ApiResult<()> {
    let history = state.0.store.case_history(case.id)?;
    let confirmed = case
        .decision
        .as_deref()
        .is_some_and(|d| DecisionKind::of(d) == DecisionKind::Confirmed);
    if case.state != CaseState::Decided.as_str()
        || !confirmed
        || current_approval(&history).is_none()
    {
        return Err(safeguard_engine::Error::ApprovalRequired(case.id).into());
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleReq {
    /// The age X25519 recipient (`age1...`) of the person who uploads to the portal.
    recipient: String,
    /// Schedule 1: the authorised person.
    authorised_person: AuthorisedPerson,
    /// Who makes the declaration.
    declared_by: String,
    /// The platform's name, for each content item.
    platform: Option<String>,
}

/// Who makes a report: what the request gives beside the case's own records.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reporter {
    /// Schedule 1: the authorised person.
    pub authorised_person: AuthorisedPerson,
    /// Who makes the declaration.
    pub declared_by: String,
    /// The platform's name, for each content item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// The case as a Schedule 1 report with its media from the vault, declared at
/// `declared_at_ms`. Only an approved, confirmed case referred to the NCA. Built from the
/// store's records alone, so the same case, reporter and time give the same report.
pub(crate) async fn build_report(
    state: &AppState,
    id: i64,
    reporter: Reporter,
    declared_at_ms: i64,
) -> ApiResult<(Report, Vec<ContentFile>)> {
    let st = state.clone();
    let (case, subs, evidence) = blocking(move || {
        let (case, subs) = load(&st, id)?;
        require_approval(&st, &case)?;
        crate::referral::require(&st, id, crate::referral::Destination::Nca)?;
        let ev = st.0.store.case_evidence(id)?;
        Ok((case, subs, ev))
    })
    .await?;
    let vault = state.vault().await?;
    let mut files = Vec::new();
    let mut items = Vec::new();
    for s in &subs {
        let ctx: Value = serde_json::from_str(&s.context).unwrap_or(Value::Null);
        let result: Value = serde_json::from_str(&s.result).unwrap_or(Value::Null);
        let first = result["matches"]
            .as_array()
            .and_then(|m| m.first())
            .cloned();
        let detection = match &first {
            Some(m) => DetectionMethod::HashMatch {
                bank: m["bank"].as_str().unwrap_or("unknown").to_string(),
                source: m["source"].as_str().map(str::to_owned),
            },
            None => DetectionMethod::Other {
                description: "policy rule".into(),
            },
        };
        let mut item = ContentItem {
            file_name: None,
            reference: Some(s.platform_id.clone()),
            detection,
            platform: reporter.platform.clone(),
            // The platform's time only where it can be true, as in the NCMEC report: one that
            // cannot (milliseconds given for seconds, a time before 2000) would make this
            // case's report impossible to build, and the stored submission cannot be changed.
            uploaded_at_ms: crate::reports::platform_upload_time(s)
                .map(|t| t.0.saturating_mul(1000))
                .filter(|ms| (EARLIEST_MS..LATEST_MS).contains(ms)),
            upload_ip: ctx["ip"].as_str().and_then(|ip| ip.parse().ok()),
            upload_port: None,
            exif: None,
            url: ctx["url"].as_str().map(str::to_owned),
            hashes: Vec::new(),
            previously_reported: None,
        };
        for sig in ctx["signals"].as_array().into_iter().flatten() {
            if sig["signal_type"] == "pdq" {
                if let Some(v) = sig["value"].as_str() {
                    item.hashes.push(ContentHash {
                        kind: HashKind::Pdq,
                        value: v.to_string(),
                    });
                }
            }
        }
        if let Some(ev) = evidence
            .iter()
            .find(|e| e.submission_id == s.id && e.wrapped_key.is_some())
        {
            // Logged before the bytes are decrypted, as the NCMEC report's files are: a
            // failure to log refuses the read.
            let store = state.0.store.clone();
            let oid = ev.object_id.clone();
            blocking(move || {
                Ok(store.log_access(EXPORT_ACTOR, "export", &oid, safeguard_engine::now_ms())?)
            })
            .await?;
            let obj = crate::action::sealed_object(ev, ev.wrapped_key.clone().unwrap_or_default());
            let bytes = vault
                .get(&obj)
                .await
                .map_err(|e| crate::action::vault_read_error(&e, &ev.object_id))?;
            let name = format!(
                "{}.{}",
                ev.object_id,
                crate::reports::extension(&bytes, &ev.media_kind)
            );
            item.file_name = Some(name.clone());
            item.hashes.push(ContentHash {
                kind: HashKind::Md5,
                value: ev.md5.clone(),
            });
            item.hashes.push(ContentHash {
                kind: HashKind::Sha256,
                value: ev.sha256.clone(),
            });
            files.push(ContentFile { name, bytes });
        }
        items.push(item);
    }
    let a = rules(state).assess(&facts(&case, &subs));
    let report = Report {
        provider_reference: Some(format!("case-{id}")),
        authorised_person: reporter.authorised_person,
        priority: Some(a.level),
        content: items,
        information_available: Some(format!(
            "Matched against hash lists and confirmed by two people (case {id})."
        )),
        users: case
            .account
            .iter()
            .map(|acct| User {
                role: Some(UserRole::Uploader),
                accounts: vec![Account {
                    id: acct.clone(),
                    username: None,
                }],
                ..User::default()
            })
            .collect(),
        identity_documents: None,
        other_information: None,
        declaration: Declaration {
            all_reasonably_available_information_included: true,
            declared_by: reporter.declared_by,
            declared_at_ms,
        },
    };
    Ok((report, files))
}

/// The history action recording a bundle's export for the NCA's portal.
pub(crate) const BUNDLE_ACTION: &str = "nca_bundle";

/// A report the NCA crate finds incomplete, as the API's 400.
pub(crate) fn incomplete(e: safeguard_nca::Error) -> ApiError {
    match e {
        safeguard_nca::Error::Invalid { field, reason } => ApiError::bad_request(
            "invalid_request",
            format!("the report is not complete: {field}: {reason}"),
        ),
        other => ApiError::internal(other.to_string()),
    }
}

/// `POST /v1/cases/{id}/reports/nca/bundle`: the case as a Schedule 1 report with its media,
/// signed with the organisation's key and encrypted to `recipient` (application/octet-stream;
/// `Safeguard-Signing-Key` gives the public key). Only an approved, confirmed case. Recorded in
/// the audit log as a `vault_export`.
async fn bundle(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    Extension(actor): Extension<crate::auth::KeyId>,
    JsonBody(req): JsonBody<BundleReq>,
) -> ApiResult<Response> {
    let recipient: safeguard_nca::age::x25519::Recipient =
        req.recipient.trim().parse().map_err(|e: &str| {
            ApiError::bad_request(
                "invalid_request",
                format!("recipient must be an age X25519 public key (age1...): {e}"),
            )
        })?;
    let now = safeguard_engine::now_ms();
    let reporter = Reporter {
        authorised_person: req.authorised_person,
        declared_by: req.declared_by,
        platform: req.platform,
    };
    let (report, files) = build_report(&state, id, reporter, now).await?;
    let st = state.clone();
    let who = actor.0.clone();
    let (bytes, public) = blocking(move || {
        let key = signing_key(&st)?;
        let bytes = safeguard_nca::seal_bundle(&report, &files, &key, &recipient, now)
            .map_err(incomplete)?;
        // The bundle holds the media: it leaves only once its export is on the record.
        st.audit(
            &who,
            safeguard_engine::audit::Action::VaultExport,
            &format!("case:{id}"),
            "nca bundle",
        )?;
        // On the case too: a send through the API cut off earlier must not be resumed by a
        // restart once the report may be going through the portal instead.
        st.0.store
            .note_case(id, &who, BUNDLE_ACTION, "exported for the portal", now)?;
        Ok((bytes, hex::encode(key.verifying_key().to_bytes())))
    })
    .await?;
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"case-{id}.nca.age\""))
            .map_err(|e| ApiError::internal(e.to_string()))?,
    );
    h.insert(
        "safeguard-signing-key",
        HeaderValue::from_str(&public).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    Ok(resp)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceReq {
    reference: String,
}

/// `POST /v1/cases/{id}/reports/nca/reference`: records the NCA's reference for the case's
/// report (sent through the portal) and moves the case to `reported`. The reference is kept
/// on the case's history (never deleted: regulation 8 asks for five years); the evidence's
/// retention clock now runs from this report.
async fn reference(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    Extension(actor): Extension<crate::auth::KeyId>,
    JsonBody(req): JsonBody<ReferenceReq>,
) -> ApiResult<Json<Value>> {
    let r = NcaReference::new(req.reference)
        .map_err(|e| ApiError::bad_request("invalid_request", format!("reference: {e}")))?;
    let a = state.actioner()?;
    let st = state.clone();
    let c = blocking(move || {
        let (case, _) = load(&st, id)?;
        require_approval(&st, &case)?;
        let c = a.transition(
            id,
            CaseState::Reported,
            &actor.0,
            Some(format!("nca reference {}", r.as_str())),
            None,
        )?;
        st.audit_after(
            &actor.0,
            safeguard_engine::audit::Action::ReportFiled,
            &format!("case:{id}"),
            "nca reference recorded",
        );
        Ok(c)
    })
    .await?;
    state.notify_webhooks();
    Ok(Json(safeguard_engine::action::case_json(&c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirmed_decision_names_its_class() {
        assert_eq!(decided_class("confirmed: A1").as_deref(), Some("A1"));
        assert_eq!(
            decided_class("confirmed B2 two files").as_deref(),
            Some("B2")
        );
        assert_eq!(decided_class("confirmed"), None);
        assert_eq!(decided_class("confirmed: C9"), None);
    }
}
