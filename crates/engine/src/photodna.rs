//! PhotoDNA values as text.
//!
//! Safeguard never computes PhotoDNA: the algorithm is Microsoft's and licensed. It stores and
//! matches the 144-byte values that hotlines distribute (NCMEC's `pdna` fingerprints, IWF's
//! lists) and that an operator's licensed hasher plug-in returns. Those sources write the same
//! 144 bytes three ways, so all three are accepted and stored in one canonical form:
//!
//! * 288 hex digits (canonical: lower case);
//! * 192 characters of standard base64 (144 bytes encode to exactly 192, no padding);
//! * 144 decimal numbers 0..=255 separated by commas (optional spaces).

use base64::Engine as _;
pub use safeguard_index::{photodna_distance_sq, PhotoDnaValue, PHOTODNA_LEN};

/// Longest text accepted before parsing: the comma form at its widest, with some spaces.
pub const MAX_PHOTODNA_TEXT: usize = 2048;

/// Parses any of the three text forms. The error says which form was recognised and why it
/// failed, without echoing the value back.
pub fn parse_photodna(text: &str) -> Result<PhotoDnaValue, String> {
    let t = text.trim();
    if t.len() > MAX_PHOTODNA_TEXT {
        return Err(format!(
            "value is {} characters, above the limit of {MAX_PHOTODNA_TEXT}",
            t.len()
        ));
    }
    let mut out = [0u8; PHOTODNA_LEN];
    if t.contains(',') {
        let mut n = 0;
        for (i, part) in t.split(',').enumerate() {
            if i >= PHOTODNA_LEN {
                return Err(format!(
                    "comma-separated form has more than {PHOTODNA_LEN} numbers"
                ));
            }
            out[i] = part.trim().parse::<u8>().map_err(|_| {
                format!(
                    "comma-separated form: item {} is not a number 0..=255",
                    i + 1
                )
            })?;
            n = i + 1;
        }
        if n != PHOTODNA_LEN {
            return Err(format!(
                "comma-separated form has {n} numbers, expected {PHOTODNA_LEN}"
            ));
        }
        return Ok(out);
    }
    if t.len() == 2 * PHOTODNA_LEN && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode_to_slice(t, &mut out).map_err(|e| format!("hex form: {e}"))?;
        return Ok(out);
    }
    if t.len() == 192 {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(t)
            .map_err(|e| format!("base64 form: {e}"))?;
        if bytes.len() == PHOTODNA_LEN {
            out.copy_from_slice(&bytes);
            return Ok(out);
        }
    }
    Err(format!(
        "expected {} hex digits, {} base64 characters or {PHOTODNA_LEN} comma-separated numbers; got {} characters",
        2 * PHOTODNA_LEN,
        192,
        t.len()
    ))
}

/// Canonical text: 288 lower-case hex digits.
pub fn format_photodna(v: &PhotoDnaValue) -> String {
    hex::encode(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PhotoDnaValue {
        let mut v = [0u8; PHOTODNA_LEN];
        for (i, b) in v.iter_mut().enumerate() {
            *b = (i * 37 % 256) as u8;
        }
        v
    }

    #[test]
    fn three_forms_parse_to_the_same_bytes() {
        let v = sample();
        let hex = format_photodna(&v);
        assert_eq!(hex.len(), 288);
        let b64 = base64::engine::general_purpose::STANDARD.encode(v);
        assert_eq!(b64.len(), 192);
        let csv = v
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(parse_photodna(&hex).unwrap(), v);
        assert_eq!(parse_photodna(&hex.to_ascii_uppercase()).unwrap(), v);
        assert_eq!(parse_photodna(&b64).unwrap(), v);
        assert_eq!(parse_photodna(&format!("  {csv}\n")).unwrap(), v);
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let v = sample();
        let hex = format_photodna(&v);
        assert!(parse_photodna(&hex[..286]).unwrap_err().contains("288 hex"));
        assert!(parse_photodna(&format!("{}zz", &hex[..286]))
            .unwrap_err()
            .contains("288 hex"));
        let short = vec!["1"; 143].join(",");
        assert!(parse_photodna(&short).unwrap_err().contains("143 numbers"));
        let long = vec!["1"; 145].join(",");
        assert!(parse_photodna(&long).unwrap_err().contains("more than 144"));
        let bad = format!("256,{}", vec!["1"; 143].join(","));
        assert!(parse_photodna(&bad).unwrap_err().contains("item 1"));
        assert!(parse_photodna(&"a".repeat(5000))
            .unwrap_err()
            .contains("limit"));
        assert!(parse_photodna(&"!".repeat(192))
            .unwrap_err()
            .contains("base64"));
        assert!(parse_photodna("").is_err());
    }
}
