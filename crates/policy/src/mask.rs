//! A fixed-size bitset over the rules of a policy, one bit per rule in evaluation order.
//!
//! Fixed-size so that evaluation never allocates for it: [`MAX_RULES`] operator rules plus
//! the built-ins fit in [`WORDS`] words (128 bytes), and AND/OR over them is a handful of
//! vector instructions however few rules are in use.

use crate::builtin::BUILTIN_COUNT;
use crate::rule::MAX_RULES;

/// Words in a mask: enough bits for every operator rule and every built-in rule.
pub(crate) const WORDS: usize = (MAX_RULES + BUILTIN_COUNT).div_ceil(64);

// Checked at compile time, should either constant change.
const _: () = assert!(WORDS * 64 >= MAX_RULES + BUILTIN_COUNT);

/// A set of rule positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mask([u64; WORDS]);

impl Default for Mask {
    fn default() -> Self {
        Mask::EMPTY
    }
}

impl Mask {
    /// No rules.
    pub(crate) const EMPTY: Mask = Mask([0; WORDS]);

    /// Adds rule `i`.
    pub(crate) fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    /// Whether rule `i` is in the set.
    pub(crate) fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// Intersection.
    #[must_use]
    pub(crate) fn and(mut self, other: &Mask) -> Mask {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a &= b;
        }
        self
    }

    /// Union.
    #[must_use]
    pub(crate) fn or(mut self, other: &Mask) -> Mask {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= b;
        }
        self
    }

    /// In place, `self &= other` over the first `words` words; the rest are left as they are,
    /// so callers pass the policy's word count and ignore the words beyond it.
    pub(crate) fn and_assign(&mut self, other: &Mask, words: usize) {
        for (a, b) in self.0[..words].iter_mut().zip(&other.0[..words]) {
            *a &= b;
        }
    }

    /// In place, `self |= other` over the first `words` words.
    pub(crate) fn or_assign(&mut self, other: &Mask, words: usize) {
        for (a, b) in self.0[..words].iter_mut().zip(&other.0[..words]) {
            *a |= b;
        }
    }

    /// In place, `self &= a | b` over the first `words` words: a condition's unconstrained
    /// rules together with those accepting the value, without a temporary mask.
    pub(crate) fn and_either(&mut self, a: &Mask, b: &Mask, words: usize) {
        for ((m, a), b) in self.0[..words]
            .iter_mut()
            .zip(&a.0[..words])
            .zip(&b.0[..words])
        {
            *m &= a | b;
        }
    }

    /// The lowest rule position in the set: the first rule in evaluation order.
    pub(crate) fn first(&self) -> Option<usize> {
        self.0
            .iter()
            .enumerate()
            .find(|(_, w)| **w != 0)
            .map(|(i, w)| i * 64 + w.trailing_zeros() as usize)
    }

    /// The rule positions in the set, ascending.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(i, w)| {
            let mut w = *w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(i * 64 + bit)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_first_iter() {
        let mut m = Mask::EMPTY;
        assert_eq!(m, Mask::default());
        assert_eq!(m.first(), None);
        for i in [3, 64, 65, 700, WORDS * 64 - 1] {
            m.set(i);
        }
        assert!(m.get(64) && m.get(700) && !m.get(4));
        assert_eq!(m.first(), Some(3));
        assert_eq!(
            m.iter().collect::<Vec<_>>(),
            [3, 64, 65, 700, WORDS * 64 - 1]
        );
        let mut n = Mask::EMPTY;
        n.set(65);
        n.set(1);
        assert_eq!(m.and(&n).iter().collect::<Vec<_>>(), [65]);
        assert_eq!(m.or(&n).first(), Some(1));
        // The in-place forms touch only the words asked for.
        let mut a = m;
        a.and_assign(&n, 1);
        assert_eq!(a.iter().collect::<Vec<_>>(), [64, 65, 700, WORDS * 64 - 1]);
        let mut b = m;
        b.and_assign(&n, WORDS);
        assert_eq!(b, m.and(&n));
        let mut c = n;
        c.or_assign(&m, WORDS);
        assert_eq!(c, m.or(&n));
        let mut d = m;
        d.and_either(&n, &Mask::EMPTY, WORDS);
        assert_eq!(d, m.and(&n));
    }
}
