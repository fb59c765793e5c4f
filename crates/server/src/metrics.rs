//! Prometheus metrics: requests, latencies, matches per bank, index size.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of a request metric. `route` is the route template (`/c/bank/{name}`), never the raw
/// path, so label cardinality stays bounded whatever clients send.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method.
    pub method: String,
    /// Route template, or `unmatched`.
    pub route: String,
    /// Status code.
    pub status: u16,
}

/// Labels of a latency metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route template.
    pub route: String,
}

/// Labels of a match metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BankLabels {
    /// Bank name.
    pub bank: String,
}

/// Labels of an index metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignalLabels {
    /// Signal type.
    pub signal_type: String,
}

/// Labels of the verdict counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    /// `allow`, `review`, `hold` or `block`.
    pub verdict: String,
}

/// All metrics of the server.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Requests answered.
    pub requests: Family<RequestLabels, Counter>,
    /// Request latency in seconds.
    pub latency: Family<RouteLabels, Histogram>,
    /// Matches returned, per bank.
    pub matches: Family<BankLabels, Counter>,
    /// Index entries per signal type.
    pub index_entries: Family<SignalLabels, Gauge>,
    /// Bytes held by the indexes.
    pub index_bytes: Gauge,
    /// CPU jobs (decode and hash) running now, cancelled requests' included.
    pub cpu_jobs: Gauge,
    /// Request body bytes held against `limits.max_buffered_bytes`.
    pub buffered_bytes: Gauge,
    /// Content submissions recorded, per verdict.
    pub verdicts: Family<VerdictLabels, Counter>,
    /// Webhook endpoints disabled for failing (refreshed on each scrape).
    pub webhooks_disabled: Gauge,
    /// Webhook deliveries waiting (refreshed on each scrape).
    pub webhook_backlog: Gauge,
    /// Webhook deliveries in the dead-letter list (refreshed on each scrape).
    pub webhook_dead: Gauge,
    /// The webhook dispatcher's counts since start (brought up to date on each scrape with
    /// [`advance`]): attempts, deliveries, retries, dead letters and endpoints it disabled.
    pub webhook_attempts: Counter,
    /// See `webhook_attempts`.
    pub webhook_delivered: Counter,
    /// See `webhook_attempts`.
    pub webhook_retried: Counter,
    /// See `webhook_attempts`.
    pub webhook_dead_lettered: Counter,
    /// See `webhook_attempts`.
    pub webhook_endpoints_disabled: Counter,
    /// Transactions that recorded submissions since start (refreshed on each scrape).
    pub submission_commits: Counter,
    /// Submissions those transactions recorded; divided by the above, the mean group size.
    pub submission_commit_items: Counter,
}

/// Brings a counter mirroring a count kept elsewhere (the dispatcher's, the group commit's)
/// up to `to`. A maximum, not an increment, so two scrapes refreshing at once cannot count
/// the same difference twice, and the counter never goes down.
pub fn advance(c: &Counter, to: u64) {
    c.inner()
        .fetch_max(to, std::sync::atomic::Ordering::Relaxed);
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("safeguard");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 100 µs to ~13 s.
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        let matches = Family::<BankLabels, Counter>::default();
        let index_entries = Family::<SignalLabels, Gauge>::default();
        let index_bytes = Gauge::default();
        let cpu_jobs = Gauge::default();
        let buffered_bytes = Gauge::default();
        let verdicts = Family::<VerdictLabels, Counter>::default();
        let webhooks_disabled = Gauge::default();
        let webhook_backlog = Gauge::default();
        let webhook_dead = Gauge::default();
        let submission_commits = Counter::default();
        let webhook_counts = [
            ("webhook_attempts", "Webhook delivery attempts since start"),
            (
                "webhook_delivered",
                "Webhook attempts answered 2xx since start",
            ),
            (
                "webhook_retried",
                "Webhook attempts that failed and were scheduled again, since start",
            ),
            (
                "webhook_dead_lettered",
                "Webhook deliveries this process moved to a dead-letter list, since start",
            ),
            (
                "webhook_endpoints_disabled",
                "Webhook endpoints this process disabled, since start",
            ),
        ]
        .map(|(name, help)| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        });
        let [webhook_attempts, webhook_delivered, webhook_retried, webhook_dead_lettered, webhook_endpoints_disabled] =
            webhook_counts;
        let submission_commit_items = Counter::default();
        registry.register(
            "submission_commits",
            "Transactions that recorded content submissions since start (group commits)",
            submission_commits.clone(),
        );
        registry.register(
            "submission_commit_items",
            "Content submissions recorded by those transactions since start",
            submission_commit_items.clone(),
        );
        registry.register(
            "content_verdicts",
            "Content submissions recorded, per verdict",
            verdicts.clone(),
        );
        registry.register(
            "webhooks_disabled",
            "Webhook endpoints disabled (failing too long, 410 Gone, or by hand)",
            webhooks_disabled.clone(),
        );
        registry.register(
            "webhook_backlog",
            "Webhook deliveries waiting to be sent",
            webhook_backlog.clone(),
        );
        registry.register(
            "webhook_dead_letters",
            "Webhook deliveries in the dead-letter lists",
            webhook_dead.clone(),
        );
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            latency.clone(),
        );
        registry.register("matches", "Matches returned, per bank", matches.clone());
        registry.register(
            "index_entries",
            "Signals in the in-memory indexes, per signal type",
            index_entries.clone(),
        );
        registry.register(
            "index_memory_bytes",
            "Approximate bytes held by the in-memory indexes",
            index_bytes.clone(),
        );
        registry.register(
            "cpu_jobs",
            "CPU jobs (decode and hash) running, including those of cancelled requests",
            cpu_jobs.clone(),
        );
        registry.register(
            "buffered_bytes",
            "Request body bytes held against limits.max_buffered_bytes",
            buffered_bytes.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            matches,
            index_entries,
            index_bytes,
            cpu_jobs,
            buffered_bytes,
            verdicts,
            webhooks_disabled,
            webhook_backlog,
            webhook_dead,
            webhook_attempts,
            webhook_delivered,
            webhook_retried,
            webhook_dead_lettered,
            webhook_endpoints_disabled,
            submission_commits,
            submission_commit_items,
        }
    }
}

impl Metrics {
    /// Counts a recorded submission's verdict.
    pub fn record_verdict(&self, verdict: &str) {
        self.verdicts
            .get_or_create(&VerdictLabels {
                verdict: verdict.to_string(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Writing into a String cannot fail.
        encode(&mut out, &registry).expect("encoding metrics into a String");
        out
    }
}
