//! Accounts and relationships kept for contact decisions (`/v1/accounts`): the age band a
//! platform account claims, how that was established, and how two accounts are related.
//!
//! The store keeps these as the contact crate's names (`13_15`, `estimation`, `connected`)
//! without interpreting them: the server validates every value before it writes, so a
//! stored row always parses. A relationship is symmetric and kept once per unordered pair.
//! `none` is not stored: it is what an absent row means.

use crate::Result;

/// Longest account id the store accepts, in bytes (the contact crate's limit).
pub const MAX_STORED_ACCOUNT_ID_LEN: usize = 256;

/// One account as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAccount {
    /// The platform's id.
    pub id: String,
    /// An age band name (`under_13`, `13_15`, `16_17`, `adult`, `unknown`).
    pub age_band: String,
    /// An assurance method name (`none`, `self_declared`, ...).
    pub assurance_method: String,
    /// Confidence in the band, 0 to 1.
    pub assurance_confidence: f64,
    /// When it was last written, milliseconds since the Unix epoch (the store's clock).
    pub updated_at: i64,
}

/// What a write of an account gives.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAccount {
    pub id: String,
    pub age_band: String,
    pub assurance_method: String,
    pub assurance_confidence: f64,
}

/// How two accounts are related, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRelationship {
    /// The smaller id of the pair (byte order).
    pub a: String,
    /// The larger id of the pair.
    pub b: String,
    /// `connected`, `mutual` or `blocked`.
    pub relationship: String,
    /// When it was last written, milliseconds since the Unix epoch.
    pub updated_at: i64,
}

/// The pair in stored order (smaller id first), so `(x, y)` and `(y, x)` are one row.
pub fn ordered_pair<'a>(x: &'a str, y: &'a str) -> (&'a str, &'a str) {
    if x <= y {
        (x, y)
    } else {
        (y, x)
    }
}

/// Storage of accounts and relationships. Part of every [`crate::Store`].
pub trait AccountStore: Send + Sync {
    /// Creates or replaces an account; gives it as stored.
    fn put_account(&self, account: &NewAccount) -> Result<StoredAccount>;
    /// The account with this id.
    fn account(&self, id: &str) -> Result<Option<StoredAccount>>;
    /// Removes an account and every relationship it is part of (erasure). `NotFound`.
    fn delete_account(&self, id: &str) -> Result<StoredAccount>;
    /// Sets how `x` and `y` are related (symmetric); `none` removes the row. The two
    /// accounts need not be stored: platforms often send the graph before the age signals.
    /// `Conflict` when `x == y`.
    fn put_relationship(&self, x: &str, y: &str, relationship: &str) -> Result<()> {
        self.put_relationships(&[(x.to_string(), y.to_string(), relationship.to_string())])
    }
    /// Sets several relationships, in order, in one transaction: all or none (`Conflict` on
    /// a self-pair, and nothing is written).
    fn put_relationships(&self, edges: &[(String, String, String)]) -> Result<()> {
        self.put_edges(edges, false)
    }
    /// As [`AccountStore::put_relationships`], for edges read from the platform's events
    /// (`connected` from an accept, `blocked` from a block): an event never lifts a block. A
    /// retried or late accept would otherwise turn a pair one of them blocked back into
    /// `connected`, which contact decisions allow; only the platform's own write of the
    /// relationship (which knows of an unblock) does.
    fn put_relationships_from_events(&self, edges: &[(String, String, String)]) -> Result<()> {
        self.put_edges(edges, true)
    }
    /// The two above: with `keep_blocked`, a stored `blocked` is left as it is unless the
    /// edge is `blocked` too.
    fn put_edges(&self, edges: &[(String, String, String)], keep_blocked: bool) -> Result<()>;
    /// How `x` and `y` are related; `None` is `none`.
    fn relationship(&self, x: &str, y: &str) -> Result<Option<StoredRelationship>>;
    /// Number of accounts and of stored relationships (for status and figures).
    fn account_counts(&self) -> Result<(u64, u64)>;
}
