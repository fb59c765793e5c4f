//! Conformance of [`AccountStore`]: every backend runs [`run_all`] from its tests.

use crate::account::*;
use crate::{Error, Store};

/// Runs every check, each on a fresh store from `make`.
pub fn run_all(make: &dyn Fn() -> Box<dyn Store>) {
    accounts_put_get_replace(&*make());
    relationships_are_symmetric_and_none_removes(&*make());
    delete_account_erases_its_relationships(&*make());
    odd_ids_round_trip(&*make());
    relationship_batches_are_atomic_and_ordered(&*make());
    events_never_lift_a_block(&*make());
}

/// Edges from events (an accept's `connected`) never replace a stored `blocked`, in a later
/// batch or later in the same one; they change anything else, and a block from an event
/// stands. The platform's own write lifts a block.
pub fn events_never_lift_a_block(store: &dyn Store) {
    let e = |x: &str, y: &str, r: &str| (x.to_string(), y.to_string(), r.to_string());
    let rel = |x: &str, y: &str| store.relationship(x, y).unwrap().map(|r| r.relationship);
    store
        .put_relationships_from_events(&[
            e("kid", "coach", "blocked"),
            e("coach", "kid", "connected"),
        ])
        .unwrap();
    assert_eq!(rel("kid", "coach").as_deref(), Some("blocked"));
    store
        .put_relationships_from_events(&[e("coach", "kid", "connected")])
        .unwrap();
    assert_eq!(
        rel("kid", "coach").as_deref(),
        Some("blocked"),
        "a late accept"
    );
    store
        .put_relationships_from_events(&[e("coach", "kid", "none")])
        .unwrap();
    assert_eq!(rel("kid", "coach").as_deref(), Some("blocked"));
    store
        .put_relationships_from_events(&[e("a", "b", "connected"), e("b", "a", "blocked")])
        .unwrap();
    assert_eq!(
        rel("a", "b").as_deref(),
        Some("blocked"),
        "a block from an event stands"
    );
    store
        .put_relationships_from_events(&[e("c", "d", "mutual"), e("c", "d", "connected")])
        .unwrap();
    assert_eq!(rel("c", "d").as_deref(), Some("connected"));
    store.put_relationship("kid", "coach", "connected").unwrap();
    assert_eq!(
        rel("kid", "coach").as_deref(),
        Some("connected"),
        "the platform lifts it"
    );
}

pub fn relationship_batches_are_atomic_and_ordered(store: &dyn Store) {
    let e = |x: &str, y: &str, r: &str| (x.to_string(), y.to_string(), r.to_string());
    store
        .put_relationships(&[
            e("p", "q", "connected"),
            e("q", "r", "mutual"),
            e("q", "p", "blocked"),
        ])
        .unwrap();
    assert_eq!(
        store.relationship("p", "q").unwrap().unwrap().relationship,
        "blocked",
        "later edges of a batch win"
    );
    assert_eq!(store.account_counts().unwrap(), (0, 2));
    match store.put_relationships(&[e("s", "t", "connected"), e("u", "u", "connected")]) {
        Err(Error::Conflict(_)) => {}
        other => panic!("a batch with a self-pair must be refused, got {other:?}"),
    }
    assert_eq!(
        store.relationship("s", "t").unwrap(),
        None,
        "nothing of it written"
    );
    store.put_relationships(&[]).unwrap();
}

fn new_account(id: &str, band: &str, method: &str, confidence: f64) -> NewAccount {
    NewAccount {
        id: id.into(),
        age_band: band.into(),
        assurance_method: method.into(),
        assurance_confidence: confidence,
    }
}

pub fn accounts_put_get_replace(store: &dyn Store) {
    assert_eq!(store.account("u1").unwrap(), None);
    let a = store
        .put_account(&new_account("u1", "13_15", "self_declared", 1.0))
        .unwrap();
    assert_eq!(a.id, "u1");
    assert!(a.updated_at > 0);
    assert_eq!(store.account("u1").unwrap().as_ref(), Some(&a));
    // Replacing keeps one row and takes every field.
    let b = store
        .put_account(&new_account("u1", "adult", "verification", 0.97))
        .unwrap();
    let got = store.account("u1").unwrap().unwrap();
    assert_eq!(got, b);
    assert_eq!(got.age_band, "adult");
    assert_eq!(got.assurance_method, "verification");
    assert!((got.assurance_confidence - 0.97).abs() < 1e-12);
    assert!(got.updated_at >= a.updated_at);
    store
        .put_account(&new_account("u2", "under_13", "none", 0.0))
        .unwrap();
    assert_eq!(store.account_counts().unwrap(), (2, 0));
    assert_eq!(store.account("U1").unwrap(), None, "ids are case-sensitive");
}

pub fn relationships_are_symmetric_and_none_removes(store: &dyn Store) {
    assert_eq!(store.relationship("x", "y").unwrap(), None);
    store.put_relationship("y", "x", "connected").unwrap();
    for (p, q) in [("x", "y"), ("y", "x")] {
        let r = store.relationship(p, q).unwrap().unwrap();
        assert_eq!((r.a.as_str(), r.b.as_str()), ("x", "y"));
        assert_eq!(r.relationship, "connected");
    }
    // The pair need not be stored accounts.
    assert_eq!(store.account_counts().unwrap(), (0, 1));
    store.put_relationship("x", "y", "blocked").unwrap();
    assert_eq!(
        store.relationship("y", "x").unwrap().unwrap().relationship,
        "blocked"
    );
    store.put_relationship("x", "z", "mutual").unwrap();
    assert_eq!(store.account_counts().unwrap(), (0, 2));
    store.put_relationship("y", "x", "none").unwrap();
    assert_eq!(store.relationship("x", "y").unwrap(), None);
    assert_eq!(
        store.relationship("z", "x").unwrap().unwrap().relationship,
        "mutual"
    );
    // Removing what is not there is not an error: `none` is a state, not a deletion.
    store.put_relationship("x", "y", "none").unwrap();
    match store.put_relationship("x", "x", "connected") {
        Err(Error::Conflict(_)) => {}
        other => panic!("a self-relationship must be refused with Conflict, got {other:?}"),
    }
}

pub fn delete_account_erases_its_relationships(store: &dyn Store) {
    match store.delete_account("ghost") {
        Err(Error::NotFound(_)) => {}
        other => panic!("deleting an unknown account must be NotFound, got {other:?}"),
    }
    store
        .put_account(&new_account("a", "adult", "estimation", 0.8))
        .unwrap();
    store
        .put_account(&new_account("b", "16_17", "estimation", 0.9))
        .unwrap();
    store.put_relationship("a", "b", "connected").unwrap();
    store.put_relationship("c", "a", "blocked").unwrap();
    store.put_relationship("b", "c", "mutual").unwrap();
    let gone = store.delete_account("a").unwrap();
    assert_eq!(gone.age_band, "adult");
    assert_eq!(store.account("a").unwrap(), None);
    assert_eq!(store.relationship("a", "b").unwrap(), None);
    assert_eq!(store.relationship("a", "c").unwrap(), None);
    assert_eq!(
        store.relationship("c", "b").unwrap().unwrap().relationship,
        "mutual",
        "other pairs are kept"
    );
    assert_eq!(store.account_counts().unwrap(), (1, 1));
}

pub fn odd_ids_round_trip(store: &dyn Store) {
    let long = "é".repeat(MAX_STORED_ACCOUNT_ID_LEN / 2);
    for id in ["user with spaces", "ユーザー", "a'b\"c;--", long.as_str()] {
        store
            .put_account(&new_account(id, "unknown", "none", 0.0))
            .unwrap();
        assert_eq!(store.account(id).unwrap().unwrap().id, id);
        store.put_relationship(id, "other", "connected").unwrap();
        assert_eq!(
            store
                .relationship("other", id)
                .unwrap()
                .unwrap()
                .relationship,
            "connected"
        );
    }
}
