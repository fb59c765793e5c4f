//! What Safeguard keeps about acting on matches: policy rules, content submissions and their
//! verdicts, cases, evidence records, webhook endpoints and the event outbox.
//!
//! The store keeps these as plain records: the rule language, the case state machine, the
//! retention periods and the event format are the engine's. What the store guarantees is
//! atomicity: a submission, its case, its evidence record and the events describing them are
//! written in ONE transaction ([`ActionStore::record_submission`]), so a crash can neither
//! lose an event for a recorded verdict nor leave an event for a verdict that was never
//! recorded (the transactional outbox).

use crate::Result;

/// Row id of a submission.
pub type SubmissionId = i64;
/// Row id of a case.
pub type CaseId = i64;
/// Row id of a webhook endpoint.
pub type WebhookId = i64;
/// Row id of one delivery (one event to one endpoint).
pub type DeliveryId = i64;

/// One policy rule as stored: its spec is the engine's JSON, opaque here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRule {
    /// The operator's id, unique in the current set.
    pub id: String,
    /// Starts at 1; goes up by one each time the rule's spec changes (ids are never reused
    /// for another meaning: deleting and re-creating a rule continues its versions).
    pub version: u32,
    /// Place in the ordered set, from 0.
    pub position: u32,
    /// The rule, as JSON.
    pub spec: String,
    /// When this version was written, Unix milliseconds.
    pub created_at: i64,
}

/// A rule to store: id and JSON spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRule {
    /// The operator's id.
    pub id: String,
    /// The rule, as JSON.
    pub spec: String,
}

/// The rule set `rules` with `rule` put in (see [`ActionStore::put_rule`]): replaced in place,
/// or moved to `position`, or inserted there (appended without one); `Conflict` when that
/// makes the set longer than `max_rules`. Both stores write the result in their transaction.
pub(crate) fn put_into(
    mut rules: Vec<NewRule>,
    rule: &NewRule,
    position: Option<u32>,
    max_rules: usize,
) -> Result<Vec<NewRule>> {
    let at = rules.iter().position(|r| r.id == rule.id);
    match (at, position) {
        (Some(i), None) => rules[i] = rule.clone(),
        (Some(i), Some(p)) => {
            rules.remove(i);
            let p = (p as usize).min(rules.len());
            rules.insert(p, rule.clone());
        }
        (None, None) => rules.push(rule.clone()),
        (None, Some(p)) => {
            let p = (p as usize).min(rules.len());
            rules.insert(p, rule.clone());
        }
    }
    if rules.len() > max_rules {
        return Err(crate::Error::Conflict(format!(
            "a rule set holds at most {max_rules} rules; delete one before adding {:?}",
            rule.id
        )));
    }
    Ok(rules)
}

/// What replacing the rule set did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSetOutcome {
    /// The set now in force, in order.
    pub rules: Vec<StoredRule>,
    /// Rules that did not exist before (or had been deleted).
    pub created: u32,
    /// Rules whose spec changed (new version).
    pub changed: u32,
    /// Rules left exactly as they were (same spec and position).
    pub unchanged: u32,
    /// Rules that moved without changing their spec (same version).
    pub moved: u32,
    /// Rules removed from the set.
    pub removed: u32,
    /// The rule-set generation after the change (see [`ActionStore::rules_generation`]).
    pub generation: i64,
}

impl RuleSetOutcome {
    /// The audit log's detail for a replaced set, the same from the API and the CLI.
    pub fn audit_detail(&self) -> String {
        format!(
            "set replaced: {} in force, {} created, {} changed, {} removed",
            self.rules.len(),
            self.created,
            self.changed,
            self.removed
        )
    }
}

/// The case a submission joins, when its verdict calls for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseAssignment {
    /// Review queue.
    pub queue: String,
    /// Priority, higher first (the engine's scale).
    pub priority: i32,
    /// Whether the case should be considered for a report.
    pub report_candidate: bool,
    /// Labels from the rule.
    pub labels: Vec<String>,
}

/// The evidence record of a submission's media (the ciphertext lives in the vault).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvidence {
    /// The vault's object id.
    pub object_id: String,
    /// Where the vault put the ciphertext.
    pub blob_key: String,
    /// The object's data key, wrapped by the master key. Deleting it destroys the object.
    pub wrapped_key: Vec<u8>,
    /// Fingerprint of the master key that wrapped it.
    pub key_fingerprint: String,
    /// SHA-256 of the plaintext, hex.
    pub sha256: String,
    /// MD5 of the plaintext, hex.
    pub md5: String,
    /// Plaintext length, bytes.
    pub size: i64,
    /// What the media is (`image`, `video`, `other`).
    pub media_kind: String,
}

/// A stored evidence record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The vault's object id.
    pub object_id: String,
    /// The submission it belongs to.
    pub submission_id: SubmissionId,
    /// The case it belongs to.
    pub case_id: CaseId,
    /// Where the ciphertext is.
    pub blob_key: String,
    /// The wrapped data key; `None` once destroyed.
    pub wrapped_key: Option<Vec<u8>>,
    /// Fingerprint of the master key that wrapped it.
    pub key_fingerprint: String,
    /// SHA-256 of the plaintext, hex.
    pub sha256: String,
    /// MD5 of the plaintext, hex.
    pub md5: String,
    /// Plaintext length, bytes.
    pub size: i64,
    /// `image`, `video` or `other`.
    pub media_kind: String,
    /// When it was stored, Unix milliseconds.
    pub created_at: i64,
    /// When it was destroyed, Unix milliseconds.
    pub deleted_at: Option<i64>,
    /// Why it was destroyed (`retention_expired`, ...).
    pub deletion_reason: Option<String>,
}

/// A submission to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubmission {
    /// The platform's content id, unique.
    pub platform_id: String,
    /// Digest of what was submitted (signals and media), to tell a replay from a clash.
    pub fingerprint: String,
    /// The platform's account id, if given.
    pub account: Option<String>,
    /// The verdict (`allow`, `review`, `hold`, `block`).
    pub verdict: String,
    /// The rule that decided, with its version.
    pub rule: Option<(String, u32)>,
    /// The request's context as JSON (kind, surface, account age, ip, metadata, signals).
    pub context: String,
    /// The matches and the decision as JSON (the answer the client got, less ids).
    pub result: String,
    /// The case to join or open; `None` for no case.
    pub case: Option<CaseAssignment>,
    /// The media's evidence record; only with a case.
    pub evidence: Option<NewEvidence>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// What [`ActionStore::record_submission`] assigned, for building the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The submission's row id.
    pub submission_id: SubmissionId,
    /// The case it joined or opened.
    pub case: Option<Case>,
    /// Whether the case was opened by this submission.
    pub case_opened: bool,
    /// The labels this submission gave the case that it did not have (all of its labels for a
    /// case it opened): what is new about the case, once.
    pub new_labels: Vec<String>,
}

/// A stored submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubmission {
    /// Row id.
    pub id: SubmissionId,
    /// The platform's content id.
    pub platform_id: String,
    /// See [`NewSubmission::fingerprint`].
    pub fingerprint: String,
    /// The platform's account id.
    pub account: Option<String>,
    /// The verdict.
    pub verdict: String,
    /// The deciding rule and version.
    pub rule: Option<(String, u32)>,
    /// See [`NewSubmission::context`].
    pub context: String,
    /// See [`NewSubmission::result`].
    pub result: String,
    /// The case it is in.
    pub case_id: Option<CaseId>,
    /// The events written with it.
    pub event_ids: Vec<String>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// The result of recording a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Newly recorded, with the events written.
    Recorded(StoredSubmission),
    /// The same id was already recorded with the same fingerprint: the stored record, and
    /// nothing was written.
    Replayed(StoredSubmission),
}

/// A case: the matched items of one account, for review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Row id.
    pub id: CaseId,
    /// The platform's account id (`None`: the submission named none; such a case holds one
    /// item).
    pub account: Option<String>,
    /// `open`, `in_review`, `decided`, `reported`, `closed` (the engine's state machine).
    pub state: String,
    /// Review queue.
    pub queue: String,
    /// Highest priority of its items.
    pub priority: i32,
    /// Whether any item is a report candidate.
    pub report_candidate: bool,
    /// Union of its items' labels.
    pub labels: Vec<String>,
    /// Number of items.
    pub items: u32,
    /// Whether a legal hold stops its evidence's retention clock.
    pub legal_hold: bool,
    /// The decision recorded on entering `decided`.
    pub decision: Option<String>,
    /// When it entered `reported`.
    pub reported_at: Option<i64>,
    /// Unix milliseconds.
    pub opened_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// Which cases to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    /// Only this state.
    pub state: Option<String>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this account.
    pub account: Option<String>,
    /// Opened at or after (Unix milliseconds).
    pub since: Option<i64>,
    /// Opened before (Unix milliseconds).
    pub until: Option<i64>,
    /// Page: ids below this one (newest first).
    pub before: Option<CaseId>,
    /// Only cases whose history has a line of this action (what a start looks through for
    /// unfinished sends: `nca_api`). Tested in the database, so the caller fetches no other
    /// case's history (the database still looks at each candidate case's lines through the
    /// history's index by case).
    pub with_history: Option<String>,
    /// Page size.
    pub limit: usize,
}

/// One line of a case's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseHistory {
    /// Unix milliseconds.
    pub at: i64,
    /// Who: an API key id, `system`, or `cli`.
    pub actor: String,
    /// `opened`, `item_added`, `state`, `legal_hold`.
    pub action: String,
    /// State before (for `state`).
    pub from_state: Option<String>,
    /// State after (for `state`).
    pub to_state: Option<String>,
    /// Free text: the note, the submission id.
    pub note: Option<String>,
    /// The decision recorded with this line (a `state` change into `decided`), kept here so
    /// figures for a past period stay what they were when a case is later decided again.
    pub decision: Option<String>,
}

/// One line of some case's history, with its position, for reading the history of every
/// case over a period ([`ActionStore::case_history_between`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseHistoryRow {
    /// Row id: increasing in the order lines were written; the page cursor.
    pub id: i64,
    /// The case.
    pub case_id: CaseId,
    /// The line.
    pub entry: CaseHistory,
}

/// A second person's approval of a decided case (the two-person rule). The engine checks
/// who may approve; the store records it atomically with the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseApproval {
    /// Who approves.
    pub actor: String,
    /// The case's `updated_at` the approver saw: the approval is refused (`Conflict`) if the
    /// case changed since, so nobody approves a decision they have not seen.
    pub seen_updated_at: i64,
    /// Free text.
    pub note: Option<String>,
    /// Unix milliseconds.
    pub at: i64,
}

/// A change of a case's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseTransition {
    /// The state the caller saw; the change is refused (`Conflict`) if it has moved on.
    pub from: String,
    /// The new state.
    pub to: String,
    /// Who.
    pub actor: String,
    /// Why / the decision.
    pub note: Option<String>,
    /// Recorded as the case's decision when set.
    pub decision: Option<String>,
    /// Labels of the case's items (a console decision's classifications), created or
    /// replaced in the same transaction: they stand only if the move does, so a case that
    /// left review meanwhile gets neither. Each must name this case (else `Conflict`).
    pub labels: Vec<crate::console::ItemLabel>,
    /// Unix milliseconds.
    pub at: i64,
}

/// An event for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Globally unique id (`evt_...`): the receivers' idempotency key.
    pub id: String,
    /// Event type, e.g. `content.verdict`.
    pub event_type: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The exact body sent (JSON), signed as is.
    pub body: String,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Position in the outbox.
    pub seq: i64,
    /// See [`NewEvent::id`].
    pub id: String,
    /// See [`NewEvent::event_type`].
    pub event_type: String,
    /// See [`NewEvent::created_at`].
    pub created_at: i64,
    /// See [`NewEvent::body`].
    pub body: String,
}

/// A webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Row id.
    pub id: WebhookId,
    /// Where events are POSTed.
    pub url: String,
    /// Event types it receives (`*` for all).
    pub event_types: Vec<String>,
    /// Its signing secret, sealed by the server's master key.
    pub sealed_secret: Vec<u8>,
    /// Whether deliveries run.
    pub enabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Start of its current run of failed attempts (Unix milliseconds).
    pub failing_since: Option<i64>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// A webhook endpoint to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    /// See [`Webhook::url`].
    pub url: String,
    /// See [`Webhook::event_types`].
    pub event_types: Vec<String>,
    /// See [`Webhook::sealed_secret`].
    pub sealed_secret: Vec<u8>,
}

/// A delivery that is due: the oldest pending one of an enabled endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    /// Row id.
    pub delivery_id: DeliveryId,
    /// The endpoint.
    pub webhook_id: WebhookId,
    /// Its URL.
    pub url: String,
    /// Its sealed secret.
    pub sealed_secret: Vec<u8>,
    /// The event.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The body to send.
    pub body: String,
    /// Attempts so far.
    pub attempts: u32,
    /// First attempt (Unix milliseconds), the start of the retry horizon.
    pub first_attempt_at: Option<i64>,
    /// When it is (or was) due (Unix milliseconds).
    pub next_attempt_at: i64,
}

/// One delivery attempt, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// Unix milliseconds.
    pub at: i64,
    /// HTTP status, if a response came.
    pub status: Option<u16>,
    /// Milliseconds to the response or the failure.
    pub latency_ms: i64,
    /// The start of the response body.
    pub response_excerpt: String,
    /// The transport error, if any.
    pub error: Option<String>,
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryNext {
    /// Done.
    Delivered,
    /// Try again at this time (Unix milliseconds).
    RetryAt(i64),
    /// Give up: the dead-letter list.
    Dead,
}

impl DeliveryNext {
    /// What an attempt at `at` writes to its delivery row, for both stores: the new state,
    /// next attempt time and done time, and whether to write them only while the delivery is
    /// still pending. A late retry or give-up never brings back a delivery that is already
    /// done or dead (say, disabled meanwhile); a success always counts: the receiver has it.
    pub(crate) fn row_update(self, at: i64) -> (&'static str, i64, Option<i64>, bool) {
        match self {
            DeliveryNext::Delivered => ("delivered", at, Some(at), false),
            DeliveryNext::RetryAt(t) => ("pending", t, None, true),
            DeliveryNext::Dead => ("dead", at, Some(at), true),
        }
    }
}

/// A dead-lettered delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Row id.
    pub delivery_id: DeliveryId,
    /// The event.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// Attempts made.
    pub attempts: u32,
    /// Last status seen.
    pub last_status: Option<u16>,
    /// Last error seen.
    pub last_error: Option<String>,
    /// When its first attempt was made (Unix milliseconds), if any was.
    pub first_attempt_at: Option<i64>,
    /// When it was given up (Unix milliseconds).
    pub dead_at: i64,
}

/// Outbox counts, for metrics and the crash-loop check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Events stored.
    pub events: u64,
    /// Deliveries waiting.
    pub pending: u64,
    /// Deliveries done.
    pub delivered: u64,
    /// Deliveries given up.
    pub dead: u64,
    /// Endpoints disabled.
    pub disabled_webhooks: u64,
}

/// Builds the events of a recorded submission from the ids the store assigned.
pub type EventBuilder = Box<dyn FnMut(&Recorded) -> Vec<NewEvent> + Send>;

/// One submission waiting for a group commit ([`ActionStore::record_submissions`]).
pub struct SubmissionJob {
    /// What to record.
    pub submission: NewSubmission,
    /// Its events, built once the ids are known.
    pub events: EventBuilder,
}

impl std::fmt::Debug for SubmissionJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubmissionJob")
            .field("submission", &self.submission)
            .finish_non_exhaustive()
    }
}

/// Storage of acting on matches. Part of every [`crate::Store`].
pub trait ActionStore: Send + Sync {
    // ------------------------------------------------------------------ rules
    /// The rule set in force, in order.
    fn rules(&self) -> Result<Vec<StoredRule>>;
    /// A counter that goes up with every change of the rule set, so a process can tell
    /// cheaply that another one changed it.
    fn rules_generation(&self) -> Result<i64>;
    /// Every stored version of one rule, oldest first (deleted rules keep their history).
    fn rule_history(&self, id: &str) -> Result<Vec<StoredRule>>;
    /// Replaces the whole set atomically, in the given order: new ids start at version 1
    /// (or continue a deleted rule's versions), changed specs get the next version, ids not
    /// given are removed. `Conflict` on a repeated id.
    fn replace_rules(&self, rules: &[NewRule]) -> Result<RuleSetOutcome>;
    /// Creates or changes one rule; `position` None keeps its place (or appends a new one).
    /// `Conflict`, writing nothing, when a new id would make the set longer than `max_rules`
    /// (checked inside the transaction, so two writers racing for the last place cannot both
    /// take it: a set over the limit would no longer compile, and every submission would fail).
    fn put_rule(
        &self,
        rule: &NewRule,
        position: Option<u32>,
        max_rules: usize,
    ) -> Result<RuleSetOutcome>;
    /// Removes one rule from the set. `NotFound`.
    fn delete_rule(&self, id: &str) -> Result<RuleSetOutcome>;

    // ------------------------------------------------------------ submissions
    /// The submission with this platform id.
    fn submission(&self, platform_id: &str) -> Result<Option<StoredSubmission>>;
    /// Records a submission, joining or opening its case and storing its evidence record,
    /// and writes the events `events` builds from the assigned ids, all in one transaction.
    /// A platform id already recorded with the same fingerprint is a replay (nothing
    /// written, `events` not called); with another fingerprint, `Conflict`.
    fn record_submission(
        &self,
        submission: &NewSubmission,
        events: &mut dyn FnMut(&Recorded) -> Vec<NewEvent>,
    ) -> Result<SubmitOutcome>;
    /// Records several submissions in one transaction (group commit: one durable commit
    /// for many concurrent submitters). Each item behaves exactly as
    /// [`ActionStore::record_submission`] would alone, in the given order, and gets its own
    /// outcome: an item that fails (a conflict) writes nothing and does not affect the others.
    /// The outer error means the commit itself failed and nothing was written.
    fn record_submissions(
        &self,
        batch: &mut [SubmissionJob],
    ) -> Result<Vec<Result<SubmitOutcome>>> {
        Ok(batch
            .iter_mut()
            .map(|job| self.record_submission(&job.submission, &mut *job.events))
            .collect())
    }

    // ------------------------------------------------------------------ cases
    /// A page of cases, newest first.
    fn cases(&self, filter: &CaseFilter) -> Result<Vec<Case>>;
    /// One case.
    fn case(&self, id: CaseId) -> Result<Option<Case>>;
    /// A case's submissions, oldest first.
    fn case_submissions(&self, id: CaseId) -> Result<Vec<StoredSubmission>>;
    /// A case's history, oldest first.
    fn case_history(&self, id: CaseId) -> Result<Vec<CaseHistory>>;
    /// Moves a case from `t.from` to `t.to` (the caller checked the transition is allowed)
    /// and writes the events `events` builds, in one transaction. `NotFound`; `Conflict` if
    /// the case is no longer in `t.from`.
    fn transition_case(
        &self,
        id: CaseId,
        t: &CaseTransition,
        events: &mut dyn FnMut(&Case) -> Vec<NewEvent>,
    ) -> Result<Case>;
    /// Sets or lifts a case's legal hold (recorded in its history). `NotFound`.
    fn set_legal_hold(&self, id: CaseId, hold: bool, actor: &str, at: i64) -> Result<Case>;
    /// Adds a history line (`action`, `note`, no change of state) to a case: a choice made
    /// about it that is not a change to it, such as where its report goes. `NotFound` for an
    /// unknown case.
    fn note_case(&self, id: CaseId, actor: &str, action: &str, note: &str, at: i64) -> Result<()>;
    /// Records an approval (history action `approved`) of a case in `decided` and writes the
    /// events `events` builds, in one transaction. `NotFound`; `Conflict` if the case is not
    /// `decided` or its `updated_at` is not `a.seen_updated_at`.
    fn approve_case(
        &self,
        id: CaseId,
        a: &CaseApproval,
        events: &mut dyn FnMut(&Case) -> Vec<NewEvent>,
    ) -> Result<Case>;
    /// History lines of every case written at `from <= at < to`, with row id above
    /// `after_id`, in row-id order, at most `limit`: the source of the review and report
    /// figures.
    fn case_history_between(
        &self,
        from: i64,
        to: i64,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<CaseHistoryRow>>;
    /// Submissions recorded at `from <= created_at < to`, ordered by (`created_at`, id),
    /// after the cursor `after` (a previous page's last (`created_at`, id)), at most `limit`:
    /// the source of the scanning and matching figures.
    fn submissions_between(
        &self,
        from: i64,
        to: i64,
        after: Option<(i64, SubmissionId)>,
        limit: usize,
    ) -> Result<Vec<StoredSubmission>>;

    // --------------------------------------------------------------- evidence
    /// The evidence records of a case.
    fn case_evidence(&self, id: CaseId) -> Result<Vec<Evidence>>;
    /// One evidence record.
    fn evidence(&self, object_id: &str) -> Result<Option<Evidence>>;
    /// Live evidence whose retention has run out at `now`: held cases never; reported cases
    /// `after_report_ms` after the report; others `unreported_ms` after storing. Oldest
    /// first, at most `limit`.
    fn expired_evidence(
        &self,
        now: i64,
        after_report_ms: i64,
        unreported_ms: i64,
        limit: usize,
    ) -> Result<Vec<Evidence>>;
    /// Destroys an evidence record whose retention has run out at `at` (the clocks of
    /// [`ActionStore::expired_evidence`]): drops its data key (the object becomes unreadable)
    /// and records when and why, with an access-log line. `NotFound`; destroying twice is a
    /// no-op; `Conflict` while its case is on legal hold or when the record is not due, both
    /// checked in the same transaction: a hold placed, or a report filed (which restarts the
    /// clock), after the caller found the record due still keeps it.
    fn destroy_evidence(
        &self,
        object_id: &str,
        at: i64,
        after_report_ms: i64,
        unreported_ms: i64,
        reason: &str,
    ) -> Result<Evidence>;
    /// Destroyed evidence whose blob is not known to be deleted (the delete failed, or the
    /// process stopped first), oldest destruction first, at most `limit`.
    fn evidence_blobs_left(&self, limit: usize) -> Result<Vec<Evidence>>;
    /// Records that a destroyed record's blob is deleted. `NotFound`; a record not destroyed
    /// is refused (`Conflict`): its blob is still the evidence.
    fn mark_blob_deleted(&self, object_id: &str, at: i64) -> Result<()>;
    /// Appends a line to the access log (who read or exported what, and why).
    fn log_access(&self, actor: &str, action: &str, object: &str, at: i64) -> Result<()>;
    /// The access log's lines about one object, oldest first, as (at, actor, action).
    fn access_log(&self, object: &str) -> Result<Vec<(i64, String, String)>>;

    // --------------------------------------------------------------- webhooks
    /// Registers an endpoint.
    fn create_webhook(&self, webhook: &NewWebhook) -> Result<Webhook>;
    /// All endpoints, by id.
    fn webhooks(&self) -> Result<Vec<Webhook>>;
    /// One endpoint.
    fn webhook(&self, id: WebhookId) -> Result<Option<Webhook>>;
    /// Removes an endpoint and its pending deliveries. `NotFound`.
    fn delete_webhook(&self, id: WebhookId) -> Result<Webhook>;
    /// Enables (clearing the failure run and the reason) or disables an endpoint; disabling
    /// a disabled endpoint keeps its first reason. Disabling leaves pending deliveries as
    /// they are (see [`ActionStore::disable_webhook`]). Returns the endpoint and whether it
    /// was enabled just before, read in the same transaction (so a caller records only a
    /// real change, even when the dispatcher disabled it a moment earlier). `NotFound`.
    fn set_webhook_enabled(
        &self,
        id: WebhookId,
        enabled: bool,
        reason: Option<&str>,
    ) -> Result<(Webhook, bool)>;
    /// Replaces an endpoint's sealed secrets (a rotation) if they are still `expected` (what
    /// the caller read: a compare-and-set, so two rotations at once cannot lose one);
    /// deliveries from then on are signed with what it holds. `NotFound`; `Conflict` when
    /// they changed meanwhile.
    fn set_webhook_secret(
        &self,
        id: WebhookId,
        expected: &[u8],
        sealed_secret: &[u8],
    ) -> Result<Webhook>;
    /// Disables an endpoint (keeping a first reason) and dead-letters its pending
    /// deliveries, in one transaction. Returns how many were dead-lettered. `NotFound`.
    fn disable_webhook(&self, id: WebhookId, reason: &str, at: i64) -> Result<u64>;

    // ----------------------------------------------------------------- outbox
    /// Writes events not tied to a submission or a case change, with a pending delivery
    /// (due at `at`) to each enabled endpoint that takes their type, in one transaction.
    fn append_events(&self, events: &[NewEvent], at: i64) -> Result<()>;
    /// Writes one pending delivery of `event` to one endpoint, due at `due_at`, storing the
    /// event if its id is new (for redelivery tools and the outbox conformance suite).
    /// `NotFound` for an unknown endpoint.
    fn enqueue_delivery(
        &self,
        webhook: WebhookId,
        event: &NewEvent,
        due_at: i64,
    ) -> Result<DeliveryId>;
    /// Events after `after_seq`, in order, at most `limit`.
    fn events_since(&self, after_seq: i64, limit: usize) -> Result<Vec<StoredEvent>>;
    /// For each enabled endpoint, its oldest pending delivery if due at `now`; at most
    /// `limit`, oldest delivery first. A later event never overtakes an earlier one to the
    /// same endpoint.
    fn due_deliveries(&self, now: i64, limit: usize) -> Result<Vec<DueDelivery>>;
    /// The pending deliveries queued behind `after` for its endpoint, lowest id first: at
    /// most `limit`, stopping before the first one not due at `now` (so a run handed to the
    /// dispatcher is always the next events in order). Empty when the endpoint is disabled.
    fn queued_deliveries(
        &self,
        webhook: WebhookId,
        after: DeliveryId,
        now: i64,
        limit: usize,
    ) -> Result<Vec<DueDelivery>>;
    /// The earliest time a pending delivery of an enabled endpoint is due, if any.
    fn next_delivery_at(&self) -> Result<Option<i64>>;
    /// Logs an attempt and moves the delivery on, in one transaction; keeps the endpoint's
    /// failure run (`failing_since`) up to date. `NotFound`.
    fn record_delivery_attempt(
        &self,
        delivery: DeliveryId,
        attempt: &DeliveryAttempt,
        next: DeliveryNext,
    ) -> Result<()>;
    /// Records several attempts, in order, in one transaction; each as
    /// [`ActionStore::record_delivery_attempt`] would. `NotFound` (and nothing recorded) if
    /// any delivery is unknown.
    fn record_delivery_attempts(
        &self,
        batch: &[(DeliveryId, DeliveryAttempt, DeliveryNext)],
    ) -> Result<()>;
    /// Every attempt at one delivery, oldest first. `NotFound` for an unknown delivery.
    fn delivery_attempts(&self, delivery: DeliveryId) -> Result<Vec<DeliveryAttempt>>;
    /// Dead-lettered deliveries of an endpoint, oldest first.
    fn dead_letters(&self, webhook: WebhookId) -> Result<Vec<DeadLetter>>;
    /// Makes dead-lettered deliveries pending again, due at `now`, attempts reset; all of the
    /// endpoint's when `ids` is None. Returns how many.
    fn redrive(&self, webhook: WebhookId, ids: Option<&[DeliveryId]>, now: i64) -> Result<u64>;
    /// Dead-letters every pending delivery of an endpoint (it answered 410 Gone, or was
    /// disabled for failing too long). Returns how many.
    fn dead_letter_pending(&self, webhook: WebhookId, at: i64) -> Result<u64>;
    /// Outbox counts.
    fn outbox_counts(&self) -> Result<OutboxCounts>;
}

/// Whether evidence stored at `created_at`, in a case reported at `reported_at` (if ever), is
/// past its retention at `now`: the rule [`ActionStore::expired_evidence`] selects by, for
/// [`ActionStore::destroy_evidence`] to check again. A case `awaiting_report`
/// ([`awaiting_report`]) is not on the unreported clock: its report needs the evidence.
pub fn evidence_expired(
    created_at: i64,
    reported_at: Option<i64>,
    awaiting_report: bool,
    now: i64,
    after_report_ms: i64,
    unreported_ms: i64,
) -> bool {
    match reported_at {
        Some(r) => r.saturating_add(after_report_ms) <= now,
        None => !awaiting_report && created_at.saturating_add(unreported_ms) <= now,
    }
}

/// The word of a case's decision that says what kind it is: its text up to the first `:` or
/// space (`confirmed`, `not_csam`, ...; compare ignoring ASCII case). Decisions are free text;
/// the engine's `DecisionKind::of` and [`awaiting_report`] both read them by this word.
pub fn decision_word(decision: &str) -> &str {
    decision.split([':', ' ']).next().unwrap_or("")
}

/// Whether a case in `state` with `decision` is on its way to a report: decided, and the
/// decision confirmed ([`decision_word`] is `confirmed`). Until it is reported or closed its
/// evidence is kept: a decision waiting for its second approval, or a filing retried for
/// weeks while the hotline is down, would otherwise lose the files the report must carry to
/// the unreported clock. [`AWAITING_REPORT_SQL`] is the same test in SQL.
pub fn awaiting_report(state: &str, decision: Option<&str>) -> bool {
    state == "decided"
        && decision.is_some_and(|d| decision_word(d).eq_ignore_ascii_case("confirmed"))
}

/// [`awaiting_report`] over a case aliased `c`, for both stores.
pub(crate) const AWAITING_REPORT_SQL: &str = "(c.state = 'decided' AND c.decision IS NOT NULL \
     AND (lower(c.decision) = 'confirmed' OR lower(c.decision) LIKE 'confirmed:%' \
          OR lower(c.decision) LIKE 'confirmed %'))";

/// [`ActionStore::destroy_evidence`]'s refusals, shared by the stores: `ev`'s case is on
/// legal hold (`held`), or `ev`, in a case reported at `reported_at` (if ever) and now in
/// `state` with `decision` ([`awaiting_report`]), is not past its retention at `at`
/// ([`evidence_expired`]).
pub(crate) fn refuse_destruction(
    ev: &Evidence,
    held: bool,
    reported_at: Option<i64>,
    (state, decision): (&str, Option<&str>),
    at: i64,
    after_report_ms: i64,
    unreported_ms: i64,
) -> Result<()> {
    let object_id = &ev.object_id;
    if held {
        return Err(crate::Error::Conflict(format!(
            "evidence {object_id:?}: its case is on legal hold"
        )));
    }
    if !evidence_expired(
        ev.created_at,
        reported_at,
        awaiting_report(state, decision),
        at,
        after_report_ms,
        unreported_ms,
    ) {
        return Err(crate::Error::Conflict(format!(
            "evidence {object_id:?}: its retention has not run out (its case may have been \
             reported, or confirmed for a report, since)"
        )));
    }
    Ok(())
}
