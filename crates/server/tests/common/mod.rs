//! Shared test helpers: a server over a temporary SQLite store, driven through the router.

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use safeguard_server::auth::{create_key, Scope};
use safeguard_server::config::Config;
use safeguard_server::{app, AppState};
use safeguard_store::{SqliteStore, Store};

pub mod console;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef0123456789";

pub struct TestServer {
    pub state: AppState,
    pub store: Arc<dyn Store>,
    /// The temporary data directory `server_with` made, removed with the server.
    pub _data: Option<tempfile::TempDir>,
}

pub async fn server() -> TestServer {
    server_with(Config::default()).await
}

pub async fn server_with(mut config: Config) -> TestServer {
    // A test never writes into the crate's folder: the default (relative) data directory
    // becomes a temporary one. The master key (created on first use by webhooks, the vault
    // and the audit log) would otherwise land in `crates/server/safeguard-data`.
    let data = (config.data_dir == Config::default().data_dir).then(|| {
        let d = tempfile::tempdir().unwrap();
        config.data_dir = d.path().to_path_buf();
        d
    });
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    TestServer {
        _data: data,
        ..server_on(store, config).await
    }
}

/// A server over `store` (one on disk, say, that a test also opens itself) with `config` as
/// given.
pub async fn server_on(store: Arc<dyn Store>, config: Config) -> TestServer {
    let state = AppState::new(store.clone(), config, Some(ADMIN_KEY)).unwrap();
    safeguard_server::load_engine(state.clone(), None)
        .await
        .unwrap();
    TestServer {
        state,
        store,
        _data: None,
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub headers: axum::http::HeaderMap,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}), status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

impl TestServer {
    pub fn key(&self, scopes: &[Scope]) -> String {
        create_key(self.store.as_ref(), "test", scopes).unwrap().key
    }

    /// Moves `case` through `in_review` to `decided`, with the decision `confirmed: A1`.
    pub async fn confirm_case(&self, case: i64) {
        for (to, decision) in [("in_review", None), ("decided", Some("confirmed: A1"))] {
            let r = self
                .admin(
                    "POST",
                    &format!("/v1/cases/{case}/transition"),
                    Some(serde_json::json!({"to": to, "decision": decision})),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{to}: {}", r.text());
        }
    }

    /// Approves the decision on `case` with a new key of the approve scope: a second person.
    pub async fn approve_case(&self, case: i64) {
        let senior = self.key(&[Scope::Approve]);
        let r = self
            .call(
                "POST",
                &format!("/v1/cases/{case}/approve"),
                Some(&senior),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Resp {
            status,
            body,
            headers,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        json: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        let req = match json {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    pub async fn admin(&self, method: &str, uri: &str, json: Option<Value>) -> Resp {
        self.call(method, uri, Some(ADMIN_KEY), json).await
    }

    pub async fn upload(
        &self,
        uri: &str,
        field: &str,
        bytes: &[u8],
        extra: &[(&str, &str)],
    ) -> Resp {
        let boundary = "sgtestboundary7d9f";
        let mut body = Vec::new();
        for (k, v) in extra {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"upload.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let req = Request::builder()
            .method("POST")
            .uri(uri)
            .header("authorization", format!("Bearer {ADMIN_KEY}"))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .unwrap();
        self.send(req).await
    }
}

/// A benign test image from the repository's test data.
pub fn sample_image(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/conformance/pdq")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub const BRIDGE_PDQ: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

/// Serves `s` on 127.0.0.1; the server stops when the returned sender is dropped.
pub async fn listen(s: &TestServer) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (addr, stop, _) = listen_with_drain(s, std::time::Duration::from_secs(5)).await;
    (addr, stop)
}

/// The `serve` task of [`listen_with_drain`].
pub type Serving = tokio::task::JoinHandle<std::io::Result<()>>;

/// [`listen`], giving in-flight requests `drain` once stopped, with the `serve` task to await.
pub async fn listen_with_drain(
    s: &TestServer,
    drain: std::time::Duration,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    Serving,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(safeguard_server::serve(
        listener,
        s.state.clone(),
        async {
            let _ = stopped.await;
        },
        drain,
    ));
    (addr, stop, serving)
}
