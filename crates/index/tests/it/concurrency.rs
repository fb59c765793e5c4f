//! Readers querying while writers add, remove, freeze and merge.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use safeguard_index::{PdqIndexBuilder, PdqIndexConfig};
use safeguard_pdq::PdqHash;

use crate::common::Rng;

/// Stable entries are always found while the writer churns the index through freezes and
/// background merges; an entry is visible to a query on another thread as soon as the add
/// that created it has returned.
#[test]
fn readers_see_stable_entries_and_fresh_additions() {
    let mut rng = Rng(99);
    let stable: Vec<(u64, PdqHash)> = (0..20_000u64).map(|i| (i, rng.hash())).collect();
    let mut b = PdqIndexBuilder::new(PdqIndexConfig {
        tail_capacity: 64,
        background_merges: true,
        inline_merge_entries: 500,
        max_merge_entries: usize::MAX,
        always_probe: false,
    });
    for (id, h) in &stable {
        b.push(*id, h);
    }
    let index = Arc::new(b.build().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<(u64, PdqHash)>();

    let writer = {
        let index = Arc::clone(&index);
        std::thread::spawn(move || {
            let mut rng = Rng(5);
            let mut churn = Vec::new();
            for i in 0..6_000u64 {
                let h = rng.hash();
                assert!(index.add(1_000_000 + i, &h));
                // Announced only after `add` returned.
                tx.send((1_000_000 + i, h)).unwrap();
                let c = rng.hash();
                index.add(2_000_000 + i, &c);
                churn.push((2_000_000 + i, c));
                if i % 3 == 0 {
                    let (id, c) = churn.swap_remove(0);
                    assert!(index.remove(id, &c));
                }
            }
        })
    };

    let readers: Vec<_> = (0..2)
        .map(|t| {
            let index = Arc::clone(&index);
            let stable = stable.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut rng = Rng(1000 + t);
                let mut rounds = 0u64;
                while !stop.load(Ordering::Relaxed) || rounds < 50 {
                    let (id, h) = stable[rng.below(stable.len() as u64) as usize];
                    let q = rng.flip(&h, 10);
                    let got = index.search(&q, 31).unwrap();
                    assert!(got.iter().any(|m| m.id == id), "stable entry {id} missing");
                    rounds += 1;
                }
            })
        })
        .collect();

    // The main thread checks cross-thread visibility of fresh additions.
    for (id, h) in rx {
        let got = index.search(&h, 0).unwrap();
        assert!(
            got.iter().any(|m| m.id == id),
            "fresh entry {id} not visible"
        );
    }
    writer.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    index.wait_for_merges();
    assert_eq!(index.len(), 20_000 + 6_000 + 6_000 - 2_000);
}
