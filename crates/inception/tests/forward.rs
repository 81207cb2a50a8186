//! Forward and backward passes through every built-in model on the CPU backend: runtime shapes
//! agree with shape inference, aux heads train the lower layers, the output type is the same in
//! training and evaluation, and the allocated parameters match the architecture's counts.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use inception::graph::Shape;
use inception::models::{Arch, ModelConfig, Pooling};
use inception::{Network, Value};

fn first_conv_weight(net: &Network) -> Tensor<4> {
    net.layer_modules()
        .find_map(|l| match l {
            inception::nn::LayerModule::Conv(c) => Some(c.weight.val()),
            _ => None,
        })
        .expect("a conv")
}

fn train_step(cfg: ModelConfig, batch: usize) {
    let device = Device::default().autodiff();
    let net = cfg.init(&device).unwrap();
    let graph = net.graph().clone();
    let [c, h, w] = graph.input_shape();
    let x = Tensor::<4>::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), &device);
    let out = net.forward(x).unwrap();
    assert_eq!(out.logits().dims(), [batch, cfg.classes], "{}", cfg.arch);
    assert_eq!(out.aux.len(), graph.aux_outputs().count());
    let mut loss = out.logits().powf_scalar(2.0).mean();
    for a in &out.aux {
        assert_eq!(a.dims(), [batch, cfg.classes]);
        loss = loss + a.clone().powf_scalar(2.0).mean().mul_scalar(0.3);
    }
    let grads = loss.backward();
    let g = first_conv_weight(&net)
        .grad(&grads)
        .expect("the first conv gets a gradient");
    let norm: f32 = g.abs().sum().into_scalar();
    assert!(
        norm.is_finite() && norm > 0.0,
        "{}: gradient norm {norm}",
        cfg.arch
    );
}

#[test]
fn googlenet_trains_with_aux_heads() {
    train_step(
        ModelConfig::new(Arch::GoogLeNet)
            .with_aux_logits(true)
            .with_input_size(96)
            .with_classes(10),
        2,
    );
}

#[test]
fn googlenet_bvlc_trains_with_aux_heads() {
    let cfg = ModelConfig::new(Arch::GoogLeNetBvlc)
        .with_aux_logits(true)
        .with_classes(10);
    let min = cfg.min_input_size().unwrap();
    train_step(cfg.with_input_size(min.max(96)), 2);
}

#[test]
fn inception_v3_trains_with_aux_head() {
    let cfg = ModelConfig::new(Arch::InceptionV3)
        .with_aux_logits(true)
        .with_classes(10);
    let min = cfg.min_input_size().unwrap();
    train_step(cfg.with_input_size(min), 2);
}

#[test]
fn inception_v3_keras_trains() {
    train_step(
        ModelConfig::new(Arch::InceptionV3Keras)
            .with_input_size(75)
            .with_classes(10),
        2,
    );
}

#[test]
fn runtime_shapes_match_shape_inference() {
    let device = Device::default();
    for (arch, size) in [
        (Arch::GoogLeNet, 64),
        (Arch::GoogLeNetBvlc, 64),
        (Arch::InceptionV3, 75),
        (Arch::InceptionV3Keras, 99),
    ] {
        let cfg = ModelConfig::new(arch)
            .with_input_size(size)
            .with_include_top(false);
        let net = cfg.init(&device).unwrap();
        let graph = net.graph().clone();
        let x = Tensor::<4>::random([1, 3, size, size], Distribution::Default, &device);
        let ids: Vec<usize> = (0..graph.nodes().len()).collect();
        let values = net.run(x, &ids).unwrap();
        for (node, v) in graph.nodes().iter().zip(values) {
            let want: Vec<usize> = match node.shape {
                Shape::Map([c, h, w]) => vec![1, c, h, w],
                Shape::Flat(n) => vec![1, n],
            };
            assert_eq!(v.dims(), want, "{arch}: {}", node.name);
        }
    }
}

#[test]
fn smallest_googlenet_runs() {
    // torchvision's documented minimum: 15x15 (ceil-mode pools hang over the edge).
    let device = Device::default();
    let net = ModelConfig::new(Arch::GoogLeNet)
        .with_input_size(15)
        .init(&device)
        .unwrap();
    let out = net
        .infer(Tensor::random(
            [1, 3, 15, 15],
            Distribution::Default,
            &device,
        ))
        .unwrap();
    assert_eq!(out.dims(), vec![1, 1000]);
}

#[test]
fn output_type_is_the_same_in_training_and_evaluation() {
    let device = Device::default().autodiff();
    let cfg = ModelConfig::new(Arch::GoogLeNet)
        .with_aux_logits(true)
        .with_input_size(64)
        .with_classes(5);
    let net = cfg.init(&device).unwrap();
    let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Default, &device);
    let train = net.forward(x.clone()).unwrap();
    let eval_net = net.valid();
    let eval = eval_net.forward(x.clone().inner()).unwrap();
    assert_eq!(train.aux.len(), 2);
    assert_eq!(eval.aux.len(), 2);
    assert_eq!(train.logits().dims(), eval.logits().dims());
    // Inference skips the aux heads but gives the same main output as evaluation.
    let inferred = eval_net.infer(x.inner()).unwrap().flat();
    let diff: f32 = (inferred - eval.logits()).abs().max().into_scalar();
    assert!(diff < 1e-5, "{diff}");
}

#[test]
fn aux_losses_reach_the_lower_layers_and_vanish_at_inference() {
    // With the main loss alone and with main + 0.3 * aux losses, the first conv's gradient differs.
    let device = Device::default().autodiff();
    let cfg = ModelConfig::new(Arch::GoogLeNet)
        .with_aux_logits(true)
        .with_input_size(64)
        .with_classes(4)
        .with_dropout(0.0);
    let net = cfg.init(&device).unwrap().no_grad().set_require_grad(true);
    let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Default, &device);
    let grad_of = |with_aux: bool| {
        let out = net.forward(x.clone()).unwrap();
        let mut loss = out.logits().sum();
        if with_aux {
            for a in &out.aux {
                loss = loss + a.clone().sum().mul_scalar(0.3);
            }
        }
        let grads = loss.backward();
        first_conv_weight(&net).grad(&grads).unwrap()
    };
    let main_only = grad_of(false);
    let with_aux = grad_of(true);
    let diff: f32 = (main_only - with_aux).abs().sum().into_scalar();
    assert!(diff > 0.0);
    // Built without aux heads, the network has no aux outputs and fewer parameters.
    let plain = cfg.clone().with_aux_logits(false).init(&device).unwrap();
    assert!(plain.forward(x).unwrap().aux.is_empty());
}

#[test]
fn allocated_parameters_match_the_architecture() {
    let device = Device::default();
    for arch in Arch::ALL {
        let cfg = ModelConfig::new(arch).with_aux_logits(arch.has_aux_heads());
        let net = cfg.init(&device).unwrap();
        assert_eq!(net.param_count(), net.graph().params(), "{arch}");
    }
}

#[test]
fn batch_norm_trains_with_unbiased_running_variance() {
    use inception::graph::GraphBuilder;
    let mut g = GraphBuilder::new("bn");
    let x = g.input([1, 2, 2]);
    let y = g.batch_norm("bn", x, 1e-5, true);
    g.output("y", y);
    let device = Device::default().autodiff();
    let net = Network::new(g.finish().unwrap(), &device);
    let data = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], &device)
        .reshape([2, 1, 2, 2]);
    let _ = net.forward(data).unwrap();
    let Some(inception::nn::LayerModule::Norm(bn)) = net.layer(1) else {
        panic!("bn")
    };
    let values: Vec<f32> = (1..=8).map(|v| v as f32).collect();
    let mean = values.iter().sum::<f32>() / 8.0;
    let var_unbiased = values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 7.0;
    let rm: f32 = bn.running_mean.value_sync().into_scalar();
    let rv: f32 = bn.running_var.value_sync().into_scalar();
    assert!((rm - 0.1 * mean).abs() < 1e-5, "{rm}");
    assert!((rv - (0.9 + 0.1 * var_unbiased)).abs() < 1e-4, "{rv}");
}

#[test]
fn features_and_pooling() {
    let device = Device::default();
    let cfg = ModelConfig::new(Arch::GoogLeNet)
        .with_input_size(64)
        .with_include_top(false)
        .with_pooling(Some(Pooling::Avg));
    let net = cfg.init(&device).unwrap();
    let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Default, &device);
    match net.infer(x.clone()).unwrap() {
        Value::Flat(t) => assert_eq!(t.dims(), [2, 1024]),
        Value::Map(_) => panic!("pooled features are vectors"),
    }
    let taps = net.features(x, &["inception3b", "conv1"]).unwrap();
    assert_eq!(taps[0].dims(), vec![2, 480, 8, 8]);
    assert_eq!(taps[1].dims(), vec![2, 64, 32, 32]);
    let err = net
        .features(Tensor::zeros([1, 3, 64, 64], &device), &["nope"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("no layer named 'nope'"), "{err}");
    let err = net.check_input([1, 3, 32, 32]).unwrap_err().to_string();
    assert!(err.contains("takes input [N, 3, 64, 64]"), "{err}");
    // A wrong-sized batch is an error from every entry point (it was a panic).
    let wrong = Tensor::<4>::zeros([1, 3, 32, 32], &device);
    assert!(matches!(
        net.forward(wrong.clone()),
        Err(inception::Error::Input { .. })
    ));
    assert!(net.infer(wrong.clone()).is_err());
    assert!(net.run(wrong, &[0]).is_err());
    let x = Tensor::<4>::zeros([1, 3, 64, 64], &device);
    assert!(net.run(x, &[usize::MAX]).is_err());
}
