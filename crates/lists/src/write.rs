//! Writers of the same formats, so a bank exported in a format imports back unchanged.

use std::io::Write;

use crate::Format;

/// One hash to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportEntry<'a> {
    /// Safeguard's signal type name.
    pub signal_type: &'a str,
    /// Canonical value.
    pub value: &'a str,
    /// Source id (of the first active source that gave one).
    pub source_id: Option<&'a str>,
    /// Classification (likewise).
    pub classification: Option<&'a str>,
    /// The source (first active one), for the CSV formats.
    pub source: Option<&'a str>,
    /// First seen by that source, Unix milliseconds.
    pub first_seen: Option<i64>,
    /// Last seen by that source, Unix milliseconds.
    pub last_seen: Option<i64>,
}

/// A streaming writer of one format.
pub trait ListWriter {
    /// Writes one entry. Returns false if the format cannot carry its signal type (the entry
    /// is skipped; the caller counts it).
    fn write(&mut self, entry: &ExportEntry<'_>) -> std::io::Result<bool>;
    /// Writes what the format needs at the end and flushes.
    fn finish(self: Box<Self>) -> std::io::Result<()>;
}

/// A writer of `format` onto `out`. `single_type`: the export holds one signal type only, so
/// a plain list can be bare values (else each line is `TYPE VALUE`).
pub fn writer<'w, W: Write + 'w>(
    format: &Format,
    out: W,
    single_type: bool,
) -> Box<dyn ListWriter + 'w> {
    match format {
        Format::Plain { .. } => Box::new(Plain {
            out,
            with_type: !single_type,
        }),
        Format::Csv(mapping) => Box::new(Csv {
            out: csv::WriterBuilder::new()
                .delimiter(mapping.delimiter)
                .from_writer(out),
            header: false,
            hma: false,
        }),
        Format::Hma => Box::new(Csv {
            out: csv::WriterBuilder::new().from_writer(out),
            header: false,
            hma: true,
        }),
        Format::Ncmec => Box::new(Ncmec {
            out,
            started: false,
            n: 0,
        }),
        Format::StopNcii => Box::new(StopNcii {
            out,
            started: false,
            n: 0,
        }),
    }
}

struct Plain<W> {
    out: W,
    with_type: bool,
}

impl<W: Write> ListWriter for Plain<W> {
    fn write(&mut self, e: &ExportEntry<'_>) -> std::io::Result<bool> {
        if self.with_type {
            writeln!(self.out, "{} {}", e.signal_type, e.value)?;
        } else {
            writeln!(self.out, "{}", e.value)?;
        }
        Ok(true)
    }
    fn finish(mut self: Box<Self>) -> std::io::Result<()> {
        self.out.flush()
    }
}

struct Csv<W: Write> {
    out: csv::Writer<W>,
    header: bool,
    /// python-threatexchange's column set instead of ours.
    hma: bool,
}

fn csv_io(e: csv::Error) -> std::io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

impl<W: Write> Csv<W> {
    fn write_header(&mut self) -> std::io::Result<()> {
        if !self.header {
            self.header = true;
            let cols: &[&str] = if self.hma {
                &["collab", "signal_type", "signal_str", "category", "tags"]
            } else {
                &[
                    "signal_type",
                    "value",
                    "classification",
                    "source_id",
                    "source",
                    "first_seen",
                    "last_seen",
                ]
            };
            self.out.write_record(cols).map_err(csv_io)?;
        }
        Ok(())
    }
}

impl<W: Write> ListWriter for Csv<W> {
    fn write(&mut self, e: &ExportEntry<'_>) -> std::io::Result<bool> {
        self.write_header()?;
        let opt = |s: Option<&str>| s.unwrap_or_default().to_string();
        let num = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
        let row: Vec<String> = if self.hma {
            vec![
                opt(e.source),
                e.signal_type.to_string(),
                e.value.to_string(),
                opt(e.classification),
                String::new(),
            ]
        } else {
            vec![
                e.signal_type.to_string(),
                e.value.to_string(),
                opt(e.classification),
                opt(e.source_id),
                opt(e.source),
                num(e.first_seen),
                num(e.last_seen),
            ]
        };
        self.out.write_record(&row).map_err(csv_io)?;
        Ok(true)
    }
    fn finish(mut self: Box<Self>) -> std::io::Result<()> {
        self.write_header()?;
        self.out.flush()
    }
}

/// Escapes text for XML element content.
fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

struct Ncmec<W> {
    out: W,
    started: bool,
    n: u64,
}

impl<W: Write> Ncmec<W> {
    fn start(&mut self) -> std::io::Result<()> {
        if !self.started {
            self.started = true;
            writeln!(
                self.out,
                "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
                 <queryResult xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\">\n  <images>"
            )?;
        }
        Ok(())
    }
}

impl<W: Write> ListWriter for Ncmec<W> {
    fn write(&mut self, e: &ExportEntry<'_>) -> std::io::Result<bool> {
        let element = match e.signal_type {
            "md5" => "md5",
            "sha1" => "sha1",
            "pdq" => "pdq",
            "photodna" => "pdna",
            _ => return Ok(false),
        };
        self.start()?;
        self.n += 1;
        let id = match e.source_id {
            Some(id) => xml_escape(id),
            None => format!("safeguard-{}", self.n),
        };
        write!(self.out, "    <image><id>{id}</id>")?;
        if let Some(c) = e.classification {
            write!(
                self.out,
                "<classification>{}</classification>",
                xml_escape(c)
            )?;
        }
        writeln!(
            self.out,
            "<fingerprints><{element}>{}</{element}></fingerprints></image>",
            xml_escape(e.value)
        )?;
        Ok(true)
    }
    fn finish(mut self: Box<Self>) -> std::io::Result<()> {
        self.start()?;
        writeln!(self.out, "  </images>\n</queryResult>")?;
        self.out.flush()
    }
}

struct StopNcii<W> {
    out: W,
    started: bool,
    n: u64,
}

impl<W: Write> ListWriter for StopNcii<W> {
    fn write(&mut self, e: &ExportEntry<'_>) -> std::io::Result<bool> {
        let t = match e.signal_type {
            "pdq" => "ImagePDQ",
            "md5" | "video_md5" => "VideoMD5",
            _ => return Ok(false),
        };
        let sep = if self.started {
            ",\n"
        } else {
            "{\"hashRecords\": [\n"
        };
        self.started = true;
        self.n += 1;
        let record = serde_json::json!({
            "lastModtimestamp": e.last_seen.map(|ms| ms / 1000).unwrap_or(0),
            "signalType": t,
            "hashValue": e.value,
            "hashStatus": "Active",
            "caseNumbers": {},
            "CSPFeedbacks": [],
        });
        write!(self.out, "{sep}  {record}")?;
        Ok(true)
    }
    fn finish(mut self: Box<Self>) -> std::io::Result<()> {
        if !self.started {
            write!(self.out, "{{\"hashRecords\": [")?;
        }
        writeln!(
            self.out,
            "\n], \"count\": {}, \"hasMoreRecords\": false, \"nextPageToken\": \"\"}}",
            self.n
        )?;
        self.out.flush()
    }
}
