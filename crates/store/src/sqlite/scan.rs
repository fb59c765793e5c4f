//! [`ScanStore`] on SQLite. One writer at a time, so a claim is a plain read-then-update in
//! the write transaction. Claims, renewals and finishes commit without waiting for the disk
//! (see [`ScanStore`]: losing them to a power cut only means redoing jobs).

use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::row::{col, db_err};
use super::{now_ms, SqliteStore};
use crate::scan::*;
use crate::{Error, Result};

const SCAN_COLUMNS: &str = "id, source, target, job_size, state, listed, jobs, jobs_done, items, \
     items_done, items_failed, items_matched, created_by, created_at, updated_at, finished_at";

fn scan_row(r: &Row<'_>) -> Result<Scan> {
    Ok(Scan {
        id: col(r, 0, "scans")?,
        source: col(r, 1, "scans")?,
        target: col(r, 2, "scans")?,
        job_size: col(r, 3, "scans")?,
        state: col(r, 4, "scans")?,
        listed: col::<i64>(r, 5, "scans")? != 0,
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

fn get_scan(tx: &Transaction<'_>, id: ScanId) -> Result<Option<Scan>> {
    let mut st = tx
        .prepare_cached(&format!("SELECT {SCAN_COLUMNS} FROM scans WHERE id = ?1"))
        .map_err(db_err)?;
    let mut rows = st.query([id]).map_err(db_err)?;
    match rows.next().map_err(db_err)? {
        Some(r) => scan_row(r).map(Some),
        None => Ok(None),
    }
}

fn must_scan(tx: &Transaction<'_>, id: ScanId) -> Result<Scan> {
    get_scan(tx, id)?.ok_or_else(|| Error::NotFound(format!("scan {id}")))
}

/// Marks a listed scan with every job done as done.
fn settle(tx: &Transaction<'_>, id: ScanId, now: i64) -> Result<()> {
    tx.execute(
        "UPDATE scans SET state = 'done', finished_at = ?2, updated_at = ?2
         WHERE id = ?1 AND listed = 1 AND jobs_done = jobs AND state IN ('running', 'paused')",
        params![id, now],
    )
    .map_err(db_err)?;
    Ok(())
}

impl ScanStore for SqliteStore {
    fn create_scan(&self, s: &NewScan) -> Result<Scan> {
        check_new_scan(s)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO scans (source, target, job_size, state, created_by, created_at,
                                    updated_at)
                 VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?5)",
                params![s.source, s.target, s.job_size, s.created_by, s.created_at],
            )
            .map_err(db_err)?;
            must_scan(tx, tx.last_insert_rowid())
        })
    }

    fn add_scan_jobs(&self, scan: ScanId, first_ordinal: i64, jobs: &[Vec<String>]) -> Result<()> {
        for j in jobs {
            check_job(j)?;
        }
        self.write(|tx| {
            let s = must_scan(tx, scan)?;
            if s.listed || s.is_final() {
                let what = if s.listed { "listed" } else { s.state.as_str() };
                return Err(Error::Conflict(format!("scan {scan} is {what} already")));
            }
            let (mut added, mut items) = (0i64, 0i64);
            {
                let mut st = tx
                    .prepare_cached(
                        "INSERT INTO scan_jobs (scan_id, ordinal, items, item_count)
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (scan_id, ordinal) DO NOTHING",
                    )
                    .map_err(db_err)?;
                for (i, j) in jobs.iter().enumerate() {
                    let ordinal = first_ordinal + i as i64;
                    let json = items_json(j);
                    let n = st
                        .execute(params![scan, ordinal, json, j.len() as i64])
                        .map_err(db_err)?;
                    if n == 1 {
                        added += 1;
                        items += j.len() as i64;
                    } else {
                        let stored: String = tx
                            .query_row(
                                "SELECT items FROM scan_jobs WHERE scan_id = ?1 AND ordinal = ?2",
                                params![scan, ordinal],
                                |r| r.get(0),
                            )
                            .map_err(db_err)?;
                        if stored != json {
                            return Err(changed_source(ordinal));
                        }
                    }
                }
            }
            tx.execute(
                "UPDATE scans SET jobs = jobs + ?2, items = items + ?3 WHERE id = ?1",
                params![scan, added, items],
            )
            .map_err(db_err)?;
            Ok(())
        })
    }

    fn finish_listing(&self, scan: ScanId, now: i64) -> Result<Scan> {
        self.write(|tx| {
            must_scan(tx, scan)?;
            tx.execute(
                "UPDATE scans SET listed = 1, updated_at = ?2 WHERE id = ?1",
                params![scan, now],
            )
            .map_err(db_err)?;
            settle(tx, scan, now)?;
            must_scan(tx, scan)
        })
    }

    fn claim_scan_job(&self, scan: ScanId, owner: &str, lease_ms: i64) -> Result<Claim> {
        self.write_unsynced(|tx| {
            let now = now_ms();
            let lease_until = now.saturating_add(lease_ms);
            let s = must_scan(tx, scan)?;
            if s.is_final() {
                return Ok(Claim::Ended(s));
            }
            if s.state == state::PAUSED {
                return Ok(Claim::Wait);
            }
            let found = tx
                .query_row(
                    "SELECT id, ordinal, items, attempts FROM scan_jobs
                     WHERE scan_id = ?1 AND done_at IS NULL
                       AND (lease_until IS NULL OR lease_until < ?2)
                     ORDER BY ordinal LIMIT 1",
                    params![scan, now],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    },
                )
                .optional()
                .map_err(db_err)?;
            let Some((id, ordinal, items, attempts)) = found else {
                return Ok(Claim::Wait);
            };
            tx.execute(
                "UPDATE scan_jobs SET lease_owner = ?2, lease_until = ?3, attempts = attempts + 1
                 WHERE id = ?1",
                params![id, owner, lease_until],
            )
            .map_err(db_err)?;
            Ok(Claim::Job(ScanJob {
                id,
                scan_id: scan,
                ordinal,
                items: items_from_json(&items)?,
                attempts: attempts + 1,
                lease_until,
            }))
        })
    }

    fn renew_scan_job(&self, job: ScanJobId, owner: &str, lease_ms: i64) -> Result<bool> {
        self.write_unsynced(|tx| {
            let lease_until = now_ms().saturating_add(lease_ms);
            let n = tx
                .execute(
                    "UPDATE scan_jobs SET lease_until = ?3
                     WHERE id = ?1 AND lease_owner = ?2 AND done_at IS NULL",
                    params![job, owner, lease_until],
                )
                .map_err(db_err)?;
            Ok(n == 1)
        })
    }

    fn release_scan_job(&self, job: ScanJobId, owner: &str) -> Result<bool> {
        self.write_unsynced(|tx| {
            let n = tx
                .execute(
                    "UPDATE scan_jobs SET lease_owner = NULL, lease_until = NULL,
                         attempts = MAX(attempts - 1, 0)
                     WHERE id = ?1 AND lease_owner = ?2 AND done_at IS NULL",
                    params![job, owner],
                )
                .map_err(db_err)?;
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
        let after = self.write_unsynced(|tx| {
            let (scan, items, done_at): (i64, String, Option<i64>) = tx
                .query_row(
                    "SELECT scan_id, items, done_at FROM scan_jobs WHERE id = ?1",
                    [job],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(db_err)?
                .ok_or_else(|| Error::NotFound(format!("scan job {job}")))?;
            check_results(&items_from_json(&items)?, results)?;
            let (mut done, mut failed, mut matched) = (0i64, 0i64, 0i64);
            {
                let mut st = tx
                    .prepare_cached(
                        "INSERT INTO scan_results (scan_id, key, error, pdq, quality, md5,
                             sha256, size, matched, verdict, submission, worker, recorded_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                         ON CONFLICT (scan_id, key) DO NOTHING",
                    )
                    .map_err(db_err)?;
                for r in results {
                    let n = st
                        .execute(params![
                            scan,
                            r.key,
                            r.error,
                            r.pdq,
                            r.quality,
                            r.md5,
                            r.sha256,
                            r.size,
                            r.matched as i64,
                            r.verdict,
                            r.submission,
                            owner,
                            now
                        ])
                        .map_err(db_err)?;
                    if n == 1 {
                        done += 1;
                        failed += r.error.is_some() as i64;
                        matched += r.matched as i64;
                    }
                }
            }
            let newly_done = done_at.is_none() as i64;
            if done_at.is_none() {
                tx.execute(
                    "UPDATE scan_jobs SET done_at = ?2, lease_owner = NULL, lease_until = NULL
                     WHERE id = ?1",
                    params![job, now],
                )
                .map_err(db_err)?;
            }
            // A finish that recorded nothing (a late one) changes nothing, not even the time.
            if newly_done + done > 0 {
                tx.execute(
                    "UPDATE scans SET jobs_done = jobs_done + ?2, items_done = items_done + ?3,
                         items_failed = items_failed + ?4, items_matched = items_matched + ?5,
                         updated_at = ?6
                     WHERE id = ?1",
                    params![scan, newly_done, done, failed, matched, now],
                )
                .map_err(db_err)?;
            }
            settle(tx, scan, now)?;
            must_scan(tx, scan)
        })?;
        if after.state == state::DONE {
            // The finish that ends a scan is made durable: a power cut must not leave a scan
            // whose workers all left believing it done. A durable commit syncs the WAL, the
            // unsynced commits before it included.
            self.write(|tx| {
                tx.execute(
                    "UPDATE scans SET updated_at = updated_at WHERE id = ?1",
                    [after.id],
                )
                .map_err(db_err)?;
                Ok(())
            })?;
        }
        Ok(after)
    }

    fn scan(&self, id: ScanId) -> Result<Option<Scan>> {
        self.read(|tx| get_scan(tx, id))
    }

    fn scans(&self, limit: usize) -> Result<Vec<Scan>> {
        self.read(|tx| {
            let mut st = tx
                .prepare_cached(&format!(
                    "SELECT {SCAN_COLUMNS} FROM scans ORDER BY id DESC LIMIT ?1"
                ))
                .map_err(db_err)?;
            let mut rows = st
                .query([i64::try_from(limit).unwrap_or(i64::MAX)])
                .map_err(db_err)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db_err)? {
                out.push(scan_row(r)?);
            }
            Ok(out)
        })
    }

    fn set_scan_state(&self, id: ScanId, to: &str, now: i64) -> Result<Scan> {
        self.write(|tx| {
            let s = must_scan(tx, id)?;
            check_transition(&s.state, to)?;
            let finished = (to == state::CANCELLED).then_some(now);
            tx.execute(
                "UPDATE scans SET state = ?2, updated_at = ?3, finished_at = ?4 WHERE id = ?1",
                params![id, to, now, finished],
            )
            .map_err(db_err)?;
            must_scan(tx, id)
        })
    }

    fn scan_results(
        &self,
        id: ScanId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredItemResult>> {
        self.read(|tx| {
            must_scan(tx, id)?;
            let mut st = tx
                .prepare_cached(
                    "SELECT key, error, pdq, quality, md5, sha256, size, matched, verdict,
                            submission, worker, recorded_at
                     FROM scan_results WHERE scan_id = ?1 AND key > ?2 ORDER BY key LIMIT ?3",
                )
                .map_err(db_err)?;
            let mut rows = st
                .query(params![
                    id,
                    after.unwrap_or(""),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ])
                .map_err(db_err)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db_err)? {
                out.push(StoredItemResult {
                    result: ItemResult {
                        key: col(r, 0, "scan_results")?,
                        error: col(r, 1, "scan_results")?,
                        pdq: col(r, 2, "scan_results")?,
                        quality: col(r, 3, "scan_results")?,
                        md5: col(r, 4, "scan_results")?,
                        sha256: col(r, 5, "scan_results")?,
                        size: col(r, 6, "scan_results")?,
                        matched: col::<i64>(r, 7, "scan_results")? != 0,
                        verdict: col(r, 8, "scan_results")?,
                        submission: col(r, 9, "scan_results")?,
                    },
                    worker: col(r, 10, "scan_results")?,
                    recorded_at: col(r, 11, "scan_results")?,
                });
            }
            Ok(out)
        })
    }
}
