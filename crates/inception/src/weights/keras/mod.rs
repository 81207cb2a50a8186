//! Keras weights: the legacy HDF5 layout (`.h5`, Keras 2 and 3 — the layout of the published
//! `inception_v3_weights_tf_dim_ordering_tf_kernels.h5`), Keras 3 `.weights.h5`, and the
//! `.keras` zip (`config.json` + `model.weights.h5`), read with the pure-Rust `hdf5-reader`.
//!
//! Keras files name layers by creation counters (`conv2d_57`), not by position in the network,
//! so weights are matched to a [`Graph`] by **order**: for each layer class, the i-th Conv2D
//! (BatchNormalization, Dense) of the file's `model.layers` order goes to the i-th one of the
//! graph in the same order, which [`keras_order`] computes exactly as Keras does (depth from
//! the output, then depth-first discovery order). Every pair is shape-checked, and layouts are
//! converted to PyTorch's: kernels HWIO → OIHW, dense `[in, out]` → `[out, in]`, `gamma` /
//! `beta` / `moving_*` → `weight` / `bias` / `running_*`.

use std::collections::HashMap;
use std::path::Path;

use hdf5_reader::{Datatype, Hdf5File};
use serde_json::Value as Json;

use super::{DType, Format, StateDict, WeightTensor, decode};
use crate::error::{Error, FormatError, Result, WeightsFault};
mod config;
#[cfg(feature = "tensorflow")]
pub mod saved_model;

pub use config::graph_from_config;

use crate::graph::{Graph, NodeId, Op};
use crate::models::{Arch, ModelConfig};

/// The layer classes that hold weights in the Inception family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KerasClass {
    /// `Conv2D`.
    Conv2D,
    /// `BatchNormalization`.
    BatchNormalization,
    /// `Dense`.
    Dense,
}

impl KerasClass {
    fn of(op: &Op) -> Option<KerasClass> {
        match op {
            Op::Conv2d(_) => Some(KerasClass::Conv2D),
            Op::BatchNorm(_) => Some(KerasClass::BatchNormalization),
            Op::Dense(_) => Some(KerasClass::Dense),
            _ => None,
        }
    }
}

/// One weighted layer of a Keras file: its name and its tensors by role (`kernel`, `bias`,
/// `gamma`, `beta`, `moving_mean`, `moving_variance`), in Keras layouts.
#[derive(Clone, Debug)]
pub struct KerasLayer {
    /// The layer's name in the file.
    pub name: String,
    /// Its class.
    pub class: KerasClass,
    /// Tensors by role.
    pub weights: Vec<(String, WeightTensor)>,
}

impl KerasLayer {
    fn get(&self, role: &str) -> Option<&WeightTensor> {
        self.weights.iter().find(|(r, _)| r == role).map(|(_, t)| t)
    }
}

/// The weighted layers of a Keras file, in its `model.layers` order, and the model config when
/// the file carries one (`.keras`).
#[derive(Clone, Debug)]
pub struct KerasWeights {
    /// Weighted layers, in `model.layers` order.
    pub layers: Vec<KerasLayer>,
    /// `config.json` of a `.keras` file.
    pub config: Option<Json>,
}

/// Reads a Keras `.h5`, `.weights.h5` or `.keras` file.
pub fn read(path: &Path) -> Result<KerasWeights> {
    let bytes = crate::files::read_regular(path, crate::files::MAX_WEIGHTS_FILE_BYTES)?;
    read_bytes(bytes).map_err(|e| Error::Format(e).in_file(path))
}

/// Reads a Keras file already in memory (`.keras` zip or HDF5).
pub fn read_bytes(bytes: Vec<u8>) -> std::result::Result<KerasWeights, FormatError> {
    if bytes.starts_with(b"PK") {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .map_err(|e| format!("not a valid .keras zip: {e}"))?;
        let mut entry = |name: &str, max: u64| -> std::result::Result<Vec<u8>, FormatError> {
            if zip.index_for_name(name).is_none() {
                return Err(format!(
                    "the .keras archive has no {name} (not a Keras 3 model file?)"
                )
                .into());
            }
            super::read_zip_entry(&mut zip, name, None, max)
        };
        let config: Json = serde_json::from_slice(&entry("config.json", 64 << 20)?)
            .map_err(|e| format!("config.json is not JSON: {e}"))?;
        let weights = entry("model.weights.h5", u64::MAX)?;
        let layers = read_h5(weights)?;
        return Ok(KerasWeights {
            layers,
            config: Some(config),
        });
    }
    Ok(KerasWeights {
        layers: read_h5(bytes)?,
        config: None,
    })
}

fn h5err(e: impl std::fmt::Display) -> String {
    format!("not a readable HDF5 file ({e})")
}

fn read_h5(bytes: Vec<u8>) -> std::result::Result<Vec<KerasLayer>, FormatError> {
    if !bytes.starts_with(b"\x89HDF\r\n\x1a\n") {
        return Err("not an HDF5 file (wrong magic)".into());
    }
    let file = Hdf5File::from_vec(bytes).map_err(h5err)?;
    let root = file.root_group().map_err(h5err)?;
    // Legacy layout: `layer_names` on the root (save_weights) or on `model_weights` (model.save).
    for base in ["", "model_weights"] {
        let group = if base.is_empty() {
            root.clone()
        } else {
            match root.group(base) {
                Ok(g) => g,
                Err(_) => continue,
            }
        };
        if let Ok(attr) = group.attribute("layer_names") {
            let names = attr
                .read_strings()
                .map_err(|e| format!("the layer_names attribute is unreadable: {e}"))?;
            return read_legacy(&file, base, &names);
        }
    }
    if root.group("layers").is_ok() {
        return read_keras3(&file);
    }
    Err("not a Keras weights file: no `layer_names` attribute and no `layers` group".into())
}

fn read_dataset(file: &Hdf5File, path: &str) -> std::result::Result<WeightTensor, FormatError> {
    let ds = file
        .dataset(path)
        .map_err(|_| format!("dataset `{path}` is missing (truncated or edited file?)"))?;
    let dtype = match ds.dtype() {
        Datatype::FloatingPoint { size: 2, .. } => DType::F16,
        Datatype::FloatingPoint { size: 4, .. } => DType::F32,
        Datatype::FloatingPoint { size: 8, .. } => DType::F64,
        other => return Err(format!("dataset `{path}` has unsupported type {other:?}").into()),
    };
    let shape: Vec<usize> = ds.shape().iter().map(|&d| d as usize).collect();
    let raw = ds
        .read_native_bytes()
        .map_err(|e| format!("dataset `{path}`: {e}"))?;
    let data = decode(&raw, dtype).map_err(|e| format!("dataset `{path}`: {e}"))?;
    Ok(WeightTensor::new(shape, data, dtype))
}

fn classify(
    name: &str,
    weights: &[(String, WeightTensor)],
) -> std::result::Result<KerasClass, FormatError> {
    let has = |r: &str| weights.iter().find(|(n, _)| n == r).map(|(_, t)| t);
    if let Some(k) = has("kernel") {
        return match k.shape.len() {
            4 => Ok(KerasClass::Conv2D),
            2 => Ok(KerasClass::Dense),
            n => Err(format!(
                "layer `{name}` has a {n}-D kernel; only Conv2D and Dense are supported"
            )
            .into()),
        };
    }
    if has("moving_mean").is_some() {
        return Ok(KerasClass::BatchNormalization);
    }
    let roles: Vec<&str> = weights.iter().map(|(n, _)| n.as_str()).collect();
    Err(format!(
        "layer `{name}` holds weights {roles:?} of a layer type this reader does not support \
         (Conv2D, BatchNormalization and Dense are)"
    )
    .into())
}

fn read_legacy(
    file: &Hdf5File,
    base: &str,
    names: &[String],
) -> std::result::Result<Vec<KerasLayer>, FormatError> {
    let mut layers = Vec::new();
    for name in names {
        let gpath = if base.is_empty() {
            format!("/{name}")
        } else {
            format!("/{base}/{name}")
        };
        let group = file.group(&gpath).map_err(|_| {
            format!("layer `{name}` is listed in layer_names but has no group (truncated or edited file?)")
        })?;
        // An empty list is stored as an empty float array by h5py.
        let weight_names = group
            .attribute("weight_names")
            .ok()
            .and_then(|a| a.read_strings().ok())
            .unwrap_or_default();
        if weight_names.is_empty() {
            continue;
        }
        let mut weights = Vec::new();
        for w in &weight_names {
            let t = read_dataset(file, &format!("{gpath}/{w}"))?;
            let role = w.rsplit('/').next().unwrap_or(w).trim_end_matches(":0");
            weights.push((role.to_string(), t));
        }
        let class = classify(name, &weights)?;
        layers.push(KerasLayer {
            name: name.clone(),
            class,
            weights,
        });
    }
    Ok(layers)
}

fn read_keras3(file: &Hdf5File) -> std::result::Result<Vec<KerasLayer>, FormatError> {
    let group = file.group("/layers").map_err(h5err)?;
    let (subgroups, _) = group.member_names().map_err(h5err)?;
    let mut found: Vec<(String, usize, KerasLayer)> = Vec::new();
    for name in subgroups {
        let (class_name, index) = split_counter(&name);
        let Ok(vars) = file.group(&format!("/layers/{name}/vars")) else {
            continue;
        };
        let (_, datasets) = vars.member_names().map_err(h5err)?;
        if datasets.is_empty() {
            if file.group(&format!("/layers/{name}/layers")).is_ok() {
                return Err(format!(
                    "layer `{name}` is a nested model; save the inner model's weights separately"
                )
                .into());
            }
            continue;
        }
        let mut tensors = Vec::new();
        for i in 0..datasets.len() {
            tensors.push(read_dataset(file, &format!("/layers/{name}/vars/{i}"))?);
        }
        let roles: &[&str] = match (class_name, tensors.len()) {
            ("conv2d" | "dense", 2) => &["kernel", "bias"],
            ("conv2d" | "dense", 1) => &["kernel"],
            ("batch_normalization", 4) => &["gamma", "beta", "moving_mean", "moving_variance"],
            // scale=False (Keras InceptionV3): no gamma.
            ("batch_normalization", 3) => &["beta", "moving_mean", "moving_variance"],
            ("batch_normalization", 2) => &["moving_mean", "moving_variance"],
            _ => {
                return Err(format!(
                    "layer `{name}` ({} weights) is of a type this reader does not support \
                     (Conv2D, BatchNormalization and Dense are)",
                    tensors.len()
                )
                .into());
            }
        };
        let weights: Vec<(String, WeightTensor)> =
            roles.iter().map(|r| r.to_string()).zip(tensors).collect();
        let class = classify(&name, &weights)?;
        found.push((
            class_name.to_string(),
            index,
            KerasLayer {
                name,
                class,
                weights,
            },
        ));
    }
    // `layers/conv2d_3` is the fourth Conv2D of model.layers: order each class by its counter.
    found.sort_by(|a, b| (a.0.as_str(), a.1).cmp(&(b.0.as_str(), b.1)));
    Ok(found.into_iter().map(|(_, _, l)| l).collect())
}

/// `conv2d_12` → (`conv2d`, 12); `conv2d` → (`conv2d`, 0).
fn split_counter(name: &str) -> (&str, usize) {
    if let Some((base, n)) = name.rsplit_once('_')
        && let Ok(n) = n.parse::<usize>()
    {
        return (base, n);
    }
    (name, 0)
}

/// The graph's layers in Keras's `model.layers` order (what `keras.Model` computes in
/// `map_graph`): depth-first from the main output, visiting a layer's inputs in order, then
/// sorted by decreasing depth (longest path to the output), ties by first discovery.
///
/// A ReLU or softmax that directly follows a Conv2D or Dense, as that layer's only consumer, is
/// taken as the layer's `activation=` (one Keras layer), as `Conv2D(..., activation="relu")`.
pub fn keras_order(graph: &Graph) -> Vec<NodeId> {
    let n = graph.nodes.len();
    let mut consumers = vec![0usize; n];
    for node in &graph.nodes {
        for &i in &node.inputs {
            consumers[i] += 1;
        }
    }
    let fused_into = |i: usize| -> Option<usize> {
        let node = &graph.nodes[i];
        if !matches!(node.op, Op::Relu | Op::Softmax) || node.inputs.len() != 1 {
            return None;
        }
        let p = node.inputs[0];
        (matches!(graph.nodes[p].op, Op::Conv2d(_) | Op::Dense(_)) && consumers[p] == 1)
            .then_some(p)
    };
    let alias: Vec<usize> = (0..n).map(|i| fused_into(i).unwrap_or(i)).collect();
    let inputs: Vec<Vec<usize>> = graph
        .nodes
        .iter()
        .map(|node| node.inputs.iter().map(|&j| alias[j]).collect())
        .collect();

    let mut index: HashMap<usize, usize> = HashMap::new();
    let mut finished = vec![false; n];
    let mut topo = Vec::new();
    let out = alias[graph.main_output().node];
    // Iterative depth-first search with Keras's pre-order discovery indices.
    let mut stack: Vec<(usize, usize)> = vec![(out, 0)];
    while let Some((node, next)) = stack.pop() {
        if next == 0 {
            if finished[node] {
                continue;
            }
            let k = index.len();
            index.entry(node).or_insert(k);
        }
        if let Some(&child) = inputs[node].get(next) {
            stack.push((node, next + 1));
            if !finished[child] {
                stack.push((child, 0));
            }
        } else if !finished[node] {
            finished[node] = true;
            topo.push(node);
        }
    }
    let mut depth: HashMap<usize, usize> = HashMap::new();
    for &node in topo.iter().rev() {
        let d = *depth.entry(node).or_insert(0);
        for &p in &inputs[node] {
            let e = depth.entry(p).or_insert(0);
            *e = (*e).max(d + 1);
        }
    }
    let mut order: Vec<usize> = topo;
    order.sort_by_key(|i| (std::cmp::Reverse(depth[i]), index[i]));
    order
}

impl KerasWeights {
    /// Counts of weighted layers per class, for messages.
    fn counts(&self) -> String {
        let c = |k| self.layers.iter().filter(|l| l.class == k).count();
        format!(
            "{} Conv2D, {} BatchNormalization, {} Dense",
            c(KerasClass::Conv2D),
            c(KerasClass::BatchNormalization),
            c(KerasClass::Dense)
        )
    }

    /// Maps the file's layers onto `graph` (see the module docs) and returns them as a state
    /// dict in PyTorch conventions under the graph's names.
    pub fn to_state_dict(&self, graph: &Graph) -> Result<StateDict> {
        let order = keras_order(graph);
        let mut sd = StateDict::new(Format::Keras);
        for class in [
            KerasClass::Conv2D,
            KerasClass::BatchNormalization,
            KerasClass::Dense,
        ] {
            let ours: Vec<usize> = order
                .iter()
                .copied()
                .filter(|&i| KerasClass::of(&graph.nodes[i].op) == Some(class))
                .collect();
            let theirs: Vec<&KerasLayer> =
                self.layers.iter().filter(|l| l.class == class).collect();
            if ours.len() != theirs.len() {
                return Err(WeightsFault::LayerCount {
                    class: format!("{class:?}"),
                    in_file: theirs.len(),
                    model: graph.name.clone(),
                    in_model: ours.len(),
                    file_counts: self.counts(),
                }
                .into());
            }
            for (&i, layer) in ours.iter().zip(theirs) {
                convert(&graph.nodes[i].name, &graph.nodes[i].op, layer, &mut sd)?;
            }
        }
        Ok(sd)
    }
}

fn convert(name: &str, op: &Op, layer: &KerasLayer, sd: &mut StateDict) -> Result<()> {
    let need = |role: &str| {
        layer.get(role).ok_or_else(|| {
            Error::from(WeightsFault::Layer {
                file_layer: layer.name.clone(),
                model_layer: name.to_string(),
                reason: format!("has no `{role}`"),
            })
        })
    };
    let mismatch = |what: &str, file: &[usize], model: &[usize]| {
        Error::from(WeightsFault::Layer {
            file_layer: layer.name.clone(),
            model_layer: name.to_string(),
            reason: format!(
                "{what} is {file:?} where the model needs {model:?} (wrong model, or layers in a \
                 different order?)"
            ),
        })
    };
    let mut put = |suffix: &str, shape: Vec<usize>, data: Vec<f32>, dtype| {
        sd.insert(
            format!("{name}.{suffix}"),
            WeightTensor::new(shape, data, dtype),
        );
    };
    match op {
        Op::Conv2d(c) => {
            let k = need("kernel")?;
            let want = [c.kernel[0], c.kernel[1], c.in_channels, c.filters];
            if k.shape != want {
                return Err(mismatch("kernel", &k.shape, &want));
            }
            let [kh, kw, ci, co] = want;
            let mut out = vec![0.0; k.data.len()];
            for y in 0..kh {
                for x in 0..kw {
                    for i in 0..ci {
                        for o in 0..co {
                            out[((o * ci + i) * kh + y) * kw + x] =
                                k.data[((y * kw + x) * ci + i) * co + o];
                        }
                    }
                }
            }
            put("weight", vec![co, ci, kh, kw], out, k.dtype);
            bias(c.bias, layer, name, co, &mut put, &mismatch)?;
        }
        Op::Dense(d) => {
            let k = need("kernel")?;
            let want = [d.in_features, d.units];
            if k.shape != want {
                return Err(mismatch("kernel", &k.shape, &want));
            }
            let mut out = vec![0.0; k.data.len()];
            for i in 0..d.in_features {
                for o in 0..d.units {
                    out[o * d.in_features + i] = k.data[i * d.units + o];
                }
            }
            put("weight", vec![d.units, d.in_features], out, k.dtype);
            bias(d.bias, layer, name, d.units, &mut put, &mismatch)?;
        }
        Op::BatchNorm(b) => {
            let c = b.channels;
            let vector = |role: &str| -> Result<&WeightTensor> {
                let t = need(role)?;
                if t.shape != [c] {
                    return Err(mismatch(role, &t.shape, &[c]));
                }
                Ok(t)
            };
            match (b.scale, layer.get("gamma")) {
                (true, Some(_)) => {
                    let g = vector("gamma")?;
                    put("weight", vec![c], g.data.clone(), g.dtype);
                }
                (true, None) => {
                    return Err(layer_fault(
                        layer,
                        name,
                        "has no gamma (scale=False) where the model has a scale",
                    ));
                }
                (false, Some(_)) => {
                    return Err(layer_fault(
                        layer,
                        name,
                        "has a gamma where the model has no scale (scale=False)",
                    ));
                }
                (false, None) => {}
            }
            // center=False layers have no beta: a zero shift is the same thing.
            match layer.get("beta") {
                Some(_) => {
                    let t = vector("beta")?;
                    put("bias", vec![c], t.data.clone(), t.dtype);
                }
                None => put("bias", vec![c], vec![0.0; c], DType::F32),
            }
            let m = vector("moving_mean")?;
            put("running_mean", vec![c], m.data.clone(), m.dtype);
            let v = vector("moving_variance")?;
            put("running_var", vec![c], v.data.clone(), v.dtype);
        }
        _ => unreachable!("only weighted layers are converted"),
    }
    Ok(())
}

fn bias(
    has_bias: bool,
    layer: &KerasLayer,
    name: &str,
    units: usize,
    put: &mut impl FnMut(&str, Vec<usize>, Vec<f32>, DType),
    mismatch: &impl Fn(&str, &[usize], &[usize]) -> Error,
) -> Result<()> {
    match (has_bias, layer.get("bias")) {
        (true, Some(b)) => {
            if b.shape != [units] {
                return Err(mismatch("bias", &b.shape, &[units]));
            }
            put("bias", vec![units], b.data.clone(), b.dtype);
            Ok(())
        }
        (false, None) => Ok(()),
        (true, None) => Err(layer_fault(
            layer,
            name,
            "has no bias (use_bias=False) where the model has one",
        )),
        (false, Some(_)) => Err(layer_fault(
            layer,
            name,
            "has a bias where the model has none",
        )),
    }
}

fn layer_fault(layer: &KerasLayer, name: &str, reason: &str) -> Error {
    WeightsFault::Layer {
        file_layer: layer.name.clone(),
        model_layer: name.to_string(),
        reason: reason.to_string(),
    }
    .into()
}

/// Recognises `keras.applications.InceptionV3` and `InceptionResNetV2` weights (with or without
/// the top; the second as the TF-slim layout it is, ending in Keras's softmax); `None` when the
/// file is some other model.
pub fn detect(weights: &KerasWeights) -> Option<ModelConfig> {
    let dense = weights.layers.iter().find(|l| l.class == KerasClass::Dense);
    let classes = match dense.and_then(|d| d.get("kernel")) {
        Some(k) if k.shape.len() == 2 => Some(k.shape[1]),
        Some(_) => return None,
        None => None,
    };
    [Arch::InceptionV3Keras, Arch::InceptionResNetV2]
        .into_iter()
        .map(|arch| {
            let cfg = ModelConfig::new(arch).with_softmax(true);
            match classes {
                Some(c) => cfg.with_classes(c),
                None => cfg.with_include_top(false),
            }
        })
        .find(|cfg| cfg.graph().is_ok_and(|g| weights.to_state_dict(&g).is_ok()))
}
