//! The verification snippets in docs/webhooks.md, run for real against headers this crate
//! signs: Python with `python3`, TypeScript with `node` on a copy stripped of its type
//! annotations (node 20 cannot run TypeScript; the snippet uses no TypeScript beyond
//! annotations, so the stripped copy is the same program).
//!
//! A missing interpreter skips the test with a message, except under `CI=true`, where it fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use safeguard_webhook::signature::sign_all;
use safeguard_webhook::{now_ms, sign, Secret};

fn snippets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snippets")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The docs must show the tested files verbatim, so what readers copy is what runs here.
fn assert_in_docs(snippet: &str) {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/webhooks.md");
    let docs = read(&docs);
    assert!(
        docs.contains(snippet),
        "docs/webhooks.md does not contain the tested snippet verbatim:\n{snippet}"
    );
}

/// Whether `program` runs; if not, panics under CI and otherwise says why the test is skipped.
fn available(program: &str) -> bool {
    let ok = Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{program} is required under CI"
        );
        eprintln!("SKIPPED: {program} not found; the snippet was not run");
    }
    ok
}

/// One case: a secret, a header, a body, and whether the snippet must accept it.
struct Case {
    name: &'static str,
    secret: &'static str,
    header: String,
    body: Vec<u8>,
    accept: bool,
}

fn cases() -> Vec<Case> {
    let secret = "whsec_snippet";
    let body =
        br#"{"id":"evt_0","type":"case.opened","created_at":1,"data":{"n":"\u00e9"}}"#.to_vec();
    // Clear of the 300 s edges: the interpreters start seconds later on a loaded machine; the
    // exact edges are checked against `verify` with a fixed clock in the unit tests.
    let t = now_ms() / 1000;
    let rotated = sign_all(
        &[Secret::new("whsec_new"), Secret::new("whsec_old")],
        t,
        &body,
    );
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    vec![
        Case {
            name: "valid",
            secret,
            header: sign(secret, t, &body),
            body: body.clone(),
            accept: true,
        },
        Case {
            name: "tampered body",
            secret,
            header: sign(secret, t, &body),
            body: tampered,
            accept: false,
        },
        Case {
            name: "wrong secret",
            secret: "whsec_other",
            header: sign(secret, t, &body),
            body: body.clone(),
            accept: false,
        },
        Case {
            name: "stale",
            secret,
            header: sign(secret, t - 400, &body),
            body: body.clone(),
            accept: false,
        },
        Case {
            name: "future",
            secret,
            header: sign(secret, t + 400, &body),
            body: body.clone(),
            accept: false,
        },
        Case {
            name: "within tolerance",
            secret,
            header: sign(secret, t - 200, &body),
            body: body.clone(),
            accept: true,
        },
        Case {
            name: "rotated, old secret",
            secret: "whsec_old",
            header: rotated.clone(),
            body: body.clone(),
            accept: true,
        },
        Case {
            name: "rotated, new secret",
            secret: "whsec_new",
            header: rotated,
            body: body.clone(),
            accept: true,
        },
        Case {
            name: "malformed",
            secret,
            header: "v1=abc".into(),
            body: body.clone(),
            accept: false,
        },
    ]
}

/// Runs `command` once per case with the body on stdin; exit 0 must mean "accepted".
fn run_cases(mut command: impl FnMut(&Case) -> Command) {
    for case in cases() {
        let mut child = command(&case)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&case.body).unwrap();
        let out = child.wait_with_output().unwrap();
        let code = out.status.code();
        assert!(
            code == Some(0) || code == Some(1),
            "{}: crashed: {}",
            case.name,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(code == Some(0), case.accept, "{}", case.name);
    }
}

#[test]
fn python_snippet_verifies() {
    let dir = snippets_dir();
    assert_in_docs(&read(&dir.join("verify.py")));
    if !available("python3") {
        return;
    }
    run_cases(|case| {
        let mut c = Command::new("python3");
        c.arg(dir.join("verify_cli.py"))
            .arg(case.secret)
            .arg(&case.header);
        c
    });
}

/// Removes the TypeScript annotations the snippet uses: `: string`, `: Buffer`, `: number`,
/// `: boolean`, `: string[]`, `: number | undefined`. Anything else would be left in and make
/// node fail, which fails the test.
fn strip_types(ts: &str) -> String {
    const TYPES: &[&str] = &[
        "number | undefined",
        "string[]",
        "string",
        "Buffer",
        "number",
        "boolean",
    ];
    let mut out = ts.to_owned();
    for ty in TYPES {
        for end in [",", ")", " =", ";", " {"] {
            out = out.replace(&format!(": {ty}{end}"), end);
        }
    }
    out
}

#[test]
fn typescript_snippet_verifies() {
    let dir = snippets_dir();
    let ts = read(&dir.join("verify.ts"));
    assert_in_docs(&ts);
    let js = strip_types(&ts);
    for annotation in [": string", ": number", ": Buffer", ": boolean"] {
        assert!(!js.contains(annotation), "left in: {annotation}");
    }
    if !available("node") {
        return;
    }
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("webhook-ts-snippet");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("verify.mjs"), js).unwrap();
    std::fs::copy(dir.join("verify_cli.mjs"), work.join("verify_cli.mjs")).unwrap();
    run_cases(|case| {
        let mut c = Command::new("node");
        c.arg(work.join("verify_cli.mjs"))
            .arg(case.secret)
            .arg(&case.header);
        c
    });
}
