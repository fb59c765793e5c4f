//! The moderators' review console, without its server.
//!
//! Everything here is pure: no store, no HTTP, no clock (callers pass Unix milliseconds or
//! seconds), and no I/O besides OS randomness for secrets, salts and tokens. The server fills
//! the view models in [`views`] from the store and serves the strings they render and the
//! assets in [`assets`].
//!
//! - [`role`]: who may do what (a user holds a set of roles).
//! - [`password`], [`totp`], [`token`]: the login factors and session tokens.
//! - [`decision`]: reading a submitted decision back from its form fields.
//! - [`lockout`]: failed-login locks and session lifetimes.
//! - [`signing`]: short-lived media URLs bound to one session.
//! - [`exposure`]: daily caps and breaks that protect the people reviewing.
//! - [`settings`]: how media is shown (blur, greyscale, size), layered org < queue < harm < user.
//! - [`time`]: UTC timestamps and ages as text for the pages.
//! - [`views`], [`assets`]: the HTML pages and the CSS and JS they load.

#![forbid(unsafe_code)]

pub mod assets;
pub mod decision;
mod error;
pub mod exposure;
pub mod lockout;
pub mod password;
pub mod role;
pub mod settings;
pub mod signing;
pub mod time;
pub mod token;
pub mod totp;
pub mod views;

pub use error::{Error, Result};

/// `N` bytes from the OS random source.
pub(crate) fn try_random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| Error::Random(e.to_string()))?;
    Ok(buf)
}

/// As [`try_random_bytes`], for the token and secret constructors, whose signatures have no
/// error path: without an entropy source the console must not issue credentials at all, so
/// they stop loudly instead of returning something guessable. On Linux this cannot fail once
/// the kernel's pool is initialised.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    match try_random_bytes() {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    }
}
