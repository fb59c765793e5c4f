//! Integration tests of safeguard-audit, compiled into one binary.

mod export;
mod properties;
mod vectors;
