//! The export file, and verifying one offline.
//!
//! # Format
//!
//! JSON Lines: UTF-8, one JSON object per line, each line ended by `\n`, keys in the order
//! shown. The first line is the header:
//!
//! ```text
//! {"format":"safeguard-audit-export","version":1}
//! ```
//!
//! Then the entries in order, one per line, each with the leaf hash the log recorded for it
//! and the root of the tree just after it (both 64 lowercase hex characters):
//!
//! ```text
//! {"seq":0,"at_ms":1764770000000,"actor":"alice","action":"login","object":"acct-1",
//!  "detail":"","leaf":"<hex>","root":"<hex>"}
//! ```
//!
//! (one line in the file; wrapped here). Signed tree heads come between the entries, each
//! right after the entry that brought the tree to its size, sizes never decreasing:
//!
//! ```text
//! {"sth":{"size":1,"timestamp_ms":1764770000000,"root":"<hex>","signature":"<128 hex>"}}
//! ```
//!
//! The last line must be a head whose size is the number of entries: entries that no
//! signature covers are refused, not trusted (see [`Tamper::Unsigned`]). An empty log is the
//! header and one head of size 0.
//!
//! # What verification proves, and how it names the first bad entry
//!
//! Only the heads are authenticated; the `leaf` and `root` fields are unsigned *locators*
//! that anyone could rewrite. [`verify_export`] rebuilds the tree from the entries' own
//! fields, reads the whole file and collects every discrepancy, then reports the first
//! altered entry (the rule is after the list):
//!
//! - an entry whose `seq` is not its position: an entry before it was deleted, or this one
//!   was inserted or moved ([`Tamper::Sequence`]);
//! - an entry whose fields no longer hash to its recorded leaf: edited
//!   ([`Tamper::Leaf`]);
//! - an entry after which the root differs from the recorded one: entries up to it were
//!   inserted, deleted or moved with their locators recomputed in part ([`Tamper::Root`]);
//! - a head whose size is past the entries read so far: entries are missing
//!   ([`Tamper::Missing`]);
//! - a validly signed head whose root is not the rebuilt root at its size: some entry after
//!   the last matching head was changed ([`Tamper::Head`]); this one holds even against a
//!   forger who recomputed every locator, since they cannot sign;
//! - entries after the last head ([`Tamper::Unsigned`]).
//!
//! The entry named is the lowest index among the locator findings (all but
//! [`Tamper::Head`]), unless the first failing head lies wholly before it: then the altered
//! entry is somewhere between the last matching head and that head, and the error names
//! the start of that range. A locator finding inside the range pins it down, since the
//! entries before it passed every check.
//!
//! Against someone editing the file (or the rows it was made from) without recomputing the
//! recorded leaf hashes, the locators name the altered entry exactly. Against a forger who
//! recomputes them, the signed heads still catch the change, and name it exactly when the
//! log signs a head after every append; with sparser heads the error gives the range between
//! the last matching head and the first failing one. That is the precision the log pays
//! for: one signature (64 bytes, tens of microseconds) per head.
//!
//! A file cut short at a head is a valid export of an earlier state of the log: offline, a
//! prefix of an honest log is itself honest. Compare [`VerifiedLog::latest_head`] with the
//! newest head you hold from elsewhere, or pass that head to [`VerifiedLog::check_head`].

use std::io::{BufRead, BufReader, Read, Write};

use serde::{Deserialize, Serialize};

use crate::entry::Entry;
use crate::head::{SignedTreeHead, TreeHead, VerifyingKey, SIGNATURE_LEN};
use crate::merkle::{Hash, Tree, HASH_LEN};
use crate::Error;

/// The header's `format` value.
pub const EXPORT_FORMAT: &str = "safeguard-audit-export";
/// The header's `version` value for the format described in this module.
pub const EXPORT_VERSION: u32 = 1;
/// Longest line the verifier reads, bytes. An entry's fields are bounded (at most about
/// 1.6 KiB, doubled at worst by JSON escaping, plus two hashes); a longer line is not an
/// entry, and the cap keeps a hostile file from filling memory with one line.
pub const MAX_LINE_LEN: usize = 16 * 1024;

/// What gave away an altered export; see the module docs for what each means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tamper {
    /// The entry's `seq` is not its position.
    Sequence {
        /// The `seq` the line carries.
        found: u64,
    },
    /// The entry's fields do not hash to the leaf hash recorded beside them.
    Leaf,
    /// The root after this entry is not the one recorded beside it.
    Root,
    /// A signed head covers entries the file does not have at that point.
    Missing {
        /// The head's size.
        head_size: u64,
    },
    /// A validly signed head does not match the entries: the first altered entry is at or
    /// after the reported index and before `head_size`.
    Head {
        /// The size of the first head that did not match.
        head_size: u64,
    },
    /// Entries after the last signed head, which no signature covers.
    Unsigned {
        /// How many entries the file holds.
        entries: u64,
    },
}

impl std::fmt::Display for Tamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tamper::Sequence { found } => write!(
                f,
                "its seq is {found}: an entry before it was deleted, or it was inserted or moved"
            ),
            Tamper::Leaf => f.write_str("its fields do not match its recorded leaf hash (edited)"),
            Tamper::Root => f.write_str(
                "the root after it is not the recorded one (entries inserted, deleted or moved)",
            ),
            Tamper::Missing { head_size } => write!(
                f,
                "the signed head of size {head_size} covers it, but the file does not have it \
                 (deleted)"
            ),
            Tamper::Head { head_size } => write!(
                f,
                "the signed head of size {head_size} does not match: an entry from this one up \
                 to {} was altered",
                head_size.saturating_sub(1)
            ),
            Tamper::Unsigned { entries } => write!(
                f,
                "no signed head covers it ({entries} entries; the last head must cover all: \
                 entries added, or the final head removed)"
            ),
        }
    }
}

#[derive(Serialize)]
struct HeaderOut<'a> {
    format: &'a str,
    version: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderIn {
    format: String,
    version: u32,
}

#[derive(Serialize)]
struct EntryOut<'a> {
    seq: u64,
    at_ms: i64,
    actor: &'a str,
    action: &'a str,
    object: &'a str,
    detail: &'a str,
    leaf: String,
    root: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryIn {
    seq: u64,
    at_ms: i64,
    actor: String,
    action: String,
    object: String,
    detail: String,
    leaf: String,
    root: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadLine {
    sth: HeadJson,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadJson {
    size: u64,
    timestamp_ms: i64,
    root: String,
    signature: String,
}

/// Writes an export, line by line, to any [`Write`]: the store streams its rows through it.
#[derive(Debug)]
pub struct ExportWriter<W: Write> {
    out: W,
    /// The tree of the leaf hashes written so far, for each line's running root.
    tree: Tree,
    /// Size of the last head written; heads must not go backwards.
    last_head: Option<u64>,
}

impl<W: Write> ExportWriter<W> {
    /// Starts an export: writes the header line.
    pub fn new(mut out: W) -> Result<ExportWriter<W>, Error> {
        write_line(
            &mut out,
            &HeaderOut {
                format: EXPORT_FORMAT,
                version: EXPORT_VERSION,
            },
        )?;
        Ok(ExportWriter {
            out,
            tree: Tree::new(),
            last_head: None,
        })
    }

    /// Writes the next entry with `recorded_leaf`, the leaf hash the store kept for it when it
    /// was appended. Pass the kept hash rather than [`Entry::leaf_hash`] afresh: then a row
    /// edited in the database after the fact shows up as exactly that entry.
    pub fn entry(&mut self, entry: &Entry, recorded_leaf: &Hash) -> Result<(), Error> {
        self.tree.push(*recorded_leaf);
        let line = EntryOut {
            seq: entry.seq(),
            at_ms: entry.at_ms(),
            actor: entry.actor(),
            action: entry.action(),
            object: entry.object(),
            detail: entry.detail(),
            leaf: hex::encode(recorded_leaf),
            root: hex::encode(self.tree.current_root()),
        };
        write_line(&mut self.out, &line)
    }

    /// Writes a signed head. Its size must not exceed the entries written so far, nor be
    /// below the last head's: write each head right after the entry that completes it.
    pub fn head(&mut self, sth: &SignedTreeHead) -> Result<(), Error> {
        let size = sth.head.size;
        if size > self.tree.size() {
            return Err(Error::OutOfRange {
                what: "signed head size (write the entries it covers first)",
                value: size,
                limit: self.tree.size(),
            });
        }
        if let Some(last) = self.last_head.filter(|&last| size < last) {
            return Err(Error::OutOfRange {
                what: "signed head size (heads must not go backwards)",
                value: size,
                limit: last,
            });
        }
        self.last_head = Some(size);
        write_line(
            &mut self.out,
            &HeadLine {
                sth: HeadJson {
                    size,
                    timestamp_ms: sth.head.timestamp_ms,
                    root: hex::encode(sth.head.root),
                    signature: hex::encode(sth.signature),
                },
            },
        )
    }

    /// Flushes and hands back the writer. The export verifies only if the last thing
    /// written was a head covering every entry.
    pub fn finish(mut self) -> Result<W, Error> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn write_line<W: Write, T: Serialize>(out: &mut W, value: &T) -> Result<(), Error> {
    // Serialising these plain structs of strings and integers cannot fail.
    let mut line = serde_json::to_vec(value).expect("export lines serialise");
    line.push(b'\n');
    out.write_all(&line)?;
    Ok(())
}

/// Writes a whole export: `entries` in order (their leaf hashes computed afresh) with each of
/// `heads` placed after the entry that completes it. `heads` must be in non-decreasing size
/// order and none larger than `entries.len()`.
pub fn write_export<W: Write>(
    out: W,
    entries: &[Entry],
    heads: &[SignedTreeHead],
) -> Result<W, Error> {
    let mut writer = ExportWriter::new(out)?;
    let mut heads = heads.iter().peekable();
    while let Some(h) = heads.next_if(|h| h.head.size == 0) {
        writer.head(h)?;
    }
    for (i, entry) in entries.iter().enumerate() {
        writer.entry(entry, &entry.leaf_hash())?;
        let size = i as u64 + 1;
        while let Some(h) = heads.next_if(|h| h.head.size <= size) {
            writer.head(h)?;
        }
    }
    if let Some(h) = heads.next() {
        writer.head(h)?;
    }
    writer.finish()
}

/// An export that verified: its entries, its heads and the rebuilt tree.
#[derive(Debug, Clone)]
pub struct VerifiedLog {
    entries: Vec<Entry>,
    heads: Vec<SignedTreeHead>,
    tree: Tree,
}

impl VerifiedLog {
    /// The entries, in order (`entries()[i].seq() == i`).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Every signed head in the file, in order; all verified and all matching the entries.
    pub fn heads(&self) -> &[SignedTreeHead] {
        &self.heads
    }

    /// The newest head: it covers every entry.
    pub fn latest_head(&self) -> &SignedTreeHead {
        // `verify_export` refuses a file whose last line is not a head covering everything.
        self.heads.last().expect("a verified export has a head")
    }

    /// The tree rebuilt from the entries, for proofs.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Number of entries.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// Checks a head obtained elsewhere (from an auditor's records, say) against this log:
    /// its signature under `key`, then that the export reaches its size
    /// ([`Error::Truncated`] if not) and has its root at that size
    /// ([`Error::HeadMismatch`] if not).
    pub fn check_head(&self, sth: &SignedTreeHead, key: &VerifyingKey) -> Result<(), Error> {
        sth.verify(key)?;
        if sth.head.size > self.size() {
            return Err(Error::Truncated {
                size: self.size(),
                expected: sth.head.size,
            });
        }
        if self.tree.root(sth.head.size)? != sth.head.root {
            return Err(Error::HeadMismatch {
                size: sth.head.size,
            });
        }
        Ok(())
    }
}

/// The earliest discrepancy found so far.
struct Finding {
    index: u64,
    line: u64,
    reason: Tamper,
}

fn note(finding: &mut Option<Finding>, index: u64, line: u64, reason: Tamper) {
    if finding.as_ref().is_none_or(|f| index < f.index) {
        *finding = Some(Finding {
            index,
            line,
            reason,
        });
    }
}

fn parse_hash(text: &str, line: u64, what: &str) -> Result<Hash, Error> {
    let mut out = [0u8; HASH_LEN];
    hex::decode_to_slice(text, &mut out).map_err(|_| Error::Malformed {
        line,
        reason: format!("{what} is not {} hex characters", HASH_LEN * 2),
    })?;
    Ok(out)
}

/// Verifies an export offline against the log's public key; see the module docs for the
/// format and what is checked. On success, every entry is covered by a head signed under
/// `key`. A file altered in any way fails: [`Error::Tampered`] names the first altered entry
/// (its index, which is also the `seq` it should have); [`Error::HeadSignature`] a head that
/// `key` did not sign (also what a wrong key gives); [`Error::Malformed`] a line that is not
/// in the format.
pub fn verify_export<R: Read>(reader: R, key: &VerifyingKey) -> Result<VerifiedLog, Error> {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut tree = Tree::new();
    let mut entries = Vec::new();
    let mut heads: Vec<SignedTreeHead> = Vec::new();
    let mut finding: Option<Finding> = None;
    // Size of the last head that matched the entries, while none has failed yet.
    let mut matched_up_to = 0u64;
    // The first head that did not match: the first altered entry is at or after
    // `matched_up_to` and before its size.
    let mut head_failed: Option<Finding> = None;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_LEN as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let line = line_no;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > MAX_LINE_LEN {
            return Err(Error::Malformed {
                line,
                reason: format!("longer than {MAX_LINE_LEN} bytes"),
            });
        }
        let malformed = |e: serde_json::Error| Error::Malformed {
            line,
            reason: e.to_string(),
        };
        if line == 1 {
            let header: HeaderIn = serde_json::from_slice(&buf).map_err(malformed)?;
            if header.format != EXPORT_FORMAT || header.version != EXPORT_VERSION {
                return Err(Error::Malformed {
                    line,
                    reason: format!(
                        "not a {EXPORT_FORMAT} version {EXPORT_VERSION} file (format {:?}, \
                         version {})",
                        header.format, header.version
                    ),
                });
            }
            continue;
        }
        let value: serde_json::Value = serde_json::from_slice(&buf).map_err(malformed)?;
        if value.get("sth").is_some() {
            let HeadLine { sth } = serde_json::from_value(value).map_err(malformed)?;
            let mut signature = [0u8; SIGNATURE_LEN];
            hex::decode_to_slice(&sth.signature, &mut signature).map_err(|_| Error::Malformed {
                line,
                reason: format!("signature is not {} hex characters", SIGNATURE_LEN * 2),
            })?;
            let signed = SignedTreeHead {
                head: TreeHead {
                    size: sth.size,
                    root: parse_hash(&sth.root, line, "root")?,
                    timestamp_ms: sth.timestamp_ms,
                },
                signature,
            };
            // A head the key did not sign vouches for nothing, and the likeliest cause is
            // the wrong key: stop here rather than report entries as altered.
            signed.verify(key).map_err(|_| Error::HeadSignature {
                line,
                size: sth.size,
            })?;
            if let Some(last) = heads.last().filter(|l| sth.size < l.head.size) {
                return Err(Error::Malformed {
                    line,
                    reason: format!(
                        "head of size {} after a head of size {}: heads must not go backwards",
                        sth.size, last.head.size
                    ),
                });
            }
            let matches = if sth.size > tree.size() {
                note(
                    &mut finding,
                    tree.size(),
                    line,
                    Tamper::Missing {
                        head_size: sth.size,
                    },
                );
                false
            } else {
                tree.root(sth.size)? == signed.head.root
            };
            if head_failed.is_none() {
                if matches {
                    matched_up_to = sth.size;
                } else {
                    head_failed = Some(Finding {
                        index: matched_up_to,
                        line,
                        reason: Tamper::Head {
                            head_size: sth.size,
                        },
                    });
                }
            }
            heads.push(signed);
        } else {
            let e: EntryIn = serde_json::from_value(value).map_err(malformed)?;
            let entry = Entry::new(e.seq, e.at_ms, e.actor, &e.action, e.object, e.detail)
                .map_err(|err| Error::Malformed {
                    line,
                    reason: err.to_string(),
                })?;
            let recorded_leaf = parse_hash(&e.leaf, line, "leaf")?;
            let recorded_root = parse_hash(&e.root, line, "root")?;
            let index = tree.size();
            if entry.seq() != index {
                note(
                    &mut finding,
                    index,
                    line,
                    Tamper::Sequence { found: entry.seq() },
                );
            }
            let leaf = entry.leaf_hash();
            if leaf != recorded_leaf {
                note(&mut finding, index, line, Tamper::Leaf);
            }
            tree.push(leaf);
            if tree.current_root() != recorded_root {
                note(&mut finding, index, line, Tamper::Root);
            }
            entries.push(entry);
        }
    }
    if line_no == 0 {
        return Err(Error::Malformed {
            line: 1,
            reason: "empty file: no header".into(),
        });
    }
    let covered = heads.last().map_or(0, |h| h.head.size);
    if covered < tree.size() || heads.is_empty() {
        note(
            &mut finding,
            covered,
            line_no,
            Tamper::Unsigned {
                entries: tree.size(),
            },
        );
    }
    // A failed head bounds the first altered entry to a range; a locator finding inside
    // (or before) that range pins it down, since the entries before it passed every check.
    let finding = match (finding, head_failed) {
        (Some(f), Some(h)) => match h.reason {
            Tamper::Head { head_size } if f.index >= head_size => Some(h),
            _ => Some(f),
        },
        (f, h) => f.or(h),
    };
    if let Some(f) = finding {
        return Err(Error::Tampered {
            index: f.index,
            line: f.line,
            reason: f.reason,
        });
    }
    Ok(VerifiedLog {
        entries,
        heads,
        tree,
    })
}
