//! Prints, for each file named on the command line, the sniffed format, the decoded size and
//! the SHA-256 of the decoded RGB pixels (or the error code and message), one tab-separated
//! line per file. Comparing these lines with the same digest of Pillow's
//! `numpy.asarray(Image.open(f).convert("RGB")).tobytes()` shows whether the decoders agree
//! with the reference pixel for pixel.
//!
//! `cargo run --release -p safeguard-media --example pixel_digest -- FILE...`
//! Set `JPEG_MIN_SIDE=512` to try the reduced-scale JPEG mode.

use std::path::Path;

use safeguard_media::{decode_with, digest, read_file, DecodeOptions, Limits};

fn main() {
    let limits = Limits::default();
    let options = DecodeOptions {
        jpeg_min_side: std::env::var("JPEG_MIN_SIDE")
            .ok()
            .and_then(|v| v.parse().ok()),
        ..DecodeOptions::default()
    };
    for path in std::env::args().skip(1) {
        let result = read_file(Path::new(&path), &limits)
            .and_then(|bytes| decode_with(&bytes, &limits, &options));
        match result {
            Ok(decoded) => println!(
                "{path}\t{}\t{}x{}\t{}",
                decoded.format,
                decoded.image.width,
                decoded.image.height,
                digest::digests(&decoded.image.data).sha256_hex()
            ),
            Err(error) => println!("{path}\terror\t{}\t{error}", error.code()),
        }
    }
}
