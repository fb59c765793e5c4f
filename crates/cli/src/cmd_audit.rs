//! `safeguard audit`: the tamper-evident audit log. `export` writes the whole log with its
//! signed tree heads; `verify` checks an export offline with only the public key, naming the
//! first altered entry; `key` prints that public key.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use safeguard_engine::audit::{signing_key, Action, Auditor};
use safeguard_store::Store;

use crate::cmd_serve::DataDirArg;

/// `safeguard audit ...`
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Write the whole log (entries, every signed head, and a fresh head over everything) as
    /// JSON Lines. Recorded as a `vault_export` of the audit log.
    Export(ExportArgs),
    /// Check an export offline: every entry's hash, the sequence, and every signed head under
    /// the public key. Exit 0 when it verifies; 1, naming the first bad entry, when not.
    Verify(VerifyArgs),
    /// Print the log's Ed25519 public key (64 hex characters), for `audit verify --key`.
    Key(KeyArgs),
}

/// Arguments of `safeguard audit export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Write here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataDirArg,
}

/// Arguments of `safeguard audit verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The export file.
    pub file: PathBuf,
    /// The log's public key, 64 hex characters (`safeguard audit key`, or `public_key` in
    /// `GET /v1/audit/head`).
    #[arg(long)]
    pub key: String,
}

/// Arguments of `safeguard audit key`.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    #[command(flatten)]
    pub data: DataDirArg,
}

/// The audit log of a data directory's store, signing with the key derived from the
/// instance's master key ($SAFEGUARD_MASTER_KEY, else the key file in the data directory,
/// as the server finds it).
pub fn auditor(data: &DataDirArg, store: Arc<dyn Store>) -> anyhow::Result<Auditor> {
    let env = std::env::var(safeguard_seal::ENV_VAR).ok();
    let dir = crate::cmd_serve::data_dir(data.data_dir.as_deref());
    // With PostgreSQL the data directory may be a stray default: never create a key file
    // there, which would sign with a key no server has.
    if env.is_none() && data.store.is_some() && !dir.join(safeguard_seal::KEY_FILE).exists() {
        anyhow::bail!(
            "no master key: set {} to the instance's key (the audit log's signing key is \
             derived from it)",
            safeguard_seal::ENV_VAR
        );
    }
    let key = safeguard_seal::MasterKey::resolve(env.as_deref(), &dir)
        .context("the master key (the audit log's signing key is derived from it)")?;
    Ok(Auditor::new(store, signing_key(&key))?)
}

/// Records an action done from the command line; a failure is a warning (the action is
/// done and cannot be undone by failing now).
pub fn record(
    data: &DataDirArg,
    store: Arc<dyn Store>,
    action: Action,
    object: &str,
    detail: &str,
) {
    let out = auditor(data, store).and_then(|a| Ok(a.record("cli", action, object, detail)?));
    if let Err(e) = out {
        eprintln!("warning: not recorded in the audit log: {e:#}");
    }
}

/// Runs an `audit` subcommand.
pub fn run(cmd: &AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Export(a) => {
            let store: Arc<dyn Store> = Arc::from(a.data.open()?);
            let auditor = auditor(&a.data, store)?;
            auditor.record("cli", Action::VaultExport, "audit_log", "audit export")?;
            let head = match &a.out {
                Some(path) => {
                    let staged = crate::output::staged_file(path)?;
                    let mut w = BufWriter::new(staged.as_file());
                    let head = auditor.export(&mut w)?;
                    w.flush()?;
                    drop(w);
                    crate::output::commit_staged(staged, path)?;
                    head
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut w = BufWriter::new(stdout.lock());
                    let head = auditor.export(&mut w)?;
                    w.flush()?;
                    head
                }
            };
            eprintln!(
                "exported {} entries; head root {}; public key {}",
                head.head.size,
                hex::encode(head.head.root),
                auditor.verifying_key().to_hex()
            );
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify(a) => verify(&a.file, &a.key),
        AuditCommand::Key(a) => {
            let store: Arc<dyn Store> = Arc::from(a.data.open()?);
            println!("{}", auditor(&a.data, store)?.verifying_key().to_hex());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn verify(file: &Path, key: &str) -> anyhow::Result<ExitCode> {
    let key = safeguard_audit::VerifyingKey::from_hex(key.trim())
        .context("--key must be the log's public key, 64 hex characters")?;
    let f = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    match safeguard_audit::verify_export(BufReader::new(f), &key) {
        Ok(log) => {
            let h = log.latest_head();
            println!(
                "verified: {} entries, {} signed heads; latest head size {} root {} at {} ms",
                log.size(),
                log.heads().len(),
                h.head.size,
                hex::encode(h.head.root),
                h.head.timestamp_ms
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("NOT VERIFIED: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
