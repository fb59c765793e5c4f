//! The conformance suite of [`ConsoleStore`]. Call [`run_all`] from an implementation's tests,
//! and [`concurrent_claims_are_unique`] on a store that several threads share. An `unwrap()`
//! here asserts that the call succeeds.

use std::collections::HashSet;

use crate::action::*;
use crate::console::*;
use crate::{Error, Store};

/// One check.
pub type Check = fn(&dyn Store);

/// Runs every check, each on a fresh store from `make`.
pub fn run_all(make: &dyn Fn() -> Box<dyn Store>) {
    let checks: &[(&str, Check)] = &[
        ("users_lifecycle", users_lifecycle),
        ("login_failures_and_replay", login_failures_and_replay),
        ("sessions_lifecycle", sessions_lifecycle),
        (
            "disabled_or_reset_user_loses_sessions",
            disabled_or_reset_user_loses_sessions,
        ),
        ("claim_order_and_queues", claim_order_and_queues),
        ("claim_respects_live_leases", claim_respects_live_leases),
        ("lapsed_lease_is_reclaimed", lapsed_lease_is_reclaimed),
        ("reopen_lapsed", reopen_lapsed_returns_cases_to_their_queue),
        ("source_feedback", source_feedback_is_recorded_once_and_sent),
        ("source_feedback_long_text", source_feedback_takes_long_text),
        ("renew_release_and_drop", renew_release_and_drop),
        ("skip_is_per_holder", skip_is_per_holder),
        ("requeue_moves_and_releases", requeue_moves_and_releases),
        ("queue_stats_count_and_age", queue_stats_count_and_age),
        ("awaiting_approval", awaiting_approval),
        ("cases_of_one_account", cases_of_one_account),
        ("reveals_and_exposure", reveals_and_exposure),
        ("labels_and_settings", labels_and_settings),
        ("claim_batch", claim_batch_is_claims_in_order),
        ("concurrent_claims", concurrent_claims_are_unique),
    ];
    for (name, check) in checks {
        let store = make();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&*store)));
        if let Err(e) = outcome {
            eprintln!("console conformance check {name} failed");
            std::panic::resume_unwind(e);
        }
    }
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        name: name.into(),
        roles: "reviewer".into(),
        setup_token_hash: format!("token-{name}"),
        setup_expires_at: 5_000,
        at: 1_000,
    }
}

fn user(store: &dyn Store, name: &str) -> UserId {
    store.create_user(&new_user(name)).unwrap().id
}

/// Opens a one-item case in `queue` at `opened_at`.
fn open_case(store: &dyn Store, id: &str, queue: &str, priority: i32, opened_at: i64) -> CaseId {
    let mut s = crate::action_conformance::submission(id, None, Some((queue, priority)));
    s.created_at = opened_at;
    match store.record_submission(&s, &mut |_| vec![]).unwrap() {
        SubmitOutcome::Recorded(r) => r.case_id.expect("a case"),
        SubmitOutcome::Replayed(_) => panic!("replayed {id}"),
    }
}

fn queues(names: &[&str]) -> Vec<String> {
    names.iter().map(|q| (*q).to_owned()).collect()
}

fn event(id: &str) -> NewEvent {
    NewEvent {
        id: id.into(),
        event_type: "case.claimed".into(),
        created_at: 1,
        body: "{}".into(),
    }
}

fn none(_: &Case) -> Vec<NewEvent> {
    Vec::new()
}

const LEASE: i64 = 60_000;

fn claim(store: &dyn Store, qs: &[&str], holder: UserId, now: i64) -> Option<CaseId> {
    store
        .claim_next(&queues(qs), holder, "tester", now, LEASE, &mut none)
        .unwrap()
        .map(|(c, _)| c.id)
}

fn last_line(store: &dyn Store, id: CaseId) -> CaseHistory {
    store
        .case_history(id)
        .unwrap()
        .pop()
        .expect("a history line")
}

fn assert_conflict<T: std::fmt::Debug>(r: crate::Result<T>) {
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
}

fn assert_not_found<T: std::fmt::Debug>(r: crate::Result<T>) {
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
}

/// A user is created with its setup token, found by id, name and token, listed by name;
/// setup sets the credentials and clears the token; roles change; a taken name conflicts;
/// unknown ids are `NotFound`; printing a user shows no credential.
pub fn users_lifecycle(store: &dyn Store) {
    let bob = store.create_user(&new_user("bob")).unwrap();
    assert_eq!(bob.name, "bob");
    assert_eq!(bob.roles, "reviewer");
    assert_eq!(bob.setup_token_hash.as_deref(), Some("token-bob"));
    assert_eq!(bob.setup_expires_at, Some(5_000));
    assert_eq!(
        (bob.password_hash.clone(), bob.totp_secret.clone()),
        (None, None)
    );
    assert_eq!(
        (bob.failed_logins, bob.locked_until, bob.last_totp_step),
        (0, None, None)
    );
    assert!(!bob.disabled);
    assert_eq!((bob.created_at, bob.updated_at), (1_000, 1_000));
    let alice = store.create_user(&new_user("alice")).unwrap();
    assert_ne!(alice.id, bob.id);
    assert_conflict(store.create_user(&new_user("bob")));

    assert_eq!(store.user(bob.id).unwrap(), Some(bob.clone()));
    assert_eq!(store.user_by_name("bob").unwrap(), Some(bob.clone()));
    assert_eq!(store.user_by_name("nobody").unwrap(), None);
    assert_eq!(
        store.user_by_setup_token("token-bob").unwrap(),
        Some(bob.clone())
    );
    assert_eq!(store.user_by_setup_token("nope").unwrap(), None);
    let names: Vec<String> = store.users().unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(names, vec!["alice", "bob"]);

    let secret = vec![0u8, 1, 2, 255];
    let done = store
        .complete_setup(bob.id, "$argon2id$hash", &secret, 2_000)
        .unwrap();
    assert_eq!(done.password_hash.as_deref(), Some("$argon2id$hash"));
    assert_eq!(done.totp_secret.as_deref(), Some(&secret[..]));
    assert_eq!(
        (done.setup_token_hash.clone(), done.setup_expires_at),
        (None, None)
    );
    assert_eq!(done.updated_at, 2_000);
    assert_eq!(store.user_by_setup_token("token-bob").unwrap(), None);
    assert_eq!(store.user(bob.id).unwrap(), Some(done.clone()));

    let admin = store
        .set_user_roles(bob.id, "admin,reviewer", 3_000)
        .unwrap();
    assert_eq!(
        (admin.roles.as_str(), admin.updated_at),
        ("admin,reviewer", 3_000)
    );

    let printed = format!("{done:?}");
    assert!(
        !printed.contains("argon2id") && !printed.contains("255"),
        "{printed}"
    );

    assert_eq!(store.user(9_999).unwrap(), None);
    assert_not_found(store.complete_setup(9_999, "h", &[1], 1));
    assert_not_found(store.reset_user(9_999, "t", 1, 1));
    assert_not_found(store.set_user_roles(9_999, "admin", 1));
    assert_not_found(store.set_user_disabled(9_999, true, 1));
    assert_not_found(store.record_login_failure(9_999, None, 1));
    assert_not_found(store.record_login_success(9_999, 1, 1));
}

/// Failures count up and lock; a success resets them and consumes the TOTP step: the same
/// or an older step is refused (`Conflict`) and changes nothing. A reset clears the step.
pub fn login_failures_and_replay(store: &dyn Store) {
    let id = user(store, "carol");
    let u = store.record_login_failure(id, None, 10).unwrap();
    assert_eq!(
        (u.failed_logins, u.locked_until, u.updated_at),
        (1, None, 10)
    );
    let u = store.record_login_failure(id, Some(900), 11).unwrap();
    assert_eq!((u.failed_logins, u.locked_until), (2, Some(900)));
    // A failure without a new lock keeps the lock in force.
    let u = store.record_login_failure(id, None, 12).unwrap();
    assert_eq!((u.failed_logins, u.locked_until), (3, Some(900)));

    let u = store.record_login_success(id, 100, 20).unwrap();
    assert_eq!(
        (u.failed_logins, u.locked_until, u.last_totp_step),
        (0, None, Some(100))
    );
    assert_conflict(store.record_login_success(id, 100, 21));
    assert_conflict(store.record_login_success(id, 99, 21));
    store.record_login_failure(id, None, 22).unwrap();
    assert_conflict(store.record_login_success(id, 100, 23));
    // The refused replay did not reset the failures.
    assert_eq!(store.user(id).unwrap().unwrap().failed_logins, 1);
    let u = store.record_login_success(id, 101, 24).unwrap();
    assert_eq!((u.failed_logins, u.last_totp_step), (0, Some(101)));

    store.record_login_failure(id, Some(5_000), 25).unwrap();
    let u = store.reset_user(id, "token-new", 9_000, 30).unwrap();
    assert_eq!(u.last_totp_step, None);
    assert_eq!((u.failed_logins, u.locked_until), (0, None));
    assert_eq!((u.password_hash, u.totp_secret), (None, None));
    assert_eq!(u.setup_token_hash.as_deref(), Some("token-new"));
    assert_eq!(u.setup_expires_at, Some(9_000));
    assert_eq!(
        store.user_by_setup_token("token-new").unwrap().unwrap().id,
        id
    );
    // With the step cleared, any step is new again.
    assert_eq!(
        store
            .record_login_success(id, 5, 31)
            .unwrap()
            .last_totp_step,
        Some(5)
    );
}

fn session(id_hash: &str, user_id: UserId, at: i64) -> ConsoleSession {
    ConsoleSession {
        id_hash: id_hash.into(),
        user_id,
        csrf: format!("csrf-{id_hash}"),
        created_at: at,
        last_seen_at: at,
        expires_at: at + 10_000,
    }
}

/// Sessions are created, read back, touched (never backwards), deleted idempotently, and
/// swept when past their end or idle too long.
pub fn sessions_lifecycle(store: &dyn Store) {
    let id = user(store, "dave");
    let s = session("s1", id, 100);
    store.create_session(&s).unwrap();
    assert_eq!(store.session("s1").unwrap(), Some(s.clone()));
    assert_eq!(store.session("nope").unwrap(), None);
    assert_conflict(store.create_session(&s));
    assert_not_found(store.create_session(&session("s9", 9_999, 100)));

    store.touch_session("s1", 500).unwrap();
    assert_eq!(store.session("s1").unwrap().unwrap().last_seen_at, 500);
    store.touch_session("s1", 400).unwrap();
    assert_eq!(store.session("s1").unwrap().unwrap().last_seen_at, 500);
    store.touch_session("gone", 500).unwrap();

    store.delete_session("s1").unwrap();
    store.delete_session("s1").unwrap();
    assert_eq!(store.session("s1").unwrap(), None);

    // s2 idles out, s3 reaches its end, s4 lives on.
    store.create_session(&session("s2", id, 1_000)).unwrap();
    let mut s3 = session("s3", id, 1_000);
    s3.expires_at = 2_000;
    s3.last_seen_at = 1_900;
    store.create_session(&s3).unwrap();
    let mut s4 = session("s4", id, 1_000);
    s4.last_seen_at = 1_800;
    store.create_session(&s4).unwrap();
    assert_eq!(store.delete_expired_sessions(1_500, 1_000).unwrap(), 0);
    assert_eq!(store.delete_expired_sessions(2_000, 1_000).unwrap(), 2);
    assert_eq!(store.session("s2").unwrap(), None);
    assert_eq!(store.session("s3").unwrap(), None);
    assert!(store.session("s4").unwrap().is_some());
    assert_eq!(store.delete_expired_sessions(2_000, 1_000).unwrap(), 0);
}

/// Disabling or resetting a user deletes its sessions (others' stay); a disabled user gets
/// no new session; enabling again allows one.
pub fn disabled_or_reset_user_loses_sessions(store: &dyn Store) {
    let a = user(store, "erin");
    let b = user(store, "frank");
    store.create_session(&session("a1", a, 1)).unwrap();
    store.create_session(&session("a2", a, 1)).unwrap();
    store.create_session(&session("b1", b, 1)).unwrap();
    let u = store.set_user_disabled(a, true, 10).unwrap();
    assert!(u.disabled);
    assert_eq!(store.session("a1").unwrap(), None);
    assert_eq!(store.session("a2").unwrap(), None);
    assert!(store.session("b1").unwrap().is_some());
    assert_conflict(store.create_session(&session("a3", a, 11)));
    assert!(!store.set_user_disabled(a, false, 12).unwrap().disabled);
    store.create_session(&session("a3", a, 13)).unwrap();

    store.reset_user(b, "token-b2", 100, 20).unwrap();
    assert_eq!(store.session("b1").unwrap(), None);
    assert!(store.session("a3").unwrap().is_some());
}

/// `claim_next` takes priority DESC, opened_at ASC, id ASC across the given queues only,
/// moves the case into review with a history line and the events, takes the lease, and
/// returns `None` when nothing is left.
pub fn claim_order_and_queues(store: &dyn Store) {
    let r = user(store, "gina");
    let low_old = open_case(store, "p1", "csam", 1, 100);
    let high_new = open_case(store, "p2", "csam", 9, 300);
    let high_old_b = open_case(store, "p3", "grooming", 9, 200);
    let high_old_a = open_case(store, "p4", "csam", 9, 200);
    let tie_later_id = open_case(store, "p5", "grooming", 9, 200);
    let other_queue = open_case(store, "p6", "spam", 99, 1);
    assert!(high_old_a > high_old_b);

    let (case, lease) = store
        .claim_next(
            &queues(&["csam", "grooming"]),
            r,
            "gina (1)",
            1_000,
            LEASE,
            &mut |c| vec![event(&format!("evt-{}", c.id))],
        )
        .unwrap()
        .unwrap();
    // Same priority and age: the lower id first, across queues.
    assert_eq!(case.id, high_old_b);
    assert_eq!(case.state, "in_review");
    assert_eq!(case.updated_at, 1_000);
    assert_eq!(
        lease,
        Lease {
            case_id: high_old_b,
            holder: r,
            claimed_at: 1_000,
            expires_at: 1_000 + LEASE
        }
    );
    assert_eq!(store.lease(high_old_b).unwrap(), Some(lease));
    let line = last_line(store, high_old_b);
    assert_eq!(
        (
            line.action.as_str(),
            line.actor.as_str(),
            line.note.as_deref()
        ),
        ("state", "gina (1)", Some("claimed"))
    );
    assert_eq!(
        (
            line.from_state.as_deref(),
            line.to_state.as_deref(),
            line.at
        ),
        (Some("open"), Some("in_review"), 1_000)
    );
    let events = store.events_since(0, 10).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id, format!("evt-{high_old_b}"));

    let order: Vec<CaseId> =
        std::iter::from_fn(|| claim(store, &["grooming", "csam"], r, 1_001)).collect();
    assert_eq!(order, vec![high_old_a, tie_later_id, high_new, low_old]);
    assert_eq!(claim(store, &["csam", "grooming"], r, 1_002), None);
    assert_eq!(claim(store, &[], r, 1_002), None);
    assert_eq!(claim(store, &["spam"], r, 1_002), Some(other_queue));
    assert_eq!(store.case(low_old).unwrap().unwrap().state, "in_review");
    assert_not_found(store.claim_next(&queues(&["spam"]), 9_999, "x", 1, LEASE, &mut none));
}

fn claim_job(queues_of: &[&str], holder: UserId, now: i64, lease_ms: i64) -> ClaimJob {
    ClaimJob {
        queues: queues(queues_of),
        holder,
        actor_label: format!("user {holder}"),
        now,
        lease_ms,
        events: Box::new(|c: &Case| vec![event(&format!("evt-batch-{}", c.id))]),
    }
}

/// A batch answers each job as `claim_next` would have, one after another: the claim order
/// across the jobs, no case handed out twice, `None` once a queue is empty, refused jobs
/// (unknown holder, bad lease) answered alone without stopping the others, and each claim's
/// lease, history line and events written.
pub fn claim_batch_is_claims_in_order(store: &dyn Store) {
    let a = user(store, "kim");
    let b = user(store, "lee");
    let first = open_case(store, "b1", "csam", 9, 100);
    let second = open_case(store, "b2", "csam", 5, 100);
    let third = open_case(store, "b3", "grooming", 1, 50);
    let mut batch = vec![
        claim_job(&["csam"], a, 1_000, LEASE),
        claim_job(&["csam"], 9_999, 1_000, LEASE),
        claim_job(&["csam"], b, 1_000, LEASE),
        claim_job(&["csam"], b, 1_000, 0),
        claim_job(&["csam"], a, 1_001, LEASE),
        claim_job(&["grooming", "csam"], b, 1_002, LEASE),
    ];
    let out = store.claim_next_batch(&mut batch).unwrap();
    assert_eq!(out.len(), 6);
    let got = |i: usize| match &out[i] {
        Ok(c) => c.as_ref().map(|(c, l)| (c.id, l.holder, l.expires_at)),
        Err(e) => panic!("job {i}: {e}"),
    };
    assert_eq!(got(0), Some((first, a, 1_000 + LEASE)));
    assert!(matches!(out[1], Err(Error::NotFound(_))), "{:?}", out[1]);
    assert_eq!(got(2), Some((second, b, 1_000 + LEASE)));
    assert!(out[3].is_err(), "a zero lease is refused: {:?}", out[3]);
    assert_eq!(got(4), None, "the csam queue is empty by then");
    assert_eq!(got(5), Some((third, b, 1_002 + LEASE)));
    for (case, holder) in [(first, a), (second, b), (third, b)] {
        assert_eq!(store.case(case).unwrap().unwrap().state, "in_review");
        assert_eq!(store.lease(case).unwrap().unwrap().holder, holder);
        let line = last_line(store, case);
        assert_eq!(
            (line.action.as_str(), line.note.as_deref()),
            ("state", Some("claimed"))
        );
    }
    let events: Vec<String> = store
        .events_since(0, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        events,
        vec![
            format!("evt-batch-{first}"),
            format!("evt-batch-{second}"),
            format!("evt-batch-{third}")
        ]
    );
    assert!(store.claim_next_batch(&mut []).unwrap().is_empty());
}

/// A live lease of another holder is respected: `claim_next` passes the case by, and
/// `claim_case` is a `Conflict`; the holder's own `claim_case` renews without a history line.
/// Cases not open or in review, or in review without a lease, are refused.
pub fn claim_respects_live_leases(store: &dyn Store) {
    let a = user(store, "hank");
    let b = user(store, "ivy");
    let c1 = open_case(store, "q1", "csam", 5, 100);
    let c2 = open_case(store, "q2", "csam", 1, 100);
    let (case, lease) = store
        .claim_case(c1, a, "hank", 1_000, LEASE, &mut none)
        .unwrap();
    assert_eq!((case.state.as_str(), lease.holder), ("in_review", a));
    let lines = store.case_history(c1).unwrap().len();

    assert_conflict(store.claim_case(c1, b, "ivy", 1_500, LEASE, &mut none));
    assert_eq!(claim(store, &["csam"], b, 1_500), Some(c2));
    assert_eq!(claim(store, &["csam"], b, 1_500), None);

    let mut called = false;
    let (_, renewed) = store
        .claim_case(c1, a, "hank", 2_000, LEASE, &mut |_| {
            called = true;
            vec![]
        })
        .unwrap();
    assert!(!called);
    assert_eq!(
        (renewed.claimed_at, renewed.expires_at),
        (1_000, 2_000 + LEASE)
    );
    assert_eq!(store.case_history(c1).unwrap().len(), lines);

    assert_not_found(store.claim_case(9_999, a, "hank", 1, LEASE, &mut none));
    // Moved into review through the API: no lease, not the console's to hand out.
    let api = open_case(store, "q3", "csam", 1, 100);
    transition(store, api, "open", "in_review", None, 10);
    assert_conflict(store.claim_case(api, a, "hank", 3_000, LEASE, &mut none));
    transition(store, api, "in_review", "decided", Some("not_csam"), 11);
    assert_conflict(store.claim_case(api, a, "hank", 3_000, LEASE, &mut none));
    assert_eq!(claim(store, &["csam"], a, 3_000), None);
}

fn transition(
    store: &dyn Store,
    id: CaseId,
    from: &str,
    to: &str,
    decision: Option<&str>,
    at: i64,
) -> Case {
    store
        .transition_case(
            id,
            &CaseTransition {
                from: from.into(),
                to: to.into(),
                actor: "api".into(),
                note: None,
                decision: decision.map(str::to_owned),
                labels: Vec::new(),
                at,
            },
            &mut none,
        )
        .unwrap()
}

/// A lapsed lease makes an in-review case claimable again, by `claim_next` (in claim order
/// with the open ones) and by `claim_case`, with a `claimed` history line and no state
/// change; the old holder's renew is then a `Conflict`.
pub fn lapsed_lease_is_reclaimed(store: &dyn Store) {
    let a = user(store, "jack");
    let b = user(store, "kate");
    let hot = open_case(store, "r1", "csam", 9, 100);
    let cold = open_case(store, "r2", "csam", 1, 50);
    assert_eq!(claim(store, &["csam"], a, 1_000), Some(hot));
    // Live: b gets the other one only.
    assert_eq!(claim(store, &["csam"], b, 1_000 + LEASE - 1), Some(cold));
    assert_eq!(claim(store, &["csam"], b, 1_000 + LEASE - 1), None);
    // Lapsed (expires_at <= now): b takes it over.
    let (case, lease) = store
        .claim_next(
            &queues(&["csam"]),
            b,
            "kate",
            1_000 + LEASE,
            LEASE,
            &mut |c| vec![event(&format!("re-{}", c.id))],
        )
        .unwrap()
        .unwrap();
    assert_eq!((case.id, case.state.as_str()), (hot, "in_review"));
    assert_eq!((lease.holder, lease.claimed_at), (b, 1_000 + LEASE));
    let line = last_line(store, hot);
    assert_eq!(
        (line.action.as_str(), line.actor.as_str()),
        ("claimed", "kate")
    );
    assert_eq!((line.from_state, line.to_state), (None, None));
    assert!(store
        .events_since(0, 10)
        .unwrap()
        .iter()
        .any(|e| e.id == format!("re-{hot}")));
    assert_conflict(store.renew_lease(hot, a, 1_000 + LEASE, LEASE));

    // claim_case takes a lapsed lease too.
    let t = 1_000 + 3 * LEASE;
    let (_, lease) = store
        .claim_case(cold, a, "jack", t, LEASE, &mut none)
        .unwrap();
    assert_eq!((lease.holder, lease.claimed_at), (a, t));
    assert_eq!(last_line(store, cold).action, "claimed");
}

/// `reopen_lapsed` returns the cases whose lease lapsed by the cut-off to `open`, longest
/// lapsed first and at most `limit`, with a history line and events; a lease that lapsed
/// after the cut-off stays; the holder can no longer renew; the case is claimed as open.
pub fn reopen_lapsed_returns_cases_to_their_queue(store: &dyn Store) {
    let a = user(store, "lou");
    let b = user(store, "max");
    let first = open_case(store, "w1", "csam", 9, 100);
    let second = open_case(store, "w2", "csam", 5, 100);
    let third = open_case(store, "w3", "grooming", 5, 100);
    let live = open_case(store, "w4", "csam", 1, 100);
    assert_eq!(claim(store, &["csam"], a, 1_000), Some(first));
    assert_eq!(claim(store, &["csam"], b, 2_000), Some(second));
    assert_eq!(claim(store, &["grooming"], a, 3_000), Some(third));
    assert_eq!(claim(store, &["csam"], b, 3_000), Some(live));
    // Nothing lapsed by the cut-off yet.
    let cases = store
        .reopen_lapsed(1_000 + LEASE - 1, 10, "system", 9_000_000, &mut none)
        .unwrap();
    assert!(cases.is_empty(), "{cases:?}");
    // Two lapsed by the cut-off, the limit takes the longer lapsed one.
    let at = 1_000 + 5 * LEASE;
    let cases = store
        .reopen_lapsed(2_000 + LEASE, 1, "system", at, &mut |c| {
            vec![event(&format!("lapsed-{}", c.id))]
        })
        .unwrap();
    let ids: Vec<CaseId> = cases.iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![first]);
    assert_eq!(cases[0].state, "open");
    assert!(store.lease(first).unwrap().is_none());
    let line = last_line(store, first);
    assert_eq!(
        (
            line.action.as_str(),
            line.actor.as_str(),
            line.note.as_deref()
        ),
        ("state", "system", Some("the lease lapsed"))
    );
    assert_eq!(
        (line.from_state.as_deref(), line.to_state.as_deref()),
        (Some("in_review"), Some("open"))
    );
    assert!(store
        .events_since(0, 10)
        .unwrap()
        .iter()
        .any(|e| e.id == format!("lapsed-{first}")));
    assert_conflict(store.renew_lease(first, a, at, LEASE));
    let cases = store
        .reopen_lapsed(2_000 + LEASE, 10, "system", at, &mut none)
        .unwrap();
    let ids: Vec<CaseId> = cases.iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![second], "the others lapsed after the cut-off");
    assert_eq!(store.case(third).unwrap().unwrap().state, "in_review");
    assert_eq!(store.lease(live).unwrap().unwrap().holder, b);
    assert_eq!(store.case(live).unwrap().unwrap().state, "in_review");
    // A lapsed lease left on a case no longer in review goes quietly: no case back, no event.
    let t = CaseTransition {
        from: "in_review".into(),
        to: "decided".into(),
        actor: "lou".into(),
        note: None,
        decision: Some("not_csam".into()),
        labels: Vec::new(),
        at,
    };
    store.transition_case(third, &t, &mut none).unwrap();
    let events_before = store.events_since(0, 100).unwrap().len();
    let history_before = store.case_history(third).unwrap().len();
    let cases = store
        .reopen_lapsed(3_000 + LEASE, 10, "system", at, &mut |c| {
            vec![event(&format!("quiet-{}", c.id))]
        })
        .unwrap();
    let ids: Vec<CaseId> = cases.iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![live], "the decided case is not returned");
    assert!(store.lease(third).unwrap().is_none(), "its lease is gone");
    assert_eq!(store.case(third).unwrap().unwrap().state, "decided");
    assert_eq!(store.case_history(third).unwrap().len(), history_before);
    let events: Vec<String> = store
        .events_since(0, 100)
        .unwrap()
        .into_iter()
        .skip(events_before)
        .map(|e| e.id)
        .collect();
    assert_eq!(events, vec![format!("quiet-{live}")]);
    // Back in the queue as open cases, by the claim order.
    assert_eq!(claim(store, &["csam"], a, at), Some(first));
    assert_eq!(claim(store, &["csam"], a, at), Some(second));
    let stats = store.queue_stats().unwrap();
    let csam = stats.iter().find(|q| q.queue == "csam").unwrap();
    assert_eq!((csam.open, csam.in_review), (1, 2), "{stats:?}");
}

/// Source feedback keeps an entry id and a value of any length exactly (a vPDQ value runs to
/// kilobytes): recorded once, read back whole, and told apart from text that differs only
/// late.
pub fn source_feedback_takes_long_text(store: &dyn Store) {
    let case = open_case(store, "f2", "csam", 5, 100);
    // Incompressible hex from a linear congruential generator, `c` first: PostgreSQL
    // compresses a key before its size check, so a run of one letter would fit any key.
    let long = |c: char, n: usize| {
        let mut x = u64::from(c);
        std::iter::once(c)
            .chain((1..n).map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                char::from_digit((x >> 60) as u32, 16).unwrap_or('0')
            }))
            .collect::<String>()
    };
    let item = |tail: &str| NewSourceFeedback {
        case_id: case,
        // Exchange names are configuration (short by their own check); entry ids and
        // values are remote text.
        exchange: "LONG_TEXT".into(),
        source_id: long('s', 3_000),
        signal_type: "vpdq".into(),
        value: format!("{}{tail}", long('v', 9_000)),
        verdict: "false_positive".into(),
        actor: "user:kim".into(),
        at: 2_000,
    };
    assert_eq!(store.record_source_feedback(&[item("a")]).unwrap(), 1);
    assert_eq!(
        store.record_source_feedback(&[item("a")]).unwrap(),
        0,
        "recorded once"
    );
    assert_eq!(
        store.record_source_feedback(&[item("b")]).unwrap(),
        1,
        "another value"
    );
    let listed = store
        .source_feedback(&FeedbackFilter {
            exchange: Some("LONG_TEXT".into()),
            status: None,
            due_by: None,
            after: 0,
            limit: 10,
        })
        .unwrap();
    let got: Vec<NewSourceFeedback> = listed.into_iter().map(|f| f.feedback).collect();
    assert_eq!(got, vec![item("a"), item("b")]);
}

/// Source feedback: recorded once per (case, exchange, entry, signal, verdict), listed by
/// exchange and status, and an attempt makes it `sent`, keeps it `pending` with the error, or
/// `failed` after the last attempt; a row no longer pending takes no attempt.
pub fn source_feedback_is_recorded_once_and_sent(store: &dyn Store) {
    let case = open_case(store, "f1", "csam", 5, 100);
    let fb = |exchange: &str, source_id: &str, value: &str| NewSourceFeedback {
        case_id: case,
        exchange: exchange.into(),
        source_id: source_id.into(),
        signal_type: "pdq".into(),
        value: value.into(),
        verdict: "false_positive".into(),
        actor: "user:kim".into(),
        at: 2_000,
    };
    let items = vec![
        fb("NCMEC", "7-abc", "aa"),
        fb("STOPNCII", "ImagePDQ:bb", "bb"),
        fb("NCMEC", "7-abd", "cc"),
    ];
    assert_eq!(store.record_source_feedback(&items).unwrap(), 3);
    assert_eq!(
        store.record_source_feedback(&items[..1]).unwrap(),
        0,
        "recorded once"
    );
    let mut unknown = items[0].clone();
    unknown.case_id = 9_999_999;
    assert!(matches!(
        store.record_source_feedback(&[unknown]),
        Err(Error::NotFound(_))
    ));
    let list = |exchange: Option<&str>, status: Option<&str>| -> Vec<String> {
        store
            .source_feedback(&FeedbackFilter {
                exchange: exchange.map(str::to_string),
                status: status.map(str::to_string),
                due_by: None,
                after: 0,
                limit: 10,
            })
            .unwrap()
            .into_iter()
            .map(|f| f.feedback.source_id)
            .collect()
    };
    assert_eq!(list(None, None), vec!["7-abc", "ImagePDQ:bb", "7-abd"]);
    assert_eq!(list(Some("NCMEC"), Some("pending")), vec!["7-abc", "7-abd"]);
    let all = store
        .source_feedback(&FeedbackFilter {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all[0].feedback, items[0]);
    assert_eq!(
        (
            all[0].status.as_str(),
            all[0].attempts,
            all[0].sent_at,
            all[0].next_attempt_at
        ),
        ("pending", 0, None, 2_000)
    );
    let page = store
        .source_feedback(&FeedbackFilter {
            after: all[0].id,
            limit: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, all[1].id);

    // Sent at the first attempt.
    let sent = store
        .note_feedback_attempt(all[0].id, None, 3_000, 3, 9_000)
        .unwrap();
    assert_eq!(
        (
            sent.status.as_str(),
            sent.attempts,
            sent.sent_at,
            sent.updated_at
        ),
        ("sent", 1, Some(3_000), 3_000)
    );
    assert_conflict(store.note_feedback_attempt(all[0].id, None, 3_001, 3, 9_000));
    // Fails, fails, gives up at the third; each failure sets when it is due again.
    let id = all[2].id;
    let f = store
        .note_feedback_attempt(id, Some("502 from the exchange"), 3_000, 3, 4_000)
        .unwrap();
    assert_eq!(
        (f.status.as_str(), f.attempts, f.next_attempt_at),
        ("pending", 1, 4_000)
    );
    assert_eq!(f.last_error.as_deref(), Some("502 from the exchange"));
    let due = |by: i64| -> Vec<i64> {
        store
            .source_feedback(&FeedbackFilter {
                status: Some("pending".into()),
                due_by: Some(by),
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|f| f.id)
            .collect()
    };
    assert_eq!(
        due(3_999),
        vec![all[1].id],
        "not due before its next attempt"
    );
    assert_eq!(due(4_000), vec![all[1].id, id]);
    store
        .note_feedback_attempt(id, Some("timeout"), 4_000, 3, 6_000)
        .unwrap();
    let f = store
        .note_feedback_attempt(id, Some("timeout again"), 6_000, 3, 10_000)
        .unwrap();
    assert_eq!(
        (
            f.status.as_str(),
            f.attempts,
            f.last_error.as_deref(),
            f.sent_at
        ),
        ("failed", 3, Some("timeout again"), None)
    );
    assert_conflict(store.note_feedback_attempt(id, None, 6_100, 3, 9_000));
    assert_eq!(list(Some("NCMEC"), Some("pending")), Vec::<String>::new());
    assert_eq!(list(None, Some("failed")), vec!["7-abd"]);
    assert!(matches!(
        store.note_feedback_attempt(9_999_999, None, 1, 3, 1),
        Err(Error::NotFound(_))
    ));
    // A failed row is tried afresh on request; other exchanges' rows are left alone.
    assert_eq!(store.retry_failed_feedback("STOPNCII", 7_000).unwrap(), 0);
    assert_eq!(store.retry_failed_feedback("NCMEC", 7_000).unwrap(), 1);
    let f = store
        .source_feedback(&FeedbackFilter {
            after: id - 1,
            limit: 1,
            ..Default::default()
        })
        .unwrap()
        .remove(0);
    assert_eq!(
        (
            f.status.as_str(),
            f.attempts,
            f.next_attempt_at,
            f.last_error.as_deref()
        ),
        ("pending", 0, 7_000, Some("timeout again"))
    );
    // Cancelled: no longer pending, so no attempt and no second cancel.
    let c = store
        .cancel_source_feedback(all[1].id, "the case was decided again", 7_100)
        .unwrap();
    assert_eq!(
        (c.status.as_str(), c.last_error.as_deref(), c.updated_at),
        ("cancelled", Some("the case was decided again"), 7_100)
    );
    assert_conflict(store.note_feedback_attempt(all[1].id, None, 7_200, 3, 9_000));
    assert_conflict(store.cancel_source_feedback(all[1].id, "again", 7_200));
    assert_conflict(store.cancel_source_feedback(all[0].id, "sent already", 7_200));
    // The same feedback recorded again revives a cancelled row (the case was decided the same
    // way again), and leaves a sent one alone.
    assert_eq!(
        store
            .record_source_feedback(&[items[1].clone(), items[0].clone()])
            .unwrap(),
        1
    );
    let revived = store
        .source_feedback(&FeedbackFilter {
            after: all[1].id - 1,
            limit: 1,
            ..Default::default()
        })
        .unwrap()
        .remove(0);
    assert_eq!(
        (
            revived.status.as_str(),
            revived.attempts,
            revived.next_attempt_at
        ),
        ("pending", 0, 2_000)
    );
    assert_eq!(
        store
            .source_feedback(&FeedbackFilter {
                after: all[0].id - 1,
                limit: 1,
                ..Default::default()
            })
            .unwrap()[0]
            .status,
        "sent"
    );
    // Deferred: due later, no attempt counted; only a pending row.
    store.defer_source_feedback(all[1].id, 50_000).unwrap();
    let d = store
        .source_feedback(&FeedbackFilter {
            after: all[1].id - 1,
            limit: 1,
            ..Default::default()
        })
        .unwrap()
        .remove(0);
    assert_eq!((d.next_attempt_at, d.attempts), (50_000, 0));
    assert_conflict(store.defer_source_feedback(all[0].id, 50_000));
    assert_conflict(store.defer_source_feedback(9_999_999, 50_000));
    assert!(matches!(
        store.cancel_source_feedback(9_999_999, "x", 1),
        Err(Error::NotFound(_))
    ));
}

/// Renew extends the holder's lease (a lapsed one nobody took too), not another's; release
/// returns the case to open with the reason, and is refused to others; drop_lease is
/// idempotent.
pub fn renew_release_and_drop(store: &dyn Store) {
    let a = user(store, "liam");
    let b = user(store, "mia");
    let c = open_case(store, "s1", "csam", 1, 100);
    assert_conflict(store.renew_lease(c, a, 1_000, LEASE));
    assert_not_found(store.renew_lease(9_999, a, 1_000, LEASE));
    assert_eq!(claim(store, &["csam"], a, 1_000), Some(c));
    let l = store.renew_lease(c, a, 2_000, LEASE).unwrap();
    assert_eq!((l.claimed_at, l.expires_at), (1_000, 2_000 + LEASE));
    assert_eq!(store.lease(c).unwrap(), Some(l));
    assert_conflict(store.renew_lease(c, b, 2_000, LEASE));
    // Lapsed but not taken: still the holder's to renew.
    let l = store.renew_lease(c, a, 10 * LEASE, LEASE).unwrap();
    assert_eq!(l.expires_at, 11 * LEASE);

    assert_conflict(store.release_case(c, b, "mia", "no", 3_000, &mut none));
    assert_not_found(store.release_case(9_999, a, "liam", "no", 3_000, &mut none));
    let case = store
        .release_case(c, a, "liam", "lunch", 3_000, &mut |c| {
            vec![event(&format!("rel-{}", c.id))]
        })
        .unwrap();
    assert_eq!((case.state.as_str(), case.updated_at), ("open", 3_000));
    assert_eq!(store.lease(c).unwrap(), None);
    let line = last_line(store, c);
    assert_eq!(
        (
            line.action.as_str(),
            line.note.as_deref(),
            line.actor.as_str()
        ),
        ("state", Some("lunch"), "liam")
    );
    assert_eq!(
        (line.from_state.as_deref(), line.to_state.as_deref()),
        (Some("in_review"), Some("open"))
    );
    assert!(store
        .events_since(0, 10)
        .unwrap()
        .iter()
        .any(|e| e.id == format!("rel-{c}")));
    assert_conflict(store.release_case(c, a, "liam", "again", 3_001, &mut none));
    assert_conflict(store.renew_lease(c, a, 3_001, LEASE));

    // Released cases are offered again, to anyone.
    assert_eq!(claim(store, &["csam"], b, 4_000), Some(c));
    store.drop_lease(c).unwrap();
    store.drop_lease(c).unwrap();
    store.drop_lease(9_999).unwrap();
    assert_eq!(store.lease(c).unwrap(), None);
}

/// Requeueing (escalation, a second opinion) moves a held case to another queue, open, with
/// a `requeued` line; with `skip` its holder is not offered it there either.
pub fn requeue_moves_and_releases(store: &dyn Store) {
    let a = user(store, "quentin");
    let b = user(store, "rosa");
    let c = open_case(store, "q1", "csam", 1, 100);
    assert_eq!(claim(store, &["csam"], a, 1_000), Some(c));
    assert_conflict(store.requeue_case(c, b, "rosa", "escalated", "why", false, 1_001, &mut none));
    assert_not_found(store.requeue_case(
        9_999,
        a,
        "quentin",
        "escalated",
        "why",
        false,
        1_001,
        &mut none,
    ));
    let case = store
        .requeue_case(
            c,
            a,
            "quentin",
            "escalated",
            "needs a lead",
            false,
            1_001,
            &mut |c| vec![event(&format!("req-{}", c.id))],
        )
        .unwrap();
    assert_eq!(
        (case.state.as_str(), case.queue.as_str(), case.updated_at),
        ("open", "escalated", 1_001)
    );
    assert_eq!(store.lease(c).unwrap(), None);
    let lines = store.case_history(c).unwrap();
    let moved = lines
        .iter()
        .find(|l| l.action == "requeued")
        .expect("a requeued line");
    assert_eq!(
        moved.note.as_deref(),
        Some("csam -> escalated: needs a lead")
    );
    assert!(store
        .events_since(0, 10)
        .unwrap()
        .iter()
        .any(|e| e.id == format!("req-{c}")));
    assert_eq!(
        claim(store, &["csam"], b, 1_002),
        None,
        "gone from the old queue"
    );
    let stats = store.queue_stats().unwrap();
    assert!(stats
        .iter()
        .all(|q| q.queue != "csam" || q.open + q.in_review == 0));
    assert_eq!(
        stats
            .iter()
            .find(|q| q.queue == "escalated")
            .map(|q| q.open),
        Some(1)
    );
    // A second opinion: never back to the same person.
    assert_eq!(claim(store, &["escalated"], a, 1_003), Some(c));
    store
        .requeue_case(
            c,
            a,
            "quentin",
            "second_opinion",
            "not sure",
            true,
            1_004,
            &mut none,
        )
        .unwrap();
    assert_eq!(claim(store, &["second_opinion"], a, 1_005), None);
    assert_eq!(claim(store, &["second_opinion"], b, 1_005), Some(c));
    // The API decides the case while rosa holds it (the API does not touch leases): her
    // requeue must not send a decided case back to a queue.
    let decided = CaseTransition {
        from: "in_review".into(),
        to: "decided".into(),
        actor: "api".into(),
        note: None,
        decision: Some("confirmed".into()),
        labels: Vec::new(),
        at: 1_006,
    };
    store.transition_case(c, &decided, &mut none).unwrap();
    assert_conflict(store.requeue_case(c, b, "rosa", "escalated", "late", false, 1_007, &mut none));
    let case = store.case(c).unwrap().unwrap();
    assert_eq!(
        (case.state.as_str(), case.queue.as_str()),
        ("decided", "second_opinion")
    );
    assert!(store
        .case_history(c)
        .unwrap()
        .iter()
        .all(|l| l.note.as_deref() != Some("second_opinion -> escalated: late")));
}

/// An account's cases, newest first, and no one else's.
pub fn cases_of_one_account(store: &dyn Store) {
    let record = |id: &str, account: &str| {
        let s = crate::action_conformance::submission(id, Some(account), Some(("csam", 1)));
        match store.record_submission(&s, &mut |_| vec![]).unwrap() {
            SubmitOutcome::Recorded(r) => r.case_id.expect("a case"),
            SubmitOutcome::Replayed(_) => panic!("replayed {id}"),
        }
    };
    let first = record("acc-1", "u-1");
    let other = record("acc-2", "u-2");
    assert_ne!(first, other);
    assert_eq!(store.cases_of_account("nobody", 10).unwrap(), vec![]);
    let got = store.cases_of_account("u-1", 10).unwrap();
    assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), vec![first]);
    assert_eq!(store.cases_of_account("u-1", 0).unwrap(), vec![]);
}

/// A skipped case is never offered to its skipper again, but is to others; the skip writes
/// a `skipped` line with the reason and releases the case.
pub fn skip_is_per_holder(store: &dyn Store) {
    let a = user(store, "nina");
    let b = user(store, "otto");
    let first = open_case(store, "t1", "csam", 9, 100);
    let second = open_case(store, "t2", "csam", 1, 100);
    assert_eq!(claim(store, &["csam"], a, 1_000), Some(first));
    assert_conflict(store.skip_case(first, b, "otto", "no", 1_001, &mut none));
    let case = store
        .skip_case(first, a, "nina", "conflict of interest", 1_001, &mut none)
        .unwrap();
    assert_eq!(case.state, "open");
    let lines = store.case_history(first).unwrap();
    let skipped = lines
        .iter()
        .find(|l| l.action == "skipped")
        .expect("a skipped line");
    assert_eq!(
        (skipped.note.as_deref(), skipped.actor.as_str()),
        (Some("conflict of interest"), "nina")
    );
    assert_eq!(lines.last().unwrap().to_state.as_deref(), Some("open"));

    assert_eq!(claim(store, &["csam"], a, 1_002), Some(second));
    assert_eq!(claim(store, &["csam"], a, 1_003), None);
    assert_eq!(claim(store, &["csam"], b, 1_004), Some(first));
    store.renew_lease(second, a, 1_010, LEASE).unwrap();
    // Lapsed, it is still not offered to the skipper.
    assert_eq!(claim(store, &["csam"], a, 1_004 + LEASE), None);
    // The skipper can still open it on purpose.
    let (_, lease) = store
        .claim_case(first, a, "nina", 1_004 + LEASE, LEASE, &mut none)
        .unwrap();
    assert_eq!(lease.holder, a);
}

/// Counts per queue of open and in-review cases follow every change of state, whoever made
/// it (record, claim, release, the API's transitions); the oldest is over both states.
pub fn queue_stats_count_and_age(store: &dyn Store) {
    assert_eq!(store.queue_stats().unwrap(), vec![]);
    let r = user(store, "pia");
    let a1 = open_case(store, "u1", "csam", 9, 300);
    open_case(store, "u2", "csam", 1, 200);
    let a3 = open_case(store, "u3", "csam", 1, 250);
    let b1 = open_case(store, "u4", "grooming", 1, 400);
    let stats = |q: &str, open: u64, in_review: u64, oldest: Option<i64>| QueueStats {
        queue: q.into(),
        open,
        in_review,
        oldest_opened_at: oldest,
    };
    assert_eq!(
        store.queue_stats().unwrap(),
        vec![
            stats("csam", 3, 0, Some(200)),
            stats("grooming", 1, 0, Some(400))
        ]
    );
    assert_eq!(claim(store, &["csam"], r, 1_000), Some(a1));
    store
        .claim_case(a3, r, "pia", 1_000, LEASE, &mut none)
        .unwrap();
    transition(store, b1, "open", "in_review", None, 1_000);
    assert_eq!(
        store.queue_stats().unwrap(),
        vec![
            stats("csam", 1, 2, Some(200)),
            stats("grooming", 0, 1, Some(400))
        ]
    );
    transition(store, b1, "in_review", "decided", Some("not_csam"), 1_001);
    store
        .release_case(a1, r, "pia", "later", 1_002, &mut none)
        .unwrap();
    assert_eq!(
        store.queue_stats().unwrap(),
        vec![stats("csam", 2, 1, Some(200))]
    );
}

/// Confirmed decisions without an approval after their (last) decision wait, oldest
/// decision first; an approval removes one; deciding again needs a new approval; other
/// decisions never wait.
pub fn awaiting_approval(store: &dyn Store) {
    let ids = |v: Vec<Case>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.cases_awaiting_approval(10).unwrap()),
        Vec::<CaseId>::new()
    );
    let late = open_case(store, "v1", "csam", 1, 100);
    let early = open_case(store, "v2", "csam", 1, 200);
    let not_csam = open_case(store, "v3", "csam", 1, 300);
    let open = open_case(store, "v4", "csam", 1, 400);
    for (id, at) in [(early, 10), (late, 20), (not_csam, 30)] {
        transition(store, id, "open", "in_review", None, at);
    }
    transition(
        store,
        early,
        "in_review",
        "decided",
        Some("confirmed:A1"),
        40,
    );
    transition(store, late, "in_review", "decided", Some("confirmed"), 50);
    transition(
        store,
        not_csam,
        "in_review",
        "decided",
        Some("not_csam"),
        60,
    );
    let _ = open;
    assert_eq!(
        ids(store.cases_awaiting_approval(10).unwrap()),
        vec![early, late]
    );
    assert_eq!(ids(store.cases_awaiting_approval(1).unwrap()), vec![early]);

    let seen = store.case(early).unwrap().unwrap().updated_at;
    store
        .approve_case(
            early,
            &CaseApproval {
                actor: "senior".into(),
                seen_updated_at: seen,
                note: None,
                at: 70,
            },
            &mut none,
        )
        .unwrap();
    assert_eq!(ids(store.cases_awaiting_approval(10).unwrap()), vec![late]);
    // Decided again: the old approval does not cover the new decision.
    transition(store, early, "decided", "in_review", None, 80);
    assert_eq!(ids(store.cases_awaiting_approval(10).unwrap()), vec![late]);
    transition(
        store,
        early,
        "in_review",
        "decided",
        Some("confirmed:A2"),
        90,
    );
    assert_eq!(
        ids(store.cases_awaiting_approval(10).unwrap()),
        vec![late, early]
    );
}

/// Reveals start and end (idempotently, the first end kept, never before the start; another
/// user's end is a `Conflict`); they are listed by object and by user and period; exposure
/// sums reveals, time on screen (an open reveal up to `now`) and review time per user and
/// for everyone.
pub fn reveals_and_exposure(store: &dyn Store) {
    let a = user(store, "quinn");
    let b = user(store, "rosa");
    let c = open_case(store, "w1", "csam", 1, 1);
    assert_not_found(store.start_reveal(9_999, c, "obj1", 100));
    assert_not_found(store.start_reveal(a, 9_999, "obj1", 100));
    let r1 = store.start_reveal(a, c, "obj1", 1_000).unwrap();
    assert_eq!(
        (
            r1.user_id,
            r1.case_id,
            r1.object_id.as_str(),
            r1.started_at,
            r1.ended_at
        ),
        (a, c, "obj1", 1_000, None)
    );
    assert_conflict(store.end_reveal(r1.id, b, 1_100));
    assert_not_found(store.end_reveal(9_999, a, 1_100));
    let ended = store.end_reveal(r1.id, a, 1_400).unwrap();
    assert_eq!(ended.ended_at, Some(1_400));
    assert_eq!(
        store.end_reveal(r1.id, a, 9_000).unwrap().ended_at,
        Some(1_400)
    );
    let r2 = store.start_reveal(a, c, "obj2", 2_000).unwrap();
    // Ending before the start (a clock step) counts as zero time.
    let r3 = store.start_reveal(b, c, "obj1", 3_000).unwrap();
    assert_eq!(
        store.end_reveal(r3.id, b, 2_500).unwrap().ended_at,
        Some(3_000)
    );
    let r4 = store.start_reveal(b, c, "obj1", 5_000).unwrap();

    let of_obj: Vec<i64> = store
        .reveals_of_object("obj1")
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(of_obj, vec![r1.id, r3.id, r4.id]);
    let of_a: Vec<i64> = store
        .reveals_of_user(a, 0, 10_000)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(of_a, vec![r1.id, r2.id]);
    assert_eq!(store.reveals_of_user(a, 1_000, 2_000).unwrap().len(), 1);
    assert_eq!(store.reveals_of_user(a, 1_001, 2_001).unwrap()[0].id, r2.id);

    store.add_review_time(a, c, 60_000, 1_500).unwrap();
    store.add_review_time(a, c, 30_000, 20_000).unwrap();
    store.add_review_time(b, c, 5_000, 1_500).unwrap();
    assert_not_found(store.add_review_time(9_999, c, 1, 1));
    assert_not_found(store.add_review_time(a, 9_999, 1, 1));
    assert!(store.add_review_time(a, c, -1, 1).is_err());

    // a: r1 400 ms, r2 open since 2 000 counted to now = 2 600.
    assert_eq!(
        store.exposure(a, 0, 10_000, 2_600).unwrap(),
        ExposureTotals {
            reveals: 2,
            visible_ms: 400 + 600,
            review_ms: 60_000
        }
    );
    assert_eq!(
        store.exposure(a, 1_001, 10_000, 2_600).unwrap(),
        ExposureTotals {
            reveals: 1,
            visible_ms: 600,
            review_ms: 60_000
        }
    );
    assert_eq!(
        store.exposure(a, 100_000, 200_000, 2_600).unwrap(),
        ExposureTotals::default()
    );
    // b: r3 0 ms, r4 open and started after now: 0.
    assert_eq!(
        store.exposure(b, 0, 10_000, 4_000).unwrap(),
        ExposureTotals {
            reveals: 2,
            visible_ms: 0,
            review_ms: 5_000
        }
    );
    assert_eq!(
        store.exposure_all(0, 10_000, 6_000).unwrap(),
        (
            2,
            ExposureTotals {
                reveals: 4,
                visible_ms: 400 + 4_000 + 1_000,
                review_ms: 65_000
            }
        )
    );
    assert_eq!(
        store.exposure_all(4_000, 10_000, 6_000).unwrap(),
        (
            1,
            ExposureTotals {
                reveals: 1,
                visible_ms: 1_000,
                review_ms: 0
            }
        )
    );
}

/// Labels are upserted by (case, object) and listed by object; an unknown case is refused
/// with nothing written. Settings are upserted by scope.
pub fn labels_and_settings(store: &dyn Store) {
    let c = open_case(store, "x1", "csam", 1, 1);
    let label = |object: &str, class: &str, annotations: &[&str], at: i64| ItemLabel {
        case_id: c,
        object_id: object.into(),
        classification: class.into(),
        annotations: annotations.iter().map(|a| (*a).to_owned()).collect(),
        actor: "sam".into(),
        at,
    };
    assert_eq!(store.item_labels(c).unwrap(), vec![]);
    store
        .put_item_labels(&[
            label(
                "obj-b",
                "A1",
                &["animal", "with \"quotes\", commas\nand lines"],
                10,
            ),
            label("obj-a", "", &[], 10),
        ])
        .unwrap();
    assert_eq!(
        store.item_labels(c).unwrap(),
        vec![
            label("obj-a", "", &[], 10),
            label(
                "obj-b",
                "A1",
                &["animal", "with \"quotes\", commas\nand lines"],
                10
            )
        ]
    );
    store
        .put_item_labels(&[label("obj-a", "B2", &["x"], 20)])
        .unwrap();
    assert_eq!(
        store.item_labels(c).unwrap()[0],
        label("obj-a", "B2", &["x"], 20)
    );
    let mut bad = label("obj-c", "A2", &[], 30);
    bad.case_id = 9_999;
    assert_not_found(store.put_item_labels(&[label("obj-c", "A2", &[], 30), bad]));
    assert_eq!(store.item_labels(c).unwrap().len(), 2);

    // Labels that travel with a move of the case stand only if the move does: from a state
    // the case has left, neither happens; a label of another case is refused.
    let move_with = |from: &str, labels: Vec<ItemLabel>| CaseTransition {
        from: from.into(),
        to: "decided".into(),
        actor: "sam".into(),
        note: None,
        decision: Some("confirmed".into()),
        labels,
        at: 40,
    };
    assert_conflict(store.transition_case(
        c,
        &move_with("in_review", vec![label("obj-d", "A1", &[], 40)]),
        &mut none,
    ));
    let mut other = label("obj-d", "A1", &[], 40);
    other.case_id = open_case(store, "x2", "csam", 1, 1);
    assert_conflict(store.transition_case(c, &move_with("open", vec![other]), &mut none));
    assert_eq!(store.item_labels(c).unwrap().len(), 2);
    assert_eq!(store.case(c).unwrap().unwrap().state, "open");
    let moved = store
        .transition_case(
            c,
            &move_with(
                "open",
                vec![
                    label("obj-a", "A1", &[], 40),
                    label("obj-d", "B1", &["y"], 40),
                ],
            ),
            &mut none,
        )
        .unwrap();
    assert_eq!(moved.state, "decided");
    assert_eq!(
        store.item_labels(c).unwrap(),
        vec![
            label("obj-a", "A1", &[], 40),
            label(
                "obj-b",
                "A1",
                &["animal", "with \"quotes\", commas\nand lines"],
                10
            ),
            label("obj-d", "B1", &["y"], 40),
        ]
    );

    assert_eq!(store.setting("org").unwrap(), None);
    store.put_setting("org", "{\"blur_px\":16}", 1).unwrap();
    store.put_setting("queue:csam", "{}", 1).unwrap();
    store.put_setting("org", "{\"blur_px\":20}", 2).unwrap();
    assert_eq!(
        store.setting("org").unwrap().as_deref(),
        Some("{\"blur_px\":20}")
    );
    assert_eq!(store.setting("queue:csam").unwrap().as_deref(), Some("{}"));
    assert_eq!(store.setting("user:1").unwrap(), None);
}

/// Threads claiming at once.
pub const CLAIMERS: usize = 20;

/// [`CLAIMERS`] threads, each its own holder, claim from one queue until it is empty: every
/// case is handed out exactly once, each lease names the thread that got the case, and the
/// queue's counts agree.
pub fn concurrent_claims_are_unique(store: &dyn Store) {
    const CASES: usize = 300;
    let holders: Vec<UserId> = (0..CLAIMERS)
        .map(|i| user(store, &format!("claimer-{i}")))
        .collect();
    let mut batch: Vec<SubmissionJob> = (0..CASES)
        .map(|i| {
            let mut s = crate::action_conformance::submission(
                &format!("cc-{i}"),
                None,
                Some(("busy", i32::try_from(i % 7).unwrap_or(0))),
            );
            s.created_at = i64::try_from(i).unwrap_or(0);
            SubmissionJob {
                submission: s,
                events: Box::new(|_| vec![]),
            }
        })
        .collect();
    for r in store.record_submissions(&mut batch).unwrap() {
        r.unwrap();
    }
    let barrier = std::sync::Barrier::new(CLAIMERS);
    let got: Vec<Vec<(CaseId, UserId)>> = std::thread::scope(|s| {
        let handles: Vec<_> = holders
            .iter()
            .map(|&h| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let mut mine = Vec::new();
                    while let Some((case, lease)) = store
                        .claim_next(&queues(&["busy"]), h, "claimer", 1_000, LEASE, &mut none)
                        .unwrap()
                    {
                        assert_eq!(case.state, "in_review");
                        mine.push((case.id, lease.holder));
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut seen = HashSet::new();
    for (thread, claims) in got.iter().enumerate() {
        for &(case, holder) in claims {
            assert_eq!(holder, holders[thread]);
            assert!(seen.insert(case), "case {case} was handed out twice");
            assert_eq!(store.lease(case).unwrap().unwrap().holder, holder);
        }
    }
    assert_eq!(seen.len(), CASES);
    assert_eq!(
        store.queue_stats().unwrap(),
        vec![QueueStats {
            queue: "busy".into(),
            open: 0,
            in_review: CASES as u64,
            oldest_opened_at: Some(0),
        }]
    );
}
