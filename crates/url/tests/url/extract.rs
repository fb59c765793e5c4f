//! URL extraction from message text, de-obfuscation included.

use safeguard_url::{extract_urls, Error, MAX_EXTRACTED_URLS, MAX_TEXT_BYTES};

fn urls(text: &str) -> Vec<String> {
    extract_urls(text).unwrap()
}

#[test]
fn plain_urls_and_bare_domains() {
    assert_eq!(
        urls("see https://www.example.com/a/b.html?x=1, or example.org/pics (and http://example.net)."),
        ["https://www.example.com/a/b.html?x=1", "http://example.org/pics", "http://example.net/"]
    );
    assert_eq!(urls("go to 192.0.2.7/x now"), ["http://192.0.2.7/x"]);
    assert_eq!(urls("www.example.co.uk"), ["http://www.example.co.uk/"]);
    assert_eq!(
        urls("wiki: https://en.example.org/wiki/A_(b)."),
        ["https://en.example.org/wiki/A_(b)"]
    );
}

#[test]
fn not_urls() {
    for text in [
        "no links here",
        "version 1.2 of file.txt and index.html",
        "mail me at someone@example.com",
        "mail first.last@example.com",
        "I went home. Then I slept.",
        "e.g. this, i.e. that",
    ] {
        assert_eq!(urls(text), Vec::<String>::new(), "{text}");
    }
}

#[test]
fn defanged_forms() {
    let want = ["http://example.com/a"];
    for text in [
        "hxxp://example.com/a",
        "hXXp://example[.]com/a",
        "hxxp[:]//example[.]com/a",
        "http[://]example.com/a",
        "example[.]com/a",
        "example(.)com/a",
        "example{.}com/a",
        "example[dot]com/a",
        "example (dot) com/a",
        "example dot com/a",
        "example DOT com/a",
        "example . com/a",
        "example .com/a",
        "example. com/a",
    ] {
        assert_eq!(urls(text), want, "{text}");
    }
    assert_eq!(
        urls("hxxps://sub[.]example[.]com/x"),
        ["https://sub.example.com/x"]
    );
}

#[test]
fn full_width_and_invisible_characters() {
    assert_eq!(
        urls("ｈｔｔｐ：／／ｅｘａｍｐｌｅ．ｃｏｍ／ａ"),
        ["http://example.com/a"]
    );
    assert_eq!(urls("ｅｘａｍｐｌｅ．ｃｏｍ"), ["http://example.com/"]);
    assert_eq!(urls("example。com"), ["http://example.com/"]);
    assert_eq!(urls("exa\u{200B}mple.com/a"), ["http://example.com/a"]);
}

#[test]
fn duplicates_collapse_to_one() {
    assert_eq!(
        urls("example.com example.com/ http://EXAMPLE.com"),
        ["http://example.com/"]
    );
}

#[test]
fn limits() {
    let long = "a".repeat(MAX_TEXT_BYTES + 1);
    assert!(matches!(
        extract_urls(&long),
        Err(Error::TextTooLong { .. })
    ));
    let many: String = (0..=MAX_EXTRACTED_URLS)
        .map(|i| format!("h{i}.example.com "))
        .collect();
    assert!(many.len() <= MAX_TEXT_BYTES);
    assert_eq!(
        extract_urls(&many),
        Err(Error::TooManyUrls {
            max: MAX_EXTRACTED_URLS
        })
    );
    let just: String = (0..MAX_EXTRACTED_URLS)
        .map(|i| format!("h{i}.example.com "))
        .collect();
    assert_eq!(extract_urls(&just).unwrap().len(), MAX_EXTRACTED_URLS);
}

/// A link is never passed over for its length: a long fragment (which a browser never sends)
/// is cut before the limit is checked, and a link that normalising or escaping made longer
/// than the URL limit is an error.
#[test]
fn long_links_are_matched_or_refused_never_passed_over() {
    // U+3316 is 3 bytes, and NFKC makes it 18 ("キロメートル").
    let fragment = format!("see http://listed.com/a.jpg#{}", "\u{3316}".repeat(20_000));
    assert!(fragment.len() <= MAX_TEXT_BYTES);
    assert_eq!(
        extract_urls(&fragment).unwrap(),
        vec!["http://listed.com/a.jpg".to_string()]
    );
    let path = format!("see http://listed.com/{}", "\u{3316}".repeat(20_000));
    assert!(path.len() <= MAX_TEXT_BYTES);
    assert!(matches!(extract_urls(&path), Err(Error::UrlTooLong { .. })));
    // 40,000 bytes of text, 120,000 escaped.
    let query = format!("http://listed.com/a.jpg?{}", "\u{e9}".repeat(20_000));
    assert!(matches!(
        extract_urls(&query),
        Err(Error::UrlTooLong { .. })
    ));
}

/// The worst inputs of the maximum size finish quickly: extraction is linear.
#[test]
fn hostile_text_of_the_maximum_size_is_fast() {
    // Whole units, leaving room for a short prefix, so the text stays within the limit.
    let filler = |unit: &str| unit.repeat((MAX_TEXT_BYTES - 32) / unit.len());
    for text in [
        format!("example.com/{}", filler(")")),
        filler("a . "),
        filler("a. com "),
        filler("%25"),
        format!("http://example.com/{}", filler("%2525")),
        filler("\u{FF10}"),
        filler("[.]"),
        filler("a."),
        filler("a-"),
        filler("a@b."),
        filler("1.1.1.1 "),
        filler("http://"),
        filler("a.co "),
    ] {
        assert!(text.len() <= MAX_TEXT_BYTES);
        let started = std::time::Instant::now();
        let _ = extract_urls(&text);
        assert!(
            started.elapsed().as_secs_f64() < 2.0,
            "{:.1} s on {:?}...",
            started.elapsed().as_secs_f64(),
            &text[..20]
        );
    }
}
