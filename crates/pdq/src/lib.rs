//! PDQ perceptual hashing, bit-exact with the values in shared hash banks.
//!
//! This crate is pure: RGB pixels in, [`PdqHash`] and quality out. Decoding files is the
//! `safeguard-media` crate's job. The computation follows `docs/pdq.md` step by step; every
//! float operation happens in the reference's order, because banks hold hashes whose bits
//! depend on that order.

mod hash;

pub use hash::{PdqHash, PDQ_BITS};

/// Errors of this crate.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A hash string that is not 64 hex digits.
    #[error("invalid PDQ hex: {0}")]
    InvalidHex(String),
    /// A pixel buffer whose length does not match its stated dimensions.
    #[error("pixel buffer holds {actual} bytes, {width}x{height} RGB needs {expected}")]
    BadBuffer {
        width: usize,
        height: usize,
        expected: usize,
        actual: usize,
    },
}
