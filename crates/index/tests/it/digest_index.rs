//! The digest index agrees with a set model under random operation sequences.

use std::collections::BTreeSet;

use proptest::prelude::*;
use safeguard_index::{Sha1Index, Sha256Index};

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn sha1_index_matches_a_set(
        initial in prop::collection::vec((any::<[u8; 20]>(), 0u64..4), 0..400),
        ops in prop::collection::vec((any::<bool>(), 0usize..1000, any::<[u8; 20]>(), 0u64..4), 0..400),
    ) {
        let mut model: BTreeSet<([u8; 20], u64)> = initial.iter().copied().collect();
        let index = Sha1Index::from_entries(initial.clone());
        let mut known: Vec<[u8; 20]> = initial.iter().map(|e| e.0).collect();
        for (insert, pick, fresh, id) in ops {
            // Digests that share 8-byte prefixes, or are zero-prefixed, exercise the edges.
            let mut d = if known.is_empty() || pick % 3 == 0 { fresh } else { known[pick % known.len()] };
            if pick % 17 == 0 { d[..8].fill(0); }
            if pick % 5 == 0 { d[..8].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]); }
            if insert {
                prop_assert_eq!(index.insert(&d, id), model.insert((d, id)));
                known.push(d);
            } else {
                prop_assert_eq!(index.remove(&d, id), model.remove(&(d, id)));
            }
        }
        prop_assert_eq!(index.len(), model.len());
        for d in &known {
            let mut got = Vec::new();
            index.lookup(d, &mut got);
            let want: Vec<u64> = model.range((*d, 0)..=(*d, u64::MAX)).map(|e| e.1).collect();
            prop_assert_eq!(got, want);
        }
    }
}

#[test]
fn sha256_batch_lookup() {
    let entries: Vec<([u8; 32], u64)> = (0..10_000u64)
        .map(|i| {
            let mut d = [0u8; 32];
            d[..8].copy_from_slice(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_be_bytes());
            d[31] = i as u8;
            (d, i)
        })
        .collect();
    let index = Sha256Index::from_entries(entries.clone());
    assert!(index.memory_bytes() / entries.len() <= 48);
    let queries: Vec<[u8; 32]> = entries.iter().map(|e| e.0).chain([[9u8; 32]]).collect();
    let mut out = Vec::new();
    index.lookup_batch(&queries, &mut out);
    assert_eq!(out.len(), 10_000);
    assert!(out.iter().all(|&(i, id)| i as u64 == id));
}
