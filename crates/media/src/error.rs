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
