//! HTTPS API transport: **awaiting the NCA's specification**.
//!
//! reg 6(2) allows reports through an API, but the NCA has published no specification or
//! schema. This transport is a configurable placeholder with the shape such APIs usually
//! have, so that the rest of the pipeline (assessment, clocks, retention, recording the
//! reference) can be built and tested now, and only this module changes when the
//! specification arrives:
//!
//! - `POST` to a configured HTTPS endpoint, `Authorization: Bearer <token>`;
//! - body `application/json`: `{"report": <Report>, "files": [{"name", "sha256",
//!   "content_base64"}]}`. Files travel base64 inside the JSON rather than as multipart: one
//!   document whose hashes and names can be checked together, no extra client feature, at
//!   the cost of a third more bytes; [`REQUEST_MAX`] bounds it;
//! - `Idempotency-Key: <SHA-256 of the body, hex>`, so that a retry after a lost answer can
//!   be recognised as the same report (the NCA asks for no duplicate referrals);
//! - a 2xx answer is JSON with a string field `reference` ([`NcaReference`]);
//! - 401 and 403 are [`Error::Auth`]; other 4xx (except 408 and 429) are [`Error::Rejected`]
//!   with the answer's message, truncated to [`ERROR_BODY_MAX`]; neither is retried, because
//!   sending the same request again cannot change the answer;
//! - connection errors, timeouts, 408, 429 and 5xx are retried with exponential backoff
//!   ([`RetryPolicy`]), then reported as [`Error::Transport`].
//!
//! A 2xx answer without a usable reference is [`Error::BadResponse`] and is *not* retried:
//! the NCA may have taken the report, and a second copy would be a duplicate. The caller
//! should record the failure and ask the NCA, not send again blindly.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;
use zeroize::Zeroizing;

use crate::bundle::ContentFile;
use crate::reference::NcaReference;
use crate::report::Report;
use crate::Error;

/// Most characters of an error answer's message kept in [`Error::Rejected`] and
/// [`Error::Auth`]: enough for any real explanation, short enough for a log line.
pub const ERROR_BODY_MAX: usize = 1024;
/// Largest answer read from the API, bytes: 64 KiB. An answer carries a reference or an
/// error message; a larger body is not one of those and is not read into memory.
pub const ANSWER_MAX: usize = 64 * 1024;
/// Largest request body sent, bytes: 512 MiB (after base64). Larger cases are split over
/// several reports or sent as a bundle through the portal.
pub const REQUEST_MAX: usize = 512 << 20;
/// Default limit on one attempt (connect, send, answer): two minutes, for a large upload on
/// a slow link.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest bearer token accepted, bytes; real tokens (JWTs included) are far shorter.
pub const TOKEN_MAX: usize = 8192;

/// A bearer token. Never printed (`Debug` shows `BearerToken(***)`); wiped when dropped.
#[derive(Clone)]
pub struct BearerToken(Zeroizing<String>);

impl BearerToken {
    /// Wraps a token: non-empty, at most [`TOKEN_MAX`] bytes, visible ASCII only (it goes in
    /// a header).
    pub fn new(token: impl Into<String>) -> Result<BearerToken, Error> {
        let token = Zeroizing::new(token.into());
        if token.is_empty()
            || token.len() > TOKEN_MAX
            || !token.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Error::invalid(
                "token",
                format!("a bearer token is 1 to {TOKEN_MAX} visible ASCII characters"),
            ));
        }
        Ok(BearerToken(token))
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(***)")
    }
}

/// How failed attempts are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; at least 1.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub initial_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts, waiting 1 s, 2 s and 4 s: under ten seconds of waiting, so a level-1
    /// report is not held up long before a person is told the API is down and uses the portal.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Which certificate authorities the client trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The public web PKI (Mozilla's roots): the normal case.
    WebPki,
    /// Only these PEM certificates (a private CA, or a test's own): nothing else is trusted.
    OnlyPem(Vec<u8>),
}

/// The configured API client.
#[derive(Debug, Clone)]
pub struct ApiTransport {
    /// Where reports are posted; always `https`.
    endpoint: Url,
    /// The bearer token.
    token: BearerToken,
    /// How failures are retried.
    retry: RetryPolicy,
    /// The HTTP client, with the timeout and trust configured.
    client: reqwest::Client,
}

#[derive(Serialize)]
struct RequestBody<'a> {
    report: &'a Report,
    files: Vec<RequestFile<'a>>,
}

#[derive(Serialize)]
struct RequestFile<'a> {
    name: &'a str,
    sha256: String,
    content_base64: String,
}

#[derive(Deserialize)]
struct Answer {
    reference: String,
}

enum Attempt {
    Done(Result<NcaReference, Error>),
    Retry(String),
}

impl ApiTransport {
    /// A transport posting to `endpoint` (must be `https`) with `token`, each attempt limited
    /// to `timeout`.
    pub fn new(
        endpoint: Url,
        token: BearerToken,
        timeout: Duration,
        retry: RetryPolicy,
        trust: Trust,
    ) -> Result<ApiTransport, Error> {
        if endpoint.scheme() != "https" {
            return Err(Error::invalid(
                "endpoint",
                "reports carry the most sensitive data there is: only https is allowed",
            ));
        }
        if retry.max_attempts == 0 {
            return Err(Error::invalid("retry.max_attempts", "at least 1"));
        }
        if timeout.is_zero() {
            return Err(Error::invalid("timeout", "must be more than zero"));
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(true)
            .timeout(timeout)
            // A report is never followed to another host.
            .redirect(reqwest::redirect::Policy::none());
        if let Trust::OnlyPem(pem) = &trust {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::invalid("trust", format!("not PEM certificates: {e}")))?;
            if certs.is_empty() {
                return Err(Error::invalid("trust", "no certificate in the PEM"));
            }
            builder = builder.tls_built_in_root_certs(false);
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let client = builder
            .build()
            .map_err(|e| Error::Internal(format!("HTTP client: {e}")))?;
        Ok(ApiTransport {
            endpoint,
            token,
            retry,
            client,
        })
    }

    /// What [`ApiTransport::submit`] checks before sending: the report validates and the files
    /// are those its content items name. A caller that records a send before making it checks
    /// first, so an incomplete report leaves no record of a send.
    pub fn check(report: &Report, files: &[ContentFile]) -> Result<(), Error> {
        report.validate()?;
        crate::bundle::check_files_match_report(report, files)
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Sends the report and its files; returns the NCA's reference.
    ///
    /// The report must validate and the files must be those its content items name, as for
    /// a bundle.
    pub async fn submit(
        &self,
        report: &Report,
        files: &[ContentFile],
    ) -> Result<NcaReference, Error> {
        self.send(report, files, None).await
    }

    /// [`ApiTransport::submit`] under the caller's `Idempotency-Key` instead of the body's
    /// hash: a caller that keeps the key across restarts sends a report cut off by a crash
    /// again as the same report, even if it was rebuilt. The key is 16 to 128 characters of
    /// `A-Z a-z 0-9 - _`.
    pub async fn submit_keyed(
        &self,
        report: &Report,
        files: &[ContentFile],
        idempotency_key: &str,
    ) -> Result<NcaReference, Error> {
        let ok = (16..=128).contains(&idempotency_key.len())
            && idempotency_key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(Error::invalid(
                "idempotency_key",
                "16 to 128 characters of A-Z a-z 0-9 - _",
            ));
        }
        self.send(report, files, Some(idempotency_key)).await
    }

    async fn send(
        &self,
        report: &Report,
        files: &[ContentFile],
        key: Option<&str>,
    ) -> Result<NcaReference, Error> {
        ApiTransport::check(report, files)?;
        let body = RequestBody {
            report,
            files: files
                .iter()
                .map(|f| RequestFile {
                    name: &f.name,
                    sha256: hex::encode(Sha256::digest(&f.bytes)),
                    content_base64: base64::engine::general_purpose::STANDARD.encode(&f.bytes),
                })
                .collect(),
        };
        let body = serde_json::to_vec(&body).map_err(|e| Error::Internal(e.to_string()))?;
        if body.len() > REQUEST_MAX {
            return Err(Error::invalid(
                "files",
                format!("the request would exceed {REQUEST_MAX} bytes; split the case or use the portal"),
            ));
        }
        let idempotency_key = match key {
            Some(k) => k.to_string(),
            None => hex::encode(Sha256::digest(&body)),
        };

        let mut attempt = 1;
        loop {
            let outcome = self.attempt(&body, &idempotency_key).await;
            match outcome {
                Attempt::Done(result) => return result,
                Attempt::Retry(why) if attempt >= self.retry.max_attempts => {
                    return Err(Error::Transport {
                        attempts: attempt,
                        last: why,
                    })
                }
                Attempt::Retry(_) => {
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(&self, body: &[u8], idempotency_key: &str) -> Attempt {
        let sent = self
            .client
            .post(self.endpoint.clone())
            .bearer_auth(self.token.0.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .header("Idempotency-Key", idempotency_key)
            .body(body.to_vec())
            .send()
            .await;
        let mut response = match sent {
            Ok(r) => r,
            // Connection refused or reset, TLS failure, timeout: the report may not have
            // arrived; try again.
            Err(e) => return Attempt::Retry(error_chain(&e)),
        };
        let status = response.status();
        let answer = match read_capped(&mut response).await {
            Ok(a) => a,
            Err(e) if status.is_success() => {
                // Taken, perhaps, but the answer was lost: not retried (see the module docs).
                return Attempt::Done(Err(Error::BadResponse(format!(
                    "HTTP {status}, answer unreadable: {e}"
                ))));
            }
            Err(e) => return Attempt::Retry(format!("HTTP {status}, answer unreadable: {e}")),
        };
        let code = status.as_u16();
        if status.is_success() {
            let parsed = serde_json::from_slice::<Answer>(&answer)
                .map_err(|e| Error::BadResponse(format!("no reference in the answer: {e}")))
                .and_then(|a| {
                    NcaReference::new(a.reference)
                        .map_err(|e| Error::BadResponse(format!("the reference given: {e}")))
                });
            return Attempt::Done(parsed);
        }
        let message = error_message(&answer);
        match code {
            401 | 403 => Attempt::Done(Err(Error::Auth {
                status: code,
                message,
            })),
            408 | 429 => Attempt::Retry(format!("HTTP {code}: {message}")),
            400..=499 => Attempt::Done(Err(Error::Rejected {
                status: code,
                message,
            })),
            _ => Attempt::Retry(format!("HTTP {code}: {message}")),
        }
    }
}

/// Reads at most [`ANSWER_MAX`] bytes of the answer; more is an error.
async fn read_capped(response: &mut reqwest::Response) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
        if out.len() + chunk.len() > ANSWER_MAX {
            return Err(format!("answer larger than {ANSWER_MAX} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The message of an error answer: the JSON `message` or `error` field when there is one,
/// else the body as text; control characters replaced, cut to [`ERROR_BODY_MAX`] characters.
fn error_message(body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            ["message", "error", "detail"]
                .iter()
                .find_map(|k| v.get(k).and_then(|m| m.as_str()).map(str::to_string))
        });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let clean: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut chars = clean.chars();
    let cut: String = chars.by_ref().take(ERROR_BODY_MAX).collect();
    if chars.next().is_some() {
        format!("{cut}…")
    } else if cut.is_empty() {
        "(no message)".into()
    } else {
        cut
    }
}

/// An error with its causes, which is where reqwest keeps the useful part ("connection
/// reset", "certificate unknown").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        let waits: Vec<u128> = (1..=5).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_millis(500));
    }

    #[test]
    fn error_messages_are_extracted_and_truncated() {
        assert_eq!(error_message(br#"{"message":"bad field"}"#), "bad field");
        assert_eq!(error_message(b"plain\ntext"), "plain text");
        assert_eq!(error_message(b""), "(no message)");
        let long = "x".repeat(ERROR_BODY_MAX + 10);
        let m = error_message(long.as_bytes());
        assert_eq!(m.chars().count(), ERROR_BODY_MAX + 1);
        assert!(m.ends_with('…'));
    }

    #[test]
    fn tokens_are_checked_and_never_printed() {
        let t = BearerToken::new("secret-token").expect("valid");
        assert_eq!(format!("{t:?}"), "BearerToken(***)");
        assert!(BearerToken::new("").is_err());
        assert!(BearerToken::new("has space").is_err());
    }

    #[test]
    fn only_https_endpoints() {
        let r = ApiTransport::new(
            Url::parse("http://example.com/reports").expect("url"),
            BearerToken::new("t").expect("valid"),
            DEFAULT_TIMEOUT,
            RetryPolicy::default(),
            Trust::WebPki,
        );
        assert!(matches!(r, Err(Error::Invalid { .. })));
    }
}
