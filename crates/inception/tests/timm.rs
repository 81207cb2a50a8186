//! timm's Inception v4 and Inception-ResNet-v2 (`fixtures/gen/gen_timm.py`, timm 1.0.31): our
//! TF-slim layouts with BatchNorm's γ have timm's state-dict names and shapes in timm's order,
//! and timm's weights (here given by a formula of each tensor's timm name) load by themselves and
//! reproduce timm's logits.

mod common;

use common::{assert_close, fixtures, flat_values, name_draws};
use inception::burn::tensor::{Device, Tensor, TensorData};
use inception::models::Arch;
use inception::weights::{self, DType, Format, ModelSource, StateDict, WeightTensor, timm_names};

/// `gen_timm.py`'s formula: the fixtures' draws, scaled by the tensor's kind (PyTorch layouts:
/// a kernel's fan-in is the product of all but its first dimension).
fn formula(name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let kernel = name.ends_with(".weight") && shape.len() >= 2;
    let around_one = name.ends_with("running_var") || (name.ends_with(".weight") && !kernel);
    let fan_in = shape[1..].iter().product::<usize>() as f64;
    name_draws(name, n)
        .map(|u| {
            let v = if kernel {
                u * (6.0 / fan_in).sqrt()
            } else if around_one {
                1.0 + 0.1 * u
            } else {
                0.1 * u
            };
            v as f32
        })
        .collect()
}

fn manifest(arch: &str) -> Vec<(String, Vec<usize>)> {
    let text = std::fs::read(fixtures().join("timm_manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&text).unwrap();
    m[arch]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let shape = v[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            (v[0].as_str().unwrap().to_string(), shape)
        })
        .collect()
}

/// `sd` written as safetensors at `path`, then loaded by itself (the model recognised from it).
fn save_and_load(
    path: &std::path::Path,
    sd: &StateDict,
    adjust: impl FnOnce(inception::models::ModelConfig) -> inception::models::ModelConfig,
) -> weights::Loaded {
    weights::safetensors::write(path, sd).unwrap();
    weights::load_file(path, ModelSource::Auto, adjust, &Device::default()).unwrap()
}

fn reproduce(arch: Arch, timm: &str) {
    let cfg = timm_names::config(arch).unwrap();
    let graph = cfg.graph().unwrap();

    // 1. Names, order and shapes.
    let want = manifest(timm);
    let shapes: std::collections::HashMap<String, Vec<usize>> =
        graph.state_dict_shapes().into_iter().collect();
    let ours: Vec<(String, Vec<usize>)> = timm_names::tensors(&graph)
        .unwrap()
        .into_iter()
        .map(|(o, t)| (t, shapes[&o].clone()))
        .collect();
    assert_eq!(ours.len(), want.len(), "{timm}");
    for (o, w) in ours.iter().zip(&want) {
        assert_eq!(o, w, "{timm}");
    }

    // 2. timm's weights in a file of their own load by themselves and compute timm's logits.
    let mut sd = StateDict::new(Format::Safetensors);
    for (name, shape) in &want {
        sd.insert(
            name.clone(),
            WeightTensor::new(shape.clone(), formula(name, shape), DType::F32),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let io = weights::safetensors::read(&fixtures().join("timm_io.safetensors")).unwrap();
    let x = io.get(&format!("{timm}.input")).unwrap();
    let size = x.shape[2];
    let device = Device::default();
    let loaded = save_and_load(&dir.path().join(format!("{timm}.safetensors")), &sd, |c| {
        c.with_input_size(size)
    });
    let got_cfg = loaded.config.clone().unwrap();
    assert_eq!(
        (got_cfg.arch, got_cfg.classes, got_cfg.batch_norm_scale),
        (arch, 1000, true)
    );
    let input =
        Tensor::<4>::from_data(TensorData::new(x.data.clone(), [1, 3, size, size]), &device);
    let logits = flat_values(loaded.network.infer(input).unwrap());
    let want = &io.get(&format!("{timm}.logits")).unwrap().data;
    assert_close(&format!("{timm} logits"), &logits, want, 1e-4);

    // 3. And back: our weights under timm's names are the file's tensors.
    let back = timm_names::to_timm(
        loaded.network.graph(),
        &weights::state_dict(&loaded.network),
    )
    .unwrap();
    for (name, t) in sd.iter() {
        assert_eq!(back.get(name).unwrap().data, t.data, "{name}");
    }
}

#[test]
fn inception_v4_has_timms_names_and_numbers() {
    reproduce(Arch::InceptionV4, "inception_v4");
}

#[test]
fn inception_resnet_v2_has_timms_names_and_numbers() {
    reproduce(Arch::InceptionResNetV2, "inception_resnet_v2");
}

#[test]
fn tf_slim_weights_convert_to_timms_names() {
    // TF-slim's Inception-ResNet-v2 (no γ, 1001 classes, aux head) written under timm's names:
    // γ = 1, no aux head; loaded back as timm's layout it computes the same logits.
    let device = Device::default();
    let cfg = inception::models::ModelConfig::new(Arch::InceptionResNetV2)
        .with_aux_logits(true)
        .with_input_size(107);
    let net = cfg.init(&device).unwrap();
    let timm = timm_names::export(&net, &cfg).unwrap();
    assert!(
        timm.get("conv2d_1a.bn.weight")
            .unwrap()
            .data
            .iter()
            .all(|&g| g == 1.0)
    );
    assert_eq!(timm.get("classif.weight").unwrap().shape, vec![1001, 1536]);
    assert!(timm.iter().all(|(n, _)| !n.contains("Aux")));
    let dir = tempfile::tempdir().unwrap();
    let loaded = save_and_load(&dir.path().join("irv2_timm.safetensors"), &timm, |c| {
        c.with_input_size(107)
    });
    assert!(loaded.config.as_ref().unwrap().batch_norm_scale);
    let x = Tensor::<4>::random(
        [1, 3, 107, 107],
        inception::burn::tensor::Distribution::Uniform(-1.0, 1.0),
        &device,
    );
    let a = flat_values(net.infer(x.clone()).unwrap());
    let b = flat_values(loaded.network.infer(x).unwrap());
    assert_close("timm-named copy", &b, &a, 1e-5);
}

#[test]
fn tf_slim_inception_v3_converts_to_timms_and_torchvisions_names() {
    // TF-slim's Inception v3 (no γ, 1001 classes, aux head) under timm's names, which are
    // torchvision's: exactly the state dict of torchvision's layout with 1001 classes and no
    // aux head; loaded as that layout, the stem computes what TF-slim's does, and every
    // tensor arrives (γ = 1, the 1x1-conv classifier as the Linear `fc`).
    let device = Device::default();
    let size = 107;
    let cfg = inception::models::ModelConfig::new(Arch::InceptionV3Slim)
        .with_aux_logits(true)
        .with_input_size(size);
    let net = cfg.init(&device).unwrap();
    let timm = timm_names::export(&net, &cfg).unwrap();
    assert!(timm.iter().all(|(n, _)| !n.contains("Aux")));
    assert_eq!(timm.get("fc.weight").unwrap().shape, vec![1001, 2048]);
    assert!(
        timm.get("Mixed_7c.branch_pool.bn.weight")
            .unwrap()
            .data
            .iter()
            .all(|&g| g == 1.0)
    );

    // Names and shapes: torchvision's layout, computed by our own (fixture-checked) graph.
    let tv = inception::models::ModelConfig::new(Arch::InceptionV3)
        .with_classes(1001)
        .with_aux_logits(false)
        .with_input_size(size);
    let want: Vec<(String, Vec<usize>)> = tv
        .graph()
        .unwrap()
        .state_dict_shapes()
        .into_iter()
        .filter(|(n, _)| !n.ends_with("num_batches_tracked"))
        .collect();
    assert_eq!(timm.len(), want.len());
    for (name, shape) in &want {
        let got = timm
            .get(name)
            .unwrap_or_else(|| panic!("{name} is missing"));
        assert_eq!(&got.shape, shape, "{name}");
    }

    // Loaded by itself as torchvision's layout.
    let dir = tempfile::tempdir().unwrap();
    let loaded = save_and_load(&dir.path().join("v3_timm.safetensors"), &timm, |c| {
        c.with_input_size(size)
    });
    assert_eq!(loaded.network.graph().name(), "inception-v3");
    let x = Tensor::<4>::random(
        [2, 3, size, size],
        inception::burn::tensor::Distribution::Uniform(-1.0, 1.0),
        &device,
    );
    let slim = net
        .features(x.clone(), &["InceptionV3/MaxPool_5a_3x3"])
        .unwrap();
    let tv_stem = loaded.network.features(x.clone(), &["maxpool2"]).unwrap();
    let a = flat_values(slim.into_iter().next().unwrap());
    let b = flat_values(tv_stem.into_iter().next().unwrap());
    assert_close("stem through maxpool2", &b, &a, 1e-5);

    // The classifier: TF-slim's `[1001, 2048, 1, 1]` kernel is the Linear's `[1001, 2048]`.
    let back = weights::export(&loaded.network, loaded.config.as_ref().unwrap());
    let ours = weights::export(&net, &cfg);
    let fc = back.get("fc.weight").unwrap();
    let conv = ours.get("InceptionV3/Logits/Conv2d_1c_1x1.weight").unwrap();
    assert_eq!(conv.shape, vec![1001, 2048, 1, 1]);
    assert_eq!(fc.data, conv.data);
    assert_eq!(
        back.get("Mixed_6b.branch7x7dbl_4.conv.weight")
            .unwrap()
            .data,
        ours.get("InceptionV3/Mixed_6b/Branch_2/Conv2d_0d_7x1.weight")
            .unwrap()
            .data
    );

    // Our own file of the TF-slim layout asked for with 1000 classes: "background" dropped.
    let cut = save_and_load(&dir.path().join("v3_slim.safetensors"), &ours, |c| {
        c.with_input_size(size).with_classes(1000)
    });
    let all = flat_values(net.infer(x.clone()).unwrap());
    let want: Vec<f32> = all.chunks(1001).flat_map(|r| r[1..].to_vec()).collect();
    let got = flat_values(cut.network.infer(x).unwrap());
    assert_close("1000 of 1001 classes", &got, &want, 1e-5);
}
