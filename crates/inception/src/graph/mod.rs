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

mod builder;
mod op;
mod sequential;

pub use builder::GraphBuilder;
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
    /// A residual block (Inception-ResNet): branches projected, scaled and added to the input.
    Residual,
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
    pub(crate) name: String,
    /// Nodes in topological order; node 0 is the input. Private: only the builder makes them,
    /// so every shape is checked and every input precedes its consumers.
    pub(crate) nodes: Vec<Node>,
    /// Blocks referenced by [`Node::block`].
    pub(crate) blocks: Vec<Block>,
    /// Outputs; the first [`OutputRole::Main`] one is the model's main output.
    pub(crate) outputs: Vec<GraphOutput>,
}

impl Graph {
    /// Name of the network.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Nodes in topological order; node 0 is the input.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Node `id`, if the graph has it.
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// Blocks (inception modules, stems, heads) referenced by [`Node::block`].
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// Outputs; the first [`OutputRole::Main`] one is the model's main output.
    pub fn outputs(&self) -> &[GraphOutput] {
        &self.outputs
    }

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
            .ok_or_else(|| self.no_layer(name))
    }

    /// The output shape of the named node.
    pub fn shape_of(&self, name: &str) -> Result<Shape> {
        self.find(name)
            .map(|i| self.nodes[i].shape)
            .ok_or_else(|| self.no_layer(name))
    }

    fn no_layer(&self, name: &str) -> Error {
        Error::unknown(
            crate::error::NameKind::Layer,
            name,
            Some(self.name.clone()),
            std::iter::empty::<String>(),
        )
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
                    push("weight", c.weight_shape().to_vec());
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
