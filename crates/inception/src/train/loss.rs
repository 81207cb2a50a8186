//! Losses: cross-entropy with label smoothing, and the GoogLeNet objective that adds the
//! auxiliary classifiers' losses with a weight.

use burn::tensor::{Tensor, TensorData, activation};

use crate::network::ModelOutput;

/// Mean cross-entropy of `logits` `[N, C]` against class indices, with label smoothing `ε`
/// (PyTorch's `CrossEntropyLoss(label_smoothing=ε)`: the target puts `1 - ε + ε/C` on the class
/// and `ε/C` on every other).
pub fn cross_entropy(logits: Tensor<2>, targets: &[usize], smoothing: f32) -> Tensor<1> {
    let [n, c] = logits.dims();
    let off = smoothing / c as f32;
    let mut dist = vec![off; n * c];
    for (i, &t) in targets.iter().enumerate() {
        dist[i * c + t] += 1.0 - smoothing;
    }
    let dist = Tensor::<2>::from_data(TensorData::new(dist, [n, c]), &logits.device());
    let logp = activation::log_softmax(logits, 1);
    (logp * dist).sum_dim(1).mean().neg().reshape([1])
}

/// The training objective: the main head's loss plus `aux_weight` × each auxiliary head's
/// (the paper's 0.3). Returns the total and the main loss alone.
pub fn objective(
    out: &ModelOutput,
    targets: &[usize],
    smoothing: f32,
    aux_weight: f32,
) -> (Tensor<1>, Tensor<1>) {
    let main = cross_entropy(out.logits(), targets, smoothing);
    let mut total = main.clone();
    if aux_weight != 0.0 {
        for aux in &out.aux {
            total = total + cross_entropy(aux.clone(), targets, smoothing).mul_scalar(aux_weight);
        }
    }
    (total, main)
}
