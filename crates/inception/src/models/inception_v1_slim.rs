//! GoogLeNet (Inception v1) in TF-slim's layout (`nets/inception_v1.py`, the
//! `inception_v1_2016_08_28` checkpoint): BatchNorm after every conv (no γ, ε 0.001), the
//! "5x5" branches as 3x3s, TensorFlow's `SAME` padding, no aux heads, a 1x1-conv classifier
//! with 1001 classes (class 0 is "background"). 6,618,649 trainable + 14,560 moving statistics.
//!
//! Shapes at 224x224:
//!
//! | stage | layers | output |
//! | --- | --- | --- |
//! | stem | 7x7/2 64, maxpool 3x3/2, 1x1 64, 3x3 192, maxpool 3x3/2 (all same) | 192 x 28 x 28 |
//! | `Mixed_3b`, `3c` | as the paper's 3a, 3b | 480 x 28 x 28 |
//! | `MaxPool_4a_3x3`, `Mixed_4b`–`4f` | as 4a–4e | 832 x 14 x 14 |
//! | `MaxPool_5a_2x2`, `Mixed_5b`, `5c` | as 5a, 5b (`Mixed_5b`'s typo kept) | 1024 x 7 x 7 |
//! | `Logits` | global average pool → dropout → 1x1 conv `Conv2d_0c_1x1` | 1001 |

use super::ModelConfig;
use crate::blocks::InceptionV1Filters as F;
use crate::blocks::slim::{same, slim_conv};
use crate::blocks::slim_v3::inception_v1_slim;
use crate::graph::{BlockKind, GraphBuilder, NodeId, Padding, Pool};

/// The variable scope every name starts with.
pub const SCOPE: &str = "InceptionV1";

/// The modules with the paper's filters (Table 1); `Mixed_4a`-style pools sit before 4b and 5b.
pub const MODULES: [(&str, F); 9] = [
    ("Mixed_3b", F::new(64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", F::new(128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", F::new(192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", F::new(160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", F::new(128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", F::new(112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", F::new(256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", F::new(256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", F::new(384, 192, 384, 48, 128, 128)),
];

fn max_same(g: &mut GraphBuilder, x: NodeId, name: &str, k: usize) -> NodeId {
    g.max_pool(name, x, Pool::new(k, 2).padding(Padding::Same))
}

/// Builds TF-slim's layout.
pub fn slim(g: &mut GraphBuilder, cfg: &ModelConfig, x: NodeId) -> (NodeId, Vec<NodeId>) {
    g.scope(SCOPE, |g| {
        let label = "7x7/2 64 → maxpool 3x3/2 → 1x1 64 → 3x3 192 → maxpool 3x3/2";
        let mut x = g.group("stem", BlockKind::Stem, label, |g| {
            let x = slim_conv(g, x, "Conv2d_1a_7x7", 64, [7, 7], 2, Padding::Same);
            let x = max_same(g, x, "MaxPool_2a_3x3", 3);
            let x = same(g, x, "Conv2d_2b_1x1", 64, [1, 1]);
            let x = same(g, x, "Conv2d_2c_3x3", 192, [3, 3]);
            max_same(g, x, "MaxPool_3a_3x3", 3)
        });
        for (name, filters) in MODULES {
            if name == "Mixed_4b" {
                x = max_same(g, x, "MaxPool_4a_3x3", 3);
            }
            if name == "Mixed_5b" {
                x = max_same(g, x, "MaxPool_5a_2x2", 2);
            }
            x = inception_v1_slim(g, x, name, filters, name == "Mixed_5b");
        }
        let names = [
            "Logits/AvgPool_0a_7x7",
            "Logits/Dropout_0b",
            "Logits/Conv2d_0c_1x1",
        ];
        (super::slim::conv_head(g, cfg, x, names), Vec::new())
    })
}
