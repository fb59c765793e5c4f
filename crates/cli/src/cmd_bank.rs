//! `safeguard bank import|export|diff`: hash lists in and out of a bank, on the store in the
//! data directory (no server needed; the store's locking makes it safe next to a running
//! server, which sees the changes at its next sync or restart).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use safeguard_engine::{
    validate_bank_name, DiffReport, ImportOptions, SignalType, DEFAULT_PDQ_THRESHOLD,
};
use safeguard_lists::{Column, CsvMapping, Format};
use safeguard_store::{BankKind, DiffSide, NewBank, Store};
use serde::Deserialize;

use crate::cmd_serve::DataDirArg;
use crate::output::{commit_staged, staged_file, Out, WriteResult};

/// `safeguard bank ...`.
#[derive(Debug, clap::Subcommand)]
pub enum BankCommand {
    /// Import a hash list into a bank, all or nothing. Re-importing the same list changes no
    /// bank content (only the provenance's last-seen time).
    Import(ImportArgs),
    /// Export a bank's hashes in a list format.
    Export(ExportArgs),
    /// Compare a hash list with a bank: counts of hashes only in the file, only in the bank
    /// (of the signal types the file has), and in both.
    Diff(DiffArgs),
}

/// The list format and its options, shared by the three commands.
#[derive(Debug, clap::Args)]
pub struct FormatArgs {
    /// List format: plain, csv, hma (python-threatexchange CSV), ncmec (hash-sharing XML
    /// page), stopncii (FetchHashes JSON page).
    #[arg(long, short = 'f', value_parser = clap::builder::PossibleValuesParser::new(Format::NAMES))]
    pub format: String,
    /// Signal type of every entry (plain and csv without a type column). Needed for
    /// 64-digit values (pdq or sha256); 32 and 40 digits are taken as md5 and sha1.
    #[arg(long = "type", value_name = "TYPE")]
    pub signal_type: Option<String>,
    /// CSV: field delimiter (one character, or `tab`).
    #[arg(long, default_value = ",")]
    pub delimiter: String,
    /// CSV: the first row is a header (column names may then be given instead of numbers).
    #[arg(long)]
    pub header: bool,
    /// CSV: the hash column (1-based number or header name).
    #[arg(long, value_name = "COL")]
    pub hash_column: Option<String>,
    /// CSV: the signal type column.
    #[arg(long, value_name = "COL")]
    pub type_column: Option<String>,
    /// CSV: the classification (grade) column.
    #[arg(long, value_name = "COL")]
    pub classification_column: Option<String>,
    /// CSV: the source id column.
    #[arg(long, value_name = "COL")]
    pub source_id_column: Option<String>,
    /// CSV: a TOML file with the column mapping (keys: delimiter, header, hash_column,
    /// type_column, classification_column, source_id_column, type); flags override it.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
}

/// The mapping file's keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    delimiter: Option<String>,
    header: Option<bool>,
    hash_column: Option<toml::Value>,
    type_column: Option<toml::Value>,
    classification_column: Option<toml::Value>,
    source_id_column: Option<toml::Value>,
    #[serde(rename = "type")]
    signal_type: Option<String>,
}

fn column(v: &toml::Value) -> anyhow::Result<Column> {
    match v {
        toml::Value::Integer(n) if *n >= 1 => Ok(Column::Number(*n as usize)),
        toml::Value::String(s) => Ok(Column::parse(s)),
        other => bail!("a column is a number from 1 or a header name, not {other}"),
    }
}

fn delimiter(s: &str) -> anyhow::Result<u8> {
    match s {
        "tab" | "\\t" => Ok(b'\t'),
        s if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        _ => bail!("--delimiter must be one ASCII character or `tab`, not {s:?}"),
    }
}

impl FormatArgs {
    fn format(&self) -> anyhow::Result<Format> {
        Ok(match self.format.as_str() {
            "plain" => Format::Plain {
                signal_type: self.signal_type.clone(),
            },
            "csv" => Format::Csv(self.mapping()?),
            "hma" => Format::Hma,
            "ncmec" => Format::Ncmec,
            "stopncii" => Format::StopNcii,
            other => bail!("unknown format {other:?}"),
        })
    }

    fn mapping(&self) -> anyhow::Result<CsvMapping> {
        let file: MappingFile = match &self.mapping {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("in {}", p.display()))?
            }
            None => MappingFile::default(),
        };
        let pick =
            |flag: &Option<String>, file: &Option<toml::Value>| -> anyhow::Result<Option<Column>> {
                match (flag, file) {
                    (Some(f), _) => Ok(Some(Column::parse(f))),
                    (None, Some(v)) => column(v).map(Some),
                    (None, None) => Ok(None),
                }
            };
        let delim = if self.delimiter != "," {
            self.delimiter.as_str()
        } else {
            file.delimiter.as_deref().unwrap_or(",")
        };
        Ok(CsvMapping {
            delimiter: delimiter(delim)?,
            header: self.header || file.header.unwrap_or(false),
            hash: pick(&self.hash_column, &file.hash_column)?,
            signal_type_column: pick(&self.type_column, &file.type_column)?,
            signal_type: self.signal_type.clone().or(file.signal_type),
            classification: pick(&self.classification_column, &file.classification_column)?,
            source_id: pick(&self.source_id_column, &file.source_id_column)?,
        })
    }
}

/// Arguments of `safeguard bank import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The bank (UPPER_SNAKE_CASE).
    #[arg(long)]
    pub bank: String,
    #[command(flatten)]
    pub format: FormatArgs,
    /// The list file; standard input when `-`.
    pub file: PathBuf,
    /// Provenance source [default: file:<file name>]. Give daily files of one list the same
    /// source (`file:iwf`) so they are one source.
    #[arg(long)]
    pub source: Option<String>,
    /// The file is the source's complete list: hashes it listed before and no longer lists
    /// are withdrawn.
    #[arg(long)]
    pub complete: bool,
    /// Skip entries of signal types Safeguard does not match (default for ncmec and
    /// stopncii) instead of refusing the list.
    #[arg(long)]
    pub skip_unknown_types: bool,
    /// Create the bank if it does not exist.
    #[arg(long)]
    pub create: bool,
    #[command(flatten)]
    pub data: DataDirArg,
}

/// Arguments of `safeguard bank export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The bank.
    #[arg(long)]
    pub bank: String,
    #[command(flatten)]
    pub format: FormatArgs,
    /// Only these signal types (repeat or comma-separate).
    #[arg(long = "only", value_delimiter = ',', value_name = "TYPE")]
    pub only: Vec<String>,
    /// Output file [default: standard output].
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataDirArg,
}

/// Arguments of `safeguard bank diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The bank.
    #[arg(long)]
    pub bank: String,
    #[command(flatten)]
    pub format: FormatArgs,
    /// The list file; standard input when `-`.
    pub file: PathBuf,
    /// Also list the hashes on each side: `+TYPE VALUE` only in the file, `-TYPE VALUE` only
    /// in the bank.
    #[arg(long)]
    pub show: bool,
    #[command(flatten)]
    pub data: DataDirArg,
}

/// The list as a buffered reader (1 MiB buffer: imports are sequential reads of big files).
fn open_list(path: &Path) -> anyhow::Result<Box<dyn std::io::BufRead>> {
    let inner: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, inner)))
}

/// The bank's id, and whether this call created it.
fn bank_id(store: &dyn Store, name: &str, create: bool) -> anyhow::Result<(i64, bool)> {
    if let Some(b) = store.bank_by_name(name)? {
        return Ok((b.id, false));
    }
    if !create {
        bail!("bank {name:?} not found (pass --create to create it)");
    }
    validate_bank_name(name)?;
    let made = store.create_bank(&NewBank {
        name: name.to_string(),
        enabled: true,
        enabled_ratio: 1.0,
        pdq_threshold: DEFAULT_PDQ_THRESHOLD,
        kind: BankKind::Standard,
        tags: Vec::new(),
        classification: None,
    })?;
    Ok((made.id, true))
}

fn skipped_json(skipped: &std::collections::BTreeMap<String, u64>) -> serde_json::Value {
    serde_json::Value::Object(
        skipped
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(*v)))
            .collect(),
    )
}

/// Runs a bank subcommand.
pub fn run(cmd: &BankCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BankCommand::Import(a) => import(a),
        BankCommand::Export(a) => export(a),
        BankCommand::Diff(a) => diff(a),
    }
}

fn import(a: &ImportArgs) -> anyhow::Result<ExitCode> {
    let format = a.format.format()?;
    // Opened before a bank is made: a list that cannot be read leaves no bank behind.
    let list = open_list(&a.file)?;
    let store = a.data.open()?;
    let (bank, created) = bank_id(store.as_ref(), &a.bank, a.create)?;
    let source = match &a.source {
        Some(s) => s.clone(),
        None => {
            let name = a
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .filter(|n| n != "-")
                .unwrap_or_else(|| "stdin".into());
            format!("file:{name}")
        }
    };
    let mut opts = ImportOptions::new(format, source);
    opts.complete = a.complete;
    opts.skip_unknown_types |= a.skip_unknown_types;
    let start = std::time::Instant::now();
    let report = match safeguard_engine::import_list(store.as_ref(), bank, &opts, list) {
        Ok(r) => r,
        Err(e) => {
            // All or nothing: a bank made by this command for a list it refused goes too.
            if created {
                if let Err(d) = store.delete_bank(bank) {
                    eprintln!(
                        "warning: the bank {:?} made for this import is left, empty: {d}",
                        a.bank
                    );
                }
            }
            return Err(anyhow::Error::from(e)
                .context(format!("{}: nothing was imported", a.file.display())));
        }
    };
    let o = report.outcome;
    crate::cmd_audit::record(
        &a.data,
        std::sync::Arc::from(store),
        if o.removed > 0 && o.added == 0 {
            safeguard_engine::audit::Action::BankWithdrawal
        } else {
            safeguard_engine::audit::Action::BankImport
        },
        &format!("bank:{}", a.bank),
        &format!(
            "{} added, {} refreshed, {} removed",
            o.added, o.refreshed, o.removed
        ),
    );
    println!(
        "{}",
        serde_json::json!({
            "bank": a.bank,
            "source": opts.source,
            "records": report.records,
            "added": o.added,
            "refreshed": o.refreshed,
            "removed": o.removed,
            "unchanged": o.unchanged,
            "skipped_unknown_types": skipped_json(&report.skipped),
            "seconds": (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        })
    );
    Ok(ExitCode::SUCCESS)
}

fn export(a: &ExportArgs) -> anyhow::Result<ExitCode> {
    let format = a.format.format()?;
    let types = a
        .only
        .iter()
        .map(|t| SignalType::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    let store = a.data.open()?;
    let (bank, _) = bank_id(store.as_ref(), &a.bank, false)?;
    let staged = a.output.as_deref().map(staged_file).transpose()?;
    let out: Box<dyn Write> = match &staged {
        Some(f) => Box::new(f.as_file().try_clone()?),
        None => Box::new(std::io::stdout()),
    };
    let report = safeguard_engine::export_list(
        store.as_ref(),
        bank,
        &format,
        (!types.is_empty()).then_some(types.as_slice()),
        BufWriter::with_capacity(1 << 20, out),
    )?;
    if let (Some(f), Some(path)) = (staged, &a.output) {
        commit_staged(f, path)?;
    }
    eprintln!(
        "{}",
        serde_json::json!({
            "bank": a.bank,
            "written": report.written,
            "skipped_types_the_format_cannot_carry": skipped_json(&report.skipped),
        })
    );
    Ok(ExitCode::SUCCESS)
}

fn diff(a: &DiffArgs) -> anyhow::Result<ExitCode> {
    let format = a.format.format()?;
    let store = a.data.open()?;
    let (bank, _) = bank_id(store.as_ref(), &a.bank, false)?;
    let mut out = Out::stdout();
    let mut write_error = None;
    let mut closed = false;
    let mut show = |side: DiffSide, t: &str, v: &str| {
        if closed || write_error.is_some() {
            return;
        }
        let mark = match side {
            DiffSide::OnlyInFile => '+',
            DiffSide::OnlyInBank => '-',
        };
        match out.line(&format!("{mark}{t} {v}")) {
            Ok(WriteResult::Ok) => {}
            Ok(WriteResult::Closed) => closed = true,
            Err(e) => write_error = Some(e),
        }
    };
    let report: DiffReport = safeguard_engine::diff_list(
        store.as_ref(),
        bank,
        &format,
        open_list(&a.file)?,
        if a.show { Some(&mut show) } else { None },
    )?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    let d = report.outcome;
    let summary = serde_json::json!({
        "bank": a.bank,
        "records": report.records,
        "only_in_file": d.only_in_file,
        "only_in_bank": d.only_in_bank,
        "common": d.common,
        "repeated_in_file": d.repeated_in_file,
        "skipped_unknown_types": skipped_json(&report.skipped),
    });
    if a.show {
        out.flush()?;
        eprintln!("{summary}");
    } else {
        out.line(&summary.to_string())?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}
