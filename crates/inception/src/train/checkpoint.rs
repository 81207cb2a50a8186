//! Training checkpoints: everything a run needs to continue exactly — the weights (with their
//! parameter identities), the optimizer state, the moving average, the epoch and step counts
//! and the history — in one safetensors file, replaced atomically after every epoch.
//!
//! The schedule is a function of the epoch, and every random draw (shuffling, augmentation,
//! dropout) is seeded from `(seed, epoch, …)`, so restoring these is restoring the run.

use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Bytes, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::ema::Ema;
use super::optimizer::build_optimizer;
use super::trainer::{EpochStats, Trainer};
use super::{TRAIN_KEY, TrainConfig};
use crate::data::CLASSES_KEY;
use crate::error::{Error, FormatError, Result};
use crate::files::write_atomic;
use crate::network::Network;
use crate::weights::{self, StateDict};

// The metadata key of the parameters' identities in visiting order (the optimizer state is
// keyed by them), the byte tensor of the optimizer record and the moving average's prefix:
// shared with the safetensors reader, which reads a checkpoint as model weights.
use crate::weights::safetensors::{EMA_PREFIX, OPTIMIZER_TENSOR, PARAM_IDS_KEY};

#[derive(Serialize, Deserialize)]
struct State {
    config: TrainConfig,
    history: Vec<EpochStats>,
    epoch: usize,
    step: usize,
    #[serde(default)]
    frozen_nodes: usize,
    #[serde(default)]
    frozen_batchnorms: bool,
    #[serde(default)]
    ema_updates: u64,
}

/// Writes `trainer`'s complete state to `path` (atomically: a run killed while writing leaves
/// the previous checkpoint intact). The file also loads as ordinary weights.
pub fn save_checkpoint(path: &Path, trainer: &Trainer, classes: &[String]) -> Result<()> {
    let cfg = &trainer.config;
    let mut sd = super::model_file(&trainer.network, cfg, classes);
    if let Some(ema) = &trainer.ema {
        for (name, t) in ema.state_dict().iter() {
            sd.insert(format!("{EMA_PREFIX}{name}"), t.clone());
        }
    }
    let state = State {
        config: cfg.clone(),
        history: trainer.history.clone(),
        epoch: trainer.epoch,
        step: trainer.step,
        frozen_nodes: trainer.frozen_nodes,
        frozen_batchnorms: trainer.frozen_batchnorms,
        ema_updates: trainer.ema.as_ref().map_or(0, |e| e.updates),
    };
    sd.metadata
        .insert(TRAIN_KEY.into(), serde_json::json!(state).to_string());
    sd.metadata.insert(
        PARAM_IDS_KEY.into(),
        serde_json::json!(param_ids(&trainer.network)).to_string(),
    );
    let optim = trainer.optimizer_bytes().map_err(|e| e.in_file(path))?;
    let bytes = weights::safetensors::to_bytes_with_blobs(&sd, &[(OPTIMIZER_TENSOR, &optim)])?;
    write_atomic(path, &bytes)
}

/// Restores a trainer (on `device`, made autodiff) and the class names from a checkpoint.
pub fn load_checkpoint(path: &Path, device: &Device) -> Result<(Trainer, Vec<String>)> {
    let bad = |why: FormatError| Error::format(why.at("not a training checkpoint")).in_file(path);
    let bytes = crate::files::read_regular(path, crate::files::MAX_WEIGHTS_FILE_BYTES)?;
    let all = weights::safetensors::read_bytes(&bytes).map_err(&bad)?;
    let meta = |key: &str| {
        all.metadata
            .get(key)
            .ok_or_else(|| bad(format!("no `{key}` metadata").into()))
    };
    let state: State =
        serde_json::from_str(meta(TRAIN_KEY)?).map_err(|e| bad(e.to_string().into()))?;
    let classes: Vec<String> =
        serde_json::from_str(meta(CLASSES_KEY)?).map_err(|e| bad(e.to_string().into()))?;
    let bad_config = |e: Error| {
        Error::format(format!(
            "the checkpoint's training configuration is invalid: {e}"
        ))
        .in_file(path)
    };
    state.config.validate().map_err(bad_config)?;
    if classes.len() != state.config.model.classes {
        return Err(bad(format!(
            "{} class names for a {}-class model",
            classes.len(),
            state.config.model.classes
        )
        .into()));
    }
    let ids: Vec<u64> =
        serde_json::from_str(meta(PARAM_IDS_KEY)?).map_err(|e| bad(e.to_string().into()))?;
    let optim = weights::safetensors::read_blob(&bytes, OPTIMIZER_TENSOR).map_err(&bad)?;
    let mut model_sd = StateDict::new(all.format);
    let mut ema_sd = StateDict::new(all.format);
    for (name, t) in all.iter() {
        match name.strip_prefix(EMA_PREFIX) {
            Some(n) => ema_sd.insert(n.to_string(), t.clone()),
            None => model_sd.insert(name.to_string(), t.clone()),
        }
    }
    let device = device.clone().autodiff();
    let (network, _) = weights::load_model(&state.config.model, &model_sd, &device)?;
    let mut network =
        restore_param_ids(network.set_require_grad(true), &ids).freeze_first(state.frozen_nodes);
    if state.frozen_batchnorms {
        network = network.freeze_batchnorms();
    }
    let optim = build_optimizer(&state.config)
        .from_bytes(Bytes::from_bytes_vec(optim))
        .map_err(|e| bad(format!("optimizer state: {e}").into()))?;
    let ema = match state.config.ema_decay {
        Some(d) => {
            let plain = device.clone().without_autodiff();
            let (average, _) = weights::load_model(&state.config.model, &ema_sd, &plain)?;
            Some(Ema::from_network(average, d, state.ema_updates))
        }
        None => None,
    };
    let mut trainer = Trainer::with_network(state.config, network).map_err(bad_config)?;
    trainer.set_optimizer(optim);
    trainer.ema = ema;
    trainer.epoch = state.epoch;
    trainer.step = state.step;
    trainer.history = state.history;
    trainer.frozen_nodes = state.frozen_nodes;
    trainer.frozen_batchnorms = state.frozen_batchnorms;
    Ok((trainer, classes))
}

/// The identities of the network's float parameters, in visiting order.
fn param_ids(network: &Network) -> Vec<u64> {
    struct Ids(Vec<u64>);
    impl ModuleVisitor for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.id.val());
        }
    }
    let mut ids = Ids(Vec::new());
    network.visit(&mut ids);
    ids.0
}

/// Gives the parameters back the identities they had when saved, so that the optimizer state
/// (keyed by identity) finds them.
fn restore_param_ids(network: Network, ids: &[u64]) -> Network {
    struct SetIds<'a>(&'a [u64], usize);
    impl ModuleMapper for SetIds<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let Some(&id) = self.0.get(self.1) else {
                return param;
            };
            self.1 += 1;
            let (_, value, mapper) = param.consume();
            Param::from_mapped_value(ParamId::from(id), value, mapper)
        }
    }
    network.map(&mut SetIds(ids, 0))
}
