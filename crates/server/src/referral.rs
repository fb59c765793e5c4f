//! Where a case's report goes: NCMEC, the UK NCA, or both. The NCA asks providers that
//! already report to NCMEC to go on doing so and not to send it the same referral again
//! (docs/reporting.md), so each case gets one choice, by the organisation's policy
//! (`[reporting] referral`), recorded on the case's history the first time a report is made
//! (a `referral` line by `policy`) or when an admin sets it for that case
//! (`POST /v1/cases/{id}/referral`, a line by the key, with the reason). The latest person's
//! line, else the policy's, is the choice; the NCMEC filing and the NCA bundle refuse a
//! destination it leaves out (409 `referral_excluded`). Recording the NCA's reference is not
//! refused: the report was sent, and the regulations require the reference kept.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use safeguard_store::action::CaseHistory;

use crate::action::case_not_found;
use crate::config::Referral;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, JsonBody};
use crate::state::{blocking, AppState};

/// The history action of a referral choice.
const ACTION: &str = "referral";

/// The actor of a choice made by the policy.
const POLICY_ACTOR: &str = "policy";

/// Longest reason an override keeps, bytes.
const MAX_REASON: usize = 500;

/// A destination of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// NCMEC's CyberTipline.
    Ncmec,
    /// The UK NCA.
    Nca,
}

impl Destination {
    fn name(self) -> &'static str {
        match self {
            Destination::Ncmec => "NCMEC",
            Destination::Nca => "the NCA",
        }
    }
}

/// The choice a note records: `ncmec: why`.
fn parse_note(note: Option<&str>) -> Option<(Referral, &str)> {
    let (to, why) = note?.split_once(": ")?;
    Some((Referral::parse(to)?, why))
}

/// The choice a case's history records, if any: its latest `referral` line set by a person,
/// else its latest by the policy. A person's choice wins over a policy line written after it,
/// which a report step racing the admin's request could do.
fn recorded(history: &[CaseHistory]) -> Option<(Referral, &CaseHistory)> {
    let lines = || {
        history
            .iter()
            .rev()
            .filter(|h| h.action == ACTION)
            .filter_map(|h| Some((parse_note(h.note.as_deref())?.0, h)))
    };
    lines()
        .find(|(_, h)| h.actor != POLICY_ACTOR)
        .or_else(|| lines().next())
}

/// The case's choice: the recorded one, else the policy's, which is then recorded (by
/// `policy`) so a later change of the policy does not send the same case somewhere else too.
/// Blocking.
fn choice(state: &AppState, case_id: i64) -> ApiResult<Referral> {
    let store = &state.0.store;
    let history = store.case_history(case_id)?;
    if let Some((r, _)) = recorded(&history) {
        return Ok(r);
    }
    let r = state.0.config.reporting.referral;
    store.note_case(
        case_id,
        POLICY_ACTOR,
        ACTION,
        &format!("{}: [reporting] referral", r.as_str()),
        safeguard_engine::now_ms(),
    )?;
    Ok(r)
}

/// Refuses (409 `referral_excluded`) a report of `case_id` to `to` that the case's choice
/// leaves out, recording the choice first if the case has none yet. Blocking.
pub(crate) fn require(state: &AppState, case_id: i64, to: Destination) -> ApiResult<()> {
    let r = choice(state, case_id)?;
    let allowed = matches!(
        (r, to),
        (Referral::Both, _)
            | (Referral::Ncmec, Destination::Ncmec)
            | (Referral::Nca, Destination::Nca)
    );
    if allowed {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "referral_excluded",
        format!(
            "case {case_id} is referred to {}, not {}: one referral per case (set another \
             with POST /v1/cases/{case_id}/referral)",
            match r {
                Referral::Ncmec => "NCMEC",
                Referral::Nca => "the NCA",
                Referral::Both => "both",
            },
            to.name()
        ),
    ))
}

/// Routes needing the `admin` scope.
pub fn admin_routes() -> Router<AppState> {
    Router::new().route("/v1/cases/{id}/referral", get(show).post(set))
}

/// `GET /v1/cases/{id}/referral`: `{to, source: "recorded"|"policy", by, at, reason}`; a case
/// with nothing recorded yet shows what the policy would choose, without recording it.
async fn show(State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> ApiResult<Json<Value>> {
    let st = state.clone();
    let history = blocking(move || {
        if st.0.store.case(id)?.is_none() {
            return Err(case_not_found(id));
        }
        Ok(st.0.store.case_history(id)?)
    })
    .await?;
    Ok(Json(match recorded(&history) {
        Some((r, h)) => json!({
            "case_id": id,
            "to": r.as_str(),
            "source": "recorded",
            "by": h.actor,
            "at": h.at,
            "reason": parse_note(h.note.as_deref()).map(|(_, why)| why),
        }),
        None => json!({
            "case_id": id,
            "to": state.0.config.reporting.referral.as_str(),
            "source": "policy",
        }),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetReq {
    /// `ncmec`, `nca` or `both`.
    to: String,
    /// Why this case goes elsewhere than the policy says.
    reason: String,
}

/// `POST /v1/cases/{id}/referral` `{to, reason}`: records this case's choice (a `referral`
/// history line by the key, with the reason), which the report routes follow from then on.
async fn set(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    Extension(key): Extension<crate::auth::KeyId>,
    JsonBody(req): JsonBody<SetReq>,
) -> ApiResult<Json<Value>> {
    let to = Referral::parse(&req.to).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_request",
            "to must be \"ncmec\", \"nca\" or \"both\"",
        )
    })?;
    let reason = req.reason.trim().to_string();
    if reason.is_empty() || reason.len() > MAX_REASON || reason.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("reason: 1 to {MAX_REASON} bytes of text, no control characters"),
        ));
    }
    let st = state.clone();
    let actor = key.0.clone();
    blocking(move || {
        match st.0.store.note_case(
            id,
            &actor,
            ACTION,
            &format!("{}: {reason}", to.as_str()),
            safeguard_engine::now_ms(),
        ) {
            Err(safeguard_store::Error::NotFound(_)) => return Err(case_not_found(id)),
            other => other?,
        }
        st.audit_after(
            &actor,
            safeguard_engine::audit::Action::ConfigChanged,
            &format!("case:{id}"),
            &format!("referral: {}", to.as_str()),
        );
        Ok(())
    })
    .await?;
    show(State(state), ApiPath(id)).await
}
