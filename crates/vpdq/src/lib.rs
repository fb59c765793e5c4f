//! vPDQ, Meta's video hash: PDQ of selected decoded frames (`../shared/docs/pdq.md`, "vPDQ").
//!
//! This crate is pure: frames arrive as RGB24 pixels from the media crate, and no decoder or
//! file is touched here.

use safeguard_pdq::PdqHash;

/// One hashed frame of a video.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VpdqFrame {
    /// 0-based index of the frame in decode-output order (not a PTS).
    pub frame_number: u64,
    /// PDQ quality, 0..=100.
    pub quality: u8,
    /// PDQ hash of the frame.
    pub hash: PdqHash,
    /// Seconds: `frame_number / fps`, computed in f32 as the reference does, then widened.
    pub timestamp: f64,
}

/// Errors of vPDQ hashing, parsing and matching.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A frame is smaller than PDQ's minimum hashable size (the reference throws too).
    #[error("frame {width}x{height} is smaller than the minimum hashable dimension")]
    FrameTooSmall {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
    },
    /// A textual vPDQ value could not be parsed.
    #[error("invalid vPDQ value: {0}")]
    Parse(String),
}
