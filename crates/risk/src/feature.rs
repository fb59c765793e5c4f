//! The features a score is made of: what each measures, over which window, and the count at
//! which it saturates. Every feature's value is between 0 and 1; its contribution to the
//! score is the value times its configured weight ([`crate::Weights`]).

use serde::{Deserialize, Serialize};

use crate::text::Category;

/// One feature of an account's score.
///
/// "Adult" below means an account whose band is `adult`, or `unknown` when
/// [`crate::RiskSpec::unknown_actor_as_adult`] is on; "minor" means a band under 18. A
/// contact is "unconnected" when the event says `connected: false`, or says nothing and the
/// scorer has seen no accept between the two. A pair is a "stranger pair" when the first
/// contact the scorer saw between the two was from an adult to an unconnected minor; the
/// night-time, image, gift and lexical features count only on stranger pairs, so that what a
/// parent, teacher or coach already connected to children says to them is not scored (and,
/// the price of it, a groomer connected before the scorer first saw the pair is scored on
/// behaviour and reports only). Lexical features read private messages (and those whose
/// channel is not given), not public ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// An adult's first contacts with unconnected minors in the last hour (ten-minute
    /// buckets); saturates at 5.
    #[serde(rename = "fan_out_1h")]
    FanOut1h,
    /// The same over the last 24 hours (one-hour buckets); saturates at 12.
    #[serde(rename = "fan_out_24h")]
    FanOut24h,
    /// The largest age gap between an adult and an unconnected minor it contacted in the
    /// last 7 days, in bands (adult to 16–17 is 1, to 13–15 is 2, to under 13 is 3), over 3.
    AgeGap,
    /// Unconnected minors an adult first contacted and then messaged privately within
    /// [`crate::RiskSpec::quick_private_secs`], in the last 24 hours; saturates at 2.
    QuickPrivate,
    /// Blocks of the account by minors in the last 7 days (one-day buckets); saturates at 2.
    MinorBlocks,
    /// Reports of the account by minors in the last 7 days; saturates at 2.
    MinorReports,
    /// The share of an adult's distinct contacts that are minors, times `min(contacts / 5,
    /// 1)` so that one contact is not a 100% share.
    MinorShare,
    /// An adult's messages, images and gifts to stranger-pair minors at night (local hours
    /// [`crate::RiskSpec::night_start_hour`] to `night_end_hour`), last 24 hours (four-hour
    /// buckets); saturates at 4.
    NightContact,
    /// Requests to move off-platform or to an encrypted app in an adult's messages to
    /// stranger-pair minors, last 24 hours (four-hour buckets); saturates at 2.
    OffPlatform,
    /// Requests for secrecy, likewise; saturates at 2.
    Secrecy,
    /// Requests for images, likewise; saturates at 2.
    ImageRequest,
    /// Offers of gifts or money in text, and gift or payment events, from an adult to
    /// minors, likewise; saturates at 2.
    Gifts,
    /// Questions about the minor's age or school year, likewise; saturates at 2.
    AgeQuestion,
    /// Requests to meet or for where the minor lives, likewise; saturates at 2.
    Meeting,
    /// Images an adult sent to stranger-pair minors in the last 24 hours; saturates at 3.
    ImagesToMinors,
    /// Profile views of unconnected minors by an adult in the last 24 hours; saturates at 10.
    MinorProfileViews,
    /// An adult's private messages to stranger-pair minors that the optional semantic model
    /// (`[risk.semantic]`, crate `safeguard-semantic`) placed nearer the positive examples
    /// than the negative ones by at least `min_contrast`, and in which no lexical pattern
    /// was found (so one message is not counted twice for the same request), last 24 hours
    /// (four-hour buckets); saturates at 2. Never raised without a model.
    Semantic,
}

/// How many features there are.
pub const FEATURE_COUNT: usize = 17;

impl Feature {
    /// Every feature, in the order of their bits and weights.
    pub const ALL: [Feature; FEATURE_COUNT] = [
        Feature::FanOut1h,
        Feature::FanOut24h,
        Feature::AgeGap,
        Feature::QuickPrivate,
        Feature::MinorBlocks,
        Feature::MinorReports,
        Feature::MinorShare,
        Feature::NightContact,
        Feature::OffPlatform,
        Feature::Secrecy,
        Feature::ImageRequest,
        Feature::Gifts,
        Feature::AgeQuestion,
        Feature::Meeting,
        Feature::ImagesToMinors,
        Feature::MinorProfileViews,
        Feature::Semantic,
    ];

    /// The stable name (as in JSON and the `[risk.weights]` table).
    pub const fn as_str(self) -> &'static str {
        match self {
            Feature::FanOut1h => "fan_out_1h",
            Feature::FanOut24h => "fan_out_24h",
            Feature::AgeGap => "age_gap",
            Feature::QuickPrivate => "quick_private",
            Feature::MinorBlocks => "minor_blocks",
            Feature::MinorReports => "minor_reports",
            Feature::MinorShare => "minor_share",
            Feature::NightContact => "night_contact",
            Feature::OffPlatform => "off_platform",
            Feature::Secrecy => "secrecy",
            Feature::ImageRequest => "image_request",
            Feature::Gifts => "gifts",
            Feature::AgeQuestion => "age_question",
            Feature::Meeting => "meeting",
            Feature::ImagesToMinors => "images_to_minors",
            Feature::MinorProfileViews => "minor_profile_views",
            Feature::Semantic => "semantic",
        }
    }

    /// The feature's bit in a [`FeatureSet`].
    pub const fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// The count at which the feature's value reaches 1 (for the count-based ones).
    pub const fn saturation(self) -> u32 {
        match self {
            Feature::FanOut1h => 5,
            Feature::FanOut24h => 12,
            Feature::AgeGap => 3,
            Feature::QuickPrivate => 2,
            Feature::MinorBlocks | Feature::MinorReports => 2,
            Feature::MinorShare => 5,
            Feature::NightContact => 4,
            Feature::ImagesToMinors => 3,
            Feature::MinorProfileViews => 10,
            Feature::OffPlatform
            | Feature::Secrecy
            | Feature::ImageRequest
            | Feature::Gifts
            | Feature::AgeQuestion
            | Feature::Meeting
            | Feature::Semantic => 2,
        }
    }

    /// The feature counting a lexical category.
    pub const fn of_category(c: Category) -> Feature {
        match c {
            Category::OffPlatform => Feature::OffPlatform,
            Category::Secrecy => Feature::Secrecy,
            Category::ImageRequest => Feature::ImageRequest,
            Category::Gifts => Feature::Gifts,
            Category::AgeQuestion => Feature::AgeQuestion,
            Category::Meeting => Feature::Meeting,
        }
    }
}

/// A set of features, as bits ([`Feature::bit`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeatureSet(pub u32);

impl FeatureSet {
    /// Adds `f`.
    pub fn insert(&mut self, f: Feature) {
        self.0 |= f.bit();
    }

    /// Whether `f` is in the set.
    pub fn contains(self, f: Feature) -> bool {
        self.0 & f.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The features in the set, in [`Feature::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Feature> {
        Feature::ALL.into_iter().filter(move |f| self.contains(*f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_bits_and_order_agree() {
        for (i, f) in Feature::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i);
            assert_eq!(
                serde_json::to_string(f).unwrap(),
                format!("\"{}\"", f.as_str())
            );
            assert!(f.saturation() >= 1);
        }
        let mut s = FeatureSet::default();
        s.insert(Feature::Secrecy);
        s.insert(Feature::FanOut1h);
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [Feature::FanOut1h, Feature::Secrecy]
        );
        for c in Category::ALL {
            assert_eq!(Feature::of_category(c).as_str(), c.as_str());
        }
    }
}
