//! The server's integration tests, in one test binary: linking the server, FFmpeg and the
//! HTTP stack once instead of once per file was minutes of CI on two cores. Each module is one
//! area; run one with `cargo test -p safeguard-server --test integration <module>::`.
//!
//! Two files stay binaries of their own, because each installs the process's global log
//! subscriber to read what the server logged: `reports.rs` and `request_id.rs`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../shared_db/mod.rs"]
mod shared_db;

mod accounts;
mod actions;
mod api;
mod audit;
mod auth;
mod console;
mod console_browser;
mod console_figures;
mod contact;
mod exchanges;
mod feed;
mod fetch;
mod limits;
mod lists;
mod nca;
mod photodna;
mod risk;
mod scans;
mod socket;
mod urls;
mod vault_reads;
mod video;
