//! The conformance suite every [`Outbox`] implementation must pass.
//!
//! Call [`run_all`] from an implementation's tests with a function that makes a fresh, empty
//! outbox. The outbox must also implement [`Seed`], the writer side the suite needs to set up
//! endpoints and events (in a real store that side runs inside the transactions of the changes
//! the events describe). Each check is public so a failure can be rerun alone. Checks panic
//! with a message naming what broke; an `unwrap()` here asserts that the call must succeed.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::attempt::{AttemptRecord, Outcome};
use crate::event::{types, Event};
use crate::memory::MemoryOutbox;
use crate::outbox::{DeadLetter, DeliveryId, EndpointId, Next, Outbox, Pending, Redrive};
use crate::signature::Secret;
use crate::Error;

/// The writer side of an outbox, as far as the suite needs it.
pub trait Seed: Outbox {
    /// Registers an enabled endpoint; `secrets` is the current secret first.
    fn add_endpoint(&self, url: &str, secrets: Vec<Secret>) -> EndpointId;
    /// Writes a pending delivery of `event` (its [`Event::to_body`] bytes) to `endpoint`, due
    /// at `now_ms`. Ids increase with every call.
    fn enqueue(&self, endpoint: EndpointId, event: &Event, now_ms: i64) -> DeliveryId;
}

/// One conformance check: panics if the outbox breaks the contract.
pub type Check = fn(&dyn Seed);

/// A fixed start time (2026-01-01T00:00:00Z in unix ms), so failures are reproducible.
pub const T0: i64 = 1_767_225_600_000;
/// An id no check ever creates, for `NotFound` checks.
pub const UNKNOWN_ID: i64 = 1_000_000_007;

/// Every check, by name.
pub const CHECKS: &[(&str, Check)] = &[
    ("empty_outbox", empty_outbox),
    (
        "due_offers_each_endpoints_oldest",
        due_offers_each_endpoints_oldest,
    ),
    ("due_respects_limit", due_respects_limit),
    (
        "head_in_backoff_blocks_its_endpoint",
        head_in_backoff_blocks_its_endpoint,
    ),
    ("record_attempt_bookkeeping", record_attempt_bookkeeping),
    ("queued_runs_in_order", queued_runs_in_order),
    ("record_attempts_in_order", record_attempts_in_order),
    (
        "dead_letter_unblocks_and_lists",
        dead_letter_unblocks_and_lists,
    ),
    ("failing_since", failing_since),
    (
        "disable_dead_letters_and_hides",
        disable_dead_letters_and_hides,
    ),
    ("redrive_in_original_order", redrive_in_original_order),
    ("records_never_resurrect", records_never_resurrect),
    ("not_found_everywhere", not_found_everywhere),
    (
        "matches_model_on_random_sequences",
        matches_model_on_random_sequences,
    ),
];

/// Runs every check, each on a fresh outbox from `make`.
pub fn run_all(make: &dyn Fn() -> Box<dyn Seed>) {
    for (name, check) in CHECKS {
        let outbox = make();
        // Names the failing check in the output; the panic itself carries the detail.
        eprintln!("webhook conformance: {name}");
        check(&*outbox);
    }
}

/// Event number `n`, with an id that sorts by `n`.
pub fn event(n: u32) -> Event {
    Event {
        id: format!("evt_{n:032}"),
        r#type: types::CASE_UPDATED.to_owned(),
        created_at: T0 / 1000,
        data: json!({ "n": n, "text": "it's 名 🚀" }),
    }
}

/// An attempt record at `at_ms` with `outcome`.
pub fn record(at_ms: i64, outcome: Outcome) -> AttemptRecord {
    AttemptRecord {
        at_ms,
        status: match outcome {
            Outcome::Delivered => Some(200),
            Outcome::Gone => Some(410),
            Outcome::Retry => Some(500),
        },
        latency_ms: 3,
        response_excerpt: "ok \u{fffd}".to_owned(),
        error: (outcome == Outcome::Retry).then(|| "HTTP 500".to_owned()),
        outcome,
    }
}

fn due_ids(o: &dyn Seed, now_ms: i64) -> Vec<DeliveryId> {
    o.due(now_ms, 1000)
        .unwrap()
        .iter()
        .map(|p| p.delivery_id)
        .collect()
}

fn endpoint(o: &dyn Seed, name: &str) -> EndpointId {
    o.add_endpoint(
        &format!("http://127.0.0.1:9/{name}"),
        vec![Secret::new(format!("whsec_{name}"))],
    )
}

fn deliver(o: &dyn Seed, id: DeliveryId, at: i64) {
    o.record_attempt(id, &record(at, Outcome::Delivered), Next::Delivered)
        .unwrap();
}

/// A new outbox offers nothing and counts nothing.
pub fn empty_outbox(o: &dyn Seed) {
    assert!(o.due(i64::MAX, 1000).unwrap().is_empty());
    assert_eq!(o.disabled_endpoints().unwrap(), 0);
    let e = endpoint(o, "a");
    assert!(
        o.due(i64::MAX, 1000).unwrap().is_empty(),
        "endpoint without events"
    );
    assert!(o.dead_letters(e).unwrap().is_empty());
    assert_eq!(o.endpoint_failing_since(e).unwrap(), None);
    assert_eq!(o.endpoint_status(e).unwrap(), (true, None));
}

/// `due` offers exactly each endpoint's oldest pending delivery, with all its fields, oldest
/// delivery id first; nothing before its due time.
pub fn due_offers_each_endpoints_oldest(o: &dyn Seed) {
    let a = endpoint(o, "a");
    let b = endpoint(o, "b");
    let rotated = o.add_endpoint(
        "https://example.invalid/hook?x=1",
        vec![Secret::new("whsec_new"), Secret::new("whsec_old")],
    );
    let b1 = o.enqueue(b, &event(1), T0);
    let a1 = o.enqueue(a, &event(2), T0 + 5);
    let _b2 = o.enqueue(b, &event(3), T0);
    let _a2 = o.enqueue(a, &event(4), T0);
    let r1 = o.enqueue(rotated, &event(5), T0 + 10);
    assert!(b1 < a1 && a1 < r1, "ids increase in write order");
    assert_eq!(due_ids(o, T0 - 1), Vec::<DeliveryId>::new());
    assert_eq!(due_ids(o, T0), vec![b1], "a1 and r1 are not due yet");
    assert_eq!(due_ids(o, T0 + 5), vec![b1, a1]);
    let due = o.due(T0 + 10, 1000).unwrap();
    assert_eq!(
        due.iter().map(|p| p.delivery_id).collect::<Vec<_>>(),
        vec![b1, a1, r1]
    );
    let p = &due[2];
    assert_eq!(p.endpoint_id, rotated);
    assert_eq!(p.url, "https://example.invalid/hook?x=1");
    assert_eq!(
        p.secrets,
        vec![Secret::new("whsec_new"), Secret::new("whsec_old")]
    );
    assert_eq!(p.event_id, event(5).id);
    assert_eq!(p.event_type, types::CASE_UPDATED);
    assert_eq!(p.body, event(5).to_body().unwrap(), "body bytes round-trip");
    assert_eq!(p.first_attempt_at_ms, None);
    assert_eq!(p.attempts, 0);
}

/// `limit` caps the answer, keeping the oldest.
pub fn due_respects_limit(o: &dyn Seed) {
    let ids: Vec<DeliveryId> = (0..5)
        .map(|n| {
            let e = endpoint(o, &format!("e{n}"));
            o.enqueue(e, &event(n), T0)
        })
        .collect();
    let got: Vec<DeliveryId> = o
        .due(T0, 3)
        .unwrap()
        .iter()
        .map(|p| p.delivery_id)
        .collect();
    assert_eq!(got, ids[..3]);
    assert!(o.due(T0, 0).unwrap().is_empty());
}

/// A head delivery waiting for its retry time holds back every later delivery of its endpoint
/// (a later event never overtakes an earlier one), but not other endpoints.
pub fn head_in_backoff_blocks_its_endpoint(o: &dyn Seed) {
    let a = endpoint(o, "a");
    let b = endpoint(o, "b");
    let a1 = o.enqueue(a, &event(1), T0);
    let a2 = o.enqueue(a, &event(2), T0);
    let b1 = o.enqueue(b, &event(3), T0);
    o.record_attempt(a1, &record(T0, Outcome::Retry), Next::RetryAt(T0 + 1000))
        .unwrap();
    assert_eq!(due_ids(o, T0 + 999), vec![b1], "a2 must wait behind a1");
    assert_eq!(due_ids(o, T0 + 1000), vec![a1, b1]);
    deliver(o, a1, T0 + 1000);
    assert_eq!(due_ids(o, T0 + 1000), vec![a2, b1]);
}

/// Attempts are counted and logged in order; the first-attempt time is set once.
pub fn record_attempt_bookkeeping(o: &dyn Seed) {
    let a = endpoint(o, "a");
    let a1 = o.enqueue(a, &event(1), T0);
    let first = record(T0 + 7, Outcome::Retry);
    o.record_attempt(a1, &first, Next::RetryAt(T0 + 100))
        .unwrap();
    let second = AttemptRecord {
        status: None,
        error: Some("connect: connection refused".into()),
        response_excerpt: String::new(),
        ..record(T0 + 100, Outcome::Retry)
    };
    o.record_attempt(a1, &second, Next::RetryAt(T0 + 300))
        .unwrap();
    let p = &o.due(T0 + 300, 10).unwrap()[0];
    assert_eq!(p.delivery_id, a1);
    assert_eq!(p.attempts, 2);
    assert_eq!(p.first_attempt_at_ms, Some(T0 + 7));
    let third = record(T0 + 300, Outcome::Delivered);
    o.record_attempt(a1, &third, Next::Delivered).unwrap();
    assert_eq!(o.attempts(a1).unwrap(), vec![first, second, third]);
    assert!(o.due(i64::MAX, 10).unwrap().is_empty(), "delivered is done");
    assert!(o.dead_letters(a).unwrap().is_empty());
}

/// `queued` offers an endpoint's pending deliveries behind a given one, in order, only its
/// own, up to the limit, and stops at the first not yet due; nothing for a disabled endpoint.
pub fn queued_runs_in_order(o: &dyn Seed) {
    let a = endpoint(o, "a");
    let b = endpoint(o, "b");
    let a1 = o.enqueue(a, &event(1), T0);
    let b1 = o.enqueue(b, &event(2), T0);
    let a2 = o.enqueue(a, &event(3), T0);
    let a3 = o.enqueue(a, &event(4), T0 + 10);
    let a4 = o.enqueue(a, &event(5), T0);
    let ids = |v: Vec<Pending>| v.iter().map(|p| p.delivery_id).collect::<Vec<_>>();
    assert_eq!(ids(o.queued(a, a1, T0 + 10, 10).unwrap()), vec![a2, a3, a4]);
    assert_eq!(
        ids(o.queued(a, a1, T0 + 10, 2).unwrap()),
        vec![a2, a3],
        "limit"
    );
    assert_eq!(
        ids(o.queued(a, a1, T0, 10).unwrap()),
        vec![a2],
        "a3 is not due at T0, so the run stops before it (a4 must not overtake it)"
    );
    assert_eq!(ids(o.queued(b, b1, T0 + 10, 10).unwrap()), Vec::new());
    let p = &o.queued(a, a2, T0 + 10, 1).unwrap()[0];
    assert_eq!(p.endpoint_id, a);
    assert_eq!(p.event_id, event(4).id);
    assert_eq!(p.body, event(4).to_body().unwrap());
    assert_eq!(p.attempts, 0);
    deliver(o, a2, T0 + 10);
    assert_eq!(
        ids(o.queued(a, a1, T0 + 10, 10).unwrap()),
        vec![a3, a4],
        "a delivered one is not queued"
    );
    o.disable_endpoint(a, "test", T0 + 20).unwrap();
    assert!(o.queued(a, a1, T0 + 20, 10).unwrap().is_empty(), "disabled");
}

/// `record_attempts` applies each record in order, as `record_attempt` would one by one.
pub fn record_attempts_in_order(o: &dyn Seed) {
    let a = endpoint(o, "a");
    let a1 = o.enqueue(a, &event(1), T0);
    let a2 = o.enqueue(a, &event(2), T0);
    let a3 = o.enqueue(a, &event(3), T0);
    o.record_attempts(&[
        (a1, record(T0 + 1, Outcome::Delivered), Next::Delivered),
        (a2, record(T0 + 2, Outcome::Delivered), Next::Delivered),
        (a3, record(T0 + 3, Outcome::Retry), Next::RetryAt(T0 + 500)),
    ])
    .unwrap();
    assert_eq!(
        o.attempts(a2).unwrap(),
        vec![record(T0 + 2, Outcome::Delivered)]
    );
    assert!(o.due(T0 + 499, 10).unwrap().is_empty(), "a3 in backoff");
    let p = &o.due(T0 + 500, 10).unwrap()[0];
    assert_eq!((p.delivery_id, p.attempts), (a3, 1));
    assert_eq!(
        o.endpoint_failing_since(a).unwrap(),
        Some(T0 + 3),
        "the last record of the run failed"
    );
    o.record_attempts(&[]).unwrap();
}

/// A dead delivery stops blocking its endpoint and is listed with its attempts.
pub fn dead_letter_unblocks_and_lists(o: &dyn Seed) {
    let a = endpoint(o, "a");
    let a1 = o.enqueue(a, &event(1), T0);
    let a2 = o.enqueue(a, &event(2), T0);
    o.record_attempt(a1, &record(T0, Outcome::Retry), Next::RetryAt(T0 + 10))
        .unwrap();
    o.record_attempt(a1, &record(T0 + 10, Outcome::Retry), Next::Dead)
        .unwrap();
    assert_eq!(due_ids(o, T0 + 10), vec![a2]);
    let dead = o.dead_letters(a).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].delivery_id, a1);
    assert_eq!(dead[0].event_id, event(1).id);
    assert_eq!(dead[0].event_type, types::CASE_UPDATED);
    assert_eq!(dead[0].attempts, 2);
    assert_eq!(dead[0].first_attempt_at_ms, Some(T0));
    assert_eq!(
        o.endpoint_status(a).unwrap(),
        (true, None),
        "dead letters do not disable"
    );
}

/// Failing-since is set by the first failure, kept by later ones, cleared by a delivery; a
/// 410 counts as a failure.
pub fn failing_since(o: &dyn Seed) {
    let a = endpoint(o, "a");
    let b = endpoint(o, "b");
    let a1 = o.enqueue(a, &event(1), T0);
    let a2 = o.enqueue(a, &event(2), T0);
    let b1 = o.enqueue(b, &event(3), T0);
    o.record_attempt(a1, &record(T0 + 5, Outcome::Retry), Next::RetryAt(T0 + 6))
        .unwrap();
    assert_eq!(o.endpoint_failing_since(a).unwrap(), Some(T0 + 5));
    assert_eq!(o.endpoint_failing_since(b).unwrap(), None, "per endpoint");
    o.record_attempt(a1, &record(T0 + 6, Outcome::Retry), Next::Dead)
        .unwrap();
    o.record_attempt(a2, &record(T0 + 9, Outcome::Retry), Next::RetryAt(T0 + 20))
        .unwrap();
    assert_eq!(o.endpoint_failing_since(a).unwrap(), Some(T0 + 5), "kept");
    deliver(o, a2, T0 + 20);
    assert_eq!(o.endpoint_failing_since(a).unwrap(), None, "cleared");
    o.record_attempt(b1, &record(T0 + 30, Outcome::Gone), Next::Dead)
        .unwrap();
    assert_eq!(o.endpoint_failing_since(b).unwrap(), Some(T0 + 30));
}

/// Disabling dead-letters every pending delivery of the endpoint, hides it from `due`, counts
/// it, keeps its reason; enabling brings new deliveries back but not the dead letters.
pub fn disable_dead_letters_and_hides(o: &dyn Seed) {
    let a = endpoint(o, "a");
    let b = endpoint(o, "b");
    let a1 = o.enqueue(a, &event(1), T0);
    let a2 = o.enqueue(a, &event(2), T0);
    let a3 = o.enqueue(a, &event(3), T0 + 1_000_000);
    let b1 = o.enqueue(b, &event(4), T0);
    deliver(o, a1, T0);
    o.record_attempt(a2, &record(T0, Outcome::Retry), Next::RetryAt(T0 + 10))
        .unwrap();
    assert_eq!(o.disable_endpoint(a, "410 Gone", T0 + 1).unwrap(), 2);
    assert_eq!(
        o.endpoint_status(a).unwrap(),
        (false, Some("410 Gone".into()))
    );
    assert_eq!(o.disabled_endpoints().unwrap(), 1);
    assert_eq!(due_ids(o, i64::MAX), vec![b1]);
    let dead: Vec<DeliveryId> = o
        .dead_letters(a)
        .unwrap()
        .iter()
        .map(|d| d.delivery_id)
        .collect();
    assert_eq!(dead, vec![a2, a3], "the delivered one is not a dead letter");
    // Idempotent: same reason kept, nothing more to dead-letter.
    assert_eq!(o.disable_endpoint(a, "again", T0 + 2).unwrap(), 0);
    assert_eq!(
        o.endpoint_status(a).unwrap(),
        (false, Some("410 Gone".into()))
    );
    assert_eq!(o.disabled_endpoints().unwrap(), 1);
    o.enable_endpoint(a).unwrap();
    assert_eq!(o.endpoint_status(a).unwrap(), (true, None));
    assert_eq!(o.endpoint_failing_since(a).unwrap(), None, "enable clears");
    assert_eq!(o.disabled_endpoints().unwrap(), 0);
    assert_eq!(due_ids(o, i64::MAX), vec![b1], "dead letters stay dead");
    let a4 = o.enqueue(a, &event(5), T0 + 3);
    assert_eq!(due_ids(o, T0 + 3), vec![b1, a4]);
}

/// A redrive puts chosen dead letters back, reset and due now, ahead of later pending
/// deliveries, in their original order; it skips other endpoints' and live deliveries.
pub fn redrive_in_original_order(o: &dyn Seed) {
    let a = endpoint(o, "a");
    let b = endpoint(o, "b");
    let ids: Vec<DeliveryId> = (1..=3).map(|n| o.enqueue(a, &event(n), T0)).collect();
    let b1 = o.enqueue(b, &event(9), T0);
    o.record_attempt(ids[0], &record(T0, Outcome::Retry), Next::RetryAt(T0 + 5))
        .unwrap();
    o.record_attempt(b1, &record(T0, Outcome::Retry), Next::Dead)
        .unwrap();
    assert_eq!(o.disable_endpoint(a, "failing", T0 + 1).unwrap(), 3);
    o.enable_endpoint(a).unwrap();
    let a4 = o.enqueue(a, &event(4), T0 + 2);
    // Not dead (a4), another endpoint's (b1), unknown: all skipped.
    let skipped = Redrive::Only(vec![a4, b1, DeliveryId(UNKNOWN_ID)]);
    assert_eq!(o.redrive(a, &skipped, T0 + 3).unwrap(), 0);
    let only = Redrive::Only(vec![ids[2], ids[0]]);
    assert_eq!(o.redrive(a, &only, T0 + 100).unwrap(), 2);
    assert!(
        due_ids(o, T0 + 99).is_empty(),
        "the redriven head is due at the redrive time, and a4 waits behind it"
    );
    let due = o.due(T0 + 100, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].delivery_id, ids[0], "oldest first, ahead of a4");
    assert_eq!(due[0].attempts, 0, "attempts reset");
    assert_eq!(due[0].first_attempt_at_ms, None, "horizon restarts");
    assert_eq!(o.attempts(ids[0]).unwrap().len(), 1, "the log is kept");
    deliver(o, ids[0], T0 + 100);
    assert_eq!(due_ids(o, T0 + 100), vec![ids[2]], "ids[1] is still dead");
    deliver(o, ids[2], T0 + 101);
    assert_eq!(due_ids(o, T0 + 101), vec![a4]);
    assert_eq!(o.redrive(a, &Redrive::All, T0 + 102).unwrap(), 1);
    assert_eq!(due_ids(o, T0 + 102), vec![ids[1]], "ahead of a4 again");
    assert!(o.dead_letters(a).unwrap().is_empty());
    assert_eq!(o.dead_letters(b).unwrap().len(), 1, "b untouched");
}

/// An attempt recorded after its delivery was dead-lettered (it was in flight when the
/// endpoint was disabled) is logged but does not make it pending again; a 2xx still counts.
pub fn records_never_resurrect(o: &dyn Seed) {
    let a = endpoint(o, "a");
    let a1 = o.enqueue(a, &event(1), T0);
    let a2 = o.enqueue(a, &event(2), T0);
    o.disable_endpoint(a, "operator", T0).unwrap();
    o.enable_endpoint(a).unwrap();
    o.record_attempt(a1, &record(T0 + 1, Outcome::Retry), Next::RetryAt(T0 + 2))
        .unwrap();
    assert!(due_ids(o, i64::MAX).is_empty(), "a1 stays dead");
    assert_eq!(
        o.attempts(a1).unwrap().len(),
        1,
        "but the attempt is logged"
    );
    deliver(o, a2, T0 + 1);
    let dead: Vec<DeliveryId> = o
        .dead_letters(a)
        .unwrap()
        .iter()
        .map(|d| d.delivery_id)
        .collect();
    assert_eq!(dead, vec![a1], "the receiver had a2, so it is delivered");
}

/// Unknown ids are `NotFound`, never silently empty.
pub fn not_found_everywhere(o: &dyn Seed) {
    let e = EndpointId(UNKNOWN_ID);
    let d = DeliveryId(UNKNOWN_ID);
    let nf = |r: Result<(), Error>, what: &str| {
        assert!(
            matches!(r, Err(Error::NotFound { .. })),
            "{what}: {r:?} is not NotFound"
        );
    };
    nf(
        o.record_attempt(d, &record(T0, Outcome::Retry), Next::Dead),
        "record_attempt",
    );
    nf(o.attempts(d).map(drop), "attempts");
    nf(o.queued(e, d, T0, 10).map(drop), "queued");
    nf(
        o.record_attempts(&[(d, record(T0, Outcome::Retry), Next::Dead)]),
        "record_attempts",
    );
    nf(
        o.endpoint_failing_since(e).map(drop),
        "endpoint_failing_since",
    );
    nf(o.disable_endpoint(e, "x", T0).map(drop), "disable_endpoint");
    nf(o.enable_endpoint(e), "enable_endpoint");
    nf(o.endpoint_status(e).map(drop), "endpoint_status");
    nf(o.dead_letters(e).map(drop), "dead_letters");
    nf(o.redrive(e, &Redrive::All, T0).map(drop), "redrive");
    assert_eq!(
        o.disabled_endpoints().unwrap(),
        0,
        "failed calls change nothing"
    );
}

/// Seeds of [`matches_model_on_random_sequences`]; fixed so a failure reproduces.
pub const MODEL_SEEDS: std::ops::Range<u64> = 0..16;
/// Operations per seed.
pub const MODEL_OPS: usize = 150;

/// One side of the comparison: an outbox and its own ids for the shared endpoints and events.
struct Side<'a> {
    outbox: &'a dyn Seed,
    endpoints: Vec<EndpointId>,
    deliveries: HashMap<String, DeliveryId>,
}

impl Side<'_> {
    /// `due` with the implementation's ids replaced by the shared names (endpoint index,
    /// event id), so two implementations that number rows differently still compare equal.
    fn due(&self, now_ms: i64, limit: usize) -> Vec<(usize, String, Pending)> {
        self.outbox
            .due(now_ms, limit)
            .unwrap()
            .into_iter()
            .map(|mut p| {
                let index = self.endpoint_index(p.endpoint_id);
                p.delivery_id = DeliveryId(0);
                p.endpoint_id = EndpointId(0);
                (index, p.event_id.clone(), p)
            })
            .collect()
    }

    fn endpoint_index(&self, id: EndpointId) -> usize {
        self.endpoints.iter().position(|&e| e == id).unwrap()
    }

    fn dead(&self, endpoint: usize) -> Vec<(String, u32, Option<i64>)> {
        self.outbox
            .dead_letters(self.endpoints[endpoint])
            .unwrap()
            .into_iter()
            .map(|d: DeadLetter| (d.event_id, d.attempts, d.first_attempt_at_ms))
            .collect()
    }

    fn observe(&self, endpoint: usize) -> impl PartialEq + std::fmt::Debug {
        let e = self.endpoints[endpoint];
        (
            self.dead(endpoint),
            self.outbox.endpoint_failing_since(e).unwrap(),
            self.outbox.endpoint_status(e).unwrap(),
            self.outbox.disabled_endpoints().unwrap(),
        )
    }
}

/// Random sequences of writes, attempts, disables, enables and redrives, applied to the outbox
/// under test and to [`MemoryOutbox`]: every observable answer must agree (ids aside, which
/// are compared through the endpoints' creation order and the events' ids).
pub fn matches_model_on_random_sequences(o: &dyn Seed) {
    // One outbox for all seeds (the suite hands each check one): each seed continues where the
    // last left off, on both sides, so the whole run is one reproducible sequence.
    let model = MemoryOutbox::new();
    let mut sides = [
        Side {
            outbox: o,
            endpoints: Vec::new(),
            deliveries: HashMap::new(),
        },
        Side {
            outbox: &model,
            endpoints: Vec::new(),
            deliveries: HashMap::new(),
        },
    ];
    let mut events: Vec<String> = Vec::new();
    let mut event_endpoint: HashMap<String, usize> = HashMap::new();
    let mut now = T0;
    for seed in MODEL_SEEDS {
        let mut rng = StdRng::seed_from_u64(seed);
        for step in 0..MODEL_OPS {
            let ctx = format!("seed {seed} step {step}");
            now += rng.random_range(0..50);
            let endpoints = sides[0].endpoints.len();
            // The endpoint this step touched, compared in full below; every endpoint is
            // compared at the end of each seed (comparing all after every step is quadratic).
            let mut touched = None;
            match rng.random_range(0..100) {
                0..10 => {
                    let name = format!("s{seed}e{endpoints}");
                    for side in &mut sides {
                        let id = endpoint(side.outbox, &name);
                        side.endpoints.push(id);
                    }
                    touched = Some(endpoints);
                }
                10..40 if endpoints > 0 => {
                    let e = rng.random_range(0..endpoints);
                    let mut ev = event(u32::try_from(events.len()).unwrap());
                    ev.id = format!("evt_s{seed}_{}", events.len());
                    let at = now + rng.random_range(0..100);
                    for side in &mut sides {
                        let d = side.outbox.enqueue(side.endpoints[e], &ev, at);
                        side.deliveries.insert(ev.id.clone(), d);
                    }
                    event_endpoint.insert(ev.id.clone(), e);
                    events.push(ev.id);
                }
                40..75 => {
                    let limit = rng.random_range(0..6);
                    let due = sides[1].due(now, limit);
                    assert_eq!(sides[0].due(now, limit), due, "due: {ctx}");
                    if let Some((e, event_id, _)) = due.first() {
                        touched = Some(*e);
                        let outcome = match rng.random_range(0..10) {
                            0..5 => Outcome::Retry,
                            5..9 => Outcome::Delivered,
                            _ => Outcome::Gone,
                        };
                        let next = match outcome {
                            Outcome::Delivered => Next::Delivered,
                            Outcome::Gone => Next::Dead,
                            Outcome::Retry if rng.random_bool(0.2) => Next::Dead,
                            Outcome::Retry => Next::RetryAt(now + rng.random_range(1..200)),
                        };
                        let rec = record(now, outcome);
                        for side in &sides {
                            side.outbox
                                .record_attempt(side.deliveries[event_id], &rec, next)
                                .unwrap();
                        }
                    }
                }
                75..80 if !events.is_empty() => {
                    // A late record for any delivery (one that was in flight when its
                    // endpoint was disabled, or a duplicate): must not resurrect.
                    let event_id = &events[rng.random_range(0..events.len())];
                    touched = Some(event_endpoint[event_id]);
                    let (rec, next) = if rng.random_bool(0.5) {
                        (record(now, Outcome::Retry), Next::RetryAt(now + 10))
                    } else {
                        (record(now, Outcome::Delivered), Next::Delivered)
                    };
                    for side in &sides {
                        side.outbox
                            .record_attempt(side.deliveries[event_id], &rec, next)
                            .unwrap();
                    }
                }
                80..86 if endpoints > 0 => {
                    let e = rng.random_range(0..endpoints);
                    touched = Some(e);
                    let counts: Vec<usize> = sides
                        .iter()
                        .map(|s| {
                            s.outbox
                                .disable_endpoint(s.endpoints[e], "random", now)
                                .unwrap()
                        })
                        .collect();
                    assert_eq!(counts[0], counts[1], "disable count: {ctx}");
                }
                86..91 if endpoints > 0 => {
                    let e = rng.random_range(0..endpoints);
                    touched = Some(e);
                    for side in &sides {
                        side.outbox.enable_endpoint(side.endpoints[e]).unwrap();
                    }
                }
                91..100 if endpoints > 0 => {
                    let e = rng.random_range(0..endpoints);
                    touched = Some(e);
                    let chosen: Vec<&String> =
                        events.iter().filter(|_| rng.random_bool(0.3)).collect();
                    let all = rng.random_bool(0.3);
                    let counts: Vec<usize> = sides
                        .iter()
                        .map(|s| {
                            let which = if all {
                                Redrive::All
                            } else {
                                Redrive::Only(chosen.iter().map(|id| s.deliveries[*id]).collect())
                            };
                            s.outbox.redrive(s.endpoints[e], &which, now).unwrap()
                        })
                        .collect();
                    assert_eq!(counts[0], counts[1], "redrive count: {ctx}");
                }
                _ => {}
            }
            if let Some(e) = touched {
                assert_eq!(
                    sides[0].observe(e),
                    sides[1].observe(e),
                    "endpoint {e}: {ctx}"
                );
            }
        }
        for e in 0..sides[0].endpoints.len() {
            assert_eq!(
                sides[0].observe(e),
                sides[1].observe(e),
                "endpoint {e}: seed {seed}"
            );
        }
    }
    for event_id in &events {
        let logs: Vec<Vec<AttemptRecord>> = sides
            .iter()
            .map(|s| s.outbox.attempts(s.deliveries[event_id]).unwrap())
            .collect();
        assert_eq!(logs[0], logs[1], "attempt log of {event_id}");
    }
}
