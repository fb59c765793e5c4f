//! One delivery attempt: one signed POST, classified.
//!
//! 2xx means delivered. 410 Gone means the endpoint asks to be removed: the dispatcher disables
//! it and dead-letters what it still had pending. Anything else (another status, a redirect,
//! a refused connection, a timeout) is retried on the schedule.

use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, USER_AGENT as USER_AGENT_HEADER};
use serde::{Deserialize, Serialize};

use crate::outbox::Pending;
use crate::signature::{sign_all, SIGNATURE_HEADER};
use crate::{Error, Result};

/// `User-Agent` of every delivery.
pub const USER_AGENT: &str = concat!("Safeguard-Webhook/", env!("CARGO_PKG_VERSION"));
/// Header carrying the event id, the receiver's idempotency key.
pub const EVENT_ID_HEADER: &str = "Safeguard-Event-Id";
/// Header carrying the event type, so a receiver can route before parsing the body.
pub const EVENT_TYPE_HEADER: &str = "Safeguard-Event-Type";
/// How much of a response body is kept in the attempt log, bytes: enough for an error page's
/// message, small enough that a chatty receiver cannot grow the log.
pub const RESPONSE_EXCERPT_BYTES: usize = 1024;
/// Default limit on one attempt, connect to response excerpt: 10 s. A receiver should
/// acknowledge and process later; one that takes longer is treated as failed and retried.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connect timeout of [`default_client`]: 5 s, the same order as [`DEFAULT_TIMEOUT`] but
/// shorter, so an unreachable host fails fast with a clear "connect" error.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How an attempt ended, for the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A 2xx answer.
    Delivered,
    /// Any failure worth retrying.
    Retry,
    /// 410 Gone: the endpoint asked to be removed.
    Gone,
}

/// What one attempt did, as the attempt log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// When the request was started, unix ms.
    pub at_ms: i64,
    /// The HTTP status, if a response came.
    pub status: Option<u16>,
    /// From starting the request to having the response excerpt (or failing), ms.
    pub latency_ms: u64,
    /// The first [`RESPONSE_EXCERPT_BYTES`] of the response body, invalid UTF-8 replaced.
    pub response_excerpt: String,
    /// What went wrong, if anything (connect error, timeout, redirect); `None` on a response
    /// that was read completely, whatever its status.
    pub error: Option<String>,
    /// The classification.
    pub outcome: Outcome,
}

/// A client fit for webhooks: no redirects (a 3xx is a failed attempt, not a hop to a target
/// the SSRF guard never saw), no system proxy, the connect timeout above. The server builds its
/// own client with the SSRF-guarded resolver; this one is for tests and simple embedders.
pub fn default_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
        .build()
        .map_err(|e| Error::InvalidConfig(format!("HTTP client: {}", chain(&e))))
}

/// An error with its sources, `outer: inner: …`, since reqwest's own message hides the cause
/// (a refused connection reads "error sending request" without it).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Sends one delivery and classifies the result. Never fails: every failure is an
/// [`AttemptRecord`] with [`Outcome::Retry`].
///
/// `now_ms` stamps the record and gives the signature's `t` (its seconds). `timeout` bounds the
/// whole attempt. `client` must not follow redirects (see [`default_client`]); if it does, the
/// attempt is recorded as a retry rather than credited to wherever the redirect went.
pub async fn attempt(
    client: &reqwest::Client,
    pending: &Pending,
    now_ms: i64,
    timeout: Duration,
) -> AttemptRecord {
    let t = now_ms.div_euclid(1000);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let request = client
        .post(&pending.url)
        .header(CONTENT_TYPE, "application/json")
        .header(
            SIGNATURE_HEADER,
            sign_all(&pending.secrets, t, &pending.body),
        )
        .header(EVENT_ID_HEADER, &pending.event_id)
        .header(EVENT_TYPE_HEADER, &pending.event_type)
        .header(USER_AGENT_HEADER, USER_AGENT)
        .timeout(timeout)
        .body(pending.body.clone());
    let elapsed =
        |started: Instant| u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let failed = |error: String| AttemptRecord {
        at_ms: now_ms,
        status: None,
        latency_ms: elapsed(started),
        response_excerpt: String::new(),
        error: Some(error),
        outcome: Outcome::Retry,
    };
    let mut response = match tokio::time::timeout_at(deadline, request.send()).await {
        Err(_) => return failed(format!("timed out after {} ms", timeout.as_millis())),
        Ok(Err(e)) if e.is_timeout() => {
            return failed(format!("timed out after {} ms", timeout.as_millis()))
        }
        Ok(Err(e)) => return failed(chain(&e)),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    let mut excerpt = Vec::new();
    let mut error = None;
    // Reads only as much of the body as the log keeps: a receiver streaming an endless body
    // costs one KiB and the time left, not memory.
    while excerpt.len() < RESPONSE_EXCERPT_BYTES {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => excerpt.extend_from_slice(&chunk),
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                error = Some(format!("reading the response: {}", chain(&e)));
                break;
            }
            Err(_) => {
                error = Some(format!(
                    "timed out reading the response after {} ms",
                    timeout.as_millis()
                ));
                break;
            }
        }
    }
    excerpt.truncate(RESPONSE_EXCERPT_BYTES);
    let redirected = response.url().as_str() != pending.url
        && reqwest::Url::parse(&pending.url).ok().as_ref() != Some(response.url());
    let outcome = if redirected {
        error = Some(format!(
            "the HTTP client followed a redirect to {}; webhook clients must not follow redirects",
            response.url()
        ));
        Outcome::Retry
    } else if status.is_success() {
        // The status is the receiver's acknowledgement; a body that broke off after it does
        // not undo the delivery.
        Outcome::Delivered
    } else if status == reqwest::StatusCode::GONE {
        Outcome::Gone
    } else {
        Outcome::Retry
    };
    AttemptRecord {
        at_ms: now_ms,
        status: Some(status.as_u16()),
        latency_ms: elapsed(started),
        response_excerpt: excerpt_text(&excerpt),
        error,
        outcome,
    }
}

/// The logged text of a response's first bytes: invalid UTF-8 and NUL bytes become U+FFFD.
/// PostgreSQL's `text` cannot hold a NUL, so one byte of a receiver's reply would fail the
/// attempt's record, and with it the run's: the same events sent again every pass, forever.
fn excerpt_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\0', "\u{FFFD}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_hold_no_nul_and_only_valid_text() {
        assert_eq!(excerpt_text(b"ok"), "ok");
        assert_eq!(excerpt_text(b"a\0b\xffc"), "a\u{FFFD}b\u{FFFD}c");
        assert!(!excerpt_text(&[0u8; RESPONSE_EXCERPT_BYTES]).contains('\0'));
    }
}
