//! The convolution extension: its operations, the `Tensor` functions over them, and their
//! implementation on Burn's Flex backend ([`inception_kernels`]' NCHW passes over Flex's
//! contiguous f32 buffers).

use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::nn::PaddingConfig2d;
use burn::tensor::{DType, Tensor};
use burn_flex::FlexTensor;
use inception_kernels::{
    Conv2dShape, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight,
    conv2d_forward,
};

use super::{contiguous, dims4, on_flex, slice, tensor};

/// Convolution forward and backward passes as one Burn backend extension (groups 1, dilation 1:
/// [`conv2d`] sends the others to Burn's own convolution).
///
/// Like Burn's own backend operations, these are low-level: the backward passes panic when the
/// shapes do not describe a convolution the forward pass could have run.
#[backend_extension(Flex, Autodiff)]
pub trait ConvBackend: Backend {
    /// `conv2d(x, weight)`, NCHW.
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// `conv2d(x, weight) + bias`, NCHW.
    fn fast_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// The gradient with respect to `x` for the output gradient `grad`.
    fn fast_conv2d_x_backward(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        x_shape: [usize; 4],
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// The gradient with respect to the weight for the output gradient `grad`.
    fn fast_conv2d_weight_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        weight_shape: [usize; 4],
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// The gradient with respect to the bias: `grad` summed over all but the channel axis.
    fn fast_conv2d_bias_backward(grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// A 2-D convolution, NCHW: our kernels on Burn's Flex backend, Burn's own elsewhere.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    if !covered(&x, &weight, &options) {
        return burn::tensor::module::conv2d(x, weight, bias, options);
    }
    let (x, weight) = (x.into_dispatch(), weight.into_dispatch());
    Tensor::from_dispatch(match bias {
        Some(b) => {
            <Dispatch as ConvBackend>::fast_conv2d_bias(x, weight, b.into_dispatch(), options)
        }
        None => <Dispatch as ConvBackend>::fast_conv2d(x, weight, options),
    })
}

/// A Burn `Conv2d` layer's forward pass through [`conv2d`] (through the layer's own `forward`
/// for `Same` padding, which only Burn computes).
pub fn conv2d_layer(layer: &burn::nn::conv::Conv2d, x: Tensor<4>) -> Tensor<4> {
    let (top, left, bottom, right) = match layer.padding {
        PaddingConfig2d::Explicit(t, l, b, r) => (t, l, b, r),
        PaddingConfig2d::Valid => (0, 0, 0, 0),
        PaddingConfig2d::Same => return layer.forward(x),
    };
    let options = ConvOptions::new_with_padding(
        layer.stride,
        [(top, bottom), (left, right)],
        layer.dilation,
        layer.groups,
    );
    conv2d(
        x,
        layer.weight.val(),
        layer.bias.as_ref().map(|b| b.val()),
        options,
    )
}

/// Whether the extension computes this convolution: on Flex, in f32, with a geometry the kernels
/// take (the same test the Flex implementation applies).
fn covered(x: &Tensor<4>, weight: &Tensor<4>, options: &ConvOptions<2>) -> bool {
    on_flex(&x.device())
        && x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && geometry(x.dims(), weight.dims(), options).is_some_and(|s| s.output().is_some())
}

impl ConvBackend for Flex {
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        forward(x, weight, None, options)
    }

    fn fast_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        forward(x, weight, Some(bias), options)
    }

    fn fast_conv2d_x_backward(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        x_shape: [usize; 4],
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let shape = geometry(x_shape, dims4(&weight), &options)
            .filter(|s| s.output().is_some())
            .expect("the forward pass ran this convolution");
        let (weight, grad) = (contiguous(weight), contiguous(grad));
        let mut dx = vec![0f32; shape.batch * shape.input_len()];
        conv2d_backward_input(&shape, slice(&grad), slice(&weight), &mut dx);
        tensor(dx, x_shape)
    }

    fn fast_conv2d_weight_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        weight_shape: [usize; 4],
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let shape = geometry(dims4(&x), weight_shape, &options)
            .filter(|s| s.output().is_some())
            .expect("the forward pass ran this convolution");
        let (x, grad) = (contiguous(x), contiguous(grad));
        let mut dw = vec![0f32; shape.weight_len()];
        conv2d_backward_weight(&shape, slice(&x), slice(&grad), &mut dw);
        tensor(dw, weight_shape)
    }

    fn fast_conv2d_bias_backward(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let [n, c, h, w] = dims4(&grad);
        let grad = contiguous(grad);
        let mut db = vec![0f32; c];
        conv2d_backward_bias(slice(&grad), n, h * w, &mut db);
        tensor(db, [c])
    }
}

/// `conv2d(x, weight) + bias` through the kernels, through Flex's own convolution where they
/// do not apply.
fn forward(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: ConvOptions<2>,
) -> FlexTensor {
    let Some(shape) = geometry(dims4(&x), dims4(&weight), &options) else {
        return Flex::conv2d(x, weight, bias, options);
    };
    let Some([ho, wo]) = shape.output() else {
        return Flex::conv2d(x, weight, bias, options);
    };
    let (x, weight) = (contiguous(x), contiguous(weight));
    let bias = bias.map(contiguous);
    let mut y = vec![0f32; shape.batch * shape.output_len()];
    conv2d_forward(
        &shape,
        slice(&x),
        slice(&weight),
        bias.as_ref().map(slice),
        &mut y,
    );
    tensor(y, [shape.batch, shape.cout, ho, wo])
}

/// The kernels' description of a convolution, `None` where they do not apply (groups,
/// dilation, mismatched channels).
fn geometry(x: [usize; 4], w: [usize; 4], options: &ConvOptions<2>) -> Option<Conv2dShape> {
    let [batch, cin, h, wd] = x;
    let [cout, wcin, kh, kw] = w;
    if options.groups != 1 || options.dilation != [1, 1] || wcin != cin {
        return None;
    }
    let [(t, b), (l, r)] = options.padding;
    Some(Conv2dShape {
        batch,
        cin,
        input: [h, wd],
        cout,
        kernel: [kh, kw],
        stride: options.stride,
        padding: [[t, b], [l, r]],
    })
}
