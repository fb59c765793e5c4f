//! Builders for small valid files of every format, and helpers to inspect decode results.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Cursor;

use safeguard_media::{decode, Decoded, Error, Format, LimitKind, Limits};

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

/// A global allocator that tracks live and peak bytes per thread (tests run on many threads;
/// per-thread counts keep them from seeing each other's allocations).
pub struct CountingAllocator;

// SAFETY: every method forwards to `System` unchanged; the bookkeeping only touches
// const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grow(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grow(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) };
        shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            shrink(layout.size());
            grow(new_size);
        }
        new
    }
}

fn grow(bytes: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(bytes);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn shrink(bytes: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(bytes)));
}

/// Runs `f` and returns its result with the most bytes this thread held at once during it,
/// above what it held before.
pub fn peak_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let result = f();
    let peak = PEAK.with(Cell::get);
    (result, peak.saturating_sub(before))
}

/// Deterministic pseudo-random bytes (xorshift64*), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// An RGB test pattern: gradients plus a checkerboard, so every channel varies.
pub fn pattern_rgb(width: u32, height: u32) -> Vec<u8> {
    let mut data = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            let check = if (x / 4 + y / 4) % 2 == 0 { 40 } else { 0 };
            data.push(((x * 255) / width.max(2).saturating_sub(1).max(1)) as u8);
            data.push(((y * 255) / height.max(2).saturating_sub(1).max(1)) as u8);
            data.push((((x + y) * 7) % 216) as u8 + check);
        }
    }
    data
}

/// Adds an alpha channel (varying, including fully transparent pixels) to RGB data.
pub fn with_alpha(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .enumerate()
        .flat_map(|(i, p)| [p[0], p[1], p[2], [0u8, 128, 255][i % 3]])
        .collect()
}

pub fn decode_ok(bytes: &[u8]) -> Decoded {
    match decode(bytes, &Limits::default()) {
        Ok(decoded) => decoded,
        Err(e) => panic!("decode failed: {e:?}"),
    }
}

pub fn decode_err(bytes: &[u8], limits: &Limits) -> Error {
    match decode(bytes, limits) {
        Ok(decoded) => panic!("expected an error, decoded {:?}", decoded.image),
        Err(e) => e,
    }
}

pub fn too_large_kind(error: &Error) -> Option<LimitKind> {
    match error {
        Error::TooLarge { what, .. } => Some(*what),
        _ => None,
    }
}

pub fn is_truncated(error: &Error, format: Format) -> bool {
    matches!(error, Error::Truncated { format: f } if *f == format)
}

pub fn is_corrupt(error: &Error, format: Format) -> bool {
    matches!(error, Error::Corrupt { format: f, .. } if *f == format)
}

// ---------------------------------------------------------------------------------------------
// PNG

pub fn png_bytes(
    width: u32,
    height: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    palette: Option<&[u8]>,
    trns: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(depth);
        if let Some(palette) = palette {
            encoder.set_palette(palette.to_vec());
        }
        if let Some(trns) = trns {
            encoder.set_trns(trns.to_vec());
        }
        let mut writer = encoder.write_header().expect("png header");
        writer.write_image_data(data).expect("png data");
    }
    out
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    chunk.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    chunk
}

/// A zlib stream of stored (uncompressed) deflate blocks: lets tests write exact filtered
/// scanlines (for example Adam7 passes) without a compressor.
pub fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(65_535).collect()
    };
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// Patches the width and height in a PNG's IHDR and fixes its CRC.
pub fn png_set_size(png: &mut [u8], width: u32, height: u32) {
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
}

// ---------------------------------------------------------------------------------------------
// JPEG

pub fn jpeg_bytes(width: u32, height: u32, rgb: &[u8], progressive: bool) -> Vec<u8> {
    let mut compressor = turbojpeg::Compressor::new().expect("compressor");
    compressor.set_quality(90).expect("quality");
    compressor
        .set_subsamp(turbojpeg::Subsamp::Sub2x2)
        .expect("subsamp");
    compressor
        .set_progressive(progressive)
        .expect("progressive");
    let image = turbojpeg::Image {
        pixels: rgb,
        width: width as usize,
        pitch: width as usize * 3,
        height: height as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    compressor.compress_to_vec(image).expect("jpeg")
}

/// A four-component (Adobe) JPEG from CMYK samples as TurboJPEG takes them.
pub fn cmyk_jpeg_bytes(width: u32, height: u32, cmyk: &[u8]) -> Vec<u8> {
    let mut compressor = turbojpeg::Compressor::new().expect("compressor");
    compressor.set_quality(95).expect("quality");
    compressor
        .set_subsamp(turbojpeg::Subsamp::None)
        .expect("subsamp");
    let image = turbojpeg::Image {
        pixels: cmyk,
        width: width as usize,
        pitch: width as usize * 4,
        height: height as usize,
        format: turbojpeg::PixelFormat::CMYK,
    };
    compressor.compress_to_vec(image).expect("cmyk jpeg")
}

pub fn grey_jpeg_bytes(width: u32, height: u32, grey: &[u8]) -> Vec<u8> {
    let mut compressor = turbojpeg::Compressor::new().expect("compressor");
    compressor.set_quality(90).expect("quality");
    compressor
        .set_subsamp(turbojpeg::Subsamp::Gray)
        .expect("subsamp");
    let image = turbojpeg::Image {
        pixels: grey,
        width: width as usize,
        pitch: width as usize,
        height: height as usize,
        format: turbojpeg::PixelFormat::GRAY,
    };
    compressor.compress_to_vec(image).expect("grey jpeg")
}

/// Index of the first byte of marker `code` (the 0xFF) in a JPEG's header segments.
pub fn jpeg_marker(jpeg: &[u8], code: u8) -> usize {
    let mut i = 2;
    while i + 4 <= jpeg.len() {
        assert_eq!(jpeg[i], 0xFF, "not at a marker");
        if jpeg[i + 1] == code {
            return i;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        i += 2 + len;
    }
    panic!("marker {code:#x} not found");
}

// ---------------------------------------------------------------------------------------------
// GIF

/// One GIF frame for [`gif_bytes`].
#[derive(Clone)]
pub struct GifFrame {
    pub left: u16,
    pub top: u16,
    pub width: u16,
    pub height: u16,
    pub indices: Vec<u8>,
    pub transparent: Option<u8>,
    pub local_palette: Option<Vec<u8>>,
    pub interlaced: bool,
}

pub fn gif_bytes(
    screen_width: u16,
    screen_height: u16,
    global_palette: &[u8],
    frames: &[GifFrame],
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, screen_width, screen_height, global_palette)
            .expect("gif header");
        for f in frames {
            let frame = gif::Frame {
                left: f.left,
                top: f.top,
                width: f.width,
                height: f.height,
                buffer: std::borrow::Cow::Borrowed(&f.indices),
                transparent: f.transparent,
                palette: f.local_palette.clone(),
                interlaced: f.interlaced,
                ..gif::Frame::default()
            };
            encoder.write_frame(&frame).expect("gif frame");
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// WebP, BMP, TIFF

pub fn webp_lossless_bytes(width: u32, height: u32, data: &[u8], alpha: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let color = if alpha {
        image_webp::ColorType::Rgba8
    } else {
        image_webp::ColorType::Rgb8
    };
    image_webp::WebPEncoder::new(&mut out)
        .encode(data, width, height, color)
        .expect("webp");
    out
}

pub fn bmp_bytes(width: u32, height: u32, data: &[u8], color: image::ExtendedColorType) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::bmp::BmpEncoder::new(&mut out)
        .encode(data, width, height, color)
        .expect("bmp");
    out
}

pub fn tiff_bytes(
    width: u32,
    height: u32,
    data: &[u8],
    color: image::ExtendedColorType,
) -> Vec<u8> {
    use image::ImageEncoder as _;
    let mut out = Cursor::new(Vec::new());
    image::codecs::tiff::TiffEncoder::new(&mut out)
        .write_image(data, width, height, color)
        .expect("tiff");
    out.into_inner()
}

/// One small valid file of every format, with the RGB the decoder must return for it (exact
/// for lossless formats; `None` for JPEG).
pub fn valid_samples() -> Vec<(Format, Vec<u8>, Option<Vec<u8>>)> {
    let (w, h) = (23, 17);
    let rgb = pattern_rgb(w, h);
    let rgba = with_alpha(&rgb);
    let indices: Vec<u8> = (0..w * h).map(|i| (i % 7) as u8).collect();
    let palette: Vec<u8> = (0..7u8)
        .flat_map(|i| [i * 30, 255 - i * 30, i * 11])
        .collect();
    let mut palette8 = palette.clone();
    palette8.resize(8 * 3, 0);
    let gif_rgb: Vec<u8> = indices
        .iter()
        .flat_map(|&i| palette8[usize::from(i) * 3..usize::from(i) * 3 + 3].to_vec())
        .collect();
    vec![
        (Format::Jpeg, jpeg_bytes(w, h, &rgb, false), None),
        (Format::Jpeg, jpeg_bytes(w, h, &rgb, true), None),
        (
            Format::Png,
            png_bytes(
                w,
                h,
                png::ColorType::Rgba,
                png::BitDepth::Eight,
                &rgba,
                None,
                None,
            ),
            Some(rgb.clone()),
        ),
        (
            Format::Gif,
            gif_bytes(
                w as u16,
                h as u16,
                &palette8,
                &[GifFrame {
                    left: 0,
                    top: 0,
                    width: w as u16,
                    height: h as u16,
                    indices,
                    transparent: None,
                    local_palette: None,
                    interlaced: false,
                }],
            ),
            Some(gif_rgb),
        ),
        (
            Format::Webp,
            webp_lossless_bytes(w, h, &rgba, true),
            Some(rgb.clone()),
        ),
        (
            Format::Bmp,
            bmp_bytes(w, h, &rgb, image::ExtendedColorType::Rgb8),
            Some(rgb.clone()),
        ),
        (
            Format::Tiff,
            tiff_bytes(w, h, &rgb, image::ExtendedColorType::Rgb8),
            Some(rgb),
        ),
    ]
}
