//! The worker side: any program that links this crate becomes a decode worker when a
//! [`crate::Pool`] starts it.
//!
//! The pool re-executes the running binary (`/proc/self/exe decode-worker`) with an
//! environment holding nothing but [`WORKER_ENV`]. A constructor in this module (an
//! `.init_array` entry, run by the C runtime before `main`) sees that variable and runs
//! [`serve`] instead of the program's `main`, then exits. So the `safeguard` binary is its own
//! worker, one binary ships, and so is every test binary that uses a pool: a server test
//! decodes through real workers, not a stand-in. Without the variable the constructor returns
//! at once and the program runs as usual.
//!
//! The worker reads the [`Init`](crate::wire) frame, prepares everything that needs the file
//! system or threads (FFmpeg's initialisation, the PDQ hasher, hash-map seeds), confines
//! itself ([`crate::policy::confine`]), answers `Ready`, then serves requests one at a time
//! until its stdin closes.

use std::io::{Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;

use bytes::Bytes;

use crate::job;
use crate::policy::{self, Rlimits};
use crate::wire::{self, Init, ProbeResult, Request, Response, WireFailure};

/// The environment variable that makes a process a worker; its value is the protocol magic's
/// version, so a stray variable of that name in an operator's shell is not enough.
pub const WORKER_ENV: &str = "SAFEGUARD_DECODE_WORKER";

/// The value of [`WORKER_ENV`] the pool sets.
pub(crate) const WORKER_ENV_VALUE: &str = "1";

/// The argument workers are started with, so `ps` shows what they are.
pub const WORKER_ARG: &str = "decode-worker";

#[used]
#[link_section = ".init_array"]
static ENTRY: extern "C" fn() = entry;

/// Referenced by the pool so that this module (and its constructor) is linked into every
/// program that can start workers.
pub(crate) fn entry_point() -> usize {
    ENTRY as usize
}

extern "C" fn entry() {
    if std::env::var_os(WORKER_ENV).is_some_and(|v| v == WORKER_ENV_VALUE) {
        let code = serve();
        std::process::exit(code);
    }
}

/// Runs the worker loop on stdin and stdout; returns the exit code. Called by the constructor;
/// public so a program can also call it from `main` (as `safeguard decode-worker` would).
pub fn serve() -> i32 {
    // The standard streams as plain files: no buffering or locking between us and the pipe.
    // SAFETY: fds 0 and 1 are open (the pool made them pipes) and are never closed here.
    let mut input = ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(0) });
    let mut output = ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(1) });
    let Some(init) = read_frame(&mut *input, 1024).and_then(|b| Init::decode(&b).ok()) else {
        return 2;
    };
    // Read now: `getppid` is not on the filter's list (the probe signals the parent).
    // SAFETY: getppid has no arguments and cannot fail.
    let parent = unsafe { libc::getppid() };
    prepare();
    if let Err(why) = policy::confine(Rlimits {
        memory: init.memory_limit,
        cpu_secs: init.cpu_limit_secs,
    }) {
        let e = safeguard_engine::Error::Media(safeguard_media::Error::Internal(format!(
            "cannot confine the decode worker: {why}"
        )));
        let _ = write_frame(
            &mut *output,
            &Response::Failed(WireFailure::from_error(&e)).encode(),
        );
        return 3;
    }
    if write_frame(&mut *output, &Response::Ready.encode()).is_err() {
        return 4;
    }
    loop {
        let Some(header) = read_frame(&mut *input, wire::MAX_HEADER_BYTES) else {
            // The parent closed the pipe (or died): done.
            return 0;
        };
        let Ok(request) = Request::decode(&header) else {
            return 5;
        };
        let Some(bytes) = read_frame(&mut *input, request.max_input().max(1)) else {
            return 6;
        };
        let response = handle(request, bytes, init.memory_limit, parent);
        if write_frame(&mut *output, &response.encode()).is_err() {
            return 7;
        }
    }
}

/// Everything that needs a file, a thread or a random seed, done before the filter.
fn prepare() {
    safeguard_media::video::init();
    // Hash maps (the sampled video decode uses them) seed from getrandom once per thread.
    let mut seeded = std::collections::HashMap::new();
    seeded.insert(0u8, 0u8);
    // The PDQ hasher and a small decode: first-use initialisation of every image path.
    let _ = job::hash_image(
        &[0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'],
        &job::ImageJob::default(),
    );
}

fn handle(request: Request, bytes: Vec<u8>, memory_limit: u64, parent: libc::pid_t) -> Response {
    // A panic in a decoder is this request's failure, not the worker's end.
    let run = std::panic::AssertUnwindSafe(|| match request {
        Request::Image(job) => match job::hash_image(&bytes, &job) {
            Ok(h) => Response::Image(Box::new(h)),
            Err(e) => Response::Failed(WireFailure::from_error(&e)),
        },
        Request::Video { options, digests } => {
            match job::hash_video(Bytes::from(bytes), &options, digests) {
                Ok(v) => Response::Video(v),
                Err(e) => Response::Failed(WireFailure::from_error(&e)),
            }
        }
        Request::Probe => Response::Probe(probe(memory_limit, parent)),
        Request::Reduce { limits, options } => {
            match safeguard_media::reduce::reduced_png(&bytes, &limits, &options) {
                Ok(png) => Response::Reduced(png),
                Err(e) => Response::Failed(WireFailure::from_error(&e.into())),
            }
        }
    });
    std::panic::catch_unwind(run).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let e = safeguard_engine::Error::Media(safeguard_media::Error::Internal(format!(
            "decoder panicked: {what}"
        )));
        Response::Failed(WireFailure::from_error(&e))
    })
}

/// Tries what the confinement must refuse; see [`Request::Probe`](crate::wire).
fn probe(memory_limit: u64, parent: libc::pid_t) -> Vec<ProbeResult> {
    fn errno_of(rc: libc::c_long) -> i32 {
        if rc >= 0 {
            0
        } else {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
        }
    }
    let mut out = Vec::new();
    let mut record = |name: &str, errno: i32| {
        out.push(ProbeResult {
            name: name.into(),
            errno,
        })
    };
    let path = c"/etc/hostname";
    // SAFETY: each call passes valid pointers or integers and its result is only inspected;
    // any descriptor or mapping that (wrongly) came back is released at once.
    unsafe {
        let fd = libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_RDONLY,
        );
        record("openat", errno_of(fd));
        if fd >= 0 {
            libc::close(fd as i32);
        }
        let fd = libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0);
        record("socket", errno_of(fd));
        if fd >= 0 {
            libc::close(fd as i32);
        }
        let argv = [path.as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null::<libc::c_char>()];
        let rc = libc::syscall(
            libc::SYS_execve,
            c"/bin/true".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
        );
        record("execve", errno_of(rc));
        // A raw fork (clone with SIGCHLD): a child, if one were made, exits at once.
        let rc = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0, 0, 0, 0);
        if rc == 0 {
            libc::_exit(0);
        }
        record("clone", errno_of(rc));
        let rc = libc::syscall(libc::SYS_kill, parent, 0);
        record("kill_parent", errno_of(rc));
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        record(
            "mmap_exec",
            if p == libc::MAP_FAILED {
                errno_of(-1)
            } else {
                libc::munmap(p, 4096);
                0
            },
        );
        let rc = libc::syscall(
            libc::SYS_prlimit64,
            0,
            libc::RLIMIT_AS,
            std::ptr::null::<u8>(),
            std::ptr::null_mut::<u8>(),
        );
        record("prlimit64", errno_of(rc));
    }
    // The address-space limit: one allocation of the whole limit cannot fit.
    let mut v: Vec<u8> = Vec::new();
    let alloc = match v.try_reserve_exact(usize::try_from(memory_limit).unwrap_or(usize::MAX)) {
        Ok(()) => 0,
        Err(_) => libc::ENOMEM,
    };
    record("alloc_memory_limit", alloc);
    out
}

/// Reads one frame of at most `max` bytes; `None` at end of input, on a read error, or for a
/// frame over `max`.
fn read_frame(r: &mut impl Read, max: u64) -> Option<Vec<u8>> {
    let mut len = [0u8; 8];
    r.read_exact(&mut len).ok()?;
    let len = u64::from_le_bytes(len);
    if len > max {
        return None;
    }
    let mut buf = Vec::new();
    buf.try_reserve_exact(usize::try_from(len).ok()?).ok()?;
    // Through `take`, the generic read loop fills the reserved space without zeroing it
    // first and without the size queries (`statx`, `lseek`) a `File` would make.
    r.take(len).read_to_end(&mut buf).ok()?;
    (buf.len() as u64 == len).then_some(buf)
}

fn write_frame(w: &mut impl Write, payload: &[u8]) -> std::io::Result<()> {
    w.write_all(&(payload.len() as u64).to_le_bytes())?;
    w.write_all(payload)
}
