//! Passwords: argon2id hashes in PHC string form, and the rules for a new password.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::{Error, Result};

/// Memory cost, KiB. OWASP's first argon2id configuration (19 MiB, 2 passes, 1 lane): about
/// 30-50 ms per login on a server core, and a console has few users logging in at once.
pub const M_COST_KIB: u32 = 19_456;
/// Passes over memory (see [`M_COST_KIB`]).
pub const T_COST: u32 = 2;
/// Lanes (see [`M_COST_KIB`]).
pub const P_COST: u32 = 1;
/// Shortest new password, characters: length is what resists guessing, so no composition
/// rules (NIST SP 800-63B).
pub const MIN_CHARS: usize = 12;
/// Longest new password, characters: enough for any passphrase, and bounds hashing input.
pub const MAX_CHARS: usize = 1024;

fn hasher() -> Result<Argon2<'static>> {
    let params =
        Params::new(M_COST_KIB, T_COST, P_COST, None).map_err(|e| Error::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with argon2id and a fresh 16-byte salt, as a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
pub fn hash(password: &str) -> Result<String> {
    let salt_bytes: [u8; 16] = crate::try_random_bytes()?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| Error::Hash(e.to_string()))?;
    let hash = hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| Error::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`. Only argon2id hashes are accepted, so a
/// weaker hash planted in the store cannot be used to log in; the parameters are read from the
/// string, so hashes made under older parameters keep working.
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Does the work of one [`verify`] against a fixed hash and discards the answer: for a login
/// naming no account (or one without a password yet), so the answer's timing does not tell
/// which names exist.
pub fn verify_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if let Some(phc) = DUMMY.get_or_init(|| hash("safeguard-console-dummy-password").ok()) {
        let _ = verify(password, phc);
    }
}

/// Checks a password someone is setting: [`MIN_CHARS`]..=[`MAX_CHARS`] characters and not one
/// character repeated.
pub fn check_new(password: &str) -> Result<()> {
    let n = password.chars().count();
    if n < MIN_CHARS {
        return Err(Error::WeakPassword("must have at least 12 characters"));
    }
    if n > MAX_CHARS {
        return Err(Error::WeakPassword("must have at most 1024 characters"));
    }
    let mut chars = password.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err(Error::WeakPassword("must not be one character repeated"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_password() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("", &h));
        // Two hashes of one password differ (fresh salt).
        assert_ne!(h, hash("correct horse battery").unwrap());
    }

    #[test]
    fn refuses_other_algorithms_and_garbage() {
        assert!(!verify("x", "not a phc string"));
        let h = hash("correct horse battery").unwrap();
        let argon2i = h.replacen("$argon2id$", "$argon2i$", 1);
        assert!(!verify("correct horse battery", &argon2i));
    }

    #[test]
    fn new_password_rules() {
        assert!(check_new("short").is_err());
        assert!(check_new("aaaaaaaaaaaaaaaa").is_err());
        assert!(check_new(&"x".repeat(1025)).is_err());
        assert!(check_new("twelve chars").is_ok());
        assert!(check_new("ääääääääääää").is_err());
        assert!(check_new("äöüäöüäöüäöü").is_ok());
    }
}
