//! The exchange crate's one error type.

/// Errors of an exchange run or call. The `Display` text never contains a credential: the
/// HTTP layer builds every message from the method, the path (never the query, which may hold
/// tokens, nor a user-info part) and the status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The exchange's configuration is unusable (missing credential, bad base URL, page size
    /// out of range). The operator must fix it; retrying does not help.
    #[error("invalid exchange configuration: {0}")]
    Config(String),
    /// The remote service could not be reached or kept failing after every retry
    /// (connection refused, timeout, dropped connection, 429/5xx past the retry budget).
    #[error("{0}")]
    Transport(String),
    /// The remote service refused the request (401/403/404 or another 4xx that retrying will
    /// not cure).
    #[error("{0}")]
    Rejected(String),
    /// The remote service answered something that is not the documented protocol (malformed
    /// XML or JSON, a missing field, a `next` link to another host, a body over the limit).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The caller's request is invalid (an unknown feedback reason, an unknown entry).
    #[error("{0}")]
    Invalid(String),
    /// The local sink (bank store) failed to apply a page or to read the checkpoint.
    #[error("sink error: {0}")]
    Sink(String),
    /// The stored checkpoint cannot be read back (written by another version or by hand).
    #[error("corrupt checkpoint: {0}")]
    Checkpoint(String),
}

impl Error {
    /// Stable snake_case code for API responses and status records.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config(_) => "exchange_config",
            Error::Transport(_) => "exchange_unavailable",
            Error::Rejected(_) => "exchange_rejected",
            Error::Protocol(_) => "exchange_protocol",
            Error::Invalid(_) => "invalid_request",
            Error::Sink(_) => "storage_error",
            Error::Checkpoint(_) => "exchange_checkpoint",
        }
    }
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;
