//! The actioner's policy cache across processes.

use std::sync::Arc;

use safeguard_engine::action::{Actioner, POLICY_RECHECK};
use safeguard_engine::Engine;
use safeguard_policy::RuleSet;
use safeguard_store::{SqliteOptions, SqliteStore, Store};

fn ids(a: &Actioner) -> Vec<String> {
    a.policy()
        .unwrap()
        .rules()
        .map(|r| r.id().to_owned())
        .filter(|id| !id.starts_with("builtin."))
        .collect()
}

/// Rules applied through one actioner apply to it at once; another actioner on the same
/// database (another process: `safeguard rules apply` beside a running server) picks them up
/// within `POLICY_RECHECK`.
#[test]
fn rules_changed_elsewhere_apply_within_the_recheck_and_local_ones_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("safeguard.db");
    let open =
        || -> Arc<dyn Store> { Arc::new(SqliteStore::open(&SqliteOptions::new(&db)).unwrap()) };
    let server = Actioner::new(Arc::new(Engine::open(open()).unwrap()));
    let cli = Actioner::new(Arc::new(Engine::open(open()).unwrap()));
    assert!(ids(&server).is_empty());
    let set = RuleSet::parse_toml(
        "[[rule]]\nid = \"hold-all\"\n[rule.when]\n[rule.then]\nverdict = \"hold\"\n",
    )
    .unwrap();
    cli.apply_rules(&set).unwrap();
    assert_eq!(
        ids(&cli),
        vec!["hold-all".to_string()],
        "at once where applied"
    );
    std::thread::sleep(POLICY_RECHECK + std::time::Duration::from_millis(100));
    assert_eq!(
        ids(&server),
        vec!["hold-all".to_string()],
        "within the recheck elsewhere"
    );
    server.delete_rule("hold-all").unwrap();
    assert!(ids(&server).is_empty(), "a local delete applies at once");
}
