//! The building blocks of the Inception family, as functions on a [`GraphBuilder`] — the Rust
//! spelling of the tutorial's `naive_inception_block(x, filters)` and `inception_v1_block(x)`.
//!
//! Every block takes the builder, its input node and a name, adds its layers (with checkpoint
//! names) and returns its output node.
//!
//! ```
//! use inception::blocks::{inception_v1_block, ConvStyle, InceptionV1Filters, V1Variant};
//! use inception::graph::GraphBuilder;
//!
//! let mut g = GraphBuilder::new("demo");
//! let x = g.input([192, 28, 28]);
//! // Row "inception (3a)" of the paper's Table 1.
//! let row = InceptionV1Filters::new(64, 96, 128, 16, 32, 32);
//! let y = inception_v1_block(&mut g, x, "inception3a", row, V1Variant::paper());
//! assert_eq!(g.shape(y).channels(), 256);
//! ```

pub mod bn_inception;
pub mod slim;
pub mod slim_v3;

use crate::graph::{BlockKind, GraphBuilder, NodeId, Padding, Pool};

/// How a "conv" is realised: with BatchNorm (Inception v2+, torchvision, Keras) or with a bias
/// (the 2014 paper / Caffe). Always followed by a ReLU.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConvStyle {
    /// Convolution without bias → BatchNorm → ReLU, named `{name}.conv`, `{name}.bn`
    /// (torchvision's `BasicConv2d`; Keras's `conv2d_bn` with `scale: false`).
    BatchNorm {
        /// BatchNorm epsilon (1e-3 for all TensorFlow-born Inception weights).
        epsilon: f64,
        /// Whether BatchNorm learns a scale γ (Keras InceptionV3: no).
        scale: bool,
    },
    /// Convolution with bias → ReLU, the conv named `{name}` (Caffe's `bvlc_googlenet`).
    Bias,
}

impl ConvStyle {
    /// torchvision's `BasicConv2d`: conv + BN(eps 1e-3) + ReLU.
    pub const TORCHVISION: ConvStyle = ConvStyle::BatchNorm {
        epsilon: 1e-3,
        scale: true,
    };
    /// Keras's `conv2d_bn`: conv + BN(eps 1e-3, no scale) + ReLU.
    pub const KERAS: ConvStyle = ConvStyle::BatchNorm {
        epsilon: 1e-3,
        scale: false,
    };
}

/// A convolution followed by its normalisation and ReLU (torchvision's `BasicConv2d`).
#[allow(clippy::too_many_arguments)]
pub fn basic_conv(
    g: &mut GraphBuilder,
    x: NodeId,
    name: &str,
    filters: usize,
    kernel: [usize; 2],
    stride: usize,
    padding: Padding,
    style: ConvStyle,
) -> NodeId {
    match style {
        ConvStyle::BatchNorm { epsilon, scale } => g.scope(name, |g| {
            let c = g.conv2d("conv", x, filters, kernel, [stride; 2], padding, false);
            let b = g.batch_norm("bn", c, epsilon, scale);
            g.relu("relu", b)
        }),
        ConvStyle::Bias => {
            let c = g.conv2d(name, x, filters, kernel, [stride; 2], padding, true);
            g.relu(&format!("{name}_relu"), c)
        }
    }
}

/// The tutorial's naive inception module: 1x1, 3x3 and 5x5 convolutions and a 3x3 max pool side
/// by side on the same input, concatenated — no 1x1 bottlenecks, so the output always grows by
/// the input's channels. `filters` are the 1x1, 3x3 and 5x5 filter counts.
pub fn naive_inception_block(
    g: &mut GraphBuilder,
    x: NodeId,
    name: &str,
    filters: [usize; 3],
) -> NodeId {
    let [f1, f3, f5] = filters;
    let label = format!("naive: 1x1 {f1}, 3x3 {f3}, 5x5 {f5}, pool");
    g.block(name, BlockKind::Inception, label, |g| {
        let same = Padding::Same;
        let b1 = g.branch(|g| basic_conv(g, x, "conv1x1", f1, [1, 1], 1, same, ConvStyle::Bias));
        let b2 = g.branch(|g| basic_conv(g, x, "conv3x3", f3, [3, 3], 1, same, ConvStyle::Bias));
        let b3 = g.branch(|g| basic_conv(g, x, "conv5x5", f5, [5, 5], 1, same, ConvStyle::Bias));
        let b4 = g.branch(|g| g.max_pool("pool", x, Pool::new(3, 1).padding(same)));
        g.concat("concat", &[b1, b2, b3, b4])
    })
}

/// One row of GoogLeNet's filter table (the paper's Table 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct InceptionV1Filters {
    /// `#1x1`.
    pub n1x1: usize,
    /// `#3x3 reduce`.
    pub n3x3_reduce: usize,
    /// `#3x3`.
    pub n3x3: usize,
    /// `#5x5 reduce`.
    pub n5x5_reduce: usize,
    /// `#5x5`.
    pub n5x5: usize,
    /// `pool proj`.
    pub pool_proj: usize,
}

impl InceptionV1Filters {
    /// A row in the paper's column order.
    pub const fn new(
        n1x1: usize,
        n3x3_reduce: usize,
        n3x3: usize,
        n5x5_reduce: usize,
        n5x5: usize,
        pool_proj: usize,
    ) -> Self {
        Self {
            n1x1,
            n3x3_reduce,
            n3x3,
            n5x5_reduce,
            n5x5,
            pool_proj,
        }
    }

    /// Output channels of the module.
    pub const fn out_channels(&self) -> usize {
        self.n1x1 + self.n3x3 + self.n5x5 + self.pool_proj
    }
}

/// Which GoogLeNet flavour a v1 inception block is built in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct V1Variant {
    /// Conv realisation.
    pub conv: ConvStyle,
    /// Kernel of the "5x5" branch: 5 in the paper; 3 in torchvision, whose published weights
    /// inherited this from the TF-slim port (pytorch/vision#906) and need it.
    pub branch3_kernel: usize,
    /// Layer names: torchvision's (`branch2.0`) or Caffe's (`3x3_reduce`).
    pub caffe_names: bool,
    /// Whether the pool branch's max pool uses `ceil_mode` (torchvision: yes; it changes nothing
    /// for a 3x3/1 pool with padding 1).
    pub ceil_pool: bool,
}

impl V1Variant {
    /// The paper / Caffe `bvlc_googlenet` block: biased convs, a true 5x5.
    pub const fn paper() -> Self {
        Self {
            conv: ConvStyle::Bias,
            branch3_kernel: 5,
            caffe_names: true,
            ceil_pool: true,
        }
    }

    /// torchvision's block: BatchNorm convs and the 3x3 "5x5" branch its weights need.
    pub const fn torchvision() -> Self {
        Self {
            conv: ConvStyle::TORCHVISION,
            branch3_kernel: 3,
            caffe_names: false,
            ceil_pool: true,
        }
    }

    /// The compact networks' block: BatchNorm convs (they train fast from scratch) and the
    /// paper's true 5x5 branch.
    pub const fn compact() -> Self {
        Self {
            conv: ConvStyle::TORCHVISION,
            branch3_kernel: 5,
            caffe_names: false,
            ceil_pool: true,
        }
    }

    /// Keras-style block as tutorials write it: biased convs with ReLU, `"same"` padding, a true
    /// 5x5 branch (the `inception_v1_block` of a functional-API tutorial).
    pub const fn keras() -> Self {
        Self {
            conv: ConvStyle::Bias,
            branch3_kernel: 5,
            caffe_names: false,
            ceil_pool: false,
        }
    }
}

/// A GoogLeNet inception module: four parallel branches (1x1; 1x1→3x3; 1x1→5x5;
/// 3x3 max pool→1x1 projection) with "same" padding and stride 1, concatenated on channels.
pub fn inception_v1_block(
    g: &mut GraphBuilder,
    x: NodeId,
    name: &str,
    f: InceptionV1Filters,
    v: V1Variant,
) -> NodeId {
    let label = format!(
        "#1x1 {} | #3x3 reduce {}, #3x3 {} | #{k}x{k} reduce {}, #{k}x{k} {} | pool proj {}",
        f.n1x1,
        f.n3x3_reduce,
        f.n3x3,
        f.n5x5_reduce,
        f.n5x5,
        f.pool_proj,
        k = v.branch3_kernel
    );
    let k3 = v.branch3_kernel;
    let names: [&str; 7] = if v.caffe_names {
        [
            "1x1",
            "3x3_reduce",
            "3x3",
            "5x5_reduce",
            "5x5",
            "pool",
            "pool_proj",
        ]
    } else {
        [
            "branch1",
            "branch2.0",
            "branch2.1",
            "branch3.0",
            "branch3.1",
            "branch4.0",
            "branch4.1",
        ]
    };
    let conv = |g: &mut GraphBuilder, x, name: &str, filters, k: usize| {
        basic_conv(
            g,
            x,
            name,
            filters,
            [k, k],
            1,
            Padding::Explicit([k / 2; 2]),
            v.conv,
        )
    };
    g.block(name, BlockKind::Inception, label, |g| {
        let b1 = g.branch(|g| conv(g, x, names[0], f.n1x1, 1));
        let b2 = g.branch(|g| {
            let r = conv(g, x, names[1], f.n3x3_reduce, 1);
            conv(g, r, names[2], f.n3x3, 3)
        });
        let b3 = g.branch(|g| {
            let r = conv(g, x, names[3], f.n5x5_reduce, 1);
            conv(g, r, names[4], f.n5x5, k3)
        });
        let b4 = g.branch(|g| {
            let p = g.max_pool(
                names[5],
                x,
                Pool::new(3, 1)
                    .padding(Padding::Explicit([1, 1]))
                    .with_ceil_mode(v.ceil_pool),
            );
            conv(g, p, names[6], f.pool_proj, 1)
        });
        let out = if v.caffe_names { "output" } else { "concat" };
        g.concat(out, &[b1, b2, b3, b4])
    })
}

/// Which auxiliary classifier to build.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AuxVariant {
    /// The paper's head: 5x5/3 average pool → 1x1 conv 128 (+ReLU) → FC 1024 (+ReLU) →
    /// dropout → classifier. Caffe names (`loss1/conv`, `loss1/fc`, `loss1/classifier`).
    Paper {
        /// Dropout before the classifier (0.7 in the paper).
        dropout: f64,
    },
    /// torchvision's GoogLeNet head: adaptive average pool to 4x4 → `BasicConv2d` 128 →
    /// `fc1` 2048→1024 + ReLU → dropout → `fc2`.
    TorchvisionV1 {
        /// Dropout before `fc2` (0.7).
        dropout: f64,
    },
    /// Inception v3's head: 5x5/3 average pool → `conv0` 1x1 128 → `conv1` 5x5 768 → global
    /// average pool → `fc`.
    V3 {
        /// Conv realisation.
        conv: ConvStyle,
    },
    /// A small head for compact networks: 1x1 conv (+BN+ReLU) → global average pool → dropout
    /// → `fc`.
    Compact {
        /// Channels of the 1x1 conv.
        channels: usize,
        /// Dropout before `fc`.
        dropout: f64,
    },
}

/// An auxiliary classifier on the side of the main path; its output is added to the graph as an
/// aux output by the caller.
pub fn aux_classifier(
    g: &mut GraphBuilder,
    x: NodeId,
    name: &str,
    classes: usize,
    variant: AuxVariant,
) -> NodeId {
    let label = match variant {
        AuxVariant::Paper { .. } => "avgpool 5x5/3 → 1x1 conv 128 → fc 1024 → dropout → fc",
        AuxVariant::TorchvisionV1 { .. } => {
            "adaptive avgpool 4x4 → 1x1 conv 128 → fc 1024 → dropout → fc"
        }
        AuxVariant::V3 { .. } => {
            "avgpool 5x5/3 → 1x1 conv 128 → 5x5 conv 768 → global avgpool → fc"
        }
        AuxVariant::Compact { .. } => "1x1 conv → global avgpool → dropout → fc",
    };
    g.block(name, BlockKind::Aux, label, |g| match variant {
        AuxVariant::Paper { dropout } => {
            let p = g.avg_pool(
                "ave_pool",
                x,
                Pool::new(5, 3).ceil_mode().count_include_pad(),
            );
            let c = basic_conv(
                g,
                p,
                "conv",
                128,
                [1, 1],
                1,
                Padding::Valid,
                ConvStyle::Bias,
            );
            let f = g.flatten("flatten", c);
            let f = g.dense("fc", f, 1024, true);
            let f = g.relu("relu_fc", f);
            let f = g.dropout("drop_fc", f, dropout);
            g.dense("classifier", f, classes, true)
        }
        AuxVariant::TorchvisionV1 { dropout } => {
            let p = g.adaptive_avg_pool("avgpool", x, [4, 4]);
            let c = basic_conv(
                g,
                p,
                "conv",
                128,
                [1, 1],
                1,
                Padding::Valid,
                ConvStyle::TORCHVISION,
            );
            let f = g.flatten("flatten", c);
            let f = g.dense("fc1", f, 1024, true);
            let f = g.relu("relu", f);
            let f = g.dropout("dropout", f, dropout);
            g.dense("fc2", f, classes, true)
        }
        AuxVariant::V3 { conv } => {
            let p = g.avg_pool("avgpool", x, Pool::new(5, 3).count_include_pad());
            let c = basic_conv(g, p, "conv0", 128, [1, 1], 1, Padding::Valid, conv);
            let c = basic_conv(g, c, "conv1", 768, [5, 5], 1, Padding::Valid, conv);
            let f = g.global_avg_pool("pool", c);
            g.dense("fc", f, classes, true)
        }
        AuxVariant::Compact { channels, dropout } => {
            let c = basic_conv(
                g,
                x,
                "conv",
                channels,
                [1, 1],
                1,
                Padding::Valid,
                ConvStyle::TORCHVISION,
            );
            let f = g.global_avg_pool("pool", c);
            let f = g.dropout("dropout", f, dropout);
            g.dense("fc", f, classes, true)
        }
    })
}

/// Options shared by the Inception v3 blocks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct V3Variant {
    /// Conv realisation ([`ConvStyle::TORCHVISION`] or [`ConvStyle::KERAS`]).
    pub conv: ConvStyle,
    /// Whether the 3x3/1 average pools of the pool branches count padded zeros: torchvision
    /// yes (PyTorch's default), Keras no (TensorFlow's `"same"` pooling).
    pub count_include_pad: bool,
}

impl V3Variant {
    /// torchvision / timm.
    pub const TORCHVISION: V3Variant = V3Variant {
        conv: ConvStyle::TORCHVISION,
        count_include_pad: true,
    };
    /// keras.applications.
    pub const KERAS: V3Variant = V3Variant {
        conv: ConvStyle::KERAS,
        count_include_pad: false,
    };
}

/// One conv + BatchNorm + ReLU of an Inception v3 module, in the variant's layout.
fn v3_conv(
    g: &mut GraphBuilder,
    x: NodeId,
    name: &str,
    filters: usize,
    kernel: [usize; 2],
    stride: usize,
    v: V3Variant,
) -> NodeId {
    // Stride-1 convs keep the size ("same"), stride-2 ones are "valid", as in both references.
    let padding = if stride == 1 {
        Padding::Explicit([kernel[0] / 2, kernel[1] / 2])
    } else {
        Padding::Valid
    };
    basic_conv(g, x, name, filters, kernel, stride, padding, v.conv)
}

fn pool_branch(g: &mut GraphBuilder, x: NodeId, filters: usize, v: V3Variant) -> NodeId {
    g.branch(|g| {
        let p = g.avg_pool(
            "avg_pool",
            x,
            Pool::new(3, 1)
                .padding(Padding::Explicit([1, 1]))
                .with_count_include_pad(v.count_include_pad),
        );
        v3_conv(g, p, "branch_pool", filters, [1, 1], 1, v)
    })
}

/// Inception v3 module A (35x35; Figure 5 of "Rethinking"): the 5x5 is kept in one branch and
/// factorised into two 3x3s in another.
pub fn inception_v3_a(
    g: &mut GraphBuilder,
    x: NodeId,
    name: &str,
    pool_features: usize,
    v: V3Variant,
) -> NodeId {
    let label = format!(
        "1x1 64 | 1x1 48 → 5x5 64 | 1x1 64 → 3x3 96 → 3x3 96 | avgpool → 1x1 {pool_features}"
    );
    g.block(name, BlockKind::Inception, label, |g| {
        let b1 = g.branch(|g| v3_conv(g, x, "branch1x1", 64, [1, 1], 1, v));
        let b2 = g.branch(|g| {
            let y = v3_conv(g, x, "branch5x5_1", 48, [1, 1], 1, v);
            v3_conv(g, y, "branch5x5_2", 64, [5, 5], 1, v)
        });
        let b3 = g.branch(|g| {
            let y = v3_conv(g, x, "branch3x3dbl_1", 64, [1, 1], 1, v);
            let y = v3_conv(g, y, "branch3x3dbl_2", 96, [3, 3], 1, v);
            v3_conv(g, y, "branch3x3dbl_3", 96, [3, 3], 1, v)
        });
        let b4 = pool_branch(g, x, pool_features, v);
        g.concat("concat", &[b1, b2, b3, b4])
    })
}

/// Inception v3 grid reduction 35→17 (module B / `Mixed_6a`).
pub fn inception_v3_b(g: &mut GraphBuilder, x: NodeId, name: &str, v: V3Variant) -> NodeId {
    let label = "3x3/2 384 | 1x1 64 → 3x3 96 → 3x3/2 96 | maxpool 3x3/2";
    g.block(name, BlockKind::Reduction, label, |g| {
        let b1 = g.branch(|g| v3_conv(g, x, "branch3x3", 384, [3, 3], 2, v));
        let b2 = g.branch(|g| {
            let y = v3_conv(g, x, "branch3x3dbl_1", 64, [1, 1], 1, v);
            let y = v3_conv(g, y, "branch3x3dbl_2", 96, [3, 3], 1, v);
            v3_conv(g, y, "branch3x3dbl_3", 96, [3, 3], 2, v)
        });
        let b3 = g.branch(|g| g.max_pool("max_pool", x, Pool::new(3, 2)));
        g.concat("concat", &[b1, b2, b3])
    })
}

/// Inception v3 module C (17x17; Figure 6): 7x7 factorised into asymmetric 1x7 and 7x1
/// convolutions with `channels_7x7` bottleneck filters.
pub fn inception_v3_c(
    g: &mut GraphBuilder,
    x: NodeId,
    name: &str,
    channels_7x7: usize,
    v: V3Variant,
) -> NodeId {
    let c7 = channels_7x7;
    let label = format!(
        "1x1 192 | 1x1 {c7} → 1x7 → 7x1 192 | 1x1 {c7} → 7x1 → 1x7 → 7x1 → 1x7 192 | avgpool → 1x1 192"
    );
    g.block(name, BlockKind::Inception, label, |g| {
        let b1 = g.branch(|g| v3_conv(g, x, "branch1x1", 192, [1, 1], 1, v));
        let b2 = g.branch(|g| {
            let y = v3_conv(g, x, "branch7x7_1", c7, [1, 1], 1, v);
            let y = v3_conv(g, y, "branch7x7_2", c7, [1, 7], 1, v);
            v3_conv(g, y, "branch7x7_3", 192, [7, 1], 1, v)
        });
        let b3 = g.branch(|g| {
            let y = v3_conv(g, x, "branch7x7dbl_1", c7, [1, 1], 1, v);
            let y = v3_conv(g, y, "branch7x7dbl_2", c7, [7, 1], 1, v);
            let y = v3_conv(g, y, "branch7x7dbl_3", c7, [1, 7], 1, v);
            let y = v3_conv(g, y, "branch7x7dbl_4", c7, [7, 1], 1, v);
            v3_conv(g, y, "branch7x7dbl_5", 192, [1, 7], 1, v)
        });
        let b4 = pool_branch(g, x, 192, v);
        g.concat("concat", &[b1, b2, b3, b4])
    })
}

/// Inception v3 grid reduction 17→8 (module D / `Mixed_7a`).
pub fn inception_v3_d(g: &mut GraphBuilder, x: NodeId, name: &str, v: V3Variant) -> NodeId {
    let label = "1x1 192 → 3x3/2 320 | 1x1 192 → 1x7 → 7x1 → 3x3/2 192 | maxpool 3x3/2";
    g.block(name, BlockKind::Reduction, label, |g| {
        let b1 = g.branch(|g| {
            let y = v3_conv(g, x, "branch3x3_1", 192, [1, 1], 1, v);
            v3_conv(g, y, "branch3x3_2", 320, [3, 3], 2, v)
        });
        let b2 = g.branch(|g| {
            let y = v3_conv(g, x, "branch7x7x3_1", 192, [1, 1], 1, v);
            let y = v3_conv(g, y, "branch7x7x3_2", 192, [1, 7], 1, v);
            let y = v3_conv(g, y, "branch7x7x3_3", 192, [7, 1], 1, v);
            v3_conv(g, y, "branch7x7x3_4", 192, [3, 3], 2, v)
        });
        let b3 = g.branch(|g| g.max_pool("max_pool", x, Pool::new(3, 2)));
        g.concat("concat", &[b1, b2, b3])
    })
}

/// Inception v3 module E (8x8; Figure 7): expanded filter bank, each 3x3 followed by parallel
/// 1x3 and 3x1 convolutions whose outputs are concatenated.
pub fn inception_v3_e(g: &mut GraphBuilder, x: NodeId, name: &str, v: V3Variant) -> NodeId {
    let label = "1x1 320 | 1x1 384 → (1x3, 3x1) 384 | 1x1 448 → 3x3 384 → (1x3, 3x1) 384 | avgpool → 1x1 192";
    g.block(name, BlockKind::Inception, label, |g| {
        let b1 = g.branch(|g| v3_conv(g, x, "branch1x1", 320, [1, 1], 1, v));
        let b2 = g.branch(|g| {
            let y = v3_conv(g, x, "branch3x3_1", 384, [1, 1], 1, v);
            let a = v3_conv(g, y, "branch3x3_2a", 384, [1, 3], 1, v);
            let b = v3_conv(g, y, "branch3x3_2b", 384, [3, 1], 1, v);
            g.concat("branch3x3_concat", &[a, b])
        });
        let b3 = g.branch(|g| {
            let y = v3_conv(g, x, "branch3x3dbl_1", 448, [1, 1], 1, v);
            let y = v3_conv(g, y, "branch3x3dbl_2", 384, [3, 3], 1, v);
            let a = v3_conv(g, y, "branch3x3dbl_3a", 384, [1, 3], 1, v);
            let b = v3_conv(g, y, "branch3x3dbl_3b", 384, [3, 1], 1, v);
            g.concat("branch3x3dbl_concat", &[a, b])
        });
        let b4 = pool_branch(g, x, 192, v);
        g.concat("concat", &[b1, b2, b3, b4])
    })
}

/// The Inception v3 stem: 299x299x3 → 35x35x192 (torchvision names `Conv2d_1a_3x3` …).
pub fn inception_v3_stem(g: &mut GraphBuilder, x: NodeId, v: V3Variant) -> NodeId {
    g.group(
        "stem",
        BlockKind::Stem,
        "3x3/2 32 → 3x3 32 → 3x3 64 → maxpool → 1x1 80 → 3x3 192 → maxpool",
        |g| {
            let y = v3_conv(g, x, "Conv2d_1a_3x3", 32, [3, 3], 2, v);
            let y = basic_conv(g, y, "Conv2d_2a_3x3", 32, [3, 3], 1, Padding::Valid, v.conv);
            let y = v3_conv(g, y, "Conv2d_2b_3x3", 64, [3, 3], 1, v);
            let y = g.max_pool("maxpool1", y, Pool::new(3, 2));
            let y = v3_conv(g, y, "Conv2d_3b_1x1", 80, [1, 1], 1, v);
            let y = basic_conv(
                g,
                y,
                "Conv2d_4a_3x3",
                192,
                [3, 3],
                1,
                Padding::Valid,
                v.conv,
            );
            g.max_pool("maxpool2", y, Pool::new(3, 2))
        },
    )
}
