//! Streaming readers and writers of the hash-list formats Safeguard imports and exports.
//!
//! Readers take a [`std::io::BufRead`] and push one [`Record`] at a time into a sink: memory
//! stays bounded by the longest line or entry, never by the list. Every record carries its
//! [`Position`] (line, JSON record index, XML entry index and byte offset) so an error names
//! where the problem is. This crate knows formats, not signal types: it maps each format's
//! type names to Safeguard's names (`pdq`, `md5`, `photodna`, ...) and leaves validation of
//! values to the engine, so a new signal type is a name plus a validator there.
//!
//! Formats (see `docs/hash-lists.md`):
//! - [`Format::Plain`]: one hash per line, optionally `TYPE VALUE`; `#` comments and blank
//!   lines allowed; the type is declared or told from the value's length.
//! - [`Format::Csv`]: delimited text with a [`CsvMapping`] (which column holds the hash, the
//!   type, the classification, the source id), for licensed lists whose layout is not public.
//! - [`Format::Hma`]: python-threatexchange's `dataset -P --csv` export
//!   (`collab,signal_type,signal_str,category,tags`).
//! - [`Format::Ncmec`]: an NCMEC hash-sharing API v2 `queryResult` page.
//! - [`Format::StopNcii`]: a StopNCII `FetchHashes` response page (or a bare array of records).

#![forbid(unsafe_code)]

mod ncmec;
mod plain;
mod stopncii;
mod table;
mod write;

use std::fmt;
use std::io::BufRead;

pub use table::{Column, CsvMapping};

/// NCMEC's fingerprint names as Safeguard signal types.
pub mod ncmec_types {
    pub use crate::ncmec::signal_type_for;
}

/// StopNCII's signal type names as Safeguard signal types.
pub mod stopncii_types {
    pub use crate::stopncii::signal_type_for;
}
pub use write::{writer, ExportEntry, ListWriter};

/// Longest line a line-based format may have, in bytes (1 MiB). Long enough for any hash
/// (a PhotoDNA value is 288 hex digits; a vPDQ value of a long video is a few hundred KiB of
/// JSON), short enough that a file without newlines cannot make a reader buffer gigabytes.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Longest text of one XML element or JSON string field, in bytes (1 MiB), for the same
/// reason.
pub const MAX_FIELD_BYTES: usize = 1024 * 1024;

/// Most raw bytes an XML or JSON parser is given between two markup bytes (`<` or `>`; `"`):
/// room for a field at [`MAX_FIELD_BYTES`] in its most escaped form. The field's own limit is
/// checked once it is decoded; this one stops the parser buffering gigabytes before that.
pub const MAX_RUN_BYTES: usize = 8 * MAX_FIELD_BYTES;

/// Fails a read once more than `limit` bytes have passed without a `boundary` byte: the
/// parsers behind it buffer a whole text node or string before anything can check its length.
pub(crate) struct RunLimit<R> {
    inner: R,
    run: usize,
    limit: usize,
    boundary: fn(u8) -> bool,
    what: &'static str,
}

impl<R> RunLimit<R> {
    pub(crate) fn new(inner: R, boundary: fn(u8) -> bool, what: &'static str) -> RunLimit<R> {
        RunLimit {
            inner,
            run: 0,
            limit: MAX_RUN_BYTES,
            boundary,
            what,
        }
    }
}

impl<R: std::io::Read> std::io::Read for RunLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if (self.boundary)(b) {
                self.run = 0;
            } else {
                self.run += 1;
                if self.run > self.limit {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{} is longer than {} bytes", self.what, self.limit),
                    ));
                }
            }
        }
        Ok(n)
    }
}

/// Where a record is in its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// 1-based line of a line-based format.
    Line(u64),
    /// 0-based index of a record in a JSON array.
    Record(u64),
    /// 1-based index of an `<image>`/`<video>`/`<deleted…>` entry in an XML page, and the byte
    /// offset the reader had reached.
    Entry {
        /// Entry number.
        entry: u64,
        /// Byte offset.
        byte: u64,
    },
    /// A byte offset in a document, before any entry.
    Byte(u64),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line(n) => write!(f, "line {n}"),
            Position::Record(n) => write!(f, "record {n}"),
            Position::Entry { entry, byte } => write!(f, "entry {entry} (byte {byte})"),
            Position::Byte(b) => write!(f, "byte {b}"),
        }
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The list is malformed at `position`, or an entry there is invalid.
    #[error("{position}: {problem}")]
    Invalid {
        /// Where.
        position: Position,
        /// What is wrong, and what to do about it.
        problem: String,
    },
    /// The options do not fit the format (a column mapping without a hash column, say).
    #[error("{0}")]
    Options(String),
    /// Reading or writing failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// An invalid-input error at `position`.
    pub fn at(position: Position, problem: impl Into<String>) -> Error {
        Error::Invalid {
            position,
            problem: problem.into(),
        }
    }
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What a record says about its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The source lists the hash.
    List,
    /// The source withdrew the hash (StopNCII `Withdrawn`/`Deleted`).
    Withdraw,
    /// The source withdrew every hash of the entry `source_id` (NCMEC `deletedImage`);
    /// `signal_type` and `value` are empty.
    WithdrawSourceId,
}

/// One record of a list. Borrowed from the reader's buffers: copy what you keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Where it is.
    pub position: Position,
    /// What it says.
    pub action: Action,
    /// Safeguard's name for its type (`pdq`, `md5`, `sha1`, `sha256`, `photodna`, `video_md5`,
    /// `tmk_pdqf`, ...), or the name the list used when there is no mapping.
    pub signal_type: &'a str,
    /// The value as the list has it (trimmed; not yet validated or normalised).
    pub value: &'a str,
    /// The entry's id at the source.
    pub source_id: Option<&'a str>,
    /// The source's classification or grade.
    pub classification: Option<&'a str>,
    /// JSON metadata the format carries for the entry.
    pub metadata: Option<&'a str>,
}

/// A list format and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// One hash per line. `signal_type`: the declared type of every line (else each line's
    /// own `TYPE VALUE` prefix or its length decides).
    Plain {
        /// Declared type.
        signal_type: Option<String>,
    },
    /// Delimited text with a column mapping.
    Csv(CsvMapping),
    /// python-threatexchange `dataset -P --csv` export.
    Hma,
    /// NCMEC hash-sharing API v2 `queryResult` page.
    Ncmec,
    /// StopNCII `FetchHashes` page.
    StopNcii,
}

impl Format {
    /// The format's command-line name.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Plain { .. } => "plain",
            Format::Csv(_) => "csv",
            Format::Hma => "hma",
            Format::Ncmec => "ncmec",
            Format::StopNcii => "stopncii",
        }
    }

    /// Format names, for help texts and error messages.
    pub const NAMES: [&'static str; 5] = ["plain", "csv", "hma", "ncmec", "stopncii"];
}

/// Reads a whole list, calling `sink` for every record in order. Stops at the first error,
/// from the list or from `sink`. Returns the number of records passed.
pub fn read<R: BufRead, E: From<Error>>(
    format: &Format,
    reader: R,
    sink: &mut dyn FnMut(&Record<'_>) -> std::result::Result<(), E>,
) -> std::result::Result<u64, E> {
    match format {
        Format::Plain { signal_type } => plain::read(reader, signal_type.as_deref(), sink),
        Format::Csv(mapping) => table::read(reader, mapping, sink),
        Format::Hma => table::read(reader, &CsvMapping::hma(), sink),
        Format::Ncmec => ncmec::read(reader, sink),
        Format::StopNcii => stopncii::read(reader, sink),
    }
}

/// The signal type a bare hash of this many characters must be, for lists that do not say:
/// 32 hex digits are MD5, 40 SHA-1, 288 PhotoDNA. 64 digits could be PDQ or SHA-256, so
/// those (and any other length) need a declared type.
pub fn detect_type(value: &str) -> std::result::Result<&'static str, String> {
    match value.len() {
        32 => Ok("md5"),
        40 => Ok("sha1"),
        288 => Ok("photodna"),
        64 => Err(
            "a 64-digit value may be PDQ or SHA-256: declare the type (--type pdq or \
             --type sha256)"
                .into(),
        ),
        n => Err(format!(
            "cannot tell the signal type of a {n}-character value: declare it with --type"
        )),
    }
}

/// Reads lines of at most [`MAX_LINE_BYTES`] into `buf` (without the line ending). Returns
/// false at the end of input.
pub(crate) fn read_line<R: BufRead>(r: &mut R, buf: &mut Vec<u8>, line: u64) -> Result<bool> {
    use std::io::Read;
    buf.clear();
    let limit = MAX_LINE_BYTES as u64 + 1;
    let n = r.by_ref().take(limit).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    } else if n as u64 == limit {
        return Err(Error::at(
            Position::Line(line),
            format!("line is longer than {MAX_LINE_BYTES} bytes"),
        ));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_by_length() {
        assert_eq!(detect_type(&"a".repeat(32)), Ok("md5"));
        assert_eq!(detect_type(&"a".repeat(40)), Ok("sha1"));
        assert_eq!(detect_type(&"a".repeat(288)), Ok("photodna"));
        assert!(detect_type(&"a".repeat(64))
            .unwrap_err()
            .contains("PDQ or SHA-256"));
        assert!(detect_type("abc").unwrap_err().contains("3-character"));
    }

    /// A field far over its limit, in each format that buffers a whole field, is refused once
    /// [`MAX_RUN_BYTES`] have passed, not after the parser has read all of it (64 MiB here;
    /// the message says which check stopped it).
    #[test]
    fn endless_fields_are_refused_before_they_are_buffered() {
        use std::io::Read;
        // Short lines after an unclosed quote: one CSV record, however many lines.
        let lines: Vec<u8> = b"aaaaaaa\n".repeat(2 << 20);
        let endless = |head: &str, tail: &[u8]| {
            std::io::BufReader::new(
                std::io::Cursor::new(head.as_bytes().to_vec())
                    .chain(std::io::Cursor::new(tail.to_vec()))
                    .chain(std::io::repeat(b'a').take(64 << 20)),
            )
        };
        let cases: [(Format, &str, &[u8], &str); 3] = [
            (
                Format::Ncmec,
                "<?xml version=\"1.0\"?><queryResult><images><image><md5>",
                b"",
                "a text or tag",
            ),
            (
                Format::StopNcii,
                "{\"hashRecords\": [{\"hashValue\": \"",
                b"",
                "a JSON string",
            ),
            (
                Format::Hma,
                "collab,signal_type,signal_str,category,tags\nc,pdq,\"",
                &lines,
                "a record",
            ),
        ];
        for (format, head, tail, what) in cases {
            let mut n = 0;
            let e = read(&format, endless(head, tail), &mut |_| -> Result<()> {
                n += 1;
                Ok(())
            })
            .unwrap_err();
            assert!(e.to_string().contains(what), "{format:?}: {e}");
            assert_eq!(n, 0);
        }
    }

    #[test]
    fn long_lines_are_refused_not_buffered() {
        let mut data = vec![b'a'; MAX_LINE_BYTES + 10];
        data.push(b'\n');
        let mut r = std::io::Cursor::new(data);
        let mut buf = Vec::new();
        let e = read_line(&mut r, &mut buf, 7).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("line 7: line is longer than {MAX_LINE_BYTES} bytes")
        );
        assert!(buf.len() <= MAX_LINE_BYTES + 1);
    }
}
