//! JPEG through libjpeg-turbo's TurboJPEG 3 API: the same library, IDCT (accurate integer
//! "islow") and chroma upsampling ("fancy") that Pillow uses, so the pixels are identical.
//!
//! The TurboJPEG calls are made through `turbojpeg::raw` rather than the `turbojpeg` crate's
//! `Decompressor`, because that wrapper turns every libjpeg *warning* into a failure: it cannot
//! decode a file with, say, stray bytes between header segments, which Pillow (it silences
//! libjpeg warnings) decodes without complaint. Going to the C API also lets us cap libjpeg's
//! own intermediate memory and the number of progressive scans. The unsafe surface is the small
//! [`Turbo`] handle type below.

use std::ffi::{c_int, c_ulong, c_void, CStr};
use std::ptr::NonNull;

use turbojpeg::raw;

use crate::error::Error;
use crate::format::Format;
use crate::limit::{alloc_zeroed, LimitKind, Limits};
use crate::pixel::adobe_cmyk_to_rgb_in_place;
use crate::RgbImage;

/// Most scans a progressive JPEG may have, in scans. Ordinary encoders write 6–12; thousands of
/// tiny scans are a known CPU exhaustion attack on progressive decoding (every scan revisits the
/// whole coefficient buffer). 500 is the cap libjpeg-turbo's own tools recommend.
pub const MAX_PROGRESSIVE_SCANS: u32 = 500;

/// Bytes of libjpeg coefficient storage per pixel per component that a progressive (or
/// multi-scan) JPEG needs: one 16-bit coefficient per sample, held for the whole image.
const COEFFICIENT_BYTES_PER_SAMPLE: u64 = 2;

const MIB: u64 = 1024 * 1024;

/// Decodes a JPEG to RGB. With `min_side`, decodes at the smallest DCT scaling factor (k/8)
/// whose shorter output side is still at least `min_side`, and also returns the full size.
pub(crate) fn decode(
    bytes: &[u8],
    limits: &Limits,
    min_side: Option<u32>,
    scale_min_pixels: u64,
) -> Result<(RgbImage, Option<(u32, u32)>), Error> {
    let mut turbo = Turbo::new()?;
    if let Err(failure) = turbo.read_header(bytes) {
        if !failure.is_warning() {
            return Err(classify_fatal(bytes, failure.message(), limits));
        }
    }

    let width = turbo.get(raw::TJPARAM_TJPARAM_JPEGWIDTH);
    let height = turbo.get(raw::TJPARAM_TJPARAM_JPEGHEIGHT);
    if width <= 0 || height <= 0 {
        // A stream of tables only, or one cut before its frame header.
        return Err(if reaches_eoi(bytes) {
            Error::corrupt(Format::Jpeg, "no image frame in the data")
        } else {
            Error::Truncated {
                format: Format::Jpeg,
            }
        });
    }
    let precision = turbo.get(raw::TJPARAM_TJPARAM_PRECISION);
    if precision != 8 {
        return Err(Error::UnsupportedFeature {
            format: Format::Jpeg,
            detail: format!("{precision}-bit samples"),
        });
    }
    // Both are positive c_ints here.
    let (width, height) = (width as u32, height as u32);
    let colorspace = turbo.get(raw::TJPARAM_TJPARAM_COLORSPACE);
    let four_components =
        colorspace == raw::TJCS_TJCS_CMYK as c_int || colorspace == raw::TJCS_TJCS_YCCK as c_int;
    let components: u64 = if colorspace == raw::TJCS_TJCS_GRAY as c_int {
        1
    } else if four_components {
        4
    } else {
        3
    };
    let lossless = turbo.get(raw::TJPARAM_TJPARAM_LOSSLESS) != 0;
    let progressive = turbo.get(raw::TJPARAM_TJPARAM_PROGRESSIVE) != 0;

    limits.check_image(width.into(), height.into(), 0)?;

    let eighths = match min_side {
        Some(min_side) if !lossless && width as u64 * height as u64 >= scale_min_pixels => {
            scale_eighths(width, height, min_side)
        }
        _ => 8,
    };
    let (out_width, out_height) = (scaled(width, eighths), scaled(height, eighths));
    let out_channels: usize = if four_components { 4 } else { 3 };
    let pixels = out_width as usize * out_height as usize;
    let out_bytes = pixels as u64 * out_channels as u64;
    // libjpeg rounds every component up to whole 8x8 blocks of whole MCUs (at most 16 px).
    let coefficient_bytes = if progressive {
        (u64::from(width) + 15)
            * (u64::from(height) + 15)
            * components
            * COEFFICIENT_BYTES_PER_SAMPLE
    } else {
        0
    };
    limits.check_decode_bytes(out_bytes + coefficient_bytes)?;

    // Whatever the budget leaves after the output buffer caps libjpeg's intermediate buffers,
    // which also catches multi-scan baseline files whose coefficient storage we did not count.
    let spare_mib = (limits.max_decode_bytes.saturating_sub(out_bytes) / MIB).max(1);
    turbo.set(
        raw::TJPARAM_TJPARAM_MAXMEMORY,
        c_int::try_from(spare_mib).unwrap_or(c_int::MAX),
    )?;
    turbo.set(
        raw::TJPARAM_TJPARAM_SCANLIMIT,
        c_int::try_from(MAX_PROGRESSIVE_SCANS).unwrap_or(c_int::MAX),
    )?;
    if eighths != 8 {
        turbo.set_scaling(eighths)?;
    }

    let mut buffer = alloc_zeroed(pixels * out_channels, limits)?;
    let pixel_format = if four_components {
        raw::TJPF_TJPF_CMYK
    } else {
        raw::TJPF_TJPF_RGB
    };
    if let Err(failure) = turbo.decompress(
        bytes,
        &mut buffer,
        out_width as usize * out_channels,
        out_height as usize,
        pixel_format,
    ) {
        // Pillow silences libjpeg warnings (corrupt entropy data, stray bytes, unknown JFIF
        // versions) and keeps the pixels libjpeg produced, so we do the same; what it does
        // not forgive is running out of data, which libjpeg also reports only as a warning.
        if !failure.is_warning() || !reaches_eoi(bytes) {
            return Err(classify_fatal(bytes, failure.message(), limits));
        }
    }
    if four_components {
        adobe_cmyk_to_rgb_in_place(&mut buffer, pixels);
    }
    let scaled_from = (eighths != 8).then_some((width, height));
    Ok((
        RgbImage {
            width: out_width,
            height: out_height,
            data: buffer,
        },
        scaled_from,
    ))
}

/// The smallest k in 1..=8 such that both sides scaled by k/8 are at least `min_side`; 8 (no
/// scaling) when even the full image is smaller.
fn scale_eighths(width: u32, height: u32, min_side: u32) -> u32 {
    (1..=8)
        .find(|&k| scaled(width, k).min(scaled(height, k)) >= min_side)
        .unwrap_or(8)
}

/// A side scaled by k/8 the way libjpeg-turbo computes it (`TJSCALED`: rounded up).
fn scaled(side: u32, eighths: u32) -> u32 {
    // side < 2^31 (TurboJPEG reports it as a positive c_int) and eighths <= 8: no overflow.
    (u64::from(side) * u64::from(eighths)).div_ceil(8) as u32
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Maps a fatal TurboJPEG failure to our error: data that ends before the end-of-image marker
/// is `Truncated` (whatever libjpeg tripped over once its input ran dry), known resource and
/// feature refusals get their own variants, the rest is `Corrupt`.
fn classify_fatal(bytes: &[u8], message: &str, limits: &Limits) -> Error {
    if !reaches_eoi(bytes) {
        return Error::Truncated {
            format: Format::Jpeg,
        };
    }
    if message.starts_with("Maximum supported image dimension") {
        // libjpeg's own ceiling (65500) refused the header before we could read the size.
        if let Some((width, height)) = declared_size(bytes) {
            let (what, value, limit) = if width > JPEG_MAX_DIMENSION {
                (LimitKind::Width, width, limits.max_width)
            } else {
                (LimitKind::Height, height, limits.max_height)
            };
            return Error::too_large(what, value.into(), limit.min(JPEG_MAX_DIMENSION).into());
        }
    }
    if message.starts_with("Memory limit exceeded") {
        // libjpeg does not say how much it wanted; it was more than the budget.
        return Limits::decoder_memory_exceeded(limits.max_decode_bytes);
    }
    if message.starts_with("Unsupported JPEG data precision")
        || message.starts_with("Unsupported color conversion request")
        || message.starts_with("Requested features are incompatible")
    {
        return Error::UnsupportedFeature {
            format: Format::Jpeg,
            detail: message.to_owned(),
        };
    }
    Error::corrupt(Format::Jpeg, message)
}

/// libjpeg's largest accepted width or height (`JPEG_MAX_DIMENSION`), in pixels.
const JPEG_MAX_DIMENSION: u32 = 65_500;

/// Width and height from the first frame header (SOFn) in the header segments, if any.
fn declared_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    loop {
        if *bytes.get(i)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(i + 1)?;
        let length = usize::from(u16::from_be_bytes([*bytes.get(i + 2)?, *bytes.get(i + 3)?]));
        // SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let height = u16::from_be_bytes([*bytes.get(i + 5)?, *bytes.get(i + 6)?]);
            let width = u16::from_be_bytes([*bytes.get(i + 7)?, *bytes.get(i + 8)?]);
            return Some((width.into(), height.into()));
        }
        if marker == 0xDA {
            return None;
        }
        i += 2 + length;
    }
}

/// True if an end-of-image marker (FFD9) is reached when walking the JPEG marker structure:
/// header segments are skipped by their length, entropy-coded data by scanning for the next
/// marker. A stream without one ran out of data before the decoder finished; libjpeg then pads
/// the image and warns, while Pillow raises "image file is truncated", which we follow.
fn reaches_eoi(bytes: &[u8]) -> bool {
    let len = bytes.len();
    let mut i = 2; // past SOI, which sniffing checked
    while i < len {
        // Junk before a marker is skipped, as libjpeg does (with a warning).
        while i < len && bytes[i] != 0xFF {
            i += 1;
        }
        // Any number of 0xFF fill bytes may precede the marker code.
        while i < len && bytes[i] == 0xFF {
            i += 1;
        }
        if i >= len {
            return false;
        }
        let marker = bytes[i];
        i += 1;
        match marker {
            0xD9 => return true,
            // Standalone markers without a length: TEM, RST0-7, and a stray stuffed zero.
            0x00 | 0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        if i + 2 > len {
            return false;
        }
        let segment = usize::from(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
        i += segment.max(2);
        if marker == 0xDA {
            i = skip_entropy_coded_data(bytes, i);
        }
    }
    false
}

/// Returns the index of the 0xFF that starts the first real marker at or after `i`, skipping
/// stuffed zeros (FF00) and restart markers, or `bytes.len()` if there is none.
fn skip_entropy_coded_data(bytes: &[u8], mut i: usize) -> usize {
    let len = bytes.len();
    while i < len {
        match bytes[i..].iter().position(|&b| b == 0xFF) {
            None => return len,
            Some(offset) => i += offset,
        }
        match bytes.get(i + 1) {
            None => return len,
            Some(0x00 | 0xD0..=0xD7) => i += 2,
            // A fill byte: the marker code comes later.
            Some(0xFF) => i += 1,
            Some(_) => return i,
        }
    }
    len
}

/// A failed TurboJPEG call: libjpeg's message and whether it was only a warning.
struct Failure {
    warning: bool,
    message: String,
}

impl Failure {
    fn message(&self) -> &str {
        &self.message
    }

    /// A warning means libjpeg finished and the output is complete (if possibly damaged).
    ///
    /// TurboJPEG keeps its warning flag set when a fatal error follows a warning, so its error
    /// code alone cannot tell "warned, then finished" from "warned, then failed". The message
    /// can: a fatal error always overwrites it, while only the first warning is written. So a
    /// failure is a warning only if the code says so *and* the message is one of libjpeg's
    /// warning texts (jerror.h, JWRN_*; pinned by the bundled libjpeg-turbo).
    fn is_warning(&self) -> bool {
        const WARNING_PREFIXES: [&str; 7] = [
            "Corrupt JPEG data:",
            "Premature end of JPEG file",
            "Unknown Adobe color transform code",
            "Inconsistent progression sequence",
            "Warning: unknown JFIF revision number",
            "Invalid SOS parameters for sequential JPEG",
            "Application transferred too many scanlines",
        ];
        self.warning
            && WARNING_PREFIXES
                .iter()
                .any(|prefix| self.message.starts_with(prefix))
    }
}

/// Owns one TurboJPEG decompression instance.
///
/// Invariant: `handle` is a live instance from `tj3Init(TJINIT_DECOMPRESS)`, destroyed exactly
/// once in `Drop`. TurboJPEG instances are not thread-safe; this type is neither `Send` nor
/// `Sync` (it holds a raw pointer), so each decode owns its own.
struct Turbo {
    handle: NonNull<c_void>,
}

impl Turbo {
    fn new() -> Result<Self, Error> {
        // SAFETY: tj3Init has no preconditions; it returns null when it cannot allocate.
        let handle = unsafe { raw::tj3Init(raw::TJINIT_TJINIT_DECOMPRESS as c_int) };
        NonNull::new(handle)
            .map(|handle| Turbo { handle })
            .ok_or_else(|| Error::Internal("TurboJPEG could not allocate a decompressor".into()))
    }

    fn get(&self, param: raw::TJPARAM) -> c_int {
        // SAFETY: the handle is live (type invariant); tj3Get only reads the instance.
        unsafe { raw::tj3Get(self.handle.as_ptr(), param as c_int) }
    }

    fn set(&mut self, param: raw::TJPARAM, value: c_int) -> Result<(), Error> {
        // SAFETY: the handle is live (type invariant).
        let status = unsafe { raw::tj3Set(self.handle.as_ptr(), param as c_int, value) };
        if status != 0 {
            return Err(Error::Internal(format!(
                "TurboJPEG refused parameter {param} = {value}: {}",
                self.failure().message
            )));
        }
        Ok(())
    }

    fn set_scaling(&mut self, eighths: u32) -> Result<(), Error> {
        // TurboJPEG matches factors against its table literally, so 2/8 must be given as 1/4.
        let common = gcd(eighths, 8);
        let factor = raw::tjscalingfactor {
            // eighths is in 1..=8.
            num: (eighths / common) as c_int,
            denom: (8 / common) as c_int,
        };
        // SAFETY: the handle is live (type invariant); the factor is passed by value.
        let status = unsafe { raw::tj3SetScalingFactor(self.handle.as_ptr(), factor) };
        if status != 0 {
            return Err(Error::Internal(format!(
                "TurboJPEG refused scaling {eighths}/8: {}",
                self.failure().message
            )));
        }
        Ok(())
    }

    fn read_header(&mut self, jpeg: &[u8]) -> Result<(), Failure> {
        // SAFETY: the handle is live; `jpeg` is valid for reads of `jpeg.len()` bytes and
        // TurboJPEG does not keep the pointer after returning.
        let status = unsafe {
            raw::tj3DecompressHeader(self.handle.as_ptr(), jpeg.as_ptr(), jpeg.len() as c_ulong)
        };
        if status != 0 {
            return Err(self.failure());
        }
        Ok(())
    }

    /// Decompresses into `out`, which must hold `rows` rows of `pitch` bytes: TurboJPEG writes
    /// exactly the scaled output height in rows, each `pitch` bytes apart, and the caller
    /// computes that height with TurboJPEG's own rounding (`scaled`).
    fn decompress(
        &mut self,
        jpeg: &[u8],
        out: &mut [u8],
        pitch: usize,
        rows: usize,
        pixel_format: raw::TJPF,
    ) -> Result<(), Failure> {
        // The FFI write below is bounded by pitch * rows; refuse anything that could overrun.
        let fits = pitch
            .checked_mul(rows)
            .is_some_and(|needed| needed <= out.len());
        let pitch_int = c_int::try_from(pitch);
        let (true, Ok(pitch_int)) = (fits, pitch_int) else {
            return Err(Failure {
                warning: false,
                message: "output buffer does not match the image size".into(),
            });
        };
        // SAFETY: the handle is live; `jpeg` is readable for its length; `out` is writable for
        // at least pitch * rows bytes (checked above), and rows * pitch is exactly what
        // tj3Decompress8 writes for the header and scaling factor set on this instance.
        let status = unsafe {
            raw::tj3Decompress8(
                self.handle.as_ptr(),
                jpeg.as_ptr(),
                jpeg.len() as c_ulong,
                out.as_mut_ptr(),
                pitch_int,
                pixel_format,
            )
        };
        if status != 0 {
            return Err(self.failure());
        }
        Ok(())
    }

    fn failure(&mut self) -> Failure {
        // SAFETY: the handle is live. tj3GetErrorStr returns a pointer to a NUL-terminated
        // string owned by TurboJPEG (per instance or thread-local) that stays valid until the
        // next TurboJPEG call on this thread; it is copied out before any other call.
        let (code, message) = unsafe {
            let code = raw::tj3GetErrorCode(self.handle.as_ptr());
            let text = raw::tj3GetErrorStr(self.handle.as_ptr());
            let message = if text.is_null() {
                String::from("unknown TurboJPEG error")
            } else {
                CStr::from_ptr(text).to_string_lossy().into_owned()
            };
            (code, message)
        };
        Failure {
            warning: code == raw::TJERR_TJERR_WARNING as c_int,
            message,
        }
    }
}

impl Drop for Turbo {
    fn drop(&mut self) {
        // SAFETY: the handle is live and is never used again after this.
        unsafe { raw::tj3Destroy(self.handle.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_picks_smallest_factor_that_keeps_min_side() {
        // 4000 x 3000: 3000 * k / 8 >= 512 first holds at k = 2 (750).
        assert_eq!(scale_eighths(4000, 3000, 512), 2);
        assert_eq!(scale_eighths(4000, 3000, 256), 1);
        assert_eq!(scale_eighths(4000, 3000, 3000), 8);
        // Smaller than the minimum already: no scaling.
        assert_eq!(scale_eighths(300, 200, 512), 8);
        assert_eq!(scaled(4000, 2), 1000);
        assert_eq!(scaled(1001, 1), 126);
    }

    #[test]
    fn eoi_walk_handles_segments_and_entropy_data() {
        // SOI, APP0 (length 4, body contains FFD9 which must be skipped), SOS (length 2),
        // entropy data with a stuffed FF00 and RST0, then EOI.
        let complete = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xFF, 0xD9, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF,
            0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xFF, 0xD9,
        ];
        assert!(reaches_eoi(&complete));
        for cut in 0..complete.len() {
            assert!(!reaches_eoi(&complete[..cut]), "cut at {cut}");
        }
    }
}
