//! Evaluation: accuracy, top-5, loss, per-class accuracy and the confusion matrix, on an
//! in-memory set or an ImageFolder read as `inception classify` reads it.

use burn::tensor::{Tensor, TensorData};
use image::RgbImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::dataset::ImageSet;
use super::loss::cross_entropy;
use super::trainer::scalar;
use crate::data::Preset;
use crate::error::{Error, Result};
use crate::network::Network;

/// Accuracy and loss of a classifier on a labelled set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Top-1 accuracy.
    pub top1: f64,
    /// Top-k accuracy with k = min(5, classes).
    pub top5: f64,
    /// Accuracy per class (NaN-free: 0 for a class without images).
    pub per_class: Vec<f64>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Images evaluated.
    pub count: usize,
}

impl Evaluation {
    /// The figures of `count` images from their confusion matrix (rows: true classes), the sum
    /// of their losses and how many had the true class among the top five.
    fn from_confusion(
        confusion: Vec<Vec<usize>>,
        loss_sum: f64,
        top5_hits: usize,
        count: usize,
    ) -> Self {
        let per_class = confusion
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let total: usize = row.iter().sum();
                if total == 0 {
                    0.0
                } else {
                    row[i] as f64 / total as f64
                }
            })
            .collect();
        let correct: usize = confusion.iter().enumerate().map(|(i, row)| row[i]).sum();
        let n = count.max(1) as f64;
        Self {
            loss: loss_sum / n,
            top1: correct as f64 / n,
            top5: top5_hits as f64 / n,
            per_class,
            confusion,
            count,
        }
    }
}

/// Evaluates `network` (main head, evaluation mode) on `set`, preprocessed with `preset` as
/// `inception classify` would.
pub fn evaluate(
    network: &Network,
    set: &ImageSet,
    preset: &Preset,
    batch: usize,
) -> Result<Evaluation> {
    let graph = network.graph();
    let classes = graph.nodes[graph.main_output().node].shape.channels();
    if let Some(&l) = set.labels.iter().find(|&&l| l >= classes) {
        return Err(Error::config(
            "label",
            l,
            format!("out of range for a {classes}-class classifier"),
        ));
    }
    let mut confusion = vec![vec![0usize; classes]; classes];
    let (mut loss, mut top5) = (0.0f64, 0usize);
    let k = classes.min(5);
    let device = network.device();
    let (s, c) = (preset.input_size(), preset.channels());
    // One plan of the fast engine for every batch (on the CPU).
    let plan = crate::engine::Cached::default();
    let main = network.graph().main_output().node;
    for start in (0..set.len()).step_by(batch.max(1)) {
        let idx: Vec<usize> = (start..(start + batch).min(set.len())).collect();
        let data: Vec<f32> = idx
            .par_iter()
            .flat_map_iter(|&i| preset.apply(&to_rgb(set, i)))
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(data, [idx.len(), c, s, s]), &device);
        let logits = plan.run(network, x, &[main])?.remove(0).flat();
        let labels: Vec<usize> = idx.iter().map(|&i| set.labels[i]).collect();
        loss += scalar(cross_entropy(logits.clone(), &labels, 0.0)) * idx.len() as f64;
        let [n, nc] = logits.dims();
        let v = logits.into_data().try_to_vec::<f32>().unwrap_or_default();
        for (r, &label) in labels.iter().enumerate().take(n) {
            let row = &v[r * nc..(r + 1) * nc];
            let mut order: Vec<usize> = (0..nc).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            confusion[label][order[0]] += 1;
            top5 += order[..k].contains(&label) as usize;
        }
    }
    Ok(Evaluation::from_confusion(confusion, loss, top5, set.len()))
}

/// Image `i` of a set as 8-bit RGB (grey expanded), the form the presets take.
pub fn to_rgb(set: &ImageSet, i: usize) -> RgbImage {
    let [h, w] = set.size;
    let px = set.image(i);
    let raw: Vec<u8> = if set.channels == 1 {
        px.iter().flat_map(|&v| [v, v, v]).collect()
    } else {
        px.to_vec()
    };
    RgbImage::from_raw(w as u32, h as u32, raw).expect("sizes agree")
}

/// Evaluates a classifier on an ImageFolder (`dir/<class>/<images>`) exactly as `inception
/// classify` sees the images (decoded and preprocessed with the classifier's preset, in
/// parallel). Folder names are matched to the classifier's class names (or taken as class
/// indices when they are numbers). Rows and columns of the confusion matrix are the folder's
/// classes, plus a last column for predictions outside them. Unreadable files are returned.
pub fn evaluate_folder(
    classifier: &crate::predict::Classifier,
    dir: &std::path::Path,
    batch: usize,
) -> Result<(Evaluation, Vec<String>, Vec<crate::data::Failure>)> {
    use crate::data::pipeline::{image_batches, is_image_path};
    let mut classes: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !n.starts_with('.'))
        .collect();
    classes.sort();
    if classes.is_empty() {
        return Err(Error::format(format!(
            "no class folders (expected {}/<class>/<image files>)",
            dir.display()
        ))
        .in_file(dir));
    }
    let names = classifier.labels().names();
    let model_index: Vec<usize> = classes
        .iter()
        .map(|c| {
            names
                .iter()
                .position(|n| n == c)
                .or_else(|| c.parse::<usize>().ok().filter(|&i| i < names.len()))
                .ok_or_else(|| {
                    Error::unknown_of_many(
                        crate::error::NameKind::Class,
                        c.as_str(),
                        Some(dir.display().to_string()),
                        names,
                        5,
                    )
                })
        })
        .collect::<Result<_>>()?;
    let mut files = Vec::new();
    let mut truth = std::collections::HashMap::new();
    for (k, class) in classes.iter().enumerate() {
        for entry in walkdir::WalkDir::new(dir.join(class))
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_map(|e| e.ok())
        {
            if entry.file_type().is_file() && is_image_path(entry.path()) {
                truth.insert(entry.path().to_path_buf(), k);
                files.push(entry.into_path());
            }
        }
    }
    let n = classes.len();
    let mut confusion = vec![vec![0usize; n + 1]; n];
    let (mut loss, mut top5, mut failed) = (0.0f64, 0usize, Vec::new());
    let device = classifier.network().device();
    for b in image_batches(files, classifier.preset().clone(), batch) {
        failed.extend(b.failed.iter().cloned());
        if b.is_empty() {
            continue;
        }
        let probs = classifier.probabilities(b.tensor(&device))?;
        let [rows, nc] = probs.dims();
        let v = probs.into_data().try_to_vec::<f32>().unwrap_or_default();
        for (r, path) in b.paths.iter().enumerate().take(rows) {
            let k = truth[path];
            let want = model_index[k];
            let row = &v[r * nc..(r + 1) * nc];
            loss -= (row[want].max(1e-12) as f64).ln();
            let mut order: Vec<usize> = (0..nc).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            let col = model_index.iter().position(|&m| m == order[0]).unwrap_or(n);
            confusion[k][col] += 1;
            top5 += order[..nc.min(5)].contains(&want) as usize;
        }
    }
    let count: usize = confusion.iter().map(|r| r.iter().sum::<usize>()).sum();
    Ok((
        Evaluation::from_confusion(confusion, loss, top5, count),
        classes,
        failed,
    ))
}
