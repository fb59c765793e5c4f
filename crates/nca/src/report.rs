//! The report: the information SI 2026/268 Schedule 1 asks for "where available".
//!
//! A plain struct tree that serialises to JSON (serde) and back, plus [`Report::validate`].
//! Almost everything is optional, because Schedule 1 asks for each item only where it is
//! available; what is required is what makes a report meaningful and accountable:
//!
//! - the authorised person's name and at least one way to reach them (email or telephone),
//! - at least one content item, each identifiable (a file, a reference or a URL) and with its
//!   detection method,
//! - the declaration that all reasonably available information is included.
//!
//! The Schedule 1 item each field comes from is named in its doc comment ("Sch 1: ..."), by
//! the headings of third-party mappings of the 2026 text (the crate docs say why this is
//! second-hand).
//!
//! Validation checks shape, not truth: an email has one `@` and a dotted domain, a telephone
//! number has 7 to 15 digits (E.164's maximum), a port is not 0, a timestamp lies between
//! [`EARLIEST_MS`] and [`LATEST_MS`], a hash has the length its kind demands. IP addresses
//! are typed ([`std::net::IpAddr`]), so JSON holding one that does not parse is refused when
//! it is read.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::priority::PriorityLevel;
use crate::reference::NcaReference;
use crate::{Error, UnixMs};

/// Earliest acceptable timestamp: 2000-01-01T00:00:00Z. Anything earlier is a unit mistake
/// (seconds passed as milliseconds) rather than a real upload or login time.
pub const EARLIEST_MS: UnixMs = 946_684_800_000;
/// Latest acceptable timestamp: 2100-01-01T00:00:00Z. Anything later is a unit mistake
/// (microseconds passed as milliseconds).
pub const LATEST_MS: UnixMs = 4_102_444_800_000;
/// Longest short text field (names, ids, usernames, labels), characters. Long enough for any
/// real name or identifier; short enough that a field cannot smuggle a document.
pub const SHORT_TEXT_MAX: usize = 512;
/// Longest free-text field (information available to the reporter, other information),
/// characters: 64 Ki, several pages of prose.
pub const LONG_TEXT_MAX: usize = 65_536;
/// Longest URL, characters; 8 Ki is the request-line limit of common servers.
pub const URL_MAX: usize = 8192;
/// Longest email address, characters (RFC 5321's path limit less the angle brackets).
pub const EMAIL_MAX: usize = 254;
/// Fewest digits in a telephone number: short national numbers have 7.
pub const PHONE_DIGITS_MIN: usize = 7;
/// Most digits in a telephone number: E.164's maximum.
pub const PHONE_DIGITS_MAX: usize = 15;
/// Most content items in one report. The NCA wants one report per incident; a thousand
/// items is already an unusual incident, and the cap bounds the work of validation.
pub const CONTENT_ITEMS_MAX: usize = 1000;
/// Most entries in any list inside a report (emails, phones, login IPs, connections...).
pub const LIST_MAX: usize = 10_000;

/// One report to the NCA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The provider's own identifier for this report or case, so the NCA's questions can be
    /// matched to it. Not in Schedule 1; every provider has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_reference: Option<String>,
    /// Sch 1: the authorised person making the report (reg 5's registered users).
    pub authorised_person: AuthorisedPerson,
    /// The priority level assessed under reg 6(6)–(7) ([`crate::priority`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<PriorityLevel>,
    /// Sch 1: the CSEA content detected. At least one item.
    pub content: Vec<ContentItem>,
    /// Sch 1: information available to the provider about the content and the circumstances
    /// (free text: what was seen, what led to the report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub information_available: Option<String>,
    /// Sch 1: the user(s) who uploaded, created, shared or received the content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<User>,
    /// Sch 1: whether the provider holds identity documents for the user, and which kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_documents: Option<IdentityDocuments>,
    /// Sch 1: any other information reasonably available that may help (free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_information: Option<String>,
    /// Sch 1: the declaration that all reasonably available information is included.
    pub declaration: Declaration,
}

/// Sch 1: the authorised person making the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorisedPerson {
    /// Sch 1: name. Required.
    pub name: String,
    /// Sch 1: email address. This or `telephone` is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Sch 1: telephone number. This or `email` is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telephone: Option<String>,
}

/// Sch 1: one item of content detected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentItem {
    /// Sch 1: the file, by name. It names a [`crate::ContentFile`] sent with the report (in
    /// the bundle, or base64 in the API request). One of `file_name`, `reference` and `url`
    /// is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// Sch 1: a reference to the content where the file itself is not sent (the provider's
    /// content id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Sch 1: how the content was detected. Required.
    pub detection: DetectionMethod,
    /// Sch 1: the platform or service it was found on (for a provider with several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Sch 1: when it was uploaded, Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at_ms: Option<UnixMs>,
    /// Sch 1: the IP address it was uploaded from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_ip: Option<IpAddr>,
    /// Sch 1: the source port of the upload (needed to tell users apart behind carrier-grade
    /// NAT). 1–65535.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_port: Option<u16>,
    /// Sch 1: EXIF data: whether present, and a summary of what it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exif: Option<Exif>,
    /// Sch 1: the URL or location of the content on the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Sch 1: hashes of the content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<ContentHash>,
    /// Sch 1: whether this content was reported before (to the NCA or, under its guidance,
    /// to NCMEC), and the earlier report's reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previously_reported: Option<PreviousReport>,
}

/// Sch 1: how content was detected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum DetectionMethod {
    /// A match against a hash list.
    HashMatch {
        /// The bank (list) that matched, as the provider names it.
        bank: String,
        /// Where the bank's hashes came from (IWF, NCMEC, the provider's own...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    /// A classifier flagged it.
    Classifier {
        /// The classifier's name and version.
        name: String,
        /// Its score, 0 to 1, where one is available.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        score: Option<f64>,
    },
    /// A user of the service reported it.
    UserReport,
    /// A moderator found it.
    Moderator,
    /// Anything else, described.
    Other {
        /// How it was detected.
        description: String,
    },
}

/// Sch 1: EXIF data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exif {
    /// Whether the file carried EXIF data.
    pub present: bool,
    /// What it holds (device, time taken, location present...), as the provider summarises it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// The kind of a content hash, which fixes the value's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashKind {
    /// MD5, 32 hex digits.
    Md5,
    /// SHA-1, 40 hex digits.
    Sha1,
    /// SHA-256, 64 hex digits.
    Sha256,
    /// PDQ perceptual hash, 64 hex digits (256 bits).
    Pdq,
    /// PhotoDNA, as the provider's PhotoDNA library prints it (not checked beyond length).
    PhotoDna,
    /// Another kind, named in the value's text (not checked beyond length).
    Other,
}

impl HashKind {
    /// Hex digits a value of this kind has; `None` for kinds not checked.
    fn hex_len(self) -> Option<usize> {
        match self {
            HashKind::Md5 => Some(32),
            HashKind::Sha1 => Some(40),
            HashKind::Sha256 | HashKind::Pdq => Some(64),
            HashKind::PhotoDna | HashKind::Other => None,
        }
    }
}

/// Sch 1: one hash of a content item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentHash {
    /// Its kind.
    pub kind: HashKind,
    /// Its value (lowercase or uppercase hex for the hex kinds).
    pub value: String,
}

/// Sch 1: an earlier report of the same content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousReport {
    /// Whether it was reported before.
    pub reported: bool,
    /// The earlier report's reference (the NCA's, or NCMEC's CyberTipline number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<NcaReference>,
}

/// The part a user played (reg 8(1)(b): the user who uploaded, created, shared or received).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    /// Uploaded the content.
    Uploader,
    /// Created it.
    Creator,
    /// Shared it.
    Sharer,
    /// Received it.
    Recipient,
}

/// Sch 1: the user.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The part they played, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<UserRole>,
    /// Sch 1: account identifiers and usernames.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<Account>,
    /// Sch 1: email addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<String>,
    /// Sch 1: the recovery email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_email: Option<String>,
    /// Sch 1: telephone numbers and whether each was verified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<Phone>,
    /// Sch 1: billing details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing: Option<Billing>,
    /// Sch 1: the URL of the user's profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_url: Option<String>,
    /// Sch 1: IP addresses used to log in during the prior period (reg 8(2)), with times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub login_ips: Vec<LoginIp>,
    /// Sch 1: connections with other accounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<Connection>,
}

/// An account of the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The provider's account id.
    pub id: String,
    /// The username shown to others, where different from the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// A telephone number of the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phone {
    /// The number, preferably E.164 (`+44...`); spaces, hyphens and parentheses are allowed.
    pub number: String,
    /// Whether the provider verified it (a code sent and returned), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

/// Sch 1: billing details.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Billing {
    /// The name on the billing account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The billing address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The payment method as the provider may disclose it (card type and last four digits,
    /// never a full card number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
}

/// One login of the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginIp {
    /// The address.
    pub ip: IpAddr,
    /// The source port, where logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// When, Unix ms.
    pub at_ms: UnixMs,
}

/// A connection between the user and another account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// The other account's id.
    pub account_id: String,
    /// How they are connected (friend, follower, messaged, shared device...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
}

/// Sch 1: identity documents held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityDocuments {
    /// Whether the provider holds any.
    pub held: bool,
    /// Which kinds (passport, driving licence...), when held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
}

/// Sch 1: the declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    /// That all information reasonably available is included. Must be `true` for the report
    /// to validate: a report is not sent without it.
    pub all_reasonably_available_information_included: bool,
    /// Who declared it (an authorised person's name).
    pub declared_by: String,
    /// When, Unix ms.
    pub declared_at_ms: UnixMs,
}

impl Report {
    /// Reads a report from JSON and validates it.
    pub fn from_json(json: &[u8]) -> Result<Report, Error> {
        let report: Report = serde_json::from_slice(json)?;
        report.validate()?;
        Ok(report)
    }

    /// The report as pretty-printed JSON (what the bundle carries and the API receives).
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec_pretty(self).map_err(|e| Error::Internal(e.to_string()))
    }

    /// Checks that the report is complete enough to send and that every field has a
    /// plausible shape. The first problem found is returned, naming its field.
    pub fn validate(&self) -> Result<(), Error> {
        opt_text(
            "provider_reference",
            &self.provider_reference,
            SHORT_TEXT_MAX,
        )?;

        let p = &self.authorised_person;
        required_text("authorised_person.name", &p.name, SHORT_TEXT_MAX)?;
        if p.email.is_none() && p.telephone.is_none() {
            return Err(Error::invalid(
                "authorised_person",
                "give an email address or a telephone number, so the NCA can reach them",
            ));
        }
        if let Some(e) = &p.email {
            email("authorised_person.email", e)?;
        }
        if let Some(t) = &p.telephone {
            phone("authorised_person.telephone", t)?;
        }

        if self.content.is_empty() {
            return Err(Error::invalid(
                "content",
                "a report needs at least one content item",
            ));
        }
        list_len("content", self.content.len(), CONTENT_ITEMS_MAX)?;
        for (i, item) in self.content.iter().enumerate() {
            item.validate(&format!("content[{i}]"))?;
        }

        opt_text(
            "information_available",
            &self.information_available,
            LONG_TEXT_MAX,
        )?;
        list_len("users", self.users.len(), LIST_MAX)?;
        for (i, u) in self.users.iter().enumerate() {
            u.validate(&format!("users[{i}]"))?;
        }
        if let Some(d) = &self.identity_documents {
            list_len("identity_documents.kinds", d.kinds.len(), LIST_MAX)?;
            if !d.held && !d.kinds.is_empty() {
                return Err(Error::invalid(
                    "identity_documents",
                    "kinds are listed but held is false",
                ));
            }
            for (i, k) in d.kinds.iter().enumerate() {
                required_text(&format!("identity_documents.kinds[{i}]"), k, SHORT_TEXT_MAX)?;
            }
        }
        opt_text("other_information", &self.other_information, LONG_TEXT_MAX)?;

        let d = &self.declaration;
        if !d.all_reasonably_available_information_included {
            return Err(Error::invalid(
                "declaration.all_reasonably_available_information_included",
                "must be true: include all reasonably available information and declare so",
            ));
        }
        required_text("declaration.declared_by", &d.declared_by, SHORT_TEXT_MAX)?;
        timestamp("declaration.declared_at_ms", d.declared_at_ms)?;
        Ok(())
    }
}

impl ContentItem {
    fn validate(&self, at: &str) -> Result<(), Error> {
        if self.file_name.is_none() && self.reference.is_none() && self.url.is_none() {
            return Err(Error::invalid(
                at,
                "give the file, a reference to it, or its URL",
            ));
        }
        if let Some(name) = &self.file_name {
            crate::bundle::check_file_name(&format!("{at}.file_name"), name)?;
        }
        opt_text(&format!("{at}.reference"), &self.reference, SHORT_TEXT_MAX)?;
        match &self.detection {
            DetectionMethod::HashMatch { bank, source } => {
                required_text(&format!("{at}.detection.bank"), bank, SHORT_TEXT_MAX)?;
                opt_text(&format!("{at}.detection.source"), source, SHORT_TEXT_MAX)?;
            }
            DetectionMethod::Classifier { name, score } => {
                required_text(&format!("{at}.detection.name"), name, SHORT_TEXT_MAX)?;
                if let Some(s) = score {
                    if !(0.0..=1.0).contains(s) {
                        return Err(Error::invalid(
                            format!("{at}.detection.score"),
                            "must be between 0 and 1",
                        ));
                    }
                }
            }
            DetectionMethod::UserReport | DetectionMethod::Moderator => {}
            DetectionMethod::Other { description } => {
                required_text(
                    &format!("{at}.detection.description"),
                    description,
                    SHORT_TEXT_MAX,
                )?;
            }
        }
        opt_text(&format!("{at}.platform"), &self.platform, SHORT_TEXT_MAX)?;
        if let Some(t) = self.uploaded_at_ms {
            timestamp(&format!("{at}.uploaded_at_ms"), t)?;
        }
        if let Some(p) = self.upload_port {
            port(&format!("{at}.upload_port"), p)?;
        }
        if self.upload_port.is_some() && self.upload_ip.is_none() {
            return Err(Error::invalid(
                format!("{at}.upload_port"),
                "a port without the upload IP address means nothing; give upload_ip too",
            ));
        }
        if let Some(e) = &self.exif {
            opt_text(&format!("{at}.exif.summary"), &e.summary, LONG_TEXT_MAX)?;
        }
        if let Some(u) = &self.url {
            url(&format!("{at}.url"), u)?;
        }
        list_len(&format!("{at}.hashes"), self.hashes.len(), LIST_MAX)?;
        for (i, h) in self.hashes.iter().enumerate() {
            hash(&format!("{at}.hashes[{i}]"), h)?;
        }
        if let Some(prev) = &self.previously_reported {
            if !prev.reported && prev.reference.is_some() {
                return Err(Error::invalid(
                    format!("{at}.previously_reported"),
                    "a previous reference is given but reported is false",
                ));
            }
        }
        Ok(())
    }
}

impl User {
    fn validate(&self, at: &str) -> Result<(), Error> {
        list_len(&format!("{at}.accounts"), self.accounts.len(), LIST_MAX)?;
        for (i, a) in self.accounts.iter().enumerate() {
            required_text(&format!("{at}.accounts[{i}].id"), &a.id, SHORT_TEXT_MAX)?;
            opt_text(
                &format!("{at}.accounts[{i}].username"),
                &a.username,
                SHORT_TEXT_MAX,
            )?;
        }
        list_len(&format!("{at}.emails"), self.emails.len(), LIST_MAX)?;
        for (i, e) in self.emails.iter().enumerate() {
            email(&format!("{at}.emails[{i}]"), e)?;
        }
        if let Some(e) = &self.recovery_email {
            email(&format!("{at}.recovery_email"), e)?;
        }
        list_len(&format!("{at}.phones"), self.phones.len(), LIST_MAX)?;
        for (i, p) in self.phones.iter().enumerate() {
            phone(&format!("{at}.phones[{i}].number"), &p.number)?;
        }
        if let Some(b) = &self.billing {
            opt_text(&format!("{at}.billing.name"), &b.name, SHORT_TEXT_MAX)?;
            opt_text(&format!("{at}.billing.address"), &b.address, LONG_TEXT_MAX)?;
            opt_text(
                &format!("{at}.billing.payment_method"),
                &b.payment_method,
                SHORT_TEXT_MAX,
            )?;
        }
        if let Some(u) = &self.profile_url {
            url(&format!("{at}.profile_url"), u)?;
        }
        list_len(&format!("{at}.login_ips"), self.login_ips.len(), LIST_MAX)?;
        for (i, l) in self.login_ips.iter().enumerate() {
            timestamp(&format!("{at}.login_ips[{i}].at_ms"), l.at_ms)?;
            if let Some(p) = l.port {
                port(&format!("{at}.login_ips[{i}].port"), p)?;
            }
        }
        list_len(
            &format!("{at}.connections"),
            self.connections.len(),
            LIST_MAX,
        )?;
        for (i, c) in self.connections.iter().enumerate() {
            required_text(
                &format!("{at}.connections[{i}].account_id"),
                &c.account_id,
                SHORT_TEXT_MAX,
            )?;
            opt_text(
                &format!("{at}.connections[{i}].relationship"),
                &c.relationship,
                SHORT_TEXT_MAX,
            )?;
        }
        Ok(())
    }
}

fn list_len(field: &str, len: usize, max: usize) -> Result<(), Error> {
    if len > max {
        return Err(Error::invalid(field, format!("more than {max} entries")));
    }
    Ok(())
}

fn required_text(field: &str, s: &str, max: usize) -> Result<(), Error> {
    if s.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    text(field, s, max)
}

fn opt_text(field: &str, s: &Option<String>, max: usize) -> Result<(), Error> {
    match s {
        Some(s) => required_text(field, s, max),
        None => Ok(()),
    }
}

fn text(field: &str, s: &str, max: usize) -> Result<(), Error> {
    if s.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("longer than {max} characters"),
        ));
    }
    // Line breaks and tabs are fine in prose; other control characters are not text, and
    // could rewrite what a person sees in the summary (terminal escapes).
    if s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(Error::invalid(field, "contains control characters"));
    }
    Ok(())
}

/// The shape of an email address: `local@domain`, the local part non-empty and without
/// spaces, the domain at least two dot-separated labels of letters, digits and hyphens.
/// Deliberately loose (RFC 5322 allows far more); it catches a field filled with the wrong
/// thing, not an address that does not exist.
pub(crate) fn email(field: &str, s: &str) -> Result<(), Error> {
    let bad = |why: &str| Error::invalid(field, format!("not an email address ({why})"));
    if s.len() > EMAIL_MAX {
        return Err(bad("too long"));
    }
    let (local, domain) = s.rsplit_once('@').ok_or_else(|| bad("no @"))?;
    if local.is_empty() || local.len() > 64 {
        return Err(bad("the part before @ is empty or over 64 characters"));
    }
    if local
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '@')
    {
        return Err(bad("spaces or a second @ before the domain"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(bad("the domain has no dot"));
    }
    for l in labels {
        let ok = !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-');
        if !ok {
            return Err(bad("the domain is not a host name"));
        }
    }
    Ok(())
}

/// The shape of a telephone number: an optional leading `+`, then digits with optional
/// spaces, hyphens, dots and parentheses; 7 to 15 digits in all.
pub(crate) fn phone(field: &str, s: &str) -> Result<(), Error> {
    let body = s.strip_prefix('+').unwrap_or(s);
    if !body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
    {
        return Err(Error::invalid(
            field,
            "a telephone number has only digits, an optional leading +, spaces, hyphens, dots and parentheses",
        ));
    }
    let digits = body.chars().filter(char::is_ascii_digit).count();
    if !(PHONE_DIGITS_MIN..=PHONE_DIGITS_MAX).contains(&digits) {
        return Err(Error::invalid(
            field,
            format!("a telephone number has {PHONE_DIGITS_MIN} to {PHONE_DIGITS_MAX} digits, this one {digits}"),
        ));
    }
    Ok(())
}

fn port(field: &str, p: u16) -> Result<(), Error> {
    if p == 0 {
        return Err(Error::invalid(field, "port 0 is not a real source port"));
    }
    Ok(())
}

pub(crate) fn timestamp(field: &str, t: UnixMs) -> Result<(), Error> {
    if !(EARLIEST_MS..LATEST_MS).contains(&t) {
        return Err(Error::invalid(
            field,
            "not a time between 2000 and 2100 in Unix milliseconds (seconds or microseconds given?)",
        ));
    }
    Ok(())
}

fn url(field: &str, s: &str) -> Result<(), Error> {
    text(field, s, URL_MAX)?;
    let u = url::Url::parse(s).map_err(|e| Error::invalid(field, format!("not a URL: {e}")))?;
    if !u.has_host() {
        return Err(Error::invalid(field, "a URL with a host is expected"));
    }
    Ok(())
}

fn hash(field: &str, h: &ContentHash) -> Result<(), Error> {
    match h.kind.hex_len() {
        Some(n) => {
            if h.value.len() != n || !h.value.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::invalid(
                    format!("{field}.value"),
                    format!("a {:?} hash is {n} hex digits", h.kind),
                ));
            }
            Ok(())
        }
        None => required_text(&format!("{field}.value"), &h.value, LONG_TEXT_MAX),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// 2026-05-01T12:00:00Z.
    pub(crate) const T0: UnixMs = 1_777_636_800_000;

    /// A complete report with every field filled, benign fake data.
    pub(crate) fn sample() -> Report {
        Report {
            provider_reference: Some("case-0001".into()),
            authorised_person: AuthorisedPerson {
                name: "Alex Example".into(),
                email: Some("alex@example.com".into()),
                telephone: Some("+44 20 7946 0000".into()),
            },
            priority: Some(PriorityLevel::Two),
            content: vec![ContentItem {
                file_name: Some("item-1.png".into()),
                reference: Some("content-42".into()),
                detection: DetectionMethod::HashMatch {
                    bank: "known-list".into(),
                    source: Some("example hash source".into()),
                },
                platform: Some("Example Photos".into()),
                uploaded_at_ms: Some(T0 - 3_600_000),
                upload_ip: Some("192.0.2.10".parse().expect("literal address")),
                upload_port: Some(51234),
                exif: Some(Exif {
                    present: true,
                    summary: Some("camera model only".into()),
                }),
                url: Some("https://photos.example.com/p/42".into()),
                hashes: vec![ContentHash {
                    kind: HashKind::Sha256,
                    value: "ab".repeat(32),
                }],
                previously_reported: Some(PreviousReport {
                    reported: true,
                    reference: Some(NcaReference::new("NCA-2026-000123").expect("valid")),
                }),
            }],
            information_available: Some("Flagged by hash match; reviewed by a moderator.".into()),
            users: vec![User {
                role: Some(UserRole::Uploader),
                accounts: vec![Account {
                    id: "u-1001".into(),
                    username: Some("example_user".into()),
                }],
                emails: vec!["user@example.com".into()],
                recovery_email: Some("recovery@example.org".into()),
                phones: vec![Phone {
                    number: "+447700900123".into(),
                    verified: Some(true),
                }],
                billing: Some(Billing {
                    name: Some("E. User".into()),
                    address: None,
                    payment_method: Some("card ending 0000".into()),
                }),
                profile_url: Some("https://example.com/u/example_user".into()),
                login_ips: vec![LoginIp {
                    ip: "2001:db8::1".parse().expect("literal address"),
                    port: Some(443),
                    at_ms: T0 - 86_400_000,
                }],
                connections: vec![Connection {
                    account_id: "u-2002".into(),
                    relationship: Some("follower".into()),
                }],
            }],
            identity_documents: Some(IdentityDocuments {
                held: false,
                kinds: vec![],
            }),
            other_information: None,
            declaration: Declaration {
                all_reasonably_available_information_included: true,
                declared_by: "Alex Example".into(),
                declared_at_ms: T0,
            },
        }
    }

    fn field_of(r: &Report) -> String {
        match r.validate() {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn sample_is_valid_and_round_trips_through_json() {
        let r = sample();
        r.validate().expect("valid");
        let json = r.to_json().expect("serialises");
        let back = Report::from_json(&json).expect("parses");
        assert_eq!(back, r);
    }

    #[test]
    fn minimal_report_is_valid() {
        let r = Report {
            provider_reference: None,
            authorised_person: AuthorisedPerson {
                name: "A".into(),
                email: None,
                telephone: Some("020 7946 0000".into()),
            },
            priority: None,
            content: vec![ContentItem {
                file_name: None,
                reference: Some("c-1".into()),
                detection: DetectionMethod::Moderator,
                platform: None,
                uploaded_at_ms: None,
                upload_ip: None,
                upload_port: None,
                exif: None,
                url: None,
                hashes: vec![],
                previously_reported: None,
            }],
            information_available: None,
            users: vec![],
            identity_documents: None,
            other_information: None,
            declaration: Declaration {
                all_reasonably_available_information_included: true,
                declared_by: "A".into(),
                declared_at_ms: T0,
            },
        };
        r.validate().expect("valid");
        let json = serde_json::to_string(&r).expect("serialises");
        assert!(!json.contains("null"), "absent fields are left out: {json}");
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut r = sample();
        r.authorised_person.email = Some("not-an-email".into());
        assert_eq!(field_of(&r), "authorised_person.email");

        let mut r = sample();
        r.authorised_person.email = None;
        r.authorised_person.telephone = None;
        assert_eq!(field_of(&r), "authorised_person");

        let mut r = sample();
        r.authorised_person.telephone = Some("12345".into());
        assert_eq!(field_of(&r), "authorised_person.telephone");

        let mut r = sample();
        r.content.clear();
        assert_eq!(field_of(&r), "content");

        let mut r = sample();
        r.content[0].upload_port = Some(0);
        assert_eq!(field_of(&r), "content[0].upload_port");

        let mut r = sample();
        r.content[0].uploaded_at_ms = Some(1_700_000_000); // seconds, not ms
        assert_eq!(field_of(&r), "content[0].uploaded_at_ms");

        let mut r = sample();
        r.content[0].hashes[0].value = "abc".into();
        assert_eq!(field_of(&r), "content[0].hashes[0].value");

        let mut r = sample();
        r.content[0].url = Some("not a url".into());
        assert_eq!(field_of(&r), "content[0].url");

        let mut r = sample();
        r.content[0].file_name = Some("../etc/passwd".into());
        assert_eq!(field_of(&r), "content[0].file_name");

        let mut r = sample();
        r.users[0].emails.push("two@@example.com".into());
        assert_eq!(field_of(&r), "users[0].emails[1]");

        let mut r = sample();
        r.users[0].phones[0].number = "+44 abc".into();
        assert_eq!(field_of(&r), "users[0].phones[0].number");

        let mut r = sample();
        r.users[0].login_ips[0].at_ms = 0;
        assert_eq!(field_of(&r), "users[0].login_ips[0].at_ms");

        let mut r = sample();
        r.declaration.all_reasonably_available_information_included = false;
        assert_eq!(
            field_of(&r),
            "declaration.all_reasonably_available_information_included"
        );

        let mut r = sample();
        r.information_available = Some("bell\u{7}".into());
        assert_eq!(field_of(&r), "information_available");
    }

    #[test]
    fn ip_addresses_that_do_not_parse_are_refused_when_read() {
        let json = String::from_utf8(sample().to_json().expect("serialises")).expect("utf-8");
        let bad = json.replace("192.0.2.10", "192.0.2.999");
        assert!(matches!(
            Report::from_json(bad.as_bytes()),
            Err(Error::Json(_))
        ));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v: serde_json::Value =
            serde_json::from_slice(&sample().to_json().expect("serialises")).expect("json");
        v["surprise"] = serde_json::json!(1);
        let bytes = serde_json::to_vec(&v).expect("json");
        assert!(matches!(Report::from_json(&bytes), Err(Error::Json(_))));
    }

    #[test]
    fn email_and_phone_shapes() {
        for ok in ["a@example.com", "first.last+tag@sub.example.co.uk"] {
            email("f", ok).expect(ok);
        }
        for bad in [
            "",
            "a",
            "@example.com",
            "a@example",
            "a b@example.com",
            "a@-x.com",
            "a@x..com",
        ] {
            assert!(email("f", bad).is_err(), "{bad}");
        }
        for ok in ["+447700900123", "(020) 7946-0000", "+1 202 555 0100"] {
            phone("f", ok).expect(ok);
        }
        for bad in [
            "",
            "+",
            "123456",
            "+1234567890123456",
            "07700 9001x3",
            "++447700900123",
        ] {
            assert!(phone("f", bad).is_err(), "{bad}");
        }
    }
}
