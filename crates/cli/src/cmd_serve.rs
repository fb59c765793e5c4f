//! `safeguard serve` and `safeguard keys`: the server on its store (SQLite in the data
//! directory, or PostgreSQL with `--store postgres://...`), and API key management.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use safeguard_server::auth::{create_key, Scope};
use safeguard_server::config::{Config, MIN_ADMIN_KEY_LEN};
use safeguard_server::AppState;
#[cfg(feature = "postgres")]
use safeguard_store::{PostgresOptions, PostgresStore};
use safeguard_store::{SqliteOptions, SqliteStore, Store};

/// How long in-flight requests get to finish after a shutdown signal.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(30);

/// File name of the SQLite database inside the data directory.
pub const DB_FILE: &str = "safeguard.db";

/// Arguments of `safeguard serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (unknown keys are rejected).
    #[arg(long, short = 'c', env = "SAFEGUARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:5100].
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Data directory [default: ./safeguard-data]: the SQLite store and index snapshots.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The store, when not SQLite in the data directory: a `postgres://USER@HOST:PORT/DB`
    /// URL shared by any number of `serve` processes [default: $SAFEGUARD_STORE, else the
    /// config's `store`].
    #[arg(long)]
    pub store: Option<String>,
    /// What this process serves: hasher (/h, /v1/hash), matcher (lookups, submissions,
    /// checks), curator (banks, lists, exchanges, keys, rules, cases; runs the schedules) or
    /// all [default: $SAFEGUARD_ROLE, else the config's `role`, else all].
    #[arg(long, value_parser = ["hasher", "matcher", "curator", "all"])]
    pub role: Option<String>,
    /// Development mode: no API keys needed; refuses any non-loopback listen address.
    #[arg(long)]
    pub dev: bool,
}

/// Arguments of `safeguard keys`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create an API key and print it (once: only its hash is stored).
    Create(KeysCreateArgs),
    /// List API keys (ids, names, scopes; never secrets).
    List(DataDirArg),
    /// Revoke an API key by its id.
    Revoke(KeysRevokeArgs),
}

/// Where the store is.
#[derive(Debug, clap::Args)]
pub struct DataDirArg {
    /// Data directory [default: $SAFEGUARD_DATA_DIR or ./safeguard-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A `postgres://USER@HOST:PORT/DB` URL to use instead of SQLite in the data directory
    /// [default: $SAFEGUARD_STORE].
    #[arg(long, env = "SAFEGUARD_STORE", hide_env_values = true)]
    pub store: Option<String>,
}

impl DataDirArg {
    /// Opens the store these arguments name.
    pub fn open(&self) -> anyhow::Result<Box<dyn Store>> {
        open_any_store(self.store.as_deref(), &data_dir(self.data_dir.as_deref()))
    }
}

/// Arguments of `safeguard keys create`.
#[derive(Debug, clap::Args)]
pub struct KeysCreateArgs {
    /// Comma-separated scopes: hash, match, curate, submit, admin, approve, audit.
    #[arg(long, value_delimiter = ',', required = true)]
    pub scopes: Vec<String>,
    /// A label for the key.
    #[arg(long, default_value = "")]
    pub name: String,
    #[command(flatten)]
    pub data: DataDirArg,
}

/// Arguments of `safeguard keys revoke`.
#[derive(Debug, clap::Args)]
pub struct KeysRevokeArgs {
    /// The key id (the 16 hex digits after `sg_`).
    pub key_id: String,
    #[command(flatten)]
    pub data: DataDirArg,
}

/// The data directory: the flag, else `$SAFEGUARD_DATA_DIR`, else the default.
pub fn data_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("SAFEGUARD_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| safeguard_server::config::DEFAULT_DATA_DIR.into())
}

/// Opens (creating if needed) the store in `dir`. The directory is private to the user: it
/// holds hash lists and key hashes.
pub fn open_store(dir: &Path) -> anyhow::Result<SqliteStore> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict permissions of {}", dir.display()))?;
    }
    SqliteStore::open(&SqliteOptions::new(dir.join(DB_FILE)))
        .with_context(|| format!("cannot open the store in {}", dir.display()))
}

/// Opens the store: PostgreSQL when `store` is a `postgres://` URL, else SQLite in `dir`
/// (also when `store` is empty). Any other value is refused rather than guessed at.
pub fn open_any_store(store: Option<&str>, dir: &Path) -> anyhow::Result<Box<dyn Store>> {
    match store.filter(|s| !s.is_empty()) {
        None => Ok(Box::new(open_store(dir)?)),
        Some(url) => open_postgres(url),
    }
}

#[cfg(feature = "postgres")]
fn open_postgres(url: &str) -> anyhow::Result<Box<dyn Store>> {
    anyhow::ensure!(
        safeguard_store::is_postgres_url(url),
        "--store must be a postgres:// or postgresql:// URL (SQLite is the default, in the \
         data directory); got {:?}",
        safeguard_store::redact(url)
    );
    let store = PostgresStore::open(&PostgresOptions::new(url)).with_context(|| {
        format!(
            "cannot open the PostgreSQL store at {}",
            safeguard_store::redact(url)
        )
    })?;
    Ok(Box::new(store))
}

#[cfg(not(feature = "postgres"))]
fn open_postgres(_url: &str) -> anyhow::Result<Box<dyn Store>> {
    anyhow::bail!("this build has no PostgreSQL support (feature `postgres` is off)")
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (in tests) is harmless: the first subscriber stays.
    let _ = if config.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// Runs `safeguard serve`.
pub fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(args.config.as_deref(), |k| std::env::var(k).ok())?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(d) = &args.data_dir {
        config.data_dir = d.clone();
    }
    if let Some(s) = &args.store {
        config.store = Some(s.clone());
    }
    if let Some(r) = &args.role {
        config.role = safeguard_server::config::Role::parse(r)
            .ok_or_else(|| anyhow::anyhow!("--role {r:?}: not a role"))?;
    }
    if args.dev {
        config.dev = true;
    }
    config.validate()?;
    init_logging(&config);

    let admin_key = std::env::var("SAFEGUARD_ADMIN_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    if let Some(k) = &admin_key {
        anyhow::ensure!(
            k.chars().count() >= MIN_ADMIN_KEY_LEN,
            "SAFEGUARD_ADMIN_KEY is shorter than {MIN_ADMIN_KEY_LEN} characters: refusing an \
             unsafe admin key (generate one with: openssl rand -hex 32)"
        );
    }
    let store: Arc<dyn Store> = open_any_store(config.store.as_deref(), &config.data_dir)?.into();
    if config.store.is_some() {
        // Index snapshots still go to the data directory.
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
    }
    if !config.dev && admin_key.is_none() {
        let usable = store
            .list_api_keys()?
            .iter()
            .any(|k| k.revoked_at.is_none());
        anyhow::ensure!(
            usable,
            "no API key exists, so nobody could use this server. Create one with \
             `safeguard keys create --scopes admin --data-dir {}`, or set SAFEGUARD_ADMIN_KEY, \
             or run with --dev (loopback only, no authentication)",
            config.data_dir.display()
        );
    }
    let listen = config.listen;
    let data_dir = config.data_dir.clone();
    let state = AppState::new(store, config, admin_key.as_deref())
        .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
    // Fail closed: a server that cannot confine its decoders does not start (rather than
    // failing every upload, or silently decoding in-process).
    if let Some(pool) = state.0.decoder.pool() {
        pool.check().map_err(|e| {
            anyhow::anyhow!("{e} (set decode.sandbox = false to decode in-process, less safe)")
        })?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(address = %listen, "listening");
        let loading = state.clone();
        let snapshot_dir = data_dir.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            match safeguard_server::load_engine(loading, Some(snapshot_dir)).await {
                Ok(engine) => {
                    let st = engine.index_status();
                    tracing::info!(
                        seconds = start.elapsed().as_secs_f64(),
                        entries = ?st.entries,
                        memory_bytes = st.bytes,
                        "indexes ready"
                    );
                }
                Err(e) => {
                    // Without indexes the server cannot match; stopping is safer than
                    // answering 503 forever.
                    tracing::error!(error = %e, "cannot load the indexes; exiting");
                    std::process::exit(1);
                }
            }
        });
        let fatal = state.clone();
        let stop = async move {
            tokio::select! {
                _ = shutdown_signal() => {},
                _ = fatal.0.fatal.raised() => {},
            }
        };
        safeguard_server::serve(listener, state.clone(), stop, SHUTDOWN_DRAIN).await?;
        if let Some(reason) = state.0.fatal.reason() {
            // Indexes that fell behind a pruned feed: no snapshot of them (it would be
            // refused); the next start rebuilds.
            tracing::error!(reason, "stopped");
            return anyhow::Ok(ExitCode::FAILURE);
        }
        // A snapshot at shutdown makes the next start fast; without one (a crash), the next
        // start uses the older snapshot plus the change feed, or rebuilds.
        if let Some(engine) = state.0.engine.get().cloned() {
            let dir = data_dir.clone();
            let start = Instant::now();
            let st = state.clone();
            match tokio::task::spawn_blocking(move || {
                let seq = safeguard_server::save_snapshot(&engine, &dir)?;
                // The follower record now names the snapshot, so the feed it needs to
                // replay at the next start is kept for feed.follower_ttl_secs.
                st.0.snapshot_seq.set(seq);
                if let Err(e) = safeguard_server::feed::report(&st, &engine) {
                    tracing::warn!(error = %e, "cannot record the snapshot's feed position");
                }
                Ok::<_, String>(seq)
            })
            .await
            {
                Ok(Ok(seq)) => tracing::info!(
                    seq,
                    seconds = start.elapsed().as_secs_f64(),
                    "index snapshot written"
                ),
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot write the index snapshot"),
                Err(e) => tracing::warn!(error = %e, "snapshot task failed"),
            }
        }
        tracing::info!("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// Runs `safeguard keys ...`.
pub fn run_keys(cmd: &KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::Create(a) => {
            let mut scopes = Vec::new();
            for s in &a.scopes {
                match Scope::parse(s.trim()) {
                    Some(sc) if sc != Scope::Any => scopes.push(sc),
                    _ => anyhow::bail!(
                        "unknown scope {s:?}: use hash, match, curate, submit, admin, approve or audit"
                    ),
                }
            }
            let store: std::sync::Arc<dyn Store> = std::sync::Arc::from(a.data.open()?);
            let k = create_key(store.as_ref(), &a.name, &scopes)?;
            let names: Vec<&str> = k.scopes.iter().map(|s| s.name()).collect();
            crate::cmd_audit::record(
                &a.data,
                store,
                safeguard_engine::audit::Action::KeyCreated,
                &format!("key:{}", k.key_id),
                &format!("scopes {}", names.join(",")),
            );
            eprintln!(
                "created key {} with scopes {}; it is shown once, store it now:",
                k.key_id,
                k.scopes
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            println!("{}", k.key);
        }
        KeysCommand::List(a) => {
            let store = a.open()?;
            for k in store.list_api_keys()? {
                println!(
                    "{}\t{}\t{}\t{}",
                    k.key_id,
                    k.scopes.join(","),
                    if k.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    },
                    k.name
                );
            }
        }
        KeysCommand::Revoke(a) => {
            let store: std::sync::Arc<dyn Store> = std::sync::Arc::from(a.data.open()?);
            store.revoke_api_key(&a.key_id)?;
            crate::cmd_audit::record(
                &a.data,
                store,
                safeguard_engine::audit::Action::KeyRevoked,
                &format!("key:{}", a.key_id.to_ascii_lowercase()),
                "",
            );
            eprintln!("revoked {}", a.key_id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_data_directory_is_private_to_its_user() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let tmp = tempfile::tempdir().unwrap();
        // Created by the server: 0700.
        let fresh = tmp.path().join("a/b");
        open_store(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        assert!(fresh.join(DB_FILE).is_file());
        // An existing directory anyone could read is tightened.
        let open = tmp.path().join("shared");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        open_store(&open).unwrap();
        assert_eq!(mode(&open), 0o700);
    }
}
