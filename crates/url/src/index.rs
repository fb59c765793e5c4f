//! A URL list that changes one entry at a time: the engine's live index for signal type `url`,
//! kept equal to the store by its change feed.
//!
//! Same semantics as [`crate::UrlList`] (a page matches itself, a folder what is under it, a
//! whole domain itself and its subdomains), but entries can be added and removed at any time,
//! each under a caller's id (several ids may share one entry: the same URL in two banks).
//! [`UrlList`](crate::UrlList) is built once and keeps 18-byte fingerprints; this keeps the
//! entry strings themselves in a hash map, which costs more memory (about 100 bytes an entry
//! for typical URLs, see [`UrlIndex::heap_bytes`]) but needs no rebuild and no collision check,
//! and lets a snapshot write the entries as they are. Hotline URL lists hold hundreds of
//! thousands of entries, not hundreds of millions, so the simpler structure wins here.
//!
//! The map uses std's `RandomState` (SipHash with a random key): URLs come from untrusted
//! users, and a fixed hash would let them aim lookups at one slot.

use std::collections::HashMap;

use crate::expression::{host_suffixes, path_variants};
use crate::{CanonicalUrl, Error, MAX_HOST_SUFFIX_LABELS, MAX_PATH_PREFIX_COMPONENTS};

/// Deepest host, in labels, a whole-domain or folder entry may have and still match its
/// subdomains; the same bound as [`crate::UrlList`]'s, for the same reason (a bounded number of
/// lookups per URL).
pub const MAX_INDEX_HOST_LABELS: usize = 16;

/// Deepest folder, in path components, that still matches what is under it; the same bound as
/// [`crate::UrlList`]'s.
pub const MAX_INDEX_PATH_COMPONENTS: usize = 32;

/// The form a list entry is stored and matched in: the canonical URL without its scheme, and
/// without a bare '?' (`host/path` or `host/path?query`). A scheme in the entry is ignored, as
/// lists match a page whatever the scheme it is fetched with.
///
/// ```
/// assert_eq!(
///     safeguard_url::entry_expression("HTTP://Example.COM/a/../b/?").unwrap(),
///     "example.com/b/"
/// );
/// assert_eq!(safeguard_url::entry_expression("example.com").unwrap(), "example.com/");
/// ```
pub fn entry_expression(entry: &str) -> Result<String, Error> {
    Ok(CanonicalUrl::parse(entry)?.entry_expression())
}

/// A changing URL list; see the module docs.
#[derive(Debug)]
pub struct UrlIndex {
    /// Entry expression (as [`entry_expression`] gives it) to the ids listed under it.
    entries: HashMap<Box<str>, Vec<u64>>,
    /// Host of each entry, with the number of (entry, id) pairs under it: a URL none of whose
    /// host suffixes is here skips its path expressions, the common case.
    hosts: HashMap<Box<str>, u32>,
    /// (entry, id) pairs by host depth in labels, for hosts that are names (IP hosts have no
    /// suffixes), capped at [`MAX_INDEX_HOST_LABELS`]: the deepest non-empty one widens lookups.
    host_depths: [u32; MAX_INDEX_HOST_LABELS + 1],
    /// (entry, id) pairs that are folders, by depth in components, capped at
    /// [`MAX_INDEX_PATH_COMPONENTS`].
    folder_depths: [u32; MAX_INDEX_PATH_COMPONENTS + 1],
    /// (entry, id) pairs held.
    pairs: usize,
    /// Bytes of the entry and host strings.
    string_bytes: usize,
}

/// An entry expression split at its first '/': a canonical host never holds one.
fn split(expr: &str) -> Option<(&str, &str)> {
    let slash = expr.find('/')?;
    Some((&expr[..slash], &expr[slash..]))
}

/// The depth counters an entry moves: its host's labels when the host is a name, and its
/// folder depth when it is a folder (a path ending in '/' with no query).
fn depths(host: &str, path: &str) -> (Option<usize>, Option<usize>) {
    let is_ip = host.starts_with('[') || host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let labels = (!is_ip).then(|| host.bytes().filter(|&b| b == b'.').count() + 1);
    let folder = (!path.contains('?') && path.ends_with('/'))
        .then(|| path.bytes().filter(|&b| b == b'/').count() - 1);
    (
        labels.map(|l| l.min(MAX_INDEX_HOST_LABELS)),
        folder.map(|c| c.min(MAX_INDEX_PATH_COMPONENTS)),
    )
}

impl Default for UrlIndex {
    fn default() -> Self {
        UrlIndex {
            entries: HashMap::new(),
            hosts: HashMap::new(),
            host_depths: [0; MAX_INDEX_HOST_LABELS + 1],
            folder_depths: [0; MAX_INDEX_PATH_COMPONENTS + 1],
            pairs: 0,
            string_bytes: 0,
        }
    }
}

impl UrlIndex {
    /// An empty index.
    pub fn new() -> UrlIndex {
        UrlIndex::default()
    }

    /// Lists `id` under `entry`, which must be in [`entry_expression`] form (the caller
    /// normalised it on the way into the store). Returns false, changing nothing, when the
    /// pair is already there or the entry is not in that form.
    pub fn insert(&mut self, entry: &str, id: u64) -> bool {
        let Some((host, path)) = split(entry) else {
            return false;
        };
        if host.is_empty() {
            return false;
        }
        match self.entries.get_mut(entry) {
            Some(ids) if ids.contains(&id) => return false,
            Some(ids) => ids.push(id),
            None => {
                self.string_bytes += entry.len();
                self.entries.insert(entry.into(), vec![id]);
            }
        }
        match self.hosts.get_mut(host) {
            Some(n) => *n += 1,
            None => {
                self.string_bytes += host.len();
                self.hosts.insert(host.into(), 1);
            }
        }
        let (labels, folder) = depths(host, path);
        if let Some(l) = labels {
            self.host_depths[l] += 1;
        }
        if let Some(c) = folder {
            self.folder_depths[c] += 1;
        }
        self.pairs += 1;
        true
    }

    /// Removes `id` from `entry`. Returns false when it was not listed there.
    pub fn remove(&mut self, entry: &str, id: u64) -> bool {
        let Some((host, path)) = split(entry) else {
            return false;
        };
        let Some(ids) = self.entries.get_mut(entry) else {
            return false;
        };
        let Some(pos) = ids.iter().position(|&x| x == id) else {
            return false;
        };
        ids.swap_remove(pos);
        if ids.is_empty() {
            self.entries.remove(entry);
            self.string_bytes -= entry.len();
        }
        // Every inserted pair counted its host, so the host is present.
        if let Some(n) = self.hosts.get_mut(host) {
            *n -= 1;
            if *n == 0 {
                self.hosts.remove(host);
                self.string_bytes -= host.len();
            }
        }
        let (labels, folder) = depths(host, path);
        if let Some(l) = labels {
            self.host_depths[l] -= 1;
        }
        if let Some(c) = folder {
            self.folder_depths[c] -= 1;
        }
        self.pairs -= 1;
        true
    }

    /// Appends to `out` the ids of every entry `url` falls under (each pair once; the order is
    /// the expressions' order).
    pub fn lookup(&self, url: &CanonicalUrl, out: &mut Vec<u64>) {
        if self.pairs == 0 {
            return;
        }
        // Lookups widen past the spec's 5 labels and 3 components only as far as the deepest
        // entry needs, as UrlList does.
        let host_labels = self
            .host_depths
            .iter()
            .rposition(|&n| n > 0)
            .unwrap_or(0)
            .max(MAX_HOST_SUFFIX_LABELS);
        let path_components = self
            .folder_depths
            .iter()
            .rposition(|&n| n > 0)
            .unwrap_or(0)
            .max(MAX_PATH_PREFIX_COMPONENTS);
        let mut key = String::new();
        for host in host_suffixes(url, host_labels) {
            if !self.hosts.contains_key(host) {
                continue;
            }
            for path in path_variants(url, path_components) {
                key.clear();
                key.push_str(host);
                key.push_str(path);
                if let Some(ids) = self.entries.get(key.as_str()) {
                    out.extend_from_slice(ids);
                }
            }
        }
    }

    /// Every (entry, ids) listed, in no particular order (for snapshots).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &[u64])> {
        self.entries.iter().map(|(k, v)| (&**k, v.as_slice()))
    }

    /// The number of (entry, id) pairs.
    pub fn len(&self) -> usize {
        self.pairs
    }

    pub fn is_empty(&self) -> bool {
        self.pairs == 0
    }

    /// Heap memory held, in bytes, approximately: the two maps' slots (key, value and one
    /// control byte each), the strings and the id vectors.
    pub fn heap_bytes(&self) -> usize {
        let entry_slot = std::mem::size_of::<(Box<str>, Vec<u64>)>() + 1;
        let host_slot = std::mem::size_of::<(Box<str>, u32)>() + 1;
        let ids: usize = self.entries.values().map(|v| v.capacity() * 8).sum();
        self.entries.capacity() * entry_slot
            + self.hosts.capacity() * host_slot
            + self.string_bytes
            + ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(index: &UrlIndex, url: &str) -> Vec<u64> {
        let mut out = Vec::new();
        index.lookup(&CanonicalUrl::parse(url).unwrap(), &mut out);
        out.sort_unstable();
        out
    }

    fn index_of(entries: &[(&str, u64)]) -> UrlIndex {
        let mut index = UrlIndex::new();
        for (e, id) in entries {
            assert!(index.insert(&entry_expression(e).unwrap(), *id), "{e}");
        }
        index
    }

    #[test]
    fn pages_folders_and_domains() {
        let index = index_of(&[
            ("http://example.com/a/page.html", 1),
            ("example.org/folder/", 2),
            ("example.net", 3),
            ("http://shop.example.biz/item?id=7", 4),
        ]);
        assert_eq!(ids(&index, "http://example.com/a/page.html"), [1]);
        assert_eq!(ids(&index, "https://EXAMPLE.com/a/./page.html?x=1"), [1]);
        assert!(ids(&index, "http://example.com/a/other.html").is_empty());
        // A page is not a domain entry.
        assert!(ids(&index, "http://example.com/").is_empty());
        assert_eq!(ids(&index, "http://example.org/folder/deeper/x.jpg"), [2]);
        assert!(ids(&index, "http://example.org/elsewhere").is_empty());
        assert_eq!(ids(&index, "http://sub.example.net/anything"), [3]);
        assert_eq!(ids(&index, "http://shop.example.biz/item?id=7"), [4]);
        assert!(ids(&index, "http://shop.example.biz/item?id=8").is_empty());
    }

    #[test]
    fn agrees_with_the_static_list() {
        let entries = [
            "example.com/a/",
            "a.b.c.d.e.f.g.h.example.com/",
            "example.com/1/2/3/4/5/6/",
            "10.1.2.3/x",
            "[::1]/",
            "www.example.org/p?q=1",
        ];
        let list = crate::UrlList::from_entries(entries).unwrap();
        let mut index = UrlIndex::new();
        for (i, e) in entries.iter().enumerate() {
            index.insert(&entry_expression(e).unwrap(), i as u64);
        }
        for url in [
            "http://example.com/a/b",
            "http://x.a.b.c.d.e.f.g.h.example.com/",
            "http://example.com/1/2/3/4/5/6/7/8.html",
            "http://example.com/1/2/3/4/5/",
            "http://10.1.2.3/x",
            "http://012.1.2.3/x",
            "http://[0:0::1]/y",
            "http://www.example.org/p?q=1",
            "http://www.example.org/p",
            "http://unlisted.example/",
        ] {
            let want: Vec<u64> = list
                .matches(url)
                .unwrap()
                .into_iter()
                .map(u64::from)
                .collect();
            assert_eq!(ids(&index, url), want, "{url}");
        }
    }

    #[test]
    fn shared_entries_and_removal() {
        let mut index = UrlIndex::new();
        let e = entry_expression("deep.a.b.c.d.e.f.example.com/").unwrap();
        assert!(index.insert(&e, 1));
        assert!(index.insert(&e, 2));
        assert!(!index.insert(&e, 2));
        let url = "http://x.deep.a.b.c.d.e.f.example.com/p";
        assert_eq!(ids(&index, url), [1, 2]);
        assert_eq!(index.len(), 2);
        assert!(index.remove(&e, 1));
        assert!(!index.remove(&e, 1));
        assert_eq!(ids(&index, url), [2]);
        assert!(index.remove(&e, 2));
        assert!(index.is_empty());
        assert!(ids(&index, url).is_empty());
        // Everything was released: the deep entry no longer widens lookups.
        assert!(index.host_depths.iter().all(|&n| n == 0));
        assert!(index.hosts.is_empty() && index.string_bytes == 0);
        assert!(!index.insert("no-slash", 3) && !index.insert("/path-only", 3));
    }
}
