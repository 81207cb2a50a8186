//! `inception`: the command-line face of the `inception` library. Every subcommand is a thin layer
//! over the library's public API.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use inception::models::{Arch, ModelConfig};

mod allocator;
mod bench;
mod choices;
mod eval;
mod finetune;
mod fit;
mod images;
mod inspect;
mod progress;
mod run;
mod serve;
mod train;

#[derive(Parser)]
#[command(
    name = "inception",
    version,
    about = "The Inception family in Rust: exact torchvision/Keras/TF-slim architectures, weights, training, a fast CPU engine",
    long_about = "The Inception family (GoogLeNet, BN-Inception, Inception v3, v4, Inception-ResNet-v2)\n\
        in Rust, on Burn.\n\n\
        Models: googlenet (torchvision layout), googlenet-bvlc (paper / Caffe / ONNX zoo),\n\
        inception-v3 (torchvision / timm), inception-v3-keras (keras.applications),\n\
        inception-mini (a compact GoogLeNet for 28x28 digits; `inception train` trains it),\n\
        and TF-slim's layouts (1001 classes, class 0 = background): inception-v1-slim,\n\
        inception-v2 (BN-Inception), inception-v3-slim, inception-v4, inception-resnet-v2.\n\
        Options mirror keras.applications: --no-top (include_top=False), --pooling, --classes,\n\
        --input-size; torchvision: --aux (aux_logits), --transform-input; TF-slim:\n\
        --depth-multiplier, --min-depth, --plain-stem.",
    after_help = "Examples:\n  inception models\n  inception summary googlenet --aux\n  inception summary inception-v3-keras --json\n  inception diagram googlenet --aux -o googlenet.svg"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the built-in architectures with their parameter counts and input sizes.
    Models {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a Keras-style summary: layers, output shapes, parameters, multiply-accumulates.
    Summary {
        #[command(flatten)]
        model: ModelArgs,
        /// One row per block (stem, inception modules, heads) instead of per layer.
        #[arg(long)]
        blocks: bool,
        /// Print one JSON object (trainable_params, non_trainable_params, total_params, macs, layers, …).
        #[arg(long)]
        json: bool,
    },
    /// Draw the architecture as the paper draws it (SVG, or PNG by the output's extension).
    Diagram {
        #[command(flatten)]
        model: ModelArgs,
        /// Output file: .svg or .png.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// PNG scale factor (pixels per SVG unit).
        #[arg(long, default_value_t = 1.0)]
        scale: f32,
    },
    /// Forward pass on an array, for scripts and parity checks (evaluation mode).
    ///
    /// Input and output are .npy or .safetensors. PyTorch and safetensors weights take NCHW input
    /// and give logits (plus aux logits when the file has aux heads), as the source model does in
    /// eval mode.
    #[command(
        after_help = "Examples:\n  inception run --weights googlenet.pth --input x.npy -o logits.npy\n  inception run --weights inception_v3.safetensors --input io.safetensors:input -o out.safetensors --output-node Mixed_6e"
    )]
    Run(run::RunArgs),
    /// What is in these photos: top-k ImageNet (or the model's own) classes per image.
    ///
    /// Images are decoded and preprocessed as the weights' source framework does (torchvision,
    /// Keras, Caffe/ONNX zoo; override with --preset), in parallel with the model. Unreadable
    /// files are reported on stderr and skipped; the exit code is then 3.
    #[command(after_help = "Output with --json: one object per line and image:
  {\"file\": \"photos/cat.jpg\", \"predictions\": [{\"index\": 281, \"label\": \"tabby\", \"probability\": 0.41}, …]}

Exit codes: 0 all images classified; 1 error (nothing done); 2 usage error; 3 some images skipped.

Examples:
  inception classify --weights googlenet.torchvision photos/
  inception classify --weights inception_v3.keras cat.jpg dog.png --top 3 --json")]
    Classify(images::ClassifyArgs),
    /// Embeddings for these photos: one vector per image (1024-d GoogLeNet, 2048-d Inception
    /// v3 with average pooling, or any layer's activation).
    ///
    /// The model runs as a frozen feature extractor without its classifier (Keras
    /// include_top=False). Unreadable files are reported and skipped (exit code 3); the output
    /// lists the files it holds (a safetensors metadata entry `files`, or the CSV's first
    /// column).
    #[command(
        after_help = "Exit codes: 0 all images embedded; 1 error (nothing written); 2 usage error; 3 some images skipped.

Examples:
  inception features --weights inception_v3.keras photos/ -o features.npy
  inception features --weights googlenet.torchvision photos/ --pooling max -o features.safetensors
  inception features --weights googlenet.pth photos/ --layer inception4e -o maps.csv"
    )]
    Features(images::FeaturesArgs),
    /// Train a model: the GoogLeNet recipe with auxiliary classifiers, the Inception v3 recipe,
    /// or the compact network on the built-in digits (the default: no data to download).
    ///
    /// Every epoch prints the training loss and accuracy, the validation loss, top-1 and top-5,
    /// and the throughput; the output folder gets log.csv, curves.svg/.png and
    /// checkpoint.safetensors (replaced atomically after every epoch; --resume continues from
    /// it exactly, Ctrl-C keeps it), and at the end model.safetensors, which `inception
    /// classify` reads like any other weights.
    #[command(after_help = "Examples:
  inception train                                   # inception-mini on the built-in digits
  inception train --resume                          # continue runs/train after Ctrl-C
  inception train --data photos/ --model googlenet --input-size 96 --epochs 30
  inception train --model googlenet --input-size 32 --epochs 1 --channels 1   # full GoogLeNet on the digits
  inception train --data photos/ --model inception-v3 --recipe inception-v3-paper --devices cuda:0-3")]
    Train(train::TrainArgs),
    /// Transfer learning: a pretrained network as a frozen feature extractor (BatchNorm frozen
    /// too) with a new head for the folder's classes; optionally unfreeze the top blocks later.
    #[command(
        after_help = "Examples:\n  inception finetune --weights googlenet.torchvision --data flowers/ --epochs 10\n  inception finetune --weights runs/train/model.safetensors --data letters/ --freeze until:inception4a\n  inception finetune --weights inception_v3.keras --data photos/ --unfreeze-after mixed8 --unfreeze-epochs 3"
    )]
    Finetune(finetune::FinetuneArgs),
    /// Accuracy on an ImageFolder: top-1/top-5, per-class accuracy, a confusion matrix
    /// (SVG/PNG and JSON with -o).
    Eval(eval::EvalArgs),
    /// List the published pretrained checkpoints (torchvision, Keras, timm, ONNX zoo).
    Pretrained {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Measure speed: images/s, ms per batch, GFLOP/s and the fraction of this machine's FMA
    /// peak, for inference (the fast CPU engine) or training steps, with a per-step profile.
    ///
    /// Each figure is the median of repeated runs after two warm-up runs. Machines differ from
    /// day to day: compare figures measured in the same run (bench/compare.sh puts ONNX
    /// Runtime and PyTorch beside these in one table).
    #[command(after_help = "Output with --json: one object per line and measurement:
  {\"model\": \"googlenet\", \"mode\": \"infer\", \"batch\": 16, \"images_per_sec\": 61.2, \"ms_per_batch\": 261.4, \"gflops\": 183.3, \"fraction_of_peak\": 0.62, …}

Examples:
  inception bench                                   # googlenet and inception-v3, batch 1 and 16
  inception bench googlenet --batch 1,8,32 --threads 1
  inception bench inception-v3 --batch 1 --profile  # where the time goes, step by step
  inception bench googlenet --reference             # beside Burn's operation-by-operation path
  inception bench googlenet --train --batch 16      # training steps with the aux heads, SGD
  inception bench --weights googlenet.pth --json")]
    Bench(bench::BenchArgs),
    /// Serve models over HTTP: POST /v1/classify and /v1/features, GET /v1/model, /healthz,
    /// /readyz, /metrics (Prometheus), and a web page at / to try them with an image.
    ///
    /// Requests that arrive together run as one batch (--max-batch, --max-wait-ms); a full
    /// queue answers 503 with Retry-After, a body over --max-body-mib 413, an undecodable image
    /// 400, a request over --timeout 504; errors are JSON. Ctrl-C or SIGTERM stops accepting,
    /// answers the requests in flight and exits 0.
    #[command(after_help = "Routes:
  GET  /                           the web page (drop, paste or choose an image)
  POST /v1/classify?top=5          image bytes (or a multipart file) -> {\"predictions\": [{\"index\", \"label\", \"probability\"}], \"latency_ms\"}
  POST /v1/features                image -> {\"features\": [...]}, or .npy with Accept: application/x-npy
  GET  /v1/model, /v1/models       name, architecture, input, classes, labels, parameters, preprocessing
  GET  /v1/model/diagram.svg       the architecture diagram
  /v1/models/NAME/...              the same for a model by name
  GET  /healthz, /readyz, /metrics liveness, readiness (weights loaded and warmed up), Prometheus text

Examples:
  inception serve --weights googlenet.torchvision
  inception serve --weights v1=googlenet.torchvision --weights v3=inception_v3.keras --addr 0.0.0.0:8080
  curl --data-binary @cat.jpg 'http://127.0.0.1:8080/v1/classify?top=3'")]
    Serve(serve::ServeArgs),
    /// Download pretrained checkpoints into the cache ($INCEPTION_CACHE or ~/.cache/inception),
    /// verifying their checksums; prints each file's path.
    Download {
        /// Registry names (see `inception pretrained`) or model names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Convert weights to safetensors with torchvision/timm names (loads in PyTorch with
    /// `load_state_dict`, strict), or TensorFlow's names and layouts for TF-slim's layouts, plus
    /// the model configuration in the metadata.
    Convert {
        /// Input weights: a file (.pth, .safetensors, .h5, .keras, .onnx) or a pretrained name.
        weights: String,
        /// Output .safetensors file.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Architecture, when it cannot be recognised from the tensor names.
        #[arg(long)]
        model: Option<String>,
        /// Record that the model expects torchvision's transform_input.
        #[arg(long)]
        transform_input: bool,
        /// Cut TF-slim's 1001-class classifiers to ImageNet's 1000 classes (drop class 0,
        /// "background"), as timm's tf_in1k weights are.
        #[arg(long)]
        drop_background: bool,
        /// Tensor names to write: auto (TensorFlow's for TF-slim's layouts, torchvision's
        /// otherwise), torch, tf, or timm (inception-v4 and inception-resnet-v2).
        #[arg(long, value_name = "NAMES", default_value = "auto")]
        names: choices::NamesChoice,
    },
}

/// The model and its Keras / torchvision options, shared by the subcommands.
#[derive(Args)]
struct ModelArgs {
    /// Architecture: googlenet, googlenet-bvlc, inception-v3, inception-v3-keras, inception-mini,
    /// inception-v1-slim, inception-v2, inception-v3-slim, inception-v4, inception-resnet-v2.
    model: String,
    /// Build the auxiliary classifiers (torchvision aux_logits=True).
    #[arg(long)]
    aux: bool,
    /// Square input size in pixels (default 224 for GoogLeNet and v2, 299 for v3, v4 and
    /// Inception-ResNet-v2).
    #[arg(long, value_name = "N")]
    input_size: Option<usize>,
    /// Input channels (default 3; 1 for inception-mini).
    #[arg(long, value_name = "N")]
    in_channels: Option<usize>,
    /// Number of classes of the classifier (default 1000; 1001 for TF-slim's layouts; 10 for
    /// inception-mini).
    #[arg(long, value_name = "N")]
    classes: Option<usize>,
    /// Drop the classifier head (Keras include_top=False).
    #[arg(long)]
    no_top: bool,
    /// Global pooling without the top (Keras pooling=).
    #[arg(long, value_name = "MODE")]
    pooling: Option<choices::PoolingChoice>,
    /// Dropout rate before the classifier (default per architecture).
    #[arg(long, value_name = "RATE")]
    dropout: Option<f64>,
    /// Prepend torchvision's transform_input (what the published torchvision weights expect).
    #[arg(long)]
    transform_input: bool,
    /// TF-slim's depth_multiplier: every layer's filters d become max(int(d * M), min depth)
    /// (inception-v2, inception-v3-slim).
    #[arg(long, value_name = "M")]
    depth_multiplier: Option<f64>,
    /// TF-slim's min_depth, with --depth-multiplier (default 16).
    #[arg(long, value_name = "N")]
    min_depth: Option<usize>,
    /// inception-v2's plain 7x7 conv + BatchNorm stem instead of the separable one
    /// (TF-slim's use_separable_conv=False).
    #[arg(long)]
    plain_stem: bool,
}

impl ModelArgs {
    fn config(&self) -> Result<ModelConfig> {
        let arch = Arch::from_name(&self.model)?;
        let mut cfg = ModelConfig::new(arch)
            .with_aux_logits(self.aux)
            .with_classes(self.classes.unwrap_or(arch.default_classes()))
            .with_in_channels(self.in_channels.unwrap_or(arch.default_in_channels()))
            .with_include_top(!self.no_top)
            .with_transform_input(self.transform_input);
        if let Some(s) = self.input_size {
            cfg = cfg.with_input_size(s);
        }
        if let Some(p) = self.pooling {
            cfg = cfg.with_pooling(p.pooling()?);
        }
        if let Some(d) = self.dropout {
            cfg = cfg.with_dropout(d);
        }
        if self.depth_multiplier.is_some() || self.min_depth.is_some() {
            cfg = cfg.with_depth_multiplier(
                self.depth_multiplier.unwrap_or(1.0),
                self.min_depth.unwrap_or(16),
            );
        }
        Ok(cfg.with_separable_conv(!self.plain_stem))
    }
}

/// A run that ended early or in part, reported as a warning with its own exit code: 3 when
/// some inputs were skipped, 130 when Ctrl-C stopped it (2 stays clap's usage error).
#[derive(Debug)]
pub struct Warning {
    /// The exit code.
    pub code: u8,
    /// The message, one line.
    pub message: String,
}

impl Warning {
    /// Some inputs could not be used; the rest were processed (exit code 3).
    pub fn partial(message: String) -> Self {
        Self { code: 3, message }
    }

    /// Ctrl-C stopped the run (exit code 130, as a shell reports SIGINT).
    pub fn interrupted(message: String) -> Self {
        Self { code: 130, message }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Warning {}

fn main() -> ExitCode {
    // A closed stdout (`inception summary … | head`) ends the program quietly, as it ends `ls`:
    // Rust ignores SIGPIPE by default, which turns every later print into a panic or an error.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of a signal before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    allocator::keep_freed_memory();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Warning>() => {
            eprintln!("warning: {e}");
            ExitCode::from(e.downcast_ref::<Warning>().map_or(1, |w| w.code))
        }
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}{}", chain.join(": "), hint(&e));
            ExitCode::FAILURE
        }
    }
}

/// What to type, for library errors whose fix is a flag of this program.
fn hint(e: &anyhow::Error) -> &'static str {
    use inception::{Error, WeightsFault};
    match e.downcast_ref::<Error>().map(Error::root) {
        Some(Error::Weights(w)) if matches!(**w, WeightsFault::Unrecognised { .. }) => {
            " (pass --model NAME)"
        }
        _ => "",
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Bench(args) => bench::bench(args),
        Command::Serve(args) => serve::serve(args),
        Command::Classify(args) => images::classify(args),
        Command::Features(args) => images::features(args),
        Command::Train(args) => train::train(args),
        Command::Finetune(args) => finetune::finetune(args),
        Command::Eval(args) => eval::eval(args),
        Command::Convert {
            weights,
            output,
            model,
            transform_input,
            drop_background,
            names,
        } => run::convert(
            &weights,
            &output,
            model.as_deref(),
            run::ConvertOptions {
                transform_input,
                drop_background,
                names,
            },
        ),
        Command::Pretrained { json } => inspect::pretrained_list(json),
        Command::Download { names } => inspect::download(names),
        Command::Models { json } => inspect::models(json),
        Command::Summary {
            model,
            blocks,
            json,
        } => inspect::summary(model, blocks, json),
        Command::Diagram {
            model,
            output,
            scale,
        } => inspect::diagram(model, output, scale),
    }
}
