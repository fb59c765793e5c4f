//! NCMEC CyberTipline filing.
//!
//! The pieces, in the order a report meets them:
//! - [`model`]: the `<report>` and `<fileDetails>` documents as typed values, validated and
//!   written as XML in the XSD's element order (NCMEC rejects a report whose elements are out
//!   of order with responseCode 4100).
//! - [`response`]: NCMEC's answers (`<reportResponse>`, `<reportDoneResponse>`) parsed, and
//!   every responseCode sorted into what the caller can do about it ([`CodeClass`]).
//! - [`client`]: one HTTP call per endpoint (`/submit`, `/upload`, `/fileinfo`, `/finish`,
//!   `/retract`, `/status`) with Basic auth, timeouts, a cap on the answer's size, and the
//!   `Request-ID` header kept.
//! - [`filer`]: the durable state machine that files one report with its files, writing every
//!   step and every id NCMEC returns to a [`Journal`] before the next step starts, so that a
//!   crash at any point resumes without filing twice.
//! - [`journal`]: [`FileJournal`], one JSON file per filing, written atomically.
//!
//! With the `test-server` feature the crate also carries [`testserver`], a local CyberTipline
//! on a real socket with fault injection, for this crate's tests and other crates' tests.

#![forbid(unsafe_code)]

pub mod client;
pub mod filer;
pub mod journal;
pub mod model;
pub mod response;
#[cfg(feature = "test-server")]
pub mod testserver;
mod time;
mod xml;

pub use client::{Answer, Client, ClientConfig, Credentials, Environment};
pub use filer::{
    AbandonedReport, Approval, Exchange, FileProgress, FiledReport, Filer, FilerConfig, Filing,
    FilingFile, FilingState, Journal, OpenReport, Phase, RetryPolicy,
};
pub use journal::FileJournal;
pub use model::{FileDetails, Report};
pub use response::{CodeClass, Response, ResponseCode};
pub use time::{Clock, SystemClock, Timestamp};

/// What can go wrong while building, sending or journaling a report.
///
/// Three families, which callers treat differently: bad input ([`Error::InvalidReport`],
/// [`Error::SamePerson`], [`Error::NotApproved`], [`Error::Config`]) is fixed by changing the
/// filing; a refusal by NCMEC ([`Error::Refused`]) carries the responseCode and its
/// [`CodeClass`]; transport faults ([`Error::Transport`], [`Error::Http`],
/// [`Error::MalformedResponse`], [`Error::ResponseTooLarge`]) are retried by the filer.
/// [`Error::is_retryable`] says which is which.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The report or file details break a rule of the schema or of this crate; `field` is the
    /// element path (for example `report/incidentSummary/escalateToHighPriority`).
    #[error("invalid report: {field}: {reason}")]
    InvalidReport {
        /// The element (path) at fault.
        field: String,
        /// What is wrong and what to do instead.
        reason: String,
    },
    /// The person who confirmed the material and the person approving the report are the
    /// same: a report to NCMEC needs two people.
    #[error("the report must be approved by someone other than the person who confirmed it")]
    SamePerson,
    /// The filing carries no approval, so it is not sent (nothing is opened at NCMEC).
    #[error("the filing has no approval; a report is only sent once a second person approved it")]
    NotApproved,
    /// The client or filer configuration is unusable; the message says which value.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// NCMEC answered with a responseCode other than 0.
    #[error("NCMEC refused {endpoint}: responseCode {code} ({description}){}", request_id_suffix(.request_id))]
    Refused {
        /// The endpoint, for example `/submit`.
        endpoint: &'static str,
        /// The responseCode.
        code: ResponseCode,
        /// The responseDescription NCMEC sent, or the code's meaning when it sent none.
        description: String,
        /// The `Request-ID` header of the answer, for NCMEC's support.
        request_id: Option<String>,
        /// The HTTP status of the answer.
        status: u16,
        /// The answer's body as received, for the filing's transcript.
        body: String,
    },
    /// An HTTP status other than 2xx without a parseable NCMEC answer.
    #[error("{endpoint} answered HTTP {status}{}", request_id_suffix(.request_id))]
    Http {
        /// The endpoint.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// The `Request-ID` header, if there was one.
        request_id: Option<String>,
    },
    /// The request failed below HTTP: refused connection, reset, timeout.
    #[error("{endpoint}: {message}")]
    Transport {
        /// The endpoint.
        endpoint: &'static str,
        /// What happened, with the causes.
        message: String,
        /// Whether NCMEC may have received and acted on the request: false only when the
        /// connection was never made. An upload that may have arrived cannot be retried on
        /// the same report without risking a duplicate file (see [`filer`]).
        maybe_delivered: bool,
    },
    /// The answer was longer than [`client::MAX_RESPONSE_BYTES`].
    #[error("{endpoint}: the answer is longer than {limit} bytes")]
    ResponseTooLarge {
        /// The endpoint.
        endpoint: &'static str,
        /// The cap, bytes.
        limit: usize,
    },
    /// The answer is not the XML NCMEC documents.
    #[error("{endpoint}: unreadable answer: {reason}")]
    MalformedResponse {
        /// The endpoint.
        endpoint: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// NCMEC's MD5 of an uploaded file differs from ours: the file was damaged on the way.
    #[error("uploaded file {file_name}: NCMEC's MD5 {remote} differs from the local {local}")]
    HashMismatch {
        /// The file.
        file_name: String,
        /// MD5 computed here, lower-case hex.
        local: String,
        /// MD5 NCMEC returned.
        remote: String,
    },
    /// The journal could not load or record a filing's state; the filer stops, since going
    /// on without a durable record could file twice.
    #[error("journal for filing {filing_id}: {message}")]
    Journal {
        /// The filing.
        filing_id: String,
        /// What failed.
        message: String,
    },
    /// The filing was retracted earlier; it is not filed again under the same id.
    #[error("filing {0} was retracted")]
    Retracted(String),
    /// The filing's report was finished; it can no longer be retracted.
    #[error("filing {0} is already finished at NCMEC; a finished report cannot be retracted")]
    AlreadyFinished(String),
    /// One run opened [`filer::MAX_REPORTS_PER_RUN`] reports and had to give each up; the
    /// last reason says why (for example an upload that keeps timing out).
    #[error(
        "gave up after opening {reports} reports; the last was abandoned because {last_reason}"
    )]
    TooManyReports {
        /// Reports opened in this run.
        reports: u32,
        /// Why the last one was abandoned.
        last_reason: String,
    },
    /// A retryable fault persisted past the retry budget; `last` is the final attempt's error.
    #[error("{endpoint}: gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// The endpoint.
        endpoint: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: Box<Error>,
    },
}

fn request_id_suffix(request_id: &Option<String>) -> String {
    match request_id {
        Some(id) => format!(" [Request-ID {id}]"),
        None => String::new(),
    }
}

impl Error {
    /// Whether trying the same call again may succeed: transport faults, HTTP 5xx and the
    /// responseCodes NCMEC documents as server-side failures (1000, 1100, 1110, 1111, 1300).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Refused { code, .. } => code.class() == CodeClass::Retryable,
            Error::Http { status, .. } => *status >= 500,
            Error::Transport { .. } | Error::MalformedResponse { .. } => true,
            _ => false,
        }
    }

    /// The responseCode's class when NCMEC refused the call.
    pub fn code_class(&self) -> Option<CodeClass> {
        match self {
            Error::Refused { code, .. } => Some(code.class()),
            Error::RetriesExhausted { last, .. } => last.code_class(),
            _ => None,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::InvalidReport {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
