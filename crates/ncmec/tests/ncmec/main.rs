//! Integration tests, one binary: filings against the local CyberTipline on real sockets,
//! their XML checked for element order by a check kept here, faults, expiry, retraction, the
//! approval gate, secrets in output, and a real process crash after every journal step.

mod common;
mod crash;
mod faults;
mod filing;
mod lifecycle;
