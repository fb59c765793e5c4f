//! Roles and what each allows.
//!
//! A user holds a *set* of roles rather than one rank because the duties do not nest: an
//! admin manages accounts but must not see media unless also a reviewer, and an auditor reads
//! figures but neither decides nor administers. Ranks would force "admin sees everything".

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// One duty a console user can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Sees queues and media, decides cases.
    Reviewer,
    /// Everything a reviewer does, and approves reports (the second person of the two).
    Senior,
    /// Users and settings; no media unless also reviewer or senior.
    Admin,
    /// Read-only audit trail and figures; never media.
    Auditor,
}

impl Role {
    /// Every role, in the canonical order used when printing a set.
    pub const ALL: [Role; 4] = [Role::Reviewer, Role::Senior, Role::Admin, Role::Auditor];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Senior => "senior",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| Error::UnknownRole(s.to_owned()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of roles, stored as comma-separated names ("admin,reviewer").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Roles(u8);

impl Roles {
    /// Parses "admin, reviewer". Surrounding spaces are ignored and duplicates collapse, but
    /// an unknown name or an empty list is refused: a typo must not silently drop a duty.
    pub fn parse(s: &str) -> Result<Roles> {
        let mut set = Roles::default();
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(Error::NoRoles);
            }
            set = set.with(part.parse()?);
        }
        Ok(set)
    }

    /// This set plus `role`.
    pub fn with(self, role: Role) -> Roles {
        Roles(self.0 | role.bit())
    }

    /// Whether `role` is in the set.
    pub fn has(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    /// Whether the set is empty (only possible through `Default`).
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The roles in canonical order.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.has(*r))
    }

    /// May see media (images, video frames, signed media URLs).
    pub fn sees_media(self) -> bool {
        self.has(Role::Reviewer) || self.has(Role::Senior)
    }

    /// May claim and decide cases. The same people as [`Roles::sees_media`]: deciding
    /// without seeing the evidence is not a review.
    pub fn can_decide(self) -> bool {
        self.sees_media()
    }

    /// May approve another person's report decision.
    pub fn can_approve(self) -> bool {
        self.has(Role::Senior)
    }

    /// May manage users and settings.
    pub fn can_admin(self) -> bool {
        self.has(Role::Admin)
    }

    /// May read the audit trail and the team's figures.
    pub fn can_audit(self) -> bool {
        self.has(Role::Auditor) || self.has(Role::Admin)
    }

    /// Leads (senior or admin) see queue depth and age, and the team's exposure aggregates.
    /// Reviewers do not see depth: a growing number on screen pushes people to rush.
    pub fn is_lead(self) -> bool {
        self.has(Role::Senior) || self.has(Role::Admin)
    }

    /// Whether a second factor is required. True for every set: only media-seeing sets strictly
    /// need it, but an admin can grant roles and an auditor reads case history, so one rule for
    /// all is simpler to explain and leaves no weaker door into the console.
    pub fn needs_totp(self) -> bool {
        true
    }
}

impl FromStr for Roles {
    type Err = Error;
    fn from_str(s: &str) -> Result<Roles> {
        Roles::parse(s)
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(r.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print_canonically() {
        let r = Roles::parse(" auditor,admin , reviewer,admin").unwrap();
        assert_eq!(r.to_string(), "reviewer,admin,auditor");
        assert_eq!(Roles::parse(&r.to_string()).unwrap(), r);
        assert!(matches!(Roles::parse(""), Err(Error::NoRoles)));
        assert!(matches!(Roles::parse("admin,"), Err(Error::NoRoles)));
        assert!(matches!(Roles::parse("Admin"), Err(Error::UnknownRole(_))));
        assert!(matches!(Roles::parse("root"), Err(Error::UnknownRole(_))));
    }

    #[test]
    fn capability_table() {
        // (roles, sees_media, can_decide, can_approve, can_admin, can_audit, is_lead)
        let table = [
            ("reviewer", true, true, false, false, false, false),
            ("senior", true, true, true, false, false, true),
            ("admin", false, false, false, true, true, true),
            ("auditor", false, false, false, false, true, false),
            ("admin,reviewer", true, true, false, true, true, true),
            ("auditor,senior", true, true, true, false, true, true),
        ];
        for (s, media, decide, approve, admin, audit, lead) in table {
            let r = Roles::parse(s).unwrap();
            assert_eq!(r.sees_media(), media, "{s} sees_media");
            assert_eq!(r.can_decide(), decide, "{s} can_decide");
            assert_eq!(r.can_approve(), approve, "{s} can_approve");
            assert_eq!(r.can_admin(), admin, "{s} can_admin");
            assert_eq!(r.can_audit(), audit, "{s} can_audit");
            assert_eq!(r.is_lead(), lead, "{s} is_lead");
            assert!(r.needs_totp(), "{s} needs_totp");
        }
    }
}
