//! Writes by another process (the CLI's `bank import`, with and without `--complete`) reach a
//! running server's lookups within a second, through the change feed it follows.

use std::time::Duration;

use crate::common::*;
use crate::shared_db::{shared_db, within};
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
