//! TF-slim's layouts against TensorFlow: every variable name and shape equals TF-slim's manifest,
//! and with weights given by a formula of each variable's name (`fixtures/tf/README.md`), the
//! logits, aux logits, pre-logits and one mid-network activation equal what TF-slim computed.

mod common;

use std::collections::BTreeMap;

use common::{assert_close, fixtures, flat_values, name_draws, nchw};
use inception::burn::tensor::{Device, Tensor, TensorData};
use inception::models::{Arch, ModelConfig};
use inception::weights::{self, DType, Format, StateDict, WeightTensor, tf_names};

/// The fixture's weight formula: a SplitMix64 draw per element, scaled by the variable's kind.
fn formula(name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let last = name.rsplit('/').next().unwrap_or(name);
    let fan_in = match last {
        "depthwise_weights" => (shape[0] * shape[1]) as f64,
        _ => shape[..shape.len() - 1].iter().product::<usize>() as f64,
    };
    name_draws(name, n)
        .map(|u| {
            let v = match last {
                "weights" | "depthwise_weights" | "pointwise_weights" => u * (6.0 / fan_in).sqrt(),
                "moving_variance" | "gamma" => 1.0 + 0.1 * u,
                _ => 0.1 * u,
            };
            v as f32
        })
        .collect()
}

type Manifest = BTreeMap<String, serde_json::Value>;

fn manifest() -> Manifest {
    let path = fixtures().join("tf/slim_manifest.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// `(name, shape)` of every variable TF-slim created for `network`.
fn variables(m: &Manifest, network: &str) -> Vec<(String, Vec<usize>)> {
    m[network]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let name = v[0].as_str().unwrap().to_string();
            let shape = v[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            (name, shape)
        })
        .collect()
}

/// Builds `arch` with aux heads, checks its TensorFlow names against the manifest, loads the
/// formula's weights through [`tf_names::from_tf`] and compares `(layer, fixture key)` pairs,
/// through the fast engine and through Burn's path.
fn reproduce(arch: Arch, network: &str, layers: &[(&str, &str)]) {
    let m = manifest();
    let cfg = ModelConfig::new(arch).with_aux_logits(arch.has_aux_heads());
    let graph = cfg.graph().unwrap();

    // 1. Names and shapes, as sets (TF-slim creates the aux head after the body).
    let want = variables(&m, network);
    let ours: Vec<(String, Vec<usize>)> = tf_names::tensors(&graph)
        .into_iter()
        .map(|t| (t.tf, t.tf_shape))
        .collect();
    let mut a = want.clone();
    let mut b = ours.clone();
    a.sort();
    b.sort();
    let only_tf: Vec<_> = a.iter().filter(|v| !b.contains(v)).take(5).collect();
    let only_ours: Vec<_> = b.iter().filter(|v| !a.contains(v)).take(5).collect();
    assert!(
        only_tf.is_empty() && only_ours.is_empty() && a.len() == b.len(),
        "{network}: only in TF-slim {only_tf:?}; only ours {only_ours:?}"
    );
    let total: usize = want.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
    assert_eq!(total as u64, m[network]["total"].as_u64().unwrap());

    // 2. The formula's weights, loaded by their TensorFlow names.
    let mut tf = StateDict::new(Format::Safetensors);
    for (name, shape) in &want {
        let data = formula(name, shape);
        tf.insert(
            name.clone(),
            WeightTensor::new(shape.clone(), data, DType::F32),
        );
    }
    let sd = tf_names::from_tf(&graph, &tf).unwrap();
    let device = Device::default();
    let (net, _) = weights::load_model(&cfg, &sd, &device).unwrap();

    // 3. Outputs.
    let io =
        weights::safetensors::read(&fixtures().join("tf/slim_synthetic_io.safetensors")).unwrap();
    let x = io.get(&format!("{network}.input")).unwrap();
    let [n, h, w, c] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let input = Tensor::<4>::from_data(
        TensorData::new(nchw(&x.data, &x.shape), [n, c, h, w]),
        &device,
    );
    let g = net.graph();
    let ids: Vec<_> = layers
        .iter()
        .map(|(layer, _)| match *layer {
            "logits" => g.main_output().node,
            "aux" => g.outputs().iter().find(|o| o.name == "aux1").unwrap().node,
            l => g.resolve(l).unwrap(),
        })
        .collect();
    for reference in [false, true] {
        let got = if reference {
            net.run_reference(input.clone(), &ids).unwrap()
        } else {
            net.run(input.clone(), &ids).unwrap()
        };
        for (v, (layer, key)) in got.into_iter().zip(layers) {
            let want = io.get(&format!("{network}.{key}")).unwrap();
            let want = if want.shape.len() == 4 && want.shape[1] > 1 {
                nchw(&want.data, &want.shape)
            } else {
                want.data.clone()
            };
            let path = if reference { "burn" } else { "engine" };
            assert_close(
                &format!("{network} {layer} ({path})"),
                &flat_values(v),
                &want,
                1e-4,
            );
        }
    }
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn inception_v4_reproduces_tf_slim() {
    reproduce(
        Arch::InceptionV4,
        "inception_v4",
        &[
            ("logits", "logits"),
            ("aux", "AuxLogits"),
            ("InceptionV4/Mixed_6h", "Mixed_6h"),
            ("InceptionV4/Logits/Dropout_1b", "PreLogitsFlatten"),
        ],
    );
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn inception_resnet_v2_reproduces_tf_slim() {
    reproduce(
        Arch::InceptionResNetV2,
        "inception_resnet_v2",
        &[
            ("logits", "logits"),
            ("aux", "AuxLogits"),
            ("InceptionResnetV2/Mixed_6a", "Mixed_6a"),
            ("InceptionResnetV2/Logits/Dropout_1b", "PreLogitsFlatten"),
        ],
    );
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn inception_v1_slim_reproduces_tf_slim() {
    reproduce(
        Arch::InceptionV1Slim,
        "inception_v1",
        &[("logits", "logits"), ("InceptionV1/Mixed_4f", "Mixed_4f")],
    );
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn inception_v3_slim_reproduces_tf_slim() {
    reproduce(
        Arch::InceptionV3Slim,
        "inception_v3",
        &[
            ("logits", "logits"),
            ("aux", "AuxLogits"),
            ("InceptionV3/Mixed_6e", "Mixed_6e"),
            ("InceptionV3/Logits/Dropout_1b", "PreLogits"),
        ],
    );
}

#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn inception_v2_reproduces_tf_slim() {
    reproduce(
        Arch::InceptionV2,
        "inception_v2",
        &[("logits", "logits"), ("InceptionV2/Mixed_4e", "Mixed_4e")],
    );
}

/// A TF-slim network's weights in a safetensors file under TensorFlow's names load by
/// themselves: the layout, classes and aux head are recognised from the names, and the model
/// computes what TF-slim computed.
#[cfg_attr(
    not(big_fixtures),
    ignore = "needs the large fixtures: set INCEPTION_FIXTURES"
)]
#[test]
fn a_tf_named_file_loads_by_itself() {
    let graph = ModelConfig::new(Arch::InceptionV1Slim).graph().unwrap();
    let mut tf = StateDict::new(Format::Safetensors);
    for t in tf_names::tensors(&graph) {
        let data = formula(&t.tf, &t.tf_shape);
        tf.insert(t.tf, WeightTensor::new(t.tf_shape, data, DType::F32));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inception_v1.safetensors");
    weights::safetensors::write(&path, &tf).unwrap();
    let device = Device::default();
    let loaded = weights::load_file(&path, weights::ModelSource::Auto, |c| c, &device).unwrap();
    let cfg = loaded.config.clone().unwrap();
    assert_eq!((cfg.arch, cfg.classes), (Arch::InceptionV1Slim, 1001));
    let io =
        weights::safetensors::read(&fixtures().join("tf/slim_synthetic_io.safetensors")).unwrap();
    let x = io.get("inception_v1.input").unwrap();
    let input = Tensor::<4>::from_data(
        TensorData::new(nchw(&x.data, &x.shape), [1, 3, 224, 224]),
        &device,
    );
    let logits = flat_values(loaded.network.infer(input.clone()).unwrap());
    let want = &io.get("inception_v1.logits").unwrap().data;
    assert_close(
        "inception_v1 logits from a TF-named file",
        &logits,
        want,
        1e-4,
    );
    // Asked for 1000 classes, the file's "background" class is dropped: the other 1000 logits
    // are unchanged, and the labels are ImageNet's.
    let loaded = weights::load_file(
        &path,
        weights::ModelSource::Auto,
        |c| c.with_classes(1000),
        &device,
    )
    .unwrap();
    assert_eq!(loaded.config.as_ref().unwrap().classes, 1000);
    let logits = flat_values(loaded.network.infer(input).unwrap());
    assert_close("without background", &logits, &want[1..], 1e-4);
}

/// Our weights written under TensorFlow's names come back as the same model: the options are
/// recognised from the names and shapes (classes, aux head, depth multiplier, v2's stem).
#[test]
fn tf_names_round_trip_with_every_option() {
    let device = Device::default();
    let dir = tempfile::tempdir().unwrap();
    for cfg in [
        ModelConfig::new(Arch::InceptionV3Slim)
            .with_depth_multiplier(0.25, 16)
            .with_aux_logits(true)
            .with_classes(10),
        ModelConfig::new(Arch::InceptionV2)
            .with_separable_conv(false)
            .with_depth_multiplier(0.5, 16),
        ModelConfig::new(Arch::InceptionV2).with_depth_multiplier(0.25, 16),
        ModelConfig::new(Arch::InceptionResNetV2)
            .with_include_top(false)
            .with_input_size(75),
        ModelConfig::new(Arch::InceptionV4)
            .with_in_channels(1)
            .with_aux_logits(true)
            .with_input_size(107),
    ] {
        let net = cfg.init(&device).unwrap();
        let ours = weights::export(&net, &cfg);
        let tf = tf_names::to_tf(net.graph(), &ours).unwrap();
        assert!(tf_names::is_tf(&tf));
        let path = dir.path().join("w.safetensors");
        weights::safetensors::write(&path, &tf).unwrap();
        let loaded = weights::load_file(
            &path,
            weights::ModelSource::Auto,
            |c| c.with_input_size(cfg.input_size[0]),
            &device,
        )
        .unwrap();
        let got = loaded.config.unwrap();
        assert_eq!(
            (
                got.arch,
                got.classes,
                got.include_top,
                got.aux_logits,
                got.in_channels,
                got.depth_multiplier,
                got.use_separable_conv
            ),
            (
                cfg.arch,
                if cfg.include_top {
                    cfg.classes
                } else {
                    got.classes
                },
                cfg.include_top,
                cfg.aux_logits,
                cfg.in_channels,
                cfg.depth_multiplier,
                cfg.use_separable_conv
            ),
            "{cfg:?}"
        );
        let back = weights::export(&loaded.network, &got);
        for (name, t) in ours.iter() {
            assert_eq!(back.get(name).unwrap().data, t.data, "{name}");
        }
    }
}
