//! Audit entries and their canonical encoding.
//!
//! An entry says who (`actor`) did what (`action`) to which thing (`object`), when, with a
//! short `detail`. Its canonical encoding is what the Merkle tree commits to, so it must
//! never change for a given entry: fixed-width big-endian integers and length-prefixed
//! UTF-8 strings after a versioned domain tag. Length prefixes make the encoding
//! unambiguous (no choice of field contents can make two different entries encode alike),
//! which a separator-joined text would not be.
//!
//! Entries carry identifiers, never content: `object` is an id (a case id, a key id, a
//! report id) and `detail` a short human phrase. Media, full hashes (which for perceptual
//! hashes can leak what the media shows) and personal data belong in the systems those ids
//! point to, where they can be deleted; an audit log is kept forever and exported to
//! auditors. [`Entry::new`] refuses a `detail` that looks like a full hash.

use crate::merkle::{leaf_hash, Hash};
use crate::Error;

/// Domain tag that starts every canonical entry encoding: no other input to this log's
/// hashes starts so, and a future v2 encoding gets its own tag.
pub const ENTRY_DOMAIN: &[u8] = b"safeguard-audit-entry-v1\0";
/// Most bytes in `actor` (an account id, key id or service name).
pub const MAX_ACTOR_LEN: usize = 256;
/// Most bytes in `action`: a snake_case kind name.
pub const MAX_ACTION_LEN: usize = 64;
/// Most bytes in `object` (an id such as a UUID or a content id).
pub const MAX_OBJECT_LEN: usize = 256;
/// Most bytes in `detail`: a short phrase for a human, not a payload. It also bounds an
/// export line, which the verifier reads with a fixed limit.
pub const MAX_DETAIL_LEN: usize = 1024;
/// Longest run of hexadecimal digits allowed in `detail`. 32 digits is an MD5, 40 a SHA-1, 64
/// a SHA-256 or a PDQ hash: full hashes are refused, while a short id prefix for a human
/// ("case 7f3a9c") still fits.
pub const MAX_DETAIL_HEX_RUN: usize = 31;

/// The kinds of action Safeguard records. The stable name ([`Action::as_str`]) is what an
/// entry stores and hashes: renaming a variant's string would break every existing log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Action {
    /// An API or signing key was created.
    KeyCreated,
    /// An API or signing key was revoked.
    KeyRevoked,
    /// A person signed in.
    Login,
    /// A sign-in failed.
    LoginFailed,
    /// A reviewer revealed blurred media.
    MediaRevealed,
    /// A reviewer decided a case.
    Decision,
    /// A second person approved a decision.
    Approval,
    /// A report was filed with a reporting body.
    ReportFiled,
    /// A filed report was retracted.
    ReportRetracted,
    /// Filing a report failed.
    ReportFailed,
    /// Evidence was read from the vault.
    VaultRead,
    /// Evidence was exported from the vault.
    VaultExport,
    /// Evidence was deleted from the vault.
    VaultDelete,
    /// A matching or routing rule changed.
    RuleChanged,
    /// Configuration changed.
    ConfigChanged,
    /// Hashes were imported into a bank.
    BankImport,
    /// Hashes were withdrawn from a bank.
    BankWithdrawal,
    /// A case's legal hold was set or lifted (it stops or restarts its evidence's retention
    /// clock).
    LegalHold,
}

impl Action {
    /// Every kind, in declaration order.
    pub const ALL: [Action; 18] = [
        Action::KeyCreated,
        Action::KeyRevoked,
        Action::Login,
        Action::LoginFailed,
        Action::MediaRevealed,
        Action::Decision,
        Action::Approval,
        Action::ReportFiled,
        Action::ReportRetracted,
        Action::ReportFailed,
        Action::VaultRead,
        Action::VaultExport,
        Action::VaultDelete,
        Action::RuleChanged,
        Action::ConfigChanged,
        Action::BankImport,
        Action::BankWithdrawal,
        Action::LegalHold,
    ];

    /// The stable snake_case name stored in entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::KeyCreated => "key_created",
            Action::KeyRevoked => "key_revoked",
            Action::Login => "login",
            Action::LoginFailed => "login_failed",
            Action::MediaRevealed => "media_revealed",
            Action::Decision => "decision",
            Action::Approval => "approval",
            Action::ReportFiled => "report_filed",
            Action::ReportRetracted => "report_retracted",
            Action::ReportFailed => "report_failed",
            Action::VaultRead => "vault_read",
            Action::VaultExport => "vault_export",
            Action::VaultDelete => "vault_delete",
            Action::RuleChanged => "rule_changed",
            Action::ConfigChanged => "config_changed",
            Action::BankImport => "bank_import",
            Action::BankWithdrawal => "bank_withdrawal",
            Action::LegalHold => "legal_hold",
        }
    }

    /// The kind with this stable name, if this build knows it.
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Action {
    type Err = Error;

    fn from_str(s: &str) -> Result<Action, Error> {
        Action::parse(s).ok_or_else(|| Error::InvalidEntry {
            field: "action",
            reason: format!("unknown action kind {s:?}"),
        })
    }
}

impl AsRef<str> for Action {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// One audit entry, validated ([`Entry::new`]): fields within their limits, no control
/// characters, `action` a snake_case name, `detail` without full hashes.
///
/// `action` is kept as its name rather than as [`Action`] so that a log written by a newer
/// build, with kinds this one does not know, still verifies; [`Entry::action_kind`] gives
/// the kind where it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log, from 0, without gaps: also hashed, so an entry cannot be moved.
    seq: u64,
    /// When it happened, milliseconds since the Unix epoch (UTC).
    at_ms: i64,
    /// Who acted: an account id, a key id or a service name. Non-empty.
    actor: String,
    /// What was done: a snake_case kind name, normally one of [`Action`].
    action: String,
    /// The id of what it was done to; may be empty.
    object: String,
    /// A short phrase for a human; may be empty. Never media or full hashes.
    detail: String,
}

impl Entry {
    /// A validated entry. `action` is normally an [`Action`] (or its name).
    pub fn new(
        seq: u64,
        at_ms: i64,
        actor: impl Into<String>,
        action: impl AsRef<str>,
        object: impl Into<String>,
        detail: impl Into<String>,
    ) -> Result<Entry, Error> {
        let entry = Entry {
            seq,
            at_ms,
            actor: actor.into(),
            action: action.as_ref().to_string(),
            object: object.into(),
            detail: detail.into(),
        };
        entry.validate()?;
        Ok(entry)
    }

    fn validate(&self) -> Result<(), Error> {
        let bad = |field: &'static str, reason: String| Error::InvalidEntry { field, reason };
        for (field, value, max) in [
            ("actor", &self.actor, MAX_ACTOR_LEN),
            ("action", &self.action, MAX_ACTION_LEN),
            ("object", &self.object, MAX_OBJECT_LEN),
            ("detail", &self.detail, MAX_DETAIL_LEN),
        ] {
            if value.len() > max {
                return Err(bad(
                    field,
                    format!("{} bytes, over the {max} allowed", value.len()),
                ));
            }
            // Control characters would let one entry pose as several lines wherever the
            // log is shown as text.
            if value.chars().any(char::is_control) {
                return Err(bad(field, "contains control characters".into()));
            }
        }
        if self.actor.is_empty() {
            return Err(bad("actor", "is empty".into()));
        }
        let snake = self.action.starts_with(|c: char| c.is_ascii_lowercase())
            && self
                .action
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !snake {
            return Err(bad(
                "action",
                format!("{:?} is not a snake_case name", self.action),
            ));
        }
        let mut run = 0;
        for c in self.detail.chars() {
            run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
            if run > MAX_DETAIL_HEX_RUN {
                return Err(bad(
                    "detail",
                    format!(
                        "holds a run of more than {MAX_DETAIL_HEX_RUN} hex digits, which looks \
                         like a full hash: give an id instead"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Position in the log, from 0.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// When it happened, milliseconds since the Unix epoch (UTC).
    pub fn at_ms(&self) -> i64 {
        self.at_ms
    }

    /// Who acted.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The action's stable name.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The action as a known kind; `None` for a kind from a newer build.
    pub fn action_kind(&self) -> Option<Action> {
        Action::parse(&self.action)
    }

    /// The id of what was acted on.
    pub fn object(&self) -> &str {
        &self.object
    }

    /// The short human-readable detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The canonical encoding, which [`Entry::leaf_hash`] hashes:
    ///
    /// ```text
    /// "safeguard-audit-entry-v1\0"
    /// seq      u64 big-endian
    /// at_ms    i64 big-endian (two's complement)
    /// actor    u32 big-endian byte length, then UTF-8
    /// action   u32 big-endian byte length, then UTF-8
    /// object   u32 big-endian byte length, then UTF-8
    /// detail   u32 big-endian byte length, then UTF-8
    /// ```
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let strings = [&self.actor, &self.action, &self.object, &self.detail];
        let mut out = Vec::with_capacity(
            ENTRY_DOMAIN.len() + 16 + strings.iter().map(|s| 4 + s.len()).sum::<usize>(),
        );
        out.extend_from_slice(ENTRY_DOMAIN);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.at_ms.to_be_bytes());
        for s in strings {
            // Fits: every field is at most MAX_DETAIL_LEN bytes (checked in `new`).
            let len = u32::try_from(s.len()).expect("field lengths are bounded");
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        out
    }

    /// The RFC 6962 leaf hash of the canonical encoding: what the tree holds for this entry.
    /// A store keeps it beside the entry, so that a row altered later no longer matches it.
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.canonical_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_round_trip_and_are_unique() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
            assert_eq!(a.as_str().parse::<Action>().unwrap(), a);
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
        assert!(Action::parse("Login").is_none());
        assert!("nope".parse::<Action>().is_err());
    }

    #[test]
    fn encoding_is_pinned() {
        // A change here changes every leaf hash of every existing log.
        let e = Entry::new(1, 2, "a", Action::Login, "o", "d").unwrap();
        let mut want = ENTRY_DOMAIN.to_vec();
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]);
        want.extend_from_slice(&[0, 0, 0, 1, b'a']);
        want.extend_from_slice(&[0, 0, 0, 5]);
        want.extend_from_slice(b"login");
        want.extend_from_slice(&[0, 0, 0, 1, b'o', 0, 0, 0, 1, b'd']);
        assert_eq!(e.canonical_bytes(), want);
    }

    #[test]
    fn shifting_text_between_fields_changes_the_hash() {
        let a = Entry::new(0, 0, "ab", "login", "c", "").unwrap();
        let b = Entry::new(0, 0, "a", "login", "bc", "").unwrap();
        assert_ne!(a.leaf_hash(), b.leaf_hash());
    }

    #[test]
    fn validation_refuses_what_does_not_belong_in_an_audit_log() {
        let ok = |detail: &str| Entry::new(0, 0, "alice", Action::Decision, "case-1", detail);
        assert!(ok("confirmed, case 7f3a9c").is_ok());
        assert!(ok(&"ab".repeat(32)).is_err(), "a SHA-256 in detail");
        // At most 31 hex digits in a row (docs/audit.md): an MD5 (32) is refused too, while
        // a run broken by any other character starts again.
        assert_eq!(MAX_DETAIL_HEX_RUN, 31);
        assert!(ok(&format!("id {}", "f".repeat(31))).is_ok());
        assert!(
            ok(&"0123456789abcdef".repeat(2)).is_err(),
            "an MD5 in detail"
        );
        assert!(ok(&format!("{0}-{0}", "a".repeat(31))).is_ok());
        assert!(ok(&format!("{}g", "a".repeat(31))).is_ok());
        assert!(ok(&"a".repeat(MAX_DETAIL_LEN + 1)).is_err());
        assert!(ok("two\nlines").is_err());
        assert!(Entry::new(0, 0, "", "login", "", "").is_err());
        assert!(Entry::new(0, 0, "a", "Login", "", "").is_err());
        assert!(Entry::new(0, 0, "a", "_x", "", "").is_err());
        assert!(Entry::new(0, 0, "a", "future_kind_2", "", "").is_ok());
    }
}
