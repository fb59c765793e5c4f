//! A segment: an immutable, code-sorted run of entries with its multi-index hash tables.
//!
//! Segments are built once (from a list, from a frozen tail, or by merging segments) and never
//! change afterwards, except for tombstone bits. Readers therefore search them without locks.

use std::sync::OnceLock;

use crate::kernel::{distance, prefetch};
use crate::memory;
use crate::plan::{
    self, choose_layout, linear_cost, CostModel, Layout, QueryPlan, TableSpec, MAX_RADIUS,
};
use crate::tombstone::Tombstones;

/// A PDQ code as four words, most significant first (`PdqHash::words`). Comparing codes as
/// arrays compares the 256-bit integers.
pub(crate) type Code = [u64; 4];

/// Most entries one segment may hold. Slots and directory offsets are `u32`, and an indirect
/// entry packs the slot with at least one suffix bit.
pub(crate) const MAX_SEGMENT_ENTRIES: usize = 1 << 31;

/// Entries from which table building is split across threads; below it, thread start-up
/// costs more than it saves.
const PARALLEL_BUILD_ENTRIES: usize = 1 << 20;

/// How many probes (ranges, candidates) ahead of the current one the query loop prefetches.
/// Enough to cover a DRAM miss with a few dozen nanoseconds of work per element.
const PROBE_PREFETCH: usize = 16;
const RANGE_PREFETCH: usize = 8;
const CANDIDATE_PREFETCH: usize = 16;

/// A query plan is abandoned for a linear scan once the work found so far exceeds this
/// multiple of the scan's estimated cost. It bounds any query, however dense the cluster it
/// lands in, to a small multiple of one scan.
const FALLBACK_FACTOR: f64 = 1.0;

/// Marks a range of the direct table (instead of an indirect table's index).
const DIRECT: u16 = u16::MAX;

/// Bits `[start, start + width)` of `code` (bit 0 = least significant), `width ≤ 64`.
#[inline(always)]
pub(crate) fn code_bits(code: &Code, start: u32, width: u32) -> u64 {
    let word = (start / 64) as usize;
    let lo = code[3 - word];
    let hi = if word < 3 { code[2 - word] } else { 0 };
    let v = ((((hi as u128) << 64) | lo as u128) >> (start % 64)) as u64;
    if width >= 64 {
        v
    } else {
        v & ((1u64 << width) - 1)
    }
}

/// Calls `visit(mask, flips)` for every `bits`-bit mask with at most `t` bits set.
#[inline(always)]
fn for_each_flip(bits: u32, t: u32, mut visit: impl FnMut(u64, u32)) {
    visit(0, 0);
    let limit = 1u64 << bits;
    for k in 1..=t.min(bits) {
        let mut m: u64 = (1 << k) - 1;
        while m < limit {
            visit(m, k);
            // Gosper's hack: the next larger integer with the same number of set bits.
            let c = m & m.wrapping_neg();
            let r = m + c;
            m = (((r ^ m) >> 2) >> c.trailing_zeros()) | r;
        }
    }
}

/// One indirect table.
#[derive(Debug)]
struct Table {
    spec: TableSpec,
    /// `dir[k]..dir[k + 1]` is the range of `entries` whose key prefix is `k`; `2^prefix + 1`
    /// cells, the last equal to the number of entries.
    dir: Vec<u32>,
    /// Per code, `(suffix << slot_bits) | slot`, grouped by prefix, slots ascending within a
    /// bucket.
    entries: Vec<u32>,
}

/// A bucket to scan, found by stage 1 of a query.
#[derive(Clone, Copy, Debug)]
struct Range {
    lo: u32,
    hi: u32,
    /// Index of the indirect table, or [`DIRECT`].
    table: u16,
    /// Suffix bits that may still differ (the table radius minus the prefix flips).
    budget: u16,
}

/// A directory cell to read, found by stage 1a of a query.
#[derive(Clone, Copy, Debug)]
struct Probe {
    key: u32,
    /// Index of the indirect table, or [`DIRECT`].
    table: u16,
    /// Suffix bits that may still differ.
    budget: u16,
}

/// Per-thread buffers reused across queries so that a query does not allocate.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    probes: Vec<Probe>,
    ranges: Vec<Range>,
    candidates: Vec<u32>,
    hits: Vec<(u32, u32)>,
    suffixes: Vec<u32>,
}

/// An immutable, sorted run of entries with its tables.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Codes in ascending order of `(code, id)`, no duplicate pair; the slot is the position.
    codes: Vec<Code>,
    /// `ids[slot]`: the caller's id of the entry.
    ids: Vec<u64>,
    /// Removed slots.
    dead: Tombstones,
    layout: Layout,
    /// Direct table: `direct_dir[k]..direct_dir[k + 1]` is the slot range whose top
    /// `layout.direct_bits` bits equal `k` (contiguous because codes are sorted). Empty for a
    /// linear layout.
    direct_dir: Vec<u32>,
    tables: Vec<Table>,
    /// The query plan per radius, computed on first use.
    plans: Box<[OnceLock<QueryPlan>]>,
    model: CostModel,
}

impl Segment {
    /// Builds a segment from unsorted entries, dropping duplicate `(code, id)` pairs.
    pub(crate) fn build(codes: Vec<Code>, ids: Vec<u64>, model: CostModel) -> Segment {
        let (codes, ids) = sort_entries(codes, ids);
        Segment::from_sorted(codes, ids, model)
    }

    /// Builds a segment from entries sorted by `(code, id)` without duplicates.
    pub(crate) fn from_sorted(codes: Vec<Code>, ids: Vec<u64>, model: CostModel) -> Segment {
        let n = codes.len();
        assert_eq!(n, ids.len());
        assert!(n <= MAX_SEGMENT_ENTRIES, "segment of {n} entries");
        debug_assert!(codes
            .windows(2)
            .zip(ids.windows(2))
            .all(|(c, i)| (c[0], i[0]) < (c[1], i[1])));
        let layout = choose_layout(n, &model);
        Segment::assemble(codes, ids, layout, model)
    }

    /// Builds the directories and tables of `layout` over sorted entries.
    fn assemble(codes: Vec<Code>, ids: Vec<u64>, layout: Layout, model: CostModel) -> Segment {
        let direct_dir = if layout.is_linear() {
            Vec::new()
        } else {
            build_direct(&codes, layout.direct_bits)
        };
        let tables = build_tables(&codes, &layout);
        Segment {
            dead: Tombstones::new(codes.len()),
            codes,
            ids,
            layout,
            direct_dir,
            tables,
            plans: (0..=MAX_RADIUS).map(|_| OnceLock::new()).collect(),
            model,
        }
    }

    /// Merges the live entries of `inputs` into one segment.
    pub(crate) fn merge(inputs: &[&Segment], model: CostModel) -> Segment {
        let total: usize = inputs.iter().map(|s| s.live()).sum();
        let mut codes = memory::with_capacity(total);
        let mut ids = memory::with_capacity(total);
        // k-way merge by repeated minimum: k is small (a handful of segments).
        let mut heads: Vec<usize> = inputs.iter().map(|s| s.next_live(0)).collect();
        loop {
            let mut best: Option<(usize, (&Code, u64))> = None;
            for (k, seg) in inputs.iter().enumerate() {
                let h = heads[k];
                if h < seg.len() {
                    let key = (&seg.codes[h], seg.ids[h]);
                    if best.is_none_or(|(_, b)| key < b) {
                        best = Some((k, key));
                    }
                }
            }
            let Some((k, (code, id))) = best else { break };
            // The set invariant allows at most one live copy of a pair; skipping equal
            // neighbours keeps the output strictly sorted regardless.
            if codes.last() != Some(code) || ids.last() != Some(&id) {
                codes.push(*code);
                ids.push(id);
            }
            heads[k] = inputs[k].next_live(heads[k] + 1);
        }
        Segment::from_sorted(codes, ids, model)
    }

    fn next_live(&self, mut slot: usize) -> usize {
        while slot < self.codes.len() && self.dead.is_dead(slot) {
            slot += 1;
        }
        slot
    }

    /// Number of slots, live or removed.
    pub(crate) fn len(&self) -> usize {
        self.codes.len()
    }

    /// Number of live entries.
    pub(crate) fn live(&self) -> usize {
        self.codes.len() - self.dead.count()
    }

    pub(crate) fn id(&self, slot: u32) -> u64 {
        self.ids[slot as usize]
    }

    /// Live entries in `(code, id)` order.
    pub(crate) fn live_entries(&self) -> impl Iterator<Item = (&Code, u64)> + '_ {
        (0..self.codes.len())
            .filter(|&s| !self.dead.is_dead(s))
            .map(|s| (&self.codes[s], self.ids[s]))
    }

    /// Marks a slot removed; returns whether it was live.
    pub(crate) fn kill(&self, slot: u32) -> bool {
        self.dead.kill(slot as usize)
    }

    /// The slot of the live entry `(code, id)`, if present.
    pub(crate) fn find(&self, code: &Code, id: u64) -> Option<u32> {
        let (lo, hi) = if self.layout.is_linear() {
            (0, self.codes.len())
        } else {
            let k = (code[0] >> (64 - self.layout.direct_bits)) as usize;
            (self.direct_dir[k] as usize, self.direct_dir[k + 1] as usize)
        };
        // Binary search for the first slot not below (code, id).
        let (mut lo, mut hi) = (lo, hi);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if (&self.codes[mid], self.ids[mid]) < (code, id) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let slot = lo;
        (slot < self.codes.len()
            && self.codes[slot] == *code
            && self.ids[slot] == id
            && !self.dead.is_dead(slot))
        .then_some(slot as u32)
    }

    /// Bytes of memory held (capacities, not lengths).
    pub(crate) fn bytes(&self) -> usize {
        self.codes.capacity() * size_of::<Code>()
            + self.ids.capacity() * 8
            + self.dead.bytes()
            + self.direct_dir.capacity() * 4
            + self
                .tables
                .iter()
                .map(|t| (t.dir.capacity() + t.entries.capacity()) * 4)
                .sum::<usize>()
    }

    /// The layout, for statistics and tests.
    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    fn plan(&self, radius: u32) -> &QueryPlan {
        self.plans[radius as usize]
            .get_or_init(|| plan::plan_query(&self.layout, self.codes.len(), radius, &self.model))
    }

    /// Calls `hit(slot, distance)` for every live entry within `radius` of `q` (each once).
    ///
    /// `#[inline(always)]` so that it compiles inside `kernel::popcnt_dispatch` entry points.
    #[inline(always)]
    pub(crate) fn search(
        &self,
        q: &Code,
        radius: u32,
        scratch: &mut Scratch,
        force_linear: bool,
        mut hit: impl FnMut(u32, u32),
    ) {
        let plan = match self.plan(radius) {
            QueryPlan::Probe(p) if !force_linear => p,
            _ => return self.scan_linear(q, radius, &mut hit),
        };
        let budget = linear_cost(self.codes.len(), &self.model) * FALLBACK_FACTOR;
        if !self.collect_ranges(q, plan.direct, &plan.tables, scratch, budget) {
            return self.scan_linear(q, radius, &mut hit);
        }
        scratch.hits.clear();
        scratch.candidates.clear();
        if !self.scan_ranges(q, radius, scratch, budget) {
            return self.scan_linear(q, radius, &mut hit);
        }
        self.verify_candidates(q, radius, scratch);
        let hits = &mut scratch.hits;
        // A code can be found through several tables; only matches (few) are de-duplicated.
        hits.sort_unstable();
        hits.dedup_by_key(|h| h.0);
        for &(slot, d) in hits.iter() {
            if !self.dead.is_dead(slot as usize) {
                hit(slot, d);
            }
        }
    }

    /// Stage 1: the buckets to scan. Returns false when they already cost more than `budget`.
    #[inline(always)]
    fn collect_ranges(
        &self,
        q: &Code,
        direct_radius: i32,
        radii: &[i32],
        scratch: &mut Scratch,
        budget: f64,
    ) -> bool {
        // 1a: every key to probe (arithmetic only).
        let probes = &mut scratch.probes;
        probes.clear();
        scratch.suffixes.clear();
        if direct_radius >= 0 {
            let bits = self.layout.direct_bits;
            let top = q[0] >> (64 - bits);
            for_each_flip(bits, direct_radius as u32, |mask, _| {
                probes.push(Probe {
                    key: (top ^ mask) as u32,
                    table: DIRECT,
                    budget: 0,
                });
            });
        }
        for (i, (table, &t)) in self.tables.iter().zip(radii).enumerate() {
            let spec = table.spec;
            let key = code_bits(q, spec.start, spec.key_bits());
            scratch
                .suffixes
                .push((key & ((1u64 << spec.suffix_bits) - 1)) as u32);
            if t < 0 {
                continue;
            }
            let prefix = key >> spec.suffix_bits;
            for_each_flip(spec.prefix_bits, t as u32, |mask, flips| {
                probes.push(Probe {
                    key: (prefix ^ mask) as u32,
                    table: i as u16,
                    budget: (t as u32 - flips) as u16,
                });
            });
        }
        // 1b: the directory cells, prefetched ahead. No branch depends on a loaded value, so
        // a mispredicted branch never discards the misses in flight; empty ranges are kept.
        let ranges = &mut scratch.ranges;
        ranges.clear();
        ranges.reserve(probes.len());
        let mut direct_codes = 0u64;
        let mut entries = 0u64;
        for (j, p) in probes.iter().enumerate() {
            if let Some(ahead) = probes.get(j + PROBE_PREFETCH) {
                prefetch(&self.directory(ahead.table)[ahead.key as usize]);
            }
            let dir = self.directory(p.table);
            let (lo, hi) = (dir[p.key as usize], dir[p.key as usize + 1]);
            let size = u64::from(hi - lo);
            if p.table == DIRECT {
                direct_codes += size;
            } else {
                entries += size;
            }
            ranges.push(Range {
                lo,
                hi,
                table: p.table,
                budget: p.budget,
            });
        }
        let m = &self.model;
        (ranges.len() as f64 * m.probe
            + direct_codes as f64 * m.direct_code
            + entries as f64 * m.entry)
            <= budget
    }

    #[inline(always)]
    fn directory(&self, table: u16) -> &[u32] {
        if table == DIRECT {
            &self.direct_dir
        } else {
            &self.tables[table as usize].dir
        }
    }

    /// Stage 2: verify direct buckets in place; filter indirect buckets by suffix into
    /// candidates. Returns false when the candidates cost more than `budget` to verify.
    #[inline(always)]
    fn scan_ranges(&self, q: &Code, radius: u32, scratch: &mut Scratch, budget: f64) -> bool {
        let Scratch {
            ranges,
            candidates,
            hits,
            suffixes,
            ..
        } = scratch;
        let slot_bits = self.layout.slot_bits;
        debug_assert!(slot_bits < 32, "segments hold at most 2^31 entries");
        let slot_mask = (1u32 << slot_bits) - 1;
        // Room for every indirect entry (counted in stage 1): each bucket is filtered
        // branch-free into its own window, then the windows are packed by advancing `end`.
        candidates.clear();
        candidates.resize(scratch_entries(ranges), 0);
        let mut end = 0;
        for (j, r) in ranges.iter().enumerate() {
            if let Some(ahead) = ranges.get(j + RANGE_PREFETCH) {
                // `lo` equals the length for an empty range at the end: `get` skips it.
                if ahead.table == DIRECT {
                    if let Some(c) = self.codes.get(ahead.lo as usize) {
                        prefetch(c);
                    }
                } else if let Some(e) = self.tables[ahead.table as usize]
                    .entries
                    .get(ahead.lo as usize)
                {
                    prefetch(e);
                }
            }
            if r.table == DIRECT {
                for slot in r.lo..r.hi {
                    let d = distance(&self.codes[slot as usize], q);
                    if d <= radius {
                        hits.push((slot, d));
                    }
                }
            } else {
                let bucket = &self.tables[r.table as usize].entries[r.lo as usize..r.hi as usize];
                let out = &mut candidates[end..end + bucket.len()];
                end += filter_bucket(
                    bucket,
                    out,
                    slot_bits,
                    slot_mask,
                    suffixes[r.table as usize],
                    u32::from(r.budget),
                );
            }
        }
        candidates.truncate(end);
        candidates.len() as f64 * self.model.candidate <= budget
    }

    /// Stage 3: verify indirect candidates against their codes.
    #[inline(always)]
    fn verify_candidates(&self, q: &Code, radius: u32, scratch: &mut Scratch) {
        let Scratch {
            candidates, hits, ..
        } = scratch;
        for (j, &slot) in candidates.iter().enumerate() {
            if let Some(&ahead) = candidates.get(j + CANDIDATE_PREFETCH) {
                prefetch(&self.codes[ahead as usize]);
            }
            let d = distance(&self.codes[slot as usize], q);
            if d <= radius {
                hits.push((slot, d));
            }
        }
    }

    /// Exhaustive scan of every code: exact for any radius, the fallback for dense clusters.
    #[inline(always)]
    pub(crate) fn scan_linear(&self, q: &Code, radius: u32, hit: &mut impl FnMut(u32, u32)) {
        for (slot, code) in self.codes.iter().enumerate() {
            let d = distance(code, q);
            if d <= radius && !self.dead.is_dead(slot) {
                hit(slot as u32, d);
            }
        }
    }
}

/// Indirect entries in `ranges`.
#[inline(always)]
fn scratch_entries(ranges: &[Range]) -> usize {
    ranges
        .iter()
        .filter(|r| r.table != DIRECT)
        .map(|r| (r.hi - r.lo) as usize)
        .sum()
}

/// Writes the slots of the entries of `bucket` whose suffix is within `budget` bits of `qs`
/// to the front of `out` (as long as `bucket`), returning how many.
///
/// Branch-free: every slot is written and the end advances only past those that pass (about
/// one in four for random codes, which a branch would mispredict).
#[inline(always)]
fn filter_bucket(
    bucket: &[u32],
    out: &mut [u32],
    slot_bits: u32,
    slot_mask: u32,
    qs: u32,
    budget: u32,
) -> usize {
    let mut k = 0;
    for (&e, o) in bucket.iter().zip(0..out.len()) {
        out[k.min(o)] = e & slot_mask;
        k += usize::from(((e >> slot_bits) ^ qs).count_ones() <= budget);
    }
    k
}

/// Sorts entries by `(code, id)` and drops duplicate pairs.
///
/// A counting sort on the top bits spreads the entries into small buckets (one pass, out of
/// place), which are then sorted individually: O(n) for uniform codes and O(n log n) at worst
/// for a bank made of one dense cluster.
pub(crate) fn sort_entries(codes: Vec<Code>, ids: Vec<u64>) -> (Vec<Code>, Vec<u64>) {
    let n = codes.len();
    assert_eq!(n, ids.len());
    let (mut codes, mut ids) = if n < 4096 {
        let mut pairs: Vec<(Code, u64)> = codes.into_iter().zip(ids).collect();
        pairs.sort_unstable();
        pairs.into_iter().unzip()
    } else {
        let bits = plan::slot_bits_for(n).saturating_sub(2).clamp(8, 24);
        let shift = 64 - bits;
        let mut start = vec![0u32; (1 << bits) + 1];
        for c in &codes {
            start[(c[0] >> shift) as usize + 1] += 1;
        }
        for k in 1..start.len() {
            start[k] += start[k - 1];
        }
        let mut cursor = start[..1 << bits].to_vec();
        let mut out_codes: Vec<Code> = memory::zeroed(n);
        let mut out_ids: Vec<u64> = memory::zeroed(n);
        for (c, &id) in codes.iter().zip(&ids) {
            let k = (c[0] >> shift) as usize;
            let pos = cursor[k] as usize;
            cursor[k] += 1;
            out_codes[pos] = *c;
            out_ids[pos] = id;
        }
        drop(codes);
        drop(ids);
        let mut scratch: Vec<(Code, u64)> = Vec::new();
        for k in 0..1 << bits {
            let (lo, hi) = (start[k] as usize, start[k + 1] as usize);
            if hi - lo < 2 {
                continue;
            }
            scratch.clear();
            scratch.extend(
                out_codes[lo..hi]
                    .iter()
                    .copied()
                    .zip(out_ids[lo..hi].iter().copied()),
            );
            scratch.sort_unstable();
            for (i, (c, id)) in scratch.iter().enumerate() {
                out_codes[lo + i] = *c;
                out_ids[lo + i] = *id;
            }
        }
        (out_codes, out_ids)
    };
    // Drop duplicate pairs, which are now adjacent.
    let mut w = 0;
    for r in 0..codes.len() {
        if w > 0 && codes[w - 1] == codes[r] && ids[w - 1] == ids[r] {
            continue;
        }
        codes[w] = codes[r];
        ids[w] = ids[r];
        w += 1;
    }
    if w < codes.len() {
        codes.truncate(w);
        ids.truncate(w);
        codes.shrink_to_fit();
        ids.shrink_to_fit();
    }
    (codes, ids)
}

fn build_direct(codes: &[Code], bits: u32) -> Vec<u32> {
    let mut dir: Vec<u32> = memory::zeroed((1 << bits) + 1);
    for c in codes {
        dir[(c[0] >> (64 - bits)) as usize + 1] += 1;
    }
    for k in 1..dir.len() {
        dir[k] += dir[k - 1];
    }
    dir
}

fn build_table(codes: &[Code], spec: TableSpec, slot_bits: u32) -> Table {
    let (p, s) = (spec.prefix_bits, spec.suffix_bits);
    let suffix_mask = (1u64 << s) - 1;
    let mut dir: Vec<u32> = memory::zeroed((1 << p) + 1);
    for c in codes {
        dir[(code_bits(c, spec.start, p + s) >> s) as usize + 1] += 1;
    }
    for k in 1..dir.len() {
        dir[k] += dir[k - 1];
    }
    let mut cursor = dir[..1 << p].to_vec();
    let mut entries: Vec<u32> = memory::zeroed(codes.len());
    for (slot, c) in codes.iter().enumerate() {
        let key = code_bits(c, spec.start, p + s);
        let k = (key >> s) as usize;
        let suffix = (key & suffix_mask) as u32;
        entries[cursor[k] as usize] = suffix.checked_shl(slot_bits).unwrap_or(0) | slot as u32;
        cursor[k] += 1;
    }
    Table { spec, dir, entries }
}

/// Builds the indirect tables, split across threads for large segments.
fn build_tables(codes: &[Code], layout: &Layout) -> Vec<Table> {
    let specs = &layout.tables;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if codes.len() < PARALLEL_BUILD_ENTRIES || threads < 2 || specs.len() < 2 {
        return specs
            .iter()
            .map(|&s| build_table(codes, s, layout.slot_bits))
            .collect();
    }
    let mut out: Vec<Option<Table>> = specs.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let chunk = specs.len().div_ceil(threads);
        for (spec_chunk, out_chunk) in specs.chunks(chunk).zip(out.chunks_mut(chunk)) {
            scope.spawn(move || {
                for (s, o) in spec_chunk.iter().zip(out_chunk) {
                    *o = Some(build_table(codes, *s, layout.slot_bits));
                }
            });
        }
    });
    // Every chunk's thread filled its slots before the scope ended.
    out.into_iter()
        .map(|t| t.expect("table built by its thread"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_bits_crosses_words() {
        let code: Code = [0, 0, 0b1011, 1 << 63];
        assert_eq!(code_bits(&code, 63, 3), 0b111);
        assert_eq!(code_bits(&code, 64, 4), 0b1011);
        assert_eq!(code_bits(&code, 0, 64), 1 << 63);
        assert_eq!(code_bits(&[1 << 63, 0, 0, 0], 255, 1), 1);
        assert_eq!(code_bits(&[u64::MAX, 0, 0, 0], 250, 6), 0b111111);
    }

    #[test]
    fn flips_enumerate_the_ball() {
        let mut seen = Vec::new();
        for_each_flip(5, 2, |m, f| {
            assert_eq!(m.count_ones(), f);
            seen.push(m);
        });
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 1 + 5 + 10);
        let mut all = 0;
        for_each_flip(4, 9, |_, _| all += 1);
        assert_eq!(all, 16);
    }

    #[test]
    fn sort_drops_duplicates() {
        let codes = vec![[3, 0, 0, 0], [1, 0, 0, 0], [3, 0, 0, 0], [1, 0, 0, 0]];
        let ids = vec![7, 2, 7, 1];
        let (c, i) = sort_entries(codes, ids);
        assert_eq!(c, vec![[1, 0, 0, 0], [1, 0, 0, 0], [3, 0, 0, 0]]);
        assert_eq!(i, vec![1, 2, 7]);
    }
}

/// Measurements behind the cost model and the layout choice (`docs/performance.md`).
///
/// `SG_N=10000000 cargo test --release -p safeguard-index -- --ignored --nocapture measure`
#[cfg(test)]
mod measure {
    use super::*;
    use std::time::Instant;

    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// CPU time of this thread in seconds: unlike wall time, not inflated when other work on
    /// a shared machine takes the core.
    fn cpu() -> f64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
    }

    fn with_layout(codes: Vec<Code>, ids: Vec<u64>, layout: Layout) -> Segment {
        Segment::assemble(codes, ids, layout, CostModel::ALWAYS_PROBE)
    }

    #[test]
    #[ignore = "benchmark: about a minute and 2 GB at 10 million codes; run by hand"]
    fn measure() {
        let n: usize = std::env::var("SG_N").map_or(10_000_000, |v| v.parse().unwrap());
        let queries = 2000;
        let radius = 31;
        let mut s = 1u64;
        let mut codes: Vec<Code> = (0..n)
            .map(|_| {
                [
                    splitmix(&mut s),
                    splitmix(&mut s),
                    splitmix(&mut s),
                    splitmix(&mut s),
                ]
            })
            .collect();
        let ids: Vec<u64> = (0..n as u64).collect();
        let qs: Vec<Code> = (0..queries)
            .map(|_| {
                [
                    splitmix(&mut s),
                    splitmix(&mut s),
                    splitmix(&mut s),
                    splitmix(&mut s),
                ]
            })
            .collect();
        codes.sort_unstable();
        let mut sorted = crate::memory::with_capacity(n);
        sorted.extend_from_slice(&codes);
        drop(codes);
        let codes = sorted;
        let slot_bits = plan::slot_bits_for(n);
        let chosen = choose_layout(n, &CostModel::MEASURED);
        let mut layouts = vec![("planner", chosen.clone())];
        for &(t, d, p) in &[
            (16u32, 16u32, 16u32),
            (12, 21, 21),
            (12, 21, 19),
            (11, 21, 21),
            (11, 21, 19),
            (11, 20, 18),
            (10, 22, 21),
            (10, 22, 20),
            (10, 22, 19),
            (10, 22, 18),
            (9, 23, 21),
            (9, 23, 20),
        ] {
            layouts.push(("shaped", Layout::shaped(t, d, p, slot_bits)));
        }
        let mut segment = with_layout(codes, ids, Layout::linear());
        let mut scratch = Scratch::default();
        // Linear scan cost per code.
        let c0 = cpu();
        let mut hits = 0usize;
        for q in qs.iter().take(20) {
            linear(&segment, q, radius, &mut hits);
        }
        let linear = (cpu() - c0) / 20.0 / n as f64 * 1e9;
        eprintln!("n={n}: linear scan {linear:.3} ns/code ({hits} hits)");
        eprintln!("layout | bytes/code | build s | µs/query | probes | direct codes | entries | candidates");
        for (name, layout) in layouts {
            let codes = std::mem::take(&mut segment.codes);
            let ids = std::mem::take(&mut segment.ids);
            drop(segment);
            let t0 = Instant::now();
            segment = with_layout(codes, ids, layout.clone());
            let build = t0.elapsed().as_secs_f64();
            let plan = match plan::plan_query(&layout, n, radius, &CostModel::ALWAYS_PROBE) {
                QueryPlan::Probe(p) => p,
                QueryPlan::Linear => continue,
            };
            // Counts.
            let (mut probes, mut direct, mut entries, mut cands) = (0usize, 0u64, 0u64, 0usize);
            for q in &qs {
                segment.collect_ranges(q, plan.direct, &plan.tables, &mut scratch, f64::INFINITY);
                probes += scratch.ranges.len();
                for r in &scratch.ranges {
                    if r.table == DIRECT {
                        direct += u64::from(r.hi - r.lo);
                    } else {
                        entries += u64::from(r.hi - r.lo);
                    }
                }
                scratch.candidates.clear();
                scratch.hits.clear();
                ranges(&segment, q, radius, &mut scratch);
                cands += scratch.candidates.len();
            }
            let t0 = Instant::now();
            let c0 = cpu();
            let mut found = 0usize;
            for q in &qs {
                search(&segment, q, radius, &mut scratch, &mut found);
            }
            let us = t0.elapsed().as_secs_f64() / queries as f64 * 1e6;
            let cpu_us = (cpu() - c0) / queries as f64 * 1e6;
            // The same query repeated: everything cached, so this is the compute cost.
            let c0 = cpu();
            for _ in 0..200 {
                search(&segment, &qs[0], radius, &mut scratch, &mut found);
            }
            let hot = (cpu() - c0) / 200.0 * 1e6;
            // Stage breakdown of the hot query.
            let c0 = cpu();
            for _ in 0..200 {
                stage1(&segment, &qs[0], &plan, &mut scratch);
            }
            let s1 = (cpu() - c0) / 200.0 * 1e6;
            let c0 = cpu();
            for _ in 0..200 {
                scratch.hits.clear();
                ranges(&segment, &qs[0], radius, &mut scratch);
            }
            let s2 = (cpu() - c0) / 200.0 * 1e6;
            let c0 = cpu();
            for _ in 0..200 {
                scratch.hits.clear();
                verify(&segment, &qs[0], radius, &mut scratch);
            }
            let s3 = (cpu() - c0) / 200.0 * 1e6;
            eprintln!("   stages (hot): 1 {s1:.1} µs, 2 {s2:.1} µs, 3 {s3:.1} µs");
            let q = queries as f64;
            eprintln!(
                "{name} {} | {:.1} | {build:.2} | {us:.1} wall, {cpu_us:.1} cpu, {hot:.1} hot | {:.0} | {:.0} | {:.0} | {:.0}",
                describe(&layout),
                layout.table_bytes(n) / n as f64,
                probes as f64 / q,
                direct as f64 / q,
                entries as f64 / q,
                cands as f64 / q
            );
        }
    }

    crate::kernel::popcnt_dispatch!(
        fn linear(s: &Segment, q: &Code, r: u32, hits: &mut usize) => linear_body
    );
    #[inline(always)]
    fn linear_body(s: &Segment, q: &Code, r: u32, hits: &mut usize) {
        s.scan_linear(q, r, &mut |_, _| *hits += 1);
    }
    fn stage1(s: &Segment, q: &Code, plan: &plan::ProbePlan, scratch: &mut Scratch) {
        s.collect_ranges(q, plan.direct, &plan.tables, scratch, f64::INFINITY);
    }
    crate::kernel::popcnt_dispatch!(
        fn verify(s: &Segment, q: &Code, r: u32, scratch: &mut Scratch) => verify_body
    );
    #[inline(always)]
    fn verify_body(s: &Segment, q: &Code, r: u32, scratch: &mut Scratch) {
        s.verify_candidates(q, r, scratch);
    }
    crate::kernel::popcnt_dispatch!(
        fn ranges(s: &Segment, q: &Code, r: u32, scratch: &mut Scratch) -> bool => ranges_body
    );
    #[inline(always)]
    fn ranges_body(s: &Segment, q: &Code, r: u32, scratch: &mut Scratch) -> bool {
        s.scan_ranges(q, r, scratch, f64::INFINITY)
    }
    crate::kernel::popcnt_dispatch!(
        fn search(s: &Segment, q: &Code, r: u32, scratch: &mut Scratch, found: &mut usize) => search_body
    );
    #[inline(always)]
    fn search_body(s: &Segment, q: &Code, r: u32, scratch: &mut Scratch, found: &mut usize) {
        s.search(q, r, scratch, false, |_, _| *found += 1);
    }

    fn describe(l: &Layout) -> String {
        format!(
            "{}x[d{} p{} s{}]",
            l.tables.len() + 1,
            l.direct_bits,
            l.tables.first().map_or(0, |t| t.prefix_bits),
            l.tables.first().map_or(0, |t| t.suffix_bits)
        )
    }
}
