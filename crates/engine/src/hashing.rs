//! Media bytes to signals: the decode and hash step of uploads and URL fetches.

use safeguard_media::Limits;
use safeguard_pdq::{Hasher, PdqHash};

use crate::signal::{SignalType, SignalValue};
use crate::Error;

/// Every signal Safeguard computes from one image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedMedia {
    /// PDQ hash.
    pub pdq: PdqHash,
    /// PDQ quality (0..=100).
    pub quality: u8,
    /// MD5 of the bytes.
    pub md5: [u8; 16],
    /// SHA-1 of the bytes.
    pub sha1: [u8; 20],
    /// SHA-256 of the bytes.
    pub sha256: [u8; 32],
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl HashedMedia {
    /// The signals to look up or store, in [`SignalType::ALL`] order.
    pub fn signals(&self) -> Vec<SignalValue> {
        vec![
            SignalValue::Pdq(self.pdq),
            SignalValue::Md5(self.md5),
            SignalValue::Sha1(self.sha1),
            SignalValue::Sha256(self.sha256),
        ]
    }

    /// The value of one signal type, as text; empty for vPDQ, which images do not have, for
    /// PhotoDNA, which only the operator's plug-in computes (in the server), and for URLs.
    pub fn text(&self, t: SignalType) -> String {
        match t {
            SignalType::Vpdq | SignalType::PhotoDna | SignalType::Url => return String::new(),
            SignalType::Pdq => SignalValue::Pdq(self.pdq),
            SignalType::Md5 => SignalValue::Md5(self.md5),
            SignalType::Sha1 => SignalValue::Sha1(self.sha1),
            SignalType::Sha256 => SignalValue::Sha256(self.sha256),
        }
        .to_text()
    }
}

/// Decodes and hashes an image file (bank-compatible PDQ, plus digests). CPU-heavy: async
/// callers run it on a blocking thread.
pub fn hash_media(bytes: &[u8], limits: &Limits) -> Result<HashedMedia, Error> {
    let decoded = safeguard_media::decode(bytes, limits)?;
    let img = &decoded.image;
    let out = Hasher::new()
        .hash_rgb(&img.data, img.width as usize, img.height as usize)
        .map_err(|e| Error::Invalid(format!("internal hashing error: {e}")))?;
    let d = safeguard_media::digest::digests(bytes);
    Ok(HashedMedia {
        pdq: out.hash,
        quality: out.quality,
        md5: d.md5,
        sha1: d.sha1,
        sha256: d.sha256,
        width: img.width,
        height: img.height,
    })
}
