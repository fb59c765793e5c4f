//! Filing approved cases to NCMEC's CyberTipline (docs/reporting.md, "Filing to NCMEC").
//!
//! The filing itself is the `safeguard-ncmec` crate's durable [`Filer`]; this module gives it
//! what it needs from the server:
//! - a [`Journal`] over the store ([`StoreJournal`]: one `report_filings` row per filing,
//!   its JSON replaced on every step, durable before the next call to NCMEC);
//! - the report, built from the case ([`build_report`]) and its live evidence, decrypted from
//!   the vault (each read logged as `system:ncmec` `export`);
//! - the two-person approval from the case's history;
//! - the account's credentials, sealed with the master key in the store's `secrets` table
//!   ([`store_ncmec_credentials`], which `safeguard report ncmec-credentials` calls).
//!
//! A filing runs in a background task. When NCMEC confirms it, the case moves
//! `decided → reported` (actor `system:ncmec`), the transcript (the XML sent and every answer)
//! is sealed in the vault and its record kept in the filing's row, a `report.filed` event
//! goes out through the outbox, and the audit log gets `report_filed`. A run that fails
//! records its stable error code (`report.failed`, `report_failed`) and leaves the journal
//! where it stopped: the next start, or the next `POST`, resumes it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use safeguard_engine::action::{new_event, EVENT_REPORT_FAILED, EVENT_REPORT_FILED};
use safeguard_engine::audit::Action;
use safeguard_engine::case::{current_approval, decision_line, CaseState, DecisionKind};
use safeguard_engine::now_ms;
use safeguard_ncmec::model::{
    Contact, EventName, FileHash, FileRelevance, IndustryClassification, IpCaptureEvent, Person,
    UserDetails,
};
use safeguard_ncmec::{
    Approval, Client, ClientConfig, Credentials, Environment, FileDetails, FiledReport, Filer,
    FilerConfig, Filing, FilingFile, FilingState, Journal, Phase, Report, RetryPolicy, Timestamp,
};
use safeguard_store::action::{Case, CaseId, Evidence, StoredSubmission};
use safeguard_store::report::{FilingRecord, ReportFiling};
use safeguard_store::Store;

use crate::claims::{Claim, Claims};
use crate::config::{NcmecConfig, NcmecEnvironment};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::state::{blocking, AppState};

/// The destination name in `report_filings`.
pub const DESTINATION: &str = "ncmec";
/// Name of the sealed credentials in the store's `secrets` table.
pub const CREDENTIALS_SECRET: &str = "ncmec-credentials";
/// Associated data the credentials are sealed under, so a sealed value of another kind
/// (an exchange's API key) can never be opened as these.
pub const CREDENTIALS_CONTEXT: &[u8] = b"ncmec-credentials";
/// The actor of everything the filer does: case transitions, evidence exports, audit lines.
pub const SYSTEM_ACTOR: &str = "system:ncmec";
/// Longest pause between attempts of one call (the filer's own cap).
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Filings this process is driving now. One filing is driven by one task at a time (the
/// filer's rule): a second `POST` or a resume finds it here and leaves it alone.
#[derive(Debug, Default)]
pub struct Reports {
    /// Filing ids with a task running.
    running: Arc<Claims<String>>,
    /// This process's name on the filings' leases in the store (`ReportStore::lease_filing`):
    /// its host and listening address, so that processes sharing a database differ and a
    /// process restarted in the same place takes its own leases back at once.
    owner: String,
    /// Serialises "look for a filing of this case, else create one" in one process; across
    /// processes the store creates a filing once (`create_filing`) and its lease keeps one
    /// driver.
    create: tokio::sync::Mutex<()>,
}

/// How long a filing's lease lasts. The process driving the filing renews it every
/// [`FILING_HEARTBEAT`] and at each step the filer records, so another process takes the
/// filing over only when its driver has been gone this long.
pub const FILING_LEASE_MS: i64 = 2 * 60 * 1000;
/// How often a running filing's lease is renewed.
const FILING_HEARTBEAT: Duration = Duration::from_secs(30);

impl Reports {
    /// Filings driven under `owner`'s name ([`Reports::owner`]).
    pub fn new(owner: impl Into<String>) -> Reports {
        Reports {
            owner: owner.into(),
            ..Reports::default()
        }
    }

    /// The owner name of a process listening on `listen` on this host.
    pub fn owner_for(listen: std::net::SocketAddr) -> String {
        format!("{}/{listen}", crate::feed::host_name())
    }

    /// This process's name on leases in the store (also the NCA API sends' leases).
    pub(crate) fn owner(&self) -> &str {
        &self.owner
    }

    fn claim(&self, id: &str) -> Option<Claim<String>> {
        self.running.claim(id.to_string())
    }

    fn is_running(&self, id: &str) -> bool {
        self.running.is_claimed(&id.to_string())
    }
}

// ------------------------------------------------------------------ credentials

/// Seals the CyberTipline account's credentials with the master key and stores them (what
/// `safeguard report ncmec-credentials` does). The password is never printed or logged.
pub fn store_ncmec_credentials(
    store: &dyn Store,
    master: &safeguard_seal::MasterKey,
    username: &str,
    password: &str,
) -> Result<(), String> {
    if username.trim().is_empty() || password.is_empty() {
        return Err("both a user name and a password are needed".into());
    }
    let plain = zeroize::Zeroizing::new(
        json!({"username": username, "password": password})
            .to_string()
            .into_bytes(),
    );
    let sealed = master
        .seal(&plain, CREDENTIALS_CONTEXT)
        .map_err(|e| format!("sealing the credentials: {e}"))?;
    store
        .put_secret(CREDENTIALS_SECRET, &sealed, now_ms())
        .map_err(|e| format!("storing the credentials: {e}"))
}

/// The instance master key as the server resolves it: `SAFEGUARD_MASTER_KEY`'s value when
/// given, else `key_file` (`[secrets] master_key_file`), else the key file in `data_dir`.
/// For the CLI, which seals the credentials with the key the server will open them with.
pub fn master_key(
    env_value: Option<&str>,
    key_file: Option<&std::path::Path>,
    data_dir: &std::path::Path,
) -> Result<safeguard_seal::MasterKey, String> {
    match (env_value, key_file) {
        (Some(v), _) => safeguard_seal::MasterKey::from_hex(v, safeguard_seal::ENV_VAR),
        (None, Some(path)) => safeguard_seal::MasterKey::load_or_create(path),
        (None, None) => safeguard_seal::MasterKey::resolve(None, data_dir),
    }
    .map_err(|e| e.to_string())
}

/// A sealed secret of the store's `secrets` table (`name`, sealed under `context`), opened
/// with the master key; `None` when none is stored. `what` names it in errors. Blocking.
pub(crate) fn open_secret(
    state: &AppState,
    name: &str,
    context: &[u8],
    what: &str,
) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, String> {
    let Some(sealed) = state.0.store.secret(name).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let key = state
        .0
        .exchanges
        .master_key()
        .map_err(|e| format!("the master key: {e}"))?;
    key.open(&sealed, context)
        .map(Some)
        .map_err(|e| format!("opening the stored {what}: {e}"))
}

/// The stored credentials, opened; `None` when none are stored.
fn load_credentials(state: &AppState) -> Result<Option<Credentials>, String> {
    let Some(plain) = open_secret(
        state,
        CREDENTIALS_SECRET,
        CREDENTIALS_CONTEXT,
        "NCMEC credentials",
    )?
    else {
        return Ok(None);
    };
    let v: Value = serde_json::from_slice(&plain)
        .map_err(|_| "the stored NCMEC credentials are unreadable".to_string())?;
    match (v["username"].as_str(), v["password"].as_str()) {
        (Some(u), Some(p)) => Ok(Some(Credentials::new(u, p))),
        _ => Err("the stored NCMEC credentials are unreadable".into()),
    }
}

fn client(config: &NcmecConfig, credentials: Credentials) -> Result<Client, String> {
    let mut c = ClientConfig::new(credentials);
    c.environment = match config.environment {
        NcmecEnvironment::Test => Environment::Test,
        NcmecEnvironment::Production => Environment::Production,
    };
    c.base_url = config.base_url.clone();
    Client::new(c).map_err(|e| e.to_string())
}

fn filer(state: &AppState, client: Client) -> Filer {
    let cfg = &state.0.config.reporting.ncmec;
    let journal: Arc<dyn Journal> = Arc::new(StoreJournal {
        store: state.0.store.clone(),
        owner: Some(state.0.reports.owner.clone()),
    });
    Filer::new(client, journal).with_config(FilerConfig {
        retry: RetryPolicy {
            max_attempts: cfg.max_attempts.max(1),
            initial_backoff: Duration::from_millis(cfg.initial_backoff_ms),
            max_backoff: MAX_BACKOFF,
        },
        ..FilerConfig::default()
    })
}

// ------------------------------------------------------------------ journal

/// The filer's [`Journal`] over the store: a filing's state is the JSON in its
/// `report_filings` row. The row is created by the route (with the case id) before the filer
/// first runs, so a record here only ever updates it.
#[derive(Debug, Clone)]
pub struct StoreJournal {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The lease owner of the process driving the filing: each record renews its lease and
    /// fails if another process took the filing over. `None` records without a lease.
    pub owner: Option<String>,
}

/// Runs a blocking store call from the filer (an async task): on a multi-threaded runtime
/// the worker hands its other tasks away first; elsewhere (a current-thread runtime in a
/// test) the call just runs, as it is short.
fn block<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn journal_error(filing_id: &str, message: impl std::fmt::Display) -> safeguard_ncmec::Error {
    safeguard_ncmec::Error::Journal {
        filing_id: filing_id.to_string(),
        message: message.to_string(),
    }
}

fn phase_name(phase: Phase) -> String {
    // A unit variant always serialises to its name.
    serde_json::to_value(phase)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Journal for StoreJournal {
    fn load(&self, filing_id: &str) -> safeguard_ncmec::Result<Option<FilingState>> {
        let row =
            block(|| self.store.filing(filing_id)).map_err(|e| journal_error(filing_id, e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let state: FilingState = serde_json::from_str(&row.state)
            .map_err(|e| journal_error(filing_id, format!("not a filing state: {e}")))?;
        if state.version != safeguard_ncmec::filer::STATE_VERSION {
            return Err(journal_error(
                filing_id,
                format!("state version {} is not this build's", state.version),
            ));
        }
        if state.filing_id != filing_id {
            return Err(journal_error(filing_id, "the row holds another filing"));
        }
        Ok(Some(state))
    }

    fn record(&self, filing_id: &str, state: &FilingState) -> safeguard_ncmec::Result<()> {
        let row = block(|| self.store.filing(filing_id))
            .map_err(|e| journal_error(filing_id, e))?
            .ok_or_else(|| journal_error(filing_id, "no such filing in the store"))?;
        let json = serde_json::to_string(state).map_err(|e| journal_error(filing_id, e))?;
        let phase = phase_name(state.phase);
        let report_id = state.current.as_ref().map(|c| c.report_id.as_str());
        if let Some(owner) = &self.owner {
            let now = now_ms();
            let held = block(|| {
                self.store
                    .lease_filing(filing_id, owner, now + FILING_LEASE_MS, now)
            })
            .map_err(|e| journal_error(filing_id, e))?;
            if !held {
                return Err(journal_error(
                    filing_id,
                    "another process took the filing over (its lease ran out); this one stops",
                ));
            }
        }
        block(|| {
            self.store.put_filing_state(&FilingRecord {
                id: filing_id,
                case_id: row.case_id,
                destination: &row.destination,
                state: &json,
                phase: &phase,
                report_id,
                at: now_ms(),
            })
        })
        .map_err(|e| journal_error(filing_id, e))
    }
}

// ------------------------------------------------------------------ the report

/// Everything a report is built from, read in one go from the store.
struct CaseFacts {
    case: Case,
    submissions: Vec<StoredSubmission>,
    evidence: Vec<Evidence>,
    /// Who confirmed and who approved, when the case is approved.
    approval: Option<(String, String)>,
    /// The current decision's text.
    decision: Option<String>,
    /// The reviewer's classification and annotations per item (review console).
    labels: Vec<safeguard_store::console::ItemLabel>,
}

fn case_facts(store: &dyn Store, id: CaseId) -> ApiResult<CaseFacts> {
    let case = store
        .case(id)?
        .ok_or(safeguard_engine::Error::CaseNotFound(id))?;
    let history = store.case_history(id)?;
    let decided = decision_line(&history);
    let decision = decided
        .and_then(|h| h.decision.clone())
        .or_else(|| case.decision.clone());
    let approval = match (decided, current_approval(&history)) {
        (Some(d), Some(a)) => Some((d.actor.clone(), a.actor.clone())),
        _ => None,
    };
    Ok(CaseFacts {
        submissions: store.case_submissions(id)?,
        evidence: store.case_evidence(id)?,
        labels: store.item_labels(id)?,
        case,
        approval,
        decision,
    })
}

fn context(s: &StoredSubmission) -> Value {
    serde_json::from_str(&s.context).unwrap_or(Value::Null)
}

/// The platform's `created_at` (Unix seconds), if it gave one that can be true: an upload
/// cannot come after Safeguard received the item, so a later time (a platform clock running
/// ahead, a bad field) is not used: NCMEC refuses an incident time in the future, and a
/// report built from such a time could never be filed. Zero or less is a placeholder, not
/// an upload time, and is not used either.
pub(crate) fn platform_upload_time(s: &StoredSubmission) -> Option<Timestamp> {
    let received = s.created_at.div_euclid(1000);
    context(s)["created_at"]
        .as_i64()
        .filter(|&t| t > 0 && t <= received)
        .map(Timestamp)
}

/// When the item was uploaded: the platform's `created_at` where it is usable
/// ([`platform_upload_time`]), else when Safeguard recorded it.
fn upload_time(s: &StoredSubmission) -> Timestamp {
    platform_upload_time(s).unwrap_or(Timestamp(s.created_at.div_euclid(1000)))
}

fn upload_ip(s: &StoredSubmission) -> Option<IpCaptureEvent> {
    let ip = context(s)["ip"].as_str()?.to_string();
    ip.parse::<std::net::IpAddr>().ok()?;
    Some(IpCaptureEvent {
        ip_address: ip,
        event_name: Some(EventName::Upload),
        date_time: Some(upload_time(s)),
        possible_proxy: None,
        port: None,
    })
}

fn classification(text: &str) -> Option<IndustryClassification> {
    match text.trim().to_ascii_uppercase().as_str() {
        "A1" => Some(IndustryClassification::A1),
        "A2" => Some(IndustryClassification::A2),
        "B1" => Some(IndustryClassification::B1),
        "B2" => Some(IndustryClassification::B2),
        _ => None,
    }
}

/// CyberTipline's file annotations from the names the review console records.
fn file_annotations(names: &[String]) -> safeguard_ncmec::model::FileAnnotations {
    let has = |n: &str| names.iter().any(|a| a == n);
    safeguard_ncmec::model::FileAnnotations {
        anime_drawing_virtual_hentai: has("animeDrawingVirtualHentai"),
        potential_meme: has("potentialMeme"),
        viral: has("viral"),
        possible_self_production: has("possibleSelfProduction"),
        physical_harm: has("physicalHarm"),
        violence_gore: has("violenceGore"),
        bestiality: has("bestiality"),
        live_streaming: has("liveStreaming"),
        infant: has("infant"),
        generative_ai: has("generativeAi"),
    }
}

/// The industry classification of a file: the reviewer's (`confirmed: A1`), else the first
/// match of its submission that carries one.
fn file_classification(
    decision: Option<&str>,
    s: Option<&StoredSubmission>,
) -> Option<IndustryClassification> {
    let from_decision = decision
        .and_then(|d| d.split_once(':'))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(classification);
    from_decision.or_else(|| {
        let result: Value = serde_json::from_str(&s?.result).ok()?;
        result["matches"]
            .as_array()?
            .iter()
            .find_map(|m| m["classification"].as_str().and_then(classification))
    })
}

/// The `<report>` for a case: incident type and platform from the configuration, the
/// earliest upload as the incident time, the reporting person, and the account with the
/// upload addresses its items came from.
fn build_report(cfg: &NcmecConfig, f: &CaseFacts) -> ApiResult<Report> {
    let incident = cfg.incident().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "reporting_not_configured",
            "reporting.ncmec.incident_type is not one of NCMEC's",
        )
    })?;
    let first = f.submissions.iter().min_by_key(|s| upload_time(s));
    let (when, described) = match first {
        Some(s) if platform_upload_time(s).is_some() => (
            upload_time(s),
            "Upload time the platform recorded for the earliest item",
        ),
        Some(s) => (
            upload_time(s),
            "Time the earliest item was submitted for matching",
        ),
        None => (
            Timestamp(f.case.opened_at.div_euclid(1000)),
            "Time the case was opened",
        ),
    };
    let person = Person {
        first_name: cfg.reporter_first_name.clone(),
        last_name: cfg.reporter_last_name.clone(),
        emails: cfg
            .reporter_email
            .iter()
            .map(|e| Contact::new(e.clone()))
            .collect(),
        ..Person::default()
    };
    let mut report = Report::new(incident, when, person);
    report.incident_summary.platform = cfg.platform.clone();
    report.incident_summary.incident_date_time_description = Some(described.into());
    report.reporter.legal_url = cfg.legal_url.clone();
    if let Some(account) = &f.case.account {
        let mut seen = HashSet::new();
        report.person_or_user_reported = Some(UserDetails {
            esp_identifier: Some(account.clone()),
            esp_service: cfg.platform.clone(),
            ip_capture_events: f
                .submissions
                .iter()
                .filter_map(upload_ip)
                .filter(|e| seen.insert((e.ip_address.clone(), e.date_time)))
                .collect(),
            ..UserDetails::default()
        });
    }
    report.additional_info = Some(format!(
        "{} item(s) reviewed and confirmed by one person and approved by another.",
        f.submissions.len()
    ));
    Ok(report)
}

/// A file extension from the content's first bytes, else from the evidence's media kind.
pub(crate) fn extension(bytes: &[u8], media_kind: &str) -> &'static str {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => "jpg",
        [0x89, b'P', b'N', b'G', ..] => "png",
        [b'G', b'I', b'F', b'8', ..] => "gif",
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => "webp",
        [b'B', b'M', ..] => "bmp",
        [b'I', b'I', 0x2A, 0, ..] | [b'M', b'M', 0, 0x2A, ..] => "tif",
        [_, _, _, _, b'f', b't', b'y', b'p', ..] => "mp4",
        [0x1A, 0x45, 0xDF, 0xA3, ..] => "webm",
        _ if media_kind == "video" => "video",
        _ => "bin",
    }
}

/// One file per live evidence object of the case, decrypted from the vault. Each read is
/// logged (`system:ncmec`, `export`) before the bytes are used; whether a person viewed the
/// file is read from the access log first, counting people's reads only.
async fn build_files(state: &AppState, f: &CaseFacts) -> Result<Vec<FilingFile>, Failure> {
    let live: Vec<&Evidence> = f
        .evidence
        .iter()
        .filter(|e| e.wrapped_key.is_some())
        .collect();
    if live.is_empty() {
        return Ok(Vec::new());
    }
    let vault = state
        .vault()
        .await
        .map_err(|e| Failure::new("vault_unavailable", e.message))?;
    let mut out = Vec::with_capacity(live.len());
    for ev in live {
        let store = state.0.store.clone();
        let oid = ev.object_id.clone();
        let viewed = tokio::task::spawn_blocking(move || -> safeguard_store::Result<bool> {
            let viewed = store
                .access_log(&oid)?
                .iter()
                // A person's read through the API, or a reveal in the review console (media
                // shown blurred there does not count as viewed).
                .any(|(_, actor, action)| {
                    (action == "read" || action == "reveal") && !actor.starts_with("system:")
                });
            store.log_access(SYSTEM_ACTOR, "export", &oid, now_ms())?;
            Ok(viewed)
        })
        .await
        .map_err(|e| Failure::new("filing_failed", e.to_string()))?
        .map_err(|e| Failure::new("filing_failed", e.to_string()))?;
        // Filtered to live evidence above.
        let obj = crate::action::sealed_object(ev, ev.wrapped_key.clone().unwrap_or_default());
        let content = vault.get(&obj).await.map_err(|e| {
            tracing::error!(error = %e, object = %ev.object_id, "evidence read for a report failed");
            Failure::new("vault_error", "the evidence could not be read; see the server log")
        })?;
        let sub = f.submissions.iter().find(|s| s.id == ev.submission_id);
        let label = f.labels.iter().find(|l| l.object_id == ev.object_id);
        let surface = sub.map(context);
        let publicly_available = surface
            .as_ref()
            .and_then(|c| c["surface"].as_str())
            .map(|s| s == "public");
        let details = FileDetails {
            uploaded_to_esp_timestamp: sub.map(upload_time),
            file_viewed_by_esp: Some(viewed),
            publicly_available,
            file_relevance: Some(FileRelevance::Reported),
            // The reviewer's per-item classification first, then the decision's, then
            // the hotline's.
            industry_classification: label
                .and_then(|l| classification(&l.classification))
                .or_else(|| file_classification(f.decision.as_deref(), sub)),
            file_annotations: label
                .map(|l| file_annotations(&l.annotations))
                .unwrap_or_default(),
            original_file_hashes: vec![
                FileHash {
                    hash_type: "MD5".into(),
                    value: ev.md5.clone(),
                },
                FileHash {
                    hash_type: "SHA256".into(),
                    value: ev.sha256.clone(),
                },
            ],
            ip_capture_event: sub.and_then(upload_ip),
            ..FileDetails::default()
        };
        out.push(FilingFile {
            name: format!("{}.{}", ev.object_id, extension(&content, &ev.media_kind)),
            content,
            details,
        });
    }
    Ok(out)
}

/// Whether the case may be filed: a confirmed decision approved by a second person.
fn check_approved(f: &CaseFacts) -> ApiResult<()> {
    let confirmed = f.decision.as_deref().map(DecisionKind::of) == Some(DecisionKind::Confirmed);
    let state_ok =
        f.case.state == CaseState::Decided.as_str() || f.case.state == CaseState::Reported.as_str();
    if confirmed && state_ok && f.approval.is_some() {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "approval_required",
        format!(
            "case {} is filed only once decided `confirmed` and approved by a second person \
             (POST /v1/cases/{}/approve); it is {}{}",
            f.case.id,
            f.case.id,
            f.case.state,
            if f.approval.is_none() {
                ", without an approval"
            } else {
                ""
            }
        ),
    ))
}

// ------------------------------------------------------------------ running a filing

/// Why a run stopped: a stable code and a message (never credentials).
#[derive(Debug)]
struct Failure {
    code: &'static str,
    message: String,
}

impl Failure {
    fn new(code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl From<safeguard_ncmec::Error> for Failure {
    fn from(e: safeguard_ncmec::Error) -> Failure {
        use safeguard_ncmec::Error as E;
        let code = match &e {
            E::InvalidReport { .. } => "report_invalid",
            E::SamePerson | E::NotApproved => "approval_required",
            E::Config(_) => "reporting_not_configured",
            E::Refused { .. } => "ncmec_refused",
            E::HashMismatch { .. } => "ncmec_hash_mismatch",
            E::Journal { .. } => "filing_journal_error",
            E::Retracted(_) => "filing_retracted",
            E::AlreadyFinished(_) => "report_already_finished",
            E::TooManyReports { .. } => "ncmec_too_many_reports",
            _ => "ncmec_unavailable",
        };
        Failure::new(code, e.to_string())
    }
}

/// Builds the filing of `filing_id` from its case, as it stands now.
async fn prepare(state: &AppState, filing_id: &str, case_id: CaseId) -> Result<Filing, Failure> {
    let store = state.0.store.clone();
    let facts = blocking(move || case_facts(store.as_ref(), case_id))
        .await
        .map_err(|e| Failure::new(e.code, e.message))?;
    let cfg = &state.0.config.reporting.ncmec;
    let report = build_report(cfg, &facts).map_err(|e| Failure::new(e.code, e.message))?;
    let approval = match &facts.approval {
        Some((confirmed, approved)) => Some(Approval::new(confirmed, approved)?),
        None => None,
    };
    let files = build_files(state, &facts).await?;
    Ok(Filing {
        id: filing_id.to_string(),
        report,
        files,
        approval,
    })
}

async fn drive(state: &AppState, filing_id: &str, case_id: CaseId) -> Result<FiledReport, Failure> {
    let st = state.clone();
    let credentials = tokio::task::spawn_blocking(move || load_credentials(&st))
        .await
        .map_err(|e| Failure::new("filing_failed", e.to_string()))?
        .map_err(|e| Failure::new("reporting_not_configured", e))?
        .ok_or_else(|| {
            Failure::new(
                "reporting_not_configured",
                "no NCMEC credentials are stored (safeguard report ncmec-credentials)",
            )
        })?;
    let client = client(&state.0.config.reporting.ncmec, credentials)
        .map_err(|e| Failure::new("reporting_not_configured", e))?;
    let filing = prepare(state, filing_id, case_id).await?;
    Ok(filer(state, client).run(&filing).await?)
}

/// Files (or resumes) `filing_id` unless a task of this process is already driving it, then
/// runs the steps that follow NCMEC's confirmation, or records the failure.
async fn run(state: AppState, filing_id: String, case_id: CaseId) {
    let Some(_claim) = state.0.reports.claim(&filing_id) else {
        return;
    };
    // Of several processes on one database (each resumes unfinished filings as it starts),
    // only the one holding the filing's lease drives it.
    match lease(&state, &filing_id).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(filing = %filing_id, "another process is driving this filing");
            return;
        }
        Err(e) => {
            tracing::error!(filing = %filing_id, error = %e.message, "cannot take the filing's lease");
            return;
        }
    }
    let heartbeat = {
        let (state, id) = (state.clone(), filing_id.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(FILING_HEARTBEAT).await;
                match lease(&state, &id).await {
                    Ok(true) => {}
                    // The next step the filer records fails and stops this run.
                    Ok(false) => {
                        tracing::warn!(filing = %id, "the filing's lease passed to another process")
                    }
                    Err(e) => {
                        tracing::warn!(filing = %id, error = %e.message, "cannot renew the filing's lease")
                    }
                }
            }
        })
    };
    run_leased(&state, &filing_id, case_id).await;
    heartbeat.abort();
    release(&state, &filing_id).await;
}

/// Takes or renews this process's lease of a filing.
async fn lease(state: &AppState, filing_id: &str) -> ApiResult<bool> {
    let (store, id, owner) = (
        state.0.store.clone(),
        filing_id.to_string(),
        state.0.reports.owner.clone(),
    );
    blocking(move || {
        let now = now_ms();
        Ok(store.lease_filing(&id, &owner, now + FILING_LEASE_MS, now)?)
    })
    .await
}

/// Gives up this process's lease of a filing, so another may resume it at once.
async fn release(state: &AppState, filing_id: &str) {
    let (store, id, owner) = (
        state.0.store.clone(),
        filing_id.to_string(),
        state.0.reports.owner.clone(),
    );
    if let Err(e) = blocking(move || Ok(store.release_filing(&id, &owner)?)).await {
        tracing::warn!(filing = %filing_id, error = %e.message, "cannot give up the filing's lease");
    }
}

async fn run_leased(state: &AppState, filing_id: &str, case_id: CaseId) {
    let state = state.clone();
    let filing_id = filing_id.to_string();
    tracing::info!(filing = %filing_id, case = case_id, "filing to NCMEC");
    match drive(&state, &filing_id, case_id).await {
        Ok(filed) => {
            if let Err(e) = after_filed(&state, &filed, case_id).await {
                tracing::error!(filing = %filing_id, error = %e.message, "report filed; follow-up steps failed");
                record_error(&state, &filing_id, &e).await;
            }
        }
        Err(e) => {
            tracing::warn!(filing = %filing_id, code = e.code, error = %e.message, "filing to NCMEC stopped");
            record_error(&state, &filing_id, &e).await;
            let data = json!({
                "case_id": case_id, "filing_id": filing_id, "destination": DESTINATION,
                "code": e.code,
            });
            let st = state.clone();
            let (fid, code) = (filing_id.clone(), e.code);
            let _ = blocking(move || {
                st.0.store
                    .append_events(&[new_event(EVENT_REPORT_FAILED, data)], now_ms())?;
                st.notify_webhooks();
                st.audit_after(SYSTEM_ACTOR, Action::ReportFailed, &fid, code);
                Ok(())
            })
            .await
            .map_err(|e| tracing::error!(error = %e.message, "recording a failed filing"));
        }
    }
}

async fn record_error(state: &AppState, filing_id: &str, e: &Failure) {
    let store = state.0.store.clone();
    let (id, text) = (filing_id.to_string(), format!("{}: {}", e.code, e.message));
    let r = blocking(move || Ok(store.set_filing_error(&id, Some(&text), now_ms())?)).await;
    if let Err(err) = r {
        tracing::error!(filing = %filing_id, error = %err.message, "cannot record the filing's error");
    }
}

/// After NCMEC confirmed the report: seal the transcript in the vault, move the case to
/// `reported`, announce and audit it, and record the transcript (last, so that a crash
/// before it repeats these steps at the next start rather than skipping them).
async fn after_filed(
    state: &AppState,
    filed: &FiledReport,
    case_id: CaseId,
) -> Result<(), Failure> {
    let fail = |e: ApiError| Failure::new("filing_followup_failed", e.message);
    let store = state.0.store.clone();
    let fid = filed.filing_id.clone();
    let row = blocking(move || Ok(store.filing(&fid)?))
        .await
        .map_err(fail)?;
    if row.as_ref().is_some_and(|r| r.transcript.is_some()) {
        return Ok(());
    }
    let transcript = json!({
        "filing_id": filed.filing_id,
        "destination": DESTINATION,
        "case_id": case_id,
        "report_id": filed.report_id,
        "file_ids": filed.file_ids,
        "report_xml": filed.report_xml,
        "file_details_xml": filed.file_details_xml,
        "transcript": filed.transcript,
        "abandoned": filed.abandoned,
    });
    let vault = state.vault().await.map_err(fail)?;
    let object_id = format!("transcript:{}", filed.filing_id);
    let sealed = vault
        .put(&object_id, transcript.to_string().as_bytes())
        .await
        .map_err(|e| Failure::new("vault_error", e.to_string()))?;
    let sealed = serde_json::to_string(&sealed)
        .map_err(|e| Failure::new("filing_followup_failed", e.to_string()))?;
    let st = state.clone();
    let done = filed.clone();
    blocking(move || {
        let store = st.0.store.clone();
        let case = store
            .case(case_id)?
            .ok_or(safeguard_engine::Error::CaseNotFound(case_id))?;
        if case.state != CaseState::Reported.as_str() {
            st.actioner()?.transition(
                case_id,
                CaseState::Reported,
                SYSTEM_ACTOR,
                Some(format!(
                    "NCMEC CyberTipline report {} (filing {})",
                    done.report_id, done.filing_id
                )),
                None,
            )?;
        }
        let data = json!({
            "case_id": case_id,
            "filing_id": done.filing_id,
            "destination": DESTINATION,
            "report_id": done.report_id,
            "files": done.file_ids.len(),
        });
        store.append_events(&[new_event(EVENT_REPORT_FILED, data)], now_ms())?;
        st.notify_webhooks();
        st.audit_after(
            SYSTEM_ACTOR,
            Action::ReportFiled,
            &done.filing_id,
            &format!(
                "case {case_id}; NCMEC report {}; {} file(s)",
                done.report_id,
                done.file_ids.len()
            ),
        );
        let now = now_ms();
        store.set_filing_transcript(&done.filing_id, &sealed, now)?;
        store.set_filing_error(&done.filing_id, None, now)?;
        Ok(())
    })
    .await
    .map_err(fail)?;
    tracing::info!(filing = %filed.filing_id, case = case_id, report = %filed.report_id, "report filed with NCMEC");
    Ok(())
}

/// Resumes every filing with work left (a server start on a curator or `all` process): the
/// filer picks each up where its journal stopped. Retracting filings are left for
/// `POST /v1/reports/{id}/retract`, which finishes the withdrawal.
pub fn resume(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        let store = state.0.store.clone();
        let pending = match blocking(move || Ok(store.unfinished_filings()?)).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e.message, "cannot list unfinished report filings");
                return;
            }
        };
        let pending: Vec<ReportFiling> = pending
            .into_iter()
            .filter(|f| f.destination == DESTINATION && f.phase != "retracting")
            .collect();
        if pending.is_empty() {
            return;
        }
        if !state.0.config.reporting.ncmec.enabled {
            tracing::warn!(
                filings = pending.len(),
                "unfinished NCMEC filings, but reporting.ncmec is not enabled; not resumed"
            );
            return;
        }
        for f in pending {
            tracing::info!(filing = %f.id, phase = %f.phase, "resuming an NCMEC filing");
            tokio::spawn(run(state.clone(), f.id, f.case_id));
        }
    });
}

// ------------------------------------------------------------------ routes

/// Routes needing the `admin` scope.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/cases/{id}/reports/ncmec/preview", get(preview))
        .route("/v1/cases/{id}/reports/ncmec", post(file))
        .route("/v1/reports/{id}", get(filing_get))
        .route("/v1/reports/{id}/retract", post(retract))
}

pub(crate) fn not_configured(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "reporting_not_configured", message)
}

async fn preview(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<CaseId>,
) -> ApiResult<Response> {
    let store = state.0.store.clone();
    let facts = blocking(move || case_facts(store.as_ref(), id)).await?;
    let report = build_report(&state.0.config.reporting.ncmec, &facts)?;
    let xml = report.to_xml(Timestamp::now()).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "report_invalid",
            e.to_string(),
        )
    })?;
    let mut resp = xml.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

async fn file(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<CaseId>,
    Extension(key): Extension<crate::auth::KeyId>,
) -> ApiResult<Response> {
    let store = state.0.store.clone();
    let facts = blocking(move || case_facts(store.as_ref(), id)).await?;
    check_approved(&facts)?;
    let cfg = &state.0.config.reporting.ncmec;
    if !cfg.enabled {
        return Err(not_configured(
            "filing to NCMEC is off: set [reporting.ncmec] enabled = true (docs/reporting.md)",
        ));
    }
    let store = state.0.store.clone();
    if blocking(move || Ok(store.secret(CREDENTIALS_SECRET)?))
        .await?
        .is_none()
    {
        return Err(not_configured(
            "no NCMEC credentials are stored: run `safeguard report ncmec-credentials`",
        ));
    }
    // After the checks that can refuse for the configuration, so a step that could not have
    // filed does not fix the case's referral.
    let st = state.clone();
    blocking(move || crate::referral::require(&st, id, crate::referral::Destination::Ncmec))
        .await?;
    // One filing per case: the newest one not retracted, else a new one.
    let _creating = state.0.reports.create.lock().await;
    let store = state.0.store.clone();
    let filings = blocking(move || Ok(store.case_filings(id)?)).await?;
    let ours: Vec<&ReportFiling> = filings
        .iter()
        .filter(|f| f.destination == DESTINATION)
        .collect();
    if let Some(f) = ours.iter().rev().find(|f| f.phase != "retracted") {
        let done = f.is_final() && f.transcript.is_some();
        if !done && f.phase != "retracting" && !state.0.reports.is_running(&f.id) {
            tokio::spawn(run(state.clone(), f.id.clone(), id));
        }
        let status = if done {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        };
        return Ok((status, Json(json!({"filing_id": f.id, "state": f.phase}))).into_response());
    }
    let filing_id = format!("ncmec-case-{id}-{}", ours.len() + 1);
    let initial = serde_json::to_string(&FilingState::new(&filing_id))
        .map_err(|e| ApiError::internal(format!("serialising a filing state: {e}")))?;
    let store = state.0.store.clone();
    let fid = filing_id.clone();
    let created = blocking(move || {
        Ok(store.create_filing(&FilingRecord {
            id: &fid,
            case_id: id,
            destination: DESTINATION,
            state: &initial,
            phase: "prepared",
            report_id: None,
            at: now_ms(),
        })?)
    })
    .await?;
    if !created {
        // Another process created this filing a moment ago: it is the case's filing, driven
        // by whichever process holds its lease.
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"filing_id": filing_id, "state": "prepared"})),
        )
            .into_response());
    }
    tracing::info!(filing = %filing_id, case = id, by = %key.0, "NCMEC filing requested");
    tokio::spawn(run(state.clone(), filing_id.clone(), id));
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"filing_id": filing_id, "state": "prepared"})),
    )
        .into_response())
}

async fn filing_row(state: &AppState, id: &str) -> ApiResult<ReportFiling> {
    let store = state.0.store.clone();
    let fid = id.to_string();
    blocking(move || Ok(store.filing(&fid)?))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "filing_not_found",
                format!("no filing {}", crate::extract::short(id)),
            )
        })
}

/// A filing as the API shows it: where it stands and NCMEC's ids; never credentials.
fn filing_json(state: &AppState, f: &ReportFiling) -> Value {
    let parsed: Option<FilingState> = serde_json::from_str(&f.state).ok();
    let files: Vec<Value> = parsed
        .as_ref()
        .and_then(|s| s.current.as_ref())
        .map(|c| {
            c.files
                .iter()
                .map(|p| json!({"name": p.name, "file_id": p.file_id, "md5": p.md5}))
                .collect()
        })
        .unwrap_or_default();
    let file_ids: Vec<&Value> = files
        .iter()
        .map(|f| &f["file_id"])
        .filter(|v| !v.is_null())
        .collect();
    json!({
        "filing_id": f.id,
        "case_id": f.case_id,
        "destination": f.destination,
        "phase": f.phase,
        "report_id": f.report_id,
        "file_ids": file_ids,
        "files": files,
        "abandoned": parsed.as_ref().map(|s| json!(s.abandoned)).unwrap_or(json!([])),
        "last_error": f.last_error,
        "transcript_stored": f.transcript.is_some(),
        "in_progress": state.0.reports.is_running(&f.id),
        "created_at": f.created_at,
        "updated_at": f.updated_at,
    })
}

async fn filing_get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let f = filing_row(&state, &id).await?;
    Ok(Json(filing_json(&state, &f)))
}

async fn retract(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    Extension(key): Extension<crate::auth::KeyId>,
) -> ApiResult<Json<Value>> {
    let f = filing_row(&state, &id).await?;
    let busy = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "filing_in_progress",
            "the filing is running now; retry once it stopped (GET /v1/reports/{id})",
        )
    };
    let Some(claim) = state.0.reports.claim(&f.id) else {
        return Err(busy());
    };
    if !lease(&state, &f.id).await? {
        return Err(busy());
    }
    let result = retract_leased(&state, &f, &key).await;
    release(&state, &f.id).await;
    drop(claim);
    result?;
    let f = filing_row(&state, &id).await?;
    Ok(Json(filing_json(&state, &f)))
}

async fn retract_leased(
    state: &AppState,
    f: &ReportFiling,
    key: &crate::auth::KeyId,
) -> ApiResult<()> {
    let st = state.clone();
    let credentials = blocking(move || load_credentials(&st).map_err(not_configured))
        .await?
        .ok_or_else(|| not_configured("no NCMEC credentials are stored"))?;
    let client = client(&state.0.config.reporting.ncmec, credentials).map_err(not_configured)?;
    match filer(state, client).retract(&f.id).await {
        Ok(_) => {}
        Err(safeguard_ncmec::Error::AlreadyFinished(_)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "report_already_finished",
                "the report is finished at NCMEC; a finished report cannot be retracted",
            ))
        }
        Err(e) => {
            let failure = Failure::from(e);
            record_error(state, &f.id, &failure).await;
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "ncmec_unavailable",
                format!("the retraction did not go through: {}", failure.message),
            ));
        }
    }
    let st = state.clone();
    let (fid, actor, case_id) = (f.id.clone(), key.0.clone(), f.case_id);
    blocking(move || {
        st.audit_after(
            &actor,
            Action::ReportRetracted,
            &fid,
            &format!("case {case_id}"),
        );
        Ok(())
    })
    .await?;
    Ok(())
}
