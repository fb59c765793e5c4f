//! The RFC 6962 reference vectors used across Certificate Transparency implementations.
//!
//! Data (hex strings only) from transparency-dev/merkle (Apache-2.0): `testonly/constants.go`
//! (leaf inputs, complete-subtree hashes, roots for sizes 0..=8) and `proof/verify_test.go`
//! (inclusion and consistency proofs). The same vectors appear in certificate-transparency-go
//! and the C++ CT log's merkle tree tests. In `verify_test.go` the inclusion vectors number
//! leaves from 1; here they are converted to 0-based indices.

use safeguard_audit::{
    empty_root, leaf_hash, root_from_inclusion_proof, verify_consistency, verify_inclusion, Hash,
    Tree,
};

const LEAF_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Roots of the trees of the first 1..=8 leaves.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// Leaf hashes of the eight inputs (level 0 of the complete-subtree hashes).
const LEAF_HASHES: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
];

const EMPTY_ROOT: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// (leaf index from 0, tree size, audit path).
const INCLUSION: &[(u64, u64, &[&str])] = &[
    (0, 1, &[]),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (size1, size2, consistency proof).
const CONSISTENCY: &[(u64, u64, &[&str])] = &[
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn h(text: &str) -> Hash {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).unwrap();
    out
}

fn hashes(texts: &[&str]) -> Vec<Hash> {
    texts.iter().map(|t| h(t)).collect()
}

fn reference_tree() -> Tree {
    let mut tree = Tree::new();
    for input in LEAF_INPUTS {
        tree.push_data(&hex::decode(input).unwrap());
    }
    tree
}

#[test]
fn leaf_hashes_and_roots_match_the_reference() {
    assert_eq!(empty_root(), h(EMPTY_ROOT));
    for (i, input) in LEAF_INPUTS.iter().enumerate() {
        assert_eq!(leaf_hash(&hex::decode(input).unwrap()), h(LEAF_HASHES[i]));
    }
    let tree = reference_tree();
    assert_eq!(tree.root(0).unwrap(), h(EMPTY_ROOT));
    for (i, root) in ROOTS.iter().enumerate() {
        assert_eq!(tree.root(i as u64 + 1).unwrap(), h(root), "size {}", i + 1);
    }
    // Built incrementally, each current root matches too.
    let mut growing = Tree::new();
    for (i, input) in LEAF_INPUTS.iter().enumerate() {
        growing.push_data(&hex::decode(input).unwrap());
        assert_eq!(growing.current_root(), h(ROOTS[i]));
    }
}

#[test]
fn inclusion_proofs_match_and_verify() {
    let tree = reference_tree();
    for &(index, size, path) in INCLUSION {
        let want = hashes(path);
        assert_eq!(
            tree.inclusion_proof(index, size).unwrap(),
            want,
            "leaf {index} in {size}"
        );
        let leaf = h(LEAF_HASHES[index as usize]);
        let root = h(ROOTS[size as usize - 1]);
        verify_inclusion(&leaf, index, size, &want, &root).unwrap();
        assert_eq!(
            root_from_inclusion_proof(&leaf, index, size, &want).unwrap(),
            root
        );
        // Wrong index, wrong size, wrong leaf, wrong root, extra or missing hashes.
        let bad: Vec<(u64, u64, Hash, Hash, Vec<Hash>)> = vec![
            (index.wrapping_sub(1), size, leaf, root, want.clone()),
            (index + 1, size, leaf, root, want.clone()),
            (index ^ 2, size, leaf, root, want.clone()),
            (index, size * 2, leaf, root, want.clone()),
            (index, size / 2, leaf, root, want.clone()),
            (index, size, h(EMPTY_ROOT), root, want.clone()),
            (index, size, leaf, h(EMPTY_ROOT), want.clone()),
            (index, size, leaf, root, [want.clone(), vec![root]].concat()),
            (index, size, leaf, root, [vec![root], want.clone()].concat()),
        ];
        for (i, (bi, bs, bl, br, bp)) in bad.into_iter().enumerate() {
            assert!(
                verify_inclusion(&bl, bi, bs, &bp, &br).is_err(),
                "probe {i} of leaf {index} in {size} verified"
            );
        }
        if !want.is_empty() {
            let mut short = want.clone();
            short.pop();
            assert!(verify_inclusion(&leaf, index, size, &short, &root).is_err());
        }
    }
    assert!(tree.inclusion_proof(8, 8).is_err());
    assert!(tree.inclusion_proof(0, 9).is_err());
}

#[test]
fn consistency_proofs_match_and_verify() {
    let tree = reference_tree();
    for &(size1, size2, path) in CONSISTENCY {
        let want = hashes(path);
        assert_eq!(
            tree.consistency_proof(size1, size2).unwrap(),
            want,
            "{size1} -> {size2}"
        );
        let root1 = h(ROOTS[size1 as usize - 1]);
        let root2 = h(ROOTS[size2 as usize - 1]);
        verify_consistency(size1, size2, &root1, &root2, &want).unwrap();
        if want.is_empty() {
            continue;
        }
        let bad: Vec<(u64, u64, Hash, Hash, Vec<Hash>)> = vec![
            (size1 - 1, size2, root1, root2, want.clone()),
            (size1 + 1, size2, root1, root2, want.clone()),
            (size1 ^ 2, size2, root1, root2, want.clone()),
            (size1, size2 * 2, root1, root2, want.clone()),
            (size1, size2 / 2, root1, root2, want.clone()),
            (size1, size2, h(EMPTY_ROOT), root2, want.clone()),
            (size1, size2, root1, h(EMPTY_ROOT), want.clone()),
            (size1, size2, root2, root1, want.clone()),
            (size1, size2, root1, root2, Vec::new()),
            (
                size1,
                size2,
                root1,
                root2,
                [want.clone(), vec![root1]].concat(),
            ),
            (
                size1,
                size2,
                root1,
                root2,
                [want.clone(), vec![root2]].concat(),
            ),
            (
                size1,
                size2,
                root1,
                root2,
                [vec![root1], want.clone()].concat(),
            ),
            (
                size1,
                size2,
                root1,
                root2,
                [vec![want[0]], want.clone()].concat(),
            ),
            (size1, size2, root1, root2, want[..want.len() - 1].to_vec()),
        ];
        for (i, (s1, s2, r1, r2, p)) in bad.into_iter().enumerate() {
            assert!(
                verify_consistency(s1, s2, &r1, &r2, &p).is_err(),
                "probe {i} of {size1} -> {size2} verified"
            );
        }
        for i in 0..want.len() {
            let mut flipped = want.clone();
            flipped[i][0] ^= 16;
            assert!(verify_consistency(size1, size2, &root1, &root2, &flipped).is_err());
        }
    }
}

#[test]
fn consistency_edge_cases_follow_rfc_9162() {
    let a = h(ROOTS[0]);
    let b = h(ROOTS[1]);
    let e = h(EMPTY_ROOT);
    // Always consistent: 0 -> anything, n -> n with equal roots, with empty proofs.
    verify_consistency(0, 0, &a, &a, &[]).unwrap();
    verify_consistency(0, 1, &a, &b, &[]).unwrap();
    verify_consistency(1, 1, &b, &b, &[]).unwrap();
    // Equal sizes with different roots; going backwards; an empty proof for 1 -> 2;
    // non-empty proofs where none is due.
    assert!(verify_consistency(1, 1, &a, &b, &[]).is_err());
    assert!(verify_consistency(2, 1, &a, &b, &[]).is_err());
    assert!(verify_consistency(1, 2, &a, &b, &[]).is_err());
    assert!(verify_consistency(0, 1, &e, &e, &[e]).is_err());
    assert!(verify_consistency(1, 1, &e, &e, &[e]).is_err());
    let tree = reference_tree();
    assert!(tree.consistency_proof(0, 8).unwrap().is_empty());
    assert!(tree.consistency_proof(3, 2).is_err());
    assert!(tree.consistency_proof(3, 9).is_err());
}
