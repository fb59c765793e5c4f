//! Hash-list import and export over HTTP, and the provenance of a hash:
//!
//! - `POST /v1/banks/{name}/import?format=..`: the request body is the list, spooled as it
//!   arrives into an anonymous temporary file in the data directory (never held whole in
//!   memory), at most [`MAX_IMPORT_BODY_BYTES`]; only once the body has ended cleanly is the
//!   import opened on the spool. A body cut off (client gone, connection dropped, timeout)
//!   imports nothing: with `complete=true`, a partial list would withdraw every hash not yet
//!   received. All or nothing: a malformed entry anywhere answers 400 naming the line (or
//!   record, or XML entry) and the bank is unchanged.
//! - `GET /v1/banks/{name}/export?format=..`: the bank as a list, streamed out.
//! - `GET /v1/banks/{name}/provenance?signal_type=..&value=..`: where one hash came from.
//!
//! The request timeout (`limits.request_timeout_secs`) applies: lists of millions of entries
//! are imported with `safeguard bank import` instead. A timeout while the body is still being
//! received imports nothing. A timeout once the import has started (the whole list is on disk)
//! answers 503 `timeout`, but the import runs on to its end and commits or fails as one
//! transaction: stopping it midway would gain nothing, and it cannot be partial. Importing
//! the same list again is harmless (entries already there are refreshed, not duplicated).

use std::io::{Seek, SeekFrom, Write};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures_util::StreamExt;
use safeguard_engine::{ImportOptions, SignalType};
use safeguard_lists::{Column, CsvMapping, Format};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::{blocking, in_request, AppState};

/// Largest list accepted over the API, in bytes (1 GiB, about 25 million plain MD5 lines).
/// Counted as the body streams in; larger lists go through the command line.
pub const MAX_IMPORT_BODY_BYTES: u64 = 1024 * 1024 * 1024;

/// Body chunks buffered between the exporting thread and the connection: a bound on memory
/// (chunks are at most a few tens of KiB), and back-pressure from a slow client.
const CHANNEL_CHUNKS: usize = 16;

/// Body bytes gathered before they are written to the import spool file.
const SPOOL_BATCH_BYTES: usize = 1 << 20;

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

async fn import(
    State(state): State<AppState>,
    Extension(actor): Extension<crate::auth::KeyId>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<FormatQuery>,
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

    // The list goes to disk as it arrives, not into memory: no charge on the byte budget.
    crate::middleware::exempt_body_from_budget();
    let spool = spool_body(&state, body).await?;
    // Only now, with the whole list received, does the import (and its transaction) begin.
    let report = {
        let engine = engine.clone();
        let opts = opts.clone();
        let bank = bank.name.clone();
        let st = state.clone();
        blocking(move || {
            let reader = std::io::BufReader::with_capacity(1 << 16, spool);
            let report = engine.import_list(&bank, &opts, reader)?;
            let o = &report.outcome;
            let detail = format!(
                "{} added, {} refreshed, {} removed",
                o.added, o.refreshed, o.removed
            );
            let action = if o.removed > 0 && o.added == 0 {
                safeguard_engine::audit::Action::BankWithdrawal
            } else {
                safeguard_engine::audit::Action::BankImport
            };
            st.audit_after(&actor.0, action, &format!("bank:{bank}"), &detail);
            Ok(report)
        })
        .await?
    };
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

/// Copies the request body into an anonymous temporary file in the data directory and
/// rewinds it. The file never has a name (`O_TMPFILE` on Linux, or unlinked at once), so it
/// vanishes when dropped, even on a crash: hash lists are sensitive and must not linger.
/// A body that ends in an error (cut off) is 400 `incomplete_body`; one over
/// [`MAX_IMPORT_BODY_BYTES`] is 413.
async fn spool_body(state: &AppState, body: Body) -> ApiResult<std::fs::File> {
    let dir = state.0.config.data_dir.clone();
    let mut file = blocking(move || {
        tempfile::tempfile_in(&dir).map_err(|e| {
            ApiError::internal(format!(
                "cannot create the import spool file in {}: {e}",
                dir.display()
            ))
        })
    })
    .await?;
    let mut stream = body.into_data_stream();
    let mut received: u64 = 0;
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batched = 0;
    loop {
        let chunk = stream.next().await.transpose().map_err(|e| {
            ApiError::bad_request(
                "incomplete_body",
                format!("the list upload was cut off ({e}); nothing was imported"),
            )
        })?;
        let end = chunk.is_none();
        if let Some(chunk) = chunk {
            received += chunk.len() as u64;
            if received > MAX_IMPORT_BODY_BYTES {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!(
                        "the list is over {MAX_IMPORT_BODY_BYTES} bytes; nothing was imported \
                         (use `safeguard bank import` for larger lists)"
                    ),
                ));
            }
            batched += chunk.len();
            batch.push(chunk);
        }
        // Written in batches, off the reactor: one blocking hop per MiB, not per chunk.
        if batched >= SPOOL_BATCH_BYTES || (end && !batch.is_empty()) {
            let chunks = std::mem::take(&mut batch);
            batched = 0;
            file = blocking(move || {
                for c in &chunks {
                    file.write_all(c).map_err(spool_error)?;
                }
                Ok(file)
            })
            .await?;
        }
        if end {
            break;
        }
    }
    blocking(move || {
        file.seek(SeekFrom::Start(0)).map_err(spool_error)?;
        Ok(file)
    })
    .await
}

fn spool_error(e: std::io::Error) -> ApiError {
    ApiError::internal(format!("writing the import spool: {e}"))
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
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<FormatQuery>,
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
    tokio::task::spawn_blocking(in_request(move || {
        let out = std::io::BufWriter::with_capacity(1 << 16, ChannelWriter { tx: tx.clone() });
        if let Err(e) = engine.export_list(&bank.name, &format, types.as_deref(), out) {
            // The status line is sent; ending the body with an error tells the client the
            // export is incomplete (the connection is reset rather than closed cleanly).
            tracing::warn!(bank = %bank.name, error = %e, "export failed midway");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    }));
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
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<ProvenanceQuery>,
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
