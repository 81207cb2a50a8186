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
    let path = dir.path().join(format!("{timm}.safetensors"));
    weights::safetensors::write(&path, &sd).unwrap();
    let io = weights::safetensors::read(&fixtures().join("timm_io.safetensors")).unwrap();
    let x = io.get(&format!("{timm}.input")).unwrap();
    let size = x.shape[2];
    let device = Device::default();
    let loaded = weights::load_file(
        &path,
        ModelSource::Auto,
        |c| c.with_input_size(size),
        &device,
    )
    .unwrap();
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
    let path = dir.path().join("irv2_timm.safetensors");
    weights::safetensors::write(&path, &timm).unwrap();
    let loaded = weights::load_file(
        &path,
        ModelSource::Auto,
        |c| c.with_input_size(107),
        &device,
    )
    .unwrap();
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
