//! The in-memory match state: one index per signal type, plus what matching needs to know of
//! each signal (its content item and bank), of each bank (enabled, ratio, threshold, kind) and
//! of disabled content. It is kept equal to the store by applying the store's change feed.

use std::collections::HashMap;
use std::sync::RwLock;

use safeguard_index::{Md5Index, PdqIndex, Sha1Index, Sha256Index};
use safeguard_store::{Bank, BankId, BankKind, ContentId, Signal, SignalId};

use crate::signal::{SignalType, SignalValue};

/// What matching needs to know of a bank.
#[derive(Debug, Clone, PartialEq)]
pub struct BankState {
    /// Name, for results.
    pub name: String,
    /// Whether it takes part in matching.
    pub enabled: bool,
    /// Share of lookups it takes part in.
    pub enabled_ratio: f64,
    /// Largest PDQ distance that matches.
    pub pdq_threshold: u32,
    /// Standard or allow-list.
    pub kind: BankKind,
}

impl From<&Bank> for BankState {
    fn from(b: &Bank) -> BankState {
        BankState {
            name: b.name.clone(),
            enabled: b.enabled,
            enabled_ratio: b.enabled_ratio,
            pdq_threshold: b.pdq_threshold,
            kind: b.kind,
        }
    }
}

/// Per-signal facts, in dense vectors indexed by signal id (ids are assigned densely by the
/// store), which costs 12 bytes a signal where a hash map would cost about 40.
#[derive(Debug, Default)]
pub(crate) struct Meta {
    /// Content item of each signal id; 0 for ids not (or no longer) indexed.
    content_of: Vec<ContentId>,
    /// Bank of each signal id.
    bank_of: Vec<u32>,
    /// Banks by id.
    pub(crate) banks: HashMap<BankId, BankState>,
    /// Content items excluded from matching until a Unix time (seconds).
    pub(crate) disabled: HashMap<ContentId, i64>,
}

impl Meta {
    fn set(&mut self, id: SignalId, content: ContentId, bank: BankId) {
        let i = id as usize;
        if self.content_of.len() <= i {
            let n = (i + 1).max(self.content_of.len() * 5 / 4);
            self.content_of.resize(n, 0);
            self.bank_of.resize(n, 0);
        }
        self.content_of[i] = content;
        // Bank ids are row ids of a table with at most a few thousand rows.
        self.bank_of[i] = u32::try_from(bank).unwrap_or(u32::MAX);
    }

    fn clear(&mut self, id: SignalId) {
        if let Some(c) = self.content_of.get_mut(id as usize) {
            *c = 0;
        }
    }

    fn get(&self, id: u64) -> Option<(ContentId, BankId)> {
        let i = usize::try_from(id).ok()?;
        match self.content_of.get(i) {
            Some(&c) if c != 0 => Some((c, self.bank_of[i] as BankId)),
            _ => None,
        }
    }

    /// Bytes held by the per-signal vectors.
    fn bytes(&self) -> usize {
        self.content_of.capacity() * 8 + self.bank_of.capacity() * 4
    }
}

/// One raw index hit, before bank rules are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The matching signal.
    pub signal_id: SignalId,
    /// Its content item.
    pub content_id: ContentId,
    /// Its bank.
    pub bank_id: BankId,
    /// Hamming distance (0 for exact signal types).
    pub distance: u32,
}

/// All in-memory match state.
#[derive(Debug)]
pub(crate) struct Matcher {
    pdq: PdqIndex,
    md5: Md5Index,
    sha1: Sha1Index,
    sha256: Sha256Index,
    pub(crate) meta: RwLock<Meta>,
}

impl Matcher {
    /// A matcher over the given signals (a full scan of the store) and banks.
    pub(crate) fn build(
        signals: Vec<(SignalId, ContentId, BankId, SignalValue)>,
        banks: &[Bank],
        disabled: Vec<(ContentId, i64)>,
    ) -> Result<Matcher, crate::Error> {
        let mut meta = Meta::default();
        let mut pdq = PdqIndex::builder();
        let (mut md5, mut sha1, mut sha256) = (Vec::new(), Vec::new(), Vec::new());
        for (id, content, bank, value) in signals {
            meta.set(id, content, bank);
            match value {
                SignalValue::Pdq(h) => pdq.push(id as u64, &h),
                SignalValue::Md5(d) => md5.push((d, id as u64)),
                SignalValue::Sha1(d) => sha1.push((d, id as u64)),
                SignalValue::Sha256(d) => sha256.push((d, id as u64)),
            }
        }
        meta.banks = banks.iter().map(|b| (b.id, BankState::from(b))).collect();
        meta.disabled = disabled.into_iter().collect();
        Ok(Matcher {
            pdq: pdq.build()?,
            md5: Md5Index::from_entries(md5),
            sha1: Sha1Index::from_entries(sha1),
            sha256: Sha256Index::from_entries(sha256),
            meta: RwLock::new(meta),
        })
    }

    /// Adds a signal (from the change feed).
    pub(crate) fn add(&self, s: &Signal, value: SignalValue, meta: &mut Meta) {
        meta.set(s.id, s.content_id, s.bank_id);
        let id = s.id as u64;
        match value {
            SignalValue::Pdq(h) => {
                self.pdq.add(id, &h);
            }
            SignalValue::Md5(d) => {
                self.md5.insert(&d, id);
            }
            SignalValue::Sha1(d) => {
                self.sha1.insert(&d, id);
            }
            SignalValue::Sha256(d) => {
                self.sha256.insert(&d, id);
            }
        }
    }

    /// Removes a signal (from the change feed).
    pub(crate) fn remove(&self, s: &Signal, value: SignalValue, meta: &mut Meta) {
        meta.clear(s.id);
        let id = s.id as u64;
        match value {
            SignalValue::Pdq(h) => {
                self.pdq.remove(id, &h);
            }
            SignalValue::Md5(d) => {
                self.md5.remove(&d, id);
            }
            SignalValue::Sha1(d) => {
                self.sha1.remove(&d, id);
            }
            SignalValue::Sha256(d) => {
                self.sha256.remove(&d, id);
            }
        }
    }

    /// Every indexed signal of `value`'s type within `radius` (PDQ) or equal to it.
    pub(crate) fn hits(
        &self,
        value: &SignalValue,
        radius: u32,
        meta: &Meta,
    ) -> Result<Vec<Hit>, crate::Error> {
        let raw: Vec<(u64, u32)> = match value {
            SignalValue::Pdq(h) => self
                .pdq
                .search(h, radius)?
                .into_iter()
                .map(|m| (m.id, m.distance))
                .collect(),
            SignalValue::Md5(d) => exact(|out| self.md5.lookup(d, out)),
            SignalValue::Sha1(d) => exact(|out| self.sha1.lookup(d, out)),
            SignalValue::Sha256(d) => exact(|out| self.sha256.lookup(d, out)),
        };
        Ok(raw
            .into_iter()
            .filter_map(|(id, distance)| {
                meta.get(id).map(|(content_id, bank_id)| Hit {
                    signal_id: id as SignalId,
                    content_id,
                    bank_id,
                    distance,
                })
            })
            .collect())
    }

    /// Entry counts per signal type, and approximate bytes in memory.
    pub(crate) fn sizes(&self) -> (Vec<(SignalType, usize)>, usize) {
        let meta_bytes = self.meta.read().map(|m| m.bytes()).unwrap_or(0);
        let stats = self.pdq.stats();
        (
            vec![
                (SignalType::Pdq, self.pdq.len()),
                (SignalType::Md5, self.md5.len()),
                (SignalType::Sha1, self.sha1.len()),
                (SignalType::Sha256, self.sha256.len()),
            ],
            stats.bytes
                + self.md5.memory_bytes()
                + self.sha1.memory_bytes()
                + self.sha256.memory_bytes()
                + meta_bytes,
        )
    }
}

fn exact(f: impl FnOnce(&mut Vec<u64>)) -> Vec<(u64, u32)> {
    let mut out = Vec::new();
    f(&mut out);
    out.into_iter().map(|id| (id, 0)).collect()
}
