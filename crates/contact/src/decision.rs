//! What `decide` answers.

use serde::{Deserialize, Serialize};

use crate::age::AgeClass;
use crate::measure::{Measure, PromptKey, Recipient};
use crate::name::named_enum;

named_enum! {
    /// Whether the action goes ahead.
    pub enum Outcome ("outcome") {
        /// It goes ahead.
        Allow => "allow",
        /// It does not.
        Deny => "deny",
        /// It goes ahead, and the platform shows the child user (or users) the supportive
        /// information named by [`Decision::prompt`].
        AllowWithPrompt => "allow_with_prompt",
    }
}

/// The answer to a [`crate::ContactRequest`].
///
/// Invariant: `prompt` and `prompt_to` are present exactly when `outcome` is
/// `allow_with_prompt`.
///
/// ```json
/// {
///   "outcome": "deny",
///   "measure": {"id": "icu_f1_no_direct_messages_from_non_connected", "code": "ICU F1",
///               "text": "Users who are not connected with a child user cannot send it direct messages."},
///   "overridden": false,
///   "actor_treated_as": "adult",
///   "target_treated_as": "child",
///   "reason": "..."
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Whether the action goes ahead.
    pub outcome: Outcome,
    /// The measure the outcome rests on. When an override changed the outcome, still the
    /// measure whose default was departed from, so an audit sees what was overridden.
    pub measure: Measure,
    /// The supportive information to show, when the outcome is `allow_with_prompt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<PromptKey>,
    /// Whom to show it to, when there is a prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_to: Option<Recipient>,
    /// Whether the operator's policy override, not the measure's default, set the outcome.
    pub overridden: bool,
    /// How the actor was treated after the policy's age rules.
    pub actor_treated_as: AgeClass,
    /// How the target was treated after the policy's age rules.
    pub target_treated_as: AgeClass,
    /// Why, in a sentence or two for the people who read logs and appeals: the rule that
    /// applied and how each account's age was treated. Not stable: match on `measure.id`.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names() {
        assert_eq!(Outcome::NAMES, ["allow", "deny", "allow_with_prompt"]);
        for o in Outcome::ALL {
            let json = serde_json::to_string(o).unwrap();
            assert_eq!(serde_json::from_str::<Outcome>(&json).unwrap(), *o);
        }
    }
}
