//! The audit log over HTTP (scope `audit`, or `admin`): signed tree heads, entries,
//! inclusion and consistency proofs, all in hex. A verifier needs only the public key in
//! the head's answer; `safeguard audit verify` checks a whole export offline.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use safeguard_audit::SignedTreeHead;

use crate::error::{ApiError, ApiResult};
use crate::state::{blocking, AppState};

/// How often the curator signs a new tree head when the log has grown. A head commits the
/// log to its entries; between heads, entries are protected only by the recorded leaf
/// hashes, which a database writer could recompute. A minute bounds that window.
pub const HEAD_INTERVAL: Duration = Duration::from_secs(60);
/// Most entries in one page of `GET /v1/audit/entries`.
pub const MAX_ENTRIES_PAGE: usize = 1000;

/// Routes needing the `audit` scope.
pub fn audit_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/audit/head", get(head_get).post(head_sign))
        .route("/v1/audit/entries", get(entries))
        .route("/v1/audit/proof/inclusion", get(inclusion))
        .route("/v1/audit/proof/consistency", get(consistency))
}

/// Signs a head every [`HEAD_INTERVAL`] when the log has grown (curator or `all` only).
pub fn start(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        // The first head one interval after start, not at once: opening the log loads (or,
        // on a new instance, creates) the master key, which nothing should do before it is
        // needed.
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + HEAD_INTERVAL, HEAD_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let st = state.clone();
            let out = tokio::task::spawn_blocking(move || {
                // An empty log needs no head, and no key.
                if st.0.store.audit_size()? == 0 {
                    return Ok(None);
                }
                st.auditor()?
                    .sign_head_if_grown()
                    .map_err(crate::error::ApiError::from)
            })
            .await;
            match out {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e.message, "audit head not signed"),
                Err(e) => tracing::warn!(error = %e, "audit head task failed"),
            }
        }
    });
}

fn head_json(h: &SignedTreeHead, key: &safeguard_audit::VerifyingKey) -> Value {
    json!({
        "size": h.head.size,
        "root": hex::encode(h.head.root),
        "timestamp_ms": h.head.timestamp_ms,
        "signature": hex::encode(h.signature),
        "public_key": key.to_hex(),
        "algorithm": "ed25519",
        "hashing": "rfc6962-sha256",
    })
}

/// `GET /v1/audit/head`: the newest signed head, signing one first if the log has grown
/// since (so the answer always covers every entry).
async fn head_get(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let st = state.clone();
    blocking(move || {
        let a = st.auditor()?;
        let h = match a.sign_head_if_grown()? {
            Some(h) => h,
            None => match a.latest_head()? {
                Some(h) => h,
                None => a.sign_head()?,
            },
        };
        Ok(Json(head_json(&h, &a.verifying_key())))
    })
    .await
}

/// `POST /v1/audit/head`: signs a head now, whatever the size.
async fn head_sign(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let st = state.clone();
    blocking(move || {
        let a = st.auditor()?;
        let h = a.sign_head()?;
        Ok(Json(head_json(&h, &a.verifying_key())))
    })
    .await
}

fn query<T>(
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
    what: &str,
) -> ApiResult<T> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::bad_request("invalid_request", format!("{what} ({e})")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntriesQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

/// `GET /v1/audit/entries?from&limit`: entries from `from` (default 0), at most `limit`
/// (default and most [`MAX_ENTRIES_PAGE`]), with their recorded leaf hashes.
async fn entries(
    State(state): State<AppState>,
    q: Result<Query<EntriesQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let q = query(q, "from and limit are non-negative integers")?;
    let limit = q.limit.unwrap_or(MAX_ENTRIES_PAGE);
    if limit == 0 || limit > MAX_ENTRIES_PAGE {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("limit must be 1 to {MAX_ENTRIES_PAGE}"),
        ));
    }
    let from = q.from.unwrap_or(0);
    let st = state.clone();
    blocking(move || {
        let a = st.auditor()?;
        let rows = a.entries(from, limit)?;
        let next = rows.last().map(|r| r.seq + 1);
        Ok(Json(json!({
            "entries": rows.iter().map(|r| json!({
                "seq": r.seq,
                "at_ms": r.entry.at,
                "actor": r.entry.actor,
                "action": r.entry.action,
                "object": r.entry.object,
                "detail": r.entry.detail,
                "leaf_hash": hex::encode(r.leaf_hash),
            })).collect::<Vec<_>>(),
            "next_from": if rows.len() == limit { next } else { None },
        })))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InclusionQuery {
    index: u64,
    size: u64,
}

/// `GET /v1/audit/proof/inclusion?index&size`: the audit path of entry `index` in the tree of
/// `size` entries (RFC 6962 §2.1.1), with the leaf hash and the root it leads to.
async fn inclusion(
    State(state): State<AppState>,
    q: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let q = query(q, "give index and size, non-negative integers")?;
    let st = state.clone();
    blocking(move || {
        let a = st.auditor()?;
        let (leaf, path) = a.inclusion_proof(q.index, q.size)?;
        let root = a.root(q.size)?;
        Ok(Json(json!({
            "index": q.index,
            "size": q.size,
            "leaf_hash": hex::encode(leaf),
            "audit_path": path.iter().map(hex::encode).collect::<Vec<_>>(),
            "root": hex::encode(root),
        })))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    first: u64,
    second: u64,
}

/// `GET /v1/audit/proof/consistency?first&second`: the proof that the tree of `second`
/// entries extends the tree of `first` (RFC 6962 §2.1.2), with both roots.
async fn consistency(
    State(state): State<AppState>,
    q: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let q = query(q, "give first and second, non-negative integers")?;
    let st = state.clone();
    blocking(move || {
        let a = st.auditor()?;
        let proof = a.consistency_proof(q.first, q.second)?;
        Ok(Json(json!({
            "first": q.first,
            "second": q.second,
            "first_root": hex::encode(a.root(q.first)?),
            "second_root": hex::encode(a.root(q.second)?),
            "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
        })))
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use safeguard_engine::audit::Action;
    use safeguard_store::{SqliteStore, Store};

    use super::*;
    use crate::config::Config;

    /// The newest signed head's size; `None` if none is stored.
    fn latest_size(state: &AppState) -> Option<u64> {
        state
            .auditor()
            .unwrap()
            .latest_head()
            .unwrap()
            .map(|h| h.head.size)
    }

    /// Lets the ticker and its blocking signer run for `d` of real time (the paused clock
    /// does not move meanwhile).
    async fn run_for(d: Duration) {
        let until = std::time::Instant::now() + d;
        while std::time::Instant::now() < until {
            tokio::task::yield_now().await;
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits in real time, up to 30 s, for the newest head to reach `size`.
    async fn wait_for_head(state: &AppState, size: u64) {
        let until = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < until {
            if latest_size(state) == Some(size) {
                return;
            }
            run_for(Duration::from_millis(5)).await;
        }
        panic!("no head of size {size}; newest: {:?}", latest_size(state));
    }

    // tokio's paused clock, moved by hand: `advance` (not `sleep`, whose automatic advance
    // waits for every blocking task to end, and the server keeps some running).
    #[tokio::test(start_paused = true)]
    async fn a_head_is_signed_each_interval_only_when_the_log_grew() {
        let data = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: data.path().to_path_buf(),
            ..Config::default()
        };
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let state = AppState::new(store, config, None).unwrap();
        // Entries before the start: a ticker that signed at once would sign them.
        state
            .audit("test", Action::KeyCreated, "key:1", "{}")
            .unwrap();
        state
            .audit("test", Action::KeyRevoked, "key:1", "{}")
            .unwrap();
        // Starts the curator's schedules, this ticker among them (the default role is `all`).
        crate::load_engine(state.clone(), None).await.unwrap();

        // Lets the spawned ticker run up to its first wait, so its clock starts at 0.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        tokio::time::advance(HEAD_INTERVAL - Duration::from_secs(1)).await;
        // Time for a signer started too early (at start, say) to have written its head.
        run_for(Duration::from_millis(300)).await;
        assert_eq!(
            latest_size(&state),
            None,
            "a head before the first interval"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        wait_for_head(&state, 2).await;
        let heads = |state: &AppState| state.0.store.tree_heads(10).unwrap().len();
        assert_eq!(heads(&state), 1);

        // An interval with nothing new signs nothing.
        tokio::time::advance(HEAD_INTERVAL).await;
        run_for(Duration::from_millis(300)).await;
        assert_eq!(
            heads(&state),
            1,
            "a head signed though the log had not grown"
        );

        // One more entry: the next interval's head covers it.
        state
            .audit("test", Action::KeyCreated, "key:2", "{}")
            .unwrap();
        tokio::time::advance(HEAD_INTERVAL).await;
        wait_for_head(&state, 3).await;
        assert_eq!(heads(&state), 2);
    }
}
