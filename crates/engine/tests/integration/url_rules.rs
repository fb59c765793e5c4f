//! URL list entries as signals of type `url`: stored canonically, matched with IWF semantics
//! (page, folder, whole domain) through the change feed, filtered by bank rules, and carried
//! by snapshots. Every URL is under reserved example domains.

use std::io::Cursor;
use std::sync::Arc;

use safeguard_engine::{AddContent, CreateBank, Engine, LookupOptions, SignalType, SignalValue};
use safeguard_store::{BankUpdate, SqliteStore, Store};

fn lookup(e: &Engine, url: &str) -> Vec<i64> {
    let value = SignalValue::parse(SignalType::Url, url).unwrap();
    let mut ids: Vec<i64> = e
        .lookup(
            &value,
            &LookupOptions {
                coinflip: Some(0.0),
                ..Default::default()
            },
        )
        .unwrap()
        .matches
        .into_iter()
        .map(|m| {
            assert_eq!(m.signal_type, SignalType::Url);
            assert_eq!(m.distance, 0);
            m.content_id
        })
        .collect();
    ids.sort_unstable();
    ids
}

fn add(e: &Engine, bank: &str, url: &str) -> i64 {
    e.add_content(
        bank,
        &AddContent {
            signals: vec![(SignalType::Url, url.into())],
            ..Default::default()
        },
    )
    .unwrap()
    .id
}

fn bank(e: &Engine, name: &str) {
    e.create_bank(&CreateBank {
        name: name.into(),
        ..Default::default()
    })
    .unwrap();
}

#[test]
fn entries_match_pages_folders_and_domains_through_the_feed() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let e = Engine::open(store.clone()).unwrap();
    bank(&e, "IWF");
    bank(&e, "OTHER");
    let page = add(&e, "IWF", "HTTP://Pages.Example.COM/a/../gallery/item.html");
    let folder = add(&e, "IWF", "folders.example.org/shared/");
    let domain = add(&e, "IWF", "whole.example.net");
    // A folder deeper than the spec's 3 components still matches what is under it.
    let deep = add(&e, "OTHER", "deep.example.com/1/2/3/4/5/");
    // Stored in entry-expression form.
    assert_eq!(
        e.content("IWF", page).unwrap().signals[0].value,
        "pages.example.com/gallery/item.html"
    );
    assert_eq!(
        e.content("IWF", domain).unwrap().signals[0].value,
        "whole.example.net/"
    );

    assert_eq!(
        lookup(&e, "https://pages.example.com/gallery/item.html?x=1#f"),
        [page]
    );
    assert!(lookup(&e, "http://pages.example.com/").is_empty());
    assert_eq!(
        lookup(&e, "http://a.folders.example.org/shared/x/y.jpg"),
        [folder]
    );
    assert!(lookup(&e, "http://folders.example.org/sharedx/").is_empty());
    assert_eq!(lookup(&e, "http://cdn.whole.example.net/"), [domain]);
    assert_eq!(
        lookup(&e, "http://deep.example.com/1/2/3/4/5/6/7.html"),
        [deep]
    );
    assert!(lookup(&e, "http://deep.example.com/1/2/3/4/").is_empty());

    // Bank rules apply: a disabled bank does not match.
    e.update_bank(
        "OTHER",
        &BankUpdate {
            enabled: Some(false),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(lookup(&e, "http://deep.example.com/1/2/3/4/5/6/7.html").is_empty());

    // Removal through the feed.
    e.delete_content("IWF", folder).unwrap();
    assert!(lookup(&e, "http://a.folders.example.org/shared/x/y.jpg").is_empty());

    // A snapshot carries the URL index; a build from the store agrees.
    let mut snap = Cursor::new(Vec::new());
    e.write_snapshot(&mut snap).unwrap();
    snap.set_position(0);
    let reopened = Engine::open_with_snapshot(store.clone(), &mut snap).unwrap();
    let rebuilt = Engine::open(store).unwrap();
    for engine in [&reopened, &rebuilt] {
        assert_eq!(
            lookup(engine, "http://pages.example.com/gallery/item.html"),
            [page]
        );
        assert_eq!(lookup(engine, "http://x.whole.example.net/y"), [domain]);
        assert!(lookup(engine, "http://a.folders.example.org/shared/x/y.jpg").is_empty());
        assert!(engine
            .index_status()
            .entries
            .contains(&(SignalType::Url, 3)));
    }
}

#[test]
fn a_damaged_url_section_is_refused() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let e = Engine::open(store.clone()).unwrap();
    bank(&e, "IWF");
    add(&e, "IWF", "whole.example.net");
    let mut snap = Cursor::new(Vec::new());
    e.write_snapshot(&mut snap).unwrap();
    let mut bytes = snap.into_inner();
    // The URL section is last: its entry bytes end just before its 4-byte checksum.
    let at = bytes.len() - 6;
    bytes[at] ^= 0x20;
    let err = Engine::open_with_snapshot(store, &mut Cursor::new(bytes)).unwrap_err();
    assert!(err.to_string().contains("url"), "{err}");
}
