//! Images in, answers out: what Keras's `model.predict` + `decode_predictions` and the TF-Hub
//! feature-vector layer do, for any checkpoint the library reads.
//!
//! A checkpoint is opened with the preprocessing of its source (a registry entry's, the one
//! stored in the file, or the framework's: torchvision for PyTorch and safetensors, Keras for
//! `.h5`/`.keras`, Caffe for ONNX), overridable with [`LoadOptions::preset`].
//!
//! ```no_run
//! use inception::data::decode_file;
//! use inception::predict::{Classifier, FeatureExtractor, LoadOptions};
//!
//! let photo = decode_file("cat.jpg".as_ref())?;
//! let classifier = Classifier::load("googlenet.torchvision", &LoadOptions::default())?;
//! for p in &classifier.classify(&[photo.clone()], 5)[0] {
//!     println!("{:>4} {:<24} {:.2}%", p.index, p.label, 100.0 * p.probability);
//! }
//! // Frozen backbone without its top: one 2048-d vector per image.
//! let features = FeatureExtractor::load("inception_v3.keras", &LoadOptions::default(), None, None)?;
//! let v = features.extract_images(&[photo]);
//! assert_eq!(v.dims(), [1, 2048]);
//! # Ok::<(), inception::Error>(())
//! ```

use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::{Device, Tensor, activation};
use image::RgbImage;
use serde::Serialize;

use crate::data::{Labels, Preset};
use crate::engine;
use crate::error::{Error, GraphFault, Result};
use crate::graph::{Graph, NodeId, Op, Shape};
use crate::models::{ModelConfig, Pooling};
use crate::network::Network;
use crate::nn::Value;
use crate::pretrained::{self, Cache, Pretrained};
use crate::weights::{self, Format, Loaded, ModelSource};

/// One class of a top-k answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// Class index in the classifier's output.
    pub index: usize,
    /// Class name.
    pub label: String,
    /// Softmax probability.
    pub probability: f32,
}

/// How to open a checkpoint for images.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// The architecture (recognised from the file by default).
    pub model: ModelSource,
    /// The preprocessing, instead of the one the weights' source implies (resized to the
    /// model's input size, see [`Preset::with_size`]).
    pub preset: Option<Preset>,
    /// The square input size built-in models are built for, instead of the registry entry's or
    /// the architecture's default.
    pub input_size: Option<usize>,
    /// Prepend torchvision's `transform_input` (registry checkpoints that need it get it anyway).
    pub transform_input: bool,
    /// Where registry checkpoints are cached ([`Cache::new`] by default).
    pub cache: Option<Cache>,
}

/// A checkpoint opened for images: the loaded model, its file and registry entry, and the
/// preprocessing it gets.
#[derive(Debug)]
pub struct Opened {
    /// The model and what loading it found.
    pub loaded: Loaded,
    /// The weights file.
    pub path: PathBuf,
    /// The registry entry it is (named, or recognised by its file name).
    pub entry: Option<Pretrained>,
    /// The preprocessing images get.
    pub preset: Preset,
}

/// The preprocessing a file's framework implies: torchvision for PyTorch and safetensors, Keras
/// for Keras files and TensorFlow-exported ONNX graphs, Caffe for other ONNX graphs (the zoo's).
pub fn default_preset(format: Format, input_nhwc: bool, size: usize) -> Preset {
    match format {
        Format::PyTorch | Format::Safetensors => Preset::torchvision(size),
        // TensorFlow checkpoints come from TF-slim, whose layouts pick their own preset.
        Format::TfCheckpoint => Preset::TfSlim { size },
        Format::Keras => Preset::keras().with_size(size),
        Format::Onnx if input_nhwc => Preset::keras().with_size(size),
        Format::Onnx => Preset::Caffe { size },
    }
}

/// Weights named by a user, resolved to a file and the model to build for it.
#[derive(Debug)]
pub struct ResolvedWeights {
    /// The weights file (fetched into the cache for a registry name).
    pub path: PathBuf,
    /// The registry entry it is: named, or an existing file recognised by its name.
    pub entry: Option<Pretrained>,
    /// Whether an existing file was recognised as `entry` by its file name.
    pub recognised_file: bool,
    /// The architecture to build: a registry entry's (an ONNX graph brings its own), else the
    /// caller's.
    pub model: ModelSource,
    /// Prepend torchvision's `transform_input`: asked for, or needed by the registry entry.
    pub transform_input: bool,
}

/// Resolves `weights` — a file, a registry name or `imagenet` (see [`pretrained::resolve`]) —
/// and the model to build: a registry entry fixes its architecture (the caller's is kept for a
/// file recognised by its name), an ONNX graph always brings its own. The one resolution every
/// command and [`open`] use.
pub fn resolve_weights(weights: &str, options: &LoadOptions) -> Result<ResolvedWeights> {
    let arch = match &options.model {
        ModelSource::Arch(a) => Some(*a),
        _ => None,
    };
    let cache = match &options.cache {
        Some(c) => c.clone(),
        None => Cache::new()?,
    };
    let is_file = std::path::Path::new(weights).exists();
    let pretrained::Resolved { path, entry } = pretrained::resolve(weights, arch, &cache)?;
    let model = match (&entry, &options.model) {
        (Some(e), _) if e.format == Format::Onnx => ModelSource::Auto,
        (Some(e), ModelSource::Auto) => ModelSource::Arch(e.arch),
        (Some(_), m) if is_file => m.clone(),
        (Some(e), _) => ModelSource::Arch(e.arch),
        (None, m) => m.clone(),
    };
    let transform_input =
        options.transform_input || entry.as_ref().is_some_and(|e| e.transform_input);
    Ok(ResolvedWeights {
        path,
        recognised_file: is_file && entry.is_some(),
        entry,
        model,
        transform_input,
    })
}

/// Opens `weights` (see [`resolve_weights`]) with `adjust` applied to a built-in configuration
/// after the input size and `transform_input`.
pub fn open(
    weights: &str,
    options: &LoadOptions,
    adjust: impl FnOnce(ModelConfig) -> ModelConfig,
) -> Result<Opened> {
    let ResolvedWeights {
        path,
        entry,
        model: source,
        transform_input: transform,
        ..
    } = resolve_weights(weights, options)?;
    let size = options
        .input_size
        .or_else(|| entry.as_ref().map(|e| e.preprocessing.input_size()));
    let loaded = weights::load_file_sized(
        &path,
        source,
        options.input_size,
        |mut cfg| {
            if let Some(s) = size {
                cfg = cfg.with_input_size(s);
            }
            if transform {
                cfg = cfg.with_transform_input(true);
            }
            adjust(cfg)
        },
        &Device::default(),
    )?;
    let [_, h, w] = loaded.network.graph().input_shape();
    if h != w || options.input_size.is_some_and(|s| s != h) {
        return Err(Error::config_of(
            path.display(),
            "input size",
            options
                .input_size
                .map(|s| s.to_string())
                .unwrap_or_default(),
            format!(
                "the model takes {h}x{w} inputs{}",
                if h == w {
                    " (an ONNX graph fixes its input size: do not ask for another)"
                } else {
                    "; only square inputs are supported"
                }
            ),
        ));
    }
    let in_file = |e: Error| e.in_file(&path);
    let stored = loaded.preprocessing().map_err(in_file)?;
    let preset = options
        .preset
        .clone()
        .or_else(|| entry.as_ref().map(|e| e.preprocessing.clone()))
        .or(stored)
        .map(|p| {
            if p.input_size() == h {
                p
            } else {
                p.with_size(h)
            }
        })
        .unwrap_or_else(|| match &loaded.config {
            // TF-slim's layouts were trained with TF-slim's pipeline, whatever the file format.
            Some(cfg) if cfg.arch.is_tf_slim() => Preset::TfSlim { size: h },
            _ => default_preset(loaded.format, loaded.input_nhwc, h),
        });
    Ok(Opened {
        loaded,
        path,
        entry,
        preset,
    })
}

/// An image classifier: a network with a top, its preprocessing and its class names.
#[derive(Debug)]
pub struct Classifier {
    network: Network,
    output: NodeId,
    softmax: bool,
    preset: Preset,
    labels: Labels,
    /// The fast engine's plan, compiled on the first batch.
    plan: engine::Cached,
}

impl Classifier {
    /// Opens a checkpoint with its classifier (aux heads are not built).
    pub fn load(weights: &str, options: &LoadOptions) -> Result<Self> {
        let opened = open(weights, options, |cfg| cfg.with_aux_logits(false))?;
        let in_file = |e: Error| e.in_file(&opened.path);
        let names = opened.loaded.class_names().map_err(in_file)?;
        let (_, output) =
            opened.loaded.outputs.first().cloned().ok_or_else(|| {
                Error::graph(opened.path.display().to_string(), GraphFault::NoOutput)
            })?;
        let graph = opened.loaded.network.graph();
        let classes = graph.nodes[output].shape.channels();
        if let Some(n) = &names
            && n.len() != classes
        {
            return Err(Error::format(format!(
                "metadata `{}` names {} classes but the model has {classes}",
                crate::data::CLASSES_KEY,
                n.len()
            ))
            .in_file(&opened.path));
        }
        let path = opened.path;
        Self::with_output(
            opened.loaded.network,
            output,
            opened.preset,
            Labels::for_classes(classes, names),
        )
        .map_err(|e| match e {
            Error::Config(mut c) if c.subject.is_none() => {
                c.subject = Some(path.display().to_string());
                Error::Config(c)
            }
            other => other,
        })
    }

    /// A classifier from a network whose main output is the class scores (logits, or a
    /// softmax).
    pub fn new(network: Network, preset: Preset, labels: Labels) -> Result<Self> {
        let output = network.graph().main_output().node;
        Self::with_output(network, output, preset, labels)
    }

    fn with_output(
        network: Network,
        output: NodeId,
        preset: Preset,
        labels: Labels,
    ) -> Result<Self> {
        let graph = network.graph();
        if !is_classifier(graph, output) {
            return Err(Error::config_of(
                &graph.name,
                "output",
                format!("`{}`", graph.nodes[output].name),
                format!(
                    "it is {} — not class scores (a model without its top, include_top=False?); \
                     use a FeatureExtractor for its features",
                    shape_text(graph.nodes[output].shape)
                ),
            ));
        }
        let classes = graph.nodes[output].shape.channels();
        if labels.len() != classes {
            return Err(Error::config_of(
                &graph.name,
                "labels",
                labels.len(),
                format!("the model has {classes} classes"),
            ));
        }
        let softmax = !matches!(graph.nodes[output].op, Op::Softmax);
        Ok(Self {
            network: network.no_grad(),
            plan: Default::default(),
            output,
            softmax,
            preset,
            labels,
        })
    }

    /// The preprocessing images get.
    pub fn preset(&self) -> &Preset {
        &self.preset
    }

    /// The class names.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Class probabilities `[N, classes]` of a preprocessed batch.
    pub fn probabilities(&self, x: Tensor<4>) -> Result<Tensor<2>> {
        self.network.check_input(x.dims())?;
        let x = x.to_device(&self.network.device());
        let scores = self
            .plan
            .run(&self.network, x, &[self.output])?
            .remove(0)
            .flat();
        Ok(if self.softmax {
            activation::softmax(scores, 1)
        } else {
            scores
        })
    }

    /// The `top` most probable classes of each image of a preprocessed batch.
    pub fn predict(&self, x: Tensor<4>, top: usize) -> Result<Vec<Vec<Prediction>>> {
        let probs = self.probabilities(x)?;
        let [n, classes] = probs.dims();
        let values = to_vec(probs.into_data());
        Ok((0..n)
            .map(|i| self.top_k(&values[i * classes..(i + 1) * classes], top))
            .collect())
    }

    /// Preprocesses and classifies images: the `top` most probable classes of each.
    pub fn classify(&self, images: &[RgbImage], top: usize) -> Vec<Vec<Prediction>> {
        let x = self.preset.batch(images, &self.network.device());
        self.predict(x, top)
            .expect("the preset produces the model's input size")
    }

    /// The `k` largest probabilities, most probable first (ties by class index).
    pub fn top_k(&self, probs: &[f32], k: usize) -> Vec<Prediction> {
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        order
            .into_iter()
            .take(k)
            .map(|i| Prediction {
                index: i,
                label: self.labels.name(i).into_owned(),
                probability: probs[i],
            })
            .collect()
    }
}

/// Whether `node` gives class scores: a vector from a dense layer, optionally through a softmax.
fn is_classifier(graph: &Graph, node: NodeId) -> bool {
    let n = &graph.nodes[node];
    match n.op {
        Op::Dense(_) => true,
        Op::Softmax => n.inputs.iter().all(|&i| is_classifier(graph, i)),
        // TF-slim's classifiers: a 1x1 conv on a 1x1 map, squeezed to a vector.
        Op::Flatten { .. } => n.inputs.iter().all(|&i| {
            let c = &graph.nodes[i];
            matches!(c.op, Op::Conv2d(_)) && matches!(c.shape, Shape::Map([_, 1, 1]))
        }),
        _ => false,
    }
}

fn shape_text(shape: Shape) -> String {
    match shape {
        Shape::Map([c, h, w]) => format!("a {c}x{h}x{w} feature map"),
        Shape::Flat(f) => format!("a {f}-d vector"),
    }
}

fn to_vec(data: burn::tensor::TensorData) -> Vec<f32> {
    data.convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 after conversion")
}

/// A frozen feature extractor: one vector per image from the backbone without its top (the
/// TF-Hub feature-vector layer), or from any named layer.
#[derive(Debug)]
pub struct FeatureExtractor {
    network: Network,
    node: NodeId,
    pooling: Option<Pooling>,
    channels_last: bool,
    preset: Preset,
    layer: String,
    /// The fast engine's plan, compiled on the first batch.
    plan: engine::Cached,
}

impl FeatureExtractor {
    /// Opens a checkpoint as a feature extractor: without `layer`, the backbone without its top
    /// (`include_top=false`) and the last feature map pooled with `pooling` (average by
    /// default: 1024 values for GoogLeNet, 2048 for Inception v3); with `layer`, that layer's
    /// activation, pooled over space with `pooling` or flattened without (in NHWC order for
    /// Keras models, as Keras gives them, NCHW otherwise).
    pub fn load(
        weights: &str,
        options: &LoadOptions,
        layer: Option<&str>,
        pooling: Option<Pooling>,
    ) -> Result<Self> {
        let keep_top = layer.is_some();
        let opened = open(weights, options, |cfg| {
            let cfg = cfg.with_aux_logits(false);
            if keep_top {
                cfg
            } else {
                cfg.with_include_top(false).with_pooling(None)
            }
        })?;
        let pooling = if layer.is_none() {
            pooling.or(Some(Pooling::Avg))
        } else {
            pooling
        };
        let channels_last = opened.loaded.input_nhwc;
        Self::new(opened.loaded.network, opened.preset, layer, pooling)
            .map(|f| f.with_channels_last(channels_last))
    }

    /// A feature extractor on `network` (frozen: its parameters stop requiring gradients):
    /// `layer`'s activation, or the last feature map before the head (walking back from the
    /// main output over softmax, dense, dropout, flatten and global pooling), pooled with
    /// `pooling` or flattened.
    pub fn new(
        network: Network,
        preset: Preset,
        layer: Option<&str>,
        pooling: Option<Pooling>,
    ) -> Result<Self> {
        let graph = network.graph();
        let node = match layer {
            Some(name) => graph.resolve(name)?,
            None => backbone_output(graph),
        };
        // Name a block's output by the block (`inception5b`, `mixed10`), as users ask for it.
        let layer = graph
            .blocks
            .iter()
            .find(|b| graph.resolve(&b.name).ok() == Some(node))
            .map_or_else(|| graph.nodes[node].name.clone(), |b| b.name.clone());
        Ok(Self {
            network: network.no_grad(),
            plan: Default::default(),
            node,
            pooling,
            channels_last: false,
            preset,
            layer,
        })
    }

    /// Flatten unpooled feature maps in NHWC order (Keras's) instead of NCHW.
    pub fn with_channels_last(mut self, channels_last: bool) -> Self {
        self.channels_last = channels_last;
        self
    }

    /// The layer the vectors come from.
    pub fn layer(&self) -> &str {
        &self.layer
    }

    /// The pooling applied to feature maps.
    pub fn pooling(&self) -> Option<Pooling> {
        self.pooling
    }

    /// The preprocessing images get.
    pub fn preset(&self) -> &Preset {
        &self.preset
    }

    /// The (frozen) network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Length of each vector.
    pub fn dim(&self) -> usize {
        match self.network.graph().nodes[self.node].shape {
            Shape::Flat(f) => f,
            Shape::Map([c, h, w]) => match self.pooling {
                Some(_) => c,
                None => c * h * w,
            },
        }
    }

    /// Vectors `[N, dim]` of a preprocessed batch.
    pub fn extract(&self, x: Tensor<4>) -> Result<Tensor<2>> {
        self.network.check_input(x.dims())?;
        let x = x.to_device(&self.network.device());
        Ok(
            match self.plan.run(&self.network, x, &[self.node])?.remove(0) {
                Value::Flat(t) => t,
                Value::Map(m) => {
                    let [n, c, h, w] = m.dims();
                    match self.pooling {
                        Some(Pooling::Avg) => m.reshape([n, c, h * w]).mean_dim(2).reshape([n, c]),
                        Some(Pooling::Max) => m.reshape([n, c, h * w]).max_dim(2).reshape([n, c]),
                        None if self.channels_last => {
                            m.permute([0, 2, 3, 1]).reshape([n, c * h * w])
                        }
                        None => m.reshape([n, c * h * w]),
                    }
                }
            },
        )
    }

    /// Preprocesses images and extracts their vectors `[N, dim]`.
    pub fn extract_images(&self, images: &[RgbImage]) -> Tensor<2> {
        let x = self.preset.batch(images, &self.network.device());
        self.extract(x)
            .expect("the preset produces the model's input size")
    }
}

/// The last feature map before the head: back from the main output over the head's layers.
fn backbone_output(graph: &Graph) -> NodeId {
    let mut node = graph.main_output().node;
    loop {
        let n = &graph.nodes[node];
        let head = match &n.op {
            Op::Softmax | Op::Dense(_) | Op::Dropout { .. } | Op::Flatten { .. } => true,
            Op::GlobalPool(_) => true,
            // torchvision's AdaptiveAvgPool2d((1, 1)) and the zoo's 7x7 AveragePool.
            Op::AdaptiveAvgPool { .. } | Op::AvgPool(_) => {
                matches!(n.shape, Shape::Map([_, 1, 1]))
            }
            _ => false,
        };
        match (head, n.inputs.as_slice()) {
            (true, [input]) => node = *input,
            _ => return node,
        }
    }
}
