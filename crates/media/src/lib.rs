//! Bytes to pixels under limits. This is the only Safeguard crate that touches image decoders.
//!
//! [`decode`] turns an upload into 8-bit RGB exactly as the reference pipeline behind shared
//! PDQ hash banks does: Pillow 13's `Image.open(f).convert("RGB")`, with no EXIF rotation.
//! Identical pixels give identical PDQ hashes, so each format goes through the decoder (or a
//! conversion) that reproduces Pillow's output; see each module for the rules it follows.
//!
//! Everything an input declares (dimensions, pixel count, memory for the decoded buffers) is
//! checked against [`Limits`] before it is allocated, and every way an input can be bad maps to
//! a specific [`Error`] variant. Decoders never panic on hostile input (the crate is fuzzed).
//!
//! ```no_run
//! use safeguard_media::{decode, read_file, Limits};
//!
//! let limits = Limits::default();
//! let bytes = read_file("upload.bin".as_ref(), &limits)?;
//! let decoded = decode(&bytes, &limits)?;
//! println!("{} {}x{}", decoded.format, decoded.image.width, decoded.image.height);
//! # Ok::<(), safeguard_media::Error>(())
//! ```

mod bmp_tiff;
pub mod digest;
mod error;
mod format;
mod gif_decode;
mod jpeg;
mod limit;
mod pixel;
mod png_decode;
pub mod reduce;
pub mod video;
mod video_gop;
mod webp;

use std::io::Read;
use std::path::Path;

pub use error::Error;
pub use format::{sniff, Format};
pub use jpeg::MAX_PROGRESSIVE_SCANS;
pub use limit::{
    LimitKind, Limits, DEFAULT_MAX_DECODE_BYTES, DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_SIDE,
};

/// A decoded image: 8-bit RGB, row-major, no padding.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels (at least 1).
    pub width: u32,
    /// Height in pixels (at least 1).
    pub height: u32,
    /// `width * height * 3` bytes: R, G, B for each pixel, rows top to bottom.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for RgbImage {
    // The pixel data would drown any log line; show its size instead.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RgbImage")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// How to decode, beyond the limits. The default is the exact (reference) path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Fast mode for JPEG, **not bit-exact**: when set, a JPEG is decoded at the smallest
    /// libjpeg-turbo DCT scale (1/8, 2/8, ... 8/8) whose shorter side is still at least this
    /// many pixels, which skips most of the IDCT and upsampling work on large photos. The
    /// pixels then differ from a full decode followed by any resize, so hashes can differ by a
    /// few bits from the reference values; use it only where that is acceptable (triage,
    /// bulk re-scans), with 256 or 512 as typical values. Other formats ignore it.
    pub jpeg_min_side: Option<u32>,
    /// With `jpeg_min_side`: only JPEGs of at least this many pixels are decoded at a reduced
    /// scale; smaller ones (cheap to decode anyway, and where scaling moves the hash most) take
    /// the exact path. 0 applies the reduction to every JPEG.
    pub jpeg_scale_min_pixels: u64,
}

/// The result of a decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The container format, from the magic bytes.
    pub format: Format,
    /// The pixels.
    pub image: RgbImage,
    /// The full image size when a reduced-scale JPEG decode happened
    /// ([`DecodeOptions::jpeg_min_side`]); `None` for a full-size decode.
    pub scaled_from: Option<(u32, u32)>,
}

/// Decodes `bytes` to RGB with the exact (reference) path. See [`decode_with`].
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Decoded, Error> {
    decode_with(bytes, limits, &DecodeOptions::default())
}

/// Decodes `bytes` to RGB. The format comes from the magic bytes only ([`sniff`]).
///
/// Errors: [`Error::Empty`] for no bytes; [`Error::UnsupportedFormat`] for unknown magic;
/// [`Error::TooLarge`] when the input size, declared dimensions or needed memory is over a
/// limit (checked before allocating); [`Error::Truncated`] when data ends before the image is
/// complete (never padded); [`Error::Corrupt`] for malformed data;
/// [`Error::UnsupportedFeature`] for valid files using something the decoders lack.
pub fn decode_with(
    bytes: &[u8],
    limits: &Limits,
    options: &DecodeOptions,
) -> Result<Decoded, Error> {
    if bytes.is_empty() {
        return Err(Error::Empty);
    }
    limits.check_input_len(bytes.len() as u64)?;
    let format = sniff(bytes).ok_or(Error::UnsupportedFormat)?;
    let mut scaled_from = None;
    let image = match format {
        Format::Jpeg => {
            let (image, from) = jpeg::decode(
                bytes,
                limits,
                options.jpeg_min_side,
                options.jpeg_scale_min_pixels,
            )?;
            scaled_from = from;
            image
        }
        Format::Png => png_decode::decode(bytes, limits)?,
        Format::Gif => gif_decode::decode(bytes, limits)?,
        Format::Webp => webp::decode(bytes, limits)?,
        Format::Bmp | Format::Tiff => bmp_tiff::decode(bytes, format, limits)?,
    };
    if image.width == 0 || image.height == 0 {
        return Err(Error::corrupt(format, "image has no pixels"));
    }
    let expected_len = image.width as usize * image.height as usize * 3;
    if image.data.len() != expected_len {
        return Err(Error::Internal(format!(
            "{format} decoder returned {} bytes for {}x{} RGB",
            image.data.len(),
            image.width,
            image.height
        )));
    }
    Ok(Decoded {
        format,
        image,
        scaled_from,
    })
}

/// Reads a whole file, refusing one over [`Limits::max_input_bytes`].
///
/// The size is checked from the metadata first, and the read itself stops one byte past the
/// limit, so a file that grows while being read (or a device or pipe with no meaningful size)
/// cannot make this allocate more than the limit.
pub fn read_file(path: &Path, limits: &Limits) -> Result<Vec<u8>, Error> {
    let file = std::fs::File::open(path)?;
    let declared = file.metadata()?.len();
    limits.check_input_len(declared)?;
    let mut bytes = Vec::new();
    // `declared` is within the limit here; a reservation is only a hint.
    bytes
        .try_reserve(usize::try_from(declared).unwrap_or(0))
        .map_err(|_| Error::too_large(LimitKind::InputBytes, declared, limits.max_input_bytes))?;
    file.take(limits.max_input_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    limits.check_input_len(bytes.len() as u64)?;
    Ok(bytes)
}
