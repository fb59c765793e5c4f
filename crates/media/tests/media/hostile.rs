//! Hostile inputs: empty, garbage, truncated at every offset, bytes flipped at random, headers
//! declaring enormous images, and a PNG decompression bomb. Each must give its specific error
//! (never a panic, a hang, or an allocation the limits did not allow).

use safeguard_media::{decode, sniff, Error, Format, LimitKind, Limits};

use crate::support::*;

#[test]
fn empty_input_is_empty() {
    assert!(matches!(decode(&[], &Limits::default()), Err(Error::Empty)));
}

#[test]
fn garbage_is_unsupported_format() {
    let mut rng = Rng::new(7);
    let mut inputs: Vec<Vec<u8>> = (1..200).map(|n| rng.bytes(n)).collect();
    inputs.extend([
        b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec(),
        b"%PDF-1.7\n".to_vec(),
        b"RIFF\x10\0\0\0WAVEfmt ".to_vec(),
        vec![0xFF, 0xD8],
        b"\x89PNG\r\n".to_vec(),
        b"GIF88a".to_vec(),
        vec![0; 1000],
    ]);
    for input in inputs {
        if sniff(&input).is_some() {
            continue; // a random prefix can collide with a short magic ("BM")
        }
        let error = decode_err(&input, &Limits::default());
        assert!(matches!(error, Error::UnsupportedFormat), "{error:?}");
        assert_eq!(error.code(), "unsupported_format");
    }
}

#[test]
fn input_over_the_byte_limit_is_refused_before_decoding() {
    let (_, bytes, _) = valid_samples().remove(2);
    let limits = Limits {
        max_input_bytes: bytes.len() as u64 - 1,
        ..Limits::default()
    };
    let error = decode_err(&bytes, &limits);
    assert_eq!(too_large_kind(&error), Some(LimitKind::InputBytes));
    assert_eq!(error.code(), "too_large");
}

/// Every cut of every sample: the result is `Truncated` (or, for cuts that only remove what
/// follows the image data, the full image). Cuts inside the header or the first half of the
/// data are always `Truncated`.
#[test]
fn truncation_at_every_offset_is_truncated() {
    for (format, bytes, expected) in valid_samples() {
        let full = decode_ok(&bytes);
        let magic = match format {
            Format::Jpeg => 3,
            Format::Png => 8,
            Format::Gif => 6,
            Format::Webp => 12,
            Format::Bmp => 2,
            Format::Tiff => 4,
        };
        let must_fail_below = bytes.len() / 2;
        for cut in magic..bytes.len() {
            match decode(&bytes[..cut], &Limits::default()) {
                Err(e) if is_truncated(&e, format) => {}
                Ok(decoded) if cut >= must_fail_below => {
                    assert_eq!(decoded.image, full.image, "{format} cut at {cut}");
                    if let Some(expected) = &expected {
                        assert_eq!(&decoded.image.data, expected);
                    }
                }
                other => panic!("{format} cut at {cut} of {}: {other:?}", bytes.len()),
            }
        }
    }
}

/// Random byte flips: any outcome but a panic, an internal error or an I/O error is fine
/// (many flips land in pixel data and still decode).
#[test]
fn random_corruption_never_panics() {
    let mut rng = Rng::new(99);
    for (format, bytes, _) in valid_samples() {
        for _ in 0..300 {
            let mut mutated = bytes.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(mutated.len());
                mutated[at] = rng.next_u64() as u8;
            }
            match decode(&mutated, &Limits::default()) {
                Ok(decoded) => assert_eq!(
                    decoded.image.data.len(),
                    decoded.image.width as usize * decoded.image.height as usize * 3
                ),
                Err(e) => assert!(e.is_bad_input(), "{format}: {e:?} is not a bad-input error"),
            }
        }
    }
}

/// Decodes `bytes` and asserts the error is `TooLarge` of `kind`, and that it came before any
/// large allocation (less than 1 MiB allocated while trying).
fn assert_refused(bytes: &[u8], limits: &Limits, kind: LimitKind) {
    let (result, peak) = peak_allocation(|| decode(bytes, limits));
    match result {
        Err(e) => assert_eq!(too_large_kind(&e), Some(kind), "{e:?}"),
        Ok(d) => panic!("decoded {:?}", d.image),
    }
    assert!(peak < 1 << 20, "allocated {peak} bytes before refusing");
}

#[test]
fn png_declaring_huge_size_is_refused() {
    let mut bytes = png_bytes(
        8,
        8,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &pattern_rgb(8, 8),
        None,
        None,
    );
    png_set_size(&mut bytes, 100_000, 100_000);
    assert_refused(&bytes, &Limits::default(), LimitKind::Width);
    png_set_size(&mut bytes, 20_000, 20_000);
    assert_refused(&bytes, &Limits::default(), LimitKind::Pixels);
    png_set_size(&mut bytes, 10, 100_000);
    assert_refused(&bytes, &Limits::default(), LimitKind::Height);
}

/// A decompression bomb: 4096 x 4096 of zeros deflates to a few kilobytes; declared as
/// 65535 x 65535 it is refused on its header, and at its true size it is refused by a memory
/// budget smaller than the image.
#[test]
fn png_zip_bomb_is_refused() {
    let zeros = vec![0u8; 4096 * 4096];
    let mut bytes = png_bytes(
        4096,
        4096,
        png::ColorType::Grayscale,
        png::BitDepth::Eight,
        &zeros,
        None,
        None,
    );
    drop(zeros);
    assert!(bytes.len() < 100_000, "bomb is {} bytes", bytes.len());
    let small_budget = Limits {
        max_decode_bytes: 16 << 20,
        ..Limits::default()
    };
    assert_refused(&bytes, &small_budget, LimitKind::DecodeBytes);
    png_set_size(&mut bytes, 65_535, 65_535);
    assert_refused(&bytes, &Limits::default(), LimitKind::Width);
}

#[test]
fn jpeg_declaring_huge_size_is_refused() {
    let mut bytes = jpeg_bytes(16, 16, &pattern_rgb(16, 16), false);
    let sof = jpeg_marker(&bytes, 0xC0);
    // SOF0: FF C0, length (2), precision (1), height (2), width (2).
    let mut set_size = |width: u16, height: u16| {
        bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
        bytes.clone()
    };
    // Over our limits but within libjpeg's 65500.
    assert_refused(
        &set_size(65_000, 65_000),
        &Limits::default(),
        LimitKind::Width,
    );
    assert_refused(&set_size(16, 40_000), &Limits::default(), LimitKind::Height);
    assert_refused(
        &set_size(20_000, 20_000),
        &Limits::default(),
        LimitKind::Pixels,
    );
    // Over libjpeg's own ceiling, which refuses the header before we see the size.
    assert_refused(
        &set_size(65_535, 65_535),
        &Limits::default(),
        LimitKind::Width,
    );
    assert_refused(&set_size(16, 65_535), &Limits::default(), LimitKind::Height);
}

#[test]
fn progressive_jpeg_coefficients_count_against_the_budget() {
    let rgb = pattern_rgb(256, 256);
    let progressive = jpeg_bytes(256, 256, &rgb, true);
    let baseline = jpeg_bytes(256, 256, &rgb, false);
    // 256 * 256 * 3 bytes of output fit; the progressive coefficient buffers do not.
    let limits = Limits {
        max_decode_bytes: 256 * 256 * 4,
        ..Limits::default()
    };
    assert!(decode(&baseline, &limits).is_ok());
    let error = decode_err(&progressive, &limits);
    assert_eq!(too_large_kind(&error), Some(LimitKind::DecodeBytes));
}

#[test]
fn gif_declaring_huge_screen_or_frame_is_refused() {
    let frame = GifFrame {
        left: 0,
        top: 0,
        width: 2,
        height: 2,
        indices: vec![0, 1, 1, 0],
        transparent: None,
        local_palette: None,
        interlaced: false,
    };
    let mut bytes = gif_bytes(2, 2, &[0, 0, 0, 255, 255, 255], &[frame]);
    // Logical screen size: bytes 6..10.
    bytes[6..8].copy_from_slice(&65_535u16.to_le_bytes());
    bytes[8..10].copy_from_slice(&65_535u16.to_le_bytes());
    assert_refused(&bytes, &Limits::default(), LimitKind::Width);
    // A small screen but a frame placed far outside it grows the canvas (as in Pillow).
    bytes[6..8].copy_from_slice(&2u16.to_le_bytes());
    bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
    let descriptor = bytes
        .iter()
        .position(|&b| b == b',')
        .expect("image descriptor");
    bytes[descriptor + 3..descriptor + 5].copy_from_slice(&60_000u16.to_le_bytes());
    assert_refused(&bytes, &Limits::default(), LimitKind::Height);
    // Frame dimensions themselves (bytes 5..9 of the descriptor).
    bytes[descriptor + 3..descriptor + 5].copy_from_slice(&0u16.to_le_bytes());
    bytes[descriptor + 5..descriptor + 7].copy_from_slice(&65_535u16.to_le_bytes());
    bytes[descriptor + 7..descriptor + 9].copy_from_slice(&65_535u16.to_le_bytes());
    assert_refused(&bytes, &Limits::default(), LimitKind::Width);
}

#[test]
fn webp_declaring_huge_size_is_refused() {
    let mut bytes = webp_lossless_bytes(4, 4, &pattern_rgb(4, 4), false);
    // VP8L: signature byte 0x2F at 20, then 14-bit width-1 and height-1.
    assert_eq!(bytes[20], 0x2F);
    let header = u32::from_le_bytes(bytes[21..25].try_into().unwrap());
    // 16383 x 16383 (stored as size - 1); image-webp cannot represent 16384.
    let max = (header & !0x0FFF_FFFF) | 0x3FFE | (0x3FFE << 14);
    bytes[21..25].copy_from_slice(&max.to_le_bytes());
    // Within the side limit but over 100 megapixels.
    assert_refused(&bytes, &Limits::default(), LimitKind::Pixels);
    let small = Limits {
        max_width: 1000,
        ..Limits::default()
    };
    assert_refused(&bytes, &small, LimitKind::Width);
}

#[test]
fn bmp_declaring_huge_size_is_refused() {
    let mut bytes = bmp_bytes(4, 4, &pattern_rgb(4, 4), image::ExtendedColorType::Rgb8);
    // BITMAPINFOHEADER width and height at 18 and 22.
    bytes[18..22].copy_from_slice(&100_000i32.to_le_bytes());
    bytes[22..26].copy_from_slice(&100_000i32.to_le_bytes());
    assert_refused(&bytes, &Limits::default(), LimitKind::Width);
}

#[test]
fn tiff_declaring_huge_size_is_refused() {
    let mut bytes = tiff_bytes(4, 4, &pattern_rgb(4, 4), image::ExtendedColorType::Rgb8);
    let ifd = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    let entries = usize::from(u16::from_le_bytes([bytes[ifd], bytes[ifd + 1]]));
    for n in 0..entries {
        let entry = ifd + 2 + n * 12;
        let tag = u16::from_le_bytes([bytes[entry], bytes[entry + 1]]);
        let kind = u16::from_le_bytes([bytes[entry + 2], bytes[entry + 3]]);
        // ImageWidth (256) and ImageLength (257), stored as SHORT (3) or LONG (4).
        if tag == 256 || tag == 257 {
            bytes[entry + 2..entry + 4].copy_from_slice(&4u16.to_le_bytes());
            bytes[entry + 8..entry + 12].copy_from_slice(&100_000u32.to_le_bytes());
            assert!(kind == 3 || kind == 4);
        }
    }
    assert_refused(&bytes, &Limits::default(), LimitKind::Width);
}

#[test]
fn each_limit_applies_to_a_valid_image() {
    let (_, bytes, _) = valid_samples().remove(2); // 23 x 17 PNG
    let cases = [
        (
            Limits {
                max_width: 22,
                ..Limits::default()
            },
            LimitKind::Width,
        ),
        (
            Limits {
                max_height: 16,
                ..Limits::default()
            },
            LimitKind::Height,
        ),
        (
            Limits {
                max_pixels: 23 * 17 - 1,
                ..Limits::default()
            },
            LimitKind::Pixels,
        ),
        (
            Limits {
                max_decode_bytes: 100,
                ..Limits::default()
            },
            LimitKind::DecodeBytes,
        ),
    ];
    for (limits, kind) in cases {
        assert_refused(&bytes, &limits, kind);
    }
    let exact = Limits {
        max_width: 23,
        max_height: 17,
        max_pixels: 23 * 17,
        ..Limits::default()
    };
    assert!(decode(&bytes, &exact).is_ok());
}

#[test]
fn the_file_name_does_not_matter() {
    // The same PNG bytes under a misleading name decode as PNG; JPEG bytes named .png too.
    let dir = std::env::temp_dir().join(format!("safeguard-media-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (format, bytes, _) in valid_samples() {
        let path = dir.join(format!("upload-{}.txt", format.name()));
        std::fs::write(&path, &bytes).unwrap();
        let read = safeguard_media::read_file(&path, &Limits::default()).unwrap();
        assert_eq!(decode_ok(&read).format, format);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn read_file_enforces_the_input_limit() {
    let dir = std::env::temp_dir().join(format!("safeguard-media-read-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.bin");
    std::fs::write(&path, vec![7u8; 4096]).unwrap();
    let limits = Limits {
        max_input_bytes: 4095,
        ..Limits::default()
    };
    let error = safeguard_media::read_file(&path, &limits).unwrap_err();
    assert_eq!(too_large_kind(&error), Some(LimitKind::InputBytes));
    let exact = Limits {
        max_input_bytes: 4096,
        ..Limits::default()
    };
    assert_eq!(
        safeguard_media::read_file(&path, &exact).unwrap().len(),
        4096
    );
    let missing = safeguard_media::read_file(&dir.join("missing"), &exact).unwrap_err();
    assert!(matches!(missing, Error::Io(_)));
    assert_eq!(missing.code(), "io_error");
    assert!(!missing.is_bad_input());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn image_without_pixels_is_corrupt() {
    let bytes = gif_bytes(
        0,
        0,
        &[0, 0, 0, 255, 255, 255],
        &[GifFrame {
            left: 0,
            top: 0,
            width: 0,
            height: 0,
            indices: vec![],
            transparent: None,
            local_palette: None,
            interlaced: false,
        }],
    );
    let error = decode_err(&bytes, &Limits::default());
    assert!(is_corrupt(&error, Format::Gif), "{error:?}");
}

/// image-webp 0.2.4 panics on this animation (a frame overruns its row buffer in the YUV
/// conversion; found by the `decode_hash` fuzz target). Decoding it is an error naming the
/// file corrupt, never a panic that would end a `safeguard hash` or scan run.
#[test]
fn a_webp_whose_frame_overruns_its_buffer_is_corrupt_not_a_panic() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/hostile/webp-frame-overrun.webp"
    ))
    .unwrap();
    let error = decode_err(&bytes, &Limits::default());
    assert!(
        matches!(
            &error,
            Error::Corrupt {
                format: Format::Webp,
                detail
            } if detail.starts_with("the WebP decoder failed")
        ),
        "{error:?}"
    );
    assert_eq!(error.code(), "corrupt_image");
}
