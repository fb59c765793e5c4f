//! `safeguard scan`: backfill scans of files a platform already stores (docs/scans.md).
//!
//! The process that starts a scan lists its source into jobs while it works; any number of
//! `safeguard scan join ID` processes, on any machines sharing the store, work beside it. Each
//! job is leased; a worker renews its lease while it works, so a job is taken over only from a
//! worker that died or hung. Matches go through the policy as submissions with
//! `surface: backfill`; items that match nothing leave only their scan result.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rayon::prelude::*;
use serde_json::{json, Value};

use safeguard_engine::action::{Actioner, MediaDigest, Submission};
use safeguard_engine::video::{is_video, VideoOptions};
use safeguard_engine::{now_ms, Engine, LookupOptions, SignalValue};
use safeguard_policy::{AccountAge, Kind, Surface};
use safeguard_store::scan::{state, Claim, ItemResult, NewScan, Scan, ScanJob, MAX_JOB_ITEMS};
use safeguard_store::{BankKind, Store};

use crate::cmd_hash::{hash_bytes, sandboxed, Compat, HashSettings, LimitArgs};
use crate::cmd_serve::DataDirArg;
use crate::scan_source::Source;

/// Jobs planned per store call while listing.
const JOBS_PER_PLAN: usize = 100;
/// How often an idle worker asks again (paused scan, every job leased, listing behind).
const IDLE_POLL: Duration = Duration::from_millis(250);
/// A job claimed this many times has killed or hung its workers each time: its items are
/// recorded as failed instead of tried again.
pub const MAX_JOB_ATTEMPTS: i64 = 5;
/// Longest submission id; longer ones use the key's SHA-256.
const MAX_SUBMISSION_KEY: usize = 200;

/// Arguments of `safeguard scan`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ScanArgs {
    #[command(subcommand)]
    pub command: Option<ScanCommand>,
    /// What to scan: a directory, `s3://BUCKET/PREFIX` (endpoint and credentials from the
    /// `AWS_*` variables), or `urls:FILE` (one http(s) URL per line).
    #[arg(required = true)]
    pub source: Option<String>,
    /// Match against this bank (repeatable). Allow-list banks are always consulted.
    #[arg(long = "bank", value_name = "NAME", conflicts_with = "all")]
    pub banks: Vec<String>,
    /// Match against every bank.
    #[arg(long)]
    pub all: bool,
    /// Items per job: what a dead worker's successor redoes.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=MAX_JOB_ITEMS as i64))]
    pub job_size: u32,
    #[command(flatten)]
    pub worker: WorkerArgs,
}

/// Arguments of every process that works on a scan.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Seconds a claimed job stays this worker's without a renewal (renewed every third of
    /// it while working).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub lease_secs: u64,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
    /// Decode in this process instead of in confined worker processes (LESS SAFE; see
    /// `safeguard hash --help`).
    #[arg(long)]
    pub in_process: bool,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Whose PDQ values to reproduce.
    #[arg(long, value_enum, default_value_t = Compat::Pytx)]
    pub compat: Compat,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub data: DataDirArg,
}

/// `safeguard scan join|status|pause|resume|cancel|results`.
#[derive(Debug, clap::Subcommand)]
pub enum ScanCommand {
    /// Work on a scan started elsewhere, until it is done or cancelled.
    Join(JoinArgs),
    /// A scan's state and counters, as JSON.
    Status(IdArgs),
    /// Stop handing out jobs; jobs being worked on finish.
    Pause(IdArgs),
    /// Hand out jobs again.
    Resume(IdArgs),
    /// Stop for good; results so far are kept.
    Cancel(IdArgs),
    /// Every result, one JSON object per line, by key.
    Results(IdArgs),
}

/// Arguments of `safeguard scan join`.
#[derive(Debug, clap::Args)]
pub struct JoinArgs {
    /// The scan's id.
    pub id: i64,
    /// Also list the source again from the start: for a scan whose starting process died
    /// before listing all of it. Jobs already planned are kept as they are.
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub worker: WorkerArgs,
}

/// A scan id and the store.
#[derive(Debug, clap::Args)]
pub struct IdArgs {
    /// The scan's id.
    pub id: i64,
    #[command(flatten)]
    pub data: DataDirArg,
}

/// Runs `safeguard scan`.
pub fn run(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        Some(ScanCommand::Join(j)) => join(j),
        Some(ScanCommand::Status(a)) => {
            let store = a.data.open()?;
            let s = store
                .scan(a.id)?
                .ok_or_else(|| anyhow::anyhow!("no scan {}", a.id))?;
            println!("{}", scan_json(&s));
            Ok(ExitCode::SUCCESS)
        }
        Some(ScanCommand::Pause(a)) => set_state(a, state::PAUSED),
        Some(ScanCommand::Resume(a)) => set_state(a, state::RUNNING),
        Some(ScanCommand::Cancel(a)) => set_state(a, state::CANCELLED),
        Some(ScanCommand::Results(a)) => results(a),
        None => start(args),
    }
}

fn set_state(a: &IdArgs, to: &str) -> anyhow::Result<ExitCode> {
    let store = a.data.open()?;
    let s = store.set_scan_state(a.id, to, now_ms())?;
    println!("{}", scan_json(&s));
    Ok(ExitCode::SUCCESS)
}

fn results(a: &IdArgs) -> anyhow::Result<ExitCode> {
    let store = a.data.open()?;
    let mut out = crate::output::Out::stdout();
    let mut after: Option<String> = None;
    loop {
        let page = store.scan_results(a.id, after.as_deref(), 1000)?;
        let Some(last) = page.last() else { break };
        after = Some(last.result.key.clone());
        for r in &page {
            let line = result_json(&r.result, Some((&r.worker, r.recorded_at)));
            if out.line(&line.to_string()).is_err() {
                return Ok(ExitCode::SUCCESS); // reader went away (`| head`)
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A scan as the CLI and `/v1/scans/{id}` show it.
pub fn scan_json(s: &Scan) -> Value {
    safeguard_server::scans::scan_json(s)
}

/// One result as `scan results` prints it.
pub fn result_json(r: &ItemResult, recorded: Option<(&str, i64)>) -> Value {
    let mut v = safeguard_server::scans::result_json(r);
    if let Some((worker, at)) = recorded {
        v["worker"] = json!(worker);
        v["recorded_at"] = json!(at);
    }
    v
}

/// What a scan matches against, as stored in [`Scan::target`].
fn target_json(banks: &[String]) -> String {
    if banks.is_empty() {
        json!({ "all": true }).to_string()
    } else {
        json!({ "banks": banks }).to_string()
    }
}

/// The lookup options of a stored target: the named banks plus every allow-list bank, or
/// all; never the coin flip (a backfill consults every bank it names).
fn lookup_for(store: &dyn Store, target: &str) -> anyhow::Result<LookupOptions> {
    let v: Value = serde_json::from_str(target).context("the scan's target is not JSON")?;
    let banks = match v.get("banks").and_then(Value::as_array) {
        None => None,
        Some(names) => {
            let mut names: Vec<String> = names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect();
            for b in store.list_banks()? {
                if b.kind == BankKind::AllowList && !names.contains(&b.name) {
                    names.push(b.name);
                }
            }
            Some(names)
        }
    };
    Ok(LookupOptions {
        banks,
        coinflip: Some(0.0),
        ..LookupOptions::default()
    })
}

fn start(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.all || !args.banks.is_empty(),
        "name the banks to match against with --bank NAME, or --all"
    );
    let spec = args.source.as_deref().expect("clap requires SOURCE");
    let source = Source::parse(spec)?;
    let store: Arc<dyn Store> = Arc::from(args.worker.data.open()?);
    for b in &args.banks {
        anyhow::ensure!(store.bank_by_name(b)?.is_some(), "no bank named {b:?}");
    }
    let name = worker_name();
    let scan = store.create_scan(&NewScan {
        source: source.spec(),
        target: target_json(&args.banks),
        created_by: name.clone(),
        created_at: now_ms(),
        job_size: i64::from(args.job_size),
    })?;
    eprintln!(
        "safeguard: scan {} of {} started; more workers: safeguard scan join {}",
        scan.id, scan.source, scan.id
    );
    let w = Worker::new(store, source, &scan, &args.worker, name)?;
    w.run(&scan, Some(args.job_size as usize))
}

fn join(args: &JoinArgs) -> anyhow::Result<ExitCode> {
    let store: Arc<dyn Store> = Arc::from(args.worker.data.open()?);
    let scan = store
        .scan(args.id)?
        .ok_or_else(|| anyhow::anyhow!("no scan {}", args.id))?;
    let source = Source::parse(&scan.source)?;
    let w = Worker::new(store, source, &scan, &args.worker, worker_name())?;
    let relist = (args.list && !scan.listed).then_some(scan.job_size as usize);
    w.run(&scan, relist)
}

/// `host:pid:random`, unique among live workers.
fn worker_name() -> String {
    let mut r = [0u8; 4];
    // A failed draw leaves zeros: the name is still unique by pid on its host.
    let _ = getrandom::fill(&mut r);
    format!(
        "{}:{}:{}",
        safeguard_server::feed::host_name(),
        std::process::id(),
        hex::encode(r)
    )
}

/// Listing's progress, shared with the work loop.
const LISTING: u8 = 0;
const LISTED: u8 = 1;
const LIST_FAILED: u8 = 2;

struct Worker {
    store: Arc<dyn Store>,
    actioner: Actioner,
    source: Source,
    rt: tokio::runtime::Runtime,
    settings: HashSettings,
    video: VideoOptions,
    lookup: LookupOptions,
    name: String,
    lease: Duration,
    max_bytes: u64,
    progress: bool,
}

impl Worker {
    fn new(
        store: Arc<dyn Store>,
        source: Source,
        scan: &Scan,
        args: &WorkerArgs,
        name: String,
    ) -> anyhow::Result<Worker> {
        if let Some(n) = args.threads {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .build_global()?;
        }
        let video = VideoOptions {
            seconds_per_hash: 1.0,
            limits: args.limits.to_video_limits()?,
        };
        let limits = args.limits.to_limits();
        let max_bytes = limits.max_input_bytes.max(video.limits.max_input_bytes);
        let settings = HashSettings {
            decoder: if args.in_process {
                safeguard_sandbox::Decoder::InProcess
            } else {
                sandboxed(rayon::current_num_threads(), &video.limits)
            },
            limits,
            decode: safeguard_media::DecodeOptions::default(),
            compat: args.compat,
            dihedral: false,
            // Digests are computed here, from the bytes, for every item (also the ones
            // that do not decode: an MD5 bank lists files of any kind).
            digests: false,
        };
        let lookup = lookup_for(store.as_ref(), &scan.target)?;
        let engine = Arc::new(Engine::open(store.clone()).context("loading the banks")?);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        Ok(Worker {
            actioner: Actioner::new(engine),
            store,
            source,
            rt,
            settings,
            video,
            lookup,
            name,
            lease: Duration::from_secs(args.lease_secs),
            max_bytes,
            progress: !args.no_progress && std::io::stderr().is_terminal(),
        })
    }

    /// Works on `scan` (listing it first into jobs of `list` items, when given) until it is
    /// done or cancelled.
    fn run(&self, scan: &Scan, list: Option<usize>) -> anyhow::Result<ExitCode> {
        let listing = AtomicU8::new(if list.is_some() { LISTING } else { LISTED });
        let bar = self.progress.then(progress_bar);
        let end = std::thread::scope(|sc| {
            let lister = list.map(|size| {
                let listing = &listing;
                sc.spawn(move || {
                    let r = self.list(scan.id, size);
                    listing.store(
                        if r.is_ok() { LISTED } else { LIST_FAILED },
                        Ordering::SeqCst,
                    );
                    r
                })
            });
            let worked = self.work(scan.id, &listing, bar.as_ref());
            if let Some(h) = lister {
                match h.join() {
                    Ok(r) => r.context("listing the source")?,
                    Err(_) => anyhow::bail!("the listing thread panicked"),
                }
            }
            worked
        })?;
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        eprintln!(
            "safeguard: scan {} {}: {} of {} items, {} failed, {} matched",
            end.id, end.state, end.items_done, end.items, end.items_failed, end.items_matched
        );
        println!("{}", scan_json(&end));
        Ok(ExitCode::SUCCESS)
    }

    /// Lists the source into jobs of `size` items, then marks the scan listed.
    fn list(&self, scan: i64, size: usize) -> anyhow::Result<()> {
        let mut batch: Vec<Vec<String>> = Vec::with_capacity(JOBS_PER_PLAN);
        let mut job: Vec<String> = Vec::with_capacity(size);
        let mut next_ordinal = 0i64;
        let mut flush = |batch: &mut Vec<Vec<String>>| -> anyhow::Result<()> {
            if !batch.is_empty() {
                self.store.add_scan_jobs(scan, next_ordinal, batch)?;
                next_ordinal += batch.len() as i64;
                batch.clear();
            }
            Ok(())
        };
        self.source.list(&self.rt, |key| {
            job.push(key);
            if job.len() == size {
                batch.push(std::mem::replace(&mut job, Vec::with_capacity(size)));
                if batch.len() == JOBS_PER_PLAN {
                    flush(&mut batch)?;
                }
            }
            Ok(())
        })?;
        if !job.is_empty() {
            batch.push(job);
        }
        flush(&mut batch)?;
        self.store.finish_listing(scan, now_ms())?;
        Ok(())
    }

    /// Claims and works jobs until the scan ends; returns it as it ended.
    fn work(
        &self,
        scan: i64,
        listing: &AtomicU8,
        bar: Option<&indicatif::ProgressBar>,
    ) -> anyhow::Result<Scan> {
        let mut last_shown = Instant::now() - Duration::from_secs(60);
        loop {
            let lease_until = now_ms() + self.lease.as_millis() as i64;
            match self
                .store
                .claim_scan_job(scan, &self.name, lease_until, now_ms())?
            {
                Claim::Ended(s) => return Ok(s),
                Claim::Wait => {
                    if listing.load(Ordering::SeqCst) == LIST_FAILED {
                        anyhow::bail!("listing the source failed");
                    }
                    if let Some(s) = self.store.scan(scan)? {
                        self.show(&s, bar, &mut last_shown);
                    }
                    std::thread::sleep(IDLE_POLL);
                }
                Claim::Job(job) => {
                    let s = self.work_job(&job)?;
                    self.show(&s, bar, &mut last_shown);
                }
            }
        }
    }

    fn show(&self, s: &Scan, bar: Option<&indicatif::ProgressBar>, last: &mut Instant) {
        match bar {
            Some(b) => {
                b.set_length(s.items as u64);
                b.set_position(s.items_done as u64);
                b.set_message(format!(
                    "scan {} {}{} · {} failed · {} matched",
                    s.id,
                    s.state,
                    if s.listed { "" } else { " (listing)" },
                    s.items_failed,
                    s.items_matched
                ));
            }
            None if last.elapsed() >= Duration::from_secs(10) => {
                *last = Instant::now();
                eprintln!(
                    "safeguard: scan {} {}: {} of {} items{}",
                    s.id,
                    s.state,
                    s.items_done,
                    s.items,
                    if s.listed { "" } else { " listed so far" }
                );
            }
            None => {}
        }
    }

    /// Works one job under its lease (renewed in the background) and records its results.
    fn work_job(&self, job: &ScanJob) -> anyhow::Result<Scan> {
        if job.attempts > MAX_JOB_ATTEMPTS {
            let why = format!(
                "given up: the job was claimed {} times without finishing",
                job.attempts - 1
            );
            let results: Vec<ItemResult> =
                job.items.iter().map(|k| failed(k, why.clone())).collect();
            return Ok(self
                .store
                .finish_scan_job(job.id, &self.name, &results, now_ms())?);
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let results = std::thread::scope(|sc| {
            sc.spawn(move || {
                let every = self.lease / 3;
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let until = now_ms() + self.lease.as_millis() as i64;
                    match self.store.renew_scan_job(job.id, &self.name, until) {
                        Ok(true) => {}
                        // Lost: someone else has it; finishing still records nothing twice.
                        Ok(false) => return,
                        Err(e) => tracing::warn!("renewing the lease of scan job {}: {e}", job.id),
                    }
                }
            });
            let r = self.process(job);
            drop(stop);
            r
        })?;
        Ok(self
            .store
            .finish_scan_job(job.id, &self.name, &results, now_ms())?)
    }

    fn process(&self, job: &ScanJob) -> anyhow::Result<Vec<ItemResult>> {
        // New hashes added since the last job are matched from this one on.
        self.actioner.engine().sync()?;
        let bytes = self.source.fetch(&self.rt, &job.items, self.max_bytes);
        job.items
            .par_iter()
            .zip(bytes.into_par_iter())
            .map(|(key, b)| self.item(job.scan_id, key, b))
            .collect()
    }

    /// Hashes and matches one item. A store failure is the caller's error (the job is
    /// retried); anything wrong with the item itself is its recorded result.
    fn item(
        &self,
        scan: i64,
        key: &str,
        bytes: Result<Vec<u8>, String>,
    ) -> anyhow::Result<ItemResult> {
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => return Ok(failed(key, e)),
        };
        let d = safeguard_media::digest::digests(&bytes);
        let mut r = ItemResult {
            key: key.to_string(),
            error: None,
            pdq: None,
            quality: None,
            md5: Some(d.md5_hex()),
            sha256: Some(d.sha256_hex()),
            size: Some(bytes.len() as i64),
            matched: false,
            verdict: None,
            submission: None,
        };
        let mut signals = vec![
            SignalValue::Md5(d.md5),
            SignalValue::Sha1(d.sha1),
            SignalValue::Sha256(d.sha256),
        ];
        let kind = if is_video(&bytes) {
            match self.settings.decoder.hash_video(bytes.into(), &self.video) {
                Ok(v) => {
                    signals.push(SignalValue::Vpdq(v.vpdq.frames.into()));
                    if let Some(f) = v.first_frame {
                        signals.push(SignalValue::Pdq(f.pdq));
                    }
                    Kind::Video
                }
                Err(e) => {
                    r.error = Some(e.to_string());
                    Kind::Other
                }
            }
        } else {
            match hash_bytes(&bytes, &self.settings) {
                Ok(h) => {
                    r.pdq = Some(h.pdq.hash.to_hex());
                    r.quality = Some(i64::from(h.pdq.quality));
                    signals.push(SignalValue::Pdq(h.pdq.hash));
                    Kind::Image
                }
                Err(e) => {
                    r.error = Some(e);
                    Kind::Other
                }
            }
        };
        let sub = Submission {
            id: submission_id(scan, key),
            kind,
            signals,
            account: None,
            account_age: AccountAge::Unknown,
            surface: Some(Surface::Backfill),
            created_at: None,
            ip: None,
            metadata: Some(json!({ "scan": scan, "key": key })),
            media: Some(MediaDigest {
                sha256: d.sha256_hex(),
                md5: d.md5_hex(),
                size: r.size.unwrap_or(0) as u64,
            }),
            url: None,
        };
        let eval = self.actioner.evaluate_with(&sub, &self.lookup)?;
        if !eval.matches.is_empty() {
            // Recorded under an id made of the scan and key, so a job redone after a dead
            // worker replays the first record instead of opening a second case.
            let rec = self.actioner.record(&sub, &eval, None)?;
            r.matched = true;
            r.verdict = rec.body["verdict"].as_str().map(str::to_string);
            r.submission = Some(sub.id);
        }
        Ok(r)
    }
}

fn failed(key: &str, why: String) -> ItemResult {
    ItemResult {
        key: key.to_string(),
        error: Some(why),
        pdq: None,
        quality: None,
        md5: None,
        sha256: None,
        size: None,
        matched: false,
        verdict: None,
        submission: None,
    }
}

/// `scan:ID:KEY`, or `scan:ID:sha256:HEX` for a long key (submission ids are at most 256
/// bytes).
fn submission_id(scan: i64, key: &str) -> String {
    if key.len() <= MAX_SUBMISSION_KEY {
        format!("scan:{scan}:{key}")
    } else {
        use sha2::Digest;
        format!(
            "scan:{scan}:sha256:{}",
            hex::encode(sha2::Sha256::digest(key))
        )
    }
}

fn progress_bar() -> indicatif::ProgressBar {
    let b = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg}\n[{bar:40}] {pos}/{len} items · {per_sec} · ETA {eta}",
    ) {
        b.set_style(style.progress_chars("=> "));
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submission_ids_fit() {
        assert_eq!(submission_id(3, "a/b.jpg"), "scan:3:a/b.jpg");
        let long = "k".repeat(4000);
        let id = submission_id(3, &long);
        assert!(id.starts_with("scan:3:sha256:") && id.len() <= 256, "{id}");
        assert_ne!(id, submission_id(3, &"k".repeat(3999)));
    }

    #[test]
    fn targets_round_trip() {
        assert_eq!(target_json(&[]), r#"{"all":true}"#);
        let t = target_json(&["a".into(), "b\"".into()]);
        let v: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(v["banks"][1], "b\"");
    }
}
