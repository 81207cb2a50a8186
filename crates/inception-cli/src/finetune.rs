//! `inception finetune`: a pretrained network as a frozen feature extractor under a new head,
//! optionally unfreezing its top blocks in a second phase.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use inception::train::{Decay, ImageSet, Recipe, TrainConfig, Trainer, runs};

use crate::choices::{AugmentChoice, OptimizerChoice};

use crate::fit::{RunArgs, finish, fit_and_report, plural};
use crate::train::{RUNS, check_ema};

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
    /// Optimizer.
    #[arg(long, value_name = "NAME", value_enum, default_value_t = OptimizerChoice::Nesterov)]
    optimizer: OptimizerChoice,
    /// Label smoothing ε.
    #[arg(long, value_name = "EPS", default_value_t = 0.1)]
    label_smoothing: f32,
    /// Training distortions (none: a linear probe on fixed features).
    #[arg(long, value_name = "KIND", value_enum, default_value_t = AugmentChoice::None)]
    augment: AugmentChoice,
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
    #[command(flatten)]
    run: RunArgs,
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
    use inception::train::{Freeze, finetune::prepare};
    let freeze = Freeze::parse(&args.freeze)?;
    let devices = inception::device::parse_devices(&args.run.devices)?;
    check_ema(args.run.ema)?;
    let augment = args.augment.augment();
    let optim = args.optimizer.kind()?;
    ImageSet::check_val_fraction(args.run.val_fraction)?;
    if !(args.unfreeze_lr_factor.is_finite() && args.unfreeze_lr_factor > 0.0) {
        bail!(
            "--unfreeze-lr-factor {}: it must be a positive number",
            args.unfreeze_lr_factor
        );
    }
    let output = match &args.run.output {
        Some(o) => o.clone(),
        None => runs::next_run_dir(Path::new(RUNS), "finetune"),
    };
    runs::check_new_run_dir(&output, args.run.exist_ok)
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
        args.run.seed,
        &devices[0],
    )?;
    eprintln!("reading {} …", args.data.display());
    let (train, val, failed) = ImageSet::folder_splits(
        &args.data,
        ft.preset.channels(),
        ft.preset.resize_size(),
        args.run.val_fraction,
        args.run.seed,
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
    cfg.seed = args.run.seed;
    if args.run.ema.is_some() {
        cfg.ema_decay = args.run.ema;
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
        graph.nodes().len(),
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
    finish(&trainer, &val, &classes, &output, args.run.json)
}
