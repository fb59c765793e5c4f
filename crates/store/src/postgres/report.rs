//! [`ReportStore`] on PostgreSQL, as on SQLite.

use tokio_postgres::Row;

use super::row::col;
use super::PostgresStore;
use crate::action::CaseId;
use crate::report::*;
use crate::{Error, Result};

/// Filings with work left: not yet finished or retracted, or finished without the recorded
/// transcript (the steps after NCMEC's confirmation did not all run).
const UNFINISHED: &str =
    "phase NOT IN ('finished', 'retracted') OR (phase = 'finished' AND transcript IS NULL)";

const T: &str = "report_filings";
const COLUMNS: &str = "id, case_id, destination, state, phase, report_id, last_error, \
     transcript, created_at, updated_at";

fn filing_row(r: &Row) -> Result<ReportFiling> {
    Ok(ReportFiling {
        id: col(r, 0, T)?,
        case_id: col(r, 1, T)?,
        destination: col(r, 2, T)?,
        state: col(r, 3, T)?,
        phase: col(r, 4, T)?,
        report_id: col(r, 5, T)?,
        last_error: col(r, 6, T)?,
        transcript: col(r, 7, T)?,
        created_at: col(r, 8, T)?,
        updated_at: col(r, 9, T)?,
    })
}

impl PostgresStore {
    fn set_filing_column(
        &self,
        id: &str,
        column: &str,
        value: Option<&str>,
        at: i64,
    ) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                &format!("UPDATE report_filings SET {column} = $2, updated_at = $3 WHERE id = $1"),
                &[&id, &value, &at],
            )?;
            if n == 0 {
                return Err(Error::NotFound(format!("filing {id}")));
            }
            Ok(())
        })
    }
}

impl ReportStore for PostgresStore {
    fn put_filing_state(&self, f: &FilingRecord<'_>) -> Result<()> {
        self.write(|tx| {
            let existing = tx.opt(
                "SELECT case_id, destination FROM report_filings WHERE id = $1",
                &[&f.id],
            )?;
            match existing {
                Some(r) => {
                    let case_id: CaseId = col(&r, 0, T)?;
                    let destination: String = col(&r, 1, T)?;
                    if case_id != f.case_id || destination != f.destination {
                        return Err(Error::Conflict(format!(
                            "filing {} belongs to case {case_id} ({destination})",
                            f.id
                        )));
                    }
                    tx.execute(
                        "UPDATE report_filings SET state = $2, phase = $3, report_id = $4, \
                         updated_at = $5 WHERE id = $1",
                        &[&f.id, &f.state, &f.phase, &f.report_id, &f.at],
                    )?;
                }
                None => {
                    tx.execute(
                        "INSERT INTO report_filings (id, case_id, destination, state, phase, \
                         report_id, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                        &[
                            &f.id,
                            &f.case_id,
                            &f.destination,
                            &f.state,
                            &f.phase,
                            &f.report_id,
                            &f.at,
                        ],
                    )?;
                }
            }
            Ok(())
        })
    }

    fn create_filing(&self, f: &FilingRecord<'_>) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "INSERT INTO report_filings (id, case_id, destination, state, phase, \
                 report_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &f.id,
                    &f.case_id,
                    &f.destination,
                    &f.state,
                    &f.phase,
                    &f.report_id,
                    &f.at,
                ],
            )?;
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
        self.read(|tx| {
            tx.opt(
                &format!("SELECT {COLUMNS} FROM report_filings WHERE id = $1"),
                &[&id],
            )?
            .as_ref()
            .map(filing_row)
            .transpose()
        })
    }

    fn case_filings(&self, case_id: CaseId) -> Result<Vec<ReportFiling>> {
        self.read(|tx| {
            tx.query(
                &format!(
                    "SELECT {COLUMNS} FROM report_filings WHERE case_id = $1 \
                     ORDER BY created_at, id"
                ),
                &[&case_id],
            )?
            .iter()
            .map(filing_row)
            .collect()
        })
    }

    fn unfinished_filings(&self) -> Result<Vec<ReportFiling>> {
        self.read(|tx| {
            tx.query(
                &format!(
                    "SELECT {COLUMNS} FROM report_filings \
                     WHERE {UNFINISHED} ORDER BY created_at, id"
                ),
                &[],
            )?
            .iter()
            .map(filing_row)
            .collect()
        })
    }

    fn lease_filing(&self, id: &str, owner: &str, until: i64, now: i64) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE report_filings SET lease_owner = $2, lease_until = $3 \
                 WHERE id = $1 AND (lease_until IS NULL OR lease_until <= $4 \
                 OR lease_owner = $2)",
                &[&id, &owner, &until, &now],
            )?;
            Ok(n == 1)
        })
    }

    fn release_filing(&self, id: &str, owner: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE report_filings SET lease_owner = NULL, lease_until = NULL \
                 WHERE id = $1 AND lease_owner = $2",
                &[&id, &owner],
            )?;
            Ok(())
        })
    }

    fn take_lease(&self, name: &str, owner: &str, until: i64, now: i64) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "INSERT INTO leases (name, owner, until) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, until = EXCLUDED.until \
                 WHERE leases.owner = EXCLUDED.owner OR leases.until <= $4",
                &[&name, &owner, &until, &now],
            )?;
            Ok(n == 1)
        })
    }

    fn extend_lease(&self, name: &str, owner: &str, until: i64) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE leases SET until = $3 WHERE name = $1 AND owner = $2",
                &[&name, &owner, &until],
            )?;
            Ok(n == 1)
        })
    }

    fn give_up_lease(&self, name: &str, owner: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM leases WHERE name = $1 AND owner = $2",
                &[&name, &owner],
            )?;
            Ok(())
        })
    }

    fn put_secret(&self, name: &str, sealed: &[u8], at: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO secrets (name, sealed, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, \
                 updated_at = excluded.updated_at",
                &[&name, &sealed, &at],
            )?;
            Ok(())
        })
    }

    fn secret(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.read(|tx| {
            tx.opt("SELECT sealed FROM secrets WHERE name = $1", &[&name])?
                .as_ref()
                .map(|r| col(r, 0, "secrets"))
                .transpose()
        })
    }
}
