//! PDQ perceptual hashing, bit-exact with the values in shared hash banks.
//!
//! This crate is pure: RGB pixels in, [`PdqHash`] and quality out. Decoding files is the
//! `safeguard-media` crate's job. The computation follows `docs/pdq.md` step by step; every
//! float operation happens in the reference's order, because banks hold hashes whose bits
//! depend on that order.

mod compat;
mod dct;
mod downscale;
mod hash;
mod hasher;
mod luma;
mod median;
mod transpose;

pub use compat::{squash_nearest, CPP_DOWNSAMPLE_SIDE};
pub use dct::Dihedral;
pub use hash::{PdqHash, PDQ_BITS};
pub use hasher::{hash_rgb, DihedralHashes, Hasher, PdqOutput, Pixels, MIN_HASHABLE_DIM};
pub use luma::LumaMode;

/// The conventional match threshold: Hamming distance at most 31.
pub const DEFAULT_MATCH_DISTANCE: u32 = 31;

/// The conventional quality gate: hashes below this are not matched.
pub const DEFAULT_MIN_QUALITY: u8 = 50;

/// Errors of this crate.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A hash string that is not 64 hex digits.
    #[error("invalid PDQ hex: {0}")]
    InvalidHex(String),
    /// A pixel buffer whose length does not match its stated dimensions.
    #[error("pixel buffer holds {actual} bytes, {width}x{height} needs {expected}")]
    BadBuffer {
        /// Stated width.
        width: usize,
        /// Stated height.
        height: usize,
        /// Bytes the dimensions need.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
}
