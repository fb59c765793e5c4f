//! The outbox: what the store must do for the dispatcher.
//!
//! The store owns two kinds of rows. An **endpoint** (url, secrets, enabled flag, and the time
//! it started failing) and a **delivery**: one event for one endpoint, with its body, its
//! attempt count and log, the time of its first attempt, when it is next due, and a state:
//! pending, delivered or dead. Deliveries are written in the same transaction as the change
//! their event describes (that writing side is the store's own API, outside this trait), so a
//! committed change always has its deliveries and a rolled-back one has none.
//!
//! Delivery ids are assigned in write order, and that order is the delivery order within an
//! endpoint: [`Outbox::due`] offers only an endpoint's oldest pending delivery, so a later
//! event never overtakes an earlier one. A dead-lettered delivery stops blocking its
//! endpoint; when redriven it takes its original place again (before later pending ones).
//!
//! The methods are synchronous, like `safeguard_store::Store`: the SQLite implementation does
//! blocking I/O, and the dispatcher calls every method through `tokio::task::spawn_blocking`,
//! so neither side needs an async runtime inside the store. Each method is one transaction.
//! All times are unix milliseconds.

use std::fmt;

use crate::attempt::AttemptRecord;
use crate::signature::Secret;
use crate::Result;

/// Identifies an endpoint in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointId(pub i64);

/// Identifies one delivery (one event for one endpoint). Ids increase in write order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeliveryId(pub i64);

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A delivery that is due now, with everything needed to send it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// Its endpoint.
    pub endpoint_id: EndpointId,
    /// Where to POST it.
    pub url: String,
    /// The endpoint's live secrets, the current one first; during a rotation the old one
    /// follows until it expires. Never empty.
    pub secrets: Vec<Secret>,
    /// The event's id (`evt_…`), sent as `Safeguard-Event-Id`.
    pub event_id: String,
    /// The event's type, sent as `Safeguard-Event-Type`.
    pub event_type: String,
    /// The exact serialised event; signed and sent unchanged on every attempt.
    pub body: Vec<u8>,
    /// When the first attempt was made; `None` before it (and again after a redrive).
    pub first_attempt_at_ms: Option<i64>,
    /// Attempts made so far (reset to 0 by a redrive).
    pub attempts: u32,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The endpoint answered 2xx; the delivery is done.
    Delivered,
    /// Try again at this time (unix ms).
    RetryAt(i64),
    /// Give up: the dead-letter list, until redriven.
    Dead,
}

/// A dead-lettered delivery, as the dead-letter list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// Attempts made before it was given up.
    pub attempts: u32,
    /// When the first of them was made (`None` if the endpoint was disabled before any).
    pub first_attempt_at_ms: Option<i64>,
}

/// Which dead letters a redrive puts back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redrive {
    /// Every dead letter of the endpoint.
    All,
    /// These deliveries; ids that are not dead letters of the endpoint are skipped.
    Only(Vec<DeliveryId>),
}

/// The contract between the dispatcher and the store. See the module docs for the model.
///
/// Every method taking an endpoint or delivery id answers
/// [`Error::NotFound`](crate::Error::NotFound) for an id the store does not have.
pub trait Outbox: Send + Sync {
    /// Deliveries due at `now_ms`: for each **enabled** endpoint, its oldest pending delivery
    /// (lowest id that is neither delivered nor dead), and only if that delivery's next attempt
    /// time is at or before `now_ms`. At most `limit`, oldest delivery id first.
    fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Pending>>;

    /// The endpoint's pending deliveries queued behind `after`, lowest id first: at most
    /// `limit`, stopping before the first one not due at `now_ms`. Empty if the endpoint is
    /// disabled. The dispatcher sends them, one at a time and in this order, right after
    /// `after` succeeded, so a busy endpoint costs one query per run rather than per event.
    fn queued(
        &self,
        endpoint_id: EndpointId,
        after: DeliveryId,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Pending>>;

    /// Records one attempt and its consequence, in one transaction:
    /// - appends `attempt` to the delivery's log and adds one to its attempt count;
    /// - sets its first-attempt time to `attempt.at_ms` if it had none;
    /// - applies `next` (delivered, due again at a time, or dead); `RetryAt` and `Dead` change
    ///   only a pending delivery, `Delivered` always applies (the receiver has it);
    /// - keeps the endpoint's failing-since time: cleared by `Delivered`, otherwise set to
    ///   `attempt.at_ms` if it was clear.
    ///
    /// An unknown delivery is [`Error::NotFound`](crate::Error::NotFound).
    fn record_attempt(
        &self,
        delivery_id: DeliveryId,
        attempt: &AttemptRecord,
        next: Next,
    ) -> Result<()>;

    /// Records several attempts, in order, each as [`Outbox::record_attempt`] would. A store
    /// should make it one transaction (the point: one commit for a run of deliveries); this
    /// default records them one by one.
    fn record_attempts(&self, batch: &[(DeliveryId, AttemptRecord, Next)]) -> Result<()> {
        for (delivery_id, attempt, next) in batch {
            self.record_attempt(*delivery_id, attempt, *next)?;
        }
        Ok(())
    }

    /// The attempts of one delivery, oldest first.
    fn attempts(&self, delivery_id: DeliveryId) -> Result<Vec<AttemptRecord>>;

    /// Since when the endpoint has been failing: the time of the first failed attempt after its
    /// last delivered one, or `None` if its last attempt succeeded (or it never had one).
    fn endpoint_failing_since(&self, endpoint_id: EndpointId) -> Result<Option<i64>>;

    /// Disables the endpoint with a reason and dead-letters all its pending deliveries, in one
    /// transaction. Returns how many were dead-lettered. Disabling a disabled endpoint keeps
    /// the first reason and dead-letters whatever is still pending for it.
    fn disable_endpoint(&self, endpoint_id: EndpointId, reason: &str, now_ms: i64)
        -> Result<usize>;

    /// Enables the endpoint again and clears its failing-since time and disable reason. Its
    /// dead letters stay dead until redriven.
    fn enable_endpoint(&self, endpoint_id: EndpointId) -> Result<()>;

    /// Whether the endpoint is enabled, and the reason it was disabled if not.
    fn endpoint_status(&self, endpoint_id: EndpointId) -> Result<(bool, Option<String>)>;

    /// How many endpoints are disabled, for the `disabled endpoints` metric.
    fn disabled_endpoints(&self) -> Result<u64>;

    /// The endpoint's dead letters, lowest delivery id first.
    fn dead_letters(&self, endpoint_id: EndpointId) -> Result<Vec<DeadLetter>>;

    /// Puts dead letters of the endpoint back: pending, attempt count 0, no first-attempt time,
    /// due at `now_ms`. They keep their ids, so they go out in their original order (and before
    /// later pending deliveries of the endpoint). Returns how many were put back. The attempt
    /// logs are kept.
    fn redrive(&self, endpoint_id: EndpointId, which: &Redrive, now_ms: i64) -> Result<usize>;
}
