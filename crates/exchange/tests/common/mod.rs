//! Shared pieces of the fake exchange servers: fault injection, a loopback listener, a sink
//! that "crashes", and a log capture.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use safeguard_exchange::{
    run, Batch, Error, ExchangeSink, Fetcher, Held, Outcome, RetryPolicy, RunOptions, RunReport,
};

/// Runs fresh clients from `new_client` (as after a restart, so each resumes from the stored
/// checkpoint) until one catches up, at most 50 times; returns every run's report.
pub async fn run_until_caught_up<F: Fetcher>(
    exchange: &str,
    mut new_client: impl FnMut() -> F,
    sink: Arc<dyn ExchangeSink>,
) -> Vec<RunReport> {
    let mut reports = Vec::new();
    for _ in 0..50 {
        let mut client = new_client();
        let r = run(exchange, &mut client, sink.clone(), &RunOptions::default()).await;
        let done = r.caught_up;
        reports.push(r);
        if done {
            return reports;
        }
    }
    panic!("{exchange}: no run caught up: {reports:#?}");
}

/// A failure the fake serves instead of (or on top of) the real answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After: N` seconds.
    TooMany(u64),
    /// 503 without `Retry-After`.
    Unavailable,
    /// The real page, cut in half and sent as a complete 200 (malformed XML/JSON).
    Malformed,
    /// The real page's headers and first half, then the connection is dropped.
    DropMidBody,
    /// 400, as for an expired page token.
    BadRequest,
}

/// Faults by data-request number (1-based, counted across the fake's life).
#[derive(Debug, Default)]
pub struct Faults {
    plan: Mutex<BTreeMap<u64, Fault>>,
    count: AtomicU64,
    /// Faults actually served, in order.
    pub served: Mutex<Vec<(u64, Fault)>>,
}

impl Faults {
    pub fn plan(&self, at: u64, f: Fault) {
        self.plan.lock().unwrap().insert(at, f);
    }

    /// Requests seen so far.
    pub fn requests(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// Counts a request; returns the fault to serve for it, if any.
    pub fn next(&self) -> Option<Fault> {
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        let f = self.plan.lock().unwrap().remove(&n);
        if let Some(f) = f {
            self.served.lock().unwrap().push((n, f));
        }
        f
    }

    pub fn served_kinds(&self) -> Vec<Fault> {
        self.served
            .lock()
            .unwrap()
            .iter()
            .map(|(_, f)| *f)
            .collect()
    }
}

/// Serves `body` (with `content_type`) through `fault`.
pub fn respond(fault: Option<Fault>, content_type: &'static str, body: Vec<u8>) -> Response {
    match fault {
        None => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Some(Fault::TooMany(secs)) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs.to_string())],
            "slow down",
        )
            .into_response(),
        Some(Fault::Unavailable) => (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response(),
        Some(Fault::BadRequest) => (StatusCode::BAD_REQUEST, "invalid token").into_response(),
        Some(Fault::Malformed) => {
            let half = body[..body.len() / 2].to_vec();
            ([(header::CONTENT_TYPE, content_type)], half).into_response()
        }
        Some(Fault::DropMidBody) => {
            let len = body.len();
            let half = bytes::Bytes::from(body[..len / 2].to_vec());
            let stream = futures_util::stream::iter(vec![
                Ok::<_, std::io::Error>(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "dropped mid-body",
                )),
            ]);
            Response::builder()
                .header(header::CONTENT_TYPE, content_type)
                .header(header::CONTENT_LENGTH, len)
                .body(Body::from_stream(stream))
                .unwrap()
        }
    }
}

/// Serves `app` on an ephemeral loopback port.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// Short retries so the suite stays fast; `Retry-After` is honoured up to 50 ms.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
    }
}

/// A sink that dies (refuses every write) after `allowed` more batches: the process crashing
/// between pages, with everything before committed and nothing after.
#[derive(Debug)]
pub struct CrashAfter {
    pub inner: Arc<dyn ExchangeSink>,
    pub allowed: AtomicI64,
}

impl CrashAfter {
    pub fn new(inner: Arc<dyn ExchangeSink>, allowed: i64) -> CrashAfter {
        CrashAfter {
            inner,
            allowed: AtomicI64::new(allowed),
        }
    }
}

impl ExchangeSink for CrashAfter {
    fn checkpoint(&self, exchange: &str) -> safeguard_exchange::Result<Option<String>> {
        self.inner.checkpoint(exchange)
    }
    fn held(&self, exchange: &str) -> safeguard_exchange::Result<Vec<Held>> {
        self.inner.held(exchange)
    }
    fn apply(&self, exchange: &str, batch: &Batch<'_>) -> safeguard_exchange::Result<Outcome> {
        if self.allowed.fetch_sub(1, Ordering::SeqCst) <= 0 {
            return Err(Error::Sink("simulated crash".into()));
        }
        self.inner.apply(exchange, batch)
    }
    fn record_error(
        &self,
        exchange: &str,
        message: &str,
        at: i64,
    ) -> safeguard_exchange::Result<()> {
        self.inner.record_error(exchange, message, at)
    }
}

/// Captures every log line (all targets, TRACE) of the current thread into a buffer.
#[derive(Clone, Default)]
pub struct LogBuf(pub Arc<Mutex<Vec<u8>>>);

impl Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuf {
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let w = self.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || w.clone())
            .finish();
        tracing::subscriber::set_default(sub)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Canonical (type, value) as Safeguard stores it, or `None` for a type or value it refuses.
pub fn canonical(signal_type: &str, value: &str) -> Option<(String, String)> {
    let t = safeguard_engine::SignalType::parse(signal_type).ok()?;
    Some((t.name().to_string(), t.normalize(value).ok()?))
}

/// Random lowercase hex of `n` digits.
pub fn hex(rng: &mut impl rand::Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap())
        .collect()
}

/// Asserts two sets are equal, printing only the differences.
pub fn assert_same(
    bank: &std::collections::BTreeSet<(String, String)>,
    server: &std::collections::BTreeSet<(String, String)>,
    what: &str,
) {
    let missing: Vec<_> = server.difference(bank).take(5).collect();
    let extra: Vec<_> = bank.difference(server).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: bank {} values, server {}; missing {} e.g. {missing:?}; extra {} e.g. {extra:?}",
        bank.len(),
        server.len(),
        server.difference(bank).count(),
        bank.difference(server).count(),
    );
}

/// A fresh engine over a temporary SQLite store, with `bank` created, and a sink into it.
pub fn engine_with_bank(
    bank: &str,
) -> (
    Arc<safeguard_engine::Engine>,
    Arc<safeguard_exchange::EngineSink>,
) {
    let store: Arc<dyn safeguard_store::Store> =
        Arc::new(safeguard_store::SqliteStore::open_in_memory().unwrap());
    let engine = Arc::new(safeguard_engine::Engine::open(store).unwrap());
    engine
        .create_bank(&safeguard_engine::CreateBank {
            name: bank.to_string(),
            ..Default::default()
        })
        .unwrap();
    let sink = Arc::new(safeguard_exchange::EngineSink::new(engine.clone(), bank));
    (engine, sink)
}

/// The values an exchange currently lists in an engine's bank (active provenance only).
pub fn engine_bank_set(
    engine: &safeguard_engine::Engine,
    bank: &str,
    exchange: &str,
) -> std::collections::BTreeSet<(String, String)> {
    let id = engine.bank(bank).unwrap().id;
    let source = format!("exchange:{exchange}");
    let mut out = std::collections::BTreeSet::new();
    engine
        .store()
        .scan_bank(id, &mut |sig, provs| {
            if provs
                .iter()
                .any(|p| p.source == source && p.withdrawn_at.is_none())
            {
                out.insert((sig.signal_type.clone(), sig.value.clone()));
            }
        })
        .unwrap();
    out
}

/// Whether a lookup of (type, value) matches anything in `bank`.
pub fn engine_matches(engine: &safeguard_engine::Engine, bank: &str, t: &str, v: &str) -> bool {
    let st = safeguard_engine::SignalType::parse(t).unwrap();
    let value = safeguard_engine::SignalValue::parse(st, v).unwrap();
    let res = engine
        .lookup(
            &value,
            &safeguard_engine::LookupOptions {
                banks: Some(vec![bank.to_string()]),
                coinflip: Some(0.0),
                ..Default::default()
            },
        )
        .unwrap();
    !res.matches.is_empty()
}
