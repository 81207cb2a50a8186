//! Convolution and dense layers as GEMMs over channels-last rows, with the bias and ReLU applied
//! in the epilogue.
//!
//! A 1x1 convolution with stride 1 reads its input rows in place (row stride = the input
//! buffer's channel stride); any other window gathers im2col rows `[(ky, kx, c_in)]` for a chunk
//! of output pixels into a per-thread workspace. The weights are stored `[K, c_out]` once, at
//! compile time, with BatchNorm folded in.

use rayon::prelude::*;

use crate::View;
use crate::sgemm::{Epilogue, PackedB, sgemm};
use crate::simd::{copy_run, vectorized};
use crate::winograd::Winograd;

/// The most im2col values one thread gathers at a time (1 MiB of f32): bounds the workspace and
/// keeps a chunk's rows in the L2 cache for the GEMM that reads them (4 MiB chunks spilled:
/// Inception v3's 5x5 layers ran 15% slower, its 1x7/7x1 layers 5%).
const CHUNK_VALUES: usize = 1 << 18;

/// The shape of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Window `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// `[(top, bottom), (left, right)]`.
    pub padding: [[usize; 2]; 2],
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
}

/// A convolution (or a dense layer: a 1x1 convolution over a 1x1 map) with its weights laid
/// out for the GEMM, its bias and an optional ReLU.
pub struct ConvKernel {
    geometry: ConvGeometry,
    /// `[kh * kw * cin, cout]`, packed for the microkernel (`None` when only the Winograd form
    /// is kept).
    packed: Option<PackedB>,
    bias: Vec<f32>,
    relu: bool,
    /// The Winograd form of a 3x3 stride-1 kernel, used when the batch has enough tiles.
    winograd: Option<Winograd>,
}

/// Fewer output rows per thread than this and a convolution's GEMM splits its output channels
/// between the threads instead of its rows.
const MIN_SPLIT_ROWS: usize = 96;

/// A batch with fewer 4x4 output tiles than this runs a 3x3 convolution as a direct GEMM:
/// Winograd's weights are four times the direct ones, and with few tiles to share them,
/// reading them costs more than the multiplies saved (GoogLeNet at batch 1 ran 9% faster with
/// its 14x14 layers direct, at batch 16 13% faster with them through Winograd).
const WINOGRAD_TILES: usize = 48;

/// Fewer 4x4 tiles per sample than this and a 3x3 convolution keeps only its direct weights
/// (8x8 and 7x7 maps); from [`WINOGRAD_TILES`] up, only its Winograd weights; in between
/// (14x14), both, and the batch decides.
const MIN_SAMPLE_TILES: usize = 8;

impl ConvKernel {
    /// From PyTorch's / Burn's `[cout, cin, kh, kw]` weight, each output channel multiplied by
    /// `scale[co]` (a folded BatchNorm) when given. `None` when the lengths do not fit.
    pub fn from_oihw(
        geometry: ConvGeometry,
        weight: &[f32],
        scale: Option<&[f64]>,
        bias: Vec<f32>,
        relu: bool,
    ) -> Option<Self> {
        let [kh, kw] = geometry.kernel;
        let (cin, cout) = (geometry.cin, geometry.cout);
        let k = kh * kw * cin;
        if weight.len() != k * cout || bias.len() != cout || scale.is_some_and(|s| s.len() != cout)
        {
            return None;
        }
        let mut w = vec![0f32; k * cout];
        for co in 0..cout {
            let s = scale.map_or(1.0, |s| s[co]);
            for ci in 0..cin {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let src = ((co * cin + ci) * kh + ky) * kw + kx;
                        let row = (ky * kw + kx) * cin + ci;
                        w[row * cout + co] = (weight[src] as f64 * s) as f32;
                    }
                }
            }
        }
        let winograd =
            (geometry.kernel == [3, 3] && geometry.stride == [1, 1] && cin >= 8 && cout >= 8).then(
                || {
                    Winograd::new(
                        cin,
                        cout,
                        [geometry.padding[0][0], geometry.padding[1][0]],
                        &w,
                    )
                },
            );
        Some(Self {
            geometry,
            packed: Some(PackedB::new(&w, k, cout)),
            bias,
            relu,
            winograd,
        })
    }

    /// The same kernel computing every window directly (no Winograd transform): the
    /// reference the Winograd path is tested against.
    /// (Before [`ConvKernel::specialise`], which may have dropped the direct weights.)
    pub fn without_winograd(mut self) -> Self {
        if self.packed.is_some() {
            self.winograd = None;
        }
        self
    }

    /// Keeps only the weights an output of `h` x `w` pixels can use: the Winograd form when
    /// one sample has enough 4x4 tiles for it (then every batch takes it), the direct form
    /// when it has few, both in between (the batch size then chooses).
    pub fn specialise(mut self, h: usize, w: usize) -> Self {
        if self.winograd.is_some() {
            let tiles = h.div_ceil(4) * w.div_ceil(4);
            if tiles >= WINOGRAD_TILES {
                self.packed = None;
            } else if tiles < MIN_SAMPLE_TILES {
                self.winograd = None;
            }
        }
        self
    }

    /// Whether a batch of `batch` samples of `ov` would run through the Winograd transform.
    pub fn uses_winograd(&self, ov: &View, batch: usize) -> bool {
        self.winograd.is_some()
            && (self.packed.is_none() || Winograd::tiles(ov, batch) >= WINOGRAD_TILES)
    }

    /// A dense layer from its `[in, out]` weight (Burn's layout), columns scaled by `scale`.
    pub fn dense(
        inputs: usize,
        weight: Vec<f32>,
        scale: Option<&[f64]>,
        bias: Vec<f32>,
        relu: bool,
    ) -> Option<Self> {
        let cout = bias.len();
        if weight.len() != inputs * cout || scale.is_some_and(|s| s.len() != cout) {
            return None;
        }
        let mut w = weight;
        if let Some(scale) = scale {
            for row in w.chunks_mut(cout.max(1)) {
                for (x, s) in row.iter_mut().zip(scale) {
                    *x = (*x as f64 * s) as f32;
                }
            }
        }
        Some(Self {
            geometry: ConvGeometry {
                kernel: [1, 1],
                stride: [1, 1],
                padding: [[0, 0], [0, 0]],
                cin: inputs,
                cout,
            },
            packed: Some(PackedB::new(&w, inputs, cout)),
            bias,
            relu,
            winograd: None,
        })
    }

    /// The convolution's shape.
    pub fn geometry(&self) -> &ConvGeometry {
        &self.geometry
    }

    fn pointwise(&self) -> bool {
        let g = &self.geometry;
        g.kernel == [1, 1] && g.stride == [1, 1] && g.padding == [[0, 0], [0, 0]]
    }

    /// Computes `batch` samples of `ov` from `iv` (whose buffer is `input`).
    ///
    /// # Panics
    /// If a buffer is shorter than its view needs for the batch.
    pub fn run(&self, input: &[f32], iv: &View, out: &mut [f32], ov: &View, batch: usize) {
        assert!(
            iv.fits(input.len(), batch) && ov.fits(out.len(), batch),
            "buffers too short"
        );
        if let Some(w) = &self.winograd
            && self.uses_winograd(ov, batch)
        {
            w.run(input, iv, out, ov, batch, &self.bias, self.relu);
            return;
        }
        let Some(packed) = &self.packed else {
            return;
        };
        let rows = batch * ov.pixels();
        let k = self.geometry.kernel[0] * self.geometry.kernel[1] * self.geometry.cin;
        let threads = rayon::current_num_threads().max(1);
        let out_ptr = SendPtr(out.as_mut_ptr());
        // Rows per chunk: within the im2col budget (a 1x1 convolution reads its input in
        // place), and small enough that every thread gets at least two chunks.
        let budget = if self.pointwise() {
            2048
        } else {
            (CHUNK_VALUES / k.max(1)).clamp(16, 4096)
        };
        if threads == 1 || rows >= MIN_SPLIT_ROWS * threads {
            let chunk = balanced_chunk(rows, budget, threads);
            (0..rows.div_ceil(chunk))
                .into_par_iter()
                .for_each_init(Vec::new, |col, c| {
                    let start = c * chunk;
                    let n = chunk.min(rows - start);
                    // SAFETY: chunks write disjoint output rows.
                    unsafe { self.rows(input, iv, out_ptr, ov, start, n, col, 0..packed.panels()) };
                });
        } else {
            // Few rows (a batch of one at 7x7): the threads split the output channels.
            let mut col = Vec::new();
            let panels = packed.panels();
            let groups = threads.min(panels);
            let chunk = budget.min(rows);
            for c in 0..rows.div_ceil(chunk) {
                let start = c * chunk;
                let n = chunk.min(rows - start);
                let (a, lda) = self.lhs(input, iv, ov, start, n, &mut col);
                let a = SendPtr(a as *mut f32);
                (0..groups).into_par_iter().for_each(|g| {
                    let part = g * panels / groups..(g + 1) * panels / groups;
                    // SAFETY: the groups write disjoint columns of these rows.
                    unsafe { self.gemm(a.ptr(), lda, out_ptr, ov, start, n, part) };
                });
            }
        }
    }

    /// The GEMM's left-hand side for output rows `[start, start + n)`: the input rows
    /// themselves (1x1, stride 1), or their windows gathered into `col`.
    fn lhs(
        &self,
        input: &[f32],
        iv: &View,
        ov: &View,
        start: usize,
        n: usize,
        col: &mut Vec<f32>,
    ) -> (*const f32, usize) {
        if self.pointwise() {
            (input[start * iv.stride + iv.offset..].as_ptr(), iv.stride)
        } else {
            let k = self.geometry.kernel[0] * self.geometry.kernel[1] * self.geometry.cin;
            col.resize(n * k, 0.0);
            vectorized(
                #[inline(always)]
                || self.im2col(input, iv, ov, start, n, col),
            );
            (col.as_ptr(), k)
        }
    }

    /// Computes output rows `[start, start + n)` (a row is one output pixel of one sample).
    ///
    /// # Safety
    /// `out` must point to a buffer laid out as `ov` for the whole batch, and no other thread
    /// may write these rows at the same time.
    #[allow(clippy::too_many_arguments)]
    unsafe fn rows(
        &self,
        input: &[f32],
        iv: &View,
        out: SendPtr,
        ov: &View,
        start: usize,
        n: usize,
        col: &mut Vec<f32>,
        panels: std::ops::Range<usize>,
    ) {
        let (a, lda) = self.lhs(input, iv, ov, start, n, col);
        // SAFETY: forwarded from the caller.
        unsafe { self.gemm(a, lda, out, ov, start, n, panels) };
    }

    /// `out[rows] = a · W + bias` (ReLU'd) for the given column panels.
    ///
    /// # Safety
    /// `a` holds `n` rows of `k` values spaced `lda`; `out` is laid out as `ov` and these rows
    /// and panels are this caller's alone.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        &self,
        a: *const f32,
        lda: usize,
        out: SendPtr,
        ov: &View,
        start: usize,
        n: usize,
        panels: std::ops::Range<usize>,
    ) {
        let Some(packed) = &self.packed else {
            return;
        };
        let epilogue = Epilogue {
            bias: Some(&self.bias),
            relu: self.relu,
            accumulate: false,
        };
        // SAFETY: the caller's guarantees; the output rows start at `start`.
        unsafe {
            let dst = out.0.add(start * ov.stride + ov.offset);
            sgemm(n, a, lda, packed, dst, ov.stride, epilogue, panels);
        }
    }

    /// Gathers the windows of output rows `[start, start + n)` as `[n, kh * kw * cin]`.
    #[inline(always)]
    fn im2col(&self, input: &[f32], iv: &View, ov: &View, start: usize, n: usize, col: &mut [f32]) {
        let g = &self.geometry;
        let [kh, kw] = g.kernel;
        let [sh, sw] = g.stride;
        let (pt, pl) = (g.padding[0][0], g.padding[1][0]);
        let cin = g.cin;
        let k = kh * kw * cin;
        let (ih, iw) = (iv.h as isize, iv.w as isize);
        let in_sample = iv.h * iv.w * iv.stride;
        for r in 0..n {
            let m = start + r;
            let b = m / ov.pixels();
            let p = m % ov.pixels();
            let (oy, ox) = (p / ov.w, p % ov.w);
            let row = &mut col[r * k..(r + 1) * k];
            let base = b * in_sample + iv.offset;
            for ky in 0..kh {
                let y = (oy * sh + ky) as isize - pt as isize;
                let dst = &mut row[ky * kw * cin..(ky + 1) * kw * cin];
                if y < 0 || y >= ih {
                    dst.fill(0.0);
                    continue;
                }
                let x0 = (ox * sw) as isize - pl as isize;
                if x0 >= 0 && x0 + kw as isize <= iw && iv.stride == cin {
                    // The whole row of the window is contiguous in the input.
                    let src = base + (y as usize * iv.w + x0 as usize) * cin;
                    copy_run(dst, &input[src..src + kw * cin]);
                    continue;
                }
                for kx in 0..kw {
                    let x = x0 + kx as isize;
                    let d = &mut dst[kx * cin..(kx + 1) * cin];
                    if x < 0 || x >= iw {
                        d.fill(0.0);
                    } else {
                        let src = base + (y as usize * iv.w + x as usize) * iv.stride;
                        copy_run(d, &input[src..src + cin]);
                    }
                }
            }
        }
    }
}

/// Items per chunk when `total` items are split into chunks of at most `budget` (and at
/// least one) items, their count a multiple of `threads` so that no thread waits for another
/// to finish a last chunk.
pub(crate) fn balanced_chunk(total: usize, budget: usize, threads: usize) -> usize {
    let threads = threads.max(1);
    let chunks = total.div_ceil(budget.max(1)).max(threads).div_ceil(threads) * threads;
    total.div_ceil(chunks).max(1)
}

/// A raw output pointer shared by the threads that write disjoint rows.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub(crate) *mut f32);

impl SendPtr {
    /// The pointer (a method, so that closures capture the whole `Send` wrapper).
    pub(crate) fn ptr(self) -> *mut f32 {
        self.0
    }
}
// SAFETY: only used for disjoint writes, synchronised by rayon's join.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}
