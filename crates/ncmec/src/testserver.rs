//! A local CyberTipline for tests (feature `test-server`).
//!
//! Real sockets (axum on `127.0.0.1:0`), NCMEC's endpoints and responseCodes as documented in
//! docs/reporting.md, and what a test needs to prove a filer correct:
//! - **Authentication** as NCMEC does it: no credentials → 2000, wrong ones → 3000 (HTTP 401).
//! - **Schema order.** `/submit` and `/fileinfo` are checked against ordered element lists kept
//!   here, written from docs/reporting.md independently of [`crate::model`]: an element out of
//!   order, unknown, or a required one missing answers 4100; XML that does not parse, 4110.
//! - **Expiry.** An unfinished report is deleted 24 h after opening or 1 h after its last
//!   change, by the server's clock, which tests move with [`TestServer::advance`]. The same
//!   offset drives [`TestServer::clock`], so a filer given that clock sees the same time.
//! - **Faults** ([`Fault`]): the next N requests to an endpoint answer HTTP 500 or
//!   responseCode 1000, close the connection without an answer (before or after acting on
//!   the request), or are delayed.
//! - **Counts**: [`TestServer::reports`] lists every report with its state and files, so a
//!   test can assert "exactly one finished report, with every file, once".
//!
//! Every answer carries a `Request-ID` header (`req-<n>`).
//!
//! A connection is dropped without an answer by unwinding the connection's task with
//! [`std::panic::resume_unwind`]: axum runs each connection in its own tokio task, tokio
//! contains the unwind there, and the socket is closed with nothing written. `resume_unwind`
//! does not run the panic hook, so nothing is printed. (axum offers no other way for a handler
//! to close its connection.)

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;

use crate::client::md5_hex;
use crate::model::{
    Address, Contact, FileDetails, FileHash, FileRelevance, IncidentType, IndustryClassification,
    InternetDetail, Person, Report, UserDetails,
};
use crate::time::{Clock, Timestamp};
use crate::{Approval, Filing, FilingFile};

/// Unfinished reports are deleted this long after opening, seconds (NCMEC: 24 h).
pub const EXPIRY_AFTER_OPEN_SECONDS: i64 = 24 * 3600;
/// Unfinished reports are deleted this long after their last change, seconds (NCMEC: 1 h).
pub const EXPIRY_AFTER_CHANGE_SECONDS: i64 = 3600;
/// The user name the server accepts unless told otherwise.
pub const USERNAME: &str = "test-esp";
/// The password the server accepts unless told otherwise.
pub const PASSWORD: &str = "test-password-not-secret";

// The CyberTipline's element sequences, as docs/reporting.md lists them. Kept apart from the
// model on purpose: a test that checks the model's order against the model's own list would
// prove nothing.
const REPORT: &[&str] = &[
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
const REPORT_REQUIRED: &[&str] = &["incidentSummary", "reporter"];
const INCIDENT_SUMMARY: &[&str] = &[
    "incidentType",
    "platform",
    "escalateToHighPriority",
    "reportAnnotations",
    "incidentDateTime",
    "incidentDateTimeDescription",
];
const INCIDENT_SUMMARY_REQUIRED: &[&str] = &["incidentType", "incidentDateTime"];
const REPORTER: &[&str] = &[
    "reportingPerson",
    "contactPerson",
    "companyTemplate",
    "termsOfService",
    "legalURL",
];
const PERSON: &[&str] = &[
    "firstName",
    "lastName",
    "phone",
    "email",
    "address",
    "age",
    "dateOfBirth",
];
// The XSD's contactPerson type (`<contactPerson>`, `<officerContact>`): no age or birth date.
const CONTACT_PERSON: &[&str] = &["firstName", "lastName", "phone", "email", "address"];
const REPORTED_USER: &[&str] = &[
    "personOrUserReportedPerson",
    "vehicleDescription",
    "espIdentifier",
    "espService",
    "compromisedAccount",
    "screenName",
    "displayName",
    "profileUrl",
    "profileBio",
    "ipCaptureEvent",
    "deviceId",
    "thirdPartyUserReported",
    "priorCTReports",
    "groupIdentifier",
    "accountTemporarilyDisabled",
    "accountPermanentlyDisabled",
    "estimatedLocation",
    "allEmailsReported",
    "associatedAccount",
    "additionalInfo",
];
// `<intendedRecipient>`: the reported user's sequence less vehicleDescription,
// thirdPartyUserReported and associatedAccount.
const INTENDED_RECIPIENT: &[&str] = &[
    "intendedRecipientPerson",
    "espIdentifier",
    "espService",
    "compromisedAccount",
    "screenName",
    "displayName",
    "profileUrl",
    "profileBio",
    "ipCaptureEvent",
    "deviceId",
    "priorCTReports",
    "groupIdentifier",
    "accountTemporarilyDisabled",
    "accountPermanentlyDisabled",
    "estimatedLocation",
    "allEmailsReported",
    "additionalInfo",
];
const IP_CAPTURE_EVENT: &[&str] = &[
    "ipAddress",
    "eventName",
    "dateTime",
    "possibleProxy",
    "port",
];
const FILE_DETAILS: &[&str] = &[
    "reportId",
    "fileId",
    "fileName",
    "originalFileName",
    "uploadedToEspTimestamp",
    "locationOfFile",
    "fileViewedByEsp",
    "exifViewedByEsp",
    "publiclyAvailable",
    "fileRelevance",
    "fileAnnotations",
    "industryClassification",
    "originalFileHash",
    "ipCaptureEvent",
    "deviceId",
    "details",
    "additionalInfo",
];
const FILE_DETAILS_REQUIRED: &[&str] = &["reportId", "fileId"];
const INCIDENT_TYPES: &[&str] = &[
    "Child Pornography (possession, manufacture, and distribution)",
    "Child Sex Trafficking",
    "Child Sex Tourism",
    "Child Sexual Molestation",
    "Misleading Domain Name",
    "Misleading Words or Digital Images on the Internet",
    "Online Enticement of Children for Sexual Acts",
    "Unsolicited Obscene Material Sent to a Child",
];

/// What the next request(s) to an endpoint get instead of a normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 with a plain-text body, nothing done.
    Http500,
    /// HTTP 200 with responseCode 1000 (server error), nothing done.
    Code1000,
    /// The connection is closed without an answer, nothing done.
    Drop,
    /// The request is carried out, then the connection is closed without an answer: the
    /// "answer lost" case.
    DropAfter,
    /// The answer comes after this delay (the request is carried out after it, so a client
    /// that gave up first leaves nothing behind).
    Delay(Duration),
    /// The request is carried out and logged at once; the answer comes after this delay. A
    /// client killed meanwhile has had its request done but never saw the answer.
    HoldAfter(Duration),
    /// For `/upload`: the file arrives damaged (its first byte changed on the way). It is
    /// stored and answered as usual, with the MD5 of what arrived, which is not the client's.
    Corrupt,
}

/// Set on a request whose upload arrives damaged ([`Fault::Corrupt`]).
#[derive(Debug, Clone, Copy)]
struct Damaged;

/// A report's state on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportState {
    /// Opened, not finished.
    Open,
    /// Finished.
    Finished,
    /// Retracted.
    Retracted,
    /// Deleted unfinished after the expiry windows.
    Expired,
}

/// A file the server holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFile {
    /// The file id handed out.
    pub file_id: String,
    /// The upload's file name.
    pub name: String,
    /// MD5 of the content.
    pub md5: String,
    /// Bytes.
    pub size: usize,
    /// The last `<fileDetails>` received for it.
    pub details_xml: Option<String>,
}

/// A report the server holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReport {
    /// Its id.
    pub report_id: String,
    /// The `<report>` received.
    pub xml: String,
    /// Its state.
    pub state: ReportState,
    /// When it was opened (server clock).
    pub opened_at: Timestamp,
    /// Its last change (server clock).
    pub last_change_at: Timestamp,
    /// Files, in upload order.
    pub files: Vec<ServerFile>,
}

/// One request as the server answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The endpoint.
    pub endpoint: String,
    /// The responseCode answered, or `None` for an injected HTTP 500 or dropped connection.
    pub response_code: Option<u32>,
    /// The `Request-ID` sent.
    pub request_id: String,
}

#[derive(Default)]
struct Inner {
    next_report: u64,
    next_file: u64,
    reports: BTreeMap<String, ServerReport>,
    faults: HashMap<String, VecDeque<Fault>>,
    log: Vec<Logged>,
    /// Requests received per endpoint, counted on arrival (before any fault or answer).
    arrived: HashMap<String, usize>,
}

struct Shared {
    username: String,
    password: String,
    /// Seconds added to the system clock.
    offset: Arc<AtomicI64>,
    next_request: AtomicU64,
    inner: Mutex<Inner>,
}

impl Shared {
    fn now(&self) -> Timestamp {
        Timestamp::now().plus_seconds(self.offset.load(Ordering::SeqCst))
    }

    /// The state, tolerating a poisoned lock: a handler never unwinds while holding it (the
    /// connection drops happen after the guard is released), and a test that failed
    /// mid-request should still be able to read the counts.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The server's clock as a [`Clock`] for a filer under test.
#[derive(Debug, Clone)]
pub struct TestClock {
    offset: Arc<AtomicI64>,
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::now().plus_seconds(self.offset.load(Ordering::SeqCst))
    }
}

/// A running test server; stops when dropped.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Starts a server accepting [`USERNAME`] / [`PASSWORD`].
    pub async fn start() -> std::io::Result<TestServer> {
        TestServer::start_with(USERNAME, PASSWORD).await
    }

    /// Starts a server accepting these credentials.
    pub async fn start_with(username: &str, password: &str) -> std::io::Result<TestServer> {
        let shared = Arc::new(Shared {
            username: username.to_string(),
            password: password.to_string(),
            offset: Arc::new(AtomicI64::new(0)),
            next_request: AtomicU64::new(1),
            inner: Mutex::new(Inner::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = app(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            // Ends only when the task is aborted (the server dropped).
            let _ = axum::serve(listener, app).await;
        });
        Ok(TestServer { addr, shared, task })
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to give a client (`http://127.0.0.1:<port>/ispws`).
    pub fn base_url(&self) -> String {
        format!("http://{}/ispws", self.addr)
    }

    /// Moves the server's clock (and [`TestServer::clock`]) forward.
    pub fn advance(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.shared.offset.fetch_add(secs, Ordering::SeqCst);
    }

    /// The server's clock, for a filer that should see the same time.
    pub fn clock(&self) -> TestClock {
        TestClock {
            offset: Arc::clone(&self.shared.offset),
        }
    }

    /// Makes the next `times` requests to `endpoint` (`"/upload"`, …) meet `fault`.
    pub fn inject(&self, endpoint: &str, fault: Fault, times: usize) {
        let mut inner = self.shared.lock();
        let queue = inner.faults.entry(endpoint.to_string()).or_default();
        queue.extend(std::iter::repeat_n(fault, times));
    }

    /// Every report, by id, with expiry applied at the server's current time.
    pub fn reports(&self) -> Vec<ServerReport> {
        let now = self.shared.now();
        let mut inner = self.shared.lock();
        expire(&mut inner, now);
        inner.reports.values().cloned().collect()
    }

    /// The finished reports.
    pub fn finished(&self) -> Vec<ServerReport> {
        self.reports()
            .into_iter()
            .filter(|r| r.state == ReportState::Finished)
            .collect()
    }

    /// Every request answered so far.
    pub fn log(&self) -> Vec<Logged> {
        self.shared.lock().log.clone()
    }

    /// Requests to `endpoint` (`"/upload"`, …) received so far, answered or not: a request
    /// held by [`Fault::Delay`] counts from its arrival.
    pub fn arrived(&self, endpoint: &str) -> usize {
        self.shared
            .lock()
            .arrived
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }
}

/// The router, for tests that want to drive it without a socket.
fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/ispws/status", get(status))
        .route("/ispws/submit", post(submit))
        .route("/ispws/upload", post(upload))
        .route("/ispws/fileinfo", post(fileinfo))
        .route("/ispws/finish", post(finish))
        .route("/ispws/retract", post(retract))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            faults_and_auth,
        ))
        .with_state(shared)
}

/// Marker carried by the unwind that drops a connection.
struct DropConnection;

fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new(DropConnection))
}

async fn faults_and_auth(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let endpoint = request
        .uri()
        .path()
        .trim_start_matches("/ispws")
        .to_string();
    let request_id = format!("req-{}", shared.next_request.fetch_add(1, Ordering::SeqCst));
    let fault = {
        let mut inner = shared.lock();
        *inner.arrived.entry(endpoint.clone()).or_default() += 1;
        inner
            .faults
            .get_mut(&endpoint)
            .and_then(VecDeque::pop_front)
    };
    let log = |code: Option<u32>| {
        shared.lock().log.push(Logged {
            endpoint: endpoint.clone(),
            response_code: code,
            request_id: request_id.clone(),
        })
    };
    match fault {
        Some(Fault::Http500) => {
            log(None);
            return with_request_id(
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
                &request_id,
            );
        }
        Some(Fault::Code1000) => {
            log(Some(1000));
            return with_request_id(xml_answer(StatusCode::OK, 1000, &[]), &request_id);
        }
        Some(Fault::Drop) => {
            log(None);
            drop_connection();
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::Corrupt) => {
            request.extensions_mut().insert(Damaged);
        }
        Some(Fault::DropAfter | Fault::HoldAfter(_)) | None => {}
    }
    let code = check_auth(&shared, request.headers()).err();
    let response = match code {
        Some(code) => xml_answer(StatusCode::UNAUTHORIZED, code, &[]),
        None => next.run(request).await,
    };
    let answered = response
        .headers()
        .get("x-response-code")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    log(answered);
    if fault == Some(Fault::DropAfter) {
        drop_connection();
    }
    if let Some(Fault::HoldAfter(d)) = fault {
        tokio::time::sleep(d).await;
    }
    with_request_id(response, &request_id)
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("Request-ID", v);
    }
    response
}

fn check_auth(shared: &Shared, headers: &HeaderMap) -> Result<(), u32> {
    let Some(value) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return Err(2000);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| 2000u32)?;
    let text = String::from_utf8(decoded).map_err(|_| 2000u32)?;
    match text.split_once(':') {
        Some((u, p)) if u == shared.username && p == shared.password => Ok(()),
        _ => Err(3000),
    }
}

/// `<reportResponse>` with `code` and the given children (names and texts, escaped by the
/// caller's values being ids and hashes).
fn xml_answer(status: StatusCode, code: u32, fields: &[(&str, &str)]) -> Response {
    xml_document(status, code, "reportResponse", fields, &[])
}

fn xml_document(
    status: StatusCode,
    code: u32,
    root: &str,
    fields: &[(&str, &str)],
    files: &[String],
) -> Response {
    let description = crate::response::ResponseCode(code).meaning();
    let mut body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><{root}><responseCode>{code}</responseCode>\
         <responseDescription>{description}</responseDescription>"
    );
    for (name, value) in fields {
        body.push_str(&format!("<{name}>{value}</{name}>"));
    }
    if !files.is_empty() {
        body.push_str("<files>");
        for f in files {
            body.push_str(&format!("<fileId>{f}</fileId>"));
        }
        body.push_str("</files>");
    }
    body.push_str(&format!("</{root}>"));
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    headers.insert("x-response-code", HeaderValue::from(code));
    response
}

fn ok(fields: &[(&str, &str)]) -> Response {
    xml_answer(StatusCode::OK, 0, fields)
}

fn code(code: u32) -> Response {
    xml_answer(StatusCode::OK, code, &[])
}

/// Deletes unfinished reports past either window.
fn expire(inner: &mut Inner, now: Timestamp) {
    for r in inner.reports.values_mut() {
        if r.state == ReportState::Open
            && (now.unix_seconds() - r.opened_at.unix_seconds() >= EXPIRY_AFTER_OPEN_SECONDS
                || now.unix_seconds() - r.last_change_at.unix_seconds()
                    >= EXPIRY_AFTER_CHANGE_SECONDS)
        {
            r.state = ReportState::Expired;
        }
    }
}

async fn status() -> Response {
    ok(&[])
}

async fn submit(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return code(4110);
    };
    let doc = match roxmltree::Document::parse(text) {
        Ok(d) => d,
        Err(_) => return code(4110),
    };
    if let Err(_why) = check_report(&doc) {
        return code(4100);
    }
    let now = shared.now();
    let mut inner = shared.lock();
    inner.next_report += 1;
    let id = format!("{}", 100_000 + inner.next_report);
    inner.reports.insert(
        id.clone(),
        ServerReport {
            report_id: id.clone(),
            xml: text.to_string(),
            state: ReportState::Open,
            opened_at: now,
            last_change_at: now,
            files: Vec::new(),
        },
    );
    ok(&[("reportId", &id)])
}

/// The report's answer code if it cannot take changes: 5001 missing or expired, 5101
/// retracted, 5102 finished.
fn open_report<'a>(
    inner: &'a mut Inner,
    id: &str,
    now: Timestamp,
) -> Result<&'a mut ServerReport, u32> {
    expire(inner, now);
    match inner.reports.get_mut(id) {
        None => Err(5001),
        Some(r) => match r.state {
            ReportState::Open => Ok(r),
            ReportState::Expired => Err(5001),
            ReportState::Retracted => Err(5101),
            ReportState::Finished => Err(5102),
        },
    }
}

async fn upload(
    State(shared): State<Arc<Shared>>,
    damaged: Option<axum::Extension<Damaged>>,
    mut multipart: Multipart,
) -> Response {
    let mut id = None;
    let mut file = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_string();
                let file_name = field.file_name().unwrap_or("").to_string();
                let Ok(bytes) = field.bytes().await else {
                    return code(4200);
                };
                match name.as_str() {
                    "id" => id = Some(String::from_utf8_lossy(&bytes).trim().to_string()),
                    "file" => file = Some((file_name, bytes)),
                    _ => return code(4000),
                }
            }
            Ok(None) => break,
            Err(_) => return code(4200),
        }
    }
    let (Some(id), Some((name, mut bytes))) = (id, file) else {
        return code(4000);
    };
    if damaged.is_some() && !bytes.is_empty() {
        let mut b = bytes.to_vec();
        b[0] ^= 0xff;
        bytes = Bytes::from(b);
    }
    let now = shared.now();
    let mut inner = shared.lock();
    inner.next_file += 1;
    let file_id = format!("file-{}", inner.next_file);
    let report = match open_report(&mut inner, &id, now) {
        Ok(r) => r,
        Err(c) => return code(c),
    };
    let md5 = md5_hex(&bytes);
    report.files.push(ServerFile {
        file_id: file_id.clone(),
        name,
        md5: md5.clone(),
        size: bytes.len(),
        details_xml: None,
    });
    report.last_change_at = now;
    ok(&[("reportId", &id), ("fileId", &file_id), ("hash", &md5)])
}

async fn fileinfo(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return code(4110);
    };
    let doc = match roxmltree::Document::parse(text) {
        Ok(d) => d,
        Err(_) => return code(4110),
    };
    let root = doc.root_element();
    if !root.has_tag_name("fileDetails")
        || check_sequence(root, FILE_DETAILS, FILE_DETAILS_REQUIRED).is_err()
    {
        return code(4100);
    }
    let child = |name: &str| {
        root.children()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .unwrap_or("")
            .to_string()
    };
    let relevance = child("fileRelevance");
    if root
        .children()
        .any(|n| n.has_tag_name("industryClassification"))
        && relevance != "Reported"
    {
        return code(4100);
    }
    let (report_id, file_id) = (child("reportId"), child("fileId"));
    let now = shared.now();
    let mut inner = shared.lock();
    let report = match open_report(&mut inner, &report_id, now) {
        Ok(r) => r,
        Err(c) => return code(c),
    };
    let Some(file) = report.files.iter_mut().find(|f| f.file_id == file_id) else {
        return code(5002);
    };
    file.details_xml = Some(text.to_string());
    report.last_change_at = now;
    ok(&[("reportId", &report_id)])
}

fn form_id(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .find_map(|kv| kv.strip_prefix("id="))
        .map(|v| v.trim().to_string())
}

async fn finish(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Some(id) = form_id(&body) else {
        return code(4000);
    };
    let now = shared.now();
    let mut inner = shared.lock();
    let report = match open_report(&mut inner, &id, now) {
        Ok(r) => r,
        Err(c) => {
            return xml_document(StatusCode::OK, c, "reportDoneResponse", &[], &[]);
        }
    };
    report.state = ReportState::Finished;
    let files: Vec<String> = report.files.iter().map(|f| f.file_id.clone()).collect();
    xml_document(
        StatusCode::OK,
        0,
        "reportDoneResponse",
        &[("reportId", &id)],
        &files,
    )
}

async fn retract(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Some(id) = form_id(&body) else {
        return code(4000);
    };
    let now = shared.now();
    let mut inner = shared.lock();
    match open_report(&mut inner, &id, now) {
        Ok(report) => {
            report.state = ReportState::Retracted;
            ok(&[("reportId", &id)])
        }
        Err(c) => code(c),
    }
}

/// The `<report>` against the ordered lists above.
fn check_report(doc: &roxmltree::Document<'_>) -> Result<(), String> {
    let root = doc.root_element();
    if !root.has_tag_name("report") {
        return Err(format!("root is <{}>", root.tag_name().name()));
    }
    check_sequence(root, REPORT, REPORT_REQUIRED)?;
    for child in root.children().filter(|n| n.is_element()) {
        match child.tag_name().name() {
            "incidentSummary" => {
                check_sequence(child, INCIDENT_SUMMARY, INCIDENT_SUMMARY_REQUIRED)?;
                let t = child
                    .children()
                    .find(|n| n.has_tag_name("incidentType"))
                    .and_then(|n| n.text())
                    .unwrap_or("");
                if !INCIDENT_TYPES.contains(&t) {
                    return Err(format!("incidentType {t:?}"));
                }
            }
            "reporter" => {
                check_sequence(child, REPORTER, &["reportingPerson"])?;
                for p in child.children().filter(|n| n.is_element()) {
                    match p.tag_name().name() {
                        "reportingPerson" => check_sequence(p, PERSON, &["email"])?,
                        "contactPerson" => check_sequence(p, CONTACT_PERSON, &[])?,
                        _ => {}
                    }
                }
            }
            "lawEnforcement" => {
                for o in child
                    .children()
                    .filter(|n| n.has_tag_name("officerContact"))
                {
                    check_sequence(o, CONTACT_PERSON, &[])?;
                }
            }
            // Empty, with the one reason the XSD allows.
            "batchedReport"
                if child.has_children()
                    || child.attribute("reason") != Some("VIRAL_POTENTIAL_MEME") =>
            {
                return Err("batchedReport is not empty with reason VIRAL_POTENTIAL_MEME".into());
            }
            "personOrUserReported" | "intendedRecipient" => {
                let order = if child.has_tag_name("intendedRecipient") {
                    INTENDED_RECIPIENT
                } else {
                    REPORTED_USER
                };
                check_sequence(child, order, &[])?;
                for e in child
                    .children()
                    .filter(|n| n.has_tag_name("ipCaptureEvent"))
                {
                    check_sequence(e, IP_CAPTURE_EVENT, &["ipAddress"])?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// `node`'s child elements appear in `order` (repeats allowed, nothing unknown, never
/// backwards) and include every `required` one.
fn check_sequence(
    node: roxmltree::Node<'_, '_>,
    order: &[&str],
    required: &[&str],
) -> Result<(), String> {
    let mut at = 0;
    for child in node.children().filter(|n| n.is_element()) {
        let name = child.tag_name().name();
        let Some(i) = order.iter().position(|o| *o == name) else {
            return Err(format!("unknown <{name}> in <{}>", node.tag_name().name()));
        };
        if i < at {
            return Err(format!(
                "<{name}> after <{}> in <{}>",
                order[at],
                node.tag_name().name()
            ));
        }
        at = i;
    }
    for r in required {
        if !node.children().any(|n| n.has_tag_name(*r)) {
            return Err(format!("<{}> lacks <{r}>", node.tag_name().name()));
        }
    }
    Ok(())
}

/// A benign sample filing for tests: a report about an account (fake names, example.com
/// addresses) with two tiny generated files (a PNG header and a text file), approved by two
/// people. The crash-test child builds the same filing, so parent and child agree on it.
pub fn sample_filing(id: &str, now: Timestamp) -> Filing {
    let mut report = Report::new(
        IncidentType::ChildPornography,
        now.plus_seconds(-3600),
        Person {
            first_name: Some("Test".into()),
            last_name: Some("Reporter".into()),
            emails: vec![Contact {
                value: "reporter@example.com".into(),
                kind: Some("Business".into()),
                verified: None,
                verification_date: None,
            }],
            addresses: vec![Address {
                kind: Some("Business".into()),
                city: Some("Example City".into()),
                country: Some("US".into()),
                ..Address::default()
            }],
            ..Person::default()
        },
    );
    report.incident_summary.platform = Some("Example Chat".into());
    report.incident_summary.incident_date_time_description =
        Some("Upload time <as recorded> & confirmed".into());
    report.internet_details = vec![InternetDetail::WebPage {
        urls: vec!["https://example.com/u/test-user".into()],
        additional_info: None,
        third_party_hosted_content: Some(false),
    }];
    report.reporter.legal_url = Some("https://example.com/legal".into());
    report.person_or_user_reported = Some(UserDetails {
        esp_identifier: Some("user-1234".into()),
        esp_service: Some("Example Chat".into()),
        screen_name: Some("test_user".into()),
        display_names: vec!["Test User".into()],
        profile_urls: vec!["https://example.com/u/test-user".into()],
        ip_capture_events: vec![crate::model::IpCaptureEvent {
            ip_address: "192.0.2.10".into(),
            event_name: Some(crate::model::EventName::Upload),
            date_time: Some(now.plus_seconds(-3600)),
            possible_proxy: Some(false),
            port: Some(443),
        }],
        account_temporarily_disabled: Some(true),
        ..UserDetails::default()
    });
    report.additional_info = Some("Synthetic test report.".into());
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".to_vec();
    let text = b"benign test attachment\n".to_vec();
    let files = vec![
        FilingFile {
            name: "image-1.png".into(),
            details: FileDetails {
                original_file_name: Some("upload.png".into()),
                file_viewed_by_esp: Some(true),
                file_relevance: Some(FileRelevance::Reported),
                industry_classification: Some(IndustryClassification::B2),
                original_file_hashes: vec![FileHash {
                    hash_type: "MD5".into(),
                    value: md5_hex(&png),
                }],
                ..FileDetails::default()
            },
            content: png,
        },
        FilingFile {
            name: "context.txt".into(),
            details: FileDetails {
                file_relevance: Some(FileRelevance::SupplementalReported),
                additional_info: vec!["Chat context.".into()],
                ..FileDetails::default()
            },
            content: text,
        },
    ];
    Filing {
        id: id.to_string(),
        report,
        files,
        // Distinct names; cannot fail.
        approval: Approval::new("Test Moderator", "Test Lead").ok(),
    }
}
