//! Safeguard's contact decisions: may this account message, request, suggest or see that
//! one, when either may be a child?
//!
//! Most offences against children online begin with contact, so Ofcom's *Illegal content
//! Codes of Practice for user-to-user services* (issued 24 February 2025, in force from
//! 17 March 2025; published with Ofcom's *Statement: Protecting people from illegal harms
//! online*, 16 December 2024) set safety defaults for child users (measure **ICU F1**) and
//! supportive information at the moments that matter (measure **ICU F2**). This crate turns
//! them into one function:
//!
//! - a [`ContactRequest`] names two [`Account`]s (an [`AgeBand`] with its [`Assurance`]),
//!   their [`Relationship`] and the [`Action`];
//! - a [`ContactPolicy`] says which bands are child users, how unknown or weakly assured ages
//!   are treated ([`UnknownAgeRule`]) and where the platform departs from the defaults
//!   ([`OverrideSpec`]);
//! - [`decide`] answers a [`Decision`]: an [`Outcome`], the [`Measure`] it rests on, and for
//!   `allow_with_prompt` the F2 [`PromptKey`] and whom to show it to.
//!
//! The defaults, element by element, the tests that prove each, the unknown-age rule, the
//! configuration and the sources are in `docs/child-safety.md`.
//!
//! The crate is pure: no I/O, no clock, no store, no HTTP. The caller looks up accounts and
//! relationships first; the server maps [`Error::code`] to its 4xx answers.

#![forbid(unsafe_code)]

mod age;
mod decide;
mod decision;
mod error;
mod measure;
mod name;
mod policy;
mod request;

pub use age::{AgeBand, AgeClass, Assurance, AssuranceMethod, Confidence};
pub use decide::decide;
pub use decision::{Decision, Outcome};
pub use error::Error;
pub use measure::{Measure, PromptKey, Recipient, MAX_PROMPT_KEY_LEN};
pub use policy::{
    ActorScope, ContactPolicy, OverrideSpec, PolicySpec, UnknownAgeRule,
    DEFAULT_MIN_ADULT_CONFIDENCE, MAX_OVERRIDES,
};
pub use request::{
    validate_account_id, Account, Action, ContactRequest, RawAccount, RawRequest, Relationship,
    MAX_ACCOUNT_ID_LEN,
};
