//! Following the change feed across processes, and pruning it.
//!
//! Every serving process records where it stands in the feed ([`Follower`]: the position it
//! has applied, and the position of the index snapshot in its data directory) every
//! `feed.heartbeat_secs`. The process that runs the schedules (curator or `all`) prunes every
//! `feed.prune_interval_secs`: it deletes what every live follower has passed, less the
//! window a snapshot's fingerprint reads ([`safeguard_engine::SNAPSHOT_FEED_WINDOW`]), and
//! only changes older than `feed.keep_secs`. A follower silent for `feed.follower_ttl_secs`
//! stops holding the feed back; if the feed is then pruned past it, its snapshot is refused
//! at its next start (it rebuilds from the store), and a running process that finds itself
//! behind the floor stops (see [`Fatal`]) rather than serve indexes that can no longer
//! follow the store.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use safeguard_engine::{Engine, SNAPSHOT_FEED_WINDOW};
use safeguard_store::{Follower, Pruned, Seq};

use crate::state::AppState;

/// Feed rows deleted per transaction while pruning, so other writers wait at most one batch.
pub const PRUNE_BATCH: u64 = 10_000;

/// The position of the index snapshot in this process's data directory, -1 when it has none:
/// what it would restart from.
#[derive(Debug)]
pub struct SnapshotSeq(AtomicI64);

impl Default for SnapshotSeq {
    fn default() -> SnapshotSeq {
        SnapshotSeq(AtomicI64::new(-1))
    }
}

impl SnapshotSeq {
    /// Records a snapshot written (or loaded) at `seq`.
    pub fn set(&self, seq: Seq) {
        self.0.store(seq, Ordering::Relaxed);
    }

    /// The snapshot's position, if there is one.
    pub fn get(&self) -> Option<Seq> {
        let s = self.0.load(Ordering::Relaxed);
        (s >= 0).then_some(s)
    }
}

/// A reason this process must stop, raised by a background task (the feed was pruned past
/// it); the command that runs the server waits on it beside its shutdown signals.
#[derive(Debug, Default)]
pub struct Fatal {
    reason: OnceLock<String>,
    notify: tokio::sync::Notify,
}

impl Fatal {
    /// Asks the server to stop; the first reason is kept.
    pub fn raise(&self, reason: String) {
        let _ = self.reason.set(reason);
        self.notify.notify_one();
    }

    /// Why the server must stop, once raised.
    pub fn reason(&self) -> Option<&str> {
        self.reason.get().map(String::as_str)
    }

    /// Completes once [`Fatal::raise`] was called (before or after).
    pub async fn raised(&self) {
        if self.reason.get().is_some() {
            return;
        }
        self.notify.notified().await;
    }
}

/// The file in the data directory that holds this directory's follower id.
pub const FOLLOWER_ID_FILE: &str = "follower-id";

/// This process's name in the follower records: its host and an id kept in its data
/// directory, the place its snapshot lives (one serving process per data directory). A
/// restart takes over its own record; two containers with the same host name and the same
/// data path inside them still differ. Without a writable data directory, the directory's
/// path stands in for the id.
pub fn follower_name(state: &AppState) -> String {
    let host = host_name();
    let dir = &state.0.config.data_dir;
    let id = follower_id(dir).unwrap_or_else(|| {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        dir.display().to_string()
    });
    format!("{host}:{id}")
}

/// This machine's host name (`localhost` when it cannot be read): the first part of the
/// names processes give themselves in shared records (feed followers, filing leases).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The data directory's follower id, created on first use (128 random bits, hex).
fn follower_id(dir: &std::path::Path) -> Option<String> {
    let path = dir.join(FOLLOWER_ID_FILE);
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() {
            return Some(id.to_string());
        }
    }
    let id: String = (0..16)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    // Written whole or not at all: a temporary file renamed into place.
    let tmp = dir.join(format!("{FOLLOWER_ID_FILE}.tmp"));
    std::fs::write(&tmp, &id).ok()?;
    std::fs::rename(&tmp, &path).ok()?;
    Some(id)
}

/// Records, before the indexes load, the position a loading process will read from: the
/// feed's end now (a rebuild scans from there), and the position of the snapshot it is about
/// to load (it replays from there): read from the snapshot file's header when there is one,
/// else the one its record already names (a row forgotten after a long silence names none).
/// Blocking.
pub fn register_loading(
    state: &AppState,
    snapshot: Option<&std::path::Path>,
) -> Result<Follower, String> {
    let store = &state.0.store;
    let name = follower_name(state);
    let position = store.last_seq().map_err(|e| e.to_string())?;
    let from_file = snapshot
        .and_then(|p| std::fs::File::open(p).ok())
        .and_then(|f| {
            safeguard_engine::Engine::snapshot_position(&mut std::io::BufReader::new(f)).ok()
        });
    let snapshot = match from_file {
        Some(seq) => Some(seq),
        None => store
            .followers()
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|f| f.name == name)
            .and_then(|f| f.snapshot),
    };
    let me = Follower {
        name,
        position,
        snapshot,
        seen_at: safeguard_engine::now_ms(),
    };
    store.record_follower(&me).map_err(|e| e.to_string())?;
    Ok(me)
}

/// Records where this process stands (blocking).
pub fn report(state: &AppState, engine: &Engine) -> Result<Follower, String> {
    let me = Follower {
        name: follower_name(state),
        position: engine.applied_seq(),
        snapshot: state.0.snapshot_seq.get(),
        seen_at: safeguard_engine::now_ms(),
    };
    state
        .0
        .store
        .record_follower(&me)
        .map_err(|e| e.to_string())?;
    Ok(me)
}

/// The position below which the feed may be pruned: the lowest position a follower seen
/// within `ttl_ms` of `now` needs, less the snapshot fingerprint window. `None` when no
/// follower is live (then nothing is pruned).
pub fn prune_below(followers: &[Follower], now: i64, ttl_ms: i64) -> Option<Seq> {
    followers
        .iter()
        .filter(|f| f.seen_at >= now.saturating_sub(ttl_ms))
        .map(Follower::needs_from)
        .min()
        .map(|lowest| lowest - SNAPSHOT_FEED_WINDOW)
}

/// One pruning pass at `now` (blocking): reports this process first (it is a follower too),
/// then prunes what no live follower needs and `feed.keep_secs` does not keep.
pub fn prune_once(state: &AppState, engine: &Engine, now: i64) -> Result<Pruned, String> {
    report(state, engine)?;
    let cfg = &state.0.config.feed;
    let store = &state.0.store;
    let followers = store.followers().map_err(|e| e.to_string())?;
    let ttl_ms = i64::try_from(cfg.follower_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let keep_ms = i64::try_from(cfg.keep_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    // Those silent past the TTL hold nothing back any more (see `prune_below`); their rows go.
    let forgotten = store
        .forget_followers(now.saturating_sub(ttl_ms))
        .map_err(|e| e.to_string())?;
    if forgotten > 0 {
        tracing::info!(forgotten, "feed followers silent past the TTL forgotten");
    }
    let Some(below) = prune_below(&followers, now, ttl_ms) else {
        let floor = store.feed_floor().map_err(|e| e.to_string())?;
        return Ok(Pruned { deleted: 0, floor });
    };
    store
        .prune_feed(below, now.saturating_sub(keep_ms), PRUNE_BATCH)
        .map_err(|e| e.to_string())
}

/// Rewrites the snapshot in `dir` when the engine has applied `feed.snapshot_every_changes`
/// since the last one (blocking). Returns the new snapshot's position, if one was written.
pub fn refresh_snapshot(
    state: &AppState,
    engine: &Engine,
    dir: &std::path::Path,
) -> Result<Option<Seq>, String> {
    let every = i64::try_from(state.0.config.feed.snapshot_every_changes).unwrap_or(i64::MAX);
    let behind = engine.applied_seq() - state.0.snapshot_seq.get().unwrap_or(0);
    if behind < every {
        return Ok(None);
    }
    let seq = crate::save_snapshot(engine, dir)?;
    state.0.snapshot_seq.set(seq);
    Ok(Some(seq))
}

/// Starts the heartbeat (every process: it also refreshes the snapshot in `snapshot_dir`,
/// see [`refresh_snapshot`]) and, on the process that runs the schedules with `feed.prune`
/// on, the pruner. Both end when the engine is dropped.
pub fn start(state: &AppState, engine: &Arc<Engine>, snapshot_dir: Option<std::path::PathBuf>) {
    let cfg = state.0.config.feed.clone();
    // Weak, both: the state owns the engine, and the webhook dispatcher that stops when the
    // state is dropped.
    let weak = Arc::downgrade(engine);
    let st = Arc::downgrade(&state.0);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(cfg.heartbeat_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut first = true;
        loop {
            tick.tick().await;
            let (Some(engine), Some(s)) = (weak.upgrade(), st.upgrade()) else {
                return;
            };
            let s = AppState(s);
            // At start the loader writes the snapshot after a rebuild itself.
            let dir = snapshot_dir.clone().filter(|_| !std::mem::take(&mut first));
            let beat = move || {
                if let Some(dir) = &dir {
                    match refresh_snapshot(&s, &engine, dir) {
                        Ok(Some(seq)) => tracing::info!(seq, "index snapshot refreshed"),
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot refresh the index snapshot"),
                    }
                }
                report(&s, &engine)
            };
            match tokio::task::spawn_blocking(beat).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot record this process's feed position")
                }
                Err(e) => tracing::error!(error = %e, "the feed heartbeat task failed"),
            }
        }
    });
    if !(cfg.prune && state.0.config.role.runs_schedules()) {
        return;
    }
    let weak = Arc::downgrade(engine);
    let st = Arc::downgrade(&state.0);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(cfg.prune_interval_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let (Some(engine), Some(s)) = (weak.upgrade(), st.upgrade()) else {
                return;
            };
            let s = AppState(s);
            let now = safeguard_engine::now_ms();
            match tokio::task::spawn_blocking(move || prune_once(&s, &engine, now)).await {
                Ok(Ok(p)) if p.deleted > 0 => {
                    tracing::info!(deleted = p.deleted, floor = p.floor, "change feed pruned")
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "pruning the change feed failed"),
                Err(e) => tracing::error!(error = %e, "the feed pruning task failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, position: Seq, snapshot: Option<Seq>, seen_at: i64) -> Follower {
        Follower {
            name: name.into(),
            position,
            snapshot,
            seen_at,
        }
    }

    #[test]
    fn the_slowest_live_follower_and_its_snapshot_set_the_cut() {
        let now = 1_000_000;
        let ttl = 60_000;
        let w = SNAPSHOT_FEED_WINDOW;
        assert_eq!(prune_below(&[], now, ttl), None);
        let live = [
            f("a", 50_000, Some(49_000), now - 1_000),
            f("b", 40_000, None, now - ttl),
            // Silent for longer than the time-to-live: no longer holds the feed back.
            f("c", 10, Some(5), now - ttl - 1),
        ];
        assert_eq!(prune_below(&live, now, ttl), Some(40_000 - w));
        let snap_lower = [f("a", 50_000, Some(30_000), now), f("b", 40_000, None, now)];
        assert_eq!(prune_below(&snap_lower, now, ttl), Some(30_000 - w));
        assert_eq!(prune_below(&live[2..], now, ttl), None);
    }
}
