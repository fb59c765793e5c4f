//! Decoding untrusted media in confined worker processes.
//!
//! Images and videos reach C decoders (libjpeg-turbo, FFmpeg). A memory-safety bug in one of
//! them, triggered by a crafted upload, would run with everything the server can do: read the
//! store and the API keys, open sockets, start programs. Here the decode and the hashing run
//! in a separate process instead, the *worker*, that can do almost nothing:
//!
//! * it is the same binary, re-executed ([`worker`]: any program linking this crate becomes a
//!   worker when started by a [`Pool`]), with an empty environment and only stdin, stdout and
//!   stderr (`/dev/null`) open;
//! * after start-up (FFmpeg initialised, buffers warmed) it lowers its resource limits
//!   (address space, CPU time, open files, file size, no core dumps), marks itself
//!   non-dumpable, sets `PR_SET_NO_NEW_PRIVS`, and installs a seccomp filter ([`policy`]) that
//!   leaves it reading stdin, writing stdout/stderr, managing its own memory and exiting:
//!   no `open`, `socket`, `execve`, `clone`, `kill` of another process, no executable memory;
//! * the parent sends one request at a time (`wire`: length-prefixed frames, a job and the
//!   input bytes) and reads back hashes or a typed error, checking every byte it reads.
//!
//! [`Pool`] keeps idle workers for reuse, spawns one on demand, enforces a wall-clock
//! deadline per request (a hung worker is killed), and drops a worker that died: a crash fails
//! only its own request ([`Error::Crashed`], code `decoder_crashed`), and the next request gets
//! a fresh worker. [`Decoder`] is the switch callers hold: sandboxed, or in-process (the
//! explicit, less safe opt-out). Results are bit-identical either way: both run the same code.

mod decoder;
mod error;
pub mod job;
pub mod policy;
mod pool;
mod wire;
pub mod worker;

pub use decoder::Decoder;
pub use error::Error;
pub use job::{Compat, ImageHashes, ImageJob};
pub use pool::{
    Pool, PoolConfig, DEFAULT_IMAGE_DEADLINE, DEFAULT_MEMORY_LIMIT, DEFAULT_WORKER_CPU_LIMIT,
    VIDEO_DEADLINE_GRACE,
};
pub use wire::ProbeResult;

/// Reads one worker answer as the parent does (the frame's payload, after its length), carried
/// engine error included, and gives it back encoded again; `Err` says why it was refused. The
/// parent reads what a possibly compromised worker wrote, so the fuzz target `sandbox_wire`
/// drives this. Not part of the crate's API.
#[doc(hidden)]
pub fn reencode_worker_answer(payload: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let answer = wire::Response::decode(payload).map_err(|e| e.0)?;
    if let wire::Response::Failed(f) = &answer {
        f.to_error().map_err(|e| e.0)?;
    }
    Ok(answer.encode())
}
