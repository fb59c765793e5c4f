//! `safeguard bench seed`: fills a data directory with a bank of random PDQ hashes (straight
//! into the store, in large transactions) and writes lookup queries for a load generator.
//! `scripts/bench-server.sh` uses it to measure restart time and lookup load at 10M hashes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use safeguard_store::{BankKind, NewBank, NewContent, Store};

use crate::cmd_serve::open_store;

/// Arguments of `safeguard bench seed`.
#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// Data directory to fill (created if missing).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Random PDQ hashes to add.
    #[arg(long)]
    pub hashes: u64,
    /// Bank to add them to (created if missing).
    #[arg(long, default_value = "BENCH_BANK")]
    pub bank: String,
    /// Where to write lookup queries (one PDQ hex per line): half near bank entries (up to
    /// 16 bits off), half random.
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// How many queries to write.
    #[arg(long, default_value_t = 100_000)]
    pub query_count: u64,
    /// Seed of the generator (the same seed gives the same bank and queries).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Items per transaction: large enough to amortise the commit, small enough to bound memory.
const BATCH: u64 = 100_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64: independent streams per index, so entry i can be regenerated for queries.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The `i`th random hash of a seeded sequence (also the backfill benchmark's bank).
pub(crate) fn entry(seed: u64, i: u64) -> [u8; 32] {
    let mut r = Rng(seed ^ i.wrapping_mul(0xa076_1d64_78bd_642f));
    let mut h = [0u8; 32];
    for c in h.chunks_exact_mut(8) {
        c.copy_from_slice(&r.next().to_le_bytes());
    }
    h
}

/// Runs `safeguard bench seed`.
pub fn run(args: &SeedArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(&args.data_dir)?;
    let bank = match store.bank_by_name(&args.bank)? {
        Some(b) => b,
        None => store.create_bank(&NewBank {
            name: args.bank.clone(),
            enabled: true,
            enabled_ratio: 1.0,
            pdq_threshold: 31,
            kind: BankKind::Standard,
            tags: Vec::new(),
            classification: None,
        })?,
    };
    let start = Instant::now();
    let mut done = 0;
    while done < args.hashes {
        let n = BATCH.min(args.hashes - done);
        let items: Vec<NewContent> = (done..done + n)
            .map(|i| NewContent {
                signals: vec![("pdq".into(), hex::encode(entry(args.seed, i)))],
                ..NewContent::default()
            })
            .collect();
        store.add_contents(bank.id, &items)?;
        done += n;
        eprint!(
            "\r{done} hashes, {:.0}/s",
            done as f64 / start.elapsed().as_secs_f64()
        );
    }
    eprintln!();
    if let Some(q) = &args.queries {
        let mut out = std::io::BufWriter::new(std::fs::File::create(q)?);
        let mut r = Rng(args.seed ^ 0x5eed);
        for k in 0..args.query_count {
            let h = if k % 2 == 0 && args.hashes > 0 {
                let mut h = entry(args.seed, r.next() % args.hashes);
                for _ in 0..(r.next() % 17) {
                    let bit = (r.next() % 256) as usize;
                    h[bit / 8] ^= 1 << (bit % 8);
                }
                h
            } else {
                let mut h = [0u8; 32];
                for c in h.chunks_exact_mut(8) {
                    c.copy_from_slice(&r.next().to_le_bytes());
                }
                h
            };
            writeln!(out, "{}", hex::encode(h))?;
        }
        out.flush()?;
    }
    println!(
        "{} hashes in bank {} ({:.1} s)",
        args.hashes,
        args.bank,
        start.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
