//! Transfer learning: a pretrained network as a frozen feature extractor with a new head for
//! your classes (the TF-Hub example), optionally unfreezing its top blocks.

use std::collections::HashSet;

use burn::module::Module;
use burn::tensor::Device;

use crate::data::Preset;
use crate::error::{Error, Result};
use crate::models::ModelConfig;
use crate::network::Network;
use crate::predict::{LoadOptions, open};
use crate::weights;

/// Which part of a pretrained network stays fixed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Freeze {
    /// Everything but the new head (the feature-extractor setting).
    Backbone,
    /// Nothing: fine-tune the whole network.
    None,
    /// The network up to and including this block (e.g. `inception4e`, `Mixed_6e`).
    Until(String),
}

impl Freeze {
    /// Parses `backbone`, `none` or `until:BLOCK`.
    pub fn parse(s: &str) -> Result<Freeze> {
        match s {
            "backbone" | "all" => Ok(Freeze::Backbone),
            "none" => Ok(Freeze::None),
            _ => match s
                .strip_prefix("until:")
                .or_else(|| s.strip_prefix("until="))
            {
                Some(block) if !block.is_empty() => Ok(Freeze::Until(block.to_string())),
                _ => Err(Error::unknown(
                    crate::error::NameKind::Freeze,
                    s,
                    None,
                    ["backbone", "none", "until:BLOCK"],
                )),
            },
        }
    }
}

/// A pretrained network under a new head, ready for [`crate::train::Trainer::with_network`].
#[derive(Debug)]
pub struct FineTune {
    /// The network on an autodiff device: pretrained backbone (frozen as asked), fresh head.
    pub network: Network,
    /// Its configuration (the pretrained architecture with `classes` outputs).
    pub model: ModelConfig,
    /// The pretrained weights' preprocessing.
    pub preset: Preset,
    /// Tensors taken from the pretrained weights.
    pub pretrained_tensors: usize,
    /// Graph nodes frozen (counted from the input).
    pub frozen_nodes: usize,
}

/// Opens `weights` (file or registry name), keeps its backbone and puts a new `classes`-way
/// head on it (global average pooling, dropout, a freshly initialised classifier; no aux
/// heads), frozen as `freeze` says, on `device` (made autodiff). The head is initialised from
/// `seed`, so a fine-tuning run is reproducible.
pub fn prepare(
    weights: &str,
    options: &LoadOptions,
    classes: usize,
    freeze: &Freeze,
    seed: u64,
    device: &Device,
) -> Result<FineTune> {
    let opened = open(weights, options, |cfg| {
        cfg.with_aux_logits(false)
            .with_include_top(false)
            .with_pooling(None)
    })?;
    let backbone_cfg = opened.loaded.config.clone().ok_or_else(|| {
        Error::config_of(
            opened.path.display(),
            "model",
            "",
            "fine-tuning needs a built-in architecture (googlenet, inception-v3, …); this \
             file is an ONNX or .keras graph",
        )
    })?;
    // The new head outputs logits (training needs them; a Keras backbone's softmax top is not
    // kept), and the classifier applies the softmax.
    let model = backbone_cfg
        .with_include_top(true)
        .with_classes(classes)
        .with_aux_logits(false)
        .with_softmax(false);
    let device = device.clone().autodiff();
    // The new network on the training device; the backbone's tensors are copied into it by
    // name, the head keeps its fresh initialisation.
    device.seed(seed);
    let mut network = model.init(&device)?;
    let mut sd = weights::state_dict(&opened.loaded.network);
    let pretrained_tensors = sd.len();
    for (name, t) in weights::state_dict(&network).iter() {
        if sd.get(name).is_none() {
            sd.insert(name.to_string(), t.clone());
        }
    }
    weights::load_into(&mut network, &sd, &HashSet::new())?;
    let graph = network.graph().clone();
    let frozen_nodes = match freeze {
        Freeze::None => 0,
        Freeze::Backbone => {
            // Everything before the head: the nodes of the backbone graph.
            let backbone = model
                .clone()
                .with_include_top(false)
                .with_pooling(None)
                .graph()?;
            backbone.nodes.len()
        }
        Freeze::Until(block) => graph.resolve(block)? + 1,
    };
    let network = network.set_require_grad(true).freeze_first(frozen_nodes);
    Ok(FineTune {
        network,
        model,
        preset: opened.preset,
        pretrained_tensors,
        frozen_nodes,
    })
}
