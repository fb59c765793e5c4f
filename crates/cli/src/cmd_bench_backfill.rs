//! `safeguard bench backfill`: a backfill scan's throughput against `safeguard hash` on the
//! same folder and cores, both run as this binary's own commands (the same build, the same
//! sandboxed decoding), taking turns so that a burst of load on a shared machine hits both.
//!
//! The scan does everything a real one does: it plans jobs in a fresh SQLite store, leases
//! them, hashes, computes digests, looks every item up in the banks, and records every
//! result. The banks are empty unless `--bank-hashes` adds random PDQ hashes to look up
//! against, so the lookup cost at scale is in the number.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// Arguments of `safeguard bench backfill`.
#[derive(Debug, clap::Args)]
pub struct BenchBackfillArgs {
    /// Folder of files (e.g. `bench-corpus` from scripts/bench-hash.sh).
    pub dir: PathBuf,
    /// Rounds; the best time of each side counts.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Random PDQ hashes to put in a bank first (0: no bank).
    #[arg(long, default_value_t = 0)]
    pub bank_hashes: u64,
    /// Worker threads of both sides (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
}

fn timed(cmd: &mut Command) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    let took = start.elapsed();
    anyhow::ensure!(
        out.status.success() || out.status.code() == Some(1),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(took)
}

/// Writes `n` random PDQ hashes, one per line.
fn random_list(path: &Path, n: u64) -> anyhow::Result<()> {
    let mut text = String::with_capacity(n as usize * 65);
    for i in 0..n {
        text.push_str(&hex::encode(crate::cmd_bench_server::entry(
            0x2545_F491_4F6C_DD1D,
            i,
        )));
        text.push('\n');
    }
    std::fs::write(path, text)?;
    Ok(())
}

/// Runs `safeguard bench backfill`.
pub fn run(args: &BenchBackfillArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let files = crate::walk::expand(std::slice::from_ref(&args.dir)).len();
    anyhow::ensure!(files > 0, "{} holds no files", args.dir.display());
    let work = tempfile::tempdir()?;
    let threads: Vec<String> = args
        .threads
        .map(|n| vec!["-j".to_string(), n.to_string()])
        .unwrap_or_default();
    let base = |data: &Path| {
        let mut c = Command::new(&exe);
        c.env_remove("SAFEGUARD_STORE")
            .env("SAFEGUARD_DATA_DIR", data);
        c
    };
    let (mut best_hash, mut best_scan) = (Duration::MAX, Duration::MAX);
    for round in 0..args.repeat.max(1) {
        let data = work.path().join(format!("data-{round}"));
        let target: Vec<String> = if args.bank_hashes > 0 {
            let list = work.path().join("bank.txt");
            if !list.exists() {
                random_list(&list, args.bank_hashes)?;
            }
            let mut import = base(&data);
            import.args([
                "bank", "import", "--bank", "BENCH", "--create", "--format", "plain",
            ]);
            import.args(["--type", "pdq"]).arg(&list);
            timed(&mut import)?;
            vec!["--bank".into(), "BENCH".into()]
        } else {
            vec!["--all".into()]
        };
        let mut hash = base(&data);
        hash.args(["hash", "--json", "--no-progress"])
            .args(&threads)
            .arg(&args.dir);
        let h = timed(&mut hash)?;
        let mut scan = base(&data);
        scan.arg("scan")
            .arg(&args.dir)
            .args(&target)
            .args(["--no-progress"])
            .args(&threads);
        let s = timed(&mut scan)?;
        eprintln!(
            "round {}: hash {:.3} s, scan {:.3} s",
            round + 1,
            h.as_secs_f64(),
            s.as_secs_f64()
        );
        best_hash = best_hash.min(h);
        best_scan = best_scan.min(s);
        std::fs::remove_dir_all(&data).ok();
    }
    let rate = |d: Duration| files as f64 / d.as_secs_f64();
    println!("files: {files} in {}", args.dir.display());
    println!(
        "safeguard hash --json   {:8.3} s  {:9.1} files/s (baseline)",
        best_hash.as_secs_f64(),
        rate(best_hash)
    );
    println!(
        "safeguard scan          {:8.3} s  {:9.1} files/s  ratio {:.3} of hash{}",
        best_scan.as_secs_f64(),
        rate(best_scan),
        best_hash.as_secs_f64() / best_scan.as_secs_f64(),
        if args.bank_hashes > 0 {
            format!(" (bank of {} PDQ hashes)", args.bank_hashes)
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
