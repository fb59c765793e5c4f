//! The decode workers' answers as the parent reads them (`safeguard-sandbox`'s wire format):
//! the bytes a compromised worker could write to its stdout, after the frame's length.
//!
//! Checked on every input: no panic and no allocation beyond what the bytes hold (libFuzzer's
//! -rss_limit_mb); an answer the parent accepts, carried engine error included, encodes to
//! bytes that read back to the same encoding (one answer, one encoding).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(again) = safeguard_sandbox::reencode_worker_answer(data) {
        let twice = safeguard_sandbox::reencode_worker_answer(&again)
            .expect("an accepted answer, encoded again, is accepted");
        assert_eq!(again, twice, "one answer, one encoding");
    }
});
