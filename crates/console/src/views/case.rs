//! One case: the evidence first (so the decision can often be made without looking), then the
//! media, blurred until revealed, then the lease and the decision.

use maud::{html, Markup};

use super::{csrf_field, layout, Viewer};
use crate::decision::{Decision, CLASSES, MAX_NOTE_CHARS, MAX_REASON_CHARS};
use crate::settings::ViewSettings;
use crate::time::{age_text, utc_text};

/// Playback speeds offered for video.
const SPEEDS: [&str; 5] = ["0.25", "0.5", "1", "1.5", "2"];

/// A hash match that brought the case in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceMatch {
    /// The matched object.
    pub object_id: String,
    /// The bank (hash list) matched.
    pub bank: String,
    /// Hamming distance for perceptual hashes; None for exact hashes.
    pub distance: Option<u32>,
    /// Where the bank's entry came from (the hotline or exchange).
    pub source: String,
    /// The classification the source gave, if any.
    pub classification: Option<String>,
    /// The hotline's reference for the entry, if any.
    pub hotline_id: Option<String>,
}

/// Another item from the same uploader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploaderItem {
    /// Its case, if it has one.
    pub case_id: Option<i64>,
    /// The object.
    pub object_id: String,
    /// When it was uploaded, ms.
    pub at: i64,
    /// What became of it ("matched", "decided: not_csam", ...).
    pub outcome: String,
}

/// An earlier decision about the same account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierDecision {
    /// The earlier case.
    pub case_id: i64,
    /// Its decision.
    pub decision: String,
    /// Who decided.
    pub decided_by: String,
    /// When, ms.
    pub at: i64,
}

/// A line of the case's history (the store's `case_history`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryLine {
    /// When, ms.
    pub at: i64,
    /// Who ("console:alice", "engine").
    pub actor: String,
    /// What ("state", "claimed", "skipped", "approved", ...).
    pub action: String,
    /// State before, for state changes.
    pub from_state: Option<String>,
    /// State after, for state changes.
    pub to_state: Option<String>,
    /// Free text (a skip reason, a decision note).
    pub note: Option<String>,
    /// The decision recorded by this line, if any.
    pub decision: Option<String>,
}

/// Image or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// Shown with `<img>`.
    Image,
    /// Shown with `<video>`, muted, never autoplaying.
    Video,
}

/// One evidence object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaItem {
    /// The object's id (also the `class:`/`annot:` form field suffix).
    pub object_id: String,
    /// Image or video.
    pub kind: MediaKind,
    /// Signed, short-lived URL ([`crate::signing`]). None when the object cannot be shown
    /// (missing from the vault); it is never rendered for viewers who do not see media.
    pub url: Option<String>,
    /// The item's current classification (from the store's item labels), to prefill the form.
    pub classification: Option<String>,
    /// Its current NCMEC file annotations.
    pub annotations: Vec<String>,
}

/// Who holds the case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    /// The holder's login name.
    pub holder: String,
    /// Whether the viewer is the holder (only the holder renews, skips or decides).
    pub held_by_viewer: bool,
    /// When the lease runs out, ms.
    pub expires_at: i64,
}

/// The decision on a decided case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionView {
    /// The decision.
    pub decision: String,
    /// Who decided.
    pub decided_by: String,
    /// Whether the viewer decided it (then they cannot approve it).
    pub decided_by_viewer: bool,
    /// When, ms.
    pub decided_at: i64,
    /// Who approved it, once approved.
    pub approved_by: Option<String>,
}

/// Everything the case page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseView {
    /// Case id.
    pub id: i64,
    /// Queue.
    pub queue: String,
    /// State ("open", "in_review", "decided", ...).
    pub state: String,
    /// Priority (higher first).
    pub priority: i64,
    /// The account the case is about.
    pub account: String,
    /// When the case opened, ms.
    pub opened_at: i64,
    /// Now, ms (for ages).
    pub now_ms: i64,
    /// The case's labels (harms).
    pub labels: Vec<String>,
    /// The matches that brought it in.
    pub matches: Vec<EvidenceMatch>,
    /// The uploader's other items.
    pub uploader_items: Vec<UploaderItem>,
    /// Earlier decisions on the account.
    pub earlier_decisions: Vec<EarlierDecision>,
    /// The case's history, oldest first.
    pub history: Vec<HistoryLine>,
    /// The evidence objects.
    pub media: Vec<MediaItem>,
    /// How media is shown ([`crate::settings::resolve`] for this viewer, queue and harm).
    pub settings: ViewSettings,
    /// Whether reveals are allowed now (no exposure cap reached).
    pub reveal_allowed: bool,
    /// The lease, if the case is held.
    pub lease: Option<LeaseView>,
    /// The decision, if decided.
    pub decision: Option<DecisionView>,
}

fn or_dash(v: Option<&str>) -> &str {
    v.unwrap_or("–")
}

fn evidence(c: &CaseView) -> Markup {
    html! {
        section #evidence aria-labelledby="evidence-title" {
            h2 #evidence-title { "Evidence" }
            @if c.matches.is_empty() {
                p.empty { "No hash matches." }
            } @else {
                table.matches {
                    thead { tr {
                        th scope="col" { "Item" } th scope="col" { "Bank" } th scope="col" { "Distance" }
                        th scope="col" { "Source" } th scope="col" { "Classification" } th scope="col" { "Hotline id" }
                    } }
                    tbody {
                        @for m in &c.matches {
                            tr.match data-object=(m.object_id) {
                                td.object { code { (m.object_id) } }
                                td.bank { (m.bank) }
                                td.distance { @if let Some(d) = m.distance { (d) } @else { "exact" } }
                                td.source { (m.source) }
                                td.classification { (or_dash(m.classification.as_deref())) }
                                td.hotline { (or_dash(m.hotline_id.as_deref())) }
                            }
                        }
                    }
                }
            }
            h3 { "Other items from this uploader" }
            @if c.uploader_items.is_empty() {
                p.empty { "None." }
            } @else {
                ul.uploader-items {
                    @for i in &c.uploader_items {
                        li {
                            code { (i.object_id) } " · " (utc_text(i.at)) " · " (i.outcome)
                            @if let Some(id) = i.case_id { " · " a href=(format!("/console/cases/{id}")) { "case #" (id) } }
                        }
                    }
                }
            }
            h3 { "Earlier decisions" }
            @if c.earlier_decisions.is_empty() {
                p.empty { "None." }
            } @else {
                ul.earlier-decisions {
                    @for d in &c.earlier_decisions {
                        li { a href=(format!("/console/cases/{}", d.case_id)) { "#" (d.case_id) } " " strong { (d.decision) } " by " (d.decided_by) ", " (utc_text(d.at)) }
                    }
                }
            }
            h3 { "History" }
            ol #history {
                @for h in &c.history {
                    li.history-line {
                        time { (utc_text(h.at)) } " " span.actor { (h.actor) } " " span.action { (h.action) }
                        @if let (Some(f), Some(t)) = (&h.from_state, &h.to_state) { " " (f) " → " (t) }
                        @if let Some(d) = &h.decision { " " strong { (d) } }
                        @if let Some(n) = &h.note { " — " span.note { (n) } }
                    }
                }
            }
        }
    }
}

fn figure(c: &CaseView, m: &MediaItem) -> Markup {
    let classes = c.settings.media_classes();
    html! {
        figure.media data-object=(m.object_id) data-case=(c.id) tabindex="0" {
            @match (&m.url, m.kind) {
                (Some(url), MediaKind::Image) => {
                    img class=(format!("media-img {classes}")) src=(url) alt=(format!("Evidence item {}", m.object_id)) referrerpolicy="no-referrer" draggable="false";
                }
                (Some(url), MediaKind::Video) => {
                    video class=(format!("media-video {classes}")) src=(url) muted preload="metadata" playsinline controls controlslist="nodownload" disablepictureinpicture {}
                    div.video-controls {
                        button.frame-back type="button" aria-label="One frame back" { "‹ frame" }
                        button.frame-fwd type="button" aria-label="One frame forward" { "frame ›" }
                        label { "Speed "
                            select.speed {
                                @for s in SPEEDS { option value=(s) selected[s == "1"] { (s) "×" } }
                            }
                        }
                    }
                }
                (None, _) => p.media-missing { "This item cannot be shown (missing from the vault)." }
            }
            figcaption {
                code { (m.object_id) }
                @if m.url.is_some() {
                    button.reveal type="button" disabled[!c.reveal_allowed] aria-pressed="false" { "Reveal" }
                }
                span.reveal-status aria-live="polite" {}
            }
        }
    }
}

fn media(viewer: &Viewer, c: &CaseView) -> Markup {
    html! {
        section #media aria-labelledby="media-title" {
            h2 #media-title { "Media" }
            @if !viewer.roles.sees_media() {
                p.media-hidden { "Media is not shown for your roles." }
            } @else {
                noscript { p.notice { "Revealing media needs JavaScript: every reveal is recorded." } }
                @if !c.reveal_allowed { p.notice.cap-reached { "Today's exposure limit is reached: media stays blurred." } }
                div.media-grid {
                    @for m in &c.media { (figure(c, m)) }
                }
            }
        }
    }
}

fn lease_and_decide(viewer: &Viewer, c: &CaseView) -> Markup {
    let held = c.lease.as_ref().is_some_and(|l| l.held_by_viewer);
    html! {
        @if let Some(l) = &c.lease {
            section #lease {
                p {
                    "Held by " strong { (l.holder) } " until " time { (utc_text(l.expires_at)) }
                    " (" (age_text(c.now_ms, l.expires_at)) " left)."
                }
                @if l.held_by_viewer {
                    form #renew method="post" action=(format!("/console/cases/{}/renew", c.id)) {
                        (csrf_field(&viewer.csrf))
                        button type="submit" { "Keep it longer" }
                    }
                    form #skip method="post" action=(format!("/console/cases/{}/skip", c.id)) {
                        (csrf_field(&viewer.csrf))
                        label for="skip-reason" { "Reason" }
                        input #skip-reason type="text" name="reason" required maxlength=(MAX_REASON_CHARS);
                        button type="submit" { "Skip this case" }
                    }
                }
            }
        }
        @if held && c.decision.is_none() && viewer.roles.can_decide() {
            form #decide method="post" action=(format!("/console/cases/{}/decide", c.id)) {
                (csrf_field(&viewer.csrf))
                h2 { "Decision" }
                label for="decision" { "Decision" }
                select #decision name="decision" required {
                    option value="" { "Choose…" }
                    @for d in Decision::ALL { option value=(d.as_str()) { (d.label()) } }
                }
                @if !c.media.is_empty() {
                    table.item-labels {
                        thead { tr { th scope="col" { "Item" } th scope="col" { "Class" } th scope="col" { "Annotations (comma-separated)" } } }
                        tbody {
                            @for m in &c.media {
                                tr data-object=(m.object_id) {
                                    th scope="row" { code { (m.object_id) } }
                                    td { select name=(format!("class:{}", m.object_id)) aria-label=(format!("Class of {}", m.object_id)) {
                                        option value="" selected[m.classification.is_none()] { "(none)" }
                                        @for k in CLASSES {
                                            option value=(k) selected[m.classification.as_deref() == Some(k)] { (k) }
                                        }
                                    } }
                                    td { input type="text" name=(format!("annot:{}", m.object_id)) value=(m.annotations.join(", ")) aria-label=(format!("Annotations of {}", m.object_id)); }
                                }
                            }
                        }
                    }
                }
                label for="note" { "Note" }
                textarea #note name="note" rows="3" maxlength=(MAX_NOTE_CHARS) {}
                button #decide-submit type="submit" { "Record decision" }
            }
        }
    }
}

fn decided(viewer: &Viewer, c: &CaseView) -> Markup {
    html! {
        @if let Some(d) = &c.decision {
            section #decision {
                h2 { "Decision" }
                p.decision { strong { (d.decision) } " by " (d.decided_by) ", " (utc_text(d.decided_at)) }
                @if let Some(a) = &d.approved_by {
                    p.approved { "Approved by " (a) "." }
                } @else if d.decision.starts_with("confirmed") {
                    @if d.decided_by_viewer {
                        p { span.own-decision { "Your decision: another senior approves it." } }
                    } @else if viewer.roles.can_approve() {
                        form #approve method="post" action=(format!("/console/cases/{}/approve", c.id)) {
                            (csrf_field(&viewer.csrf))
                            button.approve type="submit" { "Approve" }
                        }
                    }
                }
            }
        }
    }
}

/// The case page.
pub fn case_page(viewer: &Viewer, c: &CaseView) -> String {
    let main = html! {
        h1 { "Case #" (c.id) }
        dl.case-meta {
            dt { "Queue" } dd { (c.queue) }
            dt { "State" } dd.state { (c.state) }
            dt { "Priority" } dd { (c.priority) }
            dt { "Account" } dd { code { (c.account) } }
            dt { "Opened" } dd { (utc_text(c.opened_at)) " (" (age_text(c.opened_at, c.now_ms)) " ago)" }
            @if !c.labels.is_empty() { dt { "Labels" } dd { (c.labels.join(", ")) } }
        }
        (evidence(c))
        (media(viewer, c))
        (decided(viewer, c))
        (lease_and_decide(viewer, c))
    };
    layout(&format!("Case {}", c.id), Some(viewer), &viewer.csrf, main)
}
