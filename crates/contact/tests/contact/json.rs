//! The decision as the API answers it: a snapshot of the JSON, and a round trip.

use safeguard_contact::{Action, AgeBand, Decision, Relationship};

use crate::common::*;

#[test]
fn a_denied_message_answers_this_json() {
    let d = run_default(
        adult("u1"),
        child("u2", AgeBand::From13To15),
        Relationship::Unrelated,
        Action::Message,
    );
    let json = serde_json::to_string_pretty(&d).unwrap();
    let expected = r#"{
  "outcome": "deny",
  "measure": {
    "id": "icu_f1_no_direct_messages_from_non_connected",
    "code": "ICU F1",
    "text": "Users who are not connected with a child user cannot send it direct messages."
  },
  "overridden": false,
  "actor_treated_as": "adult",
  "target_treated_as": "child",
  "reason": "ICU F1 keeps direct messages with a child user to its connections, and the accounts are not connected (relationship `none`). Actor: adult by `verification` at confidence 0.99. Target: 13_15 is a child age band."
}"#;
    assert_eq!(json, expected);
}

#[test]
fn a_prompted_request_answers_this_json() {
    let d = run_default(
        adult("u1"),
        child("u2", AgeBand::Under13),
        Relationship::Mutual,
        Action::ConnectionRequest,
    );
    let v: serde_json::Value = serde_json::to_value(&d).unwrap();
    assert_eq!(v["outcome"], "allow_with_prompt");
    assert_eq!(v["measure"]["id"], "icu_f2_connection_request");
    assert_eq!(v["measure"]["code"], "ICU F2");
    assert_eq!(v["prompt"], "connection_request");
    assert_eq!(v["prompt_to"], "target");
}

#[test]
fn decisions_round_trip_through_json() {
    for action in Action::ALL {
        for relationship in Relationship::ALL {
            let d = run_default(
                child("c", AgeBand::From13To15),
                adult("a"),
                *relationship,
                *action,
            );
            let json = serde_json::to_string(&d).unwrap();
            let back: Decision = serde_json::from_str(&json).unwrap();
            assert_eq!(back, d);
        }
    }
}
