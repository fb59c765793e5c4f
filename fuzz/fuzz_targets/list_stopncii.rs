//! A StopNCII `FetchHashes` JSON page (or a bare array of records).
#![no_main]

use libfuzzer_sys::fuzz_target;
use safeguard_lists::Format;

#[path = "common/lists.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::check(&Format::StopNcii, data));
