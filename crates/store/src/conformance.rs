//! The conformance suite every [`Store`] must pass, and a reference model of the contract.
//!
//! Call [`run_all`] from an implementation's tests with a function that makes a fresh, empty
//! store. Each check is also public so a failure can be rerun alone. Checks panic (like
//! `assert!`) with a message naming what broke; an `unwrap()` here is such an assertion (the
//! call must succeed), not an unchecked assumption.
//!
//! [`Model`] is the contract written as plain in-memory code. [`check_ops`] applies a sequence
//! of [`Op`]s to a store and to the model and compares every observable result; a property
//! test generates the sequences (see `tests/model.rs`).
//!
//! Contract details the trait docs leave open, pinned here:
//! - Ids of banks, content items, signals and keys are never reused after a delete.
//! - One call's `Added` or `Removed` changes come in ascending signal id; signal ids of one item
//!   follow the order its signals were given in.
//! - Every successful `update_bank`/`update_content` appends exactly one `Updated`, even if it
//!   changed nothing; failed calls append nothing.
//! - `list_content` of an unknown bank is `NotFound`.
//! - `revoke_api_key` on a revoked key succeeds and keeps the first `revoked_at`.
//! - `list_api_keys` is ordered by [`ApiKey::id`].
//! - A non-finite `enabled_ratio` is refused with an error and stores nothing.
//! - `contents` returns each existing id asked for (callers must not rely on the order).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{
    ApiKey, Bank, BankId, BankKind, BankUpdate, BatchOutcome, Change, Content, ContentId,
    ContentUpdate, Counts, DiffOutcome, DiffSide, Error, ExchangeCheckpoint, Follower, NewApiKey,
    NewBank, NewContent, Pruned, Result, Seq, Signal, SignalId, SourceBatch, SourceEntry,
    SourceImport, SourceRemoval, Store, StoredExchange,
};

/// An id no check ever creates, for `NotFound` checks.
pub const UNKNOWN_ID: i64 = 1_000_000_007;

/// One conformance check: panics if `store` breaks the contract.
pub type Check = fn(&dyn Store);

/// Runs every check, each on a fresh store from `make`.
pub fn run_all(make: &dyn Fn() -> Box<dyn Store>) {
    let checks: &[(&str, Check)] = &[
        ("empty_store", empty_store),
        ("bank_create_and_read", bank_create_and_read),
        ("bank_name_unique", bank_name_unique),
        ("bank_update", bank_update),
        ("bank_rename_conflict", bank_rename_conflict),
        ("bank_delete_cascades", bank_delete_cascades),
        ("content_crud", content_crud),
        ("content_signals", content_signals),
        (
            "duplicate_signal_type_conflict",
            duplicate_signal_type_conflict,
        ),
        ("add_contents_batch", add_contents_batch),
        ("list_content_paging", list_content_paging),
        ("change_feed_kinds", change_feed_kinds),
        (
            "changes_since_limit_and_resume",
            changes_since_limit_and_resume,
        ),
        ("scan_then_follow", scan_then_follow),
        ("scan_with_concurrent_writes", scan_with_concurrent_writes),
        ("disabled_contents", disabled_contents),
        ("counts", counts),
        ("api_keys", api_keys),
        ("not_found_everywhere", not_found_everywhere),
        ("odd_strings_round_trip", odd_strings_round_trip),
        ("non_finite_ratio_refused", non_finite_ratio_refused),
        ("ids_never_reused", ids_never_reused),
        ("model_sequence", model_sequence),
        ("stored_exchanges", stored_exchanges),
    ];
    for (name, check) in checks.iter().chain(SOURCE_CHECKS) {
        let store = make();
        // Names the failing check in the output; the panic itself carries the detail.
        eprintln!("conformance: {name}");
        check(&*store);
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// A standard bank named `name` with typical settings.
pub fn new_bank(name: &str) -> NewBank {
    NewBank {
        name: name.to_owned(),
        enabled: true,
        enabled_ratio: 1.0,
        pdq_threshold: 31,
        kind: BankKind::Standard,
        tags: Vec::new(),
        classification: None,
    }
}

/// A content item with these (type, value) signals and nothing else.
pub fn new_content(signals: &[(&str, &str)]) -> NewContent {
    NewContent {
        signals: signals
            .iter()
            .map(|(t, v)| ((*t).to_owned(), (*v).to_owned()))
            .collect(),
        ..NewContent::default()
    }
}

/// A 64-digit hex value derived from `n`, shaped like a PDQ hash.
fn hex(n: u64) -> String {
    format!("{n:064x}")
}

/// The whole change feed.
pub fn all_changes(store: &dyn Store) -> Vec<(Seq, Change)> {
    let mut out = Vec::new();
    let last = store
        .changes_since(0, usize::MAX, &mut |seq, c| out.push((seq, c)))
        .expect("changes_since");
    assert_eq!(
        last,
        out.last().map_or(0, |(s, _)| *s),
        "changes_since return"
    );
    out
}

/// The feed after `after`, values only.
fn changes_after(store: &dyn Store, after: Seq) -> Vec<Change> {
    let mut out = Vec::new();
    store
        .changes_since(after, usize::MAX, &mut |_, c| out.push(c))
        .expect("changes_since");
    out
}

/// Every signal, by id, and the scan's seq.
pub fn scan(store: &dyn Store) -> (BTreeMap<SignalId, Signal>, Seq) {
    let mut out = BTreeMap::new();
    let mut last_id = None;
    let seq = store
        .scan_signals(&mut |s| {
            assert!(
                last_id < Some(s.id),
                "scan_signals not in id order at {}",
                s.id
            );
            last_id = Some(s.id);
            out.insert(s.id, s.clone());
        })
        .expect("scan_signals");
    (out, seq)
}

/// Asserts two signal maps are equal, reporting only the ids that differ (the maps can hold
/// thousands of signals).
pub fn assert_same_signals(
    got: &BTreeMap<SignalId, Signal>,
    want: &BTreeMap<SignalId, Signal>,
    what: &str,
) {
    if got == want {
        return;
    }
    let extra: Vec<SignalId> = got
        .keys()
        .filter(|id| !want.contains_key(id))
        .copied()
        .collect();
    let missing: Vec<SignalId> = want
        .keys()
        .filter(|id| !got.contains_key(id))
        .copied()
        .collect();
    let differ: Vec<SignalId> = got
        .iter()
        .filter(|(id, s)| want.get(id).is_some_and(|w| w != *s))
        .map(|(id, _)| *id)
        .collect();
    panic!("{what}: signals differ: extra {extra:?}, missing {missing:?}, changed {differ:?}");
}

/// Which error variant `r` holds, for comparing outcomes without their messages.
pub fn outcome<T>(r: &Result<T>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(Error::NotFound(_)) => "not_found",
        Err(Error::Conflict(_)) => "conflict",
        Err(Error::Backend(_)) => "backend",
        Err(Error::Corrupt(_)) => "corrupt",
        Err(Error::Aborted) => "aborted",
        Err(Error::FeedPruned { .. }) => "feed_pruned",
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Timestamps are the store's clock in Unix ms: within a minute of ours, in order.
fn assert_times(what: &str, created_at: i64, updated_at: i64) {
    let now = now_ms();
    for t in [created_at, updated_at] {
        assert!(
            (now - 60_000..=now + 60_000).contains(&t),
            "{what}: timestamp {t} is not near now ({now}) in Unix ms"
        );
    }
    assert!(created_at <= updated_at, "{what}: created_at > updated_at");
}

fn ids(contents: &[Content]) -> Vec<ContentId> {
    contents.iter().map(|c| c.id).collect()
}

// ---------------------------------------------------------------------------------------------
// Checks

/// A new store is empty and its feed starts at 0.
pub fn empty_store(store: &dyn Store) {
    assert_eq!(store.last_seq().unwrap(), 0);
    assert_eq!(store.list_banks().unwrap(), vec![]);
    assert_eq!(store.list_api_keys().unwrap(), vec![]);
    assert_eq!(store.disabled_contents().unwrap(), vec![]);
    assert_eq!(store.counts().unwrap(), Counts::default());
    assert_eq!(all_changes(store), vec![]);
    assert_eq!(scan(store), (BTreeMap::new(), 0));
    assert_eq!(store.changes_since(0, 10, &mut |_, _| {}).unwrap(), 0);
}

/// A created bank reads back by id, by name and in the list (ordered by name).
pub fn bank_create_and_read(store: &dyn Store) {
    let mut nb = new_bank("ZULU");
    nb.enabled = false;
    nb.enabled_ratio = 0.1;
    nb.pdq_threshold = u32::MAX;
    nb.kind = BankKind::AllowList;
    let zulu = store.create_bank(&nb).unwrap();
    assert_eq!(
        (
            &zulu.name,
            zulu.enabled,
            zulu.enabled_ratio,
            zulu.pdq_threshold,
            zulu.kind
        ),
        (&nb.name, false, 0.1, u32::MAX, BankKind::AllowList)
    );
    assert_times("bank", zulu.created_at, zulu.updated_at);
    assert_eq!(
        zulu.created_at, zulu.updated_at,
        "new bank: updated_at == created_at"
    );
    let alpha = store.create_bank(&new_bank("ALPHA")).unwrap();
    assert_ne!(alpha.id, zulu.id);
    assert_eq!(store.bank(zulu.id).unwrap(), Some(zulu.clone()));
    assert_eq!(store.bank_by_name("ZULU").unwrap(), Some(zulu.clone()));
    assert_eq!(
        store.bank_by_name("zulu").unwrap(),
        None,
        "names are case-sensitive"
    );
    assert_eq!(store.list_banks().unwrap(), vec![alpha, zulu]);
    // Creating a bank is not a signal change.
    assert_eq!(store.last_seq().unwrap(), 0);
}

/// Two banks cannot share a name; the failed call changes nothing.
pub fn bank_name_unique(store: &dyn Store) {
    let a = store.create_bank(&new_bank("A")).unwrap();
    let err = store.create_bank(&new_bank("A"));
    assert_eq!(outcome(&err), "conflict", "{err:?}");
    if let Err(e) = err {
        assert!(
            e.to_string().contains('A'),
            "conflict message names the bank: {e}"
        );
    }
    assert_eq!(store.list_banks().unwrap(), vec![a]);
}

/// Each field of a bank update applies alone; `None` leaves fields alone; each update appends
/// one `Updated` for the bank.
pub fn bank_update(store: &dyn Store) {
    let b = store.create_bank(&new_bank("B")).unwrap();
    let seq0 = store.last_seq().unwrap();
    let up = |u: BankUpdate| store.update_bank(b.id, &u).unwrap();
    let after = up(BankUpdate {
        enabled: Some(false),
        ..BankUpdate::default()
    });
    assert!(!after.enabled);
    assert_eq!((after.name.as_str(), after.pdq_threshold), ("B", 31));
    let after = up(BankUpdate {
        enabled_ratio: Some(0.25),
        pdq_threshold: Some(0),
        ..BankUpdate::default()
    });
    assert_eq!(
        (after.enabled, after.enabled_ratio, after.pdq_threshold),
        (false, 0.25, 0)
    );
    let after = up(BankUpdate {
        name: Some("B2".into()),
        ..BankUpdate::default()
    });
    assert_eq!(after.name, "B2");
    let after = up(BankUpdate::default());
    assert_eq!(after.created_at, b.created_at);
    assert_times("bank", after.created_at, after.updated_at);
    assert_eq!(store.bank(b.id).unwrap(), Some(after.clone()));
    assert_eq!(store.bank_by_name("B").unwrap(), None);
    assert_eq!(store.bank_by_name("B2").unwrap(), Some(after));
    let updated = Change::Updated {
        bank_id: b.id,
        content_id: None,
    };
    assert_eq!(changes_after(store, seq0), vec![updated; 4]);
}

/// Renaming onto a taken name is `Conflict` and leaves both banks and the feed as they were;
/// renaming a bank to its own name is fine.
pub fn bank_rename_conflict(store: &dyn Store) {
    let a = store.create_bank(&new_bank("A")).unwrap();
    let b = store.create_bank(&new_bank("B")).unwrap();
    let seq = store.last_seq().unwrap();
    let err = store.update_bank(
        b.id,
        &BankUpdate {
            name: Some("A".into()),
            enabled: Some(false),
            ..BankUpdate::default()
        },
    );
    assert_eq!(outcome(&err), "conflict", "{err:?}");
    assert_eq!(store.bank(b.id).unwrap(), Some(b.clone()));
    assert_eq!(store.bank(a.id).unwrap(), Some(a.clone()));
    assert_eq!(
        store.last_seq().unwrap(),
        seq,
        "a failed update appends nothing"
    );
    let same = store
        .update_bank(
            a.id,
            &BankUpdate {
                name: Some("A".into()),
                ..BankUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(same.name, "A");
}

/// Deleting a bank deletes its content and signals (each `Removed` with full signal data),
/// leaves other banks alone and frees the name.
pub fn bank_delete_cascades(store: &dyn Store) {
    let doomed = store.create_bank(&new_bank("DOOMED")).unwrap();
    let kept = store.create_bank(&new_bank("KEPT")).unwrap();
    let c1 = store
        .add_content(doomed.id, &new_content(&[("pdq", &hex(1)), ("md5", "aa")]))
        .unwrap();
    let other = store
        .add_content(kept.id, &new_content(&[("pdq", &hex(1))]))
        .unwrap();
    let c2 = store
        .add_content(doomed.id, &new_content(&[("pdq", &hex(2))]))
        .unwrap();
    assert_eq!(store.provenance(doomed.id, "md5", "aa").unwrap().len(), 1);
    let seq = store.last_seq().unwrap();
    assert_eq!(store.delete_bank(doomed.id).unwrap(), doomed);
    // Its provenance goes with it; the other bank's record of the same hash stays.
    assert!(store.provenance(doomed.id, "md5", "aa").unwrap().is_empty());
    assert!(store
        .provenance(doomed.id, "pdq", &hex(1))
        .unwrap()
        .is_empty());
    assert_eq!(store.provenance(kept.id, "pdq", &hex(1)).unwrap().len(), 1);
    let mut gone: Vec<Signal> = c1.signals.iter().chain(&c2.signals).cloned().collect();
    gone.sort_by_key(|s| s.id);
    let expected: Vec<Change> = gone.into_iter().map(Change::Removed).collect();
    assert_eq!(changes_after(store, seq), expected);
    assert_eq!(store.bank(doomed.id).unwrap(), None);
    assert_eq!(store.bank_by_name("DOOMED").unwrap(), None);
    assert_eq!(store.content(c1.id).unwrap(), None);
    assert_eq!(store.content(c2.id).unwrap(), None);
    assert_eq!(
        outcome(&store.list_content(doomed.id, None, 10)),
        "not_found"
    );
    assert_eq!(store.content(other.id).unwrap(), Some(other.clone()));
    let (signals, _) = scan(store);
    assert_eq!(signals.into_values().collect::<Vec<_>>(), other.signals);
    assert_eq!(store.list_banks().unwrap(), vec![kept]);
    let counts = store.counts().unwrap();
    assert_eq!((counts.banks, counts.contents), (1, 1));
    assert_eq!(outcome(&store.delete_bank(doomed.id)), "not_found");
    store.create_bank(&new_bank("DOOMED")).unwrap();
}

/// A content item's fields round-trip, update field by field, and delete returns the item.
pub fn content_crud(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    let nc = NewContent {
        metadata: Some(r#"{"source":"test"}"#.into()),
        note: Some("first".into()),
        disable_until_ts: 0,
        original_media_uri: Some("https://example.invalid/a.jpg".into()),
        signals: vec![("pdq".into(), hex(7))],
    };
    let c = store.add_content(bank.id, &nc).unwrap();
    assert_eq!(
        (
            &c.bank_id,
            &c.metadata,
            &c.note,
            c.disable_until_ts,
            &c.original_media_uri
        ),
        (&bank.id, &nc.metadata, &nc.note, 0, &nc.original_media_uri)
    );
    assert_times("content", c.created_at, c.updated_at);
    assert_eq!(store.content(c.id).unwrap(), Some(c.clone()));

    let u = store
        .update_content(
            c.id,
            &ContentUpdate {
                metadata: Some(None),
                ..ContentUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(
        (u.metadata.as_deref(), u.note.as_deref()),
        (None, Some("first"))
    );
    let u = store
        .update_content(
            c.id,
            &ContentUpdate {
                note: Some(Some("second".into())),
                disable_until_ts: Some(42),
                ..ContentUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(
        (u.note.as_deref(), u.disable_until_ts),
        (Some("second"), 42)
    );
    assert_eq!(u.original_media_uri, nc.original_media_uri);
    assert_eq!(u.signals, c.signals, "updates leave signals alone");
    assert_eq!(u.created_at, c.created_at);
    assert_times("content", u.created_at, u.updated_at);
    assert_eq!(store.content(c.id).unwrap(), Some(u.clone()));
    assert_eq!(store.delete_content(c.id).unwrap(), u);
    assert_eq!(store.content(c.id).unwrap(), None);
    assert_eq!(outcome(&store.delete_content(c.id)), "not_found");
    assert_eq!(store.list_content(bank.id, None, 10).unwrap(), vec![]);
}

/// Signals come back by type name with their owner's ids; items may have no signals; two
/// items may share a value.
pub fn content_signals(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    let c = store
        .add_content(
            bank.id,
            &new_content(&[("sha256", &hex(3)), ("md5", "m"), ("pdq", &hex(1))]),
        )
        .unwrap();
    let types: Vec<&str> = c.signals.iter().map(|s| s.signal_type.as_str()).collect();
    assert_eq!(types, ["md5", "pdq", "sha256"]);
    for s in &c.signals {
        assert_eq!((s.content_id, s.bank_id), (c.id, bank.id));
    }
    let distinct: BTreeSet<SignalId> = c.signals.iter().map(|s| s.id).collect();
    assert_eq!(distinct.len(), 3);
    // Ids follow the order given: sha256 first.
    let mut sorted = c.signals.clone();
    sorted.sort_by_key(|s| s.id);
    let by_id: Vec<&str> = sorted.iter().map(|s| s.signal_type.as_str()).collect();
    assert_eq!(by_id, ["sha256", "md5", "pdq"]);
    assert_eq!(store.content(c.id).unwrap(), Some(c.clone()));

    let empty = store.add_content(bank.id, &new_content(&[])).unwrap();
    assert_eq!(empty.signals, vec![]);
    assert_eq!(store.content(empty.id).unwrap(), Some(empty));

    let twin = store
        .add_content(bank.id, &new_content(&[("pdq", &hex(1))]))
        .unwrap();
    assert_eq!(twin.signals[0].value, hex(1));
    let (signals, _) = scan(store);
    assert_eq!(signals.len(), 4);
}

/// Two values of one signal type on one item is `Conflict`, and nothing is stored.
pub fn duplicate_signal_type_conflict(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    let before = store.counts().unwrap();
    for sigs in [
        &[("pdq", "a"), ("pdq", "b")][..],
        &[("pdq", "a"), ("md5", "m"), ("pdq", "a")][..],
    ] {
        let err = store.add_content(bank.id, &new_content(sigs));
        assert_eq!(outcome(&err), "conflict", "{err:?}");
        if let Err(e) = err {
            assert!(e.to_string().contains("pdq"), "message names the type: {e}");
        }
    }
    assert_eq!(store.counts().unwrap(), before);
    assert_eq!(store.last_seq().unwrap(), 0);
    assert_eq!(store.list_content(bank.id, None, 10).unwrap(), vec![]);
}

/// A batch is stored in order, all or nothing.
pub fn add_contents_batch(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    assert_eq!(store.add_contents(bank.id, &[]).unwrap(), vec![]);
    assert_eq!(store.last_seq().unwrap(), 0);
    let batch: Vec<NewContent> = (0..5)
        .map(|i| NewContent {
            note: Some(format!("item {i}")),
            ..new_content(&[("pdq", &hex(i))])
        })
        .collect();
    let added = store.add_contents(bank.id, &batch).unwrap();
    assert_eq!(added.len(), 5);
    for (i, c) in added.iter().enumerate() {
        assert_eq!(c.note.as_deref(), Some(format!("item {i}").as_str()));
        assert_eq!(c.signals[0].value, hex(i as u64));
        assert_eq!(store.content(c.id).unwrap().as_ref(), Some(c));
    }
    let distinct: BTreeSet<ContentId> = ids(&added).into_iter().collect();
    assert_eq!(distinct.len(), 5);
    let seq = store.last_seq().unwrap();
    let counts = store.counts().unwrap();

    let mut bad = batch.clone();
    bad[3].signals.push(("pdq".into(), "other".into()));
    assert_eq!(outcome(&store.add_contents(bank.id, &bad)), "conflict");
    assert_eq!(
        store.counts().unwrap(),
        counts,
        "a failed batch stores nothing"
    );
    assert_eq!(
        store.last_seq().unwrap(),
        seq,
        "a failed batch appends nothing"
    );
    assert_eq!(
        outcome(&store.add_contents(UNKNOWN_ID, &batch)),
        "not_found"
    );
    assert_eq!(outcome(&store.add_contents(UNKNOWN_ID, &[])), "not_found");
}

/// Paging visits every item of the bank once, in ascending id, for any page size.
pub fn list_content_paging(store: &dyn Store) {
    let a = store.create_bank(&new_bank("A")).unwrap();
    let b = store.create_bank(&new_bank("B")).unwrap();
    let mut in_a = Vec::new();
    for i in 0..25u64 {
        let bank = if i % 3 == 0 { b.id } else { a.id };
        let c = store
            .add_content(bank, &new_content(&[("pdq", &hex(i))]))
            .unwrap();
        if bank == a.id {
            in_a.push(c);
        }
    }
    // A deleted item leaves no gap in paging and is not returned.
    let deleted = in_a.remove(4);
    store.delete_content(deleted.id).unwrap();
    for page in [1, 3, 7, 100] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let got = store.list_content(a.id, after, page).unwrap();
            assert!(got.len() <= page, "page size {page} exceeded");
            let Some(last) = got.last() else { break };
            after = Some(last.id);
            seen.extend(got);
        }
        assert_eq!(seen, in_a, "page size {page}");
    }
    assert_eq!(store.list_content(a.id, None, 0).unwrap(), vec![]);
    let from_deleted = store.list_content(a.id, Some(deleted.id), 1).unwrap();
    let next = in_a.iter().find(|c| c.id > deleted.id).cloned();
    assert_eq!(from_deleted, next.into_iter().collect::<Vec<_>>());
    let last = in_a.last().map(|c| c.id);
    assert_eq!(store.list_content(a.id, last, 10).unwrap(), vec![]);
}

/// Each write appends the documented change kinds with full signal data, in strictly
/// increasing seq.
pub fn change_feed_kinds(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    let c = store
        .add_content(bank.id, &new_content(&[("pdq", &hex(1)), ("md5", "m")]))
        .unwrap();
    let mut signals = c.signals.clone();
    signals.sort_by_key(|s| s.id);
    let mut expected: Vec<Change> = signals.iter().cloned().map(Change::Added).collect();
    store
        .update_content(
            c.id,
            &ContentUpdate {
                disable_until_ts: Some(1),
                ..ContentUpdate::default()
            },
        )
        .unwrap();
    expected.push(Change::Updated {
        bank_id: bank.id,
        content_id: Some(c.id),
    });
    store
        .update_bank(
            bank.id,
            &BankUpdate {
                pdq_threshold: Some(10),
                ..BankUpdate::default()
            },
        )
        .unwrap();
    expected.push(Change::Updated {
        bank_id: bank.id,
        content_id: None,
    });
    store.delete_content(c.id).unwrap();
    expected.extend(signals.iter().cloned().map(Change::Removed));
    let c2 = store
        .add_content(bank.id, &new_content(&[("pdq", &hex(2))]))
        .unwrap();
    expected.push(Change::Added(c2.signals[0].clone()));
    store.delete_bank(bank.id).unwrap();
    expected.push(Change::Removed(c2.signals[0].clone()));

    let feed = all_changes(store);
    let seqs: Vec<Seq> = feed.iter().map(|(s, _)| *s).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seqs increase: {seqs:?}"
    );
    assert!(seqs[0] > 0, "seqs start above 0");
    assert_eq!(
        feed.into_iter().map(|(_, c)| c).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(store.last_seq().unwrap(), *seqs.last().unwrap());
}

/// `changes_since` honours `limit`, resumes from the seq it returns, and returns `after`
/// when there is nothing to pass.
pub fn changes_since_limit_and_resume(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    for i in 0..10 {
        store
            .add_content(bank.id, &new_content(&[("pdq", &hex(i)), ("md5", &hex(i))]))
            .unwrap();
    }
    let full = all_changes(store);
    assert_eq!(full.len(), 20);
    let mut calls = 0;
    assert_eq!(
        store.changes_since(0, 0, &mut |_, _| calls += 1).unwrap(),
        0
    );
    assert_eq!(calls, 0, "limit 0 passes nothing");
    for limit in [1, 3, 7] {
        let mut paged = Vec::new();
        let mut after = 0;
        loop {
            let mut page = Vec::new();
            let next = store
                .changes_since(after, limit, &mut |s, c| page.push((s, c)))
                .unwrap();
            assert!(page.len() <= limit);
            if page.is_empty() {
                assert_eq!(next, after, "nothing new returns `after`");
                break;
            }
            assert_eq!(next, page.last().unwrap().0);
            after = next;
            paged.extend(page);
        }
        assert_eq!(paged, full, "limit {limit}");
    }
    let last = store.last_seq().unwrap();
    assert_eq!(
        store
            .changes_since(last + 100, 10, &mut |_, _| calls += 1)
            .unwrap(),
        last + 100
    );
    assert_eq!(calls, 0);
}

/// Follows `changes_since(after)` into `signals`, checking each change applies exactly once.
pub fn follow(store: &dyn Store, signals: &mut BTreeMap<SignalId, Signal>, mut after: Seq) -> Seq {
    loop {
        let mut n = 0;
        let next = store
            .changes_since(after, 7, &mut |seq, change| {
                n += 1;
                match change {
                    Change::Added(s) => {
                        let id = s.id;
                        assert!(
                            signals.insert(id, s).is_none(),
                            "seq {seq}: signal {id} added twice"
                        );
                    }
                    Change::Removed(s) => {
                        let had = signals.remove(&s.id);
                        assert_eq!(
                            had.as_ref(),
                            Some(&s),
                            "seq {seq}: removed signal not present"
                        );
                    }
                    Change::Updated { .. } => {}
                }
            })
            .expect("changes_since");
        if n == 0 {
            return next;
        }
        after = next;
    }
}

/// A scan then the feed after the scan's seq equals a fresh scan.
pub fn scan_then_follow(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    let first = store
        .add_contents(
            bank.id,
            &(0..10)
                .map(|i| new_content(&[("pdq", &hex(i))]))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let (mut loaded, seq) = scan(store);
    assert_eq!(seq, store.last_seq().unwrap());
    assert_eq!(loaded.len(), 10);
    store.delete_content(first[2].id).unwrap();
    store
        .add_content(bank.id, &new_content(&[("md5", "x")]))
        .unwrap();
    let other = store.create_bank(&new_bank("C")).unwrap();
    store
        .add_content(other.id, &new_content(&[("pdq", &hex(1))]))
        .unwrap();
    store.delete_bank(bank.id).unwrap();
    let end = follow(store, &mut loaded, seq);
    let (now, now_seq) = scan(store);
    assert_eq!(end, now_seq);
    assert_same_signals(&loaded, &now, "scan then follow");
}

/// A scan racing writes on another thread, followed by the feed from the scan's seq, sees
/// every change exactly once. The scan waits (briefly) for the writer on its first row, so a
/// store whose reads do not block writes really interleaves them; one that serialises them
/// still passes, just without overlap.
pub fn scan_with_concurrent_writes(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    let preload = store
        .add_contents(
            bank.id,
            &(0..300)
                .map(|i| new_content(&[("pdq", &hex(i))]))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let (tx, rx) = mpsc::channel::<()>();
    let (mut loaded, seq) = std::thread::scope(|s| {
        let writer = s.spawn(move || {
            for i in 0..60u64 {
                if i % 3 == 0 {
                    // Usize index from a small u64 loop counter.
                    store.delete_content(preload[i as usize * 4].id).unwrap();
                } else {
                    store
                        .add_content(bank.id, &new_content(&[("pdq", &hex(1000 + i))]))
                        .unwrap();
                }
                // The receiver may have stopped listening; the writes are what matter.
                let _ = tx.send(());
            }
        });
        let mut loaded = BTreeMap::new();
        let mut waited = false;
        let seq = store
            .scan_signals(&mut |s| {
                if !waited {
                    waited = true;
                    // Not fatal if it times out: see the doc comment.
                    let _ = rx.recv_timeout(Duration::from_secs(1));
                }
                loaded.insert(s.id, s.clone());
            })
            .unwrap();
        writer.join().expect("writer thread panicked");
        (loaded, seq)
    });
    follow(store, &mut loaded, seq);
    assert_same_signals(&loaded, &scan(store).0, "scan racing writes, then follow");
}

/// Items with a non-zero `disable_until_ts` are listed by id; setting it to 0 unlists them.
pub fn disabled_contents(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    let mut expected = Vec::new();
    for ts in [0, 5, 0, i64::MAX, -1] {
        let c = store
            .add_content(
                bank.id,
                &NewContent {
                    disable_until_ts: ts,
                    ..new_content(&[])
                },
            )
            .unwrap();
        if ts != 0 {
            expected.push((c.id, ts));
        }
    }
    assert_eq!(store.disabled_contents().unwrap(), expected);
    let (id, _) = expected.remove(0);
    store
        .update_content(
            id,
            &ContentUpdate {
                disable_until_ts: Some(0),
                ..ContentUpdate::default()
            },
        )
        .unwrap();
    let (id2, _) = expected.remove(0);
    store.delete_content(id2).unwrap();
    assert_eq!(store.disabled_contents().unwrap(), expected);
}

/// Counts follow writes; signal counts are per type, sorted by name.
pub fn counts(store: &dyn Store) {
    let a = store.create_bank(&new_bank("A")).unwrap();
    let b = store.create_bank(&new_bank("B")).unwrap();
    store
        .add_content(a.id, &new_content(&[("sha256", "s"), ("pdq", &hex(1))]))
        .unwrap();
    let c = store
        .add_content(b.id, &new_content(&[("pdq", &hex(1))]))
        .unwrap();
    store.add_content(b.id, &new_content(&[])).unwrap();
    let counts = store.counts().unwrap();
    assert_eq!(
        counts,
        Counts {
            banks: 2,
            contents: 3,
            signals: vec![("pdq".into(), 2), ("sha256".into(), 1)],
        }
    );
    store.delete_content(c.id).unwrap();
    store.delete_bank(a.id).unwrap();
    assert_eq!(
        store.counts().unwrap(),
        Counts {
            banks: 1,
            contents: 1,
            signals: vec![],
        }
    );
}

/// Keys are created once per key id, looked up, listed by id, and revoked (still returned).
pub fn api_keys(store: &dyn Store) {
    let new = |key_id: &str| NewApiKey {
        key_id: key_id.into(),
        name: format!("key {key_id}"),
        secret_sha256: hex(9),
        scopes: vec!["match".into(), "banks:write".into()],
    };
    let k2 = store.create_api_key(&new("k2")).unwrap();
    assert_eq!(
        (
            &k2.key_id,
            &k2.name,
            &k2.secret_sha256,
            &k2.scopes,
            k2.revoked_at
        ),
        (
            &"k2".to_owned(),
            &"key k2".to_owned(),
            &hex(9),
            &new("k2").scopes,
            None
        )
    );
    assert_times("api key", k2.created_at, k2.created_at);
    let k1 = store
        .create_api_key(&NewApiKey {
            scopes: vec![],
            ..new("k1")
        })
        .unwrap();
    assert_eq!(k1.scopes, Vec::<String>::new());
    let err = store.create_api_key(&new("k2"));
    assert_eq!(outcome(&err), "conflict", "{err:?}");
    assert_eq!(store.api_key("k2").unwrap(), Some(k2.clone()));
    assert_eq!(store.api_key("nope").unwrap(), None);
    assert_eq!(store.list_api_keys().unwrap(), vec![k2.clone(), k1.clone()]);

    store.revoke_api_key("k2").unwrap();
    let revoked = store
        .api_key("k2")
        .unwrap()
        .expect("revoked keys are still returned");
    let at = revoked.revoked_at.expect("revoked_at set");
    assert_times("api key", revoked.created_at, at);
    assert_eq!(
        ApiKey {
            revoked_at: None,
            ..revoked.clone()
        },
        k2
    );
    // Past the clock's millisecond, so a second revocation that overwrote would show.
    std::thread::sleep(Duration::from_millis(5));
    store.revoke_api_key("k2").unwrap();
    assert_eq!(
        store.api_key("k2").unwrap(),
        Some(revoked.clone()),
        "first revocation kept"
    );
    assert_eq!(outcome(&store.revoke_api_key("nope")), "not_found");
    assert_eq!(store.list_api_keys().unwrap(), vec![revoked, k1]);
    assert_eq!(store.last_seq().unwrap(), 0, "keys are not in the feed");
}

/// Every call naming an unknown id says so and changes nothing.
pub fn not_found_everywhere(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    let c = store
        .add_content(bank.id, &new_content(&[("pdq", &hex(1))]))
        .unwrap();
    let seq = store.last_seq().unwrap();
    let counts = store.counts().unwrap();
    let u = UNKNOWN_ID;
    assert_eq!(store.bank(u).unwrap(), None);
    assert_eq!(store.bank_by_name("NOPE").unwrap(), None);
    assert_eq!(
        outcome(&store.update_bank(u, &BankUpdate::default())),
        "not_found"
    );
    assert_eq!(outcome(&store.delete_bank(u)), "not_found");
    assert_eq!(
        outcome(&store.add_content(u, &new_content(&[]))),
        "not_found"
    );
    assert_eq!(
        outcome(&store.add_contents(u, &[new_content(&[])])),
        "not_found"
    );
    assert_eq!(store.content(u).unwrap(), None);
    assert_eq!(outcome(&store.list_content(u, None, 10)), "not_found");
    assert_eq!(
        outcome(&store.update_content(u, &ContentUpdate::default())),
        "not_found"
    );
    assert_eq!(outcome(&store.delete_content(u)), "not_found");
    assert_eq!(ids(&store.contents(&[u, c.id, -1]).unwrap()), vec![c.id]);
    assert_eq!(store.contents(&[]).unwrap(), vec![]);
    assert_eq!(store.api_key("nope").unwrap(), None);
    assert_eq!(outcome(&store.revoke_api_key("nope")), "not_found");
    assert_eq!(store.last_seq().unwrap(), seq);
    assert_eq!(store.counts().unwrap(), counts);
    let err = store.delete_content(u).unwrap_err();
    assert!(
        err.to_string().contains(&u.to_string()),
        "message names the id: {err}"
    );
}

/// Strings that break naive SQL, encodings or C strings are stored and matched exactly.
pub fn odd_strings_round_trip(store: &dyn Store) {
    let huge = "x".repeat(1 << 20);
    let odd: Vec<String> = vec![
        "Robert'); DROP TABLE banks;--".into(),
        "double \"quote\" and back\\slash".into(),
        "名前 🚀 emoji".into(),
        "nul\0inside".into(),
        "%_ like wildcards *".into(),
        "\u{202e}right-to-left".into(),
        "line\nbreak\ttab".into(),
        String::new(),
        " padded ".into(),
        huge,
    ];
    let mut banks = Vec::new();
    for (i, s) in odd.iter().enumerate() {
        let bank = store.create_bank(&new_bank(s)).unwrap();
        assert_eq!(&bank.name, s);
        assert_eq!(
            store.bank_by_name(s).unwrap().as_ref(),
            Some(&bank),
            "bank {i}"
        );
        banks.push(bank);
        let nc = NewContent {
            metadata: Some(s.clone()),
            note: Some(s.clone()),
            disable_until_ts: 0,
            original_media_uri: Some(s.clone()),
            signals: vec![(s.clone(), s.clone()), (format!("t{i}"), s.clone())],
        };
        let c = store.add_content(banks[i].id, &nc).unwrap();
        let back = store.content(c.id).unwrap().expect("just added");
        assert_eq!(back, c, "content {i}");
        assert_eq!(back.metadata.as_ref(), Some(s));
        assert!(back
            .signals
            .iter()
            .any(|sig| &sig.signal_type == s && &sig.value == s));
        let key = store
            .create_api_key(&NewApiKey {
                key_id: s.clone(),
                name: s.clone(),
                secret_sha256: s.clone(),
                scopes: vec![s.clone(), "\",]".into()],
            })
            .unwrap();
        assert_eq!(store.api_key(s).unwrap(), Some(key), "key {i}");
    }
    // Wildcards and prefixes match nothing but themselves.
    assert_eq!(store.bank_by_name("%").unwrap(), None);
    assert_eq!(store.bank_by_name("nul").unwrap(), None);
    assert_eq!(store.bank_by_name("padded").unwrap(), None);
    let mut by_name = banks.clone();
    by_name.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        store.list_banks().unwrap(),
        by_name,
        "ordered by name, bytewise"
    );
    let (signals, _) = scan(store);
    assert_eq!(signals.len(), 2 * odd.len());
}

/// A NaN or infinite ratio is refused and stores nothing.
pub fn non_finite_ratio_refused(store: &dyn Store) {
    for ratio in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let r = store.create_bank(&NewBank {
            enabled_ratio: ratio,
            ..new_bank("NAN")
        });
        assert!(r.is_err(), "ratio {ratio} accepted");
    }
    assert_eq!(store.list_banks().unwrap(), vec![]);
    let b = store.create_bank(&new_bank("B")).unwrap();
    let r = store.update_bank(
        b.id,
        &BankUpdate {
            enabled_ratio: Some(f64::NAN),
            ..BankUpdate::default()
        },
    );
    assert!(r.is_err(), "NaN update accepted");
    assert_eq!(store.bank(b.id).unwrap(), Some(b));
    assert_eq!(store.last_seq().unwrap(), 0);
}

/// Ids of deleted rows are not handed out again.
pub fn ids_never_reused(store: &dyn Store) {
    let b1 = store.create_bank(&new_bank("B1")).unwrap();
    let c1 = store
        .add_content(b1.id, &new_content(&[("pdq", &hex(1))]))
        .unwrap();
    store.delete_bank(b1.id).unwrap();
    let b2 = store.create_bank(&new_bank("B1")).unwrap();
    let c2 = store
        .add_content(b2.id, &new_content(&[("pdq", &hex(1))]))
        .unwrap();
    assert_ne!(b1.id, b2.id);
    assert_ne!(c1.id, c2.id);
    assert_ne!(c1.signals[0].id, c2.signals[0].id);
    store
        .create_api_key(&NewApiKey {
            key_id: "k".into(),
            name: "k".into(),
            secret_sha256: String::new(),
            scopes: vec![],
        })
        .unwrap();
}

/// A fixed operation sequence through [`check_ops`], so every store runs the model comparison
/// even without a property-test harness.
pub fn model_sequence(store: &dyn Store) {
    let nc = |sigs: &[(&str, &str)]| new_content(sigs);
    let ops = vec![
        Op::CreateBank(new_bank("A")),
        Op::CreateBank(new_bank("B")),
        Op::CreateBank(new_bank("A")),
        Op::AddContent(0, nc(&[("pdq", "1"), ("md5", "2")])),
        Op::AddContent(1, nc(&[("pdq", "1")])),
        Op::AddContent(5, nc(&[("pdq", "1")])),
        Op::AddContents(0, vec![nc(&[("pdq", "3")]), nc(&[]), nc(&[("md5", "4")])]),
        Op::AddContents(1, vec![nc(&[("pdq", "3")]), nc(&[("x", "1"), ("x", "2")])]),
        Op::UpdateContent(
            1,
            ContentUpdate {
                disable_until_ts: Some(9),
                note: Some(Some("n".into())),
                metadata: None,
            },
        ),
        Op::UpdateBank(
            1,
            BankUpdate {
                name: Some("A".into()),
                ..BankUpdate::default()
            },
        ),
        Op::UpdateBank(
            1,
            BankUpdate {
                name: Some("C".into()),
                enabled: Some(false),
                ..BankUpdate::default()
            },
        ),
        Op::DeleteContent(0),
        Op::DeleteContent(0),
        Op::CreateApiKey(NewApiKey {
            key_id: "k".into(),
            name: "n".into(),
            secret_sha256: "s".into(),
            scopes: vec!["a".into()],
        }),
        Op::RevokeApiKey(0),
        Op::RevokeApiKey(0),
        Op::RevokeApiKey(1),
        Op::DeleteBank(0),
        Op::DeleteBank(0),
        Op::AddContent(0, nc(&[("pdq", "1")])),
    ];
    check_ops(store, &ops);
}

// ---------------------------------------------------------------------------------------------
// Model

/// Picks a target among the ids a [`Model`] has seen (deleted ones included) plus one unknown
/// id: `pick % (seen + 1)`, the last slot being unknown.
pub type Pick = usize;

/// One store call, for [`check_ops`].
#[derive(Debug, Clone)]
pub enum Op {
    /// [`Store::create_bank`].
    CreateBank(NewBank),
    /// [`Store::update_bank`] on a picked bank.
    UpdateBank(Pick, BankUpdate),
    /// [`Store::delete_bank`] on a picked bank.
    DeleteBank(Pick),
    /// [`Store::add_content`] into a picked bank.
    AddContent(Pick, NewContent),
    /// [`Store::add_contents`] into a picked bank.
    AddContents(Pick, Vec<NewContent>),
    /// [`Store::update_content`] on a picked item.
    UpdateContent(Pick, ContentUpdate),
    /// [`Store::delete_content`] on a picked item.
    DeleteContent(Pick),
    /// [`Store::create_api_key`].
    CreateApiKey(NewApiKey),
    /// [`Store::revoke_api_key`] on a picked key id.
    RevokeApiKey(Pick),
}

/// The store contract as plain in-memory data. It takes the ids the store under test assigns
/// (checking they are fresh) rather than predicting them, so any id scheme passes. Timestamps
/// are not modelled: compared records have them zeroed (`revoked_at` keeps only
/// `Some`/`None`).
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Live banks by id, timestamps zeroed.
    banks: BTreeMap<BankId, Bank>,
    /// Live content items by id, timestamps zeroed, signals by type name.
    contents: BTreeMap<ContentId, Content>,
    /// Keys in creation order, timestamps zeroed.
    keys: Vec<ApiKey>,
    /// The expected feed, without seqs.
    changes: Vec<Change>,
    /// Every bank id ever issued, in order (picks index this).
    seen_banks: Vec<BankId>,
    /// Every content id ever issued, in order.
    seen_contents: Vec<ContentId>,
    /// Every signal id ever issued.
    seen_signals: BTreeSet<SignalId>,
    /// Every key row id ever issued.
    seen_key_rows: BTreeSet<i64>,
}

fn zero_bank(b: &Bank) -> Bank {
    Bank {
        created_at: 0,
        updated_at: 0,
        ..b.clone()
    }
}

fn zero_content(c: &Content) -> Content {
    Content {
        created_at: 0,
        updated_at: 0,
        ..c.clone()
    }
}

fn zero_key(k: &ApiKey) -> ApiKey {
    ApiKey {
        created_at: 0,
        revoked_at: k.revoked_at.map(|_| 0),
        ..k.clone()
    }
}

fn pick<T: Clone>(seen: &[T], unknown: T, p: Pick) -> T {
    let i = p % (seen.len() + 1);
    seen.get(i).cloned().unwrap_or(unknown)
}

impl Model {
    /// An empty store's model.
    pub fn new() -> Model {
        Model::default()
    }

    /// The live signals by id.
    pub fn signals(&self) -> BTreeMap<SignalId, Signal> {
        self.contents
            .values()
            .flat_map(|c| c.signals.iter().map(|s| (s.id, s.clone())))
            .collect()
    }

    fn name_taken(&self, name: &str, except: Option<BankId>) -> bool {
        self.banks
            .values()
            .any(|b| b.name == name && Some(b.id) != except)
    }

    /// Registers what the store returned for an added item, checking its ids are fresh and
    /// its fields are what was asked for.
    fn accept_content(&mut self, bank_id: BankId, new: &NewContent, got: &Content) {
        assert!(
            !self.seen_contents.contains(&got.id),
            "content id {} reused",
            got.id
        );
        self.seen_contents.push(got.id);
        let mut asked: Vec<(String, String)> = new.signals.clone();
        asked.sort();
        let mut returned: Vec<(String, String)> = got
            .signals
            .iter()
            .map(|s| (s.signal_type.clone(), s.value.clone()))
            .collect();
        returned.sort();
        assert_eq!(returned, asked, "signals of item {}", got.id);
        let types: Vec<&String> = got.signals.iter().map(|s| &s.signal_type).collect();
        assert!(
            types.windows(2).all(|w| w[0] < w[1]),
            "signals by type name"
        );
        let mut by_id = got.signals.clone();
        by_id.sort_by_key(|s| s.id);
        let order: Vec<&str> = by_id.iter().map(|s| s.signal_type.as_str()).collect();
        let given: Vec<&str> = new.signals.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(order, given, "signal ids follow the given order");
        for s in &got.signals {
            assert!(self.seen_signals.insert(s.id), "signal id {} reused", s.id);
            assert_eq!((s.content_id, s.bank_id), (got.id, bank_id));
        }
        let expected = Content {
            id: got.id,
            bank_id,
            metadata: new.metadata.clone(),
            note: new.note.clone(),
            disable_until_ts: new.disable_until_ts,
            original_media_uri: new.original_media_uri.clone(),
            created_at: 0,
            updated_at: 0,
            signals: got.signals.clone(),
        };
        assert_eq!(zero_content(got), expected);
        self.changes.extend(by_id.into_iter().map(Change::Added));
        self.contents.insert(got.id, expected);
    }

    fn remove_content(&mut self, id: ContentId) -> Content {
        // Callers check existence first.
        let c = self.contents.remove(&id).expect("model content exists");
        let mut by_id = c.signals.clone();
        by_id.sort_by_key(|s| s.id);
        self.changes.extend(by_id.into_iter().map(Change::Removed));
        c
    }

    /// What the outcome of `add_contents(bank, batch)` must be, before the store's ids are
    /// known.
    fn add_outcome(&self, bank_id: BankId, batch: &[NewContent]) -> &'static str {
        if !self.banks.contains_key(&bank_id) {
            return "not_found";
        }
        let dup = batch.iter().any(|c| {
            let types: BTreeSet<&String> = c.signals.iter().map(|(t, _)| t).collect();
            types.len() != c.signals.len()
        });
        if dup {
            "conflict"
        } else {
            "ok"
        }
    }

    /// Applies `op` to `store` and to the model, asserting the store's result matches.
    pub fn apply(&mut self, store: &dyn Store, op: &Op) {
        match op {
            Op::CreateBank(nb) => {
                let r = store.create_bank(nb);
                if !nb.enabled_ratio.is_finite() {
                    assert!(r.is_err(), "non-finite ratio accepted");
                    return;
                }
                let want = if self.name_taken(&nb.name, None) {
                    "conflict"
                } else {
                    "ok"
                };
                assert_eq!(outcome(&r), want, "create_bank {:?}: {r:?}", nb.name);
                let Ok(b) = r else { return };
                assert!(!self.seen_banks.contains(&b.id), "bank id {} reused", b.id);
                self.seen_banks.push(b.id);
                let expected = Bank {
                    id: b.id,
                    name: nb.name.clone(),
                    enabled: nb.enabled,
                    enabled_ratio: nb.enabled_ratio,
                    pdq_threshold: nb.pdq_threshold,
                    kind: nb.kind,
                    tags: nb.tags.clone(),
                    classification: nb.classification.clone(),
                    created_at: 0,
                    updated_at: 0,
                };
                assert_eq!(zero_bank(&b), expected);
                self.banks.insert(b.id, expected);
            }
            Op::UpdateBank(p, u) => {
                let id = pick(&self.seen_banks, UNKNOWN_ID, *p);
                let r = store.update_bank(id, u);
                if u.enabled_ratio.is_some_and(|r| !r.is_finite()) {
                    assert!(r.is_err(), "non-finite ratio accepted");
                    return;
                }
                let want = match self.banks.get(&id) {
                    None => "not_found",
                    Some(_)
                        if u.name
                            .as_ref()
                            .is_some_and(|n| self.name_taken(n, Some(id))) =>
                    {
                        "conflict"
                    }
                    Some(_) => "ok",
                };
                assert_eq!(outcome(&r), want, "update_bank {id}: {r:?}");
                let Ok(got) = r else { return };
                // Existence was just checked by `want == "ok"`.
                let b = self.banks.get_mut(&id).expect("bank exists");
                if let Some(n) = &u.name {
                    b.name.clone_from(n);
                }
                b.enabled = u.enabled.unwrap_or(b.enabled);
                b.enabled_ratio = u.enabled_ratio.unwrap_or(b.enabled_ratio);
                b.pdq_threshold = u.pdq_threshold.unwrap_or(b.pdq_threshold);
                if let Some(tags) = &u.tags {
                    b.tags.clone_from(tags);
                }
                if let Some(c) = &u.classification {
                    b.classification.clone_from(c);
                }
                assert_eq!(zero_bank(&got), *b);
                self.changes.push(Change::Updated {
                    bank_id: id,
                    content_id: None,
                });
            }
            Op::DeleteBank(p) => {
                let id = pick(&self.seen_banks, UNKNOWN_ID, *p);
                let r = store.delete_bank(id);
                let want = if self.banks.contains_key(&id) {
                    "ok"
                } else {
                    "not_found"
                };
                assert_eq!(outcome(&r), want, "delete_bank {id}: {r:?}");
                let Ok(got) = r else { return };
                let b = self.banks.remove(&id).expect("bank exists");
                assert_eq!(zero_bank(&got), b);
                let mut signals: Vec<Signal> = self
                    .contents
                    .values()
                    .filter(|c| c.bank_id == id)
                    .flat_map(|c| c.signals.iter().cloned())
                    .collect();
                signals.sort_by_key(|s| s.id);
                self.changes
                    .extend(signals.into_iter().map(Change::Removed));
                self.contents.retain(|_, c| c.bank_id != id);
            }
            Op::AddContent(p, nc) => {
                let bank_id = pick(&self.seen_banks, UNKNOWN_ID, *p);
                let r = store.add_content(bank_id, nc);
                let want = self.add_outcome(bank_id, std::slice::from_ref(nc));
                assert_eq!(outcome(&r), want, "add_content to {bank_id}: {r:?}");
                if let Ok(c) = r {
                    self.accept_content(bank_id, nc, &c);
                }
            }
            Op::AddContents(p, batch) => {
                let bank_id = pick(&self.seen_banks, UNKNOWN_ID, *p);
                let r = store.add_contents(bank_id, batch);
                let want = self.add_outcome(bank_id, batch);
                assert_eq!(outcome(&r), want, "add_contents to {bank_id}: {r:?}");
                if let Ok(got) = r {
                    assert_eq!(got.len(), batch.len());
                    for (nc, c) in batch.iter().zip(&got) {
                        self.accept_content(bank_id, nc, c);
                    }
                }
            }
            Op::UpdateContent(p, u) => {
                let id = pick(&self.seen_contents, UNKNOWN_ID, *p);
                let r = store.update_content(id, u);
                let want = if self.contents.contains_key(&id) {
                    "ok"
                } else {
                    "not_found"
                };
                assert_eq!(outcome(&r), want, "update_content {id}: {r:?}");
                let Ok(got) = r else { return };
                let c = self.contents.get_mut(&id).expect("content exists");
                if let Some(m) = &u.metadata {
                    c.metadata.clone_from(m);
                }
                if let Some(n) = &u.note {
                    c.note.clone_from(n);
                }
                c.disable_until_ts = u.disable_until_ts.unwrap_or(c.disable_until_ts);
                assert_eq!(zero_content(&got), *c);
                self.changes.push(Change::Updated {
                    bank_id: c.bank_id,
                    content_id: Some(id),
                });
            }
            Op::DeleteContent(p) => {
                let id = pick(&self.seen_contents, UNKNOWN_ID, *p);
                let r = store.delete_content(id);
                let want = if self.contents.contains_key(&id) {
                    "ok"
                } else {
                    "not_found"
                };
                assert_eq!(outcome(&r), want, "delete_content {id}: {r:?}");
                let Ok(got) = r else { return };
                let c = self.remove_content(id);
                assert_eq!(zero_content(&got), c);
            }
            Op::CreateApiKey(nk) => {
                let r = store.create_api_key(nk);
                let taken = self.keys.iter().any(|k| k.key_id == nk.key_id);
                let want = if taken { "conflict" } else { "ok" };
                assert_eq!(outcome(&r), want, "create_api_key {:?}: {r:?}", nk.key_id);
                let Ok(k) = r else { return };
                assert!(
                    self.seen_key_rows.insert(k.id),
                    "key row id {} reused",
                    k.id
                );
                let expected = ApiKey {
                    id: k.id,
                    key_id: nk.key_id.clone(),
                    name: nk.name.clone(),
                    secret_sha256: nk.secret_sha256.clone(),
                    scopes: nk.scopes.clone(),
                    created_at: 0,
                    revoked_at: None,
                };
                assert_eq!(zero_key(&k), expected);
                self.keys.push(expected);
            }
            Op::RevokeApiKey(p) => {
                let key_ids: Vec<String> = self.keys.iter().map(|k| k.key_id.clone()).collect();
                let key_id = pick(&key_ids, "no such key".to_owned(), *p);
                let r = store.revoke_api_key(&key_id);
                match self.keys.iter_mut().find(|k| k.key_id == key_id) {
                    Some(k) => {
                        assert_eq!(outcome(&r), "ok", "revoke {key_id:?}: {r:?}");
                        k.revoked_at = Some(0);
                    }
                    None => assert_eq!(outcome(&r), "not_found", "revoke {key_id:?}: {r:?}"),
                }
            }
        }
    }

    /// Compares everything observable in `store` with the model.
    pub fn check(&self, store: &dyn Store) {
        let mut banks: Vec<Bank> = self.banks.values().cloned().collect();
        banks.sort_by(|a, b| a.name.cmp(&b.name));
        let got: Vec<Bank> = store.list_banks().unwrap().iter().map(zero_bank).collect();
        assert_eq!(got, banks, "list_banks");
        for &id in self.seen_banks.iter().chain([&UNKNOWN_ID]) {
            let want = self.banks.get(&id);
            assert_eq!(
                store.bank(id).unwrap().map(|b| zero_bank(&b)).as_ref(),
                want
            );
            let listed = store.list_content(id, None, usize::MAX);
            match want {
                None => assert_eq!(outcome(&listed), "not_found", "list_content {id}"),
                Some(bank) => {
                    let by_name = store.bank_by_name(&bank.name).unwrap();
                    assert_eq!(by_name.map(|b| zero_bank(&b)).as_ref(), Some(bank));
                    let expected: Vec<Content> = self
                        .contents
                        .values()
                        .filter(|c| c.bank_id == id)
                        .cloned()
                        .collect();
                    let mut paged = Vec::new();
                    let mut after = None;
                    loop {
                        let page = store.list_content(id, after, 2).unwrap();
                        let Some(last) = page.last() else { break };
                        after = Some(last.id);
                        paged.extend(page.iter().map(zero_content));
                    }
                    assert_eq!(paged, expected, "list_content {id} in pages of 2");
                    let all: Vec<Content> = listed.unwrap().iter().map(zero_content).collect();
                    assert_eq!(all, expected, "list_content {id}");
                }
            }
        }
        let mut asked = self.seen_contents.clone();
        asked.push(UNKNOWN_ID);
        for &id in &asked {
            let got = store.content(id).unwrap().map(|c| zero_content(&c));
            assert_eq!(got.as_ref(), self.contents.get(&id), "content {id}");
        }
        let mut got: Vec<Content> = store
            .contents(&asked)
            .unwrap()
            .iter()
            .map(zero_content)
            .collect();
        got.sort_by_key(|c| c.id);
        let live: Vec<Content> = self.contents.values().cloned().collect();
        assert_eq!(got, live, "contents");

        let disabled: Vec<(ContentId, i64)> = self
            .contents
            .values()
            .filter(|c| c.disable_until_ts != 0)
            .map(|c| (c.id, c.disable_until_ts))
            .collect();
        assert_eq!(
            store.disabled_contents().unwrap(),
            disabled,
            "disabled_contents"
        );

        let mut per_type: BTreeMap<String, u64> = BTreeMap::new();
        for s in self.signals().values() {
            *per_type.entry(s.signal_type.clone()).or_default() += 1;
        }
        let counts = Counts {
            banks: self.banks.len() as u64,
            contents: self.contents.len() as u64,
            signals: per_type.into_iter().collect(),
        };
        assert_eq!(store.counts().unwrap(), counts, "counts");

        let keys: Vec<ApiKey> = store
            .list_api_keys()
            .unwrap()
            .iter()
            .map(zero_key)
            .collect();
        assert_eq!(keys, self.keys, "list_api_keys");
        for k in &self.keys {
            let got = store.api_key(&k.key_id).unwrap().map(|k| zero_key(&k));
            assert_eq!(got.as_ref(), Some(k), "api_key {:?}", k.key_id);
        }

        let feed = all_changes(store);
        assert!(
            feed.windows(2).all(|w| w[0].0 < w[1].0),
            "seqs strictly increase"
        );
        let last = feed.last().map_or(0, |(s, _)| *s);
        assert_eq!(store.last_seq().unwrap(), last, "last_seq");
        let values: Vec<Change> = feed.into_iter().map(|(_, c)| c).collect();
        assert_eq!(values, self.changes, "change feed");
        let mut replayed = BTreeMap::new();
        follow(store, &mut replayed, 0);
        let signals = self.signals();
        assert_same_signals(&replayed, &signals, "feed replayed vs live signals");
        assert_eq!(scan(store), (signals, last), "scan_signals");
    }
}

/// Applies `ops` to `store` (which must be empty) and to a fresh [`Model`], comparing each
/// call's result and then the whole observable state after each call.
pub fn check_ops(store: &dyn Store, ops: &[Op]) {
    let mut model = Model::new();
    model.check(store);
    for (i, op) in ops.iter().enumerate() {
        model.apply(store, op);
        // Re-check after every op so a failure points at the op that caused it.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.check(store)));
        if let Err(panic) = result {
            eprintln!("state diverged after op {i}: {op:?}");
            std::panic::resume_unwind(panic);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hash-list sources

/// Every source check, for [`run_all`].
pub const SOURCE_CHECKS: &[(&str, Check)] = &[
    (
        "source_batch_adds_then_refreshes",
        source_batch_adds_then_refreshes,
    ),
    (
        "source_batch_adds_between_held_hashes",
        source_batch_adds_between_held_hashes,
    ),
    ("source_withdrawals", source_withdrawals),
    ("source_withdraw_by_source_id", source_withdraw_by_source_id),
    ("source_complete_list", source_complete_list),
    ("source_import_is_atomic", source_import_is_atomic),
    ("source_feed_ranges", source_feed_ranges),
    ("feed_pruning", feed_pruning),
    ("feed_pruning_by_age", feed_pruning_by_age),
    ("feed_followers", feed_followers),
    ("exchange_state", exchange_state),
    ("source_diff", source_diff),
];

fn entry(t: &str, v: &str) -> SourceEntry {
    SourceEntry {
        signal_type: t.to_owned(),
        value: v.to_owned(),
        ..SourceEntry::default()
    }
}

fn removal(t: &str, v: &str) -> SourceRemoval {
    SourceRemoval {
        signal_type: t.to_owned(),
        value: v.to_owned(),
    }
}

fn batch<'a>(
    source: &'a str,
    seen_at: i64,
    upserts: &'a [SourceEntry],
    removals: &'a [SourceRemoval],
) -> SourceBatch<'a> {
    SourceBatch {
        source,
        seen_at,
        upserts,
        removals,
        checkpoint: None,
    }
}

/// The live signals of a bank as (type, value) pairs, sorted.
fn bank_hashes(store: &dyn Store, bank_id: BankId) -> Vec<(String, String)> {
    let mut out = Vec::new();
    store
        .scan_bank(bank_id, &mut |s, _| {
            out.push((s.signal_type.clone(), s.value.clone()))
        })
        .unwrap();
    out.sort();
    out
}

/// A list whose new hashes sort between hashes the bank already holds (a bank that is not
/// empty): each new hash gets its own item and signal, and the feed shows exactly the new
/// signals.
pub fn source_batch_adds_between_held_hashes(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    let held: Vec<SourceEntry> = [1, 3].map(|i| entry("pdq", &hex(i))).into();
    store
        .apply_source_batch(bank.id, &batch("file:a.txt", 1000, &held, &[]))
        .unwrap();
    let (before, seq) = scan(store);
    let all: Vec<SourceEntry> = (0..5).map(|i| entry("pdq", &hex(i))).collect();
    let out = store
        .apply_source_batch(bank.id, &batch("file:a.txt", 2000, &all, &[]))
        .unwrap();
    assert_eq!(
        out,
        BatchOutcome {
            added: 3,
            refreshed: 2,
            removed: 0,
            unchanged: 0
        }
    );
    let (after, _) = scan(store);
    let new: Vec<Signal> = after
        .values()
        .filter(|s| !before.contains_key(&s.id))
        .cloned()
        .collect();
    let mut new_values: Vec<&str> = new.iter().map(|s| s.value.as_str()).collect();
    new_values.sort_unstable();
    assert_eq!(new_values, [hex(0), hex(2), hex(4)]);
    let contents: BTreeSet<ContentId> = after.values().map(|s| s.content_id).collect();
    assert_eq!(contents.len(), 5, "one item per hash");
    let added: Vec<Signal> = changes_after(store, seq)
        .into_iter()
        .map(|c| match c {
            Change::Added(s) => s,
            other => panic!("unexpected change {other:?}"),
        })
        .collect();
    assert_eq!(added, new, "the feed shows the new signals, in id order");
    assert_eq!(bank_hashes(store, bank.id).len(), 5);
}

/// New hashes become one content item each with one signal and a provenance record; the
/// same batch again adds nothing, refreshes `last_seen`, and leaves the feed alone; repeats
/// inside a batch count once (the last one's details win).
pub fn source_batch_adds_then_refreshes(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    let mut first = entry("md5", &hex(1)[32..]);
    first.source_id = Some("e1".into());
    first.classification = Some("A1".into());
    first.metadata = Some("{\"k\":1}".into());
    let mut repeat = first.clone();
    repeat.classification = Some("B1".into());
    let upserts = vec![first.clone(), entry("pdq", &hex(2)), repeat];
    let out = store
        .apply_source_batch(bank.id, &batch("file:a.txt", 1000, &upserts, &[]))
        .unwrap();
    assert_eq!(
        out,
        BatchOutcome {
            added: 2,
            refreshed: 0,
            removed: 0,
            unchanged: 1
        }
    );
    let contents = store.list_content(bank.id, None, 10).unwrap();
    assert_eq!(contents.len(), 2);
    assert!(contents.iter().all(|c| c.signals.len() == 1));
    let md5 = contents
        .iter()
        .find(|c| c.signals[0].signal_type == "md5")
        .unwrap();
    assert_eq!(md5.metadata.as_deref(), Some("{\"k\":1}"));
    let p = store.provenance(bank.id, "md5", &hex(1)[32..]).unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(
        (
            p[0].source.as_str(),
            p[0].source_id.as_deref(),
            p[0].classification.as_deref()
        ),
        ("file:a.txt", Some("e1"), Some("B1"))
    );
    assert_eq!(
        (p[0].first_seen, p[0].last_seen, p[0].withdrawn_at),
        (1000, 1000, None)
    );

    // The feed shows each new signal once, as `Added`, in id order.
    let (signals, _) = scan(store);
    let added: Vec<Signal> = all_changes(store)
        .into_iter()
        .map(|(_, c)| match c {
            Change::Added(s) => s,
            other => panic!("unexpected change {other:?}"),
        })
        .collect();
    assert_eq!(added, signals.values().cloned().collect::<Vec<_>>());

    let seq = store.last_seq().unwrap();
    let again = store
        .apply_source_batch(bank.id, &batch("file:a.txt", 2000, &upserts, &[]))
        .unwrap();
    assert_eq!(
        again,
        BatchOutcome {
            added: 0,
            refreshed: 2,
            removed: 0,
            unchanged: 1
        }
    );
    assert_eq!(
        store.last_seq().unwrap(),
        seq,
        "a re-import writes no feed rows"
    );
    assert_eq!(store.list_content(bank.id, None, 10).unwrap(), contents);
    let p = store.provenance(bank.id, "md5", &hex(1)[32..]).unwrap();
    assert_eq!((p[0].first_seen, p[0].last_seen), (1000, 2000));

    // A second source of the same hash is a second record, not a second signal.
    let out = store
        .apply_source_batch(
            bank.id,
            &batch("exchange:X", 3000, &[entry("pdq", &hex(2))], &[]),
        )
        .unwrap();
    assert_eq!(out.refreshed, 1);
    let p = store.provenance(bank.id, "pdq", &hex(2)).unwrap();
    let sources: Vec<&str> = p.iter().map(|p| p.source.as_str()).collect();
    assert_eq!(sources, ["exchange:X", "file:a.txt"]);
    assert_eq!(bank_hashes(store, bank.id).len(), 2);
    // Content added through the API has the source `api`.
    store
        .add_content(bank.id, &new_content(&[("sha1", "s")]))
        .unwrap();
    let p = store.provenance(bank.id, "sha1", "s").unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].source, "api");
    // The same records found by signal id (what a match carries), in one call.
    let mut ids = Vec::new();
    store
        .scan_bank(bank.id, &mut |sig, _| {
            ids.push((sig.signal_type.clone(), sig.value.clone(), sig.id));
        })
        .unwrap();
    let signal_of = |t: &str, v: &str| -> SignalId {
        ids.iter()
            .find(|(st, sv, _)| st == t && sv == v)
            .map(|x| x.2)
            .unwrap()
    };
    let by_id = store
        .signals_provenance(&[
            (bank.id, signal_of("pdq", &hex(2))),
            (bank.id, signal_of("sha1", "s")),
            (bank.id + 1000, signal_of("sha1", "s")),
            (bank.id, 1_000_000_007),
        ])
        .unwrap();
    assert_eq!(by_id[0], store.provenance(bank.id, "pdq", &hex(2)).unwrap());
    assert_eq!(by_id[1], p);
    assert!(
        by_id[2].is_empty(),
        "another bank's records are not this signal's"
    );
    assert!(by_id[3].is_empty(), "an unknown signal has none");
    assert!(matches!(
        store.apply_source_batch(UNKNOWN_ID, &batch("file:a", 1, &upserts, &[])),
        Err(Error::NotFound(_))
    ));
}

/// A withdrawal takes a hash out of matching only when no source lists it any more; its
/// records stay, marked withdrawn; listing it again brings it back.
pub fn source_withdrawals(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    let (a, b, c) = (hex(1), hex(2), hex(3));
    store
        .apply_source_batch(
            bank.id,
            &batch(
                "exchange:S",
                10,
                &[entry("pdq", &a), entry("pdq", &b), entry("pdq", &c)],
                &[],
            ),
        )
        .unwrap();
    store
        .apply_source_batch(bank.id, &batch("file:f", 20, &[entry("pdq", &b)], &[]))
        .unwrap();
    store
        .add_content(bank.id, &new_content(&[("pdq", &c)]))
        .unwrap();
    let before = store.last_seq().unwrap();
    let out = store
        .apply_source_batch(
            bank.id,
            &batch(
                "exchange:S",
                30,
                &[],
                &[
                    removal("pdq", &a),
                    removal("pdq", &b),
                    removal("pdq", &c),
                    removal("pdq", &hex(9)),
                ],
            ),
        )
        .unwrap();
    // a: gone. b: the file still lists it. c: the API added it too (two signals: the
    // import's and the curator's item; both stay). 9: never listed.
    assert_eq!(
        out,
        BatchOutcome {
            added: 0,
            refreshed: 0,
            removed: 1,
            unchanged: 3
        }
    );
    let hashes = bank_hashes(store, bank.id);
    assert!(!hashes.contains(&("pdq".into(), a.clone())));
    assert!(hashes.contains(&("pdq".into(), b.clone())));
    let removed: Vec<Change> = changes_after(store, before);
    assert_eq!(removed.len(), 1);
    assert!(matches!(&removed[0], Change::Removed(s) if s.value == a));
    let p = store.provenance(bank.id, "pdq", &a).unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].last_seen, p[0].withdrawn_at), (10, Some(30)));
    // The content item of the withdrawn hash is gone too.
    let contents = store.list_content(bank.id, None, 100).unwrap();
    assert!(contents.iter().all(|c| !c.signals.is_empty()));
    assert!(contents.iter().all(|c| c.signals[0].value != a));
    // Withdrawn twice: nothing more happens.
    let out = store
        .apply_source_batch(
            bank.id,
            &batch("exchange:S", 40, &[], &[removal("pdq", &a)]),
        )
        .unwrap();
    assert_eq!((out.removed, out.unchanged), (0, 1));
    // Listed again: back in matching, record active again.
    let out = store
        .apply_source_batch(bank.id, &batch("exchange:S", 50, &[entry("pdq", &a)], &[]))
        .unwrap();
    assert_eq!(out.added, 1);
    let p = store.provenance(bank.id, "pdq", &a).unwrap();
    assert_eq!(
        (p[0].first_seen, p[0].last_seen, p[0].withdrawn_at),
        (10, 50, None)
    );
}

/// NCMEC withdraws by entry id: every hash the source listed under that id goes.
pub fn source_withdraw_by_source_id(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    let mut e1 = entry("md5", &hex(1)[32..]);
    e1.source_id = Some("image1".into());
    let mut e2 = entry("sha1", &hex(2)[24..]);
    e2.source_id = Some("image1".into());
    let mut e3 = entry("md5", &hex(3)[32..]);
    e3.source_id = Some("image2".into());
    store
        .apply_source_batch(bank.id, &batch("exchange:N", 1, &[e1, e2, e3], &[]))
        .unwrap();
    let out = store
        .import_source(
            bank.id,
            &SourceImport {
                source: "exchange:N",
                seen_at: 2,
                checkpoint: None,
                complete: false,
            },
            &mut |sink| sink.remove_source_id("image1"),
        )
        .unwrap();
    assert_eq!(out.removed, 2);
    assert_eq!(
        bank_hashes(store, bank.id),
        vec![("md5".to_string(), hex(3)[32..].to_string())]
    );
    // Another source's id of the same name is not touched.
    let out = store
        .import_source(
            bank.id,
            &SourceImport {
                source: "exchange:OTHER",
                seen_at: 3,
                checkpoint: None,
                complete: false,
            },
            &mut |sink| sink.remove_source_id("image2"),
        )
        .unwrap();
    assert_eq!(out.removed, 0);
}

/// A complete list withdraws what its source listed before and lists no more.
pub fn source_complete_list(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    let day1: Vec<SourceEntry> = (1..=3).map(|i| entry("pdq", &hex(i))).collect();
    let day2: Vec<SourceEntry> = (2..=4).map(|i| entry("pdq", &hex(i))).collect();
    let complete = |seen_at, list: &[SourceEntry]| {
        store
            .import_source(
                bank.id,
                &SourceImport {
                    source: "file:iwf.csv",
                    seen_at,
                    checkpoint: None,
                    complete: true,
                },
                &mut |sink| list.iter().try_for_each(|e| sink.upsert(e)),
            )
            .unwrap()
    };
    assert_eq!(complete(1, &day1).added, 3);
    let out = complete(2, &day2);
    assert_eq!((out.added, out.refreshed, out.removed), (1, 2, 1));
    let want: Vec<(String, String)> = (2..=4).map(|i| ("pdq".to_string(), hex(i))).collect();
    assert_eq!(bank_hashes(store, bank.id), want);
    assert_eq!(
        store.provenance(bank.id, "pdq", &hex(1)).unwrap()[0].withdrawn_at,
        Some(2)
    );
}

/// An import whose feed fails writes nothing, and the error comes back as the feed gave it.
pub fn source_import_is_atomic(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    store
        .apply_source_batch(bank.id, &batch("file:a", 1, &[entry("pdq", &hex(1))], &[]))
        .unwrap();
    let before = (
        bank_hashes(store, bank.id),
        all_changes(store),
        store.provenance(bank.id, "pdq", &hex(1)).unwrap(),
        store.counts().unwrap(),
    );
    let err = store
        .import_source(
            bank.id,
            &SourceImport {
                source: "file:a",
                seen_at: 2,
                checkpoint: Some(ExchangeCheckpoint {
                    exchange: "X",
                    checkpoint: "c",
                }),
                complete: true,
            },
            &mut |sink| {
                for i in 2..100 {
                    sink.upsert(&entry("pdq", &hex(i)))?;
                }
                sink.remove(&removal("pdq", &hex(1)))?;
                Err(Error::Aborted)
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::Aborted), "{err}");
    let after = (
        bank_hashes(store, bank.id),
        all_changes(store),
        store.provenance(bank.id, "pdq", &hex(1)).unwrap(),
        store.counts().unwrap(),
    );
    assert_eq!(before, after);
    assert_eq!(store.exchange_state("X").unwrap(), None);
    // The store still works after the rollback (staging state is gone).
    let out = store
        .apply_source_batch(bank.id, &batch("file:a", 3, &[entry("pdq", &hex(7))], &[]))
        .unwrap();
    assert_eq!(out.added, 1);
}

/// Ranges in the feed page, resume and survive deletes like one row per signal would.
pub fn source_feed_ranges(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    store
        .add_content(bank.id, &new_content(&[("md5", "before")]))
        .unwrap();
    let (mut followed, start) = scan(store);
    let upserts: Vec<SourceEntry> = (0..25).map(|i| entry("pdq", &hex(i))).collect();
    store
        .apply_source_batch(bank.id, &batch("file:a", 1, &upserts, &[]))
        .unwrap();
    store
        .add_content(bank.id, &new_content(&[("md5", "after")]))
        .unwrap();
    // Delete some of the range's signals: their Added must still show, then their Removed.
    let contents = store.list_content(bank.id, None, 100).unwrap();
    for c in contents
        .iter()
        .filter(|c| c.signals[0].value == hex(3) || c.signals[0].value == hex(24))
    {
        store.delete_content(c.id).unwrap();
    }
    store
        .apply_source_batch(
            bank.id,
            &batch("file:a", 2, &[], &[removal("pdq", &hex(10))]),
        )
        .unwrap();
    let full = all_changes(store);
    let seqs: Vec<Seq> = full.iter().map(|(s, _)| *s).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seqs increase: {seqs:?}"
    );
    assert_eq!(store.last_seq().unwrap(), *seqs.last().unwrap());
    let adds = full
        .iter()
        .filter(|(_, c)| matches!(c, Change::Added(_)))
        .count();
    let removes = full
        .iter()
        .filter(|(_, c)| matches!(c, Change::Removed(_)))
        .count();
    assert_eq!((adds, removes), (27, 3));
    for limit in [1, 4, 10] {
        let mut paged = Vec::new();
        let mut after = 0;
        loop {
            let mut page = Vec::new();
            let next = store
                .changes_since(after, limit, &mut |s, c| page.push((s, c)))
                .unwrap();
            assert!(page.len() <= limit);
            if page.is_empty() {
                assert_eq!(next, after);
                break;
            }
            assert_eq!(next, page.last().unwrap().0);
            after = next;
            paged.extend(page);
        }
        assert_eq!(paged, full, "limit {limit}");
    }
    let end = follow(store, &mut followed, start);
    let (now, now_seq) = scan(store);
    assert_eq!(end, now_seq);
    assert_same_signals(&followed, &now, "scan, import, follow");
    // Deleting the bank removes the rest, and a follower from the very start agrees.
    store.delete_bank(bank.id).unwrap();
    let mut from_zero = BTreeMap::new();
    follow(store, &mut from_zero, 0);
    assert!(from_zero.is_empty());
}

/// Pruning deletes a prefix of the feed and moves the floor: what is kept reads exactly as
/// before (a prune inside an import's range included), reading from below the floor is
/// `FeedPruned`, the floor never moves down, and the last position never changes.
pub fn feed_pruning(store: &dyn Store) {
    assert_eq!(store.feed_floor().unwrap(), 1, "a fresh feed starts at 1");
    assert_eq!(
        store.prune_feed(100, i64::MAX, 10).unwrap(),
        Pruned {
            deleted: 0,
            floor: 1
        },
        "nothing to prune in an empty feed"
    );
    let bank = store.create_bank(&new_bank("B")).unwrap();
    for i in 0..5 {
        store
            .add_content(bank.id, &new_content(&[("md5", &format!("single{i}"))]))
            .unwrap();
    }
    let upserts: Vec<SourceEntry> = (0..25).map(|i| entry("pdq", &hex(i))).collect();
    store
        .apply_source_batch(bank.id, &batch("file:a", 1, &upserts, &[]))
        .unwrap();
    for i in 0..3 {
        store
            .add_content(bank.id, &new_content(&[("md5", &format!("later{i}"))]))
            .unwrap();
    }
    let full = all_changes(store);
    let last = store.last_seq().unwrap();
    assert_eq!(full.len(), 33);
    // Nothing is older than time 0: the age bound keeps everything.
    let kept = store.prune_feed(last + 1, 0, 1000).unwrap();
    assert_eq!((kept.deleted, kept.floor), (0, 1), "age bound 0 keeps all");
    // A position inside the import's 25 changes (one row on some stores).
    let p = full[14].0;
    let pruned = store.prune_feed(p, i64::MAX, 3).unwrap();
    assert!(pruned.deleted >= 1, "{pruned:?}");
    assert_eq!(pruned.floor, p);
    assert_eq!(store.feed_floor().unwrap(), p);
    assert_eq!(
        store.last_seq().unwrap(),
        last,
        "pruning keeps the position"
    );
    let mut rest = Vec::new();
    let end = store
        .changes_since(p - 1, usize::MAX, &mut |s, c| rest.push((s, c)))
        .unwrap();
    assert_eq!(end, last);
    let want: Vec<(Seq, Change)> = full.iter().filter(|(s, _)| *s >= p).cloned().collect();
    assert_eq!(rest, want, "the kept feed reads as before");
    // Paged reads from the floor too.
    let mut paged = Vec::new();
    let mut after = p - 1;
    loop {
        let mut page = Vec::new();
        after = store
            .changes_since(after, 4, &mut |s, c| page.push((s, c)))
            .unwrap();
        if page.is_empty() {
            break;
        }
        paged.extend(page);
    }
    assert_eq!(paged, want, "paged from the floor");
    match store.changes_since(p - 2, 10, &mut |_, _| {}) {
        Err(Error::FeedPruned { after, floor }) => assert_eq!((after, floor), (p - 2, p)),
        other => panic!("read below the floor: {:?}", other.map(|_| ())),
    }
    // A lower position does not move the floor down.
    let again = store.prune_feed(p - 5, i64::MAX, 3).unwrap();
    assert_eq!((again.deleted, again.floor), (0, p));
    assert_eq!(store.feed_floor().unwrap(), p);
    // A scan and a follow still agree after pruning.
    let (mut followed, seq) = scan(store);
    assert_eq!(seq, last);
    // Everything, even past the end: the floor stops at the end of the feed.
    let all = store.prune_feed(last + 1000, i64::MAX, 7).unwrap();
    assert_eq!(all.floor, last + 1);
    assert!(all.deleted >= 1);
    assert!(changes_after(store, last).is_empty());
    assert_eq!(store.last_seq().unwrap(), last);
    let c = store
        .add_content(bank.id, &new_content(&[("md5", "after-prune")]))
        .unwrap();
    let mut next = Vec::new();
    store
        .changes_since(last, 10, &mut |s, c| next.push((s, c)))
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].0, last + 1, "positions go on after a full prune");
    assert!(matches!(&next[0].1, Change::Added(s) if s.content_id == c.id));
    let end = follow(store, &mut followed, seq);
    let (now, now_seq) = scan(store);
    assert_eq!(end, now_seq);
    assert_same_signals(&followed, &now, "follow after pruning");
}

/// The age bound: changes younger than `older_than` stay, and so does everything after them.
pub fn feed_pruning_by_age(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    for i in 0..4 {
        store
            .add_content(bank.id, &new_content(&[("md5", &format!("old{i}"))]))
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(20));
    let t = now_ms();
    std::thread::sleep(Duration::from_millis(20));
    let first_young = store.last_seq().unwrap() + 1;
    for i in 0..4 {
        store
            .add_content(bank.id, &new_content(&[("md5", &format!("young{i}"))]))
            .unwrap();
    }
    let last = store.last_seq().unwrap();
    let pruned = store.prune_feed(last + 1, t, 2).unwrap();
    assert_eq!(pruned.floor, first_young, "{pruned:?}");
    assert!(pruned.deleted >= 4, "{pruned:?}");
    assert_eq!(changes_after(store, first_young - 1).len(), 4);
}

/// Followers are recorded, replaced by name, and listed by name.
pub fn feed_followers(store: &dyn Store) {
    assert!(store.followers().unwrap().is_empty());
    let b = Follower {
        name: "host-b:8080".into(),
        position: 40,
        snapshot: Some(12),
        seen_at: 1_000,
    };
    let a = Follower {
        name: "host-a:8080".into(),
        position: 7,
        snapshot: None,
        seen_at: 2_000,
    };
    store.record_follower(&b).unwrap();
    store.record_follower(&a).unwrap();
    assert_eq!(store.followers().unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!((a.needs_from(), b.needs_from()), (7, 12));
    let b2 = Follower {
        position: 55,
        snapshot: Some(55),
        seen_at: 3_000,
        ..b
    };
    store.record_follower(&b2).unwrap();
    assert_eq!(store.followers().unwrap(), vec![a.clone(), b2.clone()]);
    // Forgetting: strictly before the time given; a follower seen again is back.
    assert_eq!(store.forget_followers(2_000).unwrap(), 0);
    assert_eq!(store.forget_followers(2_001).unwrap(), 1);
    assert_eq!(store.followers().unwrap(), vec![b2.clone()]);
    assert_eq!(store.forget_followers(2_001).unwrap(), 0);
    store.record_follower(&a).unwrap();
    assert_eq!(store.followers().unwrap(), vec![a, b2]);
    assert_eq!(store.forget_followers(i64::MAX).unwrap(), 2);
    assert!(store.followers().unwrap().is_empty());
}

/// Checkpoints are written with their batch; errors are recorded; entries are counted.
pub fn exchange_state(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    assert_eq!(store.exchange_state("NCMEC").unwrap(), None);
    store
        .record_exchange_error("NCMEC", bank.id, "timeout", 5)
        .unwrap();
    let s = store.exchange_state("NCMEC").unwrap().unwrap();
    assert_eq!(
        (
            s.bank_id,
            s.checkpoint.as_deref(),
            s.last_error.as_deref(),
            s.last_error_at,
            s.entries
        ),
        (bank.id, None, Some("timeout"), Some(5), 0)
    );
    // A list may repeat an entry: the count is of distinct hashes.
    let upserts: Vec<SourceEntry> = (0..5).chain([2]).map(|i| entry("pdq", &hex(i))).collect();
    let mut b = batch("exchange:NCMEC", 10, &upserts, &[]);
    b.checkpoint = Some(ExchangeCheckpoint {
        exchange: "NCMEC",
        checkpoint: "{\"from\": 1}",
    });
    let out = store.apply_source_batch(bank.id, &b).unwrap();
    assert_eq!((out.added, out.unchanged), (5, 1));
    let s = store.exchange_state("NCMEC").unwrap().unwrap();
    assert_eq!(s.checkpoint.as_deref(), Some("{\"from\": 1}"));
    assert_eq!(s.entries, 5);
    assert!(s.last_success_at.is_some());
    assert_eq!(
        s.last_error.as_deref(),
        Some("timeout"),
        "errors are kept for the record"
    );
    let removals = [removal("pdq", &hex(0)), removal("pdq", &hex(1))];
    let more = [entry("pdq", &hex(4)), entry("pdq", &hex(5))];
    let mut b = batch("exchange:NCMEC", 20, &more, &removals);
    b.checkpoint = Some(ExchangeCheckpoint {
        exchange: "NCMEC",
        checkpoint: "2",
    });
    store.apply_source_batch(bank.id, &b).unwrap();
    let s = store.exchange_state("NCMEC").unwrap().unwrap();
    assert_eq!((s.checkpoint.as_deref(), s.entries), (Some("2"), 4));
    store
        .record_exchange_error("ALPHA", bank.id, "x", 1)
        .unwrap();
    let names: Vec<String> = store
        .list_exchange_states()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["ALPHA", "NCMEC"]);
    assert!(matches!(
        store.record_exchange_error("X", UNKNOWN_ID, "x", 1),
        Err(Error::NotFound(_))
    ));
}

/// A diff counts both sides and the overlap, and writes nothing.
pub fn source_diff(store: &dyn Store) {
    let bank = store.create_bank(&new_bank("B")).unwrap();
    let in_bank: Vec<SourceEntry> = (0..5).map(|i| entry("pdq", &hex(i))).collect();
    store
        .apply_source_batch(bank.id, &batch("file:a", 1, &in_bank, &[]))
        .unwrap();
    store
        .add_content(bank.id, &new_content(&[("md5", "m")]))
        .unwrap();
    let before = (all_changes(store), store.counts().unwrap());
    let file: Vec<SourceEntry> = (3..8).chain([7]).map(|i| entry("pdq", &hex(i))).collect();
    let mut shown = Vec::new();
    let out = store
        .diff_source(
            bank.id,
            &mut |sink| file.iter().try_for_each(|e| sink.upsert(e)),
            true,
            &mut |side, _t, v| shown.push((side, v.to_string())),
        )
        .unwrap();
    assert_eq!(
        out,
        DiffOutcome {
            only_in_file: 3,
            only_in_bank: 3,
            common: 2,
            repeated_in_file: 1
        },
        "the md5 signal is not compared: the file has no md5"
    );
    shown.sort();
    let want: Vec<(DiffSide, String)> = [5, 6, 7]
        .map(|i| (DiffSide::OnlyInFile, hex(i)))
        .into_iter()
        .chain([0, 1, 2].map(|i| (DiffSide::OnlyInBank, hex(i))))
        .collect();
    let mut want = want;
    want.sort();
    assert_eq!(shown, want);
    assert_eq!(before, (all_changes(store), store.counts().unwrap()));
}

/// Exchanges created through the API: create, read, list by name, update, delete (with their
/// fetch state), name clashes, `NotFound`, and credential bytes kept exactly.
pub fn stored_exchanges(store: &dyn Store) {
    let x = |name: &str, creds: Option<&[u8]>| StoredExchange {
        name: name.into(),
        kind: "safeguard".into(),
        settings: "{\"base_url\":\"http://peer.invalid\"}".into(),
        sealed_credentials: creds.map(<[u8]>::to_vec),
        created_at: 0,
        updated_at: 0,
    };
    assert_eq!(store.stored_exchange("PEER").unwrap(), None);
    assert!(store.list_stored_exchanges().unwrap().is_empty());
    // Every byte value, NUL included, round-trips.
    let creds: Vec<u8> = (0..=255u8).collect();
    let a = store
        .create_stored_exchange(&x("PEER", Some(&creds)))
        .unwrap();
    assert_eq!(a.sealed_credentials.as_deref(), Some(&creds[..]));
    assert_times("stored exchange", a.created_at, a.updated_at);
    assert_eq!(store.stored_exchange("PEER").unwrap().as_ref(), Some(&a));
    assert!(matches!(
        store.create_stored_exchange(&x("PEER", None)),
        Err(Error::Conflict(_))
    ));
    store.create_stored_exchange(&x("ALPHA", None)).unwrap();
    let names: Vec<String> = store
        .list_stored_exchanges()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["ALPHA", "PEER"]);

    let mut changed = x("PEER", None);
    changed.settings = "{\"enabled\":false}".into();
    let b = store.update_stored_exchange(&changed).unwrap();
    assert_eq!(
        (
            b.settings.as_str(),
            b.sealed_credentials.as_deref(),
            b.created_at
        ),
        ("{\"enabled\":false}", None, a.created_at)
    );
    assert!(b.updated_at >= a.updated_at);
    assert!(matches!(
        store.update_stored_exchange(&x("NOPE", None)),
        Err(Error::NotFound(_))
    ));

    // Deleting takes the fetch state with it, and leaves the bank.
    let bank = store.create_bank(&new_bank("PEER")).unwrap();
    store
        .record_exchange_error("PEER", bank.id, "timeout", 5)
        .unwrap();
    assert_eq!(store.delete_stored_exchange("PEER").unwrap(), b);
    assert_eq!(store.stored_exchange("PEER").unwrap(), None);
    assert_eq!(store.exchange_state("PEER").unwrap(), None);
    assert!(store.bank(bank.id).unwrap().is_some());
    assert!(matches!(
        store.delete_stored_exchange("PEER"),
        Err(Error::NotFound(_))
    ));
    assert_eq!(store.list_stored_exchanges().unwrap().len(), 1);
}
