//! The Keras `Sequential` API: a stack of layers, each feeding the next.

use super::{Graph, GraphBuilder, NodeId, Padding, Pool};
use crate::error::Result;

/// One layer of a [`Sequential`] model, described as Keras describes it.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// `Conv2D(filters, kernel, strides, padding, use_bias)` followed by nothing.
    Conv2d {
        /// Output channels.
        filters: usize,
        /// Square kernel size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Padding rule.
        padding: Padding,
        /// Bias on or off.
        bias: bool,
    },
    /// `BatchNormalization(epsilon, scale)`.
    BatchNorm {
        /// Epsilon.
        epsilon: f64,
        /// Learned scale γ.
        scale: bool,
    },
    /// `ReLU()`.
    Relu,
    /// `MaxPooling2D(pool, strides, padding)`.
    MaxPool {
        /// Window.
        pool: usize,
        /// Stride.
        stride: usize,
        /// Padding rule.
        padding: Padding,
    },
    /// `AveragePooling2D(pool, strides, padding)`.
    AvgPool {
        /// Window.
        pool: usize,
        /// Stride.
        stride: usize,
        /// Padding rule.
        padding: Padding,
    },
    /// `GlobalAveragePooling2D()`.
    GlobalAvgPool,
    /// `GlobalMaxPooling2D()`.
    GlobalMaxPool,
    /// `Flatten()` in Keras's channels-last order.
    Flatten,
    /// `Dense(units)`.
    Dense {
        /// Output features.
        units: usize,
    },
    /// `Dropout(rate)`.
    Dropout {
        /// Probability of zeroing.
        rate: f64,
    },
    /// `Softmax()`.
    Softmax,
}

impl Layer {
    /// `Conv2D(filters, (kernel, kernel))` with stride 1, `"valid"` padding and a bias.
    pub fn conv(filters: usize, kernel: usize) -> Self {
        Layer::Conv2d {
            filters,
            kernel,
            stride: 1,
            padding: Padding::Valid,
            bias: true,
        }
    }

    /// `MaxPooling2D(pool)` with stride `pool`.
    pub fn max_pool(pool: usize) -> Self {
        Layer::MaxPool {
            pool,
            stride: pool,
            padding: Padding::Valid,
        }
    }

    /// `Dense(units)`.
    pub fn dense(units: usize) -> Self {
        Layer::Dense { units }
    }

    fn keras_name(&self) -> &'static str {
        match self {
            Layer::Conv2d { .. } => "conv2d",
            Layer::BatchNorm { .. } => "batch_normalization",
            Layer::Relu => "re_lu",
            Layer::MaxPool { .. } => "max_pooling2d",
            Layer::AvgPool { .. } => "average_pooling2d",
            Layer::GlobalAvgPool => "global_average_pooling2d",
            Layer::GlobalMaxPool => "global_max_pooling2d",
            Layer::Flatten => "flatten",
            Layer::Dense { .. } => "dense",
            Layer::Dropout { .. } => "dropout",
            Layer::Softmax => "softmax",
        }
    }
}

/// A Keras-style sequential model under construction.
///
/// Layers get Keras's automatic names (`conv2d`, `conv2d_1`, `dense`, …) unless named with
/// [`Sequential::add_named`], so weights saved from a Keras `Sequential` map by name.
///
/// ```
/// use inception::graph::{Layer, Sequential};
///
/// let graph = Sequential::new("small", [1, 28, 28])
///     .add(Layer::conv(32, 5))
///     .add(Layer::max_pool(2))
///     .add(Layer::Flatten)
///     .add(Layer::dense(10))
///     .add(Layer::Softmax)
///     .build()
///     .unwrap();
/// assert_eq!(graph.params().trainable, 46_922);
/// ```
#[derive(Debug)]
pub struct Sequential {
    builder: GraphBuilder,
    last: NodeId,
    counts: std::collections::HashMap<&'static str, usize>,
}

impl Sequential {
    /// Starts a model on an input of `[channels, height, width]`.
    pub fn new(name: &str, input: [usize; 3]) -> Self {
        let mut builder = GraphBuilder::new(name);
        let last = builder.input(input);
        Self {
            builder,
            last,
            counts: Default::default(),
        }
    }

    /// Appends a layer with an automatic Keras name (Keras's `model.add`).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: Layer) -> Self {
        let base = layer.keras_name();
        let n = self.counts.entry(base).or_insert(0);
        let name = if *n == 0 {
            base.to_string()
        } else {
            format!("{base}_{n}")
        };
        *n += 1;
        self.add_named(&name, layer)
    }

    /// Appends a layer with an explicit name.
    pub fn add_named(mut self, name: &str, layer: Layer) -> Self {
        let g = &mut self.builder;
        let x = self.last;
        self.last = match layer {
            Layer::Conv2d {
                filters,
                kernel,
                stride,
                padding,
                bias,
            } => g.conv2d(name, x, filters, [kernel; 2], [stride; 2], padding, bias),
            Layer::BatchNorm { epsilon, scale } => g.batch_norm(name, x, epsilon, scale),
            Layer::Relu => g.relu(name, x),
            Layer::MaxPool {
                pool,
                stride,
                padding,
            } => g.max_pool(name, x, Pool::new(pool, stride).padding(padding)),
            Layer::AvgPool {
                pool,
                stride,
                padding,
            } => g.avg_pool(
                name,
                x,
                Pool::new(pool, stride)
                    .padding(padding)
                    .with_count_include_pad(padding != Padding::Same),
            ),
            Layer::GlobalAvgPool => g.global_avg_pool(name, x),
            Layer::GlobalMaxPool => g.global_max_pool(name, x),
            Layer::Flatten => g.add(
                name,
                super::Op::Flatten {
                    channels_last: true,
                },
                &[x],
            ),
            Layer::Dense { units } => g.dense(name, x, units, true),
            Layer::Dropout { rate } => g.dropout(name, x, rate),
            Layer::Softmax => g.softmax(name, x),
        };
        self
    }

    /// Finishes the model; its last layer is the output.
    pub fn build(mut self) -> Result<Graph> {
        self.builder.output("output", self.last);
        self.builder.finish()
    }
}
