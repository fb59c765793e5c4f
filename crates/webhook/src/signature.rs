//! Signing deliveries and verifying them.
//!
//! Header: `Safeguard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
//! The timestamp is inside the signed text, so a captured delivery cannot be replayed later
//! than the receiver's tolerance ([`DEFAULT_TOLERANCE`], 5 minutes) with a fresh `t`.
//!
//! While an endpoint's secret is being rotated the header carries one `v1=` per live secret;
//! a receiver accepts the delivery if any of them matches its secret. The HMAC key is the
//! secret string's UTF-8 bytes, `whsec_` prefix included, so receivers paste it as it is.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Name of the signature header.
pub const SIGNATURE_HEADER: &str = "Safeguard-Signature";
/// How far a signature's timestamp may be from the receiver's clock, either way: 5 minutes,
/// enough for clock skew and slow networks, short enough that a captured request goes stale.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
/// Prefix of generated secrets, so a leaked one is recognisable in logs and secret scanners.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a generated secret: 256 bits, the full strength of HMAC-SHA256.
pub const SECRET_BYTES: usize = 32;
/// Longest signature header [`verify`] reads, bytes. A header of a few live secrets is ~300
/// bytes; the cap bounds the work an attacker can ask for with a header of many `v1=` entries.
pub const MAX_HEADER_LEN: usize = 4096;
/// Most `v1=` entries [`verify`] checks; rotation needs two, the rest is slack.
pub const MAX_SIGNATURES: usize = 8;

type HmacSha256 = Hmac<Sha256>;

/// An endpoint's signing secret. `Debug` never prints it, so a secret in a struct that gets
/// logged stays out of the log; `==` compares in constant time.
#[derive(Clone)]
pub struct Secret(String);

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        use subtle::ConstantTimeEq as _;
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Secret {}

impl Secret {
    /// Wraps a secret string (as registered, or as [`generate_secret`] made it).
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself, to sign with or to show the operator once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A new secret: `whsec_` + 32 bytes from the OS random source, base64url without padding.
pub fn generate_secret() -> Secret {
    let mut bytes = [0u8; SECRET_BYTES];
    // The OS random source failing means the host cannot make any secret safely; there is no
    // weaker fallback worth having.
    getrandom::fill(&mut bytes).expect("the OS random source failed");
    Secret(format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

fn mac(secret: &str, t: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The hex HMAC-SHA256 of `"<t>.<body>"` under `secret`: the value of one `v1=` entry.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, t, body).finalize().into_bytes())
}

/// The `Safeguard-Signature` header value for `body` sent at `t` (unix seconds).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", signature(secret, t, body))
}

/// The header value signed with every secret in `secrets` (the current one first), for an
/// endpoint whose secret is being rotated.
pub fn sign_all(secrets: &[Secret], t: i64, body: &[u8]) -> String {
    let mut header = format!("t={t}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&signature(secret.expose(), t, body));
    }
    header
}

/// Why a delivery failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The header is not `t=<integer>,v1=<hex>[,v1=<hex>…]`, or is too long.
    #[error("malformed signature header: {0}")]
    Malformed(&'static str),
    /// No `v1=` entry matches the body under this secret: a wrong secret or an altered body.
    #[error("signature does not match")]
    BadSignature,
    /// The signature matches but `t` is older than the tolerance: a replay or a queued request.
    #[error("signature timestamp {t} is {age_s} s old, more than the tolerance")]
    Stale {
        /// The header's timestamp.
        t: i64,
        /// How old it is, seconds.
        age_s: i64,
    },
    /// The signature matches but `t` is further ahead than the tolerance: a skewed clock.
    #[error("signature timestamp {t} is {ahead_s} s in the future, more than the tolerance")]
    Future {
        /// The header's timestamp.
        t: i64,
        /// How far ahead, seconds.
        ahead_s: i64,
    },
}

/// Checks a `Safeguard-Signature` header against the raw request body.
///
/// `now` is the receiver's clock in unix seconds. The signature is checked before the
/// timestamp, so [`VerifyError::Stale`] and [`VerifyError::Future`] mean the request really
/// came from the secret's holder and only its time is off. Every `v1=` entry is compared in
/// constant time; unknown keys (a future `v2=`) are ignored.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(VerifyError::Malformed("header too long"));
    }
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            return Err(VerifyError::Malformed("an entry is not key=value"));
        };
        match key {
            "t" => {
                if t.is_some() {
                    return Err(VerifyError::Malformed("more than one t="));
                }
                let parsed: i64 = value
                    .parse()
                    .map_err(|_| VerifyError::Malformed("t= is not an integer"))?;
                t = Some(parsed);
            }
            "v1" => {
                if candidates.len() == MAX_SIGNATURES {
                    return Err(VerifyError::Malformed("too many v1= entries"));
                }
                // An entry that is not hex cannot match; it is skipped rather than fatal so one
                // garbled entry does not hide a good one next to it.
                if let Ok(bytes) = hex::decode(value) {
                    candidates.push(bytes);
                }
            }
            _ => {}
        }
    }
    let t = t.ok_or(VerifyError::Malformed("no t="))?;
    if candidates.is_empty() {
        return Err(VerifyError::Malformed("no hex v1= entry"));
    }
    let expected = mac(secret, t, body);
    // `verify_slice` compares in constant time; every candidate is tried so the time taken
    // does not say which entry matched.
    let matched = candidates.iter().fold(false, |any, c| {
        expected.clone().verify_slice(c).is_ok() | any
    });
    if !matched {
        return Err(VerifyError::BadSignature);
    }
    let tolerance_s = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    let age = now.saturating_sub(t);
    if age > tolerance_s {
        return Err(VerifyError::Stale { t, age_s: age });
    }
    if -age > tolerance_s {
        return Err(VerifyError::Future { t, ahead_s: -age });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";
    const NOW: i64 = 1_767_225_600;

    #[test]
    fn known_vector() {
        // Computed independently: printf '1767225600.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            sign(SECRET, NOW, br#"{"a":1}"#),
            "t=1767225600,v1=6d204545ff126a339c00513d93603299c984074ce1331c3537c3f6c976b49019"
        );
    }

    #[test]
    fn round_trip_and_failures() {
        let body = br#"{"id":"evt_1"}"#;
        let header = sign(SECRET, NOW, body);
        assert_eq!(
            verify(SECRET, &header, body, NOW, DEFAULT_TOLERANCE),
            Ok(())
        );
        assert_eq!(
            verify(SECRET, &header, body, NOW + 300, DEFAULT_TOLERANCE),
            Ok(())
        );
        assert_eq!(
            verify(SECRET, &header, body, NOW + 301, DEFAULT_TOLERANCE),
            Err(VerifyError::Stale { t: NOW, age_s: 301 })
        );
        assert_eq!(
            verify(SECRET, &header, body, NOW - 301, DEFAULT_TOLERANCE),
            Err(VerifyError::Future {
                t: NOW,
                ahead_s: 301
            })
        );
        assert_eq!(
            verify(
                SECRET,
                &header,
                br#"{"id":"evt_2"}"#,
                NOW,
                DEFAULT_TOLERANCE
            ),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify("whsec_other", &header, body, NOW, DEFAULT_TOLERANCE),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn malformed_headers() {
        let body = b"{}";
        let good = signature(SECRET, NOW, body);
        for header in [
            String::new(),
            "garbage".to_owned(),
            format!("v1={good}"),
            format!("t=abc,v1={good}"),
            format!("t={NOW}"),
            format!("t={NOW},v1=zz"),
            format!("t={NOW},t={NOW},v1={good}"),
            format!("t={NOW},{}", "v1=00,".repeat(MAX_SIGNATURES + 1)),
            format!("t={NOW},v1={good},{}", "x".repeat(MAX_HEADER_LEN)),
        ] {
            assert!(
                matches!(
                    verify(SECRET, &header, body, NOW, DEFAULT_TOLERANCE),
                    Err(VerifyError::Malformed(_))
                ),
                "{header:.80}"
            );
        }
        // Spaces after commas and unknown keys are tolerated.
        let header = format!("t={NOW}, v2=abc, v1={good}");
        assert_eq!(
            verify(SECRET, &header, body, NOW, DEFAULT_TOLERANCE),
            Ok(())
        );
    }

    #[test]
    fn rotation_accepts_either_secret() {
        let body = b"{}";
        let old = Secret::new("whsec_old");
        let new = Secret::new("whsec_new");
        let header = sign_all(&[new.clone(), old.clone()], NOW, body);
        assert_eq!(header.matches("v1=").count(), 2);
        for secret in [&old, &new] {
            assert_eq!(
                verify(secret.expose(), &header, body, NOW, DEFAULT_TOLERANCE),
                Ok(())
            );
        }
        assert_eq!(
            verify("whsec_neither", &header, body, NOW, DEFAULT_TOLERANCE),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn generated_secrets() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        let tail = a.expose().strip_prefix(SECRET_PREFIX).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(tail)
            .unwrap();
        assert_eq!(bytes.len(), SECRET_BYTES);
        assert_eq!(format!("{a:?}"), "Secret(***)");
    }
}
