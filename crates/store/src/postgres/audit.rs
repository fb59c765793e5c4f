//! [`AuditStore`] on PostgreSQL, as on SQLite. Appends run under the store's write lock, so
//! reading `max(seq)` and inserting after it cannot race another process.

use tokio_postgres::Row;

use super::row::col;
use super::PostgresStore;
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

const T: &str = "audit_log";

fn record_row(r: &Row) -> Result<AuditRecord> {
    Ok(AuditRecord {
        seq: seq_of(col(r, 0, T)?)?,
        entry: NewAuditEntry {
            at: col(r, 1, T)?,
            actor: col(r, 2, T)?,
            action: col(r, 3, T)?,
            object: col(r, 4, T)?,
            detail: col(r, 5, T)?,
        },
        leaf_hash: hash32(col(r, 6, T)?, "audit leaf hash")?,
    })
}

impl AuditStore for PostgresStore {
    fn audit_append(
        &self,
        entries: &[NewAuditEntry],
        leaf: &dyn Fn(u64, &NewAuditEntry) -> [u8; 32],
    ) -> Result<Vec<AuditRecord>> {
        self.write(|tx| {
            let r = tx.one("SELECT coalesce(max(seq) + 1, 0) FROM audit_log", &[])?;
            let first = seq_of(col(&r, 0, T)?)?;
            let mut out = Vec::with_capacity(entries.len());
            for (seq, e) in (first..).zip(entries) {
                let h = leaf(seq, e);
                tx.execute(
                    "INSERT INTO audit_log (seq, at, actor, action, object, detail, leaf_hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &to_i64(seq),
                        &e.at,
                        &e.actor,
                        &e.action,
                        &e.object,
                        &e.detail,
                        &h.to_vec(),
                    ],
                )?;
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
            let r = tx.one("SELECT coalesce(max(seq) + 1, 0) FROM audit_log", &[])?;
            seq_of(col(&r, 0, T)?)
        })
    }

    fn audit_entries(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|tx| {
            tx.query(
                "SELECT seq, at, actor, action, object, detail, leaf_hash FROM audit_log \
                 WHERE seq >= $1 ORDER BY seq LIMIT $2",
                &[&to_i64(from_seq), &limit],
            )?
            .iter()
            .map(record_row)
            .collect()
        })
    }

    fn audit_leaf_hashes(&self, from_seq: u64, limit: usize) -> Result<Vec<[u8; 32]>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|tx| {
            tx.query(
                "SELECT leaf_hash FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2",
                &[&to_i64(from_seq), &limit],
            )?
            .iter()
            .map(|r| hash32(col(r, 0, T)?, "audit leaf hash"))
            .collect()
        })
    }

    fn put_tree_head(&self, h: &StoredTreeHead) -> Result<()> {
        self.write(|tx| {
            let r = tx.one("SELECT coalesce(max(seq) + 1, 0) FROM audit_log", &[])?;
            let size: i64 = col(&r, 0, T)?;
            if to_i64(h.size) > size {
                return Err(Error::Conflict(format!(
                    "a tree head of size {} for a log of {size} entries",
                    h.size
                )));
            }
            tx.execute(
                "INSERT INTO audit_tree_heads (size, root, timestamp, signature) \
                 VALUES ($1, $2, $3, $4)",
                &[
                    &to_i64(h.size),
                    &h.root.to_vec(),
                    &h.timestamp,
                    &h.signature,
                ],
            )?;
            Ok(())
        })
    }

    fn tree_heads(&self, limit: usize) -> Result<Vec<StoredTreeHead>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|tx| {
            tx.query(
                "SELECT size, root, timestamp, signature FROM audit_tree_heads \
                 ORDER BY id DESC LIMIT $1",
                &[&limit],
            )?
            .iter()
            .map(|r| {
                const H: &str = "audit_tree_heads";
                Ok(StoredTreeHead {
                    size: seq_of(col(r, 0, H)?)?,
                    root: hash32(col(r, 1, H)?, "tree head root")?,
                    timestamp: col(r, 2, H)?,
                    signature: col(r, 3, H)?,
                })
            })
            .collect()
        })
    }
}
