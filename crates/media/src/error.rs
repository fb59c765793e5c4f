//! The one error type of this crate.
//!
//! Variants split bad input (the file is unsupported, over a limit, truncated or corrupt) from
//! faults on our side (I/O, an internal decoder failure), so callers can answer "fix your upload"
//! for the first group and "internal error" for the second.

use crate::format::Format;
use crate::limit::LimitKind;

/// Why bytes could not be turned into pixels.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input has zero bytes.
    #[error("input is empty")]
    Empty,

    /// The leading bytes match no supported image format (JPEG, PNG, GIF, WebP, BMP, TIFF).
    #[error("unsupported or unrecognised image format")]
    UnsupportedFormat,

    /// The format is supported but this file uses a feature the decoder lacks (for example
    /// 12-bit JPEG or floating-point TIFF samples).
    #[error("{format} image uses an unsupported feature: {detail}")]
    UnsupportedFeature {
        /// Format the bytes were sniffed as.
        format: Format,
        /// What the decoder could not handle.
        detail: String,
    },

    /// A declared or required quantity is over a configured [`crate::Limits`] value. Raised
    /// before the decoded buffers are allocated.
    #[error("{what} of {value} is over the limit of {limit}")]
    TooLarge {
        /// Which limit was hit.
        what: LimitKind,
        /// The quantity the input declares or needs. When a decoder's own allocation guard
        /// trips, the exact need is unknown and this is the smallest value known to exceed
        /// `limit` (`limit + 1`).
        value: u64,
        /// The limit in force, in the unit of `what`.
        limit: u64,
    },

    /// The data ends before the image is complete. Never padded: a truncated file is refused,
    /// as Pillow does by default (`LOAD_TRUNCATED_IMAGES = False`).
    #[error("{format} data ends before the image is complete")]
    Truncated {
        /// Format the bytes were sniffed as.
        format: Format,
    },

    /// The data is malformed.
    #[error("corrupt {format} data: {detail}")]
    Corrupt {
        /// Format the bytes were sniffed as.
        format: Format,
        /// The decoder's description of the problem.
        detail: String,
    },

    /// A video's input size or frame size is over a [`crate::video::VideoLimits`] value.
    #[error("video {what} of {value} is over the limit of {limit}")]
    VideoTooLarge {
        /// Which limit was hit (input bytes, width, height or pixels).
        what: LimitKind,
        /// The quantity the video declares.
        value: u64,
        /// The limit in force.
        limit: u64,
    },

    /// A video is longer than [`crate::video::VideoLimits::max_duration`] (declared, or reached
    /// while decoding).
    #[error("video of {seconds:.1} s is over the limit of {limit:.1} s")]
    VideoTooLong {
        /// Duration declared or reached, seconds.
        seconds: f64,
        /// The limit, seconds.
        limit: f64,
    },

    /// A video has more frames than [`crate::video::VideoLimits::max_frames`].
    #[error("video has {frames} or more frames, over the limit of {limit}")]
    TooManyFrames {
        /// Frames declared, or decoded when the limit tripped.
        frames: u64,
        /// The limit.
        limit: u64,
    },

    /// Decoding a video took longer than [`crate::video::VideoLimits::max_decode_time`].
    #[error("decoding the video took longer than the limit of {} s", limit.as_secs_f64())]
    DecodeTimeout {
        /// The wall-clock budget.
        limit: std::time::Duration,
    },

    /// Not a video this crate decodes: unknown or refused container (playlists, concat
    /// scripts), no video stream, or a codec off the allowed list.
    #[error("unsupported video: {0}")]
    UnsupportedVideo(String),

    /// The video ends before the frames its container declares.
    #[error("video data ends early: {decoded} frames decoded, {declared} declared")]
    TruncatedVideo {
        /// Frames decoded.
        decoded: u64,
        /// Frames the container declares (0 when it ended before declaring any).
        declared: u64,
    },

    /// The video's container or stream is malformed.
    #[error("corrupt video: {0}")]
    CorruptVideo(String),

    /// Reading the input failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// A decoder failed for a reason that is not the input's fault (for example it could not
    /// allocate its state).
    #[error("internal decoder error: {0}")]
    Internal(String),
}

impl Error {
    /// A stable snake_case code for this kind of error, for APIs, logs and metrics. Codes never
    /// change meaning; new variants get new codes.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Empty => "empty_input",
            Error::UnsupportedFormat => "unsupported_format",
            Error::UnsupportedFeature { .. } => "unsupported_feature",
            Error::TooLarge { .. } => "too_large",
            Error::Truncated { .. } => "truncated",
            Error::Corrupt { .. } => "corrupt_image",
            Error::VideoTooLarge { .. } => "video_too_large",
            Error::VideoTooLong { .. } => "video_too_long",
            Error::TooManyFrames { .. } => "too_many_frames",
            Error::DecodeTimeout { .. } => "decode_timeout",
            Error::UnsupportedVideo(_) => "unsupported_video",
            Error::TruncatedVideo { .. } => "truncated_video",
            Error::CorruptVideo(_) => "corrupt_video",
            Error::Io(_) => "io_error",
            Error::Internal(_) => "internal_error",
        }
    }

    /// True when the input itself is at fault (the caller should be told to fix or drop the
    /// file); false for I/O and internal faults.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Error::Io(_) | Error::Internal(_))
    }

    pub(crate) fn corrupt(format: Format, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            format,
            detail: detail.into(),
        }
    }

    pub(crate) fn too_large(what: LimitKind, value: u64, limit: u64) -> Self {
        Error::TooLarge { what, value, limit }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_snake_case() {
        let errors = [
            Error::Empty,
            Error::UnsupportedFormat,
            Error::UnsupportedFeature {
                format: Format::Jpeg,
                detail: String::new(),
            },
            Error::too_large(LimitKind::Width, 2, 1),
            Error::Truncated {
                format: Format::Png,
            },
            Error::corrupt(Format::Gif, "x"),
            Error::Io(std::io::Error::other("x")),
            Error::Internal(String::new()),
            Error::VideoTooLarge {
                what: LimitKind::Width,
                value: 2,
                limit: 1,
            },
            Error::VideoTooLong {
                seconds: 2.0,
                limit: 1.0,
            },
            Error::TooManyFrames {
                frames: 2,
                limit: 1,
            },
            Error::DecodeTimeout {
                limit: std::time::Duration::from_secs(1),
            },
            Error::UnsupportedVideo(String::new()),
            Error::TruncatedVideo {
                decoded: 1,
                declared: 2,
            },
            Error::CorruptVideo(String::new()),
        ];
        let mut codes: Vec<&str> = errors.iter().map(Error::code).collect();
        for code in &codes {
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
    }

    #[test]
    fn only_io_and_internal_are_not_bad_input() {
        assert!(Error::Empty.is_bad_input());
        assert!(Error::too_large(LimitKind::Pixels, 2, 1).is_bad_input());
        assert!(!Error::Io(std::io::Error::other("x")).is_bad_input());
        assert!(!Error::Internal(String::new()).is_bad_input());
    }

    #[test]
    fn too_large_message_names_the_limit() {
        let message = Error::too_large(LimitKind::Width, 100_000, 30_000).to_string();
        assert_eq!(
            message,
            "width in pixels of 100000 is over the limit of 30000"
        );
    }
}
