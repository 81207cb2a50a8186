//! The functional and sequential APIs: a user writes the tutorial's blocks in a few lines and gets
//! a model that matches Keras parameter for parameter, trains, summarises and draws.

mod common;

use burn::tensor::{Device, Distribution, Tensor};
use inception::blocks::naive_inception_block;
use inception::graph::{GraphBuilder, Padding, Shape};
use inception::summary::Summary;
use inception::{Error, Network};

#[test]
fn functional_blocks_match_keras_parameter_count() {
    let graph = common::keras_functional_blocks();
    // Keras: model.count_params() == 239,994 (trainable + BN moving statistics).
    assert_eq!(graph.params().total(), 239_994);
    assert_eq!(
        graph.shape_of("inception3a.concat").unwrap(),
        Shape::Map([256, 28, 28])
    );
    assert_eq!(
        graph.shape_of("naive.concat").unwrap(),
        Shape::Map([256, 28, 28])
    );
}

#[test]
fn sequential_matches_keras_parameter_count() {
    let graph = common::keras_sequential_small();
    assert_eq!(graph.params().total(), 46_922);
    // Keras's automatic names.
    for name in ["conv2d", "max_pooling2d", "flatten", "dense", "softmax"] {
        assert!(graph.find(name).is_some(), "{name}");
    }
}

#[test]
fn user_blocks_train_and_summarise() {
    let graph = common::keras_functional_blocks();
    let device = Device::default().autodiff();
    let net = Network::new(graph.clone(), &device);
    let x = Tensor::<4>::random([2, 192, 28, 28], Distribution::Default, &device);
    let out = net.forward(x).unwrap();
    let probs = out.logits();
    assert_eq!(probs.dims(), [2, 10]);
    let sums: Vec<f32> = probs
        .clone()
        .sum_dim(1)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5));
    let grads = probs.slice([0..2, 0..1]).sum().backward();
    let Some(inception::nn::LayerModule::Conv(c)) =
        net.layer(graph.find("inception3a.branch1").unwrap())
    else {
        panic!("conv")
    };
    assert!(c.weight.val().grad(&grads).is_some());
    let summary = Summary::of(&graph);
    assert_eq!(summary.total_params, 239_994);
    assert_eq!(summary.non_trainable_params, 2 * 256);
    let svg = inception::diagram::to_svg(&graph);
    assert!(svg.contains("inception3a") && svg.contains("naive"));
}

#[test]
fn naive_block_grows_by_its_input() {
    let mut g = GraphBuilder::new("naive");
    let x = g.input([192, 28, 28]);
    let y = naive_inception_block(&mut g, x, "naive", [64, 128, 32]);
    assert_eq!(g.shape(y), Shape::Map([64 + 128 + 32 + 192, 28, 28]));
    let graph = g.finish().unwrap();
    // No bottlenecks: 3x3 and 5x5 convs see all 192 input channels.
    let p = graph.params().trainable;
    assert_eq!(
        p,
        (192 + 1) * 64 + (192 * 9 + 1) * 128 + (192 * 25 + 1) * 32
    );
}

#[test]
fn shape_errors_name_the_layer() {
    let mut g = GraphBuilder::new("bad");
    let x = g.input([3, 8, 8]);
    let y = g.conv2d("big", x, 4, [11, 11], [1, 1], Padding::Valid, true);
    let _ = g.relu("after", y);
    let err = g.finish().unwrap_err();
    assert!(matches!(err, Error::Shape(_)));
    assert!(err.to_string().contains("layer 'big'"), "{err}");

    let mut g = GraphBuilder::new("bad");
    let x = g.input([3, 8, 8]);
    let _ = g.dense("fc", x, 4, true);
    let err = g.finish().unwrap_err().to_string();
    assert!(err.contains("add a flatten or global pooling"), "{err}");

    let mut g = GraphBuilder::new("dup");
    let x = g.input([3, 8, 8]);
    let _ = g.relu("r", x);
    let _ = g.relu("r", x);
    assert!(
        g.finish()
            .unwrap_err()
            .to_string()
            .contains("two layers are named 'r'")
    );
}

#[test]
fn same_padding_matches_tensorflow() {
    // TF "same" with stride 2 pads the extra pixel at the end.
    assert_eq!(
        Padding::Same.resolve([8, 7], [3, 3], [2, 2]),
        [[0, 1], [1, 1]]
    );
    assert_eq!(
        Padding::Same.resolve([28, 28], [5, 5], [1, 1]),
        [[2, 2], [2, 2]]
    );
    let mut g = GraphBuilder::new("same");
    let x = g.input([3, 9, 9]);
    let y = g.conv2d("c", x, 4, [3, 3], [2, 2], Padding::Same, false);
    assert_eq!(g.shape(y), Shape::Map([4, 5, 5]));
    let graph = g.finish().unwrap();
    let net = Network::new(graph, &Device::default());
    let out = net
        .infer(Tensor::zeros([1, 3, 9, 9], &Device::default()))
        .unwrap();
    assert_eq!(out.dims(), vec![1, 4, 5, 5]);
}

#[test]
fn the_family_blocks_compose_a_network_of_your_own() {
    // v4's Inception-A, an Inception-ResNet block35 and a BN-Inception module in a small net of
    // our own: shapes and parameter counts follow the paper's tables, and it runs.
    use inception::blocks::bn_inception::{BnInceptionFilters, PoolKind, bn_inception};
    use inception::blocks::slim::{block35, inception_v4_a, slim_conv};
    use inception::blocks::slim_v3::Depth;
    let mut g = GraphBuilder::new("family").with_separator("/");
    let x = g.input([3, 35, 35]);
    let x = slim_conv(&mut g, x, "stem", 320, [3, 3], 1, Padding::Same);
    let x = block35(&mut g, x, "block35", 0.17, true);
    assert_eq!(g.shape(x), Shape::Map([320, 35, 35]));
    let x = inception_v4_a(&mut g, x, "Mixed_5b");
    assert_eq!(g.shape(x), Shape::Map([384, 35, 35]));
    let f = BnInceptionFilters::new(64, 64, 64, 64, 96, 32, PoolKind::Avg);
    let x = bn_inception(&mut g, x, "Mixed_3b", f, Depth::ONE);
    assert_eq!(g.shape(x), Shape::Map([256, 35, 35]));
    let x = g.global_avg_pool("pool", x);
    let y = g.dense("logits", x, 5, true);
    g.output("logits", y);
    let graph = g.finish().unwrap();
    // block35: 32 + (32 + 9·32·32) + (32 + 9·32·48 + 9·48·64) 1x1 / 3x3 kernels on 320 channels,
    // BatchNorm β each, then the 128 → 320 projection with bias.
    let b35: usize = 320 * 32 * 3
        + 9 * 32 * 32
        + 9 * 32 * 48
        + 9 * 48 * 64
        + (32 + 32 + 32 + 32 + 48 + 64)
        + 128 * 320
        + 320;
    let stem = 9 * 3 * 320 + 320;
    // Inception-A on block35's 320 channels: 1x1 96, 64, 64, 96; 3x3 64→96 twice, 96→96.
    let a = 320 * (96 + 64 + 64 + 96) + 9 * 64 * 96 * 2 + 9 * 96 * 96 + 96 * 5 + 64 * 2;
    let bn =
        384 * (64 + 64 + 64 + 32) + 9 * 64 * 64 + 9 * 64 * 96 + 9 * 96 * 96 + 64 * 4 + 96 * 2 + 32;
    let head = 256 * 5 + 5;
    assert_eq!(graph.params().trainable, stem + b35 + a + bn + head);
    let net = Network::new(graph, &Device::default());
    let out = net
        .infer(Tensor::zeros([2, 3, 35, 35], &Device::default()))
        .unwrap();
    assert_eq!(out.flat().dims(), [2, 5]);
}
