//! Where ciphertexts are kept: the [`BlobStore`] trait and validated [`BlobKey`]s.
//!
//! A blob store sees only ciphertext under random keys; it never sees a plaintext, a data key
//! or an object id, so a copied bucket or volume gives nothing away.

use bytes::Bytes;

use crate::{random, Error, Result};

/// Longest blob key, bytes. The vault's own keys are 37 bytes (`ab/cd/` and 32 hex digits);
/// the bound only stops a record read back from a database from naming something absurd.
pub const MAX_BLOB_KEY_LEN: usize = 256;
/// Most `/`-separated segments in a blob key (the vault's own have 3).
pub const MAX_BLOB_KEY_SEGMENTS: usize = 8;
/// Random bytes in a fresh blob key: 128 bits, so two objects never draw the same key and
/// keys say nothing about what they hold.
const BLOB_KEY_RANDOM_LEN: usize = 16;

/// A blob's name in a [`BlobStore`]: `/`-separated segments of `A-Z a-z 0-9 . _ -`, none
/// empty and none starting with a dot (so no `.` or `..`, and no clash with a store's own
/// temporary files). Safe to join under a directory or a bucket prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    /// Checks `key` (as read back from a record) and wraps it.
    pub fn parse(key: &str) -> Result<BlobKey> {
        let bad = |reason| Error::InvalidBlobKey {
            key: key.chars().take(MAX_BLOB_KEY_LEN).collect(),
            reason,
        };
        if key.is_empty() {
            return Err(bad("empty"));
        }
        if key.len() > MAX_BLOB_KEY_LEN {
            return Err(bad("too long"));
        }
        let mut segments = 0;
        for seg in key.split('/') {
            segments += 1;
            if seg.is_empty() {
                return Err(bad("empty segment (leading, trailing or doubled '/')"));
            }
            if seg.starts_with('.') {
                return Err(bad("a segment starts with '.'"));
            }
            if !seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(bad("only A-Z a-z 0-9 . _ - and '/' are allowed"));
            }
        }
        if segments > MAX_BLOB_KEY_SEGMENTS {
            return Err(bad("too many segments"));
        }
        Ok(BlobKey(key.to_string()))
    }

    /// A fresh random key, fanned out over two levels of 256 directories (`3f/a2/3fa2…`) so
    /// that no directory of the filesystem backend grows past a few hundred entries below
    /// tens of millions of objects.
    pub fn random() -> Result<BlobKey> {
        let mut r = [0u8; BLOB_KEY_RANDOM_LEN];
        random(&mut r)?;
        let h = hex::encode(r);
        Ok(BlobKey(format!("{}/{}/{h}", &h[0..2], &h[2..4])))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Storage for ciphertext blobs. Implementations: [`crate::FsBlobStore`] (the default) and
/// [`crate::S3BlobStore`]. Every method is safe to retry.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores `bytes` under `key`, durably once this returns, and never over an existing blob:
    /// a key that exists is [`Error::AlreadyExists`].
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<()>;
    /// The blob under `key`, or [`Error::NotFound`].
    async fn get(&self, key: &BlobKey) -> Result<Bytes>;
    /// Deletes the blob under `key`. Deleting a blob that is not there succeeds, so a sweeper
    /// that crashed half-way can simply run again.
    async fn delete(&self, key: &BlobKey) -> Result<()>;
    /// Whether a blob is stored under `key`.
    async fn exists(&self, key: &BlobKey) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_escape_are_refused() {
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/",
            "..",
            "a/../b",
            "./a",
            "a/.tmp-1",
            ".hidden",
            "a\\b",
            "a b",
            "a/b\0",
            "é",
            &"a".repeat(MAX_BLOB_KEY_LEN + 1),
            &["a"; MAX_BLOB_KEY_SEGMENTS + 1].join("/"),
        ] {
            assert!(
                matches!(BlobKey::parse(bad), Err(Error::InvalidBlobKey { .. })),
                "{bad:?}"
            );
        }
        for good in [
            "a",
            "ab/cd/ef01",
            "x.y_z-1/2",
            &["a"; MAX_BLOB_KEY_SEGMENTS].join("/"),
        ] {
            assert_eq!(BlobKey::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn random_keys_are_fanned_out_and_valid() {
        let a = BlobKey::random().unwrap();
        let b = BlobKey::random().unwrap();
        assert_ne!(a, b);
        let s = a.as_str();
        assert_eq!(s.len(), 2 + 1 + 2 + 1 + 2 * BLOB_KEY_RANDOM_LEN);
        let parts: Vec<&str> = s.split('/').collect();
        assert_eq!(parts[0], &parts[2][0..2]);
        assert_eq!(parts[1], &parts[2][2..4]);
        assert_eq!(BlobKey::parse(s).unwrap(), a);
    }
}
