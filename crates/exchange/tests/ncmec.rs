//! The NCMEC client against a local server that implements the v2 protocol as documented:
//! Basic auth, `GET /v2/entries?from=&to=` pages of `queryResult` XML in an order that is not
//! time order, `paging/next` links with `start/size/max`, deletion records, the status,
//! feedback-reason and feedback calls; plus injected 429/503, malformed and dropped pages, and
//! crashes between pages.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use common::*;
use rand::{Rng, SeedableRng};
use safeguard_exchange::ncmec::{FeedbackType, NcmecClient, NcmecConfig, Vote};
use safeguard_exchange::time::{fmt_utc, parse_utc};
use safeguard_exchange::{run, ExchangeSink, MemorySink, RunOptions, RunReport, Secret};

const USER: &str = "esp-user";
const PASS: &str = "pa55-NCMEC-s3cret-value";
const REASON: &str = "01234567-abcd-0123-4567-012345678900";

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    member: i64,
    video: bool,
    ts: i64,
    deleted: bool,
    classification: &'static str,
    fps: Vec<(&'static str, String)>,
}

#[derive(Default)]
struct Fake {
    entries: Mutex<BTreeMap<String, Entry>>,
    page_size: usize,
    faults: Faults,
    feedback: Mutex<Vec<(String, String)>>,
}

type S = Arc<Fake>;

fn authorized(h: &HeaderMap) -> bool {
    use base64_free::encode;
    h.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Basic {}", encode(&format!("{USER}:{PASS}"))))
}

/// A tiny base64 encoder so the fake checks the exact header without another dependency.
mod base64_free {
    pub fn encode(s: &str) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let b = s.as_bytes();
        let mut out = String::new();
        for c in b.chunks(3) {
            let n = (c[0] as u32) << 16
                | (*c.get(1).unwrap_or(&0) as u32) << 8
                | *c.get(2).unwrap_or(&0) as u32;
            for i in 0..4 {
                if i <= c.len() {
                    out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

fn order_key(id: &str) -> u64 {
    // Not time order: a stable scramble of the id.
    id.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

fn entry_xml(e: &Entry) -> String {
    let kind = match (e.video, e.deleted) {
        (false, false) => "image",
        (false, true) => "deletedImage",
        (true, false) => "video",
        (true, true) => "deletedVideo",
    };
    let mut s = format!(
        "<{kind}><member id=\"{}\">Member {}</member><timestamp>{}</timestamp><id>{}</id>",
        e.member,
        e.member,
        fmt_utc(e.ts),
        e.id
    );
    if !e.deleted {
        s += &format!(
            "<classification>{}</classification><fingerprints>",
            e.classification
        );
        for (t, v) in &e.fps {
            if v.is_empty() {
                s += &format!(
                    "<{t} rel=\"self\" href=\"/v2/entries/{}/fingerprints/X\"/>",
                    e.id
                );
            } else {
                s += &format!("<{t}>{v}</{t}>");
            }
        }
        s += "</fingerprints><feedback/>";
    }
    s += &format!("</{kind}>");
    s
}

async fn entries(
    State(s): State<S>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if !authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, "bad credentials").into_response();
    }
    let fault = s.faults.next();
    let (Some(from), Some(to)) = (
        q.get("from").and_then(|v| parse_utc(v)),
        q.get("to").and_then(|v| parse_utc(v)),
    ) else {
        return (StatusCode::BAD_REQUEST, "from and to are required").into_response();
    };
    let start: usize = q.get("start").and_then(|v| v.parse().ok()).unwrap_or(1);
    let size: usize = q
        .get("size")
        .and_then(|v| v.parse().ok())
        .unwrap_or(s.page_size);
    let mut hits: Vec<Entry> = s
        .entries
        .lock()
        .unwrap()
        .values()
        .filter(|e| e.ts >= from && e.ts <= to)
        .cloned()
        .collect();
    hits.sort_by_key(|e| order_key(&e.id));
    let total = hits.len();
    let page: Vec<&Entry> = hits.iter().skip(start - 1).take(size).collect();
    let mut images = String::new();
    let mut videos = String::new();
    let (mut ni, mut nv, mut mi, mut mv) = (0, 0, 0i64, 0i64);
    for e in &page {
        if e.video {
            videos += &entry_xml(e);
            nv += 1;
            mv = mv.max(e.ts);
        } else {
            images += &entry_xml(e);
            ni += 1;
            mi = mi.max(e.ts);
        }
    }
    let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<queryResult xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\">");
    if ni > 0 {
        body += &format!(
            "<images count=\"{ni}\" maxTimestamp=\"{}\">{images}</images>",
            fmt_utc(mi)
        );
    }
    if nv > 0 {
        body += &format!(
            "<videos count=\"{nv}\" maxTimestamp=\"{}\">{videos}</videos>",
            fmt_utc(mv)
        );
    }
    if start - 1 + size < total {
        body += &format!(
            "<paging><next>/v2/entries?from={}&amp;to={}&amp;start={}&amp;size={size}&amp;max={total}</next></paging>",
            fmt_utc(from).replace(':', "%3A"),
            fmt_utc(to).replace(':', "%3A"),
            start + size
        );
    }
    body += "</queryResult>";
    respond(fault, "application/xml", body.into_bytes())
}

async fn status(headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\" ?><status xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\"><ipAddress>127.0.0.1</ipAddress><username>esp-user</username><member id=\"77\">Safeguard Test ESP</member></status>".into_response()
}

async fn reasons(headers: HeaderMap, Path(t): Path<String>) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><availableFeedbackReasons xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\"><reason guid=\"{REASON}\" name=\"Not the described content\" type=\"{t}\"/></availableFeedbackReasons>").into_response()
}

async fn feedback(
    State(s): State<S>,
    headers: HeaderMap,
    Path((member, entry, t)): Path<(String, String, String)>,
    body: String,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    s.feedback
        .lock()
        .unwrap()
        .push((format!("/v2/entries/{member}/{entry}/{t}/feedback"), body));
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><submissionResult xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\"/>".into_response()
}

fn app(s: S) -> Router {
    Router::new()
        .route("/hashsharing/v2/entries", get(entries))
        .route("/hashsharing/v2/status", get(status))
        .route("/hashsharing/v2/feedback/{t}/reasons", get(reasons))
        .route(
            "/hashsharing/v2/entries/{member}/{entry}/{t}/feedback",
            put(feedback),
        )
        .with_state(s)
}

fn fps(rng: &mut impl Rng, video: bool) -> Vec<(&'static str, String)> {
    let mut v = vec![("md5", hex(rng, 32)), ("sha1", hex(rng, 40))];
    if video {
        v.push(("tmk-pdqf", String::new()));
        v.push(("videntifier", String::new()));
    } else {
        v.push(("pdq", hex(rng, 64)));
        if rng.random_bool(0.3) {
            v.push(("pdna", hex(rng, 288)));
        }
    }
    v
}

/// The server's full live set as Safeguard would hold it.
fn live_set(s: &Fake) -> BTreeSet<(String, String)> {
    s.entries
        .lock()
        .unwrap()
        .values()
        .filter(|e| !e.deleted)
        .flat_map(|e| e.fps.iter())
        .filter_map(|(t, v)| {
            let st = safeguard_exchange::ncmec::signal_type_for(t);
            canonical(&st, v)
        })
        .collect()
}

fn config(addr: std::net::SocketAddr, start_from: i64) -> NcmecConfig {
    let mut c = NcmecConfig::new(
        format!("http://{addr}/hashsharing").parse().unwrap(),
        USER,
        Secret::new(PASS),
    );
    c.start_from = start_from;
    c.initial_window_secs = 20 * 86_400;
    c.max_window_entries = 400;
    c.settle_secs = 0;
    c.retry = fast_retry();
    c
}

/// Runs fresh clients (as after a restart) until one catches up; returns every report.
async fn run_until_caught_up(
    addr: std::net::SocketAddr,
    start: i64,
    sink: Arc<dyn ExchangeSink>,
) -> Vec<RunReport> {
    common::run_until_caught_up(
        "NCMEC",
        || NcmecClient::new(config(addr, start)).unwrap(),
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
        move || view.snapshot("NCMEC").values.keys().cloned().collect(),
        None,
    )
    .await;
}

/// The same through the real engine over a temporary SQLite store: the bank (active
/// provenance) equals the live set, and deleted entries no longer match.
#[tokio::test]
async fn through_the_engine_deleted_entries_stop_matching() {
    let (engine, sink) = engine_with_bank("NCMEC_BANK");
    let e = engine.clone();
    scenario(
        sink,
        move || engine_bank_set(&e, "NCMEC_BANK", "NCMEC"),
        Some(engine),
    )
    .await;
}

async fn scenario(
    sink: Arc<dyn ExchangeSink>,
    bank_set: impl Fn() -> BTreeSet<(String, String)>,
    engine: Option<Arc<safeguard_engine::Engine>>,
) {
    let logs = LogBuf::default();
    let _guard = logs.install();
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let now = safeguard_engine::now_secs();
    let base = now - 40 * 86_400;
    let fake = Arc::new(Fake {
        page_size: 100,
        ..Fake::default()
    });
    {
        let mut m = fake.entries.lock().unwrap();
        for i in 0..3000 {
            let video = i % 5 == 0;
            let member = 40 + (i % 3) as i64;
            let id = format!("e{i}");
            m.insert(
                format!("{member}-{id}"),
                Entry {
                    id,
                    member,
                    video,
                    ts: base + rng.random_range(0..30 * 86_400),
                    // Some entries exist only as deletion records (deleted before we started).
                    deleted: i % 17 == 0,
                    classification: ["A1", "A2", "B1", "B2"][i % 4],
                    fps: fps(&mut rng, video),
                },
            );
        }
    }
    let addr = serve(app(fake.clone())).await;
    let start = base - 86_400;

    // Run 1: 429 with Retry-After, 503, a dropped connection (all retried inside the run),
    // then a malformed page, which ends the run.
    fake.faults.plan(3, Fault::TooMany(1));
    fake.faults.plan(5, Fault::Unavailable);
    fake.faults.plan(8, Fault::DropMidBody);
    fake.faults.plan(12, Fault::Malformed);
    let mut client = NcmecClient::new(config(addr, start)).unwrap();
    let r1 = run("NCMEC", &mut client, sink.clone(), &RunOptions::default()).await;
    drop(client);
    assert_eq!(
        r1.error_code.as_deref(),
        Some("exchange_protocol"),
        "{r1:?}"
    );
    assert!(
        r1.pages >= 3,
        "pages applied before the malformed one: {r1:?}"
    );
    assert_eq!(
        fake.faults.served_kinds(),
        vec![
            Fault::TooMany(1),
            Fault::Unavailable,
            Fault::DropMidBody,
            Fault::Malformed
        ]
    );
    let cp1 = sink.checkpoint("NCMEC").unwrap().unwrap();

    // Run 2: the process "crashes" after two more pages.
    let crashing: Arc<dyn ExchangeSink> = Arc::new(CrashAfter::new(sink.clone(), 2));
    let mut client = NcmecClient::new(config(addr, start)).unwrap();
    let r2 = run("NCMEC", &mut client, crashing, &RunOptions::default()).await;
    drop(client);
    assert_eq!(r2.error_code.as_deref(), Some("storage_error"));
    assert_eq!(r2.pages, 2);
    assert_ne!(
        sink.checkpoint("NCMEC").unwrap().unwrap(),
        cp1,
        "the crash came after progress"
    );

    // Run 3: 5xx past the retry budget ends the run; the checkpoint stays.
    let before = sink.checkpoint("NCMEC").unwrap();
    let n = fake.faults.requests();
    for k in 1..=3 {
        fake.faults.plan(n + k, Fault::Unavailable);
    }
    let mut client = NcmecClient::new(config(addr, start)).unwrap();
    let r3 = run("NCMEC", &mut client, sink.clone(), &RunOptions::default()).await;
    assert_eq!(
        r3.error_code.as_deref(),
        Some("exchange_unavailable"),
        "{r3:?}"
    );
    assert!(r3.error.as_deref().unwrap().contains("503"));
    assert_eq!(sink.checkpoint("NCMEC").unwrap(), before);

    // Then runs resume until caught up.
    let reports = run_until_caught_up(addr, start, sink.clone()).await;
    assert_same(&bank_set(), &live_set(&fake), "after the failures");
    let last = reports.last().unwrap();
    assert!(last.error.is_none());

    // Skipped types are counted, not lost silently: every video has TMK+PDQF and videntifier
    // links (counted once per fetch of the entry, so at least once per live video).
    let all: Vec<&RunReport> = [&r1, &r2, &r3].into_iter().chain(reports.iter()).collect();
    let skipped = |t: &str| {
        all.iter()
            .map(|r| r.skipped_types.get(t).copied().unwrap_or(0))
            .sum::<u64>()
    };
    let live_videos = fake
        .entries
        .lock()
        .unwrap()
        .values()
        .filter(|e| e.video && !e.deleted)
        .count() as u64;
    assert!(skipped("tmk_pdqf") >= live_videos && skipped("videntifier") >= live_videos);

    // The server changes: updates (new fingerprints), deletions, new entries, and a value two
    // entries share. Entries move to the present (the server stamps changes with their time).
    let now = safeguard_engine::now_secs();
    let shared_md5 = hex(&mut rng, 32);
    {
        let mut m = fake.entries.lock().unwrap();
        let keys: Vec<String> = m.keys().cloned().collect();
        for (i, k) in keys.iter().enumerate() {
            let e = m.get_mut(k).unwrap();
            if e.deleted {
                continue;
            }
            if i % 11 == 0 {
                e.fps = fps(&mut rng, e.video);
                e.ts = now;
            } else if i % 13 == 0 {
                e.deleted = true;
                e.ts = now;
            }
        }
        for i in 0..100 {
            let id = format!("n{i}");
            let mut f = fps(&mut rng, false);
            if i < 2 {
                f[0].1 = shared_md5.clone();
            }
            m.insert(
                format!("50-{id}"),
                Entry {
                    id,
                    member: 50,
                    video: false,
                    ts: now,
                    deleted: false,
                    classification: "A1",
                    fps: f,
                },
            );
        }
    }
    // The server's clock moves past the changes before the next run (the client reads up to
    // "now" at one-second resolution).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    fake.faults
        .plan(fake.faults.requests() + 2, Fault::DropMidBody);
    run_until_caught_up(addr, start, sink.clone()).await;
    assert_same(&bank_set(), &live_set(&fake), "after changes");

    // One of the two entries sharing a value is deleted: the value stays (the other still
    // lists it); when the second goes, the value goes.
    for (i, gone) in ["50-n1", "50-n0"].into_iter().enumerate() {
        {
            let mut m = fake.entries.lock().unwrap();
            let e = m.get_mut(gone).unwrap();
            e.deleted = true;
            e.ts = safeguard_engine::now_secs();
        }
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        run_until_caught_up(addr, start, sink.clone()).await;
        assert_same(&bank_set(), &live_set(&fake), "after changes");
        let held = bank_set().contains(&("md5".to_string(), shared_md5.clone()));
        assert_eq!(held, i == 0, "shared value after deleting {gone}");
        if let Some(engine) = &engine {
            assert_eq!(
                engine_matches(engine, "NCMEC_BANK", "md5", &shared_md5),
                i == 0
            );
        }
    }
    if let Some(engine) = &engine {
        // Every deleted entry's values stopped matching; every live value matches.
        let live = live_set(&fake);
        let entries = fake.entries.lock().unwrap().clone();
        let mut checked = 0;
        for e in entries.values().filter(|e| e.deleted) {
            for (t, v) in &e.fps {
                if let Some((t, v)) = canonical(t, v) {
                    if !live.contains(&(t.clone(), v.clone())) {
                        assert!(
                            !engine_matches(engine, "NCMEC_BANK", &t, &v),
                            "{t} {v} still matches"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 100, "{checked}");
        for (t, v) in live.iter().step_by(50) {
            assert!(
                engine_matches(engine, "NCMEC_BANK", t, v),
                "{t} {v} does not match"
            );
        }
    }

    // Nothing logged, stored or reported carries the password.
    let text = logs.text();
    assert!(text.contains("retrying"), "the retries were logged");
    assert!(!text.contains(PASS));
    for r in all {
        assert!(!format!("{r:?}").contains(PASS));
    }
    assert!(!format!("{:?}", config(addr, 0)).contains(PASS));
}

#[tokio::test]
async fn wrong_credentials_are_refused_without_echoing_them() {
    let fake = Arc::new(Fake {
        page_size: 10,
        ..Fake::default()
    });
    let addr = serve(app(fake)).await;
    let mut c = config(addr, 0);
    c.password = Secret::new("wrong-password-xyz");
    let mut client = NcmecClient::new(c).unwrap();
    let sink = Arc::new(MemorySink::new());
    let r = run("NCMEC", &mut client, sink.clone(), &RunOptions::default()).await;
    assert_eq!(r.error_code.as_deref(), Some("exchange_rejected"));
    let msg = r.error.unwrap();
    assert!(
        msg.contains("401") && !msg.contains("wrong-password-xyz"),
        "{msg}"
    );
    assert!(sink.snapshot("NCMEC").checkpoint.is_none());
}

#[tokio::test]
async fn feedback_sends_the_documented_request() {
    let fake = Arc::new(Fake {
        page_size: 10,
        ..Fake::default()
    });
    let addr = serve(app(fake.clone())).await;
    let client = NcmecClient::new(config(addr, 0)).unwrap();
    client
        .submit_feedback("image1", FeedbackType::Md5, &Vote::Affirmative)
        .await
        .unwrap();
    client
        .submit_feedback(
            "image1",
            FeedbackType::Pdq,
            &Vote::Negative {
                reason: REASON.into(),
            },
        )
        .await
        .unwrap();
    let err = client
        .submit_feedback(
            "image1",
            FeedbackType::Pdq,
            &Vote::Negative {
                reason: "not-a-reason".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_request");
    assert!(client
        .submit_feedback("../x", FeedbackType::Pdq, &Vote::Affirmative)
        .await
        .is_err());
    let got = fake.feedback.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![
            (
                "/v2/entries/77/image1/MD5/feedback".to_string(),
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedbackSubmission xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\"><affirmative/></feedbackSubmission>".to_string()
            ),
            (
                "/v2/entries/77/image1/PDQ/feedback".to_string(),
                format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedbackSubmission xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\"><negative><reasonIds><guid>{REASON}</guid></reasonIds></negative></feedbackSubmission>")
            ),
        ]
    );
}
