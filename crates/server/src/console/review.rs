//! Queues, claiming, the item view, decisions and approvals.
//!
//! A claim is a lease on a case: while it is live nobody else may decide the case; when it
//! runs out the case may be claimed by someone else. Deciding needs the caller's own live
//! lease, so two moderators can never decide one case at once. Approving (the second person
//! of the two-person rule) needs the `senior` role and a different person from the one who
//! confirmed; the engine refuses the same person too, whatever the console shows.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use safeguard_console::decision::{DecideForm, Decision};
use safeguard_console::exposure::ExposureState;
use safeguard_console::settings::ViewOverrides;
use safeguard_console::views;
use safeguard_engine::action::{case_json, new_event, EVENT_CASE_UPDATED};
use safeguard_engine::audit::Action;
use safeguard_engine::case::{current_approval, decision_line, CaseState};
use safeguard_store::action::{Case, NewEvent};
use safeguard_store::console::{ClaimJob, ItemLabel};
use serde_json::{json, Value};

use super::{
    day_start, html, load_session, may_claim, now_ms, policies, session, session_cookie, ConsoleId,
    ConsoleResult, Fail, Session, MEDIA_URL_TTL_MS,
};
use crate::error::ApiError;
use crate::state::{blocking, AppState};

/// The `case.updated` event of a console action on a case.
pub(crate) fn case_event(change: &'static str, by: String) -> impl FnMut(&Case) -> Vec<NewEvent> {
    move |c: &Case| {
        let mut data = case_json(c);
        data["change"] = json!(change);
        data["by"] = json!(by);
        vec![new_event(EVENT_CASE_UPDATED, data)]
    }
}

fn totals(
    t: &safeguard_store::console::ExposureTotals,
) -> safeguard_console::exposure::ExposureTotals {
    safeguard_console::exposure::ExposureTotals {
        reveals: t.reveals,
        visible_ms: t.visible_ms,
        review_ms: t.review_ms,
    }
}

/// What a cap is about, in words.
pub(crate) fn cap_text(c: safeguard_console::exposure::Cap) -> &'static str {
    match c {
        safeguard_console::exposure::Cap::Reveals => "reveals",
        safeguard_console::exposure::Cap::ReviewTime => "time reviewing",
    }
}

/// The daily cap `s` has reached, if any: the only part of the exposure state that refuses
/// a claim or a reveal (a due break only prompts), so it reads today's totals alone.
pub(crate) fn cap_reached(
    state: &AppState,
    s: &Session,
) -> Result<Option<safeguard_console::exposure::Cap>, ApiError> {
    let now = now_ms();
    let today = state
        .0
        .store
        .exposure(s.user.id, day_start(now), now + 1, now)?;
    let policy = policies(&state.0.config.console).exposure;
    Ok(match policy.state(&totals(&today), 0) {
        ExposureState::CapReached { what } => Some(what),
        _ => None,
    })
}

/// The person's exposure today (caps and break prompt). The stretch since the last break is
/// the time reviewed and revealed since this session began: a new session after a pause
/// starts a fresh stretch.
pub(crate) fn exposure_state(
    state: &AppState,
    s: &Session,
) -> Result<views::ExposureSummary, ApiError> {
    let now = now_ms();
    let today = state
        .0
        .store
        .exposure(s.user.id, day_start(now), now + 1, now)?;
    let stretch = state
        .0
        .store
        .exposure(s.user.id, s.session.created_at, now + 1, now)?;
    let policy = policies(&state.0.config.console).exposure;
    let totals = totals(&today);
    Ok(views::ExposureSummary {
        totals,
        policy,
        state: policy.state(&totals, stretch.review_ms + stretch.visible_ms),
    })
}

/// The viewer for a page, with the break prompt when one is due.
fn viewer_with(s: &Session, e: Option<&views::ExposureSummary>) -> views::Viewer {
    let mut v = s.viewer();
    v.break_due = e.is_some_and(|e| e.state == ExposureState::BreakDue);
    v
}

/// `GET /console`: the queues the person may work on, their depth and oldest item for leads,
/// and today's exposure.
pub(crate) async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> ConsoleResult<Response> {
    let s = session(&state, &headers).await?;
    let stats = state.0.console.queue_stats(&state).await?;
    let now = now_ms();
    let cfg = &state.0.config.console;
    let lead = s.roles.is_lead() || s.roles.can_audit();
    let queues: Vec<views::QueueRow> = stats
        .iter()
        .filter(|q| lead || may_claim(cfg, &s, &q.queue))
        .map(|q| views::QueueRow {
            name: q.queue.clone(),
            open: q.open,
            in_review: q.in_review,
            oldest_opened_at: q.oldest_opened_at,
            can_claim: may_claim(cfg, &s, &q.queue),
        })
        .collect();
    let exposure = if s.roles.sees_media() {
        let st = state.clone();
        let s2 = s.clone();
        Some(blocking(move || exposure_state(&st, &s2)).await?)
    } else {
        None
    };
    let mut viewer = viewer_with(&s, exposure.as_ref());
    if q.contains_key("empty") {
        viewer.flash = Some("Nothing to claim in that queue right now.".into());
    }
    Ok(html(views::home_page(
        &viewer,
        &views::HomeView {
            now_ms: now,
            queues,
            exposure,
        },
    ))
    .into_response())
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/queues/{queue}/claim`: takes the next case of the queue (priority, then
/// age) and opens it.
pub(crate) async fn claim(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> ConsoleResult<Response> {
    let id_hash = session_cookie(&state, &headers)?;
    let st = state.clone();
    // The session, the checks and the claim in one blocking call: a claim is the console's
    // hottest write, and each trip to the blocking pool is a thread hand-off.
    let claimed = blocking(move || {
        let s = match load_session(&st, &id_hash) {
            Ok(s) => s,
            Err(fail) => return Ok(Err(fail)),
        };
        if let Err(fail) = s.check_csrf(Some(&f.csrf)) {
            return Ok(Err(fail));
        }
        if !may_claim(&st.0.config.console, &s, &queue) {
            return Ok(Err(Fail::forbidden("you may not claim from this queue")));
        }
        if let Some(what) = cap_reached(&st, &s)? {
            return Ok(Err(Fail::page(
                StatusCode::TOO_MANY_REQUESTS,
                "exposure_cap_reached",
                format!(
                    "you have reached today's limit on {}; take a break, the queue will wait",
                    cap_text(what)
                ),
            )));
        }
        let pol = policies(&st.0.config.console);
        let job = ClaimJob {
            queues: vec![queue],
            holder: s.user.id,
            actor_label: s.actor(),
            now: now_ms(),
            lease_ms: pol.lease_ms,
            events: Box::new(case_event("claimed", s.actor())),
        };
        Ok(Ok(st.0.console.claims.claim(st.0.store.as_ref(), job)?))
    })
    .await??;
    match claimed {
        None => Ok(Redirect::to("/console?empty=1").into_response()),
        Some((c, _)) => {
            state.notify_webhooks();
            Ok(Redirect::to(&format!("/console/cases/{}", c.id)).into_response())
        }
    }
}

/// Everything the item view shows, read in one blocking call.
struct CaseFacts {
    case: Case,
    lease: Option<safeguard_store::console::Lease>,
    lease_holder: Option<String>,
    /// The matches of every submission, with the sources' entry ids.
    matches: Vec<views::EvidenceMatch>,
    evidence: Vec<safeguard_store::action::Evidence>,
    history: Vec<safeguard_store::action::CaseHistory>,
    labels: Vec<ItemLabel>,
    uploader_items: Vec<views::UploaderItem>,
    earlier: Vec<views::EarlierDecision>,
    settings: safeguard_console::settings::ViewSettings,
    exposure: Option<views::ExposureSummary>,
}

/// Other cases of the same account shown with a case: the latest this many.
const OTHER_CASES: usize = 10;

/// The media view `user` gets on `case`: the organisation's settings, then the queue's, then
/// the harm type's (the case's first label), then the person's own.
pub(crate) fn view_settings(
    store: &dyn safeguard_store::Store,
    case: &Case,
    user: safeguard_store::console::UserId,
) -> Result<safeguard_console::settings::ViewSettings, ApiError> {
    let org = layer(store, "org")?;
    let queue = layer(store, &format!("queue:{}", case.queue))?;
    let harm = match case.labels.first() {
        Some(h) => layer(store, &format!("harm:{h}"))?,
        None => None,
    };
    let person = layer(store, &format!("user:{user}"))?;
    Ok(safeguard_console::settings::resolve(
        org.as_ref(),
        queue.as_ref(),
        harm.as_ref(),
        person.as_ref(),
    ))
}

/// A stored settings layer; a layer that no longer parses is ignored (and logged), so a bad
/// row can only fall back to the safer defaults.
fn layer(
    store: &dyn safeguard_store::Store,
    scope: &str,
) -> Result<Option<ViewOverrides>, ApiError> {
    Ok(store.setting(scope)?.and_then(|json| {
        ViewOverrides::from_json(&json)
            .inspect_err(
                |e| tracing::warn!(scope, error = %e, "ignoring a bad console settings layer"),
            )
            .ok()
    }))
}

fn read_case(state: &AppState, s: &Session, id: i64) -> Result<Option<CaseFacts>, ApiError> {
    let store = state.0.store.as_ref();
    let Some(case) = store.case(id)? else {
        return Ok(None);
    };
    let lease = store.lease(id)?;
    let lease_holder = match &lease {
        Some(l) => store.user(l.holder)?.map(|u| u.name),
        None => None,
    };
    let mut uploader_items = Vec::new();
    let mut earlier = Vec::new();
    if let Some(a) = &case.account {
        let others = store.cases_of_account(a, OTHER_CASES + 1)?;
        for c in others.into_iter().filter(|c| c.id != id).take(OTHER_CASES) {
            let outcome = match &c.decision {
                Some(d) => format!("{}: {d}", c.state),
                None => c.state.clone(),
            };
            for e in store.case_evidence(c.id)? {
                uploader_items.push(views::UploaderItem {
                    case_id: Some(c.id),
                    object_id: e.object_id,
                    at: e.created_at,
                    outcome: outcome.clone(),
                });
            }
            if let Some(d) = &c.decision {
                let h = store.case_history(c.id)?;
                let line = decision_line(&h);
                earlier.push(views::EarlierDecision {
                    case_id: c.id,
                    decision: d.clone(),
                    decided_by: line.map(|l| l.actor.clone()).unwrap_or_default(),
                    at: line.map(|l| l.at).unwrap_or(c.updated_at),
                });
            }
        }
    }
    let settings = view_settings(store, &case, s.user.id)?;
    let exposure = if s.roles.sees_media() {
        Some(exposure_state(state, s)?)
    } else {
        None
    };
    let submissions = store.case_submissions(id)?;
    let evidence = store.case_evidence(id)?;
    // While the index loads the page still shows, without the sources' entry ids.
    let engine = state.0.engine.get().cloned();
    let mut matches = Vec::new();
    for sub in &submissions {
        let object = evidence
            .iter()
            .find(|e| e.submission_id == sub.id)
            .map(|e| e.object_id.clone())
            .unwrap_or_else(|| sub.platform_id.clone());
        matches.extend(matches_of(engine.as_deref(), &sub.result, &object)?);
    }
    Ok(Some(CaseFacts {
        matches,
        evidence,
        history: store.case_history(id)?,
        labels: store.item_labels(id)?,
        case,
        lease,
        lease_holder,
        uploader_items,
        earlier,
        settings,
        exposure,
    }))
}

/// The matches of a submission, from its stored result. The hotline id is the source's own id
/// of the entry that listed the hash (NCMEC `member-entry`, StopNCII `Type:hash`, a list's id
/// column), from the hash's provenance; several are joined by commas.
fn matches_of(
    engine: Option<&safeguard_engine::Engine>,
    result: &str,
    object_id: &str,
) -> Result<Vec<views::EvidenceMatch>, ApiError> {
    let v: Value = serde_json::from_str(result).unwrap_or(Value::Null);
    let mut out = Vec::new();
    for m in v["matches"].as_array().into_iter().flatten() {
        let ids: Vec<String> = match engine {
            Some(e) => crate::source_feedback::entries_of_match(e, m)?
                .into_iter()
                .map(|e| e.source_id)
                .collect(),
            None => Vec::new(),
        };
        out.push(views::EvidenceMatch {
            object_id: object_id.to_string(),
            bank: m["bank"].as_str().unwrap_or("").to_string(),
            distance: m["distance"].as_u64().and_then(|d| u32::try_from(d).ok()),
            source: m["source"].as_str().unwrap_or("").to_string(),
            classification: m["classification"].as_str().map(str::to_string),
            hotline_id: (!ids.is_empty()).then(|| ids.join(", ")),
        });
    }
    Ok(out)
}

/// `GET /console/cases/{id}`: evidence first, media blurred and greyscale until clicked.
pub(crate) async fn case_page(
    State(state): State<AppState>,
    ConsoleId(id): ConsoleId,
    headers: HeaderMap,
) -> ConsoleResult<Response> {
    let s = session(&state, &headers).await?;
    let st = state.clone();
    let s2 = s.clone();
    let facts = blocking(move || read_case(&st, &s2, id))
        .await?
        .ok_or_else(|| {
            Fail::page(
                StatusCode::NOT_FOUND,
                "case_not_found",
                format!("no case {id}"),
            )
        })?;
    let cfg = &state.0.config.console;
    if !(may_claim(cfg, &s, &facts.case.queue)
        || s.roles.can_approve()
        || s.roles.can_audit()
        || s.roles.can_admin())
    {
        return Err(Fail::forbidden("this case's queue is not open to you"));
    }
    let now = now_ms();
    let media: Vec<views::MediaItem> = if s.roles.sees_media() {
        let st = state.clone();
        // The first call loads the master key (blocking).
        let signer = blocking(move || st.0.console.signer(&st).cloned()).await?;
        let exp = now + MEDIA_URL_TTL_MS;
        facts
            .evidence
            .iter()
            .filter(|e| e.wrapped_key.is_some())
            .map(|e| {
                let label = facts.labels.iter().find(|l| l.object_id == e.object_id);
                views::MediaItem {
                    object_id: e.object_id.clone(),
                    kind: if e.media_kind == "video" {
                        views::MediaKind::Video
                    } else {
                        views::MediaKind::Image
                    },
                    // With reduced detail on, an image comes as the server's stylised copy:
                    // the original never reaches the browser.
                    url: Some(format!(
                        "/console/media/{}?exp={exp}&sig={}{}",
                        e.object_id,
                        signer.sign(&e.object_id, &s.session.id_hash, exp),
                        if super::media::is_reduced(&facts.settings, &e.media_kind) {
                            "&view=reduced"
                        } else {
                            ""
                        }
                    )),
                    classification: label.map(|l| l.classification.clone()),
                    annotations: label.map(|l| l.annotations.clone()).unwrap_or_default(),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let decided = decision_line(&facts.history);
    let approval = current_approval(&facts.history);
    let decision = match (&facts.case.decision, decided) {
        (Some(d), Some(line))
            if facts.case.state != CaseState::InReview.as_str()
                && facts.case.state != CaseState::Open.as_str() =>
        {
            Some(views::DecisionView {
                decision: d.clone(),
                decided_by: line.actor.clone(),
                decided_by_viewer: line.actor == s.actor(),
                decided_at: line.at,
                approved_by: approval.map(|a| a.actor.clone()),
            })
        }
        _ => None,
    };
    let view = views::CaseView {
        id: facts.case.id,
        queue: facts.case.queue.clone(),
        state: facts.case.state.clone(),
        priority: i64::from(facts.case.priority),
        account: facts.case.account.clone().unwrap_or_default(),
        opened_at: facts.case.opened_at,
        now_ms: now,
        labels: facts.case.labels.clone(),
        matches: facts.matches,
        uploader_items: facts.uploader_items,
        earlier_decisions: facts.earlier,
        history: facts
            .history
            .iter()
            .map(|h| views::HistoryLine {
                at: h.at,
                actor: h.actor.clone(),
                action: h.action.clone(),
                from_state: h.from_state.clone(),
                to_state: h.to_state.clone(),
                note: h.note.clone(),
                decision: h.decision.clone(),
            })
            .collect(),
        media,
        settings: facts.settings,
        reveal_allowed: facts.exposure.is_none_or(|e| e.state.allows_review()),
        lease: facts
            .lease
            .as_ref()
            .filter(|l| l.expires_at > now)
            .map(|l| views::LeaseView {
                holder: facts.lease_holder.clone().unwrap_or_default(),
                held_by_viewer: l.holder == s.user.id,
                expires_at: l.expires_at,
            }),
        decision,
    };
    let viewer = viewer_with(&s, facts.exposure.as_ref());
    Ok(html(views::case_page(&viewer, &view)).into_response())
}

/// `POST /console/cases/{id}/renew`: extends the caller's lease.
pub(crate) async fn renew(
    State(state): State<AppState>,
    ConsoleId(id): ConsoleId,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> ConsoleResult<Response> {
    let s = session(&state, &headers).await?;
    s.check_csrf(Some(&f.csrf))?;
    let st = state.clone();
    let uid = s.user.id;
    blocking(move || {
        let pol = policies(&st.0.config.console);
        st.0.store
            .renew_lease(id, uid, now_ms(), pol.lease_ms)
            .map_err(lease_error)
    })
    .await?;
    Ok(Redirect::to(&format!("/console/cases/{id}")).into_response())
}

fn lease_error(e: safeguard_store::Error) -> ApiError {
    match e {
        safeguard_store::Error::Conflict(m) => ApiError::new(
            StatusCode::CONFLICT,
            "lease_not_held",
            format!("you do not hold this case ({m}); claim it again from the queue"),
        ),
        safeguard_store::Error::NotFound(m) => {
            ApiError::new(StatusCode::NOT_FOUND, "case_not_found", m)
        }
        other => other.into(),
    }
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct SkipForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// `POST /console/cases/{id}/skip`: gives the case back with a reason; it is not offered to
/// this person again.
pub(crate) async fn skip(
    State(state): State<AppState>,
    ConsoleId(id): ConsoleId,
    headers: HeaderMap,
    Form(f): Form<SkipForm>,
) -> ConsoleResult<Response> {
    let s = session(&state, &headers).await?;
    s.check_csrf(Some(&f.csrf))?;
    let reason = safeguard_console::decision::check_skip_reason(&f.reason)
        .map_err(|e| Fail::page(StatusCode::BAD_REQUEST, "invalid_request", e.to_string()))?;
    let st = state.clone();
    let s2 = s.clone();
    blocking(move || {
        let now = now_ms();
        let lease = st.0.store.lease(id)?;
        let c =
            st.0.store
                .skip_case(
                    id,
                    s2.user.id,
                    &s2.actor(),
                    &reason,
                    now,
                    &mut case_event("skipped", s2.actor()),
                )
                .map_err(lease_error)?;
        if let Some(l) = lease.filter(|l| l.holder == s2.user.id) {
            st.0.store
                .add_review_time(s2.user.id, id, (now - l.claimed_at).max(0), now)?;
        }
        Ok(c)
    })
    .await?;
    state.notify_webhooks();
    Ok(Redirect::to("/console").into_response())
}

/// `POST /console/cases/{id}/decide`: the form's fields, read as pairs because the per-item
/// fields are named after the items (`class:<object id>`, `annot:<object id>`).
pub(crate) async fn decide(
    State(state): State<AppState>,
    ConsoleId(id): ConsoleId,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> ConsoleResult<Response> {
    let s = session(&state, &headers).await?;
    let csrf = fields
        .iter()
        .find(|(n, _)| n == "csrf")
        .map(|(_, v)| v.as_str());
    s.check_csrf(csrf)?;
    if !s.roles.can_decide() {
        return Err(Fail::forbidden("only reviewers and seniors decide cases"));
    }
    let a = state.actioner()?;
    let st = state.clone();
    let s2 = s.clone();
    blocking(move || {
        let store = &st.0.store;
        let now = now_ms();
        let lease = store.lease(id)?;
        let Some(lease) = lease.filter(|l| l.holder == s2.user.id && l.expires_at > now) else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "lease_not_held",
                "you do not hold this case (your claim ran out or someone else has it); claim it again",
            ));
        };
        // The API moves cases without touching the console's leases, so a lease can outlive
        // the review: nothing (labels, a requeue) may be written onto a case that left it.
        let state_now = store.case(id)?.map(|c| c.state);
        if state_now.as_deref() != Some(CaseState::InReview.as_str()) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "case_not_in_review",
                format!(
                    "case {id} is {} now, not in review: it was moved outside the console",
                    state_now.as_deref().unwrap_or("gone")
                ),
            ));
        }
        let live: Vec<String> = store
            .case_evidence(id)?
            .into_iter()
            .filter(|e| e.wrapped_key.is_some())
            .map(|e| e.object_id)
            .collect();
        let form = DecideForm::from_pairs(&fields, &live)
            .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?;
        let note = Some(form.note.trim().to_string()).filter(|n| !n.is_empty());
        let actor = s2.actor();
        match form.decision {
            Decision::Confirmed => {
                if form.items.iter().any(|i| i.classification.is_none()) {
                    return Err(ApiError::bad_request(
                        "classification_required",
                        "a confirmation needs a classification (A1, A2, B1 or B2) for every item",
                    ));
                }
                let labels: Vec<ItemLabel> = form
                    .items
                    .iter()
                    .map(|i| ItemLabel {
                        case_id: id,
                        object_id: i.object_id.clone(),
                        classification: i.classification.clone().unwrap_or_default(),
                        annotations: i.annotations.clone(),
                        actor: actor.clone(),
                        at: now,
                    })
                    .collect();
                // One transaction: if the API moved the case since the check above, neither
                // the labels (which go into the report) nor the decision are written.
                a.transition_labelled(
                    id,
                    CaseState::Decided,
                    &actor,
                    note,
                    Some("confirmed".into()),
                    labels,
                )?;
                st.audit_after(&actor, Action::Decision, &format!("case:{id}"), "confirmed");
            }
            Decision::NotCsam => {
                // Recorded first, so a decision that fails half-way leaves no vote owed that
                // is not written down; the sender sends a row only once its case stands
                // decided "not CSAM", and cancels it if the case is decided otherwise.
                let owed = crate::source_feedback::owed_for_case(&st, id, &actor, now)?;
                if !owed.is_empty() {
                    store.record_source_feedback(&owed)?;
                }
                a.transition(id, CaseState::Decided, &actor, note, Some("not_csam".into()))?;
                st.audit_after(&actor, Action::Decision, &format!("case:{id}"), "false_positive");
                false_positive(&st, id, &actor)?;
            }
            Decision::Escalate | Decision::SecondOpinion => {
                let second = form.decision == Decision::SecondOpinion;
                let (queue, change) = if second {
                    (st.0.config.console.second_opinion_queue.clone(), "second_opinion")
                } else {
                    (st.0.config.console.escalation_queue.clone(), "escalated")
                };
                let reason = note.unwrap_or_else(|| change.replace('_', " "));
                store
                    .requeue_case(
                        id,
                        s2.user.id,
                        &actor,
                        &queue,
                        &reason,
                        second,
                        now,
                        &mut case_event(change, actor.clone()),
                    )
                    .map_err(lease_error)?;
                st.audit_after(&actor, Action::Decision, &format!("case:{id}"), change);
            }
        }
        store.drop_lease(id)?;
        store.add_review_time(s2.user.id, id, (now - lease.claimed_at).max(0), now)?;
        Ok(())
    })
    .await?;
    state.notify_webhooks();
    Ok(Redirect::to(&format!("/console/cases/{id}")).into_response())
}

/// A "not CSAM" decision: the items' hashes go to the allow-list bank (created on first
/// use), so the same false positive does not come back, and the case's `case.updated` event
/// (already written) tells the platform. The feedback owed to the hashes' sources was
/// recorded before the decision (`crate::source_feedback`).
fn false_positive(state: &AppState, id: i64, actor: &str) -> Result<(), ApiError> {
    let engine = state.engine()?;
    let bank = state.0.config.console.false_positive_bank.clone();
    if engine.bank(&bank).is_err() {
        let created = engine.create_bank(&safeguard_engine::CreateBank {
            name: bank.clone(),
            enabled: Some(true),
            enabled_ratio: None,
            pdq_threshold: None,
            kind: Some(safeguard_store::BankKind::AllowList),
            tags: vec!["console".into(), "false-positive".into()],
            classification: None,
        });
        // Two decisions racing both try to create it; the loser finds it made.
        if let Err(e) = created {
            engine.bank(&bank).map_err(|_| ApiError::from(e))?;
        }
    }
    let subs = state.0.store.case_submissions(id)?;
    for sub in subs {
        let ctx: Value = serde_json::from_str(&sub.context).unwrap_or(Value::Null);
        let mut signals = Vec::new();
        for sig in ctx["signals"].as_array().into_iter().flatten() {
            let (Some(t), Some(v)) = (sig["signal_type"].as_str(), sig["value"].as_str()) else {
                continue;
            };
            if let Ok(t) = safeguard_engine::SignalType::parse(t) {
                if !signals.iter().any(|(st, _)| *st == t) {
                    signals.push((t, v.to_string()));
                }
            }
        }
        if signals.is_empty() {
            continue;
        }
        engine.add_content(
            &bank,
            &safeguard_engine::AddContent {
                signals,
                metadata: Some(json!({"case_id": id, "decided_by": actor, "reason": "not_csam"})),
                note: Some(format!("console false positive, case {id}")),
                disable_until_ts: 0,
                original_media_uri: None,
            },
        )?;
    }
    Ok(())
}

/// `POST /console/cases/{id}/approve`: the second person of the two-person rule.
pub(crate) async fn approve(
    State(state): State<AppState>,
    ConsoleId(id): ConsoleId,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> ConsoleResult<Response> {
    let s = session(&state, &headers).await?;
    s.check_csrf(Some(&f.csrf))?;
    if !s.roles.can_approve() {
        return Err(Fail::forbidden("only seniors approve reports"));
    }
    let a = state.actioner()?;
    let st = state.clone();
    let actor = s.actor();
    blocking(move || {
        a.approve(id, &actor, None)?;
        st.audit_after(&actor, Action::Approval, &format!("case:{id}"), "");
        Ok(())
    })
    .await?;
    state.notify_webhooks();
    Ok(Redirect::to(&format!("/console/cases/{id}")).into_response())
}

/// `GET /console/approvals`: confirmed cases waiting for a second person.
pub(crate) async fn approvals(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ConsoleResult<Response> {
    let s = session(&state, &headers).await?;
    if !(s.roles.can_approve() || s.roles.can_audit()) {
        return Err(Fail::forbidden("only seniors and auditors see approvals"));
    }
    let st = state.clone();
    let actor = s.actor();
    let rows = blocking(move || {
        let cases = st.0.store.cases_awaiting_approval(200)?;
        let mut rows = Vec::with_capacity(cases.len());
        for c in cases {
            let h = st.0.store.case_history(c.id)?;
            let d = decision_line(&h);
            rows.push(views::ApprovalRow {
                case_id: c.id,
                queue: c.queue.clone(),
                decided_by: d.map(|d| d.actor.clone()).unwrap_or_default(),
                decided_by_viewer: d.is_some_and(|d| d.actor == actor),
                decided_at: d.map(|d| d.at).unwrap_or(c.updated_at),
                decision: c.decision.clone().unwrap_or_default(),
            });
        }
        Ok(rows)
    })
    .await?;
    Ok(html(views::approvals_page(&s.viewer(), &rows)).into_response())
}

/// `GET /console/team`: exposure of everyone together, for leads. Never per person: the
/// numbers are there to staff and support a team, not to rank people.
pub(crate) async fn team(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ConsoleResult<Response> {
    let s = session(&state, &headers).await?;
    if !(s.roles.can_approve() || s.roles.can_admin() || s.roles.can_audit()) {
        return Err(Fail::forbidden("only leads see the team's figures"));
    }
    let st = state.clone();
    let now = now_ms();
    let from = day_start(now) - 6 * 86_400_000;
    let (people, t) = blocking(move || Ok(st.0.store.exposure_all(from, now + 1, now)?)).await?;
    Ok(html(views::team_page(
        &s.viewer(),
        &views::TeamAggregate {
            from_ms: from,
            to_ms: now,
            people,
            reveals: t.reveals,
            visible_ms: t.visible_ms,
            review_ms: t.review_ms,
        },
    ))
    .into_response())
}
