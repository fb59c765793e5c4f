//! The tamper-evident audit log (RFC 6962 Merkle tree, signed tree heads, proofs).

#![forbid(unsafe_code)]
