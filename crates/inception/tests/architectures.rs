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

#[test]
fn tf_slim_counts() {
    // TF-slim, 1001 classes, with the aux heads where the network has them; non-trainable =
    // BatchNorm moving statistics.
    for (arch, trainable, moving) in [
        (Arch::InceptionV1Slim, 6_618_649, 14_560),
        (Arch::InceptionV2, 11_179_361, 19_776),
        (Arch::InceptionV3Slim, 27_145_970, 36_224),
        (Arch::InceptionV4, 46_009_106, 64_960),
        (Arch::InceptionResNetV2, 59_182_258, 62_336),
    ] {
        let cfg = ModelConfig::new(arch).with_aux_logits(arch.has_aux_heads());
        assert_eq!(counts(&cfg), (trainable, moving), "{arch}");
    }
    // timm's ports (1000 classes, no aux head) keep BatchNorm's γ (all ones): our count plus
    // one γ per moving mean.
    for (arch, timm) in [
        (Arch::InceptionV4, 42_679_816),
        (Arch::InceptionResNetV2, 55_843_464),
    ] {
        let (t, n) = counts(&ModelConfig::new(arch).with_classes(1000));
        assert_eq!(t + n / 2, timm, "{arch}");
    }
    // keras.applications.InceptionResNetV2: 1000 classes, BatchNorm without γ, no aux head.
    let (t, n) = counts(&ModelConfig::new(Arch::InceptionResNetV2).with_classes(1000));
    assert_eq!(t + n, 55_873_736);
    // The plain 7x7 stem of inception-v2 (conv + BatchNorm) instead of the separable one.
    let plain = ModelConfig::new(Arch::InceptionV2).with_separable_conv(false);
    let (t, n) = counts(&plain);
    assert_eq!(
        t,
        11_179_361 - (7 * 7 * 3 * 8 + 24 * 64 + 64) + 7 * 7 * 3 * 64 + 64
    );
    assert_eq!(n, 19_776 + 2 * 64);
}

#[test]
fn depth_multiplier_scales_every_layer_as_tf_slim_does() {
    // depth(d) = max(int(d * m), min_depth): at 0.25 the stem's 32 becomes 16 (the minimum),
    // Mixed_7c's output 2048 → 512 (TF-Hub's dm 0.25 feature vector is 512-d).
    let cfg = ModelConfig::new(Arch::InceptionV3Slim)
        .with_depth_multiplier(0.25, 16)
        .with_include_top(false)
        .with_pooling(Some(Pooling::Avg));
    let g = cfg.graph().unwrap();
    assert_eq!(g.nodes()[g.main_output().node].shape, Shape::Flat(512));
    assert_eq!(
        g.shape_of("InceptionV3/Conv2d_1a_3x3").unwrap(),
        Shape::Map([16, 149, 149])
    );
    // inception-v2 at 0.25: Mixed_4e has 576 / 4 = 144 channels.
    let v2 = ModelConfig::new(Arch::InceptionV2).with_depth_multiplier(0.25, 16);
    let g = v2.graph().unwrap();
    let id = g.resolve("InceptionV2/Mixed_4e").unwrap();
    assert_eq!(g.nodes()[id].shape, Shape::Map([144, 14, 14]));
    // Only TF-slim's v2 and v3 take it, and only positive values.
    for bad in [
        ModelConfig::new(Arch::InceptionV4).with_depth_multiplier(0.5, 16),
        ModelConfig::new(Arch::InceptionV3Slim).with_depth_multiplier(0.0, 16),
        ModelConfig::new(Arch::InceptionV3Slim).with_depth_multiplier(f64::NAN, 16),
        ModelConfig::new(Arch::InceptionV2).with_depth_multiplier(0.5, 0),
        ModelConfig::new(Arch::InceptionV4).with_separable_conv(false),
    ] {
        assert!(bad.graph().is_err(), "{bad:?}");
    }
}

#[test]
fn every_option_combination_builds_with_exact_counts() {
    for arch in Arch::ALL {
        let base = ModelConfig::new(arch);
        let top = base.graph().unwrap().params();
        for aux in [false, true] {
            for include_top in [true, false] {
                for pooling in [None, Some(Pooling::Avg), Some(Pooling::Max)] {
                    for classes in [1000, 10] {
                        for transform in [false, true] {
                            let cfg = base
                                .clone()
                                .with_aux_logits(aux)
                                .with_include_top(include_top)
                                .with_pooling(pooling)
                                .with_classes(classes)
                                .with_transform_input(transform);
                            let invalid = [
                                aux && !include_top,
                                include_top && pooling == Some(Pooling::Max),
                                aux && !arch.has_aux_heads(),
                                transform && !matches!(arch, Arch::GoogLeNet | Arch::InceptionV3),
                            ];
                            let valid = !invalid.contains(&true);
                            let built = cfg.graph();
                            assert_eq!(built.is_ok(), valid, "{cfg:?}: {built:?}");
                            let Ok(g) = built else { continue };
                            let p = g.params();
                            let fc_in = match arch {
                                Arch::GoogLeNet
                                | Arch::GoogLeNetBvlc
                                | Arch::InceptionV1Slim
                                | Arch::InceptionV2 => 1024,
                                Arch::InceptionMini => 288,
                                Arch::InceptionV4 | Arch::InceptionResNetV2 => 1536,
                                _ => 2048,
                            };
                            let head = (fc_in + 1) * arch.default_classes();
                            if !include_top {
                                // Without the top, exactly the classifier is gone.
                                assert_eq!(p.trainable, top.trainable - head, "{cfg:?}");
                                let out = &g.nodes()[g.main_output().node].shape;
                                match pooling {
                                    None => {
                                        assert!(matches!(out, Shape::Map([c, _, _]) if *c == fc_in))
                                    }
                                    Some(_) => assert_eq!(*out, Shape::Flat(fc_in)),
                                }
                            } else if !aux {
                                assert_eq!(
                                    p.trainable,
                                    top.trainable - head + (fc_in + 1) * classes
                                );
                                assert_eq!(
                                    g.nodes()[g.main_output().node].shape,
                                    Shape::Flat(classes)
                                );
                            } else {
                                let n_aux = g.aux_outputs().count();
                                assert_eq!(
                                    n_aux,
                                    if arch.name().starts_with("googlenet") {
                                        2
                                    } else {
                                        1
                                    }
                                );
                                for o in g.aux_outputs() {
                                    assert_eq!(g.nodes()[o.node].shape, Shape::Flat(classes));
                                    assert_eq!(o.role, OutputRole::Aux);
                                }
                            }
                            assert_eq!(
                                p.non_trainable,
                                top.non_trainable
                                    + if aux && arch == Arch::GoogLeNet {
                                        2 * 2 * 128
                                    } else if aux
                                        && matches!(
                                            arch,
                                            Arch::InceptionV3
                                                | Arch::InceptionV3Slim
                                                | Arch::InceptionV4
                                                | Arch::InceptionResNetV2
                                        )
                                    {
                                        2 * (128 + 768)
                                    } else if aux && arch == Arch::InceptionMini {
                                        2 * 64
                                    } else {
                                        0
                                    }
                            );
                        }
                    }
                }
            }
        }
    }
}

fn main_shape(cfg: ModelConfig, layer: &str) -> Shape {
    cfg.graph().unwrap().shape_of(layer).unwrap()
}

#[test]
fn googlenet_shapes_at_several_sizes() {
    for (size, spatial5b) in [(224, 7), (160, 5), (96, 3)] {
        let cfg = ModelConfig::new(Arch::GoogLeNet).with_input_size(size);
        assert_eq!(
            main_shape(cfg.clone(), "inception5b.concat"),
            Shape::Map([1024, spatial5b, spatial5b])
        );
        assert_eq!(main_shape(cfg, "fc"), Shape::Flat(1000));
    }
    let cfg = ModelConfig::new(Arch::GoogLeNetBvlc);
    assert_eq!(
        main_shape(cfg.clone(), "pool1/3x3_s2"),
        Shape::Map([64, 56, 56])
    );
    assert_eq!(
        main_shape(cfg.clone(), "inception_4a/output"),
        Shape::Map([512, 14, 14])
    );
    assert_eq!(
        main_shape(cfg, "inception_5b/output"),
        Shape::Map([1024, 7, 7])
    );
}

#[test]
fn inception_v3_shapes_at_several_sizes() {
    let cfg = ModelConfig::new(Arch::InceptionV3);
    assert_eq!(
        main_shape(cfg.clone(), "Mixed_5b.concat"),
        Shape::Map([256, 35, 35])
    );
    assert_eq!(
        main_shape(cfg.clone(), "Mixed_6e.concat"),
        Shape::Map([768, 17, 17])
    );
    assert_eq!(
        main_shape(cfg.clone(), "Mixed_7c.concat"),
        Shape::Map([2048, 8, 8])
    );
    let small = cfg.with_input_size(75);
    assert_eq!(
        main_shape(small.clone(), "Mixed_7c.concat"),
        Shape::Map([2048, 1, 1])
    );
    assert_eq!(main_shape(small, "fc"), Shape::Flat(1000));
    let keras = ModelConfig::new(Arch::InceptionV3Keras);
    assert_eq!(
        main_shape(keras, "mixed5.concat"),
        Shape::Map([768, 17, 17])
    );
}

#[test]
fn too_small_inputs_are_clear_errors() {
    for (arch, min) in [
        (Arch::GoogLeNet, 15),
        (Arch::InceptionV3, 75),
        (Arch::InceptionV3Keras, 75),
    ] {
        let cfg = ModelConfig::new(arch);
        assert_eq!(cfg.min_input_size(), Some(min), "{arch}");
        assert!(cfg.clone().with_input_size(min).graph().is_ok());
        let err = cfg
            .with_input_size(min - 1)
            .graph()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("too small") && err.contains(&format!("{min}x{min}")),
            "{err}"
        );
    }
    // Aux heads need a larger input than the main path.
    let aux = ModelConfig::new(Arch::GoogLeNetBvlc).with_aux_logits(true);
    let min = aux.min_input_size().unwrap();
    assert!(
        min > ModelConfig::new(Arch::GoogLeNetBvlc)
            .min_input_size()
            .unwrap()
    );
    let err = aux
        .with_input_size(min - 1)
        .graph()
        .unwrap_err()
        .to_string();
    assert!(err.contains("with aux heads"), "{err}");
}

#[test]
fn mac_counts_match_torchvision() {
    let macs = |arch| {
        let g = ModelConfig::new(arch).graph().unwrap();
        g.macs_for(&[g.main_output().node]) as f64 / 1e9
    };
    assert!((macs(Arch::GoogLeNet) - 1.498).abs() < 0.005);
    assert!((macs(Arch::InceptionV3) - 5.713).abs() < 0.01);
}

#[test]
fn googlenet_is_22_layers_deep() {
    let g = ModelConfig::new(Arch::GoogLeNetBvlc).graph().unwrap();
    assert_eq!(g.depth(), 22);
}

#[test]
fn feature_info_tables() {
    let info = ModelConfig::new(Arch::InceptionV3).feature_info().unwrap();
    let got: Vec<(usize, usize)> = info.iter().map(|f| (f.channels, f.reduction)).collect();
    // timm's feature_info for inception_v3.
    assert_eq!(
        got,
        vec![(64, 2), (192, 4), (288, 8), (768, 16), (2048, 32)]
    );
    // The TF-slim layouts: strides 2 to 32 like timm's tables.
    for (arch, channels) in [
        (Arch::InceptionV4, [64, 192, 384, 1024, 1536]),
        (Arch::InceptionResNetV2, [64, 192, 320, 1088, 1536]),
        (Arch::InceptionV1Slim, [64, 192, 480, 832, 1024]),
        (Arch::InceptionV2, [64, 192, 320, 576, 1024]),
        (Arch::InceptionV3Slim, [64, 192, 288, 768, 2048]),
    ] {
        let info = ModelConfig::new(arch).feature_info().unwrap();
        let got: Vec<(usize, usize)> = info.iter().map(|f| (f.channels, f.reduction)).collect();
        let want: Vec<(usize, usize)> = channels.iter().copied().zip([2, 4, 8, 16, 32]).collect();
        assert_eq!(got, want, "{arch}");
    }
    let info = ModelConfig::new(Arch::GoogLeNet).feature_info().unwrap();
    let got: Vec<(usize, usize)> = info.iter().map(|f| (f.channels, f.reduction)).collect();
    assert_eq!(
        got,
        vec![(64, 2), (192, 4), (480, 8), (832, 16), (1024, 32)]
    );
}

#[test]
fn names_are_checkpoint_names() {
    let g = ModelConfig::new(Arch::GoogLeNet)
        .with_aux_logits(true)
        .graph()
        .unwrap();
    for name in [
        "conv1.conv",
        "conv1.bn",
        "inception3a.branch2.1.conv",
        "inception4e.branch4.1.bn",
        "aux1.conv.conv",
        "aux2.fc2",
        "fc",
    ] {
        assert!(g.find(name).is_some(), "{name}");
    }
    let g = ModelConfig::new(Arch::GoogLeNetBvlc)
        .with_aux_logits(true)
        .graph()
        .unwrap();
    for name in [
        "conv1/7x7_s2",
        "inception_3a/5x5",
        "inception_5b/pool_proj",
        "loss1/classifier",
        "loss3/classifier",
    ] {
        assert!(g.find(name).is_some(), "{name}");
    }
    let g = ModelConfig::new(Arch::InceptionV3)
        .with_aux_logits(true)
        .graph()
        .unwrap();
    for name in [
        "Conv2d_1a_3x3.conv",
        "Mixed_7c.branch3x3dbl_3b.bn",
        "AuxLogits.conv1.conv",
        "AuxLogits.fc",
        "fc",
    ] {
        assert!(g.find(name).is_some(), "{name}");
    }
}
