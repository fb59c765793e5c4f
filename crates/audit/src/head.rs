//! Signed tree heads and the log's Ed25519 key.
//!
//! A tree head is the log's statement "at `timestamp_ms` my tree had `size` entries and this
//! root". Signed, it commits the log to every entry up to `size`: any later change to them
//! changes the root, and a consistency proof shows that a later head extends an earlier one.
//! Whoever keeps a copy of a signed head (an auditor, a partner, a printout) can later catch
//! the log rewriting its past.
//!
//! Signed bytes ([`TreeHead::signed_bytes`]): the domain tag [`STH_DOMAIN`], the size as a
//! u64 big-endian, the timestamp as an i64 big-endian, then the 32-byte root. The tag keeps
//! a signature made here from being valid for any other message the key might sign.
//!
//! Key formats: the private key is its 32-byte Ed25519 seed (RFC 8032) as 64 hex characters,
//! for the caller to seal (safeguard-seal) before storing it; the public key is the 32-byte
//! RFC 8032 encoding as 64 lowercase hex characters, which is what an auditor needs to
//! verify an export offline.

use ed25519_dalek::Signer;
use zeroize::Zeroizing;

use crate::merkle::{Hash, HASH_LEN};
use crate::Error;

/// Domain tag at the start of every signed tree head's signed bytes.
pub const STH_DOMAIN: &[u8] = b"safeguard-audit-sth-v1\0";
/// Length of an Ed25519 key (private seed or public key), bytes.
pub const KEY_LEN: usize = 32;
/// Length of an Ed25519 signature, bytes.
pub const SIGNATURE_LEN: usize = 64;

/// The log's state at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    /// Number of entries in the tree.
    pub size: u64,
    /// The Merkle Tree Hash of those entries.
    pub root: Hash,
    /// When the head was made, milliseconds since the Unix epoch (UTC).
    pub timestamp_ms: i64,
}

/// A tree head with the log's Ed25519 signature over [`TreeHead::signed_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedTreeHead {
    /// The head.
    pub head: TreeHead,
    /// The signature.
    pub signature: [u8; SIGNATURE_LEN],
}

impl TreeHead {
    /// The bytes that are signed: `STH_DOMAIN || size (u64 BE) || timestamp_ms (i64 BE) ||
    /// root`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(STH_DOMAIN.len() + 16 + HASH_LEN);
        out.extend_from_slice(STH_DOMAIN);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.root);
        out
    }

    /// Signs the head with the log's key.
    pub fn sign(&self, key: &SigningKey) -> SignedTreeHead {
        SignedTreeHead {
            head: *self,
            signature: key.0.sign(&self.signed_bytes()).to_bytes(),
        }
    }
}

impl SignedTreeHead {
    /// Checks the signature under `key`. Uses Ed25519's strict verification, which also
    /// refuses malleable signatures and weak keys, so a head has exactly one valid signature
    /// per key.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), Error> {
        let sig = ed25519_dalek::Signature::from_bytes(&self.signature);
        key.0
            .verify_strict(&self.head.signed_bytes(), &sig)
            .map_err(|_| Error::BadSignature)
    }
}

/// The log's private signing key. `Debug` never shows it; it is wiped from memory on drop.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<SigningKey, Error> {
        let mut seed = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(&mut seed[..]).map_err(|e| Error::Random(e.to_string()))?;
        Ok(SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// The key from its 32-byte seed.
    pub fn from_bytes(seed: &[u8; KEY_LEN]) -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The key from 64 hex characters (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<SigningKey, Error> {
        let mut seed = Zeroizing::new([0u8; KEY_LEN]);
        hex::decode_to_slice(text.trim(), &mut seed[..])
            .map_err(|_| Error::InvalidKey(format!("not {} hex characters", KEY_LEN * 2)))?;
        Ok(SigningKey::from_bytes(&seed))
    }

    /// The 32-byte seed as 64 hex characters, to be sealed before it is stored. Never log it.
    pub fn to_hex(&self) -> Zeroizing<String> {
        let seed = Zeroizing::new(self.0.to_bytes());
        Zeroizing::new(hex::encode(&seed[..]))
    }

    /// The public half, for verifiers.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.verifying_key())
    }
}

/// The log's public key, which verifies its signed tree heads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({})", self.to_hex())
    }
}

impl VerifyingKey {
    /// The key from its 32-byte RFC 8032 encoding. Weak (small-order) keys are refused: a
    /// signature under one proves nothing.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Result<VerifyingKey, Error> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map_err(|_| Error::InvalidKey("not a valid Ed25519 public key".into()))?;
        if key.is_weak() {
            return Err(Error::InvalidKey("a weak (small-order) Ed25519 key".into()));
        }
        Ok(VerifyingKey(key))
    }

    /// The key from 64 hex characters (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<VerifyingKey, Error> {
        let mut bytes = [0u8; KEY_LEN];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|_| Error::InvalidKey(format!("not {} hex characters", KEY_LEN * 2)))?;
        VerifyingKey::from_bytes(&bytes)
    }

    /// The 32-byte RFC 8032 encoding.
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.0.to_bytes()
    }

    /// The 32-byte encoding as 64 lowercase hex characters: the published form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> TreeHead {
        TreeHead {
            size: 3,
            root: [7; HASH_LEN],
            timestamp_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn signed_bytes_are_pinned() {
        let mut want = STH_DOMAIN.to_vec();
        want.extend_from_slice(&3u64.to_be_bytes());
        want.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        want.extend_from_slice(&[7; HASH_LEN]);
        assert_eq!(head().signed_bytes(), want);
    }

    #[test]
    fn sign_verify_and_refuse_changes() {
        let key = SigningKey::generate().unwrap();
        let sth = head().sign(&key);
        sth.verify(&key.verifying_key()).unwrap();
        for change in 0..4 {
            let mut bad = sth;
            match change {
                0 => bad.head.size += 1,
                1 => bad.head.timestamp_ms += 1,
                2 => bad.head.root[31] ^= 1,
                _ => bad.signature[0] ^= 1,
            }
            assert!(matches!(
                bad.verify(&key.verifying_key()),
                Err(Error::BadSignature)
            ));
        }
        let other = SigningKey::generate().unwrap();
        assert!(sth.verify(&other.verifying_key()).is_err());
    }

    #[test]
    fn keys_round_trip_through_hex() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_hex(&key.to_hex()).unwrap();
        assert_eq!(key.verifying_key(), again.verifying_key());
        let public = key.verifying_key().to_hex();
        assert_eq!(public.len(), 64);
        assert_eq!(
            VerifyingKey::from_hex(&public).unwrap(),
            key.verifying_key()
        );
        assert!(!format!("{key:?}").contains(&key.to_hex()[..8]));
        assert!(VerifyingKey::from_hex("zz").is_err());
        // The identity point is a small-order (weak) key.
        let mut identity = [0u8; KEY_LEN];
        identity[0] = 1;
        assert!(VerifyingKey::from_bytes(&identity).is_err());
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 §7.1, TEST 1: the empty message.
        let key = SigningKey::from_hex(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        )
        .unwrap();
        assert_eq!(
            key.verifying_key().to_hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = key.0.sign(b"").to_bytes();
        assert_eq!(
            hex::encode(sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }
}
