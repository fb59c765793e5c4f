//! The dispatcher against real receivers on real sockets: order, signatures, headers, and the
//! faults of issue 13 (down, slow, 500, 410, horizon, continuous failure) and redrive.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use safeguard_webhook::event::types;
use safeguard_webhook::{
    attempt, default_client, now_ms, Config, DeliveryId, DeliveryState, Dispatcher, EndpointId,
    Error, Event, MemoryOutbox, Outbox, Outcome, Pending, Redrive, Schedule, Secret,
};
use serde_json::json;

use crate::receiver::{Receiver, Reply};

/// Short everything: retries within 100 ms, a 10 s horizon no test reaches unless it lowers it.
fn config() -> Config {
    Config {
        schedule: Schedule {
            base: Duration::from_millis(20),
            factor: 2,
            max_delay: Duration::from_millis(100),
            horizon: Duration::from_secs(10),
        },
        timeout: Duration::from_millis(1000),
        concurrency: 8,
        batch: 64,
        run: 16,
        tick: Duration::from_millis(10),
        disable_after: Duration::from_secs(60),
    }
}

/// A dispatcher running its loop on a task until stopped.
struct Harness {
    dispatcher: Arc<Dispatcher>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Harness {
    fn start(outbox: &Arc<MemoryOutbox>, config: Config) -> Harness {
        let as_outbox: Arc<dyn Outbox> = outbox.clone();
        let dispatcher =
            Arc::new(Dispatcher::new(as_outbox, default_client().unwrap(), config).unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = Arc::clone(&dispatcher);
        let task = tokio::spawn(async move {
            running
                .run(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Harness {
            dispatcher,
            stop: Some(stop),
            task,
        }
    }

    fn poke(&self) {
        self.dispatcher.notifier().notify_one();
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("run returns after shutdown")
            .unwrap();
    }
}

/// Polls `cond` every 10 ms until it holds; fails the test after `limit`.
async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn new_event(n: usize) -> Event {
    Event::new(
        types::CONTENT_VERDICT,
        now_ms() / 1000,
        json!({ "n": n, "verdict": "block" }),
    )
}

/// Enqueues `n` events to `endpoint`, returning their delivery ids and event ids.
fn enqueue(
    outbox: &MemoryOutbox,
    endpoint: EndpointId,
    n: usize,
) -> (Vec<DeliveryId>, Vec<String>) {
    let mut deliveries = Vec::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let event = new_event(i);
        deliveries.push(outbox.enqueue(endpoint, &event, now_ms()).unwrap());
        ids.push(event.id);
    }
    (deliveries, ids)
}

fn all_delivered(outbox: &MemoryOutbox, deliveries: &[DeliveryId]) -> bool {
    deliveries
        .iter()
        .all(|&d| outbox.state(d) == Some(DeliveryState::Delivered))
}

fn statuses(outbox: &MemoryOutbox, d: DeliveryId) -> Vec<Option<u16>> {
    outbox
        .attempts(d)
        .unwrap()
        .iter()
        .map(|a| a.status)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_in_order_per_endpoint_signed_with_headers() {
    let ra = Receiver::start("whsec_a", |_| Reply::status(200)).await;
    let rb = Receiver::start("whsec_b", |_| Reply::status(204)).await;
    let outbox = Arc::new(MemoryOutbox::new());
    let a = outbox.add_endpoint(&ra.url(), vec![Secret::new("whsec_a")]);
    let b = outbox.add_endpoint(&rb.url(), vec![Secret::new("whsec_b")]);
    let h = Harness::start(&outbox, config());
    let (mut da, mut db, mut ia, mut ib, mut bodies) = (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..20 {
        let event = new_event(i);
        let (endpoint, ds, is) = if i % 2 == 0 {
            (a, &mut da, &mut ia)
        } else {
            (b, &mut db, &mut ib)
        };
        ds.push(outbox.enqueue(endpoint, &event, now_ms()).unwrap());
        is.push(event.id.clone());
        bodies.push((event.id.clone(), event.to_body().unwrap()));
    }
    h.poke();
    wait_for("20 deliveries", Duration::from_secs(5), || {
        all_delivered(&outbox, &da) && all_delivered(&outbox, &db)
    })
    .await;
    assert_eq!(ra.first_arrivals(), ia, "endpoint a in order");
    assert_eq!(rb.first_arrivals(), ib, "endpoint b in order");
    for r in ra.log().iter().chain(rb.log().iter()) {
        assert_eq!(r.verified, Ok(()), "signature of {}", r.event_id);
        assert!(r.signature.starts_with("t="), "{}", r.signature);
        assert_eq!(r.content_type, "application/json");
        assert!(
            r.user_agent.starts_with("Safeguard-Webhook/"),
            "{}",
            r.user_agent
        );
        assert_eq!(r.event_type, types::CONTENT_VERDICT);
        let sent = &bodies.iter().find(|(id, _)| *id == r.event_id).unwrap().1;
        assert_eq!(&r.body, sent, "the body is the stored bytes");
        let parsed: Event = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(parsed.id, r.event_id);
    }
    assert_eq!(
        ra.log().len() + rb.log().len(),
        20,
        "no retries were needed"
    );
    assert_eq!(statuses(&outbox, da[0]), vec![Some(200)]);
    assert_eq!(statuses(&outbox, db[0]), vec![Some(204)]);
    // The counters move just after the outbox records (never before): wait for them.
    wait_for("metrics counted", Duration::from_secs(5), || {
        let m = h.dispatcher.metrics();
        (m.attempts, m.delivered, m.retried) == (20, 20, 0)
    })
    .await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_does_not_hold_back_others() {
    let slow = Receiver::start("whsec_s", |_| Reply {
        status: 200,
        delay: Duration::from_millis(300),
    })
    .await;
    let fast = Receiver::start("whsec_f", |_| Reply::status(200)).await;
    let outbox = Arc::new(MemoryOutbox::new());
    let s = outbox.add_endpoint(&slow.url(), vec![Secret::new("whsec_s")]);
    let f = outbox.add_endpoint(&fast.url(), vec![Secret::new("whsec_f")]);
    let (ds, is) = enqueue(&outbox, s, 3);
    let (df, iff) = enqueue(&outbox, f, 10);
    let h = Harness::start(&outbox, config());
    wait_for("both endpoints drained", Duration::from_secs(5), || {
        all_delivered(&outbox, &ds) && all_delivered(&outbox, &df)
    })
    .await;
    assert_eq!(slow.first_arrivals(), is);
    assert_eq!(fast.first_arrivals(), iff);
    let slow_log = slow.log();
    let fast_log = fast.log();
    // Across endpoints: the fast one finished while the slow one was on its first event.
    assert!(fast_log.last().unwrap().at < slow_log[1].at);
    // Within an endpoint: the next event only after the previous one was answered.
    for pair in slow_log.windows(2) {
        assert!(pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(290));
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_delivers_everything_due_and_nothing_else() {
    let r = Receiver::start("whsec_r", |_| Reply::status(200)).await;
    let outbox = Arc::new(MemoryOutbox::new());
    let as_outbox: Arc<dyn Outbox> = outbox.clone();
    let dispatcher = Dispatcher::new(as_outbox, default_client().unwrap(), config()).unwrap();
    let endpoints: Vec<EndpointId> = (0..3)
        .map(|_| outbox.add_endpoint(&r.url(), vec![Secret::new("whsec_r")]))
        .collect();
    let now = now_ms();
    let mut all = Vec::new();
    for &e in &endpoints {
        all.extend(enqueue(&outbox, e, 2).0);
    }
    // Written for later: not due in this pass, and not sent.
    let later = outbox
        .enqueue(endpoints[0], &new_event(9), now + 60_000)
        .unwrap();
    assert_eq!(dispatcher.run_once(now + 1000).await.unwrap(), 6);
    assert!(all_delivered(&outbox, &all));
    assert_eq!(
        outbox.state(later),
        Some(DeliveryState::Pending {
            next_attempt_at_ms: now + 60_000
        })
    );
    assert_eq!(dispatcher.run_once(now + 1000).await.unwrap(), 0);
    assert_eq!(r.log().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_then_up_gets_everything_in_order() {
    // A port nobody listens on (yet).
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let outbox = Arc::new(MemoryOutbox::new());
    let e = outbox.add_endpoint(&format!("http://{addr}/hook"), vec![Secret::new("whsec_d")]);
    let (ds, ids) = enqueue(&outbox, e, 5);
    let h = Harness::start(&outbox, config());
    wait_for("three refused attempts", Duration::from_secs(5), || {
        outbox.attempts(ds[0]).unwrap().len() >= 3
    })
    .await;
    for a in outbox.attempts(ds[0]).unwrap() {
        assert_eq!((a.status, a.outcome), (None, Outcome::Retry));
        assert!(!a.error.unwrap_or_default().is_empty());
    }
    assert!(
        outbox.attempts(ds[1]).unwrap().is_empty(),
        "later events wait"
    );
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let r = Receiver::start_on(listener, "whsec_d", |_| Reply::status(200));
    wait_for("recovery", Duration::from_secs(5), || {
        all_delivered(&outbox, &ds)
    })
    .await;
    assert_eq!(r.first_arrivals(), ids);
    assert!(r.log().iter().all(|x| x.verified.is_ok()));
    assert_eq!(outbox.endpoint_status(e).unwrap(), (true, None));
    assert_eq!(outbox.endpoint_failing_since(e).unwrap(), None, "recovered");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_receiver_times_out_and_is_retried() {
    let r = Receiver::start("whsec_t", |got| Reply {
        status: 200,
        // The first request of each event is answered after the timeout.
        delay: if got.previous == 0 {
            Duration::from_millis(1500)
        } else {
            Duration::ZERO
        },
    })
    .await;
    let outbox = Arc::new(MemoryOutbox::new());
    let e = outbox.add_endpoint(&r.url(), vec![Secret::new("whsec_t")]);
    let (ds, ids) = enqueue(&outbox, e, 3);
    let h = Harness::start(
        &outbox,
        Config {
            timeout: Duration::from_millis(300),
            ..config()
        },
    );
    wait_for("retried deliveries", Duration::from_secs(6), || {
        all_delivered(&outbox, &ds)
    })
    .await;
    assert_eq!(r.first_arrivals(), ids);
    for &d in &ds {
        let attempts = outbox.attempts(d).unwrap();
        assert_eq!(attempts.len(), 2, "{attempts:?}");
        assert_eq!(attempts[0].status, None);
        assert!(
            attempts[0].error.as_deref().unwrap().contains("timed out"),
            "{attempts:?}"
        );
        assert!(attempts[0].latency_ms < 1000, "the timeout cut it short");
        assert_eq!(attempts[1].status, Some(200));
    }
    // At least once: the receiver saw each event twice and must deduplicate by id.
    assert_eq!(r.log().len(), 6);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_then_success() {
    let r = Receiver::start("whsec_5", |got| {
        Reply::status(if got.previous < 3 { 500 } else { 200 })
    })
    .await;
    let outbox = Arc::new(MemoryOutbox::new());
    let e = outbox.add_endpoint(&r.url(), vec![Secret::new("whsec_5")]);
    let (ds, ids) = enqueue(&outbox, e, 3);
    let h = Harness::start(&outbox, config());
    wait_for("delivered after 500s", Duration::from_secs(6), || {
        all_delivered(&outbox, &ds)
    })
    .await;
    assert_eq!(r.first_arrivals(), ids);
    for &d in &ds {
        assert_eq!(
            statuses(&outbox, d),
            vec![Some(500), Some(500), Some(500), Some(200)]
        );
        let first = &outbox.attempts(d).unwrap()[0];
        assert_eq!(first.response_excerpt, "answered 500");
        assert_eq!(first.outcome, Outcome::Retry);
    }
    // The three events were retried one after another, never interleaved.
    let order: Vec<String> = r.log().iter().map(|x| x.event_id.clone()).collect();
    let expected: Vec<String> = ids.iter().flat_map(|id| vec![id.clone(); 4]).collect();
    assert_eq!(order, expected);
    wait_for("metrics counted", Duration::from_secs(5), || {
        let m = h.dispatcher.metrics();
        (m.attempts, m.delivered, m.retried) == (12, 3, 9)
    })
    .await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_endpoint_and_dead_letters_its_events() {
    let gone = Receiver::start("whsec_g", |_| Reply::status(410)).await;
    let fine = Receiver::start("whsec_o", |_| Reply::status(200)).await;
    let outbox = Arc::new(MemoryOutbox::new());
    let g = outbox.add_endpoint(&gone.url(), vec![Secret::new("whsec_g")]);
    let o = outbox.add_endpoint(&fine.url(), vec![Secret::new("whsec_o")]);
    let (dg, _) = enqueue(&outbox, g, 4);
    let (dok, _) = enqueue(&outbox, o, 2);
    let h = Harness::start(&outbox, config());
    wait_for(
        "disabled and the other delivered",
        Duration::from_secs(5),
        || !outbox.endpoint_status(g).unwrap().0 && all_delivered(&outbox, &dok),
    )
    .await;
    let (enabled, reason) = outbox.endpoint_status(g).unwrap();
    assert!(!enabled);
    assert!(reason.unwrap().contains("410"));
    let dead: Vec<DeliveryId> = outbox
        .dead_letters(g)
        .unwrap()
        .iter()
        .map(|d| d.delivery_id)
        .collect();
    assert_eq!(dead, dg, "every pending event, in order");
    assert_eq!(
        gone.log().len(),
        1,
        "nothing more is sent to a gone endpoint"
    );
    let first = &outbox.attempts(dg[0]).unwrap()[0];
    assert_eq!((first.status, first.outcome), (Some(410), Outcome::Gone));
    assert_eq!(h.dispatcher.disabled_endpoints().await.unwrap(), 1);
    wait_for("metrics counted", Duration::from_secs(5), || {
        let m = h.dispatcher.metrics();
        (m.endpoints_disabled, m.dead_lettered) == (1, 4)
    })
    .await;
    // Later events for the disabled endpoint are not sent either.
    let later = outbox.enqueue(g, &new_event(7), now_ms()).unwrap();
    h.poke();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(outbox.attempts(later).unwrap().is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn horizon_dead_letters_and_redrive_delivers_in_order() {
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&healthy);
    let r = Receiver::start("whsec_h", move |_| {
        Reply::status(if flag.load(Ordering::SeqCst) {
            200
        } else {
            503
        })
    })
    .await;
    let outbox = Arc::new(MemoryOutbox::new());
    let e = outbox.add_endpoint(&r.url(), vec![Secret::new("whsec_h")]);
    let (ds, ids) = enqueue(&outbox, e, 3);
    let horizon = 250;
    let mut cfg = config();
    cfg.schedule.horizon = Duration::from_millis(horizon);
    cfg.schedule.max_delay = Duration::from_millis(50);
    let h = Harness::start(&outbox, cfg);
    wait_for("three dead letters", Duration::from_secs(6), || {
        outbox.dead_letters(e).unwrap().len() == 3
    })
    .await;
    let dead = outbox.dead_letters(e).unwrap();
    assert_eq!(dead.iter().map(|d| d.delivery_id).collect::<Vec<_>>(), ds);
    let mut previous_first = 0;
    for d in &dead {
        let first = d.first_attempt_at_ms.unwrap();
        assert!(
            first > previous_first,
            "each started after the one before died"
        );
        previous_first = first;
        let attempts = outbox.attempts(d.delivery_id).unwrap();
        assert!(attempts.len() >= 2, "{attempts:?}");
        assert_eq!(attempts.len() as u32, d.attempts);
        let last = attempts.last().unwrap();
        let horizon = horizon as i64;
        // Given up only once the horizon had passed, and not retried far beyond it.
        assert!(
            last.at_ms + last.latency_ms as i64 >= first + horizon - 5,
            "{attempts:?}"
        );
        assert!(last.at_ms <= first + horizon + 300, "{attempts:?}");
    }
    assert_eq!(
        outbox.endpoint_status(e).unwrap(),
        (true, None),
        "dead letters alone do not disable"
    );
    // Recovery: a new event flows at once, the dead letters stay put until redriven.
    healthy.store(true, Ordering::SeqCst);
    let mark = r.log().len();
    let (fresh, fresh_ids) = enqueue(&outbox, e, 1);
    h.poke();
    wait_for("a new event after recovery", Duration::from_secs(3), || {
        all_delivered(&outbox, &fresh)
    })
    .await;
    assert_eq!(outbox.dead_letters(e).unwrap().len(), 3);
    // Redrive one, then the rest: each goes out in its original order.
    let one = Redrive::Only(vec![ds[1]]);
    assert_eq!(outbox.redrive(e, &one, now_ms()).unwrap(), 1);
    h.poke();
    wait_for("the redriven one", Duration::from_secs(3), || {
        all_delivered(&outbox, &ds[1..2])
    })
    .await;
    assert_eq!(outbox.redrive(e, &Redrive::All, now_ms()).unwrap(), 2);
    h.poke();
    wait_for("all redriven", Duration::from_secs(3), || {
        all_delivered(&outbox, &ds)
    })
    .await;
    let after: Vec<String> = r.log()[mark..].iter().map(|x| x.event_id.clone()).collect();
    assert_eq!(
        after,
        vec![
            fresh_ids[0].clone(),
            ids[1].clone(),
            ids[0].clone(),
            ids[2].clone()
        ]
    );
    assert!(r.log().iter().all(|x| x.verified.is_ok()));
    assert!(outbox.dead_letters(e).unwrap().is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_past_disable_after_is_disabled() {
    let r = Receiver::start("whsec_x", |_| Reply::status(500)).await;
    let outbox = Arc::new(MemoryOutbox::new());
    let e = outbox.add_endpoint(&r.url(), vec![Secret::new("whsec_x")]);
    let (ds, _) = enqueue(&outbox, e, 20);
    let mut cfg = config();
    cfg.schedule.horizon = Duration::from_millis(200);
    cfg.disable_after = Duration::from_millis(400);
    let started = now_ms();
    let h = Harness::start(&outbox, cfg);
    wait_for("disabled", Duration::from_secs(5), || {
        !outbox.endpoint_status(e).unwrap().0
    })
    .await;
    let disabled_after = now_ms() - started;
    let reason = outbox.endpoint_status(e).unwrap().1.unwrap();
    assert!(reason.contains("failing continuously"), "{reason}");
    assert!(disabled_after >= 400, "disabled after {disabled_after} ms");
    assert!(ds
        .iter()
        .all(|&d| outbox.state(d) == Some(DeliveryState::Dead)));
    assert_eq!(outbox.dead_letters(e).unwrap().len(), 20);
    assert!(outbox.attempts(ds[19]).unwrap().is_empty(), "never reached");
    assert_eq!(h.dispatcher.disabled_endpoints().await.unwrap(), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_wakes_the_loop_and_shutdown_returns() {
    let r = Receiver::start("whsec_n", |_| Reply::status(200)).await;
    let outbox = Arc::new(MemoryOutbox::new());
    let e = outbox.add_endpoint(&r.url(), vec![Secret::new("whsec_n")]);
    // A tick far longer than the test: only the notification can start the pass.
    let h = Harness::start(
        &outbox,
        Config {
            tick: Duration::from_secs(600),
            ..config()
        },
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (ds, _) = enqueue(&outbox, e, 2);
    assert!(outbox.attempts(ds[0]).unwrap().is_empty());
    h.poke();
    wait_for("delivered after a poke", Duration::from_secs(3), || {
        all_delivered(&outbox, &ds)
    })
    .await;
    let stopping = Instant::now();
    h.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(1),
        "the 600 s tick does not delay shutdown"
    );
}

#[test]
fn config_is_validated() {
    let outbox: Arc<dyn Outbox> = Arc::new(MemoryOutbox::new());
    let client = default_client().unwrap();
    let mut cfg = Config::default();
    assert!(Dispatcher::new(Arc::clone(&outbox), client.clone(), cfg).is_ok());
    cfg.disable_after = cfg.schedule.horizon - Duration::from_secs(1);
    let err = Dispatcher::new(Arc::clone(&outbox), client.clone(), cfg).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    let zero = Config {
        concurrency: 0,
        ..Config::default()
    };
    assert!(matches!(
        Dispatcher::new(outbox, client, zero),
        Err(Error::InvalidConfig(_))
    ));
}

/// A server for the single-attempt checks: a long body, a redirect, 410, a slow answer.
async fn odd_server() -> (std::net::SocketAddr, Arc<AtomicBool>) {
    use axum::response::Redirect;
    use axum::routing::post;
    let target_hit = Arc::new(AtomicBool::new(false));
    let hit = Arc::clone(&target_hit);
    let app = axum::Router::new()
        .route(
            "/big",
            post(|| async {
                // 1 + 2 × 700 bytes: the 1 KiB cut falls inside a two-byte character.
                format!("x{}", "é".repeat(700))
            }),
        )
        .route(
            "/redirect",
            post(|| async { Redirect::temporary("/target") }),
        )
        .route(
            "/target",
            post(move || {
                hit.store(true, Ordering::SeqCst);
                async { "target" }
            }),
        )
        .route(
            "/gone",
            post(|| async { (axum::http::StatusCode::GONE, "bye") }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, target_hit)
}

fn pending(url: String) -> Pending {
    let event = new_event(0);
    Pending {
        delivery_id: DeliveryId(1),
        endpoint_id: EndpointId(1),
        url,
        secrets: vec![Secret::new("whsec_1")],
        event_id: event.id.clone(),
        event_type: event.r#type.clone(),
        body: event.to_body().unwrap(),
        first_attempt_at_ms: None,
        attempts: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_attempts_are_classified() {
    let (addr, target_hit) = odd_server().await;
    let client = default_client().unwrap();
    let second = Duration::from_secs(1);
    let now = now_ms();

    let big = attempt(&client, &pending(format!("http://{addr}/big")), now, second).await;
    assert_eq!(
        (big.status, big.outcome, big.at_ms),
        (Some(200), Outcome::Delivered, now)
    );
    assert!(big.response_excerpt.starts_with("xéé"));
    assert!(
        big.response_excerpt.ends_with('\u{fffd}'),
        "cut mid-character, replaced"
    );
    assert_eq!(big.response_excerpt.chars().count(), 1 + 511 + 1);
    assert_eq!(big.error, None);

    let redirect = attempt(
        &client,
        &pending(format!("http://{addr}/redirect")),
        now,
        second,
    )
    .await;
    assert_eq!(
        (redirect.status, redirect.outcome),
        (Some(307), Outcome::Retry)
    );
    assert!(
        !target_hit.load(Ordering::SeqCst),
        "the redirect was not followed"
    );

    // A client that follows redirects is caught rather than credited.
    let following = reqwest::Client::builder().no_proxy().build().unwrap();
    let followed = attempt(
        &following,
        &pending(format!("http://{addr}/redirect")),
        now,
        second,
    )
    .await;
    assert_eq!(followed.outcome, Outcome::Retry);
    assert!(followed.error.unwrap().contains("redirect"));

    let gone = attempt(
        &client,
        &pending(format!("http://{addr}/gone")),
        now,
        second,
    )
    .await;
    assert_eq!((gone.status, gone.outcome), (Some(410), Outcome::Gone));
    assert_eq!(gone.response_excerpt, "bye");

    let short = Duration::from_millis(200);
    let slow = attempt(&client, &pending(format!("http://{addr}/slow")), now, short).await;
    assert_eq!((slow.status, slow.outcome), (None, Outcome::Retry));
    assert!(slow.error.unwrap().contains("timed out"));
    assert!(
        slow.latency_ms >= 190 && slow.latency_ms < 1500,
        "{}",
        slow.latency_ms
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let refused = attempt(
        &client,
        &pending(format!("http://{closed}/hook")),
        now,
        second,
    )
    .await;
    assert_eq!((refused.status, refused.outcome), (None, Outcome::Retry));
    let error = refused.error.unwrap();
    assert!(error.to_lowercase().contains("connect"), "{error}");
}
