//! The compiled bitset evaluation agrees with a reference evaluator that reads the rules
//! plainly, one rule and one match at a time, on random policies and items.

use proptest::prelude::*;
use proptest::sample::select;

use safeguard_policy::{
    AccountAge, Classification, Decision, ItemFacts, Kind, MatchFacts, Mode, Policy, Priority,
    Rule, RuleRef, RuleSpec, ShadowHit, Surface, Then, Verdict, VpdqShares, When,
};

use crate::common::M;

/// The semantics of docs/policy.md, written as directly as possible.
fn reference(rules: &[Rule], item: &ItemFacts, ms: &[MatchFacts<'_>]) -> Decision {
    if ms.is_empty() {
        return Decision {
            verdict: Verdict::Allow,
            rule: None,
            queue: None,
            priority: Priority::Normal,
            report_candidate: false,
            labels: vec![],
            matched: vec![],
            shadow: vec![],
        };
    }
    fn any<T>(list: &Option<Vec<T>>, pred: impl Fn(&T) -> bool) -> bool {
        match list {
            None => true,
            Some(l) => l.iter().any(pred),
        }
    }
    fn match_ok(w: &When, m: &MatchFacts<'_>) -> bool {
        any(&w.banks, |b| b == m.bank)
            && any(&w.bank_kinds, |k| k == m.bank_kind)
            && any(&w.bank_tags, |t| m.bank_tags.contains(t))
            && any(&w.classifications, |c| m.classification == Some(*c))
            && any(&w.signal_types, |s| s == m.signal_type)
            && w.max_distance
                .is_none_or(|max| m.distance.is_some_and(|d| d <= max as f64))
            && w.vpdq_min_query_share
                .is_none_or(|min| m.vpdq.is_some_and(|v| v.query >= min))
            && w.vpdq_min_compared_share
                .is_none_or(|min| m.vpdq.is_some_and(|v| v.compared >= min))
            && any(&w.sources, |p| {
                m.sources.iter().any(|s| match p.strip_suffix('*') {
                    Some(prefix) => s.starts_with(prefix),
                    None => s == p,
                })
            })
    }
    fn item_ok(w: &When, item: &ItemFacts) -> bool {
        any(&w.surfaces, |s| item.surface == Some(*s))
            && any(&w.account_ages, |a| item.account_age == *a)
            && any(&w.kinds, |k| item.kind == *k)
    }
    let outcome = |t: &Then| {
        let queue = match (&t.queue, t.verdict) {
            (Some(q), _) => Some(q.clone()),
            (None, Verdict::Allow) => None,
            (None, _) => Some("default".to_string()),
        };
        (
            t.verdict,
            queue,
            t.priority.unwrap_or(Priority::Normal),
            t.report_candidate.unwrap_or(false),
            t.labels.clone(),
        )
    };
    let mut decided: Option<Decision> = None;
    let mut shadow = Vec::new();
    for r in rules {
        let w = &r.spec.when;
        let matched: Vec<usize> = (0..ms.len())
            .filter(|&i| item_ok(w, item) && match_ok(w, &ms[i]))
            .collect();
        if matched.is_empty() {
            continue;
        }
        let (verdict, queue, priority, report_candidate, labels) = outcome(&r.spec.then);
        let rule = RuleRef {
            id: r.spec.id.clone(),
            version: r.version,
        };
        match r.spec.mode {
            Mode::Shadow => shadow.push(ShadowHit {
                rule,
                verdict,
                queue,
                priority,
                report_candidate,
                labels,
            }),
            Mode::Enforce if decided.is_none() => {
                decided = Some(Decision {
                    verdict,
                    rule: Some(rule),
                    queue,
                    priority,
                    report_candidate,
                    labels,
                    matched,
                    shadow: vec![],
                })
            }
            Mode::Enforce => {}
        }
    }
    let mut d = decided.unwrap_or_else(|| {
        let csam: Vec<usize> = (0..ms.len())
            .filter(|&i| ms[i].bank_kind == "csam")
            .collect();
        let (id, verdict, queue, priority, rc, matched) = if csam.is_empty() {
            (
                "builtin.match",
                Verdict::Review,
                "default",
                Priority::Normal,
                false,
                (0..ms.len()).collect(),
            )
        } else {
            (
                "builtin.csam",
                Verdict::Block,
                "csam",
                Priority::High,
                true,
                csam,
            )
        };
        Decision {
            verdict,
            rule: Some(RuleRef {
                id: id.into(),
                version: 1,
            }),
            queue: Some(queue.into()),
            priority,
            report_candidate: rc,
            labels: vec![],
            matched,
            shadow: vec![],
        }
    });
    d.shadow = shadow;
    d
}

fn list<T: Clone + std::fmt::Debug + 'static>(
    pool: &'static [T],
) -> impl Strategy<Value = Option<Vec<T>>> {
    prop::option::weighted(0.3, prop::collection::vec(select(pool), 1..3))
}

const BANKS: &[&str] = &["A", "B", "C"];
const KINDS: &[&str] = &["csam", "standard"];
const TAGS: &[&str] = &["t1", "t2", "t3"];
const SIGNALS: &[&str] = &["pdq", "md5", "vpdq"];
const RULE_SOURCES: &[&str] = &["ncmec", "file:*", "iwf", "*", "exchange:x", "exchange:*"];
const MATCH_SOURCES: &[&str] = &[
    "ncmec",
    "file:a",
    "file:",
    "iwf",
    "exchange:x",
    "exchange:y",
    "own",
];

fn strings(v: Option<Vec<&'static str>>) -> Option<Vec<String>> {
    v.map(|v| v.into_iter().map(String::from).collect())
}

fn when() -> impl Strategy<Value = When> {
    (
        (
            list(BANKS),
            list(KINDS),
            list(TAGS),
            list(Classification::ALL),
            list(SIGNALS),
        ),
        (
            prop::option::weighted(0.2, 0u32..40),
            prop::option::weighted(0.2, 0u32..=100),
            prop::option::weighted(0.2, 0u32..=100),
            list(RULE_SOURCES),
        ),
        (list(Surface::ALL), list(AccountAge::ALL), list(Kind::ALL)),
    )
        .prop_map(|((b, k, t, c, s), (md, q, cm, src), (su, ag, ki))| {
            // Validation refuses a distance bound together with share bounds.
            let (q, cm) = if md.is_some() { (None, None) } else { (q, cm) };
            When {
                banks: strings(b),
                bank_kinds: strings(k),
                bank_tags: strings(t),
                classifications: c,
                signal_types: strings(s),
                max_distance: md,
                vpdq_min_query_share: q.map(f64::from),
                vpdq_min_compared_share: cm.map(f64::from),
                sources: strings(src),
                surfaces: su,
                account_ages: ag,
                kinds: ki,
            }
        })
}

fn then() -> impl Strategy<Value = Then> {
    (
        select(Verdict::ALL),
        prop::option::of(select(&["q1", "q2"][..])),
        prop::option::of(select(Priority::ALL)),
        prop::option::of(any::<bool>()),
        prop::collection::vec(select(&["l1", "l2"][..]), 0..2),
    )
        .prop_map(|(verdict, queue, priority, rc, labels)| {
            let allow = verdict == Verdict::Allow;
            Then {
                verdict,
                // An allow carries no queue, priority or report flag (validation).
                queue: queue.filter(|_| !allow).map(String::from),
                priority: priority.filter(|_| !allow),
                report_candidate: rc.filter(|rc| !(allow && *rc)),
                labels: labels.into_iter().map(String::from).collect(),
            }
        })
}

fn rules() -> impl Strategy<Value = Vec<Rule>> {
    prop::collection::vec((when(), then(), prop::bool::weighted(0.25), 0u32..5), 0..12).prop_map(
        |v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (when, then, shadow, version))| {
                    let spec = RuleSpec {
                        id: format!("r{i}"),
                        description: None,
                        mode: if shadow { Mode::Shadow } else { Mode::Enforce },
                        when,
                        then,
                    };
                    Rule::new(spec, version)
                })
                .collect()
        },
    )
}

fn a_match() -> impl Strategy<Value = M> {
    (
        (
            select(BANKS),
            select(KINDS),
            prop::collection::vec(select(TAGS), 0..3),
        ),
        (
            prop::option::of(select(Classification::ALL)),
            select(SIGNALS),
        ),
        (
            prop::option::of(0u32..50),
            prop::option::of((0u32..=100, 0u32..=100)),
            prop::collection::vec(select(MATCH_SOURCES), 0..3),
        ),
    )
        .prop_map(
            |((bank, kind, tags), (class, signal), (dist, shares, sources))| M {
                bank: bank.into(),
                bank_kind: kind.into(),
                tags: tags.into_iter().map(String::from).collect(),
                classification: class,
                signal_type: signal.into(),
                distance: dist.map(f64::from),
                vpdq: shares.map(|(q, c)| VpdqShares {
                    query: f64::from(q),
                    compared: f64::from(c),
                }),
                sources: sources.into_iter().map(String::from).collect(),
            },
        )
}

fn an_item() -> impl Strategy<Value = ItemFacts> {
    (
        select(Kind::ALL),
        prop::option::of(select(Surface::ALL)),
        select(AccountAge::ALL),
    )
        .prop_map(|(kind, surface, account_age)| ItemFacts {
            kind,
            surface,
            account_age,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn compiled_agrees_with_reference(
        rules in rules(),
        item in an_item(),
        ms in prop::collection::vec(a_match(), 0..12),
    ) {
        let policy = Policy::compile(rules.clone()).unwrap();
        let facts: Vec<MatchFacts<'_>> = ms.iter().map(M::facts).collect();
        prop_assert_eq!(policy.evaluate(&item, &facts), reference(&rules, &item, &facts));
    }
}
