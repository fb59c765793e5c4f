//! Recognising the container format from its magic bytes. File names and MIME types are never
//! consulted: an upload's name is attacker-controlled and says nothing about its decoder.

use std::fmt;

/// An image container format this crate decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// JPEG/JFIF/EXIF (baseline, progressive, lossless; greyscale, YCbCr, RGB, CMYK, YCCK).
    Jpeg,
    /// PNG (every colour type and bit depth, interlaced or not; APNG's default image).
    Png,
    /// GIF87a/GIF89a (first frame).
    Gif,
    /// WebP (lossy, lossless, extended; first frame of an animation).
    Webp,
    /// Windows bitmap.
    Bmp,
    /// TIFF and BigTIFF, either byte order.
    Tiff,
}

impl Format {
    /// Every format, in a fixed order (wire encodings number formats by their place here).
    pub const ALL: [Format; 6] = [
        Format::Jpeg,
        Format::Png,
        Format::Gif,
        Format::Webp,
        Format::Bmp,
        Format::Tiff,
    ];

    /// Lower-case short name, stable for logs and APIs.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Gif => "gif",
            Format::Webp => "webp",
            Format::Bmp => "bmp",
            Format::Tiff => "tiff",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The format whose signature starts `bytes`, or `None`.
///
/// The signatures are the ones Pillow's plugins accept, so a file Pillow would route to a given
/// decoder is routed to the same one here. A file shorter than its signature is not recognised.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if bytes.starts_with(PNG_SIGNATURE) {
        Some(Format::Png)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(Format::Gif)
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some(Format::Webp)
    } else if bytes.starts_with(b"BM") {
        Some(Format::Bmp)
    } else if bytes.starts_with(b"II*\0")
        || bytes.starts_with(b"MM\0*")
        || bytes.starts_with(b"II+\0")
        || bytes.starts_with(b"MM\0+")
    {
        Some(Format::Tiff)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_signature() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Some(Format::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nIHDR"), Some(Format::Png));
        assert_eq!(sniff(b"GIF87a..."), Some(Format::Gif));
        assert_eq!(sniff(b"GIF89a..."), Some(Format::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::Webp));
        assert_eq!(sniff(b"BM\0\0"), Some(Format::Bmp));
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Some(Format::Tiff));
        assert_eq!(sniff(b"MM\0*\0\0\0\x08"), Some(Format::Tiff));
        assert_eq!(sniff(b"II+\0\x08\0\0\0"), Some(Format::Tiff));
    }

    #[test]
    fn rejects_near_misses() {
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\xFF\xD8"), None);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a"), None);
        assert_eq!(sniff(b"GIF88a"), None);
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), None);
        assert_eq!(sniff(b"RIFF\0\0\0\0WEB"), None);
        assert_eq!(sniff(b"<svg xmlns="), None);
        assert_eq!(sniff(b"%PDF-1.7"), None);
    }

    #[test]
    fn names_are_stable() {
        let names: Vec<_> = Format::ALL.iter().map(Format::name).collect();
        assert_eq!(names, ["jpeg", "png", "gif", "webp", "bmp", "tiff"]);
        assert_eq!(Format::Webp.to_string(), "webp");
    }
}
