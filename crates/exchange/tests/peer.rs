//! The peer client against a local server with the shape of Safeguard's
//! `GET /v1/banks/{bank}/contents?after=&limit=` (Bearer key): items in ascending id order,
//! `next_after` while a page is full; deletions show only as missing ids.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use common::*;
use rand::{Rng, SeedableRng};
use safeguard_exchange::peer::{PeerClient, PeerConfig};
use safeguard_exchange::{run, ExchangeSink, MemorySink, RunOptions, Secret};

const KEY: &str =
    "sg_0123456789abcdef_feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface";

#[derive(Debug, Clone)]
struct Item {
    signals: BTreeMap<String, String>,
    disable_until_ts: i64,
}

#[derive(Default)]
struct Fake {
    items: Mutex<BTreeMap<u64, Item>>,
    next_id: Mutex<u64>,
    faults: Faults,
}

type S = Arc<Fake>;

async fn contents(
    State(s): State<S>,
    h: HeaderMap,
    Path(bank): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if h.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {KEY}")) {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"error":{"code":"invalid_api_key"}}"#,
        )
            .into_response();
    }
    if bank != "PARTNER_BANK" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let fault = s.faults.next();
    let after: u64 = q.get("after").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit: usize = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let items = s.items.lock().unwrap();
    let page: Vec<(u64, Item)> = items
        .range(after + 1..)
        .take(limit)
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let next = (page.len() == limit)
        .then(|| page.last().map(|p| p.0))
        .flatten();
    let body = serde_json::json!({
        "contents": page.iter().map(|(id, it)| serde_json::json!({
            "id": id, "bank": bank, "signals": it.signals, "metadata": null, "note": null,
            "disable_until_ts": it.disable_until_ts, "enabled": it.disable_until_ts == 0,
            "original_media_uri": null, "created_at": 0, "updated_at": 0,
        })).collect::<Vec<_>>(),
        "next_after": next,
    });
    respond(
        fault,
        "application/json",
        serde_json::to_vec(&body).unwrap(),
    )
}

impl Fake {
    fn add(&self, rng: &mut impl Rng) {
        let mut id = self.next_id.lock().unwrap();
        *id += rng.random_range(1..4);
        let mut signals = BTreeMap::new();
        signals.insert("pdq".to_string(), hex(rng, 64));
        if rng.random_bool(0.5) {
            signals.insert("md5".to_string(), hex(rng, 32));
        }
        if rng.random_bool(0.1) {
            signals.insert("vpdq_like_unknown".to_string(), hex(rng, 10));
        }
        let disable_until_ts = if rng.random_bool(0.05) {
            4_000_000_000
        } else {
            0
        };
        self.items.lock().unwrap().insert(
            *id,
            Item {
                signals,
                disable_until_ts,
            },
        );
    }

    fn live(&self) -> BTreeSet<(String, String)> {
        self.items
            .lock()
            .unwrap()
            .values()
            .filter(|i| i.disable_until_ts == 0)
            .flat_map(|i| i.signals.iter())
            .filter_map(|(t, v)| canonical(t, v))
            .collect()
    }
}

fn config(addr: std::net::SocketAddr) -> PeerConfig {
    let mut c = PeerConfig::new(
        format!("http://{addr}").parse().unwrap(),
        "PARTNER_BANK",
        Secret::new(KEY),
    );
    c.page_size = 50;
    c.retry = fast_retry();
    c
}

async fn until_caught_up(addr: std::net::SocketAddr, sink: Arc<dyn ExchangeSink>) {
    common::run_until_caught_up("PEER", || PeerClient::new(config(addr)).unwrap(), sink).await;
}

#[tokio::test]
async fn resumes_after_every_failure_and_tracks_deletions() {
    let logs = LogBuf::default();
    let _guard = logs.install();
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let fake = Arc::new(Fake::default());
    for _ in 0..1200 {
        fake.add(&mut rng);
    }
    let addr = serve(
        Router::new()
            .route("/v1/banks/{bank}/contents", get(contents))
            .with_state(fake.clone()),
    )
    .await;
    let mem = Arc::new(MemorySink::new());
    let sink: Arc<dyn ExchangeSink> = mem.clone();

    fake.faults.plan(2, Fault::TooMany(1));
    fake.faults.plan(4, Fault::DropMidBody);
    fake.faults.plan(5, Fault::Unavailable);
    fake.faults.plan(8, Fault::Malformed);
    let mut c = PeerClient::new(config(addr)).unwrap();
    let r1 = run("PEER", &mut c, sink.clone(), &RunOptions::default()).await;
    assert_eq!(
        r1.error_code.as_deref(),
        Some("exchange_protocol"),
        "{r1:?}"
    );
    assert_eq!(
        fake.faults.served_kinds(),
        vec![
            Fault::TooMany(1),
            Fault::DropMidBody,
            Fault::Unavailable,
            Fault::Malformed
        ]
    );
    let crashing: Arc<dyn ExchangeSink> = Arc::new(CrashAfter::new(sink.clone(), 4));
    let mut c = PeerClient::new(config(addr)).unwrap();
    let r2 = run("PEER", &mut c, crashing, &RunOptions::default()).await;
    assert_eq!(
        (r2.pages, r2.error_code.as_deref()),
        (4, Some("storage_error"))
    );
    until_caught_up(addr, sink.clone()).await;
    let bank = || {
        mem.snapshot("PEER")
            .values
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    assert_same(&bank(), &fake.live(), "first pass");

    // Deletions (including the first and the last item), new items, a re-enabled item.
    {
        let mut items = fake.items.lock().unwrap();
        let ids: Vec<u64> = items.keys().copied().collect();
        for (i, id) in ids.iter().enumerate() {
            if i % 7 == 0 || i == ids.len() - 1 {
                items.remove(id);
            } else if items[id].disable_until_ts != 0 {
                items.get_mut(id).unwrap().disable_until_ts = 0;
            }
        }
    }
    for _ in 0..100 {
        fake.add(&mut rng);
    }
    // A pass interrupted half-way, then finished by the next runs.
    let crashing: Arc<dyn ExchangeSink> = Arc::new(CrashAfter::new(sink.clone(), 10));
    let mut c = PeerClient::new(config(addr)).unwrap();
    run("PEER", &mut c, crashing, &RunOptions::default()).await;
    until_caught_up(addr, sink.clone()).await;
    assert_same(&bank(), &fake.live(), "after deletions");

    // Everything deleted at the peer: the bank empties.
    fake.items.lock().unwrap().clear();
    until_caught_up(addr, sink.clone()).await;
    assert!(bank().is_empty());
    assert!(!logs.text().contains(KEY));
}
