//! Buffered standard output that treats a closed pipe as a normal end (`safeguard hash | head`).

use std::io::{BufWriter, ErrorKind, Stdout, Write};

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
