//! BN-Inception (Ioffe & Szegedy 2015, "Batch Normalization", Figure 5), as TF-slim's
//! `nets/inception_v2.py` builds it: GoogLeNet's module with BatchNorm after every conv and the
//! 5x5 factorised into two 3x3s, average or max pooling in the pool branch, and stride-2
//! reduction modules in place of GoogLeNet's max pools. Every conv is a
//! [`slim_conv`](super::slim::slim_conv) with `SAME` padding (the reductions too, unlike v3's).
//!
//! | module | 1x1 | 3x3 reduce → 3x3 | double 3x3 reduce → 3x3 → 3x3 | pool → proj |
//! | --- | --- | --- | --- | --- |
//! | `Mixed_3b` | 64 | 64 → 64 | 64 → 96 → 96 | avg → 32 |
//! | `Mixed_3c` | 64 | 64 → 96 | 64 → 96 → 96 | avg → 64 |
//! | `Mixed_4a` | – | 128 → 160/2 | 64 → 96 → 96/2 | max/2 |
//! | `Mixed_4b` | 224 | 64 → 96 | 96 → 128 → 128 | avg → 128 |
//! | `Mixed_4c` | 192 | 96 → 128 | 96 → 128 → 128 | avg → 128 |
//! | `Mixed_4d` | 160 | 128 → 160 | 128 → 160 → 160 | avg → 96 |
//! | `Mixed_4e` | 96 | 128 → 192 | 160 → 192 → 192 | avg → 96 |
//! | `Mixed_5a` | – | 128 → 192/2 | 192 → 256 → 256/2 | max/2 |
//! | `Mixed_5b` | 352 | 192 → 320 | 160 → 224 → 224 | avg → 128 |
//! | `Mixed_5c` | 352 | 192 → 320 | 192 → 224 → 224 | max → 128 |

use super::slim::{same, slim_branch, slim_conv};
use super::slim_v3::Depth;
use crate::graph::{BlockKind, GraphBuilder, NodeId, Padding, Pool};

/// The pooling of a BN-Inception module's pool branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// 3x3 average pooling (`AvgPool_0a_3x3`).
    Avg,
    /// 3x3 max pooling (`MaxPool_0a_3x3`, `Mixed_5c` only).
    Max,
}

/// The filters of a BN-Inception module: one row of the table above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BnInceptionFilters {
    /// 1x1 branch.
    pub n1x1: usize,
    /// 3x3 branch's 1x1 reduction.
    pub n3x3_reduce: usize,
    /// Its 3x3.
    pub n3x3: usize,
    /// Double-3x3 branch's 1x1 reduction.
    pub d3x3_reduce: usize,
    /// Its two 3x3s.
    pub d3x3: usize,
    /// Pool branch's projection.
    pub pool_proj: usize,
    /// Pool branch's pooling.
    pub pool: PoolKind,
}

impl BnInceptionFilters {
    /// A row of the table.
    pub const fn new(
        n1x1: usize,
        n3x3_reduce: usize,
        n3x3: usize,
        d3x3_reduce: usize,
        d3x3: usize,
        pool_proj: usize,
        pool: PoolKind,
    ) -> Self {
        Self {
            n1x1,
            n3x3_reduce,
            n3x3,
            d3x3_reduce,
            d3x3,
            pool_proj,
            pool,
        }
    }
}

/// The BN-Inception module.
pub fn bn_inception(
    g: &mut GraphBuilder,
    x: NodeId,
    name: &str,
    f: BnInceptionFilters,
    d: Depth,
) -> NodeId {
    let pool = match f.pool {
        PoolKind::Avg => "avgpool",
        PoolKind::Max => "maxpool",
    };
    let label = format!(
        "1x1 {} | 1x1 {} → 3x3 {} | 1x1 {} → 3x3 {} → 3x3 {} | {pool} → 1x1 {}",
        f.n1x1, f.n3x3_reduce, f.n3x3, f.d3x3_reduce, f.d3x3, f.d3x3, f.pool_proj
    );
    g.block(name, BlockKind::Inception, label, |g| {
        let b0 = slim_branch(g, 0, |g| same(g, x, "Conv2d_0a_1x1", d.of(f.n1x1), [1, 1]));
        let b1 = slim_branch(g, 1, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", d.of(f.n3x3_reduce), [1, 1]);
            same(g, y, "Conv2d_0b_3x3", d.of(f.n3x3), [3, 3])
        });
        let b2 = slim_branch(g, 2, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", d.of(f.d3x3_reduce), [1, 1]);
            let y = same(g, y, "Conv2d_0b_3x3", d.of(f.d3x3), [3, 3]);
            same(g, y, "Conv2d_0c_3x3", d.of(f.d3x3), [3, 3])
        });
        let b3 = slim_branch(g, 3, |g| {
            let window = Pool::new(3, 1).padding(Padding::Same);
            let p = match f.pool {
                PoolKind::Avg => g.avg_pool("AvgPool_0a_3x3", x, window),
                PoolKind::Max => g.max_pool("MaxPool_0a_3x3", x, window),
            };
            same(g, p, "Conv2d_0b_1x1", d.of(f.pool_proj), [1, 1])
        });
        g.concat("concat", &[b0, b1, b2, b3])
    })
}

/// The filters of a BN-Inception reduction module (`Mixed_4a`, `Mixed_5a`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BnReductionFilters {
    /// 3x3 branch's 1x1 reduction.
    pub n3x3_reduce: usize,
    /// Its stride-2 3x3.
    pub n3x3: usize,
    /// Double-3x3 branch's 1x1 reduction.
    pub d3x3_reduce: usize,
    /// Its 3x3 and stride-2 3x3.
    pub d3x3: usize,
}

/// The BN-Inception grid reduction: stride-2 3x3s (`SAME`) beside a stride-2 max pool.
pub fn bn_reduction(
    g: &mut GraphBuilder,
    x: NodeId,
    name: &str,
    f: BnReductionFilters,
    d: Depth,
) -> NodeId {
    let label = format!(
        "1x1 {} → 3x3/2 {} | 1x1 {} → 3x3 {} → 3x3/2 {} | maxpool 3x3/2",
        f.n3x3_reduce, f.n3x3, f.d3x3_reduce, f.d3x3, f.d3x3
    );
    g.block(name, BlockKind::Reduction, label, |g| {
        let b0 = slim_branch(g, 0, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", d.of(f.n3x3_reduce), [1, 1]);
            slim_conv(
                g,
                y,
                "Conv2d_1a_3x3",
                d.of(f.n3x3),
                [3, 3],
                2,
                Padding::Same,
            )
        });
        let b1 = slim_branch(g, 1, |g| {
            let y = same(g, x, "Conv2d_0a_1x1", d.of(f.d3x3_reduce), [1, 1]);
            let y = same(g, y, "Conv2d_0b_3x3", d.of(f.d3x3), [3, 3]);
            slim_conv(
                g,
                y,
                "Conv2d_1a_3x3",
                d.of(f.d3x3),
                [3, 3],
                2,
                Padding::Same,
            )
        });
        let b2 = slim_branch(g, 2, |g| {
            g.max_pool("MaxPool_1a_3x3", x, Pool::new(3, 2).padding(Padding::Same))
        });
        g.concat("concat", &[b0, b1, b2])
    })
}
