//! `safeguard report`: reporting set-up. `ncmec-credentials` stores the CyberTipline
//! account's credentials, and `nca-token` the NCA API's bearer token, sealed with the master
//! key in the store, where the server reads them when it files (docs/reporting.md). The
//! password and the token are read from standard input, never from a flag (flags show in
//! `ps` and shell history), and never printed.

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
    /// Store the NCA API's bearer token (on standard input), sealed with the master key.
    NcaToken(NcaTokenArgs),
}

/// Arguments of `safeguard report nca-token`.
#[derive(Debug, clap::Args)]
pub struct NcaTokenArgs {
    /// The master key file, when the server's `[secrets] master_key_file` names one
    /// [default: $SAFEGUARD_MASTER_KEY, else the key file in the data directory].
    #[arg(long)]
    pub master_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataDirArg,
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
        ReportCommand::NcaToken(a) => nca_token(a),
    }
}

/// The first line of standard input, without its line ending (a password may hold spaces).
fn first_line(what: &str) -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .with_context(|| format!("reading the {what} from standard input"))?;
    let line = input.lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        bail!("no {what} on standard input (give it as the first line)");
    }
    Ok(line)
}

/// The store and the master key the server will open the secret with.
fn store_and_key(
    data: &DataDirArg,
    master_key_file: Option<&std::path::Path>,
) -> anyhow::Result<(Box<dyn safeguard_store::Store>, safeguard_seal::MasterKey)> {
    let data_dir = data
        .data_dir
        .clone()
        .or_else(|| std::env::var_os("SAFEGUARD_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| safeguard_server::config::DEFAULT_DATA_DIR.into());
    let store = data.open()?;
    let env = std::env::var("SAFEGUARD_MASTER_KEY").ok();
    let key = safeguard_server::reports::master_key(env.as_deref(), master_key_file, &data_dir)
        .map_err(anyhow::Error::msg)
        .context("the master key")?;
    Ok((store, key))
}

fn ncmec_credentials(a: &NcmecCredentialsArgs) -> anyhow::Result<ExitCode> {
    let password = first_line("password")?;
    let (store, key) = store_and_key(&a.data, a.master_key_file.as_deref())?;
    safeguard_server::reports::store_ncmec_credentials(
        store.as_ref(),
        &key,
        &a.username,
        &password,
    )
    .map_err(anyhow::Error::msg)?;
    eprintln!(
        "stored the NCMEC credentials of {} (sealed with the master key)",
        a.username
    );
    Ok(ExitCode::SUCCESS)
}

fn nca_token(a: &NcaTokenArgs) -> anyhow::Result<ExitCode> {
    let token = first_line("token")?;
    let (store, key) = store_and_key(&a.data, a.master_key_file.as_deref())?;
    safeguard_server::nca_api::store_nca_token(store.as_ref(), &key, token.trim())
        .map_err(anyhow::Error::msg)?;
    eprintln!("stored the NCA API token (sealed with the master key)");
    Ok(ExitCode::SUCCESS)
}
