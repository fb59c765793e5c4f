//! A webhook receiver on a real socket (axum on 127.0.0.1) that records every request, checks
//! its signature with `verify`, and answers as the test's behaviour says.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use safeguard_webhook::{verify, VerifyError, DEFAULT_TOLERANCE};

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub event_id: String,
    pub event_type: String,
    pub content_type: String,
    pub user_agent: String,
    pub signature: String,
    pub body: Vec<u8>,
    /// The signature check against the receiver's secret at arrival time.
    pub verified: Result<(), VerifyError>,
    /// Requests for this event id before this one.
    pub previous: usize,
    pub at: Instant,
}

/// How to answer one request.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            delay: Duration::ZERO,
        }
    }
}

type Behaviour = dyn Fn(&Received) -> Reply + Send + Sync;

struct Shared {
    secret: String,
    log: Mutex<Vec<Received>>,
    behaviour: Box<Behaviour>,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Starts on a free port.
    pub async fn start(
        secret: &str,
        behaviour: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::start_on(listener, secret, behaviour)
    }

    /// Starts on a given listener (to come back on a known port).
    pub fn start_on(
        listener: tokio::net::TcpListener,
        secret: &str,
        behaviour: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) -> Receiver {
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            secret: secret.to_owned(),
            log: Mutex::new(Vec::new()),
            behaviour: Box::new(behaviour),
        });
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn log(&self) -> Vec<Received> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Distinct event ids in order of first arrival.
    pub fn first_arrivals(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for r in self.log() {
            if !seen.contains(&r.event_id) {
                seen.push(r.event_id);
            }
        }
        seen
    }
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn hook(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let signature = header(&headers, "safeguard-signature");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let reply = {
        let mut log = shared.log.lock().unwrap();
        let event_id = header(&headers, "safeguard-event-id");
        let previous = log.iter().filter(|r| r.event_id == event_id).count();
        let received = Received {
            event_id,
            event_type: header(&headers, "safeguard-event-type"),
            content_type: header(&headers, "content-type"),
            user_agent: header(&headers, "user-agent"),
            verified: verify(&shared.secret, &signature, &body, now, DEFAULT_TOLERANCE),
            signature,
            body: body.to_vec(),
            previous,
            at: Instant::now(),
        };
        let reply = (shared.behaviour)(&received);
        log.push(received);
        reply
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap();
    (status, format!("answered {}", reply.status))
}
