//! Torben's median, as the reference selects it.

/// Returns the lower median (the `(n+1)/2`-th smallest value) of `m`, by Torben's method.
///
/// A faithful port: the hash bits are `B > median` with a strict comparison, so the exact value
/// returned (including which of several equal candidates) must match the reference.
pub(crate) fn torben(m: &[f32]) -> f32 {
    let n = m.len();
    debug_assert!(n > 0);
    let half = n.div_ceil(2);
    let mut min = m[0];
    let mut max = m[0];
    for &v in &m[1..] {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    let (mut less, mut greater, mut equal);
    let (mut guess, mut maxltguess, mut mingtguess);
    loop {
        guess = (min + max) / 2.0;
        less = 0;
        greater = 0;
        equal = 0;
        maxltguess = min;
        mingtguess = max;
        for &v in m {
            if v < guess {
                less += 1;
                if v > maxltguess {
                    maxltguess = v;
                }
            } else if v > guess {
                greater += 1;
                if v < mingtguess {
                    mingtguess = v;
                }
            } else {
                equal += 1;
            }
        }
        if less <= half && greater <= half {
            break;
        } else if less > greater {
            max = maxltguess;
        } else {
            min = mingtguess;
        }
    }
    if less >= half {
        maxltguess
    } else if less + equal >= half {
        guess
    } else {
        mingtguess
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_median_of_even_count() {
        let v: Vec<f32> = (0..256).map(|i| ((i * 37) % 256) as f32).collect();
        assert_eq!(torben(&v), 127.0);
        assert_eq!(torben(&[3.0, 1.0, 2.0, 4.0]), 2.0);
        assert_eq!(torben(&[5.0; 256]), 5.0);
    }

    #[test]
    fn agrees_with_sorting() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..200 {
            let v: Vec<f32> = (0..256)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    ((x % 2001) as f32 - 1000.0) / 7.0
                })
                .collect();
            let mut s = v.clone();
            s.sort_by(f32::total_cmp);
            assert_eq!(torben(&v), s[127]);
        }
    }
}
