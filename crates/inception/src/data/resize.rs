//! Resampling exactly as Pillow does it, because that is what torchvision (on PIL images) and
//! `keras.utils.load_img` use: separable convolution with the filter's support widened by the
//! downscale factor (antialiasing), 22-bit fixed-point weights, a horizontal then a vertical
//! pass with rounding to 8 bits in between; nearest neighbour samples pixel centres.

use image::RgbImage;

/// Resampling filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// Pillow `NEAREST`.
    Nearest,
    /// Pillow `BILINEAR` (triangle, antialiased when shrinking).
    Bilinear,
    /// Pillow `BICUBIC` (a = -0.5, antialiased when shrinking).
    Bicubic,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Nearest => 0.5,
            Filter::Bilinear => 1.0,
            Filter::Bicubic => 2.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Nearest => {
                if x < 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Filter::Bilinear => (1.0 - x).max(0.0),
            Filter::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Per output pixel: the first input pixel and its fixed-point weights.
fn coefficients(in_size: usize, out_size: usize, filter: Filter) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            // C's truncating casts, as in Pillow's precompute_coeffs.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let ss = 1.0 / filterscale;
            let mut w: Vec<f64> = (xmin..xmax)
                .map(|x| filter.weight((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = w.iter().sum();
            if total != 0.0 {
                w.iter_mut().for_each(|v| *v /= total);
            }
            let fixed = w
                .iter()
                .map(|&v| {
                    let s = v * (1u32 << PRECISION_BITS) as f64;
                    if v < 0.0 {
                        (s - 0.5) as i32
                    } else {
                        (s + 0.5) as i32
                    }
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes to `width` x `height` as Pillow's `Image.resize(size, filter)`.
pub fn resize(img: &RgbImage, width: u32, height: u32, filter: Filter) -> RgbImage {
    let (w, h) = img.dimensions();
    if filter == Filter::Nearest {
        return nearest(img, width, height);
    }
    let mut current = img.clone();
    if width != w {
        let coeffs = coefficients(w as usize, width as usize, filter);
        let mut out = RgbImage::new(width, h);
        for y in 0..h {
            for (x, (start, k)) in coeffs.iter().enumerate() {
                for c in 0..3 {
                    let mut ss: i64 = 1 << (PRECISION_BITS - 1);
                    for (i, &kv) in k.iter().enumerate() {
                        ss += current.get_pixel((start + i) as u32, y)[c] as i64 * kv as i64;
                    }
                    out.get_pixel_mut(x as u32, y)[c] = clip8(ss);
                }
            }
        }
        current = out;
    }
    if height != h {
        let coeffs = coefficients(h as usize, height as usize, filter);
        let cw = current.width();
        let mut out = RgbImage::new(cw, height);
        for (y, (start, k)) in coeffs.iter().enumerate() {
            for x in 0..cw {
                for c in 0..3 {
                    let mut ss: i64 = 1 << (PRECISION_BITS - 1);
                    for (i, &kv) in k.iter().enumerate() {
                        ss += current.get_pixel(x, (start + i) as u32)[c] as i64 * kv as i64;
                    }
                    out.get_pixel_mut(x, y as u32)[c] = clip8(ss);
                }
            }
        }
        current = out;
    }
    current
}

/// Pillow's nearest neighbour (`ImagingScaleAffine`): the input pixel under each output pixel's
/// centre, with the source coordinate accumulated step by step in f64 as Pillow does — the
/// accumulated rounding decides a few boundary pixels.
fn nearest(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let table = |n_in: u32, n_out: u32| -> Vec<u32> {
        let step = n_in as f64 / n_out as f64;
        let mut pos = step * 0.5;
        (0..n_out)
            .map(|_| {
                let i = (pos as u32).min(n_in - 1);
                pos += step;
                i
            })
            .collect()
    };
    let (xs, ys) = (table(w, width), table(h, height));
    RgbImage::from_fn(width, height, |x, y| {
        *img.get_pixel(xs[x as usize], ys[y as usize])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_and_identity_is_exact() {
        for f in [Filter::Bilinear, Filter::Bicubic] {
            for (i, o) in [(512, 256), (100, 299), (342, 299), (7, 3)] {
                for (_, k) in coefficients(i, o, f) {
                    let s: i64 = k.iter().map(|&v| v as i64).sum();
                    assert!(
                        (s - (1 << PRECISION_BITS)).abs() <= k.len() as i64,
                        "{f:?} {i}->{o}"
                    );
                }
            }
        }
        let img = RgbImage::from_fn(5, 4, |x, y| image::Rgb([x as u8 * 40, y as u8 * 60, 7]));
        assert_eq!(resize(&img, 5, 4, Filter::Bilinear), img);
    }
}
