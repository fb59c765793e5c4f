//! UK NCA reporting under the Online Safety Act 2023 s.66 and the Online Safety (CSEA Content
//! Reporting by Regulated User-to-User Service Providers) Regulations, SI 2026/268.
//!
//! The regulations as this crate reads them (second-hand; see docs/reporting.md, "UK: NCA
//! reporting"; verify against the legislation before relying on details):
//!
//! - reg 6(2): reports go to the NCA through its online portal or an API. No API specification
//!   has been published, so a report can leave either as an [`bundle`] (signed, encrypted, for a
//!   person to upload by hand) or through the configurable [`transport`] (awaiting the NCA's
//!   specification).
//! - reg 6(4)(a) and Schedule 1: the information to include "where available" ([`report`]).
//! - reg 6(6)–(7): the priority level of a report and how soon it must be sent ([`priority`]).
//! - reg 8: how long the NCA's reference, the content and the information sent are kept
//!   ([`retention`]); the reference itself is a [`NcaReference`].
//!
//! Time is Unix milliseconds (UTC) throughout, passed in by the caller, so that every clock
//! here can be tested with injected time.

#![forbid(unsafe_code)]

pub mod bundle;
pub mod priority;
pub mod reference;
pub mod report;
pub mod retention;
#[cfg(feature = "test-server")]
pub mod test_server;
pub mod transport;

mod timefmt;

pub use bundle::{open_bundle, seal_bundle, BundleContents, ContentFile};
pub use priority::{Assessment, DeadlineClock, PriorityConfig, PriorityFacts, PriorityLevel};
pub use reference::NcaReference;
pub use report::Report;
pub use retention::{retention_deadlines, RetentionDeadlines};
pub use transport::{ApiTransport, BearerToken, RetryPolicy, Trust};

/// The age crate, for the bundle's recipient and identity types (`age::x25519`).
pub use age;
/// The Ed25519 crate, for the organisation's signing and verifying keys.
pub use ed25519_dalek;

/// Milliseconds since the Unix epoch, UTC.
pub type UnixMs = i64;

/// What can go wrong in this crate. Bad input (a report, a configuration, a bundle someone
/// altered) is kept apart from cryptographic failures and from the network, because the
/// caller's answer differs: fix the data, check the keys, or try again later.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field of a report (or another value given to this crate) is not acceptable.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field, as a path into the report (`content[0].upload_port`).
        field: String,
        /// What is wrong with it, phrased as what to fix.
        reason: String,
    },
    /// The priority configuration (TOML) does not parse or does not make sense.
    #[error("priority configuration: {0}")]
    Config(String),
    /// JSON that should hold a report (or an API answer) does not parse.
    #[error("malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Encryption failed, or the bundle does not decrypt with the identity given (it was
    /// encrypted to someone else, or the encrypted file was altered).
    #[error("bundle encryption: {0}")]
    Crypto(String),
    /// The bundle decrypted but its signature does not verify under the organisation's key:
    /// it was signed by another key, or its contents were altered after signing.
    #[error("bundle signature does not verify: signed by another key, or altered after signing")]
    BadSignature,
    /// The bundle's plaintext is not a well-formed bundle: a missing or extra member, a hash
    /// that does not match the signed manifest, a limit exceeded.
    #[error("bundle is corrupt: {0}")]
    Corrupt(String),
    /// The NCA's API refused the credentials (HTTP 401 or 403).
    #[error("the NCA API refused the credentials (HTTP {status}): {message}")]
    Auth {
        /// The HTTP status.
        status: u16,
        /// The answer's message, truncated to [`transport::ERROR_BODY_MAX`].
        message: String,
    },
    /// The NCA's API rejected the report (another 4xx): not retried, the report must change.
    #[error("the NCA API rejected the report (HTTP {status}): {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The answer's message, truncated to [`transport::ERROR_BODY_MAX`].
        message: String,
    },
    /// The API could not be reached or kept failing (connection errors, timeouts, 5xx) after
    /// every attempt the retry policy allows.
    #[error("the NCA API could not take the report after {attempts} attempt(s): {last}")]
    Transport {
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The API accepted the request but its answer holds no usable reference.
    #[error("the NCA API's answer is not understood: {0}")]
    BadResponse(String),
    /// A fault inside this program (an in-memory write that failed); not the caller's input.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
