//! The heads shared by TF-slim's layouts.

use super::{Head, ModelConfig};
use crate::blocks::slim::slim_conv;
use crate::graph::{BlockKind, GraphBuilder, NodeId, Padding, Pool, Shape};

/// TF-slim's aux head of Inception v4 and Inception-ResNet-v2 (`AuxLogits`): average pool 5x5/3
/// (valid), 1x1 conv 128, a conv of 768 whose kernel covers the whole remaining map (5x5 at
/// 299x299), flatten, dense. `names` are the four layers' scopes, which differ between the two.
pub fn aux_head(g: &mut GraphBuilder, x: NodeId, classes: usize, names: [&str; 4]) -> NodeId {
    let label = "avgpool 5x5/3 → 1x1 128 → conv 768 (the whole map) → fc";
    g.block("AuxLogits", BlockKind::Aux, label, |g| {
        let p = g.avg_pool(names[0], x, Pool::new(5, 3));
        let c = slim_conv(g, p, names[1], 128, [1, 1], 1, Padding::Same);
        let kernel = match g.shape(c) {
            Shape::Map([_, h, w]) => [h.max(1), w.max(1)],
            Shape::Flat(_) => [1, 1],
        };
        let c = slim_conv(g, c, names[2], 768, kernel, 1, Padding::Valid);
        let f = g.flatten("Flatten", c);
        g.dense(names[3], f, classes, true)
    })
}

/// TF-slim's dense classifier (`Logits`): average pool over the whole map → dropout → flatten →
/// `Logits/Logits`.
pub fn dense_head(g: &mut GraphBuilder, cfg: &ModelConfig, x: NodeId) -> NodeId {
    Head {
        pool_name: "Logits/AvgPool_1a",
        max_pool_name: "Logits/MaxPool_1a",
        dropout_name: "Logits/Dropout_1b",
        fc_name: "Logits/Logits",
    }
    .build(g, cfg, x)
}

/// TF-slim's 1x1-conv classifier (GoogLeNet and v3): average pool over the whole map → dropout
/// → 1x1 conv with bias → squeeze. `names` are the pool's, the dropout's and the conv's scopes.
/// Without the top it is the Keras-style optional pooling, under the pool's name.
pub fn conv_head(g: &mut GraphBuilder, cfg: &ModelConfig, x: NodeId, names: [&str; 3]) -> NodeId {
    if !cfg.include_top {
        return match cfg.pooling {
            None => x,
            Some(super::Pooling::Avg) => g.global_avg_pool(names[0], x),
            Some(super::Pooling::Max) => g.global_max_pool(&format!("{}_max", names[0]), x),
        };
    }
    g.group(
        "head",
        BlockKind::Head,
        "global avgpool → dropout → 1x1 conv",
        |g| {
            let x = g.adaptive_avg_pool(names[0], x, [1, 1]);
            let x = if cfg.dropout > 0.0 {
                g.dropout(names[1], x, cfg.dropout)
            } else {
                x
            };
            let x = g.conv2d(
                names[2],
                x,
                cfg.classes,
                [1, 1],
                [1, 1],
                Padding::Valid,
                true,
            );
            let x = g.flatten("Logits/SpatialSqueeze", x);
            if cfg.softmax {
                g.softmax("Predictions", x)
            } else {
                x
            }
        },
    )
}
