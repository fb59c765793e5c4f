//! How long failed logins lock an account, and how long a session lives.

/// Locks an account after repeated failed logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures per lock: the account locks at every multiple of this (5, 10, 15, ...). A value
    /// of 0 is treated as 1 (lock at every failure) rather than as "never": the safe reading.
    pub max_failures: u32,
    /// Length of the first lock, ms; each further lock doubles it.
    pub lock_ms: i64,
    /// Longest lock, ms. Bounded so that an attacker who guesses on purpose cannot keep a
    /// colleague out for days; an admin reset clears a lock at once.
    pub max_lock_ms: i64,
}

impl Default for LockoutPolicy {
    /// 5 failures, 15 minutes, doubling up to 24 hours.
    fn default() -> LockoutPolicy {
        LockoutPolicy {
            max_failures: 5,
            lock_ms: 15 * 60_000,
            max_lock_ms: 24 * 3_600_000,
        }
    }
}

impl LockoutPolicy {
    /// The lock to set after a failed login that brings the count to `failures` (this one
    /// included), or None when this failure does not lock. The n-th lock lasts
    /// `lock_ms * 2^(n-1)`, at most `max_lock_ms`.
    pub fn lock_until(&self, failures: u32, now: i64) -> Option<i64> {
        let max = self.max_failures.max(1);
        if failures == 0 || failures % max != 0 {
            return None;
        }
        let doublings = (failures / max - 1).min(62);
        let ms = self
            .lock_ms
            .saturating_mul(1i64 << doublings)
            .min(self.max_lock_ms);
        Some(now.saturating_add(ms))
    }
}

/// How long a console session lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Idle limit, ms: an unattended screen with case media on it logs out soon.
    pub idle_ms: i64,
    /// Absolute limit, ms, from login: a working day, then log in again.
    pub absolute_ms: i64,
}

impl Default for SessionPolicy {
    /// 15 minutes idle, 8 hours absolute.
    fn default() -> SessionPolicy {
        SessionPolicy {
            idle_ms: 15 * 60_000,
            absolute_ms: 8 * 3_600_000,
        }
    }
}

impl SessionPolicy {
    /// The session's `expires_at` for a login at `created_at`.
    pub fn expires_at(&self, created_at: i64) -> i64 {
        created_at.saturating_add(self.absolute_ms)
    }

    /// Whether a session created at `created_at` and last seen at `last_seen_at` is still live
    /// at `now`.
    pub fn is_live(&self, created_at: i64, last_seen_at: i64, now: i64) -> bool {
        now < self.expires_at(created_at) && now < last_seen_at.saturating_add(self.idle_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_doubles_up_to_the_maximum() {
        let p = LockoutPolicy::default();
        let min = 60_000;
        for f in [0, 1, 4, 6, 9] {
            assert_eq!(p.lock_until(f, 0), None, "{f}");
        }
        assert_eq!(p.lock_until(5, 0), Some(15 * min));
        assert_eq!(p.lock_until(10, 0), Some(30 * min));
        assert_eq!(p.lock_until(15, 0), Some(60 * min));
        assert_eq!(p.lock_until(20, 100), Some(100 + 120 * min));
        assert_eq!(p.lock_until(50, 0), Some(24 * 60 * min));
        assert_eq!(p.lock_until(5_000_000, 0), Some(24 * 60 * min));
        let zero = LockoutPolicy {
            max_failures: 0,
            ..p
        };
        assert_eq!(zero.lock_until(1, 0), Some(15 * min));
    }

    #[test]
    fn session_idle_and_absolute() {
        let p = SessionPolicy::default();
        let min = 60_000;
        assert!(p.is_live(0, 0, 14 * min));
        assert!(!p.is_live(0, 0, 15 * min));
        // Active all day, still cut at 8 hours.
        assert!(p.is_live(0, 8 * 60 * min - min, 8 * 60 * min - 1));
        assert!(!p.is_live(0, 8 * 60 * min - min, 8 * 60 * min));
        assert_eq!(p.expires_at(5), 5 + 8 * 60 * min);
    }
}
