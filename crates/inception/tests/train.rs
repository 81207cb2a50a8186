//! Training: data, augmentation, losses, schedules, clipping, the optimizers' update rules
//! (against PyTorch's formulas, computed here), aux heads, and a short real convergence run.

use inception::Network;
use inception::burn::module::Module;
use inception::burn::optim::GradientsParams;
use inception::burn::tensor::{Device, Tensor, TensorData};
use inception::graph::GraphBuilder;
use inception::models::{Arch, ModelConfig};
use inception::train::{
    Augment, Decay, Ema, ImageSet, OptimizerKind, Recipe, Schedule, TrainConfig, Trainer,
    augment::augment, augment::crop_box, build_optimizer, clip_global_norm, cross_entropy,
    evaluate, load_checkpoint, objective, save_checkpoint, save_model,
};
use inception::weights;
use rand::SeedableRng;

/// Burn's CPU backend has one random generator per process: tests that initialise or train
/// networks take turns, so that each run draws exactly what its seed says.
fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

#[test]
fn embedded_digits_are_the_mnist10k_folder() {
    let _turn = exclusive();
    let (train, test) = ImageSet::digits().unwrap();
    assert_eq!((train.len(), test.len()), (8004, 1996));
    assert_eq!((train.channels, train.size), (1, [28, 28]));
    let counts = train.class_counts();
    assert!(
        counts.iter().all(|&c| (650..950).contains(&c)),
        "{counts:?}"
    );
    assert_eq!(counts.iter().sum::<usize>(), 8004);
    // The same pixels as the PNG folder they were packed from, where it is available.
    let folder =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist10k/test");
    if folder.is_dir() {
        let (disk, failed) = ImageSet::from_folder(&folder, 1, 28, None).unwrap();
        assert!(failed.is_empty());
        assert_eq!(disk.labels, test.labels);
        assert_eq!(disk.pixels, test.pixels);
    }
}

#[test]
fn image_folders_splits_and_subsets() {
    let _turn = exclusive();
    let (_, test) = ImageSet::digits().unwrap();
    let small = test.take_per_class(3, 1);
    assert_eq!(small.class_counts(), vec![3; 10]);
    // Write it as an ImageFolder (with a corrupt file and a non-image) and read it back.
    let tmp = tempfile::tempdir().unwrap();
    for i in 0..small.len() {
        let dir = tmp.path().join(&small.classes[small.labels[i]]);
        std::fs::create_dir_all(&dir).unwrap();
        image::GrayImage::from_raw(28, 28, small.image(i).to_vec())
            .unwrap()
            .save(dir.join(format!("{i}.png")))
            .unwrap();
    }
    std::fs::write(tmp.path().join("3/broken.png"), b"\x89PNG garbage").unwrap();
    std::fs::write(tmp.path().join("3/notes.txt"), b"not an image").unwrap();
    let (read, failed) = ImageSet::from_folder(tmp.path(), 1, 28, None).unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].0.ends_with("broken.png"));
    assert_eq!(read.len(), 30);
    assert_eq!(read.class_counts(), vec![3; 10]);
    // Resized and expanded to RGB for a bigger 3-channel model.
    let (rgb, _) = ImageSet::from_folder(tmp.path(), 3, 40, None).unwrap();
    assert_eq!((rgb.channels, rgb.size), (3, [40, 40]));
    // A seeded split keeps every class on both sides.
    let (a, b, _) = ImageSet::folder_splits(tmp.path(), 1, 28, 1.0 / 3.0, 7).unwrap();
    assert_eq!(
        (a.class_counts(), b.class_counts()),
        (vec![2; 10], vec![1; 10])
    );
    // Classes 5–9 become a new 5-class problem.
    let upper = small.with_classes(&[5, 6, 7, 8, 9]);
    assert_eq!(upper.classes, ["5", "6", "7", "8", "9"]);
    assert_eq!(upper.class_counts(), vec![3; 5]);
}

#[test]
fn augmentation_stays_in_bounds_and_none_is_the_identity() {
    let _turn = exclusive();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    for _ in 0..200 {
        let (top, left, h, w) = crop_box(28, 40, &Augment::paper(), &mut rng);
        assert!(top >= 0.0 && left >= 0.0 && top + h <= 28.0 && left + w <= 40.0);
        let area = h * w / (28.0 * 40.0);
        assert!((0.05..=1.0).contains(&area), "{area}");
    }
    let px: Vec<u8> = (0..28 * 28).map(|i| (i % 251) as u8).collect();
    let x = augment(
        &px,
        [28, 28],
        1,
        28,
        &Augment::none(),
        &[0.5],
        &[0.25],
        &mut rng,
    );
    for (v, p) in x.iter().zip(&px) {
        assert!((v - (*p as f32 / 255.0 - 0.5) / 0.25).abs() < 1e-5);
    }
    // A flip mirrors each row.
    let flip = Augment {
        flip: true,
        ..Augment::none()
    };
    let flipped = (0..20)
        .map(|_| augment(&px, [28, 28], 1, 28, &flip, &[0.0], &[1.0], &mut rng))
        .find(|y| (y[0] - x[0] * 0.25 - 0.5).abs() > 1e-6)
        .expect("some draw flips");
    assert!((flipped[0] * 255.0 - px[27] as f32).abs() < 1e-3);
    // Every interpolation reproduces an image at its own size, and agrees on a smooth ramp
    // resampled; nearest picks source pixels, the others blend.
    use inception::train::augment::{Interpolation, resample};
    let ramp: Vec<u8> = (0..16 * 16).map(|i| ((i % 16) * 16) as u8).collect();
    let whole = (0.0, 0.0, 16.0, 16.0);
    for mode in [
        Interpolation::Nearest,
        Interpolation::Bilinear,
        Interpolation::Bicubic,
    ] {
        let same = resample(&ramp, [16, 16], 1, whole, 16, false, mode);
        assert!(
            same.iter()
                .zip(&ramp)
                .all(|(a, &b)| (a - b as f32).abs() < 1e-3),
            "{mode:?}"
        );
        let up = resample(&ramp, [16, 16], 1, whole, 32, false, mode);
        // Output column 9 samples x = 4.25: between source columns 4 and 5 (64 and 80).
        let v = up[9];
        match mode {
            Interpolation::Nearest => assert_eq!(v, 64.0),
            _ => assert!((v - 68.0).abs() < 0.5, "{mode:?}: {v}"),
        }
    }
    assert!(Augment::paper().random_interpolation && !Augment::digits().random_interpolation);
}

#[test]
fn label_smoothing_matches_the_formula() {
    let _turn = exclusive();
    let logits = [[2.0f32, 0.5, -1.0], [0.1, 0.2, 0.3]];
    let targets = [0usize, 2];
    let eps = 0.1f32;
    let t = Tensor::<2>::from_data(TensorData::new(logits.concat(), [2, 3]), &Device::default());
    let got = values(cross_entropy(t, &targets, eps))[0];
    let mut want = 0.0f64;
    for (row, &y) in logits.iter().zip(&targets) {
        let lse = row.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln();
        for (k, &v) in row.iter().enumerate() {
            let q = eps as f64 / 3.0 + if k == y { 1.0 - eps as f64 } else { 0.0 };
            want -= q * (v as f64 - lse);
        }
    }
    want /= 2.0;
    assert!((got as f64 - want).abs() < 1e-6, "{got} vs {want}");
}

#[test]
fn schedules() {
    let _turn = exclusive();
    let s = |decay, warmup| Schedule {
        lr: 0.1,
        decay,
        warmup_epochs: warmup,
        epochs: 10.0,
    };
    let paper = s(
        Decay::Step {
            every: 8.0,
            gamma: 0.96,
        },
        0.0,
    );
    assert_eq!(paper.lr_at(0.0), 0.1);
    assert!((paper.lr_at(16.5) - 0.1 * 0.96 * 0.96).abs() < 1e-12);
    let v3 = s(
        Decay::Step {
            every: 2.0,
            gamma: 0.94,
        },
        0.0,
    );
    assert!((v3.lr_at(5.0) - 0.1 * 0.94 * 0.94).abs() < 1e-12);
    let cos = s(Decay::Cosine { min_factor: 0.0 }, 2.0);
    assert!((cos.lr_at(0.0) - 0.01).abs() < 1e-12); // warm-up starts at lr / 10
    assert!((cos.lr_at(1.0) - 0.055).abs() < 1e-12);
    assert!((cos.lr_at(2.0) - 0.1).abs() < 1e-12);
    assert!((cos.lr_at(6.0) - 0.05).abs() < 1e-12); // half-way down
    assert!(cos.lr_at(10.0).abs() < 1e-12);
    assert_eq!(s(Decay::Constant, 0.0).lr_at(9.0), 0.1);
}

/// `y = W x + b` with `x = [1, 2, 3]`; the loss `a·y` has constant gradients
/// `dW[o][i] = a[o] x[i]`, `db[o] = a[o]`, so each optimizer's trajectory can be computed here.
fn tiny() -> (Network, Tensor<4>, [f32; 2]) {
    let device = Device::default().autodiff();
    let mut g = GraphBuilder::new("tiny");
    let x = g.input([3, 1, 1]);
    let f = g.flatten("flatten", x);
    let y = g.dense("fc", f, 2, true);
    g.output("logits", y);
    let net = Network::new(g.finish().unwrap(), &device);
    let x = Tensor::<4>::from_data(
        TensorData::new(vec![1.0f32, 2.0, 3.0], [1, 3, 1, 1]),
        &device,
    );
    (net, x, [0.5, -2.0])
}

fn params(net: &Network) -> Vec<f64> {
    let sd = weights::state_dict(&net.valid());
    let mut v: Vec<f64> = sd
        .get("fc.weight")
        .unwrap()
        .data
        .iter()
        .map(|&x| x as f64)
        .collect();
    v.extend(sd.get("fc.bias").unwrap().data.iter().map(|&x| x as f64));
    v
}

fn run_optimizer(kind: OptimizerKind, wd: f64, lr: f64, steps: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut net, x, a) = tiny();
    let start = params(&net);
    let (train, _) = ImageSet::digits().unwrap();
    let mut cfg = TrainConfig::recipe(
        Recipe::Digits,
        ModelConfig::new(Arch::InceptionMini),
        &train,
    );
    cfg.optimizer = kind;
    cfg.weight_decay = wd;
    let mut optim = build_optimizer(&cfg);
    let av = Tensor::<2>::from_data(TensorData::new(a.to_vec(), [1, 2]), &x.device());
    for _ in 0..steps {
        let loss = (net.forward(x.clone()).unwrap().logits() * av.clone()).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(lr, net, grads);
    }
    (start, params(&net))
}

fn expected_grads() -> Vec<f64> {
    let (x, a) = ([1.0, 2.0, 3.0], [0.5, -2.0]);
    let mut g: Vec<f64> = a
        .iter()
        .flat_map(|ao| x.iter().map(move |xi| ao * xi))
        .collect();
    g.extend(a);
    g
}

fn assert_traj(got: &[f64], want: &[f64], what: &str) {
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() < 1e-5 * w.abs().max(1.0),
            "{what}: {got:?} vs {want:?}"
        );
    }
}

#[test]
fn sgd_momentum_and_nesterov_follow_pytorch() {
    let _turn = exclusive();
    let (lr, mu, wd, steps) = (0.1, 0.9, 0.01, 4);
    for nesterov in [false, true] {
        let kind = OptimizerKind::Sgd {
            momentum: mu,
            nesterov,
        };
        let (start, got) = run_optimizer(kind, wd, lr, steps);
        let want: Vec<f64> = start
            .iter()
            .zip(expected_grads())
            .map(|(&p0, g0)| {
                // torch.optim.SGD: g = grad + wd p; buf = g (first) or mu buf + g;
                // d = g + mu buf (nesterov) or buf; p -= lr d.
                let (mut p, mut buf) = (p0, 0.0);
                for t in 0..steps {
                    let g = g0 + wd * p;
                    buf = if t == 0 { g } else { mu * buf + g };
                    p -= lr * if nesterov { g + mu * buf } else { buf };
                }
                p
            })
            .collect();
        assert_traj(&got, &want, if nesterov { "nesterov" } else { "sgd" });
    }
}

#[test]
fn rmsprop_follows_pytorch() {
    let _turn = exclusive();
    let (lr, alpha, eps, mu, wd, steps) = (0.01, 0.9, 1.0, 0.9, 1e-3, 4);
    let kind = OptimizerKind::RmsProp {
        alpha: alpha as f32,
        eps: eps as f32,
        momentum: mu as f32,
    };
    let (start, got) = run_optimizer(kind, wd, lr, steps);
    let want: Vec<f64> = start
        .iter()
        .zip(expected_grads())
        .map(|(&p0, g0)| {
            // torch.optim.RMSprop: v = alpha v + (1 - alpha) g²; buf = mu buf + g / (sqrt(v) + eps).
            let (mut p, mut v, mut buf) = (p0, 0.0, 0.0);
            for _ in 0..steps {
                let g = g0 + wd * p;
                v = alpha * v + (1.0 - alpha) * g * g;
                buf = mu * buf + g / (v.sqrt() + eps);
                p -= lr * buf;
            }
            p
        })
        .collect();
    assert_traj(&got, &want, "rmsprop");
}

/// Two dense layers (a 48x1024 weight: more values than one parallel chunk of the update)
/// and a batch whose gradients change from step to step.
fn wide() -> (Network, Tensor<4>) {
    let device = Device::default().autodiff();
    let mut g = GraphBuilder::new("wide");
    let x = g.input([48, 1, 1]);
    let f = g.flatten("flatten", x);
    let h = g.dense("fc1", f, 1024, true);
    let h = g.relu("relu", h);
    let y = g.dense("fc2", h, 3, true);
    g.output("logits", y);
    let net = Network::new(g.finish().unwrap(), &device);
    let x: Vec<f32> = (0..4 * 48)
        .map(|i| ((i * 37) % 23) as f32 / 11.0 - 1.0)
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(x, [4, 48, 1, 1]), &device);
    (net, x)
}

/// Steps `steps` (a range of step numbers: the input is scaled by each one's) of the
/// squared-output loss.
fn wide_steps(
    mut net: Network,
    x: &Tensor<4>,
    optim: &mut inception::burn::optim::ModuleOptimizer,
    steps: std::ops::Range<usize>,
) -> Network {
    for t in steps {
        let out = net
            .forward(x.clone().mul_scalar(1.0 + t as f32))
            .unwrap()
            .logits();
        let loss = (out.clone() * out).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(0.01, net, grads);
    }
    net
}

fn all_params(net: &Network) -> Vec<(String, Vec<f32>)> {
    tensors(&weights::state_dict(&net.valid()))
}

/// Every parameter of `got` bit for bit that of `want` (the first difference reported).
fn assert_same(got: &Network, want: &Network, what: &str) {
    for ((name, g), (_, w)) in all_params(got).iter().zip(all_params(want)) {
        assert_eq!(g.len(), w.len());
        if let Some(i) = (0..g.len()).find(|&i| g[i].to_bits() != w[i].to_bits()) {
            let worst = g
                .iter()
                .zip(&w)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            panic!(
                "{what}: {name}[{i}] = {} vs {} (largest difference {worst})",
                g[i], w[i]
            );
        }
    }
}

/// SGD and RMSprop with momentum update each parameter in one pass: value for value what
/// Burn's `Sgd` and `RmsProp` compute (the same f32 operations in the same order), from a
/// fresh state and from a state Burn's optimizer saved in a checkpoint; a parameter still
/// shared elsewhere is copied, not overwritten.
#[test]
fn one_pass_updates_are_burns_optimizers_bit_for_bit() {
    use inception::burn::optim::{
        RmsPropConfig, SgdConfig, decay::WeightDecayConfig, momentum::MomentumConfig,
    };
    let _turn = exclusive();
    let (train, _) = ImageSet::digits().unwrap();
    for (name, wd) in [
        ("sgd", 0.0),
        ("nesterov", 0.0),
        ("sgd", 1e-2),
        ("rmsprop", 0.0),
        ("rmsprop", 1e-3),
    ] {
        let kind = OptimizerKind::parse(name).unwrap();
        let decay = (wd > 0.0).then(|| WeightDecayConfig::new(wd as f32));
        let burns = || match &kind {
            OptimizerKind::Sgd { momentum, nesterov } => SgdConfig::new()
                .with_momentum(Some(
                    MomentumConfig::new()
                        .with_momentum(*momentum)
                        .with_dampening(0.0)
                        .with_nesterov(*nesterov),
                ))
                .with_weight_decay(decay.clone())
                .init(),
            OptimizerKind::RmsProp {
                alpha,
                eps,
                momentum,
            } => RmsPropConfig::new()
                .with_alpha(*alpha)
                .with_epsilon(*eps)
                .with_momentum(*momentum)
                .with_weight_decay(decay.clone())
                .init(),
            OptimizerKind::AdamW { .. } => unreachable!(),
        };
        let mut cfg = TrainConfig::recipe(
            Recipe::Digits,
            ModelConfig::new(Arch::InceptionMini),
            &train,
        );
        cfg.optimizer = kind.clone();
        cfg.weight_decay = wd;
        let what = format!("{name}, weight decay {wd}");

        let (net, x) = wide();
        let mut burn = burns();
        let want = wide_steps(net.clone(), &x, &mut burn, 0..4);
        let mut ours = build_optimizer(&cfg);
        // The first step with the start still held (shared buffers), then owned ones.
        let once = wide_steps(net.clone(), &x, &mut ours, 0..1);
        let got = wide_steps(once, &x, &mut ours, 1..4);
        assert_same(&got, &want, &what);
        assert_ne!(
            all_params(&got),
            all_params(&net),
            "{what}: the start moved"
        );

        // Burn's state, saved after two steps, resumed by ours.
        let mut burn = burns();
        let half = wide_steps(net.clone(), &x, &mut burn, 0..2);
        let bytes = burn.into_bytes().unwrap();
        let mut resumed = build_optimizer(&cfg).from_bytes(bytes).unwrap();
        let got = wide_steps(half, &x, &mut resumed, 2..4);
        assert_same(&got, &want, &format!("{what}, resumed"));
    }
}

#[test]
fn adamw_follows_pytorch() {
    let _turn = exclusive();
    let (lr, b1, b2, eps, wd, steps) = (0.01, 0.9, 0.999, 1e-8, 0.1, 4);
    let kind = OptimizerKind::AdamW {
        beta1: b1 as f32,
        beta2: b2 as f32,
        eps: eps as f32,
    };
    let (start, got) = run_optimizer(kind, wd, lr, steps);
    let want: Vec<f64> = start
        .iter()
        .zip(expected_grads())
        .map(|(&p0, g)| {
            // torch.optim.AdamW: p *= 1 - lr wd; then the bias-corrected Adam step.
            let (mut p, mut m, mut v) = (p0, 0.0, 0.0);
            for t in 1..=steps {
                p *= 1.0 - lr * wd;
                m = b1 * m + (1.0 - b1) * g;
                v = b2 * v + (1.0 - b2) * g * g;
                let mh = m / (1.0 - b1.powi(t as i32));
                let vh = v / (1.0 - b2.powi(t as i32));
                p -= lr * mh / (vh.sqrt() + eps);
            }
            p
        })
        .collect();
    assert_traj(&got, &want, "adamw");
}

#[test]
fn global_norm_clipping_scales_all_gradients_together() {
    let _turn = exclusive();
    let (net, x, a) = tiny();
    let av = Tensor::<2>::from_data(TensorData::new(a.to_vec(), [1, 2]), &x.device());
    let loss = (net.forward(x).unwrap().logits() * av).sum();
    let mut grads = GradientsParams::from_grads(loss.backward(), &net);
    let g = expected_grads();
    let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
    let before = clip_global_norm(&net, &mut grads, 2.0);
    assert!((before - norm).abs() < 1e-4, "{before} vs {norm}");
    // Norm after clipping: measured by a second call (which then changes nothing).
    let after = clip_global_norm(&net, &mut grads, 2.0);
    assert!((after - 2.0).abs() < 1e-4, "{after}");
}

#[test]
fn aux_losses_reach_the_lower_layers_and_are_gone_at_inference() {
    let _turn = exclusive();
    let device = Device::default().autodiff();
    device.seed(1);
    let cfg = ModelConfig::new(Arch::InceptionMini).with_aux_logits(true);
    let net = cfg.init(&device).unwrap();
    let (_, test) = ImageSet::digits().unwrap();
    let batch = test.take_per_class(1, 0);
    let tc = TrainConfig::recipe(Recipe::Digits, cfg.clone(), &batch);
    let x = tc.preset();
    let imgs: Vec<_> = (0..batch.len())
        .map(|i| inception::train::evaluation::to_rgb(&batch, i))
        .collect();
    let x = x.batch(&imgs, &device);
    let conv1_grad = |aux_weight: f32| {
        let out = net.forward(x.clone()).unwrap();
        assert_eq!(out.aux.len(), 1);
        let (total, _) = objective(&out, &batch.labels, 0.0, aux_weight);
        let gp = GradientsParams::from_grads(total.backward(), &net);
        // The network's first layer: stem conv1, the farthest from every head.
        let first = net
            .graph()
            .nodes()
            .iter()
            .position(|n| matches!(n.op, inception::graph::Op::Conv2d(_)))
            .unwrap();
        let Some(inception::nn::LayerModule::Conv(conv)) = net.layer(first) else {
            panic!("conv1 is a convolution")
        };
        values(gp.get::<4>(conv.weight.id).expect("conv1 has a gradient"))
    };
    let with = conv1_grad(0.3);
    let without = conv1_grad(0.0);
    let diff = with
        .iter()
        .zip(&without)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        diff > 1e-6,
        "aux loss did not change conv1's gradient ({diff})"
    );
    // Inference computes the main head only; the evaluation view has the same main output.
    let eval = net.valid();
    let plain = tc.preset().batch(&imgs, &Device::default());
    assert_eq!(eval.infer(plain.clone()).unwrap().dims(), vec![10, 10]);
    let out = eval.forward(plain.clone()).unwrap();
    assert!(
        (values(out.logits())
            .iter()
            .zip(values(eval.infer(plain).unwrap().flat())))
        .all(|(a, b)| *a == b)
    );
    // A model exported for inference without aux heads has no aux outputs at all.
    let sd = weights::export(&eval, &cfg);
    let inference =
        weights::load_model(&cfg.clone().with_aux_logits(false), &sd, &Device::default())
            .unwrap()
            .0;
    assert_eq!(inference.graph().aux_outputs().count(), 0);
    assert!(
        inference
            .forward(tc.preset().batch(&imgs, &Device::default()))
            .unwrap()
            .aux
            .is_empty()
    );
}

#[test]
fn a_short_run_learns_the_digits_and_saves_a_loadable_model() {
    let _turn = exclusive();
    let (train, test) = ImageSet::digits().unwrap();
    let train = train.take_per_class(150, 0);
    let test = test.take_per_class(40, 0);
    let model = ModelConfig::new(Arch::InceptionMini).with_aux_logits(true);
    let cfg = TrainConfig::recipe(Recipe::Digits, model, &train).with_epochs(2);
    let mut trainer = Trainer::new(cfg.clone(), &Device::default()).unwrap();
    let mut steps = 0;
    trainer
        .fit(&train, &test, &mut |e| {
            steps += matches!(e, inception::train::Event::Step { .. }) as usize;
            true
        })
        .unwrap();
    assert_eq!(steps, 2 * (1500 / 64));
    let h = &trainer.history;
    assert_eq!(h.len(), 2);
    assert!(h[1].train_loss < h[0].train_loss, "{h:?}");
    assert!(h[1].val_top1 > 0.85, "{h:?}");
    // The saved model classifies like the trained network.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("model.safetensors");
    save_model(&path, &trainer.network, &cfg, &train.classes, h).unwrap();
    let clf = inception::predict::Classifier::load(
        path.to_str().unwrap(),
        &inception::predict::LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(clf.labels().names(), train.classes.as_slice());
    assert_eq!(clf.preset(), &cfg.preset());
    let direct = evaluate(&trainer.inference_network(), &test, &cfg.preset(), 100).unwrap();
    let loaded = evaluate(clf.network(), &test, clf.preset(), 100).unwrap();
    assert_eq!(direct.confusion, loaded.confusion);
    assert!((direct.top1 - h[1].val_top1).abs() < 1e-12);
}

#[test]
fn transfer_a_frozen_digit_backbone_to_new_digits() {
    let _turn = exclusive();
    let (train, test) = ImageSet::digits().unwrap();
    let (lower, upper) = ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9]);
    // A backbone trained on digits 0–4 only.
    let base = ModelConfig::new(Arch::InceptionMini)
        .with_classes(5)
        .with_aux_logits(true);
    let source = train.with_classes(&lower);
    let mut cfg = TrainConfig::recipe(Recipe::Digits, base, &source).with_epochs(1);
    // Smoothed targets keep the features less specific to the five source classes.
    cfg.label_smoothing = 0.1;
    let mut trainer = Trainer::new(cfg.clone(), &Device::default()).unwrap();
    // (Validation during training on a small subset; the final numbers use the whole test set.)
    trainer
        .fit(
            &source,
            &test.with_classes(&lower).take_per_class(10, 0),
            &mut |_| true,
        )
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("lower.safetensors");
    save_model(
        &path,
        &trainer.network,
        &cfg,
        &source.classes,
        &trainer.history,
    )
    .unwrap();

    // Frozen, under a new head for 5–9, fine-tuned on 50 images per class.
    let ft = inception::train::finetune::prepare(
        path.to_str().unwrap(),
        &inception::predict::LoadOptions::default(),
        5,
        &inception::train::Freeze::Backbone,
        0,
        &Device::default(),
    )
    .unwrap();
    assert_eq!(ft.preset, cfg.preset());
    let frozen = |net: &Network| {
        let sd = weights::state_dict(&net.valid());
        sd.iter()
            .filter(|(n, _)| !n.starts_with("fc."))
            .map(|(n, t)| (n.to_string(), t.data.clone()))
            .collect::<Vec<_>>()
    };
    let before = frozen(&ft.network);
    let head_before = weights::state_dict(&ft.network.valid())
        .get("fc.weight")
        .unwrap()
        .data
        .clone();
    let few = train.with_classes(&upper).take_per_class(50, 3);
    let target_test = test.with_classes(&upper);
    let mut tune = TrainConfig::recipe(Recipe::Digits, ft.model.clone(), &few)
        .with_preset(ft.preset.clone())
        .with_epochs(60);
    // A linear probe: clean inputs (the features are fixed), a high rate, many short epochs.
    tune.batch_size = 25;
    tune.schedule.lr = 0.3;
    tune.schedule.warmup_epochs = 0.0;
    tune.augment = Augment::none();
    let mut trainer = Trainer::with_network(tune, ft.network).unwrap();
    trainer
        .fit(&few, &target_test.take_per_class(10, 0), &mut |_| true)
        .unwrap();
    let after = frozen(&trainer.network);
    assert_eq!(before.len(), after.len());
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        assert!(a == b, "frozen tensor {name} changed");
    }
    let head_after = weights::state_dict(&trainer.network.valid())
        .get("fc.weight")
        .unwrap()
        .data
        .clone();
    assert_ne!(head_before, head_after, "the new head did not train");
    let eval = evaluate(&trainer.inference_network(), &target_test, &ft.preset, 200).unwrap();
    eprintln!(
        "transfer 0–4 → 5–9 (50 per class): {:.2}%",
        100.0 * eval.top1
    );
    assert!(eval.top1 >= 0.90, "{:.4}", eval.top1);
}

#[test]
fn ema_follows_tensorflows_moving_average_and_is_what_is_evaluated() {
    let _turn = exclusive();
    let (mut net, x, a) = tiny();
    let mut ema = Ema::new(&net, 0.5);
    let mut want = params(&net);
    let (train, _) = ImageSet::digits().unwrap();
    let mut cfg = TrainConfig::recipe(
        Recipe::Digits,
        ModelConfig::new(Arch::InceptionMini),
        &train,
    );
    cfg.optimizer = OptimizerKind::Sgd {
        momentum: 0.0,
        nesterov: false,
    };
    cfg.weight_decay = 0.0;
    let mut optim = build_optimizer(&cfg);
    let av = Tensor::<2>::from_data(TensorData::new(a.to_vec(), [1, 2]), &x.device());
    for n in 0..12u64 {
        let loss = (net.forward(x.clone()).unwrap().logits() * av.clone()).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(0.1, net, grads);
        ema.update(&net);
        // TensorFlow's num_updates rule: min(decay, (1 + n) / (10 + n)).
        let d = 0.5f64.min((1.0 + n as f64) / (10.0 + n as f64));
        for (e, p) in want.iter_mut().zip(params(&net)) {
            *e = d * *e + (1.0 - d) * p;
        }
    }
    assert_eq!(ema.updates, 12);
    let sd = ema.state_dict();
    let mut got: Vec<f64> = sd
        .get("fc.weight")
        .unwrap()
        .data
        .iter()
        .map(|&v| v as f64)
        .collect();
    got.extend(sd.get("fc.bias").unwrap().data.iter().map(|&v| v as f64));
    assert_traj(&got, &want, "ema");
    // The trainer evaluates (and saves) the average, not the last weights.
    let (train, test) = ImageSet::digits().unwrap();
    let small = train.take_per_class(4, 0);
    let mut cfg = TrainConfig::recipe(
        Recipe::Digits,
        ModelConfig::new(Arch::InceptionMini),
        &small,
    )
    .with_epochs(1);
    cfg.batch_size = 8;
    cfg.ema_decay = Some(0.9);
    let mut trainer = Trainer::new(cfg, &Device::default()).unwrap();
    trainer
        .fit(&small, &test.take_per_class(2, 0), &mut |_| true)
        .unwrap();
    let ema = trainer.ema.as_ref().unwrap();
    assert_eq!(ema.updates, 5);
    let evaluated = weights::state_dict(&trainer.inference_network());
    let averaged = ema.state_dict();
    let last = weights::state_dict(&trainer.network.valid());
    let name = "fc.weight";
    assert_eq!(
        evaluated.get(name).unwrap().data,
        averaged.get(name).unwrap().data
    );
    assert_ne!(
        evaluated.get(name).unwrap().data,
        last.get(name).unwrap().data
    );
}

/// Every tensor of a state dict, by name.
fn tensors(sd: &weights::StateDict) -> Vec<(String, Vec<f32>)> {
    sd.iter()
        .map(|(n, t)| (n.to_string(), t.data.clone()))
        .collect()
}

#[test]
fn resume_from_a_checkpoint_gives_the_weights_of_an_uninterrupted_run() {
    let _turn = exclusive();
    let (train, test) = ImageSet::digits().unwrap();
    let train = train.take_per_class(20, 0);
    let val = test.take_per_class(3, 0);
    let model = ModelConfig::new(Arch::InceptionMini).with_aux_logits(true);
    let mut cfg = TrainConfig::recipe(Recipe::Digits, model, &train).with_epochs(3);
    cfg.batch_size = 25;
    cfg.ema_decay = Some(0.9);
    cfg.clip_norm = Some(5.0);
    cfg.seed = 7;
    // Uninterrupted.
    let mut whole = Trainer::new(cfg.clone(), &Device::default()).unwrap();
    whole.fit(&train, &val, &mut |_| true).unwrap();
    // Stopped after the first epoch and again half-way through the second (as Ctrl-C does),
    // then continued from the checkpoint in a new trainer.
    let mut first = Trainer::new(cfg.clone(), &Device::default()).unwrap();
    first
        .fit(&train, &val, &mut |e| {
            !matches!(e, inception::train::Event::Epoch(_))
        })
        .unwrap();
    assert_eq!(first.epoch, 1);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("checkpoint.safetensors");
    save_checkpoint(&path, &first, &train.classes).unwrap();
    let stopped = first
        .train_epoch(&train, &val, &mut |e| {
            !matches!(e, inception::train::Event::Step { batch: 4, .. })
        })
        .unwrap();
    assert!(
        stopped.is_none() && first.epoch == 1,
        "a stopped epoch is not counted"
    );
    drop(first);
    let (mut resumed, classes) = load_checkpoint(&path, &Device::default()).unwrap();
    assert_eq!(classes, train.classes);
    assert_eq!((resumed.epoch, resumed.step), (1, 8));
    assert_eq!(resumed.config, cfg);
    let saved_average = resumed.ema.as_ref().unwrap().state_dict();
    resumed.fit(&train, &val, &mut |_| true).unwrap();
    assert_eq!((resumed.epoch, resumed.step), (whole.epoch, whole.step));
    // Bit for bit: weights, BatchNorm statistics, the moving average, the history's numbers.
    let a = tensors(&weights::state_dict(&whole.network.valid()));
    let b = tensors(&weights::state_dict(&resumed.network.valid()));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs after resuming");
    }
    let sorted = |mut v: Vec<(String, Vec<f32>)>| {
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(
        sorted(tensors(&whole.ema.as_ref().unwrap().state_dict())),
        sorted(tensors(&resumed.ema.as_ref().unwrap().state_dict()))
    );
    let strip = |h: &[inception::train::EpochStats]| {
        h.iter()
            .map(|s| {
                (
                    s.epoch,
                    s.lr,
                    s.train_loss,
                    s.train_top1,
                    s.val_loss,
                    s.val_top1,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&whole.history), strip(&resumed.history));
    // A checkpoint also reads as ordinary weights: the model the run saves (the average).
    let read = weights::read(&path).unwrap();
    assert_eq!(read.len(), saved_average.len());
    assert_eq!(
        read.get("fc.weight").unwrap().data,
        saved_average.get("fc.weight").unwrap().data
    );
    let clf = inception::predict::Classifier::load(
        path.to_str().unwrap(),
        &inception::predict::LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(clf.labels().names(), train.classes.as_slice());
}

#[test]
fn a_checkpoint_that_is_not_one_is_a_clear_error() {
    let _turn = exclusive();
    let tmp = tempfile::tempdir().unwrap();
    let (train, _) = ImageSet::digits().unwrap();
    let small = train.take_per_class(2, 0);
    let cfg = TrainConfig::recipe(
        Recipe::Digits,
        ModelConfig::new(Arch::InceptionMini),
        &small,
    );
    let trainer = Trainer::new(cfg.clone(), &Device::default()).unwrap();
    // A plain model file has no optimizer state.
    let model = tmp.path().join("model.safetensors");
    save_model(&model, &trainer.network, &cfg, &small.classes, &[]).unwrap();
    let err = load_checkpoint(&model, &Device::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("not a training checkpoint"),
        "{err}"
    );
    let junk = tmp.path().join("junk.safetensors");
    std::fs::write(&junk, b"\x10\0\0\0\0\0\0\0{\"a\":").unwrap();
    let err = load_checkpoint(&junk, &Device::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("junk.safetensors"), "{err}");
}

#[test]
fn data_parallel_steps_are_the_whole_batch_steps() {
    let _turn = exclusive();
    // A network without BatchNorm or dropout: then splitting a batch over devices changes
    // nothing but the order of the sums, and the update must be the whole batch's.
    let mut g = GraphBuilder::new("small");
    let x = g.input([1, 28, 28]);
    let c = g.conv2d(
        "conv",
        x,
        6,
        [3, 3],
        [2, 2],
        inception::graph::Padding::Valid,
        true,
    );
    let r = g.relu("relu", c);
    let p = g.global_avg_pool("pool", r);
    let f = g.flatten("flatten", p);
    let y = g.dense("fc", f, 10, true);
    g.output("logits", y);
    let graph = g.finish().unwrap();
    let (train, test) = ImageSet::digits().unwrap();
    let train = train.take_per_class(4, 0);
    let val = test.take_per_class(1, 0);
    let mut cfg = TrainConfig::recipe(
        Recipe::Digits,
        ModelConfig::new(Arch::InceptionMini),
        &train,
    )
    .with_epochs(2);
    cfg.batch_size = 10; // split 3 + 3 + 4 over three devices
    cfg.aux_weight = 0.0;
    cfg.clip_norm = Some(1.0);
    let device = Device::default().autodiff();
    device.seed(3);
    let start = Network::new(graph, &device);
    let run = |devices: &str| {
        let devices = inception::device::parse_devices(devices).unwrap();
        let mut t = Trainer::with_network(cfg.clone(), start.clone())
            .unwrap()
            .with_devices(&devices);
        assert_eq!(t.devices().len(), devices.len());
        t.fit(&train, &val, &mut |_| true).unwrap();
        (tensors(&weights::state_dict(&t.network.valid())), t.history)
    };
    let (one, h1) = run("cpu");
    let (three, h3) = run("cpu,cpu,cpu");
    for ((name, a), (_, b)) in one.iter().zip(&three) {
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() <= 1e-5 * x.abs().max(1e-2),
                "{name}: {x} vs {y}"
            );
        }
    }
    assert_ne!(
        tensors(&weights::state_dict(&start.valid())),
        one,
        "nothing trained"
    );
    for (a, b) in h1.iter().zip(&h3) {
        assert!((a.train_loss - b.train_loss).abs() < 1e-5, "{a:?} vs {b:?}");
        assert_eq!(a.train_top1, b.train_top1);
    }
    // With BatchNorm, aux heads and dropout the replicas run too (each shard normalised by
    // its own statistics, as DistributedDataParallel does).
    let model = ModelConfig::new(Arch::InceptionMini).with_aux_logits(true);
    let mut cfg = TrainConfig::recipe(Recipe::Digits, model, &train).with_epochs(1);
    cfg.batch_size = 20;
    let mut t = Trainer::new(cfg, &Device::default())
        .unwrap()
        .with_devices(&inception::device::parse_devices("cpu,cpu").unwrap());
    t.fit(&train, &val, &mut |_| true).unwrap();
    assert!(t.history[0].train_loss.is_finite(), "{:?}", t.history);
    let err = inception::device::parse_devices("cuda:x")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("cuda:x") && err.contains("cpu"), "{err}");
}

#[test]
fn the_full_googlenet_learns_upscaled_digits_in_one_epoch() {
    let _turn = exclusive();
    let (train, test) = ImageSet::digits().unwrap();
    let train = train.take_per_class(250, 0);
    let val = test.take_per_class(20, 0);
    // torchvision's GoogLeNet with both aux heads, the digits upscaled to 32x32.
    let model = ModelConfig::new(Arch::GoogLeNet)
        .with_aux_logits(true)
        .with_classes(10)
        .with_in_channels(1)
        .with_input_size(32);
    // Two seeds: a run that converges by luck on one would show here.
    for seed in [0, 1] {
        let mut cfg = TrainConfig::recipe(Recipe::Digits, model.clone(), &train).with_epochs(1);
        cfg.batch_size = 32;
        cfg.seed = seed;
        let mut trainer = Trainer::new(cfg, &Device::default()).unwrap();
        let mut losses = Vec::new();
        trainer
            .fit(&train, &val, &mut |e| {
                if let inception::train::Event::Step { loss, .. } = e {
                    losses.push(loss);
                }
                true
            })
            .unwrap();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (first, last) = (mean(&losses[..3]), mean(&losses[losses.len() - 3..]));
        let peak = losses.iter().cloned().fold(0.0, f64::max);
        let h = &trainer.history[0];
        eprintln!(
            "googlenet, one epoch of 2,500 digits, seed {seed}: loss {first:.3} -> {last:.3} (peak {peak:.3}), {h:?}"
        );
        // Stable: no step's loss far above the start (at 0.05 it spiked to 5–7 on every seed and
        // diverged on AVX2 machines). Measured here (AVX-512, seeds 0–3): peak ≤ 1.05 × start,
        // last ≤ 0.57 × start, validation 74.5–77%; the margins below hold for any summation order.
        assert!(peak < 1.5 * first, "the loss spiked: {losses:?}");
        assert!(last < 0.7 * first, "the loss did not fall: {losses:?}");
        // Chance is 10%.
        assert!(h.val_top1 > 0.5, "{h:?}");
    }
}

#[test]
fn every_tf_slim_layout_trains() {
    // A short smoke run per layout: a fixed batch of four small images in two classes, three
    // SGD steps. Every loss is finite, and every conv and dense kernel moved: the gradients
    // reach each layer through the separable stem, the residual scales and SAME padding.
    let _turn = exclusive();
    for (arch, size) in [
        (Arch::InceptionV1Slim, 64),
        (Arch::InceptionV2, 64),
        (Arch::InceptionV3Slim, 75),
        (Arch::InceptionV4, 75),
        (Arch::InceptionResNetV2, 75),
    ] {
        let model = ModelConfig::new(arch)
            .with_classes(2)
            .with_input_size(size)
            .with_dropout(0.0);
        let mut cfg = TrainConfig::recipe_with_normalization(
            Recipe::Digits,
            model.clone(),
            vec![0.5; 3],
            vec![0.5; 3],
        );
        cfg.seed = 7;
        let mut trainer = Trainer::new(cfg, &Device::default()).unwrap();
        let before = weights::export(&trainer.network.valid(), &model);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let labels = [0, 1, 0, 1];
        let data: Vec<f32> = (0..4 * 3 * size * size)
            .map(|_| rand::Rng::random::<f32>(&mut rng) * 2.0 - 1.0)
            .collect();
        for _ in 0..3 {
            let (loss, _) = trainer.step(data.clone(), &labels, 0.01).unwrap();
            assert!(loss.is_finite(), "{arch}: {loss}");
        }
        let after = weights::export(&trainer.network.valid(), &model);
        let kernels: Vec<&str> = before
            .iter()
            .filter(|(n, t)| n.ends_with(".weight") && t.shape.len() >= 2)
            .map(|(n, _)| n)
            .collect();
        assert!(kernels.len() > 50, "{arch}");
        for name in kernels {
            assert_ne!(
                before.get(name).unwrap().data,
                after.get(name).unwrap().data,
                "{arch}: {name} did not move"
            );
        }
    }
}
