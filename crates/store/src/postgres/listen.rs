//! Wake-ups from the change feed's notifications.
//!
//! One dedicated connection (outside the pool: a pooled connection would be recycled between
//! calls and lose its `LISTEN`) runs `LISTEN safeguard_changes` and records the highest seq
//! any notification carried. [`Listener::wait`] sleeps until a notification passes the
//! caller's position or the timeout ends, and then always reads the feed position itself: a
//! notification only wakes a follower early; the position read is what it trusts. So a lost
//! notification (the listening connection dropped, the server restarted) costs latency up to
//! the timeout, never a change. A dropped listening connection is reopened after
//! [`RECONNECT_DELAY`].

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::runtime::Handle;
use tokio_postgres::{AsyncMessage, NoTls};

use super::CHANGES_CHANNEL;
use crate::{Result, Seq};

/// How long the listener waits before reconnecting after its connection failed.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// What the listening task shares with the waiters.
#[derive(Default)]
struct Shared {
    /// The highest seq a notification has carried (0 before the first).
    notified: Mutex<Seq>,
    /// Signalled on every notification.
    changed: Condvar,
}

/// The listening connection (started on the first wait) and its latest news.
pub(crate) struct Listener {
    /// The store's runtime, where the listening task runs.
    handle: Handle,
    /// How to connect.
    config: tokio_postgres::Config,
    shared: Arc<Shared>,
    /// Whether the listening task was started.
    started: Mutex<bool>,
}

impl Listener {
    pub(crate) fn new(handle: Handle, config: tokio_postgres::Config) -> Listener {
        Listener {
            handle,
            config,
            shared: Arc::new(Shared::default()),
            started: Mutex::new(false),
        }
    }

    fn start(&self) {
        let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        if *started {
            return;
        }
        *started = true;
        let config = self.config.clone();
        let shared = Arc::downgrade(&self.shared);
        self.handle.spawn(async move {
            loop {
                if shared.upgrade().is_none() {
                    return;
                }
                if let Err(e) = listen_once(&config, &shared).await {
                    // The position reads still see every change; only wake-ups are late.
                    eprintln!("safeguard: change-feed listener: {e}; reconnecting");
                }
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        });
    }

    /// Waits until the feed is past `after` or `timeout` has passed; returns whether it is
    /// past `after` (read with `last_seq`, never taken from a notification alone).
    pub(crate) fn wait(
        &self,
        after: Seq,
        timeout: Duration,
        last_seq: impl Fn() -> Result<Seq>,
    ) -> Result<bool> {
        self.start();
        if last_seq()? > after {
            return Ok(true);
        }
        let deadline = Instant::now() + timeout;
        let mut notified = self
            .shared
            .notified
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while *notified <= after {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            notified = self
                .shared
                .changed
                .wait_timeout(notified, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(notified);
        Ok(last_seq()? > after)
    }
}

/// One listening connection's life: connect, LISTEN, record notifications until it fails.
async fn listen_once(
    config: &tokio_postgres::Config,
    shared: &std::sync::Weak<Shared>,
) -> std::result::Result<(), String> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // The connection must be polled for the LISTEN to complete and for notifications to
    // arrive: a task forwards its messages.
    let pump = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(m) = messages.next().await {
            match m {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANGES_CHANNEL}"))
        .await
        .map_err(|e| e.to_string())?;
    while let Some(payload) = rx.recv().await {
        let Some(shared) = shared.upgrade() else {
            pump.abort();
            return Ok(());
        };
        // Only this store notifies on the channel; a payload that is not a seq is ignored.
        let Ok(seq) = payload.parse::<Seq>() else {
            continue;
        };
        let mut notified = shared
            .notified
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if seq > *notified {
            *notified = seq;
        }
        drop(notified);
        shared.changed.notify_all();
    }
    Err("listening connection closed".into())
}
