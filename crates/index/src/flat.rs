//! A brute-force scan: the baseline that benchmarks measure the index against.

use safeguard_pdq::PdqHash;

use crate::hamming::Match;
use crate::kernel::{self, distance};
use crate::plan::MAX_RADIUS;
use crate::segment::Code;
use crate::Error;

/// Every hash in a flat array, compared with every query: exact for any radius, memory
/// 40 bytes per entry, and one full pass over the codes per query (memory-bandwidth bound).
#[derive(Debug, Default, Clone)]
pub struct FlatScan {
    codes: Vec<Code>,
    ids: Vec<u64>,
}

impl FlatScan {
    pub fn new() -> Self {
        FlatScan::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        FlatScan {
            codes: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
        }
    }

    pub fn push(&mut self, id: u64, hash: &PdqHash) {
        self.codes.push(hash.words());
        self.ids.push(id);
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.codes.capacity() * size_of::<Code>() + self.ids.capacity() * 8
    }

    /// Every entry within `radius`, ordered by distance then id (duplicates kept).
    pub fn search(&self, hash: &PdqHash, radius: u32) -> Result<Vec<Match>, Error> {
        if radius > MAX_RADIUS {
            return Err(Error::RadiusTooLarge {
                radius,
                max: MAX_RADIUS,
            });
        }
        let q = hash.words();
        let mut out = Vec::new();
        scan(&self.codes, &self.ids, &q, radius, &mut out);
        out.sort_unstable();
        Ok(out)
    }
}

kernel::popcnt_dispatch!(
    fn scan(codes: &[Code], ids: &[u64], q: &Code, radius: u32, out: &mut Vec<Match>) => scan_body
);

#[inline(always)]
fn scan_body(codes: &[Code], ids: &[u64], q: &Code, radius: u32, out: &mut Vec<Match>) {
    for (code, &id) in codes.iter().zip(ids) {
        let d = distance(code, q);
        if d <= radius {
            out.push(Match { distance: d, id });
        }
    }
}
