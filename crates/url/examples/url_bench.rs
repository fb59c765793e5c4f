//! URL list matching speed and memory, against a naive baseline in the same run.
//!
//! ```sh
//! cargo run --release -p safeguard-url --example url_bench [ENTRIES] [URLS]
//! ```
//!
//! Builds a list of ENTRIES (default 1,000,000) synthetic benign entries under the reserved
//! `.example` and `.test` names (10% whole domains, 20% folders, 70% pages, some with a
//! query), then checks URLS (default 2,000,000) generated URLs on one thread:
//! 5% listed pages, 5% URLs under listed folders or domains, 30% unlisted paths on listed
//! hosts (every path expression is looked up), 60% unlisted hosts. Prints URLs/s for
//! canonicalisation alone, for `UrlList::matches`, and for the baseline (a `HashSet<String>`
//! of the same entries, probed with every string of `expressions()`), with the ratio, and the
//! memory per entry of both. The two matchers must agree on every URL.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::Instant;

use safeguard_url::{entry_expression, expressions, CanonicalUrl, UrlIndex, UrlList};

/// Timed rounds of each measurement.
const ROUNDS: usize = 5;

/// splitmix64: a fixed-seed generator, so every run checks the same URLs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Distinct registrable domains the entries spread over.
const DOMAINS: u64 = 200_000;

fn host(rng: &mut Rng) -> String {
    let d = rng.below(DOMAINS);
    match rng.below(3) {
        0 => format!("d{d}.example"),
        s => format!("s{s}.d{d}.example"),
    }
}

fn entry(i: u64, rng: &mut Rng) -> String {
    let h = host(rng);
    let (a, b) = (rng.below(50), rng.below(1000));
    match i % 10 {
        0 => format!("{h}/"),
        1 | 2 => format!("{h}/f{a}/g{b}/"),
        3 => format!("{h}/f{a}/view?id={}", rng.below(1_000_000)),
        _ => format!("{h}/f{a}/p{i}.html"),
    }
}

fn url(entries: &[String], rng: &mut Rng) -> String {
    let pick = &entries[rng.below(entries.len() as u64) as usize];
    match rng.below(20) {
        // A listed entry itself, as a visitor would write it.
        0 => format!("https://{pick}#frag"),
        // Something under it: for a folder or domain entry, a file inside; for a page, the
        // same page with another query (matches only pages listed without a query).
        1 => {
            let base = pick.split('?').next().unwrap_or(pick);
            if base.ends_with('/') {
                format!("http://{base}x/{}.jpg", rng.below(1000))
            } else {
                format!("http://{base}?utm={}", rng.below(1000))
            }
        }
        // A listed host, an unlisted path: all path expressions are looked up.
        2..=7 => {
            let h = pick.split('/').next().unwrap_or(pick);
            format!(
                "https://{h}/u{}/v{}/w.html?q={}",
                rng.below(100),
                rng.below(100),
                rng.below(1000)
            )
        }
        // An unlisted host.
        _ => format!(
            "https://www.u{}.test/a{}/b/c.html?q={}",
            rng.below(10_000_000),
            rng.below(100),
            rng.below(1000)
        ),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n_entries: u64 = args
        .next()
        .map_or(1_000_000, |s| s.parse().expect("ENTRIES: a number"));
    let n_urls: u64 = args
        .next()
        .map_or(2_000_000, |s| s.parse().expect("URLS: a number"));

    let mut rng = Rng(17);
    let entries: Vec<String> = (0..n_entries).map(|i| entry(i, &mut rng)).collect();
    let urls: Vec<String> = (0..n_urls).map(|_| url(&entries, &mut rng)).collect();
    println!("{n_entries} entries, {n_urls} URLs to check, one thread");

    let t = Instant::now();
    let list = UrlList::from_entries(&entries).expect("synthetic entries are URLs");
    let build_s = t.elapsed().as_secs_f64();
    let list_bytes = list.heap_bytes();
    println!(
        "UrlList: built in {build_s:.2} s, {list_bytes} heap bytes, {:.1} bytes/entry",
        list_bytes as f64 / n_entries as f64
    );

    // The baseline: the same keys as strings ("host/path[?query]", bare '?' dropped).
    let t = Instant::now();
    let naive: HashSet<String> = entries
        .iter()
        .map(|e| {
            let c = CanonicalUrl::parse(e).expect("synthetic entries are URLs");
            let key = c.without_scheme();
            key.strip_suffix('?').unwrap_or(key).to_owned()
        })
        .collect();
    let naive_build_s = t.elapsed().as_secs_f64();
    // Table slots (String + one control byte each) plus the strings' buffers; the
    // allocator's per-allocation overhead (8 to 16 bytes on glibc) comes on top.
    let naive_bytes = naive.capacity() * (std::mem::size_of::<String>() + 1)
        + naive.iter().map(String::capacity).sum::<usize>();
    println!(
        "HashSet<String> baseline: built in {naive_build_s:.2} s, at least {naive_bytes} heap bytes, \
         {:.1} bytes/entry (without allocator overhead)",
        naive_bytes as f64 / naive.len() as f64
    );

    // The live index the server matches with (entries added one at a time, as the change
    // feed does).
    let t = Instant::now();
    let mut live = UrlIndex::new();
    for (i, e) in entries.iter().enumerate() {
        live.insert(
            &entry_expression(e).expect("synthetic entries are URLs"),
            i as u64,
        );
    }
    let live_build_s = t.elapsed().as_secs_f64();
    let live_bytes = live.heap_bytes();
    println!(
        "UrlIndex (live, server): built in {live_build_s:.2} s, about {live_bytes} heap bytes, \
         {:.1} bytes/entry (without allocator overhead)",
        live_bytes as f64 / n_entries as f64
    );

    // Each measurement runs ROUNDS times, alternating, and the median is reported (the best
    // too): the machine is shared, and one round can be slowed by a neighbour.
    let mut canon_s = Vec::new();
    let mut fast_s = Vec::new();
    let mut naive_s = Vec::new();
    let mut live_s = Vec::new();
    let mut live_matched: Vec<bool> = Vec::with_capacity(urls.len());
    let mut ids = Vec::new();
    let mut fast_hits = 0u64;
    let mut fast_matched: Vec<bool> = Vec::with_capacity(urls.len());
    let mut naive_matched: Vec<bool> = Vec::with_capacity(urls.len());
    for _ in 0..ROUNDS {
        // Canonicalisation alone: the floor under both matchers.
        let t = Instant::now();
        for u in &urls {
            black_box(CanonicalUrl::parse(u).expect("generated URLs are URLs"));
        }
        canon_s.push(t.elapsed().as_secs_f64());

        fast_hits = 0;
        fast_matched.clear();
        let t = Instant::now();
        for u in &urls {
            let m = list.matches(u).expect("generated URLs are URLs");
            fast_hits += m.len() as u64;
            fast_matched.push(!m.is_empty());
        }
        fast_s.push(t.elapsed().as_secs_f64());

        naive_matched.clear();
        let t = Instant::now();
        for u in &urls {
            let c = CanonicalUrl::parse(u).expect("generated URLs are URLs");
            naive_matched.push(expressions(&c).iter().any(|e| naive.contains(e)));
        }
        naive_s.push(t.elapsed().as_secs_f64());

        live_matched.clear();
        let t = Instant::now();
        for u in &urls {
            let c = CanonicalUrl::parse(u).expect("generated URLs are URLs");
            ids.clear();
            live.lookup(&c, &mut ids);
            live_matched.push(!ids.is_empty());
        }
        live_s.push(t.elapsed().as_secs_f64());
    }
    let rate = |times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        (
            n_urls as f64 / times[times.len() / 2],
            n_urls as f64 / times[0],
        )
    };
    let (canon_rate, canon_best) = rate(&mut canon_s);
    let (fast_rate, fast_best) = rate(&mut fast_s);
    let (naive_rate, naive_best) = rate(&mut naive_s);
    let (live_rate, live_best) = rate(&mut live_s);

    let matched = fast_matched.iter().filter(|&&m| m).count();
    // The fast list widens lookups only for entries deeper than the spec reaches; the
    // synthetic entries are within reach, so the two must agree exactly.
    let disagreements = fast_matched
        .iter()
        .zip(&naive_matched)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        disagreements, 0,
        "UrlList and the baseline disagree on {disagreements} URLs"
    );
    assert_eq!(live_matched, fast_matched, "UrlIndex and UrlList disagree");

    println!(
        "URLs matching: {matched} ({:.1}%), entry hits: {fast_hits}",
        100.0 * matched as f64 / n_urls as f64
    );
    println!("median of {ROUNDS} rounds (best in brackets):");
    println!("canonicalise only:        {canon_rate:>10.0} URLs/s ({canon_best:.0})");
    println!(
        "UrlList::matches:         {fast_rate:>10.0} URLs/s ({fast_best:.0}), {:.0} ns/URL",
        1e9 / fast_rate
    );
    println!(
        "UrlIndex::lookup (live):  {live_rate:>10.0} URLs/s ({live_best:.0}), {:.0} ns/URL",
        1e9 / live_rate
    );
    println!(
        "HashSet<String> baseline: {naive_rate:>10.0} URLs/s ({naive_best:.0}), {:.0} ns/URL",
        1e9 / naive_rate
    );
    println!(
        "ratio: {:.2}x the baseline's speed, {:.2}x less memory per entry",
        fast_rate / naive_rate,
        (naive_bytes as f64 / naive.len() as f64) / (list_bytes as f64 / n_entries as f64)
    );
}
