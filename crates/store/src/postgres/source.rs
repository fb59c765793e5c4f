//! Hash-list sources on PostgreSQL: imports staged through `COPY`, applied set-based;
//! provenance and exchange state.
//!
//! An import streams every entry into temporary tables with `COPY ... FROM STDIN` (text
//! format, in chunks of [`COPY_CHUNK_ROWS`], so memory stays bounded whatever the import's
//! size), then applies the whole batch with a handful of set-based statements, all in the
//! caller's one write transaction. The temporary tables are `ON COMMIT DROP`, so neither a
//! commit nor a rollback leaves them on the pooled connection. The outcome and the change
//! feed are SQLite's: new hashes become content items with one signal each, under one
//! `added_range` feed row; withdrawals mark provenance withdrawn and remove a signal no
//! source lists any more.

use bytes::Bytes;
use futures_util::SinkExt;

use super::row::{self, col, count, pg_err};
use super::{now_ms, require_bank, Tx};
use crate::{
    BankId, BatchOutcome, DiffOutcome, DiffSide, Error, ExchangeState, Provenance, Result, Signal,
    SourceEntry, SourceImport, SourceRemoval, SourceSink,
};

/// Entries buffered before one `COPY` round trip: about 1-2 MiB of text for PDQ hashes.
const COPY_CHUNK_ROWS: usize = 16_384;

const STAGE_SQL: &str = r#"
CREATE TEMP TABLE stage (
    n               BIGINT NOT NULL,
    signal_type     TEXT COLLATE "C" NOT NULL,
    value           TEXT COLLATE "C" NOT NULL,
    source_id       TEXT COLLATE "C",
    classification  TEXT COLLATE "C",
    metadata        TEXT COLLATE "C"
) ON COMMIT DROP;
CREATE TEMP TABLE unstage (signal_type TEXT COLLATE "C" NOT NULL,
                           value TEXT COLLATE "C" NOT NULL) ON COMMIT DROP;
CREATE TEMP TABLE unstage_ids (source_id TEXT COLLATE "C" NOT NULL) ON COMMIT DROP;
"#;

/// Appends `s` to a `COPY` text-format line: the store's text escape (see
/// [`row::escape_into`]), then the format's (backslash, tab, newline, carriage return).
fn push_field(buf: &mut Vec<u8>, s: &str) {
    let mut escaped = Vec::with_capacity(s.len());
    row::escape_into(s.as_bytes(), &mut escaped);
    for b in escaped {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            _ => buf.push(b),
        }
    }
}

fn push_opt(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => push_field(buf, s),
        None => buf.extend_from_slice(b"\\N"),
    }
}

/// One temporary table's pending `COPY` data.
struct CopyBuffer {
    /// The `COPY ... FROM STDIN` statement.
    sql: &'static str,
    /// Lines not sent yet.
    buf: Vec<u8>,
    rows: usize,
}

impl CopyBuffer {
    fn new(sql: &'static str) -> CopyBuffer {
        CopyBuffer {
            sql,
            buf: Vec::new(),
            rows: 0,
        }
    }

    fn flush(&mut self, tx: &mut Tx<'_>) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let data = Bytes::from(std::mem::take(&mut self.buf));
        self.rows = 0;
        let client = tx.client();
        let sql = self.sql;
        tx.store
            .block_on(async {
                let sink = client.copy_in::<_, Bytes>(sql).await?;
                futures_util::pin_mut!(sink);
                sink.send(data).await?;
                sink.finish().await
            })
            .map_err(pg_err)?;
        Ok(())
    }

    /// Counts a finished line; sends the buffer when it is full.
    fn line_done(&mut self, tx: &mut Tx<'_>) -> Result<()> {
        self.buf.push(b'\n');
        self.rows += 1;
        if self.rows >= COPY_CHUNK_ROWS {
            self.flush(tx)?;
        }
        Ok(())
    }
}

/// The sink that streams pushed entries into the temporary tables.
struct Stager<'t, 's> {
    tx: &'t mut Tx<'s>,
    upserts: CopyBuffer,
    removals: CopyBuffer,
    removal_ids: CopyBuffer,
    upserted: u64,
    removed: u64,
}

impl SourceSink for Stager<'_, '_> {
    fn upsert(&mut self, e: &SourceEntry) -> Result<()> {
        self.upserted += 1;
        let b = &mut self.upserts.buf;
        b.extend_from_slice(self.upserted.to_string().as_bytes());
        b.push(b'\t');
        push_field(b, &e.signal_type);
        b.push(b'\t');
        push_field(b, &e.value);
        b.push(b'\t');
        push_opt(b, e.source_id.as_deref());
        b.push(b'\t');
        push_opt(b, e.classification.as_deref());
        b.push(b'\t');
        push_opt(b, e.metadata.as_deref());
        self.upserts.line_done(self.tx)
    }

    fn remove(&mut self, r: &SourceRemoval) -> Result<()> {
        let b = &mut self.removals.buf;
        push_field(b, &r.signal_type);
        b.push(b'\t');
        push_field(b, &r.value);
        self.removed += 1;
        self.removals.line_done(self.tx)
    }

    fn remove_source_id(&mut self, source_id: &str) -> Result<()> {
        push_field(&mut self.removal_ids.buf, source_id);
        self.removed += 1;
        self.removal_ids.line_done(self.tx)
    }
}

/// Creates the temporary tables and streams `feed` into them. Returns (upserts, removals).
fn stage(
    tx: &mut Tx<'_>,
    feed: &mut dyn FnMut(&mut dyn SourceSink) -> Result<()>,
) -> Result<(u64, u64)> {
    tx.batch(STAGE_SQL)?;
    let mut stager = Stager {
        tx,
        upserts: CopyBuffer::new(
            "COPY stage (n, signal_type, value, source_id, classification, metadata) \
             FROM STDIN",
        ),
        removals: CopyBuffer::new("COPY unstage (signal_type, value) FROM STDIN"),
        removal_ids: CopyBuffer::new("COPY unstage_ids (source_id) FROM STDIN"),
        upserted: 0,
        removed: 0,
    };
    feed(&mut stager)?;
    stager.upserts.flush(stager.tx)?;
    stager.removals.flush(stager.tx)?;
    stager.removal_ids.flush(stager.tx)?;
    let out = (stager.upserted, stager.removed);
    tx.batch("ANALYZE stage")?;
    Ok(out)
}

/// Whether the bank holds nothing at all: no content, and no provenance record (withdrawn
/// records outlive their signals). Both are one probe of an index led by the bank id. An
/// import into such a bank (the first import of a list) skips every per-hash lookup of what
/// the bank already holds.
fn bank_is_empty(tx: &mut Tx<'_>, bank_id: BankId) -> Result<bool> {
    let r = tx.one(
        "SELECT NOT EXISTS (SELECT 1 FROM contents WHERE bank_id = $1)
            AND NOT EXISTS (SELECT 1 FROM provenance WHERE bank_id = $1)",
        &[&bank_id],
    )?;
    col(&r, 0, "bank_is_empty")
}

/// Collapses the staged upserts to one row per hash (the last entry wins), each marked with
/// whether the bank already holds it (from the `signals_by_value` index alone; never, for an
/// empty bank) and numbered in (type, value) order: for an empty bank every row is new, and
/// that number places it in the block of ids it takes. Returns the number of distinct hashes.
fn collapse(tx: &mut Tx<'_>, bank_id: BankId, empty: bool) -> Result<u64> {
    tx.batch(
        r#"CREATE TEMP TABLE uniq (
            signal_type     TEXT COLLATE "C" NOT NULL,
            value           TEXT COLLATE "C" NOT NULL,
            n               BIGINT NOT NULL,
            source_id       TEXT COLLATE "C",
            classification  TEXT COLLATE "C",
            metadata        TEXT COLLATE "C",
            present         BOOLEAN NOT NULL,
            k               BIGINT NOT NULL
        ) ON COMMIT DROP"#,
    )?;
    // The numbering follows the order DISTINCT ON already sorted in: no second sort.
    let n = tx.execute(
        "INSERT INTO uniq (signal_type, value, n, source_id, classification, metadata, present, k)
         SELECT d.signal_type, d.value, d.n, d.source_id, d.classification, d.metadata,
                NOT $2 AND EXISTS (SELECT 1 FROM signals s WHERE s.signal_type = d.signal_type
                                   AND s.value = d.value AND s.bank_id = $1),
                row_number() OVER (ORDER BY d.signal_type, d.value)
         FROM (SELECT DISTINCT ON (signal_type, value) * FROM stage
               ORDER BY signal_type, value, n DESC) d",
        &[&bank_id, &empty],
    )?;
    // Only the statements that join the bank's existing rows against `uniq` probe it by
    // value (the refresh of records, a complete list's withdrawals), and an empty bank has
    // none to join. A hash index: a btree entry could not hold a value of any length (see
    // sg_digest).
    if !empty {
        tx.batch("CREATE INDEX ON uniq USING hash (value)")?;
    }
    tx.batch("ANALYZE uniq")?;
    Ok(n)
}

fn count_of(tx: &mut Tx<'_>, sql: &str, p: &[super::Param<'_>]) -> Result<u64> {
    let r = tx.one(sql, p)?;
    count(&r, 0, "count")
}

/// Takes `n` consecutive ids from the identity sequence of `table`; returns the one before
/// the first. Only ever called under the store's write lock, the only place ids are taken
/// (every insert is a write), so nobody takes one in between. `setval` is not rolled back
/// with the transaction: a failed import burns its ids, which is harmless (ids are never
/// reused, and nothing needs them dense).
fn take_ids(tx: &mut Tx<'_>, table: &str, n: u64) -> Result<i64> {
    let n = i64::try_from(n).map_err(|_| Error::Backend("import too large".into()))?;
    let r = tx.one(
        "SELECT setval(pg_get_serial_sequence($1, 'id'), nextval(pg_get_serial_sequence($1, 'id')) + $2 - 1)",
        &[&table, &n],
    )?;
    let last: i64 = col(&r, 0, table)?;
    Ok(last - n)
}

/// Inserts a content item and a signal for every collapsed hash the bank does not hold, with
/// blocks of ids from the tables' sequences, and one `added_range` feed row for them all.
/// Returns how many. `distinct` is the number of collapsed hashes.
fn insert_fresh(
    tx: &mut Tx<'_>,
    bank_id: BankId,
    now: i64,
    empty: bool,
    distinct: u64,
) -> Result<u64> {
    // Into an empty bank every collapsed hash is new and `uniq.k` already numbers them 1..m;
    // otherwise the new ones are numbered apart, so that their ids stay consecutive.
    let (m, fresh) = if empty {
        (distinct, "uniq")
    } else {
        let m = count_of(tx, "SELECT count(*) FROM uniq WHERE NOT present", &[])?;
        if m > 0 {
            tx.batch(
                r#"CREATE TEMP TABLE fresh (
                       k BIGINT NOT NULL,
                       signal_type TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL,
                       metadata TEXT COLLATE "C") ON COMMIT DROP;
                   INSERT INTO fresh (k, signal_type, value, metadata)
                   SELECT row_number() OVER (ORDER BY k), signal_type, value, metadata
                   FROM uniq WHERE NOT present"#,
            )?;
        }
        (m, "fresh")
    };
    if m == 0 {
        return Ok(0);
    }
    let content_base = take_ids(tx, "contents", m)?;
    let signal_base = take_ids(tx, "signals", m)?;
    tx.execute(
        &format!(
            "INSERT INTO contents (id, bank_id, metadata, note, disable_until_ts, \
             original_media_uri, created_at, updated_at)
             SELECT $3 + k, $1, metadata, NULL, 0, NULL, $2, $2 FROM {fresh}"
        ),
        &[&bank_id, &now, &content_base],
    )?;
    tx.execute(
        &format!(
            "INSERT INTO signals (id, content_id, bank_id, signal_type, value)
             SELECT $2 + k, $3 + k, $1, signal_type, value FROM {fresh}"
        ),
        &[&bank_id, &signal_base, &content_base],
    )?;
    // One feed row for them all: their signal ids are consecutive, and so are their
    // positions (see row::FeedRow::Range).
    let base = tx.take_seqs(m)?;
    let count = i64::try_from(m).map_err(|_| Error::Backend("import too large".into()))?;
    tx.execute(
        "INSERT INTO changes (seq, kind, bank_id, content_id, signal_id, at, count)
         VALUES ($1::BIGINT + $6::BIGINT, 'added_range', $2, $4::BIGINT + 1, $5::BIGINT + 1, $3, $6)",
        &[&base, &bank_id, &now, &content_base, &signal_base, &count],
    )?;
    Ok(m)
}

/// Records every collapsed hash as listed by `source` at `seen_at`: refreshes the records
/// that exist (last seen, the latest source id and classification, no longer withdrawn), then
/// inserts the others. Two plain statements rather than one `INSERT ... ON CONFLICT`: under
/// the store's write lock nobody else inserts records meanwhile, and the upsert's speculative
/// insertion (an arbiter probe per row before each insert) cost most of a large import.
fn upsert_provenance(
    tx: &mut Tx<'_>,
    bank_id: BankId,
    source: &str,
    seen_at: i64,
    empty: bool,
) -> Result<()> {
    if empty {
        // Nothing to refresh, nothing to skip: every record is new.
        tx.execute(
            "INSERT INTO provenance (bank_id, signal_type, value, source, source_id, \
             classification, first_seen, last_seen)
             SELECT $1, u.signal_type, u.value, $2, u.source_id, u.classification, $3, $3
             FROM uniq u",
            &[&bank_id, &source, &seen_at],
        )?;
        return Ok(());
    }
    tx.execute(
        "UPDATE provenance p SET
             first_seen = LEAST(p.first_seen, $3),
             last_seen = GREATEST(p.last_seen, $3),
             source_id = coalesce(u.source_id, p.source_id),
             classification = coalesce(u.classification, p.classification),
             withdrawn_at = NULL
         FROM uniq u
         WHERE p.bank_id = $1 AND p.source = $2
           AND p.signal_type = u.signal_type AND p.value = u.value",
        &[&bank_id, &source, &seen_at],
    )?;
    tx.execute(
        "INSERT INTO provenance (bank_id, signal_type, value, source, source_id, \
         classification, first_seen, last_seen)
         SELECT $1, u.signal_type, u.value, $2, u.source_id, u.classification, $3, $3
         FROM uniq u
         WHERE NOT EXISTS (SELECT 1 FROM provenance p
                           WHERE p.bank_id = $1 AND p.source = $2
                             AND p.signal_type = u.signal_type AND p.value = u.value)",
        &[&bank_id, &source, &seen_at],
    )?;
    Ok(())
}

/// Marks the source's records of the staged removals (and, for a complete list, of every
/// hash it no longer lists) withdrawn, collecting the hashes in `gone`. Returns how many
/// records were withdrawn.
fn withdraw(
    tx: &mut Tx<'_>,
    bank_id: BankId,
    source: &str,
    at: i64,
    complete: bool,
) -> Result<u64> {
    tx.batch(
        r#"CREATE TEMP TABLE gone (signal_type TEXT COLLATE "C" NOT NULL,
                                   value TEXT COLLATE "C" NOT NULL) ON COMMIT DROP;
           CREATE UNIQUE INDEX ON gone (sg_digest(signal_type), sg_digest(value));
           INSERT INTO gone (signal_type, value) SELECT signal_type, value FROM unstage
               ON CONFLICT DO NOTHING;"#,
    )?;
    tx.execute(
        "INSERT INTO gone (signal_type, value)
         SELECT p.signal_type, p.value FROM unstage_ids i JOIN provenance p
             ON p.bank_id = $1 AND p.source = $2 AND p.source_id = i.source_id
         WHERE p.source_id IS NOT NULL
         ON CONFLICT DO NOTHING",
        &[&bank_id, &source],
    )?;
    if complete {
        tx.execute(
            "INSERT INTO gone (signal_type, value)
             SELECT p.signal_type, p.value FROM provenance p
             WHERE p.bank_id = $1 AND p.source = $2 AND p.withdrawn_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM uniq u
                               WHERE u.signal_type = p.signal_type AND u.value = p.value)
             ON CONFLICT DO NOTHING",
            &[&bank_id, &source],
        )?;
    }
    // Keep only hashes whose record of this source was active: those are the withdrawals
    // that change something.
    tx.execute(
        "DELETE FROM gone g WHERE NOT EXISTS (SELECT 1 FROM provenance p
             WHERE p.bank_id = $1 AND p.signal_type = g.signal_type
             AND p.value = g.value AND p.source = $2 AND p.withdrawn_at IS NULL)",
        &[&bank_id, &source],
    )?;
    tx.execute(
        "UPDATE provenance p SET withdrawn_at = $3 FROM gone g
         WHERE p.bank_id = $1 AND p.signal_type = g.signal_type
           AND p.value = g.value AND p.source = $2 AND p.withdrawn_at IS NULL",
        &[&bank_id, &source, &at],
    )
}

/// Takes out of matching the signals of `gone` that no source lists any more: feed rows
/// first (they carry the signal), then the signals, then content items left empty. Returns
/// (hashes still listed by another source, signals removed).
fn remove_unlisted(tx: &mut Tx<'_>, bank_id: BankId, now: i64) -> Result<(u64, u64)> {
    let still_listed = tx.execute(
        "DELETE FROM gone g WHERE EXISTS (SELECT 1 FROM provenance p
             WHERE p.bank_id = $1 AND p.signal_type = g.signal_type AND p.value = g.value
               AND p.withdrawn_at IS NULL)",
        &[&bank_id],
    )?;
    tx.batch(
        "CREATE TEMP TABLE doomed (id BIGINT PRIMARY KEY, content_id BIGINT NOT NULL) \
         ON COMMIT DROP",
    )?;
    let removed = tx.execute(
        "INSERT INTO doomed (id, content_id)
         SELECT s.id, s.content_id FROM gone g JOIN signals s
             ON s.signal_type = g.signal_type AND s.value = g.value
         WHERE s.bank_id = $1",
        &[&bank_id],
    )?;
    let base = tx.take_seqs(removed)?;
    tx.execute(
        "INSERT INTO changes (seq, kind, bank_id, content_id, signal_id, signal_type, value, at)
         SELECT $2 + row_number() OVER (ORDER BY s.id), 'removed', s.bank_id, s.content_id,
                s.id, s.signal_type, s.value, $1
         FROM doomed d JOIN signals s ON s.id = d.id",
        &[&now, &base],
    )?;
    tx.batch(
        "DELETE FROM signals WHERE id IN (SELECT id FROM doomed);
         DELETE FROM contents c WHERE c.id IN (SELECT content_id FROM doomed)
             AND NOT EXISTS (SELECT 1 FROM signals s WHERE s.content_id = c.id);",
    )?;
    Ok((still_listed, removed))
}

/// The whole import, inside the caller's write transaction.
pub(crate) fn import(
    tx: &mut Tx<'_>,
    bank_id: BankId,
    import: &SourceImport<'_>,
    feed: &mut dyn FnMut(&mut dyn SourceSink) -> Result<()>,
) -> Result<BatchOutcome> {
    require_bank(tx, bank_id)?;
    let now = now_ms();
    let (staged, removals) = stage(tx, feed)?;
    let empty = bank_is_empty(tx, bank_id)?;
    let distinct = collapse(tx, bank_id, empty)?;
    let exchange = import.checkpoint.map(|c| c.exchange);
    // Records of this source that become active, for the exchange's entry count.
    let activated = if exchange.is_some() && empty {
        // An empty bank has no records yet: every collapsed hash activates one.
        i64::try_from(distinct).unwrap_or(i64::MAX)
    } else if exchange.is_some() {
        let n = count_of(
            tx,
            "SELECT count(*) FROM uniq u WHERE NOT EXISTS (SELECT 1 FROM provenance p
                 WHERE p.bank_id = $1 AND p.signal_type = u.signal_type AND p.value = u.value
                 AND p.source = $2 AND p.withdrawn_at IS NULL)",
            &[&bank_id, &import.source],
        )?;
        i64::try_from(n).unwrap_or(i64::MAX)
    } else {
        0
    };
    let added = insert_fresh(tx, bank_id, now, empty, distinct)?;
    upsert_provenance(tx, bank_id, import.source, import.seen_at, empty)?;
    // A complete list withdraws the source's active records it no longer lists; in a bank
    // that was empty, every such record was written from this list just now.
    let complete = import.complete && !empty;
    let (withdrawn, still_listed, removed) = if removals > 0 || complete {
        let withdrawn = withdraw(tx, bank_id, import.source, import.seen_at, complete)?;
        let (still_listed, removed) = remove_unlisted(tx, bank_id, now)?;
        (withdrawn, still_listed, removed)
    } else {
        (0, 0, 0)
    };
    if let Some(cp) = import.checkpoint {
        let delta = activated - i64::try_from(withdrawn).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO exchanges (name, bank_id, checkpoint, last_success_at, entries)
             VALUES ($1, $2, $3, $4, GREATEST(0, $5::BIGINT))
             ON CONFLICT (name) DO UPDATE SET bank_id = excluded.bank_id,
                 checkpoint = excluded.checkpoint, last_success_at = excluded.last_success_at,
                 entries = GREATEST(0, exchanges.entries + $5::BIGINT)",
            &[&cp.exchange, &bank_id, &cp.checkpoint, &now, &delta],
        )?;
    }
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
    tx: &mut Tx<'_>,
    bank_id: BankId,
    feed: &mut dyn FnMut(&mut dyn SourceSink) -> Result<()>,
    list: bool,
    show: &mut dyn FnMut(DiffSide, &str, &str),
) -> Result<DiffOutcome> {
    require_bank(tx, bank_id)?;
    let (staged, _) = stage(tx, feed)?;
    let empty = bank_is_empty(tx, bank_id)?;
    let distinct = collapse(tx, bank_id, empty)?;
    let common = count_of(tx, "SELECT count(*) FROM uniq WHERE present", &[])?;
    if list {
        let rows = tx.query(
            "SELECT signal_type, value FROM uniq WHERE NOT present ORDER BY signal_type, value",
            &[],
        )?;
        for r in &rows {
            let (t, v): (String, String) = (col(r, 0, "uniq")?, col(r, 1, "uniq")?);
            show(DiffSide::OnlyInFile, &t, &v);
        }
    }
    let rows = tx.query(
        "SELECT s.signal_type, s.value FROM signals s
         WHERE s.bank_id = $1
           AND s.signal_type IN (SELECT DISTINCT signal_type FROM uniq)
           AND NOT EXISTS (SELECT 1 FROM uniq u
                           WHERE u.signal_type = s.signal_type AND u.value = s.value)
         ORDER BY s.signal_type, s.value",
        &[&bank_id],
    )?;
    let only_in_bank = rows.len() as u64;
    if list {
        for r in &rows {
            let (t, v): (String, String) = (col(r, 0, "signals")?, col(r, 1, "signals")?);
            show(DiffSide::OnlyInBank, &t, &v);
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

fn provenance_row(r: &tokio_postgres::Row, at: usize) -> Result<Provenance> {
    const T: &str = "provenance";
    Ok(Provenance {
        bank_id: col(r, at, T)?,
        signal_type: col(r, at + 1, T)?,
        value: col(r, at + 2, T)?,
        source: col(r, at + 3, T)?,
        source_id: col(r, at + 4, T)?,
        classification: col(r, at + 5, T)?,
        first_seen: col(r, at + 6, T)?,
        last_seen: col(r, at + 7, T)?,
        withdrawn_at: col(r, at + 8, T)?,
    })
}

pub(crate) fn provenance_of(
    tx: &mut Tx<'_>,
    bank_id: BankId,
    signal_type: &str,
    value: &str,
) -> Result<Vec<Provenance>> {
    tx.query(
        &format!(
            "SELECT {PROVENANCE_COLUMNS} FROM provenance p
             WHERE p.bank_id = $1 AND p.signal_type = $2 AND p.value = $3 ORDER BY p.source"
        ),
        &[&bank_id, &signal_type, &value],
    )?
    .iter()
    .map(|r| provenance_row(r, 0))
    .collect()
}

/// The provenance records of one signal (by row id) in one bank, through the signal's own
/// type and value.
pub(crate) fn signal_provenance(
    tx: &mut Tx<'_>,
    bank_id: BankId,
    signal_id: crate::SignalId,
) -> Result<Vec<Provenance>> {
    tx.query(
        &format!(
            "SELECT {PROVENANCE_COLUMNS} FROM signals s
             JOIN provenance p ON p.bank_id = $1 AND p.signal_type = s.signal_type
                              AND p.value = s.value
             WHERE s.id = $2 AND s.bank_id = $1 ORDER BY p.source"
        ),
        &[&bank_id, &signal_id],
    )?
    .iter()
    .map(|r| provenance_row(r, 0))
    .collect()
}

/// Every signal of a bank with its active provenance records, grouped per signal, read in
/// pages of signals (the callback runs between pages).
pub(crate) fn scan_bank(
    tx: &mut Tx<'_>,
    bank_id: BankId,
    f: &mut dyn FnMut(&Signal, &[Provenance]),
) -> Result<()> {
    require_bank(tx, bank_id)?;
    let mut after = i64::MIN;
    loop {
        let rows = tx.query(
            &format!(
                "SELECT s.id, s.content_id, s.bank_id, s.signal_type, s.value, \
                        {PROVENANCE_COLUMNS}
                 FROM (SELECT * FROM signals WHERE bank_id = $1 AND id > $2
                       ORDER BY id LIMIT $3) s
                 LEFT JOIN provenance p
                     ON p.bank_id = s.bank_id AND p.signal_type = s.signal_type
                     AND p.value = s.value AND p.withdrawn_at IS NULL
                 ORDER BY s.id, p.source"
            ),
            &[&bank_id, &after, &super::FETCH_ROWS],
        )?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut current: Option<Signal> = None;
        let mut records: Vec<Provenance> = Vec::new();
        let mut signals = 0i64;
        for r in &rows {
            let signal = row::signal(r)?;
            if current.as_ref().is_some_and(|c| c.id != signal.id) {
                if let Some(c) = &current {
                    f(c, &records);
                }
                records.clear();
            }
            if current.as_ref().is_none_or(|c| c.id != signal.id) {
                signals += 1;
            }
            let has_record: Option<String> = col(r, 8, "provenance")?;
            if has_record.is_some() {
                records.push(provenance_row(r, 5)?);
            }
            current = Some(signal);
        }
        if let Some(c) = &current {
            f(c, &records);
            after = c.id;
        }
        if signals < super::FETCH_ROWS {
            return Ok(());
        }
    }
}

const EXCHANGE_COLUMNS: &str =
    "name, bank_id, checkpoint, last_success_at, last_error, last_error_at, entries";

fn exchange_row(r: &tokio_postgres::Row) -> Result<ExchangeState> {
    const T: &str = "exchanges";
    Ok(ExchangeState {
        name: col(r, 0, T)?,
        bank_id: col(r, 1, T)?,
        checkpoint: col(r, 2, T)?,
        last_success_at: col(r, 3, T)?,
        last_error: col(r, 4, T)?,
        last_error_at: col(r, 5, T)?,
        entries: count(r, 6, T)?,
    })
}

pub(crate) fn exchange_state(tx: &mut Tx<'_>, name: &str) -> Result<Option<ExchangeState>> {
    tx.opt(
        &format!("SELECT {EXCHANGE_COLUMNS} FROM exchanges WHERE name = $1"),
        &[&name],
    )?
    .map(|r| exchange_row(&r))
    .transpose()
}

pub(crate) fn list_exchange_states(tx: &mut Tx<'_>) -> Result<Vec<ExchangeState>> {
    tx.query(
        &format!("SELECT {EXCHANGE_COLUMNS} FROM exchanges ORDER BY name"),
        &[],
    )?
    .iter()
    .map(exchange_row)
    .collect()
}

pub(crate) fn record_exchange_error(
    tx: &mut Tx<'_>,
    name: &str,
    bank_id: BankId,
    error: &str,
    at: i64,
) -> Result<()> {
    require_bank(tx, bank_id)?;
    tx.execute(
        "INSERT INTO exchanges (name, bank_id, last_error, last_error_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET bank_id = excluded.bank_id,
             last_error = excluded.last_error, last_error_at = excluded.last_error_at",
        &[&name, &bank_id, &error, &at],
    )?;
    Ok(())
}
