//! Transparency figures: what Safeguard scanned, matched and did over a period, computed from
//! the store's records, never from counters.
//!
//! Counters drift (a restart loses them, two processes double them) and cannot answer for a
//! past period. Every figure here is recomputed from the rows that record the facts:
//! submissions (what was scanned, what matched, the verdict) by their `created_at`, and case
//! history lines (opened, decided, approved, reported) by their `at`. The same period always
//! gives the same figures, whenever it is asked, because a decision is kept on the history
//! line that made it (a case decided again later adds a line; it does not rewrite one).
//!
//! Definitions (also in `docs/figures.md`):
//! - A period is `from <= t < to`, Unix milliseconds.
//! - *Scanned*: submissions recorded in the period, by `kind` (image, video, other).
//!   Account-risk crossings are recorded as submissions of kind `account_risk`; they are
//!   counted under contact safety, not as scanned items.
//! - *Matches*: one per (submission, matching bank item), by the hash's source, the bank,
//!   the classification (`none` when unclassified) and the signal type.
//! - *Reviewed*: history lines moving a case into `decided` in the period; the decision's
//!   kind is [`DecisionKind`]. Per source: each decided case counts once for every source
//!   among its items' matches; the false-positive rate is false positives / decided.
//! - *Times*: nearest-rank median and 90th percentile, in milliseconds. Upload to action:
//!   from the platform's `created_at` of a submission to its recorded verdict, for verdicts
//!   other than `allow` (a platform clock ahead of ours counts as 0). Match to report: from
//!   the case's first matched submission to the line moving it into `reported`.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use safeguard_store::action::{CaseHistoryRow, StoredSubmission};
use safeguard_store::Store;

use crate::case::DecisionKind;
use crate::Error;

/// Rows read per store call while computing figures: large enough that the per-call
/// overhead is small, small enough that one page of submissions (each up to a few KiB of
/// JSON) stays a few MiB.
pub const PAGE: usize = 1_000;

/// The submission kind that records an account-risk crossing.
const KIND_ACCOUNT_RISK: &str = "account_risk";

/// A count per name, in name order (stable output for CSV and tests).
pub type Counts = BTreeMap<String, u64>;

/// Median and 90th percentile of a set of durations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Durations {
    /// How many durations.
    pub count: u64,
    /// Nearest-rank median, milliseconds; `None` without any.
    pub median_ms: Option<i64>,
    /// Nearest-rank 90th percentile, milliseconds.
    pub p90_ms: Option<i64>,
}

impl Durations {
    fn of(mut v: Vec<i64>) -> Durations {
        v.sort_unstable();
        Durations {
            count: v.len() as u64,
            median_ms: nearest_rank(&v, 50),
            p90_ms: nearest_rank(&v, 90),
        }
    }
}

/// The nearest-rank percentile `p` (1..=100) of sorted `v`: the value at rank ⌈p·n/100⌉.
pub fn nearest_rank(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    let rank = (u64::from(p) * n).div_ceil(100).max(1);
    // rank is in 1..=n because p <= 100.
    sorted.get(usize::try_from(rank - 1).ok()?).copied()
}

/// Review outcomes of one source.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SourceReview {
    /// Cases decided whose items matched this source.
    pub decided: u64,
    /// Of which confirmed.
    pub confirmed: u64,
    /// Of which false positives.
    pub false_positive: u64,
    /// false_positive / decided; `None` when nothing was decided.
    pub false_positive_rate: Option<f64>,
}

/// Scanning figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Scanned {
    /// Items scanned.
    pub total: u64,
    /// By kind.
    pub by_kind: Counts,
}

/// Matching figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Matched {
    /// Scanned items with at least one match.
    pub items: u64,
    /// Matches (one per item and bank entry).
    pub matches: u64,
    /// By the hash's source (`none` when the store knows none).
    pub by_source: Counts,
    /// By bank.
    pub by_bank: Counts,
    /// By classification (`none` when unclassified).
    pub by_classification: Counts,
    /// By signal type.
    pub by_signal_type: Counts,
}

/// Case figures: what was done.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cases {
    /// Cases opened.
    pub opened: u64,
    /// Items added to cases already open.
    pub items_added: u64,
    /// State changes by the state entered.
    pub entered: Counts,
    /// Approvals (two-person rule).
    pub approvals: u64,
    /// Legal holds placed.
    pub legal_holds_placed: u64,
}

/// Review figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Review {
    /// Cases decided.
    pub decided: u64,
    /// Of which confirmed.
    pub confirmed: u64,
    /// Of which false positives.
    pub false_positive: u64,
    /// Of which anything else.
    pub other: u64,
    /// Per match source.
    pub by_source: BTreeMap<String, SourceReview>,
}

/// Report figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reports {
    /// Cases moved into `reported`.
    pub reported_cases: u64,
}

/// Time figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Times {
    /// From the platform's upload time to Safeguard's verdict (verdicts other than allow).
    pub upload_to_action: Durations,
    /// From a case's first match to its report.
    pub match_to_report: Durations,
}

/// Contact-safety figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ContactSafety {
    /// Account-risk crossings routed to review.
    pub risk_reviews: u64,
    /// Matches against URL lists (submitted content only).
    pub url_matches: u64,
}

/// Every figure for one period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Period start, Unix milliseconds, inclusive.
    pub from: i64,
    /// Period end, Unix milliseconds, exclusive.
    pub to: i64,
    /// What was scanned.
    pub scanned: Scanned,
    /// What matched.
    pub matched: Matched,
    /// Verdicts, by verdict.
    pub verdicts: Counts,
    /// What was done to cases.
    pub cases: Cases,
    /// Review outcomes.
    pub review: Review,
    /// Reports.
    pub reports: Reports,
    /// Times.
    pub times: Times,
    /// Contact safety.
    pub contact_safety: ContactSafety,
}

/// What the figures need of a case beyond its history line: the sources of its items'
/// matches, and when its first matched item was recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFacts {
    /// Distinct sources among its items' matches.
    pub sources: Vec<String>,
    /// `created_at` of its first submission with a match, Unix milliseconds.
    pub first_match_at: Option<i64>,
}

impl CaseFacts {
    /// Facts from a case's submissions.
    pub fn of(submissions: &[StoredSubmission]) -> Result<CaseFacts, Error> {
        let mut facts = CaseFacts::default();
        for s in submissions {
            let result = parse(&s.result, "result", s)?;
            let matches = matches_of(&result);
            if !matches.is_empty() {
                facts.first_match_at = Some(
                    facts
                        .first_match_at
                        .map_or(s.created_at, |t| t.min(s.created_at)),
                );
            }
            for m in matches {
                let src = text(m, "source");
                if !facts.sources.contains(&src) {
                    facts.sources.push(src);
                }
            }
        }
        facts.sources.sort();
        Ok(facts)
    }
}

/// Accumulates figures from rows; feed it every submission and history line of the period.
#[derive(Debug, Default)]
pub struct FiguresBuilder {
    figures: Figures,
    upload_to_action: Vec<i64>,
    match_to_report: Vec<i64>,
}

impl FiguresBuilder {
    /// Figures for `from <= t < to`.
    pub fn new(from: i64, to: i64) -> FiguresBuilder {
        FiguresBuilder {
            figures: Figures {
                from,
                to,
                ..Figures::default()
            },
            ..FiguresBuilder::default()
        }
    }

    /// Counts one submission recorded in the period.
    pub fn add_submission(&mut self, s: &StoredSubmission) -> Result<(), Error> {
        let f = &mut self.figures;
        let context = parse(&s.context, "context", s)?;
        let result = parse(&s.result, "result", s)?;
        let kind = text(&context, "kind");
        if kind == KIND_ACCOUNT_RISK {
            f.contact_safety.risk_reviews += 1;
            return Ok(());
        }
        f.scanned.total += 1;
        bump(&mut f.scanned.by_kind, kind);
        bump(&mut f.verdicts, s.verdict.clone());
        let matches = matches_of(&result);
        if !matches.is_empty() {
            f.matched.items += 1;
        }
        for m in matches {
            f.matched.matches += 1;
            bump(&mut f.matched.by_source, text(m, "source"));
            bump(&mut f.matched.by_bank, text(m, "bank"));
            bump(&mut f.matched.by_classification, text(m, "classification"));
            let signal = text(m, "signal_type");
            if signal == "url" {
                f.contact_safety.url_matches += 1;
            }
            bump(&mut f.matched.by_signal_type, signal);
        }
        if s.verdict != "allow" {
            if let Some(uploaded_s) = context.get("created_at").and_then(Value::as_i64) {
                let uploaded_ms = uploaded_s.saturating_mul(1000);
                self.upload_to_action
                    .push(s.created_at.saturating_sub(uploaded_ms).max(0));
            }
        }
        Ok(())
    }

    /// Counts one history line written in the period; `facts` are its case's.
    pub fn add_history(&mut self, row: &CaseHistoryRow, facts: &CaseFacts) {
        let f = &mut self.figures;
        let h = &row.entry;
        match h.action.as_str() {
            "opened" => f.cases.opened += 1,
            "item_added" => f.cases.items_added += 1,
            "approved" => f.cases.approvals += 1,
            "legal_hold" if h.note.as_deref() == Some("placed") => f.cases.legal_holds_placed += 1,
            "state" => {
                let to = h.to_state.clone().unwrap_or_default();
                bump(&mut f.cases.entered, to.clone());
                if to == "decided" {
                    let kind = DecisionKind::of(h.decision.as_deref().unwrap_or(""));
                    f.review.decided += 1;
                    match kind {
                        DecisionKind::Confirmed => f.review.confirmed += 1,
                        DecisionKind::FalsePositive => f.review.false_positive += 1,
                        DecisionKind::Other => f.review.other += 1,
                    }
                    for src in &facts.sources {
                        let r = f.review.by_source.entry(src.clone()).or_default();
                        r.decided += 1;
                        match kind {
                            DecisionKind::Confirmed => r.confirmed += 1,
                            DecisionKind::FalsePositive => r.false_positive += 1,
                            DecisionKind::Other => {}
                        }
                    }
                } else if to == "reported" {
                    f.reports.reported_cases += 1;
                    if let Some(t) = facts.first_match_at {
                        self.match_to_report.push(h.at.saturating_sub(t).max(0));
                    }
                }
            }
            _ => {}
        }
    }

    /// The figures.
    pub fn finish(mut self) -> Figures {
        for r in self.figures.review.by_source.values_mut() {
            r.false_positive_rate =
                (r.decided > 0).then(|| r.false_positive as f64 / r.decided as f64);
        }
        self.figures.times.upload_to_action = Durations::of(self.upload_to_action);
        self.figures.times.match_to_report = Durations::of(self.match_to_report);
        self.figures
    }
}

/// Computes the figures of `from <= t < to` from `store`, reading it in pages.
pub fn compute(store: &dyn Store, from: i64, to: i64) -> Result<Figures, Error> {
    if from >= to {
        return Err(Error::Invalid(format!(
            "the period is empty: from ({from}) must be before to ({to})"
        )));
    }
    let mut b = FiguresBuilder::new(from, to);
    let mut after = None;
    loop {
        let page = store.submissions_between(from, to, after, PAGE)?;
        for s in &page {
            b.add_submission(s)?;
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some((last.created_at, last.id)),
            _ => break,
        }
    }
    // Facts are read only for cases with a decision or a report in the period, once each.
    let mut facts: HashMap<i64, CaseFacts> = HashMap::new();
    let mut after_id = 0;
    loop {
        let page = store.case_history_between(from, to, after_id, PAGE)?;
        for row in &page {
            let needs_facts = row.entry.action == "state"
                && matches!(row.entry.to_state.as_deref(), Some("decided" | "reported"));
            let f = if needs_facts {
                if let std::collections::hash_map::Entry::Vacant(slot) = facts.entry(row.case_id) {
                    let subs = store.case_submissions(row.case_id)?;
                    slot.insert(CaseFacts::of(&subs)?);
                }
                facts.get(&row.case_id).cloned().unwrap_or_default()
            } else {
                CaseFacts::default()
            };
            b.add_history(row, &f);
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after_id = last.id,
            _ => break,
        }
    }
    Ok(b.finish())
}

impl Figures {
    /// The figures as CSV rows `section,name,value` (with a header): one row per number, so
    /// a spreadsheet or a regulator's template can pick what it needs.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("section,name,value\n");
        let mut row = |section: &str, name: &str, value: String| {
            out.push_str(&csv_field(section));
            out.push(',');
            out.push_str(&csv_field(name));
            out.push(',');
            out.push_str(&value);
            out.push('\n');
        };
        row("period", "from", self.from.to_string());
        row("period", "to", self.to.to_string());
        row("scanned", "total", self.scanned.total.to_string());
        for (k, v) in &self.scanned.by_kind {
            row("scanned.by_kind", k, v.to_string());
        }
        row("matched", "items", self.matched.items.to_string());
        row("matched", "matches", self.matched.matches.to_string());
        for (section, counts) in [
            ("matched.by_source", &self.matched.by_source),
            ("matched.by_bank", &self.matched.by_bank),
            ("matched.by_classification", &self.matched.by_classification),
            ("matched.by_signal_type", &self.matched.by_signal_type),
            ("verdicts", &self.verdicts),
            ("cases.entered", &self.cases.entered),
        ] {
            for (k, v) in counts {
                row(section, k, v.to_string());
            }
        }
        row("cases", "opened", self.cases.opened.to_string());
        row("cases", "items_added", self.cases.items_added.to_string());
        row("cases", "approvals", self.cases.approvals.to_string());
        row(
            "cases",
            "legal_holds_placed",
            self.cases.legal_holds_placed.to_string(),
        );
        row("review", "decided", self.review.decided.to_string());
        row("review", "confirmed", self.review.confirmed.to_string());
        row(
            "review",
            "false_positive",
            self.review.false_positive.to_string(),
        );
        row("review", "other", self.review.other.to_string());
        for (src, r) in &self.review.by_source {
            let s = format!("review.by_source.{src}");
            row(&s, "decided", r.decided.to_string());
            row(&s, "confirmed", r.confirmed.to_string());
            row(&s, "false_positive", r.false_positive.to_string());
            row(
                &s,
                "false_positive_rate",
                r.false_positive_rate
                    .map(|x| format!("{x:.6}"))
                    .unwrap_or_default(),
            );
        }
        row(
            "reports",
            "reported_cases",
            self.reports.reported_cases.to_string(),
        );
        for (name, d) in [
            ("upload_to_action", &self.times.upload_to_action),
            ("match_to_report", &self.times.match_to_report),
        ] {
            let s = format!("times.{name}");
            row(&s, "count", d.count.to_string());
            row(&s, "median_ms", opt(d.median_ms));
            row(&s, "p90_ms", opt(d.p90_ms));
        }
        row(
            "contact_safety",
            "risk_reviews",
            self.contact_safety.risk_reviews.to_string(),
        );
        row(
            "contact_safety",
            "url_matches",
            self.contact_safety.url_matches.to_string(),
        );
        out
    }
}

fn opt(v: Option<i64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// Quotes a CSV field when it holds a comma, a quote or a line break (RFC 4180). Names come
/// from banks, sources and kinds, which an operator chose.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn bump(counts: &mut Counts, key: String) {
    *counts.entry(key).or_insert(0) += 1;
}

/// A string field, or `none` when absent or null.
fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "none".into(),
        Some(other) => other.to_string(),
    }
}

fn matches_of(result: &Value) -> &[Value] {
    result
        .get("matches")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn parse(json: &str, what: &str, s: &StoredSubmission) -> Result<Value, Error> {
    serde_json::from_str(json).map_err(|e| {
        Error::Store(safeguard_store::Error::Corrupt(format!(
            "submission {}: {what} is not JSON: {e}",
            s.id
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use safeguard_store::action::CaseHistory;

    fn sub(
        id: i64,
        kind: &str,
        verdict: &str,
        at: i64,
        uploaded_s: Option<i64>,
        matches: Value,
    ) -> StoredSubmission {
        StoredSubmission {
            id,
            platform_id: format!("p{id}"),
            fingerprint: String::new(),
            account: None,
            verdict: verdict.into(),
            rule: None,
            context: serde_json::json!({"kind": kind, "created_at": uploaded_s}).to_string(),
            result: serde_json::json!({"verdict": verdict, "matches": matches}).to_string(),
            case_id: None,
            event_ids: vec![],
            created_at: at,
        }
    }

    fn m(source: &str, bank: &str, class: Option<&str>, signal: &str) -> Value {
        serde_json::json!({"source": source, "bank": bank, "classification": class, "signal_type": signal})
    }

    fn line(
        id: i64,
        case_id: i64,
        at: i64,
        action: &str,
        to: Option<&str>,
        decision: Option<&str>,
        note: Option<&str>,
    ) -> CaseHistoryRow {
        CaseHistoryRow {
            id,
            case_id,
            entry: CaseHistory {
                at,
                actor: "k".into(),
                action: action.into(),
                from_state: None,
                to_state: to.map(str::to_owned),
                note: note.map(str::to_owned),
                decision: decision.map(str::to_owned),
            },
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(nearest_rank(&[], 50), None);
        assert_eq!(nearest_rank(&[7], 90), Some(7));
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(nearest_rank(&v, 50), Some(5));
        assert_eq!(nearest_rank(&v, 90), Some(9));
        assert_eq!(nearest_rank(&v, 100), Some(10));
        let v: Vec<i64> = (1..=11).collect();
        assert_eq!(nearest_rank(&v, 50), Some(6));
        assert_eq!(nearest_rank(&v, 90), Some(10));
    }

    #[test]
    fn every_figure_from_rows() {
        let mut b = FiguresBuilder::new(0, 1_000_000);
        let subs = [
            sub(1, "image", "allow", 10_000, Some(5), serde_json::json!([])),
            sub(
                2,
                "image",
                "block",
                20_000,
                Some(10),
                serde_json::json!([m("exchange:NCMEC", "NCMEC", Some("A1"), "pdq")]),
            ),
            sub(
                3,
                "video",
                "review",
                30_000,
                Some(40),
                serde_json::json!([
                    m("api", "OWN", None, "vpdq"),
                    m("exchange:NCMEC", "NCMEC", Some("B2"), "md5")
                ]),
            ),
            sub(
                4,
                "other",
                "hold",
                40_000,
                None,
                serde_json::json!([m("file:iwf", "IWF_URLS", None, "url")]),
            ),
            sub(
                5,
                "account_risk",
                "review",
                50_000,
                None,
                serde_json::json!(null),
            ),
        ];
        for s in &subs {
            b.add_submission(s).unwrap();
        }
        let ncmec = CaseFacts::of(&subs[1..2]).unwrap();
        assert_eq!(
            ncmec,
            CaseFacts {
                sources: vec!["exchange:NCMEC".into()],
                first_match_at: Some(20_000)
            }
        );
        let mixed = CaseFacts::of(&subs[2..3]).unwrap();
        assert_eq!(
            mixed.sources,
            vec!["api".to_string(), "exchange:NCMEC".to_string()]
        );
        let none = CaseFacts::default();
        b.add_history(
            &line(1, 1, 20_000, "opened", Some("open"), None, None),
            &none,
        );
        b.add_history(
            &line(2, 2, 30_000, "opened", Some("open"), None, None),
            &none,
        );
        b.add_history(&line(3, 2, 31_000, "item_added", None, None, None), &none);
        b.add_history(
            &line(
                4,
                1,
                60_000,
                "state",
                Some("decided"),
                Some("confirmed: A1"),
                None,
            ),
            &ncmec,
        );
        b.add_history(
            &line(
                5,
                2,
                61_000,
                "state",
                Some("decided"),
                Some("not_csam"),
                None,
            ),
            &mixed,
        );
        b.add_history(&line(6, 1, 62_000, "approved", None, None, None), &none);
        b.add_history(
            &line(7, 1, 80_000, "state", Some("reported"), None, None),
            &ncmec,
        );
        b.add_history(
            &line(8, 2, 81_000, "legal_hold", None, None, Some("placed")),
            &none,
        );
        b.add_history(
            &line(9, 2, 82_000, "legal_hold", None, None, Some("lifted")),
            &none,
        );
        let f = b.finish();
        let counts = |pairs: &[(&str, u64)]| -> Counts {
            pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        assert_eq!(f.scanned.total, 4);
        assert_eq!(
            f.scanned.by_kind,
            counts(&[("image", 2), ("video", 1), ("other", 1)])
        );
        assert_eq!(
            f.verdicts,
            counts(&[("allow", 1), ("block", 1), ("review", 1), ("hold", 1)])
        );
        assert_eq!((f.matched.items, f.matched.matches), (3, 4));
        assert_eq!(
            f.matched.by_source,
            counts(&[("exchange:NCMEC", 2), ("api", 1), ("file:iwf", 1)])
        );
        assert_eq!(
            f.matched.by_bank,
            counts(&[("NCMEC", 2), ("OWN", 1), ("IWF_URLS", 1)])
        );
        assert_eq!(
            f.matched.by_classification,
            counts(&[("A1", 1), ("B2", 1), ("none", 2)])
        );
        assert_eq!(
            f.matched.by_signal_type,
            counts(&[("pdq", 1), ("vpdq", 1), ("md5", 1), ("url", 1)])
        );
        assert_eq!(
            f.contact_safety,
            ContactSafety {
                risk_reviews: 1,
                url_matches: 1
            }
        );
        assert_eq!(
            (
                f.cases.opened,
                f.cases.items_added,
                f.cases.approvals,
                f.cases.legal_holds_placed
            ),
            (2, 1, 1, 1)
        );
        assert_eq!(f.cases.entered, counts(&[("decided", 2), ("reported", 1)]));
        assert_eq!(
            (
                f.review.decided,
                f.review.confirmed,
                f.review.false_positive,
                f.review.other
            ),
            (2, 1, 1, 0)
        );
        let n = &f.review.by_source["exchange:NCMEC"];
        assert_eq!(
            (
                n.decided,
                n.confirmed,
                n.false_positive,
                n.false_positive_rate
            ),
            (2, 1, 1, Some(0.5))
        );
        let a = &f.review.by_source["api"];
        assert_eq!(
            (
                a.decided,
                a.confirmed,
                a.false_positive,
                a.false_positive_rate
            ),
            (1, 0, 1, Some(1.0))
        );
        assert_eq!(f.reports.reported_cases, 1);
        // Upload to action: block 20,000 - 10,000 = 10,000; review 30,000 - 40,000 < 0 -> 0;
        // hold has no upload time; allow is not an action.
        assert_eq!(
            f.times.upload_to_action,
            Durations {
                count: 2,
                median_ms: Some(0),
                p90_ms: Some(10_000)
            }
        );
        assert_eq!(
            f.times.match_to_report,
            Durations {
                count: 1,
                median_ms: Some(60_000),
                p90_ms: Some(60_000)
            }
        );
        let csv = f.to_csv();
        assert!(csv.starts_with("section,name,value\n"));
        assert!(
            csv.contains("\nmatched.by_source,exchange:NCMEC,2\n"),
            "{csv}"
        );
        assert!(
            csv.contains("\nreview.by_source.api,false_positive_rate,1.000000\n"),
            "{csv}"
        );
        assert!(
            csv.contains("\ntimes.upload_to_action,p90_ms,10000\n"),
            "{csv}"
        );
        assert_eq!(
            csv.lines().count(),
            csv.lines().filter(|l| l.split(',').count() == 3).count()
        );
    }

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
