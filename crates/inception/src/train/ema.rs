//! Polyak averaging: an exponential moving average of the weights, which both papers evaluate.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};

use crate::network::Network;
use crate::weights::{self, StateDict};

/// The moving average `ema ← d · ema + (1 - d) · θ` of every tensor of a network (BatchNorm
/// statistics included, as timm's `ModelEmaV2`), kept as a network on the training device, so
/// that updating it moves nothing to the host.
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
    /// The averaged weights (evaluation mode, the training device without autodiff).
    average: Network,
}

impl Ema {
    /// Starts the average at the network's current weights.
    pub fn new(network: &Network, decay: f64) -> Self {
        // `valid()` gives the copy running states of its own (Burn syncs and re-creates them).
        Self::from_network(network.valid(), decay, 0)
    }

    /// An average that has seen `updates` updates (a checkpoint's, restored).
    pub fn from_network(average: Network, decay: f64, updates: u64) -> Self {
        Self {
            decay,
            updates,
            average,
        }
    }

    /// The decay the next [`update`](Self::update) uses.
    pub fn next_decay(&self) -> f64 {
        let n = self.updates as f64;
        self.decay.min((1.0 + n) / (10.0 + n))
    }

    /// Folds the network's current weights (and BatchNorm statistics) into the average.
    pub fn update(&mut self, network: &Network) {
        struct Collect(Vec<Tensor<1>>);
        impl ModuleVisitor for Collect {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0.push(param.val().flatten(0, D - 1));
            }
        }
        struct Blend(std::vec::IntoIter<Tensor<1>>, f64);
        impl ModuleMapper for Blend {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let Some(current) = self.0.next() else {
                    return param;
                };
                let d = self.1;
                param.map(|avg| {
                    let dims = avg.dims();
                    avg.mul_scalar(d)
                        .add(current.reshape(dims).mul_scalar(1.0 - d))
                })
            }
        }
        let mut current = Collect(Vec::new());
        network.valid().visit(&mut current);
        let d = self.next_decay();
        self.average = self
            .average
            .clone()
            .map(&mut Blend(current.0.into_iter(), d));
        self.updates += 1;
    }

    /// The averaged weights as a state dict (PyTorch names).
    pub fn state_dict(&self) -> StateDict {
        weights::state_dict(&self.average)
    }

    /// The network with the averaged weights, for evaluation.
    pub fn network(&self) -> Network {
        self.average.independent_copy()
    }

    /// The average moved to `device` (made a plain device).
    pub fn to_device(self, device: &Device) -> Self {
        let device = device.clone().without_autodiff();
        Self {
            average: self.average.to_device(&device),
            ..self
        }
    }
}
