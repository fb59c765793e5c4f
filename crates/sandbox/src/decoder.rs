//! The switch callers hold: decode in confined workers, or in this process.

use std::sync::Arc;

use bytes::Bytes;
use safeguard_engine::video::{HashedVideo, VideoOptions, VpdqVideo};
use safeguard_engine::HashedMedia;
use safeguard_media::Limits;

use crate::error::Error;
use crate::job::{self, ImageHashes, ImageJob, VideoOutput};
use crate::pool::{Pool, PoolConfig};
use crate::wire::{Request, Response};

/// Where media is decoded. Both give the same hashes, bit for bit (the same code runs); they
/// differ in what a decoder bug can reach.
#[derive(Debug, Clone)]
pub enum Decoder {
    /// In confined worker processes (the default everywhere).
    Sandboxed(Arc<Pool>),
    /// In the calling process: no process boundary, no seccomp filter. An explicit opt-out
    /// for measurements, and for hosts where workers cannot run; less safe.
    InProcess,
}

impl Decoder {
    /// Decoding through a new pool.
    pub fn sandboxed(config: PoolConfig) -> Decoder {
        Decoder::Sandboxed(Arc::new(Pool::new(config)))
    }

    /// Whether decoding is sandboxed.
    pub fn is_sandboxed(&self) -> bool {
        matches!(self, Decoder::Sandboxed(_))
    }

    /// The pool, when sandboxed.
    pub fn pool(&self) -> Option<&Arc<Pool>> {
        match self {
            Decoder::Sandboxed(p) => Some(p),
            Decoder::InProcess => None,
        }
    }

    /// Decodes and hashes an image as `job` says.
    pub fn hash_image(&self, bytes: &[u8], job: &ImageJob) -> Result<ImageHashes, Error> {
        let pool = match self {
            Decoder::InProcess => return Ok(job::hash_image(bytes, job)?),
            Decoder::Sandboxed(pool) => pool,
        };
        let request = Request::Image(job.clone());
        match pool.call(&request, bytes, pool.config().image_deadline)? {
            Response::Image(h) if h.digests.is_some() == job.digests => Ok(*h),
            Response::Failed(f) => Err(failure(f)),
            other => Err(pool.unexpected(&other)),
        }
    }

    /// The review console's reduced-detail rendering of an image
    /// ([`safeguard_media::reduce::reduced_png`]): a small greyscale posterised PNG.
    pub fn reduced_png(
        &self,
        bytes: &[u8],
        limits: &Limits,
        options: &safeguard_media::reduce::ReduceOptions,
    ) -> Result<Vec<u8>, Error> {
        let pool = match self {
            Decoder::InProcess => {
                return safeguard_media::reduce::reduced_png(bytes, limits, options)
                    .map_err(|e| Error::Decode(e.into()))
            }
            Decoder::Sandboxed(pool) => pool,
        };
        let request = Request::Reduce {
            limits: limits.clone(),
            options: *options,
        };
        match pool.call(&request, bytes, pool.config().image_deadline)? {
            // What goes to a browser as image/png, whatever the worker sends: it must start as
            // a PNG, and be no bigger than twice a greyscale byte per pixel at the asked size
            // plus 64 KiB (a PNG that size can still mis-state its contents; the browser
            // decodes it, confined to an image).
            Response::Reduced(png)
                if png.starts_with(b"\x89PNG\r\n\x1a\n")
                    && png.len() as u64 <= 64 * 1024 + u64::from(options.max_side).pow(2) * 2 =>
            {
                Ok(png)
            }
            Response::Reduced(png) => Err(Error::Crashed(format!(
                "protocol violation: a reduced image of {} bytes that is not a PNG of its size",
                png.len()
            ))),
            Response::Failed(f) => Err(failure(f)),
            other => Err(pool.unexpected(&other)),
        }
    }

    /// What [`safeguard_engine::hash_media`] computes: PDQ (python-threatexchange values),
    /// MD5, SHA-1, SHA-256 and the size.
    pub fn hash_media(&self, bytes: &[u8], limits: &Limits) -> Result<HashedMedia, Error> {
        if let Decoder::InProcess = self {
            return Ok(safeguard_engine::hash_media(bytes, limits)?);
        }
        let job = ImageJob {
            limits: limits.clone(),
            digests: true,
            ..ImageJob::default()
        };
        let h = self.hash_image(bytes, &job)?;
        let d = h
            .digests
            .ok_or_else(|| Error::Crashed("protocol violation: digests missing".into()))?;
        Ok(HashedMedia {
            pdq: h.pdq.hash,
            quality: h.pdq.quality,
            md5: d.md5,
            sha1: d.sha1,
            sha256: d.sha256,
            width: h.width,
            height: h.height,
        })
    }

    /// What [`safeguard_engine::video::hash_video`] computes.
    pub fn hash_video(&self, bytes: Bytes, options: &VideoOptions) -> Result<HashedVideo, Error> {
        match self.video(bytes, options, true)? {
            VideoOutput::Full(v) => Ok(*v),
            VideoOutput::Frames(_) => {
                Err(Error::Crashed("protocol violation: digests missing".into()))
            }
        }
    }

    /// What [`safeguard_engine::video::vpdq_video`] computes.
    pub fn vpdq_video(&self, bytes: Bytes, options: &VideoOptions) -> Result<VpdqVideo, Error> {
        match self.video(bytes, options, false)? {
            VideoOutput::Frames(v) => Ok(v),
            VideoOutput::Full(_) => Err(Error::Crashed(
                "protocol violation: unexpected digests".into(),
            )),
        }
    }

    fn video(
        &self,
        bytes: Bytes,
        options: &VideoOptions,
        digests: bool,
    ) -> Result<VideoOutput, Error> {
        let pool = match self {
            Decoder::InProcess => return Ok(job::hash_video(bytes, options, digests)?),
            Decoder::Sandboxed(pool) => pool,
        };
        let request = Request::Video {
            options: options.clone(),
            digests,
        };
        let deadline = pool.video_deadline(options.limits.max_decode_time);
        match pool.call(&request, &bytes, deadline)? {
            Response::Video(v) => Ok(v),
            Response::Failed(f) => Err(failure(f)),
            other => Err(pool.unexpected(&other)),
        }
    }
}

/// A job's error, rebuilt from the worker's answer.
fn failure(f: crate::wire::WireFailure) -> Error {
    match f.to_error() {
        Ok(e) => Error::Decode(e),
        Err(e) => Error::Crashed(format!("protocol violation: {}", e.0)),
    }
}
