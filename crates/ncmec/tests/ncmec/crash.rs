//! A real process crash after every journal step, then a resume: exactly one finished report
//! with every file, never a duplicate.
//!
//! The child is `ncmec-crash-filer` (src/bin), which files the sample filing against this
//! test's server with a file journal and calls `std::process::abort()` right after the
//! journal's K-th durable record. The test runs it for every K of a whole filing, then
//! resumes in this process from the same journal directory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use safeguard_ncmec::testserver::{sample_filing, TestServer};
use safeguard_ncmec::{FilingState, Journal};

use crate::common::{assert_one_finished, file_journal, filer, now};

const FILES: &[&str] = &["image-1.png", "context.txt"];

/// Counts records, to learn how many steps a whole filing takes.
struct Counting {
    inner: Arc<dyn Journal>,
    records: AtomicUsize,
}

impl Journal for Counting {
    fn load(&self, id: &str) -> safeguard_ncmec::Result<Option<FilingState>> {
        self.inner.load(id)
    }

    fn record(&self, id: &str, state: &FilingState) -> safeguard_ncmec::Result<()> {
        self.records.fetch_add(1, Ordering::SeqCst);
        self.inner.record(id, state)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_any_step_resumes_to_exactly_one_report() {
    let incident = now();
    // A clean run, to count the steps.
    let steps = {
        let server = TestServer::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let counting = Arc::new(Counting {
            inner: file_journal(&dir),
            records: AtomicUsize::new(0),
        });
        filer(&server, counting.clone())
            .run(&sample_filing("crash", incident))
            .await
            .unwrap();
        counting.records.load(Ordering::SeqCst)
    };
    // new, submitted, 2 × (upload started, uploaded, details sent), finishing, finished.
    assert_eq!(steps, 10);

    for k in 1..=steps {
        let server = TestServer::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ncmec-crash-filer"))
            .arg(server.base_url())
            .arg(dir.path())
            .arg("crash")
            .arg(incident.unix_seconds().to_string())
            .env("NCMEC_CRASH_AFTER_RECORD", k.to_string())
            .output()
            .await
            .unwrap();
        assert!(
            !child.status.success(),
            "step {k}: the child should have aborted: {}",
            String::from_utf8_lossy(&child.stderr)
        );
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(child.status.signal(), Some(6), "step {k}: SIGABRT expected");
        }
        let recorded = file_journal(&dir).load("crash").unwrap().unwrap();

        let filed = filer(&server, file_journal(&dir))
            .run(&sample_filing("crash", incident))
            .await
            .unwrap_or_else(|e| panic!("step {k}: resume failed: {e}"));
        let report = assert_one_finished(&server, FILES);
        assert_eq!(filed.report_id, report.report_id, "step {k}");
        assert_eq!(filed.file_ids.len(), 2, "step {k}");
        // A crash between recording "upload started" and its answer is the one place a
        // report is given up (the upload may have arrived); everywhere else the same report
        // is carried on.
        let ambiguous_upload = recorded.current.as_ref().is_some_and(|c| {
            c.files
                .iter()
                .any(|f| f.upload_started && f.file_id.is_none())
        });
        assert_eq!(
            filed.abandoned.len(),
            usize::from(ambiguous_upload),
            "step {k}: {:?}",
            filed.abandoned
        );
        assert!(filed.abandoned.iter().all(|a| a.retracted), "step {k}");
    }
}
