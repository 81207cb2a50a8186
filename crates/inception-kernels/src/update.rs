//! Optimizer updates as one pass over a parameter: SGD with momentum and RMSprop, with
//! PyTorch's semantics and, value for value, the same f32 operations in the same order as
//! Burn's `Sgd` and `RmsProp` (which take five to eleven separate passes, each with its own
//! output buffer). The parameter and the optimizer state are updated in place.

use rayon::prelude::*;

use crate::simd::vectorized;

/// Values per parallel task: large enough that a task outweighs its scheduling.
const CHUNK: usize = 1 << 15;

/// `torch.optim.SGD(lr, momentum, nesterov, weight_decay)` (dampening 0) for one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    /// Learning rate.
    pub lr: f32,
    /// Momentum.
    pub momentum: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 penalty added to the gradient (0: none).
    pub weight_decay: f32,
}

/// `torch.optim.RMSprop(lr, alpha, eps, momentum, weight_decay)` for one step (not centered).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropStep {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the squared-gradient average.
    pub alpha: f32,
    /// Added to the root of the average.
    pub eps: f32,
    /// Momentum.
    pub momentum: f32,
    /// L2 penalty added to the gradient (0: none).
    pub weight_decay: f32,
}

/// One SGD-with-momentum step: `v = g + v·momentum`, then `p −= lr·v` (with
/// Nesterov, `p −= lr·(v·momentum + g)`); `g` first gains `p·weight_decay`. A velocity of
/// zeros gives PyTorch's first step (`v = g`).
pub fn sgd_step(param: &mut [f32], grad: &[f32], velocity: &mut [f32], s: &SgdStep) {
    let n = param.len();
    assert!(
        grad.len() == n && velocity.len() == n,
        "sgd_step: lengths differ"
    );
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(velocity.par_chunks_mut(CHUNK))
        .for_each(|((p, g), v)| {
            vectorized(|| {
                for ((p, &g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
                    let g = decayed(g, *p, s.weight_decay);
                    *v = g + *v * s.momentum;
                    let d = if s.nesterov { *v * s.momentum + g } else { *v };
                    *p -= d * s.lr;
                }
            })
        });
}

/// One RMSprop step: `a = a·alpha + g²·(1 − alpha)`, `b = b·momentum + g / (√a + eps)`, then
/// `p −= lr·b`; `g` first gains `p·weight_decay`. States of zeros give PyTorch's first step.
pub fn rmsprop_step(
    param: &mut [f32],
    grad: &[f32],
    square_avg: &mut [f32],
    momentum_buf: &mut [f32],
    s: &RmsPropStep,
) {
    let n = param.len();
    assert!(
        grad.len() == n && square_avg.len() == n && momentum_buf.len() == n,
        "rmsprop_step: lengths differ"
    );
    let fresh = 1.0 - s.alpha;
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(square_avg.par_chunks_mut(CHUNK))
        .zip(momentum_buf.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), a), b)| {
            vectorized(|| {
                for (((p, &g), a), b) in p.iter_mut().zip(g).zip(a.iter_mut()).zip(b.iter_mut()) {
                    let g = decayed(g, *p, s.weight_decay);
                    *a = *a * s.alpha + g * g * fresh;
                    *b = *b * s.momentum + g / (a.sqrt() + s.eps);
                    *p -= *b * s.lr;
                }
            })
        });
}

/// The gradient with the L2 penalty added as Burn's `WeightDecay` adds it (`p·wd + g`); `g`
/// itself when there is none, so that a zero penalty cannot turn an infinite weight into NaN.
#[inline(always)]
fn decayed(g: f32, p: f32, weight_decay: f32) -> f32 {
    if weight_decay == 0.0 {
        g
    } else {
        p * weight_decay + g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as f32 / u32::MAX as f32 - 0.5)
            .collect()
    }

    /// Several steps against the update written out in f64 from PyTorch's documentation,
    /// over more values than one parallel chunk.
    #[test]
    fn sgd_follows_pytorch() {
        for nesterov in [false, true] {
            let n = CHUNK + 77;
            let s = SgdStep {
                lr: 0.1,
                momentum: 0.9,
                nesterov,
                weight_decay: 1e-2,
            };
            let (mut p, mut v) = (values(n, 1), vec![0f32; n]);
            let mut p64: Vec<f64> = p.iter().map(|&x| x as f64).collect();
            let mut v64: Option<Vec<f64>> = None;
            for step in 0..3 {
                let g = values(n, 10 + step);
                sgd_step(&mut p, &g, &mut v, &s);
                let g64: Vec<f64> = (0..n).map(|i| g[i] as f64 + 1e-2 * p64[i]).collect();
                let v_new: Vec<f64> = match &v64 {
                    None => g64.clone(),
                    Some(v) => (0..n).map(|i| 0.9 * v[i] + g64[i]).collect(),
                };
                for i in 0..n {
                    let d = if nesterov {
                        g64[i] + 0.9 * v_new[i]
                    } else {
                        v_new[i]
                    };
                    p64[i] -= 0.1 * d;
                }
                v64 = Some(v_new);
            }
            for i in 0..n {
                assert!(
                    (p[i] as f64 - p64[i]).abs() < 1e-5,
                    "{i}: {} vs {}",
                    p[i],
                    p64[i]
                );
            }
        }
    }

    #[test]
    fn rmsprop_follows_pytorch() {
        let n = 2 * CHUNK + 5;
        let s = RmsPropStep {
            lr: 0.01,
            alpha: 0.9,
            eps: 1.0,
            momentum: 0.9,
            weight_decay: 0.0,
        };
        let (mut p, mut a, mut b) = (values(n, 2), vec![0f32; n], vec![0f32; n]);
        let (mut p64, mut a64, mut b64) = (
            p.iter().map(|&x| x as f64).collect::<Vec<_>>(),
            vec![0f64; n],
            vec![0f64; n],
        );
        for step in 0..3 {
            let g = values(n, 20 + step);
            rmsprop_step(&mut p, &g, &mut a, &mut b, &s);
            for i in 0..n {
                let g = g[i] as f64;
                a64[i] = 0.9 * a64[i] + 0.1 * g * g;
                b64[i] = 0.9 * b64[i] + g / (a64[i].sqrt() + 1.0);
                p64[i] -= 0.01 * b64[i];
            }
        }
        for i in 0..n {
            assert!((p[i] as f64 - p64[i]).abs() < 1e-6, "{i}");
            assert!((a[i] as f64 - a64[i]).abs() < 1e-6, "{i}");
        }
    }
}
