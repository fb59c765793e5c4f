//! One exchange's configuration, as the server reads it from an `[[exchanges]]` table or an
//! API request, and the exchange's own rules on it. They live here, beside the clients they
//! build, so that the server's configuration need not reach into its HTTP layer to check them.

use serde::Deserialize;

use crate::ncmec::{NcmecClient, NcmecConfig};
use crate::peer::{PeerClient, PeerConfig};
use crate::stopncii::{StopNciiClient, StopNciiConfig};
use crate::{Error, Result, Secret};

/// Default interval between scheduled runs of an exchange, seconds (HMA fetches every few
/// minutes; hourly keeps new hashes matchable well within a day and is polite to the
/// exchanges).
pub const DEFAULT_EXCHANGE_INTERVAL_SECS: u64 = 3600;

/// Which protocol an exchange speaks.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeKind {
    /// NCMEC hash sharing API v2.
    Ncmec,
    /// StopNCII.org.
    StopNcii,
    /// Another Safeguard instance's bank API.
    Safeguard,
}

impl ExchangeKind {
    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            ExchangeKind::Ncmec => "ncmec",
            ExchangeKind::StopNcii => "stopncii",
            ExchangeKind::Safeguard => "safeguard",
        }
    }
}

/// One `[[exchanges]]` table. Credentials may be given here or, better, in the environment as
/// `SAFEGUARD_EXCHANGE_<NAME>_<FIELD>` (for example `SAFEGUARD_EXCHANGE_NCMEC_PASSWORD`); they
/// are held as [`Secret`], which never prints.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    /// Unique UPPER_SNAKE_CASE name; also the bank it fills unless `bank` is set.
    pub name: String,
    /// Protocol.
    pub kind: ExchangeKind,
    /// Local bank (default: `name`). Created at start-up if missing.
    #[serde(default)]
    pub bank: Option<String>,
    /// The exchange's base URL (NCMEC: the environment without `/v2`; StopNCII: with `/v1`;
    /// Safeguard: the peer's root).
    pub base_url: String,
    /// Whether the scheduler runs it (a disabled exchange can still be run by hand).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Seconds between scheduled runs (at least 60), plus up to 10% jitter.
    #[serde(default = "default_exchange_interval")]
    pub interval_secs: u64,
    /// NCMEC user name.
    #[serde(default)]
    pub username: Option<String>,
    /// NCMEC password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// StopNCII `Ocp-Apim-Subscription-Key`.
    #[serde(default)]
    pub subscription_key: Option<Secret>,
    /// StopNCII function key for FetchHashes.
    #[serde(default)]
    pub fetch_function_key: Option<Secret>,
    /// StopNCII function key for SubmitFeedback.
    #[serde(default)]
    pub feedback_function_key: Option<Secret>,
    /// Safeguard peer: an API key with the `curate` scope.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Safeguard peer: the bank to copy.
    #[serde(default)]
    pub remote_bank: Option<String>,
    /// Records per page (StopNCII, peer), at most 1,000.
    #[serde(default)]
    pub page_size: Option<u32>,
    /// NCMEC: where to start without a checkpoint, Unix seconds (default 0, everything).
    #[serde(default)]
    pub start_from: Option<i64>,
    /// Pages per run at most, at least 1 (default 10,000); the next run continues.
    #[serde(default)]
    pub max_pages_per_run: Option<u64>,
    /// What Safeguard sends, by itself, for each hash of this exchange that a reviewer
    /// decided was not CSAM: NCMEC, the GUID of a negative vote's reason (one of those
    /// `GET /v2/feedback/{type}/reasons` lists); StopNCII, a feedback value (`NotBlocked`).
    /// Unset: the feedback is recorded and listed (`GET /v1/exchanges/{name}/feedback`) but
    /// not sent. A Safeguard peer takes no feedback.
    #[serde(default)]
    pub false_positive_feedback: Option<String>,
}

fn default_true() -> bool {
    true
}

fn default_exchange_interval() -> u64 {
    DEFAULT_EXCHANGE_INTERVAL_SECS
}

impl ExchangeConfig {
    /// The local bank it fills.
    pub fn bank_name(&self) -> String {
        self.bank.clone().unwrap_or_else(|| self.name.clone())
    }

    /// Reads `SAFEGUARD_EXCHANGE_<NAME>_<FIELD>` credentials over the file's.
    pub fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        let var = |field: &str| env(&format!("SAFEGUARD_EXCHANGE_{}_{field}", self.name));
        if let Some(v) = var("USERNAME") {
            self.username = Some(v);
        }
        let secrets: [(&str, &mut Option<Secret>); 5] = [
            ("PASSWORD", &mut self.password),
            ("SUBSCRIPTION_KEY", &mut self.subscription_key),
            ("FETCH_FUNCTION_KEY", &mut self.fetch_function_key),
            ("FEEDBACK_FUNCTION_KEY", &mut self.feedback_function_key),
            ("API_KEY", &mut self.api_key),
        ];
        for (field, slot) in secrets {
            if let Some(v) = env(&format!("SAFEGUARD_EXCHANGE_{}_{field}", self.name)) {
                *slot = Some(Secret::new(v));
            }
        }
    }

    /// The client of this exchange's protocol, built without contacting anything.
    pub fn client(&self) -> Result<Client> {
        let bad_url = |e: url::ParseError| Error::Config(format!("base_url: {e}"));
        let base = url::Url::parse(&self.base_url).map_err(bad_url)?;
        Ok(match self.kind {
            ExchangeKind::Ncmec => {
                let mut c = NcmecConfig::new(
                    base,
                    self.username.clone().unwrap_or_default(),
                    secret(&self.password, "password")?,
                );
                if let Some(s) = self.start_from {
                    c.start_from = s;
                }
                Client::Ncmec(NcmecClient::new(c)?)
            }
            ExchangeKind::StopNcii => {
                let mut c = StopNciiConfig::new(
                    base,
                    secret(&self.subscription_key, "subscription_key")?,
                    secret(&self.fetch_function_key, "fetch_function_key")?,
                );
                c.feedback_function_key = self.feedback_function_key.clone();
                if let Some(p) = self.page_size {
                    c.page_size = p;
                }
                Client::StopNcii(StopNciiClient::new(c)?)
            }
            ExchangeKind::Safeguard => {
                let mut c = PeerConfig::new(
                    base,
                    self.remote_bank.clone().unwrap_or_default(),
                    secret(&self.api_key, "api_key")?,
                );
                if let Some(p) = self.page_size {
                    c.page_size = p;
                }
                Client::Peer(PeerClient::new(c)?)
            }
        })
    }

    /// Checks that the configuration builds a client (URL valid, every credential the kind
    /// needs present, page size in range) without contacting anything, so that a bad table or
    /// API request is refused before any run.
    pub fn check(&self) -> Result<()> {
        self.client()?;
        if self.max_pages_per_run == Some(0) {
            // Every run would stop before its first page, never catching up, and a caller that
            // runs until caught up would spin.
            return Err(Error::Config(
                "max_pages_per_run must be at least 1 (0 would make every run fetch nothing)"
                    .into(),
            ));
        }
        let Some(v) = &self.false_positive_feedback else {
            return Ok(());
        };
        let bad = |why: &str| Err(Error::Config(format!("false_positive_feedback: {why}")));
        match self.kind {
            // A GUID (NCMEC's reasons are); which reasons exist is checked when sending.
            ExchangeKind::Ncmec => {
                let groups: Vec<&str> = v.split('-').collect();
                let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
                if lens != [8, 4, 4, 4, 12]
                    || !groups
                        .iter()
                        .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
                {
                    return bad("the GUID of an NCMEC feedback reason is expected");
                }
            }
            ExchangeKind::StopNcii => {
                if crate::stopncii::FeedbackValue::parse(v).is_none() {
                    return bad("one of None, QualityUnknown, PendingReview, Blocked, NotBlocked");
                }
            }
            ExchangeKind::Safeguard => return bad("a Safeguard peer exchange takes no feedback"),
        }
        Ok(())
    }
}

/// A built client, of whichever protocol the configuration names.
#[derive(Debug)]
pub enum Client {
    /// NCMEC hash sharing API v2.
    Ncmec(NcmecClient),
    /// StopNCII.org.
    StopNcii(StopNciiClient),
    /// Another Safeguard instance.
    Peer(PeerClient),
}

fn secret(v: &Option<Secret>, what: &str) -> Result<Secret> {
    v.clone()
        .ok_or_else(|| Error::Config(format!("{what} is not configured")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kind: &str, feedback: Option<&str>) -> ExchangeConfig {
        let mut v = serde_json::json!({
            "name": "X",
            "kind": kind,
            "base_url": "https://x.invalid",
            "username": "u",
            "password": "p",
            "subscription_key": "s",
            "fetch_function_key": "f",
            "api_key": "k",
            "remote_bank": "B",
        });
        if let Some(f) = feedback {
            v["false_positive_feedback"] = f.into();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn max_pages_per_run_of_zero_is_refused() {
        for kind in ["ncmec", "stopncii", "safeguard"] {
            let mut c = config(kind, None);
            c.max_pages_per_run = Some(0);
            let e = c.check().unwrap_err();
            assert_eq!(e.code(), "exchange_config");
            assert!(e.to_string().contains("max_pages_per_run"), "{e}");
            c.max_pages_per_run = Some(1);
            assert!(c.check().is_ok());
        }
    }

    #[test]
    fn false_positive_feedback_is_checked_per_kind() {
        let guid = "0f2c9e4a-1b3d-4c5e-8f70-123456789abc";
        assert!(config("ncmec", None).check().is_ok());
        assert!(config("ncmec", Some(guid)).check().is_ok());
        for bad in [
            "not-a-guid",
            "0f2c9e4a1b3d4c5e8f70123456789abc",
            "NotBlocked",
        ] {
            let e = config("ncmec", Some(bad)).check().unwrap_err().to_string();
            assert!(e.contains("false_positive_feedback"), "{e}");
        }
        assert!(config("stopncii", Some("NotBlocked")).check().is_ok());
        assert!(config("stopncii", Some("notblocked")).check().is_err());
        assert!(config("stopncii", Some(guid)).check().is_err());
        assert!(config("safeguard", None).check().is_ok());
        let e = config("safeguard", Some("NotBlocked"))
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("takes no feedback"), "{e}");
    }
}
