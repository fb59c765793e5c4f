//! The `safeguard` command (wired up as the work lands).
fn main() {}
