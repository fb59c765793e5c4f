//! SQLite-specific tests: the conformance suite on both kinds of store, persistence across
//! reopen, crash safety (a child writer killed mid-write), clean errors on bad files, and bulk
//! writes and reads at a small size (their rates at scale: `scripts/bench-store.sh`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use safeguard_store::conformance::{self, new_bank, new_content};
use safeguard_store::{
    BankUpdate, Change, ContentUpdate, Error, NewApiKey, NewContent, SqliteOptions, SqliteStore,
    Store,
};

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("safeguard-store-test-")
        .tempdir()
        .expect("create temp dir")
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(&SqliteOptions::new(path)).expect("open store")
}

#[test]
fn conformance_in_memory() {
    conformance::run_all(&|| Box::new(SqliteStore::open_in_memory().expect("open in memory")));
}

#[test]
fn conformance_on_disk() {
    // Each store's directory must outlive it; they are all dropped at the end of the test.
    let dirs = RefCell::new(Vec::new());
    conformance::run_all(&|| {
        let dir = temp_dir();
        let store = open(&dir.path().join("store.db"));
        dirs.borrow_mut().push(dir);
        Box::new(store)
    });
}

#[test]
fn account_conformance_in_memory() {
    safeguard_store::account_conformance::run_all(&|| {
        Box::new(SqliteStore::open_in_memory().expect("open in memory"))
    });
}

#[test]
fn account_conformance_on_disk() {
    let dirs = RefCell::new(Vec::new());
    safeguard_store::account_conformance::run_all(&|| {
        let dir = temp_dir();
        let store = open(&dir.path().join("store.db"));
        dirs.borrow_mut().push(dir);
        Box::new(store)
    });
}

#[test]
fn scan_conformance_in_memory() {
    safeguard_store::scan_conformance::run_all(&|| {
        Box::new(SqliteStore::open_in_memory().expect("open in memory"))
    });
}

#[test]
fn scan_conformance_on_disk() {
    let dirs = RefCell::new(Vec::new());
    safeguard_store::scan_conformance::run_all(&|| {
        let dir = temp_dir();
        let store = open(&dir.path().join("store.db"));
        dirs.borrow_mut().push(dir);
        Box::new(store)
    });
}

#[test]
fn action_conformance_in_memory() {
    safeguard_store::action_conformance::run_all(&|| {
        Box::new(SqliteStore::open_in_memory().expect("open in memory"))
    });
}

#[test]
fn action_conformance_on_disk() {
    let dirs = RefCell::new(Vec::new());
    safeguard_store::action_conformance::run_all(&|| {
        let dir = temp_dir();
        let store = open(&dir.path().join("store.db"));
        dirs.borrow_mut().push(dir);
        Box::new(store)
    });
}

/// Everything observable, for comparing a store before and after reopening.
fn snapshot(store: &dyn Store) -> String {
    let banks = store.list_banks().unwrap();
    let mut contents = Vec::new();
    for b in &banks {
        contents.extend(store.list_content(b.id, None, usize::MAX).unwrap());
    }
    format!(
        "{banks:?}\n{contents:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        store.list_api_keys().unwrap(),
        store.counts().unwrap(),
        store.disabled_contents().unwrap(),
        conformance::all_changes(store),
        conformance::scan(store),
    )
}

#[test]
fn reopen_keeps_everything() {
    let dir = temp_dir();
    let path = dir.path().join("store.db");
    let (before, last_content, last_seq) = {
        let store = open(&path);
        let a = store.create_bank(&new_bank("A")).unwrap();
        let b = store.create_bank(&new_bank("B")).unwrap();
        let added = store
            .add_contents(
                a.id,
                &(0..50)
                    .map(|i| NewContent {
                        disable_until_ts: i % 7,
                        metadata: Some(format!("{{\"i\":{i}}}")),
                        ..new_content(&[("pdq", &format!("{i:064x}")), ("md5", "m")])
                    })
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        store
            .add_content(b.id, &new_content(&[("pdq", "x")]))
            .unwrap();
        store.delete_content(added[3].id).unwrap();
        store
            .update_content(
                added[4].id,
                &ContentUpdate {
                    note: Some(Some("n".into())),
                    ..ContentUpdate::default()
                },
            )
            .unwrap();
        store
            .update_bank(
                b.id,
                &BankUpdate {
                    enabled: Some(false),
                    ..BankUpdate::default()
                },
            )
            .unwrap();
        let last = store.add_content(b.id, &new_content(&[])).unwrap();
        store.delete_content(last.id).unwrap();
        store
            .create_api_key(&NewApiKey {
                key_id: "k".into(),
                name: "n".into(),
                secret_sha256: "s".into(),
                scopes: vec!["match".into()],
            })
            .unwrap();
        store.revoke_api_key("k").unwrap();
        (snapshot(&store), last.id, store.last_seq().unwrap())
    };
    let store = open(&path);
    assert_eq!(snapshot(&store), before);
    assert_eq!(store.last_seq().unwrap(), last_seq);
    // Ids and seqs carry on from where they were, even past deleted rows.
    let bank = store.bank_by_name("A").unwrap().expect("bank A survives");
    let next = store.add_content(bank.id, &new_content(&[])).unwrap();
    assert!(next.id > last_content, "content id {} reused", next.id);
    store.delete_content(next.id).unwrap();
    assert_eq!(
        store.last_seq().unwrap(),
        last_seq,
        "no signals, no changes"
    );
    store
        .add_content(bank.id, &new_content(&[("x", "y")]))
        .unwrap();
    assert_eq!(store.last_seq().unwrap(), last_seq + 1);
}

#[test]
fn garbage_file_is_corrupt() {
    let dir = temp_dir();
    let path = dir.path().join("store.db");
    let garbage: Vec<u8> = (0..16384u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = SqliteStore::open(&SqliteOptions::new(&path)).unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
    assert!(
        err.to_string().contains("store.db"),
        "message names the file: {err}"
    );
}

#[test]
fn truncated_database_is_a_clean_error() {
    let dir = temp_dir();
    let path = dir.path().join("store.db");
    {
        let store = open(&path);
        let bank = store.create_bank(&new_bank("A")).unwrap();
        let items: Vec<NewContent> = (0..2000)
            .map(|i| new_content(&[("pdq", &format!("{i:064x}"))]))
            .collect();
        store.add_contents(bank.id, &items).unwrap();
    }
    // Closing the last connection checkpoints the WAL into the main file; now cut it short.
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);
    // Opening may succeed (the header is intact); reading the missing pages must then fail
    // cleanly rather than panic or return partial data as if whole.
    match SqliteStore::open(&SqliteOptions::new(&path)) {
        Err(e) => assert!(matches!(e, Error::Corrupt(_) | Error::Backend(_)), "{e:?}"),
        Ok(store) => {
            let scanned = store.scan_signals(&mut |_| {});
            assert!(scanned.is_err(), "scan of a truncated file succeeded");
        }
    }
}

#[test]
fn missing_directory_is_backend_error() {
    let dir = temp_dir();
    let path = dir.path().join("no").join("such").join("store.db");
    let err = SqliteStore::open(&SqliteOptions::new(&path)).unwrap_err();
    assert!(matches!(err, Error::Backend(_)), "{err:?}");
    assert!(
        err.to_string().contains("store.db"),
        "message names the file: {err}"
    );

    // A data directory deleted before startup.
    let gone = temp_dir();
    let path: PathBuf = gone.path().join("store.db");
    drop(gone);
    let err = SqliteStore::open(&SqliteOptions::new(&path)).unwrap_err();
    assert!(matches!(err, Error::Backend(_)), "{err:?}");
}

#[test]
fn directory_as_database_is_an_error() {
    let dir = temp_dir();
    let err = SqliteStore::open(&SqliteOptions::new(dir.path())).unwrap_err();
    assert!(
        matches!(err, Error::Backend(_) | Error::Corrupt(_)),
        "{err:?}"
    );
}

#[test]
fn newer_schema_is_refused() {
    let dir = temp_dir();
    let path = dir.path().join("store.db");
    drop(open(&path));
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", 99).unwrap();
    drop(raw);
    let err = SqliteStore::open(&SqliteOptions::new(&path)).unwrap_err();
    assert!(
        matches!(err, Error::Corrupt(ref m) if m.contains("newer")),
        "{err:?}"
    );
}

#[test]
fn foreign_sqlite_file_is_refused() {
    let dir = temp_dir();
    let path = dir.path().join("other.db");
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
        .unwrap();
    drop(raw);
    let err = SqliteStore::open(&SqliteOptions::new(&path)).unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
    // And it was left as it was.
    let raw = rusqlite::Connection::open(&path).unwrap();
    let tables: i64 = raw
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1);
}

#[test]
fn unreadable_rows_are_corrupt() {
    let dir = temp_dir();
    let path = dir.path().join("store.db");
    let (bank_id, content_id) = {
        let store = open(&path);
        let bank = store.create_bank(&new_bank("A")).unwrap();
        let c = store
            .add_content(bank.id, &new_content(&[("pdq", "1")]))
            .unwrap();
        store
            .create_api_key(&NewApiKey {
                key_id: "k".into(),
                name: "n".into(),
                secret_sha256: "s".into(),
                scopes: vec![],
            })
            .unwrap();
        (bank.id, c.id)
    };
    // Simulate damage the schema's CHECKs would normally prevent.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(
        "PRAGMA ignore_check_constraints = ON;
         UPDATE banks SET kind = 'bogus';
         UPDATE api_keys SET scopes = 'not json';
         UPDATE changes SET kind = 'sideways';",
    )
    .unwrap();
    drop(raw);
    let store = open(&path);
    let corrupt = |r: Result<(), Error>, what: &str| {
        assert!(matches!(r, Err(Error::Corrupt(_))), "{what}: {r:?}");
    };
    corrupt(store.list_banks().map(drop), "list_banks");
    corrupt(store.bank(bank_id).map(drop), "bank");
    corrupt(store.api_key("k").map(drop), "api_key");
    corrupt(
        store.changes_since(0, 10, &mut |_, _| {}).map(drop),
        "changes_since",
    );
    // Rows that are intact still read.
    assert!(store.content(content_id).unwrap().is_some());
}

#[test]
fn readers_do_not_wait_for_the_writer() {
    let store = SqliteStore::open_in_memory().unwrap();
    let bank = store.create_bank(&new_bank("A")).unwrap();
    store
        .add_contents(
            bank.id,
            &(0..10)
                .map(|i| new_content(&[("pdq", &i.to_string())]))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    // Writes made while a scan is in progress commit at once and are not in the scan.
    let mut seen = 0;
    let mut written = Vec::new();
    let seq = store
        .scan_signals(&mut |_| {
            seen += 1;
            let c = store
                .add_content(bank.id, &new_content(&[("md5", &seen.to_string())]))
                .expect("write during a scan");
            written.push(c);
            // A nested read gets its own connection rather than deadlocking on the pool.
            assert!(store.content(written[0].id).unwrap().is_some());
        })
        .unwrap();
    assert_eq!(seen, 10, "the scan saw its snapshot only");
    let mut after = Vec::new();
    store
        .changes_since(seq, usize::MAX, &mut |_, c| after.push(c))
        .unwrap();
    assert_eq!(
        after.len(),
        10,
        "each write during the scan is in the feed after its seq"
    );
}

#[test]
fn lock_held_elsewhere_is_backend_error_and_reads_continue() {
    let dir = temp_dir();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&SqliteOptions {
        busy_timeout: Duration::from_millis(100),
        ..SqliteOptions::new(&path)
    })
    .unwrap();
    let bank = store.create_bank(&new_bank("A")).unwrap();
    // Another process holding the write lock.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = store.create_bank(&new_bank("B")).unwrap_err();
    assert!(matches!(err, Error::Backend(_)), "{err:?}");
    assert_eq!(
        store.bank(bank.id).unwrap(),
        Some(bank.clone()),
        "reads go on"
    );
    other.execute_batch("ROLLBACK").unwrap();
    store.create_bank(&new_bank("B")).unwrap();
}

#[test]
fn non_finite_ratio_is_backend_error() {
    let store = SqliteStore::open_in_memory().unwrap();
    let mut nb = new_bank("A");
    nb.enabled_ratio = f64::NAN;
    let err = store.create_bank(&nb).unwrap_err();
    assert!(
        matches!(err, Error::Backend(ref m) if m.contains("invalid value")),
        "{err:?}"
    );
}

#[test]
fn huge_value_is_a_clean_error() {
    let store = SqliteStore::open_in_memory().unwrap();
    let bank = store.create_bank(&new_bank("A")).unwrap();
    // Past SQLite's default 1 GB string limit would need >1 GB of RAM in the test; 200 MB is
    // accepted. What matters is that whichever happens, it is not a panic.
    let big = "f".repeat(200 << 20);
    let r = store.add_content(bank.id, &new_content(&[("pdq", &big)]));
    match r {
        Ok(c) => assert_eq!(c.signals[0].value.len(), big.len()),
        Err(e) => assert!(matches!(e, Error::Backend(_)), "{e:?}"),
    }
}

/// Environment variable that makes [`killed_writer_loses_nothing_committed`], re-run by itself
/// in a child process, the writer that gets killed.
const CRASH_DB_VAR: &str = "SAFEGUARD_STORE_CRASH_DB";

/// Kills the child writer this many times, reopening and checking the store after each.
const CRASH_ROUNDS: usize = 3;

/// The child's side: adds batches of contents and deletes some, printing each write after it
/// returned, until killed (bounded in time so an orphaned child stops by itself).
fn write_until_killed(path: &Path) {
    let store = open(path);
    let bank = match store.bank_by_name("CRASH").unwrap() {
        Some(b) => b,
        None => store.create_bank(&new_bank("CRASH")).unwrap(),
    };
    let mut out = std::io::stdout().lock();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Values differ between rounds: the child's process id in the high bits.
    let base = u128::from(std::process::id()) << 64;
    let mut i = 0u128;
    while Instant::now() < deadline {
        let batch: Vec<NewContent> = (0..20)
            .map(|j| new_content(&[("pdq", &format!("{:064x}", base + i * 20 + j))]))
            .collect();
        let added = store.add_contents(bank.id, &batch).unwrap();
        if i % 5 == 4 {
            store.delete_content(added[0].id).unwrap();
            writeln!(out, "deleted {}", added[0].id).unwrap();
        }
        for c in &added {
            writeln!(out, "committed {}", c.id).unwrap();
        }
        out.flush().unwrap();
        i += 1;
    }
}

/// Kills a writing process with SIGKILL mid-write, [`CRASH_ROUNDS`] times on the same file, and
/// checks after each that every write it reported as returned is there after reopening, that
/// the feed still agrees with the data, and that the store takes writes again. The child is
/// this same test binary running this same test with [`CRASH_DB_VAR`] set.
#[test]
fn killed_writer_loses_nothing_committed() {
    if let Some(path) = std::env::var_os(CRASH_DB_VAR) {
        write_until_killed(Path::new(&path));
        return;
    }
    let dir = temp_dir();
    let path = dir.path().join("crash.db");
    let (mut committed, mut deleted) = (Vec::new(), Vec::new());
    for round in 0..CRASH_ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "killed_writer_loses_nothing_committed",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_DB_VAR, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child test process");
        let stdout = child.stdout.take().expect("piped stdout");
        let before = committed.len();
        let deadline = Instant::now() + Duration::from_secs(30);
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(id) = line.strip_prefix("committed ") {
                committed.push(id.parse::<i64>().unwrap());
            } else if let Some(id) = line.strip_prefix("deleted ") {
                deleted.push(id.parse::<i64>().unwrap());
            }
            if committed.len() - before >= 2000 || Instant::now() > deadline {
                break;
            }
        }
        // The child is still writing (it stops only after 60 s): the kill lands mid-write.
        assert!(
            child.try_wait().unwrap().is_none(),
            "round {round}: the child writer exited before it was killed"
        );
        child.kill().unwrap();
        let status = child.wait().unwrap();
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "round {round}: {status:?}");
        }
        assert!(
            committed.len() - before >= 100,
            "round {round}: child wrote too little: {}",
            committed.len() - before
        );

        let store = open(&path);
        for id in &committed {
            let present = store.content(*id).unwrap().is_some();
            assert_eq!(
                present,
                !deleted.contains(id),
                "round {round}: content {id} after the crash"
            );
        }
        let mut replayed = BTreeMap::new();
        conformance::follow(&store, &mut replayed, 0);
        conformance::assert_same_signals(&replayed, &conformance::scan(&store).0, "feed vs data");
        // And the store takes writes again.
        let bank = store.bank_by_name("CRASH").unwrap().unwrap();
        store.add_content(bank.id, &new_content(&[])).unwrap();
    }
}

/// Bulk writes and the reads that startup and followers do agree at a few thousand signals on
/// disk: every added signal is scanned, fed and counted, also after a reopen. (The rates at a
/// million signals are a benchmark: `scripts/bench-store.sh`.)
#[test]
fn bulk_add_scan_feed_and_reopen_agree() {
    const N: u64 = 5_000;
    let dir = temp_dir();
    let store = open(&dir.path().join("bulk.db"));
    let bank = store.create_bank(&new_bank("BULK")).unwrap();
    let values: Vec<String> = (0..N)
        .map(|i| {
            let v = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            format!("{v:016x}{v:016x}{v:016x}{v:016x}")
        })
        .collect();
    let items: Vec<NewContent> = values.iter().map(|v| new_content(&[("pdq", v)])).collect();
    let added = store.add_contents(bank.id, &items).unwrap();
    assert_eq!(added.len() as u64, N);

    let mut scanned = Vec::new();
    let seq = store
        .scan_signals(&mut |s| scanned.push(s.value.clone()))
        .unwrap();
    scanned.sort();
    let mut want = values.clone();
    want.sort();
    assert_eq!(scanned, want);
    let mut fed = 0u64;
    store
        .changes_since(0, usize::MAX, &mut |_, c| {
            if matches!(c, Change::Added(_)) {
                fed += 1;
            }
        })
        .unwrap();
    assert_eq!(fed, N);
    assert_eq!(seq, store.last_seq().unwrap());
    assert_eq!(store.counts().unwrap().contents, N);

    drop(store);
    let store = open(&dir.path().join("bulk.db"));
    let mut reloaded = 0u64;
    assert_eq!(store.scan_signals(&mut |_| reloaded += 1).unwrap(), seq);
    assert_eq!(reloaded, N);
}

/// The staged import adds every entry of a list, and importing the same list again refreshes
/// every entry and adds none. (Its rate against `add_contents` is a benchmark:
/// `scripts/bench-store.sh`.)
#[test]
fn staged_import_adds_then_refreshes_every_entry() {
    use safeguard_store::{SourceEntry, SourceImport};
    const N: u64 = 5_000;
    let dir = temp_dir();
    let store = open(&dir.path().join("staged.db"));
    let bank = store.create_bank(&new_bank("STAGED")).unwrap();
    let value = |i: u64| {
        let v = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        format!("{v:016x}{:016x}", v.rotate_left(17))
    };
    let import = |seen_at| {
        store
            .import_source(
                bank.id,
                &SourceImport {
                    source: "file:test",
                    seen_at,
                    checkpoint: None,
                    complete: false,
                },
                &mut |sink| {
                    let mut e = SourceEntry {
                        signal_type: "md5".into(),
                        ..SourceEntry::default()
                    };
                    for i in 0..N {
                        e.value = value(i);
                        sink.upsert(&e)?;
                    }
                    Ok(())
                },
            )
            .unwrap()
    };
    let out = import(1);
    assert_eq!((out.added, out.refreshed), (N, 0));
    let out = import(2);
    assert_eq!((out.added, out.refreshed), (0, N));
    let mut scanned = 0u64;
    store
        .scan_signals(&mut |s| {
            assert_eq!(s.signal_type, "md5");
            scanned += 1;
        })
        .unwrap();
    assert_eq!(scanned, N);
}

#[test]
fn audit_conformance_on_disk() {
    let dirs = RefCell::new(Vec::new());
    safeguard_store::audit_conformance::run_all(&|| {
        let dir = temp_dir();
        let store = open(&dir.path().join("store.db"));
        dirs.borrow_mut().push(dir);
        Box::new(store)
    });
}

/// The audit log refuses UPDATE and DELETE in the database itself (triggers), so a stray
/// statement cannot quietly change history.
#[test]
fn the_audit_log_is_append_only_in_the_database() {
    use safeguard_store::audit::NewAuditEntry;
    use safeguard_store::AuditStore;
    let dir = temp_dir();
    let path = dir.path().join("store.db");
    let store = open(&path);
    let e = NewAuditEntry {
        at: 1,
        actor: "a".into(),
        action: "login".into(),
        object: "o".into(),
        detail: String::new(),
    };
    store.audit_append(&[e], &|_, _| [1; 32]).unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in [
        "UPDATE audit_log SET actor = 'b' WHERE seq = 0",
        "DELETE FROM audit_log WHERE seq = 0",
    ] {
        let err = conn.execute(sql, []).unwrap_err().to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    let actor: String = conn
        .query_row("SELECT actor FROM audit_log WHERE seq = 0", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(actor, "a");
}

#[test]
fn report_conformance_in_memory() {
    safeguard_store::report_conformance::run_all(&|| {
        Box::new(SqliteStore::open_in_memory().expect("open in memory"))
    });
}

#[test]
fn report_conformance_on_disk() {
    let dirs = RefCell::new(Vec::new());
    safeguard_store::report_conformance::run_all(&|| {
        let dir = temp_dir();
        let store = open(&dir.path().join("store.db"));
        dirs.borrow_mut().push(dir);
        Box::new(store)
    });
}

/// Processes racing for one free lease (each its own store on one database file, all released
/// at once): exactly one gets it; repeated (`report_conformance::one_owner_of_many_takes_a_lease`).
#[test]
fn one_process_of_many_takes_a_lease() {
    let dir = temp_dir();
    let path = dir.path().join("store.db");
    let stores: Vec<SqliteStore> = (0..4).map(|_| open(&path)).collect();
    let stores: Vec<&dyn Store> = stores.iter().map(|s| s as &dyn Store).collect();
    safeguard_store::report_conformance::one_owner_of_many_takes_a_lease(&stores);
}

#[test]
fn console_conformance_in_memory() {
    safeguard_store::console_conformance::run_all(&|| {
        Box::new(SqliteStore::open_in_memory().expect("open in memory"))
    });
}

#[test]
fn console_conformance_on_disk() {
    let dirs = RefCell::new(Vec::new());
    safeguard_store::console_conformance::run_all(&|| {
        let dir = temp_dir();
        let store = open(&dir.path().join("store.db"));
        dirs.borrow_mut().push(dir);
        Box::new(store)
    });
}
