//! Acting on matches: a content submission is matched against every enabled bank, the policy
//! decides, and the verdict, its case, its evidence record and the events describing them
//! are recorded in one store transaction.
//!
//! The flow is split so that the caller can do I/O between the steps without holding
//! anything: [`Actioner::evaluate`] (match + policy, no writes), then — when
//! [`Evaluation::keeps_evidence`] — the caller seals the media into the vault, then
//! [`Actioner::record`] writes everything at once. A crash between the vault write and the
//! record leaves only an unreadable blob (its data key was never stored).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use safeguard_policy::{
    AccountAge, Classification, Decision, Error as PolicyError, ItemFacts, Kind, MatchFacts,
    Policy, Priority, Rule, RuleRef, RuleSet, RuleSpec, Surface, Verdict, VpdqShares, MAX_RULES,
};
use safeguard_store::action::{
    Case, CaseApproval, CaseAssignment, CaseFilter, CaseTransition, NewEvent, NewEvidence, NewRule,
    NewSubmission, Recorded, RuleSetOutcome, StoredRule, StoredSubmission, SubmissionJob,
    SubmitOutcome,
};
use safeguard_store::console::ItemLabel;
use safeguard_store::{BankKind, ContentId};

use crate::case::{check_transition, current_approval, decision_line, CaseState, DecisionKind};
use crate::engine::{Engine, LookupOptions};
use crate::group::{GroupCommit, Stats as GroupStats};
use crate::signal::{SignalType, SignalValue};
use crate::sources::now_ms;
use crate::Error;

/// Longest platform content id, in bytes.
pub const MAX_CONTENT_ID_LEN: usize = 256;
/// Longest platform account id, in bytes.
pub const MAX_ACCOUNT_LEN: usize = 256;
/// Longest `ip` field, bytes (an IPv6 address with a zone fits).
pub const MAX_IP_LEN: usize = 64;
/// Largest `metadata` object of a submission, serialised, in bytes: context for reviewers
/// and reports, not a place for payloads.
pub const MAX_SUBMISSION_METADATA_BYTES: usize = 16 * 1024;
/// Most precomputed signals in one submission.
pub const MAX_SUBMISSION_SIGNALS: usize = 8;

/// Event types.
pub const EVENT_CONTENT_VERDICT: &str = "content.verdict";
/// A case was opened.
pub const EVENT_CASE_OPENED: &str = "case.opened";
/// A case changed (an item joined, its state moved, a legal hold).
pub const EVENT_CASE_UPDATED: &str = "case.updated";
/// An account's contact-risk score crossed a threshold (`POST /v1/events`).
pub const EVENT_ACCOUNT_RISK: &str = "account.risk";
/// A case's report was filed (NCMEC confirmed it finished).
pub const EVENT_REPORT_FILED: &str = "report.filed";
/// Filing a case's report failed; the event carries the stable error code.
pub const EVENT_REPORT_FAILED: &str = "report.failed";
/// A submission put its case at UK NCA priority level 1 (an immediate threat to a child):
/// the case went to urgent priority, the top of its queue, in the same transaction.
pub const EVENT_CASE_NCA_LEVEL_1: &str = "case.nca_level_1";
/// The label a case gets when an item puts it at UK NCA priority level 1: the record that it
/// was surfaced, so the event goes out once per case.
pub const NCA_LEVEL_1_LABEL: &str = "nca_level_1";
/// Every event type a webhook can subscribe to.
pub const EVENT_TYPES: [&str; 7] = [
    EVENT_CONTENT_VERDICT,
    EVENT_CASE_OPENED,
    EVENT_CASE_UPDATED,
    EVENT_ACCOUNT_RISK,
    EVENT_REPORT_FILED,
    EVENT_REPORT_FAILED,
    EVENT_CASE_NCA_LEVEL_1,
];

/// The digests of submitted media, for the fingerprint and the evidence record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDigest {
    /// SHA-256, hex.
    pub sha256: String,
    /// MD5, hex.
    pub md5: String,
    /// Bytes.
    pub size: u64,
}

/// A content submission, validated.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The platform's content id.
    pub id: String,
    /// Image, video or other.
    pub kind: Kind,
    /// The signals to match: computed from the media, or given.
    pub signals: Vec<SignalValue>,
    /// The platform's account id.
    pub account: Option<String>,
    /// The account's age band.
    pub account_age: AccountAge,
    /// Where it was posted.
    pub surface: Option<Surface>,
    /// When it was posted, as the platform says (Unix seconds).
    pub created_at: Option<i64>,
    /// The uploader's IP address, as the platform gives it (for reports).
    pub ip: Option<String>,
    /// Free context, at most [`MAX_SUBMISSION_METADATA_BYTES`].
    pub metadata: Option<Value>,
    /// The media's digests, when media was given (uploaded or fetched).
    pub media: Option<MediaDigest>,
    /// Where the media was fetched from, if it was.
    pub url: Option<String>,
}

/// An id or account goes into reports as it is: NCMEC's XML cannot carry most control
/// characters and the NCA's checks refuse them and a blank account, so such a value would make
/// its case unreportable for good (a stored submission is never changed).
fn printable(field: &str, s: &str) -> Result<(), Error> {
    if s.trim().is_empty() {
        return Err(Error::Invalid(format!("{field} must not be blank")));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

impl Submission {
    /// Checks the fields the types do not: lengths, the metadata's size, the signal count.
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_context()?;
        if self.signals.is_empty() {
            return Err(Error::Invalid(
                "nothing to match: give media, a url or signals".into(),
            ));
        }
        if self.signals.len() > MAX_SUBMISSION_SIGNALS {
            return Err(Error::Invalid(format!(
                "at most {MAX_SUBMISSION_SIGNALS} signals per submission"
            )));
        }
        Ok(())
    }

    /// [`Submission::validate`] without the signals: for a caller that checks the item before
    /// it knows them (a URL check records a submission only when a URL matches).
    pub fn validate_context(&self) -> Result<(), Error> {
        if self.id.is_empty() || self.id.len() > MAX_CONTENT_ID_LEN {
            return Err(Error::Invalid(format!(
                "id must be 1 to {MAX_CONTENT_ID_LEN} bytes"
            )));
        }
        printable("id", &self.id)?;
        if let Some(a) = &self.account {
            if a.is_empty() || a.len() > MAX_ACCOUNT_LEN {
                return Err(Error::Invalid(format!(
                    "account must be 1 to {MAX_ACCOUNT_LEN} bytes"
                )));
            }
            printable("account", a)?;
        }
        if self.ip.as_ref().is_some_and(|ip| ip.len() > MAX_IP_LEN) {
            return Err(Error::Invalid(format!("ip is over {MAX_IP_LEN} bytes")));
        }
        if let Some(m) = &self.metadata {
            if !m.is_object() {
                return Err(Error::Invalid("metadata must be a JSON object".into()));
            }
            let len = m.to_string().len();
            if len > MAX_SUBMISSION_METADATA_BYTES {
                return Err(Error::Invalid(format!(
                    "metadata is {len} bytes; at most {MAX_SUBMISSION_METADATA_BYTES} are accepted"
                )));
            }
        }
        Ok(())
    }

    /// What identifies the submitted content: its kind, its signals (sorted) and its media
    /// digest. Re-submitting an id with an equal fingerprint is a replay.
    pub fn fingerprint(&self) -> String {
        let mut parts: Vec<String> = self
            .signals
            .iter()
            .map(|s| format!("{}:{}", s.signal_type().name(), s.to_text()))
            .collect();
        parts.sort();
        let mut h = Sha256::new();
        h.update(self.kind.as_str().as_bytes());
        for p in &parts {
            h.update(b"\n");
            h.update(p.as_bytes());
        }
        if let Some(m) = &self.media {
            h.update(b"\nmedia:");
            h.update(m.sha256.as_bytes());
        }
        hex::encode(h.finalize())
    }

    fn context(&self) -> Value {
        json!({
            "kind": self.kind.as_str(),
            "account": self.account,
            "account_age": self.account_age.as_str(),
            "surface": self.surface.map(|s| s.as_str()),
            "created_at": self.created_at,
            "ip": self.ip,
            "metadata": self.metadata,
            "url": self.url,
            "media": self.media.as_ref().map(|m| json!({
                "sha256": m.sha256, "md5": m.md5, "size": m.size
            })),
            "signals": self.signals.iter().map(|s| json!({
                "signal_type": s.signal_type().name(),
                "value": s.to_text(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// One match of a submission.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmissionMatch {
    /// Bank name.
    pub bank: String,
    /// Bank kind.
    pub bank_kind: BankKind,
    /// Bank tags.
    pub bank_tags: Vec<String>,
    /// The matching bank content item.
    pub bank_content_id: ContentId,
    /// The signal type that matched.
    pub signal_type: SignalType,
    /// Hamming distance (PDQ), 0 (digests); `None` for vPDQ.
    pub distance: Option<u32>,
    /// vPDQ shares.
    pub vpdq: Option<VpdqShares>,
    /// The hash's classification, else the bank's default.
    pub classification: Option<Classification>,
    /// The hash's first active source (`exchange:NCMEC`, `file:iwf`, `api`).
    pub source: Option<String>,
    /// Every name rules may use for the hash's sources: the sources themselves plus their
    /// aliases (`own` for `api`; `ncmec`, `stopncii`, `iwf` for sources named after them).
    pub sources: Vec<String>,
}

impl SubmissionMatch {
    fn json(&self) -> Value {
        json!({
            "bank": self.bank,
            "bank_content_id": self.bank_content_id,
            "signal_type": self.signal_type.name(),
            "distance": self.distance,
            "vpdq": self.vpdq.map(|v| json!({"query_match_percent": v.query, "compared_match_percent": v.compared})),
            "classification": self.classification.map(|c| c.as_str()),
            "source": self.source,
        })
    }
}

/// The aliases rules may use for a provenance source (see [`SubmissionMatch::sources`]).
pub fn source_aliases(source: &str) -> Vec<String> {
    let mut out = vec![source.to_string()];
    if source == "api" {
        out.push("own".into());
    }
    let name = source
        .strip_prefix("exchange:")
        .or_else(|| source.strip_prefix("file:"))
        .map(str::to_ascii_lowercase);
    if let Some(name) = name {
        for hotline in ["ncmec", "stopncii", "iwf", "techcoalition"] {
            if name.starts_with(hotline) && !out.iter().any(|o| o == hotline) {
                out.push(hotline.into());
            }
        }
    }
    out
}

/// The result of matching a submission and applying the policy; nothing written yet.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Matches that took part in the decision (allow-list suppression applied).
    pub matches: Vec<SubmissionMatch>,
    /// Standard-bank matches dropped because an allow-list bank matched.
    pub suppressed: usize,
    /// The policy's decision.
    pub decision: Decision,
    /// The submission's fingerprint.
    pub fingerprint: String,
    /// Set by the caller before recording when the submission makes its case urgent at once
    /// (UK NCA priority level 1): the assessment, as JSON. The case then goes in at urgent
    /// priority with the label [`NCA_LEVEL_1_LABEL`], the result carries the assessment as
    /// `nca_priority`, and the first such item of a case writes an [`EVENT_CASE_NCA_LEVEL_1`]
    /// event with the case's. Ignored when nothing goes into a case.
    pub surfaced: Option<Value>,
}

impl Evaluation {
    /// Whether the item goes into a case (and its media into the vault): every verdict but
    /// `allow`. A shadow rule never does this; unmatched media is never stored.
    pub fn keeps_evidence(&self) -> bool {
        self.decision.verdict != Verdict::Allow
    }
}

/// What the client gets back.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmitResult {
    /// The response body.
    pub body: Value,
    /// Whether this was a replay of a recorded submission.
    pub replayed: bool,
}

fn priority_rank(p: Priority) -> i32 {
    match p {
        Priority::Low => 1,
        Priority::Normal => 2,
        Priority::High => 3,
        Priority::Urgent => 4,
    }
}

/// The name of a case priority rank, for the API.
pub fn priority_name(rank: i32) -> &'static str {
    match rank {
        i32::MIN..=1 => "low",
        2 => "normal",
        3 => "high",
        _ => "urgent",
    }
}

/// A new event id: `evt_`, the time in milliseconds (13 hex digits, so ids sort by time) and
/// 64 random bits.
pub fn new_event_id() -> String {
    let mut r = [0u8; 8];
    // The OS random source failing leaves zeros; the timestamp and the store's UNIQUE
    // constraint still keep ids apart or make the write fail loudly.
    let _ = getrandom::fill(&mut r);
    format!("evt_{:013x}{}", now_ms(), hex::encode(r))
}

/// A case as the API shows it.
pub fn case_json(c: &Case) -> Value {
    json!({
        "id": c.id,
        "account": c.account,
        "state": c.state,
        "queue": c.queue,
        "priority": priority_name(c.priority),
        "report_candidate": c.report_candidate,
        "labels": c.labels,
        "items": c.items,
        "legal_hold": c.legal_hold,
        "decision": c.decision,
        "reported_at": c.reported_at,
        "opened_at": c.opened_at,
        "updated_at": c.updated_at,
    })
}

/// The event of the case a recorded item went into: `case.opened` when it opened the case,
/// else `case.updated` with change `item_added`.
fn case_event(r: &Recorded) -> Option<NewEvent> {
    let c = r.case.as_ref()?;
    Some(if r.case_opened {
        event(EVENT_CASE_OPENED, new_event_id(), case_json(c))
    } else {
        let mut data = case_json(c);
        data["change"] = json!("item_added");
        event(EVENT_CASE_UPDATED, new_event_id(), data)
    })
}

/// The [`EVENT_CASE_NCA_LEVEL_1`] event of `case`, which `submission` put at level 1.
fn nca_level_1_event(case: &Case, submission: &str, assessment: &Value) -> NewEvent {
    let data = json!({
        "case_id": case.id,
        "account": case.account,
        "queue": case.queue,
        "submission": submission,
        "assessment": assessment,
    });
    event(EVENT_CASE_NCA_LEVEL_1, new_event_id(), data)
}

/// An event of `event_type` with a new id and `data`, in the body shape every event has
/// (`{id, type, created_at, data}`), for [`safeguard_store::ActionStore::append_events`].
pub fn new_event(event_type: &str, data: Value) -> NewEvent {
    event(event_type, new_event_id(), data)
}

fn event(event_type: &str, id: String, data: Value) -> NewEvent {
    let created_at = now_ms() / 1000;
    let body = json!({"id": id, "type": event_type, "created_at": created_at, "data": data});
    NewEvent {
        id,
        event_type: event_type.into(),
        created_at,
        body: body.to_string(),
    }
}

/// Routes an account whose contact-risk score crossed a threshold: records the crossing as a
/// review item (verdict `review`, kind `account_risk`) of the account's case in `queue`,
/// opening the case if it has none open, with the crossing (score, contributions, the recent
/// events that raised it) as its result; and writes an `account.risk` event for webhooks and
/// the case's own event, all in one transaction. An `alert` goes in at urgent priority, a
/// `review` at normal. `key` names the crossing (account, level, time), so a retried batch
/// replays instead of recording twice. `surfaced` is the caller's UK NCA level-1 assessment of
/// the crossing, if it reached level 1: then the case goes in at urgent with the
/// `nca_level_1` label, and the first such item writes the `case.nca_level_1` event, as for
/// content ([`Evaluation::surfaced`]). Returns the case and whether this call recorded it.
#[allow(clippy::too_many_arguments)] // the crossing's parts, and what the caller assessed
pub fn record_account_risk(
    store: &dyn safeguard_store::Store,
    key: &str,
    account: &str,
    level: &str,
    queue: &str,
    crossing: Value,
    surfaced: Option<Value>,
) -> Result<(Option<Case>, bool), Error> {
    let urgent = level == "alert" || surfaced.is_some();
    let platform_id = format!("risk:{key}");
    let mut result = json!({"verdict": "review", "account_risk": crossing});
    let mut labels = vec!["contact_risk".to_string(), level.to_string()];
    if let Some(a) = &surfaced {
        result["nca_priority"] = a.clone();
        labels.push(NCA_LEVEL_1_LABEL.to_string());
    }
    let new = NewSubmission {
        platform_id: platform_id.clone(),
        fingerprint: hex::encode(Sha256::digest(platform_id.as_bytes())),
        account: Some(account.to_string()),
        verdict: Verdict::Review.as_str().into(),
        rule: None,
        context: json!({"kind": "account_risk", "account": account, "level": level}).to_string(),
        result: result.to_string(),
        case: Some(CaseAssignment {
            queue: queue.to_string(),
            priority: priority_rank(if urgent {
                Priority::Urgent
            } else {
                Priority::Normal
            }),
            report_candidate: false,
            labels,
        }),
        evidence: None,
        created_at: now_ms(),
    };
    let mut build = |r: &Recorded| -> Vec<NewEvent> {
        let data = json!({
            "account": account,
            "level": level,
            "queue": queue,
            "case_id": r.case.as_ref().map(|c| c.id),
            "crossing": result["account_risk"],
        });
        let mut evs = vec![event(EVENT_ACCOUNT_RISK, new_event_id(), data)];
        evs.extend(case_event(r));
        if let (Some(a), Some(c)) = (&surfaced, &r.case) {
            if r.new_labels.iter().any(|l| l == NCA_LEVEL_1_LABEL) {
                evs.push(nca_level_1_event(c, &platform_id, a));
            }
        }
        evs
    };
    match store.record_submission(&new, &mut build)? {
        SubmitOutcome::Recorded(s) => Ok((case_of(store, &s)?, true)),
        SubmitOutcome::Replayed(s) => Ok((case_of(store, &s)?, false)),
    }
}

fn case_of(
    store: &dyn safeguard_store::Store,
    s: &StoredSubmission,
) -> Result<Option<Case>, Error> {
    match s.case_id {
        Some(id) => Ok(store.case(id)?),
        None => Ok(None),
    }
}

/// How often [`Actioner::policy`] asks the store whether the rules changed: the longest a
/// rule change made by another process (`safeguard rules apply`) takes to apply here.
pub const POLICY_RECHECK: Duration = Duration::from_secs(1);

/// The compiled policy, the rule-set generation it was built from, and when the store's
/// generation was last read (`None`: read it now).
#[derive(Debug)]
struct PolicyCache {
    generation: i64,
    policy: Arc<Policy>,
    checked: Option<Instant>,
}

/// Acts on matches: evaluates submissions, records them, changes cases and rules.
#[derive(Debug)]
pub struct Actioner {
    engine: Arc<Engine>,
    /// The compiled policy; rebuilt when the store's generation moves (another process may
    /// have applied rules).
    policy: RwLock<PolicyCache>,
    /// Concurrent records share transactions (one commit for a burst).
    group: GroupCommit,
}

impl Actioner {
    /// An actioner over `engine`'s store; the stored rules are compiled on first use.
    pub fn new(engine: Arc<Engine>) -> Actioner {
        Actioner {
            engine,
            policy: RwLock::new(PolicyCache {
                generation: -1,
                policy: Arc::new(Policy::default()),
                checked: None,
            }),
            group: GroupCommit::default(),
        }
    }

    /// Transactions and submissions recorded through the group commit so far.
    pub fn group_commit_stats(&self) -> GroupStats {
        self.group.stats()
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The policy in force. The store's rule-set generation is read at most once per
    /// [`POLICY_RECHECK`] (a read on every submission was 6% of a loaded server's CPU), and
    /// the policy rebuilt when it moved; this process's own rule changes apply at once.
    pub fn policy(&self) -> Result<Arc<Policy>, Error> {
        {
            let p = self.policy.read().unwrap_or_else(|e| e.into_inner());
            if p.checked.is_some_and(|t| t.elapsed() < POLICY_RECHECK) {
                return Ok(p.policy.clone());
            }
        }
        let store = self.engine.store();
        let generation = store.rules_generation()?;
        {
            let mut p = self.policy.write().unwrap_or_else(|e| e.into_inner());
            if p.generation == generation {
                p.checked = Some(Instant::now());
                return Ok(p.policy.clone());
            }
        }
        let rules = store.rules()?;
        let policy = Arc::new(compile(&rules)?);
        let mut p = self.policy.write().unwrap_or_else(|e| e.into_inner());
        *p = PolicyCache {
            generation,
            policy: policy.clone(),
            checked: Some(Instant::now()),
        };
        Ok(policy)
    }

    /// Reads the generation now (after this process changed the rules).
    fn refresh_policy(&self) -> Result<Arc<Policy>, Error> {
        self.policy
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .checked = None;
        self.policy()
    }

    /// Matches `s` against every enabled bank with every signal and applies the policy.
    pub fn evaluate(&self, s: &Submission) -> Result<Evaluation, Error> {
        self.evaluate_with(s, &LookupOptions::default())
    }

    /// [`Actioner::evaluate`] with these lookup options: a backfill scan names its banks and
    /// bypasses the coin flip.
    pub fn evaluate_with(
        &self,
        s: &Submission,
        options: &LookupOptions,
    ) -> Result<Evaluation, Error> {
        s.validate()?;
        let policy = self.policy()?;
        let mut raw = Vec::new();
        // Standard-bank matches dropped: those each lookup dropped for its own signal, then
        // those of the other signals (the allow-list matches themselves are not counted).
        let mut suppressed = 0;
        for value in &s.signals {
            let r = self.engine.lookup(value, options)?;
            suppressed += r.suppressed;
            raw.extend(r.matches);
        }
        // Allow-list suppression across signal types: one allow-list hit clears them all.
        if raw.iter().any(|m| m.allow_list) {
            suppressed += raw.iter().filter(|m| !m.allow_list).count();
            raw.clear();
        }
        let matches = if raw.is_empty() {
            Vec::new()
        } else {
            self.describe(&raw)?
        };
        let item = ItemFacts {
            kind: s.kind,
            surface: s.surface,
            account_age: s.account_age,
        };
        let kinds: Vec<&str> = matches.iter().map(|m| m.bank_kind.as_str()).collect();
        let facts: Vec<MatchFacts<'_>> = matches
            .iter()
            .zip(&kinds)
            .map(|(m, kind)| MatchFacts {
                bank: &m.bank,
                bank_kind: kind,
                bank_tags: &m.bank_tags,
                classification: m.classification,
                signal_type: m.signal_type.name(),
                distance: m.distance.map(f64::from),
                vpdq: m.vpdq,
                sources: &m.sources,
            })
            .collect();
        let decision = policy.evaluate(&item, &facts);
        Ok(Evaluation {
            matches,
            suppressed,
            decision,
            fingerprint: s.fingerprint(),
            surfaced: None,
        })
    }

    /// Adds bank facts, classification and sources to raw lookup matches.
    fn describe(&self, raw: &[crate::LookupMatch]) -> Result<Vec<SubmissionMatch>, Error> {
        let store = self.engine.store();
        let keys: Vec<(i64, i64)> = raw.iter().map(|m| (m.bank_id, m.signal_id)).collect();
        let records = store.signals_provenance(&keys)?;
        let mut out = Vec::with_capacity(raw.len());
        for (m, records) in raw.iter().zip(records) {
            // From the engine's own copy: a store read of every bank per matching submission
            // was 2.6% of a loaded server's CPU.
            let Some(bank) = self.engine.bank_state(m.bank_id) else {
                continue; // deleted since the lookup
            };
            let mut classification = None;
            let mut source = None;
            let mut sources = Vec::new();
            for p in records {
                if p.withdrawn_at.is_some() {
                    continue;
                }
                if classification.is_none() {
                    classification = p.classification.as_deref().and_then(Classification::parse);
                }
                if source.is_none() {
                    source = Some(p.source.clone());
                }
                for a in source_aliases(&p.source) {
                    if !sources.contains(&a) {
                        sources.push(a);
                    }
                }
            }
            let classification = classification.or_else(|| {
                bank.classification
                    .as_deref()
                    .and_then(Classification::parse)
            });
            let vpdq = m.vpdq.map(|p| VpdqShares {
                query: p.query_match_percent,
                compared: p.compared_match_percent,
            });
            out.push(SubmissionMatch {
                bank: bank.name.clone(),
                bank_kind: bank.kind,
                bank_tags: bank.tags.clone(),
                bank_content_id: m.content_id,
                signal_type: m.signal_type,
                distance: (m.signal_type != SignalType::Vpdq).then_some(m.distance),
                vpdq,
                classification,
                source,
                sources,
            });
        }
        Ok(out)
    }

    /// The stored result of a submission with this id, if it was recorded with the same
    /// content; `SubmissionConflict` if with other content.
    pub fn replay(&self, s: &Submission) -> Result<Option<SubmitResult>, Error> {
        match self.engine.store().submission(&s.id)? {
            None => Ok(None),
            Some(st) if st.fingerprint == s.fingerprint() => Ok(Some(SubmitResult {
                body: stored_body(&st)?,
                replayed: true,
            })),
            Some(_) => Err(Error::SubmissionConflict(s.id.clone())),
        }
    }

    /// Records an evaluated submission with its evidence (only when
    /// [`Evaluation::keeps_evidence`]), its case and its events, in one transaction.
    pub fn record(
        &self,
        s: &Submission,
        eval: &Evaluation,
        evidence: Option<NewEvidence>,
    ) -> Result<SubmitResult, Error> {
        let d = &eval.decision;
        let keeps = eval.keeps_evidence();
        let surfaced = eval.surfaced.clone().filter(|_| keeps);
        let priority = if surfaced.is_some() {
            Priority::Urgent
        } else {
            d.priority
        };
        let mut labels = d.labels.clone();
        if surfaced.is_some() && !labels.iter().any(|l| l == NCA_LEVEL_1_LABEL) {
            labels.push(NCA_LEVEL_1_LABEL.to_string());
        }
        let case = keeps.then(|| CaseAssignment {
            queue: d
                .queue
                .clone()
                .unwrap_or_else(|| safeguard_policy::DEFAULT_QUEUE.to_string()),
            priority: priority_rank(priority),
            report_candidate: d.report_candidate,
            labels,
        });
        let matches: Vec<Value> = eval.matches.iter().map(SubmissionMatch::json).collect();
        let mut result = json!({
            "verdict": d.verdict.as_str(),
            "matches": matches,
            "suppressed": eval.suppressed,
            "rule": d.rule,
            "queue": d.queue,
            "priority": keeps.then(|| priority.as_str()),
            "report_candidate": d.report_candidate,
            "labels": d.labels,
            "shadow": d.shadow,
        });
        if let Some(a) = &surfaced {
            result["nca_priority"] = a.clone();
        }
        let new = NewSubmission {
            platform_id: s.id.clone(),
            fingerprint: eval.fingerprint.clone(),
            account: s.account.clone(),
            verdict: d.verdict.as_str().into(),
            rule: d.rule.as_ref().map(|r| (r.id.clone(), r.version)),
            context: s.context().to_string(),
            result: result.to_string(),
            case,
            evidence: if keeps { evidence } else { None },
            created_at: now_ms(),
        };
        let verdict = d.verdict;
        let platform_id = s.id.clone();
        let build = move |r: &Recorded| -> Vec<NewEvent> {
            let mut evs = Vec::new();
            if verdict != Verdict::Allow {
                let mut data = result.clone();
                data["id"] = json!(platform_id);
                data["case_id"] = json!(r.case.as_ref().map(|c| c.id));
                evs.push(event(EVENT_CONTENT_VERDICT, new_event_id(), data));
            }
            evs.extend(case_event(r));
            // Once per case: when this item is the one that gave the case its level-1 label.
            let first = r.new_labels.iter().any(|l| l == NCA_LEVEL_1_LABEL);
            if let (Some(a), Some(c), true) = (&surfaced, &r.case, first) {
                evs.push(nca_level_1_event(c, &platform_id, a));
            }
            evs
        };
        let job = SubmissionJob {
            submission: new,
            events: Box::new(build),
        };
        let outcome = self
            .group
            .record(self.engine.store().as_ref(), job)
            .map_err(|e| match e {
                safeguard_store::Error::Conflict(_) => Error::SubmissionConflict(s.id.clone()),
                other => other.into(),
            })?;
        let (st, replayed) = match outcome {
            SubmitOutcome::Recorded(st) => (st, false),
            SubmitOutcome::Replayed(st) => (st, true),
        };
        Ok(SubmitResult {
            body: stored_body(&st)?,
            replayed,
        })
    }

    // ------------------------------------------------------------------ rules

    /// Replaces the rule set.
    pub fn apply_rules(&self, set: &RuleSet) -> Result<RuleSetOutcome, Error> {
        let out = apply_rules(self.engine.store().as_ref(), set)?;
        self.refresh_policy()?;
        Ok(out)
    }

    /// Creates or replaces one rule (at `position`, or in place / last).
    pub fn put_rule(
        &self,
        spec: &RuleSpec,
        position: Option<u32>,
    ) -> Result<RuleSetOutcome, Error> {
        spec.validate()?;
        // The set must still compile with the change. An edit in place keeps the ids unique,
        // so the one set-wide limit left is the count, which the store checks inside its
        // transaction; its only `Conflict` here is that limit.
        let out = self
            .engine
            .store()
            .put_rule(&new_rule(spec), position, MAX_RULES)
            .map_err(|e| match e {
                safeguard_store::Error::Conflict(_) => Error::Policy(PolicyError::TooMany {
                    count: MAX_RULES + 1,
                    max: MAX_RULES,
                }),
                other => other.into(),
            })?;
        self.refresh_policy()?;
        Ok(out)
    }

    /// Removes one rule.
    pub fn delete_rule(&self, id: &str) -> Result<RuleSetOutcome, Error> {
        let out = self.engine.store().delete_rule(id).map_err(|e| match e {
            safeguard_store::Error::NotFound(_) => Error::RuleNotFound(id.into()),
            other => other.into(),
        })?;
        self.refresh_policy()?;
        Ok(out)
    }

    /// The stored rules in force, in order.
    pub fn rules(&self) -> Result<Vec<StoredRule>, Error> {
        Ok(self.engine.store().rules()?)
    }

    // ------------------------------------------------------------------ cases

    /// A page of cases.
    pub fn cases(&self, filter: &CaseFilter) -> Result<Vec<Case>, Error> {
        if let Some(s) = &filter.state {
            if CaseState::parse(s).is_none() {
                return Err(Error::Invalid(format!(
                    "state must be one of open, in_review, decided, reported, closed; got {:?}",
                    crate::signal::truncate(s)
                )));
            }
        }
        Ok(self.engine.store().cases(filter)?)
    }

    /// Moves a case to `to` if the state machine allows it from its current state, writing a
    /// `case.updated` event with it.
    pub fn transition(
        &self,
        id: i64,
        to: CaseState,
        actor: &str,
        note: Option<String>,
        decision: Option<String>,
    ) -> Result<Case, Error> {
        self.transition_with_events(id, to, actor, note, decision, Vec::new())
    }

    /// [`Actioner::transition`], with `extra` events written in the same transaction after
    /// its `case.updated`: what the move means downstream (a `report.filed`) is then never
    /// lost to a crash between the two.
    pub fn transition_with_events(
        &self,
        id: i64,
        to: CaseState,
        actor: &str,
        note: Option<String>,
        decision: Option<String>,
        extra: Vec<NewEvent>,
    ) -> Result<Case, Error> {
        self.transition_inner(id, to, actor, note, decision, extra, Vec::new())
    }

    /// [`Actioner::transition`], with the labels of the case's items (a console decision's
    /// classifications) written in the same transaction: if the case has moved on since the
    /// caller looked, the move is refused and no label is written either.
    pub fn transition_labelled(
        &self,
        id: i64,
        to: CaseState,
        actor: &str,
        note: Option<String>,
        decision: Option<String>,
        labels: Vec<ItemLabel>,
    ) -> Result<Case, Error> {
        self.transition_inner(id, to, actor, note, decision, Vec::new(), labels)
    }

    #[allow(clippy::too_many_arguments)]
    fn transition_inner(
        &self,
        id: i64,
        to: CaseState,
        actor: &str,
        note: Option<String>,
        decision: Option<String>,
        mut extra: Vec<NewEvent>,
        labels: Vec<ItemLabel>,
    ) -> Result<Case, Error> {
        let store = self.engine.store();
        let case = store.case(id)?.ok_or(Error::CaseNotFound(id))?;
        let from = CaseState::parse(&case.state).ok_or_else(|| {
            Error::Store(safeguard_store::Error::Corrupt(format!(
                "case {id} has unknown state {:?}",
                case.state
            )))
        })?;
        check_transition(from, to)?;
        // The two-person rule: nothing becomes a report on one person's word.
        if to == CaseState::Reported && current_approval(&store.case_history(id)?).is_none() {
            return Err(Error::ApprovalRequired(id));
        }
        let t = CaseTransition {
            from: from.as_str().into(),
            to: to.as_str().into(),
            actor: actor.into(),
            note,
            decision,
            labels,
            at: now_ms(),
        };
        store
            .transition_case(id, &t, &mut |c| {
                let mut data = case_json(c);
                data["change"] = json!("state");
                data["from"] = json!(from.as_str());
                let mut events = vec![event(EVENT_CASE_UPDATED, new_event_id(), data)];
                events.append(&mut extra);
                events
            })
            .map_err(|e| match e {
                safeguard_store::Error::NotFound(_) => Error::CaseNotFound(id),
                safeguard_store::Error::Conflict(m) => Error::InvalidTransition(format!(
                    "{m}: the case changed meanwhile; fetch it and try again"
                )),
                other => other.into(),
            })
    }
}

impl Actioner {
    /// Approves a decided case's current decision as a second person (the two-person rule):
    /// the decision must be `confirmed` (see [`DecisionKind`]), `actor` must not be who made
    /// it, and it must not be approved already. Writes a `case.updated` event with
    /// `change: approved`. After this the case may move to `reported`.
    pub fn approve(&self, id: i64, actor: &str, note: Option<String>) -> Result<Case, Error> {
        let store = self.engine.store();
        let case = store.case(id)?.ok_or(Error::CaseNotFound(id))?;
        if case.state != CaseState::Decided.as_str() {
            return Err(Error::InvalidTransition(format!(
                "only a decided case can be approved; case {id} is {}",
                case.state
            )));
        }
        let history = store.case_history(id)?;
        let decided = decision_line(&history).ok_or_else(|| {
            Error::Store(safeguard_store::Error::Corrupt(format!(
                "case {id} is decided but its history has no decision"
            )))
        })?;
        let decision = decided.decision.as_deref().or(case.decision.as_deref());
        if decision.map(DecisionKind::of) != Some(DecisionKind::Confirmed) {
            return Err(Error::InvalidTransition(format!(
                "only a confirmed decision is approved for reporting; case {id}'s decision is {:?}",
                decision.unwrap_or("")
            )));
        }
        if decided.actor == actor {
            return Err(Error::SamePerson(actor.to_string()));
        }
        if current_approval(&history).is_some() {
            return Err(Error::AlreadyApproved(id));
        }
        let decided_by = decided.actor.clone();
        let a = CaseApproval {
            actor: actor.into(),
            seen_updated_at: case.updated_at,
            note,
            at: now_ms(),
        };
        store
            .approve_case(id, &a, &mut |c| {
                let mut data = case_json(c);
                data["change"] = json!("approved");
                data["approved_by"] = json!(a.actor);
                data["decided_by"] = json!(decided_by);
                vec![event(EVENT_CASE_UPDATED, new_event_id(), data)]
            })
            .map_err(|e| match e {
                safeguard_store::Error::NotFound(_) => Error::CaseNotFound(id),
                safeguard_store::Error::Conflict(m) => Error::InvalidTransition(format!(
                    "{m}: the case changed meanwhile; fetch it and try again"
                )),
                other => other.into(),
            })
    }
}

/// Replaces the rule set in `store` (what `safeguard rules apply` does; a running server
/// sees the new set at its next submission, by the rule-set generation).
pub fn apply_rules(
    store: &dyn safeguard_store::Store,
    set: &RuleSet,
) -> Result<RuleSetOutcome, Error> {
    set.validate()?;
    // The stored set must compile as the server will compile it.
    Policy::compile(set.rules.iter().map(|s| Rule::new(s.clone(), 1)).collect())?;
    let rules: Vec<NewRule> = set.rules.iter().map(new_rule).collect();
    Ok(store.replace_rules(&rules)?)
}

/// The stored rule set as written (for `safeguard rules list`).
pub fn stored_rule_set(rules: &[StoredRule]) -> Result<RuleSet, Error> {
    Ok(RuleSet {
        rules: rules.iter().map(stored_spec).collect::<Result<_, _>>()?,
    })
}

fn new_rule(spec: &RuleSpec) -> NewRule {
    NewRule {
        id: spec.id.clone(),
        // Cannot fail: a RuleSpec is plain data with string keys.
        spec: serde_json::to_string(spec).expect("a rule serialises to JSON"),
    }
}

/// Parses a stored rule's spec; one that no longer parses is corruption, not bad input.
fn stored_spec(r: &StoredRule) -> Result<RuleSpec, Error> {
    RuleSpec::parse_json(&r.spec).map_err(|e| {
        Error::Store(safeguard_store::Error::Corrupt(format!(
            "stored rule {:?} v{}: {e}",
            r.id, r.version
        )))
    })
}

/// Compiles stored rules into a policy.
pub fn compile(rules: &[StoredRule]) -> Result<Policy, Error> {
    let rules = rules
        .iter()
        .map(|r| Ok(Rule::new(stored_spec(r)?, r.version)))
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Policy::compile(rules)?)
}

/// The response body of a stored submission.
pub fn stored_body(st: &StoredSubmission) -> Result<Value, Error> {
    let mut body: Value = serde_json::from_str(&st.result).map_err(|e| {
        Error::Store(safeguard_store::Error::Corrupt(format!(
            "submission {}: {e}",
            st.id
        )))
    })?;
    body["id"] = json!(st.platform_id);
    body["case_id"] = json!(st.case_id);
    body["event_ids"] = json!(st.event_ids);
    body["submitted_at"] = json!(st.created_at);
    Ok(body)
}

/// A rule reference as JSON (for callers that show decisions).
pub fn rule_ref_json(r: &RuleRef) -> Value {
    json!({"id": r.id, "version": r.version})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `evt_` and 29 lowercase hex digits: the creation time in ms (13), then 64 random bits
    /// (16); an id made later sorts after (docs/webhooks.md).
    #[test]
    fn event_ids_carry_their_time_and_sort_by_it() {
        let before = now_ms();
        let a = new_event_id();
        std::thread::sleep(Duration::from_millis(2));
        let b = new_event_id();
        let after = now_ms();
        for id in [&a, &b] {
            let digits = id.strip_prefix("evt_").unwrap_or_else(|| panic!("{id}"));
            assert_eq!(digits.len(), 29, "{id}");
            assert!(
                digits
                    .bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
                "{id}"
            );
            let at = i64::from_str_radix(&digits[..13], 16).unwrap();
            assert!(
                (before..=after).contains(&at),
                "{id}: {at} not in {before}..={after}"
            );
        }
        assert!(a < b, "{a} then {b}");
        // The random half differs between two ids of the same millisecond too.
        let (c, d) = (new_event_id(), new_event_id());
        assert_ne!(c[17..], d[17..]);
    }
}
