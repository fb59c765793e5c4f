//! The crate's one error type.

/// What went wrong. Bad input (a weak password, an unknown role, an invalid setting) is told
/// apart from internal faults (no randomness, a hashing failure) so the server can answer
/// 4xx for the first and 5xx for the second.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A role name that is not one of reviewer, senior, admin, auditor.
    #[error("unknown role {0:?} (expected reviewer, senior, admin or auditor)")]
    UnknownRole(String),
    /// An empty role list, or an empty entry in it ("admin,,reviewer").
    #[error("at least one role is needed, and no entry may be empty")]
    NoRoles,
    /// A new password that fails [`crate::password::check_new`]; the text says what to fix.
    #[error("password {0}")]
    WeakPassword(&'static str),
    /// A view setting out of range or malformed; `field` names it.
    #[error("setting {field}: {reason}")]
    InvalidSetting {
        /// The JSON key or form field at fault.
        field: &'static str,
        /// What to fix.
        reason: String,
    },
    /// A posted form field that is missing, malformed or not allowed; `field` names it.
    #[error("{field}: {reason}")]
    InvalidForm {
        /// The form field at fault (for example `class:<object id>`).
        field: String,
        /// What to fix.
        reason: String,
    },
    /// The OS random source failed (internal).
    #[error("OS randomness unavailable: {0}")]
    Random(String),
    /// Argon2 refused its parameters or input (internal: the parameters are constants).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
