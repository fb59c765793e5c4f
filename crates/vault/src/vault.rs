//! [`Vault`]: the envelope over a blob store.

use std::sync::Arc;

use bytes::Bytes;
use safeguard_seal::MasterKey;

use crate::blob::{BlobKey, BlobStore};
use crate::envelope::{self, SealedObject};
use crate::{blocking, Result};

/// The evidence vault: seals objects under per-object data keys wrapped by one master key,
/// keeps their ciphertexts in a [`BlobStore`], and hands the caller a [`SealedObject`] record
/// to keep in its database.
///
/// Reading is deliberately one object at a time ([`Vault::get`]) with the caller's record in
/// hand: there is no listing and no bulk export here.
#[derive(Debug, Clone)]
pub struct Vault {
    /// Where ciphertexts go.
    blobs: Arc<dyn BlobStore>,
    /// Wraps every data key; never leaves this struct.
    master: MasterKey,
}

impl Vault {
    /// A vault over `blobs` under `master`.
    pub fn new(blobs: Arc<dyn BlobStore>, master: MasterKey) -> Vault {
        Vault { blobs, master }
    }

    /// The fingerprint of the master key (32 hex digits), as recorded on each object.
    pub fn key_fingerprint(&self) -> String {
        hex::encode(self.master.fingerprint())
    }

    /// The blob store.
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// Seals `plaintext` as `object_id` (1–200 bytes of `A-Z a-z 0-9 . _ - :`; at most
    /// [`crate::MAX_OBJECT_SIZE`] bytes) and stores its ciphertext. Returns the record the
    /// caller must keep: without its `wrapped_key` the object is gone.
    ///
    /// Each call makes a new object (new data key, new random blob key), even for an id
    /// stored before; a put that fails or whose record is never saved leaves at most a blob
    /// nobody can decrypt.
    pub async fn put(&self, object_id: &str, plaintext: &[u8]) -> Result<SealedObject> {
        envelope::validate_object_id(object_id)?;
        envelope::check_size(plaintext.len())?;
        // One copy of the plaintext, into the buffer that is encrypted in place; the hashing
        // and the encryption (a second or more for large videos) run off the reactor.
        let buf = envelope::blob_buffer(plaintext);
        let master = self.master.clone();
        let id = object_id.to_string();
        let key = BlobKey::random()?;
        let blob_key = key.as_str().to_string();
        let (obj, blob) = blocking(move || envelope::seal(&master, &id, &blob_key, buf)).await?;
        self.blobs.put(&key, Bytes::from(blob)).await?;
        Ok(obj)
    }

    /// The plaintext of `obj`, after every check: the master key is the one it was sealed
    /// under ([`crate::Error::WrongMasterKey`] otherwise), the wrapped key and the ciphertext
    /// authenticate for this object id, and the size, SHA-256 and MD5 match the record
    /// ([`crate::Error::Tampered`] otherwise). A destroyed object is
    /// [`crate::Error::NotFound`].
    ///
    /// This is a read of evidence: the caller logs who read what before calling it.
    pub async fn get(&self, obj: &SealedObject) -> Result<Vec<u8>> {
        let key = BlobKey::parse(&obj.blob_key)?;
        // The key check first: a wrong master key is reported as such without a download.
        envelope::check_master(&self.master, obj)?;
        let blob = self.blobs.get(&key).await?;
        let master = self.master.clone();
        let obj = obj.clone();
        blocking(move || envelope::open(&master, &obj, &blob)).await
    }

    /// Destroys `obj`'s blob. Idempotent. The caller deletes its record (the wrapped data
    /// key) in the same step and records the deletion; the record's deletion is what makes
    /// the object unrecoverable, since without the wrapped key no surviving copy of the blob
    /// (a backup, a replica, a bucket version) can be decrypted.
    pub async fn destroy(&self, obj: &SealedObject) -> Result<()> {
        self.blobs.delete(&BlobKey::parse(&obj.blob_key)?).await
    }

    /// `obj` re-wrapped under `new_master` (master key rotation). Only the record changes:
    /// store the returned record in place of the old one; the blob is untouched.
    pub fn rewrap(&self, obj: &SealedObject, new_master: &MasterKey) -> Result<SealedObject> {
        envelope::rewrap(&self.master, new_master, obj)
    }
}
