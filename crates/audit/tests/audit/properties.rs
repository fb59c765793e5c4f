//! Property tests: the cached tree agrees with the RFC 6962 definition, every proof it makes
//! verifies, and any change to a proof or its claims makes it fail.

use proptest::prelude::*;
use safeguard_audit::merkle::naive_root;
use safeguard_audit::{leaf_hash, verify_consistency, verify_inclusion, Hash, Tree};

/// Largest tree the properties build. Big enough for five levels of incomplete right edges
/// and every split shape up to it, small enough for the naive reference to stay quick.
const MAX_SIZE: u64 = 600;

/// Distinct leaves: with two equal leaves a swapped index could honestly verify.
fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

fn flip(mut h: Hash, bit: usize) -> Hash {
    h[bit / 8 % 32] ^= 1 << (bit % 8);
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn roots_match_the_naive_definition(size in 0..=MAX_SIZE, past in any::<prop::sample::Index>()) {
        let l = leaves(size);
        let tree = Tree::from_leaf_hashes(l.iter().copied());
        prop_assert_eq!(tree.current_root(), naive_root(&l));
        let p = past.index(size as usize + 1);
        prop_assert_eq!(tree.root(p as u64).unwrap(), naive_root(&l[..p]));
    }

    #[test]
    fn inclusion_proofs_verify_and_alterations_fail(
        size in 1..=MAX_SIZE,
        at in any::<prop::sample::Index>(),
        grown in 0..=64u64,
        bit in 0..256usize,
        which in any::<prop::sample::Index>(),
    ) {
        // Proofs for a past size of a tree that has grown since.
        let l = leaves(size + grown);
        let tree = Tree::from_leaf_hashes(l.iter().copied());
        let index = at.index(size as usize) as u64;
        let root = naive_root(&l[..size as usize]);
        let leaf = l[index as usize];
        let proof = tree.inclusion_proof(index, size).unwrap();
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &root).is_ok());

        prop_assert!(verify_inclusion(&flip(leaf, bit), index, size, &proof, &root).is_err());
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &flip(root, bit)).is_err());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let i = which.index(bad.len());
            bad[i] = flip(bad[i], bit);
            prop_assert!(verify_inclusion(&leaf, index, size, &bad, &root).is_err());
            prop_assert!(verify_inclusion(&leaf, index, size, &proof[1..], &root).is_err());
        }
        let mut longer = proof.clone();
        longer.push(root);
        prop_assert!(verify_inclusion(&leaf, index, size, &longer, &root).is_err());
        for wrong in [index.wrapping_sub(1), index + 1, index ^ 1, index ^ 2, size] {
            if wrong != index {
                prop_assert!(verify_inclusion(&leaf, wrong, size, &proof, &root).is_err(),
                    "index {} verified as {}", index, wrong);
            }
        }
        // A root commits to content; the size comes with the signed head. Neighbouring sizes
        // can share a path's shape (leaf 0 in sizes 3 and 4), so the wrong sizes tried are
        // the doubled and the halved, whose paths never have the same length.
        for wrong in [size * 2, size / 2] {
            if wrong != size && wrong > index {
                prop_assert!(verify_inclusion(&leaf, index, wrong, &proof, &root).is_err(),
                    "size {} verified as {}", size, wrong);
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_and_alterations_fail(
        size2 in 1..=MAX_SIZE,
        first in any::<prop::sample::Index>(),
        bit in 0..256usize,
        which in any::<prop::sample::Index>(),
    ) {
        let l = leaves(size2);
        let tree = Tree::from_leaf_hashes(l.iter().copied());
        let size1 = first.index(size2 as usize + 1) as u64;
        let root1 = naive_root(&l[..size1 as usize]);
        let root2 = naive_root(&l);
        let proof = tree.consistency_proof(size1, size2).unwrap();
        prop_assert!(verify_consistency(size1, size2, &root1, &root2, &proof).is_ok());
        if size1 == 0 || size1 == size2 {
            prop_assert!(proof.is_empty());
            return Ok(());
        }
        prop_assert!(verify_consistency(size1, size2, &flip(root1, bit), &root2, &proof).is_err());
        prop_assert!(verify_consistency(size1, size2, &root1, &flip(root2, bit), &proof).is_err());
        let mut bad = proof.clone();
        let i = which.index(bad.len());
        bad[i] = flip(bad[i], bit);
        prop_assert!(verify_consistency(size1, size2, &root1, &root2, &bad).is_err());
        prop_assert!(verify_consistency(size1, size2, &root1, &root2, &proof[1..]).is_err());
        prop_assert!(
            verify_consistency(size1, size2, &root1, &root2, &proof[..proof.len() - 1]).is_err()
        );
        let mut longer = proof.clone();
        longer.push(root2);
        prop_assert!(verify_consistency(size1, size2, &root1, &root2, &longer).is_err());
        prop_assert!(verify_consistency(size1, size2, &root2, &root1, &proof).is_err());
        for (s1, s2) in [(size1 - 1, size2), (size1 + 1, size2), (size1, size2 * 2), (size1, size2 / 2)] {
            if (s1, s2) != (size1, size2) && s1 <= s2 && s1 > 0 {
                prop_assert!(verify_consistency(s1, s2, &root1, &root2, &proof).is_err(),
                    "{} -> {} verified as {} -> {}", size1, size2, s1, s2);
            }
        }
    }
}

/// Every index, size and size pair up to a bound, not only sampled ones: the wrong-claim
/// probes above must fail for all of them.
#[test]
fn exhaustive_small_trees() {
    const N: u64 = 70;
    let l = leaves(N);
    let tree = Tree::from_leaf_hashes(l.iter().copied());
    for size in 1..=N {
        let root = naive_root(&l[..size as usize]);
        for index in 0..size {
            let leaf = l[index as usize];
            let proof = tree.inclusion_proof(index, size).unwrap();
            assert!(verify_inclusion(&leaf, index, size, &proof, &root).is_ok());
            for wrong in 0..=N {
                if wrong != index {
                    assert!(verify_inclusion(&leaf, wrong, size, &proof, &root).is_err());
                }
            }
            for wrong in [size * 2, size / 2] {
                if wrong != size {
                    assert!(verify_inclusion(&leaf, index, wrong, &proof, &root).is_err());
                }
            }
        }
        for size1 in 1..size {
            let root1 = naive_root(&l[..size1 as usize]);
            let proof = tree.consistency_proof(size1, size).unwrap();
            assert!(verify_consistency(size1, size, &root1, &root, &proof).is_ok());
            for wrong in 1..size {
                if wrong != size1 {
                    assert!(
                        verify_consistency(wrong, size, &root1, &root, &proof).is_err(),
                        "{size1} -> {size} verified as {wrong} -> {size}"
                    );
                }
            }
            for wrong in [size * 2, size / 2] {
                if wrong > size1 && wrong != size {
                    assert!(verify_consistency(size1, wrong, &root1, &root, &proof).is_err());
                }
            }
        }
    }
}
