//! The blocks of TF-slim's Inception networks (`tensorflow/models`, `research/slim/nets`), named
//! as TF-slim names its variables, so checkpoint names fall out of the layout:
//! `Mixed_6b/Branch_1/Conv2d_0b_1x7` is the conv whose kernel is
//! `Mixed_6b/Branch_1/Conv2d_0b_1x7/weights` and whose BatchNorm is `…/BatchNorm`.
//!
//! Every conv is TF-slim's `conv2d` under the Inception arg scopes: no bias, BatchNorm without
//! γ (ε 0.001), ReLU; stride-1 convs and pools pad `SAME` as TensorFlow computes it, reductions
//! are `VALID`. Build them in a [`GraphBuilder`] whose separator is `/`.
//!
//! Inception v4 (Szegedy et al. 2016, "Inception-v4, Inception-ResNet and the Impact of Residual
//! Connections on Learning", Figures 4–8):
//!
//! | block | branches | output |
//! | --- | --- | --- |
//! | [`inception_v4_a`] | 1x1 96 · 1x1 64 → 3x3 96 · 1x1 64 → 3x3 96 → 3x3 96 · avg → 1x1 96 | 384 x 35 x 35 |
//! | [`reduction_a`] | 3x3/2 n · 1x1 k → 3x3 l → 3x3/2 m · max 3x3/2 | in + n + m, 17 x 17 |
//! | [`inception_v4_b`] | 1x1 384 · 1x1 192 → 1x7 224 → 7x1 256 · 1x1 192 → 7x1 192 → 1x7 224 → 7x1 224 → 1x7 256 · avg → 1x1 128 | 1024 x 17 x 17 |
//! | [`reduction_v4_b`] | 1x1 192 → 3x3/2 192 · 1x1 256 → 1x7 256 → 7x1 320 → 3x3/2 320 · max 3x3/2 | 1536 x 8 x 8 |
//! | [`inception_v4_c`] | 1x1 256 · 1x1 384 → (1x3 256, 3x1 256) · 1x1 384 → 3x1 448 → 1x3 512 → (1x3 256, 3x1 256) · avg → 1x1 256 | 1536 x 8 x 8 |
//!
//! Inception-ResNet-v2 (same paper, Figures 16–19): a residual block adds a scaled 1x1
//! projection (with bias, no BatchNorm) of its concatenated branches to its input, then applies
//! a ReLU (the very last block8 has none).
//!
//! | block | branches | scale in the network |
//! | --- | --- | --- |
//! | [`block35`] | 1x1 32 · 1x1 32 → 3x3 32 · 1x1 32 → 3x3 48 → 3x3 64 | 0.17 |
//! | [`block17`] | 1x1 192 · 1x1 128 → 1x7 160 → 7x1 192 | 0.10 |
//! | [`block8`] | 1x1 192 · 1x1 192 → 1x3 224 → 3x1 256 | 0.20 |

use crate::graph::{BlockKind, GraphBuilder, NodeId, Op, Padding, Pool};

/// TF-slim's `conv2d` in the Inception arg scopes: conv (no bias) named `name`, then
/// `name/BatchNorm` (ε 0.001, γ only with the builder's
/// [`slim_batch_norm_scale`](GraphBuilder::slim_batch_norm_scale)) and `name/Relu`.
pub fn slim_conv(
    g: &mut GraphBuilder,
    x: NodeId,
    name: &str,
    filters: usize,
    kernel: [usize; 2],
    stride: usize,
    padding: Padding,
) -> NodeId {
    let c = g.conv2d(name, x, filters, kernel, [stride; 2], padding, false);
    let scale = g.slim_batch_norm_scale();
    g.scope(name, |g| {
        let b = g.batch_norm("BatchNorm", c, 1e-3, scale);
        g.relu("Relu", b)
    })
}

/// A stride-1 `SAME` [`slim_conv`], the default inside the modules.
pub fn same(g: &mut GraphBuilder, x: NodeId, name: &str, filters: usize, k: [usize; 2]) -> NodeId {
    slim_conv(g, x, name, filters, k, 1, Padding::Same)
}

/// A stride-2 `VALID` 3x3 [`slim_conv`]: the grid reductions.
pub fn reduce(g: &mut GraphBuilder, x: NodeId, name: &str, filters: usize) -> NodeId {
    slim_conv(g, x, name, filters, [3, 3], 2, Padding::Valid)
}

/// TF's `max_pool2d(3, stride=2, padding='VALID')`.
pub fn max_reduce(g: &mut GraphBuilder, x: NodeId, name: &str) -> NodeId {
    g.max_pool(name, x, Pool::new(3, 2))
}

/// TF's `avg_pool2d(3, stride=1, padding='SAME')`: the border windows average only the pixels
/// inside the map.
pub fn avg_same(g: &mut GraphBuilder, x: NodeId, name: &str) -> NodeId {
    g.avg_pool(name, x, Pool::new(3, 1).padding(Padding::Same))
}

/// The pool branch of an Inception module (`Branch_3`): 3x3 average (same) → 1x1 conv.
pub fn pool_branch(g: &mut GraphBuilder, x: NodeId, filters: usize) -> NodeId {
    slim_branch(g, 3, |g| {
        let p = avg_same(g, x, "AvgPool_0a_3x3");
        same(g, p, "Conv2d_0b_1x1", filters, [1, 1])
    })
}

/// Runs `f` as branch `i` (`Branch_i`) of the current block.
pub fn slim_branch(
    g: &mut GraphBuilder,
    i: usize,
    f: impl FnOnce(&mut GraphBuilder) -> NodeId,
) -> NodeId {
    g.branch(|g| g.scope(&format!("Branch_{i}"), f))
}

/// Inception v4's 35x35 module (Inception-A, `Mixed_5b`–`Mixed_5e`).
pub fn inception_v4_a(g: &mut GraphBuilder, x: NodeId, name: &str) -> NodeId {
    let label = "1x1 96 | 1x1 64 → 3x3 96 | 1x1 64 → 3x3 96 → 3x3 96 | avgpool → 1x1 96";
    g.block(name, BlockKind::Inception, label, |g| {
        let b0 = slim_branch(g, 0, |g| same(g, x, "Conv2d_0a_1x1", 96, [1, 1]));
        let b1 = slim_branch(g, 1, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", 64, [1, 1]);
            same(g, y, "Conv2d_0b_3x3", 96, [3, 3])
        });
        let b2 = slim_branch(g, 2, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", 64, [1, 1]);
            let y = same(g, y, "Conv2d_0b_3x3", 96, [3, 3]);
            same(g, y, "Conv2d_0c_3x3", 96, [3, 3])
        });
        let b3 = pool_branch(g, x, 96);
        g.concat("concat", &[b0, b1, b2, b3])
    })
}

/// The filters of a Reduction-A module (Table 1 of the paper: `k, l, m, n`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReductionA {
    /// The 1x1 bottleneck of the double-3x3 branch.
    pub k: usize,
    /// Its first 3x3.
    pub l: usize,
    /// Its stride-2 3x3.
    pub m: usize,
    /// The single stride-2 3x3.
    pub n: usize,
}

impl ReductionA {
    /// Inception v4's `Mixed_6a`.
    pub const V4: ReductionA = ReductionA {
        k: 192,
        l: 224,
        m: 256,
        n: 384,
    };
    /// Inception-ResNet-v2's `Mixed_6a`.
    pub const RESNET_V2: ReductionA = ReductionA {
        k: 256,
        l: 256,
        m: 384,
        n: 384,
    };
}

/// The 35→17 grid reduction (Reduction-A, `Mixed_6a` of v4 and Inception-ResNet-v2).
pub fn reduction_a(g: &mut GraphBuilder, x: NodeId, name: &str, f: ReductionA) -> NodeId {
    let label = format!(
        "3x3/2 {} | 1x1 {} → 3x3 {} → 3x3/2 {} | maxpool 3x3/2",
        f.n, f.k, f.l, f.m
    );
    g.block(name, BlockKind::Reduction, label, |g| {
        let b0 = slim_branch(g, 0, |g| reduce(g, x, "Conv2d_1a_3x3", f.n));
        let b1 = slim_branch(g, 1, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", f.k, [1, 1]);
            let y = same(g, y, "Conv2d_0b_3x3", f.l, [3, 3]);
            reduce(g, y, "Conv2d_1a_3x3", f.m)
        });
        let b2 = slim_branch(g, 2, |g| max_reduce(g, x, "MaxPool_1a_3x3"));
        g.concat("concat", &[b0, b1, b2])
    })
}

/// Inception v4's 17x17 module (Inception-B, `Mixed_6b`–`Mixed_6h`).
pub fn inception_v4_b(g: &mut GraphBuilder, x: NodeId, name: &str) -> NodeId {
    let label = "1x1 384 | 1x1 192 → 1x7 224 → 7x1 256 | 1x1 192 → 7x1 192 → 1x7 224 → 7x1 224 \
                 → 1x7 256 | avgpool → 1x1 128";
    g.block(name, BlockKind::Inception, label, |g| {
        let b0 = slim_branch(g, 0, |g| same(g, x, "Conv2d_0a_1x1", 384, [1, 1]));
        let b1 = slim_branch(g, 1, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", 192, [1, 1]);
            let y = same(g, y, "Conv2d_0b_1x7", 224, [1, 7]);
            same(g, y, "Conv2d_0c_7x1", 256, [7, 1])
        });
        let b2 = slim_branch(g, 2, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", 192, [1, 1]);
            let y = same(g, y, "Conv2d_0b_7x1", 192, [7, 1]);
            let y = same(g, y, "Conv2d_0c_1x7", 224, [1, 7]);
            let y = same(g, y, "Conv2d_0d_7x1", 224, [7, 1]);
            same(g, y, "Conv2d_0e_1x7", 256, [1, 7])
        });
        let b3 = pool_branch(g, x, 128);
        g.concat("concat", &[b0, b1, b2, b3])
    })
}

/// Inception v4's 17→8 grid reduction (Reduction-B, `Mixed_7a`).
pub fn reduction_v4_b(g: &mut GraphBuilder, x: NodeId, name: &str) -> NodeId {
    let label = "1x1 192 → 3x3/2 192 | 1x1 256 → 1x7 256 → 7x1 320 → 3x3/2 320 | maxpool 3x3/2";
    g.block(name, BlockKind::Reduction, label, |g| {
        let b0 = slim_branch(g, 0, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", 192, [1, 1]);
            reduce(g, y, "Conv2d_1a_3x3", 192)
        });
        let b1 = slim_branch(g, 1, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", 256, [1, 1]);
            let y = same(g, y, "Conv2d_0b_1x7", 256, [1, 7]);
            let y = same(g, y, "Conv2d_0c_7x1", 320, [7, 1]);
            reduce(g, y, "Conv2d_1a_3x3", 320)
        });
        let b2 = slim_branch(g, 2, |g| max_reduce(g, x, "MaxPool_1a_3x3"));
        g.concat("concat", &[b0, b1, b2])
    })
}

/// A 1x3 and a 3x1 conv side by side on `y`, concatenated (the split tails of Inception-C).
fn split_1x3_3x1(g: &mut GraphBuilder, y: NodeId, names: [&str; 2], filters: usize) -> NodeId {
    let a = same(g, y, names[0], filters, [1, 3]);
    let b = same(g, y, names[1], filters, [3, 1]);
    g.concat(&format!("{}_concat", names[0]), &[a, b])
}

/// Inception v4's 8x8 module (Inception-C, `Mixed_7b`–`Mixed_7d`).
pub fn inception_v4_c(g: &mut GraphBuilder, x: NodeId, name: &str) -> NodeId {
    let label = "1x1 256 | 1x1 384 → (1x3 256, 3x1 256) | 1x1 384 → 3x1 448 → 1x3 512 → \
                 (1x3 256, 3x1 256) | avgpool → 1x1 256";
    g.block(name, BlockKind::Inception, label, |g| {
        let b0 = slim_branch(g, 0, |g| same(g, x, "Conv2d_0a_1x1", 256, [1, 1]));
        let b1 = slim_branch(g, 1, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", 384, [1, 1]);
            split_1x3_3x1(g, y, ["Conv2d_0b_1x3", "Conv2d_0c_3x1"], 256)
        });
        let b2 = slim_branch(g, 2, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", 384, [1, 1]);
            let y = same(g, y, "Conv2d_0b_3x1", 448, [3, 1]);
            let y = same(g, y, "Conv2d_0c_1x3", 512, [1, 3]);
            split_1x3_3x1(g, y, ["Conv2d_0d_1x3", "Conv2d_0e_3x1"], 256)
        });
        let b3 = pool_branch(g, x, 256);
        g.concat("concat", &[b0, b1, b2, b3])
    })
}

/// The residual tail shared by the Inception-ResNet blocks: `Conv2d_1x1` (bias, no BatchNorm)
/// back to the input's channels, scaled by `scale`, added to the input, then ReLU if `relu`.
fn residual(g: &mut GraphBuilder, x: NodeId, mixed: NodeId, scale: f32, relu: bool) -> NodeId {
    let c = g.shape(x).channels();
    let up = g.conv2d("Conv2d_1x1", mixed, c, [1, 1], [1, 1], Padding::Valid, true);
    let scaled = g.add(
        "scale",
        Op::ChannelAffine {
            scale: vec![scale; c],
            shift: vec![0.0; c],
        },
        &[up],
    );
    let sum = g.add_nodes("add", &[x, scaled]);
    if relu { g.relu("Relu", sum) } else { sum }
}

/// Inception-ResNet-v2's 35x35 residual block (Inception-ResNet-A, `block35`).
pub fn block35(g: &mut GraphBuilder, x: NodeId, name: &str, scale: f32, relu: bool) -> NodeId {
    let label = format!("x + {scale} · 1x1(1x1 32 | 1x1 32 → 3x3 32 | 1x1 32 → 3x3 48 → 3x3 64)");
    g.block(name, BlockKind::Residual, label, |g| {
        let b0 = slim_branch(g, 0, |g| same(g, x, "Conv2d_1x1", 32, [1, 1]));
        let b1 = slim_branch(g, 1, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", 32, [1, 1]);
            same(g, y, "Conv2d_0b_3x3", 32, [3, 3])
        });
        let b2 = slim_branch(g, 2, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", 32, [1, 1]);
            let y = same(g, y, "Conv2d_0b_3x3", 48, [3, 3]);
            same(g, y, "Conv2d_0c_3x3", 64, [3, 3])
        });
        let mixed = g.concat("concat", &[b0, b1, b2]);
        residual(g, x, mixed, scale, relu)
    })
}

/// Inception-ResNet-v2's 17x17 residual block (Inception-ResNet-B, `block17`).
pub fn block17(g: &mut GraphBuilder, x: NodeId, name: &str, scale: f32, relu: bool) -> NodeId {
    let label = format!("x + {scale} · 1x1(1x1 192 | 1x1 128 → 1x7 160 → 7x1 192)");
    g.block(name, BlockKind::Residual, label, |g| {
        let b0 = slim_branch(g, 0, |g| same(g, x, "Conv2d_1x1", 192, [1, 1]));
        let b1 = slim_branch(g, 1, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", 128, [1, 1]);
            let y = same(g, y, "Conv2d_0b_1x7", 160, [1, 7]);
            same(g, y, "Conv2d_0c_7x1", 192, [7, 1])
        });
        let mixed = g.concat("concat", &[b0, b1]);
        residual(g, x, mixed, scale, relu)
    })
}

/// Inception-ResNet-v2's 8x8 residual block (Inception-ResNet-C, `block8`).
pub fn block8(g: &mut GraphBuilder, x: NodeId, name: &str, scale: f32, relu: bool) -> NodeId {
    let label = format!("x + {scale} · 1x1(1x1 192 | 1x1 192 → 1x3 224 → 3x1 256)");
    g.block(name, BlockKind::Residual, label, |g| {
        let b0 = slim_branch(g, 0, |g| same(g, x, "Conv2d_1x1", 192, [1, 1]));
        let b1 = slim_branch(g, 1, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", 192, [1, 1]);
            let y = same(g, y, "Conv2d_0b_1x3", 224, [1, 3]);
            same(g, y, "Conv2d_0c_3x1", 256, [3, 1])
        });
        let mixed = g.concat("concat", &[b0, b1]);
        residual(g, x, mixed, scale, relu)
    })
}
