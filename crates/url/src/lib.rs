//! URLs for child-safety URL lists (signal type `url`): canonicalise as Google Safe Browsing
//! does, build the host-suffix × path-prefix lookup expressions, match them against a list,
//! and find URLs in message text, including defanged and disguised ones.
//!
//! - [`canonicalize`] / [`CanonicalUrl::parse`]: the Safe Browsing canonical form
//!   (`http://host/path?query`). Hand-written where Safe Browsing departs from the WHATWG URL
//!   Standard the `url` crate implements (repeated unescaping, `//` collapsing, dots in hosts,
//!   percent-escaped hosts); the `url` crate parses IP addresses and `idna` converts IDNs.
//! - [`expressions`]: the up to 5 × 6 strings a URL is looked up under.
//! - [`UrlList`]: a list of entries (pages, folders, whole domains) answering which entries a
//!   URL falls under, holding fingerprints rather than strings (about 18 bytes per entry).
//! - [`UrlIndex`]: the same matching for a list that changes one entry at a time (the
//!   engine's live index), entries stored in [`entry_expression`] form.
//! - [`extract_urls`]: URLs in text, after undoing `hxxp`, `[.]`, ` dot `, spaced dots and
//!   full-width characters.
//!
//! Nothing here does I/O. `docs/urls.md` describes the rules, the limits and the benchmark.

#![forbid(unsafe_code)]

mod canonical;
mod expression;
mod extract;
mod host;
mod index;
mod list;

pub use canonical::{canonicalize, canonicalize_bytes, CanonicalUrl};
pub use expression::{expressions, MAX_HOST_SUFFIX_LABELS, MAX_PATH_PREFIX_COMPONENTS};
pub use extract::{extract_urls, MAX_EXTRACTED_URLS, MAX_TEXT_BYTES};
pub use index::{entry_expression, UrlIndex, MAX_INDEX_HOST_LABELS, MAX_INDEX_PATH_COMPONENTS};
pub use list::{UrlList, UrlListBuilder};

/// Longest URL, in bytes, [`canonicalize`] accepts.
///
/// Canonicalisation is linear in the input, so the cap is not about speed but about bounding
/// the memory one call may take. It equals [`MAX_TEXT_BYTES`] so that any URL found in text
/// can be canonicalised, and it is far above what servers accept (8 KiB is a common request
/// line limit): a sender cannot pad a URL past it and still have a working link in most
/// places. A longer URL is an error, never a silent "no match".
pub const MAX_URL_BYTES: usize = 64 * 1024;

/// Everything that can go wrong. All variants are bad input: the crate has no I/O and no
/// internal state that can be corrupted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is empty or only whitespace.
    #[error("empty URL")]
    Empty,
    /// The URL, or its canonical form (escaping can triple it), is longer than
    /// [`MAX_URL_BYTES`].
    #[error("URL is {len} bytes (without its fragment; canonical form if longer), over the limit of {max}")]
    UrlTooLong { len: usize, max: usize },
    /// The URL has a scheme without `//` after it (`mailto:`, `javascript:`, `data:`), so it
    /// names no host and cannot be on a URL list.
    #[error("URL scheme {scheme:?} is not followed by \"//\"; only hierarchical URLs have a host")]
    NotHierarchical { scheme: String },
    /// The URL has no host (`http:///path`, `/path`).
    #[error("URL has no host")]
    MissingHost,
    /// Text given to [`extract_urls`] is longer than [`MAX_TEXT_BYTES`].
    #[error("text is {len} bytes, over the limit of {max}")]
    TextTooLong { len: usize, max: usize },
    /// Text given to [`extract_urls`] holds more than [`MAX_EXTRACTED_URLS`] distinct URLs.
    #[error("text holds more than {max} distinct URLs")]
    TooManyUrls { max: usize },
    /// A list entry is not a URL; `index` counts entries from 0 in the order they were given.
    #[error("list entry {index}: {source}")]
    Entry {
        index: usize,
        #[source]
        source: Box<Error>,
    },
}
