//! Pixel layout conversions done in place, so a 12-megapixel photo never needs a second
//! full-size buffer just to drop a channel.

/// Rewrites `buffer`, which holds `pixels` pixels of `channels` bytes each, as RGB by keeping
/// the first three bytes of every pixel, then trims it to `pixels * 3` bytes. This is how
/// Pillow's `convert("RGB")` treats RGBA, RGBX and (after a colour conversion) CMYK: the extra
/// channel is dropped, never composited.
pub(crate) fn keep_first_three_in_place(buffer: &mut Vec<u8>, pixels: usize, channels: usize) {
    debug_assert!(channels >= 3);
    debug_assert!(buffer.len() >= pixels * channels);
    // Pixel i moves from i * channels to i * 3; walking forwards never overwrites a source
    // pixel that has not been read yet because i * 3 <= i * channels.
    for i in 1..pixels {
        buffer.copy_within(i * channels..i * channels + 3, i * 3);
    }
    buffer.truncate(pixels * 3);
    buffer.shrink_to_fit();
}

/// Pillow's CMYK-to-RGB conversion (`cmyk2rgb` in libImaging/Convert.c) applied to the samples
/// libjpeg returns for a four-component JPEG, which Pillow reads as `CMYK;I` (inverted, the
/// Adobe convention): with c' = 255 - c (and so on) Pillow computes
/// `r = clip(k'' - k'' * c' / 255)` where k'' = 255 - k', i.e. k'' = k, rounding the product
/// with its MULDIV255 macro. Writes RGB into the front of `buffer` and trims it.
pub(crate) fn adobe_cmyk_to_rgb_in_place(buffer: &mut Vec<u8>, pixels: usize) {
    debug_assert!(buffer.len() >= pixels * 4);
    for i in 0..pixels {
        let src = i * 4;
        let nk = u32::from(buffer[src + 3]);
        let rgb = [
            cmyk_channel(buffer[src], nk),
            cmyk_channel(buffer[src + 1], nk),
            cmyk_channel(buffer[src + 2], nk),
        ];
        // i * 3 <= i * 4: the destination never overtakes the source (see above).
        buffer[i * 3..i * 3 + 3].copy_from_slice(&rgb);
    }
    buffer.truncate(pixels * 3);
    buffer.shrink_to_fit();
}

/// One channel of Pillow's `cmyk2rgb` for an inverted sample `raw` (so Pillow's value is
/// `255 - raw`) and Pillow's `nk = 255 - K` where K is itself inverted, hence `nk = raw_k`.
#[inline]
fn cmyk_channel(raw: u8, nk: u32) -> u8 {
    let c = 255 - u32::from(raw);
    // MULDIV255(a, b) = ((a * b + 128) >> 8 + (a * b + 128)) >> 8, Pillow's exact rounding.
    let tmp = c * nk + 128;
    let product = ((tmp >> 8) + tmp) >> 8;
    // product <= nk, so the subtraction cannot underflow and the result fits in a byte.
    (nk - product) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_fourth_channel() {
        let mut buffer = vec![1, 2, 3, 9, 4, 5, 6, 9, 7, 8, 10, 9];
        keep_first_three_in_place(&mut buffer, 3, 4);
        assert_eq!(buffer, [1, 2, 3, 4, 5, 6, 7, 8, 10]);
    }

    #[test]
    fn keeps_first_three_of_wider_pixels() {
        let mut buffer = (0u8..16).collect::<Vec<_>>();
        keep_first_three_in_place(&mut buffer, 2, 8);
        assert_eq!(buffer, [0, 1, 2, 8, 9, 10]);
    }

    /// Pillow's own integer formula, written the way Convert.c writes it.
    fn pillow_cmyk2rgb(c: i32, m: i32, y: i32, k: i32) -> [u8; 3] {
        let muldiv255 = |a: i32, b: i32| {
            let tmp = a * b + 128;
            ((tmp >> 8) + tmp) >> 8
        };
        let nk = 255 - k;
        let clip = |v: i32| v.clamp(0, 255) as u8;
        [
            clip(nk - muldiv255(c, nk)),
            clip(nk - muldiv255(m, nk)),
            clip(nk - muldiv255(y, nk)),
        ]
    }

    #[test]
    fn matches_pillow_formula_on_inverted_samples() {
        for raw_c in (0..=255).step_by(5) {
            for raw_k in (0..=255).step_by(3) {
                let mut buffer = vec![raw_c as u8, 255 - raw_c as u8, 128, raw_k as u8];
                adobe_cmyk_to_rgb_in_place(&mut buffer, 1);
                let expected = pillow_cmyk2rgb(255 - raw_c, raw_c, 127, 255 - raw_k);
                assert_eq!(buffer, expected, "raw c={raw_c} k={raw_k}");
            }
        }
    }

    #[test]
    fn white_and_black() {
        // libjpeg output for Adobe CMYK white is all 255 (inverted zero ink).
        let mut buffer = vec![255, 255, 255, 255, 0, 0, 0, 0];
        adobe_cmyk_to_rgb_in_place(&mut buffer, 2);
        assert_eq!(buffer, [255, 255, 255, 0, 0, 0]);
    }
}
