//! Optimizers with PyTorch's semantics and global-norm gradient clipping.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{
    AdamWConfig, GradientsParams, ModuleOptimizer, RmsPropConfig, SgdConfig,
    decay::WeightDecayConfig, momentum::MomentumConfig,
};
use burn::tensor::Tensor;

use super::trainer::scalar;
use super::update::{OnePassRmsProp, OnePassSgd};
use super::{OptimizerKind, TrainConfig};
use crate::network::Network;

/// The optimizer of a configuration, with PyTorch's semantics (`torch.optim.SGD` with
/// dampening 0, `RMSprop`, `AdamW`); weight decay as PyTorch applies it (L2 added to the
/// gradient for SGD and RMSprop, decoupled for AdamW). SGD and RMSprop with momentum update
/// each parameter in one pass ([`super::update`]); the rest are Burn's optimizers.
pub fn build_optimizer(cfg: &TrainConfig) -> ModuleOptimizer {
    let penalty = if cfg.weight_decay > 0.0 {
        cfg.weight_decay as f32
    } else {
        0.0
    };
    let wd = (penalty > 0.0).then(|| WeightDecayConfig::new(penalty));
    match &cfg.optimizer {
        OptimizerKind::Sgd { momentum, nesterov } if *momentum > 0.0 => {
            ModuleOptimizer::from(OnePassSgd {
                momentum: *momentum as f32,
                nesterov: *nesterov,
                weight_decay: penalty,
            })
        }
        OptimizerKind::RmsProp {
            alpha,
            eps,
            momentum,
        } if *momentum > 0.0 => ModuleOptimizer::from(OnePassRmsProp {
            alpha: *alpha,
            eps: *eps,
            momentum: *momentum,
            weight_decay: penalty,
        }),
        OptimizerKind::Sgd { momentum, nesterov } => SgdConfig::new()
            .with_momentum((*momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(*momentum)
                    .with_dampening(0.0)
                    .with_nesterov(*nesterov)
            }))
            .with_weight_decay(wd)
            .init(),
        OptimizerKind::RmsProp {
            alpha,
            eps,
            momentum,
        } => RmsPropConfig::new()
            .with_alpha(*alpha)
            .with_epsilon(*eps)
            .with_momentum(*momentum)
            .with_weight_decay(wd)
            .init(),
        OptimizerKind::AdamW { beta1, beta2, eps } => AdamWConfig::new()
            .with_beta_1(*beta1)
            .with_beta_2(*beta2)
            .with_epsilon(*eps)
            .with_weight_decay(cfg.weight_decay as f32)
            .init(),
    }
}

/// `torch.nn.utils.clip_grad_norm_`: scales all gradients together so that their global L2
/// norm is at most `max`. Returns the norm before clipping.
pub fn clip_global_norm(network: &Network, grads: &mut GradientsParams, max: f64) -> f64 {
    struct SumSquares<'a>(&'a GradientsParams, f64);
    impl ModuleVisitor for SumSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.0.get::<D>(param.id) {
                self.1 += scalar(g.square().sum());
            }
        }
    }
    let mut sum = SumSquares(grads, 0.0);
    network.visit(&mut sum);
    let norm = sum.1.sqrt();
    let factor = max / (norm + 1e-6);
    if factor < 1.0 {
        scale_grads(network, grads, factor);
    }
    norm
}

/// Multiplies every gradient of `network`'s parameters by `factor`.
pub(crate) fn scale_grads(network: &Network, grads: &mut GradientsParams, factor: f64) {
    struct Scale<'a>(&'a mut GradientsParams, f64);
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.0.remove::<D>(param.id) {
                self.0.register(param.id, g.mul_scalar(self.1));
            }
        }
    }
    network.visit(&mut Scale(grads, factor));
}
