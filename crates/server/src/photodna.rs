//! The PhotoDNA hasher plug-in: an operator with a Microsoft licence plugs their licensed
//! hasher in, and Safeguard adds a `photodna` signal to every image it hashes.
//!
//! Safeguard never implements PhotoDNA. The plug-in is either
//! * a command: run directly (no shell), with an empty environment except `PATH`, the image
//!   bytes on standard input, the value printed on standard output (hex, base64 or
//!   comma-separated — see `safeguard_engine::photodna`), exit status 0; or
//! * an HTTP endpoint: `POST` of the image bytes as `application/octet-stream`, answered 200
//!   with the value as the body, either plain or as JSON `{"photodna": "..."}`.
//!
//! Both are bounded: a timeout (the command is killed), at most 64 KiB of output, and at most
//! `max_concurrency` calls at once. A failing plug-in fails the request with
//! 502 `photodna_hasher_failed`; its output is logged truncated, never returned to the client.

use std::process::Stdio;
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use safeguard_engine::photodna::{parse_photodna, PhotoDnaValue};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::config::PluginConfig;
use crate::error::{request_id, ApiError};

/// Largest plug-in output read, bytes.
pub const MAX_PLUGIN_OUTPUT: usize = 64 * 1024;

/// A configured plug-in, ready to call.
#[derive(Debug)]
pub struct PhotoDnaHasher {
    kind: Kind,
    timeout: Duration,
    permits: Semaphore,
}

#[derive(Debug)]
enum Kind {
    Command(Vec<String>),
    Http {
        client: reqwest::Client,
        url: String,
    },
}

/// Why a plug-in call failed (for the log; the client sees a generic 502).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The plug-in did not answer in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The command could not be started, or I/O with it failed.
    #[error("could not run: {0}")]
    Spawn(String),
    /// The command exited unsuccessfully, or the endpoint answered an error status.
    #[error("failed: {0}")]
    Failed(String),
    /// The answer was not a PhotoDNA value.
    #[error("answer is not a PhotoDNA value: {0}")]
    BadOutput(String),
}

impl PhotoDnaHasher {
    /// Builds the plug-in from validated configuration.
    pub fn new(cfg: &PluginConfig) -> Result<PhotoDnaHasher, String> {
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let kind = match (&cfg.command, &cfg.url) {
            (Some(c), None) => Kind::Command(c.clone()),
            (None, Some(u)) => Kind::Http {
                client: reqwest::Client::builder()
                    .timeout(timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| format!("photodna hasher client: {e}"))?,
                url: u.clone(),
            },
            _ => return Err("photodna.hasher needs exactly one of `command` and `url`".into()),
        };
        Ok(PhotoDnaHasher {
            kind,
            timeout,
            permits: Semaphore::new(cfg.max_concurrency),
        })
    }

    /// Hashes one file's bytes.
    pub async fn hash(&self, bytes: Bytes) -> Result<PhotoDnaValue, PluginError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PluginError::Spawn("plug-in closed".into()))?;
        let text = match tokio::time::timeout(self.timeout, self.call(bytes)).await {
            Ok(r) => r?,
            Err(_) => return Err(PluginError::Timeout(self.timeout)),
        };
        parse_photodna(&text).map_err(PluginError::BadOutput)
    }

    /// Hashes, mapping failure to the API error the client sees (detail only in the log).
    pub async fn hash_for_api(&self, bytes: Bytes) -> Result<PhotoDnaValue, ApiError> {
        self.hash(bytes).await.map_err(|e| {
            tracing::warn!(request_id = %request_id(), error = %e, "photodna hasher failed");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "photodna_hasher_failed",
                "the configured PhotoDNA hasher failed; see the server log",
            )
        })
    }

    async fn call(&self, bytes: Bytes) -> Result<String, PluginError> {
        match &self.kind {
            Kind::Command(argv) => run_command(argv, bytes).await,
            Kind::Http { client, url } => {
                let mut resp = client
                    .post(url)
                    .header("content-type", "application/octet-stream")
                    .body(bytes)
                    .send()
                    .await
                    .map_err(|e| PluginError::Spawn(e.without_url().to_string()))?;
                let status = resp.status();
                let mut body = Vec::new();
                while let Some(chunk) = resp
                    .chunk()
                    .await
                    .map_err(|e| PluginError::Failed(e.without_url().to_string()))?
                {
                    if body.len() + chunk.len() > MAX_PLUGIN_OUTPUT {
                        return Err(PluginError::BadOutput(format!(
                            "answer longer than {MAX_PLUGIN_OUTPUT} bytes"
                        )));
                    }
                    body.extend_from_slice(&chunk);
                }
                if !status.is_success() {
                    return Err(PluginError::Failed(format!("HTTP status {status}")));
                }
                let text = String::from_utf8(body)
                    .map_err(|_| PluginError::BadOutput("answer is not UTF-8".into()))?;
                #[derive(Deserialize)]
                struct Answer {
                    photodna: String,
                }
                Ok(match serde_json::from_str::<Answer>(&text) {
                    Ok(a) => a.photodna,
                    Err(_) => text,
                })
            }
        }
    }
}

async fn run_command(argv: &[String], bytes: Bytes) -> Result<String, PluginError> {
    let mut child = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| PluginError::Spawn(format!("{}: {e}", argv[0])))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    // Write and read at once: a plug-in that answers before reading all its input, or that
    // fills its output pipe, must not deadlock us.
    let write = async move {
        // A plug-in may exit without reading everything; that is for its exit status to say.
        let _ = stdin.write_all(&bytes).await;
        drop(stdin);
    };
    let read_out = async {
        let mut buf = Vec::new();
        (&mut stdout)
            .take(MAX_PLUGIN_OUTPUT as u64 + 1)
            .read_to_end(&mut buf)
            .await
            .map(|_| buf)
    };
    // Standard error is read on its own task: it stays open as long as the plug-in runs.
    let read_err = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = (&mut stderr).take(4096).read_to_end(&mut buf).await;
        buf
    });
    let ((), out) = tokio::join!(write, read_out);
    let out = out.map_err(|e| PluginError::Spawn(e.to_string()))?;
    if out.len() > MAX_PLUGIN_OUTPUT {
        // It may still be writing; nothing it says now can be used.
        let _ = child.kill().await;
        read_err.abort();
        return Err(PluginError::BadOutput(format!(
            "output longer than {MAX_PLUGIN_OUTPUT} bytes"
        )));
    }
    let status = child
        .wait()
        .await
        .map_err(|e| PluginError::Spawn(e.to_string()))?;
    if !status.success() {
        let err = read_err.await.unwrap_or_default();
        let msg = String::from_utf8_lossy(&err);
        return Err(PluginError::Failed(format!(
            "exit {status}: {}",
            msg.trim().chars().take(200).collect::<String>()
        )));
    }
    read_err.abort();
    String::from_utf8(out).map_err(|_| PluginError::BadOutput("output is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for a licensed hasher, for testing the plug-in protocol only: it prints the
    /// 144 bytes `sha256(input)` repeated, as comma-separated numbers. It is NOT PhotoDNA.
    const STAND_IN: &str = r#"h=$(sha256sum | cut -c1-64); s=""; for i in 0 1 2 3 4; do s="$s$h"; done; s=$(printf %s "$s" | cut -c1-288); printf %s "$s""#;

    fn command(script: &str, timeout_ms: u64) -> PhotoDnaHasher {
        PhotoDnaHasher::new(&PluginConfig {
            command: Some(vec!["/bin/sh".into(), "-c".into(), script.into()]),
            url: None,
            timeout_ms,
            max_concurrency: 2,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn command_plugin_round_trip() {
        let h = command(STAND_IN, 10_000);
        let a = h
            .hash(Bytes::from_static(b"benign test bytes"))
            .await
            .unwrap();
        let b = h
            .hash(Bytes::from_static(b"benign test bytes"))
            .await
            .unwrap();
        let c = h.hash(Bytes::from_static(b"other bytes")).await.unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Large inputs are streamed while the output is read.
        let big = Bytes::from(vec![7u8; 8 * 1024 * 1024]);
        h.hash(big).await.unwrap();
    }

    #[tokio::test]
    async fn command_failures_are_errors_not_panics() {
        let slow = command("sleep 5", 200);
        assert!(matches!(
            slow.hash(Bytes::from_static(b"x")).await,
            Err(PluginError::Timeout(_))
        ));
        let fails = command("echo nope >&2; exit 3", 5_000);
        match fails.hash(Bytes::from_static(b"x")).await {
            Err(PluginError::Failed(m)) => assert!(m.contains("nope"), "{m}"),
            other => panic!("{other:?}"),
        }
        let garbage = command("cat >/dev/null; echo hello", 5_000);
        assert!(matches!(
            garbage.hash(Bytes::from_static(b"x")).await,
            Err(PluginError::BadOutput(_))
        ));
        let flood = command("cat >/dev/null; yes 1 | head -c 200000", 5_000);
        assert!(matches!(
            flood.hash(Bytes::from_static(b"x")).await,
            Err(PluginError::BadOutput(_))
        ));
        let missing = PhotoDnaHasher::new(&PluginConfig {
            command: Some(vec!["/nonexistent/hasher".into()]),
            url: None,
            timeout_ms: 1000,
            max_concurrency: 1,
        })
        .unwrap();
        assert!(matches!(
            missing.hash(Bytes::from_static(b"x")).await,
            Err(PluginError::Spawn(_))
        ));
    }

    /// At most `max_concurrency` runs of the plug-in at once; further calls wait for a slot
    /// (docs/photodna.md). Each run notes how many runs were alive at its middle.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn plugin_runs_are_limited_to_max_concurrency() {
        async fn peaks(max: usize, calls: usize) -> Vec<usize> {
            let dir = tempfile::tempdir().unwrap();
            let runs = dir.path().join("runs");
            std::fs::create_dir(&runs).unwrap();
            let log = dir.path().join("log");
            let script = format!(
                "cat >/dev/null; mkdir {r}/$$; sleep 0.4; ls {r} | wc -l >> {l}; rmdir {r}/$$; {STAND_IN}",
                r = runs.display(),
                l = log.display()
            );
            let h = std::sync::Arc::new(
                PhotoDnaHasher::new(&PluginConfig {
                    command: Some(vec!["/bin/sh".into(), "-c".into(), script]),
                    url: None,
                    timeout_ms: 20_000,
                    max_concurrency: max,
                })
                .unwrap(),
            );
            let all: Vec<_> = (0..calls)
                .map(|_| {
                    let h = h.clone();
                    tokio::spawn(async move { h.hash(Bytes::from_static(b"x")).await })
                })
                .collect();
            for c in all {
                c.await.unwrap().unwrap();
            }
            std::fs::read_to_string(&log)
                .unwrap()
                .lines()
                .map(|l| l.trim().parse().unwrap())
                .collect()
        }
        let one = peaks(1, 3).await;
        assert_eq!(one, vec![1, 1, 1]);
        let two = peaks(2, 5).await;
        assert_eq!(two.len(), 5);
        assert!(two.iter().all(|&n| n <= 2), "{two:?}");
        // The count itself works: unlimited enough, runs do overlap.
        let four = peaks(4, 4).await;
        assert!(four.iter().any(|&n| n >= 2), "{four:?}");
    }
}
