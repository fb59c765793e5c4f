//! PNG through the `png` crate with no transformations, converting the raw samples to RGB
//! the way Pillow's `convert("RGB")` does (which differs from the `image` crate's conversions):
//!
//! * alpha (grey+alpha, RGBA, tRNS) is dropped, never composited;
//! * palette images look colours up in PLTE and ignore tRNS;
//! * 1-, 2- and 4-bit grey are scaled by bit replication (x255, x85, x17);
//! * 16-bit grey opens in Pillow as mode `I;16`, whose conversion **clips** at 255;
//! * 16-bit grey+alpha, RGB and RGBA keep the high byte of each sample.
//!
//! The raw samples are decoded into the front of a buffer big enough for either layout and
//! converted in place, so no second full-size buffer is needed.

use std::io::Cursor;

use png::{BitDepth, ColorType, DecodingError, Transformations};

use crate::error::Error;
use crate::format::Format;
use crate::limit::{alloc_zeroed, Limits};
use crate::RgbImage;

/// Smallest allowance, in bytes, for the `png` crate's own working memory (row buffers, the
/// inflate window, ancillary chunks) when the decode budget is nearly used up by the image
/// buffer. A 30,000-pixel RGBA16 row is 240 KB; 4 MiB covers rows and a large ICC profile.
const MIN_PNG_WORKING_BYTES: u64 = 4 * 1024 * 1024;

pub(crate) fn decode(bytes: &[u8], limits: &Limits) -> Result<RgbImage, Error> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(Transformations::IDENTITY);
    // A flipped CRC or Adler-32 must not make a file unhashable: Pillow does not check the
    // CRC of image data either, and an evader would otherwise only need to corrupt a checksum.
    decoder.ignore_checksums(true);

    let header = decoder
        .read_header_info()
        .map_err(|e| map_error(e, limits))?;
    let (width, height) = (header.width, header.height);
    let layout = Layout::new(header.color_type, header.bit_depth);
    limits.check_image(width.into(), height.into(), 0)?;
    let raw_row = (u64::from(width) * layout.bits_per_pixel()).div_ceil(8);
    let raw_len = raw_row * u64::from(height);
    let rgb_len = u64::from(width) * u64::from(height) * 3;
    let buffer_len = raw_len.max(rgb_len);
    limits.check_decode_bytes(buffer_len)?;

    let working = limits
        .max_decode_bytes
        .saturating_sub(buffer_len)
        .max(MIN_PNG_WORKING_BYTES);
    decoder.set_limits(png::Limits {
        bytes: usize::try_from(working).unwrap_or(usize::MAX),
    });
    let mut reader = decoder.read_info().map_err(|e| map_error(e, limits))?;
    let needed = reader
        .output_buffer_size()
        .ok_or_else(|| Limits::decoder_memory_exceeded(limits.max_decode_bytes))?;
    // Both are under the decode budget, which the checks above kept within usize.
    let (raw_len, buffer_len) = (raw_len as usize, buffer_len as usize);
    if needed != raw_len {
        return Err(Error::Internal(format!(
            "png needs {needed} bytes for a frame, expected {raw_len}"
        )));
    }
    let palette = match layout {
        Layout::Indexed(_) => Some(palette_table(reader.info().palette.as_deref())),
        _ => None,
    };

    let mut buffer = alloc_zeroed(buffer_len, limits)?;
    read_rows(
        &mut reader,
        &mut buffer[..raw_len],
        raw_row as usize,
        layout,
        limits,
    )?;

    let (w, h) = (width as usize, height as usize);
    convert_in_place(
        &mut buffer,
        w,
        h,
        raw_row as usize,
        layout,
        palette.as_ref(),
    );
    buffer.truncate(w * h * 3);
    buffer.shrink_to_fit();
    Ok(RgbImage {
        width,
        height,
        data: buffer,
    })
}

/// Reads every row of the image into `image` (rows of `stride` bytes), de-interlacing Adam7
/// passes, and stops as soon as the last row is in: Pillow does the same and ignores what
/// follows the image data (a missing IEND, trailing junk), so the `png` crate's end-of-frame
/// bookkeeping must not turn those into errors.
fn read_rows<R: std::io::BufRead + std::io::Seek>(
    reader: &mut png::Reader<R>,
    image: &mut [u8],
    stride: usize,
    layout: Layout,
    limits: &Limits,
) -> Result<(), Error> {
    let info = reader.info();
    let (width, height) = (info.width, info.height);
    let rows = if info.interlaced {
        adam7_row_count(width, height)
    } else {
        height as usize
    };
    let mut pass_row = if info.interlaced {
        vec![0u8; stride]
    } else {
        Vec::new()
    };
    // At most 64 (RGBA, 16 bits per sample).
    let bits_per_pixel = layout.bits_per_pixel() as u8;
    for row in 0..rows {
        let target = if pass_row.is_empty() {
            &mut image[row * stride..(row + 1) * stride]
        } else {
            &mut pass_row[..]
        };
        let interlace = reader
            .read_row(target)
            .map_err(|e| map_error(e, limits))?
            .ok_or_else(|| Error::corrupt(Format::Png, "image data ends before the last row"))?;
        if let png::InterlaceInfo::Adam7(adam7) = interlace {
            png::expand_interlaced_row(image, stride, &pass_row, &adam7, bits_per_pixel);
        }
    }
    Ok(())
}

/// The number of rows an Adam7-interlaced image stores over its seven passes. A pass with no
/// columns stores no rows.
fn adam7_row_count(width: u32, height: u32) -> usize {
    // (first column, first row, column step, row step) of each pass.
    const PASSES: [(u32, u32, u32, u32); 7] = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ];
    PASSES
        .iter()
        .filter(|&&(x0, _, _, _)| width > x0)
        .map(|&(_, y0, _, dy)| height.saturating_sub(y0).div_ceil(dy) as usize)
        .sum()
}

/// Maps `png` errors: running out of input is truncation, its allocation guard is a limit,
/// anything else in the data is corruption. `Parameter` errors are misuse on our side.
fn map_error(error: DecodingError, limits: &Limits) -> Error {
    match error {
        DecodingError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::Truncated {
                format: Format::Png,
            }
        }
        DecodingError::IoError(e) => Error::corrupt(Format::Png, e.to_string()),
        DecodingError::Format(e) => Error::corrupt(Format::Png, e.to_string()),
        DecodingError::LimitsExceeded => Limits::decoder_memory_exceeded(limits.max_decode_bytes),
        DecodingError::Parameter(e) => Error::Internal(format!("png decoder misuse: {e}")),
    }
}

/// The raw sample layout of a PNG and how it becomes RGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Greyscale of 1, 2, 4, 8 or 16 bits.
    Grey(u8),
    /// Palette indices of 1, 2, 4 or 8 bits.
    Indexed(u8),
    /// Grey + alpha, 8 or 16 bits per sample.
    GreyAlpha(u8),
    /// RGB, 8 or 16 bits per sample.
    Rgb(u8),
    /// RGBA, 8 or 16 bits per sample.
    Rgba(u8),
}

impl Layout {
    fn new(color_type: ColorType, depth: BitDepth) -> Self {
        let bits = depth as u8;
        match color_type {
            ColorType::Grayscale => Layout::Grey(bits),
            ColorType::Indexed => Layout::Indexed(bits),
            ColorType::GrayscaleAlpha => Layout::GreyAlpha(bits),
            ColorType::Rgb => Layout::Rgb(bits),
            ColorType::Rgba => Layout::Rgba(bits),
        }
    }

    fn bits_per_pixel(self) -> u64 {
        let (samples, bits) = match self {
            Layout::Grey(bits) | Layout::Indexed(bits) => (1, bits),
            Layout::GreyAlpha(bits) => (2, bits),
            Layout::Rgb(bits) => (3, bits),
            Layout::Rgba(bits) => (4, bits),
        };
        samples * u64::from(bits)
    }
}

/// 256 RGB entries: PLTE's colours, then black, which is what Pillow 13 shows for an index
/// past the end of PLTE.
fn palette_table(plte: Option<&[u8]>) -> [[u8; 3]; 256] {
    let mut table = [[0u8; 3]; 256];
    if let Some(plte) = plte {
        for (entry, rgb) in table.iter_mut().zip(plte.chunks_exact(3)) {
            entry.copy_from_slice(rgb);
        }
    }
    table
}

/// Rewrites `buffer`, holding `height` raw rows of `raw_row` bytes at its front, as packed RGB.
fn convert_in_place(
    buffer: &mut [u8],
    width: usize,
    height: usize,
    raw_row: usize,
    layout: Layout,
    palette: Option<&[[u8; 3]; 256]>,
) {
    match layout {
        // Raw RGB8 is already the output.
        Layout::Rgb(8) => {}
        // Up to three bytes per pixel: expand from the last pixel backwards so no raw byte is
        // overwritten before it is read (output offsets are never behind input offsets).
        Layout::Grey(bits) => {
            expand_backwards(buffer, width, height, raw_row, |row, x| {
                let v = grey_sample(row, x, bits);
                [v; 3]
            });
        }
        Layout::Indexed(bits) => {
            let fallback = palette_table(None);
            let table = palette.unwrap_or(&fallback);
            expand_backwards(buffer, width, height, raw_row, |row, x| {
                table[usize::from(packed_sample(row, x, bits))]
            });
        }
        Layout::GreyAlpha(8) => {
            expand_backwards(buffer, width, height, raw_row, |row, x| [row[2 * x]; 3]);
        }
        // Four or more bytes per pixel: compact forwards; output offset 3i never passes the
        // input offset of any pixel not yet read.
        Layout::GreyAlpha(_) => compact_forwards(buffer, width * height, 4, |p| [p[0]; 3]),
        Layout::Rgb(_) => compact_forwards(buffer, width * height, 6, |p| [p[0], p[2], p[4]]),
        Layout::Rgba(8) => compact_forwards(buffer, width * height, 4, |p| [p[0], p[1], p[2]]),
        Layout::Rgba(_) => compact_forwards(buffer, width * height, 8, |p| [p[0], p[2], p[4]]),
    }
}

/// One grey sample of `bits` bits as Pillow's `L` value (or, for 16 bits, `I;16` clipped).
#[inline]
fn grey_sample(row: &[u8], x: usize, bits: u8) -> u8 {
    match bits {
        16 => {
            let v = u16::from_be_bytes([row[2 * x], row[2 * x + 1]]);
            // Pillow's I;16 -> RGB conversion clips rather than scales.
            v.min(255) as u8
        }
        8 => row[x],
        // Bit replication: 1 -> x255, 2 -> x85, 4 -> x17.
        _ => packed_sample(row, x, bits) * (255 / ((1u8 << bits) - 1)),
    }
}

/// Sample `x` of a row packed MSB-first at `bits` (1, 2, 4 or 8) bits per sample.
#[inline]
fn packed_sample(row: &[u8], x: usize, bits: u8) -> u8 {
    if bits == 8 {
        return row[x];
    }
    let bit = x * usize::from(bits);
    let shift = 8 - usize::from(bits) - bit % 8;
    (row[bit / 8] >> shift) & ((1u8 << bits) - 1)
}

fn expand_backwards(
    buffer: &mut [u8],
    width: usize,
    height: usize,
    raw_row: usize,
    pixel: impl Fn(&[u8], usize) -> [u8; 3],
) {
    let out_row = width * 3;
    for y in (0..height).rev() {
        let raw_start = y * raw_row;
        for x in (0..width).rev() {
            let rgb = pixel(&buffer[raw_start..raw_start + raw_row], x);
            let out = y * out_row + x * 3;
            buffer[out..out + 3].copy_from_slice(&rgb);
        }
    }
}

fn compact_forwards(
    buffer: &mut [u8],
    pixels: usize,
    bytes_per_pixel: usize,
    pixel: impl Fn(&[u8]) -> [u8; 3],
) {
    for i in 0..pixels {
        let src = i * bytes_per_pixel;
        let rgb = pixel(&buffer[src..src + bytes_per_pixel]);
        buffer[i * 3..i * 3 + 3].copy_from_slice(&rgb);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_replication_matches_pillow() {
        assert_eq!(grey_sample(&[0b1000_0000], 0, 1), 255);
        assert_eq!(grey_sample(&[0b1000_0000], 1, 1), 0);
        assert_eq!(grey_sample(&[0b1110_0100], 0, 2), 255);
        assert_eq!(grey_sample(&[0b1110_0100], 1, 2), 170);
        assert_eq!(grey_sample(&[0b1110_0100], 2, 2), 85);
        assert_eq!(grey_sample(&[0b1110_0100], 3, 2), 0);
        assert_eq!(grey_sample(&[0xF1], 0, 4), 255);
        assert_eq!(grey_sample(&[0xF1], 1, 4), 17);
    }

    #[test]
    fn sixteen_bit_grey_clips() {
        let row = [0x00, 0xFE, 0x00, 0xFF, 0x01, 0x00, 0xFF, 0xFF];
        let values: Vec<u8> = (0..4).map(|x| grey_sample(&row, x, 16)).collect();
        assert_eq!(values, [254, 255, 255, 255]);
    }

    #[test]
    fn backwards_expansion_handles_row_padding() {
        // 3 x 2 image of 1-bit grey: rows are one byte each, padded.
        let mut buffer = vec![0u8; 3 * 2 * 3];
        buffer[0] = 0b1010_0000;
        buffer[1] = 0b0100_0000;
        convert_in_place(&mut buffer, 3, 2, 1, Layout::Grey(1), None);
        assert_eq!(
            buffer,
            [255, 255, 255, 0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255, 0, 0, 0]
        );
    }

    #[test]
    fn forwards_compaction_keeps_high_bytes() {
        let mut buffer = vec![0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0];
        convert_in_place(&mut buffer, 1, 1, 8, Layout::Rgba(16), None);
        assert_eq!(&buffer[..3], [0x12, 0x56, 0x9A]);
    }

    #[test]
    fn palette_past_plte_is_black() {
        let table = palette_table(Some(&[1, 2, 3, 4, 5, 6]));
        assert_eq!(table[0], [1, 2, 3]);
        assert_eq!(table[1], [4, 5, 6]);
        assert_eq!(table[2], [0, 0, 0]);
        assert_eq!(table[255], [0, 0, 0]);
    }

    #[test]
    fn adam7_rows() {
        // 1 x 1: only pass 1 has a column.
        assert_eq!(adam7_row_count(1, 1), 1);
        // 8 x 8: passes store 1, 1, 1, 2, 2, 4, 4 rows.
        assert_eq!(adam7_row_count(8, 8), 15);
        // 3 x 9: pass 2 (starts at column 4) is empty.
        assert_eq!(adam7_row_count(3, 9), 2 + 1 + 3 + 2 + 5 + 4);
    }
}
