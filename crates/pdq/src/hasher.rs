//! The PDQ pipeline: luma, downsample, quality, DCT, median threshold.

use crate::dct::{dct_64_to_16, quality, Dihedral};
use crate::downscale::{downsample_64, Scratch, Source, OUT};
use crate::luma::{fill_luma, LumaMode};
use crate::median::torben;
use crate::{Error, PdqHash};

/// Images with fewer rows or columns than this hash to all zeros with quality 0.
pub const MIN_HASHABLE_DIM: usize = 5;

/// Hash and quality of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PdqOutput {
    /// The 256-bit hash.
    pub hash: PdqHash,
    /// 0..=100; hashes under 50 are conventionally not matched (python-threatexchange drops them).
    pub quality: u8,
}

/// The 8 dihedral hashes of one image (approximations of the hashes of the rotated or
/// mirrored image, computed from the original's DCT), in [`Dihedral::ALL`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DihedralHashes(pub [PdqHash; 8]);

impl DihedralHashes {
    /// The hash for one transform.
    pub fn get(&self, d: Dihedral) -> PdqHash {
        self.0[d as usize]
    }
}

/// Pixels to hash.
#[derive(Debug, Clone, Copy)]
pub enum Pixels<'a> {
    /// Interleaved RGB8, row-major.
    Rgb(&'a [u8]),
    /// 8-bit grey, row-major; luma is the grey level itself (the C++ reference's grey path).
    Grey(&'a [u8]),
    /// Luma already computed by the caller, row-major.
    Luma(&'a [f32]),
}

/// A PDQ hasher that keeps its work buffers between images. Not thread-safe by design: use one
/// per thread.
#[derive(Debug, Default)]
pub struct Hasher {
    luma_mode: LumaMode,
    scratch: Scratch,
}

impl Hasher {
    /// A hasher with the bank-compatible (f64) luma.
    pub fn new() -> Hasher {
        Hasher::default()
    }

    /// A hasher with the given luma precision.
    pub fn with_luma(luma_mode: LumaMode) -> Hasher {
        Hasher {
            luma_mode,
            ..Hasher::default()
        }
    }

    /// The luma precision in use.
    pub fn luma_mode(&self) -> LumaMode {
        self.luma_mode
    }

    /// Hash of an interleaved RGB8 image, `width × height`, row-major.
    pub fn hash_rgb(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
    ) -> Result<PdqOutput, Error> {
        self.hash(Pixels::Rgb(rgb), width, height)
    }

    /// Hash, quality and the 8 dihedral hashes of an RGB8 image.
    pub fn hash_rgb_dihedral(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
    ) -> Result<(PdqOutput, DihedralHashes), Error> {
        self.hash_dihedral(Pixels::Rgb(rgb), width, height)
    }

    /// Hash and quality of an image.
    pub fn hash(
        &mut self,
        px: Pixels<'_>,
        width: usize,
        height: usize,
    ) -> Result<PdqOutput, Error> {
        Ok(match self.dct(px, width, height, false)? {
            Some((b, quality)) => PdqOutput {
                hash: bits_from_dct(&b),
                quality,
            },
            None => PdqOutput {
                hash: PdqHash::ZERO,
                quality: 0,
            },
        })
    }

    /// Hash, quality and the 8 dihedral hashes of an image.
    pub fn hash_dihedral(
        &mut self,
        px: Pixels<'_>,
        width: usize,
        height: usize,
    ) -> Result<(PdqOutput, DihedralHashes), Error> {
        let Some((b, quality)) = self.dct(px, width, height, true)? else {
            let zero = PdqOutput {
                hash: PdqHash::ZERO,
                quality: 0,
            };
            return Ok((zero, DihedralHashes([PdqHash::ZERO; 8])));
        };
        let hashes = Dihedral::ALL.map(|d| bits_from_dct(&d.apply(&b)));
        Ok((
            PdqOutput {
                hash: hashes[0],
                quality,
            },
            DihedralHashes(hashes),
        ))
    }

    /// The 16×16 DCT and quality, or `None` for images under the minimum size.
    fn dct(
        &mut self,
        px: Pixels<'_>,
        width: usize,
        height: usize,
        dihedral: bool,
    ) -> Result<Option<([f32; 256], u8)>, Error> {
        let (src, channels, len) = match px {
            Pixels::Rgb(rgb) => (Source::Rgb(rgb, self.luma_mode), 3, rgb.len()),
            Pixels::Grey(g) => (Source::Grey(g), 1, g.len()),
            Pixels::Luma(y) => (Source::Luma(y), 1, y.len()),
        };
        check_len(len, width, height, channels)?;
        if width < MIN_HASHABLE_DIM || height < MIN_HASHABLE_DIM {
            return Ok(None);
        }
        let (rows, cols) = (height, width);
        let mut a = [0.0f32; OUT * OUT];
        // The reference's single-hash entry point uses a 64×64 input as is (video frames that
        // FFmpeg already scaled); its dihedral entry point filters it like any other size.
        if rows == OUT && cols == OUT && !dihedral {
            match src {
                Source::Rgb(rgb, mode) => fill_luma(rgb, &mut a, mode),
                Source::Grey(g) => {
                    for (d, &v) in a.iter_mut().zip(g) {
                        *d = v as f32;
                    }
                }
                Source::Luma(y) => a.copy_from_slice(y),
            }
        } else {
            downsample_64(src, &mut self.scratch, rows, cols, &mut a);
        }
        let q = quality(&a);
        Ok(Some((dct_64_to_16(&a), q)))
    }
}

fn check_len(len: usize, width: usize, height: usize, channels: usize) -> Result<(), Error> {
    let expected = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(channels));
    if expected != Some(len) {
        return Err(Error::BadBuffer {
            width,
            height,
            expected: expected.unwrap_or(usize::MAX),
            actual: len,
        });
    }
    Ok(())
}

/// Bit `16*i + j` is set iff `B[i][j]` is strictly greater than Torben's median.
fn bits_from_dct(b: &[f32; 256]) -> PdqHash {
    let median = torben(b);
    let mut h = PdqHash::ZERO;
    for (k, &v) in b.iter().enumerate() {
        if v > median {
            h.set_bit(k);
        }
    }
    h
}

/// Hash of an RGB8 image with the bank-compatible defaults (allocates fresh buffers; reuse a
/// [`Hasher`] when hashing many images).
pub fn hash_rgb(rgb: &[u8], width: usize, height: usize) -> Result<PdqOutput, Error> {
    Hasher::new().hash_rgb(rgb, width, height)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_images_hash_to_zero() {
        let out = hash_rgb(&[7u8; 4 * 4 * 3], 4, 4).unwrap();
        assert_eq!(out.hash, PdqHash::ZERO);
        assert_eq!(out.quality, 0);
        let (o, d) = Hasher::new()
            .hash_rgb_dihedral(&[7u8; 2 * 3 * 3], 2, 3)
            .unwrap();
        assert_eq!(o.quality, 0);
        assert!(d.0.iter().all(|h| *h == PdqHash::ZERO));
    }

    #[test]
    fn wrong_buffer_length_is_an_error_not_a_panic() {
        let e = hash_rgb(&[0u8; 10], 5, 5).unwrap_err();
        assert!(matches!(
            e,
            Error::BadBuffer {
                expected: 75,
                actual: 10,
                ..
            }
        ));
        let e = hash_rgb(&[0u8; 10], usize::MAX, 3).unwrap_err();
        assert!(matches!(e, Error::BadBuffer { .. }));
    }

    #[test]
    fn grey_path_equals_f64_rgb_path_on_grey_pixels() {
        // With f64 luma, grey v maps to exactly v, so both paths see identical luma.
        let (w, h) = (97, 61);
        let grey: Vec<u8> = (0..w * h)
            .map(|i| ((i * 31 + i / w * 7) % 256) as u8)
            .collect();
        let rgb: Vec<u8> = grey.iter().flat_map(|&v| [v, v, v]).collect();
        let mut hs = Hasher::new();
        assert_eq!(
            hs.hash(Pixels::Grey(&grey), w, h).unwrap(),
            hs.hash_rgb(&rgb, w, h).unwrap()
        );
    }

    #[test]
    fn reusing_a_hasher_across_sizes_gives_fresh_results() {
        let mk = |w: usize, h: usize| -> Vec<u8> {
            (0..w * h * 3)
                .map(|i| ((i * 2654435761) >> 7) as u8)
                .collect()
        };
        let a = mk(300, 200);
        let b = mk(41, 1000);
        let mut reused = Hasher::new();
        let ra1 = reused.hash_rgb(&a, 300, 200).unwrap();
        let rb = reused.hash_rgb(&b, 41, 1000).unwrap();
        let ra2 = reused.hash_rgb(&a, 300, 200).unwrap();
        assert_eq!(ra1, ra2);
        assert_eq!(rb, hash_rgb(&b, 41, 1000).unwrap());
    }
}
