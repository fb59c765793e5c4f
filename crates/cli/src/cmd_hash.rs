//! `safeguard hash`: PDQ and cryptographic hashes of image files, vPDQ of videos.
//!
//! Each file is recognised by its content: video containers and animated GIFs get vPDQ (see
//! `docs/video.md`), everything else is decoded as an image.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rayon::prelude::*;
use safeguard_engine::video::{is_video, HashedVideo, VideoOptions, VpdqVideo};
use safeguard_media::video::VideoLimits;
use safeguard_media::{DecodeOptions, Limits};
use safeguard_pdq::{Dihedral, PdqOutput};
use safeguard_sandbox::{Decoder, ImageJob, PoolConfig};

use crate::output::{Out, WriteResult};
use crate::walk::{expand, Input};

/// Which reference's values to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compat {
    /// Python's pdqhash over Pillow (python-threatexchange, HMA): the values in NCMEC,
    /// StopNCII and HMA banks. Full resolution, f64 luma.
    Pytx,
    /// Meta's C++ `pdq-photo-hasher`: images over 512 px squashed to 512×512 by nearest
    /// neighbour first, f32 luma.
    Cpp512,
}

/// How videos are printed without `--json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TextFormat {
    /// Images: `pdq,quality,path`. Videos: one line per hashed frame,
    /// `frameNumber,quality,pdqHex,timestamp,path`.
    Csv,
    /// The vPDQ reference CLI's lines, `frameNumber,quality,pdqHex,timestamp` (what
    /// `vpdq-hash-video` writes); files that are not videos are reported as errors.
    Vpdq,
}

/// How a hashing run uses this machine; shared by `safeguard hash` and the scan workers.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
    /// Decode in this process instead of in confined worker processes. LESS SAFE: a decoder
    /// bug triggered by a hostile file then runs with your permissions (files, network).
    /// Hashes are the same either way.
    #[arg(long)]
    pub in_process: bool,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

impl RunArgs {
    /// Sizes the process's hashing thread pool, when asked to; call once, before hashing.
    pub fn init_threads(&self) -> anyhow::Result<()> {
        if let Some(n) = self.threads {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .build_global()?;
        }
        Ok(())
    }

    /// The decoder asked for: confined workers, one per hashing thread, unless `--in-process`.
    pub fn decoder(&self, video: &VideoLimits) -> Decoder {
        if self.in_process {
            Decoder::InProcess
        } else {
            sandboxed(rayon::current_num_threads(), video)
        }
    }
}

/// Arguments of `safeguard hash`.
#[derive(Debug, clap::Args)]
pub struct HashArgs {
    /// Files or folders (folders are searched recursively, in name order).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// One JSON object per line with the PDQ hash, quality, MD5, SHA-1, SHA-256 and size.
    #[arg(long)]
    pub json: bool,
    /// With --json: also the 8 dihedral hashes (rotations and mirrors).
    #[arg(long, requires = "json")]
    pub dihedral: bool,
    /// Output format without --json.
    #[arg(long, value_enum, default_value_t = TextFormat::Csv)]
    pub format: TextFormat,
    /// Videos: hash one frame every this many seconds, counted in frames
    /// (max(1, int(S * fps)) frames apart); 0 hashes every frame.
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    pub seconds_per_hash: f64,
    /// Whose values to reproduce.
    #[arg(long, value_enum, default_value_t = Compat::Pytx)]
    pub compat: Compat,
    /// Decode large JPEGs at a reduced DCT scale: many times faster, NOT bit-exact (a few bits
    /// of drift; see docs/pdq-fast-mode.md). Never use it to build hash lists for sharing.
    #[arg(long)]
    pub fast: bool,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Decode limits, each overriding the default.
#[derive(Debug, clap::Args)]
pub struct LimitArgs {
    /// Largest file accepted, in bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_input_bytes: Option<u64>,
    /// Largest width or height accepted, in pixels.
    #[arg(long, value_name = "PIXELS")]
    pub max_side: Option<u32>,
    /// Largest width × height accepted, in pixels.
    #[arg(long, value_name = "PIXELS")]
    pub max_pixels: Option<u64>,
    /// Largest video file accepted, in bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_video_bytes: Option<u64>,
    /// Longest video accepted, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub max_video_seconds: Option<f64>,
    /// Most frames a video may have.
    #[arg(long, value_name = "FRAMES")]
    pub max_frames: Option<u64>,
    /// Wall-clock budget for decoding one video, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub max_decode_seconds: Option<f64>,
}

impl LimitArgs {
    /// The limits to decode with.
    pub fn to_limits(&self) -> Limits {
        let mut l = Limits::default();
        if let Some(v) = self.max_input_bytes {
            l.max_input_bytes = v;
        }
        self.size_overrides(&mut l.max_width, &mut l.max_height, &mut l.max_pixels);
        l
    }

    /// `--max-side` and `--max-pixels`, which bound images and video frames alike.
    fn size_overrides(&self, width: &mut u32, height: &mut u32, pixels: &mut u64) {
        if let Some(v) = self.max_side {
            *width = v;
            *height = v;
        }
        if let Some(v) = self.max_pixels {
            *pixels = v;
        }
    }

    /// The limits to decode videos with. A negative or non-finite number of seconds is an
    /// error.
    pub fn to_video_limits(&self) -> anyhow::Result<VideoLimits> {
        let seconds = |v: f64, what: &str| {
            std::time::Duration::try_from_secs_f64(v)
                .map_err(|_| anyhow::anyhow!("{what} must be a number of seconds >= 0, got {v}"))
        };
        let mut l = VideoLimits::default();
        if let Some(v) = self.max_video_bytes {
            l.max_input_bytes = v;
        }
        self.size_overrides(&mut l.max_width, &mut l.max_height, &mut l.max_pixels);
        if let Some(v) = self.max_video_seconds {
            l.max_duration = seconds(v, "--max-video-seconds")?;
        }
        if let Some(v) = self.max_frames {
            l.max_frames = v;
        }
        if let Some(v) = self.max_decode_seconds {
            l.max_decode_time = seconds(v, "--max-decode-seconds")?;
        }
        Ok(l)
    }
}

/// Shorter side a `--fast` JPEG decode keeps at least, in pixels. PDQ reduces every image to
/// 64×64; at 4× that the reduced-scale decode moves only a few bits (measured in
/// docs/pdq-fast-mode.md).
pub const FAST_MIN_SIDE: u32 = 256;

/// Smallest JPEG, in pixels, that `--fast` decodes at a reduced scale. Smaller photos are cheap
/// to decode exactly, and on them (fine textures at 640 px, say) the reduced scale moved the
/// hash by up to 58 bits, against at most 16 on larger ones (docs/pdq-fast-mode.md).
pub const FAST_MIN_PIXELS: u64 = 800_000;

/// Everything computed for one file.
#[derive(Debug)]
pub struct FileHashes {
    /// PDQ hash and quality.
    pub pdq: PdqOutput,
    /// The 8 dihedral hashes, when asked for.
    pub dihedral: Option<[safeguard_pdq::PdqHash; 8]>,
    /// Cryptographic digests of the file bytes, when asked for.
    pub digests: Option<safeguard_media::digest::Digests>,
    /// Image width and height as stored in the file.
    pub width: u32,
    /// See `width`.
    pub height: u32,
}

/// Settings shared by every file of a run.
#[derive(Debug, Clone)]
pub struct HashSettings {
    /// Where files are decoded: confined workers, or this process (`--in-process`).
    pub decoder: Decoder,
    /// Decode limits.
    pub limits: Limits,
    /// Decode options (reduced-scale JPEG in fast mode).
    pub decode: DecodeOptions,
    /// Which reference to reproduce.
    pub compat: Compat,
    /// Whether to compute the dihedral hashes.
    pub dihedral: bool,
    /// Whether to compute MD5, SHA-1 and SHA-256 of the file (only the JSON output shows them).
    pub digests: bool,
}

impl HashSettings {
    /// Settings for the given command-line arguments; `video` bounds the workers' deadlines.
    pub fn from_args(args: &HashArgs, video: &VideoLimits) -> HashSettings {
        let mut decode = DecodeOptions::default();
        if args.fast {
            decode.jpeg_min_side = Some(FAST_MIN_SIDE);
            decode.jpeg_scale_min_pixels = FAST_MIN_PIXELS;
        }
        HashSettings {
            decoder: args.run.decoder(video),
            limits: args.limits.to_limits(),
            decode,
            compat: args.compat,
            dihedral: args.dihedral,
            digests: args.json,
        }
    }
}

/// Confined decode workers for `threads` threads at once, able to take the longest video
/// `video` admits.
pub fn sandboxed(threads: usize, video: &VideoLimits) -> Decoder {
    let defaults = PoolConfig::default();
    let longest = video
        .max_decode_time
        .saturating_add(safeguard_sandbox::VIDEO_DEADLINE_GRACE)
        .max(defaults.image_deadline);
    Decoder::sandboxed(PoolConfig {
        max_idle: threads.max(1),
        // Room for at least two of the longest requests per worker before it is retired.
        cpu_limit: defaults.cpu_limit.max(longest.saturating_mul(2)),
        ..defaults
    })
}

/// What one file gave.
#[derive(Debug)]
pub enum Hashed {
    /// A still image (or a format decoded as one).
    Image(FileHashes),
    /// A video or animated image, with its file digests.
    Video(HashedVideo),
    /// A video or animated image, vPDQ only (the text formats print nothing else).
    Frames(VpdqVideo),
}

/// Reads, decodes and hashes one file: vPDQ when its content is a video, PDQ otherwise. The
/// error is the reason, ready to print.
pub fn hash_file(
    path: &Path,
    settings: &HashSettings,
    video: &VideoOptions,
) -> Result<Hashed, String> {
    // Read up to the larger of the two size limits; the image decoder applies its own.
    let mut read_limits = settings.limits.clone();
    read_limits.max_input_bytes = read_limits
        .max_input_bytes
        .max(video.limits.max_input_bytes);
    let bytes = safeguard_media::read_file(path, &read_limits).map_err(|e| e.to_string())?;
    if is_video(&bytes) {
        let d = &settings.decoder;
        let hashed = if settings.digests {
            d.hash_video(bytes.into(), video).map(Hashed::Video)
        } else {
            d.vpdq_video(bytes.into(), video).map(Hashed::Frames)
        };
        return hashed.map_err(|e| e.to_string());
    }
    hash_bytes(&bytes, settings).map(Hashed::Image)
}

/// Decodes and hashes one file's bytes, where `settings.decoder` says.
pub fn hash_bytes(bytes: &[u8], settings: &HashSettings) -> Result<FileHashes, String> {
    let job = ImageJob {
        limits: settings.limits.clone(),
        decode: settings.decode.clone(),
        compat: match settings.compat {
            Compat::Pytx => safeguard_sandbox::Compat::Pytx,
            Compat::Cpp512 => safeguard_sandbox::Compat::Cpp512,
        },
        dihedral: settings.dihedral,
        digests: settings.digests,
    };
    let h = settings
        .decoder
        .hash_image(bytes, &job)
        .map_err(|e| e.to_string())?;
    Ok(FileHashes {
        pdq: h.pdq,
        dihedral: h.dihedral,
        digests: h.digests,
        width: h.width,
        height: h.height,
    })
}

fn json_line(path: &Path, h: &FileHashes) -> String {
    let mut obj = serde_json::json!({
        "path": path.to_string_lossy(),
        "pdq": h.pdq.hash.to_hex(),
        "quality": h.pdq.quality,
        "width": h.width,
        "height": h.height,
    });
    if let Some(d) = &h.digests {
        obj["md5"] = hex::encode(d.md5).into();
        obj["sha1"] = hex::encode(d.sha1).into();
        obj["sha256"] = hex::encode(d.sha256).into();
    }
    if let Some(d) = &h.dihedral {
        let mut m = serde_json::Map::new();
        for (k, t) in Dihedral::ALL.iter().enumerate().skip(1) {
            m.insert(t.name().to_string(), d[k].to_hex().into());
        }
        obj["dihedral"] = m.into();
    }
    obj.to_string()
}

fn video_json(path: &Path, v: &HashedVideo, seconds_per_hash: f64) -> String {
    let frames: Vec<serde_json::Value> = v
        .vpdq
        .frames
        .iter()
        .map(|f| {
            serde_json::json!({
                "frame": f.frame_number,
                "quality": f.quality,
                "pdq": f.hash.to_hex(),
                "timestamp": f.timestamp,
            })
        })
        .collect();
    let mut obj = serde_json::json!({
        "path": path.to_string_lossy(),
        "type": "video",
        "md5": hex::encode(v.md5),
        "sha1": hex::encode(v.sha1),
        "sha256": hex::encode(v.sha256),
        "width": v.vpdq.width,
        "height": v.vpdq.height,
        "fps": v.vpdq.fps,
        "frame_count": v.vpdq.frame_count,
        "duration_s": v.vpdq.duration_s,
        "seconds_per_hash": seconds_per_hash,
        "frames": frames,
    });
    if let Some(img) = &v.first_frame {
        obj["first_frame"] = serde_json::json!({
            "pdq": img.pdq.to_hex(),
            "quality": img.quality,
            "width": img.width,
            "height": img.height,
        });
    }
    obj.to_string()
}

/// The reference CLI's line for one frame: `frameNumber,quality,pdqHex,timestamp`.
fn vpdq_line(f: &safeguard_vpdq::VpdqFrame) -> String {
    format!(
        "{},{},{},{:.3}",
        f.frame_number,
        f.quality,
        f.hash.to_hex(),
        f.timestamp
    )
}

/// The lines one file prints, or why it failed.
fn output_lines(args: &HashArgs, path: &Path, h: Hashed) -> Result<Vec<String>, String> {
    Ok(match h {
        Hashed::Image(h) if args.json => vec![json_line(path, &h)],
        Hashed::Image(_) if args.format == TextFormat::Vpdq => {
            return Err("not a video (--format vpdq prints videos only)".into())
        }
        Hashed::Image(h) => vec![format!(
            "{},{},{}",
            h.pdq.hash,
            h.pdq.quality,
            path.display()
        )],
        Hashed::Video(v) if args.json => vec![video_json(path, &v, args.seconds_per_hash)],
        Hashed::Video(HashedVideo { vpdq: v, .. }) | Hashed::Frames(v) => v
            .frames
            .iter()
            .map(|f| match args.format {
                TextFormat::Vpdq => vpdq_line(f),
                TextFormat::Csv => format!("{},{}", vpdq_line(f), path.display()),
            })
            .collect(),
    })
}

/// Files hashed in parallel per chunk; the chunk's lines are printed in input order before the
/// next chunk starts, so output order never depends on thread timing and memory stays bounded.
const CHUNK: usize = 256;

/// Runs `safeguard hash`.
pub fn run(args: &HashArgs) -> anyhow::Result<ExitCode> {
    args.run.init_threads()?;
    let video = VideoOptions {
        seconds_per_hash: args.seconds_per_hash,
        limits: args.limits.to_video_limits()?,
    };
    let settings = HashSettings::from_args(args, &video.limits);
    // Checked once here rather than failing every video the same way.
    safeguard_vpdq::hasher::frame_mod(args.seconds_per_hash, 1.0)
        .map_err(|e| anyhow::anyhow!("--seconds-per-hash: {e}"))?;
    let inputs = expand(&args.paths);
    let progress = (!args.run.no_progress && std::io::stderr().is_terminal() && inputs.len() >= 32)
        .then(|| indicatif::ProgressBar::new(inputs.len() as u64));
    let mut out = Out::stdout();
    let mut failed = false;
    for chunk in inputs.chunks(CHUNK) {
        let results: Vec<(&Path, Result<Vec<String>, String>)> = chunk
            .par_iter()
            .map(|input| match input {
                Input::File(p) => (
                    p.as_path(),
                    hash_file(p, &settings, &video).and_then(|h| output_lines(args, p, h)),
                ),
                Input::Unreadable(p, why) => (p.as_path(), Err(why.clone())),
            })
            .collect();
        for (path, r) in results {
            match r {
                Ok(lines) => {
                    for line in lines {
                        if out.line(&line)? == WriteResult::Closed {
                            return Ok(ExitCode::SUCCESS);
                        }
                    }
                }
                Err(why) => {
                    failed = true;
                    let msg = format!("error: {}: {why}", path.display());
                    match &progress {
                        Some(pb) => pb.println(msg),
                        None => eprintln!("{msg}"),
                    }
                }
            }
        }
        if let Some(pb) = &progress {
            pb.inc(chunk.len() as u64);
        }
    }
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    if out.flush()? == WriteResult::Closed {
        return Ok(ExitCode::SUCCESS);
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
