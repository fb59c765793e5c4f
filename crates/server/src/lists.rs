//! Hash-list import and export over HTTP, and the provenance of a hash:
//!
//! - `POST /v1/banks/{name}/import?format=..`: the request body is the list, streamed into the
//!   engine's import as it arrives (never held whole in memory), at most
//!   [`MAX_IMPORT_BODY_BYTES`]. All or nothing: a malformed entry anywhere answers 400 naming
//!   the line (or record, or XML entry) and the bank is unchanged.
//! - `GET /v1/banks/{name}/export?format=..`: the bank as a list, streamed out.
//! - `GET /v1/banks/{name}/provenance?signal_type=..&value=..`: where one hash came from.
//!
//! The request timeout (`limits.request_timeout_secs`) applies: lists of millions of entries
//! are imported with `safeguard bank import` instead.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use safeguard_engine::{ImportOptions, SignalType};
use safeguard_lists::{Column, CsvMapping, Format};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::state::{blocking, AppState};

/// Largest list accepted over the API, in bytes (1 GiB, about 25 million plain MD5 lines).
/// Counted as the body streams in; larger lists go through the command line.
pub const MAX_IMPORT_BODY_BYTES: u64 = 1024 * 1024 * 1024;

/// Body chunks buffered between the connection and the importing thread: a bound on memory
/// (chunks are at most a few tens of KiB), and back-pressure on a client faster than the
/// import.
const CHANNEL_CHUNKS: usize = 16;

/// Routes needing the `curate` scope.
pub fn curate_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/banks/{name}/import",
            post(import).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/banks/{name}/export", get(export))
        .route("/v1/banks/{name}/provenance", get(provenance))
}

/// The list format and its options, as query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatQuery {
    format: Option<String>,
    #[serde(rename = "type")]
    signal_type: Option<String>,
    delimiter: Option<String>,
    #[serde(default)]
    header: bool,
    hash_column: Option<String>,
    type_column: Option<String>,
    classification_column: Option<String>,
    source_id_column: Option<String>,
    // Import only.
    source: Option<String>,
    #[serde(default)]
    complete: bool,
    #[serde(default)]
    skip_unknown_types: bool,
    // Export only: comma-separated signal types.
    only: Option<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_parameter", message)
}

impl FormatQuery {
    fn format(&self) -> ApiResult<Format> {
        let name = self.format.as_deref().ok_or_else(|| {
            ApiError::bad_request(
                "missing_parameter",
                format!("give ?format= (one of {})", Format::NAMES.join(", ")),
            )
        })?;
        Ok(match name {
            "plain" => Format::Plain {
                signal_type: self.signal_type.clone(),
            },
            "csv" => {
                let delimiter = match self.delimiter.as_deref() {
                    None => b',',
                    Some("tab" | "\t") => b'\t',
                    Some(d) if d.len() == 1 && d.is_ascii() => d.as_bytes()[0],
                    Some(d) => {
                        return Err(invalid(format!(
                            "delimiter must be one ASCII character or `tab`, not {d:?}"
                        )))
                    }
                };
                let col = |c: &Option<String>| c.as_deref().map(Column::parse);
                Format::Csv(CsvMapping {
                    delimiter,
                    header: self.header,
                    hash: col(&self.hash_column),
                    signal_type_column: col(&self.type_column),
                    signal_type: self.signal_type.clone(),
                    classification: col(&self.classification_column),
                    source_id: col(&self.source_id_column),
                })
            }
            "hma" => Format::Hma,
            "ncmec" => Format::Ncmec,
            "stopncii" => Format::StopNcii,
            other => {
                return Err(invalid(format!(
                    "unknown format {other:?}: use one of {}",
                    Format::NAMES.join(", ")
                )))
            }
        })
    }
}

/// Reads the body chunks the handler forwards; a closed channel is the end of the body.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

async fn import(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<FormatQuery>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let format = q.format()?;
    let engine = state.engine()?;
    // Unknown bank: answer before reading the body.
    let bank = {
        let (e, n) = (engine.clone(), name.clone());
        blocking(move || Ok(e.bank(&n)?)).await?
    };
    let mut opts = ImportOptions::new(format, q.source.clone().unwrap_or("file:upload".into()));
    opts.complete = q.complete;
    opts.skip_unknown_types |= q.skip_unknown_types;
    safeguard_engine::validate_source(&opts.source)?;

    let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_CHUNKS);
    let task = {
        let engine = engine.clone();
        let opts = opts.clone();
        let bank = bank.name.clone();
        tokio::task::spawn_blocking(move || {
            let reader = std::io::BufReader::with_capacity(
                1 << 16,
                ChannelReader {
                    rx,
                    current: Bytes::new(),
                },
            );
            engine.import_list(&bank, &opts, reader)
        })
    };
    let mut stream = body.into_data_stream();
    let mut received: u64 = 0;
    let mut over_limit = false;
    while let Some(chunk) = stream.next().await {
        let item = match chunk {
            Ok(b) => {
                received += b.len() as u64;
                if received > MAX_IMPORT_BODY_BYTES {
                    over_limit = true;
                    Err(std::io::Error::other("the list is over the size limit"))
                } else {
                    Ok(b)
                }
            }
            Err(e) => Err(std::io::Error::other(format!(
                "reading the request body: {e}"
            ))),
        };
        let stop = item.is_err();
        // A send fails when the import already stopped (a bad entry): its error is the answer.
        if tx.send(item).await.is_err() || stop {
            break;
        }
    }
    drop(tx);
    let result = task.await?;
    if over_limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the list is over {MAX_IMPORT_BODY_BYTES} bytes; nothing was imported (use \
                 `safeguard bank import` for larger lists)"
            ),
        ));
    }
    let report = result?;
    let o = report.outcome;
    Ok(Json(json!({
        "bank": bank.name,
        "source": opts.source,
        "records": report.records,
        "added": o.added,
        "refreshed": o.refreshed,
        "removed": o.removed,
        "unchanged": o.unchanged,
        "skipped_unknown_types": report.skipped,
    })))
}

/// Writes into the response body's channel from the exporting thread.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn export(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<FormatQuery>,
) -> ApiResult<Response> {
    let format = q.format()?;
    let types = match &q.only {
        None => None,
        Some(list) => Some(
            list.split(',')
                .map(|t| SignalType::parse(t.trim()))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let engine = state.engine()?;
    let bank = {
        let (e, n) = (engine.clone(), name.clone());
        blocking(move || Ok(e.bank(&n)?)).await?
    };
    let content_type = match format {
        Format::Plain { .. } => "text/plain; charset=utf-8",
        Format::Csv(_) | Format::Hma => "text/csv; charset=utf-8",
        Format::Ncmec => "application/xml",
        Format::StopNcii => "application/json",
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(CHANNEL_CHUNKS);
    tokio::task::spawn_blocking(move || {
        let out = std::io::BufWriter::with_capacity(1 << 16, ChannelWriter { tx: tx.clone() });
        if let Err(e) = engine.export_list(&bank.name, &format, types.as_deref(), out) {
            // The status line is sent; ending the body with an error tells the client the
            // export is incomplete (the connection is reset rather than closed cleanly).
            tracing::warn!(bank = %bank.name, error = %e, "export failed midway");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvenanceQuery {
    signal_type: String,
    value: String,
}

async fn provenance(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<ProvenanceQuery>,
) -> ApiResult<Json<Value>> {
    let engine = state.engine()?;
    let t = SignalType::parse(&q.signal_type)?;
    let records = blocking(move || Ok(engine.provenance(&name, t, &q.value)?)).await?;
    let records: Vec<Value> = records
        .iter()
        .map(|p| {
            json!({
                "source": p.source,
                "source_id": p.source_id,
                "classification": p.classification,
                "first_seen": p.first_seen,
                "last_seen": p.last_seen,
                "withdrawn_at": p.withdrawn_at,
                "active": p.withdrawn_at.is_none(),
            })
        })
        .collect();
    Ok(Json(json!({ "signal_type": t.name(), "records": records })))
}
