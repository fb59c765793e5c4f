//! `POST /v1/contact/decide` bodies and `[contact]` policies: a request parsed as the route
//! parses it, decided under the default policy and under a policy parsed from the input's
//! second half.
//!
//! Input: the request JSON, optionally followed by a NUL byte and a policy in TOML. Checked:
//! no panic and no hang; every refusal is an `Error` with a stable code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use safeguard_contact::{decide, ContactPolicy, ContactRequest};

fuzz_target!(|data: &[u8]| {
    let (request, policy) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let policy = std::str::from_utf8(policy).ok().and_then(|t| {
        ContactPolicy::from_toml(t)
            .map_err(|e| assert!(!e.code().is_empty()))
            .ok()
    });
    let Ok(text) = std::str::from_utf8(request) else {
        return;
    };
    let request = match ContactRequest::from_json(text).and_then(|r| r.validate().map(|()| r)) {
        Ok(r) => r,
        Err(e) => {
            assert!(!e.code().is_empty());
            return;
        }
    };
    let _ = decide(&request, &ContactPolicy::default());
    if let Some(p) = policy {
        let d = decide(&request, &p);
        let _ = serde_json::to_string(&d);
    }
});
