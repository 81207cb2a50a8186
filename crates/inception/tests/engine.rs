//! The fast CPU engine (`inception::engine`) against Burn's operation-by-operation reference
//! path (`Network::run_reference`), on every built-in model and on every operation a graph can
//! hold. Weights are randomised (BatchNorm statistics included) so that folding is exercised.
//! The fixture tests (`weights.rs`, `onnx.rs`, `keras.rs`) check the engine against PyTorch,
//! Keras and onnxruntime outputs as well, since `Network::infer` runs on it.

mod common;

use std::collections::HashSet;

use inception::burn::module::Module;
use inception::burn::tensor::{Device, Distribution, Tensor};
use inception::engine::StepKind;
use inception::graph::{GraphBuilder, NodeId, Op, Padding, Pool};
use inception::weights::{StateDict, WeightTensor, load_into, state_dict};
use inception::{Arch, Graph, ModelConfig, Network, Value};
use rand::{Rng, SeedableRng};

use common::assert_close;

/// A network with every parameter drawn at random: weights N(0, 1/fan_in), BatchNorm
/// γ ∈ [0.5, 1.5], β and means N(0, 0.5), variances ∈ [0.5, 2].
fn random_network(graph: Graph, seed: u64) -> Network {
    let device = Device::flex();
    let mut net = Network::new(graph, &device);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let sd = state_dict(&net);
    let mut out = StateDict::new(sd.format);
    for (name, t) in sd.iter() {
        let n = t.data.len();
        let fan_in = if t.shape.len() > 1 {
            t.shape[1..].iter().product::<usize>()
        } else {
            1
        };
        let data: Vec<f32> = (0..n)
            .map(|_| {
                let u: f32 = rng.random_range(-1.0..1.0);
                if name.ends_with("running_var") {
                    1.25 + 0.75 * u
                } else if t.shape.len() == 1 && name.ends_with("weight") {
                    1.0 + 0.5 * u
                } else if t.shape.len() == 1 {
                    0.5 * u
                } else {
                    u * (3.0 / fan_in as f32).sqrt()
                }
            })
            .collect();
        out.insert(
            name.to_string(),
            WeightTensor::new(t.shape.clone(), data, t.dtype),
        );
    }
    load_into(&mut net, &out, &HashSet::new()).expect("random weights fit");
    net
}

fn values(v: Value) -> Vec<f32> {
    v.flat().into_data().try_to_vec::<f32>().expect("f32")
}

/// Runs `wanted` through both paths and compares every value.
fn check(net: &Network, batch: usize, wanted: &[NodeId], what: &str) {
    let [c, h, w] = net.graph().input_shape();
    let device = Device::flex();
    let x = Tensor::<4>::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), &device);
    let fast = net.run(x.clone(), wanted).expect("engine");
    let reference = net.run_reference(x, wanted).expect("reference");
    for ((f, r), id) in fast.into_iter().zip(reference).zip(wanted) {
        assert_eq!(f.dims(), r.dims(), "{what}: dims of node {id}");
        let name = &net.graph().nodes()[*id].name;
        assert_close(
            &format!("{what} batch {batch} {name}"),
            &values(f),
            &values(r),
            1e-4,
        );
    }
}

fn all_outputs(g: &Graph) -> Vec<NodeId> {
    g.outputs().iter().map(|o| o.node).collect()
}

#[test]
fn every_built_in_model_matches_the_reference_path() {
    for (arch, size) in [
        (Arch::GoogLeNet, 96),
        (Arch::GoogLeNetBvlc, 96),
        (Arch::InceptionV3, 107),
        (Arch::InceptionV3Keras, 107),
        (Arch::InceptionMini, 28),
    ] {
        // Inception v3's aux head needs the full 299 input: checked in its own test.
        let aux = matches!(arch, Arch::GoogLeNet | Arch::GoogLeNetBvlc);
        let cfg = ModelConfig::new(arch)
            .with_input_size(size)
            .with_classes(17)
            .with_aux_logits(aux);
        let net = random_network(cfg.graph().expect("graph"), 1);
        let wanted = all_outputs(net.graph());
        for batch in [1, 3] {
            check(&net, batch, &wanted, &format!("{arch:?}"));
        }
    }
}

#[test]
fn inception_v3_with_its_aux_head_at_299_matches() {
    let cfg = ModelConfig::new(Arch::InceptionV3).with_aux_logits(true);
    let net = random_network(cfg.graph().expect("graph"), 12);
    check(&net, 1, &all_outputs(net.graph()), "InceptionV3 299");
}

#[test]
fn headless_pooled_and_transformed_variants_match() {
    use inception::Pooling;
    let variants = [
        ModelConfig::new(Arch::GoogLeNet)
            .with_input_size(80)
            .with_transform_input(true)
            .with_aux_logits(false),
        ModelConfig::new(Arch::InceptionV3)
            .with_input_size(99)
            .with_include_top(false)
            .with_pooling(Some(Pooling::Max))
            .with_aux_logits(false),
        ModelConfig::new(Arch::InceptionV3Keras)
            .with_input_size(99)
            .with_include_top(false)
            .with_pooling(None),
        ModelConfig::new(Arch::GoogLeNet)
            .with_input_size(64)
            .with_classes(5)
            .with_softmax(true)
            .with_aux_logits(false),
    ];
    for (k, cfg) in variants.iter().enumerate() {
        let net = random_network(cfg.graph().expect("graph"), 2 + k as u64);
        check(&net, 2, &all_outputs(net.graph()), &format!("variant {k}"));
    }
}

#[test]
fn intermediate_layers_and_branches_match() {
    let cfg = ModelConfig::new(Arch::GoogLeNet)
        .with_input_size(64)
        .with_aux_logits(false);
    let net = random_network(cfg.graph().expect("graph"), 7);
    let g = net.graph();
    // A module output, a branch inside it (read by the concatenation and by us), a BatchNorm
    // output that would otherwise be folded, and the stem.
    let names = [
        "inception3b",
        "inception4a.branch2.1",
        "conv1.bn",
        "maxpool2",
    ];
    let wanted: Vec<NodeId> = names.iter().map(|n| g.resolve(n).expect(n)).collect();
    check(&net, 2, &wanted, "googlenet features");
}

/// Every operation and option the graph API has, in one network.
fn every_op_graph() -> Graph {
    let mut g = GraphBuilder::new("every_op");
    let x = g.input([5, 17, 19]);
    let a = g.add(
        "affine",
        Op::ChannelAffine {
            scale: vec![0.5, 2.0, -1.0, 1.5, 0.25],
            shift: vec![0.1, -0.2, 0.3, 0.0, 1.0],
        },
        &[x],
    );
    let c1 = g.conv2d("c1", a, 12, [3, 3], [2, 2], Padding::Same, true);
    let r1 = g.relu("r1", c1);
    let l = g.lrn("lrn", r1, 5, 1e-2, 0.75, 1.0);
    let l4 = g.lrn("lrn4", l, 4, 1e-1, 0.5, 2.0);
    let p1 = g.max_pool(
        "p1",
        l4,
        Pool::new(3, 2)
            .padding(Padding::Explicit([1, 1]))
            .ceil_mode(),
    );
    // Four branches, one of them a nested concatenation, one asymmetric.
    let b0 = g.conv2d("b0", p1, 4, [1, 1], [1, 1], Padding::Valid, false);
    let b0 = g.batch_norm("b0.bn", b0, 1e-3, false);
    let b0 = g.relu("b0.relu", b0);
    let b1 = g.conv2d("b1", p1, 3, [1, 7], [1, 1], Padding::Same, false);
    let b1 = g.batch_norm("b1.bn", b1, 1e-5, true);
    let b2a = g.conv2d("b2a", p1, 2, [7, 1], [1, 1], Padding::Same, true);
    let b2b = g.conv2d(
        "b2b",
        p1,
        3,
        [2, 2],
        [1, 1],
        Padding::Pairs([[0, 1], [1, 0]]),
        true,
    );
    let b2 = g.concat("b2", &[b2a, b2b]);
    let b3 = g.avg_pool("b3.pool", p1, Pool::new(3, 1).padding(Padding::Same));
    let b3 = g.conv2d("b3", b3, 2, [1, 1], [1, 1], Padding::Valid, true);
    let cat = g.concat("cat", &[b0, b1, b2, b3, b0]);
    let bn = g.batch_norm("cat.bn", cat, 1e-3, true);
    let r = g.relu("cat.relu", bn);
    let p2 = g.avg_pool(
        "p2",
        r,
        Pool::new(3, 2)
            .padding(Padding::Explicit([1, 1]))
            .ceil_mode()
            .count_include_pad(),
    );
    let p3 = g.avg_pool(
        "p3",
        r,
        Pool::new(2, 2)
            .padding(Padding::Pairs([[0, 1], [1, 0]]))
            .count_include_pad(),
    );
    let ad = g.adaptive_avg_pool("adaptive", r, [3, 2]);
    let sum = g.add_nodes("sum", &[p2, p2]);
    let gmax = g.global_max_pool("gmax", sum);
    let f1 = g.flatten("flat_chw", p3);
    let f2 = g.add(
        "flat_hwc",
        Op::Flatten {
            channels_last: true,
        },
        &[ad],
    );
    let d1 = g.dense("d1", f1, 6, true);
    let d1 = g.batch_norm("d1.bn", d1, 1e-3, true);
    let d1 = g.relu("d1.relu", d1);
    let d2 = g.dense("d2", f2, 6, false);
    let d3 = g.dense("d3", gmax, 6, true);
    let s = g.add_nodes("heads", &[d1, d2, d3]);
    let s = g.dropout("drop", s, 0.5);
    let y = g.softmax("softmax", s);
    g.output("probs", y);
    g.aux_output("side", d3);
    g.finish().expect("graph")
}

#[test]
fn an_average_pool_before_a_narrowing_1x1_convolution_runs_after_it() {
    // Inception v3's `branch_pool`: the convolution (288 → 64 channels in Mixed_5d) first, then
    // the pool over its output with the bias and ReLU; the reference path pools first.
    let cfg = ModelConfig::new(Arch::InceptionV3).with_input_size(107);
    let net = random_network(cfg.graph().expect("graph"), 5);
    let plan = net.compile().expect("plan");
    let x = vec![0.5f32; 3 * 107 * 107];
    let (_, times) = plan.profile_raw(1, &x).expect("profile");
    let steps: Vec<(&str, StepKind)> = times.iter().map(|t| (t.node.as_str(), t.kind)).collect();
    assert!(!steps.iter().any(|(n, _)| *n == "Mixed_5d.avg_pool"));
    let conv = steps
        .iter()
        .position(|&(n, k)| n.starts_with("Mixed_5d.branch_pool") && k == StepKind::Conv)
        .expect("the branch's convolution");
    assert_eq!(steps[conv + 1].1, StepKind::Pool);
    let wanted = [net.graph().resolve("Mixed_5d").expect("Mixed_5d")];
    check(&net, 2, &wanted, "Mixed_5d");
}

#[test]
fn every_operation_matches_the_reference_path() {
    let net = random_network(every_op_graph(), 11);
    let g = net.graph();
    let mut wanted = all_outputs(g);
    for name in ["cat", "b2", "lrn4", "p3", "flat_chw", "b1"] {
        wanted.push(g.find(name).expect(name));
    }
    for batch in [1, 2, 5] {
        check(&net, batch, &wanted, "every op");
    }
}

#[test]
fn a_plan_is_reused_across_batch_sizes_and_keeps_its_weights() {
    let cfg = ModelConfig::new(Arch::InceptionMini).with_classes(4);
    let net = random_network(cfg.graph().expect("graph"), 5);
    let plan = net.compile().expect("plan");
    assert!(!plan.is_empty());
    let device = Device::flex();
    let main = net.graph().main_output().node;
    for batch in [4, 1, 7, 4] {
        let x = Tensor::<4>::random([batch, 1, 28, 28], Distribution::Default, &device);
        let fast = values(plan.infer(x.clone()).expect("run"));
        let reference = values(net.run_reference(x, &[main]).expect("ref").remove(0));
        assert_close(
            &format!("reused plan, batch {batch}"),
            &fast,
            &reference,
            1e-4,
        );
    }
    // A wrong input is an error, not a panic.
    let bad = Tensor::<4>::zeros([1, 1, 27, 28], &device);
    assert!(plan.infer(bad).is_err());
    assert!(plan.run_raw(2, &[0.0; 10]).is_err());
    assert!(plan.run_raw(0, &[]).is_err());
}

#[test]
fn training_keeps_the_differentiable_path() {
    // On an autodiff device `run` is the reference path (gradients flow), and an inference
    // plan compiled from a training network sees the running statistics.
    let cfg = ModelConfig::new(Arch::InceptionMini).with_classes(3);
    let net = random_network(cfg.graph().expect("graph"), 9);
    let device = Device::flex().autodiff();
    let net_ad = net.clone().to_device(&device);
    let x = Tensor::<4>::random([2, 1, 28, 28], Distribution::Default, &device).require_grad();
    let out = net_ad.forward(x.clone()).expect("forward").logits();
    let grads = out.sum().backward();
    assert!(x.grad(&grads).is_some());
}

#[test]
fn random_mismatch_is_caught() {
    // The comparison itself is not vacuous: a perturbed weight shows.
    let cfg = ModelConfig::new(Arch::InceptionMini).with_classes(4);
    let a = random_network(cfg.graph().expect("graph"), 3);
    let b = random_network(cfg.graph().expect("graph"), 4);
    let device = Device::flex();
    let x = Tensor::<4>::random([1, 1, 28, 28], Distribution::Default, &device);
    let main = a.graph().main_output().node;
    let fa = values(a.compile().expect("plan").infer(x.clone()).expect("a"));
    let rb = values(b.run_reference(x, &[main]).expect("b").remove(0));
    assert!(common::relative_error(&fa, &rb) > 1e-3);
}
