//! `safeguard bench video`: vPDQ speed against Meta's `vpdq` Python package on the same files in
//! the same run, and (with `--decode-compare`) FFmpeg's libraries against the `ffmpeg` program
//! as a subprocess for decode + RGB conversion of every frame. Each file also gets its
//! exact-decode floor (`decode_floor`), the bound on what any exact hasher on this decoder can gain.
//!
//! Run it pinned to one core (`taskset -c 0`, as `scripts/bench-vpdq.sh` does): Safeguard
//! decodes on one thread, and the baseline inherits the affinity.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::Context as _;
use safeguard_engine::video::{hash_video, vpdq_video, VideoOptions, VpdqVideo};
use safeguard_media::video::{VideoLimits, VideoReader};

/// Arguments of `safeguard bench video`.
#[derive(Debug, clap::Args)]
pub struct BenchVideoArgs {
    /// Video files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Seconds per hash for both sides (1 = what banks use; 0 = every frame).
    #[arg(long, default_value_t = 1.0)]
    pub seconds_per_hash: f64,
    /// Runs per file and side; the best counts.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Python interpreter with the `vpdq` package (e.g. `.venv-bench/bin/python`); without
    /// it, only Safeguard is measured.
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// The baseline script (`scripts/bench_vpdq.py`).
    #[arg(long, default_value = "scripts/bench_vpdq.py")]
    pub baseline_script: PathBuf,
    /// Also compare decode + RGB24 conversion of every frame: FFmpeg's libraries in process
    /// against the `ffmpeg` program as a subprocess.
    #[arg(long)]
    pub decode_compare: bool,
}

/// Safeguard's best times on one file.
struct Side {
    /// vPDQ alone: the work (and output) of the baseline's `computeHash`.
    seconds: f64,
    /// vPDQ plus MD5, SHA-1 and SHA-256 of the file, as `hash_video` (the service) does.
    with_digests: f64,
    /// The exact-decode floor (`decode_floor`).
    floor: f64,
}

/// The fastest of `repeat` runs: (seconds, its result).
fn best<T>(repeat: usize, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(f64, T)> {
    let mut best = timed(&mut f)?;
    for _ in 1..repeat.max(1) {
        let run = timed(&mut f)?;
        if run.0 < best.0 {
            best = run;
        }
    }
    Ok(best)
}

fn timed<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(f64, T)> {
    let t = Instant::now();
    let v = f()?;
    Ok((t.elapsed().as_secs_f64(), v))
}

/// vPDQ of one file, reading it included (as it is for the baseline).
fn vpdq_run(path: &Path, opts: &VideoOptions) -> anyhow::Result<(f64, VpdqVideo)> {
    timed(|| {
        let bytes = std::fs::read(path)?;
        vpdq_video(bytes, opts).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    })
}

/// The same with the file digests.
fn hash_run(path: &Path, opts: &VideoOptions) -> anyhow::Result<f64> {
    let (dt, _) = timed(|| {
        let bytes = std::fs::read(path)?;
        hash_video(bytes, opts).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    })?;
    Ok(dt)
}

struct Baseline {
    seconds: f64,
    frames: Vec<(u64, u8, String)>,
}

/// One timed run of the baseline on one file (the interpreter's start-up and import are not
/// timed: the script times `computeHash` itself).
fn baseline(args: &BenchVideoArgs, python: &Path, file: &Path) -> anyhow::Result<Baseline> {
    let mut child = Command::new(python)
        .arg(&args.baseline_script)
        .arg("--seconds-per-hash")
        .arg(args.seconds_per_hash.to_string())
        .arg("--repeat")
        .arg("1")
        .arg(file)
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", python.display()))?;
    let stdout = child.stdout.take().context("baseline stdout")?;
    let mut out = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        let frames = v["frames"]
            .as_array()
            .context("frames")?
            .iter()
            .map(|f| {
                (
                    f[0].as_u64().unwrap_or(u64::MAX),
                    f[1].as_u64().unwrap_or(0) as u8,
                    f[2].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        out.push(Baseline {
            seconds: v["seconds"].as_f64().context("seconds")?,
            frames,
        });
    }
    anyhow::ensure!(child.wait()?.success(), "the baseline script failed");
    anyhow::ensure!(out.len() == 1, "the baseline skipped {}", file.display());
    out.pop().context("baseline output")
}

/// The exact-decode floor: decoding only what sampled vPDQ needs (every reference frame up to
/// each IDR segment's last hashed frame, plus the hashed frames, converted to RGB), without
/// hashing or file digests. No exact hasher on this decoder can take less, so the baseline's
/// time over this is the most any such hasher could gain.
fn decode_floor(path: &Path, seconds_per_hash: f64) -> anyhow::Result<f64> {
    let t = Instant::now();
    let bytes = bytes::Bytes::from(std::fs::read(path)?);
    let limits = VideoLimits::default();
    let reader = VideoReader::open(bytes.clone(), &limits)?;
    let frame_mod = safeguard_vpdq::hasher::frame_mod(seconds_per_hash, reader.info().fps)?;
    let mut sum = 0u64;
    let mut touch = |f: safeguard_media::video::VideoFrame<'_>| {
        sum = sum.wrapping_add(u64::from(f.rgb[f.rgb.len() / 2]));
        Ok::<(), safeguard_media::Error>(())
    };
    let sampled = if frame_mod > 1 {
        reader.decode_sampled(frame_mod, &mut touch)?
    } else {
        None
    };
    if sampled.is_none() {
        // As hash_video: every frame decoded, the selected ones converted.
        VideoReader::open(bytes, &limits)?.decode(|n| n % frame_mod == 0, &mut touch)?;
    }
    std::hint::black_box(sum);
    Ok(t.elapsed().as_secs_f64())
}

/// Decode + RGB24 of every frame through the libraries; returns frames.
fn decode_libs(bytes: bytes::Bytes) -> anyhow::Result<u64> {
    let reader = VideoReader::open(bytes, &VideoLimits::default())?;
    let mut sum = 0u64;
    let n = reader.decode(
        |_| true,
        |f| {
            // Touch the pixels so the conversion cannot be skipped.
            sum = sum.wrapping_add(u64::from(f.rgb[f.rgb.len() / 2]));
            Ok::<(), safeguard_media::Error>(())
        },
    )?;
    std::hint::black_box(sum);
    Ok(n)
}

/// The same through `ffmpeg` as a subprocess writing raw RGB24 to a pipe; returns frames.
fn decode_subprocess(path: &Path, width: u32, height: u32) -> anyhow::Result<u64> {
    let mut child = Command::new("ffmpeg")
        .args(["-v", "error", "-threads", "1", "-i"])
        .arg(path)
        .args([
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-sws_flags",
            "area",
            "-",
        ])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .context("cannot run ffmpeg")?;
    let mut stdout = child.stdout.take().context("ffmpeg stdout")?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = stdout.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    anyhow::ensure!(
        child.wait()?.success(),
        "ffmpeg failed on {}",
        path.display()
    );
    Ok(total / (u64::from(width) * u64::from(height) * 3))
}

/// Runs `safeguard bench video`.
pub fn run(args: &BenchVideoArgs) -> anyhow::Result<ExitCode> {
    let opts = VideoOptions {
        seconds_per_hash: args.seconds_per_hash,
        ..VideoOptions::default()
    };
    println!(
        "vPDQ at {} s per hash, best of {} runs per file and side, the two sides alternating",
        args.seconds_per_hash, args.repeat
    );
    // Runs alternate (ours, theirs, ours, ...) so that load from elsewhere on the machine
    // falls on both sides alike.
    let mut ours: Vec<(Side, VpdqVideo)> = Vec::new();
    let mut theirs_all: Vec<Baseline> = Vec::new();
    for path in &args.files {
        let mut side = Side {
            seconds: f64::INFINITY,
            with_digests: f64::INFINITY,
            floor: f64::INFINITY,
        };
        let mut video = None;
        let mut base: Option<Baseline> = None;
        for _ in 0..args.repeat.max(1) {
            let (dt, v) = vpdq_run(path, &opts)?;
            side.seconds = side.seconds.min(dt);
            video = Some(v);
            side.with_digests = side.with_digests.min(hash_run(path, &opts)?);
            side.floor = side.floor.min(decode_floor(path, args.seconds_per_hash)?);
            if let Some(py) = &args.python {
                let b = baseline(args, py, path)?;
                if base.as_ref().is_none_or(|x| b.seconds < x.seconds) {
                    base = Some(b);
                }
            }
        }
        // The loop ran at least once.
        ours.push((side, video.context("no run")?));
        theirs_all.extend(base);
    }
    let theirs = args.python.as_ref().map(|_| theirs_all);
    println!("file,duration_s,frames,hashes,safeguard_s,safeguard_x_realtime,vpdq_s,vpdq_x_realtime,speedup,identical_hashes,with_digests_s,speedup_with_digests,decode_floor_s,speedup_ceiling");
    let (mut sum_ours, mut sum_digests, mut sum_floor) = (0.0, 0.0, 0.0);
    let (mut sum_theirs, mut sum_duration) = (0.0, 0.0);
    for (k, (path, (side, v))) in args.files.iter().zip(&ours).enumerate() {
        sum_ours += side.seconds;
        sum_digests += side.with_digests;
        sum_floor += side.floor;
        sum_duration += v.duration_s;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let base = theirs.as_ref().map(|t| &t[k]);
        let (vs, vx, ratio, same, ratio_digests, ceiling) = match base {
            Some(b) => {
                sum_theirs += b.seconds;
                let same = v
                    .frames
                    .iter()
                    .zip(&b.frames)
                    .filter(|(a, (n, q, h))| {
                        a.frame_number == *n && a.quality == *q && a.hash.to_hex() == *h
                    })
                    .count();
                (
                    format!("{:.3}", b.seconds),
                    format!("{:.1}", v.duration_s / b.seconds),
                    format!("{:.2}", b.seconds / side.seconds),
                    format!("{same}/{}", b.frames.len().max(v.frames.len())),
                    format!("{:.2}", b.seconds / side.with_digests),
                    format!("{:.2}", b.seconds / side.floor),
                )
            }
            None => {
                let none = || "-".to_string();
                (none(), none(), none(), none(), none(), none())
            }
        };
        println!(
            "{name},{:.2},{},{},{:.3},{:.1},{vs},{vx},{ratio},{same},{:.3},{ratio_digests},{:.3},{ceiling}",
            v.duration_s,
            v.frame_count,
            v.frames.len(),
            side.seconds,
            v.duration_s / side.seconds,
            side.with_digests,
            side.floor,
        );
    }
    let n = args.files.len() as f64;
    println!(
        "safeguard: {:.3} videos/s, {:.1}x realtime (vPDQ); {:.3} videos/s with file digests",
        n / sum_ours,
        sum_duration / sum_ours,
        n / sum_digests
    );
    if theirs.is_some() {
        println!(
            "vpdq (Python package): {:.3} videos/s, {:.1}x realtime",
            n / sum_theirs,
            sum_duration / sum_theirs
        );
        println!(
            "speedup (vpdq time / safeguard time, all files): {:.2}x vPDQ, {:.2}x with file digests",
            sum_theirs / sum_ours,
            sum_theirs / sum_digests
        );
        println!(
            "speedup ceiling (vpdq time / exact-decode floor, all files): {:.2}x",
            sum_theirs / sum_floor
        );
    }

    if args.decode_compare {
        println!("decode + RGB24 of every frame, 1 thread: FFmpeg libraries in process vs the ffmpeg program");
        println!("file,frames,libs_fps,subprocess_fps,libs_speedup");
        let (mut t_libs, mut t_sub, mut frames_all) = (0.0, 0.0, 0u64);
        for (path, (_, v)) in args.files.iter().zip(&ours) {
            let bytes = bytes::Bytes::from(std::fs::read(path)?);
            let (dl, n_libs) = best(args.repeat, || decode_libs(bytes.clone()))?;
            let (ds, n_sub) = best(args.repeat, || decode_subprocess(path, v.width, v.height))?;
            anyhow::ensure!(
                n_libs == n_sub,
                "{}: libraries decoded {n_libs} frames, ffmpeg {n_sub}",
                path.display()
            );
            t_libs += dl;
            t_sub += ds;
            frames_all += n_libs;
            println!(
                "{},{n_libs},{:.1},{:.1},{:.2}",
                path.file_name().unwrap_or_default().to_string_lossy(),
                n_libs as f64 / dl,
                n_sub as f64 / ds,
                ds / dl
            );
        }
        println!(
            "all: libs {:.1} frames/s, subprocess {:.1} frames/s, libs/subprocess speed {:.2}x",
            frames_all as f64 / t_libs,
            frames_all as f64 / t_sub,
            t_sub / t_libs
        );
    }
    Ok(ExitCode::SUCCESS)
}
