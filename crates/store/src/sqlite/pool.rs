//! Reader connections.
//!
//! In WAL mode a reader sees the last commit as of its transaction's first read and never
//! waits for the writer, so reads get their own connections. The pool keeps up to `keep` idle
//! connections; when all are out it opens another instead of waiting. Waiting could deadlock:
//! a `scan_signals` callback that reads the store holds one reader while asking for a second.
//! The number in use at once is bounded by the caller's blocking thread pool instead.

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, PoisonError};

use rusqlite::Connection;

use crate::Result;

/// Idle reader connections and how to open more.
pub(crate) struct ReaderPool {
    /// Idle connections; never more than `keep`.
    idle: Mutex<Vec<Connection>>,
    /// How many idle connections to keep open between calls.
    keep: usize,
    /// Opens a configured reader connection.
    open: Box<dyn Fn() -> Result<Connection> + Send + Sync>,
}

impl ReaderPool {
    /// A pool that opens `keep` connections now, so a broken path fails at startup.
    pub(crate) fn new(
        keep: usize,
        open: Box<dyn Fn() -> Result<Connection> + Send + Sync>,
    ) -> Result<ReaderPool> {
        let idle = (0..keep).map(|_| open()).collect::<Result<Vec<_>>>()?;
        Ok(ReaderPool {
            idle: Mutex::new(idle),
            keep,
            open,
        })
    }

    /// A connection for one read; it returns to the pool when dropped.
    pub(crate) fn get(&self) -> Result<PooledReader<'_>> {
        // A poisoned lock only means a thread panicked while pushing or popping a Vec; the Vec
        // itself is still valid.
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => (self.open)()?,
        };
        Ok(PooledReader {
            pool: self,
            conn: Some(conn),
        })
    }

    /// How many idle connections are kept.
    pub(crate) fn keep(&self) -> usize {
        self.keep
    }
}

/// A reader connection on loan from a [`ReaderPool`].
pub(crate) struct PooledReader<'p> {
    pool: &'p ReaderPool,
    /// `Some` until dropped.
    conn: Option<Connection>,
}

impl Deref for PooledReader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // `conn` is only taken in `drop`.
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl DerefMut for PooledReader<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        // `conn` is only taken in `drop`.
        self.conn.as_mut().expect("connection present until drop")
    }
}

impl Drop for PooledReader<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        // A connection left inside a transaction (a panic mid-read) would pin an old snapshot
        // and stop checkpoints: close it rather than reuse it.
        if !conn.is_autocommit() {
            return;
        }
        let mut idle = self
            .pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.pool.keep {
            idle.push(conn);
        }
    }
}
