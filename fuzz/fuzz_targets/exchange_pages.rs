//! What the exchange clients read from a peer: NCMEC's `GET /v2/entries` XML, StopNCII's
//! `FetchHashes` JSON and another Safeguard's bank listing JSON, each parsed by the client's own
//! functions and applied through the real run loop (`safeguard_exchange::run`) to an in-memory
//! bank (`MemorySink`). No socket: the bodies stand for the HTTP answers.
//!
//! Input: one byte picks the exchange, then up to four answer bodies separated by NUL bytes (a
//! run of pages; neither XML nor JSON can hold a raw NUL).
//!
//! Checked on every input: nothing panics; the run applies exactly the pages before the first
//! refused one, and a refused page ends it with the stable `exchange_protocol` code while the
//! bank keeps the checkpoint of the last page applied; every value stored is canonical for its
//! type (normalising it again gives itself), and no stored metadata or classification is over
//! its limit.
#![no_main]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use safeguard_engine::SignalType;
use safeguard_exchange::ncmec;
use safeguard_exchange::peer::{PeerCheckpoint, PeerClient, PeerConfig};
use safeguard_exchange::stopncii::{
    self, StopNciiCheckpoint, StopNciiClient, StopNciiConfig, DEFAULT_START_TIME,
};
use safeguard_exchange::{
    run, ExchangeSink, Fetcher, MemorySink, Page, Result, RunOptions, Secret,
};

const MAX_PAGES: usize = 4;

/// Clients are built once: each holds an HTTP client, costly to build per input. `start`
/// puts them back at the beginning of a pass before every input.
struct Clients {
    stopncii: StopNciiClient,
    peer: PeerClient,
}

fn clients() -> &'static Mutex<Clients> {
    static C: OnceLock<Mutex<Clients>> = OnceLock::new();
    C.get_or_init(|| {
        let base = url::Url::parse("http://127.0.0.1:9/").expect("fixed URL");
        let stopncii = StopNciiClient::new(StopNciiConfig::new(
            base.clone(),
            Secret::new("fuzz-subscription"),
            Secret::new("fuzz-fetch"),
        ))
        .expect("valid StopNCII configuration");
        let mut cfg = PeerConfig::new(base, "FUZZ", Secret::new("fuzz-key"));
        // Small, so "page larger than asked for" is within the fuzzer's reach.
        cfg.page_size = 4;
        let peer = PeerClient::new(cfg).expect("valid peer configuration");
        Mutex::new(Clients { stopncii, peer })
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("tokio runtime")
    })
}

#[derive(Clone, Copy)]
enum Exchange {
    Ncmec,
    StopNcii,
    Peer,
}

/// Serves the bodies as pages, through the client's parser; counts what it served.
struct Pages<'a> {
    exchange: Exchange,
    clients: &'a mut Clients,
    bodies: VecDeque<&'a [u8]>,
    served: usize,
    refused: bool,
    last_checkpoint: Option<String>,
}

impl Pages<'_> {
    fn parse(&mut self, body: &[u8]) -> Result<Page> {
        match self.exchange {
            Exchange::Ncmec => {
                let p = ncmec::parse_entries(body)?;
                Ok(Page {
                    records: ncmec::records(p.entries),
                    checkpoint: format!("ncmec page {}", self.served),
                    sweep: None,
                })
            }
            Exchange::StopNcii => Ok(self
                .clients
                .stopncii
                .page_from_response(stopncii::parse_fetch_hashes(body)?)),
            Exchange::Peer => self.clients.peer.page_from_body(body),
        }
    }
}

impl Fetcher for Pages<'_> {
    fn kind(&self) -> &'static str {
        "fuzz"
    }

    fn start(&mut self, _checkpoint: Option<&str>) -> Result<()> {
        let s = serde_json::to_string(&StopNciiCheckpoint {
            start: DEFAULT_START_TIME,
            token: None,
            resume_from: DEFAULT_START_TIME,
        })
        .expect("checkpoint serialises");
        self.clients.stopncii.start(Some(&s))?;
        let p = serde_json::to_string(&PeerCheckpoint {
            after: None,
            passes: 0,
        })
        .expect("checkpoint serialises");
        self.clients.peer.start(Some(&p))
    }

    async fn next_page(&mut self) -> Result<Option<Page>> {
        let Some(body) = self.bodies.pop_front() else {
            return Ok(None);
        };
        match self.parse(body) {
            Ok(page) => {
                self.served += 1;
                self.last_checkpoint = Some(page.checkpoint.clone());
                Ok(Some(page))
            }
            Err(e) => {
                self.refused = true;
                Err(e)
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let exchange = match pick % 3 {
        0 => Exchange::Ncmec,
        1 => Exchange::StopNcii,
        _ => Exchange::Peer,
    };
    let bodies: VecDeque<&[u8]> = rest.splitn(MAX_PAGES, |&b| b == 0).collect();
    let mut guard = clients().lock().unwrap_or_else(|p| p.into_inner());
    let mut pages = Pages {
        exchange,
        clients: &mut guard,
        bodies,
        served: 0,
        refused: false,
        last_checkpoint: None,
    };
    let sink = Arc::new(MemorySink::new());
    let report = runtime().block_on(run(
        "fuzz",
        &mut pages,
        sink.clone() as Arc<dyn ExchangeSink>,
        &RunOptions::default(),
    ));

    assert_eq!(report.pages, pages.served as u64, "pages applied");
    if pages.refused {
        assert_eq!(report.error_code.as_deref(), Some("exchange_protocol"));
        assert!(!report.caught_up);
    } else {
        assert_eq!(report.error_code, None, "{:?}", report.error);
        assert!(report.caught_up);
    }
    let bank = sink.snapshot("fuzz");
    assert_eq!(bank.checkpoint, pages.last_checkpoint, "stored checkpoint");
    for ((t, v), (source_id, classification, metadata)) in &bank.values {
        let ty = SignalType::parse(t).expect("stored type is known");
        assert_eq!(ty.name(), t, "stored type is canonical");
        assert_eq!(&ty.normalize(v).expect("stored value is valid"), v);
        assert!(source_id.as_deref().is_some_and(|s| !s.is_empty()));
        assert!(classification
            .as_ref()
            .is_none_or(|c| c.len() <= safeguard_exchange::MAX_CLASSIFICATION_BYTES));
        assert!(metadata
            .as_ref()
            .is_none_or(|m| m.len() <= safeguard_exchange::MAX_METADATA_BYTES));
    }
});
