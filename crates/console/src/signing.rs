//! Signed media URLs. A media URL carries an expiry and an HMAC-SHA256 over the object, the
//! viewer's session hash and that expiry, so a URL copied out of a page (into a chat, a
//! browser history sync) is useless to anyone without the same live session and stops working
//! within minutes.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Separates this use of the key from any other (a key reused elsewhere cannot mint media URLs).
const DOMAIN: &[u8] = b"safeguard-console media url v1";

/// Why a media URL was refused. A verdict rather than a fault, kept apart from [`crate::Error`]
/// so the server answers 403 for either without a catch-all arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The signature is valid but its time has passed.
    #[error("media URL expired")]
    Expired,
    /// Malformed, tampered with, or made for another object or session.
    #[error("media URL signature does not match")]
    BadSignature,
}

/// Mints and checks media URL signatures under one 256-bit key.
#[derive(Clone)]
pub struct MediaSigner {
    key: [u8; 32],
}

impl fmt::Debug for MediaSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MediaSigner(***)")
    }
}

impl MediaSigner {
    /// A signer under `key` (from the sealed secrets, or random per process if URLs need not
    /// outlive a restart).
    pub fn new(key: [u8; 32]) -> MediaSigner {
        MediaSigner { key }
    }

    fn mac(&self, object_id: &str, session_hash: &str, expires_ms: i64) -> Hmac<Sha256> {
        #[allow(clippy::unwrap_used)] // HMAC accepts keys of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).unwrap();
        mac.update(DOMAIN);
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        for field in [object_id.as_bytes(), session_hash.as_bytes()] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        mac.update(&expires_ms.to_be_bytes());
        mac
    }

    /// The signature (base64url, no padding) for `object_id` seen in the session whose stored
    /// hash is `session_hash`, valid until `expires_ms`.
    pub fn sign(&self, object_id: &str, session_hash: &str, expires_ms: i64) -> String {
        URL_SAFE_NO_PAD.encode(
            self.mac(object_id, session_hash, expires_ms)
                .finalize()
                .into_bytes(),
        )
    }

    /// Checks a signature. The signature is checked (in constant time) before the expiry, so a
    /// forged URL never learns whether its time would have been valid.
    pub fn verify(
        &self,
        object_id: &str,
        session_hash: &str,
        expires_ms: i64,
        sig: &str,
        now_ms: i64,
    ) -> Result<(), SignError> {
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| SignError::BadSignature)?;
        self.mac(object_id, session_hash, expires_ms)
            .verify_slice(&sig)
            .map_err(|_| SignError::BadSignature)?;
        if now_ms >= expires_ms {
            return Err(SignError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_own_and_refuses_everything_else() {
        let s = MediaSigner::new([7; 32]);
        let sig = s.sign("obj-1", "sess-a", 10_000);
        assert_eq!(s.verify("obj-1", "sess-a", 10_000, &sig, 9_999), Ok(()));
        // Another session.
        assert_eq!(
            s.verify("obj-1", "sess-b", 10_000, &sig, 0),
            Err(SignError::BadSignature)
        );
        // Another object, a stretched expiry, a tampered signature, another key.
        assert_eq!(
            s.verify("obj-2", "sess-a", 10_000, &sig, 0),
            Err(SignError::BadSignature)
        );
        assert_eq!(
            s.verify("obj-1", "sess-a", 99_999, &sig, 0),
            Err(SignError::BadSignature)
        );
        let mut bad = sig.clone().into_bytes();
        bad[3] = if bad[3] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap();
        assert_eq!(
            s.verify("obj-1", "sess-a", 10_000, &bad, 0),
            Err(SignError::BadSignature)
        );
        assert_eq!(
            s.verify("obj-1", "sess-a", 10_000, "!!", 0),
            Err(SignError::BadSignature)
        );
        let other = MediaSigner::new([8; 32]);
        assert_eq!(
            other.verify("obj-1", "sess-a", 10_000, &sig, 0),
            Err(SignError::BadSignature)
        );
        // Field boundaries matter.
        assert_ne!(s.sign("ab", "c", 1), s.sign("a", "bc", 1));
        // Expired.
        assert_eq!(
            s.verify("obj-1", "sess-a", 10_000, &sig, 10_000),
            Err(SignError::Expired)
        );
        assert_eq!(format!("{s:?}"), "MediaSigner(***)");
    }
}
