//! What a task of this process is working on now, so that a second task asking for the same
//! thing (a filing, a case's send) is refused rather than run beside the first. In-process
//! only: across processes the store's leases do this (`ReportStore::lease_filing`).

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// The keys claimed now.
#[derive(Debug)]
pub struct Claims<K>(Mutex<HashSet<K>>);

impl<K> Default for Claims<K> {
    fn default() -> Self {
        Claims(Mutex::new(HashSet::new()))
    }
}

/// A key held by one task; released when dropped (also on a panic).
#[derive(Debug)]
pub struct Claim<K: Eq + Hash> {
    claims: Arc<Claims<K>>,
    key: K,
}

impl<K: Eq + Hash + Clone> Claims<K> {
    /// Claims `key`, or `None` if another task holds it.
    pub fn claim(self: &Arc<Self>, key: K) -> Option<Claim<K>> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        held.insert(key.clone()).then(|| Claim {
            claims: Arc::clone(self),
            key,
        })
    }

    /// Whether a task holds `key`.
    pub fn is_claimed(&self, key: &K) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }
}

impl<K: Eq + Hash> Drop for Claim<K> {
    fn drop(&mut self) {
        self.claims
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_until_dropped() {
        let c: Arc<Claims<i64>> = Arc::default();
        let first = c.claim(1).expect("free");
        assert!(c.claim(1).is_none());
        assert!(c.is_claimed(&1));
        let other = c.claim(2).expect("another key");
        drop(first);
        assert!(!c.is_claimed(&1));
        assert!(c.claim(1).is_some());
        drop(other);
    }
}
