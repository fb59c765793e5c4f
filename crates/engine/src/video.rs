//! Video bytes to vPDQ: decode under limits (the media crate), hash the selected frames (the
//! vpdq crate), and digest the file.

use bytes::Bytes;
use safeguard_media::video::{VideoFrame, VideoLimits, VideoReader};
use safeguard_vpdq::hasher::{FrameHasher, DEFAULT_SECONDS_PER_HASH};
use safeguard_vpdq::VpdqFrame;

use crate::hashing::{hash_media, HashedMedia};
use crate::Error;

/// How to hash a video.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoOptions {
    /// Seconds between hashed frames, by frame count (`max(1, (int)(s * fps))` frames apart);
    /// 0 hashes every frame. Banks use 1.0.
    pub seconds_per_hash: f64,
    /// What one video may cost.
    pub limits: VideoLimits,
}

impl Default for VideoOptions {
    fn default() -> Self {
        VideoOptions {
            seconds_per_hash: DEFAULT_SECONDS_PER_HASH,
            limits: VideoLimits::default(),
        }
    }
}

/// The vPDQ of one video: its hashed frames and what they were sampled from.
#[derive(Debug, Clone, PartialEq)]
pub struct VpdqVideo {
    /// The hashed frames, in frame-number order.
    pub frames: Vec<VpdqFrame>,
    /// Frame width, pixels.
    pub width: u32,
    /// Frame height, pixels.
    pub height: u32,
    /// Frames per second the timestamps and sampling use.
    pub fps: f64,
    /// Frames in the video (all of them, hashed or not).
    pub frame_count: u64,
    /// `frame_count / fps`, seconds.
    pub duration_s: f64,
}

/// Everything computed from one video file: its vPDQ, the file digests and, for an animated
/// image, its still-image hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct HashedVideo {
    /// The vPDQ frames and stream facts.
    pub vpdq: VpdqVideo,
    /// MD5 of the file bytes (hotline banks carry video MD5s).
    pub md5: [u8; 16],
    /// SHA-1 of the file bytes.
    pub sha1: [u8; 20],
    /// SHA-256 of the file bytes.
    pub sha256: [u8; 32],
    /// For an animated image (GIF, WebP): its hashes as a still image (first frame, bank-compatible
    /// PDQ), so it matches image banks too. `None` for video containers.
    pub first_frame: Option<HashedMedia>,
}

/// True when `bytes` look like a video Safeguard hashes with vPDQ: a video container (MP4/MOV,
/// Matroska/WebM, AVI, MPEG-TS/PS, FLV, ASF, Ogg) by its magic bytes, or an animated GIF or
/// WebP (more than one frame). A still GIF or WebP is an image, not a video.
pub fn is_video(bytes: &[u8]) -> bool {
    safeguard_media::video::sniff_video(bytes) || is_animated_image(bytes)
}

fn is_animated_image(bytes: &[u8]) -> bool {
    safeguard_media::video::is_animated_gif(bytes)
        || safeguard_media::video::is_animated_webp(bytes)
}

/// Decodes a video and computes its vPDQ frames, its file digests and, for an animated image,
/// its first frame's image hashes. CPU-heavy (seconds per minute of HD video on one core):
/// async callers run it on a blocking thread. Owned bytes (`Vec<u8>`, `Bytes`) are decoded in
/// place, without a copy.
///
/// Errors: those of [`vpdq_video`], and the image errors of an animated image's first frame.
pub fn hash_video(bytes: impl Into<Bytes>, opts: &VideoOptions) -> Result<HashedVideo, Error> {
    let shared: Bytes = bytes.into();
    let vpdq = vpdq_video(shared.clone(), opts)?;
    let bytes = &shared[..];
    let first_frame = if is_animated_image(bytes) {
        Some(hash_media(bytes, &image_limits(&opts.limits))?)
    } else {
        None
    };
    let d = safeguard_media::digest::digests(bytes);
    Ok(HashedVideo {
        vpdq,
        md5: d.md5,
        sha1: d.sha1,
        sha256: d.sha256,
        first_frame,
    })
}

/// Decodes a video and computes its vPDQ frames only: what `--format vpdq` prints and what
/// Meta's `vpdq` computes, without the file digests [`hash_video`] adds.
///
/// Errors: the media crate's video errors (`video_too_large`, `video_too_long`,
/// `too_many_frames`, `decode_timeout`, `unsupported_video`, `truncated_video`,
/// `corrupt_video`, `empty_input`) as [`Error::Media`]; a frame under 5x5 pixels as
/// `unsupported_video`; a bad `seconds_per_hash` as [`Error::Invalid`].
pub fn vpdq_video(bytes: impl Into<Bytes>, opts: &VideoOptions) -> Result<VpdqVideo, Error> {
    let bytes: Bytes = bytes.into();
    let reader = VideoReader::open(bytes.clone(), &opts.limits)?;
    let info = reader.info().clone();
    let mut hasher = FrameHasher::new(info.fps, opts.seconds_per_hash).map_err(vpdq_error)?;
    let frame_mod = hasher.frame_mod();
    let mut frames = Vec::new();
    // Sampled: skip decoding the frames nothing needs, when the numbering can be proven;
    // otherwise (or for every-frame hashing) decode and count every frame, as the reference.
    let sampled = {
        let hash = |f: VideoFrame<'_>| push_frame(&mut hasher, &mut frames, f);
        if frame_mod > 1 {
            reader.decode_sampled(frame_mod, hash)?
        } else {
            Some(reader.decode(|_| true, hash)?)
        }
    };
    let frame_count = match sampled {
        Some(n) => n,
        None => {
            frames.clear();
            let reader = VideoReader::open(bytes, &opts.limits)?;
            reader.decode(
                |n| n % frame_mod == 0,
                |f: VideoFrame<'_>| push_frame(&mut hasher, &mut frames, f),
            )?
        }
    };
    Ok(VpdqVideo {
        frames,
        width: info.width,
        height: info.height,
        fps: info.fps,
        frame_count,
        duration_s: frame_count as f64 / info.fps,
    })
}

fn push_frame(
    hasher: &mut FrameHasher,
    frames: &mut Vec<VpdqFrame>,
    f: VideoFrame<'_>,
) -> Result<(), Error> {
    let frame = hasher
        .hash_frame(f.number, f.rgb, f.width as usize, f.height as usize)
        .map_err(vpdq_error)?;
    frames.push(frame);
    Ok(())
}

/// Still-image limits for the first frame of an animation, no looser than the video's.
fn image_limits(video: &VideoLimits) -> safeguard_media::Limits {
    let mut l = safeguard_media::Limits::default();
    l.max_input_bytes = l.max_input_bytes.max(video.max_input_bytes);
    l.max_width = l.max_width.min(video.max_width);
    l.max_height = l.max_height.min(video.max_height);
    l.max_pixels = l.max_pixels.min(video.max_pixels);
    l
}

fn vpdq_error(e: safeguard_vpdq::Error) -> Error {
    use safeguard_media::Error as M;
    match e {
        safeguard_vpdq::Error::FrameTooSmall { .. } => {
            Error::Media(M::UnsupportedVideo(e.to_string()))
        }
        safeguard_vpdq::Error::InvalidSampling(m) => Error::Invalid(m),
        other => Error::Media(M::Internal(format!("vPDQ hashing: {other}"))),
    }
}
