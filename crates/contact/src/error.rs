//! The crate's one error type. Every variant is bad input, from a caller's request or from the
//! operator's policy: deciding is a total function of validated values and the crate keeps no
//! state, so there is no internal-fault or corruption variant.

/// Why a request or a policy was refused.
///
/// Each variant has a stable snake_case [`Error::code`], which the server answers with (as a
/// 4xx); the message says what was wrong and what would have been accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is not a contact request at all: not JSON, a missing or unknown field, a
    /// value of the wrong type.
    #[error("malformed request: {message}")]
    Malformed {
        /// The parser's message, with its line and column.
        message: String,
    },
    /// An age band that is not one of `under_13`, `13_15`, `16_17`, `adult`, `unknown`.
    #[error("`{field}`: {}", crate::age::AgeBand::unknown_message(.value))]
    UnknownAgeBand {
        /// Where in the request: `actor.age_band` or `target.age_band`.
        field: String,
        /// The value as sent.
        value: String,
    },
    /// An age-assurance method that is not one of [`crate::AssuranceMethod::NAMES`].
    #[error("`{field}`: {}", crate::age::AssuranceMethod::unknown_message(.value))]
    UnknownAssuranceMethod {
        /// Where in the request: `actor.assurance.method` or `target.assurance.method`.
        field: String,
        /// The value as sent.
        value: String,
    },
    /// A relationship that is not one of [`crate::Relationship::NAMES`].
    #[error("`relationship`: {}", crate::request::Relationship::unknown_message(.value))]
    UnknownRelationship {
        /// The value as sent.
        value: String,
    },
    /// An action that is not one of [`crate::Action::NAMES`].
    #[error("`action`: {}", crate::request::Action::unknown_message(.value))]
    UnknownAction {
        /// The value as sent.
        value: String,
    },
    /// An assurance confidence outside 0 to 1 (or not a number).
    #[error("`{field}`: confidence {value} is outside 0 to 1")]
    InvalidConfidence {
        /// Where in the request: `actor.assurance.confidence` or `target.assurance.confidence`.
        field: String,
        /// The value as sent.
        value: f64,
    },
    /// An account that cannot be one: an empty or oversized id, or the same account on both
    /// sides of the request.
    #[error("`{field}`: {message}")]
    InvalidAccount {
        /// The offending field: `actor.id`, `target.id`.
        field: String,
        /// What is wrong and what to do instead.
        message: String,
    },
    /// The contact policy is refused: bad TOML or JSON, an unknown field or value, or a
    /// setting that breaks a rule of its own (an empty list, a confidence over 1, ...).
    #[error("{}", policy_message(.field.as_deref(), .message))]
    InvalidPolicy {
        /// The offending setting as a path (`child_bands`, `override[1].prompt`), when the
        /// problem is in one setting rather than in the text as a whole.
        field: Option<String>,
        /// What is wrong and what to do instead.
        message: String,
    },
}

fn policy_message(field: Option<&str>, message: &str) -> String {
    match field {
        Some(f) => format!("contact policy, `{f}`: {message}"),
        None => format!("contact policy: {message}"),
    }
}

impl Error {
    /// The stable snake_case code the API answers with, one per variant. A policy's parse
    /// error shares `invalid_policy` with its validation errors: both are fixed by editing
    /// the policy, and the message says how.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Malformed { .. } => "malformed_request",
            Error::UnknownAgeBand { .. } => "unknown_age_band",
            Error::UnknownAssuranceMethod { .. } => "unknown_assurance_method",
            Error::UnknownRelationship { .. } => "unknown_relationship",
            Error::UnknownAction { .. } => "unknown_action",
            Error::InvalidConfidence { .. } => "invalid_confidence",
            Error::InvalidAccount { .. } => "invalid_account",
            Error::InvalidPolicy { .. } => "invalid_policy",
        }
    }

    pub(crate) fn policy(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidPolicy {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let cases = [
            (
                Error::Malformed {
                    message: "x".into(),
                },
                "malformed_request",
            ),
            (
                Error::UnknownAgeBand {
                    field: "actor.age_band".into(),
                    value: "teen".into(),
                },
                "unknown_age_band",
            ),
            (
                Error::UnknownAssuranceMethod {
                    field: "actor.assurance.method".into(),
                    value: "guess".into(),
                },
                "unknown_assurance_method",
            ),
            (
                Error::UnknownRelationship {
                    value: "friend".into(),
                },
                "unknown_relationship",
            ),
            (
                Error::UnknownAction {
                    value: "poke".into(),
                },
                "unknown_action",
            ),
            (
                Error::InvalidConfidence {
                    field: "actor.assurance.confidence".into(),
                    value: 2.0,
                },
                "invalid_confidence",
            ),
            (
                Error::InvalidAccount {
                    field: "actor.id".into(),
                    message: "is empty".into(),
                },
                "invalid_account",
            ),
            (Error::policy("child_bands", "is empty"), "invalid_policy"),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error}");
        }
    }

    #[test]
    fn messages_name_the_field_and_the_accepted_values() {
        let e = Error::UnknownAgeBand {
            field: "target.age_band".into(),
            value: "teen".into(),
        };
        assert_eq!(
            e.to_string(),
            "`target.age_band`: unknown age band `teen`; expected one of under_13, 13_15, \
             16_17, adult, unknown"
        );
        let e = Error::UnknownAction {
            value: "poke".into(),
        };
        assert_eq!(
            e.to_string(),
            "`action`: unknown action `poke`; expected one of message, connection_request, \
             suggest, view_connections, view_location, view_profile, block, report"
        );
        let e = Error::policy("child_bands", "is empty");
        assert_eq!(e.to_string(), "contact policy, `child_bands`: is empty");
    }
}
