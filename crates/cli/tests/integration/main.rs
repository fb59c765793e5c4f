//! The cli crate's integration tests, in one test binary (one link instead of one per file);
//! run one area with `cargo test -p safeguard-cli --test integration <module>::`.

mod audit_cmd;
mod bank_cmd;
mod bench_risk_cmd;
mod exchange_cmd;
mod hash_cmd;
mod hash_video;
mod match_cmd;
mod report_cmd;
mod scan_cmd;
mod serve_cmd;
mod serve_ncmec_kill;
mod serve_postgres;
mod serve_process;
