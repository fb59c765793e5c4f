//! Faults on the way: HTTP 5xx, responseCode 1000, dropped connections (before and after the
//! server acted), a slow upload. Each is recovered by retrying with backoff, and none of
//! them produces a second finished report or a duplicate file.

use std::sync::Arc;
use std::time::Duration;

use safeguard_ncmec::testserver::{sample_filing, Fault, ReportState, TestServer};
use safeguard_ncmec::{Client, ClientConfig, Credentials, Error, Filer, FilerConfig};

use crate::common::{assert_one_finished, file_journal, filer, now, FAST_RETRY};

const FILES: &[&str] = &["image-1.png", "context.txt"];

#[tokio::test]
async fn retries_5xx_code_1000_and_lost_answers_on_the_same_report() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    server.inject("/submit", Fault::Http500, 2);
    server.inject("/upload", Fault::Code1000, 1);
    server.inject("/fileinfo", Fault::Drop, 1);
    server.inject("/fileinfo", Fault::Code1000, 1);
    // The first finish is carried out and its answer lost; the retry hears 5102.
    server.inject("/finish", Fault::DropAfter, 1);
    let filed = filer(&server, file_journal(&dir))
        .run(&sample_filing("faults", now()))
        .await
        .unwrap();
    let report = assert_one_finished(&server, FILES);
    assert_eq!(report.report_id, filed.report_id);
    // Nothing here needed a new report: 1000 on upload means it did not arrive.
    assert!(filed.abandoned.is_empty(), "{:?}", filed.abandoned);
    assert_eq!(server.reports().len(), 1);
    let finish = filed.transcript.last().unwrap();
    assert!(finish
        .response
        .contains("<responseCode>5102</responseCode>"));
    let codes: Vec<_> = server
        .log()
        .into_iter()
        .filter(|l| l.endpoint == "/finish")
        .map(|l| l.response_code)
        .collect();
    assert_eq!(codes, [Some(0), Some(5102)]);
}

/// An upload whose answer is lost may have stored the file; NCMEC cannot list a report's
/// files, so the filer retracts that report and files a new one rather than risk a duplicate.
#[tokio::test]
async fn an_upload_that_may_have_arrived_moves_to_a_new_report() {
    for fault in [Fault::Http500, Fault::Drop, Fault::DropAfter] {
        let server = TestServer::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        server.inject("/upload", fault, 1);
        let filed = filer(&server, file_journal(&dir))
            .run(&sample_filing("upload-fault", now()))
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert_one_finished(&server, FILES);
        assert_eq!(filed.abandoned.len(), 1, "{fault:?}");
        assert!(filed.abandoned[0].retracted);
        let old = server
            .reports()
            .into_iter()
            .find(|r| r.report_id == filed.abandoned[0].report_id)
            .unwrap();
        assert_eq!(old.state, ReportState::Retracted, "{fault:?}");
    }
}

/// A file damaged on the way is caught by the MD5 NCMEC answers with: the client refuses the
/// answer (`HashMismatch`, naming both digests), and the filer, since the damaged copy is
/// stored in that report, retracts it and files a new one with intact files.
#[tokio::test]
async fn a_file_damaged_on_the_way_is_caught_by_its_md5_and_filed_again() {
    let server = TestServer::start().await.unwrap();
    let client = crate::common::client(&server);
    let xml = sample_filing("damaged", now())
        .report
        .to_xml(now())
        .unwrap();
    let report_id = client
        .submit(&xml)
        .await
        .unwrap()
        .response
        .report_id
        .unwrap();
    server.inject("/upload", Fault::Corrupt, 1);
    let content = b"benign test bytes";
    let err = client
        .upload(&report_id, "image-1.png", content)
        .await
        .unwrap_err();
    let Error::HashMismatch {
        file_name,
        local,
        remote,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(file_name, "image-1.png");
    assert_eq!(local, &safeguard_ncmec::client::md5_hex(content));
    assert_ne!(local, remote);
    assert_eq!(server.reports()[0].files[0].md5, *remote);

    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    server.inject("/upload", Fault::Corrupt, 1);
    let filing = sample_filing("damaged", now());
    let filed = filer(&server, file_journal(&dir))
        .run(&filing)
        .await
        .unwrap();
    let report = assert_one_finished(&server, FILES);
    for (stored, sent) in report.files.iter().zip(&filing.files) {
        assert_eq!(stored.md5, safeguard_ncmec::client::md5_hex(&sent.content));
    }
    assert_eq!(filed.abandoned.len(), 1);
    assert!(filed.abandoned[0].retracted);
}

#[tokio::test]
async fn a_slow_upload_within_the_timeout_just_takes_longer() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    server.inject("/upload", Fault::Delay(Duration::from_millis(300)), 2);
    let filed = filer(&server, file_journal(&dir))
        .run(&sample_filing("slow", now()))
        .await
        .unwrap();
    assert_one_finished(&server, FILES);
    assert!(filed.abandoned.is_empty());
}

#[tokio::test]
async fn a_slow_upload_past_the_timeout_is_recovered() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    server.inject("/upload", Fault::Delay(Duration::from_secs(3)), 1);
    let client = Client::new(
        ClientConfig::new(Credentials::new(
            safeguard_ncmec::testserver::USERNAME,
            safeguard_ncmec::testserver::PASSWORD,
        ))
        .base_url(server.base_url())
        .timeout(Duration::from_millis(800)),
    )
    .unwrap();
    let filer = Filer::new(client, file_journal(&dir))
        .with_clock(Arc::new(server.clock()))
        .with_config(FilerConfig {
            retry: FAST_RETRY,
            ..FilerConfig::default()
        });
    let filed = filer.run(&sample_filing("timeout", now())).await.unwrap();
    assert_one_finished(&server, FILES);
    assert_eq!(filed.abandoned.len(), 1);
    // Give the delayed request time to finish on the server, then check it added nothing to
    // the finished report.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_one_finished(&server, FILES);
}

#[tokio::test]
async fn persistent_faults_stop_after_the_retry_budget() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    server.inject("/submit", Fault::Http500, 100);
    let err = filer(&server, file_journal(&dir))
        .run(&sample_filing("down", now()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::RetriesExhausted { attempts: 5, .. }),
        "{err:?}"
    );
    assert_eq!(server.log().len(), 5);
    assert!(server.reports().is_empty());
}

#[tokio::test]
async fn uploads_that_keep_failing_ambiguously_give_up_after_three_reports() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    server.inject("/upload", Fault::Drop, 100);
    let err = filer(&server, file_journal(&dir))
        .run(&sample_filing("flaky", now()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::TooManyReports { reports: 3, .. }),
        "{err:?}"
    );
    assert!(server.finished().is_empty());
}

/// A submit carried out whose answer is lost leaves a report nobody knows the id of; the
/// retry opens another, and the orphan is never finished (NCMEC deletes it after an hour).
#[tokio::test]
async fn a_lost_submit_answer_leaves_an_orphan_that_is_never_finished() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    server.inject("/submit", Fault::DropAfter, 1);
    let filed = filer(&server, file_journal(&dir))
        .run(&sample_filing("orphan", now()))
        .await
        .unwrap();
    let finished = assert_one_finished(&server, FILES);
    assert_eq!(finished.report_id, filed.report_id);
    let orphan: Vec<_> = server
        .reports()
        .into_iter()
        .filter(|r| r.report_id != filed.report_id)
        .collect();
    assert_eq!(orphan.len(), 1);
    assert_eq!(orphan[0].state, ReportState::Open);
    assert!(orphan[0].files.is_empty());
    server.advance(Duration::from_secs(3601));
    assert_eq!(
        server
            .reports()
            .into_iter()
            .find(|r| r.report_id == orphan[0].report_id)
            .unwrap()
            .state,
        ReportState::Expired
    );
}
