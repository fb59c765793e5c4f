//! Server configuration: defaults < TOML file < environment < command-line flags.
//! Unknown keys in the file are rejected, so a typo never silently keeps a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use safeguard_exchange::ExchangeConfig;
use serde::Deserialize;

/// Default listen address: loopback only, so a fresh install is not reachable from outside.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5100";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./safeguard-data";
/// Largest request body, in bytes: an upload of the largest accepted image plus form overhead.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Longest a request may run, in seconds, before it is answered 503/timeout.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
/// Requests handled at once; more wait for a slot (up to `limits.max_queue_ms`) rather than
/// pile up in memory.
pub const DEFAULT_MAX_CONCURRENCY: usize = 512;
/// Default of `limits.max_queue_ms`: the longest a request waits for one of the
/// `max_concurrency` slots before it is answered 503 `overloaded`. Slots free in
/// milliseconds under normal load; a second with none freed means the server is saturated,
/// and the caller is better told at once (with `Retry-After: 1`) than queued until its timeout.
pub const DEFAULT_MAX_QUEUE_MS: u64 = 1_000;
/// Default budget of request body bytes buffered at once (1 GiB): four of the largest video
/// uploads, or thirty-two of the largest image uploads, in flight together.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 1024 * 1024 * 1024;
/// Largest file fetched by URL, in bytes.
pub const DEFAULT_FETCH_MAX_BYTES: u64 = 32 * 1024 * 1024;
/// Longest a URL fetch may take, in seconds.
pub const DEFAULT_FETCH_TIMEOUT_SECS: u64 = 10;
/// Redirects followed when fetching by URL (each re-checked).
pub const DEFAULT_FETCH_MAX_REDIRECTS: usize = 5;
/// Shortest acceptable `SAFEGUARD_ADMIN_KEY`, in characters: shorter keys are guessable.
pub const MIN_ADMIN_KEY_LEN: usize = 32;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the store and snapshots live.
    pub data_dir: PathBuf,
    /// The store: `None` for SQLite in `data_dir` (the default), or a `postgres://` URL for
    /// PostgreSQL (index snapshots still go to `data_dir`). Config key `store`, environment
    /// `SAFEGUARD_STORE`, flag `--store`.
    pub store: Option<String>,
    /// What this process serves (HMA's roles): `all` (the default), or one of `hasher`,
    /// `matcher`, `curator`, so an operator can scale them separately behind a load
    /// balancer. Config key `role`, environment `SAFEGUARD_ROLE`, flag `--role`.
    pub role: Role,
    /// Development mode: no API keys required; only a loopback listen address is allowed.
    pub dev: bool,
    /// Request limits.
    pub limits: LimitsConfig,
    /// Fetching media by URL.
    pub fetch: FetchConfig,
    /// Logging.
    pub log: LogConfig,
    /// Hash-sharing exchanges fetched on a schedule (`[[exchanges]]` tables).
    pub exchanges: Vec<ExchangeConfig>,
    /// Video uploads and hashing.
    pub video: VideoConfig,
    /// vPDQ matching thresholds (each lookup may override them).
    pub vpdq: VpdqConfig,
    /// PhotoDNA: match threshold and the operator's licensed hasher plug-in.
    pub photodna: PhotoDnaConfig,
    /// The master key that seals secrets at rest (`[secrets]`).
    pub secrets: SecretsConfig,
    /// Where uploads and fetched media are decoded (`[decode]`).
    pub decode: DecodeConfig,
    /// Webhook delivery (`[webhooks]`).
    pub webhooks: WebhooksConfig,
    /// The evidence vault (`[vault]`): backend, key source, retention.
    pub vault: safeguard_vault::VaultConfig,
    /// Contact decisions for child accounts (`[contact]`, docs/child-safety.md).
    pub contact: safeguard_contact::PolicySpec,
    /// Contact-risk signals (`[risk]`, docs/child-safety.md): thresholds, weights, memory
    /// bounds, the pattern file.
    pub risk: safeguard_risk::RiskSpec,
    /// Filing reports (`[reporting]`, docs/reporting.md "Filing to NCMEC").
    pub reporting: ReportingConfig,
    /// The moderators' review console (`[console]`, docs/console.md).
    pub console: ConsoleConfig,
    /// Following and pruning the change feed (`[feed]`, docs/operations.md).
    pub feed: FeedConfig,
}

/// Following and pruning the change feed (`[feed]`, docs/operations.md "The change feed").
/// Every serving process reports its position every `heartbeat_secs`; the curator (or an
/// `all` process) prunes every `prune_interval_secs` what no live process needs and what is
/// older than `keep_secs`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    /// Prune at all (on the process that runs the schedules).
    pub prune: bool,
    /// Changes younger than this are never deleted, whatever the followers' positions,
    /// seconds. It is also what protects processes that do not report a position (older
    /// builds during an upgrade).
    pub keep_secs: u64,
    /// How often each serving process reports its position, seconds.
    pub heartbeat_secs: u64,
    /// A process silent for longer than this no longer holds the feed back, seconds (it
    /// rebuilds from the store when it comes back, if the feed was pruned past it).
    pub follower_ttl_secs: u64,
    /// How often the feed is pruned, seconds.
    pub prune_interval_secs: u64,
    /// A serving process rewrites the index snapshot in its data directory once it has
    /// applied this many changes since the last one, so its snapshot does not hold the feed
    /// back for ever (and a restart replays little).
    pub snapshot_every_changes: u64,
}

impl Default for FeedConfig {
    fn default() -> FeedConfig {
        FeedConfig {
            prune: true,
            keep_secs: 7 * 86_400,
            heartbeat_secs: 30,
            follower_ttl_secs: 86_400,
            prune_interval_secs: 600,
            snapshot_every_changes: 1_000_000,
        }
    }
}

impl FeedConfig {
    /// Every time at least 1 s and at most a year; a follower must report several times
    /// within its time-to-live, or a live process would be pruned past.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("keep_secs", self.keep_secs),
            ("heartbeat_secs", self.heartbeat_secs),
            ("follower_ttl_secs", self.follower_ttl_secs),
            ("prune_interval_secs", self.prune_interval_secs),
        ] {
            if v == 0 || v > 366 * 86_400 {
                return Err(format!(
                    "feed.{name} must be from 1 to 31622400 seconds, got {v}"
                ));
            }
        }
        if self.snapshot_every_changes == 0 {
            return Err("feed.snapshot_every_changes must be at least 1".into());
        }
        if self.follower_ttl_secs < 4 * self.heartbeat_secs {
            return Err(format!(
                "feed.follower_ttl_secs ({}) must be at least 4 heartbeats ({} s): a live \
                 process that misses one report must not be pruned past",
                self.follower_ttl_secs,
                4 * self.heartbeat_secs
            ));
        }
        Ok(())
    }
}

/// The review console (`[console]`, docs/console.md). Every limit has a safe default; the
/// exposure caps and break prompts protect the people doing the work.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Serve `/console` at all.
    pub enabled: bool,
    /// How long a claim holds a case before another reviewer may take it, seconds.
    pub lease_secs: u64,
    /// A session unused this long ends, seconds.
    pub session_idle_secs: u64,
    /// A session ends this long after login whatever its use, seconds.
    pub session_absolute_secs: u64,
    /// Failed logins in a row before an account is locked.
    pub lockout_failures: u32,
    /// How long the first lock lasts, seconds (doubling with each further run of failures).
    pub lockout_secs: u64,
    /// Failed logins per client address per ten minutes before it is answered 429.
    pub login_failures_per_ip: u32,
    /// Reveals per person per day.
    pub daily_reveal_cap: u32,
    /// Time per person per day on claimed items of media queues, seconds.
    pub daily_review_secs_cap: u64,
    /// A break prompt after this long reviewing without one, seconds.
    pub break_after_secs: u64,
    /// A revealed item is blurred again after this long on screen, seconds.
    pub reveal_max_secs: u64,
    /// The allow-list bank a "not CSAM" decision adds the item's hashes to (created on
    /// first use).
    pub false_positive_bank: String,
    /// Who may claim from which queue: queue name -> roles or `user:NAME` entries. A queue
    /// not named here is open to every reviewer and senior.
    pub queue_access: std::collections::BTreeMap<String, Vec<String>>,
    /// Where "escalate" sends a case.
    pub escalation_queue: String,
    /// Where "needs a second opinion" sends a case (never back to the same person).
    pub second_opinion_queue: String,
}

impl ConsoleConfig {
    /// Refuses settings that would lock everyone out or leave a protection off: every time
    /// and count must be at least 1, and the queue names valid.
    pub fn validate(&self) -> Result<(), String> {
        let times = [
            ("lease_secs", self.lease_secs),
            ("session_idle_secs", self.session_idle_secs),
            ("session_absolute_secs", self.session_absolute_secs),
            ("lockout_secs", self.lockout_secs),
            ("daily_review_secs_cap", self.daily_review_secs_cap),
            ("break_after_secs", self.break_after_secs),
            ("reveal_max_secs", self.reveal_max_secs),
        ];
        for (name, v) in times {
            if v == 0 || v > 366 * 86_400 {
                return Err(format!(
                    "console.{name} must be from 1 to 31622400 seconds, got {v}"
                ));
            }
        }
        let counts = [
            ("lockout_failures", self.lockout_failures),
            ("login_failures_per_ip", self.login_failures_per_ip),
            ("daily_reveal_cap", self.daily_reveal_cap),
        ];
        for (name, v) in counts {
            if v == 0 {
                return Err(format!("console.{name} must be at least 1"));
            }
        }
        if self.session_idle_secs > self.session_absolute_secs {
            return Err("console.session_idle_secs must not exceed session_absolute_secs".into());
        }
        for (name, q) in [
            ("escalation_queue", &self.escalation_queue),
            ("second_opinion_queue", &self.second_opinion_queue),
        ] {
            if q.is_empty() || q.len() > 64 {
                return Err(format!("console.{name} must be 1 to 64 characters"));
            }
        }
        safeguard_engine::validate_bank_name(&self.false_positive_bank)
            .map_err(|e| format!("console.false_positive_bank: {e}"))?;
        for (queue, who) in &self.queue_access {
            for w in who {
                let ok = match w.strip_prefix("user:") {
                    Some(name) => !name.is_empty(),
                    None => safeguard_console::role::Roles::parse(w).is_ok(),
                };
                if !ok {
                    return Err(format!(
                        "console.queue_access.{queue}: {w:?} is neither a role (reviewer, senior, admin, auditor) nor user:NAME"
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Default for ConsoleConfig {
    fn default() -> ConsoleConfig {
        ConsoleConfig {
            enabled: true,
            lease_secs: 300,
            session_idle_secs: 15 * 60,
            session_absolute_secs: 8 * 3600,
            lockout_failures: 5,
            lockout_secs: 15 * 60,
            login_failures_per_ip: 50,
            daily_reveal_cap: 100,
            daily_review_secs_cap: 4 * 3600,
            break_after_secs: 50 * 60,
            reveal_max_secs: 60,
            false_positive_bank: "CONSOLE_FALSE_POSITIVES".into(),
            queue_access: Default::default(),
            escalation_queue: "escalated".into(),
            second_opinion_queue: "second_opinion".into(),
        }
    }
}

/// Where a case's report goes (`[reporting] referral`, `crate::referral`).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Referral {
    /// NCMEC only: the default. US providers must report to NCMEC (18 U.S.C. 2258A), and the
    /// NCA asks those who do not to send it the same referral again.
    #[default]
    Ncmec,
    /// The UK NCA only.
    Nca,
    /// Both, for an organisation whose counsel says both are owed.
    Both,
}

impl Referral {
    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Referral::Ncmec => "ncmec",
            Referral::Nca => "nca",
            Referral::Both => "both",
        }
    }

    /// From the configuration name.
    pub fn parse(s: &str) -> Option<Referral> {
        Some(match s {
            "ncmec" => Referral::Ncmec,
            "nca" => Referral::Nca,
            "both" => Referral::Both,
            _ => return None,
        })
    }
}

/// Filing reports (`[reporting]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReportingConfig {
    /// Where each case's report goes, unless set for that case (`crate::referral`).
    pub referral: Referral,
    /// NCMEC's CyberTipline (`[reporting.ncmec]`).
    pub ncmec: NcmecConfig,
    /// UK NCA reports (`[reporting.nca]`).
    pub nca: NcaConfig,
}

/// UK NCA reports (`[reporting.nca]`, docs/reporting.md).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NcaConfig {
    /// A TOML file of priority rules and deadline targets (`safeguard_nca::priority`); the
    /// built-in defaults when absent. Read once at start (a bad file stops the start); a
    /// change takes a restart.
    pub priority_rules: Option<PathBuf>,
    /// Sending reports through the NCA's HTTPS API (`[reporting.nca.api]`), off by default:
    /// the API's specification is not public yet (docs/reporting.md).
    pub api: NcaApiConfig,
}

/// Default limit on one attempt to send a report through the API, seconds: two minutes, for a
/// large case on a slow link.
pub const DEFAULT_NCA_API_TIMEOUT_SECS: u64 = 120;
/// Default attempts per send (connection errors, 408, 429 and 5xx are retried).
pub const DEFAULT_NCA_API_MAX_ATTEMPTS: u32 = 4;
/// Default first pause between attempts, milliseconds (doubled each time, capped at 8 s).
pub const DEFAULT_NCA_API_INITIAL_BACKOFF_MS: u64 = 1000;

/// The NCA's HTTPS API (`[reporting.nca.api]`). The bearer token is not here:
/// `safeguard report nca-token` stores it sealed in the store.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NcaApiConfig {
    /// Whether approved cases may be sent through the API.
    pub enabled: bool,
    /// Where reports are posted; `https` only.
    pub endpoint: Option<String>,
    /// PEM certificates to trust instead of the public web PKI (a private CA); nothing else is
    /// trusted when set.
    pub ca_file: Option<PathBuf>,
    /// Limit on one attempt, seconds ([`DEFAULT_NCA_API_TIMEOUT_SECS`]), at least 1.
    pub timeout_secs: u64,
    /// Attempts per send ([`DEFAULT_NCA_API_MAX_ATTEMPTS`]), 1 to 10.
    pub max_attempts: u32,
    /// First pause between attempts, milliseconds ([`DEFAULT_NCA_API_INITIAL_BACKOFF_MS`]).
    pub initial_backoff_ms: u64,
}

impl Default for NcaApiConfig {
    fn default() -> NcaApiConfig {
        NcaApiConfig {
            enabled: false,
            endpoint: None,
            ca_file: None,
            timeout_secs: DEFAULT_NCA_API_TIMEOUT_SECS,
            max_attempts: DEFAULT_NCA_API_MAX_ATTEMPTS,
            initial_backoff_ms: DEFAULT_NCA_API_INITIAL_BACKOFF_MS,
        }
    }
}

impl NcaApiConfig {
    /// Checks the section; a disabled one too, so a typo shows before it is switched on.
    pub fn validate(&self) -> Result<(), String> {
        if self.timeout_secs == 0 {
            return Err("reporting.nca.api.timeout_secs must be at least 1".into());
        }
        if !(1..=10).contains(&self.max_attempts) {
            return Err("reporting.nca.api.max_attempts must be 1 to 10".into());
        }
        match &self.endpoint {
            Some(e) => match url::Url::parse(e) {
                Ok(u) if u.scheme() == "https" && u.host().is_some() => {}
                _ => {
                    return Err(format!(
                        "reporting.nca.api.endpoint {e:?} is not an https URL: reports carry \
                         the most sensitive data there is"
                    ))
                }
            },
            None if self.enabled => {
                return Err("reporting.nca.api.endpoint is required when enabled".into())
            }
            None => {}
        }
        if let Some(path) = &self.ca_file {
            if self.enabled && !path.is_file() {
                return Err(format!(
                    "reporting.nca.api.ca_file {} is not a readable file",
                    path.display()
                ));
            }
        }
        Ok(())
    }
}

impl NcaConfig {
    /// The priority rules in force.
    pub fn priority(&self) -> Result<safeguard_nca::PriorityConfig, String> {
        match &self.priority_rules {
            None => Ok(safeguard_nca::PriorityConfig::default()),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("reporting.nca.priority_rules {}: {e}", path.display()))?;
                safeguard_nca::PriorityConfig::from_toml(&text)
                    .map_err(|e| format!("reporting.nca.priority_rules {}: {e}", path.display()))
            }
        }
    }
}

/// Which CyberTipline reports go to.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NcmecEnvironment {
    /// NCMEC's test system (exttest), the default: nothing sent there reaches an analyst.
    #[default]
    Test,
    /// The production CyberTipline; only when the configuration says so explicitly.
    Production,
}

/// Incident type of a report unless the configuration names another (NCMEC's XSD string).
pub const DEFAULT_NCMEC_INCIDENT_TYPE: &str =
    "Child Pornography (possession, manufacture, and distribution)";
/// Attempts per CyberTipline call before a filing run gives up (it resumes at the next start
/// or the next `POST`): the filer's own default.
pub const DEFAULT_NCMEC_MAX_ATTEMPTS: u32 = 5;
/// First pause between attempts, milliseconds (doubled each time, capped at 10 s).
pub const DEFAULT_NCMEC_INITIAL_BACKOFF_MS: u64 = 500;

/// NCMEC's CyberTipline (`[reporting.ncmec]`). Off by default. The account's credentials
/// are not here: `safeguard report ncmec-credentials` stores them sealed in the store.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NcmecConfig {
    /// Whether approved cases may be filed.
    pub enabled: bool,
    /// `test` (the default) or `production`.
    pub environment: NcmecEnvironment,
    /// Replaces the environment's base URL (a local test server); plain `http` only to a
    /// loopback address.
    pub base_url: Option<String>,
    /// The reporting person's email, required when enabled: NCMEC writes to it.
    pub reporter_email: Option<String>,
    /// The reporting person's first name.
    pub reporter_first_name: Option<String>,
    /// The reporting person's last name.
    pub reporter_last_name: Option<String>,
    /// The platform's name (`incidentSummary/platform`, `espService`).
    pub platform: Option<String>,
    /// Where law enforcement sends legal process (`reporter/legalURL`).
    pub legal_url: Option<String>,
    /// The incident type, one of NCMEC's strings ([`DEFAULT_NCMEC_INCIDENT_TYPE`]).
    pub incident_type: String,
    /// Attempts per call ([`DEFAULT_NCMEC_MAX_ATTEMPTS`]), at least 1.
    pub max_attempts: u32,
    /// First pause between attempts, milliseconds ([`DEFAULT_NCMEC_INITIAL_BACKOFF_MS`]).
    pub initial_backoff_ms: u64,
}

impl Default for NcmecConfig {
    fn default() -> NcmecConfig {
        NcmecConfig {
            enabled: false,
            environment: NcmecEnvironment::Test,
            base_url: None,
            reporter_email: None,
            reporter_first_name: None,
            reporter_last_name: None,
            platform: None,
            legal_url: None,
            incident_type: DEFAULT_NCMEC_INCIDENT_TYPE.into(),
            max_attempts: DEFAULT_NCMEC_MAX_ATTEMPTS,
            initial_backoff_ms: DEFAULT_NCMEC_INITIAL_BACKOFF_MS,
        }
    }
}

impl NcmecConfig {
    /// The incident type, if it is one of NCMEC's.
    pub fn incident(&self) -> Option<safeguard_ncmec::model::IncidentType> {
        safeguard_ncmec::model::IncidentType::ALL
            .into_iter()
            .find(|t| t.as_str() == self.incident_type)
    }

    /// Checks the section; an unused (disabled) section is checked too, so a typo shows
    /// before the day it is switched on.
    pub fn validate(&self) -> Result<(), String> {
        if self.incident().is_none() {
            return Err(format!(
                "reporting.ncmec.incident_type {:?} is not one of NCMEC's: {}",
                self.incident_type,
                safeguard_ncmec::model::IncidentType::ALL
                    .map(|t| t.as_str())
                    .join("; ")
            ));
        }
        if self.max_attempts == 0 {
            return Err("reporting.ncmec.max_attempts must be at least 1".into());
        }
        // Required when enabled; checked whenever given, so the preview of a disabled
        // section cannot meet it as an invalid report.
        let bad_email = match self.reporter_email.as_deref() {
            Some(e) => !safeguard_ncmec::model::is_email_address(e),
            None => self.enabled,
        };
        if bad_email {
            return Err(
                "reporting.ncmec.reporter_email must be an e-mail address (one @, no \
                 spaces), and is required when enabled: NCMEC writes to it"
                    .into(),
            );
        }
        if let Some(u) = &self.base_url {
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(format!(
                    "reporting.ncmec.base_url {u:?} is not an http(s) URL"
                ));
            }
        }
        Ok(())
    }
}

/// Webhook delivery (`[webhooks]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Hosts (names or IP addresses) endpoints may use even though they resolve to internal
    /// addresses; every other endpoint goes through the same guard as URL fetching.
    pub allow_internal_hosts: Vec<String>,
    /// Timeout of one delivery attempt, seconds.
    pub timeout_secs: u64,
    /// How long an event is retried before it goes to the dead-letter list, hours.
    pub retry_horizon_hours: u64,
    /// How long an endpoint may fail without a success before it is disabled, hours (at
    /// least the retry horizon).
    pub disable_after_hours: u64,
    /// First retry delay, seconds (doubling up to an hour, with full jitter).
    pub retry_base_secs: u64,
}

impl Default for WebhooksConfig {
    fn default() -> WebhooksConfig {
        WebhooksConfig {
            allow_internal_hosts: Vec::new(),
            timeout_secs: 10,
            retry_horizon_hours: 24,
            disable_after_hours: 72,
            retry_base_secs: 5,
        }
    }
}

/// Most seconds `webhooks.timeout_secs` may be (five minutes).
pub const MAX_WEBHOOK_TIMEOUT_SECS: u64 = 300;

/// Largest `webhooks.retry_base_secs`: the retry schedule's fixed longest delay (1 h), which
/// the first delay may not exceed.
pub const MAX_WEBHOOK_RETRY_BASE_SECS: u64 = 3600;

/// Largest `webhooks.retry_horizon_hours` and `disable_after_hours`: 10 years, far past any
/// useful retry, and small enough that the hours in seconds or milliseconds fit a u64.
pub const MAX_WEBHOOK_HOURS: u64 = 87_600;

/// Where the master key comes from. It seals the credentials of exchanges created through the
/// API (and, later, other secrets the instance stores); see `safeguard_seal`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// The key file (default `<data_dir>/master.key`): 64 hex characters, created with mode
    /// 0600 on first use; refused when other users can read it.
    pub master_key_file: Option<PathBuf>,
    /// The key itself, from `SAFEGUARD_MASTER_KEY` (64 hex characters), which then wins over
    /// the file. Never read from the configuration file: a key beside the data it protects
    /// in a shared file protects little.
    #[serde(skip)]
    pub master_key: Option<safeguard_exchange::Secret>,
}

/// Default address-space limit of a decode worker, MiB (see
/// `safeguard_sandbox::DEFAULT_MEMORY_LIMIT` for what it must hold).
pub const DEFAULT_WORKER_MEMORY_MIB: u64 = safeguard_sandbox::DEFAULT_MEMORY_LIMIT >> 20;

/// Smallest accepted `decode.worker_memory_mib`: below this the mapped program and FFmpeg's
/// libraries leave too little for any decode.
pub const MIN_WORKER_MEMORY_MIB: u64 = 256;

/// Where media is decoded (`[decode]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeConfig {
    /// Decode (and hash) in confined worker processes: a seccomp filter leaves them no file
    /// system, network or process access, with limits on memory, CPU time and open files; a
    /// crashed worker fails only its request (`decoder_crashed`) and is replaced. `false`
    /// decodes inside the server process: LESS SAFE, since a decoder bug triggered by a
    /// hostile upload would run with the server's access to the store and keys. Hashes are
    /// the same either way.
    pub sandbox: bool,
    /// Address-space limit of each worker, MiB (`RLIMIT_AS`).
    pub worker_memory_mib: u64,
}

impl Default for DecodeConfig {
    fn default() -> DecodeConfig {
        DecodeConfig {
            sandbox: true,
            worker_memory_mib: DEFAULT_WORKER_MEMORY_MIB,
        }
    }
}

/// Largest video upload, in bytes (a separate, larger limit than `limits.max_body_bytes`,
/// which stays sized for images): a 5-minute 1080p phone video is about 100 MiB, and the whole
/// file is held in memory while it is decoded.
pub const DEFAULT_MAX_VIDEO_BYTES: usize = 256 * 1024 * 1024;
/// Longest video accepted, in seconds (declared, or reached while decoding): 30 minutes.
pub const DEFAULT_MAX_VIDEO_SECS: u64 = 30 * 60;
/// Wall-clock budget for decoding and hashing one video, in seconds. Below the default
/// request timeout, so an over-budget video is answered with `decode_timeout`, never left
/// running after its request has gone.
pub const DEFAULT_MAX_VIDEO_DECODE_SECS: u64 = 25;
/// Largest video frame side, pixels (4K UHD is 3840 x 2160).
pub const DEFAULT_MAX_VIDEO_SIDE: u32 = 4096;

/// Video uploads and hashing.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VideoConfig {
    /// Largest video upload, bytes (the body limit of the upload routes). URL fetches stay
    /// bounded by `fetch.max_bytes`.
    pub max_bytes: usize,
    /// Longest video, seconds.
    pub max_duration_secs: u64,
    /// Largest frame width or height, pixels.
    pub max_side: u32,
    /// Decode-and-hash budget per video, seconds (capped at `limits.request_timeout_secs`).
    pub max_decode_secs: u64,
    /// Seconds between hashed frames (by frame count, as the reference); 0 hashes every
    /// frame. 1.0 is python-threatexchange's and HMA's default.
    pub seconds_per_hash: f64,
}

/// vPDQ matching thresholds; the defaults are python-threatexchange's and HMA's.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VpdqConfig {
    /// Two frames match at this PDQ distance or less (inclusive).
    pub frame_distance: u32,
    /// Frames below this PDQ quality are ignored on both sides.
    pub frame_quality: u8,
    /// Least percentage of the query video's distinct frames that must match (pytx: 80).
    pub query_match_percent: f64,
    /// Least percentage of the banked video's distinct frames that must match (pytx: 0; the
    /// upstream vPDQ README's example puts 80 here instead).
    pub compared_match_percent: f64,
}

impl Default for VideoConfig {
    fn default() -> VideoConfig {
        VideoConfig {
            max_bytes: DEFAULT_MAX_VIDEO_BYTES,
            max_duration_secs: DEFAULT_MAX_VIDEO_SECS,
            max_side: DEFAULT_MAX_VIDEO_SIDE,
            max_decode_secs: DEFAULT_MAX_VIDEO_DECODE_SECS,
            seconds_per_hash: 1.0,
        }
    }
}

impl Default for VpdqConfig {
    fn default() -> VpdqConfig {
        let d = safeguard_vpdq::VpdqMatchConfig::default();
        VpdqConfig {
            frame_distance: d.frame_distance,
            frame_quality: d.frame_quality,
            query_match_percent: d.query_match_percent,
            compared_match_percent: d.compared_match_percent,
        }
    }
}

/// Default PhotoDNA plug-in timeout, milliseconds.
pub const DEFAULT_PLUGIN_TIMEOUT_MS: u64 = 10_000;
/// Default PhotoDNA plug-in calls at once.
pub const DEFAULT_PLUGIN_CONCURRENCY: usize = 4;

/// `[photodna]` in the configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PhotoDnaConfig {
    /// Largest Euclidean distance that counts as a match. Safeguard ships no tuned value: the
    /// default 0 matches identical values only, until the operator sets the value their
    /// licence documentation recommends.
    pub threshold: f64,
    /// The licensed hasher, if any. Without one, `photodna` values can still be stored and
    /// looked up by value; uploads get no `photodna` signal.
    pub hasher: Option<PluginConfig>,
}

impl Default for PhotoDnaConfig {
    fn default() -> PhotoDnaConfig {
        PhotoDnaConfig {
            threshold: 0.0,
            hasher: None,
        }
    }
}

/// How to reach the PhotoDNA plug-in: exactly one of `command` and `url`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Program and arguments, run without a shell.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// HTTP endpoint that takes the bytes in a POST.
    #[serde(default)]
    pub url: Option<String>,
    /// Timeout of one call, milliseconds.
    #[serde(default = "default_plugin_timeout")]
    pub timeout_ms: u64,
    /// Calls at once.
    #[serde(default = "default_plugin_concurrency")]
    pub max_concurrency: usize,
}

fn default_plugin_timeout() -> u64 {
    DEFAULT_PLUGIN_TIMEOUT_MS
}

fn default_plugin_concurrency() -> usize {
    DEFAULT_PLUGIN_CONCURRENCY
}

impl PhotoDnaConfig {
    /// Checks the settings; the message names the bad key.
    pub fn validate(&self) -> Result<(), String> {
        if !self.threshold.is_finite() || self.threshold < 0.0 {
            return Err("photodna.threshold must be a finite number >= 0".into());
        }
        if let Some(h) = &self.hasher {
            match (&h.command, &h.url) {
                (Some(c), None) if !c.is_empty() && !c[0].is_empty() => {}
                (Some(_), None) => {
                    return Err("photodna.hasher.command must name a program".into());
                }
                (None, Some(u)) => {
                    let parsed = url::Url::parse(u)
                        .map_err(|e| format!("photodna.hasher.url is not a URL: {e}"))?;
                    if !matches!(parsed.scheme(), "http" | "https") {
                        return Err("photodna.hasher.url must be http or https".into());
                    }
                }
                _ => {
                    return Err("photodna.hasher needs exactly one of `command` and `url`".into());
                }
            }
            if h.timeout_ms == 0 || h.max_concurrency == 0 {
                return Err(
                    "photodna.hasher.timeout_ms and max_concurrency must be above 0".into(),
                );
            }
        }
        Ok(())
    }
}

/// Request and media limits.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Request timeout, seconds.
    pub request_timeout_secs: u64,
    /// Requests in flight at once.
    pub max_concurrency: usize,
    /// Longest a request waits for a slot when `max_concurrency` are in flight,
    /// milliseconds (never longer than the request timeout); then 503 `overloaded`. 0: no
    /// waiting at all.
    pub max_queue_ms: u64,
    /// Largest width or height of an image, pixels.
    pub max_image_side: u32,
    /// Largest width × height of an image, pixels.
    pub max_image_pixels: u64,
    /// Request body bytes held in memory at once, over all requests (uploads, JSON bodies,
    /// fetched URLs): charged as the bytes arrive, released when the request (or a decode of
    /// its bytes that outlives it) ends. Over it, requests are answered 503 `overloaded`.
    /// Must hold at least one largest upload (`video.max_bytes`, `limits.max_body_bytes`).
    pub max_buffered_bytes: usize,
    /// Decode-and-hash jobs run at once; 0 means one per core.
    pub max_cpu_jobs: usize,
}

/// URL fetching (`/h/hash?url=`, `/m/lookup?url=`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    /// Whether fetching by URL is allowed at all.
    pub enabled: bool,
    /// Hosts (names or IP addresses) that may be fetched even though they resolve to
    /// loopback, private, link-local or otherwise internal addresses.
    pub allow_internal_hosts: Vec<String>,
    /// Largest body fetched, bytes.
    pub max_bytes: u64,
    /// Timeout of a whole fetch, seconds.
    pub timeout_secs: u64,
    /// Redirects followed.
    pub max_redirects: usize,
}

/// Log output.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `json` (one object per line) or `text`.
    pub format: String,
    /// Filter, as `RUST_LOG` (e.g. `info`, `safeguard_server=debug`).
    pub level: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            data_dir: DEFAULT_DATA_DIR.into(),
            store: None,
            role: Role::All,
            dev: false,
            limits: LimitsConfig::default(),
            fetch: FetchConfig::default(),
            log: LogConfig::default(),
            exchanges: Vec::new(),
            video: VideoConfig::default(),
            vpdq: VpdqConfig::default(),
            photodna: PhotoDnaConfig::default(),
            secrets: SecretsConfig::default(),
            decode: DecodeConfig::default(),
            webhooks: WebhooksConfig::default(),
            vault: safeguard_vault::VaultConfig::default(),
            contact: safeguard_contact::PolicySpec::default(),
            risk: safeguard_risk::RiskSpec::default(),
            reporting: ReportingConfig::default(),
            console: ConsoleConfig::default(),
            feed: FeedConfig::default(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_timeout_secs: DEFAULT_REQUEST_TIMEOUT_SECS,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            max_queue_ms: DEFAULT_MAX_QUEUE_MS,
            max_image_side: safeguard_media::DEFAULT_MAX_SIDE,
            max_image_pixels: safeguard_media::DEFAULT_MAX_PIXELS,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            max_cpu_jobs: 0,
        }
    }
}

impl Default for FetchConfig {
    fn default() -> FetchConfig {
        FetchConfig {
            enabled: true,
            allow_internal_hosts: Vec::new(),
            max_bytes: DEFAULT_FETCH_MAX_BYTES,
            timeout_secs: DEFAULT_FETCH_TIMEOUT_SECS,
            max_redirects: DEFAULT_FETCH_MAX_REDIRECTS,
        }
    }
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            format: "json".into(),
            level: "info".into(),
        }
    }
}

/// A configuration problem, reported before the server starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (unknown keys included).
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (line, key).
        message: String,
    },
    /// An environment variable has an invalid value.
    #[error("invalid environment variable {name}: {message}")]
    Env {
        /// The variable.
        name: String,
        /// Why.
        message: String,
    },
    /// The resulting configuration is unsafe or inconsistent.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Reads the file (if any) over the defaults, then the `SAFEGUARD_*` environment
    /// variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut c = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.into(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.into(),
                    message: e.to_string(),
                })?
            }
            None => Config::default(),
        };
        fn parse<T: std::str::FromStr>(name: &str, v: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.parse().map_err(|e: T::Err| ConfigError::Env {
                name: name.into(),
                message: e.to_string(),
            })
        }
        if let Some(v) = env("SAFEGUARD_LISTEN") {
            c.listen = parse("SAFEGUARD_LISTEN", v)?;
        }
        if let Some(v) = env("SAFEGUARD_DATA_DIR") {
            c.data_dir = v.into();
        }
        if let Some(v) = env("SAFEGUARD_STORE").filter(|v| !v.is_empty()) {
            c.store = Some(v);
        }
        if let Some(v) = env("SAFEGUARD_ROLE").filter(|v| !v.is_empty()) {
            c.role = Role::parse(&v).ok_or_else(|| ConfigError::Env {
                name: "SAFEGUARD_ROLE".into(),
                message: format!("{v:?} is not one of {}", Role::NAMES.join(", ")),
            })?;
        }
        if let Some(v) = env("SAFEGUARD_DEV") {
            c.dev = parse("SAFEGUARD_DEV", v)?;
        }
        if let Some(v) = env("SAFEGUARD_MAX_BODY_BYTES") {
            c.limits.max_body_bytes = parse("SAFEGUARD_MAX_BODY_BYTES", v)?;
        }
        if let Some(v) = env("SAFEGUARD_REQUEST_TIMEOUT_SECS") {
            c.limits.request_timeout_secs = parse("SAFEGUARD_REQUEST_TIMEOUT_SECS", v)?;
        }
        if let Some(v) = env("SAFEGUARD_MAX_CONCURRENCY") {
            c.limits.max_concurrency = parse("SAFEGUARD_MAX_CONCURRENCY", v)?;
        }
        if let Some(v) = env("SAFEGUARD_MAX_QUEUE_MS") {
            c.limits.max_queue_ms = parse("SAFEGUARD_MAX_QUEUE_MS", v)?;
        }
        if let Some(v) = env("SAFEGUARD_MAX_BUFFERED_BYTES") {
            c.limits.max_buffered_bytes = parse("SAFEGUARD_MAX_BUFFERED_BYTES", v)?;
        }
        if let Some(v) = env("SAFEGUARD_LOG_FORMAT") {
            c.log.format = v;
        }
        if let Some(v) = env("SAFEGUARD_LOG") {
            c.log.level = v;
        }
        if let Some(v) = env("SAFEGUARD_WEBHOOK_ALLOW_INTERNAL_HOSTS") {
            c.webhooks.allow_internal_hosts = v
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = env("SAFEGUARD_DECODE_SANDBOX") {
            c.decode.sandbox = parse("SAFEGUARD_DECODE_SANDBOX", v)?;
        }
        for x in &mut c.exchanges {
            x.apply_env(&env);
        }
        if let Some(v) = env(safeguard_seal::ENV_VAR) {
            c.secrets.master_key = Some(safeguard_exchange::Secret::new(v));
        }
        Ok(c)
    }

    /// Checks the combination of settings; called after flags are applied.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_exchanges(&self.exchanges)?;
        self.vault
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.console.validate().map_err(ConfigError::Invalid)?;
        self.feed.validate().map_err(ConfigError::Invalid)?;
        let w = &self.webhooks;
        if w.timeout_secs == 0 || w.retry_horizon_hours == 0 || w.retry_base_secs == 0 {
            return Err(ConfigError::Invalid(
                "webhooks: timeout_secs, retry_base_secs and retry_horizon_hours must be at least 1"
                    .into(),
            ));
        }
        // One attempt may take this long; the dispatch lease outlives a run and its attempt
        // (crate::webhooks::dispatch_lease_ttl), so an unbounded timeout would make a lease
        // no other process could ever take over.
        if w.timeout_secs > MAX_WEBHOOK_TIMEOUT_SECS {
            return Err(ConfigError::Invalid(format!(
                "webhooks.timeout_secs ({}) must be at most {MAX_WEBHOOK_TIMEOUT_SECS}; a \
                 receiver should answer in seconds and work afterwards",
                w.timeout_secs
            )));
        }
        // The schedule refuses a first delay above its fixed one-hour cap, and the
        // dispatcher would then never start: refused here, where the operator sees it.
        if w.retry_base_secs > MAX_WEBHOOK_RETRY_BASE_SECS {
            return Err(ConfigError::Invalid(format!(
                "webhooks.retry_base_secs ({}) must be at most {MAX_WEBHOOK_RETRY_BASE_SECS} \
                 (one hour, the longest delay between two attempts)",
                w.retry_base_secs
            )));
        }
        // Hours become seconds (× 3600) in u64 arithmetic; this bound keeps that exact.
        if w.retry_horizon_hours > MAX_WEBHOOK_HOURS || w.disable_after_hours > MAX_WEBHOOK_HOURS {
            return Err(ConfigError::Invalid(format!(
                "webhooks.retry_horizon_hours ({}) and disable_after_hours ({}) must be at most \
                 {MAX_WEBHOOK_HOURS} (10 years)",
                w.retry_horizon_hours, w.disable_after_hours
            )));
        }
        if w.disable_after_hours < w.retry_horizon_hours {
            return Err(ConfigError::Invalid(format!(
                "webhooks.disable_after_hours ({}) must be at least retry_horizon_hours ({}): \
                 an endpoint would be disabled while its events still have retries left",
                w.disable_after_hours, w.retry_horizon_hours
            )));
        }
        self.photodna.validate().map_err(ConfigError::Invalid)?;
        self.reporting
            .ncmec
            .validate()
            .map_err(ConfigError::Invalid)?;
        self.reporting
            .nca
            .priority()
            .map_err(ConfigError::Invalid)?;
        self.reporting
            .nca
            .api
            .validate()
            .map_err(ConfigError::Invalid)?;
        safeguard_contact::ContactPolicy::new(self.contact.clone())
            .map_err(|e| ConfigError::Invalid(format!("contact: {e}")))?;
        self.risk
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if self.dev && !self.listen.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "--dev disables authentication, so it only listens on loopback; {} is not",
                self.listen
            )));
        }
        if !matches!(self.log.format.as_str(), "json" | "text") {
            return Err(ConfigError::Invalid(format!(
                "log.format must be \"json\" or \"text\", got {:?}",
                self.log.format
            )));
        }
        if self.limits.max_concurrency == 0 || self.limits.request_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "limits.max_concurrency and limits.request_timeout_secs must be positive".into(),
            ));
        }
        let largest = self.video.max_bytes.max(self.limits.max_body_bytes);
        if self.limits.max_buffered_bytes < largest {
            return Err(ConfigError::Invalid(format!(
                "limits.max_buffered_bytes ({}) must hold at least one largest upload ({largest} \
                 bytes: video.max_bytes, limits.max_body_bytes)",
                self.limits.max_buffered_bytes
            )));
        }
        // A matched upload is sealed into the vault whole; one the vault refuses could never
        // be recorded, so no upload limit may pass the vault's.
        let vault_max = safeguard_vault::MAX_OBJECT_SIZE;
        for (name, value) in [
            ("video.max_bytes", self.video.max_bytes as u64),
            ("limits.max_body_bytes", self.limits.max_body_bytes as u64),
            ("fetch.max_bytes", self.fetch.max_bytes),
        ] {
            if value > vault_max {
                return Err(ConfigError::Invalid(format!(
                    "{name} ({value}) must be at most {vault_max} bytes ({} MiB), the largest \
                     object the evidence vault keeps: matched media above it could never be \
                     kept as evidence",
                    vault_max >> 20
                )));
            }
        }
        if self.limits.max_buffered_bytes > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(ConfigError::Invalid(format!(
                "limits.max_buffered_bytes must be at most {}",
                tokio::sync::Semaphore::MAX_PERMITS
            )));
        }
        self.vpdq_match()
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("vpdq: {e}")))?;
        let v = &self.video;
        if !(v.seconds_per_hash.is_finite() && v.seconds_per_hash >= 0.0) {
            return Err(ConfigError::Invalid(
                "video.seconds_per_hash must be a number >= 0".into(),
            ));
        }
        if v.max_bytes == 0 || v.max_duration_secs == 0 || v.max_side == 0 || v.max_decode_secs == 0
        {
            return Err(ConfigError::Invalid(
                "video.max_bytes, max_duration_secs, max_side and max_decode_secs must be positive"
                    .into(),
            ));
        }
        if self.decode.worker_memory_mib < MIN_WORKER_MEMORY_MIB {
            return Err(ConfigError::Invalid(format!(
                "decode.worker_memory_mib must be at least {MIN_WORKER_MEMORY_MIB}"
            )));
        }
        Ok(())
    }

    /// The decoder this configuration asks for: confined workers (one kept per core, the
    /// server's CPU permits), or in-process with `decode.sandbox = false`. No worker starts
    /// until the first decode.
    pub fn decoder(&self) -> safeguard_sandbox::Decoder {
        if !self.decode.sandbox {
            return safeguard_sandbox::Decoder::InProcess;
        }
        let defaults = safeguard_sandbox::PoolConfig::default();
        // Past the request timeout nobody awaits the answer: an image decode still running
        // then is killed and its worker replaced.
        let image_deadline = std::time::Duration::from_secs(self.limits.request_timeout_secs);
        let video_deadline = self
            .video_options()
            .limits
            .max_decode_time
            .saturating_add(safeguard_sandbox::VIDEO_DEADLINE_GRACE);
        safeguard_sandbox::Decoder::sandboxed(safeguard_sandbox::PoolConfig {
            memory_limit: self.decode.worker_memory_mib.saturating_mul(1024 * 1024),
            image_deadline,
            cpu_limit: defaults
                .cpu_limit
                .max(image_deadline.max(video_deadline).saturating_mul(2)),
            ..defaults
        })
    }

    /// The configured vPDQ thresholds.
    pub fn vpdq_match(&self) -> safeguard_vpdq::VpdqMatchConfig {
        safeguard_vpdq::VpdqMatchConfig {
            frame_distance: self.vpdq.frame_distance,
            frame_quality: self.vpdq.frame_quality,
            query_match_percent: self.vpdq.query_match_percent,
            compared_match_percent: self.vpdq.compared_match_percent,
        }
    }

    /// How uploaded and fetched videos are decoded and hashed.
    pub fn video_options(&self) -> safeguard_engine::video::VideoOptions {
        let v = &self.video;
        let d = safeguard_media::video::VideoLimits::default();
        let side = v.max_side.min(d.max_width);
        safeguard_engine::video::VideoOptions {
            seconds_per_hash: v.seconds_per_hash,
            limits: safeguard_media::video::VideoLimits {
                max_input_bytes: (v.max_bytes as u64).max(self.fetch.max_bytes),
                max_width: side,
                max_height: side,
                max_pixels: (u64::from(side) * u64::from(side)).min(d.max_pixels),
                max_duration: std::time::Duration::from_secs(v.max_duration_secs),
                // Every frame is decoded; 60 fps bounds the count whatever the container claims.
                max_frames: v.max_duration_secs.saturating_mul(60).min(d.max_frames),
                // Never longer than the request may run: past that, nobody awaits the result.
                max_decode_time: std::time::Duration::from_secs(
                    v.max_decode_secs.min(self.limits.request_timeout_secs),
                ),
            },
        }
    }

    /// Media decode limits from this configuration.
    pub fn media_limits(&self) -> safeguard_media::Limits {
        safeguard_media::Limits {
            max_width: self.limits.max_image_side,
            max_height: self.limits.max_image_side,
            max_pixels: self.limits.max_image_pixels,
            max_input_bytes: (self.limits.max_body_bytes as u64).max(self.fetch.max_bytes),
            ..safeguard_media::Limits::default()
        }
    }
}

/// Checks the `[[exchanges]]` tables: valid unique names, and each builds a client.
pub fn validate_exchanges(list: &[ExchangeConfig]) -> Result<(), ConfigError> {
    let mut seen = std::collections::BTreeSet::new();
    for x in list {
        safeguard_engine::validate_bank_name(&x.name)
            .and_then(|_| safeguard_engine::validate_bank_name(&x.bank_name()))
            .map_err(|e| ConfigError::Invalid(format!("exchange {:?}: {e}", x.name)))?;
        if !seen.insert(x.name.clone()) {
            return Err(ConfigError::Invalid(format!(
                "exchange {:?} is configured twice",
                x.name
            )));
        }
        x.check()
            .map_err(|e| ConfigError::Invalid(format!("exchange {}: {e}", x.name)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "sg-config-{}-{}.toml",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn console_settings_that_would_disable_a_protection_are_refused() {
        assert_eq!(ConsoleConfig::default().validate(), Ok(()));
        let bad = |f: fn(&mut ConsoleConfig)| {
            let mut c = ConsoleConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.lease_secs = 0).contains("lease_secs"));
        assert!(bad(|c| c.lockout_failures = 0).contains("lockout_failures"));
        assert!(bad(|c| c.daily_reveal_cap = 0).contains("daily_reveal_cap"));
        assert!(bad(|c| c.session_idle_secs = c.session_absolute_secs + 1).contains("idle"));
        assert!(
            bad(|c| c.false_positive_bank = "lower case".into()).contains("false_positive_bank")
        );
        assert!(bad(|c| {
            c.queue_access
                .insert("csam".into(), vec!["moderator".into()]);
        })
        .contains("queue_access"));
        let p = write("[console]\nlease_secs = 0\n");
        let c = Config::load(Some(&p), |_| None).unwrap();
        assert!(c.validate().is_err());
        std::fs::remove_file(p).unwrap();
    }

    /// `[webhooks]` as docs/actions.md gives it: retries from 5 s doubling up to an hour,
    /// for 24 h, an endpoint failing 72 h disabled; those reach the dispatcher; a zero, or
    /// disabling an endpoint before its events' retries are over, is refused.
    #[test]
    fn webhook_settings_default_as_documented_and_are_checked() {
        let w = WebhooksConfig::default();
        assert_eq!(
            (
                w.retry_base_secs,
                w.retry_horizon_hours,
                w.disable_after_hours
            ),
            (5, 24, 72)
        );
        let d = crate::webhooks::dispatcher_config(&w);
        assert_eq!(d.schedule.base, std::time::Duration::from_secs(5));
        assert_eq!(d.schedule.factor, 2);
        assert_eq!(d.schedule.max_delay, std::time::Duration::from_secs(3600));
        assert_eq!(
            d.schedule.horizon,
            std::time::Duration::from_secs(24 * 3600)
        );
        assert_eq!(d.disable_after, std::time::Duration::from_secs(72 * 3600));
        assert_eq!(d.timeout, std::time::Duration::from_secs(w.timeout_secs));
        assert!(Config::default().validate().is_ok());
        let bad = |f: fn(&mut WebhooksConfig)| {
            let mut c = Config::default();
            f(&mut c.webhooks);
            c.validate().unwrap_err().to_string()
        };
        assert!(bad(|w| w.retry_base_secs = 0).contains("at least 1"));
        assert!(bad(|w| w.timeout_secs = 0).contains("at least 1"));
        assert!(bad(|w| w.retry_horizon_hours = 0).contains("at least 1"));
        assert!(bad(|w| w.disable_after_hours = 23).contains("disable_after_hours (23)"));
        let mut c = Config::default();
        c.webhooks.disable_after_hours = 24;
        assert!(c.validate().is_ok(), "equal to the horizon is allowed");
    }

    /// A first retry delay above the schedule's one-hour cap would stop delivery from ever
    /// starting, and hours large enough to overflow in seconds would panic or wrap: both are
    /// refused when the configuration is checked, the bounds themselves accepted.
    #[test]
    fn webhook_delays_beyond_the_schedule_or_u64_are_refused() {
        let check = |f: &dyn Fn(&mut WebhooksConfig)| {
            let mut c = Config::default();
            f(&mut c.webhooks);
            c.validate().map_err(|e| e.to_string())
        };
        let e = check(&|w| w.retry_base_secs = 3601).unwrap_err();
        assert!(
            e.contains("retry_base_secs (3601)") && e.contains("3600"),
            "{e}"
        );
        check(&|w| w.retry_base_secs = 3600).unwrap();
        let e = check(&|w| w.timeout_secs = 301).unwrap_err();
        assert!(e.contains("timeout_secs (301)"), "{e}");
        check(&|w| w.timeout_secs = 300).unwrap();
        let mut c = Config::default();
        c.webhooks.retry_base_secs = 3600;
        let d = crate::webhooks::dispatcher_config(&c.webhooks);
        assert!(
            d.schedule.validate().is_ok(),
            "the largest base is one the schedule takes"
        );
        let e = check(&|w| w.disable_after_hours = u64::MAX / 1000).unwrap_err();
        assert!(e.contains("87600") && e.contains("10 years"), "{e}");
        let e = check(&|w| {
            w.retry_horizon_hours = 87_601;
            w.disable_after_hours = 87_601;
        })
        .unwrap_err();
        assert!(e.contains("retry_horizon_hours (87601)"), "{e}");
        check(&|w| {
            w.retry_horizon_hours = 87_600;
            w.disable_after_hours = 87_600;
        })
        .unwrap();
    }

    /// Every upload limit stays within the vault's largest object, so matched media the server
    /// accepts can always be kept; the vault's own limit is accepted.
    #[test]
    fn upload_limits_above_the_vaults_largest_object_are_refused() {
        let max = safeguard_vault::MAX_OBJECT_SIZE;
        let check = |f: &dyn Fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            c.limits.max_buffered_bytes = 4 << 30;
            c.validate().map_err(|e| e.to_string())
        };
        let e = check(&|c| c.video.max_bytes = max as usize + 1).unwrap_err();
        assert!(
            e.contains("video.max_bytes") && e.contains("evidence vault"),
            "{e}"
        );
        let e = check(&|c| c.limits.max_body_bytes = max as usize + 1).unwrap_err();
        assert!(e.contains("limits.max_body_bytes"), "{e}");
        let e = check(&|c| c.fetch.max_bytes = max + 1).unwrap_err();
        assert!(e.contains("fetch.max_bytes"), "{e}");
        check(&|c| {
            c.video.max_bytes = max as usize;
            c.limits.max_body_bytes = max as usize;
            c.fetch.max_bytes = max;
        })
        .unwrap();
    }

    /// The video limits of docs/api.md: 30 min, at most 60 frames a second of it, 4096 px a
    /// side, 25 s of decoding but never longer than the request may run, 256 MiB.
    #[test]
    fn video_limits_follow_the_configuration() {
        let c = Config::default();
        let l = c.video_options().limits;
        assert_eq!(l.max_duration, std::time::Duration::from_secs(30 * 60));
        assert_eq!(l.max_frames, 30 * 60 * 60);
        assert_eq!((l.max_width, l.max_height), (4096, 4096));
        assert_eq!(l.max_decode_time, std::time::Duration::from_secs(25));
        assert_eq!(l.max_input_bytes, 256 << 20);
        let mut c = Config::default();
        c.limits.request_timeout_secs = 5;
        c.video.max_duration_secs = 10;
        let l = c.video_options().limits;
        assert_eq!(l.max_decode_time, std::time::Duration::from_secs(5));
        assert_eq!(l.max_frames, 600);
    }

    #[test]
    fn the_ncmec_section_needs_an_address_ncmec_takes() {
        let on = |email: Option<&str>| NcmecConfig {
            enabled: true,
            reporter_email: email.map(str::to_string),
            ..NcmecConfig::default()
        };
        assert_eq!(NcmecConfig::default().validate(), Ok(()));
        assert_eq!(on(Some("reports@example.com")).validate(), Ok(()));
        // Given but switched off: checked all the same.
        let off = NcmecConfig {
            reporter_email: Some("reports@".into()),
            ..NcmecConfig::default()
        };
        assert!(off.validate().unwrap_err().contains("reporter_email"));
        // Each of these would pass a bare "contains @" check and then make every report
        // invalid at NCMEC's e-mail rule.
        for bad in [
            None,
            Some("reports"),
            Some("reports@"),
            Some("@example.com"),
        ]
        .into_iter()
        .chain([Some("a@b@c"), Some("safety team@example.com")])
        {
            let e = on(bad).validate().unwrap_err();
            assert!(e.contains("reporter_email"), "{bad:?}: {e}");
        }
        let bad = |f: fn(&mut NcmecConfig)| {
            let mut c = NcmecConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.incident_type = "Something else".into()).contains("incident_type"));
        assert!(bad(|c| c.max_attempts = 0).contains("max_attempts"));
        assert!(bad(|c| c.base_url = Some("ftp://tip.example".into())).contains("base_url"));
    }

    #[test]
    fn the_nca_api_section_is_checked_even_when_off() {
        assert_eq!(NcaApiConfig::default().validate(), Ok(()));
        let bad = |f: fn(&mut NcaApiConfig)| {
            let mut c = NcaApiConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.enabled = true).contains("endpoint is required"));
        assert!(bad(|c| c.endpoint = Some("http://nca.example/api".into())).contains("https"));
        assert!(bad(|c| c.endpoint = Some("not a url".into())).contains("https"));
        assert!(bad(|c| c.max_attempts = 0).contains("max_attempts"));
        assert!(bad(|c| c.max_attempts = 11).contains("max_attempts"));
        assert!(bad(|c| c.timeout_secs = 0).contains("timeout_secs"));
        assert!(bad(|c| {
            c.enabled = true;
            c.endpoint = Some("https://nca.example/api".into());
            c.ca_file = Some("/nonexistent/ca.pem".into());
        })
        .contains("ca_file"));
        let p =
            write("[reporting.nca.api]\nenabled = true\nendpoint = \"https://nca.example/api\"\n");
        let c = Config::load(Some(&p), |_| None).unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.reporting.nca.api.max_attempts,
            DEFAULT_NCA_API_MAX_ATTEMPTS
        );
        std::fs::remove_file(p).unwrap();
        let p = write("[reporting.nca.api]\nendpoint = \"http://nca.example\"\n");
        let c = Config::load(Some(&p), |_| None).unwrap();
        assert!(c.validate().is_err());
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn layers_file_then_env() {
        let p = write("listen = \"127.0.0.1:6000\"\n[limits]\nmax_concurrency = 7\n");
        let c = Config::load(Some(&p), |k| {
            (k == "SAFEGUARD_LISTEN").then(|| "127.0.0.1:7000".to_string())
        })
        .unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.limits.max_concurrency, 7);
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn the_byte_budget_must_hold_one_largest_upload() {
        let mut c = Config::default();
        c.validate().unwrap();
        c.limits.max_buffered_bytes = c.video.max_bytes - 1;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("limits.max_buffered_bytes"), "{e}");
        c.video.max_bytes = 1024;
        c.limits.max_body_bytes = 1024;
        c.limits.max_buffered_bytes = 1024;
        c.validate().unwrap();
        let c = Config::load(None, |k| {
            (k == "SAFEGUARD_MAX_BUFFERED_BYTES").then(|| "2147483648".to_string())
        })
        .unwrap();
        assert_eq!(c.limits.max_buffered_bytes, 2 << 30);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let p = write("listn = \"127.0.0.1:6000\"\n");
        let e = Config::load(Some(&p), |_| None).unwrap_err().to_string();
        assert!(e.contains("listn"), "{e}");
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn bad_env_and_unsafe_dev_are_rejected() {
        let e = Config::load(None, |k| (k == "SAFEGUARD_LISTEN").then(|| "nope".into()));
        assert!(matches!(e, Err(ConfigError::Env { .. })));
        let c = Config {
            dev: true,
            listen: "0.0.0.0:5100".parse().unwrap(),
            ..Config::default()
        };
        assert!(c.validate().is_err());
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn the_queue_wait_is_set_from_the_file_or_the_environment() {
        assert_eq!(Config::default().limits.max_queue_ms, DEFAULT_MAX_QUEUE_MS);
        let p = write("[limits]\nmax_queue_ms = 0\n");
        let c = Config::load(Some(&p), |_| None).unwrap();
        std::fs::remove_file(p).unwrap();
        assert_eq!(c.limits.max_queue_ms, 0);
        assert!(c.validate().is_ok());
        let c = Config::load(None, |k| {
            (k == "SAFEGUARD_MAX_QUEUE_MS").then(|| "250".to_string())
        })
        .unwrap();
        assert_eq!(c.limits.max_queue_ms, 250);
        assert!(Config::load(None, |k| {
            (k == "SAFEGUARD_MAX_QUEUE_MS").then(|| "soon".to_string())
        })
        .is_err());
    }

    #[test]
    fn decoding_is_sandboxed_unless_opted_out() {
        assert!(Config::default().decode.sandbox);
        assert!(Config::default().decoder().is_sandboxed());
        let p = write("[decode]\nsandbox = false # decode in-process\n");
        let c = Config::load(Some(&p), |_| None).unwrap();
        std::fs::remove_file(p).unwrap();
        assert!(!c.decoder().is_sandboxed());
        let c = Config::load(None, |k| {
            (k == "SAFEGUARD_DECODE_SANDBOX").then(|| "false".to_string())
        })
        .unwrap();
        assert!(!c.decode.sandbox);
        let mut c = Config::default();
        c.decode.worker_memory_mib = 10;
        assert!(c.validate().is_err());
        c.decode.worker_memory_mib = 1024;
        let d = c.decoder();
        let pool = d.pool().unwrap().config();
        assert_eq!(pool.memory_limit, 1 << 30);
        assert_eq!(pool.image_deadline.as_secs(), c.limits.request_timeout_secs);
    }

    #[test]
    fn photodna_config_validation() {
        let mut c = PhotoDnaConfig::default();
        assert!(c.validate().is_ok());
        c.threshold = -1.0;
        assert!(c.validate().is_err());
        c.threshold = 10.0;
        c.hasher = Some(PluginConfig {
            command: Some(vec!["x".into()]),
            url: Some("http://127.0.0.1/".into()),
            timeout_ms: 1,
            max_concurrency: 1,
        });
        assert!(c.validate().unwrap_err().contains("exactly one"));
        c.hasher = Some(PluginConfig {
            command: None,
            url: Some("file:///etc/passwd".into()),
            timeout_ms: 1,
            max_concurrency: 1,
        });
        assert!(c.validate().unwrap_err().contains("http"));
        let parsed: PhotoDnaConfig =
            toml::from_str("threshold = 1500.0\n[hasher]\ncommand = [\"/opt/pdna/hash\"]\n")
                .unwrap();
        assert_eq!(parsed.hasher.unwrap().timeout_ms, DEFAULT_PLUGIN_TIMEOUT_MS);
    }
}

/// What a `safeguard serve` process serves, as HMA's roles.
///
/// | role | routes (by API-key scope) | background work |
/// | --- | --- | --- |
/// | `hasher` | `hash` (`/h/*`, `/v1/hash`) | none |
/// | `matcher` | `match` and `submit` (lookups, submissions, URL and contact checks, events) | webhook delivery |
/// | `curator` | `curate` and `admin` (banks, lists, exchanges, keys, rules, cases, webhooks) | exchange schedules, evidence retention, webhook delivery |
/// | `all` | everything | everything |
///
/// `/status*`, `/metrics` and the OpenAPI document are served by every role. A route of
/// another role answers 404 `not_served_by_role`, naming the role that serves it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Hasher,
    Matcher,
    Curator,
    #[default]
    All,
}

impl Role {
    /// The names, as in the config and on the command line.
    pub const NAMES: [&'static str; 4] = ["hasher", "matcher", "curator", "all"];

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "hasher" => Some(Role::Hasher),
            "matcher" => Some(Role::Matcher),
            "curator" => Some(Role::Curator),
            "all" => Some(Role::All),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Hasher => "hasher",
            Role::Matcher => "matcher",
            Role::Curator => "curator",
            Role::All => "all",
        }
    }

    /// Whether this role runs the scheduled work of a curator: exchange schedules and evidence
    /// retention. Run by one process, they are not repeated by every matcher.
    pub fn runs_schedules(self) -> bool {
        matches!(self, Role::Curator | Role::All)
    }
}
