//! `safeguard report`: reporting set-up. `ncmec-credentials` stores the CyberTipline
//! account's credentials sealed with the master key in the store, where the server reads
//! them when it files (docs/reporting.md, "Filing to NCMEC"). The password is read from
//! standard input, never from a flag (flags show in `ps` and shell history), and never
//! printed.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::cmd_serve::DataDirArg;

/// `safeguard report` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Store the NCMEC CyberTipline account (user name here, password on standard input),
    /// sealed with the master key.
    NcmecCredentials(NcmecCredentialsArgs),
}

/// Arguments of `safeguard report ncmec-credentials`.
#[derive(Debug, clap::Args)]
pub struct NcmecCredentialsArgs {
    /// The CyberTipline account's user name.
    #[arg(long)]
    pub username: String,
    /// The master key file, when the server's `[secrets] master_key_file` names one
    /// [default: $SAFEGUARD_MASTER_KEY, else the key file in the data directory].
    #[arg(long)]
    pub master_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataDirArg,
}

/// Runs `safeguard report`.
pub fn run(c: &ReportCommand) -> anyhow::Result<ExitCode> {
    match c {
        ReportCommand::NcmecCredentials(a) => ncmec_credentials(a),
    }
}

fn ncmec_credentials(a: &NcmecCredentialsArgs) -> anyhow::Result<ExitCode> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the password from standard input")?;
    // The first line, without its line ending (a password may hold spaces).
    let password = input.lines().next().unwrap_or("");
    if password.is_empty() {
        bail!("no password on standard input (give it as the first line)");
    }
    let data_dir = a
        .data
        .data_dir
        .clone()
        .or_else(|| std::env::var_os("SAFEGUARD_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| safeguard_server::config::DEFAULT_DATA_DIR.into());
    let store = a.data.open()?;
    let env = std::env::var("SAFEGUARD_MASTER_KEY").ok();
    let key = safeguard_server::reports::master_key(
        env.as_deref(),
        a.master_key_file.as_deref(),
        &data_dir,
    )
    .map_err(anyhow::Error::msg)
    .context("the master key")?;
    safeguard_server::reports::store_ncmec_credentials(store.as_ref(), &key, &a.username, password)
        .map_err(anyhow::Error::msg)?;
    eprintln!(
        "stored the NCMEC credentials of {} (sealed with the master key)",
        a.username
    );
    Ok(ExitCode::SUCCESS)
}
