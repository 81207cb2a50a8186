//! Times the GEMM on one shape, on one thread: a tuning aid, not a test.
//!
//! `cargo run --release -p inception-kernels --example sgemm_shape -- M N K [LDA [LDC]]`
//!
//! With `COLD=1` the weights come from memory, as in a whole network whose weights do not fit
//! the caches: the timing cycles through copies of `B` filling 96 MiB.

use std::time::Instant;

use inception_kernels::{Epilogue, PackedB, sgemm};

fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().expect("numbers"))
        .collect();
    let (m, n, k) = match a[..] {
        [m, n, k, ..] => (m, n, k),
        _ => {
            eprintln!("usage: sgemm_shape M N K [LDA [LDC]]");
            std::process::exit(2);
        }
    };
    let lda = a.get(3).copied().unwrap_or(k);
    let ldc = a.get(4).copied().unwrap_or(n);
    let x: Vec<f32> = (0..m * lda).map(|i| (i % 7) as f32 * 0.1).collect();
    let w: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.01).collect();
    let bias = vec![0.5f32; n];
    let copies = if std::env::var_os("COLD").is_some() {
        ((96 << 20) / (4 * k * n).max(1)).max(2)
    } else {
        1
    };
    let packed: Vec<PackedB> = (0..copies).map(|_| PackedB::new(&w, k, n)).collect();
    let mut next = 0;
    let mut c = vec![0f32; m * ldc];
    let epilogue = Epilogue {
        bias: Some(&bias),
        relu: true,
        accumulate: false,
    };
    let mut run = |c: &mut [f32]| unsafe {
        let packed = &packed[next];
        next = (next + 1) % copies;
        sgemm(
            m,
            x.as_ptr(),
            lda,
            packed,
            c.as_mut_ptr(),
            ldc,
            epilogue,
            0..packed.panels(),
        )
    };
    run(&mut c);
    // Small shapes repeat inside one timing, so that a timing is well above the clock's grain.
    let reps = (20_000_000 / (m * n * k).max(1)).max(copies.min(64));
    let mut times = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        for _ in 0..reps {
            run(&mut c);
        }
        times.push(t.elapsed().as_secs_f64() / reps as f64);
    }
    times.sort_by(f64::total_cmp);
    let flop = 2.0 * (m * n * k) as f64;
    println!(
        "{m}x{n}x{k}: min {:.2} ms {:.1} GFLOP/s, median {:.1} GFLOP/s",
        times[0] * 1e3,
        flop / times[0] / 1e9,
        flop / times[7] / 1e9
    );
}
