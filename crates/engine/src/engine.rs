//! The engine: store writes, then the in-memory matcher catches up from the change feed
//! before the call returns.

use std::io::{Read, Seek, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use safeguard_store::{
    Bank, BankKind, BankUpdate, Change, Content, ContentId, ContentUpdate, NewBank, NewContent,
    Seq, Signal, Store,
};

use crate::bank::{validate_bank_name, validate_ratio, validate_threshold, DEFAULT_PDQ_THRESHOLD};
use crate::matcher::{BankState, Hit, Matcher, Meta};
use crate::signal::{SignalType, SignalValue};
use crate::sources::now_secs;
use crate::Error;
use safeguard_vpdq::{MatchPercent, VpdqMatchConfig};

/// Changes applied per batch while catching up; bounds how long the matcher's write lock is
/// held (lookups wait at most one batch: about a millisecond per thousand changes).
const SYNC_BATCH: usize = 4096;

/// Largest number of content items listed in one page.
pub const MAX_PAGE: usize = 1000;

/// Largest metadata JSON accepted per content item, in bytes.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// Largest note accepted per content item, in bytes.
pub const MAX_NOTE_BYTES: usize = 8 * 1024;

/// Refuses a content item's note over [`MAX_NOTE_BYTES`], on creation and on change alike.
fn check_note(note: Option<&str>) -> Result<(), Error> {
    match note {
        Some(n) if n.len() > MAX_NOTE_BYTES => Err(Error::Invalid(format!(
            "note is over {MAX_NOTE_BYTES} bytes"
        ))),
        _ => Ok(()),
    }
}

/// A bank to create; `None` fields take their defaults (enabled, ratio 1.0, threshold 31,
/// standard).
#[derive(Debug, Clone, Default)]
pub struct CreateBank {
    /// UPPER_SNAKE_CASE name.
    pub name: String,
    /// Default true.
    pub enabled: Option<bool>,
    /// Default 1.0.
    pub enabled_ratio: Option<f64>,
    /// Default 31.
    pub pdq_threshold: Option<u32>,
    /// Default standard.
    pub kind: Option<BankKind>,
    /// Labels for policy rules ([`crate::bank::validate_tags`]).
    pub tags: Vec<String>,
    /// Default classification of the bank's hashes ([`crate::bank::validate_classification`]).
    pub classification: Option<String>,
}

/// A content item to add.
#[derive(Debug, Clone, Default)]
pub struct AddContent {
    /// (type, value) pairs; at most one per type.
    pub signals: Vec<(SignalType, String)>,
    /// JSON metadata.
    pub metadata: Option<serde_json::Value>,
    /// Free-form note.
    pub note: Option<String>,
    /// Unix seconds until which the item is excluded from matching (0: enabled).
    pub disable_until_ts: i64,
    /// Where the media came from.
    pub original_media_uri: Option<String>,
}

/// How a lookup is run.
#[derive(Debug, Clone, Default)]
pub struct LookupOptions {
    /// Only these banks (by name); `None` for all.
    pub banks: Option<Vec<String>>,
    /// HMA's coin flip: a bank takes part when `enabled_ratio >= coinflip`. `None` draws a
    /// fresh random number in `[0, 1)` for the lookup; `Some(0.0)` is HMA's
    /// `bypass_coinflip`; a seeded caller passes its own draw.
    pub coinflip: Option<f64>,
    /// Thresholds of vPDQ matching; `None` for the defaults (python-threatexchange's:
    /// frame distance 31, frame quality 50, query 80 %, compared 0 %).
    pub vpdq: Option<VpdqMatchConfig>,
    /// Largest Euclidean distance for PhotoDNA matches; `None` for the engine's setting
    /// ([`Engine::set_photodna_threshold`]).
    pub photodna_threshold: Option<f64>,
}

/// One match, after bank rules.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupMatch {
    /// Bank name.
    pub bank: String,
    /// Bank id.
    pub bank_id: i64,
    /// The matching content item.
    pub content_id: ContentId,
    /// The matching signal.
    pub signal_id: i64,
    /// Its type.
    pub signal_type: SignalType,
    /// Distance (0 for exact types and for vPDQ, whose closeness is in `vpdq`).
    pub distance: u32,
    /// Whether the bank is an allow-list.
    pub allow_list: bool,
    /// vPDQ only: the query and compared match percentages.
    pub vpdq: Option<MatchPercent>,
}

impl LookupMatch {
    fn new(
        h: &Hit,
        b: &BankState,
        signal_type: SignalType,
        vpdq: Option<MatchPercent>,
    ) -> LookupMatch {
        LookupMatch {
            bank: b.name.clone(),
            bank_id: h.bank_id,
            content_id: h.content_id,
            signal_id: h.signal_id,
            signal_type,
            distance: h.distance,
            allow_list: b.kind == BankKind::AllowList,
            vpdq,
        }
    }
}

/// The result of a lookup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LookupResult {
    /// Matches, by bank name, then distance, then content id. When an allow-list bank
    /// matched, only allow-list matches are here.
    pub matches: Vec<LookupMatch>,
    /// Standard-bank matches dropped because an allow-list bank matched.
    pub suppressed: usize,
}

/// Index sizes and freshness.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexStatus {
    /// Entries per signal type.
    pub entries: Vec<(SignalType, usize)>,
    /// Approximate bytes held by the indexes and per-signal metadata.
    pub bytes: usize,
    /// Last change-feed position applied.
    pub applied_seq: Seq,
    /// Unix seconds of the last applied change (or of the build).
    pub updated_at: i64,
    /// Seconds the initial build took.
    pub build_seconds: f64,
}

/// The engine. Thread-safe; all methods block (run them off an async reactor).
#[derive(Debug)]
pub struct Engine {
    store: Arc<dyn Store>,
    matcher: Matcher,
    /// Last applied change-feed position; the mutex serialises catching up.
    applied: Mutex<Seq>,
    updated_at: AtomicU64,
    build_seconds: f64,
    /// State of the xorshift generator that samples banks by `enabled_ratio`.
    rng: AtomicU64,
    /// Default PhotoDNA threshold (f64 bits); 0 until the operator sets their licence's value.
    photodna_threshold: AtomicU64,
    /// The position of the snapshot loaded at start, if one was.
    snapshot_seq: Option<Seq>,
}

/// The lowest feed position [`Engine::fingerprint`] reads for a snapshot at `seq` (1 when the
/// window reaches the start; `seq` itself is read only when positive).
fn fingerprint_lowest(seq: Seq) -> Seq {
    (seq - SNAPSHOT_FEED_WINDOW).max(1)
}

/// Version 2 added the vPDQ section, version 3 the PhotoDNA section, version 4 the URL
/// section, version 5 the fingerprint over [`SNAPSHOT_FEED_WINDOW`], version 6 per-signal
/// facts in pages of live ids; older snapshots are refused (and the caller rebuilds).
const SNAPSHOT_MAGIC: &[u8; 8] = b"SGENGSN6";

/// How far back from its position a snapshot's fingerprint reads the change feed: changes
/// at `seq`, `seq - 1`, `seq - 2`, `seq - 4`, ... down to `seq - SNAPSHOT_FEED_WINDOW`. A
/// pruner keeps this much of the feed below the lowest position a follower needs, so a
/// snapshot it protects can still be checked.
pub const SNAPSHOT_FEED_WINDOW: Seq = 1024;
const SNAPSHOT_HEADER_LEN: usize = 8 + 8 + 8 + 4;

fn snapshot_header(seq: Seq, fingerprint: u64) -> [u8; SNAPSHOT_HEADER_LEN] {
    let mut h = [0u8; SNAPSHOT_HEADER_LEN];
    h[..8].copy_from_slice(SNAPSHOT_MAGIC);
    h[8..16].copy_from_slice(&seq.to_le_bytes());
    h[16..24].copy_from_slice(&fingerprint.to_le_bytes());
    let crc = crc32fast::hash(&h[..24]);
    h[24..].copy_from_slice(&crc.to_le_bytes());
    h
}

fn parse_snapshot_header(h: &[u8; SNAPSHOT_HEADER_LEN]) -> Result<(Seq, u64), Error> {
    if matches!(
        &h[..8],
        b"SGENGSN1" | b"SGENGSN2" | b"SGENGSN3" | b"SGENGSN4" | b"SGENGSN5"
    ) {
        return Err(snapshot_error(
            "snapshot of an older format (without vPDQ, PhotoDNA or URLs, with the \
             whole-feed fingerprint or with dense per-signal facts); rebuild it"
                .into(),
        ));
    }
    if &h[..8] != SNAPSHOT_MAGIC {
        return Err(snapshot_error("not a Safeguard engine snapshot".into()));
    }
    if crc32fast::hash(&h[..24]).to_le_bytes() != h[24..] {
        return Err(snapshot_error("header checksum mismatch".into()));
    }
    // The slices are 8 bytes long by construction of the header layout.
    let seq = Seq::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
    let fp = u64::from_le_bytes(h[16..24].try_into().expect("8 bytes"));
    Ok((seq, fp))
}

fn snapshot_error(msg: String) -> Error {
    Error::Index(safeguard_index::Error::SnapshotCorrupt(msg))
}

/// A stored signal's parsed value. Stored values were validated on the way in, so a failure
/// means corruption.
fn stored_value(s: &Signal) -> Result<SignalValue, Error> {
    let t = SignalType::parse(&s.signal_type)?;
    SignalValue::parse_canonical(t, &s.value).map_err(|e| {
        Error::Store(safeguard_store::Error::Corrupt(format!(
            "signal {}: {e}",
            s.id
        )))
    })
}

impl Engine {
    fn from_parts(store: Arc<dyn Store>, matcher: Matcher, seq: Seq, build_seconds: f64) -> Engine {
        Engine {
            store,
            matcher,
            applied: Mutex::new(seq),
            updated_at: AtomicU64::new(now_secs() as u64),
            build_seconds,
            // Any odd seed will do: the generator only spreads the enabled-ratio coin flips.
            rng: AtomicU64::new(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
                    | 1,
            ),
            photodna_threshold: AtomicU64::new(0f64.to_bits()),
            snapshot_seq: None,
        }
    }

    /// Sets the default PhotoDNA match threshold (Euclidean distance). Safeguard ships no tuned
    /// value: until this is called, only identical PhotoDNA values match. Negative or
    /// non-finite values are refused.
    pub fn set_photodna_threshold(&self, threshold: f64) -> Result<(), Error> {
        if !threshold.is_finite() || threshold < 0.0 {
            return Err(Error::Invalid(format!(
                "PhotoDNA threshold must be a finite number >= 0, got {threshold}"
            )));
        }
        self.photodna_threshold
            .store(threshold.to_bits(), Ordering::Relaxed);
        Ok(())
    }

    /// The default PhotoDNA match threshold.
    pub fn photodna_threshold(&self) -> f64 {
        f64::from_bits(self.photodna_threshold.load(Ordering::Relaxed))
    }

    /// Opens the engine over a store, building the indexes from a full scan.
    pub fn open(store: Arc<dyn Store>) -> Result<Engine, Error> {
        let start = Instant::now();
        let mut signals = Vec::new();
        let mut bad = None;
        let seq = store.scan_signals(&mut |s| match stored_value(s) {
            Ok(v) => signals.push((s.id, s.content_id, s.bank_id, v)),
            Err(e) => {
                bad.get_or_insert(e);
            }
        })?;
        if let Some(e) = bad {
            return Err(e);
        }
        let banks = store.list_banks()?;
        let disabled = store.disabled_contents()?;
        let matcher = Matcher::build(signals, &banks, disabled)?;
        let engine = Engine::from_parts(store, matcher, seq, start.elapsed().as_secs_f64());
        // Changes committed during the scan are caught up now.
        engine.sync()?;
        Ok(engine)
    }

    /// Writes a snapshot of the whole match state to `w`, and returns the change-feed
    /// position it reflects. Loading it with [`Engine::open_with_snapshot`] and replaying the
    /// feed from there is equivalent to a full rebuild, and much faster. Writes wait while it
    /// runs; lookups go on.
    pub fn write_snapshot<W: Write + Seek>(&self, w: &mut W) -> Result<Seq, Error> {
        let applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let seq = *applied;
        let io = |e: std::io::Error| Error::Invalid(format!("writing snapshot: {e}"));
        let header = snapshot_header(seq, self.fingerprint(seq)?);
        w.write_all(&header).map_err(io)?;
        self.matcher.write_snapshot(w)?;
        w.flush().map_err(io)?;
        Ok(seq)
    }

    /// A digest of the changes at `seq`, `seq - 1`, `seq - 2`, `seq - 4`, ... down to
    /// `seq - SNAPSHOT_FEED_WINDOW` (type, ids and value of each), as a check that a snapshot
    /// belongs to this store and not to another one of similar length, or to this one restored
    /// from a backup and written differently since. A bounded window, not the whole feed, so
    /// a pruned feed can still check it.
    fn fingerprint(&self, seq: Seq) -> Result<u64, Error> {
        let mut h = crc32fast::Hasher::new();
        let lowest = fingerprint_lowest(seq);
        let mut back = 0;
        while seq - back >= lowest && seq - back > 0 {
            let at = seq - back;
            back = if back == 0 { 1 } else { back * 2 };
            self.store.changes_since(at - 1, 1, &mut |s, c| {
                h.update(&s.to_le_bytes());
                match &c {
                    Change::Added(sig) | Change::Removed(sig) => {
                        h.update(&[matches!(c, Change::Added(_)) as u8]);
                        h.update(&sig.id.to_le_bytes());
                        h.update(&sig.content_id.to_le_bytes());
                        h.update(sig.signal_type.as_bytes());
                        h.update(sig.value.as_bytes());
                    }
                    Change::Updated {
                        bank_id,
                        content_id,
                    } => {
                        h.update(&[2]);
                        h.update(&bank_id.to_le_bytes());
                        h.update(&content_id.unwrap_or(-1).to_le_bytes());
                    }
                }
            })?;
        }
        Ok(h.finalize() as u64 | ((seq as u64) << 32))
    }

    /// Opens the engine from a snapshot written by [`Engine::write_snapshot`], then catches up
    /// with the store's change feed. A snapshot that is damaged, from another store, or ahead
    /// of the store is an error (the caller then rebuilds with [`Engine::open`]).
    pub fn open_with_snapshot<R: Read>(store: Arc<dyn Store>, r: &mut R) -> Result<Engine, Error> {
        let start = Instant::now();
        let mut header = [0u8; SNAPSHOT_HEADER_LEN];
        r.read_exact(&mut header)
            .map_err(|e| snapshot_error(format!("header: {e}")))?;
        let (seq, fp) = parse_snapshot_header(&header)?;
        let last = store.last_seq()?;
        if seq > last {
            return Err(snapshot_error(format!(
                "snapshot is at change {seq}, the store only at {last}"
            )));
        }
        let floor = store.feed_floor()?;
        if fingerprint_lowest(seq) < floor {
            return Err(snapshot_error(format!(
                "snapshot is at change {seq}, and the change feed was pruned up to {floor}"
            )));
        }
        let banks = store.list_banks()?;
        let disabled = store.disabled_contents()?;
        let matcher = Matcher::read_snapshot(r, &banks, disabled)?;
        let engine = Engine::from_parts(store, matcher, seq, 0.0);
        if engine.fingerprint(seq)? != fp {
            return Err(snapshot_error(
                "snapshot does not belong to this store (change-feed fingerprint differs)".into(),
            ));
        }
        engine.sync()?;
        Ok(Engine {
            build_seconds: start.elapsed().as_secs_f64(),
            snapshot_seq: Some(seq),
            ..engine
        })
    }

    /// The change-feed position a snapshot was written at, from its header alone (checked:
    /// magic, format and checksum), without loading it.
    pub fn snapshot_position<R: Read>(r: &mut R) -> Result<Seq, Error> {
        let mut header = [0u8; SNAPSHOT_HEADER_LEN];
        r.read_exact(&mut header)
            .map_err(|e| snapshot_error(format!("header: {e}")))?;
        Ok(parse_snapshot_header(&header)?.0)
    }

    /// The position of the snapshot this engine was loaded from, if it was.
    pub fn snapshot_seq(&self) -> Option<Seq> {
        self.snapshot_seq
    }

    /// The last change-feed position applied.
    pub fn applied_seq(&self) -> Seq {
        *self.applied.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// What the indexes know of a bank (kept equal to the store like the indexes themselves),
    /// without a store read.
    pub fn bank_state(&self, id: i64) -> Option<BankState> {
        self.meta_read().banks.get(&id).cloned()
    }

    fn meta_read(&self) -> RwLockReadGuard<'_, Meta> {
        // A panic while holding the lock cannot leave Meta half-updated in a way that breaks
        // reads (each field update is a single store), so a poisoned lock is still usable.
        self.matcher.meta.read().unwrap_or_else(|p| p.into_inner())
    }

    fn meta_write(&self) -> RwLockWriteGuard<'_, Meta> {
        self.matcher.meta.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies every change the store has committed and the matcher has not seen yet. Every
    /// write method calls it before returning, so a write is visible to the next lookup.
    pub fn sync(&self) -> Result<(), Error> {
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let mut batch = Vec::new();
            let last = self
                .store
                .changes_since(*applied, SYNC_BATCH, &mut |_, c| batch.push(c))?;
            if batch.is_empty() {
                return Ok(());
            }
            self.apply(batch)?;
            *applied = last;
            self.updated_at.store(now_secs() as u64, Ordering::Relaxed);
        }
    }

    /// Catches up with writes this engine did not make (another process on the same
    /// database: a CLI import, withdrawal or delete) if there are any: one cheap read of the
    /// feed position, and a [`Engine::sync`] only when the store is ahead. Returns whether
    /// changes were applied. A server calls it on a short tick, so such writes reach lookups
    /// without waiting for the server's own next write.
    pub fn poll_feed(&self) -> Result<bool, Error> {
        let last = self.store.last_seq()?;
        let applied = *self.applied.lock().unwrap_or_else(|p| p.into_inner());
        if last <= applied {
            return Ok(false);
        }
        self.sync()?;
        Ok(true)
    }

    fn apply(&self, batch: Vec<Change>) -> Result<(), Error> {
        // Reads needed to refresh cached state happen before taking the write lock.
        let mut bank_refresh = Vec::new();
        let mut content_refresh = Vec::new();
        for c in &batch {
            if let Change::Updated {
                bank_id,
                content_id,
            } = c
            {
                match content_id {
                    Some(id) => content_refresh.push(*id),
                    None => bank_refresh.push(*bank_id),
                }
            }
        }
        let banks: Vec<(i64, Option<Bank>)> = bank_refresh
            .into_iter()
            .map(|id| Ok((id, self.store.bank(id)?)))
            .collect::<Result<_, Error>>()?;
        let contents: Vec<(ContentId, Option<i64>)> = content_refresh
            .into_iter()
            .map(|id| Ok((id, self.store.content(id)?.map(|c| c.disable_until_ts))))
            .collect::<Result<_, Error>>()?;

        let mut meta = self.meta_write();
        for c in batch {
            match c {
                Change::Added(s) => {
                    let v = stored_value(&s)?;
                    self.matcher.add(&s, v, &mut meta);
                    if !meta.banks.contains_key(&s.bank_id) {
                        // A signal of a bank created since the last refresh.
                        drop(meta);
                        let b = self.store.bank(s.bank_id)?;
                        meta = self.meta_write();
                        if let Some(b) = b {
                            meta.banks.insert(b.id, BankState::from(&b));
                        }
                    }
                }
                Change::Removed(s) => {
                    let v = stored_value(&s)?;
                    self.matcher.remove(&s, v, &mut meta);
                    meta.disabled.remove(&s.content_id);
                }
                Change::Updated { .. } => {}
            }
        }
        for (id, b) in banks {
            match b {
                Some(b) => {
                    meta.banks.insert(id, BankState::from(&b));
                }
                None => {
                    meta.banks.remove(&id);
                }
            }
        }
        for (id, until) in contents {
            match until {
                Some(t) if t != 0 => {
                    meta.disabled.insert(id, t);
                }
                _ => {
                    meta.disabled.remove(&id);
                }
            }
        }
        Ok(())
    }

    fn refresh_banks(&self) -> Result<(), Error> {
        let banks = self.store.list_banks()?;
        let mut meta = self.meta_write();
        meta.banks = banks.iter().map(|b| (b.id, BankState::from(b))).collect();
        Ok(())
    }

    // ---- banks

    /// Creates a bank.
    pub fn create_bank(&self, req: &CreateBank) -> Result<Bank, Error> {
        validate_bank_name(&req.name)?;
        let ratio = req.enabled_ratio.unwrap_or(1.0);
        validate_ratio(ratio)?;
        let threshold = req.pdq_threshold.unwrap_or(DEFAULT_PDQ_THRESHOLD);
        validate_threshold(threshold)?;
        crate::bank::validate_tags(&req.tags)?;
        let classification = req
            .classification
            .as_deref()
            .map(crate::bank::validate_classification)
            .transpose()?;
        let bank = self
            .store
            .create_bank(&NewBank {
                name: req.name.clone(),
                enabled: req.enabled.unwrap_or(true),
                enabled_ratio: ratio,
                pdq_threshold: threshold,
                kind: req.kind.unwrap_or(BankKind::Standard),
                tags: req.tags.clone(),
                classification,
            })
            .map_err(|e| match e {
                safeguard_store::Error::Conflict(_) => Error::BankExists(req.name.clone()),
                other => other.into(),
            })?;
        self.refresh_banks()?;
        Ok(bank)
    }

    /// The bank with this name.
    pub fn bank(&self, name: &str) -> Result<Bank, Error> {
        self.store
            .bank_by_name(name)?
            .ok_or_else(|| Error::BankNotFound(crate::signal::truncate(name)))
    }

    /// All banks, by name.
    pub fn banks(&self) -> Result<Vec<Bank>, Error> {
        Ok(self.store.list_banks()?)
    }

    /// Changes a bank (rename, enabled, ratio, threshold).
    pub fn update_bank(&self, name: &str, update: &BankUpdate) -> Result<Bank, Error> {
        let bank = self.bank(name)?;
        if let Some(n) = &update.name {
            validate_bank_name(n)?;
        }
        if let Some(r) = update.enabled_ratio {
            validate_ratio(r)?;
        }
        if let Some(t) = update.pdq_threshold {
            validate_threshold(t)?;
        }
        if let Some(tags) = &update.tags {
            crate::bank::validate_tags(tags)?;
        }
        let mut update = update.clone();
        if let Some(Some(c)) = &update.classification {
            update.classification = Some(Some(crate::bank::validate_classification(c)?));
        }
        let b = self
            .store
            .update_bank(bank.id, &update)
            .map_err(|e| match (e, &update.name) {
                (safeguard_store::Error::Conflict(_), Some(n)) => Error::BankExists(n.clone()),
                (other, _) => other.into(),
            })?;
        self.sync()?;
        self.refresh_banks()?;
        Ok(b)
    }

    /// Deletes a bank and everything in it.
    pub fn delete_bank(&self, name: &str) -> Result<Bank, Error> {
        let bank = self.bank(name)?;
        let b = self.store.delete_bank(bank.id)?;
        self.sync()?;
        self.refresh_banks()?;
        Ok(b)
    }

    // ---- content

    fn new_content(req: &AddContent) -> Result<NewContent, Error> {
        if req.signals.is_empty() {
            return Err(Error::Invalid(
                "a content item needs at least one signal".into(),
            ));
        }
        let mut seen = Vec::new();
        let mut signals = Vec::with_capacity(req.signals.len());
        for (t, v) in &req.signals {
            if seen.contains(t) {
                return Err(Error::Invalid(format!(
                    "two {t} values for one content item"
                )));
            }
            seen.push(*t);
            signals.push((t.name().to_string(), SignalValue::parse(*t, v)?.to_text()));
        }
        let metadata = match &req.metadata {
            None => None,
            Some(m) => {
                let s = m.to_string();
                if s.len() > MAX_METADATA_BYTES {
                    return Err(Error::Invalid(format!(
                        "metadata is {} bytes; the limit is {MAX_METADATA_BYTES}",
                        s.len()
                    )));
                }
                Some(s)
            }
        };
        check_note(req.note.as_deref())?;
        Ok(NewContent {
            metadata,
            note: req.note.clone(),
            disable_until_ts: req.disable_until_ts,
            original_media_uri: req.original_media_uri.clone(),
            signals,
        })
    }

    /// Adds a content item to a bank; it matches from the next lookup on.
    pub fn add_content(&self, bank: &str, req: &AddContent) -> Result<Content, Error> {
        let bank = self.bank(bank)?;
        let c = self.store.add_content(bank.id, &Self::new_content(req)?)?;
        self.sync()?;
        Ok(c)
    }

    /// Adds many content items to a bank, all or nothing.
    pub fn add_contents(&self, bank: &str, reqs: &[AddContent]) -> Result<Vec<Content>, Error> {
        let bank = self.bank(bank)?;
        let items = reqs
            .iter()
            .map(Self::new_content)
            .collect::<Result<Vec<_>, _>>()?;
        let c = self.store.add_contents(bank.id, &items)?;
        self.sync()?;
        Ok(c)
    }

    /// A content item of a bank.
    pub fn content(&self, bank: &str, id: ContentId) -> Result<Content, Error> {
        let bank = self.bank(bank)?;
        match self.store.content(id)? {
            Some(c) if c.bank_id == bank.id => Ok(c),
            _ => Err(Error::ContentNotFound(id)),
        }
    }

    /// A page of a bank's content.
    pub fn list_content(
        &self,
        bank: &str,
        after: Option<ContentId>,
        limit: usize,
    ) -> Result<Vec<Content>, Error> {
        let bank = self.bank(bank)?;
        Ok(self
            .store
            .list_content(bank.id, after, limit.clamp(1, MAX_PAGE))?)
    }

    /// Changes a content item (metadata, note, `disable_until_ts`).
    pub fn update_content(
        &self,
        bank: &str,
        id: ContentId,
        update: &ContentUpdate,
    ) -> Result<Content, Error> {
        self.content(bank, id)?;
        if let Some(Some(m)) = &update.metadata {
            if m.len() > MAX_METADATA_BYTES {
                return Err(Error::Invalid(format!(
                    "metadata is over {MAX_METADATA_BYTES} bytes"
                )));
            }
        }
        // The same bound as on creation: a change must not be a way around it.
        check_note(update.note.as_ref().and_then(|n| n.as_deref()))?;
        let c = self.store.update_content(id, update)?;
        self.sync()?;
        Ok(c)
    }

    /// Deletes a content item.
    pub fn delete_content(&self, bank: &str, id: ContentId) -> Result<Content, Error> {
        self.content(bank, id)?;
        let c = self.store.delete_content(id)?;
        self.sync()?;
        Ok(c)
    }

    // ---- matching

    fn sample(&self) -> f64 {
        // xorshift64*: a fast, lock-free generator; sampling needs spread, not secrecy.
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Looks one signal up in the banks.
    pub fn lookup(&self, value: &SignalValue, opts: &LookupOptions) -> Result<LookupResult, Error> {
        let meta = self.meta_read();
        let coinflip = opts.coinflip.unwrap_or_else(|| self.sample());
        // Banks that take part in this lookup.
        let taking_part: Vec<(i64, &BankState)> = meta
            .banks
            .iter()
            .filter(|(_, b)| b.enabled)
            .filter(|(_, b)| {
                opts.banks
                    .as_ref()
                    .is_none_or(|names| names.contains(&b.name))
            })
            .filter(|(_, b)| b.enabled_ratio >= coinflip)
            .map(|(id, b)| (*id, b))
            .collect();
        if taking_part.is_empty() {
            return Ok(LookupResult::default());
        }
        let radius = taking_part
            .iter()
            .map(|(_, b)| b.pdq_threshold)
            .max()
            .unwrap_or(DEFAULT_PDQ_THRESHOLD);
        let now = now_secs();
        let photodna = opts
            .photodna_threshold
            .unwrap_or_else(|| self.photodna_threshold());
        if !photodna.is_finite() || photodna < 0.0 {
            return Err(Error::Invalid(format!(
                "photodna_threshold must be a finite number >= 0, got {photodna}"
            )));
        }
        let hits = self.candidates(value, radius, opts.vpdq.as_ref(), photodna, &meta)?;
        let mut matches: Vec<LookupMatch> = hits
            .into_iter()
            .filter_map(|(h, p)| {
                let (_, b) = taking_part.iter().find(|(id, _)| *id == h.bank_id)?;
                if h.distance > b.pdq_threshold && value.signal_type().is_fuzzy() {
                    return None;
                }
                if meta.disabled.get(&h.content_id).is_some_and(|&t| t > now) {
                    return None;
                }
                Some(LookupMatch::new(&h, b, value.signal_type(), p))
            })
            .collect();
        let mut suppressed = 0;
        if matches.iter().any(|m| m.allow_list) {
            let before = matches.len();
            matches.retain(|m| m.allow_list);
            suppressed = before - matches.len();
        }
        matches.sort_by(|a, b| {
            (a.bank.as_str(), a.distance, a.content_id).cmp(&(
                b.bank.as_str(),
                b.distance,
                b.content_id,
            ))
        });
        Ok(LookupResult {
            matches,
            suppressed,
        })
    }

    /// Index hits of a value: within `radius` for PDQ, equal for digests, and for vPDQ the
    /// videos passing the thresholds (`vpdq`, or the defaults) with their percentages.
    fn candidates(
        &self,
        value: &SignalValue,
        radius: u32,
        vpdq: Option<&VpdqMatchConfig>,
        photodna: f64,
        meta: &Meta,
    ) -> Result<Vec<(Hit, Option<MatchPercent>)>, Error> {
        Ok(match value {
            SignalValue::Vpdq(frames) => {
                let config = vpdq.copied().unwrap_or_default();
                self.matcher
                    .vpdq_hits(frames, &config, meta)?
                    .into_iter()
                    .filter(|(_, _, is_match)| *is_match)
                    .map(|(h, p, _)| (h, Some(p)))
                    .collect()
            }
            _ => self
                .matcher
                .hits(value, radius, photodna, meta)?
                .into_iter()
                .map(|h| (h, None))
                .collect(),
        })
    }

    /// Compares `value`'s vPDQ frames with every indexed video sharing a matching frame, and
    /// returns all of them with their percentages, passing `config` or not, by signal id.
    /// No bank rules apply: this is for diagnostics and threshold tuning.
    pub fn vpdq_scores(
        &self,
        frames: &[safeguard_vpdq::VpdqFrame],
        config: &VpdqMatchConfig,
    ) -> Result<Vec<(LookupMatch, bool)>, Error> {
        let meta = self.meta_read();
        Ok(self
            .matcher
            .vpdq_hits(frames, config, &meta)?
            .into_iter()
            .filter_map(|(h, p, ok)| {
                let b = meta.banks.get(&h.bank_id)?;
                Some((LookupMatch::new(&h, b, SignalType::Vpdq, Some(p)), ok))
            })
            .collect())
    }

    /// Looks a signal up with no bank rules but the distance threshold: disabled content and
    /// the coin flip are ignored (HMA's `raw_lookup`). Sorted by content id. vPDQ uses the
    /// default thresholds; see [`Engine::raw_lookup_with`].
    pub fn raw_lookup(
        &self,
        value: &SignalValue,
        banks: Option<&[String]>,
    ) -> Result<Vec<LookupMatch>, Error> {
        self.raw_lookup_with(value, banks, None)
    }

    /// [`Engine::raw_lookup`] with vPDQ thresholds (`None` for the defaults).
    pub fn raw_lookup_with(
        &self,
        value: &SignalValue,
        banks: Option<&[String]>,
        vpdq: Option<&VpdqMatchConfig>,
    ) -> Result<Vec<LookupMatch>, Error> {
        let meta = self.meta_read();
        let radius = meta
            .banks
            .values()
            .map(|b| b.pdq_threshold)
            .max()
            .unwrap_or(DEFAULT_PDQ_THRESHOLD);
        let mut out: Vec<LookupMatch> = self
            .candidates(value, radius, vpdq, self.photodna_threshold(), &meta)?
            .into_iter()
            .filter_map(|(h, p)| {
                let b = meta.banks.get(&h.bank_id)?;
                if value.signal_type().is_fuzzy() && h.distance > b.pdq_threshold {
                    return None;
                }
                if banks.is_some_and(|names| !names.contains(&b.name)) {
                    return None;
                }
                Some(LookupMatch::new(&h, b, value.signal_type(), p))
            })
            .collect();
        out.sort_by_key(|m| (m.content_id, m.distance));
        Ok(out)
    }

    /// Index sizes and freshness.
    pub fn index_status(&self) -> IndexStatus {
        let (entries, bytes) = self.matcher.sizes();
        IndexStatus {
            entries,
            bytes,
            applied_seq: *self.applied.lock().unwrap_or_else(|p| p.into_inner()),
            updated_at: self.updated_at.load(Ordering::Relaxed) as i64,
            build_seconds: self.build_seconds,
        }
    }
}
