//! Webhooks that are never lost: signed events, a retry schedule, and a dispatcher that drains
//! a transactional outbox.
//!
//! The pieces, in the order an event meets them:
//! - [`event`]: the event a platform receives (`{"id","type","created_at","data"}`) and its
//!   time-ordered id (`evt_` + a UUIDv7).
//! - [`outbox`]: the [`Outbox`] trait, the contract the store keeps. The store writes an event's
//!   deliveries in the same transaction as the change the event describes; the dispatcher only
//!   reads what is due and records what happened.
//! - [`signature`]: `Safeguard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
//!   `"<t>.<raw body>"`, and [`verify`] for receivers (and tests) with a 5-minute tolerance.
//! - [`attempt`](mod@attempt): one HTTP POST of one delivery, classified as delivered, retry,
//!   or gone (410).
//! - [`schedule`]: exponential backoff with full jitter up to a horizon, after which a delivery
//!   is dead-lettered.
//! - [`dispatcher`]: the loop that sends what is due, concurrently across endpoints and one at a
//!   time within an endpoint, and disables endpoints that keep failing.
//!
//! Delivery is at least once: a crash between a receiver's 2xx and the store's record sends the
//! event again, so receivers deduplicate by event id. Within one endpoint an event is never
//! sent before an earlier one has been delivered or dead-lettered.
//!
//! With the `test-support` feature the crate also carries [`MemoryOutbox`] (the contract as
//! plain in-memory code) and [`conformance`], the checks every `Outbox` implementation runs.

#![forbid(unsafe_code)]

pub mod attempt;
#[cfg(feature = "test-support")]
pub mod conformance;
pub mod dispatcher;
pub mod event;
#[cfg(feature = "test-support")]
mod memory;
pub mod outbox;
pub mod schedule;
pub mod signature;

pub use attempt::{attempt, default_client, AttemptRecord, Outcome};
pub use dispatcher::{Config, Dispatcher, Metrics, MetricsSnapshot};
pub use event::Event;
#[cfg(feature = "test-support")]
pub use memory::{DeliveryState, MemoryOutbox};
pub use outbox::{DeadLetter, DeliveryId, EndpointId, Next, Outbox, Pending, Redrive};
pub use schedule::Schedule;
pub use signature::{generate_secret, sign, verify, Secret, VerifyError, DEFAULT_TOLERANCE};

/// What can go wrong in the dispatcher and the outbox.
///
/// Signature verification has its own error, [`VerifyError`]: it is what a receiver calls, and
/// a receiver matching on the reason (malformed, stale, bad signature) should not have to
/// handle store and configuration failures that cannot happen there.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range; the message says which and why.
    #[error("invalid webhook configuration: {0}")]
    InvalidConfig(String),
    /// The outbox has no delivery or endpoint with this id.
    #[error("{what} {id} not found")]
    NotFound {
        /// `"delivery"` or `"endpoint"`.
        what: &'static str,
        /// The id asked for.
        id: i64,
    },
    /// The store behind the outbox failed; the source carries its own error.
    #[error("outbox store failed")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An event could not be serialised (a `data` value serde_json refuses).
    #[error("event could not be serialised")]
    Serialise(#[source] serde_json::Error),
    /// A blocking outbox call or a delivery task panicked; the dispatcher keeps no partial
    /// state, so the next pass starts clean.
    #[error("dispatcher task failed: {0}")]
    Task(String),
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The current time as unix milliseconds, the unit of every time in the outbox.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        // A clock before 1970 is a broken host; 0 makes every delivery due, which is safe.
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
