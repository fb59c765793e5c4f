//! Any bytes through the whole upload path: sniff, decode under small limits, hash.
//!
//! Properties checked on every input: no panic, no hang, no allocation beyond the limits
//! (libFuzzer's -rss_limit_mb / -malloc_limit_mb catch those), a successful decode returns a
//! buffer of exactly width * height * 3 bytes within the limits, errors come from the
//! documented variants, and PDQ accepts every image the decoder returns.
#![no_main]

use libfuzzer_sys::fuzz_target;
use safeguard_media::{decode, Error, Limits};

/// Small enough that libFuzzer's 2 GiB RSS limit is never approached, big enough for every
/// structural feature (Adam7, progressive scans, GIF canvas growth) to appear.
fn limits() -> Limits {
    Limits {
        max_input_bytes: 1 << 20,
        max_width: 4096,
        max_height: 4096,
        max_pixels: 16_000_000,
        max_decode_bytes: 256 << 20,
    }
}

/// libFuzzer's panic hook aborts on any panic, even one the code under test catches. The
/// media crate catches panics inside image-webp 0.2.4 (which panics on some malformed files;
/// `safeguard_media`'s `webp::guarded`) and reports the file as corrupt, so those, and only
/// those, are let through to that `catch_unwind`; any other panic still fails the run.
fn tolerate_caught_decoder_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_webp = info
                .location()
                .is_some_and(|l| l.file().contains("/image-webp-"));
            if !in_webp {
                abort(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    tolerate_caught_decoder_panics();
    let limits = limits();
    match decode(data, &limits) {
        Ok(decoded) => {
            let image = &decoded.image;
            assert!(image.width >= 1 && image.width <= limits.max_width);
            assert!(image.height >= 1 && image.height <= limits.max_height);
            assert!(u64::from(image.width) * u64::from(image.height) <= limits.max_pixels);
            assert_eq!(
                image.data.len(),
                image.width as usize * image.height as usize * 3
            );
            let hashed =
                safeguard_pdq::hash_rgb(&image.data, image.width as usize, image.height as usize);
            assert!(hashed.is_ok(), "pdq refused a decoded image: {hashed:?}");
        }
        Err(Error::Internal(detail)) => panic!("internal error on fuzz input: {detail}"),
        Err(Error::Io(e)) => panic!("I/O error decoding from memory: {e}"),
        Err(_) => {}
    }
});
