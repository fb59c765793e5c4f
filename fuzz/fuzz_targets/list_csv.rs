//! Delimited lists with a column mapping. The first two bytes pick the mapping (delimiter,
//! header row, which columns hold the hash, type, classification and source id, by number or
//! by name); the rest is the list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use safeguard_lists::{Column, CsvMapping, Format};

#[path = "common/lists.rs"]
mod common;

const DELIMITERS: [u8; 4] = [b',', b'\t', b';', b'|'];

/// A column choice from two bits: none, column 1..=3 by number, or a header name.
fn column(bits: u8, number: usize, name: &str) -> Option<Column> {
    match bits & 3 {
        0 => None,
        1 => Some(Column::Number(number)),
        2 => Some(Column::Name(name.into())),
        _ => Some(Column::Number(0)),
    }
}

fuzz_target!(|data: &[u8]| {
    let [a, b, list @ ..] = data else { return };
    let mapping = CsvMapping {
        delimiter: DELIMITERS[usize::from(a & 3)],
        header: a & 4 != 0,
        hash: column(a >> 3, 1, "hash"),
        signal_type_column: column(a >> 5, 2, "type"),
        signal_type: (b & 0x80 != 0).then(|| "md5".to_string()),
        classification: column(*b, 3, "class"),
        source_id: column(b >> 2, 4, "id"),
    };
    common::check(&Format::Csv(mapping), list);
});
