//! `inception classify` and `inception features`: photos in, top-k classes or vectors out.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use inception::Pooling;
use inception::burn::tensor::{Device, Tensor};
use inception::data::{Batch, Failure, Preset, collect_images, image_batches};
use inception::files::{Array, write_arrays_with_metadata};
use inception::predict::{Classifier, FeatureExtractor, LoadOptions};
use indicatif::{ProgressBar, ProgressStyle};

use crate::Warning;
use crate::choices::{PoolingChoice, PresetChoice};
use crate::run::model_source;

/// What `classify` and `features` share: the weights, the images, batching and preprocessing.
#[derive(Args)]
pub struct ImageArgs {
    /// Weights: a file (.pth, .safetensors, .h5, .keras, .onnx), a pretrained name (see
    /// `inception pretrained`), or `imagenet` with --model.
    #[arg(long, value_name = "FILE|NAME")]
    weights: String,
    /// Architecture, when it cannot be recognised from the weights (or a .keras model file).
    #[arg(long)]
    model: Option<String>,
    /// Image files and folders; folders are searched recursively for .jpg, .jpeg, .png, .gif,
    /// .bmp, .tif, .tiff, .webp files.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Images per forward pass.
    #[arg(long, value_name = "N", default_value_t = 16)]
    batch: usize,
    /// Preprocessing instead of the weights' own.
    #[arg(long, value_name = "NAME")]
    preset: Option<PresetChoice>,
    /// Square input size (built-in models only; default: the checkpoint's).
    #[arg(long, value_name = "N")]
    input_size: Option<usize>,
    /// Prepend torchvision's transform_input (the published torchvision checkpoints get it
    /// automatically).
    #[arg(long)]
    transform_input: bool,
}

impl ImageArgs {
    fn options(&self) -> Result<LoadOptions> {
        if self.batch == 0 {
            bail!("--batch must be at least 1");
        }
        let preset = self
            .preset
            .map(|p| p.preset(self.input_size.unwrap_or(224)))
            .transpose()?;
        Ok(LoadOptions {
            model: model_source(self.model.as_deref())?,
            preset,
            input_size: self.input_size,
            transform_input: self.transform_input,
            cache: Some(crate::progress::download_cache()?),
        })
    }

    /// Runs `each` on every batch of the images, with a progress bar and failures reported on
    /// stderr as they come; fails at the end if any image could not be used.
    fn for_each_batch(
        &self,
        preset: &Preset,
        verb: &str,
        mut each: impl FnMut(&Batch, Tensor<4>) -> Result<()>,
    ) -> Result<Vec<Failure>> {
        let (files, mut failed) = collect_images(&self.paths);
        for (path, why) in &failed {
            eprintln!("error: {}: {why}", path.display());
        }
        if files.is_empty() {
            bail!(
                "no images found in {} (looked for {} files)",
                self.paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                inception::data::IMAGE_EXTENSIONS.join(", ")
            );
        }
        let total = files.len();
        let bar = ProgressBar::new(total as u64).with_style(
            ProgressStyle::with_template(
                "{spinner} {pos}/{len} images [{wide_bar}] {per_sec} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        if total <= self.batch {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let start = Instant::now();
        let device = Device::default();
        let mut ok = 0;
        for batch in image_batches(files, preset.clone(), self.batch) {
            for (path, why) in &batch.failed {
                bar.suspend(|| eprintln!("error: {}: {why}", path.display()));
            }
            failed.extend(batch.failed.iter().cloned());
            if !batch.is_empty() {
                each(&batch, batch.tensor(&device))?;
                ok += batch.len();
            }
            bar.inc((batch.len() + batch.failed.len()) as u64);
        }
        bar.finish_and_clear();
        let secs = start.elapsed().as_secs_f64();
        if total > self.batch {
            eprintln!(
                "{verb} {ok} images in {secs:.1} s ({:.1} images/s)",
                ok as f64 / secs.max(1e-9)
            );
        }
        Ok(failed)
    }
}

fn partial(failed: &[Failure], total_ok: usize) -> Result<()> {
    if failed.is_empty() {
        return Ok(());
    }
    if total_ok == 0 {
        bail!("none of the {} inputs could be read", failed.len());
    }
    Err(Warning::partial(format!(
        "{} input(s) could not be read and were skipped (see above); {total_ok} processed",
        failed.len()
    ))
    .into())
}

#[derive(Args)]
pub struct ClassifyArgs {
    #[command(flatten)]
    images: ImageArgs,
    /// How many classes to show per image.
    #[arg(long, value_name = "K", default_value_t = 5)]
    top: usize,
    /// One JSON object per line and image: {"file", "predictions": [{"index", "label",
    /// "probability"}]}.
    #[arg(long)]
    json: bool,
}

pub fn classify(args: ClassifyArgs) -> Result<()> {
    let options = args.images.options()?;
    let classifier = Classifier::load(&args.images.weights, &options)?;
    let mut out = std::io::stdout().lock();
    let mut ok = 0;
    let failed = args
        .images
        .for_each_batch(classifier.preset(), "classified", |batch, x| {
            let preds = classifier.predict(x, args.top)?;
            let per_image = batch.data.len() / batch.len().max(1);
            for (k, (path, top)) in batch.paths.iter().zip(preds).enumerate() {
                ok += 1;
                let values = &batch.data[k * per_image..(k + 1) * per_image];
                if let Some(hint) = classifier.preset().brightness_hint(values) {
                    eprintln!("note: {}: {hint}", path.display());
                }
                if args.json {
                    let line = serde_json::json!({
                        "file": path.display().to_string(),
                        "predictions": top,
                    });
                    writeln!(out, "{line}")?;
                } else {
                    writeln!(out, "{}", path.display())?;
                    for p in top {
                        writeln!(
                            out,
                            "  {:>5}  {:<32} {:>7.3}%",
                            p.index,
                            p.label,
                            100.0 * p.probability
                        )?;
                    }
                }
            }
            out.flush()?;
            Ok(())
        })?;
    partial(&failed, ok)
}

#[derive(Args)]
pub struct FeaturesArgs {
    #[command(flatten)]
    images: ImageArgs,
    /// Output: .npy ([N, D] float32), .safetensors (`features` [N, D] and the file names in the
    /// metadata) or .csv (a `file` column then D values).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Pooling of feature maps, with or without --layer (none: the whole map, flattened in the
    /// model's layout).
    #[arg(long, value_name = "MODE", value_enum, default_value_t = PoolingChoice::Avg)]
    pooling: PoolingChoice,
    /// Take this layer's or block's activation (e.g. inception4e, Mixed_6e, mixed5) instead of
    /// the backbone's output.
    #[arg(long, value_name = "NAME")]
    layer: Option<String>,
}

pub fn features(args: FeaturesArgs) -> Result<()> {
    let ext = args
        .output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if !["npy", "safetensors", "csv"].contains(&ext.as_str()) {
        bail!(
            "{}: unknown output format; use .npy, .safetensors or .csv",
            args.output.display()
        );
    }
    let options = args.images.options()?;
    let pooling = args.pooling.pooling()?;
    let extractor = FeatureExtractor::load(
        &args.images.weights,
        &options,
        args.layer.as_deref(),
        pooling,
    )?;
    let dim = extractor.dim();
    let mut files: Vec<String> = Vec::new();
    let mut data: Vec<f32> = Vec::new();
    let failed = args
        .images
        .for_each_batch(extractor.preset(), "embedded", |batch, x| {
            let v = extractor.extract(x)?;
            data.extend(
                v.into_data()
                    .try_to_vec::<f32>()
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?,
            );
            files.extend(batch.paths.iter().map(|p| p.display().to_string()));
            Ok(())
        })?;
    if files.is_empty() {
        return partial(&failed, 0);
    }
    let pooling_name = match extractor.pooling() {
        Some(Pooling::Avg) => "avg",
        Some(Pooling::Max) => "max",
        None => "none",
    };
    if ext == "csv" {
        write_csv(&args.output, &files, &data, dim)?;
    } else {
        let meta = BTreeMap::from([
            ("files".to_string(), serde_json::to_string(&files)?),
            ("layer".to_string(), extractor.layer().to_string()),
            ("pooling".to_string(), pooling_name.to_string()),
            (
                "preprocessing".to_string(),
                serde_json::to_string(extractor.preset())?,
            ),
            ("weights".to_string(), args.images.weights.clone()),
        ]);
        let array = Array {
            shape: vec![files.len(), dim],
            data,
        };
        write_arrays_with_metadata(&args.output, &[("features".to_string(), array)], &meta)?;
    }
    eprintln!(
        "{}: {} vectors of {dim} ({} of {}, pooling {pooling_name}) written to {}",
        args.images.weights,
        files.len(),
        extractor.layer(),
        extractor.network().graph().name(),
        args.output.display()
    );
    partial(&failed, files.len())
}

fn write_csv(path: &std::path::Path, files: &[String], data: &[f32], dim: usize) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["file".to_string()];
    header.extend((0..dim).map(|i| format!("f{i}")));
    w.write_record(&header)?;
    for (file, row) in files.iter().zip(data.chunks(dim)) {
        let mut rec = vec![file.clone()];
        rec.extend(row.iter().map(|v| v.to_string()));
        w.write_record(&rec)?;
    }
    let bytes = w.into_inner().context("writing CSV")?;
    inception::files::write_atomic(path, &bytes)?;
    Ok(())
}
