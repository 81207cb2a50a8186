//! timm's names for the TF-slim layouts it ports: `inception_v4` and `inception_resnet_v2`
//! (`timm/models/inception_v4.py`, `inception_resnet_v2.py`; the `tf_in1k` weights), and
//! `inception_v3` (`timm/models/inception_v3.py`, torchvision's layout and names; its `tf_in1k`
//! weights are TF-slim's). timm builds the same layers in the same order as TF-slim, with
//! BatchNorm's γ (all ones in the ported weights) and 1000 classes, so the model is the TF-slim
//! layout with [`ModelConfig::batch_norm_scale`] on; a conv `BasicConv2d` `P` stores
//! `P.conv.weight` and `P.bn.{weight, bias, running_mean, running_var}`, a residual block's
//! projection `P` stores `P.weight` and `P.bias`, and Inception v3's classifier (a 1x1
//! convolution in TF-slim) is the Linear layer `fc`.
//!
//! One difference is architectural, not a name: TF-slim's 3x3 average pools divide by the
//! pixels inside the image, torchvision's (and timm's) by 9, so at the border of the 35x35,
//! 17x17 and 8x8 maps an Inception v3 in torchvision's layout computes slightly different
//! activations from the same weights, as timm's port of these weights does.
//!
//! ```
//! use inception::models::{Arch, ModelConfig};
//! use inception::weights::timm_names;
//!
//! let cfg = timm_names::config(Arch::InceptionV4).unwrap();
//! assert!(cfg.batch_norm_scale && cfg.classes == 1000);
//! let names = timm_names::tensors(&cfg.graph().unwrap()).unwrap();
//! assert_eq!(names[0], ("InceptionV4/Conv2d_1a_3x3.weight".into(), "features.0.conv.weight".into()));
//! ```

use super::{StateDict, WeightTensor};
use crate::error::{Result, WeightsFault};
use crate::graph::{Graph, Op};
use crate::models::{Arch, ModelConfig};

/// timm's module names of `arch`'s convs in creation order, each with whether it is a
/// `BasicConv2d` (conv + BatchNorm) rather than a plain conv with bias, and the classifier's.
fn modules(arch: Arch) -> Option<(Vec<(String, bool)>, &'static str)> {
    let mut v: Vec<(String, bool)> = Vec::new();
    // `n` BasicConv2ds `{p}.0` … `{p}.{n-1}` (an nn.Sequential).
    fn seq(v: &mut Vec<(String, bool)>, p: &str, n: usize) {
        v.extend((0..n).map(|j| (format!("{p}.{j}"), true)));
    }
    fn one(v: &mut Vec<(String, bool)>, p: String) {
        v.push((p, true));
    }
    match arch {
        Arch::InceptionV4 => {
            for i in 0..3 {
                one(&mut v, format!("features.{i}"));
            }
            one(&mut v, "features.3.conv".into());
            seq(&mut v, "features.4.branch0", 2);
            seq(&mut v, "features.4.branch1", 4);
            one(&mut v, "features.5.conv".into());
            for i in 6..10 {
                one(&mut v, format!("features.{i}.branch0"));
                seq(&mut v, &format!("features.{i}.branch1"), 2);
                seq(&mut v, &format!("features.{i}.branch2"), 3);
                one(&mut v, format!("features.{i}.branch3.1"));
            }
            one(&mut v, "features.10.branch0".into());
            seq(&mut v, "features.10.branch1", 3);
            for i in 11..18 {
                one(&mut v, format!("features.{i}.branch0"));
                seq(&mut v, &format!("features.{i}.branch1"), 3);
                seq(&mut v, &format!("features.{i}.branch2"), 5);
                one(&mut v, format!("features.{i}.branch3.1"));
            }
            seq(&mut v, "features.18.branch0", 2);
            seq(&mut v, "features.18.branch1", 4);
            for i in 19..22 {
                for b in [
                    "branch0",
                    "branch1_0",
                    "branch1_1a",
                    "branch1_1b",
                    "branch2_0",
                    "branch2_1",
                    "branch2_2",
                    "branch2_3a",
                    "branch2_3b",
                    "branch3.1",
                ] {
                    one(&mut v, format!("features.{i}.{b}"));
                }
            }
            Some((v, "last_linear"))
        }
        Arch::InceptionResNetV2 => {
            for p in [
                "conv2d_1a",
                "conv2d_2a",
                "conv2d_2b",
                "conv2d_3b",
                "conv2d_4a",
            ] {
                one(&mut v, p.into());
            }
            one(&mut v, "mixed_5b.branch0".into());
            seq(&mut v, "mixed_5b.branch1", 2);
            seq(&mut v, "mixed_5b.branch2", 3);
            one(&mut v, "mixed_5b.branch3.1".into());
            // A residual block: its branches, then the projection `conv2d` (bias, no BN).
            fn residual(v: &mut Vec<(String, bool)>, scope: &str, b1: usize, b2: usize) {
                one(v, format!("{scope}.branch0"));
                seq(v, &format!("{scope}.branch1"), b1);
                seq(v, &format!("{scope}.branch2"), b2);
                v.push((format!("{scope}.conv2d"), false));
            }
            for i in 0..10 {
                residual(&mut v, &format!("repeat.{i}"), 2, 3);
            }
            one(&mut v, "mixed_6a.branch0".into());
            seq(&mut v, "mixed_6a.branch1", 3);
            for i in 0..20 {
                residual(&mut v, &format!("repeat_1.{i}"), 3, 0);
            }
            seq(&mut v, "mixed_7a.branch0", 2);
            seq(&mut v, "mixed_7a.branch1", 2);
            seq(&mut v, "mixed_7a.branch2", 3);
            for i in 0..9 {
                residual(&mut v, &format!("repeat_2.{i}"), 3, 0);
            }
            residual(&mut v, "block8", 3, 0);
            one(&mut v, "conv2d_7b".into());
            Some((v, "classif"))
        }
        Arch::InceptionV3Slim => {
            // timm's `inception_v3` is torchvision's layout, which `inception-v3` builds with
            // the same names: its BasicConv2ds (`{P}.conv`) in the order TF-slim builds the same
            // convolutions (the aux head aside, which timm leaves out), then TF-slim's
            // classifier, a 1x1 convolution with a bias, as timm's `fc`.
            let torchvision = ModelConfig::new(Arch::InceptionV3)
                .with_aux_logits(false)
                .graph()
                .ok()?;
            for n in torchvision.nodes() {
                if let (Op::Conv2d(_), Some(p)) = (&n.op, n.name.strip_suffix(".conv")) {
                    one(&mut v, p.into());
                }
            }
            v.push(("fc".into(), false));
            Some((v, "fc"))
        }
        _ => None,
    }
}

/// The configuration timm's weights of `arch` fit: the TF-slim layout with BatchNorm's γ, 1000
/// classes, no aux head. `None` for an architecture timm does not port this way.
pub fn config(arch: Arch) -> Option<ModelConfig> {
    modules(arch)?;
    Some(
        ModelConfig::new(arch)
            .with_batch_norm_scale(true)
            .with_classes(1000),
    )
}

/// Every tensor of `graph` (a TF-slim layout of Inception v4 or Inception-ResNet-v2 with
/// BatchNorm's γ, no aux head) as `(our name, timm's name)`, in the graph's order. An error names
/// what does not fit timm's module list.
pub fn tensors(graph: &Graph) -> Result<Vec<(String, String)>> {
    let arch = Arch::ALL
        .into_iter()
        .find(|a| a.name() == graph.name())
        .and_then(|a| modules(a).map(|m| (a, m)));
    let Some((arch, (convs, classifier))) = arch else {
        return Err(WeightsFault::Other(format!(
            "{}: timm's names exist for inception-v3-slim, inception-v4 and \
             inception-resnet-v2 only",
            graph.name()
        ))
        .into());
    };
    let nodes = graph.nodes();
    let mut out = Vec::new();
    let mut next = convs.iter();
    for (i, n) in nodes.iter().enumerate() {
        match &n.op {
            Op::Conv2d(_) => {
                let Some((p, basic)) = next.next() else {
                    return Err(unfit(arch, &n.name));
                };
                // A BasicConv2d is a conv whose one consumer is a BatchNorm.
                let bn = nodes
                    .iter()
                    .find(|m| m.inputs == [i] && matches!(m.op, Op::BatchNorm(_)));
                if bn.is_some() != *basic {
                    return Err(unfit(arch, &n.name));
                }
                if *basic {
                    out.push((format!("{}.weight", n.name), format!("{p}.conv.weight")));
                } else {
                    out.push((format!("{}.weight", n.name), format!("{p}.weight")));
                    out.push((format!("{}.bias", n.name), format!("{p}.bias")));
                }
                if let Some(bn) = bn {
                    let Op::BatchNorm(spec) = &bn.op else {
                        continue;
                    };
                    let suffixes: &[&str] = if spec.scale {
                        &["weight", "bias", "running_mean", "running_var"]
                    } else {
                        &["bias", "running_mean", "running_var"]
                    };
                    for s in suffixes {
                        out.push((format!("{}.{s}", bn.name), format!("{p}.bn.{s}")));
                    }
                }
            }
            Op::Dense(_) => {
                for s in ["weight", "bias"] {
                    out.push((format!("{}.{s}", n.name), format!("{classifier}.{s}")));
                }
            }
            _ => {}
        }
    }
    if next.next().is_some() {
        return Err(unfit(arch, "the end of the graph"));
    }
    Ok(out)
}

fn unfit(arch: Arch, layer: &str) -> crate::Error {
    WeightsFault::Other(format!(
        "{arch}: layer `{layer}` does not line up with timm's modules (build the model with \
         batch_norm_scale and without aux heads for timm's weights)"
    ))
    .into()
}

/// `net` (built from `cfg`, a TF-slim layout of Inception v4 or Inception-ResNet-v2) under
/// timm's names: BatchNorm's γ is written as ones where the model has none (TF-slim's weights, as
/// timm's ports store them) and the aux head is left out (timm has none).
pub fn export(net: &crate::network::Network, cfg: &ModelConfig) -> Result<StateDict> {
    let timm = cfg
        .clone()
        .with_batch_norm_scale(true)
        .with_aux_logits(false);
    let graph = timm.graph()?;
    let mut sd = super::export(net, cfg);
    for (name, shape) in graph.state_dict_shapes() {
        if sd.get(&name).is_none() && name.ends_with("/BatchNorm.weight") {
            let n = shape.iter().product();
            sd.insert(
                name,
                WeightTensor::new(shape, vec![1.0; n], super::DType::F32),
            );
        }
    }
    let mut out = to_timm(&graph, &sd)?;
    if cfg.arch == Arch::InceptionV3Slim {
        // A classifier that TF-slim computes as a 1x1 convolution is a Linear layer in timm:
        // `[classes, features, 1, 1]` becomes `[classes, features]`.
        if let Some(fc) = out.get("fc.weight")
            && let [c, k, 1, 1] = fc.shape[..]
        {
            let fc = WeightTensor::new(vec![c, k], fc.data.to_vec(), fc.dtype);
            out.insert("fc.weight".into(), fc);
        }
        // The file is torchvision's layout now, and says so.
        let mut tv = timm.clone();
        tv.arch = Arch::InceptionV3;
        tv.batch_norm_scale = false;
        tv.check()?;
        out.metadata.insert(
            super::CONFIG_KEY.to_string(),
            serde_json::to_string(&tv).map_err(|e| WeightsFault::Other(e.to_string()))?,
        );
    }
    Ok(out)
}

/// `sd` in timm's names as our state dict for `graph` (same layouts: PyTorch's). Missing tensors
/// are named in the error; timm's `num_batches_tracked` counters are dropped.
pub fn from_timm(graph: &Graph, sd: &StateDict) -> Result<StateDict> {
    rename(graph, sd, |(ours, theirs)| (theirs, ours))
}

/// Our state dict for `graph` under timm's names.
pub fn to_timm(graph: &Graph, sd: &StateDict) -> Result<StateDict> {
    rename(graph, sd, |pair| pair)
}

fn rename(
    graph: &Graph,
    sd: &StateDict,
    direction: impl Fn((String, String)) -> (String, String),
) -> Result<StateDict> {
    let mut out = StateDict::new(sd.format);
    out.metadata = sd.metadata.clone();
    let mut missing = Vec::new();
    for pair in tensors(graph)? {
        let (from, to) = direction(pair);
        match sd.get(&from) {
            Some(t) => out.insert(to, WeightTensor::clone(t)),
            None => missing.push(from),
        }
    }
    super::tf_names::fits(graph, missing, Vec::new())?;
    Ok(out)
}

/// The timm architecture a state dict in timm's names is, with its classes (`None` when the
/// names are not timm's Inception v4 / Inception-ResNet-v2).
pub fn detect(sd: &StateDict) -> Option<ModelConfig> {
    let (arch, classifier) = if sd.get("features.0.conv.weight").is_some()
        && sd.get("features.21.branch3.1.conv.weight").is_some()
    {
        (Arch::InceptionV4, "last_linear.weight")
    } else if sd.get("conv2d_1a.conv.weight").is_some() && sd.get("block8.conv2d.weight").is_some()
    {
        (Arch::InceptionResNetV2, "classif.weight")
    } else {
        return None;
    };
    let cfg = config(arch)?;
    let first = sd
        .iter()
        .find(|(n, _)| *n == "features.0.conv.weight" || *n == "conv2d_1a.conv.weight");
    let cfg = match first.and_then(|(_, t)| t.shape.get(1).copied()) {
        Some(c) => cfg.with_in_channels(c),
        None => cfg,
    };
    Some(match sd.get(classifier) {
        Some(t) => cfg.with_classes(t.shape.first().copied().unwrap_or(1000)),
        None => cfg.with_include_top(false),
    })
}
