//! Where a backfill scan's items come from: a directory tree, an S3-compatible bucket, or a
//! file of URLs. A source lists its item keys in a stable order (so a listing cut off and run
//! again plans the same jobs) and fetches an item's bytes by its key.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::ObjectStore;

use safeguard_store::scan::MAX_ITEM_KEY_BYTES;

/// Items fetched at once by one worker from a bucket or over HTTP.
const FETCH_CONCURRENCY: usize = 16;
/// Longest wait for one URL's answer, whole body included.
const URL_TIMEOUT: Duration = Duration::from_secs(30);

/// A parsed source.
pub enum Source {
    /// Files under a directory; keys are paths relative to it, `/`-separated.
    Dir(PathBuf),
    /// Objects under a prefix of a bucket; keys are object keys.
    S3 {
        /// The bucket's client.
        store: Arc<dyn ObjectStore>,
        /// Its name.
        bucket: String,
        /// Key prefix listed (may be empty).
        prefix: String,
    },
    /// One URL per line of a file; keys are the URLs.
    Urls {
        /// The file.
        file: PathBuf,
        /// The client.
        client: reqwest::Client,
    },
}

impl Source {
    /// Parses `spec`: `s3://BUCKET[/PREFIX]`, `urls:FILE`, or a directory (optionally
    /// `dir:PATH`). A directory is made absolute, so workers started elsewhere find it. The
    /// bucket's endpoint and credentials come from the standard `AWS_*` variables
    /// (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ALLOW_HTTP`).
    pub fn parse(spec: &str) -> anyhow::Result<Source> {
        if let Some(rest) = spec.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            anyhow::ensure!(!bucket.is_empty(), "{spec}: no bucket name");
            let store = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .with_context(|| format!("{spec}: cannot configure the bucket client"))?;
            return Ok(Source::S3 {
                store: Arc::new(store),
                bucket: bucket.to_string(),
                prefix: prefix.trim_end_matches('/').to_string(),
            });
        }
        if let Some(file) = spec.strip_prefix("urls:") {
            let file = std::path::absolute(file)
                .with_context(|| format!("{spec}: cannot resolve the path"))?;
            let client = reqwest::Client::builder()
                .timeout(URL_TIMEOUT)
                .redirect(reqwest::redirect::Policy::limited(5))
                .build()
                .context("cannot build the HTTP client")?;
            return Ok(Source::Urls { file, client });
        }
        let path = spec.strip_prefix("dir:").unwrap_or(spec);
        let dir = std::path::absolute(path)
            .with_context(|| format!("{spec}: cannot resolve the path"))?;
        anyhow::ensure!(dir.is_dir(), "{}: not a directory", dir.display());
        Ok(Source::Dir(dir))
    }

    /// The canonical text a scan stores and a joining worker parses again.
    pub fn spec(&self) -> String {
        match self {
            Source::Dir(d) => format!("dir:{}", d.display()),
            Source::S3 { bucket, prefix, .. } => {
                if prefix.is_empty() {
                    format!("s3://{bucket}")
                } else {
                    format!("s3://{bucket}/{prefix}")
                }
            }
            Source::Urls { file, .. } => format!("urls:{}", file.display()),
        }
    }

    /// Calls `each` with every item key in listing order. Keys over
    /// [`MAX_ITEM_KEY_BYTES`] and duplicate URLs are skipped with a warning on stderr.
    pub fn list(
        &self,
        rt: &tokio::runtime::Runtime,
        mut each: impl FnMut(String) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut push = |key: String| -> anyhow::Result<()> {
            if key.len() > MAX_ITEM_KEY_BYTES {
                eprintln!("safeguard: skipped, key over {MAX_ITEM_KEY_BYTES} bytes: {key:.80}…");
                return Ok(());
            }
            each(key)
        };
        match self {
            Source::Dir(root) => {
                let walker = walkdir::WalkDir::new(root)
                    .follow_links(false)
                    .sort_by_file_name();
                for entry in walker {
                    let e = entry.with_context(|| format!("listing {}", root.display()))?;
                    let is_file = e.file_type().is_file()
                        || (e.file_type().is_symlink()
                            && std::fs::metadata(e.path()).is_ok_and(|m| m.is_file()));
                    if !is_file {
                        continue;
                    }
                    let rel = e.path().strip_prefix(root).unwrap_or(e.path());
                    let Some(key) = rel_key(rel) else {
                        eprintln!("safeguard: skipped, not UTF-8: {}", e.path().display());
                        continue;
                    };
                    push(key)?;
                }
                Ok(())
            }
            Source::S3 { store, prefix, .. } => rt.block_on(async {
                let prefix =
                    (!prefix.is_empty()).then(|| object_store::path::Path::from(prefix.as_str()));
                // S3 lists in key order, so a second listing plans the same jobs.
                let mut stream = store.list(prefix.as_ref());
                while let Some(meta) = stream.try_next().await.context("listing the bucket")? {
                    push(meta.location.to_string())?;
                }
                Ok(())
            }),
            Source::Urls { file, .. } => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let mut seen = HashSet::new();
                for line in text.lines() {
                    let url = line.trim();
                    if url.is_empty() || url.starts_with('#') {
                        continue;
                    }
                    if !seen.insert(url) {
                        continue;
                    }
                    push(url.to_string())?;
                }
                Ok(())
            }
        }
    }

    /// The bytes of each key, in order, at most `max_bytes` each; an error is the reason,
    /// ready to record.
    pub fn fetch(
        &self,
        rt: &tokio::runtime::Runtime,
        keys: &[String],
        max_bytes: u64,
    ) -> Vec<Result<Vec<u8>, String>> {
        match self {
            Source::Dir(root) => keys
                .iter()
                .map(|k| {
                    // Keys come from the store; one that climbs out of the tree is refused
                    // rather than read.
                    if k.starts_with('/') || k.split('/').any(|c| c == "..") {
                        return Err("the key leaves the scanned directory".to_string());
                    }
                    read_capped(&root.join(k), max_bytes)
                })
                .collect(),
            Source::S3 { store, .. } => rt.block_on(
                futures_util::stream::iter(keys.iter().map(|k| async move {
                    let path = object_store::path::Path::from(k.as_str());
                    let got = store.get(&path).await.map_err(|e| e.to_string())?;
                    if got.meta.size > max_bytes {
                        return Err(format!("over {max_bytes} bytes ({})", got.meta.size));
                    }
                    got.bytes()
                        .await
                        .map(|b| b.to_vec())
                        .map_err(|e| e.to_string())
                }))
                .buffered(FETCH_CONCURRENCY)
                .collect(),
            ),
            Source::Urls { client, .. } => rt.block_on(
                futures_util::stream::iter(
                    keys.iter()
                        .map(|k| async move { fetch_url(client, k, max_bytes).await }),
                )
                .buffered(FETCH_CONCURRENCY)
                .collect(),
            ),
        }
    }
}

/// A relative path as a `/`-separated key; `None` when not UTF-8.
fn rel_key(rel: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    parts.map(|p| p.join("/"))
}

fn read_capped(path: &Path, max_bytes: u64) -> Result<Vec<u8>, String> {
    let limits = safeguard_media::Limits {
        max_input_bytes: max_bytes,
        ..safeguard_media::Limits::default()
    };
    safeguard_media::read_file(path, &limits).map_err(|e| e.to_string())
}

async fn fetch_url(client: &reqwest::Client, url: &str, max_bytes: u64) -> Result<Vec<u8>, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("not an http(s) URL: {}", parsed.scheme()));
    }
    let resp = client.get(parsed).send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status().as_u16()));
    }
    if resp.content_length().is_some_and(|n| n > max_bytes) {
        return Err(format!("over {max_bytes} bytes"));
    }
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        if body.len() as u64 + chunk.len() as u64 > max_bytes {
            return Err(format!("over {max_bytes} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
