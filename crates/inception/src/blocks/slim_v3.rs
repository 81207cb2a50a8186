//! GoogLeNet's and Inception v3's modules as TF-slim names them (`nets/inception_v1.py`,
//! `nets/inception_v3.py`), historical typos included: v1's `Mixed_5b/Branch_2/Conv2d_0a_3x3`,
//! v3's `Mixed_5c/Branch_1/Conv2d_0b_1x1` → `Conv_1_0c_5x5`, the 3x3 reductions of `Mixed_6a`
//! named `Conv2d_1a_1x1`, and `Mixed_7b`'s `Conv2d_0b_3x1` where `Mixed_7c` has `Conv2d_0c_3x1`.
//! The convs are [`slim_conv`](super::slim::slim_conv)s; filter counts go through a [`Depth`]
//! (TF-slim's `depth_multiplier` and `min_depth`).

use super::slim::{max_reduce, pool_branch, reduce, same, slim_branch, slim_conv};
use crate::blocks::InceptionV1Filters;
use crate::graph::{BlockKind, GraphBuilder, NodeId, Padding, Pool};

/// TF-slim's `depth(d) = max(int(d * depth_multiplier), min_depth)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Depth {
    /// The factor on every filter count (1.0 for the published networks).
    pub multiplier: f64,
    /// The smallest filter count (16 in TF-slim).
    pub min: usize,
}

impl Depth {
    /// The published networks' depths.
    pub const ONE: Depth = Depth {
        multiplier: 1.0,
        min: 16,
    };

    /// The filters for a reference count of `d`.
    pub fn of(&self, d: usize) -> usize {
        ((d as f64 * self.multiplier) as usize).max(self.min)
    }
}

/// GoogLeNet's module as TF-slim builds it: 1x1 · 1x1 → 3x3 · 1x1 → 3x3 (the "5x5" branch is a
/// 3x3, as in torchvision) · maxpool 3x3 → 1x1. `typo` names branch 2's 3x3 `Conv2d_0a_3x3`, as
/// TF-slim's `Mixed_5b` does.
pub fn inception_v1_slim(
    g: &mut GraphBuilder,
    x: NodeId,
    name: &str,
    f: InceptionV1Filters,
    typo: bool,
) -> NodeId {
    let label = format!(
        "1x1 {} | 1x1 {} → 3x3 {} | 1x1 {} → 3x3 {} | maxpool 3x3 → 1x1 {}",
        f.n1x1, f.n3x3_reduce, f.n3x3, f.n5x5_reduce, f.n5x5, f.pool_proj
    );
    g.block(name, BlockKind::Inception, label, |g| {
        let b0 = slim_branch(g, 0, |g| same(g, x, "Conv2d_0a_1x1", f.n1x1, [1, 1]));
        let b1 = slim_branch(g, 1, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", f.n3x3_reduce, [1, 1]);
            same(g, y, "Conv2d_0b_3x3", f.n3x3, [3, 3])
        });
        let b2 = slim_branch(g, 2, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", f.n5x5_reduce, [1, 1]);
            let second = if typo {
                "Conv2d_0a_3x3"
            } else {
                "Conv2d_0b_3x3"
            };
            same(g, y, second, f.n5x5, [3, 3])
        });
        let b3 = slim_branch(g, 3, |g| {
            let p = g.max_pool("MaxPool_0a_3x3", x, Pool::new(3, 1).padding(Padding::Same));
            same(g, p, "Conv2d_0b_1x1", f.pool_proj, [1, 1])
        });
        g.concat("concat", &[b0, b1, b2, b3])
    })
}

/// Inception v3's 35x35 module (`Mixed_5b`–`5d`). `Mixed_5c` (`typo`) names its 5x5 branch
/// `Conv2d_0b_1x1` → `Conv_1_0c_5x5`.
pub fn inception_v3_slim_a(
    g: &mut GraphBuilder,
    x: NodeId,
    name: &str,
    pool_features: usize,
    d: Depth,
    typo: bool,
) -> NodeId {
    let label = format!(
        "1x1 64 | 1x1 48 → 5x5 64 | 1x1 64 → 3x3 96 → 3x3 96 | avgpool → 1x1 {pool_features}"
    );
    g.block(name, BlockKind::Inception, label, |g| {
        let b0 = slim_branch(g, 0, |g| same(g, x, "Conv2d_0a_1x1", d.of(64), [1, 1]));
        let b1 = slim_branch(g, 1, |g| {
            let (n1, n2) = if typo {
                ("Conv2d_0b_1x1", "Conv_1_0c_5x5")
            } else {
                ("Conv2d_0a_1x1", "Conv2d_0b_5x5")
            };
            let y = same(g, x, n1, d.of(48), [1, 1]);
            same(g, y, n2, d.of(64), [5, 5])
        });
        let b2 = slim_branch(g, 2, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", d.of(64), [1, 1]);
            let y = same(g, y, "Conv2d_0b_3x3", d.of(96), [3, 3]);
            same(g, y, "Conv2d_0c_3x3", d.of(96), [3, 3])
        });
        let b3 = pool_branch(g, x, d.of(pool_features));
        g.concat("concat", &[b0, b1, b2, b3])
    })
}

/// Inception v3's 35→17 reduction (`Mixed_6a`).
pub fn inception_v3_slim_b(g: &mut GraphBuilder, x: NodeId, name: &str, d: Depth) -> NodeId {
    let label = "3x3/2 384 | 1x1 64 → 3x3 96 → 3x3/2 96 | maxpool 3x3/2";
    g.block(name, BlockKind::Reduction, label, |g| {
        let b0 = slim_branch(g, 0, |g| reduce(g, x, "Conv2d_1a_1x1", d.of(384)));
        let b1 = slim_branch(g, 1, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", d.of(64), [1, 1]);
            let y = same(g, y, "Conv2d_0b_3x3", d.of(96), [3, 3]);
            reduce(g, y, "Conv2d_1a_1x1", d.of(96))
        });
        let b2 = slim_branch(g, 2, |g| max_reduce(g, x, "MaxPool_1a_3x3"));
        g.concat("concat", &[b0, b1, b2])
    })
}

/// Inception v3's 17x17 module with factorised 7x7s (`Mixed_6b`–`6e`).
pub fn inception_v3_slim_c(
    g: &mut GraphBuilder,
    x: NodeId,
    name: &str,
    channels_7x7: usize,
    d: Depth,
) -> NodeId {
    let c = channels_7x7;
    let label = format!(
        "1x1 192 | 1x1 {c} → 1x7 {c} → 7x1 192 | 1x1 {c} → 7x1 {c} → 1x7 {c} → 7x1 {c} → 1x7 \
         192 | avgpool → 1x1 192"
    );
    let c = d.of(c);
    g.block(name, BlockKind::Inception, label, |g| {
        let b0 = slim_branch(g, 0, |g| same(g, x, "Conv2d_0a_1x1", d.of(192), [1, 1]));
        let b1 = slim_branch(g, 1, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", c, [1, 1]);
            let y = same(g, y, "Conv2d_0b_1x7", c, [1, 7]);
            same(g, y, "Conv2d_0c_7x1", d.of(192), [7, 1])
        });
        let b2 = slim_branch(g, 2, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", c, [1, 1]);
            let y = same(g, y, "Conv2d_0b_7x1", c, [7, 1]);
            let y = same(g, y, "Conv2d_0c_1x7", c, [1, 7]);
            let y = same(g, y, "Conv2d_0d_7x1", c, [7, 1]);
            same(g, y, "Conv2d_0e_1x7", d.of(192), [1, 7])
        });
        let b3 = pool_branch(g, x, d.of(192));
        g.concat("concat", &[b0, b1, b2, b3])
    })
}

/// Inception v3's 17→8 reduction (`Mixed_7a`).
pub fn inception_v3_slim_d(g: &mut GraphBuilder, x: NodeId, name: &str, d: Depth) -> NodeId {
    let label = "1x1 192 → 3x3/2 320 | 1x1 192 → 1x7 192 → 7x1 192 → 3x3/2 192 | maxpool 3x3/2";
    g.block(name, BlockKind::Reduction, label, |g| {
        let b0 = slim_branch(g, 0, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", d.of(192), [1, 1]);
            reduce(g, y, "Conv2d_1a_3x3", d.of(320))
        });
        let b1 = slim_branch(g, 1, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", d.of(192), [1, 1]);
            let y = same(g, y, "Conv2d_0b_1x7", d.of(192), [1, 7]);
            let y = same(g, y, "Conv2d_0c_7x1", d.of(192), [7, 1]);
            reduce(g, y, "Conv2d_1a_3x3", d.of(192))
        });
        let b2 = slim_branch(g, 2, |g| max_reduce(g, x, "MaxPool_1a_3x3"));
        g.concat("concat", &[b0, b1, b2])
    })
}

/// Inception v3's 8x8 module with the expanded filter bank (`Mixed_7b`, `7c`). `Mixed_7b`
/// (`first`) names branch 1's 3x1 `Conv2d_0b_3x1`; `Mixed_7c` names it `Conv2d_0c_3x1`.
pub fn inception_v3_slim_e(
    g: &mut GraphBuilder,
    x: NodeId,
    name: &str,
    d: Depth,
    first: bool,
) -> NodeId {
    let label = "1x1 320 | 1x1 384 → (1x3 384, 3x1 384) | 1x1 448 → 3x3 384 → (1x3 384, 3x1 \
                 384) | avgpool → 1x1 192";
    g.block(name, BlockKind::Inception, label, |g| {
        let b0 = slim_branch(g, 0, |g| same(g, x, "Conv2d_0a_1x1", d.of(320), [1, 1]));
        let b1 = slim_branch(g, 1, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", d.of(384), [1, 1]);
            let a = same(g, y, "Conv2d_0b_1x3", d.of(384), [1, 3]);
            let tail = if first {
                "Conv2d_0b_3x1"
            } else {
                "Conv2d_0c_3x1"
            };
            let b = same(g, y, tail, d.of(384), [3, 1]);
            g.concat("concat", &[a, b])
        });
        let b2 = slim_branch(g, 2, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", d.of(448), [1, 1]);
            let y = same(g, y, "Conv2d_0b_3x3", d.of(384), [3, 3]);
            let a = same(g, y, "Conv2d_0c_1x3", d.of(384), [1, 3]);
            let b = same(g, y, "Conv2d_0d_3x1", d.of(384), [3, 1]);
            g.concat("concat", &[a, b])
        });
        let b3 = pool_branch(g, x, d.of(192));
        g.concat("concat", &[b0, b1, b2, b3])
    })
}

/// Inception v3's stem up to `MaxPool_5a_3x3` (valid padding but for `Conv2d_2b_3x3`).
pub fn inception_v3_slim_stem(g: &mut GraphBuilder, x: NodeId, d: Depth) -> NodeId {
    let label = "3x3/2 32 → 3x3 32 → 3x3 64 → maxpool 3x3/2 → 1x1 80 → 3x3 192 → maxpool 3x3/2";
    g.group("stem", BlockKind::Stem, label, |g| {
        let x = slim_conv(g, x, "Conv2d_1a_3x3", d.of(32), [3, 3], 2, Padding::Valid);
        let x = slim_conv(g, x, "Conv2d_2a_3x3", d.of(32), [3, 3], 1, Padding::Valid);
        let x = same(g, x, "Conv2d_2b_3x3", d.of(64), [3, 3]);
        let x = max_reduce(g, x, "MaxPool_3a_3x3");
        let x = slim_conv(g, x, "Conv2d_3b_1x1", d.of(80), [1, 1], 1, Padding::Valid);
        let x = slim_conv(g, x, "Conv2d_4a_3x3", d.of(192), [3, 3], 1, Padding::Valid);
        max_reduce(g, x, "MaxPool_5a_3x3")
    })
}
