//! The batch-normalisation extension (training mode: the batch's own statistics, optionally
//! with the ReLU that follows fused in): its operations, the `Tensor` function over them, and
//! their implementation on Burn's Flex backend ([`inception_kernels`]' two-pass kernels).

use burn::backend::ops::{ActivationOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, Tensor};
use burn_flex::FlexTensor;
use inception_kernels::NormShape;

use super::{contiguous, on_flex, slice, tensor};

/// Batch normalisation in training mode as one Burn backend extension.
#[backend_extension(Flex, Autodiff)]
pub trait NormBackend: Backend {
    /// `(output, mean, variance)`: `x` `[batch, channels, ...]` normalised per channel with the
    /// batch's mean and biased variance, scaled by `gamma` and shifted by `beta`; with `relu`,
    /// then passed through a ReLU.
    fn fast_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// `(dx, dgamma, dbeta)` for the output gradient `grad`, from the forward pass's input,
    /// affine parameters and statistics.
    #[allow(clippy::too_many_arguments)]
    fn fast_batch_norm_train_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Batch normalisation with the batch's statistics, followed by a ReLU when `relu` is set:
/// `(output, mean, biased variance)` — our kernels on Burn's Flex backend (one pass for both),
/// Burn's `batch_norm_train` and `relu` elsewhere.
pub fn batch_norm_train<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    relu: bool,
) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    let covered = D >= 2
        && on_flex(&x.device())
        && [x.dtype(), gamma.dtype(), beta.dtype()] == [DType::F32; 3];
    if !covered {
        let r = burn::tensor::module::batch_norm_train(x, gamma, beta, epsilon);
        let output = if relu {
            burn::tensor::activation::relu(r.output)
        } else {
            r.output
        };
        return (output, r.mean, r.variance);
    }
    let (y, mean, var) = <Dispatch as NormBackend>::fast_batch_norm_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
        relu,
    );
    (
        Tensor::from_dispatch(y),
        Tensor::from_dispatch(mean),
        Tensor::from_dispatch(var),
    )
}

impl NormBackend for Flex {
    fn fast_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let Some(shape) = norm_shape(&x) else {
            let r = Flex::batch_norm_train(x, gamma, beta, epsilon);
            let output = if relu { Flex::relu(r.output) } else { r.output };
            return (output, r.mean, r.variance);
        };
        let dims = x.shape();
        let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
        let c = shape.channels;
        let (mut y, mut mean, mut var) =
            (vec![0f32; slice(&x).len()], vec![0f32; c], vec![0f32; c]);
        inception_kernels::batch_norm_train(
            &shape,
            slice(&x),
            slice(&gamma),
            slice(&beta),
            epsilon,
            relu,
            &mut y,
            &mut mean,
            &mut var,
        );
        (tensor(y, dims), tensor(mean, [c]), tensor(var, [c]))
    }

    fn fast_batch_norm_train_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let Some(shape) = norm_shape(&x) else {
            let grad = if relu {
                let y = Flex::batch_norm_train(x.clone(), gamma.clone(), beta, epsilon).output;
                Flex::relu_backward(y, grad)
            } else {
                grad
            };
            let r = Flex::batch_norm_train_backward(x, gamma, mean, variance, epsilon, grad);
            return (r.x_grad, r.gamma_grad, r.beta_grad);
        };
        let dims = x.shape();
        let [x, gamma, beta, mean, variance, grad] =
            [x, gamma, beta, mean, variance, grad].map(contiguous);
        let c = shape.channels;
        let (mut dx, mut dgamma, mut dbeta) =
            (vec![0f32; slice(&x).len()], vec![0f32; c], vec![0f32; c]);
        inception_kernels::batch_norm_train_backward(
            &shape,
            slice(&x),
            slice(&grad),
            slice(&gamma),
            slice(&beta),
            slice(&mean),
            slice(&variance),
            epsilon,
            relu,
            &mut dx,
            &mut dgamma,
            &mut dbeta,
        );
        (tensor(dx, dims), tensor(dgamma, [c]), tensor(dbeta, [c]))
    }
}

/// `[batch, channels, pixels]` of a tensor of rank 2 or more.
fn norm_shape(x: &FlexTensor) -> Option<NormShape> {
    let dims = x.shape();
    (dims.num_dims() >= 2).then(|| NormShape {
        batch: dims[0],
        channels: dims[1],
        pixels: dims.iter().skip(2).product(),
    })
}
