//! The StopNCII client against a local server that implements FetchHashes and SubmitFeedback
//! as documented: subscription and function-key headers, `startTimestamp`/`pageSize`/
//! `nextPageToken` paging, `nextSetTimestamp`, records that replace earlier ones, and
//! Withdrawn/Deleted statuses; plus injected faults, expired tokens and crashes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use common::*;
use rand::SeedableRng;
use safeguard_exchange::stopncii::{FeedbackValue, StopNciiClient, StopNciiConfig};
use safeguard_exchange::{run, ExchangeSink, MemorySink, RunOptions, RunReport, Secret};

const SUB_KEY: &str = "sub-KEY-0123456789abcdef";
const FETCH_KEY: &str = "fetch-FUNC-key-9876543210";
const FEEDBACK_KEY: &str = "feedback-FUNC-key-5555";

#[derive(Debug, Clone)]
struct Rec {
    ts: i64,
    signal_type: &'static str,
    value: String,
    status: &'static str,
}

#[derive(Default)]
struct Fake {
    /// (signalType, hashValue) → record.
    records: Mutex<BTreeMap<(String, String), Rec>>,
    clock: Mutex<i64>,
    faults: Faults,
    /// Tokens handed out: token → (start, offset). `expire` forgets them all.
    tokens: Mutex<BTreeMap<String, (i64, usize)>>,
    feedback: Mutex<Vec<serde_json::Value>>,
    tokens_refused: std::sync::atomic::AtomicU64,
}

type S = Arc<Fake>;

fn keys_ok(h: &HeaderMap, function_key: &str) -> bool {
    h.get("ocp-apim-subscription-key")
        .and_then(|v| v.to_str().ok())
        == Some(SUB_KEY)
        && h.get("x-functions-key").and_then(|v| v.to_str().ok()) == Some(function_key)
}

async fn fetch(
    State(s): State<S>,
    h: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if !keys_ok(&h, FETCH_KEY) {
        return (
            StatusCode::UNAUTHORIZED,
            "Access denied due to invalid subscription key",
        )
            .into_response();
    }
    let fault = s.faults.next();
    let Some(start) = q.get("startTimestamp").and_then(|v| v.parse::<i64>().ok()) else {
        return (StatusCode::BAD_REQUEST, "startTimestamp").into_response();
    };
    let size: usize = q
        .get("pageSize")
        .and_then(|v| v.parse().ok())
        .unwrap_or(800);
    let offset = match q.get("nextPageToken") {
        None => 0,
        Some(t) => match s.tokens.lock().unwrap().get(t) {
            Some(&(st, off)) if st == start => off,
            _ => {
                s.tokens_refused
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return (StatusCode::BAD_REQUEST, "invalid nextPageToken").into_response();
            }
        },
    };
    // Records from startTimestamp on, oldest first; ties in a stable order.
    let mut hits: Vec<Rec> = s
        .records
        .lock()
        .unwrap()
        .values()
        .filter(|r| r.ts >= start)
        .cloned()
        .collect();
    hits.sort_by(|a, b| (a.ts, a.signal_type, &a.value).cmp(&(b.ts, b.signal_type, &b.value)));
    let page: Vec<&Rec> = hits.iter().skip(offset).take(size).collect();
    let more = offset + page.len() < hits.len();
    let next_set = page.last().map(|r| r.ts).unwrap_or(start);
    let token = if more {
        let t = format!("tok{}", s.tokens.lock().unwrap().len() + 1);
        s.tokens
            .lock()
            .unwrap()
            .insert(t.clone(), (start, offset + page.len()));
        Some(t)
    } else {
        None
    };
    let body = serde_json::json!({
        "count": page.len(),
        "nextPageToken": token,
        "nextSetTimestamp": next_set,
        "hasMoreRecords": more,
        "hashRecords": page.iter().map(|r| serde_json::json!({
            "lastModtimestamp": r.ts,
            "signalType": r.signal_type,
            "hashValue": r.value,
            "hashStatus": r.status,
            "caseNumbers": {"case-1": r.status},
            "CSPFeedbacks": [],
        })).collect::<Vec<_>>(),
    });
    respond(
        fault,
        "application/json",
        serde_json::to_vec(&body).unwrap(),
    )
}

async fn submit_feedback(State(s): State<S>, h: HeaderMap, body: String) -> Response {
    if !keys_ok(&h, FEEDBACK_KEY) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    s.feedback
        .lock()
        .unwrap()
        .push(serde_json::from_str(&body).unwrap());
    axum::Json(serde_json::json!({})).into_response()
}

fn app(s: S) -> Router {
    Router::new()
        .route("/v1/FetchHashes", get(fetch))
        .route("/v1/SubmitFeedback", post(submit_feedback))
        .with_state(s)
}

impl Fake {
    fn tick(&self) -> i64 {
        let mut c = self.clock.lock().unwrap();
        *c += 1;
        *c
    }

    fn put(&self, signal_type: &'static str, value: String, status: &'static str) {
        let ts = self.tick();
        self.records.lock().unwrap().insert(
            (signal_type.to_string(), value.clone()),
            Rec {
                ts,
                signal_type,
                value,
                status,
            },
        );
    }

    fn live(&self) -> BTreeSet<(String, String)> {
        self.records
            .lock()
            .unwrap()
            .values()
            .filter(|r| !matches!(r.status, "Withdrawn" | "Deleted"))
            .filter_map(|r| {
                canonical(
                    &safeguard_exchange::stopncii::signal_type_for(r.signal_type),
                    &r.value,
                )
            })
            .collect()
    }
}

fn config(addr: std::net::SocketAddr) -> StopNciiConfig {
    let mut c = StopNciiConfig::new(
        format!("http://{addr}/v1").parse().unwrap(),
        Secret::new(SUB_KEY),
        Secret::new(FETCH_KEY),
    );
    c.feedback_function_key = Some(Secret::new(FEEDBACK_KEY));
    c.page_size = 100;
    c.retry = fast_retry();
    c
}

async fn until_caught_up(
    addr: std::net::SocketAddr,
    sink: Arc<dyn ExchangeSink>,
) -> Vec<RunReport> {
    common::run_until_caught_up(
        "STOPNCII",
        || StopNciiClient::new(config(addr)).unwrap(),
        sink,
    )
    .await
}

#[tokio::test]
async fn resumes_after_every_failure_and_ends_equal_to_the_server() {
    let mem = Arc::new(MemorySink::new());
    let view = mem.clone();
    scenario(
        mem,
        move || view.snapshot("STOPNCII").values.keys().cloned().collect(),
        None,
    )
    .await;
}

/// The same through the real engine over a temporary SQLite store.
#[tokio::test]
async fn through_the_engine_withdrawn_hashes_stop_matching() {
    let (engine, sink) = engine_with_bank("STOPNCII_BANK");
    let e = engine.clone();
    scenario(
        sink,
        move || engine_bank_set(&e, "STOPNCII_BANK", "STOPNCII"),
        Some(engine),
    )
    .await;
}

async fn scenario(
    sink: Arc<dyn ExchangeSink>,
    bank: impl Fn() -> BTreeSet<(String, String)>,
    engine: Option<Arc<safeguard_engine::Engine>>,
) {
    let logs = LogBuf::default();
    let _guard = logs.install();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let fake = Arc::new(Fake::default());
    *fake.clock.lock().unwrap() = 1_700_000_000;
    for i in 0..2500 {
        match i % 10 {
            0 => fake.put("VideoMD5", hex(&mut rng, 32), "Active"),
            1 => fake.put("VideoTMK", hex(&mut rng, 64), "Active"),
            2 => fake.put("ImagePDQ", hex(&mut rng, 64), "Withdrawn"),
            3 => fake.put("ImagePDQ", hex(&mut rng, 64), "Received"),
            _ => fake.put("ImagePDQ", hex(&mut rng, 64), "Active"),
        }
        // Bursts of records sharing one timestamp, larger than a page.
        if (1000..1250).contains(&i) {
            *fake.clock.lock().unwrap() -= 1;
        }
    }
    let addr = serve(app(fake.clone())).await;

    fake.faults.plan(2, Fault::TooMany(1));
    fake.faults.plan(4, Fault::Unavailable);
    fake.faults.plan(6, Fault::DropMidBody);
    fake.faults.plan(9, Fault::Malformed);
    let mut c = StopNciiClient::new(config(addr)).unwrap();
    let r1 = run("STOPNCII", &mut c, sink.clone(), &RunOptions::default()).await;
    drop(c);
    assert_eq!(
        r1.error_code.as_deref(),
        Some("exchange_protocol"),
        "{r1:?}"
    );
    assert!(r1.pages >= 3);
    assert_eq!(
        fake.faults.served_kinds(),
        vec![
            Fault::TooMany(1),
            Fault::Unavailable,
            Fault::DropMidBody,
            Fault::Malformed
        ]
    );

    // A crash between pages.
    let crashing: Arc<dyn ExchangeSink> = Arc::new(CrashAfter::new(sink.clone(), 3));
    let mut c = StopNciiClient::new(config(addr)).unwrap();
    let r2 = run("STOPNCII", &mut c, crashing, &RunOptions::default()).await;
    drop(c);
    assert_eq!(r2.pages, 3);
    assert_eq!(r2.error_code.as_deref(), Some("storage_error"));

    // The stored page token expires (the server forgets it): the client restarts from the
    // last nextSetTimestamp.
    fake.tokens.lock().unwrap().clear();
    let reports = until_caught_up(addr, sink.clone()).await;
    assert_eq!(
        fake.tokens_refused
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_same(&bank(), &fake.live(), "bank vs server");
    let all: Vec<&RunReport> = [&r1, &r2].into_iter().chain(reports.iter()).collect();
    assert!(all.iter().any(|r| r.skipped_types.contains_key("tmk_pdqf")));

    // Changes: withdrawals, deletions, re-activation of a withdrawn hash, new hashes.
    let keys: Vec<(String, String)> = fake.records.lock().unwrap().keys().cloned().collect();
    for (i, (t, v)) in keys.iter().enumerate() {
        let t: &'static str = match t.as_str() {
            "ImagePDQ" => "ImagePDQ",
            "VideoMD5" => "VideoMD5",
            _ => "VideoTMK",
        };
        match i % 9 {
            0 => fake.put(t, v.clone(), "Withdrawn"),
            1 => fake.put(t, v.clone(), "Deleted"),
            2 => fake.put(t, v.clone(), "Active"),
            _ => {}
        }
    }
    for _ in 0..300 {
        fake.put("ImagePDQ", hex(&mut rng, 64), "Active");
    }
    fake.faults
        .plan(fake.faults.requests() + 3, Fault::Unavailable);
    until_caught_up(addr, sink.clone()).await;
    assert_same(&bank(), &fake.live(), "bank vs server");

    if let Some(engine) = &engine {
        // Withdrawn and deleted hashes no longer match; live ones do.
        let recs: Vec<Rec> = fake.records.lock().unwrap().values().cloned().collect();
        let mut gone = 0;
        for r in &recs {
            let t = safeguard_exchange::stopncii::signal_type_for(r.signal_type);
            let Some((t, v)) = canonical(&t, &r.value) else {
                continue;
            };
            let live = !matches!(r.status, "Withdrawn" | "Deleted");
            assert_eq!(
                engine_matches(engine, "STOPNCII_BANK", &t, &v),
                live,
                "{r:?}"
            );
            gone += usize::from(!live);
        }
        assert!(gone > 300, "{gone}");
    }
    let text = logs.text();
    for secret in [SUB_KEY, FETCH_KEY, FEEDBACK_KEY] {
        assert!(!text.contains(secret));
        assert!(!format!("{:?}", config(addr)).contains(secret));
        for r in &all {
            assert!(!format!("{r:?}").contains(secret));
        }
    }
}

#[tokio::test]
async fn feedback_sends_the_documented_request() {
    let fake = Arc::new(Fake::default());
    let addr = serve(app(fake.clone())).await;
    let c = StopNciiClient::new(config(addr)).unwrap();
    let pdq = "f".repeat(64);
    c.submit_feedback(&pdq, FeedbackValue::NotBlocked, &["false_positive".into()])
        .await
        .unwrap();
    c.submit_feedback(&pdq, FeedbackValue::Blocked, &[])
        .await
        .unwrap();
    assert_eq!(
        *fake.feedback.lock().unwrap(),
        vec![
            serde_json::json!({"count":1,"hashFeedbacks":[{"hashValue":pdq,"feedbackValue":"NotBlocked","tags":["false_positive"]}]}),
            serde_json::json!({"count":1,"hashFeedbacks":[{"hashValue":pdq,"feedbackValue":"Blocked","tags":[]}]}),
        ]
    );
    // Without a feedback key the call is refused before anything is sent.
    let mut cfg = config(addr);
    cfg.feedback_function_key = None;
    let c = StopNciiClient::new(cfg).unwrap();
    assert_eq!(
        c.submit_feedback(&pdq, FeedbackValue::Blocked, &[])
            .await
            .unwrap_err()
            .code(),
        "exchange_config"
    );
    assert_eq!(fake.feedback.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn wrong_keys_are_refused_without_echoing_them() {
    let fake = Arc::new(Fake::default());
    let addr = serve(app(fake)).await;
    let mut cfg = config(addr);
    cfg.subscription_key = Secret::new("wrong-sub-key-abc");
    let mut c = StopNciiClient::new(cfg).unwrap();
    let sink = Arc::new(MemorySink::new());
    let r = run("STOPNCII", &mut c, sink.clone(), &RunOptions::default()).await;
    assert_eq!(r.error_code.as_deref(), Some("exchange_rejected"));
    assert!(!r.error.unwrap().contains("wrong-sub-key-abc"));
    assert!(sink.snapshot("STOPNCII").last_error.is_some());
}

#[tokio::test]
async fn a_page_that_hands_back_the_token_just_requested_is_refused() {
    let asked = Arc::new(Mutex::new(Vec::<Option<String>>::new()));
    let seen = asked.clone();
    let app = Router::new().route(
        "/v1/FetchHashes",
        get(move |Query(q): Query<BTreeMap<String, String>>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(q.get("nextPageToken").cloned());
                axum::Json(serde_json::json!({
                    "count": 1,
                    "nextPageToken": "stuck-token",
                    "nextSetTimestamp": 1_700_000_000,
                    "hasMoreRecords": true,
                    "hashRecords": [{
                        "lastModtimestamp": 1_700_000_000,
                        "signalType": "VideoMD5",
                        "hashValue": "0123456789abcdef0123456789abcdef",
                        "hashStatus": "Active",
                    }],
                }))
            }
        }),
    );
    let addr = serve(app).await;
    let mut c = StopNciiClient::new(config(addr)).unwrap();
    let sink = Arc::new(MemorySink::new());
    let r = run("STUCK", &mut c, sink.clone(), &RunOptions { max_pages: 50 }).await;
    assert_eq!(r.error_code.as_deref(), Some("exchange_protocol"), "{r:?}");
    assert!(r.error.as_deref().unwrap().contains("stuck-token"), "{r:?}");
    assert!(!r.caught_up);
    // The first page (asked without a token) is applied; the repeat is not followed.
    assert_eq!(r.pages, 1);
    assert_eq!(
        *asked.lock().unwrap(),
        vec![None, Some("stuck-token".to_string())]
    );
    assert!(sink.snapshot("STUCK").last_error.is_some());
}

fn bank_of(sink: &MemorySink, name: &str) -> BTreeSet<(String, String)> {
    sink.snapshot(name).values.keys().cloned().collect()
}

#[tokio::test]
async fn url_records_differing_only_in_case_are_two_entries() {
    let fake = Arc::new(Fake::default());
    *fake.clock.lock().unwrap() = 1_700_000_000;
    fake.put("URL", "https://e.example/Photo".into(), "Active");
    fake.put("URL", "https://e.example/photo".into(), "Active");
    // PDQ hex in either case is one entry: the upper-case record replaces the lower-case one.
    let pdq = "ab".repeat(32);
    fake.put("ImagePDQ", pdq.clone(), "Active");
    let addr = serve(app(fake.clone())).await;
    let sink = Arc::new(MemorySink::new());
    until_caught_up(addr, sink.clone()).await;
    let live = fake.live();
    assert_eq!(live.len(), 3, "{live:?}");
    assert_same(&bank_of(&sink, "STOPNCII"), &live, "both URLs held");

    fake.put("URL", "https://e.example/Photo".into(), "Withdrawn");
    fake.put("ImagePDQ", pdq.to_ascii_uppercase(), "Withdrawn");
    until_caught_up(addr, sink.clone()).await;
    let bank = bank_of(&sink, "STOPNCII");
    assert_eq!(bank.len(), 1, "{bank:?}");
    assert_same(
        &bank,
        &canonical("url", "https://e.example/photo")
            .into_iter()
            .collect(),
        "only the lower-case path left",
    );
}

#[tokio::test]
async fn a_url_with_a_comma_is_withdrawn_in_a_later_run() {
    let fake = Arc::new(Fake::default());
    *fake.clock.lock().unwrap() = 1_700_000_000;
    fake.put("URL", "https://e.example/a,b".into(), "Active");
    fake.put("URL", "https://e.example/c".into(), "Active");
    let addr = serve(app(fake.clone())).await;
    let sink = Arc::new(MemorySink::new());
    until_caught_up(addr, sink.clone()).await;
    assert_eq!(bank_of(&sink, "STOPNCII").len(), 2);

    fake.put("URL", "https://e.example/a,b".into(), "Withdrawn");
    until_caught_up(addr, sink.clone()).await;
    assert_same(&bank_of(&sink, "STOPNCII"), &fake.live(), "bank vs server");
    assert_eq!(bank_of(&sink, "STOPNCII").len(), 1);
}
