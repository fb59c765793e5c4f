//! Exact matching indexes for Safeguard.
//!
//! * [`PdqIndex`]: every bank entry within a Hamming radius (default 31, up to 64) of a PDQ
//!   hash — exactly the set a brute-force scan returns — in about 150 µs on one thread at ten
//!   million entries, with live additions and removals and checksummed snapshots. Multi-index
//!   hashing over code-sorted segments; see `plan` for why it is exact and `hamming` for the
//!   update and concurrency design.
//! * [`DigestIndex`] ([`Md5Index`], [`Sha1Index`], [`Sha256Index`]): exact digest lookups in
//!   O(1) at about 45 bytes per SHA-256 entry.
//! * [`PhotoDnaIndex`]: exact Euclidean-radius search over 144-byte PhotoDNA values that an
//!   operator's licensed hasher or a hotline supplies (Safeguard never computes PhotoDNA).
//! * [`FlatScan`]: the brute-force baseline benchmarks compare against.
//!
//! The crate does no I/O of its own: snapshots are written to and read from any
//! `std::io::Write` / `std::io::Read` the caller provides.

mod digest;
mod flat;
mod hamming;
mod kernel;
mod memory;
mod photodna;
mod plan;
mod segment;
mod snapshot;
mod tail;
mod tombstone;

pub use digest::{DigestIndex, Md5Index, Sha1Index, Sha256Index};
pub use flat::FlatScan;
pub use hamming::{
    DihedralMatch, Match, PdqIndex, PdqIndexBuilder, PdqIndexConfig, PdqIndexStats,
    DEFAULT_INLINE_MERGE_ENTRIES, DEFAULT_TAIL_CAPACITY,
};
pub use photodna::{
    photodna_distance_sq, PhotoDnaIndex, PhotoDnaMatch, PhotoDnaValue, PHOTODNA_LEN,
};
pub use plan::{DEFAULT_RADIUS, MAX_RADIUS};
pub use snapshot::VERSION as SNAPSHOT_VERSION;

/// Errors of this crate: bad input, damaged snapshots, I/O from the caller's stream, and
/// internal faults.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A query radius above [`MAX_RADIUS`].
    #[error("radius {radius} is above the maximum of {max}")]
    RadiusTooLarge { radius: u32, max: u32 },
    /// More entries than one index segment can address.
    #[error("{entries} entries exceed the limit of {max} per bulk build")]
    TooManyEntries { entries: usize, max: usize },
    /// The snapshot stream ended early.
    #[error("snapshot truncated: {0}")]
    SnapshotTruncated(String),
    /// The snapshot's bytes are damaged or are not a snapshot.
    #[error("snapshot corrupt: {0}")]
    SnapshotCorrupt(String),
    /// A snapshot written by an incompatible version of this crate.
    #[error(
        "snapshot format version {found} is not supported (this build reads version {supported})"
    )]
    SnapshotVersion { found: u32, supported: u32 },
    /// A valid snapshot of another kind of index.
    #[error("snapshot holds {found}, expected {expected}")]
    SnapshotKind { expected: String, found: String },
    /// The caller's reader or writer failed.
    #[error("snapshot I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A bug in this crate.
    #[error("internal error: {0}")]
    Internal(String),
}
