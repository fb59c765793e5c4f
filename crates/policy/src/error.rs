//! The crate's one error type. Every variant is bad input from the operator: the policy has no
//! I/O and keeps no state that could be corrupt, so there is no internal-fault variant.

/// Why a rule or a rule set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not a rule set (or rule) at all: bad TOML or JSON, an unknown field (the
    /// message names it), a value of the wrong type, an unknown verdict or surface.
    #[error("{message}")]
    Parse {
        /// The parser's message, with its line and column.
        message: String,
    },
    /// A rule parsed but breaks a rule of its own: a malformed id, an empty list, a share
    /// outside 0 to 100, ...
    #[error("{}", invalid_rule_message(.rule.as_deref(), .field.as_deref(), .message))]
    InvalidRule {
        /// The rule's id as written, when it has one.
        rule: Option<String>,
        /// The offending field as a path (`when.banks`, `then.queue`), when there is one.
        field: Option<String>,
        /// What is wrong and what to do instead.
        message: String,
    },
    /// Two rules in one set have the same id.
    #[error("rule id `{0}` appears more than once; ids must be unique in a rule set")]
    Duplicate(String),
    /// The set has more rules than [`crate::MAX_RULES`].
    #[error("{count} rules given; a rule set holds at most {max}")]
    TooMany {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
}

fn invalid_rule_message(rule: Option<&str>, field: Option<&str>, message: &str) -> String {
    match (rule, field) {
        (Some(r), Some(f)) => format!("rule `{r}`, field `{f}`: {message}"),
        (Some(r), None) => format!("rule `{r}`: {message}"),
        (None, Some(f)) => format!("field `{f}`: {message}"),
        (None, None) => message.to_string(),
    }
}

impl Error {
    /// The stable snake_case code the API answers with. A parse error shares `invalid_rule`
    /// with a validation error: both are fixed by editing the rule, and the message says how.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Parse { .. } | Error::InvalidRule { .. } => "invalid_rule",
            Error::Duplicate(_) => "duplicate_rule",
            Error::TooMany { .. } => "too_many_rules",
        }
    }

    pub(crate) fn invalid(rule: &str, field: &str, message: impl Into<String>) -> Error {
        Error::InvalidRule {
            rule: Some(rule.to_string()),
            field: Some(field.to_string()),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let parse = Error::Parse {
            message: "x".into(),
        };
        assert_eq!(parse.code(), "invalid_rule");
        assert_eq!(Error::invalid("r", "id", "bad").code(), "invalid_rule");
        assert_eq!(Error::Duplicate("r".into()).code(), "duplicate_rule");
        let many = Error::TooMany { count: 2, max: 1 };
        assert_eq!(many.code(), "too_many_rules");
    }

    #[test]
    fn invalid_rule_message_names_rule_and_field() {
        let e = Error::invalid("csam", "when.banks", "is empty");
        assert_eq!(e.to_string(), "rule `csam`, field `when.banks`: is empty");
    }
}
