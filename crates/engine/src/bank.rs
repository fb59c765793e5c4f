//! Bank names and settings.

use crate::signal::truncate;
use crate::Error;

/// Longest bank name accepted, in bytes.
pub const MAX_BANK_NAME_LEN: usize = 255;

/// PDQ distance threshold a new bank gets: the conventional 31.
pub const DEFAULT_PDQ_THRESHOLD: u32 = safeguard_pdq::DEFAULT_MATCH_DISTANCE;

/// Largest per-bank PDQ threshold: the index is exact up to this radius, and a larger one
/// would match unrelated images (random hashes are about 128 bits apart).
pub const MAX_PDQ_THRESHOLD: u32 = 64;

/// Checks a bank name: HMA's rule, `[A-Z_][A-Z0-9_]*`, at most 255 bytes.
pub fn validate_bank_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= MAX_BANK_NAME_LEN
        && (name.as_bytes()[0].is_ascii_uppercase() || name.as_bytes()[0] == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidBankName(truncate(name)))
    }
}

/// Checks an enabled ratio: a finite number in 0..=1.
pub fn validate_ratio(r: f64) -> Result<(), Error> {
    if r.is_finite() && (0.0..=1.0).contains(&r) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "enabled_ratio must be between 0 and 1, got {r}"
        )))
    }
}

/// Checks a PDQ threshold.
pub fn validate_threshold(t: u32) -> Result<(), Error> {
    if t <= MAX_PDQ_THRESHOLD {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "pdq_threshold must be at most {MAX_PDQ_THRESHOLD}, got {t}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_names() {
        for ok in ["A", "NCMEC", "IWF_2024", "MY_BANK_1", "_X"] {
            validate_bank_name(ok).unwrap();
        }
        for bad in ["", "lower", "1BANK", "A-B", "A B", "É", &"A".repeat(256)] {
            assert!(validate_bank_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ratios_and_thresholds() {
        assert!(validate_ratio(0.0).is_ok() && validate_ratio(1.0).is_ok());
        assert!(validate_ratio(f64::NAN).is_err() && validate_ratio(1.5).is_err());
        assert!(validate_threshold(64).is_ok() && validate_threshold(65).is_err());
    }
}
