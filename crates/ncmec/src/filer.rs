//! The durable filing state machine.
//!
//! One filing is one report with its files. Its progress is a [`FilingState`], written to a
//! [`Journal`] before every step that talks to NCMEC and after every answer, so the journal
//! always holds either the step about to happen or its result:
//!
//! ```text
//! Prepared ──/submit──▶ Submitted{report_id, opened_at, last_change_at}
//!     per file: upload_started ──/upload──▶ Uploaded{file_id, md5} ──/fileinfo──▶ FileInfoSent
//!   ──(approval checked)──▶ Finishing ──/finish──▶ Finished
//! (any unfinished phase) ──Filer::retract──▶ Retracting ──/retract──▶ Retracted
//! ```
//!
//! [`Filer::run`] resumes from whatever the journal holds. What it guarantees:
//! - **Never two finished reports for one filing.** `/finish` is only ever sent for the one
//!   current report; a finish whose answer was lost is sent again, and 5102 "already
//!   finished" counts as success. A report abandoned for any reason is never finished later.
//! - **Never a duplicate file.** An upload whose answer was lost (crash after recording
//!   `upload_started`, a dropped connection, a timeout, a 5xx from a proxy) may or may not have
//!   reached NCMEC, and NCMEC has no call to list a report's files; so the report is abandoned
//!   (retracted) and the filing starts again with a new report rather than risk a second copy.
//!   Uploads that certainly did not arrive (connection refused, responseCode 1110/1111) are
//!   retried on the same report.
//! - **Expired reports are replaced.** NCMEC deletes an unfinished report 24 h after it was
//!   opened or 1 h after its last change. A resumed filing whose report is that old (by the
//!   injected [`Clock`], with [`EXPIRY_SAFETY_MARGIN_SECONDS`] to spare), or that NCMEC answers
//!   5001 "no such report" for, is abandoned: its id is kept in [`FilingState::abandoned`],
//!   a retract is sent (5001 there is fine: it is gone), and a new report is opened.
//! - **Nothing unapproved is sent.** A filing without an [`Approval`] by two different people
//!   is refused before anything reaches NCMEC, and the approval is checked again right before
//!   `/finish`.
//! - A `/submit` whose answer was lost leaves an unfinished report whose id nobody knows; it
//!   is never finished, so NCMEC deletes it after an hour.
//!
//! One filing must be driven by one filer at a time (the caller serialises, for example
//! with a lease in its store); two processes resuming the same filing concurrently could both
//! open reports.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::{md5_hex, Answer, Client};
use crate::model::{FileDetails, Report};
use crate::response::CodeClass;
use crate::time::{Clock, SystemClock, Timestamp};
use crate::{Error, Result};

/// Version of the [`FilingState`] JSON shape; bumped when a field changes meaning.
pub const STATE_VERSION: u32 = 1;
/// NCMEC deletes an unfinished report this long after it was opened, seconds.
pub const NCMEC_REPORT_MAX_AGE_SECONDS: i64 = 24 * 3600;
/// NCMEC deletes an unfinished report this long after its last change, seconds.
pub const NCMEC_REPORT_MAX_IDLE_SECONDS: i64 = 3600;
/// A report this close to either expiry is treated as expired: the next call takes time and
/// clocks differ, and adding a file to a report NCMEC deletes a moment later loses the file.
pub const EXPIRY_SAFETY_MARGIN_SECONDS: i64 = 300;
/// Attempts per call for retryable faults, by default ([`RetryPolicy`]).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// First pause between attempts; doubled after each failure.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// Longest pause between attempts. With five attempts the pauses sum to at most ~8 s, short
/// against NCMEC's 1-hour idle expiry, long enough to ride out a restart of their front end.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Most reports one [`Filer::run`] opens. Each abandoned report is a retry of the whole
/// filing; three means something is persistently wrong (a file that always times out), and
/// the caller should see an error instead of a stream of retracted reports.
pub const MAX_REPORTS_PER_RUN: u32 = 3;

/// How often and how patiently a call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, at least 1.
    pub max_attempts: u32,
    /// Pause after the first failure.
    pub initial_backoff: Duration,
    /// Cap on any pause.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt `attempt` (1-based): exponential, capped, with up to a
    /// quarter of jitter so that filers restarted together do not retry in lockstep.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let base = exp.min(self.max_backoff);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        // Jitter needs spread, not unpredictability: the clock's nanoseconds suffice.
        let jitter = base / 4 * (nanos % 1000) / 1000;
        base.saturating_sub(jitter)
    }
}

/// The filer's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilerConfig {
    /// Retries of each call.
    pub retry: RetryPolicy,
    /// [`MAX_REPORTS_PER_RUN`] by default.
    pub max_reports_per_run: u32,
}

impl Default for FilerConfig {
    fn default() -> FilerConfig {
        FilerConfig {
            retry: RetryPolicy::default(),
            max_reports_per_run: MAX_REPORTS_PER_RUN,
        }
    }
}

/// Two people's sign-off on a report: who confirmed the material and who approved sending
/// it. They must differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    confirmed_by: String,
    approved_by: String,
}

impl Approval {
    /// An approval; [`Error::SamePerson`] when both names are the same person (compared
    /// trimmed and case-insensitively, since `Alice` and `alice ` are one account).
    pub fn new(
        confirmed_by: impl Into<String>,
        approved_by: impl Into<String>,
    ) -> Result<Approval> {
        let approval = Approval {
            confirmed_by: confirmed_by.into(),
            approved_by: approved_by.into(),
        };
        approval.check()?;
        Ok(approval)
    }

    /// Who confirmed the material.
    pub fn confirmed_by(&self) -> &str {
        &self.confirmed_by
    }

    /// Who approved the report.
    pub fn approved_by(&self) -> &str {
        &self.approved_by
    }

    fn check(&self) -> Result<()> {
        let c = self.confirmed_by.trim();
        let a = self.approved_by.trim();
        if c.is_empty() || a.is_empty() {
            return Err(Error::invalid(
                "approval",
                "both the confirming and the approving person must be named",
            ));
        }
        if c.to_lowercase() == a.to_lowercase() {
            return Err(Error::SamePerson);
        }
        Ok(())
    }
}

/// One file of a filing.
#[derive(Debug, Clone)]
pub struct FilingFile {
    /// The name it is uploaded under.
    pub name: String,
    /// The bytes.
    pub content: Vec<u8>,
    /// Its `<fileDetails>` (report and file ids are filled in by the filer).
    pub details: FileDetails,
}

/// What to file: the caller's id for it (the journal key), the report, its files (none for a
/// text-only report such as online enticement), and the approval.
#[derive(Debug, Clone)]
pub struct Filing {
    /// The caller's id for this filing; the same id resumes it.
    pub id: String,
    /// The report.
    pub report: Report,
    /// The files, uploaded in this order.
    pub files: Vec<FilingFile>,
    /// The two-person approval; without it nothing is sent.
    pub approval: Option<Approval>,
}

/// Where a filing stands. Serialised as `"phase": "submitted"` and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// No report open: the next step is `/submit` (after retracting anything abandoned).
    Prepared,
    /// [`FilingState::current`] is open at NCMEC; files are being added.
    Submitted,
    /// Every file is in and the approval checked; `/finish` is being (or was) sent.
    Finishing,
    /// NCMEC confirmed the report. Final.
    Finished,
    /// The caller asked to withdraw the filing; `/retract` is being (or was) sent.
    Retracting,
    /// Withdrawn; nothing of it reached NCMEC's analysts. Final.
    Retracted,
}

/// One file's progress within the current report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileProgress {
    /// The upload name.
    pub name: String,
    /// MD5 of the content, lower-case hex, to tell a changed filing on resume.
    pub local_md5: String,
    /// Recorded before `/upload` is sent: if set without a `file_id`, the upload may have
    /// arrived unrecorded, and the report is abandoned rather than risk a duplicate.
    pub upload_started: bool,
    /// NCMEC's id of the file, once the upload's answer is recorded.
    pub file_id: Option<String>,
    /// NCMEC's MD5 of what it received (equal to `local_md5`, checked).
    pub md5: Option<String>,
    /// The `<fileDetails>` sent, once `/fileinfo` answered 0.
    pub file_details_xml: Option<String>,
}

/// The report currently open at NCMEC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenReport {
    /// NCMEC's report id.
    pub report_id: String,
    /// When `/submit` answered.
    pub opened_at: Timestamp,
    /// When NCMEC last accepted a change (submit, upload, fileinfo).
    pub last_change_at: Timestamp,
    /// The `<report>` sent.
    pub report_xml: String,
    /// One entry per file of the filing, in order.
    pub files: Vec<FileProgress>,
}

/// A report given up on; it is never finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbandonedReport {
    /// NCMEC's report id.
    pub report_id: String,
    /// Why it was given up (expired, an upload that may have arrived unrecorded, 5001).
    pub reason: String,
    /// When.
    pub at: Timestamp,
    /// Whether NCMEC confirmed it is gone: retracted (0 or 5101) or already deleted (5001).
    /// `false` means a retract is still owed; the next run sends it.
    pub retracted: bool,
}

/// One request and its answer, kept for the caller's evidence vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// When the answer came.
    pub at: Timestamp,
    /// The endpoint (`/submit`, `/upload`, …).
    pub endpoint: String,
    /// The report it concerns.
    pub report_id: Option<String>,
    /// What was sent: the exact XML for `/submit` and `/fileinfo`; for `/upload` the file's
    /// name, size and MD5 (the bytes are the caller's already); `id=…` for the others.
    pub request: String,
    /// The HTTP status.
    pub status: u16,
    /// The answer's `Request-ID` header.
    pub request_id: Option<String>,
    /// The answer's body as received.
    pub response: String,
}

/// A filing's durable state, as the [`Journal`] stores it (JSON via serde). Example:
///
/// ```json
/// {"version":1,"filing_id":"case-42","phase":"submitted",
///  "current":{"report_id":"4564654","opened_at":1767225600,"last_change_at":1767225601,
///    "report_xml":"<?xml …","files":[{"name":"a.png","local_md5":"…","upload_started":true,
///    "file_id":"f1","md5":"…","file_details_xml":null}]},
///  "abandoned":[],"transcript":[{"at":1767225600,"endpoint":"/submit","report_id":"4564654",
///    "request":"<?xml …","status":200,"request_id":"r-1","response":"<reportResponse>…"}]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilingState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// The filing's id.
    pub filing_id: String,
    /// Where it stands.
    pub phase: Phase,
    /// The report open at NCMEC (from `Submitted` on).
    pub current: Option<OpenReport>,
    /// Reports opened for this filing and given up on, oldest first.
    pub abandoned: Vec<AbandonedReport>,
    /// Every answered request, in order.
    pub transcript: Vec<Exchange>,
}

impl FilingState {
    /// The state of a filing nothing has been sent for.
    pub fn new(filing_id: &str) -> FilingState {
        FilingState {
            version: STATE_VERSION,
            filing_id: filing_id.to_string(),
            phase: Phase::Prepared,
            current: None,
            abandoned: Vec::new(),
            transcript: Vec::new(),
        }
    }
}

/// Where filing states are kept. Both calls are synchronous and `record` must be durable
/// when it returns (fsynced, committed): the filer sends nothing to NCMEC until the step
/// before it is recorded. [`crate::FileJournal`] keeps one JSON file per filing; a database
/// implementation stores the serialised [`FilingState`] in one row per filing.
pub trait Journal: Send + Sync {
    /// The filing's last recorded state, `None` if nothing was recorded.
    fn load(&self, filing_id: &str) -> Result<Option<FilingState>>;
    /// Replaces the filing's state, durably.
    fn record(&self, filing_id: &str, state: &FilingState) -> Result<()>;
}

/// A filed report: what the caller keeps (in an encrypted vault) as the record of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiledReport {
    /// The filing's id.
    pub filing_id: String,
    /// NCMEC's report id.
    pub report_id: String,
    /// NCMEC's file ids, in the filing's file order.
    pub file_ids: Vec<String>,
    /// The `<report>` sent.
    pub report_xml: String,
    /// The `<fileDetails>` sent, in file order.
    pub file_details_xml: Vec<String>,
    /// Every request and answer, including those of abandoned reports.
    pub transcript: Vec<Exchange>,
    /// Reports opened and given up on before this one.
    pub abandoned: Vec<AbandonedReport>,
}

impl FiledReport {
    fn from_state(state: &FilingState) -> Result<FiledReport> {
        let cur = state.current.as_ref().ok_or_else(|| Error::Journal {
            filing_id: state.filing_id.clone(),
            message: "finished state without a report".into(),
        })?;
        Ok(FiledReport {
            filing_id: state.filing_id.clone(),
            report_id: cur.report_id.clone(),
            file_ids: cur.files.iter().filter_map(|f| f.file_id.clone()).collect(),
            report_xml: cur.report_xml.clone(),
            file_details_xml: cur
                .files
                .iter()
                .filter_map(|f| f.file_details_xml.clone())
                .collect(),
            transcript: state.transcript.clone(),
            abandoned: state.abandoned.clone(),
        })
    }
}

/// Files reports: drives a [`Filing`] through the CyberTipline's calls, recording each step.
pub struct Filer {
    client: Client,
    journal: Arc<dyn Journal>,
    clock: Arc<dyn Clock>,
    config: FilerConfig,
}

impl std::fmt::Debug for Filer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filer")
            .field("client", &self.client)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What a step's outcome asks the loop to do next.
enum Next {
    Continue,
    Abandon(String),
}

impl Filer {
    /// A filer with the system clock and the default retries.
    pub fn new(client: Client, journal: Arc<dyn Journal>) -> Filer {
        Filer {
            client,
            journal,
            clock: Arc::new(SystemClock),
            config: FilerConfig::default(),
        }
    }

    /// Another clock (tests move it past NCMEC's expiry windows).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Filer {
        self.clock = clock;
        self
    }

    /// Other settings.
    pub fn with_config(mut self, config: FilerConfig) -> Filer {
        self.config = config;
        self
    }

    /// The filing's recorded state.
    pub fn state(&self, filing_id: &str) -> Result<Option<FilingState>> {
        self.journal.load(filing_id)
    }

    /// Files `filing`, or resumes it from the journal, until NCMEC confirms it finished.
    /// A filing already finished returns its record without calling NCMEC.
    pub async fn run(&self, filing: &Filing) -> Result<FiledReport> {
        match &filing.approval {
            None => return Err(Error::NotApproved),
            Some(a) => a.check()?,
        }
        // Everything the filer will write is validated before anything is sent, so bad input
        // never leaves a half-filed report behind.
        let report_xml = filing.report.to_xml(self.clock.now())?;
        for f in &filing.files {
            f.details.validate()?;
            if f.name.trim().is_empty() {
                return Err(Error::invalid("file/name", "a file needs a name"));
            }
        }
        let mut state = match self.journal.load(&filing.id)? {
            Some(s) => s,
            None => {
                let s = FilingState::new(&filing.id);
                self.record(&s).await?;
                s
            }
        };
        let mut opened = 0u32;
        loop {
            match state.phase {
                Phase::Finished => return FiledReport::from_state(&state),
                Phase::Retracting | Phase::Retracted => {
                    return Err(Error::Retracted(filing.id.clone()))
                }
                Phase::Prepared => {
                    self.settle_abandoned(&mut state).await?;
                    if opened >= self.config.max_reports_per_run {
                        let reason = state
                            .abandoned
                            .last()
                            .map(|a| a.reason.clone())
                            .unwrap_or_default();
                        return Err(Error::TooManyReports {
                            reports: opened,
                            last_reason: reason,
                        });
                    }
                    opened += 1;
                    self.submit(&mut state, filing, &report_xml).await?;
                }
                Phase::Submitted => {
                    let next = self.add_files(&mut state, filing).await?;
                    if let Next::Abandon(reason) = next {
                        self.abandon(&mut state, reason).await?;
                    }
                }
                Phase::Finishing => {
                    if let Next::Abandon(reason) = self.finish(&mut state, filing).await? {
                        self.abandon(&mut state, reason).await?;
                    }
                }
            }
        }
    }

    /// Withdraws the filing: retracts its open report (and any abandoned one still owed a
    /// retract) and records it as retracted, so that a later [`Filer::run`] refuses it.
    /// A finished filing cannot be retracted ([`Error::AlreadyFinished`]).
    pub async fn retract(&self, filing_id: &str) -> Result<FilingState> {
        let mut state = self
            .journal
            .load(filing_id)?
            .unwrap_or_else(|| FilingState::new(filing_id));
        match state.phase {
            Phase::Finished => return Err(Error::AlreadyFinished(filing_id.to_string())),
            Phase::Retracted => return Ok(state),
            _ => {}
        }
        state.phase = Phase::Retracting;
        self.record(&state).await?;
        if let Some(report_id) = state.current.as_ref().map(|c| c.report_id.clone()) {
            match self
                .retry("/retract", || self.client.retract(&report_id), |_| true)
                .await
            {
                Ok(answer) => self.log(
                    &mut state,
                    "/retract",
                    &report_id,
                    form(&report_id),
                    &answer,
                ),
                Err(e) if e.code_class() == Some(CodeClass::NotFound) => {
                    self.log_refusal(&mut state, "/retract", &report_id, form(&report_id), &e)
                }
                Err(e) if e.code_class() == Some(CodeClass::AlreadyFinished) => {
                    // A finish sent earlier arrived after all: the report stands.
                    self.log_refusal(&mut state, "/retract", &report_id, form(&report_id), &e);
                    state.phase = Phase::Finished;
                    self.record(&state).await?;
                    return Err(Error::AlreadyFinished(filing_id.to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        self.settle_abandoned(&mut state).await?;
        state.phase = Phase::Retracted;
        self.record(&state).await?;
        Ok(state)
    }

    async fn submit(&self, state: &mut FilingState, filing: &Filing, xml: &str) -> Result<()> {
        let answer = self
            .retry("/submit", || self.client.submit(xml), |_| true)
            .await?;
        let now = self.clock.now();
        // `Client::submit` refuses an answer without a reportId.
        let report_id = answer.response.report_id.clone().unwrap_or_default();
        self.log(state, "/submit", &report_id, xml.to_string(), &answer);
        state.current = Some(OpenReport {
            report_id,
            opened_at: now,
            last_change_at: now,
            report_xml: xml.to_string(),
            files: filing
                .files
                .iter()
                .map(|f| FileProgress {
                    name: f.name.clone(),
                    local_md5: md5_hex(&f.content),
                    upload_started: false,
                    file_id: None,
                    md5: None,
                    file_details_xml: None,
                })
                .collect(),
        });
        state.phase = Phase::Submitted;
        self.record(state).await
    }

    async fn add_files(&self, state: &mut FilingState, filing: &Filing) -> Result<Next> {
        let now = self.clock.now();
        let Some(cur) = state.current.clone() else {
            return Err(self.corrupt(state, "submitted without a report"));
        };
        if cur.files.len() != filing.files.len()
            || cur
                .files
                .iter()
                .zip(&filing.files)
                .any(|(p, f)| p.name != f.name || p.local_md5 != md5_hex(&f.content))
        {
            return Err(Error::Config(format!(
                "filing {} was resumed with other files than it was started with",
                filing.id
            )));
        }
        if let Some(why) = expired(&cur, now) {
            return Ok(Next::Abandon(why));
        }
        let report_id = cur.report_id;
        for (i, file) in filing.files.iter().enumerate() {
            let progress = &cur_files(state)[i];
            if progress.file_id.is_none() {
                if progress.upload_started {
                    return Ok(Next::Abandon(format!(
                        "the upload of {} may have reached NCMEC without its answer being \
                         recorded",
                        file.name
                    )));
                }
                cur_files_mut(state)[i].upload_started = true;
                self.record(state).await?;
                let result = self
                    .retry(
                        "/upload",
                        || self.client.upload(&report_id, &file.name, &file.content),
                        |e| !upload_may_have_arrived(e),
                    )
                    .await;
                let answer = match result {
                    Ok(a) => a,
                    Err(e) if e.code_class() == Some(CodeClass::NotFound) => {
                        let request = format!("id={report_id}; file={}", file.name);
                        self.log_refusal(state, "/upload", &report_id, request, &e);
                        return Ok(Next::Abandon(format!("NCMEC no longer has it: {e}")));
                    }
                    Err(e) if upload_may_have_arrived(&e) => {
                        return Ok(Next::Abandon(format!(
                            "the upload of {} may have reached NCMEC: {e}",
                            file.name
                        )))
                    }
                    Err(e) => {
                        // NCMEC answered and refused (a malformed file, an auth failure) or
                        // the connection was never made: nothing was stored, so the next run
                        // may upload to this report again instead of abandoning it.
                        cur_files_mut(state)[i].upload_started = false;
                        self.record(state).await?;
                        return Err(e);
                    }
                };
                let request = format!(
                    "id={report_id}; file={} ({} bytes, MD5 {})",
                    file.name,
                    file.content.len(),
                    md5_hex(&file.content)
                );
                self.log(state, "/upload", &report_id, request, &answer);
                let p = &mut cur_files_mut(state)[i];
                p.file_id = answer.response.file_id.clone();
                p.md5 = answer.response.hash.clone();
                touch(state, self.clock.now());
                self.record(state).await?;
            }
            let progress = &cur_files(state)[i];
            if progress.file_details_xml.is_none() {
                // Set just above or recorded by an earlier run.
                let file_id = progress.file_id.clone().unwrap_or_default();
                let xml = file.details.to_xml(&report_id, &file_id, &file.name)?;
                // Sending the same details again replaces them: safe to repeat.
                match self
                    .retry("/fileinfo", || self.client.file_info(&xml), |_| true)
                    .await
                {
                    Ok(answer) => self.log(state, "/fileinfo", &report_id, xml.clone(), &answer),
                    Err(e) if e.code_class() == Some(CodeClass::NotFound) => {
                        self.log_refusal(state, "/fileinfo", &report_id, xml.clone(), &e);
                        return Ok(Next::Abandon(format!("NCMEC no longer has it: {e}")));
                    }
                    Err(e) => return Err(e),
                }
                cur_files_mut(state)[i].file_details_xml = Some(xml);
                touch(state, self.clock.now());
                self.record(state).await?;
            }
        }
        state.phase = Phase::Finishing;
        self.record(state).await?;
        Ok(Next::Continue)
    }

    async fn finish(&self, state: &mut FilingState, filing: &Filing) -> Result<Next> {
        // Checked at the start of `run` too; checked again here because this is the
        // irreversible call, and the gate must not depend on the code above staying as it is.
        match &filing.approval {
            None => return Err(Error::NotApproved),
            Some(a) => a.check()?,
        }
        let Some(report_id) = state.current.as_ref().map(|c| c.report_id.clone()) else {
            return Err(self.corrupt(state, "finishing without a report"));
        };
        match self
            .retry("/finish", || self.client.finish(&report_id), |_| true)
            .await
        {
            Ok(answer) => {
                self.log(state, "/finish", &report_id, form(&report_id), &answer);
                state.phase = Phase::Finished;
                self.record(state).await?;
                Ok(Next::Continue)
            }
            // Deleted before any finish arrived (a finish that arrived would answer 5102).
            Err(e) if e.code_class() == Some(CodeClass::NotFound) => {
                self.log_refusal(state, "/finish", &report_id, form(&report_id), &e);
                Ok(Next::Abandon(format!(
                    "NCMEC no longer has it at finish: {e}"
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// Gives up the current report: keeps its id as abandoned and returns to `Prepared`.
    async fn abandon(&self, state: &mut FilingState, reason: String) -> Result<()> {
        if let Some(cur) = state.current.take() {
            state.abandoned.push(AbandonedReport {
                report_id: cur.report_id,
                reason,
                at: self.clock.now(),
                retracted: false,
            });
        }
        state.phase = Phase::Prepared;
        self.record(state).await
    }

    /// Sends the retracts owed to abandoned reports. A report NCMEC already deleted (5001)
    /// or retracted (5101) needs nothing more. One that answers 5102 "already finished" was
    /// filed after all: the filing stops rather than file a second report.
    async fn settle_abandoned(&self, state: &mut FilingState) -> Result<()> {
        for i in 0..state.abandoned.len() {
            if state.abandoned[i].retracted {
                continue;
            }
            let report_id = state.abandoned[i].report_id.clone();
            match self
                .retry("/retract", || self.client.retract(&report_id), |_| true)
                .await
            {
                Ok(answer) => self.log(state, "/retract", &report_id, form(&report_id), &answer),
                Err(e) if e.code_class() == Some(CodeClass::NotFound) => {
                    self.log_refusal(state, "/retract", &report_id, form(&report_id), &e)
                }
                Err(e) if e.code_class() == Some(CodeClass::AlreadyFinished) => {
                    self.log_refusal(state, "/retract", &report_id, form(&report_id), &e);
                    self.record(state).await?;
                    return Err(Error::AlreadyFinished(format!(
                        "{} (abandoned report {report_id} was finished; not filing another)",
                        state.filing_id
                    )));
                }
                // NCMEC deletes it within 24 h anyway; a retract that keeps failing must not
                // hold up a report about a child. The flag stays false and the next run
                // tries again.
                Err(_) => continue,
            }
            state.abandoned[i].retracted = true;
            self.record(state).await?;
        }
        Ok(())
    }

    /// Runs `call` until it succeeds, fails for good, or the retry budget is spent.
    /// `may_repeat` says whether a retryable failure may be repeated on the same report.
    async fn retry<F, Fut>(
        &self,
        endpoint: &'static str,
        mut call: F,
        may_repeat: impl Fn(&Error) -> bool,
    ) -> Result<Answer>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Answer>>,
    {
        let policy = self.config.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match call().await {
                Ok(a) => return Ok(a),
                Err(e) if e.is_retryable() && may_repeat(&e) => {
                    if attempt >= policy.max_attempts.max(1) {
                        return Err(Error::RetriesExhausted {
                            endpoint,
                            attempts: attempt,
                            last: Box::new(e),
                        });
                    }
                    tokio::time::sleep(policy.backoff(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn log(
        &self,
        state: &mut FilingState,
        endpoint: &str,
        report_id: &str,
        request: String,
        answer: &Answer,
    ) {
        state.transcript.push(Exchange {
            at: self.clock.now(),
            endpoint: endpoint.to_string(),
            report_id: Some(report_id.to_string()).filter(|s| !s.is_empty()),
            request,
            status: answer.status,
            request_id: answer.request_id.clone(),
            response: answer.body.clone(),
        });
    }

    /// Keeps a refusal the filer acted on (5001 on a report it then abandons, for example)
    /// in the transcript, with its Request-ID, like any other answer.
    fn log_refusal(
        &self,
        state: &mut FilingState,
        endpoint: &str,
        report_id: &str,
        request: String,
        error: &Error,
    ) {
        let error = match error {
            Error::RetriesExhausted { last, .. } => last,
            e => e,
        };
        if let Error::Refused {
            request_id,
            status,
            body,
            ..
        } = error
        {
            state.transcript.push(Exchange {
                at: self.clock.now(),
                endpoint: endpoint.to_string(),
                report_id: Some(report_id.to_string()),
                request,
                status: *status,
                request_id: request_id.clone(),
                response: body.clone(),
            });
        }
    }

    /// Records `state` durably, off the async reactor (a journal fsyncs).
    async fn record(&self, state: &FilingState) -> Result<()> {
        let journal = Arc::clone(&self.journal);
        let snapshot = state.clone();
        tokio::task::spawn_blocking(move || journal.record(&snapshot.filing_id, &snapshot))
            .await
            .map_err(|e| Error::Journal {
                filing_id: state.filing_id.clone(),
                message: format!("the journal task failed: {e}"),
            })?
    }

    fn corrupt(&self, state: &FilingState, what: &str) -> Error {
        Error::Journal {
            filing_id: state.filing_id.clone(),
            message: format!("inconsistent state: {what}"),
        }
    }
}

/// Whether a failed upload may nonetheless have stored the file at NCMEC: anything after the
/// request may have left this machine, unless NCMEC itself said the upload failed.
fn upload_may_have_arrived(e: &Error) -> bool {
    match e {
        Error::Transport {
            maybe_delivered, ..
        } => *maybe_delivered,
        Error::Http { .. }
        | Error::MalformedResponse { .. }
        | Error::ResponseTooLarge { .. }
        | Error::HashMismatch { .. } => true,
        Error::RetriesExhausted { last, .. } => upload_may_have_arrived(last),
        _ => false,
    }
}

/// Why the report is past NCMEC's deletion windows at `now`, if it is.
fn expired(cur: &OpenReport, now: Timestamp) -> Option<String> {
    let age = now.unix_seconds() - cur.opened_at.unix_seconds();
    let idle = now.unix_seconds() - cur.last_change_at.unix_seconds();
    if age >= NCMEC_REPORT_MAX_AGE_SECONDS - EXPIRY_SAFETY_MARGIN_SECONDS {
        Some(format!(
            "opened {age} s ago; NCMEC deletes unfinished reports {NCMEC_REPORT_MAX_AGE_SECONDS} s after opening"
        ))
    } else if idle >= NCMEC_REPORT_MAX_IDLE_SECONDS - EXPIRY_SAFETY_MARGIN_SECONDS {
        Some(format!(
            "last changed {idle} s ago; NCMEC deletes unfinished reports {NCMEC_REPORT_MAX_IDLE_SECONDS} s after the last change"
        ))
    } else {
        None
    }
}

fn touch(state: &mut FilingState, now: Timestamp) {
    if let Some(cur) = state.current.as_mut() {
        cur.last_change_at = now;
    }
}

/// The current report's files. Only called in `Submitted`, where `current` is set (checked at
/// the top of `add_files`); an empty slice otherwise makes the indexing fail loudly.
fn cur_files(state: &FilingState) -> &[FileProgress] {
    state.current.as_ref().map_or(&[], |c| &c.files)
}

fn cur_files_mut(state: &mut FilingState) -> &mut [FileProgress] {
    state.current.as_mut().map_or(&mut [], |c| &mut c.files)
}

fn form(report_id: &str) -> String {
    format!("id={report_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_by_the_same_person_is_refused() {
        assert!(matches!(
            Approval::new("Alice", " alice "),
            Err(Error::SamePerson)
        ));
        assert!(Approval::new("", "Bob").is_err());
        let a = Approval::new("Alice", "Bob").unwrap();
        assert_eq!((a.confirmed_by(), a.approved_by()), ("Alice", "Bob"));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
        };
        assert!(p.backoff(1) <= Duration::from_millis(100));
        assert!(p.backoff(1) >= Duration::from_millis(75));
        assert!(p.backoff(3) <= Duration::from_millis(350));
        assert!(p.backoff(30) <= Duration::from_millis(350));
    }

    #[test]
    fn expiry_windows() {
        let t = Timestamp(1_000_000);
        let cur = OpenReport {
            report_id: "1".into(),
            opened_at: t,
            last_change_at: t,
            report_xml: String::new(),
            files: Vec::new(),
        };
        assert!(expired(&cur, t.plus_seconds(60)).is_none());
        assert!(expired(&cur, t.plus_seconds(3600)).is_some());
        let mut busy = cur.clone();
        busy.last_change_at = t.plus_seconds(NCMEC_REPORT_MAX_AGE_SECONDS - 600);
        assert!(expired(&busy, t.plus_seconds(NCMEC_REPORT_MAX_AGE_SECONDS - 500)).is_none());
        assert!(expired(&busy, t.plus_seconds(NCMEC_REPORT_MAX_AGE_SECONDS)).is_some());
    }
}
