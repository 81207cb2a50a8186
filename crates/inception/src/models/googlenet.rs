//! GoogLeNet (Inception v1), Szegedy et al. 2014, "Going Deeper with Convolutions".
//!
//! One filter table (the paper's Table 1), two layouts:
//! - [`torchvision`]: `torchvision.models.googlenet` — conv+BN(eps 1e-3), the 3x3 "5x5" branch its
//!   weights need, 2x2 `maxpool4`, dropout 0.2, aux heads with adaptive 4x4 pooling.
//!   6,624,904 parameters (13,004,888 with both aux heads).
//! - [`paper`]: the paper / Caffe `bvlc_googlenet` / ONNX model zoo — biased convs, LRN, a true
//!   5x5 branch, ceil-mode 3x3/2 pools, dropout 0.4, the paper's aux heads; Caffe layer names
//!   (`inception_3a/1x1`). 6,998,552 parameters without aux heads.
//!
//! Shapes at 224x224 (both layouts):
//!
//! | stage | output |
//! | --- | --- |
//! | conv 7x7/2 → maxpool 3x3/2 | 64 x 56 x 56 |
//! | conv 1x1 → conv 3x3 → maxpool 3x3/2 | 192 x 28 x 28 |
//! | inception 3a, 3b → maxpool | 480 x 14 x 14 |
//! | inception 4a–4e (aux heads on 4a and 4d) → maxpool | 832 x 7 x 7 |
//! | inception 5a, 5b | 1024 x 7 x 7 |
//! | global average pool → dropout → fc | 1000 |

use super::{Head, ModelConfig};
use crate::blocks::{
    AuxVariant, ConvStyle, InceptionV1Filters as F, V1Variant, aux_classifier, basic_conv,
    inception_v1_block,
};
use crate::graph::{BlockKind, GraphBuilder, NodeId, Padding, Pool};

/// The paper's Table 1: `(module, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)`;
/// a `maxpool` row stands for the 3x3/2 grid reduction between stages.
pub const FILTERS: [(&str, Option<F>); 11] = [
    ("3a", Some(F::new(64, 96, 128, 16, 32, 32))),
    ("3b", Some(F::new(128, 128, 192, 32, 96, 64))),
    ("maxpool", None),
    ("4a", Some(F::new(192, 96, 208, 16, 48, 64))),
    ("4b", Some(F::new(160, 112, 224, 24, 64, 64))),
    ("4c", Some(F::new(128, 128, 256, 24, 64, 64))),
    ("4d", Some(F::new(112, 144, 288, 32, 64, 64))),
    ("4e", Some(F::new(256, 160, 320, 32, 128, 128))),
    ("maxpool", None),
    ("5a", Some(F::new(256, 160, 320, 32, 128, 128))),
    ("5b", Some(F::new(384, 192, 384, 48, 128, 128))),
];

/// Modules after which the auxiliary classifiers sit.
pub const AUX_AFTER: [&str; 2] = ["4a", "4d"];

/// torchvision's `transform_input`: maps ImageNet-normalised input to the [-1, 1] range the
/// TF-ported weights expect: `x_c * (std_c / 0.5) + (mean_c - 0.5) / 0.5`.
pub fn transform_input(g: &mut GraphBuilder, x: NodeId) -> NodeId {
    let mean = [0.485f32, 0.456, 0.406];
    let std = [0.229f32, 0.224, 0.225];
    let scale = std.iter().map(|s| s / 0.5).collect();
    let shift = mean.iter().map(|m| (m - 0.5) / 0.5).collect();
    g.add(
        "transform_input",
        crate::graph::Op::ChannelAffine { scale, shift },
        &[x],
    )
}

/// Builds the torchvision layout.
pub fn torchvision(g: &mut GraphBuilder, cfg: &ModelConfig, x: NodeId) -> (NodeId, Vec<NodeId>) {
    let style = ConvStyle::TORCHVISION;
    let conv = |g: &mut GraphBuilder, x, name: &str, f, k: usize, s| {
        basic_conv(
            g,
            x,
            name,
            f,
            [k, k],
            s,
            Padding::Explicit([k / 2; 2]),
            style,
        )
    };
    let x = if cfg.transform_input {
        transform_input(g, x)
    } else {
        x
    };
    let x = g.group(
        "stem",
        BlockKind::Stem,
        "7x7/2 conv 64 → maxpool → 1x1 64 → 3x3 192 → maxpool",
        |g| {
            let x = conv(g, x, "conv1", 64, 7, 2);
            let x = g.max_pool("maxpool1", x, Pool::new(3, 2).ceil_mode());
            let x = conv(g, x, "conv2", 64, 1, 1);
            let x = conv(g, x, "conv3", 192, 3, 1);
            g.max_pool("maxpool2", x, Pool::new(3, 2).ceil_mode())
        },
    );
    let aux_head = AuxVariant::TorchvisionV1 { dropout: 0.7 };
    let (x, aux) = stages(
        g,
        cfg,
        x,
        V1Variant::torchvision(),
        ("inception", "aux", aux_head),
        |g, x, n| {
            // torchvision's maxpool4 is 2x2/2 where the paper has 3x3/2.
            let k = if n == 4 { 2 } else { 3 };
            g.max_pool(&format!("maxpool{n}"), x, Pool::new(k, 2).ceil_mode())
        },
    );
    let head = Head {
        pool_name: "avgpool",
        max_pool_name: "maxpool",
        dropout_name: "dropout",
        fc_name: "fc",
    };
    (head.build(g, cfg, x), aux)
}

/// Builds the paper / Caffe `bvlc_googlenet` layout (build the graph with `/` as separator).
pub fn paper(g: &mut GraphBuilder, cfg: &ModelConfig, x: NodeId) -> (NodeId, Vec<NodeId>) {
    let conv = |g: &mut GraphBuilder, x, name: &str, f, k: usize, s| {
        basic_conv(
            g,
            x,
            name,
            f,
            [k, k],
            s,
            Padding::Explicit([k / 2; 2]),
            ConvStyle::Bias,
        )
    };
    let lrn = |g: &mut GraphBuilder, x, name: &str| g.lrn(name, x, 5, 1e-4, 0.75, 1.0);
    let x = g.group(
        "stem",
        BlockKind::Stem,
        "7x7/2 conv 64 → maxpool → LRN → 1x1 64 → 3x3 192 → LRN → maxpool",
        |g| {
            let x = conv(g, x, "conv1/7x7_s2", 64, 7, 2);
            let x = g.max_pool("pool1/3x3_s2", x, Pool::new(3, 2).ceil_mode());
            let x = lrn(g, x, "pool1/norm1");
            let x = conv(g, x, "conv2/3x3_reduce", 64, 1, 1);
            let x = conv(g, x, "conv2/3x3", 192, 3, 1);
            let x = lrn(g, x, "conv2/norm2");
            g.max_pool("pool2/3x3_s2", x, Pool::new(3, 2).ceil_mode())
        },
    );
    let aux_head = AuxVariant::Paper { dropout: 0.7 };
    let (x, aux) = stages(
        g,
        cfg,
        x,
        V1Variant::paper(),
        ("inception_", "loss", aux_head),
        |g, x, n| g.max_pool(&format!("pool{n}/3x3_s2"), x, Pool::new(3, 2).ceil_mode()),
    );
    let head = Head {
        pool_name: "pool5/7x7_s1",
        max_pool_name: "pool5/max",
        dropout_name: "pool5/drop_7x7_s1",
        fc_name: "loss3/classifier",
    };
    (head.build(g, cfg, x), aux)
}

/// Stages 3–5: the inception modules of [`FILTERS`] with the grid reductions between them
/// (`pool(g, x, n)` builds reduction `n`, numbered from 3) and the aux heads after
/// [`AUX_AFTER`]. `names` are the block-name prefix, the aux-name prefix and the aux head.
fn stages(
    g: &mut GraphBuilder,
    cfg: &ModelConfig,
    mut x: NodeId,
    variant: V1Variant,
    names: (&str, &str, AuxVariant),
    pool: impl Fn(&mut GraphBuilder, NodeId, usize) -> NodeId,
) -> (NodeId, Vec<NodeId>) {
    let (block_prefix, aux_prefix, aux_head) = names;
    let mut aux = Vec::new();
    let mut pools = 3;
    for (row, filters) in FILTERS {
        match filters {
            Some(f) => {
                x = inception_v1_block(g, x, &format!("{block_prefix}{row}"), f, variant);
                if cfg.aux_logits && AUX_AFTER.contains(&row) {
                    let name = format!("{aux_prefix}{}", aux.len() + 1);
                    aux.push(aux_classifier(g, x, &name, cfg.classes, aux_head));
                }
            }
            None => {
                x = pool(g, x, pools);
                pools += 1;
            }
        }
    }
    (x, aux)
}
