//! What a platform knows about an account's age: the band it claims, and how sure the
//! platform is of it.
//!
//! The crate does not estimate ages. The platform does (self-declaration, facial age
//! estimation, a document check, ...) and passes the band with the method and its confidence;
//! the policy then decides how much of that to believe ([`crate::ContactPolicy`]).

use serde::{Deserialize, Serialize};

use crate::name::named_enum;

named_enum! {
    /// The age band an account claims, as the platform knows it.
    ///
    /// Bands rather than ages: the platform rarely knows a birth date it may keep, and the
    /// codes' distinction is child (under 18) or not. The three minor bands let a policy
    /// narrow "child user" (see [`crate::PolicySpec::child_bands`]) without the platform
    /// sending more than it needs to.
    pub enum AgeBand ("age band") {
        /// Under 13.
        Under13 => "under_13",
        /// 13 to 15.
        From13To15 => "13_15",
        /// 16 or 17.
        From16To17 => "16_17",
        /// 18 or over.
        Adult => "adult",
        /// The platform does not know.
        Unknown => "unknown",
    }
}

impl AgeBand {
    /// The bands under 18, youngest first.
    pub const MINORS: &'static [AgeBand] =
        &[AgeBand::Under13, AgeBand::From13To15, AgeBand::From16To17];

    /// Whether the band is under 18.
    pub fn is_minor(self) -> bool {
        AgeBand::MINORS.contains(&self)
    }
}

named_enum! {
    /// How the platform established the account's age band.
    ///
    /// The distinction matters for adult claims only (a claim to be a child is always
    /// believed; see [`crate::ContactPolicy`]). Ofcom's guidance on highly effective age
    /// assurance (January 2025, per the project's notes) counts photo-ID matching, facial
    /// age estimation, open banking, mobile-network checks, credit cards, digital identity
    /// and email-based estimation, and not self-declaration; a policy may accept adult
    /// claims only from
    /// `estimation`, `verification` and `id_document` ([`crate::PolicySpec::adult_methods`]).
    pub enum AssuranceMethod ("assurance method") {
        /// None: the band is whatever the account was created with, unchecked.
        Unchecked => "none",
        /// The user said so (a date of birth or an age typed at sign-up).
        SelfDeclared => "self_declared",
        /// Inferred from behaviour or context (what the account does, who it talks to).
        Inferred => "inferred",
        /// Estimated: facial age estimation, email-based estimation.
        Estimation => "estimation",
        /// Checked against a record: open banking, credit card, mobile network, digital ID.
        Verification => "verification",
        /// Matched against a photo identity document.
        IdDocument => "id_document",
    }
}

/// The platform's confidence in an age band, from 0 (none) to 1 (certain).
///
/// A newtype so that a number outside 0 to 1, or NaN, cannot reach a decision: it is refused
/// when the request is parsed ([`crate::Error::InvalidConfidence`]).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Confidence(f64);

impl Confidence {
    /// No confidence: the default for an account sent without assurance.
    pub const ZERO: Confidence = Confidence(0.0);
    /// Certainty.
    pub const ONE: Confidence = Confidence(1.0);

    /// The confidence, when `value` is a number from 0 to 1 inclusive.
    pub fn new(value: f64) -> Option<Confidence> {
        // `contains` is false for NaN, so NaN is refused with the out-of-range values.
        (0.0..=1.0).contains(&value).then_some(Confidence(value))
    }

    /// The number, from 0 to 1.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for Confidence {
    fn default() -> Self {
        Confidence::ZERO
    }
}

impl TryFrom<f64> for Confidence {
    type Error = String;

    fn try_from(value: f64) -> Result<Self, Self::Error> {
        Confidence::new(value).ok_or_else(|| format!("confidence {value} is outside 0 to 1"))
    }
}

impl From<Confidence> for f64 {
    fn from(c: Confidence) -> f64 {
        c.0
    }
}

/// How an account's age band was established.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assurance {
    /// The method.
    pub method: AssuranceMethod,
    /// The platform's confidence in the band, 0 to 1. Defaults to 0 when left out.
    #[serde(default)]
    pub confidence: Confidence,
}

impl Default for Assurance {
    /// No assurance at all: what an account sent without an `assurance` object has.
    fn default() -> Self {
        Assurance {
            method: AssuranceMethod::Unchecked,
            confidence: Confidence::ZERO,
        }
    }
}

named_enum! {
    /// How a decision treated an account after applying the policy to its band and assurance.
    pub enum AgeClass ("age class") {
        /// A child user: a child band of the policy, or an age the policy treats as a child's.
        Child => "child",
        /// Not a child user: an assured adult, a minor band the policy does not count as
        /// child, or an unknown age under `unknown_age = "treat_as_adult"`.
        Adult => "adult",
        /// Unknown, and left unknown: only under `unknown_age = "deny_contact"`.
        Unknown => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_parse() {
        for b in AgeBand::ALL {
            let json = serde_json::to_string(b).unwrap();
            assert_eq!(json, format!("\"{}\"", b.as_str()));
            assert_eq!(serde_json::from_str::<AgeBand>(&json).unwrap(), *b);
            assert_eq!(AgeBand::parse(b.as_str()), Some(*b));
        }
        for m in AssuranceMethod::ALL {
            let json = serde_json::to_string(m).unwrap();
            assert_eq!(serde_json::from_str::<AssuranceMethod>(&json).unwrap(), *m);
        }
        for c in AgeClass::ALL {
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(serde_json::from_str::<AgeClass>(&json).unwrap(), *c);
        }
    }

    #[test]
    fn band_names_are_the_documented_ones() {
        assert_eq!(
            AgeBand::NAMES,
            ["under_13", "13_15", "16_17", "adult", "unknown"]
        );
        assert_eq!(
            AssuranceMethod::NAMES,
            [
                "none",
                "self_declared",
                "inferred",
                "estimation",
                "verification",
                "id_document"
            ]
        );
    }

    #[test]
    fn unknown_band_is_refused_with_the_accepted_names() {
        let err = serde_json::from_str::<AgeBand>("\"teen\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown age band `teen`; expected one of under_13, 13_15"),
            "{err}"
        );
        assert_eq!(AgeBand::parse("Adult"), None, "names are case-sensitive");
    }

    #[test]
    fn minors_are_the_three_bands_under_18() {
        assert!(AgeBand::Under13.is_minor());
        assert!(AgeBand::From13To15.is_minor());
        assert!(AgeBand::From16To17.is_minor());
        assert!(!AgeBand::Adult.is_minor());
        assert!(!AgeBand::Unknown.is_minor());
    }

    #[test]
    fn confidence_is_zero_to_one_inclusive() {
        assert_eq!(Confidence::new(0.0), Some(Confidence::ZERO));
        assert_eq!(Confidence::new(1.0), Some(Confidence::ONE));
        assert_eq!(Confidence::new(0.5).map(Confidence::get), Some(0.5));
        assert_eq!(Confidence::new(-0.01), None);
        assert_eq!(Confidence::new(1.01), None);
        assert_eq!(Confidence::new(f64::NAN), None);
        assert_eq!(Confidence::new(f64::INFINITY), None);
        assert!(serde_json::from_str::<Confidence>("1.5").is_err());
        assert_eq!(
            serde_json::from_str::<Confidence>("1").unwrap(),
            Confidence::ONE
        );
    }

    #[test]
    fn assurance_defaults_to_none_at_zero() {
        let a: Assurance = serde_json::from_str(r#"{"method":"estimation"}"#).unwrap();
        assert_eq!(a.method, AssuranceMethod::Estimation);
        assert_eq!(a.confidence, Confidence::ZERO);
        assert_eq!(Assurance::default().method, AssuranceMethod::Unchecked);
    }
}
