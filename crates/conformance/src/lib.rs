//! Locates the conformance vectors and reads their CSV files.
//!
//! The full sets live outside the repository (`../shared/conformance`, or
//! `$SAFEGUARD_CONFORMANCE`); the repository carries a small subset under
//! `testdata/conformance` (made by `scripts/make-conformance-subset.py`) so that a plain clone's
//! tests still mean something. When `CI=true`, a missing full set is a failure, not a fallback.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Which conformance set the tests run against.
#[derive(Debug, Clone)]
pub struct Conformance {
    /// The folder holding `pdq/` (and later `vpdq/`).
    pub root: PathBuf,
    /// Whether this is the full set (false: the repository's subset).
    pub full: bool,
}

fn workspace_root() -> PathBuf {
    // crates/conformance -> workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Finds the conformance set, following the rules in the module docs.
///
/// # Panics
/// When `$SAFEGUARD_CONFORMANCE` names a folder that does not exist, or when `CI=true` and the
/// full set is missing: both mean the tests would silently test less than they should.
pub fn locate() -> Conformance {
    if let Some(dir) = std::env::var_os("SAFEGUARD_CONFORMANCE") {
        let root = PathBuf::from(dir);
        assert!(
            root.join("pdq").is_dir(),
            "SAFEGUARD_CONFORMANCE={} has no pdq/ folder",
            root.display()
        );
        return Conformance { root, full: true };
    }
    let shared = workspace_root().join("../shared/conformance");
    if shared.join("pdq").is_dir() {
        return Conformance {
            root: shared,
            full: true,
        };
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        !ci,
        "CI=true but the full conformance set is missing: expected ../shared/conformance \
         beside the checkout or $SAFEGUARD_CONFORMANCE"
    );
    let subset = workspace_root().join("testdata/conformance");
    eprintln!(
        "note: full conformance set not found; using the repository subset at {}",
        subset.display()
    );
    Conformance {
        root: subset,
        full: false,
    }
}

/// One CSV file as header-keyed rows.
#[derive(Debug)]
pub struct Table {
    /// Rows in file order, each mapping column name to value.
    pub rows: Vec<HashMap<String, String>>,
}

impl Table {
    /// Reads a CSV file with a header row.
    ///
    /// # Panics
    /// On a missing or malformed file: conformance data that cannot be read is a test failure.
    pub fn read(path: &Path) -> Table {
        let mut rdr = csv::Reader::from_path(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let headers = rdr.headers().expect("CSV header").clone();
        let rows = rdr
            .records()
            .map(|r| {
                let r = r.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                headers
                    .iter()
                    .zip(r.iter())
                    .map(|(h, v)| (h.to_string(), v.to_string()))
                    .collect()
            })
            .collect();
        Table { rows }
    }

    /// Rows keyed by their `path` column.
    pub fn by_path(&self) -> HashMap<String, HashMap<String, String>> {
        self.rows
            .iter()
            .map(|r| (r["path"].clone(), r.clone()))
            .collect()
    }
}

/// Decodes a file the way the `safeguard hash` command does (default limits, exact path).
///
/// # Panics
/// When the file cannot be read or decoded: every conformance file is a valid image.
pub fn decode(path: &Path) -> safeguard_media::RgbImage {
    let limits = safeguard_media::Limits::default();
    let bytes = safeguard_media::read_file(path, &limits)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    safeguard_media::decode(&bytes, &limits)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .image
}
