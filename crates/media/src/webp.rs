//! WebP through `image-webp`, whose lossy (VP8 with "fancy" chroma upsampling) and lossless
//! output matches libwebp, the library behind Pillow. Alpha is dropped; an animation gives its
//! first frame.

use std::io::Cursor;

use image_webp::{DecodingError, WebPDecoder};

use crate::error::Error;
use crate::format::Format;
use crate::limit::{alloc_zeroed, Limits};
use crate::pixel::keep_first_three_in_place;
use crate::RgbImage;

/// Bytes per pixel a still WebP decode holds at its peak: the output (RGB, or RGBA before the
/// alpha is dropped) plus `image-webp`'s full-size RGBA scratch for lossless images.
const STILL_BYTES_PER_PIXEL: u64 = 4 + 4;

/// Bytes per pixel for the first frame of an animation: output, RGBA canvas and RGBA frame.
const ANIMATED_BYTES_PER_PIXEL: u64 = 4 + 4 + 4;

pub(crate) fn decode(bytes: &[u8], limits: &Limits) -> Result<RgbImage, Error> {
    // libwebp (and so Pillow) refuses a file shorter than its RIFF header says, even when the
    // image data itself is complete; `image-webp` would sometimes decode it or call the cut
    // data corrupt.
    let riff_size = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if (bytes.len() as u64) < u64::from(riff_size) + 8 {
        return Err(Error::Truncated {
            format: Format::Webp,
        });
    }
    let mut decoder =
        guarded(|| WebPDecoder::new(Cursor::new(bytes)))?.map_err(|e| map_error(e, limits))?;
    decoder.set_memory_limit(limits.decode_budget_usize());
    let (width, height) = decoder.dimensions();
    let per_pixel = if decoder.is_animated() {
        ANIMATED_BYTES_PER_PIXEL
    } else {
        STILL_BYTES_PER_PIXEL
    };
    limits.check_image(width.into(), height.into(), per_pixel)?;
    let channels = if decoder.has_alpha() { 4 } else { 3 };
    // Within the pixel limit, so within usize.
    let pixels = width as usize * height as usize;

    let mut data = alloc_zeroed(pixels * channels, limits)?;
    guarded(|| decoder.read_image(&mut data))?.map_err(|e| map_error(e, limits))?;
    if channels == 4 {
        keep_first_three_in_place(&mut data, pixels, 4);
    }
    Ok(RgbImage {
        width,
        height,
        data,
    })
}

/// An animated WebP, frame by frame (FFmpeg 5.1 cannot decode WebP animations, so they do not
/// go through the video path's FFmpeg reader).
pub(crate) struct Animation {
    decoder: WebPDecoder<Cursor<Vec<u8>>>,
    /// Canvas width and height, pixels.
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// Frames in one loop.
    pub(crate) frames: u32,
    /// Sum of the frame durations, milliseconds.
    pub(crate) duration_ms: u64,
    channels: usize,
    canvas: Vec<u8>,
    /// A frame's decode panicked (see [`guarded`]).
    broken: bool,
}

impl Animation {
    /// `None` when `bytes` are not an animated WebP. The canvas size is checked against
    /// `max_side`/`max_pixels` before anything is allocated for it.
    pub(crate) fn open(bytes: &[u8], limits: &Limits) -> Result<Option<Animation>, Error> {
        if crate::format::sniff(bytes) != Some(Format::Webp) {
            return Ok(None);
        }
        let mut decoder = guarded(|| WebPDecoder::new(Cursor::new(bytes.to_vec())))?
            .map_err(|e| map_error(e, limits))?;
        if !decoder.is_animated() {
            return Ok(None);
        }
        decoder.set_memory_limit(limits.decode_budget_usize());
        let (width, height) = decoder.dimensions();
        limits.check_image(width.into(), height.into(), ANIMATED_BYTES_PER_PIXEL)?;
        let channels = if decoder.has_alpha() { 4 } else { 3 };
        let canvas = alloc_zeroed(width as usize * height as usize * channels, limits)?;
        Ok(Some(Animation {
            width,
            height,
            frames: decoder.num_frames(),
            duration_ms: decoder.loop_duration(),
            channels,
            canvas,
            decoder,
            broken: false,
        }))
    }

    /// The next composited frame as packed RGB (alpha dropped) in `rgb`; `false` after the
    /// last frame. After a panic in the decoder the animation gives no more frames.
    pub(crate) fn next_frame(&mut self, rgb: &mut Vec<u8>, limits: &Limits) -> Result<bool, Error> {
        if self.broken {
            return Err(Error::corrupt(
                Format::Webp,
                "an earlier frame failed to decode",
            ));
        }
        // After a panic the decoder may be half-way through a frame: not used again.
        let read = guarded(|| self.decoder.read_frame(&mut self.canvas))
            .inspect_err(|_| self.broken = true)?;
        match read {
            Ok(_) => {}
            Err(DecodingError::NoMoreFrames) => return Ok(false),
            Err(e) => return Err(map_error(e, limits)),
        }
        rgb.clear();
        if self.channels == 3 {
            rgb.extend_from_slice(&self.canvas);
        } else {
            rgb.reserve(self.canvas.len() / 4 * 3);
            for px in self.canvas.chunks_exact(4) {
                rgb.extend_from_slice(&px[..3]);
            }
        }
        Ok(true)
    }
}

/// Runs an `image-webp` decode, turning a panic into [`Error::Corrupt`]. image-webp 0.2.4, the
/// latest release, panics on some malformed files instead of returning an error: the
/// `decode_hash` fuzz target found an animation whose frame overruns the row buffer in its
/// YUV conversion (`yuv.rs`: "range end index 3 out of range for slice of length 0"; the file
/// is `crates/media/tests/data/hostile/webp-frame-overrun.webp`). Such a file is corrupt, and a
/// hostile upload must not take down a `safeguard hash` or scan run that decodes in process.
/// The decoder is pure Rust and is dropped (or never used again) after a panic, so nothing it
/// left half-done is read. The panic message still goes to the process's panic hook (stderr).
fn guarded<T>(decode: impl FnOnce() -> T) -> Result<T, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)).map_err(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        Error::corrupt(Format::Webp, format!("the WebP decoder failed: {why}"))
    })
}

fn map_error(error: DecodingError, limits: &Limits) -> Error {
    match error {
        DecodingError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::Truncated {
                format: Format::Webp,
            }
        }
        DecodingError::MemoryLimitExceeded | DecodingError::ImageTooLarge => {
            Limits::decoder_memory_exceeded(limits.max_decode_bytes)
        }
        DecodingError::UnsupportedFeature(detail) => Error::UnsupportedFeature {
            format: Format::Webp,
            detail,
        },
        DecodingError::InvalidParameter(detail) => {
            Error::Internal(format!("image-webp misuse: {detail}"))
        }
        other => Error::corrupt(Format::Webp, other.to_string()),
    }
}
