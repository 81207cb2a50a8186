//! Convolution on NCHW tensors — forward and both backward passes — for training under Burn,
//! whose tensors are NCHW (the inference engine's kernels are channels-last).
//!
//! Per sample, with `col = im2col(x)` of shape `[cin*kh*kw, ho*wo]` (rows in the weight's OIHW
//! order, so the weight `[cout, cin*kh*kw]` is used as it is stored):
//!
//! | pass | GEMM | then |
//! | --- | --- | --- |
//! | forward | `y = W · col` | + bias per output channel |
//! | input gradient | `dcol = Wᵀ · dy` | col2im: scatter-add `dcol` into `dx` |
//! | weight gradient | `dW += dy · colᵀ` | summed over the batch |
//!
//! A 1x1 stride-1 unpadded convolution skips im2col and col2im (`col` is `x` itself). The pixel
//! axis is cut into tiles of at most [`TILE_VALUES`] im2col values, so the workspace is bounded
//! and each tile is still in cache for the GEMM that reads it.
//!
//! The GEMMs are the engine's own (`sgemm`: AVX-512 or AVX2 microkernels chosen at run time),
//! the pixel tile packed as the right operand. Samples are split into as many contiguous runs
//! as there are threads; the weight gradient sums its runs' partial sums in run order, so every
//! result is the same from one run to the next on the same machine and thread count — what
//! resuming a training run bit for bit needs.

use std::ops::Range;

use rayon::prelude::*;

use crate::sgemm::{Epilogue, PackedB, isa, sgemm};
use crate::simd::copy_run;

/// The most im2col values (per thread) one pixel tile holds: 4 MiB of f32.
const TILE_VALUES: usize = 1 << 20;

/// A 2-D convolution over a batch of NCHW samples (groups 1, dilation 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dShape {
    /// Samples.
    pub batch: usize,
    /// Input channels.
    pub cin: usize,
    /// Input `[height, width]`.
    pub input: [usize; 2],
    /// Output channels.
    pub cout: usize,
    /// Window `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// `[(top, bottom), (left, right)]`.
    pub padding: [[usize; 2]; 2],
}

impl Conv2dShape {
    /// Output `[height, width]`, `None` when the window does not fit the padded input or a
    /// stride is zero.
    pub fn output(&self) -> Option<[usize; 2]> {
        let mut out = [0; 2];
        for (d, o) in out.iter_mut().enumerate() {
            let padded = self.input[d] + self.padding[d][0] + self.padding[d][1];
            if self.stride[d] == 0 || self.kernel[d] == 0 || padded < self.kernel[d] {
                return None;
            }
            *o = (padded - self.kernel[d]) / self.stride[d] + 1;
        }
        Some(out)
    }

    /// Values in one input sample.
    pub fn input_len(&self) -> usize {
        self.cin * self.input[0] * self.input[1]
    }

    /// Values in one output sample (0 when the shape has no output).
    pub fn output_len(&self) -> usize {
        self.output().map_or(0, |[h, w]| self.cout * h * w)
    }

    /// Values in the weight `[cout, cin, kh, kw]`.
    pub fn weight_len(&self) -> usize {
        self.cout * self.rows()
    }

    /// im2col rows: `cin * kh * kw`.
    fn rows(&self) -> usize {
        self.cin * self.kernel[0] * self.kernel[1]
    }

    fn pixels(&self) -> usize {
        self.output().map_or(0, |[h, w]| h * w)
    }

    fn pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [[0, 0], [0, 0]]
    }

    /// Output pixels per tile.
    fn tile(&self) -> usize {
        (TILE_VALUES / self.rows().max(1)).clamp(16, self.pixels().max(16))
    }

    fn check(&self, x: usize, w: usize, y: usize) {
        assert!(self.output().is_some(), "the window does not fit the input");
        assert_eq!(x, self.batch * self.input_len(), "input length");
        assert_eq!(w, self.weight_len(), "weight length");
        assert_eq!(y, self.batch * self.output_len(), "output length");
    }
}

/// `y = conv(x, w) + bias`: `x` `[batch, cin, h, w]`, `w` `[cout, cin, kh, kw]`, `y`
/// `[batch, cout, ho, wo]`, all contiguous.
///
/// # Panics
/// If a length does not match `shape`.
pub fn conv2d_forward(
    shape: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    shape.check(x.len(), w.len(), y.len());
    if let Some(b) = bias {
        assert_eq!(b.len(), shape.cout, "bias length");
    }
    let (xl, yl) = (shape.input_len(), shape.output_len());
    for_samples(shape.batch, y, yl, |n, y_n, ws| {
        forward_sample(shape, &x[n * xl..(n + 1) * xl], w, y_n, ws);
        if let Some(b) = bias {
            for (row, b) in y_n.chunks_mut(shape.pixels()).zip(b) {
                row.iter_mut().for_each(|v| *v += b);
            }
        }
    });
}

/// The input gradient `dx` `[batch, cin, h, w]` from the output gradient `dy`.
///
/// # Panics
/// If a length does not match `shape`.
pub fn conv2d_backward_input(shape: &Conv2dShape, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    shape.check(dx.len(), w.len(), dy.len());
    // Wᵀ `[cin*kh*kw, cout]`, the GEMM's left operand.
    let wt = transpose(w, shape.cout, shape.rows());
    let (xl, yl) = (shape.input_len(), shape.output_len());
    for_samples(shape.batch, dx, xl, |n, dx_n, ws| {
        input_grad_sample(shape, &dy[n * yl..(n + 1) * yl], &wt, dx_n, ws);
    });
}

/// The weight gradient `dw` `[cout, cin, kh, kw]`, summed over the batch.
///
/// # Panics
/// If a length does not match `shape`.
pub fn conv2d_backward_weight(shape: &Conv2dShape, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    shape.check(x.len(), dw.len(), dy.len());
    let (xl, yl) = (shape.input_len(), shape.output_len());
    // Each run of samples sums into its own dWᵀ `[cin*kh*kw, cout]`; the runs' sums are added
    // in run order.
    let runs = runs(shape.batch);
    let mut partials = vec![vec![0f32; dw.len()]; runs.len()];
    partials
        .par_iter_mut()
        .zip(runs.par_iter())
        .for_each(|(acc, r)| {
            let mut ws = Workspace::new();
            for (i, n) in r.clone().enumerate() {
                let (x_n, dy_n) = (&x[n * xl..(n + 1) * xl], &dy[n * yl..(n + 1) * yl]);
                weight_grad_sample(shape, x_n, dy_n, acc, i > 0, &mut ws);
            }
        });
    let parts: Vec<&[f32]> = partials.iter().map(Vec::as_slice).collect();
    transpose_sum(&parts, shape.rows(), shape.cout, dw);
}

/// The bias gradient `db` `[cout]`: `dy` summed over the batch and the pixels.
///
/// # Panics
/// If `dy` is not `batch` samples of `db.len()` channels of `pixels` values.
pub fn conv2d_backward_bias(dy: &[f32], batch: usize, pixels: usize, db: &mut [f32]) {
    let cout = db.len();
    assert_eq!(dy.len(), batch * cout * pixels, "output gradient length");
    db.par_iter_mut().enumerate().for_each(|(c, d)| {
        let mut s = 0f64;
        for n in 0..batch {
            let start = (n * cout + c) * pixels;
            s += dy[start..start + pixels]
                .iter()
                .map(|&v| v as f64)
                .sum::<f64>();
        }
        *d = s as f32;
    });
}

/// Contiguous runs of samples, one per thread (at most one per sample).
fn runs(batch: usize) -> Vec<Range<usize>> {
    let threads = rayon::current_num_threads().max(1);
    let count = threads.min(batch);
    (0..count)
        .map(|i| batch * i / count..batch * (i + 1) / count)
        .collect()
}

/// One thread's scratch memory, reused from tile to tile.
struct Workspace {
    col: Vec<f32>,
    packed: PackedB,
}

impl Workspace {
    fn new() -> Self {
        Self {
            col: Vec::new(),
            packed: PackedB::empty(isa()),
        }
    }
}

/// Calls `f(n, out_n, workspace)` for every sample, the runs of samples in parallel.
fn for_samples(
    batch: usize,
    out: &mut [f32],
    per_sample: usize,
    f: impl Fn(usize, &mut [f32], &mut Workspace) + Sync,
) {
    if per_sample == 0 {
        return;
    }
    let runs = runs(batch);
    let mut chunks = Vec::with_capacity(runs.len());
    let mut rest = out;
    for r in &runs {
        let (head, tail) = rest.split_at_mut(r.len() * per_sample);
        chunks.push((r.clone(), head));
        rest = tail;
    }
    chunks.into_par_iter().for_each(|(r, chunk)| {
        let mut ws = Workspace::new();
        for (n, out_n) in r.zip(chunk.chunks_mut(per_sample)) {
            f(n, out_n, &mut ws);
        }
    });
}

/// `[rows, cols]` row-major to `[cols, rows]`.
fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; a.len()];
    transpose_sum(&[a], rows, cols, &mut t);
    t
}

/// `out[c][r] = Σ parts[i][r][c]`, the parts (`[rows, cols]` row-major each) added from the last
/// to the first: a sum and a transpose in one pass, in blocks of `BLOCK x BLOCK` values (an
/// element-by-element transpose misses the cache on every write), the output's rows in
/// parallel.
fn transpose_sum(parts: &[&[f32]], rows: usize, cols: usize, out: &mut [f32]) {
    const BLOCK: usize = 16;
    if rows == 0 || cols == 0 {
        return;
    }
    out.par_chunks_mut(rows * BLOCK)
        .enumerate()
        .for_each(|(b, out)| {
            let c0 = b * BLOCK;
            let width = out.len() / rows;
            for r0 in (0..rows).step_by(BLOCK) {
                let r1 = (r0 + BLOCK).min(rows);
                for (dc, out_c) in out.chunks_exact_mut(rows).enumerate().take(width) {
                    let c = c0 + dc;
                    for (r, o) in out_c[r0..r1].iter_mut().enumerate() {
                        let at = (r0 + r) * cols + c;
                        let mut parts = parts.iter().rev();
                        let mut acc = parts.next().map_or(0.0, |p| p[at]);
                        for p in parts {
                            acc += p[at];
                        }
                        *o = acc;
                    }
                }
            }
        });
}

/// `c (+)= a · b`: `a` `[m, b.k()]` rows `lda` apart, `c` `[m, b.n()]` rows `ldc` apart.
///
/// # Safety
/// `a` and `c` must be valid for those extents.
unsafe fn gemm(
    m: usize,
    a: *const f32,
    lda: usize,
    b: &PackedB,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    let epilogue = Epilogue {
        bias: None,
        relu: false,
        accumulate,
    };
    // SAFETY: the caller's.
    unsafe { sgemm(m, a, lda, b, c, ldc, epilogue, 0..b.panels()) }
}

/// `y_n = W · col`, a tile of output pixels at a time.
fn forward_sample(
    shape: &Conv2dShape,
    x_n: &[f32],
    w: &[f32],
    y_n: &mut [f32],
    ws: &mut Workspace,
) {
    let (k, p, cout) = (shape.rows(), shape.pixels(), shape.cout);
    let tile = shape.tile();
    for p0 in (0..p).step_by(tile) {
        let pt = tile.min(p - p0);
        if shape.pointwise() {
            ws.packed.pack(&x_n[p0..], k, pt, p, 1);
        } else {
            im2col_packed(shape, x_n, p0..p0 + pt, &mut ws.col, &mut ws.packed);
        }
        // SAFETY: w is [cout, k]; the destination is columns p0..p0+pt of y_n [cout, p].
        unsafe {
            gemm(
                cout,
                w.as_ptr(),
                k,
                &ws.packed,
                y_n.as_mut_ptr().add(p0),
                p,
                false,
            )
        };
    }
}

/// `dcol = Wᵀ · dy_n`, scattered back onto `dx_n` (written directly for a 1x1 convolution).
fn input_grad_sample(
    shape: &Conv2dShape,
    dy_n: &[f32],
    wt: &[f32],
    dx_n: &mut [f32],
    ws: &mut Workspace,
) {
    let (k, p, cout) = (shape.rows(), shape.pixels(), shape.cout);
    let tile = shape.tile();
    if !shape.pointwise() {
        dx_n.fill(0.0);
    }
    for p0 in (0..p).step_by(tile) {
        let pt = tile.min(p - p0);
        ws.packed.pack(&dy_n[p0..], cout, pt, p, 1);
        if shape.pointwise() {
            // SAFETY: wt is [k, cout]; columns p0..p0+pt of dx_n [k, p].
            unsafe {
                gemm(
                    k,
                    wt.as_ptr(),
                    cout,
                    &ws.packed,
                    dx_n.as_mut_ptr().add(p0),
                    p,
                    false,
                )
            };
        } else {
            ws.col.resize(k * pt, 0.0);
            // SAFETY: wt is [k, cout]; col is [k, pt].
            unsafe {
                gemm(
                    k,
                    wt.as_ptr(),
                    cout,
                    &ws.packed,
                    ws.col.as_mut_ptr(),
                    pt,
                    false,
                )
            };
            col2im(shape, &ws.col, p0..p0 + pt, dx_n);
        }
    }
}

/// `dwt (+)= col · dy_nᵀ` (`dwt` is the weight gradient transposed, `[cin*kh*kw, cout]`).
fn weight_grad_sample(
    shape: &Conv2dShape,
    x_n: &[f32],
    dy_n: &[f32],
    dwt: &mut [f32],
    accumulate: bool,
    ws: &mut Workspace,
) {
    let (k, p, cout) = (shape.rows(), shape.pixels(), shape.cout);
    let tile = shape.tile();
    for (i, p0) in (0..p).step_by(tile).enumerate() {
        let pt = tile.min(p - p0);
        // dy_nᵀ's tile `[pt, cout]`: column co is row co of dy_n.
        ws.packed.pack(&dy_n[p0..], pt, cout, 1, p);
        let (a, lda) = if shape.pointwise() {
            (x_n[p0..].as_ptr(), p)
        } else {
            ws.col.resize(k * pt, 0.0);
            im2col(shape, x_n, p0..p0 + pt, &mut ws.col);
            (ws.col.as_ptr(), pt)
        };
        // SAFETY: a is [k, pt] rows lda apart; dwt is [k, cout].
        unsafe {
            gemm(
                k,
                a,
                lda,
                &ws.packed,
                dwt.as_mut_ptr(),
                cout,
                accumulate || i > 0,
            )
        };
    }
}

/// For each im2col row `(ci, ky, kx)` and each output pixel of `pixels` (a run of the output's
/// row-major pixels): the input value the window reads there, 0 in the padding. `col` is
/// `[cin*kh*kw, pixels.len()]`.
fn im2col(shape: &Conv2dShape, x_n: &[f32], pixels: Range<usize>, col: &mut [f32]) {
    let pt = pixels.len();
    let hw = shape.input[0] * shape.input[1];
    for_each_row(shape, pixels, |row, ci, segments| {
        gather(
            &x_n[ci * hw..(ci + 1) * hw],
            segments,
            &mut col[row * pt..(row + 1) * pt],
        );
    });
}

/// [`im2col`] straight into the GEMM's packed right operand, a row at a time (each row packed
/// while it is in the L1 cache, where writing the whole tile out and packing it afterwards
/// went through memory twice). `row` is scratch space.
fn im2col_packed(
    shape: &Conv2dShape,
    x_n: &[f32],
    pixels: Range<usize>,
    row: &mut Vec<f32>,
    packed: &mut PackedB,
) {
    let pt = pixels.len();
    let hw = shape.input[0] * shape.input[1];
    row.resize(pt, 0.0);
    packed.start(shape.rows(), pt);
    for_each_row(shape, pixels, |r, ci, segments| {
        gather(&x_n[ci * hw..(ci + 1) * hw], segments, row);
        packed.set_row(r, row);
    });
}

/// Writes one im2col row's `segments` of the input `plane` into `dst`. The runs are short (an
/// output row's width at most), so they are copied inline ([`copy_run`]), not by `memmove` calls.
fn gather(plane: &[f32], segments: &mut dyn Iterator<Item = Segment>, dst: &mut [f32]) {
    for s in segments {
        match s {
            Segment::Zero { at, len } => dst[at..at + len].iter_mut().for_each(|d| *d = 0.0),
            Segment::Read { at, len, src, step } => {
                let dst = &mut dst[at..at + len];
                if step == 1 {
                    copy_run(dst, &plane[src..src + len]);
                } else {
                    for (i, d) in dst.iter_mut().enumerate() {
                        *d = plane[src + i * step];
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds each `dcol` value to the input pixel it was read from.
fn col2im(shape: &Conv2dShape, dcol: &[f32], pixels: Range<usize>, dx_n: &mut [f32]) {
    let pt = pixels.len();
    let hw = shape.input[0] * shape.input[1];
    for_each_row(shape, pixels, |row, ci, segments| {
        let src = &dcol[row * pt..(row + 1) * pt];
        let plane = &mut dx_n[ci * hw..(ci + 1) * hw];
        for s in segments {
            if let Segment::Read {
                at,
                len,
                src: to,
                step,
            } = s
            {
                if step == 1 {
                    plane[to..to + len]
                        .iter_mut()
                        .zip(&src[at..at + len])
                        .for_each(|(d, v)| *d += v);
                } else {
                    for (i, v) in src[at..at + len].iter().enumerate() {
                        plane[to + i * step] += v;
                    }
                }
            }
        }
    });
}

/// A run of one im2col row inside a pixel tile: zeros (padding), or `len` input values from
/// plane index `src` on, `step` apart.
#[derive(Clone, Copy)]
enum Segment {
    Zero {
        at: usize,
        len: usize,
    },
    Read {
        at: usize,
        len: usize,
        src: usize,
        step: usize,
    },
}

/// Calls `f(row, ci, segments)` for every im2col row, with the segments that make up its
/// values over `pixels`.
fn for_each_row(
    shape: &Conv2dShape,
    pixels: Range<usize>,
    mut f: impl FnMut(usize, usize, &mut dyn Iterator<Item = Segment>),
) {
    let Some([ho, wo]) = shape.output() else {
        return;
    };
    let [kh, kw] = shape.kernel;
    let [sy, sx] = shape.stride;
    let [[pt_, _], [pl, _]] = shape.padding;
    let [h, w] = shape.input;
    debug_assert!(pixels.end <= ho * wo);
    let mut segs = Vec::new();
    for ci in 0..shape.cin {
        for ky in 0..kh {
            for kx in 0..kw {
                let row = (ci * kh + ky) * kw + kx;
                segs.clear();
                // Output columns ox whose input column ox*sx + kx - pl lies inside [0, w).
                let lo = pl.saturating_sub(kx).div_ceil(sx).min(wo);
                let hi = if w + pl > kx {
                    ((w + pl - kx - 1) / sx + 1).min(wo)
                } else {
                    0
                }
                .max(lo);
                let mut p = pixels.start;
                while p < pixels.end {
                    let (oy, ox) = (p / wo, p % wo);
                    let run_end = (p - ox + wo).min(pixels.end);
                    let at = p - pixels.start;
                    let iy = (oy * sy + ky) as isize - pt_ as isize;
                    let x_end = ox + (run_end - p);
                    if iy < 0 || iy >= h as isize {
                        segs.push(Segment::Zero {
                            at,
                            len: run_end - p,
                        });
                    } else {
                        let (a, b) = (lo.clamp(ox, x_end), hi.clamp(ox, x_end));
                        if a > ox {
                            segs.push(Segment::Zero { at, len: a - ox });
                        }
                        if b > a {
                            let src = iy as usize * w + a * sx + kx - pl;
                            segs.push(Segment::Read {
                                at: at + a - ox,
                                len: b - a,
                                src,
                                step: sx,
                            });
                        }
                        if x_end > b {
                            segs.push(Segment::Zero {
                                at: at + b - ox,
                                len: x_end - b,
                            });
                        }
                    }
                    p = run_end;
                }
                f(row, ci, &mut segs.iter().copied());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::data;

    /// Straight from the definition, in f64: `y = conv(x, w)`, and for the output gradient
    /// `dy`, `dx` and `dw`.
    fn reference(s: &Conv2dShape, x: &[f32], w: &[f32], dy: &[f32]) -> [Vec<f64>; 3] {
        let [ho, wo] = s.output().unwrap();
        let [kh, kw] = s.kernel;
        let mut y = vec![0f64; s.batch * s.output_len()];
        let mut dx = vec![0f64; x.len()];
        let mut dw = vec![0f64; w.len()];
        for n in 0..s.batch {
            for co in 0..s.cout {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let yi = ((n * s.cout + co) * ho + oy) * wo + ox;
                        for ci in 0..s.cin {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy =
                                        (oy * s.stride[0] + ky) as isize - s.padding[0][0] as isize;
                                    let ix =
                                        (ox * s.stride[1] + kx) as isize - s.padding[1][0] as isize;
                                    if iy < 0
                                        || ix < 0
                                        || iy >= s.input[0] as isize
                                        || ix >= s.input[1] as isize
                                    {
                                        continue;
                                    }
                                    let xi = ((n * s.cin + ci) * s.input[0] + iy as usize)
                                        * s.input[1]
                                        + ix as usize;
                                    let wi = ((co * s.cin + ci) * kh + ky) * kw + kx;
                                    y[yi] += x[xi] as f64 * w[wi] as f64;
                                    dx[xi] += w[wi] as f64 * dy[yi] as f64;
                                    dw[wi] += x[xi] as f64 * dy[yi] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        [y, dx, dw]
    }

    fn close(got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((*g as f64 - w).abs() <= 1e-4 * scale, "at {i}: {g} vs {w}");
        }
    }

    fn shapes() -> Vec<Conv2dShape> {
        let s = |batch, cin, input, cout, kernel, stride, padding| Conv2dShape {
            batch,
            cin,
            input,
            cout,
            kernel,
            stride,
            padding,
        };
        vec![
            s(3, 5, [7, 6], 4, [3, 3], [1, 1], [[1, 1], [1, 1]]),
            s(2, 3, [9, 11], 6, [7, 7], [2, 2], [[3, 3], [3, 3]]),
            s(1, 4, [8, 8], 3, [1, 1], [1, 1], [[0, 0], [0, 0]]),
            s(5, 2, [10, 9], 3, [1, 7], [1, 1], [[0, 0], [3, 3]]),
            s(2, 3, [9, 9], 2, [3, 3], [2, 2], [[0, 1], [0, 1]]),
            s(3, 2, [5, 5], 2, [1, 1], [2, 2], [[0, 0], [0, 0]]),
        ]
    }

    #[test]
    fn the_forward_pass_is_the_convolution() {
        for s in shapes() {
            let x = data(s.batch * s.input_len(), 1);
            let w = data(s.weight_len(), 2);
            let bias = data(s.cout, 3);
            let mut y = vec![f32::NAN; s.batch * s.output_len()];
            conv2d_forward(&s, &x, &w, Some(&bias), &mut y);
            let [mut want, _, _] = reference(&s, &x, &w, &vec![0.0; y.len()]);
            let p = s.output_len() / s.cout;
            for (i, v) in want.iter_mut().enumerate() {
                *v += bias[(i / p) % s.cout] as f64;
            }
            close(&y, &want);
        }
    }

    #[test]
    fn the_gradients_are_the_convolutions_derivatives() {
        for s in shapes() {
            let x = data(s.batch * s.input_len(), 4);
            let w = data(s.weight_len(), 5);
            let dy = data(s.batch * s.output_len(), 6);
            let [_, want_dx, want_dw] = reference(&s, &x, &w, &dy);
            let mut dx = vec![f32::NAN; x.len()];
            conv2d_backward_input(&s, &dy, &w, &mut dx);
            close(&dx, &want_dx);
            let mut dw = vec![f32::NAN; w.len()];
            conv2d_backward_weight(&s, &x, &dy, &mut dw);
            close(&dw, &want_dw);
            let mut db = vec![0f32; s.cout];
            let p = s.output_len() / s.cout;
            conv2d_backward_bias(&dy, s.batch, p, &mut db);
            let want: Vec<f64> = (0..s.cout)
                .map(|c| {
                    (0..s.batch)
                        .map(|n| {
                            dy[(n * s.cout + c) * p..][..p]
                                .iter()
                                .map(|&v| v as f64)
                                .sum::<f64>()
                        })
                        .sum()
                })
                .collect();
            close(&db, &want);
        }
    }
}
