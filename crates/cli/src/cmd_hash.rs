//! `safeguard hash`: PDQ and cryptographic hashes of image files.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rayon::prelude::*;
use safeguard_media::{DecodeOptions, Limits};
use safeguard_pdq::{Dihedral, Hasher, PdqOutput};

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
    /// Whose values to reproduce.
    #[arg(long, value_enum, default_value_t = Compat::Pytx)]
    pub compat: Compat,
    /// Decode large JPEGs at a reduced DCT scale: many times faster, NOT bit-exact (a few bits
    /// of drift; see docs/pdq-fast-mode.md). Never use it to build hash lists for sharing.
    #[arg(long)]
    pub fast: bool,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
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
}

impl LimitArgs {
    /// The limits to decode with.
    pub fn to_limits(&self) -> Limits {
        let mut l = Limits::default();
        if let Some(v) = self.max_input_bytes {
            l.max_input_bytes = v;
        }
        if let Some(v) = self.max_side {
            l.max_width = v;
            l.max_height = v;
        }
        if let Some(v) = self.max_pixels {
            l.max_pixels = v;
        }
        l
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
    /// Settings for the given command-line arguments.
    pub fn from_args(args: &HashArgs) -> HashSettings {
        let mut decode = DecodeOptions::default();
        if args.fast {
            decode.jpeg_min_side = Some(FAST_MIN_SIDE);
            decode.jpeg_scale_min_pixels = FAST_MIN_PIXELS;
        }
        HashSettings {
            limits: args.limits.to_limits(),
            decode,
            compat: args.compat,
            dihedral: args.dihedral,
            digests: args.json,
        }
    }
}

/// Reads, decodes and hashes one file. The error is the reason, ready to print.
pub fn hash_file(
    path: &Path,
    settings: &HashSettings,
    hasher: &mut Hasher,
) -> Result<FileHashes, String> {
    let bytes = safeguard_media::read_file(path, &settings.limits).map_err(|e| e.to_string())?;
    hash_bytes(&bytes, settings, hasher)
}

/// Decodes and hashes one file's bytes.
pub fn hash_bytes(
    bytes: &[u8],
    settings: &HashSettings,
    hasher: &mut Hasher,
) -> Result<FileHashes, String> {
    let decoded = safeguard_media::decode_with(bytes, &settings.limits, &settings.decode)
        .map_err(|e| e.to_string())?;
    let img = &decoded.image;
    let (w, h) = (img.width as usize, img.height as usize);
    let internal = |e: safeguard_pdq::Error| format!("internal error: {e}");
    let (pdq, dihedral) = match (settings.compat, settings.dihedral) {
        (Compat::Pytx, false) => (hasher.hash_rgb(&img.data, w, h).map_err(internal)?, None),
        (Compat::Pytx, true) => {
            let (o, d) = hasher
                .hash_rgb_dihedral(&img.data, w, h)
                .map_err(internal)?;
            (o, Some(d.0))
        }
        (Compat::Cpp512, false) => (
            hasher.hash_rgb_cpp512(&img.data, w, h).map_err(internal)?,
            None,
        ),
        (Compat::Cpp512, true) => {
            let (o, d) = hasher
                .hash_rgb_cpp512_dihedral(&img.data, w, h)
                .map_err(internal)?;
            (o, Some(d.0))
        }
    };
    let (width, height) = decoded.scaled_from.unwrap_or((img.width, img.height));
    Ok(FileHashes {
        pdq,
        dihedral,
        digests: settings
            .digests
            .then(|| safeguard_media::digest::digests(bytes)),
        width,
        height,
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

/// Files hashed in parallel per chunk; the chunk's lines are printed in input order before the
/// next chunk starts, so output order never depends on thread timing and memory stays bounded.
const CHUNK: usize = 256;

/// Runs `safeguard hash`.
pub fn run(args: &HashArgs) -> anyhow::Result<ExitCode> {
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()?;
    }
    let settings = HashSettings::from_args(args);
    let inputs = expand(&args.paths);
    let progress = (!args.no_progress && std::io::stderr().is_terminal() && inputs.len() >= 32)
        .then(|| indicatif::ProgressBar::new(inputs.len() as u64));
    let mut out = Out::stdout();
    let mut failed = false;
    for chunk in inputs.chunks(CHUNK) {
        let results: Vec<(&Path, Result<FileHashes, String>)> = chunk
            .par_iter()
            .map_init(Hasher::new, |hasher, input| match input {
                Input::File(p) => (p.as_path(), hash_file(p, &settings, hasher)),
                Input::Unreadable(p, why) => (p.as_path(), Err(why.clone())),
            })
            .collect();
        for (path, r) in results {
            match r {
                Ok(h) => {
                    let line = if args.json {
                        json_line(path, &h)
                    } else {
                        format!("{},{},{}", h.pdq.hash, h.pdq.quality, path.display())
                    };
                    if out.line(&line)? == WriteResult::Closed {
                        return Ok(ExitCode::SUCCESS);
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
