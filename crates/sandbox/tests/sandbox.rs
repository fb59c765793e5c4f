//! The sandbox end to end: real workers (this test binary re-executed, see `worker`), real
//! testdata, and the failures a pool must survive.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use safeguard_engine::video::VideoOptions;
use safeguard_media::Limits;
use safeguard_sandbox::{Compat, Decoder, Error, ImageJob, Pool, PoolConfig};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("png" | "jpg" | "jpeg" | "webp" | "gif" | "bmp" | "tif" | "tiff")
        ) {
            out.push(p);
        }
    }
}

fn images() -> Vec<PathBuf> {
    let mut out = Vec::new();
    files(&testdata().join("conformance/pdq"), &mut out);
    assert!(out.len() > 100, "testdata images missing: {}", out.len());
    out
}

fn pool(config: PoolConfig) -> Decoder {
    Decoder::Sandboxed(Arc::new(Pool::new(config)))
}

fn sandboxed() -> Decoder {
    pool(PoolConfig {
        max_idle: 2,
        ..PoolConfig::default()
    })
}

/// A same-kind comparison of two results: equal values, or errors with equal codes and
/// messages.
fn same<T: PartialEq + std::fmt::Debug>(
    what: &str,
    a: Result<T, Error>,
    b: Result<T, safeguard_engine::Error>,
) {
    match (a, b) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}"),
        (Err(a), Err(b)) => {
            assert_eq!(a.code(), b.code(), "{what}");
            assert_eq!(a.to_string(), b.to_string(), "{what}");
        }
        (a, b) => panic!("{what}: sandboxed {a:?}, in-process {b:?}"),
    }
}

#[test]
fn image_hashes_equal_in_process_bit_for_bit() {
    let sandbox = sandboxed();
    let limits = Limits::default();
    let all = images();
    for path in &all {
        let bytes = std::fs::read(path).unwrap();
        let name = path.display().to_string();
        // The server's call against the engine's own function, untouched.
        same(
            &name,
            sandbox.hash_media(&bytes, &limits),
            safeguard_engine::hash_media(&bytes, &limits),
        );
        // The CLI's variants: C++ reference, dihedral hashes, reduced-scale JPEG.
        let job = ImageJob {
            compat: Compat::Cpp512,
            dihedral: true,
            digests: true,
            decode: safeguard_media::DecodeOptions {
                jpeg_min_side: Some(64),
                jpeg_scale_min_pixels: 0,
            },
            ..ImageJob::default()
        };
        same(
            &name,
            sandbox.hash_image(&bytes, &job),
            safeguard_sandbox::job::hash_image(&bytes, &job),
        );
        // A truncated file is refused the same way.
        let cut = &bytes[..bytes.len() / 2];
        same(
            &format!("{name} cut"),
            sandbox.hash_media(cut, &limits),
            safeguard_engine::hash_media(cut, &limits),
        );
    }
    // Every request went through the pool, on reused workers.
    let p = sandbox.pool().unwrap();
    assert!(p.spawned() >= 1 && p.spawned() <= 2, "{}", p.spawned());
    assert_eq!(p.lost(), 0);
}

/// The console's reduced-detail rendering comes out of a worker byte for byte as in-process,
/// and a file that does not decode is the same error.
#[test]
fn reduced_renderings_equal_in_process_bit_for_bit() {
    let sandbox = sandboxed();
    let limits = Limits::default();
    let o = safeguard_media::reduce::ReduceOptions::default();
    for path in images().iter().step_by(10) {
        let bytes = std::fs::read(path).unwrap();
        let name = path.display().to_string();
        same(
            &name,
            sandbox.reduced_png(&bytes, &limits, &o),
            safeguard_media::reduce::reduced_png(&bytes, &limits, &o).map_err(Into::into),
        );
        let cut = &bytes[..bytes.len() / 2];
        same(
            &format!("{name} cut"),
            sandbox.reduced_png(cut, &limits, &o),
            safeguard_media::reduce::reduced_png(cut, &limits, &o).map_err(Into::into),
        );
    }
    assert_eq!(sandbox.pool().unwrap().lost(), 0);
}

#[test]
fn video_hashes_equal_in_process_bit_for_bit() {
    let sandbox = sandboxed();
    let mut videos: Vec<PathBuf> = std::fs::read_dir(testdata().join("video"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "md"))
        .collect();
    videos.sort();
    for entry in std::fs::read_dir(testdata().join("conformance/vpdq/videos")).unwrap() {
        videos.push(entry.unwrap().path());
    }
    assert!(videos.len() >= 8, "{videos:?}");
    let mut decoded = 0;
    for path in &videos {
        let bytes = Bytes::from(std::fs::read(path).unwrap());
        for seconds_per_hash in [0.0, 1.0] {
            let options = VideoOptions {
                seconds_per_hash,
                ..VideoOptions::default()
            };
            let name = format!("{} @{seconds_per_hash}", path.display());
            let inproc = safeguard_engine::video::hash_video(bytes.clone(), &options);
            decoded += usize::from(inproc.is_ok());
            same(&name, sandbox.hash_video(bytes.clone(), &options), inproc);
            same(
                &name,
                sandbox.vpdq_video(bytes.clone(), &options),
                safeguard_engine::video::vpdq_video(bytes.clone(), &options),
            );
        }
    }
    // Most of them are real videos, not only refusals compared.
    assert!(decoded >= 12, "{decoded} decoded");
    assert_eq!(sandbox.pool().unwrap().lost(), 0);
}

#[test]
fn a_worker_cannot_open_files_connect_run_programs_or_signal_its_parent() {
    let memory_limit = 1024 * 1024 * 1024;
    let sandbox = pool(PoolConfig {
        max_idle: 1,
        memory_limit,
        ..PoolConfig::default()
    });
    let p = sandbox.pool().unwrap();
    let results = p.probe().unwrap();
    let got: Vec<(&str, i32)> = results.iter().map(|r| (r.name.as_str(), r.errno)).collect();
    assert_eq!(
        got,
        [
            ("openat", libc::EPERM),
            ("socket", libc::EPERM),
            ("execve", libc::EPERM),
            ("clone", libc::EPERM),
            ("kill_parent", libc::EPERM),
            ("mmap_exec", libc::EPERM),
            ("prlimit64", libc::EPERM),
            ("alloc_memory_limit", libc::ENOMEM),
        ]
    );
    // The kernel's view of the same worker: filtered, no new privileges, the limits set.
    let pid = p.idle_pids()[0];
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("\nSeccomp:\t2\n"), "{status}");
    assert!(status.contains("\nNoNewPrivs:\t1\n"), "{status}");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let row = |name: &str| -> Vec<String> {
        let line = limits
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {limits}"));
        line[name.len()..]
            .split_whitespace()
            .take(2)
            .map(str::to_string)
            .collect()
    };
    let mem = memory_limit.to_string();
    assert_eq!(row("Max address space"), [mem.as_str(), mem.as_str()]);
    assert_eq!(row("Max open files"), ["3", "3"]);
    assert_eq!(row("Max core file size"), ["0", "0"]);
    assert_eq!(row("Max file size"), ["0", "0"]);
    assert_eq!(row("Max cpu time"), ["3600", "3600"]);
    // Nothing of the parent's environment (keys, passwords) reached it.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert_eq!(environ, b"SAFEGUARD_DECODE_WORKER=1\0");
}

/// A PNG big enough that decoding and hashing it takes a while (25 MP).
fn big_png() -> &'static [u8] {
    static PNG: OnceLock<Vec<u8>> = OnceLock::new();
    PNG.get_or_init(|| {
        let (w, h) = (5000u32, 5000u32);
        let mut rgb = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                rgb.extend_from_slice(&[(x / 40) as u8, (y / 40) as u8, ((x ^ y) / 64) as u8]);
            }
        }
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_compression(png::Compression::Fast);
        enc.write_header().unwrap().write_image_data(&rgb).unwrap();
        out
    })
}

fn small_png() -> Vec<u8> {
    std::fs::read(testdata().join("conformance/pdq/lossless/images/photo_bridge_65x65.png"))
        .unwrap()
}

#[test]
fn a_worker_killed_mid_request_fails_only_that_request_and_is_replaced() {
    let sandbox = sandboxed();
    let p = Arc::clone(sandbox.pool().unwrap());
    let limits = Limits::default();
    let expected_big = safeguard_engine::hash_media(big_png(), &limits).unwrap();
    let expected_small = safeguard_engine::hash_media(&small_png(), &limits).unwrap();
    // Retried only if the kill landed after the answer was written (it never has: the decode
    // takes hundreds of milliseconds and the kill follows within one).
    let mut crashed = None;
    for _ in 0..5 {
        let victim = {
            let sandbox = sandbox.clone();
            std::thread::spawn(move || sandbox.hash_media(big_png(), &Limits::default()))
        };
        // A second request in flight on another worker, which must not notice.
        let bystander = {
            let sandbox = sandbox.clone();
            std::thread::spawn(move || {
                let bytes = big_png();
                sandbox.hash_media(bytes, &Limits::default())
            })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let pid = loop {
            if let Some(&pid) = p.busy_pids().first() {
                break pid;
            }
            assert!(Instant::now() < deadline, "no busy worker");
            std::thread::sleep(Duration::from_millis(1));
        };
        // SAFETY: kill with a pid of a worker the pool has not reaped (it is busy).
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
        let results = [victim.join().unwrap(), bystander.join().unwrap()];
        let failed: Vec<&Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        for r in results.iter().flatten() {
            assert_eq!(*r, expected_big);
        }
        assert!(failed.len() <= 1, "{failed:?}");
        if let Some(e) = failed.first() {
            crashed = Some((e.code(), e.to_string()));
            break;
        }
    }
    let (code, message) = crashed.expect("a killed worker failed its request");
    assert_eq!(code, "decoder_crashed");
    assert!(message.contains("SIGKILL"), "{message}");
    assert!(p.lost() >= 1);
    // The next requests succeed, on a replacement.
    let before = p.spawned();
    for _ in 0..3 {
        assert_eq!(
            sandbox.hash_media(&small_png(), &limits).unwrap(),
            expected_small
        );
    }
    assert!(p.spawned() >= before, "{} {before}", p.spawned());
}

#[test]
fn a_worker_over_its_deadline_is_killed_and_the_request_times_out() {
    let sandbox = pool(PoolConfig {
        max_idle: 1,
        image_deadline: Duration::from_millis(20),
        ..PoolConfig::default()
    });
    let e = sandbox
        .hash_media(big_png(), &Limits::default())
        .unwrap_err();
    assert_eq!(e.code(), "decode_timeout", "{e}");
    let p = sandbox.pool().unwrap();
    assert_eq!(p.lost(), 1);
    assert!(p.idle_pids().is_empty());
    // A small image fits the deadline on a fresh worker.
    let limits = Limits::default();
    assert_eq!(
        sandbox.hash_media(&small_png(), &limits).unwrap(),
        safeguard_engine::hash_media(&small_png(), &limits).unwrap()
    );
}

#[test]
fn a_worker_that_cannot_start_is_reported_unavailable() {
    let sandbox = pool(PoolConfig {
        program: "/nonexistent/safeguard".into(),
        ..PoolConfig::default()
    });
    let e = sandbox
        .hash_media(&small_png(), &Limits::default())
        .unwrap_err();
    assert_eq!(e.code(), "decoder_unavailable", "{e}");
    // A program that is not a worker exits at once: refused at the handshake.
    let sandbox = pool(PoolConfig {
        program: "/bin/true".into(),
        ..PoolConfig::default()
    });
    let e = sandbox.pool().unwrap().check().unwrap_err();
    assert_eq!(e.code(), "decoder_unavailable", "{e}");
}

#[test]
fn workers_are_reused_and_retired_before_their_cpu_limit() {
    let sandbox = pool(PoolConfig {
        max_idle: 1,
        // Under 2 s of margin plus one image deadline: every request needs a fresh worker.
        cpu_limit: Duration::from_secs(3),
        image_deadline: Duration::from_secs(2),
        ..PoolConfig::default()
    });
    let limits = Limits::default();
    for _ in 0..3 {
        sandbox.hash_media(&small_png(), &limits).unwrap();
    }
    assert_eq!(sandbox.pool().unwrap().spawned(), 3);
    let reused = sandboxed();
    for _ in 0..3 {
        reused.hash_media(&small_png(), &limits).unwrap();
    }
    assert_eq!(reused.pool().unwrap().spawned(), 1);
}
