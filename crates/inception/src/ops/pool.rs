//! The pooling extension: max and average pooling, the `Tensor` functions over them, and their
//! implementation on Burn's Flex backend ([`inception_kernels`]' NCHW pooling; the max pool's
//! backward pass finds each window's maximum again, from the forward output, instead of storing
//! 64-bit indices).

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
use burn::tensor::{DType, Tensor};
use burn_flex::FlexTensor;
use inception_kernels::{AvgPoolShape, MaxPoolShape};

use super::{contiguous, dims4, on_flex, slice, tensor};
use crate::graph::{PoolSpec, window_out};

/// Max and average pooling as one Burn backend extension.
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

    /// The average of each window of `x` `[batch, channels, h, w]`.
    fn fast_avg_pool2d(x: FloatTensor<Self>, pool: PoolSpec) -> FloatTensor<Self>;

    /// The gradient with respect to an input of `[h, w]` pixels for the output gradient `grad`.
    fn fast_avg_pool2d_backward(
        grad: FloatTensor<Self>,
        input: [usize; 2],
        pool: PoolSpec,
    ) -> FloatTensor<Self>;
}

/// Max pooling, NCHW: our kernels on Burn's Flex backend, Burn's `max_pool2d` elsewhere.
pub fn max_pool2d(x: Tensor<4>, pool: &PoolSpec) -> Tensor<4> {
    if !covered(&x, pool) {
        return burn::tensor::module::max_pool2d(x, max_options(pool));
    }
    Tensor::from_dispatch(<Dispatch as PoolBackend>::fast_max_pool2d(
        x.into_dispatch(),
        pool.clone(),
    ))
}

/// Average pooling, NCHW: our kernels on Burn's Flex backend, Burn's `avg_pool2d` elsewhere.
pub fn avg_pool2d(x: Tensor<4>, pool: &PoolSpec) -> Tensor<4> {
    if !covered(&x, pool) {
        return burn::tensor::module::avg_pool2d(x, avg_options(pool));
    }
    Tensor::from_dispatch(<Dispatch as PoolBackend>::fast_avg_pool2d(
        x.into_dispatch(),
        pool.clone(),
    ))
}

/// Whether our kernels run `pool` over `x`: f32 on Flex, a window that fits.
fn covered(x: &Tensor<4>, pool: &PoolSpec) -> bool {
    let [_, _, h, w] = x.dims();
    let fits = window_out(
        [h, w],
        pool.kernel,
        pool.stride,
        pool.padding,
        pool.ceil_mode,
    )
    .is_ok();
    fits && on_flex(&x.device()) && x.dtype() == DType::F32
}

/// Burn's options for the same average pooling.
fn avg_options(p: &PoolSpec) -> AvgPoolOptions<2> {
    AvgPoolOptions::new(p.kernel)
        .with_stride(p.stride)
        .with_padding_pairs([
            (p.padding[0][0], p.padding[0][1]),
            (p.padding[1][0], p.padding[1][1]),
        ])
        .with_ceil_mode(p.ceil_mode)
        .with_count_include_pad(p.count_include_pad)
}

/// Burn's options for the same max pooling.
fn max_options(p: &PoolSpec) -> MaxPoolOptions<2> {
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

    fn fast_avg_pool2d(x: FloatTensor<Self>, pool: PoolSpec) -> FloatTensor<Self> {
        let [n, c, h, w] = dims4(&x);
        let shape = avg_shape(n * c, [h, w], &pool);
        let x = contiguous(x);
        let mut y = vec![0f32; shape.planes * shape.output[0] * shape.output[1]];
        inception_kernels::avg_pool_forward(&shape, slice(&x), &mut y);
        tensor(y, [n, c, shape.output[0], shape.output[1]])
    }

    fn fast_avg_pool2d_backward(
        grad: FloatTensor<Self>,
        input: [usize; 2],
        pool: PoolSpec,
    ) -> FloatTensor<Self> {
        let [n, c, _, _] = dims4(&grad);
        let shape = avg_shape(n * c, input, &pool);
        let grad = contiguous(grad);
        let mut dx = vec![0f32; shape.planes * input[0] * input[1]];
        inception_kernels::avg_pool_backward(&shape, slice(&grad), &mut dx);
        tensor(dx, [n, c, input[0], input[1]])
    }
}

/// `pool`'s output size over an input of `[h, w]` pixels (a window that fits: [`covered`]
/// checked).
fn out_size(input: [usize; 2], pool: &PoolSpec) -> [usize; 2] {
    let (oh, ow) = window_out(
        input,
        pool.kernel,
        pool.stride,
        pool.padding,
        pool.ceil_mode,
    )
    .unwrap_or((0, 0));
    [oh, ow]
}

/// The kernels' description of max pooling `pool` over `x`.
fn pool_shape(x: &FlexTensor, pool: &PoolSpec) -> MaxPoolShape {
    let [n, c, h, w] = dims4(x);
    MaxPoolShape {
        planes: n * c,
        input: [h, w],
        output: out_size([h, w], pool),
        kernel: pool.kernel,
        stride: pool.stride,
        padding: [pool.padding[0][0], pool.padding[1][0]],
    }
}

/// The kernels' description of average pooling `pool` over `planes` planes of `input` pixels.
fn avg_shape(planes: usize, input: [usize; 2], pool: &PoolSpec) -> AvgPoolShape {
    AvgPoolShape {
        planes,
        input,
        output: out_size(input, pool),
        kernel: pool.kernel,
        stride: pool.stride,
        padding: pool.padding,
        count_include_pad: pool.count_include_pad,
    }
}
