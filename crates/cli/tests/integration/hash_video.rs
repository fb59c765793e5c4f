//! `safeguard hash` on videos: the real binary, the reference's line format, JSON, errors.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_safeguard"))
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

fn sample() -> PathBuf {
    testdata().join("conformance/vpdq/videos/test-padded-dimensions.mp4")
}

fn run(args: &[&str], path: &Path) -> (bool, String, String) {
    let out = bin().arg("hash").args(args).arg(path).output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn format_vpdq_prints_the_reference_cli_lines() {
    // The reference CLI on the same FFmpeg (5.1) wrote these files: every frame, and one hash
    // per second.
    let dir = testdata().join("conformance/vpdq/measured_ffmpeg5.1.9");
    for (args, expected) in [
        (
            &["--format", "vpdq", "--seconds-per-hash", "0"][..],
            "r0/test-padded-dimensions.txt",
        ),
        (&["--format", "vpdq"][..], "r1/test-padded-dimensions.txt"),
    ] {
        let (ok, stdout, stderr) = run(args, &sample());
        assert!(ok, "{stderr}");
        let want = std::fs::read_to_string(dir.join(expected)).unwrap();
        assert_eq!(stdout, want, "{args:?}");
    }
}

#[test]
fn csv_lines_carry_the_path_and_json_the_digests() {
    let (ok, stdout, stderr) = run(&[], &sample());
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[1].starts_with("30,100,"));
    assert!(lines[1].ends_with(&format!(",1.000,{}", sample().display())));

    let (ok, stdout, stderr) = run(&["--json", "--seconds-per-hash", "2"], &sample());
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["type"], "video");
    assert_eq!(v["frame_count"], 150);
    assert_eq!(v["fps"], 30.0);
    let frames: Vec<u64> = v["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["frame"].as_u64().unwrap())
        .collect();
    assert_eq!(frames, vec![0, 60, 120]);
    let bytes = std::fs::read(sample()).unwrap();
    let d = safeguard_media::digest::digests(&bytes);
    assert_eq!(v["md5"], hex::encode(d.md5));
    assert_eq!(v["sha1"], hex::encode(d.sha1));
    assert_eq!(v["sha256"], hex::encode(d.sha256));
    assert!(v.get("first_frame").is_none());
}

#[test]
fn animated_gif_json_has_frames_and_a_still_hash() {
    let gif = testdata().join("video/testsrc2-48x32-animated.gif");
    let (ok, stdout, stderr) = run(&["--json", "--seconds-per-hash", "0"], &gif);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["frames"].as_array().unwrap().len(), 5);
    assert_eq!(v["first_frame"]["width"], 48);
    assert_eq!(v["first_frame"]["pdq"].as_str().unwrap().len(), 64);
}

#[test]
fn errors_name_the_file_and_fail_the_run() {
    let (ok, stdout, stderr) = run(&[], &testdata().join("video/tiny-4x4.mp4"));
    assert!(!ok);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("tiny-4x4.mp4") && stderr.contains("minimum hashable"),
        "{stderr}"
    );

    let still = testdata().join("video/testsrc2-48x32-still.gif");
    let (ok, _, stderr) = run(&["--format", "vpdq"], &still);
    assert!(!ok);
    assert!(stderr.contains("not a video"), "{stderr}");

    let (ok, _, stderr) = run(&["--max-video-seconds", "1"], &sample());
    assert!(!ok);
    assert!(stderr.contains("over the limit"), "{stderr}");

    let (ok, _, stderr) = run(&["--seconds-per-hash=-1"], &sample());
    assert!(!ok);
    assert!(stderr.contains("seconds-per-hash"), "{stderr}");
}
