//! [`Network`]: a trainable Burn module that executes a [`Graph`].

use std::sync::Arc;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::LocalResponseNormConfig;
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor, activation};

use crate::engine::{self, Plan};
use crate::error::{Error, GraphFault, Result};
use crate::graph::{GlobalPool, Graph, NodeId, Op, ParamCount};
use crate::nn::{LayerModule, Value};

/// What a forward pass returns, in training and in evaluation alike.
///
/// The type never changes with the mode (the torchvision pain point where GoogLeNet returns a
/// namedtuple in training and a tensor in evaluation): `aux` is simply empty for a network built
/// without auxiliary classifiers, and [`Network::infer`] skips them when they are not wanted.
#[derive(Clone, Debug)]
pub struct ModelOutput {
    /// The main output: logits `[N, classes]` with a top, pooled features `[N, C]` with
    /// `pooling`, or the last feature map `[N, C, H, W]` without either.
    pub output: Value,
    /// Auxiliary-classifier logits `[N, classes]`, shallowest first (GoogLeNet: aux1 after 4a,
    /// aux2 after 4d — not torchvision's reversed order).
    pub aux: Vec<Tensor<2>>,
}

impl ModelOutput {
    /// The main output as `[N, F]` (logits, or flattened features).
    pub fn logits(&self) -> Tensor<2> {
        self.output.clone().flat()
    }
}

/// A network: a [`Graph`] plus the parameters of its layers, as one Burn [`Module`].
///
/// The same value trains (on an autodiff device, e.g. `Device::flex().autodiff()`) and
/// evaluates (after [`Module::valid`], or on a plain device); BatchNorm and dropout follow the
/// device and the module's training flags, never a separate model type.
#[derive(Module, Debug)]
pub struct Network {
    /// One entry per graph node; `None` for parameter-free operations. Private: it always
    /// matches the graph node for node (see [`Network::layer`]).
    layers: Vec<Option<LayerModule>>,
    #[module(skip)]
    graph: Arc<Graph>,
}

impl Network {
    /// The module holding the parameters of graph node `node` (`None` for operations without
    /// parameters, or a node the graph does not have).
    pub fn layer(&self, node: NodeId) -> Option<&LayerModule> {
        self.layers.get(node).and_then(Option::as_ref)
    }

    /// Every parameter-holding module, in graph order.
    pub fn layer_modules(&self) -> impl Iterator<Item = &LayerModule> {
        self.layers.iter().flatten()
    }

    /// Mutable access for the weight loaders, in graph order.
    pub(crate) fn layers_mut(&mut self) -> &mut [Option<LayerModule>] {
        &mut self.layers
    }

    /// Moves the parameters out, leaving `self` with the graph and no layers, so that the
    /// optimizer owns the only reference to each parameter buffer and updates it in place.
    pub(crate) fn take(&mut self) -> Network {
        Network {
            layers: std::mem::take(&mut self.layers),
            graph: self.graph.clone(),
        }
    }

    /// Allocates freshly initialised parameters for `graph` on `device`.
    pub fn new(graph: Graph, device: &Device) -> Self {
        let layers = graph
            .nodes
            .iter()
            .map(|n| LayerModule::for_op(&n.op, device))
            .collect();
        Self {
            layers,
            graph: Arc::new(graph),
        }
    }

    /// The architecture this network executes.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The device its parameters live on (inputs must be made there); the default device for
    /// a network without parameters.
    pub fn device(&self) -> Device {
        struct First(Option<Device>);
        impl ModuleVisitor for First {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if self.0.is_none() {
                    self.0 = Some(param.val().device());
                }
            }
        }
        let mut first = First(None);
        self.visit(&mut first);
        first.0.unwrap_or_default()
    }

    /// Checks that a batch of the given dimensions fits the network's input.
    pub fn check_input(&self, dims: [usize; 4]) -> Result<()> {
        let want = self.graph.input_shape();
        if dims[1..] != want {
            return Err(Error::Input {
                model: self.graph.name.clone(),
                expected: want,
                got: dims.to_vec(),
            });
        }
        Ok(())
    }

    /// Main output and auxiliary logits (when the network has aux heads). An input of another
    /// shape than the network was built for is an [`Error::Input`].
    pub fn forward(&self, input: Tensor<4>) -> Result<ModelOutput> {
        let main = self.graph.main_output().node;
        let mut wanted = vec![main];
        wanted.extend(self.graph.aux_outputs().map(|o| o.node));
        let mut values = self.run(input, &wanted)?.into_iter();
        let output = values
            .next()
            .ok_or_else(|| Error::graph(self.graph.name.clone(), GraphFault::NoOutput))?;
        Ok(ModelOutput {
            output,
            aux: values.map(Value::flat).collect(),
        })
    }

    /// The main output only; auxiliary heads are not computed (inference).
    pub fn infer(&self, input: Tensor<4>) -> Result<Value> {
        let main = self.graph.main_output().node;
        self.run(input, &[main])?
            .pop()
            .ok_or_else(|| Error::graph(self.graph.name.clone(), GraphFault::NoOutput))
    }

    /// The outputs of the named layers or blocks (feature extraction: `inception4e`, `Mixed_6e`,
    /// `mixed5`, `conv1`); only the layers they depend on run.
    pub fn features(&self, input: Tensor<4>, layers: &[&str]) -> Result<Vec<Value>> {
        let ids = layers
            .iter()
            .map(|name| self.graph.resolve(name))
            .collect::<Result<Vec<_>>>()?;
        self.run(input, &ids)
    }

    /// Runs the graph and returns the values of `wanted` nodes, in order. Intermediate values are
    /// dropped as soon as their last consumer has run. An input of the wrong shape or a node
    /// the graph does not have is an error.
    ///
    /// On the CPU device outside of training this compiles a [`Plan`] for `wanted` and runs it
    /// (the fast engine); a loop over many batches should call [`Network::compile`] once and
    /// keep the plan. Elsewhere (GPUs, autodiff) it is [`Network::run_reference`].
    pub fn run(&self, input: Tensor<4>, wanted: &[NodeId]) -> Result<Vec<Value>> {
        if engine::serves(&input.device()) {
            self.check_input(input.dims())?;
            return Plan::compile(self, wanted)?.run(input);
        }
        self.run_reference(input, wanted)
    }

    /// A fast inference plan for the main output (see [`crate::engine`]): compile once, run
    /// many batches. Its weights are a snapshot: compile again after training.
    pub fn compile(&self) -> Result<Plan> {
        Plan::compile(self, &[self.graph.main_output().node])
    }

    /// A fast inference plan for the values of the `wanted` nodes.
    pub fn compile_for(&self, wanted: &[NodeId]) -> Result<Plan> {
        Plan::compile(self, wanted)
    }

    /// Burn's operation-by-operation execution, on any device, differentiable on an autodiff
    /// device: what training uses, and the reference the fast engine is tested against.
    pub fn run_reference(&self, input: Tensor<4>, wanted: &[NodeId]) -> Result<Vec<Value>> {
        self.check_input(input.dims())?;
        let graph = &*self.graph;
        if let Some(&bad) = wanted.iter().find(|&&w| w >= graph.nodes.len()) {
            return Err(Error::unknown_node(
                graph.name.clone(),
                bad,
                graph.nodes.len(),
            ));
        }
        let needed = graph.needed(wanted);
        let mut uses = vec![0usize; graph.nodes.len()];
        for (node, _) in graph.nodes.iter().zip(&needed).filter(|(_, n)| **n) {
            for &j in &node.inputs {
                uses[j] += 1;
            }
        }
        for &w in wanted {
            uses[w] += 1;
        }
        // A batch norm whose one consumer is a ReLU runs with the ReLU fused in (one pass each
        // way on the CPU); the ReLU node then passes its input on.
        let mut fused = vec![false; graph.nodes.len()];
        for (node, _) in graph.nodes.iter().zip(&needed).filter(|(_, n)| **n) {
            if let (Op::Relu, &[i]) = (&node.op, node.inputs.as_slice())
                && uses[i] == 1
                && matches!(graph.nodes[i].op, Op::BatchNorm(_))
            {
                fused[i] = true;
            }
        }
        let mut values: Vec<Option<Value>> = vec![None; graph.nodes.len()];
        let mut input = Some(input);
        for (i, node) in graph.nodes.iter().enumerate() {
            if !needed[i] {
                continue;
            }
            let mut args = Vec::with_capacity(node.inputs.len());
            for &j in &node.inputs {
                uses[j] -= 1;
                let v = if uses[j] == 0 {
                    values[j].take()
                } else {
                    values[j].clone()
                };
                args.push(v.expect("inputs run before their consumers"));
            }
            let out = match &node.op {
                Op::Input { .. } => Value::Map(input.take().expect("one input node")),
                Op::Relu if fused[node.inputs[0]] => args.remove(0),
                _ => self.apply(i, &node.op, args, fused[i]),
            };
            values[i] = Some(out);
        }
        Ok(wanted
            .iter()
            .map(|&w| values[w].clone().expect("wanted nodes are computed"))
            .collect())
    }

    /// Runs node `i`'s operation; `relu` asks a batch norm to apply the ReLU after it.
    fn apply(&self, i: usize, op: &Op, args: Vec<Value>, relu: bool) -> Value {
        let module = self.layers[i].as_ref();
        let mut args = args.into_iter();
        let first = args
            .next()
            .expect("every operation but the input has an input");
        match (op, module) {
            (Op::Conv2d(_), Some(LayerModule::Conv(c))) => {
                Value::Map(crate::ops::conv2d_layer(c, first.map()))
            }
            (Op::BatchNorm(_), Some(LayerModule::Norm(bn))) => match (first, relu) {
                (Value::Map(t), false) => Value::Map(bn.forward(t)),
                (Value::Map(t), true) => Value::Map(bn.forward_relu(t)),
                (Value::Flat(t), false) => Value::Flat(bn.forward(t)),
                (Value::Flat(t), true) => Value::Flat(bn.forward_relu(t)),
            },
            (Op::Dense(_), Some(LayerModule::Dense(d))) => Value::Flat(d.forward(first.flat())),
            (Op::Dropout { .. }, Some(LayerModule::Dropout(d))) => match first {
                Value::Map(t) => Value::Map(d.forward(t)),
                Value::Flat(t) => Value::Flat(d.forward(t)),
            },
            (Op::Relu, _) => match first {
                Value::Map(t) => Value::Map(activation::relu(t)),
                Value::Flat(t) => Value::Flat(activation::relu(t)),
            },
            (Op::MaxPool(p), _) => Value::Map(crate::ops::max_pool2d(first.map(), p)),
            (Op::AvgPool(p), _) => Value::Map(crate::ops::avg_pool2d(first.map(), p)),
            (Op::AdaptiveAvgPool { size }, _) => {
                Value::Map(adaptive_avg_pool2d(first.map(), *size))
            }
            (Op::GlobalPool(kind), _) => {
                let t = first.map();
                let [n, c, _, _] = t.dims();
                let pooled = match kind {
                    GlobalPool::Avg => t.flatten::<3>(2, 3).mean_dim(2),
                    GlobalPool::Max => t.flatten::<3>(2, 3).max_dim(2),
                };
                Value::Flat(pooled.reshape([n, c]))
            }
            (Op::Lrn(l), _) => Value::Map(
                LocalResponseNormConfig::new(l.size)
                    .with_alpha(l.alpha)
                    .with_beta(l.beta)
                    .with_k(l.k)
                    .init()
                    .forward(first.map()),
            ),
            (Op::Concat, _) => {
                let maps: Vec<Tensor<4>> =
                    std::iter::once(first).chain(args).map(Value::map).collect();
                Value::Map(Tensor::cat(maps, 1))
            }
            (Op::Add, _) => {
                let mut acc = first;
                for v in args {
                    acc = match (acc, v) {
                        (Value::Map(a), b) => Value::Map(a + b.map()),
                        (Value::Flat(a), b) => Value::Flat(a + b.flat()),
                    };
                }
                acc
            }
            (Op::Flatten { channels_last }, _) => match first {
                Value::Map(t) if *channels_last => {
                    Value::Flat(t.permute([0, 2, 3, 1]).flatten(1, 3))
                }
                other => Value::Flat(other.flat()),
            },
            (Op::Softmax, _) => Value::Flat(activation::softmax(first.flat(), 1)),
            (Op::ChannelAffine { scale, shift }, _) => {
                let c = scale.len();
                let flat = matches!(first, Value::Flat(_));
                let t = first.map();
                let device = t.device();
                let s = Tensor::<1>::from_floats(scale.as_slice(), &device).reshape([1, c, 1, 1]);
                let b = Tensor::<1>::from_floats(shift.as_slice(), &device).reshape([1, c, 1, 1]);
                let out = Value::Map(t * s + b);
                if flat { Value::Flat(out.flat()) } else { out }
            }
            (op, _) => panic!(
                "layer '{}' ({}) has no parameters allocated",
                self.graph.nodes[i].name,
                op.type_name()
            ),
        }
    }

    /// A copy with BatchNorm running statistics of its own. Burn's running states are shared
    /// between clones of a module (a clone's forward pass updates the original's statistics);
    /// a replica or a moving average must not do that.
    pub fn independent_copy(&self) -> Self {
        use burn::module::RunningState;
        let mut copy = self.clone();
        for layer in copy.layers.iter_mut().flatten() {
            if let LayerModule::Norm(bn) = layer {
                bn.running_mean = RunningState::new(bn.running_mean.value_sync());
                bn.running_var = RunningState::new(bn.running_var.value_sync());
            }
        }
        copy
    }

    /// Freezes the layers of the first `count` graph nodes: their parameters stop requiring
    /// gradients and their BatchNorms use (and keep) their running statistics — the frozen
    /// feature extractor of transfer learning, without Keras's `trainable=False` BatchNorm trap.
    pub fn freeze_first(mut self, count: usize) -> Self {
        for layer in self.layers.iter_mut().take(count) {
            *layer = layer.take().map(Module::freeze);
        }
        self
    }

    /// Freezes every BatchNorm layer (statistics and affine), wherever it is: the setting Keras's
    /// fine-tuning guide recommends when a pretrained network's top blocks are unfrozen, so
    /// that a few small batches of new data cannot drag its statistics away.
    pub fn freeze_batchnorms(mut self) -> Self {
        for layer in self.layers.iter_mut() {
            if let Some(LayerModule::Norm(_)) = layer {
                *layer = layer.take().map(Module::freeze);
            }
        }
        self
    }

    /// Trainable and non-trainable parameter counts measured on the allocated tensors.
    pub fn param_count(&self) -> ParamCount {
        let mut v = CountVisitor::default();
        self.visit(&mut v);
        v.count
    }
}

/// Counts parameters by walking the module tree; BatchNorm running statistics (visited as float
/// tensors too) are told apart by their field names.
#[derive(Default)]
struct CountVisitor {
    path: Vec<String>,
    count: ParamCount,
}

impl ModuleVisitor for CountVisitor {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let n = param.lazy_shape().num_elements();
        match self.path.last().map(String::as_str) {
            Some("running_mean") | Some("running_var") => self.count.non_trainable += n,
            _ => self.count.trainable += n,
        }
    }
}
