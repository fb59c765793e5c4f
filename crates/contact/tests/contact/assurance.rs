//! How much of an age claim the policy believes: child claims always, adult claims from
//! accepted methods at or above the confidence threshold.

use safeguard_contact::{
    Action, AgeBand, AgeClass, AssuranceMethod, Confidence, ContactPolicy, Measure, Outcome,
    Relationship,
};

use crate::common::*;

/// A stranger messaging the account: allowed only if the account is not treated as a child.
fn stranger_may_message(p: &ContactPolicy, account: safeguard_contact::Account) -> bool {
    let d = run(
        p,
        adult("stranger"),
        account,
        Relationship::Unrelated,
        Action::Message,
    );
    d.outcome == Outcome::Allow
}

#[test]
fn an_adult_claim_below_the_threshold_is_treated_per_the_unknown_rule() {
    let p = ContactPolicy::default();
    let below = claimed_adult("t", AssuranceMethod::Estimation, 0.49);
    assert_eq!(p.classify(&below), AgeClass::Child);
    assert!(!stranger_may_message(&p, below));
    let d = run(
        &p,
        adult("s"),
        claimed_adult("t", AssuranceMethod::Estimation, 0.49),
        Relationship::Unrelated,
        Action::Message,
    );
    assert_eq!(d.measure, Measure::F1NoDirectMessages);
    assert!(
        d.reason
            .contains("adult claimed at confidence 0.49 (below 0.5)"),
        "{}",
        d.reason
    );
}

#[test]
fn the_threshold_is_inclusive() {
    let p = ContactPolicy::default();
    let at = claimed_adult("t", AssuranceMethod::Estimation, 0.5);
    assert_eq!(p.classify(&at), AgeClass::Adult);
    assert!(stranger_may_message(&p, at));
}

#[test]
fn a_raised_threshold_is_honoured() {
    let p = policy("min_adult_confidence = 0.9");
    assert_eq!(
        p.classify(&claimed_adult("t", AssuranceMethod::Estimation, 0.89)),
        AgeClass::Child
    );
    assert_eq!(
        p.classify(&claimed_adult("t", AssuranceMethod::Estimation, 0.9)),
        AgeClass::Adult
    );
}

#[test]
fn a_zero_threshold_believes_any_accepted_claim() {
    let p = policy("min_adult_confidence = 0");
    assert_eq!(
        p.classify(&claimed_adult("t", AssuranceMethod::SelfDeclared, 0.0)),
        AgeClass::Adult
    );
}

#[test]
fn an_unassured_adult_claim_is_treated_per_the_unknown_rule_even_at_full_confidence() {
    let p = ContactPolicy::default();
    let unchecked = claimed_adult("t", AssuranceMethod::Unchecked, 1.0);
    assert_eq!(p.classify(&unchecked), AgeClass::Child);
    assert!(!stranger_may_message(&p, unchecked));
}

#[test]
fn a_policy_may_accept_adult_claims_only_from_highly_effective_methods() {
    let p = policy(r#"adult_methods = ["estimation", "verification", "id_document"]"#);
    let expected = [
        (AssuranceMethod::Unchecked, AgeClass::Child),
        (AssuranceMethod::SelfDeclared, AgeClass::Child),
        (AssuranceMethod::Inferred, AgeClass::Child),
        (AssuranceMethod::Estimation, AgeClass::Adult),
        (AssuranceMethod::Verification, AgeClass::Adult),
        (AssuranceMethod::IdDocument, AgeClass::Adult),
    ];
    for (method, class) in expected {
        assert_eq!(
            p.classify(&claimed_adult("t", method, 1.0)),
            class,
            "{method}"
        );
    }
}

#[test]
fn a_child_claim_is_believed_however_it_was_made() {
    let p = policy(
        r#"
        min_adult_confidence = 0.99
        adult_methods = ["id_document"]
        "#,
    );
    for band in AgeBand::MINORS {
        for method in AssuranceMethod::ALL {
            let a = safeguard_contact::Account::new("c", *band, *method, Confidence::ZERO);
            assert_eq!(p.classify(&a), AgeClass::Child, "{band} by {method}");
        }
    }
}

#[test]
fn a_band_left_out_of_child_bands_is_not_a_child_user() {
    let p = policy(r#"child_bands = ["under_13", "13_15"]"#);
    let sixteen = child("t", AgeBand::From16To17);
    assert_eq!(p.classify(&sixteen), AgeClass::Adult);
    let d = run(
        &p,
        adult("s"),
        sixteen,
        Relationship::Unrelated,
        Action::Message,
    );
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.measure, Measure::NoneApplies);
    assert!(
        d.reason
            .contains("16_17 is not a child age band under this policy"),
        "{}",
        d.reason
    );
    // The younger bands keep every protection.
    assert!(!stranger_may_message(&p, child("t", AgeBand::From13To15)));
}
