//! Any bytes through the video path: probe the container (allowed demuxers only), open the
//! decoder, then decode every frame and, on a second reader, the sampled decode vPDQ uses.
//!
//! Small limits (256 KiB input, 640 px per side, 300 frames, 2 s of decoding) keep each
//! execution short. Checked on every input: no panic or crash (FFmpeg's C code is not
//! instrumented, but a crash inside it still ends the run), no hang beyond the decode budget,
//! every frame handed out has exactly width * height * 3 bytes within the limits and numbers
//! that increase, and errors come from the documented variants (never `Internal`, never I/O
//! from memory).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use safeguard_media::video::{VideoFrame, VideoLimits, VideoReader};
use safeguard_media::Error;

fn limits() -> VideoLimits {
    VideoLimits {
        max_input_bytes: 256 << 10,
        max_width: 640,
        max_height: 640,
        max_pixels: 640 * 480,
        max_duration: Duration::from_secs(60),
        max_frames: 300,
        max_decode_time: Duration::from_secs(2),
    }
}

fn check_error(e: &Error) {
    match e {
        Error::Internal(detail) => panic!("internal error on fuzz input: {detail}"),
        Error::Io(io) => panic!("I/O error decoding from memory: {io}"),
        _ => {}
    }
}

/// Checks one frame against the limits and the previous frame number.
fn check_frame(limits: &VideoLimits, last: &mut Option<u64>, frame: VideoFrame<'_>) {
    assert!(frame.width >= 1 && frame.width <= limits.max_width);
    assert!(frame.height >= 1 && frame.height <= limits.max_height);
    assert_eq!(
        frame.rgb.len(),
        frame.width as usize * frame.height as usize * 3
    );
    if let Some(prev) = *last {
        assert!(frame.number > prev, "frame numbers went {prev} -> {}", frame.number);
    }
    assert!(frame.number < limits.max_frames);
    *last = Some(frame.number);
}

fuzz_target!(|data: &[u8]| {
    let limits = limits();
    let reader = match VideoReader::open(data.to_vec(), &limits) {
        Ok(reader) => reader,
        Err(e) => return check_error(&e),
    };
    let info = reader.info().clone();
    assert!(info.width >= 1 && info.width <= limits.max_width, "{info:?}");
    assert!(info.height >= 1 && info.height <= limits.max_height, "{info:?}");

    let mut last = None;
    let all = reader.decode(
        |n| n % 3 == 0,
        |frame| -> Result<(), Error> {
            check_frame(&limits, &mut last, frame);
            Ok(())
        },
    );
    if let Err(e) = &all {
        check_error(e);
    }

    // The sampled decode, on a fresh reader, as the vPDQ hasher runs it.
    let Ok(reader) = VideoReader::open(data.to_vec(), &limits) else {
        panic!("a video that opened once did not open again");
    };
    let mut last = None;
    match reader.decode_sampled(3, |frame| -> Result<(), Error> {
        check_frame(&limits, &mut last, frame);
        Ok(())
    }) {
        Ok(Some(frames)) => {
            // The sampled decode counts frames as the full one does.
            if let Ok(total) = all {
                assert_eq!(frames, total, "sampled and full decodes counted differently");
            }
        }
        Ok(None) => {}
        Err(e) => check_error(&e),
    }
});
