//! [`ActionStore`] on SQLite: rules, submissions, cases, evidence, webhooks and the outbox.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::row::{col, db_err, is_unique_violation};
use super::{now_ms, SqliteStore};
use crate::action::*;
use crate::{Error, Result};

/// Labels and event types are stored joined by newlines: neither may contain one (the engine
/// validates both), and a list read back splits exactly.
fn join(list: &[String]) -> String {
    list.join("\n")
}

fn split(text: &str) -> Vec<String> {
    if text.is_empty() {
        Vec::new()
    } else {
        text.split('\n').map(str::to_owned).collect()
    }
}

pub(super) fn to_u32(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Corrupt(format!("{what} {v} out of range")))
}

const RULE_COLUMNS: &str = "id, version, position, spec, created_at";

fn rule_row(r: &Row<'_>) -> Result<StoredRule> {
    const T: &str = "rules";
    let version: i64 = col(r, 1, T)?;
    let position: Option<i64> = col(r, 2, T)?;
    Ok(StoredRule {
        id: col(r, 0, T)?,
        version: to_u32(version, "rule version")?,
        position: to_u32(position.unwrap_or(0), "rule position")?,
        spec: col(r, 3, T)?,
        created_at: col(r, 4, T)?,
    })
}

pub(super) const CASE_COLUMNS: &str =
    "id, account, state, queue, priority, report_candidate, labels, \
     items, legal_hold, decision, reported_at, opened_at, updated_at";

pub(super) fn case_row(r: &Row<'_>) -> Result<Case> {
    const T: &str = "cases";
    let priority: i64 = col(r, 4, T)?;
    let items: i64 = col(r, 7, T)?;
    let labels: String = col(r, 6, T)?;
    Ok(Case {
        id: col(r, 0, T)?,
        account: col(r, 1, T)?,
        state: col(r, 2, T)?,
        queue: col(r, 3, T)?,
        priority: i32::try_from(priority)
            .map_err(|_| Error::Corrupt(format!("case priority {priority} out of range")))?,
        report_candidate: col(r, 5, T)?,
        labels: split(&labels),
        items: to_u32(items, "case items")?,
        legal_hold: col(r, 8, T)?,
        decision: col(r, 9, T)?,
        reported_at: col(r, 10, T)?,
        opened_at: col(r, 11, T)?,
        updated_at: col(r, 12, T)?,
    })
}

const SUBMISSION_COLUMNS: &str = "id, platform_id, fingerprint, account, verdict, rule_id, \
     rule_version, context, result, case_id, event_ids, created_at";

fn submission_row(r: &Row<'_>) -> Result<StoredSubmission> {
    const T: &str = "submissions";
    let rule_id: Option<String> = col(r, 5, T)?;
    let rule_version: Option<i64> = col(r, 6, T)?;
    let rule = match (rule_id, rule_version) {
        (Some(id), Some(v)) => Some((id, to_u32(v, "rule version")?)),
        (None, None) => None,
        _ => {
            return Err(Error::Corrupt(
                "submission with half a rule reference".into(),
            ))
        }
    };
    let events: String = col(r, 10, T)?;
    Ok(StoredSubmission {
        id: col(r, 0, T)?,
        platform_id: col(r, 1, T)?,
        fingerprint: col(r, 2, T)?,
        account: col(r, 3, T)?,
        verdict: col(r, 4, T)?,
        rule,
        context: col(r, 7, T)?,
        result: col(r, 8, T)?,
        case_id: col(r, 9, T)?,
        event_ids: split(&events),
        created_at: col(r, 11, T)?,
    })
}

const EVIDENCE_COLUMNS: &str = "object_id, submission_id, case_id, blob_key, wrapped_key, \
     key_fingerprint, sha256, md5, size, media_kind, created_at, deleted_at, deletion_reason";

fn evidence_row(r: &Row<'_>) -> Result<Evidence> {
    const T: &str = "evidence";
    Ok(Evidence {
        object_id: col(r, 0, T)?,
        submission_id: col(r, 1, T)?,
        case_id: col(r, 2, T)?,
        blob_key: col(r, 3, T)?,
        wrapped_key: col(r, 4, T)?,
        key_fingerprint: col(r, 5, T)?,
        sha256: col(r, 6, T)?,
        md5: col(r, 7, T)?,
        size: col(r, 8, T)?,
        media_kind: col(r, 9, T)?,
        created_at: col(r, 10, T)?,
        deleted_at: col(r, 11, T)?,
        deletion_reason: col(r, 12, T)?,
    })
}

const WEBHOOK_COLUMNS: &str = "id, url, event_types, sealed_secret, enabled, disabled_reason, \
     failing_since, created_at, updated_at";

fn webhook_row(r: &Row<'_>) -> Result<Webhook> {
    const T: &str = "webhooks";
    let types: String = col(r, 2, T)?;
    Ok(Webhook {
        id: col(r, 0, T)?,
        url: col(r, 1, T)?,
        event_types: split(&types),
        sealed_secret: col(r, 3, T)?,
        enabled: col(r, 4, T)?,
        disabled_reason: col(r, 5, T)?,
        failing_since: col(r, 6, T)?,
        created_at: col(r, 7, T)?,
        updated_at: col(r, 8, T)?,
    })
}

fn status_of(v: Option<i64>) -> Result<Option<u16>> {
    v.map(|s| u16::try_from(s).map_err(|_| Error::Corrupt(format!("status {s} out of range"))))
        .transpose()
}

/// Runs `sql` with `params` and reads every row with `read`.
pub(super) fn all<T, P: rusqlite::Params>(
    tx: &Connection,
    sql: &str,
    p: P,
    read: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = tx.prepare_cached(sql).map_err(db_err)?;
    let mut rows = stmt.query(p).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db_err)? {
        out.push(read(r)?);
    }
    Ok(out)
}

pub(super) fn one<T, P: rusqlite::Params>(
    tx: &Connection,
    sql: &str,
    p: P,
    read: impl FnOnce(&Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    let mut stmt = tx.prepare_cached(sql).map_err(db_err)?;
    let mut rows = stmt.query(p).map_err(db_err)?;
    match rows.next().map_err(db_err)? {
        Some(r) => Ok(Some(read(r)?)),
        None => Ok(None),
    }
}

fn rules_in_force(tx: &Connection) -> Result<Vec<StoredRule>> {
    all(
        tx,
        &format!("SELECT {RULE_COLUMNS} FROM rules WHERE position IS NOT NULL ORDER BY position"),
        [],
        rule_row,
    )
}

fn latest_version(tx: &Connection, id: &str) -> Result<Option<(u32, String, Option<i64>)>> {
    one(
        tx,
        "SELECT version, spec, position FROM rules WHERE id = ?1 ORDER BY version DESC LIMIT 1",
        [id],
        |r| {
            let v: i64 = col(r, 0, "rules")?;
            Ok((
                to_u32(v, "rule version")?,
                col(r, 1, "rules")?,
                col(r, 2, "rules")?,
            ))
        },
    )
}

fn bump_generation(tx: &Connection) -> Result<i64> {
    tx.execute(
        "UPDATE rules_meta SET generation = generation + 1 WHERE one = 1",
        [],
    )
    .map_err(db_err)?;
    tx.query_row("SELECT generation FROM rules_meta WHERE one = 1", [], |r| {
        r.get(0)
    })
    .map_err(db_err)
}

/// Writes `wanted` as the set in force, in order; the shared body of every rule change.
fn write_rule_set(tx: &Connection, wanted: &[NewRule]) -> Result<RuleSetOutcome> {
    for (i, r) in wanted.iter().enumerate() {
        if wanted[..i].iter().any(|o| o.id == r.id) {
            return Err(Error::Conflict(format!(
                "rule id {:?} is given twice",
                r.id
            )));
        }
    }
    let before = rules_in_force(tx)?;
    let mut out = RuleSetOutcome::default();
    // Positions are unique among rules in force: clear them all, then set the new order.
    tx.execute(
        "UPDATE rules SET position = NULL WHERE position IS NOT NULL",
        [],
    )
    .map_err(db_err)?;
    let now = now_ms();
    for (pos, r) in wanted.iter().enumerate() {
        let pos = i64::try_from(pos).map_err(|_| Error::Backend("too many rules".into()))?;
        match latest_version(tx, &r.id)? {
            Some((v, spec, _)) if spec == r.spec && before.iter().any(|b| b.id == r.id) => {
                tx.execute(
                    "UPDATE rules SET position = ?3 WHERE id = ?1 AND version = ?2",
                    params![r.id, v, pos],
                )
                .map_err(db_err)?;
                let old_pos = before.iter().find(|b| b.id == r.id).map(|b| b.position);
                if old_pos == Some(u32::try_from(pos).unwrap_or(u32::MAX)) {
                    out.unchanged += 1;
                } else {
                    out.moved += 1;
                }
            }
            latest => {
                let existed = before.iter().any(|b| b.id == r.id);
                let version = latest.map_or(1, |(v, _, _)| v + 1);
                tx.execute(
                    "INSERT INTO rules (id, version, position, spec, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![r.id, version, pos, r.spec, now],
                )
                .map_err(db_err)?;
                if existed {
                    out.changed += 1;
                } else {
                    out.created += 1;
                }
            }
        }
    }
    out.removed = u32::try_from(
        before
            .iter()
            .filter(|b| !wanted.iter().any(|w| w.id == b.id))
            .count(),
    )
    .unwrap_or(u32::MAX);
    out.generation = bump_generation(tx)?;
    out.rules = rules_in_force(tx)?;
    Ok(out)
}

pub(super) fn case_in(tx: &Connection, id: CaseId) -> Result<Option<Case>> {
    one(
        tx,
        &format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = ?1"),
        [id],
        case_row,
    )
}

#[allow(clippy::too_many_arguments)] // one argument per column of a history line
pub(super) fn history(
    tx: &Connection,
    case: CaseId,
    at: i64,
    actor: &str,
    action: &str,
    states: (Option<&str>, Option<&str>),
    note: Option<&str>,
    decision: Option<&str>,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO case_history \
         (case_id, at, actor, action, from_state, to_state, note, decision) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            case, at, actor, action, states.0, states.1, note, decision
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

/// Stores events and one pending delivery per enabled endpoint that takes their type.
pub(super) fn write_events(tx: &Connection, events: &[NewEvent], now: i64) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let hooks = all(
        tx,
        "SELECT id, event_types FROM webhooks WHERE enabled = 1",
        [],
        |r| {
            let types: String = col(r, 1, "webhooks")?;
            Ok((col::<i64>(r, 0, "webhooks")?, split(&types)))
        },
    )?;
    for e in events {
        tx.prepare_cached(
            "INSERT INTO events (id, event_type, created_at, body) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| s.execute(params![e.id, e.event_type, e.created_at, e.body]))
        .map_err(|err| {
            if is_unique_violation(&err) {
                Error::Conflict(format!("event id {:?} is taken", e.id))
            } else {
                db_err(err)
            }
        })?;
        let seq = tx.last_insert_rowid();
        for (hook, types) in &hooks {
            if types.iter().any(|t| t == "*" || *t == e.event_type) {
                tx.prepare_cached(
                    "INSERT INTO deliveries (webhook_id, event_seq, state, attempts, \
                     next_attempt_at) VALUES (?1, ?2, 'pending', 0, ?3)",
                )
                .and_then(|mut s| s.execute(params![hook, seq, now]))
                .map_err(db_err)?;
            }
        }
    }
    Ok(())
}

fn submission_by_platform_id(
    tx: &Connection,
    platform_id: &str,
) -> Result<Option<StoredSubmission>> {
    one(
        tx,
        &format!("SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE platform_id = ?1"),
        [platform_id],
        submission_row,
    )
}

/// Joins the account's active case, or opens one. Returns the case as it is now and whether
/// it was opened.
fn join_or_open_case(
    tx: &Connection,
    account: Option<&str>,
    a: &CaseAssignment,
    submission: SubmissionId,
    at: i64,
) -> Result<(Case, bool, Vec<String>)> {
    let active = match account {
        Some(acc) => one(
            tx,
            &format!(
                "SELECT {CASE_COLUMNS} FROM cases \
                 WHERE account = ?1 AND state IN ('open', 'in_review')"
            ),
            [acc],
            case_row,
        )?,
        None => None,
    };
    let note = format!("submission {submission}");
    match active {
        Some(mut c) => {
            // The case's queue follows its most urgent item.
            if a.priority > c.priority {
                c.priority = a.priority;
                c.queue.clone_from(&a.queue);
            }
            c.report_candidate |= a.report_candidate;
            let mut added = Vec::new();
            for l in &a.labels {
                if !c.labels.contains(l) {
                    c.labels.push(l.clone());
                    added.push(l.clone());
                }
            }
            c.items += 1;
            c.updated_at = at;
            tx.prepare_cached(
                "UPDATE cases SET queue = ?2, priority = ?3, report_candidate = ?4, \
                 labels = ?5, items = ?6, updated_at = ?7 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    c.id,
                    c.queue,
                    c.priority,
                    c.report_candidate,
                    join(&c.labels),
                    c.items,
                    at
                ])
            })
            .map_err(db_err)?;
            history(
                tx,
                c.id,
                at,
                "system",
                "item_added",
                (None, None),
                Some(&note),
                None,
            )?;
            Ok((c, false, added))
        }
        None => {
            tx.prepare_cached(
                "INSERT INTO cases (account, state, queue, priority, report_candidate, labels, \
                 items, opened_at, updated_at) VALUES (?1, 'open', ?2, ?3, ?4, ?5, 1, ?6, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    account,
                    a.queue,
                    a.priority,
                    a.report_candidate,
                    join(&a.labels),
                    at
                ])
            })
            .map_err(db_err)?;
            let id = tx.last_insert_rowid();
            history(
                tx,
                id,
                at,
                "system",
                "opened",
                (None, Some("open")),
                Some(&note),
                None,
            )?;
            let c = case_in(tx, id)?
                .ok_or_else(|| Error::Backend(format!("case {id} vanished after insert")))?;
            Ok((c, true, a.labels.clone()))
        }
    }
}

/// Refuses evidence outside a case: the vault's retention clock belongs to a case.
fn check_submission(s: &NewSubmission) -> Result<()> {
    if s.evidence.is_some() && s.case.is_none() {
        return Err(Error::Backend(
            "evidence is kept only for items in a case".into(),
        ));
    }
    Ok(())
}

/// Records one submission inside the caller's transaction (see
/// [`ActionStore::record_submission`]).
fn record_submission_in(
    tx: &Connection,
    s: &NewSubmission,
    events: &mut dyn FnMut(&Recorded) -> Vec<NewEvent>,
) -> Result<SubmitOutcome> {
    match precheck_submission(tx, s)? {
        Some(replayed) => Ok(replayed),
        None => write_submission(tx, s, events),
    }
}

/// The checks of a submission that come before any write: a replay (the stored outcome) or
/// a clash (`Conflict`). `None`: record it.
fn precheck_submission(tx: &Connection, s: &NewSubmission) -> Result<Option<SubmitOutcome>> {
    check_submission(s)?;
    match submission_by_platform_id(tx, &s.platform_id)? {
        None => Ok(None),
        Some(existing) if existing.fingerprint == s.fingerprint => {
            Ok(Some(SubmitOutcome::Replayed(existing)))
        }
        Some(_) => Err(Error::Conflict(format!(
            "content id {:?} was already submitted with other content",
            s.platform_id
        ))),
    }
}

/// Writes a submission that passed [`precheck_submission`]. Any error here is the backend's
/// and fails the whole transaction.
fn write_submission(
    tx: &Connection,
    s: &NewSubmission,
    events: &mut dyn FnMut(&Recorded) -> Vec<NewEvent>,
) -> Result<SubmitOutcome> {
    let (rule_id, rule_version) = match &s.rule {
        Some((id, v)) => (Some(id.as_str()), Some(*v)),
        None => (None, None),
    };
    tx.prepare_cached(
        "INSERT INTO submissions (platform_id, fingerprint, account, verdict, rule_id, \
             rule_version, context, result, event_ids, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '', ?9)",
    )
    .and_then(|mut st| {
        st.execute(params![
            s.platform_id,
            s.fingerprint,
            s.account,
            s.verdict,
            rule_id,
            rule_version,
            s.context,
            s.result,
            s.created_at
        ])
    })
    .map_err(db_err)?;
    let submission_id = tx.last_insert_rowid();
    let (case, opened, new_labels) = match &s.case {
        Some(a) => {
            let (c, opened, new_labels) =
                join_or_open_case(tx, s.account.as_deref(), a, submission_id, s.created_at)?;
            (Some(c), opened, new_labels)
        }
        None => (None, false, Vec::new()),
    };
    if let (Some(e), Some(c)) = (&s.evidence, &case) {
        tx.prepare_cached(
            "INSERT INTO evidence (object_id, submission_id, case_id, blob_key, \
                 wrapped_key, key_fingerprint, sha256, md5, size, media_kind, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .and_then(|mut st| {
            st.execute(params![
                e.object_id,
                submission_id,
                c.id,
                e.blob_key,
                e.wrapped_key,
                e.key_fingerprint,
                e.sha256,
                e.md5,
                e.size,
                e.media_kind,
                s.created_at
            ])
        })
        .map_err(db_err)?;
    }
    let recorded = Recorded {
        submission_id,
        case: case.clone(),
        case_opened: opened,
        new_labels,
    };
    let evs = events(&recorded);
    write_events(tx, &evs, s.created_at)?;
    let ids: Vec<String> = evs.iter().map(|e| e.id.clone()).collect();
    // An allowed item (no case, no events) already has what the insert wrote.
    if case.is_some() || !ids.is_empty() {
        tx.prepare_cached("UPDATE submissions SET case_id = ?2, event_ids = ?3 WHERE id = ?1")
            .and_then(|mut st| {
                st.execute(params![
                    submission_id,
                    case.as_ref().map(|c| c.id),
                    join(&ids)
                ])
            })
            .map_err(db_err)?;
    }
    // Everything stored is known here; reading the row back would cost the writer a query.
    let stored = StoredSubmission {
        id: submission_id,
        platform_id: s.platform_id.clone(),
        fingerprint: s.fingerprint.clone(),
        account: s.account.clone(),
        verdict: s.verdict.clone(),
        rule: s.rule.clone(),
        context: s.context.clone(),
        result: s.result.clone(),
        case_id: case.as_ref().map(|c| c.id),
        event_ids: ids,
        created_at: s.created_at,
    };
    Ok(SubmitOutcome::Recorded(stored))
}

/// Logs one attempt inside the caller's transaction (see
/// [`ActionStore::record_delivery_attempt`]).
fn record_attempt_in(
    tx: &Connection,
    delivery: DeliveryId,
    a: &DeliveryAttempt,
    next: DeliveryNext,
) -> Result<()> {
    let (state, next_at, done_at, only_pending) = next.row_update(a.at);
    // One statement per attempt for the delivery row (every delivered event passes here,
    // so under load this is the outbox's hottest write); the right-hand sides read the row
    // as it was before this update.
    let webhook: i64 = tx
        .prepare_cached(
            "UPDATE deliveries SET attempts = attempts + 1, \
             first_attempt_at = coalesce(first_attempt_at, ?2), last_status = ?3, \
             last_error = ?4, \
             state = CASE WHEN NOT ?8 OR state = 'pending' THEN ?5 ELSE state END, \
             next_attempt_at = CASE WHEN NOT ?8 OR state = 'pending' THEN ?6 \
                               ELSE next_attempt_at END, \
             done_at = CASE WHEN NOT ?8 OR state = 'pending' THEN ?7 ELSE done_at END \
             WHERE id = ?1 RETURNING webhook_id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    delivery,
                    a.at,
                    a.status,
                    a.error,
                    state,
                    next_at,
                    done_at,
                    only_pending
                ],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(db_err)?
        .ok_or_else(|| Error::NotFound(format!("delivery {delivery}")))?;
    tx.prepare_cached(
        "INSERT INTO delivery_attempts (delivery_id, at, status, latency_ms, \
             response_excerpt, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            delivery,
            a.at,
            a.status,
            a.latency_ms,
            a.response_excerpt,
            a.error
        ])
    })
    .map_err(db_err)?;
    // The failure run: any success ends it (no write when none is running); a failure
    // starts it if none is running.
    if next == DeliveryNext::Delivered {
        tx.prepare_cached(
            "UPDATE webhooks SET failing_since = NULL \
             WHERE id = ?1 AND failing_since IS NOT NULL",
        )
        .and_then(|mut s| s.execute([webhook]))
        .map_err(db_err)?;
    } else {
        tx.prepare_cached(
            "UPDATE webhooks SET failing_since = coalesce(failing_since, ?2) WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![webhook, a.at]))
        .map_err(db_err)?;
    }
    Ok(())
}

/// The columns [`due_row`] reads: a delivery `d`, its webhook `w` and its event `e`.
const DUE_COLUMNS: &str = "d.id, w.id, w.url, w.sealed_secret, e.id, e.event_type, e.body, \
                           d.attempts, d.first_attempt_at, d.next_attempt_at";

fn due_row(r: &Row<'_>) -> Result<DueDelivery> {
    const T: &str = "deliveries";
    let attempts: i64 = col(r, 7, T)?;
    Ok(DueDelivery {
        delivery_id: col(r, 0, T)?,
        webhook_id: col(r, 1, T)?,
        url: col(r, 2, T)?,
        sealed_secret: col(r, 3, T)?,
        event_id: col(r, 4, T)?,
        event_type: col(r, 5, T)?,
        body: col(r, 6, T)?,
        attempts: to_u32(attempts, "attempts")?,
        first_attempt_at: col(r, 8, T)?,
        next_attempt_at: col(r, 9, T)?,
    })
}

impl ActionStore for SqliteStore {
    fn rules(&self) -> Result<Vec<StoredRule>> {
        self.read(|tx| rules_in_force(tx))
    }

    fn rules_generation(&self) -> Result<i64> {
        self.read(|tx| {
            // Read for every submission: kept prepared.
            tx.prepare_cached("SELECT generation FROM rules_meta WHERE one = 1")
                .and_then(|mut st| st.query_row([], |r| r.get(0)))
                .map_err(db_err)
        })
    }

    fn rule_history(&self, id: &str) -> Result<Vec<StoredRule>> {
        self.read(|tx| {
            all(
                tx,
                &format!("SELECT {RULE_COLUMNS} FROM rules WHERE id = ?1 ORDER BY version"),
                [id],
                rule_row,
            )
        })
    }

    fn replace_rules(&self, rules: &[NewRule]) -> Result<RuleSetOutcome> {
        self.write(|tx| write_rule_set(tx, rules))
    }

    fn put_rule(
        &self,
        rule: &NewRule,
        position: Option<u32>,
        max_rules: usize,
    ) -> Result<RuleSetOutcome> {
        self.write(|tx| {
            let now: Vec<NewRule> = rules_in_force(tx)?
                .into_iter()
                .map(|r| NewRule {
                    id: r.id,
                    spec: r.spec,
                })
                .collect();
            write_rule_set(tx, &put_into(now, rule, position, max_rules)?)
        })
    }

    fn delete_rule(&self, id: &str) -> Result<RuleSetOutcome> {
        self.write(|tx| {
            let mut wanted: Vec<NewRule> = rules_in_force(tx)?
                .into_iter()
                .map(|r| NewRule {
                    id: r.id,
                    spec: r.spec,
                })
                .collect();
            let before = wanted.len();
            wanted.retain(|r| r.id != id);
            if wanted.len() == before {
                return Err(Error::NotFound(format!("rule {id:?}")));
            }
            write_rule_set(tx, &wanted)
        })
    }

    fn submission(&self, platform_id: &str) -> Result<Option<StoredSubmission>> {
        self.read(|tx| submission_by_platform_id(tx, platform_id))
    }

    fn record_submission(
        &self,
        s: &NewSubmission,
        events: &mut dyn FnMut(&Recorded) -> Vec<NewEvent>,
    ) -> Result<SubmitOutcome> {
        self.write(|tx| record_submission_in(tx, s, events))
    }

    fn record_submissions(
        &self,
        batch: &mut [SubmissionJob],
    ) -> Result<Vec<Result<SubmitOutcome>>> {
        self.write(|tx| {
            let mut out = Vec::with_capacity(batch.len());
            for job in batch.iter_mut() {
                // The refusals come before any write, so a refused item needs no savepoint
                // (whose statement journal would cost every item a page copy): what fails
                // after them is the backend, and fails the whole batch.
                match precheck_submission(tx, &job.submission) {
                    Ok(Some(replayed)) => out.push(Ok(replayed)),
                    Ok(None) => {
                        out.push(Ok(write_submission(tx, &job.submission, &mut *job.events)?))
                    }
                    Err(e) => out.push(Err(e)),
                }
            }
            Ok(out)
        })
    }

    fn cases(&self, f: &CaseFilter) -> Result<Vec<Case>> {
        self.read(|tx| {
            let limit = i64::try_from(f.limit).unwrap_or(i64::MAX);
            all(
                tx,
                &format!(
                    "SELECT {CASE_COLUMNS} FROM cases \
                     WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR queue = ?2) \
                     AND (?3 IS NULL OR account = ?3) AND (?4 IS NULL OR opened_at >= ?4) \
                     AND (?5 IS NULL OR opened_at < ?5) AND (?6 IS NULL OR id < ?6) \
                     AND (?8 IS NULL OR EXISTS (SELECT 1 FROM case_history h \
                          WHERE h.case_id = cases.id AND h.action = ?8)) \
                     ORDER BY id DESC LIMIT ?7"
                ),
                params![
                    f.state,
                    f.queue,
                    f.account,
                    f.since,
                    f.until,
                    f.before,
                    limit,
                    f.with_history
                ],
                case_row,
            )
        })
    }

    fn case(&self, id: CaseId) -> Result<Option<Case>> {
        self.read(|tx| case_in(tx, id))
    }

    fn case_submissions(&self, id: CaseId) -> Result<Vec<StoredSubmission>> {
        self.read(|tx| {
            all(
                tx,
                &format!(
                    "SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE case_id = ?1 ORDER BY id"
                ),
                [id],
                submission_row,
            )
        })
    }

    fn case_history(&self, id: CaseId) -> Result<Vec<CaseHistory>> {
        self.read(|tx| {
            all(
                tx,
                "SELECT at, actor, action, from_state, to_state, note, decision \
                 FROM case_history WHERE case_id = ?1 ORDER BY id",
                [id],
                |r| {
                    const T: &str = "case_history";
                    Ok(CaseHistory {
                        at: col(r, 0, T)?,
                        actor: col(r, 1, T)?,
                        action: col(r, 2, T)?,
                        from_state: col(r, 3, T)?,
                        to_state: col(r, 4, T)?,
                        note: col(r, 5, T)?,
                        decision: col(r, 6, T)?,
                    })
                },
            )
        })
    }

    fn transition_case(
        &self,
        id: CaseId,
        t: &CaseTransition,
        events: &mut dyn FnMut(&Case) -> Vec<NewEvent>,
    ) -> Result<Case> {
        self.write(|tx| {
            let case = case_in(tx, id)?.ok_or_else(|| Error::NotFound(format!("case {id}")))?;
            if case.state != t.from {
                return Err(Error::Conflict(format!(
                    "case {id} is {}, not {}",
                    case.state, t.from
                )));
            }
            let reported_at = if t.to == "reported" {
                Some(t.at)
            } else {
                case.reported_at
            };
            let decision = t.decision.clone().or(case.decision.clone());
            tx.prepare_cached(
                "UPDATE cases SET state = ?2, updated_at = ?3, reported_at = ?4, decision = ?5 \
                 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id, t.to, t.at, reported_at, decision]))
            .map_err(|e| {
                if is_unique_violation(&e) {
                    // Reopening a case while the account already has another active one.
                    Error::Conflict(format!(
                        "the account of case {id} already has an active case"
                    ))
                } else {
                    db_err(e)
                }
            })?;
            history(
                tx,
                id,
                t.at,
                &t.actor,
                "state",
                (Some(&t.from), Some(&t.to)),
                t.note.as_deref(),
                t.decision.as_deref(),
            )?;
            if let Some(l) = t.labels.iter().find(|l| l.case_id != id) {
                return Err(Error::Conflict(format!(
                    "a label of case {} in the transition of case {id}",
                    l.case_id
                )));
            }
            super::console::write_labels(tx, &t.labels)?;
            let case = case_in(tx, id)?.ok_or_else(|| Error::NotFound(format!("case {id}")))?;
            let evs = events(&case);
            write_events(tx, &evs, t.at)?;
            Ok(case)
        })
    }

    fn note_case(&self, id: CaseId, actor: &str, action: &str, note: &str, at: i64) -> Result<()> {
        self.write(|tx| {
            if case_in(tx, id)?.is_none() {
                return Err(Error::NotFound(format!("case {id}")));
            }
            history(tx, id, at, actor, action, (None, None), Some(note), None)
        })
    }

    fn set_legal_hold(&self, id: CaseId, hold: bool, actor: &str, at: i64) -> Result<Case> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE cases SET legal_hold = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, hold, at],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(Error::NotFound(format!("case {id}")));
            }
            let note = if hold { "placed" } else { "lifted" };
            history(
                tx,
                id,
                at,
                actor,
                "legal_hold",
                (None, None),
                Some(note),
                None,
            )?;
            case_in(tx, id)?.ok_or_else(|| Error::NotFound(format!("case {id}")))
        })
    }

    fn approve_case(
        &self,
        id: CaseId,
        a: &CaseApproval,
        events: &mut dyn FnMut(&Case) -> Vec<NewEvent>,
    ) -> Result<Case> {
        self.write(|tx| {
            let case = case_in(tx, id)?.ok_or_else(|| Error::NotFound(format!("case {id}")))?;
            if case.state != "decided" {
                return Err(Error::Conflict(format!(
                    "case {id} is {}, not decided",
                    case.state
                )));
            }
            if case.updated_at != a.seen_updated_at {
                return Err(Error::Conflict(format!("case {id} changed meanwhile")));
            }
            tx.execute(
                "UPDATE cases SET updated_at = ?2 WHERE id = ?1",
                params![id, a.at],
            )
            .map_err(db_err)?;
            history(
                tx,
                id,
                a.at,
                &a.actor,
                "approved",
                (None, None),
                a.note.as_deref(),
                None,
            )?;
            let case = case_in(tx, id)?.ok_or_else(|| Error::NotFound(format!("case {id}")))?;
            let evs = events(&case);
            write_events(tx, &evs, a.at)?;
            Ok(case)
        })
    }

    fn case_history_between(
        &self,
        from: i64,
        to: i64,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<CaseHistoryRow>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|tx| {
            all(
                tx,
                "SELECT id, case_id, at, actor, action, from_state, to_state, note, decision \
                 FROM case_history WHERE at >= ?1 AND at < ?2 AND id > ?3 ORDER BY id LIMIT ?4",
                params![from, to, after_id, limit],
                |r| {
                    const T: &str = "case_history";
                    Ok(CaseHistoryRow {
                        id: col(r, 0, T)?,
                        case_id: col(r, 1, T)?,
                        entry: CaseHistory {
                            at: col(r, 2, T)?,
                            actor: col(r, 3, T)?,
                            action: col(r, 4, T)?,
                            from_state: col(r, 5, T)?,
                            to_state: col(r, 6, T)?,
                            note: col(r, 7, T)?,
                            decision: col(r, 8, T)?,
                        },
                    })
                },
            )
        })
    }

    fn submissions_between(
        &self,
        from: i64,
        to: i64,
        after: Option<(i64, SubmissionId)>,
        limit: usize,
    ) -> Result<Vec<StoredSubmission>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Without a cursor, start just before the period: (from, 0) excludes nothing at
        // `from` because ids start at 1.
        let (at, id) = after.unwrap_or((from, 0));
        self.read(|tx| {
            all(
                tx,
                &format!(
                    "SELECT {SUBMISSION_COLUMNS} FROM submissions \
                     WHERE (created_at, id) > (?1, ?2) AND created_at >= ?3 AND created_at < ?4 \
                     ORDER BY created_at, id LIMIT ?5"
                ),
                params![at, id, from, to, limit],
                submission_row,
            )
        })
    }

    fn case_evidence(&self, id: CaseId) -> Result<Vec<Evidence>> {
        self.read(|tx| {
            all(
                tx,
                &format!(
                    "SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE case_id = ?1 ORDER BY created_at"
                ),
                [id],
                evidence_row,
            )
        })
    }

    fn evidence(&self, object_id: &str) -> Result<Option<Evidence>> {
        self.read(|tx| evidence_in(tx, object_id))
    }

    fn expired_evidence(
        &self,
        now: i64,
        after_report_ms: i64,
        unreported_ms: i64,
        limit: usize,
    ) -> Result<Vec<Evidence>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // [`crate::action::evidence_expired`]'s rule, as cut-offs computed here: a sum in SQL
        // would overflow for a period too long to add (PostgreSQL fails, SQLite goes to float).
        let reported_by = now.saturating_sub(after_report_ms);
        let created_by = now.saturating_sub(unreported_ms);
        self.read(|tx| {
            all(
                tx,
                &format!(
                    "SELECT {} FROM evidence e JOIN cases c ON c.id = e.case_id \
                     WHERE e.deleted_at IS NULL AND c.legal_hold = 0 \
                     AND ((c.reported_at IS NOT NULL AND c.reported_at <= ?1) \
                       OR (c.reported_at IS NULL AND e.created_at <= ?2 \
                           AND NOT {AWAITING_REPORT_SQL})) \
                     ORDER BY e.created_at LIMIT ?3",
                    EVIDENCE_COLUMNS
                        .split(", ")
                        .map(|c| format!("e.{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                params![reported_by, created_by, limit],
                evidence_row,
            )
        })
    }

    fn destroy_evidence(
        &self,
        object_id: &str,
        at: i64,
        after_report_ms: i64,
        unreported_ms: i64,
        reason: &str,
    ) -> Result<Evidence> {
        self.write(|tx| {
            let ev = evidence_in(tx, object_id)?
                .ok_or_else(|| Error::NotFound(format!("evidence {object_id:?}")))?;
            if ev.deleted_at.is_some() {
                return Ok(ev);
            }
            let (held, reported_at, state, decision): (bool, Option<i64>, String, Option<String>) =
                tx.query_row(
                    "SELECT legal_hold, reported_at, state, decision FROM cases WHERE id = ?1",
                    [ev.case_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .map_err(db_err)?;
            refuse_destruction(
                &ev,
                held,
                reported_at,
                (&state, decision.as_deref()),
                at,
                after_report_ms,
                unreported_ms,
            )?;
            tx.execute(
                "UPDATE evidence SET wrapped_key = NULL, deleted_at = ?2, deletion_reason = ?3 \
                 WHERE object_id = ?1",
                params![object_id, at, reason],
            )
            .map_err(db_err)?;
            tx.execute(
                "INSERT INTO access_log (at, actor, action, object) VALUES (?1, 'system', ?2, ?3)",
                params![at, format!("destroy:{reason}"), object_id],
            )
            .map_err(db_err)?;
            evidence_in(tx, object_id)?
                .ok_or_else(|| Error::NotFound(format!("evidence {object_id:?}")))
        })
    }

    fn evidence_blobs_left(&self, limit: usize) -> Result<Vec<Evidence>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|tx| {
            all(
                tx,
                &format!(
                    "SELECT {EVIDENCE_COLUMNS} FROM evidence \
                     WHERE deleted_at IS NOT NULL AND blob_deleted_at IS NULL \
                     ORDER BY deleted_at, object_id LIMIT ?1"
                ),
                [limit],
                evidence_row,
            )
        })
    }

    fn mark_blob_deleted(&self, object_id: &str, at: i64) -> Result<()> {
        self.write(|tx| {
            let ev = evidence_in(tx, object_id)?
                .ok_or_else(|| Error::NotFound(format!("evidence {object_id:?}")))?;
            if ev.deleted_at.is_none() {
                return Err(Error::Conflict(format!(
                    "evidence {object_id:?} is not destroyed; its blob is still the evidence"
                )));
            }
            tx.execute(
                "UPDATE evidence SET blob_deleted_at = coalesce(blob_deleted_at, ?2) \
                 WHERE object_id = ?1",
                params![object_id, at],
            )
            .map_err(db_err)?;
            Ok(())
        })
    }

    fn log_access(&self, actor: &str, action: &str, object: &str, at: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO access_log (at, actor, action, object) VALUES (?1, ?2, ?3, ?4)",
                params![at, actor, action, object],
            )
            .map_err(db_err)?;
            Ok(())
        })
    }

    fn access_log(&self, object: &str) -> Result<Vec<(i64, String, String)>> {
        self.read(|tx| {
            all(
                tx,
                "SELECT at, actor, action FROM access_log WHERE object = ?1 ORDER BY id",
                [object],
                |r| {
                    Ok((
                        col(r, 0, "access_log")?,
                        col(r, 1, "access_log")?,
                        col(r, 2, "access_log")?,
                    ))
                },
            )
        })
    }

    fn create_webhook(&self, w: &NewWebhook) -> Result<Webhook> {
        self.write(|tx| {
            let now = now_ms();
            tx.execute(
                "INSERT INTO webhooks (url, event_types, sealed_secret, enabled, created_at, \
                 updated_at) VALUES (?1, ?2, ?3, 1, ?4, ?4)",
                params![w.url, join(&w.event_types), w.sealed_secret, now],
            )
            .map_err(db_err)?;
            let id = tx.last_insert_rowid();
            webhook_in(tx, id)?.ok_or_else(|| Error::Backend("webhook vanished".into()))
        })
    }

    fn webhooks(&self) -> Result<Vec<Webhook>> {
        self.read(|tx| {
            all(
                tx,
                &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY id"),
                [],
                webhook_row,
            )
        })
    }

    fn webhook(&self, id: WebhookId) -> Result<Option<Webhook>> {
        self.read(|tx| webhook_in(tx, id))
    }

    fn delete_webhook(&self, id: WebhookId) -> Result<Webhook> {
        self.write(|tx| {
            let w = webhook_in(tx, id)?.ok_or_else(|| Error::NotFound(format!("webhook {id}")))?;
            tx.execute("DELETE FROM webhooks WHERE id = ?1", [id])
                .map_err(db_err)?;
            Ok(w)
        })
    }

    fn set_webhook_enabled(
        &self,
        id: WebhookId,
        enabled: bool,
        reason: Option<&str>,
    ) -> Result<(Webhook, bool)> {
        self.write(|tx| {
            let before = webhook_in(tx, id)?
                .ok_or_else(|| Error::NotFound(format!("webhook {id}")))?
                .enabled;
            let n = tx
                .execute(
                    "UPDATE webhooks SET enabled = ?2, \
                     disabled_reason = CASE WHEN ?2 THEN NULL \
                                            ELSE coalesce(disabled_reason, ?3) END, \
                     failing_since = CASE WHEN ?2 THEN NULL ELSE failing_since END, \
                     updated_at = ?4 WHERE id = ?1",
                    params![id, enabled, reason, now_ms()],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(Error::NotFound(format!("webhook {id}")));
            }
            let w = webhook_in(tx, id)?.ok_or_else(|| Error::NotFound(format!("webhook {id}")))?;
            Ok((w, before))
        })
    }

    fn set_webhook_secret(
        &self,
        id: WebhookId,
        expected: &[u8],
        sealed_secret: &[u8],
    ) -> Result<Webhook> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE webhooks SET sealed_secret = ?3, updated_at = ?4 \
                     WHERE id = ?1 AND sealed_secret = ?2",
                    params![id, expected, sealed_secret, now_ms()],
                )
                .map_err(db_err)?;
            let w = webhook_in(tx, id)?.ok_or_else(|| Error::NotFound(format!("webhook {id}")))?;
            if n == 0 {
                return Err(Error::Conflict(format!(
                    "webhook {id}'s secrets changed meanwhile"
                )));
            }
            Ok(w)
        })
    }

    fn disable_webhook(&self, id: WebhookId, reason: &str, at: i64) -> Result<u64> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE webhooks SET enabled = 0, \
                     disabled_reason = coalesce(disabled_reason, ?2), updated_at = ?3 \
                     WHERE id = ?1",
                    params![id, reason, at],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(Error::NotFound(format!("webhook {id}")));
            }
            let dead = tx
                .execute(
                    "UPDATE deliveries SET state = 'dead', done_at = ?2 \
                     WHERE webhook_id = ?1 AND state = 'pending'",
                    params![id, at],
                )
                .map_err(db_err)?;
            Ok(dead as u64)
        })
    }

    fn append_events(&self, events: &[NewEvent], at: i64) -> Result<()> {
        self.write(|tx| write_events(tx, events, at))
    }

    fn enqueue_delivery(
        &self,
        webhook: WebhookId,
        event: &NewEvent,
        due_at: i64,
    ) -> Result<DeliveryId> {
        self.write(|tx| {
            if webhook_in(tx, webhook)?.is_none() {
                return Err(Error::NotFound(format!("webhook {webhook}")));
            }
            let seq: Option<i64> = tx
                .query_row("SELECT seq FROM events WHERE id = ?1", [&event.id], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db_err)?;
            let seq = match seq {
                Some(s) => s,
                None => {
                    tx.execute(
                        "INSERT INTO events (id, event_type, created_at, body) \
                         VALUES (?1, ?2, ?3, ?4)",
                        params![event.id, event.event_type, event.created_at, event.body],
                    )
                    .map_err(db_err)?;
                    tx.last_insert_rowid()
                }
            };
            tx.execute(
                "INSERT INTO deliveries (webhook_id, event_seq, state, attempts, \
                 next_attempt_at) VALUES (?1, ?2, 'pending', 0, ?3)",
                params![webhook, seq, due_at],
            )
            .map_err(db_err)?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn events_since(&self, after_seq: i64, limit: usize) -> Result<Vec<StoredEvent>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|tx| {
            all(
                tx,
                "SELECT seq, id, event_type, created_at, body FROM events WHERE seq > ?1 \
                 ORDER BY seq LIMIT ?2",
                params![after_seq, limit],
                |r| {
                    const T: &str = "events";
                    Ok(StoredEvent {
                        seq: col(r, 0, T)?,
                        id: col(r, 1, T)?,
                        event_type: col(r, 2, T)?,
                        created_at: col(r, 3, T)?,
                        body: col(r, 4, T)?,
                    })
                },
            )
        })
    }

    fn due_deliveries(&self, now: i64, limit: usize) -> Result<Vec<DueDelivery>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|tx| {
            // The head of each enabled endpoint's queue, through the partial index; only
            // the head may go, so a retrying event holds back the ones behind it.
            all(
                tx,
                &format!(
                    "SELECT {DUE_COLUMNS} \
                     FROM webhooks w \
                     JOIN deliveries d ON d.id = (SELECT min(id) FROM deliveries \
                                                  WHERE webhook_id = w.id AND state = 'pending') \
                     JOIN events e ON e.seq = d.event_seq \
                     WHERE w.enabled = 1 AND d.next_attempt_at <= ?1 \
                     ORDER BY d.id LIMIT ?2"
                ),
                params![now, limit],
                due_row,
            )
        })
    }

    fn queued_deliveries(
        &self,
        webhook: WebhookId,
        after: DeliveryId,
        now: i64,
        limit: usize,
    ) -> Result<Vec<DueDelivery>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|tx| {
            if webhook_in(tx, webhook)?.is_none() {
                return Err(Error::NotFound(format!("webhook {webhook}")));
            }
            let queued = all(
                tx,
                &format!(
                    "SELECT {DUE_COLUMNS} \
                     FROM webhooks w \
                     JOIN deliveries d ON d.webhook_id = w.id \
                     JOIN events e ON e.seq = d.event_seq \
                     WHERE w.id = ?1 AND w.enabled = 1 AND d.state = 'pending' AND d.id > ?2 \
                     ORDER BY d.id LIMIT ?3"
                ),
                params![webhook, after, limit],
                due_row,
            )?;
            // next_attempt_at is not monotonic in id (a redriven delivery is due at the
            // redrive), so the run ends at the first one not yet due rather than skipping it.
            let due: Vec<DueDelivery> = queued
                .into_iter()
                .take_while(|d| d.next_attempt_at <= now)
                .collect();
            Ok(due)
        })
    }

    fn next_delivery_at(&self) -> Result<Option<i64>> {
        self.read(|tx| {
            tx.query_row(
                "SELECT min(d.next_attempt_at) FROM webhooks w \
                 JOIN deliveries d ON d.id = (SELECT min(id) FROM deliveries \
                                              WHERE webhook_id = w.id AND state = 'pending') \
                 WHERE w.enabled = 1",
                [],
                |r| r.get(0),
            )
            .map_err(db_err)
        })
    }

    fn record_delivery_attempt(
        &self,
        delivery: DeliveryId,
        a: &DeliveryAttempt,
        next: DeliveryNext,
    ) -> Result<()> {
        self.write(|tx| record_attempt_in(tx, delivery, a, next))
    }

    fn record_delivery_attempts(
        &self,
        batch: &[(DeliveryId, DeliveryAttempt, DeliveryNext)],
    ) -> Result<()> {
        self.write(|tx| {
            for (delivery, a, next) in batch {
                record_attempt_in(tx, *delivery, a, *next)?;
            }
            Ok(())
        })
    }

    fn delivery_attempts(&self, delivery: DeliveryId) -> Result<Vec<DeliveryAttempt>> {
        self.read(|tx| {
            let known: Option<i64> = tx
                .query_row("SELECT id FROM deliveries WHERE id = ?1", [delivery], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db_err)?;
            if known.is_none() {
                return Err(Error::NotFound(format!("delivery {delivery}")));
            }
            all(
                tx,
                "SELECT at, status, latency_ms, response_excerpt, error FROM delivery_attempts \
                 WHERE delivery_id = ?1 ORDER BY id",
                [delivery],
                |r| {
                    const T: &str = "delivery_attempts";
                    Ok(DeliveryAttempt {
                        at: col(r, 0, T)?,
                        status: status_of(col(r, 1, T)?)?,
                        latency_ms: col(r, 2, T)?,
                        response_excerpt: col(r, 3, T)?,
                        error: col(r, 4, T)?,
                    })
                },
            )
        })
    }

    fn dead_letters(&self, webhook: WebhookId) -> Result<Vec<DeadLetter>> {
        self.read(|tx| {
            all(
                tx,
                "SELECT d.id, e.id, e.event_type, d.attempts, d.last_status, d.last_error, \
                        d.done_at, d.first_attempt_at \
                 FROM deliveries d JOIN events e ON e.seq = d.event_seq \
                 WHERE d.webhook_id = ?1 AND d.state = 'dead' ORDER BY d.id",
                [webhook],
                |r| {
                    const T: &str = "deliveries";
                    let attempts: i64 = col(r, 3, T)?;
                    let dead_at: Option<i64> = col(r, 6, T)?;
                    Ok(DeadLetter {
                        delivery_id: col(r, 0, T)?,
                        event_id: col(r, 1, T)?,
                        event_type: col(r, 2, T)?,
                        attempts: to_u32(attempts, "attempts")?,
                        last_status: status_of(col(r, 4, T)?)?,
                        last_error: col(r, 5, T)?,
                        first_attempt_at: col(r, 7, T)?,
                        dead_at: dead_at.unwrap_or(0),
                    })
                },
            )
        })
    }

    fn redrive(&self, webhook: WebhookId, ids: Option<&[DeliveryId]>, now: i64) -> Result<u64> {
        self.write(|tx| {
            if webhook_in(tx, webhook)?.is_none() {
                return Err(Error::NotFound(format!("webhook {webhook}")));
            }
            const SQL: &str = "UPDATE deliveries SET state = 'pending', attempts = 0, \
                 first_attempt_at = NULL, next_attempt_at = ?2, done_at = NULL \
                 WHERE webhook_id = ?1 AND state = 'dead'";
            let n = match ids {
                None => tx.execute(SQL, params![webhook, now]).map_err(db_err)?,
                Some(ids) => {
                    let mut n = 0;
                    for id in ids {
                        n += tx
                            .execute(&format!("{SQL} AND id = ?3"), params![webhook, now, id])
                            .map_err(db_err)?;
                    }
                    n
                }
            };
            Ok(n as u64)
        })
    }

    fn dead_letter_pending(&self, webhook: WebhookId, at: i64) -> Result<u64> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE deliveries SET state = 'dead', done_at = ?2 \
                     WHERE webhook_id = ?1 AND state = 'pending'",
                    params![webhook, at],
                )
                .map_err(db_err)?;
            Ok(n as u64)
        })
    }

    fn outbox_counts(&self) -> Result<OutboxCounts> {
        self.read(|tx| {
            let count = |sql: &str| -> Result<u64> {
                let n: i64 = tx.query_row(sql, [], |r| r.get(0)).map_err(db_err)?;
                Ok(u64::try_from(n).unwrap_or(0))
            };
            Ok(OutboxCounts {
                events: count("SELECT count(*) FROM events")?,
                pending: count("SELECT count(*) FROM deliveries WHERE state = 'pending'")?,
                delivered: count("SELECT count(*) FROM deliveries WHERE state = 'delivered'")?,
                dead: count("SELECT count(*) FROM deliveries WHERE state = 'dead'")?,
                disabled_webhooks: count("SELECT count(*) FROM webhooks WHERE enabled = 0")?,
            })
        })
    }
}

fn evidence_in(tx: &Connection, object_id: &str) -> Result<Option<Evidence>> {
    one(
        tx,
        &format!("SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE object_id = ?1"),
        [object_id],
        evidence_row,
    )
}

fn webhook_in(tx: &Connection, id: WebhookId) -> Result<Option<Webhook>> {
    one(
        tx,
        &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1"),
        [id],
        webhook_row,
    )
}
