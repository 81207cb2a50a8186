//! TensorFlow's names and layouts for a graph whose layer names are TensorFlow variable scopes
//! (the TF-slim layouts): a conv `S` stores `S/weights` as `[kh, kw, in, out]` and `S/biases`, a
//! dense layer `S/weights` as `[in, out]`, a BatchNorm `S` stores `S/gamma` (when it has a scale),
//! `S/beta`, `S/moving_mean` and `S/moving_variance`. A separable conv `S` (TF-slim's
//! `separable_conv2d`) is two of our convs: the depthwise `S/depthwise`, stored as
//! `S/depthwise_weights` `[kh, kw, in, multiplier]`, and the pointwise `S/pointwise`, stored as
//! `S/pointwise_weights` and `S/biases`.
//!
//! ```
//! use inception::models::{Arch, ModelConfig};
//! use inception::weights::tf_names;
//!
//! let graph = ModelConfig::new(Arch::InceptionV4).graph().unwrap();
//! let first = &tf_names::tensors(&graph)[0];
//! assert_eq!(first.tf, "InceptionV4/Conv2d_1a_3x3/weights");
//! assert_eq!(first.ours, "InceptionV4/Conv2d_1a_3x3.weight");
//! assert_eq!(first.tf_shape, vec![3, 3, 3, 32]);
//! ```

use super::{StateDict, WeightTensor};
use crate::error::{Result, WeightsFault};
use crate::graph::{Graph, Op};
use crate::models::{Arch, ModelConfig};

/// What identifies one TF-slim layout's files.
struct SlimFiles {
    arch: Arch,
    /// The variable scope every name starts with.
    scope: &'static str,
    /// The classifier's kernel.
    logits: &'static str,
    /// For TF-slim's `depth_multiplier`: a layer whose filters reveal it, and its filters at 1.0.
    depth_probe: Option<(&'static str, usize)>,
}

const SLIM: [SlimFiles; 5] = [
    SlimFiles {
        arch: Arch::InceptionV1Slim,
        scope: "InceptionV1",
        logits: "Logits/Conv2d_0c_1x1/weights",
        depth_probe: None,
    },
    SlimFiles {
        arch: Arch::InceptionV2,
        scope: "InceptionV2",
        logits: "Logits/Conv2d_1c_1x1/weights",
        depth_probe: Some(("Mixed_5c/Branch_0/Conv2d_0a_1x1/weights", 352)),
    },
    SlimFiles {
        arch: Arch::InceptionV3Slim,
        scope: "InceptionV3",
        logits: "Logits/Conv2d_1c_1x1/weights",
        depth_probe: Some(("Mixed_7c/Branch_2/Conv2d_0a_1x1/weights", 448)),
    },
    SlimFiles {
        arch: Arch::InceptionV4,
        scope: "InceptionV4",
        logits: "Logits/Logits/weights",
        depth_probe: None,
    },
    SlimFiles {
        arch: Arch::InceptionResNetV2,
        scope: "InceptionResnetV2",
        logits: "Logits/Logits/weights",
        depth_probe: None,
    },
];

/// The TF-slim layout a state dict in TensorFlow's names was saved from, recognised by its
/// variable scope (`InceptionV4/…`): with or without the classifier and aux head, its classes,
/// input channels, `depth_multiplier` and (v2) stem.
pub fn detect(sd: &StateDict) -> Result<ModelConfig> {
    let found = SLIM.iter().find(|f| {
        sd.iter()
            .any(|(n, _)| n.strip_prefix(f.scope).is_some_and(|r| r.starts_with('/')))
    });
    let Some(&SlimFiles {
        arch,
        scope,
        logits,
        depth_probe: probe,
    }) = found
    else {
        return Err(WeightsFault::Unrecognised {
            tensors: sd.len(),
            sample: sd.iter().take(3).map(|(n, _)| n.to_string()).collect(),
            closest: None,
        }
        .into());
    };
    let get = |n: &str| sd.get(&format!("{scope}/{n}"));
    let mut cfg = ModelConfig::new(arch);
    // The first conv's kernel, `[kh, kw, in, out]` (or the separable stem's depthwise one).
    let first = [
        "Conv2d_1a_3x3/weights",
        "Conv2d_1a_7x7/weights",
        "Conv2d_1a_7x7/depthwise_weights",
    ]
    .iter()
    .find_map(|n| get(n).filter(|t| t.shape.len() == 4));
    if let Some(first) = first {
        cfg = cfg.with_in_channels(first.shape[2].max(1));
    }
    if let Some((probe, filters)) = probe
        && let Some(t) = get(probe)
        && let Some(&out) = t.shape.last()
        && out != filters
    {
        cfg = cfg.with_depth_multiplier(out as f64 / filters as f64, 16);
    }
    if arch == Arch::InceptionV2 && get("Conv2d_1a_7x7/depthwise_weights").is_none() {
        cfg = cfg.with_separable_conv(false);
    }
    match get(logits).and_then(|t| t.shape.last().copied()) {
        Some(classes) => cfg = cfg.with_classes(classes),
        None => cfg = cfg.with_include_top(false),
    }
    let aux = cfg.include_top
        && arch.has_aux_heads()
        && sd
            .iter()
            .any(|(n, _)| n.starts_with(&format!("{scope}/AuxLogits/")));
    Ok(cfg.with_aux_logits(aux))
}

/// How a tensor's TensorFlow layout relates to ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The same (vectors).
    Same,
    /// A conv kernel: TensorFlow `[kh, kw, in, out]`, ours `[out, in, kh, kw]`.
    Conv,
    /// A dense matrix: TensorFlow `[in, out]`, ours `[out, in]`.
    Dense,
    /// A depthwise kernel: TensorFlow `[kh, kw, in, multiplier]`, ours
    /// `[in * multiplier, 1, kh, kw]`.
    Depthwise,
}

/// One parameter under both names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TfTensor {
    /// Our state-dict key (`S.weight`).
    pub ours: String,
    /// TensorFlow's variable name (`S/weights`).
    pub tf: String,
    /// Its shape in TensorFlow's layout.
    pub tf_shape: Vec<usize>,
    /// How the layouts relate.
    pub layout: Layout,
}

/// Every parameter of `graph` with its TensorFlow name, in the graph's order.
pub fn tensors(graph: &Graph) -> Vec<TfTensor> {
    let mut out = Vec::new();
    for n in graph.nodes() {
        // The separable conv `S`'s halves store their tensors under `S` itself.
        let (scope, weights) = match n.name.rsplit_once('/') {
            Some((s, "depthwise")) => (s, "depthwise_weights"),
            Some((s, "pointwise")) => (s, "pointwise_weights"),
            _ => (n.name.as_str(), "weights"),
        };
        let mut push = |suffix: &str, tf: &str, tf_shape: Vec<usize>, layout| {
            out.push(TfTensor {
                ours: format!("{}.{suffix}", n.name),
                tf: format!("{scope}/{tf}"),
                tf_shape,
                layout,
            });
        };
        match &n.op {
            Op::Conv2d(c) if c.groups > 1 => {
                let [kh, kw] = c.kernel;
                let multiplier = c.filters / c.in_channels.max(1);
                push(
                    "weight",
                    weights,
                    vec![kh, kw, c.in_channels, multiplier],
                    Layout::Depthwise,
                );
                if c.bias {
                    push("bias", "biases", vec![c.filters], Layout::Same);
                }
            }
            Op::Conv2d(c) => {
                let [kh, kw] = c.kernel;
                push(
                    "weight",
                    weights,
                    vec![kh, kw, c.in_channels, c.filters],
                    Layout::Conv,
                );
                if c.bias {
                    push("bias", "biases", vec![c.filters], Layout::Same);
                }
            }
            Op::Dense(d) => {
                push(
                    "weight",
                    "weights",
                    vec![d.in_features, d.units],
                    Layout::Dense,
                );
                if d.bias {
                    push("bias", "biases", vec![d.units], Layout::Same);
                }
            }
            Op::BatchNorm(b) => {
                let c = b.channels;
                if b.scale {
                    push("weight", "gamma", vec![c], Layout::Same);
                }
                push("bias", "beta", vec![c], Layout::Same);
                push("running_mean", "moving_mean", vec![c], Layout::Same);
                push("running_var", "moving_variance", vec![c], Layout::Same);
            }
            _ => {}
        }
    }
    out
}

/// `tf` (TensorFlow names and layouts) as a state dict in ours, for `graph`. Tensors the graph
/// does not have are left out (the aux head's, when it is not built); a missing or mis-shaped one
/// is an error naming it.
pub fn from_tf(graph: &Graph, tf: &StateDict) -> Result<StateDict> {
    let mut sd = StateDict::new(tf.format);
    sd.metadata = tf.metadata.clone();
    let mut missing = Vec::new();
    let mut mis_shaped = Vec::new();
    for t in tensors(graph) {
        let Some(w) = tf.get(&t.tf) else {
            missing.push(t.tf);
            continue;
        };
        if w.shape != t.tf_shape || w.data.len() != t.tf_shape.iter().product::<usize>() {
            mis_shaped.push(format!(
                "`{}` is {:?} in the file, {:?} in the model",
                t.tf, w.shape, t.tf_shape
            ));
            continue;
        }
        let (shape, data) = match t.layout {
            Layout::Same => (w.shape.clone(), w.data.clone()),
            Layout::Conv => {
                let [kh, kw, i, o] = [w.shape[0], w.shape[1], w.shape[2], w.shape[3]];
                (
                    vec![o, i, kh, kw],
                    permute(&w.data, [kh, kw, i, o], [3, 2, 0, 1]),
                )
            }
            Layout::Dense => {
                let [i, o] = [w.shape[0], w.shape[1]];
                (vec![o, i], permute(&w.data, [1, 1, i, o], [0, 1, 3, 2]))
            }
            Layout::Depthwise => {
                let [kh, kw, i, m] = [w.shape[0], w.shape[1], w.shape[2], w.shape[3]];
                (
                    vec![i * m, 1, kh, kw],
                    permute(&w.data, [kh, kw, i, m], [2, 3, 0, 1]),
                )
            }
        };
        sd.insert(t.ours, WeightTensor::new(shape, data, w.dtype));
    }
    fits(graph, missing, mis_shaped)?;
    Ok(sd)
}

/// `sd` (our names and layouts) under TensorFlow's names and layouts, for `graph`.
pub fn to_tf(graph: &Graph, sd: &StateDict) -> Result<StateDict> {
    let mut tf = StateDict::new(sd.format);
    tf.metadata = sd.metadata.clone();
    let mut missing = Vec::new();
    let mut mis_shaped = Vec::new();
    let ours: std::collections::HashMap<String, Vec<usize>> =
        graph.state_dict_shapes().into_iter().collect();
    for t in tensors(graph) {
        let Some(w) = sd.get(&t.ours) else {
            missing.push(t.ours);
            continue;
        };
        let want = ours.get(&t.ours).cloned().unwrap_or_default();
        if w.shape != want || w.data.len() != want.iter().product::<usize>() {
            mis_shaped.push(format!(
                "`{}` is {:?} in the weights, {want:?} in the model",
                t.ours, w.shape
            ));
            continue;
        }
        let data = match t.layout {
            Layout::Same => w.data.clone(),
            Layout::Conv => {
                let [o, i, kh, kw] = [w.shape[0], w.shape[1], w.shape[2], w.shape[3]];
                permute(&w.data, [o, i, kh, kw], [2, 3, 1, 0])
            }
            Layout::Dense => {
                let [o, i] = [w.shape[0], w.shape[1]];
                permute(&w.data, [1, 1, o, i], [0, 1, 3, 2])
            }
            Layout::Depthwise => {
                let [kh, kw, i, m] = [t.tf_shape[0], t.tf_shape[1], t.tf_shape[2], t.tf_shape[3]];
                permute(&w.data, [i, m, kh, kw], [2, 3, 0, 1])
            }
        };
        tf.insert(t.tf, WeightTensor::new(t.tf_shape, data, w.dtype));
    }
    fits(graph, missing, mis_shaped)?;
    Ok(tf)
}

/// TF-slim's 1001-class classifiers (class 0 is "background") cut to ImageNet's 1000 classes, as
/// timm's `tf_in1k` ports do: every tensor under a `Logits/` or `AuxLogits/` scope whose last
/// dimension is 1001 loses its first entry along it. Other tensors are kept as they are.
pub fn drop_background(sd: &StateDict) -> StateDict {
    drop_class_zero(sd, false)
}

/// [`drop_background`] for a TF-slim layout's state dict in our names and PyTorch's layouts,
/// where the classes are a classifier's first dimension (`[1001, features, 1, 1]`, `[1001]`).
pub fn drop_background_rows(sd: &StateDict) -> StateDict {
    drop_class_zero(sd, true)
}

/// The heads' tensors without class 0, along their first or last dimension.
fn drop_class_zero(sd: &StateDict, first: bool) -> StateDict {
    let mut out = StateDict::new(sd.format);
    out.metadata = sd.metadata.clone();
    for (name, t) in sd.iter() {
        let head = name.contains("/Logits/") || name.contains("/AuxLogits/");
        let axis = if first {
            0
        } else {
            t.shape.len().saturating_sub(1)
        };
        let t = match t.shape.get(axis) {
            Some(&1001) if head => {
                let mut shape = t.shape.clone();
                shape[axis] = 1000;
                // Row-major: `outer` blocks of 1001 `inner`-long runs; each block loses its first.
                let inner: usize = t.shape[axis + 1..].iter().product();
                let data = t
                    .data
                    .chunks_exact(1001 * inner)
                    .flat_map(|block| block[inner..].iter().copied())
                    .collect();
                WeightTensor::new(shape, data, t.dtype)
            }
            _ => t.clone(),
        };
        out.insert(name.to_string(), t);
    }
    out
}

/// `Ok` when a renaming for `graph` found every tensor with its shape, else the mismatch by name.
pub(super) fn fits(graph: &Graph, missing: Vec<String>, mis_shaped: Vec<String>) -> Result<()> {
    if missing.is_empty() && mis_shaped.is_empty() {
        return Ok(());
    }
    Err(WeightsFault::Mismatch {
        model: graph.name().to_string(),
        missing,
        unexpected: Vec::new(),
        mis_shaped,
    }
    .into())
}

/// Whether `sd` is named the TensorFlow way (`…/weights`, `…/moving_mean`).
pub fn is_tf(sd: &StateDict) -> bool {
    sd.iter()
        .any(|(n, _)| n.ends_with("/weights") || n.ends_with("/moving_mean"))
}

/// A 4-D row-major array of dimensions `dims`, with its axes reordered so that output axis `a`
/// is input axis `order[a]`.
fn permute(data: &[f32], dims: [usize; 4], order: [usize; 4]) -> Vec<f32> {
    let out_dims = order.map(|a| dims[a]);
    let mut strides = [0usize; 4];
    let mut s = 1;
    for a in (0..4).rev() {
        strides[a] = s;
        s *= dims[a];
    }
    let step = order.map(|a| strides[a]);
    let mut out = Vec::with_capacity(data.len());
    for i0 in 0..out_dims[0] {
        for i1 in 0..out_dims[1] {
            for i2 in 0..out_dims[2] {
                let base = i0 * step[0] + i1 * step[1] + i2 * step[2];
                out.extend((0..out_dims[3]).map(|i3| data[base + i3 * step[3]]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mis_shaped_weights_are_errors_not_panics() {
        use crate::models::{Arch, ModelConfig};
        use crate::weights::{DType, Format};
        let graph = ModelConfig::new(Arch::InceptionV1Slim).graph().unwrap();
        let mut sd = StateDict::new(Format::Safetensors);
        for (name, shape) in graph.state_dict_shapes() {
            let n = shape.iter().product();
            sd.insert(name, WeightTensor::new(shape, vec![0.0; n], DType::F32));
        }
        assert!(to_tf(&graph, &sd).is_ok());
        // A kernel with too few values (a reader bug or a hostile file) must not reach permute.
        sd.insert(
            "InceptionV1/Conv2d_1a_7x7.weight".into(),
            WeightTensor::new(vec![64, 3, 7, 7], vec![0.0; 10], DType::F32),
        );
        let e = to_tf(&graph, &sd).unwrap_err().to_string();
        assert!(e.contains("Conv2d_1a_7x7"), "{e}");
    }

    #[test]
    fn permute_reorders_axes() {
        // [2, 3] → [3, 2] through the 4-D helper.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(
            permute(&a, [1, 1, 2, 3], [0, 1, 3, 2]),
            vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
        );
        // HWIO → OIHW and back is the identity.
        let x: Vec<f32> = (0..2 * 3 * 4 * 5).map(|v| v as f32).collect();
        let oihw = permute(&x, [2, 3, 4, 5], [3, 2, 0, 1]);
        assert_eq!(permute(&oihw, [5, 4, 2, 3], [2, 3, 1, 0]), x);
        // One element by hand: HWIO[h=1][w=2][i=3][o=4] is OIHW[4][3][1][2].
        let hwio = |h: usize, w: usize, i: usize, o: usize| ((h * 3 + w) * 4 + i) * 5 + o;
        let oihw_at = |o: usize, i: usize, h: usize, w: usize| ((o * 4 + i) * 2 + h) * 3 + w;
        assert_eq!(oihw[oihw_at(4, 3, 1, 2)], x[hwio(1, 2, 3, 4)]);
    }
}
