//! Report filings (to NCMEC's CyberTipline and, later, other destinations) and sealed secrets.
//!
//! A filing's progress is the filer's journal: the `safeguard-ncmec` crate's `FilingState`,
//! serialised as JSON, in one row per filing. The store does not read that JSON; it keeps it
//! with the columns a server queries by (the case, the phase, NCMEC's report id), and makes
//! every write durable before it returns, which is what the filer's `Journal` requires.
//!
//! Secrets (a destination's credentials) are kept sealed: the caller seals them with the
//! master key before they reach the store, so the database never holds one in clear.

use crate::action::CaseId;
use crate::Result;

/// Phases in which a filing has reached its end: nothing is resumed for it.
pub const FINAL_PHASES: [&str; 2] = ["finished", "retracted"];

/// A filing's journal entry as written by the filer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilingRecord<'a> {
    /// The filing id (`ncmec-case-<id>-<n>`): the journal key.
    pub id: &'a str,
    /// The case it reports.
    pub case_id: CaseId,
    /// Where it goes (`ncmec`).
    pub destination: &'a str,
    /// The filer's state, JSON.
    pub state: &'a str,
    /// The state's phase (`prepared`, `submitted`, ..., `finished`, `retracted`).
    pub phase: &'a str,
    /// The destination's report id, once one is open.
    pub report_id: Option<&'a str>,
    /// Unix milliseconds.
    pub at: i64,
}

/// A stored filing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFiling {
    /// The filing id.
    pub id: String,
    /// The case.
    pub case_id: CaseId,
    /// Where it goes.
    pub destination: String,
    /// The filer's state, JSON.
    pub state: String,
    /// The state's phase.
    pub phase: String,
    /// The destination's report id.
    pub report_id: Option<String>,
    /// The last run's error (a stable code and a message), `None` after a run that went
    /// through. Never credentials.
    pub last_error: Option<String>,
    /// The sealed record of what was sent and answered (the vault's object record, JSON),
    /// once the filing finished.
    pub transcript: Option<String>,
    /// When it was created, Unix milliseconds.
    pub created_at: i64,
    /// When it last changed, Unix milliseconds.
    pub updated_at: i64,
}

impl ReportFiling {
    /// Whether the filing reached its end (finished or retracted).
    pub fn is_final(&self) -> bool {
        FINAL_PHASES.contains(&self.phase.as_str())
    }
}

/// Storage of report filings and sealed secrets. Part of every [`crate::Store`].
pub trait ReportStore: Send + Sync {
    /// Creates the filing or replaces its state, phase and report id (keeping its case,
    /// destination, error, transcript and `created_at`), durably. `Conflict` when the id is
    /// taken by a filing of another case or destination.
    fn put_filing_state(&self, filing: &FilingRecord<'_>) -> Result<()>;
    /// Creates the filing unless a filing with its id exists; whether it was created. Of two
    /// processes creating a case's next filing at once, one creates it and the other finds
    /// it (where [`ReportStore::put_filing_state`] would let the second reset the first's
    /// progress).
    fn create_filing(&self, filing: &FilingRecord<'_>) -> Result<bool>;
    /// Sets or clears a filing's last error. `NotFound`.
    fn set_filing_error(&self, id: &str, error: Option<&str>, at: i64) -> Result<()>;
    /// Records a filing's sealed transcript. `NotFound`.
    fn set_filing_transcript(&self, id: &str, transcript: &str, at: i64) -> Result<()>;
    /// One filing.
    fn filing(&self, id: &str) -> Result<Option<ReportFiling>>;
    /// A case's filings, oldest first.
    fn case_filings(&self, case_id: CaseId) -> Result<Vec<ReportFiling>>;
    /// Filings with work left, oldest first: not yet finished or retracted, or finished
    /// without a recorded transcript (the steps after the destination's confirmation did not
    /// all run). What a server resumes when it starts.
    fn unfinished_filings(&self) -> Result<Vec<ReportFiling>>;
    /// Takes or renews the lease of a filing for `owner` (a process) until `until`: granted
    /// when no lease is held, the held one ran out (`lease_until <= now`), or `owner` holds it.
    /// Whether it was granted; `false` for an unknown filing. Several processes sharing a
    /// database use it so that one filing is driven by one process at a time.
    fn lease_filing(&self, id: &str, owner: &str, until: i64, now: i64) -> Result<bool>;
    /// Gives up `owner`'s lease of a filing; a lease held by another owner is left alone.
    fn release_filing(&self, id: &str, owner: &str) -> Result<()>;
    /// Takes or renews the lease called `name` for `owner` (a process) until `until`: granted
    /// when nobody holds it, the held one ran out (`until <= now`), or `owner` holds it.
    /// Whether it was granted. For work that is not a filing but must still run in one
    /// process at a time across the processes sharing a database (a send through the NCA's
    /// API: `nca-send:{case}`). A lease that ran out without being given up stays a row
    /// until taken again.
    fn take_lease(&self, name: &str, owner: &str, until: i64, now: i64) -> Result<bool>;
    /// Extends `owner`'s lease called `name` to `until`, only if `owner` still holds it: not
    /// if it was given up, or taken by another owner (even one that has since let it run
    /// out), which [`ReportStore::take_lease`] would grant again. One that ran out with
    /// nobody taking it is still `owner`'s. Whether it was extended.
    fn extend_lease(&self, name: &str, owner: &str, until: i64) -> Result<bool>;
    /// Gives up `owner`'s lease called `name` (its row is deleted); one held by another owner
    /// is left alone.
    fn give_up_lease(&self, name: &str, owner: &str) -> Result<()>;
    /// Stores (or replaces) a sealed secret.
    fn put_secret(&self, name: &str, sealed: &[u8], at: i64) -> Result<()>;
    /// A sealed secret.
    fn secret(&self, name: &str) -> Result<Option<Vec<u8>>>;
}
