//! ONNX models imported at run time into a [`Graph`] plus its weights — no code generation.
//!
//! The protobuf is decoded with `prost` (the message definitions below are the subset of
//! `onnx.proto` that inference graphs use); the operators the Inception family and its model-zoo
//! files need are mapped onto graph layers: Conv, Relu, MaxPool, AveragePool,
//! GlobalAveragePool, GlobalMaxPool, LRN, Concat, BatchNormalization, Gemm, MatMul, Add, Mul,
//! Sub, Div, Flatten, Reshape, Dropout, Softmax, Pad (into the next Conv), Constant, Identity and
//! Transpose (identity, or NHWC → NCHW at the input as tf2onnx writes it), opsets 7–21. Anything else is an error naming the operator and node.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;

use prost::Message;

use super::{DType, Format, StateDict, WeightTensor, decode};
use crate::error::{Error, Result};
use crate::graph::{Graph, GraphBuilder, NodeId, Op, Padding, Shape};

/// The subset of `onnx.proto` an inference graph needs.
#[allow(missing_docs)]
pub mod proto {
    /// `ModelProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ModelProto {
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        #[prost(string, tag = "2")]
        pub producer_name: String,
        #[prost(message, optional, tag = "7")]
        pub graph: Option<GraphProto>,
        #[prost(message, repeated, tag = "8")]
        pub opset_import: Vec<OperatorSetIdProto>,
    }

    /// `OperatorSetIdProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OperatorSetIdProto {
        #[prost(string, tag = "1")]
        pub domain: String,
        #[prost(int64, tag = "2")]
        pub version: i64,
    }

    /// `GraphProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GraphProto {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<NodeProto>,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<TensorProto>,
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<ValueInfoProto>,
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<ValueInfoProto>,
    }

    /// `NodeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NodeProto {
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(string, tag = "4")]
        pub op_type: String,
        #[prost(message, repeated, tag = "5")]
        pub attribute: Vec<AttributeProto>,
        #[prost(string, tag = "7")]
        pub domain: String,
    }

    /// `AttributeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AttributeProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(float, tag = "2")]
        pub f: f32,
        #[prost(int64, tag = "3")]
        pub i: i64,
        #[prost(bytes = "vec", tag = "4")]
        pub s: Vec<u8>,
        #[prost(message, optional, tag = "5")]
        pub t: Option<TensorProto>,
        #[prost(float, repeated, tag = "7")]
        pub floats: Vec<f32>,
        #[prost(int64, repeated, tag = "8")]
        pub ints: Vec<i64>,
        #[prost(int32, tag = "20")]
        pub r#type: i32,
    }

    /// `TensorProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProto {
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(float, repeated, tag = "4")]
        pub float_data: Vec<f32>,
        #[prost(int32, repeated, tag = "5")]
        pub int32_data: Vec<i32>,
        #[prost(int64, repeated, tag = "7")]
        pub int64_data: Vec<i64>,
        #[prost(string, tag = "8")]
        pub name: String,
        #[prost(bytes = "vec", tag = "9")]
        pub raw_data: Vec<u8>,
        #[prost(double, repeated, tag = "10")]
        pub double_data: Vec<f64>,
        #[prost(int32, tag = "14")]
        pub data_location: i32,
    }

    /// `ValueInfoProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueInfoProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub r#type: Option<TypeProto>,
    }

    /// `TypeProto` (tensor types only).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeProto {
        #[prost(message, optional, tag = "1")]
        pub tensor_type: Option<TensorTypeProto>,
    }

    /// `TypeProto.Tensor`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorTypeProto {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<TensorShapeProto>,
    }

    /// `TensorShapeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorShapeProto {
        #[prost(message, repeated, tag = "1")]
        pub dim: Vec<Dimension>,
    }

    /// `TensorShapeProto.Dimension`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        #[prost(int64, tag = "1")]
        pub dim_value: i64,
        #[prost(string, tag = "2")]
        pub dim_param: String,
    }
}

use proto::{AttributeProto, NodeProto, TensorProto};

/// An imported ONNX model: the graph, its weights in PyTorch conventions under the graph's
/// names, and the graph's named inputs and outputs.
#[derive(Clone, Debug)]
pub struct OnnxModel {
    /// The network (its main output is the ONNX graph's first output).
    pub graph: Graph,
    /// Weights keyed by the graph's parameter names.
    pub weights: StateDict,
    /// The ONNX input's name.
    pub input: String,
    /// Every ONNX output, by name, with the graph node that computes it.
    pub outputs: Vec<(String, NodeId)>,
    /// The ONNX input is NHWC and the graph's first operation transposes it to NCHW (the way
    /// tf2onnx exports Keras models); the graph itself takes NCHW.
    pub input_nhwc: bool,
}

/// Reads and imports an `.onnx` file. `input_size` fixes the spatial size where the file leaves
/// it symbolic.
pub fn read(path: &Path, input_size: Option<[usize; 2]>) -> Result<OnnxModel> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    import(&bytes, input_size).map_err(|e| Error::Format(format!("{}: {e}", path.display())))
}

/// Imports an ONNX model from its bytes.
pub fn import(
    bytes: &[u8],
    input_size: Option<[usize; 2]>,
) -> std::result::Result<OnnxModel, String> {
    let model =
        proto::ModelProto::decode(bytes).map_err(|e| format!("not a valid ONNX model ({e})"))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or("the model declares no ai.onnx opset")?;
    if !(7..=21).contains(&opset) {
        return Err(format!("opset {opset} is not supported (7–21 are)"));
    }
    let graph = model.graph.ok_or("the model has no graph")?;
    Importer::new(opset, &graph, input_size)?.run(&graph)
}

/// What an ONNX value name refers to while importing.
#[derive(Clone, Debug)]
enum Val {
    Node(NodeId),
    Const(Const),
    /// A zero-padded node output (a `Pad` waiting to be folded into the next `Conv`):
    /// `[top, left, bottom, right]`.
    Padded(NodeId, [usize; 4]),
}

#[derive(Clone, Debug)]
struct Const {
    dims: Vec<usize>,
    data: Vec<f32>,
}

fn tensor(t: &TensorProto) -> std::result::Result<Const, String> {
    let name = &t.name;
    if t.data_location == 1 {
        return Err(format!(
            "tensor `{name}` is stored in an external file; load and re-save the model with \
             onnx.save(model, path, save_as_external_data=False)"
        ));
    }
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| format!("tensor `{name}` has a negative dimension"))
        })
        .collect::<std::result::Result<_, _>>()?;
    let numel = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("tensor `{name}` is impossibly large"))?;
    let dtype = match t.data_type {
        1 => DType::F32,
        10 => DType::F16,
        16 => DType::BF16,
        11 => DType::F64,
        7 => DType::I64,
        6 => DType::I32,
        other => {
            return Err(format!(
                "tensor `{name}` has unsupported ONNX data type {other}"
            ));
        }
    };
    let data: Vec<f32> = if !t.raw_data.is_empty() {
        decode(&t.raw_data, dtype).map_err(|e| format!("tensor `{name}`: {e}"))?
    } else {
        match dtype {
            DType::F32 => t.float_data.clone(),
            DType::F64 => t.double_data.iter().map(|&v| v as f32).collect(),
            DType::I64 => t.int64_data.iter().map(|&v| v as f32).collect(),
            DType::I32 => t.int32_data.iter().map(|&v| v as f32).collect(),
            // f16/bf16 without raw_data are stored as int32 bit patterns.
            DType::F16 => t
                .int32_data
                .iter()
                .map(|&v| half::f16::from_bits(v as u16).to_f32())
                .collect(),
            _ => t
                .int32_data
                .iter()
                .map(|&v| half::bf16::from_bits(v as u16).to_f32())
                .collect(),
        }
    };
    if data.len() != numel {
        return Err(format!(
            "tensor `{name}` has {} values for dims {dims:?} (truncated file?)",
            data.len()
        ));
    }
    Ok(Const { dims, data })
}

struct Importer {
    opset: i64,
    g: GraphBuilder,
    vals: HashMap<String, Val>,
    sd: StateDict,
    input: String,
    input_nhwc: bool,
    used_names: HashSet<String>,
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_i(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map_or(default, |a| a.i)
}

fn attr_f(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).map_or(default, |a| a.f)
}

fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

fn attr_s(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

impl Importer {
    fn new(
        opset: i64,
        graph: &proto::GraphProto,
        input_size: Option<[usize; 2]>,
    ) -> std::result::Result<Self, String> {
        let mut vals = HashMap::new();
        for init in &graph.initializer {
            vals.insert(init.name.clone(), Val::Const(tensor(init)?));
        }
        // Old IR versions list initializers among the inputs too: the real input is the other.
        let inputs: Vec<&proto::ValueInfoProto> = graph
            .input
            .iter()
            .filter(|i| !vals.contains_key(&i.name))
            .collect();
        let [input] = inputs.as_slice() else {
            return Err(format!(
                "the graph has {} image inputs; exactly one is supported",
                inputs.len()
            ));
        };
        let dims: Vec<Option<usize>> = input
            .r#type
            .as_ref()
            .and_then(|t| t.tensor_type.as_ref())
            .and_then(|t| t.shape.as_ref())
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| (d.dim_value > 0).then_some(d.dim_value as usize))
                    .collect()
            })
            .unwrap_or_default();
        if dims.len() != 4 {
            return Err(format!(
                "input `{}` has {} dimensions; an image batch [N, C, H, W] is needed",
                input.name,
                dims.len()
            ));
        }
        // tf2onnx graphs take NHWC and transpose it first: then the graph starts after that.
        let consumers: Vec<&NodeProto> = graph
            .node
            .iter()
            .filter(|n| n.input.contains(&input.name))
            .collect();
        let nhwc = !consumers.is_empty()
            && consumers.iter().all(|n| {
                n.op_type == "Transpose" && attr_ints(n, "perm").as_deref() == Some(&[0, 3, 1, 2])
            });
        let dims = if nhwc {
            vec![dims[0], dims[3], dims[1], dims[2]]
        } else {
            dims
        };
        let c =
            dims[1].ok_or_else(|| format!("input `{}` has no fixed channel count", input.name))?;
        let [h, w] = match (input_size, dims[2], dims[3]) {
            (Some(s), _, _) => s,
            (None, Some(h), Some(w)) => [h, w],
            _ => {
                return Err(format!(
                    "input `{}` has a symbolic height or width; give the input size",
                    input.name
                ));
            }
        };
        let name = if graph.name.is_empty() {
            "onnx".to_string()
        } else {
            graph.name.clone()
        };
        let mut g = GraphBuilder::new(&name);
        let x = g.input([c, h, w]);
        vals.insert(input.name.clone(), Val::Node(x));
        Ok(Self {
            opset,
            g,
            vals,
            sd: StateDict::new(Format::Onnx),
            input: input.name.clone(),
            input_nhwc: nhwc,
            used_names: HashSet::new(),
        })
    }

    /// Orders the nodes so that every input is produced first; a cycle or an undefined input
    /// is an error naming the node.
    fn topo_order<'a>(
        &self,
        graph: &'a proto::GraphProto,
    ) -> std::result::Result<Vec<&'a NodeProto>, String> {
        let mut producer: HashMap<&str, usize> = HashMap::new();
        for (i, n) in graph.node.iter().enumerate() {
            for o in &n.output {
                if producer.insert(o.as_str(), i).is_some() {
                    return Err(format!("value `{o}` is produced by two nodes"));
                }
            }
        }
        let mut indegree = vec![0usize; graph.node.len()];
        let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); graph.node.len()];
        for (i, n) in graph.node.iter().enumerate() {
            for inp in n.input.iter().filter(|s| !s.is_empty()) {
                if let Some(&p) = producer.get(inp.as_str()) {
                    indegree[i] += 1;
                    consumers[p].push(i);
                } else if !self.vals.contains_key(inp) {
                    return Err(format!(
                        "input `{inp}` of node `{}` ({}) is not defined by any node, initializer \
                         or graph input",
                        node_name(n),
                        n.op_type
                    ));
                }
            }
        }
        let mut ready: VecDeque<usize> = (0..graph.node.len())
            .filter(|&i| indegree[i] == 0)
            .collect();
        let mut order = Vec::with_capacity(graph.node.len());
        while let Some(i) = ready.pop_front() {
            order.push(&graph.node[i]);
            for &c in &consumers[i] {
                indegree[c] -= 1;
                if indegree[c] == 0 {
                    ready.push_back(c);
                }
            }
        }
        if order.len() < graph.node.len() {
            let stuck: Vec<String> = (0..graph.node.len())
                .filter(|&i| indegree[i] > 0)
                .take(3)
                .map(|i| format!("`{}`", node_name(&graph.node[i])))
                .collect();
            return Err(format!(
                "the graph has a cycle through nodes {}",
                stuck.join(", ")
            ));
        }
        Ok(order)
    }

    fn run(mut self, graph: &proto::GraphProto) -> std::result::Result<OnnxModel, String> {
        for node in self.topo_order(graph)? {
            if !(node.domain.is_empty() || node.domain == "ai.onnx") {
                return Err(format!(
                    "node `{}` uses operator `{}` of domain `{}`, which is not supported",
                    node_name(node),
                    node.op_type,
                    node.domain
                ));
            }
            let out = self
                .node(node)
                .map_err(|e| format!("node `{}` ({}): {e}", node_name(node), node.op_type))?;
            let first = node
                .output
                .first()
                .ok_or_else(|| format!("node `{}` has no output", node_name(node)))?;
            self.vals.insert(first.clone(), out);
        }
        let mut outputs = Vec::new();
        for o in &graph.output {
            match self.vals.get(&o.name) {
                Some(Val::Node(id)) => outputs.push((o.name.clone(), *id)),
                _ => {
                    return Err(format!(
                        "graph output `{}` is not computed by a layer",
                        o.name
                    ));
                }
            }
        }
        let (main_name, main) = outputs.first().cloned().ok_or("the graph has no outputs")?;
        self.g.output(&main_name, main);
        let graph = self.g.finish().map_err(|e| e.to_string())?;
        Ok(OnnxModel {
            graph,
            weights: self.sd,
            input: self.input,
            outputs,
            input_nhwc: self.input_nhwc,
        })
    }

    fn layer_name(&mut self, node: &NodeProto) -> String {
        let base = node_name(node).replace('.', "_");
        let mut name = base.clone();
        let mut k = 1;
        while !self.used_names.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        name
    }

    fn val(&self, node: &NodeProto, i: usize) -> std::result::Result<Val, String> {
        let name = node
            .input
            .get(i)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("input {i} is missing"))?;
        self.vals
            .get(name)
            .cloned()
            .ok_or_else(|| format!("input `{name}` is not defined"))
    }

    fn x(&self, node: &NodeProto) -> std::result::Result<NodeId, String> {
        match self.val(node, 0)? {
            Val::Node(id) => Ok(id),
            Val::Const(_) => {
                Err("its data input is a constant; constant folding is not supported".into())
            }
            Val::Padded(..) => Err("a Pad can only feed a Conv".into()),
        }
    }

    fn konst(&self, node: &NodeProto, i: usize) -> std::result::Result<Option<Const>, String> {
        if node.input.get(i).is_none_or(|s| s.is_empty()) {
            return Ok(None);
        }
        match self.val(node, i)? {
            Val::Const(c) => Ok(Some(c)),
            _ => Err(format!("input {i} must be a constant (an initializer)")),
        }
    }

    fn put(&mut self, name: &str, suffix: &str, dims: Vec<usize>, data: Vec<f32>) {
        self.sd.insert(
            format!("{name}.{suffix}"),
            WeightTensor::new(dims, data, DType::F32),
        );
    }

    fn node(&mut self, node: &NodeProto) -> std::result::Result<Val, String> {
        let op = node.op_type.as_str();
        let name = self.layer_name(node);
        let id = match op {
            "Identity" => return self.val(node, 0),
            "Constant" => {
                let a = node.attribute.first().ok_or("a Constant without a value")?;
                let c = match a.name.as_str() {
                    "value" => tensor(a.t.as_ref().ok_or("a Constant without a tensor")?)?,
                    "value_float" => Const {
                        dims: vec![],
                        data: vec![a.f],
                    },
                    "value_floats" => Const {
                        dims: vec![a.floats.len()],
                        data: a.floats.clone(),
                    },
                    "value_int" => Const {
                        dims: vec![],
                        data: vec![a.i as f32],
                    },
                    "value_ints" => Const {
                        dims: vec![a.ints.len()],
                        data: a.ints.iter().map(|&v| v as f32).collect(),
                    },
                    other => return Err(format!("Constant attribute `{other}` is not supported")),
                };
                return Ok(Val::Const(c));
            }
            "Conv" => {
                let (x, pre) = match self.val(node, 0)? {
                    Val::Node(x) => (x, [0; 4]),
                    Val::Padded(x, p) => (x, p),
                    Val::Const(_) => return Err("its input is a constant".into()),
                };
                let w = self.konst(node, 1)?.ok_or("no weight")?;
                let [o, i, kh, kw]: [usize; 4] = w.dims.clone().try_into().map_err(|_| {
                    format!(
                        "weight dims {:?}: only 2-D convolutions are supported",
                        w.dims
                    )
                })?;
                if attr_i(node, "group", 1) != 1 {
                    return Err("grouped convolutions are not supported".into());
                }
                if attr_ints(node, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
                    return Err("dilated convolutions are not supported".into());
                }
                let stride = pair(attr_ints(node, "strides"), 1)?;
                let padding = padding(node, pre)?;
                let b = self.konst(node, 2)?;
                let id = self
                    .g
                    .conv2d(&name, x, o, [kh, kw], stride, padding, b.is_some());
                let in_c = self.g.shape(x).channels();
                if in_c != i {
                    return Err(format!(
                        "weight expects {i} input channels but the input has {in_c}"
                    ));
                }
                self.put(&name, "weight", w.dims, w.data);
                if let Some(b) = b {
                    if b.data.len() != o {
                        return Err(format!("bias has {} values for {o} filters", b.data.len()));
                    }
                    self.put(&name, "bias", vec![o], b.data);
                }
                id
            }
            "Relu" => self.g.relu(&name, self.x(node)?),
            "MaxPool" | "AveragePool" => {
                let x = self.x(node)?;
                if node.output.len() > 1 {
                    return Err("MaxPool indices are not supported".into());
                }
                let k = pair(attr_ints(node, "kernel_shape"), 0)?;
                let s = pair(attr_ints(node, "strides"), 1)?;
                if k[0] != k[1] || s[0] != s[1] {
                    return Err("only square pooling windows are supported".into());
                }
                if attr_ints(node, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
                    return Err("dilated pooling is not supported".into());
                }
                let padding = padding(node, [0; 4])?;
                let ceil = attr_i(node, "ceil_mode", 0) != 0;
                if op == "MaxPool" {
                    self.g.max_pool(&name, x, k[0], s[0], padding, ceil)
                } else {
                    let include = attr_i(node, "count_include_pad", 0) != 0;
                    self.g
                        .avg_pool(&name, x, k[0], s[0], padding, ceil, include)
                }
            }
            "GlobalAveragePool" => self.g.global_avg_pool(&name, self.x(node)?),
            "GlobalMaxPool" => self.g.global_max_pool(&name, self.x(node)?),
            "LRN" => {
                let size = attr_i(node, "size", 0);
                if size <= 0 {
                    return Err("LRN needs a positive size".into());
                }
                let x = self.x(node)?;
                self.g.lrn(
                    &name,
                    x,
                    size as usize,
                    attr_f(node, "alpha", 1e-4) as f64,
                    attr_f(node, "beta", 0.75) as f64,
                    attr_f(node, "bias", 1.0) as f64,
                )
            }
            "Concat" => {
                let axis = attr_i(node, "axis", 1);
                let xs: Vec<NodeId> = (0..node.input.len())
                    .map(|i| match self.val(node, i)? {
                        Val::Node(id) => Ok(id),
                        _ => Err("Concat of constants is not supported".to_string()),
                    })
                    .collect::<std::result::Result<_, _>>()?;
                let rank4 = xs.iter().all(|&x| matches!(self.g.shape(x), Shape::Map(_)));
                if !(axis == 1 || (rank4 && axis == -3)) {
                    return Err(format!(
                        "concatenation on axis {axis}; only channels (1) is supported"
                    ));
                }
                self.g.concat(&name, &xs)
            }
            "BatchNormalization" => {
                let x = self.x(node)?;
                if attr_i(node, "training_mode", 0) != 0 || node.output.len() > 1 {
                    return Err("training-mode BatchNormalization is not supported".into());
                }
                let get = |i: usize, what: &str| -> std::result::Result<Const, String> {
                    self.konst(node, i)?.ok_or_else(|| format!("no {what}"))
                };
                let (scale, bias, mean, var) = (
                    get(1, "scale")?,
                    get(2, "B")?,
                    get(3, "mean")?,
                    get(4, "var")?,
                );
                let eps = attr_f(node, "epsilon", 1e-5) as f64;
                let id = self.g.batch_norm(&name, x, eps, true);
                let c = self.g.shape(x).channels();
                for (suffix, t) in [
                    ("weight", scale),
                    ("bias", bias),
                    ("running_mean", mean),
                    ("running_var", var),
                ] {
                    if t.data.len() != c {
                        return Err(format!(
                            "{suffix} has {} values for {c} channels",
                            t.data.len()
                        ));
                    }
                    self.put(&name, suffix, vec![c], t.data);
                }
                id
            }
            "Gemm" | "MatMul" => {
                let x = self.x(node)?;
                let w = self
                    .konst(node, 1)?
                    .ok_or("no weight matrix (B must be an initializer)")?;
                let [r, c]: [usize; 2] = w
                    .dims
                    .clone()
                    .try_into()
                    .map_err(|_| "B must be a matrix".to_string())?;
                let (trans_a, trans_b, alpha, beta) = if op == "Gemm" {
                    (
                        attr_i(node, "transA", 0),
                        attr_i(node, "transB", 0),
                        attr_f(node, "alpha", 1.0),
                        attr_f(node, "beta", 1.0),
                    )
                } else {
                    (0, 0, 1.0, 1.0)
                };
                if trans_a != 0 {
                    return Err("transA is not supported".into());
                }
                // PyTorch layout [out, in]: B as is with transB, else transposed.
                let (units, inputs, weight) = if trans_b != 0 {
                    (r, c, w.data.iter().map(|v| v * alpha).collect::<Vec<_>>())
                } else {
                    let mut t = vec![0.0; r * c];
                    for i in 0..r {
                        for o in 0..c {
                            t[o * r + i] = w.data[i * c + o] * alpha;
                        }
                    }
                    (c, r, t)
                };
                let features = self.g.shape(x).numel();
                let x = if matches!(self.g.shape(x), Shape::Map(_)) {
                    if features != inputs {
                        return Err(format!("expects {inputs} features but gets {features}"));
                    }
                    self.g.flatten(&format!("{name}_flatten"), x)
                } else {
                    x
                };
                let bias = if op == "Gemm" {
                    self.konst(node, 2)?
                } else {
                    None
                };
                let id = self.g.dense(&name, x, units, bias.is_some());
                self.put(&name, "weight", vec![units, inputs], weight);
                if let Some(b) = bias {
                    let data: Vec<f32> = match b.data.len() {
                        1 => vec![b.data[0] * beta; units],
                        n if n == units => b.data.iter().map(|v| v * beta).collect(),
                        n => return Err(format!("bias C has {n} values for {units} outputs")),
                    };
                    self.put(&name, "bias", vec![units], data);
                }
                id
            }
            "Add" | "Sub" | "Mul" | "Div" => {
                let (a, b) = (self.val(node, 0)?, self.val(node, 1)?);
                match (a, b) {
                    (Val::Node(a), Val::Node(b)) if op == "Add" => self.g.add_nodes(&name, &[a, b]),
                    (Val::Node(x), Val::Const(c)) => self.affine(&name, op, x, &c)?,
                    (Val::Const(c), Val::Node(x)) if op == "Add" || op == "Mul" => {
                        self.affine(&name, op, x, &c)?
                    }
                    _ => return Err(format!("{op} of these operands is not supported")),
                }
            }
            "Flatten" => {
                let x = self.x(node)?;
                if attr_i(node, "axis", 1) != 1 {
                    return Err("only Flatten(axis=1) is supported".into());
                }
                self.flatten(&name, x)
            }
            "Reshape" => {
                let x = self.x(node)?;
                let shape = match self.konst(node, 1) {
                    Ok(Some(c)) => c.data.iter().map(|&v| v as i64).collect(),
                    _ => attr_ints(node, "shape").ok_or("the target shape must be a constant")?,
                };
                let numel = self.g.shape(x).numel() as i64;
                let flattening = shape.len() == 2
                    && (shape[1] == -1 || shape[1] == numel)
                    && (shape[0] <= 1 || shape[0] == -1 || shape[0] == 0);
                if !flattening {
                    return Err(format!(
                        "Reshape to {shape:?} is not supported (only [N, -1] flattening)"
                    ));
                }
                self.flatten(&name, x)
            }
            "Dropout" => {
                let x = self.x(node)?;
                let ratio = if self.opset >= 12 {
                    self.konst(node, 1)?
                        .map_or(0.5, |c| c.data.first().copied().unwrap_or(0.5))
                } else {
                    attr_f(node, "ratio", 0.5)
                };
                self.g.dropout(&name, x, ratio as f64)
            }
            "Softmax" => {
                let x = self.x(node)?;
                let default = if self.opset >= 13 { -1 } else { 1 };
                let axis = attr_i(node, "axis", default);
                if !matches!(self.g.shape(x), Shape::Flat(_)) || !(axis == 1 || axis == -1) {
                    return Err(
                        "only Softmax over the features of a [N, F] tensor is supported".into(),
                    );
                }
                self.g.softmax(&name, x)
            }
            "Pad" => {
                let x = self.x(node)?;
                let mode = attr_s(node, "mode").unwrap_or_else(|| "constant".into());
                let (pads, value) = if self.opset >= 11 {
                    let p = self.konst(node, 1)?.ok_or("no pads")?;
                    let v = self
                        .konst(node, 2)?
                        .map_or(0.0, |c| c.data.first().copied().unwrap_or(0.0));
                    (p.data.iter().map(|&v| v as i64).collect::<Vec<_>>(), v)
                } else {
                    (
                        attr_ints(node, "pads").ok_or("no pads")?,
                        attr_f(node, "value", 0.0),
                    )
                };
                if mode != "constant" || value != 0.0 {
                    return Err(format!(
                        "only zero constant padding is supported (mode {mode}, value {value})"
                    ));
                }
                let ok = pads.len() == 8
                    && pads[0] == 0
                    && pads[1] == 0
                    && pads[4] == 0
                    && pads[5] == 0
                    && pads.iter().all(|&v| v >= 0);
                if !ok {
                    return Err(format!(
                        "pads {pads:?}: only spatial padding of an NCHW tensor is supported"
                    ));
                }
                return Ok(Val::Padded(
                    x,
                    [
                        pads[2] as usize,
                        pads[3] as usize,
                        pads[6] as usize,
                        pads[7] as usize,
                    ],
                ));
            }
            "Transpose" => {
                let x = self.x(node)?;
                let perm = attr_ints(node, "perm").unwrap_or_default();
                if perm.iter().enumerate().all(|(i, &p)| p == i as i64) {
                    return Ok(Val::Node(x));
                }
                if self.input_nhwc && node.input.first() == Some(&self.input) {
                    // The NHWC → NCHW transpose at the input: the caller supplies NCHW.
                    return Ok(Val::Node(x));
                }
                return Err(format!(
                    "Transpose with perm {perm:?} is not supported (NCHW graphs only)"
                ));
            }
            other => return Err(format!("unsupported ONNX operator `{other}`")),
        };
        Ok(Val::Node(id))
    }

    fn flatten(&mut self, name: &str, x: NodeId) -> NodeId {
        match self.g.shape(x) {
            Shape::Flat(_) => x,
            Shape::Map(_) => self.g.flatten(name, x),
        }
    }

    /// `x (+|-|*|/) c` with a scalar or per-channel constant, as a channel affine map.
    fn affine(
        &mut self,
        name: &str,
        op: &str,
        x: NodeId,
        c: &Const,
    ) -> std::result::Result<NodeId, String> {
        let channels = self.g.shape(x).channels();
        let per_channel =
            c.data.len() == channels && c.dims.iter().filter(|&&d| d != 1).count() <= 1;
        let values: Vec<f32> = match c.data.len() {
            1 => vec![c.data[0]; channels],
            _ if per_channel => c.data.clone(),
            n => {
                return Err(format!(
                    "a constant of {n} values for {channels} channels is not supported"
                ));
            }
        };
        let (scale, shift): (Vec<f32>, Vec<f32>) = match op {
            "Add" => (vec![1.0; channels], values),
            "Sub" => (vec![1.0; channels], values.iter().map(|v| -v).collect()),
            "Mul" => (values, vec![0.0; channels]),
            _ => (
                values.iter().map(|v| 1.0 / v).collect(),
                vec![0.0; channels],
            ),
        };
        Ok(self.g.add(name, Op::ChannelAffine { scale, shift }, &[x]))
    }
}

fn node_name(n: &NodeProto) -> &str {
    if n.name.is_empty() {
        n.output.first().map_or("?", String::as_str)
    } else {
        &n.name
    }
}

fn pair(v: Option<Vec<i64>>, default: usize) -> std::result::Result<[usize; 2], String> {
    match v.as_deref() {
        None => {
            if default == 0 {
                Err("kernel_shape is missing".into())
            } else {
                Ok([default; 2])
            }
        }
        Some([a, b]) if *a > 0 && *b > 0 => Ok([*a as usize, *b as usize]),
        Some(other) => Err(format!("{other:?}: only positive 2-D values are supported")),
    }
}

/// ONNX `pads` `[top, left, bottom, right]` (plus a folded `Pad`) or `auto_pad`.
fn padding(node: &NodeProto, pre: [usize; 4]) -> std::result::Result<Padding, String> {
    match attr_s(node, "auto_pad").as_deref() {
        None | Some("NOTSET") | Some("") => {}
        Some("VALID") if pre == [0; 4] => return Ok(Padding::Valid),
        Some("SAME_UPPER") if pre == [0; 4] => return Ok(Padding::Same),
        Some(other) => return Err(format!("auto_pad {other} is not supported")),
    }
    let p = attr_ints(node, "pads").unwrap_or_else(|| vec![0; 4]);
    if p.len() != 4 || p.iter().any(|&v| v < 0) {
        return Err(format!("pads {p:?}: four non-negative values are needed"));
    }
    Ok(Padding::Pairs([
        [p[0] as usize + pre[0], p[2] as usize + pre[2]],
        [p[1] as usize + pre[1], p[3] as usize + pre[3]],
    ]))
}
