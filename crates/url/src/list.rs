//! A URL list as a matcher: which entries a URL falls under.
//!
//! An entry is canonicalised like a URL and kept as the expression `host/path[?query]`. A URL
//! matches the entry when one of its lookup expressions is that string, which gives the IWF
//! list's semantics with no special cases: a page ("example.com/a/page.html") matches that
//! page, with or without a query; a folder ("example.com/a/") matches everything under it; a
//! whole domain matches only when the entry is the domain itself ("example.com/"), and then
//! its subdomains too.
//!
//! The list keeps fingerprints, not strings: per entry a 64-bit fast hash (sorted; its top
//! bits index a bucket directory and its low 32 bits are stored, so a lookup reads about two
//! cache lines), a second, keyed 64-bit hash that confirms a hit, and the entry's index:
//! about 18 bytes an entry. A Bloom filter over the entries' hosts lets a
//! URL whose hosts are all unlisted, the common case, skip its path expressions entirely.

use std::hash::{BuildHasher, Hasher, RandomState};

use foldhash::quality::{FixedState, FoldHasher};

use crate::expression::{host_suffixes, path_variants};
use crate::{CanonicalUrl, Error, MAX_HOST_SUFFIX_LABELS, MAX_PATH_PREFIX_COMPONENTS};

/// Deepest host, in labels, a whole-domain or folder entry may have and still match
/// subdomains: past the spec's 5 labels the list tries longer host suffixes (see
/// [`UrlList`]), but never more than this many, so a URL costs a bounded number of lookups.
const MAX_LIST_HOST_LABELS: usize = 16;

/// Deepest folder, in path components, that still matches what is under it (past the spec's
/// 3; see [`UrlList`]). Deeper folder entries still match their exact URL.
const MAX_LIST_PATH_COMPONENTS: usize = 32;

/// Seed of the fast fingerprint. Fixed, so a list's layout is the same from run to run; the
/// keyed check hash, not this one, is what an adversary cannot aim at.
const FINGERPRINT_SEED: u64 = 0x5afe_6a2d_0b1d_5eed;

/// Average entries per directory bucket (see `UrlListBuilder::build`).
const ENTRIES_PER_BUCKET: usize = 8;

/// Bloom filter bits per distinct listed host: with 8 bits set per key in 256-bit blocks this
/// gives about 0.2% false positives, so about 1 in 500 unlisted hosts costs path lookups.
const BLOOM_BITS_PER_HOST: usize = 16;

/// Gathers entries, then [`UrlListBuilder::build`]s the matcher.
#[derive(Debug)]
pub struct UrlListBuilder {
    /// (fingerprint, check, entry index) per entry, in insertion order.
    keys: Vec<(u64, u64, u32)>,
    /// Fingerprint of each entry's host, duplicates included.
    hosts: Vec<u64>,
    /// Host suffixes the list needs looked up, in labels: at least the spec's 5.
    host_labels: usize,
    /// Folder depth the list needs looked up, in components: at least the spec's 3.
    path_components: usize,
    fingerprint: FixedState,
    check: RandomState,
}

impl Default for UrlListBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl UrlListBuilder {
    pub fn new() -> Self {
        UrlListBuilder {
            keys: Vec::new(),
            hosts: Vec::new(),
            host_labels: MAX_HOST_SUFFIX_LABELS,
            path_components: MAX_PATH_PREFIX_COMPONENTS,
            fingerprint: FixedState::with_seed(FINGERPRINT_SEED),
            // SipHash-1-3 with a random key: a URL crafted to collide with a listed entry's
            // fast fingerprint still fails this check.
            check: RandomState::new(),
        }
    }

    /// Adds an entry (a URL, with or without scheme; the scheme is ignored) and returns its
    /// index, counted from 0. An entry with a bare '?' is the same as without it, as URLs are
    /// looked up without it.
    pub fn add(&mut self, entry: &str) -> Result<u32, Error> {
        let url = CanonicalUrl::parse(entry)?;
        let index = u32::try_from(self.keys.len()).expect("more than 4 billion list entries");
        let host = url.host();
        let path = match url.query() {
            Some(q) if !q.is_empty() => url.path_and_query(),
            _ => url.path(),
        };
        let host_state = hash_host(&self.fingerprint, host);
        self.hosts.push(host_state.finish());
        let fingerprint = hash_path(&host_state, path);
        let check = check_hash(&self.check, host, path);
        self.keys.push((fingerprint, check, index));

        // Entries beyond the spec's reach widen the lookups for this list (see UrlList).
        if !url.host_is_ip() {
            let labels = host.bytes().filter(|&b| b == b'.').count() + 1;
            self.host_labels = self.host_labels.max(labels.min(MAX_LIST_HOST_LABELS));
        }
        if url.query().is_none_or(str::is_empty) && path.ends_with('/') {
            let components = path.bytes().filter(|&b| b == b'/').count() - 1;
            self.path_components = self
                .path_components
                .max(components.min(MAX_LIST_PATH_COMPONENTS));
        }
        Ok(index)
    }

    /// The number of entries added.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Builds the matcher. Time O(n log n), memory about 18 bytes per entry.
    pub fn build(self) -> UrlList {
        let UrlListBuilder {
            mut keys,
            mut hosts,
            host_labels,
            path_components,
            fingerprint,
            check,
        } = self;
        keys.sort_unstable_by_key(|&(fp, _, index)| (fp, index));
        hosts.sort_unstable();
        hosts.dedup();

        // About eight entries per bucket: the directory costs half a byte an entry (512 KiB
        // for a million) and a lookup scans 32 bytes of fingerprint tails, one cache line.
        // 2 or 16 per bucket measured the same speed within noise (url_bench).
        let bucket_bits = (keys.len() / ENTRIES_PER_BUCKET)
            .max(1)
            .next_power_of_two()
            .trailing_zeros();
        let buckets = 1usize << bucket_bits;
        let mut starts = vec![0u32; buckets + 1];
        for &(fp, _, _) in &keys {
            starts[bucket(fp, bucket_bits) + 1] += 1;
        }
        for i in 0..buckets {
            starts[i + 1] += starts[i];
        }

        let mut bloom = Bloom::with_capacity(hosts.len());
        for &h in &hosts {
            bloom.insert(h);
        }
        UrlList {
            // The bucket holds the top bits; the low 32 tell entries in a bucket apart.
            tails: keys.iter().map(|k| k.0 as u32).collect(),
            checks: keys.iter().map(|k| k.1).collect(),
            indices: keys.iter().map(|k| k.2).collect(),
            starts,
            bucket_bits,
            bloom,
            host_labels,
            path_components,
            fingerprint,
            check,
        }
    }
}

/// A built URL list. See the module docs for the semantics and the layout.
///
/// Lookups follow the spec's expressions (up to 5 hosts × 6 paths), widened only where the
/// list itself needs it: a whole-domain or folder entry whose host has more than 5 labels
/// makes the list try longer host suffixes, and a folder entry more than 3 components deep
/// makes it try deeper path prefixes, so such entries still match what is under them, as the
/// IWF list intends (bounded by 16 labels and 32 components). [`crate::expressions`] itself
/// stays exactly the spec's.
#[derive(Debug)]
pub struct UrlList {
    /// Low 32 bits of each entry's fingerprint, in fingerprint order; the top bits are the
    /// bucket's. Half the size of whole fingerprints, so more of them stay in cache.
    tails: Vec<u32>,
    /// Keyed check hash of the entry at the same position.
    checks: Vec<u64>,
    /// Entry index at the same position.
    indices: Vec<u32>,
    /// `starts[b]..starts[b + 1]` is the range of bucket `b` (top `bucket_bits` bits).
    starts: Vec<u32>,
    bucket_bits: u32,
    /// Hosts of all entries.
    bloom: Bloom,
    /// Longest host suffix tried, in labels (>= 5).
    host_labels: usize,
    /// Deepest path prefix tried, in components (>= 3).
    path_components: usize,
    fingerprint: FixedState,
    check: RandomState,
}

impl UrlList {
    /// Builds a list from entries; the first entry that is not a URL fails the whole list,
    /// naming its index. Use [`UrlListBuilder`] to skip bad entries instead.
    pub fn from_entries<I, S>(entries: I) -> Result<UrlList, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut builder = UrlListBuilder::new();
        for (index, entry) in entries.into_iter().enumerate() {
            builder.add(entry.as_ref()).map_err(|e| Error::Entry {
                index,
                source: Box::new(e),
            })?;
        }
        Ok(builder.build())
    }

    /// The indices of the entries `url` falls under, ascending; empty when none.
    pub fn matches(&self, url: &str) -> Result<Vec<u32>, Error> {
        Ok(self.matches_canonical(&CanonicalUrl::parse(url)?))
    }

    /// [`UrlList::matches`] for a URL already canonicalised.
    pub fn matches_canonical(&self, url: &CanonicalUrl) -> Vec<u32> {
        let mut found = Vec::new();
        self.for_each_match(url, |index| {
            found.push(index);
            true
        });
        found.sort_unstable();
        found
    }

    /// Whether `url` falls under any entry; stops at the first.
    pub fn is_match(&self, url: &CanonicalUrl) -> bool {
        let mut any = false;
        self.for_each_match(url, |_| {
            any = true;
            false
        });
        any
    }

    /// Calls `found` with each matching entry's index until it returns false.
    fn for_each_match(&self, url: &CanonicalUrl, mut found: impl FnMut(u32) -> bool) {
        for host in host_suffixes(url, self.host_labels) {
            let host_state = hash_host(&self.fingerprint, host);
            if !self.bloom.contains(host_state.finish()) {
                continue;
            }
            for path in path_variants(url, self.path_components) {
                let fp = hash_path(&host_state, path);
                let b = bucket(fp, self.bucket_bits);
                let (start, end) = (self.starts[b] as usize, self.starts[b + 1] as usize);
                for i in start..end {
                    if self.tails[i] != fp as u32 {
                        continue;
                    }
                    // Computed only on a fingerprint hit, which is rare for unlisted URLs.
                    if self.checks[i] == check_hash(&self.check, host, path)
                        && !found(self.indices[i])
                    {
                        return;
                    }
                }
            }
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.tails.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tails.is_empty()
    }

    /// Heap memory held, in bytes (the figure `docs/urls.md` reports per entry).
    pub fn heap_bytes(&self) -> usize {
        self.tails.capacity() * 4
            + self.checks.capacity() * 8
            + self.indices.capacity() * 4
            + self.starts.capacity() * 4
            + self.bloom.blocks.capacity() * std::mem::size_of::<[u32; 8]>()
    }
}

fn hash_host(state: &FixedState, host: &str) -> FoldHasher {
    let mut h = state.build_hasher();
    h.write(host.as_bytes());
    h
}

/// The fingerprint of `host` + `path`, continuing the host's hash state: the split is
/// unambiguous, as a host never holds '/' and a path always starts with one.
fn hash_path(host_state: &FoldHasher, path: &str) -> u64 {
    let mut h = host_state.clone();
    h.write(path.as_bytes());
    h.finish()
}

fn check_hash(state: &RandomState, host: &str, path: &str) -> u64 {
    let mut h = state.build_hasher();
    h.write(host.as_bytes());
    h.write(path.as_bytes());
    h.finish()
}

fn bucket(fingerprint: u64, bits: u32) -> usize {
    // The top bits: the sort order, so buckets are contiguous runs of the sorted array.
    // `bits` is at most 31 (entries are counted in u32), so the shift is in range.
    (fingerprint >> (64 - bits.max(1))) as usize & ((1usize << bits) - 1)
}

/// A split-block Bloom filter (as in Parquet): each key sets one bit in each of the eight
/// 32-bit words of one 256-bit block, so a lookup reads one cache line.
#[derive(Debug)]
struct Bloom {
    blocks: Vec<[u32; 8]>,
}

impl Bloom {
    const SALT: [u32; 8] = [
        0x47b6_137b,
        0x4497_4d91,
        0x8824_ad5b,
        0xa2b7_289d,
        0x7054_95c7,
        0x2df1_424b,
        0x9efc_4947,
        0x5c6b_fb31,
    ];

    fn with_capacity(keys: usize) -> Bloom {
        let blocks = (keys * BLOOM_BITS_PER_HOST).div_ceil(256).max(1);
        Bloom {
            blocks: vec![[0; 8]; blocks],
        }
    }

    fn block(&self, key: u64) -> usize {
        // The high half picks the block (multiply-shift, no modulo); the low half the bits.
        (((key >> 32) * self.blocks.len() as u64) >> 32) as usize
    }

    fn mask(key: u64) -> [u32; 8] {
        let low = key as u32;
        Self::SALT.map(|salt| 1u32 << (low.wrapping_mul(salt) >> 27))
    }

    fn insert(&mut self, key: u64) {
        let b = self.block(key);
        for (word, bit) in self.blocks[b].iter_mut().zip(Self::mask(key)) {
            *word |= bit;
        }
    }

    fn contains(&self, key: u64) -> bool {
        let block = &self.blocks[self.block(key)];
        block
            .iter()
            .zip(Self::mask(key))
            .all(|(word, bit)| word & bit != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_ranges_cover_the_sorted_array() {
        let list = UrlList::from_entries((0..1000).map(|i| format!("h{i}.example/p{i}"))).unwrap();
        assert_eq!(*list.starts.last().unwrap() as usize, list.len());
        assert!(list.starts.is_sorted());
        // Every entry is found in its bucket.
        for (i, entry) in (0..1000).map(|i| format!("h{i}.example/p{i}")).enumerate() {
            assert_eq!(list.matches(&entry).unwrap(), [i as u32]);
        }
        assert!(list.heap_bytes() / list.len() < 40);
    }

    #[test]
    fn tiny_lists() {
        let empty = UrlListBuilder::new().build();
        assert!(empty.is_empty());
        assert_eq!(
            empty.matches("http://example.com/").unwrap(),
            Vec::<u32>::new()
        );
        let one = UrlList::from_entries(["example.com/"]).unwrap();
        assert_eq!(one.matches("http://example.com/x").unwrap(), [0]);
    }

    #[test]
    fn bloom_has_no_false_negatives() {
        let mut bloom = Bloom::with_capacity(10_000);
        let state = FixedState::with_seed(1);
        let keys: Vec<u64> = (0..10_000u64).map(|i| state.hash_one(i)).collect();
        for &k in &keys {
            bloom.insert(k);
        }
        assert!(keys.iter().all(|&k| bloom.contains(k)));
        let false_positives = (10_000..110_000u64)
            .filter(|&i| bloom.contains(state.hash_one(i)))
            .count();
        assert!(
            false_positives < 1_000,
            "{false_positives} false positives in 100000"
        );
    }
}
