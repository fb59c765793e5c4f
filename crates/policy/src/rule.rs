//! Rules as the operator writes them ([`RuleSpec`]), their validation, and rule sets read from
//! TOML or JSON.
//!
//! Parsing and validation are separate steps with separate types of failure: serde refuses
//! what is not a rule at all (an unknown field, a wrong type, an unknown verdict), and
//! [`RuleSpec::validate`] refuses a well-formed rule that breaks a limit or cannot mean what
//! the operator thinks (an empty list, a share over 100, a queue on an `allow`).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::fact::{AccountAge, Classification, Kind, Surface};
use crate::name::named_enum;
use crate::outcome::{Priority, Verdict};

/// The most rules a set may hold. A policy is read by people: a thousand rules is already far
/// past what anyone can review, and the bound keeps the compiled rule bitsets a fixed 128 bytes.
pub const MAX_RULES: usize = 1000;
/// Longest rule id, in bytes (ids are ASCII). Long enough for a descriptive slug.
pub const MAX_ID_LEN: usize = 64;
/// Longest description, in characters: a sentence or two, not a document.
pub const MAX_DESCRIPTION_LEN: usize = 1024;
/// Most entries in one condition list; a longer list of banks or tags is a data set, which
/// belongs in a bank tag rather than in a rule.
pub const MAX_LIST_LEN: usize = 1000;
/// Longest entry in a condition list (a bank name, tag, signal type or source), in bytes.
pub const MAX_VALUE_LEN: usize = 256;
/// Largest `max_distance`: a PDQ hash has 256 bits, so no Hamming distance is larger.
pub const MAX_DISTANCE: u32 = 256;
/// Longest queue name, in bytes.
pub const MAX_QUEUE_LEN: usize = 64;
/// Most labels on one rule: labels tag a decision for search and metrics, a few suffice.
pub const MAX_LABELS: usize = 16;
/// Longest label, in characters.
pub const MAX_LABEL_LEN: usize = 64;

/// The queue a `review`, `hold` or `block` goes to when its rule names none.
pub const DEFAULT_QUEUE: &str = "default";
/// Ids with this prefix belong to the built-in rules; operator rules may not use it, so a
/// recorded [`crate::RuleRef`] always says unambiguously whose rule decided.
pub const BUILTIN_PREFIX: &str = "builtin.";

named_enum! {
    /// Whether a rule acts or only records what it would have done.
    #[derive(Default)]
    pub enum Mode {
        /// The rule decides when it is the first to fire.
        #[default]
        Enforce => "enforce",
        /// The rule never decides; when it would have fired it is listed in
        /// [`crate::Decision::shadow`]. For trying a rule on live traffic before enforcing it.
        Shadow => "shadow",
    }
}

/// One rule as the operator writes it.
///
/// ```toml
/// [[rule]]
/// id = "csam-block"
/// mode = "enforce"
/// [rule.when]
/// bank_kinds = ["csam"]
/// [rule.then]
/// verdict = "block"
/// queue = "csam"
/// priority = "high"
/// report_candidate = true
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique in its set: `[a-z0-9][a-z0-9._-]{0,63}`, not starting with [`BUILTIN_PREFIX`].
    pub id: String,
    /// What the rule is for, for the people who read the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Enforce (the default) or shadow.
    #[serde(default)]
    pub mode: Mode,
    /// The conditions. Required, even when empty, so that a forgotten `[rule.when]` is an
    /// error rather than a rule that matches everything.
    pub when: When,
    /// What happens when the rule decides.
    pub then: Then,
}

/// A rule's conditions. Every condition given must hold (AND); a list holds when any of its
/// entries does (OR). An absent condition holds always; an empty list is refused.
///
/// Match conditions (`banks` to `sources`) must all hold for one and the same match of the
/// item; item conditions (`surfaces`, `account_ages`, `kinds`) hold for the item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// Bank names, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banks: Option<Vec<String>>,
    /// Bank kinds (`csam`, `standard`, ...), exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_kinds: Option<Vec<String>>,
    /// Bank tags: holds when the bank has any of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_tags: Option<Vec<String>>,
    /// The match's classification (the hash's own, else its bank's default). A match with no
    /// classification fails this condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifications: Option<Vec<Classification>>,
    /// Signal types (`pdq`, `md5`, `sha256`, `vpdq`, ...), exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_types: Option<Vec<String>>,
    /// The match's distance is at most this. Matches without a distance (vPDQ) fail it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_distance: Option<u32>,
    /// Percent of the submitted video's frames that matched is at least this. Only vPDQ
    /// matches have shares, so only they can satisfy it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpdq_min_query_share: Option<f64>,
    /// Percent of the bank video's frames that matched is at least this; vPDQ only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpdq_min_compared_share: Option<f64>,
    /// Hash sources: an entry is exact (`ncmec`), or a prefix when it ends in `*`
    /// (`file:*`). Holds when any source of the hash fits any entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
    /// Where the item was posted. An item with no surface fails this condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surfaces: Option<Vec<Surface>>,
    /// The posting account's age band.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_ages: Option<Vec<AccountAge>>,
    /// The item's kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<Kind>>,
}

/// What a rule does when it decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Then {
    /// The verdict.
    pub verdict: Verdict,
    /// The review queue: `[a-z0-9_-]{1,64}`. Defaults to [`DEFAULT_QUEUE`] for `review`,
    /// `hold` and `block`; refused on `allow`, which queues nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The item's priority in its queue; defaults to `normal`. Refused on `allow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Whether the item is a candidate for a report to a hotline; defaults to false.
    /// `true` is refused on `allow`: what is reported must not be published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_candidate: Option<bool>,
    /// Free labels attached to the decision, for search and metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

impl Then {
    /// The queue after defaults: the one named, else [`DEFAULT_QUEUE`] unless the verdict is
    /// `allow`.
    pub fn effective_queue(&self) -> Option<&str> {
        match &self.queue {
            Some(q) => Some(q),
            None if self.verdict.needs_queue() => Some(DEFAULT_QUEUE),
            None => None,
        }
    }

    /// The priority after defaults.
    pub fn effective_priority(&self) -> Priority {
        self.priority.unwrap_or_default()
    }

    /// The report-candidate flag after defaults.
    pub fn effective_report_candidate(&self) -> bool {
        self.report_candidate.unwrap_or(false)
    }
}

impl RuleSpec {
    /// Parses one rule from a JSON object (the shape the API takes) and validates it.
    pub fn parse_json(text: &str) -> Result<RuleSpec, Error> {
        let spec: RuleSpec = serde_json::from_str(text).map_err(parse_error)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks everything serde cannot: id syntax, limits, and combinations that cannot mean
    /// what the operator thinks. The first problem found is returned.
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_as(false)
    }

    /// As [`Self::validate`]; `builtin` admits the reserved id prefix, for the built-in rules.
    pub(crate) fn validate_as(&self, builtin: bool) -> Result<(), Error> {
        let id = self.id.as_str();
        validate_id(id)?;
        if !builtin && id.starts_with(BUILTIN_PREFIX) {
            return Err(Error::invalid(
                id,
                "id",
                format!("ids starting with `{BUILTIN_PREFIX}` are reserved for the built-in rules"),
            ));
        }
        if let Some(d) = &self.description {
            if d.chars().count() > MAX_DESCRIPTION_LEN {
                return Err(Error::invalid(
                    id,
                    "description",
                    format!("is longer than {MAX_DESCRIPTION_LEN} characters"),
                ));
            }
        }
        self.when.validate(id)?;
        self.then.validate(id)
    }
}

/// `[a-z0-9][a-z0-9._-]{0,63}`: safe in URLs, file names and log lines without quoting.
fn validate_id(id: &str) -> Result<(), Error> {
    let bytes = id.as_bytes();
    let first_ok = bytes
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if first_ok && rest_ok && bytes.len() <= MAX_ID_LEN {
        Ok(())
    } else {
        Err(Error::invalid(
            id,
            "id",
            format!(
                "must be 1 to {MAX_ID_LEN} characters of a-z, 0-9, '.', '_' and '-', \
                 starting with a letter or digit"
            ),
        ))
    }
}

/// Refuses an empty list (which would either match nothing or, read loosely, everything) and
/// an over-long one.
fn check_list<T>(rule: &str, field: &str, list: &Option<Vec<T>>) -> Result<(), Error> {
    let Some(list) = list else { return Ok(()) };
    if list.is_empty() {
        return Err(Error::invalid(
            rule,
            field,
            "is an empty list, which no match could satisfy; omit the field instead to leave \
             it unconstrained",
        ));
    }
    if list.len() > MAX_LIST_LEN {
        return Err(Error::invalid(
            rule,
            field,
            format!("has {} entries; at most {MAX_LIST_LEN}", list.len()),
        ));
    }
    Ok(())
}

fn check_strings(rule: &str, field: &str, list: &Option<Vec<String>>) -> Result<(), Error> {
    check_list(rule, field, list)?;
    for v in list.iter().flatten() {
        if v.is_empty() || v.len() > MAX_VALUE_LEN {
            return Err(Error::invalid(
                rule,
                field,
                format!("entries must be 1 to {MAX_VALUE_LEN} bytes long"),
            ));
        }
    }
    Ok(())
}

fn check_share(rule: &str, field: &str, share: Option<f64>) -> Result<(), Error> {
    match share {
        Some(s) if !(0.0..=100.0).contains(&s) => Err(Error::invalid(
            rule,
            field,
            format!("{s} is not a percentage from 0 to 100"),
        )),
        _ => Ok(()),
    }
}

impl When {
    fn validate(&self, rule: &str) -> Result<(), Error> {
        check_strings(rule, "when.banks", &self.banks)?;
        check_strings(rule, "when.bank_kinds", &self.bank_kinds)?;
        check_strings(rule, "when.bank_tags", &self.bank_tags)?;
        check_list(rule, "when.classifications", &self.classifications)?;
        check_strings(rule, "when.signal_types", &self.signal_types)?;
        check_strings(rule, "when.sources", &self.sources)?;
        for s in self.sources.iter().flatten() {
            if s.strip_suffix('*').unwrap_or(s).contains('*') {
                return Err(Error::invalid(
                    rule,
                    "when.sources",
                    format!(
                        "`{s}`: '*' may only end an entry (a prefix such as `file:*`), \
                         it is not a general wildcard"
                    ),
                ));
            }
        }
        check_list(rule, "when.surfaces", &self.surfaces)?;
        check_list(rule, "when.account_ages", &self.account_ages)?;
        check_list(rule, "when.kinds", &self.kinds)?;
        if let Some(d) = self.max_distance {
            if d > MAX_DISTANCE {
                return Err(Error::invalid(
                    rule,
                    "when.max_distance",
                    format!("{d} is over {MAX_DISTANCE}, the most bits a hash has"),
                ));
            }
        }
        check_share(rule, "when.vpdq_min_query_share", self.vpdq_min_query_share)?;
        check_share(
            rule,
            "when.vpdq_min_compared_share",
            self.vpdq_min_compared_share,
        )?;
        let has_share =
            self.vpdq_min_query_share.is_some() || self.vpdq_min_compared_share.is_some();
        if self.max_distance.is_some() && has_share {
            // One match would need a distance (not vPDQ) and frame shares (only vPDQ): the
            // rule could never fire, which is surely not what was meant.
            return Err(Error::invalid(
                rule,
                "when.max_distance",
                "cannot be combined with a vpdq share condition: vPDQ matches have shares \
                 but no distance, other matches a distance but no shares; write two rules",
            ));
        }
        Ok(())
    }

    /// Whether no condition is given: the rule fires for every item with a match.
    pub fn is_empty(&self) -> bool {
        self == &When::default()
    }
}

impl Then {
    fn validate(&self, rule: &str) -> Result<(), Error> {
        if self.verdict == Verdict::Allow {
            let refuse = |field: &str, what: &str| {
                Err(Error::invalid(
                    rule,
                    field,
                    format!("an `allow` {what}; remove the field or choose another verdict"),
                ))
            };
            if self.queue.is_some() {
                return refuse("then.queue", "queues nothing");
            }
            if self.priority.is_some() {
                return refuse("then.priority", "queues nothing, so has no priority");
            }
            if self.report_candidate == Some(true) {
                return refuse(
                    "then.report_candidate",
                    "publishes the item, so cannot be reported",
                );
            }
        }
        if let Some(q) = &self.queue {
            let ok = !q.is_empty()
                && q.len() <= MAX_QUEUE_LEN
                && q.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !ok {
                return Err(Error::invalid(
                    rule,
                    "then.queue",
                    format!("must be 1 to {MAX_QUEUE_LEN} characters of a-z, 0-9, '_' and '-'"),
                ));
            }
        }
        if self.labels.len() > MAX_LABELS {
            return Err(Error::invalid(
                rule,
                "then.labels",
                format!("has {} labels; at most {MAX_LABELS}", self.labels.len()),
            ));
        }
        for l in &self.labels {
            let n = l.chars().count();
            if n == 0 || n > MAX_LABEL_LEN || l.chars().any(char::is_control) {
                return Err(Error::invalid(
                    rule,
                    "then.labels",
                    format!(
                        "labels must be 1 to {MAX_LABEL_LEN} characters without control characters"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A rule with the version the store gave it. Serialises as the spec's fields plus `version`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// Bumped by the store on every change, so a recorded verdict names the exact text that
    /// produced it. The policy only carries it.
    pub version: u32,
    /// The rule itself.
    #[serde(flatten)]
    pub spec: RuleSpec,
}

impl Rule {
    /// Pairs a spec with its version.
    pub fn new(spec: RuleSpec, version: u32) -> Rule {
        Rule { version, spec }
    }

    /// The rule's id (kept once, in the spec, so the two can never disagree).
    pub fn id(&self) -> &str {
        &self.spec.id
    }
}

/// An ordered set of rules, as in a rules file: `[[rule]]` tables in TOML, `{"rule": [...]}`
/// in JSON. The order is the evaluation order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// The rules, in order. Named `rule` in the file so each TOML table reads `[[rule]]`.
    #[serde(rename = "rule", default)]
    pub rules: Vec<RuleSpec>,
}

impl RuleSet {
    /// Parses and validates a TOML rules file. An empty file is an empty set.
    pub fn parse_toml(text: &str) -> Result<RuleSet, Error> {
        let set: RuleSet = toml::from_str(text).map_err(parse_error)?;
        set.validate()?;
        Ok(set)
    }

    /// Parses and validates a JSON rule set, `{"rule": [...]}`.
    pub fn parse_json(text: &str) -> Result<RuleSet, Error> {
        let set: RuleSet = serde_json::from_str(text).map_err(parse_error)?;
        set.validate()?;
        Ok(set)
    }

    /// Validates every rule, then the set: at most [`MAX_RULES`], ids unique.
    pub fn validate(&self) -> Result<(), Error> {
        validate_set(self.rules.iter())
    }

    /// The set as a TOML rules file, which [`Self::parse_toml`] reads back to an equal set.
    pub fn to_toml(&self) -> String {
        // Cannot fail: every field is a string, number, bool, array or table, and absent
        // options are skipped rather than serialised as a (TOML-less) null.
        toml::to_string(self).expect("a rule set always serialises to TOML")
    }

    /// The set as JSON, which [`Self::parse_json`] reads back to an equal set.
    pub fn to_json(&self) -> String {
        // Cannot fail: plain structs with string keys.
        serde_json::to_string(self).expect("a rule set always serialises to JSON")
    }
}

/// The checks shared by [`RuleSet::validate`] and [`crate::Policy::compile`].
pub(crate) fn validate_set<'a>(
    specs: impl ExactSizeIterator<Item = &'a RuleSpec>,
) -> Result<(), Error> {
    if specs.len() > MAX_RULES {
        return Err(Error::TooMany {
            count: specs.len(),
            max: MAX_RULES,
        });
    }
    let mut seen = HashSet::new();
    for spec in specs {
        spec.validate()?;
        if !seen.insert(spec.id.as_str()) {
            return Err(Error::Duplicate(spec.id.clone()));
        }
    }
    Ok(())
}

fn parse_error(e: impl std::fmt::Display) -> Error {
    Error::Parse {
        message: e.to_string(),
    }
}
