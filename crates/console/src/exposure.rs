//! Limits on how much harmful material one person sees in a day. Reviewing CSAM harms the
//! people who do it; caps and breaks are part of the job's safety, not a preference.

/// One person's totals for the day (the store's `ExposureTotals`, restated so this crate does
/// not depend on the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExposureTotals {
    /// Reveals started today.
    pub reveals: u64,
    /// Time media was unblurred on screen today, ms.
    pub visible_ms: i64,
    /// Time spent on claimed cases today, ms.
    pub review_ms: i64,
}

/// Daily caps and the break rhythm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExposurePolicy {
    /// Reveals per person per UTC day.
    pub daily_reveal_cap: u64,
    /// Review time per person per UTC day, ms.
    pub daily_review_ms_cap: i64,
    /// Continuous review time after which a break is prompted, ms.
    pub break_after_ms: i64,
    /// Longest one reveal stays on screen before it blurs again by itself, ms.
    pub reveal_max_ms: i64,
}

impl Default for ExposurePolicy {
    /// 100 reveals, 4 hours of review a day, a break every 50 minutes, 60-second reveals.
    fn default() -> ExposurePolicy {
        ExposurePolicy {
            daily_reveal_cap: 100,
            daily_review_ms_cap: 4 * 3_600_000,
            break_after_ms: 50 * 60_000,
            reveal_max_ms: 60_000,
        }
    }
}

/// Which daily cap was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// [`ExposurePolicy::daily_reveal_cap`].
    Reveals,
    /// [`ExposurePolicy::daily_review_ms_cap`].
    ReviewTime,
}

/// Where a person stands today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExposureState {
    /// Within limits.
    Ok,
    /// Within the caps, but it is time for a break (prompted, not enforced).
    BreakDue,
    /// A cap is reached: no more claims or reveals today.
    CapReached {
        /// Which one.
        what: Cap,
    },
}

impl ExposureState {
    /// Whether the person may claim cases and reveal media.
    pub fn allows_review(self) -> bool {
        !matches!(self, ExposureState::CapReached { .. })
    }
}

impl ExposurePolicy {
    /// The state for today's `totals` and `since_break_ms` of review since the last break.
    /// A reached cap outranks a due break.
    pub fn state(&self, totals: &ExposureTotals, since_break_ms: i64) -> ExposureState {
        if totals.reveals >= self.daily_reveal_cap {
            ExposureState::CapReached { what: Cap::Reveals }
        } else if totals.review_ms >= self.daily_review_ms_cap {
            ExposureState::CapReached {
                what: Cap::ReviewTime,
            }
        } else if since_break_ms >= self.break_after_ms {
            ExposureState::BreakDue
        } else {
            ExposureState::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        let p = ExposurePolicy::default();
        let mut t = ExposureTotals::default();
        assert_eq!(p.state(&t, 0), ExposureState::Ok);
        assert_eq!(p.state(&t, 50 * 60_000), ExposureState::BreakDue);
        t.review_ms = 4 * 3_600_000;
        assert_eq!(
            p.state(&t, 0),
            ExposureState::CapReached {
                what: Cap::ReviewTime
            }
        );
        t.reveals = 100;
        assert_eq!(
            p.state(&t, 99 * 60_000),
            ExposureState::CapReached { what: Cap::Reveals }
        );
        assert!(!p.state(&t, 0).allows_review());
        assert!(ExposureState::BreakDue.allows_review());
    }
}
