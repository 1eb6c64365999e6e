//! A cache hint shared by the indexes that know, a few commands ahead, where a command will read.

/// Asks the CPU to start loading the cache line of `value`, so that a read a few commands later
/// finds it in cache. Changes nothing; a hint only (a no-op off x86_64).
#[inline]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of x86_64; a prefetch never faults and changes no memory.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
