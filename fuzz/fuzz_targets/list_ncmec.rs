//! An NCMEC hash-sharing API v2 `queryResult` XML page.
#![no_main]

use libfuzzer_sys::fuzz_target;
use safeguard_lists::Format;

#[path = "common/lists.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::check(&Format::Ncmec, data));
