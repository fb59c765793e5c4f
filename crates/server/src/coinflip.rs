//! HMA's coin flip, bit for bit: `random.Random(seed).random()` of CPython, where `seed` is the
//! raw `seed` query string. A client that passes a seed to HMA gets the same bank sampling
//! here. CPython seeds a string with version-2 seeding: the integer whose big-endian bytes are
//! `utf8(seed) ‖ sha512(utf8(seed))`, fed to MT19937's `init_by_array` as 32-bit words, least
//! significant first.

use sha2::{Digest, Sha512};

const N: usize = 624;
const M: usize = 397;

struct Mt {
    s: [u32; N],
    i: usize,
}

impl Mt {
    fn init_genrand(seed: u32) -> Mt {
        let mut s = [0u32; N];
        s[0] = seed;
        for i in 1..N {
            s[i] = 1_812_433_253u32
                .wrapping_mul(s[i - 1] ^ (s[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Mt { s, i: N }
    }

    fn init_by_array(key: &[u32]) -> Mt {
        let mut mt = Mt::init_genrand(19_650_218);
        let s = &mut mt.s;
        let (mut i, mut j) = (1usize, 0usize);
        let len = key.len().max(1);
        for _ in 0..N.max(len) {
            s[i] = (s[i] ^ (s[i - 1] ^ (s[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key.get(j).copied().unwrap_or(0))
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                s[0] = s[N - 1];
                i = 1;
            }
            if j >= len {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            s[i] = (s[i] ^ (s[i - 1] ^ (s[i - 1] >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                s[0] = s[N - 1];
                i = 1;
            }
        }
        s[0] = 0x8000_0000;
        mt
    }

    fn next_u32(&mut self) -> u32 {
        if self.i >= N {
            for k in 0..N {
                let y = (self.s[k] & 0x8000_0000) | (self.s[(k + 1) % N] & 0x7fff_ffff);
                let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
                self.s[k] = self.s[(k + M) % N] ^ (y >> 1) ^ mag;
            }
            self.i = 0;
        }
        let mut y = self.s[self.i];
        self.i += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    fn random(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }
}

/// `random.Random(seed).random()` for a string seed.
pub fn seeded(seed: &str) -> f64 {
    let mut bytes = seed.as_bytes().to_vec();
    bytes.extend_from_slice(&Sha512::digest(seed.as_bytes()));
    // Big-endian integer -> 32-bit words, least significant first (leading zero bytes of
    // the integer do not produce words, as CPython's abs(int) conversion drops them).
    let first_nonzero = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let be = &bytes[first_nonzero..];
    let mut words = Vec::with_capacity(be.len() / 4 + 1);
    let mut end = be.len();
    while end > 0 {
        let start = end.saturating_sub(4);
        let mut w = 0u32;
        for &b in &be[start..end] {
            w = (w << 8) | b as u32;
        }
        words.push(w);
        end = start;
    }
    if words.is_empty() {
        words.push(0);
    }
    Mt::init_by_array(&words).random()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_cpython() {
        // Values printed by CPython 3.11: random.Random(s).random().
        assert_eq!(seeded("abc"), 0.7720246314157545);
        assert_eq!(seeded(""), 0.9602256525641875);
        assert_eq!(seeded("42"), 0.473659421919327);
        assert_eq!(seeded("seed-ü"), 0.36966276835591394);
    }
}
