//! The records a [`crate::Store`] keeps. Plain data: validation of names and values is the
//! engine's job; the store enforces only integrity (uniqueness, existence).

/// Row id of a bank.
pub type BankId = i64;
/// Row id of a bank content item (global across banks, as in HMA).
pub type ContentId = i64;
/// Row id of a signal; also the id the in-memory indexes use for it.
pub type SignalId = i64;
/// Position in the change feed (strictly increasing, never reused).
pub type Seq = i64;

/// What a bank's matches mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BankKind {
    /// Known harmful content: matches are reported.
    Standard,
    /// Known benign content: a match here suppresses matches from other banks.
    AllowList,
    /// Known child sexual abuse material (a hotline's list): like `Standard` for matching;
    /// the default policy blocks its matches and makes them report candidates.
    Csam,
}

impl BankKind {
    /// Stable name, as stored and as shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            BankKind::Standard => "standard",
            BankKind::AllowList => "allow_list",
            BankKind::Csam => "csam",
        }
    }

    /// Parses [`BankKind::as_str`].
    pub fn parse(s: &str) -> Option<BankKind> {
        match s {
            "standard" => Some(BankKind::Standard),
            "allow_list" => Some(BankKind::AllowList),
            "csam" => Some(BankKind::Csam),
            _ => None,
        }
    }
}

/// A bank of hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct Bank {
    /// Row id.
    pub id: BankId,
    /// Unique name (UPPER_SNAKE_CASE, checked by the engine).
    pub name: String,
    /// Whether the bank takes part in matching at all.
    pub enabled: bool,
    /// Share of lookups (0.0..=1.0) in which the bank takes part (HMA's gradual roll-out).
    pub enabled_ratio: f64,
    /// Largest PDQ distance that counts as a match for this bank.
    pub pdq_threshold: u32,
    /// Standard, allow-list or CSAM.
    pub kind: BankKind,
    /// Operator's labels, for policy rules (`bank_tags`); validated by the engine.
    pub tags: Vec<String>,
    /// Default classification of the bank's hashes (for example `A1`) when a hash carries
    /// none of its own; validated by the engine.
    pub classification: Option<String>,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Last change, Unix milliseconds.
    pub updated_at: i64,
}

/// A bank to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBank {
    /// Unique name.
    pub name: String,
    /// See [`Bank::enabled`].
    pub enabled: bool,
    /// See [`Bank::enabled_ratio`].
    pub enabled_ratio: f64,
    /// See [`Bank::pdq_threshold`].
    pub pdq_threshold: u32,
    /// See [`Bank::kind`].
    pub kind: BankKind,
    /// See [`Bank::tags`].
    pub tags: Vec<String>,
    /// See [`Bank::classification`].
    pub classification: Option<String>,
}

/// Changes to a bank; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BankUpdate {
    /// New unique name.
    pub name: Option<String>,
    /// See [`Bank::enabled`].
    pub enabled: Option<bool>,
    /// See [`Bank::enabled_ratio`].
    pub enabled_ratio: Option<f64>,
    /// See [`Bank::pdq_threshold`].
    pub pdq_threshold: Option<u32>,
    /// See [`Bank::tags`].
    pub tags: Option<Vec<String>>,
    /// See [`Bank::classification`]; `Some(None)` clears it.
    pub classification: Option<Option<String>>,
}

/// One hash of one content item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// Row id (also the index id).
    pub id: SignalId,
    /// The content item it belongs to.
    pub content_id: ContentId,
    /// The bank of that content item.
    pub bank_id: BankId,
    /// Signal type name (`pdq`, `md5`, `sha1`, `sha256`, ...), normalised by the engine.
    pub signal_type: String,
    /// The value, normalised by the engine (lower-case hex for hashes).
    pub value: String,
}

/// A bank content item: one piece of known content and its signals.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    /// Row id.
    pub id: ContentId,
    /// Its bank.
    pub bank_id: BankId,
    /// Free-form JSON metadata (stored as text, validated by the engine).
    pub metadata: Option<String>,
    /// Free-form note.
    pub note: Option<String>,
    /// Unix seconds until which the item is excluded from matching; 0 = enabled. HMA's
    /// sentinel for "disabled forever" is a far-future value, stored as is.
    pub disable_until_ts: i64,
    /// Where the original media came from, if known.
    pub original_media_uri: Option<String>,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Last change, Unix milliseconds.
    pub updated_at: i64,
    /// Its signals, by signal type name.
    pub signals: Vec<Signal>,
}

/// A content item to add, with its signals (at most one value per signal type).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewContent {
    /// See [`Content::metadata`].
    pub metadata: Option<String>,
    /// See [`Content::note`].
    pub note: Option<String>,
    /// See [`Content::disable_until_ts`].
    pub disable_until_ts: i64,
    /// See [`Content::original_media_uri`].
    pub original_media_uri: Option<String>,
    /// (signal type, value) pairs.
    pub signals: Vec<(String, String)>,
}

/// Changes to a content item; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContentUpdate {
    /// New metadata (`Some(None)` clears it).
    pub metadata: Option<Option<String>>,
    /// New note (`Some(None)` clears it).
    pub note: Option<Option<String>>,
    /// New disable-until time.
    pub disable_until_ts: Option<i64>,
}

/// One entry of the change feed that keeps the in-memory indexes equal to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A signal became part of the store.
    Added(Signal),
    /// A signal left the store (its content or bank was deleted).
    Removed(Signal),
    /// A content item's matching state changed (`disable_until_ts`), or a bank's settings
    /// changed (then `content_id` is `None`): consumers re-read what they cache.
    Updated {
        /// The bank concerned.
        bank_id: BankId,
        /// The content item concerned, if the change is about one item.
        content_id: Option<ContentId>,
    },
}

/// An API key as stored: never the secret itself, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Row id.
    pub id: i64,
    /// Public identifier embedded in the key (looked up, then the secret hash is compared).
    pub key_id: String,
    /// Human label.
    pub name: String,
    /// SHA-256 of the full key, lower-case hex.
    pub secret_sha256: String,
    /// Scope names.
    pub scopes: Vec<String>,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Revocation time, Unix milliseconds, if revoked.
    pub revoked_at: Option<i64>,
}

/// An API key to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// See [`ApiKey::key_id`].
    pub key_id: String,
    /// See [`ApiKey::name`].
    pub name: String,
    /// See [`ApiKey::secret_sha256`].
    pub secret_sha256: String,
    /// See [`ApiKey::scopes`].
    pub scopes: Vec<String>,
}

/// Where one follower of the change feed stands ([`crate::Store::record_follower`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follower {
    /// Unique per data directory (where the process's snapshot lives): its host and an id
    /// kept in the data directory.
    pub name: String,
    /// The last feed position it has applied.
    pub position: Seq,
    /// The position of the snapshot it would restart from, if it keeps one. A follower
    /// needs the feed from the lower of the two.
    pub snapshot: Option<Seq>,
    /// When it last reported (Unix ms); followers silent for longer than the pruner's
    /// time-to-live no longer hold the feed back.
    pub seen_at: i64,
}

impl Follower {
    /// The lowest position this follower may still read from.
    pub fn needs_from(&self) -> Seq {
        self.snapshot
            .map_or(self.position, |s| s.min(self.position))
    }
}

/// What [`crate::Store::prune_feed`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Feed rows deleted.
    pub deleted: u64,
    /// The feed's floor afterwards ([`crate::Store::feed_floor`]).
    pub floor: Seq,
}

/// One row of the change feed as both stores keep it.
pub(crate) enum FeedRow {
    /// A row that is one change.
    One(Seq, crate::Change),
    /// An `added_range` row: `count` signals with consecutive ids from `first_signal`, at
    /// consecutive positions ending at `last_seq`.
    Range {
        last_seq: Seq,
        count: i64,
        first_signal: i64,
    },
}

/// The columns of one feed row (`seq, kind, bank_id, content_id, signal_id, signal_type,
/// value, count`), as read by either store.
pub(crate) struct FeedColumns {
    pub seq: Seq,
    pub kind: String,
    pub bank_id: i64,
    pub content_id: Option<i64>,
    pub signal_id: Option<i64>,
    pub signal_type: Option<String>,
    pub value: Option<String>,
    pub count: Option<i64>,
}

impl FeedColumns {
    /// The row these columns make, checked: every kind carries what it needs.
    pub(crate) fn into_row(self) -> crate::Result<FeedRow> {
        use crate::{Change, Error};
        let FeedColumns {
            seq,
            kind,
            bank_id,
            content_id,
            signal_id,
            signal_type,
            value,
            count,
        } = self;
        let missing = || Error::Corrupt(format!("change {seq}: {kind} without its signal"));
        match kind.as_str() {
            "updated" => Ok(FeedRow::One(
                seq,
                Change::Updated {
                    bank_id,
                    content_id,
                },
            )),
            "added_range" => Ok(FeedRow::Range {
                last_seq: seq,
                count: count.filter(|&c| c >= 1 && c <= seq).ok_or_else(missing)?,
                first_signal: signal_id.ok_or_else(missing)?,
            }),
            "added" | "removed" => {
                let signal = Signal {
                    id: signal_id.ok_or_else(missing)?,
                    content_id: content_id.ok_or_else(missing)?,
                    bank_id,
                    signal_type: signal_type.ok_or_else(missing)?,
                    value: value.ok_or_else(missing)?,
                };
                Ok(FeedRow::One(
                    seq,
                    if kind == "added" {
                        Change::Added(signal)
                    } else {
                        Change::Removed(signal)
                    },
                ))
            }
            _ => Err(Error::Corrupt(format!(
                "change {seq}: unknown kind {kind:?}"
            ))),
        }
    }
}

/// Passes the changes of one `added_range` row's signal ids in order, merging the signals
/// still stored with those deleted since (read back from their `removed` feed rows, which
/// carry them), each read in id order by the store: position `first_seq + k` is `Added` of the
/// signal with id `first_signal + k`, so a follower sees what a row-per-signal feed would have
/// shown. Returns the last position passed (`last` if none) and how many were passed.
pub(crate) fn merge_range(
    mut next_live: impl FnMut() -> crate::Result<Option<Signal>>,
    mut next_gone: impl FnMut() -> crate::Result<Option<Signal>>,
    first_seq: Seq,
    first_signal: i64,
    mut last: Seq,
    f: &mut dyn FnMut(Seq, crate::Change),
) -> crate::Result<(Seq, usize)> {
    let mut live = next_live()?;
    let mut gone = next_gone()?;
    let mut passed = 0;
    loop {
        let take_live = match (&live, &gone) {
            (Some(l), Some(g)) => l.id <= g.id,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        // The match above returned true only when `live` is Some, false only when `gone` is.
        let signal = if take_live {
            std::mem::replace(&mut live, next_live()?).expect("live row present")
        } else {
            std::mem::replace(&mut gone, next_gone()?).expect("removed row present")
        };
        let seq = first_seq + (signal.id - first_signal);
        f(seq, crate::Change::Added(signal));
        last = seq;
        passed += 1;
    }
    Ok((last, passed))
}

/// One batch of [`crate::Store::prune_feed`], planned from the batch's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PruneStep {
    /// Delete the rows with positions from the floor up to (not including) this.
    pub delete_below: Seq,
    /// The floor afterwards.
    pub floor: Seq,
    /// Whether pruning is finished.
    pub done: bool,
    /// Rows deleted (filled in by the store).
    pub deleted: u64,
}

/// Plans one pruning batch. `rows` are the first `batch` feed rows from `floor` below `end`
/// (the caller's position, or the end of the feed), as (seq, at, count): a row stands for
/// positions `seq - count + 1 ..= seq`. The first row at least as young as `older_than`
/// stops pruning at its first position, so every young change stays readable. A row needs no
/// index on `at`: each batch reads only its own rows.
pub(crate) fn plan_prune(
    floor: Seq,
    end: Seq,
    rows: &[(Seq, i64, i64)],
    batch: i64,
    older_than: i64,
) -> PruneStep {
    let step = |delete_below: Seq, new_floor: Seq, done: bool| PruneStep {
        delete_below,
        floor: new_floor.max(floor),
        done,
        deleted: 0,
    };
    if end <= floor {
        return step(floor, floor, true);
    }
    if let Some(&(seq, _, count)) = rows.iter().find(|r| r.1 >= older_than) {
        let first = seq - count.max(1) + 1;
        return step(first.max(floor), first, true);
    }
    match rows.last() {
        // Fewer rows than a batch: nothing else lies below the end.
        Some(&(seq, _, _)) if (rows.len() as i64) >= batch => step(seq + 1, seq + 1, false),
        _ => step(end, end, true),
    }
}

/// Row counts, for status pages and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Banks.
    pub banks: u64,
    /// Content items.
    pub contents: u64,
    /// Signals per signal type name, sorted by name.
    pub signals: Vec<(String, u64)>,
}

/// One hash as a source lists it, for [`crate::Store::apply_source_batch`] and
/// [`crate::Store::import_source`]. Identity within a bank is `(signal_type, value)`: the same
/// hash from two sources is one signal with two provenance records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceEntry {
    /// Canonical signal type name (the engine resolves aliases first).
    pub signal_type: String,
    /// The value, already normalised by the engine.
    pub value: String,
    /// The entry's id at the source (an NCMEC entry id, a licensed list's row id), if any.
    pub source_id: Option<String>,
    /// The source's classification or grade (NCMEC `A1`..`B2`, IWF `A`/`B`/`C`), if any.
    pub classification: Option<String>,
    /// JSON metadata for the content item created for a new hash (ignored for a hash the bank
    /// already holds: the item is not changed).
    pub metadata: Option<String>,
}

/// A hash its source withdrew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRemoval {
    /// Canonical signal type name.
    pub signal_type: String,
    /// The normalised value.
    pub value: String,
}

/// One exchange fetch (or any bounded batch of a source) to apply atomically.
#[derive(Debug, Clone, Copy)]
pub struct SourceBatch<'a> {
    /// Who says so: `"exchange:<NAME>"` or `"file:<file name>"` (or `"api"`, the source of
    /// content added through the content API).
    pub source: &'a str,
    /// When the source listed these entries, Unix milliseconds (first/last seen, withdrawn).
    pub seen_at: i64,
    /// Hashes the source lists.
    pub upserts: &'a [SourceEntry],
    /// Hashes the source withdrew. Applied after `upserts`.
    pub removals: &'a [SourceRemoval],
    /// The exchange position to store in the same transaction, so a crash can never record a
    /// checkpoint without its entries (or entries without moving the checkpoint).
    pub checkpoint: Option<ExchangeCheckpoint<'a>>,
}

/// An exchange's resume position, written with the batch it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeCheckpoint<'a> {
    /// The exchange's unique name.
    pub exchange: &'a str,
    /// Opaque text the exchange client owns (a timestamp, a page token, JSON).
    pub checkpoint: &'a str,
}

/// What a batch or import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// New signals (and content items) created.
    pub added: u64,
    /// Entries whose hash the bank already held: only provenance (`last_seen`, and
    /// `source_id`/`classification` when given) was updated.
    pub refreshed: u64,
    /// Signals taken out of matching because their last active source withdrew them.
    pub removed: u64,
    /// Entries that changed nothing: repeats of a hash earlier in the same batch, and
    /// withdrawals of hashes this source did not list (or that another source still lists).
    pub unchanged: u64,
}

/// The stored state of one exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeState {
    /// Unique exchange name.
    pub name: String,
    /// The bank it fills.
    pub bank_id: BankId,
    /// The last checkpoint committed with a batch.
    pub checkpoint: Option<String>,
    /// When the last batch was committed, Unix milliseconds.
    pub last_success_at: Option<i64>,
    /// The last recorded error (kept after later successes; compare the times).
    pub last_error: Option<String>,
    /// When it was recorded, Unix milliseconds.
    pub last_error_at: Option<i64>,
    /// Hashes this exchange currently lists in its bank (active provenance records).
    pub entries: u64,
}

/// Where one hash of a bank came from: one record per (hash, source). Records outlive the
/// signal (a withdrawn hash keeps its records, with `withdrawn_at` set) for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The bank.
    pub bank_id: BankId,
    /// Canonical signal type name.
    pub signal_type: String,
    /// Normalised value.
    pub value: String,
    /// See [`SourceBatch::source`].
    pub source: String,
    /// See [`SourceEntry::source_id`] (the latest one given).
    pub source_id: Option<String>,
    /// See [`SourceEntry::classification`] (the latest one given).
    pub classification: Option<String>,
    /// When the source first listed it, Unix milliseconds.
    pub first_seen: i64,
    /// When the source last listed it, Unix milliseconds.
    pub last_seen: i64,
    /// When the source withdrew it (`None` while it is listed).
    pub withdrawn_at: Option<i64>,
}

/// How [`crate::Store::import_source`] runs.
#[derive(Debug, Clone, Copy)]
pub struct SourceImport<'a> {
    /// See [`SourceBatch::source`].
    pub source: &'a str,
    /// See [`SourceBatch::seen_at`].
    pub seen_at: i64,
    /// See [`SourceBatch::checkpoint`].
    pub checkpoint: Option<ExchangeCheckpoint<'a>>,
    /// The import is the source's complete list: hashes this source listed before but not
    /// now are withdrawn (IWF-style daily full files).
    pub complete: bool,
}

/// Receives the entries of one import inside the store's transaction. Any error aborts the
/// whole import.
pub trait SourceSink {
    /// A hash the source lists.
    fn upsert(&mut self, entry: &SourceEntry) -> crate::Result<()>;
    /// A hash the source withdrew.
    fn remove(&mut self, removal: &SourceRemoval) -> crate::Result<()>;
    /// Withdraws every hash this source listed under this source id (NCMEC deletes entries
    /// by id, not by hash).
    fn remove_source_id(&mut self, source_id: &str) -> crate::Result<()>;
}

/// Which side of a diff a hash is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiffSide {
    /// In the file, not in the bank.
    OnlyInFile,
    /// In the bank, not in the file.
    OnlyInBank,
}

/// Counts of a diff between a list and a bank.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffOutcome {
    /// Distinct hashes in the file and not in the bank.
    pub only_in_file: u64,
    /// Hashes in the bank (of the compared signal types) and not in the file.
    pub only_in_bank: u64,
    /// Hashes in both.
    pub common: u64,
    /// Repeated hashes in the file (counted once above).
    pub repeated_in_file: u64,
}

/// An exchange created through the API (exchanges from the configuration file are not
/// stored). The store keeps the credentials as the opaque bytes it is given: the server seals
/// them before they get here and opens them after, so the database never holds them in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredExchange {
    /// Unique exchange name.
    pub name: String,
    /// Protocol name (`ncmec`, `stopncii`, `safeguard`).
    pub kind: String,
    /// The non-secret settings, as a JSON object.
    pub settings: String,
    /// The sealed credentials; `None` when the exchange has none.
    pub sealed_credentials: Option<Vec<u8>>,
    /// Unix milliseconds; set by the store.
    pub created_at: i64,
    /// Unix milliseconds; set by the store.
    pub updated_at: i64,
}

impl std::fmt::Debug for StoredExchange {
    // The sealed bytes are of no use in a log; their length is enough.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredExchange")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("settings", &self.settings)
            .field(
                "sealed_credentials",
                &self.sealed_credentials.as_ref().map(|c| c.len()),
            )
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

#[cfg(test)]
mod prune_tests {
    use super::plan_prune;

    /// (delete_below, floor, done) of one planned batch.
    fn plan(
        floor: i64,
        end: i64,
        rows: &[(i64, i64, i64)],
        batch: i64,
        old: i64,
    ) -> (i64, i64, bool) {
        let s = plan_prune(floor, end, rows, batch, old);
        (s.delete_below, s.floor, s.done)
    }

    #[test]
    fn batches_stop_at_the_end_at_young_rows_and_at_the_batch() {
        // Nothing below the end.
        assert_eq!(plan(5, 5, &[], 10, 100), (5, 5, true));
        assert_eq!(plan(5, 3, &[], 10, 100), (5, 5, true));
        // No row below the end at all: the floor is the end.
        assert_eq!(plan(1, 40, &[], 10, 100), (40, 40, true));
        // All old, fewer than a batch: everything below the end goes.
        assert_eq!(
            plan(1, 40, &[(3, 1, 1), (9, 1, 6)], 10, 100),
            (40, 40, true)
        );
        // A full batch: up to its last row, then again.
        assert_eq!(
            plan(1, 40, &[(3, 1, 1), (9, 1, 6)], 2, 100),
            (10, 10, false)
        );
        // A young range (positions 4..=9): kept whole, pruning stops before it.
        assert_eq!(
            plan(1, 40, &[(3, 1, 1), (9, 200, 6)], 10, 100),
            (4, 4, true)
        );
        // A young row that starts below the floor: nothing more goes.
        assert_eq!(plan(6, 40, &[(9, 200, 6)], 10, 100), (6, 6, true));
    }
}
