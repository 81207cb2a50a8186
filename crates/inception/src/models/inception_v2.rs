//! BN-Inception (Inception v2) in TF-slim's layout (`nets/inception_v2.py`, the
//! `inception_v2_2016_08_28` checkpoint): the separable 7x7 stem (depthwise multiplier 8,
//! biases, no BatchNorm) or, with `use_separable_conv` off, a plain 7x7 conv + BatchNorm; the
//! modules of [`bn_inception`](crate::blocks::bn_inception); TensorFlow's `SAME` padding; a
//! 1x1-conv classifier with 1001 classes (class 0 is "background"); TF-slim's
//! `depth_multiplier` / `min_depth`. 11,179,361 trainable + 19,776 moving statistics.
//!
//! Shapes at 224x224:
//!
//! | stage | layers | output |
//! | --- | --- | --- |
//! | stem | separable 7x7/2 64, maxpool 3x3/2, 1x1 64, 3x3 192, maxpool 3x3/2 | 192 x 28 x 28 |
//! | `Mixed_3b`, `3c` | BN-Inception | 320 x 28 x 28 |
//! | `Mixed_4a` | reduction | 576 x 14 x 14 |
//! | `Mixed_4b`–`4e` | BN-Inception | 576 x 14 x 14 |
//! | `Mixed_5a` | reduction | 1024 x 7 x 7 |
//! | `Mixed_5b`, `5c` | BN-Inception (5c with max pooling) | 1024 x 7 x 7 |
//! | `Logits` | global average pool → dropout → 1x1 conv `Conv2d_1c_1x1` | 1001 |

use super::ModelConfig;
use crate::blocks::bn_inception::{
    BnInceptionFilters as F, BnReductionFilters as R, PoolKind, bn_inception, bn_reduction,
};
use crate::blocks::slim::{same, slim_conv};
use crate::blocks::slim_v3::Depth;
use crate::graph::{BlockKind, GraphBuilder, NodeId, Padding, Pool};

/// The variable scope every name starts with.
pub const SCOPE: &str = "InceptionV2";

/// One stage after the stem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// A BN-Inception module.
    Module(F),
    /// A grid reduction.
    Reduction(R),
}

/// The stages after the stem, as the table in [`bn_inception`](crate::blocks::bn_inception).
pub const STAGES: [(&str, Stage); 10] = {
    use PoolKind::{Avg, Max};
    use Stage::{Module as M, Reduction as Red};
    [
        ("Mixed_3b", M(F::new(64, 64, 64, 64, 96, 32, Avg))),
        ("Mixed_3c", M(F::new(64, 64, 96, 64, 96, 64, Avg))),
        (
            "Mixed_4a",
            Red(R {
                n3x3_reduce: 128,
                n3x3: 160,
                d3x3_reduce: 64,
                d3x3: 96,
            }),
        ),
        ("Mixed_4b", M(F::new(224, 64, 96, 96, 128, 128, Avg))),
        ("Mixed_4c", M(F::new(192, 96, 128, 96, 128, 128, Avg))),
        ("Mixed_4d", M(F::new(160, 128, 160, 128, 160, 96, Avg))),
        ("Mixed_4e", M(F::new(96, 128, 192, 160, 192, 96, Avg))),
        (
            "Mixed_5a",
            Red(R {
                n3x3_reduce: 128,
                n3x3: 192,
                d3x3_reduce: 192,
                d3x3: 256,
            }),
        ),
        ("Mixed_5b", M(F::new(352, 192, 320, 160, 224, 128, Avg))),
        ("Mixed_5c", M(F::new(352, 192, 320, 192, 224, 128, Max))),
    ]
};

fn stem(g: &mut GraphBuilder, x: NodeId, cfg: &ModelConfig, d: Depth) -> NodeId {
    let label = "7x7/2 64 (separable) → maxpool 3x3/2 → 1x1 64 → 3x3 192 → maxpool 3x3/2";
    g.group("stem", BlockKind::Stem, label, |g| {
        let x = if cfg.use_separable_conv {
            // TF-slim's separable_conv2d: depthwise, pointwise with bias, ReLU; no BatchNorm.
            let multiplier = (d.of(64) / 3).clamp(1, 8);
            g.scope("Conv2d_1a_7x7", |g| {
                let y =
                    g.depthwise_conv2d("depthwise", x, multiplier, [7, 7], [2, 2], Padding::Same);
                let y = g.conv2d(
                    "pointwise",
                    y,
                    d.of(64),
                    [1, 1],
                    [1, 1],
                    Padding::Valid,
                    true,
                );
                g.relu("Relu", y)
            })
        } else {
            slim_conv(g, x, "Conv2d_1a_7x7", d.of(64), [7, 7], 2, Padding::Same)
        };
        let pool = Pool::new(3, 2).padding(Padding::Same);
        let x = g.max_pool("MaxPool_2a_3x3", x, pool);
        let x = same(g, x, "Conv2d_2b_1x1", d.of(64), [1, 1]);
        let x = same(g, x, "Conv2d_2c_3x3", d.of(192), [3, 3]);
        g.max_pool("MaxPool_3a_3x3", x, pool)
    })
}

/// Builds TF-slim's layout.
pub fn slim(g: &mut GraphBuilder, cfg: &ModelConfig, x: NodeId) -> (NodeId, Vec<NodeId>) {
    let d = Depth {
        multiplier: cfg.depth_multiplier,
        min: cfg.min_depth,
    };
    g.scope(SCOPE, |g| {
        let mut x = stem(g, x, cfg, d);
        for (name, stage) in STAGES {
            x = match stage {
                Stage::Module(f) => bn_inception(g, x, name, f, d),
                Stage::Reduction(r) => bn_reduction(g, x, name, r, d),
            };
        }
        let names = [
            "Logits/AvgPool_1a_7x7",
            "Logits/Dropout_1b",
            "Logits/Conv2d_1c_1x1",
        ];
        (super::slim::conv_head(g, cfg, x, names), Vec::new())
    })
}
