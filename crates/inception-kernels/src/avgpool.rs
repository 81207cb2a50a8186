//! Average pooling on NCHW tensors for training, forward and backward, with PyTorch's windows:
//! a window starts at `o * stride - pad_before`, is clipped to the padded input for the divisor
//! that counts padding (`count_include_pad`, PyTorch's default) and to the input for the values
//! and for the divisor that does not (Keras, TensorFlow).
//!
//! Both passes are separable, one output row at a time: the forward pass sums the row's span of
//! input rows (contiguous, vectorised), then each window's columns; the backward pass spreads
//! each output's share of the gradient over its window's columns, then adds that row to each
//! input row of the span.

use rayon::prelude::*;

/// An average pooling over a batch of NCHW planes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPoolShape {
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
    /// `[[top, bottom], [left, right]]`.
    pub padding: [[usize; 2]; 2],
    /// Whether the divisor counts the padding inside a window.
    pub count_include_pad: bool,
}

/// One output row's or column's window along one dimension.
#[derive(Clone, Copy, Debug)]
struct Span {
    /// The input pixels `start..end` it covers.
    start: usize,
    end: usize,
    /// Its length clipped to the padded input (what `count_include_pad` counts).
    padded: usize,
}

impl Span {
    fn len(&self) -> usize {
        self.end - self.start
    }
}

impl AvgPoolShape {
    fn in_len(&self) -> usize {
        self.input[0] * self.input[1]
    }

    fn out_len(&self) -> usize {
        self.output[0] * self.output[1]
    }

    /// The window of output row (`d` = 0) or column (`d` = 1) `o`.
    fn span(&self, d: usize, o: usize) -> Span {
        let [before, after] = self.padding[d];
        let n = self.input[d] as isize;
        let start = (o * self.stride[d]) as isize - before as isize;
        let end = (start + self.kernel[d] as isize).min(n + after as isize);
        Span {
            start: start.clamp(0, n) as usize,
            end: end.clamp(0, n) as usize,
            padded: (end - start).max(0) as usize,
        }
    }

    /// The divisor of the window of rows `r` and columns `c`.
    fn divisor(&self, r: &Span, c: &Span) -> f32 {
        let count = if self.count_include_pad {
            r.padded * c.padded
        } else {
            r.len() * c.len()
        };
        count.max(1) as f32
    }

    /// Each output column's window, worked out once per call.
    fn columns(&self) -> Vec<Span> {
        (0..self.output[1]).map(|o| self.span(1, o)).collect()
    }

    fn check(&self, x: usize, y: usize) {
        assert_eq!(x, self.planes * self.in_len(), "input length");
        assert_eq!(y, self.planes * self.out_len(), "output length");
    }
}

/// `y` = the average of each window of `x`.
///
/// # Panics
/// If a length does not match `shape`.
pub fn avg_pool_forward(shape: &AvgPoolShape, x: &[f32], y: &mut [f32]) {
    shape.check(x.len(), y.len());
    let (il, ol) = (shape.in_len(), shape.out_len());
    if ol == 0 {
        return;
    }
    let columns = shape.columns();
    let ([_, w], ow) = (shape.input, shape.output[1]);
    y.par_chunks_mut(ol)
        .enumerate()
        .for_each_init(Vec::new, |sum, (p, out)| {
            sum.resize(w, 0.0);
            let plane = &x[p * il..(p + 1) * il];
            for (oy, out) in out.chunks_exact_mut(ow).enumerate() {
                let rows = shape.span(0, oy);
                sum.fill(0.0);
                for row in plane.chunks_exact(w).take(rows.end).skip(rows.start) {
                    sum.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
                }
                for (o, c) in out.iter_mut().zip(&columns) {
                    let total: f32 = sum[c.start..c.end].iter().sum();
                    *o = total / shape.divisor(&rows, c);
                }
            }
        });
}

/// `dx`: each output's gradient `dy`, divided by its window's divisor, added to every input
/// pixel of the window.
///
/// # Panics
/// If a length does not match `shape`.
pub fn avg_pool_backward(shape: &AvgPoolShape, dy: &[f32], dx: &mut [f32]) {
    shape.check(dx.len(), dy.len());
    let (il, ol) = (shape.in_len(), shape.out_len());
    if il == 0 {
        return;
    }
    let columns = shape.columns();
    let ([_, w], ow) = (shape.input, shape.output[1]);
    dx.par_chunks_mut(il).enumerate().for_each_init(
        Vec::new,
        |spread: &mut Vec<f32>, (p, grad)| {
            spread.resize(w, 0.0);
            grad.fill(0.0);
            let g = &dy[p * ol..(p + 1) * ol];
            for (oy, g) in g.chunks_exact(ow).enumerate() {
                let rows = shape.span(0, oy);
                if rows.len() == 0 {
                    continue;
                }
                spread.fill(0.0);
                for (&v, c) in g.iter().zip(&columns) {
                    let share = v / shape.divisor(&rows, c);
                    spread[c.start..c.end].iter_mut().for_each(|s| *s += share);
                }
                for row in grad.chunks_exact_mut(w).take(rows.end).skip(rows.start) {
                    row.iter_mut()
                        .zip(spread.iter())
                        .for_each(|(d, &s)| *d += s);
                }
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::data;

    /// The definition, window by window.
    fn reference(s: &AvgPoolShape, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (il, ol, [_, w], ow) = (s.in_len(), s.out_len(), s.input, s.output[1]);
        let (mut y, mut dx) = (vec![0f32; s.planes * ol], vec![0f32; x.len()]);
        for p in 0..s.planes {
            for oy in 0..s.output[0] {
                for ox in 0..ow {
                    let (r, c) = (s.span(0, oy), s.span(1, ox));
                    let d = s.divisor(&r, &c) as f64;
                    let o = p * ol + oy * ow + ox;
                    let mut total = 0f64;
                    for iy in r.start..r.end {
                        for ix in c.start..c.end {
                            total += x[p * il + iy * w + ix] as f64;
                            dx[p * il + iy * w + ix] += (dy[o] as f64 / d) as f32;
                        }
                    }
                    y[o] = (total / d) as f32;
                }
            }
        }
        (y, dx)
    }

    #[test]
    fn windows_divide_by_the_padded_or_the_clipped_count() {
        let base = AvgPoolShape {
            planes: 3,
            input: [7, 9],
            output: [7, 9],
            kernel: [3, 3],
            stride: [1, 1],
            padding: [[1, 1], [1, 1]],
            count_include_pad: true,
        };
        let shapes = [
            base,
            AvgPoolShape {
                count_include_pad: false,
                ..base
            },
            // Strided, ceil mode (the last window overhangs the padded input), asymmetric.
            AvgPoolShape {
                output: [4, 5],
                stride: [2, 2],
                padding: [[0, 1], [1, 0]],
                ..base
            },
        ];
        for s in shapes {
            let x = data(s.planes * s.in_len(), 1);
            let dy = data(s.planes * s.out_len(), 2);
            let (want_y, want_dx) = reference(&s, &x, &dy);
            let mut y = vec![0f32; want_y.len()];
            avg_pool_forward(&s, &x, &mut y);
            let mut dx = vec![1f32; x.len()];
            avg_pool_backward(&s, &dy, &mut dx);
            for (a, b) in y.iter().zip(&want_y).chain(dx.iter().zip(&want_dx)) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{a} vs {b} in {s:?}"
                );
            }
        }
        // Without padding counted, a corner window of a 3x3 pool averages its 4 pixels.
        let s = AvgPoolShape {
            planes: 1,
            input: [2, 2],
            output: [2, 2],
            count_include_pad: false,
            ..base
        };
        let mut y = [0f32; 4];
        avg_pool_forward(&s, &[1.0, 2.0, 3.0, 6.0], &mut y);
        assert_eq!(y, [3.0; 4]);
    }
}
