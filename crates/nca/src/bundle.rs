//! Export bundles: one file holding a report, a summary for people and the content files,
//! signed by the organisation and encrypted to the person who will upload it to the NCA's
//! portal (reg 6(2)).
//!
//! # Format (version 1)
//!
//! The file is an [age](https://age-encryption.org/v1) file, encrypted to one X25519
//! recipient (`age1...`). Its plaintext is a POSIX ustar archive with these members, in this
//! order:
//!
//! | member | content |
//! |---|---|
//! | `manifest.json` | `{"format": "safeguard-nca-bundle/1", "created_at_ms", "signing_key" (hex Ed25519 public key), "members": [{"path", "size", "sha256"}...]}`, listing every member below |
//! | `manifest.sig` | the Ed25519 signature, 128 hex digits, over [`SIGNATURE_DOMAIN`] followed by the exact bytes of `manifest.json` |
//! | `report.json` | the [`Report`] as JSON |
//! | `summary.txt` | the report as plain text, for the person filling in the portal's form |
//! | `content/<file name>` | each content file, named as the report's `content[].file_name` |
//!
//! Members are regular files, mode 0600, owner 0, modification time the bundle's creation
//! time, so the same inputs give the same archive.
//!
//! Why this shape: the person who uploads to the portal needs the files as files. With the
//! stock tools, `age -d -i key.txt bundle.age | tar x` gives them the summary and the content
//! without this program; this program's [`open_bundle`] additionally checks the signature and
//! every hash before anything is trusted. age was chosen over a passphrase and argon2 because
//! a recipient's public key can be configured once without sharing a secret, and over our own
//! X25519 construction because age is a published, reviewed format with interoperable tools.
//! The signature is over the manifest (which holds every member's SHA-256), not over the
//! ciphertext, so it still proves the organisation's authorship after decryption, when the
//! files are handled in the clear. The domain prefix keeps a signature made for a bundle from
//! being valid for anything else the same key signs.

use std::collections::BTreeMap;
use std::io::Read;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::report::Report;
use crate::timefmt::iso8601;
use crate::{Error, UnixMs};

/// The manifest's format name; a bundle with another is refused.
pub const FORMAT: &str = "safeguard-nca-bundle/1";
/// Bytes signed before the manifest (domain separation).
pub const SIGNATURE_DOMAIN: &[u8] = b"safeguard-nca bundle manifest v1\0";
/// Largest bundle opened or made, bytes: 1 GiB. A bundle is built and opened in memory;
/// a case with more content than this is split over several reports.
pub const BUNDLE_MAX: usize = 1 << 30;
/// Most content files in one bundle (one per content item at most).
pub const FILES_MAX: usize = crate::report::CONTENT_ITEMS_MAX;
/// Longest content file name, bytes. With the `content/` prefix the path still fits the
/// ustar header's fields.
pub const FILE_NAME_MAX: usize = 96;
/// Largest `manifest.json`, `manifest.sig`, `report.json` or `summary.txt` read, bytes: 16 MiB,
/// far above what a report's validation limits let it reach in practice.
pub const METADATA_MAX: u64 = 16 << 20;

const MANIFEST: &str = "manifest.json";
const SIGNATURE: &str = "manifest.sig";
const REPORT: &str = "report.json";
const SUMMARY: &str = "summary.txt";
const CONTENT_DIR: &str = "content/";

/// One content file to send with a report.
#[derive(Clone, PartialEq, Eq)]
pub struct ContentFile {
    /// Its name: as the report's `content[].file_name`; letters, digits, `.`, `_` and `-`,
    /// not starting with `.`, at most [`FILE_NAME_MAX`] bytes.
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for ContentFile {
    // The bytes are the content itself: never printed, not even in a panic message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentFile")
            .field("name", &self.name)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// What an opened bundle holds, after every check passed.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleContents {
    /// The report (validated).
    pub report: Report,
    /// The human-readable summary.
    pub summary: String,
    /// The content files, in the manifest's order.
    pub files: Vec<ContentFile>,
    /// When the bundle was made, Unix ms.
    pub created_at_ms: UnixMs,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: String,
    created_at_ms: UnixMs,
    signing_key: String,
    members: Vec<Member>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Member {
    path: String,
    size: u64,
    sha256: String,
}

/// Checks a content file name (also used by the report's validation).
pub(crate) fn check_file_name(field: &str, name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= FILE_NAME_MAX
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        return Err(Error::invalid(
            field,
            format!(
                "a file name is 1 to {FILE_NAME_MAX} letters, digits, '.', '_' or '-', \
                 not starting with '.'"
            ),
        ));
    }
    Ok(())
}

/// Builds, signs and encrypts a bundle.
///
/// The report must validate, and the files must be exactly those its content items name
/// (`content[].file_name`): a file nobody described, or a described file missing, is refused
/// here rather than discovered by the NCA.
pub fn seal_bundle(
    report: &Report,
    files: &[ContentFile],
    signing_key: &SigningKey,
    recipient: &age::x25519::Recipient,
    created_at_ms: UnixMs,
) -> Result<Vec<u8>, Error> {
    report.validate()?;
    crate::report::timestamp("created_at_ms", created_at_ms)?;
    check_files_match_report(report, files)?;

    let report_json = report.to_json()?;
    let summary = summary(report, files, created_at_ms).into_bytes();
    let mut members: Vec<(String, &[u8])> = vec![
        (REPORT.to_string(), report_json.as_slice()),
        (SUMMARY.to_string(), summary.as_slice()),
    ];
    for f in files {
        members.push((format!("{CONTENT_DIR}{}", f.name), f.bytes.as_slice()));
    }
    let manifest = Manifest {
        format: FORMAT.to_string(),
        created_at_ms,
        signing_key: hex::encode(signing_key.verifying_key().as_bytes()),
        members: members
            .iter()
            .map(|(path, bytes)| Member {
                path: path.clone(),
                size: bytes.len() as u64,
                sha256: hex::encode(Sha256::digest(bytes)),
            })
            .collect(),
    };
    let manifest_json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
    let signature = signing_key.sign(&signed_bytes(&manifest_json));
    let signature_hex = hex::encode(signature.to_bytes()).into_bytes();

    let mut archive = tar::Builder::new(Vec::new());
    let mtime = u64::try_from(created_at_ms / 1000).unwrap_or(0);
    let head: [(&str, &[u8]); 2] = [
        (MANIFEST, manifest_json.as_slice()),
        (SIGNATURE, signature_hex.as_slice()),
    ];
    for (path, bytes) in head
        .into_iter()
        .chain(members.iter().map(|(p, b)| (p.as_str(), *b)))
    {
        let mut header = tar::Header::new_ustar();
        header
            .set_path(path)
            .map_err(|e| Error::Internal(format!("tar path {path}: {e}")))?;
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        archive
            .append(&header, bytes)
            .map_err(|e| Error::Internal(format!("tar: {e}")))?;
    }
    let plaintext = archive
        .into_inner()
        .map_err(|e| Error::Internal(format!("tar: {e}")))?;
    if plaintext.len() > BUNDLE_MAX {
        return Err(Error::invalid(
            "files",
            format!(
                "the bundle would exceed {BUNDLE_MAX} bytes; split the case over several reports"
            ),
        ));
    }
    age::encrypt(recipient, &plaintext).map_err(|e| Error::Crypto(e.to_string()))
}

/// Decrypts a bundle, checks its signature and every member's hash, and returns what it
/// holds.
///
/// Errors: [`Error::Crypto`] when it does not decrypt with `identity` (encrypted to someone
/// else, or the encrypted file was altered: age authenticates every chunk);
/// [`Error::BadSignature`] when the manifest's signature does not verify under
/// `verifying_key`; [`Error::Corrupt`] when a member is missing, extra, or does not match the
/// signed manifest.
pub fn open_bundle(
    bytes: &[u8],
    identity: &age::x25519::Identity,
    verifying_key: &VerifyingKey,
) -> Result<BundleContents, Error> {
    if bytes.len() > BUNDLE_MAX {
        return Err(Error::Corrupt(format!("larger than {BUNDLE_MAX} bytes")));
    }
    let plaintext = age::decrypt(identity, bytes).map_err(|e| {
        Error::Crypto(format!(
            "{e} (was it encrypted to this identity, and is the file intact?)"
        ))
    })?;
    let members = read_archive(&plaintext)?;

    let manifest_json = members
        .get(MANIFEST)
        .ok_or_else(|| Error::Corrupt(format!("no {MANIFEST}")))?;
    let signature_hex = members
        .get(SIGNATURE)
        .ok_or_else(|| Error::Corrupt(format!("no {SIGNATURE}")))?;
    let signature_bytes: [u8; 64] = std::str::from_utf8(signature_hex)
        .ok()
        .and_then(|s| hex::decode(s.trim()).ok())
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| Error::Corrupt(format!("{SIGNATURE} is not 128 hex digits")))?;
    // Verify before reading anything the manifest says.
    verifying_key
        .verify(
            &signed_bytes(manifest_json),
            &Signature::from_bytes(&signature_bytes),
        )
        .map_err(|_| Error::BadSignature)?;

    let manifest: Manifest = serde_json::from_slice(manifest_json)
        .map_err(|e| Error::Corrupt(format!("{MANIFEST}: {e}")))?;
    if manifest.format != FORMAT {
        return Err(Error::Corrupt(format!(
            "format {:?}, expected {FORMAT:?}",
            manifest.format
        )));
    }
    // The archive holds exactly the manifest, its signature and the members it lists.
    if members.len() != manifest.members.len() + 2 {
        return Err(Error::Corrupt(
            "the archive's members are not those the manifest lists".into(),
        ));
    }
    for m in &manifest.members {
        let data = members
            .get(m.path.as_str())
            .ok_or_else(|| Error::Corrupt(format!("{} is listed but missing", m.path)))?;
        if data.len() as u64 != m.size || hex::encode(Sha256::digest(data)) != m.sha256 {
            return Err(Error::Corrupt(format!(
                "{} does not match the signed manifest",
                m.path
            )));
        }
    }

    let report_json = members
        .get(REPORT)
        .ok_or_else(|| Error::Corrupt(format!("no {REPORT}")))?;
    let report =
        Report::from_json(report_json).map_err(|e| Error::Corrupt(format!("{REPORT}: {e}")))?;
    let summary = members
        .get(SUMMARY)
        .and_then(|b| String::from_utf8(b.clone()).ok())
        .ok_or_else(|| Error::Corrupt(format!("no UTF-8 {SUMMARY}")))?;
    let files: Vec<ContentFile> = manifest
        .members
        .iter()
        .filter_map(|m| {
            let name = m.path.strip_prefix(CONTENT_DIR)?;
            Some(ContentFile {
                name: name.to_string(),
                bytes: members.get(m.path.as_str()).cloned().unwrap_or_default(),
            })
        })
        .collect();
    check_files_match_report(&report, &files).map_err(|e| Error::Corrupt(e.to_string()))?;
    Ok(BundleContents {
        report,
        summary,
        files,
        created_at_ms: manifest.created_at_ms,
    })
}

fn signed_bytes(manifest: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(SIGNATURE_DOMAIN.len() + manifest.len());
    v.extend_from_slice(SIGNATURE_DOMAIN);
    v.extend_from_slice(manifest);
    v
}

/// Reads every member of the archive into memory, refusing anything but regular files with
/// expected names, duplicates, and more members than a bundle can have.
fn read_archive(plaintext: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let corrupt = |e: std::io::Error| Error::Corrupt(format!("archive: {e}"));
    let mut archive = tar::Archive::new(plaintext);
    let mut members = BTreeMap::new();
    for entry in archive.entries().map_err(corrupt)? {
        let entry = entry.map_err(corrupt)?;
        if members.len() >= FILES_MAX + 4 {
            return Err(Error::Corrupt("too many members".into()));
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(Error::Corrupt("a member is not a regular file".into()));
        }
        let path = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| Error::Corrupt("a member's name is not UTF-8".into()))?;
        let is_metadata = [MANIFEST, SIGNATURE, REPORT, SUMMARY].contains(&path.as_str());
        match path.strip_prefix(CONTENT_DIR) {
            Some(name) => check_file_name("member", name)
                .map_err(|_| Error::Corrupt(format!("unexpected member name {path:?}")))?,
            None if is_metadata => {}
            None => return Err(Error::Corrupt(format!("unexpected member {path:?}"))),
        }
        let size = entry.size();
        if is_metadata && size > METADATA_MAX {
            return Err(Error::Corrupt(format!(
                "{path} is larger than {METADATA_MAX} bytes"
            )));
        }
        // The size comes from the decrypted plaintext we already hold, so it cannot exceed
        // that plaintext's length; read_to_end stops at the entry's end.
        let mut data = Vec::new();
        entry.take(size).read_to_end(&mut data).map_err(corrupt)?;
        if members.insert(path.clone(), data).is_some() {
            return Err(Error::Corrupt(format!("{path} appears twice")));
        }
    }
    Ok(members)
}

pub(crate) fn check_files_match_report(
    report: &Report,
    files: &[ContentFile],
) -> Result<(), Error> {
    if files.len() > FILES_MAX {
        return Err(Error::invalid(
            "files",
            format!("more than {FILES_MAX} files"),
        ));
    }
    let mut names = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        check_file_name(&format!("files[{i}].name"), &f.name)?;
        if names.insert(f.name.as_str(), i).is_some() {
            return Err(Error::invalid(
                format!("files[{i}].name"),
                format!("{:?} is given twice", f.name),
            ));
        }
    }
    let mut described = BTreeMap::new();
    for (i, item) in report.content.iter().enumerate() {
        if let Some(name) = &item.file_name {
            if !names.contains_key(name.as_str()) {
                return Err(Error::invalid(
                    format!("content[{i}].file_name"),
                    format!("no file named {name:?} was given"),
                ));
            }
            described.insert(name.as_str(), i);
        }
    }
    for (i, f) in files.iter().enumerate() {
        if !described.contains_key(f.name.as_str()) {
            return Err(Error::invalid(
                format!("files[{i}].name"),
                format!(
                    "{:?} is not named by any content item of the report",
                    f.name
                ),
            ));
        }
    }
    Ok(())
}

/// The report as plain text, for the person who transcribes it into the portal's form.
pub fn summary(report: &Report, files: &[ContentFile], created_at_ms: UnixMs) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    // Writing to a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(
        s,
        "REPORT TO THE NATIONAL CRIME AGENCY (Online Safety Act 2023 s.66)"
    );
    let _ = writeln!(s, "Bundle made: {}", iso8601(created_at_ms));
    if let Some(r) = &report.provider_reference {
        let _ = writeln!(s, "Provider reference: {r}");
    }
    match report.priority {
        Some(p) => {
            let _ = writeln!(s, "Priority: {p}");
        }
        None => {
            let _ = writeln!(s, "Priority: not assessed");
        }
    }
    let p = &report.authorised_person;
    let _ = writeln!(s, "\n== Authorised person\nName: {}", p.name);
    opt_line(&mut s, "Email", &p.email);
    opt_line(&mut s, "Telephone", &p.telephone);

    for (i, c) in report.content.iter().enumerate() {
        let _ = writeln!(s, "\n== Content item {}", i + 1);
        opt_line(&mut s, "File", &c.file_name);
        if let Some(name) = &c.file_name {
            if let Some(f) = files.iter().find(|f| &f.name == name) {
                let _ = writeln!(
                    s,
                    "File SHA-256: {} ({} bytes)",
                    hex::encode(Sha256::digest(&f.bytes)),
                    f.bytes.len()
                );
            }
        }
        opt_line(&mut s, "Reference", &c.reference);
        let how = match &c.detection {
            crate::report::DetectionMethod::HashMatch { bank, source } => match source {
                Some(src) => format!("hash match, list {bank} (source {src})"),
                None => format!("hash match, list {bank}"),
            },
            crate::report::DetectionMethod::Classifier { name, score } => match score {
                Some(sc) => format!("classifier {name}, score {sc:.3}"),
                None => format!("classifier {name}"),
            },
            crate::report::DetectionMethod::UserReport => "user report".into(),
            crate::report::DetectionMethod::Moderator => "moderator".into(),
            crate::report::DetectionMethod::Other { description } => description.clone(),
        };
        let _ = writeln!(s, "Detected by: {how}");
        opt_line(&mut s, "Platform", &c.platform);
        if let Some(t) = c.uploaded_at_ms {
            let _ = writeln!(s, "Uploaded: {}", iso8601(t));
        }
        if let Some(ip) = c.upload_ip {
            let _ = writeln!(s, "Upload IP: {}", socket_text(ip, c.upload_port));
        }
        if let Some(e) = &c.exif {
            let _ = writeln!(
                s,
                "EXIF: {}{}",
                if e.present { "present" } else { "none" },
                e.summary
                    .as_deref()
                    .map(|x| format!(" ({x})"))
                    .unwrap_or_default()
            );
        }
        opt_line(&mut s, "URL / location", &c.url);
        for h in &c.hashes {
            let _ = writeln!(s, "Hash {:?}: {}", h.kind, h.value);
        }
        if let Some(prev) = &c.previously_reported {
            let _ = writeln!(
                s,
                "Previously reported: {}{}",
                if prev.reported { "yes" } else { "no" },
                prev.reference
                    .as_ref()
                    .map(|r| format!(", reference {r}"))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(t) = &report.information_available {
        let _ = writeln!(s, "\n== Information available to the provider\n{t}");
    }
    for (i, u) in report.users.iter().enumerate() {
        let _ = writeln!(s, "\n== User {}", i + 1);
        if let Some(role) = u.role {
            let _ = writeln!(s, "Role: {role:?}");
        }
        for a in &u.accounts {
            let _ = writeln!(
                s,
                "Account: {}{}",
                a.id,
                a.username
                    .as_deref()
                    .map(|n| format!(" (username {n})"))
                    .unwrap_or_default()
            );
        }
        for e in &u.emails {
            let _ = writeln!(s, "Email: {e}");
        }
        opt_line(&mut s, "Recovery email", &u.recovery_email);
        for ph in &u.phones {
            let v = match ph.verified {
                Some(true) => " (verified)",
                Some(false) => " (not verified)",
                None => "",
            };
            let _ = writeln!(s, "Telephone: {}{v}", ph.number);
        }
        if let Some(b) = &u.billing {
            opt_line(&mut s, "Billing name", &b.name);
            opt_line(&mut s, "Billing address", &b.address);
            opt_line(&mut s, "Payment method", &b.payment_method);
        }
        opt_line(&mut s, "Profile", &u.profile_url);
        for l in &u.login_ips {
            let _ = writeln!(
                s,
                "Login: {} at {}",
                socket_text(l.ip, l.port),
                iso8601(l.at_ms)
            );
        }
        for c in &u.connections {
            let _ = writeln!(
                s,
                "Connected account: {}{}",
                c.account_id,
                c.relationship
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(d) = &report.identity_documents {
        let _ = writeln!(
            s,
            "\n== Identity documents held: {}{}",
            if d.held { "yes" } else { "no" },
            if d.kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", d.kinds.join(", "))
            }
        );
    }
    if let Some(t) = &report.other_information {
        let _ = writeln!(s, "\n== Other information\n{t}");
    }
    let d = &report.declaration;
    let _ = writeln!(
        s,
        "\n== Declaration\nAll reasonably available information is included: {}\nDeclared by {} at {}",
        if d.all_reasonably_available_information_included { "yes" } else { "no" },
        d.declared_by,
        iso8601(d.declared_at_ms)
    );
    s
}

fn opt_line(s: &mut String, label: &str, v: &Option<String>) {
    use std::fmt::Write;
    if let Some(v) = v {
        let _ = writeln!(s, "{label}: {v}");
    }
}

fn socket_text(ip: std::net::IpAddr, port: Option<u16>) -> String {
    match (ip, port) {
        (ip, None) => ip.to_string(),
        (std::net::IpAddr::V4(ip), Some(p)) => format!("{ip}:{p}"),
        (std::net::IpAddr::V6(ip), Some(p)) => format!("[{ip}]:{p}"),
    }
}
