//! `safeguard audit export|verify|key` through the binary: actions from the command line are
//! recorded; an export verifies offline with the public key alone; and an intruder who edits,
//! deletes, reorders or inserts rows in the database is caught, with the first bad entry
//! named.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_safeguard");

/// A fresh temporary folder, removed at the end of the test.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("safeguard-audit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str], data: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("SAFEGUARD_MASTER_KEY")
        .env_remove("SAFEGUARD_STORE")
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn verify(file: &Path, key: &str) -> Output {
    Command::new(BIN)
        .args(["audit", "verify"])
        .arg(file)
        .args(["--key", key])
        .output()
        .unwrap()
}

/// A data directory with six recorded actions: five keys created, one revoked.
fn populated(s: &Scratch) -> (PathBuf, String) {
    let data = s.0.join("data");
    let mut ids = Vec::new();
    for i in 0..5 {
        let key = ok(run(
            &[
                "keys",
                "create",
                "--scopes",
                "match",
                "--name",
                &format!("k{i}"),
            ],
            &data,
        ));
        ids.push(key.trim().split('_').nth(1).unwrap().to_string());
    }
    ok(run(&["keys", "revoke", &ids[0]], &data));
    let key = ok(run(&["audit", "key"], &data)).trim().to_string();
    assert_eq!(key.len(), 64, "{key}");
    (data, key)
}

fn export(data: &Path, out: &Path) {
    let o = run(&["audit", "export", "--out", out.to_str().unwrap()], data);
    ok(o);
}

/// Runs SQL against the store as an intruder: the append-only triggers dropped first.
fn tamper(data: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(data.join("safeguard.db")).unwrap();
    conn.execute_batch(
        "DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete;",
    )
    .unwrap();
    conn.execute_batch(sql).unwrap();
}

fn assert_names(out: &Output, index: u64) {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("entry {index} ")),
        "expected entry {index} named: {err}"
    );
}

/// `safeguard rules apply` is recorded as `PUT /v1/rules` is, by `cli`.
#[test]
fn a_rules_change_from_the_command_line_is_recorded() {
    let s = Scratch::new("rules");
    let data = s.0.join("data");
    let rules = s.0.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nid = \"csam\"\n[rule.when]\nbank_kinds = [\"csam\"]\n[rule.then]\nverdict = \"block\"\n",
    )
    .unwrap();
    ok(run(&["rules", "apply", rules.to_str().unwrap()], &data));
    let file = s.0.join("log.jsonl");
    export(&data, &file);
    // The first entry (the export's first line is its header).
    let text = std::fs::read_to_string(&file).unwrap();
    let first: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v.get("seq").is_some())
        .unwrap();
    assert_eq!(first["seq"], 0);
    assert_eq!(first["action"], "rule_changed", "{first}");
    assert_eq!(first["actor"], "cli");
    assert_eq!(first["object"], "rules");
    assert_eq!(
        first["detail"],
        "set replaced: 1 in force, 1 created, 0 changed, 0 removed"
    );
}

#[test]
fn an_export_verifies_with_the_public_key_and_a_wrong_key_fails() {
    let s = Scratch::new("verify");
    let (data, key) = populated(&s);
    let file = s.0.join("log.jsonl");
    export(&data, &file);
    let out = verify(&file, &key);
    let text = ok(out);
    // Six key actions, then the export's own record of itself.
    assert!(text.starts_with("verified: 7 entries"), "{text}");
    let lines = std::fs::read_to_string(&file).unwrap();
    assert!(lines.contains("\"action\":\"key_created\""));
    assert!(lines.contains("\"action\":\"key_revoked\""));
    assert!(lines.contains("\"action\":\"vault_export\""));
    let wrong = "11".repeat(32);
    let out = verify(&file, &wrong);
    assert_eq!(out.status.code(), Some(1));
    // A second export extends the first: the first file's head is still consistent.
    let again = s.0.join("log2.jsonl");
    export(&data, &again);
    assert!(ok(verify(&again, &key)).starts_with("verified: 8 entries"));
}

#[test]
fn edited_deleted_reordered_and_inserted_rows_are_named() {
    for (name, sql, first_bad) in [
        (
            "edit",
            "UPDATE audit_log SET actor = 'intruder' WHERE seq = 3;",
            3,
        ),
        ("delete", "DELETE FROM audit_log WHERE seq = 2;", 2),
        (
            "reorder",
            "UPDATE audit_log SET seq = 100 WHERE seq = 1; \
             UPDATE audit_log SET seq = 1 WHERE seq = 4; \
             UPDATE audit_log SET seq = 4 WHERE seq = 100;",
            1,
        ),
        (
            "insert",
            "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 2; \
             UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1000; \
             INSERT INTO audit_log (seq, at, actor, action, object, detail, leaf_hash) \
             VALUES (2, 1, 'intruder', 'key_revoked', 'key:x', '', zeroblob(32));",
            2,
        ),
        (
            "last",
            "UPDATE audit_log SET detail = 'changed' WHERE seq = (SELECT max(seq) FROM audit_log);",
            6,
        ),
    ] {
        let s = Scratch::new(name);
        let (data, key) = populated(&s);
        let before = s.0.join("before.jsonl");
        export(&data, &before);
        ok(verify(&before, &key));
        tamper(&data, sql);
        let after = s.0.join("after.jsonl");
        export(&data, &after);
        let out = verify(&after, &key);
        assert_names(&out, first_bad);
        // The export from before the intrusion still verifies: it is the honest record.
        ok(verify(&before, &key));
    }
}

#[test]
fn the_database_refuses_changes_to_the_log() {
    let s = Scratch::new("triggers");
    let (data, _) = populated(&s);
    let conn = rusqlite::Connection::open(data.join("safeguard.db")).unwrap();
    let err = conn
        .execute("UPDATE audit_log SET actor = 'x' WHERE seq = 0", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}
