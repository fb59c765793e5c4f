//! The 64×64 → 16×16 DCT, the quality metric, and the dihedral sign/transposes of the DCT.

use std::sync::OnceLock;

use crate::downscale::OUT;

/// The 16×64 DCT matrix, built exactly as the reference builds it:
/// `f32( f64(f32(sqrt(2/64))) * cos((pi/2/64) * (i+1) * (2j+1)) )`, DC row skipped.
fn dct_matrix() -> &'static [f32; 16 * 64] {
    static M: OnceLock<[f32; 16 * 64]> = OnceLock::new();
    M.get_or_init(|| {
        let scale = (2.0f64 / 64.0).sqrt() as f32;
        let mut m = [0.0f32; 16 * 64];
        for i in 0..16 {
            for j in 0..64 {
                let angle =
                    (std::f64::consts::PI / 2.0 / 64.0) * (i + 1) as f64 * (2 * j + 1) as f64;
                m[i * 64 + j] = (scale as f64 * angle.cos()) as f32;
            }
        }
        m
    })
}

/// `B = D · A · Dᵀ` for the 16 lowest non-DC frequencies, each dot product summed over `k`
/// ascending in f32 (the reference's order).
pub(crate) fn dct_64_to_16(a: &[f32; OUT * OUT]) -> [f32; 256] {
    let d = dct_matrix();
    // T = D · A. Computed row by row of A so the inner loop runs along contiguous memory, while
    // each T[i][j] still accumulates k = 0..63 in order.
    let mut t = [0.0f32; 16 * 64];
    for i in 0..16 {
        let drow = &d[i * 64..(i + 1) * 64];
        let trow = &mut t[i * 64..(i + 1) * 64];
        for (k, &dk) in drow.iter().enumerate() {
            let arow = &a[k * 64..(k + 1) * 64];
            for (tv, &av) in trow.iter_mut().zip(arow) {
                *tv += dk * av;
            }
        }
    }
    let mut b = [0.0f32; 256];
    for i in 0..16 {
        let trow = &t[i * 64..(i + 1) * 64];
        for j in 0..16 {
            let drow = &d[j * 64..(j + 1) * 64];
            let mut s = 0.0f32;
            for k in 0..64 {
                s += trow[k] * drow[k];
            }
            b[i * 16 + j] = s;
        }
    }
    b
}

/// The reference's image-domain quality metric on the 64×64 downsample, 0..=100.
pub(crate) fn quality(a: &[f32; OUT * OUT]) -> u8 {
    let mut gradient_sum: i64 = 0;
    let grad = |u: f32, v: f32| -> i64 {
        // C++: `int d = ((u - v) * 100) / 255;` in float, truncated toward zero.
        let d = ((u - v) * 100.0) / 255.0;
        (d as i32).unsigned_abs() as i64
    };
    for i in 0..63 {
        for j in 0..64 {
            gradient_sum += grad(a[i * 64 + j], a[(i + 1) * 64 + j]);
        }
    }
    for i in 0..64 {
        for j in 0..63 {
            gradient_sum += grad(a[i * 64 + j], a[i * 64 + j + 1]);
        }
    }
    (gradient_sum / 90).min(100) as u8
}

/// One of the 8 dihedral transforms, applied to the 16×16 DCT output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dihedral {
    /// The image as is.
    Original,
    /// Rotated 90° counter-clockwise.
    Rot90,
    /// Rotated 180°.
    Rot180,
    /// Rotated 90° clockwise.
    Rot270,
    /// Mirrored top-bottom.
    FlipX,
    /// Mirrored left-right.
    FlipY,
    /// Transposed about the main diagonal.
    FlipPlus1,
    /// Transposed about the anti-diagonal.
    FlipMinus1,
}

impl Dihedral {
    /// All 8, in the reference's output order.
    pub const ALL: [Dihedral; 8] = [
        Dihedral::Original,
        Dihedral::Rot90,
        Dihedral::Rot180,
        Dihedral::Rot270,
        Dihedral::FlipX,
        Dihedral::FlipY,
        Dihedral::FlipPlus1,
        Dihedral::FlipMinus1,
    ];

    /// Stable lower-case name, as used in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Dihedral::Original => "original",
            Dihedral::Rot90 => "rot90",
            Dihedral::Rot180 => "rot180",
            Dihedral::Rot270 => "rot270",
            Dihedral::FlipX => "flipx",
            Dihedral::FlipY => "flipy",
            Dihedral::FlipPlus1 => "flipplus1",
            Dihedral::FlipMinus1 => "flipminus1",
        }
    }

    /// `B'` from `B` by the reference's sign changes and transposes.
    pub(crate) fn apply(self, b: &[f32; 256]) -> [f32; 256] {
        let mut out = [0.0f32; 256];
        for i in 0..16 {
            for j in 0..16 {
                let v = b[i * 16 + j];
                let odd = |x: usize| x & 1 == 1;
                let (idx, val) = match self {
                    Dihedral::Original => (i * 16 + j, v),
                    Dihedral::Rot90 => (j * 16 + i, if odd(j) { v } else { -v }),
                    Dihedral::Rot180 => (i * 16 + j, if odd(i + j) { -v } else { v }),
                    Dihedral::Rot270 => (j * 16 + i, if odd(i) { v } else { -v }),
                    Dihedral::FlipX => (i * 16 + j, if odd(i) { v } else { -v }),
                    Dihedral::FlipY => (i * 16 + j, if odd(j) { v } else { -v }),
                    Dihedral::FlipPlus1 => (j * 16 + i, v),
                    Dihedral::FlipMinus1 => (j * 16 + i, if odd(i + j) { -v } else { v }),
                };
                out[idx] = val;
            }
        }
        out
    }
}
