//! Integration tests of the policy crate, compiled into one binary.

mod common;
mod conditions;
mod defaults;
mod outcome;
mod parse;
mod property;
mod shadow;
mod validation;
