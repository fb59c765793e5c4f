//! The operator's overrides: what they may change, and what they may not.

use safeguard_contact::{Action, AgeBand, Measure, Outcome, PromptKey, Recipient, Relationship};

use crate::common::*;

#[test]
fn view_profile_may_be_allowed_with_the_operators_prompt() {
    let p = policy(
        r#"
        [[override]]
        action = "view_profile"
        outcome = "allow_with_prompt"
        prompt = "profile_view_by_non_connected"
        relationships = ["mutual"]
        "#,
    );
    let c = || child("c", AgeBand::From13To15);

    let d = run(
        &p,
        adult("a"),
        c(),
        Relationship::Mutual,
        Action::ViewProfile,
    );
    assert_eq!(d.outcome, Outcome::AllowWithPrompt);
    assert_eq!(
        d.prompt,
        Some(PromptKey::Custom("profile_view_by_non_connected".into()))
    );
    assert_eq!(d.prompt_to, Some(Recipient::Target));
    assert_eq!(
        d.measure,
        Measure::ChildProfilePrivate,
        "the default departed from"
    );
    assert!(d.overridden);
    assert!(d.reason.contains("override[0]"), "{}", d.reason);

    // Outside its relationships the default stands.
    let d = run(
        &p,
        adult("a"),
        c(),
        Relationship::Unrelated,
        Action::ViewProfile,
    );
    assert_eq!(d.outcome, Outcome::Deny);
    assert!(!d.overridden);
    // And a plain allow is left alone.
    let d = run(
        &p,
        adult("a"),
        c(),
        Relationship::Connected,
        Action::ViewProfile,
    );
    assert_eq!(d.outcome, Outcome::Allow);
    assert!(!d.overridden);
}

#[test]
fn an_override_may_be_scoped_to_child_actors() {
    // Teen-to-teen messaging with support, strangers still barred from messaging children,
    // and children still barred from messaging adult strangers.
    let p = policy(
        r#"
        [[override]]
        action = "message"
        actor = "child"
        target = "child"
        outcome = "allow_with_prompt"
        "#,
    );
    let d = run(
        &p,
        child("c1", AgeBand::From13To15),
        child("c2", AgeBand::From16To17),
        Relationship::Mutual,
        Action::Message,
    );
    assert_eq!(d.outcome, Outcome::AllowWithPrompt);
    assert_eq!(d.prompt, Some(PromptKey::FirstMessageFromStranger));
    assert_eq!(d.prompt_to, Some(Recipient::Both));

    let d = run(
        &p,
        adult("a"),
        child("c2", AgeBand::From16To17),
        Relationship::Mutual,
        Action::Message,
    );
    assert_eq!(d.outcome, Outcome::Deny);
    assert_eq!(d.measure, Measure::F1NoDirectMessages);
    assert!(!d.overridden);

    let to_adult = |p: &safeguard_contact::ContactPolicy| {
        run(
            p,
            child("c1", AgeBand::From13To15),
            adult("a"),
            Relationship::Unrelated,
            Action::Message,
        )
    };
    let d = to_adult(&p);
    assert_eq!(d.outcome, Outcome::Deny, "a child to an adult stranger");
    assert!(!d.overridden);
    // Scoped by the actor alone, the same override also lets the child reach the adult:
    // `target` is what keeps it between children.
    let by_actor_only = policy(
        r#"
        [[override]]
        action = "message"
        actor = "child"
        outcome = "allow_with_prompt"
        "#,
    );
    assert!(to_adult(&by_actor_only).overridden);
}

#[test]
fn an_override_may_be_stricter_than_the_default() {
    let p = policy(
        r#"
        [[override]]
        action = "connection_request"
        actor = "adult"
        outcome = "deny"
        "#,
    );
    let d = run(
        &p,
        adult("a"),
        child("c", AgeBand::Under13),
        Relationship::Unrelated,
        Action::ConnectionRequest,
    );
    assert_eq!(d.outcome, Outcome::Deny);
    assert_eq!(d.measure, Measure::F2ConnectionRequest);
    assert_eq!(d.prompt, None);
    assert!(d.overridden);

    // Child to child keeps the default prompt.
    let d = run(
        &p,
        child("c1", AgeBand::From13To15),
        child("c", AgeBand::Under13),
        Relationship::Unrelated,
        Action::ConnectionRequest,
    );
    assert_eq!(d.outcome, Outcome::AllowWithPrompt);
    assert!(!d.overridden);
}

#[test]
fn connected_users_may_be_let_see_location() {
    let p = policy(
        r#"
        [[override]]
        action = "view_location"
        relationships = ["connected"]
        outcome = "allow"
        "#,
    );
    let c = || child("c", AgeBand::From16To17);
    let d = run(
        &p,
        adult("a"),
        c(),
        Relationship::Connected,
        Action::ViewLocation,
    );
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.measure, Measure::F1LocationHidden);
    assert!(d.overridden);
    let d = run(
        &p,
        adult("a"),
        c(),
        Relationship::Unrelated,
        Action::ViewLocation,
    );
    assert_eq!(d.outcome, Outcome::Deny);
}

#[test]
fn the_first_matching_override_decides() {
    let p = policy(
        r#"
        [[override]]
        action = "suggest"
        outcome = "allow"
        relationships = ["mutual"]
        [[override]]
        action = "suggest"
        outcome = "allow_with_prompt"
        prompt = "suggested_child"
        "#,
    );
    let c = || child("c", AgeBand::From13To15);
    let d = run(&p, adult("a"), c(), Relationship::Mutual, Action::Suggest);
    assert_eq!(d.outcome, Outcome::Allow);
    assert!(d.reason.contains("override[0]"), "{}", d.reason);
    let d = run(
        &p,
        adult("a"),
        c(),
        Relationship::Unrelated,
        Action::Suggest,
    );
    assert_eq!(d.outcome, Outcome::AllowWithPrompt);
    assert_eq!(d.prompt, Some(PromptKey::Custom("suggested_child".into())));
    assert!(d.reason.contains("override[1]"), "{}", d.reason);
}

#[test]
fn an_override_never_touches_contact_between_non_children() {
    let p = policy(
        r#"
        [[override]]
        action = "message"
        outcome = "deny"
        "#,
    );
    let d = run(
        &p,
        adult("a"),
        adult("b"),
        Relationship::Unrelated,
        Action::Message,
    );
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.measure, Measure::NoneApplies);
    assert!(!d.overridden);
}

#[test]
fn block_support_may_be_turned_off_but_blocking_never_refused() {
    let p = policy(
        r#"
        [[override]]
        action = "block"
        outcome = "allow"
        "#,
    );
    let d = run(
        &p,
        child("c", AgeBand::From13To15),
        adult("a"),
        Relationship::Unrelated,
        Action::Block,
    );
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.prompt, None);
    assert!(d.overridden);
    // Report is a separate action and keeps its support.
    let d = run(
        &p,
        child("c", AgeBand::From13To15),
        adult("a"),
        Relationship::Unrelated,
        Action::Report,
    );
    assert_eq!(d.outcome, Outcome::AllowWithPrompt);
}
