//! Secrets at rest.
//!
//! One 256-bit master key per instance ([`MasterKey`]), taken from `SAFEGUARD_MASTER_KEY`
//! (64 hex characters) when set, else from a key file in the data directory that is created
//! with mode 0600 on first use. Values are sealed with XChaCha20-Poly1305 under that key: a
//! random 192-bit nonce per value (safe to draw at random, unlike ChaCha20-Poly1305's 96
//! bits), and the value's context (for example the exchange it belongs to) as associated
//! data, so a sealed value copied into another row does not open there.
//!
//! Sealed format: one version byte ([`FORMAT_V1`]), the 24-byte nonce, then the ciphertext
//! with its 16-byte tag.
//!
//! Losing the key loses every sealed value; a different key fails with [`Error::WrongKey`]
//! rather than returning garbage. The key never prints (`Debug` shows `MasterKey(***)`) and is
//! wiped from memory when dropped.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

/// Environment variable holding the master key as 64 hex characters; it wins over the file.
pub const ENV_VAR: &str = "SAFEGUARD_MASTER_KEY";
/// Name of the key file in the data directory.
pub const KEY_FILE: &str = "master.key";
/// Key length, bytes.
pub const KEY_LEN: usize = 32;
/// Nonce length, bytes (XChaCha20).
pub const NONCE_LEN: usize = 24;
/// Authentication tag length, bytes.
pub const TAG_LEN: usize = 16;
/// First byte of a sealed value in the current format.
pub const FORMAT_V1: u8 = 1;

/// What can go wrong with the key or a sealed value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key given in the environment or the file is not 64 hex characters.
    #[error("the master key in {origin} is not {} hex characters", KEY_LEN * 2)]
    InvalidKey {
        /// Where the key came from (the variable's name or the file's path).
        origin: String,
    },
    /// The key file can be read by other users; it is refused rather than trusted.
    #[error(
        "the master key file {path} is readable by other users (mode {mode:o}); \
         run: chmod 600 {path}"
    )]
    InsecureKeyFile {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Reading or creating the key file failed.
    #[error("master key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The operating system's random source failed.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    /// The value does not open under this key and context: the key changed (another
    /// `SAFEGUARD_MASTER_KEY`, a replaced key file), or the stored value was altered.
    #[error(
        "the sealed value does not open with this master key: the key is not the one it was \
         sealed with (check {ENV_VAR} or the {KEY_FILE} file), or the stored value was altered"
    )]
    WrongKey,
    /// The stored value is not in a format this build knows (too short, unknown version).
    #[error("the sealed value is malformed: {0}")]
    Malformed(String),
}

/// The instance's master key. Cheap to clone; wiped on drop.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> Result<MasterKey, Error> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(&mut k[..]).map_err(|e| Error::Random(e.to_string()))?;
        Ok(MasterKey(k))
    }

    /// A key from 64 hex characters (surrounding white space ignored). `origin` names where
    /// the text came from, for the error.
    pub fn from_hex(text: &str, origin: &str) -> Result<MasterKey, Error> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        hex::decode_to_slice(text.trim(), &mut k[..]).map_err(|_| Error::InvalidKey {
            origin: origin.to_string(),
        })?;
        Ok(MasterKey(k))
    }

    /// The key as 64 hex characters, for writing the key file or a backup. Never log it.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(&self.0[..]))
    }

    /// The instance's key: `env_value` (the content of [`ENV_VAR`]) when given, else the key
    /// file [`KEY_FILE`] in `data_dir`, created on first use.
    pub fn resolve(env_value: Option<&str>, data_dir: &Path) -> Result<MasterKey, Error> {
        match env_value {
            Some(v) => MasterKey::from_hex(v, ENV_VAR),
            None => MasterKey::load_or_create(&data_dir.join(KEY_FILE)),
        }
    }

    /// Reads the key file, or creates it (mode 0600, never overwriting one that appeared
    /// meanwhile) with a fresh key. A file other users can read is refused.
    pub fn load_or_create(path: &Path) -> Result<MasterKey, Error> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path)?;
                let text = Zeroizing::new(text);
                MasterKey::from_hex(&text, &path.display().to_string())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = MasterKey::generate()?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                match opts.open(path) {
                    Ok(mut f) => {
                        let mut line = key.to_hex();
                        line.push('\n');
                        f.write_all(line.as_bytes()).map_err(io)?;
                        f.sync_all().map_err(io)?;
                        Ok(key)
                    }
                    // Another process created it first: use that one.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        MasterKey::load_or_create(path)
                    }
                    Err(e) => Err(io(e)),
                }
            }
            Err(e) => Err(io(e)),
        }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&self.0[..]))
    }

    /// Seals `plaintext`, bound to `context` (which must be given again to open it).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| Error::Random(e.to_string()))?;
        let ct = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            // Encryption fails only for messages over 256 GiB: not a secret's size.
            .map_err(|_| Error::Malformed("value too large to seal".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens a value sealed with [`MasterKey::seal`] under the same `context`.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        let (&version, rest) = sealed
            .split_first()
            .ok_or_else(|| Error::Malformed("empty".into()))?;
        if version != FORMAT_V1 {
            return Err(Error::Malformed(format!(
                "unknown format version {version}"
            )));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(Error::Malformed(format!(
                "{} bytes is too short",
                sealed.len()
            )));
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| Error::WrongKey)
    }
}

/// Refuses a key file that users other than its owner may read or write.
#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::InsecureKeyFile {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), Error> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_bound_to_the_context() {
        let k = MasterKey::generate().unwrap();
        let sealed = k.seal(b"hunter2-credential", b"EXCHANGE_A").unwrap();
        assert_eq!(sealed[0], FORMAT_V1);
        assert_eq!(sealed.len(), 1 + NONCE_LEN + 18 + TAG_LEN);
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            &k.open(&sealed, b"EXCHANGE_A").unwrap()[..],
            b"hunter2-credential"
        );
        // Another row's context, another key, or one flipped bit: refused, never garbage.
        assert!(matches!(
            k.open(&sealed, b"EXCHANGE_B"),
            Err(Error::WrongKey)
        ));
        let other = MasterKey::generate().unwrap();
        let err = other.open(&sealed, b"EXCHANGE_A").unwrap_err();
        assert!(matches!(err, Error::WrongKey));
        assert!(err.to_string().contains(ENV_VAR), "{err}");
        let mut bent = sealed.clone();
        *bent.last_mut().unwrap() ^= 1;
        assert!(matches!(k.open(&bent, b"EXCHANGE_A"), Err(Error::WrongKey)));
        // Two seals of one value differ (fresh nonce each time).
        assert_ne!(
            sealed,
            k.seal(b"hunter2-credential", b"EXCHANGE_A").unwrap()
        );
    }

    #[test]
    fn malformed_values_are_named() {
        let k = MasterKey::generate().unwrap();
        for bad in [&[][..], &[FORMAT_V1, 1, 2][..], &[9u8; 64][..]] {
            assert!(
                matches!(k.open(bad, b""), Err(Error::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = MasterKey::resolve(None, dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let b = MasterKey::resolve(None, dir.path()).unwrap();
        assert_eq!(a.to_hex(), b.to_hex());
        let sealed = a.seal(b"x", b"c").unwrap();
        assert_eq!(&b.open(&sealed, b"c").unwrap()[..], b"x");
        // The environment wins over the file.
        let env = MasterKey::generate().unwrap();
        let c = MasterKey::resolve(Some(&env.to_hex()), dir.path()).unwrap();
        assert_eq!(c.to_hex(), env.to_hex());
        assert!(matches!(c.open(&sealed, b"c"), Err(Error::WrongKey)));
        // Nothing prints the key.
        assert_eq!(format!("{a:?}"), "MasterKey(***)");
    }

    #[test]
    fn bad_keys_and_open_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = MasterKey::resolve(Some("not hex"), dir.path()).unwrap_err();
        assert!(matches!(err, Error::InvalidKey { .. }));
        assert!(err.to_string().contains(ENV_VAR));
        assert!(MasterKey::from_hex(&"ab".repeat(31), "t").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(KEY_FILE);
            std::fs::write(&path, "ab".repeat(32)).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = MasterKey::load_or_create(&path).unwrap_err();
            assert!(
                matches!(err, Error::InsecureKeyFile { mode: 0o644, .. }),
                "{err}"
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            MasterKey::load_or_create(&path).unwrap();
        }
    }
}
