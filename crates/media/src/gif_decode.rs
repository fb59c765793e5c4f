//! GIF: the first frame, laid on its canvas the way Pillow 13 builds frame 0.
//!
//! What Pillow does (GifImagePlugin: `_seek(0)`, `load_prepare`, then `convert("RGB")`):
//! * the canvas is the logical screen, grown to contain the first frame's rectangle if that
//!   rectangle sticks out of it;
//! * pixels outside the rectangle hold the frame's transparent index when it has one, else
//!   index 0; they are *not* the background colour;
//! * `convert("RGB")` ignores transparency: every index, the transparent one included, shows
//!   its palette colour (the local colour table if the frame has one, else the global one);
//! * indices past the end of the colour table show black, except that a table which is exactly
//!   a grey ramp (entry i = (i, i, i)) makes Pillow open the image as mode `L`, where every
//!   index i is grey level i.

use std::num::NonZeroU64;

use gif::{ColorOutput, DecodingError, MemoryLimit};

use crate::error::Error;
use crate::format::Format;
use crate::limit::{alloc_zeroed, Limits};
use crate::RgbImage;

pub(crate) fn decode(bytes: &[u8], limits: &Limits) -> Result<RgbImage, Error> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(ColorOutput::Indexed);
    options.check_frame_consistency(false);
    // Pillow skips blocks it does not know; so do we.
    options.allow_unknown_blocks(true);
    options.set_memory_limit(MemoryLimit::Bytes(
        NonZeroU64::new(limits.max_decode_bytes).unwrap_or(NonZeroU64::MIN),
    ));
    let mut decoder = options.read_info(bytes).map_err(|e| map_error(e, limits))?;
    let screen = (u64::from(decoder.width()), u64::from(decoder.height()));
    let global_palette = decoder.global_palette().map(<[u8]>::to_vec);

    let frame = decoder
        .next_frame_info()
        .map_err(|e| map_error(e, limits))?
        .ok_or_else(|| Error::corrupt(Format::Gif, "no image in the file"))?;
    let (left, top) = (u64::from(frame.left), u64::from(frame.top));
    let (frame_width, frame_height) = (usize::from(frame.width), usize::from(frame.height));
    let fill = frame.transparent.unwrap_or(0);
    let table = colour_table(frame.palette.as_deref().or(global_palette.as_deref()));

    let canvas_width = screen.0.max(left + frame_width as u64);
    let canvas_height = screen.1.max(top + frame_height as u64);
    limits.check_image(canvas_width, canvas_height, 0)?;
    let frame_bytes = (frame_width * frame_height) as u64;
    limits.check_decode_bytes(canvas_width * canvas_height * 3 + frame_bytes)?;

    // Rows the LZW data never reaches keep the fill index, as they do in Pillow.
    let mut indices = alloc_zeroed(frame_width * frame_height, limits)?;
    indices.fill(fill);
    decoder
        .read_into_buffer(&mut indices)
        .map_err(|e| map_error(e, limits))?;

    // The canvas dimensions passed the limits, so they fit in u32 and their product in usize.
    let (canvas_width, canvas_height) = (canvas_width as usize, canvas_height as usize);
    let mut data = alloc_zeroed(canvas_width * canvas_height * 3, limits)?;
    let background = table[usize::from(fill)];
    for pixel in data.chunks_exact_mut(3) {
        pixel.copy_from_slice(&background);
    }
    if frame_width > 0 {
        let (left, top) = (left as usize, top as usize);
        for (y, row) in indices.chunks_exact(frame_width).enumerate() {
            let start = ((top + y) * canvas_width + left) * 3;
            let out = &mut data[start..start + frame_width * 3];
            for (pixel, &index) in out.chunks_exact_mut(3).zip(row) {
                pixel.copy_from_slice(&table[usize::from(index)]);
            }
        }
    }
    Ok(RgbImage {
        width: canvas_width as u32,
        height: canvas_height as u32,
        data,
    })
}

/// How many images the GIF holds, counting up to `stop` (0 for a file that does not parse).
/// Image data is skipped, not decompressed, so this is cheap on any file.
pub(crate) fn count_frames(bytes: &[u8], stop: usize) -> usize {
    let mut options = gif::DecodeOptions::new();
    options.skip_frame_decoding(true);
    options.check_frame_consistency(false);
    options.allow_unknown_blocks(true);
    // Skipped frames are never allocated; the limit only guards the decoder's own buffers.
    options.set_memory_limit(MemoryLimit::Bytes(
        NonZeroU64::new(16 << 20).unwrap_or(NonZeroU64::MIN),
    ));
    let Ok(mut decoder) = options.read_info(bytes) else {
        return 0;
    };
    let mut n = 0;
    while n < stop {
        match decoder.next_frame_info() {
            Ok(Some(_)) => n += 1,
            _ => break,
        }
    }
    n
}

/// 256 RGB entries for the frame's indices, as Pillow shows them.
fn colour_table(palette: Option<&[u8]>) -> [[u8; 3]; 256] {
    let mut table = [[0u8; 3]; 256];
    match palette {
        // Pillow's `_is_palette_needed`: a table that is exactly a grey ramp gives mode L.
        Some(palette) if !is_grey_ramp(palette) => {
            for (entry, rgb) in table.iter_mut().zip(palette.chunks_exact(3)) {
                entry.copy_from_slice(rgb);
            }
        }
        _ => {
            for (i, entry) in table.iter_mut().enumerate() {
                // i < 256.
                *entry = [i as u8; 3];
            }
        }
    }
    table
}

fn is_grey_ramp(palette: &[u8]) -> bool {
    palette
        .chunks_exact(3)
        .enumerate()
        .all(|(i, rgb)| rgb.iter().all(|&c| usize::from(c) == i))
}

fn map_error(error: DecodingError, limits: &Limits) -> Error {
    match error {
        DecodingError::UnexpectedEof => Error::Truncated {
            format: Format::Gif,
        },
        DecodingError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Error::Truncated {
            format: Format::Gif,
        },
        DecodingError::MemoryLimit | DecodingError::OutOfMemory => {
            Limits::decoder_memory_exceeded(limits.max_decode_bytes)
        }
        other => Error::corrupt(Format::Gif, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_past_the_table_are_black() {
        let table = colour_table(Some(&[10, 20, 30, 40, 50, 60]));
        assert_eq!(table[0], [10, 20, 30]);
        assert_eq!(table[1], [40, 50, 60]);
        assert_eq!(table[2], [0, 0, 0]);
    }

    #[test]
    fn grey_ramp_table_means_index_is_grey_level() {
        let ramp: Vec<u8> = (0..4u8).flat_map(|i| [i; 3]).collect();
        let table = colour_table(Some(&ramp));
        assert_eq!(table[3], [3, 3, 3]);
        assert_eq!(table[200], [200, 200, 200]);
        assert_eq!(colour_table(None)[17], [17, 17, 17]);
    }
}
