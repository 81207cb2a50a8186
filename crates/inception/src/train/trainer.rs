//! The training loop: batches assembled and augmented on a background thread, the objective with
//! aux heads, global-norm clipping, the schedule, evaluation every epoch.

use std::sync::mpsc::sync_channel;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::TrainConfig;
use super::augment::augment;
use super::dataset::ImageSet;
use super::evaluation::evaluate;
use super::loss::objective;
use super::optimizer::{build_optimizer, clip_global_norm, scale_grads};
use crate::data::Preset;
use crate::error::{Error, Result};
use crate::network::Network;

/// What one epoch measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    /// Mean training loss of the main head (with label smoothing, without aux terms).
    pub train_loss: f64,
    /// Training top-1 accuracy (on augmented inputs, dropout active).
    pub train_top1: f64,
    /// Validation loss (plain cross-entropy).
    pub val_loss: f64,
    /// Validation top-1 accuracy.
    pub val_top1: f64,
    /// Validation top-5 accuracy (top-k with k = min(5, classes)).
    pub val_top5: f64,
    /// Training throughput.
    pub images_per_sec: f64,
    /// Wall-clock seconds of the epoch (training and validation).
    pub seconds: f64,
}

/// What the loop reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// A training step finished.
    Step {
        /// Epoch, from 1.
        epoch: usize,
        /// Batches done in this epoch.
        batch: usize,
        /// Batches per epoch.
        batches: usize,
        /// The batch's main-head loss.
        loss: f64,
        /// The rate used.
        lr: f64,
    },
    /// An epoch finished (after its evaluation).
    Epoch(&'a EpochStats),
}

/// Trains a [`Network`] with a [`TrainConfig`].
pub struct Trainer {
    /// The configuration.
    pub config: TrainConfig,
    /// The network being trained (on an autodiff device).
    pub network: Network,
    optim: ModuleOptimizer,
    /// Epochs completed.
    pub epoch: usize,
    /// Steps completed.
    pub step: usize,
    /// One entry per completed epoch.
    pub history: Vec<EpochStats>,
    /// The moving average of the weights, when the configuration asks for one.
    pub ema: Option<super::ema::Ema>,
    /// Graph nodes kept frozen (fine-tuning), restored with a checkpoint.
    pub frozen_nodes: usize,
    /// Whether every BatchNorm layer is kept frozen (the second phase of fine-tuning),
    /// restored with a checkpoint.
    pub frozen_batchnorms: bool,
    /// Data parallelism: the devices after the first (see [`Trainer::with_devices`]).
    replicas: Vec<Device>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("model", &self.config.model.arch)
            .field("epoch", &self.epoch)
            .field("step", &self.step)
            .field("devices", &(1 + self.replicas.len()))
            .finish_non_exhaustive()
    }
}

impl Trainer {
    /// A trainer for a freshly initialised network of `config.model`, on `device` (made an
    /// autodiff device if it is not). Parameters are initialised from `config.seed`, on the CPU
    /// backend, so that a seed means the same starting weights on every device.
    ///
    /// A classifier trains on its logits: a configuration whose top ends in a softmax (the
    /// Keras layout's `classifier_activation="softmax"`) is trained and saved without it, and
    /// [`crate::predict::Classifier`] applies the softmax.
    pub fn new(mut config: TrainConfig, device: &Device) -> Result<Self> {
        config.model.softmax = false;
        config.validate()?;
        // `autodiff()` leaves an autodiff device as it is.
        let device = device.clone().autodiff();
        // Initialised on the CPU backend, then moved: a seed gives the same starting weights
        // whatever device trains.
        let cpu = Device::flex().autodiff();
        cpu.seed(config.seed);
        let network = config.model.init(&cpu)?.fork(&device);
        Ok(Self::with_network_unchecked(config, network))
    }

    /// A trainer for an existing network (fine-tuning: frozen parts stay frozen). The network
    /// must output logits (no final softmax) and `config` must be valid
    /// ([`TrainConfig::validate`]).
    pub fn with_network(config: TrainConfig, network: Network) -> Result<Self> {
        config.validate()?;
        let graph = network.graph();
        if matches!(
            graph.nodes[graph.main_output().node].op,
            crate::graph::Op::Softmax
        ) {
            return Err(Error::config_of(
                &graph.name,
                "softmax",
                "",
                "the network ends in a softmax; training needs its logits (build it with \
                 ModelConfig::with_softmax(false))",
            ));
        }
        Ok(Self::with_network_unchecked(config, network))
    }

    fn with_network_unchecked(config: TrainConfig, network: Network) -> Self {
        let optim = build_optimizer(&config);
        let ema = config.ema_decay.map(|d| super::ema::Ema::new(&network, d));
        Self {
            config,
            network,
            optim,
            epoch: 0,
            step: 0,
            history: Vec::new(),
            ema,
            frozen_nodes: 0,
            frozen_batchnorms: false,
            replicas: Vec::new(),
        }
    }

    /// Trains on `devices` (see [`crate::device::parse_devices`]); several devices train
    /// data-parallel. The first holds the master weights and the optimizer. Each batch is split
    /// into near-equal shards, one per device, and the shards' gradients are summed on the
    /// first device weighted by shard size, so that the update is the one the whole batch would
    /// give on one device — as PyTorch's `DistributedDataParallel` averages them. BatchNorm
    /// normalises each shard with its own statistics and keeps the first device's running
    /// averages (DDP's `broadcast_buffers`).
    pub fn with_devices(mut self, devices: &[Device]) -> Self {
        if let Some(first) = devices.first() {
            self.network = self.network.fork(&first.clone().autodiff());
            self.ema = self.ema.take().map(|e| e.to_device(first));
        }
        self.replicas = devices
            .iter()
            .skip(1)
            .map(|d| d.clone().autodiff())
            .collect();
        self
    }

    /// The devices training runs on, the first holding the weights.
    pub fn devices(&self) -> Vec<Device> {
        let mut all = vec![self.network_device()];
        all.extend(self.replicas.iter().cloned());
        all
    }

    /// Replaces the optimizer (a checkpoint's restored state).
    pub fn set_optimizer(&mut self, optim: ModuleOptimizer) {
        self.optim = optim;
    }

    /// The optimizer's state as bytes (Burn's record format).
    pub fn optimizer_bytes(&self) -> Result<Vec<u8>> {
        self.optim.into_bytes().map(|b| b.to_vec()).map_err(|e| {
            Error::format(crate::FormatError::from(e.to_string()).at("optimizer state"))
        })
    }

    /// The preprocessing the trained model expects (stored with its checkpoints).
    pub fn preset(&self) -> Preset {
        self.config.preset()
    }

    /// Trains for the remaining epochs of the configuration, evaluating on `val` after each;
    /// `on` sees every step and epoch and stops training by returning `false`.
    pub fn fit(
        &mut self,
        train: &ImageSet,
        val: &ImageSet,
        on: &mut dyn FnMut(Event) -> bool,
    ) -> Result<()> {
        while self.epoch < self.config.epochs {
            let Some(stats) = self.train_epoch(train, val, on)? else {
                break;
            };
            if !on(Event::Epoch(&stats)) {
                break;
            }
        }
        Ok(())
    }

    fn check_data(&self, set: &ImageSet) -> Result<()> {
        let cfg = &self.config.model;
        if set.channels != cfg.in_channels {
            return Err(Error::config(
                "image channels",
                set.channels,
                format!("{} takes {}", cfg.arch, cfg.in_channels),
            ));
        }
        if let Some(&l) = set.labels.iter().find(|&&l| l >= cfg.classes) {
            return Err(Error::config(
                "label",
                l,
                format!("out of range for a {}-class classifier", cfg.classes),
            ));
        }
        if set.is_empty() {
            return Err(Error::config(
                "images",
                0,
                "there are none to train or evaluate on",
            ));
        }
        Ok(())
    }

    /// What training itself needs beyond [`Self::check_data`]: two classes to tell apart and
    /// at least one whole batch per epoch (the last partial batch is dropped).
    fn check_training_data(&self, set: &ImageSet) -> Result<()> {
        let mut seen: Vec<usize> = set.labels.clone();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() < 2 {
            return Err(Error::config(
                "training classes",
                match set.classes.as_slice() {
                    [one] => format!("{} ('{one}')", seen.len()),
                    _ => seen.len().to_string(),
                },
                "a classifier needs at least two",
            ));
        }
        let bs = self.config.batch_size;
        if set.len() < bs {
            return Err(Error::config(
                "training images",
                set.len(),
                format!(
                    "fewer than one batch of {bs}; use a batch size of at most {} or more images",
                    set.len()
                ),
            ));
        }
        Ok(())
    }

    /// One epoch of training and its evaluation, recorded in the history. `None` when `on`
    /// stopped it part-way (the epoch is then not counted).
    pub fn train_epoch(
        &mut self,
        train: &ImageSet,
        val: &ImageSet,
        on: &mut dyn FnMut(Event) -> bool,
    ) -> Result<Option<EpochStats>> {
        self.check_data(train)?;
        self.check_training_data(train)?;
        self.check_data(val)?;
        let start = Instant::now();
        let cfg = self.config.clone();
        let epoch = self.epoch;
        let bs = cfg.batch_size.max(1);
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(
            cfg.seed,
            epoch as u64,
            0,
        )));
        // Drop the last partial batch, as PyTorch's `drop_last=True` (BatchNorm needs > 1).
        let batches = order.len() / bs;
        let out = cfg.model.input_size[0];
        let channels = train.channels;
        let device = self.network_device();
        // Dropout draws from the device's generator: seeding it per epoch makes a resumed run
        // draw exactly what an uninterrupted one would.
        for (k, d) in self.devices().iter().enumerate() {
            d.seed(mix(cfg.seed, epoch as u64, u64::MAX - k as u64));
        }
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        let mut stopped = false;
        let mut lr = cfg.schedule.lr_at(epoch as f64);
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = sync_channel::<(Vec<f32>, Vec<usize>)>(2);
            let order = &order;
            let cfg = &cfg;
            scope.spawn(move || {
                for b in 0..batches {
                    let idx = &order[b * bs..((b + 1) * bs).min(order.len())];
                    let inputs: Vec<Vec<f32>> = idx
                        .par_iter()
                        .enumerate()
                        .map(|(k, &i)| {
                            // Each image's draw depends only on (seed, epoch, position).
                            let mut rng = ChaCha8Rng::seed_from_u64(mix(
                                cfg.seed,
                                epoch as u64,
                                (b * bs + k + 1) as u64,
                            ));
                            augment(
                                train.image(i),
                                train.size,
                                channels,
                                out,
                                &cfg.augment,
                                &cfg.mean,
                                &cfg.std,
                                &mut rng,
                            )
                        })
                        .collect();
                    let labels = idx.iter().map(|&i| train.labels[i]).collect();
                    if tx.send((inputs.concat(), labels)).is_err() {
                        return;
                    }
                }
            });
            for (b, (data, labels)) in rx.into_iter().enumerate() {
                let t = epoch as f64 + b as f64 / batches as f64;
                lr = cfg.schedule.lr_at(t);
                let n = labels.len();
                // An error (divergence) drops the receiver, which stops the batch producer.
                let (loss, pred) =
                    self.apply_batch(data, &labels, [channels, out, out], lr, &device, b + 1)?;
                loss_sum += loss * n as f64;
                correct += pred.iter().zip(&labels).filter(|(p, l)| p == l).count();
                seen += n;
                if !on(Event::Step {
                    epoch: epoch + 1,
                    batch: b + 1,
                    batches,
                    loss,
                    lr,
                }) {
                    stopped = true;
                    break;
                }
            }
            Ok(())
        })?;
        if stopped {
            return Ok(None);
        }
        let train_secs = start.elapsed().as_secs_f64();
        self.epoch += 1;
        let eval = evaluate(&self.inference_network(), val, &self.preset(), 256)?;
        let stats = EpochStats {
            epoch: self.epoch,
            lr,
            train_loss: loss_sum / seen.max(1) as f64,
            train_top1: correct as f64 / seen.max(1) as f64,
            val_loss: eval.loss,
            val_top1: eval.top1,
            val_top5: eval.top5,
            images_per_sec: seen as f64 / train_secs.max(1e-9),
            seconds: start.elapsed().as_secs_f64(),
        };
        self.history.push(stats.clone());
        Ok(Some(stats))
    }

    /// One optimizer step on a preprocessed NCHW batch at learning rate `lr`: the gradients of
    /// the main loss plus the weighted aux-head losses, clipping, the update and the moving
    /// average. Returns the main head's mean loss and the predictions. A loss that is not
    /// finite is [`Error::Diverged`] (its `batch` counts the steps of the current epoch made
    /// through this method as one).
    pub fn step(&mut self, data: Vec<f32>, labels: &[usize], lr: f64) -> Result<(f64, Vec<usize>)> {
        let shape = self.network.graph().input_shape();
        let per: usize = shape.iter().product();
        if labels.is_empty() || data.len() != labels.len() * per {
            return Err(Error::Input {
                model: self.network.graph().name.clone(),
                expected: shape,
                got: vec![labels.len(), data.len() / per.max(1)],
            });
        }
        let device = self.network_device();
        self.apply_batch(data, labels, shape, lr, &device, 1)
    }

    fn apply_batch(
        &mut self,
        data: Vec<f32>,
        labels: &[usize],
        shape: [usize; 3],
        lr: f64,
        device: &Device,
        batch: usize,
    ) -> Result<(f64, Vec<usize>)> {
        let (mut grads, loss, pred) = self.gradients(data, labels, shape, device)?;
        if !loss.is_finite() {
            return Err(Error::Diverged {
                epoch: self.epoch + 1,
                batch,
                step: self.step + 1,
                loss,
            });
        }
        if let Some(max) = self.config.clip_norm {
            clip_global_norm(&self.network, &mut grads, max);
        }
        // Taken rather than cloned: the update then finds each parameter's buffer unshared.
        self.network = self.optim.step(lr, self.network.take(), grads);
        if let Some(ema) = &mut self.ema {
            ema.update(&self.network);
        }
        self.step += 1;
        Ok((loss, pred))
    }

    /// The gradients of a batch (on `device`, the network's), its mean main-head loss and the
    /// predictions: on `device` alone, or split over it and the replicas.
    fn gradients(
        &self,
        data: Vec<f32>,
        labels: &[usize],
        [c, h, w]: [usize; 3],
        device: &Device,
    ) -> Result<(GradientsParams, f64, Vec<usize>)> {
        let (smoothing, aux_weight) = (self.config.label_smoothing, self.config.aux_weight);
        let n = labels.len();
        let k = (self.replicas.len() + 1).min(n);
        if k <= 1 {
            return shard_step(
                &self.network,
                data,
                labels,
                [c, h, w],
                smoothing,
                aux_weight,
                device,
            );
        }
        let bounds: Vec<usize> = (0..=k).map(|i| i * n / k).collect();
        let per = c * h * w;
        std::thread::scope(|scope| {
            let others: Vec<_> = (1..k)
                .map(|i| {
                    let dev = &self.replicas[i - 1];
                    let net = replica(&self.network, dev);
                    let x = data[bounds[i] * per..bounds[i + 1] * per].to_vec();
                    let y = &labels[bounds[i]..bounds[i + 1]];
                    scope.spawn(move || {
                        let (g, loss, pred) =
                            shard_step(&net, x, y, [c, h, w], smoothing, aux_weight, dev)?;
                        Ok::<_, Error>((g.to_device(device, &net), loss, pred))
                    })
                })
                .collect();
            // The first shard on this thread, with the master network itself (whose BatchNorm
            // statistics it updates); then the replicas' in shard order.
            let first = shard_step(
                &self.network,
                data[..bounds[1] * per].to_vec(),
                &labels[..bounds[1]],
                [c, h, w],
                smoothing,
                aux_weight,
                device,
            )?;
            let mut shards = vec![first];
            for h in others {
                shards.push(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))?);
            }
            let (mut sum, mut mean_loss, mut pred) = (GradientsAccumulator::new(), 0.0, Vec::new());
            for (i, (mut g, loss, p)) in shards.into_iter().enumerate() {
                let weight = (bounds[i + 1] - bounds[i]) as f64 / n as f64;
                scale_grads(&self.network, &mut g, weight);
                sum.accumulate(&self.network, g);
                mean_loss += loss * weight;
                pred.extend(p);
            }
            Ok((sum.grads(), mean_loss, pred))
        })
    }

    fn network_device(&self) -> Device {
        self.network.device()
    }

    /// The trained network for inference (plain device, evaluation mode): the moving average
    /// of the weights when there is one (as both papers evaluate), else the weights.
    pub fn inference_network(&self) -> Network {
        match &self.ema {
            Some(ema) => ema.network(),
            None => self.network.valid(),
        }
    }
}

/// Forward and backward of one shard: its gradients, mean main-head loss and predictions.
fn shard_step(
    network: &Network,
    data: Vec<f32>,
    labels: &[usize],
    [c, h, w]: [usize; 3],
    smoothing: f32,
    aux_weight: f32,
    device: &Device,
) -> Result<(GradientsParams, f64, Vec<usize>)> {
    let x = Tensor::<4>::from_data(TensorData::new(data, [labels.len(), c, h, w]), device);
    let output = network.forward(x)?;
    let (total, main) = objective(&output, labels, smoothing, aux_weight);
    let pred = argmax(output.logits());
    let grads = GradientsParams::from_grads(total.backward(), network);
    Ok((grads, scalar(main), pred))
}

/// A copy of `network` on `device` for one data-parallel step: the same parameters (and
/// parameter identities, so its gradients map onto the master's), with BatchNorm running
/// statistics of its own, so that a replica's updates do not reach the master's.
fn replica(network: &Network, device: &Device) -> Network {
    network.independent_copy().fork(device)
}

/// SplitMix64 of three numbers: independent, reproducible seeds for every (epoch, image).
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn scalar<const D: usize>(t: Tensor<D>) -> f64 {
    t.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(f64::NAN)
}

pub(crate) fn argmax(logits: Tensor<2>) -> Vec<usize> {
    let [n, c] = logits.dims();
    let v = logits
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    (0..n)
        .map(|i| {
            let row = &v[i * c..(i + 1) * c];
            (0..c).fold(0, |best, j| if row[j] > row[best] { j } else { best })
        })
        .collect()
}
