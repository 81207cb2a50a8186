//! The built-in architectures and their Keras-style options.
//!
//! ```
//! use inception::models::{Arch, ModelConfig, Pooling};
//!
//! // keras.applications.InceptionV3(include_top=False, pooling="avg", input_shape=(160, 160, 3))
//! let cfg = ModelConfig::new(Arch::InceptionV3Keras)
//!     .with_include_top(false)
//!     .with_pooling(Some(Pooling::Avg))
//!     .with_input_size(160);
//! let graph = cfg.graph().unwrap();
//! assert_eq!(graph.nodes()[graph.main_output().node].shape.channels(), 2048);
//! ```

/// The largest input side (and channel count) a model is built for: 4096. Larger inputs would
/// need gigabytes per image in the first layers; the limit is checked before anything is
/// allocated, whether the size comes from code, a command line or a file's metadata.
pub const MAX_INPUT_SIZE: usize = 4096;

mod arch;
pub mod compact;
pub mod googlenet;
pub mod inception_resnet_v2;
pub mod inception_v1_slim;
pub mod inception_v2;
pub mod inception_v3;
pub mod inception_v3_slim;
pub mod inception_v4;
pub mod slim;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::graph::{BlockKind, Graph, GraphBuilder, NodeId, Shape};
use crate::network::Network;

pub use arch::{ARCH_INFO, Arch, ArchInfo};
use burn::tensor::Device;

/// Global pooling on top of the last feature map when `include_top` is false (Keras `pooling`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Global average pooling: a vector per image (1024 for GoogLeNet, 2048 for Inception v3).
    Avg,
    /// Global max pooling.
    Max,
}

impl Pooling {
    /// Parses `avg`, `max` (or `none`, which gives `None`).
    pub fn parse(s: &str) -> Result<Option<Pooling>> {
        match s.to_ascii_lowercase().as_str() {
            "avg" | "average" | "mean" => Ok(Some(Pooling::Avg)),
            "max" => Ok(Some(Pooling::Max)),
            "none" | "" => Ok(None),
            _ => Err(Error::unknown(
                crate::error::NameKind::Pooling,
                s,
                None,
                ["none", "avg", "max"],
            )),
        }
    }
}

/// How to build a built-in model: the Keras `applications` signature plus the torchvision options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Which architecture.
    pub arch: Arch,
    /// Keep the classifier (global pool, dropout, dense). Default true.
    pub include_top: bool,
    /// Global pooling when `include_top` is false. Default none (the last feature map).
    pub pooling: Option<Pooling>,
    /// Classifier outputs. Default 1000.
    pub classes: usize,
    /// Square input size. Default 224 (GoogLeNet) or 299 (Inception v3).
    pub input_size: [usize; 2],
    /// Input channels. Default 3.
    pub in_channels: usize,
    /// Dropout before the classifier. Default per architecture (0.2, 0.4, 0.5, none).
    pub dropout: f64,
    /// Build the auxiliary classifiers (GoogLeNet: two, after 4a and 4d; Inception v3: one,
    /// after `Mixed_6e`). Default false.
    pub aux_logits: bool,
    /// torchvision's `transform_input` as the first layer (the published torchvision
    /// checkpoints expect it). Default false: it is an explicit choice here, never implied.
    pub transform_input: bool,
    /// Keras's `classifier_activation="softmax"`: the top ends in a softmax, so the model outputs
    /// probabilities. Default true for `inception-v3-keras` (as `keras.applications`), false for
    /// the torchvision and Caffe layouts, which output logits. Train with it off.
    #[serde(default)]
    pub softmax: bool,
    /// TF-slim's `depth_multiplier`: every filter count `d` becomes `max(int(d * m), min_depth)`.
    /// Default 1.0; only `inception-v3-slim` takes another.
    #[serde(default = "one")]
    pub depth_multiplier: f64,
    /// TF-slim's `min_depth` (default 16), with [`ModelConfig::depth_multiplier`].
    #[serde(default = "sixteen")]
    pub min_depth: usize,
    /// TF-slim's `batch_norm_scale`: the TF-slim layouts' BatchNorms learn a scale γ. Default
    /// false (TF-slim's published weights have none); timm's ports of them
    /// (`inception_v4.tf_in1k`, `inception_resnet_v2.tf_in1k`) have one, all ones.
    #[serde(default)]
    pub batch_norm_scale: bool,
    /// TF-slim's `use_separable_conv` for `inception-v2`: the stem's 7x7 is separable
    /// (depthwise, then pointwise with biases; the published weights) rather than a plain conv
    /// with BatchNorm. Default true.
    #[serde(default = "yes")]
    pub use_separable_conv: bool,
}

fn yes() -> bool {
    true
}

fn one() -> f64 {
    1.0
}

fn sixteen() -> usize {
    16
}

impl ModelConfig {
    /// The defaults for `arch`.
    pub fn new(arch: Arch) -> Self {
        let s = arch.default_input_size();
        Self {
            arch,
            include_top: true,
            pooling: None,
            classes: arch.default_classes(),
            input_size: [s, s],
            in_channels: arch.default_in_channels(),
            dropout: arch.default_dropout(),
            aux_logits: false,
            transform_input: false,
            softmax: arch.info().softmax,
            depth_multiplier: 1.0,
            min_depth: 16,
            use_separable_conv: true,
            batch_norm_scale: false,
        }
    }

    /// Sets TF-slim's `batch_norm_scale` (the TF-slim layouts; timm's ports have γ).
    pub fn with_batch_norm_scale(mut self, scale: bool) -> Self {
        self.batch_norm_scale = scale;
        self
    }

    /// Sets TF-slim's `use_separable_conv` (`inception-v2`'s stem).
    pub fn with_separable_conv(mut self, separable: bool) -> Self {
        self.use_separable_conv = separable;
        self
    }

    /// Sets TF-slim's `depth_multiplier` and `min_depth` (`inception-v3-slim`).
    pub fn with_depth_multiplier(mut self, multiplier: f64, min_depth: usize) -> Self {
        self.depth_multiplier = multiplier;
        self.min_depth = min_depth;
        self
    }

    /// Sets the classifier's softmax (Keras `classifier_activation`: `"softmax"` or `None`).
    pub fn with_softmax(mut self, softmax: bool) -> Self {
        self.softmax = softmax;
        self
    }

    /// Sets `include_top`.
    pub fn with_include_top(mut self, include_top: bool) -> Self {
        self.include_top = include_top;
        self
    }

    /// Sets `pooling`.
    pub fn with_pooling(mut self, pooling: Option<Pooling>) -> Self {
        self.pooling = pooling;
        self
    }

    /// Sets `classes`.
    pub fn with_classes(mut self, classes: usize) -> Self {
        self.classes = classes;
        self
    }

    /// Sets a square input size.
    pub fn with_input_size(mut self, size: usize) -> Self {
        self.input_size = [size, size];
        self
    }

    /// Sets the input channels.
    pub fn with_in_channels(mut self, channels: usize) -> Self {
        self.in_channels = channels;
        self
    }

    /// Sets the dropout rate before the classifier.
    pub fn with_dropout(mut self, dropout: f64) -> Self {
        self.dropout = dropout;
        self
    }

    /// Turns the auxiliary classifiers on or off.
    pub fn with_aux_logits(mut self, aux: bool) -> Self {
        self.aux_logits = aux;
        self
    }

    /// Turns torchvision's `transform_input` on or off.
    pub fn with_transform_input(mut self, transform: bool) -> Self {
        self.transform_input = transform;
        self
    }

    /// Checks the option combination and the sizes (see [`MAX_INPUT_SIZE`]).
    pub fn check(&self) -> Result<()> {
        let arch = self.arch;
        if self.include_top && self.pooling == Some(Pooling::Max) {
            return Err(Error::config_of(
                arch,
                "pooling",
                "max",
                "it applies only without the top (include_top=false); the classifier head \
                 always averages",
            ));
        }
        if self.aux_logits && !self.include_top {
            return Err(Error::config_of(
                arch,
                "aux_logits",
                "",
                "auxiliary classifiers need the top (include_top=true)",
            ));
        }
        if self.aux_logits && !arch.has_aux_heads() {
            let with: Vec<&str> = Arch::ALL
                .iter()
                .filter(|a| a.has_aux_heads())
                .map(|a| a.name())
                .collect();
            return Err(Error::config_of(
                arch,
                "aux_logits",
                "",
                format!(
                    "it has no auxiliary classifier (its reference has none); these do: {}",
                    with.join(", ")
                ),
            ));
        }
        if self.transform_input && !matches!(arch, Arch::GoogLeNet | Arch::InceptionV3) {
            return Err(Error::config_of(
                arch,
                "transform_input",
                "",
                "a torchvision option (googlenet, inception-v3)",
            ));
        }
        if self.transform_input && self.in_channels != 3 {
            return Err(Error::config_of(
                arch,
                "transform_input",
                "",
                format!("it needs 3 input channels, not {}", self.in_channels),
            ));
        }
        if self.include_top && self.classes == 0 {
            return Err(Error::config_of(arch, "classes", 0, "at least 1 is needed"));
        }
        if self.in_channels == 0 {
            return Err(Error::config_of(
                arch,
                "in_channels",
                0,
                "at least 1 is needed",
            ));
        }
        let [h, w] = self.input_size;
        if h.max(w) > MAX_INPUT_SIZE || self.in_channels > MAX_INPUT_SIZE {
            return Err(Error::config_of(
                arch,
                "input",
                format!("{}x{h}x{w}", self.in_channels),
                format!(
                    "over the limit of {MAX_INPUT_SIZE} per side (the model's own size is {})",
                    arch.default_input_size()
                ),
            ));
        }
        if (self.depth_multiplier, self.min_depth) != (1.0, 16) {
            if !matches!(arch, Arch::InceptionV2 | Arch::InceptionV3Slim) {
                return Err(Error::config_of(
                    arch,
                    "depth_multiplier and min_depth",
                    "",
                    "TF-slim options of inception-v2 and inception-v3-slim",
                ));
            }
            if !(self.depth_multiplier.is_finite() && self.depth_multiplier > 0.0)
                || self.min_depth == 0
            {
                return Err(Error::config_of(
                    arch,
                    "depth_multiplier and min_depth",
                    format!("{} and {}", self.depth_multiplier, self.min_depth),
                    "a positive number and at least 1",
                ));
            }
        }
        if self.batch_norm_scale && !arch.is_tf_slim() {
            return Err(Error::config_of(
                arch,
                "batch_norm_scale",
                "",
                "an option of TF-slim's layouts",
            ));
        }
        if !self.use_separable_conv && arch != Arch::InceptionV2 {
            return Err(Error::config_of(
                arch,
                "use_separable_conv",
                "",
                "it applies to inception-v2's stem only",
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config_of(
                arch,
                "dropout",
                self.dropout,
                "it must be in [0, 1)",
            ));
        }
        Ok(())
    }

    /// The architecture as a shape-checked [`Graph`]. A too-small input is an error that names
    /// the smallest size that works.
    pub fn graph(&self) -> Result<Graph> {
        self.check()?;
        self.build().map_err(|e| match e {
            Error::Shape(mut shape) => {
                shape.model = format!(
                    "{}{}",
                    self.arch,
                    if self.aux_logits {
                        " with aux heads"
                    } else {
                        ""
                    }
                );
                // Only when the input is below the smallest that works (not for, say, an
                // output over the size limit).
                shape.min_input = self
                    .min_input_size()
                    .filter(|&m| m > self.input_size[0].min(self.input_size[1]));
                Error::Shape(shape)
            }
            other => other,
        })
    }

    fn build(&self) -> Result<Graph> {
        let sep = if self.arch == Arch::GoogLeNetBvlc || self.arch.is_tf_slim() {
            "/"
        } else {
            "."
        };
        let mut g = GraphBuilder::new(self.arch.name())
            .with_separator(sep)
            .with_slim_batch_norm_scale(self.batch_norm_scale);
        let [h, w] = self.input_size;
        let x = g.input([self.in_channels, h, w]);
        let (main, aux) = match self.arch {
            Arch::GoogLeNet => googlenet::torchvision(&mut g, self, x),
            Arch::GoogLeNetBvlc => googlenet::paper(&mut g, self, x),
            Arch::InceptionV3 => inception_v3::torchvision(&mut g, self, x),
            Arch::InceptionV3Keras => inception_v3::keras(&mut g, self, x),
            Arch::InceptionMini => compact::build(&mut g, self, x),
            Arch::InceptionV4 => inception_v4::slim(&mut g, self, x),
            Arch::InceptionResNetV2 => inception_resnet_v2::slim(&mut g, self, x),
            Arch::InceptionV1Slim => inception_v1_slim::slim(&mut g, self, x),
            Arch::InceptionV3Slim => inception_v3_slim::slim(&mut g, self, x),
            Arch::InceptionV2 => inception_v2::slim(&mut g, self, x),
        };
        g.output(
            if self.include_top {
                "logits"
            } else {
                "features"
            },
            main,
        );
        for (i, a) in aux.iter().enumerate() {
            g.aux_output(&format!("aux{}", i + 1), *a);
        }
        g.finish()
    }

    /// The smallest square input this configuration accepts (torchvision: 15 for GoogLeNet,
    /// 75 for Inception v3), found by shape inference.
    pub fn min_input_size(&self) -> Option<usize> {
        (1..=self.arch.default_input_size())
            .find(|&s| self.clone().with_input_size(s).build().is_ok())
    }

    /// Builds the network with freshly initialised parameters on `device`.
    pub fn init(&self, device: &Device) -> Result<Network> {
        Ok(Network::new(self.graph()?, device))
    }

    /// The feature-extraction table: for each tap layer, its channels and reduction (stride
    /// relative to the input), as timm's `feature_info`.
    pub fn feature_info(&self) -> Result<Vec<FeatureInfo>> {
        let graph = self
            .clone()
            .with_include_top(false)
            .with_pooling(None)
            .with_aux_logits(false)
            .graph()?;
        self.arch
            .feature_layers()
            .iter()
            .map(|layer| {
                let id = graph.resolve(layer)?;
                let (channels, size) = match graph.nodes[id].shape {
                    Shape::Map([c, h, w]) => (c, [h, w]),
                    Shape::Flat(n) => (n, [1, 1]),
                };
                let ratio = self.input_size[0] as f64 / size[0] as f64;
                Ok(FeatureInfo {
                    layer: layer.to_string(),
                    channels,
                    reduction: 1 << ratio.log2().round() as u32,
                    size,
                })
            })
            .collect()
    }
}

/// One row of a feature-info table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FeatureInfo {
    /// Layer (or block) name to ask [`Network::features`] for.
    pub layer: String,
    /// Channels of its output.
    pub channels: usize,
    /// Nominal stride relative to the input (2, 4, 8, 16, 32).
    pub reduction: usize,
    /// Output `[height, width]` at the configured input size.
    pub size: [usize; 2],
}

/// The classifier head shared by the built-in models: global pool → dropout → dense, or,
/// without a top, optional global pooling.
pub(crate) struct Head {
    pub pool_name: &'static str,
    pub max_pool_name: &'static str,
    pub dropout_name: &'static str,
    pub fc_name: &'static str,
}

impl Head {
    pub fn build(&self, g: &mut GraphBuilder, cfg: &ModelConfig, x: NodeId) -> NodeId {
        if !cfg.include_top {
            return match cfg.pooling {
                None => x,
                Some(Pooling::Avg) => g.global_avg_pool(self.pool_name, x),
                Some(Pooling::Max) => g.global_max_pool(self.max_pool_name, x),
            };
        }
        g.group(
            "head",
            BlockKind::Head,
            "global avgpool → dropout → fc",
            |g| {
                let x = g.global_avg_pool(self.pool_name, x);
                let x = if cfg.dropout > 0.0 {
                    g.dropout(self.dropout_name, x, cfg.dropout)
                } else {
                    x
                };
                let x = g.dense(self.fc_name, x, cfg.classes, true);
                if cfg.softmax {
                    g.softmax("softmax", x)
                } else {
                    x
                }
            },
        )
    }
}
