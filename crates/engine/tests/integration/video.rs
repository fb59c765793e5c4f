//! `hash_video` and `vpdq_video` on real files: sampling, digests, animated images, errors.

use std::path::{Path, PathBuf};

use safeguard_engine::video::{hash_video, is_video, vpdq_video, VideoOptions};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

fn read(rel: &str) -> Vec<u8> {
    let p = testdata().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn every_frame() -> VideoOptions {
    VideoOptions {
        seconds_per_hash: 0.0,
        ..VideoOptions::default()
    }
}

#[test]
fn one_hash_per_second_samples_by_frame_count() {
    let bytes = read("conformance/vpdq/videos/test-padded-dimensions.mp4");
    assert!(is_video(&bytes));
    let v = hash_video(bytes.clone(), &VideoOptions::default()).unwrap();
    let numbers: Vec<u64> = v.vpdq.frames.iter().map(|f| f.frame_number).collect();
    assert_eq!(numbers, vec![0, 30, 60, 90, 120]);
    assert_eq!(
        (v.vpdq.width, v.vpdq.height, v.vpdq.fps, v.vpdq.frame_count),
        (1080, 1080, 30.0, 150)
    );
    assert_eq!(v.vpdq.duration_s, 5.0);
    assert!(v.first_frame.is_none());
    let d = safeguard_media::digest::digests(&bytes);
    assert_eq!((v.md5, v.sha1, v.sha256), (d.md5, d.sha1, d.sha256));
    // vPDQ alone (what `--format vpdq` prints) is exactly the vPDQ part of the full result.
    assert_eq!(
        vpdq_video(bytes.clone(), &VideoOptions::default()).unwrap(),
        v.vpdq
    );
    // Every-frame mode gives a superset with the same values on the shared frames.
    let all = hash_video(bytes.clone(), &every_frame()).unwrap();
    assert_eq!(all.vpdq.frames.len(), 150);
    for f in &v.vpdq.frames {
        assert_eq!(all.vpdq.frames[f.frame_number as usize], *f);
    }
}

#[test]
fn animated_images_get_frames_and_a_still_image_hash() {
    for file in [
        "video/testsrc2-48x32-animated.gif",
        "video/testsrc2-48x32-animated.webp",
    ] {
        let bytes = read(file);
        assert!(is_video(&bytes), "{file}");
        let v = hash_video(bytes.clone(), &every_frame()).unwrap();
        assert!(
            v.vpdq.frames.len() >= 3,
            "{file}: {} frames",
            v.vpdq.frames.len()
        );
        let still = v.first_frame.as_ref().expect("first frame hash");
        // The still-image hash is the bank-compatible one, the same as hashing the file as an
        // image.
        let image =
            safeguard_engine::hash_media(&bytes, &safeguard_media::Limits::default()).unwrap();
        assert_eq!(still, &image, "{file}");
    }
}

#[test]
fn still_images_are_not_videos() {
    assert!(!is_video(&read("video/testsrc2-48x32-still.gif")));
    assert!(!is_video(&read(
        "conformance/pdq/photos/images/pdq/data/misc-images/modes/I.webp"
    )));
    assert!(!is_video(b""));
}

#[test]
fn frames_under_five_pixels_are_an_input_error() {
    let e = hash_video(read("video/tiny-4x4.mp4"), &every_frame()).unwrap_err();
    assert_eq!(e.code(), "unsupported_video", "{e}");
    assert!(e.is_client_error());
}

#[test]
fn bad_input_and_bad_options_have_stable_codes() {
    let e = hash_video(&b"not a video at all"[..], &VideoOptions::default()).unwrap_err();
    assert_eq!(e.code(), "unsupported_video");
    assert!(e.is_client_error());
    let e = hash_video(Vec::new(), &VideoOptions::default()).unwrap_err();
    assert_eq!(e.code(), "empty_input");
    let bytes = read("video/testsrc2-64x48-2s.ts");
    let e = hash_video(
        bytes,
        &VideoOptions {
            seconds_per_hash: -1.0,
            ..VideoOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.code(), "invalid_request", "{e}");
}
