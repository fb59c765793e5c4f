//! What the caller knows about an item and its matches: the facts rules test.
//!
//! The policy never looks anything up. The caller (the submission path) resolves every fact
//! first, for example a hash's classification falling back to its bank's default, so that
//! evaluation is a pure function of these values and a verdict can be replayed from them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::name::named_enum;

named_enum! {
    /// What kind of media the item is.
    pub enum Kind {
        /// A still image.
        Image => "image",
        /// A video.
        Video => "video",
        /// Anything else (a document, an archive, precomputed signals of unknown origin).
        Other => "other",
    }
}

named_enum! {
    /// Where on the platform the item was posted.
    pub enum Surface {
        /// Visible to anyone.
        Public => "public",
        /// A private message or private storage.
        Private => "private",
        /// A group or channel with a closed membership.
        Group => "group",
        /// Sent in by a user reporting it.
        UserReport => "user_report",
        /// Already stored, found by a backfill scan (`safeguard scan`).
        Backfill => "backfill",
    }
}

named_enum! {
    /// The age band of the account that posted the item, as the platform knows it.
    pub enum AccountAge {
        /// Under the platform's age of majority.
        Child => "child",
        /// An adult.
        Adult => "adult",
        /// The platform does not know.
        Unknown => "unknown",
    }
}

/// The industry classification of a known image (the NCMEC / Tech Coalition scheme): `A` is a
/// prepubescent child, `B` a pubescent one; `1` a sex act, `2` a lascivious exhibition.
///
/// Parsed case-insensitively (hash lists spell it both ways), written upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Classification {
    /// Prepubescent, sex act.
    A1,
    /// Prepubescent, lascivious exhibition.
    A2,
    /// Pubescent, sex act.
    B1,
    /// Pubescent, lascivious exhibition.
    B2,
}

impl Classification {
    /// Every classification, in the order of their names.
    pub const ALL: &'static [Classification] = &[
        Classification::A1,
        Classification::A2,
        Classification::B1,
        Classification::B2,
    ];

    /// The upper-case name: `A1`, `A2`, `B1` or `B2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::A1 => "A1",
            Classification::A2 => "A2",
            Classification::B1 => "B1",
            Classification::B2 => "B2",
        }
    }

    /// Parses a name in either case (`a1` or `A1`); `None` for anything else.
    pub fn parse(s: &str) -> Option<Classification> {
        Classification::ALL
            .iter()
            .copied()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }

    /// Position in [`Self::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Classification {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Classification {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A borrowed &str would fail on JSON strings with escapes; a String always works.
        let s = String::deserialize(d)?;
        Classification::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown classification `{s}`, expected one of A1, A2, B1, B2"
            ))
        })
    }
}

/// Facts about the item as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemFacts {
    /// What kind of media it is.
    pub kind: Kind,
    /// Where it was posted, when the platform said; a `surfaces` condition fails without it.
    pub surface: Option<Surface>,
    /// The age band of the posting account.
    pub account_age: AccountAge,
}

/// The share of frames a vPDQ comparison found in common, each in percent (0 to 100).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VpdqShares {
    /// Percent of the submitted video's frames that matched the bank's video.
    pub query: f64,
    /// Percent of the bank's video's frames that matched the submitted video.
    pub compared: f64,
}

/// Facts about one match of the item against one hash in one bank.
///
/// Borrowed, so that building the facts for an evaluation copies no strings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchFacts<'a> {
    /// The bank's name.
    pub bank: &'a str,
    /// The bank's kind (`csam`, `standard`, ...); the built-in policy blocks `csam`.
    pub bank_kind: &'a str,
    /// The bank's tags.
    pub bank_tags: &'a [String],
    /// The hash's classification, else the bank's default; the caller resolves the fallback.
    pub classification: Option<Classification>,
    /// The signal type that matched (`pdq`, `md5`, `vpdq`, ...).
    pub signal_type: &'a str,
    /// The distance of the match: Hamming bits for PDQ, 0 for exact digests, `None` for vPDQ
    /// (whose strength is its frame shares). A `max_distance` condition fails without one.
    pub distance: Option<f64>,
    /// vPDQ frame shares; `None` for every other signal type.
    pub vpdq: Option<VpdqShares>,
    /// Where the hash came from: `ncmec`, `stopncii`, `iwf`, `file:<name>`,
    /// `exchange:<name>`, `own`, ... A hash can have several sources.
    pub sources: &'a [String],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_parse() {
        for k in Kind::ALL {
            let json = serde_json::to_string(k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert_eq!(Kind::parse(k.as_str()), Some(*k));
        }
        for s in Surface::ALL {
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(Surface::parse(s.as_str()), Some(*s));
        }
        for a in AccountAge::ALL {
            let json = serde_json::to_string(a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.as_str()));
            assert_eq!(AccountAge::parse(a.as_str()), Some(*a));
        }
        assert_eq!(Surface::UserReport.as_str(), "user_report");
        assert_eq!(Surface::parse("userreport"), None);
    }

    #[test]
    fn classification_parses_either_case_and_writes_upper() {
        for c in Classification::ALL {
            assert_eq!(Classification::parse(&c.as_str().to_lowercase()), Some(*c));
            assert_eq!(Classification::parse(c.as_str()), Some(*c));
            assert_eq!(serde_json::to_string(c).unwrap(), format!("\"{c}\""));
        }
        let c: Classification = serde_json::from_str("\"b2\"").unwrap();
        assert_eq!(c, Classification::B2);
        assert_eq!(Classification::parse("C1"), None);
        let err = serde_json::from_str::<Classification>("\"a3\"").unwrap_err();
        assert!(err.to_string().contains("a3"), "{err}");
    }

    #[test]
    fn index_is_position_in_all() {
        for (i, c) in Classification::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
        for (i, s) in Surface::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
        }
    }
}
