//! Buffered standard output that treats a closed pipe as a normal end (`safeguard hash | head`).

use std::io::{BufWriter, ErrorKind, Stdout, Write};
use std::path::Path;

use anyhow::Context;

/// Whether the reader is still there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteResult {
    /// Written (or buffered).
    Ok,
    /// The reader went away: stop producing output and exit 0, as `head` expects.
    Closed,
}

/// Line-oriented buffered stdout.
#[derive(Debug)]
pub struct Out {
    w: BufWriter<Stdout>,
}

impl Out {
    /// Buffered standard output.
    pub fn stdout() -> Out {
        Out {
            w: BufWriter::with_capacity(64 * 1024, std::io::stdout()),
        }
    }

    /// Writes one line. Any write error other than a closed pipe (a full disk, say) is
    /// returned: output must never be lost silently.
    pub fn line(&mut self, s: &str) -> std::io::Result<WriteResult> {
        check(writeln!(self.w, "{s}"))
    }

    /// Flushes what is buffered.
    pub fn flush(&mut self) -> std::io::Result<WriteResult> {
        check(self.w.flush())
    }
}

fn check(r: std::io::Result<()>) -> std::io::Result<WriteResult> {
    match r {
        Ok(()) => Ok(WriteResult::Ok),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(WriteResult::Closed),
        Err(e) => Err(e),
    }
}

/// A file for `path` written under a temporary name beside it, with owner-only permissions
/// (exports hold hash lists and audit entries). [`commit_staged`] renames it onto `path` once
/// it is complete; dropped before that, it is removed. So a failed export never leaves a
/// partial file under the final name, nor truncates an earlier good one.
pub fn staged_file(path: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(".safeguard-")
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))
}

/// Makes a [`staged_file`] durable and gives it its final name.
pub fn commit_staged(staged: tempfile::NamedTempFile, path: &Path) -> anyhow::Result<()> {
    staged
        .as_file()
        .sync_all()
        .with_context(|| format!("cannot write {}", path.display()))?;
    staged
        .persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
