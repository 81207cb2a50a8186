//! Training-time augmentation (the paper's random resized crops, horizontal flips, photometric
//! distortion) and the conversion of 8-bit images into normalised model inputs.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// How training images are distorted. Each image gets its own draw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Range of the crop's area as a fraction of the image (the paper: 8%–100%).
    pub scale: [f32; 2],
    /// Range of the crop's aspect ratio, sampled log-uniformly (the paper: 3/4–4/3).
    pub ratio: [f32; 2],
    /// Mirror left–right with probability ½.
    pub flip: bool,
    /// Brightness factor drawn from `[1 - b, 1 + b]`.
    pub brightness: f32,
    /// Contrast factor drawn from `[1 - c, 1 + c]` (blend with the image's mean grey).
    pub contrast: f32,
    /// Saturation factor drawn from `[1 - s, 1 + s]` (blend with each pixel's grey; RGB only).
    pub saturation: f32,
    /// Resize each crop with an interpolation drawn at random — nearest, bilinear or bicubic,
    /// equally likely — as the GoogLeNet paper does ("random interpolation methods"); else
    /// always bilinear.
    #[serde(default)]
    pub random_interpolation: bool,
}

/// How a crop is resampled to the model's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    /// The nearest source pixel.
    Nearest,
    /// Linear in both directions (2x2 taps).
    Bilinear,
    /// Keys' cubic convolution with a = -0.5 (4x4 taps), as Pillow and TensorFlow.
    Bicubic,
}

impl Interpolation {
    /// The taps `(index, weight)` for sampling position `x` on an axis of `len` pixels.
    fn taps(self, x: f32, len: usize) -> ([usize; 4], [f32; 4], usize) {
        let clamp = |i: i64| i.clamp(0, len as i64 - 1) as usize;
        let x = x.clamp(0.0, (len - 1) as f32);
        let i = x.floor() as i64;
        let f = x - i as f32;
        match self {
            Interpolation::Nearest => (
                [clamp((x + 0.5).floor() as i64), 0, 0, 0],
                [1.0, 0.0, 0.0, 0.0],
                1,
            ),
            Interpolation::Bilinear => ([clamp(i), clamp(i + 1), 0, 0], [1.0 - f, f, 0.0, 0.0], 2),
            Interpolation::Bicubic => {
                let a = -0.5f32;
                let k = |t: f32| {
                    let t = t.abs();
                    if t <= 1.0 {
                        ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
                    } else if t < 2.0 {
                        ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a
                    } else {
                        0.0
                    }
                };
                (
                    [clamp(i - 1), clamp(i), clamp(i + 1), clamp(i + 2)],
                    [k(1.0 + f), k(f), k(1.0 - f), k(2.0 - f)],
                    4,
                )
            }
        }
    }
}

impl Augment {
    /// The GoogLeNet paper's distortions: crops of 8%–100% of the area with aspect 3/4–4/3,
    /// flips, and photometric distortion (torchvision's `ColorJitter(0.4, 0.4, 0.4)`).
    pub fn paper() -> Self {
        Self {
            scale: [0.08, 1.0],
            ratio: [3.0 / 4.0, 4.0 / 3.0],
            flip: true,
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
            random_interpolation: true,
        }
    }

    /// For digits: mild crops (a mirrored or heavily cropped digit is another digit or none).
    pub fn digits() -> Self {
        Self {
            scale: [0.7, 1.0],
            ratio: [0.85, 1.0 / 0.85],
            flip: false,
            brightness: 0.2,
            contrast: 0.2,
            saturation: 0.0,
            random_interpolation: false,
        }
    }

    /// No distortion: the whole image, resized.
    pub fn none() -> Self {
        Self {
            scale: [1.0, 1.0],
            ratio: [1.0, 1.0],
            flip: false,
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
            random_interpolation: false,
        }
    }
}

/// torchvision's `RandomResizedCrop.get_params`: up to ten draws of an area and a log-uniform
/// aspect ratio that fit, else the whole image clamped to the ratio range. Returns
/// `(top, left, height, width)`.
pub fn crop_box(h: usize, w: usize, aug: &Augment, rng: &mut impl Rng) -> (f32, f32, f32, f32) {
    let area = (h * w) as f32;
    let (lr0, lr1) = (aug.ratio[0].ln(), aug.ratio[1].ln());
    for _ in 0..10 {
        let target = area * uniform(rng, aug.scale[0], aug.scale[1]);
        let ratio = uniform(rng, lr0, lr1).exp();
        let cw = (target * ratio).sqrt().round();
        let ch = (target / ratio).sqrt().round();
        if cw > 0.0 && ch > 0.0 && cw <= w as f32 && ch <= h as f32 {
            let top = rng.random_range(0..=(h - ch as usize)) as f32;
            let left = rng.random_range(0..=(w - cw as usize)) as f32;
            return (top, left, ch, cw);
        }
    }
    let in_ratio = w as f32 / h as f32;
    let (ch, cw) = if in_ratio < aug.ratio[0] {
        ((w as f32 / aug.ratio[0]).round(), w as f32)
    } else if in_ratio > aug.ratio[1] {
        (h as f32, (h as f32 * aug.ratio[1]).round())
    } else {
        (h as f32, w as f32)
    };
    (
        ((h as f32 - ch) / 2.0).floor(),
        ((w as f32 - cw) / 2.0).floor(),
        ch,
        cw,
    )
}

/// The crop `(top, left, height, width)` of `pixels` (HWC) resampled to `out`² (HWC, 0..255),
/// sampling at pixel centres (`align_corners=False`), mirrored when `flip`.
pub fn resample(
    pixels: &[u8],
    [h, w]: [usize; 2],
    channels: usize,
    (top, left, ch, cw): (f32, f32, f32, f32),
    out: usize,
    flip: bool,
    interpolation: Interpolation,
) -> Vec<f32> {
    let mut img = vec![0f32; out * out * channels];
    let (sy, sx) = (ch / out as f32, cw / out as f32);
    let columns: Vec<_> = (0..out)
        .map(|ox| {
            let xo = if flip { out - 1 - ox } else { ox };
            interpolation.taps(left + (xo as f32 + 0.5) * sx - 0.5, w)
        })
        .collect();
    for oy in 0..out {
        let (ys, wy, ny) = interpolation.taps(top + (oy as f32 + 0.5) * sy - 0.5, h);
        for (ox, (xs, wx, nx)) in columns.iter().enumerate() {
            for k in 0..channels {
                let mut v = 0.0;
                for a in 0..ny {
                    let row = ys[a] * w;
                    let mut r = 0.0;
                    for b in 0..*nx {
                        r += pixels[(row + xs[b]) * channels + k] as f32 * wx[b];
                    }
                    v += r * wy[a];
                }
                img[(oy * out + ox) * channels + k] = v.clamp(0.0, 255.0);
            }
        }
    }
    img
}

fn uniform(rng: &mut impl Rng, a: f32, b: f32) -> f32 {
    if b > a { rng.random_range(a..b) } else { a }
}

/// One augmented training input: a random crop of `pixels` (HWC, `channels` of 1 or 3) resized
/// to `out`² (bilinearly, or with a random interpolation), photometric distortion, flip, then
/// `(x / 255 - mean) / std`; CHW.
#[allow(clippy::too_many_arguments)]
pub fn augment(
    pixels: &[u8],
    [h, w]: [usize; 2],
    channels: usize,
    out: usize,
    aug: &Augment,
    mean: &[f32],
    std: &[f32],
    rng: &mut impl Rng,
) -> Vec<f32> {
    let (top, left, ch, cw) = crop_box(h, w, aug, rng);
    let flip = aug.flip && rng.random_bool(0.5);
    let factor = |rng: &mut _, j: f32| uniform(rng, 1.0 - j, 1.0 + j);
    let b = factor(rng, aug.brightness);
    let c = factor(rng, aug.contrast);
    let s = factor(rng, aug.saturation);
    let interpolation = if aug.random_interpolation {
        [
            Interpolation::Nearest,
            Interpolation::Bilinear,
            Interpolation::Bicubic,
        ][rng.random_range(0..3)]
    } else {
        Interpolation::Bilinear
    };
    let n = out * out;
    let mut img = resample(
        pixels,
        [h, w],
        channels,
        (top, left, ch, cw),
        out,
        flip,
        interpolation,
    );
    // Photometric distortion, in torchvision's brightness → contrast → saturation order.
    if b != 1.0 {
        img.iter_mut().for_each(|v| *v = (*v * b).clamp(0.0, 255.0));
    }
    let gray = |px: &[f32]| {
        if channels == 3 {
            0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2]
        } else {
            px[0]
        }
    };
    if c != 1.0 {
        let m = img.chunks(channels).map(gray).sum::<f32>() / n as f32;
        img.iter_mut()
            .for_each(|v| *v = ((*v - m) * c + m).clamp(0.0, 255.0));
    }
    if s != 1.0 && channels == 3 {
        for px in img.chunks_mut(3) {
            let g = gray(px);
            px.iter_mut()
                .for_each(|v| *v = ((*v - g) * s + g).clamp(0.0, 255.0));
        }
    }
    let mut chw = vec![0f32; n * channels];
    for i in 0..n {
        for k in 0..channels {
            let (m, sd) = (
                mean.get(k).copied().unwrap_or(0.0),
                std.get(k).copied().unwrap_or(1.0),
            );
            chw[k * n + i] = (img[i * channels + k] / 255.0 - m) / sd;
        }
    }
    chw
}
