//! Polyak averaging: an exponential moving average of the weights, which both papers evaluate.

use burn::tensor::Device;

use crate::error::Result;
use crate::models::ModelConfig;
use crate::network::Network;
use crate::weights::{self, DType, Format, StateDict, WeightTensor};

/// The moving average `ema ← d · ema + (1 - d) · θ` of every tensor of a network (BatchNorm
/// statistics included, as timm's `ModelEmaV2`), kept on the host.
///
/// The decay of update `n` (from 0) is `d = min(decay, (1 + n) / (10 + n))`, as TensorFlow's
/// `ExponentialMovingAverage(decay, num_updates=global_step)` that the Inception v3 recipe
/// used: early on the average follows the weights closely, so that a short run's average is
/// not stuck near the initialisation.
///
/// ```
/// use inception::models::{Arch, ModelConfig};
/// use inception::train::Ema;
///
/// let net = ModelConfig::new(Arch::InceptionMini).init(&Default::default()).unwrap();
/// let mut ema = Ema::new(&net, 0.9999);
/// assert_eq!(ema.next_decay(), 0.1); // (1 + 0) / (10 + 0)
/// ema.update(&net);
/// assert_eq!(ema.updates, 1);
/// ```
#[derive(Clone, Debug)]
pub struct Ema {
    /// Weight of the past (0.9999 in the papers), reached once `(1 + n) / (10 + n)` exceeds it.
    pub decay: f64,
    /// Updates folded in so far.
    pub updates: u64,
    // f32, as PyTorch keeps it, so a checkpoint restores it exactly.
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl Ema {
    /// Starts the average at the network's current weights.
    pub fn new(network: &Network, decay: f64) -> Self {
        Self::from_state_dict(&weights::state_dict(network), decay, 0)
    }

    /// The decay the next [`update`](Self::update) uses.
    pub fn next_decay(&self) -> f64 {
        let n = self.updates as f64;
        self.decay.min((1.0 + n) / (10.0 + n))
    }

    /// Folds the network's current weights into the average.
    pub fn update(&mut self, network: &Network) {
        let sd = weights::state_dict(network);
        let d = self.next_decay() as f32;
        for (name, _, avg) in &mut self.tensors {
            if let Some(t) = sd.get(name) {
                for (a, &v) in avg.iter_mut().zip(&t.data) {
                    *a = d * *a + (1.0 - d) * v;
                }
            }
        }
        self.updates += 1;
    }

    /// The averaged weights as a state dict (PyTorch names).
    pub fn state_dict(&self) -> StateDict {
        let mut sd = StateDict::new(Format::Safetensors);
        for (name, shape, avg) in &self.tensors {
            let dtype = if name.ends_with("num_batches_tracked") {
                DType::I64
            } else {
                DType::F32
            };
            sd.insert(
                name.clone(),
                WeightTensor::new(shape.clone(), avg.clone(), dtype),
            );
        }
        sd
    }

    /// Restores an average saved as a state dict (a checkpoint's `ema.` tensors) after
    /// `updates` updates.
    pub fn from_state_dict(sd: &StateDict, decay: f64, updates: u64) -> Self {
        let tensors = sd
            .iter()
            .map(|(n, t)| (n.to_string(), t.shape.clone(), t.data.clone()))
            .collect();
        Self {
            decay,
            updates,
            tensors,
        }
    }

    /// A network with the averaged weights on `device` (made a plain device: for evaluation).
    pub fn network(&self, model: &ModelConfig, device: &Device) -> Result<Network> {
        let device = device.clone().without_autodiff();
        Ok(weights::load_model(model, &self.state_dict(), &device)?.0)
    }
}
