//! A local HTTPS server speaking the API transport's protocol (see [`crate::transport`]), for
//! tests only (feature `test-server`): 127.0.0.1 on a free port, a certificate from a CA made
//! on the spot that the client is told to trust ([`TestServer::trust`]), and a script of
//! faults. A few lines of HTTP/1.1 over tokio-rustls, one request per connection, so each
//! connection can be given its own scripted answer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use crate::transport::Trust;

/// What the server does with one connection.
#[derive(Clone, Debug)]
pub enum Step {
    /// Answer with this status and body.
    Answer(u16, String),
    /// Answer `{"reference": ...}` with 201, the reference numbered by the requests that
    /// reached this step (`NCA-TEST-1`, `NCA-TEST-2`, ...), or repeating the reference given
    /// earlier for the same `Idempotency-Key`, as an API that honours the key does.
    Accept,
    /// Read the request, then close without answering (the answer is lost).
    Drop,
    /// Read the request, then wait this long before answering as [`Step::Accept`] does.
    Slow(Duration),
}

impl Step {
    /// [`Step::Answer`] from a `&str`.
    pub fn answer(status: u16, body: &str) -> Step {
        Step::Answer(status, body.to_string())
    }
}

/// One request the server read.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The request body.
    pub body: Vec<u8>,
}

/// A running server; it stops when the test's runtime does.
#[derive(Debug)]
pub struct TestServer {
    /// Where to post reports.
    pub url: url::Url,
    /// The CA the server's certificate comes from, PEM.
    pub ca_pem: String,
    /// Every request read, in order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    /// The trust a client needs for this server: its CA only.
    pub fn trust(&self) -> Trust {
        Trust::OnlyPem(self.ca_pem.clone().into_bytes())
    }

    /// The requests read so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Starts a server answering connection `i` with `script[i]` (the last step repeats). A
/// request without `Authorization: Bearer <token>` is answered 401 whatever the script says.
///
/// # Panics
/// When the certificate or the listener cannot be set up (a broken test machine).
pub async fn start(script: Vec<Step>, token: &str) -> TestServer {
    assert!(!script.is_empty(), "a script needs at least one step");
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&leaf_key, &ca, &ca_key)
        .expect("leaf");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    // Idempotency key -> the reference given for it.
    let given: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let expected = format!("Bearer {token}");
    tokio::spawn(async move {
        let mut n = 0usize;
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let step = script[n.min(script.len() - 1)].clone();
            n += 1;
            let acceptor = acceptor.clone();
            let seen = Arc::clone(&seen2);
            let given = Arc::clone(&given);
            let expected = expected.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Some(req) = read_request(&mut tls).await else {
                    return;
                };
                let authorised = req.authorization.as_deref() == Some(expected.as_str());
                let key = req.idempotency_key.clone().unwrap_or_default();
                seen.lock().unwrap_or_else(|p| p.into_inner()).push(req);
                let accept = || {
                    let mut g = given.lock().unwrap_or_else(|p| p.into_inner());
                    let reference = match g.iter().find(|(k, _)| !key.is_empty() && *k == key) {
                        Some((_, r)) => r.clone(),
                        None => {
                            let r = format!("NCA-TEST-{}", g.len() + 1);
                            g.push((key.clone(), r.clone()));
                            r
                        }
                    };
                    (201, format!(r#"{{"reference":"{reference}"}}"#))
                };
                let (status, body) = match (authorised, step) {
                    (false, _) => (401, r#"{"message":"invalid token"}"#.to_string()),
                    (true, Step::Drop) => return, // the stream is dropped unanswered
                    (true, Step::Answer(s, b)) => (s, b),
                    (true, Step::Accept) => accept(),
                    (true, Step::Slow(d)) => {
                        tokio::time::sleep(d).await;
                        accept()
                    }
                };
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    TestServer {
        url: url::Url::parse(&format!("https://{addr}/v1/reports")).expect("url"),
        ca_pem: ca.pem(),
        seen,
    }
}

/// Reads one HTTP/1.1 request with a content-length body.
async fn read_request<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let len: usize = header("content-length")?.parse().ok()?;
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        authorization: header("authorization"),
        idempotency_key: header("idempotency-key"),
        body: buf[head_end..head_end + len].to_vec(),
    })
}
