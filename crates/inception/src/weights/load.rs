//! Mapping state dicts onto networks: strict loading, model detection, export, and loading a
//! model from any supported file in one call.

use std::collections::HashSet;

use burn::module::{Param, RunningState};
use burn::tensor::{Device, Tensor, TensorData};

use super::{DType, Format, StateDict, WeightTensor};
use crate::error::{Error, Result, WeightsFault};
use crate::graph::{Graph, Op};
use crate::models::{Arch, ModelConfig};
use crate::network::Network;
use crate::nn::LayerModule;

/// What [`load_into`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Tensors copied into the network.
    pub loaded: usize,
    /// Tensors in the file that this configuration does not use (e.g. aux heads or the
    /// classifier of a model built without them), and `num_batches_tracked` counters.
    pub unused: Vec<String>,
    /// A prefix stripped from every name (`module.` from `DataParallel`, …), if any.
    pub prefix: String,
}

/// Prefixes that wrappers add to every name: `DataParallel`, Lightning and timm's EMA wrappers,
/// `torch.compile`.
const WRAPPER_PREFIXES: [&str; 6] = [
    "",
    "module.",
    "model.",
    "_orig_mod.",
    "module.model.",
    "model.module.",
];

/// Copies `sd` into `net`, strictly: every tensor the network has must be present with its exact
/// shape, and every tensor in the file must be used, except those named in `optional` (tensors
/// the full architecture has but this configuration leaves out). Errors name the tensors.
pub fn load_into(
    net: &mut Network,
    sd: &StateDict,
    optional: &HashSet<String>,
) -> Result<LoadReport> {
    let (prefix, unused) = check_fit(net.graph(), sd, optional)?;
    let device = network_device(net);
    let mut loaded = 0;
    let node_names: Vec<String> = net.graph().nodes.iter().map(|n| n.name.clone()).collect();
    for (module, node_name) in net.layers_mut().iter_mut().zip(&node_names) {
        let Some(module) = module.as_mut() else {
            continue;
        };
        let get = |suffix: &str| {
            sd.get(&format!("{prefix}{node_name}.{suffix}"))
                .expect("presence was checked above")
        };
        match module {
            LayerModule::Conv(conv) => {
                conv.weight = Param::from_tensor(tensor::<4>(get("weight"), &device));
                loaded += 1;
                if conv.bias.is_some() {
                    conv.bias = Some(Param::from_tensor(tensor::<1>(get("bias"), &device)));
                    loaded += 1;
                }
            }
            LayerModule::Dense(dense) => {
                // PyTorch stores [out, in]; Burn's Linear multiplies by [in, out].
                let w = get("weight");
                let (out, inp) = (w.shape[0], w.shape[1]);
                let mut t = vec![0.0; w.data.len()];
                for o in 0..out {
                    for k in 0..inp {
                        t[k * out + o] = w.data[o * inp + k];
                    }
                }
                dense.weight =
                    Param::from_tensor(Tensor::from_data(TensorData::new(t, [inp, out]), &device));
                loaded += 1;
                if dense.bias.is_some() {
                    dense.bias = Some(Param::from_tensor(tensor::<1>(get("bias"), &device)));
                    loaded += 1;
                }
            }
            LayerModule::Norm(bn) => {
                if bn.gamma.is_some() {
                    bn.gamma = Some(Param::from_tensor(tensor::<1>(get("weight"), &device)));
                    loaded += 1;
                }
                bn.beta = Param::from_tensor(tensor::<1>(get("bias"), &device));
                bn.running_mean = RunningState::new(tensor::<1>(get("running_mean"), &device));
                bn.running_var = RunningState::new(tensor::<1>(get("running_var"), &device));
                loaded += 3;
            }
            LayerModule::Dropout(_) => {}
        }
    }
    Ok(LoadReport {
        loaded,
        unused,
        prefix: prefix.to_string(),
    })
}

/// Checks that `sd` fits `graph` exactly (see [`load_into`]) without touching any tensor:
/// returns the wrapper prefix found and the tensors the configuration leaves unused.
fn check_fit(
    graph: &Graph,
    sd: &StateDict,
    optional: &HashSet<String>,
) -> Result<(&'static str, Vec<String>)> {
    let expected = graph.state_dict_shapes();
    let prefix = WRAPPER_PREFIXES
        .iter()
        .max_by_key(|p| {
            expected
                .iter()
                .filter(|(n, _)| sd.get(&format!("{p}{n}")).is_some())
                .count()
        })
        .copied()
        .unwrap_or("");
    let mut missing = Vec::new();
    let mut mismatched = Vec::new();
    for (name, shape) in &expected {
        match sd.get(&format!("{prefix}{name}")) {
            None => missing.push(name.clone()),
            Some(t) if &t.shape != shape => mismatched.push(format!(
                "`{name}` is {:?} in the file, {shape:?} in the model",
                t.shape
            )),
            // A reader bug or a hostile file must not reach the tensor constructor.
            Some(t) if t.data.len() != shape.iter().product::<usize>() => mismatched.push(format!(
                "`{name}` has {} values for its shape {shape:?}",
                t.data.len()
            )),
            Some(_) => {}
        }
    }
    let wanted: HashSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    let mut unused = Vec::new();
    let mut unexpected = Vec::new();
    for (name, _) in sd.iter() {
        let Some(short) = name.strip_prefix(prefix) else {
            unexpected.push(name.to_string());
            continue;
        };
        if wanted.contains(short) {
            continue;
        }
        if optional.contains(short) || short.ends_with("num_batches_tracked") {
            unused.push(name.to_string());
        } else {
            unexpected.push(name.to_string());
        }
    }
    if !missing.is_empty() || !unexpected.is_empty() || !mismatched.is_empty() {
        return Err(WeightsFault::Mismatch {
            model: graph.name.clone(),
            missing,
            unexpected,
            mis_shaped: mismatched,
        }
        .into());
    }
    Ok((prefix, unused))
}

fn tensor<const D: usize>(t: &WeightTensor, device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(t.data.clone(), t.shape.clone()), device)
}

fn network_device(net: &Network) -> Device {
    for m in net.layer_modules() {
        match m {
            LayerModule::Conv(c) => return c.weight.device(),
            LayerModule::Dense(d) => return d.weight.device(),
            LayerModule::Norm(b) => return b.beta.device(),
            LayerModule::Dropout(_) => {}
        }
    }
    Device::default()
}

/// Builds the model `cfg` describes on `device` and loads `sd` into it (see [`load_into`]).
/// Tensors of the heads this configuration leaves out (aux classifiers, the top) may be present.
pub fn load_model(
    cfg: &ModelConfig,
    sd: &StateDict,
    device: &Device,
) -> Result<(Network, LoadReport)> {
    let mut net = cfg.init(device)?;
    let optional = optional_names(cfg)?;
    let report = load_into(&mut net, sd, &optional)?;
    Ok((net, report))
}

/// Builds a caller's (or an imported) graph on `device` and loads `sd` into it strictly: every
/// tensor must be used.
pub(super) fn load_graph(
    graph: Graph,
    sd: &StateDict,
    device: &Device,
) -> Result<(Network, LoadReport)> {
    let mut network = Network::new(graph, device);
    let report = load_into(&mut network, sd, &HashSet::new())?;
    Ok((network, report))
}

/// Names the full architecture has and `cfg` does not (heads left out).
fn optional_names(cfg: &ModelConfig) -> Result<HashSet<String>> {
    let mine: HashSet<String> = names(&cfg.graph()?);
    let top = cfg.clone().with_include_top(true).with_pooling(None);
    // With its aux heads where the architecture has them and the input is large enough for them
    // (Inception v3's needs 299x299).
    let full = match top.clone().with_aux_logits(true).graph() {
        Ok(g) if cfg.arch.has_aux_heads() => g,
        _ => top.graph()?,
    };
    Ok(names(&full)
        .into_iter()
        .filter(|n| !mine.contains(n))
        .collect())
}

fn names(g: &Graph) -> HashSet<String> {
    g.state_dict_shapes().into_iter().map(|(n, _)| n).collect()
}

/// The metadata key under which exported files store their [`ModelConfig`] (as JSON), so that
/// they load back with every option, `transform_input` included.
pub const CONFIG_KEY: &str = "inception.model";

/// The configuration to load `sd` with: the one stored in the file's metadata (files we
/// exported), else the one [`detect`]ed from the tensors — of `arch` when it is given.
pub fn config_for(sd: &StateDict, arch: Option<Arch>) -> Result<ModelConfig> {
    if let Some(json) = sd.metadata.get(CONFIG_KEY) {
        let cfg: ModelConfig = serde_json::from_str(json).map_err(|e| {
            Error::format(format!(
                "the file's `{CONFIG_KEY}` metadata is not a model config: {e}"
            ))
        })?;
        if arch.is_none_or(|a| a == cfg.arch) {
            return Ok(cfg);
        }
    }
    match arch {
        Some(arch) => detect_as(sd, arch),
        None => detect(sd),
    }
}

/// Recognises the architecture of a state dict from its tensor names and shapes: which model,
/// with or without the top and aux heads, how many classes and input channels.
///
/// `transform_input` cannot be seen in the weights; the pretrained registry knows it.
pub fn detect(sd: &StateDict) -> Result<ModelConfig> {
    let mut best: Option<(usize, Arch)> = None;
    for arch in [
        Arch::GoogLeNet,
        Arch::InceptionV3,
        Arch::GoogLeNetBvlc,
        Arch::InceptionV3Keras,
    ] {
        match try_detect(sd, arch)? {
            Ok(cfg) => return Ok(cfg),
            Err(found) => {
                if best.is_none_or(|(f, _)| found > f) {
                    best = Some((found, arch));
                }
            }
        }
    }
    Err(WeightsFault::Unrecognised {
        tensors: sd.len(),
        sample: sd.iter().take(3).map(|(n, _)| n.to_string()).collect(),
        closest: best
            .filter(|&(found, _)| found > 0)
            .map(|(found, arch)| (arch.to_string(), found)),
    }
    .into())
}

/// Like [`detect`], for a known architecture: finds the top, aux heads, classes and input
/// channels, or says which backbone tensors are missing.
pub fn detect_as(sd: &StateDict, arch: Arch) -> Result<ModelConfig> {
    match try_detect(sd, arch)? {
        Ok(cfg) => Ok(cfg),
        Err(_) => {
            // The strict check's report names what is missing.
            let backbone = ModelConfig::new(arch).with_include_top(false);
            check_fit(&backbone.graph()?, sd, &optional_names(&backbone)?).map(|_| backbone)
        }
    }
}

/// `Ok(config)` when every backbone tensor of `arch` is present, else `Err(how many are)`.
fn try_detect(sd: &StateDict, arch: Arch) -> Result<std::result::Result<ModelConfig, usize>> {
    let base = ModelConfig::new(arch).with_include_top(false);
    let backbone = base.graph()?.state_dict_shapes();
    let prefix = WRAPPER_PREFIXES
        .iter()
        .find(|p| sd.get(&format!("{p}{}", backbone[0].0)).is_some());
    let Some(prefix) = prefix else {
        return Ok(Err(0));
    };
    let get = |n: &str| sd.get(&format!("{prefix}{n}"));
    let found = backbone.iter().filter(|(n, _)| get(n).is_some()).count();
    if found < backbone.len() {
        return Ok(Err(found));
    }
    let in_channels = get(&backbone[0].0).map_or(3, |t| t.shape.get(1).copied().unwrap_or(3));
    let top = ModelConfig::new(arch)
        .with_include_top(true)
        .graph()?
        .state_dict_shapes();
    let top_names: HashSet<String> = top.iter().map(|(n, _)| n.clone()).collect();
    let fc = top
        .iter()
        .find(|(n, s)| {
            s.len() == 2 && n.ends_with(".weight") && !backbone.iter().any(|(b, _)| b == n)
        })
        .and_then(|(n, _)| get(n));
    let mut cfg = ModelConfig::new(arch).with_in_channels(in_channels);
    match fc {
        Some(w) => cfg = cfg.with_classes(w.shape[0]),
        None => cfg = cfg.with_include_top(false),
    }
    if fc.is_some() && arch.has_aux_heads() {
        let with_aux = names(&cfg.clone().with_aux_logits(true).graph()?);
        if with_aux
            .iter()
            .filter(|n| !top_names.contains(*n))
            .all(|n| get(n).is_some())
        {
            cfg = cfg.with_aux_logits(true);
        }
    }
    Ok(Ok(cfg))
}

/// The network's tensors (see [`state_dict`]) with `cfg` stored in the metadata under
/// [`CONFIG_KEY`]: our own checkpoint format is exactly this, written as safetensors.
pub fn export(net: &Network, cfg: &ModelConfig) -> StateDict {
    let mut sd = state_dict(net);
    sd.metadata.insert(
        CONFIG_KEY.to_string(),
        serde_json::to_string(cfg).expect("a config always serialises"),
    );
    sd.metadata.insert("format".to_string(), "pt".to_string());
    sd
}

/// The network's tensors as a state dict with PyTorch names and layouts (dense weights
/// `[out, in]`), plus a zero `num_batches_tracked` per BatchNorm so that PyTorch's
/// `load_state_dict` finds every key it expects.
pub fn state_dict(net: &Network) -> StateDict {
    let mut sd = StateDict::new(Format::Safetensors);
    let graph = net.graph();
    for (i, node) in graph.nodes.iter().enumerate() {
        let Some(module) = net.layer(i) else {
            continue;
        };
        let mut put =
            |suffix: &str, t: WeightTensor| sd.insert(format!("{}.{suffix}", node.name), t);
        match module {
            LayerModule::Conv(c) => {
                put("weight", read_tensor(c.weight.val()));
                if let Some(b) = &c.bias {
                    put("bias", read_tensor(b.val()));
                }
            }
            LayerModule::Dense(d) => {
                let w = read_tensor(d.weight.val().transpose());
                put("weight", w);
                if let Some(b) = &d.bias {
                    put("bias", read_tensor(b.val()));
                }
            }
            LayerModule::Norm(bn) => {
                if let Some(g) = &bn.gamma {
                    put("weight", read_tensor(g.val()));
                }
                put("bias", read_tensor(bn.beta.val()));
                put("running_mean", read_tensor(bn.running_mean.value_sync()));
                put("running_var", read_tensor(bn.running_var.value_sync()));
                if matches!(node.op, Op::BatchNorm(_)) {
                    put(
                        "num_batches_tracked",
                        WeightTensor::new(Vec::new(), vec![0.0], DType::I64),
                    );
                }
            }
            LayerModule::Dropout(_) => {}
        }
    }
    sd
}

fn read_tensor<const D: usize>(t: Tensor<D>) -> WeightTensor {
    let shape = t.dims().to_vec();
    let data = t
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 data after conversion");
    WeightTensor::new(shape, data, DType::F32)
}
