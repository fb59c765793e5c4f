//! `safeguard bench hash`: images per second of decode + PDQ on one thread, exact and fast, and
//! the fast mode's drift from the exact hash, on a folder of images.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use safeguard_pdq::{Hasher, PdqHash};

use crate::cmd_hash::{hash_bytes, Compat, HashSettings, FAST_MIN_PIXELS, FAST_MIN_SIDE};
use crate::walk::{expand, Input};

/// Arguments of `safeguard bench hash`.
#[derive(Debug, clap::Args)]
pub struct BenchHashArgs {
    /// Folder of images (e.g. the one `scripts/bench-hash.sh` generates).
    pub dir: PathBuf,
    /// Passes over the folder for each mode; the best pass counts (the least disturbed by
    /// other work on a shared machine).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Shorter side the fast mode's reduced-scale JPEG decode keeps at least (to measure the
    /// speed/drift trade-off of other settings than `safeguard hash --fast` uses).
    #[arg(long, default_value_t = FAST_MIN_SIDE)]
    pub fast_min_side: u32,
    /// Smallest JPEG (pixels) the fast mode decodes at a reduced scale.
    #[arg(long, default_value_t = FAST_MIN_PIXELS)]
    pub fast_min_pixels: u64,
}

struct Pass {
    elapsed: Duration,
    hashes: Vec<PdqHash>,
}

fn pass(files: &[PathBuf], settings: &HashSettings, hasher: &mut Hasher) -> anyhow::Result<Pass> {
    let start = Instant::now();
    let mut hashes = Vec::with_capacity(files.len());
    for f in files {
        // Reading is part of the work, as it is for the baseline (files are in the page cache
        // after the first pass).
        let bytes = safeguard_media::read_file(f, &settings.limits)?;
        let h = hash_bytes(&bytes, settings, hasher)
            .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        hashes.push(h.pdq.hash);
    }
    Ok(Pass {
        elapsed: start.elapsed(),
        hashes,
    })
}

fn best(files: &[PathBuf], settings: &HashSettings, repeat: usize) -> anyhow::Result<Pass> {
    let mut hasher = Hasher::new();
    let mut best: Option<Pass> = None;
    for _ in 0..repeat.max(1) {
        let p = pass(files, settings, &mut hasher)?;
        if best.as_ref().is_none_or(|b| p.elapsed < b.elapsed) {
            best = Some(p);
        }
    }
    Ok(best.expect("at least one pass ran"))
}

/// Runs `safeguard bench hash` on the current thread only.
pub fn run(args: &BenchHashArgs) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for input in expand(std::slice::from_ref(&args.dir)) {
        match input {
            Input::File(p) => files.push(p),
            Input::Unreadable(p, why) => anyhow::bail!("{}: {why}", p.display()),
        }
    }
    anyhow::ensure!(!files.is_empty(), "{} holds no files", args.dir.display());
    let mut megapixels = 0.0;
    for f in &files {
        let bytes = std::fs::read(f)?;
        let d = safeguard_media::decode(&bytes, &safeguard_media::Limits::default())
            .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        megapixels += d.image.width as f64 * d.image.height as f64 / 1e6;
    }
    let exact_settings = HashSettings {
        limits: safeguard_media::Limits::default(),
        decode: safeguard_media::DecodeOptions::default(),
        compat: Compat::Pytx,
        dihedral: false,
        // The baseline computes PDQ only; so does this measurement.
        digests: false,
    };
    let mut fast_settings = exact_settings.clone();
    fast_settings.decode.jpeg_min_side = Some(args.fast_min_side);
    fast_settings.decode.jpeg_scale_min_pixels = args.fast_min_pixels;

    let exact = best(&files, &exact_settings, args.repeat)?;
    let fast = best(&files, &fast_settings, args.repeat)?;
    let n = files.len() as f64;
    let exact_ips = n / exact.elapsed.as_secs_f64();
    let fast_ips = n / fast.elapsed.as_secs_f64();
    let drift: Vec<u32> = exact
        .hashes
        .iter()
        .zip(&fast.hashes)
        .map(|(a, b)| a.distance(b))
        .collect();
    let max_drift = drift.iter().copied().max().unwrap_or(0);
    let mean_drift = drift.iter().map(|&d| d as f64).sum::<f64>() / n;
    let identical = drift.iter().filter(|&&d| d == 0).count();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "images": files.len(),
                "megapixels": megapixels,
                "exact_images_per_second": exact_ips,
                "fast_images_per_second": fast_ips,
                "fast_drift_max_bits": max_drift,
                "fast_drift_mean_bits": mean_drift,
                "fast_identical": identical,
            })
        );
    } else {
        println!(
            "{} images, {:.1} megapixels, best of {} passes, 1 thread",
            files.len(),
            megapixels,
            args.repeat
        );
        println!(
            "exact: {exact_ips:.2} images/s ({:.1} ms/image)",
            1e3 / exact_ips
        );
        println!(
            "fast:  {fast_ips:.2} images/s ({:.1} ms/image)",
            1e3 / fast_ips
        );
        println!(
            "fast drift from exact: max {max_drift} bits, mean {mean_drift:.2}, identical {identical}/{}",
            files.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
