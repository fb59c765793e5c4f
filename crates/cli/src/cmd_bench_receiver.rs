//! `safeguard bench receiver`: a webhook receiver for benchmarks and the crash loop. It
//! verifies every delivery's `Safeguard-Signature` (the same check as docs/webhooks.md),
//! answers 200 to valid ones and 400 to the rest, and counts what it saw:
//!
//! - `GET /stats`: `{"received", "valid", "invalid", "distinct", "duplicates"}`;
//! - `GET /ids`: every distinct event id seen, one per line, in arrival order.
//!
//! A Python receiver would be the bottleneck of the submission benchmark (thousands of
//! deliveries a second on the same two cores); this one costs microseconds a request.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// Arguments of `safeguard bench receiver`.
#[derive(Debug, clap::Args)]
pub struct ReceiverArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// The endpoint's signing secret (`whsec_…`, as `POST /v1/webhooks` answered it).
    #[arg(long, env = "SAFEGUARD_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Largest clock difference accepted, seconds (docs/webhooks.md: 300).
    #[arg(long, default_value_t = 300)]
    pub tolerance: u64,
}

#[derive(Default)]
struct Seen {
    received: u64,
    valid: u64,
    invalid: u64,
    duplicates: u64,
    distinct: HashSet<String>,
    order: Vec<String>,
}

struct Shared {
    secret: String,
    tolerance: Duration,
    seen: Mutex<Seen>,
}

async fn hook(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = headers
        .get("safeguard-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ok = safeguard_webhook::verify(
        &s.secret,
        header,
        &body,
        safeguard_engine::now_secs(),
        s.tolerance,
    )
    .is_ok();
    // The id is read from the verified body, not the header, so it is what was signed.
    let id = ok
        .then(|| serde_json::from_slice::<Value>(&body).ok())
        .flatten()
        .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned));
    let mut seen = s
        .seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    seen.received += 1;
    match id {
        Some(id) => {
            seen.valid += 1;
            if seen.distinct.insert(id.clone()) {
                seen.order.push(id);
            } else {
                seen.duplicates += 1;
            }
            StatusCode::OK
        }
        None => {
            seen.invalid += 1;
            StatusCode::BAD_REQUEST
        }
    }
}

async fn stats(State(s): State<Arc<Shared>>) -> Json<Value> {
    let seen = s
        .seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Json(json!({
        "received": seen.received,
        "valid": seen.valid,
        "invalid": seen.invalid,
        "distinct": seen.distinct.len(),
        "duplicates": seen.duplicates,
    }))
}

async fn ids(State(s): State<Arc<Shared>>) -> String {
    let seen = s
        .seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = String::with_capacity(seen.order.len() * 41);
    for id in &seen.order {
        out.push_str(id);
        out.push('\n');
    }
    out
}

/// Runs `safeguard bench receiver` until interrupted.
pub fn run(args: &ReceiverArgs) -> anyhow::Result<ExitCode> {
    let shared = Arc::new(Shared {
        secret: args.secret.clone(),
        tolerance: Duration::from_secs(args.tolerance),
        seen: Mutex::new(Seen::default()),
    });
    let app = Router::new()
        .route("/hook", post(hook))
        .route("/stats", get(stats))
        .route("/ids", get(ids))
        .with_state(shared);
    // One worker thread: the receiver shares the machine with the server it measures.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        eprintln!(
            "receiver listening on http://{}/hook",
            listener.local_addr()?
        );
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
