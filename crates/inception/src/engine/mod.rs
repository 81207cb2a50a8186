//! The fast CPU inference engine: a [`Plan`] compiled once from a [`Network`] and run many times.
//!
//! Burn executes a graph operation by operation in NCHW, each operation allocating its output.
//! A plan does what ONNX Runtime's graph optimiser and MLAS do before any kernel runs:
//!
//! - **channels-last** (NHWC) activations, so that a 1x1 convolution is one GEMM over all pixels
//!   and a kxk convolution one GEMM over its im2col rows (the `gemm` crate, with runtime
//!   dispatch between AVX2, AVX-512 and NEON);
//! - **BatchNorm folded** into the convolution (or dense layer) before it, and the bias and the
//!   ReLU applied in the GEMM's epilogue, while the output rows are still in cache;
//! - **concatenation without copies**: each branch of an inception module writes straight into
//!   its channel slice of the module's output;
//! - **buffers planned once**: a value's memory is reused as soon as its last reader has run, so
//!   peak memory is the largest set of values alive at once plus a bounded im2col workspace;
//! - every kernel parallel over the rows of its output (rayon's current pool).
//!
//! Results equal Burn's operation-by-operation path within float rounding (the parity tests in
//! `tests/engine.rs` hold every built-in model and fixture to 1e-4 relative).
//!
//! [`Network::infer`], [`Network::run`], [`Network::features`] and everything built on them use a
//! plan automatically on the CPU device outside of training. Code that runs the same network
//! many times compiles one plan and keeps it:
//!
//! ```
//! use inception::{Arch, ModelConfig, Network};
//! use inception::burn::tensor::{Device, Distribution, Tensor};
//!
//! let device = Device::flex();
//! let graph = ModelConfig::new(Arch::InceptionMini).with_classes(10).graph().unwrap();
//! let network = Network::new(graph, &device);
//! let plan = network.compile().unwrap();
//! let x = Tensor::<4>::random([2, 1, 28, 28], Distribution::Default, &device);
//! let fast = plan.infer(x.clone()).unwrap().flat();
//! let reference = network.run_reference(x, &[network.graph().main_output().node]).unwrap();
//! let diff: f32 = (fast - reference[0].clone().flat()).abs().max().into_scalar();
//! assert!(diff < 1e-4);
//! ```

mod compile;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, GraphFault, Result};
use crate::graph::NodeId;
use crate::network::Network;
use crate::nn::Value;
use inception_kernels::View;

pub use compile::StepKind;

/// A compiled inference plan for one network and one set of outputs.
///
/// It holds its own copy of the weights (BatchNorm folded, laid out for the kernels), so it
/// stays valid while the network it came from trains on; compile a new one to see new weights.
pub struct Plan {
    pub(crate) model: String,
    pub(crate) input: [usize; 3],
    pub(crate) steps: Vec<compile::Step>,
    /// Values per sample of each buffer slot.
    pub(crate) slot_sizes: Vec<usize>,
    /// Where each wanted value ends up, and whether it is a feature map.
    pub(crate) outputs: Vec<(View, bool)>,
    pub(crate) names: Vec<String>,
    workspace: Mutex<Vec<Vec<f32>>>,
}

/// A value as plain numbers: `dims` is `[N, C, H, W]` for a feature map, `[N, F]` for a vector;
/// `values` are in that (row-major, NCHW) order.
#[derive(Clone, Debug, PartialEq)]
pub struct RawValue {
    /// Dimensions, batch first.
    pub dims: Vec<usize>,
    /// The values.
    pub values: Vec<f32>,
}

/// Time spent in one step of a plan, for `inception bench --profile`.
#[derive(Clone, Debug)]
pub struct StepTime {
    /// The graph node whose value the step produces (after fusion, the last node of the chain).
    pub node: String,
    /// What the step computes.
    pub kind: StepKind,
    /// Wall time of the step.
    pub time: Duration,
}

impl Plan {
    /// Compiles `network` for the values of the `wanted` nodes.
    pub fn compile(network: &Network, wanted: &[NodeId]) -> Result<Self> {
        compile::compile(network, wanted)
    }

    /// The network's name.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The input `[C, H, W]` the plan takes.
    pub fn input_shape(&self) -> [usize; 3] {
        self.input
    }

    /// Number of kernels one run executes (after fusion).
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether the plan runs nothing (a graph whose output is its input).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Activation memory one sample needs (all buffer slots), in values.
    pub fn activation_values_per_sample(&self) -> usize {
        self.slot_sizes.iter().sum()
    }

    /// Runs a batch given as NCHW values (`batch * C * H * W` of them) and returns each wanted
    /// value.
    pub fn run_raw(&self, batch: usize, input: &[f32]) -> Result<Vec<RawValue>> {
        self.execute(batch, input, None)
    }

    /// Like [`Plan::run_raw`], timing each step.
    pub fn profile_raw(
        &self,
        batch: usize,
        input: &[f32],
    ) -> Result<(Vec<RawValue>, Vec<StepTime>)> {
        let mut times = Vec::with_capacity(self.steps.len());
        let out = self.execute(batch, input, Some(&mut times))?;
        Ok((out, times))
    }

    /// Runs a batch tensor and returns the wanted values as tensors on the input's device.
    pub fn run(&self, input: Tensor<4>) -> Result<Vec<Value>> {
        let dims = input.dims();
        if dims[1..] != self.input {
            return Err(Error::Input {
                model: self.model.clone(),
                expected: self.input,
                got: dims.to_vec(),
            });
        }
        let device = input.device();
        let data = input
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| {
                Error::graph(
                    self.model.clone(),
                    GraphFault::InputType {
                        got: format!("{e:?}"),
                    },
                )
            })?;
        let outs = self.execute(dims[0], &data, None)?;
        Ok(outs
            .into_iter()
            .map(|raw| to_value(raw.dims, raw.values, &device))
            .collect())
    }

    /// The first wanted value (the main output for a plan from [`Network::compile`]).
    pub fn infer(&self, input: Tensor<4>) -> Result<Value> {
        self.run(input)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::graph(self.model.clone(), GraphFault::NoOutput))
    }

    fn execute(
        &self,
        batch: usize,
        input: &[f32],
        mut times: Option<&mut Vec<StepTime>>,
    ) -> Result<Vec<RawValue>> {
        let per_sample: usize = self.input.iter().product();
        if batch == 0 || input.len() != batch.saturating_mul(per_sample) {
            return Err(Error::Input {
                model: self.model.clone(),
                expected: self.input,
                got: vec![batch, input.len() / per_sample.max(1)],
            });
        }
        let mut buffers = self
            .workspace
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default();
        buffers.resize_with(self.slot_sizes.len(), Vec::new);
        for (buf, &size) in buffers.iter_mut().zip(&self.slot_sizes) {
            let want = size.saturating_mul(batch);
            if buf.len() != want {
                buf.clear();
                buf.resize(want, 0.0);
            }
        }
        // The steps run on one of rayon's worker threads (called from elsewhere, this thread
        // waits for the whole plan): each step's parallel loop then starts and ends among the
        // pool's own threads, where from another thread every step would hand its work to the
        // pool and sleep until it came back (Inception v3 at batch 1 ran 4% faster this way).
        rayon::scope(|_| {
            for step in &self.steps {
                let start = Instant::now();
                compile::run_step(step, batch, input, &mut buffers);
                if let Some(t) = times.as_deref_mut() {
                    t.push(StepTime {
                        node: self.names[step.node].clone(),
                        kind: step.kind(),
                        time: start.elapsed(),
                    });
                }
            }
        });
        let outs = self
            .outputs
            .iter()
            .map(|(view, map)| {
                let (dims, values) =
                    inception_kernels::gather_nchw(&buffers[view.slot], view, batch, *map);
                RawValue { dims, values }
            })
            .collect();
        if let Ok(mut w) = self.workspace.lock() {
            *w = buffers;
        }
        Ok(outs)
    }
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("model", &self.model)
            .field("steps", &self.steps.len())
            .field("slots", &self.slot_sizes.len())
            .finish()
    }
}

fn to_value(shape: Vec<usize>, values: Vec<f32>, device: &Device) -> Value {
    let data = TensorData::new(values, shape.clone());
    if shape.len() == 4 {
        Value::Map(Tensor::<4>::from_data(data, device))
    } else {
        Value::Flat(Tensor::<2>::from_data(data, device))
    }
}

/// A plan compiled on first use, for a value that runs the same nodes of one frozen network
/// batch after batch (a classifier, an extractor, an evaluation).
#[derive(Default)]
pub(crate) struct Cached(std::sync::OnceLock<Result<Plan>>);

impl Cached {
    /// The `wanted` nodes of `network` for `input`: through the cached plan on the CPU, through
    /// Burn elsewhere. `wanted` must be the same on every call.
    pub fn run(
        &self,
        network: &Network,
        input: Tensor<4>,
        wanted: &[NodeId],
    ) -> Result<Vec<Value>> {
        if !serves(&input.device()) {
            return network.run_reference(input, wanted);
        }
        network.check_input(input.dims())?;
        let plan = self
            .0
            .get_or_init(|| Plan::compile(network, wanted))
            .as_ref()
            .map_err(Clone::clone)?;
        plan.run(input)
    }
}

impl std::fmt::Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Cached(compiled)"
        } else {
            "Cached(empty)"
        })
    }
}

/// Whether a network on `device` runs through a plan: the CPU device, outside of autodiff
/// (training keeps Burn's differentiable path; GPUs keep Burn's kernels).
pub(crate) fn serves(device: &Device) -> bool {
    !device.is_autodiff() && *device == Device::flex()
}
