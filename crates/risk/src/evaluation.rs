//! Measuring the scorer on a labelled stream: precision, recall and F0.5 at the `review` and
//! `alert` thresholds, and the rate of alerts on benign accounts.
//!
//! An account counts as flagged at a threshold when any of its crossings during the stream
//! reached that level. Only the scripts' main accounts are judged (one label each); the
//! other accounts in the stream (the minors, the peers) are context.

use std::collections::HashMap;

use serde::Serialize;

use crate::account::Level;
use crate::scorer::Scorer;
use crate::synth::{Dataset, ScriptKind};

/// Counts and ratios at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Metrics {
    /// Risky accounts flagged.
    pub true_positives: usize,
    /// Benign accounts flagged.
    pub false_positives: usize,
    /// Risky accounts not flagged.
    pub false_negatives: usize,
    /// Benign accounts not flagged.
    pub true_negatives: usize,
    /// TP / (TP + FP); 0 when nothing was flagged.
    pub precision: f64,
    /// TP / (TP + FN).
    pub recall: f64,
    /// F-beta with beta 0.5 (precision weighted over recall, as in PAN-12's task).
    pub f05: f64,
}

impl Metrics {
    fn from_counts(tp: usize, fp: usize, fn_: usize, tn: usize) -> Metrics {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(tp, tp + fp);
        let recall = ratio(tp, tp + fn_);
        let f05 = if precision + recall == 0.0 {
            0.0
        } else {
            1.25 * precision * recall / (0.25 * precision + recall)
        };
        Metrics {
            true_positives: tp,
            false_positives: fp,
            false_negatives: fn_,
            true_negatives: tn,
            precision,
            recall,
            f05,
        }
    }
}

/// How one script kind fared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ByScript {
    /// The script.
    pub script: ScriptKind,
    /// Its accounts.
    pub accounts: usize,
    /// Of those, flagged at `review` or above.
    pub review: usize,
    /// Of those, flagged at `alert`.
    pub alert: usize,
}

/// The evaluation of one stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Events scored.
    pub events: usize,
    /// Labelled accounts, risky and benign.
    pub risky: usize,
    /// See `risky`.
    pub benign: usize,
    /// At the `review` threshold.
    pub review: Metrics,
    /// At the `alert` threshold.
    pub alert: Metrics,
    /// Benign accounts alerted on, over benign accounts.
    pub false_alert_rate: f64,
    /// Per script kind.
    pub by_script: Vec<ByScript>,
}

/// Scores `data` in order with `scorer` and measures the outcome.
pub fn evaluate(scorer: &mut Scorer, data: &Dataset) -> Report {
    evaluate_with(scorer, data, &[])
}

/// [`evaluate`], with the semantic model's flags: `flags[i]` for `data.events[i]` (missing
/// entries are false), passed to [`Scorer::observe_with`].
pub fn evaluate_with(scorer: &mut Scorer, data: &Dataset, flags: &[bool]) -> Report {
    let mut reached: HashMap<&str, Level> = HashMap::new();
    for (i, e) in data.events.iter().enumerate() {
        let flag = flags.get(i).copied().unwrap_or(false);
        if let Some(c) = scorer.observe_with(e, flag).crossing {
            let subject = e.subject();
            let l = reached.entry(subject).or_default();
            *l = (*l).max(c.level);
        }
    }
    let level_of = |a: &str| reached.get(a).copied().unwrap_or_default();
    let counts = |min: Level| {
        let (mut tp, mut fp, mut fn_, mut tn) = (0, 0, 0, 0);
        for l in &data.labels {
            match (l.risky, level_of(&l.account) >= min) {
                (true, true) => tp += 1,
                (true, false) => fn_ += 1,
                (false, true) => fp += 1,
                (false, false) => tn += 1,
            }
        }
        Metrics::from_counts(tp, fp, fn_, tn)
    };
    let review = counts(Level::Review);
    let alert = counts(Level::Alert);
    let risky = data.labels.iter().filter(|l| l.risky).count();
    let benign = data.labels.len() - risky;
    let by_script = ScriptKind::ALL
        .iter()
        .map(|&script| {
            let ls: Vec<_> = data.labels.iter().filter(|l| l.script == script).collect();
            ByScript {
                script,
                accounts: ls.len(),
                review: ls
                    .iter()
                    .filter(|l| level_of(&l.account) >= Level::Review)
                    .count(),
                alert: ls
                    .iter()
                    .filter(|l| level_of(&l.account) >= Level::Alert)
                    .count(),
            }
        })
        .filter(|b| b.accounts > 0)
        .collect();
    Report {
        events: data.events.len(),
        risky,
        benign,
        review,
        alert,
        false_alert_rate: if benign == 0 {
            0.0
        } else {
            alert.false_positives as f64 / benign as f64
        },
        by_script,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{generate, SynthSpec};

    #[test]
    fn metrics_follow_their_definitions() {
        let m = Metrics::from_counts(8, 2, 2, 88);
        assert!((m.precision - 0.8).abs() < 1e-12);
        assert!((m.recall - 0.8).abs() < 1e-12);
        assert!((m.f05 - 0.8).abs() < 1e-12);
        let m = Metrics::from_counts(0, 0, 5, 5);
        assert_eq!((m.precision, m.recall, m.f05), (0.0, 0.0, 0.0));
        // F0.5 favours precision: P=1, R=0.5 scores above P=0.5, R=1.
        let a = Metrics::from_counts(5, 0, 5, 0).f05;
        let b = Metrics::from_counts(10, 10, 0, 0).f05;
        assert!(a > b, "{a} {b}");
    }

    #[test]
    fn the_default_scorer_separates_the_synthetic_scripts() {
        let data = generate(&SynthSpec {
            risky: 80,
            benign: 400,
            ..SynthSpec::default()
        });
        let mut scorer = Scorer::with_defaults();
        let r = evaluate(&mut scorer, &data);
        assert_eq!(r.risky, 80);
        assert_eq!(r.benign, 400);
        // Floors well under the figures recorded in docs/child-safety.md, so that a change
        // that breaks a feature fails here rather than only moving the documented numbers.
        assert!(r.review.precision >= 0.7, "{r:#?}");
        assert!(r.review.recall >= 0.6, "{r:#?}");
        assert!(r.false_alert_rate <= 0.05, "{r:#?}");
        let adults = r
            .by_script
            .iter()
            .find(|b| b.script == ScriptKind::AdultPeers);
        assert_eq!(
            adults.map(|b| b.review),
            Some(0),
            "adults among themselves never flag"
        );
    }
}
