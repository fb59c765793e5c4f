//! PostgreSQL-specific tests: the shared conformance suites, migrations from an empty database
//! and from the previous version, several stores (as several processes would) writing one
//! gap-free feed, the feed's wake-ups, imports through COPY with hostile text, and clean
//! errors for bad connection strings.
//!
//! Each test runs in a fresh database (`postgres_testing::TestDatabase`) on the server named
//! by `SAFEGUARD_TEST_PG`; without a reachable server each test prints `SKIPPED: ...` and
//! passes, except under `CI=true`, where it fails.
#![cfg(feature = "postgres")]

use std::cell::RefCell;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use safeguard_store::conformance::{self, all_changes, new_bank, new_content, scan};
use safeguard_store::postgres_testing::TestDatabase;
use safeguard_store::{
    ActionStore, Change, Error, PostgresOptions, PostgresStore, SourceBatch, SourceEntry,
    SourceRemoval, Store,
};

#[test]
fn conformance() {
    let Some(_probe) = TestDatabase::create() else {
        return;
    };
    let dbs = RefCell::new(Vec::new());
    conformance::run_all(&|| {
        let db = TestDatabase::create().expect("the server answered the probe");
        let store = db.open();
        dbs.borrow_mut().push(db);
        Box::new(store)
    });
}

#[test]
fn action_conformance() {
    let Some(_probe) = TestDatabase::create() else {
        return;
    };
    let dbs = RefCell::new(Vec::new());
    safeguard_store::action_conformance::run_all(&|| {
        let db = TestDatabase::create().expect("the server answered the probe");
        let store = db.open();
        dbs.borrow_mut().push(db);
        Box::new(store)
    });
}

#[test]
fn account_conformance() {
    let Some(_probe) = TestDatabase::create() else {
        return;
    };
    let dbs = RefCell::new(Vec::new());
    safeguard_store::account_conformance::run_all(&|| {
        let db = TestDatabase::create().expect("the server answered the probe");
        let store = db.open();
        dbs.borrow_mut().push(db);
        Box::new(store)
    });
}

#[test]
fn scan_conformance() {
    let Some(_probe) = TestDatabase::create() else {
        return;
    };
    let dbs = RefCell::new(Vec::new());
    safeguard_store::scan_conformance::run_all(&|| {
        let db = TestDatabase::create().expect("the server answered the probe");
        let store = db.open();
        dbs.borrow_mut().push(db);
        Box::new(store)
    });
}

/// The schema version this build writes (PostgreSQL migrations 0001-0016).
const LATEST: i64 = 16;
/// An empty database is migrated to the current version, every migration recorded; opening
/// again changes nothing.
#[test]
fn migrates_an_empty_database_once() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let store = db.open();
    assert_eq!(store.schema_version().unwrap(), LATEST);
    let bank = store.create_bank(&new_bank("B")).unwrap();
    drop(store);
    let store = db.open();
    assert_eq!(store.schema_version().unwrap(), LATEST);
    assert_eq!(store.bank(bank.id).unwrap(), Some(bank));
}

/// A database at version 8 (before filing leases) upgrades in place: a filing it holds keeps
/// its state and can be leased.
#[test]
fn upgrades_from_version_8_to_filing_leases() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let old = PostgresStore::open_at_version(&PostgresOptions::new(db.url()), 8).unwrap();
    use safeguard_store::ReportStore;
    old.put_filing_state(&safeguard_store::report::FilingRecord {
        id: "ncmec-case-1-1",
        case_id: 1,
        destination: "ncmec",
        state: "{}",
        phase: "submitted",
        report_id: Some("100001"),
        at: 10,
    })
    .unwrap();
    assert!(matches!(
        old.lease_filing("ncmec-case-1-1", "a", 100, 10),
        Err(Error::Backend(_))
    ));
    drop(old);
    let store = db.open();
    assert_eq!(store.schema_version().unwrap(), LATEST);
    let f = store.filing("ncmec-case-1-1").unwrap().unwrap();
    assert_eq!(
        (f.phase.as_str(), f.report_id.as_deref()),
        ("submitted", Some("100001"))
    );
    assert!(store.lease_filing("ncmec-case-1-1", "a", 100, 10).unwrap());
    assert!(!store.lease_filing("ncmec-case-1-1", "b", 100, 10).unwrap());
}

/// A database at version 14 (before blob deletions were recorded) upgrades in place and the
/// sweeper's list of blobs left behind works.
#[test]
fn upgrades_from_version_14_to_recorded_blob_deletions() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let old = PostgresStore::open_at_version(&PostgresOptions::new(db.url()), 14).unwrap();
    use safeguard_store::ActionStore;
    assert!(matches!(
        old.evidence_blobs_left(10),
        Err(Error::Backend(_))
    ));
    drop(old);
    let store = db.open();
    assert_eq!(store.schema_version().unwrap(), LATEST);
    assert!(store.evidence_blobs_left(10).unwrap().is_empty());
}

/// A database at version 15 (source feedback keyed on its raw text) upgrades in place: the
/// feedback it holds is still recorded once, and a long value can now be recorded.
#[test]
fn upgrades_from_version_15_to_digest_keyed_feedback() {
    use safeguard_store::console::NewSourceFeedback;
    use safeguard_store::ConsoleStore;
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let old = PostgresStore::open_at_version(&PostgresOptions::new(db.url()), 15).unwrap();
    let s = safeguard_store::action_conformance::submission("fb", None, Some(("csam", 1)));
    let case = match old.record_submission(&s, &mut |_| vec![]).unwrap() {
        safeguard_store::action::SubmitOutcome::Recorded(r) => r.case_id.unwrap(),
        other => panic!("{other:?}"),
    };
    // Incompressible (PostgreSQL compresses a long key before its size check): 9,000 hex
    // digits from a linear congruential generator.
    let mut x: u64 = 1;
    let long: String = (0..9_000)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            char::from_digit((x >> 60) as u32, 16).unwrap()
        })
        .collect();
    // Version 15's rows, written as its code wrote them (this build's statement names the
    // new key).
    let insert = |value: &str| {
        format!(
            "INSERT INTO source_feedback (case_id, exchange, source_id, signal_type, value, \
             verdict, actor, created_at, status, updated_at, next_attempt_at) VALUES \
             ({case}, 'NCMEC', '7-abc', 'pdq', '{value}', 'false_positive', 'user:kim', \
             2000, 'pending', 2000, 2000)"
        )
    };
    old.execute_batch_for_tests(&insert("aa")).unwrap();
    assert!(
        old.execute_batch_for_tests(&insert(&long)).is_err(),
        "over the btree limit at version 15"
    );
    drop(old);
    let store = db.open();
    assert_eq!(store.schema_version().unwrap(), LATEST);
    let fb = |value: &str| NewSourceFeedback {
        case_id: case,
        exchange: "NCMEC".into(),
        source_id: "7-abc".into(),
        signal_type: "pdq".into(),
        value: value.into(),
        verdict: "false_positive".into(),
        actor: "user:kim".into(),
        at: 2_000,
    };
    assert_eq!(
        store.record_source_feedback(&[fb("aa")]).unwrap(),
        0,
        "still once"
    );
    assert_eq!(store.record_source_feedback(&[fb(&long)]).unwrap(), 1);
}

/// A database at version 13 (before named leases) upgrades in place and its leases work.
#[test]
fn upgrades_from_version_13_to_named_leases() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let old = PostgresStore::open_at_version(&PostgresOptions::new(db.url()), 13).unwrap();
    use safeguard_store::ReportStore;
    assert!(matches!(
        old.take_lease("nca-send:1", "a", 100, 10),
        Err(Error::Backend(_))
    ));
    drop(old);
    let store = db.open();
    assert_eq!(store.schema_version().unwrap(), LATEST);
    assert!(store.take_lease("nca-send:1", "a", 100, 10).unwrap());
    assert!(!store.take_lease("nca-send:1", "b", 100, 10).unwrap());
}

/// Processes racing for one free lease (each its own store and connections on one database,
/// all released at once): exactly one gets it, whatever the interleaving; repeated
/// (`report_conformance::one_owner_of_many_takes_a_lease`).
#[test]
fn one_process_of_many_takes_a_lease() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let stores: Vec<PostgresStore> = (0..4).map(|_| db.open()).collect();
    let stores: Vec<&dyn Store> = stores.iter().map(|s| s as &dyn Store).collect();
    safeguard_store::report_conformance::one_owner_of_many_takes_a_lease(&stores);
}

/// A database at version 2 (before stored accounts) upgrades in place: its rules survive and
/// the account tables work.
#[test]
fn upgrades_from_version_2_to_accounts() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let old = PostgresStore::open_at_version(&PostgresOptions::new(db.url()), 2).unwrap();
    assert_eq!(old.schema_version().unwrap(), 2);
    old.replace_rules(&[safeguard_store::action::NewRule {
        id: "r1".into(),
        spec: "{}".into(),
    }])
    .unwrap();
    assert!(matches!(old.account("u1"), Err(Error::Backend(_))));
    drop(old);
    let store = db.open();
    assert_eq!(store.schema_version().unwrap(), LATEST);
    assert_eq!(store.rules().unwrap().len(), 1);
    use safeguard_store::AccountStore;
    store
        .put_account(&safeguard_store::account::NewAccount {
            id: "u1".into(),
            age_band: "13_15".into(),
            assurance_method: "self_declared".into(),
            assurance_confidence: 1.0,
        })
        .unwrap();
    assert_eq!(store.account("u1").unwrap().unwrap().age_band, "13_15");
}

/// A database at version 1 (as the previous release left it, with rows and a feed) upgrades
/// in place: rows, ids, the feed and its position survive, and the new tables work.
#[test]
fn upgrades_from_the_previous_version() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let old = PostgresStore::open_at_version(&PostgresOptions::new(db.url()), 1).unwrap();
    assert_eq!(old.schema_version().unwrap(), 1);
    let bank = old.create_bank(&new_bank("OLD")).unwrap();
    let c = old
        .add_content(bank.id, &new_content(&[("md5", "aa"), ("pdq", "bb")]))
        .unwrap();
    let key = old
        .create_api_key(&safeguard_store::NewApiKey {
            key_id: "k1".into(),
            name: "old key".into(),
            secret_sha256: "00".into(),
            scopes: vec!["match".into()],
        })
        .unwrap();
    // Version 1 has no action tables: those calls fail cleanly rather than panic.
    assert!(matches!(old.rules(), Err(Error::Backend(_))));
    let seq = old.last_seq().unwrap();
    assert_eq!(seq, 2);
    let c_id = c.id;
    drop(old);

    let store = db.open();
    assert_eq!(store.schema_version().unwrap(), LATEST);
    assert_eq!(store.content(c.id).unwrap(), Some(c));
    assert_eq!(store.api_key("k1").unwrap(), Some(key));
    assert_eq!(store.last_seq().unwrap(), seq);
    assert_eq!(all_changes(&store).len(), 2);
    // New writes continue the ids and the feed.
    let c2 = store
        .add_content(bank.id, &new_content(&[("md5", "cc")]))
        .unwrap();
    assert!(c2.id > c_id);
    assert_eq!(store.last_seq().unwrap(), seq + 1);
    // The version 2 tables work.
    let out = store
        .replace_rules(&[safeguard_store::action::NewRule {
            id: "r1".into(),
            spec: "{}".into(),
        }])
        .unwrap();
    assert_eq!(out.created, 1);
    assert_eq!(store.rules_generation().unwrap(), 1);
    // The version 10 feed floor starts at 1, so the old feed is read whole; pruning works.
    assert_eq!(store.feed_floor().unwrap(), 1);
    assert_eq!(all_changes(&store).len(), 3);
    let pruned = store.prune_feed(seq + 1, i64::MAX, 100).unwrap();
    assert_eq!((pruned.deleted, pruned.floor), (2, seq + 1));
    assert_eq!(all_changes_after(&store, seq).len(), 1);
}

fn all_changes_after(store: &dyn Store, after: i64) -> Vec<safeguard_store::Change> {
    let mut out = Vec::new();
    store
        .changes_since(after, usize::MAX, &mut |_, c| out.push(c))
        .unwrap();
    out
}

/// A database from a newer build, and a database holding someone else's tables, are refused
/// with `Corrupt` instead of being migrated.
#[test]
fn refuses_newer_and_foreign_databases() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let store = db.open();
    store
        .execute_batch_for_tests(
            "INSERT INTO schema_migrations (version, name) VALUES (99, 'from the future')",
        )
        .unwrap();
    drop(store);
    let err = PostgresStore::open(&PostgresOptions::new(db.url())).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt(m) if m.contains("newer")),
        "{err}"
    );

    let Some(other) = TestDatabase::create() else {
        return;
    };
    let bare = PostgresStore::open_at_version(&PostgresOptions::new(other.url()), 0).unwrap();
    bare.execute_batch_for_tests("DROP TABLE schema_migrations; CREATE TABLE orders (id INT)")
        .unwrap();
    drop(bare);
    let err = PostgresStore::open(&PostgresOptions::new(other.url())).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt(m) if m.contains("not a Safeguard database")),
        "{err}"
    );
}

/// Bad connection strings and unreachable servers are clean `Backend` errors, the password
/// never shown.
#[test]
fn connection_errors_are_clean() {
    let err =
        PostgresStore::open(&PostgresOptions::new("postgres://u:secret@/x?bad=1")).unwrap_err();
    assert!(matches!(&err, Error::Backend(_)), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
    let mut o = PostgresOptions::new("postgres://u:secret@127.0.0.1:1/x");
    o.connect_timeout = Duration::from_secs(2);
    let start = Instant::now();
    let err = PostgresStore::open(&o).unwrap_err();
    assert!(matches!(&err, Error::Backend(_)), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

/// Four stores on one database (as four processes would be) writing at once: every write
/// lands, and the feed is gap-free (1..=N), in commit order, and replays to the same signals
/// a scan sees.
#[test]
fn concurrent_writers_keep_one_gap_free_feed() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let first = db.open();
    let bank = first.create_bank(&new_bank("B")).unwrap();
    const WRITERS: usize = 4;
    const EACH: usize = 25;
    let start = Arc::new(Barrier::new(WRITERS));
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let url = db.url().to_owned();
            let start = start.clone();
            std::thread::spawn(move || {
                let store = PostgresStore::open(&PostgresOptions::new(url)).unwrap();
                start.wait();
                for i in 0..EACH {
                    let v = format!("{w:02}{i:04}");
                    if i % 5 == 0 {
                        let e = SourceEntry {
                            signal_type: "pdq".into(),
                            value: v,
                            ..Default::default()
                        };
                        store
                            .apply_source_batch(
                                bank.id,
                                &SourceBatch {
                                    source: "file:x",
                                    seen_at: 1,
                                    upserts: &[e],
                                    removals: &[],
                                    checkpoint: None,
                                },
                            )
                            .unwrap();
                    } else {
                        store
                            .add_content(bank.id, &new_content(&[("md5", &v)]))
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let changes = all_changes(&first);
    let seqs: Vec<i64> = changes.iter().map(|(s, _)| *s).collect();
    let n = (WRITERS * EACH) as i64;
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    assert_eq!(first.last_seq().unwrap(), n);
    let mut followed = std::collections::BTreeMap::new();
    conformance::follow(&first, &mut followed, 0);
    let (scanned, seq) = scan(&first);
    assert_eq!(seq, n);
    conformance::assert_same_signals(&followed, &scanned, "feed vs scan");
    assert_eq!(scanned.len(), WRITERS * EACH);
}

/// `wait_for_changes` returns as soon as another store commits (the NOTIFY wake-up), well
/// within a second; with no write it returns `false` after the timeout; and a store that is
/// already behind returns at once.
#[test]
fn wait_for_changes_wakes_on_another_stores_write() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let reader = Arc::new(db.open());
    let writer = db.open();
    let bank = writer.create_bank(&new_bank("B")).unwrap();
    let after = reader.last_seq().unwrap();
    assert!(!reader
        .wait_for_changes(after, Duration::from_millis(200))
        .unwrap());
    // Let the listener connect (its first wait started it), so the wake-up is measured,
    // not the fallback.
    std::thread::sleep(Duration::from_millis(300));
    let r = reader.clone();
    let waiter = std::thread::spawn(move || {
        let t = Instant::now();
        let woke = r.wait_for_changes(after, Duration::from_secs(20)).unwrap();
        (woke, Instant::now(), t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    let written = Instant::now();
    writer
        .add_content(bank.id, &new_content(&[("md5", "aa")]))
        .unwrap();
    let (woke, at, waited) = waiter.join().unwrap();
    assert!(woke);
    let delay = at.saturating_duration_since(written);
    eprintln!("wake-up {delay:?} after the commit (waited {waited:?})");
    assert!(delay < Duration::from_secs(1), "{delay:?}");
    // Already behind: immediate.
    let t = Instant::now();
    assert!(reader.wait_for_changes(0, Duration::from_secs(20)).unwrap());
    assert!(t.elapsed() < Duration::from_secs(1));
}

/// Entries with every character COPY's text format and PostgreSQL's text treat specially
/// (tab, newline, backslash, `\N`, NUL) go in through COPY and come back exactly, with their
/// provenance; a withdrawal of one of them finds it.
#[test]
fn import_through_copy_round_trips_hostile_text() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let store = db.open();
    let bank = store.create_bank(&new_bank("B")).unwrap();
    let values = [
        "tab\there",
        "line\nbreak\r",
        "back\\slash",
        "\\N",
        "nul\0byte",
        "\u{1}escape\u{1}\u{2}",
        "名前 🚀",
        "",
    ];
    let upserts: Vec<SourceEntry> = values
        .iter()
        .map(|v| SourceEntry {
            signal_type: format!("t\t{v}"),
            value: (*v).to_owned(),
            source_id: Some(format!("id {v}")),
            classification: Some(format!("c {v}")),
            metadata: Some(format!("m {v}")),
        })
        .collect();
    let out = store
        .apply_source_batch(
            bank.id,
            &SourceBatch {
                source: "file:odd",
                seen_at: 5,
                upserts: &upserts,
                removals: &[],
                checkpoint: None,
            },
        )
        .unwrap();
    assert_eq!(out.added, values.len() as u64);
    let (signals, _) = scan(&store);
    let mut got: Vec<(String, String)> = signals
        .values()
        .map(|s| (s.signal_type.clone(), s.value.clone()))
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = upserts
        .iter()
        .map(|e| (e.signal_type.clone(), e.value.clone()))
        .collect();
    want.sort();
    assert_eq!(got, want);
    for e in &upserts {
        let p = store.provenance(bank.id, &e.signal_type, &e.value).unwrap();
        assert_eq!(p.len(), 1, "{:?}", e.value);
        assert_eq!(p[0].source_id, e.source_id);
        assert_eq!(p[0].classification, e.classification);
    }
    let contents = store.list_content(bank.id, None, 100).unwrap();
    assert!(contents
        .iter()
        .any(|c| c.metadata.as_deref() == Some("m nul\0byte")));
    let out = store
        .apply_source_batch(
            bank.id,
            &SourceBatch {
                source: "file:odd",
                seen_at: 6,
                upserts: &[],
                removals: &[SourceRemoval {
                    signal_type: "t\tnul\0byte".into(),
                    value: "nul\0byte".into(),
                }],
                checkpoint: None,
            },
        )
        .unwrap();
    assert_eq!(out.removed, 1);
    let last = all_changes(&store).pop().unwrap().1;
    assert!(matches!(last, Change::Removed(s) if s.value == "nul\0byte"));
}

#[test]
fn audit_conformance() {
    let Some(_probe) = TestDatabase::create() else {
        return;
    };
    let dbs = RefCell::new(Vec::new());
    safeguard_store::audit_conformance::run_all(&|| {
        let db = TestDatabase::create().expect("the server answered the probe");
        let store = db.open();
        dbs.borrow_mut().push(db);
        Box::new(store)
    });
}

#[test]
fn report_conformance() {
    let Some(_probe) = TestDatabase::create() else {
        return;
    };
    let dbs = RefCell::new(Vec::new());
    safeguard_store::report_conformance::run_all(&|| {
        let db = TestDatabase::create().expect("the server answered the probe");
        let store = db.open();
        dbs.borrow_mut().push(db);
        Box::new(store)
    });
}

#[test]
fn console_conformance() {
    let Some(_probe) = TestDatabase::create() else {
        return;
    };
    let dbs = RefCell::new(Vec::new());
    safeguard_store::console_conformance::run_all(&|| {
        let db = TestDatabase::create().expect("the server answered the probe");
        let store = db.open();
        dbs.borrow_mut().push(db);
        Box::new(store)
    });
}

/// A database at version 6 (before the console) upgrades in place: the queue counts start
/// from the cases already there, and the triggers keep them from then on.
#[test]
fn upgrade_to_the_console_counts_existing_cases() {
    use safeguard_store::console::QueueStats;
    use safeguard_store::ConsoleStore;
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let old = PostgresStore::open_at_version(&PostgresOptions::new(db.url()), 6).unwrap();
    let mut ids = Vec::new();
    for (i, queue) in ["csam", "csam", "spam"].iter().enumerate() {
        let mut s = safeguard_store::action_conformance::submission(
            &format!("p{i}"),
            None,
            Some((queue, 1)),
        );
        s.created_at = 100 + i as i64;
        match old.record_submission(&s, &mut |_| vec![]).unwrap() {
            safeguard_store::action::SubmitOutcome::Recorded(r) => ids.push(r.case_id.unwrap()),
            other => panic!("{other:?}"),
        }
    }
    old.transition_case(
        ids[0],
        &safeguard_store::action::CaseTransition {
            from: "open".into(),
            to: "in_review".into(),
            actor: "api".into(),
            note: None,
            decision: None,
            labels: Vec::new(),
            at: 200,
        },
        &mut |_| vec![],
    )
    .unwrap();
    drop(old);
    let store = db.open();
    let stats = |queue: &str, open: u64, in_review: u64, oldest: i64| QueueStats {
        queue: queue.into(),
        open,
        in_review,
        oldest_opened_at: Some(oldest),
    };
    assert_eq!(
        store.queue_stats().unwrap(),
        vec![stats("csam", 1, 1, 100), stats("spam", 1, 0, 102)]
    );
}

/// Backup and restore as `docs/operations.md` gives them: `pg_dump -Fc` of a database holding
/// a key and a 1,000-hash bank, `pg_restore` into an empty database, and the store opened there
/// has the same key, signals and feed, and carries on from them: new rows take new ids and the
/// feed goes on without a gap or a repeat.
#[test]
fn a_dump_restored_into_an_empty_database_carries_on() {
    let Some(src) = TestDatabase::create() else {
        return;
    };
    let dst = TestDatabase::create().expect("the server answered the probe");
    for tool in ["pg_dump", "pg_restore"] {
        if std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "{tool} not found (CI=true: the backup test must run)"
            );
            eprintln!("SKIPPED: {tool} not found (install PostgreSQL's client tools)");
            return;
        }
    }
    let store = src.open();
    store
        .create_api_key(&safeguard_store::NewApiKey {
            key_id: "0123456789abcdef".into(),
            name: "backup".into(),
            secret_sha256: format!("{:064x}", 7),
            scopes: vec!["match".into()],
        })
        .unwrap();
    let bank = store.create_bank(&new_bank("BACKUP")).unwrap();
    let contents: Vec<_> = (0..1000u64)
        .map(|i| new_content(&[("pdq", &format!("{:064x}", i * 7919 + 1))]))
        .collect();
    store.add_contents(bank.id, &contents).unwrap();
    let (signals, seq) = scan(&store);
    let changes = all_changes(&store);
    let keys = store.list_api_keys().unwrap();
    drop(store);

    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_str().unwrap();
    let run = |tool: &str, args: &[&str]| {
        let out = std::process::Command::new(tool)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run("pg_dump", &["-Fc", "-f", path, "-d", src.url()]);
    run("pg_restore", &["--no-owner", "-d", dst.url(), path]);

    let restored = dst.open();
    assert_eq!(restored.list_api_keys().unwrap(), keys);
    let (signals_after, seq_after) = scan(&restored);
    assert_eq!(signals_after.len(), 1000);
    assert_eq!((signals_after, seq_after), (signals.clone(), seq));
    assert_eq!(all_changes(&restored), changes);
    // The identity sequences and the feed position came along.
    let added = restored
        .add_content(bank.id, &new_content(&[("md5", &format!("{:032x}", 5))]))
        .unwrap();
    assert!(signals.values().all(|s| s.content_id < added.id));
    let last = restored.last_seq().unwrap();
    assert_eq!(last, seq + 1, "one new feed row after the restored ones");
}
