//! [`VpdqIndex`]: the frames of many videos in one PDQ radius index, aggregated per video.
//!
//! Each distinct frame hash is indexed once in a [`PdqIndex`] (the exact multi-index-hashing
//! index that serves PDQ lookups), with the list of videos holding it. A query searches each of
//! its usable frames within the frame distance and counts, per indexed video, which query
//! hashes and which of the video's hashes took part in some matching pair: exactly the two
//! counts of python-threatexchange's `VPDQIndex.query`, so the percentages equal pairwise
//! [`compare`](crate::compare()) (a property test checks this).
//!
//! A video is stored as its distinct hashes with the best quality each had. That is all
//! matching needs whatever the quality floor of a lookup: python-threatexchange keeps a hash
//! when any of its frames reaches the floor, that is when its best quality does. So the quality
//! floor and the distance can change per lookup without rebuilding anything.

use std::collections::{HashMap, HashSet};

use safeguard_index::PdqIndex;
use safeguard_pdq::PdqHash;

use crate::compare::{percent, MatchPercent, VpdqMatchConfig};
use crate::{Error, VpdqFrame};

/// One indexed video that shares at least one matching frame with the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoMatch {
    /// The caller's id of the video.
    pub video_id: u64,
    /// The two percentages.
    pub percent: MatchPercent,
    /// Whether they reach the thresholds of the lookup.
    pub is_match: bool,
}

#[derive(Debug)]
struct Slot {
    /// Videos holding this hash, with the best quality the hash had in each.
    videos: Vec<(u64, u8)>,
}

/// An index over the frames of many videos. Not internally synchronised: wrap it in a lock to
/// share it.
#[derive(Debug, Default)]
pub struct VpdqIndex {
    /// Distinct frame hashes, by slot id.
    frames: PdqIndex,
    slots: HashMap<u64, Slot>,
    slot_of: HashMap<PdqHash, u64>,
    /// Each video's distinct hashes with their best quality.
    videos: HashMap<u64, Vec<(PdqHash, u8)>>,
    next_slot: u64,
}

/// A video's distinct hashes, each with the best quality it had.
pub fn reduce(frames: &[VpdqFrame]) -> Vec<(PdqHash, u8)> {
    let mut at: HashMap<PdqHash, usize> = HashMap::with_capacity(frames.len());
    let mut out: Vec<(PdqHash, u8)> = Vec::new();
    for f in frames {
        match at.get(&f.hash) {
            Some(&i) => out[i].1 = out[i].1.max(f.quality),
            None => {
                at.insert(f.hash, out.len());
                out.push((f.hash, f.quality));
            }
        }
    }
    out
}

impl VpdqIndex {
    /// An empty index.
    pub fn new() -> VpdqIndex {
        VpdqIndex::default()
    }

    /// Videos indexed.
    pub fn len(&self) -> usize {
        self.videos.len()
    }

    /// Whether no video is indexed.
    pub fn is_empty(&self) -> bool {
        self.videos.is_empty()
    }

    /// Distinct frame hashes indexed.
    pub fn frame_count(&self) -> usize {
        self.slots.len()
    }

    /// Approximate bytes held.
    pub fn memory_bytes(&self) -> usize {
        let per_video: usize = self.videos.values().map(|v| v.capacity() * 33 + 48).sum();
        let per_slot: usize = self
            .slots
            .values()
            .map(|s| 32 + 8 + s.videos.capacity() * 16 + 72)
            .sum();
        self.frames.stats().bytes + per_video + per_slot + self.slot_of.len() * 48
    }

    /// An index over many videos at once (later ids replace earlier ones), given as their
    /// distinct hashes with the best quality each (as [`reduce`] or [`VpdqIndex::videos`] give
    /// them). Much faster than adding them one by one: the PDQ index is built in bulk.
    pub fn build(
        videos: impl IntoIterator<Item = (u64, Vec<(PdqHash, u8)>)>,
    ) -> Result<VpdqIndex, Error> {
        let mut index = VpdqIndex::default();
        for (id, hashes) in videos {
            if index.videos.contains_key(&id) {
                // A repeated id: drop the earlier video's slot entries.
                index.unlink(id);
            }
            for &(hash, quality) in &hashes {
                let next = index.next_slot;
                let slot = *index.slot_of.entry(hash).or_insert(next);
                if slot == next {
                    index.next_slot += 1;
                }
                index
                    .slots
                    .entry(slot)
                    .or_insert_with(|| Slot { videos: Vec::new() })
                    .videos
                    .push((id, quality));
            }
            index.videos.insert(id, hashes);
        }
        // Slots no video holds any more (from repeated ids) are not indexed.
        index.slots.retain(|_, s| !s.videos.is_empty());
        index.slot_of.retain(|_, s| index.slots.contains_key(s));
        let mut builder = PdqIndex::builder();
        builder.reserve(index.slot_of.len());
        for (hash, &slot) in &index.slot_of {
            builder.push(slot, hash);
        }
        index.frames = builder.build()?;
        Ok(index)
    }

    /// Removes a video from the slot lists only (for [`VpdqIndex::build`]).
    fn unlink(&mut self, video_id: u64) {
        if let Some(hashes) = self.videos.remove(&video_id) {
            for (hash, _) in hashes {
                if let Some(slot) = self.slot_of.get(&hash).and_then(|s| self.slots.get_mut(s)) {
                    slot.videos.retain(|(v, _)| *v != video_id);
                }
            }
        }
    }

    /// Adds a video (replacing one with the same id).
    pub fn add(&mut self, video_id: u64, frames: &[VpdqFrame]) {
        self.add_reduced(video_id, reduce(frames));
    }

    /// Adds a video given as its distinct hashes with their best quality (as [`reduce`] or
    /// [`VpdqIndex::videos`] give them), replacing one with the same id.
    pub fn add_reduced(&mut self, video_id: u64, hashes: Vec<(PdqHash, u8)>) {
        self.remove(video_id);
        for &(hash, quality) in &hashes {
            let slot = match self.slot_of.get(&hash) {
                Some(&s) => s,
                None => {
                    let s = self.next_slot;
                    self.next_slot += 1;
                    self.frames.add(s, &hash);
                    self.slot_of.insert(hash, s);
                    self.slots.insert(s, Slot { videos: Vec::new() });
                    s
                }
            };
            // The slot was just found or inserted above.
            self.slots
                .get_mut(&slot)
                .expect("slot exists")
                .videos
                .push((video_id, quality));
        }
        self.videos.insert(video_id, hashes);
    }

    /// Removes a video; false if it was not indexed.
    pub fn remove(&mut self, video_id: u64) -> bool {
        let Some(hashes) = self.videos.remove(&video_id) else {
            return false;
        };
        for (hash, _) in hashes {
            let Some(&s) = self.slot_of.get(&hash) else {
                continue;
            };
            let empty = match self.slots.get_mut(&s) {
                Some(slot) => {
                    slot.videos.retain(|(v, _)| *v != video_id);
                    slot.videos.is_empty()
                }
                None => false,
            };
            if empty {
                self.slots.remove(&s);
                self.slot_of.remove(&hash);
                self.frames.remove(s, &hash);
            }
        }
        true
    }

    /// Every indexed video with its distinct hashes and their best quality.
    pub fn videos(&self) -> impl Iterator<Item = (u64, &[(PdqHash, u8)])> {
        self.videos.iter().map(|(id, h)| (*id, h.as_slice()))
    }

    /// Every indexed video sharing at least one matching frame pair with `query`, with its two
    /// percentages and whether they pass `config`'s thresholds, by video id. Videos with no
    /// matching frame (0 % on both sides) are left out, as python-threatexchange's index does.
    pub fn query(
        &self,
        query: &[VpdqFrame],
        config: &VpdqMatchConfig,
    ) -> Result<Vec<VideoMatch>, Error> {
        config.validate()?;
        let q = crate::compare::prepare(query, config.frame_quality);
        struct Acc {
            query_matched: usize,
            last_query: usize,
            slots: HashSet<u64>,
        }
        let mut per_video: HashMap<u64, Acc> = HashMap::new();
        for (qi, h) in q.iter().enumerate() {
            for m in self.frames.search(h, config.frame_distance)? {
                let Some(slot) = self.slots.get(&m.id) else {
                    continue;
                };
                for &(video, quality) in &slot.videos {
                    if quality < config.frame_quality {
                        continue;
                    }
                    let acc = per_video.entry(video).or_insert(Acc {
                        query_matched: 0,
                        last_query: usize::MAX,
                        slots: HashSet::new(),
                    });
                    if acc.last_query != qi {
                        acc.last_query = qi;
                        acc.query_matched += 1;
                    }
                    acc.slots.insert(m.id);
                }
            }
        }
        let mut out: Vec<VideoMatch> = per_video
            .into_iter()
            .map(|(video, acc)| {
                let usable = self.videos.get(&video).map_or(0, |hs| {
                    hs.iter()
                        .filter(|(_, q)| *q >= config.frame_quality)
                        .count()
                });
                let percent = MatchPercent {
                    query_match_percent: percent(acc.query_matched, q.len()),
                    compared_match_percent: percent(acc.slots.len(), usable),
                };
                VideoMatch {
                    video_id: video,
                    percent,
                    is_match: percent.is_match(config),
                }
            })
            .collect();
        out.sort_by_key(|m| m.video_id);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::compare;
    use proptest::prelude::*;

    fn frame(n: u64, hash: PdqHash, quality: u8) -> VpdqFrame {
        VpdqFrame {
            frame_number: n,
            quality,
            hash,
            timestamp: n as f64,
        }
    }

    /// Hashes near a few bases, so pairs at distances around the threshold are common.
    fn arb_hash() -> impl Strategy<Value = PdqHash> {
        (0u8..4, proptest::collection::vec(0usize..256, 0..40)).prop_map(|(base, flips)| {
            let mut h = PdqHash([base.wrapping_mul(0x55); 32]);
            for k in flips {
                h.0[k / 8] ^= 1 << (k % 8);
            }
            h
        })
    }

    fn arb_video() -> impl Strategy<Value = Vec<VpdqFrame>> {
        proptest::collection::vec((arb_hash(), 0u8..=100), 0..12).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (h, q))| frame(i as u64, h, q))
                .collect()
        })
    }

    fn arb_config() -> impl Strategy<Value = VpdqMatchConfig> {
        (0u32..=64, 0u8..=100, 0.0f64..=100.0, 0.0f64..=100.0).prop_map(|(d, q, qp, cp)| {
            VpdqMatchConfig {
                frame_distance: d,
                frame_quality: q,
                query_match_percent: qp,
                compared_match_percent: cp,
            }
        })
    }

    fn brute(
        videos: &HashMap<u64, Vec<VpdqFrame>>,
        query: &[VpdqFrame],
        cfg: &VpdqMatchConfig,
    ) -> Vec<VideoMatch> {
        let mut out: Vec<VideoMatch> = videos
            .iter()
            .map(|(id, v)| (id, compare(query, v, cfg)))
            .filter(|(_, p)| p.query_match_percent > 0.0)
            .map(|(id, p)| VideoMatch {
                video_id: *id,
                percent: p,
                is_match: p.is_match(cfg),
            })
            .collect();
        out.sort_by_key(|m| m.video_id);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn index_agrees_with_pairwise_comparison(
            videos in proptest::collection::vec(arb_video(), 0..10),
            removed in proptest::collection::vec(any::<bool>(), 10),
            queries in proptest::collection::vec((arb_video(), arb_config()), 1..4),
        ) {
            let mut index = VpdqIndex::new();
            let mut model = HashMap::new();
            for (i, v) in videos.iter().enumerate() {
                index.add(i as u64, v);
                model.insert(i as u64, v.clone());
            }
            for (i, r) in removed.iter().enumerate().take(videos.len()) {
                if *r {
                    prop_assert!(index.remove(i as u64));
                    model.remove(&(i as u64));
                }
            }
            prop_assert_eq!(index.len(), model.len());
            // The same videos built in bulk.
            let built = VpdqIndex::build(model.iter().map(|(id, v)| (*id, reduce(v)))).unwrap();
            prop_assert_eq!(built.len(), model.len());
            prop_assert_eq!(built.frame_count(), index.frame_count());
            for (q, cfg) in &queries {
                prop_assert_eq!(index.query(q, cfg).unwrap(), brute(&model, q, cfg));
                prop_assert_eq!(built.query(q, cfg).unwrap(), brute(&model, q, cfg));
                // An indexed video queried against itself.
                if let Some((id, v)) = model.iter().next() {
                    let got = index.query(v, cfg).unwrap();
                    prop_assert_eq!(got, brute(&model, v, cfg));
                    let _ = id;
                }
            }
        }
    }

    #[test]
    fn shared_frames_are_indexed_once_and_removal_cleans_up() {
        let a = PdqHash([1; 32]);
        let b = PdqHash([2; 32]);
        let mut index = VpdqIndex::new();
        index.add(1, &[frame(0, a, 100), frame(1, b, 100)]);
        index.add(2, &[frame(0, a, 100)]);
        assert_eq!((index.len(), index.frame_count()), (2, 2));
        assert!(index.remove(1));
        assert!(!index.remove(1));
        assert_eq!((index.len(), index.frame_count()), (1, 1));
        let got = index
            .query(&[frame(0, b, 100)], &VpdqMatchConfig::default())
            .unwrap();
        assert!(got.is_empty());
        assert!(index.remove(2));
        assert_eq!(index.frame_count(), 0);
    }

    #[test]
    fn quality_floor_applies_per_lookup() {
        let a = PdqHash([1; 32]);
        let mut index = VpdqIndex::new();
        // A low-quality copy and a high-quality copy of the same hash: the best quality counts.
        index.add(7, &[frame(0, a, 20), frame(1, a, 60)]);
        let q = [frame(0, a, 100)];
        let d = VpdqMatchConfig::default();
        assert_eq!(index.query(&q, &d).unwrap().len(), 1);
        let strict = VpdqMatchConfig {
            frame_quality: 61,
            ..d
        };
        assert!(index.query(&q, &strict).unwrap().is_empty());
    }

    #[test]
    fn re_adding_a_video_replaces_it() {
        let a = PdqHash([1; 32]);
        let b = PdqHash([0xfe; 32]);
        let mut index = VpdqIndex::new();
        index.add(1, &[frame(0, a, 100)]);
        index.add(1, &[frame(0, b, 100)]);
        assert_eq!((index.len(), index.frame_count()), (1, 1));
        let d = VpdqMatchConfig::default();
        assert!(index.query(&[frame(0, a, 100)], &d).unwrap().is_empty());
        assert_eq!(index.query(&[frame(0, b, 100)], &d).unwrap().len(), 1);
    }

    #[test]
    fn bulk_build_with_a_repeated_id_keeps_the_last_video() {
        let a = PdqHash([1; 32]);
        let b = PdqHash([0xfe; 32]);
        let index =
            VpdqIndex::build([(1, vec![(a, 100)]), (2, vec![(a, 90)]), (1, vec![(b, 100)])])
                .unwrap();
        assert_eq!((index.len(), index.frame_count()), (2, 2));
        let d = VpdqMatchConfig::default();
        let ids = |q: PdqHash| -> Vec<u64> {
            index
                .query(&[frame(0, q, 100)], &d)
                .unwrap()
                .iter()
                .map(|m| m.video_id)
                .collect()
        };
        assert_eq!(ids(a), vec![2]);
        assert_eq!(ids(b), vec![1]);
        // And it keeps working incrementally.
        let mut index = index;
        assert!(index.remove(2));
        assert_eq!(index.frame_count(), 1);
    }

    #[test]
    fn invalid_config_is_an_error() {
        let index = VpdqIndex::new();
        let bad = VpdqMatchConfig {
            frame_distance: 65,
            ..VpdqMatchConfig::default()
        };
        assert!(matches!(
            index.query(&[], &bad),
            Err(Error::InvalidConfig(_))
        ));
    }
}
