//! Inception v3 in TF-slim's layout (`nets/inception_v3.py`, the `inception_v3_2016_08_28`
//! checkpoint and TF-Hub's Inception v3 modules): TF-slim's names with their historical typos,
//! BatchNorm without γ (ε 0.001), TensorFlow's `SAME` padding (average pools ignore it), a
//! 1x1-conv aux head on `Mixed_6e` and classifier, 1001 classes (class 0 is "background"), and
//! TF-slim's `depth_multiplier` / `min_depth`. 27,145,970 trainable + 36,224 moving statistics
//! with the aux head.
//!
//! Shapes at 299x299 (the modules are [`inception_v3`](super::inception_v3)'s):
//!
//! | stage | module | output |
//! | --- | --- | --- |
//! | stem | 3x3/2, 3x3, 3x3 (same), maxpool, 1x1, 3x3, maxpool | 192 x 35 x 35 |
//! | `Mixed_5b`–`5d` | A (pool features 32, 64, 64) | 288 x 35 x 35 |
//! | `Mixed_6a` | B (reduction) | 768 x 17 x 17 |
//! | `Mixed_6b`–`6e` | C (7x7 channels 128, 160, 160, 192); aux head on 6e | 768 x 17 x 17 |
//! | `Mixed_7a` | D (reduction) | 1280 x 8 x 8 |
//! | `Mixed_7b`, `7c` | E | 2048 x 8 x 8 |
//! | `Logits` | global average pool → dropout → 1x1 conv `Conv2d_1c_1x1` | 1001 |

use super::ModelConfig;
use crate::blocks::slim::slim_conv;
use crate::blocks::slim_v3::{
    Depth, inception_v3_slim_a, inception_v3_slim_b, inception_v3_slim_c, inception_v3_slim_d,
    inception_v3_slim_e, inception_v3_slim_stem,
};
use crate::graph::{BlockKind, GraphBuilder, NodeId, Padding, Pool, Shape};

/// The variable scope every name starts with.
pub const SCOPE: &str = "InceptionV3";

/// The aux head (`AuxLogits`): average pool 5x5/3 → 1x1 128 → conv 768 over the remaining map
/// (at most 5x5) → 1x1 conv to the classes.
fn aux_head(g: &mut GraphBuilder, x: NodeId, classes: usize, d: Depth) -> NodeId {
    let label = "avgpool 5x5/3 → 1x1 128 → 5x5 768 → 1x1 conv";
    g.block("AuxLogits", BlockKind::Aux, label, |g| {
        let p = g.avg_pool("AvgPool_1a_5x5", x, Pool::new(5, 3));
        let c = slim_conv(g, p, "Conv2d_1b_1x1", d.of(128), [1, 1], 1, Padding::Same);
        let [h, w] = match g.shape(c) {
            Shape::Map([_, h, w]) => [h.clamp(1, 5), w.clamp(1, 5)],
            Shape::Flat(_) => [1, 1],
        };
        let name = format!("Conv2d_2a_{h}x{w}");
        let c = slim_conv(g, c, &name, d.of(768), [h, w], 1, Padding::Valid);
        let c = g.conv2d(
            "Conv2d_2b_1x1",
            c,
            classes,
            [1, 1],
            [1, 1],
            Padding::Valid,
            true,
        );
        g.flatten("SpatialSqueeze", c)
    })
}

/// Builds TF-slim's layout.
pub fn slim(g: &mut GraphBuilder, cfg: &ModelConfig, x: NodeId) -> (NodeId, Vec<NodeId>) {
    let d = Depth {
        multiplier: cfg.depth_multiplier,
        min: cfg.min_depth,
    };
    g.scope(SCOPE, |g| {
        let mut x = inception_v3_slim_stem(g, x, d);
        x = inception_v3_slim_a(g, x, "Mixed_5b", 32, d, false);
        x = inception_v3_slim_a(g, x, "Mixed_5c", 64, d, true);
        x = inception_v3_slim_a(g, x, "Mixed_5d", 64, d, false);
        x = inception_v3_slim_b(g, x, "Mixed_6a", d);
        for (name, c) in [
            ("Mixed_6b", 128),
            ("Mixed_6c", 160),
            ("Mixed_6d", 160),
            ("Mixed_6e", 192),
        ] {
            x = inception_v3_slim_c(g, x, name, c, d);
        }
        let mut aux = Vec::new();
        if cfg.aux_logits {
            aux.push(aux_head(g, x, cfg.classes, d));
        }
        x = inception_v3_slim_d(g, x, "Mixed_7a", d);
        x = inception_v3_slim_e(g, x, "Mixed_7b", d, true);
        x = inception_v3_slim_e(g, x, "Mixed_7c", d, false);
        let names = [
            "Logits/AvgPool_1a_8x8",
            "Logits/Dropout_1b",
            "Logits/Conv2d_1c_1x1",
        ];
        (super::slim::conv_head(g, cfg, x, names), aux)
    })
}
