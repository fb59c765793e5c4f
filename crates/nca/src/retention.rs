//! How long the NCA reporting records are kept (reg 8 of SI 2026/268, second-hand; see the
//! crate docs):
//!
//! - reg 8(1)(a): the NCA's unique reference for the report, for **5 years**;
//! - reg 8(1)(b): the CSEA content, the information submitted, the information used to judge
//!   it CSEA, and relevant data of the user who uploaded, created, shared or received it, for
//!   **1 year** from sending the report.
//!
//! The clocks start when the report was *sent* (not when the content was detected). Years
//! are counted generously, as 366 days and 5 × 366 days, so a leap day never makes a record
//! go a day early; the regulations set minimums, and the organisation's own deletion policy
//! (data minimisation) takes over once they pass. The results are Unix milliseconds, like
//! the rest of this crate; [`RetentionDeadlines::content_until_secs`] and
//! [`RetentionDeadlines::reference_until_secs`] give the Unix seconds the vault's retention
//! clocks (`safeguard_vault::retention`) count in.

use std::time::Duration;

use crate::report::timestamp;
use crate::{Error, UnixMs};

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
/// reg 8(1)(b): content, submitted information and related user data, one year from sending;
/// as 366 days so a leap year is covered in full.
pub const CONTENT_RETENTION: Duration = Duration::from_secs(366 * 86_400);
/// reg 8(1)(a): the NCA's reference and the record of the report, five years; as 5 × 366
/// days so the leap days in any five-year span are covered.
pub const REFERENCE_RETENTION: Duration = Duration::from_secs(5 * 366 * 86_400);

/// When the records of one sent report may be deleted, Unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionDeadlines {
    /// When the report was sent (the start of both clocks).
    pub sent_at_ms: UnixMs,
    /// Keep the content, the information submitted, the information used to judge it CSEA
    /// and the related user data until at least this time (reg 8(1)(b)).
    pub content_until_ms: UnixMs,
    /// Keep the NCA's reference and the report record until at least this time (reg 8(1)(a)).
    pub reference_until_ms: UnixMs,
}

impl RetentionDeadlines {
    /// [`RetentionDeadlines::content_until_ms`] in Unix seconds, rounded up so the vault never
    /// deletes early.
    pub fn content_until_secs(&self) -> i64 {
        ceil_secs(self.content_until_ms)
    }

    /// [`RetentionDeadlines::reference_until_ms`] in Unix seconds, rounded up.
    pub fn reference_until_secs(&self) -> i64 {
        ceil_secs(self.reference_until_ms)
    }
}

fn ceil_secs(ms: i64) -> i64 {
    ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)
}

/// The reg 8 retention deadlines of a report sent at `sent_at_ms`.
///
/// Fails only when `sent_at_ms` is not a plausible time (see [`crate::report::EARLIEST_MS`]),
/// because a clock started from a unit mistake would delete evidence at the wrong time.
pub fn retention_deadlines(sent_at_ms: UnixMs) -> Result<RetentionDeadlines, Error> {
    timestamp("sent_at_ms", sent_at_ms)?;
    let days = |d: Duration| (d.as_secs() / 86_400) as i64 * DAY_MS;
    Ok(RetentionDeadlines {
        sent_at_ms,
        content_until_ms: sent_at_ms + days(CONTENT_RETENTION),
        reference_until_ms: sent_at_ms + days(REFERENCE_RETENTION),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::iso8601;

    /// 2026-05-01T12:00:00Z.
    const SENT: UnixMs = 1_777_636_800_000;

    #[test]
    fn one_year_and_five_years_from_sending() {
        let d = retention_deadlines(SENT).expect("valid time");
        assert_eq!(d.sent_at_ms, SENT);
        assert_eq!(d.content_until_ms - SENT, 366 * DAY_MS);
        assert_eq!(d.reference_until_ms - SENT, 5 * 366 * DAY_MS);
        // At least a calendar year and five calendar years, whatever the leap days.
        assert_eq!(iso8601(d.content_until_ms), "2027-05-02T12:00:00Z");
        assert!(iso8601(d.reference_until_ms).as_str() >= "2031-05-01T12:00:00Z");
    }

    #[test]
    fn a_leap_day_inside_the_year_still_leaves_a_full_year() {
        let sent = 1_706_702_400_000; // 2024-01-31T12:00:00Z, before 29 February
        assert_eq!(iso8601(sent), "2024-01-31T12:00:00Z");
        let d = retention_deadlines(sent).expect("valid time");
        assert_eq!(iso8601(d.content_until_ms), "2025-01-31T12:00:00Z");
    }

    #[test]
    fn seconds_for_the_vault_round_up() {
        let d = retention_deadlines(SENT + 1).expect("valid time");
        assert_eq!(d.content_until_secs(), (SENT + 366 * DAY_MS) / 1000 + 1);
        let d = retention_deadlines(SENT).expect("valid time");
        assert_eq!(d.reference_until_secs(), (SENT + 5 * 366 * DAY_MS) / 1000);
    }

    #[test]
    fn implausible_send_times_are_refused() {
        assert!(retention_deadlines(1_777_636_800).is_err()); // seconds
        assert!(retention_deadlines(0).is_err());
    }
}
