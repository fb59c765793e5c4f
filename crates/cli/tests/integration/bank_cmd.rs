//! `safeguard bank import|export|diff` through the binary: reports, round trips, a column
//! mapping file, and a malformed list (exit status 2, the line named, the bank unchanged).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_safeguard");

/// A fresh temporary folder, removed at the end of the test.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("safeguard-bank-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn data(&self) -> PathBuf {
        self.0.join("data")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bank(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("bank")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "status {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn md5(i: u32) -> String {
    format!("{i:032x}")
}

#[test]
fn import_reimport_export_diff() {
    let s = Scratch::new("roundtrip");
    let list: String = (0..20).map(|i| format!("{}\n", md5(i))).collect();
    let f = s.file("list.txt", &format!("# benign\n{list}"));
    let f = f.to_str().unwrap();
    let data = s.data();
    let r = json(&bank(
        &data,
        &[
            "import", "--bank", "LIST", "--create", "--format", "plain", f,
        ],
    ));
    assert_eq!(
        (r["added"].as_u64(), r["source"].as_str()),
        (Some(20), Some("file:list.txt"))
    );
    let r = json(&bank(
        &data,
        &["import", "--bank", "LIST", "--format", "plain", f],
    ));
    assert_eq!(
        (r["added"].as_u64(), r["refreshed"].as_u64()),
        (Some(0), Some(20))
    );

    let out = bank(&data, &["export", "--bank", "LIST", "--format", "csv"]);
    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.starts_with("signal_type,value,classification,source_id,source,"));
    assert_eq!(csv.lines().count(), 21);
    // Into a file: the same bytes, owner-only (a hash list), written whole under a temporary
    // name and renamed, so nothing else is left in the folder and an earlier file is replaced.
    let dest = s.0.join("out").join("list.csv");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::write(&dest, "an earlier export\n").unwrap();
    let d = dest.to_str().unwrap();
    let out = bank(
        &data,
        &["export", "--bank", "LIST", "--format", "csv", "--output", d],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), csv);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let names: Vec<_> = std::fs::read_dir(dest.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("list.csv")]);
    let back = s.file("back.csv", &csv);
    let r = json(&bank(
        &data,
        &[
            "diff",
            "--bank",
            "LIST",
            "--format",
            "csv",
            "--header",
            back.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        (
            r["common"].as_u64(),
            r["only_in_file"].as_u64(),
            r["only_in_bank"].as_u64()
        ),
        (Some(20), Some(0), Some(0))
    );

    let other = s.file("other.txt", &format!("{}\n{}\n", md5(0), md5(99)));
    let out = bank(
        &data,
        &[
            "diff",
            "--bank",
            "LIST",
            "--format",
            "plain",
            "--show",
            other.to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(shown.contains(&format!("+md5 {}", md5(99))), "{shown}");
    assert_eq!(shown.lines().filter(|l| l.starts_with('-')).count(), 19);
}

#[test]
fn mapping_file_and_malformed_lists() {
    let s = Scratch::new("mapping");
    let data = s.data();
    let mapping = s.file(
        "m.toml",
        "delimiter = \";\"\nheader = true\nhash_column = 3\nclassification_column = \"grade\"\n\
         source_id_column = 1\ntype = \"md5\"\n",
    );
    let list = s.file(
        "licensed.csv",
        &format!("id;grade;hash\n7;A;{}\n8;B;{}\n", md5(1), md5(2)),
    );
    let r = json(&bank(
        &data,
        &[
            "import",
            "--bank",
            "GRADED",
            "--create",
            "--format",
            "csv",
            "--mapping",
            mapping.to_str().unwrap(),
            "--source",
            "file:licensed",
            list.to_str().unwrap(),
        ],
    ));
    assert_eq!(r["added"].as_u64(), Some(2));
    let out = bank(&data, &["export", "--bank", "GRADED", "--format", "hma"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("file:licensed,md5,{},A,", md5(1))),
        "{text}"
    );

    let bad = s.file("bad.txt", &format!("{}\nxyz\n", md5(5)));
    let out = bank(
        &data,
        &[
            "import",
            "--bank",
            "GRADED",
            "--format",
            "plain",
            "--type",
            "md5",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nothing was imported") && err.contains("line 2: invalid md5 value"),
        "{err}"
    );
    let out = bank(
        &data,
        &[
            "export", "--bank", "GRADED", "--format", "plain", "--only", "md5",
        ],
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().count(),
        2,
        "bank unchanged"
    );
    let out = bank(&data, &["export", "--bank", "NOPE", "--format", "plain"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A plain URL list (the form hotlines distribute theirs in) imported with `--type url`:
/// entries canonicalised on the way in, a malformed one refused with its line, nothing
/// written, and the stored entries exported in their canonical form.
#[test]
fn url_lists_import_with_type_url() {
    let s = Scratch::new("urls");
    let data = s.data();
    let bad = s.file(
        "bad.txt",
        "http://pages.example.com/a.html\nmailto:someone@example.com\n",
    );
    // `import --bank URLS --create` of a list of type url.
    let import = |list: &Path| {
        bank(
            &data,
            &[
                "import",
                "--bank",
                "URLS",
                "--create",
                "--format",
                "plain",
                "--type",
                "url",
                list.to_str().unwrap(),
            ],
        )
    };
    let out = import(&bad);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2"), "{err}");
    // All or nothing: the bank made for the refused list is gone, and so is one made for a
    // list that cannot be opened (which is opened before any bank is made).
    let gone = |what: &str| {
        let out = bank(&data, &["export", "--bank", "URLS", "--format", "plain"]);
        assert!(!out.status.success(), "{what}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not found"), "{what}: {err}");
    };
    gone("refused list");
    let missing = s.0.join("missing.txt");
    let out = import(&missing);
    assert!(!out.status.success(), "{out:?}");
    gone("missing list");

    let list = s.file(
        "urls.txt",
        "# benign test entries\nHTTP://Pages.Example.COM/a/../a.html\nfolders.example.org/shared/\nwhole.example.net\n",
    );
    let r = json(&import(&list));
    assert_eq!(r["added"].as_u64(), Some(3), "{r}");
    let out = bank(&data, &["export", "--bank", "URLS", "--format", "plain"]);
    assert!(out.status.success(), "{out:?}");
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(String::from)
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "url folders.example.org/shared/",
            "url pages.example.com/a.html",
            "url whole.example.net/"
        ]
    );
}
