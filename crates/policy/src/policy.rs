//! The compiled policy and its evaluation.
//!
//! Compilation turns the rules into one bitset per condition value: for each dimension
//! (bank, signal type, surface, ...) the rules that leave it unconstrained, and for each value
//! mentioned anywhere the rules that accept it. Evaluating a match is then one lookup per
//! dimension and an AND of bitsets, so the cost grows with the number of matches and
//! dimensions, barely with the number of rules: the first rule and the thousandth are found in
//! the same time.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

use crate::builtin::builtin_rules;
use crate::error::Error;
use crate::fact::{Classification, ItemFacts, MatchFacts, Surface};
use crate::mask::Mask;
use crate::outcome::{Priority, Verdict};
use crate::rule::{validate_set, Mode, Rule};

/// Which rule, in which version, produced a decision.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RuleRef {
    /// The rule's id.
    pub id: String,
    /// The rule's version when it decided.
    pub version: u32,
}

/// What a shadow-mode rule would have done. Recorded, never acted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowHit {
    /// The shadow rule.
    pub rule: RuleRef,
    /// Its verdict.
    pub verdict: Verdict,
    /// Its queue, after defaults.
    pub queue: Option<String>,
    /// Its priority, after defaults.
    pub priority: Priority,
    /// Its report-candidate flag, after defaults.
    pub report_candidate: bool,
    /// Its labels.
    pub labels: Vec<String>,
}

/// The outcome of evaluating a policy for one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// What happens to the item.
    pub verdict: Verdict,
    /// The rule that decided; `None` only for an item with no match (always `allow`).
    pub rule: Option<RuleRef>,
    /// The review queue, after defaults; `None` for `allow`.
    pub queue: Option<String>,
    /// The priority in the queue, after defaults.
    pub priority: Priority,
    /// Whether the item is a candidate for a report.
    pub report_candidate: bool,
    /// The deciding rule's labels.
    pub labels: Vec<String>,
    /// Indices into the evaluated matches of those that satisfied the deciding rule's match
    /// conditions, ascending: the evidence for the verdict.
    pub matched: Vec<usize>,
    /// Every shadow rule that would have fired, in rule order.
    pub shadow: Vec<ShadowHit>,
}

impl Decision {
    /// The decision for an item without matches: allowed, by no rule.
    fn unmatched() -> Decision {
        Decision {
            verdict: Verdict::Allow,
            rule: None,
            queue: None,
            priority: Priority::default(),
            report_candidate: false,
            labels: Vec::new(),
            matched: Vec::new(),
            shadow: Vec::new(),
        }
    }
}

/// A rule's outcome with every default applied, ready to copy into a decision.
#[derive(Debug)]
struct Compiled {
    /// The rule as given, for listing and for its verdict and labels.
    rule: Rule,
    /// Its id and version, as every decision it makes records them.
    reference: RuleRef,
    /// [`crate::Then::effective_queue`]: `None` exactly when the verdict is `allow`.
    queue: Option<String>,
    /// [`crate::Then::effective_priority`].
    priority: Priority,
    /// [`crate::Then::effective_report_candidate`].
    report_candidate: bool,
}

/// A condition on a value drawn from a small enum: a mask per value, plus the rules without
/// the condition. Slot `N - 1` stands for "no value" where the fact is optional.
#[derive(Debug)]
struct EnumDim<const N: usize> {
    free: Mask,
    accept: [Mask; N],
    used: bool,
}

impl<const N: usize> Default for EnumDim<N> {
    fn default() -> Self {
        EnumDim {
            free: Mask::EMPTY,
            accept: [Mask::EMPTY; N],
            used: false,
        }
    }
}

impl<const N: usize> EnumDim<N> {
    fn add(&mut self, rule: usize, values: Option<impl Iterator<Item = usize>>) {
        match values {
            None => self.free.set(rule),
            Some(values) => {
                self.used = true;
                for v in values {
                    self.accept[v].set(rule);
                }
            }
        }
    }

    /// Narrows `m` to the rules this condition lets through for `value`.
    fn narrow(&self, m: &mut Mask, value: usize, words: usize) {
        if self.used {
            m.and_either(&self.free, &self.accept[value], words);
        }
    }
}

/// The multiply-rotate hash rustc uses (FxHash), for the string tables.
///
/// Hashing dominated evaluation with the standard SipHash (about 40% of the time in the rule
/// bench). SipHash's keyed defence against crafted collisions is not needed here: the keys
/// of a table are the operator's rule values, and a crafted query string can only collide
/// with them, costing one extra comparison, never a long probe chain.
#[derive(Debug, Default, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    /// The multiplier of rustc's FxHash: odd, with well-spread bits.
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            // chunks_exact(8) yields exactly 8 bytes, so the conversion cannot fail.
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A string-keyed table hashed with [`FxHasher`].
type FxMap<V> = HashMap<Box<str>, V, BuildHasherDefault<FxHasher>>;

/// A condition on a string (bank, bank kind, tag, signal type), compared exactly.
#[derive(Debug, Default)]
struct StrDim {
    free: Mask,
    accept: FxMap<Mask>,
}

impl StrDim {
    fn add(&mut self, rule: usize, values: &Option<Vec<String>>) {
        match values {
            None => self.free.set(rule),
            Some(values) => {
                for v in values {
                    self.accept.entry(v.as_str().into()).or_default().set(rule);
                }
            }
        }
    }

    fn used(&self) -> bool {
        !self.accept.is_empty()
    }

    /// Narrows `m` to the rules this condition lets through for one value.
    fn narrow_one(&self, m: &mut Mask, value: &str, words: usize) {
        match self.accept.get(value) {
            Some(a) => m.and_either(&self.free, a, words),
            None => m.and_assign(&self.free, words),
        }
    }

    /// The rules this condition lets through for any of `values`.
    fn pass_any<'a>(&self, values: impl Iterator<Item = &'a str>, words: usize) -> Mask {
        let mut pass = self.free;
        for v in values {
            if let Some(a) = self.accept.get(v) {
                pass.or_assign(a, words);
            }
        }
        pass
    }
}

/// `sources`: exact entries, and prefixes (entries ending in `*`, stored without it).
#[derive(Debug, Default)]
struct SourceDim {
    exact: StrDim,
    prefixes: Vec<(Box<str>, Mask)>,
}

impl SourceDim {
    fn add(&mut self, rule: usize, values: &Option<Vec<String>>) {
        let Some(values) = values else {
            self.exact.free.set(rule);
            return;
        };
        for v in values {
            match v.strip_suffix('*') {
                Some(prefix) => match self.prefixes.iter_mut().find(|(p, _)| **p == *prefix) {
                    Some((_, m)) => m.set(rule),
                    None => {
                        let mut m = Mask::EMPTY;
                        m.set(rule);
                        self.prefixes.push((prefix.into(), m));
                    }
                },
                None => {
                    self.exact
                        .accept
                        .entry(v.as_str().into())
                        .or_default()
                        .set(rule);
                }
            }
        }
    }

    fn used(&self) -> bool {
        self.exact.used() || !self.prefixes.is_empty()
    }

    /// Narrows `m` to the rules whose sources condition the hash's sources satisfy.
    fn narrow(&self, m: &mut Mask, sources: &[String], words: usize) {
        let mut pass = self
            .exact
            .pass_any(sources.iter().map(String::as_str), words);
        for (prefix, rules) in &self.prefixes {
            if sources.iter().any(|s| s.starts_with(&**prefix)) {
                pass.or_assign(rules, words);
            }
        }
        m.and_assign(&pass, words);
    }
}

/// A numeric threshold. `steps` holds each distinct threshold ascending with the rules whose
/// condition a value at that threshold satisfies: for an upper bound (`max_distance`) the
/// rules with that bound or a larger one, for a lower bound (vPDQ shares) the rules with that
/// bound or a smaller one.
#[derive(Debug, Default)]
struct ThresholdDim {
    free: Mask,
    steps: Vec<(f64, Mask)>,
    upper: bool,
}

impl ThresholdDim {
    fn new(upper: bool) -> ThresholdDim {
        ThresholdDim {
            upper,
            ..ThresholdDim::default()
        }
    }

    fn add(&mut self, rule: usize, bound: Option<f64>) {
        match bound {
            None => self.free.set(rule),
            Some(b) => {
                let mut m = Mask::EMPTY;
                m.set(rule);
                self.steps.push((b, m));
            }
        }
    }

    /// Sorts the bounds, merges equal ones, and accumulates the masks.
    fn finish(&mut self) {
        // Bounds are validated finite, so total_cmp orders them as numbers.
        self.steps.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.steps.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                earlier.1 = earlier.1.or(&later.1);
                true
            } else {
                false
            }
        });
        if self.upper {
            for i in (1..self.steps.len()).rev() {
                let above = self.steps[i].1;
                self.steps[i - 1].1 = self.steps[i - 1].1.or(&above);
            }
        } else {
            for i in 1..self.steps.len() {
                let below = self.steps[i - 1].1;
                self.steps[i].1 = self.steps[i].1.or(&below);
            }
        }
    }

    fn used(&self) -> bool {
        !self.steps.is_empty()
    }

    /// Narrows `m` to the rules whose bound `value` satisfies.
    fn narrow(&self, m: &mut Mask, value: Option<f64>, words: usize) {
        match self.step(value) {
            Some(step) => m.and_either(&self.free, step, words),
            None => m.and_assign(&self.free, words),
        }
    }

    /// The accumulated mask of the bounds `value` satisfies, if any.
    fn step(&self, value: Option<f64>) -> Option<&Mask> {
        // NaN satisfies no bound (every comparison with it is false), like a missing value.
        let v = value.filter(|v| !v.is_nan())?;
        let step = if self.upper {
            // The first bound at or above v, whose mask holds every larger bound too.
            let i = self.steps.partition_point(|(b, _)| *b < v);
            self.steps.get(i)
        } else {
            // The last bound at or below v.
            let i = self.steps.partition_point(|(b, _)| *b <= v);
            i.checked_sub(1).map(|i| &self.steps[i])
        };
        step.map(|(_, m)| m)
    }
}

/// Matches per item whose rule masks evaluation keeps on the stack (128 bytes each) rather than
/// recomputing them to find the deciding rule's evidence. Most items match one to a few hashes.
const KEPT_MATCH_MASKS: usize = 8;
/// Surfaces plus one slot for "no surface given".
const SURFACE_SLOTS: usize = Surface::ALL.len() + 1;
/// Classifications plus one slot for "no classification".
const CLASSIFICATION_SLOTS: usize = 5;
/// Slots for account ages and kinds: neither is optional, three values each.
const THREE: usize = 3;

/// A compiled, immutable policy: the operator's rules in order, then the built-in rules.
/// Cheap to share between threads (`&Policy` is all evaluation needs).
#[derive(Debug)]
pub struct Policy {
    /// Every rule, in evaluation order; a rule's position is its bit in every mask.
    rules: Vec<Compiled>,
    /// Every rule position.
    all: Mask,
    /// Words of every mask in use: the rule count rounded up to 64. Mask operations on the
    /// hot path touch only these, so 100 rules cost 2 words, not the 16 a full set needs.
    words: usize,
    /// Rules in enforce mode.
    enforce: Mask,
    /// Rules in shadow mode.
    shadow: Mask,
    surfaces: EnumDim<SURFACE_SLOTS>,
    account_ages: EnumDim<THREE>,
    kinds: EnumDim<THREE>,
    banks: StrDim,
    bank_kinds: StrDim,
    bank_tags: StrDim,
    signal_types: StrDim,
    classifications: EnumDim<CLASSIFICATION_SLOTS>,
    max_distance: ThresholdDim,
    vpdq_query: ThresholdDim,
    vpdq_compared: ThresholdDim,
    sources: SourceDim,
}

impl Default for Policy {
    /// The zero-configuration policy: the built-in rules alone.
    fn default() -> Self {
        // Cannot fail: no operator rules, and the built-ins are valid (a unit test checks).
        Policy::compile(Vec::new()).expect("the built-in policy compiles")
    }
}

impl Policy {
    /// Validates the operator's rules (each rule, at most [`crate::MAX_RULES`], unique ids)
    /// and compiles them, in the given order, followed by the built-in rules.
    pub fn compile(rules: Vec<Rule>) -> Result<Policy, Error> {
        validate_set(rules.iter().map(|r| &r.spec))?;
        let all_rules: Vec<Rule> = rules.into_iter().chain(builtin_rules()).collect();
        let mut p = Policy {
            rules: Vec::with_capacity(all_rules.len()),
            all: Mask::EMPTY,
            words: all_rules.len().div_ceil(64),
            enforce: Mask::EMPTY,
            shadow: Mask::EMPTY,
            surfaces: EnumDim::default(),
            account_ages: EnumDim::default(),
            kinds: EnumDim::default(),
            banks: StrDim::default(),
            bank_kinds: StrDim::default(),
            bank_tags: StrDim::default(),
            signal_types: StrDim::default(),
            classifications: EnumDim::default(),
            max_distance: ThresholdDim::new(true),
            vpdq_query: ThresholdDim::new(false),
            vpdq_compared: ThresholdDim::new(false),
            sources: SourceDim::default(),
        };
        for (i, rule) in all_rules.into_iter().enumerate() {
            p.all.set(i);
            match rule.spec.mode {
                Mode::Enforce => p.enforce.set(i),
                Mode::Shadow => p.shadow.set(i),
            }
            let w = &rule.spec.when;
            p.surfaces
                .add(i, w.surfaces.as_ref().map(|v| v.iter().map(|s| s.index())));
            p.account_ages.add(
                i,
                w.account_ages.as_ref().map(|v| v.iter().map(|a| a.index())),
            );
            p.kinds
                .add(i, w.kinds.as_ref().map(|v| v.iter().map(|k| k.index())));
            p.classifications.add(
                i,
                w.classifications
                    .as_ref()
                    .map(|v| v.iter().map(|c| c.index())),
            );
            p.banks.add(i, &w.banks);
            p.bank_kinds.add(i, &w.bank_kinds);
            p.bank_tags.add(i, &w.bank_tags);
            p.signal_types.add(i, &w.signal_types);
            p.max_distance.add(i, w.max_distance.map(f64::from));
            p.vpdq_query.add(i, w.vpdq_min_query_share);
            p.vpdq_compared.add(i, w.vpdq_min_compared_share);
            p.sources.add(i, &w.sources);
            let then = &rule.spec.then;
            p.rules.push(Compiled {
                reference: RuleRef {
                    id: rule.spec.id.clone(),
                    version: rule.version,
                },
                queue: then.effective_queue().map(str::to_string),
                priority: then.effective_priority(),
                report_candidate: then.effective_report_candidate(),
                rule,
            });
        }
        p.max_distance.finish();
        p.vpdq_query.finish();
        p.vpdq_compared.finish();
        Ok(p)
    }

    /// Every rule in evaluation order: the operator's, then the built-ins.
    pub fn rules(&self) -> impl ExactSizeIterator<Item = &Rule> {
        self.rules.iter().map(|c| &c.rule)
    }

    /// The rules an item's facts allow, before any match is looked at.
    fn item_mask(&self, item: &ItemFacts) -> Mask {
        let n = self.words;
        let mut m = self.all;
        let surface = item.surface.map_or(SURFACE_SLOTS - 1, Surface::index);
        self.surfaces.narrow(&mut m, surface, n);
        self.account_ages
            .narrow(&mut m, item.account_age.index(), n);
        self.kinds.narrow(&mut m, item.kind.index(), n);
        m
    }

    /// The rules whose match conditions this one match satisfies, within `m`.
    fn match_mask(&self, mut m: Mask, f: &MatchFacts<'_>) -> Mask {
        let n = self.words;
        if self.banks.used() {
            self.banks.narrow_one(&mut m, f.bank, n);
        }
        if self.bank_kinds.used() {
            self.bank_kinds.narrow_one(&mut m, f.bank_kind, n);
        }
        if self.signal_types.used() {
            self.signal_types.narrow_one(&mut m, f.signal_type, n);
        }
        if self.bank_tags.used() {
            let pass = self
                .bank_tags
                .pass_any(f.bank_tags.iter().map(String::as_str), n);
            m.and_assign(&pass, n);
        }
        let class = f
            .classification
            .map_or(CLASSIFICATION_SLOTS - 1, Classification::index);
        self.classifications.narrow(&mut m, class, n);
        if self.max_distance.used() {
            self.max_distance.narrow(&mut m, f.distance, n);
        }
        if self.vpdq_query.used() {
            self.vpdq_query.narrow(&mut m, f.vpdq.map(|v| v.query), n);
        }
        if self.vpdq_compared.used() {
            self.vpdq_compared
                .narrow(&mut m, f.vpdq.map(|v| v.compared), n);
        }
        if self.sources.used() {
            self.sources.narrow(&mut m, f.sources, n);
        }
        m
    }

    /// Decides what happens to an item with these matches.
    ///
    /// No match: `allow`, by no rule. Otherwise the first enforce-mode rule, in order, whose
    /// item conditions hold and whose match conditions all hold for at least one match
    /// decides (the last built-in rule fires for any match, so something always decides),
    /// and every shadow-mode rule that would have fired is recorded.
    pub fn evaluate(&self, item: &ItemFacts, matches: &[MatchFacts<'_>]) -> Decision {
        if matches.is_empty() {
            return Decision::unmatched();
        }
        let item_mask = self.item_mask(item);
        // The first matches' masks are kept on the stack for `matched` below; later ones (rare:
        // an item rarely matches more than a few hashes) are recomputed there instead.
        let mut kept = [Mask::EMPTY; KEPT_MATCH_MASKS];
        let mut fired = Mask::EMPTY;
        for (i, f) in matches.iter().enumerate() {
            let m = self.match_mask(item_mask, f);
            if let Some(slot) = kept.get_mut(i) {
                *slot = m;
            }
            fired.or_assign(&m, self.words);
        }
        // Cannot be None: builtin.match has no conditions and is enforced, so it fires for
        // every item with a match.
        let decider = fired
            .and(&self.enforce)
            .first()
            .expect("the built-in catch-all rule fires for every match");
        let c = &self.rules[decider];
        let matched = matches
            .iter()
            .enumerate()
            .filter(|(i, f)| match kept.get(*i) {
                Some(m) => m.get(decider),
                None => self.match_mask(item_mask, f).get(decider),
            })
            .map(|(i, _)| i)
            .collect();
        let shadow = fired
            .and(&self.shadow)
            .iter()
            .map(|i| {
                let s = &self.rules[i];
                ShadowHit {
                    rule: s.reference.clone(),
                    verdict: s.rule.spec.then.verdict,
                    queue: s.queue.clone(),
                    priority: s.priority,
                    report_candidate: s.report_candidate,
                    labels: s.rule.spec.then.labels.clone(),
                }
            })
            .collect();
        Decision {
            verdict: c.rule.spec.then.verdict,
            rule: Some(c.reference.clone()),
            queue: c.queue.clone(),
            priority: c.priority,
            report_candidate: c.report_candidate,
            labels: c.rule.spec.then.labels.clone(),
            matched,
            shadow,
        }
    }
}
