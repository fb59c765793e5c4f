//! Message text: normalisation against obfuscation, and the pattern lists matched over it.
//!
//! Normalisation turns text into a *squeezed skeleton*, the same function applied to the
//! pattern phrases and to messages, so that the two meet whatever the writer did:
//!
//! 1. non-ASCII characters are folded to ASCII look-alikes by `decancer` (confusables and
//!    homoglyphs such as Cyrillic `о` for `o`, full-width `ｓ`, mathematical and enclosed
//!    letters, diacritics), one character at a time so that no input can make it fail;
//! 2. leetspeak digits and symbols become the letters they stand for (`0`→o, `1`→i, `3`→e,
//!    `4`→a, `5`→s, `7`→t, `8`→b, `@`→a, `$`→s, `!`→i, `|`→i, `+`→t), and upper case
//!    becomes lower;
//! 3. `l` is folded into `i` (so `1`, `l`, `I` and `|` all meet, whichever one the writer
//!    meant);
//! 4. everything that is not a letter (spaces, punctuation, other digits, emoji) is dropped,
//!    so `s n a p`, `s.n.a.p` and `s_n_a_p` all read `snap`;
//! 5. runs of one letter collapse to one (`seeecret` reads like `secret`; `keep` becomes
//!    `kep` on both sides).
//!
//! Dropping word boundaries is what defeats inserted spaces; its price is that a phrase can
//! match across two words, which is why the lists hold phrases (`our secret`) rather than
//! single words. Matching is one Aho-Corasick pass over the skeleton, overlapping, so every
//! category present is found.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The pattern file shipped with the crate, used when no other is configured.
pub const DEFAULT_PATTERNS: &str = include_str!("../patterns/default.toml");

/// Most phrases in one pattern file: enough for several languages' worth of lists, small
/// enough that building the automaton stays in milliseconds.
pub const MAX_PHRASES: usize = 10_000;

/// Longest phrase, in bytes.
pub const MAX_PHRASE_BYTES: usize = 200;

/// Shortest phrase skeleton, in letters: shorter ones would match inside ordinary words.
pub const MIN_PHRASE_LETTERS: usize = 4;

/// A lexical category of the pattern lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Asking to move to another app, or to an encrypted one.
    OffPlatform,
    /// Asking to keep the contact secret from parents or friends.
    Secrecy,
    /// Asking for a photo or a video of the child.
    ImageRequest,
    /// Offering gifts, money, game currency, gift cards.
    Gifts,
    /// Asking the child's age or school year.
    AgeQuestion,
    /// Asking to meet in person, or where the child lives.
    Meeting,
}

impl Category {
    /// Every category, in the order of their bits.
    pub const ALL: [Category; 6] = [
        Category::OffPlatform,
        Category::Secrecy,
        Category::ImageRequest,
        Category::Gifts,
        Category::AgeQuestion,
        Category::Meeting,
    ];

    /// The stable name, as in the pattern file.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::OffPlatform => "off_platform",
            Category::Secrecy => "secrecy",
            Category::ImageRequest => "image_request",
            Category::Gifts => "gifts",
            Category::AgeQuestion => "age_question",
            Category::Meeting => "meeting",
        }
    }

    /// The category's bit in a [`Categories`] set.
    pub const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of categories, as bits ([`Category::bit`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Categories(pub u8);

impl Categories {
    /// Whether `c` is in the set.
    pub fn contains(self, c: Category) -> bool {
        self.0 & c.bit() != 0
    }

    /// The categories in the set, in [`Category::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Category> {
        Category::ALL.into_iter().filter(move |c| self.contains(*c))
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// The pattern file: one list of phrases per category. Unknown keys are refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PatternSpec {
    /// See [`Category::OffPlatform`].
    pub off_platform: Vec<String>,
    /// See [`Category::Secrecy`].
    pub secrecy: Vec<String>,
    /// See [`Category::ImageRequest`].
    pub image_request: Vec<String>,
    /// See [`Category::Gifts`].
    pub gifts: Vec<String>,
    /// See [`Category::AgeQuestion`].
    pub age_question: Vec<String>,
    /// See [`Category::Meeting`].
    pub meeting: Vec<String>,
}

impl PatternSpec {
    fn lists(&self) -> [(Category, &[String]); 6] {
        [
            (Category::OffPlatform, &self.off_platform),
            (Category::Secrecy, &self.secrecy),
            (Category::ImageRequest, &self.image_request),
            (Category::Gifts, &self.gifts),
            (Category::AgeQuestion, &self.age_question),
            (Category::Meeting, &self.meeting),
        ]
    }
}

/// The compiled pattern lists: one automaton over every phrase's skeleton.
#[derive(Debug, Clone)]
pub struct PatternSet {
    /// `None` when there are no phrases.
    automaton: Option<AhoCorasick>,
    /// The category of each pattern, by pattern id.
    categories: Vec<Category>,
}

impl PatternSet {
    /// The shipped lists ([`DEFAULT_PATTERNS`]).
    pub fn default_set() -> PatternSet {
        // The shipped file is checked by a unit test (`the_default_file_compiles`), so this
        // cannot fail in a released build; fall back to an empty set rather than panic.
        PatternSet::from_toml(DEFAULT_PATTERNS).unwrap_or_else(|_| PatternSet::empty())
    }

    /// A set matching nothing.
    pub fn empty() -> PatternSet {
        PatternSet {
            automaton: None,
            categories: Vec::new(),
        }
    }

    /// Parses and compiles a pattern file's text (the caller reads the file).
    pub fn from_toml(text: &str) -> Result<PatternSet, Error> {
        let spec: PatternSpec = toml::from_str(text).map_err(|e| Error::patterns(e.to_string()))?;
        PatternSet::new(&spec)
    }

    /// Compiles the lists.
    pub fn new(spec: &PatternSpec) -> Result<PatternSet, Error> {
        let mut skeletons = Vec::new();
        let mut categories = Vec::new();
        let mut buf = String::new();
        for (category, phrases) in spec.lists() {
            for (i, phrase) in phrases.iter().enumerate() {
                let at = format!("`{}[{i}]`", category.as_str());
                if phrase.len() > MAX_PHRASE_BYTES {
                    return Err(Error::patterns(format!(
                        "{at} is {} bytes; at most {MAX_PHRASE_BYTES}",
                        phrase.len()
                    )));
                }
                skeleton(phrase, &mut buf);
                if buf.len() < MIN_PHRASE_LETTERS {
                    return Err(Error::patterns(format!(
                        "{at} `{}` has {} letters after normalisation; at least \
                         {MIN_PHRASE_LETTERS} are needed so that it does not match inside \
                         ordinary words",
                        crate::short(phrase),
                        buf.len()
                    )));
                }
                skeletons.push(buf.clone());
                categories.push(category);
            }
        }
        if skeletons.len() > MAX_PHRASES {
            return Err(Error::patterns(format!(
                "{} phrases; at most {MAX_PHRASES}",
                skeletons.len()
            )));
        }
        if skeletons.is_empty() {
            return Ok(PatternSet::empty());
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&skeletons)
            .or_else(|_| {
                // A DFA over very many phrases can exceed the builder's size limit; the
                // contiguous NFA has none to speak of and matches the same.
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build(&skeletons)
            })
            .map_err(|e| Error::patterns(format!("cannot build the matcher: {e}")))?;
        Ok(PatternSet {
            automaton: Some(automaton),
            categories,
        })
    }

    /// How many phrases the set holds.
    pub fn len(&self) -> usize {
        self.categories.len()
    }

    /// Whether the set holds no phrase.
    pub fn is_empty(&self) -> bool {
        self.categories.is_empty()
    }

    /// The categories whose phrases occur in `text`; `scratch` is reused between calls to
    /// avoid allocating.
    pub fn scan(&self, text: &str, scratch: &mut String) -> Categories {
        skeleton(text, scratch);
        self.scan_skeleton(scratch)
    }

    /// Like [`PatternSet::scan`] for text already normalised with [`skeleton`].
    pub fn scan_skeleton(&self, skeleton: &str) -> Categories {
        let mut found = 0u8;
        let Some(automaton) = &self.automaton else {
            return Categories(0);
        };
        for m in automaton.find_overlapping_iter(skeleton) {
            found |= self.categories[m.pattern().as_usize()].bit();
        }
        Categories(found)
    }
}

/// Maps one ASCII character to its letter (leetspeak and case folded), or `None` to drop it.
fn ascii_letter(b: u8) -> Option<u8> {
    let c = match b {
        b'a'..=b'z' => b,
        b'A'..=b'Z' => b.to_ascii_lowercase(),
        b'0' => b'o',
        b'1' | b'!' | b'|' => b'i',
        b'3' => b'e',
        b'4' | b'@' => b'a',
        b'5' | b'$' => b's',
        b'7' | b'+' => b't',
        b'8' => b'b',
        _ => return None,
    };
    // `l` and `i` are one letter here (`1`, `l`, `I`, `|` all read alike).
    Some(if c == b'l' { b'i' } else { c })
}

/// Writes the squeezed skeleton of `text` into `out` (cleared first); see the module docs.
pub fn skeleton(text: &str, out: &mut String) {
    out.clear();
    let mut last = 0u8;
    let mut push = |b: u8, out: &mut String| {
        if let Some(c) = ascii_letter(b) {
            if c != last {
                out.push(c as char);
                last = c;
            }
        }
    };
    if text.is_ascii() {
        for &b in text.as_bytes() {
            push(b, out);
        }
        return;
    }
    let options = decancer::Options::default();
    for ch in text.chars() {
        if ch.is_ascii() {
            push(ch as u8, out);
            continue;
        }
        match decancer::cure_char(ch, options) {
            decancer::Translation::Character(c) => {
                if c.is_ascii() {
                    push(c as u8, out);
                }
            }
            decancer::Translation::String(s) => {
                for b in s.bytes() {
                    push(b, out);
                }
            }
            decancer::Translation::None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sk(s: &str) -> String {
        let mut out = String::new();
        skeleton(s, &mut out);
        out
    }

    fn set(category: &str, phrases: &[&str]) -> PatternSet {
        let quoted: Vec<String> = phrases.iter().map(|p| format!("{p:?}")).collect();
        PatternSet::from_toml(&format!("{category} = [{}]", quoted.join(", "))).unwrap()
    }

    #[test]
    fn the_default_file_compiles_with_every_category() {
        let spec: PatternSpec = toml::from_str(DEFAULT_PATTERNS).unwrap();
        for (category, list) in spec.lists() {
            assert!(list.len() >= 3, "{}", category.as_str());
        }
        let set = PatternSet::from_toml(DEFAULT_PATTERNS).unwrap();
        assert!(set.len() > 30);
        assert_eq!(PatternSet::default_set().len(), set.len());
    }

    #[test]
    fn skeleton_folds_case_spacing_punctuation_and_repeats() {
        assert_eq!(sk("Keep It Secret"), sk("keepitsecret"));
        assert_eq!(sk("k e e p . i t _ s e c r e t !!"), sk("keep it secret i"));
        assert_eq!(sk("seeeecret"), sk("secret"));
        assert_eq!(sk("hello"), "heio");
        assert_eq!(sk(""), "");
        assert_eq!(
            sk("12:30 🙂"),
            "ieo",
            "digits read as leetspeak, emoji dropped"
        );
    }

    #[test]
    fn skeleton_undoes_leetspeak() {
        assert_eq!(sk("s3cr3t"), sk("secret"));
        assert_eq!(sk("t3l3gr4m"), sk("telegram"));
        assert_eq!(sk("$n@pch@t"), sk("snapchat"));
        assert_eq!(sk("ph0t0"), sk("photo"));
        assert_eq!(sk("te1egram"), sk("telegram"), "1 for l");
    }

    #[test]
    fn skeleton_undoes_confusables_and_full_width() {
        // Cyrillic о, е, с, р in place of Latin letters.
        assert_eq!(sk("s\u{0435}\u{0441}r\u{0435}t"), sk("secret"));
        // Full-width letters and a full-width space.
        assert_eq!(sk("ｓｅｃｒｅｔ\u{3000}ｃｈａｔ"), sk("secret chat"));
        // Mathematical bold and circled letters.
        assert_eq!(sk("𝐬𝐧𝐚𝐩"), sk("snap"));
        assert_eq!(sk("ⓢⓝⓐⓟ"), sk("snap"));
        // Accents.
        assert_eq!(sk("sécrét"), sk("secret"));
    }

    #[test]
    fn an_obfuscated_phrase_is_still_found() {
        let set = set("secrecy", &["don't tell your parents"]);
        let mut scratch = String::new();
        // Confusables (Cyrillic о), full-width letters, leetspeak and inserted spaces, all
        // at once.
        let text = "ok but d\u{043E}n t  ｔｅｌｌ  y 0 u r   p@r3nt5 ok?";
        assert!(set.scan(text, &mut scratch).contains(Category::Secrecy));
        assert!(set
            .scan("D.O.N.T T.E.L.L Y.O.U.R P.A.R.E.N.T.S", &mut scratch)
            .contains(Category::Secrecy));
        assert!(set
            .scan("tell your parents about it", &mut scratch)
            .is_empty());
    }

    #[test]
    fn every_category_of_the_default_file_is_found_in_plain_and_obfuscated_text() {
        let set = PatternSet::default_set();
        let mut scratch = String::new();
        let cases = [
            (
                Category::OffPlatform,
                "lets move to another app",
                "l3ts m0ve t0 ａｎｏｔｈｅｒ app",
            ),
            (
                Category::Secrecy,
                "this is our secret",
                "th1s is 0ur s\u{0435}cr3t",
            ),
            (
                Category::ImageRequest,
                "can you send me a photo",
                "c@n u s3nd m3 a ph0t0",
            ),
            (
                Category::Gifts,
                "i can buy you a gift card",
                "i c4n buy y0u a g1ft c@rd",
            ),
            (
                Category::AgeQuestion,
                "how old are you",
                "h o w  o l d  a r e  y o u",
            ),
            (
                Category::Meeting,
                "we should meet up",
                "we sh0uld ｍｅｅｔ up",
            ),
        ];
        for (category, plain, obfuscated) in cases {
            for text in [plain, obfuscated] {
                let found = set.scan(text, &mut scratch);
                assert!(found.contains(category), "{text:?} → {found:?}");
            }
        }
        let benign = [
            "see you at practice tomorrow",
            "did you finish the maths homework",
            "good game everyone, well played",
            "dinner is at six",
        ];
        for text in benign {
            assert!(set.scan(text, &mut scratch).is_empty(), "{text:?}");
        }
    }

    #[test]
    fn several_categories_in_one_message_are_all_found() {
        let set = PatternSet::default_set();
        let mut scratch = String::new();
        let found = set.scan("how old are you? this is our secret", &mut scratch);
        assert!(found.contains(Category::AgeQuestion));
        assert!(found.contains(Category::Secrecy));
        assert_eq!(found.iter().count(), 2);
    }

    #[test]
    fn bad_pattern_files_are_refused() {
        for (text, want) in [
            ("colours = [\"red\"]", "unknown field"),
            ("secrecy = [\"ab\"]", "letters after normalisation"),
            ("secrecy = [\"!!!\"]", "letters after normalisation"),
            ("secrecy = \"one\"", "invalid type"),
        ] {
            let e = PatternSet::from_toml(text).unwrap_err();
            assert_eq!(e.code(), "invalid_patterns");
            assert!(e.to_string().contains(want), "{text}: {e}");
        }
        let long = format!("secrecy = [\"{}\"]", "a".repeat(MAX_PHRASE_BYTES + 1));
        assert!(PatternSet::from_toml(&long).is_err());
    }

    #[test]
    fn an_empty_set_matches_nothing() {
        let set = PatternSet::empty();
        assert!(set.is_empty());
        assert!(set.scan("our secret", &mut String::new()).is_empty());
    }
}
