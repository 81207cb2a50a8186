//! Compiling plain loops for the vector unit at hand.
//!
//! The crate is built for baseline x86-64 (SSE2), so that it runs on any x86-64; the loops of
//! the training kernels (pooling, normalisation) are written plainly and left to the compiler to
//! vectorise. [`vectorized`] runs such a loop compiled again for AVX-512 or AVX2 when
//! [`crate::isa`] chose it: the closure, and every `#[inline(always)]` function it calls, is
//! inlined into a function built with those target features.

use crate::Isa;

/// Runs `f`, compiled for the instruction set [`crate::isa`] chose. Whatever `f` calls must be
/// `#[inline(always)]` to be compiled that way too, and so should `f` itself
/// (`vectorized(#[inline(always)] || ...)`): a closure left to the compiler may stay a function
/// of its own, compiled for baseline SSE2.
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

/// `dst.copy_from_slice(src)` for the short runs of im2col and packing, inline: up to 64
/// values as two fixed-size copies that may overlap (where `copy_from_slice` of a run-time
/// length is a `memmove` call — per 9 values for a 3x3 window over RGB — and a plain copy loop
/// is turned back into one by the compiler). Longer runs go to `copy_from_slice`.
///
/// # Panics
/// If the lengths differ.
#[inline(always)]
pub(crate) fn copy_run(dst: &mut [f32], src: &[f32]) {
    #[inline(always)]
    fn two<const N: usize>(dst: &mut [f32], src: &[f32]) {
        #[inline(always)]
        fn one<const N: usize>(dst: &mut [f32], src: &[f32], at: usize) {
            if let (Ok(d), Ok(s)) = (
                <&mut [f32; N]>::try_from(&mut dst[at..at + N]),
                <&[f32; N]>::try_from(&src[at..at + N]),
            ) {
                *d = *s;
            }
        }
        let n = src.len();
        one::<N>(dst, src, 0);
        if n > N {
            one::<N>(dst, src, n - N);
        }
    }
    assert_eq!(dst.len(), src.len(), "a run and its destination");
    match src.len() {
        0 => {}
        1 => dst[0] = src[0],
        2..=3 => two::<2>(dst, src),
        4..=7 => two::<4>(dst, src),
        8..=15 => two::<8>(dst, src),
        16..=31 => two::<16>(dst, src),
        32..=64 => two::<32>(dst, src),
        _ => dst.copy_from_slice(src),
    }
}

#[cfg(test)]
mod tests {
    use super::copy_run;

    #[test]
    fn copy_run_copies_every_length_exactly() {
        let src: Vec<f32> = (0..100).map(|i| i as f32 + 0.5).collect();
        for n in 0..100 {
            let mut dst = vec![-1f32; n + 2];
            copy_run(&mut dst[1..n + 1], &src[..n]);
            assert_eq!(dst[0], -1.0);
            assert_eq!(&dst[1..n + 1], &src[..n], "length {n}");
            assert_eq!(dst[n + 1], -1.0);
        }
    }
}
