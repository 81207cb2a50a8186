//! Max pooling on NCHW tensors for training: the forward pass, and the backward pass, which
//! finds each window's maximum again (rather than storing its index) and sends the output's
//! gradient there.
//!
//! The window is scanned row by row, left to right, and the first maximum wins (a NaN always
//! wins, the last one scanned) — PyTorch's and Burn's rule, which decides where the gradient of
//! a window of equal values (zeros after a ReLU) goes. Padding never wins: a window only
//! covers the input pixels inside it.

use rayon::prelude::*;

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

/// One thread's scratch memory: each input row's maximum over each output column's span and
/// its column, then one output row's running maximum and the input row it came from.
#[derive(Default)]
struct RowMax {
    value: Vec<f32>,
    column: Vec<u32>,
    best: Vec<f32>,
    from: Vec<u32>,
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
    fn span(&self, d: usize, o: usize) -> (usize, usize) {
        let start = (o * self.stride[d]) as isize - self.padding[d] as isize;
        let end = start + self.kernel[d] as isize;
        let n = self.input[d] as isize;
        (start.clamp(0, n) as usize, end.clamp(0, n) as usize)
    }

    /// Calls `f(output index, input index of the window's maximum)` for each output of a
    /// plane; windows with no input pixel are skipped.
    ///
    /// Separably: each input row's maximum over each output column's span (the first one, or
    /// the last NaN), then down each output row's span of those (the first row holding the
    /// window's maximum: row-major order's first maximum, or its last NaN).
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

    fn argmax(
        &self,
        plane: &[f32],
        columns: &Columns,
        rows: &mut RowMax,
        mut f: impl FnMut(usize, usize),
    ) {
        let ([h, w], [oh, ow]) = (self.input, self.output);
        rows.value.resize(h * ow, 0.0);
        rows.column.resize(h * ow, 0);
        rows.best.resize(ow, 0.0);
        rows.from.resize(ow, 0);
        let (cols, (a, b)) = (&columns.spans, columns.whole);
        let [k, st, pl] = [self.kernel[1], self.stride[1], self.padding[1]];
        for iy in 0..h {
            let row = &plane[iy * w..(iy + 1) * w];
            let (value, column) = (
                &mut rows.value[iy * ow..(iy + 1) * ow],
                &mut rows.column[iy * ow..(iy + 1) * ow],
            );
            for ox in (0..a).chain(b..ow) {
                let (x0, x1) = cols[ox];
                let (mut best, mut at) = (f32::NEG_INFINITY, x0);
                if x0 < x1 {
                    best = row[x0];
                    for (ix, &x) in row.iter().enumerate().take(x1).skip(x0 + 1) {
                        let t = takes(x, best);
                        best = if t { x } else { best };
                        at = if t { ix } else { at };
                    }
                }
                value[ox] = best;
                column[ox] = at as u32;
            }
            if a < b {
                // Window by window position, across the columns (vectorised when st is 1).
                let base = a * st - pl;
                let (value, column) = (&mut value[a..b], &mut column[a..b]);
                for (j, (v, c)) in value.iter_mut().zip(column.iter_mut()).enumerate() {
                    *v = row[base + j * st];
                    *c = (base + j * st) as u32;
                }
                for kx in 1..k {
                    let first = (base + kx) as u32;
                    let src = &row[base + kx..];
                    let lanes = value.iter_mut().zip(column.iter_mut());
                    if st == 1 {
                        for (((v, c), &x), j) in lanes.zip(src).zip(0u32..) {
                            let t = takes(x, *v);
                            *v = if t { x } else { *v };
                            *c = if t { first + j } else { *c };
                        }
                    } else {
                        let step = st as u32;
                        for (((v, c), &x), j) in lanes.zip(src.iter().step_by(st)).zip(0u32..) {
                            let t = takes(x, *v);
                            *v = if t { x } else { *v };
                            *c = if t { first + j * step } else { *c };
                        }
                    }
                }
            }
        }
        let (best, from) = (&mut rows.best, &mut rows.from);
        for oy in 0..oh {
            let (y0, y1) = self.span(0, oy);
            if y0 == y1 {
                continue;
            }
            best.copy_from_slice(&rows.value[y0 * ow..(y0 + 1) * ow]);
            from.fill(y0 as u32);
            for iy in y0 + 1..y1 {
                let value = &rows.value[iy * ow..(iy + 1) * ow];
                for ((b, r), &v) in best.iter_mut().zip(from.iter_mut()).zip(value) {
                    let t = takes(v, *b);
                    *b = if t { v } else { *b };
                    *r = if t { iy as u32 } else { *r };
                }
            }
            for (ox, &(x0, x1)) in cols.iter().enumerate() {
                if x0 < x1 {
                    let iy = from[ox] as usize;
                    f(oy * ow + ox, iy * w + rows.column[iy * ow + ox] as usize);
                }
            }
        }
    }

    fn check(&self, x: usize, y: usize) {
        assert_eq!(x, self.planes * self.in_len(), "input length");
        assert_eq!(y, self.planes * self.out_len(), "output length");
    }
}

/// `y` = the maximum of each window of `x` (`-inf` for a window with no input pixel).
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
    y.par_chunks_mut(ol)
        .enumerate()
        .for_each_init(RowMax::default, |rows, (p, out)| {
            out.fill(f32::NEG_INFINITY);
            let plane = &x[p * il..(p + 1) * il];
            shape.argmax(plane, &columns, rows, |o, i| out[o] = plane[i]);
        });
}

/// `dx`: each output's gradient `dy` added at its window's maximum in `x`, 0 elsewhere.
///
/// # Panics
/// If a length does not match `shape`.
pub fn max_pool_backward(shape: &MaxPoolShape, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    shape.check(x.len(), dy.len());
    assert_eq!(dx.len(), x.len(), "input gradient length");
    let (il, ol) = (shape.in_len(), shape.out_len());
    if il == 0 {
        return;
    }
    let columns = shape.columns();
    dx.par_chunks_mut(il)
        .enumerate()
        .for_each_init(RowMax::default, |rows, (p, grad)| {
            grad.fill(0.0);
            let g = &dy[p * ol..(p + 1) * ol];
            shape.argmax(&x[p * il..(p + 1) * il], &columns, rows, |o, i| {
                grad[i] += g[o]
            });
        });
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
        max_pool_backward(&s, &x, &[1.0; 9], &mut dx);
        // Windows touching (0,0) take it; the others take the first -1 they scan.
        assert_eq!(dx, [4.0, 2.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(dx.iter().sum::<f32>(), 9.0);
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
