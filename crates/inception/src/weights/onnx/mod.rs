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

use super::{DType, Format, StateDict, WeightTensor};
use crate::error::{Error, FormatError, Result};
use crate::graph::{Graph, GraphBuilder, NodeId, Padding};

mod ops;
pub mod proto;
mod tensor;

use proto::{AttributeProto, NodeProto};
use tensor::{Const, tensor};

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
    let bytes = crate::files::read_regular(path, crate::files::MAX_WEIGHTS_FILE_BYTES)?;
    import(&bytes, input_size).map_err(|e| Error::format(format!("{e}")).in_file(path))
}

/// Imports an ONNX model from its bytes.
pub fn import(
    bytes: &[u8],
    input_size: Option<[usize; 2]>,
) -> std::result::Result<OnnxModel, FormatError> {
    let model =
        proto::ModelProto::decode(bytes).map_err(|e| format!("not a valid ONNX model ({e})"))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or("the model declares no ai.onnx opset")?;
    if !(7..=21).contains(&opset) {
        return Err(FormatError::unsupported(
            format!("opset {opset}"),
            "7–21 are",
        ));
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
    ) -> std::result::Result<Self, FormatError> {
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
            )
            .into());
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
            )
            .into());
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
            // A file that fixes its size keeps it; a symbolic one is built at the size given.
            (_, Some(h), Some(w)) => [h, w],
            (Some(s), _, _) => s,
            _ => {
                return Err(format!(
                    "input `{}` has a symbolic height or width; give the input size",
                    input.name
                )
                .into());
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
    ) -> std::result::Result<Vec<&'a NodeProto>, FormatError> {
        let mut producer: HashMap<&str, usize> = HashMap::new();
        for (i, n) in graph.node.iter().enumerate() {
            for o in &n.output {
                if producer.insert(o.as_str(), i).is_some() {
                    return Err(format!("value `{o}` is produced by two nodes").into());
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
                    )
                    .into());
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
            return Err(format!("the graph has a cycle through nodes {}", stuck.join(", ")).into());
        }
        Ok(order)
    }

    fn run(mut self, graph: &proto::GraphProto) -> std::result::Result<OnnxModel, FormatError> {
        for node in self.topo_order(graph)? {
            if !(node.domain.is_empty() || node.domain == "ai.onnx") {
                return Err(format!(
                    "node `{}` uses operator `{}` of domain `{}`, which is not supported",
                    node_name(node),
                    node.op_type,
                    node.domain
                )
                .into());
            }
            let out = self
                .node(node)
                .map_err(|e| e.at(format!("node `{}` ({})", node_name(node), node.op_type)))?;
            if let Some(e) = self.g.error() {
                return Err(FormatError::from(e.to_string()).at(format!(
                    "node `{}` ({})",
                    node_name(node),
                    node.op_type
                )));
            }
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
                    return Err(
                        format!("graph output `{}` is not computed by a layer", o.name).into(),
                    );
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

    fn val(&self, node: &NodeProto, i: usize) -> std::result::Result<Val, FormatError> {
        let name = node
            .input
            .get(i)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("input {i} is missing"))?;
        self.vals
            .get(name)
            .cloned()
            .ok_or_else(|| format!("input `{name}` is not defined").into())
    }

    fn x(&self, node: &NodeProto) -> std::result::Result<NodeId, FormatError> {
        match self.val(node, 0)? {
            Val::Node(id) => Ok(id),
            Val::Const(_) => {
                Err("its data input is a constant; constant folding is not supported".into())
            }
            Val::Padded(..) => Err("a Pad can only feed a Conv".into()),
        }
    }

    fn konst(&self, node: &NodeProto, i: usize) -> std::result::Result<Option<Const>, FormatError> {
        if node.input.get(i).is_none_or(|s| s.is_empty()) {
            return Ok(None);
        }
        match self.val(node, i)? {
            Val::Const(c) => Ok(Some(c)),
            _ => Err(format!("input {i} must be a constant (an initializer)").into()),
        }
    }

    fn put(&mut self, name: &str, suffix: &str, dims: Vec<usize>, data: Vec<f32>) {
        self.sd.insert(
            format!("{name}.{suffix}"),
            WeightTensor::new(dims, data, DType::F32),
        );
    }
}

fn node_name(n: &NodeProto) -> &str {
    if n.name.is_empty() {
        n.output.first().map_or("?", String::as_str)
    } else {
        &n.name
    }
}

fn pair(v: Option<Vec<i64>>, default: usize) -> std::result::Result<[usize; 2], FormatError> {
    match v.as_deref() {
        None => {
            if default == 0 {
                Err("kernel_shape is missing".into())
            } else {
                Ok([default; 2])
            }
        }
        Some([a, b]) if *a > 0 && *b > 0 => Ok([*a as usize, *b as usize]),
        Some(other) => Err(format!("{other:?}: only positive 2-D values are supported").into()),
    }
}

/// ONNX `pads` `[top, left, bottom, right]` (plus a folded `Pad`) or `auto_pad`.
fn padding(node: &NodeProto, pre: [usize; 4]) -> std::result::Result<Padding, FormatError> {
    match attr_s(node, "auto_pad").as_deref() {
        None | Some("NOTSET") | Some("") => {}
        Some("VALID") if pre == [0; 4] => return Ok(Padding::Valid),
        Some("SAME_UPPER") if pre == [0; 4] => return Ok(Padding::Same),
        Some(other) => return Err(format!("auto_pad {other} is not supported").into()),
    }
    let p = attr_ints(node, "pads").unwrap_or_else(|| vec![0; 4]);
    if p.len() != 4 || p.iter().any(|&v| v < 0) {
        return Err(format!("pads {p:?}: four non-negative values are needed").into());
    }
    Ok(Padding::Pairs([
        [p[0] as usize + pre[0], p[2] as usize + pre[2]],
        [p[1] as usize + pre[1], p[3] as usize + pre[3]],
    ]))
}
