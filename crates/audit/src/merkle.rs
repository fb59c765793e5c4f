//! RFC 6962 §2.1 hashing and the in-memory Merkle tree.
//!
//! Leaves and interior nodes are hashed with different one-byte prefixes (0x00 and 0x01), so a
//! leaf can never be passed off as an interior node (the second-preimage attack on plain
//! Merkle trees). The Merkle Tree Hash of `n` leaves splits at the largest power of two
//! *smaller* than `n`: the left part is always a complete subtree, which is what lets the
//! tree keep every complete subtree's hash once and answer any past size from them.

use sha2::{Digest, Sha256};

use crate::entry::Entry;
use crate::head::TreeHead;
use crate::Error;

/// Length of every hash in the tree, bytes (SHA-256).
pub const HASH_LEN: usize = 32;

/// A SHA-256 hash: a leaf hash, an interior node hash or a root.
pub type Hash = [u8; HASH_LEN];

/// Prefix of a leaf hash's input (RFC 6962 §2.1).
const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an interior node hash's input (RFC 6962 §2.1).
const NODE_PREFIX: u8 = 0x01;

/// The leaf hash of `data`: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of no bytes (RFC 6962 §2.1, "MTH({}) = SHA-256()").
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n`; `n` must be at least 2.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// An append-only Merkle tree of leaf hashes, kept in memory.
///
/// Level 0 holds the leaf hashes; level `l` holds the hash of every *complete* subtree of
/// `2^l` leaves, in order (entry `i` covers leaves `i·2^l .. (i+1)·2^l`). A new leaf completes
/// at most one subtree per level, so an append costs on average two hashes and at most
/// `log2(n)`. Every subtree a root or a proof needs, at any size up to the current one, is
/// then either stored or one of the `O(log n)` incomplete subtrees along the right edge, so
/// roots and proofs cost `O(log n)` hashes. Memory: about two hashes (64 bytes) per leaf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    /// `levels[l][i]` = hash of the complete subtree of `2^l` leaves starting at leaf
    /// `i·2^l`. Invariant: `levels[l].len() == size >> l` for every stored level, and level
    /// 0 always exists.
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Tree {
        Tree {
            levels: vec![Vec::new()],
        }
    }

    /// A tree of the given leaf hashes, in order: how a store rebuilds the tree from the leaf
    /// hashes it kept.
    pub fn from_leaf_hashes<I: IntoIterator<Item = Hash>>(leaves: I) -> Tree {
        let mut tree = Tree::new();
        for leaf in leaves {
            tree.push(leaf);
        }
        tree
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels[0].len() as u64
    }

    /// Appends a leaf hash; returns its index.
    pub fn push(&mut self, leaf: Hash) -> u64 {
        let index = self.size();
        self.levels[0].push(leaf);
        // Carry upwards: each level whose length became even completed a subtree one level up.
        let mut level = 0;
        while self.levels[level].len() % 2 == 0 {
            let row = &self.levels[level];
            let parent = node_hash(&row[row.len() - 2], &row[row.len() - 1]);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(parent);
            level += 1;
        }
        index
    }

    /// Hashes `data` as a leaf and appends it; returns its index.
    pub fn push_data(&mut self, data: &[u8]) -> u64 {
        self.push(leaf_hash(data))
    }

    /// Appends an entry's leaf hash, checking that the entry's `seq` is the next position
    /// (so the log has no gaps); returns the leaf hash, for the store to keep beside the
    /// entry.
    pub fn push_entry(&mut self, entry: &Entry) -> Result<Hash, Error> {
        if entry.seq() != self.size() {
            return Err(Error::OutOfRange {
                what: "entry seq (it must be the tree size)",
                value: entry.seq(),
                limit: self.size(),
            });
        }
        let leaf = entry.leaf_hash();
        self.push(leaf);
        Ok(leaf)
    }

    /// The head of the tree at `size`, ready to be signed ([`TreeHead::sign`]).
    pub fn head(&self, size: u64, timestamp_ms: i64) -> Result<TreeHead, Error> {
        Ok(TreeHead {
            size,
            root: self.root(size)?,
            timestamp_ms,
        })
    }

    /// The leaf hash at `index`, if there is one.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.levels[0].get(i).copied())
    }

    /// The root of the tree as it was when it had `size` leaves (the Merkle Tree Hash of the
    /// first `size` leaves). `size` 0 gives [`empty_root`].
    pub fn root(&self, size: u64) -> Result<Hash, Error> {
        self.check_size("tree size", size)?;
        if size == 0 {
            return Ok(empty_root());
        }
        Ok(self.range_hash(0, size))
    }

    /// The root at the current size.
    pub fn current_root(&self) -> Hash {
        // The current size is always within the tree.
        self.root(self.size())
            .expect("the current size is in range")
    }

    /// The inclusion proof (audit path, RFC 6962 §2.1.1) of leaf `index` in the tree of
    /// `size` leaves: the sibling hashes from the leaf up to the root.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, Error> {
        self.check_size("tree size", size)?;
        if index >= size {
            return Err(Error::OutOfRange {
                what: "leaf index",
                value: index,
                limit: size,
            });
        }
        let mut path = Vec::new();
        self.path(index, 0, size, &mut path);
        Ok(path)
    }

    /// The consistency proof (RFC 6962 §2.1.2) between the trees of `size1` and `size2`
    /// leaves, `size1 <= size2`. Empty when `size1` is 0 or equal to `size2`: every tree
    /// extends the empty tree and itself, and RFC 9162 verifiers expect no hashes then.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, Error> {
        self.check_size("second tree size", size2)?;
        if size1 > size2 {
            return Err(Error::OutOfRange {
                what: "first tree size",
                value: size1,
                limit: size2,
            });
        }
        let mut proof = Vec::new();
        if size1 > 0 && size1 < size2 {
            self.subproof(size1, 0, size2, true, &mut proof);
        }
        Ok(proof)
    }

    fn check_size(&self, what: &'static str, size: u64) -> Result<(), Error> {
        if size > self.size() {
            return Err(Error::OutOfRange {
                what,
                value: size,
                limit: self.size(),
            });
        }
        Ok(())
    }

    /// The Merkle Tree Hash of leaves `start..end` (non-empty, within the tree). Every range
    /// that `root` and the proofs ask for starts at a multiple of its left part's size, so
    /// complete parts are found in `levels` and only the right edge is recomputed.
    fn range_hash(&self, start: u64, end: u64) -> Hash {
        debug_assert!(start < end && end <= self.size());
        let len = end - start;
        if len.is_power_of_two() && start % len == 0 {
            let level = len.trailing_zeros() as usize;
            // In range: `end <= size`, so this complete subtree was stored when its last
            // leaf was pushed (the invariant on `levels`).
            return self.levels[level][(start / len) as usize];
        }
        let k = split_point(len);
        node_hash(
            &self.range_hash(start, start + k),
            &self.range_hash(start + k, end),
        )
    }

    /// PATH(m, D[start:end]) of RFC 6962 §2.1.1, appended to `out` bottom-up.
    fn path(&self, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) {
        if end - start == 1 {
            return;
        }
        let k = split_point(end - start);
        if m < start + k {
            self.path(m, start, start + k, out);
            out.push(self.range_hash(start + k, end));
        } else {
            self.path(m, start + k, end, out);
            out.push(self.range_hash(start, start + k));
        }
    }

    /// SUBPROOF(m, D[start:end], b) of RFC 6962 §2.1.2, appended to `out` bottom-up; `m`
    /// is an absolute leaf count with `start < m <= end`.
    fn subproof(&self, m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<Hash>) {
        if m == end {
            if !whole {
                out.push(self.range_hash(start, end));
            }
            return;
        }
        let k = split_point(end - start);
        if m <= start + k {
            self.subproof(m, start, start + k, whole, out);
            out.push(self.range_hash(start + k, end));
        } else {
            self.subproof(m, start + k, end, false, out);
            out.push(self.range_hash(start, start + k));
        }
    }
}

/// The Merkle Tree Hash of `leaves` computed straight from the definition, recursively and
/// without any cache: the reference the tests and the benchmark compare [`Tree`] against.
pub fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_is_largest_smaller_power_of_two() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(8), 4);
        assert_eq!(split_point(9), 8);
        assert_eq!(split_point(1 << 40), 1 << 39);
    }

    #[test]
    fn levels_keep_their_invariant() {
        let mut tree = Tree::new();
        for i in 0..100u32 {
            tree.push_data(&i.to_be_bytes());
            let size = tree.size();
            for (l, row) in tree.levels.iter().enumerate() {
                assert_eq!(row.len() as u64, size >> l);
            }
        }
    }

    #[test]
    fn push_entry_refuses_gaps() {
        let mut tree = Tree::new();
        let e0 = Entry::new(0, 0, "a", "login", "", "").unwrap();
        let e2 = Entry::new(2, 0, "a", "login", "", "").unwrap();
        assert_eq!(tree.push_entry(&e0).unwrap(), e0.leaf_hash());
        assert!(tree.push_entry(&e0).is_err());
        assert!(tree.push_entry(&e2).is_err());
        assert_eq!(tree.size(), 1);
        assert_eq!(tree.head(1, 5).unwrap().root, e0.leaf_hash());
        assert!(tree.head(2, 5).is_err());
    }

    #[test]
    fn every_past_root_matches_the_definition() {
        let leaves: Vec<Hash> = (0..70u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let tree = Tree::from_leaf_hashes(leaves.iter().copied());
        for size in 0..=leaves.len() {
            assert_eq!(
                tree.root(size as u64).unwrap(),
                naive_root(&leaves[..size]),
                "size {size}"
            );
        }
        assert!(tree.root(71).is_err());
    }
}
