//! The evidence vault: where the media of every matched item is kept, encrypted, until its
//! retention clock runs out.
//!
//! **Envelope encryption.** Each object gets a fresh random 256-bit data key (DEK). The
//! plaintext is encrypted under the DEK with XChaCha20-Poly1305 and the ciphertext goes to a
//! [`BlobStore`] (the filesystem by default, or S3-compatible object storage). The DEK is
//! wrapped (sealed) by the instance's [`MasterKey`] and returned, with the plaintext's SHA-256,
//! MD5 and size and the master key's fingerprint, as a [`SealedObject`] that the caller keeps
//! in its database. Both encryptions bind the object id as associated data, so neither a
//! ciphertext nor a wrapped key opens under another object's record.
//!
//! **Crypto-shredding.** Without its wrapped DEK a blob is noise: deleting the record's
//! wrapped key destroys the object even where a copy of the blob survives (a backup, a
//! replica, a bucket version). [`Vault::destroy`] also deletes the blob; the caller deletes
//! the record and records the deletion.
//!
//! **Retention** ([`retention`]) is pure arithmetic over a record's timestamps: one year after
//! the report (the US REPORT Act), a configurable period when there is none, never while a
//! legal hold is on. The caller's sweeper asks which records are due and destroys them.
//!
//! The vault logs nothing: a read of evidence is an audited act of a person, which only the
//! caller (the server) can attribute, so the caller records it.
//!
//! Format and threat notes: `docs/vault.md`.

#![forbid(unsafe_code)]

pub mod blob;
pub mod config;
mod envelope;
pub mod fs;
pub mod retention;
pub mod s3;
mod vault;

pub use blob::{BlobKey, BlobStore};
pub use config::{KeySource, S3Config, VaultBackend, VaultConfig};
pub use envelope::{SealedObject, BLOB_HEADER_LEN, BLOB_MAGIC, BLOB_V1, DEK_LEN};
pub use fs::FsBlobStore;
pub use retention::RetentionPolicy;
pub use s3::S3BlobStore;
pub use safeguard_seal::MasterKey;
pub use vault::Vault;

/// Largest object the vault keeps, bytes: 512 MiB. The whole object is held in memory while
/// it is sealed or opened (plaintext and ciphertext, so about twice this), and it must fit
/// one S3 `PUT` (5 GiB). Twice the server's default video upload limit (256 MiB), so an
/// operator who raises that has room before this refuses.
pub const MAX_OBJECT_SIZE: u64 = 512 * 1024 * 1024;

/// Longest object id, bytes. Object ids are the caller's (a content id with a prefix, a
/// UUID); 200 bytes holds any of those and keeps an id a sensible database key.
pub const MAX_OBJECT_ID_LEN: usize = 200;

/// What can go wrong in the vault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The object id is empty, too long, or has characters outside `A-Z a-z 0-9 . _ - :`.
    #[error("invalid object id {id:?}: {reason}")]
    InvalidObjectId {
        /// The id as given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A blob key is not of the vault's shape (no `..`, no absolute path, only
    /// `A-Z a-z 0-9 . _ -` in `/`-separated segments that do not start with a dot).
    #[error("invalid blob key {key:?}: {reason}")]
    InvalidBlobKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The object is larger than [`MAX_OBJECT_SIZE`].
    #[error("the object is {size} bytes; the vault keeps at most {limit} bytes")]
    TooLarge {
        /// Its size, bytes.
        size: u64,
        /// The limit, bytes.
        limit: u64,
    },
    /// No blob under this key: never stored, or destroyed.
    #[error("no blob {key} in the vault (never stored, or destroyed)")]
    NotFound {
        /// The blob key.
        key: String,
    },
    /// A blob under this key exists already; the vault never overwrites evidence.
    #[error("blob {key} exists already; the vault does not overwrite")]
    AlreadyExists {
        /// The blob key.
        key: String,
    },
    /// The object was sealed under another master key than the one this vault holds.
    #[error(
        "object {object_id} was sealed under another master key (fingerprint {sealed_with}, \
         this vault's key is {current}): check the vault's key source (the {} file, \
         {}, or the key command)",
        safeguard_seal::KEY_FILE,
        safeguard_seal::ENV_VAR
    )]
    WrongMasterKey {
        /// The object id.
        object_id: String,
        /// Fingerprint recorded with the object, hex.
        sealed_with: String,
        /// Fingerprint of the key in use, hex.
        current: String,
    },
    /// Authentication failed under the right master key: the wrapped key, the ciphertext or
    /// the record's digests were altered, or the record belongs to another object.
    #[error("object {object_id} fails authentication ({what}): it was altered or swapped")]
    Tampered {
        /// The object id.
        object_id: String,
        /// Which part failed.
        what: &'static str,
    },
    /// A stored blob or wrapped key is not in a format this build knows (bad magic, unknown
    /// version, truncated header).
    #[error("object {object_id} is corrupt: {reason}")]
    Corrupt {
        /// The object id (or the blob key where no id is known).
        object_id: String,
        /// What is wrong.
        reason: String,
    },
    /// A filesystem operation of [`FsBlobStore`] failed.
    #[error("vault file {path}: {source}")]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The S3 backend failed (network, credentials, bucket).
    #[error("vault object storage, {op} {key}: {message}")]
    Backend {
        /// The operation (`put`, `get`, `delete`, `head`).
        op: &'static str,
        /// The blob key.
        key: String,
        /// The backend's error, as text (its type is the backend library's, not ours).
        message: String,
    },
    /// The vault configuration is invalid.
    #[error("vault configuration: {0}")]
    Config(String),
    /// The master key could not be loaded (file, variable or command).
    #[error(transparent)]
    Key(#[from] safeguard_seal::Error),
    /// The operating system's random source failed.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    /// A blocking task (hashing, encryption, file I/O) panicked or was cancelled.
    #[error("internal error in a vault worker task: {0}")]
    Task(String),
}

/// Shorthand for the vault's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Fills `buf` from the operating system's random source.
pub(crate) fn random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::Random(e.to_string()))
}

/// Runs CPU-heavy or blocking work (hashing, AEAD over megabytes, file I/O) off the async
/// reactor.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}
