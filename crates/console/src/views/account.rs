//! Pages before a session exists: login, and first-time setup from a one-time link.

use maud::html;

use super::{csrf_field, layout};

/// The login page. `csrf` comes from the pre-session cookie the server sets on this page.
pub fn login_page(csrf: &str, error: Option<&str>) -> String {
    let main = html! {
        section.narrow {
            h1 { "Log in" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form #login method="post" action="/console/login" {
                (csrf_field(csrf))
                label for="username" { "Name" }
                input #username type="text" name="username" autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                label for="totp" { "Code from your authenticator app" }
                input #totp type="text" name="totp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required;
                button #login-submit type="submit" { "Log in" }
            }
        }
    };
    layout("Log in", None, csrf, main)
}

/// What the setup page shows a new (or reset) user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupView {
    /// The one-time setup token from the link, posted back in the hidden `token` field.
    pub token: String,
    /// The user's login name.
    pub name: String,
    /// The new TOTP secret in base32 ([`crate::totp::secret_base32`]), to type in by hand.
    pub secret_base32: String,
    /// The `otpauth://` URI ([`crate::totp::otpauth_uri`]).
    pub otpauth_uri: String,
    /// The same secret sealed by the server (opaque here), posted back in the hidden `secret`
    /// field: the server keeps no state between showing the page and the submission, and
    /// the secret is stored only once a code from the app proves the enrolment worked.
    pub sealed_secret: String,
    /// What was wrong with the last attempt, if any.
    pub error: Option<String>,
}

/// First-time setup: choose a password and enrol the authenticator.
pub fn setup_page(csrf: &str, setup: &SetupView) -> String {
    let main = html! {
        section.narrow {
            h1 { "Set up your account" }
            p { "Welcome, " strong { (setup.name) } ". Choose a password of at least 12 characters, then add this secret to an authenticator app and enter the code it shows." }
            @if let Some(e) = &setup.error { p.error role="alert" { (e) } }
            p { "Secret: " code #totp-secret { (setup.secret_base32) } }
            p.small { "Or open in an authenticator on this device: " a #otpauth-link href=(setup.otpauth_uri) { "add account" } }
            form #setup method="post" action="/console/setup" {
                (csrf_field(csrf))
                input type="hidden" name="token" value=(setup.token);
                input type="hidden" name="secret" value=(setup.sealed_secret);
                label for="password" { "New password" }
                input #password type="password" name="password" autocomplete="new-password" minlength="12" maxlength="1024" required;
                label for="password2" { "New password again" }
                input #password2 type="password" name="password2" autocomplete="new-password" minlength="12" maxlength="1024" required;
                label for="totp" { "Code from your authenticator app" }
                input #totp type="text" name="totp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required;
                button #setup-submit type="submit" { "Finish setup" }
            }
        }
    };
    layout("Set up", None, csrf, main)
}
