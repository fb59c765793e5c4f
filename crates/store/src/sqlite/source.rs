//! Hash-list sources on SQLite: staged set-based imports, provenance and exchange state.
//!
//! An import first streams every entry into a TEMP table (sequential appends, no index), then
//! applies the whole batch with a handful of set-based statements that walk the staged
//! entries in (signal type, value) order. Walking in key order turns the random B-tree
//! inserts and lookups of a row-at-a-time import into near-sequential ones (each index page is
//! visited once per import instead of once per hash), and SQLite's external sorter keeps the
//! memory bounded whatever the import's size. New signals get consecutive ids and one
//! `added_range` feed row. Everything runs in the caller's single transaction.

use rusqlite::{params, Connection, OptionalExtension, Statement};

use super::row::{self, db_err};
use super::{last_seq_in, now_ms, require_bank};
use crate::{
    BankId, BatchOutcome, DiffOutcome, DiffSide, Error, ExchangeState, Provenance, Result, Signal,
    SourceEntry, SourceImport, SourceRemoval, SourceSink,
};

/// Temp tables of one import, created inside its transaction (so a rollback removes them) and
/// dropped before it commits.
const STAGE_SQL: &str = "
CREATE TEMP TABLE stage (
    n               INTEGER PRIMARY KEY,
    signal_type     TEXT NOT NULL,
    value           TEXT NOT NULL,
    source_id       TEXT,
    classification  TEXT,
    metadata        TEXT
);
CREATE TEMP TABLE unstage (signal_type TEXT NOT NULL, value TEXT NOT NULL);
CREATE TEMP TABLE unstage_ids (source_id TEXT NOT NULL);
";

const UNSTAGE_SQL: &str = "
DROP TABLE IF EXISTS temp.stage;
DROP TABLE IF EXISTS temp.unstage;
DROP TABLE IF EXISTS temp.unstage_ids;
DROP TABLE IF EXISTS temp.uniq;
DROP TABLE IF EXISTS temp.fresh;
DROP TABLE IF EXISTS temp.gone;
DROP TABLE IF EXISTS temp.doomed;
";

/// The sink that appends pushed entries to the temp tables.
struct Stager<'c> {
    upsert: Statement<'c>,
    remove: Statement<'c>,
    remove_id: Statement<'c>,
    upserts: u64,
    removals: u64,
}

impl SourceSink for Stager<'_> {
    fn upsert(&mut self, e: &SourceEntry) -> Result<()> {
        self.upsert
            .execute(params![
                e.signal_type,
                e.value,
                e.source_id,
                e.classification,
                e.metadata
            ])
            .map_err(db_err)?;
        self.upserts += 1;
        Ok(())
    }

    fn remove(&mut self, r: &SourceRemoval) -> Result<()> {
        self.remove
            .execute(params![r.signal_type, r.value])
            .map_err(db_err)?;
        self.removals += 1;
        Ok(())
    }

    fn remove_source_id(&mut self, source_id: &str) -> Result<()> {
        self.remove_id.execute([source_id]).map_err(db_err)?;
        self.removals += 1;
        Ok(())
    }
}

/// Creates the temp tables and runs `feed` into them. Returns (upserts, removals) staged.
fn stage(
    tx: &Connection,
    feed: &mut dyn FnMut(&mut dyn SourceSink) -> Result<()>,
) -> Result<(u64, u64)> {
    // Left over only if an earlier transaction on this connection failed between creating
    // and dropping them and was then committed by nobody: a rollback already removed them.
    tx.execute_batch(UNSTAGE_SQL).map_err(db_err)?;
    tx.execute_batch(STAGE_SQL).map_err(db_err)?;
    let mut stager = Stager {
        upsert: tx
            .prepare(
                "INSERT INTO temp.stage (signal_type, value, source_id, classification, \
                 metadata) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(db_err)?,
        remove: tx
            .prepare("INSERT INTO temp.unstage (signal_type, value) VALUES (?1, ?2)")
            .map_err(db_err)?,
        remove_id: tx
            .prepare("INSERT INTO temp.unstage_ids (source_id) VALUES (?1)")
            .map_err(db_err)?,
        upserts: 0,
        removals: 0,
    };
    feed(&mut stager)?;
    Ok((stager.upserts, stager.removals))
}

/// One row per staged hash (the last entry wins), in key order, with whether the bank holds
/// it: answered from the covering `signals_by_value` index alone.
const PRESENT_SQL: &str = "
INSERT INTO temp.uniq (signal_type, value, n, source_id, classification, metadata, present)
SELECT st.signal_type, st.value, max(st.n), st.source_id, st.classification, st.metadata,
       EXISTS (SELECT 1 FROM main.signals s WHERE s.signal_type = st.signal_type
               AND s.value = st.value AND s.bank_id = ?1)
FROM temp.stage st GROUP BY st.signal_type, st.value ORDER BY st.signal_type, st.value";

/// The source's hashes listed under the staged source ids. `source_id IS NOT NULL` lets
/// SQLite use the partial index; without it every id would scan the bank's records.
const BY_SOURCE_ID_SQL: &str = "
INSERT OR IGNORE INTO temp.gone (signal_type, value)
SELECT p.signal_type, p.value FROM temp.unstage_ids i CROSS JOIN provenance p
    ON p.bank_id = ?1 AND p.source = ?2 AND p.source_id = i.source_id
WHERE p.source_id IS NOT NULL";

/// Marks the source's active records of the `gone` hashes withdrawn, one primary-key lookup
/// per hash.
const WITHDRAW_SQL: &str = "
UPDATE provenance SET withdrawn_at = ?3 FROM temp.gone g
WHERE provenance.bank_id = ?1 AND provenance.signal_type = g.signal_type
  AND provenance.value = g.value AND provenance.source = ?2
  AND provenance.withdrawn_at IS NULL";

/// Keeps in `gone` only hashes no source lists any more.
const STILL_LISTED_SQL: &str = "
DELETE FROM temp.gone WHERE EXISTS (SELECT 1 FROM provenance p
    WHERE p.bank_id = ?1 AND p.signal_type = gone.signal_type AND p.value = gone.value
      AND p.withdrawn_at IS NULL)";

/// The bank's signals of the `gone` hashes. CROSS JOIN fixes the loop order (SQLite never
/// reorders it): `gone` outside, index lookups into `signals` inside.
const DOOMED_SQL: &str = "
INSERT INTO temp.doomed (id, content_id)
SELECT s.id, s.content_id FROM temp.gone g CROSS JOIN signals s
    ON s.signal_type = g.signal_type AND s.value = g.value
WHERE s.bank_id = ?1";

/// Collapses the staged upserts to one row per hash (the last one wins, as a later record of
/// a source replaces an earlier one), in key order, each marked with whether the bank already
/// holds the hash. Returns the number of distinct hashes.
fn collapse(tx: &Connection, bank_id: BankId) -> Result<u64> {
    tx.execute_batch(
        "CREATE TEMP TABLE uniq (
            k               INTEGER PRIMARY KEY,
            signal_type     TEXT NOT NULL,
            value           TEXT NOT NULL,
            n               INTEGER NOT NULL,
            source_id       TEXT,
            classification  TEXT,
            metadata        TEXT,
            present         INTEGER NOT NULL
        );",
    )
    .map_err(db_err)?;
    // SQLite takes the bare columns of an aggregate query with one max() from the row holding
    // the maximum: the last entry of each hash.
    let n = tx.execute(PRESENT_SQL, [bank_id]).map_err(db_err)?;
    Ok(n as u64)
}

/// The value `sqlite_sequence` holds for `table` (0 before its first insert).
fn sequence_of(tx: &Connection, table: &str) -> Result<i64> {
    tx.prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = ?1")
        .and_then(|mut s| s.query_row([table], |r| r.get::<_, i64>(0)).optional())
        .map(|v| v.unwrap_or(0))
        .map_err(db_err)
}

fn count(tx: &Connection, sql: &str) -> Result<u64> {
    let n: i64 = tx.query_row(sql, [], |r| r.get(0)).map_err(db_err)?;
    u64::try_from(n).map_err(|_| Error::Corrupt(format!("negative count from {sql}")))
}

/// Inserts a content item and a signal for every collapsed hash the bank does not hold, with
/// consecutive ids, and one `added_range` feed row for them all. Returns how many.
fn insert_fresh(tx: &Connection, bank_id: BankId, now: i64) -> Result<u64> {
    tx.execute_batch(
        "CREATE TEMP TABLE fresh (k INTEGER PRIMARY KEY, u INTEGER NOT NULL);
         INSERT INTO temp.fresh (u) SELECT k FROM temp.uniq WHERE present = 0 ORDER BY k;",
    )
    .map_err(db_err)?;
    let m = count(tx, "SELECT count(*) FROM temp.fresh")?;
    if m == 0 {
        return Ok(0);
    }
    // The writer holds the database lock for the whole transaction, so nobody else can take
    // ids between reading the sequences and inserting: explicit ids base+1..=base+m are the
    // ones AUTOINCREMENT would have handed out, and SQLite moves the sequences past them.
    let content_base = sequence_of(tx, "contents")?;
    let signal_base = sequence_of(tx, "signals")?;
    tx.execute(
        "INSERT INTO contents (id, bank_id, metadata, note, disable_until_ts, \
         original_media_uri, created_at, updated_at)
         SELECT ?1 + f.k, ?2, u.metadata, NULL, 0, NULL, ?3, ?3
         FROM temp.fresh f JOIN temp.uniq u ON u.k = f.u ORDER BY f.k",
        params![content_base, bank_id, now],
    )
    .map_err(db_err)?;
    tx.execute(
        "INSERT INTO signals (id, content_id, bank_id, signal_type, value)
         SELECT ?1 + f.k, ?2 + f.k, ?3, u.signal_type, u.value
         FROM temp.fresh f JOIN temp.uniq u ON u.k = f.u ORDER BY f.k",
        params![signal_base, content_base, bank_id],
    )
    .map_err(db_err)?;
    let last = last_seq_in(tx)?;
    let m_i64 = i64::try_from(m).map_err(|_| Error::Backend("import too large".into()))?;
    tx.execute(
        "INSERT INTO changes (seq, kind, bank_id, content_id, signal_id, at, count)
         VALUES (?1, 'added_range', ?2, ?3, ?4, ?5, ?6)",
        params![
            last + m_i64,
            bank_id,
            content_base + 1,
            signal_base + 1,
            now,
            m_i64
        ],
    )
    .map_err(db_err)?;
    Ok(m)
}

/// Records every collapsed hash as listed by `source` at `seen_at`: new records, or
/// refreshed ones (last seen, the latest source id and classification, no longer withdrawn).
fn upsert_provenance(tx: &Connection, bank_id: BankId, source: &str, seen_at: i64) -> Result<()> {
    // `WHERE true` resolves the parsing ambiguity between a join's ON and the upsert's ON.
    tx.execute(
        "INSERT INTO provenance (bank_id, signal_type, value, source, source_id, \
         classification, first_seen, last_seen)
         SELECT ?1, signal_type, value, ?2, source_id, classification, ?3, ?3
         FROM temp.uniq WHERE true ORDER BY k
         ON CONFLICT (bank_id, signal_type, value, source) DO UPDATE SET
             first_seen = min(first_seen, excluded.first_seen),
             last_seen = max(last_seen, excluded.last_seen),
             source_id = coalesce(excluded.source_id, source_id),
             classification = coalesce(excluded.classification, classification),
             withdrawn_at = NULL",
        params![bank_id, source, seen_at],
    )
    .map_err(db_err)?;
    Ok(())
}

/// Marks the source's records of the staged removals (and, for a complete list, of every hash
/// it no longer lists) withdrawn, collecting the hashes in `temp.gone`. Returns how many
/// records were withdrawn.
fn withdraw(
    tx: &Connection,
    bank_id: BankId,
    source: &str,
    at: i64,
    complete: bool,
) -> Result<u64> {
    tx.execute_batch(
        "CREATE TEMP TABLE gone (signal_type TEXT NOT NULL, value TEXT NOT NULL, \
         PRIMARY KEY (signal_type, value)) WITHOUT ROWID;",
    )
    .map_err(db_err)?;
    tx.execute_batch(
        "INSERT OR IGNORE INTO temp.gone (signal_type, value)
         SELECT signal_type, value FROM temp.unstage;",
    )
    .map_err(db_err)?;
    tx.execute(BY_SOURCE_ID_SQL, params![bank_id, source])
        .map_err(db_err)?;
    if complete {
        tx.execute_batch("CREATE INDEX temp.uniq_by_value ON uniq (signal_type, value);")
            .map_err(db_err)?;
        tx.execute(
            "INSERT OR IGNORE INTO temp.gone (signal_type, value)
             SELECT p.signal_type, p.value FROM provenance p
             WHERE p.bank_id = ?1 AND p.source = ?2 AND p.withdrawn_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM temp.uniq u
                               WHERE u.signal_type = p.signal_type AND u.value = p.value)",
            params![bank_id, source],
        )
        .map_err(db_err)?;
    }
    // Keep only hashes whose record of this source was active: those are the withdrawals
    // that change something.
    tx.execute(
        "DELETE FROM temp.gone WHERE NOT EXISTS (SELECT 1 FROM provenance p
             WHERE p.bank_id = ?1 AND p.signal_type = gone.signal_type \
             AND p.value = gone.value AND p.source = ?2 AND p.withdrawn_at IS NULL)",
        params![bank_id, source],
    )
    .map_err(db_err)?;
    let n = tx
        .execute(WITHDRAW_SQL, params![bank_id, source, at])
        .map_err(db_err)?;
    Ok(n as u64)
}

/// Takes out of matching the signals of `temp.gone` that no source lists any more: feed rows
/// first (they carry the signal), then the signals, then content items left empty. Returns
/// (hashes still listed by another source, signals removed).
fn remove_unlisted(tx: &Connection, bank_id: BankId, now: i64) -> Result<(u64, u64)> {
    let still_listed = tx.execute(STILL_LISTED_SQL, [bank_id]).map_err(db_err)? as u64;
    tx.execute_batch(
        "CREATE TEMP TABLE doomed (id INTEGER PRIMARY KEY, content_id INTEGER NOT NULL);",
    )
    .map_err(db_err)?;
    let removed = tx.execute(DOOMED_SQL, [bank_id]).map_err(db_err)? as u64;
    tx.execute(
        "INSERT INTO changes (kind, bank_id, content_id, signal_id, signal_type, value, at)
         SELECT 'removed', s.bank_id, s.content_id, s.id, s.signal_type, s.value, ?1
         FROM temp.doomed d CROSS JOIN signals s ON s.id = d.id ORDER BY d.id",
        [now],
    )
    .map_err(db_err)?;
    tx.execute_batch(
        "DELETE FROM signals WHERE id IN (SELECT id FROM temp.doomed);
         DELETE FROM contents WHERE id IN (SELECT content_id FROM temp.doomed)
             AND NOT EXISTS (SELECT 1 FROM signals s WHERE s.content_id = contents.id);",
    )
    .map_err(db_err)?;
    Ok((still_listed, removed))
}

/// The whole import, inside the caller's write transaction.
pub(crate) fn import(
    tx: &Connection,
    bank_id: BankId,
    import: &SourceImport<'_>,
    feed: &mut dyn FnMut(&mut dyn SourceSink) -> Result<()>,
) -> Result<BatchOutcome> {
    require_bank(tx, bank_id)?;
    let now = now_ms();
    let (staged, removals) = stage(tx, feed)?;
    let distinct = collapse(tx, bank_id)?;
    let exchange = import.checkpoint.map(|c| c.exchange);
    // Records of this source that become active, for the exchange's entry count.
    let activated = if exchange.is_some() {
        tx.query_row(
            "SELECT count(*) FROM temp.uniq u WHERE NOT EXISTS (SELECT 1 FROM provenance p
                 WHERE p.bank_id = ?1 AND p.signal_type = u.signal_type AND p.value = u.value \
                 AND p.source = ?2 AND p.withdrawn_at IS NULL)",
            params![bank_id, import.source],
            |r| r.get::<_, i64>(0),
        )
        .map_err(db_err)?
    } else {
        0
    };
    let added = insert_fresh(tx, bank_id, now)?;
    upsert_provenance(tx, bank_id, import.source, import.seen_at)?;
    // Most imports withdraw nothing: skip the withdrawal statements and their temp tables.
    let (withdrawn, still_listed, removed) = if removals > 0 || import.complete {
        let withdrawn = withdraw(tx, bank_id, import.source, import.seen_at, import.complete)?;
        let (still_listed, removed) = remove_unlisted(tx, bank_id, now)?;
        (withdrawn, still_listed, removed)
    } else {
        (0, 0, 0)
    };
    if let Some(cp) = import.checkpoint {
        let delta = activated - withdrawn as i64;
        tx.execute(
            "INSERT INTO exchanges (name, bank_id, checkpoint, last_success_at, entries)
             VALUES (?1, ?2, ?3, ?4, max(0, ?5))
             ON CONFLICT (name) DO UPDATE SET bank_id = excluded.bank_id,
                 checkpoint = excluded.checkpoint, last_success_at = excluded.last_success_at,
                 entries = max(0, entries + ?5)",
            params![cp.exchange, bank_id, cp.checkpoint, now, delta],
        )
        .map_err(db_err)?;
    }
    tx.execute_batch(UNSTAGE_SQL).map_err(db_err)?;
    let refreshed = distinct - added;
    // Removals that withdrew no active record of this source, or whose hash another source
    // still lists, changed nothing in the bank.
    let effective = withdrawn - still_listed.min(withdrawn);
    Ok(BatchOutcome {
        added,
        refreshed,
        removed,
        unchanged: (staged - distinct) + removals.saturating_sub(effective),
    })
}

/// A diff, inside a transaction the caller rolls back.
pub(crate) fn diff(
    tx: &Connection,
    bank_id: BankId,
    feed: &mut dyn FnMut(&mut dyn SourceSink) -> Result<()>,
    list: bool,
    show: &mut dyn FnMut(DiffSide, &str, &str),
) -> Result<DiffOutcome> {
    require_bank(tx, bank_id)?;
    let (staged, _) = stage(tx, feed)?;
    let distinct = collapse(tx, bank_id)?;
    let common = count(tx, "SELECT count(*) FROM temp.uniq WHERE present = 1")?;
    if list {
        let mut stmt = tx
            .prepare("SELECT signal_type, value FROM temp.uniq WHERE present = 0 ORDER BY k")
            .map_err(db_err)?;
        let mut rows = stmt.query([]).map_err(db_err)?;
        while let Some(r) = rows.next().map_err(db_err)? {
            show(
                DiffSide::OnlyInFile,
                row::col_str(r, 0, "uniq")?,
                row::col_str(r, 1, "uniq")?,
            );
        }
    }
    tx.execute_batch("CREATE INDEX temp.uniq_by_value ON uniq (signal_type, value);")
        .map_err(db_err)?;
    let mut stmt = tx
        .prepare(
            "SELECT s.signal_type, s.value FROM signals s
             WHERE s.bank_id = ?1
               AND s.signal_type IN (SELECT DISTINCT signal_type FROM temp.uniq)
               AND NOT EXISTS (SELECT 1 FROM temp.uniq u
                               WHERE u.signal_type = s.signal_type AND u.value = s.value)
             ORDER BY s.signal_type, s.value",
        )
        .map_err(db_err)?;
    let mut rows = stmt.query([bank_id]).map_err(db_err)?;
    let mut only_in_bank = 0;
    while let Some(r) = rows.next().map_err(db_err)? {
        only_in_bank += 1;
        if list {
            show(
                DiffSide::OnlyInBank,
                row::col_str(r, 0, "signals")?,
                row::col_str(r, 1, "signals")?,
            );
        }
    }
    Ok(DiffOutcome {
        only_in_file: distinct - common,
        only_in_bank,
        common,
        repeated_in_file: staged - distinct,
    })
}

/// Columns read by [`provenance_row`], with table alias `p`.
const PROVENANCE_COLUMNS: &str = "p.bank_id, p.signal_type, p.value, p.source, p.source_id, \
     p.classification, p.first_seen, p.last_seen, p.withdrawn_at";

fn provenance_row(r: &rusqlite::Row<'_>, at: usize) -> Result<Provenance> {
    const T: &str = "provenance";
    Ok(Provenance {
        bank_id: row::col(r, at, T)?,
        signal_type: row::col(r, at + 1, T)?,
        value: row::col(r, at + 2, T)?,
        source: row::col(r, at + 3, T)?,
        source_id: row::col(r, at + 4, T)?,
        classification: row::col(r, at + 5, T)?,
        first_seen: row::col(r, at + 6, T)?,
        last_seen: row::col(r, at + 7, T)?,
        withdrawn_at: row::col(r, at + 8, T)?,
    })
}

pub(crate) fn provenance_of(
    tx: &Connection,
    bank_id: BankId,
    signal_type: &str,
    value: &str,
) -> Result<Vec<Provenance>> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {PROVENANCE_COLUMNS} FROM provenance p
             WHERE p.bank_id = ?1 AND p.signal_type = ?2 AND p.value = ?3 ORDER BY p.source"
        ))
        .map_err(db_err)?;
    let mut rows = stmt
        .query(params![bank_id, signal_type, value])
        .map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db_err)? {
        out.push(provenance_row(r, 0)?);
    }
    Ok(out)
}

/// The provenance records of one signal (by row id) in one bank, through the signal's own
/// type and value: one indexed join instead of reading the content first.
pub(crate) fn signal_provenance(
    tx: &Connection,
    bank_id: BankId,
    signal_id: crate::SignalId,
) -> Result<Vec<Provenance>> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {PROVENANCE_COLUMNS} FROM signals s
             JOIN provenance p ON p.bank_id = ?1 AND p.signal_type = s.signal_type
                              AND p.value = s.value
             WHERE s.id = ?2 AND s.bank_id = ?1 ORDER BY p.source"
        ))
        .map_err(db_err)?;
    let mut rows = stmt.query(params![bank_id, signal_id]).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db_err)? {
        out.push(provenance_row(r, 0)?);
    }
    Ok(out)
}

/// Every signal of a bank with its active provenance records, grouped per signal.
pub(crate) fn scan_bank(
    tx: &Connection,
    bank_id: BankId,
    f: &mut dyn FnMut(&Signal, &[Provenance]),
) -> Result<()> {
    require_bank(tx, bank_id)?;
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT s.id, s.content_id, s.bank_id, s.signal_type, s.value, {PROVENANCE_COLUMNS}
             FROM signals s LEFT JOIN provenance p
                 ON p.bank_id = s.bank_id AND p.signal_type = s.signal_type
                 AND p.value = s.value AND p.withdrawn_at IS NULL
             WHERE s.bank_id = ?1 ORDER BY s.id, p.source"
        ))
        .map_err(db_err)?;
    let mut rows = stmt.query([bank_id]).map_err(db_err)?;
    let mut current: Option<Signal> = None;
    let mut records: Vec<Provenance> = Vec::new();
    while let Some(r) = rows.next().map_err(db_err)? {
        let signal = row::signal(r)?;
        if current.as_ref().is_some_and(|c| c.id != signal.id) {
            // `current` is Some by the condition above.
            f(current.as_ref().expect("checked"), &records);
            records.clear();
        }
        let has_record: Option<String> = row::col(r, 8, "provenance")?;
        if has_record.is_some() {
            records.push(provenance_row(r, 5)?);
        }
        current = Some(signal);
    }
    if let Some(c) = &current {
        f(c, &records);
    }
    Ok(())
}

const EXCHANGE_COLUMNS: &str =
    "name, bank_id, checkpoint, last_success_at, last_error, last_error_at, entries";

fn exchange_row(r: &rusqlite::Row<'_>) -> Result<ExchangeState> {
    const T: &str = "exchanges";
    let entries: i64 = row::col(r, 6, T)?;
    Ok(ExchangeState {
        name: row::col(r, 0, T)?,
        bank_id: row::col(r, 1, T)?,
        checkpoint: row::col(r, 2, T)?,
        last_success_at: row::col(r, 3, T)?,
        last_error: row::col(r, 4, T)?,
        last_error_at: row::col(r, 5, T)?,
        entries: u64::try_from(entries)
            .map_err(|_| Error::Corrupt(format!("exchange entries {entries}")))?,
    })
}

pub(crate) fn exchange_state(tx: &Connection, name: &str) -> Result<Option<ExchangeState>> {
    super::query_opt(
        tx,
        &format!("SELECT {EXCHANGE_COLUMNS} FROM exchanges WHERE name = ?1"),
        name,
        exchange_row,
    )
}

pub(crate) fn list_exchange_states(tx: &Connection) -> Result<Vec<ExchangeState>> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {EXCHANGE_COLUMNS} FROM exchanges ORDER BY name"
        ))
        .map_err(db_err)?;
    let mut rows = stmt.query([]).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db_err)? {
        out.push(exchange_row(r)?);
    }
    Ok(out)
}

pub(crate) fn record_exchange_error(
    tx: &Connection,
    name: &str,
    bank_id: BankId,
    error: &str,
    at: i64,
) -> Result<()> {
    require_bank(tx, bank_id)?;
    tx.execute(
        "INSERT INTO exchanges (name, bank_id, last_error, last_error_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET bank_id = excluded.bank_id,
             last_error = excluded.last_error, last_error_at = excluded.last_error_at",
        params![name, bank_id, error, at],
    )
    .map_err(db_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::tests::plan;
    use crate::SqliteStore;

    /// The import's statements that look rows up in the big tables do it through an index,
    /// driven by the (small) staged side: a full scan of `provenance` or `signals` per staged
    /// row would make an import quadratic.
    #[test]
    fn import_statements_use_indexes() {
        let store = SqliteStore::open_in_memory().unwrap();
        let conn = store.writer_for_tests();
        conn.execute_batch(STAGE_SQL).unwrap();
        conn.execute_batch(
            "CREATE TEMP TABLE uniq (k INTEGER PRIMARY KEY, signal_type TEXT NOT NULL,
                 value TEXT NOT NULL, n INTEGER NOT NULL, source_id TEXT, classification TEXT,
                 metadata TEXT, present INTEGER NOT NULL);
             CREATE TEMP TABLE gone (signal_type TEXT NOT NULL, value TEXT NOT NULL,
                 PRIMARY KEY (signal_type, value)) WITHOUT ROWID;
             CREATE TEMP TABLE doomed (id INTEGER PRIMARY KEY, content_id INTEGER NOT NULL);",
        )
        .unwrap();
        for (sql, expect) in [
            (BY_SOURCE_ID_SQL, "provenance_by_source_id"),
            (WITHDRAW_SQL, "PRIMARY KEY"),
            (STILL_LISTED_SQL, "PRIMARY KEY"),
            (DOOMED_SQL, "signals_by_value"),
            (PRESENT_SQL, "COVERING INDEX signals_by_value"),
        ] {
            let p = plan(&conn, sql);
            assert!(
                p.contains(expect),
                "{sql}\nexpected {expect:?} in plan:\n{p}"
            );
            assert!(
                !p.contains("SCAN provenance") && !p.contains("SCAN signals"),
                "{sql}\nscans a big table:\n{p}"
            );
        }
    }
}
