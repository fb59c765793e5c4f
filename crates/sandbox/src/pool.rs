//! The parent side: a pool of confined workers, each serving one request at a time.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::wire::{self, Init, ProbeResult, Request, Response};
use crate::worker::{WORKER_ARG, WORKER_ENV, WORKER_ENV_VALUE};

/// Default address-space limit of a worker (`RLIMIT_AS`): 4 GiB. The largest image the default
/// media limits admit (100 MP) peaks near 2.3 GiB in one process (RGB output, a decoder
/// intermediate and PDQ's f64 luma plane), and a video at the default limits far below that;
/// the rest is the mapped program and libraries. Past the limit allocations fail: a decoder
/// reports an error, or the worker aborts and only its request fails.
pub const DEFAULT_MEMORY_LIMIT: u64 = 4 * 1024 * 1024 * 1024;

/// Default CPU time a worker may use over its life (`RLIMIT_CPU`): 1 hour. A worker is
/// single-threaded, so its CPU time is at most the wall-clock time of the requests it served;
/// the pool retires a worker before a request could take it over this (see
/// [`PoolConfig::cpu_limit`]). The limit is the kernel's backstop should the parent's deadline
/// fail.
pub const DEFAULT_WORKER_CPU_LIMIT: Duration = Duration::from_secs(3600);

/// Default wall-clock deadline of one image request: 60 seconds. The largest image the default
/// limits admit decodes and hashes in a few seconds; only a hung decoder gets near this.
pub const DEFAULT_IMAGE_DEADLINE: Duration = Duration::from_secs(60);

/// Added to a video's own decode budget (`max_decode_time`, which the worker enforces itself
/// between packets) for the parent's deadline: copying the input through the pipe and the
/// granularity of the worker's check.
pub const VIDEO_DEADLINE_GRACE: Duration = Duration::from_secs(5);

/// How long a new worker may take to start, initialise FFmpeg and confine itself.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Pipe buffer asked for the request pipe, bytes (Linux's default unprivileged maximum,
/// `/proc/sys/fs/pipe-max-size`): an input crosses in 1 MiB writes instead of 64 KiB ones.
const PIPE_BYTES: libc::c_int = 1024 * 1024;

/// CPU time a worker spends starting (loading, FFmpeg initialisation), allowed for on top of
/// the request time the pool counts.
const START_CPU_MARGIN: Duration = Duration::from_secs(2);

/// How a pool starts and limits its workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// The program to start as a worker; it must link this crate (see [`crate::worker`]). The
    /// default, `/proc/self/exe`, is the running binary itself, even if its file has been
    /// replaced on disk since (an upgrade), so parent and worker always speak one protocol.
    pub program: PathBuf,
    /// Idle workers kept for reuse (more are started when more requests run at once, and
    /// stopped when they come back to a full pool). Callers bound concurrency themselves (the
    /// server's CPU permits, the CLI's threads); set this to that bound.
    pub max_idle: usize,
    /// Address-space limit of each worker, bytes.
    pub memory_limit: u64,
    /// CPU time each worker may use over its life. The pool counts the wall-clock time of the
    /// requests a worker served and retires it before a request whose deadline could take it
    /// past this; must be over the longest deadline.
    pub cpu_limit: Duration,
    /// Wall-clock deadline of an image request; a worker still busy then is killed and the
    /// request fails with `decode_timeout`.
    pub image_deadline: Duration,
}

impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig {
            program: PathBuf::from("/proc/self/exe"),
            max_idle: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            cpu_limit: DEFAULT_WORKER_CPU_LIMIT,
            image_deadline: DEFAULT_IMAGE_DEADLINE,
        }
    }
}

/// Confined decode workers, started on demand and replaced when they die.
pub struct Pool {
    config: PoolConfig,
    /// Workers waiting for a request, each alive when it was put back.
    idle: Mutex<Vec<Worker>>,
    /// Process ids of the workers serving a request now.
    busy: Mutex<Vec<u32>>,
    /// Workers started so far.
    spawned: AtomicU64,
    /// Workers that died or were killed while serving a request.
    lost: AtomicU64,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.config)
            .field("spawned", &self.spawned())
            .field("lost", &self.lost())
            .finish_non_exhaustive()
    }
}

/// One running worker and its pipes.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    /// Wall-clock time of the requests served, an upper bound on the CPU time they took.
    used: Duration,
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Killed, not asked: an idle worker has nothing to finish, and a busy one is being
        // dropped because it failed. Reaped here, so no zombie and no pid reuse while a
        // kill could still target it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why a request got no answer from its worker.
enum Failure {
    /// The deadline passed.
    TimedOut,
    /// The pipe closed or broke: the worker died.
    Closed,
    /// The worker wrote something that is not the protocol.
    Protocol(String),
}

impl Pool {
    /// A pool; no worker is started until the first request (or [`Pool::check`]).
    pub fn new(config: PoolConfig) -> Pool {
        Pool {
            config,
            idle: Mutex::new(Vec::new()),
            busy: Mutex::new(Vec::new()),
            spawned: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Starts one worker and keeps it idle: proves at start-up that workers can be started
    /// and confined here, rather than failing the first upload.
    pub fn check(&self) -> Result<(), Error> {
        let w = self.spawn()?;
        self.put(w);
        Ok(())
    }

    /// Workers started so far.
    pub fn spawned(&self) -> u64 {
        self.spawned.load(Ordering::Relaxed)
    }

    /// Workers that died or were killed while serving a request.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Process ids of the workers serving a request now.
    pub fn busy_pids(&self) -> Vec<u32> {
        lock(&self.busy).clone()
    }

    /// Process ids of the idle workers.
    pub fn idle_pids(&self) -> Vec<u32> {
        lock(&self.idle).iter().map(|w| w.child.id()).collect()
    }

    /// Runs the confinement probe in a worker: each thing tried and the `errno` it failed
    /// with (0 if it succeeded, which it never should).
    pub fn probe(&self) -> Result<Vec<ProbeResult>, Error> {
        match self.call(&Request::Probe, &[], self.config.image_deadline)? {
            Response::Probe(results) => Ok(results),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Sends one request and waits for its answer, within `deadline`.
    pub(crate) fn call(
        &self,
        request: &Request,
        input: &[u8],
        deadline: Duration,
    ) -> Result<Response, Error> {
        // The kinds of answer each request may get; any other is a protocol violation.
        let expected = |r: &Response| match request {
            Request::Image(_) => matches!(r, Response::Image(_) | Response::Failed(_)),
            Request::Video { .. } => matches!(r, Response::Video(_) | Response::Failed(_)),
            Request::Probe => matches!(r, Response::Probe(_)),
            Request::Reduce { .. } => matches!(r, Response::Reduced(_) | Response::Failed(_)),
        };
        let mut worker = self.take(deadline)?;
        let pid = worker.child.id();
        lock(&self.busy).push(pid);
        let started = Instant::now();
        let outcome = worker.exchange(&request.encode(), input, started + deadline);
        lock(&self.busy).retain(|&p| p != pid);
        let failure = match outcome {
            Ok(payload) => match Response::decode(&payload) {
                Ok(response) if !expected(&response) => {
                    Failure::Protocol("an answer of the wrong kind".into())
                }
                Ok(response) => {
                    worker.used += started.elapsed();
                    self.put(worker);
                    return Ok(response);
                }
                Err(e) => Failure::Protocol(e.0),
            },
            Err(f) => f,
        };
        self.lost.fetch_add(1, Ordering::Relaxed);
        let status = finish(worker);
        Err(match failure {
            Failure::TimedOut => Error::timeout(deadline),
            Failure::Closed => Error::Crashed(describe(status)),
            Failure::Protocol(why) => Error::Crashed(format!("protocol violation: {why}")),
        })
    }

    /// An answer of the wrong kind: the worker is not following the protocol.
    pub(crate) fn unexpected(&self, _response: &Response) -> Error {
        Error::Crashed("protocol violation: an answer of the wrong kind".into())
    }

    /// The deadline of a video request whose own decode budget is `budget`.
    pub(crate) fn video_deadline(&self, budget: Duration) -> Duration {
        budget.saturating_add(VIDEO_DEADLINE_GRACE)
    }

    /// An idle worker able to take a request of `deadline`, or a new one.
    fn take(&self, deadline: Duration) -> Result<Worker, Error> {
        loop {
            let popped = lock(&self.idle).pop();
            let Some(mut w) = popped else {
                return self.spawn();
            };
            let fits = w.used + deadline + START_CPU_MARGIN <= self.config.cpu_limit;
            // A worker killed while idle is noticed here, not by failing a request.
            let alive = matches!(w.child.try_wait(), Ok(None));
            if fits && alive {
                return Ok(w);
            }
            // Dropped: killed and reaped.
        }
    }

    fn put(&self, w: Worker) {
        let mut idle = lock(&self.idle);
        if idle.len() < self.config.max_idle.max(1) {
            idle.push(w);
        }
    }

    /// Starts a worker and waits until it says it is confined.
    fn spawn(&self) -> Result<Worker, Error> {
        // Keeps the worker entry point linked into this program (see `worker`).
        std::hint::black_box(crate::worker::entry_point());
        let program = &self.config.program;
        let mut child = Command::new(program)
            // `ps` shows `safeguard decode-worker`, not `/proc/self/exe decode-worker`.
            .arg0("safeguard")
            .arg(WORKER_ARG)
            .env_clear()
            .env(WORKER_ENV, WORKER_ENV_VALUE)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::Unavailable(format!("cannot start {}: {e}", program.display())))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Unavailable("worker pipes missing".into()));
        };
        let fd = stdin.as_raw_fd();
        // SAFETY: fcntl on a descriptor we own, integer arguments only. A refused pipe size
        // only costs speed; O_NONBLOCK lets writes honour the deadline.
        unsafe {
            libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_BYTES);
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        let mut w = Worker {
            child,
            stdin,
            stdout,
            used: Duration::ZERO,
        };
        self.spawned.fetch_add(1, Ordering::Relaxed);
        let init = Init {
            memory_limit: self.config.memory_limit,
            cpu_limit_secs: self.config.cpu_limit.as_secs().max(1),
        };
        let until = Instant::now() + HANDSHAKE_TIMEOUT;
        let answer = w
            .send(&frame_header(&init.encode()), &init.encode(), until)
            .and_then(|()| w.receive(until));
        let why = match answer.map(|p| Response::decode(&p)) {
            Ok(Ok(Response::Ready)) => return Ok(w),
            Ok(Ok(Response::Failed(f))) => match f.to_error() {
                Ok(e) => e.to_string(),
                Err(e) => format!("protocol violation: {}", e.0),
            },
            Ok(Ok(_)) => "protocol violation: no Ready".into(),
            Ok(Err(e)) => format!("protocol violation: {}", e.0),
            Err(Failure::TimedOut) => "start-up timed out".into(),
            Err(Failure::Protocol(why)) => format!("protocol violation: {why}"),
            Err(Failure::Closed) => describe(finish(w)),
        };
        Err(Error::Unavailable(format!(
            "the decode worker {} did not start: {why}",
            program.display()
        )))
    }
}

/// The frame header (length) for `payload`.
fn frame_header(payload: &[u8]) -> Vec<u8> {
    (payload.len() as u64).to_le_bytes().to_vec()
}

/// Kills (if still running) and reaps a worker, giving how it ended.
fn finish(mut w: Worker) -> Option<ExitStatus> {
    // A worker that already died keeps the status it died with: killing a zombie does nothing.
    let _ = w.child.kill();
    w.child.wait().ok()
}

/// How a worker ended, in words.
fn describe(status: Option<ExitStatus>) -> String {
    let Some(status) = status else {
        return "the worker could not be reaped".into();
    };
    if let Some(sig) = status.signal() {
        let name = match sig {
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGABRT => "SIGABRT",
            libc::SIGBUS => "SIGBUS",
            libc::SIGILL => "SIGILL",
            libc::SIGFPE => "SIGFPE",
            libc::SIGSYS => "SIGSYS",
            libc::SIGKILL => "SIGKILL",
            libc::SIGXCPU => "SIGXCPU",
            _ => "",
        };
        return format!("the worker was killed by signal {sig} {name}")
            .trim_end()
            .to_string();
    }
    match status.code() {
        Some(code) => format!("the worker exited with status {code}"),
        None => "the worker ended".into(),
    }
}

impl Worker {
    /// One request: header and input out, one response frame back, by `until`.
    fn exchange(
        &mut self,
        header: &[u8],
        input: &[u8],
        until: Instant,
    ) -> Result<Vec<u8>, Failure> {
        let mut head = frame_header(header);
        head.extend_from_slice(header);
        head.extend_from_slice(&(input.len() as u64).to_le_bytes());
        self.send(&head, input, until)?;
        self.receive(until)
    }

    fn send(&mut self, head: &[u8], body: &[u8], until: Instant) -> Result<(), Failure> {
        for mut buf in [head, body] {
            while !buf.is_empty() {
                wait_fd(self.stdin.as_raw_fd(), libc::POLLOUT, until)?;
                match self.stdin.write(buf) {
                    Ok(0) => return Err(Failure::Closed),
                    Ok(n) => buf = &buf[n..],
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                        ) => {}
                    Err(_) => return Err(Failure::Closed),
                }
            }
        }
        Ok(())
    }

    fn receive(&mut self, until: Instant) -> Result<Vec<u8>, Failure> {
        let mut len = [0u8; 8];
        self.read_exact(&mut len, until)?;
        let len = u64::from_le_bytes(len);
        if len > wire::MAX_RESPONSE_BYTES {
            return Err(Failure::Protocol(format!("a response of {len} bytes")));
        }
        // Grown as bytes arrive, so a length the worker only claims allocates nothing.
        let mut payload = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        while (payload.len() as u64) < len {
            let want = (len - payload.len() as u64).min(chunk.len() as u64) as usize;
            self.read_exact(&mut chunk[..want], until)?;
            payload.extend_from_slice(&chunk[..want]);
        }
        Ok(payload)
    }

    fn read_exact(&mut self, mut buf: &mut [u8], until: Instant) -> Result<(), Failure> {
        while !buf.is_empty() {
            wait_fd(self.stdout.as_raw_fd(), libc::POLLIN, until)?;
            match self.stdout.read(buf) {
                Ok(0) => return Err(Failure::Closed),
                Ok(n) => buf = &mut buf[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Failure::Closed),
            }
        }
        Ok(())
    }
}

/// Waits until `fd` is ready for `events` (or hung up, which the next read or write reports),
/// or `until` passes.
fn wait_fd(fd: RawFd, events: libc::c_short, until: Instant) -> Result<(), Failure> {
    loop {
        let now = Instant::now();
        if now >= until {
            return Err(Failure::TimedOut);
        }
        let ms = (until - now).as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd, owned by this frame.
        let rc = unsafe { libc::poll(&mut p, 1, ms) };
        if rc > 0 {
            return Ok(());
        }
        if rc < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Err(Failure::Closed);
        }
    }
}

/// Locks a pool mutex. A panic while holding one (there is no code that can panic while
/// holding one) would leave the data consistent, so poisoning is ignored.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
