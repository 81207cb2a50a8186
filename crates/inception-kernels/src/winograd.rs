//! Winograd F(4x4, 3x3) for 3x3 convolutions with stride 1 (Lavin & Gray 2015): each 4x4 tile
//! of output costs 36 multiplies per input/output channel pair instead of 144.
//!
//! Channels-last suits it: the input and output transforms act on each channel alone, so they
//! run as vector loops over contiguous channels. The 36 element-wise products become 36 GEMMs
//! `[tiles, cin] x [cin, cout]` per chunk of tiles (the `gemm` crate), and the chunk's
//! transformed values stay in the cache between the three stages.
//!
//! Transform points 0, ±1, ±2 (the usual choice); in fp32 the error against direct convolution
//! stays within a few 1e-6 of the output's scale on Inception's layers (tested to 1e-4).

use rayon::prelude::*;

use crate::View;
use crate::conv::SendPtr;
use crate::sgemm::{Epilogue, PackedB, sgemm};
use crate::simd::vectorized;

/// Values (inputs plus outputs, transformed) one chunk of tiles keeps: 1 MiB of f32, within
/// the L2 cache between the three stages.
const CHUNK_VALUES: usize = 1 << 18;

/// Fewer tiles per thread than this and the threads share the 36 products of every tile
/// (`run_shared`) instead of splitting the tiles.
const SHARED_TILES: usize = 24;

/// G (6x3): the weight transform.
const G: [[f64; 3]; 6] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

pub(crate) struct Winograd {
    cin: usize,
    cout: usize,
    /// `(top, left)` padding.
    pad: [usize; 2],
    /// `G g Gᵀ` per channel pair: 36 `[cin, cout]` matrices, packed.
    u: Vec<PackedB>,
}

impl Winograd {
    /// From `[kh * kw * cin, cout]` weights of a 3x3 kernel (the GEMM layout).
    pub fn new(cin: usize, cout: usize, pad: [usize; 2], weights_kc: &[f32]) -> Self {
        let mut u = vec![0f32; 36 * cin * cout];
        for ci in 0..cin {
            for co in 0..cout {
                let g = |ky: usize, kx: usize| {
                    weights_kc[((ky * 3 + kx) * cin + ci) * cout + co] as f64
                };
                // t = G g (6x3), then u = t Gᵀ (6x6).
                let mut t = [[0f64; 3]; 6];
                for (i, row) in t.iter_mut().enumerate() {
                    for (x, v) in row.iter_mut().enumerate() {
                        *v = (0..3).map(|k| G[i][k] * g(k, x)).sum();
                    }
                }
                for i in 0..6 {
                    for j in 0..6 {
                        let v: f64 = (0..3).map(|k| t[i][k] * G[j][k]).sum();
                        u[((i * 6 + j) * cin + ci) * cout + co] = v as f32;
                    }
                }
            }
        }
        let u = u
            .chunks_exact(cin * cout)
            .map(|m| PackedB::new(m, cin, cout))
            .collect();
        Self { cin, cout, pad, u }
    }

    /// Tiles of 4x4 outputs for a batch.
    pub fn tiles(ov: &View, batch: usize) -> usize {
        batch * ov.h.div_ceil(4) * ov.w.div_ceil(4)
    }

    /// The convolution of `batch` samples, bias and ReLU applied on the way out.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        input: &[f32],
        iv: &View,
        out: &mut [f32],
        ov: &View,
        batch: usize,
        bias: &[f32],
        relu: bool,
    ) {
        let tiles = Self::tiles(ov, batch);
        let threads = rayon::current_num_threads().max(1);
        // Tiles whose transformed values fit the chunk budget.
        let budget = (CHUNK_VALUES / (36 * (self.cin + self.cout))).clamp(4, 512);
        if threads > 1 && tiles < threads * SHARED_TILES {
            self.run_shared(input, iv, out, ov, tiles, budget, bias, relu);
            return;
        }
        let chunk = crate::conv::balanced_chunk(tiles, budget, threads);
        let chunks = tiles.div_ceil(chunk);
        let out_ptr = SendPtr(out.as_mut_ptr());
        (0..chunks).into_par_iter().for_each_init(
            || (Vec::new(), Vec::new()),
            |(v, m), c| {
                let start = c * chunk;
                let n = chunk.min(tiles - start);
                v.resize(36 * n * self.cin, 0.0);
                m.resize(36 * n * self.cout, 0.0);
                // The transforms' channel loops, compiled for the vector unit at hand (left
                // to themselves they stay baseline SSE2 code).
                vectorized(
                    #[inline(always)]
                    || self.transform_input(input, iv, ov, start, n, v),
                );
                self.multiply(v, m, n);
                // SAFETY: tiles of different chunks cover disjoint output pixels.
                vectorized(
                    #[inline(always)]
                    || unsafe { self.transform_output(m, out_ptr, ov, start, n, bias, relu) },
                );
            },
        );
    }

    /// Few tiles (a batch of one at 14x14): split between the threads, each would read all 36
    /// transformed weight matrices (four times the direct weights) for a handful of rows. So
    /// the threads share the work by position instead: the transforms run on this thread, and
    /// each thread multiplies its share of the 36 positions for every tile.
    #[allow(clippy::too_many_arguments)]
    fn run_shared(
        &self,
        input: &[f32],
        iv: &View,
        out: &mut [f32],
        ov: &View,
        tiles: usize,
        chunk: usize,
        bias: &[f32],
        relu: bool,
    ) {
        let (cin, cout) = (self.cin, self.cout);
        let mut v = Vec::new();
        let mut m = Vec::new();
        let out_ptr = SendPtr(out.as_mut_ptr());
        for start in (0..tiles).step_by(chunk) {
            let n = chunk.min(tiles - start);
            v.resize(36 * n * cin, 0.0);
            m.resize(36 * n * cout, 0.0);
            vectorized(
                #[inline(always)]
                || self.transform_input(input, iv, ov, start, n, &mut v),
            );
            m.par_chunks_mut(n * cout)
                .enumerate()
                .for_each(|(xi, mx)| self.multiply_one(xi, &v[xi * n * cin..][..n * cin], mx, n));
            // SAFETY: this thread alone writes the output here.
            vectorized(
                #[inline(always)]
                || unsafe { self.transform_output(&m, out_ptr, ov, start, n, bias, relu) },
            );
        }
    }

    /// `v[ξ][tile][ci] = (Bᵀ d B)[ξ]` for tiles `[start, start + n)`.
    #[inline(always)]
    fn transform_input(
        &self,
        input: &[f32],
        iv: &View,
        ov: &View,
        start: usize,
        n: usize,
        v: &mut [f32],
    ) {
        let cin = self.cin;
        let (th, tw) = (ov.h.div_ceil(4), ov.w.div_ceil(4));
        let zeros = vec![0f32; cin];
        // t[j][i] = (Bᵀ d)[i][j], one column of the patch after another.
        let mut t = vec![0f32; 36 * cin];
        let in_sample = iv.pixels() * iv.stride;
        for k in 0..n {
            let tile = start + k;
            let b = tile / (th * tw);
            let r = tile % (th * tw);
            let (y0, x0) = (
                (r / tw * 4) as isize - self.pad[0] as isize,
                (r % tw * 4) as isize - self.pad[1] as isize,
            );
            // The patch's pixel (i, j), read in place (zeros outside the input).
            let d = |i: usize, j: usize| -> &[f32] {
                let (y, x) = (y0 + i as isize, x0 + j as isize);
                if y < 0 || y >= iv.h as isize || x < 0 || x >= iv.w as isize {
                    &zeros
                } else {
                    let s =
                        b * in_sample + (y as usize * iv.w + x as usize) * iv.stride + iv.offset;
                    &input[s..s + cin]
                }
            };
            for (j, col) in t.chunks_exact_mut(6 * cin).enumerate() {
                let mut o = col.chunks_exact_mut(cin);
                let outs: [&mut [f32]; 6] = std::array::from_fn(|_| o.next().unwrap_or_default());
                bt([d(0, j), d(1, j), d(2, j), d(3, j), d(4, j), d(5, j)], outs);
            }
            for i in 0..6 {
                let src: [&[f32]; 6] = std::array::from_fn(|j| &t[(j * 6 + i) * cin..][..cin]);
                // SAFETY: the six rows ξ = 6i + j of tile k are disjoint parts of `v`.
                let outs: [&mut [f32]; 6] = std::array::from_fn(|j| unsafe {
                    let at = ((i * 6 + j) * n + k) * cin;
                    std::slice::from_raw_parts_mut(v.as_mut_ptr().add(at), cin)
                });
                bt(src, outs);
            }
        }
    }

    /// `m[ξ] = v[ξ] u[ξ]` for the 36 positions.
    fn multiply(&self, v: &[f32], m: &mut [f32], n: usize) {
        let (cin, cout) = (self.cin, self.cout);
        for xi in 0..36 {
            self.multiply_one(
                xi,
                &v[xi * n * cin..][..n * cin],
                &mut m[xi * n * cout..][..n * cout],
                n,
            );
        }
    }

    /// `m = v u[ξ]` for one position: `v` is `[n, cin]`, `m` is `[n, cout]`.
    fn multiply_one(&self, xi: usize, v: &[f32], m: &mut [f32], n: usize) {
        let (cin, cout) = (self.cin, self.cout);
        assert!(
            v.len() >= n * cin && m.len() >= n * cout,
            "[n, cin] and [n, cout] blocks"
        );
        let u = &self.u[xi];
        let plain = Epilogue {
            bias: None,
            relu: false,
            accumulate: false,
        };
        // SAFETY: checked just above.
        unsafe {
            sgemm(
                n,
                v.as_ptr(),
                cin,
                u,
                m.as_mut_ptr(),
                cout,
                plain,
                0..u.panels(),
            )
        };
    }

    /// `y = Aᵀ m A` per tile, plus bias, ReLU, clipped to the output.
    ///
    /// # Safety
    /// `out` holds `ov` for the batch; no other thread writes these tiles.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn transform_output(
        &self,
        m: &[f32],
        out: SendPtr,
        ov: &View,
        start: usize,
        n: usize,
        bias: &[f32],
        relu: bool,
    ) {
        let cout = self.cout;
        let (th, tw) = (ov.h.div_ceil(4), ov.w.div_ceil(4));
        // s[j][i] = (Aᵀ m)[i][j]: four rows per column of the tile.
        let mut s = vec![0f32; 24 * cout];
        let mut spare = vec![0f32; 4 * cout];
        for k in 0..n {
            let tile = start + k;
            let b = tile / (th * tw);
            let r = tile % (th * tw);
            let (oy, ox) = (r / tw * 4, r % tw * 4);
            for (j, col) in s.chunks_exact_mut(4 * cout).enumerate() {
                let src: [&[f32]; 6] =
                    std::array::from_fn(|i| &m[((i * 6 + j) * n + k) * cout..][..cout]);
                let mut o = col.chunks_exact_mut(cout);
                let outs: [&mut [f32]; 4] = std::array::from_fn(|_| o.next().unwrap_or_default());
                at(src, outs, None, false);
            }
            for i in 0..4 {
                if oy + i >= ov.h {
                    break;
                }
                let src: [&[f32]; 6] = std::array::from_fn(|j| &s[(j * 4 + i) * cout..][..cout]);
                let row = (b * ov.h + oy + i) * ov.w + ox;
                let inside = (ov.w - ox).min(4);
                let mut sp = spare.chunks_exact_mut(cout);
                // SAFETY: the tile's pixels in this row belong to this thread; the ones past the
                // right edge go to scratch space.
                let outs: [&mut [f32]; 4] = std::array::from_fn(|jx| {
                    let scratch = sp.next().unwrap_or_default();
                    if jx < inside {
                        unsafe {
                            std::slice::from_raw_parts_mut(
                                out.0.add((row + jx) * ov.stride + ov.offset),
                                cout,
                            )
                        }
                    } else {
                        scratch
                    }
                });
                at(src, outs, Some(bias), relu);
            }
        }
    }
}

/// `Bᵀ x` over six vectors of channels: `o[i] = Σ Bᵀ[i][k] d[k]`.
#[inline(always)]
fn bt(d: [&[f32]; 6], o: [&mut [f32]; 6]) {
    let n = o[0].len();
    let [d0, d1, d2, d3, d4, d5] = d.map(|x| &x[..n]);
    let [o0, o1, o2, o3, o4, o5] = o.map(|x| &mut x[..n]);
    for c in 0..n {
        let (a0, a1, a2, a3, a4, a5) = (d0[c], d1[c], d2[c], d3[c], d4[c], d5[c]);
        o0[c] = 4.0 * a0 - 5.0 * a2 + a4;
        o1[c] = -4.0 * (a1 + a2) + a3 + a4;
        o2[c] = 4.0 * (a1 - a2) - a3 + a4;
        o3[c] = 2.0 * (a3 - a1) - a2 + a4;
        o4[c] = 2.0 * (a1 - a3) - a2 + a4;
        o5[c] = 4.0 * a1 - 5.0 * a3 + a5;
    }
}

/// `Aᵀ x` over six vectors of channels into four, plus `bias` and ReLU when given.
#[inline(always)]
fn at(m: [&[f32]; 6], o: [&mut [f32]; 4], bias: Option<&[f32]>, relu: bool) {
    let n = o[0].len();
    let [m0, m1, m2, m3, m4, m5] = m.map(|x| &x[..n]);
    let [o0, o1, o2, o3] = o.map(|x| &mut x[..n]);
    let bias = bias.map(|b| &b[..n]);
    for c in 0..n {
        let (a, b1, c2, d, e, f) = (m0[c], m1[c], m2[c], m3[c], m4[c], m5[c]);
        let p = b1 + c2;
        let q = b1 - c2;
        let r = d + e;
        let s = d - e;
        let mut y = [a + p + r, q + 2.0 * s, p + 4.0 * r, q + 8.0 * s + f];
        if let Some(bias) = bias {
            for v in &mut y {
                *v += bias[c];
                if relu {
                    *v = v.max(0.0);
                }
            }
        }
        o0[c] = y[0];
        o1[c] = y[1];
        o2[c] = y[2];
        o3[c] = y[3];
    }
}
