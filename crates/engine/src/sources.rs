//! Hash-list sources: file imports, exports and diffs in the formats of
//! [`safeguard_lists`], exchange batches, and the provenance of every hash.
//!
//! Every entry is validated and normalised here, by its signal type, before the store sees it
//! (an error names the entry: line, record or XML entry). The store applies an import in one
//! transaction, so a bad entry anywhere leaves the bank exactly as it was. The import, export
//! and diff functions take a [`Store`] rather than an [`Engine`] so the command line can run
//! them without loading the in-memory indexes; the `Engine` methods add the index sync.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use safeguard_lists::{Action, ExportEntry, Format, Record};
use safeguard_store::{
    BankId, BatchOutcome, DiffOutcome, DiffSide, ExchangeState, Provenance, SourceBatch,
    SourceEntry, SourceImport, SourceRemoval, SourceSink, Store,
};

use crate::signal::SignalType;
use crate::{Engine, Error, MAX_METADATA_BYTES};

/// Most entries (records of any kind) one import may hold: 50 million, five times the
/// largest lists in circulation. A bound keeps a runaway or hostile file from filling the
/// disk with staging data before it fails.
pub const MAX_IMPORT_ENTRIES: u64 = 50_000_000;

/// Longest source name, in bytes.
pub const MAX_SOURCE_LEN: usize = 200;

/// How to import a list.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The list's format.
    pub format: Format,
    /// Who says so: `file:<name>` or `exchange:<NAME>` (checked by [`validate_source`]).
    pub source: String,
    /// The list is the source's complete list: what the source listed before and does not
    /// list now is withdrawn.
    pub complete: bool,
    /// Skip entries of signal types Safeguard does not know (counted in the report) instead
    /// of refusing the list. Right for NCMEC and StopNCII pages, which carry types Safeguard
    /// does not match (TMK, Videntifier, text, URLs); wrong for a list whose types the
    /// operator declared, where an unknown name is a typo.
    pub skip_unknown_types: bool,
    /// Most entries accepted.
    pub max_entries: u64,
}

impl ImportOptions {
    /// Options for `format` from `source`, skipping unknown types only for the exchange page
    /// formats.
    pub fn new(format: Format, source: impl Into<String>) -> ImportOptions {
        let skip = matches!(format, Format::Ncmec | Format::StopNcii);
        ImportOptions {
            format,
            source: source.into(),
            complete: false,
            skip_unknown_types: skip,
            max_entries: MAX_IMPORT_ENTRIES,
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// The store's counts.
    pub outcome: BatchOutcome,
    /// Records read from the list.
    pub records: u64,
    /// Records skipped because of an unknown signal type, per type name.
    pub skipped: BTreeMap<String, u64>,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Entries written.
    pub written: u64,
    /// Signals the format cannot carry, per type name.
    pub skipped: BTreeMap<String, u64>,
}

/// What a diff found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffReport {
    /// The counts.
    pub outcome: DiffOutcome,
    /// Records read from the list (withdrawals are not compared).
    pub records: u64,
    /// Records skipped because of an unknown signal type, per type name.
    pub skipped: BTreeMap<String, u64>,
}

/// Checks a source name: `file:<name>` or `exchange:<NAME>`, at most [`MAX_SOURCE_LEN`]
/// bytes, no control characters. `api` is reserved for content added through the API.
pub fn validate_source(source: &str) -> Result<(), Error> {
    let ok_prefix = source
        .strip_prefix("file:")
        .or_else(|| source.strip_prefix("exchange:"))
        .is_some_and(|rest| !rest.is_empty());
    if !ok_prefix || source.len() > MAX_SOURCE_LEN || source.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "invalid source {:?}: use file:<name> or exchange:<NAME>, at most {MAX_SOURCE_LEN} \
             bytes, no control characters",
            crate::signal::truncate(source)
        )));
    }
    Ok(())
}

/// The wall clock in Unix milliseconds (0 for a clock before 1970), the unit the store's
/// timestamps use.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The wall clock in Unix seconds (0 for a clock before 1970).
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn check_metadata(metadata: Option<&str>) -> Result<(), String> {
    let Some(m) = metadata else { return Ok(()) };
    if m.len() > MAX_METADATA_BYTES {
        return Err(format!(
            "metadata is {} bytes; the limit is {MAX_METADATA_BYTES}",
            m.len()
        ));
    }
    serde_json::from_str::<serde::de::IgnoredAny>(m)
        .map(|_| ())
        .map_err(|e| format!("metadata is not JSON: {e}"))
}

/// The canonical type name and normalised value of one entry, or why not.
fn normalize(signal_type: &str, value: &str) -> Result<(SignalType, String), Error> {
    let t = SignalType::parse(signal_type)?;
    Ok((t, t.normalize(value)?))
}

/// Reads `reader` and feeds each record, validated, into `sink`. `Err(Some(e))`: the list or
/// an entry is bad; the store's `Aborted` carries it out of the transaction.
struct Feeder<'o> {
    opts: &'o ImportOptions,
    records: u64,
    skipped: BTreeMap<String, u64>,
    failed: Option<Error>,
}

impl Feeder<'_> {
    fn feed<R: BufRead>(
        &mut self,
        reader: R,
        sink: &mut dyn SourceSink,
        compare_only: bool,
    ) -> safeguard_store::Result<()> {
        let mut entry = SourceEntry::default();
        let opts = self.opts;
        let records = &mut self.records;
        let skipped = &mut self.skipped;
        let result = safeguard_lists::read(&opts.format, reader, &mut |r: &Record<'_>| {
            *records += 1;
            if *records > opts.max_entries {
                return Err(FeedError::List(safeguard_lists::Error::at(
                    r.position,
                    format!(
                        "the list has more than {} entries, the most one import takes; split it",
                        opts.max_entries
                    ),
                )));
            }
            let bad = |m: String| FeedError::List(safeguard_lists::Error::at(r.position, m));
            if r.action == Action::WithdrawSourceId {
                if !compare_only {
                    // `source_id` is always set on these records.
                    sink.remove_source_id(r.source_id.unwrap_or_default())
                        .map_err(FeedError::Store)?;
                }
                return Ok(());
            }
            let (t, value) = match normalize(r.signal_type, r.value) {
                Ok(v) => v,
                Err(Error::UnknownSignalType(name)) if opts.skip_unknown_types => {
                    *skipped.entry(name).or_default() += 1;
                    return Ok(());
                }
                Err(e) => return Err(bad(e.to_string())),
            };
            match r.action {
                Action::Withdraw if compare_only => Ok(()),
                Action::Withdraw => sink
                    .remove(&SourceRemoval {
                        signal_type: t.name().to_string(),
                        value,
                    })
                    .map_err(FeedError::Store),
                _ => {
                    check_metadata(r.metadata).map_err(bad)?;
                    entry.signal_type.clear();
                    entry.signal_type.push_str(t.name());
                    entry.value = value;
                    entry.source_id = r.source_id.map(str::to_string);
                    entry.classification = r.classification.map(str::to_string);
                    entry.metadata = r.metadata.map(str::to_string);
                    sink.upsert(&entry).map_err(FeedError::Store)
                }
            }
        });
        match result {
            Ok(_) => Ok(()),
            Err(FeedError::Store(e)) => Err(e),
            Err(FeedError::List(e)) => {
                self.failed = Some(list_error(e));
                Err(safeguard_store::Error::Aborted)
            }
        }
    }

    /// The feeder's own error if it aborted the store's transaction, else the store's.
    fn error(&mut self, e: safeguard_store::Error) -> Error {
        match (self.failed.take(), e) {
            (Some(mine), safeguard_store::Error::Aborted) => mine,
            (_, other) => other.into(),
        }
    }
}

/// Errors inside the reader's sink: the list's (bad entry) or the store's.
enum FeedError {
    List(safeguard_lists::Error),
    Store(safeguard_store::Error),
}

impl From<safeguard_lists::Error> for FeedError {
    fn from(e: safeguard_lists::Error) -> FeedError {
        FeedError::List(e)
    }
}

/// A list's problem as the engine's error: the caller's to fix, naming the place.
fn list_error(e: safeguard_lists::Error) -> Error {
    match e {
        safeguard_lists::Error::Io(io) => Error::Invalid(format!("reading the list failed: {io}")),
        other => Error::Invalid(other.to_string()),
    }
}

/// Imports a list into the bank `bank_id` of `store`, all or nothing.
pub fn import_list<R: BufRead>(
    store: &dyn Store,
    bank_id: BankId,
    opts: &ImportOptions,
    reader: R,
) -> Result<ImportReport, Error> {
    validate_source(&opts.source)?;
    let mut feeder = Feeder {
        opts,
        records: 0,
        skipped: BTreeMap::new(),
        failed: None,
    };
    let mut reader = Some(reader);
    let outcome = store
        .import_source(
            bank_id,
            &SourceImport {
                source: &opts.source,
                seen_at: now_ms(),
                checkpoint: None,
                complete: opts.complete,
            },
            &mut |sink| match reader.take() {
                Some(r) => feeder.feed(r, sink, false),
                None => Ok(()),
            },
        )
        .map_err(|e| feeder.error(e))?;
    Ok(ImportReport {
        outcome,
        records: feeder.records,
        skipped: feeder.skipped,
    })
}

/// Receives each hash of a diff that is on one side only: (side, signal type, value).
pub type DiffShow<'a> = &'a mut dyn FnMut(DiffSide, &str, &str);

/// Compares a list with the bank, writing nothing. `show` gets each hash on one side only.
pub fn diff_list<R: BufRead>(
    store: &dyn Store,
    bank_id: BankId,
    format: &Format,
    reader: R,
    show: Option<DiffShow<'_>>,
) -> Result<DiffReport, Error> {
    let opts = ImportOptions::new(format.clone(), "file:diff");
    let mut feeder = Feeder {
        opts: &opts,
        records: 0,
        skipped: BTreeMap::new(),
        failed: None,
    };
    let mut reader = Some(reader);
    let list = show.is_some();
    let mut ignore = |_: DiffSide, _: &str, _: &str| {};
    let show = match show {
        Some(f) => f,
        None => &mut ignore,
    };
    let outcome = store
        .diff_source(
            bank_id,
            &mut |sink| match reader.take() {
                Some(r) => feeder.feed(r, sink, true),
                None => Ok(()),
            },
            list,
            show,
        )
        .map_err(|e| feeder.error(e))?;
    Ok(DiffReport {
        outcome,
        records: feeder.records,
        skipped: feeder.skipped,
    })
}

/// Writes the bank's signals (optionally only some types) in `format`. Each hash carries the
/// source id and classification of its first active source that has them.
pub fn export_list<W: Write>(
    store: &dyn Store,
    bank_id: BankId,
    format: &Format,
    types: Option<&[SignalType]>,
    out: W,
) -> Result<ExportReport, Error> {
    let single = types.is_some_and(|t| t.len() == 1);
    let mut writer = safeguard_lists::writer(format, out, single);
    let mut report = ExportReport::default();
    let mut failed: Option<std::io::Error> = None;
    store.scan_bank(bank_id, &mut |s, records| {
        if failed.is_some() {
            return;
        }
        if let Some(types) = types {
            if !types.iter().any(|t| t.name() == s.signal_type) {
                return;
            }
        }
        let pick = |f: fn(&Provenance) -> Option<&str>| records.iter().find_map(f);
        let first = records.first();
        let e = ExportEntry {
            signal_type: &s.signal_type,
            value: &s.value,
            source_id: pick(|p| p.source_id.as_deref()),
            classification: pick(|p| p.classification.as_deref()),
            source: first.map(|p| p.source.as_str()),
            first_seen: first.map(|p| p.first_seen),
            last_seen: first.map(|p| p.last_seen),
        };
        match writer.write(&e) {
            Ok(true) => report.written += 1,
            Ok(false) => *report.skipped.entry(s.signal_type.clone()).or_default() += 1,
            Err(e) => failed = Some(e),
        }
    })?;
    if let Some(e) = failed {
        return Err(Error::Invalid(format!("writing the export failed: {e}")));
    }
    writer
        .finish()
        .map_err(|e| Error::Invalid(format!("writing the export failed: {e}")))?;
    Ok(report)
}

impl Engine {
    /// Applies one batch of a source (an exchange fetch) atomically: every value is validated
    /// and normalised first (an error names the entry and nothing is written), then the store
    /// applies upserts, removals and the checkpoint in one transaction, then the indexes catch
    /// up.
    pub fn apply_source_batch(
        &self,
        bank: &str,
        batch: &SourceBatch<'_>,
    ) -> Result<BatchOutcome, Error> {
        let bank = self.bank(bank)?;
        if batch.source != "api" {
            validate_source(batch.source)?;
        }
        let upserts = batch
            .upserts
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let (t, value) = normalize(&e.signal_type, &e.value)
                    .map_err(|err| Error::Invalid(format!("upsert {i}: {err}")))?;
                check_metadata(e.metadata.as_deref())
                    .map_err(|m| Error::Invalid(format!("upsert {i}: {m}")))?;
                Ok(SourceEntry {
                    signal_type: t.name().to_string(),
                    value,
                    ..e.clone()
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let removals = batch
            .removals
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let (t, value) = normalize(&r.signal_type, &r.value)
                    .map_err(|err| Error::Invalid(format!("removal {i}: {err}")))?;
                Ok(SourceRemoval {
                    signal_type: t.name().to_string(),
                    value,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let outcome = self.store().apply_source_batch(
            bank.id,
            &SourceBatch {
                upserts: &upserts,
                removals: &removals,
                ..*batch
            },
        )?;
        self.sync()?;
        Ok(outcome)
    }

    /// Imports a list into a bank, all or nothing; matching sees it when this returns.
    pub fn import_list<R: BufRead>(
        &self,
        bank: &str,
        opts: &ImportOptions,
        reader: R,
    ) -> Result<ImportReport, Error> {
        let bank = self.bank(bank)?;
        let report = import_list(self.store().as_ref(), bank.id, opts, reader)?;
        self.sync()?;
        Ok(report)
    }

    /// Writes a bank in a list format.
    pub fn export_list<W: Write>(
        &self,
        bank: &str,
        format: &Format,
        types: Option<&[SignalType]>,
        out: W,
    ) -> Result<ExportReport, Error> {
        let bank = self.bank(bank)?;
        export_list(self.store().as_ref(), bank.id, format, types, out)
    }

    /// Every provenance record of one hash in a bank, withdrawn ones included.
    pub fn provenance(
        &self,
        bank: &str,
        signal_type: SignalType,
        value: &str,
    ) -> Result<Vec<Provenance>, Error> {
        let bank = self.bank(bank)?;
        let value = signal_type.normalize(value)?;
        Ok(self
            .store()
            .provenance(bank.id, signal_type.name(), &value)?)
    }

    /// The stored state of an exchange.
    pub fn exchange_state(&self, name: &str) -> Result<Option<ExchangeState>, Error> {
        Ok(self.store().exchange_state(name)?)
    }

    /// Every exchange's state.
    pub fn list_exchange_states(&self) -> Result<Vec<ExchangeState>, Error> {
        Ok(self.store().list_exchange_states()?)
    }

    /// Records a failed exchange fetch.
    pub fn record_exchange_error(
        &self,
        name: &str,
        bank: &str,
        error: &str,
        at: i64,
    ) -> Result<(), Error> {
        let bank = self.bank(bank)?;
        Ok(self
            .store()
            .record_exchange_error(name, bank.id, error, at)?)
    }
}
