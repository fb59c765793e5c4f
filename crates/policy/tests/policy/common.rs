//! Builders for policies, items and matches.

use safeguard_policy::{
    AccountAge, Classification, Decision, ItemFacts, Kind, MatchFacts, Policy, Rule, RuleSet,
    Surface, VpdqShares,
};

/// Version given to the rule at position i: distinct from 1 so a test sees it carried.
pub fn version_of(i: usize) -> u32 {
    100 + i as u32
}

/// Compiles a TOML rules file, giving rule i the version [`version_of`]`(i)`.
pub fn policy(toml: &str) -> Policy {
    let set = RuleSet::parse_toml(toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let rules = set
        .rules
        .into_iter()
        .enumerate()
        .map(|(i, s)| Rule::new(s, version_of(i)))
        .collect();
    Policy::compile(rules).unwrap()
}

/// An owned match, so tests can build and tweak one and borrow [`MatchFacts`] from it.
#[derive(Debug, Clone)]
pub struct M {
    pub bank: String,
    pub bank_kind: String,
    pub tags: Vec<String>,
    pub classification: Option<Classification>,
    pub signal_type: String,
    pub distance: Option<f64>,
    pub vpdq: Option<VpdqShares>,
    pub sources: Vec<String>,
}

impl Default for M {
    /// A plain PDQ match in a standard bank, distance 10, from the operator's own hashes.
    fn default() -> Self {
        M {
            bank: "BANK".into(),
            bank_kind: "standard".into(),
            tags: Vec::new(),
            classification: None,
            signal_type: "pdq".into(),
            distance: Some(10.0),
            vpdq: None,
            sources: vec!["own".into()],
        }
    }
}

impl M {
    pub fn facts(&self) -> MatchFacts<'_> {
        MatchFacts {
            bank: &self.bank,
            bank_kind: &self.bank_kind,
            bank_tags: &self.tags,
            classification: self.classification,
            signal_type: &self.signal_type,
            distance: self.distance,
            vpdq: self.vpdq,
            sources: &self.sources,
        }
    }

    pub fn bank(mut self, b: &str) -> M {
        self.bank = b.into();
        self
    }

    pub fn kind(mut self, k: &str) -> M {
        self.bank_kind = k.into();
        self
    }

    pub fn signal(mut self, s: &str) -> M {
        self.signal_type = s.into();
        self
    }

    pub fn distance(mut self, d: f64) -> M {
        self.distance = Some(d);
        self
    }

    pub fn sources(mut self, s: &[&str]) -> M {
        self.sources = s.iter().map(|s| s.to_string()).collect();
        self
    }

    /// A vPDQ match: no distance, the given frame shares.
    pub fn vpdq(mut self, query: f64, compared: f64) -> M {
        self.signal_type = "vpdq".into();
        self.distance = None;
        self.vpdq = Some(VpdqShares { query, compared });
        self
    }
}

/// A public image from an adult account.
pub fn item() -> ItemFacts {
    ItemFacts {
        kind: Kind::Image,
        surface: Some(Surface::Public),
        account_age: AccountAge::Adult,
    }
}

pub fn eval(p: &Policy, item: &ItemFacts, ms: &[M]) -> Decision {
    let facts: Vec<MatchFacts<'_>> = ms.iter().map(M::facts).collect();
    p.evaluate(item, &facts)
}

/// The id of the rule that decided, or "" for none.
pub fn decider(d: &Decision) -> &str {
    d.rule.as_ref().map_or("", |r| r.id.as_str())
}

/// A one-rule policy: rule `r` with the given `[rule.when]` body, verdict hold.
pub fn one_rule(when: &str) -> Policy {
    policy(&format!(
        "[[rule]]\nid = \"r\"\n[rule.when]\n{when}\n[rule.then]\nverdict = \"hold\"\n"
    ))
}

/// Whether rule `r` of [`one_rule`]`(when)` decides for this item and match.
pub fn fires(when: &str, item: &ItemFacts, m: &M) -> bool {
    let d = eval(&one_rule(when), item, std::slice::from_ref(m));
    decider(&d) == "r"
}
