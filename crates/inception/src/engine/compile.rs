//! Lowering a graph to a plan: fusion (BatchNorm folding, ReLU epilogues), concatenation
//! targets, and the buffer plan.

use std::collections::HashMap;
use std::sync::Mutex;

use burn::tensor::Tensor;
use serde::Serialize;

use inception_kernels::{self as kernels, ConvGeometry, ConvKernel, Pool, View};

use super::Plan;
use crate::error::{Error, GraphFault, Result, WeightsFault};
use crate::graph::{Conv2dSpec, GlobalPool, LrnSpec, NodeId, Op, Shape};
use crate::network::Network;
use crate::nn::{BatchNorm2d, LayerModule};

/// What one step of a plan computes (for profiles).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Copying the input batch into channels-last order.
    Input,
    /// A convolution (with its folded BatchNorm, bias and ReLU).
    Conv,
    /// A dense layer (with its folded BatchNorm, bias and ReLU).
    Dense,
    /// Max or average pooling, adaptive or windowed.
    Pool,
    /// Global pooling.
    GlobalPool,
    /// Local response normalisation.
    Lrn,
    /// A per-channel scale and shift (a BatchNorm on its own, `transform_input`).
    Affine,
    /// A ReLU on its own.
    Relu,
    /// Element-wise sum.
    Add,
    /// A copy into a concatenation or a flattening.
    Copy,
    /// Softmax.
    Softmax,
}

pub(crate) enum StepOp {
    Input,
    Conv(ConvKernel),
    Dense(ConvKernel),
    Pool(Pool),
    /// An average pool after the 1x1 convolution it fed in the graph, finishing that
    /// convolution: its folded bias and ReLU.
    PoolWith {
        pool: Pool,
        bias: Vec<f32>,
        relu: bool,
    },
    AdaptiveAvg([usize; 2]),
    GlobalPool(GlobalPool),
    Lrn(LrnSpec),
    Affine {
        scale: Vec<f32>,
        shift: Vec<f32>,
        relu: bool,
    },
    Relu,
    Add {
        relu: bool,
    },
    Copy,
    /// Feature map to vector in `[C, H, W]` order.
    FlattenChw,
    /// Feature map to vector in `[H, W, C]` order.
    FlattenHwc,
    Softmax,
}

pub(crate) struct Step {
    pub node: NodeId,
    pub op: StepOp,
    pub inputs: Vec<View>,
    pub out: View,
}

impl Step {
    pub fn kind(&self) -> StepKind {
        match &self.op {
            StepOp::Input => StepKind::Input,
            StepOp::Conv(_) => StepKind::Conv,
            StepOp::Dense(_) => StepKind::Dense,
            StepOp::Pool(_) | StepOp::PoolWith { .. } | StepOp::AdaptiveAvg(_) => StepKind::Pool,
            StepOp::GlobalPool(_) => StepKind::GlobalPool,
            StepOp::Lrn(_) => StepKind::Lrn,
            StepOp::Affine { .. } => StepKind::Affine,
            StepOp::Relu => StepKind::Relu,
            StepOp::Add { .. } => StepKind::Add,
            StepOp::Copy | StepOp::FlattenChw | StepOp::FlattenHwc => StepKind::Copy,
            StepOp::Softmax => StepKind::Softmax,
        }
    }
}

/// Runs one step on the batch's buffers.
pub(crate) fn run_step(step: &Step, batch: usize, input: &[f32], buffers: &mut [Vec<f32>]) {
    let out_slot = step.out.slot;
    // The output buffer is taken out so that inputs (other slots) can be borrowed alongside.
    let mut out = std::mem::take(&mut buffers[out_slot]);
    // A step never reads the slot it writes (the plan only places a branch in its
    // concatenation's slot when nothing else reads the branch), but stay correct if it did.
    let same: Option<Vec<f32>> = step
        .inputs
        .iter()
        .any(|v| v.slot == out_slot)
        .then(|| out.clone());
    {
        let ins: Vec<&[f32]> = step
            .inputs
            .iter()
            .map(|v| match &same {
                Some(copy) if v.slot == out_slot => copy.as_slice(),
                _ => buffers[v.slot].as_slice(),
            })
            .collect();
        let (o, v) = (&mut out[..], &step.out);
        match &step.op {
            StepOp::Input => kernels::input_nhwc(input, batch, o, v),
            StepOp::Conv(k) | StepOp::Dense(k) => k.run(ins[0], &step.inputs[0], o, v, batch),
            StepOp::Pool(p) => p.run(ins[0], &step.inputs[0], o, v, batch),
            StepOp::PoolWith { pool, bias, relu } => {
                let tail = kernels::Epilogue {
                    bias: Some(bias),
                    relu: *relu,
                    accumulate: false,
                };
                pool.run_with(ins[0], &step.inputs[0], o, v, batch, tail)
            }
            StepOp::AdaptiveAvg(size) => {
                kernels::adaptive_avg(ins[0], &step.inputs[0], o, v, batch, *size)
            }
            StepOp::GlobalPool(kind) => {
                let max = matches!(kind, GlobalPool::Max);
                kernels::global_pool(ins[0], &step.inputs[0], o, v, batch, max)
            }
            StepOp::Lrn(l) => {
                let (alpha, beta, k) = (l.alpha as f32, l.beta as f32, l.k as f32);
                kernels::lrn(ins[0], &step.inputs[0], o, v, batch, l.size, alpha, beta, k)
            }
            StepOp::Affine { scale, shift, relu } => {
                kernels::affine(ins[0], &step.inputs[0], o, v, batch, scale, shift, *relu)
            }
            StepOp::Relu => kernels::relu(ins[0], &step.inputs[0], o, v, batch),
            StepOp::Add { relu } => kernels::add(&ins, &step.inputs, o, v, batch, *relu),
            StepOp::Copy => kernels::copy(ins[0], &step.inputs[0], o, v, batch),
            StepOp::FlattenChw => kernels::flatten(ins[0], &step.inputs[0], o, v, batch, false),
            StepOp::FlattenHwc => kernels::flatten(ins[0], &step.inputs[0], o, v, batch, true),
            StepOp::Softmax => kernels::softmax(ins[0], &step.inputs[0], o, v, batch),
        }
    }
    buffers[out_slot] = out;
}

fn dims(shape: &Shape) -> (usize, usize, usize) {
    match shape {
        Shape::Map([c, h, w]) => (*c, *h, *w),
        Shape::Flat(f) => (*f, 1, 1),
    }
}

/// How a node was absorbed into the step of an earlier node.
struct Chain {
    bn: Option<NodeId>,
    relu: bool,
    tail: NodeId,
}

pub(crate) fn compile(network: &Network, wanted: &[NodeId]) -> Result<Plan> {
    let graph = network.graph();
    let n = graph.nodes().len();
    if let Some(&bad) = wanted.iter().find(|&&w| w >= n) {
        return Err(Error::unknown_node(graph.name(), bad, n));
    }
    let needed = graph.needed(wanted);
    let mut consumers: Vec<Vec<NodeId>> = vec![Vec::new(); n];
    for (i, node) in graph.nodes().iter().enumerate() {
        if needed[i] {
            for &j in &node.inputs {
                consumers[j].push(i);
            }
        }
    }
    let mut is_wanted = vec![false; n];
    for &w in wanted {
        is_wanted[w] = true;
    }
    // The single consumer of `t`, when its value is needed by nothing else.
    let sole = |t: NodeId| -> Option<NodeId> {
        (!is_wanted[t] && consumers[t].len() == 1).then(|| consumers[t][0])
    };

    // 1. Fusion: conv/dense (+ BatchNorm) (+ ReLU); BatchNorm/affine/add (+ ReLU).
    let mut absorbed = vec![false; n];
    let mut chains: HashMap<NodeId, Chain> = HashMap::new();
    for (i, node) in graph.nodes().iter().enumerate() {
        if !needed[i] || absorbed[i] {
            continue;
        }
        let foldable = matches!(node.op, Op::Conv2d(_) | Op::Dense(_));
        let affine = matches!(
            node.op,
            Op::BatchNorm(_) | Op::ChannelAffine { .. } | Op::Add
        );
        if !foldable && !affine {
            continue;
        }
        let mut chain = Chain {
            bn: None,
            relu: false,
            tail: i,
        };
        // A BatchNorm, or a constant per-channel affine (Inception-ResNet's residual scale),
        // folds into the conv or dense layer before it.
        if foldable
            && let Some(j) = sole(i)
            && matches!(
                graph.nodes()[j].op,
                Op::BatchNorm(_) | Op::ChannelAffine { .. }
            )
        {
            chain.bn = Some(j);
            absorbed[j] = true;
            chain.tail = j;
        }
        if let Some(k) = sole(chain.tail)
            && matches!(graph.nodes()[k].op, Op::Relu)
        {
            chain.relu = true;
            absorbed[k] = true;
            chain.tail = k;
        }
        chains.insert(i, chain);
    }
    // An average pool with stride 1 whose only reader is a 1x1 convolution to fewer channels
    // (Inception v3's `branch_pool`): both are linear, so the convolution runs first, without
    // its bias and ReLU, and the pool after it over `cout` channels instead of `cin` (4-10x
    // fewer values), adding the bias and applying the ReLU.
    let mut pool_after: HashMap<NodeId, Pool> = HashMap::new();
    let mut deferred = vec![false; n];
    for (i, node) in graph.nodes().iter().enumerate() {
        let Op::AvgPool(p) = &node.op else {
            continue;
        };
        if !needed[i] || !matches!(node.shape, Shape::Map(_)) || p.stride != [1, 1] {
            continue;
        }
        if let Some(j) = sole(i)
            && let Op::Conv2d(spec) = &graph.nodes()[j].op
            && spec.kernel == [1, 1]
            && spec.stride == [1, 1]
            && spec.padding == [[0, 0], [0, 0]]
            && spec.groups == 1
            && spec.filters < spec.in_channels
        {
            let pool = Pool {
                max: false,
                kernel: p.kernel,
                stride: p.stride,
                padding: p.padding,
                count_include_pad: p.count_include_pad,
            };
            pool_after.insert(j, pool);
            deferred[i] = true;
        }
    }
    // The node whose value each step leaves behind.
    let tail = |i: NodeId| chains.get(&i).map_or(i, |c| c.tail);

    // 2. Aliases: dropout is the identity at inference; flattening a 1x1 map changes nothing.
    let alias = |i: NodeId| -> bool {
        let node = &graph.nodes()[i];
        match &node.op {
            Op::Dropout { .. } => true,
            Op::Flatten { .. } => {
                let (_, h, w) = dims(&graph.nodes()[node.inputs[0]].shape);
                h * w == 1
            }
            _ => false,
        }
    };

    // 3. Concatenation targets, outermost first: a branch whose value only the concatenation
    //    reads is written straight into its slice.
    let mut slot_dims: Vec<(usize, usize, usize)> = Vec::new(); // (stride, h, w) per logical slot
    let mut new_slot = |stride: usize, h: usize, w: usize| {
        slot_dims.push((stride, h, w));
        slot_dims.len() - 1
    };
    let mut target: HashMap<NodeId, View> = HashMap::new();
    // The node (chain head) producing each tail.
    let mut head_of: HashMap<NodeId, NodeId> = HashMap::new();
    for i in 0..n {
        if needed[i] && !absorbed[i] {
            head_of.insert(tail(i), i);
        }
    }
    for i in (0..n).rev() {
        let node = &graph.nodes()[i];
        if !needed[i] || absorbed[i] || !matches!(node.op, Op::Concat) {
            continue;
        }
        let (c, h, w) = dims(&node.shape);
        let view = match target.get(&i) {
            Some(v) => *v,
            None => View::dense(new_slot(c, h, w), c, h, w),
        };
        target.insert(i, view);
        let mut offset = view.offset;
        for &q in &node.inputs {
            let (qc, _, _) = dims(&graph.nodes()[q].shape);
            let once = node.inputs.iter().filter(|&&x| x == q).count() == 1;
            let producer = head_of.get(&q).copied();
            let retarget = once
                && !is_wanted[q]
                && consumers[q].len() == 1
                && matches!(graph.nodes()[q].shape, Shape::Map(_))
                && producer
                    .is_some_and(|h| !matches!(graph.nodes()[h].op, Op::Input { .. }) && !alias(h));
            if retarget {
                target.insert(
                    q,
                    View {
                        offset,
                        c: qc,
                        ..view
                    },
                );
            }
            offset += qc;
        }
    }

    // 4. Emission.
    let mut value: Vec<Option<View>> = vec![None; n];
    let mut steps: Vec<Step> = Vec::new();
    let layer = |i: NodeId| network.layer(i);
    let mis_shaped = |i: NodeId| {
        Error::from(WeightsFault::Other(format!(
            "{}: the parameters of layer '{}' do not have the shapes its graph node says",
            graph.name(),
            graph.nodes()[i].name
        )))
    };
    let missing = |i: NodeId| {
        Error::from(WeightsFault::Other(format!(
            "{}: layer '{}' has no parameters allocated",
            graph.name(),
            graph.nodes()[i].name
        )))
    };
    for (i, node) in graph.nodes().iter().enumerate() {
        if !needed[i] || absorbed[i] {
            continue;
        }
        if deferred[i] {
            // Pooled after the convolution that reads it: that convolution reads its input.
            value[i] =
                Some(node.inputs.first().and_then(|&j| value[j]).ok_or_else(|| {
                    Error::graph(graph.name(), GraphFault::RunsEarly { node: i })
                })?);
            continue;
        }
        let t = tail(i);
        let (c, h, w) = dims(&graph.nodes()[t].shape);
        let out = match target.get(&t) {
            Some(v) => *v,
            None => View::dense(new_slot(c, h, w), c, h, w),
        };
        let input_view = |k: usize| -> Result<View> {
            node.inputs
                .get(k)
                .and_then(|&j| value[j])
                .ok_or_else(|| Error::graph(graph.name(), GraphFault::RunsEarly { node: i }))
        };
        let relu = chains.get(&i).is_some_and(|c| c.relu);
        // The convolution's own output when an average pool finishes this step.
        let mut pooled = None;
        // The BatchNorm or affine folded into this conv/dense step, as `x * scale + shift`.
        let bn = match chains.get(&i).and_then(|c| c.bn) {
            None => None,
            Some(j) => match (&graph.nodes()[j].op, layer(j)) {
                (Op::ChannelAffine { scale, shift }, _) => Some((
                    scale.iter().map(|&s| s as f64).collect(),
                    shift.iter().map(|&t| t as f64).collect(),
                )),
                (_, Some(LayerModule::Norm(m))) => Some(fold(m)?),
                _ => return Err(missing(j)),
            },
        };
        let op = match &node.op {
            Op::Input { .. } => StepOp::Input,
            Op::Dropout { .. } => {
                value[i] = Some(input_view(0)?);
                continue;
            }
            Op::Flatten { channels_last } => {
                let v = input_view(0)?;
                if v.pixels() == 1 {
                    value[i] = Some(v);
                    continue;
                }
                if *channels_last {
                    StepOp::FlattenHwc
                } else {
                    StepOp::FlattenChw
                }
            }
            Op::Conv2d(spec) => {
                let Some(LayerModule::Conv(m)) = layer(i) else {
                    return Err(missing(i));
                };
                let geometry = ConvGeometry {
                    kernel: spec.kernel,
                    stride: spec.stride,
                    padding: spec.padding,
                    cin: spec.in_channels,
                    cout: spec.filters,
                };
                let weight = ungroup(spec, read(m.weight.val())?).ok_or_else(|| mis_shaped(i))?;
                let bias = fold_bias(spec.filters, bias(&m.bias)?, &bn);
                let scale = bn.as_ref().map(|(s, _)| s.as_slice());
                if let Some(&pool) = pool_after.get(&i) {
                    // The convolution over the pool's input into a buffer of its own, then the
                    // pool with the bias and ReLU into this step's place.
                    let src = input_view(0)?;
                    let (co, ph, pw) = (spec.filters, src.h, src.w);
                    let zero = vec![0.0; co];
                    let kernel = ConvKernel::from_oihw(geometry, &weight, scale, zero, false)
                        .ok_or_else(|| mis_shaped(i))?;
                    let before = View::dense(new_slot(co, ph, pw), co, ph, pw);
                    steps.push(Step {
                        node: i,
                        op: StepOp::Conv(kernel),
                        inputs: vec![src],
                        out: before,
                    });
                    pooled = Some(before);
                    StepOp::PoolWith { pool, bias, relu }
                } else {
                    StepOp::Conv(
                        ConvKernel::from_oihw(geometry, &weight, scale, bias, relu)
                            .ok_or_else(|| mis_shaped(i))?
                            .specialise(h, w),
                    )
                }
            }
            Op::Dense(spec) => {
                let Some(LayerModule::Dense(m)) = layer(i) else {
                    return Err(missing(i));
                };
                let bias = fold_bias(spec.units, bias(&m.bias)?, &bn);
                let scale = bn.as_ref().map(|(s, _)| s.as_slice());
                StepOp::Dense(
                    ConvKernel::dense(spec.in_features, read(m.weight.val())?, scale, bias, relu)
                        .ok_or_else(|| mis_shaped(i))?,
                )
            }
            Op::BatchNorm(_) => {
                let Some(LayerModule::Norm(m)) = layer(i) else {
                    return Err(missing(i));
                };
                let (scale, shift) = fold(m)?;
                StepOp::Affine {
                    scale: scale.iter().map(|&s| s as f32).collect(),
                    shift: shift.iter().map(|&s| s as f32).collect(),
                    relu,
                }
            }
            Op::ChannelAffine { scale, shift } => StepOp::Affine {
                scale: scale.clone(),
                shift: shift.clone(),
                relu,
            },
            Op::Relu => StepOp::Relu,
            Op::MaxPool(p) | Op::AvgPool(p) => StepOp::Pool(Pool {
                max: matches!(node.op, Op::MaxPool(_)),
                kernel: p.kernel,
                stride: p.stride,
                padding: p.padding,
                count_include_pad: p.count_include_pad,
            }),
            Op::AdaptiveAvgPool { size } => StepOp::AdaptiveAvg(*size),
            Op::GlobalPool(kind) => StepOp::GlobalPool(*kind),
            Op::Lrn(l) => StepOp::Lrn(l.clone()),
            Op::Add => StepOp::Add { relu },
            Op::Softmax => StepOp::Softmax,
            Op::Concat => {
                // Branches not written in place are copied into their slices.
                let mut offset = out.offset;
                for &q in &node.inputs {
                    let src = value[q].ok_or_else(|| {
                        Error::graph(graph.name(), GraphFault::RunsEarly { node: q })
                    })?;
                    let dst = View {
                        offset,
                        c: src.c,
                        ..out
                    };
                    if src != dst {
                        steps.push(Step {
                            node: i,
                            op: StepOp::Copy,
                            inputs: vec![src],
                            out: dst,
                        });
                    }
                    offset += src.c;
                }
                value[i] = Some(out);
                continue;
            }
        };
        let inputs = match pooled {
            Some(v) => vec![v],
            None => (0..node.inputs.len())
                .map(input_view)
                .collect::<Result<Vec<_>>>()?,
        };
        steps.push(Step {
            node: t,
            op,
            inputs,
            out,
        });
        value[t] = Some(out);
    }

    let outputs = wanted
        .iter()
        .map(|&w| {
            let v = value[w]
                .ok_or_else(|| Error::graph(graph.name(), GraphFault::RunsEarly { node: w }))?;
            Ok((v, matches!(graph.nodes()[w].shape, Shape::Map(_))))
        })
        .collect::<Result<Vec<_>>>()?;

    // 5. Buffer plan: logical slots live from their first write to their last read; physical
    //    slots are reused greedily (best fit by size).
    let (steps, outputs, slot_sizes) = assign_slots(steps, outputs, &slot_dims);
    Ok(Plan {
        model: graph.name().to_string(),
        input: graph.input_shape(),
        steps,
        slot_sizes,
        outputs,
        names: graph.nodes().iter().map(|n| n.name.clone()).collect(),
        workspace: Mutex::new(Vec::new()),
    })
}

/// Where each wanted value ends up, and whether it is a feature map.
type Outputs = Vec<(View, bool)>;

fn assign_slots(
    mut steps: Vec<Step>,
    mut outputs: Outputs,
    slot_dims: &[(usize, usize, usize)],
) -> (Vec<Step>, Outputs, Vec<usize>) {
    let logical = slot_dims.len();
    let end = steps.len();
    let mut first = vec![usize::MAX; logical];
    let mut last = vec![0usize; logical];
    for (s, step) in steps.iter().enumerate() {
        first[step.out.slot] = first[step.out.slot].min(s);
        last[step.out.slot] = last[step.out.slot].max(s);
        for v in &step.inputs {
            last[v.slot] = last[v.slot].max(s);
        }
    }
    for (v, _) in &outputs {
        last[v.slot] = end;
    }
    let size = |l: usize| {
        let (stride, h, w) = slot_dims[l];
        stride * h * w
    };
    let mut physical: Vec<usize> = Vec::new(); // sizes
    let mut free: Vec<usize> = Vec::new();
    let mut map = vec![usize::MAX; logical];
    let mut by_first: Vec<usize> = (0..logical).filter(|&l| first[l] != usize::MAX).collect();
    by_first.sort_by_key(|&l| first[l]);
    let mut by_last: Vec<usize> = by_first.clone();
    by_last.sort_by_key(|&l| last[l]);
    let mut released = 0;
    for &l in &by_first {
        let s = first[l];
        while released < by_last.len() && last[by_last[released]] < s {
            let p = map[by_last[released]];
            if p != usize::MAX {
                free.push(p);
            }
            released += 1;
        }
        let need = size(l);
        // Best fit: the smallest free slot that is large enough, else the largest (grown).
        let pick = free
            .iter()
            .enumerate()
            .filter(|(_, p)| physical[**p] >= need)
            .min_by_key(|(_, p)| physical[**p])
            .or_else(|| free.iter().enumerate().max_by_key(|(_, p)| physical[**p]))
            .map(|(k, _)| k);
        let p = match pick {
            Some(k) => free.swap_remove(k),
            None => {
                physical.push(0);
                physical.len() - 1
            }
        };
        physical[p] = physical[p].max(need);
        map[l] = p;
    }
    let remap = |v: &mut View| v.slot = map[v.slot];
    for step in &mut steps {
        remap(&mut step.out);
        step.inputs.iter_mut().for_each(remap);
    }
    for (v, _) in &mut outputs {
        remap(v);
    }
    (steps, outputs, physical)
}

fn read<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| {
            Error::from(WeightsFault::Other(format!(
                "a parameter is not readable as f32: {e:?}"
            )))
        })
}

fn bias(b: &Option<burn::module::Param<Tensor<1>>>) -> Result<Option<Vec<f32>>> {
    b.as_ref().map(|p| read(p.val())).transpose()
}

/// A grouped convolution's `[out, in / groups, kh, kw]` weight as the dense `[out, in, kh, kw]`
/// one, zero outside each output channel's group (grouped convs are only the small depthwise
/// stems here, so the dense GEMM costs little); `None` when the length does not fit.
fn ungroup(spec: &Conv2dSpec, weight: Vec<f32>) -> Option<Vec<f32>> {
    let groups = spec.groups.max(1);
    if groups == 1 {
        return Some(weight);
    }
    let [cout, per, kh, kw] = spec.weight_shape();
    let k = kh * kw;
    if weight.len() != cout * per * k || cout % groups != 0 {
        return None;
    }
    let cin = spec.in_channels;
    let outs_per_group = cout / groups;
    let mut dense = vec![0.0; cout * cin * k];
    for o in 0..cout {
        let first = (o / outs_per_group) * per;
        for j in 0..per {
            let src = (o * per + j) * k;
            let dst = (o * cin + first + j) * k;
            dense[dst..dst + k].copy_from_slice(&weight[src..src + k]);
        }
    }
    Some(dense)
}

/// BatchNorm in evaluation mode as `x * scale + shift`, in f64.
fn fold(bn: &BatchNorm2d) -> Result<(Vec<f64>, Vec<f64>)> {
    let beta = read(bn.beta.val())?;
    let gamma = match &bn.gamma {
        Some(g) => read(g.val())?,
        None => vec![1.0; beta.len()],
    };
    let mean = read(bn.running_mean.value())?;
    let var = read(bn.running_var.value())?;
    let scale: Vec<f64> = gamma
        .iter()
        .zip(&var)
        .map(|(&g, &v)| g as f64 / (v as f64 + bn.epsilon).sqrt())
        .collect();
    let shift = beta
        .iter()
        .zip(&mean)
        .zip(&scale)
        .map(|((&b, &m), &s)| b as f64 - m as f64 * s)
        .collect();
    Ok((scale, shift))
}

/// The bias after a folded BatchNorm: `b * scale + shift` (zero without a bias).
fn fold_bias(cout: usize, bias: Option<Vec<f32>>, bn: &Option<(Vec<f64>, Vec<f64>)>) -> Vec<f32> {
    let b = bias.unwrap_or_else(|| vec![0.0; cout]);
    match bn {
        None => b,
        Some((scale, shift)) => b
            .iter()
            .zip(scale.iter().zip(shift))
            .map(|(&b, (&s, &t))| (b as f64 * s + t) as f32)
            .collect(),
    }
}
