//! [`SqliteStore`]: the embedded default store.
//!
//! One writer connection behind a mutex runs every write as one `BEGIN IMMEDIATE`
//! transaction; readers use their own connections (see [`pool`]) and, thanks to WAL, never wait
//! for it. Every write appends its change-feed rows in the same transaction as the data.

mod account;
mod action;
mod audit;
mod console;
mod pool;
mod report;
mod row;
mod scan;
mod schema;
mod source;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};

use self::pool::ReaderPool;
use self::row::{db_err, is_unique_violation};
use crate::model::{merge_range, plan_prune, PruneStep};
use crate::{
    ApiKey, Bank, BankId, BankUpdate, BatchOutcome, Change, Content, ContentId, ContentUpdate,
    Counts, DiffOutcome, DiffSide, Error, ExchangeState, Follower, NewApiKey, NewBank, NewContent,
    Provenance, Pruned, Result, Seq, Signal, SourceImport, SourceSink, Store, StoredExchange,
};

/// Default for [`SqliteOptions::busy_timeout`]: long enough to ride out another process's
/// checkpoint or backup, short enough that a request fails while its client still waits.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Default for [`SqliteOptions::read_connections`]: the idle reader connections kept. More
/// readers than this at once open extra connections, which are closed again after use, and
/// a new connection parses the whole schema on its first statement (measured: 6% of the
/// server's CPU under a submission load with 4 kept). 32 covers a loaded server's overlap
/// of short reads, 20 console reviewers claiming at once among them (with 16 kept, the
/// extra connections of such a burst showed in the claims' p99); an idle connection costs
/// little until its page cache fills (2 MiB each at most).
pub const DEFAULT_READ_CONNECTIONS: usize = 32;

/// Page cache of the writer connection, in KiB (64 MiB). A bulk import inserts into the
/// `(signal_type, value)` index at random places; keeping its pages cached avoids re-reading
/// them from the OS for every row.
/// Helper threads SQLite's sorter may use for a large sort in the writer (imports).
const SORTER_THREADS: i64 = 2;
const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// The WAL file is truncated back to this many bytes after a checkpoint (64 MiB), so one large
/// import does not leave a multi-gigabyte WAL on disk for good.
const JOURNAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// Where and how to open a [`SqliteStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// The database file. Its directory must exist; the file is created if missing.
    pub path: PathBuf,
    /// How long a statement waits for a lock held by another process before failing with
    /// [`Error::Backend`].
    pub busy_timeout: Duration,
    /// Reader connections kept open between calls (at least one is). More readers than this
    /// at once get extra short-lived connections rather than waiting.
    pub read_connections: usize,
}

impl SqliteOptions {
    /// Options for the database at `path`, with the default timeout and reader count.
    pub fn new(path: impl Into<PathBuf>) -> SqliteOptions {
        SqliteOptions {
            path: path.into(),
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            read_connections: DEFAULT_READ_CONNECTIONS,
        }
    }
}

/// How hard commits are pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// `synchronous=FULL`: the WAL is fsynced at every commit, so a write is durable when the
    /// call returns, even across power loss.
    Full,
    /// `synchronous=OFF`: only for [`SqliteStore::open_in_memory`], whose file is deleted on
    /// drop, so durability buys nothing and fsyncs would only slow tests.
    #[cfg(any(test, feature = "test-support"))]
    Off,
}

/// What keeps [`SqliteStore::open_in_memory`]'s directory alive. That constructor is test
/// support (feature `test-support`), so without it `tempfile` is not a dependency and the
/// field can only be `None`.
#[cfg(any(test, feature = "test-support"))]
type TempDir = tempfile::TempDir;
#[cfg(not(any(test, feature = "test-support")))]
type TempDir = std::convert::Infallible;

/// The SQLite store. See the module docs for the concurrency design.
pub struct SqliteStore {
    /// The only connection that writes. Holding the lock for a whole transaction serialises
    /// writers in-process; `BEGIN IMMEDIATE` serialises them against other processes.
    writer: Mutex<Connection>,
    /// Connections for reads.
    readers: ReaderPool,
    /// The database file, for messages.
    path: PathBuf,
    /// Copies the WAL into the database in the background (durable stores only).
    _checkpointer: Option<Checkpointer>,
    /// Keeps the temporary directory of [`SqliteStore::open_in_memory`] alive; declared after
    /// the connections so they close before it is deleted.
    _temp: Option<TempDir>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("read_connections", &self.readers.keep())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database. [`Error::Corrupt`] if the file
    /// is not a SQLite database, not ours, or from a newer build; [`Error::Backend`] if it
    /// cannot be opened (missing directory, permissions).
    pub fn open(options: &SqliteOptions) -> Result<SqliteStore> {
        SqliteStore::open_with(options, Durability::Full, None)
    }

    /// A private, empty store in a temporary directory that is deleted on drop. Everything
    /// but durability behaves as [`SqliteStore::open`] (same WAL, locking and connections):
    /// an actual `:memory:` database cannot use WAL, and shared-cache mode locks per table,
    /// so readers would block on the writer. Test support: feature `test-support`.
    #[cfg(any(test, feature = "test-support"))]
    pub fn open_in_memory() -> Result<SqliteStore> {
        let dir = tempfile::Builder::new()
            .prefix("safeguard-store-")
            .tempdir()
            .map_err(|e| Error::Backend(format!("create temporary directory: {e}")))?;
        let options = SqliteOptions::new(dir.path().join("store.db"));
        SqliteStore::open_with(&options, Durability::Off, Some(dir))
    }

    fn open_with(
        options: &SqliteOptions,
        durability: Durability,
        temp: Option<TempDir>,
    ) -> Result<SqliteStore> {
        let path = options.path.clone();
        let with_path = |e: Error| match e {
            Error::Backend(m) => Error::Backend(format!("{}: {m}", path.display())),
            Error::Corrupt(m) => Error::Corrupt(format!("{}: {m}", path.display())),
            other => other,
        };
        let mut writer = open_writer(&path, options.busy_timeout, durability).map_err(with_path)?;
        schema::migrate(&mut writer).map_err(with_path)?;
        let reader_path = path.clone();
        let busy = options.busy_timeout;
        let readers = ReaderPool::new(
            options.read_connections.max(1),
            Box::new(move || open_reader(&reader_path, busy)),
        )
        .map_err(with_path)?;
        let checkpointer = match durability {
            Durability::Full => Some(Checkpointer::start(&path).map_err(with_path)?),
            #[cfg(any(test, feature = "test-support"))]
            Durability::Off => None,
        };
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            readers,
            path,
            _checkpointer: checkpointer,
            _temp: temp,
        })
    }

    /// Runs `f` in one write transaction and commits; any error rolls everything back.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        // A poisoned lock means a thread panicked inside a transaction; unwinding dropped the
        // `Transaction`, which rolled back, so the connection is clean to reuse.
        let mut conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        transact(&mut conn, f)
    }

    /// [`SqliteStore::write`], but the commit does not wait for the disk: `synchronous=NORMAL`
    /// for this one transaction, so the WAL is written to the OS at commit and fsynced by the
    /// next durable commit or checkpoint. A process crash loses nothing (the OS has the
    /// pages); a power cut may lose it, and, WAL frames being in order, only it and the other
    /// unsynced commits after the last durable one. For state whose loss is harmless: a
    /// console lease (see [`crate::ConsoleStore::claim_next_batch`]).
    fn write_unsynced<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let level: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .map_err(db_err)?;
        // 2 is FULL; a store opened with less (tests' OFF) keeps its own.
        if level < 2 {
            return transact(&mut conn, f);
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        let out = transact(&mut conn, f);
        // Every later write must be durable again; failing to say so fails this call too.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db_err)?;
        out
    }

    /// The writer connection, for tests that inspect query plans.
    #[cfg(test)]
    pub(crate) fn writer_for_tests(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` in one read transaction, so all its queries see one snapshot.
    fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.readers.get()?;
        let tx = conn.transaction().map_err(db_err)?;
        let out = f(&tx)?;
        // Ending a read-only transaction cannot lose anything; committing just releases the
        // snapshot.
        tx.commit().map_err(db_err)?;
        Ok(out)
    }
}

/// Runs `f` in one `BEGIN IMMEDIATE` transaction on the (locked) writer and commits; any
/// error rolls everything back.
fn transact<T>(conn: &mut Connection, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let out = f(&tx)?;
    tx.commit().map_err(db_err)?;
    Ok(out)
}

fn open_writer(path: &Path, busy_timeout: Duration, durability: Durability) -> Result<Connection> {
    // No SQLITE_OPEN_URI: a configured path containing `?` or `file:` is a file name, not
    // options.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db_err)?;
    conn.busy_timeout(busy_timeout).map_err(db_err)?;
    // journal_mode answers with the mode it ended up in; it silently stays in another mode on
    // file systems without shared memory, and then readers would block the writer.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(db_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Backend(format!(
            "cannot enable WAL journal mode (got {mode:?})"
        )));
    }
    let synchronous = match durability {
        Durability::Full => "FULL",
        #[cfg(any(test, feature = "test-support"))]
        Durability::Off => "OFF",
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(db_err)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(db_err)?;
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
        .map_err(db_err)?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT_BYTES)
        .map_err(db_err)?;
    if durability == Durability::Full {
        // The background checkpointer does this work; see [`Checkpointer`].
        conn.pragma_update(None, "wal_autocheckpoint", AUTO_CHECKPOINT_PAGES)
            .map_err(db_err)?;
    }
    // Imports stage their entries in TEMP tables and sort them: on disk, so a
    // ten-million-line import costs disk space, not memory.
    conn.pragma_update(None, "temp_store", "FILE")
        .map_err(db_err)?;
    // Large sorts (an import's GROUP BY over millions of staged rows) may use helper threads.
    conn.pragma_update(None, "threads", SORTER_THREADS)
        .map_err(db_err)?;
    // Every write path's statements stay prepared (bank writes, imports, submissions, cases,
    // the outbox: well over a hundred distinct statements); an evicted one is parsed again on
    // its next use, inside the writer lock.
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

/// How often the background checkpoint runs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// WAL pages after which a commit checkpoints by itself, only as a fallback: the background
/// thread keeps the WAL far below this (40 MiB at 4 KiB pages).
const AUTO_CHECKPOINT_PAGES: i64 = 10_000;

/// Copies committed WAL frames into the database file every [`CHECKPOINT_EVERY`], on its
/// own connection and thread. With SQLite's default the commit that takes the WAL past 1,000
/// pages checkpoints inline, with the writer lock held and an fsync of the database: every
/// hundred or so console claims one of them took milliseconds more, and a batch of claims
/// with it. A `PASSIVE` checkpoint never waits for and never blocks readers or the writer.
struct Checkpointer {
    stop: std::sync::Arc<(Mutex<bool>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db_err)?;
        let stop = std::sync::Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let (lock, cvar) = &*flag;
                let mut stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
                while !*stopped {
                    stopped = cvar
                        .wait_timeout(stopped, CHECKPOINT_EVERY)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    // Best effort: a busy or failed pass leaves the frames for the next one,
                    // and the writer's own automatic checkpoint stays as the fallback.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .map_err(|e| Error::Backend(format!("start the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (lock, cvar) = &*self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cvar.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    // Read-write rather than read-only: a read-only connection cannot rebuild the WAL index
    // after a crash. No CREATE: a vanished file is an error, not a new empty store.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db_err)?;
    conn.busy_timeout(busy_timeout).map_err(db_err)?;
    // Belt and braces: a read path can never write, whatever SQL it runs.
    conn.pragma_update(None, "query_only", true)
        .map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

/// Now, in Unix milliseconds.
fn now_ms() -> i64 {
    // A clock before 1970 is a broken host; 0 keeps the store working rather than failing
    // every write over a timestamp.
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// SQLite stores NaN as NULL and JSON cannot carry NaN or infinity, so a non-finite ratio is
/// refused before it reaches the database. The engine validates the range; this is the last
/// line against a value that would not round-trip.
fn check_ratio(ratio: f64) -> Result<()> {
    if ratio.is_finite() {
        Ok(())
    } else {
        Err(Error::Backend(format!(
            "invalid value: enabled_ratio {ratio} is not a finite number"
        )))
    }
}

/// A page size or limit as SQLite's `LIMIT` (which takes i64; larger means "all").
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The row that `sql` (one parameter) selects, if any, read with `read_row`.
fn query_opt<T>(
    tx: &Connection,
    sql: &str,
    param: impl rusqlite::ToSql,
    read_row: impl FnOnce(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    let mut stmt = tx.prepare_cached(sql).map_err(db_err)?;
    let mut rows = stmt.query([param]).map_err(db_err)?;
    match rows.next().map_err(db_err)? {
        Some(r) => read_row(r).map(Some),
        None => Ok(None),
    }
}

const STORED_EXCHANGE_COLUMNS: &str =
    "name, kind, settings, sealed_credentials, created_at, updated_at";

fn stored_exchange_row(r: &rusqlite::Row<'_>) -> Result<StoredExchange> {
    Ok(StoredExchange {
        name: r.get(0).map_err(db_err)?,
        kind: r.get(1).map_err(db_err)?,
        settings: r.get(2).map_err(db_err)?,
        sealed_credentials: r.get(3).map_err(db_err)?,
        created_at: r.get(4).map_err(db_err)?,
        updated_at: r.get(5).map_err(db_err)?,
    })
}

fn stored_exchange_in(tx: &Connection, name: &str) -> Result<Option<StoredExchange>> {
    query_opt(
        tx,
        &format!("SELECT {STORED_EXCHANGE_COLUMNS} FROM stored_exchanges WHERE name = ?1"),
        name,
        stored_exchange_row,
    )
}

fn bank_in(tx: &Connection, id: BankId) -> Result<Option<Bank>> {
    query_opt(
        tx,
        &format!("SELECT {} FROM banks WHERE id = ?1", row::BANK_COLUMNS),
        id,
        row::bank,
    )
}

fn require_bank(tx: &Connection, id: BankId) -> Result<Bank> {
    bank_in(tx, id)?.ok_or_else(|| Error::NotFound(format!("bank {id}")))
}

/// The signals of one content item, by signal type name.
fn signals_of(tx: &Connection, content_id: ContentId) -> Result<Vec<Signal>> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {} FROM signals WHERE content_id = ?1 ORDER BY signal_type",
            row::SIGNAL_COLUMNS
        ))
        .map_err(db_err)?;
    let mut rows = stmt.query([content_id]).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db_err)? {
        out.push(row::signal(r)?);
    }
    Ok(out)
}

fn content_in(tx: &Connection, id: ContentId) -> Result<Option<Content>> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {} FROM contents WHERE id = ?1",
            row::CONTENT_COLUMNS
        ))
        .map_err(db_err)?;
    let mut rows = stmt.query([id]).map_err(db_err)?;
    let Some(r) = rows.next().map_err(db_err)? else {
        return Ok(None);
    };
    let mut content = row::content(r)?;
    content.signals = signals_of(tx, id)?;
    Ok(Some(content))
}

fn require_content(tx: &Connection, id: ContentId) -> Result<Content> {
    content_in(tx, id)?.ok_or_else(|| Error::NotFound(format!("content {id}")))
}

fn append_updated(
    tx: &Connection,
    bank_id: BankId,
    content_id: Option<ContentId>,
    at: i64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO changes (kind, bank_id, content_id, at) VALUES ('updated', ?1, ?2, ?3)",
    )
    .and_then(|mut s| s.execute(params![bank_id, content_id, at]))
    .map_err(db_err)?;
    Ok(())
}

/// Inserts content items into one bank with prepared statements reused across items: the
/// whole batch is three statements stepped once per row.
fn insert_contents(
    tx: &Connection,
    bank_id: BankId,
    contents: &[NewContent],
) -> Result<Vec<Content>> {
    require_bank(tx, bank_id)?;
    let now = now_ms();
    let mut insert_content = tx
        .prepare_cached(
            "INSERT INTO contents (bank_id, metadata, note, disable_until_ts, \
             original_media_uri, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        )
        .map_err(db_err)?;
    let mut insert_signal = tx
        .prepare_cached(
            "INSERT INTO signals (content_id, bank_id, signal_type, value) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(db_err)?;
    let mut insert_change = tx
        .prepare_cached(
            "INSERT INTO changes (kind, bank_id, content_id, signal_id, signal_type, value, at) \
             VALUES ('added', ?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(db_err)?;
    // Content added through the API is its own source, `api`: a hash a curator added stays
    // in matching when a hash list that also carried it withdraws it.
    let mut insert_provenance = tx
        .prepare_cached(
            "INSERT INTO provenance (bank_id, signal_type, value, source, first_seen, last_seen) \
             VALUES (?1, ?2, ?3, 'api', ?4, ?4) \
             ON CONFLICT (bank_id, signal_type, value, source) DO UPDATE SET \
             last_seen = excluded.last_seen, withdrawn_at = NULL",
        )
        .map_err(db_err)?;
    let mut out = Vec::with_capacity(contents.len());
    let mut types: Vec<&str> = Vec::new();
    for (i, new) in contents.iter().enumerate() {
        // Checked up front so the message says which type clashed; the UNIQUE constraint
        // remains the guarantee.
        types.clear();
        types.extend(new.signals.iter().map(|(t, _)| t.as_str()));
        types.sort_unstable();
        if let Some(w) = types.windows(2).find(|w| w[0] == w[1]) {
            let which = if contents.len() > 1 {
                format!(" (item {i} of the batch)")
            } else {
                String::new()
            };
            return Err(Error::Conflict(format!(
                "signal type {:?} given twice for one content item{which}",
                w[0]
            )));
        }
        insert_content
            .execute(params![
                bank_id,
                new.metadata,
                new.note,
                new.disable_until_ts,
                new.original_media_uri,
                now
            ])
            .map_err(db_err)?;
        let content_id = tx.last_insert_rowid();
        let mut signals = Vec::with_capacity(new.signals.len());
        for (signal_type, value) in &new.signals {
            insert_signal
                .execute(params![content_id, bank_id, signal_type, value])
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        Error::Conflict(format!(
                            "signal type {signal_type:?} given twice for one content item"
                        ))
                    } else {
                        db_err(e)
                    }
                })?;
            let signal_id = tx.last_insert_rowid();
            insert_provenance
                .execute(params![bank_id, signal_type, value, now])
                .map_err(db_err)?;
            insert_change
                .execute(params![
                    bank_id,
                    content_id,
                    signal_id,
                    signal_type,
                    value,
                    now
                ])
                .map_err(db_err)?;
            signals.push(Signal {
                id: signal_id,
                content_id,
                bank_id,
                signal_type: signal_type.clone(),
                value: value.clone(),
            });
        }
        signals.sort_by(|a, b| a.signal_type.cmp(&b.signal_type));
        out.push(Content {
            id: content_id,
            bank_id,
            metadata: new.metadata.clone(),
            note: new.note.clone(),
            disable_until_ts: new.disable_until_ts,
            original_media_uri: new.original_media_uri.clone(),
            created_at: now,
            updated_at: now,
            signals,
        });
    }
    Ok(out)
}

/// Passes the changes of one `added_range` row that come after `after`, up to `limit` of
/// them: seq `first + k` is `Added` of the signal with id `first_signal + k`. A signal deleted
/// since is read back from its `removed` feed row (which carries it), so a follower sees
/// exactly what a row-per-signal feed would have shown: `Added`, then later `Removed`.
/// Returns the last seq passed and how many changes were passed.
fn expand_range(
    tx: &Connection,
    after: Seq,
    last_seq: Seq,
    count: i64,
    first_signal: i64,
    limit: usize,
    f: &mut dyn FnMut(Seq, Change),
) -> Result<(Seq, usize)> {
    let first_seq = last_seq - count + 1;
    let from = (after + 1).max(first_seq);
    let lo = first_signal + (from - first_seq);
    let hi = (first_signal + count - 1).min(lo.saturating_add(sql_limit(limit)) - 1);
    let mut live = tx
        .prepare_cached(&format!(
            "SELECT {} FROM signals WHERE id BETWEEN ?1 AND ?2 ORDER BY id",
            row::SIGNAL_COLUMNS
        ))
        .map_err(db_err)?;
    let mut gone = tx
        .prepare_cached(
            "SELECT signal_id, content_id, bank_id, signal_type, value FROM changes \
             WHERE kind = 'removed' AND signal_id BETWEEN ?1 AND ?2 ORDER BY signal_id",
        )
        .map_err(db_err)?;
    let mut live = live.query(params![lo, hi]).map_err(db_err)?;
    let mut gone = gone.query(params![lo, hi]).map_err(db_err)?;
    merge_range(
        || live.next().map_err(db_err)?.map(row::signal).transpose(),
        || gone.next().map_err(db_err)?.map(row::signal).transpose(),
        first_seq,
        first_signal,
        after,
        f,
    )
}

fn feed_floor_in(tx: &Connection) -> Result<Seq> {
    tx.prepare_cached("SELECT floor FROM feed_floor")
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
        .map_err(db_err)
}

fn last_seq_in(tx: &Connection) -> Result<Seq> {
    // sqlite_sequence holds the largest seq ever issued, which stays right even if old feed
    // rows are pruned one day; MAX(seq) would go back in time after pruning everything.
    tx.prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'changes'")
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)).optional())
        .map(|seq| seq.unwrap_or(0))
        .map_err(db_err)
}

impl Store for SqliteStore {
    fn create_bank(&self, bank: &NewBank) -> Result<Bank> {
        check_ratio(bank.enabled_ratio)?;
        self.write(|tx| {
            let now = now_ms();
            tx.prepare_cached(
                "INSERT INTO banks (name, enabled, enabled_ratio, pdq_threshold, kind, \
                 created_at, updated_at, tags, classification) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    bank.name,
                    bank.enabled,
                    bank.enabled_ratio,
                    bank.pdq_threshold,
                    bank.kind.as_str(),
                    now,
                    row::tags_to_text(&bank.tags),
                    bank.classification,
                ])
            })
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::Conflict(format!("bank name {:?} is taken", bank.name))
                } else {
                    db_err(e)
                }
            })?;
            Ok(Bank {
                id: tx.last_insert_rowid(),
                name: bank.name.clone(),
                enabled: bank.enabled,
                enabled_ratio: bank.enabled_ratio,
                pdq_threshold: bank.pdq_threshold,
                kind: bank.kind,
                tags: bank.tags.clone(),
                classification: bank.classification.clone(),
                created_at: now,
                updated_at: now,
            })
        })
    }

    fn bank_by_name(&self, name: &str) -> Result<Option<Bank>> {
        self.read(|tx| {
            query_opt(
                tx,
                &format!("SELECT {} FROM banks WHERE name = ?1", row::BANK_COLUMNS),
                name,
                row::bank,
            )
        })
    }

    fn bank(&self, id: BankId) -> Result<Option<Bank>> {
        self.read(|tx| bank_in(tx, id))
    }

    fn list_banks(&self) -> Result<Vec<Bank>> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {} FROM banks ORDER BY name",
                    row::BANK_COLUMNS
                ))
                .map_err(db_err)?;
            let mut rows = stmt.query([]).map_err(db_err)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db_err)? {
                out.push(row::bank(r)?);
            }
            Ok(out)
        })
    }

    fn update_bank(&self, id: BankId, update: &BankUpdate) -> Result<Bank> {
        if let Some(ratio) = update.enabled_ratio {
            check_ratio(ratio)?;
        }
        self.write(|tx| {
            let mut bank = require_bank(tx, id)?;
            if let Some(name) = &update.name {
                bank.name.clone_from(name);
            }
            if let Some(enabled) = update.enabled {
                bank.enabled = enabled;
            }
            if let Some(ratio) = update.enabled_ratio {
                bank.enabled_ratio = ratio;
            }
            if let Some(threshold) = update.pdq_threshold {
                bank.pdq_threshold = threshold;
            }
            if let Some(tags) = &update.tags {
                bank.tags.clone_from(tags);
            }
            if let Some(classification) = &update.classification {
                bank.classification.clone_from(classification);
            }
            bank.updated_at = now_ms();
            tx.prepare_cached(
                "UPDATE banks SET name = ?2, enabled = ?3, enabled_ratio = ?4, \
                 pdq_threshold = ?5, updated_at = ?6, tags = ?7, classification = ?8 \
                 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    bank.name,
                    bank.enabled,
                    bank.enabled_ratio,
                    bank.pdq_threshold,
                    bank.updated_at,
                    row::tags_to_text(&bank.tags),
                    bank.classification,
                ])
            })
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::Conflict(format!("bank name {:?} is taken", bank.name))
                } else {
                    db_err(e)
                }
            })?;
            append_updated(tx, id, None, bank.updated_at)?;
            Ok(bank)
        })
    }

    fn delete_bank(&self, id: BankId) -> Result<Bank> {
        self.write(|tx| {
            let bank = require_bank(tx, id)?;
            // Record every signal before the cascade removes it; the join walks the bank's
            // content through its index instead of scanning all signals.
            tx.prepare_cached(
                "INSERT INTO changes (kind, bank_id, content_id, signal_id, signal_type, value, at) \
                 SELECT 'removed', s.bank_id, s.content_id, s.id, s.signal_type, s.value, ?2 \
                 FROM contents c JOIN signals s ON s.content_id = c.id \
                 WHERE c.bank_id = ?1 ORDER BY s.id",
            )
            .and_then(|mut s| s.execute(params![id, now_ms()]))
            .map_err(db_err)?;
            tx.prepare_cached("DELETE FROM banks WHERE id = ?1")
                .and_then(|mut s| s.execute([id]))
                .map_err(db_err)?;
            Ok(bank)
        })
    }

    fn add_content(&self, bank_id: BankId, content: &NewContent) -> Result<Content> {
        let mut added =
            self.write(|tx| insert_contents(tx, bank_id, std::slice::from_ref(content)))?;
        // One item in, one item out.
        Ok(added
            .pop()
            .expect("insert_contents returns one item per input"))
    }

    fn add_contents(&self, bank_id: BankId, contents: &[NewContent]) -> Result<Vec<Content>> {
        self.write(|tx| insert_contents(tx, bank_id, contents))
    }

    fn content(&self, id: ContentId) -> Result<Option<Content>> {
        self.read(|tx| content_in(tx, id))
    }

    fn list_content(
        &self,
        bank_id: BankId,
        after: Option<ContentId>,
        limit: usize,
    ) -> Result<Vec<Content>> {
        self.read(|tx| {
            require_bank(tx, bank_id)?;
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {} FROM contents WHERE bank_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                    row::CONTENT_COLUMNS
                ))
                .map_err(db_err)?;
            let mut rows = stmt
                .query(params![
                    bank_id,
                    after.unwrap_or(i64::MIN),
                    sql_limit(limit)
                ])
                .map_err(db_err)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db_err)? {
                out.push(row::content(r)?);
            }
            for content in &mut out {
                content.signals = signals_of(tx, content.id)?;
            }
            Ok(out)
        })
    }

    fn update_content(&self, id: ContentId, update: &ContentUpdate) -> Result<Content> {
        self.write(|tx| {
            let mut content = require_content(tx, id)?;
            if let Some(metadata) = &update.metadata {
                content.metadata.clone_from(metadata);
            }
            if let Some(note) = &update.note {
                content.note.clone_from(note);
            }
            if let Some(ts) = update.disable_until_ts {
                content.disable_until_ts = ts;
            }
            content.updated_at = now_ms();
            tx.prepare_cached(
                "UPDATE contents SET metadata = ?2, note = ?3, disable_until_ts = ?4, \
                 updated_at = ?5 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    content.metadata,
                    content.note,
                    content.disable_until_ts,
                    content.updated_at
                ])
            })
            .map_err(db_err)?;
            append_updated(tx, content.bank_id, Some(id), content.updated_at)?;
            Ok(content)
        })
    }

    fn delete_content(&self, id: ContentId) -> Result<Content> {
        self.write(|tx| {
            let content = require_content(tx, id)?;
            tx.prepare_cached(
                "INSERT INTO changes (kind, bank_id, content_id, signal_id, signal_type, value, at) \
                 SELECT 'removed', bank_id, content_id, id, signal_type, value, ?2 \
                 FROM signals WHERE content_id = ?1 ORDER BY id",
            )
            .and_then(|mut s| s.execute(params![id, now_ms()]))
            .map_err(db_err)?;
            tx.prepare_cached("DELETE FROM contents WHERE id = ?1")
                .and_then(|mut s| s.execute([id]))
                .map_err(db_err)?;
            Ok(content)
        })
    }

    fn contents(&self, ids: &[ContentId]) -> Result<Vec<Content>> {
        self.read(|tx| {
            let mut out = Vec::with_capacity(ids.len());
            for &id in ids {
                if let Some(content) = content_in(tx, id)? {
                    out.push(content);
                }
            }
            Ok(out)
        })
    }

    fn last_seq(&self) -> Result<Seq> {
        self.read(|tx| last_seq_in(tx))
    }

    fn feed_floor(&self) -> Result<Seq> {
        self.read(|tx| feed_floor_in(tx))
    }

    fn record_follower(&self, follower: &Follower) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO feed_followers (name, position, snapshot, seen_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET \
                 position = excluded.position, snapshot = excluded.snapshot, \
                 seen_at = excluded.seen_at",
            )
            .and_then(|mut s| {
                s.execute(params![
                    follower.name,
                    follower.position,
                    follower.snapshot,
                    follower.seen_at
                ])
            })
            .map_err(db_err)?;
            Ok(())
        })
    }

    fn forget_followers(&self, silent_before: i64) -> Result<u64> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "DELETE FROM feed_followers WHERE seen_at < ?1",
                    params![silent_before],
                )
                .map_err(db_err)?;
            Ok(n as u64)
        })
    }

    fn followers(&self) -> Result<Vec<Follower>> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT name, position, snapshot, seen_at FROM feed_followers ORDER BY name",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(Follower {
                        name: r.get(0)?,
                        position: r.get(1)?,
                        snapshot: r.get(2)?,
                        seen_at: r.get(3)?,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
        })
    }

    fn prune_feed(&self, below: Seq, older_than: i64, batch: u64) -> Result<Pruned> {
        let batch = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
        let mut deleted = 0u64;
        loop {
            let step = self.write(|tx| {
                let floor = feed_floor_in(tx)?;
                let end = below.min(last_seq_in(tx)? + 1);
                let rows = tx
                    .prepare_cached(
                        "SELECT seq, at, coalesce(count, 1) FROM changes \
                         WHERE seq >= ?1 AND seq < ?2 ORDER BY seq LIMIT ?3",
                    )
                    .and_then(|mut s| {
                        s.query_map(params![floor, end, batch], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })?
                        .collect::<rusqlite::Result<Vec<(Seq, i64, i64)>>>()
                    })
                    .map_err(db_err)?;
                let step = plan_prune(floor, end, &rows, batch, older_than);
                let n = tx
                    .prepare_cached("DELETE FROM changes WHERE seq >= ?1 AND seq < ?2")
                    .and_then(|mut s| s.execute(params![floor, step.delete_below]))
                    .map_err(db_err)?;
                tx.prepare_cached("UPDATE feed_floor SET floor = max(floor, ?1)")
                    .and_then(|mut s| s.execute([step.floor]))
                    .map_err(db_err)?;
                Ok(PruneStep {
                    deleted: n as u64,
                    ..step
                })
            })?;
            deleted += step.deleted;
            if step.done {
                return Ok(Pruned {
                    deleted,
                    floor: step.floor,
                });
            }
        }
    }

    fn changes_since(
        &self,
        after: Seq,
        limit: usize,
        f: &mut dyn FnMut(Seq, Change),
    ) -> Result<Seq> {
        self.read(|tx| {
            let floor = feed_floor_in(tx)?;
            if after < floor - 1 {
                return Err(Error::FeedPruned { after, floor });
            }
            // No LIMIT in SQL: an `added_range` row stands for many changes, so the limit
            // counts changes passed, not rows read.
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {} FROM changes WHERE seq > ?1 ORDER BY seq",
                    row::CHANGE_COLUMNS
                ))
                .map_err(db_err)?;
            let mut rows = stmt.query([after]).map_err(db_err)?;
            let mut last = after;
            let mut passed = 0usize;
            while passed < limit {
                let Some(r) = rows.next().map_err(db_err)? else {
                    break;
                };
                match row::change(r)? {
                    row::FeedRow::One(seq, change) => {
                        f(seq, change);
                        last = seq;
                        passed += 1;
                    }
                    row::FeedRow::Range {
                        last_seq,
                        count,
                        first_signal,
                    } => {
                        let (l, n) = expand_range(
                            tx,
                            after,
                            last_seq,
                            count,
                            first_signal,
                            limit - passed,
                            f,
                        )?;
                        last = l;
                        passed += n;
                    }
                }
            }
            Ok(last)
        })
    }

    fn scan_signals(&self, f: &mut dyn FnMut(&Signal)) -> Result<Seq> {
        self.read(|tx| {
            // Both queries run in one read transaction, so the seq and the rows are from the
            // same snapshot.
            let seq = last_seq_in(tx)?;
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {} FROM signals ORDER BY id",
                    row::SIGNAL_COLUMNS
                ))
                .map_err(db_err)?;
            let mut rows = stmt.query([]).map_err(db_err)?;
            let mut signal = Signal {
                id: 0,
                content_id: 0,
                bank_id: 0,
                signal_type: String::new(),
                value: String::new(),
            };
            while let Some(r) = rows.next().map_err(db_err)? {
                row::signal_into(r, &mut signal)?;
                f(&signal);
            }
            Ok(seq)
        })
    }

    fn disabled_contents(&self) -> Result<Vec<(ContentId, i64)>> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, disable_until_ts FROM contents WHERE disable_until_ts <> 0 \
                     ORDER BY id",
                )
                .map_err(db_err)?;
            let mut rows = stmt.query([]).map_err(db_err)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db_err)? {
                out.push((row::col(r, 0, "contents")?, row::col(r, 1, "contents")?));
            }
            Ok(out)
        })
    }

    fn counts(&self) -> Result<Counts> {
        self.read(|tx| {
            let count = |sql: &str| -> Result<u64> {
                let n: i64 = tx.query_row(sql, [], |r| r.get(0)).map_err(db_err)?;
                u64::try_from(n).map_err(|_| Error::Corrupt(format!("negative count from {sql}")))
            };
            let banks = count("SELECT count(*) FROM banks")?;
            let contents = count("SELECT count(*) FROM contents")?;
            let mut stmt = tx
                .prepare_cached(
                    "SELECT signal_type, count(*) FROM signals GROUP BY signal_type \
                     ORDER BY signal_type",
                )
                .map_err(db_err)?;
            let mut rows = stmt.query([]).map_err(db_err)?;
            let mut signals = Vec::new();
            while let Some(r) = rows.next().map_err(db_err)? {
                let n: i64 = row::col(r, 1, "signals")?;
                signals.push((
                    row::col(r, 0, "signals")?,
                    u64::try_from(n).unwrap_or_default(),
                ));
            }
            Ok(Counts {
                banks,
                contents,
                signals,
            })
        })
    }

    fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey> {
        let scopes = row::encode_scopes(&key.scopes);
        self.write(|tx| {
            let now = now_ms();
            tx.prepare_cached(
                "INSERT INTO api_keys (key_id, name, secret_sha256, scopes, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    key.key_id,
                    key.name,
                    key.secret_sha256,
                    scopes,
                    now
                ])
            })
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::Conflict(format!("api key id {:?} is taken", key.key_id))
                } else {
                    db_err(e)
                }
            })?;
            Ok(ApiKey {
                id: tx.last_insert_rowid(),
                key_id: key.key_id.clone(),
                name: key.name.clone(),
                secret_sha256: key.secret_sha256.clone(),
                scopes: key.scopes.clone(),
                created_at: now,
                revoked_at: None,
            })
        })
    }

    fn api_key(&self, key_id: &str) -> Result<Option<ApiKey>> {
        self.read(|tx| {
            query_opt(
                tx,
                &format!(
                    "SELECT {} FROM api_keys WHERE key_id = ?1",
                    row::API_KEY_COLUMNS
                ),
                key_id,
                row::api_key,
            )
        })
    }

    fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {} FROM api_keys ORDER BY id",
                    row::API_KEY_COLUMNS
                ))
                .map_err(db_err)?;
            let mut rows = stmt.query([]).map_err(db_err)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db_err)? {
                out.push(row::api_key(r)?);
            }
            Ok(out)
        })
    }

    fn import_source(
        &self,
        bank_id: BankId,
        import: &SourceImport<'_>,
        feed: &mut dyn FnMut(&mut dyn SourceSink) -> Result<()>,
    ) -> Result<BatchOutcome> {
        // Foreign keys are off for the import's transaction: it checks the bank itself and
        // only ever references rows it has just inserted, and the per-row parent lookups
        // would otherwise cost about a fifth of a large import. (The pragma is a no-op inside
        // a transaction, so it is set around it, and always restored.)
        let mut conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        conn.pragma_update(None, "foreign_keys", false)
            .map_err(db_err)?;
        let out = transact(&mut conn, |tx| source::import(tx, bank_id, import, feed));
        let restored = conn
            .pragma_update(None, "foreign_keys", true)
            .map_err(db_err);
        let out = out?;
        restored?;
        Ok(out)
    }

    fn diff_source(
        &self,
        bank_id: BankId,
        feed: &mut dyn FnMut(&mut dyn SourceSink) -> Result<()>,
        list: bool,
        show: &mut dyn FnMut(DiffSide, &str, &str),
    ) -> Result<DiffOutcome> {
        // The writer connection, because the staging tables are written; the transaction is
        // rolled back (dropped uncommitted), so a diff never changes the store.
        let mut conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(db_err)?;
        let out = source::diff(&tx, bank_id, feed, list, show);
        tx.rollback().map_err(db_err)?;
        out
    }

    fn provenance(
        &self,
        bank_id: BankId,
        signal_type: &str,
        value: &str,
    ) -> Result<Vec<Provenance>> {
        self.read(|tx| source::provenance_of(tx, bank_id, signal_type, value))
    }

    fn signals_provenance(
        &self,
        signals: &[(BankId, crate::SignalId)],
    ) -> Result<Vec<Vec<Provenance>>> {
        self.read(|tx| {
            signals
                .iter()
                .map(|&(bank_id, signal_id)| source::signal_provenance(tx, bank_id, signal_id))
                .collect()
        })
    }

    fn scan_bank(&self, bank_id: BankId, f: &mut dyn FnMut(&Signal, &[Provenance])) -> Result<()> {
        self.read(|tx| source::scan_bank(tx, bank_id, f))
    }

    fn exchange_state(&self, name: &str) -> Result<Option<ExchangeState>> {
        self.read(|tx| source::exchange_state(tx, name))
    }

    fn list_exchange_states(&self) -> Result<Vec<ExchangeState>> {
        self.read(|tx| source::list_exchange_states(tx))
    }

    fn record_exchange_error(
        &self,
        name: &str,
        bank_id: BankId,
        error: &str,
        at: i64,
    ) -> Result<()> {
        self.write(|tx| source::record_exchange_error(tx, name, bank_id, error, at))
    }

    fn create_stored_exchange(&self, x: &StoredExchange) -> Result<StoredExchange> {
        self.write(|tx| {
            let now = now_ms();
            tx.prepare_cached(
                "INSERT INTO stored_exchanges
                     (name, kind, settings, sealed_credentials, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    x.name,
                    x.kind,
                    x.settings,
                    x.sealed_credentials,
                    now
                ])
            })
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::Conflict(format!("exchange {:?} exists", x.name))
                } else {
                    db_err(e)
                }
            })?;
            stored_exchange_in(tx, &x.name)?
                .ok_or_else(|| Error::Corrupt("stored exchange vanished".into()))
        })
    }

    fn stored_exchange(&self, name: &str) -> Result<Option<StoredExchange>> {
        self.read(|tx| stored_exchange_in(tx, name))
    }

    fn list_stored_exchanges(&self) -> Result<Vec<StoredExchange>> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {STORED_EXCHANGE_COLUMNS} FROM stored_exchanges ORDER BY name"
                ))
                .map_err(db_err)?;
            let mut rows = stmt.query([]).map_err(db_err)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db_err)? {
                out.push(stored_exchange_row(r)?);
            }
            Ok(out)
        })
    }

    fn update_stored_exchange(&self, x: &StoredExchange) -> Result<StoredExchange> {
        self.write(|tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE stored_exchanges
                     SET kind = ?2, settings = ?3, sealed_credentials = ?4, updated_at = ?5
                     WHERE name = ?1",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        x.name,
                        x.kind,
                        x.settings,
                        x.sealed_credentials,
                        now_ms()
                    ])
                })
                .map_err(db_err)?;
            if changed == 0 {
                return Err(Error::NotFound(format!("exchange {:?}", x.name)));
            }
            stored_exchange_in(tx, &x.name)?
                .ok_or_else(|| Error::Corrupt("stored exchange vanished".into()))
        })
    }

    fn delete_stored_exchange(&self, name: &str) -> Result<StoredExchange> {
        self.write(|tx| {
            let x = stored_exchange_in(tx, name)?
                .ok_or_else(|| Error::NotFound(format!("exchange {name:?}")))?;
            tx.execute("DELETE FROM stored_exchanges WHERE name = ?1", [name])
                .map_err(db_err)?;
            tx.execute("DELETE FROM exchanges WHERE name = ?1", [name])
                .map_err(db_err)?;
            Ok(x)
        })
    }

    fn revoke_api_key(&self, key_id: &str) -> Result<()> {
        self.write(|tx| {
            // Revoking twice keeps the first time: that is when the key stopped being trusted.
            let changed = tx
                .prepare_cached(
                    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?2) WHERE key_id = ?1",
                )
                .and_then(|mut s| s.execute(params![key_id, now_ms()]))
                .map_err(db_err)?;
            if changed == 0 {
                return Err(Error::NotFound(format!("api key {key_id:?}")));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Committed pages reach the database file without any write checkpointing: the writer's
    /// own automatic checkpoint is set far above what this test writes, so a growing file is
    /// the background thread's work. Dropping the store stops the thread.
    #[test]
    fn the_wal_is_checkpointed_in_the_background() {
        use crate::ActionStore;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteStore::open(&SqliteOptions::new(&path)).unwrap();
        // The migrations' pages may already be in; wait for them so only what follows counts.
        std::thread::sleep(CHECKPOINT_EVERY * 3);
        let before = std::fs::metadata(&path).unwrap().len();
        for i in 0..300 {
            let s = crate::action_conformance::submission(&format!("w{i}"), None, Some(("q", 1)));
            store.record_submission(&s, &mut |_| vec![]).unwrap();
        }
        let wal = std::fs::metadata(dir.path().join("store.db-wal"))
            .unwrap()
            .len();
        assert!(
            wal < AUTO_CHECKPOINT_PAGES as u64 * 4096,
            "the test must stay under the automatic checkpoint ({wal} bytes of WAL)"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::fs::metadata(&path).unwrap().len() <= before {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing was checkpointed into the database file"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(store);
    }

    /// SQLite's plan for `sql`, one line per step (also used by the import's plan tests).
    pub(super) fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
        let mut rows = stmt.query(rusqlite::params_from_iter(nulls)).unwrap();
        let mut out = String::new();
        while let Some(r) = rows.next().unwrap() {
            out.push_str(&r.get::<_, String>(3).unwrap());
            out.push('\n');
        }
        out
    }

    /// The hot queries use the indexes they were designed around (a regression here turns
    /// a startup or a page fetch into a full scan at ten million rows). The WHERE and ORDER BY
    /// clauses mirror the statements above.
    #[test]
    fn queries_use_their_indexes() {
        let store = SqliteStore::open_in_memory().unwrap();
        let conn = store.writer.lock().unwrap();
        let cases = [
            (
                "SELECT id, note FROM contents WHERE bank_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                "USING INDEX contents_by_bank (bank_id=? AND rowid>?)",
            ),
            (
                "SELECT seq, kind, value FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                "USING INTEGER PRIMARY KEY (rowid>?)",
            ),
            (
                "SELECT id, disable_until_ts FROM contents WHERE disable_until_ts <> 0 ORDER BY id",
                "contents_disabled",
            ),
            (
                "SELECT id, value FROM signals WHERE content_id = ?1 ORDER BY signal_type",
                "sqlite_autoindex_signals_1 (content_id=?)",
            ),
            (
                "SELECT s.id FROM contents c JOIN signals s ON s.content_id = c.id \
                 WHERE c.bank_id = ?1 ORDER BY s.id",
                "contents_by_bank (bank_id=?)",
            ),
            (
                "SELECT signal_id, value FROM changes \
                 WHERE kind = 'removed' AND signal_id BETWEEN ?1 AND ?2 ORDER BY signal_id",
                "changes_removed_by_signal (signal_id>? AND signal_id<?)",
            ),
            (
                "SELECT id FROM banks WHERE name = ?1",
                "sqlite_autoindex_banks_1 (name=?)",
            ),
            (
                "SELECT id FROM api_keys WHERE key_id = ?1",
                "sqlite_autoindex_api_keys_1 (key_id=?)",
            ),
            (
                "SELECT id, content_id, bank_id, signal_type, value FROM signals ORDER BY id",
                "SCAN signals",
            ),
        ];
        for (sql, expect) in cases {
            let p = plan(&conn, sql);
            assert!(
                p.contains(expect),
                "{sql}\nexpected {expect:?} in plan:\n{p}"
            );
        }
        // The startup scan reads the table in rowid order: no sort step.
        let p = plan(&conn, cases[7].0);
        assert!(!p.contains("TEMP B-TREE"), "scan sorts:\n{p}");
    }
}
