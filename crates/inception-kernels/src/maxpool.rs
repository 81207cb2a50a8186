//! Max pooling on NCHW tensors for training: the forward pass, and the backward pass, which
//! finds each window's maximum again in the input (rather than storing its index) and sends the
//! output's gradient there.
//!
//! The forward pass needs only values: the maximum down each output row's span of input rows
//! (contiguous, vectorised), then across each window's columns. The backward pass is given the
//! forward output `y` and looks, window by window and vectorised across the output row, for the
//! first input pixel (row-major) equal to it — PyTorch's and Burn's rule "the first maximum wins",
//! which decides where the gradient of a window of equal values (zeros after a ReLU) goes; a NaN
//! always wins, the last one scanned. Padding never wins: a window only covers the input pixels
//! inside it. A pooling whose output is as large as its input (stride 1: an inception module's
//! pool branch) is scanned a whole plane at a time instead (see `Taps`), and every loop runs
//! compiled for the CPU's vector unit ([`crate::simd`]).

use rayon::prelude::*;

use crate::simd::{Vectorizable, vectorize};

/// A max pooling over a batch of NCHW planes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPoolShape {
    /// Planes: samples times channels.
    pub planes: usize,
    /// Input `[height, width]`.
    pub input: [usize; 2],
    /// Output `[height, width]` (the caller's rounding: floor or ceil mode).
    pub output: [usize; 2],
    /// Window `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// Padding before the first row and column `[top, left]`.
    pub padding: [usize; 2],
}

/// Whether `v`, scanned after `best`, becomes the maximum: it is larger, or a NaN.
#[inline(always)]
fn takes(v: f32, best: f32) -> bool {
    (v > best) | v.is_nan()
}

/// The larger of `best` and `v` scanned after it, NaN winning.
#[inline(always)]
fn larger(best: f32, v: f32) -> f32 {
    if takes(v, best) { v } else { best }
}

/// No input pixel found yet for a window (backward pass).
const NONE: u32 = u32::MAX;

/// Whether pixel `v`, scanned for a window whose maximum is `max` and whose pixel found so far
/// is `pos`, becomes the window's maximum (backward pass): the first pixel equal to the
/// maximum, or a NaN (the last one scanned). The counterpart of [`takes`] given the forward
/// output.
#[inline(always)]
fn marks(pos: u32, v: f32, max: f32) -> bool {
    ((pos == NONE) & (v == max)) | v.is_nan()
}

/// Adds each output's gradient `g` at the input pixel `pos` marked for it (none: no pixel).
#[inline(always)]
fn add_at(pos: &[u32], g: &[f32], grad: &mut [f32]) {
    for (&i, &g) in pos.iter().zip(g) {
        if let Some(d) = grad.get_mut(i as usize) {
            *d += g;
        }
    }
}

/// What depends on the shape alone, worked out once per call: each output column's span of
/// input columns, and the output columns `a..b` whose span is a whole window (the rest clip at
/// the edges).
struct Columns {
    spans: Vec<(usize, usize)>,
    whole: (usize, usize),
}

impl MaxPoolShape {
    fn in_len(&self) -> usize {
        self.input[0] * self.input[1]
    }

    fn out_len(&self) -> usize {
        self.output[0] * self.output[1]
    }

    /// The input rows (or columns: `d` = 1) output row `o` covers.
    #[inline(always)]
    fn span(&self, d: usize, o: usize) -> (usize, usize) {
        let start = (o * self.stride[d]) as isize - self.padding[d] as isize;
        let end = start + self.kernel[d] as isize;
        let n = self.input[d] as isize;
        (start.clamp(0, n) as usize, end.clamp(0, n) as usize)
    }

    fn columns(&self) -> Columns {
        let (w, ow) = (self.input[1], self.output[1]);
        let [k, st, pl] = [self.kernel[1], self.stride[1], self.padding[1]];
        let a = pl.div_ceil(st).min(ow);
        let b = if w + pl >= k {
            ((w + pl - k) / st + 1).clamp(a, ow)
        } else {
            a
        };
        Columns {
            spans: (0..ow).map(|o| self.span(1, o)).collect(),
            whole: (a, b),
        }
    }

    /// The output columns whose windows `columns` finds clipped by the input.
    #[inline(always)]
    fn edges(columns: &Columns) -> impl Iterator<Item = usize> + '_ {
        let (a, b) = columns.whole;
        (0..a).chain(b..columns.spans.len())
    }

    /// One output row of the forward pass: `rows` is the plane's rows `y0..y1` (the output row's
    /// span), `vmax` a scratch row.
    #[inline(always)]
    fn forward_row(
        &self,
        plane: &[f32],
        rows: (usize, usize),
        columns: &Columns,
        vmax: &mut [f32],
        out: &mut [f32],
    ) {
        let w = self.input[1];
        let (y0, y1) = rows;
        if y0 == y1 {
            out.fill(f32::NEG_INFINITY);
            return;
        }
        vmax.copy_from_slice(&plane[y0 * w..(y0 + 1) * w]);
        for iy in y0 + 1..y1 {
            let row = &plane[iy * w..(iy + 1) * w];
            vmax.iter_mut()
                .zip(row)
                .for_each(|(m, &v)| *m = larger(*m, v));
        }
        for ox in Self::edges(columns) {
            let (x0, x1) = columns.spans[ox];
            out[ox] = match vmax.get(x0..x1) {
                Some([first, rest @ ..]) => rest.iter().fold(*first, |m, &v| larger(m, v)),
                _ => f32::NEG_INFINITY,
            };
        }
        let (a, b) = columns.whole;
        if a < b {
            let [k, st, pl] = [self.kernel[1], self.stride[1], self.padding[1]];
            let src = &vmax[a * st - pl..];
            let out = &mut out[a..b];
            match st {
                1 => window_max::<1>(src, k, out),
                2 => window_max::<2>(src, k, out),
                _ => window_max_strided(src, k, st, out),
            }
        }
    }

    fn check(&self, x: usize, y: usize) {
        assert_eq!(x, self.planes * self.in_len(), "input length");
        assert_eq!(y, self.planes * self.out_len(), "output length");
    }
}

/// `out[j]` = the maximum of `src[j * S..j * S + k]`.
#[inline(always)]
fn window_max<const S: usize>(src: &[f32], k: usize, out: &mut [f32]) {
    let n = out.len();
    for kx in 0..k {
        let src = &src[kx..kx + (n - 1) * S + 1];
        // SAFETY (both loops): `j < n`, so `j * S <= (n - 1) * S < src.len()`. Unchecked, the
        // loops vectorise.
        if kx == 0 {
            out.iter_mut()
                .enumerate()
                .for_each(|(j, o)| *o = unsafe { *src.get_unchecked(j * S) });
        } else {
            out.iter_mut()
                .enumerate()
                .for_each(|(j, o)| *o = larger(*o, unsafe { *src.get_unchecked(j * S) }));
        }
    }
}

/// [`window_max`] for a stride known only at run time.
#[inline(always)]
fn window_max_strided(src: &[f32], k: usize, st: usize, out: &mut [f32]) {
    for (j, o) in out.iter_mut().enumerate() {
        let win = &src[j * st..j * st + k];
        *o = win[1..].iter().fold(win[0], |m, &v| larger(m, v));
    }
}

/// For each `j`: if `src[j * S]` is the first pixel scanned equal to `y[j]` (`pos[j]` still
/// [`NONE`]), or a NaN, `pos[j]` becomes its index, `first + j * S`.
#[inline(always)]
fn window_find<const S: usize>(src: &[f32], y: &[f32], first: u32, pos: &mut [u32]) {
    let n = pos.len();
    let src = &src[..(n - 1) * S + 1];
    for (j, (p, &m)) in pos.iter_mut().zip(y).enumerate() {
        // SAFETY: `j < n`, so `j * S <= (n - 1) * S < src.len()`. Unchecked, the loop
        // vectorises.
        let v = unsafe { *src.get_unchecked(j * S) };
        *p = if marks(*p, v, m) {
            first + (j * S) as u32
        } else {
            *p
        };
    }
}

/// [`window_find`] for a stride known only at run time.
#[inline(always)]
fn window_find_strided(src: &[f32], st: usize, y: &[f32], first: u32, pos: &mut [u32]) {
    for (j, (p, &m)) in pos.iter_mut().zip(y).enumerate() {
        if marks(*p, src[j * st], m) {
            *p = first + (j * st) as u32;
        }
    }
}

/// `y` = the maximum of each window of `x` (`-inf` for a window with no input pixel; NaN when
/// the window holds one).
///
/// # Panics
/// If a length does not match `shape`.
pub fn max_pool_forward(shape: &MaxPoolShape, x: &[f32], y: &mut [f32]) {
    shape.check(x.len(), y.len());
    let (il, ol) = (shape.in_len(), shape.out_len());
    if ol == 0 {
        return;
    }
    let columns = shape.columns();
    let (w, ow) = (shape.input[1], shape.output[1]);
    y.par_chunks_mut(ol)
        .enumerate()
        .for_each_init(Vec::new, |vmax, (p, out)| {
            vmax.resize(w, 0.0);
            vectorize(ForwardPlane {
                shape,
                plane: &x[p * il..(p + 1) * il],
                columns: &columns,
                vmax,
                out,
                ow,
            })
        });
}

/// One plane of the forward pass, as a [`Vectorizable`]: a closure handed to
/// [`crate::simd::vectorized`] here stayed a function of its own, compiled for baseline SSE2
/// (`objdump`: no ymm/zmm register in it), where `run` is always inlined into the AVX2 or
/// AVX-512 function.
struct ForwardPlane<'a> {
    shape: &'a MaxPoolShape,
    plane: &'a [f32],
    columns: &'a Columns,
    vmax: &'a mut [f32],
    out: &'a mut [f32],
    ow: usize,
}

impl Vectorizable for ForwardPlane<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let s = self.shape;
        for (oy, out) in self.out.chunks_exact_mut(self.ow).enumerate() {
            s.forward_row(self.plane, s.span(0, oy), self.columns, self.vmax, out);
        }
    }
}

/// `dx`: each output's gradient `dy` added at its window's maximum in `x`, 0 elsewhere; `y` is
/// the forward pass's output ([`max_pool_forward`] of `x`), which marks the maximum.
///
/// # Panics
/// If a length does not match `shape`.
pub fn max_pool_backward(shape: &MaxPoolShape, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32]) {
    shape.check(x.len(), dy.len());
    shape.check(x.len(), y.len());
    assert_eq!(dx.len(), x.len(), "input gradient length");
    let (il, ol) = (shape.in_len(), shape.out_len());
    if il == 0 {
        return;
    }
    // Same-size poolings a whole plane at a time (their scratch: a plane of marks), the rest
    // an output row at a time (a row of marks).
    let taps = Taps::new(shape);
    let columns = shape.columns();
    let marks_len = if taps.is_some() { ol } else { shape.output[1] };
    dx.par_chunks_mut(il)
        .enumerate()
        .for_each_init(Vec::new, |pos, (p, grad)| {
            pos.resize(marks_len, NONE);
            vectorize(BackwardPlane {
                shape,
                taps: taps.as_ref(),
                columns: &columns,
                plane: &x[p * il..(p + 1) * il],
                ys: &y[p * ol..(p + 1) * ol],
                gs: &dy[p * ol..(p + 1) * ol],
                pos,
                grad,
            });
        });
}

/// One plane of the backward pass, as a [`Vectorizable`] (see [`ForwardPlane`]).
struct BackwardPlane<'a> {
    shape: &'a MaxPoolShape,
    taps: Option<&'a Taps>,
    columns: &'a Columns,
    plane: &'a [f32],
    ys: &'a [f32],
    gs: &'a [f32],
    pos: &'a mut [u32],
    grad: &'a mut [f32],
}

impl Vectorizable for BackwardPlane<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let (plane, ys, gs) = (self.plane, self.ys, self.gs);
        match self.taps {
            Some(taps) => taps.backward_plane(plane, ys, gs, self.pos, self.grad),
            None => self
                .shape
                .backward_plane(plane, ys, gs, self.columns, self.pos, self.grad),
        }
    }
}

/// A pooling whose stride is 1 and whose output is as large as its input (an inception module's
/// 3x3 pool branch) seen as offsets: each window pixel `(ky, kx)` lies at one offset from its
/// output across the whole plane, so the backward pass scans the plane once per window pixel,
/// however narrow its rows (14 or 7 pixels: too few for a vector register row by row).
struct Taps {
    /// Row-major over the window: the offset from output to input pixel, the outputs
    /// `start..end` whose row of that pixel is inside the input, its column `kx`.
    taps: Vec<(isize, (usize, usize), usize)>,
    /// Per column of the window, per output: whether its column of that pixel is inside.
    inside: Vec<Vec<bool>>,
}

impl Taps {
    fn new(s: &MaxPoolShape) -> Option<Self> {
        let ([h, w], [kh, kw], [pt, pl]) = (s.input, s.kernel, s.padding);
        if s.stride != [1, 1] || s.output != s.input || pt >= kh || pl >= kw {
            return None;
        }
        let mut taps = Vec::with_capacity(kh * kw);
        for ky in 0..kh {
            let dy = ky as isize - pt as isize;
            let rows = (
                (-dy).max(0) as usize,
                (h as isize - dy).clamp(0, h as isize) as usize,
            );
            for kx in 0..kw {
                let dx = kx as isize - pl as isize;
                // Outputs past the plane's ends at this offset are in clipped columns.
                let shift = dy * w as isize + dx;
                let start = ((rows.0 * w) as isize).max(-shift) as usize;
                let end = ((rows.1 * w) as isize).min((h * w) as isize - shift).max(0) as usize;
                taps.push((shift, (start, end), kx));
            }
        }
        let inside = (0..kw)
            .map(|kx| {
                (0..h * w)
                    .map(|o| {
                        let c = o % w + kx;
                        c >= pl && c - pl < w
                    })
                    .collect()
            })
            .collect();
        Some(Self { taps, inside })
    }

    /// The backward pass over one plane: `x`, `y`, `dy` into `grad`; `pos` a scratch plane.
    #[inline(always)]
    fn backward_plane(
        &self,
        plane: &[f32],
        ys: &[f32],
        gs: &[f32],
        pos: &mut [u32],
        grad: &mut [f32],
    ) {
        pos.fill(NONE);
        for &(shift, (start, end), kx) in &self.taps {
            if start >= end {
                continue;
            }
            let xs = &plane[(start as isize + shift) as usize..(end as isize + shift) as usize];
            let first = (start as isize + shift) as u32;
            let lanes = pos[start..end]
                .iter_mut()
                .zip(&ys[start..end])
                .zip(&self.inside[kx][start..end])
                .zip(xs);
            for ((((p, &m), &inside), &v), j) in lanes.zip(0u32..) {
                *p = if inside & marks(*p, v, m) {
                    first + j
                } else {
                    *p
                };
            }
        }
        grad.fill(0.0);
        add_at(pos, gs, grad);
    }
}

impl MaxPoolShape {
    /// The backward pass over one plane: `x`, `y`, `dy` into `grad`; `pos` a scratch row.
    #[inline(always)]
    fn backward_plane(
        &self,
        plane: &[f32],
        ys: &[f32],
        gs: &[f32],
        columns: &Columns,
        pos: &mut [u32],
        grad: &mut [f32],
    ) {
        let (w, ow) = (self.input[1], self.output[1]);
        let [k, st, pl] = [self.kernel[1], self.stride[1], self.padding[1]];
        let (a, b) = columns.whole;
        grad.fill(0.0);
        for (oy, (yr, gr)) in ys.chunks_exact(ow).zip(gs.chunks_exact(ow)).enumerate() {
            let (y0, y1) = self.span(0, oy);
            pos.fill(NONE);
            for iy in y0..y1 {
                let row = &plane[iy * w..(iy + 1) * w];
                for ox in Self::edges(columns) {
                    let (x0, x1) = columns.spans[ox];
                    for (ix, &v) in row.iter().enumerate().take(x1).skip(x0) {
                        if marks(pos[ox], v, yr[ox]) {
                            pos[ox] = (iy * w + ix) as u32;
                        }
                    }
                }
                if a < b {
                    let base = a * st - pl;
                    let (yw, pw) = (&yr[a..b], &mut pos[a..b]);
                    for kx in 0..k {
                        let (src, first) = (&row[base + kx..], (iy * w + base + kx) as u32);
                        match st {
                            1 => window_find::<1>(src, yw, first, pw),
                            2 => window_find::<2>(src, yw, first, pw),
                            _ => window_find_strided(src, st, yw, first, pw),
                        }
                    }
                }
            }
            add_at(pos, gr, grad);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_go_to_the_first_maximum_and_padding_never_wins() {
        // One 3x3 plane, 3x3 window, stride 1, padding 1: 3x3 outputs.
        let s = MaxPoolShape {
            planes: 1,
            input: [3, 3],
            output: [3, 3],
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
        };
        let x = [-1.0, -1.0, -2.0, -3.0, -1.0, -5.0, -4.0, -6.0, -7.0];
        let mut y = [0f32; 9];
        max_pool_forward(&s, &x, &mut y);
        assert_eq!(y, [-1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0]);
        let mut dx = [0f32; 9];
        max_pool_backward(&s, &x, &y, &[1.0; 9], &mut dx);
        // Windows touching (0,0) take it; the others take the first -1 they scan.
        assert_eq!(dx, [4.0, 2.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(dx.iter().sum::<f32>(), 9.0);
    }

    #[test]
    fn a_nan_wins_the_last_one_scanned() {
        // One row of 5, a 1x5 window: the output is NaN and the gradient goes to the last NaN.
        let s = MaxPoolShape {
            planes: 1,
            input: [1, 5],
            output: [1, 1],
            kernel: [1, 5],
            stride: [1, 1],
            padding: [0, 0],
        };
        let x = [1.0, f32::NAN, 3.0, f32::NAN, 2.0];
        let mut y = [0f32; 1];
        max_pool_forward(&s, &x, &mut y);
        assert!(y[0].is_nan());
        let mut dx = [0f32; 5];
        max_pool_backward(&s, &x, &y, &[1.0], &mut dx);
        assert_eq!(dx, [0.0, 0.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn a_strided_window_pools_its_own_pixels() {
        // 2 planes of 4x5, 3x3 stride 2, no padding, ceil mode: 2x2 outputs, the last column's
        // windows clipped to the input.
        let s = MaxPoolShape {
            planes: 2,
            input: [4, 5],
            output: [2, 2],
            kernel: [3, 3],
            stride: [2, 2],
            padding: [0, 0],
        };
        let x: Vec<f32> = (0..40).map(|i| ((i * 7) % 11) as f32).collect();
        let mut y = vec![0f32; 8];
        max_pool_forward(&s, &x, &mut y);
        for p in 0..2 {
            for oy in 0..2 {
                for ox in 0..2 {
                    let mut m = f32::NEG_INFINITY;
                    for iy in oy * 2..(oy * 2 + 3).min(4) {
                        for ix in ox * 2..(ox * 2 + 3).min(5) {
                            m = m.max(x[p * 20 + iy * 5 + ix]);
                        }
                    }
                    assert_eq!(y[p * 4 + oy * 2 + ox], m);
                }
            }
        }
    }
}
