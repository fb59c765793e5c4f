//! Time-based one-time passwords (RFC 6238): HMAC-SHA-1, 6 digits, 30-second steps, which is
//! what every authenticator app implements. Written here on the workspace's hmac and sha1
//! rather than through a TOTP crate: the algorithm is thirty lines, and the replay rule (a
//! step is used once) lives with the store, which a crate would not know about.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Seconds per step.
pub const STEP_SECS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Secret length, bytes: 160 bits, the HMAC-SHA-1 block of RFC 4226's recommendation.
pub const SECRET_LEN: usize = 20;

/// A new random secret of [`SECRET_LEN`] bytes.
///
/// # Panics
/// If the OS random source fails (see [`crate::token::new_token`]).
pub fn new_secret() -> Vec<u8> {
    crate::random_bytes::<SECRET_LEN>().to_vec()
}

/// The secret in base32 (RFC 4648, no padding), as people type it into an authenticator.
pub fn secret_base32(secret: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(secret.len().div_ceil(5) * 8);
    for chunk in secret.chunks(5) {
        let mut block = [0u8; 5];
        block[..chunk.len()].copy_from_slice(chunk);
        let bits = block.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..chars {
            let index = (bits >> (35 - 5 * i)) & 31;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

/// The `otpauth://` URI authenticator apps import (usually from a QR code).
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        percent_encode(account),
        secret_base32(secret),
    )
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 4226 HOTP with `digits` digits.
fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    #[allow(clippy::unwrap_used)] // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).unwrap();
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let word = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    word % 10u32.pow(digits)
}

fn step_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

fn code_for_step(secret: &[u8], step: i64) -> String {
    // Steps before 1970 do not occur; clamping keeps the cast total.
    let counter = u64::try_from(step).unwrap_or(0);
    format!(
        "{:0width$}",
        hotp(secret, counter, DIGITS),
        width = DIGITS as usize
    )
}

/// The code for the step containing `unix_secs`.
pub fn code_at(secret: &[u8], unix_secs: i64) -> String {
    code_for_step(secret, step_of(unix_secs))
}

/// Checks `code` against the steps t-1, t and t+1 around `unix_secs` (one step of clock skew
/// either way), skipping steps at or before `last_step` so a code that was already used cannot
/// be used again. Returns the matching step, which the caller stores as the new `last_step`.
pub fn verify(secret: &[u8], code: &str, unix_secs: i64, last_step: Option<i64>) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = step_of(unix_secs);
    (t - 1..=t + 1)
        .filter(|s| *s >= 0 && last_step.is_none_or(|last| *s > last))
        .find(|s| bool::from(code_for_step(secret, *s).as_bytes().ct_eq(code.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"12345678901234567890";
    // RFC 6238 appendix B, SHA-1 column: (time, 8-digit TOTP).
    const VECTORS: [(i64, &str); 6] = [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];

    #[test]
    fn rfc6238_vectors() {
        for (t, expected) in VECTORS {
            let step = u64::try_from(t / 30).unwrap();
            assert_eq!(format!("{:08}", hotp(SECRET, step, 8)), expected, "t={t}");
            assert_eq!(code_at(SECRET, t), expected[2..], "t={t}");
        }
    }

    #[test]
    fn verify_window_and_replay() {
        let t = 1_234_567_890;
        let step = t / 30;
        let now = code_at(SECRET, t);
        assert_eq!(verify(SECRET, &now, t, None), Some(step));
        assert_eq!(verify(SECRET, &now, t + 30, None), Some(step));
        assert_eq!(verify(SECRET, &now, t - 30, None), Some(step));
        assert_eq!(verify(SECRET, &now, t + 60, None), None);
        // Replay: the step was used.
        assert_eq!(verify(SECRET, &now, t, Some(step)), None);
        assert_eq!(
            verify(SECRET, &code_at(SECRET, t + 30), t, Some(step)),
            Some(step + 1)
        );
        assert_eq!(verify(SECRET, "12345", t, None), None);
        assert_eq!(verify(SECRET, "12a456", t, None), None);
        assert_eq!(verify(b"another secret......", &now, t, None), None);
    }

    #[test]
    fn base32_and_uri() {
        assert_eq!(secret_base32(b""), "");
        assert_eq!(secret_base32(b"f"), "MY");
        assert_eq!(secret_base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(secret_base32(SECRET), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(new_secret().len(), 20);
        assert_eq!(
            otpauth_uri("Safeguard Console", "a@b c", SECRET),
            "otpauth://totp/Safeguard%20Console:a%40b%20c?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Safeguard%20Console&algorithm=SHA1&digits=6&period=30"
        );
    }
}
