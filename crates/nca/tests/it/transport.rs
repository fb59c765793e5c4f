//! The API transport against a local HTTPS server on 127.0.0.1:0 with a certificate from a
//! CA made in the test; the client trusts exactly that CA. The server is a few lines of
//! HTTP/1.1 over tokio-rustls, one request per connection, so each connection can be given
//! a scripted fault.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use safeguard_nca::transport::Trust;
use safeguard_nca::{ApiTransport, BearerToken, Error, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use crate::common::{files, report};

const TOKEN: &str = "test-token-123";

/// What the server does with one connection.
#[derive(Clone, Debug)]
enum Step {
    /// Answer with this status and body.
    Answer(u16, &'static str),
    /// Read the request, then close without answering.
    Drop,
}

/// One request the server read.
#[derive(Debug, Clone)]
struct Seen {
    authorization: Option<String>,
    idempotency_key: Option<String>,
    body: Vec<u8>,
}

struct Server {
    url: url::Url,
    ca_pem: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// Starts a server answering connection i with `script[i]` (the last step repeats). A
/// request without the right bearer token is answered 401 whatever the script says.
async fn server(script: Vec<Step>) -> Server {
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
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Some(req) = read_request(&mut tls).await else {
                    return;
                };
                let authorised = req.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"));
                seen.lock().expect("lock").push(req);
                let (status, body) = match (authorised, step) {
                    (false, _) => (401, r#"{"message":"invalid token"}"#),
                    (true, Step::Drop) => return, // the stream is dropped unanswered
                    (true, Step::Answer(s, b)) => (s, b),
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
    Server {
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

fn transport(server: &Server, token: &str) -> ApiTransport {
    ApiTransport::new(
        server.url.clone(),
        BearerToken::new(token).expect("token"),
        Duration::from_secs(10),
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
        },
        Trust::OnlyPem(server.ca_pem.clone().into_bytes()),
    )
    .expect("transport")
}

#[tokio::test]
async fn success_returns_the_reference_and_sends_the_documented_body() {
    let s = server(vec![Step::Answer(
        201,
        r#"{"reference":"NCA-2026-000042"}"#,
    )])
    .await;
    let r = transport(&s, TOKEN)
        .submit(&report(), &files())
        .await
        .expect("accepted");
    assert_eq!(r.as_str(), "NCA-2026-000042");
    let seen = s.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).expect("json");
    assert_eq!(body["report"]["provider_reference"], "case-0001");
    assert_eq!(body["files"][0]["name"], "item-1.png");
    assert!(body["files"][0]["content_base64"].is_string());
    assert_eq!(seen[0].idempotency_key.as_deref().map(str::len), Some(64));
}

#[tokio::test]
async fn a_500_then_success_is_retried_with_the_same_idempotency_key() {
    let s = server(vec![
        Step::Answer(500, r#"{"message":"try later"}"#),
        Step::Answer(200, r#"{"reference":"NCA-7"}"#),
    ])
    .await;
    let r = transport(&s, TOKEN)
        .submit(&report(), &files())
        .await
        .expect("accepted on the second attempt");
    assert_eq!(r.as_str(), "NCA-7");
    let seen = s.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].idempotency_key, seen[1].idempotency_key);
}

#[tokio::test]
async fn a_dropped_connection_then_success_is_retried() {
    let s = server(vec![
        Step::Drop,
        Step::Answer(200, r#"{"reference":"NCA-8"}"#),
    ])
    .await;
    let r = transport(&s, TOKEN)
        .submit(&report(), &files())
        .await
        .expect("accepted on the second attempt");
    assert_eq!(r.as_str(), "NCA-8");
    assert_eq!(s.seen.lock().expect("lock").len(), 2);
}

#[tokio::test]
async fn persistent_5xx_gives_up_after_the_policy_s_attempts() {
    let s = server(vec![Step::Answer(503, "down")]).await;
    let err = transport(&s, TOKEN)
        .submit(&report(), &files())
        .await
        .expect_err("gives up");
    match err {
        Error::Transport { attempts, last } => {
            assert_eq!(attempts, 3);
            assert!(last.contains("503"), "{last}");
        }
        other => panic!("expected Transport, got {other:?}"),
    }
    assert_eq!(s.seen.lock().expect("lock").len(), 3);
}

#[tokio::test]
async fn a_400_is_a_clean_error_with_the_message_and_not_retried() {
    let s = server(vec![Step::Answer(
        400,
        r#"{"message":"content[0].upload_time is required"}"#,
    )])
    .await;
    let err = transport(&s, TOKEN)
        .submit(&report(), &files())
        .await
        .expect_err("rejected");
    match err {
        Error::Rejected { status, message } => {
            assert_eq!(status, 400);
            assert_eq!(message, "content[0].upload_time is required");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(s.seen.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn wrong_token_is_an_auth_error() {
    let s = server(vec![Step::Answer(200, r#"{"reference":"never"}"#)]).await;
    let err = transport(&s, "wrong-token")
        .submit(&report(), &files())
        .await
        .expect_err("refused");
    match err {
        Error::Auth { status, message } => {
            assert_eq!(status, 401);
            assert_eq!(message, "invalid token");
        }
        other => panic!("expected Auth, got {other:?}"),
    }
    assert_eq!(s.seen.lock().expect("lock").len(), 1, "not retried");
}

#[tokio::test]
async fn a_success_without_a_reference_is_not_retried() {
    let s = server(vec![Step::Answer(200, r#"{"ok":true}"#)]).await;
    let err = transport(&s, TOKEN)
        .submit(&report(), &files())
        .await
        .expect_err("no reference");
    assert!(matches!(err, Error::BadResponse(_)), "{err:?}");
    assert_eq!(s.seen.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn a_server_with_an_untrusted_certificate_is_refused() {
    let s = server(vec![Step::Answer(200, r#"{"reference":"NCA-9"}"#)]).await;
    let other = server(vec![Step::Answer(200, r#"{"reference":"x"}"#)]).await;
    // Trust the other server's CA only.
    let t = ApiTransport::new(
        s.url.clone(),
        BearerToken::new(TOKEN).expect("token"),
        Duration::from_secs(10),
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        Trust::OnlyPem(other.ca_pem.clone().into_bytes()),
    )
    .expect("transport");
    let err = t.submit(&report(), &files()).await.expect_err("untrusted");
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(s.seen.lock().expect("lock").is_empty(), "nothing was sent");
}
