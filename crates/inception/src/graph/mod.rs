//! The graph representation every network is built on: the Keras-style functional and sequential
//! APIs, and the one data structure that execution, the summary, the diagram and checkpoint names
//! all read.
//!
//! A [`Graph`] is a list of [`Node`]s in topological order. Each node has a checkpoint-style name
//! (`inception3a.branch2.0.conv`), an [`Op`], its input nodes and its statically inferred output
//! [`Shape`]. Nodes may belong to a [`Block`] (an inception module, a stem, an aux head) and, inside
//! it, to a numbered branch: that is what the diagram draws as parallel columns.
//!
//! ```
//! use inception::graph::{GraphBuilder, Padding};
//!
//! // The tutorial's naive inception block on a 28x28x192 input, then a classifier.
//! let mut g = GraphBuilder::new("naive_net");
//! let x = g.input([192, 28, 28]);
//! let x = inception::blocks::naive_inception_block(&mut g, x, "naive", [64, 128, 32]);
//! let x = g.global_avg_pool("gap", x);
//! let y = g.dense("fc", x, 10, true);
//! g.output("logits", y);
//! let graph = g.finish().unwrap();
//! assert_eq!(graph.shape_of("naive.concat").unwrap().channels(), 64 + 128 + 32 + 192);
//! ```

mod op;
mod sequential;

pub use op::*;
pub use sequential::{Layer, Sequential};

use serde::Serialize;

use crate::error::{Error, Result};

/// The most values one layer may output for one image: 2^28 (1 GiB of f32). Shapes are checked
/// against it when the graph is built, before anything is allocated, so an input size or a
/// padding from a file or a command line can never ask for terabytes.
pub const MAX_ACTIVATION_ELEMENTS: usize = 1 << 28;

/// Index of a node in its graph.
pub type NodeId = usize;

/// One operation with its name, inputs and output shape.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Node {
    /// Checkpoint-style name; parameters are `"{name}.weight"`, `"{name}.bias"`, ….
    pub name: String,
    /// What the node computes.
    pub op: Op,
    /// Input nodes, in order.
    pub inputs: Vec<NodeId>,
    /// Output shape of one sample.
    pub shape: Shape,
    /// The block this node belongs to, if any (index into [`Graph::blocks`]).
    pub block: Option<usize>,
    /// The parallel branch inside its block, if any (0-based).
    pub branch: Option<usize>,
}

/// What kind of structure a [`Block`] is, for the summary and the diagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// The stem layers before the first inception module.
    Stem,
    /// An inception module: parallel branches joined by a concatenation.
    Inception,
    /// A grid-reduction module (Inception v3's B and D).
    Reduction,
    /// An auxiliary classifier on the side of the main path.
    Aux,
    /// The classifier head (pooling, dropout, dense).
    Head,
    /// Any other group of layers.
    Other,
}

/// A named group of nodes: an inception module, the stem, an aux head.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Block {
    /// Name (`inception3a`, `Mixed_5b`, `aux1`).
    pub name: String,
    /// Its kind.
    pub kind: BlockKind,
    /// A short description shown in the diagram (e.g. the filter table row).
    pub label: String,
}

/// Whether an output is the main head or an auxiliary classifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputRole {
    /// The main output (logits, or features without a top).
    Main,
    /// An auxiliary classifier: trained with a weighted loss, skipped for inference.
    Aux,
}

/// A named graph output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GraphOutput {
    /// Name (`logits`, `aux1`).
    pub name: String,
    /// The node that produces it.
    pub node: NodeId,
    /// Main or auxiliary.
    pub role: OutputRole,
}

/// A complete, shape-checked network description.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Graph {
    /// Name of the network.
    pub name: String,
    /// Nodes in topological order; node 0 is the input.
    pub nodes: Vec<Node>,
    /// Blocks referenced by [`Node::block`].
    pub blocks: Vec<Block>,
    /// Outputs; the first [`OutputRole::Main`] one is the model's main output.
    pub outputs: Vec<GraphOutput>,
}

impl Graph {
    /// The input shape `[channels, height, width]`.
    pub fn input_shape(&self) -> [usize; 3] {
        match self.nodes.first().map(|n| &n.op) {
            Some(Op::Input { shape }) => *shape,
            _ => [0, 0, 0],
        }
    }

    /// Looks a node up by name.
    pub fn find(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Resolves a layer name to a node: an exact node name, or a block / scope name
    /// (`inception4e`, `Mixed_6e`, `conv1`), which stands for the last node inside it.
    pub fn resolve(&self, name: &str) -> Result<NodeId> {
        if let Some(i) = self.find(name) {
            return Ok(i);
        }
        let dotted = format!("{name}.");
        let slashed = format!("{name}/");
        self.nodes
            .iter()
            .rposition(|n| n.name.starts_with(&dotted) || n.name.starts_with(&slashed))
            .ok_or_else(|| {
                Error::Unknown(format!(
                    "no layer named '{name}' in {}; `inception summary {}` lists the layer names",
                    self.name, self.name
                ))
            })
    }

    /// The output shape of the named node.
    pub fn shape_of(&self, name: &str) -> Result<Shape> {
        self.find(name)
            .map(|i| self.nodes[i].shape)
            .ok_or_else(|| Error::Unknown(format!("no layer named '{name}' in {}", self.name)))
    }

    /// The main output.
    pub fn main_output(&self) -> &GraphOutput {
        self.outputs
            .iter()
            .find(|o| o.role == OutputRole::Main)
            .unwrap_or(&self.outputs[0])
    }

    /// The auxiliary outputs, in depth order.
    pub fn aux_outputs(&self) -> impl Iterator<Item = &GraphOutput> {
        self.outputs.iter().filter(|o| o.role == OutputRole::Aux)
    }

    /// The checkpoint tensors this graph stores, with PyTorch names and layouts: convolutions
    /// `{name}.weight` `[out, in, kh, kw]` and `{name}.bias`; BatchNorm `{name}.weight` (γ, when
    /// it has a scale), `{name}.bias`, `{name}.running_mean`, `{name}.running_var`; dense layers
    /// `{name}.weight` `[out, in]` and `{name}.bias`. For the torchvision layouts these are exactly
    /// the keys of the published state dicts (less `num_batches_tracked`).
    pub fn state_dict_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for n in &self.nodes {
            let mut push = |suffix: &str, shape: Vec<usize>| {
                out.push((format!("{}.{suffix}", n.name), shape));
            };
            match &n.op {
                Op::Conv2d(c) => {
                    push(
                        "weight",
                        vec![c.filters, c.in_channels, c.kernel[0], c.kernel[1]],
                    );
                    if c.bias {
                        push("bias", vec![c.filters]);
                    }
                }
                Op::BatchNorm(b) => {
                    if b.scale {
                        push("weight", vec![b.channels]);
                    }
                    push("bias", vec![b.channels]);
                    push("running_mean", vec![b.channels]);
                    push("running_var", vec![b.channels]);
                }
                Op::Dense(d) => {
                    push("weight", vec![d.units, d.in_features]);
                    if d.bias {
                        push("bias", vec![d.units]);
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Parameter counts over the whole graph.
    pub fn params(&self) -> ParamCount {
        let mut total = ParamCount::default();
        for n in &self.nodes {
            total += n.op.params();
        }
        total
    }

    /// Parameter counts over the nodes needed to compute the given outputs only.
    pub fn params_for(&self, outputs: &[NodeId]) -> ParamCount {
        let needed = self.needed(outputs);
        let mut total = ParamCount::default();
        for (n, keep) in self.nodes.iter().zip(needed) {
            if keep {
                total += n.op.params();
            }
        }
        total
    }

    /// Multiply-accumulates per sample over the nodes needed for the given outputs.
    pub fn macs_for(&self, outputs: &[NodeId]) -> u64 {
        let needed = self.needed(outputs);
        self.nodes
            .iter()
            .zip(needed)
            .filter(|(_, keep)| *keep)
            .map(|(n, _)| n.op.macs(&n.shape))
            .sum()
    }

    /// Which nodes must run to produce `outputs`.
    pub fn needed(&self, outputs: &[NodeId]) -> Vec<bool> {
        let mut needed = vec![false; self.nodes.len()];
        for &o in outputs {
            if o < needed.len() {
                needed[o] = true;
            }
        }
        for i in (0..self.nodes.len()).rev() {
            if needed[i] {
                for &j in &self.nodes[i].inputs {
                    needed[j] = true;
                }
            }
        }
        needed
    }

    /// Number of layers with trainable parameters on the path to the main output
    /// (the paper's "22 layers deep" for GoogLeNet counts convolutions and the classifier).
    pub fn depth(&self) -> usize {
        let main = self.main_output().node;
        let needed = self.needed(&[main]);
        // Longest chain of conv/dense layers from the input to the main output.
        let mut depth = vec![0usize; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            let d = n.inputs.iter().map(|&j| depth[j]).max().unwrap_or(0);
            let own = matches!(n.op, Op::Conv2d(_) | Op::Dense(_)) as usize;
            depth[i] = d + own;
        }
        if needed[main] { depth[main] } else { 0 }
    }
}

/// Builds a [`Graph`] node by node: the functional API.
///
/// Every method returns the new node's id at once; a shape error is recorded and reported by
/// [`GraphBuilder::finish`], so model code reads like Keras code without a `?` on every line.
#[derive(Debug)]
pub struct GraphBuilder {
    name: String,
    nodes: Vec<Node>,
    blocks: Vec<Block>,
    outputs: Vec<GraphOutput>,
    prefix: Vec<String>,
    block: Option<usize>,
    branch: Option<usize>,
    next_branch: usize,
    separator: &'static str,
    error: Option<Error>,
}

impl GraphBuilder {
    /// Starts an empty graph.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            nodes: Vec::new(),
            blocks: Vec::new(),
            outputs: Vec::new(),
            prefix: Vec::new(),
            block: None,
            branch: None,
            next_branch: 0,
            separator: ".",
            error: None,
        }
    }

    /// Sets the string that joins scope names (`"."` by default, as PyTorch; `"/"` gives Caffe and
    /// TensorFlow names such as `inception_3a/1x1`).
    pub fn with_separator(mut self, separator: &'static str) -> Self {
        self.separator = separator;
        self
    }

    /// Adds the graph input, a feature map `[channels, height, width]`.
    pub fn input(&mut self, shape: [usize; 3]) -> NodeId {
        if !self.nodes.is_empty() {
            self.fail(Error::Graph("a graph has exactly one input".into()));
        }
        self.push_named("input".into(), Op::Input { shape }, vec![])
    }

    /// The first error met while building, if any (later layers are still added, with
    /// meaningless shapes, so that importers can report the layer that really failed).
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// The output shape of a node added so far.
    pub fn shape(&self, node: NodeId) -> Shape {
        self.nodes
            .get(node)
            .map(|n| n.shape)
            .unwrap_or(Shape::Flat(0))
    }

    /// Adds any operation. `name` is relative to the current scope.
    pub fn add(&mut self, name: &str, op: Op, inputs: &[NodeId]) -> NodeId {
        let full = self.full_name(name);
        self.push_named(full, op, inputs.to_vec())
    }

    fn push_named(&mut self, name: String, op: Op, inputs: Vec<NodeId>) -> NodeId {
        let id = self.nodes.len();
        let in_shapes: Vec<Shape> = inputs.iter().map(|&i| self.shape(i)).collect();
        let shape = if let Some(&bad) = inputs.iter().find(|&&i| i >= id) {
            self.fail(Error::Graph(format!(
                "{name}: input node {bad} does not exist"
            )));
            Shape::Flat(0)
        } else if self.error.is_some() {
            // After the first error shapes are meaningless; keep building quietly.
            op.output_shape(&in_shapes).unwrap_or(Shape::Flat(0))
        } else {
            match op.output_shape(&in_shapes) {
                Ok(s) => s,
                Err(why) => {
                    let got = in_shapes
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(", ");
                    self.fail(Error::Shape(format!(
                        "layer '{name}' ({}) {why} (input {got})",
                        op.type_name()
                    )));
                    Shape::Flat(0)
                }
            }
        };
        if self.nodes.iter().any(|n| n.name == name) {
            self.fail(Error::Graph(format!("two layers are named '{name}'")));
        }
        if shape.numel() > MAX_ACTIVATION_ELEMENTS {
            self.fail(Error::Shape(format!(
                "layer '{name}' would output {shape} = {} values per image, over the limit of \
                 {MAX_ACTIVATION_ELEMENTS} (1 GiB of f32); use a smaller input size or padding",
                shape.numel()
            )));
        }
        self.nodes.push(Node {
            name,
            op,
            inputs,
            shape,
            block: self.block,
            branch: self.branch,
        });
        id
    }

    fn fail(&mut self, e: Error) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    fn full_name(&self, name: &str) -> String {
        let mut parts: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
        if !name.is_empty() {
            parts.push(name);
        }
        parts.join(self.separator)
    }

    /// Runs `f` with `name.` prefixed to every layer name (a PyTorch submodule).
    pub fn scope<T>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        self.prefix.push(name.to_string());
        let out = f(self);
        self.prefix.pop();
        out
    }

    /// Runs `f` inside a new named [`Block`] whose name is also a name scope
    /// (`inception3a` → `inception3a.branch1.conv`).
    pub fn block<T>(
        &mut self,
        name: &str,
        kind: BlockKind,
        label: impl Into<String>,
        f: impl FnOnce(&mut Self) -> T,
    ) -> T {
        self.open_block(name, kind, label.into(), true, f)
    }

    /// Like [`GraphBuilder::block`], but layer names are not prefixed (for a stem whose layers
    /// are top-level names in the checkpoint, like torchvision's `conv1`, `maxpool1`).
    pub fn group<T>(
        &mut self,
        name: &str,
        kind: BlockKind,
        label: impl Into<String>,
        f: impl FnOnce(&mut Self) -> T,
    ) -> T {
        self.open_block(name, kind, label.into(), false, f)
    }

    fn open_block<T>(
        &mut self,
        name: &str,
        kind: BlockKind,
        label: String,
        scoped: bool,
        f: impl FnOnce(&mut Self) -> T,
    ) -> T {
        self.blocks.push(Block {
            name: self.full_name(name),
            kind,
            label,
        });
        let saved = (self.block, self.branch, self.next_branch);
        self.block = Some(self.blocks.len() - 1);
        self.branch = None;
        self.next_branch = 0;
        if scoped {
            self.prefix.push(name.to_string());
        }
        let out = f(self);
        if scoped {
            self.prefix.pop();
        }
        (self.block, self.branch, self.next_branch) = saved;
        out
    }

    /// Runs `f` as the next parallel branch of the current block.
    pub fn branch<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved = self.branch;
        self.branch = Some(self.next_branch);
        self.next_branch += 1;
        let out = f(self);
        self.branch = saved;
        out
    }

    /// Marks `node` as a graph output.
    pub fn output(&mut self, name: &str, node: NodeId) {
        self.outputs.push(GraphOutput {
            name: name.into(),
            node,
            role: OutputRole::Main,
        });
    }

    /// Marks `node` as an auxiliary-classifier output.
    pub fn aux_output(&mut self, name: &str, node: NodeId) {
        self.outputs.push(GraphOutput {
            name: name.into(),
            node,
            role: OutputRole::Aux,
        });
    }

    /// Checks the graph and returns it, or the first error met while building.
    pub fn finish(self) -> Result<Graph> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.nodes.is_empty() || !matches!(self.nodes[0].op, Op::Input { .. }) {
            return Err(Error::Graph(format!(
                "{}: the graph has no input",
                self.name
            )));
        }
        let mut outputs = self.outputs;
        if outputs.is_empty() {
            outputs.push(GraphOutput {
                name: "output".into(),
                node: self.nodes.len() - 1,
                role: OutputRole::Main,
            });
        }
        if !outputs.iter().any(|o| o.role == OutputRole::Main) {
            return Err(Error::Graph(format!(
                "{}: the graph has no main output",
                self.name
            )));
        }
        Ok(Graph {
            name: self.name,
            nodes: self.nodes,
            blocks: self.blocks,
            outputs,
        })
    }

    // ----- layers ------------------------------------------------------------------------------

    /// A 2-D convolution with `filters` output channels.
    #[allow(clippy::too_many_arguments)]
    pub fn conv2d(
        &mut self,
        name: &str,
        x: NodeId,
        filters: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: Padding,
        bias: bool,
    ) -> NodeId {
        let (in_channels, size) = self.map_dims(x);
        if let Err(e) = op::check_window(name, kernel, stride) {
            self.fail(e);
        }
        let padding = padding.resolve(size, kernel, stride);
        self.add(
            name,
            Op::Conv2d(Conv2dSpec {
                in_channels,
                filters,
                kernel,
                stride,
                padding,
                bias,
            }),
            &[x],
        )
    }

    /// Batch normalisation (PyTorch momentum convention).
    pub fn batch_norm(&mut self, name: &str, x: NodeId, epsilon: f64, scale: bool) -> NodeId {
        let channels = self.shape(x).channels();
        self.add(
            name,
            Op::BatchNorm(BatchNormSpec {
                channels,
                epsilon,
                momentum: 0.1,
                scale,
            }),
            &[x],
        )
    }

    /// ReLU.
    pub fn relu(&mut self, name: &str, x: NodeId) -> NodeId {
        self.add(name, Op::Relu, &[x])
    }

    /// Max pooling.
    pub fn max_pool(
        &mut self,
        name: &str,
        x: NodeId,
        kernel: usize,
        stride: usize,
        padding: Padding,
        ceil_mode: bool,
    ) -> NodeId {
        let spec = self.pool_spec(name, x, kernel, stride, padding, ceil_mode, true);
        self.add(name, Op::MaxPool(spec), &[x])
    }

    /// Average pooling.
    #[allow(clippy::too_many_arguments)]
    pub fn avg_pool(
        &mut self,
        name: &str,
        x: NodeId,
        kernel: usize,
        stride: usize,
        padding: Padding,
        ceil_mode: bool,
        count_include_pad: bool,
    ) -> NodeId {
        let spec = self.pool_spec(
            name,
            x,
            kernel,
            stride,
            padding,
            ceil_mode,
            count_include_pad,
        );
        self.add(name, Op::AvgPool(spec), &[x])
    }

    #[allow(clippy::too_many_arguments)]
    fn pool_spec(
        &mut self,
        name: &str,
        x: NodeId,
        kernel: usize,
        stride: usize,
        padding: Padding,
        ceil_mode: bool,
        count_include_pad: bool,
    ) -> PoolSpec {
        let (_, size) = self.map_dims(x);
        if let Err(e) = op::check_window(name, [kernel; 2], [stride; 2]) {
            self.fail(e);
        }
        PoolSpec {
            kernel: [kernel; 2],
            stride: [stride; 2],
            padding: padding.resolve(size, [kernel; 2], [stride; 2]),
            ceil_mode,
            count_include_pad,
        }
    }

    /// Adaptive average pooling to `size`.
    pub fn adaptive_avg_pool(&mut self, name: &str, x: NodeId, size: [usize; 2]) -> NodeId {
        self.add(name, Op::AdaptiveAvgPool { size }, &[x])
    }

    /// Global average pooling to a vector (`GlobalAveragePooling2D`).
    pub fn global_avg_pool(&mut self, name: &str, x: NodeId) -> NodeId {
        self.add(name, Op::GlobalPool(GlobalPool::Avg), &[x])
    }

    /// Global max pooling to a vector (`GlobalMaxPooling2D`).
    pub fn global_max_pool(&mut self, name: &str, x: NodeId) -> NodeId {
        self.add(name, Op::GlobalPool(GlobalPool::Max), &[x])
    }

    /// Local response normalisation.
    pub fn lrn(
        &mut self,
        name: &str,
        x: NodeId,
        size: usize,
        alpha: f64,
        beta: f64,
        k: f64,
    ) -> NodeId {
        self.add(
            name,
            Op::Lrn(LrnSpec {
                size,
                alpha,
                beta,
                k,
            }),
            &[x],
        )
    }

    /// Concatenation along channels.
    pub fn concat(&mut self, name: &str, xs: &[NodeId]) -> NodeId {
        self.add(name, Op::Concat, xs)
    }

    /// Element-wise sum.
    pub fn add_nodes(&mut self, name: &str, xs: &[NodeId]) -> NodeId {
        self.add(name, Op::Add, xs)
    }

    /// Flattens a feature map (PyTorch `[C, H, W]` order).
    pub fn flatten(&mut self, name: &str, x: NodeId) -> NodeId {
        self.add(
            name,
            Op::Flatten {
                channels_last: false,
            },
            &[x],
        )
    }

    /// A fully connected layer.
    pub fn dense(&mut self, name: &str, x: NodeId, units: usize, bias: bool) -> NodeId {
        let in_features = self.shape(x).channels();
        self.add(
            name,
            Op::Dense(DenseSpec {
                in_features,
                units,
                bias,
            }),
            &[x],
        )
    }

    /// Dropout with probability `rate`.
    pub fn dropout(&mut self, name: &str, x: NodeId, rate: f64) -> NodeId {
        if !(0.0..1.0).contains(&rate) {
            self.fail(Error::Config(format!(
                "{name}: dropout rate {rate} must be in [0, 1)"
            )));
        }
        self.add(name, Op::Dropout { rate }, &[x])
    }

    /// Softmax over features.
    pub fn softmax(&mut self, name: &str, x: NodeId) -> NodeId {
        self.add(name, Op::Softmax, &[x])
    }

    fn map_dims(&mut self, x: NodeId) -> (usize, [usize; 2]) {
        match self.shape(x) {
            Shape::Map([c, h, w]) => (c, [h, w]),
            Shape::Flat(n) => (n, [1, 1]),
        }
    }
}
