//! [`AuditStore`] on SQLite.

use rusqlite::{params, Row};

use super::row::db_err;
use super::SqliteStore;
use crate::audit::*;
use crate::{Error, Result};

fn hash32(v: Vec<u8>, what: &str) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(v.as_slice())
        .map_err(|_| Error::Corrupt(format!("{what} is {} bytes, not 32", v.len())))
}

fn seq_of(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Corrupt(format!("audit seq {v} is negative")))
}

fn to_i64(v: u64) -> i64 {
    // A log of 2^63 entries is not reachable: clamp rather than wrap.
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn record_row(r: &Row<'_>) -> Result<AuditRecord> {
    let get = |i: usize| -> Result<String> { r.get(i).map_err(db_err) };
    Ok(AuditRecord {
        seq: seq_of(r.get(0).map_err(db_err)?)?,
        entry: NewAuditEntry {
            at: r.get(1).map_err(db_err)?,
            actor: get(2)?,
            action: get(3)?,
            object: get(4)?,
            detail: get(5)?,
        },
        leaf_hash: hash32(r.get(6).map_err(db_err)?, "audit leaf hash")?,
    })
}

impl AuditStore for SqliteStore {
    fn audit_append(
        &self,
        entries: &[NewAuditEntry],
        leaf: &dyn Fn(u64, &NewAuditEntry) -> [u8; 32],
    ) -> Result<Vec<AuditRecord>> {
        self.write(|tx| {
            let next: i64 = tx
                .query_row("SELECT coalesce(max(seq) + 1, 0) FROM audit_log", [], |r| {
                    r.get(0)
                })
                .map_err(db_err)?;
            let first = seq_of(next)?;
            let mut out = Vec::with_capacity(entries.len());
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO audit_log (seq, at, actor, action, object, detail, leaf_hash) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(db_err)?;
            for (seq, e) in (first..).zip(entries) {
                let h = leaf(seq, e);
                stmt.execute(params![
                    to_i64(seq),
                    e.at,
                    e.actor,
                    e.action,
                    e.object,
                    e.detail,
                    &h[..]
                ])
                .map_err(db_err)?;
                out.push(AuditRecord {
                    seq,
                    entry: e.clone(),
                    leaf_hash: h,
                });
            }
            Ok(out)
        })
    }

    fn audit_size(&self) -> Result<u64> {
        self.read(|tx| {
            let n: i64 = tx
                .query_row("SELECT coalesce(max(seq) + 1, 0) FROM audit_log", [], |r| {
                    r.get(0)
                })
                .map_err(db_err)?;
            seq_of(n)
        })
    }

    fn audit_entries(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT seq, at, actor, action, object, detail, leaf_hash FROM audit_log \
                     WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(db_err)?;
            let mut rows = stmt
                .query(params![to_i64(from_seq), limit])
                .map_err(db_err)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db_err)? {
                out.push(record_row(r)?);
            }
            Ok(out)
        })
    }

    fn audit_leaf_hashes(&self, from_seq: u64, limit: usize) -> Result<Vec<[u8; 32]>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT leaf_hash FROM audit_log WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(db_err)?;
            let mut rows = stmt
                .query(params![to_i64(from_seq), limit])
                .map_err(db_err)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db_err)? {
                out.push(hash32(r.get(0).map_err(db_err)?, "audit leaf hash")?);
            }
            Ok(out)
        })
    }

    fn put_tree_head(&self, h: &StoredTreeHead) -> Result<()> {
        self.write(|tx| {
            let size: i64 = tx
                .query_row("SELECT coalesce(max(seq) + 1, 0) FROM audit_log", [], |r| {
                    r.get(0)
                })
                .map_err(db_err)?;
            if to_i64(h.size) > size {
                return Err(Error::Conflict(format!(
                    "a tree head of size {} for a log of {size} entries",
                    h.size
                )));
            }
            tx.prepare_cached(
                "INSERT INTO audit_tree_heads (size, root, timestamp, signature) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    to_i64(h.size),
                    &h.root[..],
                    h.timestamp,
                    h.signature
                ])
            })
            .map_err(db_err)?;
            Ok(())
        })
    }

    fn tree_heads(&self, limit: usize) -> Result<Vec<StoredTreeHead>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT size, root, timestamp, signature FROM audit_tree_heads \
                     ORDER BY id DESC LIMIT ?1",
                )
                .map_err(db_err)?;
            let mut rows = stmt.query(params![limit]).map_err(db_err)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db_err)? {
                out.push(StoredTreeHead {
                    size: seq_of(r.get(0).map_err(db_err)?)?,
                    root: hash32(r.get(1).map_err(db_err)?, "tree head root")?,
                    timestamp: r.get(2).map_err(db_err)?,
                    signature: r.get(3).map_err(db_err)?,
                });
            }
            Ok(out)
        })
    }
}
