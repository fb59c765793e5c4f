//! Integration tests of the contact crate, compiled into one binary.

mod assurance;
mod blocked;
mod common;
mod json;
mod overrides;
mod parse;
mod policy_config;
mod prompts;
mod table;
mod unknown_age;
