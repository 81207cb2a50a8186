//! Learning-rate schedules, evaluated at fractional epochs so that every step gets its own rate.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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

impl Decay {
    /// Parses `constant`, `cosine` or `step:EVERY:GAMMA` (e.g. `step:8:0.96`: ×0.96 every 8
    /// epochs), refusing values that make no schedule (a zero period, a factor outside (0, 1]).
    pub fn parse(spec: &str) -> Result<Decay> {
        let bad = |why: &str| {
            Error::config(
                "schedule",
                format!("'{spec}'"),
                format!("{why}; use constant, cosine or step:EVERY:GAMMA (e.g. step:8:0.96)"),
            )
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let decay = match parts.as_slice() {
            ["constant"] => Decay::Constant,
            ["cosine"] => Decay::Cosine { min_factor: 0.01 },
            ["step", every, gamma] => Decay::Step {
                every: every.parse().map_err(|_| bad("EVERY is not a number"))?,
                gamma: gamma.parse().map_err(|_| bad("GAMMA is not a number"))?,
            },
            _ => return Err(bad("unknown schedule")),
        };
        match decay.problem() {
            Some(why) => Err(bad(&why)),
            None => Ok(decay),
        }
    }

    /// What makes this decay no schedule, if anything does.
    fn problem(&self) -> Option<String> {
        match *self {
            Decay::Constant => None,
            Decay::Step { every, .. } if !(every.is_finite() && every > 0.0) => Some(format!(
                "the period {every} must be a positive number of epochs"
            )),
            Decay::Step { gamma, .. } if !(gamma.is_finite() && gamma > 0.0 && gamma <= 1.0) => {
                Some(format!("the factor {gamma} must be in (0, 1]"))
            }
            Decay::Step { .. } => None,
            Decay::Cosine { min_factor } if !(0.0..=1.0).contains(&min_factor) => {
                Some(format!("the final factor {min_factor} must be in [0, 1]"))
            }
            Decay::Cosine { .. } => None,
        }
    }
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
    /// Checks that every step gets a positive, finite rate.
    pub fn validate(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::config(
                "learning rate",
                self.lr,
                "it must be a positive number",
            ));
        }
        if !(self.warmup_epochs.is_finite() && self.warmup_epochs >= 0.0) {
            return Err(Error::config(
                "warm-up",
                self.warmup_epochs,
                "it must be a number of epochs >= 0",
            ));
        }
        match self.decay.problem() {
            Some(why) => Err(Error::config("schedule", "", why)),
            None => Ok(()),
        }
    }

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
