//! `/console/figures` and `/console/figures.csv`: the transparency figures of a period
//! (`safeguard_engine::figures`, the same numbers as `GET /v1/figures`) for auditors and
//! leads, as a page with SVG charts and as the API's CSV.
//!
//! Not written to the audit log, like `GET /v1/figures`: the figures are counts with no
//! case, person or media in them, and the audit log records access to those.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use safeguard_console::time::duration_text;
use safeguard_console::views::{self, BarChart, FigureSection, FiguresView};
use safeguard_engine::figures::{Counts, Durations, Figures};

use super::{html, now_ms, session, ConsoleResult, Fail, Session};
use crate::state::{blocking, AppState};

/// The period fields of the page's form: `YYYY-MM-DD`, either may be empty or absent.
/// Unknown fields are ignored so a bookmarked URL with extra parameters still works.
#[derive(Debug, Deserialize)]
pub(crate) struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
}

/// The session, checked for a role that may read the figures, and the figures of the
/// period asked for.
async fn load(
    state: &AppState,
    headers: &HeaderMap,
    q: Result<Query<PeriodQuery>, QueryRejection>,
) -> ConsoleResult<(Session, Figures)> {
    let s = session(state, headers).await?;
    if !(s.roles.is_lead() || s.roles.can_audit()) {
        return Err(Fail::forbidden(
            "only leads and auditors see the figures; ask an admin for the auditor role",
        ));
    }
    let Query(q) = q.map_err(|e| {
        Fail::page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("give the period as from and to, YYYY-MM-DD ({e})"),
        )
    })?;
    let (from, to) = views::parse_period(q.from.as_deref(), q.to.as_deref(), now_ms())
        .map_err(|m| Fail::page(StatusCode::BAD_REQUEST, "invalid_request", m))?;
    let store = state.0.store.clone();
    let f = blocking(move || {
        Ok(safeguard_engine::figures::compute(
            store.as_ref(),
            from,
            to,
        )?)
    })
    .await?;
    Ok((s, f))
}

/// `GET /console/figures?from&to`: the page.
pub(crate) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<PeriodQuery>, QueryRejection>,
) -> ConsoleResult<Response> {
    let (s, f) = load(&state, &headers, q).await?;
    let view = view_of(&f, now_ms());
    Ok(html(views::figures_page(&s.viewer(), &view)).into_response())
}

/// `GET /console/figures.csv?from&to`: `Figures::to_csv`, byte for byte what
/// `GET /v1/figures?format=csv` gives for the same milliseconds.
pub(crate) async fn csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<PeriodQuery>, QueryRejection>,
) -> ConsoleResult<Response> {
    let (_, f) = load(&state, &headers, q).await?;
    let name = format!(
        "attachment; filename=\"figures-{}-{}.csv\"",
        views::date_text(f.from),
        views::date_text(f.to)
    );
    let mut r = f.to_csv().into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    // The name holds only digits and dashes, so it is always a valid header value.
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

fn count_rows(prefix: &str, counts: &Counts) -> Vec<(String, String)> {
    counts
        .iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v.to_string()))
        .collect()
}

fn bars(counts: &Counts) -> Vec<(String, f64)> {
    counts.iter().map(|(k, v)| (k.clone(), *v as f64)).collect()
}

fn time_rows(what: &str, d: &Durations) -> Vec<(String, String)> {
    let t = |ms: Option<i64>| ms.map_or_else(|| "none".to_string(), duration_text);
    vec![
        (format!("{what}: measured"), d.count.to_string()),
        (format!("{what}: median"), t(d.median_ms)),
        (format!("{what}: 90th percentile"), t(d.p90_ms)),
    ]
}

fn row(what: &str, n: u64) -> (String, String) {
    (what.to_string(), n.to_string())
}

/// The page's view of the figures: every number of `Figures` in a table (the names follow
/// `docs/figures.md`), and charts of the distributions people compare.
pub(crate) fn view_of(f: &Figures, now_ms: i64) -> FiguresView {
    let section = |title: &str, rows: Vec<(String, String)>| FigureSection {
        title: title.to_string(),
        rows,
    };
    let mut scanning = vec![row("Items scanned", f.scanned.total)];
    scanning.extend(count_rows("Kind: ", &f.scanned.by_kind));
    let mut matching = vec![
        row("Items with a match", f.matched.items),
        row("Matches", f.matched.matches),
    ];
    matching.extend(count_rows("Source: ", &f.matched.by_source));
    matching.extend(count_rows("Bank: ", &f.matched.by_bank));
    matching.extend(count_rows("Classification: ", &f.matched.by_classification));
    matching.extend(count_rows("Signal type: ", &f.matched.by_signal_type));
    let mut cases = vec![
        row("Opened", f.cases.opened),
        row("Items added to open cases", f.cases.items_added),
    ];
    cases.extend(count_rows("Entered state: ", &f.cases.entered));
    cases.push(row("Approvals", f.cases.approvals));
    cases.push(row("Legal holds placed", f.cases.legal_holds_placed));
    let mut review = vec![
        row("Decided", f.review.decided),
        row("Confirmed", f.review.confirmed),
        row("False positive", f.review.false_positive),
        row("Other decisions", f.review.other),
    ];
    for (src, r) in &f.review.by_source {
        review.push((
            format!("Source {src}: false positives"),
            match r.false_positive_rate {
                Some(rate) => format!(
                    "{} of {} decided ({:.1}%)",
                    r.false_positive,
                    r.decided,
                    rate * 100.0
                ),
                None => "none decided".to_string(),
            },
        ));
    }
    let mut times = time_rows("Upload to action", &f.times.upload_to_action);
    times.extend(time_rows("Match to report", &f.times.match_to_report));

    let mut charts = vec![
        BarChart {
            key: "verdicts".into(),
            title: "Verdicts".into(),
            unit: "submissions".into(),
            bars: bars(&f.verdicts),
        },
        BarChart {
            key: "review".into(),
            title: "Review outcomes".into(),
            unit: "decisions".into(),
            bars: vec![
                ("Confirmed".into(), f.review.confirmed as f64),
                ("False positive".into(), f.review.false_positive as f64),
                ("Other".into(), f.review.other as f64),
            ],
        },
        BarChart {
            key: "sources".into(),
            title: "Matches by source".into(),
            unit: "matches".into(),
            bars: bars(&f.matched.by_source),
        },
    ];
    // Reports have one figure until filing to NCMEC and the NCA lands (issue 15); a chart
    // of one bar says nothing, so the state changes stand in for where cases went.
    charts.push(BarChart {
        key: "states".into(),
        title: "Cases by state entered".into(),
        unit: "state changes".into(),
        bars: bars(&f.cases.entered),
    });

    FiguresView {
        from_ms: f.from,
        to_ms: f.to,
        now_ms,
        sections: vec![
            section("Scanning", scanning),
            section("Matching", matching),
            section("Verdicts", count_rows("", &f.verdicts)),
            section("Cases", cases),
            section("Review", review),
            section(
                "Reports",
                vec![row("Cases reported", f.reports.reported_cases)],
            ),
            section("Times", times),
            section(
                "Contact safety",
                vec![
                    row("Account-risk reviews", f.contact_safety.risk_reviews),
                    row("URL matches", f.contact_safety.url_matches),
                ],
            ),
        ],
        charts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_is_there_and_review_counts_reach_the_chart() {
        let mut f = Figures {
            from: 0,
            to: 86_400_000,
            ..Figures::default()
        };
        f.review.decided = 3;
        f.review.confirmed = 2;
        f.review.false_positive = 1;
        f.verdicts.insert("block".into(), 3);
        let v = view_of(&f, 0);
        let titles: Vec<&str> = v.sections.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Scanning",
                "Matching",
                "Verdicts",
                "Cases",
                "Review",
                "Reports",
                "Times",
                "Contact safety"
            ]
        );
        let review = v.charts.iter().find(|c| c.key == "review").unwrap();
        assert_eq!(
            review.bars,
            vec![
                ("Confirmed".to_string(), 2.0),
                ("False positive".to_string(), 1.0),
                ("Other".to_string(), 0.0)
            ]
        );
        let times = &v.sections[6].rows;
        assert!(times.contains(&("Upload to action: median".into(), "none".into())));
    }
}
