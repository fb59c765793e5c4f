//! Where a backfill scan's items come from: a directory tree, an S3-compatible bucket, or a
//! file of URLs. A source lists its item keys in a stable order (so a listing cut off and run
//! again plans the same jobs) and fetches an item's bytes by its key.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::ObjectStore;
use sha2::Digest;

use safeguard_server::config::FetchConfig;
use safeguard_server::fetch::Fetcher;
use safeguard_store::scan::MAX_ITEM_KEY_BYTES;

/// Longest line of a URL list read, bytes: four times the longest key, so blanks around a URL
/// at the limit still fit; a longer line is skipped unread, with a warning naming it.
const URL_LINE_CAP: u64 = 4 * MAX_ITEM_KEY_BYTES as u64;

/// Items fetched at once by one worker process from a bucket or over HTTP (shared by its job
/// loops): also the most fetched items it holds in memory at once.
pub const FETCH_CONCURRENCY: usize = 16;
/// Longest wait for one URL's answer, whole body included, seconds.
const URL_TIMEOUT_SECS: u64 = 30;
/// Redirects followed for one URL, each checked by the guard.
const URL_MAX_REDIRECTS: usize = 5;

/// Why a listing stopped early on purpose (the scan ended): not a failure.
#[derive(Debug)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("listing stopped")
    }
}

impl std::error::Error for Stopped {}

/// A parsed source.
pub enum Source {
    /// Files under a directory; keys are paths relative to it, `/`-separated.
    Dir {
        /// The directory's canonical path: what the scan names, read as it is at each job.
        path: PathBuf,
        /// The directory at `path`, open (`O_PATH`), for opening items beneath it in one
        /// call (see [`Source::read`]); checked against `path` at every job
        /// ([`Source::check_root`]). `None` when it could not be opened or confirmed: then
        /// every item is resolved by path.
        root: RwLock<Option<File>>,
        /// Whether `openat2` works here; cleared the first time the kernel refuses it, after
        /// which every item is resolved by path.
        beneath: AtomicBool,
    },
    /// Objects under a prefix of a bucket; keys are object keys.
    S3 {
        /// The bucket's client.
        store: Arc<dyn ObjectStore>,
        /// Its name.
        bucket: String,
        /// Key prefix listed (may be empty).
        prefix: String,
    },
    /// One URL per line of a file; keys are the URLs.
    Urls {
        /// The file.
        file: PathBuf,
        /// The server's guarded fetcher: http(s) only, no internal addresses (also after
        /// redirects and DNS), bounded size and time.
        fetcher: Fetcher,
    },
}

impl Source {
    /// Parses `spec`: `s3://BUCKET[/PREFIX]`, `urls:FILE`, or a directory (optionally
    /// `dir:PATH`). A directory is made absolute and canonical, so workers started elsewhere
    /// find it. The bucket's endpoint and credentials come from the standard `AWS_*`
    /// variables (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, `AWS_ALLOW_HTTP`). URLs on `allow_internal` hosts may resolve to
    /// internal addresses; `max_bytes` bounds a fetched URL.
    pub fn parse(spec: &str, allow_internal: &[String], max_bytes: u64) -> anyhow::Result<Source> {
        if let Some(rest) = spec.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            anyhow::ensure!(!bucket.is_empty(), "{spec}: no bucket name");
            let store = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .with_context(|| format!("{spec}: cannot configure the bucket client"))?;
            return Ok(Source::S3 {
                store: Arc::new(store),
                bucket: bucket.to_string(),
                prefix: prefix.trim_end_matches('/').to_string(),
            });
        }
        if let Some(file) = spec.strip_prefix("urls:") {
            let file = std::path::absolute(file)
                .with_context(|| format!("{spec}: cannot resolve the path"))?;
            let fetcher = Fetcher::new(&FetchConfig {
                enabled: true,
                allow_internal_hosts: allow_internal.to_vec(),
                max_bytes,
                timeout_secs: URL_TIMEOUT_SECS,
                max_redirects: URL_MAX_REDIRECTS,
            })
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
            return Ok(Source::Urls { file, fetcher });
        }
        let path = spec.strip_prefix("dir:").unwrap_or(spec);
        let dir = std::fs::canonicalize(path)
            .with_context(|| format!("{spec}: cannot resolve the path"))?;
        anyhow::ensure!(dir.is_dir(), "{}: not a directory", dir.display());
        let root = RwLock::new(open_root(&dir));
        Ok(Source::Dir {
            path: dir,
            root,
            beneath: AtomicBool::new(true),
        })
    }

    /// The canonical text a scan stores and a joining worker parses again.
    pub fn spec(&self) -> String {
        match self {
            Source::Dir { path, .. } => format!("dir:{}", path.display()),
            Source::S3 { bucket, prefix, .. } => {
                if prefix.is_empty() {
                    format!("s3://{bucket}")
                } else {
                    format!("s3://{bucket}/{prefix}")
                }
            }
            Source::Urls { file, .. } => format!("urls:{}", file.display()),
        }
    }

    /// Calls `each` with every item key in listing order. Keys over [`MAX_ITEM_KEY_BYTES`],
    /// entries of the tree that cannot be read and duplicate URLs are skipped with a warning
    /// on stderr. `each` may return [`Stopped`] to end the listing early.
    pub fn list(
        &self,
        rt: &tokio::runtime::Runtime,
        mut each: impl FnMut(String) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut push = |key: String| -> anyhow::Result<()> {
            if key.len() > MAX_ITEM_KEY_BYTES {
                eprintln!(
                    "safeguard: skipped, key over {MAX_ITEM_KEY_BYTES} bytes: {}…",
                    key.chars().take(80).collect::<String>()
                );
                return Ok(());
            }
            each(key)
        };
        match self {
            Source::Dir { path: root, .. } => {
                let walker = walkdir::WalkDir::new(root)
                    .follow_links(false)
                    .sort_by_file_name();
                let mut skipped = 0u64;
                for entry in walker {
                    // An unreadable folder (`lost+found` at a mount's root) or an entry
                    // deleted while the walk passed is skipped, not the end of the scan; the
                    // root itself unreadable is.
                    let e = match entry {
                        Ok(e) => e,
                        Err(err) if err.depth() == 0 => {
                            return Err(err).with_context(|| format!("listing {}", root.display()))
                        }
                        Err(err) => {
                            skipped += 1;
                            eprintln!("safeguard: skipped while listing: {err}");
                            continue;
                        }
                    };
                    let is_file = e.file_type().is_file()
                        || (e.file_type().is_symlink()
                            && std::fs::metadata(e.path()).is_ok_and(|m| m.is_file()));
                    if !is_file {
                        continue;
                    }
                    let rel = e.path().strip_prefix(root).unwrap_or(e.path());
                    let Some(key) = rel_key(rel) else {
                        eprintln!("safeguard: skipped, not UTF-8: {}", e.path().display());
                        continue;
                    };
                    push(key)?;
                }
                if skipped > 0 {
                    eprintln!(
                        "safeguard: {skipped} entries of {} could not be listed and are not in \
                         the scan",
                        root.display()
                    );
                }
                Ok(())
            }
            Source::S3 { store, prefix, .. } => rt.block_on(async {
                let prefix = (!prefix.is_empty())
                    .then(|| object_store::path::Path::parse(prefix.as_str()))
                    .transpose()
                    .context("the bucket prefix")?;
                // S3 lists in key order, so a second listing plans the same jobs.
                let mut stream = store.list(prefix.as_ref());
                while let Some(meta) = stream.try_next().await.context("listing the bucket")? {
                    push(meta.location.to_string())?;
                }
                Ok(())
            }),
            Source::Urls { file, .. } => {
                let f = std::fs::File::open(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                // 16 bytes per distinct URL, not the URL: a list of millions stays small.
                let mut seen: HashSet<[u8; 16]> = HashSet::new();
                let mut r = std::io::BufReader::new(f);
                let mut buf = Vec::new();
                let mut line_no = 0u64;
                loop {
                    // A line is read up to a cap, never whole: one endless line must not fill
                    // the memory. The cap leaves room for blanks around a URL at the limit.
                    buf.clear();
                    let n = (&mut r)
                        .take(URL_LINE_CAP)
                        .read_until(b'\n', &mut buf)
                        .with_context(|| format!("reading {}", file.display()))?;
                    if n == 0 {
                        break;
                    }
                    line_no += 1;
                    if buf.last() != Some(&b'\n') && n as u64 == URL_LINE_CAP {
                        r.skip_until(b'\n')
                            .with_context(|| format!("reading {}", file.display()))?;
                        eprintln!(
                            "safeguard: skipped, line {line_no} of {} is over {URL_LINE_CAP} bytes",
                            file.display()
                        );
                        continue;
                    }
                    let Ok(line) = std::str::from_utf8(&buf) else {
                        eprintln!(
                            "safeguard: skipped, line {line_no} of {} is not UTF-8",
                            file.display()
                        );
                        continue;
                    };
                    let url = line.trim();
                    if url.is_empty() || url.starts_with('#') {
                        continue;
                    }
                    let d = sha2::Sha256::digest(url.as_bytes());
                    let mut id = [0u8; 16];
                    id.copy_from_slice(&d[..16]);
                    if !seen.insert(id) {
                        continue;
                    }
                    push(url.to_string())?;
                }
                Ok(())
            }
        }
    }

    /// Whether items are read from this machine's file system (then [`Source::read`], on the
    /// hashing threads) rather than fetched over the network ([`Source::fetch`]).
    pub fn is_local(&self) -> bool {
        matches!(self, Source::Dir { .. })
    }

    /// The bytes of one item of a directory source, at most `max_bytes`; an error is the
    /// reason, ready to record. The file must be a regular file inside the tree once links
    /// are resolved (a key from the store or a link swapped in after listing cannot read
    /// elsewhere) and is not opened otherwise (a FIFO would block the worker).
    pub fn read(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, String> {
        let Source::Dir {
            path,
            root,
            beneath,
        } = self
        else {
            return Err("not a directory source".into());
        };
        // The root's lock is held for the open only, not the read.
        let f = open_item(path, root, beneath, key)?;
        read_capped(f, max_bytes)
    }

    /// Makes sure the open root is still the directory at the scan's path, opening it again
    /// when it was renamed, deleted or replaced: every worker of a scan reads what is at the
    /// path, as each would by resolving it. Called at the start of every job.
    pub fn check_root(&self) {
        let Source::Dir { path, root, .. } = self else {
            return;
        };
        let current = root
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|dir| is_at(dir, path));
        if !current {
            *root.write().unwrap_or_else(PoisonError::into_inner) = open_root(path);
        }
    }

    /// The bytes of each key of a bucket or URL source, in order, at most `max_bytes` each,
    /// all at once; an item's error is its reason, ready to record. A bucket that fails
    /// other than by a missing object (down, refusing the credentials, timing out) is the
    /// outer error: not the files' fault, so not their result.
    pub fn fetch(
        &self,
        rt: &tokio::runtime::Runtime,
        keys: &[String],
        max_bytes: u64,
    ) -> anyhow::Result<Vec<Result<Vec<u8>, String>>> {
        match self {
            Source::Dir { .. } => Ok(keys.iter().map(|k| self.read(k, max_bytes)).collect()),
            Source::S3 { store, .. } => {
                let got: Vec<Result<Result<Vec<u8>, String>, object_store::Error>> = rt.block_on(
                    futures_util::stream::iter(keys.iter().map(|k| async move {
                        // `parse`, not `from`: the key as listed, not percent-encoded.
                        let path = match object_store::path::Path::parse(k.as_str()) {
                            Ok(p) => p,
                            Err(e) => return Ok(Err(format!("not a usable object key: {e}"))),
                        };
                        let got = match store.get(&path).await {
                            Ok(g) => g,
                            Err(object_store::Error::NotFound { .. }) => {
                                return Ok(Err("no such object".to_string()))
                            }
                            Err(e) => return Err(e),
                        };
                        if got.meta.size > max_bytes {
                            return Ok(Err(format!(
                                "{} bytes, over the limit of {max_bytes}",
                                got.meta.size
                            )));
                        }
                        got.bytes().await.map(|b| Ok(b.to_vec()))
                    }))
                    .buffered(keys.len().max(1))
                    .collect(),
                );
                got.into_iter()
                    .map(|r| r.context("reading from the bucket"))
                    .collect()
            }
            // A URL that fails is that URL's result: sites are many, and one being down says
            // nothing of the others.
            Source::Urls { fetcher, .. } => Ok(rt.block_on(
                futures_util::stream::iter(
                    keys.iter()
                        .map(|k| async move { fetcher.fetch(k).await.map_err(|e| e.to_string()) }),
                )
                .buffered(keys.len().max(1))
                .collect(),
            )),
        }
    }
}

/// A relative path as a `/`-separated key; `None` when not UTF-8.
fn rel_key(rel: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    parts.map(|p| p.join("/"))
}

/// Opens the item `key` of the tree at `root` (canonical), held open as `handle`: beneath
/// the handle in one call when the path has no link, else resolved by path and checked to
/// lie inside the tree.
fn open_item(
    root: &Path,
    handle: &RwLock<Option<File>>,
    beneath: &AtomicBool,
    key: &str,
) -> Result<File, String> {
    if key.contains('\0') {
        // Refused here: openat2 would take it for a kernel without openat2.
        return Err("the key contains a NUL byte".into());
    }
    let handle = handle.read().unwrap_or_else(PoisonError::into_inner);
    let usable = || handle.as_ref().filter(|_| beneath.load(Ordering::Relaxed));
    if let Some(dir) = usable() {
        match open_beneath(dir, Path::new(key)) {
            Beneath::Opened(f) => return f.map_err(|e| e.to_string()),
            Beneath::ByPath => {}
            Beneath::Unsupported => beneath.store(false, Ordering::Relaxed),
        }
    }
    // A link on the way (or no openat2): resolved here, and followed only when it ends
    // inside the tree.
    let path = std::fs::canonicalize(root.join(key)).map_err(|e| e.to_string())?;
    let inside = match path.strip_prefix(root) {
        Ok(p) if p.as_os_str().is_empty() => Path::new("."),
        Ok(p) => p,
        Err(_) => return Err("the file lies outside the scanned directory".into()),
    };
    if let Some(dir) = usable() {
        // The resolved path has no link left: opened beneath the root again, so a link
        // swapped into it since the check cannot lead out of the tree.
        match open_beneath(dir, inside) {
            Beneath::Opened(f) => return f.map_err(|e| e.to_string()),
            Beneath::ByPath => return Err("the path changed while it was opened".into()),
            Beneath::Unsupported => beneath.store(false, Ordering::Relaxed),
        }
    }
    open_nonblocking(&path).map_err(|e| e.to_string())
}

/// What [`open_beneath`] made of a path.
enum Beneath {
    /// Opened beneath the root, or failed for a reason of the file's own (missing, ...).
    Opened(std::io::Result<File>),
    /// The path passes a link or leaves the root: to be resolved by path.
    ByPath,
    /// The kernel refuses `openat2` (before Linux 5.6, or a seccomp filter).
    Unsupported,
}

/// Opens `key` relative to the tree's root with `openat2`, refusing every symbolic link and
/// any way out of the tree (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`): one system call, and no
/// window between checking the path and opening it. Resolving the path first
/// (`canonicalize`) cost a `readlink` per component, a tenth of a small-file scan's system
/// time.
fn open_beneath(root: &File, key: &Path) -> Beneath {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use rustix::io::Errno;
    let opened = rustix::fs::openat2(
        root,
        key,
        // Non-blocking: a FIFO put in the tree opens at once and is then refused as not a
        // regular file, instead of blocking the hashing thread.
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    );
    match opened {
        Ok(fd) => Beneath::Opened(Ok(File::from(fd))),
        // A link on the way, a way out of the root, or a race with a rename.
        Err(Errno::LOOP | Errno::XDEV | Errno::AGAIN) => Beneath::ByPath,
        // INVAL: flags this kernel does not know (a NUL in the key never gets here).
        Err(Errno::NOSYS | Errno::PERM | Errno::INVAL) => Beneath::Unsupported,
        Err(e) => Beneath::Opened(Err(e.into())),
    }
}

/// Opens a resolved path without following a final link and without blocking, where
/// [`open_beneath`] cannot be used.
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// The directory at `path` (canonical), opened `O_PATH` (search permission is enough), if
/// the kernel confirms the handle is that path: a folder above it swapped for a link between
/// resolving the path and opening it would otherwise root the scan somewhere else. `None`
/// (every item then resolved by path) when it cannot be opened or confirmed.
fn open_root(path: &Path) -> Option<File> {
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    is_at(&dir, path).then_some(dir)
}

/// Whether the open directory is the one at `path` now: the kernel's own name for it
/// (`/proc/self/fd`; a deleted one ends in " (deleted)", a renamed one has its new name).
fn is_at(dir: &File, path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())).is_ok_and(|p| p == path)
}

/// The bytes of an opened item: a regular file of at most `max_bytes`.
fn read_capped(f: File, max_bytes: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let meta = f.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > max_bytes {
        return Err(format!(
            "{} bytes, over the limit of {max_bytes}",
            meta.len()
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max_bytes {
        return Err(format!(
            "grew over the limit of {max_bytes} bytes while read"
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree with a file, a link to it, a link out of the tree, a folder reached through a
    /// link, and a FIFO; and a file outside the tree.
    fn tree() -> (tempfile::TempDir, Source) {
        let t = tempfile::tempdir().unwrap();
        let (root, outside) = (t.path().join("root"), t.path().join("outside"));
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("sub/a.bin"), b"inside").unwrap();
        std::fs::write(outside.join("secret.bin"), b"outside").unwrap();
        std::os::unix::fs::symlink(root.join("sub/a.bin"), root.join("link-in")).unwrap();
        std::os::unix::fs::symlink("sub", root.join("dir-link")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret.bin"), root.join("link-out")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
            0,
        )
        .unwrap();
        let source = Source::parse(root.to_str().unwrap(), &[], 1 << 20).unwrap();
        (t, source)
    }

    /// The canonical path of the scanned tree.
    fn root_of(s: &Source) -> PathBuf {
        match s {
            Source::Dir { path, .. } => path.clone(),
            _ => unreachable!(),
        }
    }

    /// `s.read(key)`, failing the test instead of hanging it if the read blocks (a FIFO
    /// opened without `O_NONBLOCK`).
    fn read_within(s: &Arc<Source>, key: &str) -> Result<Vec<u8>, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (s, key) = (s.clone(), key.to_string());
        std::thread::spawn(move || tx.send(s.read(&key, 100)));
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the read blocked")
    }

    /// The same reads whichever way items are opened: beneath the open root with `openat2`
    /// (this kernel), by path where the kernel refuses `openat2`, and by path with no root
    /// handle (no `/proc`).
    #[test]
    fn a_directory_source_reads_inside_its_tree_only() {
        let (_t, s) = tree();
        reads_inside_its_tree_only(s);
        let (_t, s) = tree();
        if let Source::Dir { beneath, .. } = &s {
            beneath.store(false, Ordering::Relaxed);
        }
        reads_inside_its_tree_only(s);
        let (_t, s) = tree();
        if let Source::Dir { root, .. } = &s {
            *root.write().unwrap() = None;
        }
        reads_inside_its_tree_only(s);
    }

    fn reads_inside_its_tree_only(s: Source) {
        let root = root_of(&s);
        std::os::unix::fs::symlink(&root, root.join("root-link")).unwrap();
        assert_eq!(s.read("sub/a.bin", 100).unwrap(), b"inside");
        assert_eq!(s.read("sub/../sub/a.bin", 100).unwrap(), b"inside");
        // Links are followed when they end inside the tree, whatever the component.
        assert_eq!(s.read("link-in", 100).unwrap(), b"inside");
        assert_eq!(s.read("dir-link/a.bin", 100).unwrap(), b"inside");
        assert_eq!(s.read("root-link/sub/a.bin", 100).unwrap(), b"inside");
        for out in [
            "link-out",
            "../outside/secret.bin",
            "sub/../../outside/secret.bin",
        ] {
            assert_eq!(
                s.read(out, 100).unwrap_err(),
                "the file lies outside the scanned directory",
                "{out}"
            );
        }
        // An absolute key names a file by itself; it is still held to the tree.
        let outside = root.parent().unwrap().join("outside/secret.bin");
        assert_eq!(
            s.read(outside.to_str().unwrap(), 100).unwrap_err(),
            "the file lies outside the scanned directory"
        );
        let absolute_inside = root.join("sub/a.bin");
        assert_eq!(
            s.read(absolute_inside.to_str().unwrap(), 100).unwrap(),
            b"inside"
        );
        // A FIFO is refused at once rather than blocking the reading thread.
        let s = Arc::new(s);
        assert_eq!(read_within(&s, "fifo").unwrap_err(), "not a regular file");
        for dir in ["sub", ".", "root-link"] {
            assert_eq!(s.read(dir, 100).unwrap_err(), "not a regular file", "{dir}");
        }
        assert!(s.read("missing", 100).unwrap_err().contains("No such file"));
        assert_eq!(
            s.read("sub/a.bin", 5).unwrap_err(),
            "6 bytes, over the limit of 5"
        );
        assert_eq!(
            s.read("nul\0byte", 100).unwrap_err(),
            "the key contains a NUL byte"
        );
    }

    /// Plain paths are opened beneath the open root in one call: after the tree is renamed,
    /// only that handle still reaches its files. At the next job the root is checked against
    /// the scan's path and opened again, so every worker reads what is at the path.
    #[test]
    fn plain_paths_are_opened_beneath_the_open_root_until_it_moves() {
        let (t, s) = tree();
        let root = root_of(&s);
        if open_root(&root).is_none()
            || !matches!(
                open_beneath(&open_root(&root).unwrap(), Path::new("sub/a.bin")),
                Beneath::Opened(Ok(_))
            )
        {
            // Before Linux 5.6, openat2 filtered, or no /proc: reads still work by path (the
            // test above covers both), only slower.
            let msg = "openat2 or /proc/self/fd is unavailable here; the one-call open is untested";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
            eprintln!("skipped: {msg}");
            return;
        }
        let moved = t.path().join("moved");
        std::fs::rename(&root, &moved).unwrap();
        // Through the handle: the path no longer exists.
        assert_eq!(s.read("sub/a.bin", 100).unwrap(), b"inside");
        // A link is resolved by path, and the absolute link now points at nothing.
        assert!(s.read("link-in", 100).unwrap_err().contains("No such file"));
        s.check_root();
        assert!(s
            .read("sub/a.bin", 100)
            .unwrap_err()
            .contains("No such file"));
        // A new tree at the path is the one read from the next job on.
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.bin"), b"new tree").unwrap();
        s.check_root();
        assert_eq!(s.read("sub/a.bin", 100).unwrap(), b"new tree");
        // A root reached through a link is not taken for the path it was asked at.
        std::os::unix::fs::symlink("sub", root.join("dir-link")).unwrap();
        assert!(open_root(&root.join("dir-link")).is_none());
        assert!(open_root(&root.join("sub")).is_some());
    }
}
