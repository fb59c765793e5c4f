//! Plain lists (one hash per line, optional `TYPE VALUE`), with or without a declared type.
//! The first byte picks the declared type; the rest is the list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use safeguard_lists::Format;

#[path = "common/lists.rs"]
mod common;

const DECLARED: [Option<&str>; 6] = [None, Some("pdq"), Some("md5"), Some("sha256"), Some("photodna"), Some("vpdq")];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, list)) = data.split_first() else { return };
    let declared = DECLARED[usize::from(pick) % DECLARED.len()];
    common::check(&Format::Plain { signal_type: declared.map(String::from) }, list);
});
