//! Training and fine-tuning: the GoogLeNet recipe with auxiliary classifiers, the Inception v3
//! recipe, and the data they learn from.
//!
//! ```no_run
//! use inception::train::{ImageSet, Recipe, TrainConfig, Trainer, Event};
//! use inception::models::{Arch, ModelConfig};
//!
//! let (train, test) = ImageSet::digits()?;                       // embedded, no download
//! let model = ModelConfig::new(Arch::InceptionMini).with_aux_logits(true);
//! let config = TrainConfig::recipe(Recipe::Digits, model, &train);
//! let mut trainer = Trainer::new(config, &Default::default())?;
//! trainer.fit(&train, &test, &mut |e| {
//!     if let Event::Epoch(s) = e { println!("epoch {}: {:.2}%", s.epoch, 100.0 * s.val_top1); }
//!     true
//! })?;
//! # Ok::<(), inception::Error>(())
//! ```

pub mod augment;
pub mod checkpoint;
pub mod dataset;
pub mod ema;
pub mod evaluation;
pub mod finetune;
pub mod loss;
pub mod optimizer;
pub mod report;
pub mod runs;
pub mod schedule;
pub mod trainer;
pub mod update;

use std::path::Path;

use burn::module::Module;
use serde::{Deserialize, Serialize};

pub use augment::Augment;
pub use checkpoint::{load_checkpoint, save_checkpoint};
pub use dataset::ImageSet;
pub use ema::Ema;
pub use evaluation::{Evaluation, evaluate, evaluate_folder};
pub use finetune::{FineTune, Freeze};
pub use loss::{cross_entropy, objective};
pub use optimizer::{build_optimizer, clip_global_norm};
pub use schedule::{Decay, Schedule};
pub use trainer::{EpochStats, Event, Trainer};

use crate::data::{CLASSES_KEY, PREPROCESSING_KEY, Preset};
use crate::error::Result;
use crate::models::ModelConfig;
use crate::network::Network;

/// The metadata key of the training configuration and history in a checkpoint.
pub const TRAIN_KEY: &str = "inception.train";

/// Which optimizer, with PyTorch's semantics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerKind {
    /// `torch.optim.SGD(momentum=m, dampening=0, nesterov=…)`.
    Sgd {
        /// Momentum (0.9).
        momentum: f64,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// `torch.optim.RMSprop(alpha=…, eps=…, momentum=…)` (the Inception v3 paper: decay 0.9,
    /// ε 1.0).
    RmsProp {
        /// Decay of the squared-gradient average (0.9).
        alpha: f32,
        /// ε added to the root (1.0).
        eps: f32,
        /// Momentum (0.9).
        momentum: f32,
    },
    /// `torch.optim.AdamW(betas=(β1, β2), eps=…)`.
    AdamW {
        /// β1 (0.9).
        beta1: f32,
        /// β2 (0.999).
        beta2: f32,
        /// ε (1e-8).
        eps: f32,
    },
}

impl OptimizerKind {
    /// Parses `sgd`, `nesterov`, `rmsprop` or `adamw` with PyTorch's usual settings (momentum
    /// 0.9; RMSprop as the Inception v3 paper: decay 0.9, ε 1.0; AdamW β 0.9/0.999, ε 1e-8).
    pub fn parse(name: &str) -> Result<OptimizerKind> {
        Ok(match name {
            "sgd" => OptimizerKind::Sgd {
                momentum: 0.9,
                nesterov: false,
            },
            "nesterov" => OptimizerKind::Sgd {
                momentum: 0.9,
                nesterov: true,
            },
            "rmsprop" => OptimizerKind::RmsProp {
                alpha: 0.9,
                eps: 1.0,
                momentum: 0.9,
            },
            "adamw" => OptimizerKind::AdamW {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
            _ => {
                return Err(crate::Error::unknown(
                    crate::error::NameKind::Optimizer,
                    name,
                    None,
                    ["sgd", "nesterov", "rmsprop", "adamw"],
                ));
            }
        })
    }
}

/// Bundled hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipe {
    /// The embedded digits on `inception-mini`: SGD with Nesterov momentum at 0.05 (0.02 for
    /// the full-size architectures), warm-up and cosine decay, gradient norm clipped at 5, mild
    /// crops, aux weight 0.3.
    Digits,
    /// GoogLeNet's paper: SGD momentum 0.9, rate ×0.96 every 8 epochs, aux losses × 0.3,
    /// random crops of 8–100% with aspect 3/4–4/3, flips, photometric distortion, Polyak
    /// averaging (EMA 0.9999) for evaluation.
    GoogLeNetPaper,
    /// Inception v3's paper: RMSprop (decay 0.9, ε 1.0) at 0.045, ×0.94 every 2 epochs,
    /// gradient clipping at 2.0, label smoothing 0.1, aux loss × 0.4 (TF-slim's weight), EMA of
    /// the weights (0.9999) for evaluation.
    InceptionV3Paper,
}

impl Recipe {
    /// The recipe an architecture trains with by default: the digits recipe for the compact
    /// network, its paper's for the others.
    pub fn for_arch(arch: crate::models::Arch) -> Recipe {
        use crate::models::Arch;
        match arch {
            Arch::InceptionMini => Recipe::Digits,
            Arch::InceptionV3
            | Arch::InceptionV3Keras
            | Arch::InceptionV4
            | Arch::InceptionResNetV2
            | Arch::InceptionV3Slim => Recipe::InceptionV3Paper,
            Arch::GoogLeNet | Arch::GoogLeNetBvlc | Arch::InceptionV1Slim | Arch::InceptionV2 => {
                Recipe::GoogLeNetPaper
            }
        }
    }

    /// Parses `digits`, `googlenet-paper`, `inception-v3-paper`.
    pub fn parse(name: &str) -> Result<Recipe> {
        match name {
            "digits" => Ok(Recipe::Digits),
            "googlenet-paper" | "googlenet" => Ok(Recipe::GoogLeNetPaper),
            "inception-v3-paper" | "inception-v3" => Ok(Recipe::InceptionV3Paper),
            _ => Err(crate::Error::unknown(
                crate::error::NameKind::Recipe,
                name,
                None,
                ["digits", "googlenet-paper", "inception-v3-paper"],
            )),
        }
    }
}

/// Everything that defines a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The network.
    pub model: ModelConfig,
    /// Epochs to train.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Weight decay.
    pub weight_decay: f64,
    /// Learning rate and its schedule.
    pub schedule: Schedule,
    /// Clip the gradients' global L2 norm to this (`clip_grad_norm_`).
    pub clip_norm: Option<f64>,
    /// Weight of each auxiliary head's loss (0.3 in GoogLeNet).
    pub aux_weight: f32,
    /// Label smoothing ε (0.1 in Inception v3).
    pub label_smoothing: f32,
    /// Training-time distortions.
    pub augment: Augment,
    /// Per-channel mean of `x / 255` (input normalisation).
    pub mean: Vec<f32>,
    /// Per-channel standard deviation of `x / 255`.
    pub std: Vec<f32>,
    /// Seed of initialisation, shuffling and augmentation.
    pub seed: u64,
    /// The evaluation and inference preprocessing, when it is not the plain normalisation of
    /// `mean` / `std` (fine-tuning keeps the pretrained weights' preset).
    #[serde(default)]
    pub preset: Option<Preset>,
    /// Keep an exponential moving average of the weights with this decay and evaluate it
    /// (Polyak averaging; 0.9999 in the papers' recipes).
    #[serde(default)]
    pub ema_decay: Option<f64>,
    /// The ImageFolder the run trains on (`None`: the embedded digits), recorded so that a
    /// resumed run reads the same data.
    #[serde(default)]
    pub data: Option<std::path::PathBuf>,
}

impl TrainConfig {
    /// A recipe's hyper-parameters for `model`, with the input normalisation measured on
    /// `train`.
    pub fn recipe(recipe: Recipe, model: ModelConfig, train: &ImageSet) -> Self {
        let (mean, std) = train.mean_std();
        Self::recipe_with_normalization(recipe, model, mean, std)
    }

    /// A recipe's hyper-parameters for `model`, normalising inputs with `mean` and `std` (per
    /// channel, of `x / 255`).
    pub fn recipe_with_normalization(
        recipe: Recipe,
        model: ModelConfig,
        mean: Vec<f32>,
        std: Vec<f32>,
    ) -> Self {
        let schedule = |lr, decay, warmup, epochs: usize| Schedule {
            lr,
            decay,
            warmup_epochs: warmup,
            epochs: epochs as f64,
        };
        match recipe {
            Recipe::Digits => Self {
                // The compact network (BatchNorm everywhere) takes 0.05; the full-size ones
                // have large classifier and aux-head layers without BatchNorm (GoogLeNet's aux
                // fc1 is 2048x1024 behind dropout 0.7), which spike and diverge at that rate
                // (measured: losses from 2.3 up to 5–7 mid-epoch on every seed tried), and
                // learn steadily at 0.02. The clipping bounds any remaining spike.
                schedule: schedule(
                    if model.arch == crate::models::Arch::InceptionMini {
                        0.05
                    } else {
                        0.02
                    },
                    Decay::Cosine { min_factor: 0.01 },
                    0.3,
                    6,
                ),
                clip_norm: Some(5.0),
                model,
                epochs: 6,
                batch_size: 64,
                optimizer: OptimizerKind::Sgd {
                    momentum: 0.9,
                    nesterov: true,
                },
                weight_decay: 5e-4,
                aux_weight: 0.3,
                label_smoothing: 0.0,
                augment: Augment::digits(),
                mean,
                std,
                seed: 0,
                preset: None,
                ema_decay: None,
                data: None,
            },
            Recipe::GoogLeNetPaper => Self {
                model,
                epochs: 90,
                batch_size: 32,
                optimizer: OptimizerKind::Sgd {
                    momentum: 0.9,
                    nesterov: false,
                },
                weight_decay: 2e-4,
                schedule: schedule(
                    0.01,
                    Decay::Step {
                        every: 8.0,
                        gamma: 0.96,
                    },
                    0.0,
                    90,
                ),
                clip_norm: None,
                aux_weight: 0.3,
                label_smoothing: 0.0,
                augment: Augment::paper(),
                mean,
                std,
                seed: 0,
                preset: None,
                ema_decay: Some(0.9999),
                data: None,
            },
            Recipe::InceptionV3Paper => Self {
                model,
                epochs: 100,
                batch_size: 32,
                optimizer: OptimizerKind::RmsProp {
                    alpha: 0.9,
                    eps: 1.0,
                    momentum: 0.9,
                },
                weight_decay: 4e-5,
                schedule: schedule(
                    0.045,
                    Decay::Step {
                        every: 2.0,
                        gamma: 0.94,
                    },
                    0.0,
                    100,
                ),
                clip_norm: Some(2.0),
                aux_weight: 0.4,
                label_smoothing: 0.1,
                augment: Augment::paper(),
                mean,
                std,
                seed: 0,
                preset: None,
                ema_decay: Some(0.9999),
                data: None,
            },
        }
    }

    /// Checks every hyper-parameter (a run from the command line, a file or a checkpoint's
    /// metadata): numbers finite and in range, the normalisation usable, the model buildable.
    pub fn validate(&self) -> Result<()> {
        use crate::Error;
        if self.epochs == 0 {
            return Err(Error::config("epochs", 0, "at least one is needed"));
        }
        if self.batch_size < 2 {
            return Err(Error::config(
                "batch size",
                self.batch_size,
                "at least 2 images are needed (BatchNorm normalises over the batch)",
            ));
        }
        self.schedule.validate()?;
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::config(
                "weight decay",
                self.weight_decay,
                "it must be >= 0",
            ));
        }
        if let Some(c) = self.clip_norm
            && !(c.is_finite() && c > 0.0)
        {
            return Err(Error::config(
                "gradient clipping norm",
                c,
                "it must be positive",
            ));
        }
        if !(self.aux_weight.is_finite() && self.aux_weight >= 0.0) {
            return Err(Error::config(
                "aux loss weight",
                self.aux_weight,
                "it must be >= 0",
            ));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(Error::config(
                "label smoothing",
                self.label_smoothing,
                "it must be in [0, 1) (0.1 in Inception v3)",
            ));
        }
        if let Some(d) = self.ema_decay
            && !(0.0..1.0).contains(&d)
        {
            return Err(Error::config(
                "moving-average decay",
                d,
                "it must be in [0, 1), e.g. 0.9999",
            ));
        }
        let channels = self.model.in_channels;
        if self.mean.len() != channels || self.std.len() != channels {
            return Err(Error::config(
                "normalisation",
                "",
                format!(
                    "{} means and {} standard deviations for {channels} channel(s)",
                    self.mean.len(),
                    self.std.len()
                ),
            ));
        }
        if self.mean.iter().any(|m| !m.is_finite())
            || self.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err(Error::config(
                "normalisation",
                format!("mean {:?} and std {:?}", self.mean, self.std),
                "they must be finite, std positive",
            ));
        }
        if let Some(p) = &self.preset {
            p.validate()?;
        }
        self.model.graph()?;
        Ok(())
    }

    /// Sets the number of epochs (and the schedule's length).
    pub fn with_epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self.schedule.epochs = epochs as f64;
        self
    }

    /// Keeps a pretrained model's preprocessing for evaluation and inference, and trains with
    /// its normalisation.
    pub fn with_preset(mut self, preset: Preset) -> Self {
        if let Some((mean, std)) = preset.normalization() {
            self.mean = mean;
            self.std = std;
        }
        self.preset = Some(preset);
        self
    }

    /// The preprocessing of evaluation and inference: the pretrained one when fine-tuning, else
    /// resize to the model's input and normalise.
    pub fn preset(&self) -> Preset {
        if let Some(p) = &self.preset {
            return p.clone();
        }
        Preset::Normalize {
            size: self.model.input_size[0],
            channels: self.model.in_channels,
            mean: self.mean.clone(),
            std: self.std.clone(),
        }
    }
}

/// A trained network's tensors with what `inception classify` needs to use them: the class
/// names and the preprocessing.
pub(crate) fn model_file(
    network: &Network,
    config: &TrainConfig,
    classes: &[String],
) -> crate::weights::StateDict {
    let mut sd = crate::weights::export(&network.valid(), &config.model);
    sd.metadata
        .insert(CLASSES_KEY.into(), serde_json::json!(classes).to_string());
    sd.metadata.insert(
        PREPROCESSING_KEY.into(),
        serde_json::json!(config.preset()).to_string(),
    );
    sd
}

/// Writes a trained network as our checkpoint format (safetensors with torchvision-style names,
/// the model configuration, class names, preprocessing, and the training configuration and
/// history in the metadata), atomically: an interrupted write leaves the previous file intact.
/// `inception classify` / `features` / `run` load it like any other weights.
pub fn save_model(
    path: &Path,
    network: &Network,
    config: &TrainConfig,
    classes: &[String],
    history: &[EpochStats],
) -> Result<()> {
    let mut sd = model_file(network, config, classes);
    sd.metadata.insert(
        TRAIN_KEY.into(),
        serde_json::json!({ "config": config, "history": history }).to_string(),
    );
    crate::weights::safetensors::write(path, &sd)
}
