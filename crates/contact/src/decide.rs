//! The decision: the defaults of ICU F1 and F2, then the operator's overrides.
//!
//! Order matters and is fixed:
//! 1. `block` and `report` are always allowed: a user's own protections are never refused,
//!    whatever else holds (ICU F2's supportive information goes with them for a child user);
//! 2. a block between the two accounts denies everything else, both ways;
//! 3. under `unknown_age = "deny_contact"`, an account of unknown age on either side denies
//!    everything else;
//! 4. the action's child-safety default (the table in `docs/child-safety.md`);
//! 5. the first matching override, where that default is an overridable measure that did not
//!    already plainly allow the action.
//!
//! Steps 1 to 3 come before any override so that no policy can switch them off.

use crate::age::AgeClass;
use crate::decision::{Decision, Outcome};
use crate::measure::{Measure, PromptKey, Recipient};
use crate::policy::ContactPolicy;
use crate::request::{Action, ContactRequest, Relationship};

/// Decides whether `request.actor` may do `request.action` to `request.target` under
/// `policy`, and on which measure that rests.
///
/// Pure and total: no I/O, no clock, and an answer for every request (a request that could
/// not be decided never parses; see [`ContactRequest::from_json`]).
///
/// A child user is an account the policy treats as one ([`ContactPolicy::classify`]). The
/// codes protect child users whoever contacts them, so the defaults do not distinguish an
/// adult reaching a child from another child doing so; an operator who wants children to
/// reach each other more freely says so with an override scoped to `actor = "child"` and
/// `target = "child"`.
pub fn decide(request: &ContactRequest, policy: &ContactPolicy) -> Decision {
    let actor = policy.classify_why(&request.actor);
    let target = policy.classify_why(&request.target);
    let action = request.action;
    let relationship = request.relationship;
    let mut d = default_rule(action, relationship, actor.class, target.class);

    let mut overridden = false;
    if d.measure.is_overridable() && d.outcome != Outcome::Allow {
        if let Some((i, o)) = policy.find_override(action, actor.class, target.class, relationship)
        {
            overridden = true;
            d.outcome = o.outcome;
            d.prompt = match o.outcome {
                Outcome::AllowWithPrompt => o.effective_prompt(),
                Outcome::Allow | Outcome::Deny => None,
            };
            d.prompt_to = d
                .prompt
                .as_ref()
                .map(|_| d.prompt_to.unwrap_or(recipient(actor.class, target.class)));
            d.rule = format!(
                "{} The policy's override[{i}] sets `{}` instead.",
                d.rule, o.outcome
            );
        }
    }

    Decision {
        outcome: d.outcome,
        measure: d.measure,
        prompt: d.prompt,
        prompt_to: d.prompt_to,
        overridden,
        actor_treated_as: actor.class,
        target_treated_as: target.class,
        reason: format!("{} Actor: {}. Target: {}.", d.rule, actor.why, target.why),
    }
}

/// A default decision before overrides, with the sentence saying which rule made it.
#[derive(Debug)]
struct Rule {
    outcome: Outcome,
    measure: Measure,
    prompt: Option<PromptKey>,
    prompt_to: Option<Recipient>,
    rule: String,
}

fn allow(measure: Measure, rule: impl Into<String>) -> Rule {
    Rule {
        outcome: Outcome::Allow,
        measure,
        prompt: None,
        prompt_to: None,
        rule: rule.into(),
    }
}

fn deny(measure: Measure, rule: impl Into<String>) -> Rule {
    Rule {
        outcome: Outcome::Deny,
        ..allow(measure, rule)
    }
}

fn prompt(measure: Measure, key: PromptKey, to: Recipient, rule: impl Into<String>) -> Rule {
    Rule {
        outcome: Outcome::AllowWithPrompt,
        measure,
        prompt: Some(key),
        prompt_to: Some(to),
        rule: rule.into(),
    }
}

/// The child users of the pair, who get the supportive information. Called only where at
/// least one side is a child user; were neither, the target is the one acted on.
fn recipient(actor: AgeClass, target: AgeClass) -> Recipient {
    match (actor == AgeClass::Child, target == AgeClass::Child) {
        (true, true) => Recipient::Both,
        (true, false) => Recipient::Actor,
        (false, _) => Recipient::Target,
    }
}

fn default_rule(action: Action, rel: Relationship, actor: AgeClass, target: AgeClass) -> Rule {
    if action.is_protection() {
        // An actor of unknown age (deny_contact) may be a child: the information costs an
        // adult nothing, and a child who blocks someone may need it badly.
        return if actor == AgeClass::Adult {
            allow(
                Measure::NoneApplies,
                format!("A user's {action} is never refused; the actor is not a child user."),
            )
        } else {
            prompt(
                Measure::F2BlockOrReport,
                PromptKey::AfterBlockOrReport,
                Recipient::Actor,
                format!(
                    "A user's {action} is never refused; ICU F2 gives a child user supportive \
                     information when it blocks or reports."
                ),
            )
        };
    }
    if rel == Relationship::Blocked {
        return deny(
            Measure::Blocked,
            "One account has blocked the other, which stops all contact both ways.",
        );
    }
    if actor == AgeClass::Unknown || target == AgeClass::Unknown {
        // Only reachable under deny_contact: the other rules never leave an age unknown.
        return deny(
            Measure::UnknownAgeNoContact,
            "An account's age is unknown, and the policy allows no contact until it is known.",
        );
    }

    let actor_child = actor == AgeClass::Child;
    let target_child = target == AgeClass::Child;
    let connected = rel.is_connected();
    if !actor_child && !target_child {
        return allow(
            Measure::NoneApplies,
            "Neither account is treated as a child user, so no child-safety measure applies.",
        );
    }
    let not_connected = format!("the accounts are not connected (relationship `{rel}`)");
    match action {
        Action::Message if connected => allow(
            Measure::F1NoDirectMessages,
            "ICU F1 keeps direct messages with a child user to its connections, and these \
             accounts are connected.",
        ),
        // The code bars messages *to* a child from non-connected users. A child's message to
        // a stranger is refused too: the thread it opens could only be answered by the
        // message F1 bars, and the child's side of it already reaches a stranger.
        Action::Message => deny(
            Measure::F1NoDirectMessages,
            format!(
                "ICU F1 keeps direct messages with a child user to its connections, and \
                 {not_connected}."
            ),
        ),
        Action::ConnectionRequest if connected => allow(
            Measure::F2ConnectionRequest,
            "The accounts are already connected, so there is no request to support.",
        ),
        Action::ConnectionRequest => prompt(
            Measure::F2ConnectionRequest,
            PromptKey::ConnectionRequest,
            recipient(actor, target),
            format!(
                "ICU F1 does not bar connection requests; ICU F2 gives the child user \
                 supportive information at one, and {not_connected}."
            ),
        ),
        Action::Suggest => {
            // The target's protection is named first: being found is the harm F1 targets.
            let measure = if target_child {
                Measure::F1NotInNetworkExpansion
            } else {
                Measure::F1NoNetworkExpansionForChild
            };
            let whose = if target_child {
                "a child user is not suggested to other users"
            } else {
                "a child user is not shown suggestions"
            };
            if connected {
                allow(
                    measure,
                    format!(
                        "Under ICU F1 {whose}, but these accounts are already connected, so \
                         this is not network expansion."
                    ),
                )
            } else {
                deny(
                    measure,
                    format!("Under ICU F1 {whose}, and {not_connected}."),
                )
            }
        }
        Action::ViewConnections if target_child => deny(
            Measure::F1ConnectionListsHidden,
            "ICU F1 hides a child user's connections, and its place in others' connection \
             lists, from every other user, connected or not.",
        ),
        Action::ViewLocation if target_child => deny(
            Measure::F1LocationHidden,
            "ICU F1 hides a child user's location from every other user, connected or not.",
        ),
        Action::ViewProfile if target_child && connected => allow(
            Measure::ChildProfilePrivate,
            "A child user's profile is visible to its connections, and these accounts are \
             connected.",
        ),
        Action::ViewProfile if target_child => deny(
            Measure::ChildProfilePrivate,
            format!(
                "A child user's profile is visible only to its connections (a Safeguard \
                 default beyond ICU F1), and {not_connected}."
            ),
        ),
        Action::ViewConnections | Action::ViewLocation | Action::ViewProfile => allow(
            Measure::NoneApplies,
            "The target is not a child user, and no measure restricts what a child user may \
             view of others.",
        ),
        Action::Block | Action::Report => unreachable!("protections are decided above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_the_child_users() {
        use AgeClass::*;
        assert_eq!(recipient(Child, Child), Recipient::Both);
        assert_eq!(recipient(Child, Adult), Recipient::Actor);
        assert_eq!(recipient(Adult, Child), Recipient::Target);
    }
}
