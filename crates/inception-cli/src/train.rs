//! `inception train`: the training loop with a progress bar, per-epoch lines, the CSV log, the
//! curves and an atomically written model.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use inception::models::{Arch, ModelConfig};
use inception::train::{
    Decay, Event, ImageSet, OptimizerKind, Recipe, TrainConfig, Trainer, evaluate, load_checkpoint,
    report, runs, save_checkpoint, save_model,
};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args)]
pub struct TrainArgs {
    /// Architecture to train.
    #[arg(long, default_value = "inception-mini")]
    model: String,
    /// ImageFolder dataset: DIR/<class>/*.jpg, with train/ and val/ sub-folders or split at
    /// random (--val-fraction). Default: the 10,000 digits built into the binary.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Hyper-parameter bundle: digits, googlenet-paper, inception-v3-paper (default: digits for
    /// inception-mini, the paper's recipe for googlenet / inception-v3).
    #[arg(long, value_name = "NAME")]
    recipe: Option<String>,
    /// Epochs.
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    /// Images per step.
    #[arg(long, value_name = "N")]
    batch: Option<usize>,
    /// Base learning rate.
    #[arg(long, value_name = "LR")]
    lr: Option<f64>,
    /// Optimizer: sgd, nesterov, rmsprop, adamw.
    #[arg(long, value_name = "NAME")]
    optimizer: Option<String>,
    /// Weight decay.
    #[arg(long, value_name = "WD")]
    weight_decay: Option<f64>,
    /// Learning-rate decay: constant, cosine, step:EVERY:GAMMA (e.g. step:8:0.96).
    #[arg(long, value_name = "SPEC")]
    schedule: Option<String>,
    /// Epochs of linear warm-up.
    #[arg(long, value_name = "EPOCHS")]
    warmup: Option<f64>,
    /// Clip the gradients' global norm.
    #[arg(long, value_name = "NORM")]
    clip_norm: Option<f64>,
    /// Label smoothing ε.
    #[arg(long, value_name = "EPS")]
    label_smoothing: Option<f32>,
    /// Weight of each auxiliary classifier's loss (0 trains without aux heads).
    #[arg(long, value_name = "W")]
    aux_weight: Option<f32>,
    /// Square input size (images are resized to it).
    #[arg(long, value_name = "N")]
    input_size: Option<usize>,
    /// Input channels (default: the model's; 1 for inception-mini).
    #[arg(long, value_name = "N")]
    channels: Option<usize>,
    /// Fraction of each class held out for validation when DIR has no val/ folder.
    #[arg(long, value_name = "F", default_value_t = 0.2)]
    val_fraction: f64,
    /// Seed of initialisation, shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep an exponential moving average of the weights (Polyak averaging) with this decay and
    /// evaluate and save it (the paper recipes use 0.9999).
    #[arg(long, value_name = "DECAY")]
    ema: Option<f64>,
    /// Devices, comma-separated: cpu (Burn's CPU backend, the default), or with a GPU build
    /// cuda:0,cuda:1 / wgpu:0 … — several train data-parallel (each batch split between them).
    #[arg(long, value_name = "LIST", default_value = "cpu")]
    devices: String,
    /// Continue a run from its checkpoint (default: OUTPUT/checkpoint.safetensors): weights,
    /// optimizer, schedule, moving average, epoch and random streams, exactly. --epochs may
    /// extend it; the other hyper-parameters are the checkpoint's.
    #[arg(long, value_name = "FILE")]
    #[allow(clippy::option_option)] // absent / `--resume` / `--resume FILE`
    resume: Option<Option<PathBuf>>,
    /// Output folder: model.safetensors, checkpoint.safetensors, log.csv, curves.svg/.png.
    /// Default: a new numbered folder (runs/train, runs/train2, …); with --resume, the
    /// checkpoint's folder (the latest run's without a FILE).
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Start a new run in an --output folder that already holds one (its model and checkpoint
    /// are replaced).
    #[arg(long)]
    exist_ok: bool,
    /// Print the final evaluation as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Where runs go by default: `runs/train`, `runs/train2`, … and `runs/finetune`, ….
const RUNS: &str = "runs";

pub fn train(args: TrainArgs) -> Result<()> {
    let devices = inception::device::parse_devices(&args.devices)?;
    check_ema(args.ema)?;
    // A resumed run takes everything from its checkpoint (the data are read as it read them).
    let resumed = match &args.resume {
        Some(path) => {
            let path = match (path, &args.output) {
                (Some(p), _) => p.clone(),
                (None, Some(o)) => o.join(runs::CHECKPOINT_FILE),
                (None, None) => runs::latest_run_dir(Path::new(RUNS), "train")
                    .map(|d| d.join(runs::CHECKPOINT_FILE))
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "no run to resume in {RUNS}/ (a run writes {RUNS}/trainN/{} after each epoch); \
                             name the checkpoint: --resume FILE",
                            runs::CHECKPOINT_FILE
                        )
                    })?,
            };
            if !path.is_file() {
                bail!(
                    "{}: no checkpoint to resume from (a run writes one after each epoch into its output folder)",
                    path.display()
                );
            }
            Some((load_checkpoint(&path, &devices[0])?, path))
        }
        None => None,
    };
    let output = match (&args.output, &resumed) {
        (Some(o), _) => o.clone(),
        (None, Some((_, path))) => path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        (None, None) => runs::next_run_dir(Path::new(RUNS), "train"),
    };
    if resumed.is_none() {
        runs::check_new_run_dir(&output, args.exist_ok)
            .map_err(|e| anyhow::anyhow!("{e} (--resume, -o DIR or --exist-ok)"))?;
    }
    let (arch, channels, size, seed) = match &resumed {
        Some(((t, _), _)) => {
            // As the run read them: a fine-tuning run at its pretrained preset's resize size.
            let preset = t.preset();
            (
                t.config.model.arch,
                preset.channels(),
                preset.resize_size(),
                t.config.seed,
            )
        }
        None => {
            let arch = Arch::from_name(&args.model)?;
            let (channels, size) = (
                args.channels.unwrap_or(arch.default_in_channels()),
                args.input_size.unwrap_or(arch.default_input_size()),
            );
            // Every option is checked before any image is read.
            let placeholder = ["a".to_string(), "b".to_string()];
            configure(&args, arch, channels, size, &placeholder, None)?;
            (arch, channels, size, args.seed)
        }
    };
    // The data: --data, else the folder the checkpoint recorded, else the embedded digits.
    let data = args.data.clone().or_else(|| {
        resumed
            .as_ref()
            .and_then(|((t, _), _)| t.config.data.clone())
    });
    let (train, val) = match &data {
        None => {
            let (train, test) = ImageSet::digits()?;
            (train.with_channels(channels), test.with_channels(channels))
        }
        Some(dir) => {
            eprintln!("reading {} …", dir.display());
            let (train, val, failed) =
                ImageSet::folder_splits(dir, channels, size, args.val_fraction, seed)?;
            for (path, why) in &failed {
                eprintln!("warning: skipped {}: {why}", path.display());
            }
            (train, val)
        }
    };
    let classes = train.classes.clone();
    std::fs::create_dir_all(&output)
        .with_context(|| format!("{}: cannot create the output folder", output.display()))?;
    let trainer = match resumed {
        Some(((mut t, saved), path)) => {
            if saved != classes {
                bail!(
                    "{}: the checkpoint's classes [{}] differ from the data's [{}]{}",
                    path.display(),
                    saved.join(", "),
                    classes.join(", "),
                    if data.is_none() {
                        "; give the run's folder with --data DIR"
                    } else {
                        ""
                    }
                );
            }
            if let Some(e) = args.epochs {
                t.config = t.config.clone().with_epochs(e.max(t.epoch));
            }
            eprintln!(
                "resuming {} from epoch {} of {} ({})",
                t.config.model.arch,
                t.epoch,
                t.config.epochs,
                path.display()
            );
            t
        }
        None => {
            let mut cfg = configure(&args, arch, channels, size, &classes, Some(&train))?;
            cfg.data = data
                .as_ref()
                .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone()));
            Trainer::new(cfg, &devices[0])?
        }
    };
    let mut trainer = trainer.with_devices(&devices);
    let cfg = &trainer.config;
    let params = cfg.model.graph()?.params().trainable;
    let batches = train.len() / cfg.batch_size;
    eprintln!(
        "training {} ({} parameters{}) on {} images of {}, validating on {}; {} epoch{} of {} batch{} of {} at {}x{}{} → {}",
        cfg.model.arch,
        inception::summary::group_digits(params as u64),
        if cfg.model.aux_logits {
            format!(", aux heads × {}", cfg.aux_weight)
        } else {
            String::new()
        },
        train.len(),
        plural(classes.len(), "class", "classes"),
        val.len(),
        cfg.epochs,
        if cfg.epochs == 1 { "" } else { "s" },
        batches,
        if batches == 1 { "" } else { "es" },
        cfg.batch_size,
        cfg.model.input_size[0],
        cfg.model.input_size[1],
        if devices.len() > 1 {
            format!(", data-parallel on {} devices", devices.len())
        } else {
            String::new()
        },
        output.display()
    );
    let title = format!("{} on {}", trainer.config.model.arch, data_name(&data));
    fit_and_report(&mut trainer, &train, &val, &classes, &title, &output)?;
    finish(&trainer, &val, &classes, &output, args.json)
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

/// The training configuration of a new run: the recipe, then the options given. Without
/// `train` (options checked before the data are read) the normalisation is a placeholder.
fn configure(
    args: &TrainArgs,
    arch: Arch,
    channels: usize,
    size: usize,
    classes: &[String],
    train: Option<&ImageSet>,
) -> Result<TrainConfig> {
    let model = ModelConfig::new(arch)
        .with_classes(classes.len())
        .with_in_channels(channels)
        .with_input_size(size)
        .with_aux_logits(args.aux_weight.is_none_or(|w| w > 0.0) && arch.has_aux_heads());
    let recipe = match &args.recipe {
        Some(r) => Recipe::parse(r)?,
        None => match arch {
            Arch::InceptionMini => Recipe::Digits,
            Arch::InceptionV3 | Arch::InceptionV3Keras => Recipe::InceptionV3Paper,
            _ => Recipe::GoogLeNetPaper,
        },
    };
    let (mean, std) = match train {
        Some(t) => t.mean_std(),
        None => (vec![0.5; channels], vec![0.25; channels]),
    };
    let mut cfg = TrainConfig::recipe_with_normalization(recipe, model.clone(), mean, std);
    // Inception v3 below 299x299 has no room for its aux head (17x17 maps shrink below the
    // head's 5x5 pooling): train without it, and say so. Any other error is the real one.
    if cfg.model.aux_logits
        && let Err(e) = cfg.model.graph()
    {
        let without = model.with_aux_logits(false);
        if without.graph().is_err() {
            return Err(e.into());
        }
        if train.is_some() {
            eprintln!("note: {e}; training without aux heads");
        }
        cfg.model = without;
    }
    if let Some(e) = args.epochs {
        cfg = cfg.with_epochs(e);
    }
    if let Some(b) = args.batch {
        cfg.batch_size = b;
    }
    if let Some(lr) = args.lr {
        cfg.schedule.lr = lr;
    }
    if let Some(o) = &args.optimizer {
        cfg.optimizer = OptimizerKind::parse(o)?;
    }
    if let Some(wd) = args.weight_decay {
        cfg.weight_decay = wd;
    }
    if let Some(s) = &args.schedule {
        cfg.schedule.decay = Decay::parse(s)?;
    }
    if let Some(w) = args.warmup {
        cfg.schedule.warmup_epochs = w;
    }
    if args.clip_norm.is_some() {
        cfg.clip_norm = args.clip_norm;
    }
    if let Some(ls) = args.label_smoothing {
        cfg.label_smoothing = ls;
    }
    if let Some(w) = args.aux_weight {
        cfg.aux_weight = w;
    }
    cfg.seed = args.seed;
    if args.ema.is_some() {
        cfg.ema_decay = args.ema;
    }
    if args.data.is_some() && !(args.val_fraction > 0.0 && args.val_fraction < 1.0) {
        bail!(
            "--val-fraction {}: it must be between 0 and 1 (e.g. 0.2)",
            args.val_fraction
        );
    }
    cfg.validate()?;
    Ok(cfg)
}

fn check_ema(ema: Option<f64>) -> Result<()> {
    match ema {
        Some(d) if !(0.0..1.0).contains(&d) => {
            bail!("--ema {d}: the decay must be in [0, 1), e.g. 0.9999")
        }
        _ => Ok(()),
    }
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

/// Runs `trainer` with a progress bar per epoch and one line after it; after every epoch the
/// CSV log, the curves and the checkpoint (`checkpoint.safetensors`, atomically) are rewritten
/// in `out`. Ctrl-C stops at the next step with the last epoch's checkpoint kept.
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
    let checkpoint = out.join(runs::CHECKPOINT_FILE);
    let batch_size = trainer.config.batch_size;
    // A terminal gets a progress bar; a log file or a pipe gets a line every tenth of an epoch
    // (or every 30 s), so a long epoch is never silent.
    let terminal = std::io::stderr().is_terminal();
    let mut estimated = false;
    while trainer.epoch < epochs {
        let mut bar: Option<ProgressBar> = None;
        let started = Instant::now();
        let mut last_line = Instant::now();
        let mut on = |event: Event| -> bool {
            if let Event::Step {
                epoch,
                batch,
                batches,
                loss,
                lr,
            } = event
            {
                let elapsed = started.elapsed().as_secs_f64();
                let per_batch = elapsed / batch as f64;
                // An estimate once the first steps have run.
                if !estimated && (batch == 5.min(batches)) {
                    estimated = true;
                    let epoch_secs = per_batch * batches as f64;
                    eprintln!(
                        "about {} per epoch ({:.0} images/s), {} for the {} epoch{} left",
                        duration(epoch_secs),
                        (batch * batch_size) as f64 / elapsed.max(1e-9),
                        duration(epoch_secs * (epochs - epoch + 1) as f64),
                        epochs - epoch + 1,
                        if epochs - epoch == 0 { "" } else { "s" }
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
            !INTERRUPTED.load(Ordering::SeqCst)
        };
        let stats = trainer.train_epoch(train, val, &mut on)?;
        if let Some(b) = bar.take() {
            b.finish_and_clear();
        }
        let Some(s) = stats else {
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
        };
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
        write_outputs(out, title, &trainer.history)?;
        save_checkpoint(&checkpoint, trainer, classes)?;
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
    let eval = evaluate(&net, val, &cfg.preset(), 256);
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

fn data_name(data: &Option<PathBuf>) -> String {
    match data {
        None => "the embedded digits".into(),
        Some(d) => d.display().to_string(),
    }
}

fn write_outputs(
    dir: &std::path::Path,
    title: &str,
    history: &[inception::train::EpochStats],
) -> Result<()> {
    report::write_csv(&dir.join("log.csv"), history)?;
    let svg = report::curves_svg(title, history);
    inception::files::write_atomic(&dir.join("curves.svg"), svg.as_bytes())?;
    #[cfg(feature = "png")]
    {
        let png = inception::diagram::svg_to_png(&svg, 1.0).map_err(anyhow::Error::msg)?;
        inception::files::write_atomic(&dir.join("curves.png"), &png)?;
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
        .map(|&i| inception::train::trainer::to_rgb(val, i))
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

#[derive(Args)]
pub struct FinetuneArgs {
    /// Pretrained weights: a file (.pth, .safetensors, .h5, .keras) or a pretrained name.
    #[arg(long, value_name = "FILE|NAME")]
    weights: String,
    /// Architecture, when it cannot be recognised from the weights.
    #[arg(long)]
    model: Option<String>,
    /// ImageFolder dataset: DIR/<class>/*.jpg, with train/ and val/ sub-folders or split at
    /// random (--val-fraction).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// What stays fixed: backbone (everything but the new head; BatchNorm statistics too),
    /// none, or until:BLOCK (e.g. until:inception4e).
    #[arg(long, value_name = "WHAT", default_value = "backbone")]
    freeze: String,
    /// Epochs of the first phase.
    #[arg(long, value_name = "N", default_value_t = 20)]
    epochs: usize,
    /// Images per step.
    #[arg(long, value_name = "N", default_value_t = 32)]
    batch: usize,
    /// Learning rate of the first phase.
    #[arg(long, value_name = "LR", default_value_t = 0.1)]
    lr: f64,
    /// Optimizer: sgd, nesterov, rmsprop, adamw.
    #[arg(long, value_name = "NAME", default_value = "nesterov")]
    optimizer: String,
    /// Label smoothing ε.
    #[arg(long, value_name = "EPS", default_value_t = 0.1)]
    label_smoothing: f32,
    /// Training distortions: none (a linear probe on fixed features), digits (mild crops) or
    /// paper (crops, flips, colour).
    #[arg(long, value_name = "KIND", default_value = "none")]
    augment: String,
    /// Second phase: unfreeze the blocks after this one (e.g. inception4e, Mixed_6e) and train
    /// on at a lower rate.
    #[arg(long, value_name = "BLOCK")]
    unfreeze_after: Option<String>,
    /// Epochs of the second phase.
    #[arg(long, value_name = "N", default_value_t = 5)]
    unfreeze_epochs: usize,
    /// The second phase's rate as a fraction of --lr.
    #[arg(long, value_name = "F", default_value_t = 0.1)]
    unfreeze_lr_factor: f64,
    /// Fraction of each class held out for validation when DIR has no val/ folder.
    #[arg(long, value_name = "F", default_value_t = 0.2)]
    val_fraction: f64,
    /// Seed of shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep an exponential moving average of the weights with this decay and evaluate and save
    /// it.
    #[arg(long, value_name = "DECAY")]
    ema: Option<f64>,
    /// Devices, comma-separated: cpu (Burn's CPU backend, the default), or with a GPU build
    /// cuda:0,cuda:1 / wgpu:0 … — several train data-parallel (each batch split between them).
    #[arg(long, value_name = "LIST", default_value = "cpu")]
    devices: String,
    /// Output folder: model.safetensors, checkpoint.safetensors, log.csv, curves.svg/.png.
    /// Default: a new numbered folder (runs/finetune, runs/finetune2, …).
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Write into an --output folder that already holds a run (its model and checkpoint are
    /// replaced).
    #[arg(long)]
    exist_ok: bool,
    /// Print the final evaluation as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// The class folders of an ImageFolder root (its train/ split when it has one).
fn class_folders(dir: &Path) -> Result<usize> {
    let root = if dir.join("train").is_dir() {
        dir.join("train")
    } else {
        dir.to_path_buf()
    };
    let n = std::fs::read_dir(&root)
        .with_context(|| format!("{}: cannot read the dataset folder", root.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
        .count();
    if n < 2 {
        bail!(
            "{}: found {n} class folder(s); fine-tuning needs at least 2 ({}/<class>/<images>)",
            root.display(),
            root.display()
        );
    }
    Ok(n)
}

pub fn finetune(args: FinetuneArgs) -> Result<()> {
    use inception::train::{Augment, Freeze, finetune::prepare};
    let freeze = Freeze::parse(&args.freeze)?;
    let devices = inception::device::parse_devices(&args.devices)?;
    check_ema(args.ema)?;
    let augment = match args.augment.as_str() {
        "none" => Augment::none(),
        "digits" => Augment::digits(),
        "paper" => Augment::paper(),
        a => bail!("--augment {a}: use none, digits or paper"),
    };
    let optim = OptimizerKind::parse(&args.optimizer)?;
    if !(args.val_fraction > 0.0 && args.val_fraction < 1.0) {
        bail!(
            "--val-fraction {}: it must be between 0 and 1 (e.g. 0.2)",
            args.val_fraction
        );
    }
    if !(args.unfreeze_lr_factor.is_finite() && args.unfreeze_lr_factor > 0.0) {
        bail!(
            "--unfreeze-lr-factor {}: it must be a positive number",
            args.unfreeze_lr_factor
        );
    }
    let output = match &args.output {
        Some(o) => o.clone(),
        None => runs::next_run_dir(Path::new(RUNS), "finetune"),
    };
    runs::check_new_run_dir(&output, args.exist_ok)
        .map_err(|e| anyhow::anyhow!("{e} (train --resume, -o DIR or --exist-ok)"))?;
    let classes_n = class_folders(&args.data)?;
    let options = inception::predict::LoadOptions {
        model: crate::run::model_source(args.model.as_deref())?,
        cache: Some(crate::progress::download_cache()?),
        ..Default::default()
    };
    let ft = prepare(
        &args.weights,
        &options,
        classes_n,
        &freeze,
        args.seed,
        &devices[0],
    )?;
    eprintln!("reading {} …", args.data.display());
    let (train, val, failed) = ImageSet::folder_splits(
        &args.data,
        ft.preset.channels(),
        ft.preset.resize_size(),
        args.val_fraction,
        args.seed,
    )?;
    for (path, why) in &failed {
        eprintln!("warning: skipped {}: {why}", path.display());
    }
    let classes = train.classes.clone();
    let mut cfg = TrainConfig::recipe(Recipe::Digits, ft.model.clone(), &train)
        .with_preset(ft.preset.clone())
        .with_epochs(args.epochs);
    cfg.batch_size = args.batch;
    cfg.optimizer = optim;
    cfg.schedule.lr = args.lr;
    cfg.schedule.warmup_epochs = 0.0;
    cfg.label_smoothing = args.label_smoothing;
    cfg.aux_weight = 0.0;
    cfg.augment = augment;
    cfg.seed = args.seed;
    if args.ema.is_some() {
        cfg.ema_decay = args.ema;
    }
    cfg.data = Some(std::path::absolute(&args.data).unwrap_or_else(|_| args.data.clone()));
    cfg.validate()?;
    std::fs::create_dir_all(&output)
        .with_context(|| format!("{}: cannot create the output folder", output.display()))?;
    let graph = ft.network.graph().clone();
    eprintln!(
        "fine-tuning {} ({} tensors pretrained; {} of {} layers frozen{}) on {} images of {}, validating on {} → {}",
        ft.model.arch,
        ft.pretrained_tensors,
        ft.frozen_nodes,
        graph.nodes.len(),
        if ft.frozen_nodes > 0 {
            ", BatchNorm statistics included"
        } else {
            ""
        },
        train.len(),
        plural(classes.len(), "class", "classes"),
        val.len(),
        output.display()
    );
    let title = format!("{} fine-tuned on {}", ft.model.arch, args.data.display());
    let mut trainer = Trainer::with_network(cfg.clone(), ft.network)?.with_devices(&devices);
    trainer.frozen_nodes = ft.frozen_nodes;
    fit_and_report(&mut trainer, &train, &val, &classes, &title, &output)?;
    if let Some(block) = &args.unfreeze_after {
        use inception::burn::module::Module;
        let keep = graph.resolve(block)? + 1;
        // BatchNorm stays frozen (Keras's fine-tuning advice): a few small batches of the new
        // classes would otherwise drag the pretrained statistics away.
        let network = trainer
            .network
            .clone()
            .unfreeze()
            .freeze_first(keep)
            .freeze_batchnorms();
        let total = args.epochs + args.unfreeze_epochs;
        let mut cfg2 = cfg.clone().with_epochs(total);
        cfg2.schedule.lr = args.lr * args.unfreeze_lr_factor;
        cfg2.schedule.decay = Decay::Constant;
        eprintln!(
            "unfreezing the layers after {block} (BatchNorm statistics kept): {} more epochs at lr {:.2e}",
            args.unfreeze_epochs, cfg2.schedule.lr
        );
        let history = std::mem::take(&mut trainer.history);
        trainer = Trainer::with_network(cfg2, network)?.with_devices(&devices);
        trainer.frozen_nodes = keep;
        trainer.frozen_batchnorms = true;
        trainer.epoch = args.epochs;
        trainer.history = history;
        fit_and_report(&mut trainer, &train, &val, &classes, &title, &output)?;
    }
    finish(&trainer, &val, &classes, &output, args.json)
}
