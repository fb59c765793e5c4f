//! Opaque tokens (sessions, CSRF, setup links): drawn at random, stored only as a hash,
//! compared in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A new token: 32 random bytes (256 bits), base64url without padding (43 characters), safe
/// in cookies, URLs and form fields.
///
/// # Panics
/// If the OS random source fails (see the crate's `random_bytes`).
pub fn new_token() -> String {
    URL_SAFE_NO_PAD.encode(crate::random_bytes::<32>())
}

/// The form a token is stored in: SHA-256, lower-case hex. A plain hash suffices because the
/// token has 256 bits of entropy; a leaked table then holds nothing that can be presented.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two secrets without leaking where they first differ. Unequal lengths return false
/// at once; lengths are not secret here (tokens and hashes have fixed lengths).
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_and_hash_stably() {
        let a = new_token();
        let b = new_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(hash(&a), hash(&a));
        assert_eq!(hash(&a).len(), 64);
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(ct_eq(&a, &a.clone()));
        assert!(!ct_eq(&a, &b));
        assert!(!ct_eq("abc", "abcd"));
    }
}
