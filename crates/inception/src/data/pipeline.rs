//! From paths to batches: directory walks and a loader that decodes and preprocesses in parallel
//! (rayon) on a background thread while the model runs on the caller's, so that a folder of
//! thousands of photos goes at the model's speed.
//!
//! ```no_run
//! use inception::data::{Preset, collect_images, image_batches};
//!
//! let (paths, unreadable) = collect_images(&["photos/".into()]);
//! for batch in image_batches(paths, Preset::torchvision(224), 32) {
//!     for (path, why) in &batch.failed {
//!         eprintln!("skipped {}: {why}", path.display());
//!     }
//!     if batch.is_empty() { continue; }
//!     let x = batch.tensor(&Default::default()); // [N, 3, 224, 224]
//! }
//! ```

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

use super::decode::decode_file;
use super::preprocess::Preset;

/// File extensions a directory walk picks up (case-insensitive).
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "jpe", "jfif", "png", "gif", "bmp", "dib", "tif", "tiff", "webp",
];

/// Whether `path` has one of the [`IMAGE_EXTENSIONS`].
pub fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// A file that could not be used, and why (one line).
pub type Failure = (PathBuf, String);

/// Expands `paths` into image files: a directory is walked recursively and contributes its
/// files with an image extension, in sorted order (symbolic links followed); a file named
/// explicitly is kept whatever its extension (its decoding will tell). A path that does not exist
/// or a directory entry that cannot be read is returned as a failure, so one typo does not stop
/// the rest.
pub fn collect_images(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Failure>) {
    let mut files = Vec::new();
    let mut failed = Vec::new();
    for path in paths {
        if !path.is_dir() {
            if path.exists() {
                files.push(path.clone());
            } else {
                failed.push((path.clone(), "no such file or directory".to_string()));
            }
            continue;
        }
        let walk = walkdir::WalkDir::new(path)
            .follow_links(true)
            .sort_by_file_name();
        for entry in walk {
            match entry {
                Ok(e) if e.file_type().is_file() && is_image_path(e.path()) => {
                    files.push(e.into_path())
                }
                Ok(_) => {}
                Err(e) => {
                    let p = e.path().unwrap_or(path).to_path_buf();
                    let why = e
                        .io_error()
                        .map_or_else(|| e.to_string(), |io| io.to_string());
                    failed.push((p, why));
                }
            }
        }
    }
    (files, failed)
}

/// A batch of preprocessed images, in input order, and the files of its slice of the input that
/// failed to decode.
#[derive(Debug)]
pub struct Batch {
    /// The images' files.
    pub paths: Vec<PathBuf>,
    /// `[len, channels, size, size]` values, CHW per image.
    pub data: Vec<f32>,
    /// The square input size.
    pub size: usize,
    /// Channels per image.
    pub channels: usize,
    /// Files of this slice that could not be decoded, with the reason.
    pub failed: Vec<Failure>,
}

impl Batch {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether every file of the slice failed.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The images as a `[N, channels, size, size]` tensor.
    pub fn tensor(&self, device: &Device) -> Tensor<4> {
        Tensor::from_data(
            TensorData::new(
                self.data.clone(),
                [self.len(), self.channels, self.size, self.size],
            ),
            device,
        )
    }
}

/// Batches of `paths` decoded and preprocessed with `preset`, produced on a background thread
/// (each batch decoded in parallel) at most two batches ahead of the consumer.
pub struct ImageBatches {
    rx: Option<Receiver<Batch>>,
    worker: Option<JoinHandle<()>>,
    /// How many files there are in all.
    pub total: usize,
}

/// Starts loading `paths` in batches of `batch_size` (see [`ImageBatches`]).
pub fn image_batches(paths: Vec<PathBuf>, preset: Preset, batch_size: usize) -> ImageBatches {
    let batch_size = batch_size.max(1);
    let total = paths.len();
    let (tx, rx) = sync_channel::<Batch>(2);
    let worker = std::thread::spawn(move || {
        let (size, channels) = (preset.input_size(), preset.channels());
        for chunk in paths.chunks(batch_size) {
            let results: Vec<Result<Vec<f32>, String>> = chunk
                .par_iter()
                .map(|p| {
                    // A decoder bug on a hostile file must cost that file, not the run.
                    std::panic::catch_unwind(AssertUnwindSafe(|| {
                        decode_file(p)
                            .map(|img| preset.apply(&img))
                            .map_err(|e| e.to_string())
                    }))
                    .unwrap_or_else(|_| Err("the decoder failed on this file".to_string()))
                })
                .collect();
            let mut batch = Batch {
                paths: Vec::new(),
                data: Vec::new(),
                size,
                channels,
                failed: Vec::new(),
            };
            for (path, r) in chunk.iter().zip(results) {
                match r {
                    Ok(x) => {
                        batch.paths.push(path.clone());
                        batch.data.extend(x);
                    }
                    Err(e) => batch.failed.push((path.clone(), strip_path(&e, path))),
                }
            }
            if tx.send(batch).is_err() {
                return; // the consumer stopped early
            }
        }
    });
    ImageBatches {
        rx: Some(rx),
        worker: Some(worker),
        total,
    }
}

/// Decoding errors start with the file name; the failure already carries it.
fn strip_path(message: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_string()
}

impl Iterator for ImageBatches {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let batch = self.rx.as_ref()?.recv().ok();
        if batch.is_none() {
            self.rx = None;
            if let Some(w) = self.worker.take() {
                let _ = w.join();
            }
        }
        batch
    }
}

impl Drop for ImageBatches {
    fn drop(&mut self) {
        // Closing the channel first lets the worker stop at its next send.
        self.rx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}
