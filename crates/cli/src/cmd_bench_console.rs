//! `safeguard bench console`: the review console's server time per page with a million open
//! cases across queues, and the latency of claims with many reviewers claiming at once.
//!
//! Requests go through the whole HTTP router (session lookup, CSRF, the store, rendering) in
//! process, so the time is the server's own, without a network or a browser. Printed against
//! the targets (50 ms per page, 10 ms p99 per claim) and against a baseline measured in the
//! same run: the API's own case list at the same scale for pages, and one reviewer claiming
//! alone for claims.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::http::Request;
use safeguard_store::action::{CaseAssignment, NewSubmission, SubmissionJob};
use safeguard_store::console::{ClaimJob, ConsoleSession, NewUser};
use safeguard_store::Store;
use tower::ServiceExt;

/// Arguments of `safeguard bench console`.
#[derive(Debug, clap::Args)]
pub struct BenchConsoleArgs {
    /// Open cases to seed (skipped when the store already has this many).
    #[arg(long, default_value_t = 1_000_000)]
    pub cases: u64,
    /// Queues the cases are spread over.
    #[arg(long, default_value_t = 10)]
    pub queues: u32,
    /// Reviewers claiming at once.
    #[arg(long, default_value_t = 20)]
    pub reviewers: usize,
    /// Claims per reviewer.
    #[arg(long, default_value_t = 100)]
    pub claims: usize,
    /// Requests per page kind.
    #[arg(long, default_value_t = 200)]
    pub page_requests: usize,
    /// Data directory (a SQLite store there); a temporary one when absent.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A `postgres://` URL to benchmark PostgreSQL instead.
    #[arg(long)]
    pub store: Option<String>,
    /// Leases that lapsed long ago to leave behind first (a reviewer who walked away from
    /// this many cases): lone claims are timed with them, then again after the lapsed-lease
    /// sweep returns them to their queues.
    #[arg(long, default_value_t = 0)]
    pub lapsed: usize,
}

/// Server time per page must stay under this.
const PAGE_TARGET_MS: f64 = 50.0;
/// A claim's p99 must stay under this.
const CLAIM_TARGET_MS: f64 = 10.0;

struct Stats {
    p50: f64,
    p99: f64,
    max: f64,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| ms(v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1]);
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        max: ms(*v.last().unwrap()),
    }
}

fn seed(store: &dyn Store, n: u64, queues: u32) -> anyhow::Result<()> {
    let have: u64 = store
        .queue_stats()?
        .iter()
        .map(|q| q.open + q.in_review)
        .sum();
    if have >= n {
        println!("store already has {have} open cases; not seeding");
        return Ok(());
    }
    let start = Instant::now();
    let now = safeguard_engine::now_ms();
    let mut i = have;
    while i < n {
        let end = (i + 5_000).min(n);
        let mut batch: Vec<SubmissionJob> = (i..end)
            .map(|k| SubmissionJob {
                submission: NewSubmission {
                    platform_id: format!("bench-{k}"),
                    fingerprint: format!("fp-{k}"),
                    account: Some(format!("acct-{k}")),
                    verdict: "review".into(),
                    rule: None,
                    context: "{}".into(),
                    result: r#"{"verdict":"review","matches":[]}"#.into(),
                    case: Some(CaseAssignment {
                        queue: format!("queue-{}", k % u64::from(queues)),
                        priority: (k % 4) as i32,
                        report_candidate: true,
                        labels: vec![],
                    }),
                    evidence: None,
                    // Spread over the last 30 days, so "oldest" means something.
                    created_at: now - (k as i64 % 2_592_000) * 1000,
                },
                events: Box::new(|_| Vec::new()),
            })
            .collect();
        for r in store.record_submissions(&mut batch)? {
            r?;
        }
        i = end;
        if i % 100_000 == 0 {
            println!("seeded {i} cases ({:.0} s)", start.elapsed().as_secs_f64());
        }
    }
    println!("seeded {n} cases in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// A person with a session whose raw token is returned.
fn person(store: &dyn Store, name: &str, roles: &str) -> anyhow::Result<(String, String)> {
    let now = safeguard_engine::now_ms();
    let user = match store.user_by_name(name)? {
        Some(u) => u,
        None => store.create_user(&NewUser {
            name: name.into(),
            roles: roles.into(),
            setup_token_hash: safeguard_console::token::new_token(),
            setup_expires_at: now,
            at: now,
        })?,
    };
    let raw = safeguard_console::token::new_token();
    let csrf = safeguard_console::token::new_token();
    store.create_session(&ConsoleSession {
        id_hash: safeguard_console::token::hash(&raw),
        user_id: user.id,
        csrf: csrf.clone(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + 8 * 3_600_000,
    })?;
    Ok((raw, csrf))
}

async fn timed(app: &axum::Router, req: Request<Body>) -> anyhow::Result<(Duration, u16)> {
    let t = Instant::now();
    let resp = app.clone().oneshot(req).await?;
    let status = resp.status().as_u16();
    // The body is part of the server's work: render and collect it.
    let _ = axum::body::to_bytes(resp.into_body(), usize::MAX).await?;
    Ok((t.elapsed(), status))
}

fn get(path: &str, cookie: &str) -> Request<Body> {
    Request::get(path)
        .header("cookie", format!("sg_session={cookie}"))
        .header("authorization", format!("Bearer {}", BENCH_ADMIN_KEY))
        .body(Body::empty())
        .unwrap()
}

fn claim_request(cookie: &str, csrf: &str, queue: u32) -> Request<Body> {
    Request::post(format!("/console/queues/queue-{queue}/claim"))
        .header("cookie", format!("sg_session={cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("csrf={csrf}")))
        .unwrap()
}

/// Every person (session cookie, CSRF token) claims `claims` times, all at once, each from
/// the queues in turn; with `rounds`, each claim of a round starts at the same instant (a
/// barrier), else each person claims again as soon as the last answer came. Every claim's
/// server time, and the wall time of it all.
async fn claim_loads(
    app: &axum::Router,
    people: &[(String, String)],
    claims: usize,
    queues: u32,
    rounds: bool,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(people.len()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, (c, k)) in people.iter().cloned().enumerate() {
        let app = app.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut v = Vec::with_capacity(claims);
            for j in 0..claims {
                let req = claim_request(&c, &k, ((i + j) as u32) % queues);
                if rounds {
                    barrier.wait().await;
                }
                let (d, status) = timed(&app, req).await?;
                anyhow::ensure!(status == 303, "claim answered {status}");
                v.push(d);
            }
            Ok::<_, anyhow::Error>(v)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok((all, started.elapsed()))
}

/// Leaves `a.lapsed` leases that lapsed two lease lengths ago (claimed straight in the store
/// by a reviewer who then walked away), times `a.claims` lone claims with them, runs the
/// server's lapsed-lease sweep, and times as many lone claims after it.
async fn lapsed_leases(
    state: &safeguard_server::AppState,
    app: &axum::Router,
    (cookie, csrf): &(String, String),
    a: &BenchConsoleArgs,
) -> anyhow::Result<()> {
    let store = state.0.store.clone();
    let lease_ms = i64::try_from(state.0.config.console.lease_secs)? * 1000;
    let t = Instant::now();
    person(store.as_ref(), "bench-away", "reviewer")?;
    let away = store.user_by_name("bench-away")?.context("bench-away")?.id;
    let then = safeguard_engine::now_ms() - 2 * lease_ms - 60_000;
    let mut left = a.lapsed;
    let mut k = 0usize;
    while left > 0 {
        let n = left.min(1_000);
        let mut jobs: Vec<ClaimJob> = (0..n)
            .map(|i| ClaimJob {
                queues: vec![format!("queue-{}", (k + i) % a.queues as usize)],
                holder: away,
                actor_label: "console:bench-away".into(),
                now: then,
                lease_ms,
                events: Box::new(|_| Vec::new()),
            })
            .collect();
        for r in store.claim_next_batch(&mut jobs)? {
            r?.context("nothing left to claim")?;
        }
        k += n;
        left -= n;
    }
    println!(
        "\n{} leases left to lapse ({:.1} s to claim them)",
        a.lapsed,
        t.elapsed().as_secs_f64()
    );
    let lone = |label: &'static str| async move {
        let mut v = Vec::with_capacity(a.claims);
        for _ in 0..a.claims {
            let (d, status) = timed(app, claim_request(cookie, csrf, 0)).await?;
            anyhow::ensure!(status == 303, "claim answered {status}");
            v.push(d);
        }
        let s = stats(v);
        println!(
            "{label:<44} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            s.p50,
            s.p99,
            s.max,
            s.p99 / CLAIM_TARGET_MS
        );
        Ok::<_, anyhow::Error>(s)
    };
    println!(
        "{:<44} {:>8} {:>8} {:>8} {:>8}",
        "", "p50 ms", "p99 ms", "max ms", "p99/target"
    );
    let before = lone("1 reviewer alone, leases lapsed").await?;
    let t = Instant::now();
    let reopened =
        safeguard_server::console::reopen_lapsed_leases(state, safeguard_engine::now_ms())
            .await
            .map_err(|e| anyhow::anyhow!("lapsed-lease sweep: {}", e.message))?;
    let swept = t.elapsed();
    let after = lone("1 reviewer alone, after the sweep").await?;
    println!(
        "sweep: {reopened} cases back in their queues in {:.2} s; lone claim p50 after = {:.2}x before",
        swept.as_secs_f64(),
        after.p50 / before.p50.max(1e-9)
    );
    Ok(())
}

const BENCH_ADMIN_KEY: &str = "bench-console-admin-key-0123456789abcdef";

/// Runs `safeguard bench console`.
pub fn run(a: &BenchConsoleArgs) -> anyhow::Result<ExitCode> {
    let tmp = tempfile::tempdir()?;
    let dir = a
        .data_dir
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let store: Arc<dyn Store> =
        Arc::from(crate::cmd_serve::open_any_store(a.store.as_deref(), &dir)?);
    seed(store.as_ref(), a.cases, a.queues)?;
    let t = Instant::now();
    let qs = store.queue_stats()?;
    println!(
        "queue depth query (uncached, every queue): {:.1} ms over {} queues, {} open",
        t.elapsed().as_secs_f64() * 1000.0,
        qs.len(),
        qs.iter().map(|q| q.open).sum::<u64>()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // --dev: plain cookie names; the console still needs its own session.
        let config = safeguard_server::config::Config {
            data_dir: dir.clone(),
            dev: true,
            ..Default::default()
        };
        let state = safeguard_server::AppState::new(store.clone(), config, Some(BENCH_ADMIN_KEY))
            .map_err(anyhow::Error::msg)?;
        safeguard_server::load_engine(state.clone(), None)
            .await
            .map_err(anyhow::Error::msg)?;
        let app = safeguard_server::app(state.clone());
        // A store reused from earlier runs holds their leases; the server's minute-by-minute
        // sweep would have returned those that lapsed a lease length ago to their queues.
        let t = Instant::now();
        let reopened =
            safeguard_server::console::reopen_lapsed_leases(&state, safeguard_engine::now_ms())
                .await
                .map_err(|e| anyhow::anyhow!("lapsed-lease sweep: {}", e.message))?;
        if reopened > 0 {
            println!(
                "lapsed-lease sweep: {reopened} cases of earlier runs back in their queues ({:.1} s)",
                t.elapsed().as_secs_f64()
            );
        }
        let (lead, _) = person(store.as_ref(), "bench-lead", "senior,admin")?;
        let some_case = store
            .cases(&safeguard_store::action::CaseFilter {
                limit: 1,
                ..Default::default()
            })?
            .first()
            .map(|c| c.id)
            .context("no case")?;

        println!("\nserver time per page, {} requests each (target {PAGE_TARGET_MS} ms):", a.page_requests);
        println!("{:<34} {:>8} {:>8} {:>8} {:>8}", "page", "p50 ms", "p99 ms", "max ms", "p99/target");
        let pages = [
            ("/v1/cases?limit=50 (API baseline)".to_string(), "/v1/cases?limit=50".to_string()),
            ("/console (queues)".into(), "/console".into()),
            ("/console/cases/{id}".into(), format!("/console/cases/{some_case}")),
            ("/console/approvals".into(), "/console/approvals".into()),
            ("/console/team".into(), "/console/team".into()),
        ];
        let mut worst = 0f64;
        let mut baseline = 0f64;
        for (label, path) in &pages {
            let mut times = Vec::with_capacity(a.page_requests);
            for _ in 0..a.page_requests {
                let (d, status) = timed(&app, get(path, &lead)).await?;
                anyhow::ensure!(status == 200, "{path} answered {status}");
                times.push(d);
            }
            let s = stats(times);
            if path.starts_with("/v1/") {
                baseline = s.p99;
            } else {
                worst = worst.max(s.p99);
            }
            println!(
                "{label:<34} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                s.p50,
                s.p99,
                s.max,
                s.p99 / PAGE_TARGET_MS
            );
        }
        println!(
            "worst console page p99 {worst:.2} ms = {:.2}x the API list's p99 ({baseline:.2} ms), {:.2}x the target",
            worst / baseline.max(1e-9),
            worst / PAGE_TARGET_MS
        );

        // Claims: one reviewer alone (baseline), then all at once.
        let mut people = Vec::new();
        for r in 0..a.reviewers {
            people.push(person(store.as_ref(), &format!("bench-reviewer-{r}"), "reviewer")?);
        }
        if a.lapsed > 0 {
            lapsed_leases(&state, &app, &people[0], a).await?;
        }
        let mut alone = Vec::new();
        for _ in 0..a.claims {
            let (c, k) = &people[0];
            let (d, status) = timed(&app, claim_request(c, k, 0)).await?;
            anyhow::ensure!(status == 303, "claim answered {status}");
            alone.push(d);
        }
        let alone = stats(alone);

        // Bursts: every reviewer presses "claim" at the same instant (a barrier), all wait for
        // their answers, and the next round starts: the issue's "20 reviewers claiming at
        // once", `--claims` rounds of it.
        let before = state.0.console.claim_stats();
        let (all, burst_wall) = claim_loads(&app, &people, a.claims, a.queues, true).await?;
        let burst_n = all.len();
        let bursts = stats(all);
        let after_bursts = state.0.console.claim_stats();

        // Sustained: each reviewer claims again the moment the last claim answers, with no
        // time spent on the case: thousands of claims a second, far past what people do; the
        // stress figure.
        let (all, wall) = claim_loads(&app, &people, a.claims, a.queues, false).await?;
        let n = all.len();
        let together = stats(all);
        let after = state.0.console.claim_stats();

        println!("\nclaims (target p99 {CLAIM_TARGET_MS} ms):");
        println!("{:<44} {:>8} {:>8} {:>8} {:>8}", "", "p50 ms", "p99 ms", "max ms", "p99/target");
        let row = |label: String, s: &Stats| {
            println!(
                "{:<44} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                label,
                s.p50,
                s.p99,
                s.max,
                s.p99 / CLAIM_TARGET_MS
            );
        };
        row("1 reviewer alone (baseline)".into(), &alone);
        row(
            format!("{} reviewers at once, {} rounds", a.reviewers, a.claims),
            &bursts,
        );
        row(
            format!("{} reviewers back to back (sustained)", a.reviewers),
            &together,
        );
        println!(
            "rounds: {burst_n} claims in {:.2} s, {} transactions; p99 at once = {:.2}x alone",
            burst_wall.as_secs_f64(),
            after_bursts.batches - before.batches,
            bursts.p99 / alone.p99.max(1e-9)
        );
        println!(
            "sustained: {n} claims in {:.2} s ({:.0}/s), {} transactions; p99 = {:.2}x alone",
            wall.as_secs_f64(),
            n as f64 / wall.as_secs_f64(),
            after.batches - after_bursts.batches,
            together.p99 / alone.p99.max(1e-9)
        );
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
