//! The event a platform receives, and its id.
//!
//! On the wire an event is `{"id": "evt_…", "type": "case.opened", "created_at": 1767225600,
//! "data": {…}}`. `created_at` is unix seconds, like the signature's `t`; the outbox schedules
//! in milliseconds but nothing a receiver sees does.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Prefix of every event id.
pub const EVENT_ID_PREFIX: &str = "evt_";

/// Event types Safeguard emits. Later features add more; receivers should ignore types they do
/// not know rather than fail on them.
pub mod types {
    /// A content submission got a verdict other than `allow`.
    pub const CONTENT_VERDICT: &str = "content.verdict";
    /// A case was opened for an account.
    pub const CASE_OPENED: &str = "case.opened";
    /// A case changed: state, items, or assignment.
    pub const CASE_UPDATED: &str = "case.updated";
    /// Every type above, for endpoint subscription checks.
    pub const ALL: &[&str] = &[CONTENT_VERDICT, CASE_OPENED, CASE_UPDATED];
}

/// One event, as serialised into the body of every delivery of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `evt_` + 32 lowercase hex digits of a UUIDv7: unique, and sorting by id sorts by creation
    /// time (to the millisecond). Receivers use it as the idempotency key.
    pub id: String,
    /// The event type, one of [`types`] (or a later one).
    #[serde(rename = "type")]
    pub r#type: String,
    /// When the change happened, unix seconds.
    pub created_at: i64,
    /// The type-specific payload.
    pub data: serde_json::Value,
}

impl Event {
    /// A new event with a fresh id.
    pub fn new(r#type: &str, created_at: i64, data: serde_json::Value) -> Event {
        Event {
            id: new_event_id(),
            r#type: r#type.to_owned(),
            created_at,
            data,
        }
    }

    /// The exact bytes every delivery of this event sends and signs. The outbox stores these
    /// bytes, not the struct, so a retry signs and sends the very same body.
    pub fn to_body(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(Error::Serialise)
    }
}

/// A fresh event id: `evt_` + the UUIDv7's 32 hex digits.
///
/// UUIDv7 puts the millisecond timestamp first and fills the rest from the OS random source;
/// the `uuid` crate keeps ids made in one process strictly increasing even within one
/// millisecond, so ids sort in creation order. Hex (not base32 like ULID) because it sorts the
/// same way as bytes in every language and database.
pub fn new_event_id() -> String {
    format!("{EVENT_ID_PREFIX}{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_with_the_documented_field_names() {
        let event = Event {
            id: "evt_1".into(),
            r#type: types::CASE_OPENED.into(),
            created_at: 1_767_225_600,
            data: serde_json::json!({"case_id": 7}),
        };
        let body = String::from_utf8(event.to_body().unwrap()).unwrap();
        assert_eq!(
            body,
            r#"{"id":"evt_1","type":"case.opened","created_at":1767225600,"data":{"case_id":7}}"#
        );
        let back: Event = serde_json::from_str(&body).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn ids_are_prefixed_unique_and_time_ordered() {
        let ids: Vec<String> = (0..2000).map(|_| new_event_id()).collect();
        for id in &ids {
            assert!(id.starts_with(EVENT_ID_PREFIX), "{id}");
            assert_eq!(id.len(), EVENT_ID_PREFIX.len() + 32, "{id}");
            assert!(id[4..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
        // Strictly increasing: unique, and in creation order even within one millisecond.
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} !< {}", pair[0], pair[1]);
        }
    }
}
