//! The unknown-age rule: `treat_as_child` (the default), `treat_as_adult`, `deny_contact`.

use safeguard_contact::{
    Action, AgeBand, AgeClass, AssuranceMethod, ContactPolicy, Measure, Outcome, Relationship,
};

use crate::common::*;

#[test]
fn by_default_an_unknown_age_is_a_child() {
    let d = run_default(
        adult("a"),
        unknown("u"),
        Relationship::Unrelated,
        Action::Message,
    );
    assert_eq!(d.target_treated_as, AgeClass::Child);
    assert_eq!(d.outcome, Outcome::Deny);
    assert_eq!(d.measure, Measure::F1NoDirectMessages);

    let d = run_default(
        unknown("u"),
        adult("a"),
        Relationship::Mutual,
        Action::Suggest,
    );
    assert_eq!(d.actor_treated_as, AgeClass::Child);
    assert_eq!(d.outcome, Outcome::Deny);
    assert_eq!(d.measure, Measure::F1NoNetworkExpansionForChild);
    assert!(
        d.reason
            .contains("age unknown, so treated as a child (unknown_age = treat_as_child)"),
        "{}",
        d.reason
    );
}

#[test]
fn treat_as_adult_lifts_the_protections_of_unknown_ages_only() {
    let p = policy("unknown_age = \"treat_as_adult\"");
    let d = run(
        &p,
        adult("a"),
        unknown("u"),
        Relationship::Unrelated,
        Action::Message,
    );
    assert_eq!(d.target_treated_as, AgeClass::Adult);
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.measure, Measure::NoneApplies);

    let d = run(
        &p,
        unknown("u"),
        adult("a"),
        Relationship::Mutual,
        Action::Suggest,
    );
    assert_eq!(d.outcome, Outcome::Allow);

    // A known child is still a child.
    let d = run(
        &p,
        unknown("u"),
        child("c", AgeBand::From13To15),
        Relationship::Unrelated,
        Action::Message,
    );
    assert_eq!(d.outcome, Outcome::Deny);
    assert_eq!(d.measure, Measure::F1NoDirectMessages);
}

#[test]
fn treat_as_adult_also_covers_a_disbelieved_adult_claim() {
    let p = policy("unknown_age = \"treat_as_adult\"");
    let weak = claimed_adult("w", AssuranceMethod::SelfDeclared, 0.1);
    assert_eq!(p.classify(&weak), AgeClass::Adult);
}

#[test]
fn deny_contact_denies_every_contact_action_on_either_side() {
    let p = policy("unknown_age = \"deny_contact\"");
    for relationship in [
        Relationship::Connected,
        Relationship::Mutual,
        Relationship::Unrelated,
    ] {
        for action in CONTACT_ACTIONS {
            for (actor, target) in [
                (unknown("u"), adult("a")),
                (adult("a"), unknown("u")),
                (child("c", AgeBand::Under13), unknown("u")),
                (unknown("u"), unknown("u2")),
            ] {
                let d = run(&p, actor, target, relationship, action);
                assert_eq!(d.outcome, Outcome::Deny, "{action} {relationship}");
                assert_eq!(d.measure, Measure::UnknownAgeNoContact);
            }
        }
    }
}

#[test]
fn deny_contact_leaves_known_ages_to_the_normal_rules() {
    let p = policy("unknown_age = \"deny_contact\"");
    let d = run(
        &p,
        adult("a"),
        adult("b"),
        Relationship::Unrelated,
        Action::Message,
    );
    assert_eq!(d.outcome, Outcome::Allow);
    let d = run(
        &p,
        adult("a"),
        child("c", AgeBand::From16To17),
        Relationship::Connected,
        Action::Message,
    );
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.measure, Measure::F1NoDirectMessages);
}

#[test]
fn deny_contact_treats_a_weak_adult_claim_as_unknown() {
    let p = policy("unknown_age = \"deny_contact\"");
    let weak = claimed_adult("w", AssuranceMethod::Inferred, 0.2);
    let d = run(
        &p,
        weak,
        adult("a"),
        Relationship::Connected,
        Action::Message,
    );
    assert_eq!(d.actor_treated_as, AgeClass::Unknown);
    assert_eq!(d.measure, Measure::UnknownAgeNoContact);
}

#[test]
fn deny_contact_is_not_overridable() {
    let p = policy(
        r#"
        unknown_age = "deny_contact"
        [[override]]
        action = "message"
        outcome = "allow"
        "#,
    );
    let d = run(
        &p,
        adult("a"),
        unknown("u"),
        Relationship::Unrelated,
        Action::Message,
    );
    assert_eq!(d.outcome, Outcome::Deny);
    assert!(!d.overridden);
}

#[test]
fn the_three_rules_classify_an_unknown_age_differently() {
    let u = unknown("u");
    let expected = [
        ("treat_as_child", AgeClass::Child),
        ("treat_as_adult", AgeClass::Adult),
        ("deny_contact", AgeClass::Unknown),
    ];
    for (rule, class) in expected {
        let p = policy(&format!("unknown_age = \"{rule}\""));
        assert_eq!(p.classify(&u), class, "{rule}");
    }
    assert_eq!(ContactPolicy::default().classify(&u), AgeClass::Child);
}
