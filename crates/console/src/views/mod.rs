//! The console's pages, rendered on the server with maud (which escapes every interpolated
//! value). Each page is a function of a plain view model the server fills from the store;
//! the page decides nothing about access beyond hiding what the viewer's roles must not see
//! (the server checks again on every request).
//!
//! Rules every page keeps, because the Content-Security-Policy is
//! `script-src 'self'; style-src 'self'`: no `style` attributes (sizes and blur come from
//! classes), no inline script, one external script loaded with `defer`. Every form that
//! posts carries the CSRF token in a hidden `csrf` field; the layout also puts it in
//! `<meta name="csrf-token">` for the script's JSON requests.
//!
//! Times in view models are Unix milliseconds and are shown in UTC ([`crate::time`]).

mod account;
mod admin;
mod case;
mod figures;
mod queue;
#[cfg(test)]
mod tests;

pub use account::{login_page, setup_page, SetupView};
pub use admin::{
    my_settings_page, settings_page, team_page, users_page, CreatedUser, TeamAggregate, UserRow,
    MAX_USER_NAME_CHARS,
};
pub use case::{
    case_page, CaseView, DecisionView, EarlierDecision, EvidenceMatch, HistoryLine, LeaseView,
    MediaItem, MediaKind, UploaderItem,
};
pub use figures::{
    bar_chart_svg, date_text, figures_page, parse_date, parse_period, BarChart, FigureSection,
    FiguresView, DEFAULT_PERIOD_DAYS, MAX_PERIOD_DAYS,
};
pub use queue::{approvals_page, home_page, ApprovalRow, ExposureSummary, HomeView, QueueRow};

use maud::{html, Markup, DOCTYPE};

use crate::assets;
use crate::role::Roles;

/// Who is looking, and the per-request chrome around every page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// Login name, shown in the header.
    pub name: String,
    /// The viewer's roles: they choose the navigation and hide media and actions.
    pub roles: Roles,
    /// The session's CSRF token (the value itself, not its hash).
    pub csrf: String,
    /// A one-time message from the previous action ("Case 12 decided."), if any.
    pub flash: Option<String>,
    /// Whether a break is due ([`crate::exposure::ExposureState::BreakDue`]): the script then
    /// opens the break prompt.
    pub break_due: bool,
}

/// `/console/...` with `segment` percent-encoded, for names (queues) that may hold `/`, `?`
/// or spaces.
pub(crate) fn path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The hidden CSRF field every posting form starts with.
pub(crate) fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// Shortcut key, what it does. Listed in the `#shortcuts` dialog; `console.js` implements them.
const SHORTCUTS: [(&str, &str); 8] = [
    ("j / k", "Next / previous media item"),
    ("r", "Reveal or blur the focused item"),
    (", / .", "Focused video: one frame back / forward"),
    ("c", "Claim the next case in the first queue"),
    ("d", "Go to the decision"),
    ("Esc", "Blur everything, close dialogs"),
    ("?", "Show these shortcuts"),
    ("g", "Back to the queues"),
];

fn layout(title: &str, viewer: Option<&Viewer>, csrf: &str, main: Markup) -> String {
    let css = format!("{}{}", assets::PREFIX, assets::css_name());
    let js = format!("{}{}", assets::PREFIX, assets::js_name());
    let break_due = viewer.is_some_and(|v| v.break_due);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(csrf);
                meta name="referrer" content="no-referrer";
                title { (title) " · Safeguard review" }
                link rel="stylesheet" href=(css);
                script src=(js) defer {}
            }
            body data-break-due=(if break_due { "true" } else { "false" }) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "Safeguard review" }
                    @if let Some(v) = viewer {
                        nav #nav aria-label="Main" {
                            a href="/console" { "Queues" }
                            @if v.roles.can_approve() { a href="/console/approvals" { "Approvals" } }
                            @if v.roles.is_lead() || v.roles.can_audit() { a href="/console/team" { "Team" } }
                            @if v.roles.is_lead() || v.roles.can_audit() { a href="/console/figures" { "Figures" } }
                            @if v.roles.can_admin() {
                                a href="/console/users" { "Users" }
                                a href="/console/settings" { "Settings" }
                            }
                        }
                        span.who {
                            @if v.roles.sees_media() { a href="/console/me" title="My media view" { (v.name) } } @else { (v.name) }
                            " " span.roles { "(" (v.roles) ")" }
                        }
                        form #logout method="post" action="/console/logout" {
                            (csrf_field(&v.csrf))
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main #main {
                    @if let Some(flash) = viewer.and_then(|v| v.flash.as_deref()) {
                        p.flash role="status" { (flash) }
                    }
                    (main)
                }
                @if viewer.is_some() {
                    dialog #shortcuts aria-labelledby="shortcuts-title" {
                        h2 #shortcuts-title { "Keyboard shortcuts" }
                        dl {
                            @for (key, what) in SHORTCUTS {
                                dt { kbd { (key) } }
                                dd { (what) }
                            }
                        }
                        button.dialog-close type="button" { "Close" }
                    }
                }
                @if break_due {
                    dialog #break-prompt aria-labelledby="break-title" {
                        h2 #break-title { "Time for a break" }
                        p { "You have been reviewing for a while. Step away from the screen for ten minutes: look at something far away, move, drink water. Your claimed case is kept for you." }
                        button.dialog-close type="button" { "OK" }
                    }
                }
            }
        }
    }
    .into_string()
}

/// The error page: `status` and a message that says what to do next.
pub fn error_page(viewer: Option<&Viewer>, status: u16, message: &str) -> String {
    let csrf = viewer.map(|v| v.csrf.as_str()).unwrap_or("");
    let main = html! {
        section #error {
            h1 { "Error " (status) }
            p.error { (message) }
            p { a href="/console" { "Back to the queues" } }
        }
    };
    layout(&format!("Error {status}"), viewer, csrf, main)
}
