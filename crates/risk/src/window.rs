//! Sliding-window counters in constant space: a ring of `N` buckets, each counting the
//! events of one bucket-width of time.
//!
//! The window over the last `N × width` seconds is approximated by the buckets that overlap
//! it: an event is counted for between `(N − 1) × width` and `N × width` seconds after it
//! happened. With six ten-minute buckets, "the last hour" means 50 to 60 minutes. That is the
//! price of constant space, and for counts that raise a risk score it errs by at most one
//! bucket, which the feature docs state.
//!
//! Events may arrive out of order: one older than the newest bucket but still inside the
//! window is counted in its own bucket; one older than the window is ignored. Counters
//! saturate at `u16::MAX` instead of wrapping.

/// `N` buckets of `width` seconds each; the width is passed in rather than stored, so that
/// a window costs 4 + 2·N bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window<const N: usize> {
    /// The index (`timestamp / width`) of the newest bucket written; `counts[head % N]`
    /// holds it, and `counts[(head − k) % N]` the bucket `k` before it, for `k < N`.
    head: u32,
    /// Events per bucket.
    counts: [u16; N],
}

impl<const N: usize> Default for Window<N> {
    fn default() -> Self {
        Window {
            head: 0,
            counts: [0; N],
        }
    }
}

fn bucket(ts: u64, width: u32) -> u32 {
    // `width` is at least 1 (checked where the widths are defined); timestamps are at most
    // year 9999, so `ts / width` fits a u32 for any width of 60 s or more, and saturates
    // (all in the last bucket) for smaller ones rather than wrapping.
    u32::try_from(ts / u64::from(width.max(1))).unwrap_or(u32::MAX)
}

impl<const N: usize> Window<N> {
    /// Counts one event at `ts`.
    pub fn add(&mut self, ts: u64, width: u32) {
        let b = bucket(ts, width);
        if b > self.head {
            let gap = (b - self.head) as usize;
            if gap >= N {
                self.counts = [0; N];
            } else {
                for k in 1..=gap {
                    self.counts[(self.head as usize + k) % N] = 0;
                }
            }
            self.head = b;
        } else if (self.head - b) as usize >= N {
            return; // older than the window
        }
        let slot = &mut self.counts[b as usize % N];
        *slot = slot.saturating_add(1);
    }

    /// Events in the window ending at `now` (the buckets from `now`'s back `N − 1`).
    pub fn count(&self, now: u64, width: u32) -> u32 {
        let now_b = bucket(now, width).max(self.head);
        let oldest = now_b.saturating_sub(N as u32 - 1);
        let mut sum = 0u32;
        let mut b = self.head;
        for _ in 0..N {
            if b < oldest {
                break;
            }
            sum += u32::from(self.counts[b as usize % N]);
            if b == 0 {
                break;
            }
            b -= 1;
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u32 = 600; // ten minutes

    #[test]
    fn counts_inside_the_window_and_forgets_after() {
        let mut w = Window::<6>::default();
        let t0 = 1_700_000_000;
        for i in 0..5 {
            w.add(t0 + i * 60, W);
        }
        assert_eq!(w.count(t0 + 300, W), 5);
        // Still counted 50 minutes on, gone once the bucket leaves the hour.
        assert_eq!(w.count(t0 + 3000, W), 5);
        assert_eq!(w.count(t0 + 3600 + 600, W), 0);
        // A write far ahead clears everything.
        w.add(t0 + 100_000, W);
        assert_eq!(w.count(t0 + 100_000, W), 1);
    }

    #[test]
    fn old_events_in_the_window_count_and_older_ones_do_not() {
        let mut w = Window::<6>::default();
        let t0 = 1_700_000_000;
        w.add(t0, W);
        w.add(t0 - 1200, W); // 20 minutes earlier: in the window
        w.add(t0 - 7200, W); // two hours earlier: ignored
        assert_eq!(w.count(t0, W), 2);
    }

    #[test]
    fn matches_a_brute_force_count_on_a_sliding_stream() {
        // Against a list of every timestamp: the window counts exactly the events whose
        // bucket is one of the last N buckets ending at `now`.
        let mut w = Window::<24>::default();
        let width = 3600;
        let mut all = Vec::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut t = 1_700_000_000u64;
        for _ in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t += x % 400;
            // Some out of order, by up to two hours.
            let ts = t.saturating_sub(if x % 5 == 0 { x % 7200 } else { 0 });
            w.add(ts, width);
            all.push(ts);
            let now_b = (t / 3600).max(all.iter().map(|a| a / 3600).max().unwrap_or(0));
            let expect = all
                .iter()
                .filter(|a| {
                    let b = *a / 3600;
                    b + 24 > now_b && b <= now_b
                })
                .count() as u32;
            assert_eq!(w.count(t, width), expect);
        }
    }

    #[test]
    fn saturates_rather_than_wraps() {
        let mut w = Window::<2>::default();
        for _ in 0..70_000 {
            w.add(10, 60);
        }
        assert_eq!(w.count(10, 60), u32::from(u16::MAX));
    }

    #[test]
    fn is_constant_space() {
        assert_eq!(std::mem::size_of::<Window<6>>(), 16);
        assert_eq!(std::mem::size_of::<Window<24>>(), 52);
    }
}
