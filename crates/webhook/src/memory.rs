//! [`MemoryOutbox`]: the [`Outbox`] contract as plain in-memory code.
//!
//! It is the reference the conformance suite is written against and what the dispatcher's
//! tests drive. Every method takes one lock for its whole work, which is this model's version
//! of "one transaction".

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use crate::attempt::AttemptRecord;
use crate::event::Event;
use crate::outbox::{DeadLetter, DeliveryId, EndpointId, Next, Outbox, Pending, Redrive};
use crate::signature::Secret;
use crate::{Error, Result};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not yet delivered; due at the time given (unix ms).
    Pending {
        /// When it is next due.
        next_attempt_at_ms: i64,
    },
    /// A 2xx was recorded.
    Delivered,
    /// In the dead-letter list.
    Dead,
}

#[derive(Debug)]
struct Endpoint {
    url: String,
    secrets: Vec<Secret>,
    enabled: bool,
    disabled_reason: Option<String>,
    failing_since_ms: Option<i64>,
}

#[derive(Debug)]
struct Delivery {
    endpoint: EndpointId,
    event_id: String,
    event_type: String,
    body: Vec<u8>,
    state: DeliveryState,
    attempts: u32,
    first_attempt_at_ms: Option<i64>,
    log: Vec<AttemptRecord>,
}

#[derive(Debug, Default)]
struct State {
    endpoints: BTreeMap<EndpointId, Endpoint>,
    /// Keyed by id, so iteration is write order: the delivery order within an endpoint.
    deliveries: BTreeMap<DeliveryId, Delivery>,
    next_endpoint: i64,
    next_delivery: i64,
}

/// An [`Outbox`] in memory, with the writer side ([`MemoryOutbox::add_endpoint`],
/// [`MemoryOutbox::enqueue`]) a store would do inside its transactions.
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    state: Mutex<State>,
}

fn endpoint_not_found(id: EndpointId) -> Error {
    Error::NotFound {
        what: "endpoint",
        id: id.0,
    }
}

fn delivery_not_found(id: DeliveryId) -> Error {
    Error::NotFound {
        what: "delivery",
        id: id.0,
    }
}

impl MemoryOutbox {
    /// An empty outbox.
    pub fn new() -> MemoryOutbox {
        MemoryOutbox::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves no half-applied change (every method checks
        // before it writes), so a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers an enabled endpoint; `secrets` is the current secret first.
    pub fn add_endpoint(&self, url: &str, secrets: Vec<Secret>) -> EndpointId {
        let mut state = self.lock();
        state.next_endpoint += 1;
        let id = EndpointId(state.next_endpoint);
        state.endpoints.insert(
            id,
            Endpoint {
                url: url.to_owned(),
                secrets,
                enabled: true,
                disabled_reason: None,
                failing_since_ms: None,
            },
        );
        id
    }

    /// Changes an endpoint's url (a receiver that moved).
    pub fn set_url(&self, endpoint: EndpointId, url: &str) -> Result<()> {
        let mut state = self.lock();
        let e = state
            .endpoints
            .get_mut(&endpoint)
            .ok_or_else(|| endpoint_not_found(endpoint))?;
        e.url = url.to_owned();
        Ok(())
    }

    /// Writes a delivery of `event` to `endpoint`, due at `now_ms`.
    pub fn enqueue(&self, endpoint: EndpointId, event: &Event, now_ms: i64) -> Result<DeliveryId> {
        let body = event.to_body()?;
        let mut state = self.lock();
        if !state.endpoints.contains_key(&endpoint) {
            return Err(endpoint_not_found(endpoint));
        }
        state.next_delivery += 1;
        let id = DeliveryId(state.next_delivery);
        state.deliveries.insert(
            id,
            Delivery {
                endpoint,
                event_id: event.id.clone(),
                event_type: event.r#type.clone(),
                body,
                state: DeliveryState::Pending {
                    next_attempt_at_ms: now_ms,
                },
                attempts: 0,
                first_attempt_at_ms: None,
                log: Vec::new(),
            },
        );
        Ok(id)
    }

    /// Where a delivery stands, or `None` for an unknown id.
    pub fn state(&self, delivery: DeliveryId) -> Option<DeliveryState> {
        self.lock().deliveries.get(&delivery).map(|d| d.state)
    }

    /// Number of deliveries not yet delivered nor dead.
    pub fn pending_count(&self) -> usize {
        self.lock()
            .deliveries
            .values()
            .filter(|d| matches!(d.state, DeliveryState::Pending { .. }))
            .count()
    }
}

impl Outbox for MemoryOutbox {
    fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Pending>> {
        let state = self.lock();
        let mut seen = std::collections::HashSet::new();
        let mut due = Vec::new();
        for (&id, d) in &state.deliveries {
            if due.len() >= limit {
                break;
            }
            let DeliveryState::Pending { next_attempt_at_ms } = d.state else {
                continue;
            };
            // The first pending delivery of an endpoint is its head; later ones wait for it
            // whether or not the head itself is due.
            if !seen.insert(d.endpoint) {
                continue;
            }
            let endpoint = &state.endpoints[&d.endpoint];
            if !endpoint.enabled || next_attempt_at_ms > now_ms {
                continue;
            }
            due.push(Pending {
                delivery_id: id,
                endpoint_id: d.endpoint,
                url: endpoint.url.clone(),
                secrets: endpoint.secrets.clone(),
                event_id: d.event_id.clone(),
                event_type: d.event_type.clone(),
                body: d.body.clone(),
                first_attempt_at_ms: d.first_attempt_at_ms,
                attempts: d.attempts,
            });
        }
        Ok(due)
    }

    fn queued(
        &self,
        endpoint_id: EndpointId,
        after: DeliveryId,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Pending>> {
        let state = self.lock();
        let endpoint = state
            .endpoints
            .get(&endpoint_id)
            .ok_or_else(|| endpoint_not_found(endpoint_id))?;
        if !endpoint.enabled {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let behind = (std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded);
        for (&id, d) in state.deliveries.range(behind) {
            if out.len() >= limit {
                break;
            }
            if d.endpoint != endpoint_id {
                continue;
            }
            let DeliveryState::Pending { next_attempt_at_ms } = d.state else {
                continue;
            };
            if next_attempt_at_ms > now_ms {
                break;
            }
            out.push(Pending {
                delivery_id: id,
                endpoint_id,
                url: endpoint.url.clone(),
                secrets: endpoint.secrets.clone(),
                event_id: d.event_id.clone(),
                event_type: d.event_type.clone(),
                body: d.body.clone(),
                first_attempt_at_ms: d.first_attempt_at_ms,
                attempts: d.attempts,
            });
        }
        Ok(out)
    }

    fn record_attempt(
        &self,
        delivery_id: DeliveryId,
        attempt: &AttemptRecord,
        next: Next,
    ) -> Result<()> {
        let mut state = self.lock();
        let d = state
            .deliveries
            .get_mut(&delivery_id)
            .ok_or_else(|| delivery_not_found(delivery_id))?;
        d.log.push(attempt.clone());
        d.attempts = d.attempts.saturating_add(1);
        d.first_attempt_at_ms.get_or_insert(attempt.at_ms);
        let pending = matches!(d.state, DeliveryState::Pending { .. });
        d.state = match next {
            Next::Delivered => DeliveryState::Delivered,
            Next::RetryAt(at) if pending => DeliveryState::Pending {
                next_attempt_at_ms: at,
            },
            Next::Dead if pending => DeliveryState::Dead,
            _ => d.state,
        };
        let endpoint = d.endpoint;
        let e = state
            .endpoints
            .get_mut(&endpoint)
            .ok_or_else(|| endpoint_not_found(endpoint))?;
        if next == Next::Delivered {
            e.failing_since_ms = None;
        } else {
            e.failing_since_ms.get_or_insert(attempt.at_ms);
        }
        Ok(())
    }

    fn attempts(&self, delivery_id: DeliveryId) -> Result<Vec<AttemptRecord>> {
        let state = self.lock();
        let d = state
            .deliveries
            .get(&delivery_id)
            .ok_or_else(|| delivery_not_found(delivery_id))?;
        Ok(d.log.clone())
    }

    fn endpoint_failing_since(&self, endpoint_id: EndpointId) -> Result<Option<i64>> {
        let state = self.lock();
        let e = state
            .endpoints
            .get(&endpoint_id)
            .ok_or_else(|| endpoint_not_found(endpoint_id))?;
        Ok(e.failing_since_ms)
    }

    fn disable_endpoint(
        &self,
        endpoint_id: EndpointId,
        reason: &str,
        _now_ms: i64,
    ) -> Result<usize> {
        let mut state = self.lock();
        let e = state
            .endpoints
            .get_mut(&endpoint_id)
            .ok_or_else(|| endpoint_not_found(endpoint_id))?;
        if e.enabled {
            e.enabled = false;
            e.disabled_reason = Some(reason.to_owned());
        }
        let mut dead = 0;
        for d in state.deliveries.values_mut() {
            if d.endpoint == endpoint_id && matches!(d.state, DeliveryState::Pending { .. }) {
                d.state = DeliveryState::Dead;
                dead += 1;
            }
        }
        Ok(dead)
    }

    fn enable_endpoint(&self, endpoint_id: EndpointId) -> Result<()> {
        let mut state = self.lock();
        let e = state
            .endpoints
            .get_mut(&endpoint_id)
            .ok_or_else(|| endpoint_not_found(endpoint_id))?;
        e.enabled = true;
        e.disabled_reason = None;
        e.failing_since_ms = None;
        Ok(())
    }

    fn endpoint_status(&self, endpoint_id: EndpointId) -> Result<(bool, Option<String>)> {
        let state = self.lock();
        let e = state
            .endpoints
            .get(&endpoint_id)
            .ok_or_else(|| endpoint_not_found(endpoint_id))?;
        Ok((e.enabled, e.disabled_reason.clone()))
    }

    fn disabled_endpoints(&self) -> Result<u64> {
        let state = self.lock();
        Ok(state.endpoints.values().filter(|e| !e.enabled).count() as u64)
    }

    fn dead_letters(&self, endpoint_id: EndpointId) -> Result<Vec<DeadLetter>> {
        let state = self.lock();
        if !state.endpoints.contains_key(&endpoint_id) {
            return Err(endpoint_not_found(endpoint_id));
        }
        Ok(state
            .deliveries
            .iter()
            .filter(|(_, d)| d.endpoint == endpoint_id && d.state == DeliveryState::Dead)
            .map(|(&id, d)| DeadLetter {
                delivery_id: id,
                event_id: d.event_id.clone(),
                event_type: d.event_type.clone(),
                attempts: d.attempts,
                first_attempt_at_ms: d.first_attempt_at_ms,
            })
            .collect())
    }

    fn redrive(&self, endpoint_id: EndpointId, which: &Redrive, now_ms: i64) -> Result<usize> {
        let mut state = self.lock();
        if !state.endpoints.contains_key(&endpoint_id) {
            return Err(endpoint_not_found(endpoint_id));
        }
        let mut count = 0;
        for (id, d) in state.deliveries.iter_mut() {
            let chosen = match which {
                Redrive::All => true,
                Redrive::Only(ids) => ids.contains(id),
            };
            if chosen && d.endpoint == endpoint_id && d.state == DeliveryState::Dead {
                d.state = DeliveryState::Pending {
                    next_attempt_at_ms: now_ms,
                };
                d.attempts = 0;
                d.first_attempt_at_ms = None;
                count += 1;
            }
        }
        Ok(count)
    }
}

impl crate::conformance::Seed for MemoryOutbox {
    fn add_endpoint(&self, url: &str, secrets: Vec<Secret>) -> EndpointId {
        MemoryOutbox::add_endpoint(self, url, secrets)
    }

    fn enqueue(&self, endpoint: EndpointId, event: &Event, now_ms: i64) -> DeliveryId {
        // The conformance suite only enqueues to endpoints it created.
        MemoryOutbox::enqueue(self, endpoint, event, now_ms).expect("enqueue to a known endpoint")
    }
}
