//! ICU F2's moments: the prompt key, and who is shown it.

use safeguard_contact::{
    Action, AgeBand, AgeClass, ContactPolicy, Measure, Outcome, PromptKey, Recipient, Relationship,
};

use crate::common::*;

#[test]
fn connection_request_from_a_stranger_prompts_the_child_who_receives_it() {
    let d = run_default(
        adult("a"),
        child("c", AgeBand::From13To15),
        Relationship::Unrelated,
        Action::ConnectionRequest,
    );
    assert_eq!(d.outcome, Outcome::AllowWithPrompt);
    assert_eq!(d.measure, Measure::F2ConnectionRequest);
    assert_eq!(d.prompt, Some(PromptKey::ConnectionRequest));
    assert_eq!(d.prompt_to, Some(Recipient::Target));
}

#[test]
fn connection_request_to_a_stranger_prompts_the_child_who_sends_it() {
    let d = run_default(
        child("c", AgeBand::Under13),
        adult("a"),
        Relationship::Mutual,
        Action::ConnectionRequest,
    );
    assert_eq!(d.outcome, Outcome::AllowWithPrompt);
    assert_eq!(d.prompt, Some(PromptKey::ConnectionRequest));
    assert_eq!(d.prompt_to, Some(Recipient::Actor));
}

#[test]
fn connection_request_between_two_children_prompts_both() {
    let d = run_default(
        child("c1", AgeBand::From16To17),
        child("c2", AgeBand::From13To15),
        Relationship::Unrelated,
        Action::ConnectionRequest,
    );
    assert_eq!(d.prompt, Some(PromptKey::ConnectionRequest));
    assert_eq!(d.prompt_to, Some(Recipient::Both));
}

#[test]
fn connected_accounts_need_no_connection_request_prompt() {
    let d = run_default(
        adult("a"),
        child("c", AgeBand::From13To15),
        Relationship::Connected,
        Action::ConnectionRequest,
    );
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.prompt, None);
    assert_eq!(d.prompt_to, None);
}

#[test]
fn first_message_from_a_stranger_prompts_where_the_policy_allows_it() {
    // F1 denies the message by default, so the F2 moment arises only where the platform
    // allows such messages, as a service without connection lists has to.
    let p = policy(
        r#"
        [[override]]
        action = "message"
        outcome = "allow_with_prompt"
        "#,
    );
    let d = run(
        &p,
        adult("a"),
        child("c", AgeBand::From13To15),
        Relationship::Unrelated,
        Action::Message,
    );
    assert_eq!(d.outcome, Outcome::AllowWithPrompt);
    assert_eq!(d.prompt, Some(PromptKey::FirstMessageFromStranger));
    assert_eq!(d.prompt_to, Some(Recipient::Target));
    assert_eq!(d.measure, Measure::F1NoDirectMessages);
    assert!(d.overridden);

    // Between connected accounts there is no stranger, and no prompt.
    let d = run(
        &p,
        adult("a"),
        child("c", AgeBand::From13To15),
        Relationship::Connected,
        Action::Message,
    );
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.prompt, None);
    assert!(!d.overridden);
}

#[test]
fn a_child_who_blocks_or_reports_gets_support_whatever_the_relationship() {
    for action in [Action::Block, Action::Report] {
        for relationship in Relationship::ALL {
            let d = run_default(
                child("c", AgeBand::From13To15),
                adult("a"),
                *relationship,
                action,
            );
            assert_eq!(
                d.outcome,
                Outcome::AllowWithPrompt,
                "{action} {relationship}"
            );
            assert_eq!(d.measure, Measure::F2BlockOrReport);
            assert_eq!(d.prompt, Some(PromptKey::AfterBlockOrReport));
            assert_eq!(
                d.prompt_to,
                Some(Recipient::Actor),
                "the child who blocked, not the one blocked"
            );
        }
    }
}

#[test]
fn an_adult_who_blocks_a_child_gets_no_prompt_and_neither_does_the_child() {
    let d = run_default(
        adult("a"),
        child("c", AgeBand::Under13),
        Relationship::Unrelated,
        Action::Block,
    );
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.measure, Measure::NoneApplies);
    assert_eq!(d.prompt, None);
}

#[test]
fn an_unknown_age_blocking_under_deny_contact_still_gets_support() {
    let p = policy("unknown_age = \"deny_contact\"");
    let d = run(
        &p,
        unknown("u"),
        adult("a"),
        Relationship::Unrelated,
        Action::Report,
    );
    assert_eq!(d.actor_treated_as, AgeClass::Unknown);
    assert_eq!(d.outcome, Outcome::AllowWithPrompt);
    assert_eq!(d.prompt, Some(PromptKey::AfterBlockOrReport));
}

/// Over the whole grid and several policies: a prompt and its recipient come exactly with
/// `allow_with_prompt`, and only ever go to a child user.
#[test]
fn prompts_come_exactly_with_allow_with_prompt_and_go_to_children() {
    let policies = [
        ContactPolicy::default(),
        policy(
            r#"
            [[override]]
            action = "view_profile"
            outcome = "allow_with_prompt"
            prompt = "profile_view"
            [[override]]
            action = "message"
            outcome = "allow_with_prompt"
            "#,
        ),
    ];
    for p in &policies {
        for action in Action::ALL {
            for relationship in Relationship::ALL {
                for actor_band in AgeBand::ALL {
                    for target_band in AgeBand::ALL {
                        let d = run(
                            p,
                            of_band("x", *actor_band),
                            of_band("y", *target_band),
                            *relationship,
                            *action,
                        );
                        let prompted = d.outcome == Outcome::AllowWithPrompt;
                        assert_eq!(d.prompt.is_some(), prompted, "{d:?}");
                        assert_eq!(d.prompt_to.is_some(), prompted, "{d:?}");
                        let child = |c: AgeClass| c == AgeClass::Child;
                        match d.prompt_to {
                            Some(Recipient::Actor) => assert!(child(d.actor_treated_as)),
                            Some(Recipient::Target) => assert!(child(d.target_treated_as)),
                            Some(Recipient::Both) => {
                                assert!(child(d.actor_treated_as) && child(d.target_treated_as))
                            }
                            None => {}
                        }
                    }
                }
            }
        }
    }
}
