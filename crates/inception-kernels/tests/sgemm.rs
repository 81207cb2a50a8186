//! The GEMM microkernels (every one this CPU has) against a naive f64 product: odd sizes,
//! strided rows, column panels, bias and ReLU, k across several passes.

use inception_kernels::{Epilogue, Isa, PackedB, sgemm};

fn lcg(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

#[test]
fn every_microkernel_matches_a_naive_product() {
    let shapes = [
        (1, 1, 1),
        (5, 3, 7),
        (13, 17, 33),
        (25, 300, 48),
        (7, 520, 65),
        (40, 64, 16),
        (3, 0, 5),
    ];
    for isa in Isa::available() {
        for (i, &(m, k, n)) in shapes.iter().enumerate() {
            for (bias, relu) in [(false, false), (true, true)] {
                let (lda, ldc) = (k + 3, n + 5);
                let a = lcg(i as u64, m * lda);
                let w = lcg(100 + i as u64, k * n);
                let b = lcg(200 + i as u64, n);
                let packed = PackedB::with_isa(&w, k, n, isa);
                let mut c = vec![f32::NAN; m * ldc];
                let epilogue = Epilogue {
                    bias: bias.then_some(&b[..]),
                    relu,
                    accumulate: false,
                };
                unsafe {
                    sgemm(
                        m,
                        a.as_ptr(),
                        lda,
                        &packed,
                        c.as_mut_ptr(),
                        ldc,
                        epilogue,
                        0..packed.panels(),
                    )
                };
                for r in 0..m {
                    for j in 0..n {
                        let mut want: f64 = if bias { b[j] as f64 } else { 0.0 };
                        for kk in 0..k {
                            want += a[r * lda + kk] as f64 * w[kk * n + j] as f64;
                        }
                        if relu {
                            want = want.max(0.0);
                        }
                        let got = c[r * ldc + j] as f64;
                        assert!(
                            (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                            "{isa:?} {m}x{k}x{n} [{r},{j}]: {got} vs {want}"
                        );
                    }
                    for j in n..ldc {
                        assert!(
                            c[r * ldc + j].is_nan(),
                            "{isa:?}: wrote past the row's {n} columns"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn panels_split_the_columns() {
    for isa in Isa::available() {
        let (m, k, n) = (9, 40, 70);
        let a = lcg(1, m * k);
        let w = lcg(2, k * n);
        let packed = PackedB::with_isa(&w, k, n, isa);
        let mut whole = vec![0f32; m * n];
        let mut parts = vec![0f32; m * n];
        let plain = Epilogue {
            bias: None,
            relu: false,
            accumulate: false,
        };
        unsafe {
            sgemm(
                m,
                a.as_ptr(),
                k,
                &packed,
                whole.as_mut_ptr(),
                n,
                plain,
                0..packed.panels(),
            );
            let p = packed.panels();
            sgemm(
                m,
                a.as_ptr(),
                k,
                &packed,
                parts.as_mut_ptr(),
                n,
                plain,
                0..p / 2,
            );
            sgemm(
                m,
                a.as_ptr(),
                k,
                &packed,
                parts.as_mut_ptr(),
                n,
                plain,
                p / 2..p,
            );
        }
        assert_eq!(whole, parts, "{isa:?}");
    }
}

/// `PackedB::pack` from a transposed source into a reused buffer, and `accumulate`: every
/// microkernel computes `C += A Bᵀ` twice over, as the training kernels' weight gradient does.
#[test]
fn a_transposed_pack_accumulates_into_c() {
    for isa in Isa::available() {
        let mut packed = PackedB::empty(isa);
        for (i, &(m, k, n)) in [(13, 600, 45), (4, 7, 33), (12, 1, 1)].iter().enumerate() {
            let a = lcg(300 + i as u64, m * k);
            // `bt` is B transposed: `[n, k]` row-major.
            let bt = lcg(400 + i as u64, n * k);
            packed.pack(&bt, k, n, 1, k);
            let c0 = lcg(500 + i as u64, m * n);
            let mut c = c0.clone();
            let epilogue = Epilogue {
                bias: None,
                relu: false,
                accumulate: true,
            };
            for _ in 0..2 {
                unsafe {
                    sgemm(
                        m,
                        a.as_ptr(),
                        k,
                        &packed,
                        c.as_mut_ptr(),
                        n,
                        epilogue,
                        0..packed.panels(),
                    )
                };
            }
            for r in 0..m {
                for j in 0..n {
                    let dot: f64 = (0..k)
                        .map(|kk| a[r * k + kk] as f64 * bt[j * k + kk] as f64)
                        .sum();
                    let want = c0[r * n + j] as f64 + 2.0 * dot;
                    let got = c[r * n + j] as f64;
                    assert!(
                        (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "{isa:?} {m}x{k}x{n} at ({r}, {j}): {got} vs {want}"
                    );
                }
            }
        }
    }
}
