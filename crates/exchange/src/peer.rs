//! Another Safeguard instance, read through its bank API: `GET
//! {base}/v1/banks/{bank}/contents?after=&limit=` (Bearer key with the `curate` scope) lists
//! the bank's content items in ascending id order, `{contents: [{id, signals: {type: value},
//! disable_until_ts, ...}], next_after}`.
//!
//! The listing has no deletion records, so the client walks the whole bank on every pass: a
//! page covers the id range from the previous page's last id to its own, and an entry held
//! from that range that the page does not list was deleted at the peer. Disabled items
//! (`disable_until_ts` in the future) are treated as absent: the peer does not match them.

use safeguard_engine::now_secs;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::http::{Http, HttpLimits, Req, RetryPolicy};
use crate::run::{Fetcher, Page, Record, Sweep};
use crate::{Error, Result, Secret};

/// Largest page the peer serves (its `MAX_PAGE`).
pub const MAX_PAGE_SIZE: u32 = 1_000;

/// Configuration of a peer exchange.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The peer's base URL, e.g. `https://safeguard.partner.example`.
    pub base_url: Url,
    /// The bank to copy at the peer.
    pub bank: String,
    /// An API key of the peer with the `curate` scope.
    pub api_key: Secret,
    /// Items per page, 1..=[`MAX_PAGE_SIZE`].
    pub page_size: u32,
    /// Timeouts and body cap.
    pub limits: HttpLimits,
    /// Retries.
    pub retry: RetryPolicy,
}

impl PeerConfig {
    /// A configuration with defaults.
    pub fn new(base_url: Url, bank: impl Into<String>, api_key: Secret) -> PeerConfig {
        PeerConfig {
            base_url,
            bank: bank.into(),
            api_key,
            page_size: 500,
            limits: HttpLimits::default(),
            retry: RetryPolicy::default(),
        }
    }
}

/// The stored checkpoint: the pass in progress has applied every item up to `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerCheckpoint {
    /// Last item id of the last applied page (`None`: start of a pass).
    pub after: Option<u64>,
    /// Passes completed.
    pub passes: u64,
}

#[derive(Debug, Deserialize)]
struct Listing {
    contents: Vec<Item>,
    next_after: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Item {
    id: u64,
    signals: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    disable_until_ts: i64,
    #[serde(default)]
    note: Option<String>,
}

/// The peer client.
#[derive(Debug)]
pub struct PeerClient {
    cfg: PeerConfig,
    http: Http,
    cp: PeerCheckpoint,
    done: bool,
}

impl PeerClient {
    /// A client. Fails on an unusable configuration.
    pub fn new(cfg: PeerConfig) -> Result<PeerClient> {
        if cfg.api_key.is_empty() {
            return Err(Error::Config("a peer exchange needs an api_key".into()));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&cfg.page_size) {
            return Err(Error::Config(format!(
                "peer page_size must be 1..={MAX_PAGE_SIZE}"
            )));
        }
        if cfg.bank.is_empty()
            || !cfg
                .bank
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(Error::Config("peer bank: an UPPER_SNAKE_CASE name".into()));
        }
        if !matches!(cfg.base_url.scheme(), "http" | "https") || cfg.base_url.cannot_be_a_base() {
            return Err(Error::Config("peer base_url must be an http(s) URL".into()));
        }
        let http = Http::new(&cfg.limits, &cfg.retry)?;
        Ok(PeerClient {
            cfg,
            http,
            cp: PeerCheckpoint {
                after: None,
                passes: 0,
            },
            done: false,
        })
    }

    /// `GET /v1/banks/{bank}/contents` after `after`: the answer's body.
    async fn list(&self, after: Option<u64>) -> Result<Vec<u8>> {
        let base = self.cfg.base_url.as_str().trim_end_matches('/');
        let mut url = Url::parse(&format!("{base}/v1/banks/{}/contents", self.cfg.bank))
            .map_err(|e| Error::Config(format!("base_url: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(a) = after {
                q.append_pair("after", &a.to_string());
            }
            q.append_pair("limit", &self.cfg.page_size.to_string());
        }
        let mut r = Req::get(url);
        r.bearer = Some(self.cfg.api_key.clone());
        Ok(self.http.send(&r).await?.body)
    }

    /// The page for one listing answer (the body of `GET .../contents` after the checkpoint),
    /// moving the checkpoint on. The listing must be in ascending id order after the
    /// checkpoint and no longer than the page size asked for; else the page is refused whole.
    /// Pure (no I/O), so it is fuzzed (`fuzz/fuzz_targets/exchange_pages.rs`).
    pub fn page_from_body(&mut self, body: &[u8]) -> Result<Page> {
        let listing = parse_listing(body, self.cp.after, self.cfg.page_size)?;
        let last = listing.contents.last().map(|c| c.id);
        let more = listing.next_after.is_some() && last.is_some();
        let sweep = Sweep {
            after: self.cp.after,
            // The last page covers everything after it too.
            through: if more { last } else { None },
        };
        let now = now_secs();
        let records = listing
            .contents
            .into_iter()
            .filter(|it| it.disable_until_ts <= now)
            .map(|it| Record::Entry {
                source_id: it.id.to_string(),
                fingerprints: it.signals.into_iter().collect(),
                classification: None,
                metadata: Some(
                    serde_json::json!({
                        "exchange": "safeguard",
                        "bank": self.cfg.bank,
                        "content_id": it.id,
                        "note": it.note,
                    })
                    .to_string(),
                ),
            })
            .collect();
        if more {
            self.cp.after = last;
        } else {
            // Pass complete: the next run starts a new pass from the beginning.
            self.cp.after = None;
            self.cp.passes += 1;
            self.done = true;
        }
        Ok(Page {
            records,
            // Serialising integers cannot fail.
            checkpoint: serde_json::to_string(&self.cp).unwrap_or_default(),
            sweep: Some(sweep),
        })
    }
}

fn parse_listing(body: &[u8], after: Option<u64>, page_size: u32) -> Result<Listing> {
    let l: Listing = serde_json::from_slice(body)
        .map_err(|e| Error::Protocol(format!("contents: malformed JSON: {e}")))?;
    let mut prev = after;
    for it in &l.contents {
        if prev.is_some_and(|p| it.id <= p) {
            return Err(Error::Protocol(
                "contents are not in ascending id order".into(),
            ));
        }
        prev = Some(it.id);
    }
    if l.contents.len() > page_size as usize {
        return Err(Error::Protocol("page larger than asked for".into()));
    }
    Ok(l)
}

impl Fetcher for PeerClient {
    fn kind(&self) -> &'static str {
        "safeguard"
    }

    fn start(&mut self, checkpoint: Option<&str>) -> Result<()> {
        if let Some(s) = checkpoint {
            self.cp =
                serde_json::from_str(s).map_err(|e| Error::Checkpoint(format!("peer: {e}")))?;
        }
        self.done = false;
        Ok(())
    }

    async fn next_page(&mut self) -> Result<Option<Page>> {
        if self.done {
            return Ok(None);
        }
        let body = self.list(self.cp.after).await?;
        self.page_from_body(&body).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(page_size: u32) -> PeerClient {
        let mut cfg = PeerConfig::new(
            Url::parse("http://127.0.0.1:9/").unwrap(),
            "PEER",
            Secret::new("k"),
        );
        cfg.page_size = page_size;
        PeerClient::new(cfg).unwrap()
    }

    fn item(id: u64) -> serde_json::Value {
        serde_json::json!({"id": id, "signals": {"md5": format!("{id:032x}")}})
    }

    fn body(ids: &[u64], next_after: Option<u64>) -> Vec<u8> {
        let contents: Vec<_> = ids.iter().map(|&i| item(i)).collect();
        serde_json::to_vec(&serde_json::json!({"contents": contents, "next_after": next_after}))
            .unwrap()
    }

    #[test]
    fn pages_move_the_checkpoint_and_sweep_what_they_cover() {
        let mut c = client(2);
        let p = c.page_from_body(&body(&[3, 7], Some(7))).unwrap();
        assert_eq!(p.records.len(), 2);
        let sweep = p.sweep.unwrap();
        assert_eq!((sweep.after, sweep.through), (None, Some(7)));
        assert_eq!(c.cp.after, Some(7));
        // The last page of a pass sweeps to the end and starts the next pass from the top.
        let p = c.page_from_body(&body(&[9], None)).unwrap();
        let sweep = p.sweep.unwrap();
        assert_eq!((sweep.after, sweep.through), (Some(7), None));
        assert_eq!((c.cp.after, c.cp.passes), (None, 1));
    }

    #[test]
    fn disabled_items_are_left_out() {
        let mut c = client(2);
        let later = now_secs() + 3600;
        let b = serde_json::json!({"contents": [
            {"id": 1, "signals": {"md5": "0".repeat(32)}, "disable_until_ts": later},
            item(2),
        ], "next_after": null});
        let p = c.page_from_body(&serde_json::to_vec(&b).unwrap()).unwrap();
        assert!(matches!(&p.records[..], [Record::Entry { source_id, .. }] if source_id == "2"));
    }

    #[test]
    fn a_page_out_of_order_or_over_size_is_refused_whole() {
        let refused = |c: &mut PeerClient, b: &[u8]| {
            let before = c.cp;
            let r = c.page_from_body(b);
            assert!(matches!(r, Err(Error::Protocol(_))), "{r:?}");
            assert_eq!(c.cp, before, "a refused page leaves the checkpoint");
        };
        let mut c = client(2);
        refused(&mut c, &body(&[5, 4], None));
        refused(&mut c, &body(&[5, 5], None));
        refused(&mut c, &body(&[1, 2, 3], None));
        refused(&mut c, b"{\"contents\": 1}");
        refused(&mut c, b"");
        c.page_from_body(&body(&[5, 6], Some(6))).unwrap();
        // Ids must lie after the checkpoint too.
        refused(&mut c, &body(&[6], None));
        refused(&mut c, &body(&[2], None));
    }
}
