//! BMP and TIFF through the `image` crate's decoders, with its limits set from ours and the
//! declared size checked before any pixel buffer exists.
//!
//! Conversion to RGB follows Pillow's `convert("RGB")`: alpha is dropped; 16-bit grey (Pillow
//! mode `I;16`) is clipped at 255; 16-bit colour samples keep their high byte. Two more Pillow
//! behaviours are reproduced on top of `image`:
//! * TIFF: Pillow's TIFF plugin applies the Orientation tag while loading (its `load_end` calls
//!   `exif_transpose`), unlike every other format, so the reference pixels of a TIFF are
//!   rotated; so are ours.
//! * 16-bit BMP (5-5-5 and 5-6-5): Pillow widens a 5-bit sample as `v * 255 / 31` rounded
//!   down, `image` rounds to nearest; the mapping is undone and redone (see `Bmp16Fix`).

use std::io::Cursor;

use image::error::ImageError;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::error::Error;
use crate::format::Format;
use crate::limit::{alloc_zeroed, Limits};
use crate::pixel::keep_first_three_in_place;
use crate::RgbImage;

pub(crate) fn decode(bytes: &[u8], format: Format, limits: &Limits) -> Result<RgbImage, Error> {
    let image_format = match format {
        Format::Bmp => ImageFormat::Bmp,
        Format::Tiff => ImageFormat::Tiff,
        other => {
            return Err(Error::Internal(format!(
                "{other} routed to the BMP/TIFF decoder"
            )))
        }
    };
    // Our limits first, from the header as declared: the decoders have their own, lower,
    // ceilings (65535 px for BMP) and consistency checks that would report a bomb as corrupt.
    if let Some((width, height)) = declared_size(bytes, format) {
        limits.check_image(width, height, 0)?;
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    // Width and height are checked by us just below, to report which one is over; the
    // allocation cap stays with `image` so its decoders cannot over-allocate on the way.
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = None;
    image_limits.max_image_height = None;
    image_limits.max_alloc = Some(limits.max_decode_bytes);
    reader.limits(image_limits);

    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_error(e, format, limits))?;
    let (width, height) = decoder.dimensions();
    limits.check_image(width.into(), height.into(), 0)?;
    let orientation = match format {
        Format::Tiff => decoder
            .orientation()
            .map_err(|e| map_error(e, format, limits))?,
        _ => Orientation::NoTransforms,
    };
    // The decoded buffer, a second one if the orientation needs a rotated copy, plus an RGB
    // buffer when the layout cannot be converted in place.
    let decoded = decoder.total_bytes();
    let copies = if orientation == Orientation::NoTransforms {
        1
    } else {
        2
    };
    let rgb = u64::from(width) * u64::from(height) * 3;
    limits.check_decode_bytes(decoded.saturating_mul(copies).saturating_add(rgb))?;

    let mut image =
        DynamicImage::from_decoder(decoder).map_err(|e| map_error(e, format, limits))?;
    image.apply_orientation(orientation);
    let mut rgb = to_rgb(image, format, limits)?;
    if format == Format::Bmp {
        if let Some(fix) = Bmp16Fix::detect(bytes) {
            fix.apply(&mut rgb.data);
        }
    }
    Ok(rgb)
}

/// The width and height a BMP or TIFF header declares (for TIFF, its first image), read
/// without trusting anything else in the file; `None` if the header is too short or odd, in
/// which case the decoder's own parsing reports the problem.
fn declared_size(bytes: &[u8], format: Format) -> Option<(u64, u64)> {
    match format {
        Format::Bmp => bmp_declared_size(bytes),
        Format::Tiff => tiff_declared_size(bytes),
        _ => None,
    }
}

fn bmp_declared_size(bytes: &[u8]) -> Option<(u64, u64)> {
    let header_size = u32::from_le_bytes(bytes.get(14..18)?.try_into().ok()?);
    if header_size == 12 {
        // OS/2 1.x BITMAPCOREHEADER: unsigned 16-bit sizes.
        let width = u16::from_le_bytes(bytes.get(18..20)?.try_into().ok()?);
        let height = u16::from_le_bytes(bytes.get(20..22)?.try_into().ok()?);
        return Some((width.into(), height.into()));
    }
    // Every later header: signed 32-bit sizes; a negative height means top-down rows.
    let width = i32::from_le_bytes(bytes.get(18..22)?.try_into().ok()?);
    let height = i32::from_le_bytes(bytes.get(22..26)?.try_into().ok()?);
    Some((width.unsigned_abs().into(), height.unsigned_abs().into()))
}

fn tiff_declared_size(bytes: &[u8]) -> Option<(u64, u64)> {
    let little = bytes.get(..2)? == b"II";
    let read = |at: usize, len: usize| -> Option<u64> {
        let field = bytes.get(at..at.checked_add(len)?)?;
        let mut value = 0u64;
        for i in 0..len {
            let byte = if little { field[len - 1 - i] } else { field[i] };
            value = (value << 8) | u64::from(byte);
        }
        Some(value)
    };
    let big_tiff = read(2, 2)? == 43;
    // (offset of first IFD, size of the entry count, size of one entry, offset of the value)
    let (ifd, count_len, entry_len, value_at) = if big_tiff {
        (read(8, 8)?, 8, 20, 12)
    } else {
        (read(4, 4)?, 2, 12, 8)
    };
    let ifd = usize::try_from(ifd).ok()?;
    let entries = usize::try_from(read(ifd, count_len)?).ok()?;
    let (mut width, mut height) = (None, None);
    for n in 0..entries.min(4096) {
        let entry = ifd + count_len + n * entry_len;
        let tag = read(entry, 2)?;
        if tag != 256 && tag != 257 {
            continue;
        }
        // SHORT, LONG or (BigTIFF) LONG8, stored in the entry itself.
        let value = match read(entry + 2, 2)? {
            3 => read(entry + value_at, 2)?,
            4 => read(entry + value_at, 4)?,
            16 => read(entry + value_at, 8)?,
            _ => return None,
        };
        if tag == 256 {
            width = Some(value);
        } else {
            height = Some(value);
        }
    }
    Some((width?, height?))
}

/// Re-widens the channels of a 16-bit BMP the way Pillow does (`BGR;15` and `BGR;16` rawmodes:
/// `v * 255 / max` rounded down). `image` widens with lookup tables rounded to nearest, which
/// are strictly increasing, so each output byte identifies its source value exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bmp16Fix {
    /// Bits of the red, green and blue fields.
    bits: [u32; 3],
}

impl Bmp16Fix {
    const BI_RGB: u32 = 0;
    const BI_BITFIELDS: u32 = 3;

    /// The fix for a 16-bit BMP with the 5-5-5 layout (no masks, or 5-5-5 masks) or 5-6-5
    /// masks; `None` for anything else, which needs no fix (Pillow refuses other 16-bit masks).
    fn detect(bytes: &[u8]) -> Option<Self> {
        let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
        let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
        let header_size = u32_at(14)?;
        // OS/2 1.x headers (12 bytes) have no compression field and no 16-bit mode.
        if header_size < 40 || u16_at(28)? != 16 {
            return None;
        }
        let five_five_five = Some(Bmp16Fix { bits: [5, 5, 5] });
        match u32_at(30)? {
            Self::BI_RGB => five_five_five,
            Self::BI_BITFIELDS => match (u32_at(54)?, u32_at(58)?, u32_at(62)?) {
                (0x7C00, 0x03E0, 0x001F) => five_five_five,
                (0xF800, 0x07E0, 0x001F) => Some(Bmp16Fix { bits: [5, 6, 5] }),
                _ => None,
            },
            _ => None,
        }
    }

    fn apply(self, rgb: &mut [u8]) {
        let tables = self.bits.map(|bits| {
            let max = (1u32 << bits) - 1;
            let mut table = [0u8; 256];
            for v in 0..=max {
                // `image`'s widening: v * 255 / max rounded to nearest.
                let nearest = (v * 255 + max / 2) / max;
                // Pillow's: rounded down. Both are at most 255.
                table[nearest as usize] = (v * 255 / max) as u8;
            }
            table
        });
        for pixel in rgb.chunks_exact_mut(3) {
            for (sample, table) in pixel.iter_mut().zip(&tables) {
                *sample = table[usize::from(*sample)];
            }
        }
    }
}

fn to_rgb(image: DynamicImage, format: Format, limits: &Limits) -> Result<RgbImage, Error> {
    let (width, height) = (image.width(), image.height());
    // Within the pixel limit, so within usize.
    let pixels = width as usize * height as usize;
    let data = match image {
        DynamicImage::ImageRgb8(buffer) => buffer.into_raw(),
        DynamicImage::ImageRgba8(buffer) => {
            let mut data = buffer.into_raw();
            keep_first_three_in_place(&mut data, pixels, 4);
            data
        }
        DynamicImage::ImageLuma8(buffer) => {
            let mut data = buffer.into_raw();
            data.resize(pixels * 3, 0);
            // Backwards so each grey byte is read before its slot is overwritten (3i >= i).
            for i in (0..pixels).rev() {
                let v = data[i];
                data[i * 3..i * 3 + 3].fill(v);
            }
            data
        }
        DynamicImage::ImageLumaA8(buffer) => {
            let mut data = buffer.into_raw();
            data.resize(pixels * 3, 0);
            // Backwards: pixel i's grey byte at 2i is read before 3i..3i+3 is written.
            for i in (0..pixels).rev() {
                let v = data[i * 2];
                data[i * 3..i * 3 + 3].fill(v);
            }
            data
        }
        DynamicImage::ImageLuma16(buffer) => {
            expand16(buffer.as_raw(), 1, limits, |p| [clip16(p[0]); 3])?
        }
        DynamicImage::ImageLumaA16(buffer) => {
            expand16(buffer.as_raw(), 2, limits, |p| [clip16(p[0]); 3])?
        }
        DynamicImage::ImageRgb16(buffer) => expand16(buffer.as_raw(), 3, limits, |p| {
            [high(p[0]), high(p[1]), high(p[2])]
        })?,
        DynamicImage::ImageRgba16(buffer) => expand16(buffer.as_raw(), 4, limits, |p| {
            [high(p[0]), high(p[1]), high(p[2])]
        })?,
        _ => {
            return Err(Error::UnsupportedFeature {
                format,
                detail: "floating-point samples".into(),
            })
        }
    };
    Ok(RgbImage {
        width,
        height,
        data,
    })
}

/// Pillow's `I;16` to 8-bit conversion: values above 255 clip, nothing is scaled.
fn clip16(v: u16) -> u8 {
    v.min(255) as u8
}

/// The high byte of a 16-bit sample, which Pillow keeps for 16-bit colour.
fn high(v: u16) -> u8 {
    (v >> 8) as u8
}

fn expand16(
    samples: &[u16],
    channels: usize,
    limits: &Limits,
    pixel: impl Fn(&[u16]) -> [u8; 3],
) -> Result<Vec<u8>, Error> {
    let pixels = samples.len() / channels;
    let mut data = alloc_zeroed(pixels * 3, limits)?;
    for (out, p) in data.chunks_exact_mut(3).zip(samples.chunks_exact(channels)) {
        out.copy_from_slice(&pixel(p));
    }
    Ok(data)
}

fn map_error(error: ImageError, format: Format, limits: &Limits) -> Error {
    match error {
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::Truncated { format }
        }
        ImageError::Limits(_) => Limits::decoder_memory_exceeded(limits.max_decode_bytes),
        ImageError::Unsupported(e) => Error::UnsupportedFeature {
            format,
            detail: e.to_string(),
        },
        ImageError::Parameter(e) => Error::Internal(format!("image decoder misuse: {e}")),
        ImageError::Encoding(e) => Error::Internal(format!("unexpected encoding error: {e}")),
        other => Error::corrupt(format, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiff_size_from_either_byte_order() {
        // Little-endian classic TIFF: IFD at 8 with two entries (width LONG 300, length SHORT 7).
        let mut le = b"II*\0\x08\0\0\0\x02\0".to_vec();
        le.extend_from_slice(&[0x00, 0x01, 4, 0, 1, 0, 0, 0, 0x2C, 0x01, 0, 0]);
        le.extend_from_slice(&[0x01, 0x01, 3, 0, 1, 0, 0, 0, 7, 0, 0, 0]);
        assert_eq!(tiff_declared_size(&le), Some((300, 7)));
        let mut be = b"MM\0*\0\0\0\x08\0\x02".to_vec();
        be.extend_from_slice(&[0x01, 0x00, 0, 4, 0, 0, 0, 1, 0, 0, 0x01, 0x2C]);
        be.extend_from_slice(&[0x01, 0x01, 0, 3, 0, 0, 0, 1, 0, 7, 0, 0]);
        assert_eq!(tiff_declared_size(&be), Some((300, 7)));
        assert_eq!(tiff_declared_size(&be[..20]), None);
    }

    #[test]
    fn bmp_size_is_unsigned() {
        let mut header = vec![0u8; 26];
        header[14..18].copy_from_slice(&40u32.to_le_bytes());
        header[18..22].copy_from_slice(&640i32.to_le_bytes());
        header[22..26].copy_from_slice(&(-480i32).to_le_bytes());
        assert_eq!(bmp_declared_size(&header), Some((640, 480)));
    }

    #[test]
    fn bmp16_fix_turns_nearest_into_floor() {
        let fix = Bmp16Fix { bits: [5, 6, 5] };
        // 5-bit 16: image gives round(16 * 255 / 31) = 132, Pillow floor = 131.
        // 6-bit 1: image gives round(255 / 63) = 4, Pillow floor = 4.
        // 6-bit 58: image gives round(58 * 255 / 63) = 235, Pillow floor = 234.
        let mut rgb = [132, 4, 255, 0, 235, 8];
        fix.apply(&mut rgb);
        assert_eq!(rgb, [131, 4, 255, 0, 234, 8]);
    }

    #[test]
    fn bmp16_fix_detects_only_16_bit_layouts() {
        let mut header = vec![0u8; 66];
        header[..2].copy_from_slice(b"BM");
        header[14..18].copy_from_slice(&40u32.to_le_bytes());
        header[28..30].copy_from_slice(&16u16.to_le_bytes());
        assert_eq!(
            Bmp16Fix::detect(&header),
            Some(Bmp16Fix { bits: [5, 5, 5] })
        );
        header[30..34].copy_from_slice(&3u32.to_le_bytes());
        header[54..58].copy_from_slice(&0xF800u32.to_le_bytes());
        header[58..62].copy_from_slice(&0x07E0u32.to_le_bytes());
        header[62..66].copy_from_slice(&0x001Fu32.to_le_bytes());
        assert_eq!(
            Bmp16Fix::detect(&header),
            Some(Bmp16Fix { bits: [5, 6, 5] })
        );
        header[28..30].copy_from_slice(&24u16.to_le_bytes());
        assert_eq!(Bmp16Fix::detect(&header), None);
        assert_eq!(Bmp16Fix::detect(b"BM"), None);
    }
}
