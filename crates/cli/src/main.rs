//! `safeguard`: the Safeguard command-line tool.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd_audit;
mod cmd_bank;
mod cmd_bench_backfill;
mod cmd_bench_console;
mod cmd_bench_hash;
mod cmd_bench_index;
mod cmd_bench_receiver;
mod cmd_bench_risk;
#[cfg(feature = "postgres")]
mod cmd_bench_scan;
mod cmd_bench_server;
mod cmd_bench_video;
mod cmd_exchange;
mod cmd_figures;
mod cmd_hash;
mod cmd_match;
mod cmd_report;
mod cmd_rules;
mod cmd_scan;
mod cmd_serve;
mod cmd_users;
mod output;
mod scan_source;
mod walk;

/// Safeguard: find known child sexual abuse material by hash matching, and act on it.
#[derive(Debug, Parser)]
#[command(name = "safeguard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Hash image files: PDQ (bit-exact with the values in hash banks), MD5, SHA-1, SHA-256.
    /// Files are decoded in confined worker processes unless `--in-process` is given.
    Hash(cmd_hash::HashArgs),
    /// Match PDQ hashes against a bank file, exactly (every entry within the radius).
    Match(cmd_match::MatchArgs),
    /// Backfill scans: hash and match files already stored (a directory, an S3 bucket, a list
    /// of URLs), shared by any number of worker processes, resumable; join, status, pause,
    /// resume, cancel, results.
    Scan(cmd_scan::ScanArgs),
    /// Run the server (HMA-compatible and native API) on the embedded store.
    Serve(cmd_serve::ServeArgs),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(cmd_serve::KeysCommand),
    /// Import, export and diff hash lists (plain, CSV, HMA, NCMEC XML, StopNCII JSON).
    #[command(subcommand)]
    Bank(cmd_bank::BankCommand),
    /// Hash-sharing exchanges (NCMEC, StopNCII, another Safeguard): list, status, run.
    #[command(subcommand)]
    Exchange(cmd_exchange::ExchangeCommand),
    /// Policy rules: apply a TOML rules file, list the rules in force.
    #[command(subcommand)]
    Rules(cmd_rules::RulesCommand),
    /// The tamper-evident audit log: export it, verify an export offline, print its key.
    #[command(subcommand)]
    Audit(cmd_audit::AuditCommand),
    /// Transparency figures of a period (scanned, matched, verdicts, reviews, reports,
    /// times), computed from the store, as JSON or CSV.
    Figures(cmd_figures::FiguresArgs),
    /// The review console's people: create (prints a one-time setup link), list, reset,
    /// disable, enable.
    #[command(subcommand)]
    Users(cmd_users::UsersCommand),
    /// Reporting set-up: `ncmec-credentials` stores the CyberTipline account, sealed.
    #[command(subcommand)]
    Report(cmd_report::ReportCommand),
    /// Benchmarks that print their baseline and ratio from the same run.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// A confined decode worker, speaking the sandbox protocol on stdin and stdout. Started by
    /// Safeguard itself (the worker runs before `main`, see `safeguard_sandbox::worker`); by
    /// hand it serves the same protocol.
    #[command(hide = true)]
    DecodeWorker,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Decode + PDQ speed on one thread (exact and --fast) and the fast mode's drift.
    Hash(cmd_bench_hash::BenchHashArgs),
    /// A backfill scan's files per second against `safeguard hash` on the same folder.
    Backfill(cmd_bench_backfill::BenchBackfillArgs),
    /// PDQ index build time, memory and queries/second against a brute-force scan.
    Index(cmd_bench_index::BenchIndexArgs),
    /// Fill a data directory with random PDQ hashes and write lookup queries (for
    /// scripts/bench-server.sh).
    Seed(cmd_bench_server::SeedArgs),
    /// vPDQ videos/second and x realtime on one core against Meta's `vpdq` Python package
    /// (see scripts/bench-vpdq.sh).
    Video(cmd_bench_video::BenchVideoArgs),
    /// A webhook receiver that verifies signatures and counts events (for
    /// scripts/bench-submit.sh and the crash loop).
    Receiver(cmd_bench_receiver::ReceiverArgs),
    /// Contact-risk scoring speed (events/s on one thread) on synthetic streams, against the
    /// 100,000 events/s target.
    Risk(cmd_bench_risk::BenchRiskArgs),
    /// Contact-risk accuracy on synthetic labelled streams: precision, recall and F0.5 at the
    /// configured thresholds, and the false-alert rate on benign accounts.
    Contact(cmd_bench_risk::BenchContactArgs),
    /// Review console: server time per page with a million open cases, and claim latency
    /// with many reviewers claiming at once.
    Console(cmd_bench_console::BenchConsoleArgs),
    /// Reading every signal out of PostgreSQL for the index build: binary COPY against the
    /// paged reads it replaced, and the whole build.
    #[cfg(feature = "postgres")]
    Scan(cmd_bench_scan::BenchScanArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Hash(a) => cmd_hash::run(a),
        Command::Serve(a) => cmd_serve::run(a),
        Command::Keys(k) => cmd_serve::run_keys(k),
        Command::Bank(b) => cmd_bank::run(b),
        Command::Match(a) => cmd_match::run(a),
        Command::Scan(a) => cmd_scan::run(a),
        Command::Figures(a) => cmd_figures::run(a),
        Command::Users(u) => cmd_users::run(u),
        Command::Audit(a) => cmd_audit::run(a),
        Command::Report(r) => cmd_report::run(r),
        Command::Exchange(x) => cmd_exchange::run(x),
        Command::Rules(r) => cmd_rules::run(r),
        Command::Bench(BenchCommand::Hash(a)) => cmd_bench_hash::run(a),
        Command::Bench(BenchCommand::Backfill(a)) => cmd_bench_backfill::run(a),
        Command::Bench(BenchCommand::Console(a)) => cmd_bench_console::run(a),
        #[cfg(feature = "postgres")]
        Command::Bench(BenchCommand::Scan(a)) => cmd_bench_scan::run(a),
        Command::Bench(BenchCommand::Index(a)) => cmd_bench_index::run(a),
        Command::Bench(BenchCommand::Seed(a)) => cmd_bench_server::run(a),
        Command::Bench(BenchCommand::Video(a)) => cmd_bench_video::run(a),
        Command::Bench(BenchCommand::Receiver(a)) => cmd_bench_receiver::run(a),
        Command::Bench(BenchCommand::Risk(a)) => cmd_bench_risk::run_risk(a),
        Command::Bench(BenchCommand::Contact(a)) => cmd_bench_risk::run_contact(a),
        Command::DecodeWorker => {
            let code = safeguard_sandbox::worker::serve();
            return ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
