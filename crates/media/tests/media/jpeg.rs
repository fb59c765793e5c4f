//! JPEG: dimensions, colour handling, Pillow's tolerance of libjpeg warnings, truncation, and
//! the reduced-scale fast mode.

use safeguard_media::{decode, decode_with, DecodeOptions, Error, Format, Limits};

use crate::support::*;

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let total: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    total as f64 / a.len() as f64
}

#[test]
fn decodes_baseline_and_progressive() {
    let (w, h) = (203, 117);
    let rgb = pattern_rgb(w, h);
    for progressive in [false, true] {
        let decoded = decode_ok(&jpeg_bytes(w, h, &rgb, progressive));
        assert_eq!(decoded.format, Format::Jpeg);
        assert_eq!((decoded.image.width, decoded.image.height), (w, h));
        let diff = mean_abs_diff(&decoded.image.data, &rgb);
        // The test pattern has hard checkerboard edges; quality 90 keeps the mean error small.
        assert!(
            diff < 10.0,
            "mean difference {diff} (progressive {progressive})"
        );
    }
    // Both encodings carry the same coefficients at quality 90, so decode the same.
    let a = decode_ok(&jpeg_bytes(w, h, &rgb, false));
    let b = decode_ok(&jpeg_bytes(w, h, &rgb, true));
    assert_eq!(a.image, b.image);
}

#[test]
fn greyscale_is_replicated() {
    let (w, h) = (40, 30);
    let grey: Vec<u8> = (0..w * h).map(|i| (i * 7 % 256) as u8).collect();
    let decoded = decode_ok(&grey_jpeg_bytes(w, h, &grey));
    assert!(decoded
        .image
        .data
        .chunks(3)
        .all(|p| p[0] == p[1] && p[1] == p[2]));
}

#[test]
fn cmyk_uses_pillow_inverted_adobe_conversion() {
    // TurboJPEG writes CMYK as an Adobe (inverted) JPEG, like Photoshop; Pillow reads it as
    // CMYK;I. Flat patches survive JPEG almost exactly, so check known colours:
    // raw (c, m, y, k) -> Pillow inverts -> cmyk2rgb.
    let (w, h) = (32, 16);
    let patches: [([u8; 4], [u8; 3]); 4] = [
        ([255, 255, 255, 255], [255, 255, 255]), // no ink: white
        ([255, 255, 255, 0], [0, 0, 0]),         // full black
        ([0, 255, 255, 255], [0, 255, 255]),     // full cyan
        ([255, 128, 255, 255], [255, 128, 255]), // half magenta
    ];
    let mut cmyk = Vec::new();
    // Four 8-pixel-wide vertical bands, one per patch.
    for _ in 0..h {
        for x in 0..w {
            cmyk.extend_from_slice(&patches[(x / 8) as usize].0);
        }
    }
    let decoded = decode_ok(&cmyk_jpeg_bytes(w, h, &cmyk));
    for (i, (_, expected)) in patches.iter().enumerate() {
        // The centre of each 8 x 8 patch.
        let at = ((4 * w + i as u32 * 8 + 4) * 3) as usize;
        let got = &decoded.image.data[at..at + 3];
        for (g, e) in got.iter().zip(expected) {
            assert!(
                g.abs_diff(*e) <= 2,
                "patch {i}: got {got:?}, expected {expected:?}"
            );
        }
    }
}

#[test]
fn libjpeg_warnings_are_tolerated_like_pillow() {
    let (w, h) = (64, 48);
    let clean = jpeg_bytes(w, h, &pattern_rgb(w, h), false);
    let reference = decode_ok(&clean);

    // Stray bytes between header segments: a warning while reading the header.
    let dqt = jpeg_marker(&clean, 0xDB);
    let mut junk = clean[..dqt].to_vec();
    junk.extend_from_slice(&[0, 0, 0]);
    junk.extend_from_slice(&clean[dqt..]);
    assert_eq!(decode_ok(&junk).image, reference.image);

    // Bytes after the end-of-image marker are ignored.
    let mut trailing = clean.clone();
    trailing.extend_from_slice(b"trailing garbage");
    assert_eq!(decode_ok(&trailing).image, reference.image);

    // Damaged entropy-coded data: a "corrupt data" warning; libjpeg still produces pixels.
    let sos = jpeg_marker(&clean, 0xDA);
    let mut damaged = clean.clone();
    damaged[sos + 40] ^= 0x55;
    let decoded = decode_ok(&damaged);
    assert_eq!((decoded.image.width, decoded.image.height), (w, h));
}

#[test]
fn missing_end_marker_is_truncated() {
    // Pillow raises "image file is truncated" without EOI; so do we.
    let clean = jpeg_bytes(32, 32, &pattern_rgb(32, 32), false);
    let error = decode_err(&clean[..clean.len() - 2], &Limits::default());
    assert!(is_truncated(&error, Format::Jpeg), "{error:?}");
    assert_eq!(error.code(), "truncated");
}

#[test]
fn structural_garbage_is_corrupt() {
    let clean = jpeg_bytes(32, 32, &pattern_rgb(32, 32), false);
    // Replace the frame header's precision with 3: libjpeg refuses it, the stream is whole.
    let sof = jpeg_marker(&clean, 0xC0);
    let mut bad = clean.clone();
    bad[sof + 4] = 3;
    let error = decode_err(&bad, &Limits::default());
    assert!(
        matches!(
            error,
            Error::UnsupportedFeature {
                format: Format::Jpeg,
                ..
            }
        ),
        "{error:?}"
    );
    // A table-only stream: SOI, a DQT copied from the file, EOI.
    let dqt = jpeg_marker(&clean, 0xDB);
    let len = usize::from(u16::from_be_bytes([clean[dqt + 2], clean[dqt + 3]]));
    let mut tables = clean[..2].to_vec();
    tables.extend_from_slice(&clean[dqt..dqt + 2 + len]);
    tables.extend_from_slice(&[0xFF, 0xD9]);
    let error = decode_err(&tables, &Limits::default());
    assert!(is_corrupt(&error, Format::Jpeg), "{error:?}");
}

#[test]
fn reduced_scale_decode_keeps_the_minimum_side() {
    let (w, h) = (1600, 1200);
    let bytes = jpeg_bytes(w, h, &pattern_rgb(w, h), false);
    let limits = Limits::default();
    let cases = [
        // 1200 * k / 8 >= 256 first at k = 2.
        (256, (400, 300)),
        // >= 1000 first at k = 7 (1050).
        (1000, (1400, 1050)),
    ];
    for (min_side, dims) in cases {
        let options = DecodeOptions {
            jpeg_min_side: Some(min_side),
            ..DecodeOptions::default()
        };
        let decoded = decode_with(&bytes, &limits, &options).unwrap();
        assert_eq!(
            (decoded.image.width, decoded.image.height),
            dims,
            "min {min_side}"
        );
        assert_eq!(decoded.scaled_from, Some((w, h)));
        assert_eq!(decoded.image.data.len(), (dims.0 * dims.1 * 3) as usize);
    }
    // An image already at or below the minimum is decoded at full size.
    let options = DecodeOptions {
        jpeg_min_side: Some(1200),
        ..DecodeOptions::default()
    };
    let decoded = decode_with(&bytes, &limits, &options).unwrap();
    assert_eq!((decoded.image.width, decoded.image.height), (w, h));
    assert_eq!(decoded.scaled_from, None);
    // Rounding up: 1001 x 999 at 1/8 is 126 x 125.
    let odd = jpeg_bytes(1001, 999, &pattern_rgb(1001, 999), false);
    let options = DecodeOptions {
        jpeg_min_side: Some(100),
        ..DecodeOptions::default()
    };
    let decoded = decode_with(&odd, &limits, &options).unwrap();
    assert_eq!((decoded.image.width, decoded.image.height), (126, 125));
}

#[test]
fn reduced_scale_is_ignored_by_other_formats() {
    let (_, png, _) = valid_samples().remove(2);
    let options = DecodeOptions {
        jpeg_min_side: Some(8),
        ..DecodeOptions::default()
    };
    let decoded = decode_with(&png, &Limits::default(), &options).unwrap();
    assert_eq!((decoded.image.width, decoded.image.height), (23, 17));
    assert_eq!(decoded.scaled_from, None);
}

#[test]
fn reduced_scale_approximates_the_full_image() {
    let (w, h) = (800, 600);
    let rgb = pattern_rgb(w, h);
    let bytes = jpeg_bytes(w, h, &rgb, false);
    let options = DecodeOptions {
        jpeg_min_side: Some(300),
        ..DecodeOptions::default()
    };
    let small = decode_with(&bytes, &Limits::default(), &options).unwrap();
    assert_eq!((small.image.width, small.image.height), (400, 300));
    // Compare against 2 x 2 box averages of the source pattern.
    let mut boxed = Vec::new();
    for y in 0..300 {
        for x in 0..400 {
            for c in 0..3 {
                let at = |dx: u32, dy: u32| {
                    u32::from(rgb[(((2 * y + dy) * w + 2 * x + dx) * 3 + c) as usize])
                };
                boxed.push(((at(0, 0) + at(1, 0) + at(0, 1) + at(1, 1) + 2) / 4) as u8);
            }
        }
    }
    let diff = mean_abs_diff(&small.image.data, &boxed);
    assert!(diff < 8.0, "mean difference {diff}");
}

#[test]
fn decode_and_decode_with_default_agree() {
    let bytes = jpeg_bytes(50, 40, &pattern_rgb(50, 40), true);
    let a = decode(&bytes, &Limits::default()).unwrap();
    let b = decode_with(&bytes, &Limits::default(), &DecodeOptions::default()).unwrap();
    assert_eq!(a, b);
}
