//! `inception-mini`: a compact GoogLeNet for small images (28x28 digits by default), built from
//! the same blocks as the full network — a small stem, four inception modules in two stages,
//! one auxiliary classifier, global average pooling, dropout, a linear classifier.
//!
//! It is the network `inception train` trains on the embedded digits; it keeps every idea of the
//! paper (parallel 1x1 / 3x3 / 5x5 / pool branches, 1x1 bottlenecks, filter counts growing with
//! depth, an aux head, no dense layers but the classifier) at a size a laptop trains in minutes.
//!
//! Shapes at 28x28 (1 channel):
//!
//! | stage | output |
//! | --- | --- |
//! | conv 3x3 32 → maxpool 2x2/2 → conv 3x3 64 | 64 x 14 x 14 |
//! | inception 3a, 3b → maxpool 2x2/2 | 160 x 7 x 7 |
//! | inception 4a (aux head), 4b | 288 x 7 x 7 |
//! | global average pool → dropout → fc | 10 |

use super::{Head, ModelConfig};
use crate::blocks::{
    AuxVariant, ConvStyle, InceptionV1Filters as F, V1Variant, aux_classifier, basic_conv,
    inception_v1_block,
};
use crate::graph::{BlockKind, GraphBuilder, NodeId, Padding, Pool};

/// The filter table, as the paper's Table 1: `(module, #1x1, #3x3 reduce, #3x3, #5x5 reduce,
/// #5x5, pool proj)`; `maxpool` is a 2x2/2 grid reduction.
pub const FILTERS: [(&str, Option<F>); 5] = [
    ("3a", Some(F::new(32, 32, 48, 8, 16, 16))),
    ("3b", Some(F::new(48, 48, 64, 8, 24, 24))),
    ("maxpool", None),
    ("4a", Some(F::new(64, 48, 96, 12, 24, 32))),
    ("4b", Some(F::new(96, 64, 128, 16, 32, 32))),
];

/// The module after which the auxiliary classifier sits.
pub const AUX_AFTER: &str = "4a";

/// Builds `inception-mini`.
pub fn build(g: &mut GraphBuilder, cfg: &ModelConfig, x: NodeId) -> (NodeId, Vec<NodeId>) {
    let conv = |g: &mut GraphBuilder, x, name: &str, f| {
        basic_conv(
            g,
            x,
            name,
            f,
            [3, 3],
            1,
            Padding::Explicit([1, 1]),
            ConvStyle::TORCHVISION,
        )
    };
    let mut x = g.group(
        "stem",
        BlockKind::Stem,
        "3x3 conv 32 → maxpool 2x2/2 → 3x3 conv 64",
        |g| {
            let x = conv(g, x, "conv1", 32);
            let x = g.max_pool("maxpool1", x, Pool::new(2, 2).ceil_mode());
            conv(g, x, "conv2", 64)
        },
    );
    let mut aux = Vec::new();
    for (row, filters) in FILTERS {
        match filters {
            Some(f) => {
                x = inception_v1_block(g, x, &format!("inception{row}"), f, V1Variant::compact());
                if cfg.aux_logits && row == AUX_AFTER {
                    let head = AuxVariant::Compact {
                        channels: 64,
                        dropout: 0.3,
                    };
                    aux.push(aux_classifier(g, x, "aux1", cfg.classes, head));
                }
            }
            None => x = g.max_pool("maxpool2", x, Pool::new(2, 2).ceil_mode()),
        }
    }
    let head = Head {
        pool_name: "avgpool",
        max_pool_name: "maxpool",
        dropout_name: "dropout",
        fc_name: "fc",
    };
    (head.build(g, cfg, x), aux)
}
