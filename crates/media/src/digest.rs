//! Cryptographic digests of the raw input bytes, for exact-match hash lists (hotlines share MD5
//! and SHA-1 lists alongside perceptual hashes) and for audit trails (SHA-256).

use md5::{Digest as _, Md5};
use sha1::Sha1;
use sha2::Sha256;

/// MD5, SHA-1 and SHA-256 of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digests {
    /// MD5 (kept because hotline exact-match lists still use it; not for security).
    pub md5: [u8; 16],
    /// SHA-1 (same reason as MD5).
    pub sha1: [u8; 20],
    /// SHA-256.
    pub sha256: [u8; 32],
}

impl Digests {
    /// MD5 as 32 lower-case hex digits.
    pub fn md5_hex(&self) -> String {
        to_hex(&self.md5)
    }

    /// SHA-1 as 40 lower-case hex digits.
    pub fn sha1_hex(&self) -> String {
        to_hex(&self.sha1)
    }

    /// SHA-256 as 64 lower-case hex digits.
    pub fn sha256_hex(&self) -> String {
        to_hex(&self.sha256)
    }
}

/// Computes all three digests in one pass: the hashers take turns on 64 KiB pieces, so each
/// piece is still in cache for the second and third hasher instead of three passes over a large
/// file from main memory.
pub fn digests(bytes: &[u8]) -> Digests {
    const PIECE: usize = 64 * 1024;
    let mut md5 = Md5::new();
    let mut sha1 = Sha1::new();
    let mut sha256 = Sha256::new();
    for piece in bytes.chunks(PIECE) {
        md5.update(piece);
        sha1.update(piece);
        sha256.update(piece);
    }
    Digests {
        md5: md5.finalize().into(),
        sha1: sha1.finalize().into(),
        sha256: sha256.finalize().into(),
    }
}

/// Lower-case hex encoding.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0F)]));
    }
    out
}

/// Decodes lower- or upper-case hex into `out`'s length of bytes; `None` if `hex` is not exactly
/// `2 * N` hex digits.
pub fn from_hex<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let digits = hex.as_bytes();
    if digits.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        // Two hex digits make at most 0xFF.
        *byte = (high * 16 + low) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors_for_abc() {
        let d = digests(b"abc");
        assert_eq!(d.md5_hex(), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d.sha1_hex(), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            d.sha256_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn empty_input() {
        let d = digests(b"");
        assert_eq!(d.md5_hex(), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(d.sha1_hex(), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }

    #[test]
    fn pieces_do_not_change_the_digest() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = {
            let mut h = Sha256::new();
            h.update(&data);
            <[u8; 32]>::from(h.finalize())
        };
        assert_eq!(digests(&data).sha256, whole);
    }

    #[test]
    fn hex_round_trip() {
        let d = digests(b"round trip");
        assert_eq!(from_hex::<32>(&d.sha256_hex()), Some(d.sha256));
        assert_eq!(from_hex::<16>(&d.md5_hex().to_uppercase()), Some(d.md5));
        assert_eq!(from_hex::<2>("abc"), None);
        assert_eq!(from_hex::<2>("zz00"), None);
    }
}
