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

/// Most tags one bank may carry: rules test them per match, so the list stays short.
pub const MAX_BANK_TAGS: usize = 16;
/// Longest tag, in bytes.
pub const MAX_TAG_LEN: usize = 64;

/// Checks bank tags: each `[a-z0-9][a-z0-9_-]*` (no comma: the store joins them with
/// commas), at most [`MAX_TAG_LEN`] bytes, at most [`MAX_BANK_TAGS`], no repeats.
pub fn validate_tags(tags: &[String]) -> Result<(), Error> {
    if tags.len() > MAX_BANK_TAGS {
        return Err(Error::Invalid(format!(
            "a bank has at most {MAX_BANK_TAGS} tags, got {}",
            tags.len()
        )));
    }
    for (i, tag) in tags.iter().enumerate() {
        let ok = !tag.is_empty()
            && tag.len() <= MAX_TAG_LEN
            && (tag.as_bytes()[0].is_ascii_lowercase() || tag.as_bytes()[0].is_ascii_digit())
            && tag
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            return Err(Error::Invalid(format!(
                "tag {:?} must be 1 to {MAX_TAG_LEN} characters of a-z, 0-9, _ and -, \
                 starting with a letter or digit",
                truncate(tag)
            )));
        }
        if tags[..i].contains(tag) {
            return Err(Error::Invalid(format!("tag {tag:?} is given twice")));
        }
    }
    Ok(())
}

/// The classifications a bank may default to: the industry categories hotlines use
/// (A1/A2: prepubescent; B1/B2: pubescent; 1: sex act, 2: lascivious exhibition).
pub const CLASSIFICATIONS: [&str; 4] = ["A1", "A2", "B1", "B2"];

/// Checks a bank's default classification and returns it in its canonical (upper) case.
pub fn validate_classification(c: &str) -> Result<String, Error> {
    let upper = c.to_ascii_uppercase();
    if CLASSIFICATIONS.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(Error::Invalid(format!(
            "classification must be one of A1, A2, B1, B2, got {:?}",
            truncate(c)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_classifications() {
        validate_tags(&["hotline".into(), "uk-iwf".into(), "x_1".into()]).unwrap();
        for bad in ["", "Upper", "a,b", "-x", &"x".repeat(65)] {
            assert!(
                validate_tags(&[bad.to_string()]).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(validate_tags(&["a".into(), "a".into()]).is_err());
        assert!(validate_tags(&vec!["a".to_string(); 17]).is_err());
        assert_eq!(validate_classification("a1").unwrap(), "A1");
        assert!(validate_classification("C3").is_err());
    }

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
