//! The built-in architectures: one row of facts each ([`ARCH_INFO`]), read through [`Arch`].

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A built-in architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Arch {
    /// GoogLeNet in torchvision's layout (`googlenet`).
    #[serde(rename = "googlenet")]
    GoogLeNet,
    /// GoogLeNet as in the paper / Caffe `bvlc_googlenet` / the ONNX zoo (`googlenet-bvlc`).
    #[serde(rename = "googlenet-bvlc")]
    GoogLeNetBvlc,
    /// Inception v3 in torchvision's / timm's layout (`inception-v3`).
    #[serde(rename = "inception-v3")]
    InceptionV3,
    /// Inception v3 in keras.applications' layout (`inception-v3-keras`).
    #[serde(rename = "inception-v3-keras")]
    InceptionV3Keras,
    /// A compact GoogLeNet for small images such as 28x28 digits (`inception-mini`).
    #[serde(rename = "inception-mini")]
    InceptionMini,
    /// Inception v4 in TF-slim's layout (`inception-v4`).
    #[serde(rename = "inception-v4")]
    InceptionV4,
    /// Inception-ResNet-v2 in TF-slim's layout (`inception-resnet-v2`).
    #[serde(rename = "inception-resnet-v2")]
    InceptionResNetV2,
    /// GoogLeNet in TF-slim's layout (`inception-v1-slim`).
    #[serde(rename = "inception-v1-slim")]
    InceptionV1Slim,
    /// Inception v3 in TF-slim's layout (`inception-v3-slim`).
    #[serde(rename = "inception-v3-slim")]
    InceptionV3Slim,
    /// BN-Inception (Inception v2) in TF-slim's layout (`inception-v2`).
    #[serde(rename = "inception-v2")]
    InceptionV2,
}

impl Arch {
    /// Every built-in architecture.
    pub const ALL: [Arch; 10] = [
        Arch::GoogLeNet,
        Arch::GoogLeNetBvlc,
        Arch::InceptionV1Slim,
        Arch::InceptionV2,
        Arch::InceptionV3,
        Arch::InceptionV3Keras,
        Arch::InceptionV3Slim,
        Arch::InceptionV4,
        Arch::InceptionResNetV2,
        Arch::InceptionMini,
    ];

    /// Everything known about this architecture, as one row of [`ARCH_INFO`].
    pub fn info(&self) -> &'static ArchInfo {
        &ARCH_INFO[*self as usize]
    }

    /// The registry name used on the command line.
    pub fn name(&self) -> &'static str {
        self.info().name
    }

    /// One line on what it is and where its weights come from.
    pub fn description(&self) -> &'static str {
        self.info().description
    }

    /// Looks an architecture up by name; common spellings are accepted
    /// (`inception_v3`, `InceptionV3`, `bvlc_googlenet`, `inception-v1`).
    pub fn from_name(name: &str) -> Result<Arch> {
        let key: String = name
            .to_ascii_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        ARCH_INFO
            .iter()
            .find(|i| i.aliases.contains(&key.as_str()))
            .map(|i| i.arch)
            .ok_or_else(|| {
                Error::unknown(
                    crate::error::NameKind::Model,
                    name,
                    None,
                    Arch::ALL.map(|a| a.name()),
                )
            })
    }

    /// The input size the reference weights were trained at.
    pub fn default_input_size(&self) -> usize {
        self.info().input_size
    }

    /// Classes of the default classifier (ImageNet's 1000; 10 digits for `inception-mini`).
    pub fn default_classes(&self) -> usize {
        self.info().classes
    }

    /// Input channels by default (RGB; grayscale for `inception-mini`).
    pub fn default_in_channels(&self) -> usize {
        self.info().in_channels
    }

    /// Default dropout before the classifier.
    pub fn default_dropout(&self) -> f64 {
        self.info().dropout
    }

    /// Whether the architecture has auxiliary classifiers to build (`aux_logits`).
    pub fn has_aux_heads(&self) -> bool {
        self.info().aux_heads
    }

    /// Whether this is one of TF-slim's layouts, whose layers are TensorFlow variable scopes and
    /// whose weights are exchanged under TensorFlow's names (`weights::tf_names`).
    pub fn is_tf_slim(&self) -> bool {
        matches!(
            self,
            Arch::InceptionV1Slim
                | Arch::InceptionV2
                | Arch::InceptionV3Slim
                | Arch::InceptionV4
                | Arch::InceptionResNetV2
        )
    }

    /// Layers for multi-scale feature extraction, shallowest first (as timm's `feature_info`).
    pub fn feature_layers(&self) -> [&'static str; 5] {
        self.info().feature_layers
    }
}

/// The facts of one architecture: one row of [`ARCH_INFO`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArchInfo {
    /// The architecture.
    pub arch: Arch,
    /// Registry name (command line, metadata).
    pub name: &'static str,
    /// One line on what it is and where its weights come from.
    pub description: &'static str,
    /// Accepted spellings, lower-case alphanumerics only (`inception_v3` → `inceptionv3`).
    pub aliases: &'static [&'static str],
    /// The input size of the reference weights.
    pub input_size: usize,
    /// Classes of the default classifier.
    pub classes: usize,
    /// Input channels by default.
    pub in_channels: usize,
    /// Dropout before the classifier.
    pub dropout: f64,
    /// Whether auxiliary classifiers can be built.
    pub aux_heads: bool,
    /// Whether the classifier ends in a softmax by default (Keras `classifier_activation`).
    pub softmax: bool,
    /// Layers for multi-scale features, shallowest first.
    pub feature_layers: [&'static str; 5],
}

/// One row per architecture, in the order of [`Arch`]'s variants.
pub const ARCH_INFO: [ArchInfo; 10] = [
    ArchInfo {
        arch: Arch::GoogLeNet,
        name: "googlenet",
        description: "GoogLeNet, torchvision layout (conv+BN, 3x3 branch-3 quirk); torchvision weights",
        aliases: &[
            "googlenet",
            "inceptionv1",
            "googlenettv",
            "googlenettorchvision",
        ],
        input_size: 224,
        classes: 1000,
        in_channels: 3,
        dropout: 0.2,
        aux_heads: true,
        softmax: false,
        feature_layers: [
            "conv1",
            "conv3",
            "inception3b",
            "inception4e",
            "inception5b",
        ],
    },
    ArchInfo {
        arch: Arch::GoogLeNetBvlc,
        name: "googlenet-bvlc",
        description: "GoogLeNet as in the paper: LRN, true 5x5, biased convs; Caffe bvlc / ONNX zoo weights",
        aliases: &[
            "googlenetbvlc",
            "bvlcgooglenet",
            "googlenetpaper",
            "googlenetcaffe",
        ],
        input_size: 224,
        classes: 1000,
        in_channels: 3,
        dropout: 0.4,
        aux_heads: true,
        softmax: false,
        feature_layers: [
            "conv1/7x7_s2_relu",
            "conv2/3x3_relu",
            "inception_3b",
            "inception_4e",
            "inception_5b",
        ],
    },
    ArchInfo {
        arch: Arch::InceptionV3,
        name: "inception-v3",
        description: "Inception v3, torchvision/timm layout, optional aux head; torchvision and timm weights",
        aliases: &[
            "inceptionv3",
            "inception3",
            "inceptionv3tv",
            "inceptionv3torchvision",
        ],
        input_size: 299,
        classes: 1000,
        in_channels: 3,
        dropout: 0.5,
        aux_heads: true,
        softmax: false,
        feature_layers: [
            "Conv2d_2b_3x3",
            "Conv2d_4a_3x3",
            "Mixed_5d",
            "Mixed_6e",
            "Mixed_7c",
        ],
    },
    ArchInfo {
        arch: Arch::InceptionV3Keras,
        name: "inception-v3-keras",
        description: "Inception v3, keras.applications layout (BN without scale); Keras .h5 weights",
        aliases: &["inceptionv3keras", "kerasinceptionv3"],
        input_size: 299,
        classes: 1000,
        in_channels: 3,
        dropout: 0.0,
        aux_heads: false,
        softmax: true,
        feature_layers: [
            "Conv2d_2b_3x3",
            "Conv2d_4a_3x3",
            "mixed2",
            "mixed7",
            "mixed10",
        ],
    },
    ArchInfo {
        arch: Arch::InceptionMini,
        name: "inception-mini",
        description: "compact GoogLeNet for 28x28 images (4 inception modules, aux head); trained here",
        aliases: &["inceptionmini", "mini", "googlenetmini"],
        input_size: 28,
        classes: 10,
        in_channels: 1,
        dropout: 0.2,
        aux_heads: true,
        softmax: false,
        feature_layers: [
            "conv1",
            "conv2",
            "inception3b",
            "inception4a",
            "inception4b",
        ],
    },
    ArchInfo {
        arch: Arch::InceptionV4,
        name: "inception-v4",
        description: "Inception v4, TF-slim layout (1001 classes, aux head on Mixed_6h); timm weights, TF names",
        aliases: &["inceptionv4", "inception4", "inceptionv4slim"],
        input_size: 299,
        classes: 1001,
        in_channels: 3,
        dropout: 0.2,
        aux_heads: true,
        softmax: false,
        feature_layers: [
            "InceptionV4/Conv2d_2b_3x3/Relu",
            "InceptionV4/Mixed_4a",
            "InceptionV4/Mixed_5e",
            "InceptionV4/Mixed_6h",
            "InceptionV4/Mixed_7d",
        ],
    },
    ArchInfo {
        arch: Arch::InceptionResNetV2,
        name: "inception-resnet-v2",
        description: "Inception-ResNet-v2, TF-slim layout (1001 classes, aux head); timm and Keras weights, TF names",
        aliases: &[
            "inceptionresnetv2",
            "inceptionresnet2",
            "inceptionresnetv2slim",
        ],
        input_size: 299,
        classes: 1001,
        in_channels: 3,
        dropout: 0.2,
        aux_heads: true,
        softmax: false,
        feature_layers: [
            "InceptionResnetV2/Conv2d_2b_3x3/Relu",
            "InceptionResnetV2/Conv2d_4a_3x3/Relu",
            "InceptionResnetV2/Repeat/block35_10",
            "InceptionResnetV2/Repeat_1/block17_20",
            "InceptionResnetV2/Conv2d_7b_1x1/Relu",
        ],
    },
    ArchInfo {
        arch: Arch::InceptionV1Slim,
        name: "inception-v1-slim",
        description: "GoogLeNet, TF-slim layout (BN, SAME padding, 1001 classes); weights under TF names",
        aliases: &["inceptionv1slim", "googlenetslim", "slimgooglenet"],
        input_size: 224,
        classes: 1001,
        in_channels: 3,
        dropout: 0.2,
        aux_heads: false,
        softmax: false,
        feature_layers: [
            "InceptionV1/Conv2d_1a_7x7/Relu",
            "InceptionV1/Conv2d_2c_3x3/Relu",
            "InceptionV1/Mixed_3c",
            "InceptionV1/Mixed_4f",
            "InceptionV1/Mixed_5c",
        ],
    },
    ArchInfo {
        arch: Arch::InceptionV3Slim,
        name: "inception-v3-slim",
        description: "Inception v3, TF-slim layout (1001 classes, aux head, depth multiplier); weights under TF names",
        aliases: &["inceptionv3slim", "slimv3", "inceptionv3tf"],
        input_size: 299,
        classes: 1001,
        in_channels: 3,
        dropout: 0.2,
        aux_heads: true,
        softmax: false,
        feature_layers: [
            "InceptionV3/Conv2d_2b_3x3/Relu",
            "InceptionV3/Conv2d_4a_3x3/Relu",
            "InceptionV3/Mixed_5d",
            "InceptionV3/Mixed_6e",
            "InceptionV3/Mixed_7c",
        ],
    },
    ArchInfo {
        arch: Arch::InceptionV2,
        name: "inception-v2",
        description: "BN-Inception (Inception v2), TF-slim layout (separable stem, 1001 classes); weights under TF names",
        aliases: &[
            "inceptionv2",
            "inception2",
            "bninception",
            "inceptionv2slim",
        ],
        input_size: 224,
        classes: 1001,
        in_channels: 3,
        dropout: 0.2,
        aux_heads: false,
        softmax: false,
        feature_layers: [
            "InceptionV2/Conv2d_1a_7x7/Relu",
            "InceptionV2/Conv2d_2c_3x3/Relu",
            "InceptionV2/Mixed_3c",
            "InceptionV2/Mixed_4e",
            "InceptionV2/Mixed_5c",
        ],
    },
];

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
