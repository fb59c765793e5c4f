//! Compatibility with Meta's C++ command-line tool (`pdq-photo-hasher`).
//!
//! That tool decodes through CImg/ImageMagick and, for any image with a side over 512 px,
//! first squashes it to 512×512 with CImg's nearest-neighbour `resize` (aspect ratio not kept).
//! It then hashes with f32 luma, except that ImageMagick hands CImg a one-channel PGM when every
//! pixel is grey, which takes the grey path (`Y = v`).

use crate::hasher::{DihedralHashes, Hasher, PdqOutput, Pixels};
use crate::luma::LumaMode;
use crate::Error;

/// Side the C++ tool squashes large images to.
pub const CPP_DOWNSAMPLE_SIDE: usize = 512;

/// CImg's nearest-neighbour source index for output `x` of `out` over `len` inputs:
/// `floor(x * len / out)` evaluated in f64 as CImg accumulates it.
fn nearest_index(x: usize, len: usize, out: usize) -> usize {
    ((x as f64 * len as f64) / out as f64) as usize
}

/// Nearest-neighbour resize of interleaved RGB8 to `new_w × new_h`, as CImg's `resize(.., 1)`.
/// `rgb` must hold `w × h` pixels.
pub fn squash_nearest(rgb: &[u8], w: usize, h: usize, new_w: usize, new_h: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(new_w * new_h * 3);
    let xs: Vec<usize> = (0..new_w).map(|x| nearest_index(x, w, new_w)).collect();
    for y in 0..new_h {
        let sy = nearest_index(y, h, new_h);
        let row = &rgb[sy * w * 3..(sy + 1) * w * 3];
        for &sx in &xs {
            out.extend_from_slice(&row[sx * 3..sx * 3 + 3]);
        }
    }
    out
}

/// The pixels the C++ tool would hash, with their size and whether they take the grey path.
struct CppInput {
    pixels: Vec<u8>,
    width: usize,
    height: usize,
    grey: bool,
}

fn cpp_input(rgb: &[u8], width: usize, height: usize) -> Result<CppInput, Error> {
    let expected = width.checked_mul(height).and_then(|n| n.checked_mul(3));
    if expected != Some(rgb.len()) {
        return Err(Error::BadBuffer {
            width,
            height,
            expected: expected.unwrap_or(usize::MAX),
            actual: rgb.len(),
        });
    }
    let (pixels, width, height) = if width > CPP_DOWNSAMPLE_SIDE || height > CPP_DOWNSAMPLE_SIDE {
        let side = CPP_DOWNSAMPLE_SIDE;
        (squash_nearest(rgb, width, height, side, side), side, side)
    } else {
        (rgb.to_vec(), width, height)
    };
    let grey = pixels.chunks_exact(3).all(|p| p[0] == p[1] && p[1] == p[2]);
    let pixels = if grey {
        pixels.chunks_exact(3).map(|p| p[0]).collect()
    } else {
        pixels
    };
    Ok(CppInput {
        pixels,
        width,
        height,
        grey,
    })
}

impl Hasher {
    /// Hash as Meta's C++ tool computes it: 512×512 nearest squash for large images, f32 luma,
    /// grey path for all-grey images.
    pub fn hash_rgb_cpp512(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
    ) -> Result<PdqOutput, Error> {
        let input = cpp_input(rgb, width, height)?;
        let mut cpp = Hasher::with_luma(LumaMode::F32);
        cpp.hash(input.as_pixels(), input.width, input.height)
    }

    /// [`Hasher::hash_rgb_cpp512`] with the 8 dihedral hashes.
    pub fn hash_rgb_cpp512_dihedral(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
    ) -> Result<(PdqOutput, DihedralHashes), Error> {
        let input = cpp_input(rgb, width, height)?;
        let mut cpp = Hasher::with_luma(LumaMode::F32);
        cpp.hash_dihedral(input.as_pixels(), input.width, input.height)
    }
}

impl CppInput {
    fn as_pixels(&self) -> Pixels<'_> {
        if self.grey {
            Pixels::Grey(&self.pixels)
        } else {
            Pixels::Rgb(&self.pixels)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_picks_left_and_top_samples() {
        // 4x1 -> 2x1 picks columns 0 and 2.
        let rgb = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3];
        assert_eq!(squash_nearest(&rgb, 4, 1, 2, 1), vec![0, 0, 0, 2, 2, 2]);
        // Upscaling repeats.
        assert_eq!(
            squash_nearest(&rgb[..6], 2, 1, 4, 1),
            vec![0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
        );
    }

    #[test]
    fn small_images_are_not_squashed() {
        let (w, h) = (40, 30);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        let a = Hasher::new().hash_rgb_cpp512(&rgb, w, h).unwrap();
        let b = Hasher::with_luma(LumaMode::F32)
            .hash_rgb(&rgb, w, h)
            .unwrap();
        assert_eq!(a, b);
    }
}
