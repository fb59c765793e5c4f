//! The crash test's child process (feature `test-server`).
//!
//! Files [`sample_filing`] against the test server at `<base url>` with a [`FileJournal`] in
//! `<journal dir>`, and calls `std::process::abort()` right after the journal has durably
//! recorded its K-th state, K taken from `NCMEC_CRASH_AFTER_RECORD` (unset: never). The abort
//! is a real crash: no destructors, no flushing, the socket closed by the kernel. The parent
//! test then resumes the filing in-process from the same journal.
//!
//! Usage: `ncmec-crash-filer <base url> <journal dir> <filing id> <incident unix seconds>`.
//! Exit status: 0 filed (prints the report id), 2 the filer failed, 64 bad usage.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use safeguard_ncmec::testserver::{sample_filing, PASSWORD, USERNAME};
use safeguard_ncmec::{
    Client, ClientConfig, Credentials, FileJournal, Filer, FilerConfig, FilingState, Journal,
    RetryPolicy, Timestamp,
};

/// Environment variable holding K.
const CRASH_AFTER_ENV: &str = "NCMEC_CRASH_AFTER_RECORD";

/// A journal that aborts the process right after its K-th durable record.
struct CrashingJournal {
    inner: FileJournal,
    crash_after: Option<usize>,
    records: AtomicUsize,
}

impl Journal for CrashingJournal {
    fn load(&self, filing_id: &str) -> safeguard_ncmec::Result<Option<FilingState>> {
        self.inner.load(filing_id)
    }

    fn record(&self, filing_id: &str, state: &FilingState) -> safeguard_ncmec::Result<()> {
        self.inner.record(filing_id, state)?;
        let n = self.records.fetch_add(1, Ordering::SeqCst) + 1;
        if Some(n) == self.crash_after {
            std::process::abort();
        }
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, base_url, dir, filing_id, incident] = args.as_slice() else {
        eprintln!(
            "usage: ncmec-crash-filer <base url> <journal dir> <filing id> <incident unix seconds>"
        );
        std::process::exit(64);
    };
    let Ok(incident) = incident.parse::<i64>() else {
        eprintln!("the incident time must be unix seconds");
        std::process::exit(64);
    };
    let crash_after = std::env::var(CRASH_AFTER_ENV)
        .ok()
        .and_then(|v| v.parse().ok());
    let result = async {
        let journal = CrashingJournal {
            inner: FileJournal::open(dir)?,
            crash_after,
            records: AtomicUsize::new(0),
        };
        let client = Client::new(
            ClientConfig::new(Credentials::new(USERNAME, PASSWORD)).base_url(base_url.clone()),
        )?;
        let filer = Filer::new(client, Arc::new(journal)).with_config(FilerConfig {
            retry: RetryPolicy {
                max_attempts: 5,
                initial_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(50),
            },
            ..FilerConfig::default()
        });
        filer
            .run(&sample_filing(filing_id, Timestamp(incident)))
            .await
    }
    .await;
    match result {
        Ok(filed) => println!("{}", filed.report_id),
        Err(e) => {
            eprintln!("filing failed: {e}");
            std::process::exit(2);
        }
    }
}
