//! The single-precision GEMM under every convolution: `C = A B (+ bias, ReLU)` with `B` (the
//! weights) packed once, at plan time, into panels the microkernel streams, and `A` (input rows
//! or im2col rows) and `C` (output rows, possibly a concatenation's slice) read and written in
//! place with any row stride — what MLAS does for ONNX Runtime.
//!
//! Microkernels: AVX-512 (12 rows x 32 columns in 24 registers) and AVX2+FMA (6 x 16 in 12),
//! chosen at run time; anything else (aarch64's NEON, an x86-64 without AVX2) goes through the
//! `gemm` crate on the unpacked weights. The bias and the ReLU are applied in the microkernel's
//! store, so a convolution's output is written once.

use std::ops::Range;
use std::sync::OnceLock;

use crate::simd::copy_run;

/// Which microkernel this CPU runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F.
    Avx512,
    /// AVX2 with FMA.
    Avx2,
    /// The `gemm` crate's own dispatch (NEON on aarch64, SSE on old x86-64).
    Generic,
}

impl Isa {
    /// Columns per packed panel (0: not packed).
    fn nr(self) -> usize {
        match self {
            Isa::Avx512 => 32,
            Isa::Avx2 => 16,
            Isa::Generic => 0,
        }
    }
}

impl Isa {
    /// The microkernels this CPU can run, best first (`Generic` always).
    pub fn available() -> Vec<Isa> {
        let mut out = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                out.push(Isa::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                out.push(Isa::Avx2);
            }
        }
        out.push(Isa::Generic);
        out
    }

    /// The name `INCEPTION_ISA` takes.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Generic => "generic",
        }
    }
}

/// The microkernel this process runs, chosen once: the best the CPU has, or a lower one named
/// by the environment variable `INCEPTION_ISA` (`avx2`, `generic`; to test those paths on a
/// newer CPU). A name the CPU cannot run is ignored.
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let available = Isa::available();
        let wanted = std::env::var("INCEPTION_ISA").ok();
        available
            .iter()
            .copied()
            .find(|i| wanted.as_deref() == Some(i.name()))
            .unwrap_or(available[0])
    })
}

/// Depth of one pass over `k`: a panel's slice (`KC * NR` floats) stays in the L1 cache while
/// every row block of `A` goes by.
const KC: usize = 512;

/// Rows of `A` per block: `MC * KC` floats (120 KiB) stay in the L2 cache while every panel of
/// `B` passes over them. A multiple of both kernels' row counts.
const MC: usize = 120;

/// A `[k, n]` matrix packed for the microkernel: panels of `nr` columns (zero-padded), each
/// stored `k`-major.
pub struct PackedB {
    k: usize,
    n: usize,
    isa: Isa,
    data: Vec<f32>,
}

impl PackedB {
    /// Packs the row-major `[k, n]` matrix `w`.
    ///
    /// # Panics
    /// If `w` does not hold `k * n` values.
    pub fn new(w: &[f32], k: usize, n: usize) -> Self {
        Self::with_isa(w, k, n, isa())
    }

    /// Packs for a given microkernel (one of [`Isa::available`]; tests use every one).
    ///
    /// # Panics
    /// If `w` does not hold `k * n` values or this CPU cannot run `isa`.
    pub fn with_isa(w: &[f32], k: usize, n: usize, isa: Isa) -> Self {
        assert_eq!(w.len(), k * n, "a [k, n] matrix");
        let mut packed = Self::empty(isa);
        packed.pack(w, k, n, n, 1);
        packed
    }

    /// Nothing packed yet, for [`PackedB::pack`] to fill (and refill, reusing its memory).
    ///
    /// # Panics
    /// If this CPU cannot run `isa`.
    pub fn empty(isa: Isa) -> Self {
        assert!(
            Isa::available().contains(&isa),
            "{isa:?} is not available here"
        );
        Self {
            k: 0,
            n: 0,
            isa,
            data: Vec::new(),
        }
    }

    /// Packs the `[k, n]` matrix whose `[kk][j]` value is `src[kk * row_stride + j * col_stride]`
    /// (so `row_stride = 1, col_stride = k` packs the transpose of a row-major `[n, k]`),
    /// replacing what was packed before.
    ///
    /// # Panics
    /// If `src` is too short for those strides.
    pub fn pack(&mut self, src: &[f32], k: usize, n: usize, row_stride: usize, col_stride: usize) {
        if k > 0 && n > 0 {
            assert!(
                (k - 1) * row_stride + (n - 1) * col_stride < src.len(),
                "the source is too short for its strides"
            );
        }
        let nr = self.isa.nr();
        if nr == 0 {
            // The generic path reads a row-major [k, n] matrix.
            self.k = k;
            self.n = n;
            self.data.clear();
            self.data.reserve(k * n);
            for kk in 0..k {
                self.data
                    .extend((0..n).map(|j| src[kk * row_stride + j * col_stride]));
            }
            return;
        }
        self.start(k, n);
        let panels = n.div_ceil(nr);
        let data = &mut self.data;
        for p in 0..panels {
            let cols = nr.min(n - p * nr);
            let panel = &mut data[p * k * nr..(p + 1) * k * nr];
            if col_stride == 1 {
                for (kk, dst) in panel.chunks_exact_mut(nr).enumerate() {
                    let from = kk * row_stride + p * nr;
                    copy_run(&mut dst[..cols], &src[from..from + cols]);
                }
            } else {
                // A column of the matrix is a run of the source: read it in order.
                for jj in 0..cols {
                    let col = (p * nr + jj) * col_stride;
                    for kk in 0..k {
                        panel[kk * nr + jj] = src[col + kk * row_stride];
                    }
                }
            }
        }
    }

    /// Makes room for a `[k, n]` matrix that [`PackedB::set_row`] then fills row by row (so a
    /// caller that computes rows — im2col — packs them while they are in cache, instead of
    /// writing the whole matrix out and packing it afterwards). Until every row is set, the
    /// unset ones hold stale values.
    pub fn start(&mut self, k: usize, n: usize) {
        self.k = k;
        self.n = n;
        let nr = self.isa.nr();
        if nr == 0 {
            self.data.resize(k * n, 0.0);
            return;
        }
        let panels = n.div_ceil(nr);
        self.data.resize(panels * k * nr, 0.0);
        let cols = n - panels.saturating_sub(1) * nr;
        if panels > 0 && cols < nr {
            for row in self.data[(panels - 1) * k * nr..].chunks_exact_mut(nr) {
                row[cols..].fill(0.0);
            }
        }
    }

    /// Sets row `kk` of the matrix [`PackedB::start`] made room for.
    ///
    /// # Panics
    /// If `kk` is not a row or `values` does not hold one row's `n` values.
    pub fn set_row(&mut self, kk: usize, values: &[f32]) {
        let (k, n, nr) = (self.k, self.n, self.isa.nr());
        assert!(kk < k && values.len() == n, "one of the k rows of n values");
        if nr == 0 {
            self.data[kk * n..(kk + 1) * n].copy_from_slice(values);
            return;
        }
        for (p, chunk) in values.chunks(nr).enumerate() {
            let at = (p * k + kk) * nr;
            copy_run(&mut self.data[at..at + chunk.len()], chunk);
        }
    }

    /// Rows (the inner dimension).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Column groups a caller may split the work into (panels; one for the generic path).
    pub fn panels(&self) -> usize {
        match self.isa.nr() {
            0 => 1,
            nr => self.n.div_ceil(nr),
        }
    }
}

/// What happens to a result on its way out.
#[derive(Clone, Copy, Debug)]
pub struct Epilogue<'a> {
    /// Added per column.
    pub bias: Option<&'a [f32]>,
    /// Negative results become 0.
    pub relu: bool,
    /// `c` is added to (`c = epilogue(c + A B)`) rather than overwritten.
    pub accumulate: bool,
}

/// `c[i][j] = epilogue(Σ a[i][kk] b[kk][j])` for rows `0..m` and the columns of `panels`
/// (all of them: `0..b.panels()`).
///
/// # Safety
/// `a` must be readable for `m` rows of `b.k()` values spaced `lda` apart; `c` writable for `m`
/// rows of `b.n()` values spaced `ldc` apart; the bias, when given, has `b.n()` values; no one
/// else writes those parts of `c` meanwhile.
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm(
    m: usize,
    a: *const f32,
    lda: usize,
    b: &PackedB,
    c: *mut f32,
    ldc: usize,
    epilogue: Epilogue,
    panels: Range<usize>,
) {
    if m == 0 || b.n == 0 {
        return;
    }
    if let Some(bias) = epilogue.bias {
        assert!(bias.len() >= b.n, "one bias per column");
    }
    match b.isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the microkernel's features were detected when `b` was packed.
        Isa::Avx512 => unsafe { x86::avx512(m, a, lda, b, c, ldc, epilogue, panels) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::avx2(m, a, lda, b, c, ldc, epilogue, panels) },
        // SAFETY: the caller's guarantees are the generic path's.
        _ => unsafe { generic(m, a, lda, b, c, ldc, epilogue) },
    }
}

unsafe fn generic(
    m: usize,
    a: *const f32,
    lda: usize,
    b: &PackedB,
    c: *mut f32,
    ldc: usize,
    epilogue: Epilogue,
) {
    let (k, n) = (b.k, b.n);
    // SAFETY: the caller guarantees the extents; `b.data` is `[k, n]` row-major here.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            ldc as isize,
            epilogue.accumulate,
            a,
            1,
            lda as isize,
            b.data.as_ptr(),
            1,
            n as isize,
            // dst = alpha * dst + beta * a b: dst is read (alpha 1) only when accumulating.
            if epilogue.accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
        for i in 0..m {
            let row = std::slice::from_raw_parts_mut(c.add(i * ldc), n);
            if let Some(bias) = epilogue.bias {
                row.iter_mut().zip(bias).for_each(|(x, b)| *x += b);
            }
            if epilogue.relu {
                row.iter_mut().for_each(|x| *x = x.max(0.0));
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{Epilogue, KC, MC, PackedB};

    /// Calls `tile::<R>` for a block of `r` rows (1 ≤ r ≤ 12).
    macro_rules! rows {
        ($r:expr, $f:ident, $($arg:expr),*) => {
            match $r {
                12 => $f::<12>($($arg),*),
                11 => $f::<11>($($arg),*),
                10 => $f::<10>($($arg),*),
                9 => $f::<9>($($arg),*),
                8 => $f::<8>($($arg),*),
                7 => $f::<7>($($arg),*),
                6 => $f::<6>($($arg),*),
                5 => $f::<5>($($arg),*),
                4 => $f::<4>($($arg),*),
                3 => $f::<3>($($arg),*),
                2 => $f::<2>($($arg),*),
                _ => $f::<1>($($arg),*),
            }
        };
    }

    /// One microkernel call: `rows` rows of `A` (from `a`, `kc` deep) times one packed panel
    /// (from `b`) into `c`.
    #[derive(Clone, Copy)]
    struct Tile {
        rows: usize,
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        cols: usize,
        /// The first pass over `k`: `c` is written, not accumulated into.
        first: bool,
        /// The last pass over `k`: the bias and the ReLU apply.
        last: bool,
        /// The panel's bias (null: none).
        bias: *const f32,
        /// Rows of `A` to prefetch while computing (a later tile's; `next_rows` of them, 0:
        /// none), at the same depth.
        next: *const f32,
        next_rows: usize,
        /// This tile's share of the next panel's packed slice, to prefetch while computing:
        /// `b_lines` cache lines from `b_next`, `b_per` of them every sixteen steps.
        b_next: *const f32,
        b_lines: usize,
        b_per: usize,
    }

    /// Prefetches, at step `kk` (a multiple of sixteen), the line holding `k`-offset `kk` of
    /// each row of the later tile, and the next lines of this tile's share of the next panel.
    #[inline(always)]
    fn prefetch_rows(t: &Tile, lda: usize, kk: usize) {
        for r in 0..t.next_rows {
            let p = t.next.wrapping_add(r * lda + kk) as *const i8;
            // SAFETY: a prefetch never faults, whatever the address.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p) };
        }
        let first = kk / 16 * t.b_per;
        for line in first..(first + t.b_per).min(t.b_lines) {
            let p = t.b_next.wrapping_add(line * LINE) as *const i8;
            // SAFETY: as above.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(p) };
        }
    }

    /// Floats in a cache line.
    const LINE: usize = 16;

    /// How far ahead the first panel's tiles fetch `A`, in tiles (the next but one: one tile's
    /// time is too short to hide a read from memory).
    const PF_TILES: usize = 2;

    /// One pass of the blocked loop shared by both kernels.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn blocked(
        m: usize,
        a: *const f32,
        lda: usize,
        b: &PackedB,
        c: *mut f32,
        ldc: usize,
        epilogue: Epilogue,
        panels: Range<usize>,
        nr: usize,
        mr: usize,
        mut tile: impl FnMut(Tile),
    ) {
        let k = b.k;
        // Passes of equal depth (1152 as 3 x 384, not 512 + 512 + 128): a shallow last pass
        // spends as long reading and writing C as a deep one.
        let depth = k.div_ceil(k.div_ceil(KC).max(1)).max(1);
        let mut kb = 0;
        loop {
            let kc = depth.min(k - kb);
            let (first, last) = (kb == 0 && !epilogue.accumulate, kb + kc == k);
            // A block of MC rows (MC x KC values, in the L2 cache) meets every panel in turn.
            let mut mb = 0;
            while mb < m {
                let mc = MC.min(m - mb);
                let tiles = mc.div_ceil(mr);
                for (pass, p) in panels.clone().enumerate() {
                    let cols = nr.min(b.n - p * nr);
                    // SAFETY: panel p's rows kb.. lie inside the packed data.
                    let bp = unsafe { b.data.as_ptr().add((p * k + kb) * nr) };
                    // The panel after this one, at this depth (or the first at the next
                    // depth), comes from memory while this one is used: each tile of the
                    // panel fetches its share, so that the reads spread over the panel's time
                    // rather than stalling its first tile (weights, read once per image at
                    // batch 1, rarely sit in a cache).
                    let next_panel = if p + 1 < panels.end {
                        Some((p + 1, kb, kc))
                    } else if mb + mc >= m && kb + kc < k {
                        Some((panels.start, kb + kc, depth.min(k - kb - kc)))
                    } else {
                        None
                    };
                    let (b_next, b_total) = match next_panel {
                        Some((q, qb, qc)) => (
                            b.data.as_ptr().wrapping_add((q * k + qb) * nr),
                            (qc * nr).div_ceil(LINE),
                        ),
                        None => (std::ptr::null(), 0),
                    };
                    let steps = kc.div_ceil(16).max(1);
                    let bias = match (last, epilogue.bias) {
                        // SAFETY: the bias has b.n values, and p * nr < b.n.
                        (true, Some(bias)) => unsafe { bias.as_ptr().add(p * nr) },
                        _ => std::ptr::null(),
                    };
                    let mut i = mb;
                    while i < mb + mc {
                        let r = mr.min(mb + mc - i);
                        let t = (i - mb) / mr;
                        let (from, to) = (t * b_total / tiles, (t + 1) * b_total / tiles);
                        // SAFETY: rows i..i + r of A and C, per the caller's extents.
                        let (ap, cp) = unsafe { (a.add(i * lda + kb), c.add(i * ldc + p * nr)) };
                        // The first panel of a block is the first to read its rows of A, often
                        // straight from memory (the previous layer's output, as a 1x1
                        // convolution reads it): each tile fetches a later tile's rows
                        // meanwhile. (A 1x1 convolution reading cold input ran 20% faster.)
                        let ahead = i + r + mr * (PF_TILES - 1);
                        let next = if pass == 0 && ahead < m {
                            mr.min(m - ahead)
                        } else {
                            0
                        };
                        tile(Tile {
                            rows: r,
                            kc,
                            a: ap,
                            b: bp,
                            c: cp,
                            cols,
                            first,
                            last,
                            bias,
                            next: ap.wrapping_add((ahead - i) * lda),
                            next_rows: next,
                            b_next: b_next.wrapping_add(from * LINE),
                            b_lines: to - from,
                            b_per: (to - from).div_ceil(steps),
                        });
                        i += r;
                    }
                }
                mb += mc;
            }
            kb += kc;
            if kb >= k {
                break;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn avx512(
        m: usize,
        a: *const f32,
        lda: usize,
        b: &PackedB,
        c: *mut f32,
        ldc: usize,
        epilogue: Epilogue,
        panels: Range<usize>,
    ) {
        let relu = epilogue.relu;
        let tile = |t: Tile| {
            // SAFETY: as the caller of `avx512` guarantees; the feature is enabled here.
            unsafe { rows!(t.rows, tile512, t, lda, ldc, relu) }
        };
        // SAFETY: forwarded.
        unsafe { blocked(m, a, lda, b, c, ldc, epilogue, panels, 32, 12, tile) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn tile512<const R: usize>(t: Tile, lda: usize, ldc: usize, relu: bool) {
        let Tile {
            kc,
            a: ap,
            b: bp,
            c: cp,
            cols,
            first,
            last,
            bias,
            ..
        } = t;
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for kk in 0..kc {
            if kk % 16 == 0 {
                prefetch_rows(&t, lda, kk);
            }
            // SAFETY: the packed panel holds kc rows of 32 values from bp.
            let (b0, b1) = unsafe {
                (
                    _mm512_loadu_ps(bp.add(kk * 32)),
                    _mm512_loadu_ps(bp.add(kk * 32 + 16)),
                )
            };
            for (r, acc) in acc.iter_mut().enumerate() {
                // SAFETY: row r of A has kc values from ap.
                let av = _mm512_set1_ps(unsafe { *ap.add(r * lda + kk) });
                acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
            }
        }
        let mask = |lo: usize| -> __mmask16 {
            let n = cols.saturating_sub(lo).min(16);
            ((1u32 << n) - 1) as __mmask16
        };
        let (m0, m1) = (mask(0), mask(16));
        let zero = _mm512_setzero_ps();
        // SAFETY (all loads and stores below): masked to the panel's `cols` columns of row r.
        let (bias0, bias1) = if bias.is_null() {
            (zero, zero)
        } else {
            unsafe {
                (
                    _mm512_maskz_loadu_ps(m0, bias),
                    _mm512_maskz_loadu_ps(m1, bias.add(16)),
                )
            }
        };
        for (r, acc) in acc.iter().enumerate() {
            let cr = unsafe { cp.add(r * ldc) };
            let (mut v0, mut v1) = (acc[0], acc[1]);
            if !first {
                unsafe {
                    v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));
                    v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr.add(16)));
                }
            }
            if last {
                v0 = _mm512_add_ps(v0, bias0);
                v1 = _mm512_add_ps(v1, bias1);
                if relu {
                    v0 = _mm512_max_ps(v0, zero);
                    v1 = _mm512_max_ps(v1, zero);
                }
            }
            unsafe {
                _mm512_mask_storeu_ps(cr, m0, v0);
                _mm512_mask_storeu_ps(cr.add(16), m1, v1);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2(
        m: usize,
        a: *const f32,
        lda: usize,
        b: &PackedB,
        c: *mut f32,
        ldc: usize,
        epilogue: Epilogue,
        panels: Range<usize>,
    ) {
        let relu = epilogue.relu;
        let tile = |t: Tile| {
            // SAFETY: as the caller of `avx2` guarantees; the features are enabled here.
            unsafe { rows!(t.rows, tile256, t, lda, ldc, relu) }
        };
        // SAFETY: forwarded.
        unsafe { blocked(m, a, lda, b, c, ldc, epilogue, panels, 16, 6, tile) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile256<const R: usize>(t: Tile, lda: usize, ldc: usize, relu: bool) {
        let Tile {
            kc,
            a: ap,
            b: bp,
            c: cp,
            cols,
            first,
            last,
            bias,
            ..
        } = t;
        // Six rows at most here (twelve 256-bit accumulators).
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        // Each row's own base pointer: no address arithmetic per row and step.
        let rows: [*const f32; R] = std::array::from_fn(|r| ap.wrapping_add(r * lda));
        macro_rules! step {
            ($kk:expr) => {{
                let kk = $kk;
                // SAFETY: the packed panel holds kc rows of 16 values from bp.
                let (b0, b1) = unsafe {
                    (
                        _mm256_loadu_ps(bp.add(kk * 16)),
                        _mm256_loadu_ps(bp.add(kk * 16 + 8)),
                    )
                };
                for (row, acc) in rows.iter().zip(acc.iter_mut()) {
                    // SAFETY: row r of A has kc values from ap.
                    let av = _mm256_set1_ps(unsafe { *row.add(kk) });
                    acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
                    acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
                }
            }};
        }
        // Sixteen steps between prefetches, four to a loop turn.
        let mut kk = 0;
        while kk < kc {
            prefetch_rows(&t, lda, kk);
            let end = (kk + 16).min(kc);
            while kk + 4 <= end {
                step!(kk);
                step!(kk + 1);
                step!(kk + 2);
                step!(kk + 3);
                kk += 4;
            }
            while kk < end {
                step!(kk);
                kk += 1;
            }
        }
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols.min(8) as i32), lanes);
        let m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols.saturating_sub(8) as i32), lanes);
        let zero = _mm256_setzero_ps();
        // SAFETY (all loads and stores below): masked to the panel's `cols` columns of row r.
        let (bias0, bias1) = if bias.is_null() {
            (zero, zero)
        } else {
            unsafe {
                (
                    _mm256_maskload_ps(bias, m0),
                    _mm256_maskload_ps(bias.add(8), m1),
                )
            }
        };
        // A whole panel's rows are read and written plainly: masked moves are slow on some
        // AVX2 CPUs (microcoded on AMD's), and most panels are whole.
        let whole = cols == 16;
        for (r, acc) in acc.iter().enumerate() {
            let cr = unsafe { cp.add(r * ldc) };
            let (mut v0, mut v1) = (acc[0], acc[1]);
            if !first {
                unsafe {
                    let (c0, c1) = if whole {
                        (_mm256_loadu_ps(cr), _mm256_loadu_ps(cr.add(8)))
                    } else {
                        (
                            _mm256_maskload_ps(cr, m0),
                            _mm256_maskload_ps(cr.add(8), m1),
                        )
                    };
                    v0 = _mm256_add_ps(v0, c0);
                    v1 = _mm256_add_ps(v1, c1);
                }
            }
            if last {
                v0 = _mm256_add_ps(v0, bias0);
                v1 = _mm256_add_ps(v1, bias1);
                if relu {
                    v0 = _mm256_max_ps(v0, zero);
                    v1 = _mm256_max_ps(v1, zero);
                }
            }
            unsafe {
                if whole {
                    _mm256_storeu_ps(cr, v0);
                    _mm256_storeu_ps(cr.add(8), v1);
                } else {
                    _mm256_maskstore_ps(cr, m0, v0);
                    _mm256_maskstore_ps(cr.add(8), m1, v1);
                }
            }
        }
    }
}
