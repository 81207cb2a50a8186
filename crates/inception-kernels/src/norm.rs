//! Batch normalisation in training mode on `[batch, channels, pixels]` (NCHW) tensors, forward
//! and backward, each in two passes over memory: per-channel sums (in f64), then one
//! elementwise write with per-channel coefficients. What Burn composes out of a dozen tensor
//! operations (transposes included) is two reads and a write here. The ReLU that follows almost
//! every batch normalisation can ride along: applied in the write, and its mask found again
//! from the input in the backward pass (so neither its output nor its mask is stored).
//!
//! The sums run over channels in parallel and the writes over `(sample, channel)` rows, with a
//! fixed summation order: the results do not depend on the thread count.

use rayon::prelude::*;

use crate::simd::{Vectorizable, vectorize, vectorized};

/// The layout of a batch-normalised tensor: `batch` samples of `channels` rows of `pixels`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormShape {
    /// Samples.
    pub batch: usize,
    /// Channels (one mean and variance each).
    pub channels: usize,
    /// Values per channel and sample (`h * w`; 1 after a dense layer).
    pub pixels: usize,
}

impl NormShape {
    fn len(&self) -> usize {
        self.batch * self.channels * self.pixels
    }

    /// Values per channel: `batch * pixels`.
    fn count(&self) -> f64 {
        (self.batch * self.pixels) as f64
    }

    /// The rows of channel `c`, one per sample.
    fn rows<'a>(&self, t: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> {
        let (p, ch) = (self.pixels, self.channels);
        (0..self.batch).map(move |n| &t[(n * ch + c) * p..(n * ch + c + 1) * p])
    }

    fn check(&self, lens: &[usize], channel_lens: &[usize]) {
        for &l in lens {
            assert_eq!(l, self.len(), "tensor length");
        }
        for &l in channel_lens {
            assert_eq!(l, self.channels, "per-channel length");
        }
    }
}

/// `y = (x - mean) / sqrt(var + epsilon) * gamma + beta` with the batch's own per-channel mean
/// and biased variance, which are returned in `mean` and `var`; with `relu`, `max(y, 0)` (the
/// ReLU that follows almost every batch normalisation, in the same pass).
///
/// # Panics
/// If a length does not match `shape`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train(
    shape: &NormShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    relu: bool,
    y: &mut [f32],
    mean: &mut [f32],
    var: &mut [f32],
) {
    shape.check(
        &[x.len(), y.len()],
        &[gamma.len(), beta.len(), mean.len(), var.len()],
    );
    let m = shape.count();
    let stats: Vec<(f64, f64)> = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            vectorized(|| {
                let sum: f64 = shape
                    .rows(x, c)
                    .map(|r| sum_lanes(r, r, |v, _| (v as f64, 0.0)).0)
                    .sum();
                let mu = sum / m;
                let sq: f64 = shape
                    .rows(x, c)
                    .map(|r| sum_lanes(r, r, |v, _| ((v as f64 - mu).powi(2), 0.0)).0)
                    .sum();
                (mu, sq / m)
            })
        })
        .collect();
    for (c, &(mu, v)) in stats.iter().enumerate() {
        mean[c] = mu as f32;
        var[c] = v as f32;
    }
    let coef = affine(mean, var, gamma, beta, epsilon);
    rows_mut(shape, y).for_each(|(c, i, row)| {
        let (a, b) = coef[c];
        let src = &x[i..i + row.len()];
        vectorized(|| {
            if relu {
                row.iter_mut()
                    .zip(src)
                    .for_each(|(o, &v)| *o = (v * a + b).max(0.0));
            } else {
                row.iter_mut().zip(src).for_each(|(o, &v)| *o = v * a + b);
            }
        })
    });
}

/// The forward pass's `y = x * a + b` per channel, from the statistics it returns (so that the
/// backward pass, given those, finds the same ReLU mask).
fn affine(mean: &[f32], var: &[f32], gamma: &[f32], beta: &[f32], epsilon: f64) -> Vec<(f32, f32)> {
    (0..mean.len())
        .map(|c| {
            let a = gamma[c] as f64 / (var[c] as f64 + epsilon).sqrt();
            (a as f32, (beta[c] as f64 - mean[c] as f64 * a) as f32)
        })
        .collect()
}

/// The gradients of [`batch_norm_train`] (with or without its `relu`) for the output gradient
/// `dy`: `dx`, `dgamma` and `dbeta`, from the input `x`, the affine parameters and the batch
/// statistics the forward pass returned. With `relu`, the gradient of the outputs the ReLU
/// zeroed is dropped (found again from `x`, not stored).
///
/// # Panics
/// If a length does not match `shape`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_backward(
    shape: &NormShape,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
    relu: bool,
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    shape.check(
        &[x.len(), dy.len(), dx.len()],
        &[
            gamma.len(),
            beta.len(),
            mean.len(),
            var.len(),
            dgamma.len(),
            dbeta.len(),
        ],
    );
    let forward = affine(mean, var, gamma, beta, epsilon);
    let backward = if relu {
        backward::<true>
    } else {
        backward::<false>
    };
    backward(
        shape, x, dy, gamma, mean, var, epsilon, &forward, dx, dgamma, dbeta,
    );
}

/// The gradient reaching the normalisation: `g` where the ReLU (if `RELU`) passed its input,
/// `x·a + b` being the forward output before it. Branch-free, so that the loops vectorise.
#[inline(always)]
fn passed<const RELU: bool>(xv: f32, g: f32, (a, b): (f32, f32)) -> f32 {
    if !RELU {
        return g;
    }
    let keep = xv * a + b > 0.0;
    f32::from_bits(g.to_bits() & (keep as u32).wrapping_neg())
}

/// `(Σ g, Σ g·(x - mean))` over one row, `g` the gradient the ReLU passed, in f64 (as
/// [`sum_lanes`] adds).
struct GradSums<'a, const RELU: bool> {
    x: &'a [f32],
    dy: &'a [f32],
    /// The forward pass's `y = x·a + b`.
    ab: (f32, f32),
    mu: f32,
}

impl<const RELU: bool> Vectorizable for GradSums<'_, RELU> {
    type Output = (f64, f64);

    #[inline(always)]
    fn run(self) -> (f64, f64) {
        let (ab, mu) = (self.ab, self.mu);
        sum_lanes(self.x, self.dy, |xv, g| {
            let g = passed::<RELU>(xv, g, ab);
            (g as f64, (g * (xv - mu)) as f64)
        })
    }
}

/// [`batch_norm_train_backward`] with the ReLU decided at compile time, given the forward
/// pass's per-channel `(a, b)` of `y = x·a + b`.
#[allow(clippy::too_many_arguments)]
fn backward<const RELU: bool>(
    shape: &NormShape,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
    forward: &[(f32, f32)],
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let m = shape.count();
    // Σ dy and Σ dy·(x - mean), per channel.
    let sums: Vec<(f64, f64)> = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let (mu, ab) = (mean[c], forward[c]);
            let (mut s, mut sc) = (0f64, 0f64);
            for (xr, dr) in shape.rows(x, c).zip(shape.rows(dy, c)) {
                let (a, b) = vectorize(GradSums::<RELU> {
                    x: xr,
                    dy: dr,
                    ab,
                    mu,
                });
                s += a;
                sc += b;
            }
            (s, sc)
        })
        .collect();
    // dx = k·dy + l·x + o per channel, with inv = 1/sqrt(var + ε):
    // dx = γ·inv·(dy - Σdy/m - (x - mean)·inv²·Σdy(x - mean)/m).
    let mut coef = Vec::with_capacity(shape.channels);
    for (c, &(s, sc)) in sums.iter().enumerate() {
        let inv = 1.0 / (var[c] as f64 + epsilon).sqrt();
        let g = gamma[c] as f64;
        let k = g * inv;
        let l = -g * inv * inv * inv * sc / m;
        let o = -k * s / m - l * mean[c] as f64;
        coef.push((k as f32, l as f32, o as f32));
        dbeta[c] = s as f32;
        dgamma[c] = (sc * inv) as f32;
    }
    rows_mut(shape, dx).for_each(|(c, i, row)| {
        let ((k, l, o), ab) = (coef[c], forward[c]);
        let (xs, gs) = (&x[i..i + row.len()], &dy[i..i + row.len()]);
        vectorized(|| {
            for ((d, &xv), &g) in row.iter_mut().zip(xs).zip(gs) {
                *d = k * passed::<RELU>(xv, g, ab) + l * xv + o;
            }
        })
    });
}

/// The `(sample, channel)` rows of `t` in parallel, as `(channel, offset, row)`.
fn rows_mut<'a>(
    shape: &NormShape,
    t: &'a mut [f32],
) -> impl ParallelIterator<Item = (usize, usize, &'a mut [f32])> {
    let (p, ch) = (shape.pixels.max(1), shape.channels.max(1));
    // Rows of a few pixels (after a dense layer: one) are grouped so that each task has work.
    let per_task = (4096 / p).max(1);
    t.par_chunks_mut(p * per_task)
        .enumerate()
        .flat_map_iter(move |(t_i, chunk)| {
            chunk.chunks_mut(p).enumerate().map(move |(j, row)| {
                let r = t_i * per_task + j;
                (r % ch, r * p, row)
            })
        })
}

/// `(Σ f(a[i], b[i]).0, Σ f(a[i], b[i]).1)` in f64, each in eight interleaved partial sums (so
/// that the additions do not wait on each other and vectorise), added in a fixed order.
#[inline(always)]
fn sum_lanes(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> (f64, f64)) -> (f64, f64) {
    const LANES: usize = 8;
    let (mut acc0, mut acc1) = ([0f64; LANES], [0f64; LANES]);
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for i in 0..LANES {
            let (u, v) = f(xa[i], xb[i]);
            acc0[i] += u;
            acc1[i] += v;
        }
    }
    let (mut s0, mut s1) = (acc0.iter().sum::<f64>(), acc1.iter().sum::<f64>());
    for (&u, &v) in ra.iter().zip(rb) {
        let (p, q) = f(u, v);
        s0 += p;
        s1 += q;
    }
    (s0, s1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values in [-1.5, 2.5): not centred, so the means matter.
    fn data(len: usize, seed: u32) -> Vec<f32> {
        crate::testing::data(len, seed)
            .into_iter()
            .map(|v| 2.0 * v + 0.5)
            .collect()
    }

    #[test]
    fn the_forward_pass_normalises_each_channel() {
        let s = NormShape {
            batch: 3,
            channels: 4,
            pixels: 5,
        };
        let x = data(60, 1);
        let gamma = [1.0, 2.0, 0.5, -1.0];
        let beta = [0.0, 1.0, -1.0, 0.25];
        let (mut y, mut mean, mut var) = (vec![0f32; 60], [0f32; 4], [0f32; 4]);
        batch_norm_train(
            &s, &x, &gamma, &beta, 1e-5, false, &mut y, &mut mean, &mut var,
        );
        for c in 0..4 {
            let vals: Vec<f64> = s.rows(&x, c).flatten().map(|&v| v as f64).collect();
            let mu = vals.iter().sum::<f64>() / 15.0;
            let v = vals.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / 15.0;
            assert!((mean[c] as f64 - mu).abs() < 1e-6 && (var[c] as f64 - v).abs() < 1e-6);
            let out: Vec<f32> = s.rows(&y, c).flatten().copied().collect();
            for (o, xv) in out.iter().zip(&vals) {
                let want = (xv - mu) / (v + 1e-5).sqrt() * gamma[c] as f64 + beta[c] as f64;
                assert!((*o as f64 - want).abs() < 1e-5, "{o} vs {want}");
            }
        }
    }

    /// Against central differences of the loss `Σ y·g` in f64, with and without the ReLU.
    #[test]
    fn the_backward_pass_is_the_forward_passs_derivative() {
        let s = NormShape {
            batch: 2,
            channels: 3,
            pixels: 4,
        };
        let x = data(24, 2);
        let g = data(24, 3);
        let gamma = [1.5f32, -0.5, 2.0];
        let beta = [0.1f32, 0.2, 0.3];
        for relu in [false, true] {
            let forward = |x: &[f32], gamma: &[f32], beta: &[f32]| {
                let (mut y, mut m, mut v) = (vec![0f32; 24], [0f32; 3], [0f32; 3]);
                batch_norm_train(&s, x, gamma, beta, 1e-3, relu, &mut y, &mut m, &mut v);
                (y, m, v)
            };
            let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| -> f64 {
                let y = forward(x, gamma, beta).0;
                y.iter().zip(&g).map(|(a, b)| *a as f64 * *b as f64).sum()
            };
            let (y, mean, var) = forward(&x, &gamma, &beta);
            if relu {
                assert!(y.iter().all(|&v| v >= 0.0) && y.contains(&0.0));
            }
            let (mut dx, mut dgamma, mut dbeta) = (vec![0f32; 24], [0f32; 3], [0f32; 3]);
            batch_norm_train_backward(
                &s,
                &x,
                &g,
                &gamma,
                &beta,
                &mean,
                &var,
                1e-3,
                relu,
                &mut dx,
                &mut dgamma,
                &mut dbeta,
            );
            let h = 1e-3f32;
            let close = |got: f32, num: f64, what: &str| {
                assert!(
                    (got as f64 - num).abs() < 2e-3,
                    "{what} (relu {relu}): {got} vs {num}"
                );
            };
            for i in 0..24 {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[i] += h;
                xm[i] -= h;
                let num = (loss(&xp, &gamma, &beta) - loss(&xm, &gamma, &beta)) / (2.0 * h as f64);
                close(dx[i], num, &format!("dx[{i}]"));
            }
            for c in 0..3 {
                let (mut gp, mut gm) = (gamma, gamma);
                gp[c] += h;
                gm[c] -= h;
                let num = (loss(&x, &gp, &beta) - loss(&x, &gm, &beta)) / (2.0 * h as f64);
                close(dgamma[c], num, &format!("dgamma[{c}]"));
                let (mut bp, mut bm) = (beta, beta);
                bp[c] += h;
                bm[c] -= h;
                let num = (loss(&x, &gamma, &bp) - loss(&x, &gamma, &bm)) / (2.0 * h as f64);
                close(dbeta[c], num, &format!("dbeta[{c}]"));
            }
        }
    }
}
