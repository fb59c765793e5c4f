//! Store throughput at scale (default one million signals), on disk with full durability:
//! the benchmark behind `scripts/bench-store.sh`. Every figure is printed beside a baseline
//! measured in the same run, as a ratio:
//!
//! * writes: the staged import (`import_source`, one transaction) and a re-import (every entry
//!   refreshed) against the row-at-a-time path (`add_contents`, 100,000 per transaction);
//! * reads: the startup scan (`scan_signals`), the change feed (`changes_since`) and the scan
//!   after a reopen against one pass over the same values held in memory (what the scan would
//!   cost if the store were free).
//!
//! ```sh
//! cargo run --release -p safeguard-store --example store_rates -- [SIGNALS] [DIR]
//! ```
//! `DIR` (default: the system temporary folder) receives two database files, removed at the end.
//! These rates used to be `#[ignore]`d tests in `tests/sqlite.rs`; their correctness checks at
//! a small size stay there (`bulk_add_scan_feed_and_reopen_agree`,
//! `staged_import_adds_then_refreshes_every_entry`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use safeguard_store::conformance::new_bank;
use safeguard_store::{
    Change, NewContent, SourceEntry, SourceImport, SqliteOptions, SqliteStore, Store,
};

/// Rows per `add_contents` call on the baseline path (one transaction each).
const BASELINE_CHUNK: u64 = 100_000;

/// Values spread like real hashes, so the value index sees random inserts.
fn md5_like(i: u64) -> String {
    let v = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{v:016x}{:016x}", v.rotate_left(17))
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(&SqliteOptions::new(path)).expect("open store")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .map(|a| a.parse().expect("SIGNALS must be a number"))
        .unwrap_or(1_000_000);
    let root = args.next().map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = root.join(format!("safeguard-store-rates-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the work folder");
    let rate = |d: Duration| n as f64 / d.as_secs_f64();

    // ---- Writes. Baseline: row-at-a-time add_contents.
    let rows_path = dir.join("rows.db");
    let store = open(&rows_path);
    let b = store.create_bank(&new_bank("ROWS")).expect("create bank");
    let t = Instant::now();
    let mut start = 0;
    while start < n {
        let end = (start + BASELINE_CHUNK).min(n);
        let items: Vec<NewContent> = (start..end)
            .map(|i| NewContent {
                signals: vec![("md5".to_owned(), md5_like(i))],
                ..NewContent::default()
            })
            .collect();
        store.add_contents(b.id, &items).expect("add_contents");
        start = end;
    }
    let rows = t.elapsed();

    // ---- Reads, on the baseline store. Baseline: one pass over the same values in memory.
    let values: Vec<String> = (0..n).map(md5_like).collect();
    let t = Instant::now();
    let in_memory_bytes: usize = std::hint::black_box(&values).iter().map(String::len).sum();
    let memory = t.elapsed().max(Duration::from_nanos(1));
    drop(values);
    let t = Instant::now();
    let (mut scanned, mut bytes) = (0u64, 0usize);
    let seq = store
        .scan_signals(&mut |s| {
            scanned += 1;
            bytes += s.value.len();
        })
        .expect("scan_signals");
    let scan = t.elapsed();
    assert_eq!(
        (scanned, bytes),
        (n, in_memory_bytes),
        "scan vs the values added"
    );
    let t = Instant::now();
    let mut added = 0u64;
    store
        .changes_since(0, usize::MAX, &mut |_, c| {
            if matches!(c, Change::Added(_)) {
                added += 1;
            }
        })
        .expect("changes_since");
    let feed = t.elapsed();
    assert_eq!(added, n, "feed vs the values added");
    assert_eq!(seq, store.last_seq().expect("last_seq"));
    let t = Instant::now();
    let counts = store.counts().expect("counts");
    let count_time = t.elapsed();
    assert_eq!(counts.contents, n);
    drop(store);
    let t = Instant::now();
    let store = open(&rows_path);
    let mut reloaded = 0u64;
    store
        .scan_signals(&mut |_| reloaded += 1)
        .expect("scan after reopen");
    let restart = t.elapsed();
    assert_eq!(reloaded, n);
    drop(store);

    // ---- The staged import, then a re-import of the same list.
    let store = open(&dir.join("staged.db"));
    let b = store.create_bank(&new_bank("STAGED")).expect("create bank");
    let import = |seen_at| {
        let t = Instant::now();
        let out = store
            .import_source(
                b.id,
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
                        e.value = md5_like(i);
                        sink.upsert(&e)?;
                    }
                    Ok(())
                },
            )
            .expect("import_source");
        (t.elapsed(), out)
    };
    let (staged, out) = import(1);
    assert_eq!(out.added, n);
    let (again, out) = import(2);
    assert_eq!((out.added, out.refreshed), (0, n));
    drop(store);
    std::fs::remove_dir_all(&dir).expect("remove the work folder");

    let s = |d: Duration| d.as_secs_f64();
    println!("{n} md5-shaped signals, on disk, synchronous=FULL");
    println!(
        "writes  baseline add_contents ({BASELINE_CHUNK} per transaction): {:.2} s = {:.0}/s",
        s(rows),
        rate(rows)
    );
    println!(
        "        staged import (one transaction):   {:.2} s = {:.0}/s ({:.2}x the baseline)",
        s(staged),
        rate(staged),
        s(rows) / s(staged)
    );
    println!(
        "        re-import (every entry refreshed): {:.2} s = {:.0}/s ({:.2}x the baseline)",
        s(again),
        rate(again),
        s(rows) / s(again)
    );
    println!(
        "reads   baseline one pass in memory:       {:.4} s = {:.0}/s",
        s(memory),
        rate(memory)
    );
    for (name, d) in [
        ("scan_signals", scan),
        ("changes_since", feed),
        ("reopen + scan_signals", restart),
    ] {
        println!(
            "        {name:<34} {:.2} s = {:.0}/s ({:.0}x the in-memory pass; 10x the signals: about {:.1} s)",
            s(d),
            rate(d),
            s(d) / s(memory),
            10.0 * s(d)
        );
    }
    println!("        counts: {:.3} s", s(count_time));
}
