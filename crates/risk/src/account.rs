//! What the scorer keeps per account: fixed-size windows and counters, a capped list of
//! counterparts, and a capped list of the recent events that raised a feature.

use std::collections::VecDeque;

use safeguard_contact::AgeBand;
use serde::{Deserialize, Serialize};

use crate::event::{EventKind, MAX_ACCOUNT_ID_LEN, MAX_EVENT_ID_LEN};
use crate::feature::{Feature, FeatureSet};
use crate::window::Window;

/// Ten minutes, in seconds: the bucket of the one-hour windows.
pub(crate) const TEN_MINUTES: u32 = 600;
/// One hour: the bucket of the 24-hour fan-out window.
pub(crate) const HOUR: u32 = 3600;
/// Four hours: the bucket of the other 24-hour windows.
pub(crate) const FOUR_HOURS: u32 = 4 * 3600;
/// One day: the bucket of the 7-day windows.
pub(crate) const DAY: u32 = 24 * 3600;
/// How long the largest age gap is remembered, in seconds.
pub(crate) const AGE_GAP_SECS: u64 = 7 * 24 * 3600;

/// How far an account's score has crossed the thresholds.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Below `review`.
    #[default]
    None,
    /// At or above `review`: route to human review.
    Review,
    /// At or above `alert`: fire an alert.
    Alert,
}

/// A counterpart of the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pair {
    /// The counterpart's id, hashed.
    pub key: u64,
    /// When the account first contacted it (as far as the scorer remembers).
    pub first_seen: u64,
    /// When the two last had an event; the least recent is forgotten first.
    pub last_seen: u64,
    /// [`Pair::CONNECTED`], [`Pair::MINOR`], [`Pair::UNCONNECTED_MINOR_FIRST`],
    /// [`Pair::QUICK_COUNTED`].
    pub flags: u8,
}

impl Pair {
    /// The two are connected (an accept seen, or the last event said so).
    pub const CONNECTED: u8 = 1;
    /// The counterpart is a minor.
    pub const MINOR: u8 = 2;
    /// The first contact was from an adult to an unconnected minor.
    pub const UNCONNECTED_MINOR_FIRST: u8 = 4;
    /// A quick move to private was already counted for this pair.
    pub const QUICK_COUNTED: u8 = 8;
}

/// An event that raised a feature, as kept for a crossing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecentEvent {
    /// The caller's event id (at most [`MAX_EVENT_ID_LEN`] bytes).
    pub id: Option<Box<str>>,
    pub kind: EventKind,
    /// The other account (at most [`MAX_ACCOUNT_ID_LEN`] bytes).
    pub counterpart: Box<str>,
    pub timestamp: u64,
    /// The features it raised.
    pub features: FeatureSet,
}

/// One tracked account. Everything but the id, the pair list and the recent events is fixed
/// size; those three are capped (by [`MAX_ACCOUNT_ID_LEN`] and the configured caps).
#[derive(Debug, Clone)]
pub(crate) struct AccountState {
    /// The account's id, to tell a hash collision from a hit.
    pub id: Box<str>,
    /// The last age band the platform sent for it (`None`: never sent).
    pub band: Option<AgeBand>,
    /// The newest event time seen for it: "now" when it is explained later.
    pub last_ts: u64,
    pub fan_out_1h: Window<6>,
    pub fan_out_24h: Window<24>,
    pub blocks: Window<7>,
    pub reports: Window<7>,
    pub quick_private: Window<6>,
    pub night: Window<6>,
    pub images: Window<6>,
    pub views: Window<6>,
    /// Messages the semantic model flagged ([`Feature::Semantic`]).
    pub semantic: Window<6>,
    /// One window per [`crate::Category`], in [`crate::Category::ALL`] order.
    pub lexical: [Window<6>; 6],
    /// The largest age gap (bands) to an unconnected minor, and when it was seen.
    pub gap: u8,
    pub gap_at: u64,
    /// Distinct counterparts first contacted, and how many of them were minors (counted
    /// when a pair is created; a forgotten pair met again counts again).
    pub contacts: u32,
    pub minor_contacts: u32,
    /// The level reached, and when (for the cooldown).
    pub level: Level,
    pub level_at: u64,
    /// Counterparts, at most the configured cap, least recently seen replaced first.
    pub pairs: Vec<Pair>,
    /// Recent contributing events, at most the configured cap, oldest dropped first.
    pub recent: VecDeque<RecentEvent>,
}

impl AccountState {
    pub fn new(id: &str) -> AccountState {
        AccountState {
            id: id.into(),
            band: None,
            last_ts: 0,
            fan_out_1h: Window::default(),
            fan_out_24h: Window::default(),
            blocks: Window::default(),
            reports: Window::default(),
            quick_private: Window::default(),
            night: Window::default(),
            images: Window::default(),
            views: Window::default(),
            semantic: Window::default(),
            lexical: [Window::default(); 6],
            gap: 0,
            gap_at: 0,
            contacts: 0,
            minor_contacts: 0,
            level: Level::None,
            level_at: 0,
            pairs: Vec::new(),
            recent: VecDeque::new(),
        }
    }

    /// The index of the pair with `key`, if tracked.
    pub fn find_pair(&self, key: u64) -> Option<usize> {
        self.pairs.iter().position(|p| p.key == key)
    }

    /// The pair with `key`, created (replacing the least recently seen when `cap` are
    /// tracked) if needed; `true` when it is new.
    pub fn pair(&mut self, key: u64, now: u64, cap: usize) -> (&mut Pair, bool) {
        if let Some(i) = self.find_pair(key) {
            let p = &mut self.pairs[i];
            p.last_seen = p.last_seen.max(now);
            return (p, false);
        }
        let fresh = Pair {
            key,
            first_seen: now,
            last_seen: now,
            flags: 0,
        };
        if self.pairs.len() < cap {
            grow_exact(&mut self.pairs, cap);
            self.pairs.push(fresh);
            let last = self.pairs.len() - 1;
            (&mut self.pairs[last], true)
        } else {
            // `cap` is at least 1 (validated), so there is a least recent pair to replace.
            let i = self
                .pairs
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| p.last_seen)
                .map_or(0, |(i, _)| i);
            self.pairs[i] = fresh;
            (&mut self.pairs[i], true)
        }
    }

    /// Keeps `e` among the recent events, dropping the oldest beyond `cap`.
    pub fn remember(&mut self, e: RecentEvent, cap: usize) {
        while self.recent.len() >= cap {
            self.recent.pop_front();
        }
        if self.recent.len() == self.recent.capacity() {
            let want = (self.recent.len().max(2) * 2).min(cap);
            self.recent
                .reserve_exact(want.saturating_sub(self.recent.len()));
        }
        self.recent.push_back(e);
    }

    /// Heap and inline bytes this account holds now (the table's share excluded).
    pub fn bytes(&self) -> usize {
        self.id.len()
            + self.pairs.capacity() * std::mem::size_of::<Pair>()
            + self.recent.capacity() * std::mem::size_of::<RecentEvent>()
            + self
                .recent
                .iter()
                .map(|r| r.id.as_ref().map_or(0, |s| s.len()) + r.counterpart.len())
                .sum::<usize>()
    }

    /// The most [`AccountState::bytes`] can be with these caps.
    pub fn max_bytes(pairs_cap: usize, recent_cap: usize) -> usize {
        MAX_ACCOUNT_ID_LEN
            + pairs_cap * std::mem::size_of::<Pair>()
            + recent_cap
                * (std::mem::size_of::<RecentEvent>() + MAX_EVENT_ID_LEN + MAX_ACCOUNT_ID_LEN)
    }

    /// The raw count behind each feature at `now` (before saturation), for an account
    /// counted as an adult or not.
    pub fn counts(&self, now: u64, adult: bool) -> [u32; crate::feature::FEATURE_COUNT] {
        let mut c = [0u32; crate::feature::FEATURE_COUNT];
        c[Feature::FanOut1h as usize] = self.fan_out_1h.count(now, TEN_MINUTES);
        c[Feature::FanOut24h as usize] = self.fan_out_24h.count(now, HOUR);
        c[Feature::AgeGap as usize] = if now.saturating_sub(self.gap_at) <= AGE_GAP_SECS {
            u32::from(self.gap)
        } else {
            0
        };
        c[Feature::QuickPrivate as usize] = self.quick_private.count(now, FOUR_HOURS);
        c[Feature::MinorBlocks as usize] = self.blocks.count(now, DAY);
        c[Feature::MinorReports as usize] = self.reports.count(now, DAY);
        c[Feature::MinorShare as usize] = if adult { self.minor_contacts } else { 0 };
        c[Feature::NightContact as usize] = self.night.count(now, FOUR_HOURS);
        for (i, w) in self.lexical.iter().enumerate() {
            c[Feature::OffPlatform as usize + i] = w.count(now, FOUR_HOURS);
        }
        c[Feature::ImagesToMinors as usize] = self.images.count(now, FOUR_HOURS);
        c[Feature::MinorProfileViews as usize] = self.views.count(now, FOUR_HOURS);
        c[Feature::Semantic as usize] = self.semantic.count(now, FOUR_HOURS);
        c
    }
}

/// Grows `v` so that one more element fits, doubling but never past `cap`: the capacity
/// (and so the memory bound) follows the cap exactly rather than the next power of two.
fn grow_exact<T>(v: &mut Vec<T>, cap: usize) {
    if v.len() == v.capacity() {
        let want = (v.len().max(2) * 2).min(cap);
        v.reserve_exact(want.saturating_sub(v.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_capped_and_the_least_recent_goes() {
        let mut a = AccountState::new("a");
        for k in 0..10u64 {
            let (_, new) = a.pair(k, 100 + k, 4);
            assert!(new);
        }
        assert_eq!(a.pairs.len(), 4);
        assert!(a.pairs.capacity() <= 4);
        // 6..9 remain (the most recent); touching 6 keeps it past the next insert.
        assert!(a.find_pair(5).is_none());
        let (_, new) = a.pair(6, 200, 4);
        assert!(!new);
        a.pair(99, 201, 4);
        assert!(a.find_pair(6).is_some());
        assert!(a.find_pair(7).is_none());
    }

    #[test]
    fn recent_events_are_capped() {
        let mut a = AccountState::new("a");
        for t in 0..20 {
            a.remember(
                RecentEvent {
                    id: Some(format!("e{t}").into()),
                    kind: EventKind::Message,
                    counterpart: "b".into(),
                    timestamp: t,
                    features: FeatureSet::default(),
                },
                5,
            );
        }
        assert_eq!(a.recent.len(), 5);
        assert_eq!(a.recent.front().map(|r| r.timestamp), Some(15));
        assert!(a.bytes() <= AccountState::max_bytes(0, 5) + a.pairs.capacity());
    }
}
