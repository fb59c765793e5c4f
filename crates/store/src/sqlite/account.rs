//! [`AccountStore`] on SQLite.

use rusqlite::{params, OptionalExtension, Row};

use super::row::db_err;
use super::{now_ms, SqliteStore};
use crate::account::*;
use crate::{Error, Result};

fn account_row(r: &Row<'_>) -> rusqlite::Result<StoredAccount> {
    Ok(StoredAccount {
        id: r.get(0)?,
        age_band: r.get(1)?,
        assurance_method: r.get(2)?,
        assurance_confidence: r.get(3)?,
        updated_at: r.get(4)?,
    })
}

const ACCOUNT_COLUMNS: &str = "id, age_band, assurance_method, assurance_confidence, updated_at";

impl AccountStore for SqliteStore {
    fn put_account(&self, a: &NewAccount) -> Result<StoredAccount> {
        let now = now_ms();
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO accounts (id, age_band, assurance_method, assurance_confidence,
                                       updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET
                     age_band = excluded.age_band,
                     assurance_method = excluded.assurance_method,
                     assurance_confidence = excluded.assurance_confidence,
                     updated_at = excluded.updated_at",
            )
            .and_then(|mut st| {
                st.execute(params![
                    a.id,
                    a.age_band,
                    a.assurance_method,
                    a.assurance_confidence,
                    now
                ])
            })
            .map_err(db_err)?;
            Ok(StoredAccount {
                id: a.id.clone(),
                age_band: a.age_band.clone(),
                assurance_method: a.assurance_method.clone(),
                assurance_confidence: a.assurance_confidence,
                updated_at: now,
            })
        })
    }

    fn account(&self, id: &str) -> Result<Option<StoredAccount>> {
        self.read(|tx| {
            tx.prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"
            ))
            .and_then(|mut st| st.query_row([id], account_row).optional())
            .map_err(db_err)
        })
    }

    fn delete_account(&self, id: &str) -> Result<StoredAccount> {
        self.write(|tx| {
            let found = tx
                .query_row(
                    &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"),
                    [id],
                    account_row,
                )
                .optional()
                .map_err(db_err)?
                .ok_or_else(|| Error::NotFound(format!("account {id:?}")))?;
            tx.execute("DELETE FROM accounts WHERE id = ?1", [id])
                .map_err(db_err)?;
            tx.execute(
                "DELETE FROM account_relationships WHERE a = ?1 OR b = ?1",
                [id],
            )
            .map_err(db_err)?;
            Ok(found)
        })
    }

    fn put_edges(&self, edges: &[(String, String, String)], keep_blocked: bool) -> Result<()> {
        if let Some((x, _, _)) = edges.iter().find(|(x, y, _)| x == y) {
            return Err(Error::Conflict(format!(
                "account {x:?} cannot have a relationship with itself"
            )));
        }
        let now = now_ms();
        self.write(|tx| {
            for (x, y, relationship) in edges {
                let (a, b) = ordered_pair(x, y);
                if relationship == "none" {
                    tx.prepare_cached(
                        "DELETE FROM account_relationships WHERE a = ?1 AND b = ?2
                         AND (NOT ?3 OR relationship <> 'blocked')",
                    )
                    .and_then(|mut st| st.execute(params![a, b, keep_blocked]))
                    .map_err(db_err)?;
                } else {
                    tx.prepare_cached(
                        "INSERT INTO account_relationships (a, b, relationship, updated_at)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (a, b) DO UPDATE SET
                             relationship = excluded.relationship,
                             updated_at = excluded.updated_at
                         WHERE NOT ?5 OR account_relationships.relationship <> 'blocked'
                               OR excluded.relationship = 'blocked'",
                    )
                    .and_then(|mut st| st.execute(params![a, b, relationship, now, keep_blocked]))
                    .map_err(db_err)?;
                }
            }
            Ok(())
        })
    }

    fn relationship(&self, x: &str, y: &str) -> Result<Option<StoredRelationship>> {
        let (a, b) = ordered_pair(x, y);
        self.read(|tx| {
            tx.prepare_cached(
                "SELECT a, b, relationship, updated_at FROM account_relationships
                 WHERE a = ?1 AND b = ?2",
            )
            .and_then(|mut st| {
                st.query_row(params![a, b], |r| {
                    Ok(StoredRelationship {
                        a: r.get(0)?,
                        b: r.get(1)?,
                        relationship: r.get(2)?,
                        updated_at: r.get(3)?,
                    })
                })
                .optional()
            })
            .map_err(db_err)
        })
    }

    fn account_counts(&self) -> Result<(u64, u64)> {
        self.read(|tx| {
            let n: i64 = tx
                .query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))
                .map_err(db_err)?;
            let m: i64 = tx
                .query_row("SELECT count(*) FROM account_relationships", [], |r| {
                    r.get(0)
                })
                .map_err(db_err)?;
            Ok((n.max(0) as u64, m.max(0) as u64))
        })
    }
}
