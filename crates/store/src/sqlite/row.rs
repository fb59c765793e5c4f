//! Mapping between SQLite rows and errors and the crate's records and [`Error`].
//!
//! Every `SELECT` lists its columns in the order the `*_COLUMNS` constants give, so the
//! parsers here can read by index.

use rusqlite::types::{FromSql, ValueRef};
use rusqlite::{ErrorCode, Row};

use crate::model::FeedColumns;
pub(crate) use crate::model::FeedRow;
use crate::{ApiKey, Bank, BankKind, Content, Error, Result, Signal};

/// Maps a SQLite error to the crate's error by what the caller can do about it: a violated
/// constraint is the caller's input clashing with stored data; an unreadable file or value
/// is corruption; everything else (busy, locked, I/O, full disk) is a backend fault.
pub(crate) fn db_err(e: rusqlite::Error) -> Error {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::ConstraintViolation => Error::Conflict(e.to_string()),
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => Error::Corrupt(e.to_string()),
            _ => Error::Backend(e.to_string()),
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..) => Error::Corrupt(e.to_string()),
        _ => Error::Backend(e.to_string()),
    }
}

/// Whether `e` is a UNIQUE (or primary key) violation, so the caller can say which name clashed
/// rather than echo SQLite's message.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// Reads column `idx`, mapping a type mismatch to [`Error::Corrupt`] naming the table.
pub(crate) fn col<T: FromSql>(row: &Row<'_>, idx: usize, table: &str) -> Result<T> {
    row.get(idx)
        .map_err(|e| Error::Corrupt(format!("{table} row: {e}")))
}

/// Borrows text column `idx` without copying (for the startup scan).
pub(crate) fn col_str<'r>(row: &'r Row<'_>, idx: usize, table: &str) -> Result<&'r str> {
    match row.get_ref(idx) {
        Ok(ValueRef::Text(bytes)) => std::str::from_utf8(bytes)
            .map_err(|e| Error::Corrupt(format!("{table} row: column {idx}: {e}"))),
        Ok(other) => Err(Error::Corrupt(format!(
            "{table} row: column {idx}: expected text, found {}",
            other.data_type()
        ))),
        Err(e) => Err(Error::Corrupt(format!("{table} row: {e}"))),
    }
}

/// Columns read by [`bank`].
pub(crate) const BANK_COLUMNS: &str = "id, name, enabled, enabled_ratio, pdq_threshold, kind, \
     created_at, updated_at, tags, classification";

/// Tags as stored: joined by commas (the engine allows no comma in a tag).
pub(crate) fn tags_to_text(tags: &[String]) -> String {
    tags.join(",")
}

fn tags_from_text(text: &str) -> Vec<String> {
    if text.is_empty() {
        Vec::new()
    } else {
        text.split(',').map(str::to_owned).collect()
    }
}

pub(crate) fn bank(row: &Row<'_>) -> Result<Bank> {
    const T: &str = "banks";
    let id: i64 = col(row, 0, T)?;
    let kind: String = col(row, 5, T)?;
    let threshold: i64 = col(row, 4, T)?;
    Ok(Bank {
        id,
        name: col(row, 1, T)?,
        enabled: col(row, 2, T)?,
        enabled_ratio: col(row, 3, T)?,
        pdq_threshold: u32::try_from(threshold).map_err(|_| {
            Error::Corrupt(format!("bank {id}: pdq_threshold {threshold} out of range"))
        })?,
        kind: BankKind::parse(&kind)
            .ok_or_else(|| Error::Corrupt(format!("bank {id}: unknown kind {kind:?}")))?,
        created_at: col(row, 6, T)?,
        updated_at: col(row, 7, T)?,
        tags: tags_from_text(col_str(row, 8, T)?),
        classification: col(row, 9, T)?,
    })
}

/// Columns read by [`content`].
pub(crate) const CONTENT_COLUMNS: &str = "id, bank_id, metadata, note, disable_until_ts, \
     original_media_uri, created_at, updated_at";

/// A content row, with `signals` left empty for the caller to fill.
pub(crate) fn content(row: &Row<'_>) -> Result<Content> {
    const T: &str = "contents";
    Ok(Content {
        id: col(row, 0, T)?,
        bank_id: col(row, 1, T)?,
        metadata: col(row, 2, T)?,
        note: col(row, 3, T)?,
        disable_until_ts: col(row, 4, T)?,
        original_media_uri: col(row, 5, T)?,
        created_at: col(row, 6, T)?,
        updated_at: col(row, 7, T)?,
        signals: Vec::new(),
    })
}

/// Columns read by [`signal`] and [`signal_into`].
pub(crate) const SIGNAL_COLUMNS: &str = "id, content_id, bank_id, signal_type, value";

pub(crate) fn signal(row: &Row<'_>) -> Result<Signal> {
    const T: &str = "signals";
    Ok(Signal {
        id: col(row, 0, T)?,
        content_id: col(row, 1, T)?,
        bank_id: col(row, 2, T)?,
        signal_type: col(row, 3, T)?,
        value: col(row, 4, T)?,
    })
}

/// Overwrites `out` with the row, reusing its string buffers: the startup scan reads millions
/// of rows and would otherwise allocate two strings per row.
pub(crate) fn signal_into(row: &Row<'_>, out: &mut Signal) -> Result<()> {
    const T: &str = "signals";
    out.id = col(row, 0, T)?;
    out.content_id = col(row, 1, T)?;
    out.bank_id = col(row, 2, T)?;
    out.signal_type.clear();
    out.signal_type.push_str(col_str(row, 3, T)?);
    out.value.clear();
    out.value.push_str(col_str(row, 4, T)?);
    Ok(())
}

/// Columns read by [`change`].
pub(crate) const CHANGE_COLUMNS: &str =
    "seq, kind, bank_id, content_id, signal_id, signal_type, value, count";

/// One row of the change feed.
pub(crate) fn change(row: &Row<'_>) -> Result<FeedRow> {
    const T: &str = "changes";
    FeedColumns {
        seq: col(row, 0, T)?,
        kind: col(row, 1, T)?,
        bank_id: col(row, 2, T)?,
        content_id: col(row, 3, T)?,
        signal_id: col(row, 4, T)?,
        signal_type: col(row, 5, T)?,
        value: col(row, 6, T)?,
        count: col(row, 7, T)?,
    }
    .into_row()
}

/// Columns read by [`api_key`].
pub(crate) const API_KEY_COLUMNS: &str =
    "id, key_id, name, secret_sha256, scopes, created_at, revoked_at";

pub(crate) fn api_key(row: &Row<'_>) -> Result<ApiKey> {
    const T: &str = "api_keys";
    let id: i64 = col(row, 0, T)?;
    let scopes: String = col(row, 4, T)?;
    Ok(ApiKey {
        id,
        key_id: col(row, 1, T)?,
        name: col(row, 2, T)?,
        secret_sha256: col(row, 3, T)?,
        scopes: serde_json::from_str(&scopes)
            .map_err(|e| Error::Corrupt(format!("api key {id}: scopes: {e}")))?,
        created_at: col(row, 5, T)?,
        revoked_at: col(row, 6, T)?,
    })
}

/// Encodes scopes as a JSON array: order and any character survive, unlike a delimiter.
pub(crate) fn encode_scopes(scopes: &[String]) -> String {
    // Serialising a slice of strings has no failure path (no maps with non-string keys, no
    // custom Serialize impls).
    serde_json::to_string(scopes).expect("a list of strings always serialises")
}
