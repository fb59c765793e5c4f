//! Delimited text (CSV, TSV, ...) with a column mapping, and python-threatexchange's CSV
//! export as a preset mapping.

use std::io::{BufRead, Read};

use crate::{detect_type, Action, Error, Position, Record, MAX_LINE_BYTES};

/// A column, by 1-based number or by header name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// 1-based column number.
    Number(usize),
    /// Header name (needs a header row); matched ignoring ASCII case.
    Name(String),
}

impl Column {
    /// Parses a command-line value: a number is a column number, anything else a header name.
    pub fn parse(s: &str) -> Column {
        match s.trim().parse::<usize>() {
            Ok(n) => Column::Number(n),
            Err(_) => Column::Name(s.trim().to_string()),
        }
    }

    fn resolve(&self, header: Option<&csv::StringRecord>, what: &str) -> Result<usize, Error> {
        match self {
            Column::Number(0) => Err(Error::Options(format!("{what} column numbers start at 1"))),
            Column::Number(n) => Ok(n - 1),
            Column::Name(name) => {
                let header = header.ok_or_else(|| {
                    Error::Options(format!(
                        "{what} column {name:?} is a name, which needs a header row (--header)"
                    ))
                })?;
                header
                    .iter()
                    .position(|h| h.trim().eq_ignore_ascii_case(name))
                    .ok_or_else(|| {
                        Error::Options(format!("no column named {name:?} in the header row"))
                    })
            }
        }
    }
}

/// How to read a delimited list: which column holds what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvMapping {
    /// Field delimiter (`,` by default; `\t` for TSV).
    pub delimiter: u8,
    /// Whether the first row is a header (skipped, and used to resolve column names).
    pub header: bool,
    /// The hash column. `None`: found in the header by name (`signal_str`, `signal_value`,
    /// `value`, `hash`).
    pub hash: Option<Column>,
    /// The signal type column (else `signal_type` below, else detection by length).
    pub signal_type_column: Option<Column>,
    /// The type of every row when there is no type column.
    pub signal_type: Option<String>,
    /// The classification (grade) column.
    pub classification: Option<Column>,
    /// The source id column.
    pub source_id: Option<Column>,
}

impl Default for CsvMapping {
    fn default() -> CsvMapping {
        CsvMapping {
            delimiter: b',',
            header: false,
            hash: None,
            signal_type_column: None,
            signal_type: None,
            classification: None,
            source_id: None,
        }
    }
}

impl CsvMapping {
    /// python-threatexchange's `dataset -P --csv`: `collab,signal_type,signal_str,category,tags`.
    pub fn hma() -> CsvMapping {
        CsvMapping {
            header: true,
            hash: Some(Column::Name("signal_str".into())),
            signal_type_column: Some(Column::Name("signal_type".into())),
            classification: Some(Column::Name("category".into())),
            ..CsvMapping::default()
        }
    }
}

/// Column indexes resolved against the header.
struct Resolved {
    hash: usize,
    signal_type: Option<usize>,
    classification: Option<usize>,
    source_id: Option<usize>,
    collab: Option<usize>,
    tags: Option<usize>,
}

/// Header names recognised when a column is not given.
const HASH_NAMES: [&str; 5] = ["signal_str", "signal_value", "value", "hash", "hash_value"];
const TYPE_NAMES: [&str; 3] = ["signal_type", "type", "hash_type"];
const CLASS_NAMES: [&str; 4] = ["classification", "category", "grade", "class"];
const ID_NAMES: [&str; 3] = ["source_id", "id", "entry_id"];

fn by_name(header: Option<&csv::StringRecord>, names: &[&str]) -> Option<usize> {
    let header = header?;
    names
        .iter()
        .find_map(|n| header.iter().position(|h| h.trim().eq_ignore_ascii_case(n)))
}

fn resolve(m: &CsvMapping, header: Option<&csv::StringRecord>) -> Result<Resolved, Error> {
    let pick = |c: &Option<Column>, names: &[&str], what: &str| -> Result<Option<usize>, Error> {
        match c {
            Some(c) => c.resolve(header, what).map(Some),
            None => Ok(by_name(header, names)),
        }
    };
    let hash = pick(&m.hash, &HASH_NAMES, "hash")?.ok_or_else(|| {
        Error::Options(
            "which column holds the hash? Give --hash-column (a number, or a header name with \
             --header)"
                .into(),
        )
    })?;
    let signal_type = if m.signal_type.is_some() && m.signal_type_column.is_none() {
        None
    } else {
        pick(&m.signal_type_column, &TYPE_NAMES, "type")?
    };
    Ok(Resolved {
        hash,
        signal_type,
        classification: pick(&m.classification, &CLASS_NAMES, "classification")?,
        source_id: pick(&m.source_id, &ID_NAMES, "source id")?,
        collab: by_name(header, &["collab"]),
        tags: by_name(header, &["tags"]),
    })
}

/// Refuses a record longer than [`MAX_LINE_BYTES`] before the CSV reader buffers it. A record
/// ends at a newline outside quotes, read as the CSV reader reads them: a quote opens a quoted
/// field only at the field's start (elsewhere it is text), and inside one `""` is a quote and
/// a lone `"` closes it. So an unclosed quote cannot make it read the rest of the file into
/// one record, and a stray quote in a field's text changes nothing.
struct LineLimit<R> {
    inner: R,
    delimiter: u8,
    since_newline: usize,
    /// At the first byte of a field.
    field_start: bool,
    /// Inside a quoted field.
    quoted: bool,
    /// Inside a quoted field, just after a `"`: the end of the field, or the first of `""`.
    quote_seen: bool,
}

impl<R> LineLimit<R> {
    fn new(inner: R, delimiter: u8) -> LineLimit<R> {
        LineLimit {
            inner,
            delimiter,
            since_newline: 0,
            field_start: true,
            quoted: false,
            quote_seen: false,
        }
    }

    /// Whether `b` ends a record.
    fn ends_record(&mut self, b: u8) -> bool {
        if self.quoted {
            if !self.quote_seen {
                self.quote_seen = b == b'"';
                return false;
            }
            self.quote_seen = false;
            if b == b'"' {
                return false; // `""`: a quote in the field
            }
            self.quoted = false; // the field closed; `b` follows it
        }
        if b == b'"' && self.field_start {
            self.quoted = true;
            self.field_start = false;
            return false;
        }
        self.field_start = b == self.delimiter || b == b'\n';
        b == b'\n'
    }
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if self.ends_record(b) {
                self.since_newline = 0;
            } else {
                self.since_newline += 1;
                if self.since_newline > MAX_LINE_BYTES {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("a record is longer than {MAX_LINE_BYTES} bytes"),
                    ));
                }
            }
        }
        Ok(n)
    }
}

fn csv_error(e: csv::Error, line: u64) -> Error {
    let line = e.position().map(|p| p.line()).unwrap_or(line);
    match e.into_kind() {
        csv::ErrorKind::Io(io) if io.kind() != std::io::ErrorKind::InvalidData => Error::Io(io),
        csv::ErrorKind::Io(io) => Error::at(Position::Line(line), io.to_string()),
        csv::ErrorKind::Utf8 { err, .. } => {
            Error::at(Position::Line(line), format!("not UTF-8 text ({err})"))
        }
        other => Error::at(Position::Line(line), format!("{other:?}")),
    }
}

pub(crate) fn read<R: BufRead, E: From<Error>>(
    reader: R,
    mapping: &CsvMapping,
    sink: &mut dyn FnMut(&Record<'_>) -> Result<(), E>,
) -> Result<u64, E> {
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(mapping.delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(LineLimit::new(reader, mapping.delimiter));
    let mut record = csv::StringRecord::new();
    let mut header = None;
    let mut last_line = 1;
    if mapping.header {
        if !csv
            .read_record(&mut record)
            .map_err(|e| csv_error(e, last_line))?
        {
            return Ok(0);
        }
        header = Some(record.clone());
    }
    let cols = resolve(mapping, header.as_ref())?;
    let mut metadata = String::new();
    let mut passed = 0;
    while csv
        .read_record(&mut record)
        .map_err(|e| csv_error(e, last_line))?
    {
        let line = record.position().map(|p| p.line()).unwrap_or(last_line);
        last_line = line + 1;
        let position = Position::Line(line);
        // Comment rows are skipped here rather than by the CSV reader, whose line count
        // would then leave them out and misnumber every later line.
        let first = record.get(0).unwrap_or_default().trim_start();
        if first.starts_with('#') || record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let field = |i: Option<usize>| {
            i.and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let value = field(Some(cols.hash)).ok_or_else(|| {
            Error::at(
                position,
                format!(
                    "no hash in column {} (the row has {} fields)",
                    cols.hash + 1,
                    record.len()
                ),
            )
        })?;
        let signal_type = match (field(cols.signal_type), &mapping.signal_type) {
            (Some(t), _) => t,
            (None, Some(t)) => t.as_str(),
            (None, None) => detect_type(value).map_err(|m| Error::at(position, m))?,
        };
        let meta = match (field(cols.collab), field(cols.tags)) {
            (None, None) => None,
            (collab, tags) => {
                metadata.clear();
                let tags: Vec<&str> = tags
                    .map(|t| t.split_whitespace().collect())
                    .unwrap_or_default();
                metadata
                    .push_str(&serde_json::json!({ "collab": collab, "tags": tags }).to_string());
                Some(metadata.as_str())
            }
        };
        sink(&Record {
            position,
            action: Action::List,
            signal_type,
            value,
            source_id: field(cols.source_id),
            classification: field(cols.classification),
            metadata: meta,
        })?;
        passed += 1;
    }
    Ok(passed)
}

#[cfg(test)]
mod tests {
    /// Where [`LineLimit`] sees records end: at newlines outside quoted fields only, with a
    /// quote opening a field only at its start and `""` staying inside.
    #[test]
    fn records_end_where_the_csv_reader_ends_them() {
        let ends = |text: &str| -> Vec<usize> {
            let mut l = LineLimit::new(std::io::empty(), b',');
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| l.ends_record(b))
                .map(|(i, _)| i)
                .collect()
        };
        assert_eq!(ends("a,b\nc,d\n"), vec![3, 7]);
        assert_eq!(
            ends("a,\"x\ny\"\nc\n"),
            vec![7, 9],
            "a newline inside quotes"
        );
        assert_eq!(
            ends("a,\"x\"\"\ny\"\n"),
            vec![9],
            "an escaped quote stays inside"
        );
        assert_eq!(ends("a,b\"c\nd,e\n"), vec![5, 9], "a stray quote is text");
        assert_eq!(
            ends("a,\"x\"y\nz\n"),
            vec![6, 8],
            "text after a closing quote"
        );
    }

    use super::*;

    type Row = (u64, String, String, Option<String>, Option<String>);

    fn collect(text: &str, m: &CsvMapping) -> Result<Vec<Row>, Error> {
        let mut out = Vec::new();
        read(text.as_bytes(), m, &mut |r: &Record<'_>| {
            let Position::Line(l) = r.position else {
                unreachable!("delimited lists number lines")
            };
            out.push((
                l,
                r.signal_type.to_string(),
                r.value.to_string(),
                r.classification.map(str::to_string),
                r.source_id.map(str::to_string),
            ));
            Ok::<(), Error>(())
        })?;
        Ok(out)
    }

    #[test]
    fn numbered_columns_licensed_layout() {
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        let sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
        let text = format!("id;grade;kind;hash\n7;A;md5;{md5}\n# note\n8;C;sha1;{sha1}\n");
        let m = CsvMapping {
            delimiter: b';',
            header: true,
            hash: Some(Column::Number(4)),
            signal_type_column: Some(Column::Number(3)),
            classification: Some(Column::Number(2)),
            source_id: Some(Column::Number(1)),
            ..CsvMapping::default()
        };
        assert_eq!(
            collect(&text, &m).unwrap(),
            vec![
                (
                    2,
                    "md5".into(),
                    md5.into(),
                    Some("A".into()),
                    Some("7".into())
                ),
                (
                    4,
                    "sha1".into(),
                    sha1.into(),
                    Some("C".into()),
                    Some("8".into())
                ),
            ]
        );
    }

    #[test]
    fn header_names_are_found_and_hma_preset() {
        let pdq = "f".repeat(64);
        let text =
            format!("collab,signal_type,signal_str,category,tags\nSample,pdq,{pdq},ADVERSE,a b\n");
        let got = collect(&text, &CsvMapping::hma()).unwrap();
        assert_eq!(
            got,
            vec![(2, "pdq".into(), pdq.clone(), Some("ADVERSE".into()), None)]
        );
        // Our own export's header is recognised without flags.
        let text = format!("signal_type,value,classification,source_id\npdq,{pdq},B,x\n");
        let m = CsvMapping {
            header: true,
            ..CsvMapping::default()
        };
        let got = collect(&text, &m).unwrap();
        assert_eq!(
            got,
            vec![(2, "pdq".into(), pdq, Some("B".into()), Some("x".into()))]
        );
    }

    #[test]
    fn errors_name_the_line_or_the_option() {
        let m = CsvMapping {
            hash: Some(Column::Number(2)),
            ..CsvMapping::default()
        };
        let e = collect(&format!("x,{}\ny\n", "a".repeat(32)), &m).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: no hash in column 2 (the row has 1 fields)"
        );
        let e = collect("a,b\n", &CsvMapping::default()).unwrap_err();
        assert!(matches!(e, Error::Options(_)), "{e}");
        let m = CsvMapping {
            hash: Some(Column::Name("h".into())),
            ..CsvMapping::default()
        };
        assert!(collect("a\n", &m)
            .unwrap_err()
            .to_string()
            .contains("needs a header row"));
        let m = CsvMapping {
            hash: Some(Column::Number(1)),
            ..CsvMapping::default()
        };
        let e = collect(&format!("{}\n{}\n", "a".repeat(32), "b".repeat(64)), &m).unwrap_err();
        assert!(e.to_string().starts_with("line 2: a 64-digit value"), "{e}");
    }
}
