//! `inception train`: the training loop with a progress bar, per-epoch lines, the CSV log, the
//! curves and an atomically written model.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use clap::Args;
use inception::models::{Arch, ModelConfig};
use inception::train::{
    Decay, Event, ImageSet, OptimizerKind, Recipe, TrainConfig, Trainer, evaluate, load_checkpoint,
    report, save_checkpoint, save_model,
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
    #[arg(short, long, value_name = "DIR", default_value = "runs/train")]
    output: PathBuf,
    /// Print the final evaluation as JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn optimizer(name: &str) -> Result<OptimizerKind> {
    Ok(match name {
        "sgd" => OptimizerKind::Sgd {
            momentum: 0.9,
            nesterov: false,
        },
        "nesterov" => OptimizerKind::Sgd {
            momentum: 0.9,
            nesterov: true,
        },
        "rmsprop" => OptimizerKind::RmsProp {
            alpha: 0.9,
            eps: 1.0,
            momentum: 0.9,
        },
        "adamw" => OptimizerKind::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        _ => bail!("unknown optimizer '{name}'; use sgd, nesterov, rmsprop or adamw"),
    })
}

fn decay(spec: &str) -> Result<Decay> {
    let parts: Vec<&str> = spec.split(':').collect();
    Ok(match parts.as_slice() {
        ["constant"] => Decay::Constant,
        ["cosine"] => Decay::Cosine { min_factor: 0.01 },
        ["step", every, gamma] => Decay::Step {
            every: every.parse().context("step:EVERY:GAMMA")?,
            gamma: gamma.parse().context("step:EVERY:GAMMA")?,
        },
        _ => bail!("unknown schedule '{spec}'; use constant, cosine or step:EVERY:GAMMA"),
    })
}

pub fn train(args: TrainArgs) -> Result<()> {
    let devices = inception::device::parse_devices(&args.devices)?;
    check_ema(args.ema)?;
    // A resumed run takes everything from its checkpoint (the data are read as it read them).
    let resumed = match &args.resume {
        Some(path) => {
            let path = path
                .clone()
                .unwrap_or_else(|| args.output.join("checkpoint.safetensors"));
            if !path.is_file() {
                bail!(
                    "{}: no checkpoint to resume from (a run writes one after each epoch into its --output folder)",
                    path.display()
                );
            }
            Some((load_checkpoint(&path, &devices[0])?, path))
        }
        None => None,
    };
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
            (
                arch,
                args.channels.unwrap_or(arch.default_in_channels()),
                args.input_size.unwrap_or(arch.default_input_size()),
                args.seed,
            )
        }
    };
    let (train, val) = match &args.data {
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
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("{}: cannot create the output folder", args.output.display()))?;
    let trainer = match resumed {
        Some(((mut t, saved), path)) => {
            if saved != classes {
                bail!(
                    "{}: the checkpoint's classes [{}] differ from the data's [{}]",
                    path.display(),
                    saved.join(", "),
                    classes.join(", ")
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
            let cfg = configure(&args, arch, channels, size, &train)?;
            Trainer::new(cfg, &devices[0])?
        }
    };
    let mut trainer = trainer.with_devices(&devices);
    let cfg = &trainer.config;
    let params = cfg.model.graph()?.params().trainable;
    eprintln!(
        "training {} ({} parameters{}) on {} images of {} classes, validating on {}; {} epochs of {} batches{}",
        cfg.model.arch,
        inception::summary::group_digits(params as u64),
        if cfg.model.aux_logits {
            format!(", aux heads × {}", cfg.aux_weight)
        } else {
            String::new()
        },
        train.len(),
        classes.len(),
        val.len(),
        cfg.epochs,
        train.len() / cfg.batch_size,
        if devices.len() > 1 {
            format!(", data-parallel on {} devices", devices.len())
        } else {
            String::new()
        }
    );
    let title = format!("{} on {}", trainer.config.model.arch, data_name(&args.data));
    fit_and_report(&mut trainer, &train, &val, &classes, &title, &args.output)?;
    finish(&trainer, &val, &classes, &args.output, args.json)
}

/// The training configuration of a new run: the recipe, then the options given.
fn configure(
    args: &TrainArgs,
    arch: Arch,
    channels: usize,
    size: usize,
    train: &ImageSet,
) -> Result<TrainConfig> {
    let model = ModelConfig::new(arch)
        .with_classes(train.classes.len())
        .with_in_channels(channels)
        .with_input_size(size)
        .with_aux_logits(args.aux_weight.is_none_or(|w| w > 0.0));
    let recipe = match &args.recipe {
        Some(r) => Recipe::parse(r)?,
        None => match arch {
            Arch::InceptionMini => Recipe::Digits,
            Arch::InceptionV3 | Arch::InceptionV3Keras => Recipe::InceptionV3Paper,
            _ => Recipe::GoogLeNetPaper,
        },
    };
    let mut cfg = TrainConfig::recipe(recipe, model.clone(), train);
    // Models without aux heads (Keras layout) simply get no aux term.
    if cfg.model.graph().is_err() {
        cfg.model = model.with_aux_logits(false);
        cfg.model.graph()?;
    }
    if let Some(e) = args.epochs {
        cfg = cfg.with_epochs(e);
    }
    if let Some(b) = args.batch {
        if b < 2 {
            bail!("--batch must be at least 2 (BatchNorm needs more than one image)");
        }
        cfg.batch_size = b;
    }
    if let Some(lr) = args.lr {
        cfg.schedule.lr = lr;
    }
    if let Some(o) = &args.optimizer {
        cfg.optimizer = optimizer(o)?;
    }
    if let Some(wd) = args.weight_decay {
        cfg.weight_decay = wd;
    }
    if let Some(s) = &args.schedule {
        cfg.schedule.decay = decay(s)?;
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

/// Deletes what killed runs left in `out`: the half-written temporaries of
/// [`inception::files::write_atomic`] (`.NAME.PID.tmp`) whose process is gone.
fn remove_stale_temporaries(out: &Path) {
    let Ok(entries) = std::fs::read_dir(out) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|n| n.rsplit_once('.'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive && std::fs::remove_file(entry.path()).is_ok() {
            eprintln!(
                "removed {}, left by an interrupted run",
                entry.path().display()
            );
        }
    }
}

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
    remove_stale_temporaries(out);
    let epochs = trainer.config.epochs;
    let checkpoint = out.join("checkpoint.safetensors");
    while trainer.epoch < epochs {
        let mut bar: Option<ProgressBar> = None;
        let mut on = |event: Event| -> bool {
            if let Event::Step {
                epoch,
                batch,
                batches,
                loss,
                lr,
            } = event
            {
                let b = bar.get_or_insert_with(|| {
                    ProgressBar::new(batches as u64).with_style(
                        ProgressStyle::with_template(
                            "epoch {prefix} [{wide_bar}] {pos}/{len} {msg} ETA {eta}",
                        )
                        .expect("valid template")
                        .progress_chars("=> "),
                    )
                });
                b.set_prefix(format!("{epoch}/{epochs}"));
                b.set_position(batch as u64);
                b.set_message(format!("loss {loss:.4} lr {lr:.2e}"));
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
                        "the checkpoint of epoch {} is in {}: continue with --resume {0}",
                        trainer.epoch,
                        checkpoint.display()
                    )
                } else {
                    "no epoch had finished, nothing was saved".to_string()
                }
            )));
        };
        eprintln!(
            "epoch {:>3}/{}  loss {:.4}  train {:6.2}%  val loss {:.4}  val {:6.2}% (top-5 {:6.2}%)  {:.0} img/s  {:.0} s",
            s.epoch,
            epochs,
            s.train_loss,
            100.0 * s.train_top1,
            s.val_loss,
            100.0 * s.val_top1,
            100.0 * s.val_top5,
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
        "done in {:.0} s: validation top-1 {:.2}%, top-5 {:.2}% on {} images; model in {}",
        secs,
        100.0 * eval.top1,
        100.0 * eval.top5,
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
    #[arg(short, long, value_name = "DIR", default_value = "runs/finetune")]
    output: PathBuf,
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
    let optim = optimizer(&args.optimizer)?;
    if args.batch < 2 {
        bail!("--batch must be at least 2 (BatchNorm needs more than one image)");
    }
    let classes_n = class_folders(&args.data)?;
    let options = inception::predict::LoadOptions {
        model: crate::run::model_source(args.model.as_deref())?,
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
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("{}: cannot create the output folder", args.output.display()))?;
    let graph = ft.network.graph().clone();
    eprintln!(
        "fine-tuning {} ({} tensors pretrained; {} of {} layers frozen{}) on {} images of {} classes, validating on {}",
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
        classes.len(),
        val.len()
    );
    let title = format!("{} fine-tuned on {}", ft.model.arch, args.data.display());
    let mut trainer = Trainer::with_network(cfg.clone(), ft.network).with_devices(&devices);
    trainer.frozen_nodes = ft.frozen_nodes;
    fit_and_report(&mut trainer, &train, &val, &classes, &title, &args.output)?;
    if let Some(block) = &args.unfreeze_after {
        use inception::burn::module::Module;
        let keep = graph.resolve(block)? + 1;
        let network = trainer.network.clone().unfreeze().freeze_first(keep);
        let total = args.epochs + args.unfreeze_epochs;
        let mut cfg2 = cfg.clone().with_epochs(total);
        cfg2.schedule.lr = args.lr * args.unfreeze_lr_factor;
        cfg2.schedule.decay = Decay::Constant;
        eprintln!(
            "unfreezing the layers after {block}: {} more epochs at lr {:.2e}",
            args.unfreeze_epochs, cfg2.schedule.lr
        );
        let history = std::mem::take(&mut trainer.history);
        trainer = Trainer::with_network(cfg2, network).with_devices(&devices);
        trainer.frozen_nodes = keep;
        trainer.epoch = args.epochs;
        trainer.history = history;
        fit_and_report(&mut trainer, &train, &val, &classes, &title, &args.output)?;
    }
    finish(&trainer, &val, &classes, &args.output, args.json)
}
