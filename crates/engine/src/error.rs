//! The engine's error type, with the stable codes the API shows.

/// Errors of the engine. Variants up to `Media` are the caller's to fix (4xx); the rest are
/// internal (5xx).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bank name that is not UPPER_SNAKE_CASE or is too long.
    #[error("invalid bank name {0:?}: use UPPER_SNAKE_CASE (A-Z, 0-9 and _, not starting with a digit), at most 255 characters")]
    InvalidBankName(String),
    /// No bank of that name.
    #[error("bank {0:?} not found")]
    BankNotFound(String),
    /// A bank of that name exists.
    #[error("bank {0:?} already exists")]
    BankExists(String),
    /// No content item of that id (in that bank).
    #[error("bank content {0} not found")]
    ContentNotFound(i64),
    /// A signal type Safeguard does not know.
    #[error("unknown signal type {0:?}")]
    UnknownSignalType(String),
    /// A signal value of the wrong form.
    #[error("invalid {signal_type} value: {reason}")]
    InvalidSignal {
        /// The signal type.
        signal_type: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Any other invalid argument (a ratio out of range, metadata that is not JSON, ...).
    #[error("{0}")]
    Invalid(String),
    /// A two-value conflict the store reported (a duplicate signal type on one item, say).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A case state change the state machine does not allow.
    #[error("{0}")]
    InvalidTransition(String),
    /// No case of that id.
    #[error("case {0} not found")]
    CaseNotFound(i64),
    /// The two-person rule: the person who decided a case cannot also approve it.
    #[error("{0} decided this case; a second, different person must approve it")]
    SamePerson(String),
    /// The two-person rule: a case becomes a report only after a second person approved its
    /// current decision.
    #[error("case {0} has no approval of its current decision; a second person must approve it first (POST /v1/cases/{0}/approve)")]
    ApprovalRequired(i64),
    /// The case's current decision is already approved.
    #[error("case {0}'s current decision is already approved")]
    AlreadyApproved(i64),
    /// No rule of that id.
    #[error("rule {0:?} not found")]
    RuleNotFound(String),
    /// A content id already submitted with other content.
    #[error("content id {0:?} was already submitted with different content; a content id names one item")]
    SubmissionConflict(String),
    /// A rule or rule set that does not parse or validate.
    #[error(transparent)]
    Policy(#[from] safeguard_policy::Error),
    /// The media could not be decoded or hashed.
    #[error(transparent)]
    Media(#[from] safeguard_media::Error),
    /// The store failed.
    #[error("storage error: {0}")]
    Store(safeguard_store::Error),
    /// An index failed (corrupt snapshot, internal limit).
    #[error("index error: {0}")]
    Index(#[from] safeguard_index::Error),
}

impl Error {
    /// Stable snake_case code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidBankName(_) => "invalid_bank_name",
            Error::BankNotFound(_) => "bank_not_found",
            Error::BankExists(_) => "bank_exists",
            Error::ContentNotFound(_) => "content_not_found",
            Error::UnknownSignalType(_) => "unknown_signal_type",
            Error::InvalidSignal { .. } => "invalid_signal",
            Error::Invalid(_) => "invalid_request",
            Error::Conflict(_) => "conflict",
            Error::InvalidTransition(_) => "invalid_transition",
            Error::CaseNotFound(_) => "case_not_found",
            Error::SamePerson(_) => "same_person",
            Error::ApprovalRequired(_) => "approval_required",
            Error::AlreadyApproved(_) => "already_approved",
            Error::RuleNotFound(_) => "rule_not_found",
            Error::SubmissionConflict(_) => "content_id_conflict",
            Error::Policy(e) => e.code(),
            Error::Media(e) => e.code(),
            Error::Store(_) => "storage_error",
            Error::Index(_) => "index_error",
        }
    }

    /// Whether this is the store saying the change feed was pruned past the position asked
    /// for: the reader cannot catch up by following and must rebuild from a scan.
    pub fn is_feed_pruned(&self) -> bool {
        matches!(
            self,
            Error::Store(safeguard_store::Error::FeedPruned { .. })
        )
    }

    /// Whether the caller is at fault (and should get a 4xx).
    pub fn is_client_error(&self) -> bool {
        match self {
            Error::Media(e) => e.is_bad_input(),
            Error::Store(_) | Error::Index(_) => false,
            _ => true,
        }
    }
}

impl From<safeguard_store::Error> for Error {
    fn from(e: safeguard_store::Error) -> Error {
        match e {
            safeguard_store::Error::Conflict(m) => Error::Conflict(m),
            other => Error::Store(other),
        }
    }
}
