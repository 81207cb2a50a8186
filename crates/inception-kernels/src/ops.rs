//! The memory-bound kernels of a plan, channels-last: pooling, normalisation, element-wise maps,
//! copies. Each is parallel over output rows and reads/writes strided channel slices.

use rayon::prelude::*;

use crate::View;
use crate::sgemm::Epilogue;

/// Output rows of `ov` (one row = `w` pixels of `stride` values), in parallel.
fn rows_mut<'a>(out: &'a mut [f32], ov: &View, batch: usize) -> rayon::slice::ChunksMut<'a, f32> {
    // A reused buffer may be longer than this value.
    let len = (batch * ov.pixels() * ov.stride).min(out.len());
    out[..len].par_chunks_mut((ov.w * ov.stride).max(1))
}

/// The `c` channels of pixel `p` (counted over the whole batch) of a view.
#[inline]
fn pixel<'a>(buf: &'a [f32], v: &View, p: usize) -> &'a [f32] {
    let s = p * v.stride + v.offset;
    &buf[s..s + v.c]
}

/// NCHW batch → channels-last buffer: each output row from its `c` input plane rows, read in
/// order (an RGB input written three channels per pixel by one loop).
pub fn input_nhwc(input: &[f32], batch: usize, out: &mut [f32], ov: &View) {
    let (c, hw, w, at) = (ov.c, ov.pixels(), ov.w, ov.offset);
    rows_mut(out, ov, batch).enumerate().for_each(|(row, o)| {
        let (b, y) = (row / ov.h, row % ov.h);
        let plane_row = |ch: usize| &input[(b * c + ch) * hw + y * w..][..w];
        if c == 3 {
            let (r, g, bl) = (plane_row(0), plane_row(1), plane_row(2));
            let pixels = o.chunks_exact_mut(ov.stride);
            for (((px, &r), &g), &bl) in pixels.zip(r).zip(g).zip(bl) {
                if let Some([pr, pg, pb]) = px.get_mut(at..at + 3) {
                    (*pr, *pg, *pb) = (r, g, bl);
                }
            }
        } else {
            for ch in 0..c {
                for (px, &v) in o.chunks_exact_mut(ov.stride).zip(plane_row(ch)) {
                    px[at + ch] = v;
                }
            }
        }
    });
}

/// A value back in NCHW order: `[N, C, H, W]` (`map`) or `[N, C * H * W]`, with its dims.
pub fn gather_nchw(buf: &[f32], v: &View, batch: usize, map: bool) -> (Vec<usize>, Vec<f32>) {
    let hw = v.pixels();
    let mut out = vec![0f32; batch * v.c * hw];
    for b in 0..batch {
        for p in 0..hw {
            let src = pixel(buf, v, b * hw + p);
            for (ch, &x) in src.iter().enumerate() {
                out[(b * v.c + ch) * hw + p] = x;
            }
        }
    }
    let shape = if map {
        vec![batch, v.c, v.h, v.w]
    } else {
        vec![batch, v.c * hw]
    };
    (shape, out)
}

/// Max or average pooling over a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    /// Max (else average).
    pub max: bool,
    /// Window `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// `[(top, bottom), (left, right)]`.
    pub padding: [[usize; 2]; 2],
    /// Average pooling divides by the window clipped to the padded input, not to the input.
    pub count_include_pad: bool,
}

impl Pool {
    /// PyTorch's windows: a window starts at `o * stride - pad_begin`, is clipped to the padded
    /// input for the divisor that counts padding, and to the input for the values.
    pub fn run(&self, input: &[f32], iv: &View, out: &mut [f32], ov: &View, batch: usize) {
        let plain = Epilogue {
            bias: None,
            relu: false,
            accumulate: false,
        };
        self.run_with(input, iv, out, ov, batch, plain);
    }

    /// [`Pool::run`], then the GEMM's epilogue (a per-channel bias, a ReLU): the tail of a 1x1
    /// convolution computed before an average pool instead of after it (both are linear, so
    /// the pool may come second, over the convolution's fewer channels).
    pub fn run_with(
        &self,
        input: &[f32],
        iv: &View,
        out: &mut [f32],
        ov: &View,
        batch: usize,
        tail: Epilogue,
    ) {
        let isa = crate::isa();
        rows_mut(out, ov, batch)
            .enumerate()
            .for_each(|(row, o)| match isa {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `isa` found the feature on this CPU.
                crate::Isa::Avx512 => unsafe { self.row_avx512(input, iv, o, ov, row, tail) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above.
                crate::Isa::Avx2 => unsafe { self.row_avx2(input, iv, o, ov, row, tail) },
                _ => self.row(input, iv, o, ov, row, tail),
            });
    }

    /// [`Pool::row`] compiled for AVX-512: the channel loops run 16 wide.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn row_avx512(
        &self,
        input: &[f32],
        iv: &View,
        o: &mut [f32],
        ov: &View,
        row: usize,
        tail: Epilogue,
    ) {
        self.row(input, iv, o, ov, row, tail)
    }

    /// [`Pool::row`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn row_avx2(
        &self,
        input: &[f32],
        iv: &View,
        o: &mut [f32],
        ov: &View,
        row: usize,
        tail: Epilogue,
    ) {
        self.row(input, iv, o, ov, row, tail)
    }

    /// Output row `row` (over the batch) into `o`.
    #[inline(always)]
    fn row(&self, input: &[f32], iv: &View, o: &mut [f32], ov: &View, row: usize, tail: Epilogue) {
        let (ih, iw) = (iv.h as isize, iv.w as isize);
        let range = |o: usize, d: usize, size: isize| {
            let start = (o * self.stride[d]) as isize - self.padding[d][0] as isize;
            let end_padded =
                (start + self.kernel[d] as isize).min(size + self.padding[d][1] as isize);
            let (lo, hi) = (start.max(0), end_padded.min(size));
            (
                lo as usize,
                hi.max(lo) as usize,
                (end_padded - start).max(0) as usize,
            )
        };
        let c = ov.c;
        let max = self.max;
        let (b, oy) = (row / ov.h, row % ov.h);
        let (y0, y1, ypad) = range(oy, 0, ih);
        for ox in 0..ov.w {
            let (x0, x1, xpad) = range(ox, 1, iw);
            // Accumulated straight into the output: the first pixel is copied, the others
            // folded in (a select compiles to one vector max).
            let dst = &mut o[ox * ov.stride + ov.offset..][..c];
            let mut first = true;
            for y in y0..y1 {
                for x in x0..x1 {
                    let src = pixel(input, iv, (b * iv.h + y) * iv.w + x);
                    if first {
                        crate::simd::copy_run(dst, src);
                        first = false;
                    } else if max {
                        for (d, &v) in dst.iter_mut().zip(src) {
                            *d = if v > *d { v } else { *d };
                        }
                    } else {
                        for (d, &v) in dst.iter_mut().zip(src) {
                            *d += v;
                        }
                    }
                }
            }
            if first {
                dst.fill(if max { f32::NEG_INFINITY } else { 0.0 });
            } else if !max {
                let count = if self.count_include_pad {
                    ypad * xpad
                } else {
                    (y1 - y0) * (x1 - x0)
                };
                let inv = 1.0 / count.max(1) as f32;
                dst.iter_mut().for_each(|d| *d *= inv);
            }
            if let Some(bias) = tail.bias {
                dst.iter_mut().zip(bias).for_each(|(d, b)| *d += b);
            }
            if tail.relu {
                dst.iter_mut().for_each(|d| *d = d.max(0.0));
            }
        }
    }
}

/// PyTorch's adaptive average pooling: window `[floor(i * in / out), ceil((i + 1) * in / out))`.
pub fn adaptive_avg(
    input: &[f32],
    iv: &View,
    out: &mut [f32],
    ov: &View,
    batch: usize,
    size: [usize; 2],
) {
    let c = ov.c;
    rows_mut(out, ov, batch).enumerate().for_each(|(row, o)| {
        let (b, oy) = (row / ov.h, row % ov.h);
        let (y0, y1) = (oy * iv.h / size[0], ((oy + 1) * iv.h).div_ceil(size[0]));
        let mut acc = vec![0f32; c];
        for ox in 0..ov.w {
            let (x0, x1) = (ox * iv.w / size[1], ((ox + 1) * iv.w).div_ceil(size[1]));
            acc.fill(0.0);
            for y in y0..y1 {
                for x in x0..x1 {
                    let src = pixel(input, iv, (b * iv.h + y) * iv.w + x);
                    for (a, &v) in acc.iter_mut().zip(src) {
                        *a += v;
                    }
                }
            }
            let inv = 1.0 / ((y1 - y0) * (x1 - x0)).max(1) as f32;
            let dst = &mut o[ox * ov.stride + ov.offset..][..c];
            for (d, a) in dst.iter_mut().zip(&acc) {
                *d = a * inv;
            }
        }
    });
}

/// Mean (or maximum, `max`) over all pixels: `[N, 1, 1, C]`.
pub fn global_pool(input: &[f32], iv: &View, out: &mut [f32], ov: &View, batch: usize, max: bool) {
    let hw = iv.pixels();
    out[..batch * ov.stride]
        .par_chunks_mut(ov.stride)
        .enumerate()
        .for_each(|(b, o)| {
            let dst = &mut o[ov.offset..ov.offset + ov.c];
            match max {
                false => {
                    dst.fill(0.0);
                    for p in 0..hw {
                        for (d, &v) in dst.iter_mut().zip(pixel(input, iv, b * hw + p)) {
                            *d += v;
                        }
                    }
                    let inv = 1.0 / hw.max(1) as f32;
                    dst.iter_mut().for_each(|d| *d *= inv);
                }
                true => {
                    dst.fill(f32::NEG_INFINITY);
                    for p in 0..hw {
                        for (d, &v) in dst.iter_mut().zip(pixel(input, iv, b * hw + p)) {
                            *d = d.max(v);
                        }
                    }
                }
            }
        });
}

/// Burn's local response normalisation: `x / (k + alpha * mean(x^2))^beta`, the mean over the
/// channels `[c - (size - 1) / 2, c + size / 2]` divided by `size` (zeros outside).
#[allow(clippy::too_many_arguments)]
pub fn lrn(
    input: &[f32],
    iv: &View,
    out: &mut [f32],
    ov: &View,
    batch: usize,
    size: usize,
    alpha: f32,
    beta: f32,
    k: f32,
) {
    let c = ov.c;
    let (before, after) = (size.saturating_sub(1) / 2, size / 2);
    let size = size.max(1) as f32;
    rows_mut(out, ov, batch).enumerate().for_each(|(row, o)| {
        let mut sq = vec![0f32; c];
        for x in 0..ov.w {
            let src = pixel(input, iv, row * ov.w + x);
            for (s, &v) in sq.iter_mut().zip(src) {
                *s = v * v;
            }
            let dst = &mut o[x * ov.stride + ov.offset..][..c];
            for ch in 0..c {
                let lo = ch.saturating_sub(before);
                let hi = (ch + after + 1).min(c);
                let sum: f32 = sq[lo..hi].iter().sum();
                dst[ch] = src[ch] / (k + alpha * sum / size).powf(beta);
            }
        }
    });
}

/// `x * scale[c] + shift[c]`, then ReLU if asked.
#[allow(clippy::too_many_arguments)]
pub fn affine(
    input: &[f32],
    iv: &View,
    out: &mut [f32],
    ov: &View,
    batch: usize,
    scale: &[f32],
    shift: &[f32],
    relu: bool,
) {
    map_pixels(input, iv, out, ov, batch, |dst, src| {
        for ((d, &x), (&s, &t)) in dst.iter_mut().zip(src).zip(scale.iter().zip(shift)) {
            let y = x * s + t;
            *d = if relu { y.max(0.0) } else { y };
        }
    });
}

/// ReLU.
pub fn relu(input: &[f32], iv: &View, out: &mut [f32], ov: &View, batch: usize) {
    map_pixels(input, iv, out, ov, batch, |dst, src| {
        for (d, &x) in dst.iter_mut().zip(src) {
            *d = x.max(0.0);
        }
    });
}

/// A copy (into a concatenation's slice).
pub fn copy(input: &[f32], iv: &View, out: &mut [f32], ov: &View, batch: usize) {
    map_pixels(input, iv, out, ov, batch, |dst, src| {
        dst.copy_from_slice(src)
    });
}

/// Applies `f(dst, src)` to every pixel's channel slice.
fn map_pixels(
    input: &[f32],
    iv: &View,
    out: &mut [f32],
    ov: &View,
    batch: usize,
    f: impl Fn(&mut [f32], &[f32]) + Sync,
) {
    rows_mut(out, ov, batch).enumerate().for_each(|(row, o)| {
        for x in 0..ov.w {
            let src = pixel(input, iv, row * ov.w + x);
            f(&mut o[x * ov.stride + ov.offset..][..ov.c], src);
        }
    });
}

/// Element-wise sum of the inputs, then ReLU if asked.
pub fn add(
    inputs: &[&[f32]],
    views: &[View],
    out: &mut [f32],
    ov: &View,
    batch: usize,
    relu: bool,
) {
    rows_mut(out, ov, batch).enumerate().for_each(|(row, o)| {
        for x in 0..ov.w {
            let p = row * ov.w + x;
            let dst = &mut o[x * ov.stride + ov.offset..][..ov.c];
            dst.copy_from_slice(pixel(inputs[0], &views[0], p));
            for (buf, v) in inputs.iter().zip(views).skip(1) {
                for (d, &s) in dst.iter_mut().zip(pixel(buf, v, p)) {
                    *d += s;
                }
            }
            if relu {
                dst.iter_mut().for_each(|d| *d = d.max(0.0));
            }
        }
    });
}

/// A feature map to a vector, in `[C, H, W]` (PyTorch) or `[H, W, C]` (Keras) order.
pub fn flatten(
    input: &[f32],
    iv: &View,
    out: &mut [f32],
    ov: &View,
    batch: usize,
    channels_last: bool,
) {
    let hw = iv.pixels();
    out[..batch * ov.stride]
        .par_chunks_mut(ov.stride)
        .enumerate()
        .for_each(|(b, o)| {
            let dst = &mut o[ov.offset..ov.offset + ov.c];
            for p in 0..hw {
                for (ch, &x) in pixel(input, iv, b * hw + p).iter().enumerate() {
                    let i = if channels_last {
                        p * iv.c + ch
                    } else {
                        ch * hw + p
                    };
                    dst[i] = x;
                }
            }
        });
}

/// Softmax over each pixel's channels (a vector is one pixel).
pub fn softmax(input: &[f32], iv: &View, out: &mut [f32], ov: &View, batch: usize) {
    map_pixels(input, iv, out, ov, batch, |dst, src| {
        let max = src.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        for (d, &x) in dst.iter_mut().zip(src) {
            *d = (x - max).exp();
            sum += *d;
        }
        let inv = 1.0 / sum;
        dst.iter_mut().for_each(|d| *d *= inv);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PyTorch's pooling, one window at a time: the window clipped to the input for its values,
    /// to the padded input for the divisor that counts padding.
    fn naive_pool(p: &Pool, input: &[f32], iv: &View, ov: &View, batch: usize) -> Vec<f64> {
        let mut out = vec![0f64; batch * ov.pixels() * ov.c];
        for b in 0..batch {
            for oy in 0..ov.h {
                for ox in 0..ov.w {
                    for ch in 0..ov.c {
                        let (mut acc, mut n, mut padded) = (None::<f64>, 0, 0);
                        for ky in 0..p.kernel[0] {
                            for kx in 0..p.kernel[1] {
                                let y = (oy * p.stride[0] + ky) as isize - p.padding[0][0] as isize;
                                let x = (ox * p.stride[1] + kx) as isize - p.padding[1][0] as isize;
                                let (h, w) = (iv.h as isize, iv.w as isize);
                                if y < h + p.padding[0][1] as isize
                                    && x < w + p.padding[1][1] as isize
                                {
                                    padded += 1;
                                }
                                if y < 0 || x < 0 || y >= h || x >= w {
                                    continue;
                                }
                                let v = x_at(input, iv, b, y as usize, x as usize, ch) as f64;
                                n += 1;
                                acc = Some(match acc {
                                    None => v,
                                    Some(a) if p.max => a.max(v),
                                    Some(a) => a + v,
                                });
                            }
                        }
                        let v = match acc {
                            None if p.max => f64::NEG_INFINITY,
                            None => 0.0,
                            Some(a) if p.max => a,
                            Some(a) => a / if p.count_include_pad { padded } else { n } as f64,
                        };
                        out[((b * ov.h + oy) * ov.w + ox) * ov.c + ch] = v;
                    }
                }
            }
        }
        out
    }

    fn x_at(x: &[f32], iv: &View, b: usize, y: usize, xx: usize, ch: usize) -> f32 {
        x[((b * iv.h + y) * iv.w + xx) * iv.stride + iv.offset + ch]
    }

    /// Max and average pooling, every window against [`naive_pool`]: windows of 1 to 3,
    /// strides 1 and 2, symmetric and ceil-mode (one-sided) padding, both divisors, read from
    /// and written into slices of wider buffers; nothing outside the output's slice is written.
    #[test]
    fn pooling_matches_every_window() {
        let (batch, c) = (2, 19);
        for (h, w) in [(7, 8), (8, 7), (1, 5)] {
            for kernel in [1, 2, 3] {
                for stride in [1, 2] {
                    for padding in [[0, 0], [1, 1], [0, 1]] {
                        for (max, count_include_pad) in
                            [(true, false), (false, false), (false, true)]
                        {
                            if padding[0] >= kernel {
                                continue;
                            }
                            let p = Pool {
                                max,
                                kernel: [kernel, kernel],
                                stride: [stride, stride],
                                padding: [padding, padding],
                                count_include_pad,
                            };
                            let out_len =
                                |n: usize| (n + padding[0] + padding[1] - kernel) / stride + 1;
                            if h + padding[0] + padding[1] < kernel
                                || w + padding[0] + padding[1] < kernel
                            {
                                continue;
                            }
                            let iv = View {
                                slot: 0,
                                offset: 3,
                                stride: c + 5,
                                c,
                                h,
                                w,
                            };
                            let ov = View {
                                slot: 1,
                                offset: 1,
                                stride: c + 2,
                                c,
                                h: out_len(h),
                                w: out_len(w),
                            };
                            let x: Vec<f32> = (0..batch * h * w * iv.stride)
                                .map(|i| ((i * 7919) % 101) as f32 * 0.37 - 17.0)
                                .collect();
                            let mut out = vec![f32::NAN; ov.buffer_len(batch)];
                            p.run(&x, &iv, &mut out, &ov, batch);
                            let want = naive_pool(&p, &x, &iv, &ov, batch);
                            for (i, px) in out.chunks(ov.stride).enumerate() {
                                for (s, &got) in px.iter().enumerate() {
                                    let case = format!("{p:?} {h}x{w} pixel {i} slot {s}");
                                    match s.checked_sub(ov.offset).filter(|&ch| ch < c) {
                                        Some(ch) => {
                                            let want = want[i * c + ch];
                                            assert!(
                                                (got as f64 - want).abs()
                                                    <= 1e-5 * want.abs().max(1.0)
                                                    || got as f64 == want,
                                                "{case}: {got} vs {want}"
                                            );
                                        }
                                        None => assert!(got.is_nan(), "{case}: written outside"),
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Every input value lands at its pixel's channel, whatever the channel count, inside a
    /// wider buffer (a slice of a concatenation), and nothing else is written.
    #[test]
    fn input_nhwc_puts_every_value_at_its_pixel_and_channel() {
        for c in [1, 3, 4] {
            let (batch, h, w) = (2, 3, 5);
            let input: Vec<f32> = (0..batch * c * h * w).map(|i| i as f32).collect();
            let ov = View {
                slot: 0,
                offset: 2,
                stride: c + 3,
                c,
                h,
                w,
            };
            let mut out = vec![-1f32; batch * h * w * ov.stride];
            input_nhwc(&input, batch, &mut out, &ov);
            for b in 0..batch {
                for p in 0..h * w {
                    for s in 0..ov.stride {
                        let got = out[(b * h * w + p) * ov.stride + s];
                        let want = match s.checked_sub(ov.offset) {
                            Some(ch) if ch < c => input[(b * c + ch) * h * w + p],
                            _ => -1.0,
                        };
                        assert_eq!(got, want, "c {c}, sample {b}, pixel {p}, slot {s}");
                    }
                }
            }
        }
    }
}
