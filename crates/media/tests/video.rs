//! Video decoding through FFmpeg: frame counting, limits, confinement, and bad input. Every bad
//! input must come back as a specific error, never a panic or a hang.
//!
//! The clips are synthetic (FFmpeg's `testsrc2` pattern, see `testdata/video/README.md`) plus one
//! upstream vPDQ sample (a colour-bar pattern).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use safeguard_media::video::{
    is_animated_gif, is_animated_webp, sniff_video, VideoLimits, VideoReader,
};
use safeguard_media::Error;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

fn read(rel: &str) -> Vec<u8> {
    let p = testdata().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The upstream sample: 150 frames of 1080x1080 H.264 at 30 fps in MP4 (moov at the end).
fn padded() -> Vec<u8> {
    read("conformance/vpdq/videos/test-padded-dimensions.mp4")
}

/// Decodes every frame, converting those `select` picks; returns (frames, converted numbers).
fn decode_all(
    bytes: &[u8],
    limits: &VideoLimits,
    select: impl Fn(u64) -> bool,
) -> Result<(u64, Vec<u64>), Error> {
    let reader = VideoReader::open(bytes.to_vec(), limits)?;
    let (w, h) = (reader.info().width, reader.info().height);
    let mut picked = Vec::new();
    let n = reader.decode(select, |f| {
        assert_eq!((f.width, f.height), (w, h));
        assert_eq!(f.rgb.len(), w as usize * h as usize * 3);
        picked.push(f.number);
        Ok::<(), Error>(())
    })?;
    Ok((n, picked))
}

const VIDEO_CODES: [&str; 8] = [
    "video_too_large",
    "video_too_long",
    "too_many_frames",
    "decode_timeout",
    "unsupported_video",
    "truncated_video",
    "corrupt_video",
    "empty_input",
];

#[test]
fn decodes_every_frame_and_converts_only_the_selected() {
    let bytes = padded();
    let reader = VideoReader::open(bytes.clone(), &VideoLimits::default()).unwrap();
    let info = reader.info().clone();
    assert_eq!((info.width, info.height), (1080, 1080));
    assert_eq!(info.fps, 30.0);
    assert_eq!(info.declared_frames, Some(150));
    assert_eq!(info.codec, "h264");
    let (n, picked) = decode_all(&bytes, &VideoLimits::default(), |n| n % 30 == 0).unwrap();
    assert_eq!(n, 150);
    assert_eq!(picked, vec![0, 30, 60, 90, 120]);
}

/// (number, pixels digest) of the frames a decode passes on.
fn digests_of(frames: &mut Vec<(u64, u64)>, f: safeguard_media::video::VideoFrame<'_>) {
    let h = f.rgb.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    frames.push((f.number, h));
}

#[test]
fn sampled_decode_skips_work_but_not_frames() {
    for (file, frame_mod) in [
        ("conformance/vpdq/videos/test-padded-dimensions.mp4", 30),
        ("conformance/vpdq/videos/doorknob-hd-no-bar.mp4", 30),
        ("conformance/vpdq/videos/doorknob-hd-no-bar.mp4", 7),
        ("video/testsrc2-96x64-faststart.mp4", 4),
        ("video/testsrc2-64x48-2s.webm", 5),
        ("video/testsrc2-64x48-2s.ts", 3),
    ] {
        let bytes = read(file);
        let limits = VideoLimits::default();
        let mut full = Vec::new();
        let n_full = VideoReader::open(bytes.clone(), &limits)
            .unwrap()
            .decode(
                |n| n % frame_mod == 0,
                |f| {
                    digests_of(&mut full, f);
                    Ok::<(), Error>(())
                },
            )
            .unwrap();
        let mut sampled = Vec::new();
        let n_sampled = VideoReader::open(bytes.clone(), &limits)
            .unwrap()
            .decode_sampled(frame_mod, |f| {
                digests_of(&mut sampled, f);
                Ok::<(), Error>(())
            })
            .unwrap();
        match n_sampled {
            // Same frame count, same frames, same pixels.
            Some(n) => {
                assert_eq!(n, n_full, "{file}");
                assert_eq!(sampled, full, "{file}");
            }
            None => panic!("{file}: the sampled decode could not prove its numbering"),
        }
    }
}

/// Found by the `video_decode` fuzz target: a VP9 packet that decodes to no shown frame.
/// The sampled decode ranked 50 packets as 50 frames while the decoder shows 49, so every
/// frame after the hidden one was numbered one higher than the reference numbers it.
#[test]
fn a_packet_without_a_shown_frame_is_not_numbered() {
    let bytes = read("video/testsrc2-64x48-2s-hidden-frame.webm");
    let limits = VideoLimits::default();
    let shown = VideoReader::open(bytes.clone(), &limits)
        .unwrap()
        .decode(|_| false, |_| Ok::<(), Error>(()))
        .unwrap();
    assert_eq!(shown, 49);
    for frame_mod in [2, 3, 5] {
        let sampled = VideoReader::open(bytes.clone(), &limits)
            .unwrap()
            .decode_sampled(frame_mod, |_| Ok::<(), Error>(()))
            .unwrap();
        // Declining is the honest answer: the caller then counts with a full decode.
        assert!(
            matches!(sampled, None | Some(49)),
            "{frame_mod}: {sampled:?}"
        );
    }
}

#[test]
fn a_video_trimmed_without_reencoding_is_not_truncated() {
    // `ffmpeg -ss 0.5 -c copy` of the 60-frame clip: the 15 samples before the cut stay in
    // the file (the first shown frame needs them) behind an edit list; the container still
    // declares 60 frames, the decoder shows 45.
    let trimmed = read("video/testsrc2-96x64-trimmed.mp4");
    let limits = VideoLimits::default();
    let reader = VideoReader::open(trimmed.clone(), &limits).unwrap();
    assert_eq!(reader.info().declared_frames, Some(60));
    let mut shown = Vec::new();
    let n = reader
        .decode(
            |_| true,
            |f| {
                digests_of(&mut shown, f);
                Ok::<(), Error>(())
            },
        )
        .unwrap();
    assert_eq!(n, 45);
    // The shown frames are the original's from 0.5 s on, pixel for pixel, numbered from 0.
    let mut original = Vec::new();
    VideoReader::open(read("video/testsrc2-96x64-faststart.mp4"), &limits)
        .unwrap()
        .decode(
            |n| n >= 15,
            |f| {
                digests_of(&mut original, f);
                Ok::<(), Error>(())
            },
        )
        .unwrap();
    let renumbered: Vec<(u64, u64)> = original.iter().map(|&(n, h)| (n - 15, h)).collect();
    assert_eq!(shown, renumbered);
    // The sampled decode cannot rank the cut samples, so it declines and the caller counts.
    let sampled = VideoReader::open(trimmed, &limits)
        .unwrap()
        .decode_sampled(4, |_| Ok::<(), Error>(()))
        .unwrap();
    assert_eq!(sampled, None);
}

#[test]
fn other_containers_decode() {
    for (file, frames, fps) in [
        ("video/testsrc2-64x48-2s.ts", 50, 25.0),
        ("video/testsrc2-64x48-2s.webm", 50, 25.0),
        ("video/testsrc2-96x64-faststart.mp4", 60, 30.0),
        ("video/testsrc2-48x32-animated.gif", 5, 10.0),
    ] {
        let bytes = read(file);
        assert!(
            sniff_video(&bytes) || is_animated_gif(&bytes),
            "{file} not sniffed as video"
        );
        let reader = VideoReader::open(bytes.clone(), &VideoLimits::default()).unwrap();
        assert_eq!(reader.info().fps, fps, "{file}");
        let (n, picked) = decode_all(&bytes, &VideoLimits::default(), |_| true).unwrap();
        assert_eq!(n, frames, "{file}");
        assert_eq!(picked.len() as u64, frames, "{file}");
    }
}

#[test]
fn animated_webp_decodes_frame_by_frame() {
    let bytes = read("video/testsrc2-48x32-animated.webp");
    assert!(is_animated_webp(&bytes) && !sniff_video(&bytes));
    let reader = VideoReader::open(bytes.clone(), &VideoLimits::default()).unwrap();
    assert_eq!((reader.info().width, reader.info().height), (48, 32));
    // libwebp merged the 5 source frames into 3 (200, 200 and 100 ms): 3 frames in 0.5 s.
    assert_eq!(reader.info().declared_frames, Some(3));
    assert_eq!(reader.info().fps, 6.0);
    let (n, picked) = decode_all(&bytes, &VideoLimits::default(), |n| n != 1).unwrap();
    assert_eq!(n, 3);
    assert_eq!(picked, vec![0, 2]);
    let e = decode_all(
        &bytes,
        &VideoLimits {
            max_frames: 2,
            ..VideoLimits::default()
        },
        |_| true,
    )
    .unwrap_err();
    assert_eq!(e.code(), "too_many_frames");
    let e = decode_all(&bytes[..bytes.len() / 2], &VideoLimits::default(), |_| true).unwrap_err();
    assert!(
        ["truncated_video", "corrupt_video"].contains(&e.code()),
        "{e}"
    );
}

#[test]
fn still_images_are_not_animations() {
    assert!(!is_animated_gif(&read("video/testsrc2-48x32-still.gif")));
    let webp = read("conformance/pdq/photos/images/pdq/data/misc-images/modes/I.webp");
    assert!(!is_animated_webp(&webp));
    assert!(is_animated_gif(&read("video/testsrc2-48x32-animated.gif")));
}

#[test]
fn empty_and_non_video_inputs_are_refused() {
    let limits = VideoLimits::default();
    assert_eq!(
        VideoReader::open(Vec::new(), &limits).unwrap_err().code(),
        "empty_input"
    );
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde";
    for bytes in [&b"hello, world"[..], &[0u8; 10_000][..], &png[..]] {
        let e = VideoReader::open(bytes, &limits).unwrap_err();
        assert_eq!(e.code(), "unsupported_video", "{e}");
    }
}

#[test]
fn truncated_files_fail_cleanly_at_every_offset() {
    // Cuts inside the container structure or the frame data. (A cut that removes only trailing
    // metadata, such as the encoder tag at the end of the upstream sample, loses no frame and
    // decodes in full, as it does with the reference.)
    for bytes in [padded(), read("video/testsrc2-96x64-faststart.mp4")] {
        for cut in [
            16,
            100,
            1000,
            bytes.len() / 4,
            bytes.len() / 2,
            bytes.len() * 9 / 10,
        ] {
            let r = decode_all(&bytes[..cut], &VideoLimits::default(), |_| true);
            let e = r.expect_err(&format!("cut at {cut} of {} decoded", bytes.len()));
            assert!(
                ["truncated_video", "corrupt_video", "unsupported_video"].contains(&e.code()),
                "cut at {cut}: {e}"
            );
        }
    }
}

#[test]
fn a_faststart_mp4_cut_in_its_frame_data_is_an_error_not_fewer_frames() {
    // moov first: the container still parses, so the cut shows only when frames are missing
    // (`truncated_video`) or the last packet is cut short (`corrupt_video`).
    let bytes = read("video/testsrc2-96x64-faststart.mp4");
    for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len() * 3 / 4] {
        let e = decode_all(&bytes[..cut], &VideoLimits::default(), |_| true).unwrap_err();
        assert!(
            ["truncated_video", "corrupt_video"].contains(&e.code()),
            "cut at {cut}: {e}"
        );
    }
}

/// Flipped bits anywhere in a small clip: every outcome is either a decode that keeps the
/// frame contract (frames numbered from 0 without gaps, exactly the selected ones converted,
/// no more than the clip has) or one of the video errors, fast, and never the decode time
/// limit (a 96x64 clip that needs it has hung). The seed is fixed, so the mix is reproducible;
/// it must include both outcomes, or the flips tested only one path.
#[test]
fn random_byte_flips_never_panic_or_hang() {
    let original = read("video/testsrc2-96x64-faststart.mp4");
    let (frames, _) = decode_all(&original, &VideoLimits::default(), |_| false).unwrap();
    let limits = VideoLimits {
        max_decode_time: Duration::from_secs(20),
        ..VideoLimits::default()
    };
    // xorshift64: deterministic, no dependency.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut failed) = (0, 0);
    for round in 0..60 {
        let mut bytes = original.clone();
        for _ in 0..8 {
            let i = (next() % bytes.len() as u64) as usize;
            bytes[i] ^= 1 << (next() % 8);
        }
        let started = Instant::now();
        match decode_all(&bytes, &limits, |n| n % 7 == 0) {
            Ok((n, picked)) => {
                ok += 1;
                assert!(
                    n <= frames,
                    "round {round}: {n} frames from a {frames}-frame clip"
                );
                let want: Vec<u64> = (0..n).filter(|k| k % 7 == 0).collect();
                assert_eq!(picked, want, "round {round}: converted frames");
            }
            Err(e) => {
                failed += 1;
                assert!(
                    VIDEO_CODES.contains(&e.code()) && e.code() != "decode_timeout",
                    "round {round}: unexpected error {e}"
                );
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "round {round} took {:?}",
            started.elapsed()
        );
    }
    assert!(
        ok > 0 && failed > 0,
        "the flips should give both outcomes: {ok} decoded, {failed} refused"
    );
}

fn limit_error(bytes: &[u8], limits: VideoLimits) -> Error {
    decode_all(bytes, &limits, |_| true).unwrap_err()
}

#[test]
fn each_limit_alone_gives_its_own_error() {
    let bytes = padded();
    let d = VideoLimits::default;
    let cases = [
        (
            VideoLimits {
                max_input_bytes: bytes.len() as u64 - 1,
                ..d()
            },
            "video_too_large",
        ),
        (
            VideoLimits {
                max_width: 1079,
                ..d()
            },
            "video_too_large",
        ),
        (
            VideoLimits {
                max_height: 1079,
                ..d()
            },
            "video_too_large",
        ),
        (
            VideoLimits {
                max_pixels: 1080 * 1080 - 1,
                ..d()
            },
            "video_too_large",
        ),
        (
            VideoLimits {
                max_duration: Duration::from_secs(4),
                ..d()
            },
            "video_too_long",
        ),
        (
            VideoLimits {
                max_frames: 149,
                ..d()
            },
            "too_many_frames",
        ),
        (
            VideoLimits {
                max_decode_time: Duration::ZERO,
                ..d()
            },
            "decode_timeout",
        ),
    ];
    for (limits, code) in cases {
        let e = limit_error(&bytes, limits.clone());
        assert_eq!(e.code(), code, "{limits:?}: {e}");
    }
    // At the limit exactly, the video passes.
    let exact = VideoLimits {
        max_input_bytes: bytes.len() as u64,
        max_width: 1080,
        max_height: 1080,
        max_pixels: 1080 * 1080,
        max_duration: Duration::from_secs(5),
        max_frames: 150,
        ..d()
    };
    assert_eq!(decode_all(&bytes, &exact, |_| false).unwrap().0, 150);
}

#[test]
fn limits_hold_while_decoding_when_nothing_is_declared() {
    // MPEG-TS declares neither a frame count nor (reliably) a duration: the counters trip.
    let bytes = read("video/testsrc2-64x48-2s.ts");
    let e = limit_error(
        &bytes,
        VideoLimits {
            max_frames: 20,
            ..VideoLimits::default()
        },
    );
    assert_eq!(e.code(), "too_many_frames", "{e}");
}

#[test]
fn decode_timeout_trips_midway() {
    // A budget long enough to open the file but not to decode 150 HD frames.
    let bytes = padded();
    let limits = VideoLimits {
        max_decode_time: Duration::from_millis(30),
        ..VideoLimits::default()
    };
    let started = Instant::now();
    let e = decode_all(&bytes, &limits, |_| {
        std::thread::sleep(Duration::from_millis(1));
        true
    })
    .unwrap_err();
    assert_eq!(e.code(), "decode_timeout", "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn an_hls_playlist_naming_a_local_file_is_refused() {
    let target = testdata().join("video/testsrc2-64x48-2s.ts");
    let playlist = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nfile:{}\n#EXT-X-ENDLIST\n",
        target.display()
    );
    let e = VideoReader::open(playlist.into_bytes(), &VideoLimits::default()).unwrap_err();
    assert_eq!(e.code(), "unsupported_video", "{e}");
    let concat = format!("ffconcat version 1.0\nfile '{}'\n", target.display());
    let e = VideoReader::open(concat.into_bytes(), &VideoLimits::default()).unwrap_err();
    assert_eq!(e.code(), "unsupported_video", "{e}");
}

/// The WebP animation that panics image-webp 0.2.4 (see the media crate's hostile tests),
/// read as a video: an error, not a panic, and no frame after it.
#[test]
fn a_webp_animation_that_panics_its_decoder_is_a_clear_error() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/hostile/webp-frame-overrun.webp"
    ))
    .unwrap();
    let result = VideoReader::open(bytes, &VideoLimits::default())
        .map_err(|e| e.code())
        .and_then(|r| {
            r.decode(|_| true, |_| Ok::<(), Error>(()))
                .map_err(|e| e.code())
        });
    assert_eq!(result, Err("corrupt_video"));
}
