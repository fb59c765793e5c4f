//! The worker protocol: length-prefixed frames over the worker's stdin and stdout.
//!
//! Every frame is a little-endian `u64` length and that many bytes. The parent starts with an
//! [`Init`] frame (the limits to apply); the worker confines itself and answers
//! [`Response::Ready`]. Then each request is two frames, a header ([`Request`]: the job and its
//! limits) and the input bytes, and each answer is one [`Response`] frame. Values are encoded
//! by hand, field by field, in a fixed order: floats as their IEEE bits (so timestamps and
//! frame rates cross unchanged), and the decoder read back checks every tag and length,
//! because the parent reads what a possibly compromised worker wrote.

use std::time::Duration;

use safeguard_engine::video::{HashedVideo, VideoOptions, VpdqVideo};
use safeguard_engine::HashedMedia;
use safeguard_media::digest::Digests;
use safeguard_media::reduce::ReduceOptions;
use safeguard_media::video::VideoLimits;
use safeguard_media::{DecodeOptions, Format, LimitKind, Limits};
use safeguard_pdq::{PdqHash, PdqOutput};
use safeguard_vpdq::VpdqFrame;

use crate::job::{Compat, ImageHashes, ImageJob, VideoOutput};

/// First bytes of the [`Init`] frame: names the protocol and its version (the worker is the
/// same binary as the parent, so a mismatch means something else answered).
pub(crate) const MAGIC: &[u8; 8] = b"SGDW\x00\x00\x00\x01";

/// Largest request header, bytes (a job and its limits take under 200).
pub(crate) const MAX_HEADER_BYTES: u64 = 4096;

/// Largest response the parent reads, bytes. The largest legitimate answer is a vPDQ of every
/// frame of the longest video the default limits admit (648,000 frames x 49 bytes = 32 MB).
pub(crate) const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// A malformed frame.
#[derive(Debug)]
pub(crate) struct WireError(pub String);

type Result<T> = std::result::Result<T, WireError>;

/// The limits a worker applies to itself before it reads any input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Init {
    /// Address-space limit, bytes (`RLIMIT_AS`).
    pub memory_limit: u64,
    /// CPU-time limit over the worker's life, seconds (`RLIMIT_CPU`).
    pub cpu_limit_secs: u64,
}

/// One job for a worker; the input bytes follow in their own frame.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Request {
    /// Decode and hash an image.
    Image(ImageJob),
    /// Decode a video into vPDQ (with `digests`, as `hash_video`; else `vpdq_video`).
    Video {
        options: VideoOptions,
        digests: bool,
    },
    /// Decode an image and render the console's reduced-detail copy (a PNG).
    Reduce {
        limits: Limits,
        options: ReduceOptions,
    },
    /// Try what the filter must refuse (open a file, a socket, run a program, start a thread,
    /// signal the parent, map executable memory, allocate past the memory limit) and report
    /// what happened. The input frame is ignored.
    Probe,
}

/// What one confinement check gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// What was tried (`open`, `socket`, `execve`, ...).
    pub name: String,
    /// 0 when it succeeded, else the `errno` it failed with (`ENOMEM` for the allocation).
    pub errno: i32,
}

/// A worker's answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Response {
    /// Confined and waiting for requests (answer to [`Init`]).
    Ready,
    /// An image's hashes (boxed: with its dihedral hashes it is the largest variant).
    Image(Box<ImageHashes>),
    /// A video's hashes.
    Video(VideoOutput),
    /// The job refused the input or failed: the engine error it would give in-process.
    Failed(WireFailure),
    /// The probe's results.
    Probe(Vec<ProbeResult>),
    /// A reduced-detail rendering, PNG bytes.
    Reduced(Vec<u8>),
}

/// An engine error as it crosses the pipe. Carried as data and rebuilt on the other side, so
/// the caller sees the same variant, code and message as in-process.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WireFailure(Vec<u8>);

impl WireFailure {
    pub(crate) fn from_error(e: &safeguard_engine::Error) -> WireFailure {
        let mut w = Writer::default();
        match e {
            safeguard_engine::Error::Media(m) => {
                w.u8(0);
                put_media_error(&mut w, m);
            }
            safeguard_engine::Error::Invalid(s) => {
                w.u8(1);
                w.str(s);
            }
            other => {
                w.u8(2);
                w.str(&other.to_string());
            }
        }
        WireFailure(w.0)
    }

    pub(crate) fn to_error(&self) -> Result<safeguard_engine::Error> {
        let mut r = Reader::new(&self.0);
        let e = match r.u8()? {
            0 => safeguard_engine::Error::Media(get_media_error(&mut r)?),
            1 => safeguard_engine::Error::Invalid(r.str()?),
            2 => safeguard_engine::Error::Media(safeguard_media::Error::Internal(r.str()?)),
            t => return Err(WireError(format!("unknown error tag {t}"))),
        };
        r.end()?;
        Ok(e)
    }
}

fn put_media_error(w: &mut Writer, e: &safeguard_media::Error) {
    use safeguard_media::Error as M;
    match e {
        M::Empty => w.u8(0),
        M::UnsupportedFormat => w.u8(1),
        M::UnsupportedFeature { format, detail } => {
            w.u8(2);
            w.u8(format_tag(*format));
            w.str(detail);
        }
        M::TooLarge { what, value, limit } => {
            w.u8(3);
            w.u8(limit_tag(*what));
            w.u64(*value);
            w.u64(*limit);
        }
        M::Truncated { format } => {
            w.u8(4);
            w.u8(format_tag(*format));
        }
        M::Corrupt { format, detail } => {
            w.u8(5);
            w.u8(format_tag(*format));
            w.str(detail);
        }
        M::VideoTooLarge { what, value, limit } => {
            w.u8(6);
            w.u8(limit_tag(*what));
            w.u64(*value);
            w.u64(*limit);
        }
        M::VideoTooLong { seconds, limit } => {
            w.u8(7);
            w.f64(*seconds);
            w.f64(*limit);
        }
        M::TooManyFrames { frames, limit } => {
            w.u8(8);
            w.u64(*frames);
            w.u64(*limit);
        }
        M::DecodeTimeout { limit } => {
            w.u8(9);
            w.duration(*limit);
        }
        M::UnsupportedVideo(s) => {
            w.u8(10);
            w.str(s);
        }
        M::TruncatedVideo { decoded, declared } => {
            w.u8(11);
            w.u64(*decoded);
            w.u64(*declared);
        }
        M::CorruptVideo(s) => {
            w.u8(12);
            w.str(s);
        }
        M::Io(e) => {
            w.u8(13);
            w.str(&e.to_string());
        }
        // `Internal`, and any variant added later: its message, as an internal error.
        other => {
            w.u8(14);
            match other {
                M::Internal(s) => w.str(s),
                _ => w.str(&other.to_string()),
            }
        }
    }
}

fn get_media_error(r: &mut Reader<'_>) -> Result<safeguard_media::Error> {
    use safeguard_media::Error as M;
    Ok(match r.u8()? {
        0 => M::Empty,
        1 => M::UnsupportedFormat,
        2 => M::UnsupportedFeature {
            format: format_from(r.u8()?)?,
            detail: r.str()?,
        },
        3 => M::TooLarge {
            what: limit_from(r.u8()?)?,
            value: r.u64()?,
            limit: r.u64()?,
        },
        4 => M::Truncated {
            format: format_from(r.u8()?)?,
        },
        5 => M::Corrupt {
            format: format_from(r.u8()?)?,
            detail: r.str()?,
        },
        6 => M::VideoTooLarge {
            what: limit_from(r.u8()?)?,
            value: r.u64()?,
            limit: r.u64()?,
        },
        7 => M::VideoTooLong {
            seconds: r.f64()?,
            limit: r.f64()?,
        },
        8 => M::TooManyFrames {
            frames: r.u64()?,
            limit: r.u64()?,
        },
        9 => M::DecodeTimeout {
            limit: r.duration()?,
        },
        10 => M::UnsupportedVideo(r.str()?),
        11 => M::TruncatedVideo {
            decoded: r.u64()?,
            declared: r.u64()?,
        },
        12 => M::CorruptVideo(r.str()?),
        13 => M::Io(std::io::Error::other(r.str()?)),
        14 => M::Internal(r.str()?),
        t => return Err(WireError(format!("unknown media error tag {t}"))),
    })
}

fn format_tag(f: Format) -> u8 {
    Format::ALL.iter().position(|&x| x == f).unwrap_or(0) as u8
}

fn format_from(t: u8) -> Result<Format> {
    Format::ALL
        .get(usize::from(t))
        .copied()
        .ok_or_else(|| WireError(format!("unknown format tag {t}")))
}

const LIMIT_KINDS: [LimitKind; 5] = [
    LimitKind::InputBytes,
    LimitKind::Width,
    LimitKind::Height,
    LimitKind::Pixels,
    LimitKind::DecodeBytes,
];

fn limit_tag(k: LimitKind) -> u8 {
    LIMIT_KINDS.iter().position(|&x| x == k).unwrap_or(0) as u8
}

fn limit_from(t: u8) -> Result<LimitKind> {
    LIMIT_KINDS
        .get(usize::from(t))
        .copied()
        .ok_or_else(|| WireError(format!("unknown limit tag {t}")))
}

impl Init {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(MAGIC);
        w.u64(self.memory_limit);
        w.u64(self.cpu_limit_secs);
        w.0
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Init> {
        let mut r = Reader::new(bytes);
        if r.take(MAGIC.len())? != MAGIC {
            return Err(WireError("not a Safeguard decode-worker handshake".into()));
        }
        let init = Init {
            memory_limit: r.u64()?,
            cpu_limit_secs: r.u64()?,
        };
        r.end()?;
        Ok(init)
    }
}

impl Request {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Request::Image(job) => {
                w.u8(0);
                put_limits(&mut w, &job.limits);
                w.opt_u32(job.decode.jpeg_min_side);
                w.u64(job.decode.jpeg_scale_min_pixels);
                w.u8(match job.compat {
                    Compat::Pytx => 0,
                    Compat::Cpp512 => 1,
                });
                w.bool(job.dihedral);
                w.bool(job.digests);
            }
            Request::Video { options, digests } => {
                w.u8(1);
                w.f64(options.seconds_per_hash);
                let l = &options.limits;
                w.u64(l.max_input_bytes);
                w.u32(l.max_width);
                w.u32(l.max_height);
                w.u64(l.max_pixels);
                w.duration(l.max_duration);
                w.u64(l.max_frames);
                w.duration(l.max_decode_time);
                w.bool(*digests);
            }
            Request::Probe => w.u8(2),
            Request::Reduce { limits, options } => {
                w.u8(3);
                put_limits(&mut w, limits);
                w.u32(options.max_side);
                w.u8(options.levels);
            }
        }
        w.0
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Request> {
        let mut r = Reader::new(bytes);
        let req = match r.u8()? {
            0 => {
                let limits = get_limits(&mut r)?;
                let decode = DecodeOptions {
                    jpeg_min_side: r.opt_u32()?,
                    jpeg_scale_min_pixels: r.u64()?,
                };
                let compat = match r.u8()? {
                    0 => Compat::Pytx,
                    1 => Compat::Cpp512,
                    t => return Err(WireError(format!("unknown compat tag {t}"))),
                };
                Request::Image(ImageJob {
                    limits,
                    decode,
                    compat,
                    dihedral: r.bool()?,
                    digests: r.bool()?,
                })
            }
            1 => {
                let seconds_per_hash = r.f64()?;
                let limits = VideoLimits {
                    max_input_bytes: r.u64()?,
                    max_width: r.u32()?,
                    max_height: r.u32()?,
                    max_pixels: r.u64()?,
                    max_duration: r.duration()?,
                    max_frames: r.u64()?,
                    max_decode_time: r.duration()?,
                };
                Request::Video {
                    options: VideoOptions {
                        seconds_per_hash,
                        limits,
                    },
                    digests: r.bool()?,
                }
            }
            2 => Request::Probe,
            3 => Request::Reduce {
                limits: get_limits(&mut r)?,
                options: ReduceOptions {
                    max_side: r.u32()?,
                    levels: r.u8()?,
                },
            },
            t => return Err(WireError(format!("unknown request tag {t}"))),
        };
        r.end()?;
        Ok(req)
    }

    /// The largest input this request may carry, bytes (the worker refuses a bigger frame
    /// before allocating it).
    pub(crate) fn max_input(&self) -> u64 {
        match self {
            Request::Image(job) => job.limits.max_input_bytes,
            Request::Video { options, .. } => options.limits.max_input_bytes,
            Request::Probe => 0,
            Request::Reduce { limits, .. } => limits.max_input_bytes,
        }
    }
}

fn put_limits(w: &mut Writer, l: &Limits) {
    w.u64(l.max_input_bytes);
    w.u32(l.max_width);
    w.u32(l.max_height);
    w.u64(l.max_pixels);
    w.u64(l.max_decode_bytes);
}

fn get_limits(r: &mut Reader<'_>) -> Result<Limits> {
    Ok(Limits {
        max_input_bytes: r.u64()?,
        max_width: r.u32()?,
        max_height: r.u32()?,
        max_pixels: r.u64()?,
        max_decode_bytes: r.u64()?,
    })
}

impl Response {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Response::Ready => w.u8(0),
            Response::Image(h) => {
                w.u8(1);
                put_image(&mut w, h);
            }
            Response::Video(VideoOutput::Full(v)) => {
                w.u8(2);
                put_vpdq(&mut w, &v.vpdq);
                put_digests(
                    &mut w,
                    &Digests {
                        md5: v.md5,
                        sha1: v.sha1,
                        sha256: v.sha256,
                    },
                );
                match &v.first_frame {
                    None => w.u8(0),
                    Some(m) => {
                        w.u8(1);
                        w.bytes(&m.pdq.0);
                        w.u8(m.quality);
                        put_digests(
                            &mut w,
                            &Digests {
                                md5: m.md5,
                                sha1: m.sha1,
                                sha256: m.sha256,
                            },
                        );
                        w.u32(m.width);
                        w.u32(m.height);
                    }
                }
            }
            Response::Video(VideoOutput::Frames(v)) => {
                w.u8(3);
                put_vpdq(&mut w, v);
            }
            Response::Failed(f) => {
                w.u8(4);
                w.u32(f.0.len() as u32);
                w.bytes(&f.0);
            }
            Response::Probe(results) => {
                w.u8(5);
                w.u32(results.len() as u32);
                for p in results {
                    w.str(&p.name);
                    w.u32(p.errno as u32);
                }
            }
            Response::Reduced(png) => {
                w.u8(6);
                w.u32(png.len() as u32);
                w.bytes(png);
            }
        }
        w.0
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Response> {
        let mut r = Reader::new(bytes);
        let resp = match r.u8()? {
            0 => Response::Ready,
            1 => Response::Image(Box::new(get_image(&mut r)?)),
            2 => {
                let vpdq = get_vpdq(&mut r)?;
                let d = get_digests(&mut r)?;
                let first_frame = match r.u8()? {
                    0 => None,
                    1 => {
                        let pdq = PdqHash(r.array()?);
                        let quality = r.u8()?;
                        let m = get_digests(&mut r)?;
                        Some(HashedMedia {
                            pdq,
                            quality,
                            md5: m.md5,
                            sha1: m.sha1,
                            sha256: m.sha256,
                            width: r.u32()?,
                            height: r.u32()?,
                        })
                    }
                    t => return Err(WireError(format!("bad first-frame tag {t}"))),
                };
                Response::Video(VideoOutput::Full(Box::new(HashedVideo {
                    vpdq,
                    md5: d.md5,
                    sha1: d.sha1,
                    sha256: d.sha256,
                    first_frame,
                })))
            }
            3 => Response::Video(VideoOutput::Frames(get_vpdq(&mut r)?)),
            4 => {
                let n = r.u32()? as usize;
                Response::Failed(WireFailure(r.take(n)?.to_vec()))
            }
            5 => {
                let n = r.u32()?;
                let mut results = Vec::new();
                for _ in 0..n.min(64) {
                    results.push(ProbeResult {
                        name: r.str()?,
                        errno: r.u32()? as i32,
                    });
                }
                Response::Probe(results)
            }
            6 => {
                let n = r.u32()? as usize;
                Response::Reduced(r.take(n)?.to_vec())
            }
            t => return Err(WireError(format!("unknown response tag {t}"))),
        };
        r.end()?;
        Ok(resp)
    }
}

fn put_image(w: &mut Writer, h: &ImageHashes) {
    w.bytes(&h.pdq.hash.0);
    w.u8(h.pdq.quality);
    match &h.dihedral {
        None => w.u8(0),
        Some(d) => {
            w.u8(1);
            for x in d {
                w.bytes(&x.0);
            }
        }
    }
    w.u32(h.width);
    w.u32(h.height);
    match &h.digests {
        None => w.u8(0),
        Some(d) => {
            w.u8(1);
            put_digests(w, d);
        }
    }
}

fn get_image(r: &mut Reader<'_>) -> Result<ImageHashes> {
    let hash = PdqHash(r.array()?);
    let quality = r.quality()?;
    let dihedral = match r.u8()? {
        0 => None,
        1 => {
            let mut d = [PdqHash([0; 32]); 8];
            for x in &mut d {
                *x = PdqHash(r.array()?);
            }
            Some(d)
        }
        t => return Err(WireError(format!("bad dihedral tag {t}"))),
    };
    let width = r.u32()?;
    let height = r.u32()?;
    let digests = match r.u8()? {
        0 => None,
        1 => Some(get_digests(r)?),
        t => return Err(WireError(format!("bad digests tag {t}"))),
    };
    Ok(ImageHashes {
        pdq: PdqOutput { hash, quality },
        dihedral,
        width,
        height,
        digests,
    })
}

fn put_digests(w: &mut Writer, d: &Digests) {
    w.bytes(&d.md5);
    w.bytes(&d.sha1);
    w.bytes(&d.sha256);
}

fn get_digests(r: &mut Reader<'_>) -> Result<Digests> {
    Ok(Digests {
        md5: r.array()?,
        sha1: r.array()?,
        sha256: r.array()?,
    })
}

fn put_vpdq(w: &mut Writer, v: &VpdqVideo) {
    w.u32(v.width);
    w.u32(v.height);
    w.f64(v.fps);
    w.u64(v.frame_count);
    w.f64(v.duration_s);
    w.u64(v.frames.len() as u64);
    for f in &v.frames {
        w.u64(f.frame_number);
        w.u8(f.quality);
        w.bytes(&f.hash.0);
        w.f64(f.timestamp);
    }
}

fn get_vpdq(r: &mut Reader<'_>) -> Result<VpdqVideo> {
    let width = r.u32()?;
    let height = r.u32()?;
    let fps = r.f64()?;
    let frame_count = r.u64()?;
    let duration_s = r.f64()?;
    let n = r.u64()?;
    // Each frame takes 49 bytes: a count the frame cannot hold is refused before reserving.
    if n > (r.remaining() / 49) as u64 {
        return Err(WireError(format!("{n} frames declared in a short frame")));
    }
    let mut frames = Vec::with_capacity(n as usize);
    for _ in 0..n {
        frames.push(VpdqFrame {
            frame_number: r.u64()?,
            quality: r.quality()?,
            hash: PdqHash(r.array()?),
            timestamp: r.f64()?,
        });
    }
    Ok(VpdqVideo {
        frames,
        width,
        height,
        fps,
        frame_count,
        duration_s,
    })
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn bool(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    fn duration(&mut self, d: Duration) {
        self.u64(d.as_secs());
        self.u32(d.subsec_nanos());
    }
    fn opt_u32(&mut self, v: Option<u32>) {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                self.u32(x);
            }
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        // Messages are bounded by the decoders; a longer one is cut at a char boundary.
        let mut end = s.len().min(MAX_STRING);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.u32(end as u32);
        self.bytes(&s.as_bytes()[..end]);
    }
}

/// Longest string (error message, probe name) carried, bytes.
const MAX_STRING: usize = 4096;

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }
    fn remaining(&self) -> usize {
        self.buf.len()
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(WireError("frame ends early".into()));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            t => Err(WireError(format!("bad bool {t}"))),
        }
    }
    fn quality(&mut self) -> Result<u8> {
        let q = self.u8()?;
        if q > 100 {
            return Err(WireError(format!("PDQ quality {q} over 100")));
        }
        Ok(q)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64()?))
    }
    fn duration(&mut self) -> Result<Duration> {
        let secs = self.u64()?;
        let nanos = self.u32()?;
        if nanos >= 1_000_000_000 {
            return Err(WireError("bad duration".into()));
        }
        Ok(Duration::new(secs, nanos))
    }
    fn opt_u32(&mut self) -> Result<Option<u32>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.u32()?)),
            t => Err(WireError(format!("bad option tag {t}"))),
        }
    }
    fn str(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        if n > MAX_STRING {
            return Err(WireError(format!("string of {n} bytes")));
        }
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| WireError("string not UTF-8".into()))
    }
    fn end(&self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError(format!(
                "{} bytes after the message",
                self.buf.len()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip_request(r: Request) {
        assert_eq!(Request::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn requests_roundtrip() {
        roundtrip_request(Request::Probe);
        roundtrip_request(Request::Reduce {
            limits: Limits {
                max_input_bytes: 6,
                max_width: 7,
                max_height: 8,
                max_pixels: 9,
                max_decode_bytes: 10,
            },
            options: ReduceOptions {
                max_side: 240,
                levels: 5,
            },
        });
        roundtrip_request(Request::Image(ImageJob {
            limits: Limits {
                max_input_bytes: 1,
                max_width: 2,
                max_height: 3,
                max_pixels: 4,
                max_decode_bytes: 5,
            },
            decode: DecodeOptions {
                jpeg_min_side: Some(256),
                jpeg_scale_min_pixels: 800_000,
            },
            compat: Compat::Cpp512,
            dihedral: true,
            digests: true,
        }));
        roundtrip_request(Request::Video {
            options: VideoOptions {
                seconds_per_hash: 0.1 + 0.2,
                limits: VideoLimits {
                    max_decode_time: Duration::new(3, 999_999_999),
                    ..VideoLimits::default()
                },
            },
            digests: false,
        });
    }

    /// One answer of each kind, named; also the fuzz target's seeds.
    fn sample_responses() -> Vec<(&'static str, Response)> {
        let frame = |n: u64| VpdqFrame {
            frame_number: n,
            quality: 99,
            hash: PdqHash([n as u8; 32]),
            timestamp: n as f64 / 29.97,
        };
        let vpdq = VpdqVideo {
            frames: (0..5).map(frame).collect(),
            width: 64,
            height: 48,
            fps: 30000.0 / 1001.0,
            frame_count: 60,
            duration_s: 60.0 / (30000.0 / 1001.0),
        };
        let full = HashedVideo {
            vpdq: vpdq.clone(),
            md5: [1; 16],
            sha1: [2; 20],
            sha256: [3; 32],
            first_frame: Some(HashedMedia {
                pdq: PdqHash([4; 32]),
                quality: 100,
                md5: [5; 16],
                sha1: [6; 20],
                sha256: [7; 32],
                width: 48,
                height: 32,
            }),
        };
        let failed = |e: safeguard_engine::Error| Response::Failed(WireFailure::from_error(&e));
        vec![
            ("ready", Response::Ready),
            (
                "reduced",
                Response::Reduced(vec![0x89, b'P', b'N', b'G', 0, 255]),
            ),
            ("video-frames", Response::Video(VideoOutput::Frames(vpdq))),
            (
                "video-full",
                Response::Video(VideoOutput::Full(Box::new(full))),
            ),
            (
                "image",
                Response::Image(Box::new(ImageHashes {
                    pdq: PdqOutput {
                        hash: PdqHash([9; 32]),
                        quality: 50,
                    },
                    dihedral: Some([PdqHash([8; 32]); 8]),
                    width: 1,
                    height: 2,
                    digests: Some(Digests {
                        md5: [1; 16],
                        sha1: [2; 20],
                        sha256: [3; 32],
                    }),
                })),
            ),
            (
                "probe",
                Response::Probe(vec![
                    ProbeResult {
                        name: "open".into(),
                        errno: 1,
                    },
                    ProbeResult {
                        name: "mmap-exec".into(),
                        errno: 0,
                    },
                ]),
            ),
            (
                "failed-too-large",
                failed(safeguard_engine::Error::Media(
                    safeguard_media::Error::TooLarge {
                        what: LimitKind::DecodeBytes,
                        value: 7,
                        limit: 6,
                    },
                )),
            ),
            (
                "failed-corrupt",
                failed(safeguard_engine::Error::Media(
                    safeguard_media::Error::Corrupt {
                        format: Format::Tiff,
                        detail: "bad strip".into(),
                    },
                )),
            ),
            (
                "failed-video-too-long",
                failed(safeguard_engine::Error::Media(
                    safeguard_media::Error::VideoTooLong {
                        seconds: 1.5,
                        limit: 1.25,
                    },
                )),
            ),
            (
                "failed-invalid",
                failed(safeguard_engine::Error::Invalid("seconds_per_hash".into())),
            ),
        ]
    }

    #[test]
    fn responses_roundtrip_bit_for_bit() {
        for (name, r) in sample_responses() {
            assert_eq!(Response::decode(&r.encode()).unwrap(), r, "{name}");
        }
    }

    /// The fuzz target `sandbox_wire` starts from these answers (`fuzz/seeds/sandbox_wire/`).
    /// A change to the format shows here; `SAFEGUARD_WRITE_FUZZ_SEEDS=1` rewrites the seeds.
    #[test]
    fn fuzz_seeds_are_the_current_encoding() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/sandbox_wire");
        let write = std::env::var_os("SAFEGUARD_WRITE_FUZZ_SEEDS").is_some();
        if write {
            std::fs::create_dir_all(&dir).unwrap();
        }
        for (name, r) in sample_responses() {
            let path = dir.join(name);
            if write {
                std::fs::write(&path, r.encode()).unwrap();
            }
            let seed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                seed,
                r.encode(),
                "{name}: run with SAFEGUARD_WRITE_FUZZ_SEEDS=1"
            );
        }
    }

    #[test]
    fn errors_keep_variant_code_and_message() {
        use safeguard_media::Error as M;
        let errors = [
            safeguard_engine::Error::Media(M::Empty),
            safeguard_engine::Error::Media(M::Corrupt {
                format: Format::Tiff,
                detail: "bad strip".into(),
            }),
            safeguard_engine::Error::Media(M::TooLarge {
                what: LimitKind::DecodeBytes,
                value: 7,
                limit: 6,
            }),
            safeguard_engine::Error::Media(M::VideoTooLong {
                seconds: 1.5,
                limit: 1.25,
            }),
            safeguard_engine::Error::Media(M::DecodeTimeout {
                limit: Duration::from_millis(1500),
            }),
            safeguard_engine::Error::Media(M::TruncatedVideo {
                decoded: 3,
                declared: 4,
            }),
            safeguard_engine::Error::Invalid("seconds_per_hash".into()),
        ];
        for e in errors {
            let back = WireFailure::from_error(&e).to_error().unwrap();
            assert_eq!(back.code(), e.code());
            assert_eq!(back.to_string(), e.to_string());
            assert_eq!(back.is_client_error(), e.is_client_error());
        }
    }

    #[test]
    fn hostile_responses_are_refused_not_trusted() {
        // Truncated, trailing bytes, unknown tags, impossible frame counts, bad quality.
        let good = Response::Image(Box::new(ImageHashes {
            pdq: PdqOutput {
                hash: PdqHash([1; 32]),
                quality: 7,
            },
            dihedral: None,
            width: 1,
            height: 1,
            digests: None,
        }))
        .encode();
        assert!(Response::decode(&good[..good.len() - 1]).is_err());
        let mut long = good.clone();
        long.push(0);
        assert!(Response::decode(&long).is_err());
        assert!(Response::decode(&[99]).is_err());
        let mut bad_quality = good.clone();
        bad_quality[33] = 101;
        assert!(Response::decode(&bad_quality).is_err());
        let mut many = vec![3u8];
        many.extend_from_slice(&[0; 4 + 4 + 8 + 8 + 8]);
        many.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(Response::decode(&many).is_err());
        assert!(Init::decode(b"SGDW\0\0\0\x02\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0").is_err());
    }
}
