//! NCMEC hash sharing API v2 (XML over HTTP Basic).
//!
//! `GET {base}/v2/entries?from=&to=` answers a `queryResult` with `images` and `videos`
//! (`image`, `deletedImage`, `video`, `deletedVideo` entries) and a `paging/next` link to the
//! rest of the same query. Entries are **not** in time order inside a query, so the only safe
//! checkpoint is the end of a fully read time window: the client walks time in windows, and
//! commits each page with the checkpoint "everything before the current window's start is
//! applied". A run that stops inside a window replays that window (re-applying is harmless);
//! windows shrink when the server says a window holds too many entries and grow while they
//! come back small, so a replay stays cheap.

use std::collections::HashSet;

use reqwest::Method;
use safeguard_engine::now_secs;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::http::{Http, HttpLimits, Req, RetryPolicy};
use crate::run::{Fetcher, Page, Record};
use crate::time::{fmt_utc, parse_utc};
use crate::{Error, Result, Secret};

/// The XML namespace of the v2 API.
pub const NAMESPACE: &str = "https://hashsharing.ncmec.org/hashsharing/v2";

/// Elements a parsed XML document may hold at most (a 1,000-entry page with every
/// fingerprint and feedback is about 40,000): bounds the parser's memory on hostile input.
const MAX_XML_NODES: u32 = 1_000_000;

/// Pages one window may take at most before the run gives up (a `next` loop on the server).
const MAX_PAGES_PER_WINDOW: u32 = 100_000;

/// Configuration of one NCMEC exchange.
#[derive(Debug, Clone)]
pub struct NcmecConfig {
    /// Environment base, e.g. `https://report.cybertip.org/hashsharing` (no `/v2`).
    pub base_url: Url,
    /// HTTP Basic user name.
    pub username: String,
    /// HTTP Basic password.
    pub password: Secret,
    /// Where to start without a checkpoint, Unix seconds (0: the whole database).
    pub start_from: i64,
    /// First window length, seconds.
    pub initial_window_secs: i64,
    /// Largest window length, seconds.
    pub max_window_secs: i64,
    /// A window the server estimates above this many entries is split before it is read, so
    /// a replay after a failure re-reads at most about this many entries.
    pub max_window_entries: u64,
    /// Entries younger than this are left for the next run: the server is still settling
    /// their order (HMA uses 5 s).
    pub settle_secs: i64,
    /// Timeouts and body cap.
    pub limits: HttpLimits,
    /// Retries.
    pub retry: RetryPolicy,
}

impl NcmecConfig {
    /// A configuration with the documented defaults.
    pub fn new(base_url: Url, username: impl Into<String>, password: Secret) -> NcmecConfig {
        NcmecConfig {
            base_url,
            username: username.into(),
            password,
            start_from: 0,
            initial_window_secs: 30 * 86_400,
            max_window_secs: 365 * 86_400,
            max_window_entries: 100_000,
            settle_secs: 5,
            limits: HttpLimits::default(),
            retry: RetryPolicy::default(),
        }
    }
}

/// The stored checkpoint: every entry with a timestamp before `from` has been applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NcmecCheckpoint {
    /// Start of the next window to read, Unix seconds.
    pub from: i64,
    /// Window length that worked last, seconds.
    pub window: i64,
}

/// One entry of a `queryResult`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NcmecEntry {
    /// NCMEC's entry id.
    pub id: String,
    /// The submitting member's id.
    pub member_id: i64,
    /// The submitting member's name.
    pub member_name: String,
    /// `image` or `video`.
    pub media: &'static str,
    /// A deletion record.
    pub deleted: bool,
    /// `A1`, `A2`, `B1`, `B2`, if given.
    pub classification: Option<String>,
    /// Entry timestamp, as sent.
    pub timestamp: Option<String>,
    /// (NCMEC fingerprint element name, value); value empty for fingerprints sent as a link.
    pub fingerprints: Vec<(String, String)>,
}

impl NcmecEntry {
    /// The key HMA uses too: entry ids are unique per member.
    pub fn source_id(&self) -> String {
        format!("{}-{}", self.member_id, self.id)
    }
}

/// A parsed `queryResult` page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntriesPage {
    /// Entries in the order sent.
    pub entries: Vec<NcmecEntry>,
    /// The `paging/next` link (a path relative to the environment base), if more pages.
    pub next: Option<String>,
}

impl EntriesPage {
    /// The server's estimate of the entries in the whole query, from the `next` link's
    /// `start` and `max` parameters (as HMA reads them); the page's own count without one.
    pub fn estimated_total(&self) -> u64 {
        let n = self.entries.len() as u64;
        let Some(next) = &self.next else { return n };
        let q = next.split_once('?').map(|(_, q)| q).unwrap_or("");
        let get = |k: &str| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(key, _)| key == k)
                .and_then(|(_, v)| v.parse::<u64>().ok())
        };
        match (get("start"), get("max")) {
            // Remote numbers: an estimate near u64::MAX saturates rather than overflow.
            (Some(start), Some(max)) if max >= start => (max - start).saturating_add(n),
            _ => n.saturating_add(1),
        }
    }
}

fn xml_options() -> roxmltree::ParsingOptions {
    roxmltree::ParsingOptions {
        // No DTDs: no entity expansion bombs, no external entities.
        allow_dtd: false,
        nodes_limit: MAX_XML_NODES,
    }
}

fn parse_doc(body: &[u8]) -> Result<(String, roxmltree::Document<'_>)> {
    let text = std::str::from_utf8(body).map_err(|_| Error::Protocol("XML is not UTF-8".into()))?;
    let doc = roxmltree::Document::parse_with_options(text, xml_options())
        .map_err(|e| Error::Protocol(format!("malformed XML: {e}")))?;
    Ok((doc.root_element().tag_name().name().to_string(), doc))
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn text_of(n: roxmltree::Node<'_, '_>) -> String {
    n.text().unwrap_or("").trim().to_string()
}

/// Parses a `GET /v2/entries` answer strictly: unknown entry kinds, entries without an id or
/// member, and unreadable timestamps are protocol errors (the page is refused, not half-read).
pub fn parse_entries(body: &[u8]) -> Result<EntriesPage> {
    let (root_name, doc) = parse_doc(body)?;
    if root_name != "queryResult" {
        return Err(Error::Protocol(format!(
            "expected <queryResult>, got <{root_name}>"
        )));
    }
    let root = doc.root_element();
    let mut entries = Vec::new();
    for group in root.children().filter(|c| c.is_element()) {
        let media = match group.tag_name().name() {
            "images" => "image",
            "videos" => "video",
            "paging" => continue,
            other => {
                return Err(Error::Protocol(format!(
                    "unexpected <{other}> in <queryResult>"
                )))
            }
        };
        if let Some(ts) = group.attribute("maxTimestamp") {
            if parse_utc(ts).is_none() {
                return Err(Error::Protocol(format!("bad maxTimestamp {ts:?}")));
            }
        }
        for e in group.children().filter(|c| c.is_element()) {
            let tag = e.tag_name().name();
            let deleted = match (media, tag) {
                ("image", "image") | ("video", "video") => false,
                ("image", "deletedImage") | ("video", "deletedVideo") => true,
                _ => {
                    return Err(Error::Protocol(format!(
                        "unexpected <{tag}> in <{}s>",
                        media
                    )))
                }
            };
            let id = child(e, "id")
                .map(text_of)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| Error::Protocol(format!("<{tag}> without <id>")))?;
            let member = child(e, "member")
                .ok_or_else(|| Error::Protocol(format!("<{tag}> {id} without <member>")))?;
            let member_id = member
                .attribute("id")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .ok_or_else(|| {
                    Error::Protocol(format!("<{tag}> {id}: member without a numeric id"))
                })?;
            let timestamp = child(e, "timestamp").map(text_of);
            if let Some(ts) = &timestamp {
                if parse_utc(ts).is_none() {
                    return Err(Error::Protocol(format!(
                        "<{tag}> {id}: bad timestamp {ts:?}"
                    )));
                }
            }
            let fingerprints = child(e, "fingerprints")
                .map(|f| {
                    f.children()
                        .filter(|c| c.is_element())
                        .map(|c| (c.tag_name().name().to_string(), text_of(c)))
                        .collect()
                })
                .unwrap_or_default();
            entries.push(NcmecEntry {
                id,
                member_id,
                member_name: text_of(member),
                media,
                deleted,
                classification: child(e, "classification")
                    .map(text_of)
                    .filter(|s| !s.is_empty()),
                timestamp,
                fingerprints,
            });
        }
    }
    let next = child(root, "paging")
        .and_then(|p| child(p, "next"))
        .map(text_of)
        .filter(|s| !s.is_empty());
    Ok(EntriesPage { entries, next })
}

/// Safeguard's signal type name for an NCMEC fingerprint element (the same mapping as NCMEC
/// file import). Types Safeguard does not match pass through under their own name and are
/// counted as skipped by the run.
pub use safeguard_lists::ncmec_types::signal_type_for;

/// The fingerprint types the feedback API takes (its path segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum FeedbackType {
    Md5,
    Sha1,
    Pdna,
    Pdq,
    Netclean,
    Videntifier,
    TmkPdqf,
    SsvhPdna,
    SsvhSaferHash,
}

impl FeedbackType {
    /// The path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackType::Md5 => "MD5",
            FeedbackType::Sha1 => "SHA1",
            FeedbackType::Pdna => "PDNA",
            FeedbackType::Pdq => "PDQ",
            FeedbackType::Netclean => "NETCLEAN",
            FeedbackType::Videntifier => "VIDENTIFIER",
            FeedbackType::TmkPdqf => "TMK_PDQF",
            FeedbackType::SsvhPdna => "SSVH_PDNA",
            FeedbackType::SsvhSaferHash => "SSVH_SAFER_HASH",
        }
    }

    /// Parses the path segment (case-insensitive) or a Safeguard signal type name.
    pub fn parse(s: &str) -> Option<FeedbackType> {
        Some(match s.to_ascii_uppercase().as_str() {
            "MD5" | "VIDEO_MD5" => FeedbackType::Md5,
            "SHA1" => FeedbackType::Sha1,
            "PDNA" | "PHOTODNA" => FeedbackType::Pdna,
            "PDQ" => FeedbackType::Pdq,
            "NETCLEAN" => FeedbackType::Netclean,
            "VIDENTIFIER" => FeedbackType::Videntifier,
            "TMK_PDQF" => FeedbackType::TmkPdqf,
            "SSVH_PDNA" => FeedbackType::SsvhPdna,
            "SSVH_SAFER_HASH" => FeedbackType::SsvhSaferHash,
            _ => return None,
        })
    }
}

/// A feedback vote on one fingerprint of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vote {
    /// The fingerprint matched what it should.
    Affirmative,
    /// A false positive, with the reason's GUID (one of `GET /v2/feedback/{type}/reasons`).
    Negative {
        /// Reason GUID.
        reason: String,
    },
}

/// The `feedbackSubmission` document for a vote. The reason is checked against the server's
/// list before this is sent, so it is a GUID and needs no escaping; it is escaped anyway.
pub fn feedback_xml(vote: &Vote) -> String {
    let inner = match vote {
        Vote::Affirmative => "<affirmative/>".to_string(),
        Vote::Negative { reason } => format!(
            "<negative><reasonIds><guid>{}</guid></reasonIds></negative>",
            xml_escape(reason)
        ),
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedbackSubmission xmlns=\"{NAMESPACE}\">{inner}</feedbackSubmission>"
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A feedback reason the server offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedbackReason {
    /// GUID to send.
    pub guid: String,
    /// Human name.
    pub name: String,
    /// Fingerprint type it applies to.
    pub r#type: String,
}

/// The NCMEC client.
#[derive(Debug)]
pub struct NcmecClient {
    cfg: NcmecConfig,
    http: Http,
    // Run position (set by `start`).
    from: i64,
    window: i64,
    end: i64,
    cur_to: i64,
    next: Option<String>,
    pages_in_window: u32,
    seen_next: HashSet<String>,
}

impl NcmecClient {
    /// A client. Fails on an unusable configuration (no credentials, a base that is not
    /// http(s)).
    pub fn new(cfg: NcmecConfig) -> Result<NcmecClient> {
        if cfg.username.is_empty() || cfg.password.is_empty() {
            return Err(Error::Config(
                "NCMEC needs a username and a password".into(),
            ));
        }
        if !matches!(cfg.base_url.scheme(), "http" | "https") || cfg.base_url.cannot_be_a_base() {
            return Err(Error::Config(
                "NCMEC base_url must be an http(s) URL".into(),
            ));
        }
        if cfg.initial_window_secs < 1 || cfg.max_window_secs < cfg.initial_window_secs {
            return Err(Error::Config(
                "NCMEC windows: need 1 <= initial_window_secs <= max_window_secs".into(),
            ));
        }
        if cfg.max_window_entries < 1 {
            return Err(Error::Config(
                "NCMEC max_window_entries must be at least 1".into(),
            ));
        }
        let http = Http::new(&cfg.limits, &cfg.retry)?;
        Ok(NcmecClient {
            from: cfg.start_from,
            window: cfg.initial_window_secs,
            end: 0,
            cur_to: 0,
            next: None,
            pages_in_window: 0,
            seen_next: HashSet::new(),
            cfg,
            http,
        })
    }

    fn url(&self, path_and_query: &str) -> Result<Url> {
        let base = self.cfg.base_url.as_str().trim_end_matches('/');
        let url = Url::parse(&format!("{base}{path_and_query}"))
            .map_err(|e| Error::Protocol(format!("bad URL: {e}")))?;
        // The Basic credentials go with every request: never to another origin.
        if url.origin() != self.cfg.base_url.origin() {
            return Err(Error::Protocol("a link points to another host".into()));
        }
        Ok(url)
    }

    fn req(&self, method: Method, url: Url) -> Req {
        let mut r = Req::get(url);
        r.method = method;
        r.basic_auth = Some((self.cfg.username.clone(), self.cfg.password.clone()));
        r
    }

    async fn get_xml(&self, url: Url) -> Result<Vec<u8>> {
        Ok(self.http.send(&self.req(Method::GET, url)).await?.body)
    }

    /// One page of `GET /v2/entries` for a window, or the page a `next` link names.
    pub async fn get_entries(&self, from: i64, to: i64, next: Option<&str>) -> Result<EntriesPage> {
        let url = match next {
            Some(n) => {
                if !n.starts_with("/v2/entries?") {
                    return Err(Error::Protocol(format!(
                        "paging/next is not a /v2/entries link: {:?}",
                        n.chars().take(80).collect::<String>()
                    )));
                }
                self.url(n)?
            }
            None => {
                let mut u = self.url("/v2/entries")?;
                u.query_pairs_mut()
                    .append_pair("from", &fmt_utc(from))
                    .append_pair("to", &fmt_utc(to));
                u
            }
        };
        parse_entries(&self.get_xml(url).await?)
    }

    /// `GET /v2/status`: this account's member id and name.
    pub async fn status(&self) -> Result<(i64, String)> {
        let body = self.get_xml(self.url("/v2/status")?).await?;
        let (root, doc) = parse_doc(&body)?;
        if root != "status" {
            return Err(Error::Protocol(format!("expected <status>, got <{root}>")));
        }
        let m = child(doc.root_element(), "member")
            .ok_or_else(|| Error::Protocol("<status> without <member>".into()))?;
        let id = m
            .attribute("id")
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| Error::Protocol("<member> without a numeric id".into()))?;
        Ok((id, text_of(m)))
    }

    /// `GET /v2/feedback/{type}/reasons`: the reasons a negative vote may give.
    pub async fn feedback_reasons(&self, t: FeedbackType) -> Result<Vec<FeedbackReason>> {
        let body = self
            .get_xml(self.url(&format!("/v2/feedback/{}/reasons", t.as_str()))?)
            .await?;
        let (root, doc) = parse_doc(&body)?;
        if root != "availableFeedbackReasons" {
            return Err(Error::Protocol(format!(
                "expected <availableFeedbackReasons>, got <{root}>"
            )));
        }
        doc.root_element()
            .children()
            .filter(|c| c.is_element() && c.tag_name().name() == "reason")
            .map(|r| {
                let attr = |k: &str| {
                    r.attribute(k)
                        .map(str::to_string)
                        .ok_or_else(|| Error::Protocol(format!("<reason> without {k}")))
                };
                Ok(FeedbackReason {
                    guid: attr("guid")?,
                    name: attr("name")?,
                    r#type: attr("type")?,
                })
            })
            .collect()
    }

    /// Sends feedback on one fingerprint of an entry: `PUT
    /// /v2/entries/{member}/{entry}/{type}/feedback` with a `feedbackSubmission`, where
    /// `member` is this account's member id (from `/v2/status`). A negative vote's reason must
    /// be one the server lists for the type.
    pub async fn submit_feedback(
        &self,
        entry_id: &str,
        t: FeedbackType,
        vote: &Vote,
    ) -> Result<()> {
        if entry_id.is_empty()
            || !entry_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(Error::Invalid(
                "entry id: letters, digits, '-', '_' and '.' only".into(),
            ));
        }
        if let Vote::Negative { reason } = vote {
            let reasons = self.feedback_reasons(t).await?;
            if !reasons.iter().any(|r| &r.guid == reason) {
                return Err(Error::Invalid(format!(
                    "unknown {} feedback reason; the server offers: {}",
                    t.as_str(),
                    reasons
                        .iter()
                        .map(|r| format!("{} ({})", r.guid, r.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let (member, _) = self.status().await?;
        let url = self.url(&format!(
            "/v2/entries/{member}/{entry_id}/{}/feedback",
            t.as_str()
        ))?;
        let mut r = self.req(Method::PUT, url);
        r.body = Some(("application/xml", feedback_xml(vote).into_bytes()));
        self.http.send(&r).await?;
        Ok(())
    }

    fn checkpoint(&self) -> String {
        // Serialising two integers cannot fail.
        serde_json::to_string(&NcmecCheckpoint {
            from: self.from,
            window: self.window,
        })
        .unwrap_or_default()
    }
}

/// Maps the entries of a `GET /v2/entries` answer ([`parse_entries`]) to exchange records:
/// deleted entries become deletions, the rest entries keyed by `member-id`.
pub fn records(entries: Vec<NcmecEntry>) -> Vec<Record> {
    entries
        .into_iter()
        .map(|e| {
            let source_id = e.source_id();
            if e.deleted {
                return Record::Deleted { source_id };
            }
            let metadata = serde_json::json!({
                "exchange": "ncmec",
                "entry_id": e.id,
                "member_id": e.member_id,
                "member": e.member_name,
                "media": e.media,
                "timestamp": e.timestamp,
            })
            .to_string();
            Record::Entry {
                source_id,
                fingerprints: e
                    .fingerprints
                    .into_iter()
                    .map(|(t, v)| (signal_type_for(&t), v))
                    .collect(),
                classification: e.classification,
                metadata: Some(metadata),
            }
        })
        .collect()
}

impl Fetcher for NcmecClient {
    fn kind(&self) -> &'static str {
        "ncmec"
    }

    fn start(&mut self, checkpoint: Option<&str>) -> Result<()> {
        let cp = match checkpoint {
            Some(s) => serde_json::from_str::<NcmecCheckpoint>(s)
                .map_err(|e| Error::Checkpoint(format!("NCMEC: {e}")))?,
            None => NcmecCheckpoint {
                from: self.cfg.start_from,
                window: self.cfg.initial_window_secs,
            },
        };
        self.from = cp.from;
        self.window = cp.window.clamp(1, self.cfg.max_window_secs);
        self.end = now_secs() - self.cfg.settle_secs;
        self.next = None;
        self.pages_in_window = 0;
        self.seen_next.clear();
        Ok(())
    }

    async fn next_page(&mut self) -> Result<Option<Page>> {
        loop {
            if self.next.is_none() && self.from >= self.end {
                return Ok(None);
            }
            let first = self.next.is_none();
            if first {
                self.cur_to = self.end.min(self.from.saturating_add(self.window));
                self.pages_in_window = 0;
                self.seen_next.clear();
            }
            let page = self
                .get_entries(self.from, self.cur_to, self.next.as_deref())
                .await?;
            self.pages_in_window += 1;
            if self.pages_in_window > MAX_PAGES_PER_WINDOW {
                return Err(Error::Protocol("too many pages in one window".into()));
            }
            if first && self.cur_to - self.from > 1 {
                let est = page.estimated_total();
                if est > self.cfg.max_window_entries {
                    // Too big to replay cheaply: split before reading on (HMA shrinks by at
                    // least 4x, more when the estimate is far over).
                    let span = self.cur_to - self.from;
                    let scaled =
                        (span as u128 * self.cfg.max_window_entries as u128 / est as u128) as i64;
                    self.window = (span / 4).min(scaled).max(1);
                    tracing::info!(
                        estimate = est,
                        window_secs = self.window,
                        "NCMEC window too large; splitting"
                    );
                    continue;
                }
            }
            let total_small = first
                && page.next.is_none()
                && (page.entries.len() as u64) < self.cfg.max_window_entries / 4;
            match page.next {
                Some(n) => {
                    if !self.seen_next.insert(n.clone()) {
                        return Err(Error::Protocol("paging/next repeats a link".into()));
                    }
                    self.next = Some(n);
                }
                None => {
                    self.next = None;
                    self.from = self.cur_to;
                    if total_small {
                        self.window = self.window.saturating_mul(2).min(self.cfg.max_window_secs);
                    }
                }
            }
            return Ok(Some(Page {
                records: records(page.entries),
                checkpoint: self.checkpoint(),
                sweep: None,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `paging/next` link is followed only when it is a `/v2/entries?` path on the
    /// configured base (docs/exchanges.md): the Basic credentials go with every request, so a
    /// link to another host, or to another path, is a protocol error before anything is sent.
    #[tokio::test]
    async fn next_links_must_be_entries_paths_on_the_base() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cfg = NcmecConfig::new(
            format!("http://127.0.0.1:{port}/hashsharing")
                .parse()
                .unwrap(),
            "user",
            Secret::new("pass"),
        );
        cfg.retry.max_attempts = 1;
        let client = NcmecClient::new(cfg).unwrap();
        for next in [
            "https://evil.example/v2/entries?from=0&to=1",
            "//evil.example/v2/entries?from=0",
            "/v2/status?x=1",
            "/v2/entries/../../other?x=1",
        ] {
            match client.get_entries(0, 1, Some(next)).await {
                Err(Error::Protocol(m)) => assert!(m.contains("not a /v2/entries link"), "{m}"),
                other => panic!("{next}: {other:?}"),
            }
        }
        // A well-formed link passes the check (and is then sent, to whatever listens there
        // now, if anything).
        if let Err(Error::Protocol(m)) = client
            .get_entries(0, 1, Some("/v2/entries?from=0&to=1&start=1"))
            .await
        {
            panic!("a well-formed link refused: {m}");
        }
    }

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">
    <images count="2" maxTimestamp="2017-10-24T15:10:00Z">
        <image>
            <member id="42">Example Member</member>
            <timestamp>2017-10-24T15:00:00Z</timestamp>
            <id>image1</id>
            <classification>A1</classification>
            <fingerprints>
                <md5>a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1</md5>
                <sha1>a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1</sha1>
            </fingerprints>
            <feedback lastUpdateTimestamp="2023-06-01T12:48:14Z"/>
        </image>
        <deletedImage>
            <member id="43">Example Member2</member>
            <id>image4</id>
            <timestamp>2017-10-24T15:10:00Z</timestamp>
        </deletedImage>
    </images>
    <videos count="1" maxTimestamp="2017-10-24T15:20:00Z">
        <video>
            <member id="101">TX Example</member>
            <timestamp>2019-11-24T15:10:00Z</timestamp>
            <id>largetags</id>
            <fingerprints>
                <md5>facefacefacefacefacefacefaceface</md5>
                <tmk-pdqf rel="self" href="/v2/entries/1/fingerprints/TMK_PDQF"/>
            </fingerprints>
        </video>
    </videos>
    <paging>
        <next>/v2/entries?from=2017-10-20T00%3A00%3A00.000Z&amp;to=2017-10-30T00%3A00%3A00.000Z&amp;start=2001&amp;size=1000&amp;max=3000</next>
    </paging>
</queryResult>"#;

    #[test]
    fn parses_the_documented_shape() {
        let p = parse_entries(SAMPLE.as_bytes()).unwrap();
        assert_eq!(p.entries.len(), 3);
        assert_eq!(p.entries[0].source_id(), "42-image1");
        assert_eq!(p.entries[0].classification.as_deref(), Some("A1"));
        assert_eq!(p.entries[0].fingerprints.len(), 2);
        assert!(p.entries[1].deleted);
        assert_eq!(p.entries[1].source_id(), "43-image4");
        assert_eq!(p.entries[2].media, "video");
        assert_eq!(
            p.entries[2].fingerprints[1],
            ("tmk-pdqf".into(), String::new())
        );
        assert_eq!(
            p.next.as_deref(),
            Some("/v2/entries?from=2017-10-20T00%3A00%3A00.000Z&to=2017-10-30T00%3A00%3A00.000Z&start=2001&size=1000&max=3000")
        );
        assert_eq!(p.estimated_total(), 3000 - 2001 + 3);
    }

    #[test]
    fn estimated_total_saturates_on_remote_numbers_near_u64_max() {
        let mut p = parse_entries(SAMPLE.as_bytes()).unwrap();
        p.next = Some(format!("/v2/entries?start=0&max={}", u64::MAX));
        assert_eq!(p.estimated_total(), u64::MAX);
        p.next = Some(format!("/v2/entries?start=1&max={}", u64::MAX));
        assert_eq!(p.estimated_total(), u64::MAX);
    }

    #[test]
    fn refuses_malformed_pages() {
        for bad in [
            "<queryResult><images><image><id>x</id></image></images></queryResult>",
            "<queryResult><images><video/></images></queryResult>",
            "<other/>",
            "<queryResult><images>",
            "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><queryResult/>",
            "<queryResult><images><image><id>x</id><member id=\"1\"/><timestamp>now</timestamp></image></images></queryResult>",
        ] {
            assert!(
                matches!(parse_entries(bad.as_bytes()), Err(Error::Protocol(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn feedback_documents() {
        assert_eq!(
            feedback_xml(&Vote::Affirmative),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedbackSubmission xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\"><affirmative/></feedbackSubmission>"
        );
        assert!(feedback_xml(&Vote::Negative {
            reason: "01234567-abcd-0123-4567-012345678900".into()
        })
        .ends_with("<negative><reasonIds><guid>01234567-abcd-0123-4567-012345678900</guid></reasonIds></negative></feedbackSubmission>"));
    }
}
