//! `safeguard match`: every bank entry within a Hamming radius of each query PDQ hash.
//!
//! Everything is read and validated before anything is printed, so a malformed line anywhere
//! produces an error (exit 2) and no partial output.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rayon::prelude::*;
use safeguard_index::{Match, PdqIndex, DEFAULT_RADIUS, MAX_RADIUS};
use safeguard_pdq::PdqHash;

use crate::output::{Out, WriteResult};

/// Arguments of `safeguard match`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Output: one line per match, `<query_line>,<bank_id>,<distance>`, sorted \
by query line, then distance, then id. Line numbers in the output are 0-based, like the \
default bank ids; error messages give 1-based line numbers, as editors count. Blank lines are \
skipped (they still count in the numbering). A malformed line prints an error with its file \
and line and exits with status 2, printing no matches."
)]
pub struct MatchArgs {
    /// Bank file: one entry per line, `<pdq_hex>` or `<pdq_hex>,<id>`; the id is a decimal
    /// integer and defaults to the 0-based line number.
    #[arg(long, value_name = "BANKFILE")]
    pub bank: PathBuf,
    /// Largest Hamming distance that matches.
    #[arg(long, default_value_t = DEFAULT_RADIUS, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_RADIUS)))]
    pub radius: u32,
    /// Query hashes, one PDQ hex per line; standard input when absent or `-`.
    #[arg(value_name = "QUERYFILE")]
    pub queries: Option<PathBuf>,
}

/// A line that could not be parsed: file, 1-based line number and reason.
#[derive(Debug)]
struct BadLine {
    source: String,
    line: usize,
    why: String,
}

/// Calls `f(line_index, text)` for every non-blank line (0-based index, trimmed text).
fn for_each_line(
    input: impl Read,
    source: &str,
    mut f: impl FnMut(usize, &str) -> Result<(), String>,
) -> anyhow::Result<Result<(), BadLine>> {
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let mut buf = Vec::new();
    let mut index = 0usize;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(Ok(()));
        }
        let bad = |why: String| BadLine {
            source: source.to_string(),
            line: index + 1,
            why,
        };
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim(),
            Err(_) => return Ok(Err(bad("not valid UTF-8".into()))),
        };
        if !text.is_empty() {
            if let Err(why) = f(index, text) {
                return Ok(Err(bad(why)));
            }
        }
        index += 1;
    }
}

fn parse_hash(s: &str) -> Result<PdqHash, String> {
    PdqHash::from_hex(s.trim()).map_err(|e| e.to_string())
}

/// Parses a bank line: `<pdq_hex>` or `<pdq_hex>,<id>`.
fn parse_bank_line(index: usize, text: &str) -> Result<(u64, PdqHash), String> {
    let mut fields = text.split(',');
    // `split` yields at least one field.
    let hash = parse_hash(fields.next().unwrap_or_default())?;
    let id = match fields.next() {
        None => index as u64,
        Some(id) => {
            let id = id.trim();
            id.parse::<u64>().map_err(|_| {
                format!("id {id:?} is not a non-negative decimal integer below 2^64")
            })?
        }
    };
    if fields.next().is_some() {
        return Err("expected `<pdq_hex>` or `<pdq_hex>,<id>`, found more fields".into());
    }
    Ok((id, hash))
}

fn report(bad: &BadLine) -> ExitCode {
    eprintln!("safeguard match: {}:{}: {}", bad.source, bad.line, bad.why);
    ExitCode::from(2)
}

fn open(path: &Path) -> anyhow::Result<File> {
    File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Runs `safeguard match`.
pub fn run(args: &MatchArgs) -> anyhow::Result<ExitCode> {
    let bank_name = args.bank.display().to_string();
    let mut builder = PdqIndex::builder();
    let parsed = for_each_line(open(&args.bank)?, &bank_name, |index, text| {
        let (id, hash) = parse_bank_line(index, text)?;
        builder.push(id, &hash);
        Ok(())
    })?;
    if let Err(bad) = parsed {
        return Ok(report(&bad));
    }

    let mut queries: Vec<(usize, PdqHash)> = Vec::new();
    let mut collect = |index: usize, text: &str| {
        queries.push((index, parse_hash(text)?));
        Ok(())
    };
    let parsed = match args.queries.as_deref() {
        Some(path) if path != Path::new("-") => {
            for_each_line(open(path)?, &path.display().to_string(), &mut collect)?
        }
        _ => for_each_line(std::io::stdin().lock(), "<stdin>", &mut collect)?,
    };
    if let Err(bad) = parsed {
        return Ok(report(&bad));
    }

    let index = builder.build()?;
    let radius = args.radius;
    let results: Vec<Vec<Match>> = queries
        .par_iter()
        .map(|(_, q)| index.search(q, radius))
        .collect::<Result<_, _>>()?;

    // `search` orders each query's matches by distance, then id; queries are in line order.
    let mut out = Out::stdout();
    let mut line = String::new();
    for ((query_line, _), matches) in queries.iter().zip(&results) {
        for m in matches {
            line.clear();
            use std::fmt::Write as _;
            // Writing to a String cannot fail.
            let _ = write!(line, "{query_line},{},{}", m.id, m.distance);
            if out.line(&line)? == WriteResult::Closed {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

    #[test]
    fn bank_lines() {
        assert_eq!(parse_bank_line(7, H).unwrap().0, 7);
        assert_eq!(parse_bank_line(7, &format!("{H},42")).unwrap().0, 42);
        assert_eq!(parse_bank_line(7, &format!("{H} , 42")).unwrap().0, 42);
        assert!(parse_bank_line(0, &format!("{H},-1")).is_err());
        assert!(parse_bank_line(0, &format!("{H},1,2")).is_err());
        assert!(parse_bank_line(0, &format!("{H},")).is_err());
        assert!(parse_bank_line(0, "abc").is_err());
    }

    #[test]
    fn lines_are_numbered_with_blanks_counted() {
        let mut seen = Vec::new();
        let r = for_each_line(&b"a\n\n  \r\nb\r\nc"[..], "x", |i, t| {
            seen.push((i, t.to_string()));
            Ok(())
        })
        .unwrap();
        assert!(r.is_ok());
        assert_eq!(
            seen,
            vec![(0, "a".into()), (3, "b".into()), (4, "c".into())]
        );
        let r = for_each_line(&b"a\nbad\n"[..], "x", |_, t| {
            if t == "bad" {
                Err("nope".into())
            } else {
                Ok(())
            }
        })
        .unwrap();
        let bad = r.unwrap_err();
        assert_eq!((bad.line, bad.why.as_str()), (2, "nope"));
    }
}
