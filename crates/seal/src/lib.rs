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
//!
//! An operator who keeps the key in a KMS or a secret manager can have it fetched by a
//! command instead ([`MasterKey::from_command`]): the command prints the 64 hex characters on
//! its standard output, and is killed if it takes longer than its timeout. A key's
//! [`MasterKey::fingerprint`] identifies it without revealing it, so a store can tell "this
//! value was sealed under another key" from "this value was altered".

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
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
/// How long a key command may run by default before it is killed. A KMS call is one
/// network round trip plus authentication; 30 s is generous for that and still short enough
/// that a hung command stops the start-up with an error instead of hanging it.
pub const KEY_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes read from a key command's standard output (and, separately, its standard
/// error). The key is 64 hex characters; anything much longer is not a key, and the cap keeps
/// a runaway command from filling memory.
pub const KEY_COMMAND_OUTPUT_MAX: usize = 4096;
/// Most bytes of a failed key command's standard error quoted in the error, so the operator
/// sees the KMS's complaint without the log filling with a whole trace.
pub const KEY_COMMAND_STDERR_QUOTED: usize = 512;
/// Prefix of every [`MasterKey::derive`] input, so a derived key never equals an HMAC the
/// key computes for anything else.
pub const DERIVE_DOMAIN: &[u8] = b"safeguard-derive-v1\0";
/// Length of a key fingerprint ([`MasterKey::fingerprint`]), bytes: 128 bits, enough that
/// two keys never share one by chance.
pub const FINGERPRINT_LEN: usize = 16;
/// Domain separation for fingerprints: no other hash of the key in this program starts so.
const FINGERPRINT_DOMAIN: &[u8] = b"safeguard-seal master key fingerprint v1\0";
/// How often a running key command is polled for exit. Short against the timeout, long
/// enough not to spin.
const KEY_COMMAND_POLL: Duration = Duration::from_millis(5);

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
    /// The command that fetches the master key (from a KMS) did not print one: it could not
    /// be started, it failed, or it ran past its timeout.
    #[error("the master key command `{program}` {reason}")]
    KeyCommand {
        /// The program (the command's first word; the arguments are not shown, since they
        /// may carry a token).
        program: String,
        /// What went wrong, with the command's standard error when it wrote any.
        reason: String,
    },
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
        match MasterKey::load(path) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
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
            other => other,
        }
    }

    /// Reads an existing key file (64 hex characters); one that other users can read is
    /// refused. Unlike [`MasterKey::load_or_create`], a missing file is an error: a key named
    /// by path in a configuration must not be silently replaced by a new one.
    pub fn load(path: &Path) -> Result<MasterKey, Error> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?);
        check_private(path)?;
        MasterKey::from_hex(&text, &path.display().to_string())
    }

    /// The key printed on the standard output of the command `argv` (program, then its
    /// arguments; no shell is involved), as 64 hex characters with optional surrounding white
    /// space: how an operator plugs in a KMS or a secret manager. The command gets no
    /// standard input and inherits the environment. It must exit with status 0 within
    /// `timeout` ([`KEY_COMMAND_TIMEOUT`] is the usual value), else it is killed and
    /// [`Error::KeyCommand`] says why, quoting its standard error.
    pub fn from_command(argv: &[String], timeout: Duration) -> Result<MasterKey, Error> {
        let Some(program) = argv.first() else {
            return Err(Error::KeyCommand {
                program: String::new(),
                reason: "is empty: give the program and its arguments".into(),
            });
        };
        let fail = |reason: String| Error::KeyCommand {
            program: program.clone(),
            reason,
        };
        let mut child = Command::new(program)
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("could not be started: {e}")))?;
        // Read both pipes on their own threads so a command that fills one while we wait on
        // the other cannot deadlock, and so the deadline below bounds the reads too: a
        // grandchild that keeps a pipe open after the command exits must not hang start-up.
        let (out_tx, out_rx) = mpsc::channel();
        let (err_tx, err_rx) = mpsc::channel();
        // Both unwraps: the pipes were requested as `Stdio::piped()` just above.
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        std::thread::spawn(move || {
            let _ = out_tx.send(read_capped(stdout));
        });
        std::thread::spawn(move || {
            let _ = err_tx.send(read_capped(stderr));
        });
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!(
                        "did not finish within {} s and was killed",
                        timeout.as_secs_f64()
                    )));
                }
                Ok(None) => std::thread::sleep(KEY_COMMAND_POLL),
                Err(e) => return Err(fail(format!("could not be waited for: {e}"))),
            }
        };
        let remaining = || deadline.saturating_duration_since(Instant::now());
        let stderr = err_rx.recv_timeout(remaining()).unwrap_or_default();
        let excerpt =
            String::from_utf8_lossy(&stderr[..stderr.len().min(KEY_COMMAND_STDERR_QUOTED)])
                .trim()
                .to_string();
        let with_stderr = |what: String| {
            if excerpt.is_empty() {
                what
            } else {
                format!("{what}; it wrote: {excerpt}")
            }
        };
        if !status.success() {
            return Err(fail(with_stderr(format!("failed ({status})"))));
        }
        let stdout = out_rx
            .recv_timeout(remaining())
            .map_err(|_| fail("exited but kept its output open past the timeout".into()))?;
        let text = std::str::from_utf8(&stdout).map_err(|_| {
            fail(with_stderr(format!(
                "printed something that is not {} hex characters",
                KEY_LEN * 2
            )))
        })?;
        MasterKey::from_hex(text, &format!("the output of the command `{program}`"))
    }

    /// A fingerprint of the key: [`FINGERPRINT_LEN`] bytes of a domain-separated SHA-256 of
    /// it. It identifies the key (stored beside values sealed under it, it tells a wrong key
    /// from an altered value) and reveals nothing usable about it: the key is 256 random bits,
    /// and SHA-256 is one-way.
    pub fn fingerprint(&self) -> [u8; FINGERPRINT_LEN] {
        let mut h = Sha256::new();
        h.update(FINGERPRINT_DOMAIN);
        h.update(&self.0[..]);
        let digest = h.finalize();
        let mut out = [0u8; FINGERPRINT_LEN];
        out.copy_from_slice(&digest[..FINGERPRINT_LEN]);
        out
    }

    /// A 256-bit key for one purpose, derived from the master key: HMAC-SHA256 keyed by the
    /// master key over [`DERIVE_DOMAIN`] and `purpose`. Every process with the master key
    /// derives the same key (the audit log's signing key, for one), so no second secret has
    /// to be stored or shared; different purposes give unrelated keys, and a derived key
    /// reveals nothing about the master key (HMAC is a PRF).
    pub fn derive(&self, purpose: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
        use hmac::Mac;
        // HMAC takes a key of any length; a 32-byte key cannot be refused.
        let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.0[..])
            .expect("HMAC accepts any key length");
        mac.update(DERIVE_DOMAIN);
        mac.update(purpose);
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
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

/// Everything `r` yields up to [`KEY_COMMAND_OUTPUT_MAX`] bytes, kept in wiped memory since it
/// may be the key. A read error ends the read: the caller judges what arrived.
fn read_capped(r: impl Read) -> Zeroizing<Vec<u8>> {
    let mut buf = Zeroizing::new(Vec::new());
    let _ = r.take(KEY_COMMAND_OUTPUT_MAX as u64).read_to_end(&mut buf);
    buf
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

    /// HMAC-SHA256 under 32 bytes of 0x0f over the domain and `audit-signing`, computed
    /// independently (Python's `hmac` module).
    const PINNED_DERIVATION: &str =
        "41615457b01b74bd189e82a18cbae5ccf9659e2641c0ff6f7eabb8d658725378";

    #[test]
    fn derived_keys_are_stable_per_purpose_and_key() {
        let k = MasterKey::generate().unwrap();
        let same = MasterKey::from_hex(&k.to_hex(), "test").unwrap();
        assert_eq!(*k.derive(b"audit"), *same.derive(b"audit"));
        assert_ne!(*k.derive(b"audit"), *k.derive(b"other"));
        let other = MasterKey::generate().unwrap();
        assert_ne!(*k.derive(b"audit"), *other.derive(b"audit"));
        // Pinned so the
        // derivation can never change silently: every signed audit head depends on it.
        let fixed = MasterKey::from_hex(&"0f".repeat(32), "test").unwrap();
        assert_eq!(
            hex::encode(*fixed.derive(b"audit-signing")),
            PINNED_DERIVATION
        );
    }

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
            assert!(matches!(
                MasterKey::load(&path),
                Err(Error::InsecureKeyFile { .. })
            ));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            MasterKey::load_or_create(&path).unwrap();
            assert_eq!(&*MasterKey::load(&path).unwrap().to_hex(), &"ab".repeat(32));
        }
        // `load` never creates.
        let missing = dir.path().join("absent.key");
        assert!(matches!(MasterKey::load(&missing), Err(Error::Io { .. })));
        assert!(!missing.exists());
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn key_from_a_command() {
        let k = MasterKey::generate().unwrap();
        let got = MasterKey::from_command(
            &sh(&format!("echo '  {}  '", &*k.to_hex())),
            KEY_COMMAND_TIMEOUT,
        )
        .unwrap();
        assert_eq!(got.to_hex(), k.to_hex());
        assert_eq!(got.fingerprint(), k.fingerprint());
    }

    #[test]
    fn key_command_failures_are_named() {
        let t = Duration::from_secs(5);
        // Exit status, with the command's own complaint quoted.
        let err =
            MasterKey::from_command(&sh("echo 'kms: access denied' >&2; exit 3"), t).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::KeyCommand { .. }), "{msg}");
        assert!(
            msg.contains("`sh`") && msg.contains("exit status: 3"),
            "{msg}"
        );
        assert!(msg.contains("kms: access denied"), "{msg}");
        // Not a key.
        let err = MasterKey::from_command(&sh("echo not-a-key"), t).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidKey { origin } if origin.contains("command `sh`")),
            "{err}"
        );
        // Missing program; empty command.
        let err =
            MasterKey::from_command(&["/nonexistent/safeguard-kms".to_string()], t).unwrap_err();
        assert!(err.to_string().contains("could not be started"), "{err}");
        assert!(matches!(
            MasterKey::from_command(&[], t),
            Err(Error::KeyCommand { .. })
        ));
        // A hung command is killed at the deadline, even when a grandchild holds its output.
        let start = Instant::now();
        let err = MasterKey::from_command(
            &sh("sleep 30 & echo started; sleep 30"),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("did not finish within 0.3 s"),
            "{err}"
        );
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn fingerprints_identify_keys_without_being_them() {
        let a = MasterKey::generate().unwrap();
        let b = MasterKey::generate().unwrap();
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert!(!a.to_hex().contains(&hex::encode(a.fingerprint())));
        // Pinned, so a change of derivation (which would make every stored fingerprint read
        // as "wrong key") cannot pass unnoticed.
        // (Python: sha256(b"safeguard-seal master key fingerprint v1\0" + bytes(32)), first
        // 16 bytes.)
        let zero = MasterKey::from_hex(&"00".repeat(KEY_LEN), "t").unwrap();
        assert_eq!(
            hex::encode(zero.fingerprint()),
            "c1a9233205bf35f398c1e7c0c9d61407"
        );
    }
}
