//! `safeguard exchange run` as a process against another Safeguard (a `safeguard serve`
//! process) as the exchange: the bank fills, and the run's changes are in the audit log as
//! the server's own runs are, by `cli`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use crate::serve_process::{free_addr, http_json, Server};

use safeguard_store::{AuditStore, SqliteOptions, SqliteStore};

const ADMIN: &str = "exchange-cli-admin-key-0123456789abcdef0123";
const PDQ: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
const MD5: &str = "0123456789abcdef0123456789abcdef";

fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    http_json(addr, method, path, Some(ADMIN), body)
}

fn peer(data: &Path) -> (Server, SocketAddr) {
    let addr = free_addr();
    let server = Server::start(addr, |c| {
        c.arg("--data-dir")
            .arg(data)
            .env("SAFEGUARD_ADMIN_KEY", ADMIN);
    });
    (server, addr)
}

#[test]
fn an_exchange_run_from_the_cli_fills_the_bank_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let (_peer, addr) = peer(&dir.path().join("peer"));
    let (status, body) = http(addr, "POST", "/v1/banks", r#"{"name":"SHARED"}"#);
    assert_eq!(status, 201, "{body}");
    for signals in [
        format!(r#"{{"pdq":"{PDQ}"}}"#),
        format!(r#"{{"md5":"{MD5}"}}"#),
    ] {
        let (status, body) = http(
            addr,
            "POST",
            "/v1/banks/SHARED/contents",
            &format!(r#"{{"signals":{signals}}}"#),
        );
        assert_eq!(status, 201, "{body}");
    }
    let config = dir.path().join("safeguard.toml");
    std::fs::write(
        &config,
        format!(
            "[[exchanges]]\nname = \"PARTNER\"\nkind = \"safeguard\"\nbase_url = \"http://{addr}\"\n\
             remote_bank = \"SHARED\"\nenabled = false\napi_key = \"{ADMIN}\"\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_safeguard"))
        .args(["exchange", "run", "PARTNER", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .env_remove("SAFEGUARD_MASTER_KEY")
        .env_remove("SAFEGUARD_STORE")
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{printed}");
    assert!(
        !printed.contains("not recorded in the audit log"),
        "{printed}"
    );

    let store = SqliteStore::open(&SqliteOptions::new(data.join("safeguard.db"))).unwrap();
    let entries: Vec<(String, String, String, String)> = store
        .audit_entries(0, 100)
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.entry.actor,
                r.entry.action,
                r.entry.object,
                r.entry.detail,
            )
        })
        .collect();
    assert_eq!(
        entries,
        [(
            "cli".to_string(),
            "bank_import".to_string(),
            "bank:PARTNER".to_string(),
            "exchange run: 2 added, 0 refreshed, 1 pages (exchange PARTNER)".to_string()
        )],
        "{printed}"
    );

    // `list` and `status` show the exchange's state: its bank and its two entries.
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_safeguard"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .env_remove("SAFEGUARD_STORE")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, listed, err) = cli(&["exchange", "list"]);
    assert!(ok, "{err}");
    let row: Vec<&str> = listed
        .lines()
        .find(|l| l.starts_with("PARTNER "))
        .unwrap_or_else(|| panic!("{listed}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        row[..4],
        ["PARTNER", "safeguard", "PARTNER", "2"],
        "{listed}"
    );
    let (ok, shown, err) = cli(&["exchange", "status", "PARTNER"]);
    assert!(ok, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        (
            shown["bank"].clone(),
            shown["entries"].clone(),
            shown["last_error"].clone()
        ),
        (
            serde_json::json!("PARTNER"),
            serde_json::json!(2),
            serde_json::Value::Null
        ),
        "{shown}"
    );
    assert!(shown["last_success_at"].is_i64(), "{shown}");
    let (ok, _, err) = cli(&["exchange", "status", "NOBODY"]);
    assert!(!ok);
    assert!(err.contains("\"NOBODY\" is not configured"), "{err}");
}

/// `max_pages_per_run = 0` made every run apply nothing without catching up, and `exchange run`
/// (which runs until caught up) spun for ever: the configuration is now refused, and the
/// command exits either way.
#[test]
fn an_exchange_run_with_max_pages_per_run_zero_is_refused_not_spun() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("safeguard.toml");
    // Nothing listens there: the run must stop before contacting anything.
    std::fs::write(
        &config,
        format!(
            "[[exchanges]]\nname = \"PARTNER\"\nkind = \"safeguard\"\nbase_url = \"http://{}\"\n\
             remote_bank = \"SHARED\"\nenabled = false\napi_key = \"{ADMIN}\"\n\
             max_pages_per_run = 0\n",
            free_addr()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_safeguard"))
        .args(["exchange", "run", "PARTNER", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("SAFEGUARD_MASTER_KEY")
        .env_remove("SAFEGUARD_STORE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("`exchange run` with max_pages_per_run = 0 did not exit");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{printed}");
    assert!(printed.contains("max_pages_per_run"), "{printed}");
}
