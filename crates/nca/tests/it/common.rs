//! A benign sample report and content file shared by the tests: fake names, example.com
//! addresses, and a generated 1×1 PNG as the "content".

use base64::Engine as _;
use safeguard_nca::report::{
    AuthorisedPerson, ContentHash, ContentItem, Declaration, DetectionMethod, HashKind, User,
};
use safeguard_nca::{ContentFile, Report};
use sha2::{Digest, Sha256};

/// 2026-05-01T12:00:00Z.
pub const T0: i64 = 1_777_636_800_000;

/// A 1×1 transparent PNG.
const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

pub fn png() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(PNG_BASE64)
        .expect("constant base64")
}

pub fn files() -> Vec<ContentFile> {
    vec![ContentFile {
        name: "item-1.png".into(),
        bytes: png(),
    }]
}

pub fn report() -> Report {
    Report {
        provider_reference: Some("case-0001".into()),
        authorised_person: AuthorisedPerson {
            name: "Alex Example".into(),
            email: Some("alex@example.com".into()),
            telephone: None,
        },
        priority: None,
        content: vec![ContentItem {
            file_name: Some("item-1.png".into()),
            reference: None,
            detection: DetectionMethod::UserReport,
            platform: Some("Example Photos".into()),
            uploaded_at_ms: Some(T0 - 60_000),
            upload_ip: Some("198.51.100.7".parse().expect("literal")),
            upload_port: Some(40000),
            exif: None,
            url: None,
            hashes: vec![ContentHash {
                kind: HashKind::Sha256,
                value: hex::encode(Sha256::digest(png())),
            }],
            previously_reported: None,
        }],
        information_available: Some("Reported by another user; confirmed by a moderator.".into()),
        users: vec![User {
            emails: vec!["user@example.com".into()],
            ..User::default()
        }],
        identity_documents: None,
        other_information: None,
        declaration: Declaration {
            all_reasonably_available_information_included: true,
            declared_by: "Alex Example".into(),
            declared_at_ms: T0,
        },
    }
}
