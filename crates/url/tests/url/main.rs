//! Integration tests for `safeguard-url`, compiled into one binary.
//!
//! Every URL here is benign: the published canonicalisation vectors (which use
//! google.com-style examples) and reserved names (example.com, .example, .test, 192.0.2.0/24).

mod canonical;
mod expression;
mod extract;
mod idempotence;
mod matching;
