//! StopNCII.org hash exchange API (JSON).
//!
//! `GET {base}/FetchHashes?startTimestamp=&pageSize=[&nextPageToken=]` with the headers
//! `Ocp-Apim-Subscription-Key` (the subscription) and `x-functions-key` (the per-endpoint
//! function key) answers `{count, nextPageToken, nextSetTimestamp, hasMoreRecords,
//! hashRecords: [{lastModtimestamp, signalType, hashValue, hashStatus, caseNumbers,
//! CSPFeedbacks}]}`. A record is the current state of one (signalType, hashValue): a later
//! one replaces an earlier one, and `Withdrawn`/`Deleted` ones must be removed.
//! `POST {base}/SubmitFeedback` sends `{count, hashFeedbacks: [{hashValue, feedbackValue,
//! tags}]}`.

use reqwest::header::HeaderName;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::http::{Http, HttpLimits, Req, RetryPolicy};
use crate::run::{Fetcher, Page, Record};
use crate::{Error, Result, Secret};

/// Largest page the client asks for (the API's documented default is 800).
pub const MAX_PAGE_SIZE: u32 = 1_000;

/// Where a fetch from scratch starts (the reference client's default).
pub const DEFAULT_START_TIME: i64 = 10;

/// Configuration of one StopNCII exchange.
#[derive(Debug, Clone)]
pub struct StopNciiConfig {
    /// API base, e.g. `https://api.stopncii.org/v1`.
    pub base_url: Url,
    /// `Ocp-Apim-Subscription-Key`.
    pub subscription_key: Secret,
    /// `x-functions-key` for FetchHashes.
    pub fetch_function_key: Secret,
    /// `x-functions-key` for SubmitFeedback (feedback is refused without one).
    pub feedback_function_key: Option<Secret>,
    /// Records per page, 1..=[`MAX_PAGE_SIZE`].
    pub page_size: u32,
    /// Timeouts and body cap.
    pub limits: HttpLimits,
    /// Retries.
    pub retry: RetryPolicy,
}

impl StopNciiConfig {
    /// A configuration with the documented defaults.
    pub fn new(
        base_url: Url,
        subscription_key: Secret,
        fetch_function_key: Secret,
    ) -> StopNciiConfig {
        StopNciiConfig {
            base_url,
            subscription_key,
            fetch_function_key,
            feedback_function_key: None,
            page_size: 800,
            limits: HttpLimits::default(),
            retry: RetryPolicy::default(),
        }
    }
}

/// The stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopNciiCheckpoint {
    /// `startTimestamp` of the pass in progress (or of the next pass, without a token).
    pub start: i64,
    /// The page token to continue the pass with. Tokens do not live long: when the server
    /// refuses one, the client restarts from `resume_from`.
    pub token: Option<String>,
    /// The last page's `nextSetTimestamp`: a safe restart point whatever happens to the token
    /// (records at that time are fetched again, which is harmless).
    pub resume_from: i64,
}

/// One hash record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HashRecord {
    /// Last update, Unix seconds.
    pub last_modtimestamp: i64,
    /// `ImagePDQ`, `VideoMD5`, `VideoTMK`, `Text`, `URL`, `Unknown`.
    pub signal_type: String,
    /// The hash.
    pub hash_value: String,
    /// `Received`, `Active`, `Withdrawn`, `Deleted`, `Unknown`.
    pub hash_status: String,
    /// Case number → case status.
    #[serde(default)]
    pub case_numbers: Option<serde_json::Map<String, serde_json::Value>>,
    /// Feedback from platforms.
    #[serde(default, rename = "CSPFeedbacks")]
    pub csp_feedbacks: Option<Vec<serde_json::Value>>,
}

/// A `FetchHashes` answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchHashesResponse {
    /// Records in this page.
    pub count: i64,
    /// Cursor for the next page.
    #[serde(default)]
    pub next_page_token: Option<String>,
    /// The timestamp to store as a checkpoint.
    pub next_set_timestamp: i64,
    /// Whether more pages follow.
    pub has_more_records: bool,
    /// The records.
    pub hash_records: Vec<HashRecord>,
}

/// Safeguard's signal type for a StopNCII one (the same mapping as StopNCII file import);
/// types Safeguard does not match keep their own name, lower-cased, and are counted as skipped.
pub use safeguard_lists::stopncii_types::signal_type_for;

/// The feedback values the API takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum FeedbackValue {
    None,
    QualityUnknown,
    PendingReview,
    Blocked,
    NotBlocked,
}

impl FeedbackValue {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackValue::None => "None",
            FeedbackValue::QualityUnknown => "QualityUnknown",
            FeedbackValue::PendingReview => "PendingReview",
            FeedbackValue::Blocked => "Blocked",
            FeedbackValue::NotBlocked => "NotBlocked",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<FeedbackValue> {
        Some(match s {
            "None" => FeedbackValue::None,
            "QualityUnknown" => FeedbackValue::QualityUnknown,
            "PendingReview" => FeedbackValue::PendingReview,
            "Blocked" => FeedbackValue::Blocked,
            "NotBlocked" => FeedbackValue::NotBlocked,
            _ => return None,
        })
    }
}

/// The `SubmitFeedback` body for one hash.
pub fn feedback_body(hash_value: &str, value: FeedbackValue, tags: &[String]) -> serde_json::Value {
    serde_json::json!({
        "count": 1,
        "hashFeedbacks": [{
            "hashValue": hash_value,
            "feedbackValue": value.as_str(),
            "tags": tags,
        }],
    })
}

/// The StopNCII client.
#[derive(Debug)]
pub struct StopNciiClient {
    cfg: StopNciiConfig,
    http: Http,
    cp: StopNciiCheckpoint,
    done: bool,
    token_retried: bool,
}

static FUNCTIONS_KEY: HeaderName = HeaderName::from_static("x-functions-key");
static SUBSCRIPTION_KEY: HeaderName = HeaderName::from_static("ocp-apim-subscription-key");

impl StopNciiClient {
    /// A client. Fails on an unusable configuration.
    pub fn new(cfg: StopNciiConfig) -> Result<StopNciiClient> {
        if cfg.subscription_key.is_empty() || cfg.fetch_function_key.is_empty() {
            return Err(Error::Config(
                "StopNCII needs a subscription key and a FetchHashes function key".into(),
            ));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&cfg.page_size) {
            return Err(Error::Config(format!(
                "StopNCII page_size must be 1..={MAX_PAGE_SIZE}"
            )));
        }
        if !matches!(cfg.base_url.scheme(), "http" | "https") || cfg.base_url.cannot_be_a_base() {
            return Err(Error::Config(
                "StopNCII base_url must be an http(s) URL".into(),
            ));
        }
        let http = Http::new(&cfg.limits, &cfg.retry)?;
        Ok(StopNciiClient {
            cfg,
            http,
            cp: StopNciiCheckpoint {
                start: DEFAULT_START_TIME,
                token: None,
                resume_from: DEFAULT_START_TIME,
            },
            done: false,
            token_retried: false,
        })
    }

    fn endpoint(&self, name: &str) -> Result<Url> {
        let base = self.cfg.base_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/{name}")).map_err(|e| Error::Config(format!("base_url: {e}")))
    }

    /// One `FetchHashes` call.
    pub async fn fetch_hashes(
        &self,
        start: i64,
        token: Option<&str>,
    ) -> Result<FetchHashesResponse> {
        let mut url = self.endpoint("FetchHashes")?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("startTimestamp", &start.to_string())
                .append_pair("pageSize", &self.cfg.page_size.to_string());
            if let Some(t) = token {
                q.append_pair("nextPageToken", t);
            }
        }
        let mut r = Req::get(url);
        r.headers = vec![
            (FUNCTIONS_KEY.clone(), self.cfg.fetch_function_key.clone()),
            (SUBSCRIPTION_KEY.clone(), self.cfg.subscription_key.clone()),
        ];
        parse_fetch_hashes(&self.http.send(&r).await?.body)
    }

    /// `POST SubmitFeedback` for one hash.
    pub async fn submit_feedback(
        &self,
        hash_value: &str,
        value: FeedbackValue,
        tags: &[String],
    ) -> Result<()> {
        let key =
            self.cfg.feedback_function_key.clone().ok_or_else(|| {
                Error::Config("StopNCII feedback needs feedback_function_key".into())
            })?;
        if hash_value.is_empty() || hash_value.len() > 1024 {
            return Err(Error::Invalid("hash value: 1 to 1024 characters".into()));
        }
        let mut r = Req::get(self.endpoint("SubmitFeedback")?);
        r.method = Method::POST;
        // Sending a vote twice sets the same value: harmless, so 5xx may be retried.
        r.idempotent = true;
        r.headers = vec![
            (FUNCTIONS_KEY.clone(), key),
            (SUBSCRIPTION_KEY.clone(), self.cfg.subscription_key.clone()),
        ];
        r.body = Some((
            "application/json",
            serde_json::to_vec(&feedback_body(hash_value, value, tags))
                .map_err(|e| Error::Invalid(e.to_string()))?,
        ));
        self.http.send(&r).await?;
        Ok(())
    }

    /// The page for one `FetchHashes` answer, moving the checkpoint on: to the page token while
    /// the answer says more records follow, else to `nextSetTimestamp` with the pass done.
    /// Takes the answer as it is; [`StopNciiClient::page_after`] also checks that the paging
    /// moves on.
    pub fn page_from_response(&mut self, resp: FetchHashesResponse) -> Page {
        if resp.has_more_records {
            self.cp.token = resp.next_page_token.clone();
        } else {
            self.cp.token = None;
            self.cp.start = resp.next_set_timestamp;
            self.done = true;
        }
        self.cp.resume_from = resp.next_set_timestamp;
        Page {
            records: records(resp.hash_records),
            // Serialising integers and strings cannot fail.
            checkpoint: serde_json::to_string(&self.cp).unwrap_or_default(),
            sweep: None,
        }
    }

    /// [`StopNciiClient::page_from_response`] for the answer to a request for the
    /// checkpoint's token, refusing one that says more records follow but hands back the token
    /// just requested: following it would fetch the same page again until `max_pages`, every
    /// run, and the pass would never end.
    pub fn page_after(&mut self, resp: FetchHashesResponse) -> Result<Page> {
        if let (true, Some(next), Some(asked)) = (
            resp.has_more_records,
            resp.next_page_token.as_deref(),
            self.cp.token.as_deref(),
        ) {
            if next == asked {
                // The token is remote text that goes into the run status: cut, not echoed whole.
                let shown: String = next.chars().take(100).collect();
                return Err(Error::Protocol(format!(
                    "FetchHashes: hasMoreRecords with the nextPageToken just requested \
                     ({shown:?}); the paging would never end"
                )));
            }
        }
        Ok(self.page_from_response(resp))
    }
}

/// The StopNCII signal types whose values are hex digests, where case carries no meaning.
const HEX_SIGNAL_TYPES: [&str; 3] = ["ImagePDQ", "VideoMD5", "VideoTMK"];

/// The entry id of a (signalType, hashValue): `Type:value`, the value lower-cased for the hex
/// digest types and kept as sent for the others.
pub fn source_id(signal_type: &str, hash_value: &str) -> String {
    // Hex hashes may come in either case and must keep one id; a URL's path (or a text) is
    // case-sensitive, and two values differing only in case are two entries.
    if HEX_SIGNAL_TYPES.contains(&signal_type) {
        format!("{signal_type}:{}", hash_value.to_ascii_lowercase())
    } else {
        format!("{signal_type}:{hash_value}")
    }
}

/// Maps `FetchHashes` records to exchange records: withdrawn and deleted hashes become
/// deletions, the rest entries keyed by [`source_id`].
pub fn records(hash_records: Vec<HashRecord>) -> Vec<Record> {
    hash_records
        .into_iter()
        .map(|r| {
            let source_id = source_id(&r.signal_type, &r.hash_value);
            if matches!(r.hash_status.as_str(), "Withdrawn" | "Deleted") {
                return Record::Deleted { source_id };
            }
            let metadata = serde_json::json!({
                "exchange": "stopncii",
                "signal_type": r.signal_type,
                "hash_status": r.hash_status,
                "last_modtimestamp": r.last_modtimestamp,
                "case_numbers": r.case_numbers,
                "csp_feedbacks": r.csp_feedbacks,
            })
            .to_string();
            Record::Entry {
                source_id,
                fingerprints: vec![(signal_type_for(&r.signal_type), r.hash_value)],
                classification: None,
                metadata: Some(metadata),
            }
        })
        .collect()
}

/// Reads one `FetchHashes` answer and checks it holds together: `count` equals the records
/// sent, and `hasMoreRecords` comes with a page token. Pure (no I/O), so it is fuzzed on its own
/// (`fuzz/fuzz_targets/exchange_pages.rs`).
pub fn parse_fetch_hashes(body: &[u8]) -> Result<FetchHashesResponse> {
    let resp: FetchHashesResponse = serde_json::from_slice(body)
        .map_err(|e| Error::Protocol(format!("FetchHashes: malformed JSON: {e}")))?;
    if resp.count < 0 || resp.count as usize != resp.hash_records.len() {
        return Err(Error::Protocol(format!(
            "FetchHashes: count {} but {} records",
            resp.count,
            resp.hash_records.len()
        )));
    }
    if resp.has_more_records && resp.next_page_token.as_deref().unwrap_or("").is_empty() {
        return Err(Error::Protocol(
            "FetchHashes: hasMoreRecords without a nextPageToken".into(),
        ));
    }
    Ok(resp)
}

impl Fetcher for StopNciiClient {
    fn kind(&self) -> &'static str {
        "stopncii"
    }

    fn start(&mut self, checkpoint: Option<&str>) -> Result<()> {
        if let Some(s) = checkpoint {
            self.cp =
                serde_json::from_str(s).map_err(|e| Error::Checkpoint(format!("StopNCII: {e}")))?;
        }
        self.done = false;
        self.token_retried = false;
        Ok(())
    }

    async fn next_page(&mut self) -> Result<Option<Page>> {
        if self.done {
            return Ok(None);
        }
        let resp = match self
            .fetch_hashes(self.cp.start, self.cp.token.as_deref())
            .await
        {
            Ok(r) => r,
            // An expired or unknown token: restart the pass from the last safe timestamp.
            Err(Error::Rejected(m)) if self.cp.token.is_some() && !self.token_retried => {
                tracing::info!(error = %m, "StopNCII page token refused; restarting from the last nextSetTimestamp");
                self.token_retried = true;
                self.cp.token = None;
                self.cp.start = self.cp.resume_from;
                self.fetch_hashes(self.cp.start, None).await?
            }
            Err(e) => return Err(e),
        };
        self.page_after(resp).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_maps_records() {
        let body = r#"{"count":2,"nextPageToken":"t1","nextSetTimestamp":1700000000,"hasMoreRecords":true,
          "hashRecords":[
            {"lastModtimestamp":1699999999,"signalType":"ImagePDQ","hashValue":"ab","hashStatus":"Active","caseNumbers":{"c1":"Active"},"CSPFeedbacks":[]},
            {"lastModtimestamp":1700000000,"signalType":"VideoMD5","hashValue":"cd","hashStatus":"Withdrawn","caseNumbers":{}}
          ]}"#;
        let r: FetchHashesResponse = serde_json::from_str(body).unwrap();
        let recs = records(r.hash_records);
        assert!(
            matches!(&recs[0], Record::Entry { fingerprints, .. } if fingerprints[0] == ("pdq".to_string(), "ab".to_string()))
        );
        assert_eq!(
            recs[1],
            Record::Deleted {
                source_id: "VideoMD5:cd".into()
            }
        );
    }

    #[test]
    fn only_hex_hash_ids_are_case_folded() {
        assert_eq!(source_id("ImagePDQ", "ABcd"), "ImagePDQ:abcd");
        assert_eq!(source_id("VideoMD5", "ABcd"), "VideoMD5:abcd");
        assert_eq!(source_id("VideoTMK", "ABcd"), "VideoTMK:abcd");
        assert_ne!(
            source_id("URL", "https://e.example/Photo"),
            source_id("URL", "https://e.example/photo")
        );
        assert_eq!(
            source_id("URL", "https://e.example/Photo"),
            "URL:https://e.example/Photo"
        );
    }

    #[test]
    fn feedback_body_is_the_documented_shape() {
        assert_eq!(
            feedback_body("ab", FeedbackValue::NotBlocked, &["fp".into()]),
            serde_json::json!({"count":1,"hashFeedbacks":[{"hashValue":"ab","feedbackValue":"NotBlocked","tags":["fp"]}]})
        );
    }
}
