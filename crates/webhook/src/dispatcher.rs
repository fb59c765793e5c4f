//! The dispatcher: sends what the outbox says is due, and records what happened.
//!
//! One pass ([`Dispatcher::run_once`]) asks the outbox for due deliveries (at most one per
//! endpoint, its oldest), sends them concurrently up to [`Config::concurrency`], and as each
//! finishes records it and asks again, so an endpoint whose delivery succeeded moves on to its
//! next event without waiting for slower endpoints. An endpoint never has two deliveries in
//! flight, which is what keeps its events in order.
//!
//! [`Dispatcher::run`] repeats passes every [`Config::tick`], or at once when the writer pokes
//! [`Dispatcher::notifier`] after committing new events.
//!
//! Delivery is at least once: the record of an attempt is written after the receiver answered,
//! so a crash in between sends the event again on restart. Nothing is recorded before the
//! request, so a crash can never mark an event delivered that was not.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use crate::attempt::{attempt, AttemptRecord, Outcome, DEFAULT_TIMEOUT};
use crate::outbox::{DeliveryId, EndpointId, Next, Outbox, Pending};
use crate::schedule::Schedule;
use crate::{Error, Result};

/// Default number of endpoints served at once: enough to hide a few slow receivers, few
/// enough that a backlog across many endpoints does not open hundreds of connections.
pub const DEFAULT_CONCURRENCY: usize = 32;
/// Default most due deliveries fetched per outbox query.
pub const DEFAULT_BATCH: usize = 256;
/// Default most deliveries one endpoint gets in a run: sent one after another (each waits for
/// the previous 2xx, so order holds) and recorded in one outbox write. Large enough that a
/// busy endpoint costs one commit per hundred events, small enough that a crash before the
/// record resends at most this many (delivery is at least once anyway).
pub const DEFAULT_RUN: usize = 100;
/// Longest a run goes on sending before it ends (its attempts recorded, the rest left for
/// the next pass), besides [`Config::run`]: a process dispatches under a store lease, which
/// it renews between runs, and a run must not outlast it.
pub const RUN_TIME_LIMIT: Duration = Duration::from_secs(30);
/// Default pause between passes when nobody pokes the notifier: 1 s, the worst extra delay of
/// a retry and of an event whose writer did not notify.
pub const DEFAULT_TICK: Duration = Duration::from_secs(1);
/// Default time an endpoint may fail continuously before it is disabled: 72 h, three times
/// the default horizon. An outage over a weekend dead-letters events (redrivable) but leaves
/// the endpoint enabled, so new events flow as soon as it is back; only an endpoint that stays
/// broken for three days needs an operator to enable it again.
pub const DEFAULT_DISABLE_AFTER: Duration = Duration::from_secs(72 * 3600);

/// Dispatcher settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Backoff, jitter and horizon of retries.
    pub schedule: Schedule,
    /// Limit on one attempt, connect to response excerpt.
    pub timeout: Duration,
    /// Most endpoints with a delivery in flight at once; at least 1.
    pub concurrency: usize,
    /// Most due deliveries fetched per outbox query; at least 1.
    pub batch: usize,
    /// Most deliveries of one endpoint sent in one run before their attempts are recorded
    /// (together); at least 1. A run stops at its first failure.
    pub run: usize,
    /// Pause between passes of [`Dispatcher::run`] without a notification; positive.
    pub tick: Duration,
    /// How long an endpoint may fail continuously (no 2xx since its first failure) before it is
    /// disabled. At least the schedule's horizon: a shorter period would disable the endpoint,
    /// and dead-letter its events, before the horizon the operator chose had run out.
    pub disable_after: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            schedule: Schedule::default(),
            timeout: DEFAULT_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
            batch: DEFAULT_BATCH,
            run: DEFAULT_RUN,
            tick: DEFAULT_TICK,
            disable_after: DEFAULT_DISABLE_AFTER,
        }
    }
}

impl Config {
    /// Refuses settings the dispatcher cannot run with; the message names the setting.
    pub fn validate(&self) -> Result<()> {
        self.schedule.validate()?;
        if self.timeout.is_zero() {
            return Err(Error::InvalidConfig("timeout must be positive".into()));
        }
        if self.concurrency == 0 {
            return Err(Error::InvalidConfig(
                "concurrency must be at least 1".into(),
            ));
        }
        if self.batch == 0 {
            return Err(Error::InvalidConfig("batch must be at least 1".into()));
        }
        if self.run == 0 {
            return Err(Error::InvalidConfig("run must be at least 1".into()));
        }
        if self.tick.is_zero() {
            return Err(Error::InvalidConfig("tick must be positive".into()));
        }
        if self.disable_after < self.schedule.horizon {
            return Err(Error::InvalidConfig(
                "disable_after must be at least the retry horizon".into(),
            ));
        }
        Ok(())
    }
}

/// Counters since the dispatcher started, for metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    attempts: AtomicU64,
    delivered: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    endpoints_disabled: AtomicU64,
}

/// A copy of [`Metrics`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsSnapshot {
    /// Attempts made.
    pub attempts: u64,
    /// Attempts answered 2xx.
    pub delivered: u64,
    /// Attempts that failed and were scheduled again.
    pub retried: u64,
    /// Deliveries moved to the dead-letter list (horizon, 410, or a disabled endpoint).
    pub dead_lettered: u64,
    /// Endpoints this dispatcher disabled.
    pub endpoints_disabled: u64,
}

impl Metrics {
    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            attempts: self.attempts.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            endpoints_disabled: self.endpoints_disabled.load(Ordering::Relaxed),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Sends due deliveries from an [`Outbox`]. Cheap to share behind an `Arc`.
pub struct Dispatcher {
    /// The store; every call goes through the blocking pool.
    outbox: Arc<dyn Outbox>,
    /// Must not follow redirects; the server's carries the SSRF-guarded resolver.
    client: reqwest::Client,
    /// Validated in [`Dispatcher::new`].
    config: Config,
    /// Poked by writers after they commit events; holds one permit if nobody waits, so a poke
    /// during a pass starts the next pass at once.
    notify: Arc<Notify>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("config", &self.config)
            .field("metrics", &self.metrics.snapshot())
            .finish_non_exhaustive()
    }
}

/// Runs one outbox call on the blocking pool.
async fn blocking<T, F>(outbox: &Arc<dyn Outbox>, call: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&dyn Outbox) -> Result<T> + Send + 'static,
{
    let outbox = Arc::clone(outbox);
    tokio::task::spawn_blocking(move || call(&*outbox))
        .await
        .map_err(|e| Error::Task(format!("outbox call: {e}")))?
}

/// What one delivery task needs; cloned per task.
#[derive(Clone)]
struct Shared {
    outbox: Arc<dyn Outbox>,
    client: reqwest::Client,
    config: Config,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    /// A dispatcher over `outbox`, sending with `client`.
    pub fn new(outbox: Arc<dyn Outbox>, client: reqwest::Client, config: Config) -> Result<Self> {
        config.validate()?;
        Ok(Dispatcher {
            outbox,
            client,
            config,
            notify: Arc::new(Notify::new()),
            metrics: Arc::new(Metrics::default()),
        })
    }

    /// The handle writers poke (`notify_one()`) after committing events, for low latency.
    pub fn notifier(&self) -> Arc<Notify> {
        Arc::clone(&self.notify)
    }

    /// The counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// The live counters, to read after the dispatcher has moved to the thread that runs it.
    pub fn metrics_handle(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How many endpoints are disabled, from the outbox (a gauge, unlike [`Self::metrics`]).
    pub async fn disabled_endpoints(&self) -> Result<u64> {
        blocking(&self.outbox, |o| o.disabled_endpoints()).await
    }

    /// Sends everything due at `now_ms` (unix ms) and returns the number of attempts made.
    ///
    /// Each endpoint's deliveries go one at a time, oldest first; an endpoint whose delivery
    /// succeeded gets its next due one in the same pass. Attempts are stamped `now_ms` plus the
    /// time since the pass began. An outbox failure stops new attempts, lets those in flight
    /// finish and be recorded, then returns the error.
    pub async fn run_once(&self, now_ms: i64) -> Result<usize> {
        // Never set: a lone pass runs to the end.
        let (_keep, stop) = watch::channel(false);
        self.pass(now_ms, stop).await
    }

    /// Runs passes until `shutdown` completes: after each pass it waits for the tick or a
    /// notification. On shutdown no new attempt starts; attempts in flight finish (each within
    /// the timeout) and are recorded, then `run` returns. Pass errors are logged, not fatal:
    /// the store may recover, and nothing is lost while it does not.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let (tell, stop) = watch::channel(false);
        let signal = async move {
            shutdown.await;
            // The receiver lives until the loop below returns; a failed send means it already did.
            let _ = tell.send(true);
        };
        let work = async {
            let mut stop_wait = stop.clone();
            loop {
                if *stop.borrow() {
                    break;
                }
                if let Err(error) = self.pass(crate::now_ms(), stop.clone()).await {
                    tracing::warn!(%error, "webhook dispatch pass failed");
                }
                tokio::select! {
                    _ = stop_wait.wait_for(|s| *s) => break,
                    _ = self.notify.notified() => {}
                    _ = tokio::time::sleep(self.config.tick) => {}
                }
            }
        };
        tokio::pin!(signal);
        tokio::pin!(work);
        tokio::select! {
            _ = &mut work => {}
            _ = &mut signal => work.await,
        }
    }

    async fn pass(&self, now_ms: i64, mut stop: watch::Receiver<bool>) -> Result<usize> {
        let started = Instant::now();
        let shared = Shared {
            outbox: Arc::clone(&self.outbox),
            client: self.client.clone(),
            config: self.config,
            metrics: Arc::clone(&self.metrics),
        };
        let mut in_flight: HashSet<EndpointId> = HashSet::new();
        let mut tasks: JoinSet<(EndpointId, usize, Result<()>)> = JoinSet::new();
        let mut attempts = 0;
        let mut failure: Option<Error> = None;
        loop {
            let stopping = *stop.borrow();
            if failure.is_none() && !stopping && in_flight.len() < self.config.concurrency {
                // Endpoints in flight come back as their own oldest delivery; asking for that
                // many more keeps them from crowding out endpoints that are free.
                let limit = self.config.batch + in_flight.len();
                match blocking(&self.outbox, move |o| o.due(now_ms, limit)).await {
                    Ok(due) => {
                        for pending in due {
                            if in_flight.len() >= self.config.concurrency {
                                break;
                            }
                            if !in_flight.insert(pending.endpoint_id) {
                                continue;
                            }
                            let shared = shared.clone();
                            let endpoint = pending.endpoint_id;
                            tasks.spawn(async move {
                                let (made, outcome) =
                                    deliver_run(&shared, pending, now_ms, started).await;
                                (endpoint, made, outcome)
                            });
                        }
                    }
                    Err(error) => failure = Some(error),
                }
            }
            if tasks.is_empty() {
                break;
            }
            let joined = tokio::select! {
                // Only wakes the loop so it stops asking for more; in-flight tasks finish.
                _ = stop.wait_for(|s| *s), if !stopping => continue,
                joined = tasks.join_next() => joined,
            };
            // `tasks` is not empty here, so `join_next` yields a task.
            let mut done = joined.into_iter().collect::<Vec<_>>();
            // Records every task already finished before asking the outbox again.
            while let Some(more) = tasks.try_join_next() {
                done.push(more);
            }
            for result in done {
                match result {
                    Ok((endpoint, made, outcome)) => {
                        attempts += made;
                        in_flight.remove(&endpoint);
                        if let Err(error) = outcome {
                            failure.get_or_insert(error);
                        }
                    }
                    Err(join_error) => {
                        attempts += 1;
                        // A panicked task's endpoint stays out of this pass; its delivery is
                        // still pending in the outbox and the next pass retries it.
                        failure.get_or_insert(Error::Task(format!("delivery task: {join_error}")));
                    }
                }
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(attempts),
        }
    }
}

/// Sends a run of one endpoint's deliveries, starting with `head`: each waits for the previous
/// one's 2xx, the run stops at the first failure (or at [`Config::run`]), and all its attempts
/// are recorded in one outbox write. Then disables the endpoint on 410 or when it has been
/// failing longer than `disable_after`. Returns the attempts made (recorded or not).
async fn deliver_run(
    shared: &Shared,
    head: Pending,
    now_ms: i64,
    started: Instant,
) -> (usize, Result<()>) {
    let mut records = Vec::new();
    let outcome = send_run(shared, head, now_ms, started, &mut records).await;
    let made = records.len();
    let result = match outcome {
        Ok(last) => finish_run(shared, records, last).await,
        // The queue could not be read; what was sent is still recorded, and a failure to
        // record wins over the read's.
        Err(error) => finish_run(shared, records, None).await.and(Err(error)),
    };
    (made, result)
}

/// The failure that ended a run, for the disable check after it is recorded.
struct Failure {
    endpoint: EndpointId,
    outcome: Outcome,
    ended: i64,
}

/// Sends the run, pushing each attempt's record; returns the failure that ended it, if any.
async fn send_run(
    shared: &Shared,
    head: Pending,
    now_ms: i64,
    started: Instant,
    records: &mut Vec<(DeliveryId, AttemptRecord, Next)>,
) -> Result<Option<Failure>> {
    let clock = || now_ms.saturating_add(i64::try_from(started.elapsed().as_millis()).unwrap_or(0));
    let endpoint = head.endpoint_id;
    let mut queue: std::collections::VecDeque<Pending> = std::collections::VecDeque::new();
    let mut fetched = false;
    let mut pending = head;
    let run_started = Instant::now();
    loop {
        let at = clock();
        let record = attempt(&shared.client, &pending, at, shared.config.timeout).await;
        let ended = clock();
        let outcome = record.outcome;
        let next = match outcome {
            Outcome::Delivered => Next::Delivered,
            Outcome::Gone => Next::Dead,
            Outcome::Retry => shared.config.schedule.next(
                pending.attempts.saturating_add(1),
                pending.first_attempt_at_ms.unwrap_or(at),
                ended,
                &mut rand::rng(),
            ),
        };
        if outcome != Outcome::Delivered {
            tracing::info!(
                delivery = %pending.delivery_id, %endpoint, event = %pending.event_id,
                status = ?record.status, error = ?record.error, ?next, "webhook attempt failed"
            );
        }
        let last = pending.delivery_id;
        records.push((last, record, next));
        if outcome != Outcome::Delivered {
            return Ok(Some(Failure {
                endpoint,
                outcome,
                ended,
            }));
        }
        if records.len() >= shared.config.run || run_started.elapsed() >= RUN_TIME_LIMIT {
            return Ok(None);
        }
        if queue.is_empty() && !fetched {
            fetched = true;
            let limit = shared.config.run - records.len();
            let now = clock();
            queue.extend(
                blocking(&shared.outbox, move |o| {
                    o.queued(endpoint, last, now, limit)
                })
                .await?,
            );
        }
        match queue.pop_front() {
            Some(p) => pending = p,
            None => return Ok(None),
        }
    }
}

/// Records a run's attempts in one write, counts them, and disables the endpoint when the
/// failure that ended the run calls for it.
async fn finish_run(
    shared: &Shared,
    records: Vec<(DeliveryId, AttemptRecord, Next)>,
    failure: Option<Failure>,
) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let nexts: Vec<Next> = records.iter().map(|r| r.2).collect();
    blocking(&shared.outbox, move |o| o.record_attempts(&records)).await?;
    let m = &shared.metrics;
    for next in nexts {
        Metrics::add(&m.attempts, 1);
        match next {
            Next::Delivered => Metrics::add(&m.delivered, 1),
            Next::RetryAt(_) => Metrics::add(&m.retried, 1),
            Next::Dead => Metrics::add(&m.dead_lettered, 1),
        }
    }
    let Some(Failure {
        endpoint,
        outcome,
        ended,
    }) = failure
    else {
        return Ok(());
    };
    let reason = match outcome {
        Outcome::Delivered => return Ok(()),
        Outcome::Gone => "the endpoint answered 410 Gone".to_owned(),
        Outcome::Retry => {
            let since =
                blocking(&shared.outbox, move |o| o.endpoint_failing_since(endpoint)).await?;
            let limit = i64::try_from(shared.config.disable_after.as_millis()).unwrap_or(i64::MAX);
            match since {
                Some(since) if ended.saturating_sub(since) >= limit => format!(
                    "failing continuously since {since} (unix ms), longer than {} s",
                    shared.config.disable_after.as_secs()
                ),
                _ => return Ok(()),
            }
        }
    };
    tracing::warn!(%endpoint, %reason, "disabling webhook endpoint");
    let dead = blocking(&shared.outbox, move |o| {
        o.disable_endpoint(endpoint, &reason, ended)
    })
    .await?;
    Metrics::add(&m.dead_lettered, u64::try_from(dead).unwrap_or(u64::MAX));
    Metrics::add(&m.endpoints_disabled, 1);
    Ok(())
}
