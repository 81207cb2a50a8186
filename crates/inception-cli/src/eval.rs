//! `inception eval`: accuracy of any classifier on an ImageFolder, with a confusion matrix.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use inception::predict::{Classifier, LoadOptions};
use inception::train::{evaluate_folder, report::confusion_svg};

use crate::Warning;

#[derive(Args)]
pub struct EvalArgs {
    /// Weights: a file (.pth, .safetensors, .h5, .keras, .onnx) or a pretrained name.
    #[arg(long, value_name = "FILE|NAME")]
    weights: String,
    /// Architecture, when it cannot be recognised from the weights.
    #[arg(long)]
    model: Option<String>,
    /// ImageFolder: DIR/<class>/<images>; class folders are matched to the model's class names
    /// (or are class indices).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Images per forward pass.
    #[arg(long, value_name = "N", default_value_t = 32)]
    batch: usize,
    /// Write confusion.svg, confusion.png and eval.json into this folder.
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Print the evaluation as JSON on stdout (top1, top5, loss, count, classes, per_class,
    /// confusion).
    #[arg(long)]
    json: bool,
}

pub fn eval(args: EvalArgs) -> Result<()> {
    if args.batch == 0 {
        anyhow::bail!("--batch 0: at least one image per forward pass is needed");
    }
    let options = LoadOptions {
        model: crate::run::model_source(args.model.as_deref())?,
        cache: Some(crate::progress::download_cache()?),
        ..Default::default()
    };
    let clf = Classifier::load(&args.weights, &options)?;
    let (eval, classes, failed) = evaluate_folder(&clf, &args.data, args.batch)?;
    for (path, why) in &failed {
        eprintln!("error: {}: {why}", path.display());
    }
    let report = serde_json::json!({
        "weights": args.weights,
        "data": args.data.display().to_string(),
        "top1": eval.top1,
        "top5": eval.top5,
        "loss": eval.loss,
        "count": eval.count,
        "classes": classes,
        "per_class": eval.per_class,
        "confusion": eval.confusion,
        "skipped": failed.len(),
    });
    if let Some(dir) = &args.output {
        std::fs::create_dir_all(dir)?;
        let svg = confusion_svg(
            &format!("{} on {}", args.weights, args.data.display()),
            &classes,
            &eval.confusion,
        );
        inception::files::write_atomic(&dir.join("confusion.svg"), svg.as_bytes())?;
        let png = inception::diagram::svg_to_png(&svg, 1.0).map_err(anyhow::Error::msg)?;
        inception::files::write_atomic(&dir.join("confusion.png"), &png)?;
        inception::files::write_atomic(
            &dir.join("eval.json"),
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )?;
    }
    if args.json {
        println!("{report}");
    } else {
        // Top-5 says nothing with five classes or fewer (it is always 100%).
        let top5 = if clf.labels().len() > 5 {
            format!("  top-5 {:.2}%", 100.0 * eval.top5)
        } else {
            String::new()
        };
        println!(
            "top-1 {:.2}%{top5}  loss {:.4}  on {} images",
            100.0 * eval.top1,
            eval.loss,
            eval.count
        );
        println!("per class:");
        for (k, (name, acc)) in classes.iter().zip(&eval.per_class).enumerate() {
            let n: usize = eval.confusion[k].iter().sum();
            println!("  {name:<24} {:6.2}%  ({n} images)", 100.0 * acc);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Warning::partial(format!(
            "{} image(s) could not be read and were skipped",
            failed.len()
        ))
        .into())
    }
}
