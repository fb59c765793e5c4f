//! Integration tests, one binary: the conformance suite over `MemoryOutbox`, the dispatcher
//! against real receivers on real sockets, and the documented verification snippets.

mod conformance;
mod delivery;
mod receiver;
mod snippets;
