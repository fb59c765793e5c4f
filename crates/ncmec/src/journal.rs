//! [`FileJournal`]: one JSON file per filing, replaced atomically.
//!
//! A record writes `<id>.json.tmp`, fsyncs it, renames it over `<id>.json` and fsyncs the
//! directory, so after a crash the file holds either the previous state or the new one, never
//! a mix, and a state `record` returned for survives a power cut. For tests and small
//! deployments; a deployment with a database keeps the same JSON in a row per filing.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::filer::{FilingState, Journal, STATE_VERSION};
use crate::{Error, Result};

/// Longest filing id, characters: ids become file names, and 128 fits every file system.
pub const MAX_FILING_ID_CHARS: usize = 128;

/// A journal in a directory, one `<filing id>.json` per filing.
#[derive(Debug, Clone)]
pub struct FileJournal {
    dir: PathBuf,
}

impl FileJournal {
    /// A journal in `dir`, created if missing.
    pub fn open(dir: impl Into<PathBuf>) -> Result<FileJournal> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| Error::Journal {
            filing_id: String::new(),
            message: format!("creating {}: {e}", dir.display()),
        })?;
        Ok(FileJournal { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, filing_id: &str) -> Result<PathBuf> {
        // The id becomes a file name: no separators, no dot files, nothing a shell or another
        // platform's file system would read differently.
        let ok = !filing_id.is_empty()
            && filing_id.chars().count() <= MAX_FILING_ID_CHARS
            && !filing_id.starts_with('.')
            && filing_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return Err(Error::invalid(
                "filing/id",
                format!(
                    "{filing_id:?}: use 1 to {MAX_FILING_ID_CHARS} of A-Z a-z 0-9 - _ . \
                     (not starting with a dot)"
                ),
            ));
        }
        Ok(self.dir.join(format!("{filing_id}.json")))
    }
}

impl Journal for FileJournal {
    fn load(&self, filing_id: &str) -> Result<Option<FilingState>> {
        let path = self.path(filing_id)?;
        let fail = |message: String| Error::Journal {
            filing_id: filing_id.to_string(),
            message,
        };
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(fail(format!("reading {}: {e}", path.display()))),
        };
        let state: FilingState = serde_json::from_slice(&bytes)
            .map_err(|e| fail(format!("{} is not a filing state: {e}", path.display())))?;
        if state.version != STATE_VERSION {
            return Err(fail(format!(
                "{} has state version {}; this build reads {STATE_VERSION}",
                path.display(),
                state.version
            )));
        }
        if state.filing_id != filing_id {
            return Err(fail(format!(
                "{} holds filing {:?}",
                path.display(),
                state.filing_id
            )));
        }
        Ok(Some(state))
    }

    fn record(&self, filing_id: &str, state: &FilingState) -> Result<()> {
        let path = self.path(filing_id)?;
        let tmp = self.dir.join(format!("{filing_id}.json.tmp"));
        let fail = |what: &str, e: std::io::Error| Error::Journal {
            filing_id: filing_id.to_string(),
            message: format!("{what}: {e}"),
        };
        let json = serde_json::to_vec_pretty(state).map_err(|e| Error::Journal {
            filing_id: filing_id.to_string(),
            message: format!("serialising: {e}"),
        })?;
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| fail("creating the temporary file", e))?;
        f.write_all(&json)
            .map_err(|e| fail("writing the temporary file", e))?;
        f.sync_all()
            .map_err(|e| fail("syncing the temporary file", e))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(|e| fail("renaming into place", e))?;
        // The rename is only durable once the directory entry is: fsync the directory.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| fail("syncing the directory", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filer::Phase;

    #[test]
    fn round_trips_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let j = FileJournal::open(dir.path()).unwrap();
        assert_eq!(j.load("f-1").unwrap(), None);
        let mut s = FilingState::new("f-1");
        j.record("f-1", &s).unwrap();
        s.phase = Phase::Finishing;
        j.record("f-1", &s).unwrap();
        assert_eq!(j.load("f-1").unwrap(), Some(s));
        assert!(!dir.path().join("f-1.json.tmp").exists());
    }

    #[test]
    fn refuses_ids_that_are_not_file_names() {
        let dir = tempfile::tempdir().unwrap();
        let j = FileJournal::open(dir.path()).unwrap();
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(j.load(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refuses_another_version() {
        let dir = tempfile::tempdir().unwrap();
        let j = FileJournal::open(dir.path()).unwrap();
        let mut s = FilingState::new("f");
        s.version = 99;
        j.record("f", &s).unwrap();
        assert!(j.load("f").unwrap_err().to_string().contains("version"));
    }
}
