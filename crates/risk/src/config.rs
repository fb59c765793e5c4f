//! The scoring settings (`[risk]` in the server's configuration): thresholds, weights,
//! memory bounds and the clock rules. [`RiskSpec`] is what an operator writes; it is checked
//! once, by [`crate::Scorer::new`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::feature::{Feature, FEATURE_COUNT};

/// Most accounts a scorer may be configured to track: 10 million accounts at the worst-case
/// per-account size is tens of gigabytes, beyond which a platform should shard.
pub const MAX_ACCOUNTS_LIMIT: usize = 10_000_000;

/// Most pairs tracked per account that may be configured: the pair list is scanned on each
/// event, so it stays short.
pub const MAX_PAIRS_LIMIT: usize = 256;

/// Most recent events kept per account for crossings that may be configured.
pub const MAX_RECENT_LIMIT: usize = 64;

/// The weight of each feature in the score (see [`Feature`] for what each measures). A
/// feature's contribution is its value (0 to 1) times its weight. Each field is named as the
/// feature is ([`Feature::as_str`]); every weight is a finite number of at least 0, and 0
/// turns the feature off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    pub fan_out_1h: f64,
    pub fan_out_24h: f64,
    pub age_gap: f64,
    pub quick_private: f64,
    pub minor_blocks: f64,
    pub minor_reports: f64,
    pub minor_share: f64,
    pub night_contact: f64,
    pub off_platform: f64,
    pub secrecy: f64,
    pub image_request: f64,
    pub gifts: f64,
    pub age_question: f64,
    pub meeting: f64,
    pub images_to_minors: f64,
    pub minor_profile_views: f64,
    pub semantic: f64,
}

impl Default for Weights {
    /// Set so that no single behavioural feature reaches the default `review` threshold (1.0)
    /// on its own, except reports by minors at saturation; two or three together do. The
    /// figures they give are in docs/child-safety.md, "Evaluation".
    fn default() -> Weights {
        Weights {
            fan_out_1h: 0.7,
            fan_out_24h: 0.5,
            age_gap: 0.2,
            quick_private: 0.6,
            minor_blocks: 0.8,
            minor_reports: 1.0,
            minor_share: 0.2,
            night_contact: 0.3,
            off_platform: 0.5,
            secrecy: 0.7,
            image_request: 0.7,
            gifts: 0.4,
            age_question: 0.3,
            meeting: 0.5,
            images_to_minors: 0.3,
            minor_profile_views: 0.3,
            // As a lexical request's weight: the model finds the same behaviours in other
            // words, and is counted only where no pattern was found.
            semantic: 0.5,
        }
    }
}

impl Weights {
    /// The weights in [`Feature::ALL`] order.
    pub fn as_array(&self) -> [f64; FEATURE_COUNT] {
        [
            self.fan_out_1h,
            self.fan_out_24h,
            self.age_gap,
            self.quick_private,
            self.minor_blocks,
            self.minor_reports,
            self.minor_share,
            self.night_contact,
            self.off_platform,
            self.secrecy,
            self.image_request,
            self.gifts,
            self.age_question,
            self.meeting,
            self.images_to_minors,
            self.minor_profile_views,
            self.semantic,
        ]
    }
}

/// The scoring settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskSpec {
    /// Whether the server scores events at all (`POST /v1/events`). The crate itself ignores
    /// it.
    pub enabled: bool,
    /// A pattern file to use instead of the shipped one. The crate does no I/O: the caller
    /// reads it and passes the text to [`crate::PatternSet::from_toml`].
    pub patterns: Option<PathBuf>,
    /// Score at which an account is routed to human review.
    pub review: f64,
    /// Score at which an alert fires; at least `review`.
    pub alert: f64,
    /// After a crossing, the level re-arms only once the score has fallen below
    /// `threshold × hysteresis` (0 to 1) ...
    pub hysteresis: f64,
    /// ... and at least this many seconds have passed since the crossing, so a score that
    /// hovers around a threshold is reported once per cooldown, not on every event.
    pub cooldown_secs: u64,
    /// Most accounts tracked at once; beyond it the least recently used (CLOCK) is forgotten.
    pub max_accounts: usize,
    /// Most counterparts tracked per account (for first contact, quick move to private and
    /// distinct contacts); beyond it the least recently seen is forgotten.
    pub max_pairs_per_account: usize,
    /// Recent contributing events kept per account and attached to a crossing.
    pub recent_events: usize,
    /// Seconds after a first contact within which a private message counts as a quick move
    /// to private.
    pub quick_private_secs: u64,
    /// Night starts at this local hour (0–23) ...
    pub night_start_hour: u8,
    /// ... and ends at this one (0–23, exclusive); it may wrap past midnight.
    pub night_end_hour: u8,
    /// The platform's local time as minutes from UTC (events carry UTC seconds and no zone;
    /// a platform spanning zones should send one stream per zone or leave night-time weight
    /// low).
    pub utc_offset_minutes: i32,
    /// Treat an actor of unknown age as an adult for the adult-to-minor features. On by
    /// default: a stranger who does not say their age is the case the features are for.
    pub unknown_actor_as_adult: bool,
    /// The feature weights.
    pub weights: Weights,
    /// Whether the server routes crossings: records each as a review item of the account's
    /// case in `review_queue` and sends an `account.risk` webhook event. The crate itself
    /// ignores it.
    pub route_crossings: bool,
    /// The review queue crossings go to. The crate itself ignores it.
    pub review_queue: String,
    /// Optional semantic similarity (`[risk.semantic]`): off unless a model is named.
    pub semantic: SemanticSpec,
}

/// Most messages one event batch may send through the semantic model.
pub const MAX_SEMANTIC_PER_BATCH: usize = 1_000;

/// The optional semantic model's settings (`[risk.semantic]`). The server loads the model
/// and example sets (crate `safeguard-semantic`) and marks the messages it flags; this crate
/// only counts them ([`Feature::Semantic`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SemanticSpec {
    /// The model directory (`config.json`, `tokenizer.json`, `model.safetensors`); `None`
    /// turns semantic similarity off.
    pub model_dir: Option<PathBuf>,
    /// Example sets to use instead of the shipped ones (TOML: `[[positive]]` tables with
    /// `label` and `text`, and `negative = [...]`).
    pub examples: Option<PathBuf>,
    /// A message is flagged when its similarity to the positive examples exceeds its
    /// similarity to the negative ones by at least this much (cosine, -2 to 2).
    pub min_contrast: f64,
    /// How many nearest examples of each set are averaged (1 to 32).
    pub top_k: usize,
    /// Most messages embedded per event batch (1 to [`MAX_SEMANTIC_PER_BATCH`]); the
    /// candidates past it are scored without the model, and the answer counts them.
    pub max_per_batch: usize,
}

impl Default for SemanticSpec {
    fn default() -> SemanticSpec {
        SemanticSpec {
            model_dir: None,
            examples: None,
            min_contrast: 0.1,
            top_k: 3,
            max_per_batch: 32,
        }
    }
}

impl Default for RiskSpec {
    fn default() -> RiskSpec {
        RiskSpec {
            enabled: true,
            patterns: None,
            review: 1.0,
            alert: 2.0,
            hysteresis: 0.8,
            cooldown_secs: 24 * 3600,
            max_accounts: 100_000,
            max_pairs_per_account: 32,
            recent_events: 8,
            quick_private_secs: 3600,
            night_start_hour: 22,
            night_end_hour: 6,
            utc_offset_minutes: 0,
            unknown_actor_as_adult: true,
            weights: Weights::default(),
            route_crossings: true,
            review_queue: "contact_risk".to_string(),
            semantic: SemanticSpec::default(),
        }
    }
}

impl RiskSpec {
    /// Checks every setting; the first problem is the error.
    pub fn validate(&self) -> Result<(), Error> {
        let finite_pos = |field: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::config(
                    field,
                    format!("{v} must be a number above 0"),
                ))
            }
        };
        finite_pos("review", self.review)?;
        finite_pos("alert", self.alert)?;
        // Queue names are the policy's: short, printable, no spaces (they go into URLs).
        let q = &self.review_queue;
        if q.is_empty()
            || q.len() > 64
            || !q
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(Error::config(
                "review_queue",
                format!("{q:?}: 1 to 64 of A-Z a-z 0-9 _ - ."),
            ));
        }
        if self.alert < self.review {
            return Err(Error::config(
                "alert",
                format!(
                    "{} is below review ({}); an alert is the higher threshold",
                    self.alert, self.review
                ),
            ));
        }
        if !(self.hysteresis > 0.0 && self.hysteresis <= 1.0) {
            return Err(Error::config(
                "hysteresis",
                format!("{} must be above 0 and at most 1", self.hysteresis),
            ));
        }
        let range = |field: &str, v: usize, max: usize| {
            if v == 0 || v > max {
                Err(Error::config(field, format!("{v} must be 1 to {max}")))
            } else {
                Ok(())
            }
        };
        range("max_accounts", self.max_accounts, MAX_ACCOUNTS_LIMIT)?;
        range(
            "max_pairs_per_account",
            self.max_pairs_per_account,
            MAX_PAIRS_LIMIT,
        )?;
        range("recent_events", self.recent_events, MAX_RECENT_LIMIT)?;
        for (field, h) in [
            ("night_start_hour", self.night_start_hour),
            ("night_end_hour", self.night_end_hour),
        ] {
            if h > 23 {
                return Err(Error::config(field, format!("{h} must be 0 to 23")));
            }
        }
        if self.utc_offset_minutes.unsigned_abs() > 14 * 60 {
            return Err(Error::config(
                "utc_offset_minutes",
                format!("{} must be within ±840 (±14 h)", self.utc_offset_minutes),
            ));
        }
        let sem = &self.semantic;
        if !(sem.min_contrast.is_finite() && (-2.0..=2.0).contains(&sem.min_contrast)) {
            return Err(Error::config(
                "semantic.min_contrast",
                format!("{} must be a number from -2 to 2", sem.min_contrast),
            ));
        }
        range("semantic.top_k", sem.top_k, 32)?;
        range(
            "semantic.max_per_batch",
            sem.max_per_batch,
            MAX_SEMANTIC_PER_BATCH,
        )?;
        for (f, w) in Feature::ALL.iter().zip(self.weights.as_array()) {
            if !(w.is_finite() && w >= 0.0) {
                return Err(Error::config(
                    format!("weights.{}", f.as_str()),
                    format!("{w} must be a number of at least 0"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn defaults_are_valid_and_parse_from_toml() {
        RiskSpec::default().validate().unwrap();
        let spec: RiskSpec =
            toml::from_str("review = 1.5\nalert = 3\n[weights]\nsecrecy = 0.9\n").unwrap();
        spec.validate().unwrap();
        assert_eq!(spec.weights.secrecy, 0.9);
        assert_eq!(spec.weights.fan_out_1h, Weights::default().fan_out_1h);
        assert!(toml::from_str::<RiskSpec>("colour = 1").is_err());
        assert!(toml::from_str::<RiskSpec>("[weights]\nvibes = 1").is_err());
        let spec: RiskSpec =
            toml::from_str("[semantic]\nmodel_dir = \"/m\"\nmin_contrast = 0.05\n").unwrap();
        spec.validate().unwrap();
        assert_eq!(spec.semantic.model_dir.as_deref(), Some(Path::new("/m")));
        assert_eq!(spec.semantic.top_k, 3);
        assert!(RiskSpec::default().semantic.model_dir.is_none());
        assert!(toml::from_str::<RiskSpec>("[semantic]\nmodel = \"/m\"").is_err());
    }

    #[test]
    fn weights_line_up_with_the_features() {
        // `as_array` is positional: each field must sit at its feature's index.
        let w = Weights {
            minor_profile_views: 9.0,
            fan_out_1h: 7.0,
            ..Weights::default()
        };
        let json = serde_json::to_value(&w).unwrap();
        let arr = w.as_array();
        assert_eq!(json.as_object().unwrap().len(), FEATURE_COUNT);
        for f in Feature::ALL {
            assert_eq!(json[f.as_str()].as_f64(), Some(arr[f as usize]), "{f:?}");
        }
    }

    #[test]
    fn bad_settings_name_their_field() {
        let cases: Vec<(RiskSpec, &str)> = vec![
            (
                RiskSpec {
                    review: 0.0,
                    ..RiskSpec::default()
                },
                "review",
            ),
            (
                RiskSpec {
                    alert: 0.5,
                    ..RiskSpec::default()
                },
                "alert",
            ),
            (
                RiskSpec {
                    review: f64::NAN,
                    ..RiskSpec::default()
                },
                "review",
            ),
            (
                RiskSpec {
                    hysteresis: 1.5,
                    ..RiskSpec::default()
                },
                "hysteresis",
            ),
            (
                RiskSpec {
                    max_accounts: 0,
                    ..RiskSpec::default()
                },
                "max_accounts",
            ),
            (
                RiskSpec {
                    max_pairs_per_account: 1000,
                    ..RiskSpec::default()
                },
                "max_pairs_per_account",
            ),
            (
                RiskSpec {
                    recent_events: 0,
                    ..RiskSpec::default()
                },
                "recent_events",
            ),
            (
                RiskSpec {
                    night_end_hour: 24,
                    ..RiskSpec::default()
                },
                "night_end_hour",
            ),
            (
                RiskSpec {
                    utc_offset_minutes: 1000,
                    ..RiskSpec::default()
                },
                "utc_offset_minutes",
            ),
            (
                // abs() of this wraps to itself in a release build and passed the check.
                RiskSpec {
                    utc_offset_minutes: i32::MIN,
                    ..RiskSpec::default()
                },
                "utc_offset_minutes",
            ),
            (
                RiskSpec {
                    weights: Weights {
                        gifts: -1.0,
                        ..Weights::default()
                    },
                    ..RiskSpec::default()
                },
                "weights.gifts",
            ),
            (
                RiskSpec {
                    semantic: SemanticSpec {
                        min_contrast: f64::INFINITY,
                        ..SemanticSpec::default()
                    },
                    ..RiskSpec::default()
                },
                "semantic.min_contrast",
            ),
            (
                RiskSpec {
                    semantic: SemanticSpec {
                        top_k: 0,
                        ..SemanticSpec::default()
                    },
                    ..RiskSpec::default()
                },
                "semantic.top_k",
            ),
            (
                RiskSpec {
                    semantic: SemanticSpec {
                        max_per_batch: MAX_SEMANTIC_PER_BATCH + 1,
                        ..SemanticSpec::default()
                    },
                    ..RiskSpec::default()
                },
                "semantic.max_per_batch",
            ),
        ];
        for (spec, field) in cases {
            let e = spec.validate().unwrap_err();
            assert_eq!(e.code(), "invalid_risk_config");
            assert!(e.to_string().contains(&format!("`{field}`")), "{e}");
        }
    }
}
