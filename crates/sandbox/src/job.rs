//! What a worker computes: the decode-and-hash jobs, run by the worker and by in-process
//! decoding alike, so the two give the same bits.

use std::cell::RefCell;

use bytes::Bytes;
use safeguard_engine::video::{HashedVideo, VideoOptions, VpdqVideo};
use safeguard_engine::Error;
use safeguard_media::digest::Digests;
use safeguard_media::{DecodeOptions, Limits};
use safeguard_pdq::{Hasher, PdqHash, PdqOutput};

/// Which reference's PDQ values to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compat {
    /// Python's pdqhash over Pillow (python-threatexchange, HMA): the values in shared banks.
    #[default]
    Pytx,
    /// Meta's C++ `pdq-photo-hasher` (images over 512 px squashed to 512x512 first).
    Cpp512,
}

/// Decode an image and hash it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageJob {
    /// Decode limits.
    pub limits: Limits,
    /// Decode options (reduced-scale JPEG in fast mode).
    pub decode: DecodeOptions,
    /// Which PDQ reference to reproduce.
    pub compat: Compat,
    /// Also the 8 dihedral hashes.
    pub dihedral: bool,
    /// Also MD5, SHA-1 and SHA-256 of the input bytes.
    pub digests: bool,
}

/// What an [`ImageJob`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHashes {
    /// PDQ hash and quality.
    pub pdq: PdqOutput,
    /// The 8 dihedral hashes, when asked for.
    pub dihedral: Option<[PdqHash; 8]>,
    /// Width as stored in the file (before any reduced-scale decode).
    pub width: u32,
    /// Height as stored in the file.
    pub height: u32,
    /// Digests of the input bytes, when asked for.
    pub digests: Option<Digests>,
}

thread_local! {
    // The hasher keeps its scratch buffers between images; one per thread (rayon workers in
    // the CLI, the single thread of a decode worker).
    static HASHER: RefCell<Hasher> = RefCell::new(Hasher::new());
}

/// Decodes and hashes an image.
pub fn hash_image(bytes: &[u8], job: &ImageJob) -> Result<ImageHashes, Error> {
    let decoded = safeguard_media::decode_with(bytes, &job.limits, &job.decode)?;
    let img = &decoded.image;
    let (w, h) = (img.width as usize, img.height as usize);
    let internal =
        |e: safeguard_pdq::Error| safeguard_media::Error::Internal(format!("PDQ hashing: {e}"));
    let (pdq, dihedral) = HASHER.with(|hasher| {
        let mut hasher = hasher.borrow_mut();
        Ok::<_, safeguard_media::Error>(match (job.compat, job.dihedral) {
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
        })
    })?;
    let (width, height) = decoded.scaled_from.unwrap_or((img.width, img.height));
    Ok(ImageHashes {
        pdq,
        dihedral,
        width,
        height,
        digests: job.digests.then(|| safeguard_media::digest::digests(bytes)),
    })
}

/// Decodes a video: its vPDQ frames, plus (with `digests`) the file digests and an animated
/// image's first-frame hashes, as [`safeguard_engine::video::hash_video`].
pub(crate) fn hash_video(
    bytes: Bytes,
    options: &VideoOptions,
    digests: bool,
) -> Result<VideoOutput, Error> {
    if digests {
        safeguard_engine::video::hash_video(bytes, options).map(|v| VideoOutput::Full(Box::new(v)))
    } else {
        safeguard_engine::video::vpdq_video(bytes, options).map(VideoOutput::Frames)
    }
}

/// What a video job gives.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VideoOutput {
    /// vPDQ with digests (and first-frame hashes of an animation).
    Full(Box<HashedVideo>),
    /// vPDQ alone.
    Frames(VpdqVideo),
}
