//! Signal types: what kinds of hash a bank holds, their names, and value validation.

use std::fmt;
use std::sync::Arc;

use safeguard_pdq::PdqHash;
use safeguard_vpdq::VpdqFrame;

use crate::Error;

/// A kind of signal (hash) Safeguard stores and matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignalType {
    /// PDQ perceptual hash (256 bits, 64 hex digits), matched by Hamming distance.
    Pdq,
    /// MD5 of the file bytes (images and videos alike), matched exactly.
    Md5,
    /// SHA-1 of the file bytes, matched exactly.
    Sha1,
    /// SHA-256 of the file bytes, matched exactly.
    Sha256,
    /// vPDQ: per-frame PDQ hashes of a video, matched by the share of frames within a distance
    /// on each side (`safeguard_vpdq::compare`). Its text is python-threatexchange's JSON list of
    /// `"pdqHex,quality,timestamp"` strings (HMA's `vpdq` value).
    Vpdq,
    /// PhotoDNA (144 bytes), matched by Euclidean distance. Safeguard never computes it: values
    /// come from hotline lists and from an operator's licensed hasher plug-in.
    PhotoDna,
    /// A URL on a child-safety URL list (the IWF's, a hotline's), canonicalised as Google Safe
    /// Browsing specifies and stored as its entry expression (`host/path[?query]`, see
    /// `safeguard_url::entry_expression`). A looked-up URL matches an entry when one of its
    /// host-suffix × path-prefix expressions equals it: a page matches itself, a folder what
    /// is under it, a whole domain itself and its subdomains.
    Url,
}

impl SignalType {
    /// Every signal type, in listing order.
    pub const ALL: [SignalType; 7] = [
        SignalType::Pdq,
        SignalType::Md5,
        SignalType::Sha1,
        SignalType::Sha256,
        SignalType::Vpdq,
        SignalType::PhotoDna,
        SignalType::Url,
    ];

    /// Canonical name (HMA's where HMA has one).
    pub fn name(self) -> &'static str {
        match self {
            SignalType::Pdq => "pdq",
            SignalType::Md5 => "md5",
            SignalType::Sha1 => "sha1",
            SignalType::Sha256 => "sha256",
            SignalType::Vpdq => "vpdq",
            SignalType::PhotoDna => "photodna",
            SignalType::Url => "url",
        }
    }

    /// Parses a name. HMA's `video_md5` is accepted as an alias of `md5`: a file's MD5 is the
    /// same whatever the file holds.
    pub fn parse(name: &str) -> Result<SignalType, Error> {
        match name {
            "pdq" => Ok(SignalType::Pdq),
            "md5" | "video_md5" => Ok(SignalType::Md5),
            "sha1" => Ok(SignalType::Sha1),
            "sha256" => Ok(SignalType::Sha256),
            "vpdq" => Ok(SignalType::Vpdq),
            // NCMEC's hash-sharing API calls it `pdna`.
            "photodna" | "pdna" => Ok(SignalType::PhotoDna),
            "url" => Ok(SignalType::Url),
            other => Err(Error::UnknownSignalType(truncate(other))),
        }
    }

    /// Hex digits a value of this type has (for vPDQ: each frame's hash); 0 for URLs, which
    /// are text.
    pub fn hex_len(self) -> usize {
        match self {
            SignalType::Pdq | SignalType::Sha256 | SignalType::Vpdq => 64,
            SignalType::Md5 => 32,
            SignalType::Sha1 => 40,
            SignalType::PhotoDna => 2 * crate::photodna::PHOTODNA_LEN,
            SignalType::Url => 0,
        }
    }

    /// Whether matching is by distance (true) or exact equality. vPDQ is neither: it matches
    /// by shares of frames ([`SignalType::is_video`]).
    pub fn is_fuzzy(self) -> bool {
        matches!(self, SignalType::Pdq)
    }

    /// Whether values are whole-video frame lists matched by percentages (vPDQ).
    pub fn is_video(self) -> bool {
        matches!(self, SignalType::Vpdq)
    }

    /// Validates and normalises a value: for digests and PDQ, surrounding whitespace trimmed,
    /// lower-case hex of the right length; for vPDQ, the canonical JSON form
    /// (`safeguard_vpdq::format`); for URLs, the entry expression.
    pub fn normalize(self, value: &str) -> Result<String, Error> {
        if self == SignalType::Url {
            return parse_url(value);
        }
        if self == SignalType::Vpdq {
            return Ok(safeguard_vpdq::format::to_json(&parse_vpdq(value)?));
        }
        if self == SignalType::PhotoDna {
            return Ok(crate::photodna::format_photodna(&parse_photodna(value)?));
        }
        let v = value.trim();
        if v.len() != self.hex_len() {
            return Err(Error::InvalidSignal {
                signal_type: self.name(),
                reason: format!(
                    "expected {} hex digits, got {} characters",
                    self.hex_len(),
                    v.len()
                ),
            });
        }
        if let Some(pos) = v.bytes().position(|b| !b.is_ascii_hexdigit()) {
            return Err(Error::InvalidSignal {
                signal_type: self.name(),
                reason: format!("non-hex character at position {pos}"),
            });
        }
        Ok(v.to_ascii_lowercase())
    }
}

impl fmt::Display for SignalType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a vPDQ value in any accepted text form, and requires at least one frame: an empty
/// video can neither match nor be matched.
fn parse_vpdq(value: &str) -> Result<Vec<VpdqFrame>, Error> {
    let invalid = |reason: String| Error::InvalidSignal {
        signal_type: "vpdq",
        reason,
    };
    let frames = safeguard_vpdq::format::parse(value).map_err(|e| match e {
        safeguard_vpdq::Error::Parse(m) => invalid(m),
        other => invalid(other.to_string()),
    })?;
    if frames.is_empty() {
        return Err(invalid("a vPDQ value needs at least one frame".into()));
    }
    Ok(frames)
}

/// Canonicalises a URL list entry (or a URL to look up) into its entry expression.
fn parse_url(value: &str) -> Result<String, Error> {
    safeguard_url::entry_expression(value.trim()).map_err(|e| Error::InvalidSignal {
        signal_type: "url",
        reason: e.to_string(),
    })
}

/// Parses a PhotoDNA value in any accepted text form (`crate::photodna`).
fn parse_photodna(value: &str) -> Result<crate::photodna::PhotoDnaValue, Error> {
    crate::photodna::parse_photodna(value).map_err(|reason| Error::InvalidSignal {
        signal_type: "photodna",
        reason,
    })
}

/// A validated signal value, ready for the indexes. Cloning is cheap (a vPDQ value's frames
/// are shared).
#[derive(Debug, Clone, PartialEq)]
pub enum SignalValue {
    /// A PDQ hash.
    Pdq(PdqHash),
    /// An MD5 digest.
    Md5([u8; 16]),
    /// A SHA-1 digest.
    Sha1([u8; 20]),
    /// A SHA-256 digest.
    Sha256([u8; 32]),
    /// A video's vPDQ frames, in the order given.
    Vpdq(Arc<[VpdqFrame]>),
    /// A PhotoDNA value.
    PhotoDna(Box<crate::photodna::PhotoDnaValue>),
    /// A URL's entry expression (`safeguard_url::entry_expression`): a list entry, or a URL
    /// to look up (whose own page, folders and domains are then tried).
    Url(Box<str>),
}

// Values are only built by parsing, which rejects non-finite timestamps, so equality is
// reflexive.
impl Eq for SignalValue {}

impl SignalValue {
    /// Parses `value` as a signal of type `t`.
    pub fn parse(t: SignalType, value: &str) -> Result<SignalValue, Error> {
        if t == SignalType::Vpdq {
            return Ok(SignalValue::Vpdq(parse_vpdq(value)?.into()));
        }
        if t == SignalType::PhotoDna {
            return Ok(SignalValue::PhotoDna(Box::new(parse_photodna(value)?)));
        }
        if t == SignalType::Url {
            return Ok(SignalValue::Url(parse_url(value)?.into()));
        }
        let v = t.normalize(value)?;
        // `normalize` guarantees the length and the hex digits, so decoding cannot fail.
        Ok(match t {
            SignalType::Pdq => SignalValue::Pdq(PdqHash::from_hex(&v).expect("validated hex")),
            SignalType::Md5 => SignalValue::Md5(hex_array(&v)),
            SignalType::Sha1 => SignalValue::Sha1(hex_array(&v)),
            SignalType::Sha256 => SignalValue::Sha256(hex_array(&v)),
            SignalType::Vpdq | SignalType::PhotoDna | SignalType::Url => {
                unreachable!("parsed above")
            }
        })
    }

    /// Parses a value already in canonical form (lower-case hex of the right length, as the
    /// store holds them) without allocating; anything else falls back to [`SignalValue::parse`].
    pub fn parse_canonical(t: SignalType, value: &str) -> Result<SignalValue, Error> {
        fn decode<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
            if s.len() != 2 * N {
                return None;
            }
            let mut out = [0u8; N];
            for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
                let d = |c: u8| match c {
                    b'0'..=b'9' => Some(c - b'0'),
                    b'a'..=b'f' => Some(c - b'a' + 10),
                    _ => None,
                };
                *o = (d(pair[0])? << 4) | d(pair[1])?;
            }
            Some(out)
        }
        let b = value.as_bytes();
        let fast = match t {
            SignalType::Pdq => decode::<32>(b).map(|h| SignalValue::Pdq(PdqHash(h))),
            SignalType::Md5 => decode::<16>(b).map(SignalValue::Md5),
            SignalType::Sha1 => decode::<20>(b).map(SignalValue::Sha1),
            SignalType::Sha256 => decode::<32>(b).map(SignalValue::Sha256),
            // A stored URL is canonicalised again: a check that costs about a microsecond.
            SignalType::Vpdq | SignalType::Url => None,
            SignalType::PhotoDna => decode::<{ crate::photodna::PHOTODNA_LEN }>(b)
                .map(|v| SignalValue::PhotoDna(Box::new(v))),
        };
        match fast {
            Some(v) => Ok(v),
            None => SignalValue::parse(t, value),
        }
    }

    /// Its type.
    pub fn signal_type(&self) -> SignalType {
        match self {
            SignalValue::Pdq(_) => SignalType::Pdq,
            SignalValue::Md5(_) => SignalType::Md5,
            SignalValue::Sha1(_) => SignalType::Sha1,
            SignalValue::Sha256(_) => SignalType::Sha256,
            SignalValue::Vpdq(_) => SignalType::Vpdq,
            SignalValue::PhotoDna(_) => SignalType::PhotoDna,
            SignalValue::Url(_) => SignalType::Url,
        }
    }

    /// Canonical text form (lower-case hex; for vPDQ python-threatexchange's JSON list).
    pub fn to_text(&self) -> String {
        match self {
            SignalValue::Vpdq(f) => safeguard_vpdq::format::to_json(f),
            SignalValue::Pdq(h) => h.to_hex(),
            SignalValue::Md5(d) => to_hex(d),
            SignalValue::Sha1(d) => to_hex(d),
            SignalValue::Sha256(d) => to_hex(d),
            SignalValue::PhotoDna(v) => crate::photodna::format_photodna(v),
            SignalValue::Url(u) => u.to_string(),
        }
    }
}

fn hex_array<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        // Callers pass validated hex of length 2N.
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("validated hex");
    }
    out
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Cuts user input quoted back in error messages to a readable length.
pub(crate) fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        for t in SignalType::ALL {
            assert_eq!(SignalType::parse(t.name()).unwrap(), t);
        }
        assert_eq!(SignalType::parse("video_md5").unwrap(), SignalType::Md5);
        assert_eq!(SignalType::parse("pdna").unwrap(), SignalType::PhotoDna);
        assert!(matches!(
            SignalType::parse("tmk_pdqf"),
            Err(Error::UnknownSignalType(_))
        ));
    }

    #[test]
    fn canonical_parsing_agrees_with_full_parsing() {
        for (t, v) in [
            (
                SignalType::Pdq,
                "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",
            ),
            (SignalType::Md5, "d41d8cd98f00b204e9800998ecf8427e"),
            (SignalType::Sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            (SignalType::Md5, "D41D8CD98F00B204E9800998ECF8427E"),
        ] {
            assert_eq!(
                SignalValue::parse_canonical(t, v).unwrap(),
                SignalValue::parse(t, v).unwrap()
            );
        }
        assert!(SignalValue::parse_canonical(SignalType::Md5, "zz").is_err());
    }

    #[test]
    fn vpdq_values_are_validated_and_normalised() {
        let h = "F8F8F0CEE0F4A84F06370A22038F63F0B36E2ED596621E1D33E6B39C4E9C9B22";
        let lower = h.to_ascii_lowercase();
        // HMA's compact JSON form, and the reference CLI's lines, both normalise to the
        // canonical JSON.
        let canonical = format!("[\"{lower},100,0.0\", \"{lower},49,1.0\"]");
        for input in [
            format!("[\"{h},100,0.0\",\"{h},49,1.000\"]"),
            format!("0,100,{h},0.000\n30,49,{h},1.000\n"),
        ] {
            assert_eq!(SignalType::Vpdq.normalize(&input).unwrap(), canonical);
            let v = SignalValue::parse(SignalType::Vpdq, &input).unwrap();
            assert_eq!(v.to_text(), canonical);
            assert_eq!(v.signal_type(), SignalType::Vpdq);
            // The canonical form drops frame numbers (pytx has none), nothing else.
            let c = SignalValue::parse_canonical(SignalType::Vpdq, &canonical).unwrap();
            assert_eq!(c.to_text(), canonical);
        }
        for bad in ["[]", "", "[\"x\"]", "{}", "not json"] {
            assert!(
                matches!(
                    SignalValue::parse(SignalType::Vpdq, bad),
                    Err(Error::InvalidSignal {
                        signal_type: "vpdq",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        assert_eq!(SignalType::parse("vpdq").unwrap(), SignalType::Vpdq);
        assert!(SignalType::Vpdq.is_video() && !SignalType::Vpdq.is_fuzzy());
    }

    #[test]
    fn url_values_are_entry_expressions() {
        let v = SignalValue::parse(SignalType::Url, " HTTP://www.Example.com/a/../b/?\n").unwrap();
        assert_eq!(v, SignalValue::Url("www.example.com/b/".into()));
        assert_eq!(v.to_text(), "www.example.com/b/");
        assert_eq!(v.signal_type(), SignalType::Url);
        assert_eq!(
            SignalValue::parse_canonical(SignalType::Url, &v.to_text()).unwrap(),
            v
        );
        assert_eq!(SignalType::parse("url").unwrap(), SignalType::Url);
        for bad in ["", "mailto:someone@example.com", "http:///nohost"] {
            assert!(
                matches!(
                    SignalValue::parse(SignalType::Url, bad),
                    Err(Error::InvalidSignal {
                        signal_type: "url",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn values_are_validated_and_normalised() {
        let h = "F8F8F0CEE0F4A84F06370A22038F63F0B36E2ED596621E1D33E6B39C4E9C9B22";
        let v = SignalValue::parse(SignalType::Pdq, &format!(" {h}\n")).unwrap();
        assert_eq!(v.to_text(), h.to_ascii_lowercase());
        assert!(SignalValue::parse(SignalType::Md5, "abc").is_err());
        assert!(SignalValue::parse(SignalType::Md5, &"g".repeat(32)).is_err());
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        assert_eq!(
            SignalValue::parse(SignalType::Md5, md5).unwrap().to_text(),
            md5
        );
        assert!(SignalValue::parse(SignalType::Sha1, &"a".repeat(40)).is_ok());
        assert!(SignalValue::parse(SignalType::Sha256, &"a".repeat(63)).is_err());
    }
}
