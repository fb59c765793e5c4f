//! Model-based property test: random operation sequences applied to a [`SqliteStore`] (and a
//! `PostgresStore`, feature `postgres`) and to
//! [`conformance::Model`] must agree on every observable result, including the change feed
//! replayed into a map of live signals.

use proptest::prelude::*;
use safeguard_store::conformance::{self, Op};
use safeguard_store::{
    BankKind, BankUpdate, ContentUpdate, NewApiKey, NewBank, NewContent, SqliteStore,
};

/// A few names, some colliding, some hostile to SQL or encodings.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("A".to_owned()),
        Just("B".to_owned()),
        Just("C".to_owned()),
        Just("it's".to_owned()),
        Just("名 🚀".to_owned()),
        Just(String::new()),
        "[\0-\u{7f}]{0,6}",
    ]
}

fn text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![Just("{}".to_owned()), any::<String>()])
}

fn ratio() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => 0.0..=1.0f64,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
    ]
}

fn tags() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop_oneof![Just("hotline"), Just("uk"), Just("x-1")], 0..3)
        .prop_map(|v| v.into_iter().map(str::to_owned).collect())
}

fn classification() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![Just("A1".to_owned()), Just("B2".to_owned())])
}

fn new_bank() -> impl Strategy<Value = NewBank> {
    (
        (name(), any::<bool>(), ratio(), any::<u32>()),
        prop_oneof![
            Just(BankKind::Standard),
            Just(BankKind::AllowList),
            Just(BankKind::Csam)
        ],
        tags(),
        classification(),
    )
        .prop_map(
            |((name, enabled, enabled_ratio, pdq_threshold), kind, tags, classification)| NewBank {
                name,
                enabled,
                enabled_ratio,
                pdq_threshold,
                kind,
                tags,
                classification,
            },
        )
}

fn bank_update() -> impl Strategy<Value = BankUpdate> {
    (
        prop::option::of(name()),
        prop::option::of(any::<bool>()),
        prop::option::of(ratio()),
        prop::option::of(any::<u32>()),
        prop::option::of(tags()),
        prop::option::of(classification()),
    )
        .prop_map(
            |(name, enabled, enabled_ratio, pdq_threshold, tags, classification)| BankUpdate {
                name,
                enabled,
                enabled_ratio,
                pdq_threshold,
                tags,
                classification,
            },
        )
}

/// Small pools of types and values, so items share values and duplicate types happen.
fn signals() -> impl Strategy<Value = Vec<(String, String)>> {
    let ty = prop_oneof![Just("pdq"), Just("md5"), Just("sha256"), Just("vídeo")];
    let value = prop_oneof![Just("00ff"), Just("00FF"), Just("é"), Just("")];
    prop::collection::vec(
        (ty, value).prop_map(|(t, v)| (t.to_owned(), v.to_owned())),
        0..4,
    )
}

fn disable_ts() -> impl Strategy<Value = i64> {
    prop_oneof![3 => Just(0i64), 1 => Just(i64::MAX), 1 => any::<i64>()]
}

fn new_content() -> impl Strategy<Value = NewContent> {
    (text(), text(), disable_ts(), text(), signals()).prop_map(
        |(metadata, note, disable_until_ts, original_media_uri, signals)| NewContent {
            metadata,
            note,
            disable_until_ts,
            original_media_uri,
            signals,
        },
    )
}

fn content_update() -> impl Strategy<Value = ContentUpdate> {
    (
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(disable_ts()),
    )
        .prop_map(|(metadata, note, disable_until_ts)| ContentUpdate {
            metadata,
            note,
            disable_until_ts,
        })
}

fn new_key() -> impl Strategy<Value = NewApiKey> {
    (
        prop_oneof![Just("k1"), Just("k2"), Just("k'3")],
        name(),
        prop::collection::vec(name(), 0..3),
    )
        .prop_map(|(key_id, name, scopes)| NewApiKey {
            key_id: key_id.to_owned(),
            name,
            secret_sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                .into(),
            scopes,
        })
}

fn op() -> impl Strategy<Value = Op> {
    let p = || 0usize..8;
    prop_oneof![
        3 => new_bank().prop_map(Op::CreateBank),
        1 => (p(), bank_update()).prop_map(|(p, u)| Op::UpdateBank(p, u)),
        1 => p().prop_map(Op::DeleteBank),
        5 => (p(), new_content()).prop_map(|(p, c)| Op::AddContent(p, c)),
        2 => (p(), prop::collection::vec(new_content(), 0..4))
            .prop_map(|(p, c)| Op::AddContents(p, c)),
        2 => (p(), content_update()).prop_map(|(p, u)| Op::UpdateContent(p, u)),
        2 => p().prop_map(Op::DeleteContent),
        1 => new_key().prop_map(Op::CreateApiKey),
        1 => p().prop_map(Op::RevokeApiKey),
    ]
}

proptest! {
    // Each case opens a store and re-checks all state after every op; 64 cases of up to 40
    // ops keep this to seconds on a 2-core machine.
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_agrees_with_model(ops in prop::collection::vec(op(), 1..40)) {
        let store = SqliteStore::open_in_memory().expect("open store");
        conformance::check_ops(&store, &ops);
    }
}

#[cfg(feature = "postgres")]
proptest! {
    // The same property on PostgreSQL, each case in a fresh database (creating one costs
    // about a tenth of a second, so fewer cases than SQLite's). Skipped with a message when
    // no server is reachable, except under CI=true.
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn postgres_agrees_with_model(ops in prop::collection::vec(op(), 1..40)) {
        let Some(db) = safeguard_store::postgres_testing::TestDatabase::create() else {
            return Ok(());
        };
        let store = db.open();
        conformance::check_ops(&store, &ops);
    }
}
