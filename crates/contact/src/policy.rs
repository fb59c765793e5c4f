//! The operator's contact policy: who counts as a child user, what an unknown or weakly
//! assured age is treated as, and where the platform departs from the defaults.
//!
//! Two types, as with raw and validated arguments: [`PolicySpec`] is what the operator writes
//! (TOML or JSON, every field public), [`ContactPolicy`] is a spec that passed
//! [`ContactPolicy::new`], and the only kind `decide` accepts, so a decision can never be
//! made under a policy that breaks its own rules.

use serde::{Deserialize, Serialize};

use crate::age::{AgeBand, AgeClass, AssuranceMethod};
use crate::decision::Outcome;
use crate::error::Error;
use crate::measure::PromptKey;
use crate::name::named_enum;
use crate::request::{Account, Action, Relationship};

/// The most overrides a policy may hold. Eight actions, three actor scopes and a handful of
/// relationship sets make far fewer meaningful overrides than this; the bound keeps a policy
/// reviewable and the first-match scan trivially cheap.
pub const MAX_OVERRIDES: usize = 64;

/// The default [`PolicySpec::min_adult_confidence`]. Below an even chance, the platform
/// itself thinks an adult claim more likely wrong than right, so the claim is not enough to
/// lift a child's protections.
pub const DEFAULT_MIN_ADULT_CONFIDENCE: f64 = 0.5;

named_enum! {
    /// What an account of unknown age is treated as. "Unknown" covers the `unknown` band and
    /// an adult claim the policy does not believe (a method it does not accept, or a
    /// confidence below [`PolicySpec::min_adult_confidence`]).
    #[derive(Default)]
    pub enum UnknownAgeRule ("unknown-age rule") {
        /// As a child user, with every protection. The default: wrongly protecting an adult
        /// costs a feature; wrongly exposing a child can cost far more.
        #[default]
        TreatAsChild => "treat_as_child",
        /// As not a child user. For platforms that establish every child's age some other way
        /// and would rather not restrict adults who never gave one.
        TreatAsAdult => "treat_as_adult",
        /// As neither: every contact action involving the account, on either side, is denied
        /// until the platform establishes its age. Blocking and reporting stay possible.
        DenyContact => "deny_contact",
    }
}

named_enum! {
    /// Which actors (or targets) an override applies to, by how the policy treated them.
    #[derive(Default)]
    pub enum ActorScope ("actor scope") {
        /// Every actor.
        #[default]
        Any => "any",
        /// Actors treated as child users.
        Child => "child",
        /// Actors not treated as child users.
        Adult => "adult",
    }
}

impl ActorScope {
    fn matches(self, actor: AgeClass) -> bool {
        match self {
            ActorScope::Any => true,
            ActorScope::Child => actor == AgeClass::Child,
            ActorScope::Adult => actor == AgeClass::Adult,
        }
    }
}

/// A departure from the defaults for one action.
///
/// An override replaces the outcome of a child-safety default (an `ICU F1`, `ICU F2` or
/// Safeguard measure) that did not already allow the action plainly. It never touches a
/// block, the `deny_contact` rule, or an action between two accounts neither of which is a
/// child user. The first override that matches decides.
///
/// ```toml
/// [[override]]
/// action = "view_profile"
/// outcome = "allow_with_prompt"
/// prompt = "profile_view_by_non_connected"
/// relationships = ["mutual"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideSpec {
    /// The action.
    pub action: Action,
    /// The outcome instead of the default's. `deny` is refused for `block` and `report`.
    pub outcome: Outcome,
    /// Which actors it applies to; every actor when left out.
    #[serde(default)]
    pub actor: ActorScope,
    /// Which targets it applies to, by how the policy treated them; every target when left
    /// out. A rule for contact between children names both sides (`actor = "child"`,
    /// `target = "child"`): scoped by actor alone it also lets a child reach an adult
    /// stranger, which the defaults deny.
    #[serde(default)]
    pub target: ActorScope,
    /// Which relationships it applies to; every one but `blocked` when left out. Non-empty,
    /// and never `blocked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationships: Option<Vec<Relationship>>,
    /// The supportive information to show with `allow_with_prompt`; defaults to the action's
    /// ICU F2 moment, and is required for actions that have none (`suggest`, `view_*`).
    /// Refused with any other outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<PromptKey>,
}

impl OverrideSpec {
    fn matches(
        &self,
        action: Action,
        actor: AgeClass,
        target: AgeClass,
        relationship: Relationship,
    ) -> bool {
        self.action == action
            && self.actor.matches(actor)
            && self.target.matches(target)
            && self
                .relationships
                .as_ref()
                .is_none_or(|r| r.contains(&relationship))
    }

    /// The prompt an `allow_with_prompt` override shows: its own, else the action's F2 one.
    pub(crate) fn effective_prompt(&self) -> Option<PromptKey> {
        self.prompt.clone().or_else(|| self.action.f2_prompt())
    }
}

/// A contact policy as the operator writes it. Every field has a child-safe default, so an
/// empty file is the default policy.
///
/// ```toml
/// child_bands = ["under_13", "13_15", "16_17"]
/// unknown_age = "treat_as_child"
/// min_adult_confidence = 0.5
/// adult_methods = ["self_declared", "inferred", "estimation", "verification", "id_document"]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// The age bands whose accounts are child users. Default: all three bands under 18, as
    /// the Online Safety Act defines a child. A platform may narrow it from the top (drop
    /// `16_17`, then `13_15`) but a younger band always counts when an older one does, and
    /// `under_13` always counts.
    #[serde(default = "default_child_bands")]
    pub child_bands: Vec<AgeBand>,
    /// What an unknown age is treated as. Default: `treat_as_child`.
    #[serde(default)]
    pub unknown_age: UnknownAgeRule,
    /// The least confidence, 0 to 1, at which an adult claim is believed; below it the
    /// account is treated per `unknown_age`. Default: [`DEFAULT_MIN_ADULT_CONFIDENCE`].
    #[serde(default = "default_min_adult_confidence")]
    pub min_adult_confidence: f64,
    /// The assurance methods whose adult claims are believed at all; a claim made any other
    /// way is treated per `unknown_age`. Default: every method but `none`. A platform held to
    /// highly effective age assurance lists `estimation`, `verification` and `id_document`.
    #[serde(default = "default_adult_methods")]
    pub adult_methods: Vec<AssuranceMethod>,
    /// Departures from the defaults, tried in order; the first that matches decides. Written
    /// as `[[override]]` tables in TOML, an `"override"` array in JSON.
    #[serde(default, rename = "override", skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<OverrideSpec>,
}

fn default_child_bands() -> Vec<AgeBand> {
    AgeBand::MINORS.to_vec()
}

fn default_min_adult_confidence() -> f64 {
    DEFAULT_MIN_ADULT_CONFIDENCE
}

fn default_adult_methods() -> Vec<AssuranceMethod> {
    AssuranceMethod::ALL
        .iter()
        .copied()
        .filter(|m| *m != AssuranceMethod::Unchecked)
        .collect()
}

impl Default for PolicySpec {
    fn default() -> Self {
        PolicySpec {
            child_bands: default_child_bands(),
            unknown_age: UnknownAgeRule::default(),
            min_adult_confidence: DEFAULT_MIN_ADULT_CONFIDENCE,
            adult_methods: default_adult_methods(),
            overrides: Vec::new(),
        }
    }
}

impl PolicySpec {
    /// Checks everything serde cannot; the first problem found is returned.
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_child_bands()?;
        let c = self.min_adult_confidence;
        if !(0.0..=1.0).contains(&c) {
            return Err(Error::policy(
                "min_adult_confidence",
                format!("{c} is outside 0 to 1"),
            ));
        }
        if self.adult_methods.is_empty() {
            return Err(Error::policy(
                "adult_methods",
                "is empty, so no adult claim would ever be believed; list the methods whose \
                 adult claims to accept (for highly effective age assurance only: estimation, \
                 verification, id_document)",
            ));
        }
        if let Some(m) = first_duplicate(&self.adult_methods) {
            return Err(Error::policy(
                "adult_methods",
                format!("lists `{m}` more than once"),
            ));
        }
        if self.overrides.len() > MAX_OVERRIDES {
            return Err(Error::policy(
                "override",
                format!(
                    "{} overrides given; a policy holds at most {MAX_OVERRIDES}",
                    self.overrides.len()
                ),
            ));
        }
        for (i, o) in self.overrides.iter().enumerate() {
            validate_override(i, o)?;
        }
        Ok(())
    }

    fn validate_child_bands(&self) -> Result<(), Error> {
        let bands = &self.child_bands;
        if bands.is_empty() {
            return Err(Error::policy(
                "child_bands",
                "is empty; at least `under_13` must count as a child user",
            ));
        }
        for b in bands {
            match b {
                AgeBand::Adult => {
                    return Err(Error::policy(
                        "child_bands",
                        "lists `adult`, which is never a child band",
                    ))
                }
                AgeBand::Unknown => {
                    return Err(Error::policy(
                        "child_bands",
                        "lists `unknown`; an unknown age is not a band to list: set \
                         `unknown_age` instead",
                    ))
                }
                _ => {}
            }
        }
        if let Some(b) = first_duplicate(bands) {
            return Err(Error::policy(
                "child_bands",
                format!("lists `{b}` more than once"),
            ));
        }
        // Downward closed: a policy protecting 16-year-olds but not 12-year-olds is a typo,
        // never a choice anyone could defend.
        for (i, older) in AgeBand::MINORS.iter().enumerate() {
            if !bands.contains(older) {
                continue;
            }
            if let Some(younger) = AgeBand::MINORS[..i].iter().find(|y| !bands.contains(y)) {
                return Err(Error::policy(
                    "child_bands",
                    format!(
                        "lists `{older}` but not `{younger}`; a younger band must count as \
                         child whenever an older one does"
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn validate_override(i: usize, o: &OverrideSpec) -> Result<(), Error> {
    let at = |field: &str| format!("override[{i}].{field}");
    if o.action.is_protection() && o.outcome == Outcome::Deny {
        return Err(Error::policy(
            at("outcome"),
            format!(
                "`deny` for `{}`: blocking and reporting are a user's own protections and can \
                 never be refused",
                o.action
            ),
        ));
    }
    match (&o.prompt, o.outcome) {
        (Some(_), Outcome::Allow | Outcome::Deny) => {
            return Err(Error::policy(
                at("prompt"),
                format!(
                    "a prompt is shown only with outcome `allow_with_prompt`, not `{}`",
                    o.outcome
                ),
            ))
        }
        (None, Outcome::AllowWithPrompt) if o.action.f2_prompt().is_none() => {
            return Err(Error::policy(
                at("prompt"),
                format!(
                    "is required: ICU F2 names no moment for `{}`, so name the supportive \
                     information to show",
                    o.action
                ),
            ))
        }
        _ => {}
    }
    if let Some(rels) = &o.relationships {
        if rels.is_empty() {
            return Err(Error::policy(
                at("relationships"),
                "is empty; leave it out to match every relationship",
            ));
        }
        if rels.contains(&Relationship::Blocked) {
            return Err(Error::policy(
                at("relationships"),
                "lists `blocked`; a block always stops contact and cannot be overridden",
            ));
        }
        if let Some(r) = first_duplicate(rels) {
            return Err(Error::policy(
                at("relationships"),
                format!("lists `{r}` more than once"),
            ));
        }
    }
    Ok(())
}

fn first_duplicate<T: PartialEq + Copy>(items: &[T]) -> Option<T> {
    items
        .iter()
        .enumerate()
        .find(|(i, x)| items[..*i].contains(x))
        .map(|(_, x)| *x)
}

/// A validated contact policy: the only kind [`crate::decide`] accepts.
///
/// Reads and writes as its [`PolicySpec`], so it can sit directly in a server's TOML
/// configuration; reading it validates it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "PolicySpec", try_from = "PolicySpec")]
pub struct ContactPolicy {
    /// Valid by construction: only [`ContactPolicy::new`] builds one.
    spec: PolicySpec,
}

impl Default for ContactPolicy {
    /// The child-safe defaults of [`PolicySpec::default`], which pass validation (a unit test
    /// proves it).
    fn default() -> Self {
        ContactPolicy {
            spec: PolicySpec::default(),
        }
    }
}

impl TryFrom<PolicySpec> for ContactPolicy {
    type Error = Error;

    fn try_from(spec: PolicySpec) -> Result<Self, Error> {
        ContactPolicy::new(spec)
    }
}

impl From<ContactPolicy> for PolicySpec {
    fn from(p: ContactPolicy) -> PolicySpec {
        p.spec
    }
}

/// How one account was treated, and why, in words for [`crate::Decision::reason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Classified {
    pub(crate) class: AgeClass,
    pub(crate) why: String,
}

impl ContactPolicy {
    /// Validates a spec into a policy.
    pub fn new(spec: PolicySpec) -> Result<ContactPolicy, Error> {
        spec.validate()?;
        Ok(ContactPolicy { spec })
    }

    /// Parses and validates a TOML policy.
    pub fn from_toml(text: &str) -> Result<ContactPolicy, Error> {
        let spec: PolicySpec = toml::from_str(text).map_err(|e| Error::InvalidPolicy {
            field: None,
            message: e.to_string(),
        })?;
        ContactPolicy::new(spec)
    }

    /// Parses and validates a JSON policy.
    pub fn from_json(text: &str) -> Result<ContactPolicy, Error> {
        let spec: PolicySpec = serde_json::from_str(text).map_err(|e| Error::InvalidPolicy {
            field: None,
            message: e.to_string(),
        })?;
        ContactPolicy::new(spec)
    }

    /// The policy as TOML, which [`Self::from_toml`] reads back to an equal policy.
    pub fn to_toml(&self) -> String {
        // Cannot fail: every field is a string, number or array, or an array of tables of
        // those, and absent options are skipped rather than written as a (TOML-less) null.
        toml::to_string(&self.spec).expect("a contact policy always serialises to TOML")
    }

    /// The settings, as written.
    pub fn spec(&self) -> &PolicySpec {
        &self.spec
    }

    /// How the policy treats an account's age.
    pub fn classify(&self, account: &Account) -> AgeClass {
        self.classify_why(account).class
    }

    pub(crate) fn classify_why(&self, account: &Account) -> Classified {
        let band = account.age_band;
        let assurance = account.assurance;
        let unknown = |why: String| {
            let (class, treated) = match self.spec.unknown_age {
                UnknownAgeRule::TreatAsChild => (AgeClass::Child, "treated as a child"),
                UnknownAgeRule::TreatAsAdult => (AgeClass::Adult, "treated as an adult"),
                UnknownAgeRule::DenyContact => (AgeClass::Unknown, "left unknown"),
            };
            Classified {
                class,
                why: format!(
                    "{why}, so {treated} (unknown_age = {})",
                    self.spec.unknown_age
                ),
            }
        };
        match band {
            // A claim to be a child is believed however it was made: believing it wrongly
            // only protects an adult, and a child who says so should never have to prove it.
            b if self.spec.child_bands.contains(&b) => Classified {
                class: AgeClass::Child,
                why: format!("{b} is a child age band"),
            },
            b if b.is_minor() => Classified {
                class: AgeClass::Adult,
                why: format!("{b} is not a child age band under this policy"),
            },
            AgeBand::Adult if !self.spec.adult_methods.contains(&assurance.method) => {
                unknown(format!(
                    "adult claimed by `{}`, a method this policy does not accept for adults",
                    assurance.method
                ))
            }
            AgeBand::Adult if assurance.confidence.get() < self.spec.min_adult_confidence => {
                unknown(format!(
                    "adult claimed at confidence {} (below {})",
                    assurance.confidence.get(),
                    self.spec.min_adult_confidence
                ))
            }
            AgeBand::Adult => Classified {
                class: AgeClass::Adult,
                why: format!(
                    "adult by `{}` at confidence {}",
                    assurance.method,
                    assurance.confidence.get()
                ),
            },
            _ => unknown("age unknown".to_string()),
        }
    }

    /// The first override for this action, actor, target and relationship, with its
    /// position.
    pub(crate) fn find_override(
        &self,
        action: Action,
        actor: AgeClass,
        target: AgeClass,
        relationship: Relationship,
    ) -> Option<(usize, &OverrideSpec)> {
        self.spec
            .overrides
            .iter()
            .enumerate()
            .find(|(_, o)| o.matches(action, actor, target, relationship))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_child_safe() {
        let spec = PolicySpec::default();
        spec.validate().unwrap();
        assert_eq!(
            spec.child_bands,
            [AgeBand::Under13, AgeBand::From13To15, AgeBand::From16To17]
        );
        assert_eq!(spec.unknown_age, UnknownAgeRule::TreatAsChild);
        assert_eq!(spec.min_adult_confidence, 0.5);
        assert_eq!(
            spec.adult_methods,
            [
                AssuranceMethod::SelfDeclared,
                AssuranceMethod::Inferred,
                AssuranceMethod::Estimation,
                AssuranceMethod::Verification,
                AssuranceMethod::IdDocument
            ]
        );
        assert!(spec.overrides.is_empty());
        assert_eq!(ContactPolicy::default().spec(), &spec);
    }

    #[test]
    fn empty_text_is_the_default_policy() {
        assert_eq!(
            ContactPolicy::from_toml("").unwrap(),
            ContactPolicy::default()
        );
        assert_eq!(
            ContactPolicy::from_json("{}").unwrap(),
            ContactPolicy::default()
        );
    }

    #[test]
    fn names_are_the_documented_ones() {
        assert_eq!(
            UnknownAgeRule::NAMES,
            ["treat_as_child", "treat_as_adult", "deny_contact"]
        );
        assert_eq!(ActorScope::NAMES, ["any", "child", "adult"]);
    }

    #[test]
    fn first_duplicate_finds_the_repeat() {
        assert_eq!(first_duplicate(&[1, 2, 3]), None);
        assert_eq!(first_duplicate(&[1, 2, 1, 2]), Some(1));
        assert_eq!(first_duplicate::<u8>(&[]), None);
    }
}
