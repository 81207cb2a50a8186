//! `inception bench`: throughput tables over the library's `bench` module.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use inception::Network;
use inception::bench::{self, BenchConfig, Measurement};
use inception::burn::tensor::Device;
use inception::models::{Arch, ModelConfig};
use inception::predict::{Classifier, LoadOptions};

use crate::choices::OptimizerChoice;

#[derive(Args)]
pub struct BenchArgs {
    /// Architectures to measure (default: googlenet inception-v3), with random weights: speed
    /// does not depend on the values.
    models: Vec<String>,
    /// Measure a weights file or pretrained name instead (any format `classify` reads).
    #[arg(long, value_name = "W", conflicts_with = "models")]
    weights: Option<String>,
    /// Batch sizes, comma-separated.
    #[arg(
        long,
        value_name = "N,..",
        value_delimiter = ',',
        default_value = "1,16"
    )]
    batch: Vec<usize>,
    /// Square input size (default: the architecture's, 224 or 299).
    #[arg(long, value_name = "N")]
    input_size: Option<usize>,
    /// Threads (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Also time Burn's operation-by-operation path, for comparison.
    #[arg(long)]
    reference: bool,
    /// Time training steps instead: forward with the aux heads, backward, the optimizer's update.
    #[arg(long)]
    train: bool,
    /// Optimizer of the training step.
    #[arg(long, value_name = "NAME", default_value = "sgd")]
    optimizer: OptimizerChoice,
    /// Print where the time goes, step by step (the fast engine, first batch size).
    #[arg(long)]
    profile: bool,
    /// Timed runs at least (after two untimed warm-up runs).
    #[arg(long, value_name = "N", default_value_t = 5)]
    repeats: usize,
    /// Keep repeating for at least this many seconds per measurement.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    min_time: f64,
    /// Skip the FMA-peak probe (then no fraction of peak is reported).
    #[arg(long)]
    no_peak: bool,
    /// One JSON object per measurement and line, instead of a table.
    #[arg(long)]
    json: bool,
    /// Device: cpu (the fast engine) or, in GPU builds, cuda[:N] / wgpu[:N] (Burn's kernels).
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn bench(args: BenchArgs) -> Result<()> {
    if args.batch.is_empty() || args.batch.contains(&0) {
        bail!("--batch: give one or more batch sizes of at least 1, e.g. --batch 1,16");
    }
    if args.train && args.batch.contains(&1) {
        bail!("--batch 1 with --train: a training step needs at least 2 images (BatchNorm)");
    }
    if !(args.min_time.is_finite() && args.min_time >= 0.0 && args.min_time <= 3600.0) {
        bail!(
            "--min-time {}: give seconds between 0 and 3600",
            args.min_time
        );
    }
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(t) = args.threads {
        if t == 0 || t > 1024 {
            bail!("--threads {t}: give between 1 and 1024");
        }
        pool = pool.num_threads(t);
    }
    let pool = pool.build().context("cannot start the thread pool")?;
    pool.install(|| measure(&args))
}

fn measure(args: &BenchArgs) -> Result<()> {
    let devices = inception::device::parse_devices(&args.device)?;
    let device = devices[0].clone();
    let cfg = BenchConfig {
        repeats: args.repeats.max(1),
        min_time: Duration::from_secs_f64(args.min_time),
        ..BenchConfig::default()
    };
    let peak = (!args.no_peak).then(|| bench::fma_peak(Duration::from_millis(500)));
    let threads = rayon::current_num_threads();
    if !args.json {
        println!("{}", machine_line(peak, threads));
    }
    let mut rows: Vec<Measurement> = Vec::new();
    let show = |m: Measurement, rows: &mut Vec<Measurement>| -> Result<()> {
        if args.json {
            let mut v = serde_json::to_value(&m)?;
            if let (Some(obj), Some(p)) = (v.as_object_mut(), peak) {
                obj.insert("fma_peak_gflops".into(), p.into());
                obj.insert("device".into(), args.device.clone().into());
            }
            println!("{v}");
        } else {
            if rows.is_empty() {
                println!("{}", header());
            }
            println!("{}", row(&m));
        }
        rows.push(m);
        Ok(())
    };
    let models: Vec<String> = if args.models.is_empty() {
        vec!["googlenet".into(), "inception-v3".into()]
    } else {
        args.models.clone()
    };
    let targets: Vec<(String, Option<ModelConfig>)> = match &args.weights {
        Some(w) => vec![(w.clone(), None)],
        None => models
            .iter()
            .map(|m| {
                let arch = Arch::from_name(m)?;
                let mut c = ModelConfig::new(arch)
                    .with_in_channels(arch.default_in_channels())
                    .with_classes(arch.default_classes())
                    .with_aux_logits(args.train && arch.has_aux_heads());
                if let Some(s) = args.input_size {
                    c = c.with_input_size(s);
                }
                Ok((m.clone(), Some(c)))
            })
            .collect::<inception::Result<_>>()?,
    };
    for (name, config) in targets {
        if args.train {
            let Some(config) = config else {
                bail!("--train measures an architecture by name, not --weights");
            };
            for &b in &args.batch {
                status(args, &format!("{name}: training step, batch {b}"));
                let m = bench::training(&config, b, args.optimizer.kind()?, &device, &cfg, peak)?;
                show(m, &mut rows)?;
            }
            continue;
        }
        let network = match config {
            Some(c) => c.init(&device)?,
            None => load(&name, &device)?,
        };
        for &b in &args.batch {
            status(args, &format!("{name}: inference, batch {b}"));
            show(bench::inference(&network, b, false, &cfg, peak)?, &mut rows)?;
            if args.reference {
                status(args, &format!("{name}: Burn's reference path, batch {b}"));
                show(bench::inference(&network, b, true, &cfg, peak)?, &mut rows)?;
            }
        }
        if args.profile {
            print_profile(&network, args.batch[0], args.json)?;
        }
    }
    Ok(())
}

fn load(weights: &str, device: &Device) -> Result<Network> {
    use inception::burn::module::Module;
    let classifier = Classifier::load(weights, &LoadOptions::default())?;
    Ok(classifier.network().clone().to_device(device))
}

fn status(args: &BenchArgs, what: &str) {
    if !args.json {
        eprintln!("measuring {what} …");
    }
}

fn machine_line(peak: Option<f64>, threads: usize) -> String {
    let cpu = bench::cpu_description();
    match peak {
        Some(p) => format!("machine: {cpu}, {threads} threads; FMA peak {p:.1} GFLOP/s"),
        None => format!("machine: {cpu}, {threads} threads"),
    }
}

fn header() -> String {
    format!(
        "{:<22} {:<10} {:>9} {:>5} {:>10} {:>9} {:>8} {:>7} {:>9}",
        "model", "mode", "input", "batch", "ms/batch", "img/s", "GFLOP/s", "% peak", "peak MiB"
    )
}

fn row(m: &Measurement) -> String {
    let mode = match m.mode {
        bench::Mode::Infer => "infer",
        bench::Mode::InferReference => "reference",
        bench::Mode::Train => "train",
    };
    let input = format!("{}x{}x{}", m.input[0], m.input[1], m.input[2]);
    let peak = m
        .fraction_of_peak
        .map_or("-".to_string(), |f| format!("{:.0}%", f * 100.0));
    let rss = m
        .peak_rss_mib
        .map_or("-".to_string(), |r| format!("{r:.0}"));
    format!(
        "{:<22} {:<10} {:>9} {:>5} {:>10.2} {:>9.2} {:>8.1} {:>7} {:>9}",
        truncate(&m.model, 22),
        mode,
        input,
        m.batch,
        m.ms_per_batch,
        m.images_per_sec,
        m.gflops,
        peak,
        rss
    )
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(std::iter::once('…')).collect()
    }
}

fn print_profile(network: &Network, batch: usize, json: bool) -> Result<()> {
    let rows = bench::profile(network, batch, 5)?;
    if json {
        for r in &rows {
            let mut v = serde_json::to_value(r)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("model".into(), network.graph().name().into());
                o.insert("batch".into(), batch.into());
                o.insert("record".into(), "profile".into());
            }
            println!("{v}");
        }
        return Ok(());
    }
    let total: f64 = rows.iter().map(|r| r.ms).sum();
    println!(
        "\nprofile of {} at batch {batch}: {total:.2} ms in {} steps (slowest first)",
        network.graph().name(),
        rows.len()
    );
    let mut by_kind: std::collections::BTreeMap<String, f64> = Default::default();
    for r in &rows {
        *by_kind
            .entry(format!("{:?}", r.kind).to_lowercase())
            .or_default() += r.ms;
    }
    let kinds: Vec<String> = by_kind
        .iter()
        .map(|(k, ms)| format!("{k} {:.0}%", 100.0 * ms / total.max(1e-12)))
        .collect();
    println!("by kind: {}", kinds.join(", "));
    println!(
        "{:<40} {:<11} {:>9} {:>7}",
        "step (node)", "kind", "ms", "share"
    );
    for r in rows.iter().take(25) {
        println!(
            "{:<40} {:<11} {:>9.3} {:>6.1}%",
            truncate(&r.node, 40),
            format!("{:?}", r.kind).to_lowercase(),
            r.ms,
            r.share * 100.0
        );
    }
    if rows.len() > 25 {
        println!("… {} more steps (--json lists them all)", rows.len() - 25);
    }
    Ok(())
}
