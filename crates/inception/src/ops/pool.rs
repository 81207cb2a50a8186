//! The max-pooling extension: its operations, the `Tensor` function over them, and their
//! implementation on Burn's Flex backend ([`inception_kernels`]' NCHW max pooling, whose
//! backward pass finds each window's maximum again, from the forward output, instead of storing
//! 64-bit indices).

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{DType, Tensor};
use burn_flex::FlexTensor;
use inception_kernels::MaxPoolShape;

use super::{contiguous, dims4, on_flex, slice, tensor};
use crate::graph::{PoolSpec, window_out};

/// Max pooling as one Burn backend extension.
#[backend_extension(Flex, Autodiff)]
pub trait PoolBackend: Backend {
    /// The maximum of each window of `x` `[batch, channels, h, w]`.
    fn fast_max_pool2d(x: FloatTensor<Self>, pool: PoolSpec) -> FloatTensor<Self>;

    /// The gradient with respect to `x` for the output gradient `grad`, given the forward
    /// pass's output `y` (which marks each window's maximum).
    fn fast_max_pool2d_backward(
        x: FloatTensor<Self>,
        y: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        pool: PoolSpec,
    ) -> FloatTensor<Self>;
}

/// Max pooling, NCHW: our kernels on Burn's Flex backend, Burn's `max_pool2d` elsewhere.
pub fn max_pool2d(x: Tensor<4>, pool: &PoolSpec) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let fits = window_out(
        [h, w],
        pool.kernel,
        pool.stride,
        pool.padding,
        pool.ceil_mode,
    )
    .is_ok();
    if !(fits && on_flex(&x.device()) && x.dtype() == DType::F32) {
        return burn::tensor::module::max_pool2d(x, options(pool));
    }
    Tensor::from_dispatch(<Dispatch as PoolBackend>::fast_max_pool2d(
        x.into_dispatch(),
        pool.clone(),
    ))
}

/// Burn's options for the same pooling.
fn options(p: &PoolSpec) -> MaxPoolOptions<2> {
    MaxPoolOptions::new(p.kernel)
        .with_stride(p.stride)
        .with_padding_pairs([
            (p.padding[0][0], p.padding[0][1]),
            (p.padding[1][0], p.padding[1][1]),
        ])
        .with_ceil_mode(p.ceil_mode)
}

impl PoolBackend for Flex {
    fn fast_max_pool2d(x: FloatTensor<Self>, pool: PoolSpec) -> FloatTensor<Self> {
        let shape = pool_shape(&x, &pool);
        let x = contiguous(x);
        let mut y = vec![0f32; shape.planes * shape.output[0] * shape.output[1]];
        inception_kernels::max_pool_forward(&shape, slice(&x), &mut y);
        let [n, c, _, _] = dims4(&x);
        tensor(y, [n, c, shape.output[0], shape.output[1]])
    }

    fn fast_max_pool2d_backward(
        x: FloatTensor<Self>,
        y: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        pool: PoolSpec,
    ) -> FloatTensor<Self> {
        let shape = pool_shape(&x, &pool);
        let dims = x.shape();
        let [x, y, grad] = [x, y, grad].map(contiguous);
        let mut dx = vec![0f32; slice(&x).len()];
        inception_kernels::max_pool_backward(&shape, slice(&x), slice(&y), slice(&grad), &mut dx);
        tensor(dx, dims)
    }
}

/// The kernels' description of `pool` over `x` (whose window fits: [`max_pool2d`] checked).
fn pool_shape(x: &FlexTensor, pool: &PoolSpec) -> MaxPoolShape {
    let [n, c, h, w] = dims4(x);
    let (oh, ow) = window_out(
        [h, w],
        pool.kernel,
        pool.stride,
        pool.padding,
        pool.ceil_mode,
    )
    .unwrap_or((0, 0));
    MaxPoolShape {
        planes: n * c,
        input: [h, w],
        output: [oh, ow],
        kernel: pool.kernel,
        stride: pool.stride,
        padding: [pool.padding[0][0], pool.padding[1][0]],
    }
}
