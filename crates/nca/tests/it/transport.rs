//! The API transport against a local HTTPS server on 127.0.0.1:0 with a certificate from a
//! CA made in the test; the client trusts exactly that CA. The server is a few lines of
//! HTTP/1.1 over tokio-rustls, one request per connection, so each connection can be given
//! a scripted fault.

use std::time::Duration;

use safeguard_nca::test_server::{self, Step, TestServer};
use safeguard_nca::transport::Trust;
use safeguard_nca::{ApiTransport, BearerToken, Error, RetryPolicy};

use crate::common::{files, report};

const TOKEN: &str = "test-token-123";

async fn server(script: Vec<Step>) -> TestServer {
    test_server::start(script, TOKEN).await
}

fn transport(server: &TestServer, token: &str) -> ApiTransport {
    ApiTransport::new(
        server.url.clone(),
        BearerToken::new(token).expect("token"),
        Duration::from_secs(10),
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
        },
        server.trust(),
    )
    .expect("transport")
}

#[tokio::test]
async fn success_returns_the_reference_and_sends_the_documented_body() {
    let s = server(vec![Step::answer(
        201,
        r#"{"reference":"NCA-2026-000042"}"#,
    )])
    .await;
    let r = transport(&s, TOKEN)
        .submit(&report(), &files())
        .await
        .expect("accepted");
    assert_eq!(r.as_str(), "NCA-2026-000042");
    let seen = s.requests();
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
        Step::answer(500, r#"{"message":"try later"}"#),
        Step::answer(200, r#"{"reference":"NCA-7"}"#),
    ])
    .await;
    let r = transport(&s, TOKEN)
        .submit(&report(), &files())
        .await
        .expect("accepted on the second attempt");
    assert_eq!(r.as_str(), "NCA-7");
    let seen = s.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].idempotency_key, seen[1].idempotency_key);
}

#[tokio::test]
async fn a_dropped_connection_then_success_is_retried() {
    let s = server(vec![
        Step::Drop,
        Step::answer(200, r#"{"reference":"NCA-8"}"#),
    ])
    .await;
    let r = transport(&s, TOKEN)
        .submit(&report(), &files())
        .await
        .expect("accepted on the second attempt");
    assert_eq!(r.as_str(), "NCA-8");
    assert_eq!(s.requests().len(), 2);
}

#[tokio::test]
async fn persistent_5xx_gives_up_after_the_policy_s_attempts() {
    let s = server(vec![Step::answer(503, "down")]).await;
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
    assert_eq!(s.requests().len(), 3);
}

#[tokio::test]
async fn a_408_and_a_429_are_retried_with_the_same_idempotency_key() {
    let s = server(vec![
        Step::answer(408, r#"{"message":"request timeout"}"#),
        Step::answer(429, r#"{"message":"slow down"}"#),
        Step::answer(201, r#"{"reference":"NCA-10"}"#),
    ])
    .await;
    let r = transport(&s, TOKEN)
        .submit(&report(), &files())
        .await
        .expect("accepted on the third attempt");
    assert_eq!(r.as_str(), "NCA-10");
    let seen = s.requests();
    assert_eq!(seen.len(), 3);
    assert!(seen
        .iter()
        .all(|r| r.idempotency_key == seen[0].idempotency_key));
}

#[tokio::test]
async fn a_403_is_an_auth_error_and_not_retried() {
    let s = server(vec![Step::answer(
        403,
        r#"{"message":"token lacks the submit permission"}"#,
    )])
    .await;
    let err = transport(&s, TOKEN)
        .submit(&report(), &files())
        .await
        .expect_err("refused");
    match err {
        Error::Auth { status, message } => {
            assert_eq!(status, 403);
            assert_eq!(message, "token lacks the submit permission");
        }
        other => panic!("expected Auth, got {other:?}"),
    }
    assert_eq!(s.requests().len(), 1, "not retried");
}

#[tokio::test]
async fn a_400_is_a_clean_error_with_the_message_and_not_retried() {
    let s = server(vec![Step::answer(
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
    assert_eq!(s.requests().len(), 1);
}

#[tokio::test]
async fn wrong_token_is_an_auth_error() {
    let s = server(vec![Step::answer(200, r#"{"reference":"never"}"#)]).await;
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
    assert_eq!(s.requests().len(), 1, "not retried");
}

#[tokio::test]
async fn a_success_without_a_reference_is_not_retried() {
    let s = server(vec![Step::answer(200, r#"{"ok":true}"#)]).await;
    let err = transport(&s, TOKEN)
        .submit(&report(), &files())
        .await
        .expect_err("no reference");
    assert!(matches!(err, Error::BadResponse(_)), "{err:?}");
    assert_eq!(s.requests().len(), 1);
}

#[tokio::test]
async fn a_server_with_an_untrusted_certificate_is_refused() {
    let s = server(vec![Step::answer(200, r#"{"reference":"NCA-9"}"#)]).await;
    let other = server(vec![Step::answer(200, r#"{"reference":"x"}"#)]).await;
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
    assert!(s.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_caller_s_idempotency_key_is_sent_on_every_attempt_and_checked() {
    let s = server(vec![Step::Drop, Step::Accept]).await;
    let t = transport(&s, TOKEN);
    let key = "case-7-0123456789abcdef";
    let r = t
        .submit_keyed(&report(), &files(), key)
        .await
        .expect("accepted on the second attempt");
    assert_eq!(r.as_str(), "NCA-TEST-1");
    // Sent again later under the same key (a resume after a crash): the server that honours
    // the key gives the same reference, and was asked with the same key each time.
    let again = t
        .submit_keyed(&report(), &files(), key)
        .await
        .expect("accepted");
    assert_eq!(again.as_str(), "NCA-TEST-1");
    let seen = s.requests();
    assert_eq!(seen.len(), 3);
    assert!(seen
        .iter()
        .all(|r| r.idempotency_key.as_deref() == Some(key)));
    for bad in ["short", "has space in it 1234", &"x".repeat(129)] {
        let err = t
            .submit_keyed(&report(), &files(), bad)
            .await
            .expect_err("bad key");
        assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    }
    assert_eq!(s.requests().len(), 3, "nothing sent with a bad key");
}
