//! The snapshot format of both indexes: a versioned, checksummed stream of fixed-size records.
//!
//! | offset | bytes | field (integers little-endian) |
//! |-------:|------:|--------------------------------|
//! | 0      | 8     | magic `SGIDX\r\n\x1a` (the line-ending bytes expose text-mode mangling) |
//! | 8      | 4     | format version, [`VERSION`] |
//! | 12     | 4     | kind: 1 = PDQ, 2 = digest |
//! | 16     | 4     | key length: 32 for PDQ (the hash's big-endian bytes), 16/20/32 for MD5/SHA-1/SHA-256 |
//! | 20     | 4     | reserved, zero |
//! | 24     | 8     | record count |
//! | 32     | 4     | CRC-32 of bytes 0..32 |
//! | 36     | count × (key + 8) | records: key bytes, then the id as `u64` |
//! | end    | 4     | CRC-32 of every byte before it |
//!
//! Only entries are stored, not tables: tables are derived data, rebuilt on load in about a
//! second per 10 million PDQ hashes, and leaving them out halves the file and leaves no room
//! for a table that disagrees with its entries. The header checksum is verified before the
//! count is trusted, so a corrupt count cannot trigger a huge allocation; the trailing
//! checksum covers everything, so a flipped byte anywhere is reported; a short stream is
//! reported as truncated. CRC-32 (`crc32fast`, hardware-accelerated) guards against accidental
//! damage (disk, copy, transfer), which is the threat here: snapshots are written and read by
//! the same operator.

use std::io::{self, Read, Write};

use crate::Error;

/// Identifies a snapshot stream.
const MAGIC: [u8; 8] = *b"SGIDX\r\n\x1a";

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

const HEADER_BYTES: usize = 32;

/// Records read or written per I/O call: large enough that unbuffered readers and writers
/// are efficient, small enough to stay in cache.
const CHUNK_RECORDS: usize = 16 * 1024;

/// What a snapshot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Pdq = 1,
    Digest = 2,
}

impl Kind {
    fn name(code: u32) -> &'static str {
        match code {
            1 => "PDQ",
            2 => "digest",
            _ => "unknown",
        }
    }
}

fn truncated(what: &str) -> impl Fn(io::Error) -> Error + '_ {
    move |e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Error::SnapshotTruncated(format!("stream ended inside the {what}"))
        } else {
            Error::Io(e)
        }
    }
}

/// Writes a snapshot: header, then exactly `count` records, then [`Writer::finish`].
pub(crate) struct Writer<W: Write> {
    out: W,
    hasher: crc32fast::Hasher,
    buf: Vec<u8>,
    record_len: usize,
    declared: u64,
    written: u64,
}

impl<W: Write> Writer<W> {
    pub(crate) fn new(mut out: W, kind: Kind, key_len: u32, count: u64) -> Result<Self, Error> {
        let mut header = Vec::with_capacity(HEADER_BYTES + 4);
        header.extend_from_slice(&MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&(kind as u32).to_le_bytes());
        header.extend_from_slice(&key_len.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&count.to_le_bytes());
        let header_crc = crc32fast::hash(&header);
        header.extend_from_slice(&header_crc.to_le_bytes());
        out.write_all(&header)?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&header);
        let record_len = key_len as usize + 8;
        Ok(Writer {
            out,
            hasher,
            buf: Vec::with_capacity(CHUNK_RECORDS * record_len),
            record_len,
            declared: count,
            written: 0,
        })
    }

    pub(crate) fn record(&mut self, key: &[u8], id: u64) -> Result<(), Error> {
        debug_assert_eq!(key.len() + 8, self.record_len);
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(&id.to_le_bytes());
        self.written += 1;
        if self.buf.len() >= CHUNK_RECORDS * self.record_len {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> Result<(), Error> {
        self.hasher.update(&self.buf);
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<(), Error> {
        if self.written != self.declared {
            return Err(Error::Internal(format!(
                "snapshot declared {} records but {} were written",
                self.declared, self.written
            )));
        }
        self.flush_buf()?;
        let crc = self.hasher.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.flush()?;
        Ok(())
    }
}

/// Reads a snapshot: [`Reader::new`] checks the header, [`Reader::next_chunk`] yields the
/// records, [`Reader::finish`] checks the checksum. Records must not be used for anything
/// irreversible before `finish` succeeds.
pub(crate) struct Reader<R: Read> {
    input: R,
    hasher: crc32fast::Hasher,
    count: u64,
    remaining: u64,
    record_len: usize,
    buf: Vec<u8>,
}

impl<R: Read> Reader<R> {
    pub(crate) fn new(mut input: R, kind: Kind, key_len: u32) -> Result<Self, Error> {
        let mut header = [0u8; HEADER_BYTES + 4];
        input.read_exact(&mut header).map_err(truncated("header"))?;
        let u32_at =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        if header[..8] != MAGIC {
            return Err(Error::SnapshotCorrupt(
                "not a Safeguard index snapshot (bad magic bytes)".into(),
            ));
        }
        let stored = u32_at(HEADER_BYTES);
        let actual = crc32fast::hash(&header[..HEADER_BYTES]);
        if stored != actual {
            return Err(Error::SnapshotCorrupt(format!(
                "header checksum mismatch (stored {stored:08x}, computed {actual:08x})"
            )));
        }
        let version = u32_at(8);
        if version != VERSION {
            return Err(Error::SnapshotVersion {
                found: version,
                supported: VERSION,
            });
        }
        let (found_kind, found_len) = (u32_at(12), u32_at(16));
        if found_kind != kind as u32 || found_len != key_len {
            return Err(Error::SnapshotKind {
                expected: format!("{} keys of {key_len} bytes", Kind::name(kind as u32)),
                found: format!("{} keys of {found_len} bytes", Kind::name(found_kind)),
            });
        }
        let mut count_bytes = [0u8; 8];
        count_bytes.copy_from_slice(&header[24..32]);
        let count = u64::from_le_bytes(count_bytes);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&header);
        Ok(Reader {
            input,
            hasher,
            count,
            remaining: count,
            record_len: key_len as usize + 8,
            buf: Vec::new(),
        })
    }

    /// Number of records the header declares.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// The next records (a whole number of them), or `None` after the last.
    pub(crate) fn next_chunk(&mut self) -> Result<Option<&[u8]>, Error> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let records = self.remaining.min(CHUNK_RECORDS as u64) as usize;
        self.buf.resize(records * self.record_len, 0);
        self.input
            .read_exact(&mut self.buf)
            .map_err(truncated("records"))?;
        self.hasher.update(&self.buf);
        self.remaining -= records as u64;
        Ok(Some(&self.buf))
    }

    /// Checks the trailing checksum and that nothing follows it.
    pub(crate) fn finish(mut self) -> Result<(), Error> {
        if self.remaining != 0 {
            return Err(Error::Internal(format!(
                "{} snapshot records left unread",
                self.remaining
            )));
        }
        let mut crc = [0u8; 4];
        self.input
            .read_exact(&mut crc)
            .map_err(truncated("checksum"))?;
        let stored = u32::from_le_bytes(crc);
        let actual = self.hasher.finalize();
        if stored != actual {
            return Err(Error::SnapshotCorrupt(format!(
                "checksum mismatch (stored {stored:08x}, computed {actual:08x}): the data was damaged"
            )));
        }
        let mut extra = [0u8; 1];
        loop {
            match self.input.read(&mut extra) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    return Err(Error::SnapshotCorrupt(
                        "unexpected bytes after the checksum".into(),
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }
}
