//! Hash-sharing exchanges: scheduled, resumable fetchers that keep one bank per exchange equal
//! to what the exchange lists.
//!
//! - [`ncmec`]: NCMEC hash sharing API v2 (XML, time windows, deletions, feedback).
//! - [`stopncii`]: StopNCII.org (JSON, page tokens, withdrawals, feedback).
//! - [`peer`]: another Safeguard instance's bank API.
//!
//! Each client implements [`Fetcher`]; [`run()`] drives one through pages and applies each page
//! with its checkpoint in one transaction of an [`ExchangeSink`] (the engine in production,
//! [`MemorySink`] in tests). See `docs/exchanges.md`.

#![forbid(unsafe_code)]

mod config;
mod engine_sink;
mod error;
mod http;
pub mod ncmec;
pub mod peer;
mod run;
mod secret;
mod sink;
pub mod stopncii;
pub mod time;

pub use config::{Client, ExchangeConfig, ExchangeKind, DEFAULT_EXCHANGE_INTERVAL_SECS};
pub use engine_sink::EngineSink;
pub use error::{Error, Result};
pub use http::{HttpLimits, RetryPolicy};
pub use run::{
    join_owners, run, split_owners, Fetcher, Page, Record, RunOptions, RunReport, Sweep,
    MAX_CLASSIFICATION_BYTES, MAX_METADATA_BYTES,
};
pub use secret::Secret;
pub use sink::{Batch, ExchangeSink, Held, MemoryExchange, MemorySink, Outcome, Removal, Upsert};
