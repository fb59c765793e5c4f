//! Per-frame hashing as the vPDQ reference (`vpdq/cpp`) does it: which frames to hash, their
//! timestamps, and PDQ of each selected frame with the C++ core's float32 luma at full
//! resolution.

use safeguard_pdq::{Hasher, LumaMode, MIN_HASHABLE_DIM};

use crate::{Error, VpdqFrame};

/// The default sampling: one hash per second, as python-threatexchange and hash banks use.
pub const DEFAULT_SECONDS_PER_HASH: f64 = 1.0;

/// Hash every `frame_mod`-th decoded frame, with
/// `frame_mod = max(1, (int)(seconds_per_hash * fps))`: the reference's rule
/// (`FFmpegHasher`), so sampling is by frame count, not by timestamp. `seconds_per_hash = 0`
/// (or any product under 1) hashes every frame.
///
/// Errors: a negative, NaN or infinite `seconds_per_hash` or `fps`.
pub fn frame_mod(seconds_per_hash: f64, fps: f64) -> Result<u64, Error> {
    if !seconds_per_hash.is_finite() || seconds_per_hash < 0.0 {
        return Err(Error::InvalidSampling(format!(
            "seconds per hash must be a finite number >= 0, got {seconds_per_hash}"
        )));
    }
    if !fps.is_finite() || fps <= 0.0 {
        return Err(Error::InvalidSampling(format!(
            "frame rate must be a finite number > 0, got {fps}"
        )));
    }
    // C++ `static_cast<int>`: truncation toward zero. The product is >= 0 here, and `as`
    // saturates for products past u64 (any such video has fewer frames than that anyway).
    Ok(((seconds_per_hash * fps) as u64).max(1))
}

/// Seconds of frame `frame_number`: `(float)frameNumber / (float)fps` in float32, as the
/// reference computes it (`hasher.h`), widened to f64 so that printing with 3 decimals gives
/// the reference's text (29.97 fps, frame 29 -> `0.968`).
pub fn timestamp(frame_number: u64, fps: f64) -> f64 {
    f64::from(frame_number as f32 / fps as f32)
}

/// Hashes the selected frames of one video. Keeps the PDQ work buffers between frames; one per
/// thread.
#[derive(Debug)]
pub struct FrameHasher {
    fps: f64,
    frame_mod: u64,
    pdq: Hasher,
}

impl FrameHasher {
    /// A hasher for a video at `fps` frames per second, hashing one frame every
    /// `seconds_per_hash` seconds (0: every frame). See [`frame_mod`] for the errors.
    pub fn new(fps: f64, seconds_per_hash: f64) -> Result<FrameHasher, Error> {
        Ok(FrameHasher {
            fps,
            frame_mod: frame_mod(seconds_per_hash, fps)?,
            // The reference hashes video frames with the C++ core's float32 luma
            // (`fillFloatLumaFromRGB`), unlike still-image banks (f64 luma via pdqhash).
            pdq: Hasher::with_luma(LumaMode::F32),
        })
    }

    /// Every how many decoded frames one is hashed.
    pub fn frame_mod(&self) -> u64 {
        self.frame_mod
    }

    /// Whether decoded frame `frame_number` is hashed.
    pub fn wants(&self, frame_number: u64) -> bool {
        frame_number % self.frame_mod == 0
    }

    /// PDQ of one frame given as packed RGB24 (`width * height * 3` bytes, row-major), at full
    /// resolution (no pre-scaling: the Jarosz filter sees every pixel).
    ///
    /// Errors: [`Error::FrameTooSmall`] under 5 pixels on a side (the reference throws rather
    /// than emitting a zero hash); [`Error::BadFrame`] when the buffer length does not match.
    pub fn hash_frame(
        &mut self,
        frame_number: u64,
        rgb: &[u8],
        width: usize,
        height: usize,
    ) -> Result<VpdqFrame, Error> {
        if width < MIN_HASHABLE_DIM || height < MIN_HASHABLE_DIM {
            return Err(Error::FrameTooSmall { width, height });
        }
        let out = self
            .pdq
            .hash_rgb(rgb, width, height)
            .map_err(|e| Error::BadFrame(e.to_string()))?;
        Ok(VpdqFrame {
            frame_number,
            quality: out.quality,
            hash: out.hash,
            timestamp: timestamp(frame_number, self.fps),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_mod_truncates_and_never_goes_below_one() {
        assert_eq!(frame_mod(1.0, 30.0).unwrap(), 30);
        assert_eq!(frame_mod(1.0, 29.97).unwrap(), 29);
        assert_eq!(frame_mod(0.0, 30.0).unwrap(), 1);
        assert_eq!(frame_mod(1.0, 0.5).unwrap(), 1);
        assert_eq!(frame_mod(2.5, 24.0).unwrap(), 60);
        assert!(frame_mod(-1.0, 30.0).is_err());
        assert!(frame_mod(f64::NAN, 30.0).is_err());
        assert!(frame_mod(1.0, 0.0).is_err());
        assert!(frame_mod(1.0, f64::INFINITY).is_err());
    }

    #[test]
    fn timestamps_are_float32_like_the_reference() {
        // The README's example: 29.97 fps, frame 29 -> 0.968.
        assert_eq!(format!("{:.3}", timestamp(29, 29.97)), "0.968");
        assert_eq!(format!("{:.3}", timestamp(30, 30.0)), "1.000");
        // f32 division differs from f64 in the last bits; the value must be the f32 one.
        let t = timestamp(1001, 29.97);
        assert_eq!(t, f64::from(1001f32 / 29.97f32));
    }

    #[test]
    fn selection_follows_frame_mod() {
        let h = FrameHasher::new(30.0, 1.0).unwrap();
        let picked: Vec<u64> = (0..100).filter(|&n| h.wants(n)).collect();
        assert_eq!(picked, vec![0, 30, 60, 90]);
        let every = FrameHasher::new(30.0, 0.0).unwrap();
        assert!((0..10).all(|n| every.wants(n)));
    }

    #[test]
    fn small_frames_are_an_error_not_a_zero_hash() {
        let mut h = FrameHasher::new(30.0, 1.0).unwrap();
        let e = h.hash_frame(0, &[0; 4 * 8 * 3], 4, 8).unwrap_err();
        assert!(matches!(
            e,
            Error::FrameTooSmall {
                width: 4,
                height: 8
            }
        ));
        assert!(h.hash_frame(0, &[0; 10], 5, 5).is_err());
    }

    #[test]
    fn frames_hash_with_f32_luma_at_full_resolution() {
        // A gradient where f32 and f64 luma differ: the frame hash must equal the f32 core's.
        let (w, h) = (640usize, 360usize);
        let rgb: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                [
                    (x * 255 / w) as u8,
                    (y * 255 / h) as u8,
                    ((x + y) % 256) as u8,
                ]
            })
            .collect();
        let mut fh = FrameHasher::new(25.0, 0.0).unwrap();
        let f = fh.hash_frame(50, &rgb, w, h).unwrap();
        let want = Hasher::with_luma(LumaMode::F32)
            .hash_rgb(&rgb, w, h)
            .unwrap();
        assert_eq!(f.hash, want.hash);
        assert_eq!(f.quality, want.quality);
        assert_eq!(f.frame_number, 50);
        assert_eq!(f.timestamp, 2.0);
    }
}
