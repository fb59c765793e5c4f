//! CPU kernels: Hamming distance, prefetch hints and runtime CPU-feature dispatch.
//!
//! The default `x86_64` target has no `popcnt` instruction, so `u64::count_ones` compiles to a
//! dozen-instruction bit-twiddling sequence. On the query path that triples the cost of every
//! candidate check and of the linear scan, so the hot code is entered through a function
//! compiled with `popcnt` enabled when the CPU has it (every
//! x86-64 CPU since 2008), through [`popcnt_dispatch`]. The hot functions are
//! `#[inline(always)]` so that their bodies are compiled inside that function and inherit the
//! feature.

/// Hamming distance between two 256-bit codes stored as four words.
#[inline(always)]
pub(crate) fn distance(a: &[u64; 4], b: &[u64; 4]) -> u32 {
    (a[0] ^ b[0]).count_ones()
        + (a[1] ^ b[1]).count_ones()
        + (a[2] ^ b[2]).count_ones()
        + (a[3] ^ b[3]).count_ones()
}

/// Asks the CPU to start loading the cache line holding `value` into L1.
///
/// A hint only: it never faults and has no observable effect besides timing. The query path
/// issues it a few iterations ahead of the random loads (directory cells, bucket starts,
/// candidate codes) so that many cache misses are in flight at once instead of one.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: `value` is a valid reference, so the address is mapped; and a prefetch
        // never dereferences in a way that can fault or be observed in any case.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = value;
    }
}

/// Whether the CPU has the `popcnt` instruction (detected once, then cached by std).
#[inline(always)]
pub(crate) fn has_popcnt() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("popcnt")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `fn $name(args)` that runs the `#[inline(always)]` function `$body` compiled with
/// the `popcnt` instruction when the CPU has it, and as compiled otherwise.
///
/// A closure-taking helper does not work for this: the closure's body is a function of its
/// own, which LLVM may leave out of line, compiled without the feature. Here `$body` is
/// inlined into a nested `#[target_feature]` function, and closures written inside `$body`'s
/// callees that do the counting must themselves be `#[inline(always)]` functions' bodies.
macro_rules! popcnt_dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:path) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "popcnt")]
                fn with_popcnt($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if $crate::kernel::has_popcnt() {
                    // SAFETY: the CPU supports `popcnt` (checked just above), the only
                    // requirement for calling a function compiled with that feature.
                    return unsafe { with_popcnt($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}
pub(crate) use popcnt_dispatch;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_bits_in_all_words() {
        let a = [0u64; 4];
        let b = [1u64, 3, u64::MAX, 1 << 63];
        assert_eq!(distance(&a, &b), 1 + 2 + 64 + 1);
        popcnt_dispatch!(fn dispatched(a: &[u64; 4], b: &[u64; 4]) -> u32 => distance);
        assert_eq!(dispatched(&a, &b), 68);
    }
}
