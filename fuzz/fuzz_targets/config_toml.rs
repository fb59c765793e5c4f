//! The server's configuration through its public entry point, `Config::load`: a TOML file
//! over the defaults, then `SAFEGUARD_*` environment variables, then `validate` and the
//! derived settings the server computes at start-up.
//!
//! Input: the TOML file, optionally followed by a NUL byte and `NAME=value` lines that play
//! the environment. Checked: no panic and no hang on any file or variable; every failure is a
//! `ConfigError`.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use safeguard_server::config::Config;

/// One file per fuzzing process, rewritten for every input (`load` reads a path).
fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("safeguard-fuzz-config-{}.toml", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let (file, env) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let env = String::from_utf8_lossy(env);
    let vars: Vec<(&str, &str)> = env.lines().filter_map(|l| l.split_once('=')).collect();
    std::fs::write(path(), file).expect("write the config file");
    let loaded = Config::load(Some(path()), |name| {
        vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    });
    let Ok(config) = loaded else { return };
    if config.validate().is_ok() {
        let _ = config.media_limits();
        let _ = config.video_options();
        let _ = config.vpdq_match();
    }
});
