//! Retention clocks: when a vault object expires. Pure arithmetic on unix seconds; the
//! caller's sweeper reads its records, asks [`RetentionPolicy::due`] which have expired,
//! destroys them ([`crate::Vault::destroy`] and its own wrapped-key record) and records each
//! deletion.
//!
//! - Reported: kept for [`RetentionPolicy::after_report`] from the report. The default,
//!   [`REPORT_ACT_RETENTION`], is the US REPORT Act's preservation period (18 U.S.C.
//!   § 2258A(h), one year since 2024), counted as 366 days so a leap year never makes it
//!   fall a day short of the legal minimum.
//! - Never reported: kept for [`RetentionPolicy::unreported`] from storage, default
//!   [`DEFAULT_UNREPORTED_RETENTION`] (90 days).
//! - Under legal hold: never expires while the hold lasts. Lifting the hold restarts nothing:
//!   the clock is computed from the timestamps, so an item whose time has passed is due at
//!   the next sweep.

use std::time::Duration;

/// Seconds in a day.
pub const DAY_SECS: i64 = 86_400;
/// Default retention after a report: one year (the US REPORT Act), as 366 days so that a
/// year containing 29 February is still covered in full.
pub const REPORT_ACT_RETENTION: Duration = Duration::from_secs(366 * DAY_SECS as u64);
/// Default retention of an item whose case was never reported: 90 days, the preservation
/// period 18 U.S.C. § 2258A(h) required before the REPORT Act. Long enough for a review
/// queue to decide and for a report to be made; short enough that evidence that led nowhere
/// is not kept (data minimisation: this is the most sensitive data an operator holds).
pub const DEFAULT_UNREPORTED_RETENTION: Duration = Duration::from_secs(90 * DAY_SECS as u64);

/// How long evidence is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Kept this long after the report of its case.
    pub after_report: Duration,
    /// Kept this long after storage when its case is never reported.
    pub unreported: Duration,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            after_report: REPORT_ACT_RETENTION,
            unreported: DEFAULT_UNREPORTED_RETENTION,
        }
    }
}

/// What the retention clock of one object depends on, from the caller's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionFacts {
    /// When the object was stored, unix seconds.
    pub stored_at: i64,
    /// When its case was reported, unix seconds; `None` while unreported.
    pub reported_at: Option<i64>,
    /// Whether a legal hold is on the object (or its case).
    pub legal_hold: bool,
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl RetentionPolicy {
    /// When an object expires, unix seconds; `None` while it is under legal hold.
    ///
    /// A reported object's clock runs from the later of the report and its storage, so an
    /// item added to a case after the case was reported is still kept the full period.
    pub fn expires_at(
        &self,
        stored_at: i64,
        reported_at: Option<i64>,
        legal_hold: bool,
    ) -> Option<i64> {
        if legal_hold {
            return None;
        }
        Some(match reported_at {
            Some(r) => r.max(stored_at).saturating_add(secs(self.after_report)),
            None => stored_at.saturating_add(secs(self.unreported)),
        })
    }

    /// Whether an object has expired at `now` (unix seconds): its expiry is `now` or earlier.
    pub fn is_due(&self, facts: &RetentionFacts, now: i64) -> bool {
        self.expires_at(facts.stored_at, facts.reported_at, facts.legal_hold)
            .is_some_and(|at| at <= now)
    }

    /// The items of `items` that have expired at `now`, in their order, for the sweeper.
    /// `facts` reads an item's timestamps and hold.
    pub fn due<T>(
        &self,
        items: impl IntoIterator<Item = T>,
        now: i64,
        facts: impl Fn(&T) -> RetentionFacts,
    ) -> Vec<T> {
        items
            .into_iter()
            .filter(|item| self.is_due(&facts(item), now))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_790_000_000; // 2026-09-21, an arbitrary storage time
    const DAY: i64 = DAY_SECS;

    #[test]
    fn a_report_keeps_evidence_a_full_year() {
        let p = RetentionPolicy::default();
        let reported = T0 + 10 * DAY;
        assert_eq!(
            p.expires_at(T0, Some(reported), false),
            Some(reported + 366 * DAY)
        );
        // 2027-03-01 to 2028-03-01 spans 29 February 2028: 366 days, all of them kept.
        let mar_2027 = 1_803_859_200; // 2027-03-01T00:00:00Z
        let mar_2028 = 1_835_481_600; // 2028-03-01T00:00:00Z
        assert_eq!(mar_2028 - mar_2027, 366 * DAY);
        assert!(p.expires_at(mar_2027, Some(mar_2027), false).unwrap() >= mar_2028);
        // A report restarts the clock even after the unreported period would have run out.
        let late = T0 + 200 * DAY;
        assert_eq!(p.expires_at(T0, Some(late), false), Some(late + 366 * DAY));
        // An item stored after its case's report keeps its full period from storage.
        assert_eq!(
            p.expires_at(T0, Some(T0 - 30 * DAY), false),
            Some(T0 + 366 * DAY)
        );
    }

    #[test]
    fn unreported_evidence_follows_the_configured_period() {
        let p = RetentionPolicy::default();
        assert_eq!(p.expires_at(T0, None, false), Some(T0 + 90 * DAY));
        let short = RetentionPolicy {
            unreported: Duration::from_secs(30 * DAY as u64),
            ..p
        };
        assert_eq!(short.expires_at(T0, None, false), Some(T0 + 30 * DAY));
    }

    #[test]
    fn a_legal_hold_stops_the_clock() {
        let p = RetentionPolicy::default();
        assert_eq!(p.expires_at(T0, None, true), None);
        assert_eq!(p.expires_at(T0, Some(T0), true), None);
        let held = RetentionFacts {
            stored_at: T0,
            reported_at: None,
            legal_hold: true,
        };
        assert!(!p.is_due(&held, i64::MAX));
        // Lifted: due at once if its time has passed.
        assert!(p.is_due(
            &RetentionFacts {
                legal_hold: false,
                ..held
            },
            T0 + 91 * DAY
        ));
    }

    #[test]
    fn the_sweeper_gets_exactly_the_expired_items() {
        let p = RetentionPolicy::default();
        let now = T0 + 100 * DAY;
        let items = [
            ("old-unreported", T0, None, false), // expired at T0+90d
            ("new-unreported", T0 + 20 * DAY, None, false), // T0+110d
            ("reported", T0, Some(T0 + DAY), false), // T0+367d
            ("held", T0 - 1000 * DAY, None, true), // never
            ("boundary", now - 90 * DAY, None, false), // exactly now: due
            ("old-reported", T0 - 400 * DAY, Some(T0 - 380 * DAY), false),
        ];
        let due = p.due(items, now, |&(_, stored_at, reported_at, legal_hold)| {
            RetentionFacts {
                stored_at,
                reported_at,
                legal_hold,
            }
        });
        let names: Vec<&str> = due.iter().map(|i| i.0).collect();
        assert_eq!(names, ["old-unreported", "boundary", "old-reported"]);
    }

    #[test]
    fn huge_periods_saturate_instead_of_wrapping() {
        let p = RetentionPolicy {
            after_report: Duration::MAX,
            unreported: Duration::MAX,
        };
        assert_eq!(p.expires_at(T0, None, false), Some(i64::MAX));
        assert_eq!(p.expires_at(T0, Some(T0), false), Some(i64::MAX));
    }
}
