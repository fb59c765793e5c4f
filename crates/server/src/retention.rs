//! The evidence retention sweeper: destroys evidence whose retention clock has run out
//! (`vault.retention`; a legal hold stops the clock) by deleting its data key, then its blob,
//! and records each deletion.

use std::time::Duration;

use crate::state::AppState;

/// How often the sweeper looks for expired evidence. Retention is counted in days, so an
/// hour's lateness is immaterial; each look is one indexed query.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// Most items destroyed per sweep step, so one sweep never holds the writer for long.
pub const SWEEP_BATCH: usize = 100;

/// Destroys everything expired at `now_ms`, then deletes blobs earlier sweeps left behind
/// ([`reclaim`]). Returns how many items were destroyed.
pub async fn sweep(state: &AppState, now_ms: i64) -> Result<usize, String> {
    let policy = state.0.config.vault.retention.policy();
    let after = i64::try_from(policy.after_report.as_millis()).unwrap_or(i64::MAX);
    let unreported = i64::try_from(policy.unreported.as_millis()).unwrap_or(i64::MAX);
    let mut done = 0;
    // Items kept this sweep (a hold or a report since they were found due): one found due
    // again means the store refused it for another reason, and the sweep stops rather than
    // spin on it.
    let mut kept = std::collections::HashSet::new();
    loop {
        let store = state.0.store.clone();
        let due = tokio::task::spawn_blocking(move || {
            store.expired_evidence(now_ms, after, unreported, SWEEP_BATCH)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        if due.is_empty() {
            // What is destroyed stays destroyed whatever becomes of the blobs: a failure
            // here is logged, not the sweep's.
            if let Err(e) = reclaim(state, now_ms).await {
                tracing::warn!(error = %e, "deleting evidence blobs left behind failed");
            }
            return Ok(done);
        }
        for ev in due {
            if kept.contains(&ev.object_id) {
                return Err(format!(
                    "evidence {} was refused destruction and is still due",
                    ev.object_id
                ));
            }
            // The data key goes first, in the store: from then on the blob is unreadable
            // ciphertext even if deleting it fails (then it is left behind, and logged).
            let store = state.0.store.clone();
            let id = ev.object_id.clone();
            let st = state.clone();
            let destroyed = tokio::task::spawn_blocking(move || {
                match store.destroy_evidence(&id, now_ms, after, unreported, "retention_expired") {
                    // Put on legal hold, or reported, since it was found due: kept.
                    Err(safeguard_store::Error::Conflict(_)) => return Ok(false),
                    other => other?,
                };
                st.audit_after(
                    "system:retention",
                    safeguard_engine::audit::Action::VaultDelete,
                    &id,
                    "retention expired",
                );
                Ok::<_, safeguard_store::Error>(true)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            if !destroyed {
                tracing::info!(object = %ev.object_id, case = ev.case_id, "evidence kept: its case was put on legal hold, reported or confirmed for a report since it was found due");
                kept.insert(ev.object_id.clone());
                continue;
            }
            // A blob that cannot be deleted now is found again by `reclaim`.
            let _ = delete_blob(state, &ev, now_ms).await;
            tracing::info!(object = %ev.object_id, case = ev.case_id, "evidence destroyed: retention expired");
            done += 1;
        }
    }
}

/// What became of one blob delete.
enum BlobOutcome {
    /// Deleted, and recorded.
    Deleted,
    /// This blob failed (logged); others may not.
    Failed,
    /// The vault cannot be opened: no blob can be deleted now.
    VaultUnavailable,
}

/// Deletes a destroyed record's blob and records that it is gone. On failure (logged) the
/// blob stays behind as undecryptable ciphertext, listed by `evidence_blobs_left` until a
/// later sweep deletes it.
async fn delete_blob(
    state: &AppState,
    ev: &safeguard_store::action::Evidence,
    now_ms: i64,
) -> BlobOutcome {
    let vault = match state.vault().await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e.message, object = %ev.object_id, "evidence blob not deleted (vault unavailable); its key is destroyed, a later sweep tries again");
            return BlobOutcome::VaultUnavailable;
        }
    };
    let key = match safeguard_vault::BlobKey::parse(&ev.blob_key) {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %e, object = %ev.object_id, "evidence record with a bad blob key; its blob cannot be deleted");
            return BlobOutcome::Failed;
        }
    };
    if let Err(e) = vault.blobs().delete(&key).await {
        tracing::warn!(error = %e, object = %ev.object_id, "evidence blob not deleted; its key is destroyed, a later sweep tries again");
        return BlobOutcome::Failed;
    }
    let store = state.0.store.clone();
    let id = ev.object_id.clone();
    match tokio::task::spawn_blocking(move || store.mark_blob_deleted(&id, now_ms)).await {
        Ok(Ok(())) => BlobOutcome::Deleted,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, object = %ev.object_id, "evidence blob deleted but not recorded; a later sweep deletes it again");
            BlobOutcome::Failed
        }
        Err(e) => {
            tracing::warn!(error = %e, object = %ev.object_id, "evidence blob deletion not recorded");
            BlobOutcome::Failed
        }
    }
}

/// Consecutive blob failures after which `reclaim` stops until the next sweep: the blob
/// store itself is then likely failing.
const RECLAIM_FAILURES_IN_A_ROW: usize = 3;

/// Most blobs `reclaim` tries in one sweep (a backlog, such as the records destroyed before
/// blob deletions were recorded, drains at up to this rate an hour).
const RECLAIM_PER_SWEEP: usize = 100 * SWEEP_BATCH;

/// Deletes the blobs of destroyed records that a sweep left behind (their delete failed, or
/// the process stopped before it): up to [`RECLAIM_PER_SWEEP`] of the oldest destructions,
/// tried from a random point of that list round to it. A blob that fails is passed over, and
/// the random start keeps a few that never can (an object under a retention lock, a damaged
/// record) from holding back the rest sweep after sweep; [`RECLAIM_FAILURES_IN_A_ROW`]
/// failures in a row, or a vault that cannot be opened, end it until the next sweep (the
/// blob store is then likely failing as a whole). Returns how many were deleted.
pub async fn reclaim(state: &AppState, now_ms: i64) -> Result<usize, String> {
    let store = state.0.store.clone();
    let left = tokio::task::spawn_blocking(move || store.evidence_blobs_left(RECLAIM_PER_SWEEP))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if left.is_empty() {
        return Ok(0);
    }
    let start = rand::random_range(0..left.len());
    let (mut done, mut in_a_row) = (0, 0);
    for ev in left[start..].iter().chain(&left[..start]) {
        match delete_blob(state, ev, now_ms).await {
            BlobOutcome::Deleted => {
                tracing::info!(object = %ev.object_id, "evidence blob left by an earlier sweep deleted");
                done += 1;
                in_a_row = 0;
            }
            BlobOutcome::Failed => {
                in_a_row += 1;
                if in_a_row >= RECLAIM_FAILURES_IN_A_ROW {
                    break;
                }
            }
            BlobOutcome::VaultUnavailable => break,
        }
    }
    Ok(done)
}

/// Runs [`sweep`] every [`SWEEP_INTERVAL`] in the background.
pub fn start(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = sweep(&state, safeguard_engine::now_ms()).await {
                tracing::warn!(error = %e, "evidence retention sweep failed");
            }
        }
    });
}
