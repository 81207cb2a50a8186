//! What a training run shows and leaves: a progress bar (or lines in a log), one line per
//! epoch, the CSV log and curves, the checkpoint after every epoch, Ctrl-C handling, and at the
//! end the model, its evaluation and a few classified examples.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use inception::train::{Event, ImageSet, TrainConfig, Trainer, evaluate, runs, save_model};
use indicatif::{ProgressBar, ProgressStyle};

/// The options every training run takes (`train` and `finetune`).
#[derive(Args)]
pub struct RunArgs {
    /// Fraction of each class held out for validation when DIR has no val/ folder.
    #[arg(long, value_name = "F", default_value_t = 0.2)]
    pub val_fraction: f64,
    /// Seed of initialisation, shuffling, augmentation and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep an exponential moving average of the weights (Polyak averaging) with this decay and
    /// evaluate and save it (the paper recipes use 0.9999).
    #[arg(long, value_name = "DECAY")]
    pub ema: Option<f64>,
    /// Devices, comma-separated: cpu (Burn's CPU backend, the default), or with a GPU build
    /// cuda:0,cuda:1 / wgpu:0 … — several train data-parallel (each batch split between them).
    #[arg(long, value_name = "LIST", default_value = "cpu")]
    pub devices: String,
    /// Output folder: model.safetensors, checkpoint.safetensors, log.csv, curves.svg/.png.
    /// Default: a new numbered folder (runs/train, runs/train2, …; runs/finetune, …); with
    /// train --resume, the checkpoint's folder (the latest run's without a FILE).
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<std::path::PathBuf>,
    /// Start a new run in an --output folder that already holds one (its model and checkpoint
    /// are replaced).
    #[arg(long)]
    pub exist_ok: bool,
    /// Print the final evaluation as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `42 s`, `3 min 5 s`, `1 h 12 min`.
fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// `1 class`, `3 classes`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Set by Ctrl-C: the run stops at the next step and keeps its last epoch's checkpoint.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C handler (once).
fn catch_ctrl_c() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The first Ctrl-C finishes the step and keeps the last checkpoint; a second one quits
        // at once (the checkpoint on disk is still whole: it is only ever replaced by rename).
        let _ = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    });
}

/// Runs `trainer` with a progress bar per epoch (lines in a log) and one line after it; the
/// library rewrites the CSV log, the curves and the checkpoint in `out` after every epoch.
/// Ctrl-C stops at the next step with the last epoch's checkpoint kept.
pub fn fit_and_report(
    trainer: &mut Trainer,
    train: &ImageSet,
    val: &ImageSet,
    classes: &[String],
    title: &str,
    out: &Path,
) -> Result<()> {
    catch_ctrl_c();
    for path in runs::remove_stale_temporaries(out) {
        eprintln!("removed {}, left by an interrupted run", path.display());
    }
    let epochs = trainer.config.epochs;
    let batch_size = trainer.config.batch_size;
    let folder = runs::RunFolder {
        dir: out,
        title,
        classes,
    };
    // A terminal gets a progress bar; a log file or a pipe gets a line every tenth of an epoch
    // (or every 30 s), so a long epoch is never silent.
    let terminal = std::io::stderr().is_terminal();
    let mut estimated = false;
    let mut bar: Option<ProgressBar> = None;
    let mut started = Instant::now();
    let mut last_line = Instant::now();
    let mut on = |event: Event| -> bool {
        match event {
            Event::Step {
                epoch,
                batch,
                batches,
                loss,
                lr,
            } => {
                if batch == 1 {
                    started = Instant::now();
                }
                let elapsed = started.elapsed().as_secs_f64();
                let per_batch = elapsed / batch as f64;
                // An estimate once the first steps have run.
                if !estimated && batch == 5.min(batches) {
                    estimated = true;
                    let epoch_secs = per_batch * batches as f64;
                    let left = epochs + 1 - epoch;
                    eprintln!(
                        "about {} per epoch ({:.0} images/s), {} for the {left} epoch{} left",
                        duration(epoch_secs),
                        (batch * batch_size) as f64 / elapsed.max(1e-9),
                        duration(epoch_secs * left as f64),
                        if left == 1 { "" } else { "s" }
                    );
                }
                if terminal {
                    let b = bar.get_or_insert_with(|| {
                        ProgressBar::new(batches as u64).with_style(
                            ProgressStyle::with_template(
                                "epoch {prefix} [{wide_bar}] {pos}/{len} {msg} ETA {eta}",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                        )
                    });
                    b.set_prefix(format!("{epoch}/{epochs}"));
                    b.set_position(batch as u64);
                    b.set_message(format!("loss {loss:.4} lr {lr:.2e}"));
                } else if batch == batches
                    || batch % (batches / 10).max(1) == 0
                    || last_line.elapsed().as_secs() >= 30
                {
                    last_line = Instant::now();
                    eprintln!(
                        "epoch {epoch}/{epochs} batch {batch}/{batches} loss {loss:.4} lr {lr:.2e} ({} left in the epoch)",
                        duration(per_batch * (batches - batch) as f64)
                    );
                }
            }
            Event::Epoch(s) => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                eprintln!(
                    "epoch {:>3}/{}  loss {:.4}  train {:6.2}%  val loss {:.4}  val {:6.2}%{}  {:.0} img/s  {:.0} s",
                    s.epoch,
                    epochs,
                    s.train_loss,
                    100.0 * s.train_top1,
                    s.val_loss,
                    100.0 * s.val_top1,
                    if classes.len() > 5 {
                        format!(" (top-5 {:6.2}%)", 100.0 * s.val_top5)
                    } else {
                        String::new()
                    },
                    s.images_per_sec,
                    s.seconds
                );
            }
        }
        !INTERRUPTED.load(Ordering::SeqCst)
    };
    let completed = trainer.fit_into(train, val, &folder, &mut on)?;
    if let Some(b) = bar.take() {
        b.finish_and_clear();
    }
    if !completed {
        let checkpoint = folder.checkpoint();
        bail!(crate::Warning::interrupted(format!(
            "interrupted during epoch {} of {epochs}; {}",
            trainer.epoch + 1,
            if checkpoint.is_file() {
                format!(
                    "the checkpoint of epoch {} is in {}: continue with --resume {}",
                    trainer.epoch,
                    checkpoint.display(),
                    checkpoint.display()
                )
            } else {
                "no epoch had finished, nothing was saved".to_string()
            }
        )));
    }
    Ok(())
}

/// Saves the model, evaluates it, prints the result and a few classified examples.
pub fn finish(
    trainer: &Trainer,
    val: &ImageSet,
    classes: &[String],
    out: &Path,
    json: bool,
) -> Result<()> {
    let cfg = &trainer.config;
    let model_path = out.join("model.safetensors");
    // The weights that are evaluated are the ones saved: the moving average when there is one.
    let net = trainer.inference_network();
    save_model(&model_path, &net, cfg, classes, &trainer.history)?;
    let eval = evaluate(&net, val, &cfg.preset(), 256)?;
    let secs: f64 = trainer.history.iter().map(|h| h.seconds).sum();
    eprintln!(
        "done in {:.0} s: validation top-1 {:.2}%{} on {} images; model in {}",
        secs,
        100.0 * eval.top1,
        if classes.len() > 5 {
            format!(", top-5 {:.2}%", 100.0 * eval.top5)
        } else {
            String::new()
        },
        eval.count,
        model_path.display()
    );
    show_examples(&net, val, cfg, classes)?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "model": model_path.display().to_string(),
                "seconds": secs,
                "evaluation": eval,
                "history": trainer.history,
                "config": cfg,
            })
        );
    }
    Ok(())
}

/// Classifies a few held-out images and prints them (as small ASCII pictures for digits).
fn show_examples(
    net: &inception::Network,
    val: &ImageSet,
    cfg: &TrainConfig,
    classes: &[String],
) -> Result<()> {
    use inception::data::Labels;
    use inception::predict::Classifier;
    let clf = Classifier::new(net.clone(), cfg.preset(), Labels::new(classes.to_vec()))?;
    let mut picks: Vec<usize> = (0..8).map(|k| k * val.len() / 8).collect();
    picks.dedup(); // fewer than eight held-out images

    let images: Vec<_> = picks
        .iter()
        .map(|&i| inception::train::evaluation::to_rgb(val, i))
        .collect();
    let preds = clf.classify(&images, 1);
    eprintln!("held-out examples:");
    for ((&i, img), p) in picks.iter().zip(&images).zip(preds) {
        let top = &p[0];
        let truth = &classes[val.labels[i]];
        eprintln!(
            "  #{i:<5} true {truth:<8} predicted {:<8} {:5.1}% {}",
            top.label,
            100.0 * top.probability,
            if &top.label == truth { "✓" } else { "✗" }
        );
        if val.size == [28, 28] {
            for line in ascii(img) {
                eprintln!("        {line}");
            }
        }
    }
    Ok(())
}

/// A 28x28 image as 14 lines of 28 characters (two pixel rows per line).
fn ascii(img: &image::RgbImage) -> Vec<String> {
    const SHADES: [char; 5] = [' ', '░', '▒', '▓', '█'];
    (0..img.height() / 2)
        .map(|r| {
            (0..img.width())
                .map(|x| {
                    let v = (img.get_pixel(x, 2 * r)[0] as u32
                        + img.get_pixel(x, 2 * r + 1)[0] as u32)
                        / 2;
                    SHADES[(v as usize * SHADES.len() / 256).min(SHADES.len() - 1)]
                })
                .collect()
        })
        .collect()
}
