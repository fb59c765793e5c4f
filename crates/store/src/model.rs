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
}

impl BankKind {
    /// Stable name, as stored and as shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            BankKind::Standard => "standard",
            BankKind::AllowList => "allow_list",
        }
    }

    /// Parses [`BankKind::as_str`].
    pub fn parse(s: &str) -> Option<BankKind> {
        match s {
            "standard" => Some(BankKind::Standard),
            "allow_list" => Some(BankKind::AllowList),
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
    /// Standard or allow-list.
    pub kind: BankKind,
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
