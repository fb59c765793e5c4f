//! Shared helpers: a seeded generator of codes and clusters, and the brute-force model.

use std::collections::BTreeSet;

use safeguard_index::{DihedralMatch, Match};
use safeguard_pdq::PdqHash;

/// SplitMix64: tiny, seedable, good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn hash(&mut self) -> PdqHash {
        PdqHash::from_words([self.next(), self.next(), self.next(), self.next()])
    }

    /// `h` with `k` distinct random bits flipped.
    pub fn flip(&mut self, h: &PdqHash, k: u32) -> PdqHash {
        let mut w = h.words();
        let mut flipped = [0u64; 4];
        let mut done = 0;
        while done < k.min(256) {
            let b = self.below(256) as usize;
            if flipped[b / 64] & (1 << (b % 64)) == 0 {
                flipped[b / 64] |= 1 << (b % 64);
                done += 1;
            }
        }
        for i in 0..4 {
            w[i] ^= flipped[i];
        }
        PdqHash::from_words(w)
    }
}

/// The reference: a set of `(id, hash)` pairs searched by comparing every entry.
#[derive(Debug, Default, Clone)]
pub struct Model(pub BTreeSet<(u64, PdqHash)>);

impl Model {
    pub fn search(&self, q: &PdqHash, radius: u32) -> Vec<Match> {
        let mut out: Vec<Match> = self
            .0
            .iter()
            .filter_map(|(id, h)| {
                let d = h.distance(q);
                (d <= radius).then_some(Match {
                    distance: d,
                    id: *id,
                })
            })
            .collect();
        out.sort_unstable();
        out
    }

    pub fn search_dihedral(&self, qs: &[PdqHash; 8], radius: u32) -> Vec<DihedralMatch> {
        let mut out = Vec::new();
        for (id, h) in &self.0 {
            let mut best: Option<(u32, u8)> = None;
            let mut mask = 0u8;
            for (v, q) in qs.iter().enumerate() {
                let d = h.distance(q);
                if d <= radius {
                    mask |= 1 << v;
                    if best.is_none_or(|(bd, _)| d < bd) {
                        best = Some((d, v as u8));
                    }
                }
            }
            if let Some((distance, variant)) = best {
                out.push(DihedralMatch {
                    distance,
                    id: *id,
                    variant,
                    variants: mask,
                });
            }
        }
        out.sort_unstable();
        out
    }
}

/// A bank in the shape real ones have: families of near-duplicates around a few centres, a
/// dense cluster, exact duplicates under other ids, and random background.
pub fn clustered_bank(rng: &mut Rng, n: usize) -> Vec<(u64, PdqHash)> {
    let centers: Vec<PdqHash> = (0..4).map(|_| rng.hash()).collect();
    let mut out: Vec<(u64, PdqHash)> = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let h = match rng.below(10) {
            0..=3 => {
                let c = centers[rng.below(4) as usize];
                let k = rng.below(16) as u32;
                rng.flip(&c, k)
            }
            4 => {
                // A dense cluster.
                let k = rng.below(3) as u32;
                rng.flip(&centers[0], k)
            }
            5 if !out.is_empty() => out[rng.below(out.len() as u64) as usize].1,
            _ => rng.hash(),
        };
        out.push((i, h));
    }
    out
}

/// A query near a bank entry (or, one time in four, random).
pub fn query_near(rng: &mut Rng, bank: &[(u64, PdqHash)], max_flips: u32) -> PdqHash {
    if bank.is_empty() || rng.below(4) == 0 {
        return rng.hash();
    }
    let h = bank[rng.below(bank.len() as u64) as usize].1;
    let k = rng.below(u64::from(max_flips) + 1) as u32;
    rng.flip(&h, k)
}
