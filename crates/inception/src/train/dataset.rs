//! Labelled images in memory: the embedded digits, ImageFolder trees (`root/<class>/*.jpg`, with
//! `train/` and `val/` sub-folders or a seeded split), and the subsets transfer learning needs.

use std::io::Read;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::data::decode::decode_file;
use crate::data::pipeline::{Failure, is_image_path};
use crate::data::preprocess::luma;
use crate::data::resize::{Filter, resize};
use crate::error::{Error, FormatError, Result};

/// The packed digits (see `data/README.md` for their source and license).
const DIGITS: &[u8] = include_bytes!("../../data/digits.bin.gz");

/// Labelled 8-bit images of one size, in memory (HWC, row-major).
#[derive(Clone, Debug)]
pub struct ImageSet {
    /// All pixels: `len * height * width * channels` bytes.
    pub pixels: Vec<u8>,
    /// Class index of each image.
    pub labels: Vec<usize>,
    /// Class names, in index order.
    pub classes: Vec<String>,
    /// 1 (grayscale) or 3 (RGB).
    pub channels: usize,
    /// Height and width.
    pub size: [usize; 2],
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.size[0] * self.size[1] * self.channels
    }

    /// The pixels of image `i` (HWC).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// The embedded handwritten digits: 8,004 training and 1,996 test images, 28x28 grayscale,
    /// classes `0`…`9`. Nothing is read from disk.
    ///
    /// ```
    /// let (train, test) = inception::train::ImageSet::digits().unwrap();
    /// assert_eq!((train.len(), test.len()), (8004, 1996));
    /// assert_eq!(train.classes.len(), 10);
    /// ```
    pub fn digits() -> Result<(ImageSet, ImageSet)> {
        let bad = |why: &str| Error::format(FormatError::from(why).at("embedded digits"));
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(DIGITS)
            .read_to_end(&mut raw)
            .map_err(|e| bad(&e.to_string()))?;
        if raw.len() < 18 || &raw[..8] != b"INCDIGIT" {
            return Err(bad("bad header"));
        }
        let count =
            |at: usize| u32::from_le_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
        let (n_train, n_test) = (count(8) as usize, count(12) as usize);
        let (h, w) = (raw[16] as usize, raw[17] as usize);
        let classes: Vec<String> = (0..10).map(|d| d.to_string()).collect();
        let mut at = 18;
        let mut split = |n: usize| -> Result<ImageSet> {
            let need = n * (1 + h * w);
            if raw.len() < at + need {
                return Err(bad("truncated"));
            }
            let labels = raw[at..at + n].iter().map(|&l| l as usize).collect();
            let pixels = raw[at + n..at + need].to_vec();
            at += need;
            Ok(ImageSet {
                pixels,
                labels,
                classes: classes.clone(),
                channels: 1,
                size: [h, w],
            })
        };
        let train = split(n_train)?;
        let test = split(n_test)?;
        Ok((train, test))
    }

    /// Reads an ImageFolder tree: every sub-folder of `root` is a class (sorted by name, as
    /// torchvision's `ImageFolder`), every image file below it (recursively) a sample. Images
    /// are decoded in parallel and resized to `size`² (bilinear; grayscale when `channels` is 1).
    /// Files that cannot be decoded are returned as failures, not errors. With `classes`, the
    /// folders must be exactly those (a validation split must match the training split).
    pub fn from_folder(
        root: &Path,
        channels: usize,
        size: usize,
        classes: Option<&[String]>,
    ) -> Result<(ImageSet, Vec<Failure>)> {
        let max = crate::models::MAX_INPUT_SIZE;
        if size == 0 || size > max {
            return Err(Error::config(
                "image size",
                size,
                format!("it must be between 1 and {max}"),
            ));
        }
        if !matches!(channels, 1 | 3) {
            return Err(Error::config(
                "channels",
                channels,
                "images are read as 1 (grayscale) or 3 (RGB)",
            ));
        }
        let mut found: Vec<String> = std::fs::read_dir(root)
            .map_err(|e| Error::io(root, e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .collect();
        found.sort();
        if found.is_empty() {
            return Err(Error::format(format!(
                "no class folders (expected {}/<class>/<image files>)",
                root.display()
            ))
            .in_file(root));
        }
        if let Some(want) = classes
            && want != found.as_slice()
        {
            return Err(Error::format(format!(
                "its classes [{}] differ from the training classes [{}]",
                found.join(", "),
                want.join(", ")
            ))
            .in_file(root));
        }
        let mut files: Vec<(PathBuf, usize)> = Vec::new();
        for (label, class) in found.iter().enumerate() {
            for entry in walkdir::WalkDir::new(root.join(class))
                .follow_links(true)
                .sort_by_file_name()
                .into_iter()
                .filter_map(|e| e.ok())
            {
                if entry.file_type().is_file() && is_image_path(entry.path()) {
                    files.push((entry.into_path(), label));
                }
            }
        }
        let decoded: Vec<std::result::Result<Vec<u8>, String>> = files
            .par_iter()
            .map(|(path, _)| {
                let img = decode_file(path).map_err(|e| e.to_string())?;
                let img = if img.dimensions() == (size as u32, size as u32) {
                    img
                } else {
                    resize(&img, size as u32, size as u32, Filter::Bilinear)
                };
                Ok(if channels == 1 {
                    img.pixels().map(|p| luma(p.0)).collect()
                } else {
                    img.into_raw()
                })
            })
            .collect();
        let mut set = ImageSet {
            pixels: Vec::new(),
            labels: Vec::new(),
            classes: found,
            channels,
            size: [size, size],
        };
        let mut failed = Vec::new();
        for ((path, label), r) in files.into_iter().zip(decoded) {
            match r {
                Ok(px) => {
                    set.pixels.extend(px);
                    set.labels.push(label);
                }
                Err(e) => failed.push((path, e)),
            }
        }
        Ok((set, failed))
    }

    /// Checks a validation fraction for [`ImageSet::folder_splits`]: strictly between 0 and 1.
    pub fn check_val_fraction(val_fraction: f64) -> Result<()> {
        if val_fraction > 0.0 && val_fraction < 1.0 {
            Ok(())
        } else {
            Err(Error::config(
                "validation fraction",
                val_fraction,
                "it must be between 0 and 1 (e.g. 0.2)",
            ))
        }
    }

    /// Training and validation sets of an ImageFolder dataset: `root/train` and `root/val` (or
    /// `root/test`) when they exist, else `root` split at random per class with `seed`,
    /// `val_fraction` of each class held out.
    pub fn folder_splits(
        root: &Path,
        channels: usize,
        size: usize,
        val_fraction: f64,
        seed: u64,
    ) -> Result<(ImageSet, ImageSet, Vec<Failure>)> {
        Self::check_val_fraction(val_fraction)?;
        let train_dir = root.join("train");
        let val_dir = ["val", "valid", "validation", "test"]
            .iter()
            .map(|d| root.join(d))
            .find(|d| d.is_dir());
        if let (true, Some(val_dir)) = (train_dir.is_dir(), val_dir) {
            let (train, mut failed) = Self::from_folder(&train_dir, channels, size, None)?;
            let (val, f2) = Self::from_folder(&val_dir, channels, size, Some(&train.classes))?;
            failed.extend(f2);
            return Ok((train, val, failed));
        }
        let (all, failed) = Self::from_folder(root, channels, size, None)?;
        let (train, val) = all.split(val_fraction, seed);
        Ok((train, val, failed))
    }

    /// Splits per class at random with `seed`: `fraction` of each class goes to the second set
    /// (a fraction outside [0, 1] is clamped to it; NaN holds nothing out).
    pub fn split(&self, fraction: f64, seed: u64) -> (ImageSet, ImageSet) {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for class in 0..self.classes.len() {
            let mut idx: Vec<usize> = (0..self.len())
                .filter(|&i| self.labels[i] == class)
                .collect();
            idx.shuffle(&mut rng);
            let held = (((idx.len() as f64) * fraction).round() as usize).min(idx.len());
            b.extend_from_slice(&idx[..held]);
            a.extend_from_slice(&idx[held..]);
        }
        a.sort_unstable();
        b.sort_unstable();
        (self.select(&a, None), self.select(&b, None))
    }

    /// The images of the given classes only, relabelled `0..classes.len()` in that order
    /// (e.g. digits 5–9 as a new 5-class problem).
    pub fn with_classes(&self, classes: &[usize]) -> ImageSet {
        let idx: Vec<usize> = (0..self.len())
            .filter(|&i| classes.contains(&self.labels[i]))
            .collect();
        self.select(&idx, Some(classes))
    }

    /// At most `n` images per class, picked at random with `seed` (kept in input order).
    pub fn take_per_class(&self, n: usize, seed: u64) -> ImageSet {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut keep = Vec::new();
        for class in 0..self.classes.len() {
            let mut idx: Vec<usize> = (0..self.len())
                .filter(|&i| self.labels[i] == class)
                .collect();
            idx.shuffle(&mut rng);
            keep.extend(idx.into_iter().take(n));
        }
        keep.sort_unstable();
        self.select(&keep, None)
    }

    fn select(&self, idx: &[usize], relabel: Option<&[usize]>) -> ImageSet {
        let mut pixels = Vec::with_capacity(idx.len() * self.image_len());
        for &i in idx {
            pixels.extend_from_slice(self.image(i));
        }
        let (labels, classes) = match relabel {
            Some(keep) => (
                idx.iter()
                    .map(|&i| {
                        keep.iter()
                            .position(|&c| c == self.labels[i])
                            .expect("selected by class")
                    })
                    .collect(),
                keep.iter().map(|&c| self.classes[c].clone()).collect(),
            ),
            None => (
                idx.iter().map(|&i| self.labels[i]).collect(),
                self.classes.clone(),
            ),
        };
        ImageSet {
            pixels,
            labels,
            classes,
            channels: self.channels,
            size: self.size,
        }
    }

    /// The same images with `channels` channels: grey expanded to RGB, or RGB to grey (Pillow's
    /// `L`).
    pub fn with_channels(&self, channels: usize) -> ImageSet {
        if channels == self.channels {
            return self.clone();
        }
        let pixels = match (self.channels, channels) {
            (1, 3) => self.pixels.iter().flat_map(|&v| [v, v, v]).collect(),
            (3, 1) => self
                .pixels
                .chunks(3)
                .map(|p| luma([p[0], p[1], p[2]]))
                .collect(),
            _ => self.pixels.clone(),
        };
        ImageSet {
            pixels,
            channels,
            ..self.clone()
        }
    }

    /// Images per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &l in &self.labels {
            counts[l] += 1;
        }
        counts
    }

    /// Per-channel mean and standard deviation of `x / 255` over the whole set.
    pub fn mean_std(&self) -> (Vec<f32>, Vec<f32>) {
        let c = self.channels;
        let mut sum = vec![0f64; c];
        let mut sq = vec![0f64; c];
        for (i, &p) in self.pixels.iter().enumerate() {
            let v = p as f64 / 255.0;
            sum[i % c] += v;
            sq[i % c] += v * v;
        }
        let n = (self.pixels.len() / c.max(1)).max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| ((q / n - m * m).max(1e-12)).sqrt() as f32)
            .collect();
        (mean.iter().map(|&m| m as f32).collect(), std)
    }
}
