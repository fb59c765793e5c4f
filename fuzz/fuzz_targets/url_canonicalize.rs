//! URL canonicalisation (`safeguard_url::canonicalize_bytes`) on any bytes, the lookup
//! expressions of what it returns, and, when the input is UTF-8, URL extraction from it as
//! message text.
//!
//! Checked: no panic and no hang on any input; a canonical URL is printable ASCII without
//! '#', is its own canonical form (idempotence), and gives 1 to 30 expressions that all start
//! with a suffix of its host and end with a prefix of its path and query; every URL extracted
//! from text is canonical too; errors are the documented bad-input variants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use safeguard_url::{
    canonicalize, canonicalize_bytes, expressions, extract_urls, CanonicalUrl, Error,
};

fuzz_target!(|data: &[u8]| {
    match canonicalize_bytes(data) {
        Ok(once) => {
            assert!(
                once.bytes().all(|b| b > b' ' && b < 0x7f && b != b'#'),
                "not printable: {once:?}"
            );
            assert_eq!(
                canonicalize(&once).as_ref(),
                Ok(&once),
                "not idempotent: input {data:?}"
            );
            let url = CanonicalUrl::parse(&once).expect("canonical URL parses");
            let exprs = expressions(&url);
            assert!(
                (1..=30).contains(&exprs.len()),
                "{} expressions for {once:?}",
                exprs.len()
            );
            for e in &exprs {
                let slash = e.find('/').expect("expression has a path");
                assert!(
                    url.host().ends_with(&e[..slash]),
                    "{e:?} host not a suffix of {once:?}"
                );
                assert!(
                    url.without_scheme()[url.host().len()..]
                        .starts_with(&e[slash..e.find('?').unwrap_or(e.len())]),
                    "{e:?} path not a prefix of {once:?}"
                );
            }
        }
        Err(
            Error::Empty
            | Error::UrlTooLong { .. }
            | Error::MissingHost
            | Error::NotHierarchical { .. },
        ) => {}
        Err(e) => panic!("unexpected error variant: {e:?}"),
    }
    if let Ok(text) = std::str::from_utf8(data) {
        match extract_urls(text) {
            Ok(urls) => {
                for u in urls {
                    assert_eq!(
                        canonicalize(&u).as_ref(),
                        Ok(&u),
                        "extracted URL not canonical, text {text:?}"
                    );
                }
            }
            Err(Error::TextTooLong { .. } | Error::TooManyUrls { .. }) => {}
            Err(e) => panic!("unexpected error variant from extract_urls: {e:?}"),
        }
    }
});
