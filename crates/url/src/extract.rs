//! URLs in message text, including the forms people use to slip a link past a filter:
//! "hxxp://", "example[.]com", "example(.)com", "example{.}com", "example dot com",
//! "example . com", full-width "ｅｘａｍｐｌｅ．ｃｏｍ", and bare domains ("example.com/a").

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

use icu_normalizer::ComposingNormalizerBorrowed;
use regex::Regex;

use crate::{CanonicalUrl, Error};

/// Longest text, in bytes, [`extract_urls`] reads. A chat message is far shorter; the cap
/// bounds the work and memory of one call (NFKC may grow text, by a bounded factor).
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Most distinct URLs [`extract_urls`] returns. More is an error rather than a cut: a
/// silent cut would let a sender hide a listed link behind a thousand harmless ones. It
/// matches the 1,000 URLs one `/v1/urls/check` request takes.
pub const MAX_EXTRACTED_URLS: usize = 1_000;

/// The URLs in `text`, canonicalised ([`crate::canonicalize`]) and deduplicated, in order of
/// first appearance.
///
/// The text is first made plain: NFKC (full-width and other compatibility forms become
/// ASCII), the ideographic full stop "。" becomes '.', zero-width characters go, and defanging
/// is undone: `hxxp`/`hxxps`, `[:]`, `[.]`, `(.)`, `{.}`, `<.>`, `[dot]` and the like, the
/// word "dot" between spaces, and spaces around a dot between two words. A dot with a space
/// only after it ("home. Then") is joined only when the next word is a top-level domain, so
/// ordinary sentences mostly stay apart; when they do not, the result is a harmless extra
/// lookup.
///
/// A URL is then either one with `http://`, `https://` or `ftp://`, or a bare host whose last
/// label is a top-level domain in the Public Suffix List (`psl` crate) or a dotted IPv4
/// address, optionally followed by a port, path and query. A host right before or after '@'
/// is part of an email address, not a link, and is skipped.
pub fn extract_urls(text: &str) -> Result<Vec<String>, Error> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(Error::TextTooLong {
            len: text.len(),
            max: MAX_TEXT_BYTES,
        });
    }
    let plain = deobfuscate(&normalize(text));
    let mut seen = HashSet::new();
    let mut urls = Vec::new();
    for m in CANDIDATE.find_iter(&plain) {
        let has_scheme = m.as_str().contains("://");
        // An email address ("name@example.com", "first.last@...") is not a link.
        if !has_scheme && (plain[..m.start()].ends_with('@') || plain[m.end()..].starts_with('@')) {
            continue;
        }
        let candidate = trim_trailing(m.as_str());
        if !has_scheme && !bare_host_is_plausible(candidate) {
            continue;
        }
        let url = match CanonicalUrl::parse(candidate) {
            Ok(url) => url,
            // Normalising and escaping lengthen text (NFKC turns one character into up to 18
            // bytes, escaping one byte into 3), so a link within the text limit can come out
            // over the URL limit: an error, as a URL over the limit always is, never a link
            // passed over.
            Err(e @ Error::UrlTooLong { .. }) => return Err(e),
            // Not a URL after all (no host, another scheme): not a link.
            Err(_) => continue,
        };
        let url = url.into_string();
        if seen.insert(url.clone()) {
            if urls.len() == MAX_EXTRACTED_URLS {
                return Err(Error::TooManyUrls {
                    max: MAX_EXTRACTED_URLS,
                });
            }
            urls.push(url);
        }
    }
    Ok(urls)
}

/// NFKC, then the few characters NFKC leaves that browsers still read as URL syntax or
/// ignore: the ideographic full stop (which hosts treat as '.', UTS 46) and invisible
/// characters dropped inside words to break them up.
fn normalize(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        return Cow::Borrowed(text);
    }
    let nfkc = ComposingNormalizerBorrowed::new_nfkc().normalize(text);
    let mapped: String = nfkc
        .chars()
        .filter_map(|c| match c {
            '\u{3002}' => Some('.'),
            '\u{00AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => None,
            c => Some(c),
        })
        .collect();
    Cow::Owned(mapped)
}

/// "hxxp", "hXXps", "h**p" -> "http"/"https", with "[:]" -> ":" and "[://]" -> "://" after
/// any of them or after a plain "http".
static SCHEME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\bh(?:tt|xx|\*\*)p(s?)(\[:\]|\[://\]|:)").expect("static regex")
});

/// A dot in brackets, "dot" in brackets, or the word "dot" between spaces, with any spaces
/// around it: "example [.] com", "example(dot)com", "example dot com".
static DOT_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\s*(?:\[\s*(?:\.|dot)\s*\]|\(\s*(?:\.|dot)\s*\)|\{\s*(?:\.|dot)\s*\}|<\s*(?:\.|dot)\s*>)\s*|\s+dot\s+")
        .expect("static regex")
});

/// A dot with whitespace on at least one side.
static SPACED_DOT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\s+\.\s*|\.\s+").expect("static regex"));

/// A URL with a scheme, or a bare host of two or more labels with an optional port, path
/// and query. What counts as a URL character is generous (anything but space, quotes, angle
/// brackets and the characters RFC 3986 excludes); the end is trimmed afterwards.
static CANDIDATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?ix)
        \b(?:https?|ftp)://[^\s<>"'`{}|\\^]+
        |
        \b(?:[\p{L}\p{N}][\p{L}\p{N}_-]*\.)+[\p{L}\p{N}-]+\b
          (?:[:/?][^\s<>"'`{}|\\^]*)?
        "#,
    )
    .expect("static regex")
});

fn deobfuscate(text: &str) -> String {
    let text = SCHEME.replace_all(text, |c: &regex::Captures<'_>| {
        let separator = if c[2].contains("//") { "://" } else { ":" };
        format!("http{}{separator}", &c[1])
    });
    let text = DOT_WORD.replace_all(&text, ".");
    // Spaced dots need their context (a word on both sides; a top-level domain after a dot
    // with a space only after it), which a replacement closure does not see: walk by hand.
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in SPACED_DOT.find_iter(&text) {
        let before = text[..m.start()].chars().next_back();
        let after = text[m.end()..].chars().next();
        let word_before = before.is_some_and(|c| c.is_alphanumeric() || c == '-');
        let word_after = after.is_some_and(char::is_alphanumeric);
        let space_before = m.as_str().starts_with(char::is_whitespace);
        let join = word_before
            && word_after
            && (space_before || {
                let next: String = text[m.end()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '-')
                    .collect();
                is_tld(&next)
            });
        if join {
            out.push_str(&text[last..m.start()]);
            out.push('.');
            last = m.end();
        }
    }
    out.push_str(&text[last..]);
    out
}

/// Drops sentence punctuation after a URL, keeping closing brackets that close one opened
/// inside it ("https://en.example/wiki/A_(b)").
fn trim_trailing(s: &str) -> &str {
    // Bracket counts are taken once and updated as characters are dropped: recounting for
    // each dropped character would be quadratic on a URL followed by thousands of ')'.
    let open = [s.matches('(').count(), s.matches('[').count()];
    let mut close = [s.matches(')').count(), s.matches(']').count()];
    let mut end = s.len();
    for c in s.chars().rev() {
        let drop = match c {
            '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '"' => true,
            ')' | ']' => {
                let k = usize::from(c == ']');
                let unbalanced = open[k] < close[k];
                if unbalanced {
                    close[k] -= 1;
                }
                unbalanced
            }
            _ => false,
        };
        if !drop {
            break;
        }
        end -= c.len_utf8();
    }
    &s[..end]
}

/// A bare candidate is a URL when its host ends in a known top-level domain or is a dotted
/// IPv4 address ("1.2.3.4/x"); "file.txt" and "version 1.2" are not.
fn bare_host_is_plausible(candidate: &str) -> bool {
    let host = candidate.split(['/', '?', ':']).next().unwrap_or(candidate);
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() == 4
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()))
    {
        return true;
    }
    labels.last().is_some_and(|tld| is_tld(tld))
}

/// Whether `label` is a top-level domain in the Public Suffix List (ICANN or private
/// section; either way a name people can register under or use).
fn is_tld(label: &str) -> bool {
    if label.is_empty() || label.len() > 63 {
        return false;
    }
    let lower = label.to_lowercase();
    let ascii: Cow<'_, str> = if lower.is_ascii() {
        Cow::Borrowed(&lower)
    } else {
        match idna::domain_to_ascii(&lower) {
            Ok(a) => Cow::Owned(a),
            Err(_) => return false,
        }
    };
    // psl answers for the longest matching rule; a rule for the whole label alone is a TLD.
    psl::suffix(ascii.as_bytes()).is_some_and(|s| s.is_known() && s.as_bytes() == ascii.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlds() {
        assert!(is_tld("com"));
        assert!(is_tld("COM"));
        assert!(is_tld("uk"));
        assert!(is_tld("рф"));
        assert!(!is_tld("txt"));
        assert!(!is_tld("html"));
        assert!(!is_tld(""));
    }

    #[test]
    fn trimming() {
        assert_eq!(trim_trailing("example.com/a."), "example.com/a");
        assert_eq!(trim_trailing("example.com/a),"), "example.com/a");
        assert_eq!(trim_trailing("example.com/A_(b)"), "example.com/A_(b)");
        assert_eq!(trim_trailing("example.com/A_(b))"), "example.com/A_(b)");
        assert_eq!(trim_trailing("example.com/[a]]."), "example.com/[a]");
        // Linear: a long tail of brackets is no quadratic trap.
        let tail = format!("example.com/a{}", ")".repeat(60_000));
        assert_eq!(trim_trailing(&tail), "example.com/a");
    }

    #[test]
    fn deobfuscation_steps() {
        assert_eq!(deobfuscate("hxxps://example[.]com"), "https://example.com");
        assert_eq!(deobfuscate("hXXp[:]//example(.)com"), "http://example.com");
        assert_eq!(deobfuscate("example dot com"), "example.com");
        assert_eq!(deobfuscate("example . com"), "example.com");
        assert_eq!(deobfuscate("example .com"), "example.com");
        assert_eq!(deobfuscate("example. com"), "example.com");
        assert_eq!(
            deobfuscate("I went home. Then I slept."),
            "I went home. Then I slept."
        );
        assert_eq!(normalize("ｅｘａｍｐｌｅ。ｃｏｍ"), "example.com");
        assert_eq!(normalize("exa\u{200B}mple.com"), "example.com");
    }
}
