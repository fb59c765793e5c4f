//! A contact request: who wants to do what to whom, and how the two are related.
//!
//! Parsing goes through a raw form with plain strings ([`RawRequest`]) so that an unknown age
//! band, relationship or action becomes its own [`Error`] variant with its own stable code,
//! naming the field and the accepted values. Parsing with serde alone would fold all of them
//! into one message string the server could only pattern-match.

use serde::{Deserialize, Serialize};

use crate::age::{AgeBand, Assurance, AssuranceMethod, Confidence};
use crate::error::Error;
use crate::measure::PromptKey;
use crate::name::named_enum;

/// Longest account id, in bytes. Ids are the platform's own (a UUID, a numeric id, a handle);
/// 256 bytes holds any of those with room to spare and keeps a decision's log line bounded.
pub const MAX_ACCOUNT_ID_LEN: usize = 256;

named_enum! {
    /// How the two accounts are related, from the platform's social graph.
    pub enum Relationship ("relationship") {
        /// Connected: friends, mutual followers, accepted contacts, whatever the platform
        /// calls the relationship a user chose. ICU F1's "connected".
        Connected => "connected",
        /// Not connected, but with connections in common (friends of friends): the pool
        /// network-expansion features draw suggestions from. Not connected for ICU F1.
        Mutual => "mutual",
        /// No relationship at all.
        Unrelated => "none",
        /// One of the two has blocked the other; which one does not matter.
        Blocked => "blocked",
    }
}

impl Relationship {
    /// Whether the two are connected in ICU F1's sense. `mutual` is not: connections in
    /// common are exactly how a stranger is brought into view.
    pub fn is_connected(self) -> bool {
        self == Relationship::Connected
    }
}

named_enum! {
    /// What the actor wants to do to, or with, the target.
    pub enum Action ("action") {
        /// Send the target a direct message.
        Message => "message",
        /// Ask the target to connect.
        ConnectionRequest => "connection_request",
        /// Network expansion: show the target to the actor as someone to connect with
        /// ("people you may know", "suggested friends").
        Suggest => "suggest",
        /// See the target's connections: the target's own list, or the target's place in
        /// someone else's list. The caller asks once per account it would list.
        ViewConnections => "view_connections",
        /// See the target's location information.
        ViewLocation => "view_location",
        /// See the target's profile.
        ViewProfile => "view_profile",
        /// Block the target. Never refused; a child user gets ICU F2's supportive
        /// information.
        Block => "block",
        /// Report the target. Never refused; a child user gets ICU F2's supportive
        /// information.
        Report => "report",
    }
}

impl Action {
    /// Whether the action is one of the user's own protections (block, report), which no
    /// policy may refuse.
    pub fn is_protection(self) -> bool {
        matches!(self, Action::Block | Action::Report)
    }

    /// The ICU F2 supportive-information moment this action is, when it is one.
    pub fn f2_prompt(self) -> Option<PromptKey> {
        match self {
            Action::Message => Some(PromptKey::FirstMessageFromStranger),
            Action::ConnectionRequest => Some(PromptKey::ConnectionRequest),
            Action::Block | Action::Report => Some(PromptKey::AfterBlockOrReport),
            Action::Suggest
            | Action::ViewConnections
            | Action::ViewLocation
            | Action::ViewProfile => None,
        }
    }
}

/// One account as the platform knows it at the moment of the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawAccount")]
pub struct Account {
    /// The platform's id for the account: 1 to [`MAX_ACCOUNT_ID_LEN`] bytes, no control
    /// characters. Used only to refuse a request with the same account on both sides and to
    /// let the caller correlate the answer.
    pub id: String,
    /// The age band the account claims.
    pub age_band: AgeBand,
    /// How that band was established; no assurance when left out.
    pub assurance: Assurance,
}

impl Account {
    /// An account with the given band and assurance.
    pub fn new(
        id: impl Into<String>,
        age_band: AgeBand,
        method: AssuranceMethod,
        confidence: Confidence,
    ) -> Account {
        Account {
            id: id.into(),
            age_band,
            assurance: Assurance { method, confidence },
        }
    }
}

/// The question `decide` answers: may `actor` do `action` to `target`?
///
/// ```json
/// {
///   "actor":  {"id": "u1", "age_band": "adult",
///              "assurance": {"method": "estimation", "confidence": 0.93}},
///   "target": {"id": "u2", "age_band": "13_15",
///              "assurance": {"method": "self_declared", "confidence": 1.0}},
///   "relationship": "none",
///   "action": "message"
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawRequest")]
pub struct ContactRequest {
    /// Who acts.
    pub actor: Account,
    /// Who is acted on.
    pub target: Account,
    /// How the two are related.
    pub relationship: Relationship,
    /// What the actor wants to do.
    pub action: Action,
}

impl ContactRequest {
    /// Parses and validates a JSON request, with a distinct [`Error`] (and code) for each
    /// kind of bad value.
    pub fn from_json(text: &str) -> Result<ContactRequest, Error> {
        let raw: RawRequest = serde_json::from_str(text).map_err(|e| Error::Malformed {
            message: e.to_string(),
        })?;
        ContactRequest::try_from(raw)
    }

    /// Checks what the types cannot: account ids, and that actor and target differ.
    pub fn validate(&self) -> Result<(), Error> {
        validate_account_id("actor.id", &self.actor.id)?;
        validate_account_id("target.id", &self.target.id)?;
        if self.actor.id == self.target.id {
            return Err(Error::InvalidAccount {
                field: "target.id".into(),
                message: format!(
                    "actor and target are the same account `{}`; a contact decision is \
                     between two accounts",
                    self.target.id
                ),
            });
        }
        Ok(())
    }
}

/// Checks a platform account id: 1 to [`MAX_ACCOUNT_ID_LEN`] bytes, no control characters.
/// `field` names it in the error (`actor.id`, `target.id`, ...).
pub fn validate_account_id(field: &str, id: &str) -> Result<(), Error> {
    let problem = if id.is_empty() {
        Some("is empty; give the platform's id for the account".to_string())
    } else if id.len() > MAX_ACCOUNT_ID_LEN {
        Some(format!(
            "is {} bytes; an account id is at most {MAX_ACCOUNT_ID_LEN}",
            id.len()
        ))
    } else if id.chars().any(char::is_control) {
        Some("contains a control character".to_string())
    } else {
        None
    };
    match problem {
        Some(message) => Err(Error::InvalidAccount {
            field: field.to_string(),
            message,
        }),
        None => Ok(()),
    }
}

/// A request as sent, every name still a string: the form serde reads before
/// [`ContactRequest`]'s conversion gives each bad value its own [`Error`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    actor: RawAccount,
    target: RawAccount,
    relationship: String,
    action: String,
}

/// An account as sent, its names still strings; see [`RawRequest`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    id: String,
    age_band: String,
    #[serde(default)]
    assurance: Option<RawAssurance>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAssurance {
    method: String,
    #[serde(default)]
    confidence: f64,
}

impl RawAccount {
    /// Converts the account; `side` (`actor.`, `target.` or empty) prefixes the field paths
    /// in errors.
    fn parse(self, side: &str) -> Result<Account, Error> {
        let age_band = AgeBand::parse(&self.age_band).ok_or_else(|| Error::UnknownAgeBand {
            field: format!("{side}age_band"),
            value: self.age_band.clone(),
        })?;
        let assurance = match self.assurance {
            None => Assurance::default(),
            Some(a) => {
                let method = AssuranceMethod::parse(&a.method).ok_or_else(|| {
                    Error::UnknownAssuranceMethod {
                        field: format!("{side}assurance.method"),
                        value: a.method.clone(),
                    }
                })?;
                let confidence =
                    Confidence::new(a.confidence).ok_or_else(|| Error::InvalidConfidence {
                        field: format!("{side}assurance.confidence"),
                        value: a.confidence,
                    })?;
                Assurance { method, confidence }
            }
        };
        Ok(Account {
            id: self.id,
            age_band,
            assurance,
        })
    }
}

impl TryFrom<RawAccount> for Account {
    type Error = Error;

    fn try_from(raw: RawAccount) -> Result<Self, Error> {
        let account = raw.parse("")?;
        validate_account_id("id", &account.id)?;
        Ok(account)
    }
}

impl TryFrom<RawRequest> for ContactRequest {
    type Error = Error;

    fn try_from(raw: RawRequest) -> Result<Self, Error> {
        let actor = raw.actor.parse("actor.")?;
        let target = raw.target.parse("target.")?;
        let relationship =
            Relationship::parse(&raw.relationship).ok_or(Error::UnknownRelationship {
                value: raw.relationship,
            })?;
        let action =
            Action::parse(&raw.action).ok_or(Error::UnknownAction { value: raw.action })?;
        let request = ContactRequest {
            actor,
            target,
            relationship,
            action,
        };
        request.validate()?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_documented_ones() {
        assert_eq!(
            Relationship::NAMES,
            ["connected", "mutual", "none", "blocked"]
        );
        assert_eq!(
            Action::NAMES,
            [
                "message",
                "connection_request",
                "suggest",
                "view_connections",
                "view_location",
                "view_profile",
                "block",
                "report"
            ]
        );
    }

    #[test]
    fn only_connected_is_connected() {
        assert!(Relationship::Connected.is_connected());
        assert!(!Relationship::Mutual.is_connected());
        assert!(!Relationship::Unrelated.is_connected());
        assert!(!Relationship::Blocked.is_connected());
    }

    #[test]
    fn f2_moments_of_actions() {
        assert_eq!(
            Action::Message.f2_prompt(),
            Some(PromptKey::FirstMessageFromStranger)
        );
        assert_eq!(
            Action::ConnectionRequest.f2_prompt(),
            Some(PromptKey::ConnectionRequest)
        );
        assert_eq!(
            Action::Block.f2_prompt(),
            Some(PromptKey::AfterBlockOrReport)
        );
        assert_eq!(
            Action::Report.f2_prompt(),
            Some(PromptKey::AfterBlockOrReport)
        );
        for a in [
            Action::Suggest,
            Action::ViewConnections,
            Action::ViewLocation,
            Action::ViewProfile,
        ] {
            assert_eq!(a.f2_prompt(), None, "{a}");
        }
    }

    #[test]
    fn ids_are_bounded() {
        assert!(validate_account_id("actor.id", "u1").is_ok());
        assert!(validate_account_id("actor.id", &"x".repeat(MAX_ACCOUNT_ID_LEN)).is_ok());
        let long =
            validate_account_id("actor.id", &"x".repeat(MAX_ACCOUNT_ID_LEN + 1)).unwrap_err();
        assert_eq!(long.code(), "invalid_account");
        assert!(validate_account_id("actor.id", "").is_err());
        assert!(validate_account_id("actor.id", "a\nb").is_err());
    }
}
