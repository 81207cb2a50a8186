//! Loading a model from a checkpoint file in any supported format: the architecture from the
//! file (tensor names, metadata, a `.keras` config, an ONNX graph) or from the caller.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::Device;

use super::StateDict;
use super::load::LoadReport;
use super::load::{config_for, load_graph, load_model};
use super::{Format, read_as, sniff};
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op};
use crate::models::{Arch, ModelConfig};
use crate::network::Network;

/// Where the architecture comes from when loading a file.
#[derive(Clone, Debug, Default)]
pub enum ModelSource {
    /// Recognised from the file: tensor names and shapes, stored metadata, a `.keras` config.
    #[default]
    Auto,
    /// A built-in architecture (options still detected from the file).
    Arch(Arch),
    /// A graph built by the caller (e.g. with the functional API, or from a `.keras` config).
    Graph(Graph),
}

/// A model built from a checkpoint file.
#[derive(Debug)]
pub struct Loaded {
    /// The network, with the file's weights.
    pub network: Network,
    /// The built-in configuration it was built with (`None` for a caller's graph or a `.keras`
    /// model).
    pub config: Option<ModelConfig>,
    /// What the loader did (tensors loaded, unused, prefix stripped).
    pub report: LoadReport,
    /// The file's format, which also says what the model takes and gives: NCHW and logits for
    /// PyTorch and safetensors, NHWC and (for a top with a softmax) probabilities for Keras,
    /// the graph's own inputs and outputs for ONNX.
    pub format: Format,
    /// The named outputs the source framework's model returns in evaluation mode: `logits` (or
    /// `probs`, or `features` without a top) then the aux heads for built-in and Keras models;
    /// the graph outputs for ONNX.
    pub outputs: Vec<(String, NodeId)>,
    /// Whether the source model takes NHWC input (Keras; ONNX graphs exported from
    /// TensorFlow). The network itself always takes NCHW.
    pub input_nhwc: bool,
    /// The file's string metadata (safetensors `__metadata__`): the model configuration,
    /// class names ([`crate::data::CLASSES_KEY`]), preprocessing
    /// ([`crate::data::PREPROCESSING_KEY`]).
    pub metadata: BTreeMap<String, String>,
}

impl Loaded {
    /// The class names stored in the file, if any; malformed metadata is an error naming the
    /// key.
    pub fn class_names(&self) -> Result<Option<Vec<String>>> {
        let key = crate::data::CLASSES_KEY;
        let Some(json) = self.metadata.get(key) else {
            return Ok(None);
        };
        serde_json::from_str(json)
            .map(Some)
            .map_err(|e| Error::format(format!("metadata `{key}` is not a list of names: {e}")))
    }

    /// The preprocessing stored in the file, if any, checked ([`crate::data::Preset::validate`]);
    /// malformed metadata is an error naming the key.
    pub fn preprocessing(&self) -> Result<Option<crate::data::Preset>> {
        let key = crate::data::PREPROCESSING_KEY;
        let Some(json) = self.metadata.get(key) else {
            return Ok(None);
        };
        let preset: crate::data::Preset = serde_json::from_str(json)
            .map_err(|e| Error::format(format!("metadata `{key}` is not a preprocessing: {e}")))?;
        preset
            .validate()
            .map_err(|e| Error::format(format!("metadata `{key}`: {e}")))?;
        Ok(Some(preset))
    }
}

/// The outputs a built-in or Keras model returns: the main one, named by what it is, then the
/// aux heads (`aux_logits`, or `aux1_logits`, `aux2_logits`).
fn default_outputs(graph: &Graph) -> Vec<(String, NodeId)> {
    let main = graph.main_output().node;
    let name = match &graph.nodes[main].op {
        Op::Softmax => "probs",
        Op::Dense(_) => "logits",
        _ => "features",
    };
    let mut out = vec![(name.to_string(), main)];
    let aux: Vec<NodeId> = graph.aux_outputs().map(|o| o.node).collect();
    for (i, &a) in aux.iter().enumerate() {
        let n = if aux.len() == 1 {
            "aux_logits".to_string()
        } else {
            format!("aux{}_logits", i + 1)
        };
        out.push((n, a));
    }
    out
}

/// Reads `path` in any supported format, works out the model (see [`ModelSource`]), applies
/// `adjust` to a built-in configuration (input size, `transform_input`, dropping heads…) and
/// loads the weights strictly.
pub fn load_file(
    path: &Path,
    source: ModelSource,
    adjust: impl FnOnce(ModelConfig) -> ModelConfig,
    device: &Device,
) -> Result<Loaded> {
    load_file_sized(path, source, None, adjust, device)
}

/// [`load_file`], with the square input size an ONNX graph with a symbolic height and width is
/// imported at (files that fix their size ignore it; built-in models take theirs from
/// `adjust`).
pub fn load_file_sized(
    path: &Path,
    source: ModelSource,
    onnx_input_size: Option<usize>,
    adjust: impl FnOnce(ModelConfig) -> ModelConfig,
    device: &Device,
) -> Result<Loaded> {
    // A Keras SavedModel folder is Keras weights in a TensorFlow checkpoint.
    #[cfg(all(feature = "keras", feature = "tensorflow"))]
    if super::keras::saved_model::is_saved_model(path) {
        return load_keras(path, source, adjust, device);
    }
    let format = sniff(path)?;
    match format {
        Format::Onnx => load_onnx(path, source, onnx_input_size, device),
        Format::Keras => load_keras(path, source, adjust, device),
        Format::PyTorch | Format::Safetensors | Format::TfCheckpoint => {
            load_state_dict_file(path, format, source, adjust, device)
        }
    }
}

/// An error naming the file, for a failure while mapping its tensors.
fn in_file(path: &Path) -> impl Fn(Error) -> Error + '_ {
    move |e: Error| e.in_file(path)
}

/// A state dict in TensorFlow's names and layouts (a TF-slim layout, or a caller's graph named
/// with TensorFlow scopes).
fn load_tf_names(
    sd: &StateDict,
    source: ModelSource,
    adjust: impl FnOnce(ModelConfig) -> ModelConfig,
    device: &Device,
) -> Result<(Network, Option<ModelConfig>, LoadReport)> {
    use super::tf_names;
    match source {
        ModelSource::Graph(g) => {
            let ours = tf_names::from_tf(&g, sd)?;
            let (network, report) = load_graph(g, &ours, device)?;
            Ok((network, None, report))
        }
        ModelSource::Auto | ModelSource::Arch(_) => {
            let detected = tf_names::detect(sd)?;
            if let ModelSource::Arch(a) = source
                && a != detected.arch
            {
                return Err(Error::from(crate::error::WeightsFault::Other(format!(
                    "these are {} weights in TF-slim's names, not {a}",
                    detected.arch
                ))));
            }
            let config = adjust(detected.clone());
            // 1001 classes asked for as 1000: TF-slim's "background" class dropped.
            let dropped;
            let sd = if detected.include_top && (detected.classes, config.classes) == (1001, 1000) {
                dropped = tf_names::drop_background(sd);
                &dropped
            } else {
                sd
            };
            // Every tensor of the file converted, at the size asked for (the aux head's last
            // kernel depends on it); the heads the configuration leaves out stay unused.
            let full = config
                .clone()
                .with_include_top(detected.include_top)
                .with_pooling(None)
                .with_aux_logits(detected.aux_logits);
            let graph = full.graph().or_else(|_| config.graph())?;
            let ours = tf_names::from_tf(&graph, sd)?;
            let (network, report) = load_model(&config, &ours, device)?;
            Ok((network, Some(config), report))
        }
    }
}

/// An ONNX graph: its own architecture, imported at run time.
#[cfg(feature = "onnx")]
fn load_onnx(
    path: &Path,
    source: ModelSource,
    onnx_input_size: Option<usize>,
    device: &Device,
) -> Result<Loaded> {
    let size = match &source {
        ModelSource::Auto => onnx_input_size.map(|s| [s, s]),
        _ => {
            return Err(Error::config_of(
                path.display(),
                "model",
                "",
                "an ONNX file carries its own architecture; do not name one",
            ));
        }
    };
    let model = super::onnx::read(path, size)?;
    let (network, report) =
        load_graph(model.graph, &model.weights, device).map_err(in_file(path))?;
    Ok(Loaded {
        network,
        config: None,
        report,
        format: Format::Onnx,
        outputs: model.outputs,
        input_nhwc: model.input_nhwc,
        metadata: BTreeMap::new(),
    })
}

#[cfg(not(feature = "onnx"))]
fn load_onnx(
    path: &Path,
    _source: ModelSource,
    _onnx_input_size: Option<usize>,
    _device: &Device,
) -> Result<Loaded> {
    Err(super::not_built(path, Format::Onnx))
}

/// Keras weights: matched by layer order onto keras.applications' InceptionV3, a `.keras`
/// file's own config, or a caller's graph.
#[cfg(feature = "keras")]
fn load_keras(
    path: &Path,
    source: ModelSource,
    adjust: impl FnOnce(ModelConfig) -> ModelConfig,
    device: &Device,
) -> Result<Loaded> {
    use super::keras;
    let in_file = in_file(path);
    #[cfg(feature = "tensorflow")]
    let mut kw = if keras::saved_model::is_saved_model(path) {
        keras::saved_model::weights(path, &keras::saved_model::config(path)?)?
    } else {
        keras::read(path)?
    };
    #[cfg(not(feature = "tensorflow"))]
    let mut kw = keras::read(path)?;
    let (graph, config) = match source {
        ModelSource::Graph(g) => (g, None),
        ModelSource::Auto if kw.config.is_some() => {
            let json = kw.config.as_ref().expect("checked");
            (keras::graph_from_config(json).map_err(&in_file)?, None)
        }
        ModelSource::Auto | ModelSource::Arch(Arch::InceptionV3Keras | Arch::InceptionResNetV2) => {
            let wanted = match source {
                ModelSource::Arch(a) => Some(a),
                _ => None,
            };
            let cfg = keras::detect(&kw)
                .filter(|c| wanted.is_none_or(|a| a == c.arch))
                .ok_or_else(|| {
                    Error::from(crate::error::WeightsFault::Other(
                        "not keras.applications InceptionV3 or InceptionResNetV2 weights; give \
                         the model's .keras file as the model (ModelSource::Graph from its \
                         config)"
                            .to_string(),
                    ))
                    .in_file(path)
                })?;
            let cfg = adjust(cfg);
            if !cfg.include_top {
                // The only Dense layer of both models is their top ("predictions").
                kw.layers.retain(|l| l.class != keras::KerasClass::Dense);
            }
            (cfg.graph()?, Some(cfg))
        }
        ModelSource::Arch(a) => {
            return Err(Error::from(crate::error::WeightsFault::Other(format!(
                "Keras weights fit inception-v3-keras or inception-resnet-v2, not {a}"
            )))
            .in_file(path));
        }
    };
    let sd = kw.to_state_dict(&graph).map_err(&in_file)?;
    let (network, report) = load_graph(graph, &sd, device).map_err(&in_file)?;
    let outputs = default_outputs(network.graph());
    Ok(Loaded {
        network,
        config,
        report,
        format: Format::Keras,
        outputs,
        input_nhwc: true,
        metadata: BTreeMap::new(),
    })
}

#[cfg(not(feature = "keras"))]
fn load_keras(
    path: &Path,
    _source: ModelSource,
    _adjust: impl FnOnce(ModelConfig) -> ModelConfig,
    _device: &Device,
) -> Result<Loaded> {
    Err(super::not_built(path, Format::Keras))
}

/// PyTorch and safetensors files: a state dict in PyTorch's names, mapped onto a built-in
/// architecture (recognised from the names) or a caller's graph.
fn load_state_dict_file(
    path: &Path,
    format: Format,
    source: ModelSource,
    adjust: impl FnOnce(ModelConfig) -> ModelConfig,
    device: &Device,
) -> Result<Loaded> {
    let in_file = in_file(path);
    let sd = read_as(path, format)?;
    let metadata = sd.metadata.clone();
    let timm = super::timm_names::detect(&sd).filter(|c| match &source {
        ModelSource::Auto => true,
        ModelSource::Arch(a) => *a == c.arch,
        ModelSource::Graph(_) => false,
    });
    let (network, config, report) = if let Some(detected) = timm {
        // timm's ports of TF-slim's weights: the TF-slim layout with BatchNorm's γ.
        let config = adjust(detected.clone());
        let load = || -> Result<(Network, LoadReport)> {
            let ours = super::timm_names::from_timm(&detected.graph()?, &sd)?;
            load_model(&config, &ours, device)
        };
        let (network, report) = load().map_err(&in_file)?;
        (network, Some(config), report)
    } else if super::tf_names::is_tf(&sd) {
        load_tf_names(&sd, source, adjust, device).map_err(&in_file)?
    } else {
        match source {
            ModelSource::Graph(g) => {
                let (network, report) = load_graph(g, &sd, device).map_err(&in_file)?;
                (network, None, report)
            }
            ModelSource::Auto | ModelSource::Arch(_) => {
                let arch = match source {
                    ModelSource::Arch(a) => Some(a),
                    _ => None,
                };
                let detected = config_for(&sd, arch).map_err(&in_file)?;
                let config = adjust(detected.clone());
                // A TF-slim layout's 1001 classes asked for as 1000: "background" dropped.
                let dropped;
                let sd = if detected.arch.is_tf_slim()
                    && detected.include_top
                    && (detected.classes, config.classes) == (1001, 1000)
                {
                    dropped = super::tf_names::drop_background_rows(&sd);
                    &dropped
                } else {
                    &sd
                };
                let (network, report) = load_model(&config, sd, device).map_err(&in_file)?;
                (network, Some(config), report)
            }
        }
    };
    let outputs = default_outputs(network.graph());
    Ok(Loaded {
        network,
        config,
        report,
        format,
        outputs,
        input_nhwc: false,
        metadata,
    })
}
