//! The PostgreSQL schema and its forward migrations.
//!
//! Each migration is an SQL file under `migrations/`, embedded in the binary. The
//! `schema_migrations` table records each one applied (version, name, when). Opening a store
//! applies the missing ones in order, in ONE transaction that holds an advisory lock
//! ([`MIGRATE_LOCK_KEY`]), so several processes starting at once on one database migrate it
//! exactly once and the others wait, then find nothing to do. Migrations only ever append: a
//! released file is never edited, because databases in the field already ran it.

use super::row::col;
use super::{PostgresStore, Tx};
use crate::{Error, Result};

/// Migration `i` (from 0) takes the database from version `i` to `i + 1`: (name, SQL).
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    (
        "banks_feed_keys_sources",
        include_str!("migrations/0001_banks_feed_keys_sources.sql"),
    ),
    ("actions", include_str!("migrations/0002_actions.sql")),
    ("accounts", include_str!("migrations/0003_accounts.sql")),
    ("figures", include_str!("migrations/0004_figures.sql")),
    ("audit", include_str!("migrations/0005_audit.sql")),
    ("reports", include_str!("migrations/0006_reports.sql")),
    ("console", include_str!("migrations/0007_console.sql")),
    (
        "source_feedback",
        include_str!("migrations/0008_source_feedback.sql"),
    ),
    (
        "filing_leases",
        include_str!("migrations/0009_filing_leases.sql"),
    ),
    (
        "feed_pruning",
        include_str!("migrations/0010_feed_pruning.sql"),
    ),
    (
        "bulk_rows_without_row_triggers",
        include_str!("migrations/0011_bulk_rows_without_row_triggers.sql"),
    ),
    (
        "feed_ranges",
        include_str!("migrations/0012_feed_ranges.sql"),
    ),
    ("scans", include_str!("migrations/0013_scans.sql")),
    ("leases", include_str!("migrations/0014_leases.sql")),
    (
        "evidence_blob_deleted",
        include_str!("migrations/0015_evidence_blob_deleted.sql"),
    ),
    (
        "source_feedback_digest_key",
        include_str!("migrations/0016_source_feedback_digest_key.sql"),
    ),
];

/// The advisory lock held while migrating: `b"SGMIGRATE"` folded into an i64.
const MIGRATE_LOCK_KEY: i64 = 0x5347_4d49_4752_4154;

/// The schema version this build writes.
pub(crate) fn current_version() -> i64 {
    // A handful of embedded files cannot approach i64::MAX entries.
    i64::try_from(MIGRATIONS.len()).expect("migration count fits in i64")
}

/// Brings the database up to `target` (tests stop early to build an older database).
/// Refuses a database from a newer build, and a database that holds tables but no record of
/// our migrations (not ours: migrating it could clobber someone else's data).
pub(crate) fn migrate_to(store: &PostgresStore, target: i64) -> Result<()> {
    let mut tx = Tx::open(store, "BEGIN")?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK_KEY])?;
    let r = tx.one(
        "SELECT count(*) FROM pg_catalog.pg_tables \
         WHERE schemaname = current_schema() AND tablename <> 'schema_migrations'",
        &[],
    )?;
    let foreign_tables: i64 = col(&r, 0, "pg_tables")?;
    tx.batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version     BIGINT PRIMARY KEY,
             name        TEXT   NOT NULL,
             applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )?;
    let r = tx.one(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        &[],
    )?;
    let version: i64 = col(&r, 0, "schema_migrations")?;
    let known = current_version();
    if version > known {
        return Err(Error::Corrupt(format!(
            "database schema version {version} is newer than this build knows ({known}); \
             run a newer Safeguard"
        )));
    }
    if version == 0 && foreign_tables != 0 {
        return Err(Error::Corrupt(
            "not a Safeguard database (it holds other tables and no schema_migrations record)"
                .into(),
        ));
    }
    for v in version..target.min(known) {
        // `v` is in 0..known here, so the index is in range.
        let (name, sql) = MIGRATIONS[v as usize];
        tx.batch(sql)
            .map_err(|e| Error::Backend(format!("migration {} ({name}): {e}", v + 1)))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&(v + 1), &name],
        )?;
    }
    tx.batch("COMMIT")?;
    tx.open = false;
    Ok(())
}
