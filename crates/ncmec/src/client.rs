//! One HTTP call per CyberTipline endpoint.
//!
//! Each method makes exactly one attempt and returns the parsed answer with its HTTP status,
//! raw body and `Request-ID` header ([`Answer`]); a responseCode other than 0 is an
//! [`Error::Refused`]. Retrying is the filer's job, because whether a failed call may be
//! repeated depends on where the filing stands (an upload that may have arrived cannot be
//! sent again to the same report).

use std::time::Duration;

use md5::{Digest, Md5};
use reqwest::header::CONTENT_TYPE;
use zeroize::Zeroizing;

use crate::response::{CodeClass, Response};
use crate::{Error, Result};

/// Base URL of NCMEC's test environment, the default.
pub const TEST_BASE_URL: &str = "https://exttest.cybertip.org/ispws";
/// Base URL of the production CyberTipline. Only used when [`Environment::Production`] is
/// chosen explicitly: a test report sent there reaches NCMEC's analysts.
pub const PRODUCTION_BASE_URL: &str = "https://report.cybertip.org/ispws";
/// Header NCMEC puts on every answer to identify the request for its support.
pub const REQUEST_ID_HEADER: &str = "Request-ID";
/// Largest answer read, bytes. NCMEC's answers are a few hundred bytes of XML (the longest,
/// a finished report's file list, grows by ~40 bytes a file); 256 KiB is far above any real
/// answer and keeps a misbehaving proxy's error page from filling memory.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Default limit on one call, connect to last byte of the answer: 120 s. Uploads carry whole
/// files (videos of hundreds of megabytes) over links of a few MB/s; a shorter limit would
/// abort large uploads that are progressing. Smaller calls finish in well under a second.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default connect timeout: 10 s, so an unreachable host fails fast and the retry starts.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("Safeguard-NCMEC/", env!("CARGO_PKG_VERSION"));

/// Which CyberTipline to talk to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Environment {
    /// NCMEC's test system ([`TEST_BASE_URL`]); the default.
    #[default]
    Test,
    /// The production CyberTipline ([`PRODUCTION_BASE_URL`]).
    Production,
}

impl Environment {
    /// The environment's base URL.
    pub fn base_url(self) -> &'static str {
        match self {
            Environment::Test => TEST_BASE_URL,
            Environment::Production => PRODUCTION_BASE_URL,
        }
    }
}

/// The CyberTipline account's user name and password. The password never prints: `Debug`
/// shows `***` and `Display` only the user name, and it is wiped from memory when dropped.
#[derive(Clone)]
pub struct Credentials {
    username: String,
    password: Zeroizing<String>,
}

impl Credentials {
    /// Credentials from a user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: Zeroizing::new(password.into()),
        }
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

impl std::fmt::Display for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (password hidden)", self.username)
    }
}

/// How to reach the CyberTipline.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Test (default) or production.
    pub environment: Environment,
    /// Replaces the environment's base URL (a local test server); `None` uses the
    /// environment's.
    pub base_url: Option<String>,
    /// The account.
    pub credentials: Credentials,
    /// Limit on one call ([`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
    /// Connect timeout ([`DEFAULT_CONNECT_TIMEOUT`]).
    pub connect_timeout: Duration,
}

impl ClientConfig {
    /// NCMEC's test environment with `credentials` and the default timeouts.
    pub fn new(credentials: Credentials) -> ClientConfig {
        ClientConfig {
            environment: Environment::Test,
            base_url: None,
            credentials,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// The production CyberTipline: reports sent with this configuration are real reports.
    pub fn production(mut self) -> ClientConfig {
        self.environment = Environment::Production;
        self
    }

    /// Another base URL, for a local test server.
    pub fn base_url(mut self, url: impl Into<String>) -> ClientConfig {
        self.base_url = Some(url.into());
        self
    }

    /// Another limit on one call.
    pub fn timeout(mut self, timeout: Duration) -> ClientConfig {
        self.timeout = timeout;
        self
    }
}

/// One answer: the parsed document with what identifies it.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The parsed answer (responseCode 0, or [`CodeClass::AlreadyFinished`] /
    /// [`CodeClass::AlreadyRetracted`] where a method says so).
    pub response: Response,
    /// The HTTP status.
    pub status: u16,
    /// The `Request-ID` header.
    pub request_id: Option<String>,
    /// The answer's body as received.
    pub body: String,
}

/// A CyberTipline client.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    credentials: Credentials,
    environment: Environment,
}

/// A request body ready to send.
enum Body {
    Xml(String),
    Form(String),
    Multipart { boundary: String, bytes: Vec<u8> },
    None,
}

impl Client {
    /// A client for `config`.
    pub fn new(config: ClientConfig) -> Result<Client> {
        let base = config
            .base_url
            .clone()
            .unwrap_or_else(|| config.environment.base_url().to_string());
        let base = base.trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&base)
            .map_err(|e| Error::Config(format!("base URL {base}: {e}")))?;
        let loopback = url
            .host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|h| h.parse::<std::net::IpAddr>().ok())
            .is_some_and(|ip| ip.is_loopback());
        if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
            // Credentials go in every request's Authorization header: over plain HTTP they
            // would cross the network readable, so only a loopback test server may use it.
            return Err(Error::Config(format!(
                "base URL {base} must be https:// (plain http only on a loopback address)"
            )));
        }
        if config.credentials.username.is_empty() || config.credentials.password.is_empty() {
            return Err(Error::Config(
                "the CyberTipline user name and password must not be empty".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {}", chain(&e))))?;
        Ok(Client {
            http,
            base,
            credentials: config.credentials,
            environment: config.environment,
        })
    }

    /// The environment the client was configured for.
    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET /status`: checks the connection and the credentials.
    pub async fn status(&self) -> Result<Answer> {
        self.call("/status", Body::None).await
    }

    /// `POST /submit` with a `<report>` document; the answer carries the new report's id.
    pub async fn submit(&self, report_xml: &str) -> Result<Answer> {
        let answer = self
            .call("/submit", Body::Xml(report_xml.to_string()))
            .await?;
        if answer.response.report_id.is_none() {
            return Err(Error::MalformedResponse {
                endpoint: "/submit",
                reason: "no reportId in a successful answer".into(),
            });
        }
        Ok(answer)
    }

    /// `POST /upload` of one file to report `report_id`; the answer carries the file's id and
    /// NCMEC's MD5 of what it received, checked against the local MD5.
    pub async fn upload(&self, report_id: &str, file_name: &str, content: &[u8]) -> Result<Answer> {
        let (boundary, bytes) = multipart(report_id, file_name, content);
        let answer = self
            .call("/upload", Body::Multipart { boundary, bytes })
            .await?;
        let local = md5_hex(content);
        let (Some(_), Some(remote)) = (&answer.response.file_id, &answer.response.hash) else {
            return Err(Error::MalformedResponse {
                endpoint: "/upload",
                reason: "no fileId or hash in a successful answer".into(),
            });
        };
        if !remote.eq_ignore_ascii_case(&local) {
            return Err(Error::HashMismatch {
                file_name: file_name.to_string(),
                local,
                remote: remote.clone(),
            });
        }
        Ok(answer)
    }

    /// `POST /fileinfo` with a `<fileDetails>` document.
    pub async fn file_info(&self, file_details_xml: &str) -> Result<Answer> {
        self.call("/fileinfo", Body::Xml(file_details_xml.to_string()))
            .await
    }

    /// `POST /finish`: sends report `report_id` to NCMEC's analysts. Irreversible. A 5102
    /// "already finished" answer is returned as an [`Answer`] (not an error), since it means a
    /// finish sent earlier arrived.
    pub async fn finish(&self, report_id: &str) -> Result<Answer> {
        self.call_accepting(
            "/finish",
            Body::Form(form_id(report_id)),
            CodeClass::AlreadyFinished,
        )
        .await
    }

    /// `POST /retract`: withdraws the unfinished report `report_id`. A 5101 "already
    /// retracted" answer is returned as an [`Answer`] (not an error).
    pub async fn retract(&self, report_id: &str) -> Result<Answer> {
        self.call_accepting(
            "/retract",
            Body::Form(form_id(report_id)),
            CodeClass::AlreadyRetracted,
        )
        .await
    }

    async fn call_accepting(
        &self,
        endpoint: &'static str,
        body: Body,
        accepted: CodeClass,
    ) -> Result<Answer> {
        match self.exchange(endpoint, body).await? {
            (answer, true) => Ok(answer),
            (answer, false) if answer.response.code().class() == accepted => Ok(answer),
            (answer, false) => Err(refused(endpoint, answer)),
        }
    }

    async fn call(&self, endpoint: &'static str, body: Body) -> Result<Answer> {
        match self.exchange(endpoint, body).await? {
            (answer, true) => Ok(answer),
            (answer, false) => Err(refused(endpoint, answer)),
        }
    }

    /// One request; the flag says whether the responseCode was 0.
    async fn exchange(&self, endpoint: &'static str, body: Body) -> Result<(Answer, bool)> {
        let url = format!("{}{endpoint}", self.base);
        let request = match body {
            Body::None => self.http.get(&url),
            Body::Xml(xml) => self
                .http
                .post(&url)
                .header(CONTENT_TYPE, "text/xml; charset=utf-8")
                .body(xml),
            Body::Form(form) => self
                .http
                .post(&url)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form),
            Body::Multipart { boundary, bytes } => self
                .http
                .post(&url)
                .header(
                    CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(bytes),
        };
        let request = request.basic_auth(
            &self.credentials.username,
            Some(&*self.credentials.password),
        );
        let mut response = request.send().await.map_err(|e| Error::Transport {
            endpoint,
            message: chain(&e),
            // A connect error means no byte of the request left this machine.
            maybe_delivered: !e.is_connect(),
        })?;
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(Error::ResponseTooLarge {
                            endpoint,
                            limit: MAX_RESPONSE_BYTES,
                        });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(Error::Transport {
                        endpoint,
                        message: format!("reading the answer: {}", chain(&e)),
                        maybe_delivered: true,
                    })
                }
            }
        }
        let body = String::from_utf8_lossy(&bytes).into_owned();
        let parsed = Response::parse(endpoint, &body);
        let response = match parsed {
            Ok(r) => r,
            Err(_) if !(200..300).contains(&status) => {
                return Err(Error::Http {
                    endpoint,
                    status,
                    request_id,
                })
            }
            Err(e) => return Err(e),
        };
        let ok = response.code().class() == CodeClass::Ok;
        Ok((
            Answer {
                response,
                status,
                request_id,
                body,
            },
            ok,
        ))
    }
}

fn refused(endpoint: &'static str, answer: Answer) -> Error {
    let code = answer.response.code();
    Error::Refused {
        endpoint,
        code,
        description: answer
            .response
            .response_description
            .unwrap_or_else(|| code.meaning().to_string()),
        request_id: answer.request_id,
        status: answer.status,
        body: answer.body,
    }
}

/// Lower-case hex MD5, the form NCMEC's `hash` uses.
pub fn md5_hex(content: &[u8]) -> String {
    hex::encode(Md5::digest(content))
}

/// `id=<report id>`, percent-encoding anything but unreserved characters.
fn form_id(report_id: &str) -> String {
    let mut out = String::from("id=");
    for b in report_id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A `multipart/form-data` body with the parts `id` and `file`, and its boundary. Written by
/// hand: two parts do not justify reqwest's `multipart` feature and its MIME-guessing
/// dependency, and NCMEC does not look at the part's content type.
fn multipart(report_id: &str, file_name: &str, content: &[u8]) -> (String, Vec<u8>) {
    // The boundary must not occur in any part. A digest of the content makes that all but
    // certain; the loop makes it certain.
    let mut boundary = format!("safeguard-ncmec-{}", &md5_hex(content)[..16]);
    let mut salt = 0u32;
    while contains(content, boundary.as_bytes()) || report_id.contains(&boundary) {
        salt += 1;
        boundary = format!("safeguard-ncmec-{}-{salt}", &md5_hex(content)[..16]);
    }
    // A quote or line break in a file name would end the header early.
    let safe_name: String = file_name
        .chars()
        .map(|c| {
            if matches!(c, '"' | '\r' | '\n' | '\\') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mut body = Vec::with_capacity(content.len() + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"id\"\r\n\r\n{report_id}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{safe_name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (boundary, body)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// An error with its sources, `outer: inner: …`, since reqwest's own message hides the cause.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_print_the_password() {
        let c = Credentials::new("esp-user", "hunter2-secret");
        let debug = format!("{c:?}");
        let display = format!("{c}");
        let config = format!("{:?}", ClientConfig::new(c.clone()));
        for text in [&debug, &display, &config] {
            assert!(!text.contains("hunter2-secret"), "{text}");
            assert!(text.contains("esp-user"), "{text}");
        }
        let client = Client::new(ClientConfig::new(c)).unwrap();
        assert!(!format!("{client:?}").contains("hunter2-secret"));
    }

    #[test]
    fn test_environment_is_the_default() {
        let c = ClientConfig::new(Credentials::new("u", "p"));
        assert_eq!(c.environment, Environment::Test);
        assert_eq!(Client::new(c.clone()).unwrap().base_url(), TEST_BASE_URL);
        let p = Client::new(c.production()).unwrap();
        assert_eq!(p.base_url(), PRODUCTION_BASE_URL);
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let c = ClientConfig::new(Credentials::new("u", "p"));
        assert!(Client::new(c.clone().base_url("http://example.com/ispws")).is_err());
        assert!(Client::new(c.clone().base_url("http://127.0.0.1.example.com/ispws")).is_err());
        assert!(Client::new(c.base_url("http://127.0.0.1:8080/ispws")).is_ok());
    }

    #[test]
    fn multipart_boundary_avoids_the_content() {
        let content = b"--safeguard-ncmec-".to_vec();
        let (boundary, body) = multipart("7", "a\"b.png", &content);
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("filename=\"a_b.png\""));
        assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
        assert_eq!(form_id("12 3"), "id=12%203");
    }
}
