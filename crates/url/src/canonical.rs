//! Safe Browsing canonicalisation of a whole URL.
//!
//! The rules are those of the "Canonicalization" section of Google's Safe Browsing "URLs and
//! Hashing" page (v4, with v5's IPv6 addition), with the published vectors as tests
//! (`tests/canonical.rs`). Where the text is silent, behaviour follows Google's Go client
//! (github.com/google/safebrowsing, `urls.go`), which those vectors were written against. Each
//! place that departs from the WHATWG URL Standard (and so from the `url` crate) says so.

use std::fmt;
use std::ops::Range;

use crate::host::write_host;
use crate::{Error, MAX_URL_BYTES};

/// A URL in Safe Browsing canonical form: `scheme://host/path` with an optional `?query`,
/// percent-escaped so that it holds only printable ASCII other than `#` and `%` (which appear
/// only as the start of escapes).
///
/// Invariant: `text` is its own canonical form ([`CanonicalUrl::parse`] of it gives it back),
/// and the ranges split it: `host` starts after `://`, `path` follows it and starts with `/`,
/// and a query (when there is one) is everything after the `?` that ends `path`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CanonicalUrl {
    text: String,
    host: Range<usize>,
    path_end: usize,
    is_ip: bool,
}

impl CanonicalUrl {
    /// Canonicalises `url`. A missing scheme means `http`.
    pub fn parse(url: &str) -> Result<CanonicalUrl, Error> {
        Self::parse_bytes(url.as_bytes())
    }

    /// As [`CanonicalUrl::parse`], for input that need not be UTF-8 (Safe Browsing's vectors
    /// include raw bytes such as `http://\x01\x80.com/`).
    pub fn parse_bytes(url: &[u8]) -> Result<CanonicalUrl, Error> {
        // "If the URL ends in a fragment, remove the fragment": the fragment starts at the
        // first '#', found before unescaping so that an escaped %23 stays part of the path.
        // Cut before the length check: a browser never sends the fragment, so a long one
        // must not make a listed link unmatchable.
        let url = match url.iter().position(|&b| b == b'#') {
            Some(i) => &url[..i],
            None => url,
        };
        if url.len() > MAX_URL_BYTES {
            return Err(Error::UrlTooLong {
                len: url.len(),
                max: MAX_URL_BYTES,
            });
        }
        // Leading and trailing spaces and controls go, as in the WHATWG parser and the Go
        // client ("  http://www.google.com/  "); inner ones stay and get escaped
        // ("http:// leadingspace.com/").
        let url = trim_c0_space(url);
        if url.is_empty() {
            return Err(Error::Empty);
        }
        let url = strip_user_info(url);
        let raw = unescape_fully(&url);

        let (scheme, rest) = split_scheme(&raw)?;
        // The query starts at the first '?' of the unescaped URL and keeps everything after
        // it, including further '?' ("http://www.google.com/q?r?s" keeps "r?s").
        let (before_query, query) = match rest.iter().position(|&b| b == b'?') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (authority, path) = match before_query.iter().position(|&b| b == b'/') {
            Some(i) => before_query.split_at(i),
            None => (before_query, &[][..]),
        };
        // User info ends at the last '@' of the authority, as in browsers.
        let host_port = match authority.iter().rposition(|&b| b == b'@') {
            Some(i) => &authority[i + 1..],
            None => authority,
        };

        // Everything is written, escaped, into one buffer: one allocation besides `raw`.
        let mut text = Vec::with_capacity(raw.len() + 16);
        match scheme {
            Some(scheme) => text.extend(scheme.iter().map(u8::to_ascii_lowercase)),
            None => text.extend_from_slice(b"http"),
        }
        text.extend_from_slice(b"://");
        let host_start = text.len();
        let is_ip = write_host(host_port, &mut text).ok_or(Error::MissingHost)?;
        let host_end = text.len();
        write_path(path, &mut text);
        let path_end = text.len();
        if let Some(query) = query {
            text.push(b'?');
            escape_into(query, &mut text);
        }
        // Escaping can triple a byte: a canonical form over the limit would not parse again
        // (the engine parses list entries and lookups from their text), so it is refused
        // here, as a long input is.
        if text.len() > MAX_URL_BYTES {
            return Err(Error::UrlTooLong {
                len: text.len(),
                max: MAX_URL_BYTES,
            });
        }
        // Escaping leaves only printable ASCII, and the scheme is ASCII letters and digits.
        let text = String::from_utf8(text).expect("escaped URL is ASCII");
        Ok(CanonicalUrl {
            text,
            host: host_start..host_end,
            path_end,
            is_ip,
        })
    }

    /// The whole canonical URL.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The canonical URL without `scheme://`: the form list entries and expressions take.
    pub fn without_scheme(&self) -> &str {
        &self.text[self.host.start..]
    }

    /// The form a list entry is stored and looked up in ([`crate::entry_expression`]):
    /// without the scheme, and without a bare `?` (`host/path` or `host/path?query`).
    pub fn entry_expression(&self) -> String {
        match self.query() {
            Some(q) if !q.is_empty() => self.without_scheme().to_string(),
            _ => format!("{}{}", self.host(), self.path()),
        }
    }

    /// The scheme, lowercase.
    pub fn scheme(&self) -> &str {
        &self.text[..self.host.start - 3]
    }

    /// The host, escaped: a lowercase name, dotted-decimal IPv4 or bracketed IPv6.
    pub fn host(&self) -> &str {
        &self.text[self.host.clone()]
    }

    /// Whether the host is an IP address (Safe Browsing checks no host suffixes for those).
    pub fn host_is_ip(&self) -> bool {
        self.is_ip
    }

    /// The path, starting with `/`, escaped.
    pub fn path(&self) -> &str {
        &self.text[self.host.end..self.path_end]
    }

    /// The query without its `?`: `None` when the URL has no `?`, `Some("")` for a bare `?`.
    pub fn query(&self) -> Option<&str> {
        self.text
            .get(self.path_end + 1..)
            .filter(|_| self.text.len() > self.path_end)
    }

    /// The path followed by `?query`, or the path alone when there is no query.
    pub(crate) fn path_and_query(&self) -> &str {
        &self.text[self.host.end..]
    }

    /// The canonical URL as a `String`.
    pub fn into_string(self) -> String {
        self.text
    }
}

impl fmt::Display for CanonicalUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for CanonicalUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CanonicalUrl").field(&self.text).finish()
    }
}

/// Canonicalises `url` as Safe Browsing specifies; see [`CanonicalUrl`].
pub fn canonicalize(url: &str) -> Result<String, Error> {
    CanonicalUrl::parse(url).map(CanonicalUrl::into_string)
}

/// [`canonicalize`] for input that need not be UTF-8.
pub fn canonicalize_bytes(url: &[u8]) -> Result<String, Error> {
    CanonicalUrl::parse_bytes(url).map(CanonicalUrl::into_string)
}

fn trim_c0_space(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if *first > b' ' {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if *last > b' ' {
            break;
        }
        s = rest;
    }
    s
}

/// Removes tab, CR and LF, then percent-unescapes until no escape is left, in one linear pass.
///
/// The spec says "repeatedly percent-unescape the URL until it has no more percent-escapes";
/// the Go client runs whole passes and gives up after 1,024 of them. One pass with a stack
/// gives the same result without the cap: after each byte is appended, if the output ends in
/// `%XX` those three bytes become one, and that byte may complete another escape, so check
/// again. Two escapes can never overlap (the bytes after a '%' are hex digits, not '%'), so
/// the order in which escapes are undone cannot change the result: the stack reaches the same
/// fixed point as repeated passes, in time linear in the input (each step shortens the output
/// by two), where passes take quadratic time on "%252525...". A property test below checks the
/// two against each other on random input. Input that needs more than 1,024 passes is an
/// error in the Go client and canonicalises here.
fn unescape_fully(input: &[u8]) -> Vec<u8> {
    // Most URLs have no escapes and no tabs or newlines: a copy is all they need.
    if !input
        .iter()
        .any(|&b| matches!(b, b'%' | b'\t' | b'\r' | b'\n'))
    {
        return input.to_vec();
    }
    let mut out = Vec::with_capacity(input.len());
    for &b in input {
        // Literal tab, CR and LF are removed first; escaped ones (%0A) are kept and escaped
        // again on output, as the spec says.
        if matches!(b, b'\t' | b'\r' | b'\n') {
            continue;
        }
        out.push(b);
        while let [.., b'%', hi, lo] = out[..] {
            let (Some(hi), Some(lo)) = (hex_value(hi), hex_value(lo)) else {
                break;
            };
            out.truncate(out.len() - 3);
            out.push(hi << 4 | lo);
        }
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits off the scheme as the Go client does, and returns it lowercase.
///
/// A scheme is a letter followed by letters, digits, '+', '-' or '.', then ':'. A ':' followed
/// by digits and then '/', '?' or the end is a port, not a scheme ("www.google.com:80/"). No
/// scheme means `http` (spec: "www.google.com" -> "http://www.google.com/"); a scheme without
/// "//" after it (mailto:, javascript:) names no host and is an error. A URL starting with
/// "//" (scheme-relative, as in HTML) is taken as http too, where the Go client finds no host;
/// browsers follow such links, so a list must match them.
///
/// The scheme (`None` for none, meaning http) is lowercased by the caller, as RFC 3986 allows; the Go client keeps its case, which would
/// make "HTTP://a/" and "http://a/" two canonical forms of one URL.
/// Removes the user info (up to the last '@' of the authority) before anything is unescaped.
/// To a browser an escaped '/' or '?' in it ("http://x%2F@listed.com/a.jpg") is part of the
/// user info, and the request goes to listed.com; unescaped first, it would end the
/// authority early and hide the host behind a host "x". Departs from Safe Browsing's order
/// (unescape, then parse), whose result no browser visits. An '@' that is itself escaped is
/// left for the check after unescaping, as before.
fn strip_user_info(url: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use std::borrow::Cow;
    // Tab, CR and LF go first, as a browser drops them before it parses: left in, one would
    // hide the scheme's "//" ("http:\t//x%2F@listed.com/") and so the user info.
    let url: Cow<'_, [u8]> = if url.iter().any(|b| matches!(b, b'\t' | b'\r' | b'\n')) {
        Cow::Owned(
            url.iter()
                .copied()
                .filter(|b| !matches!(b, b'\t' | b'\r' | b'\n'))
                .collect(),
        )
    } else {
        Cow::Borrowed(url)
    };
    let Ok((_, rest)) = split_scheme(&url) else {
        return url; // refused again, with its error, after unescaping
    };
    let start = url.len() - rest.len();
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    match rest[..end].iter().rposition(|&b| b == b'@') {
        Some(at) => {
            let mut out = url[..start].to_vec();
            out.extend_from_slice(&rest[at + 1..]);
            Cow::Owned(out)
        }
        None => url,
    }
}

fn split_scheme(url: &[u8]) -> Result<(Option<&[u8]>, &[u8]), Error> {
    let mut scheme_end = None;
    for (i, &c) in url.iter().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i > 0 => {
                if !is_port(&url[i + 1..]) {
                    scheme_end = Some(i);
                }
                break;
            }
            _ => break,
        }
    }
    match scheme_end {
        Some(end) => match url[end + 1..].strip_prefix(b"//") {
            Some(rest) => Ok((Some(&url[..end]), rest)),
            None => Err(Error::NotHierarchical {
                scheme: String::from_utf8_lossy(&url[..end]).to_ascii_lowercase(),
            }),
        },
        None => Ok((None, url.strip_prefix(b"//").unwrap_or(url))),
    }
}

/// Whether `s` (what follows a ':') starts with a port: digits, then '/', '?' or the end.
fn is_port(s: &[u8]) -> bool {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && matches!(s.get(digits), None | Some(b'/') | Some(b'?'))
}

/// Canonicalises a raw (unescaped) path and appends it, escaped, to `out`: resolves "." and
/// ".." segments and collapses runs of '/'. An empty path becomes "/".
///
/// A path ending in a "." or ".." segment keeps a trailing slash ("/a/b/.." -> "/a/"), as
/// in the URL Standard and Chrome: such a path names a directory. The Go client's
/// `path.Clean` drops the slash ("/a"); the spec's own vector ("/blah/.." -> "/") cannot tell
/// the two apart, and the directory reading is the one that makes a listed folder match.
fn write_path(path: &[u8], out: &mut Vec<u8>) {
    // While segments are added, `out[start..]` is "/" followed by escaped segments, each
    // ending in '/'. An escaped segment holds no '/', so ".." can find the one before it.
    let start = out.len();
    out.push(b'/');
    let mut trailing_slash = false;
    for segment in path.split(|&b| b == b'/') {
        match segment {
            b"" => {}
            b"." => trailing_slash = true,
            b".." => {
                let written = &out[start..out.len() - 1];
                if let Some(slash) = written.iter().rposition(|&b| b == b'/') {
                    out.truncate(start + slash + 1);
                }
                trailing_slash = true;
            }
            _ => {
                escape_into(segment, out);
                out.push(b'/');
                trailing_slash = false;
            }
        }
    }
    if path.last() == Some(&b'/') {
        trailing_slash = true;
    }
    if !trailing_slash && out.len() > start + 1 {
        out.pop();
    }
}

/// Percent-escapes, with uppercase hex as the spec asks, every byte <= 0x20 or >= 0x7F, '#'
/// and '%'. (The Go client writes lowercase hex; the spec's text and vectors are uppercase.)
fn escape_into(raw: &[u8], out: &mut Vec<u8>) {
    for &b in raw {
        push_escaped(b, out);
    }
}

/// One byte of [`escape_into`].
pub(crate) fn push_escaped(b: u8, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    if b <= 0x20 || b >= 0x7f || b == b'#' || b == b'%' {
        out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
    } else {
        out.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Repeated whole-string unescaping, the spec's wording taken literally; the oracle for the
    /// linear version above.
    fn unescape_by_passes(input: &[u8]) -> Vec<u8> {
        let mut s: Vec<u8> = input
            .iter()
            .copied()
            .filter(|b| !matches!(b, b'\t' | b'\r' | b'\n'))
            .collect();
        loop {
            let mut out = Vec::with_capacity(s.len());
            let mut i = 0;
            while i < s.len() {
                if s[i] == b'%' && i + 2 < s.len() {
                    if let (Some(hi), Some(lo)) = (hex_value(s[i + 1]), hex_value(s[i + 2])) {
                        out.push(hi << 4 | lo);
                        i += 3;
                        continue;
                    }
                }
                out.push(s[i]);
                i += 1;
            }
            if out == s {
                return s;
            }
            s = out;
        }
    }

    fn path(p: &str) -> String {
        let mut out = Vec::new();
        write_path(p.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn paths() {
        // The Go client's canonicalPath vectors, plus the directory cases it differs on.
        for (input, want) in [
            ("", "/"),
            ("/", "/"),
            ("/foo.html", "/foo.html"),
            ("/foo/.././bar/./../foo.html", "/foo.html"),
            ("/a/b/", "/a/b/"),
            ("/a/b/c", "/a/b/c"),
            ("//a//b///c////", "/a/b/c/"),
            ("/blah/..", "/"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/../../a", "/a"),
            ("/a/..b/.c", "/a/..b/.c"),
        ] {
            assert_eq!(path(input), want, "{input:?}");
        }
    }

    #[test]
    fn unescape_matches_passes_on_tricky_input() {
        for input in [
            &b"%2525252525252525"[..],
            b"%%%25%32%35asd%%",
            b"%2%35",
            b"%%41",
            b"%25%34%31",
            b"%%34%31",
            b"%\t41",
            b"%0a%0A%",
        ] {
            assert_eq!(
                unescape_fully(input),
                unescape_by_passes(input),
                "{input:?}"
            );
        }
        assert_eq!(unescape_fully(b"%25%34%31"), b"A");
        assert_eq!(unescape_fully(b"%\t41"), b"A");
    }

    proptest::proptest! {
        #[test]
        fn unescape_matches_passes(input in proptest::collection::vec(
            proptest::sample::select(b"%%%2534aAfFgG\t\n0".to_vec()), 0..40)) {
            proptest::prop_assert_eq!(unescape_fully(&input), unescape_by_passes(&input));
        }
    }

    #[test]
    fn schemes() {
        assert_eq!(
            split_scheme(b"HTTPS://x").unwrap(),
            (Some(&b"HTTPS"[..]), &b"x"[..])
        );
        assert_eq!(split_scheme(b"www.google.com:80/").unwrap().0, None);
        assert_eq!(split_scheme(b"example.com:8080?q").unwrap().0, None);
        assert_eq!(
            split_scheme(b"//example.com/").unwrap(),
            (None, &b"example.com/"[..])
        );
        assert!(matches!(
            split_scheme(b"mailto:a@b.c"),
            Err(Error::NotHierarchical { .. })
        ));
        assert!(matches!(
            split_scheme(b"http:www.google.com:8080/"),
            Err(Error::NotHierarchical { .. })
        ));
    }

    #[test]
    fn parts() {
        let c = CanonicalUrl::parse("HTTP://User:pw@WWW.Example.com:8080/a/./b//c.html?x=1#frag")
            .unwrap();
        assert_eq!(c.as_str(), "http://www.example.com/a/b/c.html?x=1");
        assert_eq!(c.scheme(), "http");
        assert_eq!(c.host(), "www.example.com");
        assert_eq!(c.path(), "/a/b/c.html");
        assert_eq!(c.query(), Some("x=1"));
        assert_eq!(c.without_scheme(), "www.example.com/a/b/c.html?x=1");
        assert!(!c.host_is_ip());
        let c = CanonicalUrl::parse("example.com/q?").unwrap();
        assert_eq!(c.query(), Some(""));
        let c = CanonicalUrl::parse("example.com").unwrap();
        assert_eq!(c.query(), None);
        assert_eq!(c.path(), "/");
        assert!(CanonicalUrl::parse("http://3279880203/")
            .unwrap()
            .host_is_ip());
    }

    #[test]
    fn limits_and_errors() {
        assert_eq!(canonicalize(""), Err(Error::Empty));
        assert_eq!(canonicalize(" \t "), Err(Error::Empty));
        assert_eq!(canonicalize("#frag"), Err(Error::Empty));
        assert_eq!(canonicalize("/blah"), Err(Error::MissingHost));
        assert_eq!(canonicalize("http:///blah"), Err(Error::MissingHost));
        let long = format!("http://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert!(matches!(canonicalize(&long), Err(Error::UrlTooLong { .. })));
        // Under the limit as given, over it escaped: refused, so every canonical URL parses
        // again.
        let escaped = format!("http://example.com/{}", "\u{e9}".repeat(MAX_URL_BYTES / 4));
        assert!(escaped.len() <= MAX_URL_BYTES);
        assert!(matches!(
            canonicalize(&escaped),
            Err(Error::UrlTooLong { .. })
        ));
        // A fragment is cut before the check: a browser never sends it.
        let fragment = format!("http://example.com/a#{}", "f".repeat(MAX_URL_BYTES));
        assert_eq!(canonicalize(&fragment).unwrap(), "http://example.com/a");
    }
}
