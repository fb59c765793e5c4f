//! RGB to luma, in the two precisions that matter for compatibility.

/// How luma is computed from RGB. The two differ on 31% of RGB triples; on photos they almost
/// never change a bit, but on gradients and flat images they move 16–130 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LumaMode {
    /// `f32((R*0.299 + G*0.587) + B*0.114)` computed in f64, as the `pdqhash` Python package
    /// does (numpy). This made the values in NCMEC/StopNCII/HMA banks, so it is the default.
    #[default]
    F64,
    /// `0.299f*R + 0.587f*G + 0.114f*B` in f32, as Meta's C++ reference tool does.
    F32,
}

// The coefficients as Python doubles (numpy path) and as C++ `const float`s.
const R64: f64 = 0.299;
const G64: f64 = 0.587;
const B64: f64 = 0.114;
const R32: f32 = 0.299;
const G32: f32 = 0.587;
const B32: f32 = 0.114;

/// Fills `out` (row-major, `pixels` long) with luma from interleaved RGB8.
///
/// Each value depends only on its own pixel, so any evaluation order of pixels is exact; only
/// the per-pixel expression order matters, and it is kept.
pub(crate) fn fill_luma(rgb: &[u8], out: &mut [f32], mode: LumaMode) {
    debug_assert_eq!(rgb.len(), out.len() * 3);
    for (o, p) in out.iter_mut().zip(rgb.chunks_exact(3)) {
        *o = luma_of(p[0], p[1], p[2], mode);
    }
}

/// Luma of one pixel.
#[inline(always)]
pub(crate) fn luma_of(r: u8, g: u8, b: u8, mode: LumaMode) -> f32 {
    match mode {
        LumaMode::F64 => ((r as f64 * R64 + g as f64 * G64) + b as f64 * B64) as f32,
        LumaMode::F32 => R32 * r as f32 + G32 * g as f32 + B32 * b as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f64_luma_maps_grey_to_itself_f32_does_not_always() {
        let mut f64_exact = 0;
        let mut f32_exact = 0;
        for v in 0..=255u8 {
            let rgb = [v, v, v];
            let mut a = [0f32];
            fill_luma(&rgb, &mut a, LumaMode::F64);
            let mut b = [0f32];
            fill_luma(&rgb, &mut b, LumaMode::F32);
            f64_exact += (a[0] == v as f32) as u32;
            f32_exact += (b[0] == v as f32) as u32;
        }
        // REFERENCE.md: with the f64 path grey v maps exactly to v; with f32, 35 levels do not.
        assert_eq!(f64_exact, 256);
        assert_eq!(f32_exact, 256 - 35);
    }
}
