//! The audit log's rows: entries with their leaf hashes, and signed tree heads.
//!
//! The log's meaning (the entry encoding, the RFC 6962 tree, the signatures) is the
//! `safeguard-audit` crate's; the store keeps rows and guarantees two things. Sequence numbers
//! are contiguous from 0 and assigned inside the appending transaction, so two processes
//! appending at once cannot both take one number or leave a gap. And nothing here updates
//! or deletes an entry: the trait has no such call.

use crate::Result;

/// An entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// Unix milliseconds.
    pub at: i64,
    /// Who: an API key id, a person, `system`, `cli`.
    pub actor: String,
    /// What kind of event (`key_created`, `vault_read`, ...).
    pub action: String,
    /// What it was done to: an id, never media or a full hash of unconfirmed content.
    pub object: String,
    /// Short detail, by the same rule.
    pub detail: String,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the log, from 0.
    pub seq: u64,
    /// The entry.
    pub entry: NewAuditEntry,
    /// Its leaf hash, as computed when it was appended.
    pub leaf_hash: [u8; 32],
}

/// A signed tree head as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTreeHead {
    /// Entries covered.
    pub size: u64,
    /// The tree's root hash at that size.
    pub root: [u8; 32],
    /// When it was signed, Unix milliseconds.
    pub timestamp: i64,
    /// The signature over the head (the audit crate's encoding).
    pub signature: Vec<u8>,
}

/// Storage of the audit log. Part of every [`crate::Store`].
pub trait AuditStore: Send + Sync {
    /// Appends `entries` with the next sequence numbers, in order, in one transaction, and
    /// gives them back as stored. `leaf` computes an entry's leaf hash from its sequence
    /// number and content, inside the transaction (the number is known only there).
    fn audit_append(
        &self,
        entries: &[NewAuditEntry],
        leaf: &dyn Fn(u64, &NewAuditEntry) -> [u8; 32],
    ) -> Result<Vec<AuditRecord>>;
    /// Number of entries.
    fn audit_size(&self) -> Result<u64>;
    /// Entries from `from_seq` on, in order, at most `limit`.
    fn audit_entries(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditRecord>>;
    /// Leaf hashes from `from_seq` on, in order, at most `limit` (rebuilding the tree).
    fn audit_leaf_hashes(&self, from_seq: u64, limit: usize) -> Result<Vec<[u8; 32]>>;
    /// Stores a signed tree head. `Conflict` when its size exceeds the log's.
    fn put_tree_head(&self, head: &StoredTreeHead) -> Result<()>;
    /// The newest tree heads, newest first, at most `limit`.
    fn tree_heads(&self, limit: usize) -> Result<Vec<StoredTreeHead>>;
}
