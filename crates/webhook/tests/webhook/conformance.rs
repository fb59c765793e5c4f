//! `MemoryOutbox` passes the suite every outbox implementation runs.

use safeguard_webhook::conformance;
use safeguard_webhook::MemoryOutbox;

#[test]
fn memory_outbox_conforms() {
    conformance::run_all(&|| Box::new(MemoryOutbox::new()));
}
