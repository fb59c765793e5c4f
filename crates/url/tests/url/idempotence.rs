//! Canonicalisation is idempotent: the canonical form of a canonical URL is itself.

use proptest::prelude::*;
use safeguard_url::{canonicalize, canonicalize_bytes, CanonicalUrl};

/// Pieces that exercise every rule: escapes (nested, broken, of delimiters), dots, IP forms,
/// IDN, user info, ports, brackets, controls and bytes >= 0x80.
fn piece() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "%",
        "%2",
        "%25",
        "%252",
        "%2e",
        "%2E",
        "%2f",
        "%3F",
        "%23",
        "%40",
        "%3a",
        "%5B",
        "%5d",
        "%00",
        "%0a",
        "%20",
        "%80",
        "%C3%BC",
        "%ff",
        ".",
        "..",
        "/",
        "//",
        "?",
        "#",
        "@",
        ":",
        ":80",
        "[",
        "]",
        "[::1]",
        "[::ffff:1.2.3.4]",
        "0x7f",
        "017",
        "3279880203",
        "1.2.3",
        "a",
        "B",
        "xn--",
        "ü",
        "Ü",
        "ｅ",
        "。",
        "／",
        "\t",
        "\n",
        " ",
        "\\",
        "http://",
        "HTTPS://",
        "example",
        "com",
        "~",
        "&",
        "=",
    ])
    .prop_map(String::from)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn idempotent_on_url_like_strings(pieces in prop::collection::vec(piece(), 1..16)) {
        let input: String = pieces.concat();
        if let Ok(once) = canonicalize(&input) {
            let twice = canonicalize(&once);
            prop_assert_eq!(twice.as_ref(), Ok(&once), "input {:?}", input);
            // And the parts are what the accessors say.
            let c = CanonicalUrl::parse(&once).unwrap();
            let rebuilt = format!("{}://{}{}", c.scheme(), c.host(), c.path());
            let rebuilt = match c.query() { Some(q) => format!("{rebuilt}?{q}"), None => rebuilt };
            prop_assert_eq!(rebuilt, once);
        }
    }

    #[test]
    fn idempotent_on_any_string(input in "\\PC{0,40}") {
        if let Ok(once) = canonicalize(&input) {
            prop_assert_eq!(canonicalize(&once), Ok(once.clone()), "input {:?}", input);
        }
    }

    #[test]
    fn idempotent_on_any_bytes(input in prop::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(once) = canonicalize_bytes(&input) {
            prop_assert_eq!(canonicalize(&once), Ok(once.clone()), "input {:?}", input);
        }
    }

    #[test]
    fn canonical_form_is_printable_ascii(input in prop::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(once) = canonicalize_bytes(&input) {
            prop_assert!(once.bytes().all(|b| b > b' ' && b < 0x7f && b != b'#'), "{:?}", once);
        }
    }
}
