//! What a worker may do once it has started: the seccomp filter and the resource limits.
//!
//! The filter is an allow-list. Everything not on it fails with `EPERM` rather than killing
//! the process: a library probing for something optional (the CPU count, say) then takes its
//! fallback, while anything an exploit needs to reach beyond the worker (files, sockets,
//! programs, other processes, threads, executable memory) is refused all the same. What is
//! allowed, and why:
//!
//! | syscalls | why |
//! | --- | --- |
//! | `read` on fd 0, `write` on fds 1 and 2 | the request pipe, the response pipe, `/dev/null` |
//! | `brk`, `mmap`/`mprotect` without `PROT_EXEC`, `munmap`, `mremap`, `madvise` | memory |
//! | `futex`, `sched_yield` | locks inside libc and the decoders (one thread, but they lock) |
//! | `clock_gettime`, `clock_getres`, `gettimeofday` | decode deadlines (usually the vDSO) |
//! | `getrandom` | hash-map seeds |
//! | `rt_sigreturn`, `rt_sigprocmask`, `rt_sigaction`, `sigaltstack`, `restart_syscall` | signal delivery, `abort` |
//! | `getpid`, `gettid`, `tgkill` on its own pid | `abort` raising `SIGABRT` on itself |
//! | `sysinfo`, `sched_getaffinity` | libc's `qsort` and FFmpeg's CPU count read these; refusing them would change code paths, not safety |
//! | `exit`, `exit_group` | |
//!
//! Resource limits, set before the filter (the filter then stops the worker raising them):
//! address space (`RLIMIT_AS`, configurable), CPU seconds over the worker's life
//! (`RLIMIT_CPU`, soft = hard, so the kernel sends `SIGKILL` at the limit), open files
//! (`RLIMIT_NOFILE` = 3: stdin, stdout, stderr), file size 0 and core size 0. The process is
//! also made non-dumpable (no core, no `ptrace` attach by other processes of the same user).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition,
    SeccompFilter, SeccompRule,
};

/// Open files a worker may hold: stdin, stdout and stderr.
pub const WORKER_MAX_FILES: u64 = 3;

/// Builds the worker's filter. `pid` is the worker's own process id (`tgkill` may only target
/// it).
pub fn filter(pid: u32) -> Result<BpfProgram, String> {
    let err = |e: seccompiler::BackendError| e.to_string();
    let cond = |arg: u8, op: Op, value: u64| {
        SeccompCondition::new(arg, Len::Qword, op, value).map_err(err)
    };
    let rule = |conds: Vec<SeccompCondition>| SeccompRule::new(conds).map_err(err);
    let no_exec = || -> Result<Vec<SeccompRule>, String> {
        Ok(vec![rule(vec![cond(
            2,
            Op::MaskedEq(libc::PROT_EXEC as u64),
            0,
        )?])?])
    };

    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for sys in [
        libc::SYS_brk,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_madvise,
        libc::SYS_futex,
        libc::SYS_sched_yield,
        libc::SYS_clock_gettime,
        libc::SYS_clock_getres,
        libc::SYS_gettimeofday,
        libc::SYS_getrandom,
        libc::SYS_rt_sigreturn,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigaction,
        libc::SYS_sigaltstack,
        libc::SYS_restart_syscall,
        libc::SYS_getpid,
        libc::SYS_gettid,
        libc::SYS_sysinfo,
        libc::SYS_sched_getaffinity,
        libc::SYS_exit,
        libc::SYS_exit_group,
    ] {
        rules.insert(sys, Vec::new());
    }
    rules.insert(libc::SYS_read, vec![rule(vec![cond(0, Op::Eq, 0)?])?]);
    rules.insert(
        libc::SYS_write,
        vec![
            rule(vec![cond(0, Op::Eq, 1)?])?,
            rule(vec![cond(0, Op::Eq, 2)?])?,
        ],
    );
    rules.insert(libc::SYS_mmap, no_exec()?);
    rules.insert(libc::SYS_mprotect, no_exec()?);
    rules.insert(
        libc::SYS_tgkill,
        vec![rule(vec![cond(0, Op::Eq, u64::from(pid))?])?],
    );

    let arch: seccompiler::TargetArch =
        std::env::consts::ARCH
            .try_into()
            .map_err(|e: seccompiler::BackendError| {
                format!("seccomp on {}: {e}", std::env::consts::ARCH)
            })?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )
    .map_err(err)?;
    filter.try_into().map_err(err)
}

/// Resource limits a worker sets on itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimits {
    /// Address space, bytes.
    pub memory: u64,
    /// CPU time over the worker's life, seconds.
    pub cpu_secs: u64,
}

/// Confines the calling process for good: resource limits, non-dumpable, every file
/// descriptor above 2 closed, `PR_SET_NO_NEW_PRIVS`, and the seccomp filter. The process must
/// be single-threaded (the filter applies to the calling thread, and a worker starts none).
pub fn confine(limits: Rlimits) -> Result<(), String> {
    let set = |resource, value: u64, what: &str| {
        let lim = libc::rlimit {
            rlim_cur: value,
            rlim_max: value,
        };
        // SAFETY: setrlimit reads the struct we pass; no memory is retained.
        if unsafe { libc::setrlimit(resource, &lim) } != 0 {
            return Err(format!(
                "setrlimit({what}): {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    };
    set(libc::RLIMIT_AS, limits.memory, "RLIMIT_AS")?;
    set(libc::RLIMIT_CPU, limits.cpu_secs, "RLIMIT_CPU")?;
    set(libc::RLIMIT_NOFILE, WORKER_MAX_FILES, "RLIMIT_NOFILE")?;
    set(libc::RLIMIT_FSIZE, 0, "RLIMIT_FSIZE")?;
    set(libc::RLIMIT_CORE, 0, "RLIMIT_CORE")?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(format!(
            "prctl(PR_SET_DUMPABLE): {}",
            std::io::Error::last_os_error()
        ));
    }
    // Descriptors a parent forgot to mark close-on-exec would otherwise stay usable.
    // SAFETY: close_range takes integers; ENOSYS (kernels before 5.9) is handled below.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if rc != 0 {
        for fd in 3..1024 {
            // SAFETY: closing a descriptor number this process does not use is harmless.
            unsafe { libc::close(fd) };
        }
    }
    let program = filter(std::process::id())?;
    // Sets PR_SET_NO_NEW_PRIVS, then installs the filter on this (the only) thread.
    seccompiler::apply_filter(&program).map_err(|e| format!("seccomp: {e}"))
}
