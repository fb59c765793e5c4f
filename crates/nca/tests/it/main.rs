//! Integration tests, one binary (house style): bundles end to end, and the API transport
//! against a local HTTPS server with injected faults.

mod bundle;
mod common;
mod transport;
