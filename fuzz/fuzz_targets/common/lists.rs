//! The checks every list-reader target makes, whatever the format.

use safeguard_lists::{read, Action, Error, Format, Position, Record, MAX_FIELD_BYTES, MAX_LINE_BYTES};

/// Reads `data` as `format` and checks the reader's contract on every record:
///
/// - no panic, no hang, memory bounded (libFuzzer's -rss_limit_mb / -timeout);
/// - the returned count is the number of records the sink saw;
/// - a hash record has a type and a value, a source-wide withdrawal has a source id;
/// - no value is longer than the longest line or field a reader may buffer;
/// - positions never move back;
/// - an error from a reader over bytes in memory is about the list (`Invalid`) or the
///   options (`Options`), never I/O other than bad UTF-8.
pub fn check(format: &Format, data: &[u8]) {
    let mut seen = 0u64;
    let mut last: Option<Position> = None;
    let mut sink = |r: &Record<'_>| -> Result<(), Error> {
        seen += 1;
        match r.action {
            Action::List | Action::Withdraw => {
                assert!(!r.signal_type.is_empty(), "record without a type: {r:?}");
                assert!(!r.value.is_empty(), "record without a value: {r:?}");
            }
            Action::WithdrawSourceId => {
                assert!(r.source_id.is_some(), "source withdrawal without an id: {r:?}");
            }
        }
        assert!(r.value.len() <= MAX_LINE_BYTES.max(MAX_FIELD_BYTES));
        if let Some(prev) = last {
            assert!(forward(prev, r.position), "position went back: {prev:?} -> {:?}", r.position);
        }
        last = Some(r.position);
        Ok(())
    };
    match read(format, data, &mut sink) {
        Ok(n) => assert_eq!(n, seen, "count returned differs from records passed"),
        Err(Error::Invalid { .. }) | Err(Error::Options(_)) => {}
        Err(Error::Io(e)) => assert_eq!(
            e.kind(),
            std::io::ErrorKind::InvalidData,
            "I/O error reading from memory: {e}"
        ),
        Err(e) => panic!("unexpected error variant: {e:?}"),
    }
}

/// Whether `b` comes after `a` in the list.
fn forward(a: Position, b: Position) -> bool {
    match (a, b) {
        // Equal lines are fine too: the delimited readers (csv crate, CRLF terminator) end a
        // record at a lone CR, so one line (counted by LF) can hold two records.
        (Position::Line(x), Position::Line(y)) => y >= x,
        // One JSON record or XML entry may carry several hashes: equal positions are fine.
        (Position::Record(x), Position::Record(y)) => y >= x,
        (Position::Entry { entry: x, byte: bx }, Position::Entry { entry: y, byte: by }) => {
            y >= x && by >= bx
        }
        // Mixed kinds never happen within one format; if they do, the assertion above shows it.
        _ => false,
    }
}
