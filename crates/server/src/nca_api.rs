//! Sending a case's report through the NCA's HTTPS API (`[reporting.nca.api]`), the second
//! transport beside the portal bundle (`crate::nca`). The API's specification is not public:
//! the request shape is `safeguard_nca::transport`'s documented guess, and only that module
//! changes when the NCA publishes one.
//!
//! A send is a small durable state machine on the case's history (lines of action
//! `nca_api`, JSON notes), so that a crash or a lost answer never sends a second report:
//! 1. `sending`: written before the report leaves, with the `Idempotency-Key` of this case's
//!    report, when it was declared and who declared it. The report is built from the store's
//!    records alone, so these make it again byte for byte.
//! 2. `sent` with the NCA's reference, written as soon as it comes back; then the case moves
//!    to `reported`, `report.filed` goes out and the audit log gets `report_filed`.
//! 3. `failed` with a stable code, when the API refused the report or could not be reached
//!    (`report.failed`, `report_failed`).
//!
//! A send cut off after step 1 (the process killed, the answer lost, the API down) is resumed
//! by the next `POST`, or by the next start of a process that runs schedules ([`resume`]):
//! the same report under the same key, which an API that honours idempotency keys answers
//! with the reference it gave the first time. A reference already
//! recorded is never sent again; a case whose `sent` line was written but whose move to
//! `reported` was not finishes that move without sending.
//!
//! The bearer token is sealed with the master key in the store's `secrets` table
//! (`safeguard report nca-token`), read for each send and never printed.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use safeguard_engine::action::{new_event, EVENT_REPORT_FAILED, EVENT_REPORT_FILED};
use safeguard_engine::audit::Action;
use safeguard_engine::case::CaseState;
use safeguard_engine::now_ms;
use safeguard_nca::transport::Trust;
use safeguard_nca::{ApiTransport, BearerToken, NcaReference, RetryPolicy};
use safeguard_store::action::CaseHistory;
use safeguard_store::Store;

use crate::action::case_not_found;
use crate::config::NcaApiConfig;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, JsonBody};
use crate::nca::Reporter;
use crate::reports::not_configured;
use crate::state::{blocking, AppState};

/// Name of the sealed bearer token in the store's `secrets` table.
pub const TOKEN_SECRET: &str = "nca-api-token";
/// Associated data the token is sealed under, so a sealed value of another kind cannot be
/// passed off as it.
pub const TOKEN_CONTEXT: &[u8] = b"nca-api-token";
/// The history action of the send's lines.
const ACTION: &str = "nca_api";
/// Who the lines written by the send itself are by.
const SYSTEM_ACTOR: &str = "system";
/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// The `destination` of the send's webhook events.
const DESTINATION: &str = "nca";

// ------------------------------------------------------------------ the token

/// Seals the API's bearer token with the master key and stores it (what
/// `safeguard report nca-token` does). The token is never printed or logged.
pub fn store_nca_token(
    store: &dyn Store,
    master: &safeguard_seal::MasterKey,
    token: &str,
) -> Result<(), String> {
    BearerToken::new(token).map_err(|e| e.to_string())?;
    let sealed = master
        .seal(token.as_bytes(), TOKEN_CONTEXT)
        .map_err(|e| format!("sealing the token: {e}"))?;
    store
        .put_secret(TOKEN_SECRET, &sealed, now_ms())
        .map_err(|e| format!("storing the token: {e}"))
}

/// The stored token, opened; `None` when none is stored. Blocking.
fn load_token(state: &AppState) -> Result<Option<BearerToken>, String> {
    let Some(plain) = crate::reports::open_secret(state, TOKEN_SECRET, TOKEN_CONTEXT, "NCA token")?
    else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&plain).map_err(|_| "the stored NCA token is unreadable")?;
    BearerToken::new(text)
        .map(Some)
        .map_err(|_| "the stored NCA token is unreadable".to_string())
}

/// The configured transport with the stored token. Blocking (reads the CA file).
fn transport(cfg: &NcaApiConfig, token: BearerToken) -> Result<ApiTransport, String> {
    let endpoint = cfg
        .endpoint
        .as_deref()
        .ok_or("reporting.nca.api.endpoint is not set")?;
    let endpoint = url::Url::parse(endpoint).map_err(|e| format!("the endpoint: {e}"))?;
    let trust = match &cfg.ca_file {
        Some(path) => Trust::OnlyPem(
            std::fs::read(path)
                .map_err(|e| format!("reporting.nca.api.ca_file {}: {e}", path.display()))?,
        ),
        None => Trust::WebPki,
    };
    ApiTransport::new(
        endpoint,
        token,
        Duration::from_secs(cfg.timeout_secs),
        retry_policy(cfg),
        trust,
    )
    .map_err(|e| e.to_string())
}

/// The transport's retries under `cfg`.
fn retry_policy(cfg: &NcaApiConfig) -> RetryPolicy {
    RetryPolicy {
        max_attempts: cfg.max_attempts.max(1),
        initial_backoff: Duration::from_millis(cfg.initial_backoff_ms),
        max_backoff: MAX_BACKOFF,
    }
}

// ------------------------------------------------------------------ the history lines

/// One `nca_api` line of a case's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
enum Line {
    /// The report is about to leave.
    Sending {
        key: String,
        declared_at_ms: i64,
        reporter: Reporter,
    },
    /// The NCA's answer: its reference.
    Sent { key: String, reference: String },
    /// The send stopped: a stable code and the reason.
    Failed {
        key: String,
        code: String,
        message: String,
    },
}

fn lines(history: &[CaseHistory]) -> impl Iterator<Item = Line> + '_ {
    history
        .iter()
        .filter(|h| h.action == ACTION)
        .filter_map(|h| serde_json::from_str(h.note.as_deref()?).ok())
}

/// Where a case's send stands, from its history.
#[derive(Debug, Clone, PartialEq)]
enum Progress {
    /// Never sent.
    None,
    /// Started and not answered with a reference: the last `sending` line, and the last
    /// failure after it, if any.
    Pending {
        key: String,
        declared_at_ms: i64,
        reporter: Reporter,
        failure: Option<(String, String)>,
    },
    /// The NCA gave this reference.
    Sent { key: String, reference: String },
}

fn progress(history: &[CaseHistory]) -> Progress {
    let mut p = Progress::None;
    for line in lines(history) {
        p = match (line, p) {
            // A reference is final: nothing written after it changes it.
            (_, sent @ Progress::Sent { .. }) => sent,
            (Line::Sent { key, reference }, _) => Progress::Sent { key, reference },
            (
                Line::Sending {
                    key,
                    declared_at_ms,
                    reporter,
                },
                _,
            ) => Progress::Pending {
                key,
                declared_at_ms,
                reporter,
                failure: None,
            },
            (
                Line::Failed { code, message, .. },
                Progress::Pending {
                    key,
                    declared_at_ms,
                    reporter,
                    ..
                },
            ) => Progress::Pending {
                key,
                declared_at_ms,
                reporter,
                failure: Some((code, message)),
            },
            (Line::Failed { .. }, other) => other,
        };
    }
    p
}

fn note(state: &AppState, id: i64, line: &Line) -> ApiResult<()> {
    let text = serde_json::to_string(line).map_err(|e| ApiError::internal(e.to_string()))?;
    state
        .0
        .store
        .note_case(id, SYSTEM_ACTOR, ACTION, &text, now_ms())?;
    Ok(())
}

/// A fresh idempotency key for a case's report: the case and 128 random bits.
fn new_key(id: i64) -> String {
    use rand::RngCore;
    let mut r = [0u8; 16];
    rand::rng().fill_bytes(&mut r);
    format!("case-{id}-{}", hex::encode(r))
}

// ------------------------------------------------------------------ the routes

/// Routes needing the `admin` scope.
pub fn admin_routes() -> Router<AppState> {
    Router::new().route("/v1/cases/{id}/reports/nca/send", get(show).post(send))
}

fn progress_json(id: i64, configured: bool, p: &Progress) -> Value {
    match p {
        Progress::None => json!({"case_id": id, "configured": configured, "state": "none"}),
        Progress::Pending {
            key,
            declared_at_ms,
            reporter,
            failure,
        } => json!({
            "case_id": id,
            "configured": configured,
            "state": if failure.is_some() { "failed" } else { "pending" },
            "idempotency_key": key,
            "declared_at_ms": declared_at_ms,
            "declared_by": reporter.declared_by,
            "error": failure.as_ref().map(|(code, message)| json!({"code": code, "message": message})),
        }),
        Progress::Sent { key, reference } => json!({
            "case_id": id,
            "configured": configured,
            "state": "sent",
            "idempotency_key": key,
            "reference": reference,
        }),
    }
}

/// `GET /v1/cases/{id}/reports/nca/send`: where the case's send through the API stands
/// (`none`, `pending`, `failed`, `sent`), with the key, the reference or the last error.
async fn show(State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> ApiResult<Json<Value>> {
    let st = state.clone();
    let history = blocking(move || {
        if st.0.store.case(id)?.is_none() {
            return Err(case_not_found(id));
        }
        Ok(st.0.store.case_history(id)?)
    })
    .await?;
    let configured = state.0.config.reporting.nca.api.enabled;
    Ok(Json(progress_json(id, configured, &progress(&history))))
}

/// The body of `POST /v1/cases/{id}/reports/nca/send`: who reports, as for the bundle. All
/// three are needed for a first send; a send being resumed reuses what was recorded, so the
/// body may then be `{}` (fields given must match the record).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendReq {
    authorised_person: Option<safeguard_nca::report::AuthorisedPerson>,
    declared_by: Option<String>,
    platform: Option<String>,
}

impl SendReq {
    fn is_empty(&self) -> bool {
        self.authorised_person.is_none() && self.declared_by.is_none() && self.platform.is_none()
    }

    fn reporter(self) -> ApiResult<Reporter> {
        match (self.authorised_person, self.declared_by) {
            (Some(authorised_person), Some(declared_by)) => Ok(Reporter {
                authorised_person,
                declared_by,
                platform: self.platform,
            }),
            _ => Err(ApiError::bad_request(
                "invalid_request",
                "authorised_person and declared_by are required",
            )),
        }
    }
}

/// `POST /v1/cases/{id}/reports/nca/send`: sends the case's report (as the bundle holds it:
/// Schedule 1 information, media and hashes) through the NCA's API, records the reference and
/// moves the case to `reported`. Only an approved, confirmed case referred to the NCA, with
/// `[reporting.nca.api]` enabled and a token stored. A send cut off earlier is resumed (see
/// the module documentation).
async fn send(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    Extension(actor): Extension<crate::auth::KeyId>,
    JsonBody(req): JsonBody<SendReq>,
) -> ApiResult<Json<Value>> {
    if !state.0.config.reporting.nca.api.enabled {
        return Err(not_configured(
            "sending through the NCA's API is off ([reporting.nca.api] enabled = false); \
             export a bundle for the portal instead",
        ));
    }
    Ok(Json(send_case(&state, id, &actor.0, Some(req)).await?))
}

/// Sends case `id`'s report, or goes on with the send its history shows was started. `req`
/// is the request's body; `None` is a resume at start, which only goes on with a send already
/// started (under its recorded reporter) and never starts one.
async fn send_case(
    state: &AppState,
    id: i64,
    actor: &str,
    req: Option<SendReq>,
) -> ApiResult<Value> {
    let Some(_claim) = state.0.nca_sending.claim(id) else {
        return Err(send_in_progress(format!(
            "case {id} is being sent to the NCA now"
        )));
    };
    let st = state.clone();
    blocking(move || match st.0.store.case(id)? {
        Some(_) => Ok(()),
        None => Err(case_not_found(id)),
    })
    .await?;
    // Across the processes sharing the store: the send's lease, held until it ends. One cut
    // off by a killed process keeps it until it runs out, after the longest a send can take.
    if !lease_send(state, id, false).await? {
        return Err(send_in_progress(format!(
            "case {id} is being sent to the NCA by another process"
        )));
    }
    let lease = SendLease(Some((
        state.0.store.clone(),
        lease_name(id),
        state.0.reports.owner().to_string(),
    )));
    let out = send_leased(state, id, actor, req).await;
    lease.give_up().await;
    out
}

/// The code of a send refused because it is running already, here or in another process.
const SEND_IN_PROGRESS: &str = "send_in_progress";

/// 409 [`SEND_IN_PROGRESS`]: nothing was sent or recorded.
fn send_in_progress(message: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, SEND_IN_PROGRESS, message)
}

/// The name of case `id`'s send lease in the store.
fn lease_name(id: i64) -> String {
    format!("nca-send:{id}")
}

/// How long past the longest a send can take its lease lasts: building the report from the
/// vault before, and the records after.
const LEASE_MARGIN: Duration = Duration::from_secs(120);

/// Takes (`renew` false) or renews this process's lease of case `id`'s send until the
/// longest the send can take from now, plus [`LEASE_MARGIN`]. Whether it was granted. A
/// renewal is granted only while this process still holds the lease: not once another
/// process took it over, even if that one has since given it up.
async fn lease_send(state: &AppState, id: i64, renew: bool) -> ApiResult<bool> {
    let lasts = longest_send(&state.0.config.reporting.nca.api) + LEASE_MARGIN;
    let (store, owner) = (state.0.store.clone(), state.0.reports.owner().to_string());
    blocking(move || {
        let now = now_ms();
        let until = now.saturating_add(i64::try_from(lasts.as_millis()).unwrap_or(i64::MAX));
        let name = lease_name(id);
        Ok(if renew {
            store.extend_lease(&name, &owner, until)?
        } else {
            store.take_lease(&name, &owner, until, now)?
        })
    })
    .await
}

/// A send's lease held by this process: given up when the send ends, or, when the send's
/// future is dropped before that (a request cut off by the server's request timeout or a
/// client gone), in the background as it is dropped.
struct SendLease(Option<(std::sync::Arc<dyn Store>, String, String)>);

impl SendLease {
    async fn give_up(mut self) {
        if let Some((store, name, owner)) = self.0.take() {
            let what = name.clone();
            if let Err(e) = blocking(move || Ok(store.give_up_lease(&name, &owner)?)).await {
                tracing::warn!(lease = %what, error = %e.message, "cannot give up the NCA send's lease");
            }
        }
    }
}

impl Drop for SendLease {
    fn drop(&mut self) {
        let Some((store, name, owner)) = self.0.take() else {
            return;
        };
        // Outside a runtime (never, from a handler) it simply runs out.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn_blocking(move || {
                if let Err(e) = store.give_up_lease(&name, &owner) {
                    tracing::warn!(lease = %name, error = %e, "cannot give up the NCA send's lease");
                }
            });
        }
    }
}

/// [`send_case`] under the send's lease.
async fn send_leased(
    state: &AppState,
    id: i64,
    actor: &str,
    req: Option<SendReq>,
) -> ApiResult<Value> {
    let cfg = state.0.config.reporting.nca.api.clone();
    let st = state.clone();
    // `send_case` found the case before taking the lease.
    let (history, token) = blocking(move || {
        let token = load_token(&st).map_err(|e| {
            tracing::error!(error = %e, "cannot read the NCA API token");
            not_configured("the stored NCA API token cannot be read; see the server log")
        })?;
        Ok((st.0.store.case_history(id)?, token))
    })
    .await?;
    let token = token.ok_or_else(|| {
        not_configured("no NCA API token is stored: run `safeguard report nca-token`")
    })?;

    let p = progress(&history);
    if req.is_none() && !wanted(&p, &history) {
        return Ok(json!({"case_id": id, "skipped": true, "sent": false}));
    }
    let (key, declared_at_ms, reporter, resumed) = match p {
        Progress::Sent { reference, .. } => {
            // Sent before; finish the move to `reported` if a crash cut it off.
            let case = finish(state, id, &reference).await?;
            return Ok(json!({
                "case_id": id,
                "reference": reference,
                "state": case.state,
                "resumed": true,
                "sent": false,
            }));
        }
        Progress::Pending {
            key,
            declared_at_ms,
            reporter,
            ..
        } => {
            if let Some(req) = req.filter(|r| !r.is_empty()) {
                if req.reporter()? != reporter {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "send_pending",
                        format!(
                            "a send of case {id} was cut off and is resumed with the report first \
                         built (declared by {}); send {{}} to resume it",
                            reporter.declared_by
                        ),
                    ));
                }
            }
            (key, declared_at_ms, reporter, true)
        }
        Progress::None => match req {
            Some(req) => (new_key(id), now_ms(), req.reporter()?, false),
            // `resume` picks only cases whose history shows a send.
            None => {
                return Err(ApiError::internal(format!(
                    "case {id} has no send to resume"
                )))
            }
        },
    };

    let (report, files) =
        crate::nca::build_report(state, id, reporter.clone(), declared_at_ms).await?;
    ApiTransport::check(&report, &files).map_err(crate::nca::incomplete)?;
    let cfg2 = cfg.clone();
    let t = blocking(move || {
        transport(&cfg2, token).map_err(|e| {
            tracing::error!(error = %e, "the NCA API transport cannot be set up");
            not_configured(format!("the NCA API transport cannot be set up: {e}"))
        })
    })
    .await?;

    // Building the report read the vault; the send's whole time is still ahead. Refused if
    // another process took the lease over meanwhile: it may have sent the case already.
    if !lease_send(state, id, true).await? {
        return Err(send_in_progress(format!(
            "case {id}'s send lease ran out and another process took it over"
        )));
    }

    // On the record before anything leaves: the export of the media, and the send itself.
    let st = state.clone();
    let who = actor.to_string();
    let line = Line::Sending {
        key: key.clone(),
        declared_at_ms,
        reporter,
    };
    blocking(move || {
        st.audit(
            &who,
            Action::VaultExport,
            &format!("case:{id}"),
            "nca api send",
        )?;
        if !resumed {
            note(&st, id, &line)?;
        }
        Ok(())
    })
    .await?;

    tracing::info!(case = id, endpoint = %t.endpoint(), resumed, "sending the report to the NCA's API");
    match t.submit_keyed(&report, &files, &key).await {
        Ok(reference) => {
            let st = state.clone();
            let line = Line::Sent {
                key: key.clone(),
                reference: reference.as_str().to_string(),
            };
            blocking(move || note(&st, id, &line)).await?;
            let case = finish(state, id, reference.as_str()).await?;
            Ok(json!({
                "case_id": id,
                "reference": reference.as_str(),
                "state": case.state,
                "resumed": resumed,
                "sent": true,
            }))
        }
        Err(e) => {
            let err = failure(&e);
            tracing::warn!(case = id, code = err.code, error = %err.message, "sending to the NCA's API failed");
            let st = state.clone();
            let line = Line::Failed {
                key,
                code: err.code.to_string(),
                message: err.message.clone(),
            };
            let code = err.code;
            let recorded = blocking(move || {
                note(&st, id, &line)?;
                let data = json!({"case_id": id, "destination": DESTINATION, "code": code});
                st.0.store
                    .append_events(&[new_event(EVENT_REPORT_FAILED, data)], now_ms())?;
                st.notify_webhooks();
                st.audit_after(
                    SYSTEM_ACTOR,
                    Action::ReportFailed,
                    &format!("case:{id}"),
                    code,
                );
                Ok(())
            })
            .await;
            if let Err(e) = recorded {
                tracing::error!(case = id, error = %e.message, "recording a failed NCA send");
            }
            Err(err)
        }
    }
}

/// Failures after which the NCA may hold the report, so a resume under the same key is what
/// settles it; the others (a refused report or token) wait for a person.
const RESUMED_FAILURES: [&str; 2] = ["nca_unavailable", "nca_bad_response"];

/// Cases listed per page while looking for sends to resume.
const RESUME_PAGE: usize = 500;

/// Added to a send's longest duration before a start takes its last line for a send that
/// ended: the time between writing `sending` and the request leaving, and clock differences
/// between the processes that wrote the history.
const IN_FLIGHT_MARGIN: Duration = Duration::from_secs(5);

/// The longest a send can take under `cfg`: every attempt timing out, with the pauses
/// between them.
fn longest_send(cfg: &NcaApiConfig) -> Duration {
    let retry = retry_policy(cfg);
    let pauses: Duration = (1..retry.max_attempts).map(|a| retry.backoff(a)).sum();
    Duration::from_secs(cfg.timeout_secs) * retry.max_attempts + pauses
}

/// Whether the case's report was exported for the portal after its last send through the
/// API began: then the portal may be where it goes, and a restart must not send it too.
fn bundled_since_send(history: &[CaseHistory]) -> bool {
    let last_send = history.iter().rposition(|h| {
        h.action == ACTION
            && h.note
                .as_deref()
                .and_then(|n| serde_json::from_str::<Line>(n).ok())
                .is_some_and(|l| matches!(l, Line::Sending { .. }))
    });
    let last_bundle = history
        .iter()
        .rposition(|h| h.action == crate::nca::BUNDLE_ACTION);
    matches!((last_send, last_bundle), (Some(s), Some(b)) if b > s)
}

/// What a start does with a case's send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AtStart {
    /// Nothing: never sent, refused, or left for the portal.
    Leave,
    /// Go on with it now.
    Resume,
    /// Its last line is recent enough that another process may still be sending it: look
    /// again once this much longer has passed.
    Wait(Duration),
}

/// Whether a start goes on with the send at `p` at all (now or later): resumable, and not
/// exported for the portal since it began.
fn wanted(p: &Progress, history: &[CaseHistory]) -> bool {
    resumable(p) && !bundled_since_send(history)
}

fn at_start(history: &[CaseHistory], now_ms: i64, longest: Duration) -> AtStart {
    let p = progress(history);
    if !wanted(&p, history) {
        return AtStart::Leave;
    }
    if let Progress::Pending { .. } = p {
        let last = history
            .iter()
            .filter(|h| h.action == ACTION)
            .map(|h| h.at)
            .max()
            .unwrap_or(0);
        let age = Duration::from_millis(now_ms.saturating_sub(last).max(0) as u64);
        let quiet = longest + IN_FLIGHT_MARGIN;
        if age < quiet {
            return AtStart::Wait(quiet - age);
        }
    }
    AtStart::Resume
}

/// Whether a start should go on with a send that stands at `p`: one cut off before any
/// outcome was recorded (the process killed mid-send), one whose failure leaves the report
/// possibly with the NCA, or one whose reference is recorded without the case's move to
/// `reported`.
fn resumable(p: &Progress) -> bool {
    match p {
        Progress::None => false,
        Progress::Sent { .. } => true,
        Progress::Pending { failure: None, .. } => true,
        Progress::Pending {
            failure: Some((code, _)),
            ..
        } => RESUMED_FAILURES.contains(&code.as_str()),
    }
}

/// Goes on, at a server start (a curator or `all` process, as for NCMEC filings), with every
/// send through the NCA's API that a crash or an outage left unfinished, so a report the NCA
/// may already hold gets its reference on the record and its case `reported` without waiting
/// for someone to send it again. Cases are `decided` while a send is unfinished; only those
/// whose history has a send line are read (the store's `with_history` filter), and each is
/// resumed under its recorded key and reporter, one at a time. Left for a person: sends the API
/// refused (`GET /v1/cases/{id}/reports/nca/send` shows them as `failed`) and sends whose
/// report was exported for the portal since. A send whose last line is younger than the
/// longest a send can take may still be running in another process (a matcher's `POST`): it
/// is looked at again once that time has passed. `AppState::nca_resume_done` turns true when
/// the first pass is over.
pub fn resume(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        let enabled = state.0.config.reporting.nca.api.enabled;
        let longest = longest_send(&state.0.config.reporting.nca.api);
        let mut later = Vec::new();
        let mut left_off = 0usize;
        let mut before = None;
        loop {
            let st = state.clone();
            let page = blocking(move || {
                let cases = st.0.store.cases(&safeguard_store::action::CaseFilter {
                    state: Some(CaseState::Decided.as_str().to_string()),
                    with_history: Some(ACTION.to_string()),
                    before,
                    limit: RESUME_PAGE,
                    ..Default::default()
                })?;
                let now = now_ms();
                let mut due = Vec::new();
                for c in &cases {
                    match at_start(&st.0.store.case_history(c.id)?, now, longest) {
                        AtStart::Leave => {}
                        other => due.push((c.id, other)),
                    }
                }
                Ok((cases.last().map(|c| c.id), cases.len(), due))
            })
            .await;
            let (last, listed, due) = match page {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e.message, "cannot list unfinished NCA sends");
                    break;
                }
            };
            for (id, what) in due {
                match what {
                    _ if !enabled => left_off += 1,
                    AtStart::Wait(d) => later.push((id, d)),
                    _ => {
                        if resume_one(&state, id).await == Resumed::HeldElsewhere {
                            later.push((id, longest + LEASE_MARGIN));
                        }
                    }
                }
            }
            if listed < RESUME_PAGE {
                break;
            }
            before = last;
        }
        if left_off > 0 {
            tracing::warn!(
                cases = left_off,
                "unfinished sends to the NCA's API, but reporting.nca.api is not enabled; not resumed"
            );
        }
        state.0.nca_resume_done.send_replace(true);
        for (id, wait) in later {
            let state = state.clone();
            tokio::spawn(async move {
                tracing::info!(
                    case = id,
                    wait_s = wait.as_secs(),
                    "an NCA send may still be running elsewhere; looking again later"
                );
                tokio::time::sleep(wait).await;
                // A lease held by another process is given up when its send ends, or runs out
                // after this long if that process died: looked at a few times, then left to
                // that process, or to the next start or `POST`.
                for _ in 0..LOOKS_WHILE_HELD {
                    if resume_one(&state, id).await != Resumed::HeldElsewhere {
                        break;
                    }
                    tokio::time::sleep(longest + LEASE_MARGIN).await;
                }
            });
        }
    });
}

/// How many times a start looks again at a send whose lease another process holds.
const LOOKS_WHILE_HELD: usize = 3;

/// What [`resume_one`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resumed {
    /// Resumed, finished already, or failed (the failure is logged, and on the case's
    /// history when the send itself failed).
    Done,
    /// Another process holds the send's lease: it is sending the case now.
    HeldElsewhere,
}

/// Resumes one case's send if its history, read again now, still calls for it.
async fn resume_one(state: &AppState, id: i64) -> Resumed {
    tracing::info!(case = id, "resuming an unfinished send to the NCA's API");
    match send_case(state, id, SYSTEM_ACTOR, None).await {
        Ok(v) if v["skipped"] == true => {
            tracing::info!(case = id, "the NCA send no longer needs resuming")
        }
        Ok(v) => tracing::info!(case = id, reference = %v["reference"], "NCA send resumed"),
        Err(e) if e.code == SEND_IN_PROGRESS => {
            tracing::info!(case = id, error = %e.message, "the NCA send is running elsewhere; looking again later");
            return Resumed::HeldElsewhere;
        }
        // A failure of the send itself is on the case's history, as a `POST`'s is; one before
        // anything left (approval withdrawn, no token) is only here.
        Err(e) => {
            tracing::warn!(case = id, code = e.code, error = %e.message, "resuming an NCA send failed")
        }
    }
    Resumed::Done
}

/// After the reference is on the record: the case moves to `reported` (the evidence's
/// retention clock runs from here), `report.filed` goes out, the audit log gets
/// `report_filed`. Nothing is done twice: a case already reported is left as it is.
async fn finish(
    state: &AppState,
    id: i64,
    reference: &str,
) -> ApiResult<safeguard_store::action::Case> {
    let a = state.actioner()?;
    let st = state.clone();
    let reference = NcaReference::new(reference.to_string())
        .map_err(|e| ApiError::internal(format!("recorded reference: {e}")))?;
    let case = blocking(move || {
        let store = st.0.store.clone();
        let case = store
            .case(id)?
            .ok_or(safeguard_engine::Error::CaseNotFound(id))?;
        if case.state == CaseState::Reported.as_str() {
            return Ok(case);
        }
        let data = json!({
            "case_id": id,
            "destination": DESTINATION,
            "reference": reference.as_str(),
        });
        let case = a.transition_with_events(
            id,
            CaseState::Reported,
            SYSTEM_ACTOR,
            Some(format!("nca reference {} (api)", reference.as_str())),
            None,
            vec![new_event(EVENT_REPORT_FILED, data)],
        )?;
        st.notify_webhooks();
        st.audit_after(
            SYSTEM_ACTOR,
            Action::ReportFiled,
            &format!("case:{id}"),
            &format!("nca reference {} (api)", reference.as_str()),
        );
        Ok(case)
    })
    .await?;
    state.notify_webhooks();
    Ok(case)
}

/// The API's answer for a failed send: a stable code per kind of failure. The NCA's own
/// message is passed on (it says what to fix); the transport's detail is too, since it names
/// no secret (the token never appears in it).
fn failure(e: &safeguard_nca::Error) -> ApiError {
    use safeguard_nca::Error as E;
    match e {
        E::Auth { status, message } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "nca_auth_failed",
            format!("the NCA's API refused the token (HTTP {status}): {message}"),
        ),
        E::Rejected { status, message } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "nca_rejected",
            format!("the NCA's API refused the report (HTTP {status}): {message}"),
        ),
        E::Transport { attempts, .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "nca_unavailable",
            format!(
                "the NCA's API could not be reached or kept failing ({attempts} attempt(s)); \
                 send again to resume, or export a bundle for the portal"
            ),
        ),
        E::BadResponse(m) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "nca_bad_response",
            format!(
                "the NCA's API answered without a usable reference ({m}); it may have the \
                 report: sending again resumes under the same idempotency key"
            ),
        ),
        other => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "nca_send_failed",
            other.to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(note: &Line) -> CaseHistory {
        CaseHistory {
            at: 0,
            actor: SYSTEM_ACTOR.into(),
            action: ACTION.into(),
            from_state: None,
            to_state: None,
            note: Some(serde_json::to_string(note).unwrap()),
            decision: None,
        }
    }

    fn reporter() -> Reporter {
        Reporter {
            authorised_person: safeguard_nca::report::AuthorisedPerson {
                name: "A".into(),
                email: Some("a@example.com".into()),
                telephone: None,
            },
            declared_by: "A".into(),
            platform: None,
        }
    }

    #[test]
    fn progress_follows_the_lines() {
        assert_eq!(progress(&[]), Progress::None);
        let sending = Line::Sending {
            key: "k1".into(),
            declared_at_ms: 5,
            reporter: reporter(),
        };
        let failed = Line::Failed {
            key: "k1".into(),
            code: "nca_unavailable".into(),
            message: "down".into(),
        };
        let sent = Line::Sent {
            key: "k1".into(),
            reference: "R1".into(),
        };
        let p = progress(&[h(&sending)]);
        assert!(matches!(&p, Progress::Pending { key, failure: None, .. } if key == "k1"));
        let p = progress(&[h(&sending), h(&failed)]);
        assert!(
            matches!(&p, Progress::Pending { failure: Some((c, _)), .. } if c == "nca_unavailable")
        );
        // A failure then a resumed send that was answered.
        let p = progress(&[h(&sending), h(&failed), h(&sent)]);
        assert_eq!(
            p,
            Progress::Sent {
                key: "k1".into(),
                reference: "R1".into()
            }
        );
        // Nothing after a reference changes it; other history lines are ignored.
        let mut other = h(&sending);
        other.action = "referral".into();
        let p = progress(&[h(&sending), h(&sent), h(&failed), other]);
        assert!(matches!(p, Progress::Sent { .. }));
    }

    #[test]
    fn a_start_resumes_sends_with_an_unknown_outcome_only() {
        let pending = |failure: Option<&str>| Progress::Pending {
            key: "k".into(),
            declared_at_ms: 1,
            reporter: reporter(),
            failure: failure.map(|c| (c.to_string(), "m".to_string())),
        };
        assert!(!resumable(&Progress::None));
        assert!(resumable(&Progress::Sent {
            key: "k".into(),
            reference: "R".into()
        }));
        assert!(resumable(&pending(None)));
        assert!(resumable(&pending(Some("nca_unavailable"))));
        assert!(resumable(&pending(Some("nca_bad_response"))));
        for code in ["nca_rejected", "nca_auth_failed", "nca_send_failed"] {
            assert!(!resumable(&pending(Some(code))), "{code}");
        }
    }

    #[test]
    fn a_start_waits_for_a_recent_send_and_leaves_one_gone_to_the_portal() {
        let line = |at: i64, action: &str, l: Option<&Line>| CaseHistory {
            at,
            action: action.into(),
            note: l.map(|l| serde_json::to_string(l).unwrap()),
            ..h(&Line::Sent {
                key: String::new(),
                reference: String::new(),
            })
        };
        let sending = Line::Sending {
            key: "k".into(),
            declared_at_ms: 1,
            reporter: reporter(),
        };
        let failed = |code: &str| Line::Failed {
            key: "k".into(),
            code: code.into(),
            message: "m".into(),
        };
        let longest = Duration::from_secs(20);
        let cut = vec![line(1_000, ACTION, Some(&sending))];
        // Younger than a whole send plus the margin: another process may be sending it.
        assert_eq!(
            at_start(&cut, 11_000, longest),
            AtStart::Wait(Duration::from_secs(15))
        );
        assert_eq!(at_start(&cut, 26_000, longest), AtStart::Resume);
        // The age counts from the last line of the send.
        let unreachable = vec![
            line(1_000, ACTION, Some(&sending)),
            line(30_000, ACTION, Some(&failed("nca_unavailable"))),
        ];
        assert_eq!(
            at_start(&unreachable, 40_000, longest),
            AtStart::Wait(Duration::from_secs(15))
        );
        assert_eq!(at_start(&unreachable, 60_000, longest), AtStart::Resume);
        // Exported for the portal after the send began: left, however old.
        let mut portal = unreachable.clone();
        portal.push(line(31_000, crate::nca::BUNDLE_ACTION, None));
        assert_eq!(at_start(&portal, 1_000_000, longest), AtStart::Leave);
        // A bundle exported before the send began does not hold it back.
        let mut earlier = vec![line(500, crate::nca::BUNDLE_ACTION, None)];
        earlier.extend(unreachable.clone());
        assert_eq!(at_start(&earlier, 1_000_000, longest), AtStart::Resume);
        // Refused sends wait for a person; nothing sent, nothing to do.
        let refused = vec![
            line(1_000, ACTION, Some(&sending)),
            line(2_000, ACTION, Some(&failed("nca_rejected"))),
        ];
        assert_eq!(at_start(&refused, 1_000_000, longest), AtStart::Leave);
        assert_eq!(at_start(&[], 1_000_000, longest), AtStart::Leave);
    }

    #[test]
    fn the_longest_send_counts_every_attempt_and_pause() {
        let cfg = NcaApiConfig {
            timeout_secs: 10,
            max_attempts: 5,
            initial_backoff_ms: 3_000,
            ..NcaApiConfig::default()
        };
        // Pauses 3, 6, 8 (capped), 8 s.
        assert_eq!(longest_send(&cfg), Duration::from_secs(50 + 25));
        let one = NcaApiConfig {
            max_attempts: 1,
            ..cfg
        };
        assert_eq!(longest_send(&one), Duration::from_secs(10));
    }

    #[test]
    fn keys_are_fresh_and_accepted_by_the_transport() {
        let (a, b) = (new_key(7), new_key(7));
        assert_ne!(a, b);
        assert!(a.starts_with("case-7-") && a.len() == "case-7-".len() + 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }
}
