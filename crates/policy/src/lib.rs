//! Safeguard's policy: what to do with an item that matched a bank.
//!
//! An operator writes ordered, declarative rules ([`RuleSpec`], read from TOML or JSON by
//! [`RuleSet`]); the store versions them ([`Rule`]); [`Policy::compile`] turns them into bitset
//! tables; [`Policy::evaluate`] decides for one item and its matches ([`ItemFacts`],
//! [`MatchFacts`]) and says which rule, in which version, decided ([`Decision`]).
//!
//! Semantics, in full in `docs/policy.md`:
//! - an item with no match is `allow`, by no rule;
//! - otherwise rules are tried in order and the first enforce-mode rule that fires decides;
//!   a rule fires when its item conditions hold and all its match conditions hold for one
//!   and the same match;
//! - shadow-mode rules never decide; each one that would have fired is recorded;
//! - after the operator's rules come the built-in ones ([`builtin_rules`]): a match in a
//!   `csam` bank is blocked, any other match is reviewed. A catch-all operator rule (an
//!   empty `when`) therefore replaces them.
//!
//! The crate is pure: no I/O, no clock, no store. The caller resolves every fact first.

#![forbid(unsafe_code)]

mod builtin;
mod error;
mod fact;
mod mask;
mod name;
mod outcome;
mod policy;
mod rule;

pub use builtin::{
    builtin_rules, BUILTIN_CSAM_ID, BUILTIN_MATCH_ID, BUILTIN_VERSION, CSAM_BANK_KIND, CSAM_QUEUE,
};
pub use error::Error;
pub use fact::{AccountAge, Classification, ItemFacts, Kind, MatchFacts, Surface, VpdqShares};
pub use outcome::{Priority, Verdict};
pub use policy::{Decision, Policy, RuleRef, ShadowHit};
pub use rule::{
    Mode, Rule, RuleSet, RuleSpec, Then, When, BUILTIN_PREFIX, DEFAULT_QUEUE, MAX_DESCRIPTION_LEN,
    MAX_DISTANCE, MAX_ID_LEN, MAX_LABELS, MAX_LABEL_LEN, MAX_LIST_LEN, MAX_QUEUE_LEN, MAX_RULES,
    MAX_VALUE_LEN,
};
