//! Compiling plain loops for the vector unit at hand.
//!
//! The crate is built for baseline x86-64 (SSE2), so that it runs on any x86-64; the loops of
//! the training kernels (pooling, normalisation) are written plainly and left to the compiler to
//! vectorise. [`vectorized`] runs such a loop compiled again for AVX-512 or AVX2 when
//! [`crate::isa`] chose it: the closure, and every `#[inline(always)]` function it calls, is
//! inlined into a function built with those target features.

use crate::Isa;

/// Runs `f`, compiled for the instruction set [`crate::isa`] chose. Whatever `f` calls must be
/// `#[inline(always)]` to be compiled that way too.
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    match crate::isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` found AVX-512F on this CPU.
        Isa::Avx512 => unsafe { avx512(f) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` found AVX2 and FMA on this CPU.
        Isa::Avx2 => unsafe { avx2(f) },
        _ => f(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// A loop to compile for the vector unit, for [`vectorize`]: a closure passed to
/// [`vectorized`] is a function of its own that the compiler may decline to inline (it then
/// stays baseline SSE2 code: a row sum of the BatchNorm backward pass did), while `run`, being
/// `#[inline(always)]` in every implementation, is always compiled into the caller built for
/// AVX-512 or AVX2.
pub(crate) trait Vectorizable {
    type Output;
    /// The loop. Implementations must be `#[inline(always)]`, as must whatever they call.
    fn run(self) -> Self::Output;
}

/// Runs `v`, compiled for the instruction set [`crate::isa`] chose.
#[inline(always)]
pub(crate) fn vectorize<V: Vectorizable>(v: V) -> V::Output {
    match crate::isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` found AVX-512F on this CPU.
        Isa::Avx512 => unsafe { run_avx512(v) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` found AVX2 and FMA on this CPU.
        Isa::Avx2 => unsafe { run_avx2(v) },
        _ => v.run(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512<V: Vectorizable>(v: V) -> V::Output {
    v.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<V: Vectorizable>(v: V) -> V::Output {
    v.run()
}
