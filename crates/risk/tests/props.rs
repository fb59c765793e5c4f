//! Properties of the scorer over random event streams: it never panics, the table and the
//! bytes stay within their bounds, every score is the sum of its contributions, each
//! contribution is within its weight, and a level is crossed at most once per cooldown.

use proptest::prelude::*;
use safeguard_risk::{AgeBand, Channel, Event, EventKind, Level, PatternSet, RiskSpec, Scorer};

const PHRASES: &[&str] = &[
    "hi",
    "how old are you",
    "our secret",
    "s3nd m3 a s3lfie",
    "ｍｅｅｔ ｕｐ",
    "add me on snap",
    "",
    "🙂🙂",
];

fn band(i: u8) -> Option<AgeBand> {
    match i % 6 {
        0 => None,
        1 => Some(AgeBand::Under13),
        2 => Some(AgeBand::From13To15),
        3 => Some(AgeBand::From16To17),
        4 => Some(AgeBand::Adult),
        _ => Some(AgeBand::Unknown),
    }
}

prop_compose! {
    fn event()(
        kind in 0usize..8,
        actor in 0u8..24,
        target in 0u8..24,
        dt in 0u64..7200,
        ages in (any::<u8>(), any::<u8>()),
        connected in 0u8..3,
        channel in 0u8..3,
        text in proptest::option::of(0usize..8),
    ) -> (Event, u64) {
        let kind = EventKind::ALL[kind];
        let target = if target == actor { target.wrapping_add(1) % 25 } else { target };
        let e = Event {
            id: Some(format!("e{actor}-{target}-{dt}")),
            kind,
            actor: format!("a{actor}"),
            target: format!("a{target}"),
            timestamp: 0,
            actor_age: band(ages.0),
            target_age: band(ages.1),
            connected: [None, Some(false), Some(true)][connected as usize],
            channel: [None, Some(Channel::Public), Some(Channel::Private)][channel as usize],
            text: if kind == EventKind::Message { text.map(|t| PHRASES[t].to_string()) } else { None },
        };
        (e, dt)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn invariants_hold_on_random_streams(events in proptest::collection::vec(event(), 1..400)) {
        let spec = RiskSpec {
            max_accounts: 8,
            max_pairs_per_account: 3,
            recent_events: 2,
            review: 0.5,
            alert: 1.0,
            cooldown_secs: 3600,
            ..RiskSpec::default()
        };
        let mut s = Scorer::new(spec.clone(), PatternSet::default_set()).unwrap();
        let weights = spec.weights.as_array();
        let mut t = 1_767_225_600u64;
        let mut last_crossing: std::collections::HashMap<(String, Level), u64> = Default::default();
        for (mut e, dt) in events {
            t += dt;
            e.timestamp = t;
            let o = s.observe(&e);
            prop_assert!(o.score.is_finite() && o.score >= 0.0);
            prop_assert!(s.accounts() <= 8);
            prop_assert!(s.approx_bytes() <= s.max_bytes());
            if let Some(c) = &o.crossing {
                prop_assert!(c.events.len() <= 2);
                let key = (c.account.clone(), c.level);
                if let Some(prev) = last_crossing.get(&key) {
                    // The same level again only after the cooldown (or after an eviction
                    // forgot the account, which resets it).
                    prop_assert!(t - prev >= 3600 || s.evictions() > 0);
                }
                last_crossing.insert(key, t);
            }
            let sc = s.score(e.subject()).expect("the subject was just observed");
            let sum: f64 = sc.contributions.iter().map(|c| c.contribution).sum();
            prop_assert!((sum - sc.score).abs() < 1e-9);
            for c in &sc.contributions {
                prop_assert!(c.value > 0.0 && c.value <= 1.0);
                prop_assert!(c.contribution <= weights[c.feature as usize] + 1e-12);
            }
        }
    }

    #[test]
    fn any_json_is_refused_or_accepted_without_panicking(s in ".{0,200}") {
        let _ = Event::from_json_value(serde_json::Value::String(s.clone()), "e");
        let v = serde_json::json!({"kind": s, "actor": "a", "target": "b", "timestamp": 1,
                                   "actor_age": s, "text": s});
        let _ = Event::from_json_value(v, "e");
    }
}
