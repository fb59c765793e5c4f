//! Safeguard's contact-risk signals: does this account behave like an adult seeking out
//! children?
//!
//! Most offences against children online begin with contact: an adult finds a child, moves
//! the talk somewhere private, asks for secrecy and images, offers gifts. This crate scores
//! accounts from a stream of [`Event`]s (messages with or without text, connection requests
//! and accepts, blocks, reports, gifts, images, profile views):
//!
//! - [`text`] normalises message text against obfuscation (confusables, full-width letters,
//!   leetspeak, inserted spaces) and matches configurable [`PatternSet`]s with Aho-Corasick;
//! - [`Feature`]s are counted per account and per pair in constant-space windows: an adult's
//!   fan-out to unconnected minors, the age gap, a quick move to private after first
//!   contact, blocks and reports by minors, the share of minors among contacts, night-time
//!   contact, and the lexical categories;
//! - the [`Scorer`] weighs them ([`Weights`]), explains every score by its
//!   [`Contribution`]s, and reports a [`Crossing`] of the `review` or `alert` threshold once
//!   per account (with hysteresis and a cooldown), with the recent events that caused it;
//! - memory is bounded: at most [`RiskSpec::max_accounts`] accounts (CLOCK eviction), a
//!   capped pair list and recent-event list per account, windows of fixed size;
//! - [`synth`] generates labelled synthetic streams (risky adult-to-minor scripts and benign
//!   teen, family, teacher and gaming-team scripts) and [`evaluation`] measures precision,
//!   recall and F0.5 on them.
//!
//! The crate is pure: no I/O, no clock (time is the events' timestamps), no HTTP. The
//! features, defaults, evaluation figures and their limits are in `docs/child-safety.md`.

#![forbid(unsafe_code)]

mod account;
mod config;
mod error;
pub mod evaluation;
mod event;
mod feature;
mod scorer;
pub mod synth;
mod table;
pub mod text;
mod window;

pub use account::Level;
pub use config::{
    RiskSpec, SemanticSpec, Weights, MAX_ACCOUNTS_LIMIT, MAX_PAIRS_LIMIT, MAX_RECENT_LIMIT,
    MAX_SEMANTIC_PER_BATCH,
};
pub use error::Error;
pub use event::{
    Channel, Event, EventKind, RawEvent, MAX_ACCOUNT_ID_LEN, MAX_EVENT_ID_LEN, MAX_FUTURE_SECS,
    MAX_TEXT_BYTES, MAX_TIMESTAMP,
};
pub use feature::{Feature, FeatureSet, FEATURE_COUNT};
pub use safeguard_contact::AgeBand;
pub use scorer::{Contribution, Crossing, EventSummary, Observation, Score, Scorer};
pub use text::{Categories, Category, PatternSet, PatternSpec, DEFAULT_PATTERNS};
pub use window::Window;

/// At most 64 characters of `s`: input echoed in an error message stays bounded.
pub(crate) fn short(s: &str) -> String {
    s.chars().take(64).collect()
}
