//! The PDQ index: exact Hamming-radius search with live additions and removals.
//!
//! # Structure
//! The index is a log-structured set of immutable, code-sorted [`Segment`]s, each with its own
//! multi-index hash tables (see `plan`), plus a small append-only [`Tail`] of recent additions
//! that queries scan linearly. Removals set tombstone bits.
//!
//! * **Queries** take the current [`View`] (an `Arc` cloned under a read lock held for a few
//!   nanoseconds), then search every segment and the tail without any lock.
//! * **Writers** are serialised by a mutex. An addition writes the next tail slot and publishes a
//!   new view whose tail is one longer; a removal sets a tombstone bit and publishes. Publishing
//!   takes the view lock in write mode only to swap one `Arc`, so a reader is never blocked for
//!   longer than that swap (no allocation, deallocation or search happens under the lock).
//! * A full tail is **frozen** into a segment by the writer (a few milliseconds for the default
//!   capacity). Trailing segments of similar sizes are **merged**, small ones inline and large
//!   ones on a background thread, so no rebuild of the whole bank ever runs on the write path.
//!   Removals that happen while a background merge runs are logged and replayed on its output
//!   before it is installed.
//!
//! Every mutation is visible to any query that starts after the mutating call returns: the
//! call publishes under the view lock before returning, and a query takes the lock to start.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::thread::JoinHandle;

use safeguard_pdq::PdqHash;

use crate::kernel;
use crate::plan::{CostModel, Layout, MAX_RADIUS};
use crate::segment::{Code, Scratch, Segment, MAX_SEGMENT_ENTRIES};
use crate::snapshot::{self, Kind};
use crate::tail::Tail;
use crate::Error;

/// Default tail capacity: entries added since the last freeze.
///
/// Every query scans the whole tail (about 1 ns per entry), and a freeze builds a segment of
/// this size (about 1 ms). 2048 keeps both small next to a 10-million-hash query.
pub const DEFAULT_TAIL_CAPACITY: usize = 2048;

/// Default of [`PdqIndexConfig::inline_merge_entries`]: merges of up to 128 Ki entries take
/// tens of milliseconds, short enough to run inside the writing call.
pub const DEFAULT_INLINE_MERGE_ENTRIES: usize = 1 << 17;

/// A run of trailing segments is merged while the segment before it holds at most this
/// multiple of the run's entries. Segment sizes therefore grow geometrically and a bank of `n`
/// entries has O(log n) segments, while each entry is rewritten O(log n) times.
const MERGE_RATIO: usize = 2;

/// Tuning of a [`PdqIndex`].
#[derive(Clone, Debug)]
pub struct PdqIndexConfig {
    /// Entries held in the linearly scanned tail before it is frozen into a segment.
    pub tail_capacity: usize,
    /// Run large merges on a background thread (true) or inside the writing call (false).
    pub background_merges: bool,
    /// Merges whose inputs hold at most this many live entries run inside the writing call
    /// even when `background_merges` is set.
    pub inline_merge_entries: usize,
    /// Automatic merges never rewrite segments larger than this (live entries), bounding the
    /// transient memory of a merge; [`PdqIndex::compact`] merges everything regardless.
    pub max_merge_entries: usize,
    /// Testing aid: build tables for segments of any size (from 16 entries) and always probe
    /// them, never choosing or falling back to a linear scan. Slower; it exists so that tests
    /// exercise the tables on small banks.
    #[doc(hidden)]
    pub always_probe: bool,
}

impl Default for PdqIndexConfig {
    fn default() -> Self {
        PdqIndexConfig {
            tail_capacity: DEFAULT_TAIL_CAPACITY,
            background_merges: true,
            inline_merge_entries: DEFAULT_INLINE_MERGE_ENTRIES,
            max_merge_entries: 1 << 25,
            always_probe: false,
        }
    }
}

/// One bank entry within the searched radius.
///
/// Ordered by distance, then id, the order [`PdqIndex::search`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Match {
    /// Hamming distance between the query and the entry's hash.
    pub distance: u32,
    /// The entry's id.
    pub id: u64,
}

/// One bank entry within the radius of at least one of the eight dihedral variants of a
/// query. Ordered by distance, then id, then variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DihedralMatch {
    /// Smallest distance over the variants.
    pub distance: u32,
    /// The entry's id.
    pub id: u64,
    /// Index (0..8, in the order given) of the first variant at that smallest distance.
    pub variant: u8,
    /// Bit `v` is set when variant `v` is within the radius.
    pub variants: u8,
}

/// Size and shape of an index, for monitoring and benchmarks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PdqIndexStats {
    /// Live entries.
    pub entries: usize,
    /// Live entries per segment, oldest first.
    pub segments: Vec<usize>,
    /// Live entries in the tail.
    pub tail: usize,
    /// Bytes held by codes, ids, tables, directories and tombstones.
    pub bytes: usize,
    /// Human-readable table layout of the largest segment.
    pub layout: String,
}

/// What a query sees: immutable segments and a prefix of the tail.
#[derive(Clone, Debug)]
struct View {
    /// Oldest (usually largest) first.
    segments: Arc<Vec<Arc<Segment>>>,
    tail: Arc<Tail>,
    /// Tail slots `0..tail_len` are written and visible.
    tail_len: usize,
}

/// State owned by the writer (behind the writer mutex).
#[derive(Debug)]
struct Writer {
    /// Live tail entries and their slots, for de-duplication and removal without a scan.
    tail_map: HashMap<(Code, u64), u32>,
    /// Inputs of the running background merge, if any.
    merging: Option<Vec<Arc<Segment>>>,
    /// Entries removed while the background merge runs, replayed on its output.
    removed_during_merge: Vec<(Code, u64)>,
    /// The background merge thread most recently started.
    merge_thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Inner {
    /// The current view. Held in read mode only to clone the `Arc`, in write mode only to
    /// replace it.
    view: RwLock<Arc<View>>,
    writer: Mutex<Writer>,
    config: PdqIndexConfig,
    model: CostModel,
}

/// Exact Hamming-radius index over PDQ hashes, with live updates. `Send + Sync`: share it
/// behind an `Arc` and query from any number of threads while one or more threads write.
#[derive(Debug)]
pub struct PdqIndex {
    inner: Arc<Inner>,
}

/// Collects entries for a bulk build, which is much faster than adding them one by one.
#[derive(Debug, Default)]
pub struct PdqIndexBuilder {
    codes: Vec<Code>,
    ids: Vec<u64>,
    config: PdqIndexConfig,
}

impl PdqIndexBuilder {
    pub fn new(config: PdqIndexConfig) -> Self {
        PdqIndexBuilder {
            codes: Vec::new(),
            ids: Vec::new(),
            config,
        }
    }

    /// Reserves room for `additional` more entries (avoids regrowth for large banks).
    pub fn reserve(&mut self, additional: usize) {
        self.codes.reserve_exact(additional);
        self.ids.reserve_exact(additional);
    }

    /// Adds an entry. A pair added twice is stored once.
    pub fn push(&mut self, id: u64, hash: &PdqHash) {
        self.codes.push(hash.words());
        self.ids.push(id);
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Builds the index: sorts the entries, drops duplicate pairs and builds the tables.
    pub fn build(self) -> Result<PdqIndex, Error> {
        let n = self.codes.len();
        if n > MAX_SEGMENT_ENTRIES {
            return Err(Error::TooManyEntries {
                entries: n,
                max: MAX_SEGMENT_ENTRIES,
            });
        }
        let index = PdqIndex::with_config(self.config);
        if n > 0 {
            let segment = Segment::build(self.codes, self.ids, index.inner.model);
            let _w = index.inner.lock_writer();
            let view = index.inner.current();
            index.inner.publish(View {
                segments: Arc::new(vec![Arc::new(segment)]),
                ..(*view).clone()
            });
        }
        Ok(index)
    }
}

thread_local! {
    /// Query buffers, reused so that a query does not allocate.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Checks a radius against [`MAX_RADIUS`].
fn check_radius(radius: u32) -> Result<(), Error> {
    if radius > MAX_RADIUS {
        return Err(Error::RadiusTooLarge {
            radius,
            max: MAX_RADIUS,
        });
    }
    Ok(())
}

/// Calls `found(part, slot, id, distance)` for every live entry of `view` within `radius`,
/// where `part` is the segment index or `segments.len()` for the tail.
fn search_view(
    view: &View,
    q: &Code,
    radius: u32,
    exhaustive: bool,
    mut found: impl FnMut(usize, u32, u64, u32),
) {
    SCRATCH
        .with_borrow_mut(|scratch| search_parts(view, q, radius, exhaustive, scratch, &mut found))
}

kernel::popcnt_dispatch!(
    fn search_parts(
        view: &View,
        q: &Code,
        radius: u32,
        exhaustive: bool,
        scratch: &mut Scratch,
        found: &mut dyn FnMut(usize, u32, u64, u32),
    ) => search_parts_body
);

#[inline(always)]
fn search_parts_body(
    view: &View,
    q: &Code,
    radius: u32,
    exhaustive: bool,
    scratch: &mut Scratch,
    found: &mut dyn FnMut(usize, u32, u64, u32),
) {
    for (part, seg) in view.segments.iter().enumerate() {
        seg.search(q, radius, scratch, exhaustive, |slot, d| {
            found(part, slot, seg.id(slot), d)
        });
    }
    let part = view.segments.len();
    view.tail.scan(view.tail_len, q, radius, |slot, d| {
        found(part, slot, view.tail.id(slot as usize), d)
    });
}

impl Default for PdqIndex {
    fn default() -> Self {
        PdqIndex::new()
    }
}

impl PdqIndex {
    /// An empty index with the default configuration.
    pub fn new() -> Self {
        PdqIndex::with_config(PdqIndexConfig::default())
    }

    /// An empty index.
    pub fn with_config(config: PdqIndexConfig) -> Self {
        let config = PdqIndexConfig {
            tail_capacity: config.tail_capacity.max(1),
            ..config
        };
        let view = View {
            segments: Arc::new(Vec::new()),
            tail: Arc::new(Tail::with_capacity(config.tail_capacity)),
            tail_len: 0,
        };
        PdqIndex {
            inner: Arc::new(Inner {
                view: RwLock::new(Arc::new(view)),
                writer: Mutex::new(Writer {
                    tail_map: HashMap::new(),
                    merging: None,
                    removed_during_merge: Vec::new(),
                    merge_thread: None,
                }),
                model: if config.always_probe {
                    CostModel::ALWAYS_PROBE
                } else {
                    CostModel::MEASURED
                },
                config,
            }),
        }
    }

    /// A builder for bulk loading.
    pub fn builder() -> PdqIndexBuilder {
        PdqIndexBuilder::default()
    }

    /// Builds an index from `(id, hash)` pairs (duplicates stored once).
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (u64, &'a PdqHash)>,
    ) -> Result<PdqIndex, Error> {
        let mut b = PdqIndex::builder();
        for (id, h) in entries {
            b.push(id, h);
        }
        b.build()
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        let view = self.inner.current();
        view.segments.iter().map(|s| s.live()).sum::<usize>() + view.tail_len
            - view.tail.dead_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every live entry within `radius` of `hash`, ordered by distance then id. Exact: the
    /// same set a brute-force scan returns. `radius` may be 0..=[`MAX_RADIUS`].
    pub fn search(&self, hash: &PdqHash, radius: u32) -> Result<Vec<Match>, Error> {
        let mut out = Vec::new();
        self.search_into(hash, radius, &mut out)?;
        Ok(out)
    }

    /// Like [`search`](Self::search), appending to `out` (sorted within this query's part).
    pub fn search_into(
        &self,
        hash: &PdqHash,
        radius: u32,
        out: &mut Vec<Match>,
    ) -> Result<(), Error> {
        check_radius(radius)?;
        let view = self.inner.current();
        let start = out.len();
        search_view(&view, &hash.words(), radius, false, |_, _, id, distance| {
            out.push(Match { distance, id })
        });
        out[start..].sort_unstable();
        Ok(())
    }

    /// The same answer as [`search`](Self::search), computed by scanning every entry.
    ///
    /// The reference the tables are checked against, and the baseline of benchmarks.
    pub fn search_exhaustive(&self, hash: &PdqHash, radius: u32) -> Result<Vec<Match>, Error> {
        check_radius(radius)?;
        let view = self.inner.current();
        let mut out = Vec::new();
        search_view(&view, &hash.words(), radius, true, |_, _, id, distance| {
            out.push(Match { distance, id })
        });
        out.sort_unstable();
        Ok(out)
    }

    /// Searches with the eight dihedral variants of one image at once (as computed by the pdq
    /// crate), reporting each entry once with its smallest distance and which variants matched.
    pub fn search_dihedral(
        &self,
        variants: &[PdqHash; 8],
        radius: u32,
    ) -> Result<Vec<DihedralMatch>, Error> {
        check_radius(radius)?;
        // One view for all eight, so that an entry is identified by (part, slot).
        let view = self.inner.current();
        let mut raw: Vec<(usize, u32, u32, u8, u64)> = Vec::new();
        for (v, hash) in variants.iter().enumerate() {
            search_view(&view, &hash.words(), radius, false, |part, slot, id, d| {
                raw.push((part, slot, d, v as u8, id))
            });
        }
        raw.sort_unstable();
        let mut out: Vec<DihedralMatch> = Vec::new();
        let mut last: Option<(usize, u32)> = None;
        for (part, slot, d, v, id) in raw {
            if last == Some((part, slot)) {
                // Sorted by distance then variant within an entry: the first row is the best.
                if let Some(m) = out.last_mut() {
                    m.variants |= 1 << v;
                }
                continue;
            }
            last = Some((part, slot));
            out.push(DihedralMatch {
                distance: d,
                id,
                variant: v,
                variants: 1 << v,
            });
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Adds an entry; visible to every query that starts after this returns. Returns false
    /// (and changes nothing) when the same `(id, hash)` pair is already present.
    pub fn add(&self, id: u64, hash: &PdqHash) -> bool {
        self.add_batch(&[(id, *hash)]) == 1
    }

    /// Adds entries, all visible at once when this returns. Returns how many were new.
    pub fn add_batch(&self, entries: &[(u64, PdqHash)]) -> usize {
        let inner = &self.inner;
        let mut w = inner.lock_writer();
        let mut view = (*inner.current()).clone();
        let mut fresh: Vec<(Code, u64)> = entries.iter().map(|(id, h)| (h.words(), *id)).collect();
        fresh.sort_unstable();
        fresh.dedup();
        fresh.retain(|(code, id)| {
            !w.tail_map.contains_key(&(*code, *id))
                && !view.segments.iter().any(|s| s.find(code, *id).is_some())
        });
        let added = fresh.len();
        let capacity = view.tail.capacity();
        if added >= capacity {
            // A large batch becomes a segment of its own instead of passing through the tail.
            let (codes, ids) = fresh.into_iter().unzip();
            let segment = Segment::build(codes, ids, inner.model);
            let mut segments = (*view.segments).clone();
            segments.push(Arc::new(segment));
            view.segments = Arc::new(segments);
        } else {
            for (code, id) in fresh {
                if view.tail_len == capacity {
                    view = inner.freeze(&mut w, view);
                }
                view.tail.write(view.tail_len, &code, id);
                w.tail_map.insert((code, id), view.tail_len as u32);
                view.tail_len += 1;
            }
            if view.tail_len == capacity {
                view = inner.freeze(&mut w, view);
            }
        }
        inner.publish(view);
        inner.maintain(&mut w);
        added
    }

    /// Removes the entry `(id, hash)`; gone for every query that starts after this returns.
    /// Returns whether it was present.
    pub fn remove(&self, id: u64, hash: &PdqHash) -> bool {
        self.remove_batch(&[(id, *hash)]) == 1
    }

    /// Removes entries, all at once when this returns. Returns how many were present.
    pub fn remove_batch(&self, entries: &[(u64, PdqHash)]) -> usize {
        let inner = &self.inner;
        let mut w = inner.lock_writer();
        let view = inner.current();
        let mut removed = 0;
        for (id, hash) in entries {
            let code = hash.words();
            if let Some(slot) = w.tail_map.remove(&(code, *id)) {
                view.tail.kill(slot as usize);
                removed += 1;
                continue;
            }
            for seg in view.segments.iter() {
                if let Some(slot) = seg.find(&code, *id) {
                    seg.kill(slot);
                    if w.merging.is_some() {
                        w.removed_during_merge.push((code, *id));
                    }
                    removed += 1;
                    break;
                }
            }
        }
        // Publishing the same view still passes through the lock, which orders the tombstone
        // writes before every query that starts after this call returns.
        inner.publish((*view).clone());
        if removed > 0 {
            inner.maintain(&mut w);
        }
        removed
    }

    /// Merges every segment and the tail into one segment, dropping removed entries, and
    /// waits for it. Holds the writer lock throughout (writers wait, readers do not) and needs
    /// transient memory for a second copy of the bank.
    pub fn compact(&self) {
        let inner = &self.inner;
        loop {
            self.wait_for_merges();
            let mut w = inner.lock_writer();
            if w.merging.is_some() {
                continue; // a merge started between the wait and the lock
            }
            let view = inner.current();
            let tail = inner.tail_segment(&view);
            let mut parts: Vec<&Segment> = view.segments.iter().map(|s| &**s).collect();
            parts.extend(tail.as_ref());
            let merged = Segment::merge(&parts, inner.model);
            w.tail_map.clear();
            inner.publish(View {
                segments: Arc::new(if merged.len() > 0 {
                    vec![Arc::new(merged)]
                } else {
                    Vec::new()
                }),
                tail: Arc::new(Tail::with_capacity(inner.config.tail_capacity)),
                tail_len: 0,
            });
            return;
        }
    }

    /// Blocks until no background merge is running.
    pub fn wait_for_merges(&self) {
        loop {
            let handle = {
                let mut w = self.inner.lock_writer();
                match w.merge_thread.take() {
                    Some(h) => h,
                    None if w.merging.is_none() => return,
                    // Started but its handle is not stored yet cannot happen (both are set
                    // under this lock); yield defensively rather than spin hot.
                    None => {
                        drop(w);
                        std::thread::yield_now();
                        continue;
                    }
                }
            };
            // A panicking merge thread has already restored the state (see `MergeGuard`).
            let _ = handle.join();
        }
    }

    /// Size and shape.
    pub fn stats(&self) -> PdqIndexStats {
        let view = self.inner.current();
        let largest = view.segments.iter().max_by_key(|s| s.len());
        PdqIndexStats {
            entries: self.len(),
            segments: view.segments.iter().map(|s| s.live()).collect(),
            tail: view.tail_len - view.tail.dead_count(),
            bytes: view.segments.iter().map(|s| s.bytes()).sum::<usize>() + view.tail.bytes(),
            layout: largest.map_or_else(|| "empty".to_string(), |s| describe(s.layout())),
        }
    }

    /// Writes a checksummed snapshot of the live entries (see `docs/performance.md` for the
    /// format). Holds the writer lock so that the image is one point in time; queries go on.
    pub fn write_snapshot(&self, out: impl Write) -> Result<(), Error> {
        let _w = self.inner.lock_writer();
        let view = self.inner.current();
        let count = self.len() as u64;
        let mut writer = snapshot::Writer::new(out, Kind::Pdq, 32, count)?;
        let mut written = 0u64;
        for seg in view.segments.iter() {
            for (code, id) in seg.live_entries() {
                writer.record(PdqHash::from_words(*code).as_bytes(), id)?;
                written += 1;
            }
        }
        for slot in 0..view.tail_len {
            if !view.tail.is_dead(slot) {
                let code = view.tail.code(slot);
                writer.record(PdqHash::from_words(code).as_bytes(), view.tail.id(slot))?;
                written += 1;
            }
        }
        debug_assert_eq!(written, count);
        writer.finish()
    }

    /// Loads a snapshot written by [`write_snapshot`](Self::write_snapshot). A truncated or
    /// corrupted image is reported as an error, never used.
    pub fn read_snapshot(input: impl Read, config: PdqIndexConfig) -> Result<PdqIndex, Error> {
        let mut reader = snapshot::Reader::new(input, Kind::Pdq, 32)?;
        let mut builder = PdqIndexBuilder::new(config);
        // The count is checksummed, but reserve no more than what a few chunks hold until the
        // records are actually there.
        builder.reserve(reader.count().min(1 << 20) as usize);
        while let Some(chunk) = reader.next_chunk()? {
            for rec in chunk.chunks_exact(40) {
                let mut bytes = [0u8; 32];
                bytes.copy_from_slice(&rec[..32]);
                let mut id = [0u8; 8];
                id.copy_from_slice(&rec[32..]);
                builder.push(u64::from_le_bytes(id), &PdqHash(bytes));
            }
        }
        reader.finish()?;
        builder.build()
    }
}

impl Drop for PdqIndex {
    fn drop(&mut self) {
        // Free a running merge's memory before returning rather than behind the caller's back.
        self.wait_for_merges();
    }
}

fn describe(layout: &Layout) -> String {
    if layout.is_linear() {
        return "linear scan".to_string();
    }
    let keys: Vec<String> = layout
        .tables
        .iter()
        .map(|t| format!("{}+{}", t.prefix_bits, t.suffix_bits))
        .collect();
    format!(
        "direct {} bits + {} tables (directory+suffix bits: {})",
        layout.direct_bits,
        layout.tables.len(),
        keys.join(" ")
    )
}

/// Restores the writer state if a merge thread panics, so that later merges can run.
struct MergeGuard {
    inner: Weak<Inner>,
    installed: bool,
}

impl Drop for MergeGuard {
    fn drop(&mut self) {
        if self.installed {
            return;
        }
        if let Some(inner) = self.inner.upgrade() {
            let mut w = inner.lock_writer();
            w.merging = None;
            w.removed_during_merge.clear();
        }
    }
}

impl Inner {
    fn current(&self) -> Arc<View> {
        // The lock guards a single `Arc`, which is valid whatever a panicking holder did.
        self.view
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn publish(&self, view: View) {
        let new = Arc::new(view);
        let old = {
            let mut guard = self.view.write().unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(&mut *guard, new)
        };
        // Dropped outside the lock: it may free a replaced segment's memory.
        drop(old);
    }

    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        // A panic inside a writer would be a bug. Readers are unaffected by one (the view is
        // only ever replaced whole), and the worst stale writer bookkeeping can do is treat a
        // pair from the interrupted, unpublished call as present; taking the lock over keeps
        // the index usable instead of failing every later write.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live tail entries as a segment, or `None` when there are none.
    fn tail_segment(&self, view: &View) -> Option<Segment> {
        let mut codes = Vec::new();
        let mut ids = Vec::new();
        for slot in 0..view.tail_len {
            if !view.tail.is_dead(slot) {
                codes.push(view.tail.code(slot));
                ids.push(view.tail.id(slot));
            }
        }
        (!codes.is_empty()).then(|| Segment::build(codes, ids, self.model))
    }

    /// Turns the tail into a segment and starts an empty tail.
    fn freeze(&self, w: &mut Writer, view: View) -> View {
        let mut segments = (*view.segments).clone();
        segments.extend(self.tail_segment(&view).map(Arc::new));
        w.tail_map.clear();
        View {
            segments: Arc::new(segments),
            tail: Arc::new(Tail::with_capacity(self.config.tail_capacity)),
            tail_len: 0,
        }
    }

    /// Runs the merges the policy asks for: small ones now, a large one in the background.
    fn maintain(self: &Arc<Self>, w: &mut Writer) {
        loop {
            let view = self.current();
            // Segments after a running merge's inputs may still be merged among themselves.
            let from = match &w.merging {
                None => 0,
                Some(inputs) => match position(&view.segments, inputs) {
                    Some(r) => r.end,
                    None => return,
                },
            };
            let sizes: Vec<(usize, usize)> =
                view.segments.iter().map(|s| (s.live(), s.len())).collect();
            let Some(range) = pick_merge(&sizes, from, self.config.max_merge_entries) else {
                return;
            };
            let total: usize = sizes[range.clone()].iter().map(|s| s.0).sum();
            let inputs: Vec<Arc<Segment>> = view.segments[range.clone()].to_vec();
            if total <= self.config.inline_merge_entries || !self.config.background_merges {
                let parts: Vec<&Segment> = inputs.iter().map(|s| &**s).collect();
                let merged = Segment::merge(&parts, self.model);
                self.publish(replace_range(&view, range, merged));
                continue;
            }
            if w.merging.is_some() {
                return; // one background merge at a time; it re-runs the policy when done
            }
            w.merging = Some(inputs.clone());
            w.removed_during_merge.clear();
            let weak = Arc::downgrade(self);
            let model = self.model;
            let spawned = std::thread::Builder::new()
                .name("safeguard-index-merge".into())
                .spawn(move || {
                    let mut guard = MergeGuard {
                        inner: weak.clone(),
                        installed: false,
                    };
                    let parts: Vec<&Segment> = inputs.iter().map(|s| &**s).collect();
                    let merged = Segment::merge(&parts, model);
                    drop(parts);
                    if let Some(inner) = weak.upgrade() {
                        inner.install(&inputs, merged);
                    }
                    guard.installed = true;
                });
            match spawned {
                Ok(handle) => w.merge_thread = Some(handle),
                Err(_) => {
                    // No thread available: merge inline rather than not at all.
                    w.merging = None;
                    let parts: Vec<&Segment> =
                        view.segments[range.clone()].iter().map(|s| &**s).collect();
                    let merged = Segment::merge(&parts, self.model);
                    self.publish(replace_range(&view, range, merged));
                }
            }
            return;
        }
    }

    /// Installs a background merge's output in place of its inputs.
    fn install(self: &Arc<Self>, inputs: &[Arc<Segment>], merged: Segment) {
        let mut w = self.lock_writer();
        let removed = std::mem::take(&mut w.removed_during_merge);
        w.merging = None;
        let view = self.current();
        // `compact` waits for merges, so the inputs are still in place; check anyway.
        if let Some(range) = position(&view.segments, inputs) {
            for (code, id) in removed {
                if let Some(slot) = merged.find(&code, id) {
                    merged.kill(slot);
                }
            }
            self.publish(replace_range(&view, range, merged));
        }
        self.maintain(&mut w);
    }
}

/// Where `inputs` sit, contiguous and in order, in `segments`.
fn position(segments: &[Arc<Segment>], inputs: &[Arc<Segment>]) -> Option<Range<usize>> {
    let first = inputs.first()?;
    let start = segments.iter().position(|s| Arc::ptr_eq(s, first))?;
    let end = start + inputs.len();
    (end <= segments.len()
        && segments[start..end]
            .iter()
            .zip(inputs)
            .all(|(a, b)| Arc::ptr_eq(a, b)))
    .then_some(start..end)
}

fn replace_range(view: &View, range: Range<usize>, merged: Segment) -> View {
    let mut segments: Vec<Arc<Segment>> = view.segments[..range.start].to_vec();
    if merged.len() > 0 {
        segments.push(Arc::new(merged));
    }
    segments.extend_from_slice(&view.segments[range.end..]);
    View {
        segments: Arc::new(segments),
        ..view.clone()
    }
}

/// The merge policy. `sizes[i]` is `(live, slots)` of segment `i`, oldest first; segments
/// before `from` are unavailable. Returns the segments to merge, if any:
/// * the longest trailing run such that each segment before it holds at most
///   [`MERGE_RATIO`] times the entries after it (sizes then grow geometrically);
/// * otherwise a single segment more than half of whose slots are removed (reclaims memory).
///
/// Segments with more than `max` live entries are never chosen.
fn pick_merge(sizes: &[(usize, usize)], from: usize, max: usize) -> Option<Range<usize>> {
    let end = sizes.len();
    if end > from {
        let mut start = end - 1;
        let mut acc = sizes[start].0;
        while start > from {
            let prev = sizes[start - 1].0;
            if prev > MERGE_RATIO * acc || prev + acc > max {
                break;
            }
            start -= 1;
            acc += prev;
        }
        if end - start >= 2 {
            return Some(start..end);
        }
    }
    (from..end)
        .find(|&i| sizes[i].1 - sizes[i].0 > sizes[i].1 / 2 && sizes[i].0 <= max)
        .map(|i| i..i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_policy_keeps_sizes_geometric() {
        assert_eq!(pick_merge(&[], 0, usize::MAX), None);
        assert_eq!(pick_merge(&[(10, 10)], 0, usize::MAX), None);
        assert_eq!(pick_merge(&[(10, 10), (10, 10)], 0, usize::MAX), Some(0..2));
        assert_eq!(pick_merge(&[(100, 100), (10, 10)], 0, usize::MAX), None);
        assert_eq!(
            pick_merge(&[(200, 200), (40, 40), (10, 10), (10, 10)], 0, usize::MAX),
            Some(1..4)
        );
        // Not past `from`, nor above `max`.
        assert_eq!(pick_merge(&[(10, 10), (10, 10)], 1, usize::MAX), None);
        assert_eq!(pick_merge(&[(10, 10), (10, 10)], 0, 15), None);
        // A mostly removed segment is rewritten alone.
        assert_eq!(pick_merge(&[(10, 100), (1, 1)], 0, usize::MAX), Some(0..1));
        // Simulated stream of freezes: the segment count stays logarithmic.
        let mut segs: Vec<(usize, usize)> = Vec::new();
        for _ in 0..10_000 {
            segs.push((1, 1));
            while let Some(r) = pick_merge(&segs, 0, usize::MAX) {
                let total: usize = segs[r.clone()].iter().map(|s| s.0).sum();
                segs.splice(r, [(total, total)]);
            }
            assert!(segs.len() <= 16, "{segs:?}");
        }
    }
}
