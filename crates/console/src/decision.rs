//! The decide form: what a reviewer may submit, read back from the posted fields. The field
//! names are the pages' contract ([`crate::views::case_page`] writes them), so the reading
//! lives next to the writing rather than in the server.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// Longest decision note, characters: a paragraph, not a report.
pub const MAX_NOTE_CHARS: usize = 4000;
/// Longest skip reason, characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Per-item classifications (the industry scheme NCMEC uses: A/B = sex act / lascivious
/// exhibition, 1/2 = prepubescent / pubescent).
pub const CLASSES: [&str; 4] = ["A1", "A2", "B1", "B2"];
/// NCMEC's `<fileAnnotations>` flags, as the XSD names them (safeguard-ncmec writes these).
pub const ANNOTATIONS: [&str; 10] = [
    "animeDrawingVirtualHentai",
    "potentialMeme",
    "viral",
    "possibleSelfProduction",
    "physicalHarm",
    "violenceGore",
    "bestiality",
    "liveStreaming",
    "infant",
    "generativeAi",
];

/// What a reviewer decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// CSAM confirmed: to be reported once a senior approves.
    Confirmed,
    /// Not CSAM.
    NotCsam,
    /// Beyond this reviewer's remit (a lead takes it).
    Escalate,
    /// Back to the queue for another reviewer's view.
    SecondOpinion,
}

impl Decision {
    /// Every decision, in the order the form lists them.
    pub const ALL: [Decision; 4] = [
        Decision::Confirmed,
        Decision::NotCsam,
        Decision::Escalate,
        Decision::SecondOpinion,
    ];

    /// The form value and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Confirmed => "confirmed",
            Decision::NotCsam => "not_csam",
            Decision::Escalate => "escalate",
            Decision::SecondOpinion => "second_opinion",
        }
    }

    /// The label people read.
    pub fn label(self) -> &'static str {
        match self {
            Decision::Confirmed => "Confirmed: report",
            Decision::NotCsam => "Not CSAM",
            Decision::Escalate => "Escalate",
            Decision::SecondOpinion => "Ask for a second opinion",
        }
    }
}

impl FromStr for Decision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Decision> {
        Decision::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| invalid("decision", "choose one of the listed decisions"))
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::InvalidForm {
        field: field.into(),
        reason: reason.into(),
    }
}

/// One item's labels from the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemChoice {
    /// The object.
    pub object_id: String,
    /// One of [`CLASSES`], or None.
    pub classification: Option<String>,
    /// Each one of [`ANNOTATIONS`], without duplicates, in the order given.
    pub annotations: Vec<String>,
}

/// A submitted decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecideForm {
    /// The decision.
    pub decision: Decision,
    /// Per-item labels, one per object of the case, in the case's order.
    pub items: Vec<ItemChoice>,
    /// The note, trimmed; empty when none.
    pub note: String,
}

impl DecideForm {
    /// Reads the posted (field, value) pairs of `form#decide` for a case whose evidence
    /// objects are `object_ids`. A `class:`/`annot:` field for another object is refused:
    /// only a tampered form sends one.
    pub fn from_pairs(pairs: &[(String, String)], object_ids: &[String]) -> Result<DecideForm> {
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim());
        let decision = get("decision").unwrap_or("").parse()?;
        for (name, _) in pairs {
            let object = name
                .strip_prefix("class:")
                .or_else(|| name.strip_prefix("annot:"));
            if object.is_some_and(|o| !object_ids.iter().any(|id| id == o)) {
                return Err(invalid(name.clone(), "not an item of this case"));
            }
        }
        let mut items = Vec::with_capacity(object_ids.len());
        for id in object_ids {
            let class_field = format!("class:{id}");
            let classification = match get(&class_field) {
                None | Some("") => None,
                Some(c) if CLASSES.contains(&c) => Some(c.to_owned()),
                Some(_) => return Err(invalid(class_field, "choose A1, A2, B1, B2 or none")),
            };
            let annot_field = format!("annot:{id}");
            let mut annotations: Vec<String> = Vec::new();
            for a in get(&annot_field).unwrap_or("").split(',').map(str::trim) {
                if a.is_empty() || annotations.iter().any(|x| x == a) {
                    continue;
                }
                if !ANNOTATIONS.contains(&a) {
                    return Err(invalid(
                        annot_field,
                        format!("unknown annotation {a:?}; use {}", ANNOTATIONS.join(", ")),
                    ));
                }
                annotations.push(a.to_owned());
            }
            items.push(ItemChoice {
                object_id: id.clone(),
                classification,
                annotations,
            });
        }
        let note = get("note").unwrap_or("").to_owned();
        if note.chars().count() > MAX_NOTE_CHARS {
            return Err(invalid(
                "note",
                format!("at most {MAX_NOTE_CHARS} characters"),
            ));
        }
        if decision == Decision::Confirmed && items.iter().all(|i| i.classification.is_none()) {
            // A report without a classification cannot be filed; asking now saves the
            // approver a round trip.
            return Err(invalid(
                "decision",
                "a confirmed case needs a class on at least one item",
            ));
        }
        Ok(DecideForm {
            decision,
            items,
            note,
        })
    }
}

/// A skip reason, trimmed: required (the next reviewer and the audit read it) and at most
/// [`MAX_REASON_CHARS`].
pub fn check_skip_reason(reason: &str) -> Result<String> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(invalid("reason", "say why you skip this case"));
    }
    if r.chars().count() > MAX_REASON_CHARS {
        return Err(invalid(
            "reason",
            format!("at most {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(r.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn ids() -> Vec<String> {
        vec!["o1".into(), "o2".into()]
    }

    #[test]
    fn reads_a_full_form() {
        let f = DecideForm::from_pairs(
            &pairs(&[
                ("csrf", "t"),
                ("decision", "confirmed"),
                ("class:o1", "A2"),
                ("annot:o1", " infant, physicalHarm,infant ,"),
                ("class:o2", ""),
                ("note", "  seen before  "),
            ]),
            &ids(),
        )
        .unwrap();
        assert_eq!(f.decision, Decision::Confirmed);
        assert_eq!(f.items[0].classification.as_deref(), Some("A2"));
        assert_eq!(f.items[0].annotations, ["infant", "physicalHarm"]);
        assert_eq!(
            f.items[1],
            ItemChoice {
                object_id: "o2".into(),
                classification: None,
                annotations: vec![]
            }
        );
        assert_eq!(f.note, "seen before");
    }

    #[test]
    fn refuses_bad_fields() {
        let bad = |v: &[(&str, &str)]| DecideForm::from_pairs(&pairs(v), &ids()).unwrap_err();
        assert!(matches!(bad(&[]), Error::InvalidForm { field, .. } if field == "decision"));
        assert!(matches!(
            bad(&[("decision", "maybe")]),
            Error::InvalidForm { .. }
        ));
        assert!(
            matches!(bad(&[("decision", "not_csam"), ("class:o1", "C3")]), Error::InvalidForm { field, .. } if field == "class:o1")
        );
        assert!(
            matches!(bad(&[("decision", "not_csam"), ("class:o9", "A1")]), Error::InvalidForm { field, .. } if field == "class:o9")
        );
        assert!(
            matches!(bad(&[("decision", "not_csam"), ("annot:o2", "gore")]), Error::InvalidForm { field, .. } if field == "annot:o2")
        );
        assert!(matches!(
            bad(&[("decision", "confirmed")]),
            Error::InvalidForm { .. }
        ));
        let long = "x".repeat(MAX_NOTE_CHARS + 1);
        assert!(
            matches!(bad(&[("decision", "escalate"), ("note", &long)]), Error::InvalidForm { field, .. } if field == "note")
        );
        for d in Decision::ALL {
            assert_eq!(d.as_str().parse::<Decision>().unwrap(), d);
        }
    }

    #[test]
    fn skip_reason() {
        assert_eq!(
            check_skip_reason("  conflict of interest ").unwrap(),
            "conflict of interest"
        );
        assert!(check_skip_reason("   ").is_err());
        assert!(check_skip_reason(&"x".repeat(MAX_REASON_CHARS + 1)).is_err());
    }
}
