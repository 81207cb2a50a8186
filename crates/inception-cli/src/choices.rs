//! The enumerated flags, as clap value enums: `--help` lists the choices and a wrong one is a
//! usage error (exit code 2) naming them. Each maps onto the library's own type.

use clap::ValueEnum;
use inception::data::{Filter, Preset};
use inception::models::Pooling;
use inception::train::{Augment, OptimizerKind, Recipe};

/// `--optimizer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerChoice {
    /// SGD with momentum 0.9 (torch.optim.SGD).
    Sgd,
    /// SGD with Nesterov momentum 0.9.
    Nesterov,
    /// RMSprop as the Inception v3 paper: decay 0.9, ε 1.0, momentum 0.9.
    Rmsprop,
    /// AdamW, β 0.9 / 0.999, ε 1e-8.
    Adamw,
}

impl OptimizerChoice {
    /// The library's optimizer.
    pub fn kind(self) -> OptimizerKind {
        match self {
            Self::Sgd => OptimizerKind::Sgd {
                momentum: 0.9,
                nesterov: false,
            },
            Self::Nesterov => OptimizerKind::Sgd {
                momentum: 0.9,
                nesterov: true,
            },
            Self::Rmsprop => OptimizerKind::RmsProp {
                alpha: 0.9,
                eps: 1.0,
                momentum: 0.9,
            },
            Self::Adamw => OptimizerKind::AdamW {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
        }
    }
}

/// `--recipe`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RecipeChoice {
    /// The compact network on the digits: Nesterov SGD, warm-up, cosine decay.
    Digits,
    /// GoogLeNet's paper: SGD 0.9, ×0.96 every 8 epochs, aux 0.3, the paper's crops.
    #[value(name = "googlenet-paper", alias = "googlenet")]
    GoogLeNetPaper,
    /// Inception v3's paper: RMSprop, ×0.94 every 2 epochs, clipping, label smoothing.
    #[value(name = "inception-v3-paper", alias = "inception-v3")]
    InceptionV3Paper,
}

impl RecipeChoice {
    /// The library's recipe.
    pub fn recipe(self) -> Recipe {
        match self {
            Self::Digits => Recipe::Digits,
            Self::GoogLeNetPaper => Recipe::GoogLeNetPaper,
            Self::InceptionV3Paper => Recipe::InceptionV3Paper,
        }
    }
}

/// `--augment`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AugmentChoice {
    /// No distortion (a linear probe on fixed features).
    None,
    /// Mild crops.
    Digits,
    /// The paper's crops, flips and colour distortion.
    Paper,
}

impl AugmentChoice {
    /// The library's augmentation.
    pub fn augment(self) -> Augment {
        match self {
            Self::None => Augment::none(),
            Self::Digits => Augment::digits(),
            Self::Paper => Augment::paper(),
        }
    }
}

/// `--pooling`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PoolingChoice {
    /// Global average pooling.
    Avg,
    /// Global max pooling.
    Max,
    /// No pooling: the whole feature map.
    None,
}

impl PoolingChoice {
    /// The library's pooling (`None` for no pooling).
    pub fn pooling(self) -> Option<Pooling> {
        match self {
            Self::Avg => Some(Pooling::Avg),
            Self::Max => Some(Pooling::Max),
            Self::None => None,
        }
    }
}

/// `--preset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PresetChoice {
    /// torchvision: resize the shorter side, center crop, ImageNet mean/std.
    #[value(alias = "torch", alias = "pytorch")]
    Torchvision,
    /// keras.utils.load_img (nearest) then x / 127.5 - 1.
    #[value(alias = "tensorflow", alias = "tf")]
    Keras,
    /// The same with bilinear resampling.
    KerasBilinear,
    /// timm: bicubic resize of the shorter side, center crop, mean/std 0.5.
    Timm,
    /// Caffe / ONNX zoo: BGR, 0..255 minus the channel means.
    #[value(alias = "onnx-zoo")]
    Caffe,
}

impl PresetChoice {
    /// The library's preset at input size `size`.
    pub fn preset(self, size: usize) -> Preset {
        match self {
            Self::Torchvision => Preset::torchvision(size),
            Self::Keras => Preset::KerasInception {
                size,
                filter: Filter::Nearest,
            },
            Self::KerasBilinear => Preset::KerasInception {
                size,
                filter: Filter::Bilinear,
            },
            Self::Timm => Preset::TimmInception {
                resize: (size as f64 / 0.875) as usize,
                crop: size,
            },
            Self::Caffe => Preset::Caffe { size },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_choice_is_the_library_value_of_its_name() {
        for c in OptimizerChoice::value_variants() {
            let name = c.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(OptimizerKind::parse(&name).unwrap(), c.kind());
        }
        for c in RecipeChoice::value_variants() {
            let name = c.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(Recipe::parse(&name).unwrap(), c.recipe());
        }
        for c in PresetChoice::value_variants() {
            let name = c.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(Preset::parse(&name, 299).unwrap(), c.preset(299));
        }
        for c in PoolingChoice::value_variants() {
            let name = c.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(Pooling::parse(&name).unwrap(), c.pooling());
        }
    }
}
