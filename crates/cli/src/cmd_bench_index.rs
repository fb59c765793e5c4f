//! `safeguard bench index`: build time, memory and query throughput of the exact PDQ index (or
//! a digest index), against a brute-force scan measured in the same run on the same data, with
//! every index answer checked against the scan.
//!
//! The data come from a documented generator (SplitMix64, see `docs/performance.md`), so a
//! seed reproduces them; `--dump DIR` writes them with the answers for
//! `scripts/faiss_compare.py`, which runs FAISS on the very same bank and queries.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use safeguard_index::{FlatScan, Match, PdqIndex, PdqIndexConfig, MAX_RADIUS};
use safeguard_pdq::PdqHash;

/// Banks up to this size also get an independent flat copy for the brute-force baseline;
/// above it the baseline scans the index's own storage (`search_exhaustive`), which keeps a
/// 100-million-hash run within memory.
const FLAT_COPY_MAX: usize = 20_000_000;

/// Default cap on brute-force queries: at about 15 ms per query per 10 million hashes, 200
/// queries keep the baseline under a minute at 10 million while timing it reliably.
const DEFAULT_BRUTE_QUERIES: usize = 200;

/// Fresh entries added one by one after the build to check that each is visible to the very
/// next query.
const LIVE_CHECKS: u64 = 2_000;

/// Bank and query distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Data {
    /// Independent random hashes; 10% of queries are near a bank entry, 90% random.
    Uniform,
    /// Realistic banks: families of near-duplicates (up to 30 bits apart), a few dense
    /// clusters, exact duplicates and random background; queries near entries, near family
    /// centres (the costly near-miss zone) and random.
    Clustered,
}

/// Which index to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// PDQ radius search.
    Pdq,
    /// Exact MD5 lookups.
    Md5,
    /// Exact SHA-1 lookups.
    Sha1,
    /// Exact SHA-256 lookups.
    Sha256,
    /// PhotoDNA Euclidean-radius search (`--pdna-radius`), on synthetic 144-byte vectors.
    Photodna,
}

/// Arguments of `safeguard bench index`.
#[derive(Debug, clap::Args)]
pub struct BenchIndexArgs {
    /// Number of bank entries.
    #[arg(long)]
    pub size: usize,
    /// Number of queries.
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Data distribution (PDQ only).
    #[arg(long, value_enum, default_value_t = Data::Uniform)]
    pub data: Data,
    /// Match radius (PDQ only).
    #[arg(long, default_value_t = 31)]
    pub radius: u32,
    /// Generator seed: the same seed gives the same bank and queries.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Queries also answered by the brute-force scan (the first N); 0 skips the baseline.
    #[arg(long, default_value_t = DEFAULT_BRUTE_QUERIES)]
    pub brute_queries: usize,
    /// Write bank.bin, queries.bin, results.bin and bench.json to this folder (PDQ only),
    /// for scripts/faiss_compare.py.
    #[arg(long)]
    pub dump: Option<PathBuf>,
    /// Which index to measure.
    #[arg(long, value_enum, default_value_t = Kind::Pdq)]
    pub kind: Kind,
    /// Euclidean match radius (PhotoDNA only).
    #[arg(long, default_value_t = 100.0)]
    pub pdna_radius: f64,
    /// Timed passes over the queries (PDQ: after one untimed pass) or lookups; the best
    /// counts. The brute-force baseline gets one pass after a short warm-up.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
}

/// SplitMix64 (Steele, Lea, Flood 2014): the generator behind every benchmark bank.
#[derive(Debug, Clone)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (multiply-shift; the bias is below 2^-32 for the ranges used).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    fn hash(&mut self) -> PdqHash {
        PdqHash::from_words([self.next(), self.next(), self.next(), self.next()])
    }

    /// `h` with `k` distinct bits flipped.
    fn flip(&mut self, h: &PdqHash, k: u32) -> PdqHash {
        let mut w = h.words();
        let mut flipped = [0u64; 4];
        let mut done = 0;
        while done < k.min(256) {
            let b = self.below(256) as usize;
            if flipped[b / 64] & (1 << (b % 64)) == 0 {
                flipped[b / 64] |= 1 << (b % 64);
                done += 1;
            }
        }
        for (x, f) in w.iter_mut().zip(flipped) {
            *x ^= f;
        }
        PdqHash::from_words(w)
    }
}

/// How a query is made.
#[derive(Debug, Clone, Copy)]
enum QuerySpec {
    Random,
    /// Bank entry `index` with `flips` bits flipped.
    NearEntry {
        index: u64,
        flips: u32,
    },
    /// Family centre number `family` (in the order sampled) with `flips` bits flipped.
    NearCentre {
        family: usize,
        flips: u32,
    },
}

/// Generates the bank, streaming each entry to `sink(id, hash)`, and returns the queries.
///
/// The query plan is drawn first, from its own stream, so that near-entry queries can pick
/// up their entries as the bank streams past without holding the bank in memory.
fn generate(
    data: Data,
    size: usize,
    queries: usize,
    seed: u64,
    mut sink: impl FnMut(u64, &PdqHash) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<PdqHash>> {
    let mut qrng = SplitMix(seed ^ 0x5151_5151_5151_5151);
    let n = size as u64;
    let specs: Vec<QuerySpec> = (0..queries)
        .map(|_| {
            let pick = qrng.below(100);
            match data {
                Data::Uniform if pick < 10 && n > 0 => QuerySpec::NearEntry {
                    index: qrng.below(n),
                    flips: qrng.below(41) as u32,
                },
                Data::Clustered if pick < 40 && n > 0 => QuerySpec::NearEntry {
                    index: qrng.below(n),
                    flips: qrng.below(41) as u32,
                },
                Data::Clustered if pick < 60 => QuerySpec::NearCentre {
                    family: qrng.below(1 << 20) as usize,
                    flips: 16 + qrng.below(33) as u32,
                },
                _ => QuerySpec::Random,
            }
        })
        .collect();
    let mut wanted: HashMap<u64, Vec<usize>> = HashMap::new();
    for (j, s) in specs.iter().enumerate() {
        if let QuerySpec::NearEntry { index, .. } = s {
            wanted.entry(*index).or_default().push(j);
        }
    }
    let mut picked: Vec<Option<PdqHash>> = vec![None; queries];
    let mut centres: Vec<PdqHash> = Vec::new();
    let mut rng = SplitMix(seed);
    let mut id = 0u64;
    let mut emit = |h: PdqHash, picked: &mut Vec<Option<PdqHash>>| -> anyhow::Result<()> {
        if let Some(js) = wanted.get(&id) {
            for &j in js {
                picked[j] = Some(h);
            }
        }
        sink(id, &h)?;
        id += 1;
        Ok(())
    };
    match data {
        Data::Uniform => {
            for _ in 0..size {
                let h = rng.hash();
                emit(h, &mut picked)?;
            }
        }
        Data::Clustered => {
            // Half the bank in families: five dense clusters of size/1000 near-identical
            // entries (0-4 bits from the centre), then families of log-uniform size 1..2048
            // whose members are 0-15 bits from their centre (so up to 30 bits apart), one in
            // fifty an exact duplicate of the previous member under a new id. The other half
            // is random background.
            let family_budget = size / 2;
            let mut made = 0usize;
            let mut dense = 0;
            while made < family_budget {
                let (count, max_flips) = if dense < 5 {
                    dense += 1;
                    ((size / 1000).max(1), 4)
                } else {
                    let count =
                        (2f64.powf(rng.below(1 << 20) as f64 / f64::from(1 << 20) * 11.0)) as usize;
                    (count.max(1), 15)
                };
                let count = count.min(family_budget - made);
                let centre = rng.hash();
                centres.push(centre);
                let mut last = centre;
                for _ in 0..count {
                    let h = if made > 0 && rng.below(50) == 0 {
                        last
                    } else {
                        let k = rng.below(max_flips + 1) as u32;
                        rng.flip(&centre, k)
                    };
                    emit(h, &mut picked)?;
                    last = h;
                    made += 1;
                }
            }
            for _ in made..size {
                let h = rng.hash();
                emit(h, &mut picked)?;
            }
        }
    }
    let out = specs
        .iter()
        .zip(picked)
        .map(|(s, p)| match *s {
            QuerySpec::Random => qrng.hash(),
            QuerySpec::NearEntry { flips, .. } => {
                // Every wanted index is below `size`, so the stream delivered it.
                let h = p.expect("near-entry query picked its entry");
                qrng.flip(&h, flips)
            }
            QuerySpec::NearCentre { family, flips } => match centres.len() {
                0 => qrng.hash(),
                c => {
                    let centre = centres[family % c];
                    qrng.flip(&centre, flips)
                }
            },
        })
        .collect();
    Ok(out)
}

/// Peak and current resident memory of this process, in bytes (Linux; 0 elsewhere).
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Queries per second of `f` over `queries`, on `threads` threads (interleaved split).
fn throughput<T: Send>(
    queries: &[PdqHash],
    threads: usize,
    f: impl Fn(&PdqHash) -> T + Sync,
) -> (f64, Vec<T>) {
    let start = Instant::now();
    let mut parts: Vec<Vec<(usize, T)>> = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let f = &f;
                s.spawn(move || {
                    (t..queries.len())
                        .step_by(threads)
                        .map(|i| (i, f(&queries[i])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            // A panic in a query thread is a bug worth crashing the benchmark for.
            parts.push(h.join().expect("query thread panicked"));
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let mut all: Vec<(usize, T)> = parts.into_iter().flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    (
        queries.len() as f64 / secs,
        all.into_iter().map(|(_, t)| t).collect(),
    )
}

/// Runs `safeguard bench index`.
pub fn run(args: &BenchIndexArgs) -> anyhow::Result<ExitCode> {
    match args.kind {
        Kind::Pdq => run_pdq(args),
        Kind::Md5 => run_digest::<16>(args, "MD5"),
        Kind::Sha1 => run_digest::<20>(args, "SHA-1"),
        Kind::Sha256 => run_digest::<32>(args, "SHA-256"),
        Kind::Photodna => run_photodna(args),
    }
}

fn run_pdq(args: &BenchIndexArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.radius <= MAX_RADIUS,
        "--radius must be at most {MAX_RADIUS}"
    );
    let data = match args.data {
        Data::Uniform => "uniform",
        Data::Clustered => "clustered",
    };
    println!(
        "safeguard bench index: {data}, {} hashes, {} queries, radius {}, seed {}",
        args.size, args.queries, args.radius, args.seed
    );
    if let Some(dir) = &args.dump {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut bank_file = match &args.dump {
        Some(dir) => Some(BufWriter::new(File::create(dir.join("bank.bin"))?)),
        None => None,
    };
    let flat_copy = args.brute_queries > 0 && args.size <= FLAT_COPY_MAX;
    let mut flat = FlatScan::with_capacity(if flat_copy { args.size } else { 0 });
    let mut builder = PdqIndex::builder();
    builder.reserve(args.size);
    let gen_start = Instant::now();
    let queries = generate(args.data, args.size, args.queries, args.seed, |id, h| {
        builder.push(id, h);
        if flat_copy {
            flat.push(id, h);
        }
        if let Some(f) = bank_file.as_mut() {
            f.write_all(h.as_bytes())?;
        }
        Ok(())
    })?;
    if let Some(mut f) = bank_file.take() {
        f.flush()?;
    }
    println!("generated in {:.2} s", gen_start.elapsed().as_secs_f64());

    // Build.
    let (_, rss_before) = memory();
    let start = Instant::now();
    let index = builder.build()?;
    let build_s = start.elapsed().as_secs_f64();
    let stats = index.stats();
    let (peak, rss_after) = memory();
    let bytes_per_hash = stats.bytes as f64 / stats.entries.max(1) as f64;
    println!(
        "index: built in {build_s:.2} s; {bytes_per_hash:.1} bytes/hash (index accounting, \
         32-byte code included); RSS grew {:.2} GiB; process peak RSS {:.2} GiB",
        gib(rss_after.saturating_sub(rss_before)),
        gib(peak)
    );
    println!("       {} entries; layout: {}", stats.entries, stats.layout);

    // Queries.
    let r = args.radius;
    // Radius checked above.
    let search = |q: &PdqHash| index.search(q, r).expect("radius within range");
    // An untimed pass first (it also collects the answers), then the best of `--repeat` timed
    // passes: the machine is shared, and the least disturbed pass is the index's own speed.
    let (_, results) = throughput(&queries, 1, search);
    let best = |threads: usize| {
        (0..args.repeat.max(1))
            .map(|_| throughput(&queries, threads, search).0)
            .fold(0.0, f64::max)
    };
    let qps1 = best(1);
    let qps2 = best(2);
    let matches: usize = results.iter().map(Vec::len).sum();
    let with_match = results.iter().filter(|m| !m.is_empty()).count();
    println!(
        "index: {qps1:.0} queries/s on 1 thread, {qps2:.0} on 2 threads ({:.1} µs/query); \
         {matches} matches, {with_match} queries with a match",
        1e6 / qps1
    );

    // Brute force on the same data and queries.
    let brute_n = args.brute_queries.min(queries.len());
    let mut exact = true;
    let mut brute = (0.0, 0.0, 0usize);
    if brute_n > 0 {
        let sample = &queries[..brute_n];
        let scan = |q: &PdqHash| -> Vec<Match> {
            if flat_copy {
                flat.search(q, r).expect("radius within range")
            } else {
                index.search_exhaustive(q, r).expect("radius within range")
            }
        };
        throughput(&sample[..sample.len().min(5)], 1, scan); // warm-up
        let (b1, answers) = throughput(sample, 1, scan);
        let (b2, _) = throughput(sample, 2, scan);
        let mismatches = answers.iter().zip(&results).filter(|(a, b)| a != b).count();
        exact = mismatches == 0;
        brute = (b1, b2, mismatches);
        let bytes = if flat_copy {
            flat.bytes() as f64 / args.size.max(1) as f64
        } else {
            40.0
        };
        println!(
            "brute force ({}): {b1:.1} queries/s on 1 thread, {b2:.1} on 2 threads; \
             build 0 s (a list); {bytes:.1} bytes/hash",
            if flat_copy {
                "flat copy"
            } else {
                "scan of the index's codes"
            }
        );
        println!(
            "ratio index/brute: {:.0}x on 1 thread, {:.0}x on 2 threads",
            qps1 / b1,
            qps2 / b2
        );
        println!(
            "exactness: {} ({brute_n} queries compared with the brute-force scan{})",
            if exact {
                "identical results"
            } else {
                "MISMATCH"
            },
            if exact {
                String::new()
            } else {
                format!(", {mismatches} differ")
            }
        );
    }
    drop(flat);

    // Live updates: each fresh entry must be found by the very next query.
    let mut rng = SplitMix(args.seed ^ 0xADD0_ADD0_ADD0_ADD0);
    let fresh: Vec<PdqHash> = (0..LIVE_CHECKS).map(|_| rng.hash()).collect();
    let mut add_s = 0.0;
    let mut visible = 0;
    for (i, h) in fresh.iter().enumerate() {
        let id = args.size as u64 + i as u64;
        let t = Instant::now();
        index.add(id, h);
        add_s += t.elapsed().as_secs_f64();
        let found = index.search(h, r).expect("radius within range");
        visible += usize::from(found.iter().any(|m| m.id == id && m.distance == 0));
    }
    let qps_after = best(1);
    let mut gone = 0;
    let mut remove_s = 0.0;
    for (i, h) in fresh.iter().enumerate() {
        let id = args.size as u64 + i as u64;
        let t = Instant::now();
        index.remove(id, h);
        remove_s += t.elapsed().as_secs_f64();
        let found = index.search(h, r).expect("radius within range");
        gone += usize::from(!found.iter().any(|m| m.id == id));
    }
    let live_ok = visible == fresh.len() && gone == fresh.len();
    println!(
        "live updates: {visible}/{} new entries found by the next query, {gone}/{} removed \
         entries gone from the next query; add {:.1} µs, remove {:.1} µs on average; \
         {qps_after:.0} queries/s on 1 thread with {} entries in tail and small segments",
        fresh.len(),
        fresh.len(),
        add_s / fresh.len() as f64 * 1e6,
        remove_s / fresh.len() as f64 * 1e6,
        fresh.len()
    );

    // Snapshot: write it, drop the index (a restart), load it back and compare answers.
    let snap_path = match &args.dump {
        Some(dir) => dir.join("index.snapshot"),
        None => {
            std::env::temp_dir().join(format!("safeguard-bench-{}.snapshot", std::process::id()))
        }
    };
    let entries = index.len();
    let start = Instant::now();
    {
        let mut f = BufWriter::with_capacity(1 << 20, File::create(&snap_path)?);
        index.write_snapshot(&mut f)?;
        f.flush()?;
        f.get_ref().sync_all()?;
    }
    let snap_write_s = start.elapsed().as_secs_f64();
    let snap_bytes = std::fs::metadata(&snap_path)?.len();
    drop(index);
    let start = Instant::now();
    let loaded = PdqIndex::read_snapshot(
        BufReader::with_capacity(1 << 20, File::open(&snap_path)?),
        PdqIndexConfig::default(),
    )?;
    let snap_load_s = start.elapsed().as_secs_f64();
    let reloaded_same = loaded.len() == entries
        && queries
            .iter()
            .zip(&results)
            .take(200)
            .all(|(q, want)| loaded.search(q, r).expect("radius within range") == *want);
    if args.dump.is_none() {
        std::fs::remove_file(&snap_path)?;
    }
    println!(
        "snapshot: {:.2} GiB written (and synced) in {snap_write_s:.2} s; loaded (read, \
         checksum, rebuild) in {snap_load_s:.2} s from the page cache; answers after reload: {}",
        gib(snap_bytes),
        if reloaded_same {
            "identical"
        } else {
            "DIFFERENT"
        }
    );
    drop(loaded);

    if let Some(dir) = &args.dump {
        dump(
            dir,
            &queries,
            &results,
            &serde_json::json!({
                "data": data,
                "size": args.size,
                "queries": args.queries,
                "radius": r,
                "seed": args.seed,
                "build_s": build_s,
                "bytes_per_hash": bytes_per_hash,
                "qps_1": qps1,
                "qps_2": qps2,
                "brute_queries": brute_n,
                "brute_qps_1": brute.0,
                "brute_qps_2": brute.1,
                "exact": exact,
                "matches": matches,
                "live_ok": live_ok,
                "snapshot_bytes": snap_bytes,
                "snapshot_write_s": snap_write_s,
                "snapshot_load_s": snap_load_s,
                "peak_rss_bytes": peak,
                "layout": stats.layout,
            }),
        )?;
        println!(
            "wrote bank, queries, results and figures to {}",
            dir.display()
        );
    }
    Ok(if exact && live_ok && reloaded_same {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Writes the queries, the index's answers and the figures (the bank was streamed already).
fn dump(
    dir: &Path,
    queries: &[PdqHash],
    results: &[Vec<Match>],
    figures: &serde_json::Value,
) -> anyhow::Result<()> {
    let mut q = BufWriter::new(File::create(dir.join("queries.bin"))?);
    for h in queries {
        q.write_all(h.as_bytes())?;
    }
    q.flush()?;
    // Records of 16 bytes, little-endian: query (u32), distance (u32), id (u64), sorted by
    // query then id.
    let mut out = BufWriter::new(File::create(dir.join("results.bin"))?);
    for (i, ms) in results.iter().enumerate() {
        let mut ms = ms.clone();
        ms.sort_by_key(|m| m.id);
        for m in ms {
            out.write_all(&(i as u32).to_le_bytes())?;
            out.write_all(&m.distance.to_le_bytes())?;
            out.write_all(&m.id.to_le_bytes())?;
        }
    }
    out.flush()?;
    std::fs::write(
        dir.join("bench.json"),
        serde_json::to_string_pretty(figures)? + "\n",
    )?;
    Ok(())
}

fn run_digest<const N: usize>(args: &BenchIndexArgs, name: &str) -> anyhow::Result<ExitCode> {
    println!(
        "safeguard bench index: {name}, {} digests, {} lookups (half present), seed {}",
        args.size, args.queries, args.seed
    );
    let mut rng = SplitMix(args.seed);
    let digest = |rng: &mut SplitMix| {
        let mut d = [0u8; N];
        for chunk in d.chunks_mut(8) {
            let w = rng.next().to_be_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
        d
    };
    let mut entries: Vec<([u8; N], u64)> = Vec::with_capacity(args.size);
    for id in 0..args.size as u64 {
        entries.push((digest(&mut rng), id));
    }
    let mut qrng = SplitMix(args.seed ^ 0x5151);
    let lookups: Vec<[u8; N]> = (0..args.queries)
        .map(|i| {
            if i % 2 == 0 && !entries.is_empty() {
                entries[qrng.below(entries.len() as u64) as usize].0
            } else {
                digest(&mut qrng)
            }
        })
        .collect();
    // The baseline: std's HashMap, on banks small enough to hold both.
    let baseline = (args.brute_queries > 0 && args.size <= FLAT_COPY_MAX).then(|| {
        let start = Instant::now();
        let mut map: HashMap<[u8; N], Vec<u64>> = HashMap::with_capacity(entries.len());
        for (d, id) in &entries {
            map.entry(*d).or_default().push(*id);
        }
        (map, start.elapsed().as_secs_f64())
    });

    let (_, rss_before) = memory();
    let start = Instant::now();
    let index = safeguard_index::DigestIndex::<N>::from_entries(entries);
    let build_s = start.elapsed().as_secs_f64();
    let (peak, rss_after) = memory();
    let per_entry = index.memory_bytes() as f64 / index.len().max(1) as f64;
    println!(
        "index: built in {build_s:.2} s; {per_entry:.1} bytes/entry (index accounting); RSS \
         after build {:.2} GiB (+{:.2} GiB); process peak RSS {:.2} GiB",
        gib(rss_after),
        gib(rss_after.saturating_sub(rss_before)),
        gib(peak)
    );

    // Each mode: the best of `--repeat` passes (the machine is shared).
    let rate = |pass: &dyn Fn() -> usize| -> (f64, usize) {
        let mut best = 0.0f64;
        let mut hits = 0;
        for _ in 0..args.repeat.max(1) {
            let start = Instant::now();
            hits = pass();
            best = best.max(lookups.len() as f64 / start.elapsed().as_secs_f64());
        }
        (best, hits)
    };
    let (single, hits) = rate(&|| {
        let mut hits = 0usize;
        let mut ids = Vec::new();
        for d in &lookups {
            ids.clear();
            index.lookup(d, &mut ids);
            hits += ids.len();
        }
        hits
    });
    let (batched, batch_hits) = rate(&|| {
        let mut out = Vec::with_capacity(1024);
        let mut hits = 0;
        for chunk in lookups.chunks(1024) {
            out.clear();
            index.lookup_batch(chunk, &mut out);
            hits += out.len();
        }
        hits
    });
    let (two, _) = rate(&|| {
        std::thread::scope(|s| {
            for t in 0..2 {
                let (index, lookups) = (&index, &lookups);
                s.spawn(move || {
                    let mut out = Vec::new();
                    for chunk in
                        lookups[t * lookups.len() / 2..(t + 1) * lookups.len() / 2].chunks(1024)
                    {
                        index.lookup_batch(chunk, &mut out);
                        out.clear();
                    }
                });
            }
        });
        0
    });
    println!(
        "index: {:.2} M lookups/s one at a time, {:.2} M/s batched on 1 thread, {:.2} M/s \
         batched on 2 threads; {hits} hits",
        single / 1e6,
        batched / 1e6,
        two / 1e6
    );
    let mut exact = batch_hits == hits;
    if let Some((map, map_build)) = baseline {
        let start = Instant::now();
        let mut map_hits = 0usize;
        for d in &lookups {
            map_hits += map.get(d).map_or(0, Vec::len);
        }
        let map_rate = lookups.len() as f64 / start.elapsed().as_secs_f64();
        exact &= map_hits == hits;
        println!(
            "std HashMap baseline: built in {map_build:.2} s; {:.2} M lookups/s on 1 thread; \
             answers {}",
            map_rate / 1e6,
            if map_hits == hits {
                "identical"
            } else {
                "DIFFER"
            }
        );
    }
    Ok(if exact {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// PhotoDNA: the norm-windowed index against a plain scan of every vector, on the same data,
/// with every answer compared. The bank is families of near-duplicates (a random centre, each
/// member moved a little), which is what hotline lists of re-encoded images look like; half
/// the queries are near a family, half are random.
fn run_photodna(args: &BenchIndexArgs) -> anyhow::Result<ExitCode> {
    use safeguard_index::{photodna_distance_sq, PhotoDnaIndex, PHOTODNA_LEN};
    type V = [u8; PHOTODNA_LEN];
    println!(
        "safeguard bench index: PhotoDNA, {} vectors, {} queries, radius {}, seed {}",
        args.size, args.queries, args.pdna_radius, args.seed
    );
    let mut rng = SplitMix(args.seed);
    let random = |rng: &mut SplitMix| {
        let mut v = [0u8; PHOTODNA_LEN];
        for chunk in v.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next().to_le_bytes());
        }
        v
    };
    let nudge = |rng: &mut SplitMix, v: &V, amount: u64| {
        let mut out = *v;
        for b in out.iter_mut() {
            let d = rng.below(2 * amount + 1) as i32 - amount as i32;
            *b = (*b as i32 + d).clamp(0, 255) as u8;
        }
        out
    };
    let families = (args.size / 20).max(1);
    let centres: Vec<V> = (0..families).map(|_| random(&mut rng)).collect();
    let bank: Vec<V> = (0..args.size)
        .map(|i| nudge(&mut rng, &centres[i % families], 6))
        .collect();
    let mut qrng = SplitMix(args.seed ^ 0x5151);
    let queries: Vec<V> = (0..args.queries)
        .map(|i| {
            if i % 2 == 0 {
                let c = &centres[qrng.below(families as u64) as usize];
                nudge(&mut qrng, c, 6)
            } else {
                random(&mut qrng)
            }
        })
        .collect();

    let start = Instant::now();
    let mut index = PhotoDnaIndex::new();
    for (id, v) in bank.iter().enumerate() {
        index.add(id as u64, v);
    }
    let build_s = start.elapsed().as_secs_f64();
    println!(
        "index: built in {build_s:.2} s by one-at-a-time adds; {:.1} bytes/vector",
        index.memory_bytes() as f64 / index.len().max(1) as f64
    );
    let mut best = 0.0f64;
    let mut answers: Vec<Vec<u64>> = Vec::new();
    for _ in 0..args.repeat.max(1) {
        let start = Instant::now();
        answers = queries
            .iter()
            .map(|q| {
                let mut ids: Vec<u64> = index
                    .search(q, args.pdna_radius)
                    .into_iter()
                    .map(|m| m.id)
                    .collect();
                ids.sort_unstable();
                ids
            })
            .collect();
        best = best.max(queries.len() as f64 / start.elapsed().as_secs_f64());
    }
    let hits: usize = answers.iter().map(Vec::len).sum();
    println!("index: {best:.0} queries/s on 1 thread; {hits} hits");
    let n = args.brute_queries.min(queries.len());
    if n == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    let limit = (args.pdna_radius * args.pdna_radius).floor() as u32;
    let start = Instant::now();
    let brute: Vec<Vec<u64>> = queries[..n]
        .iter()
        .map(|q| {
            bank.iter()
                .enumerate()
                .filter(|(_, v)| photodna_distance_sq(v, q) <= limit)
                .map(|(id, _)| id as u64)
                .collect()
        })
        .collect();
    let brute_rate = n as f64 / start.elapsed().as_secs_f64();
    let same = brute[..] == answers[..n];
    println!(
        "brute-force scan: {brute_rate:.1} queries/s on 1 thread ({n} queries); answers {}; \
         index/scan = {:.1}x",
        if same { "identical" } else { "DIFFER" },
        best / brute_rate
    );
    Ok(if same {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
