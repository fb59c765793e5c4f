//! Integration tests of the policy crate, compiled into one binary.

mod common;
mod conditions;
mod defaults;
mod examples;
mod outcome;
mod parse;
mod property;
mod shadow;
mod validation;
