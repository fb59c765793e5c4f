//! The measures a decision rests on, and the supportive-information prompts it asks for.
//!
//! # Source
//!
//! The `ICU F1` and `ICU F2` measures are those of Ofcom's *Illegal content Codes of Practice
//! for user-to-user services* (issued 24 February 2025; in force from 17 March 2025),
//! published with Ofcom's *Statement: Protecting people from illegal harms online*
//! (16 December 2024,
//! <https://ofcom.org.uk/online-safety/illegal-and-harmful-content/statement-protecting-people-from-illegal-harms-online>).
//! ICU F1 sets default settings for child users; ICU F2 gives child users supportive
//! information at the moments that matter.
//!
//! Each [`Measure::text`] is Safeguard's one-sentence statement of one element of a measure,
//! not a quotation of the Code: the Code's own paragraphs were not available to check word for
//! word when this was written. The elements follow the defaults Ofcom proposed in its
//! consultation (9 November 2023), quoted in `docs/child-safety.md`, and the project's notes
//! on the final Code (`../shared/docs/contact-safety.md`). Check them against the Code before
//! relying on them as its wording.
//!
//! Measures coded `Safeguard` are this project's own child-safe defaults, not Ofcom's; their
//! texts and `docs/child-safety.md` say why each exists.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::name::named_enum;

named_enum! {
    @core
    /// One element of a measure that a decision rests on.
    ///
    /// Serialised as an object, `{"id", "code", "text"}`: `id` is the stable key a client
    /// should match on, `code` the measure's reference (`ICU F1`), `text` what it says.
    /// Deserialised from that object by `id` alone, so a client built against an older text
    /// still reads a newer answer.
    pub enum Measure ("measure") {
        /// No measure restricts this action between these accounts.
        NoneApplies => "none",
        /// ICU F1: child users are not shown network-expansion prompts.
        F1NoNetworkExpansionForChild => "icu_f1_no_network_expansion_prompts_to_child",
        /// ICU F1: child users are not put in other users' network-expansion prompts.
        F1NotInNetworkExpansion => "icu_f1_not_in_network_expansion_prompts",
        /// ICU F1: child users' connection lists, and their place in others' lists, are hidden.
        F1ConnectionListsHidden => "icu_f1_connection_lists_hidden",
        /// ICU F1: no direct messages between a child user and a user it is not connected
        /// with.
        F1NoDirectMessages => "icu_f1_no_direct_messages_from_non_connected",
        /// ICU F1: child users' location is not visible to other users.
        F1LocationHidden => "icu_f1_location_hidden",
        /// ICU F2: supportive information at a connection request with a non-connected user.
        F2ConnectionRequest => "icu_f2_connection_request",
        /// ICU F2: supportive information when a child user blocks or reports.
        F2BlockOrReport => "icu_f2_block_or_report",
        /// Safeguard: a child user's profile is visible to its connections only.
        ChildProfilePrivate => "safeguard_child_profile_private",
        /// Safeguard: a block stops all contact, both ways.
        Blocked => "safeguard_block_both_ways",
        /// Safeguard, under `unknown_age = "deny_contact"`: no contact while an age is unknown.
        UnknownAgeNoContact => "safeguard_unknown_age_no_contact",
    }
}

impl Measure {
    /// The measure's reference: `ICU F1`, `ICU F2`, `Safeguard`, or `none`.
    pub fn code(self) -> &'static str {
        match self {
            Measure::NoneApplies => "none",
            Measure::F1NoNetworkExpansionForChild
            | Measure::F1NotInNetworkExpansion
            | Measure::F1ConnectionListsHidden
            | Measure::F1NoDirectMessages
            | Measure::F1LocationHidden => "ICU F1",
            Measure::F2ConnectionRequest | Measure::F2BlockOrReport => "ICU F2",
            Measure::ChildProfilePrivate | Measure::Blocked | Measure::UnknownAgeNoContact => {
                "Safeguard"
            }
        }
    }

    /// What the measure says, in one sentence.
    pub fn text(self) -> &'static str {
        match self {
            Measure::NoneApplies => {
                "No child-safety measure restricts this action between these accounts."
            }
            Measure::F1NoNetworkExpansionForChild => {
                "Child users are not presented with network expansion prompts (suggestions of \
                 users to connect with)."
            }
            Measure::F1NotInNetworkExpansion => {
                "Child users are not included in network expansion prompts presented to other \
                 users."
            }
            Measure::F1ConnectionListsHidden => {
                "Child users are not visible in other users' connection lists, and their own \
                 connection lists are not visible to other users."
            }
            Measure::F1NoDirectMessages => {
                "Users who are not connected with a child user cannot send it direct messages."
            }
            Measure::F1LocationHidden => {
                "A child user's location information is not visible to other users."
            }
            Measure::F2ConnectionRequest => {
                "Child users are given supportive information when they receive a connection \
                 request from, or send one to, a user they are not connected with."
            }
            Measure::F2BlockOrReport => {
                "Child users are given supportive information when they block or report another \
                 user."
            }
            Measure::ChildProfilePrivate => {
                "A child user's profile is visible only to the users it is connected with."
            }
            Measure::Blocked => {
                "A block stops all contact between the two accounts, in both directions."
            }
            Measure::UnknownAgeNoContact => {
                "An account whose age is unknown has no contact with other accounts until its \
                 age is established."
            }
        }
    }

    /// Whether a policy override may change the outcome this measure gives. The codes'
    /// defaults and Safeguard's profile default may be departed from, as the codes allow a
    /// provider to (by recording why); a block and the operator's own unknown-age rule may
    /// not: the first is the user's choice, the second already is the operator's.
    pub fn is_overridable(self) -> bool {
        !matches!(
            self,
            Measure::NoneApplies | Measure::Blocked | Measure::UnknownAgeNoContact
        )
    }
}

impl Serialize for Measure {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Measure", 3)?;
        st.serialize_field("id", self.as_str())?;
        st.serialize_field("code", self.code())?;
        st.serialize_field("text", self.text())?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for Measure {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Only the id is read: the text may be reworded without breaking older clients.
        #[derive(Deserialize)]
        struct Repr {
            id: String,
        }
        let repr = Repr::deserialize(d)?;
        Measure::parse(&repr.id)
            .ok_or_else(|| serde::de::Error::custom(Measure::unknown_message(&repr.id)))
    }
}

/// Longest prompt key an operator may define, in bytes: a key names a message in the
/// platform's own catalogue, and 64 bytes is ample for a descriptive snake_case name.
pub const MAX_PROMPT_KEY_LEN: usize = 64;

/// Which supportive information the platform should show: a stable key into the platform's
/// own catalogue of messages (Safeguard does not write the messages).
///
/// The three named keys are ICU F2's moments. An operator's override may name others
/// (`[a-z][a-z0-9_]{0,63}`), for actions the codes give no moment for, such as a profile view.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PromptKey {
    /// `first_message_from_stranger`: a direct message between a child user and a user it is
    /// not connected with, where the policy allows one (ICU F1 denies it by default).
    FirstMessageFromStranger,
    /// `connection_request`: a child user receives a connection request from, or sends one
    /// to, a user it is not connected with.
    ConnectionRequest,
    /// `after_block_or_report`: a child user has just blocked or reported someone.
    AfterBlockOrReport,
    /// A key the operator defined in an override.
    Custom(String),
}

impl PromptKey {
    /// The keys of ICU F2's moments, as written.
    pub const F2_NAMES: &'static [&'static str] = &[
        "first_message_from_stranger",
        "connection_request",
        "after_block_or_report",
    ];

    /// The key as written.
    pub fn as_str(&self) -> &str {
        match self {
            PromptKey::FirstMessageFromStranger => "first_message_from_stranger",
            PromptKey::ConnectionRequest => "connection_request",
            PromptKey::AfterBlockOrReport => "after_block_or_report",
            PromptKey::Custom(k) => k,
        }
    }

    /// Parses a key: one of [`Self::F2_NAMES`], else an operator's key of the form
    /// `[a-z][a-z0-9_]{0,63}`. The error says what is wrong.
    pub fn parse(s: &str) -> Result<PromptKey, String> {
        match s {
            "first_message_from_stranger" => Ok(PromptKey::FirstMessageFromStranger),
            "connection_request" => Ok(PromptKey::ConnectionRequest),
            "after_block_or_report" => Ok(PromptKey::AfterBlockOrReport),
            _ => {
                let well_formed = s.len() <= MAX_PROMPT_KEY_LEN
                    && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if well_formed {
                    Ok(PromptKey::Custom(s.to_string()))
                } else {
                    Err(format!(
                        "prompt key `{s}` is not of the form [a-z][a-z0-9_]{{0,63}} (a \
                         snake_case name of at most {MAX_PROMPT_KEY_LEN} bytes)"
                    ))
                }
            }
        }
    }

    /// Whether this is one of ICU F2's moments rather than an operator's key.
    pub fn is_f2(&self) -> bool {
        !matches!(self, PromptKey::Custom(_))
    }
}

impl std::fmt::Display for PromptKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for PromptKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PromptKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PromptKey::parse(&s).map_err(serde::de::Error::custom)
    }
}

named_enum! {
    /// Who should be shown the supportive information: the child user or users in the
    /// exchange, never an adult (the information is for children).
    pub enum Recipient ("prompt recipient") {
        /// The actor (a child user acting: sending a request, blocking, reporting).
        Actor => "actor",
        /// The target (a child user acted on: receiving a request or a message).
        Target => "target",
        /// Both, when both are child users.
        Both => "both",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measure_serialises_as_id_code_text_and_reads_back_by_id() {
        let json = serde_json::to_string(&Measure::F1LocationHidden).unwrap();
        assert_eq!(
            json,
            r#"{"id":"icu_f1_location_hidden","code":"ICU F1","text":"A child user's location information is not visible to other users."}"#
        );
        for m in Measure::ALL {
            let json = serde_json::to_string(m).unwrap();
            assert_eq!(serde_json::from_str::<Measure>(&json).unwrap(), *m);
        }
        let reworded: Measure =
            serde_json::from_str(r#"{"id":"icu_f1_location_hidden","text":"older wording"}"#)
                .unwrap();
        assert_eq!(reworded, Measure::F1LocationHidden);
        assert!(serde_json::from_str::<Measure>(r#"{"id":"icu_z9"}"#).is_err());
    }

    #[test]
    fn what_may_be_overridden() {
        let fixed = [
            Measure::NoneApplies,
            Measure::Blocked,
            Measure::UnknownAgeNoContact,
        ];
        for m in Measure::ALL {
            assert_eq!(m.is_overridable(), !fixed.contains(m), "{m}");
        }
    }

    #[test]
    fn prompt_keys_parse_f2_names_and_well_formed_custom_keys() {
        for name in PromptKey::F2_NAMES {
            let k = PromptKey::parse(name).unwrap();
            assert!(k.is_f2());
            assert_eq!(k.as_str(), *name);
        }
        assert_eq!(
            PromptKey::parse("profile_view2"),
            Ok(PromptKey::Custom("profile_view2".into()))
        );
        assert!(!PromptKey::parse("profile_view2").unwrap().is_f2());
        for bad in ["", "Profile", "2fa", "a-b", "a b", &"a".repeat(65)] {
            assert!(PromptKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(PromptKey::parse(&"a".repeat(64)).is_ok());
        let k: PromptKey = serde_json::from_str("\"connection_request\"").unwrap();
        assert_eq!(k, PromptKey::ConnectionRequest);
        assert_eq!(serde_json::to_string(&k).unwrap(), "\"connection_request\"");
    }
}
