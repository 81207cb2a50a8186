//! The optimizer-update extension: one SGD-with-momentum or RMSprop step of one parameter as a
//! single pass ([`inception_kernels`]' `sgd_step` / `rmsprop_step`, in place where the buffers
//! are not shared) on Burn's Flex backend, and Burn's own tensor operations, in the same order,
//! everywhere else.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, Tensor};
use burn_flex::FlexTensor;
use inception_kernels::{RmsPropStep, SgdStep};

use super::{contiguous, on_flex, slice};

/// Optimizer updates as one Burn backend extension (no autodiff: updates run on the inner
/// backend's tensors).
#[backend_extension(Flex)]
pub trait UpdateBackend: Backend {
    /// `(param, velocity)` after one SGD step with gradient `grad`.
    fn fast_sgd_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        velocity: FloatTensor<Self>,
        step: SgdStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// `(param, square_avg, momentum_buf)` after one RMSprop step with gradient `grad`.
    fn fast_rmsprop_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        square_avg: FloatTensor<Self>,
        momentum_buf: FloatTensor<Self>,
        step: RmsPropStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// One SGD step (`torch.optim.SGD`, dampening 0): `(param, velocity)`. A velocity of zeros is
/// the first step's.
pub fn sgd_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    velocity: Tensor<D>,
    s: SgdStep,
) -> (Tensor<D>, Tensor<D>) {
    if covered([&param, &grad, &velocity]) {
        let (p, v) = <Dispatch as UpdateBackend>::fast_sgd_step(
            param.into_dispatch(),
            grad.into_dispatch(),
            velocity.into_dispatch(),
            s,
        );
        return (Tensor::from_dispatch(p), Tensor::from_dispatch(v));
    }
    reference_sgd_step(param, grad, velocity, s)
}

/// [`sgd_step`] as Burn's `Sgd` computes it, one tensor operation at a time.
fn reference_sgd_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    velocity: Tensor<D>,
    s: SgdStep,
) -> (Tensor<D>, Tensor<D>) {
    let grad = decayed(grad, &param, s.weight_decay);
    let velocity = grad.clone().add(velocity.mul_scalar(s.momentum));
    let delta = if s.nesterov {
        velocity.clone().mul_scalar(s.momentum).add(grad)
    } else {
        velocity.clone()
    };
    (param - delta.mul_scalar(s.lr), velocity)
}

/// One RMSprop step (`torch.optim.RMSprop`, not centered): `(param, square_avg,
/// momentum_buf)`. States of zeros are the first step's.
pub fn rmsprop_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    square_avg: Tensor<D>,
    momentum_buf: Tensor<D>,
    s: RmsPropStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    if covered([&param, &grad, &square_avg, &momentum_buf]) {
        let (p, a, b) = <Dispatch as UpdateBackend>::fast_rmsprop_step(
            param.into_dispatch(),
            grad.into_dispatch(),
            square_avg.into_dispatch(),
            momentum_buf.into_dispatch(),
            s,
        );
        return (
            Tensor::from_dispatch(p),
            Tensor::from_dispatch(a),
            Tensor::from_dispatch(b),
        );
    }
    reference_rmsprop_step(param, grad, square_avg, momentum_buf, s)
}

/// [`rmsprop_step`] as Burn's `RmsProp` computes it, one tensor operation at a time.
fn reference_rmsprop_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    square_avg: Tensor<D>,
    momentum_buf: Tensor<D>,
    s: RmsPropStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let grad = decayed(grad, &param, s.weight_decay);
    let square_avg = square_avg
        .mul_scalar(s.alpha)
        .add(grad.clone().square().mul_scalar(1.0 - s.alpha));
    let scaled = grad.div(square_avg.clone().sqrt().add_scalar(s.eps));
    let momentum_buf = momentum_buf.mul_scalar(s.momentum).add(scaled);
    let param = param - momentum_buf.clone().mul_scalar(s.lr);
    (param, square_avg, momentum_buf)
}

/// Whether the kernels take these tensors: f32, of one shape, on Flex.
fn covered<const D: usize, const N: usize>(tensors: [&Tensor<D>; N]) -> bool {
    let first = tensors[0];
    on_flex(&first.device())
        && tensors
            .iter()
            .all(|t| t.dtype() == DType::F32 && t.shape() == first.shape())
}

/// The gradient plus the L2 penalty, as Burn's `WeightDecay` adds it.
fn decayed<const D: usize>(grad: Tensor<D>, param: &Tensor<D>, weight_decay: f32) -> Tensor<D> {
    if weight_decay == 0.0 {
        grad
    } else {
        param.clone().mul_scalar(weight_decay).add(grad)
    }
}

impl UpdateBackend for Flex {
    fn fast_sgd_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        velocity: FloatTensor<Self>,
        step: SgdStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (mut param, grad, mut velocity) = (owned(param), contiguous(grad), owned(velocity));
        inception_kernels::sgd_step(
            values_mut(&mut param),
            slice(&grad),
            values_mut(&mut velocity),
            &step,
        );
        (param, velocity)
    }

    fn fast_rmsprop_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        square_avg: FloatTensor<Self>,
        momentum_buf: FloatTensor<Self>,
        step: RmsPropStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (mut param, grad) = (owned(param), contiguous(grad));
        let (mut square_avg, mut momentum_buf) = (owned(square_avg), owned(momentum_buf));
        inception_kernels::rmsprop_step(
            values_mut(&mut param),
            slice(&grad),
            values_mut(&mut square_avg),
            values_mut(&mut momentum_buf),
            &step,
        );
        (param, square_avg, momentum_buf)
    }
}

/// A contiguous f32 tensor whose buffer is this tensor's alone and holds exactly its values
/// (copied only when it is shared, strided or a view into a larger buffer).
fn owned(t: FlexTensor) -> FlexTensor {
    let t = contiguous(t);
    let whole = t.layout().contiguous_offsets() == Some((0, t.shape().num_elements()))
        && t.bytes().len() == t.shape().num_elements() * size_of::<f32>();
    if whole {
        t
    } else {
        FlexTensor::from_data(t.into_data())
    }
}

/// The values of an [`owned`] tensor, to update in place (copy-on-write when shared).
fn values_mut(t: &mut FlexTensor) -> &mut [f32] {
    t.storage_mut::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn random(n: usize, seed: u64, device: &Device) -> Tensor<1> {
        let mut x = seed;
        let v: Vec<f32> = (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        Tensor::from_data(TensorData::new(v, [n]), device)
    }

    fn bits(t: &Tensor<1>) -> Vec<u32> {
        let v = t.clone().into_data().try_to_vec::<f32>().unwrap();
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn sgd_kernel_is_burns_arithmetic() {
        let device = Device::default();
        let n = 70_001;
        for (nesterov, weight_decay) in [(false, 0.0), (true, 0.0), (false, 1e-2)] {
            let s = SgdStep {
                lr: 0.03,
                momentum: 0.9,
                nesterov,
                weight_decay,
            };
            let (p, g, v) = (
                random(n, 1, &device),
                random(n, 2, &device),
                random(n, 3, &device),
            );
            let (p1, v1) = sgd_step(p.clone(), g.clone(), v.clone(), s);
            let (p2, v2) = reference_sgd_step(p, g, v, s);
            assert_eq!(bits(&v1), bits(&v2));
            assert_eq!(bits(&p1), bits(&p2));
        }
    }

    #[test]
    fn rmsprop_kernel_is_burns_arithmetic() {
        let device = Device::default();
        let n = 70_001;
        for weight_decay in [0.0, 1e-3] {
            let s = RmsPropStep {
                lr: 0.01,
                alpha: 0.9,
                eps: 1.0,
                momentum: 0.9,
                weight_decay,
            };
            let (p, g) = (random(n, 1, &device), random(n, 2, &device));
            let (a, b) = (random(n, 3, &device).abs(), random(n, 4, &device));
            let (p1, a1, b1) = rmsprop_step(p.clone(), g.clone(), a.clone(), b.clone(), s);
            let (p2, a2, b2) = reference_rmsprop_step(p, g, a, b, s);
            assert_eq!(bits(&a1), bits(&a2));
            assert_eq!(bits(&b1), bits(&b2));
            assert_eq!(bits(&p1), bits(&p2));
        }
    }
}
