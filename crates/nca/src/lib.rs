//! UK NCA reporting.

#![forbid(unsafe_code)]
