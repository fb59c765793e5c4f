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
    loop {
        let store = state.0.store.clone();
        let due = tokio::task::spawn_blocking(move || {
            store.expired_evidence(now_ms, after, unreported, SWEEP_BATCH)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        if due.is_empty() {
            reclaim(state, now_ms).await?;
            return Ok(done);
        }
        for ev in due {
            // The data key goes first, in the store: from then on the blob is unreadable
            // ciphertext even if deleting it fails (then it is left behind, and logged).
            let store = state.0.store.clone();
            let id = ev.object_id.clone();
            let st = state.clone();
            tokio::task::spawn_blocking(move || {
                store.destroy_evidence(&id, now_ms, "retention_expired")?;
                st.audit_after(
                    "system:retention",
                    safeguard_engine::audit::Action::VaultDelete,
                    &id,
                    "retention expired",
                );
                Ok::<_, safeguard_store::Error>(())
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            // A blob that cannot be deleted now is found again by `reclaim`.
            delete_blob(state, &ev, now_ms).await;
            tracing::info!(object = %ev.object_id, case = ev.case_id, "evidence destroyed: retention expired");
            done += 1;
        }
    }
}

/// Deletes a destroyed record's blob and records that it is gone. `false` (logged) when the
/// vault or the delete failed: the blob stays behind as undecryptable ciphertext, listed by
/// `evidence_blobs_left` until a later sweep deletes it.
async fn delete_blob(
    state: &AppState,
    ev: &safeguard_store::action::Evidence,
    now_ms: i64,
) -> bool {
    let vault = match state.vault().await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e.message, object = %ev.object_id, "evidence blob not deleted (vault unavailable); its key is destroyed, a later sweep tries again");
            return false;
        }
    };
    let key = match safeguard_vault::BlobKey::parse(&ev.blob_key) {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, object = %ev.object_id, "bad blob key");
            return false;
        }
    };
    if let Err(e) = vault.blobs().delete(&key).await {
        tracing::warn!(error = %e, object = %ev.object_id, "evidence blob not deleted; its key is destroyed, a later sweep tries again");
        return false;
    }
    let store = state.0.store.clone();
    let id = ev.object_id.clone();
    match tokio::task::spawn_blocking(move || store.mark_blob_deleted(&id, now_ms)).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, object = %ev.object_id, "evidence blob deleted but not recorded; a later sweep deletes it again");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, object = %ev.object_id, "evidence blob deletion not recorded");
            false
        }
    }
}

/// Deletes the blobs of destroyed records that a sweep left behind (their delete failed, or
/// the process stopped before it), at most [`SWEEP_BATCH`] a sweep. Stops at the first
/// failure: the blob store is likely still failing, and the next sweep comes back. Returns
/// how many were deleted.
pub async fn reclaim(state: &AppState, now_ms: i64) -> Result<usize, String> {
    let store = state.0.store.clone();
    let left = tokio::task::spawn_blocking(move || store.evidence_blobs_left(SWEEP_BATCH))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let mut done = 0;
    for ev in left {
        if !delete_blob(state, &ev, now_ms).await {
            break;
        }
        tracing::info!(object = %ev.object_id, "evidence blob left by an earlier sweep deleted");
        done += 1;
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
