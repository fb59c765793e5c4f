//! `safeguard exchange`: the configured hash-sharing exchanges, their stored state, and a run
//! by hand (into the same data directory the server uses).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use safeguard_server::config::Config;
use safeguard_store::Store;

use crate::cmd_serve::{open_any_store, DataDirArg};

/// `safeguard exchange ...`
#[derive(Debug, clap::Subcommand)]
pub enum ExchangeCommand {
    /// List the configured exchanges with their bank, last success and last error.
    List(ExchangeArgs),
    /// One exchange's full state (checkpoint included) as JSON.
    Status(NamedArgs),
    /// Run one exchange now until it catches up (or fails), and print the run's report.
    /// Stop the server first, or use `POST /v1/exchanges/{name}/run` instead, so that two
    /// runs of one exchange never overlap.
    Run(NamedArgs),
}

/// Where the configuration and the store are.
#[derive(Debug, clap::Args)]
pub struct ExchangeArgs {
    /// The server's TOML configuration file (its `[[exchanges]]` tables).
    #[arg(long, short = 'c', env = "SAFEGUARD_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataDirArg,
}

/// An exchange name and where things are.
#[derive(Debug, clap::Args)]
pub struct NamedArgs {
    /// The exchange's name.
    pub name: String,
    #[command(flatten)]
    pub args: ExchangeArgs,
}

fn load(args: &ExchangeArgs) -> anyhow::Result<(Config, Arc<dyn Store>)> {
    let mut config = Config::load(args.config.as_deref(), |k| std::env::var(k).ok())?;
    if let Some(d) = &args.data.data_dir {
        config.data_dir = d.clone();
    }
    if let Some(s) = &args.data.store {
        config.store = Some(s.clone());
    }
    config.validate()?;
    let store: Arc<dyn Store> = open_any_store(config.store.as_deref(), &config.data_dir)?.into();
    Ok((config, store))
}

fn fmt_ms(ms: Option<i64>) -> String {
    ms.map(|m| safeguard_exchange_time(m / 1000))
        .unwrap_or_else(|| "-".into())
}

fn safeguard_exchange_time(secs: i64) -> String {
    // The server's date formatting, without pulling in a date crate here.
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Runs `safeguard exchange`.
pub fn run(cmd: &ExchangeCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ExchangeCommand::List(args) => {
            let (config, store) = load(args)?;
            if config.exchanges.is_empty() {
                println!("no exchanges configured");
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<20} {:<10} {:<20} {:>9} {:<21} {:<21} LAST ERROR",
                "NAME", "KIND", "BANK", "ENTRIES", "LAST SUCCESS", "LAST ERROR AT"
            );
            for x in &config.exchanges {
                let st = store.exchange_state(&x.name)?;
                println!(
                    "{:<20} {:<10} {:<20} {:>9} {:<21} {:<21} {}",
                    x.name,
                    x.kind.name(),
                    x.bank_name(),
                    st.as_ref().map(|s| s.entries).unwrap_or(0),
                    fmt_ms(st.as_ref().and_then(|s| s.last_success_at)),
                    fmt_ms(st.as_ref().and_then(|s| s.last_error_at)),
                    st.as_ref()
                        .and_then(|s| s.last_error.clone())
                        .unwrap_or_else(|| "-".into()),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ExchangeCommand::Status(n) => {
            let (config, store) = load(&n.args)?;
            let x = config
                .exchanges
                .iter()
                .find(|x| x.name == n.name)
                .with_context(|| format!("exchange {:?} is not configured", n.name))?;
            let st = store.exchange_state(&x.name)?;
            let out = serde_json::json!({
                "name": x.name,
                "kind": x.kind.name(),
                "bank": x.bank_name(),
                "enabled": x.enabled,
                "interval_secs": x.interval_secs,
                "checkpoint": st.as_ref().and_then(|s| s.checkpoint.clone()),
                "entries": st.as_ref().map(|s| s.entries).unwrap_or(0),
                "last_success_at": st.as_ref().and_then(|s| s.last_success_at),
                "last_error": st.as_ref().and_then(|s| s.last_error.clone()),
                "last_error_at": st.as_ref().and_then(|s| s.last_error_at),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        ExchangeCommand::Run(n) => {
            let (config, store) = load(&n.args)?;
            let x = config
                .exchanges
                .iter()
                .find(|x| x.name == n.name)
                .with_context(|| format!("exchange {:?} is not configured", n.name))?
                .clone();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            // Each run's bank changes go in the audit log as the server's runs do, by `cli`
            // (who started it), the exchange named in the detail.
            let audit_store = store.clone();
            // The data directory and store the configuration resolved, where the audit log
            // and its signing key live.
            let data = crate::cmd_serve::DataDirArg {
                data_dir: Some(config.data_dir.clone()),
                store: config.store.clone(),
            };
            let report = rt.block_on(async move {
                let engine = tokio::task::spawn_blocking(move || {
                    let engine = Arc::new(safeguard_engine::Engine::open(store)?);
                    safeguard_server::exchanges::ensure_banks(&engine, std::slice::from_ref(&x))?;
                    Ok::<_, safeguard_engine::Error>((engine, x))
                })
                .await?;
                let (engine, x) = engine?;
                // Runs are bounded by `max_pages_per_run`: keep going until caught up.
                loop {
                    let r = safeguard_server::exchanges::run_once(&x, engine.clone()).await;
                    for (action, detail) in safeguard_server::exchanges::run_audit_entries(&r) {
                        crate::cmd_audit::record(
                            &data,
                            audit_store.clone(),
                            action,
                            &format!("bank:{}", x.bank_name()),
                            &format!("{detail} (exchange {})", x.name),
                        );
                    }
                    eprintln!(
                        "{}: {} pages, +{} -{} ({} refreshed)",
                        x.name, r.pages, r.outcome.added, r.outcome.removed, r.outcome.refreshed
                    );
                    if r.caught_up || r.error.is_some() {
                        break anyhow::Ok(r);
                    }
                    // The next run would start from the same checkpoint and do the same.
                    if r.made_no_progress() {
                        anyhow::bail!(
                            "{}: a run applied no page and did not catch up; stopping instead of \
                             running again (is max_pages_per_run 0?)",
                            x.name
                        );
                    }
                }
            })?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(if report.error.is_some() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
