//! The functional API: a [`Graph`] built node by node, shapes inferred and checked as it goes.

use super::*;
use crate::error::{Error, GraphFault, Result, ShapeError, ShapeFault};

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
    slim_scale: bool,
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
            slim_scale: false,
            error: None,
        }
    }

    /// TF-slim's `batch_norm_scale` arg scope: whether the BatchNorms of
    /// [`slim_conv`](crate::blocks::slim::slim_conv) learn a scale γ (false by default, as in
    /// TF-slim's Inception arg scopes; timm's ports of TF-slim's weights have one).
    pub fn with_slim_batch_norm_scale(mut self, scale: bool) -> Self {
        self.slim_scale = scale;
        self
    }

    /// The current `batch_norm_scale` default (see [`GraphBuilder::with_slim_batch_norm_scale`]).
    pub fn slim_batch_norm_scale(&self) -> bool {
        self.slim_scale
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
            self.fail(Error::graph(self.name.clone(), GraphFault::SecondInput));
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
            self.fail(Error::graph(
                self.name.clone(),
                GraphFault::DanglingInput {
                    layer: name.clone(),
                    input: bad,
                },
            ));
            Shape::Flat(0)
        } else if self.error.is_some() {
            // After the first error shapes are meaningless; keep building quietly.
            op.output_shape(&in_shapes).unwrap_or(Shape::Flat(0))
        } else {
            match op.output_shape(&in_shapes) {
                Ok(s) => s,
                Err(fault) => {
                    self.fail(Error::Shape(Box::new(ShapeError {
                        model: self.name.clone(),
                        layer: name.clone(),
                        op: op.type_name().to_string(),
                        fault,
                        input: in_shapes.clone(),
                        min_input: None,
                    })));
                    Shape::Flat(0)
                }
            }
        };
        if self.nodes.iter().any(|n| n.name == name) {
            self.fail(Error::graph(
                self.name.clone(),
                GraphFault::DuplicateName { name: name.clone() },
            ));
        }
        if shape.numel() > MAX_ACTIVATION_ELEMENTS {
            self.fail(Error::Shape(Box::new(ShapeError {
                model: self.name.clone(),
                layer: name.clone(),
                op: op.type_name().to_string(),
                fault: ShapeFault::TooLarge {
                    shape,
                    limit: MAX_ACTIVATION_ELEMENTS,
                },
                input: in_shapes,
                min_input: None,
            })));
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
            return Err(Error::graph(self.name, GraphFault::NoInput));
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
            return Err(Error::graph(self.name, GraphFault::NoOutput));
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
                groups: 1,
            }),
            &[x],
        )
    }

    /// A depthwise convolution (TensorFlow's `depthwise_conv2d`): each input channel convolved
    /// with `multiplier` filters of its own, giving `in_channels * multiplier` channels.
    pub fn depthwise_conv2d(
        &mut self,
        name: &str,
        x: NodeId,
        multiplier: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: Padding,
    ) -> NodeId {
        let (in_channels, size) = self.map_dims(x);
        if let Err(e) = op::check_window(name, kernel, stride) {
            self.fail(e);
        }
        if multiplier == 0 {
            self.fail(Error::config_of(
                name,
                "depth multiplier",
                multiplier,
                "it must be at least 1",
            ));
        }
        let padding = padding.resolve(size, kernel, stride);
        self.add(
            name,
            Op::Conv2d(Conv2dSpec {
                in_channels,
                filters: in_channels * multiplier,
                kernel,
                stride,
                padding,
                bias: false,
                groups: in_channels.max(1),
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
    pub fn max_pool(&mut self, name: &str, x: NodeId, pool: Pool) -> NodeId {
        let spec = self.pool_spec(name, x, pool);
        self.add(name, Op::MaxPool(spec), &[x])
    }

    /// Average pooling.
    pub fn avg_pool(&mut self, name: &str, x: NodeId, pool: Pool) -> NodeId {
        let spec = self.pool_spec(name, x, pool);
        self.add(name, Op::AvgPool(spec), &[x])
    }

    fn pool_spec(&mut self, name: &str, x: NodeId, pool: Pool) -> PoolSpec {
        let (_, size) = self.map_dims(x);
        let (k, s) = ([pool.kernel; 2], [pool.stride; 2]);
        if let Err(e) = op::check_window(name, k, s) {
            self.fail(e);
        }
        PoolSpec {
            kernel: k,
            stride: s,
            padding: pool.padding.resolve(size, k, s),
            ceil_mode: pool.ceil_mode,
            count_include_pad: pool.count_include_pad,
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
            self.fail(Error::config_of(
                name,
                "dropout rate",
                rate,
                "it must be in [0, 1)",
            ));
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
