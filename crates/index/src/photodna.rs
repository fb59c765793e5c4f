//! Exact Euclidean-radius index for PhotoDNA values.
//!
//! Safeguard does not compute PhotoDNA (it is licensed by Microsoft); it stores and matches the
//! 144-byte values that hotlines distribute and that an operator's licensed hasher produces.
//! Two values match when the Euclidean distance between them, taken as 144 unsigned bytes, is
//! at most the operator's threshold.
//!
//! The index answers exactly what a brute-force scan answers. Entries are kept in a block
//! sorted by their Euclidean norm: by the triangle inequality every match `e` of query `q`
//! within radius `r` has `| |e| - |q| | <= r`, so a query scans only the slice of the block
//! whose norms fall in `[|q| - r, |q| + r]`; inside it, each candidate's first 16 bytes (kept
//! in a contiguous array) are checked before the rest, and a candidate is abandoned as soon as
//! its partial sum passes `r²`. New entries go to a small unsorted tail that is scanned
//! whole; the tail is merged into the block when it grows past an eighth of the block.
//! Removed entries are tombstoned and dropped at the next merge.

use std::collections::HashMap;

/// Bytes in a PhotoDNA value.
pub const PHOTODNA_LEN: usize = 144;

/// A PhotoDNA value: 144 unsigned bytes.
pub type PhotoDnaValue = [u8; PHOTODNA_LEN];

/// Tail entries below which the tail is never merged (merging costs a full re-sort).
const MIN_TAIL_BEFORE_MERGE: usize = 4096;

/// Squared Euclidean distance between two values (at most 144 · 255², fits in u32).
#[inline]
pub fn photodna_distance_sq(a: &PhotoDnaValue, b: &PhotoDnaValue) -> u32 {
    // Sixteen independent lanes so the compiler vectorises the loop.
    let mut acc = [0u32; 16];
    for (ca, cb) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
        for i in 0..16 {
            let d = ca[i] as i32 - cb[i] as i32;
            acc[i] += (d * d) as u32;
        }
    }
    acc.iter().sum()
}

/// Squared distance of one 16-byte chunk (sixteen independent lanes, so it vectorises).
#[inline]
fn chunk_sq(a: &[u8; 16], b: &[u8; 16]) -> u32 {
    let mut acc = [0u32; 16];
    for i in 0..16 {
        let d = a[i] as i32 - b[i] as i32;
        acc[i] = (d * d) as u32;
    }
    acc.iter().sum()
}

/// Squared distance, or `None` as soon as the partial sum exceeds `limit_sq`. Checked every 16
/// bytes: for unrelated vectors the first 16 bytes almost always exceed a matching radius.
/// `from` bytes (a multiple of 16) are already summed in `total`.
#[inline]
fn distance_sq_within(
    a: &PhotoDnaValue,
    b: &PhotoDnaValue,
    limit_sq: u32,
    from: usize,
    mut total: u32,
) -> Option<u32> {
    for (ca, cb) in a[from..].chunks_exact(16).zip(b[from..].chunks_exact(16)) {
        total += chunk_sq(
            ca.try_into().expect("16 bytes"),
            cb.try_into().expect("16 bytes"),
        );
        if total > limit_sq {
            return None;
        }
    }
    Some(total)
}

fn norm(v: &PhotoDnaValue) -> f64 {
    v.iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt()
}

/// Where a live entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loc {
    /// In the sorted block, at this position.
    Block(usize),
    /// In the tail, at this position.
    Tail(usize),
}

/// One match: the entry id and its Euclidean distance to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhotoDnaMatch {
    /// The id the entry was added with.
    pub id: u64,
    /// Euclidean distance.
    pub distance: f64,
}

/// Bytes of each value checked first, from a contiguous array: for unrelated values they
/// almost always exceed a matching radius already, so most candidates cost 16 sequential
/// bytes instead of a 144-byte row.
const PREFIX: usize = 16;

/// Exact radius search over PhotoDNA values, with live additions and removals.
#[derive(Debug, Default, Clone)]
pub struct PhotoDnaIndex {
    /// Sorted block: norms ascending, with ids, liveness, value prefixes and whole values in
    /// the same order.
    norms: Vec<f64>,
    ids: Vec<u64>,
    alive: Vec<bool>,
    prefixes: Vec<[u8; PREFIX]>,
    values: Vec<PhotoDnaValue>,
    /// Unsorted recent additions.
    tail_ids: Vec<u64>,
    tail_values: Vec<PhotoDnaValue>,
    /// Live entries and where they are. Ids not here are absent or removed.
    live: HashMap<u64, Loc>,
    /// Removed entries still physically in the block.
    dead_in_block: usize,
}

impl PhotoDnaIndex {
    /// An empty index.
    pub fn new() -> PhotoDnaIndex {
        PhotoDnaIndex::default()
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether there are no live entries.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Bytes of heap memory held, approximately.
    pub fn memory_bytes(&self) -> usize {
        let block = self.values.capacity() * PHOTODNA_LEN
            + self.prefixes.capacity() * PREFIX
            + self.norms.capacity() * 8
            + self.alive.capacity();
        let ids = (self.ids.capacity() + self.tail_ids.capacity()) * 8;
        let tail = self.tail_values.capacity() * PHOTODNA_LEN;
        // hashbrown: key + value + control byte.
        let live = self.live.capacity() * 25;
        block + ids + tail + live
    }

    /// Every live entry, in no particular order (for snapshots).
    pub fn entries(&self) -> Vec<(u64, &PhotoDnaValue)> {
        let block = self
            .ids
            .iter()
            .zip(&self.values)
            .zip(&self.alive)
            .filter(|(_, alive)| **alive)
            .map(|(e, _)| e);
        let tail = self.tail_ids.iter().zip(&self.tail_values);
        block.chain(tail).map(|(id, v)| (*id, v)).collect()
    }

    /// Adds an entry. Ids are unique: adding a live id again replaces its value.
    pub fn add(&mut self, id: u64, value: &PhotoDnaValue) {
        if self.live.contains_key(&id) {
            self.remove(id);
        }
        self.live.insert(id, Loc::Tail(self.tail_ids.len()));
        self.tail_ids.push(id);
        self.tail_values.push(*value);
        if self.tail_ids.len() > MIN_TAIL_BEFORE_MERGE.max(self.ids.len() / 8) {
            self.merge();
        }
    }

    /// Removes an entry; returns whether it was live.
    pub fn remove(&mut self, id: u64) -> bool {
        match self.live.remove(&id) {
            None => false,
            Some(Loc::Tail(pos)) => {
                self.tail_ids.swap_remove(pos);
                self.tail_values.swap_remove(pos);
                if let Some(&moved) = self.tail_ids.get(pos) {
                    self.live.insert(moved, Loc::Tail(pos));
                }
                true
            }
            Some(Loc::Block(pos)) => {
                self.alive[pos] = false;
                self.dead_in_block += 1;
                if self.dead_in_block > MIN_TAIL_BEFORE_MERGE.max(self.ids.len() / 4) {
                    self.merge();
                }
                true
            }
        }
    }

    /// Rebuilds the sorted block from its live entries and the tail.
    fn merge(&mut self) {
        let mut all: Vec<(f64, u64, PhotoDnaValue)> = Vec::with_capacity(self.live.len());
        for i in 0..self.ids.len() {
            if self.alive[i] {
                all.push((self.norms[i], self.ids[i], self.values[i]));
            }
        }
        for (id, v) in self.tail_ids.drain(..).zip(self.tail_values.drain(..)) {
            all.push((norm(&v), id, v));
        }
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        self.norms = all.iter().map(|e| e.0).collect();
        self.ids = all.iter().map(|e| e.1).collect();
        self.alive = vec![true; all.len()];
        self.prefixes = all
            .iter()
            .map(|e| e.2[..PREFIX].try_into().expect("16 bytes"))
            .collect();
        self.values = all.into_iter().map(|e| e.2).collect();
        for (pos, id) in self.ids.iter().enumerate() {
            self.live.insert(*id, Loc::Block(pos));
        }
        self.dead_in_block = 0;
    }

    /// Every live entry within Euclidean distance `radius` of `query` (inclusive), sorted by
    /// distance then id. A negative or NaN radius matches nothing.
    pub fn search(&self, query: &PhotoDnaValue, radius: f64) -> Vec<PhotoDnaMatch> {
        let mut out = Vec::new();
        if radius.is_nan() || radius < 0.0 {
            return out;
        }
        // Distances are square roots of integers: compare squares in integers, exactly.
        let limit_sq = (radius * radius).floor().min(u32::MAX as f64) as u32;
        let qn = norm(query);
        // The f64 norms carry rounding error of a few ulps; widen the window so no entry on
        // the boundary is lost (the exact integer check below decides).
        let slack = 1e-6 * (1.0 + qn);
        let lo = qn - radius - slack;
        let hi = qn + radius + slack;
        let start = self.norms.partition_point(|&n| n < lo);
        let end = start + self.norms[start..].partition_point(|&n| n <= hi);
        let query_prefix: &[u8; PREFIX] = query[..PREFIX].try_into().expect("16 bytes");
        for (i, prefix) in self.prefixes[start..end].iter().enumerate() {
            let prefix_sq = chunk_sq(prefix, query_prefix);
            if prefix_sq > limit_sq {
                continue;
            }
            let i = start + i;
            if !self.alive[i] {
                continue;
            }
            if let Some(d) = distance_sq_within(&self.values[i], query, limit_sq, PREFIX, prefix_sq)
            {
                out.push(PhotoDnaMatch {
                    id: self.ids[i],
                    distance: (d as f64).sqrt(),
                });
            }
        }
        for (id, v) in self.tail_ids.iter().zip(&self.tail_values) {
            if let Some(d) = distance_sq_within(v, query, limit_sq, 0, 0) {
                out.push(PhotoDnaMatch {
                    id: *id,
                    distance: (d as f64).sqrt(),
                });
            }
        }
        out.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute(entries: &HashMap<u64, PhotoDnaValue>, q: &PhotoDnaValue, r: f64) -> Vec<u64> {
        let mut v: Vec<(u32, u64)> = entries
            .iter()
            .map(|(id, e)| (photodna_distance_sq(e, q), *id))
            .filter(|(d, _)| (*d as f64).sqrt() <= r)
            .collect();
        v.sort();
        v.into_iter().map(|(_, id)| id).collect()
    }

    fn perturb(v: &PhotoDnaValue, seed: u64, amount: u8) -> PhotoDnaValue {
        let mut out = *v;
        let mut s = seed | 1;
        for b in out.iter_mut() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let delta = (s % (2 * amount as u64 + 1)) as i32 - amount as i32;
            *b = (*b as i32 + delta).clamp(0, 255) as u8;
        }
        out
    }

    #[test]
    fn distance_is_euclidean() {
        let a = [0u8; PHOTODNA_LEN];
        let mut b = [0u8; PHOTODNA_LEN];
        b[0] = 3;
        b[143] = 4;
        assert_eq!(photodna_distance_sq(&a, &b), 25);
        let mut idx = PhotoDnaIndex::new();
        idx.add(7, &b);
        let m = idx.search(&a, 5.0);
        assert_eq!(
            m,
            vec![PhotoDnaMatch {
                id: 7,
                distance: 5.0
            }]
        );
        assert!(idx.search(&a, 4.999).is_empty());
        assert!(idx.search(&a, -1.0).is_empty());
        assert!(idx.search(&a, f64::NAN).is_empty());
        // The largest possible distance.
        let max = [255u8; PHOTODNA_LEN];
        assert_eq!(photodna_distance_sq(&a, &max), 144 * 255 * 255);
    }

    #[test]
    fn add_replace_remove() {
        let mut idx = PhotoDnaIndex::new();
        let a = [10u8; PHOTODNA_LEN];
        let b = [200u8; PHOTODNA_LEN];
        idx.add(1, &a);
        assert_eq!(idx.search(&a, 0.0).len(), 1);
        idx.add(1, &b);
        assert_eq!(idx.len(), 1);
        assert!(idx.search(&a, 0.0).is_empty());
        assert_eq!(idx.search(&b, 0.0)[0].id, 1);
        assert_eq!(idx.entries(), vec![(1, &b)]);
        assert!(idx.remove(1));
        assert!(!idx.remove(1));
        assert!(idx.search(&b, 0.0).is_empty());
        assert!(idx.is_empty());
    }

    #[test]
    fn merged_block_and_tail_agree_with_brute_force() {
        // Enough entries to force several merges and tombstone compactions.
        let mut idx = PhotoDnaIndex::new();
        let mut truth = HashMap::new();
        let base: Vec<PhotoDnaValue> = (0..40u64)
            .map(|i| perturb(&[128u8; PHOTODNA_LEN], i * 7919 + 1, 120))
            .collect();
        for id in 0..20_000u64 {
            let v = perturb(&base[(id % 40) as usize], id + 3, 6);
            idx.add(id, &v);
            truth.insert(id, v);
        }
        for id in (0..20_000u64).step_by(3) {
            assert!(idx.remove(id));
            truth.remove(&id);
        }
        for (qi, b) in base.iter().enumerate() {
            let q = perturb(b, 99 + qi as u64, 4);
            for r in [0.0, 20.0, 60.0, 90.0] {
                let got: Vec<u64> = idx.search(&q, r).iter().map(|m| m.id).collect();
                let mut want = brute(&truth, &q, r);
                let mut got_sorted = got.clone();
                got_sorted.sort();
                want.sort();
                assert_eq!(got_sorted, want, "query {qi} radius {r}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn equals_brute_force(
            ops in proptest::collection::vec((0u64..300, any::<bool>(), 0u64..1000), 1..600),
            qseed in 0u64..1000,
            radius in 0.0f64..400.0,
        ) {
            let base = [100u8; PHOTODNA_LEN];
            let mut idx = PhotoDnaIndex::new();
            let mut truth = HashMap::new();
            for (id, add, seed) in ops {
                if add {
                    let v = perturb(&base, seed, 20);
                    idx.add(id, &v);
                    truth.insert(id, v);
                } else {
                    prop_assert_eq!(idx.remove(id), truth.remove(&id).is_some());
                }
            }
            prop_assert_eq!(idx.len(), truth.len());
            let q = perturb(&base, qseed, 20);
            let got = idx.search(&q, radius);
            let mut got_ids: Vec<u64> = got.iter().map(|m| m.id).collect();
            got_ids.sort();
            let mut want = brute(&truth, &q, radius);
            want.sort();
            prop_assert_eq!(got_ids, want);
            for m in got {
                let d = (photodna_distance_sq(&truth[&m.id], &q) as f64).sqrt();
                prop_assert_eq!(m.distance, d);
            }
        }
    }
}
