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

/// Destroys everything expired at `now_ms`. Returns how many items were destroyed.
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
            if let Ok(vault) = state.vault().await {
                let key = safeguard_vault::BlobKey::parse(&ev.blob_key);
                match key {
                    Ok(k) => {
                        if let Err(e) = vault.blobs().delete(&k).await {
                            tracing::warn!(error = %e, object = %ev.object_id, "evidence blob not deleted; its key is destroyed");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, object = %ev.object_id, "bad blob key"),
                }
            }
            tracing::info!(object = %ev.object_id, case = ev.case_id, "evidence destroyed: retention expired");
            done += 1;
        }
    }
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
