//! Errors logged from the blocking pool carry the request id: the log of this test binary is
//! captured (one global subscriber, hence a file of its own) and searched.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use safeguard_server::config::Config;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// An internal error raised inside a `blocking` task (the import spool cannot be created: the
/// data directory does not exist) is logged with the request's id, as a field and in the
/// request span, and the client gets the same id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_from_blocking_tasks_carry_the_request_id() {
    let log = Captured::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .json()
            .with_writer(log.clone())
            .with_max_level(tracing::Level::INFO)
            .finish(),
    )
    .unwrap();
    let missing = tempfile::tempdir().unwrap().path().join("gone");
    let config = Config {
        data_dir: missing,
        ..Default::default()
    };
    let s = server_with(config).await;
    let r = s
        .admin(
            "POST",
            "/v1/banks",
            Some(serde_json::json!({"name": "RID"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let req = Request::builder()
        .method("POST")
        .uri("/v1/banks/RID/import?format=plain&type=md5")
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .header("x-request-id", "trace-me-4242")
        .body(Body::from(format!("{:032x}\n", 1)))
        .unwrap();
    let r = s.send(req).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text());
    assert_eq!(r.json()["error"]["request_id"], "trace-me-4242");

    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("cannot create the import spool file"))
        .unwrap_or_else(|| panic!("the error was not logged:\n{text}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["fields"]["request_id"], "trace-me-4242", "{line}");
    assert_eq!(v["span"]["request_id"], "trace-me-4242", "{line}");
    // No line of the request lost its id on the way through the blocking pool.
    assert!(
        !text.contains("\"request_id\":\"-\""),
        "a line lost its request id:\n{text}"
    );
}
