//! `MemoryOutbox` passes the suite every outbox implementation runs, and the suite is not
//! vacuous: outboxes with one flaw each fail it, both the targeted checks and the random
//! sequence comparison against the model.

use std::panic::{catch_unwind, AssertUnwindSafe};

use safeguard_webhook::conformance::{self, Seed};
use safeguard_webhook::{
    AttemptRecord, DeadLetter, DeliveryId, EndpointId, Event, MemoryOutbox, Next, Outbox, Pending,
    Redrive, Result, Secret,
};

#[test]
fn memory_outbox_conforms() {
    conformance::run_all(&|| Box::new(MemoryOutbox::new()));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// `due` loses the oldest due delivery.
    DueDropsOldest,
    /// `disable_endpoint` does nothing.
    DisableIgnored,
    /// `redrive` does nothing.
    RedriveIgnored,
    /// `endpoint_failing_since` never reports a failure.
    FailingForgotten,
    /// `queued` drops the first delivery behind the given one, so the next overtakes it.
    QueuedSkipsOne,
}

/// `MemoryOutbox` with one flaw.
#[derive(Debug)]
struct Flawed {
    inner: MemoryOutbox,
    flaw: Flaw,
}

impl Outbox for Flawed {
    fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Pending>> {
        let mut due = self.inner.due(now_ms, limit)?;
        if self.flaw == Flaw::DueDropsOldest && !due.is_empty() {
            due.remove(0);
        }
        Ok(due)
    }
    fn queued(
        &self,
        e: EndpointId,
        after: DeliveryId,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Pending>> {
        let mut queued = self.inner.queued(e, after, now_ms, limit)?;
        if self.flaw == Flaw::QueuedSkipsOne && !queued.is_empty() {
            queued.remove(0);
        }
        Ok(queued)
    }
    fn record_attempt(&self, d: DeliveryId, a: &AttemptRecord, next: Next) -> Result<()> {
        self.inner.record_attempt(d, a, next)
    }
    fn attempts(&self, d: DeliveryId) -> Result<Vec<AttemptRecord>> {
        self.inner.attempts(d)
    }
    fn endpoint_failing_since(&self, e: EndpointId) -> Result<Option<i64>> {
        let since = self.inner.endpoint_failing_since(e)?;
        Ok(if self.flaw == Flaw::FailingForgotten {
            None
        } else {
            since
        })
    }
    fn disable_endpoint(&self, e: EndpointId, reason: &str, now_ms: i64) -> Result<usize> {
        if self.flaw == Flaw::DisableIgnored {
            self.inner.endpoint_status(e)?;
            return Ok(0);
        }
        self.inner.disable_endpoint(e, reason, now_ms)
    }
    fn enable_endpoint(&self, e: EndpointId) -> Result<()> {
        self.inner.enable_endpoint(e)
    }
    fn endpoint_status(&self, e: EndpointId) -> Result<(bool, Option<String>)> {
        self.inner.endpoint_status(e)
    }
    fn disabled_endpoints(&self) -> Result<u64> {
        self.inner.disabled_endpoints()
    }
    fn dead_letters(&self, e: EndpointId) -> Result<Vec<DeadLetter>> {
        self.inner.dead_letters(e)
    }
    fn redrive(&self, e: EndpointId, which: &Redrive, now_ms: i64) -> Result<usize> {
        if self.flaw == Flaw::RedriveIgnored {
            self.inner.endpoint_status(e)?;
            return Ok(0);
        }
        self.inner.redrive(e, which, now_ms)
    }
}

impl Seed for Flawed {
    fn add_endpoint(&self, url: &str, secrets: Vec<Secret>) -> EndpointId {
        self.inner.add_endpoint(url, secrets)
    }
    fn enqueue(&self, endpoint: EndpointId, event: &Event, now_ms: i64) -> DeliveryId {
        self.inner.enqueue(endpoint, event, now_ms).unwrap()
    }
}

#[test]
fn flawed_outboxes_fail_the_suite() {
    for flaw in [
        Flaw::DueDropsOldest,
        Flaw::DisableIgnored,
        Flaw::RedriveIgnored,
        Flaw::FailingForgotten,
        Flaw::QueuedSkipsOne,
    ] {
        let make = || Flawed {
            inner: MemoryOutbox::new(),
            flaw,
        };
        let suite = catch_unwind(AssertUnwindSafe(|| {
            conformance::run_all(&|| Box::new(make()));
        }));
        assert!(suite.is_err(), "the suite passed an outbox with {flaw:?}");
        if flaw == Flaw::QueuedSkipsOne {
            // The random sequences compare `due` and the records, not runs.
            continue;
        }
        let model = catch_unwind(AssertUnwindSafe(|| {
            conformance::matches_model_on_random_sequences(&make());
        }));
        assert!(
            model.is_err(),
            "the model comparison passed an outbox with {flaw:?}"
        );
    }
}
