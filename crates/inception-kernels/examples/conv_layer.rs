//! Times one convolution layer, direct and Winograd: a tuning aid, not a test.
//!
//! `cargo run --release -p inception-kernels --example conv_layer -- BATCH CIN COUT H K STRIDE PAD`

use std::time::Instant;

use inception_kernels::{ConvGeometry, ConvKernel, View};

fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().expect("numbers"))
        .collect();
    let [batch, cin, cout, h, k, s, p] = a[..] else {
        eprintln!("usage: conv_layer BATCH CIN COUT H K STRIDE PAD");
        std::process::exit(2);
    };
    let g = ConvGeometry {
        kernel: [k, k],
        stride: [s, s],
        padding: [[p, p], [p, p]],
        cin,
        cout,
    };
    let oh = (h + 2 * p - k) / s + 1;
    let x: Vec<f32> = (0..batch * h * h * cin)
        .map(|i| (i % 7) as f32 * 0.1)
        .collect();
    let w: Vec<f32> = (0..cout * cin * k * k)
        .map(|i| (i % 5) as f32 * 0.01)
        .collect();
    let iv = View::dense(0, cin, h, h);
    let ov = View::dense(1, cout, oh, oh);
    let mut out = vec![0f32; ov.buffer_len(batch)];
    let flop = 2.0 * (batch * oh * oh * cout * cin * k * k) as f64;
    for (name, kern) in [
        (
            "auto",
            ConvKernel::from_oihw(g, &w, None, vec![0.0; cout], true).unwrap(),
        ),
        (
            "direct",
            ConvKernel::from_oihw(g, &w, None, vec![0.0; cout], true)
                .unwrap()
                .without_winograd(),
        ),
    ] {
        kern.run(&x, &iv, &mut out, &ov, batch);
        let mut times = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            kern.run(&x, &iv, &mut out, &ov, batch);
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let t = times[3];
        println!(
            "{name:>7}: {:.2} ms, {:.1} effective GFLOP/s",
            t * 1e3,
            flop / t / 1e9
        );
    }
}
