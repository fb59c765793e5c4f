//! The PDQ index agrees with a brute-force scan on random banks, radii and update sequences.

use proptest::prelude::*;
use safeguard_index::{PdqIndex, PdqIndexBuilder, PdqIndexConfig, MAX_RADIUS};
use safeguard_pdq::PdqHash;

use crate::common::{clustered_bank, query_near, Model, Rng};

#[derive(Debug, Clone)]
enum Op {
    Add(u64),
    AddBatch(u8),
    Remove(u64),
    RemoveBatch(u8),
    Query(u32),
    Dihedral(u32),
    Compact,
    Wait,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => any::<u64>().prop_map(Op::Add),
        2 => any::<u8>().prop_map(Op::AddBatch),
        4 => any::<u64>().prop_map(Op::Remove),
        1 => any::<u8>().prop_map(Op::RemoveBatch),
        8 => (0..=MAX_RADIUS).prop_map(Op::Query),
        1 => (0..=40u32).prop_map(Op::Dihedral),
        1 => Just(Op::Compact),
        1 => Just(Op::Wait),
    ]
}

fn config(tail: usize, background: bool, max_merge: usize, always_probe: bool) -> PdqIndexConfig {
    PdqIndexConfig {
        tail_capacity: tail,
        background_merges: background,
        // Small enough that merges also run on the background thread in these tests.
        inline_merge_entries: if background { 20 } else { usize::MAX },
        max_merge_entries: max_merge,
        always_probe,
    }
}

fn check(index: &PdqIndex, model: &Model, q: &PdqHash, r: u32) {
    let got = index.search(q, r).unwrap();
    let want = model.search(q, r);
    assert_eq!(got, want, "radius {r}, query {q}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Bulk build then interleaved adds, removes and queries; tiny tails force many freezes
    /// and merges, in the background or inline.
    #[test]
    fn index_matches_brute_force(
        seed in any::<u64>(),
        initial in 0usize..3000,
        ops in prop::collection::vec(op(), 1..120),
        tail in 1usize..40,
        background in any::<bool>(),
        max_merge in prop_oneof![Just(usize::MAX), 100usize..2000],
        always_probe in prop::bool::weighted(0.7),
    ) {
        let mut rng = Rng(seed);
        let bank = clustered_bank(&mut rng, initial);
        let mut model = Model::default();
        let mut b = PdqIndexBuilder::new(config(tail, background, max_merge, always_probe));
        for (id, h) in &bank {
            b.push(*id, h);
            model.0.insert((*id, *h));
        }
        let index = b.build().unwrap();
        prop_assert_eq!(index.len(), model.0.len());
        let mut known: Vec<(u64, PdqHash)> = bank.clone();
        for op in ops {
            match op {
                Op::Add(x) => {
                    let h = query_near(&mut rng, &known, 20);
                    let id = x % 64;
                    prop_assert_eq!(index.add(id, &h), model.0.insert((id, h)));
                    known.push((id, h));
                }
                Op::AddBatch(k) => {
                    let batch: Vec<(u64, PdqHash)> = (0..k)
                        .map(|_| (rng.below(64), query_near(&mut rng, &known, 12)))
                        .collect();
                    let added = index.add_batch(&batch);
                    let before = model.0.len();
                    model.0.extend(batch.iter().copied());
                    prop_assert_eq!(added, model.0.len() - before);
                    known.extend(batch);
                }
                Op::Remove(x) => {
                    if known.is_empty() { continue; }
                    let (id, h) = known[(x % known.len() as u64) as usize];
                    prop_assert_eq!(index.remove(id, &h), model.0.remove(&(id, h)));
                }
                Op::RemoveBatch(k) => {
                    if known.is_empty() { continue; }
                    let batch: Vec<(u64, PdqHash)> = (0..k)
                        .map(|_| known[rng.below(known.len() as u64) as usize])
                        .collect();
                    let mut removed = 0;
                    for e in &batch {
                        removed += usize::from(model.0.remove(e));
                    }
                    prop_assert_eq!(index.remove_batch(&batch), removed);
                }
                Op::Query(r) => {
                    let q = query_near(&mut rng, &known, r + 6);
                    check(&index, &model, &q, r);
                }
                Op::Dihedral(r) => {
                    let base = query_near(&mut rng, &known, r);
                    let qs: [PdqHash; 8] =
                        std::array::from_fn(|v| if v == 0 { base } else { rng.flip(&base, v as u32 * 3) });
                    prop_assert_eq!(index.search_dihedral(&qs, r).unwrap(), model.search_dihedral(&qs, r));
                }
                Op::Compact => index.compact(),
                Op::Wait => index.wait_for_merges(),
            }
            prop_assert_eq!(index.len(), model.0.len());
        }
        // A final sweep over many radii, then the same after waiting for merges.
        for r in [0, 1, 5, 15, 31, 32, 47, 64] {
            let q = query_near(&mut rng, &known, r + 4);
            check(&index, &model, &q, r);
            prop_assert_eq!(index.search_exhaustive(&q, r).unwrap(), model.search(&q, r));
        }
        index.wait_for_merges();
        for r in [0, 10, 31, 64] {
            let q = query_near(&mut rng, &known, r + 4);
            check(&index, &model, &q, r);
        }
    }
}

/// Larger banks, where segments get full multi-index tables, checked at every radius.
#[test]
fn large_banks_at_every_radius() {
    for (seed, n) in [(1u64, 20_000usize), (2, 60_000)] {
        let mut rng = Rng(seed);
        let bank = clustered_bank(&mut rng, n);
        let model = Model(bank.iter().copied().collect());
        let index = PdqIndex::from_entries(bank.iter().map(|(id, h)| (*id, h))).unwrap();
        for r in 0..=MAX_RADIUS {
            for _ in 0..4 {
                let q = query_near(&mut rng, &bank, r + 8);
                check(&index, &model, &q, r);
            }
        }
    }
}

/// A bank that is mostly one dense cluster: queries near it exceed the candidate budget and
/// fall back to a scan, queries far from it use the tables; both are exact.
#[test]
fn dense_cluster_falls_back_exactly() {
    let mut rng = Rng(7);
    let center = rng.hash();
    let mut bank: Vec<(u64, PdqHash)> = (0..30_000u64)
        .map(|i| (i, rng.flip(&center, (i % 4) as u32)))
        .collect();
    bank.extend((30_000..40_000u64).map(|i| (i, rng.hash())));
    let model = Model(bank.iter().copied().collect());
    let index = PdqIndex::from_entries(bank.iter().map(|(id, h)| (*id, h))).unwrap();
    for k in [0, 10, 28, 33, 36, 40, 60] {
        let q = rng.flip(&center, k);
        for r in [0, 2, 31, 40] {
            check(&index, &model, &q, r);
        }
    }
    let q = rng.hash();
    check(&index, &model, &q, 31);
}

#[test]
fn new_entries_are_visible_to_the_next_query_and_removals_too() {
    let mut rng = Rng(11);
    let bank: Vec<(u64, PdqHash)> = (0..50_000u64).map(|i| (i, rng.hash())).collect();
    let index = PdqIndex::from_entries(bank.iter().map(|(id, h)| (*id, h))).unwrap();
    for i in 0..5_000u64 {
        let h = rng.hash();
        assert!(index.add(1_000_000 + i, &h));
        let found = index.search(&h, 0).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, 1_000_000 + i);
        if i % 2 == 0 {
            assert!(index.remove(1_000_000 + i, &h));
            assert!(index.search(&h, 31).unwrap().is_empty());
            assert!(!index.remove(1_000_000 + i, &h));
        }
    }
    assert_eq!(index.len(), 50_000 + 2_500);
    // The bulk-built entries can be removed too.
    let (id, h) = bank[123];
    assert!(index.remove(id, &h));
    assert!(index.search(&h, 0).unwrap().is_empty());
    assert!(!index.add(bank[5].0, &bank[5].1), "pair already present");
    index.compact();
    assert_eq!(index.stats().segments.len(), 1);
    assert_eq!(index.len(), 50_000 + 2_500 - 1);
}

#[test]
fn radius_above_maximum_is_refused() {
    let index = PdqIndex::new();
    assert!(index.search(&PdqHash::ZERO, MAX_RADIUS + 1).is_err());
    assert!(index.search(&PdqHash::ZERO, MAX_RADIUS).unwrap().is_empty());
}

#[test]
fn same_id_with_two_hashes_reports_both() {
    let index = PdqIndex::new();
    let a = PdqHash::ZERO;
    let mut b = a;
    b.set_bit(3);
    assert!(index.add(9, &a));
    assert!(index.add(9, &b));
    let got = index.search(&a, 5).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].distance, got[1].distance), (0, 1));
}
