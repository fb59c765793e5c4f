//! The capped account table: at most `max` accounts, the least recently used forgotten first
//! (CLOCK, the one-bit approximation of LRU: a hit sets the account's bit; eviction sweeps a
//! hand over the slots, clearing set bits and taking the first slot whose bit is clear).
//!
//! Accounts are found by a 64-bit hash of their id. The id is kept and compared on every
//! hit, so two ids with one hash cannot share state: the newcomer takes the slot over, as if
//! the other had been evicted (for a billion accounts the chance of any such collision is
//! about 3%, and its effect is one account's history forgotten early).

use std::collections::HashMap;
use std::hash::BuildHasher;

use crate::account::AccountState;

/// The seed of the id hash. Fixed, so a table's behaviour is reproducible from its input.
const HASH_SEED: u64 = 0x5AFE_6A4D_C0DE_0017;

#[derive(Debug, Clone)]
struct Slot {
    key: u64,
    /// Set on each hit, cleared by the passing hand.
    referenced: bool,
    state: AccountState,
}

/// At most `max` accounts.
#[derive(Debug, Clone)]
pub(crate) struct AccountTable {
    hasher: foldhash::fast::FixedState,
    /// Hash → slot index. Holds exactly the keys of `slots`.
    index: HashMap<u64, u32, foldhash::fast::FixedState>,
    /// At most `max` slots, filled in order, then reused in place.
    slots: Vec<Slot>,
    /// The CLOCK hand: the next slot to consider for eviction (< `max`).
    hand: usize,
    /// The cap, at least 1 and at most `u32::MAX` (validated by the spec).
    max: usize,
    /// Accounts forgotten to make room, since the table was made.
    evictions: u64,
}

impl AccountTable {
    pub fn new(max: usize) -> AccountTable {
        let hasher = foldhash::fast::FixedState::with_seed(HASH_SEED);
        AccountTable {
            hasher,
            index: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(HASH_SEED ^ 1)),
            slots: Vec::new(),
            hand: 0,
            max: max.max(1),
            evictions: 0,
        }
    }

    /// The hash of an id (also used for counterparts).
    pub fn key(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The account, if tracked.
    pub fn get(&self, key: u64, id: &str) -> Option<&AccountState> {
        let &i = self.index.get(&key)?;
        let s = &self.slots[i as usize];
        (&*s.state.id == id).then_some(&s.state)
    }

    /// The account, created (evicting one if the table is full) if needed.
    pub fn get_or_insert(&mut self, key: u64, id: &str) -> &mut AccountState {
        if let Some(&i) = self.index.get(&key) {
            let i = i as usize;
            let s = &mut self.slots[i];
            if &*s.state.id != id {
                // A hash collision: the newcomer takes the slot (see the module docs).
                s.state = AccountState::new(id);
                self.evictions += 1;
            }
            s.referenced = true;
            return &mut self.slots[i].state;
        }
        let slot = Slot {
            key,
            referenced: true,
            state: AccountState::new(id),
        };
        let i = if self.slots.len() < self.max {
            self.slots.push(slot);
            self.slots.len() - 1
        } else {
            // Every slot is visited at most twice: the first pass clears the bits it meets.
            loop {
                let s = &mut self.slots[self.hand];
                if !s.referenced {
                    break;
                }
                s.referenced = false;
                self.hand = (self.hand + 1) % self.max;
            }
            let i = self.hand;
            self.hand = (self.hand + 1) % self.max;
            let old = std::mem::replace(&mut self.slots[i], slot);
            self.index.remove(&old.key);
            self.evictions += 1;
            i
        };
        // `max` is at most MAX_ACCOUNTS_LIMIT (10 million), so the index fits a u32.
        self.index.insert(key, i as u32);
        &mut self.slots[i].state
    }

    /// Bytes held now: the slots, the index and every account's own heap.
    pub fn bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + index_bytes(self.index.capacity())
            + self.slots.iter().map(|s| s.state.bytes()).sum::<usize>()
    }

    /// The most bytes one account can cost in the table, beyond its own
    /// [`AccountState::max_bytes`]: its slot, and its share of the index at the index's
    /// worst load (hashbrown keeps at least one bucket in eight free and grows by doubling,
    /// so up to `2 × 8/7` buckets per entry).
    pub fn bytes_per_slot() -> usize {
        std::mem::size_of::<Slot>() + index_bytes(3)
    }
}

/// Bytes of a hash index with room for `capacity` entries: one (u64, u32) entry plus one
/// control byte per bucket, with `capacity` being 7/8 of the buckets.
fn index_bytes(capacity: usize) -> usize {
    (capacity * 8).div_ceil(7) * (std::mem::size_of::<(u64, u32)>() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_max_and_evicts_the_unreferenced() {
        let mut t = AccountTable::new(3);
        for id in ["a", "b", "c"] {
            let k = t.key(id);
            t.get_or_insert(k, id);
        }
        // The table is full, every bit is set: the hand clears all and takes slot 0 ("a").
        let kd = t.key("d");
        t.get_or_insert(kd, "d");
        assert_eq!(t.len(), 3);
        assert!(t.get(t.key("a"), "a").is_none());
        // Touch "b": its bit is set again, so "c" (clear) goes next.
        let kb = t.key("b");
        t.get_or_insert(kb, "b");
        let ke = t.key("e");
        t.get_or_insert(ke, "e");
        assert!(t.get(t.key("b"), "b").is_some());
        assert!(t.get(t.key("c"), "c").is_none());
        assert_eq!(t.evictions(), 2);
    }

    #[test]
    fn a_colliding_id_does_not_share_state() {
        let mut t = AccountTable::new(4);
        let k = t.key("a");
        t.get_or_insert(k, "a").contacts = 7;
        // Force the same key for another id.
        let s = t.get_or_insert(k, "not-a");
        assert_eq!(s.contacts, 0);
        assert!(t.get(k, "a").is_none());
        assert!(t.get(k, "not-a").is_some());
    }
}
