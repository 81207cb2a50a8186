//! The enumerated flags, as clap value enums: `--help` lists the choices and a wrong one is a
//! usage error (exit code 2) naming them. Each maps onto the library's own type.

use clap::ValueEnum;
use inception::data::Preset;
use inception::models::Pooling;
use inception::train::{Augment, OptimizerKind, Recipe};

/// The name a value has on the command line, which is the library's name for it.
fn name(v: impl ValueEnum) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

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
    /// The library's optimizer of this name.
    pub fn kind(self) -> inception::Result<OptimizerKind> {
        OptimizerKind::parse(&name(self))
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
    /// The library's recipe of this name.
    pub fn recipe(self) -> inception::Result<Recipe> {
        Recipe::parse(&name(self))
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
    /// The library's pooling of this name (`None` for no pooling).
    pub fn pooling(self) -> inception::Result<Option<Pooling>> {
        Pooling::parse(&name(self))
    }
}

/// `convert --names`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NamesChoice {
    /// TensorFlow's for TF-slim's layouts, torchvision's for the others.
    Auto,
    /// PyTorch state-dict names (torchvision's, timm's for Inception v3).
    #[value(alias = "pytorch", alias = "torchvision")]
    Torch,
    /// TensorFlow variable names and layouts (kernels HWIO).
    #[value(alias = "tensorflow", alias = "slim")]
    Tf,
    /// timm's names for TF-slim's layouts: inception_v3 (torchvision's), inception_v4,
    /// inception_resnet_v2 (BatchNorm γ written as ones, no aux head).
    Timm,
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
    /// TF-slim's inception_preprocessing: central crop 0.875, TensorFlow's bilinear, [-1, 1].
    #[value(alias = "slim")]
    TfSlim,
    /// Caffe / ONNX zoo: BGR, 0..255 minus the channel means.
    #[value(alias = "onnx-zoo")]
    Caffe,
}

impl PresetChoice {
    /// The library's preset of this name at input size `size`.
    pub fn preset(self, size: usize) -> inception::Result<Preset> {
        Preset::parse(&name(self), size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_choice_is_a_name_the_library_knows() {
        for c in OptimizerChoice::value_variants() {
            assert!(c.kind().is_ok(), "{c:?}");
        }
        for c in RecipeChoice::value_variants() {
            assert!(c.recipe().is_ok(), "{c:?}");
        }
        for c in PresetChoice::value_variants() {
            assert_eq!(c.preset(299).unwrap().input_size(), 299, "{c:?}");
        }
        for c in PoolingChoice::value_variants() {
            assert!(c.pooling().is_ok(), "{c:?}");
        }
        assert_eq!(PoolingChoice::None.pooling().unwrap(), None);
        assert_eq!(
            OptimizerChoice::Nesterov.kind().unwrap(),
            OptimizerKind::Sgd {
                momentum: 0.9,
                nesterov: true
            }
        );
    }
}
