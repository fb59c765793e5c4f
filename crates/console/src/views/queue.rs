//! The queues (home) and the approvals list.

use maud::html;

use super::{csrf_field, layout, path_segment, Viewer};
use crate::exposure::{Cap, ExposurePolicy, ExposureState, ExposureTotals};
use crate::time::{age_text, duration_text, utc_text};

/// One queue on the home page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRow {
    /// Queue name (the store's `cases.queue`).
    pub name: String,
    /// Open cases.
    pub open: u64,
    /// Cases in review.
    pub in_review: u64,
    /// `opened_at` of the oldest open or in-review case, ms.
    pub oldest_opened_at: Option<i64>,
    /// Whether the viewer may claim from this queue (roles and queue membership).
    pub can_claim: bool,
}

/// The viewer's exposure today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExposureSummary {
    /// Today's totals.
    pub totals: ExposureTotals,
    /// The caps in force.
    pub policy: ExposurePolicy,
    /// [`ExposurePolicy::state`] for the totals.
    pub state: ExposureState,
}

/// The home page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeView {
    /// Now, ms (for ages).
    pub now_ms: i64,
    /// Queues with open or in-review cases.
    pub queues: Vec<QueueRow>,
    /// The viewer's day so far; None for people who never see media.
    pub exposure: Option<ExposureSummary>,
}

/// The home page: queues to claim from, the viewer's exposure today, and break or cap notices.
/// Depth and age columns are for leads only (see [`crate::role::Roles::is_lead`]).
pub fn home_page(viewer: &Viewer, home: &HomeView) -> String {
    let lead = viewer.roles.is_lead();
    let may_review = home.exposure.is_none_or(|e| e.state.allows_review());
    let main = html! {
        h1 { "Queues" }
        @if let Some(e) = &home.exposure {
            section #exposure {
                @match e.state {
                    ExposureState::BreakDue => p.notice.break-due role="status" { "A break is due. Step away for ten minutes before the next case." },
                    ExposureState::CapReached { what } => p.notice.cap-reached role="status" {
                        @match what {
                            Cap::Reveals => "You have reached today's reveal limit. ",
                            Cap::ReviewTime => "You have reached today's review-time limit. ",
                        }
                        "No more cases today: thank you."
                    },
                    ExposureState::Ok => {},
                }
                p.exposure-today {
                    "Today: " span.reveals { (e.totals.reveals) " of " (e.policy.daily_reveal_cap) " reveals" }
                    ", " span.review-time { (duration_text(e.totals.review_ms)) " of " (duration_text(e.policy.daily_review_ms_cap)) " reviewing" }
                    "."
                }
            }
        }
        @if home.queues.is_empty() {
            p.empty { "No cases are waiting." }
        } @else {
            table #queues {
                thead { tr {
                    th scope="col" { "Queue" }
                    @if lead { th scope="col" { "Depth" } th scope="col" { "Oldest" } }
                    th scope="col" { span.visually-hidden { "Action" } }
                } }
                tbody {
                    @for q in &home.queues {
                        tr data-queue=(q.name) {
                            th scope="row" { (q.name) }
                            @if lead {
                                td.depth { (q.open) " open, " (q.in_review) " in review" }
                                td.oldest { @if let Some(t) = q.oldest_opened_at { (age_text(t, home.now_ms)) } @else { "–" } }
                            }
                            td {
                                @if q.can_claim && may_review {
                                    form.claim method="post" action=(format!("/console/queues/{}/claim", path_segment(&q.name))) {
                                        (csrf_field(&viewer.csrf))
                                        button.claim-next type="submit" { "Claim next" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("Queues", Some(viewer), &viewer.csrf, main)
}

/// A decision waiting for a second person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRow {
    /// The case.
    pub case_id: i64,
    /// Its queue.
    pub queue: String,
    /// Who decided (their login name).
    pub decided_by: String,
    /// Whether the viewer is the one who decided: they may not approve it (two-person rule).
    /// Filled by the server, which also refuses such an approval.
    pub decided_by_viewer: bool,
    /// When, ms.
    pub decided_at: i64,
    /// The decision ("confirmed", ...).
    pub decision: String,
}

/// Decisions awaiting approval, oldest first.
pub fn approvals_page(viewer: &Viewer, rows: &[ApprovalRow]) -> String {
    let main = html! {
        h1 { "Awaiting approval" }
        @if rows.is_empty() {
            p.empty { "Nothing awaits approval." }
        } @else {
            table #approvals {
                thead { tr {
                    th scope="col" { "Case" } th scope="col" { "Queue" } th scope="col" { "Decision" }
                    th scope="col" { "Decided by" } th scope="col" { "Decided at" }
                    th scope="col" { span.visually-hidden { "Action" } }
                } }
                tbody {
                    @for r in rows {
                        tr data-case=(r.case_id) {
                            td { a href=(format!("/console/cases/{}", r.case_id)) { "#" (r.case_id) } }
                            td { (r.queue) }
                            td.decision { (r.decision) }
                            td { (r.decided_by) }
                            td { (utc_text(r.decided_at)) }
                            td {
                                @if r.decided_by_viewer {
                                    span.own-decision { "Your decision: another senior approves" }
                                } @else if viewer.roles.can_approve() {
                                    form.approve method="post" action=(format!("/console/cases/{}/approve", r.case_id)) {
                                        (csrf_field(&viewer.csrf))
                                        button.approve type="submit" { "Approve" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("Approvals", Some(viewer), &viewer.csrf, main)
}
