//! Video-to-video matching, as python-threatexchange does it (`vpdq_util.prepare_vpdq_feature`,
//! `vpdq_index.VPDQIndex.query`).
//!
//! Both videos are reduced to a *bag* of frame hashes: frames with quality below
//! [`VpdqMatchConfig::frame_quality`] are dropped, then equal hashes are kept once. Frame order
//! and timestamps play no part. Then
//! * `query_match_percent` = 100 × (query hashes within [`VpdqMatchConfig::frame_distance`]
//!   (inclusive) of some compared hash) / (query hashes), and
//! * `compared_match_percent` = the same with the roles swapped.
//!
//! The videos match when both percentages reach their thresholds. python-threatexchange and HMA
//! require query ≥ 80 % and compared ≥ 0 % (the defaults here); the upstream vPDQ README's
//! example puts the 80 % on the *compared* side instead. Both are configurable, by name.

use std::collections::HashSet;

use safeguard_pdq::PdqHash;

use crate::{Error, VpdqFrame};

/// Thresholds of vPDQ matching. The defaults are python-threatexchange's
/// (`VPDQ_DISTANCE_THRESHOLD`, `VPDQ_QUALITY_THRESHOLD`, `VPDQ_QUERY_MATCH_THRESHOLD_PERCENT`,
/// `VPDQ_INDEX_MATCH_THRESHOLD_PERCENT`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VpdqMatchConfig {
    /// Two frames match when their PDQ hashes are at most this far apart (inclusive). Default 31;
    /// at most [`MAX_FRAME_DISTANCE`].
    pub frame_distance: u32,
    /// Frames with a PDQ quality below this are ignored on both sides. Default 50.
    pub frame_quality: u8,
    /// Least share (percent) of the query video's frames that must match. Default 80.
    pub query_match_percent: f64,
    /// Least share (percent) of the compared (banked) video's frames that must match.
    /// Default 0.
    pub compared_match_percent: f64,
}

/// Default frame distance (inclusive): python-threatexchange's `VPDQ_DISTANCE_THRESHOLD`.
pub const DEFAULT_FRAME_DISTANCE: u32 = 31;
/// Default frame quality floor: python-threatexchange's `VPDQ_QUALITY_THRESHOLD`.
pub const DEFAULT_FRAME_QUALITY: u8 = 50;
/// Default query-side threshold: python-threatexchange's `VPDQ_QUERY_MATCH_THRESHOLD_PERCENT`.
pub const DEFAULT_QUERY_MATCH_PERCENT: f64 = 80.0;
/// Default compared-side threshold: python-threatexchange's `VPDQ_INDEX_MATCH_THRESHOLD_PERCENT`.
pub const DEFAULT_COMPARED_MATCH_PERCENT: f64 = 0.0;
/// Largest frame distance accepted: the PDQ index is exact up to this radius, and random
/// hashes are about 128 bits apart, so anything larger would match unrelated frames.
pub const MAX_FRAME_DISTANCE: u32 = safeguard_index::MAX_RADIUS;

impl Default for VpdqMatchConfig {
    fn default() -> Self {
        VpdqMatchConfig {
            frame_distance: DEFAULT_FRAME_DISTANCE,
            frame_quality: DEFAULT_FRAME_QUALITY,
            query_match_percent: DEFAULT_QUERY_MATCH_PERCENT,
            compared_match_percent: DEFAULT_COMPARED_MATCH_PERCENT,
        }
    }
}

impl VpdqMatchConfig {
    /// Checks every threshold is in range.
    pub fn validate(&self) -> Result<(), Error> {
        if self.frame_distance > MAX_FRAME_DISTANCE {
            return Err(Error::InvalidConfig(format!(
                "frame_distance must be at most {MAX_FRAME_DISTANCE}, got {}",
                self.frame_distance
            )));
        }
        if self.frame_quality > 100 {
            return Err(Error::InvalidConfig(format!(
                "frame_quality must be at most 100, got {}",
                self.frame_quality
            )));
        }
        for (name, p) in [
            ("query_match_percent", self.query_match_percent),
            ("compared_match_percent", self.compared_match_percent),
        ] {
            if !(p.is_finite() && (0.0..=100.0).contains(&p)) {
                return Err(Error::InvalidConfig(format!(
                    "{name} must be between 0 and 100, got {p}"
                )));
            }
        }
        Ok(())
    }
}

/// The two percentages of one video pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchPercent {
    /// Share of the query's usable unique frame hashes that match some compared frame.
    pub query_match_percent: f64,
    /// Share of the compared video's usable unique frame hashes that match some query frame.
    pub compared_match_percent: f64,
}

impl MatchPercent {
    /// Whether both percentages reach their thresholds.
    pub fn is_match(&self, config: &VpdqMatchConfig) -> bool {
        self.query_match_percent >= config.query_match_percent
            && self.compared_match_percent >= config.compared_match_percent
    }

    /// python-threatexchange's `VPDQSimilarityInfo.pretty_str`, `{q:.0f}%[{c:.0f}%]`, which HMA
    /// returns as a vPDQ match's `distance`.
    pub fn pretty(&self) -> String {
        // Rust's `{:.0}` rounds half to even on the exact value, as Python's `%.0f` does.
        format!(
            "{:.0}%[{:.0}%]",
            self.query_match_percent, self.compared_match_percent
        )
    }
}

/// The usable frame hashes of a video: quality at least `frame_quality`, each hash once, in
/// first-seen order (python-threatexchange's `prepare_vpdq_feature`: filter, then de-duplicate).
pub fn prepare(frames: &[VpdqFrame], frame_quality: u8) -> Vec<PdqHash> {
    let mut seen = HashSet::with_capacity(frames.len());
    frames
        .iter()
        .filter(|f| f.quality >= frame_quality)
        .filter(|f| seen.insert(f.hash))
        .map(|f| f.hash)
        .collect()
}

/// `matched * 100 / total` in f64, the same operations as Python's `len(a) * 100 / len(b)`, so
/// the result is bit-identical. An empty side is 0 % (python-threatexchange's index never
/// reports such a pair).
pub(crate) fn percent(matched: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        (matched * 100) as f64 / total as f64
    }
}

fn count_matched(a: &[PdqHash], b: &[PdqHash], distance: u32) -> usize {
    a.iter()
        .filter(|x| b.iter().any(|y| x.distance(y) <= distance))
        .count()
}

/// Compares two videos by brute force (every usable query frame against every usable compared
/// frame). [`crate::VpdqIndex`] gives the same percentages for many compared videos at once.
pub fn compare(
    query: &[VpdqFrame],
    compared: &[VpdqFrame],
    config: &VpdqMatchConfig,
) -> MatchPercent {
    let q = prepare(query, config.frame_quality);
    let c = prepare(compared, config.frame_quality);
    MatchPercent {
        query_match_percent: percent(count_matched(&q, &c, config.frame_distance), q.len()),
        compared_match_percent: percent(count_matched(&c, &q, config.frame_distance), c.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u64, hash: PdqHash, quality: u8) -> VpdqFrame {
        VpdqFrame {
            frame_number: n,
            quality,
            hash,
            timestamp: n as f64,
        }
    }

    fn flip(h: PdqHash, bits: usize) -> PdqHash {
        let mut out = h;
        for k in 0..bits {
            out.0[k / 8] ^= 1 << (k % 8);
        }
        out
    }

    #[test]
    fn defaults_are_python_threatexchange_s() {
        let c = VpdqMatchConfig::default();
        assert_eq!(
            (
                c.frame_distance,
                c.frame_quality,
                c.query_match_percent,
                c.compared_match_percent
            ),
            (31, 50, 80.0, 0.0)
        );
        c.validate().unwrap();
    }

    #[test]
    fn invalid_settings_are_rejected() {
        let d = VpdqMatchConfig::default();
        for bad in [
            VpdqMatchConfig {
                frame_distance: 65,
                ..d
            },
            VpdqMatchConfig {
                frame_quality: 101,
                ..d
            },
            VpdqMatchConfig {
                query_match_percent: 100.5,
                ..d
            },
            VpdqMatchConfig {
                compared_match_percent: -1.0,
                ..d
            },
            VpdqMatchConfig {
                compared_match_percent: f64::NAN,
                ..d
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn distance_31_matches_and_32_does_not() {
        let a = PdqHash([0x5a; 32]);
        let cfg = VpdqMatchConfig::default();
        let m = compare(&[frame(0, a, 100)], &[frame(0, flip(a, 31), 100)], &cfg);
        assert_eq!(m.query_match_percent, 100.0);
        let m = compare(&[frame(0, a, 100)], &[frame(0, flip(a, 32), 100)], &cfg);
        assert_eq!(m.query_match_percent, 0.0);
    }

    #[test]
    fn quality_filter_then_dedupe() {
        let a = PdqHash([0x11; 32]);
        let b = PdqHash([0xee; 32]);
        // The same hash first at low quality, then at high: filtering first keeps it.
        let v = [
            frame(0, a, 10),
            frame(1, a, 90),
            frame(2, b, 49),
            frame(3, a, 100),
        ];
        assert_eq!(prepare(&v, 50), vec![a]);
        assert_eq!(prepare(&v, 0), vec![a, b]);
    }

    #[test]
    fn percentages_count_unique_hashes_on_each_side() {
        let cfg = VpdqMatchConfig::default();
        let a = PdqHash([0x00; 32]);
        let b = PdqHash([0xff; 32]);
        let c = PdqHash([0x0f; 32]);
        let d = PdqHash([0xf0; 32]);
        // Query {a, b} against compared {a, c, d}: 1 of 2 query hashes, 1 of 3 compared.
        let q = [frame(0, a, 100), frame(1, a, 100), frame(2, b, 100)];
        let c = [frame(0, a, 100), frame(1, c, 100), frame(2, d, 100)];
        let m = compare(&q, &c, &cfg);
        assert_eq!(m.query_match_percent, 50.0);
        assert_eq!(m.compared_match_percent, 100.0 / 3.0);
        assert!(!m.is_match(&cfg));
        let readme = VpdqMatchConfig {
            query_match_percent: 0.0,
            compared_match_percent: 30.0,
            ..cfg
        };
        assert!(m.is_match(&readme));
        assert_eq!(m.pretty(), "50%[33%]");
    }

    #[test]
    fn empty_sides_are_zero_percent() {
        let cfg = VpdqMatchConfig::default();
        let a = PdqHash([0x00; 32]);
        let m = compare(&[], &[frame(0, a, 100)], &cfg);
        assert_eq!(
            (m.query_match_percent, m.compared_match_percent),
            (0.0, 0.0)
        );
        let m = compare(&[frame(0, a, 10)], &[frame(0, a, 100)], &cfg);
        assert_eq!(
            (m.query_match_percent, m.compared_match_percent),
            (0.0, 0.0)
        );
        assert!(!m.is_match(&cfg));
    }

    #[test]
    fn pretty_rounds_half_to_even_like_python() {
        let m = MatchPercent {
            query_match_percent: 92.5,
            compared_match_percent: 93.5,
        };
        assert_eq!(m.pretty(), "92%[94%]");
    }
}
