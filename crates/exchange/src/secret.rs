//! A credential that never prints.

use std::fmt;

/// A credential (password, API key, subscription key). `Debug` and `Display` print `***`, so
/// it cannot leak through a log line, a status answer or an error message by accident; the
/// value is reachable only through [`Secret::expose`], which the HTTP layer calls when it
/// builds a request header.
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The credential itself, for building a request. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the credential is empty (not configured).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            key: Secret,
        }
        let h = Holder { key: s.clone() };
        assert!(!format!("{h:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2-very-secret");
    }
}
