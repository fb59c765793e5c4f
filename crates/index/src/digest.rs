//! Exact-digest index for MD5, SHA-1 and SHA-256: a gapped sorted array with O(1) lookups.
//!
//! # Layout
//! Entries live in one array of slots kept in ascending `(digest, id)` order with gaps. An
//! entry's *home* slot is its digest's first 8 bytes scaled to the table size, which is
//! monotone in the digest, so the order and the linear-probing invariant agree: every entry
//! sits at or after its home, with no empty slot in between. A lookup starts at the home and
//! walks forward until it meets its digest, a larger one or an empty slot — on average a few
//! slots, one or two cache lines, because cryptographic digests are uniformly distributed.
//!
//! The slot arrays are split by how often they are read: the 8-byte prefixes (every lookup)
//! and, together, the rest of the digest and the id (only when a prefix matches, so a hit
//! costs one more cache line and a miss none). Memory per slot is the digest plus the 8-byte
//! id, at a load factor of 0.85–0.93: about 45 bytes per SHA-256 entry. A prefix of 0 marks an empty slot; the rare digests whose first 8 bytes are
//! all zero are kept in a small sorted side list.
//!
//! # Concurrency
//! Readers take a read lock for one lookup (or one batch). An insertion or removal holds the
//! write lock while it shifts one run of slots — typically a few hundred bytes, at most the
//! run length — so readers wait at most that long. Growing the table builds the new one under
//! the read lock (readers continue) and swaps it in under the write lock.

use std::cmp::Ordering;
use std::io::{Read, Write};
use std::sync::{Mutex, PoisonError, RwLock};

use crate::kernel::prefetch;
use crate::memory;
use crate::snapshot::{self, Kind};
use crate::Error;

/// Load factor of a table built from a list: 40 / 0.88 ≈ 45.5 bytes per SHA-256 entry.
const BUILD_LOAD: f64 = 0.88;
/// Load factor above which an insertion grows the table.
const MAX_LOAD: f64 = 0.93;
/// Load factor after growth (about 47 bytes per SHA-256 entry).
const GROWN_LOAD: f64 = 0.85;
/// Empty slots kept past the last occupied one, so runs that start near the end of the table
/// have room and a walk always ends at an empty slot.
const SLACK: usize = 64;
/// How many lookups ahead a batch prefetches: enough to overlap a DRAM miss.
const BATCH_PREFETCH: usize = 8;

/// MD5 digests (16 bytes).
pub type Md5Index = DigestIndex<16>;
/// SHA-1 digests (20 bytes).
pub type Sha1Index = DigestIndex<20>;
/// SHA-256 digests (32 bytes).
pub type Sha256Index = DigestIndex<32>;

/// Exact-match index from `N`-byte digests to ids (a digest may map to several ids).
#[derive(Debug)]
pub struct DigestIndex<const N: usize> {
    table: RwLock<Table<N>>,
    /// Serialises writers, so a growth builds from a table no one else modifies.
    writer: Mutex<()>,
}

#[derive(Debug, Clone)]
struct Table<const N: usize> {
    /// Home slots: an entry's home is in `0..homes`.
    homes: usize,
    /// First 8 bytes of each slot's digest, big-endian; 0 marks an empty slot.
    prefixes: Vec<u64>,
    /// Per slot, [`Table::TAIL`] bytes: the remaining `N - 8` bytes of the digest, then the id
    /// (little-endian). Together, so that a hit reads one more cache line, not two.
    tails: Vec<u8>,
    /// Entries in slots.
    len: usize,
    /// Entries whose digest starts with 8 zero bytes, ascending.
    zeros: Vec<([u8; N], u64)>,
}

fn split<const N: usize>(digest: &[u8; N]) -> (u64, &[u8]) {
    let mut p = [0u8; 8];
    p.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(p), &digest[8..])
}

impl<const N: usize> Table<N> {
    const REST: usize = {
        assert!(N >= 8, "digests have at least 8 bytes");
        N - 8
    };
    const TAIL: usize = Self::REST + 8;

    fn with_homes(homes: usize) -> Self {
        let slots = homes + SLACK;
        Table {
            homes,
            prefixes: memory::zeroed(slots),
            tails: memory::zeroed(slots * Self::TAIL),
            len: 0,
            zeros: Vec::new(),
        }
    }

    #[inline(always)]
    fn home(&self, prefix: u64) -> usize {
        ((u128::from(prefix) * self.homes as u128) >> 64) as usize
    }

    #[inline(always)]
    fn rest(&self, slot: usize) -> &[u8] {
        &self.tails[slot * Self::TAIL..slot * Self::TAIL + Self::REST]
    }

    #[inline(always)]
    fn id(&self, slot: usize) -> u64 {
        let at = slot * Self::TAIL + Self::REST;
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.tails[at..at + 8]);
        u64::from_le_bytes(b)
    }

    /// Writes slot `at`'s digest tail and id.
    fn set_tail(&mut self, at: usize, rest: &[u8], id: u64) {
        let t = &mut self.tails[at * Self::TAIL..(at + 1) * Self::TAIL];
        t[..Self::REST].copy_from_slice(rest);
        t[Self::REST..].copy_from_slice(&id.to_le_bytes());
    }

    /// Order of slot `i` relative to the key `(prefix, rest, id)`.
    #[inline(always)]
    fn cmp_slot(&self, i: usize, prefix: u64, rest: &[u8], id: Option<u64>) -> Ordering {
        self.prefixes[i]
            .cmp(&prefix)
            .then_with(|| self.rest(i).cmp(rest))
            .then_with(|| id.map_or(Ordering::Equal, |id| self.id(i).cmp(&id)))
    }

    /// First slot at or after the key's home that is empty or not below the key.
    #[inline(always)]
    fn seek(&self, prefix: u64, rest: &[u8], id: Option<u64>) -> usize {
        let mut i = self.home(prefix);
        while self.prefixes[i] != 0 && self.cmp_slot(i, prefix, rest, id) == Ordering::Less {
            i += 1;
        }
        i
    }

    fn lookup(&self, digest: &[u8; N], mut found: impl FnMut(u64)) {
        let (prefix, rest) = split(digest);
        if prefix == 0 {
            let start = self.zeros.partition_point(|(d, _)| d < digest);
            for (_, id) in self.zeros[start..].iter().take_while(|(d, _)| d == digest) {
                found(*id);
            }
            return;
        }
        let mut i = self.seek(prefix, rest, None);
        while self.prefixes[i] == prefix && self.rest(i) == rest {
            found(self.id(i));
            i += 1;
        }
    }

    /// Inserts; false if the pair is present.
    fn insert(&mut self, digest: &[u8; N], id: u64) -> bool {
        let (prefix, rest) = split(digest);
        if prefix == 0 {
            return match self.zeros.binary_search(&(*digest, id)) {
                Ok(_) => false,
                Err(at) => {
                    self.zeros.insert(at, (*digest, id));
                    true
                }
            };
        }
        let at = self.seek(prefix, rest, Some(id));
        if self.prefixes[at] != 0 && self.cmp_slot(at, prefix, rest, Some(id)) == Ordering::Equal {
            return false;
        }
        let mut empty = at;
        while self.prefixes[empty] != 0 {
            empty += 1;
        }
        // Keep at least one empty slot after the last occupied one: it ends every walk.
        if empty + 1 >= self.prefixes.len() {
            self.extend(SLACK);
        }
        // Shift the run [at, empty) one slot right; entries only move away from their homes
        // and keep their order, so both invariants hold.
        let t = Self::TAIL;
        self.prefixes.copy_within(at..empty, at + 1);
        self.tails.copy_within(at * t..empty * t, (at + 1) * t);
        self.prefixes[at] = prefix;
        self.set_tail(at, rest, id);
        self.len += 1;
        true
    }

    fn extend(&mut self, slots: usize) {
        let n = self.prefixes.len() + slots;
        self.prefixes.resize(n, 0);
        self.tails.resize(n * Self::TAIL, 0);
    }

    /// Removes; false if the pair is absent.
    fn remove(&mut self, digest: &[u8; N], id: u64) -> bool {
        let (prefix, rest) = split(digest);
        if prefix == 0 {
            return match self.zeros.binary_search(&(*digest, id)) {
                Ok(at) => {
                    self.zeros.remove(at);
                    true
                }
                Err(_) => false,
            };
        }
        let at = self.seek(prefix, rest, Some(id));
        if self.prefixes[at] == 0 || self.cmp_slot(at, prefix, rest, Some(id)) != Ordering::Equal {
            return false;
        }
        // Backward-shift deletion: following entries that sit after their home move one slot
        // left, up to the first empty slot or the first entry already at its home.
        let mut end = at + 1;
        while self.prefixes[end] != 0 && self.home(self.prefixes[end]) < end {
            end += 1;
        }
        let t = Self::TAIL;
        self.prefixes.copy_within(at + 1..end, at);
        self.tails.copy_within((at + 1) * t..end * t, at * t);
        self.prefixes[end - 1] = 0;
        self.len -= 1;
        true
    }

    /// Every entry, ascending.
    fn entries(&self) -> impl Iterator<Item = ([u8; N], u64)> + '_ {
        let zeros = self.zeros.iter().copied();
        let slots = (0..self.prefixes.len())
            .filter(|&i| self.prefixes[i] != 0)
            .map(|i| {
                let mut d = [0u8; N];
                d[..8].copy_from_slice(&self.prefixes[i].to_be_bytes());
                d[8..].copy_from_slice(self.rest(i));
                (d, self.id(i))
            });
        zeros.chain(slots)
    }

    /// Builds a table with `homes` home slots from entries in ascending order, no duplicates.
    fn from_sorted(homes: usize, entries: impl Iterator<Item = ([u8; N], u64)>) -> Self {
        let mut t = Table::with_homes(homes.max(1));
        let mut next = 0usize;
        for (digest, id) in entries {
            let (prefix, rest) = split(&digest);
            if prefix == 0 {
                t.zeros.push((digest, id));
                continue;
            }
            let at = t.home(prefix).max(next);
            if at + 1 >= t.prefixes.len() {
                t.extend(SLACK.max(t.prefixes.len() / 64));
            }
            t.prefixes[at] = prefix;
            t.set_tail(at, rest, id);
            t.len += 1;
            next = at + 1;
        }
        t
    }

    fn bytes(&self) -> usize {
        self.prefixes.capacity() * 8 + self.tails.capacity() + self.zeros.capacity() * (N + 8)
    }
}

/// Sorts entries by `(digest, id)` in place and drops duplicates: an in-place radix pass on
/// the top 16 bits (uniform digests give even buckets), then a comparison sort per bucket.
fn sort_entries<const N: usize>(entries: &mut Vec<([u8; N], u64)>) {
    let n = entries.len();
    if n <= 1 << 16 {
        entries.sort_unstable();
        entries.dedup();
        return;
    }
    // 16 bits: the bucket cursors (512 KiB) stay in cache during the swaps, which matters
    // more than shorter buckets (20 bits measured 25% slower at 100 million).
    let bits = 16;
    let key = |e: &([u8; N], u64)| {
        (u32::from_be_bytes([e.0[0], e.0[1], e.0[2], e.0[3]]) >> (32 - bits)) as usize
    };
    let buckets = 1usize << bits;
    let mut start = vec![0usize; buckets + 1];
    for e in entries.iter() {
        start[key(e) + 1] += 1;
    }
    for b in 0..buckets {
        start[b + 1] += start[b];
    }
    // American flag sort: every swap puts one entry into its final bucket.
    let mut next = start.clone();
    for b in 0..buckets {
        while next[b] < start[b + 1] {
            let k = key(&entries[next[b]]);
            if k == b {
                next[b] += 1;
            } else {
                entries.swap(next[b], next[k]);
                next[k] += 1;
            }
        }
    }
    for b in 0..buckets {
        entries[start[b]..start[b + 1]].sort_unstable();
    }
    entries.dedup();
}

impl<const N: usize> Default for DigestIndex<N> {
    fn default() -> Self {
        DigestIndex::new()
    }
}

impl<const N: usize> DigestIndex<N> {
    /// An empty index.
    pub fn new() -> Self {
        DigestIndex {
            table: RwLock::new(Table::with_homes(1)),
            writer: Mutex::new(()),
        }
    }

    /// Builds an index from `(digest, id)` pairs; duplicate pairs are stored once.
    pub fn from_entries(mut entries: Vec<([u8; N], u64)>) -> Self {
        if !entries.is_sorted() {
            sort_entries(&mut entries);
        } else {
            entries.dedup();
        }
        let homes = (entries.len() as f64 / BUILD_LOAD).ceil() as usize;
        let table = Table::from_sorted(homes, entries.into_iter());
        DigestIndex {
            table: RwLock::new(table),
            writer: Mutex::new(()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table<N>> {
        // Every write leaves the table consistent before it can panic (bounds are checked
        // before any slot moves), so a poisoned lock still guards a valid table.
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table<N>> {
        self.table.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        let t = self.read();
        t.len + t.zeros.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the table.
    pub fn memory_bytes(&self) -> usize {
        self.read().bytes()
    }

    /// Whether any entry has this digest.
    pub fn contains(&self, digest: &[u8; N]) -> bool {
        let mut any = false;
        self.read().lookup(digest, |_| any = true);
        any
    }

    /// Appends the ids of the entries with this digest to `out` (ascending).
    pub fn lookup(&self, digest: &[u8; N], out: &mut Vec<u64>) {
        self.read().lookup(digest, |id| out.push(id));
    }

    /// Looks up many digests under one lock, overlapping their memory accesses. Appends
    /// `(index in digests, id)` for every hit.
    pub fn lookup_batch(&self, digests: &[[u8; N]], out: &mut Vec<(usize, u64)>) {
        let t = self.read();
        for (i, d) in digests.iter().enumerate() {
            if let Some(ahead) = digests.get(i + BATCH_PREFETCH) {
                let (prefix, _) = split(ahead);
                prefetch(&t.prefixes[t.home(prefix)]);
            }
            t.lookup(d, |id| out.push((i, id)));
        }
    }

    /// Adds the pair; false if it was present. Visible to lookups once this returns.
    pub fn insert(&self, digest: &[u8; N], id: u64) -> bool {
        let _w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        self.grow_if_needed(1);
        self.write().insert(digest, id)
    }

    /// Adds pairs; returns how many were new.
    pub fn insert_batch(&self, entries: &[([u8; N], u64)]) -> usize {
        let _w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        self.grow_if_needed(entries.len());
        entries
            .iter()
            .filter(|(d, id)| self.write().insert(d, *id))
            .count()
    }

    /// Removes the pair; false if it was absent.
    pub fn remove(&self, digest: &[u8; N], id: u64) -> bool {
        let _w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        self.write().remove(digest, id)
    }

    /// Rebuilds a larger table, off the write lock, when `more` entries would pass
    /// [`MAX_LOAD`]. Called with the writer mutex held, so the table cannot change meanwhile.
    fn grow_if_needed(&self, more: usize) {
        let rebuilt = {
            let t = self.read();
            let after = t.len + more;
            if (after as f64) <= MAX_LOAD * t.homes as f64 {
                return;
            }
            let homes = (after as f64 / GROWN_LOAD).ceil() as usize;
            let zeros = t.zeros.clone();
            let mut grown = Table::from_sorted(homes, t.entries().skip(zeros.len()));
            grown.zeros = zeros;
            grown
        };
        let old = std::mem::replace(&mut *self.write(), rebuilt);
        drop(old); // outside the lock
    }

    /// Writes a checksummed snapshot (format in `snapshot`).
    pub fn write_snapshot(&self, out: impl Write) -> Result<(), Error> {
        let _w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let t = self.read();
        let mut writer =
            snapshot::Writer::new(out, Kind::Digest, N as u32, (t.len + t.zeros.len()) as u64)?;
        for (digest, id) in t.entries() {
            writer.record(&digest, id)?;
        }
        writer.finish()
    }

    /// Loads a snapshot written by [`write_snapshot`](Self::write_snapshot); a truncated or
    /// corrupted image is an error.
    pub fn read_snapshot(input: impl Read) -> Result<Self, Error> {
        let mut reader = snapshot::Reader::new(input, Kind::Digest, N as u32)?;
        let mut entries = Vec::with_capacity(reader.count().min(1 << 20) as usize);
        while let Some(chunk) = reader.next_chunk()? {
            for rec in chunk.chunks_exact(N + 8) {
                let mut d = [0u8; N];
                d.copy_from_slice(&rec[..N]);
                let mut id = [0u8; 8];
                id.copy_from_slice(&rec[N..]);
                entries.push((d, u64::from_le_bytes(id)));
            }
        }
        reader.finish()?;
        // Snapshots are written in order, so this is a linear check, not a sort.
        Ok(DigestIndex::from_entries(entries))
    }

    /// Checks the table's invariants (tests).
    #[cfg(test)]
    fn check(&self) {
        let t = self.read();
        let mut last: Option<([u8; N], u64)> = None;
        let mut count = 0;
        for i in 0..t.prefixes.len() {
            if t.prefixes[i] == 0 {
                continue;
            }
            count += 1;
            let home = t.home(t.prefixes[i]);
            assert!(home <= i);
            assert!((home..i).all(|j| t.prefixes[j] != 0), "gap before slot {i}");
            let mut d = [0u8; N];
            d[..8].copy_from_slice(&t.prefixes[i].to_be_bytes());
            d[8..].copy_from_slice(t.rest(i));
            let e = (d, t.id(i));
            assert!(last.is_none_or(|l| l < e), "order at slot {i}");
            last = Some(e);
        }
        assert_eq!(count, t.len);
        assert_eq!(*t.prefixes.last().unwrap(), 0, "sentinel");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn digest(seed: u64) -> [u8; 16] {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x1234_5678;
        let mut d = [0u8; 16];
        for chunk in d.chunks_mut(8) {
            x ^= x >> 31;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x ^= x >> 29;
            chunk.copy_from_slice(&x.to_be_bytes());
        }
        d
    }

    #[test]
    fn insert_lookup_remove_agree_with_a_set() {
        let index = Md5Index::new();
        let mut model = BTreeSet::new();
        for i in 0..5000u64 {
            // Reuse digests so that some map to several ids.
            let d = digest(i % 3000);
            assert_eq!(index.insert(&d, i % 7), model.insert((d, i % 7)));
            if i % 3 == 0 {
                let r = digest(i / 2);
                assert_eq!(index.remove(&r, 3), model.remove(&(r, 3)));
            }
        }
        index.check();
        assert_eq!(index.len(), model.len());
        for i in 0..3500 {
            let d = digest(i);
            let mut got = Vec::new();
            index.lookup(&d, &mut got);
            let want: Vec<u64> = model.range((d, 0)..=(d, u64::MAX)).map(|e| e.1).collect();
            assert_eq!(got, want);
            assert_eq!(index.contains(&d), !want.is_empty());
        }
    }

    #[test]
    fn zero_prefixed_digests_are_stored() {
        let index = Sha1Index::new();
        let zero = [0u8; 20];
        let mut almost = [0u8; 20];
        almost[19] = 1;
        assert!(index.insert(&zero, 1));
        assert!(index.insert(&almost, 2));
        assert!(!index.insert(&zero, 1));
        assert!(index.contains(&zero) && index.contains(&almost));
        assert!(index.remove(&zero, 1));
        assert!(!index.contains(&zero));
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn bulk_build_matches_inserts_and_survives_a_snapshot() {
        let entries: Vec<([u8; 16], u64)> =
            (0..100_000u64).map(|i| (digest(i / 2), i % 2)).collect();
        let mut dup = entries.clone();
        dup.extend_from_slice(&entries[..100]);
        let index = Md5Index::from_entries(dup);
        index.check();
        assert_eq!(index.len(), entries.len());
        let mut buf = Vec::new();
        index.write_snapshot(&mut buf).unwrap();
        let back = Md5Index::read_snapshot(&buf[..]).unwrap();
        back.check();
        let queries: Vec<[u8; 16]> = (0..60_000u64).map(digest).collect();
        let mut a = Vec::new();
        let mut b = Vec::new();
        index.lookup_batch(&queries, &mut a);
        back.lookup_batch(&queries, &mut b);
        assert_eq!(a, b);
        assert_eq!(a.len(), 100_000);
        // Growth from inserts keeps the invariants.
        for i in 0..20_000u64 {
            back.insert(&digest(1_000_000 + i), i);
        }
        back.check();
        assert_eq!(back.len(), 120_000);
    }
}
