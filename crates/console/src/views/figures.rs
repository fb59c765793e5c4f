//! The figures page: the transparency figures of a period (`docs/figures.md`) for auditors
//! and leads, as tables and server-rendered SVG bar charts.
//!
//! The charts are plain SVG built here, not a script library: the CSP allows no inline
//! script or style and the console loads nothing from elsewhere, and an SVG made on the
//! server prints, archives and reads the same in every browser. Bar sizes are SVG geometry
//! attributes (allowed by `style-src 'self'`); colours come from classes in `console.css`.
//!
//! Periods are whole UTC days, `from` inclusive and `to` exclusive, as in the CLI
//! (`safeguard figures --to 2026-07-01` ends with the last millisecond of June 30), so the
//! page, its CSV and the API agree on the same dates.

use maud::{html, Markup};

use super::layout;
use super::Viewer;
use crate::time::utc_text;

/// One day, ms.
const DAY_MS: i64 = 86_400_000;
/// The longest period the page computes, days: a little over a year, enough for an annual
/// transparency report, short enough that one page view does not read the whole store.
pub const MAX_PERIOD_DAYS: i64 = 400;
/// The default period when none is asked for, days (today included).
pub const DEFAULT_PERIOD_DAYS: i64 = 30;

/// Chart geometry, in SVG user units (the SVG scales to its container).
const CHART_W: f64 = 640.0;
const LABEL_W: f64 = 200.0;
/// The largest bar's width; the rest of the row is left for its value.
const BAR_W: f64 = 340.0;
const ROW_H: f64 = 28.0;
const BAR_H: f64 = 18.0;
const PAD: f64 = 8.0;
/// Longer labels are cut (the full text stays in the row's tooltip and the description).
const MAX_LABEL_CHARS: usize = 28;
/// Bar colour classes `bar-0` .. `bar-5` in `console.css`, cycled.
const BAR_CLASSES: usize = 6;

/// A titled list of figures, shown as a table.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureSection {
    /// Heading ("Review").
    pub title: String,
    /// (what, value as text), in display order.
    pub rows: Vec<(String, String)>,
}

/// A horizontal bar chart.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    /// A short key for element ids ("verdicts"); characters other than `a-z0-9-` are dropped.
    pub key: String,
    /// Title ("Verdicts").
    pub title: String,
    /// What the values count ("submissions").
    pub unit: String,
    /// (label, value) in display order. Negative and non-finite values draw as 0.
    pub bars: Vec<(String, f64)>,
}

/// The figures page.
#[derive(Debug, Clone, PartialEq)]
pub struct FiguresView {
    /// Period start, ms, inclusive (a UTC midnight).
    pub from_ms: i64,
    /// Period end, ms, exclusive (a UTC midnight).
    pub to_ms: i64,
    /// Now, ms: the preset periods ("last 7 days") count back from today.
    pub now_ms: i64,
    /// The figures as tables.
    pub sections: Vec<FigureSection>,
    /// The charts.
    pub charts: Vec<BarChart>,
}

impl FiguresView {
    /// "2026-11-05 to 2026-12-04 (30 days)": the last day shown is the one before `to`,
    /// because people read "to" as inclusive.
    pub fn period_label(&self) -> String {
        let days = (self.to_ms - self.from_ms).div_euclid(DAY_MS);
        let last = date_text(self.to_ms - 1);
        format!(
            "{} to {} ({} day{})",
            date_text(self.from_ms),
            last,
            days,
            if days == 1 { "" } else { "s" }
        )
    }
}

/// `YYYY-MM-DD` of the UTC day containing `ms`.
pub fn date_text(ms: i64) -> String {
    let t = utc_text(ms);
    t.split(' ').next().unwrap_or_default().to_string()
}

/// Start of the UTC day containing `ms`.
fn day_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(DAY_MS)
}

/// UTC midnight of a `YYYY-MM-DD` date, ms; an error that says what is wrong otherwise.
pub fn parse_date(s: &str) -> Result<i64, String> {
    let shown: String = s.chars().take(20).collect();
    let bad = || format!("{shown:?} is not a date; use YYYY-MM-DD, for example 2026-07-01");
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y) && digits(m) && digits(d)) {
        return Err(bad());
    }
    let (y, m, d): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(format!("{shown:?}: month {m} is not 1 to 12")),
    };
    if d == 0 || d > days_in_month {
        return Err(format!("{shown:?}: day {d} is not in that month"));
    }
    Ok(days_from_civil(y, m, d) * DAY_MS)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A form field's text, or None when it was left empty.
fn given(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// The period asked for by the `from` and `to` fields (`YYYY-MM-DD`, empty or absent for the
/// default): `to` defaults to the end of today, `from` to [`DEFAULT_PERIOD_DAYS`] before `to`.
/// Errors say what to change.
pub fn parse_period(
    from: Option<&str>,
    to: Option<&str>,
    now_ms: i64,
) -> Result<(i64, i64), String> {
    let to_ms = match given(to) {
        Some(s) => parse_date(s).map_err(|e| format!("to: {e}"))?,
        None => day_start(now_ms) + DAY_MS,
    };
    let from_ms = match given(from) {
        Some(s) => parse_date(s).map_err(|e| format!("from: {e}"))?,
        None => to_ms - DEFAULT_PERIOD_DAYS * DAY_MS,
    };
    if from_ms >= to_ms {
        return Err(format!(
            "the period is empty: from ({}) must be before to ({}); to is the first day not included",
            date_text(from_ms),
            date_text(to_ms)
        ));
    }
    if to_ms - from_ms > MAX_PERIOD_DAYS * DAY_MS {
        return Err(format!(
            "the period is {} days; ask for at most {MAX_PERIOD_DAYS} days at a time (use the API or the CLI for longer ones)",
            (to_ms - from_ms) / DAY_MS
        ));
    }
    Ok((from_ms, to_ms))
}

/// The preset periods, (label, from, to), all ending with today.
fn presets(now_ms: i64) -> [(&'static str, i64, i64); 3] {
    let end = day_start(now_ms) + DAY_MS;
    let today = utc_text(now_ms);
    // utc_text is "YYYY-MM-DD HH:MM UTC"; the quarter starts on the first day of month 1, 4,
    // 7 or 10 of this year.
    let year = today.get(..4).unwrap_or("1970");
    let month: u32 = today.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    let q_month = month.saturating_sub(1) / 3 * 3 + 1;
    let quarter = parse_date(&format!("{year}-{q_month:02}-01")).unwrap_or(end - DAY_MS);
    [
        ("Last 7 days", end - 7 * DAY_MS, end),
        ("Last 30 days", end - 30 * DAY_MS, end),
        ("This quarter", quarter, end),
    ]
}

fn period_query(from_ms: i64, to_ms: i64) -> String {
    format!("from={}&to={}", date_text(from_ms), date_text(to_ms))
}

/// A value as text: whole numbers without decimals, others to two places.
fn value_text(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn drawn(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 {
        v
    } else {
        0.0
    }
}

fn chart_id(key: &str) -> String {
    let k: String = key
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
        .collect();
    format!("chart-{k}")
}

fn short_label(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        label.to_string()
    } else {
        let cut: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
        format!("{cut}…")
    }
}

/// SVG lengths with one decimal: enough for a screen, short in the page.
fn num(x: f64) -> String {
    format!("{x:.1}")
}

/// A horizontal bar chart as an accessible SVG in a `<figure>`: the largest value spans
/// the full bar width and the rest are in proportion; each bar carries its value as text.
/// With no bars, or only zeros, it shows a sentence saying there is nothing to chart instead
/// of an empty frame that could be read as "the chart failed".
pub fn bar_chart_svg(chart: &BarChart) -> Markup {
    let id = chart_id(&chart.key);
    let title_id = format!("{id}-title");
    let desc_id = format!("{id}-desc");
    let max = chart
        .bars
        .iter()
        .map(|(_, v)| drawn(*v))
        .fold(0.0, f64::max);
    let height = PAD * 2.0 + ROW_H * chart.bars.len() as f64;
    let desc = chart
        .bars
        .iter()
        .map(|(l, v)| format!("{l}: {}", value_text(drawn(*v))))
        .collect::<Vec<_>>()
        .join("; ");
    html! {
        figure.chart id=(id) {
            figcaption { (chart.title) " " span.chart-unit { "(" (chart.unit) ")" } }
            @if max <= 0.0 {
                p.chart-empty {
                    "Nothing to chart: no " (chart.unit) " were counted in this period."
                }
            } @else {
                svg.bar-chart xmlns="http://www.w3.org/2000/svg" role="img"
                    aria-labelledby=(format!("{title_id} {desc_id}"))
                    viewBox=(format!("0 0 {} {}", num(CHART_W), num(height)))
                    width=(num(CHART_W)) height=(num(height))
                    preserveAspectRatio="xMinYMin meet" {
                    title id=(title_id) { (chart.title) " (" (chart.unit) ")" }
                    desc id=(desc_id) { (desc) }
                    @for (i, (label, value)) in chart.bars.iter().enumerate() {
                        @let v = drawn(*value);
                        @let w = v / max * BAR_W;
                        @let y = PAD + ROW_H * i as f64;
                        @let text_y = y + BAR_H / 2.0 + 4.0;
                        g.bar-row {
                            title { (label) ": " (value_text(v)) }
                            text.bar-label x=(num(LABEL_W - 8.0)) y=(num(text_y)) text-anchor="end" {
                                (short_label(label))
                            }
                            rect class=(format!("bar bar-{}", i % BAR_CLASSES))
                                x=(num(LABEL_W)) y=(num(y)) width=(num(w)) height=(num(BAR_H))
                                data-value=(value_text(v)) {}
                            text.bar-value x=(num(LABEL_W + w + 6.0)) y=(num(text_y)) {
                                (value_text(v))
                            }
                        }
                    }
                    line.bar-axis x1=(num(LABEL_W)) y1=(num(PAD / 2.0)) x2=(num(LABEL_W))
                        y2=(num(height - PAD / 2.0)) {}
                }
            }
        }
    }
}

/// The figures page.
pub fn figures_page(viewer: &Viewer, v: &FiguresView) -> String {
    let query = period_query(v.from_ms, v.to_ms);
    let main = html! {
        h1 { "Figures" }
        section #figures-period {
            p #period-label { (v.period_label()) }
            p.hint {
                "Computed from the records when you open this page. Times are UTC; the "
                "period runs from the start of the first day to the start of the \"to\" day, "
                "as in " code { "safeguard figures" } " and " code { "GET /v1/figures" } "."
            }
            form #period method="get" action="/console/figures" {
                label for="from" { "From" }
                input #from type="date" name="from" value=(date_text(v.from_ms)) required;
                label for="to" { "To (not included)" }
                input #to type="date" name="to" value=(date_text(v.to_ms)) required;
                button type="submit" { "Show" }
            }
            ul.presets {
                @for (label, f, t) in presets(v.now_ms) {
                    li { a href=(format!("/console/figures?{}", period_query(f, t))) { (label) } }
                }
            }
            p { a #figures-csv href=(format!("/console/figures.csv?{query}")) download { "Download these figures as CSV" } }
        }
        section #figure-charts {
            h2 { "Charts" }
            @for c in &v.charts { (bar_chart_svg(c)) }
        }
        section #figure-tables {
            @for s in &v.sections {
                h2 { (s.title) }
                table.figure-table {
                    tbody {
                        @for (what, value) in &s.rows {
                            tr { th scope="row" { (what) } td { (value) } }
                        }
                    }
                }
            }
        }
    };
    layout("Figures", Some(viewer), &viewer.csrf, main)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::{Role, Roles};

    fn viewer() -> Viewer {
        Viewer {
            name: "ann".into(),
            roles: Roles::default().with(Role::Auditor),
            csrf: "tok".into(),
            flash: None,
            break_due: false,
        }
    }

    fn chart(bars: &[(&str, f64)]) -> BarChart {
        BarChart {
            key: "verdicts".into(),
            title: "Verdicts".into(),
            unit: "submissions".into(),
            bars: bars.iter().map(|(l, v)| (l.to_string(), *v)).collect(),
        }
    }

    /// Widths of the `rect.bar` elements, in order.
    fn widths(svg: &str) -> Vec<f64> {
        svg.split("<rect ")
            .skip(1)
            .map(|r| {
                let at = r.find(" width=\"").expect("a width") + 8;
                let len = r[at..].find('"').expect("closing quote");
                r[at..at + len].parse().expect("a number")
            })
            .collect()
    }

    #[test]
    fn bars_are_proportional_and_the_largest_is_full_width() {
        let svg = bar_chart_svg(&chart(&[("allow", 10.0), ("block", 40.0), ("hold", 20.0)]))
            .into_string();
        assert_eq!(widths(&svg), vec![BAR_W / 4.0, BAR_W, BAR_W / 2.0]);
        assert!(svg.contains("role=\"img\""), "{svg}");
        assert!(svg.contains("aria-labelledby=\"chart-verdicts-title chart-verdicts-desc\""));
        assert!(svg.contains("<title id=\"chart-verdicts-title\">Verdicts (submissions)</title>"));
        assert!(
            svg.contains("<desc id=\"chart-verdicts-desc\">allow: 10; block: 40; hold: 20</desc>")
        );
        assert!(svg.contains(">40</text>"), "{svg}");
        assert!(!svg.contains("chart-empty"));
    }

    #[test]
    fn negative_and_non_finite_values_draw_as_zero() {
        let svg = bar_chart_svg(&chart(&[("a", -5.0), ("b", f64::NAN), ("c", 2.5)])).into_string();
        assert_eq!(widths(&svg), vec![0.0, 0.0, BAR_W]);
        assert!(svg.contains(">2.50</text>"), "{svg}");
    }

    #[test]
    fn empty_and_zero_data_explain_themselves() {
        for c in [chart(&[]), chart(&[("allow", 0.0), ("block", 0.0)])] {
            let html = bar_chart_svg(&c).into_string();
            assert!(!html.contains("<svg"), "{html}");
            assert!(html.contains("class=\"chart-empty\""), "{html}");
            assert!(html.contains("no submissions were counted"), "{html}");
        }
    }

    #[test]
    fn labels_and_titles_are_escaped_and_long_labels_cut() {
        let hostile = "<script>alert(1)</script>\"'&";
        let mut c = chart(&[(hostile, 1.0), (&"x".repeat(60), 2.0)]);
        c.title = hostile.into();
        c.key = "a\"><b".into();
        let svg = bar_chart_svg(&c).into_string();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"), "{svg}");
        assert!(svg.contains("id=\"chart-ab\""), "{svg}");
        assert!(svg.contains(&format!(">{}…</text>", "x".repeat(MAX_LABEL_CHARS - 1))));
    }

    fn view() -> FiguresView {
        FiguresView {
            from_ms: parse_date("2026-11-05").unwrap(),
            to_ms: parse_date("2026-12-05").unwrap(),
            now_ms: parse_date("2026-12-04").unwrap() + 3_600_000,
            sections: vec![FigureSection {
                title: "Review".into(),
                rows: vec![("Decided".into(), "3".into()), ("<b>".into(), "&".into())],
            }],
            charts: vec![
                chart(&[("block", 3.0)]),
                BarChart {
                    key: "review".into(),
                    title: "Review outcomes".into(),
                    unit: "cases".into(),
                    bars: vec![],
                },
            ],
        }
    }

    #[test]
    fn the_page_has_the_period_form_presets_csv_link_and_no_style_attribute() {
        let html = figures_page(&viewer(), &view());
        assert!(!html.contains(" style="), "{html}");
        assert!(
            html.contains("2026-11-05 to 2026-12-04 (30 days)"),
            "{html}"
        );
        assert!(html.contains("action=\"/console/figures\""));
        assert!(
            html.contains("name=\"from\" value=\"2026-11-05\""),
            "{html}"
        );
        assert!(html.contains("name=\"to\" value=\"2026-12-05\""), "{html}");
        assert!(html.contains("href=\"/console/figures.csv?from=2026-11-05&amp;to=2026-12-05\""));
        assert!(html.contains("href=\"/console/figures?from=2026-11-28&amp;to=2026-12-05\""));
        assert!(html.contains("href=\"/console/figures?from=2026-10-01&amp;to=2026-12-05\""));
        assert!(html.contains("<th scope=\"row\">Decided</th><td>3</td>"));
        assert!(html.contains("<th scope=\"row\">&lt;b&gt;</th><td>&amp;</td>"));
        assert!(html.contains("<svg"));
        assert!(html.contains("chart-empty"));
        assert!(
            html.contains("href=\"/console/figures\""),
            "the nav links the page"
        );
    }

    #[test]
    fn periods_parse_default_and_refuse_bad_input() {
        let now = parse_date("2026-12-04").unwrap() + 5_000;
        let end = parse_date("2026-12-05").unwrap();
        assert_eq!(parse_period(None, None, now), Ok((end - 30 * DAY_MS, end)));
        assert_eq!(
            parse_period(Some(""), Some(" "), now),
            Ok((end - 30 * DAY_MS, end))
        );
        assert_eq!(
            parse_period(Some("2026-01-01"), Some("2026-07-01"), now),
            Ok((1_767_225_600_000, 1_782_864_000_000))
        );
        assert_eq!(parse_date("2024-02-29"), Ok(1_709_164_800_000));
        for (f, t) in [
            ("2026-12-01", "2026-12-01"),
            ("2026-12-02", "2026-12-01"),
            ("2024-01-01", "2026-01-01"),
            ("2026-13-01", "2026-12-01"),
            ("2026-02-30", "2026-12-01"),
            ("yesterday", "2026-12-01"),
            ("2026-1-1", "2026-12-01"),
            ("+026-01-01", "2026-12-01"),
            ("2026-01-01", "<script>"),
        ] {
            let e = parse_period(Some(f), Some(t), now).unwrap_err();
            assert!(!e.is_empty());
        }
        assert!(parse_period(Some("2025-01-01"), Some("2026-01-01"), now).is_ok());
        assert!(parse_period(Some("2025-01-01"), Some("2026-02-06"), now)
            .unwrap_err()
            .contains("at most 400 days"));
    }

    #[test]
    fn the_quarter_starts_on_its_first_month() {
        let jan = parse_date("2026-01-01").unwrap();
        let p = presets(jan + 1000);
        assert_eq!(p[2].1, jan);
        let nov = parse_date("2026-11-30").unwrap();
        assert_eq!(presets(nov)[2].1, parse_date("2026-10-01").unwrap());
    }
}
