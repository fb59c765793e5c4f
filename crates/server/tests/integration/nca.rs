//! UK NCA reports of a case through the API: the priority assessment, the signed and
//! encrypted bundle (opened with the recipient's age key and the organisation's public key,
//! media and hashes intact), the two-person rule, and recording the NCA's reference.

use axum::http::StatusCode;
use serde_json::json;

use crate::common::*;
use safeguard_nca::age::x25519::Identity;
use safeguard_server::config::Config;

const SQUARE: &str = "photos/images/pdq/data/bridge-mods/square-512x512.jpg";
const BLURRED: &str = "photos/images/pdq/data/bridge-mods/blur-a-lot.jpg";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_case_exports_a_bundle_and_records_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let s = server_with(Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    })
    .await;
    let (imgs, case) = two_photo_case(&s).await;

    // Priority: a child account is involved, so level 2 by the default rules.
    let p = s
        .admin(
            "GET",
            &format!("/v1/cases/{case}/reports/nca/priority"),
            None,
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text());
    let p = p.json();
    assert_eq!(p["level"], 2, "{p}");
    assert_eq!(p["rule"], "child account involved");
    assert_eq!(p["facts"]["classification"], "A1");
    let opened = s.store.case(case).unwrap().unwrap().opened_at;
    assert_eq!(p["due_at_ms"], opened + 24 * 3600 * 1000);
    assert_eq!(p["overdue"], false);

    let identity = Identity::generate();
    let body = bundle_body(&identity);
    let uri = format!("/v1/cases/{case}/reports/nca/bundle");
    // Not before a second person approved the confirmed decision.
    let r = s.admin("POST", &uri, Some(body.clone())).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "approval_required")
    );
    s.confirm_case(case).await;
    let r = s.admin("POST", &uri, Some(body.clone())).await;
    assert_eq!(r.code(), "approval_required");
    s.approve_case(case).await;

    // One referral per case. The policy's default is NCMEC: the first report step records
    // that choice on the case and refuses the NCA.
    let referral = format!("/v1/cases/{case}/referral");
    let shown = s.admin("GET", &referral, None).await.json();
    assert_eq!(
        (shown["to"].clone(), shown["source"].clone()),
        (json!("ncmec"), json!("policy"))
    );
    let r = s.admin("POST", &uri, Some(body.clone())).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "referral_excluded"),
        "{}",
        r.text()
    );
    let shown = s.admin("GET", &referral, None).await.json();
    assert_eq!(
        (
            shown["to"].clone(),
            shown["source"].clone(),
            shown["by"].clone()
        ),
        (json!("ncmec"), json!("recorded"), json!("policy"))
    );
    // An admin refers this case to the NCA instead, with a reason: recorded (the NCMEC side of
    // the refusal is in tests/reports.rs, where NCMEC filing is configured).
    for bad in [
        json!({"to": "interpol", "reason": "x"}),
        json!({"to": "nca", "reason": "  "}),
        json!({"to": "nca"}),
    ] {
        let r = s.admin("POST", &referral, Some(bad)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    }
    let r = s
        .admin(
            "POST",
            &referral,
            Some(json!({"to": "nca", "reason": "UK-only service, not reported to NCMEC"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        (r.json()["to"].clone(), r.json()["reason"].clone()),
        (
            json!("nca"),
            json!("UK-only service, not reported to NCMEC")
        )
    );
    let line = s.store.case_history(case).unwrap().pop().unwrap();
    assert_eq!(line.action, "referral");
    assert_eq!(
        s.admin("GET", "/v1/cases/999999/referral", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let r = s.admin("POST", &uri, Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.headers["content-type"], "application/octet-stream");
    let public = r.headers["safeguard-signing-key"]
        .to_str()
        .unwrap()
        .to_string();
    let key = s
        .admin("GET", "/v1/reports/nca/signing_key", None)
        .await
        .json();
    assert_eq!(key["public_key"], public);
    let vk = safeguard_nca::ed25519_dalek::VerifyingKey::from_bytes(
        &hex::decode(&public).unwrap().try_into().unwrap(),
    )
    .unwrap();
    let opened_bundle = safeguard_nca::open_bundle(&r.body, &identity, &vk).unwrap();
    let report = &opened_bundle.report;
    assert_eq!(report.content.len(), 2);
    assert_eq!(report.priority.map(|l| l.number()), Some(2));
    assert_eq!(report.users[0].accounts[0].id, "uploader-1");
    assert!(
        report
            .declaration
            .all_reasonably_available_information_included
    );
    assert_eq!(opened_bundle.files.len(), 2);
    for (i, img) in imgs.iter().enumerate() {
        let item = &report.content[i];
        assert_eq!(item.reference.as_deref(), Some(format!("n{i}").as_str()));
        assert_eq!(item.uploaded_at_ms, Some(1_764_000_000_000));
        assert_eq!(item.upload_ip.unwrap().to_string(), format!("192.0.2.{i}"));
        let md5 = safeguard_media::digest::digests(img).md5_hex();
        assert!(item.hashes.iter().any(|h| h.value == md5), "{item:?}");
        let file = &opened_bundle.files[i];
        assert_eq!(Some(file.name.as_str()), item.file_name.as_deref());
        assert!(file.name.ends_with(".jpg"));
        assert_eq!(&file.bytes, img, "the media in the bundle is the upload");
    }
    // Another identity cannot open it.
    assert!(safeguard_nca::open_bundle(&r.body, &Identity::generate(), &vk).is_err());
    // The export is on the audit record.
    let a = s.store.audit_entries(0, 100).unwrap();
    assert!(a
        .iter()
        .any(|e| e.entry.action == "vault_export" && e.entry.object == format!("case:{case}")));
    // A bad recipient is a 400.
    let mut bad = body.clone();
    bad["recipient"] = json!("not-a-key");
    let r = s.admin("POST", &uri, Some(bad)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // The reference: refused when malformed, then recorded; the case is reported.
    let refuri = format!("/v1/cases/{case}/reports/nca/reference");
    let r = s
        .admin("POST", &refuri, Some(json!({"reference": ""})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    record_reference(&s, case, "NCA-2026-000123").await;
    // Recorded once: the case is no longer decided.
    let r = s
        .admin(
            "POST",
            &refuri,
            Some(json!({"reference": "NCA-2026-000124"})),
        )
        .await;
    assert_eq!(r.code(), "approval_required");
}

/// A `csam` bank holding the hashes of two benign photos, and both photos submitted by one
/// child account: one case, with both as evidence. Returns the photos and the case.
async fn two_photo_case(s: &TestServer) -> ([Vec<u8>; 2], i64) {
    two_photo_case_at(s, [1_764_000_000; 2]).await
}

/// [`two_photo_case`] with the platform's `created_at` of each photo.
async fn two_photo_case_at(s: &TestServer, created_at: [i64; 2]) -> ([Vec<u8>; 2], i64) {
    // Two benign photos; the bank holds their own hashes.
    let imgs: [Vec<u8>; 2] = [sample_image(SQUARE), sample_image(BLURRED)];
    let r = s
        .admin(
            "POST",
            "/v1/banks",
            Some(json!({"name": "HOTLINE", "kind": "csam", "classification": "A1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    for img in &imgs {
        let h = s.upload("/h/hash", "photo", img, &[]).await.json();
        let r = s
            .admin(
                "POST",
                "/c/bank/HOTLINE/signal",
                Some(json!({"pdq": h["pdq"]})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let mut case = 0;
    for (i, img) in imgs.iter().enumerate() {
        let meta = format!(
            r#"{{"id":"n{i}","kind":"image","account":"uploader-1","account_age":"child","created_at":{},"ip":"192.0.2.{i}"}}"#,
            created_at[i]
        );
        let r = s
            .upload("/v1/content", "media", img, &[("json", &meta)])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        case = r.json()["case_id"].as_i64().unwrap();
    }
    assert_eq!(s.store.case_evidence(case).unwrap().len(), 2);
    (imgs, case)
}

/// An upload time the platform gave that cannot be true (milliseconds where seconds are
/// expected; a time before 2000) is accepted with the item and left out of the NCA report, as
/// out of NCMEC's, rather than making the case's report impossible to build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impossible_upload_time_is_left_out_of_the_nca_report() {
    let dir = tempfile::tempdir().unwrap();
    let s = server_with(Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    })
    .await;
    let (_, case) = two_photo_case_at(&s, [1_764_000_000_000, 5]).await;
    s.confirm_case(case).await;
    s.approve_case(case).await;
    let r = s
        .admin(
            "POST",
            &format!("/v1/cases/{case}/referral"),
            Some(json!({"to": "nca", "reason": "UK-only service"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let identity = Identity::generate();
    let r = s
        .admin(
            "POST",
            &format!("/v1/cases/{case}/reports/nca/bundle"),
            Some(bundle_body(&identity)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let vk = safeguard_nca::ed25519_dalek::VerifyingKey::from_bytes(
        &hex::decode(r.headers["safeguard-signing-key"].to_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    )
    .unwrap();
    let report = safeguard_nca::open_bundle(&r.body, &identity, &vk)
        .unwrap()
        .report;
    assert_eq!(report.content.len(), 2);
    for item in &report.content {
        assert_eq!(item.uploaded_at_ms, None, "{item:?}");
        assert!(
            item.upload_ip.is_some(),
            "the rest of the context is kept: {item:?}"
        );
    }
}

/// Records the NCA's `reference` for `case`: the case is `reported`, and its history's last
/// line keeps the reference.
async fn record_reference(s: &TestServer, case: i64, reference: &str) {
    let r = s
        .admin(
            "POST",
            &format!("/v1/cases/{case}/reports/nca/reference"),
            Some(json!({ "reference": reference })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["state"], "reported");
    let h = s.store.case_history(case).unwrap();
    assert_eq!(
        h.last().unwrap().note.as_deref(),
        Some(format!("nca reference {reference}").as_str())
    );
}

/// The bundle request for `identity`.
fn bundle_body(identity: &Identity) -> serde_json::Value {
    json!({
        "recipient": identity.to_public().to_string(),
        "authorised_person": {"name": "Test Reporter", "email": "reporter@example.com"},
        "declared_by": "Test Reporter",
        "platform": "Example Platform",
    })
}

/// The referral recorded on a case stays when the policy changes afterwards (the NCA bundle
/// is still refused), and the NCA's reference is recorded whatever the referral: the report
/// was sent, and its reference must be kept (docs/reporting.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_referral_outlives_a_policy_change_and_never_blocks_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let s = server_with(config.clone()).await;
    let (_, case) = two_photo_case(&s).await;
    s.confirm_case(case).await;
    s.approve_case(case).await;
    let uri = format!("/v1/cases/{case}/reports/nca/bundle");
    let body = bundle_body(&Identity::generate());
    // The default policy (NCMEC) is recorded on the case by its first report step.
    let r = s.admin("POST", &uri, Some(body.clone())).await;
    assert_eq!(r.code(), "referral_excluded", "{}", r.text());

    // The organisation now refers to the NCA: the case already decided on keeps NCMEC.
    let mut nca = config;
    nca.reporting.referral = safeguard_server::config::Referral::Nca;
    let s = server_on(s.store.clone(), nca).await;
    let shown = s
        .admin("GET", &format!("/v1/cases/{case}/referral"), None)
        .await
        .json();
    assert_eq!(
        (shown["to"].clone(), shown["source"].clone()),
        (json!("ncmec"), json!("recorded")),
        "{shown}"
    );
    let r = s.admin("POST", &uri, Some(body)).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::CONFLICT, "referral_excluded"),
        "{}",
        r.text()
    );

    // A reference from the NCA's portal is kept even so.
    record_reference(&s, case, "NCA-2026-000777").await;
}

/// The organisation's own priority rules (`[reporting.nca] priority_rules`) decide the level
/// and the deadline; a broken rules file stops the configuration from loading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_priority_rules_set_the_level_and_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("priority.toml");
    std::fs::write(
        &rules,
        r#"
[deadlines]
level_1_minutes = 15
level_2_minutes = 600
level_3_minutes = 1440

[[rules]]
name = "any child account"
level = 1
any_signals = ["child_account_involved"]
"#,
    )
    .unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.reporting.nca.priority_rules = Some(rules.clone());
    config.validate().unwrap();
    let s = server_with(config.clone()).await;
    let r = s
        .admin(
            "POST",
            "/v1/banks",
            Some(json!({"name": "HOTLINE", "kind": "csam"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    s.admin(
        "POST",
        "/c/bank/HOTLINE/signal",
        Some(json!({"pdq": BRIDGE_PDQ})),
    )
    .await;
    let r = s
        .admin(
            "POST",
            "/v1/content",
            Some(json!({"id": "p1", "kind": "image", "account": "kid", "account_age": "child", "signals": {"pdq": BRIDGE_PDQ}})),
        )
        .await;
    let body = r.json();
    let case = body["case_id"].as_i64().unwrap();
    // Level 1 is surfaced as the item is recorded: the case goes in at urgent priority (the
    // top of its queue, above the CSAM rule's `high`) and `case.nca_level_1` is written with it.
    assert_eq!(body["nca_priority"]["level"], 1, "{body}");
    assert_eq!(body["nca_priority"]["rule"], "any child account");
    assert_eq!(body["priority"], "urgent", "{body}");
    let c = s.store.case(case).unwrap().unwrap();
    assert_eq!(
        safeguard_engine::action::priority_name(c.priority),
        "urgent"
    );
    let level_1 = |s: &TestServer| -> Vec<serde_json::Value> {
        s.store
            .events_since(0, 1_000)
            .unwrap()
            .into_iter()
            .filter(|e| e.event_type == "case.nca_level_1")
            .map(|e| serde_json::from_str::<serde_json::Value>(&e.body).unwrap()["data"].clone())
            .collect()
    };
    let events = level_1(&s);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["case_id"], case);
    assert_eq!(events[0]["account"], "kid");
    assert_eq!(events[0]["assessment"]["deadline_ms"], 15 * 60 * 1000);
    // A second level-1 item joins the same case: the case is already urgent, so no second
    // event.
    let r = s
        .admin(
            "POST",
            "/v1/content",
            Some(json!({"id": "p1b", "kind": "image", "account": "kid", "account_age": "child", "signals": {"pdq": BRIDGE_PDQ}})),
        )
        .await;
    assert_eq!(r.json()["case_id"], case, "{}", r.text());
    assert_eq!(r.json()["nca_priority"]["level"], 1);
    assert_eq!(level_1(&s).len(), 1, "once per case");
    // An adult's item matching the same bank is level 3: the CSAM rule's priority, no event.
    let r = s
        .admin(
            "POST",
            "/v1/content",
            Some(json!({"id": "p2", "kind": "image", "account": "adult", "account_age": "adult", "signals": {"pdq": BRIDGE_PDQ}})),
        )
        .await;
    let body = r.json();
    assert_eq!(body["priority"], "high", "{body}");
    assert!(body.get("nca_priority").is_none(), "{body}");
    assert_eq!(level_1(&s).len(), 1);
    let p = s
        .admin(
            "GET",
            &format!("/v1/cases/{case}/reports/nca/priority"),
            None,
        )
        .await
        .json();
    assert_eq!(p["level"], 1, "{p}");
    assert_eq!(p["rule"], "any child account");
    let opened = s.store.case(case).unwrap().unwrap().opened_at;
    assert_eq!(p["due_at_ms"], opened + 15 * 60 * 1000);
    // A rules file that does not parse is refused when the configuration is checked.
    std::fs::write(&rules, "[[rules]]\nname = \"x\"\nlevel = 7\n").unwrap();
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("priority_rules"), "{err}");
}
