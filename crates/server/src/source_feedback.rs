//! Feedback for the sources of hashes. When a reviewer decides that a match was not CSAM, the
//! hash an exchange supplied was wrong for this platform: each entry of that exchange that
//! listed the hash gets a `false_positive` row (`safeguard_store::console::SourceFeedback`),
//! recorded with the decision. An exchange configured with `false_positive_feedback` is sent
//! its rows by a background task (NCMEC: a negative vote with that reason; StopNCII: that
//! feedback value); the others keep them listed for the curator
//! (`GET /v1/exchanges/{name}/feedback`), who can send them through the feedback route.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use safeguard_exchange::ncmec::{FeedbackType, Vote};
use safeguard_exchange::stopncii::FeedbackValue;
use safeguard_exchange::{Client, ExchangeConfig};
use safeguard_store::console::{FeedbackFilter, NewSourceFeedback, SourceFeedback};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::{blocking, AppState};

/// Attempts before a row is given up (`failed`), spaced by [`backoff_ms`]; an error that no
/// retry can mend (an entry id or fingerprint type the exchange cannot take, a reason it does
/// not list) gives up at once.
pub const MAX_ATTEMPTS: u32 = 10;

/// How often pending feedback is sent.
const SEND_INTERVAL: Duration = Duration::from_secs(60);

/// Rows sent per exchange per round; the next round goes on.
const SEND_BATCH: usize = 100;

/// How long a row whose case is open or in review again waits before it is looked at again.
const WAIT_MS: i64 = 10 * 60_000;

/// The verdict of a "not CSAM" decision.
pub const FALSE_POSITIVE: &str = "false_positive";

/// The StopNCII tag sent with a false positive.
const STOPNCII_TAG: &str = "false_positive";

/// One entry of a hash list that holds a matched hash: where it came from and its id there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The provenance source (`exchange:NCMEC`, `file:iwf`, `api`).
    pub source: String,
    /// The source's id of the entry (NCMEC `member-entry`, StopNCII `Type:hash`, a list's id).
    pub source_id: String,
    /// The bank signal's type name.
    pub signal_type: String,
    /// The bank signal's value, as the source sent it.
    pub value: String,
}

/// The entries behind one match of a stored submission result (`{bank, bank_content_id,
/// signal_type, ...}`): for the matched content's signals of that type, every active
/// provenance record's entry ids (an exchange's value listed by several entries keeps them
/// comma-joined). Empty when the bank or content is gone since, or the source gave no ids.
pub(crate) fn entries_of_match(
    engine: &safeguard_engine::Engine,
    m: &Value,
) -> Result<Vec<Entry>, ApiError> {
    let (Some(bank), Some(content), Some(signal_type)) = (
        m["bank"].as_str(),
        m["bank_content_id"].as_i64(),
        m["signal_type"].as_str(),
    ) else {
        return Ok(Vec::new());
    };
    let Ok(content) = engine.content(bank, content) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for signal in content
        .signals
        .iter()
        .filter(|s| s.signal_type == signal_type)
    {
        let records =
            engine
                .store()
                .provenance(content.bank_id, &signal.signal_type, &signal.value)?;
        for p in records.iter().filter(|p| p.withdrawn_at.is_none()) {
            // The exchange's own reading of its owner list: an id may hold an escaped ','.
            for id in safeguard_exchange::split_owners(p.source_id.as_deref().unwrap_or("")) {
                let id = id.trim();
                if id.is_empty() {
                    continue;
                }
                let e = Entry {
                    source: p.source.clone(),
                    source_id: id.to_string(),
                    signal_type: signal.signal_type.clone(),
                    value: signal.value.clone(),
                };
                if !out.contains(&e) {
                    out.push(e);
                }
            }
        }
    }
    Ok(out)
}

/// The feedback a "not CSAM" decision of case `id` owes: for each match of its submissions,
/// one row per entry of an exchange that lists the matched hash (a hash two NCMEC members
/// both sent gets two votes). The hash is the bank's, as the exchange sent it, not the
/// submission's (a PDQ match is near, not equal). Matches whose bank or content is gone since
/// are passed by.
pub(crate) fn owed_for_case(
    state: &AppState,
    id: i64,
    actor: &str,
    at: i64,
) -> Result<Vec<NewSourceFeedback>, ApiError> {
    let engine = state.engine()?;
    let mut out: Vec<NewSourceFeedback> = Vec::new();
    for sub in state.0.store.case_submissions(id)? {
        let result: Value = serde_json::from_str(&sub.result).unwrap_or(Value::Null);
        for m in result["matches"].as_array().into_iter().flatten() {
            for e in entries_of_match(&engine, m)? {
                let Some(exchange) = e.source.strip_prefix("exchange:") else {
                    continue;
                };
                let f = NewSourceFeedback {
                    case_id: id,
                    exchange: exchange.to_string(),
                    source_id: e.source_id,
                    signal_type: e.signal_type,
                    value: e.value,
                    verdict: FALSE_POSITIVE.into(),
                    actor: actor.to_string(),
                    at,
                };
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
    }
    Ok(out)
}

/// Why one send failed, and whether trying again could help.
struct SendError {
    message: String,
    permanent: bool,
}

fn permanent(message: impl Into<String>) -> SendError {
    SendError {
        message: message.into(),
        permanent: true,
    }
}

impl From<safeguard_exchange::Error> for SendError {
    fn from(e: safeguard_exchange::Error) -> SendError {
        use safeguard_exchange::Error as E;
        SendError {
            permanent: matches!(e, E::Invalid(_) | E::Config(_)),
            message: e.to_string(),
        }
    }
}

/// Sends one row to its exchange.
async fn send_one(
    client: &Client,
    cfg: &ExchangeConfig,
    f: &SourceFeedback,
) -> Result<(), SendError> {
    let setting = cfg.false_positive_feedback.clone().unwrap_or_default();
    match client {
        Client::Ncmec(c) => {
            // NCMEC's source ids are `member-entry`; the vote names the entry.
            let entry = f
                .feedback
                .source_id
                .split_once('-')
                .map(|(_, e)| e)
                .ok_or_else(|| {
                    permanent(format!("not an NCMEC entry id: {:?}", f.feedback.source_id))
                })?;
            let t = FeedbackType::parse(&f.feedback.signal_type).ok_or_else(|| {
                permanent(format!(
                    "NCMEC takes no feedback on {} fingerprints",
                    f.feedback.signal_type
                ))
            })?;
            c.submit_feedback(entry, t, &Vote::Negative { reason: setting })
                .await?;
        }
        Client::StopNcii(c) => {
            let value = FeedbackValue::parse(&setting)
                .ok_or_else(|| permanent(format!("unknown StopNCII feedback value {setting:?}")))?;
            // StopNCII's source ids are `Type:hash`, the hash as StopNCII sent it.
            let hash = f
                .feedback
                .source_id
                .split_once(':')
                .map_or(f.feedback.value.as_str(), |(_, h)| h);
            c.submit_feedback(hash, value, &[STOPNCII_TAG.to_string()])
                .await?;
        }
        Client::Peer(_) => return Err(permanent("a Safeguard peer exchange takes no feedback")),
    }
    Ok(())
}

/// What one round of [`send_pending`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendRound {
    /// Rows sent.
    pub sent: usize,
    /// Attempts that failed (the row stays pending, or is given up).
    pub failed: usize,
    /// Rows cancelled because their case was decided otherwise since.
    pub cancelled: usize,
}

/// The wait before the next attempt after `attempts` failed ones: a minute, doubling, so the
/// [`MAX_ATTEMPTS`] attempts span about eight and a half hours of an exchange being down.
pub fn backoff_ms(attempts: u32) -> i64 {
    let minutes = 1i64 << attempts.saturating_sub(1).min(12);
    minutes.saturating_mul(60_000)
}

/// Sends the pending feedback of every exchange configured to send it, up to [`SEND_BATCH`]
/// due rows each, recording each attempt. The exchanges are sent to side by side, so a slow
/// one does not hold the others' rows back within a round (the next round starts when all
/// are done; the HTTP client's timeouts bound that); within one, the round stops at the first
/// failure that is not the row's own fault (the exchange is down or refuses us), so an outage
/// costs one attempt a round, not one per row. Delivery is at least once: a send whose record
/// then fails goes again.
pub async fn send_pending(state: &AppState, now: i64) -> Result<SendRound, ApiError> {
    let mut tasks = Vec::new();
    for cfg in state.0.exchanges.feedback_senders() {
        let state = state.clone();
        tasks.push(tokio::spawn(async move {
            send_exchange(&state, cfg, now).await
        }));
    }
    let mut round = SendRound::default();
    for t in tasks {
        let r = t.await.map_err(ApiError::internal)??;
        round.sent += r.sent;
        round.failed += r.failed;
        round.cancelled += r.cancelled;
    }
    Ok(round)
}

/// What to do with a row, from its case as it stands now.
enum Standing {
    /// Decided "not CSAM": send.
    Send,
    /// Back in review (the decision did not go through, or the case was reopened): wait.
    Wait,
    /// Decided otherwise since: the vote must not go out.
    Cancel(String),
}

fn standing(state: &AppState, case_id: i64) -> Result<Standing, ApiError> {
    let Some(case) = state.0.store.case(case_id)? else {
        return Ok(Standing::Cancel("the case no longer exists".into()));
    };
    let false_positive = case.decision.as_deref().is_some_and(|d| {
        safeguard_engine::case::DecisionKind::of(d)
            == safeguard_engine::case::DecisionKind::FalsePositive
    });
    Ok(match (case.state.as_str(), case.decision.as_deref()) {
        ("open" | "in_review", _) => Standing::Wait,
        _ if false_positive => Standing::Send,
        (state, decision) => Standing::Cancel(format!(
            "the case is {state}, decided {}, no longer \"not CSAM\"",
            decision.unwrap_or("nothing")
        )),
    })
}

async fn send_exchange(
    state: &AppState,
    cfg: ExchangeConfig,
    now: i64,
) -> Result<SendRound, ApiError> {
    let mut round = SendRound::default();
    let filter = FeedbackFilter {
        exchange: Some(cfg.name.clone()),
        status: Some("pending".into()),
        due_by: Some(now),
        after: 0,
        limit: SEND_BATCH,
    };
    let store = state.0.store.clone();
    let rows = blocking(move || Ok(store.source_feedback(&filter)?)).await?;
    if rows.is_empty() {
        return Ok(round);
    }
    let client = match cfg.client() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(exchange = %cfg.name, error = %e, "cannot send source feedback");
            return Ok(round);
        }
    };
    for f in rows {
        let st = state.clone();
        let case_id = f.feedback.case_id;
        match blocking(move || standing(&st, case_id)).await? {
            // Looked at again later, so rows that wait never fill the batch.
            Standing::Wait => {
                let store = state.0.store.clone();
                let id = f.id;
                let until = now.saturating_add(WAIT_MS);
                if let Err(e) = blocking(move || Ok(store.defer_source_feedback(id, until)?)).await
                {
                    tracing::warn!(feedback = id, error = %e.message, "cannot defer source feedback");
                }
                continue;
            }
            Standing::Cancel(why) => {
                let store = state.0.store.clone();
                let id = f.id;
                match blocking(move || Ok(store.cancel_source_feedback(id, &why, now)?)).await {
                    Ok(_) => round.cancelled += 1,
                    Err(e) => {
                        tracing::warn!(feedback = id, error = %e.message, "cannot cancel source feedback")
                    }
                }
                continue;
            }
            Standing::Send => {}
        }
        let outcome = send_one(&client, &cfg, &f).await;
        let attempts = f.attempts.saturating_add(1);
        let (error, max, stop) = match &outcome {
            Ok(()) => (None, MAX_ATTEMPTS, false),
            // Only this row is wrong: give it up now, and go on with the others.
            Err(e) if e.permanent => (Some(e.message.clone()), attempts, false),
            Err(e) => (Some(e.message.clone()), MAX_ATTEMPTS, true),
        };
        if let Some(e) = &error {
            tracing::warn!(exchange = %cfg.name, feedback = f.id, error = %e, "source feedback not sent");
            round.failed += 1;
        } else {
            round.sent += 1;
        }
        let id = f.id;
        let store = state.0.store.clone();
        let retry_at = now.saturating_add(backoff_ms(attempts));
        let noted = blocking(move || {
            Ok(store.note_feedback_attempt(id, error.as_deref(), now, max, retry_at)?)
        })
        .await;
        if let Err(e) = noted {
            tracing::warn!(feedback = id, error = %e.message, "cannot record a source feedback attempt");
        }
        if stop {
            break;
        }
    }
    Ok(round)
}

/// Runs [`send_pending`] every minute (curator or `all` only).
pub fn start(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + SEND_INTERVAL, SEND_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match send_pending(&state, safeguard_engine::now_ms()).await {
                Ok(r) if r.sent + r.failed + r.cancelled > 0 => {
                    tracing::info!(
                        sent = r.sent,
                        failed = r.failed,
                        cancelled = r.cancelled,
                        "source feedback round"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e.message, "source feedback round failed"),
            }
        }
    });
}

/// Most rows one listing answers.
const MAX_LIST: usize = 1_000;

/// `GET /v1/exchanges/{name}/feedback` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// `pending`, `sent`, `failed` or `cancelled`.
    status: Option<String>,
    /// Rows with an id above this.
    #[serde(default)]
    after: i64,
    /// At most this many (default 100, at most 1,000).
    limit: Option<usize>,
}

fn row_json(f: &SourceFeedback) -> Value {
    json!({
        "id": f.id,
        "case_id": f.feedback.case_id,
        "exchange": f.feedback.exchange,
        "source_id": f.feedback.source_id,
        "signal_type": f.feedback.signal_type,
        "value": f.feedback.value,
        "verdict": f.feedback.verdict,
        "decided_by": f.feedback.actor,
        "created_at": f.feedback.at,
        "status": f.status,
        "attempts": f.attempts,
        "last_error": f.last_error,
        "sent_at": f.sent_at,
        "next_attempt_at": f.next_attempt_at,
        "updated_at": f.updated_at,
    })
}

/// `GET /v1/exchanges/{name}/feedback`: the feedback recorded for an exchange's entries, by
/// id, with what became of each.
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    state.0.exchanges.require(&name)?;
    if let Some(s) = &q.status {
        if !matches!(s.as_str(), "pending" | "sent" | "failed" | "cancelled") {
            return Err(ApiError::bad_request(
                "invalid_request",
                "status must be pending, sent, failed or cancelled",
            ));
        }
    }
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIST {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("limit must be 1 to {MAX_LIST}"),
        ));
    }
    let filter = FeedbackFilter {
        exchange: Some(name),
        status: q.status,
        due_by: None,
        after: q.after,
        limit,
    };
    let store = state.0.store.clone();
    let rows = blocking(move || Ok(store.source_feedback(&filter)?)).await?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(json!({
        "feedback": rows.iter().map(row_json).collect::<Vec<_>>(),
        "next_after": next,
    })))
}

/// `POST /v1/exchanges/{name}/feedback/retry`: every `failed` row of the exchange is pending
/// again, due now, with its attempts counted afresh (after an outage longer than the backoff,
/// or once a refused credential is fixed).
pub(crate) async fn retry(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    state.0.exchanges.require(&name)?;
    let store = state.0.store.clone();
    let now = safeguard_engine::now_ms();
    let n = blocking(move || Ok(store.retry_failed_feedback(&name, now)?)).await?;
    Ok(Json(json!({ "retried": n })))
}
