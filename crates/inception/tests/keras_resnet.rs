//! keras.applications.InceptionResNetV2 (`fixtures/gen/gen_keras_irv2.py`, Keras 3): its
//! weighted layers, in the order of its published `.h5` files, map by order onto our TF-slim
//! layout of Inception-ResNet-v2, and with weights given by a formula of each Keras weight's
//! name the model computes Keras's probabilities.

mod common;

use common::{assert_close, fixtures, flat_values, name_draws, nchw};
use inception::burn::tensor::{Device, Tensor, TensorData};
use inception::models::Arch;
use inception::weights::keras::{self, KerasClass, KerasLayer, KerasWeights};
use inception::weights::{self, DType, WeightTensor};

/// The fixture's formula (see `gen_keras_irv2.py`): the fixtures' draws, scaled by the weight's
/// role (Keras kernels are HWIO: fan-in is the product of all but the last dimension).
fn formula(name: &str, shape: &[usize]) -> Vec<f32> {
    let role = name.rsplit('/').next().unwrap_or(name);
    let fan_in = shape[..shape.len() - 1].iter().product::<usize>() as f64;
    name_draws(name, shape.iter().product())
        .map(|u| {
            (match role {
                "kernel" => u * (6.0 / fan_in).sqrt(),
                "gamma" | "moving_variance" => 1.0 + 0.1 * u,
                _ => 0.1 * u,
            }) as f32
        })
        .collect()
}

#[test]
fn keras_inception_resnet_v2_maps_by_layer_order() {
    let text = std::fs::read(fixtures().join("keras_irv2_manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let layers = manifest
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let name = l[0].as_str().unwrap().to_string();
            let class = match l[1].as_str().unwrap() {
                "Conv2D" => KerasClass::Conv2D,
                "BatchNormalization" => KerasClass::BatchNormalization,
                "Dense" => KerasClass::Dense,
                other => panic!("{other}"),
            };
            let weights = l[2]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| {
                    let role = w[0].as_str().unwrap().to_string();
                    let shape: Vec<usize> = w[1]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_u64().unwrap() as usize)
                        .collect();
                    let data = formula(&format!("{name}/{role}"), &shape);
                    (role, WeightTensor::new(shape, data, DType::F32))
                })
                .collect();
            KerasLayer {
                name,
                class,
                weights,
            }
        })
        .collect();
    let kw = KerasWeights {
        layers,
        config: None,
    };
    let cfg = keras::detect(&kw).expect("recognised");
    assert_eq!(
        (cfg.arch, cfg.classes, cfg.softmax, cfg.batch_norm_scale),
        (Arch::InceptionResNetV2, 1000, true, false)
    );
    let cfg = cfg.with_input_size(75);
    let graph = cfg.graph().unwrap();
    let sd = kw.to_state_dict(&graph).unwrap();
    let device = Device::default();
    let (net, _) = weights::load_model(&cfg, &sd, &device).unwrap();
    let io = weights::safetensors::read(&fixtures().join("keras_irv2_io.safetensors")).unwrap();
    let x = io.get("input").unwrap();
    let (h, w) = (x.shape[1], x.shape[2]);
    let input = Tensor::<4>::from_data(
        TensorData::new(nchw(&x.data, &x.shape), [1, 3, h, w]),
        &device,
    );
    let probs = flat_values(net.infer(input).unwrap());
    let want = &io.get("probs").unwrap().data;
    assert_close("keras InceptionResNetV2 probabilities", &probs, want, 1e-4);
    // Probabilities near 1/1000 would hide a wrong mapping under the absolute tolerance: compare
    // log-probabilities (logits up to a constant) too.
    let log = |v: &[f32]| v.iter().map(|p| p.ln()).collect::<Vec<f32>>();
    let (lo, hi) = want
        .iter()
        .fold((f32::MAX, 0.0f32), |(lo, hi), &p| (lo.min(p), hi.max(p)));
    assert!(
        hi / lo > 10.0,
        "the fixture's probabilities spread: {lo} to {hi}"
    );
    let worst = log(&probs)
        .iter()
        .zip(log(want))
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst < 1e-3, "log-probabilities differ by {worst}");
}
