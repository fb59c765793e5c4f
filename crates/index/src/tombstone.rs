//! Tombstones: one bit per slot marking removed entries, settable while readers read.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A fixed-size bitset of removed slots.
///
/// Bits are only ever set, never cleared: a removed slot stays removed until its segment is
/// rewritten by a merge. Relaxed atomics suffice because visibility to the next query is
/// established by the index's view lock, which every writer takes after setting a bit and
/// every query takes before reading (see `hamming::PdqIndex`).
#[derive(Debug)]
pub(crate) struct Tombstones {
    /// Bit `i % 64` of word `i / 64` is set when slot `i` is removed.
    words: Box<[AtomicU64]>,
    /// Number of set bits.
    count: AtomicUsize,
}

impl Tombstones {
    pub(crate) fn new(slots: usize) -> Tombstones {
        Tombstones {
            words: (0..slots.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicUsize::new(0),
        }
    }

    #[inline(always)]
    pub(crate) fn is_dead(&self, slot: usize) -> bool {
        self.words[slot / 64].load(Ordering::Relaxed) & (1 << (slot % 64)) != 0
    }

    /// Marks `slot` removed; returns whether it was live before.
    pub(crate) fn kill(&self, slot: usize) -> bool {
        let bit = 1u64 << (slot % 64);
        let was_live = self.words[slot / 64].fetch_or(bit, Ordering::Relaxed) & bit == 0;
        if was_live {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        was_live
    }

    /// Number of removed slots.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.words.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_sets_once() {
        let t = Tombstones::new(130);
        assert!(!t.is_dead(129));
        assert!(t.kill(129));
        assert!(!t.kill(129));
        assert!(t.is_dead(129) && !t.is_dead(128) && !t.is_dead(0));
        assert_eq!(t.count(), 1);
    }
}
