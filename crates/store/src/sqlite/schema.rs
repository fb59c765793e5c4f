//! The on-disk schema and its forward migrations.
//!
//! `PRAGMA user_version` holds the number of migrations applied; `PRAGMA application_id` marks
//! the file as ours so a stray SQLite file given as the data path is refused rather than
//! migrated. Migrations only ever append: a released entry of [`MIGRATIONS`] is never edited,
//! because databases in the field already ran it.

use rusqlite::{Connection, TransactionBehavior};

use super::row::db_err;
use crate::{Error, Result};

/// Marks a SQLite file as a Safeguard store (`b"SGST"` as a big-endian integer).
pub(crate) const APPLICATION_ID: i32 = 0x5347_5354;

/// Migration `i` takes a database from version `i` to `i + 1`.
///
/// Notes on version 1:
/// - Every table uses `AUTOINCREMENT` so ids are never reused after a delete: content and
///   signal ids leave the process (match results, the indexes, HMA clients), and a reused id
///   would silently point an old reference at new content.
/// - `signals.bank_id` duplicates `contents.bank_id` (a content item never changes bank) so
///   that a startup scan of every signal reads one table in rowid order, with no join.
/// - `changes` has no foreign keys on purpose: a `removed` row must outlive the signal,
///   content and bank it describes.
/// - `STRICT` tables make SQLite refuse a value of the wrong type instead of storing it, so a
///   bug cannot write a row that later reads back as `Corrupt`.
pub(crate) const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE banks (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT    NOT NULL UNIQUE,
    enabled        INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    enabled_ratio  REAL    NOT NULL,
    pdq_threshold  INTEGER NOT NULL CHECK (pdq_threshold BETWEEN 0 AND 4294967295),
    kind           TEXT    NOT NULL CHECK (kind IN ('standard', 'allow_list')),
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE contents (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    bank_id             INTEGER NOT NULL REFERENCES banks (id) ON DELETE CASCADE,
    metadata            TEXT,
    note                TEXT,
    disable_until_ts    INTEGER NOT NULL,
    original_media_uri  TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;
-- Paging a bank's content, and the cascade when a bank is deleted.
CREATE INDEX contents_by_bank ON contents (bank_id);
-- The matcher loads disabled items at startup; they are few, so a partial index keeps it cheap.
CREATE INDEX contents_disabled ON contents (id, disable_until_ts) WHERE disable_until_ts <> 0;

CREATE TABLE signals (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    content_id   INTEGER NOT NULL REFERENCES contents (id) ON DELETE CASCADE,
    bank_id      INTEGER NOT NULL,
    signal_type  TEXT    NOT NULL,
    value        TEXT    NOT NULL,
    UNIQUE (content_id, signal_type)
) STRICT;
-- Exact lookups by value (imports that deduplicate, operators' queries).
CREATE INDEX signals_by_value ON signals (signal_type, value);

CREATE TABLE changes (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT    NOT NULL CHECK (kind IN ('added', 'removed', 'updated')),
    bank_id      INTEGER NOT NULL,
    content_id   INTEGER,
    signal_id    INTEGER,
    signal_type  TEXT,
    value        TEXT,
    at           INTEGER NOT NULL,
    CHECK (kind = 'updated' OR (content_id IS NOT NULL AND signal_id IS NOT NULL
                                AND signal_type IS NOT NULL AND value IS NOT NULL))
) STRICT;

CREATE TABLE api_keys (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id         TEXT    NOT NULL UNIQUE,
    name           TEXT    NOT NULL,
    secret_sha256  TEXT    NOT NULL,
    scopes         TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER
) STRICT;
"#];

/// The schema version this build writes.
pub(crate) fn current_version() -> i64 {
    // A slice of a handful of SQL strings cannot approach i64::MAX entries.
    i64::try_from(MIGRATIONS.len()).expect("migration count fits in i64")
}

/// Brings the database up to [`current_version`], in one transaction. Refuses a database from
/// a newer build (it may have columns or meanings this build would silently break) and a
/// SQLite file that is not ours.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db_err)?;
    let app_id: i32 = tx
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(db_err)?;
    let known = current_version();
    if version > known {
        return Err(Error::Corrupt(format!(
            "database schema version {version} is newer than this build knows ({known}); \
             run a newer Safeguard"
        )));
    }
    if version == 0 {
        let objects: i64 = tx
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'",
                [],
                |r| r.get(0),
            )
            .map_err(db_err)?;
        if objects != 0 || app_id != 0 {
            return Err(Error::Corrupt(
                "not a Safeguard database (SQLite file with foreign tables)".into(),
            ));
        }
    } else if app_id != APPLICATION_ID {
        return Err(Error::Corrupt(format!(
            "not a Safeguard database (application_id {app_id:#x})"
        )));
    }
    // `version` is in 0..=known here, so the cast cannot truncate.
    for sql in &MIGRATIONS[version as usize..] {
        tx.execute_batch(sql).map_err(db_err)?;
    }
    if version < known {
        // PRAGMA takes no bound parameters; both values are constants of this build.
        tx.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {known};"
        ))
        .map_err(db_err)?;
    }
    tx.commit().map_err(db_err)
}
