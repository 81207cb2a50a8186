//! Inception-ResNet-v2, Szegedy et al. 2016, in TF-slim's layout
//! (`nets/inception_resnet_v2.py`): its variable names
//! (`InceptionResnetV2/Repeat_1/block17_3/Branch_1/Conv2d_0b_1x7/weights`), BatchNorm without γ
//! (ε 0.001), TensorFlow's `SAME` padding, an aux head on the 17x17 grid and 1001 classes (class
//! 0 is "background"). timm's `inception_resnet_v2.tf_in1k` and Keras's `InceptionResNetV2` hold
//! the same weights under other names. 55,843,464 parameters with 1000 classes and no aux head;
//! 59,182,258 + 62,336 moving statistics with 1001 classes and the aux head.
//!
//! Shapes at 299x299:
//!
//! | stage | layers | output |
//! | --- | --- | --- |
//! | stem | 3x3/2 32, 3x3 32, 3x3 64 (same), maxpool 3x3/2, 1x1 80, 3x3 192, maxpool 3x3/2 | 192 x 35 x 35 |
//! | `Mixed_5b` | 1x1 96 · 1x1 48 → 5x5 64 · 1x1 64 → 3x3 96 → 3x3 96 · avgpool → 1x1 64 | 320 x 35 x 35 |
//! | `Repeat/block35_1`–`10` | 10 x block35, scale 0.17 | 320 x 35 x 35 |
//! | `Mixed_6a` | Reduction-A (k 256, l 256, m 384, n 384) | 1088 x 17 x 17 |
//! | `Repeat_1/block17_1`–`20` | 20 x block17, scale 0.10; aux head after them | 1088 x 17 x 17 |
//! | `Mixed_7a` | 1x1 256 → 3x3/2 384 · 1x1 256 → 3x3/2 288 · 1x1 256 → 3x3 288 → 3x3/2 320 · maxpool 3x3/2 | 2080 x 8 x 8 |
//! | `Repeat_2/block8_1`–`9`, `Block8` | 9 x block8, scale 0.20; then one without ReLU (scale 1) | 2080 x 8 x 8 |
//! | `Conv2d_7b_1x1` | 1x1 1536 | 1536 x 8 x 8 |
//! | `Logits` | global average pool → dropout → `Logits` (dense) | 1001 |

use super::ModelConfig;
use crate::blocks::slim::{
    ReductionA, block8, block17, block35, max_reduce, pool_branch, reduce, reduction_a, same,
    slim_branch, slim_conv,
};
use crate::graph::{BlockKind, GraphBuilder, NodeId, Padding};

/// The variable scope every name starts with.
pub const SCOPE: &str = "InceptionResnetV2";

/// The residual scales of the three block kinds.
pub const SCALES: [f32; 3] = [0.17, 0.10, 0.20];

fn stem(g: &mut GraphBuilder, x: NodeId) -> NodeId {
    let label = "3x3/2 32 → 3x3 32 → 3x3 64 → maxpool 3x3/2 → 1x1 80 → 3x3 192 → maxpool 3x3/2";
    let x = g.group("stem", BlockKind::Stem, label, |g| {
        let x = slim_conv(g, x, "Conv2d_1a_3x3", 32, [3, 3], 2, Padding::Valid);
        let x = slim_conv(g, x, "Conv2d_2a_3x3", 32, [3, 3], 1, Padding::Valid);
        let x = same(g, x, "Conv2d_2b_3x3", 64, [3, 3]);
        let x = max_reduce(g, x, "MaxPool_3a_3x3");
        let x = slim_conv(g, x, "Conv2d_3b_1x1", 80, [1, 1], 1, Padding::Valid);
        let x = slim_conv(g, x, "Conv2d_4a_3x3", 192, [3, 3], 1, Padding::Valid);
        max_reduce(g, x, "MaxPool_5a_3x3")
    });
    let label = "1x1 96 | 1x1 48 → 5x5 64 | 1x1 64 → 3x3 96 → 3x3 96 | avgpool → 1x1 64";
    g.block("Mixed_5b", BlockKind::Inception, label, |g| {
        let b0 = slim_branch(g, 0, |g| same(g, x, "Conv2d_1x1", 96, [1, 1]));
        let b1 = slim_branch(g, 1, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", 48, [1, 1]);
            same(g, y, "Conv2d_0b_5x5", 64, [5, 5])
        });
        let b2 = slim_branch(g, 2, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", 64, [1, 1]);
            let y = same(g, y, "Conv2d_0b_3x3", 96, [3, 3]);
            same(g, y, "Conv2d_0c_3x3", 96, [3, 3])
        });
        let b3 = pool_branch(g, x, 64);
        g.concat("concat", &[b0, b1, b2, b3])
    })
}

/// `Mixed_7a`: the 17→8 reduction of Inception-ResNet-v2.
fn mixed_7a(g: &mut GraphBuilder, x: NodeId) -> NodeId {
    let label = "1x1 256 → 3x3/2 384 | 1x1 256 → 3x3/2 288 | 1x1 256 → 3x3 288 → 3x3/2 320 | \
                 maxpool 3x3/2";
    g.block("Mixed_7a", BlockKind::Reduction, label, |g| {
        let b0 = slim_branch(g, 0, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", 256, [1, 1]);
            reduce(g, y, "Conv2d_1a_3x3", 384)
        });
        let b1 = slim_branch(g, 1, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", 256, [1, 1]);
            reduce(g, y, "Conv2d_1a_3x3", 288)
        });
        let b2 = slim_branch(g, 2, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", 256, [1, 1]);
            let y = same(g, y, "Conv2d_0b_3x3", 288, [3, 3]);
            reduce(g, y, "Conv2d_1a_3x3", 320)
        });
        let b3 = slim_branch(g, 3, |g| max_reduce(g, x, "MaxPool_1a_3x3"));
        g.concat("concat", &[b0, b1, b2, b3])
    })
}

/// Builds TF-slim's layout; returns the main output and the aux head's, if asked for.
pub fn slim(g: &mut GraphBuilder, cfg: &ModelConfig, x: NodeId) -> (NodeId, Vec<NodeId>) {
    g.scope(SCOPE, |g| {
        let mut x = stem(g, x);
        x = g.scope("Repeat", |g| {
            (1..=10).fold(x, |x, i| {
                block35(g, x, &format!("block35_{i}"), SCALES[0], true)
            })
        });
        x = reduction_a(g, x, "Mixed_6a", ReductionA::RESNET_V2);
        x = g.scope("Repeat_1", |g| {
            (1..=20).fold(x, |x, i| {
                block17(g, x, &format!("block17_{i}"), SCALES[1], true)
            })
        });
        let mut aux = Vec::new();
        if cfg.aux_logits {
            aux.push(super::slim::aux_head(
                g,
                x,
                cfg.classes,
                ["Conv2d_1a_3x3", "Conv2d_1b_1x1", "Conv2d_2a_5x5", "Logits"],
            ));
        }
        x = mixed_7a(g, x);
        x = g.scope("Repeat_2", |g| {
            (1..=9).fold(x, |x, i| {
                block8(g, x, &format!("block8_{i}"), SCALES[2], true)
            })
        });
        x = block8(g, x, "Block8", 1.0, false);
        x = g.group("Conv2d_7b", BlockKind::Other, "1x1 1536", |g| {
            slim_conv(g, x, "Conv2d_7b_1x1", 1536, [1, 1], 1, Padding::Valid)
        });
        (super::slim::dense_head(g, cfg, x), aux)
    })
}
