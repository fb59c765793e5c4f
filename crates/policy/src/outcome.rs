//! What a rule decides: a verdict, and for the review queue a priority.

use crate::name::named_enum;

named_enum! {
    /// What happens to the item. Ordered from least to most severe.
    pub enum Verdict {
        /// Publish as normal.
        Allow => "allow",
        /// Publish, and queue for a human to look at.
        Review => "review",
        /// Do not publish until a human has looked at it.
        Hold => "hold",
        /// Do not publish.
        Block => "block",
    }
}

impl Verdict {
    /// Whether the verdict puts the item in front of a human (everything but `allow`); such
    /// verdicts go to a queue, which defaults to [`crate::DEFAULT_QUEUE`].
    pub fn needs_queue(self) -> bool {
        self != Verdict::Allow
    }
}

named_enum! {
    /// How urgently a queued item should be looked at. Ordered from least to most urgent.
    #[derive(Default)]
    pub enum Priority {
        /// When there is time.
        Low => "low",
        /// The default.
        #[default]
        Normal => "normal",
        /// Before normal items.
        High => "high",
        /// Now.
        Urgent => "urgent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in Verdict::ALL {
            assert_eq!(Verdict::parse(v.as_str()), Some(*v));
            assert_eq!(
                serde_json::to_string(v).unwrap(),
                format!("\"{}\"", v.as_str())
            );
        }
        for p in Priority::ALL {
            assert_eq!(Priority::parse(p.as_str()), Some(*p));
            assert_eq!(
                serde_json::to_string(p).unwrap(),
                format!("\"{}\"", p.as_str())
            );
        }
        assert_eq!(Verdict::parse("Block"), None);
    }

    #[test]
    fn severity_order() {
        assert!(Verdict::Allow < Verdict::Review);
        assert!(Verdict::Review < Verdict::Hold);
        assert!(Verdict::Hold < Verdict::Block);
        assert!(Priority::Low < Priority::Normal && Priority::High < Priority::Urgent);
    }
}
