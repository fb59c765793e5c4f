//! Expiry, retraction, the approval gate, authentication, and secrets kept out of output.

use std::sync::Arc;
use std::time::Duration;

use safeguard_ncmec::testserver::{sample_filing, ReportState, TestServer, PASSWORD};
use safeguard_ncmec::{
    Approval, Client, ClientConfig, CodeClass, Credentials, Error, FileJournal, Filer, FilerConfig,
    Filing, Phase,
};

use crate::common::{assert_one_finished, file_journal, filer, now, StopAfter, FAST_RETRY};

const FILES: &[&str] = &["image-1.png", "context.txt"];

/// Records: 1 new state, 2 submitted, 3 upload started, 4 uploaded — stop there.
const STOP_AFTER_FIRST_UPLOAD: usize = 4;

/// Runs `filing` until its first file is uploaded, then stops (a journal write fails, as a
/// crash would); returns the id of the report left open at NCMEC.
async fn stop_after_first_upload(
    server: &TestServer,
    journal: &Arc<FileJournal>,
    filing: &Filing,
) -> String {
    let stopped = filer(
        server,
        StopAfter::new(journal.clone(), STOP_AFTER_FIRST_UPLOAD),
    )
    .run(filing)
    .await;
    assert!(matches!(stopped, Err(Error::Journal { .. })), "{stopped:?}");
    filer(server, journal.clone())
        .state(&filing.id)
        .unwrap()
        .unwrap()
        .current
        .unwrap()
        .report_id
}

/// The state at the server of report `id`.
fn state_of(server: &TestServer, id: &str) -> ReportState {
    server
        .reports()
        .into_iter()
        .find(|r| r.report_id == id)
        .unwrap()
        .state
}

#[tokio::test]
async fn a_report_idle_past_an_hour_is_replaced_and_the_old_one_abandoned() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = file_journal(&dir);
    let filing = sample_filing("expiry", now());
    let old = stop_after_first_upload(&server, &journal, &filing).await;

    // Past NCMEC's 1-hour idle window, on the server's clock and the filer's.
    server.advance(Duration::from_secs(61 * 60));
    let filed = filer(&server, journal).run(&filing).await.unwrap();
    let new = assert_one_finished(&server, FILES);
    assert_ne!(new.report_id, old);
    assert_eq!(filed.abandoned.len(), 1);
    assert_eq!(filed.abandoned[0].report_id, old);
    assert!(
        filed.abandoned[0].reason.contains("last changed"),
        "{:?}",
        filed.abandoned
    );
    // The retract found it gone (5001), which settles it.
    assert!(filed.abandoned[0].retracted);
    let old_state = state_of(&server, &old);
    assert_eq!(old_state, ReportState::Expired);
}

/// The 5-minute margin: a report idle 54 minutes is carried on; one idle 56 minutes (inside
/// the margin before NCMEC's 1-hour window) is retracted while NCMEC still has it, and the
/// filing moves to a new report rather than race the deletion.
#[tokio::test]
async fn a_report_within_five_minutes_of_the_idle_window_is_replaced_before_it_expires() {
    for (idle_minutes, replaced) in [(54, false), (56, true)] {
        let server = TestServer::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let journal = file_journal(&dir);
        let filing = sample_filing("margin", now());
        let old = stop_after_first_upload(&server, &journal, &filing).await;
        server.advance(Duration::from_secs(idle_minutes * 60));
        let filed = filer(&server, journal).run(&filing).await.unwrap();
        let new = assert_one_finished(&server, FILES);
        let old_state = state_of(&server, &old);
        if replaced {
            assert_ne!(new.report_id, old);
            assert_eq!(filed.abandoned.len(), 1);
            assert!(filed.abandoned[0].reason.contains("last changed"));
            assert_eq!(old_state, ReportState::Retracted, "retracted, not expired");
        } else {
            assert_eq!(new.report_id, old, "idle {idle_minutes} min");
            assert!(filed.abandoned.is_empty(), "{:?}", filed.abandoned);
        }
    }
}

/// The filer's clock does not know the report expired (a clock behind NCMEC's); NCMEC's
/// 5001 on the next call is enough to move to a new report.
#[tokio::test]
async fn a_report_ncmec_deleted_is_replaced_on_5001() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = file_journal(&dir);
    let filing = sample_filing("gone", now());
    let _ = filer(
        &server,
        StopAfter::new(journal.clone(), STOP_AFTER_FIRST_UPLOAD),
    )
    .run(&filing)
    .await;
    server.advance(Duration::from_secs(25 * 3600));
    let client = crate::common::client(&server);
    // The system clock, not the server's: the filer thinks the report is fresh.
    let filer = Filer::new(client, journal).with_config(FilerConfig {
        retry: FAST_RETRY,
        ..FilerConfig::default()
    });
    let filed = filer.run(&filing).await.unwrap();
    assert_one_finished(&server, FILES);
    assert_eq!(filed.abandoned.len(), 1);
    assert!(
        filed.abandoned[0].reason.contains("5001"),
        "{:?}",
        filed.abandoned
    );
}

#[tokio::test]
async fn retract_withdraws_an_unfinished_filing_for_good() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = file_journal(&dir);
    let filing = sample_filing("withdrawn", now());
    let _ = filer(
        &server,
        StopAfter::new(journal.clone(), STOP_AFTER_FIRST_UPLOAD),
    )
    .run(&filing)
    .await;
    let filer = filer(&server, journal);
    let state = filer.retract("withdrawn").await.unwrap();
    assert_eq!(state.phase, Phase::Retracted);
    let reports = server.reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].state, ReportState::Retracted);
    assert!(state
        .transcript
        .iter()
        .any(|e| e.endpoint == "/retract" && e.response.contains("<responseCode>0<")));
    // Idempotent, and the filing is not filed afterwards.
    assert_eq!(
        filer.retract("withdrawn").await.unwrap().phase,
        Phase::Retracted
    );
    assert!(matches!(filer.run(&filing).await, Err(Error::Retracted(_))));
    assert!(server.finished().is_empty());
}

#[tokio::test]
async fn a_finished_filing_cannot_be_retracted() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let filer = filer(&server, file_journal(&dir));
    filer.run(&sample_filing("done", now())).await.unwrap();
    assert!(matches!(
        filer.retract("done").await,
        Err(Error::AlreadyFinished(_))
    ));
    assert_one_finished(&server, FILES);
}

#[tokio::test]
async fn the_same_person_cannot_confirm_and_approve() {
    assert!(matches!(
        Approval::new("Test Moderator", "test moderator"),
        Err(Error::SamePerson)
    ));
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let filer = filer(&server, file_journal(&dir));
    let mut filing = sample_filing("unapproved", now());
    filing.approval = None;
    assert!(matches!(filer.run(&filing).await, Err(Error::NotApproved)));
    // Nothing was sent: an unapproved filing must not even open a report.
    assert!(server.log().is_empty());
}

#[tokio::test]
async fn wrong_credentials_are_refused_without_retrying_or_printing_the_password() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = "wrong-but-secret-password-123";
    let creds = Credentials::new(safeguard_ncmec::testserver::USERNAME, secret);
    let client = Client::new(ClientConfig::new(creds.clone()).base_url(server.base_url())).unwrap();
    let filer = Filer::new(client.clone(), file_journal(&dir))
        .with_clock(Arc::new(server.clock()))
        .with_config(FilerConfig {
            retry: FAST_RETRY,
            ..FilerConfig::default()
        });
    let err = filer.run(&sample_filing("auth", now())).await.unwrap_err();
    assert_eq!(err.code_class(), Some(CodeClass::Auth), "{err:?}");
    assert!(err.to_string().contains("3000"), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(server.log().len(), 1, "an auth failure is not retried");
    let status = client.status().await.unwrap_err();
    // Everything a log line might show.
    let outputs = [
        format!("{err}"),
        format!("{err:?}"),
        format!("{status}"),
        format!("{status:?}"),
        format!("{creds}"),
        format!("{creds:?}"),
        format!("{client:?}"),
        format!("{filer:?}"),
    ];
    for text in &outputs {
        assert!(!text.contains(secret), "password in {text}");
        assert!(!text.contains(PASSWORD), "server password in {text}");
    }
    assert!(outputs[5].contains("***"));
    // No credentials at all: 2000.
    let raw = reqwest::get(format!("{}/status", server.base_url()))
        .await
        .unwrap();
    assert!(raw.headers().contains_key("Request-ID"));
    let body = raw.text().await.unwrap();
    assert!(body.contains("<responseCode>2000</responseCode>"), "{body}");
}

/// Refusals the filer acts on are kept in the transcript with their Request-ID too.
#[tokio::test]
async fn refusals_acted_on_are_in_the_transcript() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = file_journal(&dir);
    let filing = sample_filing("refusals", now());
    let _ = filer(
        &server,
        StopAfter::new(journal.clone(), STOP_AFTER_FIRST_UPLOAD),
    )
    .run(&filing)
    .await;
    server.advance(Duration::from_secs(25 * 3600));
    let filer = Filer::new(crate::common::client(&server), journal).with_config(FilerConfig {
        retry: FAST_RETRY,
        ..FilerConfig::default()
    });
    let filed = filer.run(&filing).await.unwrap();
    let refusals: Vec<_> = filed
        .transcript
        .iter()
        .filter(|e| e.response.contains("<responseCode>5001</responseCode>"))
        .collect();
    // The /fileinfo that found the report gone, then the retract of the abandoned report.
    let endpoints: Vec<&str> = refusals.iter().map(|e| e.endpoint.as_str()).collect();
    assert_eq!(endpoints, ["/fileinfo", "/retract"]);
    assert!(refusals.iter().all(|e| e.request_id.is_some()));
}
