//! The run loop: fetch a page, turn its records into bank changes, apply them together with
//! the next checkpoint in one transaction, repeat. A run that fails at any point leaves the
//! bank and the checkpoint as the last applied page left them, so the next run resumes there;
//! re-applying a page is harmless (values are keyed by type and value), so nothing is lost or
//! duplicated.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use safeguard_engine::{now_ms, now_secs, SignalType};

use crate::sink::{Batch, ExchangeSink, Held, Outcome, Removal, Upsert};
use crate::{Error, Result};

/// A remote record, in the exchange's own identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The current state of a remote entry: it replaces whatever the entry held before.
    Entry {
        /// Stable id of the entry at the exchange.
        source_id: String,
        /// (exchange-side type name mapped to a Safeguard name, value) pairs.
        fingerprints: Vec<(String, String)>,
        /// Remote classification, if any.
        classification: Option<String>,
        /// JSON text with the entry's details.
        metadata: Option<String>,
    },
    /// The entry was deleted or withdrawn: drop every value it held.
    Deleted {
        /// Stable id of the entry at the exchange.
        source_id: String,
    },
}

/// A range of numeric source ids that a page covers completely: a held entry whose id lies in
/// the range and that the page does not list no longer exists at the exchange. Used for
/// exchanges that list their full content in id order and have no deletion records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    /// Exclusive lower bound (`None`: from the start).
    pub after: Option<u64>,
    /// Inclusive upper bound (`None`: to the end).
    pub through: Option<u64>,
}

/// One page of an exchange.
#[derive(Debug)]
pub struct Page {
    /// Records in the order the exchange sent them; a later record of one entry wins.
    pub records: Vec<Record>,
    /// Checkpoint to store once this page is applied.
    pub checkpoint: String,
    /// Range this page covers completely, for exchanges without deletion records.
    pub sweep: Option<Sweep>,
}

/// An exchange client as the run loop sees it.
pub trait Fetcher: Send {
    /// Exchange kind (`ncmec`, `stopncii`, `safeguard`), for logs.
    fn kind(&self) -> &'static str;
    /// Positions the fetcher at a stored checkpoint (`None`: from the beginning).
    fn start(&mut self, checkpoint: Option<&str>) -> Result<()>;
    /// The next page, or `None` once caught up.
    fn next_page(&mut self) -> impl Future<Output = Result<Option<Page>>> + Send;
}

/// Bounds of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Pages per run at most; the next run continues from the checkpoint. Bounds how long one
    /// run holds the exchange's run slot.
    pub max_pages: u64,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions { max_pages: 10_000 }
    }
}

/// What a run did. Kept as the exchange's last run status.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunReport {
    /// Exchange name.
    pub exchange: String,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds.
    pub finished_at: i64,
    /// Pages applied.
    pub pages: u64,
    /// Remote entries seen (current states).
    pub entries: u64,
    /// Remote deletions seen (deletion records and swept entries).
    pub deletions: u64,
    /// Bank changes, summed over the pages.
    pub outcome: Outcome,
    /// Fingerprints skipped because Safeguard does not know their type, per exchange type name
    /// (TMK+PDQF, videntifier, PhotoDNA before its plug-in, ...). Logged, never silently lost.
    pub skipped_types: BTreeMap<String, u64>,
    /// Fingerprints of a known type whose value is malformed, per type.
    pub invalid_values: BTreeMap<String, u64>,
    /// Whether the run caught up with the exchange (else it stopped at `max_pages` or failed).
    pub caught_up: bool,
    /// The checkpoint after the run.
    pub checkpoint: Option<String>,
    /// Stable code of the error that ended the run, if it failed.
    pub error_code: Option<String>,
    /// The error that ended the run, if it failed (never holds a credential).
    pub error: Option<String>,
}

impl RunReport {
    /// Whether the run ended without an error, without catching up and without applying a
    /// page. Running again from the same checkpoint would do the same, so a caller that repeats
    /// runs until caught up must stop here instead of looping.
    pub fn made_no_progress(&self) -> bool {
        self.error.is_none() && !self.caught_up && self.pages == 0
    }
}

/// Runs `fetcher` for `exchange` into `sink` until caught up, `max_pages`, or an error. The
/// error (if any) is recorded in the sink and returned in the report.
pub async fn run<F: Fetcher>(
    exchange: &str,
    fetcher: &mut F,
    sink: Arc<dyn ExchangeSink>,
    opts: &RunOptions,
) -> RunReport {
    let mut report = RunReport {
        exchange: exchange.to_string(),
        started_at: now_secs(),
        ..RunReport::default()
    };
    let result = run_inner(exchange, fetcher, sink.clone(), opts, &mut report).await;
    report.finished_at = now_secs();
    if let Err(e) = result {
        tracing::warn!(exchange, kind = fetcher.kind(), error = %e, pages = report.pages, "exchange run failed; the next run resumes from the checkpoint");
        report.error_code = Some(e.code().to_string());
        report.error = Some(e.to_string());
        let (s, name, msg, at) = (sink, exchange.to_string(), e.to_string(), now_ms());
        let recorded = tokio::task::spawn_blocking(move || s.record_error(&name, &msg, at)).await;
        if let Ok(Err(err)) | Err(err) = recorded.map_err(|j| Error::Sink(j.to_string())) {
            tracing::error!(exchange, error = %err, "cannot record the exchange error");
        }
    } else {
        tracing::info!(
            exchange,
            kind = fetcher.kind(),
            pages = report.pages,
            added = report.outcome.added,
            removed = report.outcome.removed,
            caught_up = report.caught_up,
            "exchange run finished"
        );
    }
    report
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Sink(format!("sink task failed: {e}")))?
}

async fn run_inner<F: Fetcher>(
    exchange: &str,
    fetcher: &mut F,
    sink: Arc<dyn ExchangeSink>,
    opts: &RunOptions,
    report: &mut RunReport,
) -> Result<()> {
    let (s, name) = (sink.clone(), exchange.to_string());
    let (checkpoint, held) = blocking(move || Ok((s.checkpoint(&name)?, s.held(&name)?))).await?;
    report.checkpoint = checkpoint.clone();
    fetcher.start(checkpoint.as_deref())?;
    let mut ledger = Ledger::new(held);
    while report.pages < opts.max_pages {
        let Some(page) = fetcher.next_page().await? else {
            report.caught_up = true;
            return Ok(());
        };
        let (upserts, removals) = ledger.plan(&page, report);
        let s = sink.clone();
        let name = exchange.to_string();
        let checkpoint = page.checkpoint.clone();
        let seen_at = now_ms();
        let outcome = blocking(move || {
            s.apply(
                &name,
                &Batch {
                    seen_at,
                    upserts: &upserts,
                    removals: &removals,
                    checkpoint: &checkpoint,
                },
            )
        })
        .await?;
        report.outcome.add(&outcome);
        report.pages += 1;
        report.checkpoint = Some(page.checkpoint);
    }
    Ok(())
}

/// Maps a fingerprint to Safeguard's canonical (type, value), or says why not.
enum Normalized {
    Ok(String, String),
    UnknownType,
    Invalid(String),
}

fn normalize(signal_type: &str, value: &str) -> Normalized {
    match SignalType::parse(signal_type) {
        Err(_) => Normalized::UnknownType,
        Ok(t) => match t.normalize(value) {
            Ok(v) => Normalized::Ok(t.name().to_string(), v),
            Err(e) => Normalized::Invalid(e.to_string()),
        },
    }
}

type Key = (String, String);

/// Most entry ids stored with one value. A value many entries share (the MD5 of an empty
/// file, say) would otherwise grow its record without bound; past the cap the value is
/// dropped when the listed entries are all gone, which can be early.
const MAX_OWNERS: usize = 32;

/// Largest metadata text stored per value, bytes. Remote records carry free-form parts
/// (StopNCII case lists and platform feedback); past this the metadata is dropped (the value and
/// its source id are kept) so a remote service cannot grow the store without bound.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Longest classification stored, bytes (NCMEC's are two characters).
pub const MAX_CLASSIFICATION_BYTES: usize = 64;

/// Separates entry ids in a stored `source_id`. NCMEC entry ids and StopNCII URL values are
/// remote text and may contain it, so [`join_owners`] escapes it inside an id.
const OWNER_SEP: char = ',';

/// The stored `source_id` of a value listed by `ids`: the ids joined by `,`, with `%` written
/// `%25` and `,` written `%2C` inside an id so that an id holding a comma stays one id. An id
/// with neither character is stored byte for byte, as versions before the escape stored it,
/// so records written then read back the same unless an id held the text `%25` or `%2C`
/// (uppercase; StopNCII's old ids were lowercased, so theirs hold `%2c`, read as is).
pub fn join_owners<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, id) in ids.into_iter().enumerate() {
        if i > 0 {
            out.push(OWNER_SEP);
        }
        for c in id.chars() {
            match c {
                '%' => out.push_str("%25"),
                OWNER_SEP => out.push_str("%2C"),
                c => out.push(c),
            }
        }
    }
    out
}

/// The entry ids of a stored `source_id` written by [`join_owners`], in order (an empty text
/// gives one empty id). Anything reading the owners of an exchange's value must split them
/// here, not on `,` itself, or an id holding a comma reads as two ids. A `%` not followed by
/// `25` or `2C` (uppercase, as written) is kept as it is: older versions stored ids
/// unescaped.
pub fn split_owners(source_id: &str) -> Vec<String> {
    source_id
        .split(OWNER_SEP)
        .map(|part| {
            if !part.contains('%') {
                return part.to_string();
            }
            let mut out = String::with_capacity(part.len());
            let mut rest = part;
            while let Some(i) = rest.find('%') {
                out.push_str(&rest[..i]);
                let tail = &rest[i..];
                // Exactly as `join_owners` writes them: an older, unescaped id lowercased
                // by StopNCII's old rule may hold "%2c", which is its own text.
                match tail.get(..3) {
                    Some("%25") => out.push('%'),
                    Some("%2C") => out.push(OWNER_SEP),
                    _ => {
                        out.push('%');
                        rest = &tail[1..];
                        continue;
                    }
                }
                rest = &tail[3..];
            }
            out.push_str(rest);
            out
        })
        .collect()
}

/// The run's view of which remote entries hold which value. A value can be listed by several
/// entries (two NCMEC members submitting one file); it stays in the bank until the last of
/// them is deleted. The owners are stored with the value, as its `source_id` written by
/// [`join_owners`], so the view survives restarts: it is loaded from the sink at the start of a run and
/// kept current as pages apply.
struct Ledger {
    by_source: HashMap<String, Vec<Key>>,
    owners: HashMap<Key, std::collections::BTreeSet<String>>,
}

/// Details of the last entry record of a page that listed a value.
type Details = (String, Option<String>, Option<String>);

impl Ledger {
    fn new(held: Vec<Held>) -> Ledger {
        let mut l = Ledger {
            by_source: HashMap::new(),
            owners: HashMap::new(),
        };
        for h in held {
            let key = (h.signal_type, h.value);
            let srcs = h.source_id.unwrap_or_default();
            for src in split_owners(&srcs) {
                l.by_source
                    .entry(src.clone())
                    .or_default()
                    .push(key.clone());
                l.owners.entry(key.clone()).or_default().insert(src);
            }
        }
        l
    }

    /// The upserts and removals for `page`, with the ledger moved on as if it were applied
    /// (a failed apply ends the run, and the next run reloads the ledger from the sink).
    fn plan(&mut self, page: &Page, report: &mut RunReport) -> (Vec<Upsert>, Vec<Removal>) {
        // Every value whose owners changed, with the details of the entry that last listed it.
        let mut touched: BTreeMap<Key, Option<Details>> = BTreeMap::new();
        if let Some(sweep) = page.sweep {
            let listed: HashSet<&str> = page
                .records
                .iter()
                .map(|r| match r {
                    Record::Entry { source_id, .. } | Record::Deleted { source_id } => {
                        source_id.as_str()
                    }
                })
                .collect();
            let gone: Vec<String> = self
                .by_source
                .keys()
                .filter(|src| {
                    src.parse::<u64>().is_ok_and(|id| {
                        sweep.after.is_none_or(|a| id > a) && sweep.through.is_none_or(|t| id <= t)
                    }) && !listed.contains(src.as_str())
                })
                .cloned()
                .collect();
            for src in gone {
                report.deletions += 1;
                self.replace(&src, Vec::new(), &mut touched);
            }
        }
        for rec in &page.records {
            match rec {
                Record::Deleted { source_id } => {
                    report.deletions += 1;
                    self.replace(source_id, Vec::new(), &mut touched);
                }
                Record::Entry {
                    source_id,
                    fingerprints,
                    classification,
                    metadata,
                } => {
                    report.entries += 1;
                    let mut now = Vec::new();
                    for (t, v) in fingerprints {
                        match normalize(t, v) {
                            Normalized::Ok(t, v) => {
                                let key = (t, v);
                                if !now.contains(&key) {
                                    now.push(key);
                                }
                            }
                            Normalized::UnknownType => {
                                *report.skipped_types.entry(t.clone()).or_default() += 1;
                                tracing::debug!(source_id, signal_type = %t, "fingerprint of a type Safeguard does not match; skipped and counted");
                            }
                            Normalized::Invalid(reason) => {
                                *report.invalid_values.entry(t.clone()).or_default() += 1;
                                tracing::warn!(source_id, signal_type = %t, reason, "malformed fingerprint; skipped and counted");
                            }
                        }
                    }
                    let metadata = metadata.clone().filter(|m| {
                        let ok = m.len() <= MAX_METADATA_BYTES;
                        if !ok {
                            tracing::warn!(
                                source_id,
                                bytes = m.len(),
                                "entry metadata over the limit; not stored"
                            );
                        }
                        ok
                    });
                    let classification = classification
                        .clone()
                        .filter(|c| c.len() <= MAX_CLASSIFICATION_BYTES);
                    for key in &now {
                        touched.insert(
                            key.clone(),
                            Some((source_id.clone(), classification.clone(), metadata.clone())),
                        );
                    }
                    self.replace(source_id, now, &mut touched);
                }
            }
        }
        let mut upserts = Vec::new();
        let mut removals = Vec::new();
        for (key, details) in touched {
            match self.owners.get(&key) {
                None => removals.push(Removal {
                    signal_type: key.0,
                    value: key.1,
                }),
                Some(owners) => {
                    let details = details.filter(|d| owners.contains(&d.0));
                    // The entry that listed it last goes first, so the stored record's first
                    // id is its latest source.
                    let mut ids: Vec<&str> = Vec::new();
                    if let Some((src, _, _)) = &details {
                        ids.push(src);
                    }
                    ids.extend(
                        owners
                            .iter()
                            .map(String::as_str)
                            .filter(|o| details.as_ref().is_none_or(|d| d.0 != *o)),
                    );
                    ids.truncate(MAX_OWNERS);
                    let source_id = join_owners(ids);
                    let (classification, metadata) =
                        details.map(|(_, c, m)| (c, m)).unwrap_or((None, None));
                    upserts.push(Upsert {
                        signal_type: key.0,
                        value: key.1,
                        source_id: Some(source_id),
                        classification,
                        metadata,
                    });
                }
            }
        }
        (upserts, removals)
    }

    /// Makes `src` hold exactly `now`, marking every value whose owners change as touched.
    fn replace(&mut self, src: &str, now: Vec<Key>, touched: &mut BTreeMap<Key, Option<Details>>) {
        // Before StopNCII URL values kept their case, its ids (`TYPE:value`) were stored with
        // the value lowercased. An entry not held under its own id takes over the one it was
        // stored under then, so its withdrawal or update still reaches the value.
        if !self.by_source.contains_key(src) {
            if let Some(legacy) = legacy_id(src).filter(|l| self.by_source.contains_key(l)) {
                self.replace_exact(&legacy, Vec::new(), touched);
            }
        }
        self.replace_exact(src, now, touched);
    }

    fn replace_exact(
        &mut self,
        src: &str,
        now: Vec<Key>,
        touched: &mut BTreeMap<Key, Option<Details>>,
    ) {
        let old = self.by_source.remove(src).unwrap_or_default();
        for key in &old {
            if now.contains(key) {
                continue;
            }
            if let Some(owners) = self.owners.get_mut(key) {
                owners.remove(src);
                if owners.is_empty() {
                    self.owners.remove(key);
                }
            }
            touched.entry(key.clone()).or_insert(None);
        }
        for key in &now {
            self.owners
                .entry(key.clone())
                .or_default()
                .insert(src.to_string());
        }
        if !now.is_empty() {
            self.by_source.insert(src.to_string(), now);
        }
    }
}

/// The id an earlier version stored for `id` when it differs: `TYPE:value` with the value
/// lowercased (StopNCII's old rule for every type).
fn legacy_id(id: &str) -> Option<String> {
    let (kind, value) = id.split_once(':')?;
    let lower = format!("{kind}:{}", value.to_ascii_lowercase());
    (lower != id).then_some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::MemorySink;

    const A: &str = "00000000000000000000000000000001";
    const B: &str = "00000000000000000000000000000002";

    struct Script(Vec<Page>);

    impl Fetcher for Script {
        fn kind(&self) -> &'static str {
            "script"
        }
        fn start(&mut self, _checkpoint: Option<&str>) -> Result<()> {
            Ok(())
        }
        async fn next_page(&mut self) -> Result<Option<Page>> {
            Ok(if self.0.is_empty() {
                None
            } else {
                Some(self.0.remove(0))
            })
        }
    }

    fn entry(src: &str, fps: &[(&str, &str)]) -> Record {
        Record::Entry {
            source_id: src.into(),
            fingerprints: fps
                .iter()
                .map(|(t, v)| (t.to_string(), v.to_string()))
                .collect(),
            classification: None,
            metadata: None,
        }
    }

    fn page(records: Vec<Record>, cp: &str) -> Page {
        Page {
            records,
            checkpoint: cp.into(),
            sweep: None,
        }
    }

    #[tokio::test]
    async fn shared_values_survive_until_the_last_holder_goes_and_unknown_types_are_counted() {
        let sink = Arc::new(MemorySink::new());
        let mut f = Script(vec![
            page(
                vec![
                    entry("x", &[("md5", A), ("tmk_pdqf", "abc")]),
                    entry("y", &[("video_md5", A), ("md5", B)]),
                    entry("z", &[("md5", "not-hex")]),
                ],
                "1",
            ),
            page(
                vec![Record::Deleted {
                    source_id: "x".into(),
                }],
                "2",
            ),
            page(vec![entry("y", &[("md5", B)])], "3"),
        ]);
        let r = run("T", &mut f, sink.clone(), &RunOptions::default()).await;
        assert!(r.error.is_none(), "{r:?}");
        assert!(r.caught_up);
        assert_eq!(r.skipped_types.get("tmk_pdqf"), Some(&1));
        assert_eq!(r.invalid_values.get("md5"), Some(&1));
        let snap = sink.snapshot("T");
        let keys: Vec<_> = snap.values.keys().cloned().collect();
        // A left only when y (its last holder) stopped listing it.
        assert_eq!(keys, vec![("md5".to_string(), B.to_string())]);
        assert_eq!(snap.checkpoint.as_deref(), Some("3"));
        assert_eq!(r.outcome.added, 2);
        assert_eq!(r.outcome.removed, 1);
    }

    #[tokio::test]
    async fn oversized_metadata_is_dropped_but_the_value_kept() {
        let sink = Arc::new(MemorySink::new());
        let mut f = Script(vec![page(
            vec![Record::Entry {
                source_id: "big".into(),
                fingerprints: vec![("md5".into(), A.into())],
                classification: Some("x".repeat(65)),
                metadata: Some(format!("\"{}\"", "y".repeat(MAX_METADATA_BYTES))),
            }],
            "1",
        )]);
        run("M", &mut f, sink.clone(), &RunOptions::default()).await;
        let snap = sink.snapshot("M");
        let v = &snap.values[&("md5".to_string(), A.to_string())];
        assert_eq!(v, &(Some("big".to_string()), None, None));
    }

    #[test]
    fn owners_join_and_split_keep_commas_inside_ids() {
        let ids = ["42-a,b", "7-100%", "URL:https://e.example/x%2Cy", "1-plain"];
        let joined = join_owners(ids);
        assert_eq!(
            joined,
            "42-a%2Cb,7-100%25,URL:https://e.example/x%252Cy,1-plain"
        );
        assert_eq!(split_owners(&joined), ids);
        // Ids with neither character are stored as before, and records stored before the
        // escape (a bare '%' not starting an escape) read back unchanged.
        assert_eq!(join_owners(["1-a", "2-b"]), "1-a,2-b");
        assert_eq!(split_owners("1-a,2-b"), ["1-a", "2-b"]);
        assert_eq!(split_owners("URL:x%41,9-%"), ["URL:x%41", "9-%"]);
        // StopNCII's old ids were lowercased: their "%2c" is text, not an escape.
        assert_eq!(
            split_owners("URL:https://e.example/a%2cb"),
            ["URL:https://e.example/a%2cb"]
        );
        assert_eq!(split_owners(""), [""]);
    }

    #[tokio::test]
    async fn an_id_with_a_comma_is_withdrawn_in_a_later_run() {
        let sink = Arc::new(MemorySink::new());
        // An NCMEC entry id is remote text: `member-id` with a comma in the id.
        let mut f = Script(vec![page(
            vec![entry("42-a,b", &[("md5", A)]), entry("43-c", &[("md5", B)])],
            "1",
        )]);
        let r = run("C", &mut f, sink.clone(), &RunOptions::default()).await;
        assert!(r.error.is_none(), "{r:?}");
        // Each run loads the owners back from the sink, as after a restart.
        let mut f = Script(vec![page(
            vec![
                Record::Deleted {
                    source_id: "42-a,b".into(),
                },
                entry("43-c", &[("md5", A), ("md5", B)]),
            ],
            "2",
        )]);
        run("C", &mut f, sink.clone(), &RunOptions::default()).await;
        let mut f = Script(vec![page(
            vec![Record::Deleted {
                source_id: "43-c".into(),
            }],
            "3",
        )]);
        let r = run("C", &mut f, sink.clone(), &RunOptions::default()).await;
        assert!(r.error.is_none(), "{r:?}");
        let snap = sink.snapshot("C");
        assert!(snap.values.is_empty(), "{:?}", snap.values);
    }

    /// A value held under an id stored by the old rule (the value part lowercased) is
    /// withdrawn by its entry's id as sent now.
    #[tokio::test]
    async fn an_entry_stored_under_its_old_lowercased_id_is_withdrawn() {
        let sink = Arc::new(MemorySink::new());
        let mut f = Script(vec![page(
            vec![entry("URL:https://e.example/photo", &[("md5", A)])],
            "1",
        )]);
        run("L", &mut f, sink.clone(), &RunOptions::default()).await;
        let mut f = Script(vec![page(
            vec![Record::Deleted {
                source_id: "URL:https://e.example/Photo".into(),
            }],
            "2",
        )]);
        let r = run("L", &mut f, sink.clone(), &RunOptions::default()).await;
        assert!(r.error.is_none(), "{r:?}");
        assert!(sink.snapshot("L").values.is_empty());
        assert_eq!(legacy_id("42-a"), None);
        assert_eq!(legacy_id("ImagePDQ:ab"), None);
    }

    #[tokio::test]
    async fn a_run_of_zero_pages_reports_no_progress() {
        let sink = Arc::new(MemorySink::new());
        let mut f = Script(vec![page(vec![entry("x", &[("md5", A)])], "1")]);
        let r = run("Z", &mut f, sink.clone(), &RunOptions { max_pages: 0 }).await;
        assert!(r.made_no_progress(), "{r:?}");
        let r = run("Z", &mut f, sink.clone(), &RunOptions { max_pages: 1 }).await;
        assert!(!r.made_no_progress(), "{r:?}");
        let r = run("Z", &mut f, sink.clone(), &RunOptions { max_pages: 1 }).await;
        assert!(r.caught_up && !r.made_no_progress(), "{r:?}");
    }

    #[tokio::test]
    async fn sweep_drops_unlisted_ids_in_range_only() {
        let sink = Arc::new(MemorySink::new());
        let mut f = Script(vec![page(
            vec![entry("1", &[("md5", A)]), entry("5", &[("md5", B)])],
            "a",
        )]);
        run("P", &mut f, sink.clone(), &RunOptions::default()).await;
        let mut f = Script(vec![Page {
            records: vec![entry("5", &[("md5", B)])],
            checkpoint: "b".into(),
            sweep: Some(Sweep {
                after: None,
                through: Some(5),
            }),
        }]);
        let r = run("P", &mut f, sink.clone(), &RunOptions::default()).await;
        assert_eq!(r.deletions, 1);
        let keys: Vec<_> = sink.snapshot("P").values.keys().cloned().collect();
        assert_eq!(keys, vec![("md5".to_string(), B.to_string())]);
    }
}
