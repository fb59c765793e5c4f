//! Matching semantics of `UrlList` (IWF: a page, a folder, a whole domain) and a model test
//! against the plainest implementation, a set of expression strings.

use std::collections::HashSet;

use proptest::prelude::*;
use safeguard_url::{expressions, CanonicalUrl, Error, UrlList, UrlListBuilder};

fn list(entries: &[&str]) -> UrlList {
    UrlList::from_entries(entries).unwrap()
}

fn hits(list: &UrlList, url: &str) -> Vec<u32> {
    list.matches(url).unwrap()
}

#[test]
fn a_page_matches_that_page_only() {
    let l = list(&["example.com/a/page.html"]);
    for url in [
        "http://example.com/a/page.html",
        "https://example.com/a/page.html",
        "http://EXAMPLE.com/a/./page.html#top",
        "http://example.com/a/page.html?utm=1",
        "http://example.com:8080/a//page.html",
        // Safe Browsing looks up every host suffix: the page on a subdomain is the page.
        "http://www.example.com/a/page.html",
    ] {
        assert_eq!(hits(&l, url), [0], "{url}");
    }
    for url in [
        "http://example.com/",
        "http://example.com/a/",
        "http://example.com/a/page.html2",
        "http://example.com/a/page.htm",
        "http://example.com/b/page.html",
        "http://example.org/a/page.html",
        "http://notexample.com/a/page.html",
    ] {
        assert!(hits(&l, url).is_empty(), "{url}");
    }
}

#[test]
fn a_page_with_a_query_matches_that_query_only() {
    let l = list(&["example.net/view?id=7"]);
    assert_eq!(hits(&l, "http://example.net/view?id=7"), [0]);
    assert!(hits(&l, "http://example.net/view?id=8").is_empty());
    assert!(hits(&l, "http://example.net/view").is_empty());
    // A bare '?' is no query.
    let l = list(&["example.net/q?"]);
    assert_eq!(hits(&l, "http://example.net/q"), [0]);
    assert_eq!(hits(&l, "http://example.net/q?"), [0]);
}

#[test]
fn a_folder_matches_what_is_under_it() {
    let l = list(&["example.com/a/"]);
    for url in [
        "http://example.com/a/",
        "http://example.com/a/b.jpg",
        "http://example.com/a/b/c/d.jpg?x=1",
        "http://cdn.example.com/a/b.jpg",
    ] {
        assert_eq!(hits(&l, url), [0], "{url}");
    }
    // "/a" with no slash is the page "a", not the folder: a folder entry does not match it.
    assert!(hits(&l, "http://example.com/a").is_empty());
    for url in [
        "http://example.com/",
        "http://example.com/ab/",
        "http://example.com/b/a/",
    ] {
        assert!(hits(&l, url).is_empty(), "{url}");
    }
}

#[test]
fn a_whole_domain_matches_only_as_the_domain_itself() {
    let l = list(&["example.org/"]);
    for url in [
        "http://example.org/",
        "http://example.org/any/thing?x",
        "https://sub.example.org/x",
    ] {
        assert_eq!(hits(&l, url), [0], "{url}");
    }
    for url in [
        "http://example.org.test/",
        "http://notexample.org/",
        "http://example.com/example.org/",
    ] {
        assert!(hits(&l, url).is_empty(), "{url}");
    }
    // A page or folder entry on a domain never blocks the domain.
    let l = list(&["example.org/a/", "example.org/b.html"]);
    assert!(hits(&l, "http://example.org/").is_empty());
    assert!(hits(&l, "http://example.org/c.html").is_empty());
}

#[test]
fn ip_hosts_match_in_any_form_and_without_suffixes() {
    let l = list(&["192.0.2.1/x/"]);
    for url in [
        "http://192.0.2.1/x/y",
        "http://3221225985/x/y",
        "http://0xc0.0.2.1/x/",
        "http://[::ffff:192.0.2.1]/x/",
    ] {
        assert_eq!(hits(&l, url), [0], "{url}");
    }
    // "0.2.1" is no suffix of an address.
    let l = list(&["0.2.1/x/"]);
    assert!(hits(&l, "http://192.0.2.1/x/y").is_empty());
}

#[test]
fn every_matching_entry_is_returned() {
    let l = list(&[
        "example.com/",
        "other.test/",
        "example.com/a/",
        "example.com/a/b.jpg",
        "https://example.com/a/",
    ]);
    assert_eq!(hits(&l, "http://example.com/a/b.jpg"), [0, 2, 3, 4]);
    assert_eq!(hits(&l, "http://example.com/z"), [0]);
    let c = CanonicalUrl::parse("http://example.com/a/b.jpg").unwrap();
    assert!(l.is_match(&c));
    assert!(!l.is_match(&CanonicalUrl::parse("http://example.net/").unwrap()));
}

#[test]
fn entries_are_canonicalised_like_urls() {
    let l = list(&[
        "HTTPS://B\u{fc}cher.Example/%7Euser/",
        "http://example.com/a%2Fb/",
    ]);
    assert_eq!(hits(&l, "http://xn--bcher-kva.example/~user/x"), [0]);
    assert_eq!(hits(&l, "http://b\u{fc}cher.example/%257Euser/x"), [0]);
    // %2F is unescaped like every escape, so it separates path components.
    assert_eq!(hits(&l, "http://example.com/a/b/c"), [1]);
}

/// Beyond the spec's reach (folders deeper than 3 components, domains with more than 5
/// labels) the list widens its lookups, so such entries still cover what is under them.
#[test]
fn deep_folders_and_domains_still_match_under_them() {
    let l = list(&["example.com/1/2/3/4/5/", "a.b.c.d.e.f.example/"]);
    assert_eq!(hits(&l, "http://example.com/1/2/3/4/5/6/7.jpg"), [0]);
    assert_eq!(hits(&l, "http://x.a.b.c.d.e.f.example/p"), [1]);
    // The spec's expressions alone would not reach them.
    let e = expressions(&CanonicalUrl::parse("http://example.com/1/2/3/4/5/6/7.jpg").unwrap());
    assert!(!e.contains(&"example.com/1/2/3/4/5/".to_owned()));
}

#[test]
fn bad_entries_are_named() {
    let err = UrlList::from_entries(["example.com/", "mailto:someone@example.com"]).unwrap_err();
    assert!(matches!(err, Error::Entry { index: 1, .. }), "{err:?}");
    let mut b = UrlListBuilder::new();
    assert_eq!(b.add("example.com/").unwrap(), 0);
    assert!(b.add("/no/host").is_err());
    assert_eq!(b.add("example.net/").unwrap(), 1);
    assert_eq!(b.build().len(), 2);
}

#[test]
fn memory_per_entry_is_small() {
    let l = UrlList::from_entries(
        (0..100_000).map(|i| format!("h{}.example/d{}/p{i}.html", i % 997, i % 13)),
    )
    .unwrap();
    let per_entry = l.heap_bytes() as f64 / l.len() as f64;
    assert!(per_entry < 32.0, "{per_entry} bytes per entry");
}

fn label() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "example", "test", "1", "0x1"]).prop_map(String::from)
}

fn url_strategy() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(label(), 1..5),
        prop::collection::vec(
            prop::sample::select(vec!["a", "b", "x.html", ".", ".."]),
            0..4,
        ),
        prop::bool::ANY,
        prop::option::of(prop::sample::select(vec!["", "q=1", "q=2"])),
    )
        .prop_map(|(labels, segments, slash, query)| {
            let mut url = format!("http://{}/{}", labels.join("."), segments.join("/"));
            if slash && !segments.is_empty() {
                url.push('/');
            }
            if let Some(q) = query {
                url.push('?');
                url.push_str(q);
            }
            url
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Within the spec's reach (hosts of at most 5 labels, folders at most 3 deep, which this
    /// generator keeps to), the list agrees with a set of expression strings.
    #[test]
    fn list_agrees_with_a_set_of_strings(
        entries in prop::collection::vec(url_strategy(), 1..20),
        urls in prop::collection::vec(url_strategy(), 1..20),
    ) {
        let list = UrlList::from_entries(&entries).unwrap();
        let keys: Vec<String> = entries
            .iter()
            .map(|e| {
                let c = CanonicalUrl::parse(e).unwrap();
                let s = c.without_scheme().to_owned();
                s.strip_suffix('?').map(String::from).unwrap_or(s)
            })
            .collect();
        for url in &urls {
            let c = CanonicalUrl::parse(url).unwrap();
            let exprs: HashSet<String> = expressions(&c).into_iter().collect();
            let want: Vec<u32> = (0..keys.len() as u32).filter(|&i| exprs.contains(&keys[i as usize])).collect();
            prop_assert_eq!(list.matches_canonical(&c), want, "{}", url);
        }
    }
}
