//! [`ConsoleStore`] on PostgreSQL. The statements and their order are SQLite's
//! (`crate::sqlite::console`), so both stores pass one conformance suite; what differs is
//! PostgreSQL's types (BOOLEAN, BYTEA, `RETURNING id`, `sum` cast back to BIGINT).
//!
//! Every write holds the store's write lock (see `crate::postgres`), so a claim's choice of
//! the next case and its taking of the lease cannot interleave with another claim from any
//! process on the database. The claim's reads also lock the chosen row (`FOR UPDATE SKIP
//! LOCKED`), so the guarantee does not rest on the write lock alone: were writers ever to run
//! concurrently, a second claimer would pass over a row being claimed, not take it too.

use tokio_postgres::Row;

use super::action::{all, case_in, case_row, history, one, to_u32, write_events, CASE_COLUMNS};
use super::row::{col, count};
use super::{sql_limit, Param, PostgresStore, Tx};
use crate::action::{Case, CaseId, NewEvent};
use crate::console::*;
use crate::{Error, Result};

const USER_COLUMNS: &str = "id, name, roles, password_hash, totp_secret, setup_token_hash, \
     setup_expires_at, failed_logins, locked_until, last_totp_step, disabled, created_at, \
     updated_at";

fn user_row(r: &Row) -> Result<User> {
    const T: &str = "console_users";
    let failed: i64 = col(r, 7, T)?;
    Ok(User {
        id: col(r, 0, T)?,
        name: col(r, 1, T)?,
        roles: col(r, 2, T)?,
        password_hash: col(r, 3, T)?,
        totp_secret: col(r, 4, T)?,
        setup_token_hash: col(r, 5, T)?,
        setup_expires_at: col(r, 6, T)?,
        failed_logins: to_u32(failed, "failed logins")?,
        locked_until: col(r, 8, T)?,
        last_totp_step: col(r, 9, T)?,
        disabled: col(r, 10, T)?,
        created_at: col(r, 11, T)?,
        updated_at: col(r, 12, T)?,
    })
}

const SESSION_COLUMNS: &str = "id_hash, user_id, csrf, created_at, last_seen_at, expires_at";

fn session_row(r: &Row) -> Result<ConsoleSession> {
    const T: &str = "console_sessions";
    Ok(ConsoleSession {
        id_hash: col(r, 0, T)?,
        user_id: col(r, 1, T)?,
        csrf: col(r, 2, T)?,
        created_at: col(r, 3, T)?,
        last_seen_at: col(r, 4, T)?,
        expires_at: col(r, 5, T)?,
    })
}

const LEASE_COLUMNS: &str = "case_id, holder, claimed_at, expires_at";

fn lease_row(r: &Row) -> Result<Lease> {
    const T: &str = "case_leases";
    Ok(Lease {
        case_id: col(r, 0, T)?,
        holder: col(r, 1, T)?,
        claimed_at: col(r, 2, T)?,
        expires_at: col(r, 3, T)?,
    })
}

const REVEAL_COLUMNS: &str = "id, user_id, case_id, object_id, started_at, ended_at";

fn reveal_row(r: &Row) -> Result<Reveal> {
    const T: &str = "console_reveals";
    Ok(Reveal {
        id: col(r, 0, T)?,
        user_id: col(r, 1, T)?,
        case_id: col(r, 2, T)?,
        object_id: col(r, 3, T)?,
        started_at: col(r, 4, T)?,
        ended_at: col(r, 5, T)?,
    })
}

const LABEL_COLUMNS: &str = "case_id, object_id, classification, annotations, actor, at";

fn label_row(r: &Row) -> Result<ItemLabel> {
    const T: &str = "console_item_labels";
    let annotations: String = col(r, 3, T)?;
    Ok(ItemLabel {
        case_id: col(r, 0, T)?,
        object_id: col(r, 1, T)?,
        classification: col(r, 2, T)?,
        annotations: annotations_from_json(&annotations)?,
        actor: col(r, 4, T)?,
        at: col(r, 5, T)?,
    })
}

fn user_in(tx: &mut Tx<'_>, id: UserId) -> Result<Option<User>> {
    one(
        tx,
        &format!("SELECT {USER_COLUMNS} FROM console_users WHERE id = $1"),
        &[&id],
        user_row,
    )
}

fn require_user(tx: &mut Tx<'_>, id: UserId) -> Result<User> {
    user_in(tx, id)?.ok_or_else(|| Error::NotFound(format!("user {id}")))
}

fn require_case(tx: &mut Tx<'_>, id: CaseId) -> Result<Case> {
    case_in(tx, id)?.ok_or_else(|| Error::NotFound(format!("case {id}")))
}

fn case_exists(tx: &mut Tx<'_>, id: CaseId) -> Result<()> {
    one(tx, "SELECT 1 FROM cases WHERE id = $1", &[&id], |_| Ok(()))?
        .ok_or_else(|| Error::NotFound(format!("case {id}")))
}

/// Creates or replaces labels by (case, object), in the caller's transaction. `NotFound` for
/// an unknown case.
pub(crate) fn write_labels(tx: &mut Tx<'_>, labels: &[ItemLabel]) -> Result<()> {
    for l in labels {
        case_exists(tx, l.case_id)?;
        let annotations = annotations_to_json(&l.annotations)?;
        tx.execute(
            &format!(
                "INSERT INTO console_item_labels ({LABEL_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (case_id, object_id) DO UPDATE SET \
                 classification = excluded.classification, \
                 annotations = excluded.annotations, actor = excluded.actor, \
                 at = excluded.at"
            ),
            &[
                &l.case_id,
                &l.object_id,
                &l.classification,
                &annotations,
                &l.actor,
                &l.at,
            ],
        )?;
    }
    Ok(())
}

fn lease_in(tx: &mut Tx<'_>, id: CaseId) -> Result<Option<Lease>> {
    one(
        tx,
        &format!("SELECT {LEASE_COLUMNS} FROM case_leases WHERE case_id = $1"),
        &[&id],
        lease_row,
    )
}

fn reveal_in(tx: &mut Tx<'_>, id: i64) -> Result<Option<Reveal>> {
    one(
        tx,
        &format!("SELECT {REVEAL_COLUMNS} FROM console_reveals WHERE id = $1"),
        &[&id],
        reveal_row,
    )
}

/// Runs `UPDATE console_users SET {set} WHERE id = $1` (`set` numbers its parameters from
/// $2, bound from `p`) and reads the user back. `NotFound`.
fn update_user(tx: &mut Tx<'_>, id: UserId, set: &str, p: &[Param<'_>]) -> Result<User> {
    let mut bound: Vec<Param<'_>> = vec![&id];
    bound.extend_from_slice(p);
    let n = tx.execute(
        &format!("UPDATE console_users SET {set} WHERE id = $1"),
        &bound,
    )?;
    if n == 0 {
        return Err(Error::NotFound(format!("user {id}")));
    }
    require_user(tx, id)
}

fn delete_sessions_of(tx: &mut Tx<'_>, user: UserId) -> Result<()> {
    tx.execute("DELETE FROM console_sessions WHERE user_id = $1", &[&user])?;
    Ok(())
}

/// The first open case of `queue` that `holder` may claim: the first entry of the
/// `cases_claim` range (queue, 'open'), past any the holder skipped or another holds.
const OPEN_NEXT: &str = "SELECT c.priority, c.opened_at, c.id FROM cases c \
     WHERE c.queue = $1 AND c.state = 'open' \
     AND NOT EXISTS (SELECT 1 FROM case_skips s WHERE s.holder = $2 AND s.case_id = c.id) \
     AND NOT EXISTS (SELECT 1 FROM case_leases l \
                     WHERE l.case_id = c.id AND l.holder <> $2 AND l.expires_at > $3) \
     ORDER BY c.priority DESC, c.opened_at, c.id LIMIT 1 \
     FOR UPDATE OF c SKIP LOCKED";

/// The first case of `queue` in review whose lease lapsed and that `holder` did not skip, by
/// the claim order (few: a lease lapses when a reviewer walks away); only that row is locked.
const LAPSED_NEXT: &str = "SELECT c.priority, c.opened_at, c.id \
     FROM case_leases l JOIN cases c ON c.id = l.case_id \
     WHERE l.expires_at <= $3 AND c.queue = $1 AND c.state = 'in_review' \
     AND NOT EXISTS (SELECT 1 FROM case_skips s WHERE s.holder = $2 AND s.case_id = c.id) \
     ORDER BY c.priority DESC, c.opened_at, c.id LIMIT 1 \
     FOR UPDATE OF c SKIP LOCKED";

/// The next case `holder` may claim from `queues`, by the claim order.
fn next_claimable(
    tx: &mut Tx<'_>,
    queues: &[String],
    holder: UserId,
    now: i64,
) -> Result<Option<CaseId>> {
    let mut best: Option<ClaimKey> = None;
    let mut consider = |key: ClaimKey| {
        if best.is_none_or(|b| key < b) {
            best = Some(key);
        }
    };
    let key = |r: &Row| {
        const T: &str = "cases";
        Ok((
            std::cmp::Reverse(col::<i64>(r, 0, T)?),
            col::<i64>(r, 1, T)?,
            col::<i64>(r, 2, T)?,
        ))
    };
    for queue in queues {
        for sql in [OPEN_NEXT, LAPSED_NEXT] {
            if let Some(k) = one(tx, sql, &[queue, &holder, &now], key)? {
                consider(k);
            }
        }
    }
    Ok(best.map(|(_, _, id)| id))
}

/// The claim itself, once the holder is known to exist: the next claimable case of `queues`
/// given to `holder` ([`take`]), or `None` when nothing is claimable.
fn claim_first(
    tx: &mut Tx<'_>,
    queues: &[String],
    holder: UserId,
    actor: &str,
    now: i64,
    lease_ms: i64,
    events: &mut dyn FnMut(&Case) -> Vec<NewEvent>,
) -> Result<Claimed> {
    let Some(id) = next_claimable(tx, queues, holder, now)? else {
        return Ok(None);
    };
    let case = require_case(tx, id)?;
    take(tx, &case, holder, actor, now, lease_ms, events).map(Some)
}

/// Gives `case` (claimable by `holder`: the caller checked) to `holder`: an open case moves
/// into review, a lapsed lease is taken over; the history line, the lease and the events.
fn take(
    tx: &mut Tx<'_>,
    case: &Case,
    holder: UserId,
    actor: &str,
    now: i64,
    lease_ms: i64,
    events: &mut dyn FnMut(&Case) -> Vec<NewEvent>,
) -> Result<(Case, Lease)> {
    let id = case.id;
    if case.state == "open" {
        tx.execute(
            "UPDATE cases SET state = 'in_review', updated_at = $2 WHERE id = $1",
            &[&id, &now],
        )?;
        history(
            tx,
            id,
            now,
            actor,
            "state",
            (Some("open"), Some("in_review")),
            Some("claimed"),
            None,
        )?;
    } else {
        tx.execute(
            "UPDATE cases SET updated_at = $2 WHERE id = $1",
            &[&id, &now],
        )?;
        history(
            tx,
            id,
            now,
            actor,
            "claimed",
            (None, None),
            Some("the previous lease lapsed"),
            None,
        )?;
    }
    let lease = Lease {
        case_id: id,
        holder,
        claimed_at: now,
        expires_at: now.saturating_add(lease_ms),
    };
    tx.execute(
        "INSERT INTO case_leases (case_id, holder, claimed_at, expires_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (case_id) DO UPDATE SET \
         holder = excluded.holder, claimed_at = excluded.claimed_at, \
         expires_at = excluded.expires_at",
        &[&id, &holder, &now, &lease.expires_at],
    )?;
    let case = require_case(tx, id)?;
    let evs = events(&case);
    write_events(tx, &evs, now)?;
    Ok((case, lease))
}

/// Release (and, with `skip`, skip): see [`ConsoleStore::release_case`].
#[allow(clippy::too_many_arguments)] // the trait method's arguments and the one switch
fn release(
    tx: &mut Tx<'_>,
    id: CaseId,
    holder: UserId,
    actor: &str,
    reason: &str,
    at: i64,
    skip: bool,
    to_queue: Option<&str>,
    events: &mut dyn FnMut(&Case) -> Vec<NewEvent>,
) -> Result<Case> {
    let case = require_case(tx, id)?;
    match lease_in(tx, id)? {
        Some(l) if l.holder == holder => {}
        Some(_) => return Err(Error::Conflict(format!("case {id} is held by another"))),
        None => return Err(Error::Conflict(format!("case {id} is not held"))),
    }
    // A lease can outlive the review (the API moves cases without touching leases): a
    // decided or closed case is not sent back to a queue.
    if to_queue.is_some() && case.state != "in_review" {
        return Err(Error::Conflict(format!(
            "case {id} is {}, not in review",
            case.state
        )));
    }
    tx.execute("DELETE FROM case_leases WHERE case_id = $1", &[&id])?;
    if skip {
        tx.execute(
            "INSERT INTO case_skips (holder, case_id, at) VALUES ($1, $2, $3) \
             ON CONFLICT (holder, case_id) DO UPDATE SET at = excluded.at",
            &[&holder, &id, &at],
        )?;
        history(
            tx,
            id,
            at,
            actor,
            "skipped",
            (None, None),
            Some(reason),
            None,
        )?;
    }
    if let Some(q) = to_queue.filter(|q| *q != case.queue) {
        tx.execute(
            "UPDATE cases SET queue = $2, updated_at = $3 WHERE id = $1",
            &[&id, &q, &at],
        )?;
        let note = format!("{} -> {q}: {reason}", case.queue);
        history(
            tx,
            id,
            at,
            actor,
            "requeued",
            (None, None),
            Some(&note),
            None,
        )?;
    }
    if case.state == "in_review" {
        tx.execute(
            "UPDATE cases SET state = 'open', updated_at = $2 WHERE id = $1",
            &[&id, &at],
        )?;
        history(
            tx,
            id,
            at,
            actor,
            "state",
            (Some("in_review"), Some("open")),
            Some(reason),
            None,
        )?;
    }
    let case = require_case(tx, id)?;
    let evs = events(&case);
    write_events(tx, &evs, at)?;
    Ok(case)
}

fn exposure_in(
    tx: &mut Tx<'_>,
    user: Option<UserId>,
    from: i64,
    to: i64,
    now: i64,
) -> Result<(u64, ExposureTotals)> {
    // One statement each with and without the user, so each gets its index; PostgreSQL
    // refuses a parameter a statement does not use, so the user is the last one.
    let who = if user.is_some() {
        "user_id = $4 AND"
    } else {
        ""
    };
    let user = user.unwrap_or(0);
    let with_user: [Param<'_>; 4] = [&from, &to, &now, &user];
    let n = if who.is_empty() { 3 } else { 4 };
    const T: &str = "console_reveals";
    let r = tx.one(
        &format!(
            "SELECT count(DISTINCT user_id), count(*), \
             coalesce(sum(coalesce(ended_at, greatest($3, started_at)) - started_at), 0)::BIGINT \
             FROM console_reveals WHERE {who} started_at >= $1 AND started_at < $2"
        ),
        &with_user[..n],
    )?;
    let people = count(&r, 0, T)?;
    let reveals = count(&r, 1, T)?;
    let visible_ms: i64 = col(&r, 2, T)?;
    let who = who.replace("$4", "$3");
    let with_user: [Param<'_>; 3] = [&from, &to, &user];
    let r = tx.one(
        &format!(
            "SELECT coalesce(sum(ms), 0)::BIGINT FROM console_review_time \
             WHERE {who} at >= $1 AND at < $2"
        ),
        &with_user[..n - 1],
    )?;
    let review_ms: i64 = col(&r, 0, "console_review_time")?;
    Ok((
        people,
        ExposureTotals {
            reveals,
            visible_ms,
            review_ms,
        },
    ))
}

const FEEDBACK_COLUMNS: &str = "id, case_id, exchange, source_id, signal_type, value, verdict, \
     actor, created_at, status, last_error, attempts, sent_at, updated_at, next_attempt_at";

fn feedback_row(r: &Row) -> Result<SourceFeedback> {
    const T: &str = "source_feedback";
    Ok(SourceFeedback {
        id: col(r, 0, T)?,
        feedback: NewSourceFeedback {
            case_id: col(r, 1, T)?,
            exchange: col(r, 2, T)?,
            source_id: col(r, 3, T)?,
            signal_type: col(r, 4, T)?,
            value: col(r, 5, T)?,
            verdict: col(r, 6, T)?,
            actor: col(r, 7, T)?,
            at: col(r, 8, T)?,
        },
        status: col(r, 9, T)?,
        last_error: col(r, 10, T)?,
        attempts: to_u32(col::<i64>(r, 11, T)?, "attempts")?,
        sent_at: col(r, 12, T)?,
        updated_at: col(r, 13, T)?,
        next_attempt_at: col(r, 14, T)?,
    })
}

fn feedback_in(tx: &mut Tx<'_>, id: i64) -> Result<Option<SourceFeedback>> {
    one(
        tx,
        &format!("SELECT {FEEDBACK_COLUMNS} FROM source_feedback WHERE id = $1"),
        &[&id],
        feedback_row,
    )
}

impl ConsoleStore for PostgresStore {
    fn create_user(&self, u: &NewUser) -> Result<User> {
        self.write(|tx| {
            let taken = one(
                tx,
                "SELECT 1 FROM console_users WHERE name = $1",
                &[&u.name],
                |_| Ok(()),
            )?;
            if taken.is_some() {
                return Err(Error::Conflict(format!("user name {:?} is taken", u.name)));
            }
            let rows = tx.query_unique(
                "INSERT INTO console_users (name, roles, setup_token_hash, setup_expires_at, \
                 failed_logins, disabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 0, FALSE, $5, $5) RETURNING id",
                &[
                    &u.name,
                    &u.roles,
                    &u.setup_token_hash,
                    &u.setup_expires_at,
                    &u.at,
                ],
                || "the setup token is taken".into(),
            )?;
            let id: i64 = rows
                .first()
                .map(|r| col(r, 0, "console_users"))
                .transpose()?
                .ok_or_else(|| Error::Backend("insert into console_users returned no id".into()))?;
            require_user(tx, id)
        })
    }

    fn user(&self, id: UserId) -> Result<Option<User>> {
        self.read(|tx| user_in(tx, id))
    }

    fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        self.read(|tx| {
            one(
                tx,
                &format!("SELECT {USER_COLUMNS} FROM console_users WHERE name = $1"),
                &[&name],
                user_row,
            )
        })
    }

    fn user_by_setup_token(&self, token_hash: &str) -> Result<Option<User>> {
        self.read(|tx| {
            one(
                tx,
                &format!("SELECT {USER_COLUMNS} FROM console_users WHERE setup_token_hash = $1"),
                &[&token_hash],
                user_row,
            )
        })
    }

    fn users(&self) -> Result<Vec<User>> {
        self.read(|tx| {
            all(
                tx,
                &format!("SELECT {USER_COLUMNS} FROM console_users ORDER BY name"),
                &[],
                user_row,
            )
        })
    }

    fn complete_setup(
        &self,
        id: UserId,
        password_hash: &str,
        totp_secret: &[u8],
        at: i64,
    ) -> Result<User> {
        self.write(|tx| {
            update_user(
                tx,
                id,
                "password_hash = $2, totp_secret = $3, setup_token_hash = NULL, \
                 setup_expires_at = NULL, failed_logins = 0, locked_until = NULL, \
                 updated_at = $4",
                &[&password_hash, &totp_secret, &at],
            )
        })
    }

    fn reset_user(
        &self,
        id: UserId,
        setup_token_hash: &str,
        setup_expires_at: i64,
        at: i64,
    ) -> Result<User> {
        self.write(|tx| {
            let user = update_user(
                tx,
                id,
                "setup_token_hash = $2, setup_expires_at = $3, password_hash = NULL, \
                 totp_secret = NULL, last_totp_step = NULL, failed_logins = 0, \
                 locked_until = NULL, updated_at = $4",
                &[&setup_token_hash, &setup_expires_at, &at],
            )?;
            delete_sessions_of(tx, id)?;
            Ok(user)
        })
    }

    fn set_user_roles(&self, id: UserId, roles: &str, at: i64) -> Result<User> {
        self.write(|tx| update_user(tx, id, "roles = $2, updated_at = $3", &[&roles, &at]))
    }

    fn set_user_disabled(&self, id: UserId, disabled: bool, at: i64) -> Result<User> {
        self.write(|tx| {
            let user = update_user(tx, id, "disabled = $2, updated_at = $3", &[&disabled, &at])?;
            if disabled {
                delete_sessions_of(tx, id)?;
            }
            Ok(user)
        })
    }

    fn record_login_failure(&self, id: UserId, lock_until: Option<i64>, at: i64) -> Result<User> {
        self.write(|tx| {
            update_user(
                tx,
                id,
                "failed_logins = least(failed_logins + 1, 4294967295), \
                 locked_until = coalesce($2, locked_until), updated_at = $3",
                &[&lock_until, &at],
            )
        })
    }

    fn record_login_success(&self, id: UserId, totp_step: i64, at: i64) -> Result<User> {
        self.write(|tx| {
            // The step check and the write are one statement: two logins racing with the
            // same code cannot both pass.
            let n = tx.execute(
                "UPDATE console_users SET failed_logins = 0, locked_until = NULL, \
                 last_totp_step = $2, updated_at = $3 \
                 WHERE id = $1 AND (last_totp_step IS NULL OR last_totp_step < $2)",
                &[&id, &totp_step, &at],
            )?;
            if n == 0 {
                require_user(tx, id)?;
                return Err(Error::Conflict(format!(
                    "TOTP step {totp_step} of user {id} was already used"
                )));
            }
            require_user(tx, id)
        })
    }

    fn create_session(&self, s: &ConsoleSession) -> Result<()> {
        self.write(|tx| {
            if require_user(tx, s.user_id)?.disabled {
                return Err(Error::Conflict(format!("user {} is disabled", s.user_id)));
            }
            tx.execute_unique(
                &format!(
                    "INSERT INTO console_sessions ({SESSION_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6)"
                ),
                &[
                    &s.id_hash,
                    &s.user_id,
                    &s.csrf,
                    &s.created_at,
                    &s.last_seen_at,
                    &s.expires_at,
                ],
                || "the session id is taken".into(),
            )?;
            Ok(())
        })
    }

    fn session(&self, id_hash: &str) -> Result<Option<ConsoleSession>> {
        self.read(|tx| {
            one(
                tx,
                &format!("SELECT {SESSION_COLUMNS} FROM console_sessions WHERE id_hash = $1"),
                &[&id_hash],
                session_row,
            )
        })
    }

    fn touch_session(&self, id_hash: &str, at: i64) -> Result<()> {
        self.write(|tx| {
            // Requests finish out of order; the later one must not move the idle clock back.
            tx.execute(
                "UPDATE console_sessions SET last_seen_at = greatest(last_seen_at, $2) \
                 WHERE id_hash = $1",
                &[&id_hash, &at],
            )?;
            Ok(())
        })
    }

    fn delete_session(&self, id_hash: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM console_sessions WHERE id_hash = $1",
                &[&id_hash],
            )?;
            Ok(())
        })
    }

    fn delete_expired_sessions(&self, now: i64, idle_ms: i64) -> Result<u64> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM console_sessions WHERE expires_at <= $1 OR last_seen_at <= $2",
                &[&now, &now.saturating_sub(idle_ms)],
            )
        })
    }

    fn claim_next(
        &self,
        queues: &[String],
        holder: UserId,
        actor_label: &str,
        now: i64,
        lease_ms: i64,
        events: &mut dyn FnMut(&Case) -> Vec<NewEvent>,
    ) -> Result<Option<(Case, Lease)>> {
        check_lease_ms(lease_ms)?;
        self.write(|tx| {
            require_user(tx, holder)?;
            claim_first(tx, queues, holder, actor_label, now, lease_ms, events)
        })
    }

    fn claim_next_batch(&self, batch: &mut [ClaimJob]) -> Result<Vec<Result<Claimed>>> {
        self.write(|tx| {
            // Leases do not wait for the WAL flush (see the trait docs); for this transaction
            // only.
            tx.execute("SET LOCAL synchronous_commit TO OFF", &[])?;
            let mut out = Vec::with_capacity(batch.len());
            for job in batch.iter_mut() {
                // The refusals come before any write, so a refused job needs no savepoint:
                // what fails after them is the backend, and fails the whole batch.
                if let Err(e) = check_lease_ms(job.lease_ms)
                    .and_then(|()| require_user(tx, job.holder).map(drop))
                {
                    out.push(Err(e));
                    continue;
                }
                out.push(Ok(claim_first(
                    tx,
                    &job.queues,
                    job.holder,
                    &job.actor_label,
                    job.now,
                    job.lease_ms,
                    &mut *job.events,
                )?));
            }
            Ok(out)
        })
    }

    fn claim_case(
        &self,
        id: CaseId,
        holder: UserId,
        actor_label: &str,
        now: i64,
        lease_ms: i64,
        events: &mut dyn FnMut(&Case) -> Vec<NewEvent>,
    ) -> Result<(Case, Lease)> {
        check_lease_ms(lease_ms)?;
        self.write(|tx| {
            require_user(tx, holder)?;
            // Locks the row for the rest of the claim (see the module docs).
            one(
                tx,
                "SELECT 1 FROM cases WHERE id = $1 FOR UPDATE",
                &[&id],
                |_| Ok(()),
            )?;
            let case = require_case(tx, id)?;
            let lease = lease_in(tx, id)?;
            match (case.state.as_str(), lease) {
                (_, Some(l)) if l.holder == holder && case.state == "in_review" => {
                    let expires_at = now.saturating_add(lease_ms);
                    tx.execute(
                        "UPDATE case_leases SET expires_at = $2 WHERE case_id = $1",
                        &[&id, &expires_at],
                    )?;
                    return Ok((case, Lease { expires_at, ..l }));
                }
                ("open" | "in_review", Some(l)) if l.expires_at > now => {
                    return Err(Error::Conflict(format!("case {id} is held by another")));
                }
                ("open", _) | ("in_review", Some(_)) => {}
                ("in_review", None) => {
                    return Err(Error::Conflict(format!(
                        "case {id} is in review outside the console"
                    )));
                }
                (state, _) => {
                    return Err(Error::Conflict(format!("case {id} is {state}")));
                }
            }
            take(tx, &case, holder, actor_label, now, lease_ms, events)
        })
    }

    fn renew_lease(&self, id: CaseId, holder: UserId, now: i64, lease_ms: i64) -> Result<Lease> {
        check_lease_ms(lease_ms)?;
        self.write(|tx| {
            let case = require_case(tx, id)?;
            let lease = match lease_in(tx, id)? {
                Some(l) if l.holder == holder => l,
                Some(_) => return Err(Error::Conflict(format!("case {id} is held by another"))),
                None => return Err(Error::Conflict(format!("case {id} is not held"))),
            };
            if case.state != "in_review" {
                return Err(Error::Conflict(format!("case {id} is {}", case.state)));
            }
            let expires_at = now.saturating_add(lease_ms);
            tx.execute(
                "UPDATE case_leases SET expires_at = $2 WHERE case_id = $1",
                &[&id, &expires_at],
            )?;
            Ok(Lease {
                expires_at,
                ..lease
            })
        })
    }

    fn lease(&self, id: CaseId) -> Result<Option<Lease>> {
        self.read(|tx| lease_in(tx, id))
    }

    fn release_case(
        &self,
        id: CaseId,
        holder: UserId,
        actor_label: &str,
        reason: &str,
        at: i64,
        events: &mut dyn FnMut(&Case) -> Vec<NewEvent>,
    ) -> Result<Case> {
        self.write(|tx| release(tx, id, holder, actor_label, reason, at, false, None, events))
    }

    fn skip_case(
        &self,
        id: CaseId,
        holder: UserId,
        actor_label: &str,
        reason: &str,
        at: i64,
        events: &mut dyn FnMut(&Case) -> Vec<NewEvent>,
    ) -> Result<Case> {
        self.write(|tx| release(tx, id, holder, actor_label, reason, at, true, None, events))
    }

    fn requeue_case(
        &self,
        id: CaseId,
        holder: UserId,
        actor_label: &str,
        queue: &str,
        reason: &str,
        skip: bool,
        at: i64,
        events: &mut dyn FnMut(&Case) -> Vec<NewEvent>,
    ) -> Result<Case> {
        self.write(|tx| {
            release(
                tx,
                id,
                holder,
                actor_label,
                reason,
                at,
                skip,
                Some(queue),
                events,
            )
        })
    }

    fn reopen_lapsed(
        &self,
        lapsed_before: i64,
        limit: usize,
        actor_label: &str,
        at: i64,
        events: &mut dyn FnMut(&Case) -> Vec<NewEvent>,
    ) -> Result<Vec<Case>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.write(|tx| {
            let ids = all(
                tx,
                "SELECT l.case_id FROM case_leases l JOIN cases c ON c.id = l.case_id \
                 WHERE l.expires_at <= $1 ORDER BY l.expires_at, l.case_id LIMIT $2 \
                 FOR UPDATE OF c SKIP LOCKED",
                &[&lapsed_before, &limit],
                |r| col::<i64>(r, 0, "case_leases"),
            )?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let Some(lease) = lease_in(tx, id)? else {
                    continue;
                };
                // A lease left on a case no longer in review (decided, closed or moved through
                // the API while held) has nobody to hand the case back from: it goes quietly,
                // so claims stop reading it, with no event and no history line.
                if require_case(tx, id)?.state != "in_review" {
                    tx.execute("DELETE FROM case_leases WHERE case_id = $1", &[&id])?;
                    continue;
                }
                out.push(release(
                    tx,
                    id,
                    lease.holder,
                    actor_label,
                    "the lease lapsed",
                    at,
                    false,
                    None,
                    events,
                )?);
            }
            Ok(out)
        })
    }

    fn drop_lease(&self, id: CaseId) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM case_leases WHERE case_id = $1", &[&id])?;
            Ok(())
        })
    }

    fn queue_stats(&self) -> Result<Vec<QueueStats>> {
        self.read(|tx| {
            const T: &str = "case_queue_counts";
            let counts = all(
                tx,
                "SELECT queue, state, n FROM case_queue_counts WHERE n > 0 ORDER BY queue, state",
                &[],
                |r| {
                    Ok((
                        col::<String>(r, 0, T)?,
                        col::<String>(r, 1, T)?,
                        col::<i64>(r, 2, T)?,
                    ))
                },
            )?;
            let mut out: Vec<QueueStats> = Vec::new();
            for (queue, state, n) in counts {
                if out.last().is_none_or(|s| s.queue != queue) {
                    out.push(QueueStats {
                        queue: queue.clone(),
                        open: 0,
                        in_review: 0,
                        oldest_opened_at: None,
                    });
                }
                let oldest = one(
                    tx,
                    "SELECT min(opened_at) FROM cases WHERE queue = $1 AND state = $2",
                    &[&queue, &state],
                    |r| col::<Option<i64>>(r, 0, "cases"),
                )?
                .flatten();
                let Some(stats) = out.last_mut() else {
                    continue;
                };
                // Positive: the query keeps n > 0.
                let n = n.unsigned_abs();
                match state.as_str() {
                    "open" => stats.open = n,
                    _ => stats.in_review = n,
                }
                stats.oldest_opened_at = match (stats.oldest_opened_at, oldest) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            Ok(out)
        })
    }

    fn cases_of_account(&self, account: &str, limit: usize) -> Result<Vec<Case>> {
        let limit = sql_limit(limit);
        self.read(|tx| {
            all(
                tx,
                // `OFFSET 0` keeps the planner on the account's hash index: with statistics
                // from before a bulk load it walked the primary key backwards instead,
                // filtering a million rows (214 ms for one account's single case).
                &format!(
                    "SELECT {CASE_COLUMNS} FROM (SELECT {CASE_COLUMNS} FROM cases \
                     WHERE account = $1 OFFSET 0) c ORDER BY id DESC LIMIT $2"
                ),
                &[&account, &limit],
                case_row,
            )
        })
    }

    fn cases_awaiting_approval(&self, limit: usize) -> Result<Vec<Case>> {
        let limit = sql_limit(limit);
        self.read(|tx| {
            all(
                tx,
                &format!(
                    "SELECT {CASE_COLUMNS} FROM ( \
                       SELECT c.*, coalesce((SELECT max(h.id) FROM case_history h \
                         WHERE h.case_id = c.id AND h.action = 'state' \
                         AND h.to_state = 'decided'), 0) AS decided_line \
                       FROM cases c \
                       WHERE c.state = 'decided' AND substr(c.decision, 1, 9) = 'confirmed' \
                     ) d \
                     WHERE NOT EXISTS (SELECT 1 FROM case_history a WHERE a.case_id = d.id \
                       AND a.action = 'approved' AND a.id > d.decided_line) \
                     ORDER BY d.decided_line, d.id LIMIT $1"
                ),
                &[&limit],
                case_row,
            )
        })
    }

    fn start_reveal(
        &self,
        user: UserId,
        case_id: CaseId,
        object_id: &str,
        at: i64,
    ) -> Result<Reveal> {
        self.write(|tx| {
            require_user(tx, user)?;
            case_exists(tx, case_id)?;
            one(
                tx,
                &format!(
                    "INSERT INTO console_reveals (user_id, case_id, object_id, started_at) \
                     VALUES ($1, $2, $3, $4) RETURNING {REVEAL_COLUMNS}"
                ),
                &[&user, &case_id, &object_id, &at],
                reveal_row,
            )?
            .ok_or_else(|| Error::Backend("insert into console_reveals returned no row".into()))
        })
    }

    fn end_reveal(&self, id: i64, user: UserId, at: i64) -> Result<Reveal> {
        self.write(|tx| {
            let reveal =
                reveal_in(tx, id)?.ok_or_else(|| Error::NotFound(format!("reveal {id}")))?;
            if reveal.user_id != user {
                return Err(Error::Conflict(format!("reveal {id} is another user's")));
            }
            if reveal.ended_at.is_some() {
                return Ok(reveal);
            }
            // A clock step back must not make a negative time on screen.
            let ended_at = at.max(reveal.started_at);
            tx.execute(
                "UPDATE console_reveals SET ended_at = $2 WHERE id = $1",
                &[&id, &ended_at],
            )?;
            Ok(Reveal {
                ended_at: Some(ended_at),
                ..reveal
            })
        })
    }

    fn reveals_of_object(&self, object_id: &str) -> Result<Vec<Reveal>> {
        self.read(|tx| {
            all(
                tx,
                &format!(
                    "SELECT {REVEAL_COLUMNS} FROM console_reveals WHERE object_id = $1 ORDER BY id"
                ),
                &[&object_id],
                reveal_row,
            )
        })
    }

    fn reveals_of_user(&self, user: UserId, from: i64, to: i64) -> Result<Vec<Reveal>> {
        self.read(|tx| {
            all(
                tx,
                &format!(
                    "SELECT {REVEAL_COLUMNS} FROM console_reveals \
                     WHERE user_id = $1 AND started_at >= $2 AND started_at < $3 \
                     ORDER BY started_at, id"
                ),
                &[&user, &from, &to],
                reveal_row,
            )
        })
    }

    fn exposure(&self, user: UserId, from: i64, to: i64, now: i64) -> Result<ExposureTotals> {
        self.read(|tx| Ok(exposure_in(tx, Some(user), from, to, now)?.1))
    }

    fn exposure_all(&self, from: i64, to: i64, now: i64) -> Result<(u64, ExposureTotals)> {
        self.read(|tx| exposure_in(tx, None, from, to, now))
    }

    fn add_review_time(&self, user: UserId, case_id: CaseId, ms: i64, at: i64) -> Result<()> {
        if ms < 0 {
            return Err(Error::Backend(format!(
                "invalid value: review time {ms} ms"
            )));
        }
        self.write(|tx| {
            require_user(tx, user)?;
            case_exists(tx, case_id)?;
            tx.execute(
                "INSERT INTO console_review_time (user_id, case_id, ms, at) \
                 VALUES ($1, $2, $3, $4)",
                &[&user, &case_id, &ms, &at],
            )?;
            Ok(())
        })
    }

    fn put_item_labels(&self, labels: &[ItemLabel]) -> Result<()> {
        self.write(|tx| write_labels(tx, labels))
    }

    fn item_labels(&self, case_id: CaseId) -> Result<Vec<ItemLabel>> {
        self.read(|tx| {
            all(
                tx,
                &format!(
                    "SELECT {LABEL_COLUMNS} FROM console_item_labels WHERE case_id = $1 \
                     ORDER BY object_id"
                ),
                &[&case_id],
                label_row,
            )
        })
    }

    fn setting(&self, scope: &str) -> Result<Option<String>> {
        self.read(|tx| {
            one(
                tx,
                "SELECT json FROM console_settings WHERE scope = $1",
                &[&scope],
                |r| col(r, 0, "console_settings"),
            )
        })
    }

    fn put_setting(&self, scope: &str, json: &str, at: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO console_settings (scope, json, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (scope) DO UPDATE SET json = excluded.json, \
                 updated_at = excluded.updated_at",
                &[&scope, &json, &at],
            )?;
            Ok(())
        })
    }

    fn record_source_feedback(&self, items: &[NewSourceFeedback]) -> Result<usize> {
        self.write(|tx| {
            let mut new = 0;
            for f in items {
                if case_in(tx, f.case_id)?.is_none() {
                    return Err(Error::NotFound(format!("case {}", f.case_id)));
                }
                let n = tx.execute(
                    "INSERT INTO source_feedback (case_id, exchange, source_id, signal_type, \
                     value, verdict, actor, created_at, status, updated_at, next_attempt_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $8, $8) \
                     ON CONFLICT (case_id, sg_digest(exchange), sg_digest(source_id), \
                     sg_digest(signal_type), sg_digest(value), sg_digest(verdict)) \
                     DO UPDATE SET status = 'pending', attempts = 0, \
                     next_attempt_at = excluded.created_at, updated_at = excluded.created_at, \
                     actor = excluded.actor \
                     WHERE source_feedback.status = 'cancelled'",
                    &[
                        &f.case_id,
                        &f.exchange,
                        &f.source_id,
                        &f.signal_type,
                        &f.value,
                        &f.verdict,
                        &f.actor,
                        &f.at,
                    ],
                )?;
                new += usize::try_from(n).unwrap_or(usize::MAX);
            }
            Ok(new)
        })
    }

    fn source_feedback(&self, filter: &FeedbackFilter) -> Result<Vec<SourceFeedback>> {
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        self.read(|tx| {
            let mut bound: Vec<Param<'_>> = vec![&filter.after];
            let mut sql = format!("SELECT {FEEDBACK_COLUMNS} FROM source_feedback WHERE id > $1");
            if let Some(e) = &filter.exchange {
                bound.push(e);
                sql.push_str(&format!(" AND exchange = ${}", bound.len()));
            }
            if let Some(st) = &filter.status {
                bound.push(st);
                sql.push_str(&format!(" AND status = ${}", bound.len()));
            }
            if let Some(due) = &filter.due_by {
                bound.push(due);
                sql.push_str(&format!(" AND next_attempt_at <= ${}", bound.len()));
            }
            bound.push(&limit);
            sql.push_str(&format!(" ORDER BY id LIMIT ${}", bound.len()));
            all(tx, &sql, &bound, feedback_row)
        })
    }

    fn note_feedback_attempt(
        &self,
        id: i64,
        error: Option<&str>,
        at: i64,
        max_attempts: u32,
        retry_at: i64,
    ) -> Result<SourceFeedback> {
        self.write(|tx| {
            let f = require_pending(feedback_in(tx, id)?, id)?;
            let (attempts, status, last_error, sent_at) =
                attempt_outcome(&f, error, at, max_attempts);
            tx.execute(
                "UPDATE source_feedback SET status = $2, attempts = $3, last_error = $4, \
                 sent_at = $5, updated_at = $6, next_attempt_at = $7 WHERE id = $1",
                &[
                    &id,
                    &status,
                    &i64::from(attempts),
                    &last_error,
                    &sent_at,
                    &at,
                    &retry_at,
                ],
            )?;
            feedback_in(tx, id)?.ok_or_else(|| Error::NotFound(format!("source feedback {id}")))
        })
    }

    fn cancel_source_feedback(&self, id: i64, reason: &str, at: i64) -> Result<SourceFeedback> {
        self.write(|tx| {
            require_pending(feedback_in(tx, id)?, id)?;
            tx.execute(
                "UPDATE source_feedback SET status = 'cancelled', last_error = $2, \
                 updated_at = $3 WHERE id = $1",
                &[&id, &reason, &at],
            )?;
            feedback_in(tx, id)?.ok_or_else(|| Error::NotFound(format!("source feedback {id}")))
        })
    }

    fn defer_source_feedback(&self, id: i64, until: i64) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE source_feedback SET next_attempt_at = $2 \
                 WHERE id = $1 AND status = 'pending'",
                &[&id, &until],
            )?;
            if n == 0 {
                return Err(Error::Conflict(format!(
                    "source feedback {id} is not pending, or does not exist"
                )));
            }
            Ok(())
        })
    }

    fn retry_failed_feedback(&self, exchange: &str, at: i64) -> Result<usize> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE source_feedback SET status = 'pending', attempts = 0, \
                 next_attempt_at = $2, updated_at = $2 WHERE exchange = $1 AND status = 'failed'",
                &[&exchange, &at],
            )?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }
}
