//! [`AccountStore`] on PostgreSQL, as on SQLite: one row per account, one per unordered pair.

use tokio_postgres::Row;

use super::row::{col, count};
use super::{now_ms, PostgresStore};
use crate::account::*;
use crate::{Error, Result};

const ACCOUNT_COLUMNS: &str = "id, age_band, assurance_method, assurance_confidence, updated_at";

fn account_row(r: &Row) -> Result<StoredAccount> {
    Ok(StoredAccount {
        id: col(r, 0, "accounts")?,
        age_band: col(r, 1, "accounts")?,
        assurance_method: col(r, 2, "accounts")?,
        assurance_confidence: col(r, 3, "accounts")?,
        updated_at: col(r, 4, "accounts")?,
    })
}

impl AccountStore for PostgresStore {
    fn put_account(&self, a: &NewAccount) -> Result<StoredAccount> {
        let now = now_ms();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO accounts (id, age_band, assurance_method, assurance_confidence, \
                                       updated_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO UPDATE SET \
                     age_band = excluded.age_band, \
                     assurance_method = excluded.assurance_method, \
                     assurance_confidence = excluded.assurance_confidence, \
                     updated_at = excluded.updated_at",
                &[
                    &a.id,
                    &a.age_band,
                    &a.assurance_method,
                    &a.assurance_confidence,
                    &now,
                ],
            )?;
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
            tx.opt(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"),
                &[&id],
            )?
            .as_ref()
            .map(account_row)
            .transpose()
        })
    }

    fn delete_account(&self, id: &str) -> Result<StoredAccount> {
        self.write(|tx| {
            let found = tx
                .opt(
                    &format!("DELETE FROM accounts WHERE id = $1 RETURNING {ACCOUNT_COLUMNS}"),
                    &[&id],
                )?
                .ok_or_else(|| Error::NotFound(format!("account {id:?}")))?;
            tx.execute(
                "DELETE FROM account_relationships WHERE a = $1 OR b = $1",
                &[&id],
            )?;
            account_row(&found)
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
                    tx.execute(
                        "DELETE FROM account_relationships WHERE a = $1 AND b = $2 \
                         AND (NOT $3 OR relationship <> 'blocked')",
                        &[&a, &b, &keep_blocked],
                    )?;
                } else {
                    tx.execute(
                        "INSERT INTO account_relationships (a, b, relationship, updated_at) \
                         VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (a, b) DO UPDATE SET \
                             relationship = excluded.relationship, \
                             updated_at = excluded.updated_at \
                         WHERE NOT $5 OR account_relationships.relationship <> 'blocked' \
                               OR excluded.relationship = 'blocked'",
                        &[&a, &b, relationship, &now, &keep_blocked],
                    )?;
                }
            }
            Ok(())
        })
    }

    fn relationship(&self, x: &str, y: &str) -> Result<Option<StoredRelationship>> {
        let (a, b) = ordered_pair(x, y);
        self.read(|tx| {
            tx.opt(
                "SELECT a, b, relationship, updated_at FROM account_relationships \
                 WHERE a = $1 AND b = $2",
                &[&a, &b],
            )?
            .map(|r| {
                Ok(StoredRelationship {
                    a: col(&r, 0, "account_relationships")?,
                    b: col(&r, 1, "account_relationships")?,
                    relationship: col(&r, 2, "account_relationships")?,
                    updated_at: col(&r, 3, "account_relationships")?,
                })
            })
            .transpose()
        })
    }

    fn account_counts(&self) -> Result<(u64, u64)> {
        self.read(|tx| {
            let r = tx.one(
                "SELECT (SELECT count(*) FROM accounts), \
                        (SELECT count(*) FROM account_relationships)",
                &[],
            )?;
            Ok((
                count(&r, 0, "accounts")?,
                count(&r, 1, "account_relationships")?,
            ))
        })
    }
}
