//! Shared helpers: a client and filer pointed at a test server, and the independent
//! element-order check.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use safeguard_ncmec::testserver::{ReportState, ServerReport, TestServer, PASSWORD, USERNAME};
use safeguard_ncmec::{
    Client, ClientConfig, Credentials, FileJournal, Filer, FilerConfig, FilingState, Journal,
    RetryPolicy, Timestamp,
};

/// Fast retries: the faults are injected, waiting longer proves nothing.
pub const FAST_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 5,
    initial_backoff: Duration::from_millis(10),
    max_backoff: Duration::from_millis(50),
};

pub fn client(server: &TestServer) -> Client {
    Client::new(ClientConfig::new(Credentials::new(USERNAME, PASSWORD)).base_url(server.base_url()))
        .unwrap()
}

pub fn filer(server: &TestServer, journal: Arc<dyn Journal>) -> Filer {
    Filer::new(client(server), journal)
        .with_clock(Arc::new(server.clock()))
        .with_config(FilerConfig {
            retry: FAST_RETRY,
            ..FilerConfig::default()
        })
}

pub fn file_journal(dir: &tempfile::TempDir) -> Arc<FileJournal> {
    Arc::new(FileJournal::open(dir.path()).unwrap())
}

pub fn now() -> Timestamp {
    Timestamp::now()
}

/// A journal that fails every record after the first `allow`: stops a filing mid-way
/// in-process, as a crash would, for the tests that then move the clock or retract.
pub struct StopAfter {
    pub inner: Arc<dyn Journal>,
    pub allow: usize,
    pub records: AtomicUsize,
}

impl StopAfter {
    pub fn new(inner: Arc<dyn Journal>, allow: usize) -> Arc<StopAfter> {
        Arc::new(StopAfter {
            inner,
            allow,
            records: AtomicUsize::new(0),
        })
    }
}

impl Journal for StopAfter {
    fn load(&self, id: &str) -> safeguard_ncmec::Result<Option<FilingState>> {
        self.inner.load(id)
    }

    fn record(&self, id: &str, state: &FilingState) -> safeguard_ncmec::Result<()> {
        if self.records.fetch_add(1, Ordering::SeqCst) >= self.allow {
            return Err(safeguard_ncmec::Error::Journal {
                filing_id: id.to_string(),
                message: "stopped by the test".into(),
            });
        }
        self.inner.record(id, state)
    }
}

/// The server holds exactly one finished report, whose files are exactly `names` (each
/// once, in order, each with its details); returns it.
pub fn assert_one_finished(server: &TestServer, names: &[&str]) -> ServerReport {
    let finished = server.finished();
    assert_eq!(
        finished.len(),
        1,
        "finished reports: {:#?}",
        server.reports()
    );
    let report = finished.into_iter().next().unwrap();
    let got: Vec<&str> = report.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(got, names, "files of the finished report");
    for f in &report.files {
        assert!(f.details_xml.is_some(), "no fileDetails for {}", f.name);
    }
    // No other report may ever be finished; the others are retracted, expired or left open
    // (a submit whose answer was lost).
    for r in server.reports() {
        if r.report_id != report.report_id {
            assert_ne!(r.state, ReportState::Finished);
        }
    }
    report
}

// The element order of NCMEC's XSD (as published in Boostport/ncmec-go,
// cybertipline/generate/cyber_tipline.xsd at c9dee9b), kept in this file apart from the
// crate's model and its test server, and checked by walking the XML with roxmltree.
const ORDER: &[(&str, &[&str])] = &[
    (
        "report",
        &[
            "batchedReport",
            "incidentSummary",
            "internetDetails",
            "lawEnforcement",
            "reporter",
            "personOrUserReported",
            "intendedRecipient",
            "victim",
            "additionalInfo",
        ],
    ),
    (
        "incidentSummary",
        &[
            "incidentType",
            "platform",
            "escalateToHighPriority",
            "reportAnnotations",
            "incidentDateTime",
            "incidentDateTimeDescription",
        ],
    ),
    (
        "reportAnnotations",
        &[
            "sextortion",
            "csamSolicitation",
            "minorToMinorInteraction",
            "spam",
            "sadisticOnlineExploitation",
        ],
    ),
    // thirdPartyHostedContent is an attribute of webPageIncident, not a child.
    ("webPageIncident", &["url", "additionalInfo"]),
    // An empty element with a reason attribute: no children at all.
    ("batchedReport", &[]),
    (
        "chatImIncident",
        &["chatClient", "chatRoomName", "content", "additionalInfo"],
    ),
    (
        "reporter",
        &[
            "reportingPerson",
            "contactPerson",
            "companyTemplate",
            "termsOfService",
            "legalURL",
        ],
    ),
    (
        "lawEnforcement",
        &[
            "agencyName",
            "caseNumber",
            "officerContact",
            "reportedToLe",
            "servedLegalProcessDomestic",
            "servedLegalProcessInternational",
        ],
    ),
    ("officerContact", CONTACT_PERSON),
    (
        "address",
        &[
            "address",
            "city",
            "zipCode",
            "state",
            "nonUsaState",
            "country",
        ],
    ),
    (
        "victim",
        &[
            "victimPerson",
            "espIdentifier",
            "espService",
            "screenName",
            "displayName",
            "profileUrl",
            "additionalInfo",
        ],
    ),
    ("reportingPerson", PERSON),
    ("contactPerson", CONTACT_PERSON),
    ("victimPerson", PERSON),
    ("personOrUserReportedPerson", PERSON),
    ("intendedRecipientPerson", PERSON),
    ("personOrUserReported", USER),
    ("intendedRecipient", INTENDED_RECIPIENT),
    (
        "associatedAccount",
        &[
            "platform",
            "firstName",
            "middleName",
            "lastName",
            "approximateAge",
            "dateOfBirth",
            "phone",
            "email",
            "allEmailsReported",
            "address",
            "espService",
            "espIdentifier",
            "profileUrl",
            "screenName",
            "displayName",
            "profileBio",
            "groupIdentifier",
            "compromisedAccount",
            "accountTemporarilyDisabled",
            "accountPermanentlyDisabled",
            "ipCaptureEvent",
            "deviceId",
            "priorCTReport",
            "additionalInfo",
        ],
    ),
    (
        "ipCaptureEvent",
        &[
            "ipAddress",
            "eventName",
            "dateTime",
            "possibleProxy",
            "port",
        ],
    ),
    ("deviceId", &["idType", "idValue", "eventName", "dateTime"]),
    ("details", &["nameValuePair"]),
    ("nameValuePair", &["name", "value"]),
    ("estimatedLocation", &["city", "region", "countryCode"]),
    (
        "fileDetails",
        &[
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
        ],
    ),
    (
        "fileAnnotations",
        &[
            "animeDrawingVirtualHentai",
            "potentialMeme",
            "viral",
            "possibleSelfProduction",
            "physicalHarm",
            "violenceGore",
            "bestiality",
            "liveStreaming",
            "infant",
            "generativeAi",
        ],
    ),
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
// The XSD's contactPerson type: person without age and dateOfBirth.
const CONTACT_PERSON: &[&str] = &["firstName", "lastName", "phone", "email", "address"];
// personOrUserReported.
const USER: &[&str] = &[
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

// intendedRecipient: no vehicleDescription, thirdPartyUserReported or associatedAccount.
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

/// Every element of `xml` whose name has an order above lists its children in that order,
/// with nothing unknown. Returns how many elements were checked.
pub fn assert_xsd_order(xml: &str) -> usize {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    let mut checked = 0;
    for node in doc.descendants().filter(|n| n.is_element()) {
        let name = node.tag_name().name();
        let Some((_, order)) = ORDER.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        checked += 1;
        // An empty order is an empty element: no text either.
        if order.is_empty() {
            assert!(!node.has_children(), "<{name}> is not empty: {xml}");
        }
        let mut at = 0;
        for child in node.children().filter(|n| n.is_element()) {
            let c = child.tag_name().name();
            let i = order
                .iter()
                .position(|o| *o == c)
                .unwrap_or_else(|| panic!("unknown <{c}> in <{name}>: {xml}"));
            assert!(i >= at, "<{c}> after <{}> in <{name}>: {xml}", order[at]);
            at = i;
        }
    }
    checked
}
