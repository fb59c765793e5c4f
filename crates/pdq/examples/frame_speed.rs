//! Milliseconds per PDQ hash of synthetic frames (the vPDQ path: f32 luma from RGB), best of
//! 5 rounds of 10 hashes, on the current thread. Used to measure changes to the downsample:
//! run it at two commits on the same machine.
//!
//! `cargo run --release -p safeguard-pdq --example frame_speed`

use std::time::Instant;

fn main() {
    for (w, h) in [(1280usize, 720usize), (720, 1280), (4000, 3000)] {
        // Deterministic pseudo-random pixels over a horizontal ramp: no flat areas to shortcut.
        let mut rgb = vec![0u8; w * h * 3];
        let mut s = 12345u64;
        for (i, p) in rgb.iter_mut().enumerate() {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *p = ((s >> 33) as u8) / 4 + ((i / 3 % w) as u8);
        }
        let mut hasher = safeguard_pdq::Hasher::with_luma(safeguard_pdq::LumaMode::F32);
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..10 {
                std::hint::black_box(hasher.hash_rgb(&rgb, w, h).expect("valid frame"));
            }
            best = best.min(t.elapsed().as_secs_f64() / 10.0);
        }
        println!("{w}x{h}: {:.3} ms per hash", best * 1e3);
    }
}
