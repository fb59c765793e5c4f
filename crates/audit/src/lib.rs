//! The tamper-evident audit log: the pure core, in the manner of Certificate Transparency
//! (RFC 6962).
//!
//! Every security-relevant act (a sign-in, a reveal of blurred media, a decision, a report
//! filed, a vault export) becomes an [`Entry`]. Its canonical encoding is hashed as a leaf of
//! an append-only Merkle tree ([`Tree`], RFC 6962 §2.1), and the log periodically signs the
//! tree's size and root with Ed25519 ([`TreeHead`], [`SignedTreeHead`]). From then on:
//!
//! - an **inclusion proof** ([`Tree::inclusion_proof`], [`verify_inclusion`]) shows that an
//!   entry is in the tree a head commits to, with `log2(n)` hashes;
//! - a **consistency proof** ([`Tree::consistency_proof`], [`verify_consistency`]) shows that
//!   a later head extends an earlier one, so the log did not rewrite anything before it;
//! - an **export** ([`ExportWriter`], [`verify_export`]) lets an auditor with only the public
//!   key re-check the whole log offline, and names the first altered entry.
//!
//! Hashes: leaf = SHA-256(0x00 || canonical entry), node = SHA-256(0x01 || left || right);
//! the tree of `n` leaves splits at the largest power of two below `n`. The verifiers follow
//! RFC 9162 §2.1.3.2 and §2.1.4.2 and need nothing but hashes, so they can run anywhere.
//!
//! The tree keeps every complete subtree's hash (about 64 bytes per entry), so roots and
//! proofs for any past size cost `O(log n)` hashes: a few microseconds at a million entries.
//!
//! This crate does no storage and no network I/O. A store keeps, per entry, the entry's
//! fields and its [`Entry::leaf_hash`] (and the signed heads); on start it rebuilds the tree
//! with [`Tree::from_leaf_hashes`] and then appends with [`Tree::push`]. Exports are written to
//! and read from any `std::io::Write` / `std::io::Read`.
//!
//! ```
//! use safeguard_audit::{
//!     verify_consistency, verify_export, verify_inclusion, Action, Entry, ExportWriter,
//!     SigningKey, Tree,
//! };
//!
//! let key = SigningKey::generate()?;
//! let mut tree = Tree::new();
//! let mut rows = Vec::new(); // what a store keeps: the entry and its leaf hash
//! for action in [Action::Login, Action::MediaRevealed, Action::Decision] {
//!     let entry = Entry::new(tree.size(), 1_764_770_000_000, "reviewer-7", action, "case-42", "")?;
//!     let leaf = tree.push_entry(&entry)?;
//!     rows.push((entry, leaf));
//! }
//! let old_head = tree.head(2, 1_764_770_000_000)?.sign(&key);
//! let new_head = tree.head(3, 1_764_770_060_000)?.sign(&key);
//!
//! // Entry 1 is in the tree the new head commits to, and the new head extends the old one.
//! let proof = tree.inclusion_proof(1, 3)?;
//! verify_inclusion(&rows[1].1, 1, 3, &proof, &new_head.head.root)?;
//! let proof = tree.consistency_proof(2, 3)?;
//! verify_consistency(2, 3, &old_head.head.root, &new_head.head.root, &proof)?;
//!
//! // Export, then verify offline with the public key alone.
//! let mut export = ExportWriter::new(Vec::new())?;
//! for (entry, leaf) in &rows {
//!     export.entry(entry, leaf)?;
//!     if entry.seq() == 1 {
//!         export.head(&old_head)?;
//!     }
//! }
//! export.head(&new_head)?;
//! let bytes = export.finish()?;
//! let log = verify_export(&bytes[..], &key.verifying_key())?;
//! assert_eq!(log.size(), 3);
//! # Ok::<(), safeguard_audit::Error>(())
//! ```
//!
//! Entries hold ids and short phrases only, never media, full hashes or personal data (see
//! [`entry`]): an audit log is kept forever and handed to auditors.

#![forbid(unsafe_code)]

pub mod entry;
pub mod export;
pub mod head;
pub mod merkle;
pub mod proof;

pub use entry::{Action, Entry};
pub use export::{verify_export, write_export, ExportWriter, Tamper, VerifiedLog};
pub use head::{SignedTreeHead, SigningKey, TreeHead, VerifyingKey};
pub use merkle::{empty_root, leaf_hash, node_hash, Hash, Tree, HASH_LEN};
pub use proof::{root_from_inclusion_proof, verify_consistency, verify_inclusion};

/// What can go wrong: bad input, a proof or signature that does not hold, or an export that
/// is malformed or was altered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An entry field breaks a rule (too long, control characters, not snake_case, a full
    /// hash in `detail`).
    #[error("invalid audit entry: {field} {reason}")]
    InvalidEntry {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An index or size past what the tree (or the other size) allows.
    #[error("{what} {value} is out of range (at most {limit})")]
    OutOfRange {
        /// What was given.
        what: &'static str,
        /// Its value.
        value: u64,
        /// The bound it broke (exclusive for a leaf index, inclusive for a size).
        limit: u64,
    },
    /// An inclusion or consistency proof does not hold.
    #[error("invalid proof: {0}")]
    InvalidProof(&'static str),
    /// A key is not in the expected format.
    #[error("invalid audit log key: {0}")]
    InvalidKey(String),
    /// The operating system's random source failed.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    /// A tree head's signature does not verify under the key.
    #[error("the tree head's signature does not verify under this key")]
    BadSignature,
    /// A signed head in an export does not verify under the key: the key is not the log's,
    /// or the head was altered.
    #[error(
        "line {line}: the signed head of size {size} does not verify under this key (the wrong \
         public key, or the head was altered)"
    )]
    HeadSignature {
        /// The head's line, from 1.
        line: u64,
        /// The size it claims.
        size: u64,
    },
    /// An export line is not in the format.
    #[error("line {line} of the export is malformed: {reason}")]
    Malformed {
        /// The line, from 1.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The export was altered: `index` is the first entry that is not what the log signed.
    #[error("the audit export was altered: entry {index} (seen at line {line}): {reason}")]
    Tampered {
        /// Index of the first altered entry, from 0 (the `seq` it should have).
        index: u64,
        /// The line that gave it away, from 1.
        line: u64,
        /// What gave it away.
        reason: Tamper,
    },
    /// A head known from elsewhere is beyond the end of this export: entries were cut off.
    #[error(
        "the export has {size} entries, but a signed head covers {expected}: it was cut short"
    )]
    Truncated {
        /// Entries in the export.
        size: u64,
        /// The head's size.
        expected: u64,
    },
    /// A head known from elsewhere does not match this log at its size: the log was rewritten.
    #[error("the signed head of size {size} does not match this log's entries")]
    HeadMismatch {
        /// The head's size.
        size: u64,
    },
    /// Reading or writing an export failed.
    #[error("audit export I/O: {0}")]
    Io(#[from] std::io::Error),
}
