//! The engine crate's integration tests, in one test binary (one link instead of one per file);
//! run one area with `cargo test -p safeguard-engine --test integration <module>::`.

mod action;
mod engine;
mod photodna;
mod sources;
mod url_rules;
mod video;
mod vpdq;
mod vpdq_samples;
