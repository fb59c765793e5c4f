//! `safeguard users`: the review console's people (docs/console.md). Creating or resetting a
//! person prints a one-time setup link: the person opens it, chooses a password and enrols an
//! authenticator app. Nobody else ever knows the password.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use clap::Subcommand;
use safeguard_engine::audit::Action;
use safeguard_store::Store;

use crate::cmd_serve::DataDirArg;

/// How long a setup link works (the console's own setting).
const SETUP_LINK_TTL_MS: i64 = safeguard_server::console::SETUP_LINK_TTL_MS;

/// `safeguard users …`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Creates a person and prints their one-time setup link.
    Create(CreateArgs),
    /// Lists people: name, roles, whether set up, locked or disabled.
    List(ListArgs),
    /// Gives a person a new setup link (lost authenticator, forgotten password): their
    /// password, authenticator and sessions are gone.
    Reset(NameArgs),
    /// Stops a person signing in; their sessions end.
    Disable(NameArgs),
    /// Lets a disabled person sign in again.
    Enable(NameArgs),
}

/// Arguments of `safeguard users create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The person's sign-in name: letters, digits, '.', '_', '-', '@'.
    #[arg(long)]
    pub name: String,
    /// Roles, comma-separated: reviewer, senior, admin, auditor.
    #[arg(long)]
    pub role: String,
    /// The console's address as people reach it, for the printed link.
    #[arg(long, default_value = "http://localhost:5100")]
    pub url: String,
    #[command(flatten)]
    pub data: DataDirArg,
}

/// Arguments naming one person.
#[derive(Debug, clap::Args)]
pub struct NameArgs {
    /// The person's sign-in name.
    #[arg(long)]
    pub name: String,
    /// The console's address as people reach it, for a printed link.
    #[arg(long, default_value = "http://localhost:5100")]
    pub url: String,
    #[command(flatten)]
    pub data: DataDirArg,
}

/// Arguments of `safeguard users list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub data: DataDirArg,
}

fn now_ms() -> i64 {
    safeguard_engine::now_ms()
}

fn link(url: &str, raw: &str) -> String {
    format!("{}/console/setup?token={raw}", url.trim_end_matches('/'))
}

/// Runs a `users` subcommand.
pub fn run(cmd: &UsersCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        UsersCommand::Create(a) => {
            let store: Arc<dyn Store> = Arc::from(a.data.open()?);
            // The console's own rules: the name, the roles, the link's lifetime.
            let (u, raw) =
                safeguard_server::console::create_user(store.as_ref(), &a.name, &a.role, now_ms())
                    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            crate::cmd_audit::record(
                &a.data,
                store,
                Action::ConfigChanged,
                &format!("user:{}", u.id),
                &format!("console account created with roles {}", u.roles),
            );
            println!("created {} ({})", u.name, u.roles);
            println!(
                "one-time setup link (valid {} hours; give it to {} only):",
                SETUP_LINK_TTL_MS / 3_600_000,
                u.name
            );
            println!("{}", link(&a.url, &raw));
            Ok(ExitCode::SUCCESS)
        }
        UsersCommand::List(a) => {
            let store = a.data.open()?;
            let now = now_ms();
            for u in store.users()? {
                let mut flags = Vec::new();
                if u.password_hash.is_none() || u.totp_secret.is_none() {
                    flags.push("setup pending");
                }
                if u.locked_until.is_some_and(|t| t > now) {
                    flags.push("locked");
                }
                if u.disabled {
                    flags.push("disabled");
                }
                println!("{}\t{}\t{}", u.name, u.roles, flags.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        UsersCommand::Reset(a) | UsersCommand::Disable(a) | UsersCommand::Enable(a) => {
            let store: Arc<dyn Store> = Arc::from(a.data.open()?);
            let Some(u) = store.user_by_name(&a.name)? else {
                bail!("no person named {:?}", a.name);
            };
            let now = now_ms();
            match cmd {
                UsersCommand::Reset(_) => {
                    let (_, raw) = safeguard_server::console::reset_user(store.as_ref(), u.id, now)
                        .map_err(|e| anyhow::anyhow!("reset: {}", e.message))?;
                    crate::cmd_audit::record(
                        &a.data,
                        store,
                        Action::ConfigChanged,
                        &format!("user:{}", u.id),
                        "console account reset (new setup link)",
                    );
                    println!("new one-time setup link for {}:", u.name);
                    println!("{}", link(&a.url, &raw));
                }
                _ => {
                    let disable = matches!(cmd, UsersCommand::Disable(_));
                    store.set_user_disabled(u.id, disable, now)?;
                    crate::cmd_audit::record(
                        &a.data,
                        store,
                        Action::ConfigChanged,
                        &format!("user:{}", u.id),
                        if disable {
                            "console account disabled"
                        } else {
                            "console account enabled"
                        },
                    );
                    println!(
                        "{} {}",
                        u.name,
                        if disable { "disabled" } else { "enabled" }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
