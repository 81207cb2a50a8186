//! SGD with momentum and RMSprop as Burn optimizers whose update is one pass per parameter
//! ([`crate::ops::sgd_step`], [`crate::ops::rmsprop_step`]) instead of Burn's chain of five to
//! eleven tensor operations. The arithmetic is Burn's `Sgd` and `RmsProp`'s, operation for
//! operation, and so is the state: its tensors are recorded under the same names, so a
//! checkpoint written with Burn's optimizers resumes with these and the other way round.

use burn::optim::{LearningRate, Optimizer, RecordState, StateSink, StateSource, join_path};
use burn::tensor::{Device, Tensor};
use inception_kernels::{RmsPropStep, SgdStep};

use crate::ops::{rmsprop_step, sgd_step};

/// `torch.optim.SGD(momentum=m, dampening=0, nesterov=…, weight_decay=…)` with `m > 0`.
#[derive(Clone, Debug)]
pub struct OnePassSgd {
    /// Momentum.
    pub momentum: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 penalty added to the gradient (0: none).
    pub weight_decay: f32,
}

/// The velocity of one parameter (Burn's `SgdState { momentum: Some(MomentumState { velocity }) }`).
#[derive(Clone)]
pub struct SgdState<const D: usize> {
    velocity: Tensor<D>,
}

impl Optimizer for OnePassSgd {
    type State<const D: usize> = SgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<SgdState<D>>,
    ) -> (Tensor<D>, Option<SgdState<D>>) {
        let velocity = match state {
            Some(s) => s.velocity,
            None => tensor.zeros_like(),
        };
        let step = SgdStep {
            lr: lr as f32,
            momentum: self.momentum,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
        };
        let (tensor, velocity) = sgd_step(tensor, grad, velocity, step);
        (tensor, Some(SgdState { velocity }))
    }

    fn to_device<const D: usize>(state: SgdState<D>, device: &Device) -> SgdState<D> {
        SgdState {
            velocity: state.velocity.to_device(device),
        }
    }
}

impl<const D: usize> RecordState for SgdState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        let momentum = join_path(prefix, "momentum");
        out.push_tensor(&momentum, "velocity", self.velocity.clone().into_data());
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let momentum = join_path(prefix, "momentum");
        let velocity = Tensor::from_data(src.take_tensor(&momentum, "velocity")?, device);
        Some(SgdState { velocity })
    }
}

/// `torch.optim.RMSprop(alpha=…, eps=…, momentum=m, weight_decay=…)` with `m > 0`, not
/// centered.
#[derive(Clone, Debug)]
pub struct OnePassRmsProp {
    /// Decay of the squared-gradient average.
    pub alpha: f32,
    /// Added to the root of the average.
    pub eps: f32,
    /// Momentum.
    pub momentum: f32,
    /// L2 penalty added to the gradient (0: none).
    pub weight_decay: f32,
}

/// The squared-gradient average and momentum buffer of one parameter (Burn's
/// `RmsPropState`'s `square_avg.square_avg` and `momentum.buf`; Burn's `centered.avg` is a
/// second name for the average, read past on loading and not written).
#[derive(Clone)]
pub struct RmsPropState<const D: usize> {
    square_avg: Tensor<D>,
    momentum_buf: Tensor<D>,
}

impl Optimizer for OnePassRmsProp {
    type State<const D: usize> = RmsPropState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<RmsPropState<D>>,
    ) -> (Tensor<D>, Option<RmsPropState<D>>) {
        let (square_avg, momentum_buf) = match state {
            Some(s) => (s.square_avg, s.momentum_buf),
            None => (tensor.zeros_like(), tensor.zeros_like()),
        };
        let step = RmsPropStep {
            lr: lr as f32,
            alpha: self.alpha,
            eps: self.eps,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
        };
        let (tensor, square_avg, momentum_buf) =
            rmsprop_step(tensor, grad, square_avg, momentum_buf, step);
        let state = RmsPropState {
            square_avg,
            momentum_buf,
        };
        (tensor, Some(state))
    }

    fn to_device<const D: usize>(state: RmsPropState<D>, device: &Device) -> RmsPropState<D> {
        RmsPropState {
            square_avg: state.square_avg.to_device(device),
            momentum_buf: state.momentum_buf.to_device(device),
        }
    }
}

impl<const D: usize> RecordState for RmsPropState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        let square_avg = join_path(prefix, "square_avg");
        out.push_tensor(
            &square_avg,
            "square_avg",
            self.square_avg.clone().into_data(),
        );
        let momentum = join_path(prefix, "momentum");
        out.push_tensor(&momentum, "buf", self.momentum_buf.clone().into_data());
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let square_avg = join_path(prefix, "square_avg");
        let square_avg = Tensor::from_data(src.take_tensor(&square_avg, "square_avg")?, device);
        let momentum = join_path(prefix, "momentum");
        let momentum_buf = Tensor::from_data(src.take_tensor(&momentum, "buf")?, device);
        let _same_as_square_avg = src.take_tensor(&join_path(prefix, "centered"), "avg");
        Some(RmsPropState {
            square_avg,
            momentum_buf,
        })
    }
}
