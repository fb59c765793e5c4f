//! The HTTP client every exchange uses: timeouts, a cap on response size, retries with
//! backoff that honour `Retry-After`, and error messages that never carry a credential.

use std::time::Duration;

use rand::Rng;
use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER,
};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::{Error, Result, Secret};

/// How an exchange client retries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included. After the last, the run fails and the next
    /// run resumes from the checkpoint.
    pub max_attempts: u32,
    /// First backoff after a failure; doubled after each further failure (with up to 50%
    /// random jitter, so that many instances do not retry in step).
    pub base_backoff: Duration,
    /// Cap on any one wait, `Retry-After` included: a server asking for an hour must not
    /// hold a run (and the exchange's single run slot) for an hour; the run fails instead
    /// when the budget is spent, and the scheduler tries again at its next tick.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// Limits of one exchange client.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Whole-request timeout (connect, send, and read of the full body).
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Largest response body accepted. An NCMEC page of 1,000 entries with every fingerprint
    /// and feedback is about 1.5 MB; 32 MiB leaves room without letting a broken or hostile
    /// server exhaust memory.
    pub max_body_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(15),
            max_body_bytes: 32 << 20,
        }
    }
}

/// A request to send.
#[derive(Debug)]
pub(crate) struct Req {
    pub method: Method,
    pub url: Url,
    /// Extra headers; values may be credentials (they are never printed).
    pub headers: Vec<(HeaderName, Secret)>,
    pub basic_auth: Option<(String, Secret)>,
    pub bearer: Option<Secret>,
    pub body: Option<(&'static str, Vec<u8>)>,
    /// Whether sending twice is harmless (GET; the feedback PUT). Non-idempotent requests are
    /// retried only when the server certainly did not process them (429, connect failure).
    pub idempotent: bool,
}

impl Req {
    pub fn get(url: Url) -> Req {
        Req {
            method: Method::GET,
            url,
            headers: Vec::new(),
            basic_auth: None,
            bearer: None,
            body: None,
            idempotent: true,
        }
    }
}

/// A successful (2xx) answer, body read in full.
#[derive(Debug)]
pub(crate) struct Resp {
    pub body: Vec<u8>,
}

/// The shared client.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    retry: RetryPolicy,
    max_body: usize,
}

impl Http {
    pub fn new(limits: &HttpLimits, retry: &RetryPolicy) -> Result<Http> {
        let client = reqwest::Client::builder()
            .timeout(limits.timeout)
            .connect_timeout(limits.connect_timeout)
            // A redirect could carry the Authorization header to another host: refuse them.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("safeguard-exchange/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {}", e.without_url())))?;
        Ok(Http {
            client,
            retry: retry.clone(),
            max_body: limits.max_body_bytes,
        })
    }

    /// Sends `req`, retrying transient failures; returns the 2xx answer.
    pub async fn send(&self, req: &Req) -> Result<Resp> {
        let what = format!("{} {}", req.method, req.url.path());
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = self.once(req).await;
            let (retryable, wait_hint, err) = match outcome {
                Ok(resp) => return Ok(resp),
                Err(Failure::Status {
                    status,
                    retry_after,
                }) => {
                    let transient = status == StatusCode::TOO_MANY_REQUESTS
                        || (req.idempotent && matches!(status.as_u16(), 500 | 502 | 503 | 504));
                    let msg = format!("{what}: HTTP {status}");
                    if transient {
                        (true, retry_after, Error::Transport(msg))
                    } else if status.is_server_error() {
                        (false, None, Error::Transport(msg))
                    } else {
                        (false, None, Error::Rejected(msg))
                    }
                }
                Err(Failure::Connect(m)) => (true, None, Error::Transport(format!("{what}: {m}"))),
                Err(Failure::Io(m)) => (
                    req.idempotent,
                    None,
                    Error::Transport(format!("{what}: {m}")),
                ),
                Err(Failure::TooLarge) => {
                    return Err(Error::Protocol(format!(
                        "{what}: response body over {} bytes",
                        self.max_body
                    )))
                }
            };
            if !retryable || attempt >= self.retry.max_attempts {
                return Err(match err {
                    Error::Transport(m) if retryable => {
                        Error::Transport(format!("{m} (after {attempt} attempts)"))
                    }
                    e => e,
                });
            }
            let wait = self.backoff(attempt, wait_hint);
            tracing::warn!(
                request = %what,
                attempt,
                wait_ms = wait.as_millis() as u64,
                error = %err,
                "exchange request failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let wait = match retry_after {
            Some(d) => d,
            None => {
                let exp = self
                    .retry
                    .base_backoff
                    .saturating_mul(1u32 << (attempt - 1).min(16));
                let jitter = rand::rng().random_range(0.0..0.5);
                exp.mul_f64(1.0 + jitter)
            }
        };
        wait.min(self.retry.max_backoff)
    }

    async fn once(&self, req: &Req) -> std::result::Result<Resp, Failure> {
        let mut headers = HeaderMap::new();
        for (name, value) in &req.headers {
            let mut v = HeaderValue::from_str(value.expose()).map_err(|_| {
                Failure::Connect("a credential holds characters not allowed in a header".into())
            })?;
            v.set_sensitive(true);
            headers.insert(name.clone(), v);
        }
        if let Some(token) = &req.bearer {
            let mut v =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    Failure::Connect("the API key holds characters not allowed in a header".into())
                })?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let mut rb = self
            .client
            .request(req.method.clone(), req.url.clone())
            .headers(headers);
        if let Some((user, pass)) = &req.basic_auth {
            rb = rb.basic_auth(user, Some(pass.expose()));
        }
        if let Some((ctype, body)) = &req.body {
            rb = rb.header(CONTENT_TYPE, *ctype).body(body.clone());
        }
        let mut resp = rb.send().await.map_err(|e| {
            if e.is_connect() || e.is_timeout() {
                Failure::Connect(e.without_url().to_string())
            } else {
                Failure::Io(e.without_url().to_string())
            }
        })?;
        let status = resp.status();
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            return Err(Failure::Status {
                status,
                retry_after,
            });
        }
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(Failure::TooLarge);
        }
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > self.max_body {
                        return Err(Failure::TooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                // A connection dropped mid-body lands here: transient for an idempotent GET.
                Err(e) => {
                    return Err(Failure::Io(format!(
                        "reading the body: {}",
                        e.without_url()
                    )))
                }
            }
        }
        Ok(Resp { body })
    }
}

enum Failure {
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    /// The request did not reach the server (or timed out): safe to retry.
    Connect(String),
    /// The exchange broke after the request was sent (dropped connection, truncated body).
    Io(String),
    TooLarge,
}

/// `Retry-After` is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        let d = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_is_capped_and_honours_retry_after() {
        let http = Http::new(
            &HttpLimits::default(),
            &RetryPolicy {
                max_attempts: 5,
                base_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
            },
        )
        .unwrap();
        assert_eq!(
            http.backoff(1, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            http.backoff(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(2)
        );
        let first = http.backoff(1, None);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(150));
        assert_eq!(http.backoff(10, None), Duration::from_secs(2));
    }

    /// The documented defaults (docs/exchanges.md): 5 attempts, backoff from 0.5 s, any wait
    /// capped at 60 s; 120 s a request, 15 s to connect, 32 MiB of body.
    #[test]
    fn defaults_are_the_documented_ones() {
        let r = RetryPolicy::default();
        assert_eq!(
            (r.max_attempts, r.base_backoff, r.max_backoff),
            (5, Duration::from_millis(500), Duration::from_secs(60))
        );
        let l = HttpLimits::default();
        assert_eq!(
            (l.timeout, l.connect_timeout, l.max_body_bytes),
            (Duration::from_secs(120), Duration::from_secs(15), 32 << 20)
        );
    }

    /// A redirect is never followed, so the credentials never travel to where it points; a
    /// body over the limit is refused, whether its length is announced or not.
    #[tokio::test]
    async fn redirects_are_refused_and_bodies_capped() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let elsewhere = axum::Router::new().fallback(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async { "followed" }
        });
        let l2 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = format!("http://{}/steal", l2.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l2, elsewhere).await });
        let app = axum::Router::new()
            .route(
                "/moved",
                axum::routing::get(move || {
                    let target = target.clone();
                    async move { axum::response::Redirect::temporary(&target) }
                }),
            )
            .route("/big", axum::routing::get(|| async { "x".repeat(2048) }))
            .route(
                "/streamed",
                axum::routing::get(|| async {
                    let chunks = (0..4).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 512]));
                    axum::body::Body::from_stream(futures_util::stream::iter(chunks))
                }),
            )
            .route("/fits", axum::routing::get(|| async { "x".repeat(1024) }));
        let l1 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l1.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l1, app).await });
        let http = Http::new(
            &HttpLimits {
                max_body_bytes: 1024,
                ..HttpLimits::default()
            },
            &RetryPolicy::default(),
        )
        .unwrap();
        let get = |path: &str| {
            let mut req = Req::get(Url::parse(&format!("{base}{path}")).unwrap());
            req.bearer = Some(Secret::new("exchange-token".to_string()));
            req
        };
        match http.send(&get("/moved")).await {
            Err(Error::Rejected(m)) => assert!(m.contains("307"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(hits.load(Ordering::SeqCst), 0, "the redirect was followed");
        for path in ["/big", "/streamed"] {
            match http.send(&get(path)).await {
                Err(Error::Protocol(m)) => assert!(m.contains("over 1024 bytes"), "{path}: {m}"),
                other => panic!("{path}: {other:?}"),
            }
        }
        assert_eq!(http.send(&get("/fits")).await.unwrap().body.len(), 1024);
    }
}
