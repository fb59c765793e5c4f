//! The 256-bit PDQ hash value: bit layout, hex form and Hamming distance.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A 256-bit PDQ hash.
///
/// Stored as the 256-bit big-endian integer that the reference prints in hex: byte 0 holds
/// bits 255..248, byte 31 holds bits 7..0. Bit `k` is DCT coefficient `B[k / 16][k % 16]`.
/// This is the same byte order as the decoded hex string, so the bytes can be stored,
/// indexed and compared without conversion.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PdqHash(pub [u8; 32]);

/// Number of bits in a PDQ hash.
pub const PDQ_BITS: u32 = 256;

impl PdqHash {
    /// The all-zero hash, which the reference returns for images under 5×5 pixels.
    pub const ZERO: PdqHash = PdqHash([0; 32]);

    /// Builds a hash from its 32 big-endian bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        PdqHash(bytes)
    }

    /// The 32 big-endian bytes (the decoded hex string).
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The hash as four 64-bit words, most significant first, for fast popcount.
    #[inline]
    pub fn words(&self) -> [u64; 4] {
        let mut w = [0u64; 4];
        for (i, chunk) in self.0.chunks_exact(8).enumerate() {
            // chunks_exact(8) yields 8-byte slices, so the conversion cannot fail.
            w[i] = u64::from_be_bytes(chunk.try_into().expect("8-byte chunk"));
        }
        w
    }

    /// Builds a hash from four 64-bit words, most significant first.
    pub fn from_words(w: [u64; 4]) -> Self {
        let mut b = [0u8; 32];
        for (i, word) in w.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&word.to_be_bytes());
        }
        PdqHash(b)
    }

    /// Whether bit `k` (0..256) is set.
    #[inline]
    pub fn bit(&self, k: usize) -> bool {
        debug_assert!(k < 256);
        (self.0[31 - k / 8] >> (k % 8)) & 1 == 1
    }

    /// Sets bit `k` (0..256).
    #[inline]
    pub fn set_bit(&mut self, k: usize) {
        debug_assert!(k < 256);
        self.0[31 - k / 8] |= 1 << (k % 8);
    }

    /// Hamming distance: the number of differing bits (0..=256).
    #[inline]
    pub fn distance(&self, other: &PdqHash) -> u32 {
        let a = self.words();
        let b = other.words();
        (a[0] ^ b[0]).count_ones()
            + (a[1] ^ b[1]).count_ones()
            + (a[2] ^ b[2]).count_ones()
            + (a[3] ^ b[3]).count_ones()
    }

    /// Lower-case 64-digit hex, as the reference prints it.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(DIGITS[(b >> 4) as usize] as char);
            s.push(DIGITS[(b & 15) as usize] as char);
        }
        s
    }

    /// Parses 64 hex digits (either case). Anything else is an error that says why.
    pub fn from_hex(s: &str) -> Result<Self, Error> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(Error::InvalidHex(format!(
                "a PDQ hash is 64 hex digits, got {} characters",
                bytes.len()
            )));
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]);
            let lo = hex_value(pair[1]);
            match (hi, lo) {
                (Some(h), Some(l)) => out[i] = (h << 4) | l,
                _ => {
                    return Err(Error::InvalidHex(format!(
                        "non-hex character at position {}",
                        if hi.is_none() { 2 * i } else { 2 * i + 1 }
                    )))
                }
            }
        }
        Ok(PdqHash(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PdqHash({})", self.to_hex())
    }
}

impl FromStr for PdqHash {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        PdqHash::from_hex(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_bit_order() {
        let hex = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
        let h = PdqHash::from_hex(hex).unwrap();
        assert_eq!(h.to_hex(), hex);
        // The first hex digit holds bits 255..252.
        assert!(h.bit(255) && h.bit(254) && h.bit(253) && h.bit(252));
        // The second digit (8) holds bits 251..248: only bit 251 set.
        assert!(h.bit(251) && !h.bit(250) && !h.bit(248));
        // The last digit (2) holds bits 3..0: only bit 1 set.
        assert!(h.bit(1) && !h.bit(0) && !h.bit(2) && !h.bit(3));
        assert_eq!(PdqHash::from_words(h.words()), h);
    }

    #[test]
    fn distance_counts_differing_bits() {
        let a = PdqHash::ZERO;
        let mut b = PdqHash::ZERO;
        assert_eq!(a.distance(&b), 0);
        b.set_bit(0);
        b.set_bit(255);
        b.set_bit(128);
        assert_eq!(a.distance(&b), 3);
        assert_eq!(PdqHash([0xff; 32]).distance(&a), 256);
    }

    #[test]
    fn rejects_bad_hex() {
        assert!(PdqHash::from_hex("abc").is_err());
        let mut s = "0".repeat(63);
        s.push('g');
        let e = PdqHash::from_hex(&s).unwrap_err().to_string();
        assert!(e.contains("position 63"), "{e}");
        assert!(PdqHash::from_hex(&"A".repeat(64)).is_ok());
    }
}
