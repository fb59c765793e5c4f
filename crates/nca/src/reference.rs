//! The reference the NCA gives a report (reg 8(1)(a): kept for five years).
//!
//! The NCA has not published its shape, so the check is generic: non-empty, at most
//! [`REFERENCE_MAX`] characters, printable ASCII without spaces at either end. That keeps a
//! whole error page or a JSON object from being stored as a reference by mistake, and keeps
//! the value safe to print in logs and summaries.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Longest reference accepted, characters. Case references in UK policing and NCMEC's
/// CyberTipline numbers are well under 40; 128 leaves room for a format not yet seen.
pub const REFERENCE_MAX: usize = 128;

/// A report reference given by the NCA (or, for an earlier report of the same content, by
/// NCMEC). Validated on construction and when read from JSON.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NcaReference(String);

impl NcaReference {
    /// Checks the shape and wraps the value.
    pub fn new(value: impl Into<String>) -> Result<NcaReference, Error> {
        let value = value.into();
        let bad = |why: &str| Error::invalid("nca_reference", why.to_string());
        if value.is_empty() {
            return Err(bad("empty"));
        }
        if value.len() > REFERENCE_MAX {
            return Err(bad(&format!("longer than {REFERENCE_MAX} characters")));
        }
        if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(bad("only printable ASCII characters are expected"));
        }
        if value.trim() != value {
            return Err(bad("spaces at the start or end"));
        }
        Ok(NcaReference(value))
    }

    /// The reference as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NcaReference {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        NcaReference::new(s)
    }
}

impl From<NcaReference> for String {
    fn from(r: NcaReference) -> String {
        r.0
    }
}

impl fmt::Display for NcaReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plausible_references() {
        for ok in [
            "NCA-2026-000123",
            "1",
            &"x".repeat(REFERENCE_MAX),
            "ab/12 cd",
        ] {
            assert_eq!(NcaReference::new(ok).expect(ok).as_str(), ok);
        }
    }

    #[test]
    fn refuses_empty_long_and_unprintable() {
        for bad in [
            String::new(),
            "x".repeat(REFERENCE_MAX + 1),
            "a\nb".into(),
            " lead".into(),
            "trail ".into(),
            "caf\u{e9}".into(),
        ] {
            assert!(NcaReference::new(bad.clone()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn json_is_a_plain_string_and_is_checked() {
        let r = NcaReference::new("NCA-1").expect("valid");
        assert_eq!(serde_json::to_string(&r).expect("json"), "\"NCA-1\"");
        assert!(serde_json::from_str::<NcaReference>("\"\"").is_err());
    }
}
