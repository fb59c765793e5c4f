//! Benchmark: one video looked up against a bank of videos, through [`VpdqIndex`] and by
//! pairwise [`compare`] with every banked video (python-threatexchange's brute-force matcher),
//! in the same run, with the results checked equal.
//!
//! ```text
//! cargo run --release -p safeguard-vpdq --example bench_index -- [videos] [frames] [queries]
//! ```
//!
//! Defaults: 5,000 banked videos of 30 distinct frames each (150,000 frame hashes; 30 frames is
//! 30 seconds at one hash a second) and 20 query videos. Frames are random hashes; every query
//! is a noisy copy (8 bits flipped per frame) of a banked video, so each lookup has one true
//! match at 100 %.

use std::time::Instant;

use safeguard_pdq::PdqHash;
use safeguard_vpdq::{compare, VideoMatch, VpdqFrame, VpdqIndex, VpdqMatchConfig};

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .map(|a| a.parse().expect("a number"))
        .unwrap_or(default)
}

/// xorshift64*: reproducible random hashes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn hash(&mut self) -> PdqHash {
        PdqHash::from_words([self.next(), self.next(), self.next(), self.next()])
    }
}

fn video(hashes: impl Iterator<Item = PdqHash>) -> Vec<VpdqFrame> {
    hashes
        .enumerate()
        .map(|(i, hash)| VpdqFrame {
            frame_number: i as u64 * 30,
            quality: 100,
            hash,
            timestamp: i as f64,
        })
        .collect()
}

fn main() {
    let (n_videos, n_frames, n_queries) = (arg(1, 5_000), arg(2, 30), arg(3, 20));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let bank: Vec<Vec<VpdqFrame>> = (0..n_videos)
        .map(|_| video((0..n_frames).map(|_| rng.hash())))
        .collect();
    let queries: Vec<Vec<VpdqFrame>> = (0..n_queries)
        .map(|q| {
            let src = &bank[(q * 7919) % n_videos];
            video(src.iter().map(|f| {
                let mut h = f.hash;
                for _ in 0..8 {
                    let k = (rng.next() % 256) as usize;
                    h.0[k / 8] ^= 1 << (k % 8);
                }
                h
            }))
        })
        .collect();
    let cfg = VpdqMatchConfig::default();

    let t = Instant::now();
    let index = VpdqIndex::build(
        bank.iter()
            .enumerate()
            .map(|(i, v)| (i as u64, safeguard_vpdq::reduce(v))),
    )
    .expect("bulk build");
    let build = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut incremental = VpdqIndex::new();
    for (i, v) in bank.iter().enumerate() {
        incremental.add(i as u64, v);
    }
    let added = t.elapsed().as_secs_f64();
    assert_eq!(incremental.frame_count(), index.frame_count());

    let t = Instant::now();
    let by_index: Vec<Vec<VideoMatch>> = queries
        .iter()
        .map(|q| index.query(q, &cfg).expect("valid config"))
        .collect();
    let index_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let by_brute: Vec<Vec<VideoMatch>> = queries
        .iter()
        .map(|q| {
            bank.iter()
                .enumerate()
                .map(|(i, v)| (i, compare(q, v, &cfg)))
                .filter(|(_, p)| p.query_match_percent > 0.0)
                .map(|(i, p)| VideoMatch {
                    video_id: i as u64,
                    percent: p,
                    is_match: p.is_match(&cfg),
                })
                .collect()
        })
        .collect();
    let brute_s = t.elapsed().as_secs_f64();

    assert_eq!(by_index, by_brute, "the index and brute force disagree");
    let matched: usize = by_index
        .iter()
        .map(|r| r.iter().filter(|m| m.is_match).count())
        .sum();
    assert_eq!(matched, n_queries, "each query has exactly one true match");

    println!(
        "bank: {n_videos} videos x {n_frames} frames ({} distinct frame hashes), {n_queries} queries",
        index.frame_count()
    );
    println!(
        "index build: {build:.3} s in bulk, {added:.3} s adding videos one by one ({:.1}x)",
        added / build
    );
    println!(
        "index:       {:.3} ms per lookup",
        index_s * 1e3 / n_queries as f64
    );
    println!(
        "brute force: {:.3} ms per lookup",
        brute_s * 1e3 / n_queries as f64
    );
    println!(
        "ratio brute/index: {:.1}x (results identical, {matched} matches)",
        brute_s / index_s
    );
}
