//! Filing approved cases to NCMEC through the API, against the ncmec crate's local
//! CyberTipline on a real socket: images and text-only reports, the preview equal to what is
//! sent, the two-person rule, a restart mid-filing, and credentials kept out of every answer
//! and log line. Every file is one of the repository's benign sample photos; names are fake.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};

use common::*;
use safeguard_ncmec::client::md5_hex;
use safeguard_ncmec::testserver::{self as cybertip, Fault};
use safeguard_server::config::{Config, NcmecConfig};
use safeguard_store::{SqliteOptions, SqliteStore, Store};

const SQUARE: &str = "photos/images/pdq/data/bridge-mods/square-512x512.jpg";
const OTHER: &str = "photos/images/pdq/data/reg-test-input/labelme-subset/q0122.jpg";
/// A password only the credentials test uses, to search every output for.
const SECRET_PASSWORD: &str = "pw-Zebra-7781-not-a-real-secret";

// The CyberTipline's element sequences (docs/reporting.md), written here independently of the
// model, as in crates/ncmec/tests.
const REPORT_ORDER: &[&str] = &[
    "batchedReport",
    "incidentSummary",
    "internetDetails",
    "lawEnforcement",
    "reporter",
    "personOrUserReported",
    "intendedRecipient",
    "victim",
    "additionalInfo",
];
const INCIDENT_SUMMARY_ORDER: &[&str] = &[
    "incidentType",
    "platform",
    "escalateToHighPriority",
    "reportAnnotations",
    "incidentDateTime",
    "incidentDateTimeDescription",
];

/// Every log line of this test binary, for the credentials test.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        // Another test of this binary may have set it first; the buffer is the same.
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn config(dir: &Path, cybertip: &cybertip::TestServer) -> Config {
    let mut c = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    c.reporting.ncmec = NcmecConfig {
        enabled: true,
        base_url: Some(cybertip.base_url()),
        reporter_email: Some("reports@example.com".into()),
        reporter_first_name: Some("Test".into()),
        reporter_last_name: Some("Reporter".into()),
        platform: Some("Example Share".into()),
        legal_url: Some("https://example.com/legal".into()),
        // Two quick attempts per call, so a fault test runs in milliseconds.
        max_attempts: 2,
        initial_backoff_ms: 10,
        ..NcmecConfig::default()
    };
    c
}

/// A server over a SQLite store in `dir` (reopened from the file, as after a restart).
async fn start(dir: &Path, config: Config) -> TestServer {
    logs();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&SqliteOptions::new(dir.join("store.db"))).unwrap());
    server_on(store, config).await
}

/// Stores the CyberTipline account the way `safeguard report ncmec-credentials` does.
fn store_credentials(s: &TestServer, dir: &Path, username: &str, password: &str) {
    let key = safeguard_server::reports::master_key(None, None, dir).unwrap();
    safeguard_server::reports::store_ncmec_credentials(s.store.as_ref(), &key, username, password)
        .unwrap();
}

async fn bank(s: &TestServer, pdqs: &[&str]) {
    let r = s
        .admin(
            "POST",
            "/v1/banks",
            Some(json!({"name": "HOTLINE", "kind": "csam", "classification": "A1"})),
        )
        .await;
    // A second case on one server finds the bank there.
    assert!(
        r.status == StatusCode::CREATED || r.code() == "bank_exists",
        "{}",
        r.text()
    );
    for pdq in pdqs {
        let r = s
            .admin("POST", "/c/bank/HOTLINE/signal", Some(json!({"pdq": pdq})))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
}

/// A case of `account` from signals-only submissions (no media: a text-only report).
async fn signals_case(s: &TestServer, account: &str) -> i64 {
    bank(s, &[BRIDGE_PDQ]).await;
    let body = json!({
        "id": format!("{account}-item"), "kind": "image", "account": account,
        "account_age": "adult", "surface": "private", "signals": {"pdq": BRIDGE_PDQ},
        "created_at": 1_700_000_000, "ip": "198.51.100.7",
    });
    let r = s.admin("POST", "/v1/content", Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["verdict"], "block");
    r.json()["case_id"].as_i64().unwrap()
}

/// Moves a case to decided `confirmed: A1` (the admin key) and approves it with a second key.
async fn confirm_and_approve(s: &TestServer, case: i64) {
    s.confirm_case(case).await;
    s.approve_case(case).await;
}

async fn file(s: &TestServer, case: i64) -> String {
    let r = s
        .admin("POST", &format!("/v1/cases/{case}/reports/ncmec"), None)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    r.json()["filing_id"].as_str().unwrap().to_string()
}

/// A server with the CyberTipline account stored, and a signals-only case of `account`
/// confirmed and approved, ready to file. The directory lives as long as the caller keeps it.
async fn approved_case(
    account: &str,
) -> (tempfile::TempDir, cybertip::TestServer, TestServer, i64) {
    let dir = tempfile::tempdir().unwrap();
    let tip = cybertip::TestServer::start().await.unwrap();
    let s = start(dir.path(), config(dir.path(), &tip)).await;
    store_credentials(&s, dir.path(), cybertip::USERNAME, cybertip::PASSWORD);
    let case = signals_case(&s, account).await;
    confirm_and_approve(&s, case).await;
    (dir, tip, s, case)
}

/// Polls the filing until `done` says so (at most 30 s).
async fn wait_for(s: &TestServer, filing: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..300 {
        let r = s.admin("GET", &format!("/v1/reports/{filing}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let v = r.json();
        if done(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = s.admin("GET", &format!("/v1/reports/{filing}"), None).await;
    panic!("filing {filing} did not get there: {}", r.text());
}

/// The process dies while the report is on its way (the request cut off with no outcome
/// recorded): the next start goes on with the send by itself, under the same key and with
/// the same report, so the case gets the NCA's one reference and becomes `reported` without
/// anyone sending it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_cut_off_by_a_crash_is_resumed_at_the_next_start() {
    use safeguard_nca::test_server::{self, Step};
    let dir = tempfile::tempdir().unwrap();
    let nca = test_server::start(
        vec![Step::Slow(Duration::from_millis(3000)), Step::Accept],
        NCA_TOKEN,
    )
    .await;
    let case;
    {
        let s;
        (s, case) = approved_nca_case(dir.path(), &nca, 10, "acct-nca-crash").await;
        let uri = format!("/v1/cases/{case}/reports/nca/send");
        let sending = nca_send(&s, case, reporter());
        let reached = async {
            while nca.requests().is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        // The request future is dropped once the NCA holds the report: the handler stops
        // there, as a killed process would, and records no outcome.
        tokio::select! {
            r = sending => panic!("the send finished before the cut: {}", r.text()),
            _ = reached => {}
        }
        // The cut-off send gave its lease up as its future was dropped: another process may
        // take it at once (and gives it back here, so the restart below is not kept waiting).
        let lease = format!("nca-send:{case}");
        let other = "other-host/10.0.0.2:8080";
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let now = safeguard_engine::now_ms();
            if s.store
                .take_lease(&lease, other, now + 60_000, now)
                .unwrap()
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the dropped send kept its lease"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        s.store.give_up_lease(&lease, other).unwrap();
        let steps: Vec<String> = nca_lines(&s, case)
            .iter()
            .map(|l| l["step"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(steps, ["sending"]);
        let shown = s.admin("GET", &uri, None).await.json();
        assert_eq!(shown["state"], "pending", "{shown}");
        assert_eq!(s.store.case(case).unwrap().unwrap().state, "decided");
    }
    // The NCA answers the first request after the client is gone.
    tokio::time::sleep(Duration::from_millis(3200)).await;

    // A restart: the store reopened from its file, and no request to send. With 1 s
    // attempts a send takes at most about 2 s, so the start waits until the `sending` line is
    // 7 s old (another process might still be sending it) and then resumes it.
    let s = start(dir.path(), nca_config(dir.path(), &nca, 1)).await;
    assert_eq!(
        nca.requests().len(),
        1,
        "resumed while it might still be running"
    );
    wait_reported(&s, case).await;
    let seen = nca.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].idempotency_key, seen[0].idempotency_key);
    assert_eq!(
        seen[1].body, seen[0].body,
        "the resumed report is the one first sent"
    );
    let lines = nca_lines(&s, case);
    let steps: Vec<&str> = lines.iter().map(|l| l["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["sending", "sent"]);
    assert_eq!(lines[1]["reference"], "NCA-TEST-1");
    let shown = s
        .admin("GET", &format!("/v1/cases/{case}/reports/nca/send"), None)
        .await
        .json();
    assert_eq!(
        (shown["state"].clone(), shown["reference"].clone()),
        (json!("sent"), json!("NCA-TEST-1"))
    );
    assert_eq!(
        events(&s)
            .iter()
            .filter(|e| e["type"] == "report.filed" && e["data"]["destination"] == "nca")
            .count(),
        1
    );
    assert!(audit_actions(&s)
        .iter()
        .any(|(a, o, _)| a == "report_filed" && *o == format!("case:{case}")));
}

/// Waits (at most 20 s) until the start's pass over unfinished NCA sends is over.
async fn resume_pass_done(s: &TestServer) {
    let mut done = s.state.0.nca_resume_done.subscribe();
    tokio::time::timeout(Duration::from_secs(20), done.wait_for(|d| *d))
        .await
        .expect("the start's pass over NCA sends did not end")
        .unwrap();
}

/// A send that failed (the API unreachable) and whose report was then exported for the
/// portal is not resumed by a restart: the portal may be where it went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_left_for_the_portal_is_not_resumed_at_the_next_start() {
    use safeguard_nca::test_server::{self, Step};
    let dir = tempfile::tempdir().unwrap();
    let nca = test_server::start(
        vec![
            Step::answer(503, r#"{"message":"down"}"#),
            Step::answer(503, r#"{"message":"down"}"#),
            Step::Accept,
        ],
        NCA_TOKEN,
    )
    .await;
    let case;
    {
        let s;
        (s, case) = approved_nca_case(dir.path(), &nca, 1, "acct-nca-portal").await;
        let r = nca_send(&s, case, reporter()).await;
        assert_eq!(r.code(), "nca_unavailable", "{}", r.text());
        let mut body = reporter();
        body["recipient"] = json!(safeguard_nca::age::x25519::Identity::generate()
            .to_public()
            .to_string());
        let r = s
            .admin(
                "POST",
                &format!("/v1/cases/{case}/reports/nca/bundle"),
                Some(body),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let last = s.store.case_history(case).unwrap().pop().unwrap();
        assert_eq!(last.action, "nca_bundle");
    }
    // Past the time the send could still be running (2 s of attempts plus 5 s), so that
    // without the bundle the start would resume it at once, within its first pass.
    tokio::time::sleep(Duration::from_millis(7500)).await;
    let s = start(dir.path(), nca_config(dir.path(), &nca, 1)).await;
    resume_pass_done(&s).await;
    assert_eq!(
        nca.requests().len(),
        2,
        "sent again after the portal export"
    );
    assert_eq!(s.store.case(case).unwrap().unwrap().state, "decided");
}

/// Waits (at most 20 s) until a start's resume has moved `case` to `reported` and written
/// the audit entry that follows the move.
async fn wait_reported(s: &TestServer, case: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let object = format!("case:{case}");
    while s.store.case(case).unwrap().unwrap().state != "reported"
        || !audit_actions(s)
            .iter()
            .any(|(a, o, _)| a == "report_filed" && *o == object)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the send was not resumed at start: {:?}",
            nca_lines(s, case)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A token the NCA's API refuses (403), and a success answer without a reference, each get
/// their own stable code and message (the NCA's own words for the refusal), and the send is
/// recorded as failed; neither is retried within the send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_and_an_answer_without_a_reference_have_their_own_codes() {
    use safeguard_nca::test_server::{self, Step};
    let dir = tempfile::tempdir().unwrap();
    let nca = test_server::start(
        vec![
            Step::answer(403, r#"{"message":"token lacks the submit permission"}"#),
            Step::answer(201, r#"{"received":true}"#),
        ],
        NCA_TOKEN,
    )
    .await;
    let (s, first) = approved_nca_case(dir.path(), &nca, 10, "acct-nca-token").await;
    let second = signals_case(&s, "acct-nca-noref").await;
    confirm_and_approve(&s, second).await;
    for (case, status, code, words) in [
        (
            first,
            StatusCode::BAD_GATEWAY,
            "nca_auth_failed",
            "token lacks the submit permission",
        ),
        (
            second,
            StatusCode::BAD_GATEWAY,
            "nca_bad_response",
            "same idempotency key",
        ),
    ] {
        let r = nca_send(&s, case, reporter()).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{}",
            r.text()
        );
        assert!(r.text().contains(words), "{}", r.text());
        assert!(!r.text().contains(NCA_TOKEN));
        let shown = s
            .admin("GET", &format!("/v1/cases/{case}/reports/nca/send"), None)
            .await
            .json();
        assert_eq!(
            (shown["state"].as_str(), shown["error"]["code"].as_str()),
            (Some("failed"), Some(code)),
            "{shown}"
        );
        assert_eq!(s.store.case(case).unwrap().unwrap().state, "decided");
    }
    // Neither was retried within its send (a reference-less success may be resumed at the
    // next start, since the NCA may hold the report; a refused token is left for a person).
    assert_eq!(nca.requests().len(), 2);
}

/// A send the NCA refused is not resumed at a start: a refused report needs a person, who
/// resumes it with `{}` once the cause is fixed (the same report under the same key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_send_is_left_for_a_person_at_the_next_start() {
    use safeguard_nca::test_server::{self, Step};
    let dir = tempfile::tempdir().unwrap();
    let nca = test_server::start(
        vec![
            Step::answer(422, r#"{"message":"missing field"}"#),
            Step::Accept,
        ],
        NCA_TOKEN,
    )
    .await;
    let case;
    {
        let s;
        (s, case) = approved_nca_case(dir.path(), &nca, 10, "acct-nca-refused").await;
        let r = nca_send(&s, case, reporter()).await;
        assert_eq!(r.code(), "nca_rejected", "{}", r.text());
    }
    let s = start(dir.path(), nca_config(dir.path(), &nca, 10)).await;
    resume_pass_done(&s).await;
    assert_eq!(nca.requests().len(), 1, "a refused send was sent again");
    assert_eq!(s.store.case(case).unwrap().unwrap().state, "decided");
    let shown = s
        .admin("GET", &format!("/v1/cases/{case}/reports/nca/send"), None)
        .await
        .json();
    assert_eq!(shown["state"], "failed", "{shown}");
    assert_eq!(shown["error"]["code"], "nca_rejected");

    let r = nca_send(&s, case, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (
            v["reference"].clone(),
            v["resumed"].clone(),
            v["sent"].clone()
        ),
        (json!("NCA-TEST-1"), json!(true), json!(true))
    );
    let seen = nca.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].idempotency_key, seen[0].idempotency_key);
    assert_eq!(seen[1].body, seen[0].body);
    let steps: Vec<String> = nca_lines(&s, case)
        .iter()
        .map(|l| l["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(steps, ["sending", "failed", "sent"]);
}

fn filed(v: &Value) -> bool {
    v["phase"] == "finished" && v["transcript_stored"] == true
}

fn events(s: &TestServer) -> Vec<Value> {
    s.store
        .events_since(0, 10_000)
        .unwrap()
        .into_iter()
        .map(|e| serde_json::from_str(&e.body).unwrap())
        .collect()
}

fn audit_actions(s: &TestServer) -> Vec<(String, String, String)> {
    s.store
        .audit_entries(0, 10_000)
        .unwrap()
        .into_iter()
        .map(|r| (r.entry.action, r.entry.object, r.entry.detail))
        .collect()
}

/// The `/submit` request the filing's journal recorded: the XML sent.
fn submitted_xml(s: &TestServer, filing: &str) -> String {
    let row = s.store.filing(filing).unwrap().unwrap();
    let state: Value = serde_json::from_str(&row.state).unwrap();
    state["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["endpoint"] == "/submit")
        .expect("a /submit in the transcript")["request"]
        .as_str()
        .unwrap()
        .to_string()
}

fn assert_order(node: roxmltree::Node<'_, '_>, order: &[&str]) {
    let mut at = 0;
    for child in node.children().filter(|n| n.is_element()) {
        let name = child.tag_name().name();
        let i = order
            .iter()
            .position(|o| *o == name)
            .unwrap_or_else(|| panic!("unknown <{name}> in <{}>", node.tag_name().name()));
        assert!(
            i >= at,
            "<{name}> out of order in <{}>",
            node.tag_name().name()
        );
        at = i;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_case_with_two_images_is_filed_once_with_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let tip = cybertip::TestServer::start().await.unwrap();
    let s = start(dir.path(), config(dir.path(), &tip)).await;
    store_credentials(&s, dir.path(), cybertip::USERNAME, cybertip::PASSWORD);
    let images = [sample_image(SQUARE), sample_image(OTHER)];
    let mut pdqs = Vec::new();
    for img in &images {
        let h = s.upload("/h/hash", "photo", img, &[]).await.json();
        pdqs.push(h["pdq"].as_str().unwrap().to_string());
    }
    bank(&s, &[&pdqs[0], &pdqs[1]]).await;
    let mut case = None;
    for (i, img) in images.iter().enumerate() {
        let meta = json!({
            "id": format!("photo-{i}"), "kind": "image", "account": "acct-test-1",
            "surface": "public", "created_at": 1_700_000_000 + i as i64, "ip": "192.0.2.10",
        });
        let r = s
            .upload("/v1/content", "media", img, &[("json", &meta.to_string())])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["verdict"], "block", "{}", r.text());
        let id = r.json()["case_id"].as_i64().unwrap();
        assert_eq!(*case.get_or_insert(id), id, "one case for the account");
    }
    let case = case.unwrap();
    let evidence = s.store.case_evidence(case).unwrap();
    assert_eq!(evidence.len(), 2);
    // A person reads the first photo through the API: that file, and only that one, is
    // reported as viewed by the ESP.
    let seen = evidence
        .iter()
        .find(|e| e.md5 == md5_hex(&images[0]))
        .unwrap();
    let r = s
        .admin("GET", &format!("/v1/evidence/{}", seen.object_id), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    confirm_and_approve(&s, case).await;

    let filing = file(&s, case).await;
    assert_eq!(filing, format!("ncmec-case-{case}-1"));
    let v = wait_for(&s, &filing, filed).await;
    // A second POST returns the same filing and files nothing more.
    let r = s
        .admin("POST", &format!("/v1/cases/{case}/reports/ncmec"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["filing_id"], json!(filing));

    let finished = tip.finished();
    assert_eq!(finished.len(), 1, "{:?}", tip.reports());
    assert_eq!(tip.reports().len(), 1);
    let report = &finished[0];
    assert_eq!(v["report_id"], json!(report.report_id));
    assert_eq!(v["last_error"], Value::Null);
    let mut got: Vec<&str> = report.files.iter().map(|f| f.md5.as_str()).collect();
    let mut want: Vec<String> = images.iter().map(|i| md5_hex(i)).collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(v["file_ids"].as_array().unwrap().len(), 2);
    for f in &report.files {
        assert!(f.name.ends_with(".jpg"), "{}", f.name);
        let d = f.details_xml.as_deref().unwrap();
        assert!(
            d.contains("<industryClassification>A1</industryClassification>"),
            "{d}"
        );
        let viewed = f.md5 == seen.md5;
        assert!(
            d.contains(&format!("<fileViewedByEsp>{viewed}</fileViewedByEsp>")),
            "{d}"
        );
        assert!(
            d.contains("<publiclyAvailable>true</publiclyAvailable>"),
            "{d}"
        );
        assert!(d.contains("originalFileHash") && d.contains(&f.md5), "{d}");
    }
    assert!(report
        .xml
        .contains("<espIdentifier>acct-test-1</espIdentifier>"));
    assert!(report.xml.contains("<ipAddress>192.0.2.10</ipAddress>"));
    assert!(report
        .xml
        .contains("<incidentDateTime>2023-11-14T22:13:20Z</incidentDateTime>"));

    let c = s
        .admin("GET", &format!("/v1/cases/{case}"), None)
        .await
        .json();
    assert_eq!(c["state"], "reported", "{c}");
    let evs = events(&s);
    let ev = evs
        .iter()
        .find(|e| e["type"] == "report.filed")
        .expect("a report.filed event");
    assert_eq!(ev["data"]["filing_id"], json!(filing));
    assert_eq!(ev["data"]["report_id"], json!(report.report_id));
    assert_eq!(ev["data"]["files"], 2);
    let audit = audit_actions(&s);
    let line = audit
        .iter()
        .find(|(a, o, _)| a == "report_filed" && *o == filing)
        .expect("a report_filed audit entry");
    // No hash of the material in the audit detail.
    for w in &want {
        assert!(!line.2.contains(w.as_str()), "{}", line.2);
    }
    // The evidence reads for the report are logged as the system's exports.
    for e in s.store.case_evidence(case).unwrap() {
        let log = s.store.access_log(&e.object_id).unwrap();
        assert!(log
            .iter()
            .any(|(_, who, what)| who == "system:ncmec" && what == "export"));
    }
    // The transcript is sealed in the vault: what is on disk is not the XML.
    let row = s.store.filing(&filing).unwrap().unwrap();
    let sealed: Value = serde_json::from_str(row.transcript.as_deref().unwrap()).unwrap();
    assert_eq!(sealed["object_id"], json!(format!("transcript:{filing}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signals_only_case_files_a_text_only_report() {
    let (_dir, tip, s, case) = approved_case("acct-text-2").await;
    // A case an admin referred to the NCA is not filed to NCMEC too; referred back (a reason
    // with a colon in it), it is.
    let referral = format!("/v1/cases/{case}/referral");
    let r = s
        .admin(
            "POST",
            &referral,
            Some(json!({"to": "nca", "reason": "UK user: the NCA's case"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["reason"], "UK user: the NCA's case");
    let r = s
        .admin("POST", &format!("/v1/cases/{case}/reports/ncmec"), None)
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "referral_excluded"),
        "{}",
        r.text()
    );
    assert!(s.store.case_filings(case).unwrap().is_empty());
    let r = s
        .admin(
            "POST",
            &referral,
            Some(json!({"to": "both", "reason": "counsel: both are owed"})),
        )
        .await;
    assert_eq!(r.json()["to"], "both");
    assert_eq!(
        s.admin(
            "POST",
            "/v1/cases/999999/referral",
            Some(json!({"to": "nca", "reason": "x"}))
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    // The reason is 1 to 500 bytes of text (after trimming), without control characters.
    let long = "é".repeat(250);
    for (to, reason, ok) in [
        ("both", "x".repeat(501), false),
        ("both", format!("{long}x"), false),
        ("both", "  ".to_string(), false),
        ("both", "line\nbreak".to_string(), false),
        ("elsewhere", "a reason".to_string(), false),
        ("both", long.clone(), true),
    ] {
        let r = s
            .admin("POST", &referral, Some(json!({"to": to, "reason": reason})))
            .await;
        if ok {
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            assert_eq!(r.json()["reason"], json!(long));
        } else {
            assert_eq!(
                (r.status, r.code().as_str()),
                (StatusCode::BAD_REQUEST, "invalid_request"),
                "{to} {reason:?}: {}",
                r.text()
            );
        }
    }
    let filing = file(&s, case).await;
    let v = wait_for(&s, &filing, filed).await;
    assert_eq!(v["file_ids"], json!([]));
    let finished = tip.finished();
    assert_eq!(finished.len(), 1);
    assert!(finished[0].files.is_empty());
    assert!(finished[0]
        .xml
        .contains("<espIdentifier>acct-text-2</espIdentifier>"));
    let c = s
        .admin("GET", &format!("/v1/cases/{case}"), None)
        .await
        .json();
    assert_eq!(c["state"], "reported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_before_approval_is_the_xml_later_submitted() {
    let dir = tempfile::tempdir().unwrap();
    let tip = cybertip::TestServer::start().await.unwrap();
    let s = start(dir.path(), config(dir.path(), &tip)).await;
    store_credentials(&s, dir.path(), cybertip::USERNAME, cybertip::PASSWORD);
    let case = signals_case(&s, "acct-preview-3").await;
    let r = s
        .admin(
            "GET",
            &format!("/v1/cases/{case}/reports/ncmec/preview"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/xml"));
    let preview = r.text();
    let doc = roxmltree::Document::parse(&preview).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "report");
    assert_order(root, REPORT_ORDER);
    let summary = root
        .children()
        .find(|n| n.has_tag_name("incidentSummary"))
        .unwrap();
    assert_order(summary, INCIDENT_SUMMARY_ORDER);
    assert!(preview.contains(
        "<incidentType>Child Pornography (possession, manufacture, and distribution)</incidentType>"
    ));
    assert!(preview.contains("<platform>Example Share</platform>"));
    assert!(preview.contains("reports@example.com"));

    confirm_and_approve(&s, case).await;
    let filing = file(&s, case).await;
    wait_for(&s, &filing, filed).await;
    assert_eq!(submitted_xml(&s, &filing), preview);
    assert_eq!(tip.finished()[0].xml, preview);
    // The preview afterwards is still the same document.
    let again = s
        .admin(
            "GET",
            &format!("/v1/cases/{case}/reports/ncmec/preview"),
            None,
        )
        .await
        .text();
    assert_eq!(again, preview);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_filed_without_a_second_persons_approval() {
    let dir = tempfile::tempdir().unwrap();
    let tip = cybertip::TestServer::start().await.unwrap();
    let s = start(dir.path(), config(dir.path(), &tip)).await;
    let case = signals_case(&s, "acct-unapproved-4").await;
    let post = || async {
        s.admin("POST", &format!("/v1/cases/{case}/reports/ncmec"), None)
            .await
    };
    // Open, then decided but not approved: refused.
    let r = post().await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "approval_required")
    );
    s.confirm_case(case).await;
    let r = post().await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "approval_required")
    );
    // The person who decided cannot approve (refused by /approve), so the case stays
    // unapproved and the route still refuses.
    let r = s
        .admin("POST", &format!("/v1/cases/{case}/approve"), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = post().await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "approval_required")
    );
    // Approved, but no credentials stored: not configured.
    s.approve_case(case).await;
    let r = post().await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "reporting_not_configured")
    );
    assert!(tip.reports().is_empty());
    assert!(s.store.case_filings(case).unwrap().is_empty());
    // An unknown filing.
    let r = s.admin("GET", "/v1/reports/ncmec-case-99-1", None).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "filing_not_found")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filing_stopped_at_finish_resumes_after_a_restart_and_files_once() {
    let dir = tempfile::tempdir().unwrap();
    let tip = cybertip::TestServer::start().await.unwrap();
    let cfg = config(dir.path(), &tip);
    let s = start(dir.path(), cfg.clone()).await;
    store_credentials(&s, dir.path(), cybertip::USERNAME, cybertip::PASSWORD);
    let case = signals_case(&s, "acct-restart-5").await;
    confirm_and_approve(&s, case).await;
    // Every attempt of the first run's /finish fails (two attempts per call).
    tip.inject("/finish", Fault::Http500, 2);
    let filing = file(&s, case).await;
    let v = wait_for(&s, &filing, |v| {
        v["last_error"].is_string() && v["in_progress"] == false
    })
    .await;
    assert_eq!(v["phase"], "finishing", "{v}");
    assert!(v["last_error"]
        .as_str()
        .unwrap()
        .starts_with("ncmec_unavailable"));
    assert!(tip.finished().is_empty());
    assert!(events(&s)
        .iter()
        .any(|e| e["type"] == "report.failed" && e["data"]["code"] == "ncmec_unavailable"));
    assert!(audit_actions(&s)
        .iter()
        .any(|(a, o, d)| a == "report_failed" && *o == filing && d == "ncmec_unavailable"));
    let c = s
        .admin("GET", &format!("/v1/cases/{case}"), None)
        .await
        .json();
    assert_eq!(c["state"], "decided");
    drop(s);

    // A new process over the same data directory and database resumes it at start.
    let s = start(dir.path(), cfg).await;
    let v = wait_for(&s, &filing, filed).await;
    assert_eq!(v["last_error"], Value::Null);
    assert_eq!(tip.finished().len(), 1);
    assert_eq!(
        tip.reports().len(),
        1,
        "the same report was finished, none abandoned"
    );
    assert_eq!(v["report_id"], json!(tip.finished()[0].report_id));
    let c = s
        .admin("GET", &format!("/v1/cases/{case}"), None)
        .await
        .json();
    assert_eq!(c["state"], "reported");
    assert_eq!(
        events(&s)
            .iter()
            .filter(|e| e["type"] == "report.filed")
            .count(),
        1
    );
}

/// Two processes on one database start at once and both resume the same unfinished filing:
/// the filing's lease in the store lets one of them drive it, so NCMEC gets one report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_resuming_one_filing_file_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let tip = cybertip::TestServer::start().await.unwrap();
    let at = |port: u16| {
        let mut c = config(dir.path(), &tip);
        c.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        c
    };
    let s = start(dir.path(), at(7101)).await;
    store_credentials(&s, dir.path(), cybertip::USERNAME, cybertip::PASSWORD);
    let case = signals_case(&s, "acct-two-procs-8").await;
    confirm_and_approve(&s, case).await;
    // The first run stops before NCMEC opened a report (both attempts of /submit fail).
    tip.inject("/submit", Fault::Http500, 2);
    let filing = file(&s, case).await;
    wait_for(&s, &filing, |v| {
        v["last_error"].is_string() && v["in_progress"] == false
    })
    .await;
    assert!(tip.reports().is_empty());
    drop(s);

    // Each submit is held a moment, so the two resumes overlap.
    tip.inject("/submit", Fault::Delay(Duration::from_millis(300)), 2);
    let (a, b) = tokio::join!(start(dir.path(), at(7102)), start(dir.path(), at(7103)));
    let v = wait_for(&a, &filing, filed).await;
    // Give a second driver, had there been one, time to get its own report finished.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(tip.finished().len(), 1, "{:?}", tip.reports());
    assert_eq!(
        tip.reports().len(),
        1,
        "one report opened: {:?}",
        tip.reports()
    );
    assert_eq!(v["report_id"], json!(tip.finished()[0].report_id));
    assert_eq!(
        events(&b)
            .iter()
            .filter(|e| e["type"] == "report.filed")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_appear_in_answers_or_logs() {
    let dir = tempfile::tempdir().unwrap();
    let tip = cybertip::TestServer::start_with("esp-account-6", SECRET_PASSWORD)
        .await
        .unwrap();
    let s = start(dir.path(), config(dir.path(), &tip)).await;
    store_credentials(&s, dir.path(), "esp-account-6", SECRET_PASSWORD);
    let case = signals_case(&s, "acct-creds-6").await;
    confirm_and_approve(&s, case).await;
    let filing = file(&s, case).await;
    wait_for(&s, &filing, filed).await;
    assert_eq!(tip.finished().len(), 1);

    let basic = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("esp-account-6:{SECRET_PASSWORD}"))
    };
    let mut seen = Vec::new();
    for uri in [
        format!("/v1/reports/{filing}"),
        format!("/v1/cases/{case}"),
        "/v1/cases".to_string(),
        format!("/v1/cases/{case}/reports/ncmec/preview"),
    ] {
        seen.push(s.admin("GET", &uri, None).await.text());
    }
    seen.push(
        s.admin("POST", &format!("/v1/cases/{case}/reports/ncmec"), None)
            .await
            .text(),
    );
    let row = s.store.filing(&filing).unwrap().unwrap();
    seen.push(format!("{row:?}"));
    seen.push(format!("{:?}", events(&s)));
    seen.push(format!("{:?}", audit_actions(&s)));
    // The sealed value in the store is not the password either.
    let sealed = s
        .store
        .secret(safeguard_server::reports::CREDENTIALS_SECRET)
        .unwrap()
        .unwrap();
    seen.push(String::from_utf8_lossy(&sealed).into_owned());
    seen.push(String::from_utf8_lossy(&logs().lock().unwrap()).into_owned());
    for text in &seen {
        assert!(
            !text.contains(SECRET_PASSWORD),
            "the password leaked: {text}"
        );
        assert!(
            !text.contains(&basic),
            "the Basic credentials leaked: {text}"
        );
    }
    // The log did record the filing, so it was captured at all.
    assert!(String::from_utf8_lossy(&logs().lock().unwrap()).contains(&filing));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_filing_is_retracted_and_a_finished_one_is_not() {
    let (_dir, tip, s, case) = approved_case("acct-retract-7").await;
    tip.inject("/finish", Fault::Http500, 2);
    let filing = file(&s, case).await;
    wait_for(&s, &filing, |v| {
        v["last_error"].is_string() && v["in_progress"] == false
    })
    .await;
    let r = s
        .admin("POST", &format!("/v1/reports/{filing}/retract"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["phase"], "retracted");
    assert!(tip.finished().is_empty());
    assert!(tip
        .reports()
        .iter()
        .all(|r| r.state == cybertip::ReportState::Retracted));
    assert!(audit_actions(&s)
        .iter()
        .any(|(a, o, _)| a == "report_retracted" && *o == filing));
    // A new request files the case again under a new filing id.
    let again = file(&s, case).await;
    assert_eq!(again, format!("ncmec-case-{case}-2"));
    wait_for(&s, &again, filed).await;
    assert_eq!(tip.finished().len(), 1);
    let r = s
        .admin("POST", &format!("/v1/reports/{again}/retract"), None)
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "report_already_finished")
    );
}

/// A retraction asked while a filing run holds the filing is refused (409
/// `filing_in_progress`) and changes nothing: the run goes on and files the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filing_that_is_running_is_not_retracted() {
    let (_dir, tip, s, case) = approved_case("acct-busy-5").await;
    // The report's opening call is answered after 2 s: the run holds the filing meanwhile.
    tip.inject("/submit", Fault::Delay(Duration::from_secs(2)), 1);
    let filing = file(&s, case).await;
    wait_for(&s, &filing, |v| v["in_progress"] == true).await;
    let r = s
        .admin("POST", &format!("/v1/reports/{filing}/retract"), None)
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "filing_in_progress"),
        "{}",
        r.text()
    );
    let v = wait_for(&s, &filing, filed).await;
    assert_ne!(v["phase"], "retracted");
    assert_eq!(tip.finished().len(), 1);
    assert!(!audit_actions(&s)
        .iter()
        .any(|(a, _, _)| a == "report_retracted"));
}

/// A platform `created_at` later than Safeguard's receipt of the item cannot be an upload
/// time (a platform clock running ahead): the report uses the receipt time instead, so the
/// incident time is never in the future, which NCMEC refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_time_after_receipt_is_not_used_as_the_incident_time() {
    let dir = tempfile::tempdir().unwrap();
    let tip = cybertip::TestServer::start().await.unwrap();
    let s = start(dir.path(), config(dir.path(), &tip)).await;
    bank(&s, &[BRIDGE_PDQ]).await;
    let body = json!({
        "id": "ahead-item", "kind": "image", "account": "acct-ahead-2",
        "account_age": "adult", "surface": "private", "signals": {"pdq": BRIDGE_PDQ},
        // 2100-01-01T00:00:00Z
        "created_at": 4_102_444_800i64, "ip": "198.51.100.9",
    });
    let r = s.admin("POST", "/v1/content", Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let case = r.json()["case_id"].as_i64().unwrap();
    let r = s
        .admin(
            "GET",
            &format!("/v1/cases/{case}/reports/ncmec/preview"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let xml = r.text();
    assert!(!xml.contains("2100-"), "{xml}");
    assert!(
        xml.contains("Time the earliest item was submitted for matching"),
        "{xml}"
    );
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let when = doc
        .descendants()
        .find(|n| n.has_tag_name("incidentDateTime"))
        .and_then(|n| n.text())
        .unwrap()
        .to_string();
    let year: i32 = when[..4].parse().unwrap();
    assert!((2026..2100).contains(&year), "{when}");
    // The IP capture event carries the same time.
    let ip_time = doc
        .descendants()
        .find(|n| n.has_tag_name("ipCaptureEvent"))
        .and_then(|e| e.children().find(|n| n.has_tag_name("dateTime")))
        .and_then(|n| n.text())
        .unwrap();
    assert_eq!(ip_time, when);
}

// ------------------------------------------------------------------ the NCA's API

/// A bearer token only the NCA tests use, to search every output for.
const NCA_TOKEN: &str = "nca-token-Otter-4412-not-a-real-secret";

/// `config` with the NCA's API switched on, pointed at `nca` (its CA trusted, nothing else),
/// and the case referred to the NCA by policy.
fn nca_config(dir: &Path, nca: &safeguard_nca::test_server::TestServer, timeout: u64) -> Config {
    let ca = dir.join("nca-ca.pem");
    std::fs::write(&ca, &nca.ca_pem).unwrap();
    let mut c = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    c.reporting.referral = safeguard_server::config::Referral::Nca;
    c.reporting.nca.api = safeguard_server::config::NcaApiConfig {
        enabled: true,
        endpoint: Some(nca.url.to_string()),
        ca_file: Some(ca),
        timeout_secs: timeout,
        max_attempts: 2,
        initial_backoff_ms: 10,
    };
    c
}

/// Stores the token the way `safeguard report nca-token` does.
fn store_nca_token(s: &TestServer, dir: &Path) {
    let key = safeguard_server::reports::master_key(None, None, dir).unwrap();
    safeguard_server::nca_api::store_nca_token(s.store.as_ref(), &key, NCA_TOKEN).unwrap();
}

fn reporter() -> Value {
    json!({
        "authorised_person": {"name": "Test Reporter", "email": "reporter@example.com"},
        "declared_by": "Test Reporter",
        "platform": "Example Share",
    })
}

/// A server over `dir` with the NCA's API on (attempts of `timeout` seconds) and its token
/// stored, and a confirmed, approved case of `account`'s, referred to the NCA.
async fn approved_nca_case(
    dir: &Path,
    nca: &safeguard_nca::test_server::TestServer,
    timeout: u64,
    account: &str,
) -> (TestServer, i64) {
    let s = start(dir, nca_config(dir, nca, timeout)).await;
    store_nca_token(&s, dir);
    let case = signals_case(&s, account).await;
    confirm_and_approve(&s, case).await;
    (s, case)
}

/// `POST /v1/cases/{case}/reports/nca/send` with `body`.
async fn nca_send(s: &TestServer, case: i64, body: Value) -> Resp {
    s.admin(
        "POST",
        &format!("/v1/cases/{case}/reports/nca/send"),
        Some(body),
    )
    .await
}

fn nca_lines(s: &TestServer, case: i64) -> Vec<Value> {
    s.store
        .case_history(case)
        .unwrap()
        .into_iter()
        .filter(|h| h.action == "nca_api")
        .map(|h| serde_json::from_str(h.note.as_deref().unwrap()).unwrap())
        .collect()
}

/// Another process sharing the store holds the send's lease (it is sending the case): a
/// `POST` here is refused with nothing sent or recorded; once that process gives the lease up
/// the send goes through, and this process gives its own lease up when the send ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_another_process_holds_is_left_to_it() {
    use safeguard_nca::test_server::{self, Step};
    let dir = tempfile::tempdir().unwrap();
    let nca = test_server::start(vec![Step::Accept], NCA_TOKEN).await;
    let (s, case) = approved_nca_case(dir.path(), &nca, 10, "acct-nca-lease").await;
    let lease = format!("nca-send:{case}");
    let other = "other-host/10.0.0.2:8080";
    let now = safeguard_engine::now_ms();
    assert!(s
        .store
        .take_lease(&lease, other, now + 60_000, now)
        .unwrap());

    let r = nca_send(&s, case, reporter()).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "send_in_progress"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("another process"), "{}", r.text());
    assert!(nca.requests().is_empty(), "sent under another's lease");
    assert!(nca_lines(&s, case).is_empty());
    assert_eq!(s.store.case(case).unwrap().unwrap().state, "decided");

    s.store.give_up_lease(&lease, other).unwrap();
    let r = nca_send(&s, case, reporter()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["reference"], "NCA-TEST-1");
    assert_eq!(nca.requests().len(), 1);
    // Given up at the end of the send: the other process could take it at once.
    let now = safeguard_engine::now_ms();
    assert!(s
        .store
        .take_lease(&lease, other, now + 60_000, now)
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_is_sent_through_the_nca_api_once_and_its_reference_recorded() {
    use safeguard_nca::test_server::{self, Step};
    let dir = tempfile::tempdir().unwrap();
    // The first attempt meets a 503 and is retried under the same key.
    let nca = test_server::start(
        vec![Step::answer(503, r#"{"message":"busy"}"#), Step::Accept],
        NCA_TOKEN,
    )
    .await;
    let s = start(dir.path(), nca_config(dir.path(), &nca, 10)).await;
    let case = signals_case(&s, "acct-nca-1").await;
    let uri = format!("/v1/cases/{case}/reports/nca/send");

    // Before approval, and before the token is stored: refused, nothing sent.
    let r = s.admin("POST", &uri, Some(reporter())).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "reporting_not_configured"),
        "{}",
        r.text()
    );
    store_nca_token(&s, dir.path());
    let r = s.admin("POST", &uri, Some(reporter())).await;
    assert_eq!(r.code(), "approval_required", "{}", r.text());
    confirm_and_approve(&s, case).await;
    // An incomplete request: a 400, no line on the history, nothing sent.
    for bad in [
        json!({"declared_by": "Test Reporter"}),
        json!({"authorised_person": {"name": "X"}, "declared_by": "X"}),
        json!({"declared_by": "X", "extra": 1}),
    ] {
        let r = s.admin("POST", &uri, Some(bad)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    }
    assert!(nca_lines(&s, case).is_empty());
    assert!(nca.requests().is_empty());
    let shown = s.admin("GET", &uri, None).await.json();
    assert_eq!(
        (shown["state"].clone(), shown["configured"].clone()),
        (json!("none"), json!(true))
    );

    let r = s.admin("POST", &uri, Some(reporter())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["reference"], "NCA-TEST-1");
    assert_eq!(v["state"], "reported");
    assert_eq!(v["sent"], true);
    assert_eq!(v["resumed"], false);

    // What the NCA received: twice (the 503, then the retry), under one key, with the token.
    let seen = nca.requests();
    assert_eq!(seen.len(), 2);
    let key = seen[0].idempotency_key.clone().unwrap();
    assert!(key.starts_with(&format!("case-{case}-")), "{key}");
    assert_eq!(seen[1].idempotency_key.as_deref(), Some(key.as_str()));
    assert_eq!(seen[0].body, seen[1].body);
    assert_eq!(
        seen[1].authorization.as_deref(),
        Some(format!("Bearer {NCA_TOKEN}").as_str())
    );
    let body: Value = serde_json::from_slice(&seen[1].body).unwrap();
    let report = &body["report"];
    assert_eq!(report["provider_reference"], format!("case-{case}"));
    assert_eq!(report["users"][0]["accounts"][0]["id"], "acct-nca-1");
    assert_eq!(report["content"][0]["platform"], "Example Share");
    assert_eq!(report["declaration"]["declared_by"], "Test Reporter");
    assert!(
        report["content"][0]["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["value"] == BRIDGE_PDQ),
        "{report}"
    );

    // On the record: the send and its reference on the history, the case reported, the
    // event and the audit entries.
    let lines = nca_lines(&s, case);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        (lines[0]["step"].clone(), lines[0]["key"].clone()),
        (json!("sending"), json!(key))
    );
    assert_eq!(
        (lines[1]["step"].clone(), lines[1]["reference"].clone()),
        (json!("sent"), json!("NCA-TEST-1"))
    );
    let c = s.store.case(case).unwrap().unwrap();
    assert_eq!(c.state, "reported");
    let last = s.store.case_history(case).unwrap().pop().unwrap();
    assert_eq!(last.note.as_deref(), Some("nca reference NCA-TEST-1 (api)"));
    let filed: Vec<Value> = events(&s)
        .into_iter()
        .filter(|e| e["type"] == "report.filed")
        .collect();
    assert_eq!(filed.len(), 1, "{filed:?}");
    assert_eq!(filed[0]["data"]["destination"], "nca");
    assert_eq!(filed[0]["data"]["reference"], "NCA-TEST-1");
    let audit = audit_actions(&s);
    let object = format!("case:{case}");
    assert!(audit
        .iter()
        .any(|(a, o, d)| a == "vault_export" && *o == object && d == "nca api send"));
    assert!(audit
        .iter()
        .any(|(a, o, _)| a == "report_filed" && *o == object));
    let shown = s.admin("GET", &uri, None).await.json();
    assert_eq!(
        (shown["state"].clone(), shown["reference"].clone()),
        (json!("sent"), json!("NCA-TEST-1"))
    );

    // Sending again sends nothing: the reference stands.
    let r = s.admin("POST", &uri, Some(reporter())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        (r.json()["sent"].clone(), r.json()["reference"].clone()),
        (json!(false), json!("NCA-TEST-1"))
    );
    assert_eq!(nca.requests().len(), 2);
    // Nor can the portal's reference route record another.
    let r = s
        .admin(
            "POST",
            &format!("/v1/cases/{case}/reports/nca/reference"),
            Some(json!({"reference": "NCA-OTHER"})),
        )
        .await;
    assert_eq!(r.code(), "approval_required");

    // The token never shows: not in answers, the store's rows, the events, the audit log or
    // the server's log.
    let mut seen = vec![
        s.admin("GET", &uri, None).await.text(),
        s.admin("GET", &format!("/v1/cases/{case}"), None)
            .await
            .text(),
        format!("{:?}", s.store.case_history(case).unwrap()),
        format!("{:?}", events(&s)),
        format!("{:?}", audit_actions(&s)),
        String::from_utf8_lossy(&logs().lock().unwrap()).into_owned(),
    ];
    let sealed = s
        .store
        .secret(safeguard_server::nca_api::TOKEN_SECRET)
        .unwrap()
        .unwrap();
    seen.push(String::from_utf8_lossy(&sealed).into_owned());
    for text in &seen {
        assert!(!text.contains(NCA_TOKEN), "the token leaked: {text}");
    }
    assert!(
        String::from_utf8_lossy(&logs().lock().unwrap()).contains("sending the report to the NCA")
    );
}

/// The answer is lost (the API takes the report, then answers after the client gave up),
/// the server restarts, and its start resumes the send: the same report, byte for byte,
/// under the same key, so the NCA's reference is the one it gave the first time and no
/// second report is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_whose_answer_was_lost_resumes_after_a_restart_under_the_same_key() {
    use safeguard_nca::test_server::{self, Step};
    let dir = tempfile::tempdir().unwrap();
    let nca = test_server::start(
        vec![
            Step::Slow(Duration::from_millis(1500)),
            Step::Slow(Duration::from_millis(1500)),
            Step::Accept,
        ],
        NCA_TOKEN,
    )
    .await;
    let case;
    {
        // One-second attempts: both time out before the slow answers.
        let s;
        (s, case) = approved_nca_case(dir.path(), &nca, 1, "acct-nca-2").await;
        let r = nca_send(&s, case, reporter()).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "nca_unavailable"),
            "{}",
            r.text()
        );
        let shown = s
            .admin("GET", &format!("/v1/cases/{case}/reports/nca/send"), None)
            .await
            .json();
        assert_eq!(shown["state"], "failed", "{shown}");
        assert_eq!(shown["error"]["code"], "nca_unavailable");
        assert_eq!(s.store.case(case).unwrap().unwrap().state, "decided");
        let failed: Vec<Value> = events(&s)
            .into_iter()
            .filter(|e| e["type"] == "report.failed")
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0]["data"]["destination"], "nca");
        assert!(audit_actions(&s)
            .iter()
            .any(|(a, _, d)| a == "report_failed" && d == "nca_unavailable"));
        // Resuming with another reporter is refused: the report first built is the one
        // resumed.
        let mut other = reporter();
        other["declared_by"] = json!("Somebody Else");
        let r = nca_send(&s, case, other).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::CONFLICT, "send_pending"),
            "{}",
            r.text()
        );
    }
    // The NCA took both attempts (one reference, for the one key) after the client left.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(nca.requests().len(), 2);

    // A restart: the store reopened from its file, and the start resumes the send (once its
    // last line is older than a whole send could take, 2 s here, plus 5 s).
    let s = start(dir.path(), nca_config(dir.path(), &nca, 1)).await;
    wait_reported(&s, case).await;
    let uri = format!("/v1/cases/{case}/reports/nca/send");
    // A later request sends nothing and answers the reference (once the resume has let go of
    // the case: until then it is refused as a send in progress).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let r = loop {
        let r = s.admin("POST", &uri, Some(json!({}))).await;
        if r.code() != "send_in_progress" || std::time::Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (
            v["reference"].clone(),
            v["resumed"].clone(),
            v["sent"].clone(),
            v["state"].clone()
        ),
        (
            json!("NCA-TEST-1"),
            json!(true),
            json!(false),
            json!("reported")
        )
    );
    let seen = nca.requests();
    assert_eq!(seen.len(), 3);
    for r in &seen[1..] {
        assert_eq!(r.idempotency_key, seen[0].idempotency_key);
        assert_eq!(
            r.body, seen[0].body,
            "the resumed report is the one first sent"
        );
    }
    let lines = nca_lines(&s, case);
    let steps: Vec<&str> = lines.iter().map(|l| l["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["sending", "failed", "sent"]);
}

/// A filing's lease runs two minutes (`FILING_LEASE_MS`) (docs/reporting.md): while NCMEC
/// holds the driver's submit, another owner cannot take the lease at any moment before two
/// minutes after the run began; two minutes after the submit arrived it can, and the driver,
/// finding its lease taken when it records the next step, stops without finishing. Once the
/// other owner gives the lease up, a `POST` resumes the filing, and NCMEC gets one finished
/// report. (That each recorded step renews the lease: the next test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filings_lease_holds_two_minutes_and_a_takeover_stops_its_driver() {
    let lease = safeguard_server::reports::FILING_LEASE_MS;
    assert_eq!(lease, 120_000);
    let (_dir, tip, s, case) = approved_case("acct-lease-9").await;
    // Held long enough that the checks below run while it is held, on a slow machine too.
    let hold = Duration::from_secs(10);
    tip.inject("/submit", Fault::HoldAfter(hold), 1);
    let before = safeguard_engine::now_ms();
    let filing = file(&s, case).await;
    // The submit arrives (logged at once, answered `hold` later) only after the run took the
    // lease.
    common::console::eventually(|| !tip.reports().is_empty(), "the submit's arrival").await;
    let after = safeguard_engine::now_ms();
    assert_eq!(tip.reports().len(), 1);
    let other = "elsewhere/127.0.0.1:1";
    for now in [after, before + lease - 1] {
        assert!(
            !s.store
                .lease_filing(&filing, other, now + 60_000, now)
                .unwrap(),
            "taken {} ms after the run began",
            now - before
        );
    }
    assert!(
        s.store
            .lease_filing(&filing, other, after + lease + 60_000, after + lease)
            .unwrap(),
        "not taken two minutes on, {} ms after the submit arrived (of a {hold:?} hold)",
        safeguard_engine::now_ms() - after
    );
    let v = wait_for(&s, &filing, |v| v["in_progress"] == false).await;
    assert_ne!(v["phase"], "finished", "{v}");
    assert!(tip.finished().is_empty(), "finished under another's lease");

    s.store.release_filing(&filing, other).unwrap();
    let r = s
        .admin("POST", &format!("/v1/cases/{case}/reports/ncmec"), None)
        .await;
    assert_eq!(r.json()["filing_id"], json!(filing), "{}", r.text());
    wait_for(&s, &filing, filed).await;
    assert_eq!(tip.finished().len(), 1, "{:?}", tip.reports());
}

/// Every step the filer records renews its process's lease for two minutes from then, and a
/// step recorded after another process took the lease over fails (docs/reporting.md), so a
/// stale process stops: the filing's journal (`StoreJournal`) on its own, over a filing whose
/// first run ended on NCMEC's errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_recorded_step_renews_the_lease_and_fails_once_it_is_taken() {
    use safeguard_ncmec::filer::Journal;
    let lease = safeguard_server::reports::FILING_LEASE_MS;
    let (_dir, tip, s, case) = approved_case("acct-lease-10").await;
    tip.inject("/submit", Fault::Http500, 2);
    let filing = file(&s, case).await;
    wait_for(&s, &filing, |v| {
        v["last_error"].is_string() && v["in_progress"] == false
    })
    .await;
    let here = "here/127.0.0.1:2";
    let journal = safeguard_server::reports::StoreJournal {
        store: s.store.clone(),
        owner: Some(here.into()),
    };
    let state = journal.load(&filing).unwrap().expect("a recorded state");
    let other = "elsewhere/127.0.0.1:1";
    // A lease about to run out, then a step recorded.
    let t0 = safeguard_engine::now_ms();
    assert!(s.store.lease_filing(&filing, here, t0 + 10, t0).unwrap());
    journal.record(&filing, &state).unwrap();
    let t1 = safeguard_engine::now_ms();
    for now in [t0 + 60_000, t0 + lease - 1] {
        assert!(
            !s.store.lease_filing(&filing, other, now + 1, now).unwrap(),
            "the step did not renew the lease ({} ms on)",
            now - t0
        );
    }
    assert!(s
        .store
        .lease_filing(&filing, other, t1 + lease + 60_000, t1 + lease)
        .unwrap());
    let e = journal.record(&filing, &state).unwrap_err();
    assert!(e.to_string().contains("took the filing over"), "{e}");
}
