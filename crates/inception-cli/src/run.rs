//! `inception run` and `inception convert`: weights in, arrays or weights out.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use inception::Value;
use inception::burn::tensor::{Device, Tensor, TensorData};
use inception::files::{Array, read_array, write_arrays};
use inception::models::Arch;
use inception::weights::{self, ModelSource};

/// Memory layout of the input array (and of feature maps written out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Layout {
    /// Batch, channels, height, width (PyTorch, ONNX).
    Nchw,
    /// Batch, height, width, channels (Keras, TensorFlow).
    Nhwc,
}

#[derive(Args)]
pub struct RunArgs {
    /// Weights: a file (.pth, .safetensors, .h5, .keras, .onnx), a pretrained name (see
    /// `inception pretrained`), or `imagenet` for the model's default checkpoint.
    #[arg(long, value_name = "FILE|NAME")]
    weights: String,
    /// Architecture, when it cannot be recognised from the weights.
    #[arg(long)]
    model: Option<String>,
    /// Input array: FILE.npy, or FILE.safetensors[:KEY].
    #[arg(long, value_name = "FILE[:KEY]")]
    input: String,
    /// Output file: .npy (one array) or .safetensors (all outputs, by name).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Also (or, with .npy, only) write this layer's or block's activation; repeatable.
    #[arg(long = "output-node", value_name = "NAME")]
    output_nodes: Vec<String>,
    /// Input layout (default: the weights' framework — nchw for PyTorch and safetensors).
    #[arg(long, value_enum)]
    layout: Option<Layout>,
    /// Apply torchvision's transform_input first (what the published torchvision GoogLeNet and
    /// Inception v3 weights expect).
    #[arg(long)]
    transform_input: bool,
    /// Skip the auxiliary heads even when the weights have them.
    #[arg(long)]
    no_aux: bool,
}

/// `FILE[:KEY]`: a key only where the whole string is not itself a file.
fn split_key(spec: &str) -> (PathBuf, Option<String>) {
    if Path::new(spec).exists() {
        return (PathBuf::from(spec), None);
    }
    match spec.rsplit_once(':') {
        Some((file, key)) if !file.is_empty() && !key.contains('/') => {
            (PathBuf::from(file), Some(key.to_string()))
        }
        _ => (PathBuf::from(spec), None),
    }
}

/// `--model`: a built-in name, or a `.keras` file whose config gives the architecture.
pub fn model_source(model: Option<&str>) -> Result<ModelSource> {
    let Some(m) = model else {
        return Ok(ModelSource::Auto);
    };
    if m.ends_with(".keras") || Path::new(m).is_file() {
        let kw = weights::keras::read(Path::new(m))?;
        let config = kw.config.with_context(|| {
            format!("{m}: has no config.json; --model takes a model name or a .keras file")
        })?;
        return Ok(ModelSource::Graph(weights::keras::graph_from_config(
            &config,
        )?));
    }
    Ok(ModelSource::Arch(Arch::from_name(m)?))
}

/// Where the weights are, what model they go into, and whether it needs `transform_input`.
pub struct ResolvedWeights {
    path: PathBuf,
    source: ModelSource,
    transform_input: bool,
    /// The registry entry's preprocessing, kept by `convert`.
    preprocessing: Option<inception::data::Preset>,
}

/// `--weights` and `--model`, resolved by the library as every command resolves them; a
/// published checkpoint recognised by its file name is said so.
pub fn resolve_weights(spec: &str, model: Option<&str>) -> Result<ResolvedWeights> {
    let options = inception::predict::LoadOptions {
        model: model_source(model)?,
        cache: Some(crate::progress::download_cache()?),
        ..Default::default()
    };
    let resolved = inception::predict::resolve_weights(spec, &options)?;
    if resolved.recognised_file
        && let Some(entry) = &resolved.entry
    {
        eprintln!(
            "{}: recognised as {} by its file name",
            resolved.path.display(),
            entry.name
        );
    }
    Ok(ResolvedWeights {
        preprocessing: resolved.entry.map(|e| e.preprocessing),
        path: resolved.path,
        source: resolved.model,
        transform_input: resolved.transform_input,
    })
}

pub fn run(args: RunArgs) -> Result<()> {
    let ResolvedWeights {
        path: weights_path,
        source,
        transform_input: registry_transform,
        ..
    } = resolve_weights(&args.weights, args.model.as_deref())?;
    let (input_path, key) = split_key(&args.input);
    let array = read_array(&input_path, key.as_deref())?;
    let format = weights::sniff(&weights_path)?;
    let device = Device::default();
    let transform = args.transform_input || registry_transform;
    let adjust = |h: usize, w: usize| {
        move |mut cfg: inception::ModelConfig| {
            cfg.input_size = [h, w];
            if args.no_aux {
                cfg = cfg.with_aux_logits(false);
            }
            if transform {
                cfg = cfg.with_transform_input(true);
            }
            cfg
        }
    };
    // An ONNX graph fixes its own input (and says whether it is NHWC); the built-in models are
    // built for the input's size, so that is read first.
    let early = if format == weights::Format::Onnx {
        Some(weights::load_file(
            &weights_path,
            source.clone(),
            |c| c,
            &device,
        )?)
    } else {
        None
    };
    let nhwc_default = match &early {
        Some(l) => l.input_nhwc,
        None => format == weights::Format::Keras,
    };
    let layout = args.layout.unwrap_or(if nhwc_default {
        Layout::Nhwc
    } else {
        Layout::Nchw
    });
    let dims: [usize; 4] = array.shape.clone().try_into().map_err(|_| {
        anyhow::anyhow!(
            "{}: the input is {:?}; a batch of images has 4 dimensions ({})",
            input_path.display(),
            array.shape,
            if layout == Layout::Nchw {
                "N, C, H, W"
            } else {
                "N, H, W, C"
            }
        )
    })?;
    let mut x = Tensor::<4>::from_data(TensorData::new(array.data, dims), &device);
    if layout == Layout::Nhwc {
        x = x.permute([0, 3, 1, 2]);
    }
    let [_, c, h, w] = x.dims();
    let loaded = match early {
        Some(l) => l,
        None => weights::load_file(&weights_path, source, adjust(h, w), &device)?,
    };
    let net = &loaded.network;
    let want = net.graph().input_shape();
    if want[0] != c {
        bail!(
            "{}: the input has {c} channels but the model takes {} (wrong --layout?)",
            input_path.display(),
            want[0]
        );
    }
    net.check_input(x.dims())?;
    let mut outputs: Vec<(String, Value)> = Vec::new();
    let want_main = args.output_nodes.is_empty() || !is_npy(&args.output);
    if want_main {
        let ids: Vec<_> = loaded.outputs.iter().map(|(_, id)| *id).collect();
        let values = net.run(x.clone(), &ids)?;
        outputs.extend(loaded.outputs.iter().map(|(n, _)| n.clone()).zip(values));
    }
    if !args.output_nodes.is_empty() {
        // A model output's name (`logits`, an ONNX graph output) or a layer's.
        let ids = args
            .output_nodes
            .iter()
            .map(
                |name| match loaded.outputs.iter().find(|(n, _)| n == name) {
                    Some((_, id)) => Ok(*id),
                    None => net.graph().resolve(name),
                },
            )
            .collect::<inception::Result<Vec<_>>>()?;
        let acts = net.run(x, &ids)?;
        outputs.extend(args.output_nodes.iter().cloned().zip(acts));
    }
    let arrays: Vec<(String, Array)> = outputs
        .into_iter()
        .map(|(name, v)| (name, to_array(v, layout)))
        .collect();
    if is_npy(&args.output) && arrays.len() > 1 {
        bail!(
            "{}: the model gives {} outputs ({}); write .safetensors, or add --no-aux",
            args.output.display(),
            arrays.len(),
            arrays
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    write_arrays(&args.output, &arrays)?;
    let summary: Vec<String> = arrays
        .iter()
        .map(|(n, a)| format!("{n} {:?}", a.shape))
        .collect();
    eprintln!(
        "{} ({}): wrote {} to {}",
        net.graph().name(),
        weights_path.display(),
        summary.join(", "),
        args.output.display()
    );
    Ok(())
}

fn is_npy(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

fn to_array(v: Value, layout: Layout) -> Array {
    let t = match v {
        Value::Map(t) if layout == Layout::Nhwc => Value::Map(t.permute([0, 2, 3, 1])),
        other => other,
    };
    let shape = t.dims();
    let data = match t {
        Value::Map(t) => t.into_data(),
        Value::Flat(t) => t.into_data(),
    };
    Array {
        shape,
        data: data.try_to_vec::<f32>().expect("models compute in f32"),
    }
}

/// What `convert` changes on the way.
pub struct ConvertOptions {
    /// Record torchvision's `transform_input`.
    pub transform_input: bool,
    /// Drop TF-slim's background class.
    pub drop_background: bool,
    /// Which names to write.
    pub names: crate::choices::NamesChoice,
}

pub fn convert(
    weights: &str,
    output: &Path,
    model: Option<&str>,
    options: ConvertOptions,
) -> Result<()> {
    let resolved = resolve_weights(weights, model)?;
    let weights_path = resolved.path.as_path();
    let transform = options.transform_input || resolved.transform_input;
    let mut classes = None;
    let source = resolved.source.clone();
    if !output
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
    {
        bail!("{}: convert writes .safetensors files", output.display());
    }
    let loaded = weights::load_file(
        weights_path,
        source,
        |cfg| {
            classes = Some(cfg.classes);
            let cfg = if options.drop_background && cfg.classes == 1001 {
                cfg.with_classes(1000)
            } else {
                cfg
            };
            if transform {
                cfg.with_transform_input(true)
            } else {
                cfg
            }
        },
        &Device::default(),
    )?;
    if options.drop_background && classes != Some(1001) {
        bail!(
            "{}: --drop-background needs TF-slim's 1001 classes, but the weights have {}",
            weights_path.display(),
            classes.map_or("no classifier".to_string(), |c| c.to_string())
        );
    }
    use crate::choices::NamesChoice;
    let tf = |sd: &weights::StateDict| weights::tf_names::to_tf(loaded.network.graph(), sd);
    let mut sd = match (&loaded.config, options.names) {
        (Some(cfg), NamesChoice::Timm) => weights::timm_names::export(&loaded.network, cfg)?,
        (None, NamesChoice::Timm) => {
            bail!(
                "timm's names exist for inception-v3-slim, inception-v4 and inception-resnet-v2 \
                 only"
            )
        }
        // TF-slim's layouts keep TensorFlow's names and layouts, their own.
        (Some(cfg), NamesChoice::Auto) if cfg.arch.is_tf_slim() => {
            tf(&weights::export(&loaded.network, cfg))?
        }
        (Some(cfg), NamesChoice::Tf) => tf(&weights::export(&loaded.network, cfg))?,
        (None, NamesChoice::Tf) => tf(&weights::state_dict(&loaded.network))?,
        (Some(cfg), _) => weights::export(&loaded.network, cfg),
        (None, _) => weights::state_dict(&loaded.network),
    };
    // What the source stored or the registry knows travels with the weights.
    sd.metadata.extend(
        loaded
            .metadata
            .iter()
            .filter(|(k, _)| k.starts_with("inception.") && k.as_str() != weights::CONFIG_KEY)
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    if let Some(p) = &resolved.preprocessing {
        sd.metadata.insert(
            inception::data::PREPROCESSING_KEY.to_string(),
            serde_json::to_string(p)?,
        );
    }
    weights::safetensors::write(output, &sd).with_context(|| "converting")?;
    eprintln!(
        "{}: {} tensors ({} parameters) of {} written to {}",
        weights_path.display(),
        sd.len(),
        inception::summary::group_digits(loaded.network.param_count().trainable as u64),
        loaded.network.graph().name(),
        output.display()
    );
    Ok(())
}
