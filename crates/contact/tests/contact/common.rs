//! Builders for accounts, requests and policies.

use safeguard_contact::{
    decide, Account, Action, AgeBand, AssuranceMethod, Confidence, ContactPolicy, ContactRequest,
    Decision, Relationship,
};

/// A confidence the test knows is in range.
pub fn conf(x: f64) -> Confidence {
    Confidence::new(x).unwrap()
}

/// An adult whose age a document check established, well above any threshold.
pub fn adult(id: &str) -> Account {
    Account::new(
        id,
        AgeBand::Adult,
        AssuranceMethod::Verification,
        conf(0.99),
    )
}

/// An adult claim with the given method and confidence.
pub fn claimed_adult(id: &str, method: AssuranceMethod, confidence: f64) -> Account {
    Account::new(id, AgeBand::Adult, method, conf(confidence))
}

/// A child in `band`, self-declared (a child's claim needs no more).
pub fn child(id: &str, band: AgeBand) -> Account {
    Account::new(id, band, AssuranceMethod::SelfDeclared, conf(1.0))
}

/// An account of unknown age with no assurance.
pub fn unknown(id: &str) -> Account {
    Account::new(
        id,
        AgeBand::Unknown,
        AssuranceMethod::Unchecked,
        Confidence::ZERO,
    )
}

/// The typical account of each band: minors self-declared, adults verified, unknown
/// unassured.
pub fn of_band(id: &str, band: AgeBand) -> Account {
    match band {
        AgeBand::Adult => adult(id),
        AgeBand::Unknown => unknown(id),
        minor => child(id, minor),
    }
}

pub fn request(
    actor: Account,
    target: Account,
    relationship: Relationship,
    action: Action,
) -> ContactRequest {
    let r = ContactRequest {
        actor,
        target,
        relationship,
        action,
    };
    r.validate().unwrap();
    r
}

/// Decides under `policy`.
pub fn run(
    policy: &ContactPolicy,
    actor: Account,
    target: Account,
    relationship: Relationship,
    action: Action,
) -> Decision {
    decide(&request(actor, target, relationship, action), policy)
}

/// Decides under the default policy.
pub fn run_default(
    actor: Account,
    target: Account,
    relationship: Relationship,
    action: Action,
) -> Decision {
    run(
        &ContactPolicy::default(),
        actor,
        target,
        relationship,
        action,
    )
}

/// A policy from TOML, which the test expects to be valid.
pub fn policy(toml: &str) -> ContactPolicy {
    ContactPolicy::from_toml(toml).unwrap_or_else(|e| panic!("{e}\n{toml}"))
}

/// The six actions that are contact (everything but the user's own protections).
pub const CONTACT_ACTIONS: [Action; 6] = [
    Action::Message,
    Action::ConnectionRequest,
    Action::Suggest,
    Action::ViewConnections,
    Action::ViewLocation,
    Action::ViewProfile,
];
