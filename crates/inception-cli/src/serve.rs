//! `inception serve`: the HTTP inference server (`inception-serve`) on an address.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use inception::predict::LoadOptions;
use inception_serve::{BatchPolicy, ModelSpec, ServeConfig};

use crate::choices::PresetChoice;
use crate::run::model_source;

#[derive(Args)]
pub struct ServeArgs {
    /// Weights to serve: a file or a pretrained name, optionally named `NAME=WEIGHTS`
    /// (routes /v1/models/NAME/…). Repeat for several models; the first also answers /v1/….
    #[arg(long, value_name = "[NAME=]FILE|NAME", required = true)]
    weights: Vec<String>,
    /// Architecture, when it cannot be recognised from the weights (applies to every model).
    #[arg(long)]
    model: Option<String>,
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// The most images run through a model as one batch.
    #[arg(long, value_name = "N", default_value_t = 16)]
    max_batch: usize,
    /// How long the first request of a batch waits for others, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5)]
    max_wait_ms: u64,
    /// Requests waiting per model; more are answered 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 64)]
    queue: usize,
    /// The largest request body in MiB (413 above).
    #[arg(long, value_name = "MIB", default_value_t = 32)]
    max_body_mib: usize,
    /// Seconds a request may take before it is answered 504.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    timeout: f64,
    /// Preprocessing instead of the weights' own.
    #[arg(long, value_name = "NAME")]
    preset: Option<PresetChoice>,
    /// Square input size (built-in models only; default: the checkpoint's).
    #[arg(long, value_name = "N")]
    input_size: Option<usize>,
}

/// `NAME=WEIGHTS`, or the weights' file stem (a path) or name (a pretrained entry).
fn spec(arg: &str) -> (String, String) {
    if let Some((name, weights)) = arg.split_once('=')
        && !name.is_empty()
        && !name.contains(['/', '\\'])
    {
        return (name.to_string(), weights.to_string());
    }
    let p = Path::new(arg);
    let name = if p.exists() {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| arg.to_string())
    } else {
        arg.to_string()
    };
    (name, arg.to_string())
}

pub fn serve(args: ServeArgs) -> Result<()> {
    if args.max_batch == 0 || args.queue == 0 {
        bail!("--max-batch and --queue must be at least 1");
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!(
            "--timeout {}: it must be a positive number of seconds",
            args.timeout
        );
    }
    if args.max_body_mib == 0 || args.max_body_mib > 1024 {
        bail!(
            "--max-body-mib {}: it must be between 1 and 1024",
            args.max_body_mib
        );
    }
    let preset = args
        .preset
        .map(|p| p.preset(args.input_size.unwrap_or(224)))
        .transpose()?;
    let options = LoadOptions {
        model: model_source(args.model.as_deref())?,
        preset,
        input_size: args.input_size,
        transform_input: false,
        cache: Some(crate::progress::download_cache()?),
    };
    let mut models: Vec<ModelSpec> = Vec::new();
    for w in &args.weights {
        let (name, weights) = spec(w);
        if models.iter().any(|m| m.name == name) {
            bail!("two models are named `{name}`; name them with NAME=WEIGHTS");
        }
        models.push(ModelSpec {
            name,
            weights,
            options: options.clone(),
        });
    }
    let mut config = ServeConfig::new(models);
    config.batch = BatchPolicy {
        max_batch: args.max_batch,
        max_wait: Duration::from_millis(args.max_wait_ms),
        queue: args.queue,
    };
    config.max_body_bytes = args.max_body_mib << 20;
    config.timeout = Duration::from_secs_f64(args.timeout);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .with_context(|| format!("--addr {}: cannot listen there", args.addr))?;
        let addr = listener.local_addr()?;
        eprintln!(
            "serving {} on http://{addr}/ (loading; GET /readyz says when ready; Ctrl-C stops)",
            config
                .models
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        inception_serve::serve(listener, config, inception_serve::shutdown_signal()).await?;
        eprintln!("stopped: every request in flight was answered");
        Ok(())
    })
}
