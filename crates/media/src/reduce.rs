//! The review console's "reduced detail" rendering: a small, greyscale, posterised copy of an
//! image, made on the server so the browser never receives the full-detail original while
//! that view is on. Shrinking (area averaging) removes fine detail, greyscale removes skin
//! and blood tones, and a few flat grey levels remove texture and gradients; shapes,
//! composition and text of a large size stay readable, which is what a reviewer needs to tell
//! a false positive (a landscape, a pattern) from what it matched. The browser still blurs it
//! until a click, like any media.

use crate::{decode, Error, Limits, RgbImage};

/// How small and how flat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReduceOptions {
    /// The longer side, at most, in pixels (a smaller image is not enlarged).
    pub max_side: u32,
    /// Grey levels, 2 to 16.
    pub levels: u8,
}

impl Default for ReduceOptions {
    fn default() -> Self {
        // The console's largest thumbnail is 320 px; four levels keep shapes and lose texture.
        ReduceOptions {
            max_side: 320,
            levels: 4,
        }
    }
}

/// Decodes `bytes` within `limits` and renders the reduced copy as an 8-bit greyscale PNG.
pub fn reduced_png(bytes: &[u8], limits: &Limits, o: &ReduceOptions) -> Result<Vec<u8>, Error> {
    if !(1..=4096).contains(&o.max_side) || !(2..=16).contains(&o.levels) {
        return Err(Error::Internal(format!(
            "reduce options out of range: max side {}, {} levels",
            o.max_side, o.levels
        )));
    }
    let decoded = decode(bytes, limits)?;
    let (w, h, grey) = reduce(&decoded.image, o);
    encode_png(w, h, &grey)
}

/// The reduced pixels: (width, height, one grey byte per pixel). `img` is a decoded image
/// (at least one pixel each way, `data` of `width * height * 3` bytes).
fn reduce(img: &RgbImage, o: &ReduceOptions) -> (u32, u32, Vec<u8>) {
    let (sw, sh) = (img.width.max(1), img.height.max(1));
    let scale = f64::from(o.max_side) / f64::from(sw.max(sh));
    let (dw, dh) = if scale >= 1.0 {
        (sw, sh)
    } else {
        (
            ((f64::from(sw) * scale).round() as u32).max(1),
            ((f64::from(sh) * scale).round() as u32).max(1),
        )
    };
    let levels = u32::from(o.levels.clamp(2, 16));
    let mut out = Vec::with_capacity(dw as usize * dh as usize);
    for y in 0..dh {
        // The source rows this output row covers: [y0, y1), at least one.
        let y0 = (u64::from(y) * u64::from(sh) / u64::from(dh)) as u32;
        let y1 = ((u64::from(y + 1) * u64::from(sh)).div_ceil(u64::from(dh)) as u32).max(y0 + 1);
        for x in 0..dw {
            let x0 = (u64::from(x) * u64::from(sw) / u64::from(dw)) as u32;
            let x1 =
                ((u64::from(x + 1) * u64::from(sw)).div_ceil(u64::from(dw)) as u32).max(x0 + 1);
            let mut sum = 0u64;
            let mut n = 0u64;
            for sy in y0..y1.min(sh) {
                let row = sy as usize * sw as usize * 3;
                for sx in x0..x1.min(sw) {
                    let p = row + sx as usize * 3;
                    let (r, g, b) = (
                        u64::from(img.data[p]),
                        u64::from(img.data[p + 1]),
                        u64::from(img.data[p + 2]),
                    );
                    // ITU-R BT.601 luma, in integers (weights sum to 1000).
                    sum += 299 * r + 587 * g + 114 * b;
                    n += 1000;
                }
            }
            let luma = (sum / n.max(1)) as u32;
            // Posterise: the band the luma (0 to 255) falls in, drawn at an even step from
            // black to white.
            let band = (luma * levels / 256).min(levels - 1);
            out.push((band * 255 / (levels - 1)) as u8);
        }
    }
    (dw, dh, out)
}

fn encode_png(w: u32, h: u32, grey: &[u8]) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    let internal = |e: png::EncodingError| Error::Internal(format!("PNG encoding: {e}"));
    let mut enc = png::Encoder::new(&mut buf, w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(internal)?;
    writer.write_image_data(grey).map_err(internal)?;
    writer.finish().map_err(internal)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> RgbImage {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&f(x, y));
            }
        }
        RgbImage {
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn shrinks_to_the_longer_side_and_keeps_the_shape() {
        let img = image(1000, 500, |_, _| [10, 20, 30]);
        let (w, h, px) = reduce(&img, &ReduceOptions::default());
        assert_eq!((w, h, px.len()), (320, 160, 320 * 160));
        // A small image is not enlarged.
        let img = image(40, 30, |_, _| [0, 0, 0]);
        let (w, h, _) = reduce(&img, &ReduceOptions::default());
        assert_eq!((w, h), (40, 30));
    }

    #[test]
    fn colours_become_a_few_flat_greys() {
        // A smooth horizontal gradient in red and green becomes four bands.
        let img = image(256, 4, |x, _| [x as u8, (255 - x) as u8, 0]);
        let (_, _, px) = reduce(
            &img,
            &ReduceOptions {
                max_side: 256,
                levels: 4,
            },
        );
        let mut seen: Vec<u8> = px.clone();
        seen.sort_unstable();
        seen.dedup();
        assert!(seen.len() <= 4, "{seen:?}");
        assert!(
            seen.iter().all(|v| [0u8, 85, 170, 255].contains(v)),
            "{seen:?}"
        );
        // Black and white stay black and white.
        let img = image(
            2,
            1,
            |x, _| if x == 0 { [0, 0, 0] } else { [255, 255, 255] },
        );
        let (_, _, px) = reduce(&img, &ReduceOptions::default());
        assert_eq!(px, vec![0, 255]);
    }

    #[test]
    fn area_averaging_removes_fine_detail() {
        // A one-pixel checkerboard, shrunk four times, is one flat grey: the pattern is gone.
        let img = image(400, 400, |x, y| {
            if (x + y) % 2 == 0 {
                [255, 255, 255]
            } else {
                [0, 0, 0]
            }
        });
        let (w, h, px) = reduce(
            &img,
            &ReduceOptions {
                max_side: 100,
                levels: 4,
            },
        );
        assert_eq!((w, h), (100, 100));
        assert!(px.iter().all(|&v| v == px[0]), "not flat");
        assert!(px[0] == 85 || px[0] == 170, "mid grey, got {}", px[0]);
    }

    #[test]
    fn renders_a_png_that_decodes_back() {
        // A PNG made here, put through the whole path (decode, reduce, encode).
        let src = image(64, 32, |x, y| [(x * 4) as u8, (y * 8) as u8, 128]);
        let mut input = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut input, 64, 32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().unwrap();
            w.write_image_data(&src.data).unwrap();
        }
        let out = reduced_png(&input, &Limits::default(), &ReduceOptions::default()).unwrap();
        let back = decode(&out, &Limits::default()).unwrap().image;
        assert_eq!((back.width, back.height), (64, 32));
        // Greyscale: every pixel's three channels are equal, and only four levels occur.
        let mut levels: Vec<u8> = back
            .data
            .chunks(3)
            .map(|p| {
                assert!(p[0] == p[1] && p[1] == p[2]);
                p[0]
            })
            .collect();
        levels.sort_unstable();
        levels.dedup();
        assert!(levels.len() <= 4, "{levels:?}");
        // Not an image at all: the decoder's error, not a panic.
        assert!(reduced_png(
            b"not an image",
            &Limits::default(),
            &ReduceOptions::default()
        )
        .is_err());
        assert!(reduced_png(
            &input,
            &Limits::default(),
            &ReduceOptions {
                max_side: 0,
                levels: 4
            }
        )
        .is_err());
    }
}
