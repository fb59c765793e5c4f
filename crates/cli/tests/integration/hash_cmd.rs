//! `safeguard hash` end to end: the real binary on files from the repository's test data.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_safeguard"))
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/conformance/pdq")
}

/// (path, pdq, quality) rows of the repository's lossless subset.
fn expected_lossless() -> Vec<(PathBuf, String, String)> {
    let dir = testdata().join("lossless");
    std::fs::read_to_string(dir.join("expected.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (dir.join(f[0]), f[1].to_string(), f[2].to_string())
        })
        .collect()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sg-hash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn csv_lines_match_the_reference_for_a_folder() {
    let rows = expected_lossless();
    let out = bin()
        .arg("hash")
        .arg(testdata().join("lossless/images"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), rows.len());
    // Folder order is by name, so it equals the sorted expected rows.
    let mut sorted = rows.clone();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (line, (path, pdq, q)) in lines.iter().zip(&sorted) {
        assert_eq!(*line, format!("{pdq},{q},{}", path.display()));
    }
}

#[test]
fn json_has_every_field_and_dihedrals() {
    let (path, pdq, q) = expected_lossless().into_iter().next().unwrap();
    let out = bin()
        .args(["hash", "--json", "--dihedral"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pdq"], pdq.as_str());
    assert_eq!(v["quality"].to_string(), q);
    assert_eq!(v["path"], path.to_string_lossy().as_ref());
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(v["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(v["sha1"].as_str().unwrap().len(), 40);
    assert_eq!(v["md5"].as_str().unwrap().len(), 32);
    assert_eq!(
        v["sha256"],
        hex::encode(safeguard_media::digest::digests(&bytes).sha256).as_str()
    );
    assert!(v["width"].as_u64().unwrap() > 0 && v["height"].as_u64().unwrap() > 0);
    for k in [
        "rot90",
        "rot180",
        "rot270",
        "flipx",
        "flipy",
        "flipplus1",
        "flipminus1",
    ] {
        assert_eq!(v["dihedral"][k].as_str().unwrap().len(), 64, "{k}");
    }
}

#[test]
fn a_bad_file_is_reported_and_the_others_still_hash() {
    let dir = tmpdir("bad");
    let (good, pdq, _) = expected_lossless().into_iter().next().unwrap();
    // Content decides the format: a PNG named .jpg hashes as the PNG it is.
    std::fs::copy(&good, dir.join("a_misnamed.jpg")).unwrap();
    std::fs::write(dir.join("b_corrupt.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    std::fs::write(dir.join("c_empty.gif"), b"").unwrap();
    std::fs::write(dir.join("d_text.txt"), b"hello").unwrap();
    let out = bin().arg("hash").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    assert!(stdout.starts_with(&pdq));
    let stderr = String::from_utf8(out.stderr).unwrap();
    for name in ["b_corrupt.png", "c_empty.gif", "d_text.txt"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with("error: ") && l.contains(name)),
            "no error line for {name} in {stderr}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A reader that goes away stops the output quietly: status 0, no error (README). The output
/// of 600 files is larger than a pipe holds, so the command cannot finish without writing
/// into the closed pipe.
#[test]
fn a_closed_pipe_stops_the_output_quietly() {
    let dir = tmpdir("pipe");
    let (good, _, _) = expected_lossless().into_iter().next().unwrap();
    std::fs::copy(&good, dir.join("f0000.png")).unwrap();
    for i in 1..600 {
        std::fs::hard_link(dir.join("f0000.png"), dir.join(format!("f{i:04}.png"))).unwrap();
    }
    let mut child = bin()
        .arg("hash")
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_path_fails_with_status_1() {
    let out = bin()
        .args(["hash", "/nonexistent/safeguard-test.jpg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: /nonexistent/safeguard-test.jpg"));
}

#[test]
fn limits_reject_large_images() {
    let (path, _, _) = expected_lossless()
        .into_iter()
        .find(|(p, _, _)| p.to_string_lossy().contains("512x512"))
        .expect("a 512x512 file in the subset");
    let out = bin()
        .args(["hash", "--max-side", "100"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: "), "{stderr}");
}

#[test]
fn dihedral_needs_json() {
    let out = bin()
        .args(["hash", "--dihedral", "x.png"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn cpp512_mode_and_fast_mode_run() {
    let (path, pdq, _) = expected_lossless()
        .into_iter()
        .find(|(p, _, _)| p.to_string_lossy().contains("photo_bridge_127x129"))
        .expect("a photo in the subset");
    for mode in [&["--compat", "cpp512"][..], &["--fast"][..]] {
        let out = bin().arg("hash").args(mode).arg(&path).output().unwrap();
        assert!(out.status.success(), "{mode:?}");
        let line = String::from_utf8(out.stdout).unwrap();
        let got = safeguard_pdq::PdqHash::from_hex(&line[..64]).unwrap();
        let want = safeguard_pdq::PdqHash::from_hex(&pdq).unwrap();
        // A lossless PNG of at most 512 px: neither mode changes the pixels much.
        assert!(
            got.distance(&want) <= 16,
            "{mode:?}: {}",
            got.distance(&want)
        );
    }
}

/// Runs `safeguard hash ARGS` and returns (status success, stdout, stderr).
fn hash_output(args: &[&str], paths: &[PathBuf]) -> (bool, String, String) {
    let out = bin().arg("hash").args(args).args(paths).output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn sandboxed_and_in_process_output_are_identical() {
    // Every testdata image and video, every output that carries hashes: the default decodes in
    // confined workers, --in-process in the CLI itself.
    let images = testdata();
    let videos = testdata().join("../../video");
    let bad = tmpdir("sandbox-bad");
    std::fs::write(bad.join("cut.jpg"), [0xFF, 0xD8, 0xFF, 0xE0, 0, 16]).unwrap();
    let paths = [images, videos, bad];
    // (arguments, least lines printed: images and video frames, or video frames only)
    for (args, least) in [
        (&["--json", "--dihedral"][..], 100),
        (&["--json", "--compat", "cpp512", "--fast"], 100),
        (&["--seconds-per-hash", "0"], 100),
        (&["--format", "vpdq"], 10),
    ] {
        let sandboxed = hash_output(args, &paths);
        let mut in_process_args = args.to_vec();
        in_process_args.push("--in-process");
        let in_process = hash_output(&in_process_args, &paths);
        assert_eq!(sandboxed, in_process, "{args:?}");
        assert!(
            sandboxed.1.lines().count() >= least,
            "{args:?}: {}",
            sandboxed.1
        );
        assert!(sandboxed.2.contains("cut.jpg"), "{}", sandboxed.2);
    }
}
