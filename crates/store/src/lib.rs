//! Durable storage for Safeguard behind one trait, [`Store`].
//!
//! Every implementation must pass the shared conformance suite in `conformance` (feature
//! `test-support`; run it from the implementation's tests). The in-memory indexes are rebuilt
//! from, and kept equal to, the store through its change feed ([`Store::changes_since`]):
//! every write appends to the feed in the same transaction, so a crash can never leave the
//! indexes and the store disagreeing after a restart.

#![forbid(unsafe_code)]

// Test support only (feature `test-support`): the suite is 2,000 lines the binary never runs.
pub mod account;
#[cfg(feature = "test-support")]
pub mod account_conformance;
pub mod action;
#[cfg(feature = "test-support")]
pub mod action_conformance;
pub mod audit;
#[cfg(feature = "test-support")]
pub mod audit_conformance;
#[cfg(feature = "test-support")]
pub mod conformance;
pub mod console;
#[cfg(feature = "test-support")]
pub mod console_conformance;
mod model;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(all(feature = "postgres", feature = "test-support"))]
pub mod postgres_testing;
pub mod report;
#[cfg(feature = "test-support")]
pub mod report_conformance;
pub mod scan;
#[cfg(feature = "test-support")]
pub mod scan_conformance;
mod sqlite;

pub use account::AccountStore;
pub use action::ActionStore;
pub use audit::AuditStore;
pub use console::ConsoleStore;
pub use model::*;
#[cfg(feature = "postgres")]
pub use postgres::{
    is_postgres_url, redact, PostgresOptions, PostgresStore, CHANGES_CHANNEL,
    DEFAULT_MAX_CONNECTIONS, WRITE_LOCK_KEY,
};
pub use report::ReportStore;
pub use scan::ScanStore;
pub use sqlite::{SqliteOptions, SqliteStore};

/// Errors of a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bank, content item or key does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A unique name or value is taken (bank name, duplicate signal type on one item, key id).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend failed (I/O, lock timeout, disk full). Detail for the log, not the client.
    #[error("storage backend error: {0}")]
    Backend(String),
    /// Stored data failed a consistency check (schema version, unreadable row).
    #[error("storage corrupt: {0}")]
    Corrupt(String),
    /// The caller's feed of an import failed (its own error says why); nothing was written.
    #[error("import aborted by the caller")]
    Aborted,
    /// The change feed after `after` was pruned: it starts at `floor`. The reader rebuilds
    /// from [`Store::scan_signals`] instead of following.
    #[error("change feed pruned: asked for changes after {after}, the feed starts at {floor}")]
    FeedPruned {
        /// The position the reader asked to follow from.
        after: Seq,
        /// The first position the feed still holds.
        floor: Seq,
    },
}

/// Result of a store call.
pub type Result<T> = std::result::Result<T, Error>;

/// Durable storage. All methods are blocking and thread-safe; async callers run them on a
/// blocking pool. Every successful write is durable when the call returns.
///
/// Every store also keeps the records of acting on matches ([`ActionStore`]), in the same
/// database, so a verdict and the events describing it commit together, and the accounts
/// and relationships contact decisions read ([`AccountStore`]), and the review console's
/// users, leases and exposure records ([`ConsoleStore`]), so a claim moves its case and takes
/// its lease in one transaction, and backfill scans' jobs and results ([`ScanStore`]).
pub trait Store:
    ActionStore
    + AccountStore
    + AuditStore
    + ConsoleStore
    + ReportStore
    + ScanStore
    + Send
    + Sync
    + std::fmt::Debug
{
    /// Creates a bank. `Conflict` if the name is taken.
    fn create_bank(&self, bank: &NewBank) -> Result<Bank>;
    /// The bank with this name.
    fn bank_by_name(&self, name: &str) -> Result<Option<Bank>>;
    /// The bank with this id.
    fn bank(&self, id: BankId) -> Result<Option<Bank>>;
    /// All banks, by name.
    fn list_banks(&self) -> Result<Vec<Bank>>;
    /// Changes a bank (and appends `Change::Updated{content_id: None}`). `NotFound`,
    /// `Conflict` on a taken name.
    fn update_bank(&self, id: BankId, update: &BankUpdate) -> Result<Bank>;
    /// Deletes a bank with all its content and signals (each signal appended as
    /// `Change::Removed`). Returns the bank as it was. `NotFound`.
    fn delete_bank(&self, id: BankId) -> Result<Bank>;

    /// Adds a content item and its signals (each appended as `Change::Added`), atomically.
    /// `NotFound` for an unknown bank; `Conflict` for two values of one signal type.
    fn add_content(&self, bank_id: BankId, content: &NewContent) -> Result<Content>;
    /// Adds many content items to one bank in one transaction (all or nothing).
    fn add_contents(&self, bank_id: BankId, contents: &[NewContent]) -> Result<Vec<Content>>;
    /// The content item with this id, with its signals.
    fn content(&self, id: ContentId) -> Result<Option<Content>>;
    /// A page of a bank's content, by ascending id, starting after `after`.
    fn list_content(
        &self,
        bank_id: BankId,
        after: Option<ContentId>,
        limit: usize,
    ) -> Result<Vec<Content>>;
    /// Changes a content item (appends `Change::Updated` with the item). `NotFound`.
    fn update_content(&self, id: ContentId, update: &ContentUpdate) -> Result<Content>;
    /// Deletes a content item and its signals (each appended as `Change::Removed`). Returns the
    /// item as it was. `NotFound`.
    fn delete_content(&self, id: ContentId) -> Result<Content>;
    /// Content items with these ids (missing ids are skipped), for enriching match results.
    fn contents(&self, ids: &[ContentId]) -> Result<Vec<Content>>;

    /// The last sequence number of the change feed (0 when empty).
    fn last_seq(&self) -> Result<Seq>;
    /// Calls `f` for each change with sequence number greater than `after`, in order, up to
    /// `limit` changes. Returns the sequence number of the last change passed (or `after`).
    /// [`Error::FeedPruned`] when changes after `after` were pruned ([`Store::feed_floor`]).
    fn changes_since(
        &self,
        after: Seq,
        limit: usize,
        f: &mut dyn FnMut(Seq, Change),
    ) -> Result<Seq>;
    /// The first feed position [`Store::changes_since`] can still serve: `after` must be at
    /// least `feed_floor() - 1`. 1 for a feed never pruned; after [`Store::prune_feed`] the
    /// position it pruned to.
    fn feed_floor(&self) -> Result<Seq>;
    /// Records where a follower of the feed (a serving process) stands: the position it has
    /// applied and the position of the snapshot it would restart from. Pruning keeps what
    /// the slowest live follower still needs (see [`Store::prune_feed`]).
    fn record_follower(&self, follower: &Follower) -> Result<()>;
    /// Every recorded follower, by name.
    fn followers(&self) -> Result<Vec<Follower>>;
    /// Deletes the followers last seen before `silent_before` (Unix ms) and answers how many:
    /// those no pruning waits for any more, which would otherwise stay for ever, one for every
    /// process that ever followed the feed.
    fn forget_followers(&self, silent_before: i64) -> Result<u64>;
    /// Deletes feed rows below `below` whose change is older than `older_than` (Unix ms), in
    /// batches of at most `batch` rows per transaction so other writers are not held up, and
    /// moves the floor up to the first position kept. Never prunes past the last position,
    /// never moves the floor down. A follower reading below the floor afterwards gets
    /// [`Error::FeedPruned`] and must rebuild from [`Store::scan_signals`].
    fn prune_feed(&self, below: Seq, older_than: i64, batch: u64) -> Result<Pruned>;
    /// Calls `f` for every stored signal (in id order) as of one consistent moment, and
    /// returns that moment's `last_seq`: a reader that loads this and then follows
    /// `changes_since(returned)` sees every change exactly once.
    fn scan_signals(&self, f: &mut dyn FnMut(&Signal)) -> Result<Seq>;
    /// Content items whose `disable_until_ts` is non-zero, as (id, disable_until_ts): the
    /// matcher keeps them in memory to filter matches.
    fn disabled_contents(&self) -> Result<Vec<(ContentId, i64)>>;
    /// Row counts.
    fn counts(&self) -> Result<Counts>;

    /// Stores an API key. `Conflict` if the key id is taken.
    fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKey>;
    /// The key with this public key id (revoked keys included; the caller checks).
    fn api_key(&self, key_id: &str) -> Result<Option<ApiKey>>;
    /// All keys, by id.
    fn list_api_keys(&self) -> Result<Vec<ApiKey>>;
    /// Revokes a key. `NotFound`.
    fn revoke_api_key(&self, key_id: &str) -> Result<()>;

    /// Applies one batch of a source in ONE transaction: upserts (new hashes become content
    /// items with one signal; known ones get their provenance refreshed), then removals
    /// (the source's provenance record is marked withdrawn; a signal whose records are all
    /// withdrawn leaves matching, and its records stay), then the checkpoint and
    /// `last_success_at`. `NotFound` for an unknown bank.
    fn apply_source_batch(&self, bank_id: BankId, batch: &SourceBatch<'_>) -> Result<BatchOutcome> {
        self.import_source(
            bank_id,
            &SourceImport {
                source: batch.source,
                seen_at: batch.seen_at,
                checkpoint: batch.checkpoint,
                complete: false,
            },
            &mut |sink| {
                for e in batch.upserts {
                    sink.upsert(e)?;
                }
                for r in batch.removals {
                    sink.remove(r)?;
                }
                Ok(())
            },
        )
    }
    /// The streaming form of [`Store::apply_source_batch`]: `feed` pushes every entry into
    /// the sink inside the transaction, so an import of any size is one all-or-nothing write
    /// with memory bounded by the store, not by the import. An error from `feed` rolls back
    /// everything and is returned as is.
    fn import_source(
        &self,
        bank_id: BankId,
        import: &SourceImport<'_>,
        feed: &mut dyn FnMut(&mut dyn SourceSink) -> Result<()>,
    ) -> Result<BatchOutcome>;
    /// Compares the entries `feed` pushes (removals are ignored) with the bank, writing
    /// nothing. `show` is called for each hash on one side only, when `list` is true.
    fn diff_source(
        &self,
        bank_id: BankId,
        feed: &mut dyn FnMut(&mut dyn SourceSink) -> Result<()>,
        list: bool,
        show: &mut dyn FnMut(DiffSide, &str, &str),
    ) -> Result<DiffOutcome>;
    /// Every provenance record of one hash in one bank (withdrawn ones included), by source.
    fn provenance(
        &self,
        bank_id: BankId,
        signal_type: &str,
        value: &str,
    ) -> Result<Vec<Provenance>>;
    /// The provenance records (withdrawn ones included, by source) of each signal, found by
    /// its row id in its bank, in one snapshot: what a match needs without reading its content
    /// first. An empty list for a signal that no longer exists (or has no record).
    fn signals_provenance(&self, signals: &[(BankId, SignalId)]) -> Result<Vec<Vec<Provenance>>>;
    /// Calls `f` for each signal of a bank (in id order) with its active provenance records,
    /// as of one consistent moment. `NotFound` for an unknown bank.
    fn scan_bank(&self, bank_id: BankId, f: &mut dyn FnMut(&Signal, &[Provenance])) -> Result<()>;
    /// The stored state of one exchange.
    fn exchange_state(&self, name: &str) -> Result<Option<ExchangeState>>;
    /// Every exchange's state, by name.
    fn list_exchange_states(&self) -> Result<Vec<ExchangeState>>;
    /// Records a failed fetch (creating the exchange's state if needed). `NotFound` for an
    /// unknown bank.
    fn record_exchange_error(
        &self,
        name: &str,
        bank_id: BankId,
        error: &str,
        at: i64,
    ) -> Result<()>;

    /// Stores an exchange created through the API (`created_at`/`updated_at` are set by the
    /// store). `Conflict` if the name is taken.
    fn create_stored_exchange(&self, exchange: &StoredExchange) -> Result<StoredExchange>;
    /// The stored exchange with this name.
    fn stored_exchange(&self, name: &str) -> Result<Option<StoredExchange>>;
    /// Every stored exchange, by name.
    fn list_stored_exchanges(&self) -> Result<Vec<StoredExchange>>;
    /// Replaces a stored exchange's kind, settings and credentials (keeps `created_at`).
    /// `NotFound`.
    fn update_stored_exchange(&self, exchange: &StoredExchange) -> Result<StoredExchange>;
    /// Deletes a stored exchange and, in the same transaction, its fetch state (checkpoint,
    /// last success and error), so that a new exchange of the same name starts afresh. The
    /// bank it filled and its content stay. Returns it as it was. `NotFound`.
    fn delete_stored_exchange(&self, name: &str) -> Result<StoredExchange>;

    /// Waits until the change feed is past `after` (another process, or this one, wrote) or
    /// `timeout` has passed; returns whether it is past `after` now. A follower calls it in a
    /// loop and then reads [`Store::changes_since`]. The default sleeps out the timeout and
    /// then reads [`Store::last_seq`] once: a poll at the caller's interval (SQLite).
    /// PostgreSQL wakes up early on the feed's notifications (`LISTEN`/`NOTIFY`), still
    /// confirming with `last_seq`, so a lost notification costs latency, never a change.
    fn wait_for_changes(&self, after: Seq, timeout: std::time::Duration) -> Result<bool> {
        if self.last_seq()? > after {
            return Ok(true);
        }
        std::thread::sleep(timeout);
        Ok(self.last_seq()? > after)
    }
}
