//! [`ReportStore`] on SQLite.

use rusqlite::{params, OptionalExtension, Row};

use super::row::db_err;
use super::SqliteStore;
use crate::action::CaseId;
use crate::report::*;
use crate::{Error, Result};

/// Filings with work left: not yet finished or retracted, or finished without the recorded
/// transcript (the steps after NCMEC's confirmation did not all run).
const UNFINISHED: &str =
    "phase NOT IN ('finished', 'retracted') OR (phase = 'finished' AND transcript IS NULL)";

const COLUMNS: &str = "id, case_id, destination, state, phase, report_id, last_error, \
     transcript, created_at, updated_at";

fn filing_row(r: &Row<'_>) -> Result<ReportFiling> {
    Ok(ReportFiling {
        id: r.get(0).map_err(db_err)?,
        case_id: r.get(1).map_err(db_err)?,
        destination: r.get(2).map_err(db_err)?,
        state: r.get(3).map_err(db_err)?,
        phase: r.get(4).map_err(db_err)?,
        report_id: r.get(5).map_err(db_err)?,
        last_error: r.get(6).map_err(db_err)?,
        transcript: r.get(7).map_err(db_err)?,
        created_at: r.get(8).map_err(db_err)?,
        updated_at: r.get(9).map_err(db_err)?,
    })
}

impl SqliteStore {
    fn filings_where(&self, clause: &str, p: &[&dyn rusqlite::ToSql]) -> Result<Vec<ReportFiling>> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM report_filings WHERE ({clause}) \
                     ORDER BY created_at, id"
                ))
                .map_err(db_err)?;
            let mut rows = stmt.query(p).map_err(db_err)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db_err)? {
                out.push(filing_row(r)?);
            }
            Ok(out)
        })
    }

    fn set_filing_column(
        &self,
        id: &str,
        column: &str,
        value: Option<&str>,
        at: i64,
    ) -> Result<()> {
        self.write(|tx| {
            let n = tx
                .execute(
                    &format!(
                        "UPDATE report_filings SET {column} = ?2, updated_at = ?3 WHERE id = ?1"
                    ),
                    params![id, value, at],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(Error::NotFound(format!("filing {id}")));
            }
            Ok(())
        })
    }
}

impl ReportStore for SqliteStore {
    fn put_filing_state(&self, f: &FilingRecord<'_>) -> Result<()> {
        self.write(|tx| {
            let existing: Option<(CaseId, String)> = tx
                .query_row(
                    "SELECT case_id, destination FROM report_filings WHERE id = ?1",
                    params![f.id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db_err)?;
            match existing {
                Some((case_id, destination)) => {
                    if case_id != f.case_id || destination != f.destination {
                        return Err(Error::Conflict(format!(
                            "filing {} belongs to case {case_id} ({destination})",
                            f.id
                        )));
                    }
                    tx.execute(
                        "UPDATE report_filings SET state = ?2, phase = ?3, report_id = ?4, \
                         updated_at = ?5 WHERE id = ?1",
                        params![f.id, f.state, f.phase, f.report_id, f.at],
                    )
                    .map_err(db_err)?;
                }
                None => {
                    tx.execute(
                        "INSERT INTO report_filings (id, case_id, destination, state, phase, \
                         report_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                        params![f.id, f.case_id, f.destination, f.state, f.phase, f.report_id, f.at],
                    )
                    .map_err(db_err)?;
                }
            }
            Ok(())
        })
    }

    fn create_filing(&self, f: &FilingRecord<'_>) -> Result<bool> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "INSERT INTO report_filings (id, case_id, destination, state, phase, \
                     report_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) \
                     ON CONFLICT (id) DO NOTHING",
                    params![
                        f.id,
                        f.case_id,
                        f.destination,
                        f.state,
                        f.phase,
                        f.report_id,
                        f.at
                    ],
                )
                .map_err(db_err)?;
            Ok(n == 1)
        })
    }

    fn set_filing_error(&self, id: &str, error: Option<&str>, at: i64) -> Result<()> {
        self.set_filing_column(id, "last_error", error, at)
    }

    fn set_filing_transcript(&self, id: &str, transcript: &str, at: i64) -> Result<()> {
        self.set_filing_column(id, "transcript", Some(transcript), at)
    }

    fn filing(&self, id: &str) -> Result<Option<ReportFiling>> {
        Ok(self.filings_where("id = ?1", &[&id])?.pop())
    }

    fn case_filings(&self, case_id: CaseId) -> Result<Vec<ReportFiling>> {
        self.filings_where("case_id = ?1", &[&case_id])
    }

    fn unfinished_filings(&self) -> Result<Vec<ReportFiling>> {
        self.filings_where(UNFINISHED, &[])
    }

    fn lease_filing(&self, id: &str, owner: &str, until: i64, now: i64) -> Result<bool> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE report_filings SET lease_owner = ?2, lease_until = ?3 \
                     WHERE id = ?1 AND (lease_until IS NULL OR lease_until <= ?4 \
                     OR lease_owner = ?2)",
                    params![id, owner, until, now],
                )
                .map_err(db_err)?;
            Ok(n == 1)
        })
    }

    fn release_filing(&self, id: &str, owner: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE report_filings SET lease_owner = NULL, lease_until = NULL \
                 WHERE id = ?1 AND lease_owner = ?2",
                params![id, owner],
            )
            .map_err(db_err)?;
            Ok(())
        })
    }

    fn take_lease(&self, name: &str, owner: &str, until: i64, now: i64) -> Result<bool> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "INSERT INTO leases (name, owner, until) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until \
                     WHERE leases.owner = excluded.owner OR leases.until <= ?4",
                    params![name, owner, until, now],
                )
                .map_err(db_err)?;
            Ok(n == 1)
        })
    }

    fn extend_lease(&self, name: &str, owner: &str, until: i64) -> Result<bool> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE leases SET until = ?3 WHERE name = ?1 AND owner = ?2",
                    params![name, owner, until],
                )
                .map_err(db_err)?;
            Ok(n == 1)
        })
    }

    fn give_up_lease(&self, name: &str, owner: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM leases WHERE name = ?1 AND owner = ?2",
                params![name, owner],
            )
            .map_err(db_err)?;
            Ok(())
        })
    }

    fn put_secret(&self, name: &str, sealed: &[u8], at: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO secrets (name, sealed, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, \
                 updated_at = excluded.updated_at",
                params![name, sealed, at],
            )
            .map_err(db_err)?;
            Ok(())
        })
    }

    fn secret(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.read(|tx| {
            tx.query_row(
                "SELECT sealed FROM secrets WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)
        })
    }
}
