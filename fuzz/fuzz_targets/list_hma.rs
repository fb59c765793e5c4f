//! python-threatexchange's `dataset -P --csv` export (a CSV with a header row).
#![no_main]

use libfuzzer_sys::fuzz_target;
use safeguard_lists::Format;

#[path = "common/lists.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::check(&Format::Hma, data));
