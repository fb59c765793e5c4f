//! [`PostgresStore`]: the store that many Safeguard processes share.
//!
//! # Driver and threads
//! `tokio-postgres` connections in a `deadpool-postgres` pool (at most
//! [`PostgresOptions::max_connections`]), driven by a small multi-thread tokio runtime that
//! the store owns. The [`Store`] trait is synchronous: each statement is one
//! `block_on` of the driver's future on the calling thread, with the store's runtime entered,
//! while the runtime's own threads drive the sockets. So the store works from plain threads
//! (the CLI), from a blocking pool (`spawn_blocking`, how the server calls it) and even from
//! an async task of another runtime, where it blocks that task's thread like any blocking
//! call would: callers on an async runtime must use `spawn_blocking` as they do for SQLite.
//! Callbacks (`scan_signals`, `changes_since`, imports' feeds) always run between statements,
//! never inside a `block_on`, so they may call the store again.
//!
//! # Transactions and the change feed
//! Reads run in one `REPEATABLE READ READ ONLY` transaction each, so all their queries see one
//! snapshot. Writes run in one `READ COMMITTED` transaction each that first takes the store's
//! write lock, a transaction-level advisory lock ([`WRITE_LOCK_KEY`]): writers are serialised
//! across every process on the database, as SQLite's single writer serialises them, and the
//! lock is held until commit. Feed sequence numbers are handed out under that lock from
//! `feed_position` and written back in the same transaction, so the feed is gap-free and
//! monotonic, and a reader never sees seq N+1 committed before N. A write that appended to the
//! feed also sends `NOTIFY safeguard_changes, '<last seq>'` in its transaction (delivered on
//! commit only); [`Store::wait_for_changes`] listens on a dedicated connection and falls back
//! to reading the position, so a lost notification costs latency, never a change.

mod account;
mod action;
mod audit;
mod console;
mod listen;
mod report;
mod row;
mod scan;
mod schema;
mod source;

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use self::row::{col, pg_err};
use crate::model::{merge_range, plan_prune, PruneStep};
use crate::{
    ApiKey, Bank, BankId, BankUpdate, BatchOutcome, Change, Content, ContentId, ContentUpdate,
    Counts, DiffOutcome, DiffSide, Error, ExchangeState, Follower, NewApiKey, NewBank, NewContent,
    Provenance, Pruned, Result, Seq, Signal, SourceImport, SourceSink, Store, StoredExchange,
};

/// Default for [`PostgresOptions::max_connections`]: enough for a loaded server's overlapping
/// short reads and writes (writes are serialised anyway), well under PostgreSQL's default
/// `max_connections` of 100 even with several processes on one database.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

/// Default for [`PostgresOptions::connect_timeout`]: a database that does not answer within
/// this long is reported as unreachable rather than hanging a request or the start-up.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Worker threads of the store's runtime: they only move bytes between sockets and the
/// callers' futures (the callers' threads do the work), so two are plenty.
const RUNTIME_THREADS: usize = 2;

/// Rows fetched per round trip by the streaming reads (`scan_signals`, `changes_since`,
/// `scan_bank`): large enough to amortise the round trip, small enough to bound memory.
const FETCH_ROWS: i64 = 10_000;

/// The advisory lock every write transaction takes (`pg_advisory_xact_lock`): `b"SGWRITE"`
/// as a big-endian integer, so it cannot collide with another application's small numbers.
pub const WRITE_LOCK_KEY: i64 = 0x0053_4757_5249_5445;

/// The NOTIFY channel of the change feed; the payload is the last seq of the transaction.
pub const CHANGES_CHANNEL: &str = "safeguard_changes";

/// Where and how to open a [`PostgresStore`].
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// A `postgres://` URL or a `key=value` connection string (libpq syntax).
    pub url: String,
    /// The most connections the pool opens (at least 2: one is the listener's, separately).
    pub max_connections: usize,
    /// How long connecting, or waiting for a free pooled connection, may take.
    pub connect_timeout: Duration,
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password.
        f.debug_struct("PostgresOptions")
            .field("url", &redact(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl PostgresOptions {
    /// Options for the database at `url`, with the default pool size and timeout.
    pub fn new(url: impl Into<String>) -> PostgresOptions {
        PostgresOptions {
            url: url.into(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// Whether `s` names a PostgreSQL database (a `postgres://` or `postgresql://` URL) rather
/// than a SQLite path.
pub fn is_postgres_url(s: &str) -> bool {
    let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// The URL with any password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => match authority[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..scheme_end + 3],
                &authority[..colon],
                &url[scheme_end + 3 + at..]
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The PostgreSQL store. See the module docs for the design.
pub struct PostgresStore {
    /// The pooled connections. Declared before `rt`: connections close before the runtime
    /// that drives them stops.
    pool: Pool,
    /// Wakes [`Store::wait_for_changes`] on the feed's notifications.
    listener: listen::Listener,
    /// Drives the connections' I/O; owned so the store works without a caller's runtime.
    /// `Some` until dropped (then shut down without waiting, which is allowed anywhere).
    rt: Option<tokio::runtime::Runtime>,
    /// The database, with its password redacted, for messages.
    name: String,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.name)
            .field("max_connections", &self.pool.status().max_size)
            .finish_non_exhaustive()
    }
}

type Param<'a> = &'a (dyn ToSql + Sync);

impl PostgresStore {
    /// Connects and migrates the database (see [`schema`]). [`Error::Backend`] if it cannot be
    /// reached or the URL is malformed; [`Error::Corrupt`] if the schema is from a newer build.
    pub fn open(options: &PostgresOptions) -> Result<PostgresStore> {
        PostgresStore::open_with(options, schema::current_version())
    }

    fn open_with(options: &PostgresOptions, target: i64) -> Result<PostgresStore> {
        let name = redact(&options.url);
        let with_name = |e: Error| match e {
            Error::Backend(m) => Error::Backend(format!("{name}: {m}")),
            Error::Corrupt(m) => Error::Corrupt(format!("{name}: {m}")),
            other => other,
        };
        let mut config: tokio_postgres::Config = options
            .url
            .parse()
            .map_err(|e| Error::Backend(format!("{name}: invalid connection string: {e}")))?;
        config.connect_timeout(options.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("safeguard");
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("safeguard-pg")
            .enable_all()
            .build()
            .map_err(|e| Error::Backend(format!("start the PostgreSQL runtime: {e}")))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = {
            let _guard = rt.enter();
            Pool::builder(manager)
                .max_size(options.max_connections.max(2))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(options.connect_timeout))
                .create_timeout(Some(options.connect_timeout))
                .build()
                .map_err(|e| Error::Backend(format!("{name}: connection pool: {e}")))?
        };
        let listener = listen::Listener::new(rt.handle().clone(), config);
        let store = PostgresStore {
            pool,
            listener,
            rt: Some(rt),
            name: name.clone(),
        };
        schema::migrate_to(&store, target).map_err(with_name)?;
        Ok(store)
    }

    /// A store whose database is migrated only up to `version` (tests of upgrades build an
    /// older database with it; [`PostgresStore::open`] then upgrades it). Test support.
    #[cfg(any(test, feature = "test-support"))]
    pub fn open_at_version(options: &PostgresOptions, version: i64) -> Result<PostgresStore> {
        PostgresStore::open_with(options, version)
    }

    /// Runs `sql` (several statements, no parameters) outside the store's API: tests use it
    /// to write rows as an older build would have. Test support.
    #[cfg(any(test, feature = "test-support"))]
    pub fn execute_batch_for_tests(&self, sql: &str) -> Result<()> {
        let client = self.connection()?;
        self.block_on(client.batch_execute(sql)).map_err(pg_err)
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<i64> {
        self.read(|tx| {
            let r = tx.one(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                &[],
            )?;
            col(&r, 0, "schema_migrations")
        })
    }

    /// Runs one driver future to completion on this thread, with the store's runtime entered
    /// (its threads drive the sockets).
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        // `rt` is only taken in `drop`.
        let _guard = self
            .rt
            .as_ref()
            .expect("runtime present until drop")
            .enter();
        futures_executor::block_on(f)
    }

    fn connection(&self) -> Result<deadpool_postgres::Object> {
        self.block_on(self.pool.get()).map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => pg_err(e),
            other => Error::Backend(format!("no database connection: {other}")),
        })
    }

    /// [`Store::scan_signals`] as it was before binary `COPY`: pages of 10,000 rows by
    /// keyset. Kept as the baseline `safeguard bench scan` measures against.
    pub fn scan_signals_by_pages(&self, f: &mut dyn FnMut(&Signal)) -> Result<Seq> {
        // One snapshot: the seq and every page are of the same moment. The callback runs
        // between pages, outside any driver call.
        let mut tx = Tx::begin(self, false)?;
        let seq = last_seq_in(&mut tx)?;
        let mut after = i64::MIN;
        let mut signal = Signal {
            id: 0,
            content_id: 0,
            bank_id: 0,
            signal_type: String::new(),
            value: String::new(),
        };
        loop {
            let rows = tx.query(
                &format!(
                    "SELECT {} FROM signals WHERE id > $1 ORDER BY id LIMIT $2",
                    row::SIGNAL_COLUMNS
                ),
                &[&after, &FETCH_ROWS],
            )?;
            for r in &rows {
                row::signal_into(r, &mut signal)?;
                f(&signal);
                after = signal.id;
            }
            if (rows.len() as i64) < FETCH_ROWS {
                break;
            }
        }
        tx.commit()?;
        Ok(seq)
    }

    /// Runs `f` in one read-only snapshot transaction.
    fn read<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        Tx::begin(self, false)?.run(f)
    }

    /// Runs `f` in one read-write transaction without the store's write lock: for writes
    /// that never touch the data or the feed (a follower's position), which must not wait
    /// behind a long import.
    fn write_unlocked<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        Tx::begin_unlocked(self)?.run(f)
    }

    /// Runs `f` in one write transaction holding the store's write lock, and commits; any
    /// error rolls everything back.
    fn write<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        Tx::begin(self, true)?.run(f)
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks stop, which panics on an async thread
        // (a server dropping its last handle to the store); shutting down in the background
        // is allowed anywhere. The connections' tasks end with it.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// One transaction on a pooled connection. Every statement is one blocking round trip; a
/// transaction dropped without [`Tx::commit`] is rolled back.
pub(crate) struct Tx<'s> {
    store: &'s PostgresStore,
    /// `Some` until dropped.
    client: Option<deadpool_postgres::Object>,
    /// Whether BEGIN was sent and neither COMMIT nor ROLLBACK yet.
    open: bool,
    /// The feed position as of the last change this transaction appended (write
    /// transactions; read on first use, under the write lock).
    feed: Option<Seq>,
    /// Whether this transaction appended to the feed (then `commit` stores the position and
    /// notifies).
    fed: bool,
}

impl<'s> Tx<'s> {
    /// A transaction on a pooled connection, opened with `begin` (a `BEGIN ...` statement).
    pub(crate) fn open(store: &'s PostgresStore, begin: &str) -> Result<Tx<'s>> {
        let client = store.connection()?;
        let mut tx = Tx {
            store,
            client: Some(client),
            open: false,
            feed: None,
            fed: false,
        };
        tx.batch(begin)?;
        tx.open = true;
        Ok(tx)
    }

    fn begin(store: &'s PostgresStore, write: bool) -> Result<Tx<'s>> {
        if write {
            let mut tx = Tx::begin_unlocked(store)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK_KEY])?;
            Ok(tx)
        } else {
            Tx::open(store, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        }
    }

    /// A read-write transaction that does not take the store's write lock.
    fn begin_unlocked(store: &'s PostgresStore) -> Result<Tx<'s>> {
        Tx::open(store, "BEGIN ISOLATION LEVEL READ COMMITTED")
    }

    /// Runs `f` and commits; an error rolls everything back (on drop).
    fn run<T>(mut self, f: impl FnOnce(&mut Tx<'s>) -> Result<T>) -> Result<T> {
        let out = f(&mut self)?;
        self.commit()?;
        Ok(out)
    }

    fn client(&self) -> &deadpool_postgres::Object {
        // `client` is only taken in `drop`.
        self.client.as_ref().expect("connection present until drop")
    }

    fn commit(mut self) -> Result<()> {
        if self.fed {
            let last = self.feed.unwrap_or(0);
            self.execute("UPDATE feed_position SET last_seq = $1", &[&last])?;
            self.execute(
                "SELECT pg_notify($1, $2)",
                &[&CHANGES_CHANNEL, &last.to_string()],
            )?;
        }
        self.batch("COMMIT")?;
        self.open = false;
        Ok(())
    }

    /// Runs each statement with `id` as its one parameter, in order.
    fn batch_params(&mut self, statements: &[&str], id: i64) -> Result<()> {
        for sql in statements {
            self.execute(sql, &[&id])?;
        }
        Ok(())
    }

    /// Runs statements without parameters (DDL, BEGIN/COMMIT).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<()> {
        let c = self.client();
        self.store.block_on(c.batch_execute(sql)).map_err(pg_err)
    }

    /// Runs one statement; returns the rows it changed.
    pub(crate) fn execute(&mut self, sql: &str, p: &[Param<'_>]) -> Result<u64> {
        self.execute_raw(sql, p).map_err(pg_err)
    }

    /// Runs one statement, mapping a unique violation to `Conflict(conflict())`.
    pub(crate) fn execute_unique(
        &mut self,
        sql: &str,
        p: &[Param<'_>],
        conflict: impl FnOnce() -> String,
    ) -> Result<u64> {
        self.execute_raw(sql, p).map_err(|e| {
            if row::is_unique_violation(&e) {
                Error::Conflict(conflict())
            } else {
                pg_err(e)
            }
        })
    }

    fn execute_raw(
        &mut self,
        sql: &str,
        p: &[Param<'_>],
    ) -> std::result::Result<u64, tokio_postgres::Error> {
        let escaped: Vec<row::Esc<'_>> = p.iter().map(|v| row::Esc(*v)).collect();
        let p: Vec<Param<'_>> = escaped.iter().map(|v| v as Param<'_>).collect();
        let p = p.as_slice();
        let c = self.client();
        self.store.block_on(async {
            let st = c.prepare_cached(sql).await?;
            c.execute(&st, p).await
        })
    }

    /// Every row of one query.
    pub(crate) fn query(&mut self, sql: &str, p: &[Param<'_>]) -> Result<Vec<Row>> {
        self.query_raw(sql, p).map_err(pg_err)
    }

    /// Runs one query, mapping a unique violation to `Conflict(conflict())`.
    pub(crate) fn query_unique(
        &mut self,
        sql: &str,
        p: &[Param<'_>],
        conflict: impl FnOnce() -> String,
    ) -> Result<Vec<Row>> {
        self.query_raw(sql, p).map_err(|e| {
            if row::is_unique_violation(&e) {
                Error::Conflict(conflict())
            } else {
                pg_err(e)
            }
        })
    }

    fn query_raw(
        &mut self,
        sql: &str,
        p: &[Param<'_>],
    ) -> std::result::Result<Vec<Row>, tokio_postgres::Error> {
        let escaped: Vec<row::Esc<'_>> = p.iter().map(|v| row::Esc(*v)).collect();
        let p: Vec<Param<'_>> = escaped.iter().map(|v| v as Param<'_>).collect();
        let p = p.as_slice();
        let c = self.client();
        self.store.block_on(async {
            let st = c.prepare_cached(sql).await?;
            c.query(&st, p).await
        })
    }

    /// The first row of one query, if any.
    pub(crate) fn opt(&mut self, sql: &str, p: &[Param<'_>]) -> Result<Option<Row>> {
        Ok(self.query(sql, p)?.into_iter().next())
    }

    /// The first row of a query that always returns one (an aggregate).
    pub(crate) fn one(&mut self, sql: &str, p: &[Param<'_>]) -> Result<Row> {
        self.opt(sql, p)?
            .ok_or_else(|| Error::Backend(format!("query returned no row: {sql}")))
    }

    /// The feed position this transaction has reached (write transactions only).
    pub(crate) fn feed_position(&mut self) -> Result<Seq> {
        if let Some(seq) = self.feed {
            return Ok(seq);
        }
        let r = self.one("SELECT last_seq FROM feed_position", &[])?;
        let seq: i64 = col(&r, 0, "feed_position")?;
        self.feed = Some(seq);
        Ok(seq)
    }

    /// Takes `n` feed sequence numbers; returns the one before the first (the rows get
    /// `base + 1 ..= base + n`).
    pub(crate) fn take_seqs(&mut self, n: u64) -> Result<Seq> {
        let base = self.feed_position()?;
        let n = i64::try_from(n).map_err(|_| Error::Backend("too many changes".into()))?;
        self.feed = Some(base + n);
        if n > 0 {
            self.fed = true;
        }
        Ok(base)
    }

    /// Appends `Change::Updated` for a bank or an item.
    fn append_updated(
        &mut self,
        bank_id: BankId,
        content_id: Option<ContentId>,
        at: i64,
    ) -> Result<()> {
        let seq = self.take_seqs(1)? + 1;
        self.execute(
            "INSERT INTO changes (seq, kind, bank_id, content_id, at) \
             VALUES ($1, 'updated', $2, $3, $4)",
            &[&seq, &bank_id, &content_id, &at],
        )?;
        Ok(())
    }

    /// Appends a `removed` row for every signal `select` (a `SELECT` of `bank_id, content_id,
    /// id, signal_type, value` ordered by id, parameter `$1`) yields, numbered in order.
    fn append_removed(&mut self, select: &str, p1: i64, at: i64) -> Result<u64> {
        let base = self.feed_position()?;
        let sql = format!(
            "INSERT INTO changes (seq, kind, bank_id, content_id, signal_id, signal_type, value, at) \
             SELECT $2 + row_number() OVER (ORDER BY x.id), 'removed', x.bank_id, x.content_id, \
                    x.id, x.signal_type, x.value, $3 FROM ({select}) x"
        );
        let n = self.execute(&sql, &[&p1, &base, &at])?;
        self.take_seqs(n)?;
        Ok(n)
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if self.open {
            // A failed ROLLBACK leaves the connection in an unknown state: close it instead of
            // returning it to the pool.
            if self
                .store
                .block_on(client.batch_execute("ROLLBACK"))
                .is_err()
            {
                drop(deadpool_postgres::Object::take(client));
            }
        }
    }
}

/// Now, in Unix milliseconds.
fn now_ms() -> i64 {
    // A clock before 1970 is a broken host; 0 keeps the store working.
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// A non-finite ratio is refused (JSON cannot carry it), as SQLite's store does.
fn check_ratio(ratio: f64) -> Result<()> {
    if ratio.is_finite() {
        Ok(())
    } else {
        Err(Error::Backend(format!(
            "invalid value: enabled_ratio {ratio} is not a finite number"
        )))
    }
}

/// A page size or limit as SQL's `LIMIT` (i64; larger means "all").
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

const STORED_EXCHANGE_COLUMNS: &str =
    "name, kind, settings, sealed_credentials, created_at, updated_at";

fn stored_exchange_row(r: &Row) -> Result<StoredExchange> {
    const T: &str = "stored_exchanges";
    Ok(StoredExchange {
        name: col(r, 0, T)?,
        kind: col(r, 1, T)?,
        settings: col(r, 2, T)?,
        sealed_credentials: col(r, 3, T)?,
        created_at: col(r, 4, T)?,
        updated_at: col(r, 5, T)?,
    })
}

fn stored_exchange_in(tx: &mut Tx<'_>, name: &str) -> Result<Option<StoredExchange>> {
    tx.opt(
        &format!("SELECT {STORED_EXCHANGE_COLUMNS} FROM stored_exchanges WHERE name = $1"),
        &[&name],
    )?
    .map(|r| stored_exchange_row(&r))
    .transpose()
}

fn bank_in(tx: &mut Tx<'_>, id: BankId) -> Result<Option<Bank>> {
    tx.opt(
        &format!("SELECT {} FROM banks WHERE id = $1", row::BANK_COLUMNS),
        &[&id],
    )?
    .map(|r| row::bank(&r))
    .transpose()
}

fn require_bank(tx: &mut Tx<'_>, id: BankId) -> Result<Bank> {
    bank_in(tx, id)?.ok_or_else(|| Error::NotFound(format!("bank {id}")))
}

/// The signals of one content item, by signal type name.
fn signals_of(tx: &mut Tx<'_>, content_id: ContentId) -> Result<Vec<Signal>> {
    tx.query(
        &format!(
            "SELECT {} FROM signals WHERE content_id = $1 ORDER BY signal_type",
            row::SIGNAL_COLUMNS
        ),
        &[&content_id],
    )?
    .iter()
    .map(row::signal)
    .collect()
}

fn content_in(tx: &mut Tx<'_>, id: ContentId) -> Result<Option<Content>> {
    let Some(r) = tx.opt(
        &format!(
            "SELECT {} FROM contents WHERE id = $1",
            row::CONTENT_COLUMNS
        ),
        &[&id],
    )?
    else {
        return Ok(None);
    };
    let mut content = row::content(&r)?;
    content.signals = signals_of(tx, id)?;
    Ok(Some(content))
}

fn require_content(tx: &mut Tx<'_>, id: ContentId) -> Result<Content> {
    content_in(tx, id)?.ok_or_else(|| Error::NotFound(format!("content {id}")))
}

/// Inserts content items into one bank, each with its signals, provenance and feed rows.
fn insert_contents(
    tx: &mut Tx<'_>,
    bank_id: BankId,
    contents: &[NewContent],
) -> Result<Vec<Content>> {
    require_bank(tx, bank_id)?;
    let now = now_ms();
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
        let r = tx.one(
            "INSERT INTO contents (bank_id, metadata, note, disable_until_ts, \
             original_media_uri, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
             RETURNING id",
            &[
                &bank_id,
                &new.metadata,
                &new.note,
                &new.disable_until_ts,
                &new.original_media_uri,
                &now,
            ],
        )?;
        let content_id: i64 = col(&r, 0, "contents")?;
        let mut signals = Vec::with_capacity(new.signals.len());
        for (signal_type, value) in &new.signals {
            let r = tx.query_unique(
                "INSERT INTO signals (content_id, bank_id, signal_type, value) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[&content_id, &bank_id, signal_type, value],
                || format!("signal type {signal_type:?} given twice for one content item"),
            )?;
            let signal_id: i64 = r
                .first()
                .map(|r| col(r, 0, "signals"))
                .transpose()?
                .ok_or_else(|| Error::Backend("signal insert returned no id".into()))?;
            // Content added through the API is its own source, `api`: a hash a curator added
            // stays in matching when a hash list that also carried it withdraws it.
            tx.execute(
                "INSERT INTO provenance (bank_id, signal_type, value, source, first_seen, \
                 last_seen) VALUES ($1, $2, $3, 'api', $4, $4) \
                 ON CONFLICT (bank_id, sg_digest(signal_type), sg_digest(value), sg_digest(source)) DO UPDATE SET \
                 last_seen = excluded.last_seen, withdrawn_at = NULL",
                &[&bank_id, signal_type, value, &now],
            )?;
            let seq = tx.take_seqs(1)? + 1;
            tx.execute(
                "INSERT INTO changes (seq, kind, bank_id, content_id, signal_id, signal_type, \
                 value, at) VALUES ($1, 'added', $2, $3, $4, $5, $6, $7)",
                &[
                    &seq,
                    &bank_id,
                    &content_id,
                    &signal_id,
                    signal_type,
                    value,
                    &now,
                ],
            )?;
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
/// them: position `first + k` is `Added` of the signal with id `first_signal + k`. A signal
/// deleted since is read back from its `removed` feed row (which carries it), so a follower
/// sees exactly what a row-per-signal feed would have shown. Reads in chunks of
/// [`FETCH_ROWS`] ids. Returns the last position passed and how many changes were passed.
fn expand_range(
    tx: &mut Tx<'_>,
    after: Seq,
    last_seq: Seq,
    count: i64,
    first_signal: i64,
    limit: usize,
    f: &mut dyn FnMut(Seq, Change),
) -> Result<(Seq, usize)> {
    let first_seq = last_seq - count + 1;
    let from = (after + 1).max(first_seq);
    let end = (first_signal + count - 1)
        .min((first_signal + (from - first_seq)).saturating_add(sql_limit(limit)) - 1);
    let mut lo = first_signal + (from - first_seq);
    let mut passed = 0;
    let mut last = after;
    while lo <= end {
        let hi = end.min(lo.saturating_add(FETCH_ROWS) - 1);
        let live = tx.query(
            &format!(
                "SELECT {} FROM signals WHERE id BETWEEN $1 AND $2 ORDER BY id",
                row::SIGNAL_COLUMNS
            ),
            &[&lo, &hi],
        )?;
        let gone = tx.query(
            "SELECT signal_id, content_id, bank_id, signal_type, value FROM changes \
             WHERE kind = 'removed' AND signal_id BETWEEN $1 AND $2 ORDER BY signal_id",
            &[&lo, &hi],
        )?;
        let (mut live, mut gone) = (live.iter(), gone.iter());
        let (l, n) = merge_range(
            || live.next().map(row::signal).transpose(),
            || gone.next().map(row::signal).transpose(),
            first_seq,
            first_signal,
            last,
            f,
        )?;
        last = l;
        passed += n;
        // Every id of the range is a signal still there or one removed since.
        if i64::try_from(n).ok() != Some(hi - lo + 1) {
            return Err(Error::Corrupt(format!(
                "change {last_seq}: signals {lo} to {hi} of its range are neither stored nor \
                 removed"
            )));
        }
        lo = hi + 1;
    }
    Ok((last, passed))
}

fn feed_floor_in(tx: &mut Tx<'_>) -> Result<Seq> {
    let r = tx.one("SELECT floor FROM feed_position", &[])?;
    col(&r, 0, "feed_position")
}

fn last_seq_in(tx: &mut Tx<'_>) -> Result<Seq> {
    let r = tx.one("SELECT last_seq FROM feed_position", &[])?;
    col(&r, 0, "feed_position")
}

impl Store for PostgresStore {
    fn create_bank(&self, bank: &NewBank) -> Result<Bank> {
        check_ratio(bank.enabled_ratio)?;
        self.write(|tx| {
            let now = now_ms();
            let rows = tx.query_unique(
                "INSERT INTO banks (name, enabled, enabled_ratio, pdq_threshold, kind, \
                 created_at, updated_at, tags, classification) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8) RETURNING id",
                &[
                    &bank.name,
                    &bank.enabled,
                    &bank.enabled_ratio,
                    &i64::from(bank.pdq_threshold),
                    &bank.kind.as_str(),
                    &now,
                    &row::tags_to_text(&bank.tags),
                    &bank.classification,
                ],
                || format!("bank name {:?} is taken", bank.name),
            )?;
            let id: i64 = rows
                .first()
                .map(|r| col(r, 0, "banks"))
                .transpose()?
                .ok_or_else(|| Error::Backend("bank insert returned no id".into()))?;
            Ok(Bank {
                id,
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
            tx.opt(
                &format!("SELECT {} FROM banks WHERE name = $1", row::BANK_COLUMNS),
                &[&name],
            )?
            .map(|r| row::bank(&r))
            .transpose()
        })
    }

    fn bank(&self, id: BankId) -> Result<Option<Bank>> {
        self.read(|tx| bank_in(tx, id))
    }

    fn list_banks(&self) -> Result<Vec<Bank>> {
        self.read(|tx| {
            // COLLATE "C": byte order, as SQLite's BINARY collation sorts.
            tx.query(
                &format!(
                    "SELECT {} FROM banks ORDER BY name COLLATE \"C\"",
                    row::BANK_COLUMNS
                ),
                &[],
            )?
            .iter()
            .map(row::bank)
            .collect()
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
            tx.execute_unique(
                "UPDATE banks SET name = $2, enabled = $3, enabled_ratio = $4, \
                 pdq_threshold = $5, updated_at = $6, tags = $7, classification = $8 \
                 WHERE id = $1",
                &[
                    &id,
                    &bank.name,
                    &bank.enabled,
                    &bank.enabled_ratio,
                    &i64::from(bank.pdq_threshold),
                    &bank.updated_at,
                    &row::tags_to_text(&bank.tags),
                    &bank.classification,
                ],
                || format!("bank name {:?} is taken", bank.name),
            )?;
            tx.append_updated(id, None, bank.updated_at)?;
            Ok(bank)
        })
    }

    fn delete_bank(&self, id: BankId) -> Result<Bank> {
        self.write(|tx| {
            let bank = require_bank(tx, id)?;
            // Record every signal before the cascade removes it.
            tx.append_removed(
                "SELECT s.bank_id, s.content_id, s.id, s.signal_type, s.value \
                 FROM contents c JOIN signals s ON s.content_id = c.id WHERE c.bank_id = $1",
                id,
                now_ms(),
            )?;
            // No foreign keys on the bulk tables (migration 11): their rows go explicitly.
            tx.batch_params(
                &[
                    "DELETE FROM signals s USING contents c \
                     WHERE s.content_id = c.id AND c.bank_id = $1",
                    "DELETE FROM contents WHERE bank_id = $1",
                    "DELETE FROM provenance WHERE bank_id = $1",
                    "DELETE FROM banks WHERE id = $1",
                ],
                id,
            )?;
            Ok(bank)
        })
    }

    fn add_content(&self, bank_id: BankId, content: &NewContent) -> Result<Content> {
        let mut added =
            self.write(|tx| insert_contents(tx, bank_id, std::slice::from_ref(content)))?;
        added
            .pop()
            .ok_or_else(|| Error::Backend("insert returned no item".into()))
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
            let rows = tx.query(
                &format!(
                    "SELECT {} FROM contents WHERE bank_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                    row::CONTENT_COLUMNS
                ),
                &[&bank_id, &after.unwrap_or(i64::MIN), &sql_limit(limit)],
            )?;
            let mut out = rows.iter().map(row::content).collect::<Result<Vec<_>>>()?;
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
            tx.execute(
                "UPDATE contents SET metadata = $2, note = $3, disable_until_ts = $4, \
                 updated_at = $5 WHERE id = $1",
                &[
                    &id,
                    &content.metadata,
                    &content.note,
                    &content.disable_until_ts,
                    &content.updated_at,
                ],
            )?;
            tx.append_updated(content.bank_id, Some(id), content.updated_at)?;
            Ok(content)
        })
    }

    fn delete_content(&self, id: ContentId) -> Result<Content> {
        self.write(|tx| {
            let content = require_content(tx, id)?;
            tx.append_removed(
                "SELECT bank_id, content_id, id, signal_type, value FROM signals \
                 WHERE content_id = $1",
                id,
                now_ms(),
            )?;
            tx.batch_params(
                &[
                    "DELETE FROM signals WHERE content_id = $1",
                    "DELETE FROM contents WHERE id = $1",
                ],
                id,
            )?;
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
        // One statement has a snapshot of its own: no transaction needed. Followers call this
        // several times a second, so it skips BEGIN/COMMIT's round trips.
        let client = self.connection()?;
        let r = self
            .block_on(async {
                let st = client
                    .prepare_cached("SELECT last_seq FROM feed_position")
                    .await?;
                client.query_one(&st, &[]).await
            })
            .map_err(pg_err)?;
        col(&r, 0, "feed_position")
    }

    fn feed_floor(&self) -> Result<Seq> {
        self.read(feed_floor_in)
    }

    fn record_follower(&self, follower: &Follower) -> Result<()> {
        self.write_unlocked(|tx| {
            tx.execute(
                "INSERT INTO feed_followers (name, position, snapshot, seen_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET \
                 position = excluded.position, snapshot = excluded.snapshot, \
                 seen_at = excluded.seen_at",
                &[
                    &follower.name,
                    &follower.position,
                    &follower.snapshot,
                    &follower.seen_at,
                ],
            )?;
            Ok(())
        })
    }

    fn forget_followers(&self, silent_before: i64) -> Result<u64> {
        self.write_unlocked(|tx| {
            tx.execute(
                "DELETE FROM feed_followers WHERE seen_at < $1",
                &[&silent_before],
            )
        })
    }

    fn followers(&self) -> Result<Vec<Follower>> {
        self.read(|tx| {
            tx.query(
                "SELECT name, position, snapshot, seen_at FROM feed_followers ORDER BY name",
                &[],
            )?
            .iter()
            .map(|r| {
                const T: &str = "feed_followers";
                Ok(Follower {
                    name: col(r, 0, T)?,
                    position: col(r, 1, T)?,
                    snapshot: col(r, 2, T)?,
                    seen_at: col(r, 3, T)?,
                })
            })
            .collect()
        })
    }

    fn prune_feed(&self, below: Seq, older_than: i64, batch: u64) -> Result<Pruned> {
        let batch = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
        let mut deleted = 0u64;
        loop {
            // Under the write lock: the floor moves with the rows, and no writer appends
            // meanwhile. Each batch reads only its own rows (see `plan_prune`).
            let step = self.write(|tx| {
                let floor = feed_floor_in(tx)?;
                let end = below.min(tx.feed_position()? + 1);
                let rows = tx
                    .query(
                        "SELECT seq, at, coalesce(count, 1) FROM changes \
                         WHERE seq >= $1 AND seq < $2 ORDER BY seq LIMIT $3",
                        &[&floor, &end, &batch],
                    )?
                    .iter()
                    .map(|r| {
                        Ok((
                            col(r, 0, "changes")?,
                            col(r, 1, "changes")?,
                            col(r, 2, "changes")?,
                        ))
                    })
                    .collect::<Result<Vec<(Seq, i64, i64)>>>()?;
                let step = plan_prune(floor, end, &rows, batch, older_than);
                let n = tx.execute(
                    "DELETE FROM changes WHERE seq >= $1 AND seq < $2",
                    &[&floor, &step.delete_below],
                )?;
                tx.execute(
                    "UPDATE feed_position SET floor = GREATEST(floor, $1)",
                    &[&step.floor],
                )?;
                Ok(PruneStep { deleted: n, ..step })
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
        let mut tx = Tx::begin(self, false)?;
        let floor = feed_floor_in(&mut tx)?;
        if after < floor - 1 {
            return Err(Error::FeedPruned { after, floor });
        }
        let mut last = after;
        let mut passed = 0usize;
        'pages: while passed < limit {
            let want = sql_limit(limit - passed).min(FETCH_ROWS);
            let rows = tx.query(
                &format!(
                    "SELECT {} FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                    row::CHANGE_COLUMNS
                ),
                &[&last, &want],
            )?;
            let got = rows.len();
            for r in &rows {
                if passed >= limit {
                    break 'pages;
                }
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
                            &mut tx,
                            last,
                            last_seq,
                            count,
                            first_signal,
                            limit - passed,
                            f,
                        )?;
                        last = l;
                        passed += n;
                        if l < last_seq {
                            if passed >= limit {
                                break 'pages;
                            }
                            return Err(Error::Corrupt(format!(
                                "change {last_seq}: range of {count} from signal \
                                 {first_signal} stops at {l}"
                            )));
                        }
                    }
                }
            }
            if i64::try_from(got).unwrap_or(i64::MAX) < want {
                break;
            }
        }
        tx.commit()?;
        Ok(last)
    }

    fn scan_signals(&self, f: &mut dyn FnMut(&Signal)) -> Result<Seq> {
        // One snapshot: the seq and every row are of the same moment. The rows stream out
        // with one binary `COPY`: no pages to re-plan, and integers as 8 bytes each instead
        // of text to parse (docs/performance.md, "Index build from PostgreSQL").
        let mut tx = Tx::begin(self, false)?;
        let seq = last_seq_in(&mut tx)?;
        let mut signal = Signal {
            id: 0,
            content_id: 0,
            bank_id: 0,
            signal_type: String::new(),
            value: String::new(),
        };
        // The callback runs between chunks, outside any driver call, as everywhere in this
        // store (it may call the store again).
        use futures_util::StreamExt;
        use tokio_postgres::binary_copy::BinaryCopyOutStream;
        use tokio_postgres::types::Type;
        let sql = format!(
            "COPY (SELECT {} FROM signals ORDER BY id) TO STDOUT (FORMAT binary)",
            row::SIGNAL_COLUMNS
        );
        let out = self
            .block_on(tx.client().copy_out(sql.as_str()))
            .map_err(pg_err)?;
        let mut rows = Box::pin(BinaryCopyOutStream::new(
            out,
            &[Type::INT8, Type::INT8, Type::INT8, Type::TEXT, Type::TEXT],
        ));
        let chunk_rows = usize::try_from(FETCH_ROWS).unwrap_or(10_000);
        let mut chunk = Vec::with_capacity(chunk_rows);
        loop {
            chunk.clear();
            let more = self.block_on(async {
                while chunk.len() < chunk_rows {
                    match rows.next().await {
                        Some(r) => chunk.push(r.map_err(pg_err)?),
                        None => return Ok::<_, Error>(false),
                    }
                }
                Ok(true)
            })?;
            for r in &chunk {
                row::copied_signal_into(r, &mut signal)?;
                f(&signal);
            }
            if !more {
                break;
            }
        }
        drop(rows);
        tx.commit()?;
        Ok(seq)
    }

    fn disabled_contents(&self) -> Result<Vec<(ContentId, i64)>> {
        self.read(|tx| {
            tx.query(
                "SELECT id, disable_until_ts FROM contents WHERE disable_until_ts <> 0 \
                 ORDER BY id",
                &[],
            )?
            .iter()
            .map(|r| Ok((col(r, 0, "contents")?, col(r, 1, "contents")?)))
            .collect()
        })
    }

    fn counts(&self) -> Result<Counts> {
        self.read(|tx| {
            let mut count = |sql: &str| -> Result<u64> {
                let r = tx.one(sql, &[])?;
                let n: i64 = col(&r, 0, "count")?;
                u64::try_from(n).map_err(|_| Error::Corrupt(format!("negative count from {sql}")))
            };
            let banks = count("SELECT count(*) FROM banks")?;
            let contents = count("SELECT count(*) FROM contents")?;
            let signals = tx
                .query(
                    "SELECT signal_type, count(*) FROM signals GROUP BY signal_type \
                     ORDER BY signal_type COLLATE \"C\"",
                    &[],
                )?
                .iter()
                .map(|r| {
                    let n: i64 = col(r, 1, "signals")?;
                    Ok((col(r, 0, "signals")?, u64::try_from(n).unwrap_or_default()))
                })
                .collect::<Result<Vec<_>>>()?;
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
            let rows = tx.query_unique(
                "INSERT INTO api_keys (key_id, name, secret_sha256, scopes, created_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&key.key_id, &key.name, &key.secret_sha256, &scopes, &now],
                || format!("api key id {:?} is taken", key.key_id),
            )?;
            let id: i64 = rows
                .first()
                .map(|r| col(r, 0, "api_keys"))
                .transpose()?
                .ok_or_else(|| Error::Backend("key insert returned no id".into()))?;
            Ok(ApiKey {
                id,
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
            tx.opt(
                &format!(
                    "SELECT {} FROM api_keys WHERE key_id = $1",
                    row::API_KEY_COLUMNS
                ),
                &[&key_id],
            )?
            .map(|r| row::api_key(&r))
            .transpose()
        })
    }

    fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        self.read(|tx| {
            tx.query(
                &format!("SELECT {} FROM api_keys ORDER BY id", row::API_KEY_COLUMNS),
                &[],
            )?
            .iter()
            .map(row::api_key)
            .collect()
        })
    }

    fn revoke_api_key(&self, key_id: &str) -> Result<()> {
        self.write(|tx| {
            // Revoking twice keeps the first time: that is when the key stopped being trusted.
            let changed = tx.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE key_id = $1",
                &[&key_id, &now_ms()],
            )?;
            if changed == 0 {
                return Err(Error::NotFound(format!("api key {key_id:?}")));
            }
            Ok(())
        })
    }

    fn import_source(
        &self,
        bank_id: BankId,
        import: &SourceImport<'_>,
        feed: &mut dyn FnMut(&mut dyn SourceSink) -> Result<()>,
    ) -> Result<BatchOutcome> {
        let mut tx = Tx::begin(self, true)?;
        let out = source::import(&mut tx, bank_id, import, feed)?;
        tx.commit()?;
        Ok(out)
    }

    fn diff_source(
        &self,
        bank_id: BankId,
        feed: &mut dyn FnMut(&mut dyn SourceSink) -> Result<()>,
        list: bool,
        show: &mut dyn FnMut(DiffSide, &str, &str),
    ) -> Result<DiffOutcome> {
        // A read-write transaction (the staging tables are written) without the write lock,
        // rolled back (dropped uncommitted), so a diff never changes the store.
        let client = self.connection()?;
        let mut tx = Tx {
            store: self,
            client: Some(client),
            open: false,
            feed: None,
            fed: false,
        };
        tx.batch("BEGIN ISOLATION LEVEL REPEATABLE READ")?;
        tx.open = true;
        let out = source::diff(&mut tx, bank_id, feed, list, show);
        drop(tx);
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
        let mut tx = Tx::begin(self, false)?;
        source::scan_bank(&mut tx, bank_id, f)?;
        tx.commit()
    }

    fn exchange_state(&self, name: &str) -> Result<Option<ExchangeState>> {
        self.read(|tx| source::exchange_state(tx, name))
    }

    fn list_exchange_states(&self) -> Result<Vec<ExchangeState>> {
        self.read(source::list_exchange_states)
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
            tx.execute_unique(
                "INSERT INTO stored_exchanges
                     (name, kind, settings, sealed_credentials, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $5)",
                &[&x.name, &x.kind, &x.settings, &x.sealed_credentials, &now],
                || format!("exchange {:?} exists", x.name),
            )?;
            stored_exchange_in(tx, &x.name)?
                .ok_or_else(|| Error::Corrupt("stored exchange vanished".into()))
        })
    }

    fn stored_exchange(&self, name: &str) -> Result<Option<StoredExchange>> {
        self.read(|tx| stored_exchange_in(tx, name))
    }

    fn list_stored_exchanges(&self) -> Result<Vec<StoredExchange>> {
        self.read(|tx| {
            tx.query(
                &format!(
                    "SELECT {STORED_EXCHANGE_COLUMNS} FROM stored_exchanges \
                     ORDER BY name COLLATE \"C\""
                ),
                &[],
            )?
            .iter()
            .map(stored_exchange_row)
            .collect()
        })
    }

    fn update_stored_exchange(&self, x: &StoredExchange) -> Result<StoredExchange> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE stored_exchanges
                 SET kind = $2, settings = $3, sealed_credentials = $4, updated_at = $5
                 WHERE name = $1",
                &[
                    &x.name,
                    &x.kind,
                    &x.settings,
                    &x.sealed_credentials,
                    &now_ms(),
                ],
            )?;
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
            tx.execute("DELETE FROM stored_exchanges WHERE name = $1", &[&name])?;
            tx.execute("DELETE FROM exchanges WHERE name = $1", &[&name])?;
            Ok(x)
        })
    }

    fn wait_for_changes(&self, after: Seq, timeout: Duration) -> Result<bool> {
        self.listener.wait(after, timeout, || self.last_seq())
    }
}
