//! The operations a graph node can perform, with their static shape rules, parameter counts and
//! multiply-accumulate counts.
//!
//! Everything here is plain data: no tensors. The same [`Op`] value drives execution
//! ([`crate::Network`]), the summary table, the diagram and the checkpoint names.

use serde::Serialize;

use crate::error::{Error, Result, ShapeFault};

/// The shape of one sample flowing along a graph edge (the batch dimension is implicit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// A feature map `[channels, height, width]` (NCHW without N).
    Map([usize; 3]),
    /// A feature vector `[features]`.
    Flat(usize),
}

impl Shape {
    /// Channels of a feature map, or the length of a vector.
    pub fn channels(&self) -> usize {
        match self {
            Shape::Map([c, _, _]) => *c,
            Shape::Flat(n) => *n,
        }
    }

    /// Number of elements per sample.
    pub fn numel(&self) -> usize {
        match self {
            Shape::Map([c, h, w]) => c.saturating_mul(*h).saturating_mul(*w),
            Shape::Flat(n) => *n,
        }
    }

    /// The shape with a leading batch dimension, as a Keras summary prints it: `(None, C, H, W)`.
    pub fn with_batch(&self) -> Vec<Option<usize>> {
        match self {
            Shape::Map([c, h, w]) => vec![None, Some(*c), Some(*h), Some(*w)],
            Shape::Flat(n) => vec![None, Some(*n)],
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shape::Map([c, h, w]) => write!(f, "[{c}, {h}, {w}]"),
            Shape::Flat(n) => write!(f, "[{n}]"),
        }
    }
}

/// How a convolution or pooling window is padded, as a builder argument.
///
/// It is resolved against the input size when the node is added, so the stored node always holds
/// explicit `(begin, end)` pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding (Keras `"valid"`).
    Valid,
    /// Keras/TensorFlow `"same"`: output size `ceil(input / stride)`, the extra pixel (if any)
    /// at the bottom/right.
    Same,
    /// Symmetric explicit padding `[height, width]` (PyTorch `padding=`).
    Explicit([usize; 2]),
    /// Explicit `[[top, bottom], [left, right]]` (ONNX `pads`, which may be asymmetric).
    Pairs([[usize; 2]; 2]),
}

impl Padding {
    /// Explicit `[(top, bottom), (left, right)]` for an input of `size` and the given window.
    pub fn resolve(
        self,
        size: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> [[usize; 2]; 2] {
        match self {
            Padding::Valid => [[0, 0], [0, 0]],
            Padding::Explicit([ph, pw]) => [[ph, ph], [pw, pw]],
            Padding::Pairs(p) => p,
            Padding::Same => {
                let pair = |i: usize, k: usize, s: usize| {
                    // A zero stride is refused by the builder; never divide by it here.
                    let s = s.max(1);
                    let out = i.div_ceil(s);
                    let total = ((out.saturating_sub(1)) * s + k).saturating_sub(i);
                    [total / 2, total - total / 2]
                };
                [
                    pair(size[0], kernel[0], stride[0]),
                    pair(size[1], kernel[1], stride[1]),
                ]
            }
        }
    }
}

/// A pooling window, as a builder argument: `Pool::new(3, 2)` (kernel, stride), then
/// `.padding(Padding::Same)`, `.ceil_mode()` (PyTorch's `ceil_mode=True`) or
/// `.count_include_pad()` (average pooling counts the zero padding, PyTorch's default).
///
/// ```
/// use inception::graph::{Padding, Pool};
/// let p = Pool::new(3, 2).padding(Padding::Explicit([1, 1])).ceil_mode();
/// assert!(p.ceil_mode && !p.count_include_pad);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    /// Square window size.
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
    /// Padding (`Valid` by default).
    pub padding: Padding,
    /// PyTorch's `ceil_mode`: the last window may hang over the end.
    pub ceil_mode: bool,
    /// Average pooling divides by the whole window, padding included.
    pub count_include_pad: bool,
}

impl Pool {
    /// A `kernel` x `kernel` window moved by `stride`, unpadded, floor mode.
    pub fn new(kernel: usize, stride: usize) -> Self {
        Self {
            kernel,
            stride,
            padding: Padding::Valid,
            ceil_mode: false,
            count_include_pad: false,
        }
    }

    /// With this padding.
    pub fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// In ceil mode.
    pub fn ceil_mode(self) -> Self {
        self.with_ceil_mode(true)
    }

    /// In ceil mode or not.
    pub fn with_ceil_mode(mut self, ceil_mode: bool) -> Self {
        self.ceil_mode = ceil_mode;
        self
    }

    /// Averaging over the whole window, padding included.
    pub fn count_include_pad(self) -> Self {
        self.with_count_include_pad(true)
    }

    /// Averaging over the whole window or over its valid pixels only.
    pub fn with_count_include_pad(mut self, include: bool) -> Self {
        self.count_include_pad = include;
        self
    }
}

/// A 2-D convolution.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Conv2dSpec {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels (Keras `filters`).
    pub filters: usize,
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// `[(top, bottom), (left, right)]`.
    pub padding: [[usize; 2]; 2],
    /// Whether the convolution has a bias (false when a BatchNorm follows).
    pub bias: bool,
    /// Channel groups: 1 for an ordinary convolution, `in_channels` for a depthwise one (output
    /// channel `c * multiplier + j` sees input channel `c` only, as in TensorFlow).
    pub groups: usize,
}

impl Conv2dSpec {
    /// The weight's shape, `[filters, in_channels / groups, kh, kw]` (PyTorch's).
    pub fn weight_shape(&self) -> [usize; 4] {
        [
            self.filters,
            self.in_channels / self.groups.max(1),
            self.kernel[0],
            self.kernel[1],
        ]
    }
}

/// Batch normalisation over channels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BatchNormSpec {
    /// Channels.
    pub channels: usize,
    /// Added to the variance (1e-3 for the TensorFlow-born Inception weights).
    pub epsilon: f64,
    /// PyTorch convention: `running = (1 - momentum) * running + momentum * batch`.
    /// (Keras's `momentum=0.99` is `0.01` here.)
    pub momentum: f64,
    /// Whether there is a learned scale γ (Keras `scale=False` has none).
    pub scale: bool,
}

/// A max or average pooling window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PoolSpec {
    /// Window `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// `[(top, bottom), (left, right)]`.
    pub padding: [[usize; 2]; 2],
    /// PyTorch/Caffe `ceil_mode`: round the output size up.
    pub ceil_mode: bool,
    /// Average pooling only: whether padded zeros count in the divisor (PyTorch's default `true`;
    /// Keras/TensorFlow `"same"` pooling behaves as `false`).
    pub count_include_pad: bool,
}

/// Local response normalisation across channels (AlexNet/GoogLeNet, Caffe and ONNX semantics:
/// `x / (k + alpha / size * sum(x^2))^beta`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LrnSpec {
    /// Number of neighbouring channels summed.
    pub size: usize,
    /// Scale.
    pub alpha: f64,
    /// Exponent.
    pub beta: f64,
    /// Bias.
    pub k: f64,
}

/// A fully connected layer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DenseSpec {
    /// Input features.
    pub in_features: usize,
    /// Output features (Keras `units`).
    pub units: usize,
    /// Whether there is a bias.
    pub bias: bool,
}

/// Global pooling that turns a feature map into a vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GlobalPool {
    /// Mean over height and width.
    Avg,
    /// Maximum over height and width.
    Max,
}

/// One operation in a graph.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    /// The graph input, a feature map of the given shape.
    Input {
        /// `[channels, height, width]`.
        shape: [usize; 3],
    },
    /// 2-D convolution.
    Conv2d(Conv2dSpec),
    /// Batch normalisation.
    BatchNorm(BatchNormSpec),
    /// Rectified linear unit.
    Relu,
    /// Max pooling.
    MaxPool(PoolSpec),
    /// Average pooling.
    AvgPool(PoolSpec),
    /// Adaptive average pooling to a fixed output size (torchvision's GoogLeNet aux head).
    AdaptiveAvgPool {
        /// Output `[height, width]`.
        size: [usize; 2],
    },
    /// Global pooling to a vector.
    GlobalPool(GlobalPool),
    /// Local response normalisation.
    Lrn(LrnSpec),
    /// Concatenation along channels.
    Concat,
    /// Element-wise sum.
    Add,
    /// Feature map to vector. `channels_last` flattens in NHWC order, as Keras does.
    Flatten {
        /// Flatten as `[H, W, C]` (Keras) instead of `[C, H, W]` (PyTorch).
        channels_last: bool,
    },
    /// Fully connected layer.
    Dense(DenseSpec),
    /// Dropout (active in training only).
    Dropout {
        /// Probability of zeroing an element.
        rate: f64,
    },
    /// Softmax over features.
    Softmax,
    /// A fixed per-channel affine map `x * scale[c] + shift[c]` (torchvision's `transform_input`).
    ChannelAffine {
        /// Per-channel factor.
        scale: Vec<f32>,
        /// Per-channel offset.
        shift: Vec<f32>,
    },
}

/// Parameter counts of one node, split as Keras splits them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ParamCount {
    /// Learned by gradient descent.
    pub trainable: usize,
    /// Stored but not learned (BatchNorm running mean and variance).
    pub non_trainable: usize,
}

impl std::ops::AddAssign for ParamCount {
    fn add_assign(&mut self, rhs: Self) {
        self.trainable += rhs.trainable;
        self.non_trainable += rhs.non_trainable;
    }
}

impl ParamCount {
    /// Trainable plus non-trainable.
    pub fn total(&self) -> usize {
        self.trainable + self.non_trainable
    }
}

impl Op {
    /// A short type name, as a Keras summary prints it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "InputLayer",
            Op::Conv2d(_) => "Conv2D",
            Op::BatchNorm(_) => "BatchNormalization",
            Op::Relu => "ReLU",
            Op::MaxPool(_) => "MaxPooling2D",
            Op::AvgPool(_) => "AveragePooling2D",
            Op::AdaptiveAvgPool { .. } => "AdaptiveAvgPool2D",
            Op::GlobalPool(GlobalPool::Avg) => "GlobalAveragePooling2D",
            Op::GlobalPool(GlobalPool::Max) => "GlobalMaxPooling2D",
            Op::Lrn(_) => "LocalResponseNorm",
            Op::Concat => "Concatenate",
            Op::Add => "Add",
            Op::Flatten { .. } => "Flatten",
            Op::Dense(_) => "Dense",
            Op::Dropout { .. } => "Dropout",
            Op::Softmax => "Softmax",
            Op::ChannelAffine { .. } => "ChannelAffine",
        }
    }

    /// Parameters this node stores.
    pub fn params(&self) -> ParamCount {
        match self {
            Op::Conv2d(c) => ParamCount {
                trainable: c.weight_shape().iter().product::<usize>()
                    + if c.bias { c.filters } else { 0 },
                non_trainable: 0,
            },
            Op::BatchNorm(b) => ParamCount {
                trainable: b.channels * if b.scale { 2 } else { 1 },
                non_trainable: 2 * b.channels,
            },
            Op::Dense(d) => ParamCount {
                trainable: d.in_features * d.units + if d.bias { d.units } else { 0 },
                non_trainable: 0,
            },
            _ => ParamCount::default(),
        }
    }

    /// Multiply-accumulates for one sample producing `output` (convolutions and dense layers only,
    /// the convention torchvision's GFLOPS figures use).
    pub fn macs(&self, output: &Shape) -> u64 {
        match (self, output) {
            (Op::Conv2d(c), Shape::Map([f, h, w])) => {
                (f * h * w * c.in_channels * c.kernel[0] * c.kernel[1]) as u64
            }
            (Op::Dense(d), _) => (d.in_features * d.units) as u64,
            _ => 0,
        }
    }

    /// The output shape for the given input shapes, or a one-line explanation of why this node
    /// cannot take them.
    pub fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeFault> {
        let map = |i: usize| -> Result<[usize; 3], ShapeFault> {
            match inputs.get(i) {
                Some(Shape::Map(s)) => Ok(*s),
                Some(Shape::Flat(n)) => Err(ShapeFault::NotAMap { features: *n }),
                None => Err(ShapeFault::MissingInput),
            }
        };
        let one = || -> Result<Shape, ShapeFault> {
            inputs.first().copied().ok_or(ShapeFault::MissingInput)
        };
        match self {
            Op::Input { shape } => Ok(Shape::Map(*shape)),
            Op::Conv2d(c) => {
                let [ch, h, w] = map(0)?;
                if ch != c.in_channels {
                    return Err(ShapeFault::Channels {
                        expected: c.in_channels,
                        got: ch,
                    });
                }
                let (oh, ow) = window_out([h, w], c.kernel, c.stride, c.padding, false)?;
                Ok(Shape::Map([c.filters, oh, ow]))
            }
            Op::BatchNorm(b) => {
                let s = one()?;
                if s.channels() != b.channels {
                    return Err(ShapeFault::Channels {
                        expected: b.channels,
                        got: s.channels(),
                    });
                }
                Ok(s)
            }
            Op::MaxPool(p) | Op::AvgPool(p) => {
                let [ch, h, w] = map(0)?;
                let (oh, ow) = window_out([h, w], p.kernel, p.stride, p.padding, p.ceil_mode)?;
                Ok(Shape::Map([ch, oh, ow]))
            }
            Op::AdaptiveAvgPool { size } => {
                let [ch, _, _] = map(0)?;
                Ok(Shape::Map([ch, size[0], size[1]]))
            }
            Op::GlobalPool(_) => {
                let [ch, _, _] = map(0)?;
                Ok(Shape::Flat(ch))
            }
            Op::Lrn(_) | Op::Relu | Op::Dropout { .. } | Op::Softmax => one(),
            Op::ChannelAffine { scale, .. } => {
                let s = one()?;
                if s.channels() != scale.len() {
                    return Err(ShapeFault::Channels {
                        expected: scale.len(),
                        got: s.channels(),
                    });
                }
                Ok(s)
            }
            Op::Concat => {
                let first = map(0)?;
                let mut channels = 0;
                for i in 0..inputs.len() {
                    let [c, h, w] = map(i)?;
                    if [h, w] != [first[1], first[2]] {
                        return Err(ShapeFault::Concat {
                            first: [first[1], first[2]],
                            other: [h, w],
                        });
                    }
                    channels += c;
                }
                Ok(Shape::Map([channels, first[1], first[2]]))
            }
            Op::Add => {
                let first = one()?;
                if let Some(other) = inputs.iter().find(|s| **s != first) {
                    return Err(ShapeFault::Add {
                        first,
                        other: *other,
                    });
                }
                Ok(first)
            }
            Op::Flatten { .. } => Ok(Shape::Flat(one()?.numel())),
            Op::Dense(d) => match one()? {
                Shape::Flat(n) if n == d.in_features => Ok(Shape::Flat(d.units)),
                Shape::Flat(n) => Err(ShapeFault::Features {
                    expected: d.in_features,
                    got: n,
                }),
                got @ Shape::Map(_) => Err(ShapeFault::NotAVector { got }),
            },
        }
    }
}

/// Output size of a sliding window, with PyTorch's rule for `ceil_mode` (the last window must
/// start inside the input or its left padding).
pub(crate) fn window_out(
    size: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [[usize; 2]; 2],
    ceil_mode: bool,
) -> Result<(usize, usize), ShapeFault> {
    if kernel.contains(&0) || stride.contains(&0) {
        return Err(ShapeFault::ZeroWindow { kernel, stride });
    }
    let mut out = [0usize; 2];
    for d in 0..2 {
        let padded = (size[d] + padding[d][0] + padding[d][1]) as i64;
        let (k, s) = (kernel[d] as i64, stride[d] as i64);
        // In ceil mode PyTorch lets the last window hang over the end, so a window may be larger
        // than the input as long as it starts inside it.
        let span = padded - k + if ceil_mode { s - 1 } else { 0 };
        let mut o = if span >= 0 && size[d] > 0 {
            span / s + 1
        } else {
            0
        };
        if ceil_mode && o > 0 && (o - 1) * s >= (size[d] + padding[d][0]) as i64 {
            o -= 1;
        }
        if o < 1 {
            let needs = |d: usize| {
                kernel[d]
                    .saturating_sub(padding[d][0] + padding[d][1])
                    .max(1)
            };
            return Err(ShapeFault::TooSmall {
                needs: [needs(0), needs(1)],
                got: size,
            });
        }
        out[d] = o as usize;
    }
    Ok((out[0], out[1]))
}

/// Validates a kernel/stride pair given by a user.
pub(crate) fn check_window(what: &str, kernel: [usize; 2], stride: [usize; 2]) -> Result<()> {
    if kernel.contains(&0) || stride.contains(&0) {
        return Err(Error::config_of(
            what,
            "kernel and stride",
            format!("{kernel:?} and {stride:?}"),
            "both must be non-zero",
        ));
    }
    Ok(())
}
