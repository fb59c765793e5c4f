//! The vault's configuration: which blob store, where its master key comes from, and the
//! retention periods. Meant to be embedded in the server's TOML file as `[vault]`:
//!
//! ```toml
//! [vault]
//! backend = "s3"                    # "fs" (the default) or "s3"
//! # path = "/srv/safeguard/vault"   # fs only; default <data_dir>/vault
//!
//! [vault.s3]
//! endpoint = "https://s3.eu-west-1.amazonaws.com"
//! bucket = "safeguard-evidence"
//! region = "eu-west-1"
//! prefix = "prod"
//! # access_key_id / secret_access_key: default AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
//!
//! [vault.key]
//! source = "command"                # "instance" (the default), "file", "env" or "command"
//! command = ["/usr/local/bin/kms-unwrap", "--key", "safeguard-vault"]
//! timeout_secs = 10
//!
//! [vault.retention]
//! after_report_days = 366
//! unreported_days = 90
//! ```
//!
//! Unknown fields are refused everywhere, so a misspelt setting is an error at start-up, not
//! a default silently kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use safeguard_seal::MasterKey;
use serde::{Deserialize, Serialize};

use crate::blob::{BlobKey, BlobStore};
use crate::retention::{RetentionPolicy, DAY_SECS};
use crate::{Error, FsBlobStore, Result, S3BlobStore, Vault};

/// Directory of the filesystem backend under the data directory, unless `path` is set.
pub const DEFAULT_FS_DIR: &str = "vault";
/// Default S3 region: the one S3-compatible servers (MinIO, Ceph, moto) accept by default.
pub const DEFAULT_S3_REGION: &str = "us-east-1";
/// Default time limit of one S3 request, seconds: a whole object goes up or down in one
/// request, and the largest object ([`crate::MAX_OBJECT_SIZE`], 512 MiB) needs about
/// 1.7 MiB/s to move within 5 minutes.
pub const DEFAULT_S3_REQUEST_TIMEOUT_SECS: u64 = 300;
/// Shortest retention period accepted, days: a period of 0 would destroy evidence as soon as
/// the sweeper runs, which is never what an operator means.
pub const MIN_RETENTION_DAYS: u32 = 1;
/// Longest retention period accepted, days (100 years): longer is a typo, and keeps the
/// arithmetic far from overflow.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// Which blob store keeps the ciphertexts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaultBackend {
    /// Files under a directory ([`FsBlobStore`]).
    #[default]
    Fs,
    /// S3-compatible object storage ([`S3BlobStore`]).
    S3,
}

/// The vault section of the server's configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaultConfig {
    /// The blob store.
    pub backend: VaultBackend,
    /// Root directory of the `fs` backend; default `<data_dir>/vault`.
    pub path: Option<PathBuf>,
    /// Settings of the `s3` backend; required when `backend = "s3"`.
    pub s3: Option<S3Config>,
    /// Where the master key that wraps the data keys comes from.
    pub key: KeySource,
    /// How long evidence is kept.
    pub retention: RetentionConfig,
}

/// An S3-compatible bucket.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Endpoint URL (`https://…`, or `http://…` with `allow_http`); default AWS's endpoint
    /// for the region.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The bucket; it must exist.
    pub bucket: String,
    /// The region; default [`DEFAULT_S3_REGION`].
    #[serde(default = "default_region")]
    pub region: String,
    /// Key prefix inside the bucket (`/`-separated segments of `A-Z a-z 0-9 . _ -`), so one
    /// bucket can serve several instances.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Access key id; default the `AWS_ACCESS_KEY_ID` variable, else the platform's
    /// credentials (instance profile, web identity).
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Secret access key; default `AWS_SECRET_ACCESS_KEY`. Never printed.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Allow a plain-HTTP endpoint (a server on localhost, tests). Off: credentials and
    /// ciphertexts go over TLS.
    #[serde(default)]
    pub allow_http: bool,
    /// Write with `If-None-Match: *`, so an existing object is never replaced. On by
    /// default; turn it off only for a store that does not support conditional writes (keys
    /// are 128 random bits, so without it an overwrite still never happens in practice).
    #[serde(default = "yes")]
    pub conditional_put: bool,
    /// Time limit of one request, seconds; default [`DEFAULT_S3_REQUEST_TIMEOUT_SECS`].
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
}

fn default_region() -> String {
    DEFAULT_S3_REGION.to_string()
}
fn yes() -> bool {
    true
}
fn default_request_timeout() -> u64 {
    DEFAULT_S3_REQUEST_TIMEOUT_SECS
}

impl S3Config {
    /// Settings for `bucket` at `endpoint` with the defaults for everything else.
    pub fn new(endpoint: Option<String>, bucket: impl Into<String>) -> S3Config {
        S3Config {
            endpoint,
            bucket: bucket.into(),
            region: default_region(),
            prefix: None,
            access_key_id: None,
            secret_access_key: None,
            allow_http: false,
            conditional_put: true,
            request_timeout_secs: DEFAULT_S3_REQUEST_TIMEOUT_SECS,
        }
    }

    /// Checks what can be checked without a network: bucket name, prefix, endpoint scheme,
    /// credentials given in pairs, timeout.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("vault.s3: {m}")));
        if self.bucket.is_empty() {
            return bad("bucket is empty".into());
        }
        if let Some(p) = &self.prefix {
            BlobKey::parse(p).map_err(|e| Error::Config(format!("vault.s3.prefix: {e}")))?;
        }
        if let Some(e) = &self.endpoint {
            if e.starts_with("http://") && !self.allow_http {
                return bad(format!(
                    "endpoint {e} is plain HTTP; use https, or set allow_http = true for a \
                     local server"
                ));
            }
            if !e.starts_with("http://") && !e.starts_with("https://") {
                return bad(format!("endpoint {e} is not an http(s) URL"));
            }
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return bad("give both access_key_id and secret_access_key, or neither".into());
        }
        if self.request_timeout_secs == 0 {
            return bad("request_timeout_secs must be at least 1".into());
        }
        Ok(())
    }

    /// The request time limit.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("allow_http", &self.allow_http)
            .field("conditional_put", &self.conditional_put)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .finish()
    }
}

/// Where the vault's master key comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "lowercase", deny_unknown_fields)]
pub enum KeySource {
    /// The instance's master key, as the rest of the server finds it:
    /// `SAFEGUARD_MASTER_KEY` when set, else `<data_dir>/master.key`, created 0600 on first
    /// use. The default, so a vault needs no configuration to be encrypted.
    #[default]
    Instance,
    /// A key file that must exist (64 hex characters, mode 0600).
    File {
        /// The file.
        path: PathBuf,
    },
    /// An environment variable that must be set (64 hex characters).
    Env {
        /// The variable's name.
        var: String,
    },
    /// A command that prints the key (a KMS client): argv, no shell.
    Command {
        /// Program and arguments.
        command: Vec<String>,
        /// Time limit, seconds; default 30 ([`safeguard_seal::KEY_COMMAND_TIMEOUT`]).
        #[serde(default)]
        timeout_secs: Option<u64>,
    },
}

impl KeySource {
    /// Loads the key. `data_dir` is where the instance key file lives.
    pub fn load(&self, data_dir: &Path) -> Result<MasterKey> {
        Ok(match self {
            KeySource::Instance => MasterKey::resolve(
                std::env::var(safeguard_seal::ENV_VAR).ok().as_deref(),
                data_dir,
            )?,
            KeySource::File { path } => MasterKey::load(path)?,
            KeySource::Env { var } => {
                let value = std::env::var(var).map_err(|_| {
                    Error::Config(format!(
                        "vault.key: the environment variable {var} is not set"
                    ))
                })?;
                MasterKey::from_hex(&value, var)?
            }
            KeySource::Command {
                command,
                timeout_secs,
            } => MasterKey::from_command(
                command,
                timeout_secs
                    .map(Duration::from_secs)
                    .unwrap_or(safeguard_seal::KEY_COMMAND_TIMEOUT),
            )?,
        })
    }

    fn validate(&self) -> Result<()> {
        match self {
            KeySource::Command { command, .. } if command.is_empty() => Err(Error::Config(
                "vault.key.command is empty: give the program and its arguments".into(),
            )),
            KeySource::Command {
                timeout_secs: Some(0),
                ..
            } => Err(Error::Config(
                "vault.key.timeout_secs must be at least 1".into(),
            )),
            KeySource::Env { var } if var.is_empty() => {
                Err(Error::Config("vault.key.var is empty".into()))
            }
            _ => Ok(()),
        }
    }
}

/// Retention periods in days (see [`RetentionPolicy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Days an item is kept after its case was reported; default 366 (one year, leap years
    /// included: the US REPORT Act).
    pub after_report_days: u32,
    /// Days an item is kept when its case was never reported; default 90.
    pub unreported_days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        let p = RetentionPolicy::default();
        RetentionConfig {
            after_report_days: (p.after_report.as_secs() / DAY_SECS as u64) as u32,
            unreported_days: (p.unreported.as_secs() / DAY_SECS as u64) as u32,
        }
    }
}

impl RetentionConfig {
    /// The policy these periods describe.
    pub fn policy(&self) -> RetentionPolicy {
        let days = |d: u32| Duration::from_secs(u64::from(d) * DAY_SECS as u64);
        RetentionPolicy {
            after_report: days(self.after_report_days),
            unreported: days(self.unreported_days),
        }
    }

    fn validate(&self) -> Result<()> {
        for (name, d) in [
            ("after_report_days", self.after_report_days),
            ("unreported_days", self.unreported_days),
        ] {
            if !(MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&d) {
                return Err(Error::Config(format!(
                    "vault.retention.{name} = {d}: must be {MIN_RETENTION_DAYS} to \
                     {MAX_RETENTION_DAYS} days"
                )));
            }
        }
        Ok(())
    }
}

impl VaultConfig {
    /// Checks the settings: `s3` present exactly when `backend = "s3"`, and each part valid.
    pub fn validate(&self) -> Result<()> {
        match (self.backend, &self.s3) {
            (VaultBackend::S3, None) => {
                return Err(Error::Config(
                    "backend = \"s3\" needs a [vault.s3] section".into(),
                ))
            }
            (VaultBackend::S3, Some(s3)) => s3.validate()?,
            (VaultBackend::Fs, Some(_)) => {
                return Err(Error::Config(
                    "[vault.s3] is set but backend is \"fs\"; set backend = \"s3\" or remove it"
                        .into(),
                ))
            }
            (VaultBackend::Fs, None) => {}
        }
        if self.backend == VaultBackend::S3 && self.path.is_some() {
            return Err(Error::Config(
                "vault.path is for backend = \"fs\" only".into(),
            ));
        }
        self.key.validate()?;
        self.retention.validate()
    }

    /// Root directory of the filesystem backend.
    pub fn fs_root(&self, data_dir: &Path) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| data_dir.join(DEFAULT_FS_DIR))
    }

    /// Opens the configured blob store (creating the directory of the filesystem backend).
    pub fn blob_store(&self, data_dir: &Path) -> Result<Arc<dyn BlobStore>> {
        self.validate()?;
        Ok(match (self.backend, &self.s3) {
            (VaultBackend::S3, Some(s3)) => Arc::new(S3BlobStore::new(s3)?),
            _ => Arc::new(FsBlobStore::new(self.fs_root(data_dir))?),
        })
    }

    /// The vault: the configured blob store and the master key from the configured source.
    pub fn open(&self, data_dir: &Path) -> Result<Vault> {
        let blobs = self.blob_store(data_dir)?;
        Ok(Vault::new(blobs, self.key.load(data_dir)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<VaultConfig, String> {
        let c: VaultConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn an_empty_section_is_the_encrypted_filesystem_default() {
        let c = parse("").unwrap();
        assert_eq!(c, VaultConfig::default());
        assert_eq!(c.backend, VaultBackend::Fs);
        assert_eq!(c.key, KeySource::Instance);
        assert_eq!(
            c.fs_root(Path::new("/data")),
            Path::new("/data").join("vault")
        );
        assert_eq!(c.retention.policy(), RetentionPolicy::default());
        assert_eq!(c.retention.after_report_days, 366);
        assert_eq!(c.retention.unreported_days, 90);
    }

    #[test]
    fn a_full_s3_section_parses() {
        let c = parse(
            r#"
            backend = "s3"
            [s3]
            endpoint = "http://127.0.0.1:9000"
            bucket = "evidence"
            region = "eu-west-1"
            prefix = "prod/vault"
            access_key_id = "AKIDEXAMPLE"
            secret_access_key = "s3cr3t-value"
            allow_http = true
            request_timeout_secs = 60
            [key]
            source = "command"
            command = ["kms", "unwrap"]
            timeout_secs = 5
            [retention]
            after_report_days = 400
            unreported_days = 30
            "#,
        )
        .unwrap();
        let s3 = c.s3.as_ref().unwrap();
        assert_eq!(s3.bucket, "evidence");
        assert!(s3.conditional_put);
        assert_eq!(s3.request_timeout(), Duration::from_secs(60));
        assert!(!format!("{s3:?}").contains("s3cr3t"));
        assert_eq!(
            c.key,
            KeySource::Command {
                command: vec!["kms".into(), "unwrap".into()],
                timeout_secs: Some(5)
            }
        );
        assert_eq!(
            c.retention.policy().unreported,
            Duration::from_secs(30 * 86_400)
        );
    }

    #[test]
    fn mistakes_are_refused_with_the_setting_named() {
        for (text, needle) in [
            ("backnd = \"fs\"", "unknown field"),
            ("backend = \"ftp\"", "unknown variant"),
            (
                "[key]\nsource = \"file\"\npath = \"/k\"\nmode = 1",
                "unknown field",
            ),
            ("[key]\nsource = \"vault\"", "unknown variant"),
            (
                "[key]\nsource = \"command\"\ncommand = []",
                "vault.key.command is empty",
            ),
            (
                "[retention]\nunreported_days = 0",
                "vault.retention.unreported_days",
            ),
            (
                "[retention]\nafter_report_days = 99999",
                "after_report_days",
            ),
            ("[retention]\nforever = true", "unknown field"),
            ("backend = \"s3\"", "needs a [vault.s3] section"),
            ("[s3]\nbucket = \"b\"", "backend is \"fs\""),
            (
                "backend = \"s3\"\n[s3]\nbucket = \"b\"\nregoin = \"x\"",
                "unknown field",
            ),
            (
                "backend = \"s3\"\n[s3]\nbucket = \"b\"\nendpoint = \"http://x\"",
                "allow_http",
            ),
            (
                "backend = \"s3\"\n[s3]\nbucket = \"b\"\naccess_key_id = \"a\"",
                "neither",
            ),
            (
                "backend = \"s3\"\n[s3]\nbucket = \"b\"\nprefix = \"../x\"",
                "prefix",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn key_sources_load() {
        let dir = tempfile::tempdir().unwrap();
        let k = MasterKey::generate().unwrap();
        let path = dir.path().join("vault.key");
        {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            std::io::Write::write_all(&mut opts.open(&path).unwrap(), k.to_hex().as_bytes())
                .unwrap();
        }
        let fp = |s: &KeySource| s.load(dir.path()).unwrap().fingerprint();
        assert_eq!(fp(&KeySource::File { path: path.clone() }), k.fingerprint());
        let cmd = KeySource::Command {
            command: vec!["sh".into(), "-c".into(), format!("echo {}", &*k.to_hex())],
            timeout_secs: None,
        };
        assert_eq!(fp(&cmd), k.fingerprint());
        let err = KeySource::File {
            path: dir.path().join("missing.key"),
        }
        .load(dir.path())
        .unwrap_err();
        assert!(err.to_string().contains("missing.key"), "{err}");
        let err = KeySource::Env {
            var: "SAFEGUARD_VAULT_TEST_UNSET_VARIABLE".into(),
        }
        .load(dir.path())
        .unwrap_err();
        assert!(err.to_string().contains("is not set"), "{err}");
    }
}
