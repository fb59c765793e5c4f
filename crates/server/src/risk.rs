//! `POST /v1/events`: contact-risk signals. A batch of events (messages, connection requests
//! and accepts, blocks, reports, gifts, images, profile views) goes through the configured
//! `safeguard_risk::Scorer`; the answer is each subject account's score with the features
//! that raised it, and any threshold crossed.
//!
//! The scorer lives in the server's state behind a `std::sync::Mutex`: scoring an event is
//! a few microseconds of CPU with no I/O and no await, so one lock held for a batch is
//! simpler and faster than finer locking, and the batch runs on the blocking pool so that
//! a 1,000-event batch (a few milliseconds) never stalls the reactor. Batches are scored
//! in the order they take the lock; the scorer's windows accept events out of order within
//! their span. A platform needing more than one core shards accounts over instances.
//!
//! A batch is validated whole before anything is scored: one bad event refuses the batch
//! with its index in the error's field (`events[3].actor_age`), and nothing is counted.
//!
//! With `[risk.semantic] model_dir` set, the messages where the semantic feature can count
//! (`Scorer::semantic_candidate`: private text from an adult to a stranger-pair minor that no
//! pattern matched) are first embedded on the CPU pool, at most `max_per_batch` of them, and
//! scored against the example sets; those at or above `min_contrast` are flagged for the
//! scorer, and the answer's `semantic` object lists them with the nearest example. A model
//! failure does not refuse the batch: it is logged, the batch is scored without the model,
//! and the answer says `"failed": true`.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;

use safeguard_engine::now_ms;
use safeguard_risk::{Crossing, Event, EventKind, Feature, Level, Score, Scorer};

use crate::error::{ApiError, ApiResult};
use crate::state::{blocking, cpu, AppState};

/// Most events in one batch: a platform's backend flushing once a second, and enough that
/// a batch's lock on the scorer stays within a few milliseconds.
pub const MAX_EVENTS_PER_BATCH: usize = 1_000;

/// Largest request body, bytes: 1,000 events averaging 2 KiB (ids, ages, a short message).
/// A batch of long messages is split by the caller; one message may be up to
/// `safeguard_risk::MAX_TEXT_BYTES`.
pub const MAX_EVENTS_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Routes needing the `submit` scope (the platform's backend, reporting what happened).
pub fn submit_routes() -> Router<AppState> {
    Router::new().route("/v1/events", post(events_route))
}

/// Builds the scorer from `[risk]`: `None` when disabled. The pattern file, when one is
/// configured, is read here, once, at start-up.
pub fn scorer_from_config(spec: &safeguard_risk::RiskSpec) -> Result<Option<Scorer>, String> {
    if !spec.enabled {
        return Ok(None);
    }
    let patterns = match &spec.patterns {
        None => safeguard_risk::PatternSet::default_set(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("risk.patterns: {}: {e}", path.display()))?;
            safeguard_risk::PatternSet::from_toml(&text)
                .map_err(|e| format!("risk.patterns: {}: {e}", path.display()))?
        }
    };
    Scorer::new(spec.clone(), patterns)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Loads `[risk.semantic]`: the model and the example sets (the shipped ones unless a file is
/// named), embedded once; `None` when risk scoring is off or no model is named.
pub fn semantic_from_config(
    spec: &safeguard_risk::RiskSpec,
) -> Result<Option<safeguard_semantic::Contrast>, String> {
    let sem = &spec.semantic;
    let Some(dir) = sem.model_dir.as_ref().filter(|_| spec.enabled) else {
        return Ok(None);
    };
    let examples = safeguard_semantic::ExampleSets::from_file(sem.examples.as_deref())
        .map_err(|e| format!("risk.semantic.examples: {e}"))?;
    let started = std::time::Instant::now();
    let embedder = safeguard_semantic::Embedder::open(dir)
        .map_err(|e| format!("risk.semantic.model_dir: {e}"))?;
    let contrast = safeguard_semantic::Contrast::new(embedder, &examples, sem.top_k)
        .map_err(|e| format!("risk.semantic: {e}"))?;
    tracing::info!(
        model = %dir.display(),
        positive = examples.positive.len(),
        negative = examples.negative.len(),
        ms = started.elapsed().as_millis() as u64,
        "semantic model loaded"
    );
    Ok(Some(contrast))
}

/// What the semantic model did for a batch (`"semantic"` in the answer, only when a model is
/// configured).
#[derive(Debug, Default, Serialize)]
struct SemanticAnswer {
    /// Messages where the semantic feature could count.
    candidates: usize,
    /// Of those, how many the model read (at most `max_per_batch`).
    embedded: usize,
    /// Candidates past `max_per_batch`, scored without the model.
    skipped: usize,
    /// True when the model failed and the batch was scored without it (see the log).
    failed: bool,
    /// The messages it flagged, in batch order.
    flagged: Vec<Flagged>,
}

/// One flagged message, explained by the example it came nearest to.
#[derive(Debug, Serialize)]
struct Flagged {
    /// Its index in the batch.
    event: usize,
    /// The caller's event id, if it sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    /// The nearest positive example's label and text.
    label: String,
    example: String,
    /// Cosine similarity to that example.
    similarity: f32,
    /// Similarity to the positive examples minus to the negative ones (top-k means).
    contrast: f32,
}

/// Runs the semantic model over the batch's candidates; one flag per event.
async fn semantic_flags(
    state: &AppState,
    scorer: &Arc<Mutex<Scorer>>,
    events: &Arc<Vec<Event>>,
) -> ApiResult<(Vec<bool>, Option<SemanticAnswer>)> {
    let mut flags = vec![false; events.len()];
    let Some(model) = state.0.semantic.clone() else {
        return Ok((flags, None));
    };
    let spec = state.0.config.risk.semantic.clone();
    let (sc, ev) = (scorer.clone(), events.clone());
    let candidates: Vec<usize> = blocking(move || {
        let s = sc.lock().unwrap_or_else(|p| p.into_inner());
        Ok(s.semantic_candidates(&ev)
            .into_iter()
            .enumerate()
            .filter_map(|(i, c)| c.then_some(i))
            .collect())
    })
    .await?;
    let take = candidates.len().min(spec.max_per_batch);
    let mut answer = SemanticAnswer {
        candidates: candidates.len(),
        skipped: candidates.len() - take,
        ..SemanticAnswer::default()
    };
    let chosen: Vec<usize> = candidates[..take].to_vec();
    if chosen.is_empty() {
        return Ok((flags, Some(answer)));
    }
    let (ev, idx) = (events.clone(), chosen.clone());
    let scored = cpu(state, move || {
        let texts: Vec<&str> = idx
            .iter()
            .map(|&i| ev[i].text.as_deref().unwrap_or(""))
            .collect();
        // One CPU permit is one core: candle's matrix products and the tokeniser would
        // otherwise spread over every core through the global rayon pool.
        Ok(match one_core() {
            Ok(pool) => pool.install(|| model.score(&texts)),
            Err(e) => Err(safeguard_semantic::Error::Embed(e)),
        })
    })
    .await;
    // A panic in the model ends up as the blocking task's error: the same as a failure.
    let scored = match scored {
        Ok(Ok(sims)) => Ok(sims),
        Ok(Err(e)) => Err(format!("{}: {e}", e.code())),
        Err(e) => Err(format!("{}: {}", e.code, e.message)),
    };
    match scored {
        Ok(sims) => {
            answer.embedded = chosen.len();
            for (i, s) in chosen.into_iter().zip(sims) {
                if f64::from(s.contrast) >= spec.min_contrast {
                    flags[i] = true;
                    answer.flagged.push(Flagged {
                        event: i,
                        id: events[i].id.clone(),
                        label: s.label,
                        example: s.example,
                        similarity: s.nearest,
                        contrast: s.contrast,
                    });
                }
            }
        }
        Err(why) => {
            tracing::error!(error = %why, "semantic model failed; batch scored without it");
            answer.failed = true;
        }
    }
    Ok((flags, Some(answer)))
}

/// The one-thread pool semantic embedding runs in (made on first use).
fn one_core() -> Result<&'static rayon::ThreadPool, String> {
    static POOL: std::sync::OnceLock<Result<rayon::ThreadPool, String>> =
        std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "semantic".into())
            .build()
            .map_err(|e| format!("cannot start the semantic model's thread: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn risk_error(e: safeguard_risk::Error) -> ApiError {
    let status = match e.code() {
        "text_too_long" => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.code(), e.to_string())
}

#[derive(Debug, Serialize)]
struct Answer {
    /// Events scored.
    scored: usize,
    /// Each subject account of the batch, in order of first appearance, with its score now.
    accounts: Vec<Score>,
    /// Thresholds crossed by this batch.
    crossings: Vec<Crossing>,
    /// Stored relationships (`/v1/accounts`) this batch changed: a connection accept makes the
    /// pair `connected`, a block `blocked`.
    relationships_updated: usize,
    /// Where each crossing was routed (`[risk] route_crossings`): the case it joined in the
    /// review queue, in the order of `crossings`; empty when routing is off.
    routed: Vec<Routed>,
    /// What the semantic model did, when one is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    semantic: Option<SemanticAnswer>,
}

#[derive(Debug, Serialize)]
struct Routed {
    account: String,
    level: Level,
    case_id: Option<i64>,
    queue: String,
    /// False when this crossing was already recorded (a retried batch).
    recorded: bool,
}

fn parse(body: &[u8]) -> ApiResult<Vec<Event>> {
    if body.len() > MAX_EVENTS_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "an event batch is at most {MAX_EVENTS_BODY_BYTES} bytes, got {}; send \
                 smaller batches",
                body.len()
            ),
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("the body is not JSON: {e}")))?;
    let Value::Object(mut top) = value else {
        return Err(ApiError::bad_request(
            "invalid_event",
            "send an object: {\"events\": [...]}",
        ));
    };
    if let Some(k) = top.keys().find(|k| k.as_str() != "events") {
        return Err(ApiError::bad_request(
            "invalid_event",
            format!(
                "unknown field `{}`; the body is {{\"events\": [...]}}",
                crate::extract::short(k)
            ),
        ));
    }
    let Some(Value::Array(events)) = top.remove("events") else {
        return Err(ApiError::bad_request(
            "invalid_event",
            "`events`: send an array of events",
        ));
    };
    if events.len() > MAX_EVENTS_PER_BATCH {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_events",
            format!(
                "a batch holds at most {MAX_EVENTS_PER_BATCH} events, got {}; split it",
                events.len()
            ),
        ));
    }
    let now = u64::try_from(now_ms() / 1000).unwrap_or(0);
    events
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let field = format!("events[{i}]");
            let e = Event::from_json_value(v, &field).map_err(risk_error)?;
            e.check_not_ahead_of(now, &field).map_err(risk_error)?;
            Ok(e)
        })
        .collect()
}

async fn events_route(State(state): State<AppState>, body: Bytes) -> ApiResult<Json<Value>> {
    let Some(scorer) = state.0.risk.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "risk_disabled",
            "contact-risk scoring is off on this server ([risk] enabled = false)",
        ));
    };
    let events = Arc::new(parse(&body)?);
    let edges = graph_edges(&events);
    let (flags, semantic) = semantic_flags(&state, &scorer, &events).await?;
    let mut answer = tokio::task::spawn_blocking(move || {
        // The scorer does not panic on any validated event; should a panic ever poison the
        // lock, the state it left is still a valid scorer (each update is to plain counters),
        // so scoring goes on rather than failing every later batch.
        let mut s = scorer.lock().unwrap_or_else(|p| p.into_inner());
        let mut crossings = Vec::new();
        let mut subjects: Vec<&str> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut counted = std::collections::HashSet::new();
        for (i, (e, flag)) in events.iter().zip(flags).enumerate() {
            let o = s.observe_with(e, flag);
            if flag && o.raised.contains(Feature::Semantic) {
                counted.insert(i);
            }
            if let Some(c) = o.crossing {
                crossings.push(c);
            }
            let subject = e.subject();
            if seen.insert(subject) {
                subjects.push(subject);
            }
        }
        let accounts = subjects.iter().filter_map(|a| s.score(a)).collect();
        Answer {
            scored: events.len(),
            accounts,
            crossings,
            relationships_updated: 0,
            routed: Vec::new(),
            // Only the flags the scorer counted: a candidate is judged before the batch is
            // scored, and an earlier event of the batch may have changed the pair.
            semantic: semantic.map(|mut a| {
                a.flagged.retain(|f| counted.contains(&f.event));
                a
            }),
        }
    })
    .await?;
    answer.relationships_updated = update_relationships(&state, edges).await?;
    for c in &answer.crossings {
        tracing::info!(
            account = %c.account,
            level = ?c.level,
            score = c.score,
            "contact-risk threshold crossed"
        );
    }
    answer.routed = route_crossings(&state, &answer.crossings).await?;
    Ok(Json(
        serde_json::to_value(&answer).map_err(ApiError::internal)?,
    ))
}

/// A change to the stored graph: (actor, target, relationship).
type Edge = (String, String, String);

/// The graph changes a batch carries, in its order.
fn graph_edges(events: &[Event]) -> Vec<Edge> {
    events
        .iter()
        .filter_map(|e| {
            let rel = match e.kind {
                EventKind::ConnectionAccept => "connected",
                EventKind::Block => "blocked",
                _ => return None,
            };
            Some((e.actor.clone(), e.target.clone(), rel.to_string()))
        })
        .collect()
}

/// Keeps the stored graph that contact decisions read (`/v1/accounts`) current from the
/// events: a connection accept makes the pair `connected`, a block makes it `blocked`, in the
/// batch's order; no event lifts a block (a late or retried accept must not undo one: only
/// the platform's own write of the relationship does). Age bands in events are not written: they carry no assurance, and an
/// account the platform stored with a verified age must not be overwritten by a claim. Runs
/// after scoring, so a store failure is a 500 for a batch the scorer has seen; the platform's
/// retry then scores it twice, which counts its events twice but loses no edge of the graph.
async fn update_relationships(state: &AppState, edges: Vec<Edge>) -> ApiResult<usize> {
    if edges.is_empty() {
        return Ok(0);
    }
    let store = state.0.store.clone();
    // One transaction for the batch: all of its graph changes, or none.
    blocking(move || {
        store.put_relationships_from_events(&edges)?;
        Ok(edges.len())
    })
    .await
}

/// Routes each crossing to human review and to the webhooks
/// (`safeguard_engine::action::record_account_risk`): the account's case in `[risk]
/// review_queue` gets the crossing, with its contributions and recent events, as an item, and
/// an `account.risk` event goes out, in one transaction per crossing. A crossing is named by
/// account, level and time, so a retried batch replays rather than queueing it twice.
async fn route_crossings(state: &AppState, crossings: &[Crossing]) -> ApiResult<Vec<Routed>> {
    let spec = &state.0.config.risk;
    if !spec.route_crossings || crossings.is_empty() {
        return Ok(Vec::new());
    }
    let queue = spec.review_queue.clone();
    let mut jobs = Vec::with_capacity(crossings.len());
    for c in crossings {
        let level = serde_json::to_value(c.level).map_err(ApiError::internal)?;
        let level = level.as_str().unwrap_or("review").to_string();
        let detail = serde_json::to_value(c).map_err(ApiError::internal)?;
        jobs.push((c.account.clone(), c.level, level, c.at, detail));
    }
    let st = state.clone();
    blocking(move || {
        let store = &st.0.store;
        let mut out = Vec::with_capacity(jobs.len());
        for (account, lvl, level, at, detail) in jobs {
            let key = format!("{level}:{at}:{account}");
            let (case, recorded) = safeguard_engine::action::record_account_risk(
                store.as_ref(),
                &key,
                &account,
                &level,
                &queue,
                detail,
                crate::nca::surfaced_risk(&st, &level),
            )?;
            out.push(Routed {
                account,
                level: lvl,
                case_id: case.map(|c| c.id),
                queue: queue.clone(),
                recorded,
            });
        }
        Ok(out)
    })
    .await
}
