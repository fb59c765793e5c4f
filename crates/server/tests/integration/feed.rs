//! Writes by another process (the CLI's `bank import`, with and without `--complete`) reach a
//! running server's lookups within a second, through the change feed it follows.

use std::time::Duration;

use crate::common::*;
use crate::shared_db::{shared_db, shared_db_with, within};
use axum::http::StatusCode;
use safeguard_engine::{import_list, ImportOptions};
use safeguard_lists::Format;
use serde_json::json;

/// Imports `list` into `bank` through `store` the way `safeguard bank import` does.
fn cli_import(store: &dyn safeguard_store::Store, bank: &str, list: &str, complete: bool) {
    let bank_id = store.bank_by_name(bank).unwrap().unwrap().id;
    let mut opts = ImportOptions::new(
        Format::Plain {
            signal_type: Some("pdq".into()),
        },
        "file:cli-list.txt",
    );
    opts.complete = complete;
    import_list(store, bank_id, &opts, list.as_bytes()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_and_withdrawals_by_another_process_reach_lookups_within_a_second() {
    let sh = shared_db("feed").await;
    let s = &sh.server;
    let r = s
        .admin("POST", "/c/banks", Some(json!({"name": "CLI_BANK"})))
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let uri = format!("/m/lookup?signal_type=pdq&signal={BRIDGE_PDQ}&bypass_coinflip=true");
    let uri = uri.as_str();
    let matched = move || async move {
        let r = s.admin("GET", uri, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json().get("CLI_BANK").is_some()
    };
    assert!(!matched().await);
    // The server is idle now: nothing it does itself would make it look at the store.
    tokio::time::sleep(Duration::from_millis(300)).await;

    cli_import(
        sh.other.as_ref(),
        "CLI_BANK",
        &format!("{BRIDGE_PDQ}\n"),
        false,
    );
    let added = within(Duration::from_secs(1), matched).await;
    println!("an import by another process matched after {added:?}");
    assert!(
        added.is_some(),
        "the imported hash did not match within 1 s"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    // A complete list without the hash withdraws it.
    cli_import(sh.other.as_ref(), "CLI_BANK", "", true);
    let withdrawn = within(
        Duration::from_secs(1),
        move || async move { !matched().await },
    )
    .await;
    println!("a withdrawal by another process stopped matching after {withdrawn:?}");
    assert!(
        withdrawn.is_some(),
        "the withdrawn hash still matched after 1 s"
    );
    // The engine's position is the store's.
    let engine = s.state.engine().unwrap();
    assert_eq!(
        engine.index_status().applied_seq,
        sh.other.last_seq().unwrap()
    );
}

/// Adds `n` items with distinct MD5 values through the other process's store handle.
fn add_many(store: &dyn safeguard_store::Store, bank: &str, n: usize, tag: &str) {
    let bank_id = store.bank_by_name(bank).unwrap().unwrap().id;
    let items: Vec<safeguard_store::NewContent> = (0..n)
        .map(|i| safeguard_store::NewContent {
            signals: vec![("md5".into(), format!("{:032x}", md5_seed(tag, i)))],
            ..Default::default()
        })
        .collect();
    store.add_contents(bank_id, &items).unwrap();
}

fn md5_seed(tag: &str, i: usize) -> u128 {
    let t: u128 = tag.bytes().fold(7, |h, b| h * 31 + u128::from(b));
    (t << 64) | i as u128
}

/// The server reports its position, and the pruner (short intervals here) deletes the feed
/// it and every live follower have passed, less the snapshot window; lookups and following
/// go on as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_is_pruned_behind_the_followers() {
    let sh = shared_db_with("feed-prune", |c| {
        c.feed.heartbeat_secs = 1;
        c.feed.follower_ttl_secs = 4;
        c.feed.prune_interval_secs = 1;
        c.feed.keep_secs = 1;
    })
    .await;
    let s = &sh.server;
    let r = s
        .admin("POST", "/c/banks", Some(json!({"name": "PRUNED"})))
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    // A process that stopped long ago: silent past the TTL, it holds nothing back, and a
    // pruning pass forgets its row (the one-follower assertion below).
    sh.other
        .record_follower(&safeguard_store::Follower {
            name: "gone-host:1".into(),
            position: 1,
            snapshot: Some(1),
            seen_at: safeguard_engine::now_ms() - 60_000,
        })
        .unwrap();
    add_many(sh.other.as_ref(), "PRUNED", 1500, "a");
    let last = sh.other.last_seq().unwrap();
    let engine = s.state.engine().unwrap();
    let floor_reached = within(Duration::from_secs(8), || async {
        sh.other.feed_floor().unwrap() == last - safeguard_engine::SNAPSHOT_FEED_WINDOW
    })
    .await;
    assert!(
        floor_reached.is_some(),
        "floor {} after 8 s, want {}",
        sh.other.feed_floor().unwrap(),
        last - safeguard_engine::SNAPSHOT_FEED_WINDOW
    );
    assert_eq!(engine.applied_seq(), last);
    let followers = sh.other.followers().unwrap();
    assert_eq!(followers.len(), 1, "{followers:?}");
    assert_eq!(followers[0].position, last);
    assert_eq!(
        followers[0].name,
        safeguard_server::feed::follower_name(&s.state),
        "{followers:?}"
    );
    let id =
        std::fs::read_to_string(sh.dir.0.join(safeguard_server::feed::FOLLOWER_ID_FILE)).unwrap();
    assert!(
        followers[0].name.ends_with(&format!(":{id}")),
        "{followers:?}"
    );

    // Still followed: a new hash from the other process matches within a second.
    cli_import(
        sh.other.as_ref(),
        "PRUNED",
        &format!("{BRIDGE_PDQ}\n"),
        false,
    );
    let uri = format!("/m/lookup?signal_type=pdq&signal={BRIDGE_PDQ}&bypass_coinflip=true");
    let seen = within(Duration::from_secs(1), || async {
        s.admin("GET", &uri, None)
            .await
            .json()
            .get("PRUNED")
            .is_some()
    })
    .await;
    assert!(seen.is_some(), "a hash added after pruning did not match");
    // A second process that starts now rebuilds (no snapshot) and follows from the floor on.
    let fresh = safeguard_engine::Engine::open(sh.other.clone()).unwrap();
    assert_eq!(fresh.index_status().entries, engine.index_status().entries);
}

/// A process the feed was pruned past (here by hand, as a pruner would once it had been
/// silent for the time-to-live) stops instead of serving indexes that no longer follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_the_feed_was_pruned_past_stops() {
    let sh = shared_db_with("feed-pruned-past", |c| c.feed.prune = false).await;
    let s = &sh.server;
    let r = s
        .admin("POST", "/c/banks", Some(json!({"name": "PAST"})))
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    // The follower polls every 250 ms: a write and a prune right after it leave it behind
    // the floor unless it looked in between, then the next round does.
    let mut rounds = 0;
    let stopped = within(Duration::from_secs(10), || {
        rounds += 1;
        let other = sh.other.clone();
        let round = rounds;
        async move {
            if s.state.0.fatal.reason().is_some() {
                return true;
            }
            add_many(other.as_ref(), "PAST", 3, &format!("r{round}"));
            let last = other.last_seq().unwrap();
            other.prune_feed(last + 1, i64::MAX, 1000).unwrap();
            tokio::time::sleep(Duration::from_millis(400)).await;
            s.state.0.fatal.reason().is_some()
        }
    })
    .await;
    let reason = s.state.0.fatal.reason().unwrap_or_default().to_string();
    assert!(stopped.is_some(), "not stopped after {rounds} rounds");
    assert!(reason.contains("pruned"), "{reason}");
    // The stop is announced to whoever runs the server.
    tokio::time::timeout(Duration::from_secs(1), s.state.0.fatal.raised())
        .await
        .expect("fatal raised");
}
