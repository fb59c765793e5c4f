//! Large arrays backed by transparent huge pages (Linux).
//!
//! A query on a large bank is a few thousand random reads into arrays of hundreds of
//! megabytes. With 4 KiB pages nearly every such read also misses the TLB, and the few
//! hardware page walkers then cap how many cache misses can be in flight at once; 2 MiB pages
//! let the TLB cover the whole index. Most Linux systems (`transparent_hugepage=madvise`) only
//! back memory with huge pages when `madvise(MADV_HUGEPAGE)` asks, so the index asks for its
//! large arrays right after allocating them, before their pages are first touched. Elsewhere,
//! or when the kernel declines, this does nothing and the arrays work as before.

/// Arrays smaller than this are left alone: they span few pages.
const HUGE_MIN_BYTES: usize = 4 << 20;

/// Asks the kernel to back the allocation of `v` (its whole capacity) with huge pages.
pub(crate) fn advise_huge<T>(v: &Vec<T>) {
    let bytes = v.capacity() * size_of::<T>();
    if bytes < HUGE_MIN_BYTES {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = v.as_ptr() as usize;
        let aligned = start.next_multiple_of(PAGE);
        let len = (start + bytes).saturating_sub(aligned) / PAGE * PAGE;
        if len == 0 {
            return;
        }
        // SAFETY: `[aligned, aligned + len)` lies inside the allocation of `v`, which is live
        // for the duration of the call. MADV_HUGEPAGE only changes how the kernel backs the
        // pages; contents and validity are unaffected. A failure (e.g. a kernel without THP)
        // is harmless and deliberately ignored.
        unsafe {
            libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        }
    }
}

/// `vec![0; n]`-style zeroed vector, advised before first touch.
pub(crate) fn zeroed<T: Clone + Default>(n: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    advise_huge(&v);
    v.resize(n, T::default());
    v
}

/// An empty vector with room for `n` elements, advised before first touch.
pub(crate) fn with_capacity<T>(n: usize) -> Vec<T> {
    let v = Vec::with_capacity(n);
    advise_huge(&v);
    v
}
