//! Exact matching indexes (under construction by the index work).
