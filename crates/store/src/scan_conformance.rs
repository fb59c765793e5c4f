//! Conformance of [`ScanStore`]: every backend runs [`run_all`] from its tests.

use std::collections::BTreeSet;

use crate::scan::*;
use crate::{Error, Store};

/// Runs every check, each on a fresh store from `make`.
pub fn run_all(make: &dyn Fn() -> Box<dyn Store>) {
    a_scan_runs_to_done_in_listing_order(&*make());
    a_lapsed_lease_passes_the_job_on_and_results_count_once(&*make());
    a_released_job_is_claimable_at_once_and_its_attempt_taken_back(&*make());
    pause_resume_and_cancel(&*make());
    listing_again_plans_nothing_twice(&*make());
    results_must_cover_the_job_exactly(&*make());
    concurrent_claims_get_different_jobs(&*make());
    odd_keys_round_trip(&*make());
}

/// A lease no test outlives.
const LONG: i64 = 600_000;
/// A lease a test waits out: long enough that the three calls before the wait finish inside
/// it on a loaded machine.
const SHORT: i64 = 1_000;

fn new_scan(store: &dyn Store) -> Scan {
    store
        .create_scan(&NewScan {
            source: "dir:/srv/media".into(),
            target: r#"{"all":true}"#.into(),
            created_by: "tester".into(),
            created_at: 1_000,
            job_size: 3,
        })
        .unwrap()
}

fn keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}/{i:03}.jpg")).collect()
}

fn hashed(key: &str) -> ItemResult {
    ItemResult {
        key: key.into(),
        error: None,
        pdq: Some("f".repeat(64)),
        quality: Some(100),
        md5: Some("0".repeat(32)),
        sha256: Some("1".repeat(64)),
        size: Some(1234),
        matched: false,
        verdict: None,
        submission: None,
    }
}

fn results_for(job: &ScanJob) -> Vec<ItemResult> {
    job.items.iter().map(|k| hashed(k)).collect()
}

fn job(c: Claim) -> ScanJob {
    match c {
        Claim::Job(j) => j,
        other => panic!("expected a job, got {other:?}"),
    }
}

pub fn a_scan_runs_to_done_in_listing_order(store: &dyn Store) {
    let s = new_scan(store);
    assert_eq!((s.state.as_str(), s.job_size), (state::RUNNING, 3));
    for bad in [0, MAX_JOB_ITEMS as i64 + 1] {
        let refused = store.create_scan(&NewScan {
            source: "dir:/x".into(),
            target: "{}".into(),
            created_by: "t".into(),
            created_at: 1,
            job_size: bad,
        });
        assert!(matches!(refused, Err(Error::Conflict(_))), "job size {bad}");
    }
    assert!(!s.listed && s.jobs == 0 && s.items == 0 && s.finished_at.is_none());
    assert_eq!(store.scan(s.id).unwrap().as_ref(), Some(&s));
    // Nothing planned yet: wait, not ended (more may be listed).
    assert_eq!(store.claim_scan_job(s.id, "w1", LONG).unwrap(), Claim::Wait);
    store
        .add_scan_jobs(s.id, 0, &[keys("a", 3), keys("b", 2)])
        .unwrap();
    let after = store.scan(s.id).unwrap().unwrap();
    assert_eq!((after.jobs, after.items), (2, 5));
    let j0 = job(store.claim_scan_job(s.id, "w1", LONG).unwrap());
    assert_eq!((j0.ordinal, j0.attempts), (0, 1));
    assert!(
        j0.lease_until > 1_700_000_000_000,
        "the store's clock: {}",
        j0.lease_until
    );
    assert_eq!(j0.items, keys("a", 3));
    let j1 = job(store.claim_scan_job(s.id, "w2", LONG).unwrap());
    assert_eq!(j1.ordinal, 1);
    assert_eq!(
        store.claim_scan_job(s.id, "w3", LONG).unwrap(),
        Claim::Wait,
        "both jobs are leased"
    );
    let mut r = results_for(&j0);
    r[1].error = Some("not an image".into());
    r[1].pdq = None;
    r[2].matched = true;
    r[2].verdict = Some("block".into());
    r[2].submission = Some("scan:1:a/002.jpg".into());
    let mid = store.finish_scan_job(j0.id, "w1", &r, 1_500).unwrap();
    assert_eq!(
        (
            mid.jobs_done,
            mid.items_done,
            mid.items_failed,
            mid.items_matched
        ),
        (1, 3, 1, 1)
    );
    assert_eq!(mid.state, state::RUNNING);
    store
        .finish_scan_job(j1.id, "w2", &results_for(&j1), 1_600)
        .unwrap();
    // Every planned job is done, but the listing is not finished: still running.
    let s2 = store.scan(s.id).unwrap().unwrap();
    assert_eq!((s2.state.as_str(), s2.jobs_done), (state::RUNNING, 2));
    assert_eq!(store.claim_scan_job(s.id, "w1", LONG).unwrap(), Claim::Wait);
    let fin = store.finish_listing(s.id, 1_800).unwrap();
    assert!(fin.listed);
    assert_eq!(fin.state, state::DONE);
    assert_eq!(fin.finished_at, Some(1_800));
    assert!(fin.is_final());
    match store.claim_scan_job(s.id, "w1", LONG).unwrap() {
        Claim::Ended(e) => assert_eq!(e, fin),
        other => panic!("a done scan hands out nothing, got {other:?}"),
    }
    // Results by key, paged.
    let all = store.scan_results(s.id, None, 100).unwrap();
    let got: Vec<&str> = all.iter().map(|x| x.result.key.as_str()).collect();
    let mut want: Vec<String> = keys("a", 3).into_iter().chain(keys("b", 2)).collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(all[1].result, r[1]);
    assert_eq!(all[2].result, r[2]);
    assert_eq!((all[0].worker.as_str(), all[0].recorded_at), ("w1", 1_500));
    let page = store.scan_results(s.id, Some("a/001.jpg"), 2).unwrap();
    let got: Vec<&str> = page.iter().map(|x| x.result.key.as_str()).collect();
    assert_eq!(got, ["a/002.jpg", "b/000.jpg"]);
    // A scan listed with no items at all is done at once.
    let empty = new_scan(store);
    assert_eq!(
        store.finish_listing(empty.id, 5).unwrap().state,
        state::DONE
    );
    assert_eq!(store.scans(10).unwrap()[0].id, empty.id, "newest first");
    assert_eq!(store.scans(1).unwrap().len(), 1);
    assert!(matches!(
        store.claim_scan_job(999_999, "w", LONG),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.scan_results(999_999, None, 1),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.finish_listing(999_999, 1),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.finish_scan_job(999_999, "w", &[], 1),
        Err(Error::NotFound(_))
    ));
    assert_eq!(store.scan(999_999).unwrap(), None);
}

pub fn a_lapsed_lease_passes_the_job_on_and_results_count_once(store: &dyn Store) {
    let s = new_scan(store);
    store.add_scan_jobs(s.id, 0, &[keys("x", 4)]).unwrap();
    store.finish_listing(s.id, 1).unwrap();
    // Leases are timed by the store's clock: a short one, then real waiting.
    let a = job(store.claim_scan_job(s.id, "a", SHORT).unwrap());
    assert!(store.renew_scan_job(a.id, "a", SHORT).unwrap());
    assert!(!store.renew_scan_job(a.id, "b", LONG).unwrap(), "not b's");
    // Before the lease runs out nobody else gets it; after, b does, as a second attempt.
    assert_eq!(store.claim_scan_job(s.id, "b", LONG).unwrap(), Claim::Wait);
    std::thread::sleep(std::time::Duration::from_millis(SHORT as u64 + 200));
    let b = job(store.claim_scan_job(s.id, "b", LONG).unwrap());
    assert_eq!((b.id, b.attempts), (a.id, 2));
    assert!(!store.renew_scan_job(a.id, "a", LONG).unwrap(), "a lost it");
    let mut br = results_for(&b);
    br[0].matched = true;
    let done = store.finish_scan_job(b.id, "b", &br, 1_050).unwrap();
    assert_eq!((done.items_done, done.items_matched), (4, 1));
    assert_eq!(done.state, state::DONE);
    // a was slow, not dead: its late finish records nothing new and counts nothing.
    let mut ar = results_for(&a);
    ar[1].error = Some("late".into());
    let late = store.finish_scan_job(a.id, "a", &ar, 1_060).unwrap();
    assert_eq!(late, done, "nothing changed");
    let rs = store.scan_results(s.id, None, 10).unwrap();
    assert_eq!(rs.len(), 4);
    assert!(rs
        .iter()
        .all(|r| r.worker == "b" && r.result.error.is_none()));
    assert!(!store.renew_scan_job(a.id, "b", LONG).unwrap(), "done");
    assert!(!store.release_scan_job(a.id, "b").unwrap(), "done");
}

pub fn a_released_job_is_claimable_at_once_and_its_attempt_taken_back(store: &dyn Store) {
    let s = new_scan(store);
    store.add_scan_jobs(s.id, 0, &[keys("r", 2)]).unwrap();
    let a = job(store.claim_scan_job(s.id, "a", LONG).unwrap());
    assert_eq!(a.attempts, 1);
    assert!(!store.release_scan_job(a.id, "b").unwrap(), "not b's");
    assert_eq!(store.claim_scan_job(s.id, "b", LONG).unwrap(), Claim::Wait);
    assert!(store.release_scan_job(a.id, "a").unwrap());
    assert!(!store.release_scan_job(a.id, "a").unwrap(), "no longer a's");
    let b = job(store.claim_scan_job(s.id, "b", LONG).unwrap());
    assert_eq!(
        (b.id, b.attempts),
        (a.id, 1),
        "the failed claim is not counted"
    );
    assert!(!store.renew_scan_job(a.id, "a", LONG).unwrap());
    assert!(matches!(store.release_scan_job(999_999, "a"), Ok(false)));
    // A lease too long to add to the clock ends at the end of time, on every backend.
    assert!(store.renew_scan_job(b.id, "b", i64::MAX).unwrap());
    assert!(store.release_scan_job(b.id, "b").unwrap());
    let c = job(store.claim_scan_job(s.id, "c", i64::MAX).unwrap());
    assert_eq!((c.id, c.lease_until), (a.id, i64::MAX));
}

pub fn pause_resume_and_cancel(store: &dyn Store) {
    let s = new_scan(store);
    store
        .add_scan_jobs(s.id, 0, &[keys("p", 1), keys("q", 1), keys("r", 1)])
        .unwrap();
    let p = store.set_scan_state(s.id, state::PAUSED, 10).unwrap();
    assert_eq!((p.state.as_str(), p.updated_at), (state::PAUSED, 10));
    assert_eq!(store.claim_scan_job(s.id, "w", LONG).unwrap(), Claim::Wait);
    store.set_scan_state(s.id, state::PAUSED, 12).unwrap();
    store.set_scan_state(s.id, state::RUNNING, 13).unwrap();
    let j = job(store.claim_scan_job(s.id, "w", LONG).unwrap());
    // A job leased before a cancel can still be finished; nothing more is handed out.
    let c = store.set_scan_state(s.id, state::CANCELLED, 15).unwrap();
    assert_eq!(
        (c.state.as_str(), c.finished_at),
        (state::CANCELLED, Some(15))
    );
    assert!(matches!(
        store.claim_scan_job(s.id, "w", LONG).unwrap(),
        Claim::Ended(_)
    ));
    let after = store
        .finish_scan_job(j.id, "w", &results_for(&j), 17)
        .unwrap();
    assert_eq!(
        (after.state.as_str(), after.items_done),
        (state::CANCELLED, 1)
    );
    for to in [state::RUNNING, state::PAUSED, state::CANCELLED] {
        assert!(
            matches!(store.set_scan_state(s.id, to, 18), Err(Error::Conflict(_))),
            "cancelled is final ({to})"
        );
    }
    assert!(
        matches!(
            store.add_scan_jobs(s.id, 3, &[keys("s", 1)]),
            Err(Error::Conflict(_))
        ),
        "nothing planned for a cancelled scan"
    );
    let other = new_scan(store);
    for bad in [state::DONE, "bogus"] {
        assert!(matches!(
            store.set_scan_state(other.id, bad, 1),
            Err(Error::Conflict(_))
        ));
    }
    store.finish_listing(other.id, 2).unwrap();
    assert!(matches!(
        store.set_scan_state(other.id, state::PAUSED, 3),
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store.set_scan_state(999_999, state::PAUSED, 3),
        Err(Error::NotFound(_))
    ));
}

pub fn listing_again_plans_nothing_twice(store: &dyn Store) {
    let s = new_scan(store);
    let jobs: Vec<Vec<String>> = (0..5).map(|i| keys(&format!("d{i}"), 2)).collect();
    store.add_scan_jobs(s.id, 0, &jobs[..3]).unwrap();
    // The lister was cut off and starts again from the beginning.
    store.add_scan_jobs(s.id, 0, &jobs).unwrap();
    let after = store.scan(s.id).unwrap().unwrap();
    assert_eq!((after.jobs, after.items), (5, 10));
    // The source changed under a relisting: refused, nothing planned.
    let mut changed = jobs.clone();
    changed[1] = keys("moved", 2);
    assert!(matches!(
        store.add_scan_jobs(s.id, 0, &changed),
        Err(Error::Conflict(m)) if m.contains("job 1")
    ));
    assert_eq!(store.scan(s.id).unwrap().unwrap().jobs, 5);
    store.finish_listing(s.id, 1).unwrap();
    assert!(matches!(
        store.add_scan_jobs(s.id, 5, &[keys("late", 1)]),
        Err(Error::Conflict(_))
    ));
    for bad in [
        vec![],
        vec![String::new()],
        vec!["k".to_string(), "k".to_string()],
        vec!["k".repeat(MAX_ITEM_KEY_BYTES + 1)],
        vec!["k".to_string(); MAX_JOB_ITEMS + 1],
    ] {
        let fresh = new_scan(store);
        assert!(matches!(
            store.add_scan_jobs(fresh.id, 0, &[keys("ok", 1), bad]),
            Err(Error::Conflict(_))
        ));
        let f = store.scan(fresh.id).unwrap().unwrap();
        assert_eq!((f.jobs, f.items), (0, 0), "a refused batch plans nothing");
    }
    assert!(matches!(
        store.add_scan_jobs(999_999, 0, &[keys("a", 1)]),
        Err(Error::NotFound(_))
    ));
}

pub fn results_must_cover_the_job_exactly(store: &dyn Store) {
    let s = new_scan(store);
    store.add_scan_jobs(s.id, 0, &[keys("c", 3)]).unwrap();
    let j = job(store.claim_scan_job(s.id, "w", LONG).unwrap());
    let full = results_for(&j);
    let mut dup = full.clone();
    dup[2] = hashed(&full[0].key);
    let mut stranger = full.clone();
    stranger[2] = hashed("elsewhere.jpg");
    for bad in [&full[..2], &dup[..], &stranger[..]] {
        assert!(matches!(
            store.finish_scan_job(j.id, "w", bad, 2),
            Err(Error::Conflict(_))
        ));
    }
    let s2 = store.scan(s.id).unwrap().unwrap();
    assert_eq!((s2.items_done, s2.jobs_done), (0, 0), "nothing recorded");
    assert!(store.scan_results(s.id, None, 10).unwrap().is_empty());
    store.finish_scan_job(j.id, "w", &full, 3).unwrap();
    assert_eq!(store.scan_results(s.id, None, 10).unwrap().len(), 3);
}

pub fn concurrent_claims_get_different_jobs(store: &dyn Store) {
    let s = new_scan(store);
    let jobs: Vec<Vec<String>> = (0..40).map(|i| keys(&format!("j{i:02}"), 3)).collect();
    store.add_scan_jobs(s.id, 0, &jobs).unwrap();
    store.finish_listing(s.id, 1).unwrap();
    // Four workers drain the scan at once, each finishing what it claims.
    let claimed: Vec<Vec<i64>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..4)
            .map(|w| {
                sc.spawn(move || {
                    let owner = format!("w{w}");
                    let mut mine = Vec::new();
                    loop {
                        match store.claim_scan_job(s.id, &owner, LONG).unwrap() {
                            Claim::Job(j) => {
                                mine.push(j.ordinal);
                                store
                                    .finish_scan_job(j.id, &owner, &results_for(&j), 3)
                                    .unwrap();
                            }
                            Claim::Wait => std::thread::yield_now(),
                            Claim::Ended(_) => return mine,
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<i64> = claimed.iter().flatten().copied().collect();
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 40, "each job claimed once: {claimed:?}");
    assert_eq!(distinct, (0..40).collect());
    let done = store.scan(s.id).unwrap().unwrap();
    assert_eq!(
        (done.state.as_str(), done.jobs_done, done.items_done),
        (state::DONE, 40, 120)
    );
}

/// `n` letters and digits from a xorshift generator: no repeats for a compressor to use, so the
/// key takes its full length in an index entry.
fn incompressible(n: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[(x % 36) as usize])
        })
        .collect()
}

pub fn odd_keys_round_trip(store: &dyn Store) {
    let s = new_scan(store);
    let odd = vec![
        "with\0nul".to_string(),
        "with\u{1}escape".into(),
        "line\nbreak".into(),
        "ünïcødé/名前.png".into(),
        "'; DROP TABLE scans; --".into(),
        // The longest keys: one that does not compress, and one that escapes to twice its
        // length on PostgreSQL; each must be recorded, not only planned.
        incompressible(MAX_ITEM_KEY_BYTES),
        "\u{1}".repeat(MAX_ITEM_KEY_BYTES),
    ];
    store
        .add_scan_jobs(s.id, 0, std::slice::from_ref(&odd))
        .unwrap();
    let j = job(store.claim_scan_job(s.id, "w\0x", LONG).unwrap());
    assert_eq!(j.items, odd);
    let mut r = results_for(&j);
    r[0].error = Some("bad\0file".into());
    store.finish_scan_job(j.id, "w\0x", &r, 2).unwrap();
    let got = store.scan_results(s.id, None, 10).unwrap();
    let mut want = odd.clone();
    want.sort();
    let keys: Vec<String> = got.iter().map(|x| x.result.key.clone()).collect();
    assert_eq!(keys, want, "byte order on both backends");
    let nul = got.iter().find(|x| x.result.key == "with\0nul").unwrap();
    assert_eq!(nul.result.error.as_deref(), Some("bad\0file"));
    assert_eq!(nul.worker, "w\0x");
}
