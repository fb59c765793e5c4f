//! PhotoDNA as a plug-in signal: stored in banks in any of its text forms, matched by
//! Euclidean distance with the engine's (or the lookup's) threshold, kept through the change
//! feed and snapshots. The values here are arbitrary byte patterns, not PhotoDNA hashes of
//! anything: Safeguard never computes PhotoDNA.

use std::io::Cursor;
use std::sync::Arc;

use safeguard_engine::photodna::{format_photodna, PhotoDnaValue, PHOTODNA_LEN};
use safeguard_engine::{AddContent, CreateBank, Engine, LookupOptions, SignalType, SignalValue};
use safeguard_store::{SqliteOptions, SqliteStore, Store};

fn value(seed: u8) -> PhotoDnaValue {
    let mut v = [0u8; PHOTODNA_LEN];
    for (i, b) in v.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    v
}

/// `v` with `k` bytes each moved by `by` (Euclidean distance `by * sqrt(k)`).
fn nudge(v: &PhotoDnaValue, k: usize, by: u8) -> PhotoDnaValue {
    let mut out = *v;
    for b in out.iter_mut().take(k) {
        *b = if *b >= by { *b - by } else { *b + by };
    }
    out
}

fn lookup(e: &Engine, v: &PhotoDnaValue, threshold: Option<f64>) -> Vec<(i64, u32)> {
    let value = SignalValue::parse(SignalType::PhotoDna, &format_photodna(v)).unwrap();
    e.lookup(
        &value,
        &LookupOptions {
            coinflip: Some(0.0),
            photodna_threshold: threshold,
            ..Default::default()
        },
    )
    .unwrap()
    .matches
    .into_iter()
    .map(|m| (m.content_id, m.distance))
    .collect()
}

fn add(e: &Engine, text: String) -> i64 {
    e.add_content(
        "PDNA",
        &AddContent {
            signals: vec![(SignalType::PhotoDna, text)],
            ..Default::default()
        },
    )
    .unwrap()
    .id
}

#[test]
fn stored_in_any_form_and_matched_by_euclidean_distance() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let e = Engine::open(store.clone()).unwrap();
    e.create_bank(&CreateBank {
        name: "PDNA".into(),
        ..Default::default()
    })
    .unwrap();
    let a = value(1);
    let b = value(90);
    // Three text forms of the NCMEC/IWF world.
    let csv = a
        .iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let id_a = add(&e, csv);
    let id_b = add(&e, format_photodna(&b).to_ascii_uppercase());
    // Stored canonically.
    let stored = e.content("PDNA", id_a).unwrap();
    assert_eq!(stored.signals[0].value, format_photodna(&a));

    // Default threshold 0: identical values only.
    assert_eq!(e.photodna_threshold(), 0.0);
    assert_eq!(lookup(&e, &a, None), vec![(id_a, 0)]);
    let near = nudge(&a, 4, 10); // distance 20
    assert!(lookup(&e, &near, None).is_empty());
    // A per-lookup threshold, and the engine's setting.
    assert_eq!(lookup(&e, &near, Some(20.0)), vec![(id_a, 20)]);
    assert!(lookup(&e, &near, Some(19.99)).is_empty());
    e.set_photodna_threshold(25.0).unwrap();
    assert_eq!(lookup(&e, &near, None), vec![(id_a, 20)]);
    assert!(e.set_photodna_threshold(-1.0).is_err());
    assert!(e.set_photodna_threshold(f64::NAN).is_err());
    assert_eq!(lookup(&e, &b, None), vec![(id_b, 0)]);

    // Other signal types never see PhotoDNA values, and bad values are refused.
    let err = e
        .add_content(
            "PDNA",
            &AddContent {
                signals: vec![(SignalType::PhotoDna, "abc".into())],
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("photodna"), "{err}");

    // Removal through the change feed.
    e.delete_content("PDNA", id_b).unwrap();
    assert!(lookup(&e, &b, None).is_empty());

    // A snapshot carries the PhotoDNA index; a fresh build from the store agrees.
    let mut snap = Cursor::new(Vec::new());
    e.write_snapshot(&mut snap).unwrap();
    snap.set_position(0);
    let reopened = Engine::open_with_snapshot(store.clone(), &mut snap).unwrap();
    assert_eq!(lookup(&reopened, &near, Some(20.0)), vec![(id_a, 20)]);
    assert!(lookup(&reopened, &b, Some(1.0)).is_empty());
    let rebuilt = Engine::open(store).unwrap();
    assert_eq!(lookup(&rebuilt, &near, Some(20.0)), vec![(id_a, 20)]);
    let status = rebuilt.index_status();
    assert!(status.entries.contains(&(SignalType::PhotoDna, 1)));
}

#[test]
fn survives_a_reopen_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sg.db");
    let a = value(7);
    {
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&SqliteOptions::new(path.clone())).unwrap());
        let e = Engine::open(store).unwrap();
        e.create_bank(&CreateBank {
            name: "PDNA".into(),
            ..Default::default()
        })
        .unwrap();
        add(&e, format_photodna(&a));
    }
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&SqliteOptions::new(path.clone())).unwrap());
    let e = Engine::open(store).unwrap();
    assert_eq!(lookup(&e, &a, None).len(), 1);
}
