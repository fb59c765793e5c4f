//! vPDQ conformance against `conformance/vpdq` (see its README.md): Safeguard's video decode
//! and frame hashing must meet upstream's own regression rule line by line. Frame numbers and
//! timestamps identical; where both qualities are at least 50, Hamming distance under 31. The
//! share of bit-identical frames is printed per video (run with `--nocapture` to see it).
//!
//! Every-frame mode is checked against `expected_upstream/<name>.txt` (made by Meta's CLI with
//! `-r 0`, on another FFmpeg: upstream's tolerance applies). Against the reference CLI built on
//! the same FFmpeg as Debian 12 (`measured_ffmpeg5.1.9/r0` and `r1`), the README's claim is
//! "bit-identical", so there every line must be: hash and quality equal, not merely close.

use std::path::{Path, PathBuf};

use safeguard_conformance::locate;
use safeguard_engine::video::{vpdq_video, VideoOptions};
use safeguard_pdq::PdqHash;
use safeguard_vpdq::VpdqFrame;

/// Upstream's regression tolerance: distance must be strictly under this.
const MAX_DISTANCE_EXCLUSIVE: u32 = 31;
/// Lines where either quality is under this are not compared.
const MIN_QUALITY: u8 = 50;

struct Line {
    frame: u64,
    quality: u8,
    hash: PdqHash,
    timestamp: String,
}

fn read_lines(path: &Path) -> Vec<Line> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.trim().split(',').collect();
            assert_eq!(f.len(), 4, "{}: bad line {l:?}", path.display());
            Line {
                frame: f[0].parse().expect("frame number"),
                quality: f[1].parse().expect("quality"),
                hash: PdqHash::from_hex(f[2]).expect("hash"),
                timestamp: f[3].to_string(),
            }
        })
        .collect()
}

/// What one video's comparison found.
#[derive(Debug, Default)]
struct Report {
    lines: usize,
    identical: usize,
    compared: usize,
    max_distance: u32,
    /// Line count, frame numbers and timestamps all equal.
    aligned: bool,
    failures: Vec<String>,
}

fn compare(name: &str, got: &[VpdqFrame], want: &[Line]) -> Report {
    let mut r = Report {
        lines: want.len(),
        aligned: got.len() == want.len(),
        ..Report::default()
    };
    if got.len() != want.len() {
        r.failures.push(format!(
            "{name}: {} lines, expected {}",
            got.len(),
            want.len()
        ));
    }
    for (g, w) in got.iter().zip(want) {
        let ts = format!("{:.3}", g.timestamp);
        if g.frame_number != w.frame || ts != w.timestamp {
            r.aligned = false;
            r.failures.push(format!(
                "{name}: line for frame {} at {ts}, expected frame {} at {}",
                g.frame_number, w.frame, w.timestamp
            ));
            continue;
        }
        if g.hash == w.hash && g.quality == w.quality {
            r.identical += 1;
        }
        if g.quality >= MIN_QUALITY && w.quality >= MIN_QUALITY {
            r.compared += 1;
            let d = g.hash.distance(&w.hash);
            r.max_distance = r.max_distance.max(d);
            if d >= MAX_DISTANCE_EXCLUSIVE {
                r.failures.push(format!(
                    "{name}: frame {} distance {d} (qualities {} and {})",
                    w.frame, g.quality, w.quality
                ));
            }
        }
    }
    r
}

fn videos(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .collect();
    v.sort();
    v
}

/// How close each line must be to the expected one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Upstream's regression rule (another FFmpeg build decodes slightly different pixels).
    Tolerance,
    /// Same FFmpeg as the reference run: hash and quality equal on every line.
    BitIdentical,
}

/// Hashes every video (two at a time: the suite runs on two-core CI machines) and checks it
/// against `expected/<name>.txt` under `rule`.
fn run(seconds_per_hash: f64, expected: &str, rule: Rule) {
    let c = locate();
    let root = c.root.join("vpdq");
    assert!(
        root.is_dir(),
        "{} has no vpdq/ folder (the conformance set is incomplete)",
        c.root.display()
    );
    let files = videos(&root.join("videos"));
    if c.full {
        assert_eq!(files.len(), 14, "the full vPDQ set has 14 videos");
    }
    assert!(!files.is_empty(), "no videos in {}", root.display());
    let opts = VideoOptions {
        seconds_per_hash,
        ..VideoOptions::default()
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let reports = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(path) = files.get(k) else { break };
                let name = path
                    .file_stem()
                    .expect("stem")
                    .to_string_lossy()
                    .to_string();
                let want = read_lines(&root.join(expected).join(format!("{name}.txt")));
                let bytes = std::fs::read(path).expect("read video");
                let got = vpdq_video(bytes, &opts)
                    .unwrap_or_else(|e| panic!("{name}: {e}"))
                    .frames;
                let r = compare(&name, &got, &want);
                reports.lock().expect("lock").push((name, r));
            });
        }
    });
    let mut reports = reports.into_inner().expect("lock");
    reports.sort_by(|a, b| a.0.cmp(&b.0));
    let mut failures = Vec::new();
    let (mut lines, mut identical) = (0, 0);
    println!("video,lines,frame_numbers_and_timestamps_identical,bit_identical_share,compared,max_distance");
    for (name, r) in &reports {
        lines += r.lines;
        identical += r.identical;
        println!(
            "{name},{},{},{:.1}%,{},{}",
            r.lines,
            r.aligned,
            100.0 * r.identical as f64 / r.lines.max(1) as f64,
            r.compared,
            r.max_distance
        );
        failures.extend(r.failures.iter().cloned());
        if rule == Rule::BitIdentical && r.identical != r.lines {
            failures.push(format!(
                "{name}: {} of {} lines bit-identical to the reference CLI on the same FFmpeg \
                 (5.1.9); the README claims all (another FFmpeg build is checked only by the \
                 tolerance test)",
                r.identical, r.lines
            ));
        }
    }
    println!(
        "total: {lines} lines, {identical} bit-identical ({:.1}%)",
        100.0 * identical as f64 / lines.max(1) as f64
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_frame_matches_upstream_within_tolerance() {
    run(0.0, "expected_upstream", Rule::Tolerance);
}

/// The same FFmpeg (5.1.9) as the measured reference run: every line bit-identical.
#[test]
fn every_frame_is_bit_identical_to_the_reference_cli_on_the_same_ffmpeg() {
    run(0.0, "measured_ffmpeg5.1.9/r0", Rule::BitIdentical);
}

#[test]
fn one_hash_per_second_is_bit_identical_to_the_reference_cli() {
    run(1.0, "measured_ffmpeg5.1.9/r1", Rule::BitIdentical);
}
