//! Burn modules for the layers that hold parameters, and the value type that flows through a
//! network.

use burn::module::{Flag, Module, Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use crate::graph::{BatchNormSpec, Conv2dSpec, DenseSpec, Op};

/// Batch normalisation with PyTorch's semantics and an optional scale.
///
/// It differs from `burn::nn::BatchNorm` where the reference frameworks need it to:
/// the running variance is updated with the *unbiased* batch variance (as PyTorch and Keras do),
/// and γ can be absent (Keras `BatchNormalization(scale=False)`, used throughout Keras's
/// InceptionV3), so it is neither stored nor counted as trainable.
#[derive(Module, Debug)]
pub struct BatchNorm2d {
    /// Learned scale γ (PyTorch `weight`); `None` when the layer has no scale.
    pub gamma: Option<Param<Tensor<1>>>,
    /// Learned shift β (PyTorch `bias`).
    pub beta: Param<Tensor<1>>,
    /// Running mean.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running (unbiased) variance.
    pub running_var: RunningState<Tensor<1>>,
    /// Whether this layer trains (false once frozen: then it always uses the running statistics).
    pub training: Param<Flag>,
    /// PyTorch-convention momentum.
    pub momentum: f64,
    /// Variance epsilon.
    pub epsilon: f64,
}

impl BatchNorm2d {
    /// A fresh layer (γ = 1, β = 0, mean 0, variance 1).
    pub fn new(spec: &BatchNormSpec, device: &Device) -> Self {
        let c = spec.channels;
        Self {
            gamma: spec
                .scale
                .then(|| Param::from_tensor(Tensor::ones([c], device))),
            beta: Param::from_tensor(Tensor::zeros([c], device)),
            running_mean: RunningState::new(Tensor::zeros([c], device)),
            running_var: RunningState::new(Tensor::ones([c], device)),
            training: Param::from_bool(true),
            momentum: spec.momentum,
            epsilon: spec.epsilon,
        }
    }

    /// Normalises `[N, C, ...]` input with batch statistics when training on an autodiff device,
    /// and with the running statistics otherwise.
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        self.normalize(input, false)
    }

    /// [`BatchNorm2d::forward`] followed by a ReLU, in one pass (forward and backward) when
    /// training on the CPU.
    pub fn forward_relu<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        self.normalize(input, true)
    }

    fn normalize<const D: usize>(&self, input: Tensor<D>, relu: bool) -> Tensor<D> {
        let device = input.device();
        let gamma = match &self.gamma {
            Some(g) => g.val(),
            None => Tensor::ones(self.beta.shape(), &device),
        };
        if device.is_autodiff() && self.training.is_enabled() {
            let dims = input.dims();
            let n: usize = dims[0] * dims[2..].iter().product::<usize>();
            let (output, batch_mean, variance) =
                crate::ops::batch_norm_train(input, gamma, self.beta.val(), self.epsilon, relu);
            let unbiased = if n > 1 {
                variance.mul_scalar(n as f64 / (n as f64 - 1.0))
            } else {
                variance
            };
            let m = self.momentum;
            let mean = self.running_mean.value_sync().to_device(&device);
            let var = self.running_var.value_sync().to_device(&device);
            self.running_mean.update(
                mean.mul_scalar(1.0 - m)
                    .add(batch_mean.mul_scalar(m))
                    .detach(),
            );
            self.running_var
                .update(var.mul_scalar(1.0 - m).add(unbiased.mul_scalar(m)).detach());
            output
        } else {
            let output = burn::tensor::module::batch_norm(
                input,
                gamma,
                self.beta.val(),
                self.running_mean.value().to_device(&device),
                self.running_var.value().to_device(&device),
                self.epsilon,
            );
            if relu {
                burn::tensor::activation::relu(output)
            } else {
                output
            }
        }
    }
}

/// The parameter-holding module behind one graph node.
#[derive(Module, Debug)]
pub enum LayerModule {
    /// A convolution.
    Conv(Conv2d),
    /// A batch normalisation.
    Norm(BatchNorm2d),
    /// A fully connected layer (weight stored `[in, out]`).
    Dense(Linear),
    /// Dropout (holds only its training flag, so freezing a subtree switches it off).
    Dropout(Dropout),
}

impl LayerModule {
    /// The module for `op`, or `None` for parameter-free operations.
    pub fn for_op(op: &Op, device: &Device) -> Option<Self> {
        match op {
            Op::Conv2d(c) => Some(LayerModule::Conv(conv(c, device))),
            Op::BatchNorm(b) => Some(LayerModule::Norm(BatchNorm2d::new(b, device))),
            Op::Dense(d) => Some(LayerModule::Dense(dense(d, device))),
            Op::Dropout { rate } => Some(LayerModule::Dropout(DropoutConfig::new(*rate).init())),
            _ => None,
        }
    }
}

fn conv(c: &Conv2dSpec, device: &Device) -> Conv2d {
    let [[t, b], [l, r]] = c.padding;
    let padding = PaddingConfig2d::Explicit(t, l, b, r);
    Conv2dConfig::new([c.in_channels, c.filters], c.kernel)
        .with_stride(c.stride)
        .with_padding(padding)
        .with_bias(c.bias)
        .with_groups(c.groups.max(1))
        .init(device)
}

fn dense(d: &DenseSpec, device: &Device) -> Linear {
    LinearConfig::new(d.in_features, d.units)
        .with_bias(d.bias)
        .init(device)
}

/// A value flowing along a graph edge: a batch of feature maps or of vectors.
#[derive(Clone, Debug)]
pub enum Value {
    /// `[N, C, H, W]`.
    Map(Tensor<4>),
    /// `[N, F]`.
    Flat(Tensor<2>),
}

impl Value {
    /// As a `[N, F]` batch of vectors, flattening a feature map in `[C, H, W]` order.
    pub fn flat(self) -> Tensor<2> {
        match self {
            Value::Flat(t) => t,
            Value::Map(t) => t.flatten(1, 3),
        }
    }

    /// As a `[N, C, H, W]` feature map; a vector becomes `[N, F, 1, 1]`.
    pub fn map(self) -> Tensor<4> {
        match self {
            Value::Map(t) => t,
            Value::Flat(t) => {
                let [n, f] = t.dims();
                t.reshape([n, f, 1, 1])
            }
        }
    }

    /// The dimensions, batch first.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Value::Map(t) => t.dims().to_vec(),
            Value::Flat(t) => t.dims().to_vec(),
        }
    }
}
