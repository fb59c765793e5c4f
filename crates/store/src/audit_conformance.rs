//! The conformance suite of [`AuditStore`]. Call [`run_all`] from an implementation's tests.
//! An `unwrap()` here asserts that the call succeeds.

use crate::audit::*;
use crate::{Error, Store};

/// One check.
pub type Check = fn(&dyn Store);

/// Runs every check, each on a fresh store from `make`.
pub fn run_all(make: &dyn Fn() -> Box<dyn Store>) {
    let checks: &[(&str, Check)] = &[
        ("append_numbers_from_zero", append_numbers_from_zero),
        ("pages_and_leaf_hashes", pages_and_leaf_hashes),
        ("tree_heads_newest_first", tree_heads_newest_first),
    ];
    for (name, check) in checks {
        let store = make();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&*store)));
        if let Err(e) = outcome {
            eprintln!("audit conformance check {name} failed");
            std::panic::resume_unwind(e);
        }
    }
}

fn entry(i: u64) -> NewAuditEntry {
    NewAuditEntry {
        at: 1_000 + i as i64,
        actor: format!("key:{i:016x}"),
        action: "vault_read".into(),
        object: format!("obj-{i}"),
        // Text the PostgreSQL store must escape, and non-ASCII.
        detail: format!("detail {i} \u{0} é"),
    }
}

/// A stand-in leaf hash that depends on the sequence number and the content, so a store
/// that passed the wrong number to `leaf` is caught.
fn fake_leaf(seq: u64, e: &NewAuditEntry) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in e.object.bytes().enumerate().take(24) {
        h[8 + i] = b;
    }
    h
}

/// Numbers run from 0 without gaps across appends, and come back as stored.
pub fn append_numbers_from_zero(store: &dyn Store) {
    assert_eq!(store.audit_size().unwrap(), 0);
    assert!(store.audit_append(&[], &fake_leaf).unwrap().is_empty());
    let first = store
        .audit_append(&[entry(0), entry(1)], &fake_leaf)
        .unwrap();
    assert_eq!(first.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![0, 1]);
    let second = store.audit_append(&[entry(2)], &fake_leaf).unwrap();
    assert_eq!(second[0].seq, 2);
    assert_eq!(second[0].leaf_hash, fake_leaf(2, &entry(2)));
    assert_eq!(store.audit_size().unwrap(), 3);
    let all = store.audit_entries(0, 10).unwrap();
    assert_eq!(all.len(), 3);
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.seq, i as u64);
        assert_eq!(r.entry, entry(i as u64));
        assert_eq!(r.leaf_hash, fake_leaf(i as u64, &entry(i as u64)));
    }
}

/// Entries and leaf hashes page by sequence number.
pub fn pages_and_leaf_hashes(store: &dyn Store) {
    let entries: Vec<NewAuditEntry> = (0..25).map(entry).collect();
    store.audit_append(&entries, &fake_leaf).unwrap();
    let page = store.audit_entries(10, 5).unwrap();
    assert_eq!(
        page.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![10, 11, 12, 13, 14]
    );
    let hashes = store.audit_leaf_hashes(20, 100).unwrap();
    assert_eq!(hashes.len(), 5);
    assert_eq!(hashes[0], fake_leaf(20, &entry(20)));
    assert!(store.audit_entries(25, 10).unwrap().is_empty());
}

/// Tree heads come back newest first; one larger than the log is refused.
pub fn tree_heads_newest_first(store: &dyn Store) {
    store
        .audit_append(&[entry(0), entry(1), entry(2)], &fake_leaf)
        .unwrap();
    let head = |size: u64, ts: i64| StoredTreeHead {
        size,
        root: [size as u8; 32],
        timestamp: ts,
        signature: vec![7; 64],
    };
    assert!(store.tree_heads(10).unwrap().is_empty());
    store.put_tree_head(&head(1, 10)).unwrap();
    store.put_tree_head(&head(3, 20)).unwrap();
    store.put_tree_head(&head(3, 30)).unwrap();
    let r = store.put_tree_head(&head(4, 40));
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
    let heads = store.tree_heads(10).unwrap();
    assert_eq!(heads, vec![head(3, 30), head(3, 20), head(1, 10)]);
    assert_eq!(store.tree_heads(1).unwrap(), vec![head(3, 30)]);
}
