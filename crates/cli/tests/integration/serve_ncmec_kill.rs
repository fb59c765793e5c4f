//! Filing to NCMEC with `safeguard serve` killed (SIGKILL) at every step of the CyberTipline
//! protocol, then started again: the filing resumes by itself at start and ends in exactly one
//! finished report per case, with both of the case's files, and the case reported.
//!
//! The CyberTipline is the ncmec crate's local test server on a real socket, in this process.
//! For each of its four endpoints (`/submit`, `/upload`, `/fileinfo`, `/finish`) the server
//! is killed twice, on two cases: once while NCMEC holds the request before doing anything
//! (`Fault::Delay`), and once after NCMEC did what was asked but before the answer left
//! (`Fault::HoldAfter`, the "answer lost" case). The media are two of the repository's benign
//! sample photos.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::serve_process::{self, free_addr, Server};

use safeguard_ncmec::testserver::{self as cybertip, Fault, ReportState};
use serde_json::{json, Value};

const ADMIN: &str = "kill-test-admin-key-0123456789abcdef012345";
const SQUARE: &str = "photos/images/pdq/data/bridge-mods/square-512x512.jpg";
const OTHER: &str = "photos/images/pdq/data/reg-test-input/labelme-subset/q0122.jpg";
/// Long enough that a held request never completes while the test runs (the runtime holding
/// it is dropped at the end).
const HOLD: Duration = Duration::from_secs(600);

fn image(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/conformance/pdq")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// One HTTP/1.1 request; the status and the body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    serve_process::http(addr, method, path, Some(key), content_type, body)
}

fn call(addr: SocketAddr, method: &str, path: &str, key: &str, body: Option<Value>) -> Value {
    let text = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, answer) = http(addr, method, path, key, "application/json", text.as_bytes());
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
    serde_json::from_str(&answer).unwrap_or(Value::Null)
}

/// A multipart upload: `fields` as text parts, then `bytes` as the file part `file_field`.
fn upload(
    addr: SocketAddr,
    path: &str,
    file_field: &str,
    bytes: &[u8],
    fields: &[(&str, &str)],
) -> Value {
    let boundary = "sgkilltestboundary4411";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; \
             filename=\"upload.jpg\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let (status, answer) = http(
        addr,
        "POST",
        path,
        ADMIN,
        &format!("multipart/form-data; boundary={boundary}"),
        &body,
    );
    assert_eq!(status, 200, "POST {path}: {answer}");
    serde_json::from_str(&answer).unwrap()
}

/// Serves on `addr` (a restarted process listens where it did: the same host and address
/// are the same owner of the filings' leases, so it takes them back at once).
fn serve(data: &Path, config: &Path, addr: SocketAddr) -> Server {
    Server::start(addr, |c| {
        c.arg("--data-dir")
            .arg(data)
            .arg("--config")
            .arg(config)
            .env("SAFEGUARD_ADMIN_KEY", ADMIN);
    })
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A case of two benign photos from `account`, confirmed and approved by a second key.
fn approved_case(s: &Server, account: &str, approver: &str, images: &[Vec<u8>]) -> i64 {
    let mut case = 0;
    for (i, img) in images.iter().enumerate() {
        let meta = json!({
            "id": format!("{account}-{i}"), "kind": "image", "account": account,
            "account_age": "adult", "created_at": 1_764_000_000, "ip": "192.0.2.7",
        })
        .to_string();
        let v = upload(s.addr, "/v1/content", "media", img, &[("json", &meta)]);
        assert_eq!(v["verdict"], "block", "{v}");
        case = v["case_id"].as_i64().unwrap();
    }
    for (to, decision) in [("in_review", None), ("decided", Some("confirmed: A1"))] {
        call(
            s.addr,
            "POST",
            &format!("/v1/cases/{case}/transition"),
            ADMIN,
            Some(json!({"to": to, "decision": decision})),
        );
    }
    call(
        s.addr,
        "POST",
        &format!("/v1/cases/{case}/approve"),
        approver,
        None,
    );
    case
}

#[test]
fn a_server_killed_at_any_filing_step_resumes_at_start_and_files_each_case_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tip = rt.block_on(cybertip::TestServer::start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("data");
    let config = dir.path().join("safeguard.toml");
    std::fs::write(
        &config,
        format!(
            "[reporting.ncmec]\nenabled = true\nbase_url = \"{}\"\n\
             reporter_email = \"reports@example.com\"\nreporter_first_name = \"Test\"\n\
             reporter_last_name = \"Reporter\"\nplatform = \"Example Share\"\n\
             legal_url = \"https://example.com/legal\"\nmax_attempts = 2\n\
             initial_backoff_ms = 10\n",
            tip.base_url()
        ),
    )
    .unwrap();
    // The account's credentials, as an operator stores them, before the first start.
    let mut child = Command::new(env!("CARGO_BIN_EXE_safeguard"))
        .args([
            "report",
            "ncmec-credentials",
            "--username",
            cybertip::USERNAME,
        ])
        .arg("--data-dir")
        .arg(&data)
        .env_remove("SAFEGUARD_MASTER_KEY")
        .env_remove("SAFEGUARD_STORE")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{}", cybertip::PASSWORD).unwrap();
    assert!(child.wait().unwrap().success());

    let images = [image(SQUARE), image(OTHER)];
    let addr = free_addr();
    let mut server = serve(&data, &config, addr);
    call(
        server.addr,
        "POST",
        "/v1/banks",
        ADMIN,
        Some(json!({"name": "HOTLINE", "kind": "csam", "classification": "A1"})),
    );
    for img in &images {
        let h = upload(server.addr, "/h/hash", "photo", img, &[]);
        call(
            server.addr,
            "POST",
            "/c/bank/HOTLINE/signal",
            ADMIN,
            Some(json!({"pdq": h["pdq"]})),
        );
    }
    let approver = call(
        server.addr,
        "POST",
        "/v1/keys",
        ADMIN,
        Some(json!({"name": "approver", "scopes": ["approve"]})),
    )["key"]
        .as_str()
        .unwrap()
        .to_string();

    let points = [
        ("/submit", Fault::Delay(HOLD)),
        ("/submit", Fault::HoldAfter(HOLD)),
        ("/upload", Fault::Delay(HOLD)),
        ("/upload", Fault::HoldAfter(HOLD)),
        ("/fileinfo", Fault::Delay(HOLD)),
        ("/fileinfo", Fault::HoldAfter(HOLD)),
        ("/finish", Fault::Delay(HOLD)),
        ("/finish", Fault::HoldAfter(HOLD)),
    ];
    let mut filed = Vec::new();
    for (i, (endpoint, fault)) in points.iter().enumerate() {
        let point = format!("{endpoint} {fault:?}");
        let case = approved_case(&server, &format!("acct-kill-{i}"), &approver, &images);
        let before = tip.arrived(endpoint);
        let logged = |tip: &cybertip::TestServer| {
            tip.log().iter().filter(|l| l.endpoint == *endpoint).count()
        };
        let before_logged = logged(&tip);
        tip.inject(endpoint, *fault, 1);
        let filing = call(
            server.addr,
            "POST",
            &format!("/v1/cases/{case}/reports/ncmec"),
            ADMIN,
            None,
        )["filing_id"]
            .as_str()
            .unwrap()
            .to_string();
        // The request is at NCMEC (held before or after it acted): kill the server now.
        wait_until(
            &format!("{point} to arrive"),
            Duration::from_secs(60),
            || tip.arrived(endpoint) > before,
        );
        if matches!(fault, Fault::HoldAfter(_)) {
            wait_until(
                &format!("{point} to be done"),
                Duration::from_secs(10),
                || logged(&tip) > before_logged,
            );
        }
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        drop(server);

        // Started again on the same data directory: the filing resumes by itself.
        server = serve(&data, &config, addr);
        let mut last = Value::Null;
        wait_until(
            &format!("{point}: the resumed filing"),
            Duration::from_secs(90),
            || {
                last = call(
                    server.addr,
                    "GET",
                    &format!("/v1/reports/{filing}"),
                    ADMIN,
                    None,
                );
                last["phase"] == "finished" && last["transcript_stored"] == true
            },
        );
        let report_id = last["report_id"].as_str().unwrap().to_string();
        let finished = tip.finished();
        let ours: Vec<_> = finished
            .iter()
            .filter(|r| r.report_id == report_id)
            .collect();
        assert_eq!(ours.len(), 1, "{point}");
        assert_eq!(
            ours[0].files.len(),
            2,
            "{point}: both files attached: {:?}",
            ours[0].files
        );
        assert!(
            ours[0].files.iter().all(|f| f.details_xml.is_some()),
            "{point}: every file has its details"
        );
        filed.push(report_id);
        // One finished report per case so far: none filed twice.
        assert_eq!(finished.len(), i + 1, "{point}: {finished:?}");
        let c = call(
            server.addr,
            "GET",
            &format!("/v1/cases/{case}"),
            ADMIN,
            None,
        );
        assert_eq!(c["state"], "reported", "{point}");
        // A report given up after an ambiguous upload is retracted, never left to be finished.
        let abandoned: Vec<String> = last["abandoned"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["report_id"].as_str().map(str::to_owned))
            .collect();
        for r in tip.reports() {
            if abandoned.contains(&r.report_id) {
                assert_eq!(r.state, ReportState::Retracted, "{point}: {r:?}");
            }
        }
        println!(
            "killed at {point}: filed as report {} ({} abandoned)",
            filed[i],
            abandoned.len()
        );
    }
    let mut unique = filed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), points.len());
    drop(server);
    drop(rt);
}
