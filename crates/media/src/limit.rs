//! Resource limits, checked against what a file *declares* before anything is allocated for it.
//!
//! Decompression bombs (a few hundred bytes declaring 100000 x 100000 pixels, or a tiny
//! zlib/LZW stream that inflates without end) are stopped here: every decoder reads its header,
//! asks [`Limits::check_image`] whether the declared dimensions and the memory needed to decode
//! them fit, and only then allocates.

use std::fmt;

use crate::error::Error;

/// Default for [`Limits::max_input_bytes`]: 64 MiB of encoded input. Camera JPEGs are 2–15 MiB
/// and phone HEIC-to-JPEG exports stay well under 30 MiB; an upload bigger than this is far more
/// likely abuse than a photo, and the whole file is held in memory while decoding.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// Default for [`Limits::max_width`] and [`Limits::max_height`]: 30,000 pixels per side.
/// Panoramas from phones reach about 20,000 px; beyond this the image is a bomb or a scan that
/// PDQ (which works on a 64 x 64 summary) gains nothing from.
pub const DEFAULT_MAX_SIDE: u32 = 30_000;

/// Default for [`Limits::max_pixels`]: 100 megapixels. Above the largest consumer camera
/// sensors (about 50 MP for phones in 2026, 100 MP for medium format) and close to Pillow's own
/// bomb warning threshold (89.5 MP), which is the reference decoder's comfort zone.
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// Default for [`Limits::max_decode_bytes`]: 1 GiB for the decoded buffers of one image. A 100 MP
/// image needs 300 MB as RGB, 400 MB with an RGBA or CMYK intermediate, and a progressive JPEG
/// adds up to 600 MB of coefficient buffers; one GiB fits all of that and still lets a 24 GiB
/// machine decode a dozen images in parallel.
pub const DEFAULT_MAX_DECODE_BYTES: u64 = 1024 * 1024 * 1024;

/// Which limit an input ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitKind {
    /// Encoded input size, bytes.
    InputBytes,
    /// Image width, pixels.
    Width,
    /// Image height, pixels.
    Height,
    /// Width x height, pixels.
    Pixels,
    /// Memory for decoded buffers, bytes.
    DecodeBytes,
}

impl LimitKind {
    /// Stable snake_case name, for APIs and logs.
    pub fn name(&self) -> &'static str {
        match self {
            LimitKind::InputBytes => "input_bytes",
            LimitKind::Width => "width",
            LimitKind::Height => "height",
            LimitKind::Pixels => "pixels",
            LimitKind::DecodeBytes => "decode_bytes",
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::InputBytes => "input size in bytes",
            LimitKind::Width => "width in pixels",
            LimitKind::Height => "height in pixels",
            LimitKind::Pixels => "pixel count",
            LimitKind::DecodeBytes => "decode memory in bytes",
        })
    }
}

/// Bounds on what one decode may consume. Every field is inclusive: a value equal to the limit
/// is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input, in bytes of encoded data.
    pub max_input_bytes: u64,
    /// Largest accepted image width, in pixels.
    pub max_width: u32,
    /// Largest accepted image height, in pixels.
    pub max_height: u32,
    /// Largest accepted width x height, in pixels.
    pub max_pixels: u64,
    /// Memory budget, in bytes, for the buffers a decode allocates that scale with the image:
    /// the RGB output plus any full-size intermediate (RGBA, CMYK, palette indices, JPEG
    /// coefficients). Small fixed-size decoder state is not counted.
    pub max_decode_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: DEFAULT_MAX_INPUT_BYTES,
            max_width: DEFAULT_MAX_SIDE,
            max_height: DEFAULT_MAX_SIDE,
            max_pixels: DEFAULT_MAX_PIXELS,
            max_decode_bytes: DEFAULT_MAX_DECODE_BYTES,
        }
    }
}

impl Limits {
    /// Refuses an input of `len` bytes if it is over [`Limits::max_input_bytes`].
    pub fn check_input_len(&self, len: u64) -> Result<(), Error> {
        if len > self.max_input_bytes {
            return Err(Error::too_large(
                LimitKind::InputBytes,
                len,
                self.max_input_bytes,
            ));
        }
        Ok(())
    }

    /// Refuses declared dimensions over the width, height or pixel limits, and a decode whose
    /// buffers need more than [`Limits::max_decode_bytes`]: `bytes_per_pixel` is the total size
    /// of all full-size buffers the decoder will hold at once, per pixel (3 for RGB output alone,
    /// 3 + 4 with an RGBA intermediate, ...).
    pub fn check_image(&self, width: u64, height: u64, bytes_per_pixel: u64) -> Result<(), Error> {
        if width > u64::from(self.max_width) {
            return Err(Error::too_large(
                LimitKind::Width,
                width,
                self.max_width.into(),
            ));
        }
        if height > u64::from(self.max_height) {
            return Err(Error::too_large(
                LimitKind::Height,
                height,
                self.max_height.into(),
            ));
        }
        // Both factors are below 2^32 here, so the product fits in a u64.
        let pixels = width * height;
        if pixels > self.max_pixels {
            return Err(Error::too_large(LimitKind::Pixels, pixels, self.max_pixels));
        }
        self.check_decode_bytes(pixels.saturating_mul(bytes_per_pixel))
    }

    /// Refuses a decode that needs more than [`Limits::max_decode_bytes`].
    pub fn check_decode_bytes(&self, bytes: u64) -> Result<(), Error> {
        if bytes > self.max_decode_bytes {
            return Err(Error::too_large(
                LimitKind::DecodeBytes,
                bytes,
                self.max_decode_bytes,
            ));
        }
        Ok(())
    }

    /// The error to report when a decoder's own allocation guard, which we set to `given`
    /// bytes, refused to go on.
    pub(crate) fn decoder_memory_exceeded(given: u64) -> Error {
        Error::too_large(LimitKind::DecodeBytes, given.saturating_add(1), given)
    }

    /// `max_decode_bytes` as a `usize`, saturating on 32-bit targets.
    pub(crate) fn decode_budget_usize(&self) -> usize {
        usize::try_from(self.max_decode_bytes).unwrap_or(usize::MAX)
    }
}

/// Allocates a zeroed buffer of `len` bytes, reporting an allocator refusal as a limit error
/// rather than aborting the process. Callers have already checked `len` against the limits.
pub(crate) fn alloc_zeroed(len: usize, limits: &Limits) -> Result<Vec<u8>, Error> {
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(len).map_err(|_| {
        Error::too_large(LimitKind::DecodeBytes, len as u64, limits.max_decode_bytes)
    })?;
    buffer.resize(len, 0);
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(result: Result<(), Error>) -> Option<LimitKind> {
        match result {
            Ok(()) => None,
            Err(Error::TooLarge { what, .. }) => Some(what),
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let limits = Limits {
            max_input_bytes: 10,
            max_width: 100,
            max_height: 50,
            max_pixels: 5000,
            max_decode_bytes: 15_000,
        };
        assert_eq!(kind(limits.check_input_len(10)), None);
        assert_eq!(
            kind(limits.check_input_len(11)),
            Some(LimitKind::InputBytes)
        );
        assert_eq!(kind(limits.check_image(100, 50, 3)), None);
        assert_eq!(kind(limits.check_image(101, 1, 3)), Some(LimitKind::Width));
        assert_eq!(kind(limits.check_image(1, 51, 3)), Some(LimitKind::Height));
        assert_eq!(
            kind(limits.check_image(100, 50, 4)),
            Some(LimitKind::DecodeBytes)
        );
    }

    #[test]
    fn pixel_limit_applies_when_each_side_fits() {
        let limits = Limits {
            max_pixels: 99,
            ..Limits::default()
        };
        assert_eq!(kind(limits.check_image(10, 10, 3)), Some(LimitKind::Pixels));
        assert_eq!(kind(limits.check_image(9, 11, 3)), None);
    }

    #[test]
    fn huge_declared_sizes_do_not_overflow() {
        let limits = Limits {
            max_width: u32::MAX,
            max_height: u32::MAX,
            max_pixels: u64::MAX,
            ..Limits::default()
        };
        let err = limits
            .check_image(u32::MAX.into(), u32::MAX.into(), u64::MAX)
            .unwrap_err();
        assert!(matches!(
            err,
            Error::TooLarge {
                what: LimitKind::DecodeBytes,
                value: u64::MAX,
                ..
            }
        ));
    }

    #[test]
    fn defaults_are_the_documented_constants() {
        let limits = Limits::default();
        assert_eq!(limits.max_input_bytes, 64 << 20);
        assert_eq!(limits.max_width, 30_000);
        assert_eq!(limits.max_height, 30_000);
        assert_eq!(limits.max_pixels, 100_000_000);
        assert_eq!(limits.max_decode_bytes, 1 << 30);
    }
}
