//! Burn backend extensions: our convolution kernels under Flex and Autodiff give Burn's own
//! convolution's outputs and gradients (1e-4 relative), on random shapes, strides, paddings and
//! batch sizes 1 and odd.

use burn::backend::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use inception::ops::conv2d;

/// Largest difference relative to the larger magnitude of the reference.
fn rel_diff(got: TensorData, want: TensorData) -> f32 {
    let got = got.try_to_vec::<f32>().expect("f32");
    let want = want.try_to_vec::<f32>().expect("f32");
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    got.iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs() / scale)
        .fold(0.0, f32::max)
}

struct Case {
    batch: usize,
    cin: usize,
    hw: [usize; 2],
    cout: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [(usize, usize); 2],
    bias: bool,
}

fn cases() -> Vec<Case> {
    let c = |batch, cin, hw, cout, kernel, stride, padding, bias| Case {
        batch,
        cin,
        hw,
        cout,
        kernel,
        stride,
        padding,
        bias,
    };
    vec![
        // GoogLeNet's stem: 7x7 stride 2 over RGB, padding 3.
        c(1, 3, [23, 23], 8, [7, 7], [2, 2], [(3, 3), (3, 3)], false),
        // A 1x1 bottleneck (no im2col), odd batch.
        c(3, 16, [9, 9], 12, [1, 1], [1, 1], [(0, 0), (0, 0)], true),
        // 3x3 same padding.
        c(5, 6, [10, 7], 9, [3, 3], [1, 1], [(1, 1), (1, 1)], true),
        // Inception v3's factorised 1x7 and 7x1.
        c(2, 8, [8, 8], 6, [1, 7], [1, 1], [(0, 0), (3, 3)], false),
        c(2, 8, [8, 8], 6, [7, 1], [1, 1], [(3, 3), (0, 0)], false),
        // A valid 3x3 stride 2 reduction, and TensorFlow's asymmetric SAME padding.
        c(3, 4, [17, 17], 5, [3, 3], [2, 2], [(0, 0), (0, 0)], true),
        c(1, 4, [14, 14], 5, [3, 3], [2, 2], [(0, 1), (0, 1)], false),
        // A strided 1x1 (a dense layer's last map is 1x1 too).
        c(2, 5, [7, 7], 3, [1, 1], [2, 2], [(0, 0), (0, 0)], true),
        c(4, 7, [1, 1], 3, [1, 1], [1, 1], [(0, 0), (0, 0)], true),
    ]
}

/// Values in [-1, 1) from a seed, independent of Burn's global generator (which tests running in
/// parallel share).
fn random<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    let len = shape.iter().product::<usize>();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let values: Vec<f32> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// One forward and backward pass through `f`, returning the output and the gradients of the
/// input, the weight and the bias for the loss `sum(y * g)` with a fixed random `g`.
fn run(
    case: &Case,
    seed: u64,
    f: impl Fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) -> Tensor<4>,
) -> Vec<TensorData> {
    let device = Device::flex().autodiff();
    let [h, w] = case.hw;
    let [kh, kw] = case.kernel;
    let x = random([case.batch, case.cin, h, w], seed, &device).require_grad();
    let weight = random([case.cout, case.cin, kh, kw], seed + 1, &device).require_grad();
    let bias = case
        .bias
        .then(|| random::<1>([case.cout], seed + 2, &device).require_grad());
    let options = ConvOptions::new_with_padding(case.stride, case.padding, [1, 1], 1);
    let y = f(x.clone(), weight.clone(), bias.clone(), options);
    let g = random(y.dims(), seed + 3, &device);
    let grads = (y.clone() * g).sum().backward();
    let mut out = vec![
        y.into_data(),
        x.grad(&grads).expect("x gradient").into_data(),
        weight.grad(&grads).expect("weight gradient").into_data(),
    ];
    if let Some(b) = bias {
        out.push(b.grad(&grads).expect("bias gradient").into_data());
    }
    out
}

#[test]
fn the_convolution_extension_matches_burns_outputs_and_gradients() {
    for (i, case) in cases().iter().enumerate() {
        let ours = run(case, 10 * i as u64, conv2d);
        let burns = run(case, 10 * i as u64, burn::tensor::module::conv2d);
        for (what, (a, b)) in [
            "output",
            "input gradient",
            "weight gradient",
            "bias gradient",
        ]
        .iter()
        .zip(ours.into_iter().zip(burns))
        {
            let d = rel_diff(a, b);
            assert!(d < 1e-4, "case {i}: {what} differs by {d:e}");
        }
    }
}

#[test]
fn the_convolution_extension_runs_without_autodiff_and_untracked() {
    let device = Device::flex();
    let x = Tensor::<4>::random([2, 3, 9, 9], Distribution::Default, &device);
    let w = Tensor::<4>::random([4, 3, 3, 3], Distribution::Default, &device);
    let options = ConvOptions::new_with_padding([1, 1], [(1, 1), (1, 1)], [1, 1], 1);
    let ours = conv2d(x.clone(), w.clone(), None, options.clone());
    let burns = burn::tensor::module::conv2d(x.clone(), w.clone(), None, options.clone());
    assert!(rel_diff(ours.into_data(), burns.into_data()) < 1e-4);
    // On an autodiff device with nothing tracked, no backward step is recorded.
    let ad = device.autodiff();
    let y = conv2d(x.to_device(&ad), w.to_device(&ad), None, options);
    assert_eq!(y.dims(), [2, 4, 9, 9]);
}

#[test]
fn grouped_and_dilated_convolutions_fall_back_to_burns() {
    let device = Device::flex().autodiff();
    let x = Tensor::<4>::random([2, 4, 9, 9], Distribution::Default, &device).require_grad();
    let w = Tensor::<4>::random([4, 1, 3, 3], Distribution::Default, &device).require_grad();
    let options = ConvOptions::new_with_padding([1, 1], [(2, 2), (2, 2)], [2, 2], 4);
    let y = conv2d(x.clone(), w.clone(), None, options.clone());
    let want = burn::tensor::module::conv2d(x.clone(), w, None, options);
    assert!(rel_diff(y.clone().into_data(), want.into_data()) < 1e-6);
    let grads = y.sum().backward();
    assert!(x.grad(&grads).is_some());
}

/// Our batch normalisation and Burn's, forward (output, mean, variance) and backward (input,
/// γ and β gradients) for the loss `sum(y * g)`.
fn run_norm<const D: usize>(
    shape: [usize; D],
    seed: u64,
    f: impl Fn(Tensor<D>, Tensor<1>, Tensor<1>) -> (Tensor<D>, Tensor<1>, Tensor<1>),
) -> Vec<TensorData> {
    let device = Device::flex().autodiff();
    let c = shape[1];
    let x = random(shape, seed, &device)
        .mul_scalar(3.0)
        .add_scalar(0.5)
        .require_grad();
    let gamma = random([c], seed + 1, &device).require_grad();
    let beta = random([c], seed + 2, &device).require_grad();
    let (y, mean, var) = f(x.clone(), gamma.clone(), beta.clone());
    let g = random(shape, seed + 3, &device);
    let grads = (y.clone() * g).sum().backward();
    vec![
        y.into_data(),
        mean.into_data(),
        var.into_data(),
        x.grad(&grads).expect("x gradient").into_data(),
        gamma.grad(&grads).expect("gamma gradient").into_data(),
        beta.grad(&grads).expect("beta gradient").into_data(),
    ]
}

fn ours_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    inception::ops::batch_norm_train(x, gamma, beta, 1e-3, false)
}

fn burns_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    let r = burn::tensor::module::batch_norm_train(x, gamma, beta, 1e-3);
    (r.output, r.mean, r.variance)
}

fn ours_norm_relu<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    inception::ops::batch_norm_train(x, gamma, beta, 1e-3, true)
}

fn burns_norm_relu<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    let (y, mean, var) = burns_norm(x, gamma, beta);
    (burn::tensor::activation::relu(y), mean, var)
}

fn compare(i: usize, ours: Vec<TensorData>, burns: Vec<TensorData>) {
    let names = [
        "output",
        "mean",
        "variance",
        "x gradient",
        "γ gradient",
        "β gradient",
    ];
    for (what, (a, b)) in names.iter().zip(ours.into_iter().zip(burns)) {
        let d = rel_diff(a, b);
        assert!(d < 1e-4, "case {i}: {what} differs by {d:e}");
    }
}

#[test]
fn the_batch_norm_extension_matches_burns_statistics_and_gradients() {
    for (i, shape) in [[4, 3, 5, 6], [1, 5, 7, 3], [3, 2, 1, 1]]
        .into_iter()
        .enumerate()
    {
        let seed = 100 + 10 * i as u64;
        compare(
            i,
            run_norm(shape, seed, ours_norm),
            run_norm(shape, seed, burns_norm),
        );
    }
    // After a dense layer: [batch, features].
    compare(
        3,
        run_norm([5, 7], 200, ours_norm),
        run_norm([5, 7], 200, burns_norm),
    );
}

#[test]
fn batch_norm_with_the_relu_fused_in_matches_burns_batch_norm_then_relu() {
    for (i, shape) in [[4, 3, 5, 6], [1, 5, 7, 3], [3, 2, 1, 1]]
        .into_iter()
        .enumerate()
    {
        let seed = 300 + 10 * i as u64;
        compare(
            i,
            run_norm(shape, seed, ours_norm_relu),
            run_norm(shape, seed, burns_norm_relu),
        );
    }
    compare(
        3,
        run_norm([5, 7], 400, ours_norm_relu),
        run_norm([5, 7], 400, burns_norm_relu),
    );
}

#[test]
fn the_max_pool_extension_matches_burns_outputs_and_gradients() {
    use inception::graph::PoolSpec;
    let pool = |kernel, stride, padding, ceil_mode| PoolSpec {
        kernel,
        stride,
        padding,
        ceil_mode,
        count_include_pad: true,
    };
    let cases = [
        // GoogLeNet's reductions (ceil mode), an inception module's pool branch, TensorFlow's
        // asymmetric SAME padding, a 2x2 window.
        ([2, 3, 15, 15], pool([3, 3], [2, 2], [[0, 0], [0, 0]], true)),
        ([3, 2, 9, 8], pool([3, 3], [1, 1], [[1, 1], [1, 1]], false)),
        (
            [1, 4, 14, 14],
            pool([3, 3], [2, 2], [[0, 1], [0, 1]], false),
        ),
        ([2, 2, 7, 9], pool([2, 2], [2, 2], [[0, 0], [0, 0]], true)),
        // Rows wider than a vector register (stride 1 and 2), a stride the kernels only know at
        // run time, a one-row window.
        (
            [2, 3, 11, 40],
            pool([3, 3], [1, 1], [[1, 1], [1, 1]], false),
        ),
        ([1, 2, 12, 37], pool([3, 3], [2, 2], [[0, 0], [0, 0]], true)),
        ([1, 2, 10, 41], pool([3, 3], [3, 3], [[1, 1], [1, 1]], true)),
        ([2, 1, 6, 33], pool([1, 3], [1, 2], [[0, 0], [1, 1]], false)),
        // Output as large as the input, padded unevenly (the kernels' whole-plane path).
        ([2, 3, 7, 7], pool([3, 3], [1, 1], [[0, 2], [2, 0]], false)),
        ([1, 2, 5, 6], pool([5, 3], [1, 1], [[2, 2], [1, 1]], false)),
    ];
    // Half the values are 0 (as after a ReLU): ties decide where gradients go.
    compare_pools(
        &cases,
        300,
        |x| x.clamp_min(0.0),
        1e-6,
        |x, p, ours| {
            if ours {
                inception::ops::max_pool2d(x, p)
            } else {
                let options = burn::tensor::ops::MaxPoolOptions::new(p.kernel)
                    .with_stride(p.stride)
                    .with_padding_pairs([
                        (p.padding[0][0], p.padding[0][1]),
                        (p.padding[1][0], p.padding[1][1]),
                    ])
                    .with_ceil_mode(p.ceil_mode);
                burn::tensor::module::max_pool2d(x, options)
            }
        },
    );
}

/// Each case's output and input gradient (loss `sum(y * g)`) from our pooling (`pool(x, p,
/// true)`) and Burn's (`false`), within `tolerance` relative; inputs are `random` made by
/// `prepare`.
fn compare_pools(
    cases: &[([usize; 4], inception::graph::PoolSpec)],
    seed: u64,
    prepare: impl Fn(Tensor<4>) -> Tensor<4>,
    tolerance: f32,
    pool: impl Fn(Tensor<4>, &inception::graph::PoolSpec, bool) -> Tensor<4>,
) {
    for (i, (shape, p)) in cases.iter().enumerate() {
        let run = |ours: bool| {
            let device = Device::flex().autodiff();
            let x = prepare(random(*shape, seed + i as u64, &device)).require_grad();
            let y = pool(x.clone(), p, ours);
            let g = random(y.dims(), seed + 100 + i as u64, &device);
            let grads = (y.clone() * g).sum().backward();
            [
                y.into_data(),
                x.grad(&grads).expect("x gradient").into_data(),
            ]
        };
        let [ours, burns] = [run(true), run(false)];
        for (what, (a, b)) in ["output", "gradient"]
            .iter()
            .zip(ours.into_iter().zip(burns))
        {
            assert_eq!(a.shape(), b.shape(), "case {i}: {what} shape");
            let d = rel_diff(a, b);
            assert!(d < tolerance, "case {i}: {what} differs by {d:e}");
        }
    }
}

#[test]
fn the_avg_pool_extension_matches_burns_outputs_and_gradients() {
    use inception::graph::PoolSpec;
    let pool = |kernel, stride, padding, ceil_mode, count_include_pad| PoolSpec {
        kernel,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
    };
    let cases = [
        // Inception v3's module pool (torchvision counts the padding, Keras does not), a
        // strided window in ceil mode, TensorFlow's asymmetric SAME padding, GoogLeNet's aux
        // head pool (5x5 stride 3), a wide row.
        (
            [2, 3, 9, 8],
            pool([3, 3], [1, 1], [[1, 1], [1, 1]], false, true),
        ),
        (
            [2, 3, 9, 8],
            pool([3, 3], [1, 1], [[1, 1], [1, 1]], false, false),
        ),
        (
            [1, 2, 15, 15],
            pool([3, 3], [2, 2], [[0, 0], [0, 0]], true, true),
        ),
        (
            [1, 4, 14, 14],
            pool([3, 3], [2, 2], [[0, 1], [0, 1]], false, false),
        ),
        (
            [2, 2, 14, 14],
            pool([5, 5], [3, 3], [[0, 0], [0, 0]], false, true),
        ),
        (
            [1, 2, 6, 37],
            pool([3, 3], [1, 1], [[1, 1], [1, 1]], false, true),
        ),
    ];
    compare_pools(
        &cases,
        500,
        |x| x,
        1e-5,
        |x, p, ours| {
            if ours {
                inception::ops::avg_pool2d(x, p)
            } else {
                let options = burn::tensor::ops::AvgPoolOptions::new(p.kernel)
                    .with_stride(p.stride)
                    .with_padding_pairs([
                        (p.padding[0][0], p.padding[0][1]),
                        (p.padding[1][0], p.padding[1][1]),
                    ])
                    .with_ceil_mode(p.ceil_mode)
                    .with_count_include_pad(p.count_include_pad);
                burn::tensor::module::avg_pool2d(x, options)
            }
        },
    );
}
