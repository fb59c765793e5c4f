//! The actioner: its policy cache across processes, and allow-list suppression.

use std::sync::Arc;

use safeguard_engine::action::{Actioner, Submission, POLICY_RECHECK};
use safeguard_engine::{AddContent, CreateBank, Engine, SignalType, SignalValue};
use safeguard_policy::{AccountAge, Kind, RuleSet, Verdict};
use safeguard_store::{BankKind, SqliteOptions, SqliteStore, Store};

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

const H: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
const M: &str = "9e107d9d372bb6826bd81d3542a419d6";

/// An allow-list match clears every match of the item, across its signals, and `suppressed`
/// counts the standard-bank matches dropped: the ones each lookup dropped for its own signal
/// and the ones of the other signals, never the allow-list matches themselves.
#[test]
fn an_allow_list_match_clears_every_signal_and_counts_the_standard_matches() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let engine = Arc::new(Engine::open(store).unwrap());
    for (name, kind) in [
        ("HOT1", None),
        ("HOT2", None),
        ("BENIGN", Some(BankKind::AllowList)),
    ] {
        engine
            .create_bank(&CreateBank {
                name: name.into(),
                kind,
                ..Default::default()
            })
            .unwrap();
    }
    let add = |bank: &str, t: SignalType, v: &str| {
        engine
            .add_content(
                bank,
                &AddContent {
                    signals: vec![(t, v.into())],
                    ..Default::default()
                },
            )
            .unwrap();
    };
    // The PDQ hash is in both standard banks and the allow-list; the MD5 in one standard bank.
    add("HOT1", SignalType::Pdq, H);
    add("HOT2", SignalType::Pdq, H);
    add("BENIGN", SignalType::Pdq, H);
    add("HOT1", SignalType::Md5, M);
    let a = Actioner::new(engine);
    let item = |signals: Vec<SignalValue>| Submission {
        id: "post-1".into(),
        kind: Kind::Image,
        signals,
        account: Some("u1".into()),
        account_age: AccountAge::Unknown,
        surface: None,
        created_at: None,
        ip: None,
        metadata: None,
        media: None,
        url: None,
    };
    let pdq = SignalValue::parse(SignalType::Pdq, H).unwrap();
    let md5 = SignalValue::parse(SignalType::Md5, M).unwrap();

    // Alone, the MD5 matches and is not suppressed.
    let e = a.evaluate(&item(vec![md5.clone()])).unwrap();
    assert_eq!((e.matches.len(), e.suppressed), (1, 0));
    assert_ne!(e.decision.verdict, Verdict::Allow);

    // With the PDQ: its lookup drops the two standard matches, and the MD5's match goes too.
    let e = a.evaluate(&item(vec![pdq, md5])).unwrap();
    assert!(e.matches.is_empty(), "{:?}", e.matches);
    assert_eq!(e.suppressed, 3);
    assert_eq!(e.decision.verdict, Verdict::Allow);
}
