//! Inception v4, Szegedy et al. 2016, "Inception-v4, Inception-ResNet and the Impact of Residual
//! Connections on Learning", in TF-slim's layout (`nets/inception_v4.py`): its variable names
//! (`InceptionV4/Mixed_6b/Branch_1/Conv2d_0b_1x7/weights`), BatchNorm without γ (ε 0.001),
//! TensorFlow's `SAME` padding, an aux head on `Mixed_6h` and 1001 classes (class 0 is
//! "background"). timm's `inception_v4.tf_in1k` holds the same weights under other names.
//! 42,679,816 parameters with 1000 classes and no aux head; 46,009,106 + 64,960 moving statistics
//! with 1001 classes and the aux head.
//!
//! Shapes at 299x299:
//!
//! | stage | layers | output |
//! | --- | --- | --- |
//! | stem | 3x3/2 32, 3x3 32, 3x3 64 (same) | 64 x 147 x 147 |
//! | `Mixed_3a` | maxpool 3x3/2 · 3x3/2 96 | 160 x 73 x 73 |
//! | `Mixed_4a` | 1x1 64 → 3x3 96 · 1x1 64 → 1x7 64 → 7x1 64 → 3x3 96 | 192 x 71 x 71 |
//! | `Mixed_5a` | 3x3/2 192 · maxpool 3x3/2 | 384 x 35 x 35 |
//! | `Mixed_5b`–`5e` | 4 x Inception-A | 384 x 35 x 35 |
//! | `Mixed_6a` | Reduction-A (k 192, l 224, m 256, n 384) | 1024 x 17 x 17 |
//! | `Mixed_6b`–`6h` | 7 x Inception-B; aux head on `Mixed_6h` | 1024 x 17 x 17 |
//! | `Mixed_7a` | Reduction-B | 1536 x 8 x 8 |
//! | `Mixed_7b`–`7d` | 3 x Inception-C | 1536 x 8 x 8 |
//! | `Logits` | global average pool → dropout → `Logits` (dense) | 1001 |

use super::ModelConfig;
use crate::blocks::slim::{
    ReductionA, inception_v4_a, inception_v4_b, inception_v4_c, max_reduce, reduce, reduction_a,
    reduction_v4_b, same, slim_branch, slim_conv,
};
use crate::graph::{BlockKind, GraphBuilder, NodeId, Padding};

/// The variable scope every name starts with.
pub const SCOPE: &str = "InceptionV4";

/// The module after which the aux head sits.
pub const AUX_AFTER: &str = "Mixed_6h";

/// The stem up to `Mixed_5a` (Figure 3 of the paper).
fn stem(g: &mut GraphBuilder, x: NodeId) -> NodeId {
    let x = g.group(
        "stem",
        BlockKind::Stem,
        "3x3/2 32 → 3x3 32 → 3x3 64",
        |g| {
            let x = slim_conv(g, x, "Conv2d_1a_3x3", 32, [3, 3], 2, Padding::Valid);
            let x = slim_conv(g, x, "Conv2d_2a_3x3", 32, [3, 3], 1, Padding::Valid);
            same(g, x, "Conv2d_2b_3x3", 64, [3, 3])
        },
    );
    let x = g.block(
        "Mixed_3a",
        BlockKind::Reduction,
        "maxpool 3x3/2 | 3x3/2 96",
        |g| {
            let b0 = slim_branch(g, 0, |g| max_reduce(g, x, "MaxPool_0a_3x3"));
            let b1 = slim_branch(g, 1, |g| reduce(g, x, "Conv2d_0a_3x3", 96));
            g.concat("concat", &[b0, b1])
        },
    );
    let x = g.block(
        "Mixed_4a",
        BlockKind::Inception,
        "1x1 64 → 3x3 96 | 1x1 64 → 1x7 64 → 7x1 64 → 3x3 96",
        |g| {
            let b0 = slim_branch(g, 0, |g| {
                let y = same(g, x, "Conv2d_0a_1x1", 64, [1, 1]);
                slim_conv(g, y, "Conv2d_1a_3x3", 96, [3, 3], 1, Padding::Valid)
            });
            let b1 = slim_branch(g, 1, |g| {
                let y = same(g, x, "Conv2d_0a_1x1", 64, [1, 1]);
                let y = same(g, y, "Conv2d_0b_1x7", 64, [1, 7]);
                let y = same(g, y, "Conv2d_0c_7x1", 64, [7, 1]);
                slim_conv(g, y, "Conv2d_1a_3x3", 96, [3, 3], 1, Padding::Valid)
            });
            g.concat("concat", &[b0, b1])
        },
    );
    g.block(
        "Mixed_5a",
        BlockKind::Reduction,
        "3x3/2 192 | maxpool 3x3/2",
        |g| {
            let b0 = slim_branch(g, 0, |g| reduce(g, x, "Conv2d_1a_3x3", 192));
            let b1 = slim_branch(g, 1, |g| max_reduce(g, x, "MaxPool_1a_3x3"));
            g.concat("concat", &[b0, b1])
        },
    )
}

/// Builds TF-slim's layout; returns the main output and the aux head's, if asked for.
pub fn slim(g: &mut GraphBuilder, cfg: &ModelConfig, x: NodeId) -> (NodeId, Vec<NodeId>) {
    g.scope(SCOPE, |g| {
        let mut x = stem(g, x);
        for name in ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_5e"] {
            x = inception_v4_a(g, x, name);
        }
        x = reduction_a(g, x, "Mixed_6a", ReductionA::V4);
        let mut aux = Vec::new();
        for name in [
            "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_6f", "Mixed_6g", "Mixed_6h",
        ] {
            x = inception_v4_b(g, x, name);
        }
        if cfg.aux_logits {
            aux.push(super::slim::aux_head(
                g,
                x,
                cfg.classes,
                ["AvgPool_1a_5x5", "Conv2d_1b_1x1", "Conv2d_2a", "Aux_logits"],
            ));
        }
        x = reduction_v4_b(g, x, "Mixed_7a");
        for name in ["Mixed_7b", "Mixed_7c", "Mixed_7d"] {
            x = inception_v4_c(g, x, name);
        }
        (super::slim::dense_head(g, cfg, x), aux)
    })
}
