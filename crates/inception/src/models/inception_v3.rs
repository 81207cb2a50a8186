//! Inception v3, Szegedy et al. 2015, "Rethinking the Inception Architecture for Computer Vision".
//!
//! Two layouts of the same network:
//! - [`torchvision`] (also timm): BN with scale, 3x3/1 average pools counting padding, an
//!   optional aux head on `Mixed_6e`, dropout 0.5. 23,834,568 parameters (27,161,264 with aux).
//! - [`keras`]: `keras.applications.InceptionV3` — BN without scale, average pools that ignore
//!   padding (TensorFlow "same"), no aux head, no dropout, blocks named `mixed0`…`mixed10`.
//!   23,817,352 trainable + 34,432 non-trainable parameters.
//!
//! Shapes at 299x299:
//!
//! | stage | module | output |
//! | --- | --- | --- |
//! | stem | 3x3/2, 3x3, 3x3, maxpool, 1x1, 3x3, maxpool | 192 x 35 x 35 |
//! | `Mixed_5b`–`5d` | A (pool features 32, 64, 64) | 288 x 35 x 35 |
//! | `Mixed_6a` | B (reduction) | 768 x 17 x 17 |
//! | `Mixed_6b`–`6e` | C (7x7 channels 128, 160, 160, 192); aux head on 6e | 768 x 17 x 17 |
//! | `Mixed_7a` | D (reduction) | 1280 x 8 x 8 |
//! | `Mixed_7b`, `7c` | E | 2048 x 8 x 8 |
//! | head | global average pool → dropout → fc | 1000 |

use super::{Head, ModelConfig};
use crate::blocks::{
    AuxVariant, V3Variant, aux_classifier, inception_v3_a, inception_v3_b, inception_v3_c,
    inception_v3_d, inception_v3_e, inception_v3_stem,
};
use crate::graph::{GraphBuilder, NodeId};

/// The module sequence: `(torchvision name, Keras name, module)`.
pub const MODULES: [(&str, &str, Module); 11] = [
    ("Mixed_5b", "mixed0", Module::A { pool_features: 32 }),
    ("Mixed_5c", "mixed1", Module::A { pool_features: 64 }),
    ("Mixed_5d", "mixed2", Module::A { pool_features: 64 }),
    ("Mixed_6a", "mixed3", Module::B),
    ("Mixed_6b", "mixed4", Module::C { channels_7x7: 128 }),
    ("Mixed_6c", "mixed5", Module::C { channels_7x7: 160 }),
    ("Mixed_6d", "mixed6", Module::C { channels_7x7: 160 }),
    ("Mixed_6e", "mixed7", Module::C { channels_7x7: 192 }),
    ("Mixed_7a", "mixed8", Module::D),
    ("Mixed_7b", "mixed9", Module::E),
    ("Mixed_7c", "mixed10", Module::E),
];

/// The module after which the aux head sits.
pub const AUX_AFTER: &str = "Mixed_6e";

/// One Inception v3 module type with its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Module {
    /// 35x35 module with the given pool-branch filters.
    A {
        /// Filters of the pool branch's 1x1 projection.
        pool_features: usize,
    },
    /// 35→17 reduction.
    B,
    /// 17x17 module with factorised 7x7s.
    C {
        /// Bottleneck filters of the 7x7 branches.
        channels_7x7: usize,
    },
    /// 17→8 reduction.
    D,
    /// 8x8 module with expanded filter bank.
    E,
}

fn body(
    g: &mut GraphBuilder,
    cfg: &ModelConfig,
    x: NodeId,
    v: V3Variant,
    keras: bool,
) -> (NodeId, Vec<NodeId>) {
    let mut x = inception_v3_stem(g, x, v);
    let mut aux = Vec::new();
    for (tv_name, keras_name, module) in MODULES {
        let name = if keras { keras_name } else { tv_name };
        x = match module {
            Module::A { pool_features } => inception_v3_a(g, x, name, pool_features, v),
            Module::B => inception_v3_b(g, x, name, v),
            Module::C { channels_7x7 } => inception_v3_c(g, x, name, channels_7x7, v),
            Module::D => inception_v3_d(g, x, name, v),
            Module::E => inception_v3_e(g, x, name, v),
        };
        if cfg.aux_logits && tv_name == AUX_AFTER {
            aux.push(aux_classifier(
                g,
                x,
                "AuxLogits",
                cfg.classes,
                AuxVariant::V3 { conv: v.conv },
            ));
        }
    }
    (x, aux)
}

/// Builds the torchvision / timm layout.
pub fn torchvision(g: &mut GraphBuilder, cfg: &ModelConfig, x: NodeId) -> (NodeId, Vec<NodeId>) {
    let x = if cfg.transform_input {
        super::googlenet::transform_input(g, x)
    } else {
        x
    };
    let (x, aux) = body(g, cfg, x, V3Variant::TORCHVISION, false);
    let head = Head {
        pool_name: "avgpool",
        max_pool_name: "maxpool",
        dropout_name: "dropout",
        fc_name: "fc",
    };
    (head.build(g, cfg, x), aux)
}

/// Builds the keras.applications layout.
pub fn keras(g: &mut GraphBuilder, cfg: &ModelConfig, x: NodeId) -> (NodeId, Vec<NodeId>) {
    let (x, aux) = body(g, cfg, x, V3Variant::KERAS, true);
    let head = Head {
        pool_name: "avg_pool",
        max_pool_name: "max_pool",
        dropout_name: "dropout",
        fc_name: "predictions",
    };
    (head.build(g, cfg, x), aux)
}
