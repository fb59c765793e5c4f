//! The console's figures page over a real socket: who may see it, the period picker's
//! errors, a decision made through the API showing up in the page's numbers and chart, and
//! the CSV download matching `GET /v1/figures?format=csv` for the same period.

use crate::common;
use crate::common::console::{enrol, image_case, login, start};
use reqwest::StatusCode;

/// The text of the `<desc>` of the chart with `key`.
fn chart_desc(body: &str, key: &str) -> String {
    let open = format!("<desc id=\"chart-{key}-desc\">");
    let at = body
        .find(&open)
        .unwrap_or_else(|| panic!("no chart {key} in {body}"))
        + open.len();
    let len = body[at..].find("</desc>").expect("closing desc");
    body[at..at + len].to_string()
}

/// The page's default period as dates: 30 days ending with today.
fn default_period() -> (String, String) {
    let now = safeguard_engine::now_ms();
    let end = now - now.rem_euclid(86_400_000) + 86_400_000;
    (
        safeguard_console::views::date_text(end - 30 * 86_400_000),
        safeguard_console::views::date_text(end),
    )
}

/// `YYYY-MM-DD` to UTC midnight, ms.
fn ms(date: &str) -> i64 {
    safeguard_console::views::parse_date(date).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditors_see_the_figures_of_a_decision_and_download_the_same_csv_as_the_api() {
    let cs = start(common::console::config()).await;
    let (case, _) = image_case(&cs.s, "acct-figures").await;
    cs.s.confirm_case(case).await;

    let mut auditor = enrol(&cs, "audrey", "auditor").await;
    let mut a = login(&cs, &mut auditor).await;
    let home = a.get("/console").await;
    assert!(
        home.body.contains("href=\"/console/figures\""),
        "auditors get the nav link"
    );

    // The default period (the last 30 days, today included) holds everything just done.
    let p = a.get("/console/figures").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let csp = p
        .headers
        .get("content-security-policy")
        .expect("a CSP")
        .to_str()
        .unwrap();
    assert!(csp.contains("style-src 'self'"), "{csp}");
    assert!(!p.body.contains(" style="), "no inline style");
    assert!(p.body.contains("<svg"), "{}", p.body);
    assert!(p.body.contains("role=\"img\""));
    assert_eq!(
        chart_desc(&p.body, "review"),
        "Confirmed: 1; False positive: 0; Other: 0"
    );
    // Both images matched the same bank, so they share one verdict.
    let verdicts = chart_desc(&p.body, "verdicts");
    assert!(
        verdicts.ends_with(": 2") && !verdicts.contains(';'),
        "{verdicts}"
    );
    assert!(
        p.body.contains("<th scope=\"row\">Decided</th><td>1</td>"),
        "{}",
        p.body
    );
    let (from, to) = default_period();
    let api =
        cs.s.admin(
            "GET",
            &format!("/v1/figures?from={}&to={}", ms(&from), ms(&to)),
            None,
        )
        .await
        .json();
    assert_eq!(api["review"]["decided"], 1);
    assert!(p.body.contains(&format!(
        "<th scope=\"row\">Items scanned</th><td>{}</td>",
        api["scanned"]["total"]
    )));
    assert!(p.body.contains(&format!("name=\"from\" value=\"{from}\"")));
    assert!(p.body.contains(&format!("name=\"to\" value=\"{to}\"")));

    // A period before any of it: zeros, and charts that say so.
    let p = a
        .get("/console/figures?from=2020-01-01&to=2020-02-01")
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("2020-01-01 to 2020-01-31 (31 days)"));
    assert!(p.body.contains("<th scope=\"row\">Decided</th><td>0</td>"));
    assert!(p.body.contains("class=\"chart-empty\""));
    assert!(!p.body.contains("<svg"));

    // Bad periods: a clear 400 page, never a 500.
    for bad in [
        "/console/figures?from=2026-12-02&to=2026-12-01",
        "/console/figures?from=2026-12-01&to=2026-12-01",
        "/console/figures?from=2020-01-01&to=2026-01-01",
        "/console/figures?from=yesterday",
        "/console/figures?from=2026-02-30&to=2026-03-01",
        "/console/figures.csv?from=2026-12-02&to=2026-12-01",
    ] {
        let r = a.get(bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert_eq!(r.headers["x-error-code"], "invalid_request", "{bad}");
        assert!(r.body.contains("Error 400"), "{bad}: {}", r.body);
    }
    let r = a
        .get("/console/figures?from=2020-01-01&to=2026-01-01")
        .await;
    assert!(r.body.contains("at most 400 days"), "{}", r.body);

    // The CSV of a dated period is the API's CSV of the same milliseconds.
    let (from, to) = default_period();
    let r = a
        .get(&format!("/console/figures.csv?from={from}&to={to}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        r.headers["content-disposition"],
        format!("attachment; filename=\"figures-{from}-{to}.csv\"").as_str()
    );
    let api =
        cs.s.admin(
            "GET",
            &format!("/v1/figures?from={}&to={}&format=csv", ms(&from), ms(&to)),
            None,
        )
        .await;
    assert_eq!(api.status, StatusCode::OK, "{}", api.text());
    assert_eq!(r.body, api.text());
    assert!(r.body.contains("\nreview,confirmed,1\n"), "{}", r.body);
    // The page links to that CSV for its own period.
    let p = a
        .get(&format!("/console/figures?from={from}&to={to}"))
        .await;
    assert!(p.body.contains(&format!(
        "href=\"/console/figures.csv?from={from}&amp;to={to}\""
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewers_are_refused_and_leads_are_let_in() {
    let cs = start(common::console::config()).await;
    let mut reviewer = enrol(&cs, "rita", "reviewer").await;
    let mut r = login(&cs, &mut reviewer).await;
    let home = r.get("/console").await;
    assert!(!home.body.contains("href=\"/console/figures\""));
    for path in ["/console/figures", "/console/figures.csv"] {
        let p = r.get(path).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{path}: {}", p.body);
        assert_eq!(p.headers["x-error-code"], "forbidden");
    }
    let mut senior = enrol(&cs, "sam", "senior").await;
    let mut s = login(&cs, &mut senior).await;
    let p = s.get("/console/figures").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    // Signed out: to the login page, as every console page.
    let mut anon = common::console::Client::new(&cs.base);
    let p = anon.get("/console/figures").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location(), Some("/console/login"));
}
