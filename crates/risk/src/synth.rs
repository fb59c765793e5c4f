//! A generator of synthetic, labelled contact streams for evaluating the scorer.
//!
//! It scripts who contacts whom, when, on which channel and with what plain description of
//! behaviour: risky adult-to-minor patterns on one side (a fan-out to many unconnected
//! minors; a first contact followed by a quick move to private, then requests for secrecy,
//! to move apps, for a photo, questions about age, offers of gifts, requests to meet; the
//! same with the text obfuscated; the same with no text at all, as an end-to-end encrypted
//! service would send it), and benign patterns on the other (teens among themselves, parents
//! and their children, a teacher and a class, a gaming team with an adult coach, adults
//! among themselves), with noise: missing age bands, missing connection flags, benign
//! messages that share words with the risky lists.
//!
//! The text is short descriptions of behaviour only ("asks to move to another app", "can you
//! send me a photo of the homework"), never anything sexual. Streams are deterministic for a
//! seed (SplitMix64, written out here so that a seed means the same stream on every
//! platform and version).
//!
//! What the generator cannot show is how real conversations look: the scripts are the
//! author's idea of the patterns, so figures measured on them say that the features and
//! thresholds do what they were designed to do, not how well they would do on a platform.

use safeguard_contact::AgeBand;
use serde::{Deserialize, Serialize};

use crate::event::{Channel, Event, EventKind};

/// 2026-01-01T00:00:00Z: where generated streams start.
pub const EPOCH: u64 = 1_767_225_600;

/// SplitMix64: a tiny, fast, well-mixed generator with a documented output sequence.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Which script an account's events came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptKind {
    /// Risky: an adult contacts many unconnected minors within the hour, moves some to
    /// private, asks their ages.
    FanOut,
    /// Risky: an adult contacts one to three minors, moves to private within the hour, and
    /// over the next day or two asks for secrecy, a photo, to move apps, offers gifts.
    Grooming,
    /// Risky: the grooming script with its requests obfuscated (confusables, full-width
    /// letters, leetspeak, inserted spaces).
    GroomingObfuscated,
    /// Risky: the grooming script as an end-to-end encrypted service reports it: no text,
    /// only who, when, which channel, gifts and images.
    GroomingMetadataOnly,
    /// Benign: a teen chatting with other teens, some unconnected, with the same words
    /// ("add me on snap", "don't tell anyone about the party").
    TeenPeers,
    /// Benign: a parent and their children, connected, at all hours, with requests for
    /// photos (of a receipt) and secrets (a surprise).
    Family,
    /// Benign: a teacher and a class, connected, mostly public, in the daytime, asking for
    /// photos of projects.
    Teacher,
    /// Benign: an adult coach with a teen gaming team, partly unconnected at first, asking
    /// them to join the team's other app, late evenings, prize gift cards.
    GamingTeam,
    /// Benign: adults among themselves, with every kind of phrase.
    AdultPeers,
}

impl ScriptKind {
    /// Every kind.
    pub const ALL: [ScriptKind; 9] = [
        ScriptKind::FanOut,
        ScriptKind::Grooming,
        ScriptKind::GroomingObfuscated,
        ScriptKind::GroomingMetadataOnly,
        ScriptKind::TeenPeers,
        ScriptKind::Family,
        ScriptKind::Teacher,
        ScriptKind::GamingTeam,
        ScriptKind::AdultPeers,
    ];

    /// Whether the script is a risky pattern (its main account is a positive).
    pub const fn is_risky(self) -> bool {
        matches!(
            self,
            ScriptKind::FanOut
                | ScriptKind::Grooming
                | ScriptKind::GroomingObfuscated
                | ScriptKind::GroomingMetadataOnly
        )
    }

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ScriptKind::FanOut => "fan_out",
            ScriptKind::Grooming => "grooming",
            ScriptKind::GroomingObfuscated => "grooming_obfuscated",
            ScriptKind::GroomingMetadataOnly => "grooming_metadata_only",
            ScriptKind::TeenPeers => "teen_peers",
            ScriptKind::Family => "family",
            ScriptKind::Teacher => "teacher",
            ScriptKind::GamingTeam => "gaming_team",
            ScriptKind::AdultPeers => "adult_peers",
        }
    }
}

/// The main account of one script, and whether it is a positive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// The account.
    pub account: String,
    /// Its script.
    pub script: ScriptKind,
    /// Whether the account is risky (the script's kind is).
    pub risky: bool,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSpec {
    /// The seed: the same seed gives the same stream.
    pub seed: u64,
    /// Risky scripts, spread over the four risky kinds.
    pub risky: usize,
    /// Benign scripts, spread over the five benign kinds.
    pub benign: usize,
    /// Days the stream spans.
    pub days: u32,
    /// Probability that an age band is missing or `unknown` (noise).
    pub missing_age: f64,
    /// Probability that an event leaves out the `connected` flag (noise).
    pub missing_connected: f64,
    /// Probability that a risky request in a grooming script is written in words the shipped
    /// pattern lists do not hold ([`RISKY_PARAPHRASED`]), as a careful groomer would: the
    /// case the optional semantic model is for. 0 (the default) leaves the stream as it was.
    pub paraphrased: f64,
}

impl Default for SynthSpec {
    fn default() -> SynthSpec {
        SynthSpec {
            seed: 17,
            risky: 200,
            benign: 2_000,
            days: 14,
            missing_age: 0.1,
            missing_connected: 0.05,
            paraphrased: 0.0,
        }
    }
}

/// A generated stream, in time order, with the labels of the scripts' main accounts.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The events, sorted by timestamp.
    pub events: Vec<Event>,
    /// One label per script.
    pub labels: Vec<Label>,
}

/// Neutral openers and small talk.
const SMALL_TALK: &[&str] = &[
    "hi, nice game",
    "good match today",
    "that level was hard",
    "what are you playing",
    "lol same",
    "see you later",
    "cool drawing",
    "nice goal in the last round",
];

/// Risky requests, by the category they belong to: plain descriptions of behaviour.
const RISKY: &[&str] = &[
    "how old are you",
    "what year are you in at school",
    "this is our secret, dont tell your parents",
    "keep this between us ok",
    "lets move to another app, add me on telegram",
    "download signal so we can talk",
    "can you send me a photo of yourself",
    "send me a selfie",
    "i can buy you a gift card",
    "want free robux? i can send you some",
    "where do you live",
    "we should meet up sometime",
];

/// The same requests in words no shipped pattern holds (a test checks that none matches), and
/// that are not among the semantic model's shipped examples either.
pub const RISKY_PARAPHRASED: &[&str] = &[
    "you seem really mature, what grade is that",
    "lets continue this where the mods cant read it",
    "nobody else has to find out that we talk",
    "take a pic of you and post it to me",
    "ill top up your game account for you",
    "which town are you in",
    "we could hang out for real one day",
    "wipe this conversation when we are done",
    "do you have an account on another messenger",
    "is your mum around when you play",
];

/// Benign messages that share words with the risky lists.
const TEEN_TALK: &[&str] = &[
    "add me on snap",
    "dont tell anyone about the surprise party",
    "send me a pic of the homework",
    "how old is your brother",
    "lets meet up at the park after school",
    "our secret handshake is the best",
];

const FAMILY_TALK: &[&str] = &[
    "what time are you home",
    "send me a photo of the receipt",
    "dont tell your dad about the birthday surprise",
    "i sent you money for lunch",
    "dinner is at six",
    "i can pick you up after practice",
];

const TEACHER_TALK: &[&str] = &[
    "send a photo of your project for the class page",
    "homework is due on friday",
    "what year are you in next term",
    "great work today",
    "the trip form is on the website",
];

const COACH_TALK: &[&str] = &[
    "add me on discord for team practice",
    "good game everyone",
    "practice is at eight tonight",
    "the winner gets a gift card from the league",
    "who can play on saturday",
];

const ADULT_TALK: &[&str] = &[
    "how old are you turning this year",
    "keep this between us, the surprise party is on friday",
    "send me a photo of the car",
    "lets meet up for lunch",
    "add me on whatsapp",
];

/// Obfuscates `text` the ways the normaliser is meant to undo: leetspeak, Cyrillic
/// look-alikes, full-width letters, and spaces or dots between letters.
pub fn obfuscate(text: &str, rng: &mut Rng) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for ch in text.chars() {
        let c = match rng.below(6) {
            0 => match ch {
                'o' => '0',
                'e' => '3',
                'a' => '4',
                's' => '5',
                'i' => '1',
                't' => '7',
                c => c,
            },
            1 => match ch {
                'a' => '\u{0430}',
                'e' => '\u{0435}',
                'o' => '\u{043E}',
                'c' => '\u{0441}',
                'p' => '\u{0440}',
                'x' => '\u{0445}',
                c => c,
            },
            2 if ch.is_ascii_alphabetic() => char::from_u32(ch as u32 + 0xFEE0).unwrap_or(ch),
            _ => ch,
        };
        out.push(c);
        if ch.is_ascii_alphabetic() && rng.chance(0.3) {
            out.push(if rng.chance(0.5) { ' ' } else { '.' });
        }
    }
    out
}

struct Gen<'a> {
    spec: &'a SynthSpec,
    rng: Rng,
    events: Vec<Event>,
    next_id: u64,
}

const MINOR_BANDS: [AgeBand; 3] = [AgeBand::Under13, AgeBand::From13To15, AgeBand::From16To17];
const TEEN_BANDS: [AgeBand; 2] = [AgeBand::From13To15, AgeBand::From16To17];

struct Msg<'t> {
    kind: EventKind,
    actor: &'t str,
    actor_age: AgeBand,
    target: &'t str,
    target_age: AgeBand,
    at: u64,
    connected: bool,
    channel: Channel,
    text: Option<String>,
}

impl Gen<'_> {
    /// A band as the platform would send it: sometimes missing or `unknown`.
    fn band(&mut self, b: AgeBand) -> Option<AgeBand> {
        if self.rng.chance(self.spec.missing_age) {
            if self.rng.chance(0.5) {
                None
            } else {
                Some(AgeBand::Unknown)
            }
        } else {
            Some(b)
        }
    }

    fn push(&mut self, m: Msg<'_>) {
        self.next_id += 1;
        let connected = if self.rng.chance(self.spec.missing_connected) {
            None
        } else {
            Some(m.connected)
        };
        let actor_age = self.band(m.actor_age);
        let target_age = self.band(m.target_age);
        self.events.push(Event {
            id: Some(format!("ev{}", self.next_id)),
            kind: m.kind,
            actor: m.actor.to_string(),
            target: m.target.to_string(),
            timestamp: m.at,
            actor_age,
            target_age,
            connected,
            channel: Some(m.channel),
            text: if m.kind == EventKind::Message {
                m.text
            } else {
                None
            },
        });
    }

    /// A time on `day` at a local hour in `lo..hi` (UTC here).
    fn at_hour(&mut self, day: u64, lo: u64, hi: u64) -> u64 {
        EPOCH + day * 86_400 + self.rng.range(lo * 3600, hi * 3600 - 1)
    }

    fn start(&mut self) -> u64 {
        let day = self.rng.below(u64::from(self.spec.days.max(1)));
        self.at_hour(day, 8, 22)
    }

    fn fan_out(&mut self, n: usize) -> Label {
        let a = format!("fanout-{n}");
        let t0 = self.start();
        let k = self.rng.range(5, 12);
        for i in 0..k {
            let m = format!("fanout-{n}-m{i}");
            let band = *self.rng.pick(&MINOR_BANDS);
            let at = t0 + self.rng.below(40 * 60);
            let kind = if self.rng.chance(0.5) {
                EventKind::ConnectionRequest
            } else {
                EventKind::Message
            };
            let text = Some(self.rng.pick(SMALL_TALK).to_string());
            self.push(Msg {
                kind,
                actor: &a,
                actor_age: AgeBand::Adult,
                target: &m,
                target_age: band,
                at,
                connected: false,
                channel: Channel::Public,
                text,
            });
            if self.rng.chance(0.4) {
                let at2 = at + self.rng.range(120, 1800);
                let text = Some(self.rng.pick(&RISKY[..2]).to_string());
                self.push(Msg {
                    kind: EventKind::Message,
                    actor: &a,
                    actor_age: AgeBand::Adult,
                    target: &m,
                    target_age: band,
                    at: at2,
                    connected: false,
                    channel: Channel::Private,
                    text,
                });
            }
            if self.rng.chance(0.15) {
                let kind = if self.rng.chance(0.5) {
                    EventKind::Block
                } else {
                    EventKind::Report
                };
                let at3 = at + self.rng.range(300, 7200);
                self.push(Msg {
                    kind,
                    actor: &m,
                    actor_age: band,
                    target: &a,
                    target_age: AgeBand::Adult,
                    at: at3,
                    connected: false,
                    channel: Channel::Private,
                    text: None,
                });
            }
        }
        Label {
            account: a,
            script: ScriptKind::FanOut,
            risky: true,
        }
    }

    fn grooming(&mut self, n: usize, kind: ScriptKind) -> Label {
        let a = format!("{}-{n}", kind.as_str());
        let t0 = self.start();
        let victims = self.rng.range(1, 3);
        for v in 0..victims {
            let m = format!("{a}-m{v}");
            let band = *self.rng.pick(&MINOR_BANDS);
            let mut at = t0 + v * self.rng.range(600, 7200);
            let opener = if kind == ScriptKind::GroomingMetadataOnly {
                None
            } else {
                Some(self.rng.pick(SMALL_TALK).to_string())
            };
            self.push(Msg {
                kind: EventKind::Message,
                actor: &a,
                actor_age: AgeBand::Adult,
                target: &m,
                target_age: band,
                at,
                connected: false,
                channel: Channel::Public,
                text: opener,
            });
            if self.rng.chance(0.5) {
                self.push(Msg {
                    kind: EventKind::ConnectionRequest,
                    actor: &a,
                    actor_age: AgeBand::Adult,
                    target: &m,
                    target_age: band,
                    at: at + 30,
                    connected: false,
                    channel: Channel::Public,
                    text: None,
                });
                if self.rng.chance(0.6) {
                    let accepted = at + self.rng.range(60, 900);
                    self.push(Msg {
                        kind: EventKind::ConnectionAccept,
                        actor: &m,
                        actor_age: band,
                        target: &a,
                        target_age: AgeBand::Adult,
                        at: accepted,
                        connected: true,
                        channel: Channel::Public,
                        text: None,
                    });
                }
            }
            at += self.rng.range(300, 3000); // the quick move to private
            let steps = self.rng.range(4, 9);
            for _ in 0..steps {
                let text = match kind {
                    ScriptKind::GroomingMetadataOnly => None,
                    _ => {
                        let t = if self.rng.chance(0.65) {
                            // Drawn only when asked for, so the default stream is unchanged.
                            if self.spec.paraphrased > 0.0 && self.rng.chance(self.spec.paraphrased)
                            {
                                self.rng.pick(RISKY_PARAPHRASED).to_string()
                            } else {
                                self.rng.pick(RISKY).to_string()
                            }
                        } else {
                            self.rng.pick(SMALL_TALK).to_string()
                        };
                        Some(if kind == ScriptKind::GroomingObfuscated {
                            obfuscate(&t, &mut self.rng)
                        } else {
                            t
                        })
                    }
                };
                let ev = match self.rng.below(10) {
                    0 => EventKind::Gift,
                    1 => EventKind::Image,
                    _ => EventKind::Message,
                };
                self.push(Msg {
                    kind: ev,
                    actor: &a,
                    actor_age: AgeBand::Adult,
                    target: &m,
                    target_age: band,
                    at,
                    connected: false,
                    channel: Channel::Private,
                    text,
                });
                // Replies from the minor (not scored: minors' own messages raise nothing).
                if self.rng.chance(0.5) {
                    let reply = Some(self.rng.pick(SMALL_TALK).to_string());
                    self.push(Msg {
                        kind: EventKind::Message,
                        actor: &m,
                        actor_age: band,
                        target: &a,
                        target_age: AgeBand::Adult,
                        at: at + 60,
                        connected: false,
                        channel: Channel::Private,
                        text: reply,
                    });
                }
                // Mostly within hours, sometimes late at night.
                at += if self.rng.chance(0.3) {
                    let next_day = (at - EPOCH) / 86_400 + 1;
                    self.at_hour(next_day, 22, 24) - at
                } else {
                    self.rng.range(300, 4 * 3600)
                };
            }
            if self.rng.chance(0.15) {
                let k = if self.rng.chance(0.5) {
                    EventKind::Block
                } else {
                    EventKind::Report
                };
                self.push(Msg {
                    kind: k,
                    actor: &m,
                    actor_age: band,
                    target: &a,
                    target_age: AgeBand::Adult,
                    at: at + 600,
                    connected: false,
                    channel: Channel::Private,
                    text: None,
                });
            }
        }
        Label {
            account: a,
            script: kind,
            risky: true,
        }
    }

    fn teen_peers(&mut self, n: usize) -> Label {
        let a = format!("teen-{n}");
        let band = *self.rng.pick(&TEEN_BANDS);
        let t0 = self.start();
        let peers = self.rng.range(3, 8);
        for p in 0..peers {
            let m = format!("teen-{n}-p{p}");
            let pb = *self.rng.pick(&TEEN_BANDS);
            let connected = self.rng.chance(0.6);
            let mut at = t0 + p * self.rng.range(60, 3600);
            for _ in 0..self.rng.range(2, 6) {
                let text = if self.rng.chance(0.4) {
                    self.rng.pick(TEEN_TALK)
                } else {
                    self.rng.pick(SMALL_TALK)
                };
                let channel = if self.rng.chance(0.6) {
                    Channel::Private
                } else {
                    Channel::Public
                };
                self.push(Msg {
                    kind: EventKind::Message,
                    actor: &a,
                    actor_age: band,
                    target: &m,
                    target_age: pb,
                    at,
                    connected,
                    channel,
                    text: Some(text.to_string()),
                });
                at += self.rng.range(60, 6 * 3600);
            }
        }
        Label {
            account: a,
            script: ScriptKind::TeenPeers,
            risky: false,
        }
    }

    fn family(&mut self, n: usize) -> Label {
        let a = format!("parent-{n}");
        let kids = self.rng.range(1, 3);
        let t0 = self.start();
        for k in 0..kids {
            let m = format!("parent-{n}-child{k}");
            let band = *self.rng.pick(&MINOR_BANDS);
            let mut at = t0 + k * 300;
            for _ in 0..self.rng.range(3, 10) {
                let text = Some(self.rng.pick(FAMILY_TALK).to_string());
                let kind = match self.rng.below(12) {
                    0 => EventKind::Gift,
                    1 => EventKind::Image,
                    _ => EventKind::Message,
                };
                self.push(Msg {
                    kind,
                    actor: &a,
                    actor_age: AgeBand::Adult,
                    target: &m,
                    target_age: band,
                    at,
                    connected: true,
                    channel: Channel::Private,
                    text,
                });
                at += self.rng.range(600, 20 * 3600);
            }
        }
        Label {
            account: a,
            script: ScriptKind::Family,
            risky: false,
        }
    }

    fn teacher(&mut self, n: usize) -> Label {
        let a = format!("teacher-{n}");
        let class = self.rng.range(10, 25);
        let day = self.rng.below(u64::from(self.spec.days.max(1)));
        let band = *self.rng.pick(&MINOR_BANDS);
        for s in 0..class {
            let m = format!("teacher-{n}-s{s}");
            let at = self.at_hour(day, 9, 16);
            let text = Some(self.rng.pick(TEACHER_TALK).to_string());
            let channel = if self.rng.chance(0.8) {
                Channel::Public
            } else {
                Channel::Private
            };
            self.push(Msg {
                kind: EventKind::Message,
                actor: &a,
                actor_age: AgeBand::Adult,
                target: &m,
                target_age: band,
                at,
                connected: true,
                channel,
                text,
            });
        }
        Label {
            account: a,
            script: ScriptKind::Teacher,
            risky: false,
        }
    }

    fn gaming_team(&mut self, n: usize) -> Label {
        let a = format!("coach-{n}");
        let team = self.rng.range(4, 8);
        let t0 = self.start();
        for p in 0..team {
            let m = format!("coach-{n}-p{p}");
            let band = *self.rng.pick(&TEEN_BANDS);
            let mut at = t0 + p * self.rng.range(600, 4 * 3600);
            let connected = self.rng.chance(0.5);
            for _ in 0..self.rng.range(2, 5) {
                let text = Some(self.rng.pick(COACH_TALK).to_string());
                self.push(Msg {
                    kind: EventKind::Message,
                    actor: &a,
                    actor_age: AgeBand::Adult,
                    target: &m,
                    target_age: band,
                    at,
                    connected,
                    channel: Channel::Public,
                    text,
                });
                at += self.rng.range(3600, 30 * 3600);
            }
            if self.rng.chance(0.1) {
                self.push(Msg {
                    kind: EventKind::Gift,
                    actor: &a,
                    actor_age: AgeBand::Adult,
                    target: &m,
                    target_age: band,
                    at,
                    connected,
                    channel: Channel::Public,
                    text: None,
                });
            }
        }
        Label {
            account: a,
            script: ScriptKind::GamingTeam,
            risky: false,
        }
    }

    fn adult_peers(&mut self, n: usize) -> Label {
        let a = format!("adult-{n}");
        let t0 = self.start();
        for p in 0..self.rng.range(2, 6) {
            let m = format!("adult-{n}-f{p}");
            let mut at = t0 + p * 900;
            for _ in 0..self.rng.range(2, 6) {
                let text = Some(self.rng.pick(ADULT_TALK).to_string());
                let connected = self.rng.chance(0.5);
                self.push(Msg {
                    kind: EventKind::Message,
                    actor: &a,
                    actor_age: AgeBand::Adult,
                    target: &m,
                    target_age: AgeBand::Adult,
                    at,
                    connected,
                    channel: Channel::Private,
                    text,
                });
                at += self.rng.range(600, 12 * 3600);
            }
        }
        Label {
            account: a,
            script: ScriptKind::AdultPeers,
            risky: false,
        }
    }
}

/// Generates a labelled stream.
pub fn generate(spec: &SynthSpec) -> Dataset {
    let mut g = Gen {
        spec,
        rng: Rng::new(spec.seed),
        events: Vec::new(),
        next_id: 0,
    };
    let mut labels = Vec::with_capacity(spec.risky + spec.benign);
    for n in 0..spec.risky {
        labels.push(match n % 4 {
            0 => g.fan_out(n),
            1 => g.grooming(n, ScriptKind::Grooming),
            2 => g.grooming(n, ScriptKind::GroomingObfuscated),
            _ => g.grooming(n, ScriptKind::GroomingMetadataOnly),
        });
    }
    for n in 0..spec.benign {
        labels.push(match n % 5 {
            0 => g.teen_peers(n),
            1 => g.family(n),
            2 => g.teacher(n),
            3 => g.gaming_team(n),
            _ => g.adult_peers(n),
        });
    }
    let mut events = g.events;
    // Stable: events of one script at the same second keep their order.
    events.sort_by_key(|e| e.timestamp);
    Dataset { events, labels }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SynthSpec {
        SynthSpec {
            risky: 40,
            benign: 100,
            ..SynthSpec::default()
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        let a = generate(&small());
        let b = generate(&small());
        assert_eq!(a, b);
        let c = generate(&SynthSpec {
            seed: 18,
            ..small()
        });
        assert_ne!(a.events, c.events);
    }

    #[test]
    fn streams_are_sorted_valid_and_labelled() {
        let d = generate(&small());
        assert_eq!(d.labels.len(), 140);
        assert_eq!(d.labels.iter().filter(|l| l.risky).count(), 40);
        for kind in ScriptKind::ALL {
            assert!(d.labels.iter().any(|l| l.script == kind), "{kind:?}");
        }
        assert!(d
            .events
            .windows(2)
            .all(|w| w[0].timestamp <= w[1].timestamp));
        for e in &d.events {
            // Every generated event passes the same validation as the API's.
            let v = serde_json::to_value(e).unwrap();
            assert_eq!(&Event::from_json_value(v, "e").unwrap(), e);
        }
        // Metadata-only scripts carry no text at all.
        let silent: Vec<&str> = d
            .labels
            .iter()
            .filter(|l| l.script == ScriptKind::GroomingMetadataOnly)
            .map(|l| l.account.as_str())
            .collect();
        assert!(!silent.is_empty());
        assert!(d
            .events
            .iter()
            .filter(|e| silent.contains(&e.actor.as_str()))
            .all(|e| e.text.is_none()));
    }

    #[test]
    fn obfuscation_changes_the_text_and_the_normaliser_undoes_it() {
        let mut rng = Rng::new(1);
        let set = crate::PatternSet::default_set();
        let mut scratch = String::new();
        for t in RISKY {
            let o = obfuscate(t, &mut rng);
            let plain = set.scan(t, &mut scratch);
            assert!(!plain.is_empty(), "{t}");
            assert_eq!(set.scan(&o, &mut scratch), plain, "{t} → {o}");
        }
    }

    #[test]
    fn paraphrased_requests_escape_the_patterns_and_appear_only_when_asked() {
        let set = crate::PatternSet::default_set();
        let mut scratch = String::new();
        for t in RISKY_PARAPHRASED {
            assert!(set.scan(t, &mut scratch).is_empty(), "{t}");
        }
        let count = |d: &Dataset| {
            d.events
                .iter()
                .filter(|e| {
                    e.text
                        .as_deref()
                        .is_some_and(|t| RISKY_PARAPHRASED.contains(&t))
                })
                .count()
        };
        assert_eq!(count(&generate(&small())), 0);
        let d = generate(&SynthSpec {
            paraphrased: 0.5,
            ..small()
        });
        assert!(count(&d) > 20, "{}", count(&d));
    }

    #[test]
    fn the_generator_writes_only_the_listed_phrases() {
        // Every message text is one of the fixed lists (or an obfuscation of one): nothing
        // else can appear in a generated stream.
        let d = generate(&SynthSpec {
            paraphrased: 0.3,
            ..small()
        });
        let lists = [
            SMALL_TALK,
            RISKY,
            RISKY_PARAPHRASED,
            TEEN_TALK,
            FAMILY_TALK,
            TEACHER_TALK,
            COACH_TALK,
            ADULT_TALK,
        ];
        for e in &d.events {
            if let (Some(t), false) = (&e.text, e.actor.starts_with("grooming_obfuscated-")) {
                assert!(lists.iter().any(|l| l.contains(&t.as_str())), "{t}");
            }
        }
    }
}
