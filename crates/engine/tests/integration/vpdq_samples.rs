//! The match matrix of the 14 sample videos as Safeguard itself hashes them (every frame, and
//! one hash a second), compared with `match_matrix.csv` (upstream every-frame hashes, reference
//! CLI one-hash-a-second hashes). Needs the full conformance set and decodes every sample video
//! twice, so it is ignored by default:
//!
//! ```text
//! cargo test --release -p safeguard-engine --test integration vpdq_samples:: -- --ignored --nocapture
//! ```
//!
//! It prints the matrix as Markdown (recorded in `docs/video.md`) and fails if any pair's
//! python-threatexchange verdict (query >= 80 %, compared >= 0 %) differs from the CSV's.

use std::collections::BTreeMap;
use std::path::PathBuf;

use safeguard_engine::video::{vpdq_video, VideoOptions};
use safeguard_vpdq::{compare, VpdqFrame, VpdqMatchConfig};

fn root() -> PathBuf {
    if let Some(d) = std::env::var_os("SAFEGUARD_CONFORMANCE") {
        return PathBuf::from(d).join("vpdq");
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/vpdq")
}

fn hash_all(names: &[String], seconds_per_hash: f64) -> BTreeMap<String, Vec<VpdqFrame>> {
    let dir = root().join("videos");
    let opts = VideoOptions {
        seconds_per_hash,
        ..VideoOptions::default()
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunks: Vec<&[String]> = names.chunks(names.len().div_ceil(threads)).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                let (dir, opts) = (&dir, &opts);
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|n| {
                            let bytes = std::fs::read(dir.join(format!("{n}.mp4"))).unwrap();
                            let h = vpdq_video(bytes, opts).unwrap_or_else(|e| panic!("{n}: {e}"));
                            (n.clone(), h.frames)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

#[test]
#[ignore = "needs ../shared/conformance/vpdq and decodes all 14 sample videos twice (about a minute in release)"]
fn sample_video_matrix_matches_the_reference_verdicts() {
    let root = root();
    let csv = std::fs::read_to_string(root.join("match_matrix.csv"))
        .expect("the full vPDQ conformance set (match_matrix.csv)");
    let mut names: Vec<String> = std::fs::read_dir(root.join("videos"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    let cfg = VpdqMatchConfig::default();
    let mut disagreements = Vec::new();
    for (kind, csv_kind, sph) in [
        ("every frame", "r0_upstream", 0.0),
        ("one hash a second", "r1_measured", 1.0),
    ] {
        let start = std::time::Instant::now();
        let hashes = hash_all(&names, sph);
        println!(
            "\n### {kind} (Safeguard's hashes; hashed in {:.1} s)\n",
            start.elapsed().as_secs_f64()
        );
        println!("| query | compared | query % | compared % | match | CSV query % | CSV compared % | CSV match |");
        println!("|---|---|---:|---:|:-:|---:|---:|:-:|");
        for q in &names {
            for c in names.iter().filter(|c| *c != q) {
                let m = compare(&hashes[q], &hashes[c], &cfg);
                let row: Vec<&str> = csv
                    .lines()
                    .find(|l| l.starts_with(&format!("{csv_kind},{q},{c},")))
                    .unwrap_or_else(|| panic!("no CSV row {csv_kind} {q} {c}"))
                    .split(',')
                    .collect();
                let ours = m.is_match(&cfg);
                let theirs = row[5] == "True";
                if ours != theirs {
                    disagreements.push(format!("{kind}: {q} vs {c}: ours {ours}, CSV {theirs}"));
                }
                // Pairs at 0 % on both sides are left out of the printed table for brevity.
                if m.query_match_percent > 0.0 || row[3] != "0.000" {
                    println!(
                        "| {q} | {c} | {:.3} | {:.3} | {} | {} | {} | {} |",
                        m.query_match_percent,
                        m.compared_match_percent,
                        if ours { "yes" } else { "no" },
                        row[3],
                        row[4],
                        if theirs { "yes" } else { "no" },
                    );
                }
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "verdicts differ from match_matrix.csv:\n{}",
        disagreements.join("\n")
    );
}
