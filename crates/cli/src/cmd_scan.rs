//! `safeguard scan`: backfill scans of files a platform already stores (docs/scans.md).
//!
//! The process that starts a scan lists its source into jobs while it works; any number of
//! `safeguard scan join ID` processes, on any machines sharing the store, work beside it. Each
//! job is leased; a worker renews its lease while it works, so a job is taken over only from a
//! worker that died or hung. Matches go through the policy as submissions with
//! `surface: backfill`; items that match nothing leave only their scan result.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
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

use crate::cmd_hash::{hash_bytes, Compat, HashSettings, LimitArgs, RunArgs};
use crate::cmd_serve::DataDirArg;
use crate::scan_source::{Source, Stopped, FETCH_CONCURRENCY};

/// Jobs one worker process works at once (see `Worker::run`).
const JOBS_AT_ONCE: usize = 2;
/// Jobs planned per store call while listing.
const JOBS_PER_PLAN: usize = 100;
/// How often an idle worker asks again (paused scan, every job leased, listing behind).
const IDLE_POLL: Duration = Duration::from_millis(250);
/// A job claimed this many times has killed or hung its workers each time: its items are
/// recorded as failed instead of tried again.
pub const MAX_JOB_ATTEMPTS: i64 = 5;
/// Longest key in a submission id; longer ones use the key's SHA-256.
const MAX_SUBMISSION_KEY: usize = 200;
/// Jobs in a row that may fail on the store or the network before a worker stops.
const MAX_CONSECUTIVE_FAILURES: u32 = 5;

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
    /// Whose PDQ values to reproduce (kept with the scan: every worker hashes alike).
    #[arg(long, value_enum, default_value_t = Compat::Pytx)]
    pub compat: Compat,
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
    #[command(flatten)]
    pub run: RunArgs,
    /// A `urls:` source may fetch from this host although it resolves to an internal
    /// (loopback, private, link-local) address (repeatable). Others are refused, also after
    /// a redirect.
    #[arg(long = "allow-internal-host", value_name = "HOST")]
    pub allow_internal_hosts: Vec<String>,
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
    let store: Arc<dyn Store> = Arc::from(a.data.open()?);
    let s = store.set_scan_state(a.id, to, now_ms())?;
    // As through the API: who paused or cancelled a scan is in the audit log.
    crate::cmd_audit::record(
        &a.data,
        store,
        safeguard_engine::audit::Action::ConfigChanged,
        &format!("scan:{}", a.id),
        to,
    );
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
            // A closed pipe (`| head`) ends the listing quietly; any other write error (a full
            // disk) is the command's failure.
            if out.line(&line.to_string())? == crate::output::WriteResult::Closed {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    out.flush()?;
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

/// What a scan matches against and how it hashes, as stored in [`Scan::target`].
fn target_json(banks: &[String], compat: Compat) -> String {
    let compat = match compat {
        Compat::Pytx => "pytx",
        Compat::Cpp512 => "cpp512",
    };
    if banks.is_empty() {
        json!({ "all": true, "compat": compat }).to_string()
    } else {
        json!({ "banks": banks, "compat": compat }).to_string()
    }
}

/// The hashing reference a stored target names (`pytx` when it names none).
fn compat_of(target: &str) -> anyhow::Result<Compat> {
    let v: Value = serde_json::from_str(target).context("the scan's target is not JSON")?;
    match v.get("compat").and_then(Value::as_str) {
        None | Some("pytx") => Ok(Compat::Pytx),
        Some("cpp512") => Ok(Compat::Cpp512),
        Some(other) => anyhow::bail!("the scan names an unknown hashing reference {other:?}"),
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
    let store: Arc<dyn Store> = Arc::from(args.worker.data.open()?);
    for b in &args.banks {
        anyhow::ensure!(store.bank_by_name(b)?.is_some(), "no bank named {b:?}");
    }
    let target = target_json(&args.banks, args.compat);
    // Everything that can fail is set up before the scan exists: a failed start leaves no
    // scan behind that nobody works on.
    let w = Worker::new(store, spec, &target, &args.worker, worker_name())?;
    let scan = w.store.create_scan(&NewScan {
        source: w.source.spec(),
        target,
        created_by: w.name.clone(),
        created_at: now_ms(),
        job_size: i64::from(args.job_size),
    })?;
    eprintln!(
        "safeguard: scan {} of {} started; more workers: safeguard scan join {}",
        scan.id, scan.source, scan.id
    );
    w.run(&scan, Some(args.job_size as usize))
}

fn join(args: &JoinArgs) -> anyhow::Result<ExitCode> {
    let store: Arc<dyn Store> = Arc::from(args.worker.data.open()?);
    let scan = store
        .scan(args.id)?
        .ok_or_else(|| anyhow::anyhow!("no scan {}", args.id))?;
    let w = Worker::new(
        store,
        &scan.source,
        &scan.target,
        &args.worker,
        worker_name(),
    )?;
    if !scan.listed && !args.list {
        eprintln!(
            "safeguard: scan {} is not fully listed yet; if the process that started it is \
             gone, list it again with: safeguard scan join {} --list",
            scan.id, scan.id
        );
    }
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

/// Items of a job taken in hand and finished, for the lease's stall check.
#[derive(Default)]
struct Progress {
    started: AtomicU64,
    finished: AtomicU64,
}

/// Marks the listing failed unless it was marked listed, however the lister ends.
struct ListingGuard<'a> {
    state: &'a AtomicU8,
    worker: &'a Worker,
}

impl Drop for ListingGuard<'_> {
    fn drop(&mut self) {
        let _ =
            self.state
                .compare_exchange(LISTING, LIST_FAILED, Ordering::SeqCst, Ordering::SeqCst);
        self.worker.bump_planned();
    }
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
    /// No renewal once a job has made no progress for this long: a hung worker's job passes
    /// on one lease later.
    stall: Duration,
    /// Set when this process's work loop ends: its lister stops.
    stop: AtomicBool,
    /// Whether the progress bar has shown the scan once.
    bar_started: AtomicBool,
    /// Bumped by this process's lister whenever it plans jobs or finishes, and by a job loop
    /// whenever it finishes or gives back a job, so an idle loop wakes at once instead of at
    /// its next poll.
    planned: (Mutex<u64>, Condvar),
}

impl Worker {
    fn new(
        store: Arc<dyn Store>,
        spec: &str,
        target: &str,
        args: &WorkerArgs,
        name: String,
    ) -> anyhow::Result<Worker> {
        args.run.init_threads()?;
        let video = VideoOptions {
            seconds_per_hash: 1.0,
            limits: args.limits.to_video_limits()?,
        };
        let limits = args.limits.to_limits();
        let max_bytes = limits.max_input_bytes.max(video.limits.max_input_bytes);
        let source = Source::parse(spec, &args.allow_internal_hosts, max_bytes)?;
        let compat = compat_of(target)?;
        let settings = HashSettings {
            decoder: args.run.decoder(&video.limits),
            limits,
            decode: safeguard_media::DecodeOptions::default(),
            compat,
            dihedral: false,
            // Digests are computed here, from the bytes, for every item (also the ones
            // that do not decode: an MD5 bank lists files of any kind).
            digests: false,
        };
        let lookup = lookup_for(store.as_ref(), target)?;
        let lease = Duration::from_secs(args.lease_secs);
        // The longest an item may legitimately take (a video at its decode budget), plus a
        // minute for reading it.
        let stall = lease + video.limits.max_decode_time + Duration::from_secs(60);
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
            lease,
            max_bytes,
            progress: !args.run.no_progress && std::io::stderr().is_terminal(),
            stall,
            stop: AtomicBool::new(false),
            bar_started: AtomicBool::new(false),
            planned: (Mutex::new(0), Condvar::new()),
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
                    // Set on every way out, a panic included, so the work loop never waits
                    // for a listing that will not come.
                    let guard = ListingGuard {
                        state: listing,
                        worker: self,
                    };
                    let r = self.list(scan.id, size);
                    if r.is_ok() {
                        guard.state.store(LISTED, Ordering::SeqCst);
                    }
                    r
                })
            });
            // Two job loops share the hashing threads: while one claims, syncs and records
            // (serial, on the store), the other keeps every core hashing. With one loop the
            // cores idled for that part of every job (a quarter of a small-file scan).
            let loops: Vec<_> = (0..JOBS_AT_ONCE)
                .map(|i| {
                    let (listing, bar) = (&listing, bar.as_ref());
                    sc.spawn(move || {
                        let r = self.work(scan.id, listing, bar, i);
                        if let Err(e) = &r {
                            // Said at once, and the other loop and the lister stop: the
                            // process ends rather than limping on at half speed.
                            eprintln!("safeguard: {e:#}");
                            self.stop.store(true, Ordering::SeqCst);
                            self.bump_planned();
                        }
                        r
                    })
                })
                .collect();
            let mut worked: Option<anyhow::Result<Scan>> = None;
            for h in loops {
                let r = h
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a job loop panicked")));
                // The first error wins; otherwise the latest view of the scan.
                if !matches!(worked, Some(Err(_))) {
                    worked = Some(r);
                }
            }
            let worked = worked.expect("at least one job loop");
            self.stop.store(true, Ordering::SeqCst);
            if let Some(h) = lister {
                match h.join() {
                    Ok(r) => {
                        let changed = r
                            .as_ref()
                            .is_err_and(|e| format!("{e:#}").contains("the source changed"));
                        r.with_context(|| {
                            if changed {
                                format!(
                                    "listing the source; it no longer lists as it did: cancel \
                                 this scan (safeguard scan cancel {}) and start a new one",
                                    scan.id
                                )
                            } else {
                                format!(
                                    "listing the source; list it again with: safeguard scan join \
                                 {} --list",
                                    scan.id
                                )
                            }
                        })?
                    }
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
                if let Err(e) = self.store.add_scan_jobs(scan, next_ordinal, batch) {
                    // Listed by another lister meanwhile, or ended: nothing left to plan.
                    if let safeguard_store::Error::Conflict(_) = e {
                        if self
                            .store
                            .scan(scan)?
                            .is_some_and(|s| s.listed || s.is_final())
                        {
                            return Err(Stopped.into());
                        }
                    }
                    return Err(e.into());
                }
                next_ordinal += batch.len() as i64;
                batch.clear();
                self.bump_planned();
            }
            Ok(())
        };
        let listed = self.source.list(&self.rt, |key| {
            if self.stop.load(Ordering::SeqCst) {
                return Err(Stopped.into());
            }
            job.push(key);
            if job.len() == size {
                batch.push(std::mem::replace(&mut job, Vec::with_capacity(size)));
                if batch.len() == JOBS_PER_PLAN {
                    flush(&mut batch)?;
                }
            }
            Ok(())
        });
        let finished = listed.and_then(|()| {
            if !job.is_empty() {
                batch.push(std::mem::take(&mut job));
            }
            flush(&mut batch)
        });
        match finished {
            Ok(()) => {}
            Err(e) if e.is::<Stopped>() => return Ok(()),
            Err(e) => return Err(e),
        }
        self.store.finish_listing(scan, now_ms())?;
        self.bump_planned();
        Ok(())
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }

    fn bump_planned(&self) {
        *self.planned.0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.planned.1.notify_all();
    }

    /// Waits up to [`IDLE_POLL`] for this process's lister to plan more than `seen`, or for
    /// the sibling loop to finish or give back a job.
    fn idle(&self, seen: u64) {
        let g = self.planned.0.lock().unwrap_or_else(|e| e.into_inner());
        if *g == seen {
            // A timeout or a spurious wake-up both just mean: claim again.
            let _ = self.planned.1.wait_timeout(g, IDLE_POLL);
        }
    }

    /// Claims and works jobs until the scan ends; returns it as it ended.
    fn work(
        &self,
        scan: i64,
        listing: &AtomicU8,
        bar: Option<&indicatif::ProgressBar>,
        index: usize,
    ) -> anyhow::Result<Scan> {
        // Each loop claims under its own name, so that one loop's lost lease is never taken
        // for its sibling's.
        let owner = format!("{}/{index}", self.name);
        let mut last_shown = Instant::now();
        let mut failures = 0u32;
        let mut latest: Option<Scan> = None;
        loop {
            if self.stop.load(Ordering::SeqCst) {
                // The other loop failed: end too, with the latest view of the scan.
                return match latest.or(self.store.scan(scan).ok().flatten()) {
                    Some(s) => Ok(s),
                    None => anyhow::bail!("scan {scan} is gone"),
                };
            }
            let seen = *self.planned.0.lock().unwrap_or_else(|e| e.into_inner());
            let claim = match self.store.claim_scan_job(scan, &owner, self.lease_ms()) {
                Ok(c) => c,
                Err(e) => {
                    back_off(
                        &mut failures,
                        e.into(),
                        format!("claiming a job of scan {scan}"),
                    )?;
                    continue;
                }
            };
            match claim {
                Claim::Ended(s) => return Ok(s),
                Claim::Wait => {
                    failures = 0;
                    if listing.load(Ordering::SeqCst) == LIST_FAILED {
                        anyhow::bail!("listing the source failed");
                    }
                    if let Ok(Some(s)) = self.store.scan(scan) {
                        self.show(&s, bar, &mut last_shown, index);
                        latest = Some(s);
                    }
                    self.idle(seen);
                }
                Claim::Job(job) => {
                    match self.work_job(&job, &owner) {
                        Ok(s) => {
                            // A sibling loop waiting for work claims again now: this may
                            // have been the scan's last job, and the end would otherwise
                            // wait out the sibling's poll (a tenth of a small-file scan).
                            self.bump_planned();
                            failures = 0;
                            self.show(&s, bar, &mut last_shown, index);
                            latest = Some(s);
                        }
                        Err(e) => {
                            // Not the job's files: give it back untried, claimable at once.
                            let _ = self.store.release_scan_job(job.id, &owner);
                            self.bump_planned();
                            back_off(&mut failures, e, format!("scan job {}", job.id))?;
                        }
                    }
                }
            }
        }
    }

    fn show(
        &self,
        s: &Scan,
        bar: Option<&indicatif::ProgressBar>,
        last: &mut Instant,
        index: usize,
    ) {
        match bar {
            Some(b) => {
                b.set_length(s.items as u64);
                // Two loops report views taken at slightly different moments; the bar only
                // moves forward (a step back would reset its rate).
                b.set_position(b.position().max(s.items_done as u64));
                if !self.bar_started.swap(true, Ordering::SeqCst) {
                    // A worker joining mid-scan jumps from 0 to what others did: not
                    // progress of its own, for the rate and ETA.
                    b.reset_eta();
                }
                b.set_message(format!(
                    "scan {} {}{} · {:.0} items/s · {} failed · {} matched",
                    s.id,
                    s.state,
                    if s.listed { "" } else { " (listing)" },
                    b.per_sec(),
                    s.items_failed,
                    s.items_matched
                ));
            }
            None if index == 0 && last.elapsed() >= Duration::from_secs(10) => {
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
    fn work_job(&self, job: &ScanJob, owner: &str) -> anyhow::Result<Scan> {
        if job.attempts > MAX_JOB_ATTEMPTS {
            let why = format!(
                "given up: the job was claimed {} times without finishing",
                job.attempts - 1
            );
            let results: Vec<ItemResult> =
                job.items.iter().map(|k| failed(k, why.clone())).collect();
            return Ok(self
                .store
                .finish_scan_job(job.id, owner, &results, now_ms())?);
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let progress = Progress::default();
        let results = std::thread::scope(|sc| {
            let progress = &progress;
            sc.spawn(move || {
                let every = self.lease / 3;
                let (mut last, mut moved_at) = (0, Instant::now());
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let finished = progress.finished.load(Ordering::Relaxed);
                    let started = progress.started.load(Ordering::Relaxed);
                    // Stalled only while an item is in hand: a job whose items wait for the
                    // hashing threads (busy with the other loop's job) is queued, not hung.
                    if finished != last || started == finished {
                        (last, moved_at) = (finished, Instant::now());
                    } else if moved_at.elapsed() > self.stall {
                        // Hung (a stalled network file system, say): no renewal this time, so
                        // the job passes to another worker when the lease runs out.
                        eprintln!(
                            "safeguard: scan job {} made no progress for {:?}; not renewing \
                             its lease",
                            job.id, self.stall
                        );
                        continue;
                    }
                    match self.store.renew_scan_job(job.id, owner, self.lease_ms()) {
                        Ok(true) => {}
                        // Lost: someone else has it; finishing still records nothing twice.
                        Ok(false) => return,
                        Err(e) => {
                            eprintln!("safeguard: renewing the lease of scan job {}: {e}", job.id)
                        }
                    }
                }
            });
            let r = self.process(job, progress);
            drop(stop);
            r
        })?;
        Ok(self
            .store
            .finish_scan_job(job.id, owner, &results, now_ms())?)
    }

    fn process(&self, job: &ScanJob, progress: &Progress) -> anyhow::Result<Vec<ItemResult>> {
        // New hashes added since the last job are matched from this one on.
        self.actioner.engine().sync()?;
        // The scan's directory may have been renamed or replaced since the last job.
        self.source.check_root();
        let one = |key: &String, bytes: Result<Vec<u8>, String>| {
            let r = self.item(job.scan_id, key, bytes);
            progress.finished.fetch_add(1, Ordering::Relaxed);
            r
        };
        if self.source.is_local() {
            // Read on the hashing threads: a serial read of a job's files first was a tenth
            // of a small-file scan's time.
            return job
                .items
                .par_iter()
                .map(|key| {
                    progress.started.fetch_add(1, Ordering::Relaxed);
                    one(key, self.source.read(key, self.max_bytes))
                })
                .collect();
        }
        // Fetched a bounded number at a time, shared between the job loops: a job's worth of
        // large videos in memory at once could be tens of GiB.
        let mut out = Vec::with_capacity(job.items.len());
        for keys in job.items.chunks((FETCH_CONCURRENCY / JOBS_AT_ONCE).max(1)) {
            progress
                .started
                .fetch_add(keys.len() as u64, Ordering::Relaxed);
            // A bucket that fails (not a missing object) fails the job: it is handed back.
            let bytes = self.source.fetch(&self.rt, keys, self.max_bytes)?;
            let done: anyhow::Result<Vec<ItemResult>> = keys
                .par_iter()
                .zip(bytes.into_par_iter())
                .map(|(key, b)| one(key, b))
                .collect();
            out.extend(done?);
        }
        Ok(out)
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
        // Most files match nothing: a plain lookup of each signal decides that without
        // building a submission or running the policy (a fifth of a small-file scan's time).
        let mut raw = false;
        for v in &signals {
            if !self
                .actioner
                .engine()
                .lookup(v, &self.lookup)?
                .matches
                .is_empty()
            {
                raw = true;
                break;
            }
        }
        if !raw {
            return Ok(r);
        }
        let sub = Submission {
            id: submission_id(scan, key),
            kind,
            signals,
            account: None,
            account_age: AccountAge::Unknown,
            surface: Some(Surface::Backfill),
            created_at: None,
            ip: None,
            // A key is at most 1,024 bytes (`MAX_ITEM_KEY_BYTES`): even all control characters,
            // six bytes each in JSON, it fits the metadata's 16 KiB.
            metadata: Some(json!({ "scan": scan, "key": key })),
            media: Some(MediaDigest {
                sha256: d.sha256_hex(),
                md5: d.md5_hex(),
                size: r.size.unwrap_or(0) as u64,
            }),
            url: None,
        };
        let eval = match self.actioner.evaluate_with(&sub, &self.lookup) {
            Ok(e) => e,
            Err(e) if e.is_client_error() => return Ok(with_error(r, format!("not matched: {e}"))),
            Err(e) => return Err(e.into()),
        };
        if !eval.matches.is_empty() {
            // Recorded under an id made of the scan and key, so a job redone after a dead
            // worker replays the first record instead of opening a second case.
            r.matched = true;
            r.submission = Some(sub.id.clone());
            match self.actioner.record(&sub, &eval, None) {
                Ok(rec) => r.verdict = rec.body["verdict"].as_str().map(str::to_string),
                // Recorded before with other content (the file changed between two
                // attempts): the first record stands; this result says why it differs.
                Err(e) if e.is_client_error() => {
                    return Ok(with_error(r, format!("match not recorded: {e}")))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(r)
    }
}

/// The store or the network failed: wait 2, 4, 8, ... s and go on; an error after
/// [`MAX_CONSECUTIVE_FAILURES`] in a row.
fn back_off(failures: &mut u32, e: anyhow::Error, what: String) -> anyhow::Result<()> {
    *failures += 1;
    eprintln!("safeguard: {what} failed: {e:#}");
    if *failures >= MAX_CONSECUTIVE_FAILURES {
        return Err(e.context(format!(
            "{failures} failures in a row; stopping this worker"
        )));
    }
    std::thread::sleep(Duration::from_secs(1 << (*failures).min(5)));
    Ok(())
}

fn with_error(mut r: ItemResult, why: String) -> ItemResult {
    r.error = Some(match r.error.take() {
        Some(first) => format!("{first}; {why}"),
        None => why,
    });
    r
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s))
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
/// The id of a matching item's submission: the key itself where an id can hold it (short, and
/// printable: ids go into reports as they are), else its SHA-256.
fn submission_id(scan: i64, key: &str) -> String {
    if key.len() <= MAX_SUBMISSION_KEY && !key.chars().any(char::is_control) {
        format!("scan:{scan}:{key}")
    } else {
        format!("scan:{scan}:sha256:{}", sha256_hex(key))
    }
}

fn progress_bar() -> indicatif::ProgressBar {
    let b = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg}\n[{bar:40}] {pos}/{len} items · ETA {eta}")
    {
        b.set_style(style.progress_chars("=> "));
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--job-size` is 1 to 1,000 and `--lease-secs` 3 to 3,600 (docs/scans.md): outside,
    /// the command line is refused before anything runs.
    #[test]
    fn job_size_and_lease_are_bounded_on_the_command_line() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            scan: ScanArgs,
        }
        use clap::Parser;
        let parse = |extra: &[&str]| {
            let mut argv = vec!["safeguard", "DIR", "--all"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).map(|c| (c.scan.job_size, c.scan.worker.lease_secs))
        };
        assert_eq!(parse(&[]).unwrap(), (100, 60));
        assert_eq!(
            parse(&["--job-size", "1", "--lease-secs", "3"]).unwrap(),
            (1, 3)
        );
        assert_eq!(
            parse(&["--job-size", "1000", "--lease-secs", "3600"]).unwrap(),
            (1000, 3600)
        );
        for bad in [
            &["--job-size", "0"][..],
            &["--job-size", "1001"],
            &["--lease-secs", "2"],
            &["--lease-secs", "3601"],
        ] {
            let e = parse(bad).map(|_| ()).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{bad:?}");
        }
    }

    #[test]
    fn submission_ids_fit() {
        assert_eq!(submission_id(3, "a/b.jpg"), "scan:3:a/b.jpg");
        let long = "k".repeat(4000);
        let id = submission_id(3, &long);
        assert!(id.starts_with("scan:3:sha256:") && id.len() <= 256, "{id}");
        assert_ne!(id, submission_id(3, &"k".repeat(3999)));
        // A key with a control character (a file name may hold one) is given by its digest:
        // an id must be printable.
        let odd = submission_id(3, "line\nbreak.jpg");
        assert_eq!(
            odd,
            format!("scan:3:sha256:{}", sha256_hex("line\nbreak.jpg"))
        );
    }

    #[test]
    fn targets_round_trip() {
        let all = target_json(&[], Compat::Pytx);
        assert_eq!(all, r#"{"all":true,"compat":"pytx"}"#);
        let t = target_json(&["a".into(), "b\"".into()], Compat::Cpp512);
        let v: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(v["banks"][1], "b\"");
        assert_eq!(compat_of(&t).unwrap(), Compat::Cpp512);
        assert_eq!(compat_of(&all).unwrap(), Compat::Pytx);
        assert_eq!(compat_of(r#"{"all":true}"#).unwrap(), Compat::Pytx);
        assert!(compat_of(r#"{"compat":"nope"}"#).is_err());
        assert!(compat_of("{").is_err());
    }

    /// A job claimed more than `MAX_JOB_ATTEMPTS` (5) times, each claim ending in a dead or
    /// hung worker, is not tried again: its items are recorded as failed, "given up"
    /// (docs/scans.md). At its fifth claim it is still worked (its files, missing here, are
    /// each that file's own error).
    #[test]
    fn a_job_claimed_more_than_five_times_is_given_up() {
        assert_eq!(MAX_JOB_ATTEMPTS, 5);
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            worker: WorkerArgs,
        }
        use clap::Parser;
        let args = Cli::try_parse_from(["safeguard", "--in-process"])
            .unwrap()
            .worker;
        let dir = tempfile::tempdir().unwrap();
        let source = format!("dir:{}", dir.path().display());
        let target = target_json(&[], Compat::Pytx);
        let run = |claims: i64| -> Vec<Option<String>> {
            let store: Arc<dyn Store> =
                Arc::new(safeguard_store::SqliteStore::open_in_memory().unwrap());
            let scan = store
                .create_scan(&NewScan {
                    source: source.clone(),
                    target: target.clone(),
                    created_by: "test".into(),
                    created_at: now_ms(),
                    job_size: 2,
                })
                .unwrap();
            store
                .add_scan_jobs(scan.id, 0, &[vec!["a.png".into(), "b.png".into()]])
                .unwrap();
            store.finish_listing(scan.id, now_ms()).unwrap();
            let mut job = None;
            for _ in 0..claims {
                // Each earlier claim's 1 ms lease runs out, as a dead worker's does.
                std::thread::sleep(Duration::from_millis(5));
                match store.claim_scan_job(scan.id, "w", 1).unwrap() {
                    Claim::Job(j) => job = Some(j),
                    other => panic!("{other:?}"),
                }
            }
            let job = job.unwrap();
            assert_eq!(job.attempts, claims);
            // Renewed for the work below.
            assert!(store.renew_scan_job(job.id, "w", 60_000).unwrap());
            let w = Worker::new(store.clone(), &source, &target, &args, "w".into()).unwrap();
            w.work_job(&job, "w").unwrap();
            store
                .scan_results(scan.id, None, 10)
                .unwrap()
                .into_iter()
                .map(|r| r.result.error)
                .collect()
        };
        let given_up = run(6);
        assert_eq!(given_up.len(), 2);
        for e in &given_up {
            assert_eq!(
                e.as_deref(),
                Some("given up: the job was claimed 5 times without finishing")
            );
        }
        let worked = run(5);
        assert_eq!(worked.len(), 2);
        for e in &worked {
            let e = e.as_deref().expect("a missing file is an error");
            assert!(!e.starts_with("given up"), "{e}");
        }
    }

    #[test]
    fn errors_add_up() {
        let r = with_error(failed("k", "first".into()), "second".into());
        assert_eq!(r.error.as_deref(), Some("first; second"));
    }
}
