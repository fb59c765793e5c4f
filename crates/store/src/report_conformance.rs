//! The conformance suite of [`ReportStore`]. Call [`run_all`] from an implementation's tests.
//! An `unwrap()` here asserts that the call succeeds.

use crate::report::*;
use crate::{Error, Store};

/// One check.
pub type Check = fn(&dyn Store);

/// Runs every check, each on a fresh store from `make`.
pub fn run_all(make: &dyn Fn() -> Box<dyn Store>) {
    let checks: &[(&str, Check)] = &[
        ("filings_upsert_and_keep", filings_upsert_and_keep),
        ("unfinished_and_by_case", unfinished_and_by_case),
        ("secrets_replace", secrets_replace),
        ("filing_leases", filing_leases),
        ("create_filing_once", create_filing_once),
        ("named_leases", named_leases),
    ];
    for (name, check) in checks {
        let store = make();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&*store)));
        if let Err(e) = outcome {
            eprintln!("report conformance check {name} failed");
            std::panic::resume_unwind(e);
        }
    }
}

fn record<'a>(id: &'a str, case_id: i64, phase: &'a str, at: i64) -> FilingRecord<'a> {
    FilingRecord {
        id,
        case_id,
        destination: "ncmec",
        // Text the PostgreSQL store must escape, and non-ASCII.
        state: "{\"phase\":\"x\",\"note\":\"\u{0} é\"}",
        phase,
        report_id: None,
        at,
    }
}

/// A put creates, a second put replaces state and phase but keeps the creation time, the
/// error and the transcript; an id of another case is refused.
pub fn filings_upsert_and_keep(store: &dyn Store) {
    assert_eq!(store.filing("ncmec-case-1-1").unwrap(), None);
    store
        .put_filing_state(&record("ncmec-case-1-1", 1, "prepared", 10))
        .unwrap();
    let f = store.filing("ncmec-case-1-1").unwrap().unwrap();
    assert_eq!(
        (f.case_id, f.destination.as_str(), f.phase.as_str()),
        (1, "ncmec", "prepared")
    );
    assert_eq!(f.state, "{\"phase\":\"x\",\"note\":\"\u{0} é\"}");
    assert_eq!((f.created_at, f.updated_at), (10, 10));
    assert_eq!(
        (&f.report_id, &f.last_error, &f.transcript),
        (&None, &None, &None)
    );
    assert!(!f.is_final());

    store
        .set_filing_error("ncmec-case-1-1", Some("ncmec_refused: 4100"), 11)
        .unwrap();
    let mut next = record("ncmec-case-1-1", 1, "finished", 20);
    next.state = "{}";
    next.report_id = Some("4564654");
    store.put_filing_state(&next).unwrap();
    store
        .set_filing_transcript("ncmec-case-1-1", "{\"object_id\":\"t\"}", 21)
        .unwrap();
    let f = store.filing("ncmec-case-1-1").unwrap().unwrap();
    assert_eq!(f.state, "{}");
    assert_eq!(f.phase, "finished");
    assert_eq!(f.report_id.as_deref(), Some("4564654"));
    assert_eq!(f.last_error.as_deref(), Some("ncmec_refused: 4100"));
    assert_eq!(f.transcript.as_deref(), Some("{\"object_id\":\"t\"}"));
    assert_eq!((f.created_at, f.updated_at), (10, 21));
    assert!(f.is_final());
    store.set_filing_error("ncmec-case-1-1", None, 22).unwrap();
    assert_eq!(
        store.filing("ncmec-case-1-1").unwrap().unwrap().last_error,
        None
    );

    let r = store.put_filing_state(&record("ncmec-case-1-1", 2, "prepared", 30));
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
    for r in [
        store.set_filing_error("nope", Some("x"), 1),
        store.set_filing_transcript("nope", "x", 1),
    ] {
        assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
    }
}

/// Unfinished filings are those not finished or retracted, and finished ones without a
/// transcript; a case's filings come oldest first.
pub fn unfinished_and_by_case(store: &dyn Store) {
    store
        .put_filing_state(&record("f-a", 7, "submitted", 1))
        .unwrap();
    store
        .put_filing_state(&record("f-b", 7, "finished", 2))
        .unwrap();
    store
        .put_filing_state(&record("f-c", 8, "prepared", 3))
        .unwrap();
    store
        .put_filing_state(&record("f-d", 8, "retracted", 4))
        .unwrap();
    store
        .put_filing_state(&record("f-e", 9, "retracting", 5))
        .unwrap();
    let ids = |v: Vec<ReportFiling>| v.into_iter().map(|f| f.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.unfinished_filings().unwrap()),
        vec!["f-a", "f-b", "f-c", "f-e"]
    );
    store.set_filing_transcript("f-b", "{}", 6).unwrap();
    assert_eq!(
        ids(store.unfinished_filings().unwrap()),
        vec!["f-a", "f-c", "f-e"]
    );
    assert_eq!(ids(store.case_filings(7).unwrap()), vec!["f-a", "f-b"]);
    assert_eq!(ids(store.case_filings(8).unwrap()), vec!["f-c", "f-d"]);
    assert!(store.case_filings(1).unwrap().is_empty());
}

/// A secret comes back as stored and a second put replaces it.
pub fn secrets_replace(store: &dyn Store) {
    assert_eq!(store.secret("ncmec").unwrap(), None);
    store.put_secret("ncmec", &[0, 1, 2, 255], 1).unwrap();
    assert_eq!(store.secret("ncmec").unwrap(), Some(vec![0, 1, 2, 255]));
    store.put_secret("ncmec", &[9; 40], 2).unwrap();
    assert_eq!(store.secret("ncmec").unwrap(), Some(vec![9; 40]));
    assert_eq!(store.secret("other").unwrap(), None);
}

/// One owner at a time: a lease is granted when none is held, renewed by its owner, refused to
/// another owner until it runs out, and given up only by its owner.
pub fn filing_leases(store: &dyn Store) {
    assert!(!store.lease_filing("unknown", "a", 100, 0).unwrap());
    store
        .put_filing_state(&record("ncmec-case-5-1", 5, "prepared", 10))
        .unwrap();
    let id = "ncmec-case-5-1";
    assert!(store.lease_filing(id, "a", 100, 10).unwrap());
    assert!(!store.lease_filing(id, "b", 200, 50).unwrap(), "held by a");
    assert!(
        store.lease_filing(id, "a", 300, 60).unwrap(),
        "renewed by a"
    );
    assert!(!store.lease_filing(id, "b", 400, 299).unwrap(), "still a's");
    // Another owner's release changes nothing.
    store.release_filing(id, "b").unwrap();
    assert!(!store.lease_filing(id, "b", 400, 299).unwrap());
    // Run out: b takes it over, and a can no longer renew.
    assert!(store.lease_filing(id, "b", 600, 300).unwrap());
    assert!(!store.lease_filing(id, "a", 700, 310).unwrap());
    // Given up by its owner: anyone may take it at once.
    store.release_filing(id, "b").unwrap();
    assert!(store.lease_filing(id, "a", 800, 320).unwrap());
    // The filing itself is untouched by leases.
    let f = store.filing(id).unwrap().unwrap();
    assert_eq!((f.phase.as_str(), f.updated_at), ("prepared", 10));
}

/// A named lease follows the rules of a filing's: granted when none is held, renewed by its
/// owner, refused to another owner until it runs out, given up only by its owner; names are
/// independent of each other.
pub fn named_leases(store: &dyn Store) {
    let name = "nca-send:7";
    assert!(store.take_lease(name, "a", 100, 10).unwrap(), "none held");
    assert!(!store.take_lease(name, "b", 200, 50).unwrap(), "held by a");
    assert!(
        store.take_lease("nca-send:8", "b", 200, 50).unwrap(),
        "another name is free"
    );
    assert!(
        store.take_lease(name, "a", 300, 60).unwrap(),
        "renewed by a"
    );
    assert!(!store.take_lease(name, "b", 400, 299).unwrap(), "still a's");
    store.give_up_lease(name, "b").unwrap();
    assert!(
        !store.take_lease(name, "b", 400, 299).unwrap(),
        "another owner's give-up changes nothing"
    );
    // Run out: b takes it over, and a can no longer renew.
    assert!(store.take_lease(name, "b", 600, 300).unwrap());
    assert!(!store.take_lease(name, "a", 700, 310).unwrap());
    // Given up by its owner: anyone may take it at once.
    store.give_up_lease(name, "b").unwrap();
    assert!(store.take_lease(name, "a", 800, 320).unwrap());
    assert!(
        !store.take_lease("nca-send:8", "a", 900, 199).unwrap(),
        "b's other lease"
    );
    // Giving up a lease nobody took is not an error.
    store.give_up_lease("never-taken", "a").unwrap();

    // Renewal: only while the owner still holds it, run out or not.
    let name = "nca-send:9";
    assert!(
        !store.extend_lease(name, "a", 100).unwrap(),
        "nobody took it"
    );
    assert!(store.take_lease(name, "a", 100, 10).unwrap());
    assert!(store.extend_lease(name, "a", 200).unwrap());
    assert!(
        !store.take_lease(name, "b", 300, 150).unwrap(),
        "renewed to 200"
    );
    assert!(
        store.extend_lease(name, "a", 400).unwrap(),
        "run out with nobody taking it: still a's"
    );
    // Taken over by b, who then lets it run out: a's renewal is refused although a take
    // would be granted.
    assert!(store.take_lease(name, "b", 500, 400).unwrap());
    assert!(!store.extend_lease(name, "a", 900).unwrap());
    assert!(store.take_lease(name, "a", 900, 600).unwrap());
    // Given up by its owner: the owner cannot renew it either.
    store.give_up_lease(name, "a").unwrap();
    assert!(!store.extend_lease(name, "a", 1_000).unwrap());
}

/// Processes racing for one free lease (`stores`: several stores on one database, standing
/// for processes; all released at once): exactly one gets it, whatever the interleaving;
/// 20 rounds. Not part of [`run_all`], which makes one store per check.
pub fn one_owner_of_many_takes_a_lease(stores: &[&dyn Store]) {
    use std::sync::{Arc, Barrier};
    for round in 0..20 {
        let name = format!("nca-send:{round}");
        let barrier = Arc::new(Barrier::new(stores.len()));
        let winners: usize = std::thread::scope(|s| {
            let handles: Vec<_> = stores
                .iter()
                .enumerate()
                .map(|(i, store)| {
                    let (name, barrier) = (name.clone(), barrier.clone());
                    s.spawn(move || {
                        barrier.wait();
                        store
                            .take_lease(&name, &format!("p{i}"), 1_000, 10)
                            .unwrap()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().unwrap()))
                .sum()
        });
        assert_eq!(winners, 1, "round {round}");
    }
}

/// Creating a filing that exists changes nothing, whatever its state.
pub fn create_filing_once(store: &dyn Store) {
    assert!(store
        .create_filing(&record("ncmec-case-6-1", 6, "prepared", 10))
        .unwrap());
    store
        .put_filing_state(&FilingRecord {
            report_id: Some("100001"),
            ..record("ncmec-case-6-1", 6, "submitted", 20)
        })
        .unwrap();
    assert!(!store
        .create_filing(&record("ncmec-case-6-1", 6, "prepared", 30))
        .unwrap());
    let f = store.filing("ncmec-case-6-1").unwrap().unwrap();
    assert_eq!(
        (
            f.phase.as_str(),
            f.report_id.as_deref(),
            f.created_at,
            f.updated_at
        ),
        ("submitted", Some("100001"), 10, 20)
    );
    assert_eq!(store.case_filings(6).unwrap().len(), 1);
}
