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

const NCA_TOKEN: &str = "cli-nca-token-Wombat-9931";

#[test]
fn the_nca_token_is_read_from_stdin_stored_sealed_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |input: Option<&str>| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_safeguard"))
            .args(["report", "nca-token"])
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("SAFEGUARD_MASTER_KEY")
            .env_remove("SAFEGUARD_STORE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if let Some(text) = input {
            writeln!(stdin, "{text}").unwrap();
        }
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    let out = run(Some(NCA_TOKEN));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("stored the NCA API token"), "{printed}");
    assert!(!printed.contains(NCA_TOKEN), "{printed}");

    let store = SqliteStore::open(&SqliteOptions::new(dir.path().join("safeguard.db"))).unwrap();
    let sealed = store
        .secret(safeguard_server::nca_api::TOKEN_SECRET)
        .unwrap()
        .expect("stored");
    assert!(!sealed
        .windows(NCA_TOKEN.len())
        .any(|w| w == NCA_TOKEN.as_bytes()));
    let key = safeguard_server::reports::master_key(None, None, dir.path()).unwrap();
    let plain = key
        .open(&sealed, safeguard_server::nca_api::TOKEN_CONTEXT)
        .unwrap();
    assert_eq!(plain.as_slice(), NCA_TOKEN.as_bytes());

    // Nothing on standard input, or a token that cannot go in a header: refused.
    assert!(!run(None).status.success());
    let out = run(Some("two words"));
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("two words"));
}
