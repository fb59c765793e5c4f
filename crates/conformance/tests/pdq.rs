//! PDQ conformance against `conformance/pdq` (see its REFERENCE.md): decode + hash must give
//! the values that hash banks hold.

use std::collections::{BTreeMap, HashMap};

use safeguard_conformance::{decode, locate, Table};
use safeguard_pdq::{Dihedral, Hasher, PdqHash};

const DIHEDRAL_COLUMNS: [&str; 7] = [
    "pdq_rot90",
    "pdq_rot180",
    "pdq_rot270",
    "pdq_flipx",
    "pdq_flipy",
    "pdq_flipplus1",
    "pdq_flipminus1",
];

fn hex(s: &str) -> PdqHash {
    PdqHash::from_hex(s).unwrap_or_else(|e| panic!("bad expected hash {s}: {e}"))
}

#[test]
fn lossless_every_file_bit_exact_with_all_dihedrals() {
    let c = locate();
    let dir = c.root.join("pdq/lossless");
    let expected = Table::read(&dir.join("expected.csv"));
    assert!(!expected.rows.is_empty());
    if c.full {
        assert_eq!(
            expected.rows.len(),
            172,
            "the full lossless set has 172 files"
        );
    }
    let mut hasher = Hasher::new();
    let mut failures = Vec::new();
    for row in &expected.rows {
        let img = decode(&dir.join(&row["path"]));
        let (w, h) = (img.width as usize, img.height as usize);
        let single = hasher.hash_rgb(&img.data, w, h).expect("valid buffer");
        let (out, dih) = hasher
            .hash_rgb_dihedral(&img.data, w, h)
            .expect("valid buffer");
        let want = hex(&row["pdq"]);
        let want_q: u8 = row["quality"].parse().expect("quality");
        if single.hash != want || single.quality != want_q || out.hash != want {
            failures.push(format!(
                "{}: pdq distance {} (dihedral path {}), quality {} vs {}",
                row["path"],
                single.hash.distance(&want),
                out.hash.distance(&want),
                single.quality,
                want_q
            ));
        }
        for (k, col) in DIHEDRAL_COLUMNS.iter().enumerate() {
            let d = Dihedral::ALL[k + 1];
            let got = dih.get(d);
            let want = hex(&row[*col]);
            if got != want {
                failures.push(format!(
                    "{}: {} distance {}",
                    row["path"],
                    d.name(),
                    got.distance(&want)
                ));
            }
        }
    }
    eprintln!(
        "lossless: {} files, {} mismatches (hash, quality and 8 dihedrals each)",
        expected.rows.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

#[test]
fn photos_match_within_tolerance_and_cpp512_mode() {
    let c = locate();
    let dir = c.root.join("pdq/photos");
    let expected = Table::read(&dir.join("expected.csv"));
    let cpp = Table::read(&dir.join("expected_cpp512.csv")).by_path();
    let mut hasher = Hasher::new();
    let (mut exact, mut cpp_within_2, mut cpp_n) = (0usize, 0usize, 0usize);
    let mut over_tolerance = Vec::new();
    let mut distances = BTreeMap::new();
    for row in &expected.rows {
        let img = decode(&dir.join(&row["path"]));
        let (w, h) = (img.width as usize, img.height as usize);
        let got = hasher.hash_rgb(&img.data, w, h).expect("valid buffer");
        let want = hex(&row["pdq"]);
        let want_q: u8 = row["quality"].parse().expect("quality");
        let d = got.hash.distance(&want);
        *distances.entry(d).or_insert(0) += 1;
        if d == 0 && got.quality == want_q {
            exact += 1;
        }
        if want_q >= 50 && d > 6 {
            over_tolerance.push(format!("{}: {d} bits", row["path"]));
        }
        if let Some(c) = cpp.get(&row["path"]) {
            cpp_n += 1;
            let got = hasher
                .hash_rgb_cpp512(&img.data, w, h)
                .expect("valid buffer");
            let dc = got.hash.distance(&hex(&c["pdq"]));
            if dc <= 2 {
                cpp_within_2 += 1;
            } else {
                eprintln!("cpp512 {}: {dc} bits", row["path"]);
            }
        }
    }
    let n = expected.rows.len();
    eprintln!(
        "photos: {exact}/{n} exactly equal (hash and quality); distance histogram {distances:?}; \
         cpp512: {cpp_within_2}/{cpp_n} within 2 bits"
    );
    assert!(
        exact * 10 >= n * 9,
        "only {exact}/{n} photos hash exactly as expected"
    );
    assert!(
        over_tolerance.is_empty(),
        "quality >= 50 files over 6 bits:\n{}",
        over_tolerance.join("\n")
    );
    assert!(
        cpp_within_2 * 10 >= cpp_n * 9,
        "cpp512 mode: only {cpp_within_2}/{cpp_n} within 2 bits"
    );
}

/// Recall at distance 31 per transform, ours against the reference's on the very same files
/// (the reference figures come from `expected.csv`, so they apply to the subset too).
#[test]
fn variants_recall_not_below_reference() {
    let c = locate();
    let dir = c.root.join("pdq/variants");
    let expected = Table::read(&dir.join("expected.csv")).by_path();
    let groups = Table::read(&dir.join("groups.csv"));
    let mut hasher = Hasher::new();

    // Our hash and 8 dihedrals of every file, and the reference's from expected.csv.
    let mut ours: HashMap<String, [PdqHash; 8]> = HashMap::new();
    for row in &groups.rows {
        let img = decode(&dir.join(&row["path"]));
        let (_, dih) = hasher
            .hash_rgb_dihedral(&img.data, img.width as usize, img.height as usize)
            .expect("valid buffer");
        ours.insert(row["path"].clone(), dih.0);
    }
    let reference = |path: &str| -> [PdqHash; 8] {
        let r = &expected[path];
        let mut h = [hex(&r["pdq"]); 8];
        for (k, col) in DIHEDRAL_COLUMNS.iter().enumerate() {
            h[k + 1] = hex(&r[*col]);
        }
        h
    };
    let base_of: HashMap<&str, &str> = groups
        .rows
        .iter()
        .filter(|r| r["transform"] == "base")
        .map(|r| (r["group"].as_str(), r["path"].as_str()))
        .collect();

    // transform -> (n, ours plain, ours any-dihedral, ref plain, ref any-dihedral)
    let mut table: BTreeMap<String, [usize; 5]> = BTreeMap::new();
    let mut cross_ours = 0;
    let mut cross_ref = 0;
    for row in &groups.rows {
        let base = base_of[row["group"].as_str()];
        let (o_v, o_b) = (ours[&row["path"]], ours[base]);
        let (r_v, r_b) = (reference(&row["path"]), reference(base));
        let plain = |v: &[PdqHash; 8], b: &[PdqHash; 8]| v[0].distance(&b[0]) <= 31;
        let any = |v: &[PdqHash; 8], b: &[PdqHash; 8]| b.iter().any(|bh| v[0].distance(bh) <= 31);
        let e = table.entry(row["transform"].clone()).or_default();
        e[0] += 1;
        e[1] += plain(&o_v, &o_b) as usize;
        e[2] += any(&o_v, &o_b) as usize;
        e[3] += plain(&r_v, &r_b) as usize;
        e[4] += any(&r_v, &r_b) as usize;
        for (g, other) in &base_of {
            if *g != row["group"] {
                cross_ours += (ours[&row["path"]][0].distance(&ours[*other][0]) <= 31) as usize;
                cross_ref +=
                    (reference(&row["path"])[0].distance(&reference(other)[0]) <= 31) as usize;
            }
        }
    }
    eprintln!("variants: recall at distance <= 31 (ours / reference, same files)");
    eprintln!("| transform | n | recall | reference | any dihedral | reference |");
    let mut worse = Vec::new();
    for (t, [n, op, oa, rp, ra]) in &table {
        let f = |k: &usize| *k as f64 / *n as f64;
        eprintln!(
            "| {t} | {n} | {:.3} | {:.3} | {:.3} | {:.3} |",
            f(op),
            f(rp),
            f(oa),
            f(ra)
        );
        if op < rp || oa < ra {
            worse.push(t.clone());
        }
    }
    eprintln!("cross-group matches at <= 31: ours {cross_ours}, reference {cross_ref}");
    assert!(worse.is_empty(), "recall below the reference for {worse:?}");
    assert!(
        cross_ours <= cross_ref,
        "more false matches than the reference"
    );

    if c.full {
        // The reference figures published in stats.csv must agree with expected.csv, so a
        // silently changed corpus cannot make the comparison above meaningless.
        for row in &Table::read(&dir.join("stats.csv")).rows {
            let [n, _, _, rp, ra] = table[&row["transform"]];
            let published: f64 = row["recall_le31"].parse().expect("recall");
            let published_any: f64 = row["recall_le31_any_dihedral_of_base"]
                .parse()
                .expect("recall");
            assert!((published - rp as f64 / n as f64).abs() < 1e-3, "{row:?}");
            assert!(
                (published_any - ra as f64 / n as f64).abs() < 1e-3,
                "{row:?}"
            );
        }
    }
}
