//! When to try a failed delivery again, and when to give up.
//!
//! Exponential backoff with full jitter: after the n-th failed attempt the next one waits a
//! uniformly random time in `(0, min(max_delay, base × factorⁿ⁻¹)]`. Full jitter (rather than
//! a fixed delay plus a little noise) spreads the retries of many deliveries that failed
//! together, so a receiver coming back from an outage is not hit by the whole backlog at once.
//!
//! Retries continue until the horizon, measured from the delivery's first attempt (not from
//! the event's creation, so a backlog that waited behind an earlier event still gets its full
//! horizon). The last retry is pulled in to land on the horizon itself; a failure at or after
//! the horizon dead-letters the delivery.

use std::time::Duration;

use rand::Rng;

use crate::outbox::Next;
use crate::{Error, Result};

/// Default delay cap after the first failure: 5 s, long enough for a restarting receiver.
pub const DEFAULT_BASE: Duration = Duration::from_secs(5);
/// Default growth of the cap per failure.
pub const DEFAULT_FACTOR: u32 = 2;
/// Default largest cap: 1 h, so an endpoint that comes back is retried within the hour.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(3600);
/// Default horizon: 24 h from the first attempt, then the dead-letter list.
pub const DEFAULT_HORIZON: Duration = Duration::from_secs(24 * 3600);

/// The retry schedule's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Delay cap after the first failure; must be at least 1 ms.
    pub base: Duration,
    /// Multiplier of the cap per further failure; at least 1 (1 means no growth).
    pub factor: u32,
    /// Largest cap, whatever the number of failures; at least `base`.
    pub max_delay: Duration,
    /// How long after its first attempt a delivery is retried before it is dead-lettered.
    pub horizon: Duration,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule {
            base: DEFAULT_BASE,
            factor: DEFAULT_FACTOR,
            max_delay: DEFAULT_MAX_DELAY,
            horizon: DEFAULT_HORIZON,
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Schedule {
    /// Refuses parameters that would retry in a tight loop or never grow sensibly.
    pub fn validate(&self) -> Result<()> {
        if self.base < Duration::from_millis(1) {
            return Err(Error::InvalidConfig(
                "retry base must be at least 1 ms".into(),
            ));
        }
        if self.factor == 0 {
            return Err(Error::InvalidConfig(
                "retry factor must be at least 1".into(),
            ));
        }
        if self.max_delay < self.base {
            return Err(Error::InvalidConfig(
                "retry max_delay must be at least the base".into(),
            ));
        }
        if self.horizon.is_zero() {
            return Err(Error::InvalidConfig(
                "retry horizon must be positive".into(),
            ));
        }
        Ok(())
    }

    /// The delay cap after `failures` failed attempts (1 = the first failure), in ms.
    pub fn cap_ms(&self, failures: u32) -> i64 {
        let max = ms(self.max_delay);
        let mut cap = ms(self.base);
        // Stops multiplying once past the max, so large failure counts cannot overflow.
        for _ in 1..failures {
            if cap >= max {
                break;
            }
            cap = cap.saturating_mul(i64::from(self.factor));
        }
        cap.min(max)
    }

    /// What follows a failed attempt: `failures` attempts have failed so far (this one
    /// included), the first was at `first_attempt_at_ms`, this one ended at `now_ms`.
    /// Never returns [`Next::Delivered`]; a retry is always strictly after `now_ms`.
    pub fn next(
        &self,
        failures: u32,
        first_attempt_at_ms: i64,
        now_ms: i64,
        rng: &mut impl Rng,
    ) -> Next {
        let deadline = first_attempt_at_ms.saturating_add(ms(self.horizon));
        if now_ms >= deadline {
            return Next::Dead;
        }
        let delay = rng.random_range(1..=self.cap_ms(failures.max(1)).max(1));
        Next::RetryAt(now_ms.saturating_add(delay).min(deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn caps_grow_and_stop_at_the_max() {
        let s = Schedule::default();
        let caps: Vec<i64> = (1..=12).map(|n| s.cap_ms(n)).collect();
        assert_eq!(
            caps,
            [
                5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 640_000, 1_280_000,
                2_560_000, 3_600_000, 3_600_000
            ]
        );
        assert_eq!(s.cap_ms(u32::MAX), 3_600_000);
        let flat = Schedule {
            factor: 1,
            ..Schedule::default()
        };
        assert_eq!(flat.cap_ms(30), 5_000);
    }

    #[test]
    fn delays_are_full_jitter_within_the_cap() {
        let s = Schedule::default();
        let mut rng = StdRng::seed_from_u64(7);
        for failures in 1..=15 {
            let cap = s.cap_ms(failures);
            let delays: Vec<i64> = (0..400)
                .map(|_| match s.next(failures, 0, 1_000, &mut rng) {
                    Next::RetryAt(at) => at - 1_000,
                    other => panic!("{other:?}"),
                })
                .collect();
            assert!(delays.iter().all(|&d| d >= 1 && d <= cap), "{failures}");
            // Full jitter spreads over the whole range, not just near the cap.
            let low = delays.iter().filter(|&&d| d < cap / 4).count();
            let high = delays.iter().filter(|&&d| d > cap * 3 / 4).count();
            assert!(low > 40 && high > 40, "{failures}: {low} low, {high} high");
        }
    }

    #[test]
    fn seeded_rng_is_reproducible() {
        let s = Schedule::default();
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (1..10)
                .map(|n| s.next(n, 0, 0, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn horizon_clamps_then_dead_letters() {
        let s = Schedule {
            base: Duration::from_secs(10),
            horizon: Duration::from_secs(60),
            ..Schedule::default()
        };
        let mut rng = StdRng::seed_from_u64(3);
        let first = 1_000_000;
        // Close to the deadline, a retry lands no later than the deadline itself.
        for _ in 0..100 {
            match s.next(9, first, first + 59_999, &mut rng) {
                Next::RetryAt(at) => assert_eq!(at, first + 60_000),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(s.next(9, first, first + 60_000, &mut rng), Next::Dead);
        assert_eq!(s.next(1, first, first + 10_000_000, &mut rng), Next::Dead);
    }

    #[test]
    fn validation() {
        assert!(Schedule::default().validate().is_ok());
        for bad in [
            Schedule {
                base: Duration::ZERO,
                ..Schedule::default()
            },
            Schedule {
                factor: 0,
                ..Schedule::default()
            },
            Schedule {
                max_delay: Duration::from_secs(1),
                ..Schedule::default()
            },
            Schedule {
                horizon: Duration::ZERO,
                ..Schedule::default()
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::InvalidConfig(_))),
                "{bad:?}"
            );
        }
    }
}
