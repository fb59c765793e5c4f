//! The engine over a real SQLite store: bank rules, live updates, reopening, and a model test
//! against brute force.

use std::sync::Arc;

use proptest::prelude::*;
use safeguard_engine::{
    AddContent, CreateBank, Engine, Error, LookupOptions, SignalType, SignalValue,
    MAX_METADATA_BYTES, MAX_NOTE_BYTES,
};
use safeguard_pdq::PdqHash;
use safeguard_store::{BankKind, BankUpdate, ContentUpdate, SqliteStore, Store};

const H: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

fn flip(h: &str, bits: usize) -> String {
    let mut p = PdqHash::from_hex(h).unwrap();
    for k in 0..bits {
        p.0[k / 8] ^= 1 << (k % 8);
    }
    p.to_hex()
}

fn engine() -> (Engine, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    (Engine::open(store.clone()).unwrap(), store)
}

fn bank(e: &Engine, name: &str, threshold: Option<u32>, kind: Option<BankKind>) {
    e.create_bank(&CreateBank {
        name: name.into(),
        pdq_threshold: threshold,
        kind,
        ..Default::default()
    })
    .unwrap();
}

fn add(e: &Engine, bank: &str, t: SignalType, v: &str) -> i64 {
    e.add_content(
        bank,
        &AddContent {
            signals: vec![(t, v.into())],
            ..Default::default()
        },
    )
    .unwrap()
    .id
}

fn pdq(v: &str) -> SignalValue {
    SignalValue::parse(SignalType::Pdq, v).unwrap()
}

fn all() -> LookupOptions {
    LookupOptions {
        banks: None,
        coinflip: Some(0.0),
        ..Default::default()
    }
}

#[test]
fn thresholds_allow_lists_and_disabled_content() {
    let (e, _) = engine();
    bank(&e, "STRICT", Some(5), None);
    bank(&e, "LOOSE", None, None);
    let a = add(&e, "STRICT", SignalType::Pdq, H);
    let b = add(&e, "LOOSE", SignalType::Pdq, H);
    let r = e.lookup(&pdq(&flip(H, 4)), &all()).unwrap();
    assert_eq!(r.matches.len(), 2);
    let r = e.lookup(&pdq(&flip(H, 6)), &all()).unwrap();
    assert_eq!(
        r.matches
            .iter()
            .map(|m| (m.bank.as_str(), m.content_id, m.distance))
            .collect::<Vec<_>>(),
        vec![("LOOSE", b, 6)]
    );
    let r = e.lookup(&pdq(&flip(H, 31)), &all()).unwrap();
    assert_eq!(r.matches.len(), 1);
    assert!(e
        .lookup(&pdq(&flip(H, 32)), &all())
        .unwrap()
        .matches
        .is_empty());

    // Disabled until the far future: gone; back at 0.
    e.update_content(
        "STRICT",
        a,
        &ContentUpdate {
            disable_until_ts: Some(i64::MAX),
            ..Default::default()
        },
    )
    .unwrap();
    let r = e.lookup(&pdq(H), &all()).unwrap();
    assert_eq!(r.matches.len(), 1);
    // A past time means enabled again.
    e.update_content(
        "STRICT",
        a,
        &ContentUpdate {
            disable_until_ts: Some(1000),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(e.lookup(&pdq(H), &all()).unwrap().matches.len(), 2);

    // An allow-list match suppresses the others.
    bank(&e, "BENIGN", None, Some(BankKind::AllowList));
    add(&e, "BENIGN", SignalType::Pdq, &flip(H, 2));
    let r = e.lookup(&pdq(H), &all()).unwrap();
    assert_eq!(r.suppressed, 2);
    assert_eq!(r.matches.len(), 1);
    assert!(r.matches[0].allow_list);
    // Raw lookup ignores bank rules except thresholds.
    assert_eq!(e.raw_lookup(&pdq(H), None).unwrap().len(), 3);
    // A bank filter.
    let r = e
        .lookup(
            &pdq(H),
            &LookupOptions {
                banks: Some(vec!["LOOSE".into()]),
                coinflip: Some(0.0),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(r.matches.len(), 1);
    assert_eq!(r.matches[0].bank, "LOOSE");
}

#[test]
fn coinflip_and_enabled_flags() {
    let (e, _) = engine();
    bank(&e, "HALF", None, None);
    add(&e, "HALF", SignalType::Pdq, H);
    e.update_bank(
        "HALF",
        &BankUpdate {
            enabled_ratio: Some(0.5),
            ..Default::default()
        },
    )
    .unwrap();
    let lookup = |c: f64| {
        e.lookup(
            &pdq(H),
            &LookupOptions {
                banks: None,
                coinflip: Some(c),
                ..Default::default()
            },
        )
        .unwrap()
        .matches
        .len()
    };
    assert_eq!(lookup(0.4), 1);
    assert_eq!(lookup(0.5), 1);
    assert_eq!(lookup(0.6), 0);
    e.update_bank(
        "HALF",
        &BankUpdate {
            enabled: Some(false),
            enabled_ratio: Some(1.0),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(lookup(0.0), 0);
    // Random draws over many lookups pass about half the time.
    e.update_bank(
        "HALF",
        &BankUpdate {
            enabled: Some(true),
            enabled_ratio: Some(0.5),
            ..Default::default()
        },
    )
    .unwrap();
    let hits: usize = (0..2000)
        .map(|_| {
            e.lookup(&pdq(H), &LookupOptions::default())
                .unwrap()
                .matches
                .len()
        })
        .sum();
    assert!((800..1200).contains(&hits), "{hits}");
}

#[test]
fn exact_signals_renames_and_deletes() {
    let (e, _) = engine();
    bank(&e, "HASHES", None, None);
    let md5 = "d41d8cd98f00b204e9800998ecf8427e";
    let id = add(&e, "HASHES", SignalType::Md5, md5);
    let v = SignalValue::parse(SignalType::Md5, &md5.to_uppercase()).unwrap();
    assert_eq!(e.lookup(&v, &all()).unwrap().matches[0].content_id, id);
    e.update_bank(
        "HASHES",
        &BankUpdate {
            name: Some("RENAMED".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(e.lookup(&v, &all()).unwrap().matches[0].bank, "RENAMED");
    assert!(matches!(e.bank("HASHES"), Err(Error::BankNotFound(_))));
    e.delete_content("RENAMED", id).unwrap();
    assert!(e.lookup(&v, &all()).unwrap().matches.is_empty());
    let id2 = add(&e, "RENAMED", SignalType::Sha1, &"ab".repeat(20));
    let v2 = SignalValue::parse(SignalType::Sha1, &"ab".repeat(20)).unwrap();
    assert_eq!(e.lookup(&v2, &all()).unwrap().matches[0].content_id, id2);
    e.delete_bank("RENAMED").unwrap();
    assert!(e.lookup(&v2, &all()).unwrap().matches.is_empty());
    assert!(matches!(
        e.add_content(
            "RENAMED",
            &AddContent {
                signals: vec![(SignalType::Pdq, H.into())],
                ..Default::default()
            }
        ),
        Err(Error::BankNotFound(_))
    ));
}

#[test]
fn invalid_requests_change_nothing() {
    let (e, store) = engine();
    bank(&e, "B", None, None);
    let before = store.counts().unwrap();
    for bad in [
        AddContent::default(),
        AddContent {
            signals: vec![(SignalType::Pdq, "xyz".into())],
            ..Default::default()
        },
        AddContent {
            signals: vec![(SignalType::Pdq, H.into()), (SignalType::Pdq, H.into())],
            ..Default::default()
        },
        AddContent {
            signals: vec![(SignalType::Md5, "0".repeat(32))],
            metadata: Some(serde_json::json!("x".repeat(100_000))),
            ..Default::default()
        },
    ] {
        assert!(e.add_content("B", &bad).is_err());
    }
    assert!(e
        .create_bank(&CreateBank {
            name: "bad name".into(),
            ..Default::default()
        })
        .is_err());
    assert!(e
        .create_bank(&CreateBank {
            name: "B".into(),
            ..Default::default()
        })
        .is_err());
    assert_eq!(store.counts().unwrap(), before);
}

#[test]
fn another_writer_is_caught_up_and_reopening_rebuilds() {
    let (e, store) = engine();
    bank(&e, "SHARED", None, None);
    // A second engine over the same store (another process would look the same).
    let other = Engine::open(store.clone()).unwrap();
    let id = add(&other, "SHARED", SignalType::Pdq, H);
    e.sync().unwrap();
    assert_eq!(e.lookup(&pdq(H), &all()).unwrap().matches[0].content_id, id);
    let reopened = Engine::open(store).unwrap();
    assert_eq!(
        reopened.lookup(&pdq(H), &all()).unwrap().matches[0].content_id,
        id
    );
    assert_eq!(reopened.index_status().entries[0], (SignalType::Pdq, 1));
}

#[test]
fn poll_feed_reads_the_position_and_catches_up_only_when_behind() {
    // Two handles on one file: the second stands for another process (the CLI).
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("safeguard.db");
    let open = || -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&safeguard_store::SqliteOptions::new(&db)).unwrap())
    };
    let (mine, theirs) = (open(), open());
    let e = Engine::open(mine).unwrap();
    bank(&e, "SHARED", None, None);
    assert!(!e.poll_feed().unwrap(), "nothing new yet");
    let other = Engine::open(theirs.clone()).unwrap();
    let id = add(&other, "SHARED", SignalType::Pdq, H);
    // Not visible until the feed is followed.
    assert!(e.lookup(&pdq(H), &all()).unwrap().matches.is_empty());
    assert!(e.poll_feed().unwrap());
    assert_eq!(e.lookup(&pdq(H), &all()).unwrap().matches[0].content_id, id);
    assert_eq!(e.index_status().applied_seq, theirs.last_seq().unwrap());
    assert!(!e.poll_feed().unwrap(), "caught up");
    other.delete_content("SHARED", id).unwrap();
    assert!(e.poll_feed().unwrap());
    assert!(e.lookup(&pdq(H), &all()).unwrap().matches.is_empty());
}

#[derive(Debug, Clone)]
enum Op {
    Add(usize, u64, u8),
    Delete(usize),
    Disable(usize, bool),
    Lookup(u64, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..3, any::<u64>(), 0u8..40).prop_map(|(b, s, f)| Op::Add(b, s, f)),
        1 => (0usize..64).prop_map(Op::Delete),
        1 => (0usize..64, any::<bool>()).prop_map(|(i, d)| Op::Disable(i, d)),
        3 => (any::<u64>(), 0u8..40).prop_map(|(s, f)| Op::Lookup(s, f)),
    ]
}

/// Hashes from a few seeds, each flipped by a few bits, so lookups land near entries.
fn near(seed: u64, flips: u8) -> String {
    let base = flip(H, (seed % 4) as usize * 40);
    let mut p = PdqHash::from_hex(&base).unwrap();
    let mut x = seed | 1;
    for _ in 0..flips {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = (x % 256) as usize;
        p.0[k / 8] ^= 1 << (k % 8);
    }
    p.to_hex()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn lookups_equal_brute_force(ops in proptest::collection::vec(op(), 1..60)) {
        let (e, _) = engine();
        let banks = ["A", "B", "ALLOW"];
        bank(&e, "A", Some(31), None);
        bank(&e, "B", Some(12), None);
        bank(&e, "ALLOW", Some(4), Some(BankKind::AllowList));
        let thresholds = [31u32, 12, 4];
        // Model: (content id, bank index, hash, disabled).
        let mut model: Vec<(i64, usize, PdqHash, bool)> = Vec::new();
        for op in ops {
            match op {
                Op::Add(b, s, f) => {
                    let h = near(s, f);
                    let id = add(&e, banks[b], SignalType::Pdq, &h);
                    model.push((id, b, PdqHash::from_hex(&h).unwrap(), false));
                }
                Op::Delete(i) if !model.is_empty() => {
                    let (id, b, _, _) = model.remove(i % model.len());
                    e.delete_content(banks[b], id).unwrap();
                }
                Op::Disable(i, d) if !model.is_empty() => {
                    let n = model.len();
                    let m = &mut model[i % n];
                    m.3 = d;
                    let t = if d { i64::MAX } else { 0 };
                    e.update_content(banks[m.1], m.0, &ContentUpdate { disable_until_ts: Some(t), ..Default::default() }).unwrap();
                }
                Op::Lookup(s, f) => {
                    let q = PdqHash::from_hex(&near(s, f)).unwrap();
                    let got = e.lookup(&SignalValue::Pdq(q), &all()).unwrap();
                    let mut want: Vec<(i64, u32)> = model
                        .iter()
                        .filter(|(_, b, h, dis)| !dis && q.distance(h) <= thresholds[*b])
                        .map(|(id, b, h, _)| (*id + 1000 * (*b == 2) as i64, q.distance(h)))
                        .collect();
                    if want.iter().any(|(id, _)| *id >= 1000) {
                        want.retain(|(id, _)| *id >= 1000);
                    }
                    let mut want: Vec<(i64, u32)> = want.into_iter().map(|(id, d)| (id % 1000, d)).collect();
                    want.sort();
                    let mut have: Vec<(i64, u32)> = got.matches.iter().map(|m| (m.content_id, m.distance)).collect();
                    have.sort();
                    prop_assert_eq!(have, want);
                }
                _ => {}
            }
        }
    }
}

#[test]
fn snapshots_round_trip_and_catch_up_with_the_feed() {
    let (e, store) = engine();
    bank(&e, "SNAP", None, None);
    let a = add(&e, "SNAP", SignalType::Pdq, H);
    let md5 = "d41d8cd98f00b204e9800998ecf8427e";
    add(&e, "SNAP", SignalType::Md5, md5);
    let mut buf = std::io::Cursor::new(Vec::new());
    let seq = e.write_snapshot(&mut buf).unwrap();
    assert!(seq > 0);
    // Changes after the snapshot are replayed from the feed on load.
    e.delete_content("SNAP", a).unwrap();
    let b = add(&e, "SNAP", SignalType::Pdq, &flip(H, 3));
    let bytes = buf.into_inner();
    let loaded = Engine::open_with_snapshot(store.clone(), &mut bytes.as_slice()).unwrap();
    let r = loaded.lookup(&pdq(H), &all()).unwrap();
    assert_eq!(
        r.matches.iter().map(|m| m.content_id).collect::<Vec<_>>(),
        vec![b]
    );
    let v = SignalValue::parse(SignalType::Md5, md5).unwrap();
    assert_eq!(loaded.lookup(&v, &all()).unwrap().matches.len(), 1);
    assert_eq!(loaded.index_status().entries, e.index_status().entries);

    // Damage anywhere is detected, never used.
    for pos in [0, 10, 30, bytes.len() / 2, bytes.len() - 3] {
        let mut bad = bytes.clone();
        bad[pos] ^= 0x40;
        assert!(
            Engine::open_with_snapshot(store.clone(), &mut bad.as_slice()).is_err(),
            "flipped byte {pos} was not detected"
        );
    }
    for cut in [5, 40, bytes.len() - 1] {
        assert!(Engine::open_with_snapshot(store.clone(), &mut &bytes[..cut]).is_err());
    }
    // A snapshot of another store is refused.
    let (other, other_store) = engine();
    bank(&other, "OTHER", None, None);
    for _ in 0..5 {
        add(&other, "OTHER", SignalType::Sha1, &"cd".repeat(20));
    }
    assert!(Engine::open_with_snapshot(other_store, &mut bytes.as_slice()).is_err());
}

/// A new bank `name` of `n` items, one MD5 signal each (item `i` is `{i:032x}`), added in one
/// store call and synced into `e`; the items' ids, in that order.
fn md5_bank(e: &Engine, store: &Arc<dyn Store>, name: &str, n: usize) -> Vec<i64> {
    bank(e, name, None, None);
    let bank_id = store.bank_by_name(name).unwrap().unwrap().id;
    let items: Vec<safeguard_store::NewContent> = (0..n)
        .map(|i| safeguard_store::NewContent {
            signals: vec![("md5".into(), format!("{i:032x}"))],
            ..Default::default()
        })
        .collect();
    let ids = store
        .add_contents(bank_id, &items)
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    e.sync().unwrap();
    ids
}

/// A snapshot opens while the feed keeps its fingerprint window (what a pruner keeps below
/// the lowest position a follower needs), and is refused, for a rebuild, once the feed is
/// pruned into it. A follower left behind the floor gets an error that says so.
#[test]
fn snapshots_and_a_pruned_feed() {
    use safeguard_engine::SNAPSHOT_FEED_WINDOW;
    let (e, store) = engine();
    md5_bank(&e, &store, "PRUNE", 1100);
    let mut buf = std::io::Cursor::new(Vec::new());
    let at = e.write_snapshot(&mut buf).unwrap();
    assert!(at > SNAPSHOT_FEED_WINDOW + 50, "{at}");
    let bytes = buf.into_inner();
    let lagging = Engine::open(store.clone()).unwrap();
    let b = add(&e, "PRUNE", SignalType::Pdq, H);

    // Pruned up to the window: the snapshot still checks out and replays what came after.
    let kept = store
        .prune_feed(at - SNAPSHOT_FEED_WINDOW, i64::MAX, 100)
        .unwrap();
    assert_eq!(kept.floor, at - SNAPSHOT_FEED_WINDOW);
    assert!(kept.deleted >= 1);
    let loaded = Engine::open_with_snapshot(store.clone(), &mut bytes.as_slice()).unwrap();
    assert_eq!(loaded.snapshot_seq(), Some(at));
    assert_eq!(loaded.applied_seq(), store.last_seq().unwrap());
    let r = loaded.lookup(&pdq(H), &all()).unwrap();
    assert_eq!(
        r.matches.iter().map(|m| m.content_id).collect::<Vec<_>>(),
        vec![b]
    );
    assert_eq!(loaded.index_status().entries, e.index_status().entries);

    // One position further and the snapshot is refused, saying why; a rebuild works.
    store
        .prune_feed(at - SNAPSHOT_FEED_WINDOW + 1, i64::MAX, 100)
        .unwrap();
    let err = Engine::open_with_snapshot(store.clone(), &mut bytes.as_slice()).unwrap_err();
    assert!(err.to_string().contains("pruned"), "{err}");
    let rebuilt = Engine::open(store.clone()).unwrap();
    assert_eq!(rebuilt.index_status().entries, e.index_status().entries);
    assert_eq!(rebuilt.snapshot_seq(), None);

    // A follower still before the floor cannot catch up by following.
    let last = store.last_seq().unwrap();
    store.prune_feed(last + 1, i64::MAX, 100).unwrap();
    let err = lagging.poll_feed().unwrap_err();
    assert!(err.is_feed_pruned(), "{err}");
    // One that had applied everything follows on after the feed is emptied.
    assert!(!e.poll_feed().unwrap());
    let c = add(&e, "PRUNE", SignalType::Pdq, &flip(H, 40));
    assert!(rebuilt.poll_feed().unwrap());
    let r = rebuilt.lookup(&pdq(&flip(H, 40)), &all()).unwrap();
    assert!(r.matches.iter().any(|m| m.content_id == c));
}

/// A snapshot carries the per-signal facts of live signals only: after most of a bank's
/// signals are removed it shrinks, and what it loads answers as the engine did.
#[test]
fn snapshots_leave_out_removed_signals() {
    let (e, store) = engine();
    let ids = md5_bank(&e, &store, "CHURN", 3000);
    let snapshot = |e: &Engine| {
        let mut buf = std::io::Cursor::new(Vec::new());
        e.write_snapshot(&mut buf).unwrap();
        buf.into_inner()
    };
    let before = snapshot(&e);
    // Remove all but the last 100 items: the pages of the first ~2,900 signal ids go.
    for &id in &ids[..2900] {
        e.delete_content("CHURN", id).unwrap();
    }
    let after = snapshot(&e);
    // The per-signal facts are the first section, after the 28-byte header: its length, then
    // a page count, 8 + 12 * 1024 bytes a page, and a CRC-32. The 100 live ids (3,000 ids
    // from the first) fit in one page or straddle two; the 3,000 ids took three or four.
    let meta_pages = |snap: &[u8]| {
        let len = u64::from_le_bytes(snap[28..36].try_into().unwrap());
        assert_eq!((len - 12) % (8 + 12 * 1024), 0, "{len}");
        (len - 12) / (8 + 12 * 1024)
    };
    assert!(meta_pages(&before) >= 3, "{}", meta_pages(&before));
    assert!(meta_pages(&after) <= 2, "{}", meta_pages(&after));
    let loaded = Engine::open_with_snapshot(store.clone(), &mut after.as_slice()).unwrap();
    assert_eq!(loaded.snapshot_seq(), Some(store.last_seq().unwrap()));
    for (i, &id) in ids
        .iter()
        .enumerate()
        .step_by(97)
        .chain([(2999, &ids[2999])])
    {
        let v = SignalValue::parse(SignalType::Md5, &format!("{i:032x}")).unwrap();
        let got: Vec<i64> = loaded
            .lookup(&v, &all())
            .unwrap()
            .matches
            .iter()
            .map(|m| m.content_id)
            .collect();
        let want = if i >= 2900 { vec![id] } else { vec![] };
        assert_eq!(got, want, "item {i}");
    }
    assert_eq!(loaded.index_status().entries, e.index_status().entries);
}

/// A content item's note and metadata have the same bounds whether they come with the item or
/// in a later change, and a refused change leaves the item as it was.
#[test]
fn note_and_metadata_limits_hold_on_create_and_on_update() {
    let (e, _) = engine();
    bank(&e, "NOTES", None, None);
    let long_note = "n".repeat(MAX_NOTE_BYTES + 1);
    let r = e.add_content(
        "NOTES",
        &AddContent {
            signals: vec![(SignalType::Pdq, H.into())],
            note: Some(long_note.clone()),
            ..Default::default()
        },
    );
    assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");
    let id = e
        .add_content(
            "NOTES",
            &AddContent {
                signals: vec![(SignalType::Pdq, H.into())],
                note: Some("n".repeat(MAX_NOTE_BYTES)),
                ..Default::default()
            },
        )
        .unwrap()
        .id;
    let r = e.update_content(
        "NOTES",
        id,
        &ContentUpdate {
            note: Some(Some(long_note)),
            ..Default::default()
        },
    );
    assert!(
        matches!(r, Err(Error::Invalid(ref m)) if m.contains("note")),
        "{r:?}"
    );
    let meta = format!("\"{}\"", "m".repeat(MAX_METADATA_BYTES));
    let r = e.update_content(
        "NOTES",
        id,
        &ContentUpdate {
            metadata: Some(Some(meta)),
            ..Default::default()
        },
    );
    assert!(
        matches!(r, Err(Error::Invalid(ref m)) if m.contains("metadata")),
        "{r:?}"
    );
    let c = e.content("NOTES", id).unwrap();
    assert_eq!(c.note.map(|n| n.len()), Some(MAX_NOTE_BYTES));
    assert_eq!(c.metadata, None);
    // A change within the limits is taken.
    let c = e
        .update_content(
            "NOTES",
            id,
            &ContentUpdate {
                note: Some(Some("short".into())),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(c.note.as_deref(), Some("short"));
}
