//! Learning-rate schedules, evaluated at fractional epochs so that every step gets its own rate.

use serde::{Deserialize, Serialize};

/// How the learning rate changes with the epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decay {
    /// The same rate throughout.
    Constant,
    /// Multiply by `gamma` every `every` epochs (GoogLeNet: 0.96 every 8; Inception v3: 0.94
    /// every 2).
    Step {
        /// Epochs between decays.
        every: f64,
        /// Factor applied at each decay.
        gamma: f64,
    },
    /// Cosine from the base rate down to `min_factor` × the base rate at the last epoch.
    Cosine {
        /// The final rate as a fraction of the base rate.
        min_factor: f64,
    },
}

/// A schedule: a decay plus a linear warm-up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// The base learning rate.
    pub lr: f64,
    /// The decay after warm-up.
    pub decay: Decay,
    /// Epochs of linear warm-up from `lr / 10` to `lr` (0 for none).
    pub warmup_epochs: f64,
    /// Total epochs (the cosine's length).
    pub epochs: f64,
}

impl Schedule {
    /// The rate at (fractional) epoch `t`, counted from 0.
    ///
    /// ```
    /// use inception::train::{Decay, Schedule};
    /// let s = Schedule { lr: 0.1, decay: Decay::Step { every: 8.0, gamma: 0.96 }, warmup_epochs: 0.0, epochs: 100.0 };
    /// assert_eq!(s.lr_at(7.9), 0.1);
    /// assert!((s.lr_at(8.0) - 0.096).abs() < 1e-12);
    /// ```
    pub fn lr_at(&self, t: f64) -> f64 {
        if self.warmup_epochs > 0.0 && t < self.warmup_epochs {
            let start = self.lr / 10.0;
            return start + (self.lr - start) * t / self.warmup_epochs;
        }
        match &self.decay {
            Decay::Constant => self.lr,
            Decay::Step { every, gamma } => self.lr * gamma.powf((t / every).floor()),
            Decay::Cosine { min_factor } => {
                let span = (self.epochs - self.warmup_epochs).max(1e-9);
                let p = ((t - self.warmup_epochs) / span).clamp(0.0, 1.0);
                let min = self.lr * min_factor;
                min + (self.lr - min) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }
        }
    }
}
