//! The events a platform sends: who did what to whom, when, and what it knows of their ages.
//!
//! Raw input and validated data are different types: [`RawEvent`] is what arrives (names as
//! strings, so that an unknown one can be refused with the field and the accepted names);
//! [`Event`] is what the scorer takes, with every limit checked.

use safeguard_contact::AgeBand;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Longest account id, in bytes: the contact decisions' limit, so one id fits both APIs.
pub const MAX_ACCOUNT_ID_LEN: usize = safeguard_contact::MAX_ACCOUNT_ID_LEN;

/// Longest event id, in bytes. The id is the caller's, echoed in crossings so that a
/// reviewer can find the event on the platform; 128 bytes hold a UUID or a snowflake with
/// room to spare and bound what each account keeps of its recent events.
pub const MAX_EVENT_ID_LEN: usize = 128;

/// Longest message text scored, in bytes. Risky requests are short; 8 KiB is several
/// screens of chat, and bounds the normalisation work per event.
pub const MAX_TEXT_BYTES: usize = 8 * 1024;

/// Latest accepted timestamp: the end of year 9999 in unix seconds. Anything later is a unit
/// mistake (milliseconds sent as seconds).
pub const MAX_TIMESTAMP: u64 = 253_402_300_799;

/// How far after the receiving server's clock an event's time may be, in seconds (one day):
/// clocks disagree by seconds, not days. An event far in the future would move its account's
/// windows past every real event, which would then all count as too old: one event would
/// switch off most features for the account ([`Event::check_not_ahead_of`]).
pub const MAX_FUTURE_SECS: u64 = 86_400;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The actor sent the target a message. Text is optional: end-to-end encrypted services
    /// send metadata only.
    Message,
    /// The actor asked to connect with (follow, befriend) the target.
    ConnectionRequest,
    /// The actor accepted the target's connection request: they are now connected.
    ConnectionAccept,
    /// The actor blocked the target.
    Block,
    /// The actor reported the target.
    Report,
    /// The actor sent the target a gift or a payment (virtual currency, a gift card, money).
    Gift,
    /// The actor sent the target an image.
    Image,
    /// The actor viewed the target's profile.
    ProfileView,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [EventKind] = &[
        EventKind::Message,
        EventKind::ConnectionRequest,
        EventKind::ConnectionAccept,
        EventKind::Block,
        EventKind::Report,
        EventKind::Gift,
        EventKind::Image,
        EventKind::ProfileView,
    ];

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Message => "message",
            EventKind::ConnectionRequest => "connection_request",
            EventKind::ConnectionAccept => "connection_accept",
            EventKind::Block => "block",
            EventKind::Report => "report",
            EventKind::Gift => "gift",
            EventKind::Image => "image",
            EventKind::ProfileView => "profile_view",
        }
    }

    /// Parses [`Self::as_str`] exactly.
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// Whether the account the event is about (whose score it moves) is the target rather
    /// than the actor: a block or report is evidence about the account blocked or reported,
    /// and an accepted request connects the account that asked.
    pub const fn is_about_target(self) -> bool {
        matches!(
            self,
            EventKind::Block | EventKind::Report | EventKind::ConnectionAccept
        )
    }
}

/// Where a message was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Where others can see it: a comment, a group, a game lobby.
    Public,
    /// One to one (or a closed group): a direct message.
    Private,
}

impl Channel {
    fn parse(s: &str) -> Option<Channel> {
        match s {
            "public" => Some(Channel::Public),
            "private" => Some(Channel::Private),
            _ => None,
        }
    }
}

/// One validated event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawEvent")]
pub struct Event {
    /// The caller's id for the event, echoed in crossings; at most [`MAX_EVENT_ID_LEN`] bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What happened.
    pub kind: EventKind,
    /// Who did it: 1 to [`MAX_ACCOUNT_ID_LEN`] bytes, no control characters.
    pub actor: String,
    /// To whom: likewise, and not the actor.
    pub target: String,
    /// When, in unix seconds (UTC), at most [`MAX_TIMESTAMP`].
    pub timestamp: u64,
    /// The actor's age band, where the platform knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_age: Option<AgeBand>,
    /// The target's age band, where the platform knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_age: Option<AgeBand>,
    /// Whether the two were connected when it happened, where the platform says; otherwise
    /// the scorer goes by the accepts it has seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected: Option<bool>,
    /// Public or private, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// The message text, for `message` events only, at most [`MAX_TEXT_BYTES`]; absent for
    /// metadata-only (end-to-end encrypted) services.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl Event {
    /// The account whose score the event moves (see [`EventKind::is_about_target`]).
    pub fn subject(&self) -> &str {
        if self.kind.is_about_target() {
            &self.target
        } else {
            &self.actor
        }
    }

    /// Parses and validates one event from JSON; `field` prefixes the error's field
    /// (`events[3]`).
    pub fn from_json_value(value: serde_json::Value, field: &str) -> Result<Event, Error> {
        let raw: RawEvent =
            serde_json::from_value(value).map_err(|e| Error::event(field, e.to_string()))?;
        raw.validate(field)
    }

    /// Refuses an event timed more than [`MAX_FUTURE_SECS`] after `now` (unix seconds, the
    /// receiver's clock; the crate reads no clock itself). `field` prefixes the error's field.
    pub fn check_not_ahead_of(&self, now: u64, field: &str) -> Result<(), Error> {
        if self.timestamp <= now.saturating_add(MAX_FUTURE_SECS) {
            return Ok(());
        }
        let at = if field.is_empty() {
            "timestamp".to_string()
        } else {
            format!("{field}.timestamp")
        };
        Err(Error::event(
            at,
            format!(
                "{} is more than a day after this server's clock ({now}); send when the event \
                 happened, in unix seconds",
                self.timestamp
            ),
        ))
    }
}

/// An event as it arrives: names as strings, nothing checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvent {
    /// See [`Event::id`].
    #[serde(default)]
    pub id: Option<String>,
    /// See [`Event::kind`].
    pub kind: String,
    /// See [`Event::actor`].
    pub actor: String,
    /// See [`Event::target`].
    pub target: String,
    /// See [`Event::timestamp`].
    pub timestamp: u64,
    /// See [`Event::actor_age`].
    #[serde(default)]
    pub actor_age: Option<String>,
    /// See [`Event::target_age`].
    #[serde(default)]
    pub target_age: Option<String>,
    /// See [`Event::connected`].
    #[serde(default)]
    pub connected: Option<bool>,
    /// See [`Event::channel`].
    #[serde(default)]
    pub channel: Option<String>,
    /// See [`Event::text`].
    #[serde(default)]
    pub text: Option<String>,
}

fn check_id(field: String, id: &str, max: usize) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::event(field, "is empty; give the platform's id"));
    }
    if id.len() > max {
        return Err(Error::event(
            field,
            format!("is {} bytes; at most {max} are accepted", id.len()),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(Error::event(field, "contains a control character"));
    }
    Ok(())
}

fn age(field: String, value: Option<String>) -> Result<Option<AgeBand>, Error> {
    let Some(v) = value else { return Ok(None) };
    AgeBand::parse(&v)
        .map(Some)
        .ok_or_else(|| Error::UnknownAgeBand {
            message: format!(
                "unknown age band `{}`; expected one of {}",
                crate::short(&v),
                AgeBand::NAMES.join(", ")
            ),
            field,
        })
}

impl RawEvent {
    /// Checks every field; `field` prefixes the error's field (`events[3]`), and may be empty.
    pub fn validate(self, field: &str) -> Result<Event, Error> {
        let at = |name: &str| {
            if field.is_empty() {
                name.to_string()
            } else {
                format!("{field}.{name}")
            }
        };
        let kind = EventKind::parse(&self.kind).ok_or_else(|| {
            let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            Error::event(
                at("kind"),
                format!(
                    "unknown event kind `{}`; expected one of {}",
                    crate::short(&self.kind),
                    names.join(", ")
                ),
            )
        })?;
        if let Some(id) = &self.id {
            check_id(at("id"), id, MAX_EVENT_ID_LEN)?;
        }
        check_id(at("actor"), &self.actor, MAX_ACCOUNT_ID_LEN)?;
        check_id(at("target"), &self.target, MAX_ACCOUNT_ID_LEN)?;
        if self.actor == self.target {
            return Err(Error::event(
                at("target"),
                "is the actor; an event is between two accounts",
            ));
        }
        if self.timestamp > MAX_TIMESTAMP {
            return Err(Error::event(
                at("timestamp"),
                format!(
                    "{} is after the year 9999; send unix seconds, not milliseconds",
                    self.timestamp
                ),
            ));
        }
        let actor_age = age(at("actor_age"), self.actor_age)?;
        let target_age = age(at("target_age"), self.target_age)?;
        let channel = match self.channel {
            None => None,
            Some(c) => Some(Channel::parse(&c).ok_or_else(|| {
                Error::event(
                    at("channel"),
                    format!(
                        "unknown channel `{}`; expected one of public, private",
                        crate::short(&c)
                    ),
                )
            })?),
        };
        if let Some(text) = &self.text {
            if kind != EventKind::Message {
                return Err(Error::event(
                    at("text"),
                    format!("only `message` events carry text, not `{}`", kind.as_str()),
                ));
            }
            if text.len() > MAX_TEXT_BYTES {
                return Err(Error::TextTooLong {
                    field: at("text"),
                    len: text.len(),
                    max: MAX_TEXT_BYTES,
                });
            }
        }
        Ok(Event {
            id: self.id,
            kind,
            actor: self.actor,
            target: self.target,
            timestamp: self.timestamp,
            actor_age,
            target_age,
            connected: self.connected,
            channel,
            text: self.text,
        })
    }
}

impl TryFrom<RawEvent> for Event {
    type Error = Error;

    fn try_from(raw: RawEvent) -> Result<Event, Error> {
        raw.validate("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Event, Error> {
        Event::from_json_value(v, "events[0]")
    }

    #[test]
    fn a_full_event_round_trips() {
        let v = json!({
            "id": "e1", "kind": "message", "actor": "a", "target": "b", "timestamp": 100,
            "actor_age": "adult", "target_age": "13_15", "connected": false,
            "channel": "private", "text": "hello"
        });
        let e = parse(v.clone()).unwrap();
        assert_eq!(e.kind, EventKind::Message);
        assert_eq!(e.target_age, Some(AgeBand::From13To15));
        assert_eq!(e.channel, Some(Channel::Private));
        assert_eq!(serde_json::to_value(&e).unwrap(), v);
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn metadata_only_is_enough() {
        let e = parse(json!({"kind":"message","actor":"a","target":"b","timestamp":1})).unwrap();
        assert_eq!(e.text, None);
        assert_eq!(e.actor_age, None);
        assert_eq!(e.subject(), "a");
    }

    #[test]
    fn events_far_after_the_receivers_clock_are_refused() {
        let at = |t: u64| {
            parse(json!({"kind":"message","actor":"a","target":"b","timestamp":t})).unwrap()
        };
        let now = 1_767_268_800;
        at(now).check_not_ahead_of(now, "events[0]").unwrap();
        at(now + MAX_FUTURE_SECS)
            .check_not_ahead_of(now, "events[0]")
            .unwrap();
        let e = at(now + MAX_FUTURE_SECS + 1)
            .check_not_ahead_of(now, "events[0]")
            .unwrap_err();
        assert_eq!(e.code(), "invalid_event");
        assert!(e.to_string().contains("events[0].timestamp"), "{e}");
        at(MAX_TIMESTAMP).check_not_ahead_of(u64::MAX, "").unwrap();
    }

    #[test]
    fn every_kind_has_its_name() {
        for k in EventKind::ALL {
            let json = serde_json::to_string(k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert_eq!(EventKind::parse(k.as_str()), Some(*k));
        }
    }

    #[test]
    fn blocks_reports_and_accepts_are_about_the_target() {
        for (kind, subject) in [
            ("block", "b"),
            ("report", "b"),
            ("connection_accept", "b"),
            ("gift", "a"),
        ] {
            let e = parse(json!({"kind":kind,"actor":"a","target":"b","timestamp":1})).unwrap();
            assert_eq!(e.subject(), subject, "{kind}");
        }
    }

    #[test]
    fn bad_input_is_refused_with_field_and_code() {
        let base = || json!({"kind":"message","actor":"a","target":"b","timestamp":1});
        let cases: Vec<(serde_json::Value, &str, &str)> = vec![
            (
                {
                    let mut v = base();
                    v["actor_age"] = json!("teen");
                    v
                },
                "unknown_age_band",
                "events[0].actor_age",
            ),
            (
                {
                    let mut v = base();
                    v["kind"] = json!("poke");
                    v
                },
                "invalid_event",
                "events[0].kind",
            ),
            (
                {
                    let mut v = base();
                    v["actor"] = json!("");
                    v
                },
                "invalid_event",
                "events[0].actor",
            ),
            (
                {
                    let mut v = base();
                    v["target"] = json!("a");
                    v
                },
                "invalid_event",
                "events[0].target",
            ),
            (
                {
                    let mut v = base();
                    v["actor"] = json!("x".repeat(300));
                    v
                },
                "invalid_event",
                "events[0].actor",
            ),
            (
                {
                    let mut v = base();
                    v["actor"] = json!("a\nb");
                    v
                },
                "invalid_event",
                "events[0].actor",
            ),
            (
                {
                    let mut v = base();
                    v["timestamp"] = json!(1_700_000_000_000u64);
                    v
                },
                "invalid_event",
                "events[0].timestamp",
            ),
            (
                {
                    let mut v = base();
                    v["channel"] = json!("dm");
                    v
                },
                "invalid_event",
                "events[0].channel",
            ),
            (
                {
                    let mut v = base();
                    v["text"] = json!("x".repeat(MAX_TEXT_BYTES + 1));
                    v
                },
                "text_too_long",
                "events[0].text",
            ),
            (
                {
                    let mut v = base();
                    v["kind"] = json!("gift");
                    v["text"] = json!("hi");
                    v
                },
                "invalid_event",
                "events[0].text",
            ),
            (
                {
                    let mut v = base();
                    v["colour"] = json!("red");
                    v
                },
                "invalid_event",
                "events[0]",
            ),
            (
                {
                    let mut v = base();
                    v["timestamp"] = json!(-1);
                    v
                },
                "invalid_event",
                "events[0]",
            ),
            (json!("not an object"), "invalid_event", "events[0]"),
        ];
        for (v, code, field) in cases {
            let e = parse(v.clone()).unwrap_err();
            assert_eq!(e.code(), code, "{v}: {e}");
            assert!(e.to_string().starts_with(&format!("`{field}")), "{v}: {e}");
        }
        let e = parse({
            let mut v = base();
            v["target_age"] = json!("teen");
            v
        })
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("expected one of under_13, 13_15, 16_17, adult, unknown"),
            "{e}"
        );
    }
}
