//! Batch normalisation in training mode on `[batch, channels, pixels]` (NCHW) tensors, forward
//! and backward, each in two passes over memory: per-channel sums (in f64), then one
//! elementwise write with per-channel coefficients. What Burn composes out of a dozen tensor
//! operations (transposes included) is two reads and a write here.
//!
//! The sums run over channels in parallel and the writes over `(sample, channel)` rows, with a
//! fixed summation order: the results do not depend on the thread count.

use rayon::prelude::*;

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
/// and biased variance, which are returned in `mean` and `var`.
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
            let sum: f64 = shape.rows(x, c).map(sum_f64).sum();
            let mu = sum / m;
            let sq: f64 = shape
                .rows(x, c)
                .map(|r| r.iter().map(|&v| (v as f64 - mu).powi(2)).sum::<f64>())
                .sum();
            (mu, sq / m)
        })
        .collect();
    // y = x * a + b per channel.
    let coef: Vec<(f32, f32)> = stats
        .iter()
        .zip(gamma.iter().zip(beta))
        .map(|(&(mu, v), (&g, &b))| {
            let a = g as f64 / (v + epsilon).sqrt();
            (a as f32, (b as f64 - mu * a) as f32)
        })
        .collect();
    for (c, &(mu, v)) in stats.iter().enumerate() {
        mean[c] = mu as f32;
        var[c] = v as f32;
    }
    rows_mut(shape, y).for_each(|(c, i, row)| {
        let (a, b) = coef[c];
        let src = &x[i..i + row.len()];
        row.iter_mut().zip(src).for_each(|(o, &v)| *o = v * a + b);
    });
}

/// The gradients of [`batch_norm_train`] for the output gradient `dy`: `dx`, `dgamma` and
/// `dbeta`, from the input `x` and the batch statistics the forward pass returned.
///
/// # Panics
/// If a length does not match `shape`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_backward(
    shape: &NormShape,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    shape.check(
        &[x.len(), dy.len(), dx.len()],
        &[
            gamma.len(),
            mean.len(),
            var.len(),
            dgamma.len(),
            dbeta.len(),
        ],
    );
    let m = shape.count();
    // Σ dy and Σ dy·(x - mean), per channel.
    let sums: Vec<(f64, f64)> = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let mu = mean[c];
            shape
                .rows(x, c)
                .zip(shape.rows(dy, c))
                .fold((0f64, 0f64), |(s, sc), (xr, dr)| {
                    let (a, b) = xr.iter().zip(dr).fold((0f64, 0f64), |(a, b), (&xv, &g)| {
                        (a + g as f64, b + (g * (xv - mu)) as f64)
                    });
                    (s + a, sc + b)
                })
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
        let (k, l, o) = coef[c];
        let (xs, gs) = (&x[i..i + row.len()], &dy[i..i + row.len()]);
        for ((d, &xv), &g) in row.iter_mut().zip(xs).zip(gs) {
            *d = k * g + l * xv + o;
        }
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

fn sum_f64(r: &[f32]) -> f64 {
    r.iter().map(|&v| v as f64).sum()
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
        batch_norm_train(&s, &x, &gamma, &beta, 1e-5, &mut y, &mut mean, &mut var);
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

    /// Against central differences of the loss `Σ y·g` in f64.
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
        let loss = |x: &[f32], gamma: &[f32]| -> f64 {
            let (mut y, mut m, mut v) = (vec![0f32; 24], [0f32; 3], [0f32; 3]);
            batch_norm_train(&s, x, gamma, &beta, 1e-3, &mut y, &mut m, &mut v);
            y.iter().zip(&g).map(|(a, b)| *a as f64 * *b as f64).sum()
        };
        let (mut y, mut mean, mut var) = (vec![0f32; 24], [0f32; 3], [0f32; 3]);
        batch_norm_train(&s, &x, &gamma, &beta, 1e-3, &mut y, &mut mean, &mut var);
        let (mut dx, mut dgamma, mut dbeta) = (vec![0f32; 24], [0f32; 3], [0f32; 3]);
        batch_norm_train_backward(
            &s,
            &x,
            &g,
            &gamma,
            &mean,
            &var,
            1e-3,
            &mut dx,
            &mut dgamma,
            &mut dbeta,
        );
        let h = 1e-2f32;
        for i in 0..24 {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += h;
            xm[i] -= h;
            let num = (loss(&xp, &gamma) - loss(&xm, &gamma)) / (2.0 * h as f64);
            assert!(
                (dx[i] as f64 - num).abs() < 2e-3,
                "dx[{i}] {} vs {num}",
                dx[i]
            );
        }
        for c in 0..3 {
            let (mut gp, mut gm) = (gamma, gamma);
            gp[c] += h;
            gm[c] -= h;
            let num = (loss(&x, &gp) - loss(&x, &gm)) / (2.0 * h as f64);
            assert!((dgamma[c] as f64 - num).abs() < 2e-3, "dgamma[{c}]");
            let db: f64 = s.rows(&g, c).flatten().map(|&v| v as f64).sum();
            assert!((dbeta[c] as f64 - db).abs() < 1e-5, "dbeta[{c}]");
        }
    }
}
