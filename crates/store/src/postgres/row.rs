//! Mapping between PostgreSQL rows and errors and the crate's records and [`Error`].
//!
//! Every `SELECT` lists its columns in the order the `*_COLUMNS` constants give, so the
//! parsers here read by index. The encodings (tags, scopes, kinds) are SQLite's
//! (`crate::sqlite::row`), so a record reads back the same from either store.

use std::borrow::Cow;

use bytes::BytesMut;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::Row;

use crate::model::FeedColumns;
pub(crate) use crate::model::FeedRow;
use crate::{ApiKey, Bank, BankKind, Content, Error, Result, Signal};

/// Maps a driver error by what the caller can do about it: a violated constraint is the
/// caller's input clashing with stored data; a value that cannot be stored (text with a NUL
/// byte, a number out of range) is bad input; corrupted data is corruption; everything else
/// (connection lost, timeouts, disk full) is a backend fault.
pub(crate) fn pg_err(e: tokio_postgres::Error) -> Error {
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection, or decoding a value of an unexpected type.
        return Error::Backend(e.to_string());
    };
    let message = e
        .as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_owned());
    if *code == SqlState::UNIQUE_VIOLATION
        || *code == SqlState::FOREIGN_KEY_VIOLATION
        || *code == SqlState::CHECK_VIOLATION
        || *code == SqlState::NOT_NULL_VIOLATION
        || *code == SqlState::EXCLUSION_VIOLATION
    {
        Error::Conflict(message)
    } else if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED {
        Error::Corrupt(message)
    } else if code.code().starts_with("22") {
        // Class 22, data exception: a value the database cannot hold.
        Error::Backend(format!("invalid value: {message}"))
    } else {
        Error::Backend(message)
    }
}

/// Whether `e` is a UNIQUE (or primary key) violation, so the caller can say which name
/// clashed rather than echo the database's message.
pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

// ------------------------------------------------------------------------- text escape
//
// PostgreSQL text cannot hold a NUL byte, which SQLite's (and the trait's) strings can. Every
// text value is therefore stored escaped: NUL as `\x01\x01` and `\x01` as `\x01\x02`, every
// other byte as itself. The code is prefix-free and keeps byte order (0x00 < 0x01 < 0x02 map
// to 0x0101 < 0x0102 < 0x02), so equality, uniqueness and `COLLATE "C"` ordering of escaped
// values are those of the originals, and the many strings without either byte are stored
// unchanged. Parameters are escaped in one place ([`Esc`], applied by every statement of
// `Tx`), values read back in another ([`Value`]); `COPY` lines use [`escape_into`].

/// The escape byte.
const ESC: u8 = 0x01;

/// Appends `bytes` escaped.
pub(crate) fn escape_into(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        match b {
            0 => out.extend_from_slice(&[ESC, 0x01]),
            ESC => out.extend_from_slice(&[ESC, 0x02]),
            _ => out.push(b),
        }
    }
}

/// The original of an escaped text value.
pub(crate) fn unescape(s: &str) -> std::result::Result<Cow<'_, str>, String> {
    if !s.as_bytes().contains(&ESC) {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1}' {
            match chars.next() {
                Some('\u{1}') => out.push('\0'),
                Some('\u{2}') => out.push('\u{1}'),
                other => return Err(format!("bad text escape before {other:?}")),
            }
        } else {
            out.push(c);
        }
    }
    Ok(Cow::Owned(out))
}

/// A statement parameter, escaped on its way out when it is text.
pub(crate) struct Esc<'a>(pub(crate) &'a (dyn ToSql + Sync));

impl std::fmt::Debug for Esc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

fn is_text(ty: &Type) -> bool {
    *ty == Type::TEXT || *ty == Type::VARCHAR || *ty == Type::BPCHAR || *ty == Type::NAME
}

impl ToSql for Esc<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.to_sql_checked(ty, out)
    }

    fn accepts(_: &Type) -> bool {
        // The wrapped value's own check runs in `to_sql_checked`.
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        if !is_text(ty) {
            return self.0.to_sql_checked(ty, out);
        }
        let mut raw = BytesMut::new();
        let null = self.0.to_sql_checked(ty, &mut raw)?;
        if let IsNull::No = null {
            let mut escaped = Vec::with_capacity(raw.len());
            escape_into(&raw, &mut escaped);
            out.extend_from_slice(&escaped);
        }
        Ok(null)
    }
}

/// A column type the store reads, text unescaped.
pub(crate) trait Value: Sized {
    fn read(row: &Row, idx: usize) -> std::result::Result<Self, String>;
}

macro_rules! plain_value {
    ($($t:ty),*) => {$(
        impl Value for $t {
            fn read(row: &Row, idx: usize) -> std::result::Result<Self, String> {
                row.try_get(idx).map_err(|e| e.to_string())
            }
        }
    )*};
}
plain_value!(i64, Option<i64>, bool, f64, Vec<u8>, Option<Vec<u8>>);

impl Value for String {
    fn read(row: &Row, idx: usize) -> std::result::Result<Self, String> {
        let s: &str = row.try_get(idx).map_err(|e| e.to_string())?;
        Ok(unescape(s)?.into_owned())
    }
}

impl Value for Option<String> {
    fn read(row: &Row, idx: usize) -> std::result::Result<Self, String> {
        let s: Option<&str> = row.try_get(idx).map_err(|e| e.to_string())?;
        s.map(|s| unescape(s).map(Cow::into_owned)).transpose()
    }
}

/// Reads column `idx`, mapping a type mismatch to [`Error::Corrupt`] naming the table.
pub(crate) fn col<T: Value>(row: &Row, idx: usize, table: &str) -> Result<T> {
    T::read(row, idx).map_err(|e| Error::Corrupt(format!("{table} row: column {idx}: {e}")))
}

/// Overwrites `out` with text column `idx`, reusing its buffer.
fn text_into(row: &Row, idx: usize, table: &str, out: &mut String) -> Result<()> {
    let s: &str = row
        .try_get(idx)
        .map_err(|e| Error::Corrupt(format!("{table} row: column {idx}: {e}")))?;
    let s = unescape(s).map_err(|e| Error::Corrupt(format!("{table} row: column {idx}: {e}")))?;
    out.clear();
    out.push_str(&s);
    Ok(())
}

/// A non-negative integer column as u64.
pub(crate) fn count(row: &Row, idx: usize, table: &str) -> Result<u64> {
    let n: i64 = col(row, idx, table)?;
    u64::try_from(n).map_err(|_| Error::Corrupt(format!("{table} row: negative count {n}")))
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

pub(crate) fn bank(row: &Row) -> Result<Bank> {
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
        tags: tags_from_text(&col::<String>(row, 8, T)?),
        classification: col(row, 9, T)?,
    })
}

/// Columns read by [`content`].
pub(crate) const CONTENT_COLUMNS: &str = "id, bank_id, metadata, note, disable_until_ts, \
     original_media_uri, created_at, updated_at";

/// A content row, with `signals` left empty for the caller to fill.
pub(crate) fn content(row: &Row) -> Result<Content> {
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

pub(crate) fn signal(row: &Row) -> Result<Signal> {
    const T: &str = "signals";
    Ok(Signal {
        id: col(row, 0, T)?,
        content_id: col(row, 1, T)?,
        bank_id: col(row, 2, T)?,
        signal_type: col(row, 3, T)?,
        value: col(row, 4, T)?,
    })
}

/// Overwrites `out` with the row, reusing its string buffers (the startup scan reads millions
/// of rows).
pub(crate) fn signal_into(row: &Row, out: &mut Signal) -> Result<()> {
    const T: &str = "signals";
    out.id = col(row, 0, T)?;
    out.content_id = col(row, 1, T)?;
    out.bank_id = col(row, 2, T)?;
    text_into(row, 3, T, &mut out.signal_type)?;
    text_into(row, 4, T, &mut out.value)?;
    Ok(())
}

/// [`signal_into`] for a row of a binary `COPY` of [`SIGNAL_COLUMNS`].
pub(crate) fn copied_signal_into(
    row: &tokio_postgres::binary_copy::BinaryCopyOutRow,
    out: &mut Signal,
) -> Result<()> {
    let bad = |idx: usize, e: &dyn std::fmt::Display| {
        Error::Corrupt(format!("signals row: column {idx}: {e}"))
    };
    out.id = row.try_get(0).map_err(|e| bad(0, &e))?;
    out.content_id = row.try_get(1).map_err(|e| bad(1, &e))?;
    out.bank_id = row.try_get(2).map_err(|e| bad(2, &e))?;
    for (idx, field) in [(3, &mut out.signal_type), (4, &mut out.value)] {
        let s: &str = row.try_get(idx).map_err(|e| bad(idx, &e))?;
        let s = unescape(s).map_err(|e| bad(idx, &e))?;
        field.clear();
        field.push_str(&s);
    }
    Ok(())
}

/// Columns read by [`change`].
pub(crate) const CHANGE_COLUMNS: &str =
    "seq, kind, bank_id, content_id, signal_id, signal_type, value, count";

/// One row of the change feed.
pub(crate) fn change(row: &Row) -> Result<FeedRow> {
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

pub(crate) fn api_key(row: &Row) -> Result<ApiKey> {
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

/// Encodes scopes as a JSON array, as SQLite's store does.
pub(crate) fn encode_scopes(scopes: &[String]) -> String {
    // Serialising a slice of strings has no failure path.
    serde_json::to_string(scopes).expect("a list of strings always serialises")
}
