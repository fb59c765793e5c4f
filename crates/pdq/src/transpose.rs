//! 8×8 transposes of f32 blocks, for moving luma between row-major rows (column passes) and
//! transposed strips (row passes). Pure data movement: no value changes, so the choice of path
//! never affects a hash bit.
//!
//! Written element by element, LLVM turns a transpose into 64 scalar loads and stores; on a
//! 720p frame the downsample's three transposes were then about a third of PDQ's time. The AVX
//! path does the same in 24 shuffles.

/// Transposes `src` into `dst`: `dst[x][l] = src[l][x]`.
#[inline(always)]
pub(crate) fn transpose8(src: [&[f32; 8]; 8], dst: [&mut [f32; 8]; 8]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: AVX was detected at run time; `avx::transpose8` only reads the eight
            // 8-float arrays behind `src` and writes the eight behind `dst`, which the
            // reference types guarantee are valid, 8 floats long and (for `dst`) exclusive.
            unsafe { avx::transpose8(src, dst) };
            return;
        }
    }
    transpose8_scalar(src, dst);
}

#[inline(always)]
fn transpose8_scalar(src: [&[f32; 8]; 8], mut dst: [&mut [f32; 8]; 8]) {
    for (x, d) in dst.iter_mut().enumerate() {
        for (l, s) in src.iter().enumerate() {
            d[l] = s[x];
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::{
        _mm256_loadu_ps, _mm256_permute2f128_ps, _mm256_shuffle_ps, _mm256_storeu_ps,
        _mm256_unpackhi_ps, _mm256_unpacklo_ps,
    };

    /// # Safety
    /// The CPU must support AVX.
    // `inline` lets LLVM fold it into the AVX2 build of the downsample (the call cost a
    // tenth of the transpose's time).
    #[inline]
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn transpose8(src: [&[f32; 8]; 8], dst: [&mut [f32; 8]; 8]) {
        // SAFETY (loads): each `src[l]` is a valid reference to 8 floats, exactly one
        // unaligned 256-bit load.
        let r: [_; 8] = std::array::from_fn(|l| unsafe { _mm256_loadu_ps(src[l].as_ptr()) });
        // Interleave pairs of rows, then pairs of pairs, then swap 128-bit halves.
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let c = [
            _mm256_permute2f128_ps::<0x20>(s0, s4),
            _mm256_permute2f128_ps::<0x20>(s1, s5),
            _mm256_permute2f128_ps::<0x20>(s2, s6),
            _mm256_permute2f128_ps::<0x20>(s3, s7),
            _mm256_permute2f128_ps::<0x31>(s0, s4),
            _mm256_permute2f128_ps::<0x31>(s1, s5),
            _mm256_permute2f128_ps::<0x31>(s2, s6),
            _mm256_permute2f128_ps::<0x31>(s3, s7),
        ];
        for (d, v) in dst.into_iter().zip(c) {
            // SAFETY: `d` is an exclusive reference to 8 floats, exactly one unaligned store.
            unsafe { _mm256_storeu_ps(d.as_mut_ptr(), v) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_paths_transpose() {
        let src: [[f32; 8]; 8] =
            std::array::from_fn(|l| std::array::from_fn(|x| (l * 8 + x) as f32));
        let mut fast = [[0.0f32; 8]; 8];
        let mut slow = [[0.0f32; 8]; 8];
        {
            let [a, b, c, d, e, f, g, h] = &mut fast;
            transpose8(std::array::from_fn(|l| &src[l]), [a, b, c, d, e, f, g, h]);
        }
        {
            let [a, b, c, d, e, f, g, h] = &mut slow;
            transpose8_scalar(std::array::from_fn(|l| &src[l]), [a, b, c, d, e, f, g, h]);
        }
        for x in 0..8 {
            for l in 0..8 {
                assert_eq!(fast[x][l], src[l][x]);
                assert_eq!(slow[x][l], src[l][x]);
            }
        }
    }
}
