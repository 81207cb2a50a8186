//! Measuring speed: inference and training-step throughput, the machine's FMA peak, per-step
//! profiles and peak memory — what `inception bench` reports.
//!
//! Timings are medians of repeated runs after warm-up. Nothing here is used by the tests as a
//! timing assertion: machines differ from day to day, so figures are compared as ratios
//! measured in the same run (see `bench/compare.sh`).

use std::time::{Duration, Instant};

use burn::tensor::{Device, Distribution, Tensor};
use serde::Serialize;

use crate::engine::{Plan, StepKind};
use crate::error::{Error, Result};
use crate::models::ModelConfig;
use crate::network::Network;
use crate::train::{OptimizerKind, TrainConfig, Trainer};

/// How long and how often to measure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BenchConfig {
    /// Untimed runs first (plans compiled, caches and buffers warm).
    pub warmup: usize,
    /// Timed runs at least.
    pub repeats: usize,
    /// Keep repeating until this much time has been measured (or `max_repeats` runs).
    pub min_time: Duration,
    /// Timed runs at most.
    pub max_repeats: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            warmup: 2,
            repeats: 5,
            min_time: Duration::from_secs(2),
            max_repeats: 50,
        }
    }
}

/// Inference or a training step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The main output of a batch, through the fast engine.
    Infer,
    /// The main output of a batch through Burn's operation-by-operation path.
    InferReference,
    /// Forward with the aux heads, backward, and the optimizer's update.
    Train,
}

/// One measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    /// The network.
    pub model: String,
    /// What was timed.
    pub mode: Mode,
    /// Input `[C, H, W]`.
    pub input: [usize; 3],
    /// Images per run.
    pub batch: usize,
    /// Threads of the pool it ran on.
    pub threads: usize,
    /// Timed runs.
    pub repeats: usize,
    /// Median milliseconds per batch.
    pub ms_per_batch: f64,
    /// Fastest run, milliseconds.
    pub ms_min: f64,
    /// Images per second at the median.
    pub images_per_sec: f64,
    /// Floating-point operations per image (2 per multiply-accumulate of the convolutions and
    /// dense layers; three times the forward pass for a training step).
    pub gflop_per_image: f64,
    /// Achieved GFLOP/s at the median.
    pub gflops: f64,
    /// `gflops` over the machine's FMA peak measured in the same run, when it was measured.
    pub fraction_of_peak: Option<f64>,
    /// Peak resident memory of the process during the measurement (Linux), MiB.
    pub peak_rss_mib: Option<f64>,
}

/// Times `run` after `cfg.warmup` untimed calls; returns the sorted times.
fn time(cfg: &BenchConfig, mut run: impl FnMut() -> Result<()>) -> Result<Vec<f64>> {
    for _ in 0..cfg.warmup {
        run()?;
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < cfg.repeats.max(1)
        || (start.elapsed() < cfg.min_time && times.len() < cfg.max_repeats.max(1))
    {
        let t = Instant::now();
        run()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn measurement(
    network: &Network,
    mode: Mode,
    batch: usize,
    times: &[f64],
    flop_per_image: f64,
    peak: Option<f64>,
) -> Measurement {
    let ms = median(times);
    let images_per_sec = batch as f64 / (ms / 1e3);
    let gflops = images_per_sec * flop_per_image / 1e9;
    Measurement {
        model: network.graph().name().to_string(),
        mode,
        input: network.graph().input_shape(),
        batch,
        threads: rayon::current_num_threads(),
        repeats: times.len(),
        ms_per_batch: ms,
        ms_min: times.first().copied().unwrap_or(f64::NAN),
        images_per_sec,
        gflop_per_image: flop_per_image / 1e9,
        gflops,
        fraction_of_peak: peak.map(|p| gflops / p),
        peak_rss_mib: peak_rss().map(|b| b as f64 / (1 << 20) as f64),
    }
}

fn random_batch(network: &Network, batch: usize, device: &Device) -> Tensor<4> {
    let [c, h, w] = network.graph().input_shape();
    Tensor::<4>::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), device)
}

/// Inference throughput of `network`'s main output at `batch` (a CPU network runs through the
/// fast engine's plan, compiled once before timing; `reference` times Burn's path instead).
/// `peak` is the machine's FMA peak in GFLOP/s, for the fraction.
pub fn inference(
    network: &Network,
    batch: usize,
    reference: bool,
    cfg: &BenchConfig,
    peak: Option<f64>,
) -> Result<Measurement> {
    check_batch(batch)?;
    reset_peak_rss();
    let device = network.device();
    let main = network.graph().main_output().node;
    let x = random_batch(network, batch, &device);
    let flop = 2.0 * network.graph().macs_for(&[main]) as f64;
    let times = if reference || !crate::engine::serves(&device) {
        time(cfg, || network.run_reference(x.clone(), &[main]).map(drop))?
    } else {
        let plan = network.compile()?;
        let [c, h, w] = network.graph().input_shape();
        let data = vec![0.5f32; batch * c * h * w];
        time(cfg, || plan.run_raw(batch, &data).map(drop))?
    };
    let mode = if reference {
        Mode::InferReference
    } else {
        Mode::Infer
    };
    Ok(measurement(network, mode, batch, &times, flop, peak))
}

/// Training-step throughput of a fresh `model` at `batch`: forward with its aux heads,
/// backward and the update, with SGD + momentum 0.9 or RMSprop (`optimizer`).
pub fn training(
    model: &ModelConfig,
    batch: usize,
    optimizer: OptimizerKind,
    device: &Device,
    cfg: &BenchConfig,
    peak: Option<f64>,
) -> Result<Measurement> {
    check_batch(batch)?;
    if batch < 2 {
        return Err(Error::config(
            "batch",
            batch,
            "a training step needs at least 2 (BatchNorm)",
        ));
    }
    reset_peak_rss();
    let channels = model.in_channels;
    let mut config = TrainConfig::recipe_with_normalization(
        crate::train::Recipe::Digits,
        model.clone(),
        vec![0.5; channels],
        vec![0.25; channels],
    );
    config.optimizer = optimizer;
    config.batch_size = batch;
    config.clip_norm = None;
    let mut trainer = Trainer::new(config, device)?;
    let graph = trainer.network.graph();
    let outputs: Vec<_> = graph.outputs().iter().map(|o| o.node).collect();
    let flop = 3.0 * 2.0 * graph.macs_for(&outputs) as f64;
    let [c, h, w] = graph.input_shape();
    let classes = model.classes.max(2);
    let data: Vec<f32> = (0..batch * c * h * w)
        .map(|i| ((i * 7919) % 255) as f32 / 255.0)
        .collect();
    let labels: Vec<usize> = (0..batch).map(|i| i % classes).collect();
    let times = time(cfg, || trainer.step(data.clone(), &labels, 0.001).map(drop))?;
    Ok(measurement(
        &trainer.network,
        Mode::Train,
        batch,
        &times,
        flop,
        peak,
    ))
}

fn check_batch(batch: usize) -> Result<()> {
    if batch == 0 || batch > 4096 {
        return Err(Error::config(
            "batch",
            batch,
            "it must be between 1 and 4096",
        ));
    }
    Ok(())
}

/// The time of one kind of step, summed over a plan's steps, median over runs.
#[derive(Clone, Debug, Serialize)]
pub struct ProfileRow {
    /// The node whose value the step leaves (after fusion).
    pub node: String,
    /// What the step computes.
    pub kind: StepKind,
    /// Median milliseconds per batch.
    pub ms: f64,
    /// Share of the whole run.
    pub share: f64,
}

/// A per-step profile of the fast engine at `batch`: each step's median time over `runs`
/// runs (after one warm-up), slowest first.
pub fn profile(network: &Network, batch: usize, runs: usize) -> Result<Vec<ProfileRow>> {
    check_batch(batch)?;
    let plan: Plan = network.compile()?;
    let [c, h, w] = plan.input_shape();
    let data = vec![0.5f32; batch * c * h * w];
    plan.run_raw(batch, &data)?;
    let mut per_step: Vec<Vec<f64>> = Vec::new();
    let mut names = Vec::new();
    for _ in 0..runs.max(1) {
        let (_, times) = plan.profile_raw(batch, &data)?;
        if per_step.is_empty() {
            per_step = vec![Vec::new(); times.len()];
            names = times.iter().map(|t| (t.node.clone(), t.kind)).collect();
        }
        for (acc, t) in per_step.iter_mut().zip(&times) {
            acc.push(t.time.as_secs_f64() * 1e3);
        }
    }
    let mut rows: Vec<ProfileRow> = per_step
        .iter_mut()
        .zip(names)
        .map(|(t, (node, kind))| {
            t.sort_by(f64::total_cmp);
            ProfileRow {
                node,
                kind,
                ms: median(t),
                share: 0.0,
            }
        })
        .collect();
    let total: f64 = rows.iter().map(|r| r.ms).sum();
    for r in &mut rows {
        r.share = r.ms / total.max(1e-12);
    }
    rows.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    Ok(rows)
}

/// The machine's single-precision FMA peak in GFLOP/s, for the vector unit the kernels run on
/// ([`inception_kernels::isa`]: AVX-512, AVX2+FMA or NEON, lowered by `INCEPTION_ISA`): every
/// thread of rayon's current pool runs independent vector FMA chains for about `duration`.
pub fn fma_peak(duration: Duration) -> f64 {
    use rayon::prelude::*;
    let threads = rayon::current_num_threads().max(1);
    let start = Instant::now();
    let flops: f64 = (0..threads)
        .into_par_iter()
        .map(|_| {
            let mut total = 0.0;
            while start.elapsed() < duration {
                total += fma::burst();
            }
            total
        })
        .sum();
    flops / start.elapsed().as_secs_f64() / 1e9
}

mod fma {
    /// Iterations of one burst: long enough to dwarf the clock read.
    const ITERS: usize = 1 << 16;

    /// Runs one burst of FMAs and returns the floating-point operations it did.
    pub fn burst() -> f64 {
        #[cfg(target_arch = "x86_64")]
        {
            match inception_kernels::isa() {
                // SAFETY: `isa()` only names an instruction set detected at runtime.
                inception_kernels::Isa::Avx512 => return unsafe { avx512() },
                // SAFETY: as above.
                inception_kernels::Isa::Avx2 => return unsafe { avx2() },
                inception_kernels::Isa::Generic => {}
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            // SAFETY: NEON is part of the aarch64 baseline.
            return unsafe { neon() };
        }
        #[allow(unreachable_code)]
        scalar()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512() -> f64 {
        use std::arch::x86_64::*;
        let m = _mm512_set1_ps(0.999_999);
        let a = _mm512_set1_ps(1e-7);
        let mut acc = [_mm512_set1_ps(1.0); 12];
        for _ in 0..ITERS {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, m, a);
            }
        }
        let mut sum = _mm512_setzero_ps();
        for x in acc {
            sum = _mm512_add_ps(sum, x);
        }
        std::hint::black_box(sum);
        (ITERS * 12 * 16 * 2) as f64
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2() -> f64 {
        use std::arch::x86_64::*;
        let m = _mm256_set1_ps(0.999_999);
        let a = _mm256_set1_ps(1e-7);
        let mut acc = [_mm256_set1_ps(1.0); 12];
        for _ in 0..ITERS {
            for x in acc.iter_mut() {
                *x = _mm256_fmadd_ps(*x, m, a);
            }
        }
        let mut sum = _mm256_setzero_ps();
        for x in acc {
            sum = _mm256_add_ps(sum, x);
        }
        std::hint::black_box(sum);
        (ITERS * 12 * 8 * 2) as f64
    }

    #[cfg(target_arch = "aarch64")]
    unsafe fn neon() -> f64 {
        use std::arch::aarch64::*;
        let m = vdupq_n_f32(0.999_999);
        let a = vdupq_n_f32(1e-7);
        let mut acc = [vdupq_n_f32(1.0); 12];
        for _ in 0..ITERS {
            for x in acc.iter_mut() {
                *x = vfmaq_f32(a, *x, m);
            }
        }
        std::hint::black_box(acc);
        (ITERS * 12 * 4 * 2) as f64
    }

    #[allow(dead_code)]
    fn scalar() -> f64 {
        let mut acc = [1.0f32; 8];
        for _ in 0..ITERS {
            for x in acc.iter_mut() {
                *x = x.mul_add(0.999_999, 1e-7);
            }
        }
        std::hint::black_box(acc);
        (ITERS * 8 * 2) as f64
    }
}

/// The CPU's model name (from `/proc/cpuinfo` on Linux, else the architecture) and the vector
/// unit the engine's kernels use on it: `Intel(R) Xeon(R) Processor, AVX-512`, or
/// `…, AVX2+FMA (INCEPTION_ISA=avx2; the CPU has AVX-512)` when the environment lowered it.
pub fn cpu_description() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let name = |isa: inception_kernels::Isa| match isa {
        inception_kernels::Isa::Avx512 => "AVX-512",
        inception_kernels::Isa::Avx2 => "AVX2+FMA",
        _ if cfg!(target_arch = "aarch64") => "NEON",
        _ => "no AVX2",
    };
    let used = inception_kernels::isa();
    let best = inception_kernels::Isa::available()
        .first()
        .copied()
        .unwrap_or(used);
    if used == best {
        format!("{model}, {}", name(used))
    } else {
        format!(
            "{model}, {} (INCEPTION_ISA={}; the CPU has {})",
            name(used),
            used.name(),
            name(best)
        )
    }
}

/// Peak resident memory of this process in bytes (`VmHWM`, Linux).
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets the peak resident memory to the current one (Linux `clear_refs`), so that the next
/// [`peak_rss`] covers what follows; a no-op elsewhere.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
