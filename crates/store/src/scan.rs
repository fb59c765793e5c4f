//! Backfill scans: files already stored on a platform, hashed and matched in bulk.
//!
//! A scan is split into jobs of a few hundred items (file paths, object keys or URLs). Any
//! number of workers, in any number of processes, claim jobs under a lease; a worker that dies
//! leaves its job to whoever claims it after the lease runs out. Each item's result is keyed
//! by `(scan, item)`, so an item processed twice (a lease that ran out while its worker was
//! slow, not dead) is still recorded once and counted once.
//!
//! What an item is and how it is hashed are the caller's; the store keeps the plan, the leases,
//! the counters and the results, and makes every step atomic.

use std::collections::HashSet;

use crate::{Error, Result};

/// Row id of a scan.
pub type ScanId = i64;
/// Row id of a scan's job.
pub type ScanJobId = i64;

/// Most items in one job: bounds the row a claim reads and the results one finish writes.
pub const MAX_JOB_ITEMS: usize = 1000;
/// Longest item key, bytes (a path, object key or URL). S3's own limit; and PostgreSQL keys
/// its results by the key in a btree, whose entries hold at most 2,704 bytes, which a key
/// twice this long once escaped (`postgres/row.rs`: NUL and `\x01` take two bytes each)
/// still fits.
pub const MAX_ITEM_KEY_BYTES: usize = 1024;

/// The states of a scan. `Done` and `Cancelled` are final.
pub mod state {
    /// Jobs are handed out.
    pub const RUNNING: &str = "running";
    /// No job is handed out; leased jobs finish.
    pub const PAUSED: &str = "paused";
    /// Stopped for good; results so far are kept.
    pub const CANCELLED: &str = "cancelled";
    /// Every listed item has its result.
    pub const DONE: &str = "done";
}

/// A scan to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewScan {
    /// Where the items come from (`dir:/srv/media`, `s3://bucket/prefix`, `urls:/tmp/list`).
    pub source: String,
    /// What to match against, as the caller encodes it (JSON); the store keeps it opaque.
    pub target: String,
    /// Who started it.
    pub created_by: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Items per job, as the listing cuts them (kept so a listing run again cuts the same).
    pub job_size: i64,
}

/// A scan and its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Row id.
    pub id: ScanId,
    /// See [`NewScan::source`].
    pub source: String,
    /// See [`NewScan::target`].
    pub target: String,
    /// See [`NewScan::job_size`].
    pub job_size: i64,
    /// One of [`state`].
    pub state: String,
    /// Whether the source has been listed to its end (until then more jobs may come).
    pub listed: bool,
    /// Jobs planned so far.
    pub jobs: i64,
    /// Jobs whose results are all recorded.
    pub jobs_done: i64,
    /// Items planned so far.
    pub items: i64,
    /// Items with a result.
    pub items_done: i64,
    /// Items whose result is an error (included in `items_done`).
    pub items_failed: i64,
    /// Items that matched a bank (included in `items_done`).
    pub items_matched: i64,
    /// See [`NewScan::created_by`].
    pub created_by: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds of the last change of state or counters.
    pub updated_at: i64,
    /// When it became done or cancelled.
    pub finished_at: Option<i64>,
}

impl Scan {
    /// Whether no job will be handed out any more.
    pub fn is_final(&self) -> bool {
        self.state == state::DONE || self.state == state::CANCELLED
    }
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanJob {
    /// Row id.
    pub id: ScanJobId,
    /// Its scan.
    pub scan_id: ScanId,
    /// Its place in the listing, from 0.
    pub ordinal: i64,
    /// The item keys.
    pub items: Vec<String>,
    /// Claims so far, this one included: a job claimed many times is one that kills its
    /// workers, and the caller gives up on it.
    pub attempts: i64,
    /// Until when this claim holds, Unix milliseconds by the store's clock.
    pub lease_until: i64,
}

/// What a claim got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// A job, leased to the caller.
    Job(ScanJob),
    /// Nothing now: the scan is paused, not fully listed, or its other jobs are leased.
    Wait,
    /// The scan is done or cancelled.
    Ended(Scan),
}

/// The result of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemResult {
    /// The item's key.
    pub key: String,
    /// Why it has no hashes (unreadable, not an image, over a limit); `None` when hashed.
    pub error: Option<String>,
    /// PDQ hash, hex (images; a video's first hashed frame is not stored here).
    pub pdq: Option<String>,
    /// PDQ quality, 0..=100.
    pub quality: Option<i64>,
    /// MD5 of the file, hex.
    pub md5: Option<String>,
    /// SHA-256 of the file, hex.
    pub sha256: Option<String>,
    /// Size, bytes.
    pub size: Option<i64>,
    /// Whether it matched a bank.
    pub matched: bool,
    /// The policy's verdict, when it matched.
    pub verdict: Option<String>,
    /// The submission recorded for it (its platform id), when it matched.
    pub submission: Option<String>,
}

/// A recorded result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredItemResult {
    /// The result.
    pub result: ItemResult,
    /// The worker that recorded it.
    pub worker: String,
    /// Unix milliseconds.
    pub recorded_at: i64,
}

/// Checks a scan before it is created.
pub(crate) fn check_new_scan(s: &NewScan) -> Result<()> {
    if s.job_size < 1 || s.job_size > MAX_JOB_ITEMS as i64 {
        return Err(Error::Conflict(format!(
            "a scan's job size is 1 to {MAX_JOB_ITEMS}, not {}",
            s.job_size
        )));
    }
    Ok(())
}

/// Checks a job's items before they are planned.
pub(crate) fn check_job(items: &[String]) -> Result<()> {
    if items.is_empty() || items.len() > MAX_JOB_ITEMS {
        return Err(Error::Conflict(format!(
            "a job holds 1 to {MAX_JOB_ITEMS} items, not {}",
            items.len()
        )));
    }
    if let Some(k) = items
        .iter()
        .find(|k| k.is_empty() || k.len() > MAX_ITEM_KEY_BYTES)
    {
        return Err(Error::Conflict(format!(
            "an item key is 1 to {MAX_ITEM_KEY_BYTES} bytes, not {}",
            k.len()
        )));
    }
    let mut seen = HashSet::with_capacity(items.len());
    if let Some(k) = items.iter().find(|k| !seen.insert(k.as_str())) {
        return Err(Error::Conflict(format!("{k:?} is twice in one job")));
    }
    Ok(())
}

/// Results must cover the job's items exactly: each once, no other.
pub(crate) fn check_results(items: &[String], results: &[ItemResult]) -> Result<()> {
    let wanted: HashSet<&str> = items.iter().map(String::as_str).collect();
    let mut seen = HashSet::with_capacity(results.len());
    for r in results {
        if !wanted.contains(r.key.as_str()) {
            return Err(Error::Conflict(format!(
                "{:?} is not an item of this job",
                r.key
            )));
        }
        if !seen.insert(r.key.as_str()) {
            return Err(Error::Conflict(format!("{:?} has two results", r.key)));
        }
    }
    if seen.len() != wanted.len() {
        return Err(Error::Conflict(format!(
            "the job has {} items and {} results",
            wanted.len(),
            seen.len()
        )));
    }
    Ok(())
}

/// The error for a job planned again with other items.
pub(crate) fn changed_source(ordinal: i64) -> Error {
    Error::Conflict(format!(
        "job {ordinal} was planned with other items: the source changed since it was first \
         listed"
    ))
}

/// The JSON a job's items are stored as.
pub(crate) fn items_json(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

/// A job's items from their stored JSON.
pub(crate) fn items_from_json(s: &str) -> Result<Vec<String>> {
    serde_json::from_str(s).map_err(|e| Error::Corrupt(format!("scan job items: {e}")))
}

/// Whether `to` may follow `from`; the error names both.
pub(crate) fn check_transition(from: &str, to: &str) -> Result<()> {
    let ok = match to {
        state::RUNNING | state::PAUSED => from == state::RUNNING || from == state::PAUSED,
        state::CANCELLED => from != state::DONE && from != state::CANCELLED,
        _ => {
            return Err(Error::Conflict(format!(
                "a scan can be set running, paused or cancelled, not {to:?}"
            )))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Conflict(format!(
            "the scan is {from}; it cannot become {to}"
        )))
    }
}

/// Backfill scans' plans, leases and results (see the module documentation).
///
/// Unlike the rest of [`crate::Store`], claims, renewals and finishes of jobs may commit
/// without waiting for the disk (SQLite `synchronous=NORMAL`, PostgreSQL
/// `synchronous_commit = off`): one per job, they were most of a scan's cost on small files.
/// A power cut can lose the last of them, never corrupt anything, and a lost claim or finish
/// only sends its job round again (results are keyed once; matches are recorded as
/// submissions, durably, before their job finishes).
pub trait ScanStore {
    /// Creates a scan, running, with no jobs yet.
    fn create_scan(&self, scan: &NewScan) -> Result<Scan>;
    /// Plans jobs `first_ordinal, first_ordinal + 1, ...`. A job already planned at an ordinal
    /// is kept as it was, so a listing cut off and run again from the start plans nothing
    /// twice; a job planned at an ordinal with other items is a `Conflict` (the source changed
    /// since it was first listed). `NotFound`; `Conflict` for an empty job, one over
    /// [`MAX_JOB_ITEMS`], a key over [`MAX_ITEM_KEY_BYTES`], a key twice in one job, or a
    /// scan already listed, done or cancelled.
    fn add_scan_jobs(&self, scan: ScanId, first_ordinal: i64, jobs: &[Vec<String>]) -> Result<()>;
    /// Marks the listing complete; a scan with every job done becomes done. `NotFound`.
    fn finish_listing(&self, scan: ScanId, now: i64) -> Result<Scan>;
    /// Leases the first job (in listing order) that is not done and not leased, or whose
    /// lease has run out, to `owner` for `lease_ms`. Leases are timed by the store's clock
    /// (the database server's on PostgreSQL), so workers on machines whose clocks disagree
    /// never take each other's jobs early. Several processes claiming at once get different
    /// jobs. `NotFound`.
    fn claim_scan_job(&self, scan: ScanId, owner: &str, lease_ms: i64) -> Result<Claim>;
    /// Extends `owner`'s lease of a job to `lease_ms` from now; false if the lease was lost
    /// (it ran out and someone else claimed the job, or the job is done).
    fn renew_scan_job(&self, job: ScanJobId, owner: &str, lease_ms: i64) -> Result<bool>;
    /// Gives `owner`'s job back untouched, claimable at once, and takes back the attempt the
    /// claim counted (a worker whose store or network failed did not try the job's files).
    /// False if it was not `owner`'s, or is done.
    fn release_scan_job(&self, job: ScanJobId, owner: &str) -> Result<bool>;
    /// Records a job's results and marks it done, in one transaction. An item already
    /// recorded keeps its first result and is not counted again, so this is safe after a lost
    /// lease. A scan whose listed jobs are all done becomes done. Returns the scan after.
    /// `NotFound`; `Conflict` for a result whose key is not one of the job's items.
    fn finish_scan_job(
        &self,
        job: ScanJobId,
        owner: &str,
        results: &[ItemResult],
        now: i64,
    ) -> Result<Scan>;
    /// The scan with this id.
    fn scan(&self, id: ScanId) -> Result<Option<Scan>>;
    /// Up to `limit` scans, newest first.
    fn scans(&self, limit: usize) -> Result<Vec<Scan>>;
    /// Pauses, resumes or cancels. `NotFound`; `Conflict` from a final state or to an
    /// unknown one. Pausing a paused scan or resuming a running one is allowed.
    fn set_scan_state(&self, id: ScanId, to: &str, now: i64) -> Result<Scan>;
    /// Up to `limit` results by ascending key, after `after`. `NotFound`.
    fn scan_results(
        &self,
        id: ScanId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredItemResult>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        use state::*;
        for (from, to, ok) in [
            (RUNNING, PAUSED, true),
            (PAUSED, RUNNING, true),
            (RUNNING, RUNNING, true),
            (PAUSED, CANCELLED, true),
            (RUNNING, CANCELLED, true),
            (CANCELLED, RUNNING, false),
            (CANCELLED, CANCELLED, false),
            (DONE, PAUSED, false),
            (DONE, CANCELLED, false),
            (RUNNING, DONE, false),
        ] {
            assert_eq!(check_transition(from, to).is_ok(), ok, "{from} -> {to}");
        }
    }

    #[test]
    fn jobs_are_checked_and_round_trip() {
        assert!(check_job(&[]).is_err());
        assert!(check_job(&vec!["a".to_string(); MAX_JOB_ITEMS + 1]).is_err());
        assert!(check_job(&[String::new()]).is_err());
        assert!(check_job(&["x".repeat(MAX_ITEM_KEY_BYTES + 1)]).is_err());
        let items = vec!["a\nb".to_string(), "\"q\"".into(), "é/ü".into()];
        check_job(&items).unwrap();
        assert_eq!(items_from_json(&items_json(&items)).unwrap(), items);
        assert!(items_from_json("{").is_err());
    }
}
