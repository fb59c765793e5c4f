//! Verifying inclusion and consistency proofs without the tree.
//!
//! These follow the verification algorithms of RFC 9162 (Certificate Transparency 2.0)
//! §2.1.3.2 and §2.1.4.2 step by step, which RFC 6962 describes only by construction. They
//! need nothing but hashes and sizes, so an auditor holding a signed tree head can check a
//! proof handed to them by an untrusted log.

use crate::merkle::{node_hash, Hash};
use crate::Error;

/// The root that an inclusion proof leads to from `leaf` at `index` in a tree of `size`
/// leaves (RFC 9162 §2.1.3.2, steps 1–5 without the final comparison).
pub fn root_from_inclusion_proof(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, Error> {
    if index >= size {
        return Err(Error::InvalidProof(
            "the leaf index is not below the tree size",
        ));
    }
    let mut fnode = index;
    let mut snode = size - 1;
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(Error::InvalidProof("the inclusion proof is too long"));
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                // A right-edge node with no right sibling at these levels: climb past them.
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(Error::InvalidProof("the inclusion proof is too short"));
    }
    Ok(r)
}

/// Checks that `leaf` is at `index` in the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), Error> {
    if root_from_inclusion_proof(leaf, index, size, proof)? != *root {
        return Err(Error::InvalidProof(
            "the inclusion proof does not lead to the root",
        ));
    }
    Ok(())
}

/// Checks that the tree of `size2` leaves with root `root2` extends the tree of `size1`
/// leaves with root `root1` (RFC 9162 §2.1.4.2). Equal sizes need equal roots and an empty
/// proof; size 0 is extended by every tree and needs an empty proof.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), Error> {
    if size1 > size2 {
        return Err(Error::InvalidProof(
            "the first tree is larger than the second",
        ));
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(Error::InvalidProof("equal sizes need an empty proof"));
        }
        if root1 != root2 {
            return Err(Error::InvalidProof("equal sizes with different roots"));
        }
        return Ok(());
    }
    if size1 == 0 {
        if !proof.is_empty() {
            return Err(Error::InvalidProof("size 0 needs an empty proof"));
        }
        return Ok(());
    }
    // Step 1.
    if proof.is_empty() {
        return Err(Error::InvalidProof("the consistency proof is empty"));
    }
    // Step 2: when the first tree is a complete subtree of the second, its root is the first
    // node of the path and the proof leaves it out.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(*root1);
    }
    path.extend_from_slice(proof);
    // Step 3.
    let mut fnode = size1 - 1;
    let mut snode = size2 - 1;
    // Step 4.
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 5.
    let mut fr = path[0];
    let mut sr = path[0];
    // Step 6.
    for c in &path[1..] {
        if snode == 0 {
            return Err(Error::InvalidProof("the consistency proof is too long"));
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 7.
    if snode != 0 {
        return Err(Error::InvalidProof("the consistency proof is too short"));
    }
    if fr != *root1 {
        return Err(Error::InvalidProof(
            "the consistency proof does not lead to the first root",
        ));
    }
    if sr != *root2 {
        return Err(Error::InvalidProof(
            "the consistency proof does not lead to the second root",
        ));
    }
    Ok(())
}
