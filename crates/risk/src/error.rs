//! The crate's one error type. Every variant is bad input: an event a caller sent, or a
//! setting or pattern file an operator wrote. Scoring itself is total over validated events
//! and the crate does no I/O, so there is no internal-fault or corruption variant.

/// Why an event, a configuration or a pattern file was refused.
///
/// Each variant has a stable snake_case [`Error::code`], which the server answers with (as a
/// 4xx); the message names the field and says what would have been accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The event is not one: not JSON, a missing or unknown field, a value of the wrong type,
    /// an empty or oversized id, the same account on both sides, text on an event that has
    /// none.
    #[error("`{field}`: {message}")]
    InvalidEvent {
        /// Where: `events[3].actor`, `events[0].kind`.
        field: String,
        /// What is wrong and what to send instead.
        message: String,
    },
    /// An age band that is not one of `under_13`, `13_15`, `16_17`, `adult`, `unknown`.
    /// The same code as contact decisions answer with.
    #[error("`{field}`: {message}")]
    UnknownAgeBand {
        /// Where: `events[3].actor_age`.
        field: String,
        /// The refusal, with the accepted names.
        message: String,
    },
    /// Message text over [`crate::MAX_TEXT_BYTES`].
    #[error("`{field}`: text is {len} bytes; at most {max} are scored per message")]
    TextTooLong {
        /// Where: `events[3].text`.
        field: String,
        /// The text's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The scoring settings are refused: a threshold, weight or limit out of range.
    #[error("risk settings, `{field}`: {message}")]
    InvalidConfig {
        /// The setting.
        field: String,
        /// What is wrong and what to do instead.
        message: String,
    },
    /// The pattern file is refused: bad TOML, an unknown category, an empty or oversized
    /// phrase, too many phrases.
    #[error("risk patterns: {message}")]
    InvalidPatterns {
        /// What is wrong and what to do instead.
        message: String,
    },
}

impl Error {
    /// The stable snake_case code the API answers with, one per variant.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidEvent { .. } => "invalid_event",
            Error::UnknownAgeBand { .. } => "unknown_age_band",
            Error::TextTooLong { .. } => "text_too_long",
            Error::InvalidConfig { .. } => "invalid_risk_config",
            Error::InvalidPatterns { .. } => "invalid_patterns",
        }
    }

    pub(crate) fn event(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidEvent {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn config(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidConfig {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn patterns(message: impl Into<String>) -> Error {
        Error::InvalidPatterns {
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
            (Error::event("events[0].actor", "is empty"), "invalid_event"),
            (
                Error::UnknownAgeBand {
                    field: "events[0].actor_age".into(),
                    message: "x".into(),
                },
                "unknown_age_band",
            ),
            (
                Error::TextTooLong {
                    field: "events[0].text".into(),
                    len: 9000,
                    max: 8192,
                },
                "text_too_long",
            ),
            (Error::config("review", "x"), "invalid_risk_config"),
            (Error::patterns("x"), "invalid_patterns"),
        ];
        for (e, code) in cases {
            assert_eq!(e.code(), code, "{e}");
        }
    }
}
