//! `safeguard bench scan --store postgres://...`: how fast the index build reads every signal
//! out of PostgreSQL (`Store::scan_signals`, a binary `COPY`), against the paged reads it
//! replaced (`PostgresStore::scan_signals_by_pages`), measured alternately in one run, and
//! against issue 16's target of 1,000,000 hashes a second. Then one whole index build
//! (`Engine::open`: the scan plus building the in-memory indexes) for scale. Only reads.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use safeguard_store::{PostgresOptions, PostgresStore, Store};

/// The rate issue 16 asks the index build's read to reach, hashes a second.
const TARGET_PER_SEC: f64 = 1_000_000.0;

#[derive(Debug, clap::Args)]
pub struct BenchScanArgs {
    /// The PostgreSQL store to read (`postgres://USER@HOST:PORT/DB`).
    #[arg(long)]
    pub store: String,
    /// Runs of each method, alternating; the best of each is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
}

/// Reads every signal once with `scan`; returns (signals, seconds).
fn time_scan(
    scan: impl FnOnce(&mut dyn FnMut(&safeguard_store::Signal)) -> safeguard_store::Result<i64>,
) -> anyhow::Result<(u64, f64)> {
    let mut n = 0u64;
    let mut bytes = 0usize;
    let start = Instant::now();
    scan(&mut |s| {
        n += 1;
        // Touch the value, as the index build does.
        bytes += s.value.len();
    })?;
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(bytes > 0 || n == 0, "no values read");
    Ok((n, secs))
}

pub fn run(a: &BenchScanArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        safeguard_store::is_postgres_url(&a.store),
        "--store must be a postgres:// URL"
    );
    anyhow::ensure!(a.repeat >= 1, "--repeat must be at least 1");
    let store = PostgresStore::open(&PostgresOptions::new(&a.store))
        .with_context(|| format!("cannot open {}", safeguard_store::redact(&a.store)))?;
    let (mut pages, mut copy) = (f64::INFINITY, f64::INFINITY);
    let mut rows = None;
    for run in 1..=a.repeat {
        let (n1, s1) = time_scan(|f| store.scan_signals_by_pages(f))?;
        let (n2, s2) = time_scan(|f| store.scan_signals(f))?;
        anyhow::ensure!(n1 == n2, "the two scans disagree: {n1} and {n2} signals");
        println!("run {run}: pages {s1:.3} s, binary COPY {s2:.3} s ({n2} signals)");
        pages = pages.min(s1);
        copy = copy.min(s2);
        rows = Some(n2);
    }
    let n = rows.unwrap_or(0) as f64;
    let rate = |secs: f64| if secs > 0.0 { n / secs } else { 0.0 };
    println!(
        "baseline (pages of 10,000): {pages:.3} s, {:.0} signals/s",
        rate(pages)
    );
    println!(
        "binary COPY:                {copy:.3} s, {:.0} signals/s ({:.2}x the baseline, {:.2}x the target of 1,000,000/s)",
        rate(copy),
        pages / copy,
        rate(copy) / TARGET_PER_SEC
    );
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(store);
    let start = Instant::now();
    let engine = safeguard_engine::Engine::open(store)?;
    let status = engine.index_status();
    println!(
        "whole index build (Engine::open): {:.3} s, {} MiB of indexes",
        start.elapsed().as_secs_f64(),
        status.bytes >> 20
    );
    Ok(ExitCode::SUCCESS)
}
