//! The text forms of a vPDQ value.
//!
//! * **Reference lines** (`vpdq-hash-video` output, `../shared/conformance/vpdq/README.md`): one
//!   frame a line, `frameNumber,quality,pdqHex,timestamp`, the timestamp with 3 decimals.
//! * **python-threatexchange features**: one frame a string, `pdqHex,quality,timestamp`
//!   (`VpdqCompactFeature.__str__`), the timestamp formatted with Python's `{:.3}`, which means 3
//!   *significant digits* (`12.345` → `12.3`, `123.4` → `1.23e+02`), and read back with
//!   `float()`. A vPDQ signal in HMA and python-threatexchange banks is the JSON list of these
//!   strings (`vpdq_to_json`, `json.dumps` with its default `", "` separator); HMA calls this
//!   compact form its `vpdq` signal value.
//! * **Canonical stored form**: exactly that JSON list, with lower-case hex and the frames in
//!   the order given, as [`to_json`] writes it. It is what python-threatexchange itself would
//!   write for the same frames, so a value exported to HMA is byte-identical to HMA's own.
//!   Frame numbers are not part of it (python-threatexchange drops them too); parsing it
//!   numbers the frames 0, 1, 2, ... in list order. Matching uses only hashes and qualities.
//!
//! Parsing is strict where python-threatexchange is loose in ways that would let a damaged
//! value in: the hash must be exactly 64 hex digits (Python's `int(x, 16)` would also take
//! `0x`, `_` and surrounding spaces inside the 64 characters), and the timestamp must be finite.

use safeguard_pdq::PdqHash;

use crate::{Error, VpdqFrame};

/// Most frames one vPDQ value may hold: 100,000 is 55 minutes hashed at every frame of a
/// 30 fps video, or 27 hours at one frame a second (python-threatexchange's default). It bounds
/// the memory and the matching work one stored value or one query can cost.
pub const MAX_FRAMES: usize = 100_000;

/// Longest vPDQ text accepted, in bytes: [`MAX_FRAMES`] frames at about 80 bytes each in the
/// JSON form, plus room for whitespace. Checked before any parsing.
pub const MAX_TEXT_BYTES: usize = 10 * 1024 * 1024;

fn err(msg: impl Into<String>) -> Error {
    Error::Parse(msg.into())
}

fn check_len(text: &str) -> Result<(), Error> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(Error::TextTooLong {
            bytes: text.len(),
            max: MAX_TEXT_BYTES,
        });
    }
    Ok(())
}

fn parse_hash(s: &str, at: &str) -> Result<PdqHash, Error> {
    PdqHash::from_hex(s).map_err(|e| err(format!("{at}: {e}")))
}

fn parse_quality(s: &str, at: &str) -> Result<u8, Error> {
    let q =
        parse_python_int(s).ok_or_else(|| err(format!("{at}: quality {s:?} is not an integer")))?;
    u8::try_from(q)
        .ok()
        .filter(|q| *q <= 100)
        .ok_or_else(|| err(format!("{at}: quality {q} is outside 0..=100")))
}

fn parse_timestamp(s: &str, at: &str) -> Result<f64, Error> {
    let t = parse_python_float(s)
        .ok_or_else(|| err(format!("{at}: timestamp {s:?} is not a number")))?;
    // The canonical form keeps 3 significant digits, and a value above about 1.795e308 rounds
    // to "1.8e+308", past the largest f64: it would be stored and then not read back. So a
    // timestamp must stay finite in the form it is stored in (found reading the checks of the
    // fuzz target `exchange_pages`, which stores what a peer sends).
    if !t.is_finite() || t < 0.0 || !parse_python_float(&python_sig3(t)).is_some_and(f64::is_finite)
    {
        return Err(err(format!(
            "{at}: timestamp {t} must be a finite number of seconds >= 0"
        )));
    }
    Ok(t)
}

/// Python's `float(s)` for the strings it accepts that matter here: surrounding whitespace,
/// an optional sign, decimal or exponent notation, `inf`/`nan`, and `_` between digits.
pub fn parse_python_float(s: &str) -> Option<f64> {
    let s = strip_underscores(s.trim())?;
    s.parse::<f64>().ok()
}

/// Python's `int(s)` (base 10): surrounding whitespace, an optional sign, `_` between digits.
fn parse_python_int(s: &str) -> Option<i64> {
    let s = strip_underscores(s.trim())?;
    s.parse::<i64>().ok()
}

/// Removes `_` digit separators, which Python allows only between two digits.
fn strip_underscores(s: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !s.contains('_') {
        return Some(s.into());
    }
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'_'
            && !(i > 0 && i + 1 < b.len() && b[i - 1].is_ascii_digit() && b[i + 1].is_ascii_digit())
        {
            return None;
        }
    }
    Some(s.replace('_', "").into())
}

/// Python's `format(x, ".3")`: 3 significant digits, shortest form (trailing zeros dropped),
/// at least one digit after the point in fixed notation, and exponent notation when the
/// decimal exponent is below -4 or the integer part needs more than 2 digits.
pub fn python_sig3(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust rounds `{:e}` exactly, half to even on the binary value, as CPython's dtoa does.
    let e = format!("{:.2e}", x.abs());
    let (mantissa, exp) = e.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let mut digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    // Position of the decimal point relative to the digits, as CPython's `decpt`.
    let decpt = exp + 1;
    // CPython (format_float_short): exponent form iff decpt <= -4 or decpt > precision - 1,
    // the "- 1" being room for the ".0" this format type always shows.
    if decpt <= -4 || decpt > 2 {
        let (first, rest) = digits.split_at(1);
        let m = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{esign}{:02}", exp.abs());
    }
    let n = digits.len() as i32;
    let body = if decpt <= 0 {
        format!("0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= n {
        format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
    } else {
        let (a, b) = digits.split_at(decpt as usize);
        format!("{a}.{b}")
    };
    format!("{sign}{body}")
}

// ---------------------------------------------------------------- python-threatexchange

/// One frame as python-threatexchange writes it: `pdqHex,quality,timestamp` (`{:.3}`).
pub fn to_pytx_feature(f: &VpdqFrame) -> String {
    format!(
        "{},{},{}",
        f.hash.to_hex(),
        f.quality,
        python_sig3(f.timestamp)
    )
}

/// Parses one python-threatexchange frame string; `frame_number` is its position in the list
/// (the string has none).
pub fn parse_pytx_feature(s: &str, frame_number: u64) -> Result<VpdqFrame, Error> {
    let at = format!("frame {frame_number}");
    let mut parts = s.split(',');
    let (Some(h), Some(q), Some(t), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(err(format!(
            "{at}: expected \"pdqHex,quality,timestamp\", got {} comma-separated fields",
            s.split(',').count()
        )));
    };
    Ok(VpdqFrame {
        frame_number,
        hash: parse_hash(h, &at)?,
        quality: parse_quality(q, &at)?,
        timestamp: parse_timestamp(t, &at)?,
    })
}

/// The canonical text form: python-threatexchange's JSON list of frame strings
/// (`["<hex>,100,0.0", "<hex>,98,1.0"]`).
pub fn to_json(frames: &[VpdqFrame]) -> String {
    let mut out = String::with_capacity(2 + frames.len() * 84);
    out.push('[');
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('"');
        out.push_str(&to_pytx_feature(f));
        out.push('"');
    }
    out.push(']');
    out
}

/// Parses python-threatexchange's JSON list of frame strings. An empty text is an empty list,
/// as in python-threatexchange (`json.loads(s or "[]")`).
pub fn parse_json(text: &str) -> Result<Vec<VpdqFrame>, Error> {
    check_len(text)?;
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))?;
    let serde_json::Value::Array(items) = v else {
        return Err(err(
            "expected a JSON list of \"pdqHex,quality,timestamp\" strings",
        ));
    };
    if items.len() > MAX_FRAMES {
        return Err(Error::TooManyFrames {
            frames: items.len(),
            max: MAX_FRAMES,
        });
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let s = item
                .as_str()
                .ok_or_else(|| err(format!("frame {i}: expected a string, got {}", kind(item))))?;
            parse_pytx_feature(s, i as u64)
        })
        .collect()
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------- reference lines

/// One frame as the reference CLI writes it: `frameNumber,quality,pdqHex,timestamp` (`%.3f`).
pub fn to_reference_line(f: &VpdqFrame) -> String {
    format!(
        "{},{},{},{:.3}",
        f.frame_number,
        f.quality,
        f.hash.to_hex(),
        f.timestamp
    )
}

/// Every frame in the reference CLI's format, one line each, each ending in a newline.
pub fn to_reference_lines(frames: &[VpdqFrame]) -> String {
    let mut out = String::with_capacity(frames.len() * 90);
    for f in frames {
        out.push_str(&to_reference_line(f));
        out.push('\n');
    }
    out
}

/// Parses the reference CLI's output. Blank lines are skipped; CRLF line ends are accepted.
pub fn parse_reference_lines(text: &str) -> Result<Vec<VpdqFrame>, Error> {
    check_len(text)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if out.len() == MAX_FRAMES {
            return Err(Error::TooManyFrames {
                frames: out.len() + 1,
                max: MAX_FRAMES,
            });
        }
        let at = format!("line {}", i + 1);
        let mut parts = line.split(',');
        let (Some(n), Some(q), Some(h), Some(t), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(err(format!(
                "{at}: expected \"frameNumber,quality,pdqHex,timestamp\""
            )));
        };
        let frame_number = n.trim().parse::<u64>().map_err(|_| {
            err(format!(
                "{at}: frame number {n:?} is not a non-negative integer"
            ))
        })?;
        out.push(VpdqFrame {
            frame_number,
            quality: parse_quality(q, &at)?,
            hash: parse_hash(h.trim(), &at)?,
            timestamp: parse_timestamp(t, &at)?,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------- either

/// Parses a vPDQ value in any accepted form: a JSON list (python-threatexchange / HMA, and
/// Safeguard's canonical form) when the text starts with `[`, the reference CLI's lines
/// otherwise.
pub fn parse(text: &str) -> Result<Vec<VpdqFrame>, Error> {
    check_len(text)?;
    if text.trim_start().starts_with('[') {
        parse_json(text)
    } else {
        parse_reference_lines(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

    /// What is accepted is stored in a form that reads back: the largest timestamps, whose
    /// 3 significant digits overflow, are refused rather than stored unreadable.
    #[test]
    fn timestamps_that_would_not_read_back_are_refused() {
        for t in ["1.796e308", "1.7976931348623157e308"] {
            let text = format!("[\"{H},100,{t}\"]");
            assert!(parse(&text).is_err(), "{t}");
        }
        let text = format!("[\"{H},100,1.79e308\"]");
        let frames = parse(&text).unwrap();
        let canonical = to_json(&frames);
        assert_eq!(to_json(&parse(&canonical).unwrap()), canonical);
    }

    #[test]
    fn python_three_significant_digits() {
        // Expected strings are Python 3's format(x, ".3").
        for (x, want) in [
            (0.0, "0.0"),
            (1.0, "1.0"),
            (10.0, "10.0"),
            (12.345, "12.3"),
            (99.94, "99.9"),
            (99.96, "1e+02"),
            (100.0, "1e+02"),
            (123.4, "1.23e+02"),
            (1234.5, "1.23e+03"),
            (0.5, "0.5"),
            (1.0 / 30.0, "0.0333"),
            (0.0001, "0.0001"),
            (0.00001234, "1.23e-05"),
            (2.5, "2.5"),
            (1.125, "1.12"),
            (1.375, "1.38"),
            (20.033, "20.0"),
            (5.966999816894531, "5.97"),
        ] {
            assert_eq!(python_sig3(x), want, "{x}");
        }
    }

    #[test]
    fn python_float_and_int_parsing() {
        assert_eq!(parse_python_float(" 1.23e+02\n"), Some(123.0));
        assert_eq!(parse_python_float("1_000.5"), Some(1000.5));
        assert_eq!(parse_python_float(".5"), Some(0.5));
        assert_eq!(parse_python_float("1_"), None);
        assert_eq!(parse_python_float("_1"), None);
        assert_eq!(parse_python_float("1__0"), None);
        assert_eq!(parse_python_float("abc"), None);
        assert_eq!(parse_python_int(" +100 "), Some(100));
        assert_eq!(parse_python_int("1_00"), Some(100));
        assert_eq!(parse_python_int("1.0"), None);
    }

    #[test]
    fn pytx_round_trip_is_byte_identical() {
        let text = format!("[\"{H},100,0.0\", \"{H},49,1.0\", \"{H},98,1.23e+02\"]");
        let frames = parse_json(&text).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[1].quality, 49);
        assert_eq!(frames[2].timestamp, 123.0);
        assert_eq!(frames[2].frame_number, 2);
        assert_eq!(to_json(&frames), text);
        assert_eq!(parse(&text).unwrap(), frames);
    }

    #[test]
    fn upper_case_hex_is_normalised() {
        let text = format!("[\"{},100,0.0\"]", H.to_ascii_uppercase());
        assert_eq!(
            to_json(&parse_json(&text).unwrap()),
            format!("[\"{H},100,0.0\"]")
        );
    }

    #[test]
    fn empty_text_is_an_empty_value() {
        assert!(parse_json("").unwrap().is_empty());
        assert!(parse_json("[]").unwrap().is_empty());
        assert_eq!(to_json(&[]), "[]");
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        let cases = [
            ("{}".to_string(), "JSON list"),
            ("[1]".to_string(), "expected a string"),
            ("[\"abc,1,0\"]".to_string(), "64 hex"),
            (format!("[\"{H},101,0.0\"]"), "outside 0..=100"),
            (format!("[\"{H},-1,0.0\"]"), "outside 0..=100"),
            (format!("[\"{H},x,0.0\"]"), "not an integer"),
            (format!("[\"{H},100,-1\"]"), ">= 0"),
            (format!("[\"{H},100,nan\"]"), "finite"),
            (format!("[\"{H},100,inf\"]"), "finite"),
            (format!("[\"{H},100\"]"), "comma-separated"),
            (format!("[\"{H},100,0,1\"]"), "comma-separated"),
            (format!("[\"0x{},100,0\"]", &H[2..]), "non-hex"),
            ("[\"".to_string(), "not valid JSON"),
        ];
        for (text, want) in cases {
            let e = parse_json(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn limits_are_enforced() {
        let big = " ".repeat(MAX_TEXT_BYTES + 1);
        assert!(matches!(parse(&big), Err(Error::TextTooLong { .. })));
        let one = format!("\"{H},100,0.0\"");
        let many = format!("[{}]", vec![one.as_str(); MAX_FRAMES + 1].join(","));
        assert!(many.len() <= MAX_TEXT_BYTES);
        assert!(matches!(
            parse_json(&many),
            Err(Error::TooManyFrames { frames, .. }) if frames == MAX_FRAMES + 1
        ));
        let line = format!("0,100,{H},0.000\n");
        let lines = line.repeat(MAX_FRAMES + 1);
        assert!(matches!(
            parse_reference_lines(&lines),
            Err(Error::TooManyFrames { .. })
        ));
    }

    #[test]
    fn reference_lines_round_trip() {
        let text = format!("0,100,{H},0.000\n30,49,{H},1.000\r\n\n60,0,{H},2.000\n");
        let frames = parse_reference_lines(&text).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[1].frame_number, 30);
        assert_eq!(frames[1].quality, 49);
        assert_eq!(
            to_reference_lines(&frames),
            format!("0,100,{H},0.000\n30,49,{H},1.000\n60,0,{H},2.000\n")
        );
        assert_eq!(parse(&text).unwrap(), frames);
        assert!(parse_reference_lines(&format!("x,100,{H},0.0")).is_err());
        assert!(parse_reference_lines(&format!("0,100,{H}")).is_err());
    }
}
