//! Canonicalisation against the published Safe Browsing vectors.

use safeguard_url::{canonicalize, canonicalize_bytes, Error};

/// The canonicalisation examples of the Safe Browsing v4 "URLs and Hashing" page, section
/// "Canonicalization", all of them, in the page's order:
/// <https://developers.google.com/safe-browsing/v4/urls-hashing#canonicalization>.
/// (The same list appears in Google's Go client's tests and in Firefox's
/// `toolkit/components/url-classifier/tests/unit/test_canonicalization.js`.)
const SAFE_BROWSING_V4: &[(&str, &str)] = &[
    ("http://host/%25%32%35", "http://host/%25"),
    ("http://host/%25%32%35%25%32%35", "http://host/%25%25"),
    ("http://host/%2525252525252525", "http://host/%25"),
    ("http://host/asdf%25%32%35asd", "http://host/asdf%25asd"),
    ("http://host/%%%25%32%35asd%%", "http://host/%25%25%25asd%25%25"),
    ("http://www.google.com/", "http://www.google.com/"),
    (
        "http://%31%36%38%2e%31%38%38%2e%39%39%2e%32%36/%2E%73%65%63%75%72%65/%77%77%77%2E%65%62%61%79%2E%63%6F%6D/",
        "http://168.188.99.26/.secure/www.ebay.com/",
    ),
    (
        "http://195.127.0.11/uploads/%20%20%20%20/.verify/.eBaysecure=updateuserdataxplimnbqmn-xplmvalidateinfoswqpcmlx=hgplmcx/",
        "http://195.127.0.11/uploads/%20%20%20%20/.verify/.eBaysecure=updateuserdataxplimnbqmn-xplmvalidateinfoswqpcmlx=hgplmcx/",
    ),
    (
        "http://host%23.com/%257Ea%2521b%2540c%2523d%2524e%25f%255E00%252611%252A22%252833%252944_55%252B",
        "http://host%23.com/~a!b@c%23d$e%25f^00&11*22(33)44_55+",
    ),
    ("http://3279880203/blah", "http://195.127.0.11/blah"),
    ("http://www.google.com/blah/..", "http://www.google.com/"),
    ("www.google.com/", "http://www.google.com/"),
    ("www.google.com", "http://www.google.com/"),
    ("http://www.evil.com/blah#frag", "http://www.evil.com/blah"),
    ("http://www.GOOgle.com/", "http://www.google.com/"),
    ("http://www.google.com.../", "http://www.google.com/"),
    ("http://www.google.com/foo\tbar\rbaz\n2", "http://www.google.com/foobarbaz2"),
    ("http://www.google.com/q?", "http://www.google.com/q?"),
    ("http://www.google.com/q?r?", "http://www.google.com/q?r?"),
    ("http://www.google.com/q?r?s", "http://www.google.com/q?r?s"),
    ("http://evil.com/foo#bar#baz", "http://evil.com/foo"),
    ("http://evil.com/foo;", "http://evil.com/foo;"),
    ("http://evil.com/foo?bar;", "http://evil.com/foo?bar;"),
    // "http://\x01\x80.com/" -> "http://%01%80.com/" is a byte string: see below.
    ("http://notrailingslash.com", "http://notrailingslash.com/"),
    ("http://www.gotaport.com:1234/", "http://www.gotaport.com/"),
    ("  http://www.google.com/  ", "http://www.google.com/"),
    ("http:// leadingspace.com/", "http://%20leadingspace.com/"),
    ("http://%20leadingspace.com/", "http://%20leadingspace.com/"),
    ("%20leadingspace.com/", "http://%20leadingspace.com/"),
    ("https://www.securesite.com/", "https://www.securesite.com/"),
    ("http://host.com/ab%23cd", "http://host.com/ab%23cd"),
    ("http://host.com//twoslashes?more//slashes", "http://host.com/twoslashes?more//slashes"),
];

#[test]
fn safe_browsing_v4_vectors() {
    // 33 on the page: these 32 and the byte string below.
    assert_eq!(SAFE_BROWSING_V4.len(), 32);
    let mut failures = Vec::new();
    for &(input, want) in SAFE_BROWSING_V4 {
        match canonicalize(input) {
            Ok(got) if got == want => {}
            other => failures.push(format!("{input:?}: got {other:?}, want {want:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The page's one vector that is not UTF-8: the bytes 0x01 and 0x80 in the host.
#[test]
fn safe_browsing_v4_byte_vector() {
    assert_eq!(
        canonicalize_bytes(b"http://\x01\x80.com/").unwrap(),
        "http://%01%80.com/"
    );
}

/// The IPv6 rules added in the current ("v5") text of the same section:
/// <https://developers.google.com/safe-browsing/reference/URLs.and.Hashing>.
#[test]
fn safe_browsing_ipv6_rules() {
    for (input, want) in [
        ("http://[2001:0db8:0000::1]/", "http://[2001:db8::1]/"),
        ("http://[::ffff:1.2.3.4]/", "http://1.2.3.4/"),
        ("http://[64:ff9b::1.2.3.4]/", "http://1.2.3.4/"),
    ] {
        assert_eq!(canonicalize(input).unwrap(), want, "{input}");
    }
}

/// Further vectors from Google's Go client (github.com/google/safebrowsing, `urls_test.go`,
/// TestCanonicalURL, TestCanonicalHost, TestParseURL) where its behaviour and the spec agree.
/// The Go client drops the query from its canonical URL (it builds expressions from the
/// parsed parts); the spec keeps it, so these are written with the query where there is one.
#[test]
fn go_client_vectors() {
    for (input, want) in [
        ("ftp://ftp.myfiles.com/", "ftp://ftp.myfiles.com/"),
        ("http://www.\u{fc}mlat.com/", "http://www.xn--mlat-zra.com/"),
        (
            "http://[2001:470:1:18::114]/",
            "http://[2001:470:1:18::114]/",
        ),
        ("http%3A%2F%2Fwackyurl.com:80/", "http://wackyurl.com/"),
        ("http://W!eird<>Ho$^.com/", "http://w!eird<>ho$^.com/"),
        (
            "http://i.have.way.too.many.dots.com/",
            "http://i.have.way.too.many.dots.com/",
        ),
        ("http://google.com./foo.html", "http://google.com/foo.html"),
        (
            "http://google.com.:8080/foo.html",
            "http://google.com/foo.html",
        ),
        ("http://google...com/foo.html", "http://google.com/foo.html"),
        ("http://..google.com/foo.html", "http://google.com/foo.html"),
        (
            "http://[FEDC:BA98:7654:3210:FEDC:BA98:7654:3210]:80/index.html",
            "http://[fedc:ba98:7654:3210:fedc:ba98:7654:3210]/index.html",
        ),
        ("http://0x12.0x43.0x44.0x01", "http://18.67.68.1/"),
        (
            "http://192.168.0.1:80/index.html",
            "http://192.168.0.1/index.html",
        ),
        (
            "http://a.com/foo/.././bar/./../foo.html",
            "http://a.com/foo.html",
        ),
        ("http://a.com//a//b///c////", "http://a.com/a/b/c/"),
        (
            "www.google.com:8080/foo.html",
            "http://www.google.com/foo.html",
        ),
        ("www.google.com:80/", "http://www.google.com/"),
        ("www.google.com:80", "http://www.google.com/"),
        (
            "http://www.google.com:8080/foo.html",
            "http://www.google.com/foo.html",
        ),
    ] {
        assert_eq!(canonicalize(input).unwrap(), want, "{input}");
    }
}

/// Where this crate departs from the Go client on purpose (each reason is in the code).
#[test]
fn go_client_differences() {
    for (input, ours, go) in [
        // Uppercase hex, as the spec's text and vectors have it.
        (
            "http://some%1bhost.com/%1b",
            "http://some%1Bhost.com/%1B",
            "http://some%1bhost.com/%1b",
        ),
        // The query is kept (the spec's "q?r?s" vector), escapes in it undone like elsewhere.
        (
            "http://www.google.com/q?r?s%3F",
            "http://www.google.com/q?r?s?",
            "http://www.google.com/q",
        ),
        // IPv6 compressed as RFC 5952 says (the Go client keeps the text as given).
        (
            "http://[::192.9.5.5]/ipng",
            "http://[::c009:505]/ipng",
            "http://[::192.9.5.5]/ipng",
        ),
        // A path ending in ".." names a directory.
        ("http://a.com/a/b/..", "http://a.com/a/", "http://a.com/a"),
        // Scheme-relative links are followed by browsers.
        (
            "//example.com/x",
            "http://example.com/x",
            "(error: no host)",
        ),
    ] {
        assert_eq!(
            canonicalize(input).unwrap(),
            ours,
            "{input} (Go client: {go})"
        );
    }
}

/// The Go client's inputs without a host, and non-hierarchical schemes: errors.
#[test]
fn no_host_is_an_error() {
    for input in [
        "",
        ":",
        "/blah",
        "#ref",
        "/blah#ref",
        "?query#ref",
        "/blah?query#ref",
        "/blah;param",
        "http://#ref",
        "http:///blah#ref",
        "http://?query#ref",
        "http:///blah?query#ref",
        "http:///blah;param",
        "http:///blah;param?query#ref",
        "mailto:bryner@google.com",
        "http:www.google.com:8080/foo.html",
        "www.google.com:xxyy/foo.html:80",
    ] {
        let err = canonicalize(input).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Empty | Error::MissingHost | Error::NotHierarchical { .. }
            ),
            "{input:?}: {err:?}"
        );
    }
}

#[test]
fn more_ip_forms_and_userinfo() {
    for (input, want) in [
        ("http://0xC0.0250.1/x", "http://192.168.0.1/x"),
        ("http://192.168.1/x", "http://192.168.0.1/x"),
        ("http://0300.0250.0.1/", "http://192.168.0.1/"),
        ("http://user:pass@example.com:8080/", "http://example.com/"),
        ("http://a@b@example.com/", "http://example.com/"),
        // Escaped delimiters in the user info stay in it, as in a browser: the host is still
        // found (unescaping first made the host "x").
        ("http://x%2F@listed.com/a.jpg", "http://listed.com/a.jpg"),
        ("http://x%3F@listed.com/a.jpg", "http://listed.com/a.jpg"),
        ("http://x%23y@listed.com/a.jpg", "http://listed.com/a.jpg"),
        ("x%2F@listed.com/a.jpg", "http://listed.com/a.jpg"),
        ("http://u%2F:p%3F@listed.com:81/", "http://listed.com/"),
        // Tab, CR and LF are dropped first, so they cannot hide the scheme and the user info.
        ("http:\t//x%2F@listed.com/a.jpg", "http://listed.com/a.jpg"),
        ("ht\ttp://x%2F@listed.com/a.jpg", "http://listed.com/a.jpg"),
        ("http://x\n%2F@listed.com/a.jpg", "http://listed.com/a.jpg"),
        ("http://%65xample.com/%7e", "http://example.com/~"),
        ("HTTP://EXAMPLE.COM/Path", "http://example.com/Path"),
        ("http://example.com/a%0Ab", "http://example.com/a%0Ab"),
        (
            "http://example.com/%E2%80%A8",
            "http://example.com/%E2%80%A8",
        ),
        ("http://\u{444}.example/", "http://xn--t1a.example/"),
    ] {
        assert_eq!(canonicalize(input).unwrap(), want, "{input}");
    }
}
