//! Where fetched entries go: a bank, behind a small trait so the run loop is tested against
//! an in-memory model and runs in production over the engine.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::Result;

/// One value to hold in the exchange's bank (mirrors the store's `SourceEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upsert {
    /// Safeguard signal type name (canonical: `md5`, never `video_md5`).
    pub signal_type: String,
    /// Canonical value.
    pub value: String,
    /// The remote entry this value came from (NCMEC `member-id`, StopNCII `type:hash`, the
    /// peer's content id): provenance, and the key for later deletions of that entry.
    pub source_id: Option<String>,
    /// The remote classification (NCMEC A1/A2/B1/B2), if any.
    pub classification: Option<String>,
    /// JSON text with the remote entry's details.
    pub metadata: Option<String>,
}

/// One value to drop from the exchange's bank (mirrors the store's `SourceRemoval`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Removal {
    /// Signal type name.
    pub signal_type: String,
    /// Canonical value.
    pub value: String,
}

/// A value the bank holds for the exchange, with the entry it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Signal type name.
    pub signal_type: String,
    /// Canonical value.
    pub value: String,
    /// The entry it came from.
    pub source_id: Option<String>,
}

/// What a batch did (mirrors the store's `BatchOutcome`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    /// Values new to the bank.
    pub added: u64,
    /// Values already held whose details changed.
    pub refreshed: u64,
    /// Values dropped.
    pub removed: u64,
    /// Values already held as sent.
    pub unchanged: u64,
}

impl Outcome {
    /// Adds `o` to `self`.
    pub fn add(&mut self, o: &Outcome) {
        self.added += o.added;
        self.refreshed += o.refreshed;
        self.removed += o.removed;
        self.unchanged += o.unchanged;
    }
}

/// A page's worth of changes with the checkpoint that follows it.
#[derive(Debug)]
pub struct Batch<'a> {
    /// When the exchange listed these entries, Unix milliseconds.
    pub seen_at: i64,
    /// Values to hold (add or refresh).
    pub upserts: &'a [Upsert],
    /// Values to drop. Never overlaps `upserts`.
    pub removals: &'a [Removal],
    /// The exchange's checkpoint after this batch: stored in the same transaction.
    pub checkpoint: &'a str,
}

/// The bank side of an exchange. Methods block; the run loop calls them on the blocking pool.
pub trait ExchangeSink: Send + Sync + std::fmt::Debug {
    /// The stored checkpoint (`None` before the first successful page).
    fn checkpoint(&self, exchange: &str) -> Result<Option<String>>;
    /// Every value the exchange's bank holds, with its source entry: read once per run to
    /// turn "entry X was deleted" into the values to drop.
    fn held(&self, exchange: &str) -> Result<Vec<Held>>;
    /// Applies a batch and stores its checkpoint, all or nothing.
    fn apply(&self, exchange: &str, batch: &Batch<'_>) -> Result<Outcome>;
    /// Records a failed run at `at` (Unix milliseconds); the checkpoint stays where the last
    /// applied page left it.
    fn record_error(&self, exchange: &str, message: &str, at: i64) -> Result<()>;
}

/// An in-memory sink: the reference model for tests.
#[derive(Debug, Default)]
pub struct MemorySink {
    state: Mutex<HashMap<String, MemoryExchange>>,
}

/// What a [`MemorySink`] keeps per value: (source id, classification, metadata).
pub type MemoryDetails = (Option<String>, Option<String>, Option<String>);

/// One exchange's state inside a [`MemorySink`].
#[derive(Debug, Default, Clone)]
pub struct MemoryExchange {
    /// Held values: (type, value) → (source id, classification, metadata).
    pub values: BTreeMap<(String, String), MemoryDetails>,
    /// Stored checkpoint.
    pub checkpoint: Option<String>,
    /// Last recorded error.
    pub last_error: Option<String>,
    /// Batches applied.
    pub batches: u64,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// A copy of one exchange's state.
    pub fn snapshot(&self, exchange: &str) -> MemoryExchange {
        self.lock().get(exchange).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, MemoryExchange>> {
        // A panic while holding the lock cannot leave a half-applied batch: `apply` mutates
        // only after every check, so the data is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ExchangeSink for MemorySink {
    fn checkpoint(&self, exchange: &str) -> Result<Option<String>> {
        Ok(self.lock().get(exchange).and_then(|e| e.checkpoint.clone()))
    }

    fn held(&self, exchange: &str) -> Result<Vec<Held>> {
        Ok(self
            .lock()
            .get(exchange)
            .map(|e| {
                e.values
                    .iter()
                    .map(|((t, v), (src, _, _))| Held {
                        signal_type: t.clone(),
                        value: v.clone(),
                        source_id: src.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    fn apply(&self, exchange: &str, batch: &Batch<'_>) -> Result<Outcome> {
        let mut all = self.lock();
        let ex = all.entry(exchange.to_string()).or_default();
        let mut out = Outcome::default();
        for u in batch.upserts {
            let key = (u.signal_type.clone(), u.value.clone());
            let val = (
                u.source_id.clone(),
                u.classification.clone(),
                u.metadata.clone(),
            );
            match ex.values.insert(key, val.clone()) {
                None => out.added += 1,
                Some(old) if old == val => out.unchanged += 1,
                Some(_) => out.refreshed += 1,
            }
        }
        for r in batch.removals {
            if ex
                .values
                .remove(&(r.signal_type.clone(), r.value.clone()))
                .is_some()
            {
                out.removed += 1;
            }
        }
        ex.checkpoint = Some(batch.checkpoint.to_string());
        ex.last_error = None;
        ex.batches += 1;
        Ok(out)
    }

    fn record_error(&self, exchange: &str, message: &str, _at: i64) -> Result<()> {
        self.lock()
            .entry(exchange.to_string())
            .or_default()
            .last_error = Some(message.to_string());
        Ok(())
    }
}
