//! Integration tests of `safeguard-index`, compiled into one binary.

mod common;
mod concurrency;
mod digest_index;
mod pdq_model;
mod snapshot;
