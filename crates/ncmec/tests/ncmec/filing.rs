//! Whole filings against the test server: a report with two files, a text-only report, the
//! XML of each checked for element order, and a finished filing run again.

use safeguard_ncmec::model::{
    Contact, IncidentType, InternetDetail, Person, Report, ReportAnnotations, UserDetails, Victim,
};
use safeguard_ncmec::testserver::{sample_filing, TestServer};
use safeguard_ncmec::{Approval, Filing, Phase};

use crate::common::{assert_one_finished, assert_xsd_order, file_journal, filer, now};

#[tokio::test]
async fn files_a_report_with_two_files() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = file_journal(&dir);
    let filer = filer(&server, journal.clone());
    let filing = sample_filing("two-files", now());
    let filed = filer.run(&filing).await.unwrap();

    let on_server = assert_one_finished(&server, &["image-1.png", "context.txt"]);
    assert_eq!(filed.report_id, on_server.report_id);
    let server_ids: Vec<&str> = on_server.files.iter().map(|f| f.file_id.as_str()).collect();
    assert_eq!(filed.file_ids, server_ids);
    for (f, s) in filing.files.iter().zip(&on_server.files) {
        assert_eq!(safeguard_ncmec::client::md5_hex(&f.content), s.md5);
    }
    // What was sent is what the server got, and both are in XSD order.
    assert_eq!(filed.report_xml, on_server.xml);
    assert!(assert_xsd_order(&filed.report_xml) >= 6);
    // The sample's thirdPartyHostedContent is the XSD's attribute, not a child element.
    assert!(filed
        .report_xml
        .contains("<webPageIncident thirdPartyHostedContent=\"false\">"));
    assert!(!filed.report_xml.contains("<thirdPartyHostedContent"));
    assert_eq!(filed.file_details_xml.len(), 2);
    for xml in &filed.file_details_xml {
        assert!(assert_xsd_order(xml) >= 1);
    }
    assert!(filed
        .report_xml
        .contains("Upload time &lt;as recorded&gt; &amp; confirmed"));
    // The transcript: one exchange per call, each with NCMEC's Request-ID and its answer.
    let endpoints: Vec<&str> = filed
        .transcript
        .iter()
        .map(|e| e.endpoint.as_str())
        .collect();
    assert_eq!(
        endpoints,
        [
            "/submit",
            "/upload",
            "/fileinfo",
            "/upload",
            "/fileinfo",
            "/finish"
        ]
    );
    for e in &filed.transcript {
        assert!(
            e.request_id.as_deref().unwrap_or("").starts_with("req-"),
            "{e:?}"
        );
        assert!(
            e.response.contains("<responseCode>0</responseCode>"),
            "{e:?}"
        );
    }
    assert!(filed.transcript[5].response.contains("reportDoneResponse"));
    assert!(filed.abandoned.is_empty());

    // Running a finished filing again answers from the journal and sends nothing.
    let requests = server.log().len();
    let again = filer.run(&filing).await.unwrap();
    assert_eq!(again, filed);
    assert_eq!(server.log().len(), requests);
    let state = filer.state("two-files").unwrap().unwrap();
    assert_eq!(state.phase, Phase::Finished);
    // The journal file is the documented JSON shape.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("two-files.json")).unwrap()).unwrap();
    assert_eq!(json["phase"], "finished");
    assert_eq!(json["version"], 1);
    assert_eq!(json["current"]["report_id"], filed.report_id.as_str());
}

/// Online enticement: no files, the conversation described in a chat incident, the child as
/// intended recipient and victim.
#[tokio::test]
async fn files_a_text_only_report() {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let filer = filer(&server, file_journal(&dir));
    let t = now();
    let mut report = Report::new(
        IncidentType::OnlineEnticement,
        t.plus_seconds(-7200),
        Person {
            first_name: Some("Test".into()),
            last_name: Some("Reporter".into()),
            emails: vec![Contact::new("reporter@example.com")],
            ..Person::default()
        },
    );
    report.incident_summary.report_annotations = ReportAnnotations {
        sextortion: true,
        minor_to_minor_interaction: false,
        ..ReportAnnotations::default()
    };
    report.incident_summary.escalate_to_high_priority = Some("Test escalation text.".into());
    report.internet_details = vec![InternetDetail::ChatIm {
        chat_client: Some("Example Chat".into()),
        chat_room_name: None,
        content: Some("Synthetic placeholder conversation.".into()),
        additional_info: Some("Direct messages".into()),
    }];
    report.person_or_user_reported = Some(UserDetails {
        esp_identifier: Some("user-1".into()),
        screen_name: Some("test_sender".into()),
        ..UserDetails::default()
    });
    report.intended_recipients = vec![UserDetails {
        esp_identifier: Some("user-2".into()),
        ..UserDetails::default()
    }];
    report.victims = vec![Victim {
        person: Person {
            first_name: Some("Test".into()),
            age: Some(13),
            ..Person::default()
        },
        esp_identifier: Some("user-2".into()),
        ..Victim::default()
    }];
    let filing = Filing {
        id: "text-only".into(),
        report,
        files: Vec::new(),
        approval: Some(Approval::new("Test Moderator", "Test Lead").unwrap()),
    };
    let filed = filer.run(&filing).await.unwrap();
    let on_server = assert_one_finished(&server, &[]);
    assert_eq!(on_server.report_id, filed.report_id);
    assert!(filed.file_ids.is_empty());
    assert!(assert_xsd_order(&filed.report_xml) >= 5);
    for needle in [
        "<sextortion/>",
        "<chatImIncident>",
        "<intendedRecipient>",
        "<victimPerson>",
        "Online Enticement of Children for Sexual Acts",
    ] {
        assert!(filed.report_xml.contains(needle), "{needle}");
    }
    let endpoints: Vec<&str> = filed
        .transcript
        .iter()
        .map(|e| e.endpoint.as_str())
        .collect();
    assert_eq!(endpoints, ["/submit", "/finish"]);
}

/// The server's own order check refuses what the model would never write: an element out of
/// order answers 4100, broken XML 4110.
#[tokio::test]
async fn server_refuses_out_of_order_and_malformed_reports() {
    let server = TestServer::start().await.unwrap();
    let client = crate::common::client(&server);
    let status = client.status().await.unwrap();
    assert_eq!(status.response.response_code, 0);
    assert!(status.request_id.is_some());
    let good = sample_filing("x", now()).report.to_xml(now()).unwrap();
    assert!(client.submit(&good).await.is_ok());
    // Move <reporter> before <incidentSummary>.
    let start = good.find("<reporter>").unwrap();
    let end = good.find("</reporter>").unwrap() + "</reporter>".len();
    let reporter = &good[start..end];
    let swapped = good.replacen(reporter, "", 1).replacen(
        "<incidentSummary>",
        &format!("{reporter}<incidentSummary>"),
        1,
    );
    let err = client.submit(&swapped).await.unwrap_err();
    assert_eq!(err.code_class(), Some(safeguard_ncmec::CodeClass::Invalid));
    assert!(err.to_string().contains("4100"), "{err}");
    // The shapes the model wrote before it was compared with the XSD are refused too.
    for bad in [
        good.replacen(
            "<report>",
            "<report><batchedReport reason=\"test\">true</batchedReport>",
            1,
        ),
        good.replacen(
            "<legalURL>",
            "<contactPerson><firstName>C</firstName><age>30</age></contactPerson><legalURL>",
            1,
        ),
    ] {
        let err = client.submit(&bad).await.unwrap_err();
        assert!(err.to_string().contains("4100"), "{err}");
    }
    let err = client
        .submit("<report><incidentSummary>")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("4110"), "{err}");
    assert!(!err.is_retryable());
}

/// The server spawns filings on its runtime: the filer and its futures must be `Send`.
#[test]
fn the_filer_and_its_futures_are_send() {
    fn send<T: Send + Sync>(_: &T) {}
    fn send_future<T: std::future::Future + Send>(_: T) {}
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = TestServer::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let filer = filer(&server, file_journal(&dir));
        send(&filer);
        let filing = sample_filing("send", now());
        send_future(filer.run(&filing));
        send_future(filer.retract("send"));
    });
}

/// Every element the model knows, set at once: the XML passes the independent order check
/// here and the server's own, for the report and for the file details.
#[tokio::test]
async fn a_report_with_every_element_is_in_order() {
    use safeguard_ncmec::model::{
        Address, AssociatedAccount, AssociatedAccountType, BatchedReportReason, ContactPerson,
        Details, DeviceId, EstimatedLocation, EventName, FileAnnotations, FileDetails, FileHash,
        FileRelevance, IndustryClassification, IpCaptureEvent, LawEnforcement,
    };
    let t = now();
    let person = |first: &str| Person {
        first_name: Some(first.into()),
        last_name: Some("Example".into()),
        phones: vec![Contact {
            value: "+1-555-0100".into(),
            kind: Some("Mobile".into()),
            verified: Some(true),
            verification_date: Some(t.plus_seconds(-86_400)),
        }],
        emails: vec![Contact::new(format!(
            "{}@example.com",
            first.to_lowercase()
        ))],
        addresses: vec![Address {
            kind: Some("Home".into()),
            street: Some("1 Example Street".into()),
            city: Some("Example City".into()),
            zip_code: Some("00000".into()),
            state: Some("VA".into()),
            non_usa_state: None,
            country: Some("US".into()),
        }],
        age: Some(30),
        date_of_birth: Some("1996-01-01".into()),
    };
    // The XSD's contactPerson: the person's sequence without age and date of birth.
    let contact = |first: &str| {
        let p = person(first);
        ContactPerson {
            first_name: p.first_name,
            last_name: p.last_name,
            phones: p.phones,
            emails: p.emails,
            addresses: p.addresses,
        }
    };
    let ip = IpCaptureEvent {
        ip_address: "2001:db8::1".into(),
        event_name: Some(EventName::Login),
        date_time: Some(t.plus_seconds(-600)),
        possible_proxy: Some(true),
        port: Some(50_000),
    };
    let device = DeviceId {
        id_type: "Advertising ID".into(),
        id_value: "00000000-0000-0000-0000-000000000000".into(),
        event_name: Some(EventName::Registration),
        date_time: Some(t.plus_seconds(-900)),
    };
    let user = |id: &str| UserDetails {
        person: Some(person("Reported")),
        vehicle_description: Some("n/a".into()),
        esp_identifier: Some(id.into()),
        esp_service: Some("Example Chat".into()),
        compromised_account: Some(false),
        screen_name: Some("screen".into()),
        display_names: vec!["One".into(), "Two".into()],
        profile_urls: vec!["https://example.com/u/1".into()],
        profile_bio: Some("bio".into()),
        ip_capture_events: vec![ip.clone()],
        device_ids: vec![device.clone()],
        third_party_user_reported: Some(false),
        prior_ct_reports: vec!["123456".into()],
        group_identifier: Some("group-1".into()),
        account_temporarily_disabled: Some(true),
        account_permanently_disabled: Some(false),
        estimated_location: Some(EstimatedLocation {
            city: Some("Example City".into()),
            region: Some("VA".into()),
            country_code: Some("US".into()),
        }),
        all_emails_reported: Some(true),
        associated_accounts: vec![AssociatedAccount {
            platform: Some("Example Pay".into()),
            first_name: Some("Reported".into()),
            last_name: Some("Example".into()),
            phones: vec![Contact::new("+1-555-0101")],
            emails: vec![Contact::new("billing@example.com")],
            esp_service: Some("Example Pay".into()),
            esp_identifier: Some("user-9".into()),
            profile_urls: vec!["https://example.com/u/9".into()],
            screen_name: Some("payer".into()),
            display_names: vec!["Payer".into()],
            additional_info: Some("info".into()),
            ..AssociatedAccount::new(AssociatedAccountType::ParentGuardian)
        }],
        additional_info: Some("info".into()),
    };
    // The intended recipient's sequence has no vehicleDescription, thirdPartyUserReported or
    // associatedAccount.
    let recipient = |id: &str| UserDetails {
        vehicle_description: None,
        third_party_user_reported: None,
        associated_accounts: Vec::new(),
        ..user(id)
    };
    let mut report = Report::new(
        IncidentType::ChildSexTrafficking,
        t.plus_seconds(-60),
        person("Test"),
    );
    report.batched_report_reason = Some(BatchedReportReason::ViralPotentialMeme);
    report.incident_summary.platform = Some("Example Chat".into());
    report.incident_summary.escalate_to_high_priority = Some("Test.".into());
    report.incident_summary.report_annotations = ReportAnnotations {
        sextortion: true,
        csam_solicitation: true,
        minor_to_minor_interaction: true,
        spam: true,
        sadistic_online_exploitation: true,
    };
    report.incident_summary.incident_date_time_description = Some("first seen".into());
    report.internet_details = vec![
        InternetDetail::WebPage {
            urls: vec!["https://example.com/a".into()],
            additional_info: Some("x".into()),
            third_party_hosted_content: Some(true),
        },
        InternetDetail::ChatIm {
            chat_client: Some("c".into()),
            chat_room_name: Some("r".into()),
            content: Some("placeholder".into()),
            additional_info: Some("x".into()),
        },
    ];
    report.law_enforcement = Some(LawEnforcement {
        agency_name: "Example Police".into(),
        case_number: Some("case-1".into()),
        officer_contact: Some(contact("Officer")),
        reported_to_le: Some(true),
        served_legal_process_domestic: Some(false),
        served_legal_process_international: Some(false),
    });
    report.reporter.contact_person = Some(contact("Contact"));
    report.reporter.company_template = Some("template".into());
    report.reporter.terms_of_service = Some("https://example.com/terms".into());
    report.reporter.legal_url = Some("https://example.com/legal".into());
    report.person_or_user_reported = Some(user("user-1"));
    report.intended_recipients = vec![recipient("user-2")];
    report.victims = vec![Victim {
        person: person("Child"),
        esp_identifier: Some("user-2".into()),
        esp_service: Some("Example Chat".into()),
        screen_name: Some("s".into()),
        display_names: vec!["d".into()],
        profile_urls: vec!["https://example.com/u/2".into()],
        additional_info: Some("x".into()),
    }];
    report.additional_info = Some("end".into());
    let xml = report.to_xml(t).unwrap();
    assert!(assert_xsd_order(&xml) >= 20, "{xml}");
    // The attributes the XSD puts where elements would not validate.
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let find = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name(name))
            .unwrap_or_else(|| panic!("no <{name}>: {xml}"))
    };
    assert_eq!(
        find("webPageIncident").attribute("thirdPartyHostedContent"),
        Some("true")
    );
    assert!(!xml.contains("<thirdPartyHostedContent"), "{xml}");
    let batched = find("batchedReport");
    assert_eq!(batched.attribute("reason"), Some("VIRAL_POTENTIAL_MEME"));
    assert!(!batched.has_children(), "{xml}");
    let associated = find("associatedAccount");
    assert_eq!(associated.attribute("type"), Some("Parent/Guardian"));
    assert_eq!(
        associated.parent().unwrap().tag_name().name(),
        "personOrUserReported"
    );

    let server = TestServer::start().await.unwrap();
    let client = crate::common::client(&server);
    let report_id = client
        .submit(&xml)
        .await
        .unwrap()
        .response
        .report_id
        .unwrap();
    let upload = client.upload(&report_id, "f.txt", b"benign").await.unwrap();
    let file_id = upload.response.file_id.unwrap();
    let details = FileDetails {
        file_name: Some("f.txt".into()),
        original_file_name: Some("orig.txt".into()),
        uploaded_to_esp_timestamp: Some(t.plus_seconds(-60)),
        location_of_file: Some("https://example.com/f".into()),
        file_viewed_by_esp: Some(true),
        exif_viewed_by_esp: Some(false),
        publicly_available: Some(false),
        file_relevance: Some(FileRelevance::Reported),
        file_annotations: FileAnnotations {
            anime_drawing_virtual_hentai: true,
            potential_meme: true,
            viral: true,
            possible_self_production: true,
            physical_harm: true,
            violence_gore: true,
            bestiality: true,
            live_streaming: true,
            infant: true,
            generative_ai: true,
        },
        industry_classification: Some(IndustryClassification::A2),
        original_file_hashes: vec![FileHash {
            hash_type: "MD5".into(),
            value: "0".repeat(32),
        }],
        ip_capture_event: Some(ip),
        device_ids: vec![device],
        details: vec![Details {
            kind: Some("EXIF".into()),
            pairs: vec![("Make".into(), "Example".into())],
        }],
        additional_info: vec!["a".into(), "b".into()],
    };
    let details_xml = details.to_xml(&report_id, &file_id, "f.txt").unwrap();
    assert!(assert_xsd_order(&details_xml) >= 3, "{details_xml}");
    client.file_info(&details_xml).await.unwrap();
    client.finish(&report_id).await.unwrap();
    assert_eq!(server.finished().len(), 1);
}
