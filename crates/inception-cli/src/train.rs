//! `inception train`: a new run (a recipe and the options given) or a resumed one, on the
//! embedded digits or an ImageFolder, into a numbered run folder.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use inception::models::{Arch, ModelConfig};
use inception::train::{Decay, ImageSet, Recipe, TrainConfig, Trainer, load_checkpoint, runs};

use crate::choices::{OptimizerChoice, RecipeChoice};

use crate::fit::{RunArgs, finish, fit_and_report, plural};

#[derive(Args)]
pub struct TrainArgs {
    /// Architecture to train.
    #[arg(long, default_value = "inception-mini")]
    model: String,
    /// ImageFolder dataset: DIR/<class>/*.jpg, with train/ and val/ sub-folders or split at
    /// random (--val-fraction). Default: the 10,000 digits built into the binary.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Hyper-parameter bundle (default: digits for inception-mini, the paper's recipe for
    /// googlenet / inception-v3).
    #[arg(long, value_name = "NAME")]
    recipe: Option<RecipeChoice>,
    /// Epochs.
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    /// Images per step.
    #[arg(long, value_name = "N")]
    batch: Option<usize>,
    /// Base learning rate.
    #[arg(long, value_name = "LR")]
    lr: Option<f64>,
    /// Optimizer (default: the recipe's).
    #[arg(long, value_name = "NAME")]
    optimizer: Option<OptimizerChoice>,
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
    /// Continue a run from its checkpoint (default: OUTPUT/checkpoint.safetensors): weights,
    /// optimizer, schedule, moving average, epoch and random streams, exactly. --epochs may
    /// extend it; the other hyper-parameters are the checkpoint's.
    #[arg(long, value_name = "FILE")]
    #[allow(clippy::option_option)] // absent / `--resume` / `--resume FILE`
    resume: Option<Option<PathBuf>>,
    #[command(flatten)]
    run: RunArgs,
}

/// Where runs go by default: `runs/train`, `runs/train2`, … and `runs/finetune`, ….
pub const RUNS: &str = "runs";

pub fn train(args: TrainArgs) -> Result<()> {
    let devices = inception::device::parse_devices(&args.run.devices)?;
    check_ema(args.run.ema)?;
    // A resumed run takes everything from its checkpoint (the data are read as it read them).
    let resumed = match &args.resume {
        Some(path) => {
            let path = match (path, &args.run.output) {
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
    let output = match (&args.run.output, &resumed) {
        (Some(o), _) => o.clone(),
        (None, Some((_, path))) => path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        (None, None) => runs::next_run_dir(Path::new(RUNS), "train"),
    };
    if resumed.is_none() {
        runs::check_new_run_dir(&output, args.run.exist_ok)
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
            (arch, channels, size, args.run.seed)
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
                ImageSet::folder_splits(dir, channels, size, args.run.val_fraction, seed)?;
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
    finish(&trainer, &val, &classes, &output, args.run.json)
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
    let recipe = args
        .recipe
        .map_or(Ok(Recipe::for_arch(arch)), RecipeChoice::recipe)?;
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
    if let Some(o) = args.optimizer {
        cfg.optimizer = o.kind()?;
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
    cfg.seed = args.run.seed;
    if args.run.ema.is_some() {
        cfg.ema_decay = args.run.ema;
    }
    if args.data.is_some() {
        ImageSet::check_val_fraction(args.run.val_fraction)?;
    }
    cfg.validate()?;
    Ok(cfg)
}

pub fn check_ema(ema: Option<f64>) -> Result<()> {
    match ema {
        Some(d) if !(0.0..1.0).contains(&d) => {
            bail!("--ema {d}: the decay must be in [0, 1), e.g. 0.9999")
        }
        _ => Ok(()),
    }
}

fn data_name(data: &Option<PathBuf>) -> String {
    match data {
        None => "the embedded digits".into(),
        Some(d) => d.display().to_string(),
    }
}
