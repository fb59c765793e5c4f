//! Leads' and admins' pages: team exposure, users, organisation settings.

use maud::{html, Markup};

use super::{csrf_field, layout, Viewer};
use crate::settings::{ViewSettings, BLUR_STEP_PX, MAX_BLUR_PX, MIN_BLUR_PX, THUMB_SIZES_PX};
use crate::time::{duration_text, utc_text};

/// Longest login name, characters (the create-user form's limit; the server checks it too).
pub const MAX_USER_NAME_CHARS: usize = 100;

/// The team's exposure over a period, summed over everyone. Never per person: individual
/// figures invite ranking people by how much abuse they looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TeamAggregate {
    /// Period start, ms.
    pub from_ms: i64,
    /// Period end (exclusive), ms.
    pub to_ms: i64,
    /// People with any reveal in the period.
    pub people: u64,
    /// Reveals.
    pub reveals: u64,
    /// Time media was visible, ms.
    pub visible_ms: i64,
    /// Time spent on claimed cases, ms.
    pub review_ms: i64,
}

/// The team page.
pub fn team_page(viewer: &Viewer, t: &TeamAggregate) -> String {
    let main = html! {
        h1 { "Team exposure" }
        section #team {
            p { "From " (utc_text(t.from_ms)) " to " (utc_text(t.to_ms)) ", everyone together." }
            dl.figures {
                dt { "People who revealed media" } dd.people { (t.people) }
                dt { "Reveals" } dd.reveals { (t.reveals) }
                dt { "Time media was visible" } dd.visible { (duration_text(t.visible_ms)) }
                dt { "Time reviewing" } dd.review { (duration_text(t.review_ms)) }
            }
        }
    };
    layout("Team", Some(viewer), &viewer.csrf, main)
}

/// A console user on the admin page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// User id.
    pub id: i64,
    /// Login name.
    pub name: String,
    /// Roles as stored ("admin,reviewer").
    pub roles: String,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
    /// Locked after failed logins until this time, ms, if in the future.
    pub locked_until: Option<i64>,
    /// Whether the one-time setup link has not been used yet.
    pub setup_pending: bool,
    /// Created, ms.
    pub created_at: i64,
}

/// A user just created (or reset): the setup link is shown this once and never stored in the
/// clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedUser {
    /// Login name.
    pub name: String,
    /// The full one-time setup URL.
    pub setup_url: String,
}

/// The users page. `now_ms` tells live locks from expired ones.
pub fn users_page(
    viewer: &Viewer,
    users: &[UserRow],
    created: Option<&CreatedUser>,
    now_ms: i64,
) -> String {
    let main = html! {
        h1 { "Users" }
        @if let Some(c) = created {
            section #setup-link role="status" {
                p { "Send this one-time setup link to " strong { (c.name) } " by a channel you trust. It is shown only now." }
                p { code.setup-url { (c.setup_url) } }
            }
        }
        table #users {
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Roles" } th scope="col" { "Status" }
                th scope="col" { "Created" } th scope="col" { span.visually-hidden { "Actions" } }
            } }
            tbody {
                @for u in users {
                    tr data-user=(u.id) {
                        th scope="row" { (u.name) }
                        td {
                            form.set-roles method="post" action=(format!("/console/users/{}/roles", u.id)) {
                                (csrf_field(&viewer.csrf))
                                input type="text" name="roles" value=(u.roles) aria-label=(format!("Roles of {}", u.name)) required;
                                button type="submit" { "Save" }
                            }
                        }
                        td.status {
                            @if u.disabled { "disabled" }
                            @else if u.locked_until.is_some_and(|t| t > now_ms) { "locked until " (utc_text(u.locked_until.unwrap_or(0))) }
                            @else if u.setup_pending { "setup pending" }
                            @else { "active" }
                        }
                        td { (utc_text(u.created_at)) }
                        td {
                            form.reset-user method="post" action=(format!("/console/users/{}/reset", u.id)) {
                                (csrf_field(&viewer.csrf))
                                button type="submit" { "Reset password and code" }
                            }
                            form.disable-user method="post" action=(format!("/console/users/{}/disable", u.id)) {
                                (csrf_field(&viewer.csrf))
                                input type="hidden" name="disabled" value=(if u.disabled { "false" } else { "true" });
                                button type="submit" { @if u.disabled { "Enable" } @else { "Disable" } }
                            }
                        }
                    }
                }
            }
        }
        h2 { "New user" }
        form #create-user method="post" action="/console/users" {
            (csrf_field(&viewer.csrf))
            label for="new-name" { "Name" }
            input #new-name type="text" name="name" required maxlength=(MAX_USER_NAME_CHARS) autocomplete="off";
            label for="new-roles" { "Roles (reviewer, senior, admin, auditor; comma-separated)" }
            input #new-roles type="text" name="roles" required value="reviewer";
            button #create-user-submit type="submit" { "Create and show setup link" }
        }
    };
    layout("Users", Some(viewer), &viewer.csrf, main)
}

/// The organisation's default view settings, one queue's or one harm type's (`scope` is
/// `org`, `queue:NAME` or `harm:LABEL`; `scopes` lists the choices as (value, label)).
pub fn settings_page(
    viewer: &Viewer,
    scope: &str,
    scopes: &[(String, String)],
    settings: &ViewSettings,
    error: Option<&str>,
) -> String {
    let main = html! {
        h1 { "Media display defaults" }
        p { "The organisation's defaults apply everywhere; a queue's settings override them for its cases, and each reviewer may change their own view on top. Blur never goes below " (MIN_BLUR_PX) " px, and video never autoplays or plays sound by itself." }
        form #settings-scope method="get" action="/console/settings" {
            label for="scope" { "Settings for" }
            select #scope name="scope" {
                @for (value, label) in scopes { option value=(value) selected[value == scope] { (label) } }
            }
            button type="submit" { "Show" }
        }
        form #settings-harm method="get" action="/console/settings" {
            label for="harm-scope" { "Or for a harm type (a rule's label)" }
            input #harm-scope type="text" name="scope" placeholder="harm:LABEL" pattern="harm:.+" maxlength="70";
            button type="submit" { "Show" }
        }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        h2 { "Settings for " (scopes.iter().find(|(v, _)| v == scope).map(|(_, l)| l.as_str()).unwrap_or(scope)) }
        (settings_form(viewer, "/console/settings", Some(scope), settings))
    };
    layout("Settings", Some(viewer), &viewer.csrf, main)
}

/// A person's own view of media, on top of the organisation's and queue's defaults.
pub fn my_settings_page(viewer: &Viewer, settings: &ViewSettings, error: Option<&str>) -> String {
    let main = html! {
        h1 { "My media view" }
        p { "How media is shown to you. You can make it stronger or weaker for yourself, but blur never goes below " (MIN_BLUR_PX) " px and video never autoplays or plays sound by itself." }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        (settings_form(viewer, "/console/me", None, settings))
    };
    layout("My view", Some(viewer), &viewer.csrf, main)
}

fn settings_form(viewer: &Viewer, action: &str, scope: Option<&str>, s: &ViewSettings) -> Markup {
    let blurs = (MIN_BLUR_PX..=MAX_BLUR_PX).step_by(BLUR_STEP_PX as usize);
    html! {
        form #settings method="post" action=(action) {
            (csrf_field(&viewer.csrf))
            @if let Some(scope) = scope { input type="hidden" name="scope" value=(scope); }
            label.check { input type="checkbox" name="greyscale" value="on" checked[s.greyscale]; " Greyscale" }
            label for="blur_px" { "Blur (px)" }
            select #blur_px name="blur_px" {
                @for b in blurs { option value=(b) selected[b == s.blur_px] { (b) } }
            }
            label for="thumb_px" { "Thumbnail size (px)" }
            select #thumb_px name="thumb_px" {
                @for t in THUMB_SIZES_PX { option value=(t) selected[t == s.thumb_px] { (t) } }
            }
            label.check { input type="checkbox" name="reduced_detail" value="on" checked[s.reduced_detail]; " Reduced detail (images as a small four-tone grey copy drawn by the server)" }
            button #settings-submit type="submit" { "Save" }
        }
    }
}
