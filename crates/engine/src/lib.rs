//! Safeguard's domain logic, independent of HTTP: signal types and their validation, banks,
//! hashing of media into signals, and the [`Engine`] that writes to a [`safeguard_store::Store`]
//! and keeps the in-memory indexes equal to it.

#![forbid(unsafe_code)]

pub mod action;
pub mod audit;
mod bank;
pub mod case;
mod engine;
mod error;
pub mod figures;
pub mod group;
mod hashing;
mod matcher;
pub mod photodna;
mod signal;
mod sources;
pub mod video;

pub use bank::{
    validate_bank_name, validate_classification, validate_tags, CLASSIFICATIONS,
    DEFAULT_PDQ_THRESHOLD, MAX_BANK_NAME_LEN, MAX_BANK_TAGS, MAX_PDQ_THRESHOLD, MAX_TAG_LEN,
};
pub use engine::{
    AddContent, CreateBank, Engine, IndexStatus, LookupMatch, LookupOptions, LookupResult,
    MAX_METADATA_BYTES, MAX_NOTE_BYTES, MAX_PAGE, SNAPSHOT_FEED_WINDOW,
};
pub use error::Error;
pub use hashing::{hash_media, HashedMedia};
pub use matcher::BankState;
pub use safeguard_vpdq::{MatchPercent, VpdqFrame, VpdqMatchConfig};
pub use signal::{SignalType, SignalValue};
pub use sources::{
    diff_list, export_list, import_list, now_ms, now_secs, validate_source, DiffReport, DiffShow,
    ExportReport, ImportOptions, ImportReport, MAX_IMPORT_ENTRIES, MAX_SOURCE_LEN,
};
