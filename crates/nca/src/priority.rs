//! Priority assessment under reg 6(6)–(7) of SI 2026/268, and the clocks that follow from it.
//!
//! The regulations (second-hand wording; see the crate docs) set three levels:
//!
//! - **level 1**: information suggesting an immediate threat to a child's life or an
//!   immediate risk of serious harm to a child: report **immediately**;
//! - **level 2**: a risk of serious harm in the near future: **as soon as reasonably
//!   practicable**;
//! - **level 3**: any other case: **without undue delay**.
//!
//! The regulations give no hours. The deadlines here ([`Deadlines`], defaults
//! [`DEFAULT_LEVEL_1`] 1 hour, [`DEFAULT_LEVEL_2`] 24 hours, [`DEFAULT_LEVEL_3`] 72 hours) are
//! **the organisation's own targets** for meeting those words, set in its configuration; a
//! report sent within its target is not thereby shown to be lawful, nor one sent after it
//! unlawful. A level 1 case also calls for a 999 call where a child is in danger now, which
//! no clock here replaces.
//!
//! Which level applies is decided by a rule set ([`PriorityConfig`], TOML). Each rule names a
//! level and conditions on the facts the caller knows ([`PriorityFacts`]: signal labels such
//! as `threat_to_life`, a classification such as `A1`, a risk score). A rule fires when all
//! its conditions hold. **The most urgent level among the rules that fire wins**; among rules
//! of that level, the first in the file is named as the reason. "First match wins" was
//! rejected: it makes the order of the file decide safety, so one broad level-3 rule placed
//! early could silence a level-1 rule below it. When no rule fires the level is 3, the
//! regulations' "otherwise".
//!
//! Configuration shape:
//!
//! ```toml
//! [deadlines]
//! level_1_minutes = 60
//! level_2_minutes = 1440
//! level_3_minutes = 4320
//!
//! [[rules]]
//! name = "threat to life or contact in progress"
//! level = 1
//! any_signals = ["threat_to_life", "contact_in_progress"]
//!
//! [[rules]]
//! name = "live stream with a child account"
//! level = 1
//! all_signals = ["livestream", "child_account_involved"]
//!
//! [[rules]]
//! name = "high risk score, not self-generated"
//! level = 2
//! min_risk_score = 0.8
//! none_signals = ["self_generated"]
//!
//! [[rules]]
//! name = "category A"
//! level = 2
//! classifications = ["A1", "A"]
//! ```
//!
//! Conditions a rule may hold, all optional but at least one required:
//! `any_signals` (at least one present), `all_signals` (every one present), `none_signals`
//! (none present), `classifications` (the facts' classification is one of these, compared
//! without regard to case), `min_risk_score` (the score is present and at least this).
//!
//! A [`DeadlineClock`] runs from when the provider became aware (the caller's
//! `detected_at_ms`: detection, or human confirmation where that is its policy). When new
//! facts raise the level, assess again and start the new clock from the same time: the
//! obligation did not begin when the level changed.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Error, UnixMs};

/// Default target for level 1 ("immediately"): one hour, time for an on-call person to
/// confirm and send.
pub const DEFAULT_LEVEL_1: Duration = Duration::from_secs(3600);
/// Default target for level 2 ("as soon as reasonably practicable"): 24 hours.
pub const DEFAULT_LEVEL_2: Duration = Duration::from_secs(24 * 3600);
/// Default target for level 3 ("without undue delay"): 72 hours, so a weekend does not make
/// a report late.
pub const DEFAULT_LEVEL_3: Duration = Duration::from_secs(72 * 3600);
/// Longest target accepted for any level: 30 days. A longer one is no longer "without undue
/// delay" by any reading, and most likely a unit mistake.
pub const DEADLINE_MAX: Duration = Duration::from_secs(30 * 24 * 3600);
/// Most rules in a configuration: enough for any real policy, small enough that assessment
/// stays trivially cheap and the file stays reviewable.
pub const RULES_MAX: usize = 256;
/// Most labels in one condition list.
pub const CONDITION_LABELS_MAX: usize = 64;
/// Longest rule name or label, characters.
pub const LABEL_MAX: usize = 128;

/// The default rule set, as TOML (what [`PriorityConfig::default`] parses).
pub const DEFAULT_CONFIG_TOML: &str = r#"
[deadlines]
level_1_minutes = 60
level_2_minutes = 1440
level_3_minutes = 4320

[[rules]]
name = "threat to life or contact in progress"
level = 1
any_signals = ["threat_to_life", "contact_in_progress"]

[[rules]]
name = "live stream with a child account"
level = 1
all_signals = ["livestream", "child_account_involved"]

[[rules]]
name = "child account involved"
level = 2
any_signals = ["child_account_involved"]

[[rules]]
name = "category A"
level = 2
classifications = ["A", "A1"]

[[rules]]
name = "high risk score"
level = 2
min_risk_score = 0.8
"#;

/// A priority level of reg 6(6)–(7). Serialised as the number 1, 2 or 3. Ordered by urgency:
/// `One < Two < Three`, so the most urgent of several is the minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum PriorityLevel {
    /// Immediate threat to a child's life or immediate risk of serious harm: immediately.
    One,
    /// Risk of serious harm in the near future: as soon as reasonably practicable.
    Two,
    /// Any other case: without undue delay.
    Three,
}

impl PriorityLevel {
    /// The level's number.
    pub fn number(self) -> u8 {
        match self {
            PriorityLevel::One => 1,
            PriorityLevel::Two => 2,
            PriorityLevel::Three => 3,
        }
    }

    /// What the regulations ask for at this level, in their words.
    pub fn requirement(self) -> &'static str {
        match self {
            PriorityLevel::One => "immediately",
            PriorityLevel::Two => "as soon as reasonably practicable",
            PriorityLevel::Three => "without undue delay",
        }
    }
}

impl TryFrom<u8> for PriorityLevel {
    type Error = Error;
    fn try_from(n: u8) -> Result<Self, Error> {
        match n {
            1 => Ok(PriorityLevel::One),
            2 => Ok(PriorityLevel::Two),
            3 => Ok(PriorityLevel::Three),
            _ => Err(Error::invalid("priority", "the level is 1, 2 or 3")),
        }
    }
}

impl From<PriorityLevel> for u8 {
    fn from(l: PriorityLevel) -> u8 {
        l.number()
    }
}

impl fmt::Display for PriorityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "level {} ({})", self.number(), self.requirement())
    }
}

/// What the caller knows about a case, for the rules to match on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriorityFacts {
    /// Signal labels raised on the case (`threat_to_life`, `contact_in_progress`,
    /// `child_account_involved`, `livestream`, `self_generated`...). Compared exactly.
    pub signals: BTreeSet<String>,
    /// The content's classification (`A1`, `B`...), where one was made.
    pub classification: Option<String>,
    /// A risk score between 0 and 1, where one was computed.
    pub risk_score: Option<f64>,
}

impl PriorityFacts {
    /// Facts with these signals and nothing else.
    pub fn with_signals<I, S>(signals: I) -> PriorityFacts
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        PriorityFacts {
            signals: signals.into_iter().map(Into::into).collect(),
            ..PriorityFacts::default()
        }
    }
}

/// The organisation's target for each level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Level 1 target.
    pub level_1: Duration,
    /// Level 2 target.
    pub level_2: Duration,
    /// Level 3 target.
    pub level_3: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            level_1: DEFAULT_LEVEL_1,
            level_2: DEFAULT_LEVEL_2,
            level_3: DEFAULT_LEVEL_3,
        }
    }
}

impl Deadlines {
    /// The target for `level`.
    pub fn for_level(&self, level: PriorityLevel) -> Duration {
        match level {
            PriorityLevel::One => self.level_1,
            PriorityLevel::Two => self.level_2,
            PriorityLevel::Three => self.level_3,
        }
    }
}

/// One rule: a level and the conditions under which it applies.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The rule's name, shown as the reason for a level. Unique in its configuration.
    pub name: String,
    /// The level it sets.
    pub level: PriorityLevel,
    /// At least one of these signals is present.
    #[serde(default)]
    pub any_signals: Vec<String>,
    /// Every one of these signals is present.
    #[serde(default)]
    pub all_signals: Vec<String>,
    /// None of these signals is present (exceptions).
    #[serde(default)]
    pub none_signals: Vec<String>,
    /// The classification is one of these (case-insensitive).
    #[serde(default)]
    pub classifications: Vec<String>,
    /// The risk score is present and at least this.
    #[serde(default)]
    pub min_risk_score: Option<f64>,
}

impl Rule {
    fn has_condition(&self) -> bool {
        !self.any_signals.is_empty()
            || !self.all_signals.is_empty()
            || !self.none_signals.is_empty()
            || !self.classifications.is_empty()
            || self.min_risk_score.is_some()
    }

    /// Whether every condition of the rule holds for `facts`.
    pub fn matches(&self, facts: &PriorityFacts) -> bool {
        let any = self.any_signals.is_empty()
            || self.any_signals.iter().any(|s| facts.signals.contains(s));
        let all = self.all_signals.iter().all(|s| facts.signals.contains(s));
        let none = !self.none_signals.iter().any(|s| facts.signals.contains(s));
        let class = self.classifications.is_empty()
            || facts.classification.as_deref().is_some_and(|c| {
                self.classifications
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(c.trim()))
            });
        let score = match self.min_risk_score {
            None => true,
            Some(min) => facts.risk_score.is_some_and(|s| s >= min),
        };
        any && all && none && class && score
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    deadlines: RawDeadlines,
    #[serde(default)]
    rules: Vec<Rule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeadlines {
    level_1_minutes: Option<u64>,
    level_2_minutes: Option<u64>,
    level_3_minutes: Option<u64>,
}

/// The priority rule set and the deadline targets, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorityConfig {
    /// Targets per level.
    deadlines: Deadlines,
    /// Rules in file order; names unique, each with at least one condition.
    rules: Vec<Rule>,
}

impl Default for PriorityConfig {
    fn default() -> Self {
        // DEFAULT_CONFIG_TOML is a constant that the test `default_config_parses` parses, so
        // this cannot fail at run time.
        PriorityConfig::from_toml(DEFAULT_CONFIG_TOML).expect("the built-in configuration parses")
    }
}

impl PriorityConfig {
    /// Parses and checks a configuration (shape in the module docs). Missing deadlines take
    /// the defaults; missing rules leave every case at level 3.
    pub fn from_toml(text: &str) -> Result<PriorityConfig, Error> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        let minutes = |m: Option<u64>, default: Duration, level: u8| -> Result<Duration, Error> {
            let Some(m) = m else { return Ok(default) };
            let d = Duration::from_secs(m.saturating_mul(60));
            if m == 0 || d > DEADLINE_MAX {
                return Err(Error::Config(format!(
                    "deadlines.level_{level}_minutes must be between 1 and {}",
                    DEADLINE_MAX.as_secs() / 60
                )));
            }
            Ok(d)
        };
        let deadlines = Deadlines {
            level_1: minutes(raw.deadlines.level_1_minutes, DEFAULT_LEVEL_1, 1)?,
            level_2: minutes(raw.deadlines.level_2_minutes, DEFAULT_LEVEL_2, 2)?,
            level_3: minutes(raw.deadlines.level_3_minutes, DEFAULT_LEVEL_3, 3)?,
        };
        PriorityConfig::new(deadlines, raw.rules)
    }

    /// A configuration from parts, checked like [`PriorityConfig::from_toml`].
    pub fn new(deadlines: Deadlines, rules: Vec<Rule>) -> Result<PriorityConfig, Error> {
        if deadlines.level_1 > deadlines.level_2 || deadlines.level_2 > deadlines.level_3 {
            return Err(Error::Config(
                "a more urgent level cannot have a longer deadline: level 1 <= level 2 <= level 3"
                    .into(),
            ));
        }
        if deadlines.level_1.is_zero() || deadlines.level_3 > DEADLINE_MAX {
            return Err(Error::Config(format!(
                "deadlines must be between 1 minute and {} days",
                DEADLINE_MAX.as_secs() / 86_400
            )));
        }
        if rules.len() > RULES_MAX {
            return Err(Error::Config(format!("more than {RULES_MAX} rules")));
        }
        let mut names = BTreeSet::new();
        for r in &rules {
            let label_ok = |s: &str| !s.trim().is_empty() && s.chars().count() <= LABEL_MAX;
            if !label_ok(&r.name) {
                return Err(Error::Config(format!(
                    "a rule name must be non-empty and at most {LABEL_MAX} characters"
                )));
            }
            if !names.insert(r.name.as_str()) {
                return Err(Error::Config(format!("two rules are named {:?}", r.name)));
            }
            if !r.has_condition() {
                return Err(Error::Config(format!(
                    "rule {:?} has no condition and would match every case; \
                     leave such cases to the level-3 default",
                    r.name
                )));
            }
            for list in [
                &r.any_signals,
                &r.all_signals,
                &r.none_signals,
                &r.classifications,
            ] {
                if list.len() > CONDITION_LABELS_MAX {
                    return Err(Error::Config(format!(
                        "rule {:?}: more than {CONDITION_LABELS_MAX} labels in one condition",
                        r.name
                    )));
                }
                if !list.iter().all(|s| label_ok(s)) {
                    return Err(Error::Config(format!(
                        "rule {:?}: an empty or over-long label",
                        r.name
                    )));
                }
            }
            if let Some(s) = r.min_risk_score {
                if !(0.0..=1.0).contains(&s) {
                    return Err(Error::Config(format!(
                        "rule {:?}: min_risk_score must be between 0 and 1",
                        r.name
                    )));
                }
            }
        }
        Ok(PriorityConfig { deadlines, rules })
    }

    /// The targets.
    pub fn deadlines(&self) -> &Deadlines {
        &self.deadlines
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Assesses the level for `facts`: the most urgent level among the rules that fire, the
    /// first such rule named as the reason; level 3 when none fires.
    pub fn assess(&self, facts: &PriorityFacts) -> Assessment {
        let fired: Vec<&Rule> = self.rules.iter().filter(|r| r.matches(facts)).collect();
        let winner = fired.iter().copied().min_by_key(|r| r.level);
        let level = winner.map_or(PriorityLevel::Three, |r| r.level);
        Assessment {
            level,
            rule: winner.map(|r| r.name.clone()),
            fired: fired.iter().map(|r| r.name.clone()).collect(),
            deadline: self.deadlines.for_level(level),
        }
    }
}

/// The outcome of an assessment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// The level.
    pub level: PriorityLevel,
    /// The rule that set it; `None` when no rule fired (level 3 by default).
    pub rule: Option<String>,
    /// Every rule that fired, in file order (for the audit trail).
    pub fired: Vec<String>,
    /// The organisation's target for the level.
    pub deadline: Duration,
}

impl Assessment {
    /// Why this level: which rule fired, or that none did.
    pub fn explanation(&self) -> String {
        let target = format_duration(self.deadline);
        match &self.rule {
            Some(rule) => {
                let others = self.fired.len() - 1;
                let also = if others > 0 {
                    format!(" ({others} other rule(s) also fired)")
                } else {
                    String::new()
                };
                format!(
                    "{}: rule {rule:?} fired{also}; organisation's target {target}",
                    self.level
                )
            }
            None => format!(
                "{}: no rule fired, so the default level applies; organisation's target {target}",
                self.level
            ),
        }
    }

    /// The clock for a case the provider became aware of at `detected_at_ms`.
    pub fn clock(&self, detected_at_ms: UnixMs) -> DeadlineClock {
        DeadlineClock {
            detected_at_ms,
            level: self.level,
            deadline: self.deadline,
            reason: self.explanation(),
        }
    }
}

/// Where a clock stands at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockState {
    /// The target has not passed; this much time is left.
    Remaining(Duration),
    /// The target passed this long ago.
    Overdue(Duration),
}

/// The reporting clock of one case: when the provider became aware, the level, the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineClock {
    /// When the provider became aware, Unix ms (the clock's start).
    pub detected_at_ms: UnixMs,
    /// The assessed level.
    pub level: PriorityLevel,
    /// The organisation's target for the level.
    pub deadline: Duration,
    /// Which rule set the level ([`Assessment::explanation`]).
    pub reason: String,
}

impl DeadlineClock {
    /// A clock for a level set by a person rather than by the rules (a reviewer who knows
    /// more than the signals say), with the organisation's target for that level.
    pub fn for_level(
        detected_at_ms: UnixMs,
        level: PriorityLevel,
        deadlines: &Deadlines,
        reason: impl Into<String>,
    ) -> DeadlineClock {
        DeadlineClock {
            detected_at_ms,
            level,
            deadline: deadlines.for_level(level),
            reason: format!("{level}: {}", reason.into()),
        }
    }

    /// When the target falls, Unix ms.
    pub fn due_at_ms(&self) -> UnixMs {
        let ms = i64::try_from(self.deadline.as_millis()).unwrap_or(i64::MAX);
        self.detected_at_ms.saturating_add(ms)
    }

    /// Where the clock stands at `now_ms`. Exactly at the due time counts as remaining zero.
    pub fn state(&self, now_ms: UnixMs) -> ClockState {
        let due = self.due_at_ms();
        let gap = |ms: i64| Duration::from_millis(ms.unsigned_abs());
        if now_ms <= due {
            ClockState::Remaining(gap(due - now_ms))
        } else {
            ClockState::Overdue(gap(now_ms - due))
        }
    }

    /// Whether the target has passed at `now_ms`.
    pub fn is_overdue(&self, now_ms: UnixMs) -> bool {
        matches!(self.state(now_ms), ClockState::Overdue(_))
    }

    /// One line for a person: the level, the state, and why.
    pub fn describe(&self, now_ms: UnixMs) -> String {
        let state = match self.state(now_ms) {
            ClockState::Remaining(d) => format!("{} left", format_duration(d)),
            ClockState::Overdue(d) => format!("OVERDUE by {}", format_duration(d)),
        };
        format!("{state}; {}", self.reason)
    }
}

/// `1h 05m`, `3d 2h`, `45s`: coarse, for people.
fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins:02}m")
    } else if mins > 0 {
        format!("{mins}m {secs:02}s")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: UnixMs = 1_777_636_800_000;
    const MIN: i64 = 60_000;

    #[test]
    fn default_config_parses() {
        let c = PriorityConfig::default();
        assert_eq!(c.deadlines(), &Deadlines::default());
        assert_eq!(c.rules().len(), 5);
    }

    #[test]
    fn threat_to_life_is_level_1_with_its_rule_named() {
        let c = PriorityConfig::default();
        let a = c.assess(&PriorityFacts::with_signals(["threat_to_life"]));
        assert_eq!(a.level, PriorityLevel::One);
        assert_eq!(
            a.rule.as_deref(),
            Some("threat to life or contact in progress")
        );
        assert_eq!(a.deadline, DEFAULT_LEVEL_1);
        assert!(
            a.explanation().contains("level 1 (immediately)"),
            "{}",
            a.explanation()
        );
    }

    #[test]
    fn all_signals_needs_every_one() {
        let c = PriorityConfig::default();
        let a = c.assess(&PriorityFacts::with_signals(["livestream"]));
        assert_eq!(a.level, PriorityLevel::Three);
        let a = c.assess(&PriorityFacts::with_signals([
            "livestream",
            "child_account_involved",
        ]));
        assert_eq!(a.level, PriorityLevel::One);
        assert_eq!(a.rule.as_deref(), Some("live stream with a child account"));
        // The level-2 "child account involved" rule fired too, and is recorded.
        assert_eq!(a.fired.len(), 2);
    }

    #[test]
    fn classification_and_score() {
        let c = PriorityConfig::default();
        let facts = PriorityFacts {
            classification: Some("a1".into()),
            ..PriorityFacts::default()
        };
        assert_eq!(c.assess(&facts).level, PriorityLevel::Two);
        let facts = PriorityFacts {
            risk_score: Some(0.79),
            ..PriorityFacts::default()
        };
        assert_eq!(c.assess(&facts).level, PriorityLevel::Three);
        let facts = PriorityFacts {
            risk_score: Some(0.8),
            ..PriorityFacts::default()
        };
        assert_eq!(c.assess(&facts).rule.as_deref(), Some("high risk score"));
    }

    #[test]
    fn nothing_fires_means_level_3() {
        let a = PriorityConfig::default().assess(&PriorityFacts::default());
        assert_eq!(a.level, PriorityLevel::Three);
        assert_eq!(a.rule, None);
        assert!(a.fired.is_empty());
        assert_eq!(a.deadline, DEFAULT_LEVEL_3);
        assert!(a.explanation().contains("no rule fired"));
    }

    #[test]
    fn most_urgent_wins_whatever_the_order() {
        let toml = r#"
            [deadlines]
            level_1_minutes = 30
            [[rules]]
            name = "broad"
            level = 3
            any_signals = ["contact_in_progress", "self_generated"]
            [[rules]]
            name = "self-generated, no contact"
            level = 2
            any_signals = ["self_generated"]
            none_signals = ["contact_in_progress"]
            [[rules]]
            name = "contact"
            level = 1
            any_signals = ["contact_in_progress"]
            [[rules]]
            name = "contact again"
            level = 1
            all_signals = ["contact_in_progress"]
        "#;
        let c = PriorityConfig::from_toml(toml).expect("valid");
        assert_eq!(c.deadlines().level_1, Duration::from_secs(1800));
        assert_eq!(c.deadlines().level_2, DEFAULT_LEVEL_2);
        let a = c.assess(&PriorityFacts::with_signals(["contact_in_progress"]));
        assert_eq!(a.level, PriorityLevel::One);
        assert_eq!(
            a.rule.as_deref(),
            Some("contact"),
            "first of the winning level"
        );
        assert_eq!(a.fired, ["broad", "contact", "contact again"]);
        let a = c.assess(&PriorityFacts::with_signals(["self_generated"]));
        assert_eq!(a.rule.as_deref(), Some("self-generated, no contact"));
        let a = c.assess(&PriorityFacts::with_signals([
            "self_generated",
            "contact_in_progress",
        ]));
        assert_eq!(a.level, PriorityLevel::One);
    }

    #[test]
    fn bad_configurations_are_refused() {
        for (toml, why) in [
            ("[[rules]]\nname = \"x\"\nlevel = 1\n", "no condition"),
            (
                "[[rules]]\nname = \"x\"\nlevel = 4\nany_signals = [\"a\"]\n",
                "level",
            ),
            (
                "[[rules]]\nname = \"x\"\nlevel = 1\nany_signals = [\"a\"]\n\
                 [[rules]]\nname = \"x\"\nlevel = 2\nany_signals = [\"b\"]\n",
                "duplicate",
            ),
            (
                "[[rules]]\nname = \"x\"\nlevel = 1\nmin_risk_score = 2.0\n",
                "score",
            ),
            (
                "[[rules]]\nname = \"x\"\nlevel = 1\nany_signal = [\"a\"]\n",
                "typo",
            ),
            ("[deadlines]\nlevel_1_minutes = 0\n", "zero"),
            ("[deadlines]\nlevel_1_minutes = 2000\n", "order"),
            ("[deadlines]\nlevel_3_minutes = 100000\n", "too long"),
        ] {
            assert!(
                matches!(PriorityConfig::from_toml(toml), Err(Error::Config(_))),
                "{why}"
            );
        }
    }

    #[test]
    fn clock_counts_down_then_overdue() {
        let a = PriorityConfig::default().assess(&PriorityFacts::with_signals(["threat_to_life"]));
        let clock = a.clock(T0);
        assert_eq!(clock.due_at_ms(), T0 + 60 * MIN);
        assert_eq!(
            clock.state(T0 + 15 * MIN),
            ClockState::Remaining(Duration::from_secs(45 * 60))
        );
        assert_eq!(
            clock.state(T0 + 60 * MIN),
            ClockState::Remaining(Duration::ZERO)
        );
        assert!(!clock.is_overdue(T0 + 60 * MIN));
        assert_eq!(
            clock.state(T0 + 75 * MIN),
            ClockState::Overdue(Duration::from_secs(15 * 60))
        );
        let text = clock.describe(T0 + 75 * MIN);
        assert!(text.starts_with("OVERDUE by 15m 00s;"), "{text}");
        assert!(text.contains("threat to life"), "{text}");
        assert!(clock.describe(T0).starts_with("1h 00m left"));
    }

    #[test]
    fn a_level_set_by_hand_gets_its_target() {
        let clock = DeadlineClock::for_level(
            T0,
            PriorityLevel::Two,
            &Deadlines::default(),
            "raised by the reviewer",
        );
        assert_eq!(clock.due_at_ms(), T0 + 24 * 60 * MIN);
        assert!(clock.is_overdue(T0 + 24 * 60 * MIN + 1));
        assert!(clock
            .describe(T0)
            .ends_with("level 2 (as soon as reasonably practicable): raised by the reviewer"));
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = r#"
            [deadlines]
            level_1_minutes = 60
            level_2_minutes = 1440
            level_3_minutes = 4320
            [[rules]]
            name = "threat to life or contact in progress"
            level = 1
            any_signals = ["threat_to_life", "contact_in_progress"]
            [[rules]]
            name = "live stream with a child account"
            level = 1
            all_signals = ["livestream", "child_account_involved"]
            [[rules]]
            name = "high risk score, not self-generated"
            level = 2
            min_risk_score = 0.8
            none_signals = ["self_generated"]
            [[rules]]
            name = "category A"
            level = 2
            classifications = ["A1", "A"]
        "#;
        let c = PriorityConfig::from_toml(doc).expect("valid");
        let mut facts = PriorityFacts::with_signals(["self_generated"]);
        facts.risk_score = Some(0.9);
        assert_eq!(c.assess(&facts).level, PriorityLevel::Three);
        facts.signals.clear();
        assert_eq!(c.assess(&facts).level, PriorityLevel::Two);
    }

    #[test]
    fn level_3_clock_runs_three_days() {
        let clock = PriorityConfig::default()
            .assess(&PriorityFacts::default())
            .clock(T0);
        assert_eq!(clock.due_at_ms(), T0 + 72 * 60 * MIN);
        assert!(clock.describe(T0).starts_with("3d 0h left"));
    }

    #[test]
    fn level_serialises_as_a_number() {
        assert_eq!(
            serde_json::to_string(&PriorityLevel::Two).expect("json"),
            "2"
        );
        assert!(serde_json::from_str::<PriorityLevel>("0").is_err());
    }
}
