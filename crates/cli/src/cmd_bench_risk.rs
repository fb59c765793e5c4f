//! `safeguard bench risk` and `safeguard bench contact`: the contact-risk scorer's speed and
//! its accuracy on synthetic labelled streams (`safeguard_risk::synth`).
//!
//! - `bench risk` scores generated streams on one thread and prints events per second,
//!   scoring alone and with JSON parsing and validation, against the target of
//!   100,000 events/s on one core; it exits 1 below `--min-rate`.
//! - `bench contact` prints precision, recall and F0.5 at the configured `review` and
//!   `alert` thresholds, the false-alert rate on benign accounts, and a per-script table.
//!   With `--semantic-model DIR` it scores the stream twice, without and with the semantic
//!   feature (`safeguard-semantic`), and prints both, with the model's messages per second;
//!   `--paraphrased P` writes that share of the risky requests in words the patterns miss.
//!
//! Both read the `[risk]` table of a server configuration file with `--config` (else the
//! defaults), and a pattern file with `--patterns` (else `[risk] patterns`, else the shipped
//! one). The figures and their limits are recorded in docs/child-safety.md and
//! docs/performance.md.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use safeguard_risk::evaluation::{evaluate, evaluate_with, Report};
use safeguard_risk::synth::{generate, Dataset, SynthSpec};
use safeguard_risk::{Event, PatternSet, RiskSpec, Scorer};

use crate::output::{Out, WriteResult};

/// Appends one formatted line to a `String` report (writing to a `String` cannot fail).
macro_rules! out {
    ($text:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($text, $($arg)*);
    }};
}

/// Writes a report to stdout; a reader that went away (`| head`) ends it quietly.
fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = Out::stdout();
    for l in text.lines() {
        if out.line(l)? == WriteResult::Closed {
            return Ok(());
        }
    }
    out.flush()?;
    Ok(())
}

/// The throughput target: events per second on one core.
pub const TARGET_EVENTS_PER_SEC: f64 = 100_000.0;

/// Settings shared by both benchmarks.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// A Safeguard configuration file whose `[risk]` table sets thresholds and weights.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A pattern file (TOML, see crates/risk/patterns/default.toml).
    #[arg(long)]
    pub patterns: Option<PathBuf>,
    /// The generator's seed.
    #[arg(long, default_value_t = 17)]
    pub seed: u64,
    /// Risky scripts in the stream.
    #[arg(long, default_value_t = 500)]
    pub risky: usize,
    /// Benign scripts in the stream.
    #[arg(long, default_value_t = 5_000)]
    pub benign: usize,
    /// Days the stream spans.
    #[arg(long, default_value_t = 14)]
    pub days: u32,
    /// Share (0 to 1) of the grooming scripts' requests written in words the shipped
    /// patterns do not hold (`safeguard_risk::synth::RISKY_PARAPHRASED`).
    #[arg(long, default_value_t = 0.0)]
    pub paraphrased: f64,
}

/// Arguments of `safeguard bench risk`.
#[derive(Debug, clap::Args)]
pub struct BenchRiskArgs {
    #[command(flatten)]
    pub common: Common,
    /// Score the stream again (fresh scorer) until at least this many events were scored.
    #[arg(long, default_value_t = 2_000_000)]
    pub min_events: usize,
    /// Exit 1 when scoring alone is slower than this many events/s.
    #[arg(long, default_value_t = TARGET_EVENTS_PER_SEC)]
    pub min_rate: f64,
}

/// Arguments of `safeguard bench contact`.
#[derive(Debug, clap::Args)]
pub struct BenchContactArgs {
    #[command(flatten)]
    pub common: Common,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// A sentence-embedding model directory: also score with the semantic feature (else
    /// `[risk.semantic] model_dir` of `--config`, else not).
    #[arg(long)]
    pub semantic_model: Option<PathBuf>,
}

fn load_spec(config: Option<&Path>) -> anyhow::Result<RiskSpec> {
    let Some(path) = config else {
        return Ok(RiskSpec::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let spec = match value.get("risk") {
        Some(t) => t
            .clone()
            .try_into()
            .with_context(|| format!("{}: [risk]", path.display()))?,
        None => RiskSpec::default(),
    };
    Ok(spec)
}

fn scorer(common: &Common) -> anyhow::Result<Scorer> {
    let spec = load_spec(common.config.as_deref())?;
    let path = common.patterns.clone().or_else(|| spec.patterns.clone());
    let patterns = match path {
        Some(p) => PatternSet::from_toml(
            &std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
        )?,
        None => PatternSet::default_set(),
    };
    Ok(Scorer::new(spec, patterns)?)
}

fn synth(common: &Common) -> SynthSpec {
    SynthSpec {
        seed: common.seed,
        risky: common.risky,
        benign: common.benign,
        days: common.days,
        paraphrased: common.paraphrased,
        ..SynthSpec::default()
    }
}

/// Scores `events` with fresh scorers until `min` events were scored; events/s.
fn rate(
    template: &Scorer,
    events: &[Event],
    min: usize,
    mut each: impl FnMut(&mut Scorer, &Event),
) -> f64 {
    let mut scored = 0usize;
    let started = Instant::now();
    while scored < min.max(1) {
        let mut s = template.clone();
        for e in events {
            each(&mut s, e);
        }
        scored += events.len().max(1);
    }
    scored as f64 / started.elapsed().as_secs_f64()
}

/// `safeguard bench risk`.
pub fn run_risk(args: &BenchRiskArgs) -> anyhow::Result<ExitCode> {
    let mut text = String::new();
    let template = scorer(&args.common)?;
    let data = generate(&synth(&args.common));
    anyhow::ensure!(!data.events.is_empty(), "the generated stream is empty");
    let with_text = data.events.iter().filter(|e| e.text.is_some()).count();
    let json: Vec<serde_json::Value> = data
        .events
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    out!(
        text,
        "stream: {} events ({} with text, {} metadata only), seed {}",
        data.events.len(),
        with_text,
        data.events.len() - with_text,
        args.common.seed
    );
    let metadata: Vec<Event> = data
        .events
        .iter()
        .map(|e| Event {
            text: None,
            ..e.clone()
        })
        .collect();
    let mut crossings = 0usize;
    let scoring = rate(&template, &data.events, args.min_events, |s, e| {
        crossings += usize::from(s.observe(e).crossing.is_some());
    });
    let meta = rate(&template, &metadata, args.min_events, |s, e| {
        std::hint::black_box(s.observe(e));
    });
    // Parsing as the server does: each event from a JSON value, validated, then scored.
    let mut failures = 0usize;
    let parsed = {
        let mut scored = 0usize;
        let started = Instant::now();
        while scored < (args.min_events / 2).max(1) {
            let mut s = template.clone();
            for v in &json {
                match Event::from_json_value(v.clone(), "event") {
                    Ok(e) => {
                        std::hint::black_box(s.observe(&e));
                    }
                    Err(_) => failures += 1,
                }
            }
            scored += json.len();
        }
        scored as f64 / started.elapsed().as_secs_f64()
    };
    anyhow::ensure!(
        failures == 0,
        "{failures} generated events failed validation"
    );
    let memory = {
        let mut s = template.clone();
        for e in &data.events {
            s.observe(e);
        }
        (s.accounts(), s.approx_bytes(), s.max_bytes())
    };
    out!(
        text,
        "one thread, events/s (target {TARGET_EVENTS_PER_SEC:.0}):"
    );
    out!(
        text,
        "  scoring, text as sent        {:>12.0}  ({:.1}x target)",
        scoring,
        scoring / TARGET_EVENTS_PER_SEC
    );
    out!(
        text,
        "  scoring, metadata only       {:>12.0}  (text costs {:.0}% of the time)",
        meta,
        (1.0 - scoring / meta).max(0.0) * 100.0
    );
    out!(
        text,
        "  JSON value -> validate -> score {:>9.0}  ({:.1}x target)",
        parsed,
        parsed / TARGET_EVENTS_PER_SEC
    );
    out!(
        text,
        "memory: {} accounts tracked, about {} KiB ({} bytes/account; bound {} MiB at max_accounts)",
        memory.0,
        memory.1 / 1024,
        memory.1 / memory.0.max(1),
        memory.2 >> 20
    );
    let passes = args.min_events.div_ceil(data.events.len()).max(1);
    out!(text, "crossings per pass: {}", crossings / passes);
    emit(&std::mem::take(&mut text))?;
    if scoring < args.min_rate {
        eprintln!(
            "FAIL: {scoring:.0} events/s is below the required {:.0}",
            args.min_rate
        );
        return Ok(ExitCode::from(1));
    }
    out!(
        text,
        "PASS: at least {:.0} events/s on one thread",
        args.min_rate
    );
    emit(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// `safeguard bench contact`.
pub fn run_contact(args: &BenchContactArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.common.paraphrased),
        "--paraphrased is a share, 0 to 1"
    );
    let template = scorer(&args.common)?;
    let spec = template.spec().clone();
    let data = generate(&synth(&args.common));
    let report = evaluate(&mut template.clone(), &data);
    let model = args
        .semantic_model
        .clone()
        .or_else(|| spec.semantic.model_dir.clone());
    let semantic = match model {
        None => None,
        Some(dir) => Some(semantic_run(&template, &data, &dir)?),
    };
    let text = if args.json {
        // The report's own fields at the top, as without a model; `semantic` beside them.
        let mut v = serde_json::to_value(&report)?;
        if let Some(s) = &semantic {
            v["semantic"] = serde_json::json!({
                "report": s.report,
                "candidates": s.candidates,
                "flagged": s.flagged,
                "flagged_risky": s.flagged_risky,
                "seconds": s.seconds,
                "messages_per_second": s.candidates as f64 / s.seconds,
            });
        }
        serde_json::to_string_pretty(&v)?
    } else {
        let mut text = print_report(&report, &spec, args.common.seed);
        if let Some(s) = &semantic {
            out!(text, "");
            out!(
                text,
                "with the semantic feature (model {}):\n{} candidate messages embedded in {:.2} s \
                 ({:.0} messages/s), {} flagged, {} of them by risky accounts",
                s.model,
                s.candidates,
                s.seconds,
                s.candidates as f64 / s.seconds,
                s.flagged,
                s.flagged_risky
            );
            text.push_str(&print_report(&s.report, &spec, args.common.seed));
        }
        text
    };
    emit(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// The same stream scored with the semantic feature.
struct SemanticRun {
    model: String,
    report: Report,
    candidates: usize,
    flagged: usize,
    flagged_risky: usize,
    seconds: f64,
}

fn semantic_run(template: &Scorer, data: &Dataset, dir: &Path) -> anyhow::Result<SemanticRun> {
    let spec = template.spec();
    let examples = safeguard_semantic::ExampleSets::from_file(spec.semantic.examples.as_deref())?;
    let model = safeguard_semantic::Contrast::new(
        safeguard_semantic::Embedder::open(dir)?,
        &examples,
        spec.semantic.top_k,
    )?;
    // Which messages are candidates depends on pair state that the flags do not change, so
    // one pass without flags finds exactly the ones the flagged pass will ask about.
    let mut probe = template.clone();
    let mut candidates = Vec::new();
    for (i, e) in data.events.iter().enumerate() {
        if probe.semantic_candidate(e) {
            candidates.push(i);
        }
        probe.observe(e);
    }
    let texts: Vec<&str> = candidates
        .iter()
        .map(|&i| data.events[i].text.as_deref().unwrap_or(""))
        .collect();
    let started = Instant::now();
    let sims = model.score(&texts)?;
    let seconds = started.elapsed().as_secs_f64();
    let risky: std::collections::HashSet<&str> = data
        .labels
        .iter()
        .filter(|l| l.risky)
        .map(|l| l.account.as_str())
        .collect();
    let mut flags = vec![false; data.events.len()];
    let (mut flagged, mut flagged_risky) = (0, 0);
    for (&i, s) in candidates.iter().zip(&sims) {
        if f64::from(s.contrast) >= spec.semantic.min_contrast {
            flags[i] = true;
            flagged += 1;
            flagged_risky += usize::from(risky.contains(data.events[i].actor.as_str()));
        }
    }
    let report = evaluate_with(&mut template.clone(), data, &flags);
    Ok(SemanticRun {
        model: dir.display().to_string(),
        report,
        candidates: candidates.len(),
        flagged,
        flagged_risky,
        seconds: seconds.max(1e-9),
    })
}

fn print_report(r: &Report, spec: &RiskSpec, seed: u64) -> String {
    let mut text = String::new();
    out!(
        text,
        "synthetic stream: {} events, {} risky and {} benign accounts (seed {seed})",
        r.events,
        r.risky,
        r.benign
    );
    out!(
        text,
        "threshold        precision  recall   F0.5    TP    FP    FN     TN"
    );
    for (name, t, m) in [
        ("review", spec.review, &r.review),
        ("alert", spec.alert, &r.alert),
    ] {
        out!(
            text,
            "{:<7}{:>6.2}    {:>8.3}  {:>6.3}  {:>6.3}  {:>4}  {:>4}  {:>4}  {:>5}",
            name,
            t,
            m.precision,
            m.recall,
            m.f05,
            m.true_positives,
            m.false_positives,
            m.false_negatives,
            m.true_negatives
        );
    }
    out!(
        text,
        "false-alert rate on benign accounts: {:.4} ({} of {})",
        r.false_alert_rate,
        r.alert.false_positives,
        r.benign
    );
    out!(text, "script                   accounts  review  alert");
    for b in &r.by_script {
        out!(
            text,
            "{:<24} {:>8}  {:>6}  {:>5}",
            b.script.as_str(),
            b.accounts,
            b.review,
            b.alert
        );
    }
    text
}
