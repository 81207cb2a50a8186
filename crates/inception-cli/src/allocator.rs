//! The binary's memory allocator: mimalloc, told to keep the memory it frees for reuse.
//!
//! A training step allocates and frees gigabytes of activations and gradients. With the system
//! allocator (glibc maps every buffer over 32 MB afresh) or with mimalloc's default of handing
//! freed pages back to the system, each step faults all of that memory in again and the kernel
//! spends a tenth of the step zeroing pages. Kept, the next step reuses them. The price: the
//! process does not shrink after a peak (the peak itself is unchanged).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mimalloc.h` (the same in its v2 and v3; the Rust
/// bindings do not name it).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to return freed memory to the system (a purge delay of -1).
pub fn keep_freed_memory() {
    // SAFETY: setting a documented option of the allocator in use; it takes any value.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
}
