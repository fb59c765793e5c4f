//! SQLite-specific tests: the conformance suite on both kinds of store, persistence across
//! reopen, crash safety, clean errors on bad files, and the (ignored) bulk timing test.

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

/// Environment variable that turns [`crash_child_writer`] into the child of
/// [`killed_writer_loses_nothing_committed`].
const CRASH_DB_VAR: &str = "SAFEGUARD_STORE_CRASH_DB";

/// Not a test on its own: run by [`killed_writer_loses_nothing_committed`] in a child process
/// that it kills mid-write. Does nothing when run normally.
#[test]
fn crash_child_writer() {
    let Ok(path) = std::env::var(CRASH_DB_VAR) else {
        return;
    };
    let store = open(Path::new(&path));
    let bank = store.create_bank(&new_bank("CRASH")).unwrap();
    let mut out = std::io::stdout().lock();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0u64;
    // Bounded so an orphaned child stops by itself.
    while Instant::now() < deadline {
        let batch: Vec<NewContent> = (0..20)
            .map(|j| new_content(&[("pdq", &format!("{:064x}", i * 20 + j))]))
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

/// Kills a writing process with SIGKILL and checks that every write it reported as returned
/// is there after reopening, and that the feed still agrees with the data.
#[test]
fn killed_writer_loses_nothing_committed() {
    let dir = temp_dir();
    let path = dir.path().join("crash.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_writer",
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
    let mut committed = Vec::new();
    let mut deleted = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("committed ") {
            committed.push(id.parse::<i64>().unwrap());
        } else if let Some(id) = line.strip_prefix("deleted ") {
            deleted.push(id.parse::<i64>().unwrap());
        }
        if committed.len() >= 2000 || Instant::now() > deadline {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        committed.len() >= 100,
        "child wrote too little: {}",
        committed.len()
    );

    let store = open(&path);
    for id in &committed {
        let present = store.content(*id).unwrap().is_some();
        assert_eq!(
            present,
            !deleted.contains(id),
            "content {id} after the crash"
        );
    }
    let mut replayed = BTreeMap::new();
    conformance::follow(&store, &mut replayed, 0);
    conformance::assert_same_signals(&replayed, &conformance::scan(&store).0, "feed vs data");
    // And the store takes writes again.
    let bank = store.bank_by_name("CRASH").unwrap().unwrap();
    store.add_content(bank.id, &new_content(&[])).unwrap();
}

/// Bulk insert and startup-scan rates at one million signals, on disk with full durability.
#[test]
#[ignore = "slow: run with --ignored"]
fn bulk_rates_at_one_million() {
    const N: u64 = 1_000_000;
    let dir = temp_dir();
    let store = open(&dir.path().join("bulk.db"));
    let bank = store.create_bank(&new_bank("BULK")).unwrap();
    let items: Vec<NewContent> = (0..N)
        .map(|i| {
            // Spread values like real hashes so the value index sees random inserts.
            let v = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            new_content(&[("pdq", &format!("{v:016x}{v:016x}{v:016x}{v:016x}"))])
        })
        .collect();

    let t = Instant::now();
    let added = store.add_contents(bank.id, &items).unwrap();
    let insert = t.elapsed();
    assert_eq!(added.len() as u64, N);
    drop(added);
    drop(items);

    let t = Instant::now();
    let mut n = 0u64;
    let mut bytes = 0usize;
    let seq = store
        .scan_signals(&mut |s| {
            n += 1;
            bytes += s.value.len();
        })
        .unwrap();
    let scan = t.elapsed();
    assert_eq!(n, N);
    assert!(bytes > 0);

    let t = Instant::now();
    let mut changes = 0u64;
    store
        .changes_since(0, usize::MAX, &mut |_, c| {
            if matches!(c, Change::Added(_)) {
                changes += 1;
            }
        })
        .unwrap();
    let feed = t.elapsed();
    assert_eq!(changes, N);
    assert_eq!(seq, store.last_seq().unwrap());

    let t = Instant::now();
    let counts = store.counts().unwrap();
    let count_time = t.elapsed();
    assert_eq!(counts.contents, N);

    // A restart: open the existing file and load every signal.
    drop(store);
    let t = Instant::now();
    let store = open(&dir.path().join("bulk.db"));
    let mut reloaded = 0u64;
    store.scan_signals(&mut |_| reloaded += 1).unwrap();
    let restart = t.elapsed();
    assert_eq!(reloaded, N);

    let rate = |d: Duration| N as f64 / d.as_secs_f64();
    println!(
        "add_contents: {N} items in {:.2} s ({:.0} items/s)",
        insert.as_secs_f64(),
        rate(insert)
    );
    println!(
        "scan_signals: {N} signals in {:.2} s ({:.0} signals/s; 10M would take {:.1} s)",
        scan.as_secs_f64(),
        rate(scan),
        10.0 * scan.as_secs_f64()
    );
    println!(
        "changes_since: {N} changes in {:.2} s ({:.0} changes/s)",
        feed.as_secs_f64(),
        rate(feed)
    );
    println!("counts: {:.2} s", count_time.as_secs_f64());
    println!("reopen + scan_signals: {:.2} s", restart.as_secs_f64());
}

/// The staged import path against the row-at-a-time `add_contents` path, same hashes, same
/// run, each into a fresh on-disk store with full durability; then a re-import (the refresh
/// path). Prints the rates and their ratio.
#[test]
#[ignore = "slow: run with --ignored --nocapture"]
fn import_rate_against_add_contents() {
    use safeguard_store::{SourceEntry, SourceImport};
    let n: u64 = std::env::var("SAFEGUARD_IMPORT_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let value = |i: u64| {
        let v = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        format!("{v:016x}{:016x}", v.rotate_left(17))
    };

    let dir = temp_dir();
    let store = open(&dir.path().join("rows.db"));
    let bank = store.create_bank(&new_bank("ROWS")).unwrap();
    let t = Instant::now();
    let baseline = std::env::var_os("SAFEGUARD_IMPORT_SKIP_BASELINE").is_none();
    for chunk in (0..if baseline { n } else { 0 })
        .collect::<Vec<_>>()
        .chunks(100_000)
    {
        let items: Vec<NewContent> = chunk
            .iter()
            .map(|&i| new_content(&[("md5", &value(i))]))
            .collect();
        store.add_contents(bank.id, &items).unwrap();
    }
    let rows = t.elapsed();
    drop(store);

    let store = open(&dir.path().join("staged.db"));
    let bank = store.create_bank(&new_bank("STAGED")).unwrap();
    let import = |store: &SqliteStore, seen_at| {
        let t = Instant::now();
        let out = store
            .import_source(
                bank.id,
                &SourceImport {
                    source: "file:bench",
                    seen_at,
                    checkpoint: None,
                    complete: false,
                },
                &mut |sink| {
                    let mut e = SourceEntry {
                        signal_type: "md5".into(),
                        ..SourceEntry::default()
                    };
                    for i in 0..n {
                        e.value = value(i);
                        sink.upsert(&e)?;
                    }
                    Ok(())
                },
            )
            .unwrap();
        (t.elapsed(), out)
    };
    let (staged, out) = import(&store, 1);
    assert_eq!(out.added, n);
    let (again, out) = import(&store, 2);
    assert_eq!((out.added, out.refreshed), (0, n));
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "{n} md5 hashes, on disk, synchronous=FULL:\n  add_contents (100k per transaction): {:.2} s = {:.0}/s\n  \
         staged import (one transaction):      {:.2} s = {:.0}/s  ({:.2}x)\n  \
         re-import (all refreshed):            {:.2} s = {:.0}/s",
        rows.as_secs_f64(),
        rate(rows),
        staged.as_secs_f64(),
        rate(staged),
        rows.as_secs_f64() / staged.as_secs_f64(),
        again.as_secs_f64(),
        rate(again),
    );
}
