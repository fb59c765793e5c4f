//! The filesystem blob store, the default: one file per blob under a directory (by default
//! `<data_dir>/vault`), fanned out by the key's leading segments.
//!
//! A blob is written to a temporary file beside its final name (a name starting with `.`,
//! which no [`BlobKey`] can have), flushed to disk, renamed into place, and the directory is
//! flushed too, so after `put` returns the blob survives a power cut, and a crash before that
//! leaves at most a temporary file, never a half-written blob under a real name. Files are
//! 0600 and directories 0700: the blobs are ciphertext, but their sizes and times are still
//! nobody else's business.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::blob::{BlobKey, BlobStore};
use crate::envelope::BLOB_HEADER_LEN;
use crate::{blocking, random, Error, Result, MAX_OBJECT_SIZE};

/// Prefix of temporary files; [`BlobKey`] segments cannot start with a dot, so a temporary
/// file never has a blob's name.
const TMP_PREFIX: &str = ".tmp-";
/// Largest file `get` reads, bytes: the largest object plus the blob's header and tag. A
/// larger file is not one the vault wrote.
const MAX_BLOB_FILE: u64 =
    MAX_OBJECT_SIZE + BLOB_HEADER_LEN as u64 + safeguard_seal::TAG_LEN as u64;

/// Blobs as files under a root directory.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    /// The root; every blob path is this joined with a validated [`BlobKey`], so it is always
    /// inside.
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` and its missing parents with mode 0700.
fn create_private_dir(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(io(dir))
}

/// Flushes a directory's entries (a new or removed name in it) to disk.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    // Elsewhere a directory cannot be opened to flush; the rename is as durable as the
    // platform makes it.
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

impl FsBlobStore {
    /// A store under `root`, created (0700) if missing.
    pub fn new(root: impl Into<PathBuf>) -> Result<FsBlobStore> {
        let root = root.into();
        create_private_dir(&root)?;
        Ok(FsBlobStore { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of `key`. Inside the root: a key has no `..`, no leading `/`, no dot files.
    pub fn path_of(&self, key: &BlobKey) -> PathBuf {
        self.root.join(key.as_str())
    }
}

fn put_blocking(root: &Path, path: &Path, bytes: &[u8], key: &BlobKey) -> Result<()> {
    // The parent is inside the root: `path` is the root joined with a key of at least one
    // segment.
    let dir = path.parent().unwrap_or(root);
    // The directories this put creates are new names in their parents: remember the first
    // that exists, so the chain below it is flushed.
    let mut existing = dir;
    while !existing.exists() && existing != root {
        existing = existing.parent().unwrap_or(root);
    }
    create_private_dir(dir)?;
    if path.symlink_metadata().is_ok() {
        return Err(Error::AlreadyExists {
            key: key.to_string(),
        });
    }
    let mut r = [0u8; 8];
    random(&mut r)?;
    let tmp = dir.join(format!("{TMP_PREFIX}{}", hex::encode(r)));
    let write = || -> Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        // The existence check above is not atomic with this rename; keys are 128 random bits
        // and only the vault writes here, so two puts never race for one name.
        std::fs::rename(&tmp, path).map_err(io(path))
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)?;
    let mut d = dir;
    while d != existing {
        d = d.parent().unwrap_or(existing);
        sync_dir(d)?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<()> {
        let root = self.root.clone();
        let path = self.path_of(key);
        let key = key.clone();
        blocking(move || put_blocking(&root, &path, &bytes, &key)).await
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes> {
        let path = self.path_of(key);
        let key = key.clone();
        blocking(move || {
            let f = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::NotFound {
                        key: key.to_string(),
                    })
                }
                Err(e) => return Err(io(&path)(e)),
            };
            let len = f.metadata().map_err(io(&path))?.len();
            if len > MAX_BLOB_FILE {
                return Err(Error::Corrupt {
                    object_id: key.to_string(),
                    reason: format!("blob file of {len} bytes is larger than any object"),
                });
            }
            let mut buf = Vec::with_capacity(len as usize);
            std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_BLOB_FILE), &mut buf)
                .map_err(io(&path))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn delete(&self, key: &BlobKey) -> Result<()> {
        let path = self.path_of(key);
        blocking(move || {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io(&path)(e)),
            }
            // Flushed so that a destroyed blob stays destroyed after a power cut.
            sync_dir(path.parent().unwrap_or(&path))
        })
        .await
    }

    async fn exists(&self, key: &BlobKey) -> Result<bool> {
        let path = self.path_of(key);
        blocking(move || match path.symlink_metadata() {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(&path)(e)),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_are_private_and_no_temporary_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path().join("vault")).unwrap();
        let key = BlobKey::random().unwrap();
        store.put(&key, Bytes::from_static(b"ct")).await.unwrap();
        let path = store.path_of(&key);
        assert!(path.starts_with(store.root()));
        assert_eq!(std::fs::read(&path).unwrap(), b"ct");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
            assert_eq!(mode(store.root()), 0o700);
        }
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [path.file_name().unwrap()]);
    }

    #[tokio::test]
    async fn oversized_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path()).unwrap();
        let key = BlobKey::parse("big").unwrap();
        let f = std::fs::File::create(store.path_of(&key)).unwrap();
        // Sparse: no disk is used.
        f.set_len(MAX_BLOB_FILE + 1).unwrap();
        assert!(matches!(store.get(&key).await, Err(Error::Corrupt { .. })));
    }
}
