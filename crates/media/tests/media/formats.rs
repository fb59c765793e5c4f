//! Pixel correctness per format against Pillow's `convert("RGB")` rules, with the expected
//! pixels built in the test from the samples that were encoded.

use png::{BitDepth, ColorType};
use safeguard_media::{Format, Limits};

use crate::support::*;

const W: u32 = 19;
const H: u32 = 11;

/// Packs `bits`-bit samples MSB first, each row padded to a byte, as PNG stores them.
fn pack_rows(samples: &[u16], width: usize, bits: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for row in samples.chunks(width) {
        match bits {
            16 => row
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_be_bytes())),
            8 => row.iter().for_each(|&v| out.push(v as u8)),
            _ => {
                let mut acc = 0u16;
                let mut used = 0u8;
                for &v in row {
                    acc = (acc << bits) | v;
                    used += bits;
                    if used == 8 {
                        out.push(acc as u8);
                        acc = 0;
                        used = 0;
                    }
                }
                if used > 0 {
                    out.push((acc << (8 - used)) as u8);
                }
            }
        }
    }
    out
}

/// Samples for `pixels` pixels of `channels` channels at `bits`, covering the whole range
/// (for 16 bits, values far above 255 too).
fn samples(pixels: usize, channels: usize, bits: u8) -> Vec<u16> {
    let range = 1u64 << bits;
    (0..pixels * channels)
        .map(|i| (((i as u64 * 2_654_435_761) >> 7) % range) as u16)
        .collect()
}

fn decode_png(bytes: &[u8]) -> Vec<u8> {
    let decoded = decode_ok(bytes);
    assert_eq!(decoded.format, Format::Png);
    assert_eq!((decoded.image.width, decoded.image.height), (W, H));
    decoded.image.data
}

/// Pillow's 8-bit value for a grey sample: bit replication below 8 bits, clipping for 16.
fn pillow_grey(v: u16, bits: u8) -> u8 {
    match bits {
        1 => (v * 255) as u8,
        2 => (v * 85) as u8,
        4 => (v * 17) as u8,
        8 => v as u8,
        _ => v.min(255) as u8,
    }
}

#[test]
fn png_greyscale_every_depth() {
    let n = (W * H) as usize;
    for (bits, depth) in [
        (1, BitDepth::One),
        (2, BitDepth::Two),
        (4, BitDepth::Four),
        (8, BitDepth::Eight),
        (16, BitDepth::Sixteen),
    ] {
        let grey = samples(n, 1, bits);
        let bytes = png_bytes(
            W,
            H,
            ColorType::Grayscale,
            depth,
            &pack_rows(&grey, W as usize, bits),
            None,
            None,
        );
        let expected: Vec<u8> = grey
            .iter()
            .flat_map(|&v| [pillow_grey(v, bits); 3])
            .collect();
        assert_eq!(decode_png(&bytes), expected, "{bits}-bit grey");
    }
}

#[test]
fn png_sixteen_bit_grey_is_clipped_not_scaled() {
    // A full-range 16-bit image comes out almost white (Pillow's I;16 conversion).
    let grey: Vec<u16> = (0..W * H).map(|i| (i * 300) as u16).collect();
    let bytes = png_bytes(
        W,
        H,
        ColorType::Grayscale,
        BitDepth::Sixteen,
        &pack_rows(&grey, W as usize, 16),
        None,
        Some(&[0, 5]),
    );
    let data = decode_png(&bytes);
    assert_eq!(&data[..3], [0, 0, 0]);
    assert_eq!(&data[3..6], [255, 255, 255]);
    assert!(data.iter().filter(|&&v| v == 255).count() > data.len() * 9 / 10);
}

#[test]
fn png_colour_types_drop_alpha_and_keep_high_bytes() {
    let n = (W * H) as usize;
    for bits in [8u8, 16] {
        let depth = if bits == 8 {
            BitDepth::Eight
        } else {
            BitDepth::Sixteen
        };
        let high = |v: u16| if bits == 8 { v as u8 } else { (v >> 8) as u8 };
        for (color, channels) in [
            (ColorType::Rgb, 3),
            (ColorType::Rgba, 4),
            (ColorType::GrayscaleAlpha, 2),
        ] {
            let s = samples(n, channels, bits);
            let bytes = png_bytes(
                W,
                H,
                color,
                depth,
                &pack_rows(&s, W as usize * channels, bits),
                None,
                None,
            );
            let expected: Vec<u8> = s
                .chunks(channels)
                .flat_map(|p| match channels {
                    2 => [high(p[0]); 3],
                    _ => [high(p[0]), high(p[1]), high(p[2])],
                })
                .collect();
            assert_eq!(decode_png(&bytes), expected, "{color:?} {bits}-bit");
        }
    }
}

#[test]
fn png_transparency_chunks_are_ignored() {
    let rgb = pattern_rgb(W, H);
    let with_trns = png_bytes(
        W,
        H,
        ColorType::Rgb,
        BitDepth::Eight,
        &rgb,
        None,
        Some(&[0, 0, 0, 255, 0, 99]),
    );
    assert_eq!(decode_png(&with_trns), rgb);
    // Fully transparent RGBA pixels keep their colour (alpha is dropped, not composited).
    let rgba = with_alpha(&rgb);
    assert!(rgba.chunks(4).any(|p| p[3] == 0));
    let bytes = png_bytes(W, H, ColorType::Rgba, BitDepth::Eight, &rgba, None, None);
    assert_eq!(decode_png(&bytes), rgb);
}

#[test]
fn png_palette_every_depth() {
    let n = (W * H) as usize;
    for (bits, depth) in [
        (1, BitDepth::One),
        (2, BitDepth::Two),
        (4, BitDepth::Four),
        (8, BitDepth::Eight),
    ] {
        let entries = 1usize << bits;
        let palette: Vec<u8> = (0..entries * 3).map(|i| (i * 37 % 256) as u8).collect();
        let indices = samples(n, 1, bits);
        // tRNS makes some entries transparent: Pillow's convert("RGB") ignores it.
        let trns = vec![0u8; entries.min(4)];
        let bytes = png_bytes(
            W,
            H,
            ColorType::Indexed,
            depth,
            &pack_rows(&indices, W as usize, bits),
            Some(&palette),
            Some(&trns),
        );
        let expected: Vec<u8> = indices
            .iter()
            .flat_map(|&i| palette[usize::from(i) * 3..usize::from(i) * 3 + 3].to_vec())
            .collect();
        assert_eq!(decode_png(&bytes), expected, "{bits}-bit palette");
    }
}

#[test]
fn png_index_past_the_palette_is_black() {
    // The encoder checks indices against PLTE, so build the file by hand.
    let palette = [10u8, 20, 30, 40, 50, 60];
    let mut raw = Vec::new();
    for y in 0..H {
        raw.push(0); // filter: none
        raw.extend((0..W).map(|x| ((x + y) % 4) as u8));
    }
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = W.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&H.to_be_bytes());
    ihdr.extend_from_slice(&[8, 3, 0, 0, 0]);
    bytes.extend(png_chunk(b"IHDR", &ihdr));
    bytes.extend(png_chunk(b"PLTE", &palette));
    bytes.extend(png_chunk(b"IDAT", &zlib_stored(&raw)));
    bytes.extend(png_chunk(b"IEND", &[]));
    let data = decode_png(&bytes);
    for y in 0..H {
        for x in 0..W {
            let at = ((y * W + x) * 3) as usize;
            let expected: &[u8] = match (x + y) % 4 {
                0 => &palette[..3],
                1 => &palette[3..],
                _ => &[0, 0, 0],
            };
            assert_eq!(&data[at..at + 3], expected, "pixel {x},{y}");
        }
    }
}

/// Writes an Adam7-interlaced PNG by hand (the encoder has no interlacing).
fn adam7_png(
    width: u32,
    height: u32,
    color: u8,
    bits: u8,
    channels: usize,
    samples: &[u16],
) -> Vec<u8> {
    const PASSES: [(u32, u32, u32, u32); 7] = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ];
    let mut raw = Vec::new();
    for (x0, y0, dx, dy) in PASSES {
        if x0 >= width || y0 >= height {
            continue;
        }
        for y in (y0..height).step_by(dy as usize) {
            let mut row = Vec::new();
            for x in (x0..width).step_by(dx as usize) {
                let at = (y * width + x) as usize * channels;
                row.extend_from_slice(&samples[at..at + channels]);
            }
            raw.push(0);
            raw.extend(pack_rows(&row, row.len(), bits));
        }
    }
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[bits, color, 0, 0, 1]);
    bytes.extend(png_chunk(b"IHDR", &ihdr));
    bytes.extend(png_chunk(b"IDAT", &zlib_stored(&raw)));
    bytes.extend(png_chunk(b"IEND", &[]));
    bytes
}

#[test]
fn png_interlaced_matches_non_interlaced() {
    for (width, height) in [(1, 1), (3, 9), (W, H), (17, 2)] {
        let n = (width * height) as usize;
        for (color, bits, channels) in [
            (0u8, 2u8, 1usize),
            (0, 16, 1),
            (2, 16, 3),
            (6, 8, 4),
            (4, 8, 2),
        ] {
            let s = samples(n, channels, bits);
            let interlaced = decode_ok(&adam7_png(width, height, color, bits, channels, &s));
            let color_type = ColorType::from_u8(color).unwrap();
            let depth = BitDepth::from_u8(bits).unwrap();
            let plain = png_bytes(
                width,
                height,
                color_type,
                depth,
                &pack_rows(&s, width as usize * channels, bits),
                None,
                None,
            );
            assert_eq!(
                interlaced.image,
                decode_ok(&plain).image,
                "{width}x{height} type {color} {bits}-bit"
            );
        }
    }
}

#[test]
fn png_missing_iend_and_bad_checksums_still_decode() {
    let rgb = pattern_rgb(W, H);
    let bytes = png_bytes(W, H, ColorType::Rgb, BitDepth::Eight, &rgb, None, None);
    // Without IEND (12 bytes), as Pillow accepts.
    assert_eq!(decode_png(&bytes[..bytes.len() - 12]), rgb);
    // A wrong CRC on the image data, which Pillow does not check either.
    let mut bad_crc = bytes.clone();
    let crc_at = bytes.len() - 12 - 4;
    bad_crc[crc_at] ^= 0xFF;
    assert_eq!(decode_png(&bad_crc), rgb);
}

fn palette_rgb(palette: &[u8], index: u8) -> [u8; 3] {
    let at = usize::from(index) * 3;
    palette
        .get(at..at + 3)
        .map(|p| [p[0], p[1], p[2]])
        .unwrap_or([0, 0, 0])
}

#[test]
fn gif_first_frame_is_composed_like_pillow() {
    let global = [10u8, 20, 30, 200, 0, 0, 0, 200, 0, 0, 0, 200];
    let (fw, fh) = (9u16, 5u16);
    let indices: Vec<u8> = (0..fw * fh).map(|i| (i % 4) as u8).collect();
    let second = GifFrame {
        left: 0,
        top: 0,
        width: 20,
        height: 12,
        indices: vec![1; 240],
        transparent: None,
        local_palette: None,
        interlaced: false,
    };
    for transparent in [None, Some(2u8)] {
        let frame = GifFrame {
            left: 3,
            top: 4,
            width: fw,
            height: fh,
            indices: indices.clone(),
            transparent,
            local_palette: None,
            interlaced: false,
        };
        let bytes = gif_bytes(20, 12, &global, &[frame, second.clone()]);
        let decoded = decode_ok(&bytes);
        assert_eq!(decoded.format, Format::Gif);
        assert_eq!((decoded.image.width, decoded.image.height), (20, 12));
        // Outside the frame: the transparent index's colour, else index 0's; the background
        // colour index and later frames play no part.
        let outside = palette_rgb(&global, transparent.unwrap_or(0));
        for y in 0..12u16 {
            for x in 0..20u16 {
                let inside = (3..3 + fw).contains(&x) && (4..4 + fh).contains(&y);
                let expected = if inside {
                    palette_rgb(&global, indices[usize::from((y - 4) * fw + (x - 3))])
                } else {
                    outside
                };
                let at = (usize::from(y) * 20 + usize::from(x)) * 3;
                assert_eq!(
                    decoded.image.data[at..at + 3],
                    expected,
                    "{x},{y} {transparent:?}"
                );
            }
        }
    }
}

#[test]
fn gif_frame_outside_the_screen_grows_the_canvas() {
    let global = [1u8, 2, 3, 4, 5, 6];
    let frame = GifFrame {
        left: 2,
        top: 1,
        width: 4,
        height: 3,
        indices: vec![1; 12],
        transparent: None,
        local_palette: None,
        interlaced: false,
    };
    let decoded = decode_ok(&gif_bytes(3, 2, &global, &[frame]));
    assert_eq!((decoded.image.width, decoded.image.height), (6, 4));
    assert_eq!(&decoded.image.data[..3], [1, 2, 3]);
    // Row 1, column 2 of the 6-wide canvas is the frame's first pixel.
    assert_eq!(&decoded.image.data[(6 + 2) * 3..][..3], [4, 5, 6]);
}

#[test]
fn gif_local_palette_and_interlacing() {
    let global = [0u8; 6];
    let local: Vec<u8> = (0..16u8).flat_map(|i| [i * 16, 255 - i * 16, i]).collect();
    let indices: Vec<u8> = (0..(W * H) as usize).map(|i| (i * 5 % 16) as u8).collect();
    let frame = GifFrame {
        left: 0,
        top: 0,
        width: W as u16,
        height: H as u16,
        indices: indices.clone(),
        transparent: Some(3),
        local_palette: Some(local.clone()),
        interlaced: true,
    };
    let decoded = decode_ok(&gif_bytes(W as u16, H as u16, &global, &[frame]));
    // The encoder stores rows as given with the interlace flag, so the file's n-th row is
    // image row `order[n]` (every 8th from 0, every 8th from 4, every 4th from 2, odd rows).
    let order: Vec<usize> = (0..H as usize)
        .step_by(8)
        .chain((4..H as usize).step_by(8))
        .chain((2..H as usize).step_by(4))
        .chain((1..H as usize).step_by(2))
        .collect();
    let mut expected = vec![0u8; (W * H * 3) as usize];
    for (stored, &row) in order.iter().enumerate() {
        let src = &indices[stored * W as usize..(stored + 1) * W as usize];
        let dst = &mut expected[row * W as usize * 3..(row + 1) * W as usize * 3];
        for (out, &i) in dst.chunks_exact_mut(3).zip(src) {
            out.copy_from_slice(&palette_rgb(&local, i));
        }
    }
    assert_eq!(decoded.image.data, expected);
}

#[test]
fn gif_grey_ramp_palette_shows_index_as_grey() {
    // Pillow opens a GIF whose table is exactly (i, i, i) as mode L: index i is grey i, even
    // past the end of the table.
    let ramp: Vec<u8> = (0..4u8).flat_map(|i| [i; 3]).collect();
    let mut bytes = gif_bytes(
        4,
        1,
        &ramp,
        &[GifFrame {
            left: 0,
            top: 0,
            width: 4,
            height: 1,
            indices: vec![0, 1, 2, 3],
            transparent: None,
            local_palette: None,
            interlaced: false,
        }],
    );
    let decoded = decode_ok(&bytes);
    assert_eq!(decoded.image.data, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
    // Change one entry: no longer a ramp, so index 3 shows its colour.
    let table_at = 13;
    bytes[table_at + 9] = 200;
    assert_eq!(&decode_ok(&bytes).image.data[9..], [200, 3, 3]);
}

#[test]
fn webp_lossless_drops_alpha() {
    let rgb = pattern_rgb(W, H);
    for alpha in [false, true] {
        let data = if alpha { with_alpha(&rgb) } else { rgb.clone() };
        let decoded = decode_ok(&webp_lossless_bytes(W, H, &data, alpha));
        assert_eq!(decoded.format, Format::Webp);
        assert_eq!(decoded.image.data, rgb, "alpha {alpha}");
    }
}

#[test]
fn bmp_round_trips() {
    let rgb = pattern_rgb(W, H);
    for (data, color) in [
        (rgb.clone(), image::ExtendedColorType::Rgb8),
        (with_alpha(&rgb), image::ExtendedColorType::Rgba8),
    ] {
        let decoded = decode_ok(&bmp_bytes(W, H, &data, color));
        assert_eq!(decoded.format, Format::Bmp);
        assert_eq!(decoded.image.data, rgb);
    }
    let grey: Vec<u8> = (0..W * H).map(|i| (i * 3) as u8).collect();
    let decoded = decode_ok(&bmp_bytes(W, H, &grey, image::ExtendedColorType::L8));
    let expected: Vec<u8> = grey.iter().flat_map(|&v| [v; 3]).collect();
    assert_eq!(decoded.image.data, expected);
}

#[test]
fn bmp_16_bit_widens_like_pillow() {
    // A 5-6-5 BMP written by hand; Pillow widens each field as v * 255 / max, rounded down.
    let (w, h) = (7u32, 3u32);
    let values: Vec<u16> = (0..w * h).map(|i| (i * 3119 % 65_536) as u16).collect();
    let row_bytes = ((w * 2 + 3) & !3) as usize;
    let mut pixels = Vec::new();
    for y in (0..h).rev() {
        let mut row: Vec<u8> = values[(y * w) as usize..((y + 1) * w) as usize]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        row.resize(row_bytes, 0);
        pixels.extend(row);
    }
    let mut header = Vec::new();
    for field in [40u32, w, h] {
        header.extend_from_slice(&field.to_le_bytes());
    }
    header.extend_from_slice(&1u16.to_le_bytes());
    header.extend_from_slice(&16u16.to_le_bytes());
    for field in [
        3u32,
        pixels.len() as u32,
        2835,
        2835,
        0,
        0,
        0xF800,
        0x07E0,
        0x001F,
    ] {
        header.extend_from_slice(&field.to_le_bytes());
    }
    let offset = 14 + header.len() as u32;
    let mut bytes = b"BM".to_vec();
    for field in [offset + pixels.len() as u32, 0, offset] {
        bytes.extend_from_slice(&field.to_le_bytes());
    }
    bytes.extend(header);
    bytes.extend(pixels);
    let decoded = decode_ok(&bytes);
    let expected: Vec<u8> = values
        .iter()
        .flat_map(|&v| {
            let (r, g, b) = (
                u32::from(v >> 11),
                u32::from((v >> 5) & 63),
                u32::from(v & 31),
            );
            [
                (r * 255 / 31) as u8,
                (g * 255 / 63) as u8,
                (b * 255 / 31) as u8,
            ]
        })
        .collect();
    assert_eq!(decoded.image.data, expected);
}

#[test]
fn tiff_depths_follow_pillow() {
    let rgb = pattern_rgb(W, H);
    let decoded = decode_ok(&tiff_bytes(W, H, &rgb, image::ExtendedColorType::Rgb8));
    assert_eq!(decoded.format, Format::Tiff);
    assert_eq!(decoded.image.data, rgb);

    let n = (W * H) as usize;
    let grey16 = samples(n, 1, 16);
    let bytes: Vec<u8> = grey16.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let decoded = decode_ok(&tiff_bytes(W, H, &bytes, image::ExtendedColorType::L16));
    let expected: Vec<u8> = grey16.iter().flat_map(|&v| [v.min(255) as u8; 3]).collect();
    assert_eq!(decoded.image.data, expected, "16-bit grey clips");

    let rgb16 = samples(n, 3, 16);
    let bytes: Vec<u8> = rgb16.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let decoded = decode_ok(&tiff_bytes(W, H, &bytes, image::ExtendedColorType::Rgb16));
    let expected: Vec<u8> = rgb16.iter().map(|&v| (v >> 8) as u8).collect();
    assert_eq!(
        decoded.image.data, expected,
        "16-bit RGB keeps the high byte"
    );
}

/// A minimal uncompressed RGB TIFF with an Orientation tag.
fn oriented_tiff(width: u32, height: u32, rgb: &[u8], orientation: u16) -> Vec<u8> {
    let entries: [(u16, u16, u32); 10] = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 2),
        (273, 4, 8),
        (274, 3, u32::from(orientation)),
        (277, 3, 3),
        (278, 4, height),
        (279, 4, rgb.len() as u32),
    ];
    let ifd_at = 8 + rgb.len() as u32;
    let mut bytes = b"II*\0".to_vec();
    bytes.extend_from_slice(&ifd_at.to_le_bytes());
    bytes.extend_from_slice(rgb);
    bytes.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        bytes.extend_from_slice(&tag.to_le_bytes());
        bytes.extend_from_slice(&kind.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        if kind == 3 {
            bytes.extend_from_slice(&(value as u16).to_le_bytes());
            bytes.extend_from_slice(&[0, 0]);
        } else {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
    }
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes
}

#[test]
fn tiff_orientation_is_applied_as_pillow_does() {
    // 3 x 2 image, pixel value = its index.
    let rgb: Vec<u8> = (0..6u8).flat_map(|i| [i, i, i]).collect();
    let plain = decode_ok(&oriented_tiff(3, 2, &rgb, 1));
    assert_eq!(plain.image.data, rgb);
    // Orientation 6: rotate 90 degrees clockwise to display.
    let rotated = decode_ok(&oriented_tiff(3, 2, &rgb, 6));
    assert_eq!((rotated.image.width, rotated.image.height), (2, 3));
    let grey: Vec<u8> = rotated.image.data.chunks(3).map(|p| p[0]).collect();
    assert_eq!(grey, [3, 0, 4, 1, 5, 2]);
}

#[test]
fn jpeg_exif_orientation_is_not_applied() {
    // An APP1 Exif segment with Orientation = 6 changes nothing (no EXIF rotation).
    let rgb = pattern_rgb(32, 16);
    let plain = jpeg_bytes(32, 16, &rgb, false);
    let tiff = {
        let mut t = b"MM\0*\0\0\0\x08\0\x01".to_vec();
        t.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]);
        t
    };
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut rotated = plain[..2].to_vec();
    rotated.extend_from_slice(&[0xFF, 0xE1]);
    rotated.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    rotated.extend(app1);
    rotated.extend_from_slice(&plain[2..]);
    let a = decode_ok(&plain);
    let b = decode_ok(&rotated);
    assert_eq!((b.image.width, b.image.height), (32, 16));
    assert_eq!(a.image, b.image);
}

#[test]
fn default_limits_decode_every_sample() {
    for (format, bytes, expected) in valid_samples() {
        let decoded = safeguard_media::decode(&bytes, &Limits::default()).unwrap();
        assert_eq!(decoded.format, format);
        assert_eq!(decoded.scaled_from, None);
        if let Some(expected) = expected {
            assert_eq!(decoded.image.data, expected, "{format}");
        }
    }
}
