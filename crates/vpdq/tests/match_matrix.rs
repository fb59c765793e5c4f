//! Reproduces `match_matrix.csv` of the vPDQ conformance set: the query and compared match
//! percentages of every ordered pair of sample videos, from the upstream every-frame hashes
//! (`r0_upstream` rows, `expected_upstream/<name>.txt`) and from the measured one-hash-a-second
//! hashes (`r1_measured` rows, `measured_ffmpeg5.1.9/r1/<name>.txt`), to the CSV's 3 decimals, plus both
//! match verdicts (python-threatexchange's and the upstream README's).
//!
//! The full set is `$SAFEGUARD_CONFORMANCE/vpdq` or `../shared/conformance/vpdq`; without it the
//! repository subset `testdata/conformance/vpdq` is used (only the rows whose hash files it
//! holds). When `CI=true` a missing full set is a failure.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safeguard_vpdq::{compare, format, VpdqFrame, VpdqIndex, VpdqMatchConfig};

/// The vPDQ conformance folder: `$SAFEGUARD_CONFORMANCE/vpdq`, else the full set beside the
/// checkout, else the repository subset.
fn locate() -> PathBuf {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = [
        std::env::var_os("SAFEGUARD_CONFORMANCE").map(|d| PathBuf::from(d).join("vpdq")),
        Some(ws.join("../shared/conformance/vpdq")),
        Some(ws.join("testdata/conformance/vpdq")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|d| d.join("match_matrix.csv").is_file())
        .expect("no vPDQ conformance set with match_matrix.csv")
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn hash_file(root: &Path, kind: &str, name: &str) -> PathBuf {
    match kind {
        "r0_upstream" => root.join("expected_upstream").join(format!("{name}.txt")),
        "r1_measured" => root
            .join("measured_ffmpeg5.1.9/r1")
            .join(format!("{name}.txt")),
        other => panic!("unknown hashes kind {other}"),
    }
}

struct Row {
    kind: String,
    query: String,
    compared: String,
    q: String,
    c: String,
    pytx: bool,
    readme: bool,
}

fn read_matrix(root: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(root.join("match_matrix.csv")).expect("match_matrix.csv");
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    assert!(header.starts_with("hashes,query,compared,query_match_percent,compared_match_percent"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 7, "{l}");
            Row {
                kind: f[0].into(),
                query: f[1].into(),
                compared: f[2].into(),
                q: f[3].into(),
                c: f[4].into(),
                pytx: f[5] == "True",
                readme: f[6] == "True",
            }
        })
        .collect()
}

#[test]
fn match_matrix_is_reproduced() {
    let root = locate();
    let rows = read_matrix(&root);
    // The full set has the hash files of every row; the repository subset only some.
    let full = rows.iter().all(|r| {
        hash_file(&root, &r.kind, &r.query).is_file()
            && hash_file(&root, &r.kind, &r.compared).is_file()
    });
    assert!(
        full || !ci(),
        "CI=true but the vPDQ conformance set at {} is not the full set",
        root.display()
    );
    if !full {
        eprintln!(
            "note: {} is a subset; checking the rows it has hashes for",
            root.display()
        );
    }
    let mut cache: HashMap<PathBuf, Option<Vec<VpdqFrame>>> = HashMap::new();
    let mut load = |p: PathBuf| {
        cache
            .entry(p.clone())
            .or_insert_with(|| {
                std::fs::read_to_string(&p)
                    .ok()
                    .map(|t| format::parse_reference_lines(&t).expect("valid hash file"))
            })
            .clone()
    };
    let pytx = VpdqMatchConfig::default();
    let readme = VpdqMatchConfig {
        query_match_percent: 0.0,
        compared_match_percent: 80.0,
        ..pytx
    };
    let mut checked = 0;
    let mut by_kind: HashMap<String, Vec<(String, Vec<VpdqFrame>)>> = HashMap::new();
    for r in &rows {
        let (Some(q), Some(c)) = (
            load(hash_file(&root, &r.kind, &r.query)),
            load(hash_file(&root, &r.kind, &r.compared)),
        ) else {
            assert!(
                !full,
                "full set lacks the hashes of {} / {}",
                r.query, r.compared
            );
            continue;
        };
        let m = compare(&q, &c, &pytx);
        let got = (
            format!("{:.3}", m.query_match_percent),
            format!("{:.3}", m.compared_match_percent),
        );
        assert_eq!(
            got,
            (r.q.clone(), r.c.clone()),
            "{} {} vs {}",
            r.kind,
            r.query,
            r.compared
        );
        assert_eq!(
            m.is_match(&pytx),
            r.pytx,
            "{} {} vs {}",
            r.kind,
            r.query,
            r.compared
        );
        assert_eq!(
            m.is_match(&readme),
            r.readme,
            "{} {} vs {}",
            r.kind,
            r.query,
            r.compared
        );
        checked += 1;
        let videos = by_kind.entry(r.kind.clone()).or_default();
        if !videos.iter().any(|(n, _)| *n == r.compared) {
            videos.push((r.compared.clone(), c));
        }
    }
    if full {
        assert_eq!(checked, 364, "every row of the full matrix");
    }
    assert!(
        checked > 0,
        "no row of match_matrix.csv could be checked in {}",
        root.display()
    );

    // The index gives every row too: one index per hashing mode, each video queried against
    // all others.
    for (kind, videos) in &by_kind {
        let mut index = VpdqIndex::new();
        for (i, (_, frames)) in videos.iter().enumerate() {
            index.add(i as u64, frames);
        }
        for (query_name, query) in videos {
            let got = index.query(query, &pytx).unwrap();
            for r in rows
                .iter()
                .filter(|r| r.kind == *kind && r.query == *query_name)
            {
                let Some(i) = videos.iter().position(|(n, _)| *n == r.compared) else {
                    continue;
                };
                let found = got.iter().find(|m| m.video_id == i as u64);
                let (q, c) = found.map_or((0.0, 0.0), |m| {
                    (
                        m.percent.query_match_percent,
                        m.percent.compared_match_percent,
                    )
                });
                assert_eq!(
                    (format!("{q:.3}"), format!("{c:.3}")),
                    (r.q.clone(), r.c.clone()),
                    "index: {kind} {query_name} vs {}",
                    r.compared
                );
                assert_eq!(found.is_some_and(|m| m.is_match), r.pytx);
            }
        }
    }
}
