//! The scorer: events in, per-account scores out, each with the features that raised it and
//! by how much, and a report the first time an account crosses a threshold.

use std::collections::HashMap;

use safeguard_contact::AgeBand;
use serde::{Deserialize, Serialize};

use crate::account::{AccountState, Level, Pair, RecentEvent, FOUR_HOURS, HOUR, TEN_MINUTES};
use crate::config::RiskSpec;
use crate::error::Error;
use crate::event::{Channel, Event, EventKind};
use crate::feature::{Feature, FeatureSet, FEATURE_COUNT};
use crate::table::AccountTable;
use crate::text::{Category, PatternSet};

/// One feature's part in a score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// The feature.
    pub feature: Feature,
    /// The raw count behind it (events, minors, bands; for `minor_share`, minor contacts).
    pub count: u32,
    /// The feature's value, 0 to 1 (the count over [`Feature::saturation`], at most 1; for
    /// `minor_share`, the weighted share).
    pub value: f64,
    /// The configured weight.
    pub weight: f64,
    /// `value × weight`: what it added to the score.
    pub contribution: f64,
}

/// An account's score, explained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The account.
    pub account: String,
    /// The sum of the contributions.
    pub score: f64,
    /// The level the account is at (after hysteresis: it may stay at a level for a cooldown
    /// while its score has dropped).
    pub level: Level,
    /// The time the score is for: the account's newest event.
    pub at: u64,
    /// Every feature with a non-zero contribution, largest first.
    pub contributions: Vec<Contribution>,
}

/// A recent event that raised a feature, attached to a crossing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSummary {
    /// The caller's event id, if it sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What happened.
    pub kind: EventKind,
    /// The other account.
    pub counterpart: String,
    /// When.
    pub timestamp: u64,
    /// The features the event raised.
    pub features: Vec<Feature>,
}

/// An account reached a level it was not at: reported once, then not again until the score
/// has fallen below the threshold × hysteresis and the cooldown has passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crossing {
    /// The account.
    pub account: String,
    /// The level reached (`review` or `alert`; straight to `alert` is one crossing).
    pub level: Level,
    /// The score that crossed, with its contributions.
    pub score: f64,
    /// When.
    pub at: u64,
    /// The features that raised it, largest first.
    pub contributions: Vec<Contribution>,
    /// The account's recent contributing events, oldest first (at most
    /// [`RiskSpec::recent_events`]).
    pub events: Vec<EventSummary>,
}

/// What observing one event did to its subject ([`Event::subject`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The subject's score after the event.
    pub score: f64,
    /// Its level after the event.
    pub level: Level,
    /// The features this event raised.
    pub raised: FeatureSet,
    /// A threshold crossed by this event, if any.
    pub crossing: Option<Crossing>,
}

/// Scores a stream of events in bounded memory. Not thread-safe by itself: the server keeps
/// one behind a mutex; a platform scoring in parallel shards accounts over several scorers.
#[derive(Debug, Clone)]
pub struct Scorer {
    spec: RiskSpec,
    weights: [f64; FEATURE_COUNT],
    patterns: PatternSet,
    table: AccountTable,
    /// Reused for each message's skeleton.
    scratch: String,
}

/// An account's band after an event that sent `sent` for it: `unknown` does not overwrite a
/// band the platform sent before, and an event without a band leaves it as it was.
fn band_after(before: Option<AgeBand>, sent: Option<AgeBand>) -> Option<AgeBand> {
    match sent {
        Some(AgeBand::Unknown) => before.or(Some(AgeBand::Unknown)),
        Some(b) => Some(b),
        None => before,
    }
}

fn rank(band: AgeBand) -> u8 {
    match band {
        AgeBand::Under13 => 0,
        AgeBand::From13To15 => 1,
        AgeBand::From16To17 => 2,
        AgeBand::Adult | AgeBand::Unknown => 3,
    }
}

impl Scorer {
    /// A scorer with checked settings and compiled patterns.
    pub fn new(spec: RiskSpec, patterns: PatternSet) -> Result<Scorer, Error> {
        spec.validate()?;
        Ok(Scorer {
            weights: spec.weights.as_array(),
            table: AccountTable::new(spec.max_accounts),
            spec,
            patterns,
            scratch: String::new(),
        })
    }

    /// The default settings and the shipped patterns.
    pub fn with_defaults() -> Scorer {
        let spec = RiskSpec::default();
        Scorer {
            weights: spec.weights.as_array(),
            table: AccountTable::new(spec.max_accounts),
            spec,
            patterns: PatternSet::default_set(),
            scratch: String::new(),
        }
    }

    /// The settings in force.
    pub fn spec(&self) -> &RiskSpec {
        &self.spec
    }

    /// Accounts tracked now (at most [`RiskSpec::max_accounts`]).
    pub fn accounts(&self) -> usize {
        self.table.len()
    }

    /// Accounts forgotten to make room so far.
    pub fn evictions(&self) -> u64 {
        self.table.evictions()
    }

    /// Bytes the tracked accounts hold now (slots, index and each account's lists),
    /// approximately: allocator overhead is not counted.
    pub fn approx_bytes(&self) -> usize {
        self.table.bytes()
    }

    /// The most [`Scorer::approx_bytes`] can reach with these settings.
    pub fn max_bytes(&self) -> usize {
        self.spec.max_accounts
            * (AccountTable::bytes_per_slot()
                + AccountState::max_bytes(self.spec.max_pairs_per_account, self.spec.recent_events))
    }

    fn is_night(&self, ts: u64) -> bool {
        let s = &self.spec;
        let local = ts as i64 + i64::from(s.utc_offset_minutes) * 60;
        // rem_euclid is in 0..24, so the cast cannot truncate.
        let hour = (local.rem_euclid(86_400) / 3600) as u8;
        let (start, end) = (s.night_start_hour, s.night_end_hour);
        if start < end {
            (start..end).contains(&hour)
        } else if start > end {
            hour >= start || hour < end
        } else {
            false // start == end: no night
        }
    }

    fn counts_as_adult(&self, band: Option<AgeBand>) -> bool {
        match band {
            Some(AgeBand::Adult) => true,
            Some(AgeBand::Unknown) | None => self.spec.unknown_actor_as_adult,
            Some(_) => false,
        }
    }

    /// Scores one event: updates its subject's state and answers the subject's new score,
    /// and a crossing if this event made one.
    pub fn observe(&mut self, e: &Event) -> Observation {
        self.observe_with(e, false)
    }

    /// Whether the optional semantic model should read this event's text: a message with
    /// text, not in a public channel, from an account counted as an adult to a minor, on a
    /// pair that is (or, as its first contact, becomes) a stranger pair, and in which no
    /// lexical pattern is found. This is where [`Feature::Semantic`] can count, so the
    /// caller spends the model's milliseconds only there. Read-only; for a batch use
    /// [`Scorer::semantic_candidates`], which sees what the batch's earlier events change.
    pub fn semantic_candidate(&self, e: &Event) -> bool {
        self.semantic_candidates(std::slice::from_ref(e))[0]
    }

    /// [`Scorer::semantic_candidate`] for each event of a batch that is about to be observed
    /// in order: an account's band sent by an earlier event of the batch, and a pair first
    /// seen earlier in it, count as [`Scorer::observe_with`] will count them. Read-only.
    pub fn semantic_candidates(&self, events: &[Event]) -> Vec<bool> {
        // What the batch itself has changed so far: bands by account, and for pairs first
        // seen in the batch, whether each is a stranger pair.
        let mut bands: HashMap<&str, Option<AgeBand>> = HashMap::new();
        let mut pairs: HashMap<(&str, &str), bool> = HashMap::new();
        let mut scratch = String::new();
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let about_target = e.kind.is_about_target();
            let (subject, other, subject_band, other_band) = if about_target {
                (
                    e.target.as_str(),
                    e.actor.as_str(),
                    e.target_age,
                    e.actor_age,
                )
            } else {
                (
                    e.actor.as_str(),
                    e.target.as_str(),
                    e.actor_age,
                    e.target_age,
                )
            };
            let stored = self.table.get(self.table.key(subject), subject);
            let before = match bands.get(subject) {
                Some(b) => *b,
                None => stored.and_then(|a| a.band),
            };
            let band = band_after(before, subject_band);
            bands.insert(subject, band);
            let adult = self.counts_as_adult(band);
            let other_minor = other_band.is_some_and(AgeBand::is_minor);
            let known = pairs.get(&(subject, other)).copied().or_else(|| {
                stored.and_then(|a| {
                    a.find_pair(self.table.key(other))
                        .map(|i| a.pairs[i].flags & Pair::UNCONNECTED_MINOR_FIRST != 0)
                })
            });
            let stranger = known.unwrap_or(
                adult
                    && other_minor
                    && e.kind != EventKind::ConnectionAccept
                    && e.connected != Some(true),
            );
            let makes_pair = matches!(
                e.kind,
                EventKind::Message
                    | EventKind::ConnectionRequest
                    | EventKind::Gift
                    | EventKind::Image
                    | EventKind::ConnectionAccept
            );
            if known.is_none() && makes_pair {
                pairs.insert((subject, other), stranger);
            }
            let candidate = e.kind == EventKind::Message
                && e.channel != Some(Channel::Public)
                && adult
                && other_minor
                && stranger
                && e.text
                    .as_deref()
                    .is_some_and(|t| self.patterns.scan(t, &mut scratch).is_empty());
            out.push(candidate);
        }
        out
    }

    /// [`Scorer::observe`], with what the semantic model said of the event's text:
    /// `semantic` is true when it flagged the text (see [`Feature::Semantic`]). A flag on a
    /// message where a lexical pattern was found, or outside a stranger pair, counts nothing.
    pub fn observe_with(&mut self, e: &Event, semantic: bool) -> Observation {
        let now = e.timestamp;
        let about_target = e.kind.is_about_target();
        let (subject, counterpart) = if about_target {
            (&e.target, &e.actor)
        } else {
            (&e.actor, &e.target)
        };
        let (subject_band, other_band) = if about_target {
            (e.target_age, e.actor_age)
        } else {
            (e.actor_age, e.target_age)
        };
        let key = self.table.key(subject);
        let other_key = self.table.key(counterpart);
        let night = self.is_night(now);
        let pairs_cap = self.spec.max_pairs_per_account;
        let quick_secs = self.spec.quick_private_secs;
        let unknown_as_adult = self.spec.unknown_actor_as_adult;

        let acct = self.table.get_or_insert(key, subject);
        acct.band = band_after(acct.band, subject_band);
        acct.last_ts = acct.last_ts.max(now);
        let adult = match acct.band {
            Some(AgeBand::Adult) => true,
            Some(AgeBand::Unknown) | None => unknown_as_adult,
            Some(_) => false,
        };
        let other_minor = other_band.is_some_and(AgeBand::is_minor);
        let mut raised = FeatureSet::default();

        match e.kind {
            EventKind::Block | EventKind::Report => {
                if other_minor {
                    if e.kind == EventKind::Block {
                        acct.blocks.add(now, crate::account::DAY);
                        raised.insert(Feature::MinorBlocks);
                    } else {
                        acct.reports.add(now, crate::account::DAY);
                        raised.insert(Feature::MinorReports);
                    }
                }
            }
            EventKind::ConnectionAccept => {
                let (pair, _) = acct.pair(other_key, now, pairs_cap);
                pair.flags |= Pair::CONNECTED;
            }
            EventKind::ProfileView => {
                let connected = match e.connected {
                    Some(c) => c,
                    None => acct
                        .find_pair(other_key)
                        .is_some_and(|i| acct.pairs[i].flags & Pair::CONNECTED != 0),
                };
                if adult && other_minor && !connected {
                    acct.views.add(now, FOUR_HOURS);
                    raised.insert(Feature::MinorProfileViews);
                }
            }
            EventKind::Message
            | EventKind::ConnectionRequest
            | EventKind::Gift
            | EventKind::Image => {
                let (pair, new) = acct.pair(other_key, now, pairs_cap);
                match e.connected {
                    Some(true) => pair.flags |= Pair::CONNECTED,
                    Some(false) => pair.flags &= !Pair::CONNECTED,
                    None => {}
                }
                let connected = pair.flags & Pair::CONNECTED != 0;
                if new && other_minor {
                    pair.flags |= Pair::MINOR;
                }
                let mut first_unconnected = false;
                let mut quick = false;
                if adult && other_minor {
                    if new && !connected {
                        pair.flags |= Pair::UNCONNECTED_MINOR_FIRST;
                        first_unconnected = true;
                    }
                    if e.kind == EventKind::Message
                        && e.channel == Some(Channel::Private)
                        && pair.flags & Pair::UNCONNECTED_MINOR_FIRST != 0
                        && pair.flags & Pair::QUICK_COUNTED == 0
                        && now.saturating_sub(pair.first_seen) <= quick_secs
                    {
                        pair.flags |= Pair::QUICK_COUNTED;
                        quick = true;
                    }
                }
                let stranger = pair.flags & Pair::UNCONNECTED_MINOR_FIRST != 0;
                if new {
                    acct.contacts = acct.contacts.saturating_add(1);
                    if other_minor {
                        acct.minor_contacts = acct.minor_contacts.saturating_add(1);
                        if adult {
                            raised.insert(Feature::MinorShare);
                        }
                    }
                }
                if first_unconnected {
                    acct.fan_out_1h.add(now, TEN_MINUTES);
                    acct.fan_out_24h.add(now, HOUR);
                    raised.insert(Feature::FanOut1h);
                    raised.insert(Feature::FanOut24h);
                    let gap = rank(AgeBand::Adult) - other_band.map_or(3, rank);
                    let fresh = now.saturating_sub(acct.gap_at) > crate::account::AGE_GAP_SECS;
                    if gap > acct.gap || fresh {
                        acct.gap = gap;
                        acct.gap_at = now;
                    } else {
                        acct.gap_at = acct.gap_at.max(now);
                    }
                    raised.insert(Feature::AgeGap);
                }
                if quick {
                    acct.quick_private.add(now, FOUR_HOURS);
                    raised.insert(Feature::QuickPrivate);
                }
                // Contact that began as a stranger's: the first contact the scorer saw
                // between the two was from an adult to an unconnected minor. Night-time,
                // image, gift and lexical features count only on such pairs, so a parent,
                // a teacher or a coach already connected to the children is not scored on
                // what families and classes say to each other.
                if adult && other_minor && stranger {
                    if night {
                        acct.night.add(now, FOUR_HOURS);
                        raised.insert(Feature::NightContact);
                    }
                    match e.kind {
                        EventKind::Image => {
                            acct.images.add(now, FOUR_HOURS);
                            raised.insert(Feature::ImagesToMinors);
                        }
                        EventKind::Gift => {
                            acct.lexical[Category::Gifts as usize].add(now, FOUR_HOURS);
                            raised.insert(Feature::Gifts);
                        }
                        // Text in a public channel is seen by others (and by the
                        // platform's moderators); the requests that matter are made in
                        // private, so public text is not scored.
                        EventKind::Message if e.channel != Some(Channel::Public) => {
                            if let Some(text) = &e.text {
                                let found = self.patterns.scan(text, &mut self.scratch);
                                for c in found.iter() {
                                    acct.lexical[c as usize].add(now, FOUR_HOURS);
                                    raised.insert(Feature::of_category(c));
                                }
                                if semantic && found.is_empty() {
                                    acct.semantic.add(now, FOUR_HOURS);
                                    raised.insert(Feature::Semantic);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }

        let (score, _) = weigh(acct, now, adult, &self.weights, None);
        let s = &self.spec;
        let reached = if score >= s.alert {
            Level::Alert
        } else if score >= s.review {
            Level::Review
        } else {
            Level::None
        };
        let mut crossed = None;
        if reached > acct.level {
            acct.level = reached;
            acct.level_at = now;
            crossed = Some(reached);
        } else if acct.level > Level::None && now.saturating_sub(acct.level_at) >= s.cooldown_secs {
            // Re-arm after the cooldown, once the score has fallen far enough.
            if score < s.review * s.hysteresis {
                acct.level = Level::None;
            } else if acct.level == Level::Alert && score < s.alert * s.hysteresis {
                acct.level = Level::Review;
            }
        }
        if !raised.is_empty() {
            acct.remember(
                RecentEvent {
                    id: e.id.as_deref().map(Into::into),
                    kind: e.kind,
                    counterpart: counterpart.as_str().into(),
                    timestamp: now,
                    features: raised,
                },
                s.recent_events,
            );
        }
        let level = acct.level;
        let crossing = crossed.map(|level| {
            let mut contributions = Vec::new();
            weigh(acct, now, adult, &self.weights, Some(&mut contributions));
            Crossing {
                account: acct.id.to_string(),
                level,
                score,
                at: now,
                contributions,
                events: summaries(acct),
            }
        });
        Observation {
            score,
            level,
            raised,
            crossing,
        }
    }

    /// The account's score now (at its newest event), explained; `None` if the account is
    /// not tracked (never seen, or forgotten to make room).
    pub fn score(&self, account: &str) -> Option<Score> {
        let acct = self.table.get(self.table.key(account), account)?;
        let adult = self.counts_as_adult(acct.band);
        let mut contributions = Vec::new();
        let (score, _) = weigh(
            acct,
            acct.last_ts,
            adult,
            &self.weights,
            Some(&mut contributions),
        );
        Some(Score {
            account: account.to_string(),
            score,
            level: acct.level,
            at: acct.last_ts,
            contributions,
        })
    }

    /// The account's recent contributing events, oldest first.
    pub fn recent_events(&self, account: &str) -> Vec<EventSummary> {
        self.table
            .get(self.table.key(account), account)
            .map(summaries)
            .unwrap_or_default()
    }
}

fn summaries(acct: &AccountState) -> Vec<EventSummary> {
    acct.recent
        .iter()
        .map(|r| EventSummary {
            id: r.id.as_deref().map(str::to_string),
            kind: r.kind,
            counterpart: r.counterpart.to_string(),
            timestamp: r.timestamp,
            features: r.features.iter().collect(),
        })
        .collect()
}

/// The score of `acct` at `now`; with `explain`, also every non-zero contribution, largest
/// first. The second value is the set of contributing features.
fn weigh(
    acct: &AccountState,
    now: u64,
    adult: bool,
    weights: &[f64; FEATURE_COUNT],
    explain: Option<&mut Vec<Contribution>>,
) -> (f64, FeatureSet) {
    let counts = acct.counts(now, adult);
    let mut total = 0.0;
    let mut set = FeatureSet::default();
    let mut parts = [0.0f64; FEATURE_COUNT];
    let mut values = [0.0f64; FEATURE_COUNT];
    for f in Feature::ALL {
        let i = f as usize;
        if counts[i] == 0 || weights[i] == 0.0 {
            continue;
        }
        let value = if f == Feature::MinorShare {
            let n = f64::from(acct.contacts.max(1));
            (f64::from(counts[i]) / n) * (n / f64::from(f.saturation())).min(1.0)
        } else {
            (f64::from(counts[i]) / f64::from(f.saturation())).min(1.0)
        };
        values[i] = value;
        parts[i] = value * weights[i];
        total += parts[i];
        set.insert(f);
    }
    if let Some(out) = explain {
        out.clear();
        for f in set.iter() {
            let i = f as usize;
            out.push(Contribution {
                feature: f,
                count: counts[i],
                value: values[i],
                weight: weights[i],
                contribution: parts[i],
            });
        }
        out.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
    }
    (total, set)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_767_268_800; // 2026-01-01T12:00:00Z: midday, not night

    fn ev(kind: EventKind, actor: &str, target: &str, at: u64) -> Event {
        Event {
            id: None,
            kind,
            actor: actor.into(),
            target: target.into(),
            timestamp: at,
            actor_age: None,
            target_age: None,
            connected: None,
            channel: None,
            text: None,
        }
    }

    /// An adult's event to a minor of `band`.
    fn adult_to(kind: EventKind, target: &str, band: AgeBand, at: u64) -> Event {
        Event {
            actor_age: Some(AgeBand::Adult),
            target_age: Some(band),
            ..ev(kind, "adult", target, at)
        }
    }

    fn msg(target: &str, at: u64, text: &str) -> Event {
        Event {
            text: Some(text.into()),
            channel: Some(Channel::Private),
            ..adult_to(EventKind::Message, target, AgeBand::From13To15, at)
        }
    }

    fn count(s: &Scorer, account: &str, f: Feature) -> u32 {
        s.score(account)
            .and_then(|sc| sc.contributions.into_iter().find(|c| c.feature == f))
            .map_or(0, |c| c.count)
    }

    /// Settings whose thresholds nothing reaches, so tests see raw counts; unknown actors
    /// are not adults unless a test says so.
    fn counting() -> RiskSpec {
        RiskSpec {
            review: 1000.0,
            alert: 1000.0,
            unknown_actor_as_adult: false,
            ..RiskSpec::default()
        }
    }

    fn scorer(spec: RiskSpec) -> Scorer {
        Scorer::new(spec, PatternSet::default_set()).unwrap()
    }

    #[test]
    fn fan_out_counts_unconnected_minors_in_the_hour_and_the_day() {
        let mut s = scorer(counting());
        for i in 0..6 {
            let m = format!("m{i}");
            s.observe(&adult_to(
                EventKind::ConnectionRequest,
                &m,
                AgeBand::From13To15,
                T0 + i * 60,
            ));
            // A second contact with the same minor is not a new one.
            s.observe(&adult_to(
                EventKind::Message,
                &m,
                AgeBand::From13To15,
                T0 + i * 60 + 5,
            ));
        }
        // Connected minors and adults do not count.
        s.observe(&Event {
            connected: Some(true),
            ..adult_to(EventKind::Message, "c", AgeBand::From13To15, T0 + 400)
        });
        s.observe(&adult_to(
            EventKind::Message,
            "grown",
            AgeBand::Adult,
            T0 + 400,
        ));
        assert_eq!(count(&s, "adult", Feature::FanOut1h), 6);
        assert_eq!(count(&s, "adult", Feature::FanOut24h), 6);
        let sc = s.score("adult").unwrap();
        let c = sc
            .contributions
            .iter()
            .find(|c| c.feature == Feature::FanOut1h)
            .unwrap();
        assert_eq!(c.value, 1.0, "saturates at 5");
        // Three hours on: gone from the hour, still in the day.
        s.observe(&adult_to(
            EventKind::Message,
            "later",
            AgeBand::Adult,
            T0 + 3 * 3600,
        ));
        assert_eq!(count(&s, "adult", Feature::FanOut1h), 0);
        assert_eq!(count(&s, "adult", Feature::FanOut24h), 6);
        // A minor contacting minors has no fan-out.
        let mut s = scorer(counting());
        for i in 0..6 {
            s.observe(&Event {
                actor_age: Some(AgeBand::From13To15),
                target_age: Some(AgeBand::From13To15),
                ..ev(EventKind::Message, "teen", &format!("m{i}"), T0 + i)
            });
        }
        assert_eq!(count(&s, "teen", Feature::FanOut1h), 0);
    }

    #[test]
    fn unknown_actors_count_as_adults_only_when_configured() {
        for (on, want) in [(true, 3), (false, 0)] {
            let mut s = scorer(RiskSpec {
                unknown_actor_as_adult: on,
                review: 1000.0,
                alert: 1000.0,
                ..RiskSpec::default()
            });
            for i in 0..3 {
                s.observe(&Event {
                    target_age: Some(AgeBand::Under13),
                    ..ev(EventKind::Message, "who", &format!("m{i}"), T0 + i)
                });
            }
            assert_eq!(
                count(&s, "who", Feature::FanOut1h),
                want,
                "unknown_actor_as_adult = {on}"
            );
        }
    }

    #[test]
    fn age_gap_is_the_largest_gap_in_bands() {
        let mut s = scorer(counting());
        s.observe(&adult_to(EventKind::Message, "a", AgeBand::From16To17, T0));
        assert_eq!(count(&s, "adult", Feature::AgeGap), 1);
        s.observe(&adult_to(
            EventKind::Message,
            "b",
            AgeBand::Under13,
            T0 + 10,
        ));
        assert_eq!(count(&s, "adult", Feature::AgeGap), 3);
        s.observe(&adult_to(
            EventKind::Message,
            "c",
            AgeBand::From13To15,
            T0 + 20,
        ));
        assert_eq!(count(&s, "adult", Feature::AgeGap), 3, "the largest stays");
        // Forgotten after 7 days.
        s.observe(&adult_to(
            EventKind::Message,
            "d",
            AgeBand::Adult,
            T0 + 8 * 86_400,
        ));
        assert_eq!(count(&s, "adult", Feature::AgeGap), 0);
    }

    #[test]
    fn quick_private_needs_an_unconnected_first_contact_then_private_within_the_limit() {
        let mut s = scorer(counting());
        let public = |t: &str, at| Event {
            channel: Some(Channel::Public),
            ..adult_to(EventKind::Message, t, AgeBand::From13To15, at)
        };
        let private = |t: &str, at| Event {
            channel: Some(Channel::Private),
            ..adult_to(EventKind::Message, t, AgeBand::From13To15, at)
        };
        s.observe(&public("fast", T0));
        s.observe(&private("fast", T0 + 600));
        s.observe(&private("fast", T0 + 700)); // counted once per pair
        s.observe(&public("slow", T0));
        s.observe(&private("slow", T0 + 2 * 3600)); // past the hour
        s.observe(&Event {
            connected: Some(true),
            ..public("friend", T0)
        });
        s.observe(&Event {
            connected: Some(true),
            ..private("friend", T0 + 60)
        });
        assert_eq!(count(&s, "adult", Feature::QuickPrivate), 1);
    }

    #[test]
    fn blocks_and_reports_count_only_by_minors() {
        let mut s = scorer(counting());
        for (i, band) in [AgeBand::Under13, AgeBand::From16To17, AgeBand::Adult]
            .into_iter()
            .enumerate()
        {
            let r = format!("r{i}");
            s.observe(&Event {
                actor_age: Some(band),
                ..ev(EventKind::Block, &r, "sus", T0 + i as u64)
            });
            s.observe(&Event {
                actor_age: Some(band),
                ..ev(EventKind::Report, &r, "sus", T0 + i as u64)
            });
        }
        assert_eq!(count(&s, "sus", Feature::MinorBlocks), 2);
        assert_eq!(count(&s, "sus", Feature::MinorReports), 2);
        // Gone after the week.
        s.observe(&ev(EventKind::Message, "sus", "x", T0 + 8 * 86_400));
        assert_eq!(count(&s, "sus", Feature::MinorBlocks), 0);
    }

    #[test]
    fn minor_share_is_weighted_by_the_number_of_contacts() {
        let mut s = scorer(counting());
        s.observe(&adult_to(EventKind::Message, "m0", AgeBand::From13To15, T0));
        let v = |s: &Scorer| {
            s.score("adult")
                .unwrap()
                .contributions
                .iter()
                .find(|c| c.feature == Feature::MinorShare)
                .map_or(0.0, |c| c.value)
        };
        // One contact, a minor: share 1, weighted by 1/5.
        assert!((v(&s) - 0.2).abs() < 1e-9, "{}", v(&s));
        for i in 1..8 {
            s.observe(&adult_to(
                EventKind::Message,
                &format!("m{i}"),
                AgeBand::From13To15,
                T0 + i,
            ));
        }
        for i in 0..2 {
            s.observe(&adult_to(
                EventKind::Message,
                &format!("g{i}"),
                AgeBand::Adult,
                T0 + 20 + i,
            ));
        }
        // 8 minors of 10 contacts.
        assert!((v(&s) - 0.8).abs() < 1e-9, "{}", v(&s));
    }

    #[test]
    fn night_contact_uses_the_configured_local_hours() {
        let midnight = 1_767_225_600 + 86_400; // 2026-01-02T00:00Z
        let mut s = scorer(counting());
        s.observe(&adult_to(
            EventKind::Message,
            "m",
            AgeBand::From13To15,
            midnight + 3600,
        )); // 01:00
        s.observe(&adult_to(
            EventKind::Message,
            "m",
            AgeBand::From13To15,
            midnight - 1800,
        )); // 23:30
        s.observe(&adult_to(
            EventKind::Message,
            "m",
            AgeBand::From13To15,
            midnight + 12 * 3600,
        )); // noon
        assert_eq!(count(&s, "adult", Feature::NightContact), 2);
        // At UTC+10, 01:00Z is 11:00 local: not night.
        let mut s = scorer(RiskSpec {
            utc_offset_minutes: 600,
            ..counting()
        });
        s.observe(&adult_to(
            EventKind::Message,
            "m",
            AgeBand::From13To15,
            midnight + 3600,
        ));
        assert_eq!(count(&s, "adult", Feature::NightContact), 0);
    }

    #[test]
    fn lexical_categories_count_on_adult_to_minor_text_only() {
        let mut s = scorer(counting());
        s.observe(&msg("m", T0, "this is our secret"));
        s.observe(&msg("m", T0 + 1, "lets move to another app"));
        s.observe(&msg("m", T0 + 2, "send me a selfie"));
        s.observe(&msg("m", T0 + 3, "i can buy you a gift card"));
        s.observe(&msg("m", T0 + 4, "how old are you"));
        s.observe(&msg("m", T0 + 5, "we should meet up"));
        for f in [
            Feature::Secrecy,
            Feature::OffPlatform,
            Feature::ImageRequest,
            Feature::Gifts,
            Feature::AgeQuestion,
            Feature::Meeting,
        ] {
            assert_eq!(count(&s, "adult", f), 1, "{f:?}");
        }
        // The same words between adults, or from a minor, raise nothing.
        s.observe(&Event {
            target_age: Some(AgeBand::Adult),
            ..msg("grown", T0 + 6, "this is our secret")
        });
        s.observe(&Event {
            actor_age: Some(AgeBand::From13To15),
            ..ev(EventKind::Message, "teen", "m2", T0 + 6)
        });
        assert_eq!(count(&s, "adult", Feature::Secrecy), 1);
        assert!(s.score("teen").unwrap().contributions.is_empty());
        // A gift event counts with gift phrases.
        s.observe(&adult_to(EventKind::Gift, "m", AgeBand::From13To15, T0 + 7));
        assert_eq!(count(&s, "adult", Feature::Gifts), 2);
    }

    #[test]
    fn semantic_flags_count_on_stranger_pairs_where_no_pattern_was_found() {
        let mut s = scorer(counting());
        // A stranger's first private message to a minor, in words no pattern lists.
        let plain = msg("m", T0, "the weather is lovely today");
        assert!(s.semantic_candidate(&plain));
        let o = s.observe_with(&plain, true);
        assert!(o.raised.contains(Feature::Semantic));
        assert_eq!(count(&s, "adult", Feature::Semantic), 1);
        let c = s.score("adult").unwrap();
        let sem = c
            .contributions
            .iter()
            .find(|c| c.feature == Feature::Semantic)
            .unwrap();
        assert_eq!((sem.value, sem.weight, sem.contribution), (0.5, 0.5, 0.25));
        // Not flagged: counts nothing.
        s.observe_with(&msg("m", T0 + 1, "and yesterday too"), false);
        assert_eq!(count(&s, "adult", Feature::Semantic), 1);
        // A pattern already found the request: not a candidate, and a flag counts nothing.
        let lexical = msg("m", T0 + 2, "how old are you");
        assert!(!s.semantic_candidate(&lexical));
        s.observe_with(&lexical, true);
        assert_eq!(count(&s, "adult", Feature::Semantic), 1);
        assert_eq!(count(&s, "adult", Feature::AgeQuestion), 1);
        // Public text, a minor's text, text to an adult, a connected pair: not candidates,
        // and a flag on them counts nothing.
        let public = Event {
            channel: Some(Channel::Public),
            ..msg("m", T0 + 3, "nice weather")
        };
        let from_minor = Event {
            actor: "teen".into(),
            actor_age: Some(AgeBand::From13To15),
            ..msg("m", T0 + 3, "nice weather")
        };
        let to_adult = Event {
            target_age: Some(AgeBand::Adult),
            ..msg("grown", T0 + 3, "nice weather")
        };
        s.observe(&Event {
            actor: "m2".into(),
            target: "adult".into(),
            actor_age: Some(AgeBand::From13To15),
            target_age: Some(AgeBand::Adult),
            ..ev(EventKind::ConnectionAccept, "m2", "adult", T0)
        });
        let connected_first = Event {
            connected: Some(true),
            ..msg("m3", T0 + 3, "nice weather")
        };
        for e in [&public, &from_minor, &to_adult, &connected_first] {
            assert!(!s.semantic_candidate(e), "{e:?}");
            s.observe_with(e, true);
        }
        assert_eq!(count(&s, "adult", Feature::Semantic), 1);
        assert_eq!(count(&s, "teen", Feature::Semantic), 0);
        // The window: gone after 24 hours.
        s.observe_with(&msg("m", T0 + 25 * 3600, "hello again"), false);
        assert_eq!(count(&s, "adult", Feature::Semantic), 0);
    }

    #[test]
    fn semantic_candidates_of_a_batch_see_its_earlier_events() {
        let s = scorer(counting());
        // A first contact without `connected`, then a message saying `connected: true`: the
        // pair became a stranger pair at the first event, so the message is a candidate,
        // though alone (a first contact between connected accounts) it would not be.
        let first = Event {
            connected: Some(false),
            ..adult_to(EventKind::Message, "m", AgeBand::From13To15, T0)
        };
        let then = Event {
            connected: Some(true),
            ..msg("m", T0 + 1, "nice weather")
        };
        assert!(!s.semantic_candidate(&then));
        assert_eq!(
            s.semantic_candidates(&[first.clone(), then.clone()]),
            [false, true]
        );
        // The reverse: the minor accepting the adult's request first makes the pair
        // connected (an accept is about the account that asked), not a stranger pair.
        let accept = Event {
            actor_age: Some(AgeBand::From13To15),
            target_age: Some(AgeBand::Adult),
            ..ev(EventKind::ConnectionAccept, "m2", "adult", T0)
        };
        let plain = msg("m2", T0 + 1, "nice weather");
        assert!(s.semantic_candidate(&plain));
        assert_eq!(s.semantic_candidates(&[accept, plain]), [false, false]);
        // A band sent by an earlier event counts (unknown actors are not adults here).
        let says_adult = Event {
            actor: "x".into(),
            actor_age: Some(AgeBand::Adult),
            target_age: Some(AgeBand::From13To15),
            ..ev(EventKind::ProfileView, "x", "m3", T0)
        };
        let no_band = Event {
            actor: "x".into(),
            actor_age: None,
            ..msg("m3", T0 + 1, "nice weather")
        };
        assert!(!s.semantic_candidate(&no_band));
        assert_eq!(s.semantic_candidates(&[says_adult, no_band]), [false, true]);
        // Each agrees with what observing the batch in order counts.
        let mut o = scorer(counting());
        o.observe_with(&first, false);
        assert!(o
            .observe_with(&then, true)
            .raised
            .contains(Feature::Semantic));
    }

    #[test]
    fn obfuscated_text_raises_the_same_features() {
        let mut s = scorer(counting());
        // Cyrillic е and о, full-width letters, leetspeak and spaces.
        s.observe(&msg(
            "m",
            T0,
            "d\u{043E}nt ｔｅｌｌ y0ur p 4 r 3 n t s, k33p th1s s\u{0435}cr3t",
        ));
        assert_eq!(count(&s, "adult", Feature::Secrecy), 1);
    }

    #[test]
    fn images_and_profile_views_of_unconnected_minors() {
        let mut s = scorer(counting());
        s.observe(&adult_to(EventKind::Image, "m", AgeBand::From13To15, T0));
        s.observe(&Event {
            connected: Some(true),
            ..adult_to(EventKind::Image, "kid", AgeBand::Under13, T0)
        });
        for i in 0..4 {
            s.observe(&adult_to(
                EventKind::ProfileView,
                &format!("v{i}"),
                AgeBand::Under13,
                T0 + i,
            ));
        }
        assert_eq!(count(&s, "adult", Feature::ImagesToMinors), 1);
        assert_eq!(count(&s, "adult", Feature::MinorProfileViews), 4);
        // A profile view is not contact: it does not start a pair or a fan-out.
        assert_eq!(count(&s, "adult", Feature::FanOut1h), 1);
    }

    #[test]
    fn accepts_make_later_contact_connected() {
        let mut s = scorer(counting());
        // The minor accepted the adult's request before any message.
        s.observe(&Event {
            actor_age: Some(AgeBand::From13To15),
            target_age: Some(AgeBand::Adult),
            ..ev(EventKind::ConnectionAccept, "m", "adult", T0)
        });
        s.observe(&adult_to(
            EventKind::Message,
            "m",
            AgeBand::From13To15,
            T0 + 10,
        ));
        assert_eq!(count(&s, "adult", Feature::FanOut1h), 0);
    }

    #[test]
    fn every_score_lists_its_contributions_summing_to_it() {
        let mut s = Scorer::with_defaults();
        s.observe(&msg("m", T0, "this is our secret, how old are you"));
        let sc = s.score("adult").unwrap();
        let sum: f64 = sc.contributions.iter().map(|c| c.contribution).sum();
        assert!((sum - sc.score).abs() < 1e-9);
        assert!(sc
            .contributions
            .windows(2)
            .all(|w| w[0].contribution >= w[1].contribution));
        for c in &sc.contributions {
            assert!((c.value * c.weight - c.contribution).abs() < 1e-12);
            assert!(c.value > 0.0 && c.value <= 1.0);
        }
        assert!(s.score("nobody").is_none());
    }

    #[test]
    fn a_crossing_is_reported_once_with_its_events_then_rearms_after_cooldown() {
        let mut s = Scorer::new(
            RiskSpec {
                review: 1.0,
                alert: 3.0,
                cooldown_secs: 3600,
                recent_events: 3,
                ..RiskSpec::default()
            },
            PatternSet::default_set(),
        )
        .unwrap();
        let mut crossings = Vec::new();
        let lines = [
            "how old are you",
            "this is our secret",
            "dont tell your parents",
            "lets move to another app",
            "send me a selfie",
        ];
        for (i, t) in lines.iter().enumerate() {
            let e = Event {
                id: Some(format!("e{i}")),
                ..msg("m", T0 + i as u64 * 60, t)
            };
            if let Some(c) = s.observe(&e).crossing {
                crossings.push(c);
            }
        }
        assert_eq!(crossings.len(), 1, "{crossings:#?}");
        let c = &crossings[0];
        assert_eq!(c.level, Level::Review);
        assert_eq!(c.account, "adult");
        assert!(c.score >= 1.0);
        assert!(!c.contributions.is_empty());
        assert!(c.events.len() <= 3 && !c.events.is_empty());
        assert!(c
            .events
            .iter()
            .all(|e| e.id.as_deref().is_some_and(|id| id.starts_with('e'))));
        // More of the same within the cooldown: no new crossing at the same level.
        for i in 0..5 {
            let o = s.observe(&msg("m", T0 + 400 + i, "this is our secret"));
            assert!(o.crossing.is_none_or(|c| c.level == Level::Alert));
        }
        // Two days later the windows are empty, the score is 0: the level re-arms ...
        let quiet = s.observe(&adult_to(
            EventKind::Message,
            "grown",
            AgeBand::Adult,
            T0 + 2 * 86_400,
        ));
        assert_eq!(quiet.level, Level::None);
        // ... and a new burst is reported again.
        let mut again = 0;
        for (i, t) in lines.iter().enumerate() {
            if s.observe(&msg("m", T0 + 2 * 86_400 + 10 + i as u64, t))
                .crossing
                .is_some()
            {
                again += 1;
            }
        }
        assert!(again >= 1);
    }

    #[test]
    fn straight_to_alert_is_one_crossing() {
        let mut s = Scorer::new(
            RiskSpec {
                review: 0.1,
                alert: 0.2,
                ..RiskSpec::default()
            },
            PatternSet::default_set(),
        )
        .unwrap();
        let o = s.observe(&msg("m", T0, "this is our secret, send me a selfie"));
        assert_eq!(o.crossing.map(|c| c.level), Some(Level::Alert));
        assert_eq!(o.level, Level::Alert);
    }

    #[test]
    fn memory_stays_bounded_over_a_million_accounts() {
        let spec = RiskSpec {
            max_accounts: 10_000,
            max_pairs_per_account: 8,
            recent_events: 4,
            ..RiskSpec::default()
        };
        let mut s = Scorer::new(spec, PatternSet::default_set()).unwrap();
        let bound = s.max_bytes();
        let mut peak = 0usize;
        for i in 0..1_000_000u64 {
            let actor = format!("acct-{i}");
            let e = Event {
                id: Some(format!("ev-{i}")),
                actor_age: Some(AgeBand::Adult),
                target_age: Some(AgeBand::From13To15),
                text: Some("how old are you".into()),
                channel: Some(Channel::Private),
                ..ev(
                    EventKind::Message,
                    &actor,
                    &format!("minor-{}", i % 5000),
                    T0 + i / 10,
                )
            };
            s.observe(&e);
            if i % 100_000 == 0 || i == 999_999 {
                peak = peak.max(s.approx_bytes());
                assert!(s.accounts() <= 10_000);
            }
        }
        assert_eq!(s.accounts(), 10_000);
        assert_eq!(s.evictions(), 990_000);
        assert!(peak <= bound, "{peak} > {bound}");
        // And in absolute terms: about 1 KiB an account here (the bound allows for ids and
        // event ids at their maxima), so under 16 MiB for the 10,000.
        assert!(peak < 16 << 20, "{peak}");
        // The newest accounts are the ones kept.
        assert!(s.score("acct-999999").is_some());
        assert!(s.score("acct-0").is_none());
    }

    #[test]
    fn pairs_per_account_are_capped() {
        let spec = RiskSpec {
            max_pairs_per_account: 4,
            ..counting()
        };
        let mut s = scorer(spec);
        for i in 0..100 {
            s.observe(&adult_to(
                EventKind::Message,
                &format!("m{i}"),
                AgeBand::From13To15,
                T0 + i,
            ));
        }
        // Each forgotten pair met again would count again; 100 distinct minors are counted.
        assert_eq!(count(&s, "adult", Feature::FanOut24h), 100);
        assert!(s.approx_bytes() <= s.max_bytes());
    }
}
