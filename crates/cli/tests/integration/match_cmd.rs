//! `safeguard match`: output format and order, default ids, stdin, and malformed input
//! (exit status 2, the line reported, nothing on standard output).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use safeguard_pdq::PdqHash;

const BIN: &str = env!("CARGO_BIN_EXE_safeguard");

/// A fresh temporary folder, removed at the end of the test.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("safeguard-match-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .arg("match")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // The command may exit (on a bad bank line, say) before reading its input.
    match input.write_all(stdin.unwrap_or("").as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.unwrap(),
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// `base` with bits `0..k` flipped.
fn near(base: &PdqHash, k: usize) -> PdqHash {
    let mut w = base.words();
    for b in 0..k {
        w[3 - b / 64] ^= 1 << (b % 64);
    }
    PdqHash::from_words(w)
}

fn hex(h: &PdqHash) -> String {
    h.to_hex()
}

fn sample() -> (PdqHash, String) {
    let a = PdqHash::from_hex("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22")
        .unwrap();
    // Line 0: a (id 0). Line 1: 3 bits away (id 1). Line 2: blank. Line 3: 40 bits away
    // (id 3). Line 4: a under explicit id 77. Line 5: 31 bits away under id 5 (boundary).
    // Line 6: a, uppercase hex, id 2 (ties at distance 0 order by id).
    let bank = format!(
        "{}\n{}\n\n{}\n{},77\n{}, 5\n{},2\n",
        hex(&a),
        hex(&near(&a, 3)),
        hex(&near(&a, 40)),
        hex(&a),
        hex(&near(&a, 31)),
        hex(&a).to_uppercase()
    );
    (a, bank)
}

#[test]
fn matches_are_sorted_by_query_line_then_distance_then_id() {
    let s = Scratch::new("sorted");
    let (a, bank) = sample();
    let bank = s.file("bank.txt", &bank);
    // Query line 0: 1 bit from a. Line 1: blank. Line 2: far from everything.
    // Line 3: a itself.
    let mut far = a;
    for w in far.0.iter_mut() {
        *w = !*w;
    }
    let queries = s.file(
        "queries.txt",
        &format!("{}\r\n\n{}\n{}\n", hex(&near(&a, 1)), hex(&far), hex(&a)),
    );
    let out = run(
        &["--bank", bank.to_str().unwrap(), queries.to_str().unwrap()],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        "0,0,1\n0,2,1\n0,77,1\n0,1,2\n0,5,30\n3,0,0\n3,2,0\n3,77,0\n3,1,3\n3,5,31\n"
    );
}

#[test]
fn radius_and_stdin() {
    let s = Scratch::new("radius");
    let (a, bank) = sample();
    let bank = s.file("bank.txt", &bank);
    let out = run(
        &["--bank", bank.to_str().unwrap(), "--radius", "0"],
        Some(&format!("{}\n", hex(&a))),
    );
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "0,0,0\n0,2,0\n0,77,0\n"
    );
    let out = run(
        &["--bank", bank.to_str().unwrap(), "--radius", "64", "-"],
        Some(&format!("{}\n", hex(&near(&a, 40)))),
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("0,3,0\n"), "{text}");
    assert_eq!(text.lines().count(), 6);
    // Above the maximum radius: a usage error.
    let out = run(
        &["--bank", bank.to_str().unwrap(), "--radius", "65"],
        Some(""),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn malformed_bank_line_exits_2_with_its_line_number_and_no_output() {
    let s = Scratch::new("badbank");
    let (a, bank) = sample();
    for (bad, why) in [
        ("xyz".to_string(), "64 hex digits"),
        (format!("{},abc", hex(&a)), "id"),
        (format!("{},1,2", hex(&a)), "more fields"),
        (format!("{}0", hex(&a)), "64 hex digits"),
    ] {
        let text = format!("{bank}{bad}\n{}\n", hex(&a));
        let path = s.file("bank.txt", &text);
        let out = run(
            &["--bank", path.to_str().unwrap()],
            Some(&format!("{}\n", hex(&a))),
        );
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(out.stdout.is_empty(), "partial output for {bad}");
        let err = String::from_utf8(out.stderr).unwrap();
        // The bad line is the 8th line of the file (1-based in messages).
        assert!(err.contains("bank.txt:8:"), "{err}");
        assert!(err.contains(why), "{err}");
    }
}

#[test]
fn malformed_query_line_exits_2_with_no_partial_output() {
    let s = Scratch::new("badquery");
    let (a, bank) = sample();
    let bank = s.file("bank.txt", &bank);
    // The first two queries match; the third is malformed: nothing may be printed.
    let queries = s.file(
        "q.txt",
        &format!("{}\n{}\n{}g\n", hex(&a), hex(&a), &hex(&a)[..63]),
    );
    let out = run(
        &["--bank", bank.to_str().unwrap(), queries.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("q.txt:3:"), "{err}");
    // The same from standard input.
    let out = run(
        &["--bank", bank.to_str().unwrap()],
        Some("\n\nnot a hash\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("<stdin>:3:"));
}

#[test]
fn missing_bank_file_is_an_error() {
    let out = run(&["--bank", "/nonexistent/bank.txt"], Some(""));
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("/nonexistent/bank.txt"));
}
