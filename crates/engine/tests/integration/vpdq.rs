//! The `vpdq` signal type in the engine: storage in canonical form, lookups with the two
//! percentages and configurable thresholds, live removal, snapshots and reopening, and the
//! sample videos' match matrix through banks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use safeguard_engine::{
    AddContent, CreateBank, Engine, Error, LookupOptions, SignalType, SignalValue, VpdqMatchConfig,
};
use safeguard_pdq::PdqHash;
use safeguard_store::{SqliteStore, Store};

fn engine() -> (Engine, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    (Engine::open(store.clone()).unwrap(), store)
}

fn bank(e: &Engine, name: &str) {
    e.create_bank(&CreateBank {
        name: name.into(),
        ..Default::default()
    })
    .unwrap();
}

fn add(e: &Engine, bank: &str, value: &str) -> i64 {
    e.add_content(
        bank,
        &AddContent {
            signals: vec![(SignalType::Vpdq, value.into())],
            ..Default::default()
        },
    )
    .unwrap()
    .id
}

fn all() -> LookupOptions {
    LookupOptions {
        coinflip: Some(0.0),
        ..Default::default()
    }
}

/// A pseudo-random hash per seed: different seeds are about 128 bits apart.
fn hash(seed: u8) -> PdqHash {
    let mut x =
        0x9e37_79b9_7f4a_7c15u64 ^ (u64::from(seed) + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let mut h = PdqHash([0; 32]);
    for b in h.0.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = (x >> 24) as u8;
    }
    h
}

/// pytx JSON for frames (hash, quality).
fn value(frames: &[(PdqHash, u8)]) -> String {
    let items: Vec<String> = frames
        .iter()
        .enumerate()
        .map(|(i, (h, q))| format!("\"{},{q},{}.0\"", h.to_hex(), i))
        .collect();
    format!("[{}]", items.join(", "))
}

fn vpdq(text: &str) -> SignalValue {
    SignalValue::parse(SignalType::Vpdq, text).unwrap()
}

#[test]
fn vpdq_values_are_stored_canonically_and_matched_with_percentages() {
    let (e, _) = engine();
    bank(&e, "VIDEOS");
    let (a, b, c, d, x) = (hash(0), hash(1), hash(2), hash(3), hash(4));
    // Stored as the reference CLI's lines, read back as HMA's JSON form.
    let lines = format!(
        "0,100,{},0.000\n30,100,{},1.000\n60,100,{},2.000\n90,100,{},3.000\n",
        a.to_hex().to_uppercase(),
        b.to_hex(),
        c.to_hex(),
        d.to_hex()
    );
    let id = add(&e, "VIDEOS", &lines);
    let stored = e.content("VIDEOS", id).unwrap();
    assert_eq!(stored.signals[0].signal_type, "vpdq");
    assert_eq!(
        stored.signals[0].value,
        value(&[(a, 100), (b, 100), (c, 100), (d, 100)])
    );

    // 4 of 5 query frames match (80 %), and 4 of 4 banked frames (100 %).
    let q = vpdq(&value(&[(a, 100), (b, 90), (c, 80), (d, 70), (x, 100)]));
    let r = e.lookup(&q, &all()).unwrap();
    assert_eq!(r.matches.len(), 1);
    let m = &r.matches[0];
    assert_eq!((m.content_id, m.signal_type), (id, SignalType::Vpdq));
    let p = m.vpdq.unwrap();
    assert_eq!(
        (p.query_match_percent, p.compared_match_percent),
        (80.0, 100.0)
    );

    // Per-lookup thresholds: 80 % is not enough when 81 % is asked for.
    let strict = LookupOptions {
        vpdq: Some(VpdqMatchConfig {
            query_match_percent: 81.0,
            ..VpdqMatchConfig::default()
        }),
        ..all()
    };
    assert!(e.lookup(&q, &strict).unwrap().matches.is_empty());
    // The query's weak frames drop out when the quality floor rises: then 3 of 4 match (75 %).
    let floor = LookupOptions {
        vpdq: Some(VpdqMatchConfig {
            frame_quality: 75,
            ..VpdqMatchConfig::default()
        }),
        ..all()
    };
    assert!(e.lookup(&q, &floor).unwrap().matches.is_empty());
    // The README's convention (compared side 80 %) on a query covering half the banked video.
    let half = vpdq(&value(&[(a, 100), (b, 100)]));
    assert!(e.lookup(&half, &all()).unwrap().matches.len() == 1);
    let readme = LookupOptions {
        vpdq: Some(VpdqMatchConfig {
            query_match_percent: 0.0,
            compared_match_percent: 80.0,
            ..VpdqMatchConfig::default()
        }),
        ..all()
    };
    assert!(e.lookup(&half, &readme).unwrap().matches.is_empty());
    // Out-of-range thresholds are the caller's error.
    let bad = LookupOptions {
        vpdq: Some(VpdqMatchConfig {
            frame_distance: 100,
            ..VpdqMatchConfig::default()
        }),
        ..all()
    };
    let err = e.lookup(&q, &bad).unwrap_err();
    assert!(err.is_client_error(), "{err}");

    // Unrelated video: nothing.
    let other = vpdq(&value(&[(x, 100), (hash(5), 100)]));
    assert!(e.lookup(&other, &all()).unwrap().matches.is_empty());
    // raw_lookup uses the same matching.
    assert_eq!(e.raw_lookup(&q, None).unwrap().len(), 1);
    // vpdq_scores also reports pairs that fail the thresholds, with their percentages.
    let half_frames = [(a, 100u8), (x, 100), (hash(6), 100)];
    let SignalValue::Vpdq(f) = vpdq(&value(&half_frames)) else {
        unreachable!("parsed as vpdq")
    };
    let scores = e.vpdq_scores(&f, &VpdqMatchConfig::default()).unwrap();
    assert_eq!(scores.len(), 1);
    let (m, passed) = &scores[0];
    let p = m.vpdq.unwrap();
    assert_eq!((m.content_id, *passed), (id, false));
    assert_eq!(
        (p.query_match_percent, p.compared_match_percent),
        (100.0 / 3.0, 25.0)
    );

    // Deleting the content removes it from matching at once.
    e.delete_content("VIDEOS", id).unwrap();
    assert!(e.lookup(&q, &all()).unwrap().matches.is_empty());
    let status = e.index_status();
    assert!(status.entries.contains(&(SignalType::Vpdq, 0)));
}

#[test]
fn invalid_vpdq_values_are_rejected_with_reasons() {
    let (e, _) = engine();
    bank(&e, "VIDEOS");
    for bad in ["[]", "not a value", "[\"abc,100,0.0\"]", "{\"0\": 1}"] {
        let err = e
            .add_content(
                "VIDEOS",
                &AddContent {
                    signals: vec![(SignalType::Vpdq, bad.into())],
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidSignal {
                    signal_type: "vpdq",
                    ..
                }
            ),
            "{bad}: {err}"
        );
        assert_eq!(err.code(), "invalid_signal");
    }
}

#[test]
fn vpdq_survives_snapshots_and_reopening() {
    let (e, store) = engine();
    bank(&e, "VIDEOS");
    let v1 = value(&[(hash(0), 100), (hash(1), 100)]);
    let v2 = value(&[(hash(2), 100), (hash(3), 40), (hash(2), 90)]);
    let id1 = add(&e, "VIDEOS", &v1);
    let mut buf = std::io::Cursor::new(Vec::new());
    e.write_snapshot(&mut buf).unwrap();
    // A change after the snapshot is replayed from the feed.
    let id2 = add(&e, "VIDEOS", &v2);
    let bytes = buf.into_inner();
    let loaded = Engine::open_with_snapshot(store.clone(), &mut bytes.as_slice()).unwrap();
    let reopened = Engine::open(store.clone()).unwrap();
    for eng in [&loaded, &reopened] {
        let r1 = eng.lookup(&vpdq(&v1), &all()).unwrap();
        assert_eq!(
            r1.matches.iter().map(|m| m.content_id).collect::<Vec<_>>(),
            vec![id1]
        );
        let r2 = eng.lookup(&vpdq(&v2), &all()).unwrap();
        assert_eq!(
            r2.matches.iter().map(|m| m.content_id).collect::<Vec<_>>(),
            vec![id2]
        );
        // The low-quality copy of hash 3 is not usable: v2 holds 1 usable distinct hash.
        let p = r2.matches[0].vpdq.unwrap();
        assert_eq!(
            (p.query_match_percent, p.compared_match_percent),
            (100.0, 100.0)
        );
        assert_eq!(eng.index_status().entries, e.index_status().entries);
    }
    // Damage in the vPDQ section (the snapshot's tail) is detected.
    let mut e2 = std::io::Cursor::new(Vec::new());
    e.write_snapshot(&mut e2).unwrap();
    let mut bad = e2.into_inner();
    let n = bad.len();
    bad[n - 10] ^= 0x01;
    assert!(Engine::open_with_snapshot(store, &mut bad.as_slice()).is_err());
}

// ---------------------------------------------------------------- sample videos

fn conformance() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SAFEGUARD_CONFORMANCE") {
        return Some(PathBuf::from(dir).join("vpdq"));
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let shared = ws.join("../shared/conformance/vpdq");
    if shared.join("match_matrix.csv").is_file() {
        return Some(shared);
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true but the full vPDQ conformance set is missing"
    );
    let subset = ws.join("testdata/conformance/vpdq");
    subset.join("match_matrix.csv").is_file().then_some(subset)
}

/// Every sample video's one-hash-a-second value in a bank; each looked up with the default
/// thresholds finds exactly the videos `match_matrix.csv` says python-threatexchange matches.
#[test]
fn sample_videos_match_their_variants_through_banks() {
    let Some(root) = conformance() else {
        panic!("no vPDQ conformance data: need ../shared/conformance/vpdq or testdata/conformance/vpdq");
    };
    let matrix = std::fs::read_to_string(root.join("match_matrix.csv")).unwrap();
    let dir = root.join("measured_ffmpeg5.1.9/r1");
    let (e, _) = engine();
    bank(&e, "SAMPLES");
    let mut ids = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&p).unwrap();
        ids.insert(name, (add(&e, "SAMPLES", &text), text));
    }
    assert!(!ids.is_empty());
    let mut checked = 0;
    for (name, (id, text)) in &ids {
        let r = e.lookup(&vpdq(text), &all()).unwrap();
        let mut got: Vec<i64> = r.matches.iter().map(|m| m.content_id).collect();
        got.sort();
        let mut want: Vec<i64> = matrix
            .lines()
            .filter(|l| l.starts_with("r1_measured,"))
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f[1] == name && f[5] == "True")
            .filter_map(|f| ids.get(f[2]).map(|(id, _)| *id))
            .chain([*id])
            .collect();
        want.sort();
        assert_eq!(got, want, "{name}");
        checked += 1;
    }
    assert_eq!(checked, ids.len());
}
