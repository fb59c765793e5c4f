//! A server over a SQLite file, and a second store handle on the same file: what a CLI
//! command (`safeguard keys revoke`, `safeguard bank import`) running beside the server sees.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use safeguard_server::config::Config;
use safeguard_server::AppState;
use safeguard_store::{SqliteOptions, SqliteStore, Store};

use crate::common::{TestServer, ADMIN_KEY};

/// A directory deleted on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p =
            std::env::temp_dir().join(format!("safeguard-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The server, the other process's store handle, and the directory holding the database.
pub struct Shared {
    pub server: TestServer,
    pub other: Arc<dyn Store>,
    pub dir: TempDir,
}

pub async fn shared_db(tag: &str) -> Shared {
    shared_db_with(tag, |_| {}).await
}

/// [`shared_db`] with the configuration changed by `edit` (its data directory is the
/// temporary directory).
pub async fn shared_db_with(tag: &str, edit: impl FnOnce(&mut Config)) -> Shared {
    let dir = TempDir::new(tag);
    let db = dir.0.join("safeguard.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&SqliteOptions::new(&db)).unwrap());
    let mut config = Config {
        data_dir: dir.0.clone(),
        ..Config::default()
    };
    edit(&mut config);
    let state = AppState::new(store.clone(), config, Some(ADMIN_KEY)).unwrap();
    safeguard_server::load_engine(state.clone(), None)
        .await
        .unwrap();
    let other: Arc<dyn Store> = Arc::new(SqliteStore::open(&SqliteOptions::new(&db)).unwrap());
    Shared {
        server: TestServer {
            state,
            store,
            _data: None,
        },
        other,
        dir,
    }
}

/// Polls `done` every 10 ms until it holds or `deadline` passes; returns how long it took,
/// or `None` on timeout.
pub async fn within<F, Fut>(deadline: Duration, mut done: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if done().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
