//! Integration tests for `safeguard-media`, compiled into one binary.
//!
//! Every input here is generated in the test (gradients and checkerboards through each format's
//! encoder, then mutated) or read from the benign conformance corpus in `../shared`.

mod support;

mod conformance;
mod formats;
mod hostile;
mod jpeg;

/// Counts the bytes each thread has allocated through the Rust allocator, so a test can assert
/// that a hostile input was refused before any large buffer was allocated. (libjpeg allocates
/// through C `malloc` and is not counted; its limits are checked before it is called.)
#[global_allocator]
static ALLOCATOR: support::CountingAllocator = support::CountingAllocator;
