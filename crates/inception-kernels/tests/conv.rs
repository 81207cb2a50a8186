//! Convolution kernels against a naive NCHW loop in f64, and Winograd against the direct path.

use inception_kernels::{ConvGeometry, ConvKernel, View};

/// A small deterministic generator (no dependencies).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

#[derive(Clone, Copy)]
struct Case {
    batch: usize,
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
    geometry: ConvGeometry,
}

fn out_size(c: &Case) -> (usize, usize) {
    let g = &c.geometry;
    let oh = (c.h + g.padding[0][0] + g.padding[0][1] - g.kernel[0]) / g.stride[0] + 1;
    let ow = (c.w + g.padding[1][0] + g.padding[1][1] - g.kernel[1]) / g.stride[1] + 1;
    (oh, ow)
}

/// Direct convolution in f64, NHWC in and out; weights OIHW.
fn naive(c: &Case, x: &[f32], w: &[f32], bias: &[f32], relu: bool) -> Vec<f64> {
    let g = &c.geometry;
    let (oh, ow) = out_size(c);
    let mut y = vec![0f64; c.batch * oh * ow * c.cout];
    for b in 0..c.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                for co in 0..c.cout {
                    let mut acc = bias[co] as f64;
                    for ky in 0..g.kernel[0] {
                        for kx in 0..g.kernel[1] {
                            let iy = (oy * g.stride[0] + ky) as isize - g.padding[0][0] as isize;
                            let ix = (ox * g.stride[1] + kx) as isize - g.padding[1][0] as isize;
                            if iy < 0 || ix < 0 || iy >= c.h as isize || ix >= c.w as isize {
                                continue;
                            }
                            for ci in 0..c.cin {
                                let xv =
                                    x[((b * c.h + iy as usize) * c.w + ix as usize) * c.cin + ci];
                                let wv =
                                    w[((co * c.cin + ci) * g.kernel[0] + ky) * g.kernel[1] + kx];
                                acc += xv as f64 * wv as f64;
                            }
                        }
                    }
                    y[((b * oh + oy) * ow + ox) * c.cout + co] =
                        if relu { acc.max(0.0) } else { acc };
                }
            }
        }
    }
    y
}

fn check(c: Case, seed: u64) {
    let mut rng = Lcg(seed);
    let g = c.geometry;
    let x = rng.vec(c.batch * c.h * c.w * c.cin);
    let w = rng.vec(c.cout * c.cin * g.kernel[0] * g.kernel[1]);
    let bias = rng.vec(c.cout);
    let (oh, ow) = out_size(&c);
    // The output is a slice (offset 3) of a wider buffer, as a concatenation's branch is.
    let iv = View::dense(0, c.cin, c.h, c.w);
    let ov = View {
        slot: 1,
        offset: 3,
        stride: c.cout + 5,
        c: c.cout,
        h: oh,
        w: ow,
    };
    let want = naive(&c, &x, &w, &bias, true);
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let kernel = ConvKernel::from_oihw(g, &w, None, bias.clone(), true).expect("shapes");
    for (name, k) in [
        ("winograd-or-direct", kernel),
        (
            "direct",
            ConvKernel::from_oihw(g, &w, None, bias.clone(), true)
                .unwrap()
                .without_winograd(),
        ),
    ] {
        let mut out = vec![f32::NAN; ov.buffer_len(c.batch)];
        k.run(&x, &iv, &mut out, &ov, c.batch);
        let mut err = 0f64;
        for p in 0..c.batch * oh * ow {
            for co in 0..c.cout {
                let got = out[p * ov.stride + ov.offset + co] as f64;
                err = err.max((got - want[p * c.cout + co]).abs());
            }
            // The other channels of the buffer are left alone.
            assert!(
                out[p * ov.stride].is_nan(),
                "{name} wrote outside its slice"
            );
        }
        let rel = err / scale;
        eprintln!(
            "{name} {:?} cin {} cout {}: relative error {rel:.2e}",
            g.kernel, c.cin, c.cout
        );
        assert!(rel < 1e-5, "{name}: relative error {rel:e}");
    }
}

fn geom(k: [usize; 2], s: [usize; 2], p: [[usize; 2]; 2], cin: usize, cout: usize) -> ConvGeometry {
    ConvGeometry {
        kernel: k,
        stride: s,
        padding: p,
        cin,
        cout,
    }
}

#[test]
fn winograd_3x3_matches_direct_convolution() {
    // Sizes that are and are not multiples of the 4x4 tile, padded and valid, batch 1 and odd;
    // batches with enough tiles for the Winograd path (48); the last case with four threads and
    // few tiles each, which share the 36 products instead of splitting the tiles.
    let cases = [
        (12, 8, 8, 1, 2),
        (5, 13, 11, 1, 2),
        (6, 17, 9, 0, 2),
        (1, 35, 35, 1, 2),
        (6, 13, 11, 1, 4),
    ];
    for (i, (batch, h, w, pad, threads)) in cases.into_iter().enumerate() {
        let (cin, cout) = (16 + 5 * i, 24 + 3 * i);
        let c = Case {
            batch,
            cin,
            cout,
            h,
            w,
            geometry: geom([3, 3], [1, 1], [[pad, pad], [pad, pad]], cin, cout),
        };
        let k = ConvKernel::from_oihw(
            c.geometry,
            &vec![0.0; cout * cin * 9],
            None,
            vec![0.0; cout],
            false,
        )
        .unwrap();
        let (oh, ow) = out_size(&c);
        assert!(
            k.uses_winograd(&View::dense(1, cout, oh, ow), batch),
            "case {i} takes the Winograd path"
        );
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        pool.install(|| check(c, i as u64 + 1));
    }
}

#[test]
fn a_small_batch_at_14x14_keeps_both_forms_and_the_batch_chooses() {
    let g = geom([3, 3], [1, 1], [[1, 1], [1, 1]], 16, 24);
    let k = ConvKernel::from_oihw(g, &vec![0.0; 24 * 16 * 9], None, vec![0.0; 24], true)
        .unwrap()
        .specialise(14, 14);
    let ov = View::dense(1, 24, 14, 14);
    assert!(!k.uses_winograd(&ov, 1), "16 tiles: direct");
    assert!(k.uses_winograd(&ov, 3), "48 tiles: Winograd");
    // 35x35 keeps only the Winograd form, 8x8 only the direct one.
    let big = ConvKernel::from_oihw(g, &vec![0.0; 24 * 16 * 9], None, vec![0.0; 24], true)
        .unwrap()
        .specialise(35, 35);
    assert!(big.uses_winograd(&View::dense(1, 24, 35, 35), 1));
    let small = ConvKernel::from_oihw(g, &vec![0.0; 24 * 16 * 9], None, vec![0.0; 24], true)
        .unwrap()
        .specialise(8, 8);
    assert!(!small.uses_winograd(&View::dense(1, 24, 8, 8), 16));
    // Both batch sizes compute the same convolution.
    let c = Case {
        batch: 3,
        cin: 16,
        cout: 24,
        h: 14,
        w: 14,
        geometry: g,
    };
    check(c, 9);
    check(Case { batch: 1, ..c }, 10);
}

#[test]
fn direct_convolutions_match_for_every_window() {
    let cases = [
        geom([1, 1], [1, 1], [[0, 0], [0, 0]], 7, 9),
        geom([7, 7], [2, 2], [[3, 3], [3, 3]], 3, 8),
        geom([3, 3], [2, 2], [[0, 0], [0, 0]], 5, 6),
        geom([1, 7], [1, 1], [[0, 0], [3, 3]], 6, 5),
        geom([7, 1], [1, 1], [[3, 3], [0, 0]], 6, 5),
        geom([2, 2], [1, 1], [[0, 1], [1, 0]], 4, 4),
        geom([5, 5], [1, 1], [[2, 2], [2, 2]], 4, 7),
        geom([3, 3], [1, 1], [[1, 1], [1, 1]], 3, 4),
    ];
    for (i, g) in cases.into_iter().enumerate() {
        check(
            Case {
                batch: 3,
                cin: g.cin,
                cout: g.cout,
                h: 15,
                w: 12,
                geometry: g,
            },
            100 + i as u64,
        );
    }
}

#[test]
fn mis_shaped_weights_are_refused() {
    let g = geom([3, 3], [1, 1], [[1, 1], [1, 1]], 4, 4);
    assert!(ConvKernel::from_oihw(g, &[0.0; 10], None, vec![0.0; 4], false).is_none());
    assert!(ConvKernel::from_oihw(g, &[0.0; 144], None, vec![0.0; 3], false).is_none());
    assert!(ConvKernel::dense(3, vec![0.0; 7], None, vec![0.0; 2], false).is_none());
}
