//! What the review console keeps: its users, their sessions, the leases that give one
//! reviewer a case at a time, the record of exposure to media (reveals and time in review),
//! per-item classification and the console's settings.
//!
//! The policies (who may log in, how long a lease or session lives, exposure caps, what a
//! setting means) are the console's. What the store guarantees is atomicity: a claim moves the
//! case, writes its history line and events, and takes the lease in ONE transaction, so two
//! reviewers can never be handed the same case, and a login's one-time code is consumed by a
//! compare-and-set, so a replayed code fails even when two logins race.

use crate::action::{Case, CaseId, NewEvent};
use crate::{Error, Result};

/// Row id of a console user.
pub type UserId = i64;

/// A console user.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Row id.
    pub id: UserId,
    /// Login name, unique.
    pub name: String,
    /// The role set, comma-separated (`admin,reviewer`); the console parses it.
    pub roles: String,
    /// The password's PHC string; `None` until setup is completed (and after a reset).
    pub password_hash: Option<String>,
    /// The TOTP secret, sealed by the caller: opaque bytes here.
    pub totp_secret: Option<Vec<u8>>,
    /// Hash of the one-time setup token, while one is outstanding.
    pub setup_token_hash: Option<String>,
    /// When the setup token stops working, Unix milliseconds.
    pub setup_expires_at: Option<i64>,
    /// Failed logins since the last successful one.
    pub failed_logins: u32,
    /// No login before this time, Unix milliseconds.
    pub locked_until: Option<i64>,
    /// The last TOTP time step accepted: a code of this step or an earlier one is a replay.
    pub last_totp_step: Option<i64>,
    /// A disabled user cannot log in and has no sessions.
    pub disabled: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// Credentials stay out of logs: a `User` is printed without its hashes and secret.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("has_password", &self.password_hash.is_some())
            .field("has_totp", &self.totp_secret.is_some())
            .field("setup_pending", &self.setup_token_hash.is_some())
            .field("setup_expires_at", &self.setup_expires_at)
            .field("failed_logins", &self.failed_logins)
            .field("locked_until", &self.locked_until)
            .field("last_totp_step", &self.last_totp_step)
            .field("disabled", &self.disabled)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// A user to create: it starts with a one-time setup token and no password.
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Login name.
    pub name: String,
    /// The role set, comma-separated.
    pub roles: String,
    /// Hash of the one-time setup token.
    pub setup_token_hash: String,
    /// When the setup token stops working, Unix milliseconds.
    pub setup_expires_at: i64,
    /// Unix milliseconds.
    pub at: i64,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("setup_expires_at", &self.setup_expires_at)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

/// A logged-in session. The store keeps only the hash of the session token (a stolen
/// database does not log anyone in).
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// Hash of the session token: the key.
    pub id_hash: String,
    /// Whose.
    pub user_id: UserId,
    /// The session's CSRF token.
    pub csrf: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Last request, Unix milliseconds (the idle timeout counts from here).
    pub last_seen_at: i64,
    /// Absolute end, Unix milliseconds.
    pub expires_at: i64,
}

impl std::fmt::Debug for ConsoleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSession")
            .field("user_id", &self.user_id)
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// One reviewer's hold on a case. A lease is live while `now < expires_at`; an expired one
/// stays until someone claims the case, so its holder can still release or renew it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The case.
    pub case_id: CaseId,
    /// Who holds it.
    pub holder: UserId,
    /// When this holder claimed it, Unix milliseconds.
    pub claimed_at: i64,
    /// When it lapses, Unix milliseconds.
    pub expires_at: i64,
}

/// Builds the events of a claim from the case as claimed.
pub type ClaimEvents = Box<dyn FnMut(&Case) -> Vec<NewEvent> + Send>;

/// One claim waiting for a group commit ([`ConsoleStore::claim_next_batch`]): the arguments
/// of [`ConsoleStore::claim_next`], owned.
pub struct ClaimJob {
    /// The queues to claim from.
    pub queues: Vec<String>,
    /// Who claims.
    pub holder: UserId,
    /// The history lines' actor.
    pub actor_label: String,
    /// The claim's time, Unix milliseconds.
    pub now: i64,
    /// How long the lease lasts.
    pub lease_ms: i64,
    /// The events of the claimed case.
    pub events: ClaimEvents,
}

impl std::fmt::Debug for ClaimJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimJob")
            .field("queues", &self.queues)
            .field("holder", &self.holder)
            .field("now", &self.now)
            .field("lease_ms", &self.lease_ms)
            .finish_non_exhaustive()
    }
}

/// What a claim gets: the case and the lease, or nothing claimable.
pub type Claimed = Option<(Case, Lease)>;

/// One queue's depth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// The queue.
    pub queue: String,
    /// Cases waiting.
    pub open: u64,
    /// Cases being reviewed.
    pub in_review: u64,
    /// The oldest `opened_at` among its open and in-review cases.
    pub oldest_opened_at: Option<i64>,
}

/// One reveal of a media object (unblurred on screen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reveal {
    /// Row id.
    pub id: i64,
    /// Who looked.
    pub user_id: UserId,
    /// The case the object belongs to.
    pub case_id: CaseId,
    /// The vault's object id.
    pub object_id: String,
    /// Unix milliseconds.
    pub started_at: i64,
    /// Unix milliseconds; `None` while on screen (or never ended: the caller caps it).
    pub ended_at: Option<i64>,
}

/// A period's exposure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExposureTotals {
    /// Reveals started in the period.
    pub reveals: u64,
    /// Their time on screen, milliseconds.
    pub visible_ms: i64,
    /// Time spent on claimed cases, milliseconds.
    pub review_ms: i64,
}

/// The classification of one evidence object of a case, as a reviewer decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemLabel {
    /// The case.
    pub case_id: CaseId,
    /// The vault's object id.
    pub object_id: String,
    /// `A1`, `A2`, `B1`, `B2`, or empty for none.
    pub classification: String,
    /// NCMEC file annotations.
    pub annotations: Vec<String>,
    /// Who labelled it.
    pub actor: String,
    /// Unix milliseconds.
    pub at: i64,
}

/// Feedback owed to the source of a matched hash, recorded when a reviewer decides: a "not
/// CSAM" decision on a hash an exchange supplied is a vote against that exchange's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSourceFeedback {
    /// The case decided.
    pub case_id: CaseId,
    /// The exchange that supplied the hash (its name, as in provenance `exchange:NAME`).
    pub exchange: String,
    /// The exchange's id of the entry (NCMEC `member-entry`, StopNCII `Type:hash`).
    pub source_id: String,
    /// The bank signal's type name (`pdq`, `md5`, ...).
    pub signal_type: String,
    /// The bank signal's value: the hash the exchange sent, not the submission's.
    pub value: String,
    /// What the feedback says: `false_positive`.
    pub verdict: String,
    /// Who decided (the console's actor label).
    pub actor: String,
    /// When.
    pub at: i64,
}

/// A recorded [`NewSourceFeedback`] and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFeedback {
    /// Row id.
    pub id: i64,
    /// What was recorded.
    pub feedback: NewSourceFeedback,
    /// `pending` (not sent yet, or failed and to be tried again), `sent`, `failed` (gave up
    /// after the last attempt), or `cancelled` (the decision it came from no longer stands).
    pub status: String,
    /// Send attempts so far.
    pub attempts: u32,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When it was sent.
    pub sent_at: Option<i64>,
    /// When a pending row is next due to be sent (backing off after failures).
    pub next_attempt_at: i64,
    /// The last change.
    pub updated_at: i64,
}

/// Which recorded source feedback to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedbackFilter {
    /// One exchange only.
    pub exchange: Option<String>,
    /// One status only.
    pub status: Option<String>,
    /// Only rows due by then (`next_attempt_at <= due_by`).
    pub due_by: Option<i64>,
    /// Rows with an id above this (paging).
    pub after: i64,
    /// At most this many, by id.
    pub limit: usize,
}

/// Storage of the review console. Part of every [`crate::Store`].
///
/// A case is claimable by `holder` when it is `open` (and no other holder's lease on it is
/// live), or `in_review` with a lease that has expired, and `holder` has not skipped it.
/// Claim order: priority DESC, opened_at ASC, id ASC. An `in_review` case without a lease
/// (moved there through the API, outside the console) is never claimable.
pub trait ConsoleStore: Send + Sync {
    /// Creates a user with a setup token. `Conflict` on a taken name (or setup token).
    fn create_user(&self, user: &NewUser) -> Result<User>;
    /// The user with this id.
    fn user(&self, id: UserId) -> Result<Option<User>>;
    /// The user with this login name.
    fn user_by_name(&self, name: &str) -> Result<Option<User>>;
    /// The user whose outstanding setup token has this hash (expired or not: the caller
    /// checks `setup_expires_at`).
    fn user_by_setup_token(&self, token_hash: &str) -> Result<Option<User>>;
    /// Every user, by name.
    fn users(&self) -> Result<Vec<User>>;
    /// Sets the password hash and TOTP secret, clears the setup token, failures and lock.
    /// `NotFound`.
    fn complete_setup(
        &self,
        id: UserId,
        password_hash: &str,
        totp_secret: &[u8],
        at: i64,
    ) -> Result<User>;
    /// A new one-time setup token: clears the password, TOTP secret, last step, failures and
    /// lock, and deletes the user's sessions, in one transaction. `NotFound`.
    fn reset_user(
        &self,
        id: UserId,
        setup_token_hash: &str,
        setup_expires_at: i64,
        at: i64,
    ) -> Result<User>;
    /// Replaces the role set. `NotFound`.
    fn set_user_roles(&self, id: UserId, roles: &str, at: i64) -> Result<User>;
    /// Disables or enables a user; disabling also deletes the user's sessions, in the same
    /// transaction. `NotFound`.
    fn set_user_disabled(&self, id: UserId, disabled: bool, at: i64) -> Result<User>;
    /// `failed_logins += 1` (saturating); `locked_until = lock_until` when `Some` (kept
    /// otherwise). Returns the updated user. `NotFound`.
    fn record_login_failure(&self, id: UserId, lock_until: Option<i64>, at: i64) -> Result<User>;
    /// Resets failures and lock and sets `last_totp_step = totp_step`, atomically and only
    /// if `totp_step` is greater than the stored step (or none is stored): otherwise
    /// `Conflict` (a replayed code). `NotFound`.
    fn record_login_success(&self, id: UserId, totp_step: i64, at: i64) -> Result<User>;

    /// Stores a new session. `Conflict` if the id is taken or the user is disabled;
    /// `NotFound` for an unknown user.
    fn create_session(&self, session: &ConsoleSession) -> Result<()>;
    /// The session with this id hash (expired or not: the caller checks).
    fn session(&self, id_hash: &str) -> Result<Option<ConsoleSession>>;
    /// `last_seen_at = at` (never moved back); no error if the session is gone.
    fn touch_session(&self, id_hash: &str, at: i64) -> Result<()>;
    /// Deletes a session. Idempotent.
    fn delete_session(&self, id_hash: &str) -> Result<()>;
    /// Deletes the sessions past their absolute end (`expires_at <= now`) or idle too long
    /// (`last_seen_at <= now - idle_ms`); returns how many.
    fn delete_expired_sessions(&self, now: i64, idle_ms: i64) -> Result<u64>;

    /// Gives a held case to another queue (escalation, a second opinion): exactly as
    /// [`ConsoleStore::release_case`] (or [`ConsoleStore::skip_case`] when `skip`, so the
    /// holder is not offered it again), and the case moves to `queue` with a history line
    /// `requeued` ("old -> new: reason"), in one transaction. `Conflict` if the lease is not
    /// holder's; `NotFound`.
    #[allow(clippy::too_many_arguments)]
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
    ) -> Result<Case>;

    /// The latest cases of one account, newest first, at most `limit`: the uploader's other
    /// items and earlier decisions on the item view (an index seek at any size).
    fn cases_of_account(&self, account: &str, limit: usize) -> Result<Vec<Case>>;

    /// Atomically: picks the first case of `queues` claimable by `holder` (see the trait
    /// docs), moves it open -> in_review with a history line (action `state`, actor
    /// `actor_label`, note `claimed`), or, for an expired lease, writes a line (action
    /// `claimed`, no state change); takes the lease until `now + lease_ms`; writes the events
    /// `events` builds from the claimed case. `None` when nothing is claimable. Safe with
    /// any number of concurrent claimers: no case is handed to two holders.
    fn claim_next(
        &self,
        queues: &[String],
        holder: UserId,
        actor_label: &str,
        now: i64,
        lease_ms: i64,
        events: &mut dyn FnMut(&Case) -> Vec<NewEvent>,
    ) -> Result<Option<(Case, Lease)>>;
    /// [`ConsoleStore::claim_next`] for each job in order, in as few transactions as the
    /// backend can (one, on SQLite and PostgreSQL), so concurrent claims share one durable
    /// commit. Each job gets exactly the answer `claim_next` would give it run alone after the
    /// jobs before it. A refused job (unknown holder, bad lease) is answered alone; the outer
    /// error is a failure of the whole batch, none of whose claims then took effect.
    ///
    /// The SQLite and PostgreSQL stores commit a batch without waiting for the disk
    /// (`synchronous=NORMAL`, `synchronous_commit = off`, for that transaction only): a
    /// process crash loses nothing, and a power cut can lose only the last claims, which is
    /// a lease that ended early: the case is open again and its reviewer is told to claim it
    /// again when they decide. Every other write stays durable at commit.
    fn claim_next_batch(&self, batch: &mut [ClaimJob]) -> Result<Vec<Result<Claimed>>> {
        Ok(batch
            .iter_mut()
            .map(|j| {
                self.claim_next(
                    &j.queues,
                    j.holder,
                    &j.actor_label,
                    j.now,
                    j.lease_ms,
                    &mut *j.events,
                )
            })
            .collect())
    }
    /// Claims one given case by the same rules, skips aside (a reviewer may open a case they
    /// skipped). A case whose lease `holder` already holds is renewed instead (no history
    /// line, no events, `events` is not called). `Conflict` if another holder's lease is live,
    /// the case is not open or in review, or it is in review without a lease. `NotFound`.
    fn claim_case(
        &self,
        id: CaseId,
        holder: UserId,
        actor_label: &str,
        now: i64,
        lease_ms: i64,
        events: &mut dyn FnMut(&Case) -> Vec<NewEvent>,
    ) -> Result<(Case, Lease)>;
    /// Extends `holder`'s lease to `now + lease_ms` (also a lapsed one nobody took yet).
    /// `Conflict` if the lease is not `holder`'s (none, or taken by another) or the case is
    /// no longer in review. `NotFound` for an unknown case.
    fn renew_lease(&self, id: CaseId, holder: UserId, now: i64, lease_ms: i64) -> Result<Lease>;
    /// The lease of a case, live or lapsed.
    fn lease(&self, id: CaseId) -> Result<Option<Lease>>;
    /// Deletes `holder`'s lease; if the case is in review, moves it back to open (history line
    /// `state` in_review -> open, note `reason`); writes the events `events` builds from the
    /// case as it is after. `Conflict` if the lease is not `holder`'s. `NotFound`.
    fn release_case(
        &self,
        id: CaseId,
        holder: UserId,
        actor_label: &str,
        reason: &str,
        at: i64,
        events: &mut dyn FnMut(&Case) -> Vec<NewEvent>,
    ) -> Result<Case>;
    /// [`ConsoleStore::release_case`], plus a history line (action `skipped`, note `reason`)
    /// and the record that `holder` skipped the case: `claim_next` never offers it to
    /// `holder` again (others still get it).
    fn skip_case(
        &self,
        id: CaseId,
        holder: UserId,
        actor_label: &str,
        reason: &str,
        at: i64,
        events: &mut dyn FnMut(&Case) -> Vec<NewEvent>,
    ) -> Result<Case>;
    /// Deletes the lease of a case (after it is decided). Idempotent.
    fn drop_lease(&self, id: CaseId) -> Result<()>;
    /// Returns to their queue the cases whose lease lapsed at or before `lapsed_before`, at
    /// most `limit` of them, longest lapsed first: each as [`ConsoleStore::release_case`] by
    /// its holder would (the lease deleted, a case in review back to `open` with a history
    /// line `state` in_review -> open noting "the lease lapsed", by `actor_label`), and the
    /// events `events` builds. Returns the cases as they are after. Without it, claims would
    /// look through every lapsed lease of a queue for the first one: this keeps that set to
    /// the leases that lapsed since the last sweep.
    fn reopen_lapsed(
        &self,
        lapsed_before: i64,
        limit: usize,
        actor_label: &str,
        at: i64,
        events: &mut dyn FnMut(&Case) -> Vec<NewEvent>,
    ) -> Result<Vec<Case>>;
    /// Per queue with any open or in-review case, by name: the counts and the oldest
    /// `opened_at`. Constant work per queue, whatever the number of cases.
    fn queue_stats(&self) -> Result<Vec<QueueStats>>;
    /// Cases in `decided` whose decision starts with `confirmed` and that have no `approved`
    /// history line after their last move into `decided` (a case decided again needs a new
    /// approval), oldest decision first, at most `limit`.
    fn cases_awaiting_approval(&self, limit: usize) -> Result<Vec<Case>>;

    /// Records that `user` revealed an object. `NotFound` for an unknown user or case.
    fn start_reveal(
        &self,
        user: UserId,
        case_id: CaseId,
        object_id: &str,
        at: i64,
    ) -> Result<Reveal>;
    /// Sets `ended_at = at` (never before `started_at`) if not ended yet: idempotent, the
    /// first end stays. `NotFound`; `Conflict` if the reveal is another user's.
    fn end_reveal(&self, id: i64, user: UserId, at: i64) -> Result<Reveal>;
    /// Every reveal of an object, oldest first: who saw it, and for how long.
    fn reveals_of_object(&self, object_id: &str) -> Result<Vec<Reveal>>;
    /// A user's reveals started in `[from, to)`, oldest first.
    fn reveals_of_user(&self, user: UserId, from: i64, to: i64) -> Result<Vec<Reveal>>;
    /// A user's reveals started in `[from, to)` with their time on screen (one still open
    /// counts up to `now`), and the review time attributed in `[from, to)`.
    fn exposure(&self, user: UserId, from: i64, to: i64, now: i64) -> Result<ExposureTotals>;
    /// [`ConsoleStore::exposure`] over all users together (leads see aggregates only): the
    /// number of people with any reveal in the period, and the totals.
    fn exposure_all(&self, from: i64, to: i64, now: i64) -> Result<(u64, ExposureTotals)>;
    /// Adds time spent on a claimed case (claim -> decision or release), attributed at `at`.
    /// `NotFound` for an unknown user or case; a negative `ms` is refused.
    fn add_review_time(&self, user: UserId, case_id: CaseId, ms: i64, at: i64) -> Result<()>;

    /// Creates or replaces the labels of objects, by (case, object), all in one transaction.
    /// `NotFound` for an unknown case.
    fn put_item_labels(&self, labels: &[ItemLabel]) -> Result<()>;
    /// A case's labels, by object id.
    fn item_labels(&self, case_id: CaseId) -> Result<Vec<ItemLabel>>;

    /// A settings blob (JSON, opaque here) by scope: `org`, `queue:<name>`, `harm:<label>`,
    /// `user:<id>`.
    fn setting(&self, scope: &str) -> Result<Option<String>>;
    /// Creates or replaces a settings blob.
    fn put_setting(&self, scope: &str, json: &str, at: i64) -> Result<()>;

    /// Records feedback for sources, in one transaction, each `pending`. The same feedback
    /// (case, exchange, entry, signal, verdict) recorded again is left as it is (a decision
    /// retried never votes twice), unless it was `cancelled`: then it is `pending` again, its
    /// attempts counted afresh (the case was decided the same way again). Returns how many
    /// were new or revived. `NotFound` for an unknown case.
    fn record_source_feedback(&self, items: &[NewSourceFeedback]) -> Result<usize>;
    /// Recorded source feedback by `filter`, by id.
    fn source_feedback(&self, filter: &FeedbackFilter) -> Result<Vec<SourceFeedback>>;
    /// Records one send attempt of a `pending` row: `error` `None` makes it `sent`; an error
    /// counts the attempt, keeps the error, and makes it `failed` once `max_attempts` are
    /// spent, else it stays `pending`, due again at `retry_at`. `NotFound`; `Conflict` if it
    /// is not `pending`.
    fn note_feedback_attempt(
        &self,
        id: i64,
        error: Option<&str>,
        at: i64,
        max_attempts: u32,
        retry_at: i64,
    ) -> Result<SourceFeedback>;
    /// Makes a `pending` row `cancelled`, keeping `reason` as its last error. `NotFound`;
    /// `Conflict` if it is not `pending`.
    fn cancel_source_feedback(&self, id: i64, reason: &str, at: i64) -> Result<SourceFeedback>;
    /// Moves a `pending` row's next attempt to `until` without counting an attempt (its case
    /// is not ready for it yet). `Conflict` if it is not pending or does not exist.
    fn defer_source_feedback(&self, id: i64, until: i64) -> Result<()>;
    /// Makes every `failed` row of `exchange` `pending` again, due at `at`, with its attempts
    /// counted afresh (the last error kept). Returns how many.
    fn retry_failed_feedback(&self, exchange: &str, at: i64) -> Result<usize>;
}

/// Annotations are stored as a JSON array: unlike labels they are free text, so no
/// separator character is safe.
pub(crate) fn annotations_to_json(annotations: &[String]) -> Result<String> {
    serde_json::to_string(annotations)
        .map_err(|e| Error::Backend(format!("invalid value: annotations: {e}")))
}

pub(crate) fn annotations_from_json(text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text)
        .map_err(|e| Error::Corrupt(format!("console_item_labels row: annotations: {e}")))
}

/// A lease must end after it starts; a zero or negative length is a caller's bug that would
/// hand out leases that are already lapsed.
/// The source-feedback row an attempt or a cancel applies to: `NotFound` without one,
/// `Conflict` unless it is still pending.
pub(crate) fn require_pending(f: Option<SourceFeedback>, id: i64) -> Result<SourceFeedback> {
    let f = f.ok_or_else(|| Error::NotFound(format!("source feedback {id}")))?;
    if f.status != "pending" {
        return Err(Error::Conflict(format!(
            "source feedback {id} is {}, not pending",
            f.status
        )));
    }
    Ok(f)
}

/// What one send attempt makes of a pending row (see
/// [`ConsoleStore::note_feedback_attempt`]): its attempts, status, last error and sent time.
pub(crate) fn attempt_outcome(
    f: &SourceFeedback,
    error: Option<&str>,
    at: i64,
    max_attempts: u32,
) -> (u32, &'static str, Option<String>, Option<i64>) {
    let attempts = f.attempts.saturating_add(1);
    let (status, last_error, sent_at) = match error {
        None => ("sent", f.last_error.clone(), Some(at)),
        Some(e) if attempts >= max_attempts => ("failed", Some(e.to_string()), None),
        Some(e) => ("pending", Some(e.to_string()), None),
    };
    (attempts, status, last_error, sent_at)
}

pub(crate) fn check_lease_ms(lease_ms: i64) -> Result<()> {
    if lease_ms > 0 {
        Ok(())
    } else {
        Err(Error::Backend(format!(
            "invalid value: a lease of {lease_ms} ms"
        )))
    }
}

/// The order claims follow, as a key that sorts ascending: priority DESC, opened_at ASC,
/// id ASC.
pub(crate) type ClaimKey = (std::cmp::Reverse<i64>, i64, CaseId);
