//! The tail: a small append-only buffer of recent additions, scanned linearly by queries.
//!
//! Adding an entry writes one slot and publishes a longer length; no table is touched, so an
//! addition costs O(1) and is visible to the next query. When the tail is full the writer
//! freezes it into a segment (see `hamming`), which then merges with older segments.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::kernel::distance;
use crate::segment::Code;
use crate::tombstone::Tombstones;

/// Words per slot: four code words, then the id.
const WORDS: usize = 5;

/// A fixed-capacity, append-only run of entries shared between the writer and readers.
///
/// Slots are atomics so that the single writer can fill slot `len` while readers scan slots
/// `0..len` of an earlier published view without `unsafe`; relaxed loads and stores compile to
/// plain moves. A slot is written once, before the view that covers it is published under the
/// index's view lock, which orders the writes before any reader that sees that view.
#[derive(Debug)]
pub(crate) struct Tail {
    /// `WORDS` words per slot.
    cells: Box<[AtomicU64]>,
    /// Removed slots.
    dead: Tombstones,
}

impl Tail {
    pub(crate) fn with_capacity(capacity: usize) -> Tail {
        Tail {
            cells: (0..capacity * WORDS).map(|_| AtomicU64::new(0)).collect(),
            dead: Tombstones::new(capacity),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cells.len() / WORDS
    }

    /// Fills `slot`. Only the writer calls this, and only for a slot no published view covers.
    pub(crate) fn write(&self, slot: usize, code: &Code, id: u64) {
        let cell = &self.cells[slot * WORDS..slot * WORDS + WORDS];
        for (c, &w) in cell.iter().zip(code) {
            c.store(w, Ordering::Relaxed);
        }
        cell[4].store(id, Ordering::Relaxed);
    }

    #[inline(always)]
    pub(crate) fn code(&self, slot: usize) -> Code {
        let cell = &self.cells[slot * WORDS..slot * WORDS + 4];
        [
            cell[0].load(Ordering::Relaxed),
            cell[1].load(Ordering::Relaxed),
            cell[2].load(Ordering::Relaxed),
            cell[3].load(Ordering::Relaxed),
        ]
    }

    pub(crate) fn id(&self, slot: usize) -> u64 {
        self.cells[slot * WORDS + 4].load(Ordering::Relaxed)
    }

    pub(crate) fn kill(&self, slot: usize) -> bool {
        self.dead.kill(slot)
    }

    pub(crate) fn is_dead(&self, slot: usize) -> bool {
        self.dead.is_dead(slot)
    }

    /// Removed slots among the written ones.
    pub(crate) fn dead_count(&self) -> usize {
        self.dead.count()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.cells.len() * 8 + self.dead.bytes()
    }

    /// Calls `hit(slot, distance)` for every live slot below `len` within `radius` of `q`.
    #[inline(always)]
    pub(crate) fn scan(&self, len: usize, q: &Code, radius: u32, mut hit: impl FnMut(u32, u32)) {
        for slot in 0..len {
            let d = distance(&self.code(slot), q);
            if d <= radius && !self.dead.is_dead(slot) {
                hit(slot as u32, d);
            }
        }
    }
}
