//! The reference frameworks' input pipelines, step for step, so that a checkpoint sees exactly the
//! tensors it was trained on.
//!
//! ```
//! use inception::data::Preset;
//! use image::RgbImage;
//!
//! let photo = RgbImage::from_pixel(640, 480, image::Rgb([120, 90, 60]));
//! let x = Preset::torchvision(224).apply(&photo);   // resize 256, crop 224, mean/std
//! assert_eq!(x.len(), 3 * 224 * 224);
//! ```

use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

use super::resize::{Filter, resize};

/// ImageNet channel means and standard deviations (torchvision).
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// Caffe's BGR channel means (bvlc_googlenet, the ONNX zoo).
const CAFFE_MEAN_BGR: [f32; 3] = [104.0, 117.0, 123.0];

/// The metadata key under which a checkpoint stores the preprocessing it expects (a [`Preset`]
/// as JSON).
pub const PREPROCESSING_KEY: &str = "inception.preprocessing";

/// A preprocessing pipeline. Every preset produces a CHW float tensor (the network's layout);
/// the Keras presets' values equal Keras's NHWC arrays transposed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Preset {
    /// torchvision `ImageClassification` (the published GoogLeNet / Inception v3 transforms):
    /// resize the shorter side to `resize` (Pillow bilinear, antialiased), center crop `crop`,
    /// /255, ImageNet mean and std. The checkpoint's `transform_input` is part of the model.
    Torchvision {
        /// Shorter side after resizing (256 for GoogLeNet, 342 for Inception v3).
        resize: usize,
        /// Center crop (224, 299).
        crop: usize,
    },
    /// `keras.utils.load_img(path, target_size=(size, size), interpolation=…)` then
    /// `keras.applications.inception_v3.preprocess_input`: the aspect ratio is not kept, values
    /// become `x / 127.5 - 1`. Keras's default interpolation is nearest.
    KerasInception {
        /// Square size (299).
        size: usize,
        /// Resampling (`Nearest` is `load_img`'s default).
        filter: Filter,
    },
    /// timm's Inception config: resize the shorter side to `resize` (bicubic), center crop,
    /// mean and std 0.5.
    TimmInception {
        /// Shorter side after resizing (⌊299 / 0.875⌋ = 341).
        resize: usize,
        /// Center crop (299).
        crop: usize,
    },
    /// TF-slim's `inception_preprocessing` for evaluation (the TF-slim checkpoints and TF-Hub
    /// modules): values to [0, 1], `central_crop(0.875)`, TensorFlow 1's `resize_bilinear` to
    /// `size`² (`align_corners=False`, no half-pixel centres, no antialiasing), then
    /// `(x - 0.5) * 2`.
    TfSlim {
        /// Square size (224 for v1/v2, 299 for v3, v4, Inception-ResNet-v2).
        size: usize,
    },
    /// Caffe / ONNX model zoo: resize to `size`² (bilinear), BGR order, 0..255 minus the
    /// channel means (104, 117, 123).
    Caffe {
        /// Square size (224).
        size: usize,
    },
    /// What models trained here use: resize to `size`² (bilinear), grayscale when `channels` is
    /// 1 (Pillow's `L`), then `(x / 255 - mean[c]) / std[c]`.
    Normalize {
        /// Square size.
        size: usize,
        /// 1 (grayscale) or 3 (RGB).
        channels: usize,
        /// Per-channel mean of `x / 255`.
        mean: Vec<f32>,
        /// Per-channel standard deviation of `x / 255`.
        std: Vec<f32>,
    },
}

impl Preset {
    /// torchvision's preset for a crop size: 224 → resize 256, 299 → resize 342.
    pub fn torchvision(crop: usize) -> Self {
        let resize = if crop == 299 { 342 } else { crop * 256 / 224 };
        Preset::Torchvision { resize, crop }
    }

    /// Keras InceptionV3's preset at 299 with `load_img`'s default (nearest) resampling.
    pub fn keras() -> Self {
        Preset::KerasInception {
            size: 299,
            filter: Filter::Nearest,
        }
    }

    /// The preset called `name` at input size `size`: `torchvision` (resize ⌊size·256/224⌋, or
    /// 342 for 299, then crop), `keras` (nearest, as `load_img`), `keras-bilinear`, `timm`
    /// (resize ⌊size/0.875⌋ bicubic, crop, mean/std 0.5), `tf-slim` (central crop 0.875,
    /// TensorFlow's bilinear, [-1, 1]) or `caffe`.
    ///
    /// ```
    /// use inception::data::Preset;
    /// assert_eq!(Preset::parse("torchvision", 299).unwrap(),
    ///            Preset::Torchvision { resize: 342, crop: 299 });
    /// ```
    pub fn parse(name: &str, size: usize) -> Result<Self> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "torchvision" | "torch" | "pytorch" => Self::torchvision(size),
            "keras" | "tensorflow" | "tf" => Self::KerasInception {
                size,
                filter: Filter::Nearest,
            },
            "keras-bilinear" => Self::KerasInception {
                size,
                filter: Filter::Bilinear,
            },
            "timm" => Self::TimmInception {
                resize: (size as f64 / 0.875) as usize,
                crop: size,
            },
            "caffe" | "onnx-zoo" => Self::Caffe { size },
            "tf-slim" | "slim" | "inception-preprocessing" => Self::TfSlim { size },
            _ => {
                return Err(Error::unknown(
                    crate::error::NameKind::Preset,
                    name,
                    None,
                    Self::NAMES,
                ));
            }
        })
    }

    /// Checks sizes (1 to [`crate::models::MAX_INPUT_SIZE`], a crop no larger than its resize)
    /// and the normalisation (finite means, positive finite standard deviations, one per
    /// channel), as a preset read from a file's metadata must be before it is used.
    pub fn validate(&self) -> Result<()> {
        let max = crate::models::MAX_INPUT_SIZE;
        let bad = |why: String| Err(Error::config("preprocessing", self.name(), why));
        let (size, resize) = (self.input_size(), self.resize_size());
        if size == 0 || size > max || resize > 2 * max {
            return bad(format!(
                "size {size} (resize {resize}) must be between 1 and {max}"
            ));
        }
        if resize < size {
            return bad(format!("resize {resize} is smaller than the crop {size}"));
        }
        if let Preset::Normalize {
            channels,
            mean,
            std,
            ..
        } = self
        {
            if !matches!(channels, 1 | 3) {
                return bad(format!("{channels} channels (1 or 3 are possible)"));
            }
            if mean.len() != *channels || std.len() != *channels {
                return bad(format!(
                    "{} means and {} standard deviations for {channels} channel(s)",
                    mean.len(),
                    std.len()
                ));
            }
            if mean.iter().any(|m| !m.is_finite())
                || std.iter().any(|s| !(s.is_finite() && *s > 0.0))
            {
                return bad(format!(
                    "mean {mean:?} and std {std:?} must be finite, std positive"
                ));
            }
        }
        Ok(())
    }

    /// A hint when a preprocessed image looks unlike what a [`Preset::Normalize`] model was
    /// trained on: its mean brightness on the other side of the training data's (dark digits
    /// on white paper for a model of white-on-black MNIST digits). `values` is one image as this
    /// preset produced it. A model trained here would then answer confidently and wrongly.
    pub fn brightness_hint(&self, values: &[f32]) -> Option<String> {
        let Preset::Normalize { mean, std, .. } = self else {
            return None;
        };
        if values.is_empty() || mean.is_empty() {
            return None;
        }
        let channels = mean.len();
        let per = values.len() / channels;
        let (mut got, mut want) = (0.0f64, 0.0f64);
        for c in 0..channels {
            let slice = &values[c * per..(c + 1) * per];
            let m = slice.iter().map(|&v| v as f64).sum::<f64>() / per.max(1) as f64;
            got += m * std[c] as f64 + mean[c] as f64;
            want += mean[c] as f64;
        }
        let (got, want) = (got / channels as f64, want / channels as f64);
        let dark = |v: f64| v < 0.5;
        if (got - want).abs() > 0.35 && dark(got) != dark(want) {
            Some(format!(
                "the image is mostly {} (mean brightness {got:.2}) but the model was trained on \
                 mostly {} images ({want:.2}); invert it if it is drawn the other way round",
                if dark(got) { "dark" } else { "light" },
                if dark(want) { "dark" } else { "light" }
            ))
        } else {
            None
        }
    }

    /// A short name of the pipeline (`torchvision`, `keras`, `timm`, `caffe`, `normalize`).
    pub fn name(&self) -> &'static str {
        match self {
            Preset::Torchvision { .. } => "torchvision",
            Preset::KerasInception { .. } => "keras",
            Preset::TimmInception { .. } => "timm",
            Preset::Caffe { .. } => "caffe",
            Preset::TfSlim { .. } => "tf-slim",
            Preset::Normalize { .. } => "normalize",
        }
    }

    /// The names [`Preset::parse`] takes.
    pub const NAMES: [&str; 6] = [
        "torchvision",
        "keras",
        "keras-bilinear",
        "timm",
        "tf-slim",
        "caffe",
    ];

    /// The same pipeline producing `size`-pixel inputs (torchvision and timm scale their resize
    /// with the crop).
    pub fn with_size(&self, size: usize) -> Self {
        match self {
            Preset::Torchvision { .. } => Self::torchvision(size),
            Preset::TimmInception { .. } => Self::TimmInception {
                resize: (size as f64 / 0.875) as usize,
                crop: size,
            },
            Preset::KerasInception { filter, .. } => Self::KerasInception {
                size,
                filter: *filter,
            },
            Preset::Caffe { .. } => Self::Caffe { size },
            Preset::TfSlim { .. } => Self::TfSlim { size },
            Preset::Normalize {
                channels,
                mean,
                std,
                ..
            } => Self::Normalize {
                size,
                channels: *channels,
                mean: mean.clone(),
                std: std.clone(),
            },
        }
    }

    /// The per-channel `(mean, std)` of `x / 255` the preset normalises with, when it is such a
    /// normalisation (every preset but Caffe's BGR 0..255 one); training uses it.
    pub fn normalization(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        match self {
            Preset::Torchvision { .. } => Some((IMAGENET_MEAN.to_vec(), IMAGENET_STD.to_vec())),
            Preset::TimmInception { .. }
            | Preset::KerasInception { .. }
            | Preset::TfSlim { .. } => Some((vec![0.5; 3], vec![0.5; 3])),
            Preset::Normalize { mean, std, .. } => Some((mean.clone(), std.clone())),
            Preset::Caffe { .. } => None,
        }
    }

    /// The size images are brought to before cropping (the shorter side for torchvision and
    /// timm; the input size otherwise).
    pub fn resize_size(&self) -> usize {
        match self {
            Preset::Torchvision { resize, .. } | Preset::TimmInception { resize, .. } => *resize,
            _ => self.input_size(),
        }
    }

    /// The channels the preset produces (3, or 1 for a grayscale [`Preset::Normalize`]).
    pub fn channels(&self) -> usize {
        match self {
            Preset::Normalize { channels, .. } => *channels,
            _ => 3,
        }
    }

    /// The square input size the preset produces.
    pub fn input_size(&self) -> usize {
        match self {
            Preset::Torchvision { crop, .. } | Preset::TimmInception { crop, .. } => *crop,
            Preset::KerasInception { size, .. }
            | Preset::Caffe { size }
            | Preset::TfSlim { size }
            | Preset::Normalize { size, .. } => *size,
        }
    }

    /// Runs the pipeline on one RGB image: `channels * size * size` values, CHW.
    pub fn apply(&self, img: &RgbImage) -> Vec<f32> {
        match self {
            Preset::Torchvision { resize: r, crop } => {
                let img = crop_center(&resize_shorter(img, *r, Filter::Bilinear), *crop);
                chw(&img, |c, v| {
                    (v / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
                })
            }
            Preset::TimmInception { resize: r, crop } => {
                let img = crop_center(&resize_shorter(img, *r, Filter::Bicubic), *crop);
                chw(&img, |_, v| (v / 255.0 - 0.5) / 0.5)
            }
            Preset::KerasInception { size, filter } => {
                let s = *size as u32;
                let img = fit(img, s, s, *filter);
                chw(&img, |_, v| v / 127.5 - 1.0)
            }
            Preset::TfSlim { size } => tf_slim(img, *size),
            Preset::Caffe { size } => {
                let s = *size as u32;
                let img = fit(img, s, s, Filter::Bilinear);
                // Channel c of the output is BGR: blue first.
                let bgr = chw(&img, |_, v| v);
                let n = (s * s) as usize;
                let mut out = vec![0.0; 3 * n];
                for c in 0..3 {
                    let src = 2 - c;
                    for i in 0..n {
                        out[c * n + i] = bgr[src * n + i] - CAFFE_MEAN_BGR[c];
                    }
                }
                out
            }
            Preset::Normalize {
                size,
                channels,
                mean,
                std,
            } => {
                let s = *size as u32;
                let img = fit(img, s, s, Filter::Bilinear);
                let stat = |v: &[f32], c: usize| v.get(c).or(v.first()).copied().unwrap_or(0.0);
                if *channels == 1 {
                    let (m, sd) = (stat(mean, 0), stat(std, 0));
                    img.pixels()
                        .map(|p| (luma(p.0) as f32 / 255.0 - m) / sd)
                        .collect()
                } else {
                    chw(&img, |c, v| (v / 255.0 - stat(mean, c)) / stat(std, c))
                }
            }
        }
    }

    /// Runs the pipeline on a batch and stacks it into `[N, channels, size, size]` on `device`.
    pub fn batch(&self, imgs: &[RgbImage], device: &Device) -> Tensor<4> {
        let (s, c) = (self.input_size(), self.channels());
        let mut data = Vec::with_capacity(imgs.len() * c * s * s);
        for img in imgs {
            data.extend(self.apply(img));
        }
        Tensor::from_data(TensorData::new(data, [imgs.len(), c, s, s]), device)
    }
}

/// Pillow's RGB → `L` conversion (ITU-R 601-2 luma, fixed point).
pub fn luma([r, g, b]: [u8; 3]) -> u8 {
    ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16) as u8
}

fn fit(img: &RgbImage, w: u32, h: u32, filter: Filter) -> RgbImage {
    if img.dimensions() == (w, h) {
        img.clone()
    } else {
        resize(img, w, h, filter)
    }
}

/// torchvision `Resize(size)`: the shorter side becomes `size`, the longer one
/// `int(size * long / short)`.
fn resize_shorter(img: &RgbImage, size: usize, filter: Filter) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = (size as f64 * long as f64 / short as f64) as usize;
    let (nw, nh) = if w <= h {
        (size, new_long)
    } else {
        (new_long, size)
    };
    fit(img, nw as u32, nh as u32, filter)
}

/// torchvision `CenterCrop`: offsets `int(round((size - crop) / 2))`, Python's round (half to
/// even).
fn crop_center(img: &RgbImage, crop: usize) -> RgbImage {
    let off = |size: u32| {
        let d = (size as f64 - crop as f64) / 2.0;
        d.round_ties_even().max(0.0) as u32
    };
    let (x0, y0) = (off(img.width()), off(img.height()));
    let c = crop as u32;
    RgbImage::from_fn(c, c, |x, y| {
        let (sx, sy) = (x + x0, y + y0);
        if sx < img.width() && sy < img.height() {
            *img.get_pixel(sx, sy)
        } else {
            image::Rgb([0, 0, 0])
        }
    })
}

/// TF-slim's evaluation pipeline (see [`Preset::TfSlim`]), in f32 as TensorFlow computes it.
fn tf_slim(img: &RgbImage, size: usize) -> Vec<f32> {
    // central_crop(0.875): start = int((n - n * 0.875) / 2), size = n - 2 * start.
    let crop = |n: u32| {
        let n = n as f32;
        let start = ((n - n * 0.875) / 2.0) as usize;
        (start, (n as usize).saturating_sub(2 * start).max(1))
    };
    let ((x0, w), (y0, h)) = (crop(img.width()), crop(img.height()));
    // resize_bilinear, align_corners=False, half_pixel_centers=False: source = dest * in/out.
    let axis = |n_in: usize| {
        let scale = n_in as f32 / size as f32;
        (0..size)
            .map(|o| {
                let src = o as f32 * scale;
                let lo = (src.floor() as usize).min(n_in - 1);
                (lo, (lo + 1).min(n_in - 1), src - lo as f32)
            })
            .collect::<Vec<_>>()
    };
    let (xs, ys) = (axis(w), axis(h));
    let at = |x: usize, y: usize, c: usize| {
        img.get_pixel((x0 + x) as u32, (y0 + y) as u32)[c] as f32 / 255.0
    };
    let n = size * size;
    let mut out = vec![0.0; 3 * n];
    for (oy, &(y_lo, y_hi, dy)) in ys.iter().enumerate() {
        for (ox, &(x_lo, x_hi, dx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let top = at(x_lo, y_lo, c) + (at(x_hi, y_lo, c) - at(x_lo, y_lo, c)) * dx;
                let bottom = at(x_lo, y_hi, c) + (at(x_hi, y_hi, c) - at(x_lo, y_hi, c)) * dx;
                let v = top + (bottom - top) * dy;
                out[c * n + oy * size + ox] = (v - 0.5) * 2.0;
            }
        }
    }
    out
}

/// Planar float values `f(channel, value)`.
fn chw(img: &RgbImage, f: impl Fn(usize, f32) -> f32) -> Vec<f32> {
    let n = (img.width() * img.height()) as usize;
    let mut out = vec![0.0; 3 * n];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * n + i] = f(c, p[c] as f32);
        }
    }
    out
}
