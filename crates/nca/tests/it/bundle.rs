use std::io::Read;

use safeguard_nca::age::x25519::Identity;
use safeguard_nca::ed25519_dalek::SigningKey;
use safeguard_nca::{open_bundle, seal_bundle, ContentFile, Error};

use crate::common::{files, report, T0};

fn keys() -> (SigningKey, Identity) {
    (SigningKey::from_bytes(&[7u8; 32]), Identity::generate())
}

fn sealed(key: &SigningKey, to: &Identity) -> Vec<u8> {
    seal_bundle(&report(), &files(), key, &to.to_public(), T0).expect("seals")
}

#[test]
fn round_trip() {
    let (key, id) = keys();
    let bytes = sealed(&key, &id);
    let opened = open_bundle(&bytes, &id, &key.verifying_key()).expect("opens");
    assert_eq!(opened.report, report());
    assert_eq!(opened.files, files());
    assert_eq!(opened.created_at_ms, T0);
    assert!(
        opened.summary.contains("Name: Alex Example"),
        "{}",
        opened.summary
    );
    assert!(opened.summary.contains("Upload IP: 198.51.100.7:40000"));
    assert!(opened.summary.contains("Uploaded: 2026-05-01T11:59:00Z"));
}

#[test]
fn plaintext_is_a_plain_tar_with_the_documented_members() {
    let (key, id) = keys();
    let bytes = sealed(&key, &id);
    let plain = safeguard_nca::age::decrypt(&id, &bytes).expect("decrypts with stock age");
    let mut archive = tar::Archive::new(&plain[..]);
    let mut names = Vec::new();
    for entry in archive.entries().expect("tar") {
        let mut entry = entry.expect("entry");
        names.push(String::from_utf8(entry.path_bytes().into_owned()).expect("utf-8"));
        let mut sink = Vec::new();
        entry.read_to_end(&mut sink).expect("reads");
    }
    assert_eq!(
        names,
        [
            "manifest.json",
            "manifest.sig",
            "report.json",
            "summary.txt",
            "content/item-1.png"
        ]
    );
}

#[test]
fn wrong_identity_fails_to_decrypt() {
    let (key, id) = keys();
    let bytes = sealed(&key, &id);
    let other = Identity::generate();
    let err = open_bundle(&bytes, &other, &key.verifying_key()).expect_err("must fail");
    assert!(matches!(err, Error::Crypto(_)), "{err:?}");
}

#[test]
fn a_modified_encrypted_byte_fails() {
    let (key, id) = keys();
    let mut bytes = sealed(&key, &id);
    let last = bytes.len() - 20; // inside the encrypted payload, past the header
    bytes[last] ^= 0x01;
    let err = open_bundle(&bytes, &id, &key.verifying_key()).expect_err("must fail");
    assert!(matches!(err, Error::Crypto(_)), "{err:?}");
    assert!(err.to_string().contains("intact"), "{err}");
}

/// Decrypts, changes the plaintext, and encrypts again to the same recipient: what someone
/// holding the recipient's key could do. The signature must catch it.
fn tamper(bytes: &[u8], id: &Identity, change: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut plain = safeguard_nca::age::decrypt(id, bytes).expect("decrypts");
    change(&mut plain);
    safeguard_nca::age::encrypt(&id.to_public(), &plain).expect("encrypts")
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("present")
}

#[test]
fn a_modified_content_byte_fails_verification() {
    let (key, id) = keys();
    let png = crate::common::png();
    let bytes = tamper(&sealed(&key, &id), &id, |plain| {
        let at = find(plain, &png) + png.len() / 2;
        plain[at] ^= 0x01;
    });
    let err = open_bundle(&bytes, &id, &key.verifying_key()).expect_err("must fail");
    match err {
        Error::Corrupt(m) => assert!(m.contains("content/item-1.png"), "{m}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_modified_report_byte_fails_verification() {
    let (key, id) = keys();
    let bytes = tamper(&sealed(&key, &id), &id, |plain| {
        let at = find(plain, b"Alex Example");
        plain[at] = b'B';
    });
    let err = open_bundle(&bytes, &id, &key.verifying_key()).expect_err("must fail");
    // The manifest holds only paths, sizes and hashes, so the first "Alex Example" is in
    // report.json, whose hash no longer matches the signed one.
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
}

#[test]
fn a_modified_manifest_byte_fails_the_signature() {
    let (key, id) = keys();
    let bytes = tamper(&sealed(&key, &id), &id, |plain| {
        let at = find(plain, b"safeguard-nca-bundle/1");
        plain[at] = b'S';
    });
    let err = open_bundle(&bytes, &id, &key.verifying_key()).expect_err("must fail");
    assert!(matches!(err, Error::BadSignature), "{err:?}");
}

#[test]
fn wrong_signing_key_fails() {
    let (key, id) = keys();
    let bytes = sealed(&key, &id);
    let other = SigningKey::from_bytes(&[9u8; 32]);
    let err = open_bundle(&bytes, &id, &other.verifying_key()).expect_err("must fail");
    assert!(matches!(err, Error::BadSignature), "{err:?}");
    assert!(err.to_string().contains("another key"), "{err}");
}

#[test]
fn files_must_match_the_report() {
    let (key, id) = keys();
    let mut extra = files();
    extra.push(ContentFile {
        name: "stray.png".into(),
        bytes: vec![1, 2, 3],
    });
    let err = seal_bundle(&report(), &extra, &key, &id.to_public(), T0).expect_err("refused");
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    let err = seal_bundle(&report(), &[], &key, &id.to_public(), T0).expect_err("refused");
    match err {
        Error::Invalid { field, .. } => assert_eq!(field, "content[0].file_name"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_invalid_report_is_not_sealed() {
    let (key, id) = keys();
    let mut r = report();
    r.declaration.all_reasonably_available_information_included = false;
    let err = seal_bundle(&r, &files(), &key, &id.to_public(), T0).expect_err("refused");
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
}
