//! The in-memory match state: one index per signal type, plus what matching needs to know of
//! each signal (its content item and bank), of each bank (enabled, ratio, threshold, kind) and
//! of disabled content. It is kept equal to the store by applying the store's change feed.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::RwLock;

use safeguard_index::{Md5Index, PdqIndex, PhotoDnaIndex, Sha1Index, Sha256Index, PHOTODNA_LEN};
use safeguard_pdq::PdqHash;
use safeguard_store::{Bank, BankId, BankKind, ContentId, Signal, SignalId};
use safeguard_url::{CanonicalUrl, UrlIndex};
use safeguard_vpdq::{MatchPercent, VpdqFrame, VpdqIndex, VpdqMatchConfig};

use crate::signal::{SignalType, SignalValue};

/// What matching needs to know of a bank.
#[derive(Debug, Clone, PartialEq)]
pub struct BankState {
    /// Name, for results.
    pub name: String,
    /// Whether it takes part in matching.
    pub enabled: bool,
    /// Share of lookups it takes part in.
    pub enabled_ratio: f64,
    /// Largest PDQ distance that matches.
    pub pdq_threshold: u32,
    /// Standard, allow-list or csam.
    pub kind: BankKind,
    /// Tags, for policy rules.
    pub tags: Vec<String>,
    /// Default classification of its hashes, for policy rules.
    pub classification: Option<String>,
}

impl From<&Bank> for BankState {
    fn from(b: &Bank) -> BankState {
        BankState {
            name: b.name.clone(),
            enabled: b.enabled,
            enabled_ratio: b.enabled_ratio,
            pdq_threshold: b.pdq_threshold,
            kind: b.kind,
            tags: b.tags.clone(),
            classification: b.classification.clone(),
        }
    }
}

/// Signal ids a [`Meta`] page covers.
const PAGE: usize = 1024;

/// The facts of [`PAGE`] consecutive signal ids.
#[derive(Debug)]
struct Page {
    /// Content item of each id; 0 for ids not (or no longer) indexed.
    content: [ContentId; PAGE],
    /// Bank of each id (meaningful where `content` is not 0).
    bank: [u32; PAGE],
    /// How many `content` slots are not 0.
    live: u32,
}

impl Page {
    fn empty() -> Box<Page> {
        Box::new(Page {
            content: [0; PAGE],
            bank: [0; PAGE],
            live: 0,
        })
    }
}

/// Per-signal facts, in pages of [`PAGE`] consecutive signal ids. Ids are assigned densely by
/// the store, so a page costs 12 bytes a signal where a hash map of signals would cost about
/// 40; but ids are never reused, so a page is dropped once every id in it has been removed,
/// or a bank whose lists are replaced day after day would keep 12 bytes for every signal it
/// ever held (the soak test's slow growth, docs/performance.md). The pages sit in a map
/// rather than a vector so that memory follows the live ids, not the highest one.
#[derive(Debug, Default)]
pub(crate) struct Meta {
    pages: HashMap<u64, Box<Page>>,
    /// Banks by id.
    pub(crate) banks: HashMap<BankId, BankState>,
    /// Content items excluded from matching until a Unix time (seconds).
    pub(crate) disabled: HashMap<ContentId, i64>,
}

fn page_of(id: u64) -> (u64, usize) {
    (id / PAGE as u64, (id % PAGE as u64) as usize)
}

impl Meta {
    fn set(&mut self, id: SignalId, content: ContentId, bank: BankId) {
        let (p, i) = page_of(id as u64);
        let page = self.pages.entry(p).or_insert_with(Page::empty);
        page.live = page.live + u32::from(content != 0) - u32::from(page.content[i] != 0);
        page.content[i] = content;
        // Bank ids are row ids of a table with at most a few thousand rows.
        page.bank[i] = u32::try_from(bank).unwrap_or(u32::MAX);
        if page.live == 0 {
            self.pages.remove(&p);
        }
    }

    fn clear(&mut self, id: SignalId) {
        let (p, i) = page_of(id as u64);
        if let Some(page) = self.pages.get_mut(&p) {
            if page.content[i] != 0 {
                page.content[i] = 0;
                page.live -= 1;
                if page.live == 0 {
                    self.pages.remove(&p);
                }
            }
        }
    }

    fn get(&self, id: u64) -> Option<(ContentId, BankId)> {
        let (p, i) = page_of(id);
        let page = self.pages.get(&p)?;
        match page.content[i] {
            0 => None,
            c => Some((c, page.bank[i] as BankId)),
        }
    }

    /// Bytes held by the pages (and, roughly, their map).
    fn bytes(&self) -> usize {
        self.pages.len() * std::mem::size_of::<Page>()
            + self.pages.capacity() * (std::mem::size_of::<(u64, Box<Page>)>() + 1)
    }

    /// The pages in id order, for snapshots.
    fn pages_in_order(&self) -> Vec<(u64, &Page)> {
        let mut pages: Vec<(u64, &Page)> = self.pages.iter().map(|(&p, b)| (p, &**b)).collect();
        pages.sort_unstable_by_key(|&(p, _)| p);
        pages
    }
}

/// One raw index hit, before bank rules are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The matching signal.
    pub signal_id: SignalId,
    /// Its content item.
    pub content_id: ContentId,
    /// Its bank.
    pub bank_id: BankId,
    /// Hamming distance (0 for exact signal types).
    pub distance: u32,
}

/// All in-memory match state.
#[derive(Debug)]
pub(crate) struct Matcher {
    pdq: PdqIndex,
    md5: Md5Index,
    sha1: Sha1Index,
    sha256: Sha256Index,
    /// vPDQ videos by signal id. Behind its own lock: unlike the other indexes it is not
    /// internally synchronised, and video lookups are rare next to PDQ ones.
    vpdq: RwLock<VpdqIndex>,
    /// PhotoDNA values by signal id, behind its own lock for the same reason.
    photodna: RwLock<PhotoDnaIndex>,
    /// URL list entries, behind its own lock for the same reason.
    url: RwLock<UrlIndex>,
    pub(crate) meta: RwLock<Meta>,
}

impl Matcher {
    /// A matcher over the given signals (a full scan of the store) and banks.
    pub(crate) fn build(
        signals: Vec<(SignalId, ContentId, BankId, SignalValue)>,
        banks: &[Bank],
        disabled: Vec<(ContentId, i64)>,
    ) -> Result<Matcher, crate::Error> {
        let mut meta = Meta::default();
        let mut pdq = PdqIndex::builder();
        let (mut md5, mut sha1, mut sha256) = (Vec::new(), Vec::new(), Vec::new());
        let mut vpdq = Vec::new();
        let mut photodna = PhotoDnaIndex::new();
        let mut url = UrlIndex::new();
        for (id, content, bank, value) in signals {
            meta.set(id, content, bank);
            match value {
                SignalValue::Pdq(h) => pdq.push(id as u64, &h),
                SignalValue::Md5(d) => md5.push((d, id as u64)),
                SignalValue::Sha1(d) => sha1.push((d, id as u64)),
                SignalValue::Sha256(d) => sha256.push((d, id as u64)),
                SignalValue::Vpdq(f) => vpdq.push((id as u64, safeguard_vpdq::reduce(&f))),
                SignalValue::PhotoDna(v) => photodna.add(id as u64, &v),
                SignalValue::Url(u) => {
                    url.insert(&u, id as u64);
                }
            }
        }
        meta.banks = banks.iter().map(|b| (b.id, BankState::from(b))).collect();
        meta.disabled = disabled.into_iter().collect();
        Ok(Matcher {
            pdq: pdq.build()?,
            md5: Md5Index::from_entries(md5),
            sha1: Sha1Index::from_entries(sha1),
            sha256: Sha256Index::from_entries(sha256),
            vpdq: RwLock::new(VpdqIndex::build(vpdq).map_err(vpdq_error)?),
            photodna: RwLock::new(photodna),
            url: RwLock::new(url),
            meta: RwLock::new(meta),
        })
    }

    fn url_write(&self) -> std::sync::RwLockWriteGuard<'_, UrlIndex> {
        self.url.write().unwrap_or_else(|p| p.into_inner())
    }

    fn url_read(&self) -> std::sync::RwLockReadGuard<'_, UrlIndex> {
        self.url.read().unwrap_or_else(|p| p.into_inner())
    }

    fn photodna_write(&self) -> std::sync::RwLockWriteGuard<'_, PhotoDnaIndex> {
        self.photodna.write().unwrap_or_else(|p| p.into_inner())
    }

    fn photodna_read(&self) -> std::sync::RwLockReadGuard<'_, PhotoDnaIndex> {
        self.photodna.read().unwrap_or_else(|p| p.into_inner())
    }

    fn vpdq_write(&self) -> std::sync::RwLockWriteGuard<'_, VpdqIndex> {
        // Each index operation completes or panics before touching shared state it cannot
        // leave consistent, so a poisoned lock is still usable.
        self.vpdq.write().unwrap_or_else(|p| p.into_inner())
    }

    fn vpdq_read(&self) -> std::sync::RwLockReadGuard<'_, VpdqIndex> {
        self.vpdq.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a signal (from the change feed).
    pub(crate) fn add(&self, s: &Signal, value: SignalValue, meta: &mut Meta) {
        meta.set(s.id, s.content_id, s.bank_id);
        let id = s.id as u64;
        match value {
            SignalValue::Pdq(h) => {
                self.pdq.add(id, &h);
            }
            SignalValue::Md5(d) => {
                self.md5.insert(&d, id);
            }
            SignalValue::Sha1(d) => {
                self.sha1.insert(&d, id);
            }
            SignalValue::Sha256(d) => {
                self.sha256.insert(&d, id);
            }
            SignalValue::Vpdq(f) => {
                self.vpdq_write().add(id, &f);
            }
            SignalValue::PhotoDna(v) => {
                self.photodna_write().add(id, &v);
            }
            SignalValue::Url(u) => {
                self.url_write().insert(&u, id);
            }
        }
    }

    /// Removes a signal (from the change feed).
    pub(crate) fn remove(&self, s: &Signal, value: SignalValue, meta: &mut Meta) {
        meta.clear(s.id);
        let id = s.id as u64;
        match value {
            SignalValue::Pdq(h) => {
                self.pdq.remove(id, &h);
            }
            SignalValue::Md5(d) => {
                self.md5.remove(&d, id);
            }
            SignalValue::Sha1(d) => {
                self.sha1.remove(&d, id);
            }
            SignalValue::Sha256(d) => {
                self.sha256.remove(&d, id);
            }
            SignalValue::Vpdq(_) => {
                self.vpdq_write().remove(id);
            }
            SignalValue::PhotoDna(_) => {
                self.photodna_write().remove(id);
            }
            SignalValue::Url(u) => {
                self.url_write().remove(&u, id);
            }
        }
    }

    /// Every indexed vPDQ video sharing a matching frame with `frames`, with its percentages
    /// and whether they pass `config`.
    pub(crate) fn vpdq_hits(
        &self,
        frames: &[VpdqFrame],
        config: &VpdqMatchConfig,
        meta: &Meta,
    ) -> Result<Vec<(Hit, MatchPercent, bool)>, crate::Error> {
        let found = self.vpdq_read().query(frames, config).map_err(vpdq_error)?;
        Ok(found
            .into_iter()
            .filter_map(|m| {
                meta.get(m.video_id).map(|(content_id, bank_id)| {
                    (
                        Hit {
                            signal_id: m.video_id as SignalId,
                            content_id,
                            bank_id,
                            distance: 0,
                        },
                        m.percent,
                        m.is_match,
                    )
                })
            })
            .collect())
    }

    /// Every indexed signal of `value`'s type within `radius` (PDQ) or equal to it. vPDQ
    /// values go through [`Matcher::vpdq_hits`] instead; here they find nothing.
    /// `photodna_radius` is the Euclidean threshold for PhotoDNA values; the reported
    /// distance is rounded to the nearest integer (matching itself is exact).
    pub(crate) fn hits(
        &self,
        value: &SignalValue,
        radius: u32,
        photodna_radius: f64,
        meta: &Meta,
    ) -> Result<Vec<Hit>, crate::Error> {
        let raw: Vec<(u64, u32)> = match value {
            SignalValue::Pdq(h) => self
                .pdq
                .search(h, radius)?
                .into_iter()
                .map(|m| (m.id, m.distance))
                .collect(),
            SignalValue::Md5(d) => exact(|out| self.md5.lookup(d, out)),
            SignalValue::Sha1(d) => exact(|out| self.sha1.lookup(d, out)),
            SignalValue::Sha256(d) => exact(|out| self.sha256.lookup(d, out)),
            SignalValue::Vpdq(_) => Vec::new(),
            SignalValue::PhotoDna(v) => self
                .photodna_read()
                .search(v, photodna_radius)
                .into_iter()
                .map(|m| (m.id, m.distance.round() as u32))
                .collect(),
            // The value is an entry expression, itself a canonical URL without its scheme, so
            // parsing it again gives the same URL; its expressions are what is looked up.
            SignalValue::Url(u) => match CanonicalUrl::parse(u) {
                Ok(url) => exact(|out| self.url_read().lookup(&url, out)),
                Err(e) => {
                    return Err(crate::Error::InvalidSignal {
                        signal_type: "url",
                        reason: e.to_string(),
                    })
                }
            },
        };
        Ok(raw
            .into_iter()
            .filter_map(|(id, distance)| {
                meta.get(id).map(|(content_id, bank_id)| Hit {
                    signal_id: id as SignalId,
                    content_id,
                    bank_id,
                    distance,
                })
            })
            .collect())
    }

    /// Entry counts per signal type, and approximate bytes in memory.
    pub(crate) fn sizes(&self) -> (Vec<(SignalType, usize)>, usize) {
        let meta_bytes = self.meta.read().map(|m| m.bytes()).unwrap_or(0);
        let stats = self.pdq.stats();
        let vpdq = self.vpdq_read();
        let photodna = self.photodna_read();
        let url = self.url_read();
        (
            vec![
                (SignalType::Pdq, self.pdq.len()),
                (SignalType::Md5, self.md5.len()),
                (SignalType::Sha1, self.sha1.len()),
                (SignalType::Sha256, self.sha256.len()),
                (SignalType::Vpdq, vpdq.len()),
                (SignalType::PhotoDna, photodna.len()),
                (SignalType::Url, url.len()),
            ],
            stats.bytes
                + self.md5.memory_bytes()
                + self.sha1.memory_bytes()
                + self.sha256.memory_bytes()
                + vpdq.memory_bytes()
                + photodna.memory_bytes()
                + url.heap_bytes()
                + meta_bytes,
        )
    }
}

/// Writes `section` behind an 8-byte length, so a reader can bound each section exactly (the
/// index readers may buffer ahead).
fn write_section<W: Write + Seek>(
    w: &mut W,
    section: impl FnOnce(&mut W) -> Result<(), crate::Error>,
) -> Result<(), crate::Error> {
    let io = |e: std::io::Error| crate::Error::Invalid(format!("writing snapshot: {e}"));
    let at = w.stream_position().map_err(io)?;
    w.write_all(&0u64.to_le_bytes()).map_err(io)?;
    section(w)?;
    let end = w.stream_position().map_err(io)?;
    w.seek(SeekFrom::Start(at)).map_err(io)?;
    w.write_all(&(end - at - 8).to_le_bytes()).map_err(io)?;
    w.seek(SeekFrom::Start(end)).map_err(io)?;
    Ok(())
}

fn section_reader<R: Read>(r: &mut R) -> Result<std::io::Take<&mut R>, crate::Error> {
    let mut len = [0u8; 8];
    r.read_exact(&mut len)
        .map_err(|e| corrupt(format!("section length: {e}")))?;
    Ok(r.take(u64::from_le_bytes(len)))
}

fn corrupt(msg: String) -> crate::Error {
    crate::Error::Index(safeguard_index::Error::SnapshotCorrupt(msg))
}

/// The body of a checksummed snapshot section: written through a 64 KiB buffer, with a CRC-32
/// of every byte appended by [`CrcWriter::finish`].
struct CrcWriter<'w, W: Write> {
    w: &'w mut W,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
}

impl<'w, W: Write> CrcWriter<'w, W> {
    fn new(w: &'w mut W) -> Self {
        CrcWriter {
            w,
            buf: Vec::with_capacity(1 << 16),
            crc: crc32fast::Hasher::new(),
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), crate::Error> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= 1 << 16 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), crate::Error> {
        self.crc.update(&self.buf);
        self.w.write_all(&self.buf).map_err(snapshot_write_error)?;
        self.buf.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<(), crate::Error> {
        self.flush()?;
        let sum = self.crc.clone().finalize();
        self.w
            .write_all(&sum.to_le_bytes())
            .map_err(snapshot_write_error)
    }
}

fn snapshot_write_error(e: std::io::Error) -> crate::Error {
    crate::Error::Invalid(format!("writing snapshot: {e}"))
}

/// Reads what a [`CrcWriter`] wrote: every read is checksummed, and [`CrcReader::finish`]
/// compares the sum. `name` labels the section in errors.
struct CrcReader<R: Read> {
    sec: std::io::BufReader<R>,
    crc: crc32fast::Hasher,
    name: &'static str,
}

impl<R: Read> CrcReader<R> {
    fn new(r: R, name: &'static str) -> Self {
        CrcReader {
            sec: std::io::BufReader::with_capacity(1 << 16, r),
            crc: crc32fast::Hasher::new(),
            name,
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), crate::Error> {
        self.sec
            .read_exact(buf)
            .map_err(|e| corrupt(format!("{} section: {e}", self.name)))?;
        self.crc.update(buf);
        Ok(())
    }

    fn read_u64(&mut self) -> Result<u64, crate::Error> {
        let mut b = [0u8; 8];
        self.read(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn finish(mut self) -> Result<(), crate::Error> {
        let mut sum = [0u8; 4];
        self.sec
            .read_exact(&mut sum)
            .map_err(|e| corrupt(format!("{} checksum: {e}", self.name)))?;
        if u32::from_le_bytes(sum) != self.crc.finalize() {
            return Err(corrupt(format!("{} checksum mismatch", self.name)));
        }
        Ok(())
    }
}

impl Matcher {
    /// Writes the whole match state (per-signal facts and every index). The caller holds
    /// the engine's sync lock, so nothing changes meanwhile; lookups go on.
    pub(crate) fn write_snapshot<W: Write + Seek>(&self, w: &mut W) -> Result<(), crate::Error> {
        let idx = |e: safeguard_index::Error| crate::Error::Index(e);
        {
            let meta = self.meta.read().unwrap_or_else(|p| p.into_inner());
            write_section(w, |w| {
                let mut out = CrcWriter::new(w);
                let pages = meta.pages_in_order();
                out.put(&(pages.len() as u64).to_le_bytes())?;
                for (p, page) in pages {
                    out.put(&p.to_le_bytes())?;
                    for (c, b) in page.content.iter().zip(&page.bank) {
                        out.put(&c.to_le_bytes())?;
                        out.put(&b.to_le_bytes())?;
                    }
                }
                out.finish()
            })?;
        }
        write_section(w, |w| self.pdq.write_snapshot(w).map_err(idx))?;
        write_section(w, |w| self.md5.write_snapshot(w).map_err(idx))?;
        write_section(w, |w| self.sha1.write_snapshot(w).map_err(idx))?;
        write_section(w, |w| self.sha256.write_snapshot(w).map_err(idx))?;
        write_section(w, |w| write_vpdq(&self.vpdq_read(), w))?;
        write_section(w, |w| write_photodna(&self.photodna_read(), w))?;
        write_section(w, |w| write_url(&self.url_read(), w))?;
        Ok(())
    }

    /// Reads what [`Matcher::write_snapshot`] wrote; any damage is an error.
    pub(crate) fn read_snapshot<R: Read>(
        r: &mut R,
        banks: &[Bank],
        disabled: Vec<(ContentId, i64)>,
    ) -> Result<Matcher, crate::Error> {
        let mut meta = Meta::default();
        {
            let section = section_reader(r)?;
            let section_len = section.limit();
            let mut sec = CrcReader::new(section, "meta");
            let n = sec.read_u64()?;
            // The section's own length bounds n, so a corrupt count cannot allocate wildly.
            let page_len = 8 + 12 * PAGE as u64;
            if n.checked_mul(page_len).and_then(|b| b.checked_add(12)) != Some(section_len) {
                return Err(corrupt(format!(
                    "meta page count {n} does not fit its section"
                )));
            }
            meta.pages.reserve(n as usize);
            let mut rec = [0u8; 12];
            let mut last = None;
            for _ in 0..n {
                let p = sec.read_u64()?;
                if last.is_some_and(|l| p <= l) {
                    return Err(corrupt(format!("meta page {p} out of order")));
                }
                last = Some(p);
                let mut page = Page::empty();
                let slots = page.content.iter_mut().zip(page.bank.iter_mut());
                let mut live = 0;
                for (c, b) in slots {
                    sec.read(&mut rec)?;
                    *c = i64::from_le_bytes(rec[..8].try_into().expect("8 bytes"));
                    *b = u32::from_le_bytes(rec[8..].try_into().expect("4 bytes"));
                    live += u32::from(*c != 0);
                }
                page.live = live;
                if page.live == 0 {
                    return Err(corrupt(format!("meta page {p} is empty")));
                }
                meta.pages.insert(p, page);
            }
            sec.finish()?;
        }
        meta.banks = banks.iter().map(|b| (b.id, BankState::from(b))).collect();
        meta.disabled = disabled.into_iter().collect();
        let pdq = PdqIndex::read_snapshot(section_reader(r)?, Default::default())?;
        let md5 = Md5Index::read_snapshot(section_reader(r)?)?;
        let sha1 = Sha1Index::read_snapshot(section_reader(r)?)?;
        let sha256 = Sha256Index::read_snapshot(section_reader(r)?)?;
        let vpdq = read_vpdq(&mut section_reader(r)?)?;
        let photodna = read_photodna(&mut section_reader(r)?)?;
        let url = read_url(&mut section_reader(r)?)?;
        Ok(Matcher {
            pdq,
            md5,
            sha1,
            sha256,
            vpdq: RwLock::new(vpdq),
            photodna: RwLock::new(photodna),
            url: RwLock::new(url),
            meta: RwLock::new(meta),
        })
    }
}

/// The URL section of a snapshot: `pairs: u64`, then per (entry, signal id) pair `signal id:
/// u64`, `length: u32` and the entry's bytes, then a CRC-32 of all of it.
fn write_url<W: Write>(index: &UrlIndex, w: &mut W) -> Result<(), crate::Error> {
    let mut out = CrcWriter::new(w);
    out.put(&(index.len() as u64).to_le_bytes())?;
    for (entry, ids) in index.entries() {
        for id in ids {
            out.put(&id.to_le_bytes())?;
            // Entries are at most safeguard_url::MAX_URL_BYTES long, far below u32::MAX.
            out.put(&(entry.len() as u32).to_le_bytes())?;
            out.put(entry.as_bytes())?;
        }
    }
    out.finish()
}

fn read_url<R: Read>(r: &mut std::io::Take<&mut R>) -> Result<UrlIndex, crate::Error> {
    let section_len = r.limit();
    let mut sec = CrcReader::new(r, "url");
    let n = sec.read_u64()?;
    // Each pair takes at least 12 bytes, so the section's length bounds a corrupt count.
    if n.saturating_mul(12) > section_len {
        return Err(corrupt(format!("url count {n} does not fit its section")));
    }
    let mut index = UrlIndex::new();
    for _ in 0..n {
        let mut head = [0u8; 12];
        sec.read(&mut head)?;
        let id = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(head[8..].try_into().expect("4 bytes")) as usize;
        if len > safeguard_url::MAX_URL_BYTES {
            return Err(corrupt(format!("url entry {id} is {len} bytes")));
        }
        let mut body = vec![0u8; len];
        sec.read(&mut body)?;
        let entry =
            String::from_utf8(body).map_err(|_| corrupt(format!("url entry {id} is not UTF-8")))?;
        if !index.insert(&entry, id) {
            return Err(corrupt(format!("url entry {id} is malformed or repeated")));
        }
    }
    sec.finish()?;
    Ok(index)
}

/// The PhotoDNA section of a snapshot: `entries: u64`, then per entry `signal id: u64` and
/// the 144 bytes, then a CRC-32 of all of it.
fn write_photodna<W: Write>(index: &PhotoDnaIndex, w: &mut W) -> Result<(), crate::Error> {
    let mut out = CrcWriter::new(w);
    let entries = index.entries();
    out.put(&(entries.len() as u64).to_le_bytes())?;
    for (id, v) in entries {
        out.put(&id.to_le_bytes())?;
        out.put(v)?;
    }
    out.finish()
}

fn read_photodna<R: Read>(r: &mut std::io::Take<&mut R>) -> Result<PhotoDnaIndex, crate::Error> {
    const ENTRY: usize = 8 + PHOTODNA_LEN;
    let section_len = r.limit();
    let mut sec = CrcReader::new(r, "photodna");
    let n = sec.read_u64()?;
    if n.checked_mul(ENTRY as u64).and_then(|b| b.checked_add(12)) != Some(section_len) {
        return Err(corrupt(format!(
            "photodna count {n} does not fit its section"
        )));
    }
    let mut index = PhotoDnaIndex::new();
    let mut rec = [0u8; ENTRY];
    for _ in 0..n {
        sec.read(&mut rec)?;
        let id = u64::from_le_bytes(rec[..8].try_into().expect("8 bytes"));
        let v: [u8; PHOTODNA_LEN] = rec[8..].try_into().expect("144 bytes");
        index.add(id, &v);
    }
    sec.finish()?;
    Ok(index)
}

/// The vPDQ section of a snapshot: `videos: u64`, then per video `signal id: u64`,
/// `hashes: u32` and that many `(hash: [u8; 32], best quality: u8)`, then a CRC-32 of all of
/// it. A video is stored reduced (distinct hashes, best quality), which is all matching uses.
fn write_vpdq<W: Write>(index: &VpdqIndex, w: &mut W) -> Result<(), crate::Error> {
    let mut out = CrcWriter::new(w);
    out.put(&(index.len() as u64).to_le_bytes())?;
    for (id, hashes) in index.videos() {
        out.put(&id.to_le_bytes())?;
        // A video holds at most safeguard_vpdq::MAX_FRAMES hashes, far below u32::MAX.
        out.put(&(hashes.len() as u32).to_le_bytes())?;
        for (h, q) in hashes {
            out.put(&h.0)?;
            out.put(&[*q])?;
        }
    }
    out.finish()
}

fn read_vpdq<R: Read>(r: &mut std::io::Take<&mut R>) -> Result<VpdqIndex, crate::Error> {
    let section_len = r.limit();
    let mut sec = CrcReader::new(r, "vpdq");
    let videos = sec.read_u64()?;
    // Each video takes at least 12 bytes, so the section's length bounds a corrupt count.
    if videos.saturating_mul(12) > section_len {
        return Err(corrupt(format!(
            "vpdq count {videos} does not fit its section"
        )));
    }
    let mut all = Vec::new();
    for _ in 0..videos {
        let mut head = [0u8; 12];
        sec.read(&mut head)?;
        let id = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let n = u32::from_le_bytes(head[8..].try_into().expect("4 bytes")) as usize;
        if n > safeguard_vpdq::MAX_FRAMES {
            return Err(corrupt(format!("vpdq video {id} has {n} hashes")));
        }
        let mut body = vec![0u8; n * 33];
        sec.read(&mut body)?;
        let hashes = body
            .chunks_exact(33)
            .map(|c| (PdqHash(c[..32].try_into().expect("32 bytes")), c[32]))
            .collect();
        all.push((id, hashes));
    }
    sec.finish()?;
    VpdqIndex::build(all).map_err(vpdq_error)
}

fn vpdq_error(e: safeguard_vpdq::Error) -> crate::Error {
    match e {
        safeguard_vpdq::Error::InvalidConfig(m) => crate::Error::Invalid(m),
        safeguard_vpdq::Error::Index(e) => crate::Error::Index(e),
        other => crate::Error::Invalid(other.to_string()),
    }
}

fn exact(f: impl FnOnce(&mut Vec<u64>)) -> Vec<(u64, u32)> {
    let mut out = Vec::new();
    f(&mut out);
    out.into_iter().map(|id| (id, 0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_drops_a_page_once_every_id_in_it_is_removed() {
        let mut m = Meta::default();
        for id in 1..=3000 {
            m.set(id, id * 10, 7);
        }
        assert_eq!(m.pages.len(), 3);
        let full = m.bytes();
        for id in 1..=2000 {
            m.clear(id);
            m.clear(id); // clearing twice changes nothing
        }
        assert_eq!(m.pages.len(), 2, "pages 1 and 2 still hold ids 2001..=3000");
        assert!(m.bytes() < full);
        assert_eq!(m.get(5), None);
        assert_eq!(m.get(2000), None);
        assert_eq!(m.get(2001), Some((20010, 7)));
        assert_eq!(m.get(2048), Some((20480, 7)));
        assert_eq!(m.get(3000), Some((30000, 7)));
        assert_eq!(m.get(3001), None);
        // Setting an id again does not count it twice.
        m.set(2048, 99, 8);
        assert_eq!(m.get(2048), Some((99, 8)));
        for id in 2001..=3000 {
            m.clear(id);
        }
        assert!(m.pages.is_empty());
    }

    /// The soak test's pattern: a bank with a steady 2,000 live signals, each removed some
    /// time after it was added, while ids keep rising. Memory follows the live signals, not
    /// the ids ever assigned (it grew 12 bytes an id before pages were dropped).
    #[test]
    fn churn_keeps_meta_the_size_of_the_live_ids() {
        let mut m = Meta::default();
        for id in 1..=1_000_000i64 {
            m.set(id, id, 1);
            if id > 2000 {
                m.clear(id - 2000);
            }
        }
        assert!(m.pages.len() <= 3, "{} pages", m.pages.len());
        assert!(m.bytes() < 64 << 10, "{} bytes", m.bytes());
        assert_eq!(m.get(1_000_000 - 1999), Some((1_000_000 - 1999, 1)));
        assert_eq!(m.get(1_000_000 - 2000), None);
    }

    /// A snapshot's meta section with its checksum made right again after an edit, so the
    /// reader's own checks are what refuse it.
    fn resealed(mut snap: Vec<u8>, edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let len = u64::from_le_bytes(snap[..8].try_into().unwrap()) as usize;
        edit(&mut snap[8..8 + len - 4]);
        let crc = crc32fast::hash(&snap[8..8 + len - 4]);
        snap[8 + len - 4..8 + len].copy_from_slice(&crc.to_le_bytes());
        snap
    }

    #[test]
    fn snapshot_pages_out_of_order_or_empty_are_refused() {
        let md5 = |i: u32| SignalValue::parse(SignalType::Md5, &format!("{i:032x}")).unwrap();
        let signals = vec![(5, 50, 1, md5(1)), (2000, 60, 1, md5(2))];
        let m = Matcher::build(signals, &[], Vec::new()).unwrap();
        let mut buf = std::io::Cursor::new(Vec::new());
        m.write_snapshot(&mut buf).unwrap();
        let snap = buf.into_inner();
        let load = |bytes: &[u8]| Matcher::read_snapshot(&mut &bytes[..], &[], Vec::new());
        let back = load(&snap).unwrap();
        assert_eq!(back.meta.read().unwrap().get(2000), Some((60, 1)));
        assert_eq!(back.meta.read().unwrap().get(5), Some((50, 1)));
        // The section: page count, then page number and 1,024 slots of 12 bytes a page.
        let page = 8 + 12 * PAGE;
        let swapped = resealed(snap.clone(), |sec| {
            sec[8..16].copy_from_slice(&1u64.to_le_bytes());
            sec[8 + page..16 + page].copy_from_slice(&0u64.to_le_bytes());
        });
        let err = load(&swapped).expect_err("pages out of order").to_string();
        assert!(err.contains("out of order"), "{err}");
        let emptied = resealed(snap.clone(), |sec| sec[16 + 5 * 12..24 + 5 * 12].fill(0));
        let err = load(&emptied).expect_err("an empty page").to_string();
        assert!(err.contains("is empty"), "{err}");
    }

    #[test]
    fn meta_holds_ids_far_apart_without_filling_between() {
        let mut m = Meta::default();
        m.set(3, 1, 1);
        m.set(1 << 40, 2, 1);
        assert_eq!(m.pages.len(), 2);
        assert!(m.bytes() < 64 << 10, "{} bytes", m.bytes());
        assert_eq!(m.get(1 << 40), Some((2, 1)));
        assert_eq!(m.get((1 << 40) + 1), None);
        assert_eq!(
            m.pages_in_order().iter().map(|p| p.0).collect::<Vec<_>>(),
            vec![0, 1 << 30]
        );
    }
}
