//! vPDQ, Meta's video hash: PDQ of selected decoded frames (`../shared/docs/pdq.md`, "vPDQ").
//!
//! This crate is pure: frames arrive as RGB24 pixels from the media crate, and no decoder or
//! file is touched here.
//!
//! * [`format`]: the text forms of a vPDQ value (the reference CLI's lines, python-threatexchange's
//!   per-frame strings and their JSON list, which is also Safeguard's canonical stored form).
//! * [`compare`]: video-to-video matching exactly as python-threatexchange does it (the two
//!   percentages and their thresholds, [`VpdqMatchConfig`]).
//! * [`index`]: [`VpdqIndex`], the frames of many videos behind one PDQ radius index,
//!   aggregated per video; it returns what pairwise [`compare()`] would.

#![forbid(unsafe_code)]

pub mod compare;
pub mod format;
pub mod hasher;
pub mod index;

pub use compare::{compare, prepare, MatchPercent, VpdqMatchConfig};
pub use format::{MAX_FRAMES, MAX_TEXT_BYTES};
pub use index::{reduce, VideoMatch, VpdqIndex};

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
    /// A sampling interval or frame rate that cannot select frames (negative, NaN, infinite).
    #[error("invalid frame sampling: {0}")]
    InvalidSampling(String),
    /// A frame buffer whose length does not match its dimensions.
    #[error("bad frame buffer: {0}")]
    BadFrame(String),
    /// A vPDQ value with more frames than [`MAX_FRAMES`].
    #[error("vPDQ value has {frames} frames; the limit is {max}")]
    TooManyFrames {
        /// Frames in the value (counted up to the point parsing stopped).
        frames: usize,
        /// The limit.
        max: usize,
    },
    /// A vPDQ text longer than [`MAX_TEXT_BYTES`].
    #[error("vPDQ text is {bytes} bytes; the limit is {max}")]
    TextTooLong {
        /// Length of the text.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// Matching thresholds out of range.
    #[error("invalid vPDQ match setting: {0}")]
    InvalidConfig(String),
    /// The frame index failed (an internal limit of the PDQ index).
    #[error("vPDQ index error: {0}")]
    Index(#[from] safeguard_index::Error),
}
