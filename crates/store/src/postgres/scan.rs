//! [`ScanStore`] on PostgreSQL. Nothing here touches the banks or the feed, so every
//! transaction runs without the store's write lock; concurrent claims from many processes
//! take different jobs through `FOR UPDATE SKIP LOCKED`, and a job's finish locks only its
//! own row and its scan's.

use std::collections::HashSet;

use tokio_postgres::Row;

use super::row::col;
use super::{Param, PostgresStore, Tx};
use crate::scan::*;
use crate::{Error, Result};

/// Claims, renewals, releases and finishes commit without waiting for the WAL flush (see
/// [`ScanStore`]): a server crash loses at most the last fraction of a second of them, which
/// only means redoing those jobs. Sent with the `BEGIN`, in one round trip.
const ASYNC_BEGIN: &str =
    "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit TO OFF";

/// The database server's clock, Unix milliseconds: leases are timed by one clock for every
/// worker, whatever its machine's says. `now()` is the transaction's start, a moment ago.
const DB_NOW_MS: &str = "(extract(epoch FROM now()) * 1000)::bigint";

/// The end of a lease of `$3` milliseconds from [`DB_NOW_MS`], saturated to `bigint` as
/// SQLite's store saturates it in Rust (a lease past the year 292 million would overflow).
const DB_LEASE_UNTIL: &str = "LEAST(GREATEST(\
     (extract(epoch FROM now()) * 1000)::bigint::numeric + $3::bigint, \
     -9223372036854775808), 9223372036854775807)::bigint";

/// Result rows per `INSERT`: 10 parameters each, well under PostgreSQL's 65,535.
const RESULT_ROWS_PER_INSERT: usize = 500;

const SCAN_COLUMNS: &str = "id, source, target, job_size, state, listed, jobs, jobs_done, items, \
     items_done, items_failed, items_matched, created_by, created_at, updated_at, finished_at";

fn scan_row(r: &Row) -> Result<Scan> {
    Ok(Scan {
        id: col(r, 0, "scans")?,
        source: col(r, 1, "scans")?,
        target: col(r, 2, "scans")?,
        job_size: col(r, 3, "scans")?,
        state: col(r, 4, "scans")?,
        listed: col(r, 5, "scans")?,
        jobs: col(r, 6, "scans")?,
        jobs_done: col(r, 7, "scans")?,
        items: col(r, 8, "scans")?,
        items_done: col(r, 9, "scans")?,
        items_failed: col(r, 10, "scans")?,
        items_matched: col(r, 11, "scans")?,
        created_by: col(r, 12, "scans")?,
        created_at: col(r, 13, "scans")?,
        updated_at: col(r, 14, "scans")?,
        finished_at: col(r, 15, "scans")?,
    })
}

fn get_scan(tx: &mut Tx<'_>, id: ScanId) -> Result<Option<Scan>> {
    tx.opt(
        &format!("SELECT {SCAN_COLUMNS} FROM scans WHERE id = $1"),
        &[&id],
    )?
    .as_ref()
    .map(scan_row)
    .transpose()
}

fn must_scan(tx: &mut Tx<'_>, id: ScanId) -> Result<Scan> {
    get_scan(tx, id)?.ok_or_else(|| Error::NotFound(format!("scan {id}")))
}

/// Marks a listed scan with every job done as done; returns the scan after.
fn settle(tx: &mut Tx<'_>, id: ScanId, now: i64) -> Result<Scan> {
    tx.execute(
        "UPDATE scans SET state = 'done', finished_at = $2, updated_at = $2 \
         WHERE id = $1 AND listed AND jobs_done = jobs AND state IN ('running', 'paused')",
        &[&id, &now],
    )?;
    must_scan(tx, id)
}

impl PostgresStore {
    /// [`PostgresStore::write_unlocked`] whose commit does not wait for the WAL flush.
    fn write_async<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        Tx::open(self, ASYNC_BEGIN)?.run(f)
    }
}

impl ScanStore for PostgresStore {
    fn create_scan(&self, s: &NewScan) -> Result<Scan> {
        check_new_scan(s)?;
        self.write_unlocked(|tx| {
            let r = tx.one(
                &format!(
                    "INSERT INTO scans (source, target, job_size, state, created_by, \
                     created_at, updated_at) VALUES ($1, $2, $3, 'running', $4, $5, $5) \
                     RETURNING {SCAN_COLUMNS}"
                ),
                &[
                    &s.source,
                    &s.target,
                    &s.job_size,
                    &s.created_by,
                    &s.created_at,
                ],
            )?;
            scan_row(&r)
        })
    }

    fn add_scan_jobs(&self, scan: ScanId, first_ordinal: i64, jobs: &[Vec<String>]) -> Result<()> {
        for j in jobs {
            check_job(j)?;
        }
        self.write_unlocked(|tx| {
            // Locks the scan row: a concurrent `finish_listing` waits, so no job is planned
            // after the scan was declared listed.
            let r = tx
                .opt(
                    &format!("SELECT {SCAN_COLUMNS} FROM scans WHERE id = $1 FOR UPDATE"),
                    &[&scan],
                )?
                .ok_or_else(|| Error::NotFound(format!("scan {scan}")))?;
            let s = scan_row(&r)?;
            if s.listed || s.is_final() {
                let what = if s.listed { "listed" } else { s.state.as_str() };
                return Err(Error::Conflict(format!("scan {scan} is {what} already")));
            }
            let (mut added, mut items) = (0i64, 0i64);
            for (i, j) in jobs.iter().enumerate() {
                let ordinal = first_ordinal + i as i64;
                let count = j.len() as i64;
                let json = items_json(j);
                let n = tx.execute(
                    "INSERT INTO scan_jobs (scan_id, ordinal, items, item_count) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (scan_id, ordinal) DO NOTHING",
                    &[&scan, &ordinal, &json, &count],
                )?;
                if n == 1 {
                    added += 1;
                    items += count;
                } else {
                    let r = tx.one(
                        "SELECT items FROM scan_jobs WHERE scan_id = $1 AND ordinal = $2",
                        &[&scan, &ordinal],
                    )?;
                    if col::<String>(&r, 0, "scan_jobs")? != json {
                        return Err(changed_source(ordinal));
                    }
                }
            }
            tx.execute(
                "UPDATE scans SET jobs = jobs + $2, items = items + $3 WHERE id = $1",
                &[&scan, &added, &items],
            )?;
            Ok(())
        })
    }

    fn finish_listing(&self, scan: ScanId, now: i64) -> Result<Scan> {
        self.write_unlocked(|tx| {
            let n = tx.execute(
                "UPDATE scans SET listed = TRUE, updated_at = $2 WHERE id = $1",
                &[&scan, &now],
            )?;
            if n == 0 {
                return Err(Error::NotFound(format!("scan {scan}")));
            }
            settle(tx, scan, now)
        })
    }

    fn claim_scan_job(&self, scan: ScanId, owner: &str, lease_ms: i64) -> Result<Claim> {
        self.write_async(|tx| {
            let s = must_scan(tx, scan)?;
            if s.is_final() {
                return Ok(Claim::Ended(s));
            }
            if s.state == state::PAUSED {
                return Ok(Claim::Wait);
            }
            let found = tx.opt(
                &format!(
                    "UPDATE scan_jobs SET lease_owner = $2, lease_until = {DB_LEASE_UNTIL}, \
                         attempts = attempts + 1 \
                     WHERE id = (SELECT id FROM scan_jobs \
                                 WHERE scan_id = $1 AND done_at IS NULL \
                                   AND (lease_until IS NULL OR lease_until < {DB_NOW_MS}) \
                                 ORDER BY ordinal LIMIT 1 FOR UPDATE SKIP LOCKED) \
                     RETURNING id, ordinal, items, attempts, lease_until"
                ),
                &[&scan, &owner, &lease_ms],
            )?;
            let Some(r) = found else {
                return Ok(Claim::Wait);
            };
            let items: String = col(&r, 2, "scan_jobs")?;
            Ok(Claim::Job(ScanJob {
                id: col(&r, 0, "scan_jobs")?,
                scan_id: scan,
                ordinal: col(&r, 1, "scan_jobs")?,
                items: items_from_json(&items)?,
                attempts: col(&r, 3, "scan_jobs")?,
                lease_until: col(&r, 4, "scan_jobs")?,
            }))
        })
    }

    fn renew_scan_job(&self, job: ScanJobId, owner: &str, lease_ms: i64) -> Result<bool> {
        self.write_async(|tx| {
            let n = tx.execute(
                &format!(
                    "UPDATE scan_jobs SET lease_until = {DB_LEASE_UNTIL} \
                     WHERE id = $1 AND lease_owner = $2 AND done_at IS NULL"
                ),
                &[&job, &owner, &lease_ms],
            )?;
            Ok(n == 1)
        })
    }

    fn release_scan_job(&self, job: ScanJobId, owner: &str) -> Result<bool> {
        self.write_async(|tx| {
            let n = tx.execute(
                "UPDATE scan_jobs SET lease_owner = NULL, lease_until = NULL, \
                     attempts = GREATEST(attempts - 1, 0) \
                 WHERE id = $1 AND lease_owner = $2 AND done_at IS NULL",
                &[&job, &owner],
            )?;
            Ok(n == 1)
        })
    }

    fn finish_scan_job(
        &self,
        job: ScanJobId,
        owner: &str,
        results: &[ItemResult],
        now: i64,
    ) -> Result<Scan> {
        self.write_async(|tx| {
            // The job's row lock orders two finishes of one job: the second sees it done.
            let r = tx
                .opt(
                    "SELECT scan_id, items, done_at FROM scan_jobs WHERE id = $1 FOR UPDATE",
                    &[&job],
                )?
                .ok_or_else(|| Error::NotFound(format!("scan job {job}")))?;
            let scan: i64 = col(&r, 0, "scan_jobs")?;
            let items: String = col(&r, 1, "scan_jobs")?;
            let done_at: Option<i64> = col(&r, 2, "scan_jobs")?;
            check_results(&items_from_json(&items)?, results)?;
            // One statement per chunk of rows, not a round trip per row; RETURNING names the
            // rows that were new, which alone are counted.
            let (mut done, mut failed, mut matched) = (0i64, 0i64, 0i64);
            for chunk in results.chunks(RESULT_ROWS_PER_INSERT) {
                let mut sql = String::from(
                    "INSERT INTO scan_results (scan_id, key, error, pdq, quality, md5, sha256, \
                     size, matched, verdict, submission, worker, recorded_at) VALUES ",
                );
                let mut params: Vec<Param<'_>> = vec![&scan, &owner, &now];
                for (i, x) in chunk.iter().enumerate() {
                    let b = 4 + i * 10;
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!(
                        "($1, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, $2, $3)",
                        b,
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7,
                        b + 8,
                        b + 9
                    ));
                    params.extend_from_slice(&[
                        &x.key as Param<'_>,
                        &x.error,
                        &x.pdq,
                        &x.quality,
                        &x.md5,
                        &x.sha256,
                        &x.size,
                        &x.matched,
                        &x.verdict,
                        &x.submission,
                    ]);
                }
                sql.push_str(" ON CONFLICT (scan_id, key) DO NOTHING RETURNING key");
                let new: HashSet<String> = tx
                    .query(&sql, &params)?
                    .iter()
                    .map(|r| col(r, 0, "scan_results"))
                    .collect::<Result<_>>()?;
                for x in chunk.iter().filter(|x| new.contains(&x.key)) {
                    done += 1;
                    failed += i64::from(x.error.is_some());
                    matched += i64::from(x.matched);
                }
            }
            if done_at.is_none() {
                tx.execute(
                    "UPDATE scan_jobs SET done_at = $2, lease_owner = NULL, lease_until = NULL \
                     WHERE id = $1",
                    &[&job, &now],
                )?;
            }
            let newly_done = i64::from(done_at.is_none());
            // A finish that recorded nothing (a late one) changes nothing, not even the time.
            if newly_done + done > 0 {
                tx.execute(
                    "UPDATE scans SET jobs_done = jobs_done + $2, items_done = items_done + $3, \
                         items_failed = items_failed + $4, items_matched = items_matched + $5, \
                         updated_at = $6 \
                     WHERE id = $1",
                    &[&scan, &newly_done, &done, &failed, &matched, &now],
                )?;
            }
            let after = settle(tx, scan, now)?;
            if after.state == state::DONE {
                // The finish that ends a scan waits for the flush: a crash must not leave a
                // scan whose workers all left believing it done.
                tx.batch("SET LOCAL synchronous_commit TO ON")?;
            }
            Ok(after)
        })
    }

    fn scan(&self, id: ScanId) -> Result<Option<Scan>> {
        self.read(|tx| get_scan(tx, id))
    }

    fn scans(&self, limit: usize) -> Result<Vec<Scan>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|tx| {
            tx.query(
                &format!("SELECT {SCAN_COLUMNS} FROM scans ORDER BY id DESC LIMIT $1"),
                &[&limit],
            )?
            .iter()
            .map(scan_row)
            .collect()
        })
    }

    fn set_scan_state(&self, id: ScanId, to: &str, now: i64) -> Result<Scan> {
        self.write_unlocked(|tx| {
            let r = tx
                .opt(
                    &format!("SELECT {SCAN_COLUMNS} FROM scans WHERE id = $1 FOR UPDATE"),
                    &[&id],
                )?
                .ok_or_else(|| Error::NotFound(format!("scan {id}")))?;
            let s = scan_row(&r)?;
            check_transition(&s.state, to)?;
            let finished = (to == state::CANCELLED).then_some(now);
            let r = tx.one(
                &format!(
                    "UPDATE scans SET state = $2, updated_at = $3, finished_at = $4 \
                     WHERE id = $1 RETURNING {SCAN_COLUMNS}"
                ),
                &[&id, &to, &now, &finished],
            )?;
            scan_row(&r)
        })
    }

    fn scan_results(
        &self,
        id: ScanId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredItemResult>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let after = after.unwrap_or("");
        self.read(|tx| {
            must_scan(tx, id)?;
            tx.query(
                "SELECT key, error, pdq, quality, md5, sha256, size, matched, verdict, \
                        submission, worker, recorded_at \
                 FROM scan_results WHERE scan_id = $1 AND key > $2 ORDER BY key LIMIT $3",
                &[&id, &after, &limit],
            )?
            .iter()
            .map(|r| {
                Ok(StoredItemResult {
                    result: ItemResult {
                        key: col(r, 0, "scan_results")?,
                        error: col(r, 1, "scan_results")?,
                        pdq: col(r, 2, "scan_results")?,
                        quality: col(r, 3, "scan_results")?,
                        md5: col(r, 4, "scan_results")?,
                        sha256: col(r, 5, "scan_results")?,
                        size: col(r, 6, "scan_results")?,
                        matched: col(r, 7, "scan_results")?,
                        verdict: col(r, 8, "scan_results")?,
                        submission: col(r, 9, "scan_results")?,
                    },
                    worker: col(r, 10, "scan_results")?,
                    recorded_at: col(r, 11, "scan_results")?,
                })
            })
            .collect()
        })
    }
}
