//! Test support for the PostgreSQL store (features `postgres` and `test-support`): a fresh,
//! private database per test, dropped when the test ends.
//!
//! The server is named by `SAFEGUARD_TEST_PG` (a URL to a database the tests may connect to
//! in order to create and drop others; default [`DEFAULT_TEST_PG`]). Without a reachable
//! server, [`TestDatabase::create`] prints why the test is skipped and returns `None`, except
//! under `CI=true`, where it panics: CI must never pass by skipping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_postgres::NoTls;

use crate::{PostgresOptions, PostgresStore};

/// Where the tests look for a server when `SAFEGUARD_TEST_PG` is not set.
pub const DEFAULT_TEST_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long the tests wait for the server to answer before calling it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The server URL the tests use.
pub fn admin_url() -> String {
    std::env::var("SAFEGUARD_TEST_PG").unwrap_or_else(|_| DEFAULT_TEST_PG.to_owned())
}

/// `url` with its database name replaced by `dbname` (URL or `key=value` form).
pub fn with_dbname(url: &str, dbname: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return format!("{url} dbname={dbname}");
    };
    let after = scheme_end + 3;
    let (head, query) = match url[after..].find('?') {
        Some(q) => url.split_at(after + q),
        None => (url, ""),
    };
    let authority_end = head[after..].find('/').map_or(head.len(), |i| after + i);
    format!("{}/{dbname}{query}", &head[..authority_end])
}

/// Runs `sql` on the server at `url`, on a thread of its own (so it works from any context,
/// async or not) with a throwaway runtime.
fn run_admin(url: &str, sql: &str) -> Result<(), String> {
    let url = url.to_owned();
    let sql = sql.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let mut config: tokio_postgres::Config = url
                .parse()
                .map_err(|e: tokio_postgres::Error| e.to_string())?;
            config.connect_timeout(CONNECT_TIMEOUT);
            let (client, connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
            let conn = tokio::spawn(connection);
            let out = client.batch_execute(&sql).await.map_err(|e| e.to_string());
            drop(client);
            let _ = conn.await;
            out
        })
    })
    .join()
    .map_err(|_| "admin thread panicked".to_owned())?
}

/// A database created for one test and dropped (with any connections still open to it)
/// when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    admin: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates `sg_test_<unique>` on the test server. `None` (after printing `SKIPPED: ...`)
    /// when the server is unreachable; panics instead under `CI=true`.
    pub fn create() -> Option<TestDatabase> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let admin = admin_url();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let name = format!(
            "sg_test_{}_{}_{nanos:x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        // The name is made of [a-z0-9_] only, so it needs no quoting.
        if let Err(e) = run_admin(&admin, &format!("CREATE DATABASE {name}")) {
            let shown = crate::redact(&admin);
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "PostgreSQL not reachable at {shown}: {e} (CI=true: the PostgreSQL tests \
                     must run; set SAFEGUARD_TEST_PG=postgres://USER@HOST:PORT/DB)"
                );
            }
            eprintln!(
                "SKIPPED: PostgreSQL not reachable at {shown}: {e} \
                 (set SAFEGUARD_TEST_PG=postgres://USER@HOST:PORT/DB)"
            );
            return None;
        }
        let url = with_dbname(&admin, &name);
        Some(TestDatabase { admin, name, url })
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Opens (and migrates) a store on the database. Panics on failure: test support.
    pub fn open(&self) -> PostgresStore {
        PostgresStore::open(&PostgresOptions::new(self.url.clone()))
            .unwrap_or_else(|e| panic!("open {}: {e}", self.name))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // WITH (FORCE) ends connections a leaked store still holds (PostgreSQL 13+).
        if let Err(e) = run_admin(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        ) {
            eprintln!("warning: cannot drop test database {}: {e}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_dbname;

    #[test]
    fn dbname_is_replaced() {
        assert_eq!(
            with_dbname("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(with_dbname("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(
            with_dbname("postgresql://u:p@h/db?sslmode=disable", "x"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_dbname("host=h user=u", "x"), "host=h user=u dbname=x");
    }
}
