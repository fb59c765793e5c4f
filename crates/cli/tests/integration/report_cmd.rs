//! `safeguard report ncmec-credentials` as a process: the password comes from standard input,
//! is stored sealed (never in clear), and is never printed.

use std::io::Write;
use std::process::{Command, Stdio};

use safeguard_store::{ReportStore, SqliteOptions, SqliteStore};

const PASSWORD: &str = "cli-test-pw-Quokka-4412";

#[test]
fn credentials_are_read_from_stdin_stored_sealed_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_safeguard"))
        .args(["report", "ncmec-credentials", "--username", "esp-cli-user"])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("SAFEGUARD_MASTER_KEY")
        .env_remove("SAFEGUARD_STORE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("esp-cli-user"), "{printed}");
    assert!(!printed.contains(PASSWORD), "{printed}");

    let store = SqliteStore::open(&SqliteOptions::new(dir.path().join("safeguard.db"))).unwrap();
    let sealed = store
        .secret(safeguard_server::reports::CREDENTIALS_SECRET)
        .unwrap()
        .expect("stored");
    assert!(!sealed
        .windows(PASSWORD.len())
        .any(|w| w == PASSWORD.as_bytes()));
    // The server's key opens it: the same master key in the same data directory.
    let key = safeguard_server::reports::master_key(None, None, dir.path()).unwrap();
    let plain = key
        .open(&sealed, safeguard_server::reports::CREDENTIALS_CONTEXT)
        .unwrap();
    assert!(String::from_utf8_lossy(&plain).contains(PASSWORD));

    // No password on standard input: refused, nothing printed of it.
    let out = Command::new(env!("CARGO_BIN_EXE_safeguard"))
        .args(["report", "ncmec-credentials", "--username", "esp-cli-user"])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("SAFEGUARD_MASTER_KEY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
}
